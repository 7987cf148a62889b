/* tests/core/safetensors_test.c: round trips of every dtype, hand-made files,
 * every kind of broken header, sharded indexes and checkpoint folders. */
#include <stdint.h>
#include "test.h"
#include "core/error.h"
#include "core/fsutil.h"
#include "core/json.h"
#include "core/safetensors.h"

static const char *dir;
static char path[4096];

/* dir/name into the static path buffer. */
static const char *at(const char *name) {
  snprintf(path, sizeof path, "%s/%s", dir, name);
  return path;
}

/* A file: 8-byte length (the header's own unless len8 >= 0), header text, ndata data bytes (0, 1, 2, ...). */
static void write_raw(const char *p, const char *header, int64_t len8, size_t ndata) {
  size_t hl = strlen(header);
  uint64_t n = len8 >= 0 ? (uint64_t)len8 : hl;
  size_t total = 8 + hl + ndata;
  unsigned char *buf = malloc(total);
  for (int i = 0; i < 8; i++) buf[i] = (unsigned char)(n >> (8 * i));
  memcpy(buf + 8, header, hl);
  for (size_t i = 0; i < ndata; i++) buf[8 + hl + i] = (unsigned char)i;
  CHECK(rdt_write_file_atomic(p, buf, total) == 0);
  free(buf);
}

static void t_round_trip_every_dtype(void) {
  static const rdt_dtype types[] = {RDT_U8, RDT_F32, RDT_F16, RDT_BF16, RDT_F64, RDT_I64, RDT_I32, RDT_I16, RDT_I8, RDT_BOOL};
  enum { NT = sizeof types / sizeof types[0] };
  unsigned char data[NT][3 * 5 * 8];
  int64_t shape[2] = {3, 5};
  rdt_st_writer *w = rdt_st_writer_new();
  for (int k = 0; k < NT; k++) {
    for (size_t i = 0; i < sizeof data[k]; i++) data[k][i] = (unsigned char)(k * 31 + i * 7);
    if (types[k] == RDT_BOOL) for (size_t i = 0; i < 15; i++) data[k][i] &= 1;
    char name[32];
    snprintf(name, sizeof name, "t.%s", rdt_dtype_name(types[k]));
    CHECK(rdt_st_writer_add(w, name, types[k], 2, shape, data[k]) == 0);
  }
  int64_t scalar_shape[1] = {0};
  CHECK(rdt_st_writer_add(w, "scalar", RDT_F32, 0, scalar_shape, &data[1][0]) == 0);
  CHECK(rdt_st_writer_add(w, "empty", RDT_F32, 1, scalar_shape, NULL) == 0);
  CHECK(rdt_st_writer_add(w, "t.U8", RDT_U8, 2, shape, data[0]) == -1);        /* duplicate */
  CHECK(rdt_st_writer_add(w, "__metadata__", RDT_U8, 2, shape, data[0]) == -1);
  CHECK(rdt_st_writer_meta(w, "format", "pt") == 0);
  CHECK(rdt_st_writer_meta(w, "note", "caf\xc3\xa9 \"quoted\"") == 0);
  CHECK(rdt_st_writer_meta(w, "format", "again") == -1);
  CHECK(rdt_st_writer_save(w, at("all.safetensors")) == 0);
  rdt_st_writer_free(w);

  rdt_st *st = rdt_st_open(at("all.safetensors"));
  CHECK_MSG(st != NULL, "%s", rdt_error());
  if (!st) return;
  CHECK(rdt_st_count(st) == NT + 2);
  for (int k = 0; k < NT; k++) {
    char name[32];
    snprintf(name, sizeof name, "t.%s", rdt_dtype_name(types[k]));
    const rdt_tensor *t = rdt_st_find(st, name);
    CHECK_MSG(t != NULL, "%s missing", name);
    if (!t) continue;
    CHECK(t->dtype == types[k] && t->ndim == 2 && t->shape[0] == 3 && t->shape[1] == 5);
    CHECK(t->nbytes == 15 * rdt_dtype_size(types[k]));
    CHECK(memcmp(t->data, data[k], t->nbytes) == 0);
    CHECK(((uintptr_t)t->data % rdt_dtype_size(types[k])) == 0);   /* aligned in the mapping */
    CHECK(strcmp(rdt_st_get(st, k)->name, name) == 0);                 /* file order = order added */
  }
  const rdt_tensor *s = rdt_st_find(st, "scalar");
  CHECK(s && s->ndim == 0 && rdt_numel(s) == 1 && s->nbytes == 4 && memcmp(s->data, data[1], 4) == 0);
  const rdt_tensor *e = rdt_st_find(st, "empty");
  CHECK(e && e->ndim == 1 && e->shape[0] == 0 && e->nbytes == 0);
  CHECK(rdt_st_find(st, "absent") == NULL);
  CHECK(strcmp(rdt_st_metadata(st, "format"), "pt") == 0);
  CHECK(strcmp(rdt_st_metadata(st, "note"), "caf\xc3\xa9 \"quoted\"") == 0);
  CHECK(rdt_st_metadata(st, "nothing") == NULL);
  rdt_st_close(st);
}

/* The written bytes follow the format: LE length, a space-padded header that
 * makes the data start on 8 bytes, __metadata__ first, offsets widest dtype first. */
static void t_written_layout(void) {
  uint8_t u[3] = {1, 2, 3};
  float f[2] = {1.5f, -2.0f};
  int64_t s3[1] = {3}, s2[1] = {2};
  rdt_st_writer *w = rdt_st_writer_new();
  rdt_st_writer_add(w, "u", RDT_U8, 1, s3, u);
  rdt_st_writer_add(w, "f", RDT_F32, 1, s2, f);
  rdt_st_writer_meta(w, "k", "v");
  CHECK(rdt_st_writer_save(w, at("layout.safetensors")) == 0);
  rdt_st_writer_free(w);
  size_t len;
  unsigned char *b = (unsigned char *)rdt_read_file(at("layout.safetensors"), &len);
  uint64_t n = 0;
  for (int i = 7; i >= 0; i--) n = n << 8 | b[i];
  const char *json = "{\"__metadata__\":{\"k\":\"v\"},\"u\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[8,11]},"
                     "\"f\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
  size_t jl = strlen(json);
  CHECK((8 + n) % 8 == 0 && n >= jl && n < jl + 8);
  CHECK(memcmp(b + 8, json, jl) == 0);
  for (size_t i = 8 + jl; i < 8 + n; i++) CHECK(b[i] == ' ');
  CHECK(len == 8 + n + 11);
  /* 1.5f = 0x3fc00000, -2.0f = 0xc0000000, little-endian; then the bytes 1 2 3. */
  const unsigned char want[11] = {0, 0, 0xc0, 0x3f, 0, 0, 0, 0xc0, 1, 2, 3};
  CHECK(memcmp(b + 8 + n, want, 11) == 0);
  free(b);
}

/* A file assembled byte by byte here, read back. */
static void t_hand_made_file(void) {
  write_raw(at("hand.safetensors"), "{\"a\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]},"
                                    "\"b\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[4,12]}}", -1, 12);
  rdt_st *st = rdt_st_open(at("hand.safetensors"));
  CHECK_MSG(st != NULL, "%s", rdt_error());
  if (!st) return;
  /* data bytes are 0, 1, 2, ...: a = bf16 {0x0100, 0x0302}, b = int64 0x0b0a090807060504 */
  const rdt_tensor *a = rdt_st_find(st, "a"), *b = rdt_st_find(st, "b");
  float fa[2], fb[1];
  rdt_st_to_f32(a, fa);
  CHECK(fa[0] == ldexpf(1.0f, -125) * 1.0f);         /* 0x0100 -> f32 0x01000000 = 2^-125 */
  CHECK(fa[1] == ldexpf(1.0f + 2.0f / 128, -121));    /* 0x0302 -> exponent 6, mantissa 2/128 */
  rdt_st_to_f32(b, fb);
  CHECK(fb[0] == (float)0x0b0a090807060504LL);
  CHECK(rdt_st_path(st) && strstr(rdt_st_path(st), "hand.safetensors"));
  rdt_st_close(st);
}

/* Misaligned data (a foreign layout) still converts. */
static void t_misaligned_memory(void) {
  const char *h = "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
  size_t hl = strlen(h);
  unsigned char *buf = calloc(1, 1 + 8 + hl + 8);
  unsigned char *img = buf + 1;
  img[0] = (unsigned char)hl;
  memcpy(img + 8, h, hl);
  float v[2] = {3.25f, -1.0f};
  memcpy(img + 8 + hl, v, 8);
  rdt_st *st = rdt_st_open_memory(img, 8 + hl + 8, "memory");
  CHECK(st != NULL);
  if (st) {
    float out[2];
    rdt_st_to_f32(rdt_st_get(st, 0), out);
    CHECK(out[0] == 3.25f && out[1] == -1.0f);
    rdt_st_close(st);
  }
  free(buf);
}

/* Each broken header fails with a message naming the file and the problem. */
static void t_broken_headers(void) {
  static const struct { const char *header; int64_t len8; size_t ndata; const char *problem; } bad[] = {
    {"{}", 1000, 0, "exceeds the file size"},
    {"{}", 200LL << 20, 0, "100 MB"},
    {"not json", -1, 0, "not valid JSON"},
    {"[1, 2]", -1, 0, "not a JSON object"},
    {"{\"a\": 1}", -1, 0, "not an object"},
    {"{\"a\": {\"shape\": [1], \"data_offsets\": [0, 4]}}", -1, 4, "dtype"},
    {"{\"a\": {\"dtype\": \"F8\", \"shape\": [1], \"data_offsets\": [0, 4]}}", -1, 4, "unknown dtype 'F8'"},
    {"{\"a\": {\"dtype\": \"F32\", \"shape\": [-1], \"data_offsets\": [0, 4]}}", -1, 4, "shape[0]"},
    {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1.5], \"data_offsets\": [0, 4]}}", -1, 4, "shape[0]"},
    {"{\"a\": {\"dtype\": \"F32\", \"shape\": 4, \"data_offsets\": [0, 4]}}", -1, 4, "shape"},
    {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1,1,1,1,1,1,1,1,1], \"data_offsets\": [0, 4]}}", -1, 4, "dimensions"},
    {"{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 4]}}", -1, 4, "holds 8 bytes"},
    {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", -1, 2, "past the end"},
    {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 0]}}", -1, 4, "end before"},
    {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0]}}", -1, 4, "data_offsets"},
    {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, -4]}}", -1, 4, "data_offsets"},
    {"{\"a\": {\"dtype\": \"F32\", \"shape\": [4294967296, 4294967296], \"data_offsets\": [0, 4]}}", -1, 4, "overflow"},
    {"{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
     " \"b\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}", -1, 8, "overlap"},
    {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
     " \"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}", -1, 8, "twice"},
    {"{\"__metadata__\": {\"k\": 1}}", -1, 0, "__metadata__"},
    {"{\"__metadata__\": [\"k\"]}", -1, 0, "__metadata__"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char name[64];
    snprintf(name, sizeof name, "bad%zu.safetensors", i);
    write_raw(at(name), bad[i].header, bad[i].len8, bad[i].ndata);
    rdt_st *st = rdt_st_open(at(name));
    CHECK_MSG(st == NULL, "#%zu accepted", i);
    rdt_st_close(st);
    CHECK_MSG(strstr(rdt_error(), name) && strstr(rdt_error(), bad[i].problem), "#%zu: %s", i, rdt_error());
    CHECK_MSG(!strchr(rdt_error(), '\n'), "#%zu: multi-line message", i);
    if (bad[i].len8 < 0) CHECK(rdt_st_check_header(bad[i].header, strlen(bad[i].header), bad[i].ndata) == -1);
  }
  CHECK(rdt_write_file_atomic(at("short.safetensors"), "\x10\0\0", 3) == 0);
  CHECK(rdt_st_open(at("short.safetensors")) == NULL && strstr(rdt_error(), "too short"));
  CHECK(rdt_st_open(at("missing.safetensors")) == NULL && strstr(rdt_error(), "missing.safetensors"));
  /* Two empty tensors at one offset overlap nothing. */
  const char *ok = "{\"a\": {\"dtype\": \"F32\", \"shape\": [0], \"data_offsets\": [4, 4]},"
                   " \"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}";
  CHECK(rdt_st_check_header(ok, strlen(ok), 8) == 0);
}

/* Write a one-tensor shard holding the value v. */
static void write_shard(const char *p, const char *name, float v) {
  int64_t shape[1] = {1};
  rdt_st_writer *w = rdt_st_writer_new();
  rdt_st_writer_add(w, name, RDT_F32, 1, shape, &v);
  CHECK(rdt_st_writer_save(w, p) == 0);
  rdt_st_writer_free(w);
}

static void t_sharded_index(void) {
  char *d = rdt_path_join(dir, "sharded");
  rdt_mkdirs(d);
  char *s1 = rdt_path_join(d, "model-00001-of-00002.safetensors"), *s2 = rdt_path_join(d, "model-00002-of-00002.safetensors");
  write_shard(s1, "x.weight", 1.0f);
  {
    int64_t shape[1] = {1};
    float a = 2.0f, b = 3.0f;
    rdt_st_writer *w = rdt_st_writer_new();
    rdt_st_writer_add(w, "y.weight", RDT_F32, 1, shape, &a);
    rdt_st_writer_add(w, "z.weight", RDT_F32, 1, shape, &b);
    CHECK(rdt_st_writer_save(w, s2) == 0);
    rdt_st_writer_free(w);
  }
  const char *index = "{\"metadata\": {\"total_size\": 12}, \"weight_map\": {"
                      "\"y.weight\": \"model-00002-of-00002.safetensors\", \"x.weight\": \"model-00001-of-00002.safetensors\","
                      "\"z.weight\": \"model-00002-of-00002.safetensors\"}}";
  char *ip = rdt_path_join(d, "model.safetensors.index.json");
  CHECK(rdt_write_file_atomic(ip, index, strlen(index)) == 0);
  for (int k = 0; k < 2; k++) {
    rdt_st *st = rdt_st_open(k ? d : ip);   /* the index itself, then its folder */
    CHECK_MSG(st != NULL, "%s", rdt_error());
    if (!st) continue;
    CHECK(rdt_st_count(st) == 3);
    float v;
    rdt_st_to_f32(rdt_st_find(st, "x.weight"), &v);
    CHECK(v == 1.0f);
    rdt_st_to_f32(rdt_st_find(st, "z.weight"), &v);
    CHECK(v == 3.0f);
    CHECK(strcmp(rdt_st_get(st, 0)->name, "y.weight") == 0);   /* shards in order of first mention */
    rdt_st_close(st);
  }
  const char *lying = "{\"weight_map\": {\"w.missing\": \"model-00001-of-00002.safetensors\"}}";
  CHECK(rdt_write_file_atomic(ip, lying, strlen(lying)) == 0);
  CHECK(rdt_st_open(ip) == NULL && strstr(rdt_error(), "w.missing") && strstr(rdt_error(), "index.json"));
  const char *gone = "{\"weight_map\": {\"x.weight\": \"nowhere.safetensors\"}}";
  CHECK(rdt_write_file_atomic(ip, gone, strlen(gone)) == 0);
  CHECK(rdt_st_open(ip) == NULL && strstr(rdt_error(), "nowhere.safetensors"));
  const char *self = "{\"weight_map\": {\"x.weight\": \"model.safetensors.index.json\"}}";
  CHECK(rdt_write_file_atomic(ip, self, strlen(self)) == 0);
  CHECK(rdt_st_open(ip) == NULL);   /* an index is never a shard: no endless recursion */
  const char *no_map = "{\"metadata\": {}}";
  CHECK(rdt_write_file_atomic(ip, no_map, strlen(no_map)) == 0);
  CHECK(rdt_st_open(ip) == NULL && strstr(rdt_error(), "weight_map"));
  free(ip);
  free(s1);
  free(s2);
  free(d);
}

/* Folders: model.safetensors wins over ema/; ema/ alone is found; an empty folder names what it looked for. */
static void t_checkpoint_folders(void) {
  char *d = rdt_path_join(dir, "ckpt"), *ema = rdt_path_join(d, "ema");
  rdt_mkdirs(ema);
  char *pe = rdt_path_join(ema, "model.safetensors"), *pm = rdt_path_join(d, "model.safetensors");
  CHECK(rdt_st_open(d) == NULL && strstr(rdt_error(), "model.safetensors.index.json") && strstr(rdt_error(), "pytorch_model.bin"));
  write_shard(pe, "ema.w", 5.0f);
  rdt_st *st = rdt_st_open(d);
  CHECK(st && rdt_st_find(st, "ema.w"));
  rdt_st_close(st);
  write_shard(pm, "main.w", 6.0f);
  st = rdt_st_open(d);
  CHECK(st && rdt_st_find(st, "main.w") && !rdt_st_find(st, "ema.w"));
  rdt_st_close(st);
  free(pe);
  free(pm);
  free(ema);
  free(d);
}

/* A failed save leaves the previous file untouched. */
static void t_failed_save_keeps_old(void) {
  char *d = rdt_path_join(dir, "keep");
  rdt_mkdirs(d);
  char *p = rdt_path_join(d, "model.safetensors");
  write_shard(p, "old", 1.0f);
  char *blocked = rdt_path_join(d, "model.safetensors.d");   /* a folder in the way of the rename */
  char *inner = rdt_path_join(blocked, "x");
  rdt_mkdirs(blocked);
  rdt_write_file_atomic(inner, "x", 1);
  int64_t shape[1] = {1};
  float v = 2;
  rdt_st_writer *w = rdt_st_writer_new();
  rdt_st_writer_add(w, "new", RDT_F32, 1, shape, &v);
  CHECK(rdt_st_writer_save(w, blocked) == -1);
  CHECK(rdt_st_writer_save(w, "/nonexistent/folder/m.safetensors") == -1);
  rdt_st_writer_free(w);
  rdt_st *st = rdt_st_open(p);
  CHECK(st && rdt_st_find(st, "old"));
  rdt_st_close(st);
  CHECK(rdt_is_dir(blocked) && rdt_is_file(inner));
  free(inner);
  free(blocked);
  free(p);
  free(d);
}

int main(void) {
  dir = test_tmpdir("safetensors");
  RUN(t_round_trip_every_dtype);
  RUN(t_written_layout);
  RUN(t_hand_made_file);
  RUN(t_misaligned_memory);
  RUN(t_broken_headers);
  RUN(t_sharded_index);
  RUN(t_checkpoint_folders);
  RUN(t_failed_save_keeps_old);
  rdt_rmtree(dir);
  return test_done();
}
