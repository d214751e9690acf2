/* embed: the text tower's input. ids [batch][tokens] int32, tok_emb
 * [vocab][width] and pos [tokens][width] give y [batch][tokens][width] =
 * tok_emb[id] + pos[t]. fp16 tables and output, or fp32 (the descriptor's
 * fp32 form); the add in fp32 either way.
 *
 * A tile is one token row (77 tiles a sample): a gather of one table row
 * plus one positional row, 8 elements a thread and access (16 bytes in
 * fp16, 2 x 16 in fp32), a team of 64 covering CLIP's 512-wide rows in one
 * pass. An id outside [0, vocab) writes a row of zeros and reads no table
 * row: the host validates ids before upload (cpu_embed_text does), so this
 * only keeps a bad id from reading out of bounds. No shared memory, no
 * barrier. */
#ifndef MMF_EMBED_CUH
#define MMF_EMBED_CUH

#include <cuda_fp16.h>
#include <stdint.h>

#include "team.cuh"

struct embed_params {
	const int32_t *ids;	/* [batch][tokens] */
	const void *tok;	/* [vocab][width] */
	const void *pos;	/* [tokens][width] */
	void *y;		/* [batch][tokens][width] */
	int batch, tokens, width, vocab;
};

constexpr int EMBED_TEAM = 64;

__host__ __device__ static inline int embed_tiles(const embed_params &p) { return p.batch * p.tokens; }

__host__ __device__ static inline int embed_smem_bytes(const embed_params &) { return 0; }

/* T: the tables' and the output's element type, __half or float. */
template <typename T>
__device__ inline void embed_tile(const embed_params &p, int tile, const mmf_team &team)
{
	const int nvec = p.width / 8, t = tile % p.tokens;
	const int id = __ldg(p.ids + tile);
	const bool ok = id >= 0 && id < p.vocab;
	const T *e = static_cast<const T *>(p.tok) + (size_t)(ok ? id : 0) * p.width;
	const T *pos = static_cast<const T *>(p.pos) + (size_t)t * p.width;
	T *y = static_cast<T *>(p.y) + (size_t)tile * p.width;
	for (int c = team.tid; c < nvec; c += EMBED_TEAM) {
		float out[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
		if (ok) {
			float pf[8];
			mmf_ldg8(e + 8 * c, out);
			mmf_ldg8(pos + 8 * c, pf);
#pragma unroll
			for (int i = 0; i < 8; i++)
				out[i] += pf[i];
		}
		mmf_store8(y + 8 * c, out);
	}
}

#endif
