/* mmf_ops.h: the small GPU ops of the two towers, one .cu/.cuh pair each
 * (the .cuh holds the team-contract tile function for fused launches). Same
 * rules as mmf_kernels.h: activations are fp16 (passed as void *), or fp32
 * in a descriptor's fp32 form (mmf_op_set_f32), math is fp32, a batch is
 * `batch` samples back to back; every entry point checks its
 * preconditions on shapes and alignment, launches on the given stream and
 * returns 0, -EINVAL for a bad argument or -EIO for a CUDA error (printed).
 * Every pointer must be 16-byte aligned (token ids: 4-byte) and no output may
 * overlap an input. */
#ifndef MMF_OPS_H
#define MMF_OPS_H

#include <stdint.h>

#include "mmf_kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Causal multi-head self-attention: qkv [batch][tokens][3*width] (q | k | v,
 * head h in columns h*dh..h*dh+dh-1 of each third, dh = width/heads) ->
 * out [batch][tokens][width]. tokens 1..128; dh a multiple of 8, at most 128. */
int mmf_attn_causal_f16(const void *qkv, void *out, int batch, int tokens, int width, int heads,
			mmf_stream stream);

/* Attention pooling: one query per sample, q [batch][width], against
 * kv [batch][tokens][2*width] (k | v) -> out [batch][width], per head
 * softmax(q.k_j / sqrt(dh)) v. tokens 1..8192; dh = width/heads a multiple
 * of 8, at most 256. */
int mmf_attn_pool_f16(const void *q, const void *kv, void *out, int batch, int tokens, int width, int heads,
		      mmf_stream stream);

/* The attention pool folded (pool_fold.cuh; fp16 only, plain
 * launches only): instead of keys and values for every token,
 * qt [batch][heads][width] (fp32) = Wk_h^T q_h / sqrt(dh) per head h
 * (wk [width][width], the k projection's weight), then per (sample, head)
 * p = softmax over tokens of qt_h . x_j (x [batch][tokens][width], the pool's
 * tokens) and out[b][h*dh + r] = Wv[h*dh + r] . (sum_j p_j x_j) + bv
 * (wv [width][width], bv [width] fp32 or NULL): what mmf_attn_pool_f16 gives
 * for q, k = x Wk^T + bk, v = x Wv^T + bv, summed in another order (bk
 * cancels in the softmax). width at most 4096, tokens at most 1024, dh a
 * multiple of 8. */
int mmf_pool_qk_desc(const void *q, const void *wk, float *qt, int batch, int width, int heads, mmf_opdesc *d);
int mmf_pool_qk_launch_desc(const mmf_opdesc *d, mmf_stream stream);
int mmf_pool_fold_desc(const void *x, const float *qt, const void *wv, const float *bv, void *out, int batch,
		       int tokens, int width, int heads, mmf_opdesc *d);
int mmf_pool_fold_launch_desc(const mmf_opdesc *d, mmf_stream stream);

/* Tokens of the attention pool: x [batch][hw][channels] -> y
 * [batch][hw+1][channels], y[0] = mean over hw of x + pos[0],
 * y[t] = x[t-1] + pos[t]; pos [hw+1][channels]. channels a multiple of 8. */
int mmf_pool_tokens_f16(const void *x, void *y, const void *pos, int batch, int hw, int channels,
			mmf_stream stream);

/* Token + positional embedding: ids [batch][tokens] int32, tok_emb
 * [vocab][width], pos [tokens][width] -> y [batch][tokens][width]. An id
 * outside [0, vocab) gives a row of zeros and reads nothing: the host must
 * reject such ids before upload (cpu_embed_text does), this only keeps a bad
 * id from reading out of bounds. width a multiple of 8. */
int mmf_embed_f16(const int32_t *ids, void *y, const void *tok_emb, const void *pos, int batch, int tokens,
		  int width, int vocab, mmf_stream stream);

/* End-of-text gather: y[s] = x[s][argmax_t ids[s][t]] (the first maximal
 * index, as torch.argmax) for x [batch][tokens][width], ids
 * [batch][tokens] int32 -> y [batch][width]. width a multiple of 8. */
int mmf_eot_gather_f16(const void *x, const int32_t *ids, void *y, int batch, int tokens, int width,
		       mmf_stream stream);

/* y[r] = x[r] / max(||x[r]||, 1e-12) for `rows` rows of `width` halves, into
 * float32 (the embedding the host gets back). width a multiple of 8. */
int mmf_l2norm_f16_f32(const void *x, float *y, int rows, int width, mmf_stream stream);

/* 2x2 average pool, stride 2, NHWC: x [batch][h][w][channels] ->
 * y [batch][h/2][w/2][channels]. h and w even, channels a multiple of 8. */
int mmf_avgpool2_f16(const void *x, void *y, int batch, int h, int w, int channels, mmf_stream stream);

/* Descriptors of the ops above for the fused kernels (mmf_fuse.h): same
 * arguments and checks, nothing launched. */
int mmf_attn_causal_desc(const void *qkv, void *out, int batch, int tokens, int width, int heads,
				   mmf_opdesc *d);
int mmf_attn_causal_launch_desc(const mmf_opdesc *d, mmf_stream stream);
int mmf_attn_pool_desc(const void *q, const void *kv, void *out, int batch, int tokens, int width,
				 int heads, mmf_opdesc *d);
int mmf_attn_pool_launch_desc(const mmf_opdesc *d, mmf_stream stream);
int mmf_avgpool2_desc(const void *x, void *y, int batch, int h, int w, int channels, mmf_opdesc *d);
int mmf_avgpool2_launch_desc(const mmf_opdesc *d, mmf_stream stream);
int mmf_embed_desc(const int32_t *ids, void *y, const void *tok_emb, const void *pos, int batch,
			     int tokens, int width, int vocab, mmf_opdesc *d);
int mmf_embed_launch_desc(const mmf_opdesc *d, mmf_stream stream);
int mmf_eot_gather_desc(const void *x, const int32_t *ids, void *y, int batch, int tokens, int width,
				  mmf_opdesc *d);
int mmf_eot_gather_launch_desc(const mmf_opdesc *d, mmf_stream stream);
int mmf_l2norm_desc(const void *x, float *y, int rows, int width, mmf_opdesc *d);
int mmf_l2norm_launch_desc(const mmf_opdesc *d, mmf_stream stream);
int mmf_pool_tokens_desc(const void *x, void *y, const void *pos, int batch, int hw, int channels,
				   mmf_opdesc *d);
int mmf_pool_tokens_launch_desc(const mmf_opdesc *d, mmf_stream stream);

#ifdef __cplusplus
}
#endif

#endif
