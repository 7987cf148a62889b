/* model/rdt_cmd.h: pieces shared by the model's commands (init, convert,
 * predict, bench policy): flag parsing, config resolution, backends. */
#ifndef RDT_MODEL_RDT_CMD_H
#define RDT_MODEL_RDT_CMD_H

#include "core/flags.h"
#include "kernels/kernels.h"
#include "model/rdt.h"

/* Parse flags; exits 0 after --help and 1 (with the message) on an error. */
void rdt_cmd_flags(const char *cmd, const char *summary, const rdt_flag *flags, int nflags, int argc,
                   char **argv, rdt_overrides *ov, rdt_strlist *pos);

/* The model config for a command: --config (YAML with dotted overrides, or a
 * config.json) when given, else the config.json beside the weights path.
 * 0 or -1 + rdt_error(). */
int rdt_cmd_model_config(const char *config, const rdt_overrides *ov, const char *weights, rdt_model_config *out);

/* Open "cpu" or "cuda[:N]" with threads; precision "bf16" or "no" selects the
 * CUDA activation dtype (CPU is always fp32).  NULL + rdt_error(). */
k_backend *rdt_cmd_backend(const char *device, int threads, const char *precision);

#endif
