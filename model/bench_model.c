/* model/bench_model.c: placeholder until its issue lands; the owner replaces this file. */
#include "core/error.h"

int rdt_bench_policy(int argc, char **argv) {
  (void)argc;
  rdt_die("'rdt %s' is not implemented yet", argv[0]);
}
