/* hash: FNV-1a (64-bit), the one hash behind the plan cache's model key,
 * the synthetic weights' per-tensor seeds and the daemon's text cache. */
#ifndef MMF_HASH_H
#define MMF_HASH_H

#include <stddef.h>
#include <stdint.h>

#define MMF_FNV1A_BASIS 0xcbf29ce484222325ull

/* One step: h mixed with v (a byte, or a whole word where a caller has always
 * mixed one in at once). */
static inline uint64_t mmf_fnv1a_step(uint64_t h, uint64_t v) { return (h ^ v) * 0x100000001b3ull; }

/* h mixed with the n bytes at p. */
static inline uint64_t mmf_fnv1a(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = (const unsigned char *)p;
	for (size_t i = 0; i < n; i++)
		h = mmf_fnv1a_step(h, b[i]);
	return h;
}

#endif
