/* tests/core/torchzip_test.c: torch.save zips built byte by byte here (zip
 * headers, central directory and a hand-assembled pickle), read back as a state
 * dict and as a numpy array; broken archives; the real LIBERO .pruned_init files. */
#include <stdint.h>
#include "test.h"
#include "core/error.h"
#include "core/fsutil.h"
#include "core/safetensors.h"
#include "core/torchzip.h"

static const char *dir;

/* ---------------------------------------------------------------- a tiny byte buffer */

typedef struct {
  unsigned char *b;
  size_t n, cap;
} buf;

static void put(buf *o, const void *p, size_t n) {
  if (o->n + n > o->cap) o->b = realloc(o->b, o->cap = (o->n + n) * 2 + 64);
  memcpy(o->b + o->n, p, n);
  o->n += n;
}
static void put_s(buf *o, const char *s) { put(o, s, strlen(s)); }
static void put_u8(buf *o, unsigned v) { unsigned char c = (unsigned char)v; put(o, &c, 1); }
static void put_u16(buf *o, unsigned v) { put_u8(o, v & 0xff), put_u8(o, v >> 8); }
static void put_u32(buf *o, uint32_t v) { put_u16(o, v & 0xffff), put_u16(o, v >> 16); }

/* Pickle: BINUNICODE of s. */
static void pk_str(buf *o, const char *s) {
  put_u8(o, 'X');
  put_u32(o, (uint32_t)strlen(s));
  put_s(o, s);
}

/* CRC-32 (IEEE, reflected), bit by bit. */
static uint32_t crc32_of(const unsigned char *p, size_t n) {
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; i++) {
    c ^= p[i];
    for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ 0xedb88320u : c >> 1;
  }
  return ~c;
}

typedef struct {
  const char *name;
  const void *data;
  size_t len;
} zentry;

/* A zip of stored entries, each entry's data 64-byte aligned by a padding extra field, as torch writes. */
static void write_zip(const char *path, const zentry *e, int n, int method) {
  buf z = {0};
  uint32_t offsets[16];
  for (int i = 0; i < n; i++) {
    offsets[i] = (uint32_t)z.n;
    size_t name_len = strlen(e[i].name), pad = (64 - (z.n + 30 + name_len + 4) % 64) % 64;
    put_u32(&z, 0x04034b50), put_u16(&z, 20), put_u16(&z, 0), put_u16(&z, (unsigned)method);
    put_u16(&z, 0), put_u16(&z, 0), put_u32(&z, crc32_of(e[i].data, e[i].len));
    put_u32(&z, (uint32_t)e[i].len), put_u32(&z, (uint32_t)e[i].len);
    put_u16(&z, (unsigned)name_len), put_u16(&z, (unsigned)(4 + pad));
    put_s(&z, e[i].name);
    put_u16(&z, 0x4246), put_u16(&z, (unsigned)pad);   /* "FB" padding field */
    for (size_t k = 0; k < pad; k++) put_u8(&z, 'Z');
    put(&z, e[i].data, e[i].len);
  }
  uint32_t cd = (uint32_t)z.n;
  for (int i = 0; i < n; i++) {
    put_u32(&z, 0x02014b50), put_u16(&z, 20), put_u16(&z, 20), put_u16(&z, 0), put_u16(&z, (unsigned)method);
    put_u16(&z, 0), put_u16(&z, 0), put_u32(&z, crc32_of(e[i].data, e[i].len));
    put_u32(&z, (uint32_t)e[i].len), put_u32(&z, (uint32_t)e[i].len);
    put_u16(&z, (unsigned)strlen(e[i].name)), put_u16(&z, 0), put_u16(&z, 0), put_u16(&z, 0), put_u16(&z, 0);
    put_u32(&z, 0), put_u32(&z, offsets[i]);
    put_s(&z, e[i].name);
  }
  uint32_t cd_size = (uint32_t)z.n - cd;
  put_u32(&z, 0x06054b50), put_u16(&z, 0), put_u16(&z, 0), put_u16(&z, (unsigned)n), put_u16(&z, (unsigned)n);
  put_u32(&z, cd_size), put_u32(&z, cd), put_u16(&z, 0);
  CHECK(rdt_write_file_atomic(path, z.b, z.n) == 0);
  free(z.b);
}

/* _rebuild_tensor_v2(('storage', torch.<type>, key, 'cpu', numel), offset, size, stride, False, OrderedDict()),
 * the rebuild function fetched from memo 3. */
static void pk_tensor(buf *p, const char *type, const char *key, int numel, int offset, int ndim, const int *size,
                      const int *stride) {
  put_u8(p, 'h'), put_u8(p, 3);                                  /* BINGET 3: _rebuild_tensor_v2 */
  put_u8(p, '(');
  put_u8(p, '(');
  pk_str(p, "storage");
  put_s(p, "ctorch\n"), put_s(p, type), put_u8(p, '\n');
  pk_str(p, key);
  pk_str(p, "cpu");
  put_u8(p, 'K'), put_u8(p, (unsigned)numel);
  put_u8(p, 't');
  put_u8(p, 'Q');                                                /* BINPERSID */
  put_u8(p, 'K'), put_u8(p, (unsigned)offset);
  put_u8(p, '(');
  for (int d = 0; d < ndim; d++) put_u8(p, 'K'), put_u8(p, (unsigned)size[d]);
  put_u8(p, 't');
  put_u8(p, '(');
  for (int d = 0; d < ndim; d++) put_u8(p, 'K'), put_u8(p, (unsigned)stride[d]);
  put_u8(p, 't');
  put_u8(p, 0x89);                                               /* NEWFALSE */
  put_u8(p, 'h'), put_u8(p, 0), put_u8(p, ')'), put_u8(p, 'R');  /* OrderedDict() */
  put_u8(p, 't');
  put_u8(p, 'R');
}

/* The state dict pickle: {"w": bf16 (2, 3), "b": f32 (2,) at offset 1, "s": f32 scalar sharing storage 1,
 * "t": f32 (3, 1) with a free stride on the size-1 dim}. */
static void state_dict_pickle(buf *p, int stride_w0) {
  static const int sw[2] = {2, 3}, sb[1] = {2}, st1[1] = {1}, tsize[2] = {3, 1}, tstride[2] = {1, 7};
  int ww[2] = {stride_w0, 1};
  put_u8(p, 0x80), put_u8(p, 2);
  put_s(p, "ccollections\nOrderedDict\n"), put_u8(p, 'q'), put_u8(p, 0);
  put_u8(p, ')'), put_u8(p, 'R'), put_u8(p, 'q'), put_u8(p, 1);
  put_s(p, "ctorch._utils\n_rebuild_tensor_v2\n"), put_u8(p, 'q'), put_u8(p, 3), put_u8(p, '0');   /* memo, POP */
  put_u8(p, '(');
  pk_str(p, "w");
  pk_tensor(p, "BFloat16Storage", "0", 6, 0, 2, sw, ww);
  pk_str(p, "b");
  pk_tensor(p, "FloatStorage", "1", 3, 1, 1, sb, st1);
  pk_str(p, "s");
  pk_tensor(p, "FloatStorage", "1", 3, 0, 0, NULL, NULL);
  pk_str(p, "t");
  pk_tensor(p, "FloatStorage", "1", 3, 0, 2, tsize, tstride);
  put_u8(p, 'u');
  put_u8(p, '.');
}

/* bf16 of 1, 2, 3, -1, 0.5, 256 (hand-encoded) and f32 10, 20, 30. */
static const uint16_t w_bits[6] = {0x3f80, 0x4000, 0x4040, 0xbf80, 0x3f00, 0x4380};
static const float b_vals[3] = {10.0f, 20.0f, 30.0f};

static void write_state_dict(const char *path, int stride_w0) {
  buf p = {0};
  state_dict_pickle(&p, stride_w0);
  zentry e[4] = {{"mymodel/data.pkl", p.b, p.n}, {"mymodel/byteorder", "little", 6},
                 {"mymodel/data/0", w_bits, sizeof w_bits}, {"mymodel/data/1", b_vals, sizeof b_vals}};
  write_zip(path, e, 4, 0);
  free(p.b);
}

static void t_state_dict(void) {
  char *path = rdt_path_join(dir, "pytorch_model.bin");
  write_state_dict(path, 3);
  rdt_st *st = rdt_st_open(path);
  CHECK_MSG(st != NULL, "%s", rdt_error());
  if (!st) return;
  CHECK(rdt_st_count(st) == 4);
  const rdt_tensor *w = rdt_st_find(st, "w"), *b = rdt_st_find(st, "b"), *s = rdt_st_find(st, "s"), *t = rdt_st_find(st, "t");
  CHECK(w && w->dtype == RDT_BF16 && w->ndim == 2 && w->shape[0] == 2 && w->shape[1] == 3 && w->nbytes == 12);
  CHECK(b && b->dtype == RDT_F32 && b->ndim == 1 && b->shape[0] == 2 && b->nbytes == 8);
  CHECK(s && s->ndim == 0 && s->nbytes == 4);
  CHECK(t && t->ndim == 2 && t->shape[0] == 3 && t->shape[1] == 1);
  if (w && b && s) {
    float fw[6], fb[2], fs[1];
    rdt_st_to_f32(w, fw);
    rdt_st_to_f32(b, fb);
    rdt_st_to_f32(s, fs);
    const float want[6] = {1, 2, 3, -1, 0.5f, 256};
    for (int i = 0; i < 6; i++) CHECK(fw[i] == want[i]);
    CHECK(fb[0] == 20.0f && fb[1] == 30.0f);   /* storage offset 1 */
    CHECK(fs[0] == 10.0f);
    CHECK(((uintptr_t)w->data % 64) == 0);     /* entries are 64-byte aligned */
  }
  CHECK(strcmp(rdt_st_get(st, 0)->name, "w") == 0);   /* dict order */
  rdt_st_close(st);
  /* The folder form finds pytorch_model.bin. */
  st = rdt_st_open(dir);
  CHECK(st && rdt_st_find(st, "b"));
  rdt_st_close(st);
  /* And the zip reader itself. */
  rdt_zip *z = rdt_zip_open(path);
  CHECK(z && rdt_zip_count(z) == 4 && !strcmp(rdt_zip_name(z, 1), "mymodel/byteorder"));
  size_t n = 0;
  const void *d = z ? rdt_zip_data(z, "mymodel/byteorder", &n) : NULL;
  CHECK(d && n == 6 && !memcmp(d, "little", 6));
  CHECK(z && rdt_zip_data(z, "nothing", &n) == NULL && strstr(rdt_error(), "nothing"));
  rdt_zip_close(z);
  free(path);
}

static void t_non_contiguous(void) {
  char *path = rdt_path_join(dir, "strided.bin");
  write_state_dict(path, 4);   /* stride (4, 1) for size (2, 3) */
  CHECK(rdt_st_open(path) == NULL && strstr(rdt_error(), "not contiguous") && strstr(rdt_error(), "strided.bin"));
  free(path);
}

/* A numpy array pickled with protocol-4 opcodes: FRAME, SHORT_BINUNICODE, MEMOIZE, STACK_GLOBAL, SHORT_BINBYTES. */
static void t_numpy_protocol4(void) {
  buf p = {0};
  const float v[4] = {1.5f, -2.0f, 0.25f, 8.0f};
  put_u8(&p, 0x80), put_u8(&p, 4);
  put_u8(&p, 0x95);
  for (int i = 0; i < 8; i++) put_u8(&p, 0);                              /* FRAME (length unused) */
  put_u8(&p, 0x8c), put_u8(&p, 21), put_s(&p, "numpy.core.multiarray"), put_u8(&p, 0x94);
  put_u8(&p, 0x8c), put_u8(&p, 12), put_s(&p, "_reconstruct"), put_u8(&p, 0x94);
  put_u8(&p, 0x93), put_u8(&p, 0x94);                                     /* STACK_GLOBAL -> memo 2 */
  put_u8(&p, 0x8c), put_u8(&p, 5), put_s(&p, "numpy"), put_u8(&p, 0x8c), put_u8(&p, 7), put_s(&p, "ndarray");
  put_u8(&p, 0x93);
  put_u8(&p, 'K'), put_u8(&p, 0), put_u8(&p, 0x85);
  put_u8(&p, 'C'), put_u8(&p, 1), put_u8(&p, 'b');
  put_u8(&p, 0x87), put_u8(&p, 'R');                                      /* _reconstruct(ndarray, (0,), b'b') */
  put_u8(&p, '(');
  put_u8(&p, 'K'), put_u8(&p, 1);
  put_u8(&p, 'K'), put_u8(&p, 2), put_u8(&p, 'K'), put_u8(&p, 2), put_u8(&p, 0x86);
  put_u8(&p, 0x8c), put_u8(&p, 5), put_s(&p, "numpy"), put_u8(&p, 0x8c), put_u8(&p, 5), put_s(&p, "dtype");
  put_u8(&p, 0x93);
  put_u8(&p, 0x8c), put_u8(&p, 2), put_s(&p, "f4"), put_u8(&p, 0x89), put_u8(&p, 0x88), put_u8(&p, 0x87), put_u8(&p, 'R');
  put_u8(&p, '('), put_u8(&p, 'K'), put_u8(&p, 3), put_u8(&p, 0x8c), put_u8(&p, 1), put_s(&p, "<");
  put_u8(&p, 'N'), put_u8(&p, 'N'), put_u8(&p, 'N'), put_u8(&p, 'J'), put_u32(&p, 0xffffffffu);
  put_u8(&p, 'J'), put_u32(&p, 0xffffffffu), put_u8(&p, 'K'), put_u8(&p, 0), put_u8(&p, 't'), put_u8(&p, 'b');
  put_u8(&p, 0x89);
  put_u8(&p, 'C'), put_u8(&p, 16), put(&p, v, 16);
  put_u8(&p, 't'), put_u8(&p, 'b'), put_u8(&p, '.');
  zentry e[1] = {{"archive/data.pkl", p.b, p.n}};
  char *path = rdt_path_join(dir, "array.pruned_init");
  write_zip(path, e, 1, 0);
  rdt_tensor t;
  CHECK_MSG(rdt_torch_load_numpy(path, &t) == 0, "%s", rdt_error());
  CHECK(t.dtype == RDT_F32 && t.ndim == 2 && t.shape[0] == 2 && t.shape[1] == 2 && t.nbytes == 16);
  if (t.data) CHECK(memcmp(t.data, v, 16) == 0);
  free(t.data);
  /* Every truncation of the pickle fails cleanly. */
  for (size_t cut = 0; cut < p.n; cut++) {
    zentry c[1] = {{"archive/data.pkl", p.b, cut}};
    write_zip(path, c, 1, 0);
    CHECK_MSG(rdt_torch_load_numpy(path, &t) == -1 && strstr(rdt_error(), "array.pruned_init"), "cut %zu", cut);
  }
  free(path);
  free(p.b);
}

/* Broken archives: every truncation, flipped bytes, compressed entries, missing pieces. */
static void t_broken_archives(void) {
  char *good = rdt_path_join(dir, "good.bin"), *bad = rdt_path_join(dir, "bad.bin");
  write_state_dict(good, 3);
  size_t n;
  unsigned char *bytes = (unsigned char *)rdt_read_file(good, &n);
  int crashes_avoided = 0;
  for (size_t cut = 0; cut < n; cut += 7) {
    CHECK(rdt_write_file_atomic(bad, bytes, cut) == 0);
    rdt_st *st = rdt_st_open(bad);
    CHECK_MSG(st == NULL && strstr(rdt_error(), "bad.bin"), "cut %zu: %s", cut, st ? "opened" : rdt_error());
    rdt_st_close(st);
  }
  for (size_t i = 0; i < n; i++) {   /* each byte flipped: open or fail, never crash */
    bytes[i] ^= 0xff;
    CHECK(rdt_write_file_atomic(bad, bytes, n) == 0);
    rdt_st *st = rdt_st_open(bad);
    if (!st) CHECK(strstr(rdt_error(), "bad.bin") != NULL);
    rdt_st_close(st);
    bytes[i] ^= 0xff;
    crashes_avoided++;
  }
  CHECK(crashes_avoided == (int)n);
  free(bytes);
  zentry deflated[1] = {{"a/data.pkl", "x", 1}};
  write_zip(bad, deflated, 1, 8);
  CHECK(rdt_st_open(bad) == NULL && strstr(rdt_error(), "compressed"));
  zentry no_pickle[1] = {{"a/other", "x", 1}};
  write_zip(bad, no_pickle, 1, 0);
  CHECK(rdt_st_open(bad) == NULL && strstr(rdt_error(), "data.pkl"));
  /* Storage shorter than the tensor. */
  buf p = {0};
  state_dict_pickle(&p, 3);
  zentry short_storage[3] = {{"m/data.pkl", p.b, p.n}, {"m/data/0", w_bits, 10}, {"m/data/1", b_vals, sizeof b_vals}};
  write_zip(bad, short_storage, 3, 0);
  CHECK(rdt_st_open(bad) == NULL && strstr(rdt_error(), "exceed its storage"));
  zentry big_endian[4] = {{"m/data.pkl", p.b, p.n}, {"m/byteorder", "big", 3}, {"m/data/0", w_bits, 12},
                          {"m/data/1", b_vals, 12}};
  write_zip(bad, big_endian, 4, 0);
  CHECK(rdt_st_open(bad) == NULL && strstr(rdt_error(), "byte order"));
  CHECK(rdt_torch_load_numpy(good, &(rdt_tensor){0}) == -1 && strstr(rdt_error(), "not a numpy array"));
  free(p.b);
  free(good);
  free(bad);
}

/* The real LIBERO init states: every libero_90 file is (50, 1 + nq + nv) float64 with time 0 in column 0. */
static void t_libero_pruned_init(void) {
  char folder[4200];
  snprintf(folder, sizeof folder, "%s/init_files/libero_90", test_libero_root());
  char *p = rdt_path_join(folder, "KITCHEN_SCENE1_open_the_bottom_drawer_of_the_cabinet.pruned_init");
  rdt_tensor t;
  CHECK_MSG(rdt_torch_load_numpy(p, &t) == 0, "%s", rdt_error());
  CHECK(t.dtype == RDT_F64 && t.ndim == 2 && t.shape[0] == 50 && t.shape[1] == 51);
  if (t.data && t.nbytes == 50 * 51 * 8) {
    const double *v = t.data;
    double sum = 0;
    for (int i = 0; i < 50 * 51; i++) sum += v[i];
    /* Reference values decoded from the file with Python's zipfile + struct. */
    CHECK(v[1] == -0.00666711830059764);
    CHECK_NEAR(sum, 271.9151868439406, 1e-9);
    for (int r = 0; r < 50; r++) CHECK(v[r * 51] == 0.0);
  }
  free(t.data);
  free(p);
  char **names;
  int n = rdt_list_dir(folder, ".pruned_init", &names);
  CHECK(n == 90);
  for (int i = 0; i < n; i++) {
    char *q = rdt_path_join(folder, names[i]);
    int ok = rdt_torch_load_numpy(q, &t) == 0;
    CHECK_MSG(ok && t.ndim == 2 && t.shape[0] == 50 && t.shape[1] > 9 && t.dtype == RDT_F64, "%s", names[i]);
    for (int r = 0; ok && r < 50; r++) CHECK(((double *)t.data)[r * t.shape[1]] == 0.0);
    if (ok) free(t.data);
    free(q);
    free(names[i]);
  }
  free(names);
}

int main(void) {
  dir = test_tmpdir("torchzip");
  RUN(t_state_dict);
  RUN(t_non_contiguous);
  RUN(t_numpy_protocol4);
  RUN(t_broken_archives);
  RUN(t_libero_pruned_init);
  rdt_rmtree(dir);
  return test_done();
}
