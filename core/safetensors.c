/* core/safetensors.c: safetensors files (mmap read, atomic write), shard indexes,
 * checkpoint folders, and the tensor handle they all share.
 *
 * File layout: an 8-byte little-endian header length N, N bytes of JSON
 * ({"__metadata__": {str: str}, NAME: {"dtype", "shape", "data_offsets"}}),
 * then the data section; offsets are relative to the data section.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "core/error.h"
#include "core/fsutil.h"
#include "core/json.h"
#include "core/st_internal.h"

#define ST_MAX_HEADER ((uint64_t)100 << 20)   /* 100 MB, as the reference reader */

/* ================================================================ the handle */

rdt_st *rdt_st_new(const char *path) {
  rdt_st *st = rdt_calloc(1, sizeof *st);
  st->path = rdt_strdup(path);
  return st;
}

void rdt_st_push(rdt_st *st, const char *name, rdt_dtype dtype, int ndim, const int64_t *shape,
                 void *data, size_t nbytes) {
  if (st->count == st->cap) {
    st->cap = st->cap ? st->cap * 2 : 16;
    st->tensors = rdt_realloc(st->tensors, sizeof *st->tensors * (size_t)st->cap);
  }
  rdt_tensor *t = &st->tensors[st->count++];
  memset(t, 0, sizeof *t);
  t->name = rdt_strdup(name);
  t->dtype = dtype;
  t->ndim = ndim;
  memcpy(t->shape, shape, sizeof *shape * (size_t)ndim);
  t->data = data;
  t->nbytes = nbytes;
}

void rdt_st_push_meta(rdt_st *st, const char *key, const char *value) {
  if (rdt_st_metadata(st, key)) return;
  st->meta_keys = rdt_realloc(st->meta_keys, sizeof(char *) * (size_t)(st->nmeta + 1));
  st->meta_values = rdt_realloc(st->meta_values, sizeof(char *) * (size_t)(st->nmeta + 1));
  st->meta_keys[st->nmeta] = rdt_strdup(key);
  st->meta_values[st->nmeta++] = rdt_strdup(value);
}

void rdt_st_keep_zip(rdt_st *st, rdt_zip *z) {
  st->zips = rdt_realloc(st->zips, sizeof *st->zips * (size_t)(st->nzips + 1));
  st->zips[st->nzips++] = z;
}

/* The handle unmaps addr when it is closed. */
static void keep_map(rdt_st *st, void *addr, size_t len) {
  st->map_addr = rdt_realloc(st->map_addr, sizeof *st->map_addr * (size_t)(st->nmaps + 1));
  st->map_len = rdt_realloc(st->map_len, sizeof *st->map_len * (size_t)(st->nmaps + 1));
  st->map_addr[st->nmaps] = addr;
  st->map_len[st->nmaps++] = len;
}

typedef struct {
  const char *name;
  int index;
} name_index;

static int compare_name_index(const void *a, const void *b) {
  const name_index *x = a, *y = b;
  int c = strcmp(x->name, y->name);
  return c ? c : (x->index > y->index) - (x->index < y->index);
}

int rdt_st_finish(rdt_st *st) {
  name_index *v = rdt_malloc(sizeof *v * (size_t)(st->count + 1));
  for (int i = 0; i < st->count; i++) v[i].name = st->tensors[i].name, v[i].index = i;
  qsort(v, (size_t)st->count, sizeof *v, compare_name_index);
  free(st->by_name);
  st->by_name = rdt_malloc(sizeof *st->by_name * (size_t)(st->count + 1));
  int rc = 0;
  for (int i = 0; i < st->count; i++) {
    if (i > 0 && strcmp(v[i].name, v[i - 1].name) == 0 && rc == 0)
      rc = rdt_fail("tensor '%s' appears twice", v[i].name);
    st->by_name[i] = v[i].index;
  }
  free(v);
  return rc;
}

void rdt_st_close(rdt_st *st) {
  if (!st) return;
  for (int i = 0; i < st->count; i++) free((char *)st->tensors[i].name);
  for (int i = 0; i < st->nmeta; i++) free(st->meta_keys[i]), free(st->meta_values[i]);
  for (int i = 0; i < st->nmaps; i++) rdt_unmap_file(st->map_addr[i], st->map_len[i]);
  for (int i = 0; i < st->nzips; i++) rdt_zip_close(st->zips[i]);
  free(st->tensors);
  free(st->by_name);
  free(st->meta_keys);
  free(st->meta_values);
  free(st->map_addr);
  free(st->map_len);
  free(st->zips);
  free(st->path);
  free(st);
}

const char *rdt_st_path(const rdt_st *st) { return st->path; }
int rdt_st_count(const rdt_st *st) { return st->count; }

const rdt_tensor *rdt_st_get(const rdt_st *st, int i) {
  return i >= 0 && i < st->count ? &st->tensors[i] : NULL;
}

const rdt_tensor *rdt_st_find(const rdt_st *st, const char *name) {
  if (!st->by_name) return NULL;
  int lo = 0, hi = st->count - 1;
  while (lo <= hi) {
    int mid = lo + (hi - lo) / 2;
    const rdt_tensor *t = &st->tensors[st->by_name[mid]];
    int c = strcmp(name, t->name);
    if (c == 0) return t;
    if (c < 0) hi = mid - 1;
    else lo = mid + 1;
  }
  return NULL;
}

const char *rdt_st_metadata(const rdt_st *st, const char *key) {
  for (int i = 0; i < st->nmeta; i++)
    if (strcmp(st->meta_keys[i], key) == 0) return st->meta_values[i];
  return NULL;
}

/* Move child's tensors, metadata and backing storage into parent; frees child. */
static void absorb(rdt_st *parent, rdt_st *child) {
  for (int i = 0; i < child->count; i++) {
    const rdt_tensor *t = &child->tensors[i];
    rdt_st_push(parent, t->name, t->dtype, t->ndim, t->shape, t->data, t->nbytes);
  }
  for (int i = 0; i < child->nmeta; i++) rdt_st_push_meta(parent, child->meta_keys[i], child->meta_values[i]);
  for (int i = 0; i < child->nmaps; i++) keep_map(parent, child->map_addr[i], child->map_len[i]);
  for (int i = 0; i < child->nzips; i++) rdt_st_keep_zip(parent, child->zips[i]);
  child->nmaps = child->nzips = 0;
  rdt_st_close(child);
}

/* ================================================================ header validation */

typedef struct {
  rdt_dtype dtype;
  int ndim;
  int64_t shape[RDT_MAX_DIMS];
  uint64_t begin, end;
} st_entry;

/* One tensor entry {"dtype", "shape", "data_offsets"} against a data section of data_len bytes. */
static int parse_entry(const rdt_json *e, const char *name, uint64_t data_len, st_entry *out) {
  if (e->type != RDT_JSON_OBJECT) return rdt_fail("tensor '%s': entry is not an object", name);
  const rdt_json *dtype = rdt_json_get(e, "dtype"), *shape = rdt_json_get(e, "shape");
  const rdt_json *offsets = rdt_json_get(e, "data_offsets");
  if (!dtype || dtype->type != RDT_JSON_STRING) return rdt_fail("tensor '%s': missing or non-string dtype", name);
  if (rdt_dtype_parse(dtype->string, &out->dtype) != 0) return rdt_fail("tensor '%s': unknown dtype '%s'", name, dtype->string);
  if (!shape || shape->type != RDT_JSON_ARRAY) return rdt_fail("tensor '%s': missing or non-array shape", name);
  if (shape->count > RDT_MAX_DIMS) return rdt_fail("tensor '%s': %d dimensions (at most %d)", name, shape->count, RDT_MAX_DIMS);
  out->ndim = shape->count;
  uint64_t bytes = rdt_dtype_size(out->dtype);
  for (int d = 0; d < shape->count; d++) {
    int64_t v;
    if (rdt_json_int64(&shape->items[d], &v) != 0 || v < 0)
      return rdt_fail("tensor '%s': shape[%d] is not a non-negative integer", name, d);
    out->shape[d] = v;
    if (__builtin_mul_overflow(bytes, (uint64_t)v, &bytes)) return rdt_fail("tensor '%s': shape overflows", name);
  }
  int64_t b, en;
  if (!offsets || offsets->type != RDT_JSON_ARRAY || offsets->count != 2 || rdt_json_int64(&offsets->items[0], &b) != 0 ||
      rdt_json_int64(&offsets->items[1], &en) != 0 || b < 0 || en < 0)
    return rdt_fail("tensor '%s': data_offsets must be two non-negative integers", name);
  if (b > en) return rdt_fail("tensor '%s': data_offsets [%lld, %lld] end before they begin", name, (long long)b, (long long)en);
  if ((uint64_t)en > data_len)
    return rdt_fail("tensor '%s': data_offsets [%lld, %lld] run past the end of the data section (%llu bytes)", name,
                    (long long)b, (long long)en, (unsigned long long)data_len);
  if ((uint64_t)(en - b) != bytes)
    return rdt_fail("tensor '%s': %s shape holds %llu bytes but data_offsets [%lld, %lld] span %lld", name,
                    dtype->string, (unsigned long long)bytes, (long long)b, (long long)en, (long long)(en - b));
  out->begin = (uint64_t)b;
  out->end = (uint64_t)en;
  return 0;
}

static int parse_metadata(const rdt_json *m, rdt_st *st) {
  if (m->type != RDT_JSON_OBJECT) return rdt_fail("__metadata__ is not an object");
  for (int i = 0; i < m->count; i++) {
    if (m->items[i].type != RDT_JSON_STRING) return rdt_fail("__metadata__ '%s' is not a string", m->items[i].key);
    rdt_st_push_meta(st, m->items[i].key, m->items[i].string);
  }
  return 0;
}

static _Thread_local const st_entry *sort_entries;   /* for compare_begin */

static int compare_begin(const void *a, const void *b) {
  const st_entry *x = &sort_entries[*(const int *)a], *y = &sort_entries[*(const int *)b];
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  return (x->end > y->end) - (x->end < y->end);
}

/* Overlapping byte ranges are an error (empty tensors overlap nothing). */
static int check_overlaps(const rdt_json *h, const st_entry *e, const int *ids, int n) {
  int *order = rdt_malloc(sizeof *order * (size_t)(n + 1));
  memcpy(order, ids, sizeof *order * (size_t)n);
  sort_entries = e;
  qsort(order, (size_t)n, sizeof *order, compare_begin);
  int rc = 0, last = -1;
  for (int k = 0; k < n && rc == 0; k++) {
    const st_entry *x = &e[order[k]];
    if (x->begin == x->end) continue;
    if (last >= 0 && x->begin < e[last].end)
      rc = rdt_fail("tensors '%s' and '%s' overlap in the data section", h->items[last].key, h->items[order[k]].key);
    last = order[k];
  }
  free(order);
  return rc;
}

/* Validate the JSON header and add its tensors (pointing into data, when not
 * NULL) and metadata to st in document order. */
static int parse_header(const char *json, size_t len, uint64_t data_len, rdt_st *st, unsigned char *data) {
  rdt_json *h = rdt_json_parse(json, len);
  if (!h) return rdt_fail_ctx("header is not valid JSON");
  if (h->type != RDT_JSON_OBJECT) {
    rdt_json_free(h);
    return rdt_fail("header is not a JSON object");
  }
  st_entry *e = rdt_malloc(sizeof *e * (size_t)(h->count + 1));
  int *ids = rdt_malloc(sizeof *ids * (size_t)(h->count + 1)), n = 0, rc = 0;
  for (int i = 0; i < h->count && rc == 0; i++) {
    if (strcmp(h->items[i].key, "__metadata__") == 0) rc = parse_metadata(&h->items[i], st);
    else if ((rc = parse_entry(&h->items[i], h->items[i].key, data_len, &e[i])) == 0) ids[n++] = i;
  }
  if (rc == 0) rc = check_overlaps(h, e, ids, n);
  for (int k = 0; k < n && rc == 0; k++) {
    const st_entry *x = &e[ids[k]];
    rdt_st_push(st, h->items[ids[k]].key, x->dtype, x->ndim, x->shape, data ? data + x->begin : NULL,
                (size_t)(x->end - x->begin));
  }
  if (rc == 0) rc = rdt_st_finish(st);
  free(ids);
  free(e);
  rdt_json_free(h);
  return rc;
}

int rdt_st_check_header(const char *json, size_t json_len, size_t data_len) {
  rdt_st *st = rdt_st_new("header");
  int rc = parse_header(json, json_len, data_len, st, NULL);
  rdt_st_close(st);
  return rc;
}

/* ================================================================ opening */

static uint64_t read_le64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
  return v;
}

/* Parse a whole safetensors image (size bytes at base) into st. */
static int parse_image(rdt_st *st, unsigned char *base, size_t size) {
  if (size < 8) return rdt_fail("file is %zu bytes, too short for the 8-byte header length", size);
  uint64_t n = read_le64(base);
  if (n > ST_MAX_HEADER) return rdt_fail("header length %llu exceeds the 100 MB limit", (unsigned long long)n);
  if (n > size - 8)
    return rdt_fail("header length %llu exceeds the file size (%zu bytes): truncated or not safetensors",
                    (unsigned long long)n, size);
  return parse_header((const char *)base + 8, (size_t)n, size - 8 - n, st, base + 8 + n);
}

rdt_st *rdt_st_open_memory(const void *data, size_t len, const char *name) {
  rdt_st *st = rdt_st_new(name);
  if (parse_image(st, (unsigned char *)data, len) != 0) {
    rdt_fail_ctx("%s", name);
    rdt_st_close(st);
    return NULL;
  }
  return st;
}

/* A single .safetensors file, mapped read-only. */
static rdt_st *open_safetensors(const char *path) {
  size_t size;
  void *base = rdt_map_file(path, &size);
  if (!base) return NULL;
  rdt_st *st = rdt_st_new(path);
  keep_map(st, base, size);
  if (parse_image(st, base, size) != 0) {
    rdt_fail_ctx("%s", path);
    rdt_st_close(st);
    return NULL;
  }
  return st;
}

static rdt_st *open_file(const char *path, int allow_index);

/* Add the shards named by an index's weight_map, each opened once, in order of first mention. */
static int open_shards(rdt_st *st, const char *path, const rdt_json *map) {
  char *dir = rdt_dirname(path);
  int rc = 0;
  for (int i = 0; i < map->count && rc == 0; i++) {
    const rdt_json *file = &map->items[i];
    if (file->type != RDT_JSON_STRING) {
      rc = rdt_fail("%s: weight_map entry '%s' is not a file name", path, file->key);
      break;
    }
    int seen = 0;
    for (int k = 0; k < i && !seen; k++) seen = strcmp(map->items[k].string, file->string) == 0;
    if (seen) continue;
    char *shard_path = file->string[0] == '/' ? rdt_strdup(file->string) : rdt_path_join(dir, file->string);
    rdt_st *shard = open_file(shard_path, 0);
    free(shard_path);
    if (!shard) rc = rdt_fail_ctx("%s", path);
    else absorb(st, shard);
  }
  free(dir);
  return rc;
}

/* A sharded model.safetensors.index.json: {"metadata": ..., "weight_map": {name: shard}}. */
static rdt_st *open_index(const char *path) {
  rdt_json *j = rdt_json_load(path);
  if (!j) return NULL;
  const rdt_json *map = rdt_json_get(j, "weight_map");
  rdt_st *st = rdt_st_new(path);
  int rc = !map || map->type != RDT_JSON_OBJECT ? rdt_fail("%s: no \"weight_map\" object", path) : open_shards(st, path, map);
  if (rc == 0 && rdt_st_finish(st) != 0) rc = rdt_fail_ctx("%s", path);
  for (int i = 0; rc == 0 && i < map->count; i++)
    if (!rdt_st_find(st, map->items[i].key))
      rc = rdt_fail("%s: tensor '%s' is not in its shard %s", path, map->items[i].key, map->items[i].string);
  rdt_json_free(j);
  if (rc != 0) {
    rdt_st_close(st);
    return NULL;
  }
  return st;
}

static int ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* A file of any supported kind, told apart by its first bytes and name
 * (an index only when allow_index: shards are never indexes). */
static rdt_st *open_file(const char *path, int allow_index) {
  unsigned char head[8] = {0};
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    rdt_fail("%s: cannot open: %s", path, strerror(errno));
    return NULL;
  }
  ssize_t got = read(fd, head, sizeof head);
  struct stat sb;
  int have_size = fstat(fd, &sb) == 0;
  close(fd);
  if (got >= 4 && memcmp(head, "PK\x03\x04", 4) == 0) return rdt_torch_open_state_dict(path);
  /* A JSON index starts with '{', which as a header length would exceed the file. */
  int looks_json = got == 8 && head[0] == '{' && have_size && read_le64(head) > (uint64_t)sb.st_size;
  if (allow_index && (ends_with(path, ".json") || looks_json)) return open_index(path);
  return open_safetensors(path);
}

rdt_st *rdt_st_open(const char *path) {
  static const char *candidates[] = {"model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                                     "ema/model.safetensors"};
  if (!rdt_is_dir(path)) return open_file(path, 1);
  for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++) {
    char *p = rdt_path_join(path, candidates[i]);
    if (rdt_is_file(p)) {
      rdt_st *st = open_file(p, 1);
      free(p);
      return st;
    }
    free(p);
  }
  rdt_fail("%s: folder holds none of model.safetensors, model.safetensors.index.json, pytorch_model.bin, "
           "ema/model.safetensors", path);
  return NULL;
}

void rdt_st_to_f32(const rdt_tensor *t, float *dst) {
  size_t n = (size_t)rdt_numel(t), size = rdt_dtype_size(t->dtype);
  if (((uintptr_t)t->data % size) == 0) {
    rdt_convert(dst, RDT_F32, t->data, t->dtype, n);
    return;
  }
  /* Misaligned source (a foreign writer's layout): convert through an aligned bounce buffer. */
  enum { CHUNK = 4096 };
  _Alignas(8) unsigned char bounce[CHUNK * 8];
  for (size_t i = 0; i < n; i += CHUNK) {
    size_t m = n - i < CHUNK ? n - i : CHUNK;
    memcpy(bounce, (const unsigned char *)t->data + i * size, m * size);
    rdt_convert(dst + i, RDT_F32, bounce, t->dtype, m);
  }
}

/* ================================================================ writing */

typedef struct {
  char *name;
  rdt_dtype dtype;
  int ndim;
  int64_t shape[RDT_MAX_DIMS];
  const void *data;
  size_t nbytes;
  uint64_t begin;
} st_item;

struct rdt_st_writer {
  int n, cap;
  st_item *items;
  int nmeta;
  char **meta_keys, **meta_values;
};

rdt_st_writer *rdt_st_writer_new(void) { return rdt_calloc(1, sizeof(rdt_st_writer)); }

int rdt_st_writer_add(rdt_st_writer *w, const char *name, rdt_dtype dtype, int ndim, const int64_t *shape,
                      const void *data) {
  if (strcmp(name, "__metadata__") == 0) return rdt_fail("'__metadata__' cannot name a tensor");
  for (int i = 0; i < w->n; i++)
    if (strcmp(w->items[i].name, name) == 0) return rdt_fail("tensor '%s' added twice", name);
  if ((unsigned)dtype >= RDT_DTYPE_COUNT) return rdt_fail("tensor '%s': bad dtype %d", name, (int)dtype);
  if (ndim < 0 || ndim > RDT_MAX_DIMS) return rdt_fail("tensor '%s': %d dimensions (at most %d)", name, ndim, RDT_MAX_DIMS);
  uint64_t bytes = rdt_dtype_size(dtype);
  for (int d = 0; d < ndim; d++)
    if (shape[d] < 0 || __builtin_mul_overflow(bytes, (uint64_t)shape[d], &bytes))
      return rdt_fail("tensor '%s': bad shape", name);
  if (bytes > 0 && !data) return rdt_fail("tensor '%s': no data", name);
  if (w->n == w->cap) {
    w->cap = w->cap ? w->cap * 2 : 16;
    w->items = rdt_realloc(w->items, sizeof *w->items * (size_t)w->cap);
  }
  st_item *it = &w->items[w->n++];
  memset(it, 0, sizeof *it);
  it->name = rdt_strdup(name);
  it->dtype = dtype;
  it->ndim = ndim;
  if (ndim) memcpy(it->shape, shape, sizeof *shape * (size_t)ndim);
  it->data = data;
  it->nbytes = (size_t)bytes;
  return 0;
}

int rdt_st_writer_meta(rdt_st_writer *w, const char *key, const char *value) {
  for (int i = 0; i < w->nmeta; i++)
    if (strcmp(w->meta_keys[i], key) == 0) return rdt_fail("metadata key '%s' added twice", key);
  w->meta_keys = rdt_realloc(w->meta_keys, sizeof(char *) * (size_t)(w->nmeta + 1));
  w->meta_values = rdt_realloc(w->meta_values, sizeof(char *) * (size_t)(w->nmeta + 1));
  w->meta_keys[w->nmeta] = rdt_strdup(key);
  w->meta_values[w->nmeta++] = rdt_strdup(value);
  return 0;
}

/* Data layout: widest dtypes first (stable), so every tensor starts aligned to
 * its element size once the header is padded to 8 bytes; fills item->begin and
 * returns the order. */
static int *writer_layout(rdt_st_writer *w) {
  int *order = rdt_malloc(sizeof *order * (size_t)(w->n + 1)), k = 0;
  for (size_t size = 8; size >= 1; size /= 2)
    for (int i = 0; i < w->n; i++)
      if (rdt_dtype_size(w->items[i].dtype) == size) order[k++] = i;
  uint64_t at = 0;
  for (int i = 0; i < k; i++) {
    w->items[order[i]].begin = at;
    at += w->items[order[i]].nbytes;
  }
  return order;
}

/* The header JSON, entries in the order they were added, padded with spaces to 8 bytes (counting the length). */
static char *writer_header(rdt_st_writer *w, size_t *len) {
  rdt_jw j;
  jw_init(&j, 0);
  jw_obj(&j);
  if (w->nmeta) {
    jw_key(&j, "__metadata__");
    jw_obj(&j);
    for (int i = 0; i < w->nmeta; i++) jw_key(&j, w->meta_keys[i]), jw_str(&j, w->meta_values[i]);
    jw_obj_end(&j);
  }
  for (int i = 0; i < w->n; i++) {
    const st_item *it = &w->items[i];
    jw_key(&j, it->name);
    jw_obj(&j);
    jw_key(&j, "dtype");
    jw_str(&j, rdt_dtype_name(it->dtype));
    jw_key(&j, "shape");
    jw_arr(&j);
    for (int d = 0; d < it->ndim; d++) jw_int(&j, it->shape[d]);
    jw_arr_end(&j);
    jw_key(&j, "data_offsets");
    jw_arr(&j);
    jw_int(&j, (int64_t)it->begin);
    jw_int(&j, (int64_t)(it->begin + it->nbytes));
    jw_arr_end(&j);
    jw_obj_end(&j);
  }
  jw_obj_end(&j);
  size_t n = j.len, pad = (8 - n % 8) % 8;
  char *h = jw_finish(&j);
  h = rdt_realloc(h, n + pad + 1);
  memset(h + n, ' ', pad);
  h[n + pad] = 0;
  *len = n + pad;
  return h;
}

int rdt_st_writer_save(rdt_st_writer *w, const char *path) {
  int *order = writer_layout(w);
  size_t hlen;
  char *header = writer_header(w, &hlen);
  unsigned char len8[8];
  for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
  rdt_atomic_file f;
  int rc = rdt_atomic_open(&f, path);
  if (rc == 0) rc = rdt_atomic_write(&f, len8, 8);
  if (rc == 0) rc = rdt_atomic_write(&f, header, hlen);
  for (int i = 0; i < w->n && rc == 0; i++) {
    const st_item *it = &w->items[order[i]];
    if (it->nbytes) rc = rdt_atomic_write(&f, it->data, it->nbytes);
  }
  if (rc == 0) rc = rdt_atomic_commit(&f);
  free(header);
  free(order);
  return rc;
}

void rdt_st_writer_free(rdt_st_writer *w) {
  if (!w) return;
  for (int i = 0; i < w->n; i++) free(w->items[i].name);
  for (int i = 0; i < w->nmeta; i++) free(w->meta_keys[i]), free(w->meta_values[i]);
  free(w->items);
  free(w->meta_keys);
  free(w->meta_values);
  free(w);
}
