/* cpu: the float32 CPU backend. It executes an op chain with OpenBLAS for
 * the GEMMs (convolutions through im2col; 1x1 convolutions need none) and
 * OpenMP for everything else. It is the correctness reference for the GPU
 * kernels and the path that serves when there is no GPU. */
#ifndef MMF_CPU_H
#define MMF_CPU_H

#include <stdint.h>

#include "chain.h"
#include "err.h"

typedef struct cpu_engine cpu_engine;

/* Called after every op with the op's index and its output
 * (batch * out_elems floats). */
typedef void (*cpu_op_hook)(void *ud, const chain *c, int op_index, const float *out, int batch);

/* Allocates every activation buffer of chain c for up to max_batch samples. */
int cpu_engine_new(const chain *c, int max_batch, cpu_engine **out, mmf_err *err);
void cpu_engine_free(cpu_engine *e);
void cpu_engine_set_hook(cpu_engine *e, cpu_op_hook hook, void *ud);
/* Sets the threads OpenBLAS and OpenMP use (0: all cores). */
void cpu_set_threads(int n);

/* Image tower: pixels are n normalised images, NCHW float32
 * [n][3][S][S] as open_clip takes them. Writes n L2-normalised embeddings. */
int cpu_embed_image(cpu_engine *e, const float *pixels_nchw, int n, float *emb, mmf_err *err);
/* Text tower: n rows of `context` token ids (each in [0, vocab)). */
int cpu_embed_text(cpu_engine *e, const int32_t *tokens, int n, float *emb, mmf_err *err);

/* logits[i][j] = exp(logit_scale) * <img_i, txt_j> for normalised embeddings. */
void clip_logits(const float *img, int ni, const float *txt, int nt, int dim, float logit_scale, float *logits);
/* Zero-shot classification as open_clip computes it: the softmax of one
 * image's n logits, sorted most likely first: probs[k] is the probability
 * of label order[k]. Returns 0 or -ENOMEM. */
int clip_zero_shot(const float *logits, int n, float *probs, int *order);

/* Reference kernels, exported so tests (and the GPU tests) can call one op. */
void cpu_op_run(const op *o, float *const *bufs, int batch, float *scratch);
/* Scratch floats cpu_op_run needs for op o at batch size 1. */
int64_t cpu_op_scratch(const op *o);

#endif
