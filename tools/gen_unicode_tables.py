#!/usr/bin/env python3
"""Generates engine/unicode_tables.c and engine/unicode_tables.h for the CLIP
tokenizer (engine/tokenizer.c).

The tokenizer must give exactly the ids that open_clip's SimpleTokenizer
gives, and that tokenizer leans on four Python libraries whose character
data differ in version and in detail: CPython's str methods and unicodedata
(Unicode 14.0 in 3.11), the `regex` module (its own, newer, Unicode tables,
and its own idea of case-insensitive classes), `html` and `ftfy`. So every
table here is taken from the very objects open_clip uses, by asking them,
rather than from the Unicode Character Database files: what the tokenizer
has to match is their behaviour, including their quirks (U+0345 matches no
class of the pre-tokenisation pattern under IGNORECASE, U+017F matches 's').

Run from the repository root with the interpreter that has open_clip_torch
installed (open_clip 3.3.0, ftfy 6.3.1, regex 2026.5.9 were used):

    python3 tools/gen_unicode_tables.py

The output is committed, so building mmf needs no Python.
"""

import html
import html.entities
import re
import re._parser as sre_parse
import sys
import unicodedata

import ftfy
import ftfy.badness
import ftfy.chardata
import regex

OUT_C = "engine/unicode_tables.c"
OUT_H = "engine/unicode_tables.h"
NCP = 0x110000

# ------------------------------------------------------------------ properties

F_SPACE = 0x0001  # str.isspace(): str.split()/strip() separators
F_CASED = 0x0002  # Cased, as CPython's final-sigma rule sees it
F_CASEIGN = 0x0004  # Case_Ignorable, likewise
F_LOWER_MULTI = 0x0008  # lower maps to several code points: lower is an index
F_NFC = 0x0010  # NFC may change a string containing it (slow path)
F_FTFY = 0x0020  # some ftfy character-level fixer or HTML unescaping acts on it
F_DECIMAL = 0x0040  # str.isdecimal(): Python re's \d
F_WORD = 0x0080  # str.isalnum() or '_': Python re's \w
F_MOJI = 0x0100  # member of one of ftfy's mojibake character sets
F_SIGMA = 0x0200  # U+03A3, whose lowercase depends on context

TOK_SKIP, TOK_L, TOK_N, TOK_O = 0, 1, 2, 3


def is_surrogate(c):
    return 0xD800 <= c <= 0xDFFF


def tok_classes():
    """Class of each code point in open_clip's pattern
    `...|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+` compiled with IGNORECASE."""
    r_l = regex.compile(r"[\p{L}]", regex.IGNORECASE)
    r_n = regex.compile(r"[\p{N}]", regex.IGNORECASE)
    r_o = regex.compile(r"[^\s\p{L}\p{N}]", regex.IGNORECASE)
    out = [TOK_SKIP] * NCP
    for c in range(NCP):
        if is_surrogate(c):
            continue
        ch = chr(c)
        m = [bool(r.fullmatch(ch)) for r in (r_l, r_n, r_o)]
        assert sum(m) <= 1, hex(c)
        out[c] = TOK_L if m[0] else TOK_N if m[1] else TOK_O if m[2] else TOK_SKIP
    return out


def fold_extras():
    """Non-ASCII code points that the pattern's literals ('s, <start_of_text>
    ...) match under IGNORECASE, besides the two ASCII cases."""
    extras = []
    for letter in sorted(set("strevmld" + "start_of_text" + "end_of_text" + "<>_'")):
        r = regex.compile(regex.escape(letter), regex.IGNORECASE)
        for c in range(0x80, NCP):
            if not is_surrogate(c) and r.fullmatch(chr(c)):
                extras.append((c, letter))
    return sorted(extras)


def sigma_props(c):
    """(cased, case_ignorable) as CPython's handle_capital_sigma sees them,
    read back from str.lower() itself: 'XΣ' ends in final sigma iff X is
    cased and not case-ignorable; 'AXΣ' iff X is case-ignorable or cased."""
    ch = chr(c)
    f1 = (ch + "\u03a3").lower()[-1] == "\u03c2"
    f2 = ("A" + ch + "\u03a3").lower()[-1] == "\u03c2"
    ci = f2 and not f1
    return f1, ci


def canonical_decomposition(c):
    d = unicodedata.decomposition(chr(c))
    if not d or d.startswith("<"):
        return None
    parts = [int(x, 16) for x in d.split()]
    assert 1 <= len(parts) <= 2, hex(c)
    return parts


def build_nfc():
    decomp = {}
    comp = {}
    for c in range(NCP):
        if is_surrogate(c):
            continue
        d = canonical_decomposition(c)
        if d is None:
            continue
        decomp[c] = d
        # A primary composite: a pair that NFC recomposes (composition
        # exclusions, singletons and non-starter decompositions all fail
        # NFC(c) == c).
        if len(d) == 2 and unicodedata.normalize("NFC", chr(c)) == chr(c):
            comp[(d[0], d[1])] = c
    return decomp, comp


def nfc_model(s, decomp, comp):
    """The algorithm engine/tokenizer.c implements, checked here against
    unicodedata.normalize so that a wrong table or a wrong idea of the
    algorithm fails at generation time."""
    SB, LB, VB, TB, LC, VC, TC = 0xAC00, 0x1100, 0x1161, 0x11A7, 19, 21, 28
    NC, SC = VC * TC, LC * VC * TC

    def dec(c, out):
        if SB <= c < SB + SC:
            i = c - SB
            out.append(LB + i // NC)
            out.append(VB + (i % NC) // TC)
            if i % TC:
                out.append(TB + i % TC)
        elif c in decomp:
            for x in decomp[c]:
                dec(x, out)
        else:
            out.append(c)

    d = []
    for ch in s:
        dec(ord(ch), d)
    ccc = lambda c: unicodedata.combining(chr(c))
    i = 0
    while i < len(d):  # canonical ordering: stable sort of each non-starter run
        if ccc(d[i]) == 0:
            i += 1
            continue
        j = i
        while j < len(d) and ccc(d[j]) != 0:
            j += 1
        d[i:j] = sorted(d[i:j], key=ccc)
        i = j

    def compose(a, b):
        if LB <= a < LB + LC and VB <= b < VB + VC:
            return SB + ((a - LB) * VC + (b - VB)) * TC
        if SB <= a < SB + SC and (a - SB) % TC == 0 and TB < b < TB + TC:
            return a + (b - TB)
        return comp.get((a, b))

    if not d:
        return ""
    out = [d[0]]
    starter = 0 if ccc(d[0]) == 0 else -1
    last = 0 if starter == 0 else 256
    for c in d[1:]:
        cc = ccc(c)
        if starter >= 0 and (last < cc or last == 0):
            k = compose(out[starter], c)
            if k is not None:
                out[starter] = k
                continue
        if cc == 0:
            starter = len(out)
        last = cc
        out.append(c)
    return "".join(map(chr, out))


def check_nfc(decomp, comp, seconds, rng):
    pool = [c for c in decomp] + [c for (a, b) in comp for c in (a, b)] + list(seconds)
    pool += list(range(0x300, 0x370)) + list(range(0x1100, 0x1200)) + [0xAC00, 0xAC01, 0xD7A3]
    pool += [0x41, 0x61, 0x20, 0x3B1, 0x3C9, 0x415, 0x438, 0x915, 0x93C, 0x5D0, 0xFB2A]
    pool = sorted(set(c for c in pool if not is_surrogate(c)))
    for _ in range(40000):
        s = "".join(chr(rng.choice(pool)) for _ in range(rng.randint(1, 8)))
        assert nfc_model(s, decomp, comp) == unicodedata.normalize("NFC", s), [hex(ord(x)) for x in s]


# ------------------------------------------------------------------ ftfy / html


def regex_set(pattern, limit=0x30000):
    r = re.compile(pattern)
    return sorted(c for c in range(limit) if not is_surrogate(c) and r.fullmatch(chr(c)))


def class_items_to_set(items):
    """A finite code-point set from sre_parse IN items, or None when the
    class is unbounded (negated or a category)."""
    s = set()
    for op, av in items:
        if op == sre_parse.LITERAL:
            s.add(av)
        elif op == sre_parse.RANGE:
            s.update(range(av[0], av[1] + 1))
        else:
            return None
    return frozenset(s)


# Step kinds of a BADNESS_RE alternative, mirrored in unicode_tables.h.
K_SET, K_NOTSET, K_SPACE, K_WORD, K_ANY, K_LIT = 0, 1, 2, 3, 4, 5


def parse_badness(sets):
    """Turns ftfy's BADNESS_RE into a list of alternatives, each a sequence of
    (kind, set bit or code point, optional) steps, and an anchored flag. Any construct
    other than the ones it actually uses stops the generator."""
    p = sre_parse.parse(ftfy.badness.BADNESS_RE.pattern, re.VERBOSE)
    assert len(p.data) == 1 and p.data[0][0] == sre_parse.BRANCH
    alts = []

    def set_bit(fs):
        if fs not in sets:
            sets[fs] = len(sets)
        return sets[fs]

    def step_of(op, av, optional):
        if op == sre_parse.LITERAL:
            assert av < 0x10000
            return (K_LIT, av, optional)
        if op == sre_parse.ANY:
            return (K_ANY, 0, optional)
        assert op == sre_parse.IN, op
        fs = class_items_to_set(av)
        if fs is not None and len(fs) == 1:
            return (K_LIT, next(iter(fs)), optional)
        if fs is not None:
            return (K_SET, set_bit(fs), optional)
        if av == [(sre_parse.CATEGORY, sre_parse.CATEGORY_SPACE)]:
            return (K_SPACE, 0, optional)
        if av == [(sre_parse.CATEGORY, sre_parse.CATEGORY_WORD)]:
            return (K_WORD, 0, optional)
        assert av[0] == (sre_parse.NEGATE, None), av
        fs = class_items_to_set(av[1:])
        assert fs is not None, av
        return (K_NOTSET, set_bit(fs), optional)

    for alt in p.data[0][1][1]:
        steps = []
        anchored = False
        for op, av in alt.data:
            if op == sre_parse.AT:
                assert av == sre_parse.AT_BEGINNING and not steps
                anchored = True
            elif op == sre_parse.MAX_REPEAT:
                lo, hi, sub = av
                assert (lo, hi) == (0, 1) and len(sub.data) == 1
                steps.append(step_of(sub.data[0][0], sub.data[0][1], 1))
            else:
                steps.append(step_of(op, av, 0))
        assert 1 <= len(steps) <= 8
        alts.append((anchored, steps))
    return alts


def badness_model(text, alts, sets_by_bit):
    """is_bad() as engine/tokenizer.c computes it, checked against ftfy."""

    def member(kind, bit, c):
        ch = chr(c)
        if kind == K_LIT:
            return c == bit
        if kind == K_SET:
            return c in sets_by_bit[bit]
        if kind == K_NOTSET:
            return c not in sets_by_bit[bit]
        if kind == K_SPACE:
            return ch.isspace()
        if kind == K_WORD:
            return ch.isalnum() or ch == "_"
        return c != 10

    def match(steps, k, i):
        if k == len(steps):
            return True
        kind, bit, opt = steps[k]
        if i < len(text) and member(kind, bit, ord(text[i])) and match(steps, k + 1, i + 1):
            return True
        return bool(opt) and match(steps, k + 1, i)

    for i in range(len(text)):
        for anchored, steps in alts:
            if anchored and i:
                continue
            if match(steps, 0, i):
                return True
    return False


def parse_clue(s):
    p = sre_parse.parse("[" + s + "]")
    assert len(p.data) == 1 and p.data[0][0] == sre_parse.IN
    fs = class_items_to_set(p.data[0][1])
    assert fs is not None
    return fs


# ------------------------------------------------------------------ emit helpers


class Writer:
    def __init__(self):
        self.parts = []

    def w(self, s=""):
        self.parts.append(s + "\n")

    def array(self, ctype, name, values, per_line=12, fmt="{}", static=False):
        self.w(f"{'static ' if static else ''}const {ctype} {name}[{len(values)}] = {{")
        for i in range(0, len(values), per_line):
            self.w("\t" + ", ".join(fmt.format(v) for v in values[i : i + per_line]) + ",")
        self.w("};")

    def text(self):
        return "".join(self.parts)


def c_str(s):
    return '"' + "".join(ch if 0x20 <= ord(ch) < 0x7F and ch not in '"\\' else "\\%03o" % ord(ch) for ch in s) + '"'


def main():
    import random

    rng = random.Random(1234)
    print("tokenizer classes ...", file=sys.stderr)
    tok = tok_classes()
    extras = fold_extras()

    print("NFC data ...", file=sys.stderr)
    decomp, comp = build_nfc()
    seconds = set(b for (a, b) in comp) | set(range(0x1161, 0x1176)) | set(range(0x11A8, 0x11C3))
    check_nfc(decomp, comp, seconds, rng)

    # ftfy's character-level fixers, read from ftfy itself.
    cd = ftfy.chardata
    single_q = regex_set(cd.SINGLE_QUOTE_RE.pattern)
    double_q = regex_set(cd.DOUBLE_QUOTE_RE.pattern)
    ligatures = dict(cd.LIGATURES)
    width = dict(cd.WIDTH_MAP)
    controls = sorted(cd.CONTROL_CHARS)
    assert all(v is None for v in cd.CONTROL_CHARS.values())
    ftfy_chars = set(single_q) | set(double_q) | set(ligatures) | set(width) | set(controls)
    ftfy_chars |= set(range(0x80, 0xA0)) | {0x26, 0x0D, 0x2028, 0x2029, 0x85, 0x1B}

    # Python re categories the ftfy regexes use; confirm the str methods that
    # stand for them here.
    print("re categories ...", file=sys.stderr)
    r_s, r_w, r_d = re.compile(r"\s"), re.compile(r"\w"), re.compile(r"\d")
    for c in range(NCP):
        if is_surrogate(c):
            continue
        ch = chr(c)
        assert bool(r_s.fullmatch(ch)) == ch.isspace(), hex(c)
        assert bool(r_w.fullmatch(ch)) == (ch.isalnum() or ch == "_"), hex(c)
        assert bool(r_d.fullmatch(ch)) == ch.isdecimal(), hex(c)

    # Mojibake detection: BADNESS_RE alternatives and UTF8_DETECTOR_RE sets.
    sets = {}
    alts = parse_badness(sets)
    clue_names = ["utf8_first_of_2", "utf8_first_of_3", "utf8_first_of_4", "utf8_continuation",
                  "utf8_continuation_strict"]
    clue_bits = {}
    for name in clue_names:
        fs = parse_clue(cd.UTF8_CLUES[name])
        if fs not in sets:
            sets[fs] = len(sets)
        clue_bits[name] = sets[fs]
    # Check that the detector is what this generator (and the C code) think it is.
    det = cd.UTF8_DETECTOR_RE.pattern
    assert "(?<!" in det and "{2}" in det and "{3}" in det and det.count("|") == 2
    assert len(sets) <= 64, len(sets)
    sets_by_bit = {b: s for s, b in sets.items()}
    moji = {}
    for s, b in sets.items():
        for c in s:
            moji[c] = moji.get(c, 0) | (1 << b)
    # Every alternative needs some non-ASCII character from a set or a
    # literal, so a text without any non-ASCII character of ut_moji_chars
    # (the C code's quick test) is not bad.
    for anchored, steps in alts:
        need = [st for st in steps if not st[2] and ((st[0] == K_LIT and st[1] >= 0x80) or
                (st[0] == K_SET and min(sets_by_bit[st[1]]) >= 0x80))]
        assert need, steps
        for kind, arg, opt in steps:
            if kind == K_LIT:
                moji.setdefault(arg, 0)

    print("checking the badness model ...", file=sys.stderr)
    moji_chars = sorted(moji)
    sample = moji_chars + [0x20, 0x0A, 0x41, 0x61, 0x7A, 0x5F, 0x31, 0xE9, 0x4E00, 0x2603]
    for _ in range(30000):
        t = "".join(chr(rng.choice(sample)) for _ in range(rng.randint(1, 6)))
        assert badness_model(t, alts, sets_by_bit) == ftfy.badness.is_bad(t), t

    print("properties ...", file=sys.stderr)
    lower_multi = []
    records = {}
    rec_list = []
    idx = [0] * NCP
    for c in range(NCP):
        if is_surrogate(c):
            key = (0, 0, 0, TOK_SKIP)
        else:
            ch = chr(c)
            flags = 0
            lo = ch.lower()
            if len(lo) == 1:
                lower = ord(lo) - c
            else:
                flags |= F_LOWER_MULTI
                lower = len(lower_multi)
                lower_multi.append((c, [ord(x) for x in lo]))
            if ch.isspace():
                flags |= F_SPACE
            cased, ci = sigma_props(c)
            if cased:
                flags |= F_CASED
            if ci:
                flags |= F_CASEIGN
            ccc = unicodedata.combining(ch)
            if c in decomp or 0xAC00 <= c <= 0xD7A3 or ccc or c in seconds:
                flags |= F_NFC
            if c in ftfy_chars:
                flags |= F_FTFY
            if ch.isdecimal():
                flags |= F_DECIMAL
            if ch.isalnum() or ch == "_":
                flags |= F_WORD
            if c in moji:
                flags |= F_MOJI
            if c == 0x3A3:
                flags |= F_SIGMA
            key = (lower, flags, ccc, tok[c])
        if key not in records:
            records[key] = len(rec_list)
            rec_list.append(key)
        idx[c] = records[key]

    # The final-sigma model, checked against str.lower() on a sample.
    probe = [c for c in range(0x3000) if not is_surrogate(c)]
    for c in probe[::7]:
        ch = chr(c)
        got = ("A\u03a3" + ch).lower()[1]
        rec = rec_list[idx[c]]
        want_final = bool(rec[1] & F_CASEIGN) or not (rec[1] & F_CASED)
        if rec[1] & F_CASEIGN:
            continue  # skipped over; the next character decides
        assert (got == "\u03c2") == want_final, hex(c)

    assert len(rec_list) <= 256  # stage 2 holds bytes
    best = None
    for shift in range(4, 11):
        bs = 1 << shift
        blocks = {}
        st1 = []
        st2 = []
        for start in range(0, NCP, bs):
            blk = tuple(idx[start : start + bs])
            if blk not in blocks:
                blocks[blk] = len(blocks)
                st2.extend(blk)
            st1.append(blocks[blk])
        size = 2 * len(st1) + len(st2)
        if best is None or size < best[0]:
            best = (size, shift, st1, st2, len(blocks))
    _, shift, stage1, stage2, nblocks = best

    # html.unescape's tables.
    html5 = sorted(html.entities.html5.items(), key=lambda kv: kv[0].encode())
    inv_ref = sorted(html._invalid_charrefs.items())
    assert all(len(v) == 1 for k, v in inv_ref)
    inv_cp = sorted(html._invalid_codepoints)
    # ftfy's unescape_html table ('&name;' -> text, including upper-cased names).
    assert all(k.startswith("&") and k.endswith(";") for k in cd.HTML_ENTITIES)
    for k, v in cd.HTML_ENTITIES.items():
        if k[1:] in html.entities.html5:
            assert html.entities.html5[k[1:]] == v
    ftfy_ent = sorted(((k[1:-1], v) for k, v in cd.HTML_ENTITIES.items() if k[1:] not in html.entities.html5),
                      key=lambda kv: kv[0].encode())

    # Single-byte encodings of ftfy's mojibake repair.
    encs = cd.CHARMAP_ENCODINGS
    enc_dec = []
    enc_enc = []
    for e in encs:
        byts = bytes(list(range(0x80, 0x100)) + [0x1A])
        chars = byts.decode(e)
        assert len(chars) == 129
        enc_dec.append([ord(x) for x in chars])
        allowed = set(range(0x00, 0x1A)) | set(range(0x1B, 0x80)) | set(ord(x) for x in chars)
        # possible_encoding() agrees with this set
        rx = cd.ENCODING_REGEXES[e]
        for c in range(0x10000):
            if is_surrogate(c):
                continue
            assert bool(rx.match(chr(c))) == (c in allowed), (e, hex(c))
        for c in range(0x80):
            if c != 0x1A:
                assert chr(c).encode(e) == bytes([c]), (e, c)
        byte_of = dict((ord(x), b) for x, b in zip(chars, byts))
        assert len(byte_of) == 129, e  # no character comes from two bytes
        for c, b in byte_of.items():
            assert chr(c).encode(e) == bytes([b]), (e, hex(c))
        pairs = sorted(byte_of.items())
        enc_enc.append(pairs)
    cp1252 = []
    for b in range(0x80, 0xA0):
        try:
            cp1252.append(ord(bytes([b]).decode("windows-1252")))
        except UnicodeDecodeError:
            cp1252.append(0)

    # ------------------------------------------------------------- header
    h = Writer()
    h.w("/* Generated by tools/gen_unicode_tables.py from CPython " + sys.version.split()[0] +
        " (Unicode " + unicodedata.unidata_version + "),")
    h.w(" * regex " + regex.__version__ + ", ftfy " + ftfy.__version__ + " and html.entities. Do not edit. */")
    h.w("#ifndef MMF_UNICODE_TABLES_H")
    h.w("#define MMF_UNICODE_TABLES_H")
    h.w()
    h.w("#include <stdint.h>")
    h.w()
    h.w("/* Classes of open_clip's pre-tokenisation pattern (compiled with IGNORECASE). */")
    h.w("enum { UT_TOK_SKIP = 0, UT_TOK_L = 1, UT_TOK_N = 2, UT_TOK_O = 3 };")
    h.w()
    for name, v in [("SPACE", F_SPACE), ("CASED", F_CASED), ("CASEIGN", F_CASEIGN),
                    ("LOWER_MULTI", F_LOWER_MULTI), ("NFC", F_NFC), ("FTFY", F_FTFY),
                    ("DECIMAL", F_DECIMAL), ("WORD", F_WORD), ("MOJI", F_MOJI), ("SIGMA", F_SIGMA)]:
        h.w(f"#define UT_{name} 0x{v:04x}")
    h.w()
    h.w("typedef struct ut_record {")
    h.w("\tint32_t lower; /* lowercase minus the code point, or an index into ut_lower_multi */")
    h.w("\tuint16_t flags;")
    h.w("\tuint8_t ccc; /* canonical combining class */")
    h.w("\tuint8_t tok;")
    h.w("} ut_record;")
    h.w()
    h.w(f"#define UT_SHIFT {shift}")
    h.w("extern const uint16_t ut_stage1[];")
    h.w("extern const uint8_t ut_stage2[];")
    h.w("extern const ut_record ut_records[];")
    h.w()
    h.w("static inline const ut_record *ut_get(uint32_t c)")
    h.w("{")
    h.w("\treturn &ut_records[ut_stage2[((uint32_t)ut_stage1[c >> UT_SHIFT] << UT_SHIFT) | (c & ((1u << UT_SHIFT) - 1))]];")
    h.w("}")
    h.w()
    h.w("/* A code point mapped to a short string (at most 3 code points). */")
    h.w("typedef struct ut_map {")
    h.w("\tuint32_t cp;")
    h.w("\tuint8_t n;")
    h.w("\tuint32_t to[3];")
    h.w("} ut_map;")
    h.w()
    h.w("typedef struct ut_pair {")
    h.w("\tuint32_t a, b, c; /* decomposition: a -> b c (c 0: singleton); composition: a b -> c */")
    h.w("} ut_pair;")
    h.w()
    h.w("typedef struct ut_range {")
    h.w("\tuint32_t lo, hi;")
    h.w("} ut_range;")
    h.w()
    h.w("/* An HTML entity: its name, at ut_entity_names + name (len bytes, ASCII),")
    h.w(" * and the n code points it stands for. */")
    h.w("typedef struct ut_entity {")
    h.w("\tuint32_t name;")
    h.w("\tuint8_t len, n;")
    h.w("\tuint32_t to[3];")
    h.w("} ut_entity;")
    h.w()
    h.w("extern const ut_map ut_lower_multi[];")
    h.w("extern const ut_pair ut_decomp[];")
    h.w("extern const int ut_decomp_n;")
    h.w("extern const ut_pair ut_comp[];")
    h.w("extern const int ut_comp_n;")
    h.w("/* Non-ASCII characters that match an ASCII letter of the pattern's literals under IGNORECASE. */")
    h.w("extern const ut_map ut_fold_extra[];")
    h.w("extern const int ut_fold_extra_n;")
    h.w()
    h.w("extern const char ut_entity_names[];")
    h.w("/* html.entities.html5, sorted by name (bytewise). */")
    h.w("extern const ut_entity ut_html5[];")
    h.w("extern const int ut_html5_n;")
    h.w("/* html._invalid_charrefs and html._invalid_codepoints. */")
    h.w("extern const ut_map ut_invalid_charrefs[];")
    h.w("extern const int ut_invalid_charrefs_n;")
    h.w("extern const ut_range ut_invalid_codepoints[];")
    h.w("extern const int ut_invalid_codepoints_n;")
    h.w("/* ftfy.chardata.HTML_ENTITIES without the '&' and ';', sorted by name, less")
    h.w(" * the names that are html5 names with ';' (which map to the same text): the")
    h.w(" * upper-case names ftfy adds, such as EACUTE. */")
    h.w("extern const ut_entity ut_ftfy_entities[];")
    h.w("extern const int ut_ftfy_entities_n;")
    h.w("/* ftfy's translate tables, sorted by code point. */")
    h.w("extern const ut_map ut_ligatures[];")
    h.w("extern const int ut_ligatures_n;")
    h.w("extern const ut_map ut_width[];")
    h.w("extern const int ut_width_n;")
    h.w("extern const ut_range ut_control_chars[];")
    h.w("extern const int ut_control_chars_n;")
    h.w("extern const ut_range ut_single_quotes[];")
    h.w("extern const int ut_single_quotes_n;")
    h.w("extern const ut_range ut_double_quotes[];")
    h.w("extern const int ut_double_quotes_n;")
    h.w()
    h.w("/* Mojibake detection. Each character of ftfy's mojibake sets carries a")
    h.w(" * mask with one bit per distinct set; BADNESS_RE is a list of alternatives,")
    h.w(" * each a sequence of steps over those sets. */")
    h.w("typedef struct ut_moji {")
    h.w("\tuint32_t cp;")
    h.w("\tuint64_t mask;")
    h.w("} ut_moji;")
    h.w("extern const ut_moji ut_moji_chars[];")
    h.w("extern const int ut_moji_chars_n;")
    h.w(f"enum {{ UT_BAD_SET = {K_SET}, UT_BAD_NOTSET = {K_NOTSET}, UT_BAD_SPACE = {K_SPACE}, "
        f"UT_BAD_WORD = {K_WORD}, UT_BAD_ANY = {K_ANY}, UT_BAD_LIT = {K_LIT} }};")
    h.w("typedef struct ut_bad_step {")
    h.w("\tuint8_t kind, optional;")
    h.w("\tuint16_t arg; /* the set's bit, or the literal's code point */")
    h.w("} ut_bad_step;")
    h.w("typedef struct ut_bad_alt {")
    h.w("\tuint8_t anchored, n;")
    h.w("\tut_bad_step step[8];")
    h.w("} ut_bad_alt;")
    h.w("extern const ut_bad_alt ut_bad_alts[];")
    h.w("extern const int ut_bad_alts_n;")
    for name in clue_names:
        h.w(f"#define UT_MOJI_{name.upper()} {clue_bits[name]}")
    h.w()
    h.w("/* ftfy.chardata.CHARMAP_ENCODINGS in order: for each, what bytes 0x80..0xff and")
    h.w(" * 0x1a decode to, and the same as (code point, byte) pairs sorted by code point;")
    h.w(" * the other ASCII characters encode as themselves. */")
    h.w(f"#define UT_NENC {len(encs)}")
    h.w("extern const char *const ut_enc_names[UT_NENC];")
    h.w("extern const uint16_t ut_enc_decode[UT_NENC][129];")
    h.w("typedef struct ut_enc_pair {")
    h.w("\tuint16_t cp;")
    h.w("\tuint8_t byte;")
    h.w("} ut_enc_pair;")
    h.w("extern const ut_enc_pair *const ut_enc_encode[UT_NENC];")
    h.w("extern const int ut_enc_encode_n[UT_NENC];")
    h.w("/* Strict windows-1252 for bytes 0x80..0x9f; 0 where undefined. */")
    h.w("extern const uint16_t ut_cp1252_c1[32];")
    h.w()
    h.w("#endif")

    # ------------------------------------------------------------- data
    o = Writer()
    o.w("/* Generated by tools/gen_unicode_tables.py; see engine/unicode_tables.h. Do not edit. */")
    o.w('#include "config.h"')
    o.w('#include "unicode_tables.h"')
    o.w()
    o.w("/* Block index of each 2^UT_SHIFT code points, then the record index of each code point. */")
    o.array("uint16_t", "ut_stage1", stage1, per_line=16)
    o.array("uint8_t", "ut_stage2", stage2, per_line=32)
    o.w(f"const ut_record ut_records[{len(rec_list)}] = {{")
    for lower, flags, ccc, t in rec_list:
        o.w(f"\t{{{lower}, 0x{flags:04x}, {ccc}, {t}}},")
    o.w("};")
    o.w()

    def maps(name, items):
        o.w(f"const ut_map {name}[{max(1, len(items))}] = {{")
        for cp, to in items:
            assert 1 <= len(to) <= 3
            o.w(f"\t{{0x{cp:04x}, {len(to)}, {{" + ", ".join(f"0x{x:04x}" for x in to) + "}},")
        if not items:
            o.w("\t{0, 0, {0}},")
        o.w("};")
        o.w(f"const int {name}_n = {len(items)};")

    def ranges(name, cps):
        rs = []
        for c in sorted(cps):
            if rs and rs[-1][1] == c - 1:
                rs[-1][1] = c
            else:
                rs.append([c, c])
        o.w(f"const ut_range {name}[{len(rs)}] = {{")
        for lo, hi in rs:
            o.w(f"\t{{0x{lo:04x}, 0x{hi:04x}}},")
        o.w("};")
        o.w(f"const int {name}_n = {len(rs)};")

    names = {}
    pool = []

    def name_off(k):
        if k + ";" in names:  # "amp" is the start of "amp;"
            return names[k + ";"]
        if k not in names:
            names[k] = sum(len(x) for x in pool)
            pool.append(k)
        return names[k]

    def entities(name, items):
        o.w(f"const ut_entity {name}[{len(items)}] = {{")
        for k, v in items:
            assert k.isascii() and len(k) < 256 and 1 <= len(v) <= 3
            o.w(f"\t{{{name_off(k)}, {len(k)}, {len(v)}, {{" + ", ".join(f"0x{ord(x):04x}" for x in v) + "}},")
        o.w("};")
        o.w(f"const int {name}_n = {len(items)};")

    maps("ut_lower_multi", lower_multi)
    o.w()
    o.w(f"const ut_pair ut_decomp[{len(decomp)}] = {{")
    for c in sorted(decomp):
        d = decomp[c] + [0]
        o.w(f"\t{{0x{c:04x}, 0x{d[0]:04x}, 0x{d[1]:04x}}},")
    o.w("};")
    o.w(f"const int ut_decomp_n = {len(decomp)};")
    o.w(f"const ut_pair ut_comp[{len(comp)}] = {{")
    for (a, b) in sorted(comp):
        o.w(f"\t{{0x{a:04x}, 0x{b:04x}, 0x{comp[(a, b)]:04x}}},")
    o.w("};")
    o.w(f"const int ut_comp_n = {len(comp)};")
    maps("ut_fold_extra", [(c, [ord(l)]) for c, l in extras])
    o.w()
    for k, v in html5:
        if k.endswith(";"):
            name_off(k)
    entities("ut_html5", html5)
    maps("ut_invalid_charrefs", [(k, [ord(v)]) for k, v in inv_ref])
    ranges("ut_invalid_codepoints", inv_cp)
    entities("ut_ftfy_entities", ftfy_ent)
    o.w("const char ut_entity_names[] =")
    line = ""
    for k in pool:
        line += k
        if len(line) > 90:
            o.w(f"\t{c_str(line)}")
            line = ""
    o.w(f"\t{c_str(line)};")
    o.w()
    maps("ut_ligatures", sorted((k, [ord(x) for x in v]) for k, v in ligatures.items()))
    maps("ut_width", sorted((k, [ord(x) for x in v]) for k, v in width.items()))
    ranges("ut_control_chars", controls)
    ranges("ut_single_quotes", single_q)
    ranges("ut_double_quotes", double_q)
    o.w()
    o.w(f"const ut_moji ut_moji_chars[{len(moji_chars)}] = {{")
    for c in moji_chars:
        o.w(f"\t{{0x{c:04x}, 0x{moji[c]:016x}ull}},")
    o.w("};")
    o.w(f"const int ut_moji_chars_n = {len(moji_chars)};")
    o.w(f"const ut_bad_alt ut_bad_alts[{len(alts)}] = {{")
    for anchored, steps in alts:
        o.w(f"\t{{{int(anchored)}, {len(steps)}, {{" + ", ".join(f"{{{k}, {opt}, 0x{b:x}}}" for k, b, opt in steps) + "}},")
    o.w("};")
    o.w(f"const int ut_bad_alts_n = {len(alts)};")
    o.w()
    o.w("const char *const ut_enc_names[UT_NENC] = {" + ", ".join(c_str(e) for e in encs) + "};")
    o.w("const uint16_t ut_enc_decode[UT_NENC][129] = {")
    for e, dec in zip(encs, enc_dec):
        o.w(f"\t/* {e} */ {{")
        for i in range(0, 129, 12):
            o.w("\t\t" + ", ".join(f"0x{x:04x}" for x in dec[i : i + 12]) + ",")
        o.w("\t},")
    o.w("};")
    for i, pairs in enumerate(enc_enc):
        o.w(f"static const ut_enc_pair enc{i}[{max(1, len(pairs))}] = {{")
        for j in range(0, len(pairs), 8):
            o.w("\t" + ", ".join(f"{{0x{c:04x}, 0x{b:02x}}}" for c, b in pairs[j : j + 8]) + ",")
        o.w("};")
    o.w("const ut_enc_pair *const ut_enc_encode[UT_NENC] = {" + ", ".join(f"enc{i}" for i in range(len(encs))) + "};")
    o.w("const int ut_enc_encode_n[UT_NENC] = {" + ", ".join(str(len(p)) for p in enc_enc) + "};")
    o.array("uint16_t", "ut_cp1252_c1", cp1252, per_line=8, fmt="0x{:04x}")

    with open(OUT_H, "w") as f:
        f.write(h.text())
    with open(OUT_C, "w") as f:
        f.write(o.text())
    size = 2 * len(stage1) + len(stage2) + 8 * len(rec_list)
    print(f"{len(rec_list)} records, {nblocks} blocks of {1 << shift}, property table {size} bytes; "
          f"{len(decomp)} decompositions, {len(comp)} compositions, {len(moji_chars)} mojibake "
          f"characters in {len(sets)} sets, {len(alts)} badness alternatives", file=sys.stderr)


if __name__ == "__main__":
    main()
