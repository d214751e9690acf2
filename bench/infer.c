/* mmf-bench --image/--text: real inputs in process (infer.h). */
#include "config.h"
#include "infer.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "engine/cpu.h"
#include "engine/image.h"
#include "engine/tokenizer.h"
#ifdef MMF_GPU_BENCH
#include "engine/gpu_exec.h"
#endif

#define INFER_BATCH 8

/* A JSON string: jansson's escaping for UTF-8; a text that is not UTF-8
 * (a tokenizer error case) has its bytes written one by one as \u00XX,
 * so that the file stays valid JSON. */
static void js_str_n(FILE *fp, const char *s, size_t n)
{
	json_t *j = json_stringn(s, n);
	if (j && json_dumpf(j, fp, JSON_ENCODE_ANY) == 0) {
		json_decref(j);
		return;
	}
	json_decref(j);
	fputc('"', fp);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\')
			fprintf(fp, "\\%c", c);
		else if (c < 0x20 || c >= 0x80)
			fprintf(fp, "\\u%04x", c);
		else
			fputc(c, fp);
	}
	fputc('"', fp);
}

static void js_str(FILE *fp, const char *s) { js_str_n(fp, s, strlen(s)); }

static void js_floats(FILE *fp, const float *v, int n)
{
	fputc('[', fp);
	for (int i = 0; i < n; i++)
		fprintf(fp, "%s%.9g", i ? ", " : "", v[i]);
	fputc(']', fp);
}

int infer_run(const infer_opts *o, const clip_model *m, const char *model_path, chain *const ch[2])
{
	const clip_config *c = &m->cfg;
	int E = c->embed_dim, S = c->image_size, T = c->context, rc = 1;
	size_t S2 = (size_t)S * S;
	mmf_err err = {0};
	clip_tokenizer *tok = NULL;
	cpu_engine *eng[2] = {NULL, NULL};
#ifdef MMF_GPU_BENCH
	gpu_exec *gx = NULL;
#endif
	float *px = calloc((size_t)(o->nimages ? o->nimages : 1) * 3 * S2, sizeof(float));
	int32_t *ids = calloc((size_t)(o->ntexts ? o->ntexts : 1) * T, sizeof(int32_t));
	float *ie = calloc((size_t)(o->nimages ? o->nimages : 1) * E, sizeof(float));
	float *te = calloc((size_t)(o->ntexts ? o->ntexts : 1) * E, sizeof(float));
	float *lg = calloc((size_t)(o->nimages && o->ntexts ? o->nimages * o->ntexts : 1), sizeof(float));
	int *ntok = calloc((size_t)(o->ntexts ? o->ntexts : 1), sizeof(int));
	float *pr = calloc((size_t)(o->ntexts ? o->ntexts : 1), sizeof *pr);
	int *order = calloc((size_t)(o->ntexts ? o->ntexts : 1), sizeof *order);
	if (!px || !ids || !ie || !te || !lg || !ntok || !pr || !order) {
		fprintf(stderr, "mmf-bench: out of memory for %d images and %d texts\n", o->nimages, o->ntexts);
		goto out;
	}

	/* Inputs first: a bad file or text is reported before any engine work. */
	for (int i = 0; i < o->nimages; i++) {
		mmf_image im = {0};
		if (mmf_image_load(o->images[i], 0, &im, &err) < 0 ||
		    mmf_image_preprocess(im.rgb, im.w, im.h, S, px + (size_t)i * 3 * S2, &err) < 0) {
			fprintf(stderr, "mmf-bench: %s\n", err.msg);
			mmf_image_free(&im);
			goto out;
		}
		mmf_image_free(&im);
	}
	if (o->ntexts) {
		if (clip_tokenizer_new(o->vocab, &tok, &err) < 0) {
			fprintf(stderr, "mmf-bench: %s\n", err.msg);
			goto out;
		}
		for (int i = 0; i < o->ntexts; i++) {
			int n = clip_tokenize(tok, o->texts[i], strlen(o->texts[i]), ids + (size_t)i * T, T, &err);
			if (n < 0) {
				fprintf(stderr, "mmf-bench: text %d: %s\n", i, err.msg);
				goto out;
			}
			ntok[i] = n;
			for (int k = 0; k < n; k++)
				if (ids[(size_t)i * T + k] >= c->vocab) {
					fprintf(stderr,
						"mmf-bench: text %d: token %d is outside the model's vocabulary of %d (a synthetic "
						"model with a small vocabulary cannot read real text)\n",
						i, ids[(size_t)i * T + k], c->vocab);
					goto out;
				}
		}
	}

	if (o->cuda) {
#ifdef MMF_GPU_BENCH
		gpu_exec_opts go = {.sms = o->sms, .max_batch = INFER_BATCH, .fuse = GPU_FUSE_OFF, .model_path = model_path,
				    .precision = o->precision};
		if (gpu_exec_new(ch[TOWER_IMAGE], ch[TOWER_TEXT], &go, &gx, &err) < 0) {
			fprintf(stderr, "mmf-bench: %s\n", err.msg);
			goto out;
		}
		for (int i0 = 0, t0 = 0; i0 < o->nimages || t0 < o->ntexts; i0 += INFER_BATCH, t0 += INFER_BATCH) {
			int bi = o->nimages - i0 > INFER_BATCH ? INFER_BATCH : o->nimages - i0 > 0 ? o->nimages - i0 : 0;
			int bt = o->ntexts - t0 > INFER_BATCH ? INFER_BATCH : o->ntexts - t0 > 0 ? o->ntexts - t0 : 0, fused;
			double us;
			if (gpu_exec_run(gx, px + (size_t)i0 * 3 * S2, bi, ids + (size_t)t0 * T, bt, ie + (size_t)i0 * E,
					 te + (size_t)t0 * E, &fused, &us, &err) < 0) {
				fprintf(stderr, "mmf-bench: %s\n", err.msg);
				goto out;
			}
		}
#else
		(void)model_path;
		fprintf(stderr, "mmf-bench: --device cuda: this build has no CUDA backend\n");
		goto out;
#endif
	} else {
		cpu_set_threads(o->threads);
		for (int t = 0; t < 2; t++)
			if (cpu_engine_new(ch[t], INFER_BATCH, &eng[t], &err) < 0) {
				fprintf(stderr, "mmf-bench: %s\n", err.msg);
				goto out;
			}
		for (int i = 0; i < o->nimages; i += INFER_BATCH) {
			int b = o->nimages - i < INFER_BATCH ? o->nimages - i : INFER_BATCH;
			if (cpu_embed_image(eng[0], px + (size_t)i * 3 * S2, b, ie + (size_t)i * E, &err) < 0) {
				fprintf(stderr, "mmf-bench: %s\n", err.msg);
				goto out;
			}
		}
		for (int i = 0; i < o->ntexts; i += INFER_BATCH) {
			int b = o->ntexts - i < INFER_BATCH ? o->ntexts - i : INFER_BATCH;
			if (cpu_embed_text(eng[1], ids + (size_t)i * T, b, te + (size_t)i * E, &err) < 0) {
				fprintf(stderr, "mmf-bench: %s\n", err.msg);
				goto out;
			}
		}
	}

	if (o->nimages && o->ntexts)
		clip_logits(ie, o->nimages, te, o->ntexts, E, m->logit_scale, lg);
	for (int i = 0; i < o->nimages && o->ntexts; i++) {
		if (clip_zero_shot(lg + (size_t)i * o->ntexts, o->ntexts, pr, order) < 0) {
			fprintf(stderr, "mmf-bench: out of memory\n");
			goto out;
		}
		printf("%s:\n", o->images[i]);
		for (int k = 0; k < o->ntexts; k++)
			printf("  %8.4f  %s\n", pr[k], o->texts[order[k]]);
	}
	if (!(o->nimages && o->ntexts)) {
		for (int i = 0; i < o->nimages; i++)
			printf("%s: image embedding, %d values: %.6f %.6f %.6f %.6f ...\n", o->images[i], E, ie[(size_t)i * E],
			       ie[(size_t)i * E + 1], ie[(size_t)i * E + 2], ie[(size_t)i * E + 3]);
		for (int i = 0; i < o->ntexts; i++)
			printf("text %d (%d tokens): embedding, %d values: %.6f %.6f %.6f %.6f ...\n", i, ntok[i], E,
			       te[(size_t)i * E], te[(size_t)i * E + 1], te[(size_t)i * E + 2], te[(size_t)i * E + 3]);
	}
	if (o->out) {
		FILE *fp = fopen(o->out, "wb");
		if (!fp || fwrite(ie, sizeof(float), (size_t)o->nimages * E, fp) != (size_t)o->nimages * E ||
		    fwrite(te, sizeof(float), (size_t)o->ntexts * E, fp) != (size_t)o->ntexts * E || fclose(fp)) {
			fprintf(stderr, "mmf-bench: %s: cannot write: %s\n", o->out, strerror(errno));
			goto out;
		}
		printf("%d image and %d text embeddings (float32, %d values each) written to %s\n", o->nimages, o->ntexts, E,
		       o->out);
	}
	if (o->json) {
		FILE *fp = fopen(o->json, "w");
		if (!fp) {
			fprintf(stderr, "mmf-bench: %s: cannot write: %s\n", o->json, strerror(errno));
			goto out;
		}
		fprintf(fp, "{\n  \"device\": \"%s\",\n  \"embed_dim\": %d,\n  \"images\": [", o->cuda ? "cuda" : "cpu", E);
		for (int i = 0; i < o->nimages; i++) {
			fprintf(fp, "%s\n    {\"path\": ", i ? "," : "");
			js_str(fp, o->images[i]);
			fputs(", \"embedding\": ", fp);
			js_floats(fp, ie + (size_t)i * E, E);
			if (o->ntexts) {
				fputs(", \"logits\": ", fp);
				js_floats(fp, lg + (size_t)i * o->ntexts, o->ntexts);
			}
			fputc('}', fp);
		}
		fputs("],\n  \"texts\": [", fp);
		for (int i = 0; i < o->ntexts; i++) {
			fprintf(fp, "%s\n    {\"text\": ", i ? "," : "");
			js_str(fp, o->texts[i]);
			fputs(", \"tokens\": [", fp);
			for (int k = 0; k < ntok[i]; k++)
				fprintf(fp, "%s%d", k ? ", " : "", ids[(size_t)i * T + k]);
			fputs("], \"embedding\": ", fp);
			js_floats(fp, te + (size_t)i * E, E);
			fputc('}', fp);
		}
		fputs("]\n}\n", fp);
		if (fclose(fp)) {
			fprintf(stderr, "mmf-bench: %s: cannot write: %s\n", o->json, strerror(errno));
			goto out;
		}
	}
	rc = 0;
out:
#ifdef MMF_GPU_BENCH
	gpu_exec_free(gx);
#endif
	cpu_engine_free(eng[0]);
	cpu_engine_free(eng[1]);
	clip_tokenizer_free(tok);
	free(px), free(ids), free(ie), free(te), free(lg), free(ntok), free(pr), free(order);
	return rc;
}

/* One text's ids as a JSON object; an error (invalid UTF-8) is reported in it. */
static void tokenize_one(FILE *fp, const clip_tokenizer *tok, const char *s, size_t n, int ctx, int32_t *ids, int first)
{
	mmf_err err = {0};
	int k = clip_tokenize(tok, s, n, ids, ctx, &err);
	fprintf(fp, "%s\n  {\"text\": ", first ? "" : ",");
	js_str_n(fp, s, n);
	if (k < 0) {
		fputs(", \"error\": ", fp);
		js_str(fp, err.msg);
	} else {
		fputs(", \"ids\": [", fp);
		for (int i = 0; i < k; i++)
			fprintf(fp, "%s%d", i ? ", " : "", ids[i]);
		fputc(']', fp);
	}
	fputc('}', fp);
}

int infer_tokenize(const infer_opts *o, const char *texts_json, int ctx)
{
	mmf_err err = {0};
	clip_tokenizer *tok = NULL;
	json_t *arr = NULL;
	json_error_t je;
	FILE *fp = stdout;
	int rc = 1, first = 1;
	int32_t *ids = calloc((size_t)ctx, sizeof *ids);
	if (!ids) {
		fprintf(stderr, "mmf-bench: out of memory\n");
		return 1;
	}
	if (clip_tokenizer_new(o->vocab, &tok, &err) < 0) {
		fprintf(stderr, "mmf-bench: %s\n", err.msg);
		goto out;
	}
	if (texts_json) {
		arr = json_load_file(texts_json, JSON_ALLOW_NUL, &je);
		if (!arr || !json_is_array(arr)) {
			fprintf(stderr, "mmf-bench: %s: expected a JSON array of strings: %s (line %d)\n", texts_json,
				arr ? "not an array" : je.text, arr ? 0 : je.line);
			goto out;
		}
		for (size_t i = 0; i < json_array_size(arr); i++)
			if (!json_is_string(json_array_get(arr, i))) {
				fprintf(stderr, "mmf-bench: %s: element %zu is not a string\n", texts_json, i);
				goto out;
			}
	}
	if (o->json && !(fp = fopen(o->json, "w"))) {
		fprintf(stderr, "mmf-bench: %s: cannot write: %s\n", o->json, strerror(errno));
		fp = NULL;
		goto out;
	}
	fputc('[', fp);
	for (int i = 0; i < o->ntexts; i++, first = 0)
		tokenize_one(fp, tok, o->texts[i], strlen(o->texts[i]), ctx, ids, first);
	for (size_t i = 0; arr && i < json_array_size(arr); i++, first = 0) {
		json_t *v = json_array_get(arr, i);
		tokenize_one(fp, tok, json_string_value(v), json_string_length(v), ctx, ids, first);
	}
	fputs("\n]\n", fp);
	rc = 0;
out:
	if (fp && fp != stdout && fclose(fp) && rc == 0) {
		fprintf(stderr, "mmf-bench: %s: cannot write: %s\n", o->json, strerror(errno));
		rc = 1;
	}
	json_decref(arr);
	clip_tokenizer_free(tok);
	free(ids);
	return rc;
}
