/* model/rdt_cmd.c: pieces shared by the model's commands. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/config.h"
#include "core/error.h"
#include "model/rdt_cmd.h"

void rdt_cmd_flags(const char *cmd, const char *summary, const rdt_flag *flags, int nflags, int argc,
                   char **argv, rdt_overrides *ov, rdt_strlist *pos) {
  int rc = rdt_flags_parse(cmd, summary, flags, nflags, argc, argv, ov, pos);
  if (rc == 1) exit(0);
  if (rc != 0) rdt_die_last();
}

/* Does path end with suffix? */
static int ends_with(const char *path, const char *suffix) {
  size_t n = strlen(path), k = strlen(suffix);
  return n >= k && strcmp(path + n - k, suffix) == 0;
}

int rdt_cmd_model_config(const char *config, const rdt_overrides *ov, const char *weights, rdt_model_config *out) {
  int nov = ov ? ov->n : 0;
  if (!config) {
    RDT_CHECK(nov == 0, "--%s: config overrides need --config", ov->keys[0]);
    int rc = weights ? rdt_model_config_beside(weights, out) : 0;
    if (rc < 0) return -1;
    RDT_CHECK(rc == 1, "no config: pass --config (YAML or config.json); none was found beside %s",
              weights ? weights : "the weights");
    return 0;
  }
  if (ends_with(config, ".json")) {
    RDT_CHECK(nov == 0, "--%s: overrides apply to YAML configs, not %s", ov->keys[0], config);
    return rdt_model_config_load(config, out);
  }
  rdt_config *y = rdt_config_load(config);
  if (!y) return -1;
  for (int i = 0; i < nov; i++)
    if (rdt_config_set(y, ov->keys[i], ov->values[i]) != 0) {
      rdt_config_free(y);
      return rdt_fail_ctx("--%s", ov->keys[i]);
    }
  int rc = rdt_model_config_from_yaml(y, out);
  rdt_config_free(y);
  return rc;
}

k_backend *rdt_cmd_backend(const char *device, int threads, const char *precision) {
  if (strcmp(precision, "bf16") != 0 && strcmp(precision, "no") != 0) {
    rdt_fail("--mixed_precision must be bf16 or no, not '%s'", precision);
    return NULL;
  }
  k_backend *b = k_open(device, threads);
  /* Explicit either way: the CUDA backend opens with BF16 activations. */
  rdt_dtype act = strcmp(precision, "bf16") == 0 ? RDT_BF16 : RDT_F32;
  if (b && k_kind_of(b) == K_CUDA && k_set_act_dtype(b, act) != 0) {
    k_close(b);
    return NULL;
  }
  return b;
}
