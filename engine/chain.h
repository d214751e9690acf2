/* chain: each tower lowered to a flat list of ops after epilogue fusion
 * (conv+bias+ReLU, conv+bias+residual+ReLU, linear+bias+QuickGELU,
 * linear+bias+residual, ...). An op is plain data: kind, shapes, buffer ids,
 * weight pointers into the model, FLOPs and the fewest bytes it must move.
 * The CPU backend executes it; the GPU backend, the planner and the report
 * read the same list.
 *
 * Activations are per-sample buffers, NHWC for the image tower and
 * [tokens][width] row-major for the text tower; a batch is `batch` such
 * buffers back to back. */
#ifndef MMF_CHAIN_H
#define MMF_CHAIN_H

#include <stdint.h>
#include <stdio.h>

#include "err.h"
#include "model.h"

typedef enum op_kind {
	OP_CONV,		/* NHWC conv, OHWI weight, + bias [+ residual] [ReLU] */
	OP_AVGPOOL,		/* 2x2, stride 2 */
	OP_POOL_TOKENS,		/* [HW][C] -> [HW+1][C]: mean token first, + positional */
	OP_LINEAR,		/* y[m][n] = x[m][k] W^T + b [+ residual] [activation] */
	OP_ATTN_POOL,		/* one query (token 0) against all tokens, per head */
	OP_EMBED,		/* token ids -> token + positional embedding */
	OP_LAYERNORM,
	OP_ATTN,		/* causal multi-head attention over packed qkv [T][3W] */
	OP_EOT_GATHER,		/* the row at argmax(token ids) */
	OP_L2NORM,
	op_kind_max
} op_kind;

typedef enum op_act { ACT_NONE, ACT_RELU, ACT_QUICKGELU, ACT_GELU, op_act_max } op_act;
typedef enum tower { TOWER_IMAGE, TOWER_TEXT, tower_max } tower;

typedef struct op {
	op_kind kind;
	op_act act;
	char name[40];		/* "layer2.0.conv2", "block3.mlp.fc" */
	int in, out;		/* buffer ids */
	int in2;		/* residual (CONV, LINEAR), kv (ATTN_POOL), token ids (EOT_GATHER); -1 if none */
	/* CONV / AVGPOOL: input h x w x cin, output oh x ow x cout */
	int h, w, cin, cout, k, stride, pad, oh, ow;
	/* LINEAR: m rows per sample of k_in -> n; row r of sample s is read at
	 * in + s*in_sample_stride + r*k_in */
	int m, n, k_in;
	int64_t in_sample_stride;
	/* ATTN / ATTN_POOL / EMBED / LAYERNORM / EOT_GATHER / POOL_TOKENS */
	int tokens, width, heads;
	const float *wt, *bias;	/* weights (host float32) or LayerNorm gamma/beta */
	const int8_t *wq;	/* CONV, LINEAR: int8 weights (same layout as wt), or NULL */
	const float *wqs;	/* their per-output-channel scales (wt = wq * wqs) */
	const float *aux;	/* positional embedding (EMBED, POOL_TOKENS) */
	int64_t w_elems;	/* weight elements read once per batch */
	int64_t in_elems, out_elems;	/* activation elements per sample, residual included in in_elems */
	double flops;		/* per sample */
} op;

typedef struct chain_buf {
	int64_t elems;		/* per sample */
	int is_int;		/* int32 token ids */
} chain_buf;

typedef struct chain {
	tower tower;
	const clip_model *model;
	op *ops;
	int nops, cap;
	chain_buf *bufs;
	int nbufs, bcap;
	int in, out;		/* input buffer (pixels NHWC or token ids) and the normalised embedding */
	clip_linear kv;		/* attention pool k;v weights concatenated (owned) */
} chain;

/* Launch k (0 <= k < a + b) of two op lists of a and b ops enqueued in
 * turn, op i of the first then op i of the second (two towers on two
 * streams): which list (0 or 1) and which op of it. */
static inline void chain_turn(int a, int b, int k, int *which, int *i)
{
	int m = a < b ? a : b;
	if (k < 2 * m)
		*which = k % 2, *i = k / 2;
	else
		*which = a > b ? 0 : 1, *i = k - m;
}

int chain_build(const clip_model *m, tower t, chain **out, mmf_err *err);
void chain_free(chain *c);

const char *op_kind_name(op_kind k);
const char *tower_name(tower t);
/* Minimal bytes moved at `elem_size` bytes per element for a batch. */
double op_bytes(const op *o, int batch, int elem_size);
double chain_flops(const chain *c);
double chain_bytes(const chain *c, int batch, int elem_size);
/* One line per op plus totals; bytes are counted at elem_size bytes per element. */
void chain_print(const chain *c, FILE *fp, int batch, int elem_size);

#endif
