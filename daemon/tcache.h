/* tcache: the worker's cache of text embeddings, keyed by the exact token
 * ids. Classify sends the same labels again and again (and apps embed the
 * same prompts): a hit copies the embedding instead of running the text
 * tower. Direct-mapped (a new entry replaces the one in its slot), owned by
 * the worker thread (no locking). */
#ifndef MMF_TCACHE_H
#define MMF_TCACHE_H

#include <stdint.h>

typedef struct tcache tcache;

/* entries 0 gives NULL (no cache). context: token ids per text; dim: floats
 * per embedding. */
tcache *tcache_new(int entries, int context, int dim);
void tcache_free(tcache *c);
/* Copies the embedding of tokens into emb and returns 1, or returns 0. */
int tcache_get(tcache *c, const int32_t *tokens, float *emb);
void tcache_put(tcache *c, const int32_t *tokens, const float *emb);

#endif
