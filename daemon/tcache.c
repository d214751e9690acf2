/* Text-embedding cache (tcache.h). */
#include "config.h"
#include "tcache.h"
#include "engine/hash.h"

#include <stdlib.h>
#include <string.h>

struct tcache {
	int n, context, dim;
	unsigned char *used;
	int32_t *tok;	/* n x context */
	float *emb;	/* n x dim */
};

tcache *tcache_new(int entries, int context, int dim)
{
	if (entries <= 0)
		return NULL;
	tcache *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->n = entries, c->context = context, c->dim = dim;
	c->used = calloc((size_t)entries, 1);
	c->tok = malloc((size_t)entries * (size_t)context * sizeof *c->tok);
	c->emb = malloc((size_t)entries * (size_t)dim * sizeof *c->emb);
	if (!c->used || !c->tok || !c->emb) {
		tcache_free(c);
		return NULL;
	}
	return c;
}

void tcache_free(tcache *c)
{
	if (!c)
		return;
	free(c->used), free(c->tok), free(c->emb);
	free(c);
}

static size_t slot(const tcache *c, const int32_t *tokens)
{
	return (size_t)(mmf_fnv1a(MMF_FNV1A_BASIS, tokens, (size_t)c->context * sizeof *tokens) % (uint64_t)c->n);
}

int tcache_get(tcache *c, const int32_t *tokens, float *emb)
{
	if (!c)
		return 0;
	size_t s = slot(c, tokens);
	if (!c->used[s] || memcmp(c->tok + s * (size_t)c->context, tokens, (size_t)c->context * sizeof *tokens))
		return 0;
	memcpy(emb, c->emb + s * (size_t)c->dim, (size_t)c->dim * sizeof *emb);
	return 1;
}

void tcache_put(tcache *c, const int32_t *tokens, const float *emb)
{
	if (!c)
		return;
	size_t s = slot(c, tokens);
	memcpy(c->tok + s * (size_t)c->context, tokens, (size_t)c->context * sizeof *tokens);
	memcpy(c->emb + s * (size_t)c->dim, emb, (size_t)c->dim * sizeof *emb);
	c->used[s] = 1;
}
