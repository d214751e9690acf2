/* gpu: the CUDA backend. A gpu_model holds both towers' weights resident on
 * the device as fp16, int8 or fp32 (biases and scales fp32), uploaded once. A gpu_tower is one chain
 * at one batch size: an activation arena allocated once and a launch record
 * per op, so enqueueing a run does no allocation and no host
 * synchronisation (it can be captured into a CUDA graph). */
#ifndef MMF_GPU_H
#define MMF_GPU_H

#include <cuda_runtime.h>
#include <stdint.h>

#include "chain.h"
#include "err.h"
#include "kernels/mmf_kernels.h"

typedef struct gpu_model gpu_model;
typedef struct gpu_tower gpu_tower;

/* precision: CLIP_PREC_* (model.h). CLIP_PREC_INT8 uploads the convolution
 * and linear weights that the model holds as int8 (op.wq) as int8 with fp32
 * scales, run by the int8 GEMM path; CLIP_PREC_FP32 runs every op's fp32
 * SIMT form (mmf_op_set_f32). */
int gpu_model_new(const chain *img, const chain *txt, int precision, gpu_model **out, mmf_err *err);
void gpu_model_free(gpu_model *g);
size_t gpu_model_bytes(const gpu_model *g);	/* device bytes of resident weights */
int gpu_model_int8(const gpu_model *g);		/* ops running int8 weights */
int gpu_model_precision(const gpu_model *g);	/* CLIP_PREC_* */
/* Lowerings for fp16 models only, on unless the environment turns them off
 * when the model is made: the attention pool folded (MMF_POOL_FOLD=0 turns
 * it off), linears of at most 8 rows as a matrix-vector tile (MMF_GEMV=0). */
int gpu_model_pool_fold(const gpu_model *g);
int gpu_model_gemv(const gpu_model *g);

/* Builds the launch records of chain c (one of the model's two) for `batch`
 * samples. With tune_stream non-NULL each GEMM's tile configuration is
 * chosen by timing the candidates on that stream (which may belong to an SM
 * partition); otherwise by a tile-count heuristic for `sms` SMs. */
int gpu_tower_new(gpu_model *g, const chain *c, int batch, int sms, cudaStream_t tune_stream, gpu_tower **out, mmf_err *err);
void gpu_tower_free(gpu_tower *t);
size_t gpu_tower_bytes(const gpu_tower *t);	/* arena bytes */

/* Uploads inputs (pixels NCHW float32 [n][3][S][S], or token ids
 * [n][context], validated on the host) asynchronously on s. n <= batch; a
 * run always computes `batch` samples. */
int gpu_tower_set_image(gpu_tower *t, const float *pixels, int n, cudaStream_t s, mmf_err *err);
int gpu_tower_set_text(gpu_tower *t, const int32_t *tokens, int n, cudaStream_t s, mmf_err *err);
/* Enqueues every op on s. Returns 0 or -EIO. */
int gpu_tower_enqueue(gpu_tower *t, cudaStream_t s);
/* The two towers on two streams, captured as one step: s0 forks to s1
 * (event fork), img runs on s0 and txt on s1, and s0 joins s1 (event
 * join), so everything after on s0 waits for both. The ops are enqueued in
 * turn (op i of img, then op i of txt), so that without a graph the text
 * tower does not wait for the host to launch the whole image tower first
 * (chain_turn; trace_launches_chains lists them in that order). ends, if
 * not NULL, are recorded where each tower's work ends (ends[0] on s0,
 * ends[1] on s1, before the join) as external events, so that in a
 * captured graph they are nodes that time each tower. Returns 0 or -EIO. */
int gpu_towers_enqueue2(gpu_tower *img, gpu_tower *txt, cudaStream_t s0, cudaStream_t s1, cudaEvent_t fork,
			cudaEvent_t join, const cudaEvent_t *ends);
/* Enqueues op i alone (for per-op timing). */
int gpu_tower_enqueue_op(gpu_tower *t, int i, cudaStream_t s);
/* Copies the n normalised embeddings (float32) to host memory; synchronises s. */
int gpu_tower_get_output(gpu_tower *t, float *emb, int n, cudaStream_t s, mmf_err *err);
/* Device pointer of op i's output (fp16, or fp32 for the final l2norm; all
 * fp32 on a CLIP_PREC_FP32 model). */
const void *gpu_tower_op_output(const gpu_tower *t, int i);
const chain *gpu_tower_chain(const gpu_tower *t);
int gpu_tower_nops(const gpu_tower *t);
int gpu_tower_batch(const gpu_tower *t);
/* The launch descriptor of op i (for the fused executor). */
const mmf_opdesc *gpu_tower_desc(const gpu_tower *t, int i);
/* Device pointer of chain buffer b: fp16 (fp32 on a CLIP_PREC_FP32 model), except
 * the token ids (int32) and the final embedding (fp32); the image input is
 * NHWC, 8 channels, 3 used. */
const void *gpu_tower_buf(const gpu_tower *t, int b);
/* The (configuration, splits) pairs op i's GEMM may take on `sms` SMs,
 * the tuner's candidates: fills cfg[] and splits[] (at most max), returns
 * how many; 0 for an op that is not a GEMM. */
int gpu_tower_gemm_choices(const gpu_tower *t, int i, int sms, int *cfg, int *splits, int max);
/* Gives op i's GEMM configuration cfg with `splits` splits, growing the
 * tower's split-K workspace if needed (then every GEMM's descriptor is
 * rebuilt). Not while work or a captured graph of the tower may still use
 * the old shapes (descriptors are copied at launch and capture). */
int gpu_tower_set_gemm(gpu_tower *t, int i, int cfg, int splits, mmf_err *err);
/* The GEMM tile configuration op i uses (-1 for non-GEMM ops). */
int gpu_tower_op_cfg(const gpu_tower *t, int i);
/* Its split-K factor (1: none; 0 for non-GEMM ops). */
int gpu_tower_op_splits(const gpu_tower *t, int i);

#endif
