/* image: JPEG and PNG bytes to 8-bit RGB, and open_clip's preprocessing of
 * that RGB to the normalised [3][s][s] float tensor the image tower takes.
 *
 * Both reproduce the Python reference bit for bit where it can be done
 * (docs/IMAGES.md has the measured differences):
 *   decode:     PIL.Image.open(f).convert("RGB")
 *   preprocess: open_clip's eval transform (Resize(s, BICUBIC) on the PIL
 *               image, CenterCrop(s), ToTensor, Normalize(CLIP mean/std))
 * Everything runs on the CPU, needs no globals and is thread-safe. */
#ifndef MMF_IMAGE_H
#define MMF_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define MMF_IMAGE_MAX_PIXELS_DEFAULT (64LL * 1000 * 1000)	/* 64 Mpx */

typedef struct mmf_image {
	int w, h;
	uint8_t *rgb;	/* w*h*3, interleaved RGB, rows top to bottom */
} mmf_image;

/* Decodes JPEG or PNG bytes (detected by magic) into 8-bit RGB as PIL's
 * Image.open(...).convert("RGB") would: grayscale is replicated, palettes
 * are expanded (tRNS ignored), alpha is dropped (not composited), 16-bit
 * samples keep their high byte except 16-bit grayscale, which PIL clips to
 * 255, CMYK/YCCK JPEGs are taken as Adobe-inverted and converted like PIL,
 * EXIF orientation is not applied.
 *
 * max_pixels <= 0 means MMF_IMAGE_MAX_PIXELS_DEFAULT; the check is made
 * from the header, before any pixel buffer is allocated.
 *
 * Returns 0 and fills *out (free with mmf_image_free), or a negative code
 * with *out zeroed: -EINVAL for empty, unknown, corrupt or truncated data,
 * -E2BIG for an image over max_pixels, -ENOMEM. */
int mmf_image_decode(const void *data, size_t len, int64_t max_pixels, mmf_image *out, mmf_err *err);

/* Reads the file and decodes it; the message starts with the path. */
int mmf_image_load(const char *path, int64_t max_pixels, mmf_image *out, mmf_err *err);

/* Frees the pixels and zeroes *im; NULL and zeroed images are fine. */
void mmf_image_free(mmf_image *im);

/* open_clip's preprocessing for a model of input size s: PIL's antialiased
 * bicubic resize so the shorter side becomes s (the longer one
 * int(s * long / short), as torchvision computes it), torchvision's
 * CenterCrop(s), /255 and CLIP's mean/std.
 * rgb: h rows of w interleaved R,G,B bytes; out: [3][s][s] float32 planar.
 * Returns 0, -EINVAL for bad sizes or -ENOMEM. */
int mmf_image_preprocess(const uint8_t *rgb, int w, int h, int s, float *out, mmf_err *err);

#endif
