/* infer: mmf-bench's in-process inference on real inputs: JPEG/PNG images
 * and texts through the same tokenizer, preprocessing and engines as mmfd,
 * printing zero-shot probabilities (every image against every text) or the
 * embeddings. tools/validate_openclip.py drives it with --json. */
#ifndef MMF_BENCH_INFER_H
#define MMF_BENCH_INFER_H

#include "engine/chain.h"
#include "engine/model.h"

typedef struct infer_opts {
	const char **images;
	int nimages;
	const char **texts;
	int ntexts;
	const char *vocab;	/* NULL: the default */
	int cuda, sms, threads;
	const char *out;	/* raw float32: image embeddings, then text embeddings */
	const char *json;	/* everything, for scripts */
	int precision;		/* cuda: CLIP_PREC_* (clip_model_load_w) */
} infer_opts;

/* Returns 0, 1 on an input or engine error (reported on stderr). */
int infer_run(const infer_opts *o, const clip_model *m, const char *model_path, chain *const ch[2]);

/* --tokenize: the token ids of every text (with a context of `ctx`) and of
 * every string of the JSON array in texts_json (which may hold any Unicode,
 * NULs included), written as JSON to o->json or stdout; no model needed. */
int infer_tokenize(const infer_opts *o, const char *texts_json, int ctx);

#endif
