/* team.cuh: the team contract that makes any two ops fusable (see
 * DESIGN.md). An op's device code is a tile function
 *
 *     __device__ void op_tile(const Params &p, int tile, mmf_team team);
 *
 * run by a team of threads: it learns its thread index in the team, the team
 * size and a named barrier id, synchronises only with team_sync() (never
 * __syncthreads(), which would stall a second team sharing the block), and
 * touches only its own shared-memory slice. A plain kernel is one team per
 * block with barrier 0; the fusion strategies place two teams in one block
 * (barriers 1 and 2) or run two tile functions back to back. */
#ifndef MMF_TEAM_CUH
#define MMF_TEAM_CUH

#include <cuda_fp16.h>
#include <stdint.h>

#include "mmf_trace.h"

struct mmf_team {
	int tid;	/* thread index within the team */
	int size;	/* threads in the team, a multiple of 32 */
	int barrier;	/* named barrier id (0..15) */
	char *smem;	/* this team's shared-memory slice */
};

/* bar.sync with an explicit thread count waits for exactly this team's
 * warps, which is what lets two teams share a block. */
__device__ __forceinline__ void team_sync(const mmf_team &t)
{
	asm volatile("bar.sync %0, %1;" ::"r"(t.barrier), "r"(t.size) : "memory");
}

/* Programmatic dependent launch (sm_90+, an optional Hopper path): a kernel
 * waits until the previous kernel's memory is visible, and once its block
 * has done its work lets the next kernel on the stream be scheduled.
 * Launched without the attribute (or on sm_87) both are no-ops. */
__device__ __forceinline__ void mmf_pdl_wait()
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
	asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

__device__ __forceinline__ void mmf_pdl_trigger()
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
	asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

/* Thread-block clusters (sm_90+ only: compiled for no other
 * architecture, so every caller sits under the same #if; an optional
 * Hopper path used only by plain launches: the cluster barrier counts every
 * thread of every block of the cluster, so a fused block, with a second
 * team, cannot take part). mmf_cluster_sync(): arrive with release, wait
 * with acquire. The arrive and wait halves let a block signal that it is
 * done reading its peers' shared memory and wait only before it exits.
 * mmf_dsmem_map gives the shared::cluster address of the same offset in
 * block `rank` of the cluster; mmf_dsmem_ld2 reads two floats there
 * (8-byte aligned). */
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
__device__ __forceinline__ void mmf_cluster_arrive() { asm volatile("barrier.cluster.arrive.release.aligned;" ::: "memory"); }

__device__ __forceinline__ void mmf_cluster_wait() { asm volatile("barrier.cluster.wait.acquire.aligned;" ::: "memory"); }

__device__ __forceinline__ void mmf_cluster_sync()
{
	mmf_cluster_arrive();
	mmf_cluster_wait();
}

__device__ __forceinline__ uint32_t mmf_dsmem_map(uint32_t smem_addr, int rank)
{
	uint32_t r;
	asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(r) : "r"(smem_addr), "r"(rank));
	return r;
}

__device__ __forceinline__ float2 mmf_dsmem_ld2(uint32_t cluster_addr)
{
	float2 v;
	asm volatile("ld.shared::cluster.v2.f32 {%0, %1}, [%2];" : "=f"(v.x), "=f"(v.y) : "r"(cluster_addr) : "memory");
	return v;
}
#endif

/* Block tracing (mmf_trace.h): every kernel has a traced template instance
 * (TR) and takes a record pointer after its parameters: the launcher
 * (mmf_launch_traced) picks the traced instance while tracing is on and
 * hands it the first of its launch's records (NULL past the buffer's end);
 * a block's first thread writes the record at that pointer plus its index.
 * No atomics and no global loads; with tracing off the kernels run are
 * exactly the untraced code. */
__device__ __forceinline__ unsigned long long mmf_trace_now()
{
	unsigned long long t;
	asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
	return t;
}

/* part: 0 a plain kernel, 1 / 2 the first / second op of a fused kernel,
 * 3 both (intra-thread: the block runs one op's tile, then the other's).
 * Plain stores only: the block exits without waiting for them. */
__device__ __forceinline__ void mmf_trace_write(mmf_trace_rec *r, unsigned long long t0, unsigned int part)
{
	if (!r)
		return;
	unsigned int sm;
	asm volatile("mov.u32 %0, %%smid;" : "=r"(sm));
	r->t0 = t0, r->t1 = mmf_trace_now();
	r->sm = sm, r->block = blockIdx.x, r->part = part, r->grid = gridDim.x;
}

/* A plain kernel's start time, kept in shared memory until its end. */
__device__ __forceinline__ unsigned long long &mmf_trace_t0()
{
	__shared__ unsigned long long t0;
	return t0;
}

/* Probe builds (-DMMF_PROBE; experiments, never the default build): a
 * tile marks points of its work with MMF_PROBE_MARK(team, k), k <
 * MMF_PROBE_N, and a plain kernel's traced record carries the time from t0
 * to each mark, and the block's wait for its predecessor (slot
 * MMF_PROBE_N: the block's start). The first thread of the team marks. */
#ifdef MMF_PROBE
__device__ __forceinline__ unsigned long long *mmf_probe_slots()
{
	__shared__ unsigned long long s[MMF_PROBE_N + 1];
	return s;
}
#define MMF_PROBE_MARK(team, k)                                   \
	do {                                                      \
		if ((team).tid == 0)                              \
			mmf_probe_slots()[(k)] = mmf_trace_now(); \
	} while (0)
#else
#define MMF_PROBE_MARK(team, k) ((void)0)
#endif

/* The end of every plain kernel: PDL's trigger, then (TR: the traced
 * instance of the kernel) the block's record. */
template <bool TR>
__device__ __forceinline__ void mmf_kernel_end(mmf_trace_rec *trace)
{
	mmf_pdl_trigger();
	if (TR && threadIdx.x == 0 && trace) {
		mmf_trace_write(trace + blockIdx.x, mmf_trace_t0(), 0);
#ifdef MMF_PROBE
		mmf_trace_rec *r = trace + blockIdx.x;
		const unsigned long long *s = mmf_probe_slots(), t0 = mmf_trace_t0();
		r->wait_ns = (unsigned int)(t0 - s[MMF_PROBE_N]);
		for (int k = 0; k < MMF_PROBE_N; k++)
			r->ph[k] = s[k] ? (unsigned int)(s[k] - t0) : 0u;
#endif
	}
}

/* The team of a plain (unfused) launch: the whole block, barrier 0. Every
 * kernel starts here, so this is also where it waits for its predecessor
 * (and where the traced instance's time starts). */
template <bool TR>
__device__ __forceinline__ mmf_team team_whole_block(char *smem)
{
#ifdef MMF_PROBE
	if (TR && threadIdx.x == 0) {
		mmf_probe_slots()[MMF_PROBE_N] = mmf_trace_now();
		for (int k = 0; k < MMF_PROBE_N; k++)
			mmf_probe_slots()[k] = 0;
	}
#endif
	mmf_pdl_wait();
	if (TR && threadIdx.x == 0)
		mmf_trace_t0() = mmf_trace_now();
	mmf_team t;
	t.tid = threadIdx.x;
	t.size = blockDim.x;
	t.barrier = 0;
	t.smem = smem;
	return t;
}

/* A plain kernel of one team per block for an op whose tile is TILE and tile
 * count TILES, blocks of THREADS (MINB of them an SM: the register cap;
 * 0 names none), grid-stride over the tiles. */
template <class P, void (*TILE)(const P &, int, const mmf_team &), int (*TILES)(const P &), int THREADS, bool TR,
	  int MINB = 0>
__global__ void __launch_bounds__(THREADS, MINB) mmf_plain_kernel(P p, mmf_trace_rec *trace)
{
	extern __shared__ __align__(16) char smem[];
	mmf_team team = team_whole_block<TR>(smem);
	const int tiles = TILES(p);
	for (int t = blockIdx.x; t < tiles; t += gridDim.x)
		TILE(p, t, team);
	mmf_kernel_end<TR>(trace);
}

#ifdef __CUDACC__
#include <string.h>
#include <utility>

#include "mmf_kernels.h"

/* Packs an op's parameters into a descriptor. */
template <class P>
static inline int mmf_desc_pack(mmf_opdesc *d, int kind, const P &p, int tiles, int team, int smem)
{
	static_assert(sizeof(P) <= MMF_OP_PARAMS_MAX, "op parameters larger than a descriptor");
	memset(d, 0, sizeof *d);
	d->kind = kind, d->tiles = tiles, d->team = team, d->smem = smem;
	memcpy(d->params, &p, sizeof p);
	return 0;
}
/* Whether launches carry the programmatic-serialization attribute
 * (mmf_set_pdl, kernels/launch.cu). */
extern bool mmf_pdl_on;
/* The most splits a split-K GEMM launches as one cluster (0: never, else
 * 8; mmf_set_cluster, launch.cu). */
extern int mmf_cluster_max;

/* Launches kernel k like k<<<grid, block, smem, stream>>>(args...), with
 * programmatic dependent launch when enabled, in clusters of `cluster`
 * blocks (0: none; grid.x must be a multiple of it). */
template <typename... KArgs, typename... Args>
static inline cudaError_t mmf_launch_cluster(void (*k)(KArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
					     unsigned cluster, Args &&...args)
{
	cudaLaunchAttribute attr[2];
	unsigned n = 0;
	if (mmf_pdl_on) {
		attr[n].id = cudaLaunchAttributeProgrammaticStreamSerialization;
		attr[n++].val.programmaticStreamSerializationAllowed = 1;
	}
	if (cluster) {
		attr[n].id = cudaLaunchAttributeClusterDimension;
		attr[n].val.clusterDim.x = cluster, attr[n].val.clusterDim.y = 1, attr[n++].val.clusterDim.z = 1;
	}
	cudaLaunchConfig_t cfg = {};
	cfg.gridDim = grid, cfg.blockDim = block, cfg.dynamicSmemBytes = smem, cfg.stream = stream;
	cfg.attrs = n ? attr : nullptr;
	cfg.numAttrs = n;
	return cudaLaunchKernelEx(&cfg, k, std::forward<Args>(args)...);
}

/* The same without clusters. */
template <typename... KArgs, typename... Args>
static inline cudaError_t mmf_launch(void (*k)(KArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
				     Args &&...args)
{
	return mmf_launch_cluster(k, grid, block, smem, stream, 0, std::forward<Args>(args)...);
}

/* Lets kernel k take all the shared memory an SM allows a block
 * (mmf_smem_optin) beside its own static shared memory (none in the
 * default build; a probe build's marks: MMF_PROBE_MARK). */
template <typename K>
static inline cudaError_t mmf_allow_smem(K k)
{
	cudaFuncAttributes a;
	cudaError_t e = cudaFuncGetAttributes(&a, k);
	if (e != cudaSuccess)
		return e;
	return cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, mmf_smem_optin() - (int)a.sharedSizeBytes);
}

/* Set by mmf_trace_set (launch.cu): launchers pick kernels' traced instances. */
extern bool mmf_trace_on;
/* The first of n records for the next traced launch, NULL when they pass
 * the buffer's end (launch.cu). */
mmf_trace_rec *mmf_trace_next(unsigned int n);

/* Launches the traced instance kt (with the first of its grid * per_block
 * records) while tracing is on, else the plain instance kp. Every kernel
 * takes (params, mmf_trace_rec *); the plain one ignores it. */
template <class P>
static inline cudaError_t mmf_launch_traced(void (*kt)(P, mmf_trace_rec *), void (*kp)(P, mmf_trace_rec *), dim3 grid,
					    dim3 block, size_t smem, cudaStream_t stream, const P &p, unsigned int per_block = 1,
					    unsigned cluster = 0)
{
	if (mmf_trace_on)
		return mmf_launch_cluster(kt, grid, block, smem, stream, cluster, p, mmf_trace_next(grid.x * per_block));
	return mmf_launch_cluster(kp, grid, block, smem, stream, cluster, p, (mmf_trace_rec *)nullptr);
}

/* Launches an op's mmf_plain_kernel (its traced instance while tracing is
 * on): a block a tile, up to 65535 blocks (grid-stride beyond). */
template <class P, void (*TILE)(const P &, int, const mmf_team &), int (*TILES)(const P &), int THREADS, int MINB = 0>
static inline cudaError_t mmf_plain_launch(const P &p, size_t smem, cudaStream_t stream)
{
	const int tiles = TILES(p);
	return mmf_launch_traced(mmf_plain_kernel<P, TILE, TILES, THREADS, true, MINB>,
				 mmf_plain_kernel<P, TILE, TILES, THREADS, false, MINB>, tiles < 65535 ? tiles : 65535, THREADS,
				 smem, stream, p);
}

/* Whether clusters of `size` blocks of kernel k (`threads` a block, `smem`
 * dynamic bytes) can be placed on the SMs of `stream`'s context (a
 * green-context partition may be too small or too scattered for them),
 * asked once per stream and size: the caller keeps one cache per kernel
 * and block shape (a short table of the streams seen, a bit per size). */
struct mmf_cluster_cache {
	struct {
		cudaStream_t s;
		unsigned asked, fits;	/* bit `size` */
	} tab[32];
	int n;
};

template <typename... KArgs>
static inline bool mmf_cluster_fits(void (*k)(KArgs...), unsigned threads, size_t smem, unsigned size,
				    cudaStream_t stream, mmf_cluster_cache *cache)
{
	int e = -1;
	for (int i = 0; i < cache->n && e < 0; i++)
		if (cache->tab[i].s == stream)
			e = i;
	if (e < 0 && cache->n < 32)
		e = cache->n++, cache->tab[e].s = stream, cache->tab[e].asked = cache->tab[e].fits = 0;
	if (e >= 0 && (cache->tab[e].asked >> size & 1))
		return cache->tab[e].fits >> size & 1;
	cudaLaunchAttribute attr;
	attr.id = cudaLaunchAttributeClusterDimension;
	attr.val.clusterDim.x = size, attr.val.clusterDim.y = 1, attr.val.clusterDim.z = 1;
	cudaLaunchConfig_t cfg = {};
	cfg.gridDim = dim3(size), cfg.blockDim = dim3(threads), cfg.dynamicSmemBytes = smem;
	cfg.stream = stream;
	cfg.attrs = &attr, cfg.numAttrs = 1;
	int n = 0;
	cudaError_t err = cudaOccupancyMaxActiveClusters(&n, k, &cfg);
	if (err != cudaSuccess)
		(void)cudaGetLastError();	/* not sticky: the caller falls back */
	const bool fits = err == cudaSuccess && n > 0;
	if (e >= 0)
		cache->tab[e].asked |= 1u << size, cache->tab[e].fits |= (unsigned)fits << size;
	return fits;
}
#endif

/* Eight consecutive elements of an activation tensor as floats, for the two
 * element types the tile functions are compiled for: __half (the fp16
 * tensor-core path, one 16-byte access) and float (the fp32 SIMT path, two).
 * p must be 16-byte aligned. */
__device__ __forceinline__ void mmf_unpack8(uint4 raw, float f[8])
{
	const __half2 *h = reinterpret_cast<const __half2 *>(&raw);
#pragma unroll
	for (int i = 0; i < 4; i++) {
		float2 v = __half22float2(h[i]);
		f[2 * i] = v.x, f[2 * i + 1] = v.y;
	}
}
__device__ __forceinline__ void mmf_load8(const __half *p, float f[8]) { mmf_unpack8(*reinterpret_cast<const uint4 *>(p), f); }
__device__ __forceinline__ void mmf_load8(const float *p, float f[8])
{
	float4 a = reinterpret_cast<const float4 *>(p)[0], b = reinterpret_cast<const float4 *>(p)[1];
	f[0] = a.x, f[1] = a.y, f[2] = a.z, f[3] = a.w, f[4] = b.x, f[5] = b.y, f[6] = b.z, f[7] = b.w;
}
/* The same through the read-only cache (inputs no kernel of the launch writes). */
__device__ __forceinline__ void mmf_ldg8(const __half *p, float f[8]) { mmf_unpack8(__ldg(reinterpret_cast<const uint4 *>(p)), f); }
__device__ __forceinline__ void mmf_ldg8(const float *p, float f[8])
{
	float4 a = __ldg(reinterpret_cast<const float4 *>(p)), b = __ldg(reinterpret_cast<const float4 *>(p) + 1);
	f[0] = a.x, f[1] = a.y, f[2] = a.z, f[3] = a.w, f[4] = b.x, f[5] = b.y, f[6] = b.z, f[7] = b.w;
}
__device__ __forceinline__ void mmf_store8(__half *p, const float f[8])
{
	uint4 raw;
	__half2 *h = reinterpret_cast<__half2 *>(&raw);
#pragma unroll
	for (int i = 0; i < 4; i++)
		h[i] = __floats2half2_rn(f[2 * i], f[2 * i + 1]);
	*reinterpret_cast<uint4 *>(p) = raw;
}
__device__ __forceinline__ void mmf_store8(float *p, const float f[8])
{
	reinterpret_cast<float4 *>(p)[0] = make_float4(f[0], f[1], f[2], f[3]);
	reinterpret_cast<float4 *>(p)[1] = make_float4(f[4], f[5], f[6], f[7]);
}

/* Sum and max over a whole warp, every lane getting the result. */
__device__ __forceinline__ float mmf_warp_sum(float v)
{
#pragma unroll
	for (int o = 16; o > 0; o >>= 1)
		v += __shfl_xor_sync(0xffffffffu, v, o);
	return v;
}
__device__ __forceinline__ float mmf_warp_max(float v)
{
#pragma unroll
	for (int o = 16; o > 0; o >>= 1)
		v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
	return v;
}

/* Sum over the team; scratch holds one float per warp of the team. */
__device__ __forceinline__ float team_sum(const mmf_team &t, float v, float *scratch)
{
	v = mmf_warp_sum(v);
	int warp = t.tid >> 5, lane = t.tid & 31, nwarps = t.size >> 5;
	team_sync(t);	/* scratch may still be read from a previous call */
	if (lane == 0)
		scratch[warp] = v;
	team_sync(t);
	float s = 0;
	for (int w = 0; w < nwarps; w++)
		s += scratch[w];
	return s;
}

#endif
