/* Bilinear resize of the shorter side + centre crop + CLIP normalisation. */
#include "config.h"
#include "preproc.h"

static const float pre_mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
static const float pre_std[3] = {0.26862954f, 0.26130258f, 0.27577711f};

/* Source sample position and weight for output coordinate i. */
static void pre_axis(int i, int off, double scale, int n, int *i0, int *i1, float *f)
{
	double x = (i + off + 0.5) * scale - 0.5;
	if (x < 0)
		x = 0;
	if (x > n - 1)
		x = n - 1;
	*i0 = (int)x;
	*i1 = *i0 + 1 < n ? *i0 + 1 : *i0;
	*f = (float)(x - *i0);
}

void pre_image(const uint8_t *rgb, int w, int h, int s, float *out)
{
	/* source pixels per output pixel, so that the shorter side becomes s */
	double scale = (double)(w < h ? w : h) / s;
	int rw = (int)(w / scale + 0.5), rh = (int)(h / scale + 0.5);
	int ox = (rw - s) / 2, oy = (rh - s) / 2;
	for (int y = 0; y < s; y++) {
		int y0, y1;
		float fy;
		pre_axis(y, oy, scale, h, &y0, &y1, &fy);
		for (int x = 0; x < s; x++) {
			int x0, x1;
			float fx;
			pre_axis(x, ox, scale, w, &x0, &x1, &fx);
			const uint8_t *p00 = rgb + ((int64_t)y0 * w + x0) * 3, *p01 = rgb + ((int64_t)y0 * w + x1) * 3;
			const uint8_t *p10 = rgb + ((int64_t)y1 * w + x0) * 3, *p11 = rgb + ((int64_t)y1 * w + x1) * 3;
			for (int c = 0; c < 3; c++) {
				float top = p00[c] + fx * (p01[c] - p00[c]);
				float bot = p10[c] + fx * (p11[c] - p10[c]);
				float v = (top + fy * (bot - top)) / 255.0f;
				out[((int64_t)c * s + y) * s + x] = (v - pre_mean[c]) / pre_std[c];
			}
		}
	}
}
