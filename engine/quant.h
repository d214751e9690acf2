/* quant: INT8 weights. Every convolution and linear weight may be stored as
 * int8 with one fp32 scale per output channel (symmetric: w ~ q * s,
 * s = max|w| / 127 over the channel, |q| <= 127).
 *
 * On disk (what `mmf-mkmodel --quantize` writes and clip_model_load reads)
 * the tensor keeps its open_clip name, shape and layout with dtype I8, and
 * `<name>_scale` holds the scales (F32 or F16, shape [out channels]). The
 * quantised tensors are the raw open_clip ones, before BatchNorm is folded:
 * the loader folds BN into the scales, so quantising at load time and
 * loading a pre-quantised file give bit-identical int8 values and scales. */
#ifndef MMF_QUANT_H
#define MMF_QUANT_H

#include <stdint.h>

#include "err.h"

/* Quantises w [rows][cols] with the output channel along rows (out_dim 0:
 * convolutions, linears; s has `rows` scales) or along columns (out_dim 1:
 * open_clip's text_projection; s has `cols` scales). A channel of zeros gets
 * scale 0 and q 0. Deterministic: the same floats give the same bytes. */
void mmf_quant(const float *w, int64_t rows, int64_t cols, int out_dim, int8_t *q, float *s);
/* w = q * s, the same layouts. */
void mmf_dequant(const int8_t *q, const float *s, int64_t rows, int64_t cols, int out_dim, float *w);

/* Which dimension of open_clip tensor `name` (ndim dimensions) is its output
 * channel if it is a weight mmf quantises (every convolution, the
 * attention-pool and text-transformer linears, text_projection), else -1. */
int mmf_quant_out_dim(const char *name, int ndim);

/* Writes a copy of the safetensors model `in` to `out` with every weight
 * that mmf_quant_out_dim selects stored as I8 plus `<name>_scale` (F32);
 * everything else is copied unchanged. progress (may be NULL) is told each
 * tensor's name. Returns 0 or a negative errno with err set. */
int mmf_quantize_file(const char *in, const char *out, void (*progress)(const char *name, int i, int n),
		      mmf_err *err);

#endif
