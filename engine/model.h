/* model: the OpenAI CLIP dual encoder as open_clip defines it
 * (ModifiedResNet image tower, pre-LN Transformer text tower), loaded from an
 * open_clip safetensors state dict. The configuration is inferred from tensor
 * shapes; BatchNorm is folded into the preceding convolution. Host weights
 * are float32 in the layouts the engine computes with:
 *   conv weights   OHWI  [cout][k][k][cin]   (activations are NHWC)
 *   linear weights [out][in]                 (y = x W^T + b)
 *   text_proj      [embed][text_width]       (transposed from open_clip) */
#ifndef MMF_MODEL_H
#define MMF_MODEL_H

#include <stdint.h>

#include "err.h"

typedef struct clip_config {
	int image_size;		/* input is image_size^2; the last feature map is image_size/32 */
	int vision_width;	/* stem width; stage s has planes width<<s, output 4*planes */
	int vision_layers[4];
	int vision_heads;	/* attention pool heads */
	int embed_dim;		/* joint embedding size */
	int text_width, text_heads, text_layers, context, vocab;
	int quick_gelu;		/* 1: x*sigmoid(1.702x) (OpenAI weights), 0: erf GELU */
} clip_config;

typedef struct clip_conv {
	int cin, cout, k, stride, pad;
	float *w;	/* OHWI, BN folded in (int8: q * qs, dequantised) */
	float *b;	/* [cout], from BN */
	int8_t *q;	/* int8 weights (quant.h), OHWI, or NULL */
	float *qs;	/* [cout] their scales, BN folded in */
} clip_conv;

typedef struct clip_block {
	int stride;	/* 2x2 avgpool after conv2 (and before downsample) when 2 */
	int has_down;
	clip_conv c1, c2, c3, down;
} clip_block;

typedef struct clip_linear {
	int in, out;
	float *w;	/* [out][in] (int8: q * qs, dequantised) */
	float *b;	/* [out], or NULL */
	int8_t *q;	/* int8 weights [out][in], or NULL */
	float *qs;	/* [out] their scales */
} clip_linear;

typedef struct clip_text_layer {
	float *ln1_w, *ln1_b, *ln2_w, *ln2_b;
	clip_linear qkv;	/* in_proj: [3W][W] */
	clip_linear out;	/* out_proj */
	clip_linear fc;		/* mlp.c_fc [4W][W] */
	clip_linear proj;	/* mlp.c_proj [W][4W] */
} clip_text_layer;

typedef struct clip_model {
	clip_config cfg;
	char *path;
	clip_conv stem[3];
	clip_block *blocks;
	int nblocks;		/* sum of vision_layers */
	float *attn_pos;	/* [grid^2+1][C], C = 32*vision_width */
	clip_linear attn_q, attn_k, attn_v, attn_c;
	float *tok_emb;		/* [vocab][W] */
	float *pos_emb;		/* [context][W] */
	clip_text_layer *layers;
	float *lnf_w, *lnf_b;
	clip_linear text_proj;	/* [embed][W], no bias */
	float logit_scale;	/* as stored: logits use exp(logit_scale) */
	uint64_t nparams;
	int nweights;		/* convolution and linear weights */
	int nint8;		/* of which int8 (read as I8, or quantised at load) */
} clip_model;

int clip_model_load(const char *path, clip_model **out, mmf_err *err);
/* quantize: every convolution and linear weight that the file holds as
 * float is quantised to int8 as it is read (quant.h); I8 weights are read
 * as they are either way. */
int clip_model_load_q(const char *path, int quantize, clip_model **out, mmf_err *err);

/* What --weights asks for: fp16 uploads float weights to the GPU (int8
 * ones dequantised), int8 quantises at load, auto is int8 exactly when the
 * file holds int8 weights; fp32 is fp16's weights kept as fp32 on the GPU,
 * with fp32 activations and the SIMT kernels (the CPU computes in fp32
 * whatever the mode). */
typedef enum clip_weights { CLIP_WEIGHTS_AUTO, CLIP_WEIGHTS_FP16, CLIP_WEIGHTS_INT8, CLIP_WEIGHTS_FP32 } clip_weights;
int clip_weights_parse(const char *s, clip_weights *out);	/* "auto", "fp16", "int8", "fp32" */
const char *clip_weights_name(clip_weights w);
/* The precision a model runs at on the GPU (gpu_model_new):
 *  CLIP_PREC_FP16  weights and activations fp16, tensor cores;
 *  CLIP_PREC_INT8  the model's int8 convolution and linear weights as int8
 *                  with fp32 scales, the rest as fp16;
 *  CLIP_PREC_FP32  weights and activations fp32, CUDA-core (SIMT) kernels. */
enum { CLIP_PREC_FP16 = 0, CLIP_PREC_INT8 = 1, CLIP_PREC_FP32 = 2 };
const char *clip_prec_name(int prec);	/* "fp16", "int8", "fp32" */
/* Loads for mode w; *prec is the CLIP_PREC_* the GPU should run it at. */
int clip_model_load_w(const char *path, clip_weights w, clip_model **out, int *prec, mmf_err *err);
void clip_model_free(clip_model *m);

/* Derived sizes. */
static inline int clip_vision_channels(const clip_config *c) { return 32 * c->vision_width; }
static inline int clip_grid(const clip_config *c) { return c->image_size / 32; }

/* "image 224, width 64, layers 3,4,6,3, heads 32, embed 1024; text 512x12, heads 8, ctx 77, vocab 49408, quickgelu" */
const char *clip_config_str(const clip_config *c, char *buf, int len);

#endif
