#!/usr/bin/env python3
"""Generate golden reference files for the mmf CLIP inference engine.

What it generates
-----------------
For each configuration (``tiny``, ``small``) this script builds an open_clip
``CLIP`` model with an OpenAI ``ModifiedResNet`` image tower and the standard
causal text transformer, with QuickGELU (i.e. shaped like open_clip's
``RN50-quickgelu``, only much narrower), fills it with seeded random weights,
runs fixed inputs through it on the CPU in float32 and writes:

``<out>/<cfg>.safetensors``
    The model's ``state_dict()`` exactly as open_clip names it
    (``visual.conv1.weight``, ``visual.layer1.0.downsample.0.weight``,
    ``visual.attnpool.q_proj.weight``,
    ``transformer.resblocks.0.attn.in_proj_weight``, ``token_embedding.weight``,
    ``text_projection``, ``logit_scale``, ... including the int64 0-d
    ``num_batches_tracked`` BatchNorm buffers).  Metadata::

        {"format": "pt", "mmf.vision_heads": "<n>", "mmf.text_heads": "<n>",
         "mmf.act": "quickgelu"}

    ``tiny`` is stored as float32.  ``small`` is stored as float16 to keep the
    file small; every floating tensor of the model is rounded to fp16 and back
    to fp32 *before* the reference run, so the reference outputs are computed
    from exactly the stored values (the forward pass itself is float32).

``<out>/<cfg>_io.safetensors``
    Inputs and reference outputs.  Metadata::

        {"format": "pt", "config": "<cfg>", "open_clip": "<ver>", "torch": "<ver>"}

    - ``pixels``            float32 [2, 3, S, S]  NCHW, Gaussian, already in
                            "normalised" space (see below)
    - ``tokens``            int32   [3, 77]       SOT=vocab-2, random ids in
                            [1, vocab-3], EOT=vocab-1, zero padding; rows have
                            lengths 5, 20 and 77 (SOT and EOT included), so the
                            last row has EOT at position 76.  open_clip pools
                            at argmax(token id), which is the EOT position.
    - ``image_features``    float32 [2, embed_dim]  ``model.encode_image(pixels)``
    - ``text_features``     float32 [3, embed_dim]  ``model.encode_text(tokens.long())``
    - ``logits_per_image``  float32 [2, 3]  ``logit_scale.exp() * norm(img) @ norm(txt).T``

    (Features are *not* L2-normalised.)

Configurations
--------------
=====================  ============  ============
                       tiny          small
=====================  ============  ============
image_size             64            224
vision layers          (1,1,1,1)     (3,4,6,3)
vision width           8             8
vision heads           4             4            (= width*32/head_width, head_width 64)
embed_dim              64            64
context_length         77            77
vocab_size             1000          1000
text width/heads       64 / 2        64 / 2
text layers            2             12
stored dtype           float32       float16
seed                   1001          1002
=====================  ============  ============

Seeded weights
--------------
``torch.manual_seed(seed)`` is set before the model is built, so open_clip's
own initialisation (random linear / embedding / attnpool weights and
``text_projection``) is reproducible.  On top of that, so that BatchNorm
folding, LayerNorm affine and biases are really exercised and the image signal
survives to the output:

- every image-tower Conv2d: re-initialised He/Kaiming normal
  (std = sqrt(2 / fan_in)).  With PyTorch's default conv init each
  conv+ReLU shrinks the activations ~2.5x, so after the stem the random BN
  biases dominate and the two test images gave attnpool outputs differing by
  < 0.1 % (a broken conv would go unnoticed);
- every BatchNorm2d: weight ~ U(0.5, 1.5), bias ~ N(0, 0.1),
  running_mean ~ N(0, 0.1), running_var ~ U(0.5, 2.0)
  (``num_batches_tracked`` is left as the int64 0-d tensor 0 that open_clip
  creates);
- Bottleneck ``bn3.weight`` (zero-initialised by open_clip) is then redrawn
  from U(0.1, 0.3): with U(0.5, 1.5) and the He init the residual stream of
  ``small`` grows to max |x| ~ 450 / std ~ 60 by layer4; with U(0.1, 0.3)
  the per-stage max |x| (printed by this script) stays below ~30 for
  ``tiny`` and ~7 for ``small``;
- every LayerNorm: weight ~ U(0.8, 1.2), bias ~ N(0, 0.05);
- every nn.Linear bias (attnpool q/k/v/c_proj, attention out_proj, MLP c_fc /
  c_proj) and every MultiheadAttention ``in_proj_bias``: N(0, 0.02);
- ``logit_scale`` keeps open_clip's init, ln(1/0.07) (fp16-rounded for small).

Inputs come from a separate ``torch.Generator`` seeded with ``seed + 100``.
``pixels`` are Gaussian but not i.i.d. N(0,1): each image/channel gets its own
mean ~ N(0, 0.5) and std ~ U(0.5, 1.5) applied to 0.6 * white noise +
0.8 * a bilinearly upsampled 4x4 N(0,1) field, so the two images differ in
global statistics and spatial layout (i.i.d. noise images are nearly
indistinguishable after global pooling).  Even so, a deep random ReLU net
maps most inputs to similar directions: for ``small`` the two
image_features have cosine similarity ~0.997 (they still differ by up to
~0.12 per element, far above float32 test tolerances).

Determinism
-----------
Everything runs on the CPU with ``torch.set_num_threads(1)`` and
``torch.use_deterministic_algorithms(True)``.  safetensors (Rust) writes the
``__metadata__`` map in hash order, which differs from process to process, so
after each ``save_file`` the header is rewritten in place with the metadata keys
sorted (same length, tensor entries and data untouched).  Running the script
twice produces byte-identical files.

How to run
----------
::

    pip install torch open_clip_torch safetensors numpy
    python3 tools/golden.py                     # both configs -> tests/golden/
    python3 tools/golden.py --config tiny
    python3 tools/golden.py --out /tmp/golden --config small

Versions used to produce the committed files: open_clip_torch 3.3.0,
torch 2.15.0 (+cu132 wheel, run on CPU), safetensors 0.8.0, numpy 2.4.6,
Python 3.11.7.  Other versions should give equal results up to float rounding
(the exact versions are recorded in each ``*_io.safetensors`` metadata).
"""

import argparse
import json
import os
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

import open_clip
from open_clip.model import CLIP
from open_clip.modified_resnet import Bottleneck, ModifiedResNet

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO_ROOT, "tests", "golden")

VOCAB = 1000
CTX = 77
B_IMG = 2
TOKEN_LENGTHS = (5, 20, 77)  # including SOT and EOT

CONFIGS = {
    "tiny": dict(
        seed=1001,
        embed_dim=64,
        vision=dict(layers=(1, 1, 1, 1), width=8, image_size=64, head_width=64),
        text=dict(context_length=CTX, vocab_size=VOCAB, width=64, heads=2, layers=2),
        store_dtype=torch.float32,
    ),
    "small": dict(
        seed=1002,
        embed_dim=64,
        vision=dict(layers=(3, 4, 6, 3), width=8, image_size=224, head_width=64),
        text=dict(context_length=CTX, vocab_size=VOCAB, width=64, heads=2, layers=12),
        store_dtype=torch.float16,
    ),
}


def build_model(cfg):
    model = CLIP(
        embed_dim=cfg["embed_dim"],
        vision_cfg=dict(cfg["vision"]),
        text_cfg=dict(cfg["text"]),
        quick_gelu=True,
    )
    v = model.visual
    assert isinstance(v, ModifiedResNet), type(v)
    exp_heads = cfg["vision"]["width"] * 32 // cfg["vision"]["head_width"]
    assert v.attnpool.num_heads == exp_heads == 4, v.attnpool.num_heads
    assert model.transformer.resblocks[0].attn.num_heads == cfg["text"]["heads"]
    assert isinstance(model.text_projection, nn.Parameter)
    assert type(model.transformer.resblocks[0].mlp.gelu).__name__ == "QuickGELU"
    return model


@torch.no_grad()
def randomise(model):
    """Make BN / LN / biases non-trivial (uses the global, seeded RNG)."""
    # Image tower convs: He/Kaiming normal (fan_in, ReLU gain) instead of
    # PyTorch's default kaiming_uniform(a=sqrt(5)), which shrinks the signal
    # ~sqrt(6)x per conv+ReLU so that the BN biases dominate and both images
    # give the same features (see module docstring).
    for m in model.visual.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
    for name, m in model.named_modules():
        if isinstance(m, nn.BatchNorm2d):
            m.weight.uniform_(0.5, 1.5)
            m.bias.normal_(0.0, 0.1)
            m.running_mean.normal_(0.0, 0.1)
            m.running_var.uniform_(0.5, 2.0)
        elif isinstance(m, nn.LayerNorm):
            m.weight.uniform_(0.8, 1.2)
            m.bias.normal_(0.0, 0.05)
        elif isinstance(m, nn.Linear):
            if m.bias is not None:
                m.bias.normal_(0.0, 0.02)
        elif isinstance(m, nn.MultiheadAttention):
            if m.in_proj_bias is not None:
                m.in_proj_bias.normal_(0.0, 0.02)
    # Residual-branch gain: bn3 (zero-initialised by open_clip) is scaled down,
    # otherwise the residual stream of `small` grows to ~450 by layer4.
    for m in model.visual.modules():
        if isinstance(m, Bottleneck):
            m.bn3.weight.uniform_(0.1, 0.3)
    # sanity: nothing that should be random is all zeros
    ap = model.visual.attnpool
    for t in (model.text_projection, ap.q_proj.weight, ap.k_proj.weight,
              ap.v_proj.weight, ap.c_proj.weight, ap.positional_embedding):
        assert t.abs().max() > 0
    for name, p in model.named_parameters():
        assert p.abs().max() > 0, f"{name} is all zeros"


@torch.no_grad()
def round_to(model, dtype):
    """Round every floating state-dict tensor to `dtype` and back, in place."""
    for t in model.state_dict().values():
        if t.is_floating_point():
            t.copy_(t.to(dtype).to(t.dtype))


def make_inputs(cfg):
    g = torch.Generator().manual_seed(cfg["seed"] + 100)
    s = cfg["vision"]["image_size"]
    # Gaussian pixels with per-image/per-channel mean and std plus a
    # low-frequency component (4x4 N(0,1) field, bilinearly upsampled), so the
    # two images differ in their global statistics and spatial layout.  Plain
    # i.i.d. N(0,1) images have the same global statistics; after the global
    # attention pooling their features had cosine similarity 0.993-0.999.
    white = torch.randn(B_IMG, 3, s, s, generator=g)
    low = torch.randn(B_IMG, 3, 4, 4, generator=g)
    low = F.interpolate(low, size=(s, s), mode="bilinear", align_corners=False)
    mean = 0.5 * torch.randn(B_IMG, 3, 1, 1, generator=g)
    std = torch.empty(B_IMG, 3, 1, 1).uniform_(0.5, 1.5, generator=g)
    pixels = (mean + std * (0.6 * white + 0.8 * low)).to(torch.float32).contiguous()
    sot, eot = VOCAB - 2, VOCAB - 1
    tokens = torch.zeros(len(TOKEN_LENGTHS), CTX, dtype=torch.int32)
    for r, n in enumerate(TOKEN_LENGTHS):
        assert 2 <= n <= CTX
        tokens[r, 0] = sot
        tokens[r, 1:n - 1] = torch.randint(1, VOCAB - 2, (n - 2,), generator=g,
                                           dtype=torch.int64).to(torch.int32)
        tokens[r, n - 1] = eot
    assert int(tokens[:, 1:].max()) <= eot
    assert all(int(tokens[r].argmax()) == n - 1 for r, n in enumerate(TOKEN_LENGTHS))
    return pixels, tokens


def stage_hooks(model):
    """Forward hooks recording max |activation| per module of interest."""
    stats = {}
    handles = []
    v = model.visual

    def rec(key):
        def hook(_m, _inp, out):
            if isinstance(out, tuple):
                out = out[0]
            stats[key] = max(stats.get(key, 0.0), float(out.abs().max()))
        return hook

    handles.append(v.avgpool.register_forward_hook(rec("visual.stem")))
    for li in range(1, 5):
        layer = getattr(v, f"layer{li}")
        for bi, blk in enumerate(layer):
            assert isinstance(blk, Bottleneck)
            handles.append(blk.register_forward_hook(rec(f"visual.layer{li}.{bi}")))
    handles.append(v.attnpool.register_forward_hook(rec("visual.attnpool")))
    handles.append(model.token_embedding.register_forward_hook(rec("text.token_embedding")))
    for bi, blk in enumerate(model.transformer.resblocks):
        handles.append(blk.register_forward_hook(rec(f"text.resblocks.{bi}")))
    handles.append(model.ln_final.register_forward_hook(rec("text.ln_final")))
    return stats, handles


def canonicalise_header(path):
    """Rewrite the safetensors JSON header with sorted __metadata__ keys.

    safetensors serialises the metadata map in (per-process random) hash order;
    this makes the file bytes reproducible.  Header length is unchanged.
    """
    with open(path, "r+b") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        raw = f.read(n)
        text = raw.decode("utf-8")
        stripped = text.rstrip(" ")
        hdr = json.loads(stripped)
        meta = hdr.get("__metadata__")
        if meta is None:
            return
        new = {"__metadata__": dict(sorted(meta.items()))}
        for k, val in hdr.items():
            if k != "__metadata__":
                new[k] = val
        out = json.dumps(new, separators=(",", ":"), ensure_ascii=False)
        assert json.loads(out) == hdr
        assert len(out.encode("utf-8")) == len(stripped.encode("utf-8")), \
            "header re-serialisation changed its length"
        out = out.encode("utf-8") + b" " * (n - len(out.encode("utf-8")))
        assert len(out) == n
        f.seek(8)
        f.write(out)


def save(tensors, path, metadata):
    from safetensors.torch import save_file  # here: importing randomise() must not need it
    save_file(tensors, path, metadata=metadata)
    canonicalise_header(path)


def human(nbytes):
    return f"{nbytes} B ({nbytes / 1024:.1f} KiB)"


@torch.no_grad()
def generate(name, out_dir):
    cfg = CONFIGS[name]
    torch.manual_seed(cfg["seed"])
    model = build_model(cfg)
    randomise(model)
    model.eval()
    store_dtype = cfg["store_dtype"]
    if store_dtype != torch.float32:
        round_to(model, store_dtype)

    pixels, tokens = make_inputs(cfg)

    stats, handles = stage_hooks(model)
    img = model.encode_image(pixels)
    txt = model.encode_text(tokens.long())
    for h in handles:
        h.remove()
    logits = model.logit_scale.exp() * F.normalize(img, dim=-1) @ F.normalize(txt, dim=-1).T

    # cross-check against open_clip's own logit path
    ref_logits, _ = model.get_logits(pixels, tokens.long())
    assert torch.allclose(ref_logits, logits, rtol=1e-5, atol=1e-5)
    for t in (img, txt, logits):
        assert torch.isfinite(t).all()
    assert img.shape == (B_IMG, cfg["embed_dim"])
    assert txt.shape == (len(TOKEN_LENGTHS), cfg["embed_dim"])

    # ---- weights file
    sd = model.state_dict()
    weights = {}
    for k, t in sd.items():
        t = t.detach()
        if t.is_floating_point():
            t = t.to(store_dtype)
        weights[k] = t.contiguous().clone()
    if store_dtype != torch.float32:  # stored values == values used for the run
        for k, t in sd.items():
            if t.is_floating_point():
                assert torch.equal(weights[k].float(), t), k
    vision_heads = model.visual.attnpool.num_heads
    text_heads = model.transformer.resblocks[0].attn.num_heads
    w_path = os.path.join(out_dir, f"{name}.safetensors")
    save(weights, w_path, {
        "format": "pt",
        "mmf.vision_heads": str(vision_heads),
        "mmf.text_heads": str(text_heads),
        "mmf.act": "quickgelu",
    })

    # ---- io file
    io = {
        "pixels": pixels.contiguous(),
        "tokens": tokens.contiguous(),
        "image_features": img.float().contiguous(),
        "text_features": txt.float().contiguous(),
        "logits_per_image": logits.float().contiguous(),
    }
    io_path = os.path.join(out_dir, f"{name}_io.safetensors")
    save(io, io_path, {
        "format": "pt",
        "config": name,
        "open_clip": open_clip.__version__,
        "torch": torch.__version__,
    })

    # ---- report
    n_params = sum(p.numel() for p in model.parameters())
    print(f"== {name}: seed {cfg['seed']}, stored {str(store_dtype).replace('torch.', '')}")
    print(f"   parameters: {n_params}  (state_dict tensors: {len(sd)}, "
          f"elements incl. buffers: {sum(t.numel() for t in sd.values())})")
    print(f"   heads: vision {vision_heads}, text {text_heads}; "
          f"logit_scale {float(model.logit_scale):.6f} (exp {float(model.logit_scale.exp()):.4f})")
    print(f"   {os.path.relpath(w_path)}: {human(os.path.getsize(w_path))}")
    print(f"   {os.path.relpath(io_path)}: {human(os.path.getsize(io_path))}")
    print(f"   |image_features| per row: {[round(x, 4) for x in img.norm(dim=-1).tolist()]}")
    print(f"   |text_features|  per row: {[round(x, 4) for x in txt.norm(dim=-1).tolist()]}")
    cos_i = F.normalize(img, dim=-1) @ F.normalize(img, dim=-1).T
    cos_t = F.normalize(txt, dim=-1) @ F.normalize(txt, dim=-1).T
    print(f"   cos(img0, img1): {float(cos_i[0, 1]):.4f};  cos(txt_i, txt_j): "
          f"{[round(float(cos_t[i, j]), 4) for i, j in ((0, 1), (0, 2), (1, 2))]}")
    print(f"   logits_per_image: {[[round(x, 3) for x in r] for r in logits.tolist()]}")
    print("   max |activation| per stage:")
    for k, val in stats.items():
        print(f"     {k:26s} {val:10.4f}")
    assert all(val == val and val < 1e4 for val in stats.values()), "activations blew up"


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Write seeded-random open_clip RN-quickgelu CLIP weights "
                    "(<cfg>.safetensors) and reference inputs/outputs "
                    "(<cfg>_io.safetensors) for the mmf golden tests.")
    ap.add_argument("--out", default=DEFAULT_OUT,
                    help="output directory (default: <repo>/tests/golden)")
    ap.add_argument("--config", choices=["tiny", "small", "all"], default="all",
                    help="which configuration to generate (default: all)")
    args = ap.parse_args(argv)

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    os.makedirs(args.out, exist_ok=True)
    print(f"open_clip {open_clip.__version__}, torch {torch.__version__}")
    names = list(CONFIGS) if args.config == "all" else [args.config]
    for name in names:
        generate(name, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
