/* fuse: horizontal fusion of any two ops in team form (DESIGN.md, "The team
 * contract"). One launch runs op A and op B together in one of three ways:
 *
 *   inter-block   blocks [0, grid_a) run A's tiles and [grid_a, grid_a +
 *                 grid_b) B's, each block as one team on barrier 1; shared
 *                 memory is the larger of the two;
 *   intra-block   every block holds teams_a teams of A and teams_b teams of B
 *                 (named barriers 1..teams_a and teams_a+1..), each team
 *                 walking its op's tiles grid-stride with its own shared
 *                 slice, so A and B share every SM at once; shared memory is
 *                 the sum;
 *   intra-thread  every thread runs a tile of A, then (after a block-wide
 *                 named barrier) a tile of B, in a block padded to the larger
 *                 team; shared memory is the larger of the two, reused.
 *
 * The kernels are generic by dispatch: a switch on the descriptor's kind
 * (and its f32 flag: the fp32 SIMT forms) calls that op's tile function, so
 * one kernel per strategy serves every pair, and registers are the maximum over all ops (reported by
 * mmf_fused_regs and in the fusion notes). A tile computes the same values
 * wherever it runs, so fused output is bitwise the unfused output. */
#include <cuda_fp16.h>
#include <errno.h>

#include "attn_causal.cuh"
#include "attn_pool.cuh"
#include "avgpool2.cuh"
#include "check.h"
#include "embed.cuh"
#include "eot_gather.cuh"
#include "gemm.cuh"
#include "l2norm.cuh"
#include "layernorm.cuh"
#include "mmf_fuse.h"
#include "mmf_ops.h"
#include "pool_tokens.cuh"

/* 128 registers a thread at most (GEMM L's own budget), so 512 threads. */
#define FUSE_MAX_THREADS 512

struct fuse_args {
	mmf_opdesc a, b;
	int teams_a, teams_b;	/* intra-block */
	int grid_a, grid_b;	/* inter-block */
	int slice_a;		/* intra-block: aligned shared bytes of one A team */
	int block;		/* threads a block */
};

/* Each op's tile behind a call: compiled once with its own register
 * allocation, instead of one allocation for the union of all of them
 * (which spilled kilobytes in the GEMM loops). The call costs nothing next
 * to a tile's work. The parameters are copied into the callee once: read
 * through the generic pointer into parameter space at every use, they
 * made fused GEMM tiles about 2x slower than plain ones (8 SMs, H200). */
#define FUSE_CALL(fn, P, tilefn)                                                          \
	static __device__ __noinline__ void fn(const void *p, int tile, const mmf_team &t) \
	{                                                                                  \
		const P q = *static_cast<const P *>(p);                                    \
		tilefn(q, tile, t);                                                        \
	}
/* Single-buffered fragments in fused GEMM tiles (gemm_tile's FRAG): the
 * double-buffered loops tripled this file's compile time. */
FUSE_CALL(call_gemm_l, gemm_params, (gemm_tile<gemm_cfg_l, false, false>))
FUSE_CALL(call_gemm_m, gemm_params, (gemm_tile<gemm_cfg_m, false, false>))
FUSE_CALL(call_gemm_s, gemm_params, (gemm_tile<gemm_cfg_s, false, false>))
FUSE_CALL(call_gemm_w, gemm_params, (gemm_tile<gemm_cfg_w, false, false>))
FUSE_CALL(call_gemm_n, gemm_params, (gemm_tile<gemm_cfg_n, false, false>))
FUSE_CALL(call_gemm_l_q8, gemm_params, (gemm_tile<gemm_cfg_l, true>))
FUSE_CALL(call_gemm_m_q8, gemm_params, (gemm_tile<gemm_cfg_m, true>))
FUSE_CALL(call_gemm_s_q8, gemm_params, (gemm_tile<gemm_cfg_s, true>))
FUSE_CALL(call_gemm_w_q8, gemm_params, (gemm_tile<gemm_cfg_w, true>))
FUSE_CALL(call_gemm_n_q8, gemm_params, (gemm_tile<gemm_cfg_n, true>))
FUSE_CALL(call_attn_causal_small, attn_causal_params, (attn_causal_tile_fit<5, 4>))
FUSE_CALL(call_attn_causal_big, attn_causal_params,
	  (attn_causal_tile_fit<ATTN_CAUSAL_MAX_TOKENS / 16, ATTN_CAUSAL_MAX_DH / 16>))
/* The ops written once for both element types: an fp16 and an fp32 call each. */
#define FUSE_CALL2(name, P)                                   \
	FUSE_CALL(call_##name, P, name##_tile<__half>) \
	FUSE_CALL(call_##name##_f32, P, name##_tile<float>)
FUSE_CALL2(layernorm, layernorm_params)
FUSE_CALL2(attn_pool, attn_pool_params)
FUSE_CALL2(pool_tokens, pool_tokens_params)
FUSE_CALL2(embed, embed_params)
FUSE_CALL2(eot_gather, eot_gather_params)
FUSE_CALL2(l2norm, l2norm_params)
FUSE_CALL2(avgpool2, avgpool2_params)
#undef FUSE_CALL2
/* The fp32 SIMT forms of the tensor-core ops. */
FUSE_CALL(call_gemm_l_f32, gemm_params, gemm_simt_tile<gemm_simt_l>)
FUSE_CALL(call_gemm_m_f32, gemm_params, gemm_simt_tile<gemm_simt_m>)
FUSE_CALL(call_gemm_s_f32, gemm_params, gemm_simt_tile<gemm_simt_s>)
FUSE_CALL(call_gemm_w_f32, gemm_params, gemm_simt_tile<gemm_simt_w>)
FUSE_CALL(call_gemm_n_f32, gemm_params, gemm_simt_tile<gemm_simt_n>)
FUSE_CALL(call_attn_causal_f32, attn_causal_params, attn_causal_f32_tile)
#undef FUSE_CALL

/* The fp32 form of every op (mmf_op_set_f32). Not inlined, and given the
 * kind and the parameters' address rather than the descriptor, so that the
 * fp16 dispatch in the fused kernels keeps its registers and stack (inlined,
 * it raised their spill loads from 256 to 440 bytes and their stack from
 * 608 bytes to 1 KB, sm_90). */
__device__ __noinline__ void op_tile_f32(int kind, const void *p, int tile, const mmf_team &t)
{
	switch (kind) {
	case MMF_OP_GEMM_L: call_gemm_l_f32(p, tile, t); break;
	case MMF_OP_GEMM_M: call_gemm_m_f32(p, tile, t); break;
	case MMF_OP_GEMM_S: call_gemm_s_f32(p, tile, t); break;
	case MMF_OP_GEMM_W: call_gemm_w_f32(p, tile, t); break;
	case MMF_OP_GEMM_N: call_gemm_n_f32(p, tile, t); break;
	case MMF_OP_LAYERNORM: call_layernorm_f32(p, tile, t); break;
	case MMF_OP_ATTN_CAUSAL: call_attn_causal_f32(p, tile, t); break;
	case MMF_OP_ATTN_POOL: call_attn_pool_f32(p, tile, t); break;
	case MMF_OP_POOL_TOKENS: call_pool_tokens_f32(p, tile, t); break;
	case MMF_OP_EMBED: call_embed_f32(p, tile, t); break;
	case MMF_OP_EOT_GATHER: call_eot_gather_f32(p, tile, t); break;
	case MMF_OP_L2NORM: call_l2norm_f32(p, tile, t); break;
	case MMF_OP_AVGPOOL2: call_avgpool2_f32(p, tile, t); break;
	default: break;
	}
}

__device__ __forceinline__ void op_tile(const mmf_opdesc &d, int tile, const mmf_team &t)
{
	const void *p = d.params;
	if (d.f32) {
		op_tile_f32(d.kind, p, tile, t);
		return;
	}
	switch (d.kind) {
#define GEMM_CASE(K, fn) \
	case K: \
		if (static_cast<const gemm_params *>(p)->bscale) \
			fn##_q8(p, tile, t); \
		else \
			fn(p, tile, t); \
		break;
	GEMM_CASE(MMF_OP_GEMM_L, call_gemm_l) GEMM_CASE(MMF_OP_GEMM_M, call_gemm_m) GEMM_CASE(MMF_OP_GEMM_S, call_gemm_s)
	GEMM_CASE(MMF_OP_GEMM_W, call_gemm_w) GEMM_CASE(MMF_OP_GEMM_N, call_gemm_n)
#undef GEMM_CASE
	case MMF_OP_LAYERNORM: call_layernorm(p, tile, t); break;
	case MMF_OP_ATTN_CAUSAL:
		if (attn_causal_small(*static_cast<const attn_causal_params *>(p)))
			call_attn_causal_small(p, tile, t);
		else
			call_attn_causal_big(p, tile, t);
		break;
	case MMF_OP_ATTN_POOL: call_attn_pool(p, tile, t); break;
	case MMF_OP_POOL_TOKENS: call_pool_tokens(p, tile, t); break;
	case MMF_OP_EMBED: call_embed(p, tile, t); break;
	case MMF_OP_EOT_GATHER: call_eot_gather(p, tile, t); break;
	case MMF_OP_L2NORM: call_l2norm(p, tile, t); break;
	case MMF_OP_AVGPOOL2: call_avgpool2(p, tile, t); break;
	default: break;
	}
}

__device__ __forceinline__ mmf_team make_team(int tid, int size, int barrier, char *smem)
{
	mmf_team t;
	t.tid = tid, t.size = size, t.barrier = barrier, t.smem = smem;
	return t;
}

template <bool TR>
__global__ void __launch_bounds__(FUSE_MAX_THREADS) fused_inter(const __grid_constant__ fuse_args f, mmf_trace_rec *trace)
{
	extern __shared__ __align__(16) char smem[];
	mmf_trace_rec *const slot = TR && trace ? trace + blockIdx.x : nullptr;
	mmf_pdl_wait();
	const bool is_a = blockIdx.x < (unsigned)f.grid_a;
	const mmf_opdesc &d = is_a ? f.a : f.b;
	const int blk = is_a ? blockIdx.x : blockIdx.x - f.grid_a, nblk = is_a ? f.grid_a : f.grid_b;
	const unsigned long long t0 = TR ? mmf_trace_now() : 0;
	if ((int)threadIdx.x < d.team) {
		mmf_team t = make_team(threadIdx.x, d.team, 1, smem);
		for (int tile = blk; tile < d.tiles; tile += nblk)
			op_tile(d, tile, t);
	}
	if (TR && threadIdx.x == 0)
		mmf_trace_write(slot, t0, is_a ? 1 : 2);
	mmf_pdl_trigger();
}

template <bool TR>
__global__ void __launch_bounds__(FUSE_MAX_THREADS) fused_intra_block(const __grid_constant__ fuse_args f, mmf_trace_rec *trace)
{
	extern __shared__ __align__(16) char smem[];
	int tid = threadIdx.x;
	const int na = f.teams_a * f.a.team;
	mmf_trace_rec *const slot = TR && trace ? trace + 2 * blockIdx.x + ((int)threadIdx.x < na ? 0 : 1) : nullptr;	/* two per block */
	mmf_pdl_wait();
	const unsigned long long t0 = TR ? mmf_trace_now() : 0;
	if (tid < na) {
		int j = tid / f.a.team;
		mmf_team t = make_team(tid - j * f.a.team, f.a.team, 1 + j, smem + j * f.slice_a);
		for (int tile = blockIdx.x * f.teams_a + j; tile < f.a.tiles; tile += gridDim.x * f.teams_a)
			op_tile(f.a, tile, t);
		if (TR && tid == 0)	/* the first team of each op records that op's span */
			mmf_trace_write(slot, t0, 1);
	} else {
		tid -= na;
		int j = tid / f.b.team, slice_b = (f.b.smem + 127) & ~127;
		mmf_team t = make_team(tid - j * f.b.team, f.b.team, 1 + f.teams_a + j, smem + f.teams_a * f.slice_a + j * slice_b);
		for (int tile = blockIdx.x * f.teams_b + j; tile < f.b.tiles; tile += gridDim.x * f.teams_b)
			op_tile(f.b, tile, t);
		if (TR && tid == 0)
			mmf_trace_write(slot, t0, 2);
	}
	mmf_pdl_trigger();
}

template <bool TR>
__global__ void __launch_bounds__(FUSE_MAX_THREADS) fused_intra_thread(const __grid_constant__ fuse_args f, mmf_trace_rec *trace)
{
	extern __shared__ __align__(16) char smem[];
	mmf_trace_rec *const slot = TR && trace ? trace + blockIdx.x : nullptr;
	mmf_pdl_wait();
	const int tid = threadIdx.x, n = f.a.tiles > f.b.tiles ? f.a.tiles : f.b.tiles;
	mmf_team ta = make_team(tid, f.a.team, 1, smem), tb = make_team(tid, f.b.team, 2, smem);
	/* The whole padded block, to hand the shared memory from A to B. */
	mmf_team all = make_team(tid, f.block, 3, smem);
	const unsigned long long t0 = TR ? mmf_trace_now() : 0;
	for (int i = blockIdx.x; i < n; i += gridDim.x) {
		if (i < f.a.tiles && tid < f.a.team)
			op_tile(f.a, i, ta);
		team_sync(all);
		if (i < f.b.tiles && tid < f.b.team)
			op_tile(f.b, i, tb);
		team_sync(all);
	}
	if (TR && tid == 0)
		mmf_trace_write(slot, t0, 3);
	mmf_pdl_trigger();
}

static int slice(int smem) { return (smem + 127) & ~127; }

extern "C" int mmf_fuse_check(const mmf_opdesc *a, const mmf_opdesc *b, const mmf_fuse *f, int *threads, int *smem)
{
	if (!a || !b || !f || a->kind < 0 || a->kind >= MMF_OP_KINDS || b->kind < 0 || b->kind >= MMF_OP_KINDS)
		return -EINVAL;
	if (a->kind >= MMF_OP_POOL_QK || b->kind >= MMF_OP_POOL_QK)
		return -EOPNOTSUPP;	/* not in op_tile's dispatch (plain launches only) */
	int th, sm;
	switch (f->strategy) {
	case MMF_FUSE_INTER:
		th = a->team > b->team ? a->team : b->team;
		sm = a->smem > b->smem ? a->smem : b->smem;
		break;
	case MMF_FUSE_INTRA_BLOCK:
		if (f->teams_a < 1 || f->teams_b < 1 || f->teams_a + f->teams_b > 15)	/* named barriers 1..15 */
			return -EINVAL;
		th = f->teams_a * a->team + f->teams_b * b->team;
		sm = f->teams_a * slice(a->smem) + f->teams_b * slice(b->smem);
		break;
	case MMF_FUSE_INTRA_THREAD:
		th = a->team > b->team ? a->team : b->team;
		sm = a->smem > b->smem ? a->smem : b->smem;
		break;
	default:
		return -EINVAL;
	}
	if (th > FUSE_MAX_THREADS || sm > mmf_smem_optin())
		return -E2BIG;
	if (threads)
		*threads = th;
	if (smem)
		*smem = sm;
	return 0;
}

extern "C" int mmf_fused_launch(const mmf_opdesc *a, const mmf_opdesc *b, const mmf_fuse *f, mmf_stream stream)
{
	int th, sm, rc = mmf_fuse_check(a, b, f, &th, &sm);
	if (rc < 0)
		return rc;
	static bool attr_set[3];
	void (*plain[3])(fuse_args, mmf_trace_rec *) = {fused_inter<false>, fused_intra_block<false>, fused_intra_thread<false>};
	void (*traced[3])(fuse_args, mmf_trace_rec *) = {fused_inter<true>, fused_intra_block<true>, fused_intra_thread<true>};
	if (!attr_set[f->strategy]) {
		MMF_CUDA_CHECK(mmf_allow_smem(plain[f->strategy]));
		MMF_CUDA_CHECK(mmf_allow_smem(traced[f->strategy]));
		attr_set[f->strategy] = true;
	}
	fuse_args x = {};
	x.a = *a, x.b = *b;
	x.teams_a = f->teams_a, x.teams_b = f->teams_b, x.slice_a = slice(a->smem), x.block = th;
	int grid;
	switch (f->strategy) {
	case MMF_FUSE_INTER:
		x.grid_a = f->grid_a > 0 && f->grid_a < a->tiles ? f->grid_a : a->tiles;
		x.grid_b = f->grid_b > 0 && f->grid_b < b->tiles ? f->grid_b : b->tiles;
		grid = x.grid_a + x.grid_b;
		break;
	case MMF_FUSE_INTRA_BLOCK: {
		int ga = (a->tiles + f->teams_a - 1) / f->teams_a, gb = (b->tiles + f->teams_b - 1) / f->teams_b;
		grid = ga > gb ? ga : gb;
		if (f->grid_a > 0 && f->grid_a < grid)
			grid = f->grid_a;
		break;
	}
	default:
		grid = a->tiles > b->tiles ? a->tiles : b->tiles;
		if (f->grid_a > 0 && f->grid_a < grid)
			grid = f->grid_a;
	}
	if (grid > 65535)
		grid = 65535;
	MMF_CUDA_CHECK(mmf_launch_traced(traced[f->strategy], plain[f->strategy], grid, th, sm, (cudaStream_t)stream, x,
					 f->strategy == MMF_FUSE_INTRA_BLOCK ? 2 : 1));
	MMF_CUDA_CHECK(cudaGetLastError());
	return 0;
}

extern "C" int mmf_fused_attrs(int strategy, int *regs, int *local_bytes)
{
	if (strategy < 0 || strategy > 2)
		return -EINVAL;
	void (*kernels[3])(fuse_args, mmf_trace_rec *) = {fused_inter<false>, fused_intra_block<false>, fused_intra_thread<false>};
	cudaFuncAttributes fa;
	MMF_CUDA_CHECK(cudaFuncGetAttributes(&fa, kernels[strategy]));
	*regs = fa.numRegs;
	*local_bytes = (int)fa.localSizeBytes;
	return 0;
}

extern "C" int mmf_fused_occupancy(const mmf_opdesc *a, const mmf_opdesc *b, const mmf_fuse *f, int *blocks_per_sm)
{
	int th, sm, rc = mmf_fuse_check(a, b, f, &th, &sm);
	if (rc < 0)
		return rc;
	void (*kernels[3])(fuse_args, mmf_trace_rec *) = {fused_inter<false>, fused_intra_block<false>, fused_intra_thread<false>};
	MMF_CUDA_CHECK(mmf_allow_smem(kernels[f->strategy]));
	MMF_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(blocks_per_sm, kernels[f->strategy], th, sm));
	return 0;
}

extern "C" int mmf_op_set_f32(mmf_opdesc *d)
{
	switch (d->kind) {
	case MMF_OP_GEMM_L: case MMF_OP_GEMM_M: case MMF_OP_GEMM_S: case MMF_OP_GEMM_W: case MMF_OP_GEMM_N:
		return d->f32 ? 0 : -EINVAL;	/* mmf_gemm.f32 made it, or it is not fp32 */
	case MMF_OP_ATTN_CAUSAL:
		return mmf_attn_causal_to_f32(d);
	case MMF_OP_LAYERNORM: case MMF_OP_ATTN_POOL: case MMF_OP_POOL_TOKENS: case MMF_OP_EMBED:
	case MMF_OP_EOT_GATHER: case MMF_OP_L2NORM: case MMF_OP_AVGPOOL2:
		d->f32 = 1;	/* the same tile written for float: same team, tiles and shared bytes */
		return 0;
	default:
		return -EINVAL;
	}
}

extern "C" int mmf_op_launch(const mmf_opdesc *d, mmf_stream s)
{
	switch (d->kind) {
	case MMF_OP_GEMM_L: case MMF_OP_GEMM_M: case MMF_OP_GEMM_S: case MMF_OP_GEMM_W: case MMF_OP_GEMM_N:
		return mmf_gemm_launch_desc(d, s);
	case MMF_OP_LAYERNORM: return mmf_layernorm_launch_desc(d, s);
	case MMF_OP_ATTN_CAUSAL: return mmf_attn_causal_launch_desc(d, s);
	case MMF_OP_ATTN_POOL: return mmf_attn_pool_launch_desc(d, s);
	case MMF_OP_POOL_TOKENS: return mmf_pool_tokens_launch_desc(d, s);
	case MMF_OP_EMBED: return mmf_embed_launch_desc(d, s);
	case MMF_OP_EOT_GATHER: return mmf_eot_gather_launch_desc(d, s);
	case MMF_OP_L2NORM: return mmf_l2norm_launch_desc(d, s);
	case MMF_OP_AVGPOOL2: return mmf_avgpool2_launch_desc(d, s);
	case MMF_OP_POOL_QK: return mmf_pool_qk_launch_desc(d, s);
	case MMF_OP_POOL_FOLD: return mmf_pool_fold_launch_desc(d, s);
	case MMF_OP_GEMV: return mmf_gemv_launch_desc(d, s);
	default: return -EINVAL;
	}
}

extern "C" const char *mmf_op_kind_name(int kind)
{
	static const char *n[MMF_OP_KINDS] = {"gemm_l", "gemm_m", "gemm_s", "gemm_w", "gemm_n", "layernorm", "attn_causal",
					      "attn_pool", "pool_tokens", "embed", "eot_gather", "l2norm", "avgpool2",
					      "pool_qk", "pool_fold", "gemv"};
	return kind >= 0 && kind < MMF_OP_KINDS ? n[kind] : "?";
}
