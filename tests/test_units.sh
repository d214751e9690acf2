#!/bin/sh
# The systemd units as `make install` writes them: `systemd-analyze verify`
# must pass with no complaint at all (it exits 0 on many parse errors, so
# any output about our files is a failure too).
set -u
S=${srcdir:-.}
B=${top_builddir:-.}
command -v systemd-analyze >/dev/null 2>&1 || { echo "systemd-analyze not found: skipped"; exit 77; }
T=$(mktemp -d "${TMPDIR:-/tmp}/mmf-units-XXXXXX")
trap 'rm -rf "$T"' EXIT
# ExecStart must name an existing binary: point it at the one just built.
sbindir=$(cd "$B" && pwd)
sed -e "s|@sbindir[@]|$sbindir|g" "$S/systemd/mmfd.service.in" > "$T/mmfd.service"
cp "$S/systemd/mmfd.socket" "$T/"
out=$(systemd-analyze verify "$T/mmfd.service" "$T/mmfd.socket" 2>&1); rc=$?
mine=$(printf '%s\n' "$out" | grep -e "$T" -e 'mmfd\.' || true)
if [ "$rc" -ne 0 ] || [ -n "$mine" ]; then
	echo "FAIL: systemd-analyze verify (exit $rc):"
	printf '%s\n' "$out"
	exit 1
fi
grep -q "^ExecStart=$sbindir/mmfd --foreground" "$T/mmfd.service" || { echo "FAIL: @sbindir@ not substituted"; exit 1; }
echo "test_units: systemd-analyze verify clean on mmfd.service and mmfd.socket"
