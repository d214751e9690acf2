/* attn_proj: plain launches and C entry points of the text attention with
 * its out_proj linear (attn_proj.cuh). */
#include <cuda_fp16.h>
#include <limits.h>
#include <string.h>

#include "attn_proj.cuh"
#include "check.h"
#include "mmf_ops.h"

/* Block `blockIdx.x` as (sample b, row block qb, head h), heads fastest so
 * that a cluster is one (b, qb). */
struct attn_proj_where {
	int b, qb, h, q0;
};

__device__ __forceinline__ attn_proj_where attn_proj_block(const attn_proj_params &p)
{
	const int H = p.a.heads, nqb = attn_proj_qblocks(p), cl = blockIdx.x / H;
	attn_proj_where w;
	w.h = blockIdx.x - cl * H, w.qb = cl % nqb, w.b = cl / nqb, w.q0 = w.qb * ATTN_CAUSAL_ROWS;
	return w;
}

/* The one-launch form: a cluster of `heads` blocks (attn_proj.cuh). Two
 * blocks an SM (104 KB of shared memory each at width 512). */
template <bool TR>
__global__ void __launch_bounds__(ATTN_PROJ_THREADS, 2) attn_proj_kernel(attn_proj_params p, mmf_trace_rec *trace)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
	extern __shared__ __align__(16) char smem[];
	(void)team_whole_block<TR>(smem);
	const attn_proj_where at = attn_proj_block(p);
	const int W = p.a.width, T = p.a.tokens, H = p.a.heads, ld = attn_proj_ld(W), ldo = ATTN_PROJ_DH + 8;
	__half *abuf = reinterpret_cast<__half *>(smem);
	__half *obuf = reinterpret_cast<__half *>(smem + attn_proj_a_bytes(p));
	__half *wbuf = reinterpret_cast<__half *>(smem + attn_proj_a_bytes(p) + attn_proj_o_bytes());
	const int tid = threadIdx.x;
	if (tid >= 64) {
		attn_proj_stage_w(p, at.h, wbuf, tid - 64, ATTN_PROJ_THREADS - 64);
	} else {
		/* The attention's own team: warps 0-1 on barrier 1, its buffers at
		 * the start of shared memory (A's place, free until step 3). */
		mmf_team team;
		team.tid = tid, team.size = 64, team.barrier = 1, team.smem = smem;
		const int nqb = attn_proj_qblocks(p);
		attn_causal_tile_fit<5, 4, true>(p.a, (at.b * H + at.h) * nqb + (nqb - 1 - at.qb), team, obuf, ldo);
	}
	/* The attention's reads of its buffers before A overwrites them: the
	 * cluster barrier below orders them too, but racecheck does not take it
	 * for a barrier within the block. */
	__syncthreads();
	mmf_cluster_sync();	/* every head's O is in its block's shared memory */
	/* A = the heads' O side by side, rows below T (the others only feed
	 * output rows that are not stored). */
	const int rows = min(ATTN_CAUSAL_ROWS, T - at.q0), per = rows * (ATTN_PROJ_DH / 8);
	const uint32_t o_s = attn_causal_saddr(obuf);
	for (int i = tid; i < H * per; i += ATTN_PROJ_THREADS) {
		const int r = i / per, rem = i - r * per, row = rem >> 3, ch = rem & 7;
		const uint4 v = mmf_dsmem_ld4(mmf_dsmem_map(o_s + (uint32_t)(row * ldo + ch * 8) * 2, r));
		*reinterpret_cast<uint4 *>(abuf + row * ld + r * ATTN_PROJ_DH + ch * 8) = v;
	}
	mmf_cluster_arrive();	/* done reading the others' O */
	asm volatile("cp.async.wait_all;\n" ::: "memory");
	__syncthreads();	/* Wo_h and A in place (a plain launch: the block is one team) */
	attn_proj_gemm(p, at.b, at.q0, at.h, abuf, wbuf, tid >> 5, tid & 31);
	mmf_cluster_wait();	/* the others are done reading this block's O */
	mmf_kernel_end<TR>(trace);
#endif
}

/* The two-launch form's second kernel: the same blocks without clusters,
 * A read from the plain attention's output (p.a.out). */
template <bool TR>
__global__ void __launch_bounds__(ATTN_PROJ_THREADS, 2) attn_proj_split_kernel(attn_proj_params p, mmf_trace_rec *trace)
{
	extern __shared__ __align__(16) char smem[];
	(void)team_whole_block<TR>(smem);
	const attn_proj_where at = attn_proj_block(p);
	const int W = p.a.width, T = p.a.tokens, ld = attn_proj_ld(W), cpr = W / 8;
	__half *abuf = reinterpret_cast<__half *>(smem);
	__half *wbuf = reinterpret_cast<__half *>(smem + attn_proj_a_bytes(p) + attn_proj_o_bytes());
	const __half *o = static_cast<const __half *>(p.a.out) + ((size_t)at.b * T + at.q0) * W;
	for (int i = threadIdx.x; i < ATTN_CAUSAL_ROWS * cpr; i += ATTN_PROJ_THREADS) {
		const int r = i / cpr, c = i - r * cpr;
		const bool ok = at.q0 + r < T;
		attn_proj_cp16(abuf + r * ld + c * 8, ok ? o + (size_t)r * W + c * 8 : o, ok);
	}
	attn_proj_stage_w(p, at.h, wbuf, threadIdx.x, ATTN_PROJ_THREADS);
	asm volatile("cp.async.wait_all;\n" ::: "memory");
	__syncthreads();
	attn_proj_gemm(p, at.b, at.q0, at.h, abuf, wbuf, threadIdx.x >> 5, threadIdx.x & 31);
	mmf_kernel_end<TR>(trace);
}

extern "C" int mmf_attn_proj_desc(const void *qkv, void *scratch, const void *wo, const float *bias, const void *res,
				  void *out, int batch, int tokens, int width, int heads, mmf_opdesc *d)
{
	mmf_opdesc ad;
	int rc = mmf_attn_causal_desc(qkv, scratch, batch, tokens, width, heads, &ad);
	if (rc < 0)
		return rc;
	attn_proj_params p;
	p.a = *reinterpret_cast<const attn_causal_params *>(ad.params);
	p.wo = wo, p.bias = bias, p.res = res, p.out = out;
	if (!wo || !out || !attn_causal_small(p.a) || heads > ATTN_PROJ_MAX_HEADS || width != heads * ATTN_PROJ_DH ||
	    ((uintptr_t)wo | (uintptr_t)res | (uintptr_t)out) % 16)
		return -EINVAL;
	return mmf_desc_pack(d, MMF_OP_ATTN_PROJ, p, attn_proj_blocks(p), ATTN_PROJ_THREADS, attn_proj_smem_bytes(p));
}

/* Whether a cluster of `heads` blocks fits on the stream's SMs: the cache
 * of the one-launch kernel's shape (per head count; the shared memory is
 * the same for every width this kernel takes, 512 at most). */
static bool attn_proj_fits(const attn_proj_params &p, cudaStream_t stream)
{
	static mmf_cluster_cache cache;
	return mmf_cluster_fits(attn_proj_kernel<false>, ATTN_PROJ_THREADS, attn_proj_smem_bytes(p), (unsigned)p.a.heads,
				stream, &cache);
}

extern "C" int mmf_attn_proj_launch_desc(const mmf_opdesc *d, mmf_stream stream)
{
	if (d->f32)
		return -EINVAL;
	const attn_proj_params &p = *reinterpret_cast<const attn_proj_params *>(d->params);
	const cudaStream_t s = (cudaStream_t)stream;
	const int smem = attn_proj_smem_bytes(p), blocks = attn_proj_blocks(p);
	static bool attr_set = false;
	if (!attr_set) {
		MMF_CUDA_CHECK(cudaFuncSetAttribute(attn_proj_kernel<false>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
		MMF_CUDA_CHECK(cudaFuncSetAttribute(attn_proj_kernel<true>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
		MMF_CUDA_CHECK(cudaFuncSetAttribute(attn_proj_split_kernel<false>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
		MMF_CUDA_CHECK(cudaFuncSetAttribute(attn_proj_split_kernel<true>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
		attr_set = true;
	}
	/* One launch where clusters are on (sm_90+, mmf_set_cluster) and fit; a
	 * cluster launch refused after all (not sticky) takes the two. */
	if (mmf_cluster_max >= p.a.heads && attn_proj_fits(p, s)) {
		if (mmf_launch_traced(attn_proj_kernel<true>, attn_proj_kernel<false>, blocks, ATTN_PROJ_THREADS, smem, s, p, 1,
				      (unsigned)p.a.heads) == cudaSuccess)
			return 0;
		(void)cudaGetLastError();
	}
	int rc = mmf_attn_causal_f16(p.a.qkv, p.a.out, p.a.batch, p.a.tokens, p.a.width, p.a.heads, stream);
	if (rc < 0)
		return rc;
	MMF_CUDA_CHECK(mmf_launch_traced(attn_proj_split_kernel<true>, attn_proj_split_kernel<false>, blocks,
					 ATTN_PROJ_THREADS, smem, s, p));
	MMF_CUDA_CHECK(cudaGetLastError());
	return 0;
}

/* Forces the two-launch form (tests: both forms against the CPU). */
extern "C" int mmf_attn_proj_split_launch_desc(const mmf_opdesc *d, mmf_stream stream)
{
	if (d->kind != MMF_OP_ATTN_PROJ || d->f32)
		return -EINVAL;
	const int saved = mmf_cluster_max;
	mmf_cluster_max = 0;
	const int rc = mmf_attn_proj_launch_desc(d, stream);
	mmf_cluster_max = saved;
	return rc;
}

extern "C" int mmf_none_desc(mmf_opdesc *d)
{
	memset(d, 0, sizeof *d);
	d->kind = MMF_OP_NONE;
	return 0;
}
