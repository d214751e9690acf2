#!/usr/bin/env python3
"""Writes tests/images/: test images of every kind engine/image.c decodes,
with what the Python reference makes of them, for tests/test_image.c.

  decoded RGB:   PIL.Image.open(f).convert("RGB")
  preprocessed:  open_clip's eval transform applied to that RGB image
                 (open_clip.create_model_and_transforms('RN50')[2] for
                 s = 224, open_clip.image_transform(s, is_train=False) for
                 the other sizes, which is the same code with another size)

Needs PIL, numpy, torch, torchvision and open_clip; run on a developer
machine, not in CI. The outputs are committed. Usage:

  python3 tools/gen_image_cases.py [--photos DIR] [--out tests/images]

--photos names a directory holding rocket.jpg and chelsea.png from
scikit-image's skimage/data (see tests/images/README for source and
licence); without it the photo cases are kept as they are.

Expected outputs are raw little-endian arrays compressed with zlib
(*.rgb.z: h*w*3 uint8; *.f32.z: 3*s*s float32), listed in cases.txt.
The generator also checks its own premises and stops if one fails:
open_clip's tensor equals (u8/255 - mean)/std of a uint8 crop in float32
bit for bit, and RN50's transform is image_transform(224).
"""
import argparse
import io
import os
import shutil
import struct
import sys
import zlib

import numpy as np
import torch
from PIL import Image

import open_clip
from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD

RNG = np.random.default_rng(20261126)


# ---------------------------------------------------------------- content

def scene(w, h, seed=0):
    """Smooth colour gradients, a few hard edges and some noise: enough
    structure that JPEG, subsampling and the resize filter all matter."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    u, v = x / max(w - 1, 1), y / max(h - 1, 1)
    r = 255 * (0.5 + 0.5 * np.sin(6.0 * u + 2.0 * v))
    g = 255 * v
    b = 255 * (0.5 + 0.5 * np.cos(9.0 * u * v + 1.0))
    img = np.stack([r, g, b], -1)
    img[(x // 7 + y // 5) % 2 == 0] *= 0.8          # checker edges
    img[int(h * 0.3):int(h * 0.6) + 1, int(w * 0.2):int(w * 0.5) + 1] = [250, 20, 30]
    img += rng.normal(0, 12, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def scene16(w, h, seed=0):
    """16-bit samples whose high and low bytes both vary."""
    a = scene(w, h, seed).astype(np.uint32) * 257
    a += np.random.default_rng(seed + 1).integers(0, 256, a.shape, dtype=np.uint32)
    return np.clip(a, 0, 65535).astype(np.uint16)


# ---------------------------------------------------------------- a PNG writer
# PIL cannot write 16-bit RGB(A), 16-bit grey+alpha, low bit depths with a
# short palette, or Adam7 interlacing, so those files are built here.

ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def _chunk(tag, data):
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def _pack_rows(samples, depth):
    """samples: (h, w*channels) ints -> unfiltered scanlines (bytes each)."""
    if depth < 8:
        per = 8 // depth
        rows = []
        for row in samples.astype(np.uint8):
            row = np.concatenate([row, np.zeros((-len(row)) % per, np.uint8)])
            packed = np.zeros(len(row) // per, np.uint8)
            for k in range(per):
                packed |= (row[k::per] << (8 - depth * (k + 1))).astype(np.uint8)
            rows.append(packed.tobytes())
        return rows
    if depth == 8:
        return [r.astype(np.uint8).tobytes() for r in samples]
    return [r.astype(">u2").tobytes() for r in samples]


def write_png(path, samples, channels, depth, color_type, plte=None, trns=None, interlace=False, extra=b""):
    """samples: (h, w, channels) array of ints in 0..2^depth-1."""
    h, w = samples.shape[:2]
    bpp = max(1, channels * depth // 8)

    def filt(rows):
        data = bytearray()
        prev = bytes(len(rows[0])) if rows else b""
        for i, row in enumerate(rows):
            ft = i % 5
            cur = bytearray(row)
            outr = bytearray(len(cur))
            for j in range(len(cur)):
                a = cur[j - bpp] if j >= bpp else 0
                b = prev[j]
                c = prev[j - bpp] if j >= bpp else 0
                if ft == 0:
                    p = 0
                elif ft == 1:
                    p = a
                elif ft == 2:
                    p = b
                elif ft == 3:
                    p = (a + b) // 2
                else:
                    pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                    p = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                outr[j] = (cur[j] - p) & 0xFF
            data.append(ft)
            data += outr
            prev = bytes(cur)
        return bytes(data)

    flat = samples.reshape(h, w * channels)
    if interlace:
        raw = b""
        for x0, y0, dx, dy in ADAM7:
            sub = samples[y0::dy, x0::dx]
            if sub.size == 0:
                continue
            raw += filt(_pack_rows(sub.reshape(sub.shape[0], -1), depth))
    else:
        raw = filt(_pack_rows(flat, depth))
    ihdr = struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, 1 if interlace else 0)
    png = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + extra
    if plte is not None:
        png += _chunk(b"PLTE", bytes(np.asarray(plte, np.uint8).ravel()))
    if trns is not None:
        png += _chunk(b"tRNS", trns)
    comp = zlib.compress(raw, 9)
    # Two IDAT chunks, so the decoder has to join them.
    cut = len(comp) // 2
    png += _chunk(b"IDAT", comp[:cut]) + _chunk(b"IDAT", comp[cut:]) + _chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(png)


# ---------------------------------------------------------------- JPEG helpers

def jpeg_bytes(im, **kw):
    b = io.BytesIO()
    im.save(b, "JPEG", **kw)
    return b.getvalue()


def cmyk_to_ycck(data):
    """PIL writes CMYK JPEGs with an Adobe APP14 marker, transform 0.
    Setting the transform to 2 makes the same file a YCCK JPEG (the
    samples are then read as Y, Cb, Cr, K): a valid file of the kind
    Photoshop writes, which PIL cannot write itself."""
    i = data.find(b"Adobe") - 4                      # FF EE, 2-byte length, "Adobe"
    assert i > 0 and data[i:i + 2] == b"\xff\xee", "no Adobe marker in PIL's CMYK JPEG"
    assert struct.unpack(">H", data[i + 2:i + 4])[0] == 14
    t = i + 4 + 5 + 2 + 2 + 2                        # 'Adobe', version, flags0, flags1 -> transform
    assert data[t] == 0
    return data[:t] + b"\x02" + data[t + 1:]


def with_exif_orientation(data, orientation):
    """A minimal APP1 Exif segment (big-endian TIFF, one IFD entry 0x0112)
    right after SOI."""
    tiff = b"MM\x00\x2a" + struct.pack(">I", 8) + struct.pack(">H", 1)
    tiff += struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack(">I", 0)
    payload = b"Exif\x00\x00" + tiff
    app1 = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    return data[:2] + app1 + data[2:]


# ---------------------------------------------------------------- the reference

_TRANSFORMS = {}


def transform(s):
    if s not in _TRANSFORMS:
        if s == 224:
            _, _, pre = open_clip.create_model_and_transforms("RN50")
            alt = open_clip.image_transform(224, is_train=False)
            assert repr(pre) == repr(alt), (repr(pre), repr(alt))
            _TRANSFORMS[s] = pre
        else:
            _TRANSFORMS[s] = open_clip.image_transform(s, is_train=False)
    return _TRANSFORMS[s]


MEAN = np.array(OPENAI_DATASET_MEAN, np.float32)
STD = np.array(OPENAI_DATASET_STD, np.float32)


def tensor_to_u8(t):
    """open_clip's tensor is (u/255 - mean)/std of a uint8 crop u, in
    float32: recover u and check that the formula gives the same bits, so
    that storing u stores the tensor."""
    u = np.rint((t * STD[:, None, None] + MEAN[:, None, None]) * 255).astype(np.int64)
    assert u.min() >= 0 and u.max() <= 255
    u = u.astype(np.uint8)
    again = (u.astype(np.float32) / np.float32(255) - MEAN[:, None, None]) / STD[:, None, None]
    assert np.array_equal(again, t), "open_clip tensor is not the float32 formula of a uint8 crop"
    return u


def fnv1a64(b):
    h = 0xCBF29CE484222325
    for x in b:
        h = ((h ^ x) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def z(path, arr):
    with open(path, "wb") as f:
        f.write(zlib.compress(np.ascontiguousarray(arr).tobytes(), 9))


class Cases:
    def __init__(self, out):
        self.out = out
        self.lines = []

    def add(self, name, sizes, note="", hash_only=False):
        path = os.path.join(self.out, name)
        with Image.open(path) as im:
            mode = im.mode
            rgb_im = im.convert("RGB")
            # What open_clip makes of the file handed over unconverted
            # (its README's usage); differs from the RGB route for
            # RGBA/LA (premultiplied resize), P (nearest), I;16 and CMYK.
            direct = {s: transform(s)(im).numpy() for s in sizes}
        rgb = np.asarray(rgb_im, np.uint8)
        stem = os.path.splitext(name)[0]
        if hash_only:
            # An 8-bit RGB PNG: PIL's pixels are the file's samples; a hash
            # is enough to say whether the decode is exact.
            exp = f"fnv1a64:{fnv1a64(rgb.tobytes()):016x}"
        else:
            exp = f"{stem}.rgb.z"
            z(os.path.join(self.out, exp), rgb)
        self.lines.append(f"decode {name} {rgb.shape[1]} {rgb.shape[0]} {exp}")
        report = []
        for s in sizes:
            t = transform(s)(rgb_im).numpy().astype("<f4")
            assert t.shape == (3, s, s)
            u = tensor_to_u8(t)
            if s >= 100:
                fn = f"{stem}.s{s}.u8.z"     # a quarter of the size; same tensor
                z(os.path.join(self.out, fn), u)
            else:
                fn = f"{stem}.s{s}.f32.z"
                z(os.path.join(self.out, fn), t)
            self.lines.append(f"pre {name} {s} {fn}")
            d = np.abs(direct[s] - t) * STD[:, None, None] * 255      # in pixel steps
            if d.max() > 0:
                report.append(f"s={s}: unconverted differs, mean {d.mean():.2f} max {d.max():.0f} (/255)")
        print(f"{name:28s} {mode:5s} {rgb.shape[1]}x{rgb.shape[0]} {'; '.join(report)} {note}")

    def write(self):
        with open(os.path.join(self.out, "cases.txt"), "w") as f:
            f.write("# Written by tools/gen_image_cases.py; read by tests/test_image.c.\n"
                    "# decode FILE W H EXPECTED   EXPECTED: zlib of h*w*3 uint8, PIL's convert(\"RGB\")\n"
                    "#                            or fnv1a64:HEX of those bytes\n"
                    "# pre FILE S EXPECTED        EXPECTED: zlib of 3*s*s float32 LE, open_clip's tensor (*.f32.z),\n"
                    "#                            or of the 3*s*s uint8 u with tensor = (u/255f - mean)/std (*.u8.z)\n")
            for ln in self.lines:
                f.write(ln + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "images"))
    ap.add_argument("--photos", default=None)
    a = ap.parse_args()
    out = a.out
    os.makedirs(out, exist_ok=True)
    C = Cases(out)

    def save(name, data):
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)

    # ---- JPEG
    rgb = Image.fromarray(scene(67, 45, 1))
    save("jpeg_420.jpg", jpeg_bytes(rgb, quality=90))                     # 4:2:0, PIL's default
    save("jpeg_444.jpg", jpeg_bytes(Image.fromarray(scene(64, 48, 2)), quality=95, subsampling=0))
    save("jpeg_422.jpg", jpeg_bytes(Image.fromarray(scene(53, 31, 3)), quality=85, subsampling=1))
    save("jpeg_progressive.jpg", jpeg_bytes(Image.fromarray(scene(81, 59, 4)), quality=90, progressive=True))
    save("jpeg_restart.jpg", jpeg_bytes(Image.fromarray(scene(70, 40, 5)), quality=90, restart_marker_blocks=3))
    save("jpeg_optimized.jpg", jpeg_bytes(Image.fromarray(scene(48, 64, 6)), quality=75, optimize=True))
    save("jpeg_gray.jpg", jpeg_bytes(Image.fromarray(scene(45, 37, 7)[..., 1]), quality=90))
    save("jpeg_gray_progressive.jpg",
         jpeg_bytes(Image.fromarray(scene(39, 41, 8)[..., 0]), quality=90, progressive=True))
    cmyk = Image.fromarray(np.concatenate([scene(40, 30, 9), scene(40, 30, 10)[..., :1]], -1), "CMYK")
    cm = jpeg_bytes(cmyk, quality=92)
    save("jpeg_cmyk.jpg", cm)
    save("jpeg_ycck.jpg", cmyk_to_ycck(cm))
    save("jpeg_exif_rotated.jpg", with_exif_orientation(jpeg_bytes(Image.fromarray(scene(30, 20, 11)), quality=90), 6))
    save("jpeg_1x1.jpg", jpeg_bytes(Image.fromarray(np.array([[[200, 30, 90]]], np.uint8)), quality=95))
    save("jpeg_3x500.jpg", jpeg_bytes(Image.fromarray(scene(3, 500, 12)), quality=90))
    save("jpeg_500x3.jpg", jpeg_bytes(Image.fromarray(scene(500, 3, 13)), quality=90))
    C.add("jpeg_420.jpg", [32, 17, 224])
    C.add("jpeg_444.jpg", [32])
    C.add("jpeg_422.jpg", [32, 33])
    C.add("jpeg_progressive.jpg", [32, 64])
    C.add("jpeg_restart.jpg", [32])
    C.add("jpeg_optimized.jpg", [32])
    C.add("jpeg_gray.jpg", [32])
    C.add("jpeg_gray_progressive.jpg", [32])
    C.add("jpeg_cmyk.jpg", [32], "(Adobe, inverted)")
    C.add("jpeg_ycck.jpg", [32], "(Adobe transform 2)")
    C.add("jpeg_exif_rotated.jpg", [32], "(EXIF orientation 6, not applied)")
    C.add("jpeg_1x1.jpg", [32, 1])
    C.add("jpeg_3x500.jpg", [32])
    C.add("jpeg_500x3.jpg", [32, 7])

    # ---- PNG written by PIL
    def pil_png(name, im, **kw):
        b = io.BytesIO()
        im.save(b, "PNG", **kw)
        save(name, b.getvalue())

    pil_png("png_rgb.png", Image.fromarray(scene(61, 43, 20)))
    rgba = np.concatenate([scene(50, 38, 21), np.linspace(0, 255, 50 * 38).reshape(38, 50, 1).astype(np.uint8)], -1)
    rgba[:10, :10, 3] = 0                       # fully transparent corner: colours kept, not composited
    pil_png("png_rgba.png", Image.fromarray(rgba, "RGBA"))
    pil_png("png_gray.png", Image.fromarray(scene(33, 47, 22)[..., 1]))
    la = np.stack([scene(36, 28, 23)[..., 0], scene(36, 28, 24)[..., 2]], -1)
    pil_png("png_gray_alpha.png", Image.fromarray(la, "LA"))
    pal = Image.fromarray(scene(45, 35, 25)).quantize(colors=50)
    pil_png("png_palette.png", pal)
    palt = pal.copy()
    palt.info["transparency"] = 3
    pil_png("png_palette_trns.png", palt, transparency=bytes([0, 64, 128, 255] + [255] * 10))
    g16 = scene16(40, 30, 26)[..., 0]
    g16[:, :8] = np.arange(8 * 30).reshape(30, 8)     # a strip of values <= 255 that survive PIL's clipping
    pil_png("png_gray16.png", Image.fromarray(g16.astype(np.uint16)))

    # ---- PNG written here
    def hand(name, samples, channels, depth, ctype, **kw):
        write_png(os.path.join(out, name), samples, channels, depth, ctype, **kw)

    hand("png_rgb16.png", scene16(37, 29, 27), 3, 16, 2)
    rgba16 = np.concatenate([scene16(33, 21, 28), scene16(33, 21, 29)[..., :1]], -1)
    hand("png_rgba16.png", rgba16, 4, 16, 6)
    ga16 = np.stack([scene16(26, 19, 30)[..., 0], scene16(26, 19, 31)[..., 1]], -1)
    hand("png_gray_alpha16.png", ga16, 2, 16, 4)
    hand("png_interlaced.png", scene(45, 33, 32), 3, 8, 2, interlace=True)
    hand("png_interlaced_gray16.png", scene16(19, 23, 33)[..., :1] // 64, 1, 16, 0, interlace=True)
    for d in (1, 2, 4):
        g = (scene(29, 17, 34 + d)[..., 1:2].astype(np.int64) >> (8 - d))
        hand(f"png_gray{d}.png", g, 1, d, 0)
    idx = (scene(31, 22, 40)[..., :1].astype(np.int64) >> 4)          # 0..15
    hand("png_palette4_short.png", idx, 1, 4, 3,
         plte=[[i * 20, 255 - i * 20, (i * 53) % 256] for i in range(12)])   # 12 entries: 12..15 out of range
    hand("png_palette1_interlaced.png", scene(23, 19, 41)[..., :1] >> 7, 1, 1, 3, plte=[[255, 0, 0], [0, 0, 255]],
         interlace=True)
    hand("png_rgb_trns.png", scene(27, 18, 42), 3, 8, 2, trns=struct.pack(">HHH", 250, 20, 30))
    hand("png_gray_trns.png", scene(27, 18, 43)[..., :1], 1, 8, 0, trns=struct.pack(">H", 0))
    hand("png_1x1.png", np.array([[[10, 250, 128]]]), 3, 8, 2)
    hand("png_2x900.png", scene(2, 900, 44), 3, 8, 2)
    hand("png_iccp_text.png", scene(20, 20, 45), 3, 8, 2,
         extra=_chunk(b"tEXt", b"Comment\x00hello") + _chunk(b"gAMA", struct.pack(">I", 100000)))

    for name, sizes in [("png_rgb.png", [32, 31]), ("png_rgba.png", [32]), ("png_gray.png", [32]),
                        ("png_gray_alpha.png", [32]), ("png_palette.png", [32]), ("png_palette_trns.png", [32]),
                        ("png_gray16.png", [32]), ("png_rgb16.png", [32]), ("png_rgba16.png", [32]),
                        ("png_gray_alpha16.png", [32]), ("png_interlaced.png", [32, 45]),
                        ("png_interlaced_gray16.png", [32]), ("png_gray1.png", [32]), ("png_gray2.png", [32]),
                        ("png_gray4.png", [32]), ("png_palette4_short.png", [32]),
                        ("png_palette1_interlaced.png", [32]), ("png_rgb_trns.png", [32]),
                        ("png_gray_trns.png", [32]), ("png_1x1.png", [5]), ("png_2x900.png", [32, 3]),
                        ("png_iccp_text.png", [20, 21, 19])]:
        C.add(name, sizes)

    # ---- real photographs (scikit-image's data, public domain / CC0)
    for name, src in [("photo_rocket.jpg", "rocket.jpg"), ("photo_chelsea.png", "chelsea.png")]:
        if a.photos:
            shutil.copyfile(os.path.join(a.photos, src), os.path.join(out, name))
        if os.path.exists(os.path.join(out, name)):
            C.add(name, [224, 32], hash_only=name.endswith(".png"))
        else:
            sys.exit(f"{name}: missing; pass --photos DIR with scikit-image's {src}")

    C.write()


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
