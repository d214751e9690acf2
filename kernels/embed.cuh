/* embed: the text tower's input. ids [batch][tokens] int32, tok_emb
 * [vocab][width] and pos [tokens][width] give y [batch][tokens][width] =
 * tok_emb[id] + pos[t]. fp16 tables and output, the add in fp32.
 *
 * A tile is one token row (77 tiles a sample): a gather of one table row
 * plus one positional row, 16-byte loads and stores, a team of 64 covering
 * CLIP's 512-wide rows in one pass. An id outside [0, vocab) writes a row
 * of zeros and reads no table row: the host validates ids before upload
 * (cpu_embed_text does), so this only keeps a bad id from reading out of
 * bounds. No shared memory, no barrier. */
#ifndef MMF_EMBED_CUH
#define MMF_EMBED_CUH

#include <cuda_fp16.h>
#include <stdint.h>

#include "team.cuh"

struct embed_params {
	const int32_t *ids;	/* [batch][tokens] */
	const __half *tok;	/* [vocab][width] */
	const __half *pos;	/* [tokens][width] */
	__half *y;		/* [batch][tokens][width] */
	int batch, tokens, width, vocab;
};

constexpr int EMBED_TEAM = 64;

__host__ __device__ static inline int embed_tiles(const embed_params &p) { return p.batch * p.tokens; }

__host__ __device__ static inline int embed_smem_bytes(const embed_params &) { return 0; }

__device__ inline void embed_tile(const embed_params &p, int tile, const mmf_team &team)
{
	const int nvec = p.width / 8, t = tile % p.tokens;
	const int id = __ldg(p.ids + tile);
	const bool ok = id >= 0 && id < p.vocab;
	const uint4 *e = reinterpret_cast<const uint4 *>(p.tok + (size_t)(ok ? id : 0) * p.width);
	const uint4 *pos = reinterpret_cast<const uint4 *>(p.pos + (size_t)t * p.width);
	uint4 *y = reinterpret_cast<uint4 *>(p.y + (size_t)tile * p.width);
	for (int c = team.tid; c < nvec; c += EMBED_TEAM) {
		uint4 out = make_uint4(0, 0, 0, 0);
		if (ok) {
			const uint4 er = __ldg(e + c), pr = __ldg(pos + c);
			const __half2 *eh = reinterpret_cast<const __half2 *>(&er), *ph = reinterpret_cast<const __half2 *>(&pr);
			__half2 *o = reinterpret_cast<__half2 *>(&out);
#pragma unroll
			for (int i = 0; i < 4; i++) {
				const float2 a = __half22float2(eh[i]), b = __half22float2(ph[i]);
				o[i] = __floats2half2_rn(a.x + b.x, a.y + b.y);
			}
		}
		y[c] = out;
	}
}

#endif
