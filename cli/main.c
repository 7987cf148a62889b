/* cli/main.c: the rdt program -- the subcommand table and nothing else. */
#include <stdio.h>
#include <string.h>
#include "rdt_build.h"
#include "cli/commands.h"
#include "core/error.h"
#include "core/flags.h"

typedef struct {
  const char *name;
  int (*run)(int argc, char **argv);
  const char *summary;
} command;

#if !RDT_HAVE_MUJOCO
/* Stand-in for a subcommand whose optional dependency this build lacks. */
static int missing_feature(int argc, char **argv) {
  (void)argc;
  rdt_die("'rdt %s' is not in this build: it needs MuJoCo and OSMesa "
          "(Debian: libmujoco-dev libosmesa6-dev; see README) and a rebuild", argv[0]);
}
#endif

static int cmd_bench(int argc, char **argv);

#if RDT_HAVE_MUJOCO
#define SIM_CMD rdt_cmd_sim
#define EVAL_CMD rdt_cmd_eval
#define BENCH_SIM rdt_bench_sim
#define BENCH_EVAL_POLICY rdt_bench_eval_policy
#else
#define SIM_CMD missing_feature
#define EVAL_CMD missing_feature
#define BENCH_SIM missing_feature
#define BENCH_EVAL_POLICY missing_feature
#endif

static const command commands[] = {
  {"train", rdt_cmd_train, "train RDT on LIBERO demonstrations (CPU or CUDA, data-parallel)"},
  {"eval", EVAL_CMD,
   "evaluate a checkpoint on LIBERO-90 in MuJoCo, with videos and a results table"},
  {"sim", SIM_CMD,
   "LIBERO-90 simulator tools: list, info, render, rollout"},
  {"bench", cmd_bench, "measure speed; prints JSON (targets: kernels, policy, eval-policy, train, sim, encoders)"},
  {"stats", rdt_cmd_stats, "compute dataset statistics (dataset_stat.json form)"},
  {"convert", rdt_cmd_convert, "convert pytorch_model.bin or safetensors to model.safetensors + config.json"},
  {"encode-lang", rdt_cmd_encode_lang, "encode instructions with T5 and store them as safetensors"},
  {"init", rdt_cmd_init, "write a freshly initialised model for a config"},
  {"inspect", rdt_cmd_inspect, "list the tensors of a safetensors file, shard index or checkpoint"},
  {"predict", rdt_cmd_predict, "run the model on inputs from a safetensors file (parity checks)"},
};
static const int ncommands = (int)(sizeof commands / sizeof commands[0]);

static const command bench_targets[] = {
  {"kernels", rdt_bench_kernels, "GEMM, attention and norm throughput of a backend"},
  {"policy", rdt_bench_policy, "latency of one action chunk (5 denoising steps), model only"},
  {"eval-policy", BENCH_EVAL_POLICY,
   "one chunk as rdt eval asks for it (images, encoders, sampler, actions), batch 1 and W"},
  {"train", rdt_bench_train, "training step time and samples/s on a synthetic batch"},
  {"sim", BENCH_SIM, "simulator control steps/s"},
  {"encoders", rdt_bench_encoders, "SigLIP images/s and T5 tokens/s"},
};
static const int nbench = (int)(sizeof bench_targets / sizeof bench_targets[0]);

static void usage(FILE *f) {
  fprintf(f, "rdt %s: Robotics Diffusion Transformer training and LIBERO-90 evaluation\n\n", RDT_VERSION);
  fprintf(f, "usage: rdt COMMAND [flags]      (rdt COMMAND --help for its flags)\n\ncommands:\n");
  for (int i = 0; i < ncommands; i++) fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
  fprintf(f, "\nbuild: cuda=%d nccl=%d mujoco=%d ffmpeg=%d mpi=%d hdf5=%d\n", RDT_HAVE_CUDA, RDT_HAVE_NCCL,
          RDT_HAVE_MUJOCO, RDT_HAVE_FFMPEG, RDT_HAVE_MPI, RDT_HAVE_HDF5);
}

/* Find a name in a table, or die suggesting the closest one. */
static const command *lookup(const command *table, int n, const char *name, const char *what) {
  int best = -1, best_d = 1 << 30;
  for (int i = 0; i < n; i++) {
    if (strcmp(table[i].name, name) == 0) return &table[i];
    int d = rdt_edit_distance(name, table[i].name);
    if (d < best_d) best_d = d, best = i;
  }
  if (best >= 0 && best_d <= 3) rdt_die("unknown %s '%s' (did you mean '%s'?)", what, name, table[best].name);
  rdt_die("unknown %s '%s' (see rdt --help)", what, name);
}

static int cmd_bench(int argc, char **argv) {
  if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
    FILE *f = argc < 2 ? stderr : stdout;
    fprintf(f, "usage: rdt bench TARGET [flags]   (rdt bench TARGET --help)\n\ntargets:\n");
    for (int i = 0; i < nbench; i++) fprintf(f, "  %-10s %s\n", bench_targets[i].name, bench_targets[i].summary);
    return argc < 2 ? 2 : 0;
  }
  const command *c = lookup(bench_targets, nbench, argv[1], "bench target");
  return c->run(argc - 1, argv + 1);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
    usage(stdout);
    return 0;
  }
  if (strcmp(argv[1], "--version") == 0) {
    printf("rdt %s\n", RDT_VERSION);
    return 0;
  }
  const command *c = lookup(commands, ncommands, argv[1], "command");
  return c->run(argc - 1, argv + 1);
}
