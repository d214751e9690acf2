/* synth: CLIP models with seeded random weights, written as open_clip
 * safetensors state dicts, so that tests, benchmarks and demos run without a
 * download. Scales follow open_clip's own initialisation; BatchNorm running
 * statistics and affine parameters are random, so BN folding is exercised. */
#ifndef MMF_SYNTH_H
#define MMF_SYNTH_H

#include <stdint.h>

#include "err.h"
#include "model.h"
#include "safetensors.h"

/* Fills cfg for "tiny", "small", "rn50", "rn101" or "rn50x4". Returns -ENOENT
 * for an unknown name. */
int clip_config_named(const char *name, clip_config *cfg);
/* Checks a configuration for sizes the model cannot have. */
int clip_config_check(const clip_config *cfg, mmf_err *err);
/* Writes a model of configuration cfg with weights from seed. dtype is F32,
 * F16 or BF16 (the int64 BN counters are written as I64, as torch does). */
int clip_synth_write(const clip_config *cfg, uint64_t seed, st_dtype dtype, const char *path, mmf_err *err);
/* A model argument as the programs take it: an existing file is used as it
 * is; a configuration name (tiny, small, rn50, ...) is written once, with
 * weights from seed, to $MMF_CACHE (default /tmp/mmf-cache) and reused. The
 * write goes to a per-process temporary name first, so processes starting
 * together never load a half-written file. note (may be NULL) is told
 * "writing synthetic NAME model to PATH" before a write. */
int clip_model_resolve(const char *arg, uint64_t seed, char *path, size_t len, void (*note)(const char *msg),
		       mmf_err *err);
/* Benchmark inputs from seed: n images of N(0,1) pixels, NCHW [n][3][S][S]
 * (already in normalised space), and n token rows of random length, SOT
 * (vocab-2) ... EOT (vocab-1), zero-padded to the context. Either pointer
 * may be NULL; each comes from its own stream, so one does not change the
 * other. */
void clip_synth_inputs(const clip_config *cfg, int n, uint64_t seed, float *pixels, int32_t *tokens);
/* Deterministic normal draws shared with tests: a splitmix64 stream. */
typedef struct mmf_rng { uint64_t s; int has; float spare; } mmf_rng;
void mmf_rng_seed(mmf_rng *r, uint64_t seed);
uint64_t mmf_rng_u64(mmf_rng *r);
float mmf_rng_uniform(mmf_rng *r);	/* [0,1) */
float mmf_rng_normal(mmf_rng *r);

#endif
