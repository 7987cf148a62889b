/* model/cmd_model.c: placeholder until its issue lands; the owner replaces this file. */
#include "core/error.h"

int rdt_cmd_convert(int argc, char **argv) {
  (void)argc;
  rdt_die("'rdt %s' is not implemented yet", argv[0]);
}

int rdt_cmd_init(int argc, char **argv) {
  (void)argc;
  rdt_die("'rdt %s' is not implemented yet", argv[0]);
}
