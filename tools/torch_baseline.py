#!/usr/bin/env python3
"""PyTorch peer for mmf-bench: open_clip CLIP latency on SM partitions.

What it measures
----------------
An open_clip model (default ``RN50-quickgelu``, built with
``open_clip.create_model(name, pretrained=None, precision=...)``) in fp16 with
seeded random weights (``torch.manual_seed(SEED)`` right before the model is
built; default seed 0), or with the weights of an open_clip safetensors state
dict (``--weights``, e.g. a file written by ``mmf-mkmodel rn50``).

Inputs are fixed for the whole run and never zero: ``--batch`` Gaussian images
[B, 3, S, S] (fp16) and ``--batch`` token rows ``[SOT, random ids, EOT, 0...]``
(SOT = vocab-2 = 49406, EOT = vocab-1 = 49407, ids uniform in [1, vocab-3],
``--text-len`` tokens including SOT and EOT), drawn from a
``torch.Generator`` seeded with SEED + 1.  No tokenizer is involved.

For every SM partition (``--sms``) it times three execution methods:

``eager``
    ``model.encode_image`` / ``model.encode_text`` called from Python under
    ``torch.inference_mode()``, one after the other on one stream ("both").
``graph``
    the same work captured into one ``torch.cuda.CUDAGraph`` on one stream
    (static inputs) and replayed.
``graph2``
    "both" only: one CUDA graph whose capture forks onto a second stream
    (image tower on stream 1, text tower on stream 2, fork/join with CUDA
    events), so that the two towers may run concurrently.

each for ``image``, ``text`` and ``both`` towers.

SM partitions
-------------
A number N in ``--sms`` runs everything on streams of a CUDA green context of
N SMs, created with PyTorch's green-context API
(``torch.cuda.green_contexts.GreenContext.create(num_sms=N, device_id=D)``;
work is placed on the context's streams from ``ctx.Stream()``; torch builds
without ``Stream()`` fall back to ``ctx.set_context()`` / ``pop_context()``
with streams created while the context is current).  The driver rounds N up to
its partition granularity (a multiple of 8 SMs on Hopper); the SM count it
actually gave is read back from the stream's green context
(``cuStreamGetGreenCtx`` + ``cuGreenCtxGetDevResource``) and reported.
``all`` uses ordinary streams of the primary context (the whole GPU).  If
green contexts are unavailable, numeric partitions are skipped with a clear
message and only ``all`` runs.

Timing
------
Per measurement: ``--warmup`` untimed calls, then ``--iters`` timed calls,
each bracketed by CUDA events on the stream that issues the work and followed
by a synchronisation (so every call starts on an idle GPU: this is latency,
not throughput); Python's garbage collector is off during the timed loop.
Reported: median, p10, p90 (and min, mean, and the host wall-clock median) in
milliseconds.  Eager runs are bound by the CPU launching ~10^2 kernels per
tower; unpinned, their latency on a 16-core H200 host flipped between two
modes about 2x apart from one measurement to the next, so by default the
process is pinned to one CPU core before torch starts (``--cpu``).

cuDNN runs with its heuristics (``torch.backends.cudnn.benchmark = False``,
PyTorch's default) unless ``--cudnn-benchmark`` is given; note that benchmark
mode picks algorithms once per shape, in the first partition that runs.

Output
------
A table on stdout, progress on stderr, and with ``--json FILE`` all results
plus GPU name, SM count, torch / open_clip versions, date, batch, ...

``--dry-run`` builds the model (loading ``--weights`` if given) and the inputs
on the CPU and runs one eager forward of both towers there, without CUDA and
without timing.

Running on a GPU machine without network
----------------------------------------
open_clip_torch and ftfy/wcwidth are carried as wheels in ``.whl/``::

    python3 -m pip install -q --no-index --no-deps --no-compile \\
        --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    PYTHONPATH=/tmp/site python3 tools/torch_baseline.py --json out.json
"""

import argparse
import ctypes
import datetime
import gc
import json
import logging
import os
import platform
import subprocess
import sys
import time

PROG = "torch_baseline.py"
TOWERS = ("image", "text", "both")
METHODS = ("eager", "graph", "graph2")
DEFAULT_SMS = "8,16,32,64,all"


def log(msg):
    print(f"{PROG}: {msg}", file=sys.stderr, flush=True)


def die(msg, code=1):
    log(msg)
    sys.exit(code)


# --------------------------------------------------------------------------
# command line


def parse_list(text, allowed, what):
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise argparse.ArgumentTypeError(f"empty {what} list")
    for t in items:
        if t not in allowed:
            raise argparse.ArgumentTypeError(
                f"unknown {what} '{t}' (choose from {', '.join(allowed)})")
    return list(dict.fromkeys(items))


def parse_sms(text):
    out = []
    for t in (s.strip() for s in text.split(",")):
        if not t:
            continue
        if t == "all":
            out.append("all")
            continue
        try:
            n = int(t)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"'{t}' is neither a number of SMs nor 'all'") from None
        if n <= 0:
            raise argparse.ArgumentTypeError(f"{n} must be positive")
        out.append(n)
    if not out:
        raise argparse.ArgumentTypeError("empty list")
    return list(dict.fromkeys(out))


def positive(text):
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not an integer") from None
    if n <= 0:
        raise argparse.ArgumentTypeError(f"{n} must be positive")
    return n


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog=PROG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "PyTorch peer of mmf-bench: latency of an open_clip CLIP model\n"
            "(default RN50-quickgelu, fp16, seeded random weights) for the image\n"
            "tower, the text tower and both, run eagerly, as a CUDA graph and as a\n"
            "two-stream CUDA graph, on SM partitions made with PyTorch green\n"
            "contexts. Needs a CUDA GPU, except for --help and --dry-run."),
        epilog=(
            "methods:\n"
            "  eager   encode_image / encode_text from Python (inference_mode),\n"
            "          sequentially on one stream\n"
            "  graph   the same captured in one CUDA graph on one stream\n"
            "  graph2  (both only) one CUDA graph, image tower on stream 1 and\n"
            "          text tower on stream 2 (fork/join with events)\n"
            "\n"
            "partitions (--sms): N = a green context of N SMs (rounded up by the\n"
            "driver, a multiple of 8 on Hopper; the real count is reported);\n"
            "all = the whole GPU, ordinary streams.\n"
            "\n"
            "examples:\n"
            f"  {PROG} --dry-run                      # CPU check, no timing\n"
            f"  {PROG} --json rn50.json               # RN50-quickgelu, batch 1\n"
            f"  {PROG} --model-config RN101-quickgelu --batch 8 --sms 16,all\n"
            f"  {PROG} --weights /tmp/mmf-cache/rn50-seed1.safetensors\n"),
    )
    p.add_argument("--model-config", default="RN50-quickgelu", metavar="NAME",
                   help="open_clip built-in model config, e.g. RN50-quickgelu, "
                        "RN101-quickgelu, RN50x4-quickgelu, or a config .json "
                        "file in open_clip's format [%(default)s]")
    p.add_argument("--force-quick-gelu", action="store_true",
                   help="pass force_quick_gelu=True to open_clip.create_model")
    p.add_argument("--weights", metavar="FILE",
                   help="load this open_clip state dict (.safetensors, e.g. from "
                        "mmf-mkmodel) instead of seeded random weights; its "
                        "shapes must match --model-config")
    p.add_argument("--precision", choices=("fp16", "pure_fp16"), default="fp16",
                   help="fp16: open_clip precision='fp16' (conv/linear/attention "
                        "weights fp16, BatchNorm parameters fp32, LayerNorm "
                        "computed in fp32, as OpenAI CLIP); pure_fp16: every "
                        "parameter fp16 [%(default)s]")
    p.add_argument("--batch", type=positive, default=1, metavar="N",
                   help="images and token rows per call [%(default)s]")
    p.add_argument("--text-len", type=positive, default=20, metavar="N",
                   help="tokens per row including SOT and EOT (the text tower "
                        "always runs the full context) [%(default)s]")
    p.add_argument("--sms", type=parse_sms, default=parse_sms(DEFAULT_SMS),
                   metavar="LIST",
                   help=f"comma list of SM counts and/or 'all' [{DEFAULT_SMS}]")
    p.add_argument("--methods", type=lambda s: parse_list(s, METHODS, "method"),
                   default=list(METHODS), metavar="LIST",
                   help=f"comma list of {', '.join(METHODS)} [all three]")
    p.add_argument("--towers", type=lambda s: parse_list(s, TOWERS, "tower"),
                   default=list(TOWERS), metavar="LIST",
                   help=f"comma list of {', '.join(TOWERS)} [all three]")
    p.add_argument("--iters", type=positive, default=200, metavar="N",
                   help="timed calls per measurement [%(default)s]")
    p.add_argument("--warmup", type=positive, default=20, metavar="N",
                   help="untimed calls before each measurement [%(default)s]")
    p.add_argument("--seed", type=int, default=0, metavar="N",
                   help="torch.manual_seed for the weights; inputs use N+1 "
                        "[%(default)s]")
    p.add_argument("--device", type=int, default=0, metavar="N",
                   help="CUDA device index [%(default)s]")
    p.add_argument("--cpu", default="auto", metavar="N|auto|none",
                   help="pin the process to this CPU core before torch starts "
                        "(auto: the second allowed core; none: no pinning). "
                        "Unpinned, eager latency on a 16-core H100/H200 host "
                        "flips between two modes ~2x apart [%(default)s]")
    p.add_argument("--cudnn-benchmark", action="store_true",
                   help="set torch.backends.cudnn.benchmark = True (default: "
                        "cuDNN heuristics, PyTorch's default)")
    p.add_argument("--json", metavar="FILE", help="also write the results to FILE")
    p.add_argument("--dry-run", action="store_true",
                   help="build model, weights and inputs on the CPU and run one "
                        "eager forward there; no CUDA, no timing")
    return p.parse_args(argv)


# --------------------------------------------------------------------------
# model and inputs


def import_stack():
    try:
        import numpy  # noqa: F401
        import torch
    except ImportError as e:
        die(f"cannot import {e.name}: this script needs torch and numpy")
    try:
        import open_clip
    except ImportError as e:
        die(f"cannot import open_clip ({e}); install open_clip_torch, or on a "
            "machine without network: python3 -m pip install --no-index "
            "--no-deps --target /tmp/site .whl/*.whl && export "
            "PYTHONPATH=/tmp/site")
    return torch, open_clip


def build_model(torch, open_clip, args):
    name = args.model_config
    if name.endswith(".json") and os.path.isfile(name):
        # an open_clip model config file (the format of open_clip's
        # model_configs/*.json); its name is the file's stem
        open_clip.add_model_config(name)
        name = os.path.splitext(os.path.basename(name))[0]
    if name not in open_clip.list_models():
        rn = [m for m in open_clip.list_models() if m.startswith("RN")]
        die(f"--model-config {name}: not an open_clip built-in config "
            f"(ResNet ones: {', '.join(rn)})")
    torch.manual_seed(args.seed)
    logging.disable(logging.WARNING)  # "No pretrained weights loaded ..."
    try:
        model = open_clip.create_model(
            name, pretrained=None, precision=args.precision, device="cpu",
            force_quick_gelu=args.force_quick_gelu)
    finally:
        logging.disable(logging.NOTSET)
    if args.weights:
        if not os.path.isfile(args.weights):
            die(f"--weights {args.weights}: no such file")
        check_weights(model, args.weights, name)
        try:
            # load_checkpoint copies into the existing parameters, casting to
            # their (already fp16 / fp32) dtypes.
            open_clip.load_checkpoint(model, args.weights, strict=True)
        except Exception as e:  # size mismatch, missing keys, bad file
            msg = str(e).strip().splitlines()
            die(f"--weights {args.weights} does not fit --model-config {name}: "
                + " | ".join(msg[:6]))
    model.eval()
    model.requires_grad_(False)
    return model


def check_weights(model, path, name):
    """Compare a safetensors file's tensor names and shapes with the model's,
    so that a wrong --model-config gets a readable message."""
    if not path.endswith(".safetensors"):
        return
    try:
        from safetensors import safe_open
        with safe_open(path, framework="pt") as f:
            shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except Exception as e:
        die(f"--weights {path}: cannot read as safetensors: {e}")
    if shapes and all(k.startswith("module.") for k in shapes):
        shapes = {k[7:]: v for k, v in shapes.items()}
    want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = sorted(set(want) - set(shapes))
    extra = sorted(set(shapes) - set(want))
    # logit_scale may be stored 0-d or [1]
    diff = [k for k in sorted(set(want) & set(shapes)) if shapes[k] != want[k]
            and not (k == "logit_scale" and shapes[k] in ((), (1,)))]
    if not (missing or extra or diff):
        return
    lines = []
    if diff:
        lines.append(f"{len(diff)} shape(s) differ, e.g. " + ", ".join(
            f"{k} {list(shapes[k])} (model {list(want[k])})" for k in diff[:3]))
    if missing:
        lines.append(f"{len(missing)} missing, e.g. {', '.join(missing[:3])}")
    if extra:
        lines.append(f"{len(extra)} unexpected, e.g. {', '.join(extra[:3])}")
    die(f"--weights {path} does not fit --model-config {name}: "
        + "; ".join(lines))


def model_info(model):
    visual = model.visual
    size = getattr(visual, "image_size", 224)
    if isinstance(size, (tuple, list)):
        size = size[0]
    return dict(
        image_size=int(size),
        context_length=int(model.context_length),
        vocab_size=int(model.token_embedding.num_embeddings),
        visual=type(visual).__name__,
        params=int(sum(p.numel() for p in model.parameters())),
        param_dtypes=sorted({str(p.dtype).replace("torch.", "")
                             for p in model.parameters()}),
    )


def make_inputs(torch, info, args, device, dtype):
    g = torch.Generator().manual_seed(args.seed + 1)
    b, s = args.batch, info["image_size"]
    pixels = torch.randn(b, 3, s, s, generator=g)
    ctx, vocab = info["context_length"], info["vocab_size"]
    n = min(args.text_len, ctx)
    if n < 2:
        die("--text-len must be at least 2 (SOT and EOT)")
    tokens = torch.zeros(b, ctx, dtype=torch.long)
    tokens[:, 0] = vocab - 2                      # SOT (49406)
    tokens[:, 1:n - 1] = torch.randint(1, vocab - 2, (b, n - 2), generator=g)
    tokens[:, n - 1] = vocab - 1                  # EOT (49407): argmax pooling
    return pixels.to(device=device, dtype=dtype), tokens.to(device)


def describe(torch, t):
    t = t.float()
    return (f"shape {list(t.shape)}, finite {bool(torch.isfinite(t).all())}, "
            f"|x| mean {t.abs().mean().item():.4g}")


# --------------------------------------------------------------------------
# green contexts


def green_api(torch):
    """Return (GreenContext class or None, description)."""
    if torch.version.cuda is None:
        return None, "not a CUDA build of torch"
    try:
        import torch.cuda.green_contexts as gcm
    except ImportError as e:
        return None, f"torch.cuda.green_contexts missing ({e})"
    gc = getattr(gcm, "GreenContext", None)
    if gc is None:
        return None, "torch.cuda.green_contexts has no GreenContext"
    if getattr(gcm, "SUPPORTED", True) is False:
        return None, "torch was not built with green context support"
    if not hasattr(gc, "create"):
        return None, "GreenContext has no create()"
    how = ("ctx.Stream()" if hasattr(gc, "Stream")
           else "ctx.set_context()/pop_context()")
    return gc, f"torch.cuda.green_contexts.GreenContext.create(num_sms=N, device_id=D) + {how}"


class Driver:
    """The few CUDA driver calls used for diagnostics (ctypes, libcuda)."""

    def __init__(self):
        try:
            self.lib = ctypes.CDLL("libcuda.so.1")
        except OSError:
            self.lib = None

    def version(self):
        if not self.lib:
            return None
        v = ctypes.c_int()
        if self.lib.cuDriverGetVersion(ctypes.byref(v)) != 0:
            return None
        return f"{v.value // 1000}.{v.value % 1000 // 10}"

    def stream_sms(self, handle):
        """(is_green, sm_count or None) of the green context of a stream."""
        if not self.lib or handle is None:
            return None, None
        try:
            gctx = ctypes.c_void_p()
            r = self.lib.cuStreamGetGreenCtx(ctypes.c_void_p(handle),
                                             ctypes.byref(gctx))
            if r != 0:
                return None, None
            if not gctx.value:
                return False, None
            # CUdevResource: int type; uchar pad[92]; union { CUdevSmResource
            # sm {uint smCount; ...}; ... }  -> smCount at byte 96.
            buf = (ctypes.c_ubyte * 1024)()
            r = self.lib.cuGreenCtxGetDevResource(gctx, buf, 1)  # TYPE_SM = 1
            if r != 0:
                return True, None
            return True, int.from_bytes(bytes(buf[96:100]), "little")
        except AttributeError:  # driver older than 12.4
            return None, None

    def new_stream(self):
        """A non-blocking stream in the current (green) context."""
        s = ctypes.c_void_p()
        r = self.lib.cuStreamCreate(ctypes.byref(s), 1)  # CU_STREAM_NON_BLOCKING
        if r != 0:
            raise RuntimeError(f"cuStreamCreate failed ({r})")
        return s.value


def raw_handle(stream):
    h = getattr(stream, "cuda_stream", None)
    return int(h) if h is not None else None


class Partition:
    def __init__(self, torch, drv, gc, req, dev, dev_sms):
        self.req, self.ctx, self.pushed = req, None, False
        self.label = "all" if req == "all" else str(req)
        if req == "all":
            self.s1 = torch.cuda.Stream(device=dev)
            self.s2 = torch.cuda.Stream(device=dev)
            self.green, self.sms = False, dev_sms
            return
        self.ctx = gc.create(num_sms=req, device_id=dev)
        if hasattr(self.ctx, "Stream"):
            self.s1, self.s2 = self.ctx.Stream(), self.ctx.Stream()
        else:
            # Older API: make the context current, create two streams in it
            # and keep it current while this partition runs.
            self.ctx.set_context()
            self.pushed = True
            self.s1 = torch.cuda.ExternalStream(drv.new_stream(), device=dev)
            self.s2 = torch.cuda.ExternalStream(drv.new_stream(), device=dev)
        green, sms = drv.stream_sms(raw_handle(self.s1))
        if sms is None:
            sms = getattr(self.ctx, "sm_count", None)
        if green is False:
            raise RuntimeError("the green context's stream is not in a green "
                               "context (cuStreamGetGreenCtx returned NULL)")
        self.green, self.sms = True, sms

    def close(self):
        if self.pushed:
            self.ctx.pop_context()
            self.pushed = False
        self.s1 = self.s2 = self.ctx = None


# --------------------------------------------------------------------------
# timing


def timed(torch, np, fn, stream, warmup, iters):
    start = torch.cuda.Event(enable_timing=True)
    end = torch.cuda.Event(enable_timing=True)
    ms, host = [], []
    gc.collect()
    gc.disable()  # no collector pauses inside timed calls (as timeit does)
    try:
        with torch.cuda.stream(stream):
            for _ in range(warmup):
                fn()
            stream.synchronize()
            for _ in range(iters):
                t0 = time.perf_counter()
                start.record(stream)
                fn()
                end.record(stream)
                end.synchronize()
                host.append((time.perf_counter() - t0) * 1e3)
                ms.append(start.elapsed_time(end))
    finally:
        gc.enable()
    a = np.asarray(ms)
    p10, p50, p90 = np.percentile(a, [10, 50, 90])
    return dict(median_ms=round(float(p50), 5), p10_ms=round(float(p10), 5),
                p90_ms=round(float(p90), 5), min_ms=round(float(a.min()), 5),
                mean_ms=round(float(a.mean()), 5),
                host_median_ms=round(float(np.median(host)), 5), iters=iters)


def run_partition(torch, np, model, pix, tok, part, args):
    enc_i, enc_t = model.encode_image, model.encode_text
    s1, s2 = part.s1, part.s2

    def eager(tower):
        if tower == "image":
            return lambda: enc_i(pix)
        if tower == "text":
            return lambda: enc_t(tok)
        return lambda: (enc_i(pix), enc_t(tok))

    results, errors, keep = {}, {}, []
    with torch.inference_mode():
        # Warm every stream that a capture will use (cuBLAS/cuDNN handles,
        # workspaces, lazy module loading) and check the outputs.
        with torch.cuda.stream(s1):
            for _ in range(3):
                img, txt = enc_i(pix), enc_t(tok)
        with torch.cuda.stream(s2):
            for _ in range(3):
                enc_t(tok)
        torch.cuda.synchronize()
        finite = bool(torch.isfinite(img).all()) and bool(torch.isfinite(txt).all())
        if not finite:
            log(f"[sms={part.label}] warning: non-finite embeddings "
                "(timings are still valid, the weights are random)")

        for method in args.methods:
            for tower in args.towers:
                if method == "graph2" and tower != "both":
                    continue
                key = f"{method}/{tower}"
                try:
                    if method == "eager":
                        fn = eager(tower)
                    else:
                        g = torch.cuda.CUDAGraph()
                        if method == "graph":
                            with torch.cuda.graph(g, stream=s1):
                                out = eager(tower)()
                        else:
                            with torch.cuda.graph(g, stream=s1):
                                fork = torch.cuda.Event()
                                fork.record(s1)
                                s2.wait_event(fork)
                                with torch.cuda.stream(s2):
                                    out_t = enc_t(tok)
                                out_i = enc_i(pix)
                                join = torch.cuda.Event()
                                join.record(s2)
                                s1.wait_event(join)
                            out = (out_i, out_t)
                        keep.append((g, out))
                        fn = g.replay
                    r = timed(torch, np, fn, s1, args.warmup, args.iters)
                except Exception as e:  # report and go on with the others
                    torch.cuda.synchronize()
                    errors[key] = f"{type(e).__name__}: {e}".strip()
                    log(f"[sms={part.label}] {key}: FAILED: {errors[key]}")
                    continue
                results.setdefault(method, {})[tower] = r
                log(f"[sms={part.label}] {key:12s} median {r['median_ms']:.3f} ms "
                    f"(p10 {r['p10_ms']:.3f}, p90 {r['p90_ms']:.3f})")
    del keep
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    return results, errors, finite


# --------------------------------------------------------------------------
# output


def cell(r):
    if r is None:
        return "-"
    return f"{r['median_ms']:.3f} ({r['p10_ms']:.3f}-{r['p90_ms']:.3f})"


def print_table(report):
    m = report["model"]
    print(f"open_clip {m['config']} {m['precision']} batch {report['batch']} on "
          f"{report['gpu']['name']} ({report['gpu']['sm_count']} SMs), torch "
          f"{report['versions']['torch']}, open_clip {report['versions']['open_clip']}")
    pin = report.get("cpu_pinned_to")
    print(f"latency in ms: median (p10-p90) of {report['iters']} calls, "
          f"after {report['warmup']} warm-up calls; "
          + (f"CPU pinned to core {pin}" if pin is not None else "CPU not pinned"))
    towers = report["towers"]
    w = 26
    head = f"{'SMs':>5} {'method':7} " + "".join(f"{t:>{w}}" for t in towers)
    print(head)
    print("-" * len(head))
    for part in report["partitions"]:
        sms = part["sms"] if part["sms"] is not None else f"{part['requested']}?"
        if part.get("skipped"):
            print(f"{part['label']:>5} skipped: {part['skipped']}")
            continue
        for method in report["methods"]:
            res = part["results"].get(method, {})
            cells = []
            for t in towers:
                key = f"{method}/{t}"
                if key in part["errors"]:
                    cells.append("error")
                else:
                    cells.append(cell(res.get(t)))
            print(f"{str(sms):>5} {method:7} " + "".join(f"{c:>{w}}" for c in cells))
    if any(p.get("errors") for p in report["partitions"]):
        print("errors:")
        for part in report["partitions"]:
            for k, v in part.get("errors", {}).items():
                print(f"  sms={part['label']} {k}: {v}")


def write_json(path, report):
    try:
        with open(path, "w") as f:
            json.dump(report, f, indent=2)
            f.write("\n")
    except OSError as e:
        die(f"{path}: cannot write: {e.strerror}")
    log(f"results written to {path}")


def versions(torch, open_clip):
    v = dict(torch=torch.__version__, open_clip=open_clip.__version__,
             python=platform.python_version(), cuda=torch.version.cuda)
    try:
        v["cudnn"] = torch.backends.cudnn.version()
    except Exception:
        v["cudnn"] = None
    try:
        import timm
        v["timm"] = timm.__version__
    except Exception:
        pass
    return v


def commit():
    """The mmf commit measured with: $MMF_COMMIT (a device copy has no .git), else git."""
    c = os.environ.get("MMF_COMMIT")
    if c:
        return c
    src = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    r = subprocess.run(["git", "-C", src, "rev-parse", "--short=7", "HEAD"], capture_output=True, text=True)
    return r.stdout.strip() or "unknown"


def base_report(torch, open_clip, args, info):
    return dict(
        tool=PROG,
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        commit=commit(),
        argv=sys.argv[1:],
        versions=versions(torch, open_clip),
        model=dict(config=args.model_config, precision=args.precision,
                   force_quick_gelu=args.force_quick_gelu,
                   weights=os.path.abspath(args.weights) if args.weights else None,
                   seed=None if args.weights else args.seed, **info),
        batch=args.batch,
        inputs=dict(pixels=f"randn [{args.batch},3,{info['image_size']},"
                           f"{info['image_size']}] fp16, seed {args.seed + 1}",
                    tokens=f"SOT {info['vocab_size'] - 2}, "
                           f"{min(args.text_len, info['context_length']) - 2} "
                           f"random ids, EOT {info['vocab_size'] - 1}, zero "
                           f"padding to {info['context_length']}"),
    )


# --------------------------------------------------------------------------
# main


def dry_run(torch, open_clip, args):
    gc, gdesc = green_api(torch)
    log(f"dry run on the CPU; green contexts: "
        f"{gdesc if gc else 'unavailable: ' + gdesc}")
    model = build_model(torch, open_clip, args)
    info = model_info(model)
    log(f"model {args.model_config} ({args.precision}): {info['visual']}, "
        f"image {info['image_size']}, context {info['context_length']}, vocab "
        f"{info['vocab_size']}, {info['params'] / 1e6:.1f} M parameters "
        f"({', '.join(info['param_dtypes'])})"
        + (f", weights {args.weights}" if args.weights else f", seed {args.seed}"))
    pix, tok = make_inputs(torch, info, args, "cpu", torch.float16)
    log(f"pixels {list(pix.shape)} {pix.dtype}; token row 0: "
        f"{tok[0, :min(args.text_len, info['context_length']) + 2].tolist()} ...")
    note = None
    with torch.inference_mode():
        try:
            img, txt = model.encode_image(pix), model.encode_text(tok)
        except (RuntimeError, NotImplementedError) as e:
            note = (f"fp16 forward not supported on this CPU ({e}); "
                    "ran in float32 instead")
            log(note)
            model.float()
            img, txt = model.encode_image(pix.float()), model.encode_text(tok)
    log(f"image features: {describe(torch, img)}")
    log(f"text features:  {describe(torch, txt)}")
    print(f"dry run OK: {args.model_config} {args.precision} batch {args.batch}: "
          f"image {list(img.shape)}, text {list(txt.shape)}"
          + (f" ({note})" if note else ""))
    if args.json:
        rep = base_report(torch, open_clip, args, info)
        rep.update(dry_run=True, green_context_api=gdesc if gc else None,
                   note=note,
                   outputs=dict(image=describe(torch, img), text=describe(torch, txt)))
        write_json(args.json, rep)


def pin_cpu(spec):
    """Pin to one core before torch creates threads; returns the core or None."""
    if spec == "none" or not hasattr(os, "sched_setaffinity"):
        return None
    allowed = sorted(os.sched_getaffinity(0))
    if spec == "auto":
        core = allowed[1] if len(allowed) > 1 else allowed[0]
    else:
        try:
            core = int(spec)
        except ValueError:
            die(f"--cpu {spec}: not a core number, 'auto' or 'none'", 2)
        if core not in allowed:
            die(f"--cpu {core}: not among the allowed cores {allowed}", 2)
    os.sched_setaffinity(0, {core})
    return core


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    core = None if args.dry_run else pin_cpu(args.cpu)
    torch, open_clip = import_stack()
    import numpy as np

    if args.dry_run:
        return dry_run(torch, open_clip, args)

    if not torch.cuda.is_available() or torch.cuda.device_count() == 0:
        die("no CUDA device (torch.cuda.is_available() is False; torch "
            f"{torch.__version__}, CUDA build {torch.version.cuda}); "
            "use --dry-run for a CPU check without timing")
    if args.device >= torch.cuda.device_count():
        die(f"--device {args.device}: only {torch.cuda.device_count()} CUDA device(s)")
    dev = args.device
    torch.cuda.set_device(dev)
    torch.backends.cudnn.benchmark = args.cudnn_benchmark
    props = torch.cuda.get_device_properties(dev)
    dev_sms = props.multi_processor_count
    drv = Driver()

    gc, gdesc = green_api(torch)
    if gc is None and any(s != "all" for s in args.sms):
        log(f"green contexts unavailable ({gdesc}): running only 'all'")
    log(f"{props.name}, {dev_sms} SMs, driver {drv.version()}, torch "
        f"{torch.__version__}, open_clip {open_clip.__version__}, "
        + (f"pinned to CPU {core}" if core is not None else "CPU not pinned"))

    model = build_model(torch, open_clip, args)
    info = model_info(model)
    model = model.to(f"cuda:{dev}")
    pix, tok = make_inputs(torch, info, args, f"cuda:{dev}", torch.float16)
    log(f"model {args.model_config} ({args.precision}, "
        f"{info['params'] / 1e6:.1f} M parameters), batch {args.batch}, image "
        f"{info['image_size']}, " + (f"weights {args.weights}" if args.weights
                                     else f"seeded random weights (seed {args.seed})"))

    report = base_report(torch, open_clip, args, info)
    report.update(
        gpu=dict(name=props.name, sm_count=dev_sms,
                 compute_capability=f"{props.major}.{props.minor}",
                 memory_gib=round(props.total_memory / 2**30, 1),
                 driver=drv.version(), device_index=dev),
        green_context_api=gdesc if gc else None,
        green_context_unavailable=None if gc else gdesc,
        iters=args.iters, warmup=args.warmup,
        cudnn_benchmark=args.cudnn_benchmark,
        cpu_pinned_to=core,
        methods=args.methods, towers=args.towers,
        timing="CUDA events around each call on the issuing stream, "
               "synchronised after each call; host_median_ms is wall clock",
        partitions=[])

    for req in args.sms:
        entry = dict(label=str(req), requested=req, sms=None, green_context=False,
                     results={}, errors={})
        report["partitions"].append(entry)
        if req != "all":
            if gc is None:
                entry["skipped"] = f"green contexts unavailable ({gdesc})"
                continue
            if req > dev_sms:
                entry["skipped"] = f"more SMs than the device has ({dev_sms})"
                log(f"[sms={req}] skipped: {entry['skipped']}")
                continue
        try:
            part = Partition(torch, drv, gc, req, dev, dev_sms)
        except Exception as e:
            entry["skipped"] = f"green context creation failed: {type(e).__name__}: {e}"
            log(f"[sms={req}] {entry['skipped']}")
            continue
        entry.update(sms=part.sms, green_context=part.green)
        log(f"[sms={part.label}] running on {part.sms if part.sms else '?'} SMs"
            + (" (green context)" if part.green else " (whole GPU)"))
        try:
            res, err, finite = run_partition(torch, np, model, pix, tok, part, args)
        finally:
            part.close()
        entry.update(results=res, errors=err, outputs_finite=finite)

    print_table(report)
    if args.json:
        write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
