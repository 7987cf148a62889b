/* model/cmd_model.c: `rdt init` (a freshly initialised model) and `rdt convert`
 * (pytorch_model.bin or safetensors -> model.safetensors + config.json). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "core/fsutil.h"
#include "core/log.h"
#include "model/rdt_cmd.h"

/* "fp32" / "bf16" (and "keep" when allowed) into a dtype; keep -> RDT_DTYPE_COUNT. */
static rdt_dtype parse_dtype(const char *s, int allow_keep) {
  if (strcmp(s, "fp32") == 0) return RDT_F32;
  if (strcmp(s, "bf16") == 0) return RDT_BF16;
  if (allow_keep && strcmp(s, "keep") == 0) return RDT_DTYPE_COUNT;
  rdt_die("--dtype must be fp32%s or bf16, not '%s'", allow_keep ? ", keep" : "", s);
}

/* ================================================================ rdt init */

int rdt_cmd_init(int argc, char **argv) {
  const char *config = NULL, *output = NULL, *dtype = NULL;
  int64_t seed = 0;
  rdt_flag flags[] = {
    {"config", RDT_FLAG_STR, &config, NULL, "model config (YAML, dotted overrides allowed, or config.json)"},
    {"output", RDT_FLAG_STR, &output, NULL, "weights file to write (.safetensors); config.json goes beside it"},
    {"seed", RDT_FLAG_INT, &seed, "0", "initialisation seed"},
    {"dtype", RDT_FLAG_STR, &dtype, "fp32", "stored dtype: fp32 or bf16"},
  };
  rdt_overrides ov;
  rdt_cmd_flags(argv[0], "Write a freshly initialised RDT (upstream initialisation) and its config.json.", flags,
                4, argc, argv, &ov, NULL);
  if (!config || !output) rdt_die("rdt init needs --config and --output");
  rdt_dtype dt = parse_dtype(dtype, 0);
  rdt_model_config cfg;
  if (rdt_cmd_model_config(config, &ov, NULL, &cfg) != 0) rdt_die_last();
  k_backend *b = k_open("cpu", 0);
  if (!b) rdt_die_last();
  rdt_model *m = rdt_model_new(b, &cfg);
  if (!m) rdt_die_last();
  rdt_model_init(m, (uint64_t)seed);
  char *dir = rdt_dirname(output), *cfg_path = rdt_path_join(dir, "config.json");
  if (rdt_mkdirs(dir) != 0 || rdt_model_save(m, NULL, output, dt) != 0 || rdt_model_config_write(&cfg, cfg_path) != 0)
    rdt_die_last();
  rdt_info("wrote %s (%d tensors, %zu parameters, %s) and %s", output, rdt_model_param_count(m),
           rdt_model_numel(m), rdt_dtype_name(dt), cfg_path);
  free(dir), free(cfg_path);
  rdt_model_free(m);
  k_close(b);
  rdt_overrides_free(&ov);
  return 0;
}

/* ================================================================ rdt convert */

/* Write the table's tensors from st to path, each in its own dtype (keep:
 * bytes unchanged) or converted to dt. */
static int convert_tensors(const rdt_param_info *table, int n, const rdt_st *st, rdt_dtype dt, const char *path) {
  rdt_st_writer *w = rdt_st_writer_new();
  void **owned = rdt_calloc(n, sizeof *owned);
  rdt_st_writer_meta(w, "format", "pt");
  for (int i = 0; i < n; i++) {
    const rdt_tensor *t = rdt_st_find(st, table[i].name);
    const void *data = t->data;
    rdt_dtype out = dt == RDT_DTYPE_COUNT ? t->dtype : dt;
    if (out != t->dtype) {
      float *f = rdt_malloc(table[i].numel * sizeof(float));
      rdt_st_to_f32(t, f);
      owned[i] = rdt_malloc(table[i].numel * rdt_dtype_size(out));
      rdt_convert(owned[i], out, f, RDT_F32, table[i].numel);
      free(f);
      data = owned[i];
    }
    rdt_st_writer_add(w, table[i].name, out, t->ndim, t->shape, data);
  }
  int rc = rdt_st_writer_save(w, path);
  rdt_st_writer_free(w);
  for (int i = 0; i < n; i++) free(owned[i]);
  free(owned);
  return rc;
}

int rdt_cmd_convert(int argc, char **argv) {
  const char *config = NULL, *dtype = NULL;
  rdt_flag flags[] = {
    {"config", RDT_FLAG_STR, &config, NULL, "model config (default: the config.json beside IN)"},
    {"dtype", RDT_FLAG_STR, &dtype, "keep", "stored dtype: keep (bit-identical), fp32 or bf16"},
  };
  rdt_overrides ov;
  rdt_strlist pos;
  rdt_cmd_flags("convert IN OUT_DIR", "Convert RDT weights (pytorch_model.bin, .safetensors, shard index or folder) "
                "to OUT_DIR/model.safetensors + config.json, checking every name and shape.",
                flags, 2, argc, argv, &ov, &pos);
  if (pos.n != 2) rdt_die("usage: rdt convert IN OUT_DIR [--config C] [--dtype keep|fp32|bf16]");
  const char *in = pos.v[0], *out_dir = pos.v[1];
  rdt_dtype dt = parse_dtype(dtype, 1);
  rdt_model_config cfg;
  if (rdt_cmd_model_config(config, &ov, in, &cfg) != 0) rdt_die_last();
  rdt_st *st = rdt_st_open(in);
  if (!st) rdt_die_last();
  rdt_param_info *table;
  int n = rdt_param_table(&cfg, &table);
  char *weights = rdt_path_join(out_dir, "model.safetensors"), *cfg_path = rdt_path_join(out_dir, "config.json");
  if (rdt_param_check(table, n, st) != 0 || rdt_mkdirs(out_dir) != 0 ||
      convert_tensors(table, n, st, dt, weights) != 0 || rdt_model_config_write(&cfg, cfg_path) != 0)
    rdt_die_last();
  rdt_info("wrote %s (%d tensors, %zu parameters) and %s", weights, n, rdt_param_total(table, n), cfg_path);
  free(weights), free(cfg_path), free(table);
  rdt_st_close(st);
  rdt_strlist_free(&pos);
  rdt_overrides_free(&ov);
  return 0;
}
