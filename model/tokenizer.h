/* model/tokenizer.h: SentencePiece unigram tokenizer (T5's spiece.model).
 *
 * An own reader of the SentencePiece model protobuf (pieces with scores and
 * types, the normalizer spec with its precompiled charsmap -- a Darts
 * double-array trie over UTF-8 byte sequences plus the replacement strings --
 * and the trainer spec's special ids) and the unigram Viterbi segmentation
 * with SentencePiece's rules:
 *   - normalisation: the longest charsmap rule at each position (nmt_nfkc for
 *     T5), user-defined pieces passed through untouched, malformed UTF-8 ->
 *     U+FFFD one byte at a time, leading/trailing/repeated spaces removed,
 *     a dummy "\xe2\x96\x81" (U+2581) prefix, spaces escaped as U+2581;
 *   - segmentation: the best-scoring path over the pieces (user-defined pieces
 *     score len * max_score - 0.1, unused pieces are skipped), a character no
 *     piece covers becomes <unk> scored min_score - 10, consecutive <unk>s merge
 *     into one, or with byte fallback each byte of it becomes a <0xXX> piece.
 * The result matches `spm_encode --output_format=id` (tests/model/encoders_tokenizer.c).
 *
 * On top, the T5 rule of the Hugging Face T5 tokenizer: EOS (id 1 in T5)
 * appended, truncation to max_length keeps the EOS, a batch is padded with the
 * pad id (0) to its longest sequence with a 0/1 attention mask.
 */
#ifndef RDT_MODEL_TOKENIZER_H
#define RDT_MODEL_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

typedef struct spm_model spm_model;

/* Piece types of the model protobuf (ModelProto.SentencePiece.Type). */
enum { SPM_NORMAL = 1, SPM_UNKNOWN = 2, SPM_CONTROL = 3, SPM_USER_DEFINED = 4,
       SPM_UNUSED = 5, SPM_BYTE = 6 };

/* Load a SentencePiece .model file; NULL + rdt_error() on failure. */
spm_model *spm_load(const char *path);
/* Parse a model from memory (name is used in messages); NULL + rdt_error(). */
spm_model *spm_parse(const void *data, size_t len, const char *name);
void spm_free(spm_model *m);

int spm_vocab_size(const spm_model *m);
/* Special ids from the trainer spec (-1 when disabled). */
int spm_unk_id(const spm_model *m);
int spm_eos_id(const spm_model *m);
int spm_pad_id(const spm_model *m);
/* The piece text of an id (NULL if out of range) and its type. */
const char *spm_piece(const spm_model *m, int id);
int spm_piece_type(const spm_model *m, int id);

/* Normalise text as SentencePiece does before segmentation; returns a malloc'd
 * NUL-terminated string (length in *out_len if not NULL). */
char *spm_normalize(const spm_model *m, const char *text, size_t len, size_t *out_len);

/* Segment text into ids (no EOS); returns the count, ids malloc'd into *ids. */
int spm_encode(const spm_model *m, const char *text, size_t len, int **ids);

/* T5 rule: spm_encode + EOS, truncated to max_length (>= 1, EOS kept);
 * returns the count, ids malloc'd into *ids. */
int spm_encode_t5(const spm_model *m, const char *text, int max_length, int **ids);

/* A padded batch of T5 token sequences: ids [n, len] (pad id after the end),
 * mask [n, len] (1 = token), lengths [n]; all malloc'd. */
typedef struct {
  int n, len;
  int32_t *ids;
  uint8_t *mask;
  int *lengths;
} spm_batch;

/* Tokenise n texts with the T5 rule and pad them to the longest ("longest" padding). */
void spm_batch_t5(const spm_model *m, const char *const *texts, int n, int max_length,
                  spm_batch *out);
void spm_batch_free(spm_batch *b);

#endif
