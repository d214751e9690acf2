/* mmf_kernels.h: the whole C interface of kernels/. Every entry point checks
 * its preconditions on shapes and alignment, launches on the given stream and
 * returns 0, -EINVAL for a bad argument or -EIO for a CUDA error (printed). */
#ifndef MMF_KERNELS_H
#define MMF_KERNELS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct CUstream_st *mmf_stream;	/* a cudaStream_t */

/* An op ready to launch: validated parameters of one kernel in team form,
 * as the plain launch and the fused kernels (mmf_fuse.h) both take them.
 * Made by the mmf_*_desc functions; plain data, copyable. */
#define MMF_OP_PARAMS_MAX 192
enum {
	MMF_OP_GEMM_L, MMF_OP_GEMM_M, MMF_OP_GEMM_S, MMF_OP_GEMM_W, MMF_OP_GEMM_N,
	MMF_OP_LAYERNORM, MMF_OP_ATTN_CAUSAL, MMF_OP_ATTN_POOL, MMF_OP_POOL_TOKENS,
	MMF_OP_EMBED, MMF_OP_EOT_GATHER, MMF_OP_L2NORM, MMF_OP_AVGPOOL2,
	MMF_OP_POOL_QK, MMF_OP_POOL_FOLD, MMF_OP_GEMV,	/* plain launches only: the fused kernels do not take them */
	MMF_OP_KINDS
};
typedef struct mmf_opdesc {
	int kind;	/* MMF_OP_* */
	int tiles;	/* independent tiles */
	int team;	/* threads a tile needs */
	int smem;	/* shared bytes a team needs */
	int f32;	/* 1: fp32 tensors and the SIMT tile (mmf_op_set_f32); 0: fp16 */
	unsigned char params[MMF_OP_PARAMS_MAX] __attribute__((aligned(16)));
} mmf_opdesc;

/* Launches d as its plain kernel (one team per block). */
int mmf_op_launch(const mmf_opdesc *d, mmf_stream stream);
/* Turns a descriptor made by one of the mmf_*_desc functions below into its
 * fp32 form: the same pointers now hold float tensors (weights and
 * activations; biases and scales are fp32 either way) and the op runs its
 * SIMT tile (CUDA cores, no tensor cores), the fp32 baseline of the
 * analysis report. A GEMM's fp32 form comes from mmf_gemm.f32 instead
 * (mmf_gemm_desc), so this accepts a GEMM descriptor only when it already is
 * fp32. Returns 0, or -EINVAL (an int8 GEMM, or a shape the fp32 tile cannot
 * take). */
int mmf_op_set_f32(mmf_opdesc *d);
const char *mmf_op_kind_name(int kind);

/* y[r][:] = LayerNorm(x[r][:]) * gamma + beta for `rows` rows of `width`
 * halves (floats in the fp32 form; fp32 statistics, eps 1e-5). width must be a multiple of 8 and the
 * pointers 16-byte aligned. */
int mmf_layernorm_f16(const void *x, void *y, const void *gamma, const void *beta,
		      int rows, int width, mmf_stream stream);
int mmf_layernorm_desc(const void *x, void *y, const void *gamma, const void *beta, int rows, int width, mmf_opdesc *d);
int mmf_layernorm_launch_desc(const mmf_opdesc *d, mmf_stream stream);

/* Tensor-core GEMM: C[M][N] = act(A . B^T + bias (+ R)), fp16 in and out
 * (fp32 on the CUDA cores with f32 set, below),
 * fp32 accumulate and bias. B is [N][K] (a linear's weight or an OHWI filter
 * flattened); C and R are dense [M][N]. A is either rows (row m of sample
 * m/rps at A + (m/rps)*sstride + (m%rps)*lda) or, with conv set, the implicit
 * im2col matrix of an NHWC input h x w x cin for a kh x kw filter.
 * K % 8 == 0, N even, cin % 8 == 0, all pointers 16-byte aligned. */
typedef struct mmf_gemm {
	const void *A, *B, *R;	/* R may be NULL */
	const float *bias;	/* may be NULL */
	void *C;
	int M, N, K, act;	/* act: 0 none, 1 ReLU, 2 QuickGELU, 3 GELU */
	int conv;
	int rps, lda;
	long long sstride;
	int h, w, cin, kh, kw, stride, pad, oh, ow;
	/* Split-K: splits > 1 divides the K loop; partials go to ws and the
	 * last block of each output tile (counters, zeroed once by the caller,
	 * left zeroed by the kernel) sums them in a fixed order. */
	int splits;
	float *ws;
	int *counters;
	/* INT8 weights: non-NULL makes B int8 weights q [N][K] (symmetric,
	 * quantised per output channel) packed by mmf_gemm_pack_int8, with
	 * bscale[n] their fp32 scales: C = act(bscale[n] * (A . q^T) + bias
	 * (+ R)). The kernels widen q to fp16 in registers; accumulation stays
	 * fp32. */
	const float *bscale;
	/* fp32 SIMT form: A, B, R and C float, computed with FFMA on the CUDA
	 * cores in the same tiles (threads and shared bytes differ; see
	 * mmf_gemm_info); no int8 weights. */
	int f32;
} mmf_gemm;

/* The int8 weight layout the GEMM reads: rows of mmf_gemm_int8_ldb(K)
 * bytes (K rounded up to 32), each value stored as q + 128, reordered
 * within every 32-byte slice for the tensor-core fragments (gemm.cuh).
 * out holds rows * mmf_gemm_int8_ldb(K) bytes. */
long long mmf_gemm_int8_ldb(int K);
void mmf_gemm_pack_int8(const int8_t *q, int rows, int K, uint8_t *out);

/* Tile configurations: L 128x128 and W 128x64 (256 threads), M 64x64,
 * S 32x64 and N 128x32 (128 threads). */
enum { MMF_GEMM_L = 0, MMF_GEMM_M = 1, MMF_GEMM_S = 2, MMF_GEMM_W = 3, MMF_GEMM_N = 4, MMF_GEMM_NCFG = 5 };

/* Tiles (output tiles x splits), threads per block and dynamic shared bytes
 * of configuration cfg. */
int mmf_gemm_info(const mmf_gemm *g, int cfg, int *tiles, int *threads, int *smem);
/* Split-K workspace bytes and counters that configuration cfg needs at
 * g->splits. */
int mmf_gemm_workspace(const mmf_gemm *g, int cfg, long long *ws_bytes, int *counters);
/* Launches with `grid` blocks (0: one per tile); the fp32 form when g->f32. */
int mmf_gemm_f16(const mmf_gemm *g, int cfg, int grid, mmf_stream stream);
int mmf_gemm_desc(const mmf_gemm *g, int cfg, mmf_opdesc *d);
int mmf_gemm_launch_desc(const mmf_opdesc *d, mmf_stream stream);
/* The same GEMM for at most 8 rows (M <= 8) as a weight-streaming
 * matrix-vector tile on the CUDA cores (gemv.cuh; experimental, plain
 * launches only): fp16, no convolution, int8 or fp32 form, no split-K;
 * K % 8 == 0, lda and sstride multiples of 8, pointers 16-byte aligned. */
int mmf_gemv_desc(const mmf_gemm *g, mmf_opdesc *d);
int mmf_gemv_launch_desc(const mmf_opdesc *d, mmf_stream stream);

/* Programmatic dependent launch (compute capability 9.0+ only): each kernel
 * lets the next one on its stream be scheduled before it finishes, hiding
 * launch latency; results are unchanged. Off by default. */
void mmf_set_pdl(int on);
int mmf_get_pdl(void);

/* Split-K GEMMs in thread-block clusters (compute capability 9.0+ only):
 * the splits of an output tile sum their partials through distributed
 * shared memory instead of a global workspace and ticket; plain launches
 * with one tile per block and at most 8 splits (the portable cluster size)
 * only, where the stream's SMs can place such a cluster (fused kernels
 * keep the ticket). Results are bitwise the same. Off by default;
 * mmf_get_cluster() gives the most splits launched as a cluster (0: off). */
void mmf_set_cluster(int on);
int mmf_get_cluster(void);
/* The most dynamic shared memory a block of the current device may opt in
 * to (48 KB if the device cannot be asked). */
int mmf_smem_optin(void);

/* Streaming copy of `bytes` (a multiple of 16) with 8 blocks per SM over
 * `sms` SMs: the bandwidth ceiling of a partition. */
int mmf_copy_bw(const void *src, void *dst, size_t bytes, int sms, mmf_stream stream);

/* DRAM hog (kernels/hog.cu, driven by engine/gpu_dram.c): `blocks` blocks
 * of 256 threads each read `chunks` x 4 KiB of buf (`bytes`, a power of two,
 * 32-byte aligned), sleeping sleep_ns after each chunk. mode bit 0:
 * sequential chunks (seed: the first chunk) instead of scattered 32-byte
 * sectors (seed picks them); bit 1: every 16 bytes read are written back.
 * sink is written only to keep the loads. */
#define MMF_HOG_MODES 4
int mmf_hog_launch(void *buf, size_t bytes, int mode, unsigned long long seed, int blocks, int chunks, unsigned sleep_ns,
		   unsigned *sink, mmf_stream stream);
/* Resident hog blocks per SM (occupancy), or -EIO. */
int mmf_hog_blocks_per_sm(void);

#ifdef __cplusplus
}
#endif

#endif
