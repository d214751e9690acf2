#!/usr/bin/env python3
"""INT8 weights against fp16: embeddings and zero-shot decisions (issue 8).

Same model and inputs as tools/validate_openclip.py: full-size RN50
(open_clip RN50-quickgelu shape) with seeded random weights, real photos,
captions. mmf-bench runs them twice on one device, ``--weights fp16`` and
``--weights int8`` (on the CPU backend, fp16 means the float model and int8
its dequantised int8 weights), and this compares the two runs:

* cosine of every image and text embedding (bar >= 0.995);
* zero-shot top-1 agreement (bar >= 98%), over two kinds of decisions:
  each image's most likely caption, and each caption's most likely image.

The photos are used as they are and flipped, rotated and cropped (written as
PNG to the cache), which gives four times as many image inputs. With random
weights many decisions are near-ties, so the logit margin of every decision
that differs is reported with it.

Usage::

    tools/int8_accuracy.py [--build DIR] [--device cpu|cuda] [--photo-dir DIR]
                           [--out FILE] [--cache DIR]

Needs torch and open_clip_torch (to write the seeded model) and Pillow.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

TOOLS = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(TOOLS)
sys.path.insert(0, TOOLS)

from torch_baseline import commit  # noqa: E402
from validate_openclip import LABELS, cosine, default_images, finish, make_model, run  # noqa: E402

CAPTIONS = LABELS + [
    "a black and white photo", "a close-up photo of an animal", "a photo of the night sky",
    "a photo of a street", "a drawing of a house", "a photo of a person smiling",
    "a photo of a red car", "a photo of a dog playing", "a photo of a bowl of fruit",
    "a microscope image of cells", "a satellite image of a city", "a photo of the moon",
    "a photo of a tree in autumn", "a photo of a mountain lake", "a photo of a painting",
    "a photo taken at a rocket launch", "an x-ray image", "a photo of a computer chip",
    "a blurry photo", "a photo of a pile of money", "a photo of a chessboard",
    "a photo of a coffee shop", "a close-up photo of a flower", "a photo of an old building",
]



def gpu_name():
    """'NVIDIA H200, 132 SMs' (the whole GPU: mmf-bench --device cuda here uses all SMs)."""
    try:
        import torch
        p = torch.cuda.get_device_properties(0)
        return f"{p.name}, {p.multi_processor_count} SMs"
    except Exception:  # noqa: BLE001 -- informational only
        r = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True)
        return r.stdout.strip() or "unknown"


def variants(paths, cache):
    """The photos plus a flipped, a rotated and a centre-cropped copy of each."""
    from PIL import Image, ImageOps
    out = []
    d = os.path.join(cache, "int8-variants")
    os.makedirs(d, exist_ok=True)
    for p in paths:
        out.append(p)
        im = Image.open(p).convert("RGB")
        w, h = im.size
        base = os.path.splitext(os.path.basename(p))[0]
        for tag, v in (("flip", ImageOps.mirror(im)), ("rot90", im.rotate(90, expand=True)),
                       ("crop", im.crop((w // 6, h // 6, w - w // 6, h - h // 6)))):
            q = os.path.join(d, f"{base}-{tag}.png")
            v.save(q)
            out.append(q)
    return out


def bench(a, mpath, images, weights, device=None):
    device = device or a.device
    js = os.path.join(a.cache, f"int8-accuracy-{device}-{weights}.json")
    cmd = [os.path.join(a.build, "mmf-bench"), "--model", mpath, "--device", device, "--weights", weights,
           "--vocab", os.path.join(SRC, "data", "bpe_simple_vocab_16e6.txt.gz"), "--json", js]
    for p in images:
        cmd += ["--image", p]
    for t in CAPTIONS:
        cmd += ["--text", t]
    r, dt = run(cmd)
    print(f"mmf-bench --device {device} --weights {weights}: {len(images)} images x {len(CAPTIONS)} texts "
          f"in {dt:.1f} s", flush=True)
    return json.load(open(js))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=".", help="build directory holding mmf-bench [.]")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--cache", default=os.environ.get("MMF_CACHE", "/tmp/mmf-cache"))
    ap.add_argument("--photo-dir", help="scikit-image's skimage/data directory: adds its photos")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", help="write the report as JSON here")
    a = ap.parse_args(argv)
    os.makedirs(a.cache, exist_ok=True)
    mpath = os.path.join(a.cache, f"validate-rn50-quickgelu-seed{a.seed}.safetensors")
    print(f"model: RN50-quickgelu, seeded random weights (seed {a.seed}) -> {mpath}", flush=True)
    make_model(mpath, a.seed, "RN50-quickgelu")
    photos = default_images(a.photo_dir)
    if not photos:
        sys.exit("int8_accuracy: no photos found")
    images = variants(photos, a.cache)
    ref, q = bench(a, mpath, images, "fp16"), bench(a, mpath, images, "int8")
    E = lambda js, kind: np.asarray([x["embedding"] for x in js[kind]], dtype=np.float64)  # noqa: E731
    ri, rt, qi, qt = E(ref, "images"), E(ref, "texts"), E(q, "images"), E(q, "texts")
    cos_i = [cosine(qi[k], ri[k]) for k in range(len(images))]
    cos_t = [cosine(qt[k], rt[k]) for k in range(len(CAPTIONS))]
    # decisions: image -> caption, caption -> image (logits up to the common scale)
    lr, lq = ri @ rt.T, qi @ qt.T
    rel = lambda p: os.path.relpath(p, SRC) if p.startswith(SRC) else os.path.basename(p)  # noqa: E731
    diffs, margins, same = [], [], []
    agree = total = 0
    for kind, R, Q, names in (("image->caption", lr, lq, CAPTIONS), ("caption->image", lr.T, lq.T, images)):
        for k in range(R.shape[0]):
            a_ref, a_q = int(np.argmax(R[k])), int(np.argmax(Q[k]))
            s = np.sort(R[k])[::-1]
            total += 1
            margins.append(float(s[0] - s[1]))
            same.append(a_ref == a_q)
            if a_ref == a_q:
                agree += 1
                continue
            diffs.append({"kind": kind, "input": k, "fp16": rel(str(names[a_ref])), "int8": rel(str(names[a_q])),
                          "fp16_cosine_margin": float(s[0] - s[1])})
    # How close the decisions are: random weights put every embedding near
    # every other, so a decision's margin is often below the int8 noise.
    margins, same = np.asarray(margins), np.asarray(same)
    by_margin = {f"{t:g}": {"decisions": int((margins >= t).sum()), "agree": int(same[margins >= t].sum())}
                 for t in (1e-4, 1e-3, 1e-2)}
    # On the GPU, the same decisions of fp16 against the CPU's float32: how
    # often fp16 rounding alone flips them (the noise floor int8 adds to).
    floor = None
    if a.device == "cuda":
        c = bench(a, mpath, images, "fp16", "cpu")
        ci, ct = E(c, "images"), E(c, "texts")
        lc = ci @ ct.T
        fa = sum(int(np.argmax(lr[k]) == np.argmax(lc[k])) for k in range(lr.shape[0])) + \
            sum(int(np.argmax(lr.T[k]) == np.argmax(lc.T[k])) for k in range(lr.shape[1]))
        floor = {"decisions": total, "fp16_gpu_vs_fp32_cpu_agree": fa,
                 "min_cosine_image": min(cosine(ri[k], ci[k]) for k in range(len(images))),
                 "min_cosine_text": min(cosine(rt[k], ct[k]) for k in range(len(CAPTIONS)))}
    report = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "commit": commit(),
        "gpu": gpu_name() if a.device == "cuda" else None,
        "device": a.device, "model": f"RN50-quickgelu seeded random (seed {a.seed})",
        "reference": "mmf --weights fp16" if a.device == "cuda" else "mmf CPU float32 (--weights fp16)",
        "images": [{"path": rel(p), "cosine": c} for p, c in zip(images, cos_i)],
        "texts": [{"text": t, "cosine": c} for t, c in zip(CAPTIONS, cos_t)],
        "min_cosine_image": min(cos_i), "min_cosine_text": min(cos_t), "mean_cosine_image": float(np.mean(cos_i)),
        "mean_cosine_text": float(np.mean(cos_t)), "cosine_bar": 0.995,
        "top1_decisions": total, "top1_agree": agree, "top1_agreement": agree / total, "top1_bar": 0.98,
        "fp16_margin_median": float(np.median(margins)), "agreement_by_fp16_margin": by_margin,
        "differing_decisions": diffs, "fp16_noise_floor": floor, "margin_note": "margins are differences of cosine similarity (logits before the scale)",
    }
    ok = min(cos_i) >= 0.995 and min(cos_t) >= 0.995 and agree / total >= 0.98
    print(f"embeddings, int8 vs fp16: min cosine image {min(cos_i):.5f} (mean {np.mean(cos_i):.5f}, "
          f"{len(images)} images), text {min(cos_t):.5f} (mean {np.mean(cos_t):.5f}, {len(CAPTIONS)} texts); bar 0.995")
    print(f"zero-shot top-1 agreement: {agree}/{total} = {100 * agree / total:.1f}% (bar 98%); median fp16 margin "
          f"{np.median(margins):.1e}; " + ", ".join(f"margin >= {t}: {v['agree']}/{v['decisions']}" for t, v in by_margin.items()))
    if floor:
        print(f"noise floor: fp16 (GPU) vs float32 (CPU) agree on {floor['fp16_gpu_vs_fp32_cpu_agree']}/{total} decisions")
    for d in diffs:
        print(f"  differs: {d['kind']} #{d['input']}: fp16 '{d['fp16']}' int8 '{d['int8']}' "
              f"(fp16 margin {d['fp16_cosine_margin']:.2e})")
    return finish(report, ok, a.out, "int8_accuracy")


if __name__ == "__main__":
    sys.exit(main())
