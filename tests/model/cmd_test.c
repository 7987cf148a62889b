/* tests/model/cmd_test.c: the parameter layout against the upstream naming rule
 * (RDT-170M and RDT-1B), `rdt init` + `rdt inspect` for RDT-170M, and
 * `rdt convert` of a torch zip built byte by byte here. */
#include <stdarg.h>
#include <stdint.h>
#include "model_util.h"
#include "core/fsutil.h"
#include "core/json.h"
#include "core/safetensors.h"

static const char *dir;

static const char *src_path(const char *rel) {
  static char buf[4][4096];
  static int k;
  const char *src = getenv("RDT_SOURCE_DIR");
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%s", src ? src : ".", rel);
  return buf[k];
}

/* ================================================================ the upstream naming rule */

typedef struct {
  char name[96];
  int ndim;
  int64_t shape[3];
} expect;

typedef struct {
  expect *e;
  int n;
  int64_t total;
} expect_list;

static void add(expect_list *l, int64_t a, int64_t b, int64_t c, const char *fmt, ...) {
  l->e = realloc(l->e, sizeof *l->e * (l->n + 1));
  expect *x = &l->e[l->n++];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(x->name, sizeof x->name, fmt, ap);
  va_end(ap);
  int64_t d[3] = {a, b, c}, numel = 1;
  x->ndim = 0;
  for (int i = 0; i < 3 && d[i]; i++) x->shape[x->ndim++] = d[i], numel *= d[i];
  l->total += numel;
}

/* The RDTRunner state dict for hidden H, depth, heads, as upstream registers
 * modules: RDT's parameters, t/freq embedders, blocks, final layer; then the
 * lang (mlp2x), img (mlp2x) and state (mlp3x) adaptors. */
static expect_list upstream_names(int H, int depth, int heads, int lang_dim, int img_dim, int img_len, int lang_len) {
  expect_list l = {0};
  int hd = H / heads;
  add(&l, 1, 67, H, "model.x_pos_embed");
  add(&l, 1, lang_len, H, "model.lang_cond_pos_embed");
  add(&l, 1, img_len, H, "model.img_cond_pos_embed");
  const char *emb[2] = {"t_embedder", "freq_embedder"};
  for (int e = 0; e < 2; e++) {
    add(&l, H, 256, 0, "model.%s.mlp.0.weight", emb[e]), add(&l, H, 0, 0, "model.%s.mlp.0.bias", emb[e]);
    add(&l, H, H, 0, "model.%s.mlp.2.weight", emb[e]), add(&l, H, 0, 0, "model.%s.mlp.2.bias", emb[e]);
  }
  for (int i = 0; i < depth; i++) {
    add(&l, H, 0, 0, "model.blocks.%d.norm1.weight", i);
    add(&l, 3 * H, H, 0, "model.blocks.%d.attn.qkv.weight", i), add(&l, 3 * H, 0, 0, "model.blocks.%d.attn.qkv.bias", i);
    add(&l, hd, 0, 0, "model.blocks.%d.attn.q_norm.weight", i), add(&l, hd, 0, 0, "model.blocks.%d.attn.k_norm.weight", i);
    add(&l, H, H, 0, "model.blocks.%d.attn.proj.weight", i), add(&l, H, 0, 0, "model.blocks.%d.attn.proj.bias", i);
    add(&l, H, H, 0, "model.blocks.%d.cross_attn.q.weight", i), add(&l, H, 0, 0, "model.blocks.%d.cross_attn.q.bias", i);
    add(&l, 2 * H, H, 0, "model.blocks.%d.cross_attn.kv.weight", i);
    add(&l, 2 * H, 0, 0, "model.blocks.%d.cross_attn.kv.bias", i);
    add(&l, hd, 0, 0, "model.blocks.%d.cross_attn.q_norm.weight", i);
    add(&l, hd, 0, 0, "model.blocks.%d.cross_attn.k_norm.weight", i);
    add(&l, H, H, 0, "model.blocks.%d.cross_attn.proj.weight", i);
    add(&l, H, 0, 0, "model.blocks.%d.cross_attn.proj.bias", i);
    add(&l, H, 0, 0, "model.blocks.%d.norm2.weight", i);
    add(&l, H, H, 0, "model.blocks.%d.ffn.fc1.weight", i), add(&l, H, 0, 0, "model.blocks.%d.ffn.fc1.bias", i);
    add(&l, H, H, 0, "model.blocks.%d.ffn.fc2.weight", i), add(&l, H, 0, 0, "model.blocks.%d.ffn.fc2.bias", i);
    add(&l, H, 0, 0, "model.blocks.%d.norm3.weight", i);
  }
  add(&l, H, 0, 0, "model.final_layer.norm_final.weight");
  add(&l, H, H, 0, "model.final_layer.ffn_final.fc1.weight"), add(&l, H, 0, 0, "model.final_layer.ffn_final.fc1.bias");
  add(&l, 128, H, 0, "model.final_layer.ffn_final.fc2.weight"), add(&l, 128, 0, 0, "model.final_layer.ffn_final.fc2.bias");
  add(&l, H, lang_dim, 0, "lang_adaptor.0.weight"), add(&l, H, 0, 0, "lang_adaptor.0.bias");
  add(&l, H, H, 0, "lang_adaptor.2.weight"), add(&l, H, 0, 0, "lang_adaptor.2.bias");
  add(&l, H, img_dim, 0, "img_adaptor.0.weight"), add(&l, H, 0, 0, "img_adaptor.0.bias");
  add(&l, H, H, 0, "img_adaptor.2.weight"), add(&l, H, 0, 0, "img_adaptor.2.bias");
  add(&l, H, 256, 0, "state_adaptor.0.weight"), add(&l, H, 0, 0, "state_adaptor.0.bias");
  for (int k = 2; k <= 4; k += 2)
    add(&l, H, H, 0, "state_adaptor.%d.weight", k), add(&l, H, 0, 0, "state_adaptor.%d.bias", k);
  return l;
}

/* The model's table for a config file equals the rule, in order. */
static void check_table(const char *config, int H, int depth, int64_t total, int count) {
  rdt_model_config c;
  CHECK(rdt_model_config_load(src_path(config), &c) == 0);
  expect_list want = upstream_names(H, depth, 32, 4096, 1152, 4374, 1024);
  CHECK(want.n == count && want.total == total);   /* the rule itself gives the upstream figures */
  rdt_param_info *t;
  int n = rdt_param_table(&c, &t);
  CHECK_MSG(n == count, "%s: %d tensors", config, n);
  CHECK_MSG((int64_t)rdt_param_total(t, n) == total, "%s: %zu parameters", config, rdt_param_total(t, n));
  for (int i = 0; i < n && i < want.n; i++) {
    int same = strcmp(t[i].name, want.e[i].name) == 0 && t[i].ndim == want.e[i].ndim;
    for (int d = 0; same && d < t[i].ndim; d++) same = t[i].shape[d] == want.e[i].shape[d];
    CHECK_MSG(same, "%s: tensor %d is %s, expected %s", config, i, t[i].name, want.e[i].name);
  }
  free(t), free(want.e);
}

static void t_tables(void) {
  check_table("configs/rdt-170m.yaml", 1024, 14, 166229888, 324);
  check_table("configs/base.yaml", 2048, 28, 1228319872, 618);
}

/* rdt init (bf16) then rdt inspect --json: exactly the upstream names and shapes. */
static void t_init_inspect(void) {
  CHECK(test_sh("%s init --config %s --output %s/rdt170m/model.safetensors --dtype bf16 --seed 3", test_rdt_bin(),
            src_path("configs/rdt-170m.yaml"), dir) == 0);
  CHECK(test_sh("%s inspect %s/rdt170m/model.safetensors --json > %s/inspect.json", test_rdt_bin(), dir, dir) == 0);
  char path[4200];
  snprintf(path, sizeof path, "%s/inspect.json", dir);
  rdt_json *j = rdt_json_load(path);
  CHECK(j != NULL);
  if (!j) return;
  expect_list want = upstream_names(1024, 14, 32, 4096, 1152, 4374, 1024);
  int64_t count = 0, params = 0;
  CHECK(rdt_json_int64(rdt_json_get(j, "count"), &count) == 0 && count == 324);
  CHECK(rdt_json_int64(rdt_json_get(j, "parameters"), &params) == 0 && params == 166229888);
  const rdt_json *ts = rdt_json_get(j, "tensors");
  int found = 0;
  for (int i = 0; ts && i < ts->count; i++) {
    const rdt_json *e = rdt_json_at(ts, i), *shape = rdt_json_get(e, "shape");
    const char *name = rdt_json_get(e, "name")->string;
    CHECK(strcmp(rdt_json_get(e, "dtype")->string, "BF16") == 0);
    for (int k = 0; k < want.n; k++) {
      if (strcmp(want.e[k].name, name) != 0) continue;
      int same = shape->count == want.e[k].ndim;
      for (int d = 0; same && d < shape->count; d++) same = (int64_t)shape->items[d].number == want.e[k].shape[d];
      CHECK_MSG(same, "%s: shape differs", name);
      found++;
    }
  }
  CHECK(found == 324);
  rdt_json_free(j);
  free(want.e);
  /* config.json beside the weights describes the same model */
  snprintf(path, sizeof path, "%s/rdt170m/config.json", dir);
  rdt_model_config c;
  CHECK(rdt_model_config_load(path, &c) == 0);
  CHECK(c.hidden_size == 1024 && c.depth == 14 && c.num_heads == 32 && c.img_cond_len == 4374);
  CHECK(c.max_lang_cond_len == 1024 && c.pred_horizon == 64 && c.action_dim == 128);
  CHECK(c.img_pos.n == 1 && c.img_pos.m[0].size[2] == -729 && c.lang_pos.m[0].size[0] == -1024);
}

/* ================================================================ a torch zip by hand */

typedef struct {
  unsigned char *b;
  size_t n, cap;
} bytes;

static void put(bytes *o, const void *p, size_t n) {
  if (o->n + n > o->cap) o->b = realloc(o->b, o->cap = 2 * (o->n + n) + 256);
  memcpy(o->b + o->n, p, n);
  o->n += n;
}
static void put1(bytes *o, unsigned v) { unsigned char c = (unsigned char)v; put(o, &c, 1); }
static void put2(bytes *o, unsigned v) { put1(o, v & 255), put1(o, v >> 8); }
static void put4(bytes *o, uint32_t v) { put2(o, v & 65535), put2(o, v >> 16); }
static void puts_(bytes *o, const char *s) { put(o, s, strlen(s)); }
/* pickle BINUNICODE and BININT */
static void pstr(bytes *o, const char *s) { put1(o, 'X'), put4(o, (uint32_t)strlen(s)), puts_(o, s); }
static void pint(bytes *o, int64_t v) { put1(o, 'J'), put4(o, (uint32_t)v); }

static uint32_t crc32(const unsigned char *p, size_t n) {
  uint32_t c = ~0u;
  for (size_t i = 0; i < n; i++) {
    c ^= p[i];
    for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xedb88320u & -(c & 1));
  }
  return ~c;
}

/* A zip of stored entries (as torch.save writes them, data 64-byte aligned). */
static void write_zip(const char *path, int n, char **names, bytes *data) {
  bytes z = {0};
  uint32_t *off = calloc(n, sizeof *off);
  for (int i = 0; i < n; i++) {
    off[i] = (uint32_t)z.n;
    size_t len = strlen(names[i]), pad = (64 - (z.n + 30 + len + 4) % 64) % 64;
    uint32_t crc = crc32(data[i].b, data[i].n);
    put4(&z, 0x04034b50), put2(&z, 20), put2(&z, 0), put2(&z, 0), put2(&z, 0), put2(&z, 0);
    put4(&z, crc), put4(&z, (uint32_t)data[i].n), put4(&z, (uint32_t)data[i].n);
    put2(&z, (unsigned)len), put2(&z, (unsigned)(pad + 4)), puts_(&z, names[i]);
    put2(&z, 0x4246), put2(&z, (unsigned)pad);
    for (size_t k = 0; k < pad; k++) put1(&z, 0);
    put(&z, data[i].b, data[i].n);
  }
  uint32_t cd = (uint32_t)z.n;
  for (int i = 0; i < n; i++) {
    put4(&z, 0x02014b50), put2(&z, 20), put2(&z, 20), put2(&z, 0), put2(&z, 0), put2(&z, 0), put2(&z, 0);
    put4(&z, crc32(data[i].b, data[i].n)), put4(&z, (uint32_t)data[i].n), put4(&z, (uint32_t)data[i].n);
    put2(&z, (unsigned)strlen(names[i])), put2(&z, 0), put2(&z, 0), put2(&z, 0), put2(&z, 0), put4(&z, 0);
    put4(&z, off[i]), puts_(&z, names[i]);
  }
  uint32_t cd_len = (uint32_t)z.n - cd;
  put4(&z, 0x06054b50), put2(&z, 0), put2(&z, 0), put2(&z, (unsigned)n), put2(&z, (unsigned)n);
  put4(&z, cd_len), put4(&z, cd), put2(&z, 0);
  CHECK(rdt_write_file_atomic(path, z.b, z.n) == 0);
  free(z.b), free(off);
}

/* torch.save(state_dict) of the model's parameters p: position embeddings as
 * FloatStorage, everything else BFloat16Storage; tensor skip (if >= 0) left out.
 * The stored bytes of tensor i go to raw[i]. */
static void write_torch_state_dict(const char *path, const rdt_model *m, const float *p, int skip, bytes *raw) {
  int n = rdt_model_param_count(m);
  char **names = calloc(n + 2, sizeof *names);
  bytes *data = calloc(n + 2, sizeof *data), pk = {0};
  put1(&pk, 0x80), put1(&pk, 2);
  puts_(&pk, "ccollections\nOrderedDict\n"), put1(&pk, 'q'), put1(&pk, 0);
  put1(&pk, ')'), put1(&pk, 'R'), put1(&pk, 'q'), put1(&pk, 1);
  puts_(&pk, "ctorch._utils\n_rebuild_tensor_v2\n"), put1(&pk, 'q'), put1(&pk, 2), put1(&pk, '0');
  put1(&pk, '(');
  int nz = 1;
  for (int i = 0; i < n; i++) {
    const rdt_param_info *t = rdt_model_param(m, i);
    int f32 = strstr(t->name, "pos_embed") != NULL;
    raw[i].n = 0;
    for (size_t k = 0; k < t->numel; k++) {
      float v = p[t->offset + k];
      uint16_t h = rdt_f32_to_bf16(v);
      if (f32) put(&raw[i], &v, 4);
      else put(&raw[i], &h, 2);
    }
    if (i == skip) continue;
    char key[16];
    snprintf(key, sizeof key, "%d", i);
    names[nz] = malloc(64);
    snprintf(names[nz], 64, "archive/data/%d", i);
    data[nz++] = raw[i];
    pstr(&pk, t->name);
    put1(&pk, 'h'), put1(&pk, 2), put1(&pk, '(');
    put1(&pk, '('), pstr(&pk, "storage");
    puts_(&pk, f32 ? "ctorch\nFloatStorage\n" : "ctorch\nBFloat16Storage\n");
    pstr(&pk, key), pstr(&pk, "cpu"), pint(&pk, (int64_t)t->numel), put1(&pk, 't'), put1(&pk, 'Q');
    pint(&pk, 0);
    put1(&pk, '(');
    for (int d = 0; d < t->ndim; d++) pint(&pk, t->shape[d]);
    put1(&pk, 't'), put1(&pk, '(');
    int64_t stride = 1, strides[3];
    for (int d = t->ndim - 1; d >= 0; d--) strides[d] = stride, stride *= t->shape[d];
    for (int d = 0; d < t->ndim; d++) pint(&pk, strides[d]);
    put1(&pk, 't'), put1(&pk, 0x89), put1(&pk, 'h'), put1(&pk, 0), put1(&pk, ')'), put1(&pk, 'R');
    put1(&pk, 't'), put1(&pk, 'R');
  }
  put1(&pk, 'u'), put1(&pk, '.');
  names[0] = strdup("archive/data.pkl");
  data[0] = pk;
  write_zip(path, nz, names, data);
  for (int i = 0; i < nz; i++) free(names[i]);
  free(names), free(data), free(pk.b);
}

/* bin -> rdt convert -> model.safetensors: same dtypes, bit-identical bytes,
 * loadable; a missing tensor is reported by name. */
static void t_convert(void) {
  rdt_model_config c = tiny_config();
  k_backend *be = k_open("cpu", 1);
  rdt_model *m = rdt_model_new(be, &c);
  float *p = random_params(m, 9);
  int n = rdt_model_param_count(m);
  bytes *raw = calloc(n, sizeof *raw);
  char path[4200], out[4200];
  snprintf(path, sizeof path, "%s/bin", dir);
  CHECK(rdt_mkdirs(path) == 0);
  snprintf(path, sizeof path, "%s/bin/config.json", dir);
  CHECK(rdt_model_config_write(&c, path) == 0);
  snprintf(path, sizeof path, "%s/bin/pytorch_model.bin", dir);
  write_torch_state_dict(path, m, p, -1, raw);
  CHECK(test_sh("%s convert %s %s/converted", test_rdt_bin(), path, dir) == 0);
  snprintf(out, sizeof out, "%s/converted/model.safetensors", dir);
  rdt_st *st = rdt_st_open(out);
  CHECK(st && rdt_st_count(st) == n);
  for (int i = 0; st && i < n; i++) {
    const rdt_param_info *t = rdt_model_param(m, i);
    const rdt_tensor *x = rdt_st_find(st, t->name);
    CHECK_MSG(x && x->nbytes == raw[i].n && memcmp(x->data, raw[i].b, raw[i].n) == 0, "%s differs", t->name);
    CHECK(x && x->dtype == (strstr(t->name, "pos_embed") ? RDT_F32 : RDT_BF16));
  }
  /* and it loads: every value as stored */
  size_t total = rdt_model_numel(m);
  float *q = rdt_malloc(4 * total);
  CHECK(st && rdt_model_load(m, st, NULL) == 0);
  k_download(be, q, rdt_model_params(m), 4 * total);
  size_t bad = 0;
  for (int i = 0; i < n; i++) {
    const rdt_param_info *t = rdt_model_param(m, i);
    int f32 = strstr(t->name, "pos_embed") != NULL;
    for (size_t k = 0; k < t->numel; k++) {
      float want = f32 ? p[t->offset + k] : rdt_bf16_to_f32(rdt_f32_to_bf16(p[t->offset + k]));
      bad += q[t->offset + k] != want;
    }
  }
  CHECK(bad == 0);
  rdt_st_close(st);
  snprintf(out, sizeof out, "%s/converted/config.json", dir);
  rdt_model_config c2;
  CHECK(rdt_model_config_load(out, &c2) == 0 && c2.hidden_size == c.hidden_size && c2.img_cond_len == c.img_cond_len);
  /* a state dict without one tensor fails and names it */
  write_torch_state_dict(path, m, p, 5, raw);
  CHECK(test_sh("%s convert %s %s/bad 2> %s/convert.err", test_rdt_bin(), path, dir, dir) == 1);
  snprintf(out, sizeof out, "%s/convert.err", dir);
  char *err = rdt_read_file(out, NULL);
  CHECK_MSG(err && strstr(err, rdt_model_param(m, 5)->name) && strstr(err, "1 missing"), "%s", err ? err : "");
  free(err);
  for (int i = 0; i < n; i++) free(raw[i].b);
  free(raw), free(p), free(q);
  rdt_model_free(m);
  k_close(be);
}

int main(void) {
  dir = test_tmpdir("model-cmd");
  RUN(t_tables);
  RUN(t_init_inspect);
  RUN(t_convert);
  test_sh("rm -rf '%s'", dir);
  return test_done();
}
