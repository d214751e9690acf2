/* tokenizer: the CLIP byte-level BPE tokenizer, giving the same ids as
 * open_clip's SimpleTokenizer (open_clip.get_tokenizer('RN50'): context 77,
 * clean='lower'), text cleaning (ftfy.fix_text, html.unescape, whitespace,
 * str.lower) included. A tokenizer is immutable once made, so any number of
 * threads may share one. */
#ifndef MMF_TOKENIZER_H
#define MMF_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct clip_tokenizer clip_tokenizer;

#define CLIP_TOKEN_SOT 49406
#define CLIP_TOKEN_EOT 49407
#define CLIP_CONTEXT_LENGTH 77

/* The default vocabulary path: $MMF_BPE_VOCAB if set, else
 * MMF_DATADIR "/bpe_simple_vocab_16e6.txt.gz". */
const char *clip_tokenizer_default_path(void);

/* Reads the gzip'd merges file (path NULL: the default). Errors: -ENOENT when
 * the file is missing, -EINVAL for a corrupt or truncated file or content
 * that is not the CLIP merges list, -ENOMEM, or the errno of a failed read. */
int clip_tokenizer_new(const char *path, clip_tokenizer **out, mmf_err *err);
void clip_tokenizer_free(clip_tokenizer *t);

/* Encodes `len` bytes of UTF-8 (NUL bytes included) into exactly ctx ids:
 * SOT, the BPE ids, EOT, zero padding; when too long, the first ctx-1 tokens
 * then EOT as the last, as open_clip does. Returns the number of non-padding
 * ids (2..ctx), or -EILSEQ for invalid UTF-8 (the message gives the byte
 * offset), -EINVAL for ctx < 2, NULL arguments or text open_clip itself
 * rejects, -ENOMEM. Safe to call from many threads on one tokenizer. */
int clip_tokenize(const clip_tokenizer *t, const char *text, size_t len, int32_t *ids, int ctx, mmf_err *err);

#endif
