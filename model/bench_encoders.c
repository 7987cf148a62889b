/* model/bench_encoders.c: placeholder until the encoders issue lands. */
#include "core/error.h"

int rdt_bench_encoders(int argc, char **argv) {
  (void)argc;
  rdt_die("'rdt bench %s' is not implemented yet", argv[0]);
}
