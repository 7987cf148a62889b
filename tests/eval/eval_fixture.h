/* tests/eval/eval_fixture.h: shared pieces of the evaluation tests -- a tiny
 * random checkpoint whose every layer is active (rdt init zeroes the final
 * projection, so its chunks would all be zero and every rollout the same),
 * running the rdt program, reading results files. */
#ifndef RDT_TESTS_EVAL_FIXTURE_H
#define RDT_TESTS_EVAL_FIXTURE_H

#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>
#include "core/config.h"
#include "core/error.h"
#include "core/fsutil.h"
#include "core/json.h"
#include "core/rng.h"
#include "model/rdt.h"
#include "test.h"

/* configs/tiny.yaml in the source tree. */
static inline const char *fx_tiny_yaml(void) {
  static char path[4096];
  const char *src = getenv("RDT_SOURCE_DIR");
  snprintf(path, sizeof path, "%s/configs/tiny.yaml", src ? src : ".");
  return path;
}

/* Point the simulator at the LIBERO data (skips the test when absent). */
static inline void fx_libero_env(void) {
  setenv("RDT_LIBERO_ROOT", test_libero_root(), 1);
  setenv("RDT_ROBOSUITE_ASSETS", test_robosuite_assets(), 1);
}


/* A checkpoint folder as training writes it: DIR/ema/model.safetensors and
 * DIR/config.json, tiny config, upstream initialisation plus N(0, noise^2) on
 * every parameter (seeded).  Exits on failure. */
static inline void fx_checkpoint(const char *dir, uint64_t seed, double noise) {
  rdt_model_config cfg;
  k_backend *b = k_open("cpu", 1);
  rdt_model *m = NULL;
  char *ema = rdt_path_join(dir, "ema"), *w = rdt_path_join(ema, "model.safetensors");
  char *cj = rdt_path_join(dir, "config.json");
  int ok = b && rdt_model_config_load(fx_tiny_yaml(), &cfg) == 0 && (m = rdt_model_new(b, &cfg)) != NULL;
  if (ok) {
    rdt_model_init(m, seed);
    float *p = rdt_model_params(m);
    rdt_rng r;
    rdt_rng_seed(&r, seed, 99);
    for (size_t i = 0; i < rdt_model_numel(m); i++) p[i] += (float)(noise * rdt_rng_normal(&r));
    rdt_model_params_changed(m);
    ok = rdt_mkdirs(ema) == 0 && rdt_model_save(m, NULL, w, RDT_F32) == 0 && rdt_model_config_write(&cfg, cj) == 0;
  }
  if (!ok) {
    fprintf(stderr, "fx_checkpoint %s: %s\n", dir, rdt_error());
    exit(2);
  }
  rdt_model_free(m);
  k_close(b);
  free(ema), free(w), free(cj);
}

/* Parse a JSON file (exits on failure). */
static inline rdt_json *fx_json(const char *path) {
  rdt_json *j = rdt_json_load(path);
  if (!j) {
    fprintf(stderr, "%s\n", rdt_error());
    exit(2);
  }
  return j;
}

/* Integer member (or -1). */
static inline int fx_int(const rdt_json *o, const char *key) {
  const rdt_json *v = rdt_json_get(o, key);
  return v && v->type == RDT_JSON_NUMBER ? (int)v->number : -1;
}

/* String member (or ""). */
static inline const char *fx_str(const rdt_json *o, const char *key) {
  const rdt_json *v = rdt_json_get(o, key);
  return v && v->type == RDT_JSON_STRING ? v->string : "";
}

/* Bool member (or -1). */
static inline int fx_bool(const rdt_json *o, const char *key) {
  const rdt_json *v = rdt_json_get(o, key);
  return v && v->type == RDT_JSON_BOOL ? v->boolean : -1;
}

/* Do two episode records agree on everything but wall time, frames and video? */
static inline int fx_same_episode(const rdt_json *a, const rdt_json *b) {
  static const char *ints[] = {"task", "trial", "steps", "queries"};
  for (int i = 0; i < 4; i++)
    if (fx_int(a, ints[i]) != fx_int(b, ints[i])) return 0;
  return fx_bool(a, "success") == fx_bool(b, "success") && !strcmp(fx_str(a, "end"), fx_str(b, "end")) &&
         !strcmp(fx_str(a, "digest"), fx_str(b, "digest"));
}

#endif
