#!/usr/bin/env python3
"""Validate mmf against open_clip, the independent reference.

Real weights cannot be downloaded here, so the model is full-size RN50
(open_clip's ``RN50-quickgelu``, the shape of OpenAI's RN50) with seeded
random weights (tools/golden.py's randomisation: He-normal convs, non-trivial
BatchNorm statistics and biases), saved exactly as open_clip's
``state_dict()`` in fp32 safetensors with no mmf metadata -- the form of the
published ``open_clip_model.safetensors`` files -- and loaded by mmf with no
conversion. Inputs are real photos and captions.

It reports, and checks against the bars of issue 6:

* embeddings: cosine of every image and text embedding (>= 0.99999 on the
  CPU backend, >= 0.999 on the GPU);
* zero-shot: top-1 agreement over the labels for every photo (100%);
* tokenizer: identical ids on >= 1000 strings (tools/gen_token_cases.py's
  generator: many scripts, emoji, HTML entities, apostrophes, digits,
  punctuation runs, overlong and empty strings);
(Preprocessing alone is checked bit for bit against open_clip by
tests/test_image.)

Usage::

    tools/validate_openclip.py [--build DIR] [--device cpu|cuda] [--out FILE]
                               [--images FILE... | --photo-dir DIR] [--cache DIR]

Exit status 0 when every check passes. Needs torch, open_clip_torch,
safetensors and Pillow (CI installs the CPU wheels).
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import time

import numpy as np
import torch

TOOLS = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(TOOLS)
sys.path.insert(0, TOOLS)

LABELS = [
    "a photo of an astronaut",
    "a photo of a cat",
    "a photo of a cup of coffee",
    "a photo of a rocket",
    "a photo of a motorcycle",
    "a photo of galaxies in deep space",
    "a photo of a man with a camera",
    "a photo of coins",
    "a photo of a brick wall",
    "a photo of grass",
    "a retina scan",
    "a page of text",
]
# Photos of scikit-image's data directory (the PyPI wheel: see CI) used with
# --photo-dir, besides the two kept in tests/images.
SKIMAGE_PHOTOS = ["astronaut.png", "coffee.png", "camera.png", "motorcycle_left.png", "hubble_deep_field.jpg",
                  "coins.png", "brick.png", "grass.png", "retina.jpg", "page.png"]


def default_images(photo_dir):
    """The real photos kept under tests/images (see its README), and those of
    scikit-image's data directory when given."""
    found = sorted(f for f in glob.glob(os.path.join(SRC, "tests", "images", "photo_*"))
                   if f.lower().endswith((".png", ".jpg")))
    if photo_dir:
        found += [os.path.join(photo_dir, f) for f in SKIMAGE_PHOTOS if os.path.exists(os.path.join(photo_dir, f))]
    return found


def save_safetensors(sd, path, metadata):
    """safetensors without the package (the GPU machine may lack it): an
    8-byte little-endian header length, the JSON header, the raw tensors."""
    import struct
    names = {torch.float32: "F32", torch.float16: "F16", torch.int64: "I64", torch.int32: "I32"}
    hdr, blobs, off = {"__metadata__": metadata}, [], 0
    for k, v in sd.items():
        b = v.detach().cpu().contiguous().numpy().tobytes()
        hdr[k] = {"dtype": names[v.dtype], "shape": list(v.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(hdr, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(path + ".tmp", path)


def make_model(path, seed, arch):
    import open_clip
    from golden import randomise

    torch.manual_seed(seed)
    model = open_clip.create_model(arch, pretrained=None)
    randomise(model)
    model.eval()
    if not os.path.exists(path):
        save_safetensors(model.state_dict(), path, {"format": "pt"})
    return model


def ids_of(tokenizer, s):
    """open_clip's ids up to EOT (id 0 is '!', not only padding)."""
    row = [int(x) for x in tokenizer([s])[0]]
    return row[: max(i for i, v in enumerate(row) if v == 49407) + 1]


def cosine(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def run(cmd, **kw):
    t0 = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        sys.stderr.write(f"validate: {' '.join(cmd[:4])} ... failed ({r.returncode}):\n{r.stdout}{r.stderr}")
        sys.exit(1)
    return r, time.time() - t0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=".", help="build directory holding mmf-bench [.]")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--cache", default=os.environ.get("MMF_CACHE", "/tmp/mmf-cache"))
    ap.add_argument("--images", nargs="*", help="photos (default: the real photos in tests/images)")
    ap.add_argument("--photo-dir", help="scikit-image's skimage/data directory: adds its photos")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--arch", default="RN50-quickgelu", choices=["RN50-quickgelu", "RN101-quickgelu"],
                    help="open_clip architecture (the OpenAI RN50 or RN101 shape) [RN50-quickgelu]")
    ap.add_argument("--out", help="write the report as JSON here")
    a = ap.parse_args(argv)

    import open_clip

    bench = os.path.join(a.build, "mmf-bench")
    vocab = os.path.join(SRC, "data", "bpe_simple_vocab_16e6.txt.gz")
    os.makedirs(a.cache, exist_ok=True)
    mpath = os.path.join(a.cache, f"validate-{a.arch.lower()}-seed{a.seed}.safetensors")
    print(f"model: {a.arch}, seeded random weights (seed {a.seed}) -> {mpath}", flush=True)
    model = make_model(mpath, a.seed, a.arch)
    _, preprocess = open_clip.create_model_and_transforms(a.arch, pretrained=None)[0:3:2]
    tokenizer = open_clip.get_tokenizer(a.arch)
    images = a.images if a.images else default_images(a.photo_dir)
    if not images:
        sys.exit("validate: no photos found under tests/images; pass --images")
    report = {"device": a.device, "model": f"{a.arch} seeded random (seed {a.seed})", "open_clip": open_clip.__version__,
              "torch": torch.__version__, "images": [], "texts": []}
    ok = True

    # --- reference
    from PIL import Image
    with torch.no_grad():
        # convert("RGB") first, as mmf decodes (open_clip's transform would
        # otherwise see gray or palette images as they are: docs/IMAGES.md)
        px = torch.stack([preprocess(Image.open(p).convert("RGB")) for p in images])
        ref_img = model.encode_image(px)
        ref_txt = model.encode_text(tokenizer(LABELS))
        ref_img = ref_img / ref_img.norm(dim=-1, keepdim=True)
        ref_txt = ref_txt / ref_txt.norm(dim=-1, keepdim=True)
        ref_logits = model.logit_scale.exp() * ref_img @ ref_txt.T

    # --- mmf, in process through mmf-bench
    js = os.path.join(a.cache, f"validate-{a.device}.json")
    cmd = [bench, "--model", mpath, "--device", a.device, "--vocab", vocab, "--json", js]
    for p in images:
        cmd += ["--image", p]
    for t in LABELS:
        cmd += ["--text", t]
    r, dt = run(cmd)
    print(f"mmf-bench ({a.device}): {len(images)} images x {len(LABELS)} texts in {dt:.1f} s", flush=True)
    got = json.load(open(js))
    bar = 0.99999 if a.device == "cpu" else 0.999
    for i, p in enumerate(images):
        c = cosine(got["images"][i]["embedding"], ref_img[i].numpy())
        top_ref = int(ref_logits[i].argmax())
        top_mmf = int(np.argmax(got["images"][i]["logits"]))
        srt = sorted(ref_logits[i].tolist(), reverse=True)
        # random weights make every photo prefer the same label, so the whole
        # ranking is compared too (reported; the bar is top-1)
        rank_same = list(np.argsort(-ref_logits[i].numpy(), kind="stable")) == \
            list(np.argsort(-np.asarray(got["images"][i]["logits"]), kind="stable"))
        max_dlogit = float(np.max(np.abs(ref_logits[i].numpy() - np.asarray(got["images"][i]["logits"]))))
        report["images"].append({"path": os.path.relpath(p, SRC) if p.startswith(SRC) else os.path.basename(p),
                                 "cosine": c, "top1_open_clip": LABELS[top_ref], "top1_mmf": LABELS[top_mmf],
                                 "margin_logit": srt[0] - srt[1], "ranking_identical": rank_same,
                                 "max_abs_logit_diff": max_dlogit})
        good = c >= bar and top_ref == top_mmf
        ok &= good
        print(f"  image {os.path.basename(p):24s} 1-cos {1 - c:9.2e}  top-1 '{LABELS[top_mmf]}' "
              f"{'=' if top_ref == top_mmf else '!='} open_clip (margin {srt[0] - srt[1]:.3f}), ranking "
              f"{'identical' if rank_same else 'differs'}, max |dlogit| {max_dlogit:.1e} {'ok' if good else 'FAIL'}")
    for j, t in enumerate(LABELS):
        c = cosine(got["texts"][j]["embedding"], ref_txt[j].numpy())
        ids_ok = got["texts"][j]["tokens"] == ids_of(tokenizer, t)
        report["texts"].append({"text": t, "cosine": c, "tokens_identical": ids_ok})
        good = c >= bar and ids_ok
        ok &= good
        print(f"  text  {t:34s} 1-cos {1 - c:9.2e}  ids {'identical' if ids_ok else 'DIFFER'} {'ok' if good else 'FAIL'}")
    agree = sum(1 for x in report["images"] if x["top1_open_clip"] == x["top1_mmf"])
    report["zero_shot_top1_agreement"] = agree / len(images)
    report["min_cosine_image"] = min(x["cosine"] for x in report["images"])
    report["min_cosine_text"] = min(x["cosine"] for x in report["texts"])
    report["cosine_bar"] = bar
    report["rankings_identical"] = sum(1 for x in report["images"] if x["ranking_identical"])

    # --- tokenizer on many strings: those of tests/golden/tokens.txt (made by
    # tools/gen_token_cases.py), tokenized here by open_clip afresh
    strings = []
    with open(os.path.join(SRC, "tests", "golden", "tokens.txt"), encoding="ascii") as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            strings.append(bytes.fromhex(line.split("\t")[0]).decode("utf-8"))
    tj = os.path.join(a.cache, "validate-strings.json")
    with open(tj, "w", encoding="utf-8") as f:
        json.dump(strings, f, ensure_ascii=True)
    tout = os.path.join(a.cache, "validate-tokens.json")
    run([bench, "--tokenize", "--vocab", vocab, "--texts-json", tj, "--json", tout])
    mine = json.load(open(tout))
    same = 0
    first_bad = []
    for s, m in zip(strings, mine):
        try:
            want = ids_of(tokenizer, s)
        except Exception as e:  # noqa: BLE001 -- open_clip rejecting a string: mmf must too
            want = None
            if "error" in m:
                same += 1
                continue
            want = f"open_clip raises {type(e).__name__}"
        if m.get("ids") == want:
            same += 1
        elif len(first_bad) < 5:
            first_bad.append({"text": s, "open_clip": want, "mmf": m.get("ids", m.get("error"))})
    report["tokenizer"] = {"strings": len(strings), "identical": same, "first_differences": first_bad}
    tok_ok = same == len(strings) and len(strings) >= 1000
    ok &= tok_ok
    print(f"tokenizer: {same}/{len(strings)} strings identical {'ok' if tok_ok else 'FAIL'}")
    for b in first_bad:
        print(f"  differs: {b['text']!r}: open_clip {b['open_clip'][:12]} mmf {str(b['mmf'])[:80]}")

    print(f"zero-shot top-1 agreement {agree}/{len(images)} (whole ranking identical {report['rankings_identical']}/"
          f"{len(images)}); min cosine image {report['min_cosine_image']:.7f}, "
          f"text {report['min_cosine_text']:.7f} (bar {bar})")
    return finish(report, ok, a.out, "validate")


def finish(report, ok, out, name):
    """Writes the report (with its verdict) to out, says so; the exit status."""
    report["passed"] = bool(ok)
    if out:
        with open(out, "w") as f:
            json.dump(report, f, indent=1)
        print(f"report written to {out}")
    print(f"{name}: " + ("all checks passed" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
