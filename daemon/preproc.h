/* preproc: raw RGB to the normalised NCHW pixels the image tower takes.
 * The shorter side is resized to the model's size with plain bilinear
 * sampling, the centre square is cropped, values are scaled to [0,1] and
 * normalised with CLIP's mean and std. This is NOT open_clip's
 * preprocessing yet (bicubic, antialiased: issue 6), so embeddings of
 * images that need resizing differ slightly from open_clip's. */
#ifndef MMFD_PREPROC_H
#define MMFD_PREPROC_H

#include <stdint.h>

/* rgb: h rows of w interleaved R,G,B bytes; out: [3][s][s]. */
void pre_image(const uint8_t *rgb, int w, int h, int s, float *out);

#endif
