/* model/tokenizer.c: SentencePiece unigram tokenizer (see tokenizer.h).
 *
 * Facts from SentencePiece 0.1.97 (src/sentencepiece_model.proto,
 * normalizer.cc, unigram_model.cc EncodeOptimized, sentencepiece_processor.cc
 * PopulateSentencePieceText) and darts-clone's double-array unit layout;
 * the code is written from those descriptions.
 */
#include "model/tokenizer.h"

#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "core/fsutil.h"

/* ================================================================ protobuf wire format */

typedef struct {
  const uint8_t *p, *end;
} pb_reader;

/* One decoded field: varint/fixed values in `value`, length-delimited in data/len. */
typedef struct {
  int number, wire;
  uint64_t value;
  const uint8_t *data;
  size_t len;
} pb_field;

/* Read a base-128 varint; 0 or -1. */
static int pb_varint(pb_reader *r, uint64_t *out) {
  uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (r->p >= r->end) return rdt_fail("truncated varint");
    uint8_t byte = *r->p++;
    v |= (uint64_t)(byte & 0x7f) << shift;
    if (!(byte & 0x80)) {
      *out = v;
      return 0;
    }
  }
  return rdt_fail("varint longer than 10 bytes");
}

/* Read the next field; 1 if one was read, 0 at the end, -1 on malformed input. */
static int pb_next(pb_reader *r, pb_field *f) {
  if (r->p >= r->end) return 0;
  uint64_t key = 0;
  if (pb_varint(r, &key) < 0) return -1;
  f->number = (int)(key >> 3);
  f->wire = (int)(key & 7);
  f->data = NULL;
  f->len = 0;
  f->value = 0;
  switch (f->wire) {
    case 0: return pb_varint(r, &f->value) < 0 ? -1 : 1;
    case 1:
    case 5: {
      size_t n = f->wire == 1 ? 8 : 4;
      if ((size_t)(r->end - r->p) < n) return rdt_fail("truncated fixed-width field %d", f->number);
      for (size_t i = 0; i < n; i++) f->value |= (uint64_t)r->p[i] << (8 * i);
      r->p += n;
      return 1;
    }
    case 2: {
      uint64_t n = 0;
      if (pb_varint(r, &n) < 0) return -1;
      if (n > (uint64_t)(r->end - r->p)) return rdt_fail("field %d runs past the end", f->number);
      f->data = r->p;
      f->len = (size_t)n;
      r->p += n;
      return 1;
    }
    default: return rdt_fail("unsupported wire type %d (field %d)", f->wire, f->number);
  }
}

/* A fixed32 field as float. */
static float pb_float(const pb_field *f) {
  uint32_t u = (uint32_t)f->value;
  float x;
  memcpy(&x, &u, sizeof x);
  return x;
}

/* ================================================================ byte trie (pieces) */

/* A trie over bytes: nodes hold a value (-1 = none); edges live in one
 * open-addressed hash table keyed by (node, byte). */
typedef struct {
  int32_t *value;
  int nnodes, cap_nodes;
  uint64_t *keys;     /* (node << 8 | byte) + 1; 0 = empty slot */
  int32_t *child;
  size_t cap_edges, nedges;
} byte_trie;

/* Hash slot of an edge key. */
static size_t trie_slot(const byte_trie *t, uint64_t key) {
  uint64_t h = key * 0x9e3779b97f4a7c15ULL;
  return (size_t)(h >> 17) & (t->cap_edges - 1);
}

/* Grow the edge table to twice its size, rehashing. */
static void trie_grow_edges(byte_trie *t) {
  uint64_t *old_keys = t->keys;
  int32_t *old_child = t->child;
  size_t old_cap = t->cap_edges;
  t->cap_edges = old_cap ? old_cap * 2 : 1024;
  t->keys = rdt_calloc(t->cap_edges, sizeof *t->keys);
  t->child = rdt_malloc(t->cap_edges * sizeof *t->child);
  for (size_t i = 0; i < old_cap; i++) {
    if (!old_keys[i]) continue;
    size_t s = trie_slot(t, old_keys[i]);
    while (t->keys[s]) s = (s + 1) & (t->cap_edges - 1);
    t->keys[s] = old_keys[i];
    t->child[s] = old_child[i];
  }
  free(old_keys);
  free(old_child);
}

/* A new node with no value. */
static int trie_new_node(byte_trie *t) {
  if (t->nnodes == t->cap_nodes) {
    t->cap_nodes = t->cap_nodes ? t->cap_nodes * 2 : 1024;
    t->value = rdt_realloc(t->value, (size_t)t->cap_nodes * sizeof *t->value);
  }
  t->value[t->nnodes] = -1;
  return t->nnodes++;
}

/* The child of node along byte c, or -1. */
static int trie_step(const byte_trie *t, int node, uint8_t c) {
  if (!t->cap_edges) return -1;
  uint64_t key = (((uint64_t)node << 8) | c) + 1;
  for (size_t s = trie_slot(t, key); t->keys[s]; s = (s + 1) & (t->cap_edges - 1))
    if (t->keys[s] == key) return t->child[s];
  return -1;
}

/* Insert a key with a value; 0, or -1 if the key is already present. */
static int trie_insert(byte_trie *t, const char *key, size_t len, int value) {
  if (!t->nnodes) trie_new_node(t);
  int node = 0;
  for (size_t i = 0; i < len; i++) {
    int next = trie_step(t, node, (uint8_t)key[i]);
    if (next < 0) {
      if (2 * (t->nedges + 1) > t->cap_edges) trie_grow_edges(t);
      next = trie_new_node(t);
      uint64_t k = (((uint64_t)node << 8) | (uint8_t)key[i]) + 1;
      size_t s = trie_slot(t, k);
      while (t->keys[s]) s = (s + 1) & (t->cap_edges - 1);
      t->keys[s] = k;
      t->child[s] = next;
      t->nedges++;
    }
    node = next;
  }
  if (t->value[node] >= 0) return -1;
  t->value[node] = value;
  return 0;
}

/* Length of the longest key that prefixes s[0..len), 0 if none. */
static size_t trie_longest_prefix(const byte_trie *t, const char *s, size_t len) {
  size_t best = 0;
  int node = t->nnodes ? 0 : -1;
  for (size_t i = 0; i < len && node >= 0; i++) {
    node = trie_step(t, node, (uint8_t)s[i]);
    if (node >= 0 && t->value[node] >= 0) best = i + 1;
  }
  return best;
}

static void trie_free(byte_trie *t) {
  free(t->value);
  free(t->keys);
  free(t->child);
}

/* ================================================================ precompiled charsmap */

/* The normaliser's rules: a darts-clone double array whose leaf values are
 * offsets of NUL-terminated replacement strings in `normalized`. */
typedef struct {
  uint32_t *units;
  size_t nunits;
  char *normalized;
  size_t normalized_len;
} charsmap;

/* darts-clone unit fields. */
static int unit_has_leaf(uint32_t u) { return (u >> 8) & 1; }
static uint32_t unit_value(uint32_t u) { return u & ((1U << 31) - 1); }
static uint32_t unit_label(uint32_t u) { return u & ((1U << 31) | 0xFF); }
static uint32_t unit_offset(uint32_t u) { return (u >> 10) << ((u & (1U << 9)) >> 6); }

/* Decode <u32 trie size><double array><normalized strings>; 0 or -1. */
static int charsmap_parse(charsmap *cm, const uint8_t *blob, size_t len) {
  if (len <= 4) return rdt_fail("precompiled charsmap too short (%zu bytes)", len);
  uint32_t trie_size = (uint32_t)blob[0] | (uint32_t)blob[1] << 8 | (uint32_t)blob[2] << 16 |
                       (uint32_t)blob[3] << 24;
  if (trie_size >= len - 4 || trie_size % 4 || trie_size == 0)
    return rdt_fail("precompiled charsmap: bad trie size %u of %zu bytes", trie_size, len);
  cm->nunits = trie_size / 4;
  cm->units = rdt_malloc(trie_size);
  for (size_t i = 0; i < cm->nunits; i++) {
    const uint8_t *u = blob + 4 + 4 * i;
    cm->units[i] = (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 | (uint32_t)u[3] << 24;
  }
  cm->normalized_len = len - 4 - trie_size;
  cm->normalized = rdt_malloc(cm->normalized_len + 1);
  memcpy(cm->normalized, blob + 4 + trie_size, cm->normalized_len);
  cm->normalized[cm->normalized_len] = 0;
  return 0;
}

/* Longest rule matching a prefix of s (darts commonPrefixSearch, first 32
 * results as SentencePiece keeps); returns its length (0 if none) and the
 * replacement in *repl. */
static size_t charsmap_match(const charsmap *cm, const char *s, size_t len, const char **repl) {
  enum { MAX_RESULTS = 32 };
  size_t pos = 0, best = 0;
  int found = 0;
  if (!cm->nunits) return 0;
  pos ^= unit_offset(cm->units[0]);
  for (size_t i = 0; i < len && found < MAX_RESULTS; i++) {
    uint8_t c = (uint8_t)s[i];
    pos ^= c;
    if (pos >= cm->nunits) return best;
    uint32_t u = cm->units[pos];
    if (unit_label(u) != c) return best;
    pos ^= unit_offset(u);
    if (pos >= cm->nunits) return best;
    if (unit_has_leaf(u)) {
      uint32_t v = unit_value(cm->units[pos]);
      found++;
      if (v < cm->normalized_len) {
        best = i + 1;
        *repl = cm->normalized + v;
      }
    }
  }
  return best;
}

/* ================================================================ the model */

typedef struct {
  char *text;
  int len;
  float score;
  int type;
} spm_piece_t;

struct spm_model {
  char *name;
  spm_piece_t *pieces;
  int npieces;
  /* trainer spec */
  int model_type, byte_fallback, treat_ws_as_suffix;
  int unk_id, bos_id, eos_id, pad_id;   /* as in the trainer spec */
  /* normalizer spec */
  int add_dummy_prefix, remove_extra_ws, escape_ws;
  charsmap cm;
  /* derived */
  int unk_piece;               /* id of the UNKNOWN piece */
  int byte_id[256];
  float min_score, max_score;  /* over NORMAL pieces, as SentencePiece initialises them */
  byte_trie pieces_trie;       /* NORMAL, USER_DEFINED and UNUSED pieces -> id */
  byte_trie user_trie;         /* USER_DEFINED pieces (not normalised) */
};

/* Parse one ModelProto.SentencePiece message into the piece table. */
static int parse_piece(spm_model *m, const uint8_t *data, size_t len) {
  pb_reader r = {data, data + len};
  pb_field f;
  int rc;
  spm_piece_t p = {NULL, 0, 0.0f, SPM_NORMAL};
  while ((rc = pb_next(&r, &f)) > 0) {
    if (f.number == 1 && f.wire == 2) {
      free(p.text);
      p.text = rdt_malloc(f.len + 1);
      memcpy(p.text, f.data, f.len);
      p.text[f.len] = 0;
      p.len = (int)f.len;
    } else if (f.number == 2 && f.wire == 5) {
      p.score = pb_float(&f);
    } else if (f.number == 3 && f.wire == 0) {
      p.type = (int)f.value;
    }
  }
  if (rc < 0 || !p.text || !p.len) {
    free(p.text);
    return rc < 0 ? -1 : rdt_fail("piece %d is empty", m->npieces);
  }
  if (p.type < SPM_NORMAL || p.type > SPM_BYTE) {
    free(p.text);
    return rdt_fail("piece %d has unknown type %d", m->npieces, p.type);
  }
  if (m->npieces % 1024 == 0)
    m->pieces = rdt_realloc(m->pieces, (size_t)(m->npieces + 1024) * sizeof *m->pieces);
  m->pieces[m->npieces++] = p;
  return 0;
}

/* Parse the TrainerSpec fields the encoder needs. */
static int parse_trainer_spec(spm_model *m, const uint8_t *data, size_t len) {
  pb_reader r = {data, data + len};
  pb_field f;
  int rc;
  while ((rc = pb_next(&r, &f)) > 0) {
    if (f.wire != 0) continue;
    int v = (int)(int32_t)(uint32_t)f.value;   /* int32 fields: negative values are 10-byte varints */
    switch (f.number) {
      case 3: m->model_type = v; break;
      case 24: m->treat_ws_as_suffix = v != 0; break;
      case 35: m->byte_fallback = v != 0; break;
      case 40: m->unk_id = v; break;
      case 41: m->bos_id = v; break;
      case 42: m->eos_id = v; break;
      case 43: m->pad_id = v; break;
      default: break;
    }
  }
  return rc;
}

/* Parse the NormalizerSpec (flags and the precompiled charsmap). */
static int parse_normalizer_spec(spm_model *m, const uint8_t *data, size_t len) {
  pb_reader r = {data, data + len};
  pb_field f;
  int rc;
  while ((rc = pb_next(&r, &f)) > 0) {
    if (f.number == 2 && f.wire == 2 && f.len) {
      free(m->cm.units);
      free(m->cm.normalized);
      memset(&m->cm, 0, sizeof m->cm);
      if (charsmap_parse(&m->cm, f.data, f.len) < 0) return -1;
    } else if (f.wire == 0) {
      if (f.number == 3) m->add_dummy_prefix = f.value != 0;
      if (f.number == 4) m->remove_extra_ws = f.value != 0;
      if (f.number == 5) m->escape_ws = f.value != 0;
    }
  }
  return rc;
}

/* "<0xAB>" -> 0xAB, or -1. */
static int byte_piece_value(const char *s) {
  unsigned v;
  char tail;
  if (strlen(s) != 6 || sscanf(s, "<0x%2X%c", &v, &tail) != 2 || tail != '>') return -1;
  return (int)v;
}

/* Build the tries, score range, unknown and byte ids (SentencePiece's
 * ModelInterface::InitializePieces and unigram Model constructor). */
static int index_pieces(spm_model *m) {
  m->unk_piece = -1;
  m->min_score = FLT_MAX;
  m->max_score = FLT_MIN;
  for (int i = 0; i < 256; i++) m->byte_id[i] = -1;
  for (int i = 0; i < m->npieces; i++) {
    const spm_piece_t *p = &m->pieces[i];
    if (p->type == SPM_NORMAL || p->type == SPM_USER_DEFINED || p->type == SPM_UNUSED) {
      if (trie_insert(&m->pieces_trie, p->text, (size_t)p->len, i) < 0)
        return rdt_fail("piece '%s' is defined twice", p->text);
    }
    if (p->type == SPM_NORMAL) {
      if (p->score < m->min_score) m->min_score = p->score;
      if (p->score > m->max_score) m->max_score = p->score;
    }
    if (p->type == SPM_USER_DEFINED) trie_insert(&m->user_trie, p->text, (size_t)p->len, i);
    if (p->type == SPM_UNKNOWN) {
      if (m->unk_piece >= 0) return rdt_fail("two unknown pieces (%d and %d)", m->unk_piece, i);
      m->unk_piece = i;
    }
    if (p->type == SPM_BYTE) {
      int v = byte_piece_value(p->text);
      if (!m->byte_fallback) return rdt_fail("byte piece '%s' without byte_fallback", p->text);
      if (v < 0) return rdt_fail("invalid byte piece '%s'", p->text);
      m->byte_id[v] = i;
    }
  }
  if (m->unk_piece < 0) return rdt_fail("no unknown piece");
  if (m->byte_fallback)
    for (int i = 0; i < 256; i++)
      if (m->byte_id[i] < 0) return rdt_fail("byte_fallback set but piece <0x%02X> missing", i);
  return 0;
}

spm_model *spm_parse(const void *data, size_t len, const char *name) {
  spm_model *m = rdt_calloc(1, sizeof *m);
  m->name = rdt_strdup(name);
  /* proto2 defaults */
  m->model_type = 1;
  m->unk_id = 0, m->bos_id = 1, m->eos_id = 2, m->pad_id = -1;
  m->add_dummy_prefix = m->remove_extra_ws = m->escape_ws = 1;
  pb_reader r = {data, (const uint8_t *)data + len};
  pb_field f;
  int rc;
  while ((rc = pb_next(&r, &f)) > 0) {
    if (f.wire != 2) continue;
    if (f.number == 1) rc = parse_piece(m, f.data, f.len);
    else if (f.number == 2) rc = parse_trainer_spec(m, f.data, f.len);
    else if (f.number == 3) rc = parse_normalizer_spec(m, f.data, f.len);
    if (rc < 0) break;
  }
  if (rc == 0 && m->npieces == 0) rc = rdt_fail("no pieces (not a SentencePiece model?)");
  if (rc == 0 && m->model_type != 1)
    rc = rdt_fail("model type %d is not unigram (only unigram models are supported)", m->model_type);
  if (rc == 0) rc = index_pieces(m);
  if (rc < 0) {
    rdt_fail_ctx("%s", name);
    spm_free(m);
    return NULL;
  }
  return m;
}

spm_model *spm_load(const char *path) {
  size_t len;
  char *data = rdt_read_file(path, &len);
  if (!data) return NULL;
  spm_model *m = spm_parse(data, len, path);
  free(data);
  return m;
}

void spm_free(spm_model *m) {
  if (!m) return;
  for (int i = 0; i < m->npieces; i++) free(m->pieces[i].text);
  free(m->pieces);
  free(m->cm.units);
  free(m->cm.normalized);
  trie_free(&m->pieces_trie);
  trie_free(&m->user_trie);
  free(m->name);
  free(m);
}

int spm_vocab_size(const spm_model *m) { return m->npieces; }
int spm_unk_id(const spm_model *m) { return m->unk_piece; }
int spm_eos_id(const spm_model *m) { return m->eos_id; }
int spm_pad_id(const spm_model *m) { return m->pad_id; }
const char *spm_piece(const spm_model *m, int id) {
  return id >= 0 && id < m->npieces ? m->pieces[id].text : NULL;
}
int spm_piece_type(const spm_model *m, int id) {
  return id >= 0 && id < m->npieces ? m->pieces[id].type : 0;
}

/* ================================================================ normalisation */

typedef struct {
  char *s;
  size_t len, cap;
} strbuf;

/* Append n bytes. */
static void sb_put(strbuf *b, const char *s, size_t n) {
  if (b->len + n + 1 > b->cap) {
    b->cap = (b->len + n + 1) * 2;
    b->s = rdt_realloc(b->s, b->cap);
  }
  memcpy(b->s + b->len, s, n);
  b->len += n;
  b->s[b->len] = 0;
}

static const char SPACE_SYMBOL[] = "\xe2\x96\x81";   /* U+2581 */

/* Bytes of the UTF-8 character starting with lead byte c (SentencePiece's OneCharLen). */
static size_t utf8_char_len(uint8_t c) { return "\1\1\1\1\1\1\1\1\1\1\1\1\2\2\3\4"[c >> 4]; }

/* Length of one valid UTF-8 character at s (SentencePiece's DecodeUTF8 rules:
 * shortest form, no surrogates, <= U+10FFFF), or 0 if malformed. */
static size_t utf8_valid_len(const uint8_t *s, size_t len) {
  uint32_t cp;
  if (s[0] < 0x80) return 1;
  if (len >= 2 && (s[0] & 0xE0) == 0xC0) {
    cp = (uint32_t)(s[0] & 0x1F) << 6 | (s[1] & 0x3F);
    if ((s[1] & 0xC0) == 0x80 && cp >= 0x80) return 2;
  } else if (len >= 3 && (s[0] & 0xF0) == 0xE0) {
    cp = (uint32_t)(s[0] & 0x0F) << 12 | (uint32_t)(s[1] & 0x3F) << 6 | (s[2] & 0x3F);
    if ((s[1] & 0xC0) == 0x80 && (s[2] & 0xC0) == 0x80 && cp >= 0x800 && (cp < 0xD800 || cp >= 0xE000))
      return 3;
  } else if (len >= 4 && (s[0] & 0xF8) == 0xF0) {
    cp = (uint32_t)(s[0] & 0x07) << 18 | (uint32_t)(s[1] & 0x3F) << 12 |
         (uint32_t)(s[2] & 0x3F) << 6 | (s[3] & 0x3F);
    if ((s[1] & 0xC0) == 0x80 && (s[2] & 0xC0) == 0x80 && (s[3] & 0xC0) == 0x80 && cp >= 0x10000 &&
        cp <= 0x10FFFF)
      return 4;
  }
  return 0;
}

/* Normalise the prefix of s: returns the bytes consumed and the replacement
 * (*out, *out_len).  User-defined pieces pass through; then the longest
 * charsmap rule; else one character as is (malformed byte -> U+FFFD). */
static size_t normalize_prefix(const spm_model *m, const char *s, size_t len, const char **out,
                               size_t *out_len) {
  size_t n = trie_longest_prefix(&m->user_trie, s, len);
  if (n) {
    *out = s, *out_len = n;
    return n;
  }
  const char *repl = NULL;
  n = charsmap_match(&m->cm, s, len, &repl);
  if (n) {
    *out = repl, *out_len = strlen(repl);
    return n;
  }
  n = utf8_valid_len((const uint8_t *)s, len);
  if (!n) {
    *out = "\xEF\xBF\xBD", *out_len = 3;
    return 1;
  }
  *out = s, *out_len = n;
  return n;
}

/* Append the whitespace marker (U+2581, or a space when not escaping). */
static void put_space(const spm_model *m, strbuf *b) {
  if (m->escape_ws) sb_put(b, SPACE_SYMBOL, 3);
  else sb_put(b, " ", 1);
}

char *spm_normalize(const spm_model *m, const char *text, size_t len, size_t *out_len) {
  strbuf b = {NULL, 0, 0};
  sb_put(&b, "", 0);
  const char *piece;
  size_t plen;
  if (m->remove_extra_ws) {   /* drop leading whitespace */
    while (len) {
      size_t used = normalize_prefix(m, text, len, &piece, &plen);
      if (!(plen == 1 && piece[0] == ' ')) break;
      text += used, len -= used;
    }
  }
  if (len) {
    if (!m->treat_ws_as_suffix && m->add_dummy_prefix) put_space(m, &b);
    int prev_space = m->remove_extra_ws;
    while (len) {
      size_t used = normalize_prefix(m, text, len, &piece, &plen);
      while (prev_space && plen && piece[0] == ' ') piece++, plen--;
      if (plen) {
        for (size_t i = 0; i < plen; i++) {
          if (m->escape_ws && piece[i] == ' ') put_space(m, &b);
          else sb_put(&b, piece + i, 1);
        }
        prev_space = piece[plen - 1] == ' ';
      }
      text += used, len -= used;
      if (!m->remove_extra_ws) prev_space = 0;
    }
    if (m->remove_extra_ws) {   /* drop trailing whitespace */
      const char *sp = m->escape_ws ? SPACE_SYMBOL : " ";
      size_t n = strlen(sp);
      while (b.len >= n && memcmp(b.s + b.len - n, sp, n) == 0) b.len -= n;
      b.s[b.len] = 0;
    }
    if (m->treat_ws_as_suffix && m->add_dummy_prefix) put_space(m, &b);
  }
  if (out_len) *out_len = b.len;
  return b.s;
}

/* ================================================================ unigram Viterbi */

/* Best path ending at a byte position (SentencePiece's BestPathNode: the
 * score is a float, the comparisons use the same mixed float/double types). */
typedef struct {
  int id;
  float score;
  int start;
} path_node;

/* Best segmentation of normalized text s[0..n): piece ids and starts in
 * order; returns the count. */
static int viterbi(const spm_model *m, const char *s, int n, int *ids, int *starts) {
  path_node *best = rdt_malloc((size_t)(n + 1) * sizeof *best);
  for (int i = 0; i <= n; i++) best[i] = (path_node){-1, 0.0f, -1};
  const float unk_score = m->min_score - 10.0f;
  for (int start = 0; start < n;) {
    const float here = best[start].score;
    const int mblen = (int)utf8_char_len((uint8_t)s[start]) < n - start
                          ? (int)utf8_char_len((uint8_t)s[start]) : n - start;
    int single = 0;
    int node = m->pieces_trie.nnodes ? 0 : -1;
    for (int end = start + 1; end <= n && node >= 0; end++) {
      node = trie_step(&m->pieces_trie, node, (uint8_t)s[end - 1]);
      if (node < 0) break;
      int id = m->pieces_trie.value[node];
      if (id < 0 || m->pieces[id].type == SPM_UNUSED) continue;
      double score = m->pieces[id].type == SPM_USER_DEFINED
                         ? (double)((float)(end - start) * m->max_score) - 0.1
                         : (double)m->pieces[id].score;
      double cand = score + (double)here;
      if (best[end].start == -1 || cand > (double)best[end].score)
        best[end] = (path_node){id, (float)cand, start};
      if (end - start == mblen) single = 1;
    }
    if (!single) {
      float cand = unk_score + here;
      path_node *t = &best[start + mblen];
      if (t->start == -1 || cand > t->score) *t = (path_node){m->unk_piece, cand, start};
    }
    start += mblen;
  }
  int count = 0;
  for (int end = n; end > 0; end = best[end].start) count++;
  int k = count;
  for (int end = n; end > 0; end = best[end].start) {
    k--;
    ids[k] = best[end].id;
    starts[k] = best[end].start;
  }
  free(best);
  return count;
}

int spm_encode(const spm_model *m, const char *text, size_t len, int **ids) {
  size_t n;
  char *norm = spm_normalize(m, text, len, &n);
  int *piece_ids = rdt_malloc((n + 1) * sizeof *piece_ids);
  int *starts = rdt_malloc((n + 1) * sizeof *starts);
  int count = viterbi(m, norm, (int)n, piece_ids, starts);
  /* unknown runs: merged into one <unk>, or spelled as bytes with byte fallback */
  int *out = rdt_malloc((n + 1) * sizeof *out);
  int nout = 0, prev_unk = 0;
  for (int i = 0; i < count; i++) {
    int id = piece_ids[i];
    int is_unk = m->pieces[id].type == SPM_UNKNOWN;
    if (is_unk && m->byte_fallback) {
      int end = i + 1 < count ? starts[i + 1] : (int)n;
      for (int j = starts[i]; j < end; j++) out[nout++] = m->byte_id[(uint8_t)norm[j]];
    } else if (!(is_unk && prev_unk)) {
      out[nout++] = id;
    }
    prev_unk = is_unk;
  }
  free(piece_ids);
  free(starts);
  free(norm);
  *ids = out;
  return nout;
}

/* ================================================================ T5 rule */

int spm_encode_t5(const spm_model *m, const char *text, int max_length, int **ids) {
  int n = spm_encode(m, text, strlen(text), ids);
  if (max_length < 1) max_length = 1;
  if (n > max_length - 1) n = max_length - 1;
  *ids = rdt_realloc(*ids, (size_t)(n + 1) * sizeof **ids);
  (*ids)[n++] = m->eos_id;
  return n;
}

void spm_batch_t5(const spm_model *m, const char *const *texts, int n, int max_length,
                  spm_batch *out) {
  int **seqs = rdt_malloc((size_t)(n > 0 ? n : 1) * sizeof *seqs);
  out->n = n;
  out->len = 0;
  out->lengths = rdt_malloc((size_t)(n > 0 ? n : 1) * sizeof *out->lengths);
  for (int i = 0; i < n; i++) {
    out->lengths[i] = spm_encode_t5(m, texts[i], max_length, &seqs[i]);
    if (out->lengths[i] > out->len) out->len = out->lengths[i];
  }
  size_t total = (size_t)n * (size_t)out->len;
  out->ids = rdt_malloc((total ? total : 1) * sizeof *out->ids);
  out->mask = rdt_calloc(total ? total : 1, 1);
  int pad = m->pad_id >= 0 ? m->pad_id : 0;
  for (int i = 0; i < n; i++) {
    for (int t = 0; t < out->len; t++) {
      int real = t < out->lengths[i];
      out->ids[(size_t)i * out->len + t] = real ? seqs[i][t] : pad;
      out->mask[(size_t)i * out->len + t] = (uint8_t)real;
    }
    free(seqs[i]);
  }
  free(seqs);
}

void spm_batch_free(spm_batch *b) {
  free(b->ids);
  free(b->mask);
  free(b->lengths);
  memset(b, 0, sizeof *b);
}
