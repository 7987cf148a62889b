/* core/inspect.c: `rdt inspect PATH [--json]`: the tensors of a safetensors file,
 * shard index, checkpoint folder or pytorch_model.bin, sorted by name. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "core/flags.h"
#include "core/json.h"
#include "core/st_internal.h"

/* Natural order: runs of digits compare as numbers ("blocks.2" < "blocks.10"). */
static int natural_compare(const char *a, const char *b) {
  while (*a && *b) {
    if (*a >= '0' && *a <= '9' && *b >= '0' && *b <= '9') {
      const char *x = a, *y = b;
      while (*x == '0') x++;
      while (*y == '0') y++;
      size_t nx = 0, ny = 0;
      while (x[nx] >= '0' && x[nx] <= '9') nx++;
      while (y[ny] >= '0' && y[ny] <= '9') ny++;
      if (nx != ny) return nx < ny ? -1 : 1;
      int c = memcmp(x, y, nx);
      if (c) return c;
      a = x + nx, b = y + ny;
      continue;
    }
    if (*a != *b) return (unsigned char)*a < (unsigned char)*b ? -1 : 1;
    a++, b++;
  }
  return (unsigned char)*a - (unsigned char)*b;
}

static int compare_tensors(const void *a, const void *b) {
  const rdt_tensor *x = *(const rdt_tensor *const *)a, *y = *(const rdt_tensor *const *)b;
  int c = natural_compare(x->name, y->name);
  return c ? c : strcmp(x->name, y->name);
}

static void print_text(const rdt_st *st, const rdt_tensor **sorted, int64_t params) {
  int width = 4;
  for (int i = 0; i < st->count; i++) {
    int w = (int)strlen(sorted[i]->name);
    if (w > width) width = w;
  }
  printf("%s\n", rdt_st_path(st));
  for (int i = 0; i < st->nmeta; i++) printf("metadata %s = %s\n", st->meta_keys[i], st->meta_values[i]);
  printf("%-*s  %-5s  %s\n", width, "name", "dtype", "shape");
  for (int i = 0; i < st->count; i++) {
    char shape[256];
    printf("%-*s  %-5s  %s\n", width, sorted[i]->name, rdt_dtype_name(sorted[i]->dtype),
           rdt_shape_str(sorted[i]->ndim, sorted[i]->shape, shape, sizeof shape));
  }
  printf("%d tensors, %lld parameters (%.2fM)\n", st->count, (long long)params, (double)params / 1e6);
}

static void print_json(const rdt_st *st, const rdt_tensor **sorted, int64_t params) {
  rdt_jw w;
  jw_init(&w, 1);
  jw_obj(&w);
  jw_key(&w, "path");
  jw_str(&w, rdt_st_path(st));
  jw_key(&w, "count");
  jw_int(&w, st->count);
  jw_key(&w, "parameters");
  jw_int(&w, params);
  jw_key(&w, "metadata");
  jw_obj(&w);
  for (int i = 0; i < st->nmeta; i++) jw_key(&w, st->meta_keys[i]), jw_str(&w, st->meta_values[i]);
  jw_obj_end(&w);
  jw_key(&w, "tensors");
  jw_arr(&w);
  for (int i = 0; i < st->count; i++) {
    jw_obj(&w);
    jw_key(&w, "name");
    jw_str(&w, sorted[i]->name);
    jw_key(&w, "dtype");
    jw_str(&w, rdt_dtype_name(sorted[i]->dtype));
    jw_key(&w, "shape");
    jw_arr(&w);
    for (int d = 0; d < sorted[i]->ndim; d++) jw_int(&w, sorted[i]->shape[d]);
    jw_arr_end(&w);
    jw_obj_end(&w);
  }
  jw_arr_end(&w);
  jw_obj_end(&w);
  char *s = jw_finish(&w);
  printf("%s\n", s);
  free(s);
}

int rdt_cmd_inspect(int argc, char **argv) {
  int as_json = 0;
  const rdt_flag flags[] = {
    {"json", RDT_FLAG_BOOL, &as_json, "false", "print JSON instead of a table"},
  };
  rdt_strlist pos;
  int rc = rdt_flags_parse(argv[0], "rdt inspect PATH [--json]: list the tensors (name, dtype, shape) and the parameter\n"
                           "count of PATH: a safetensors file, sharded index, checkpoint folder or pytorch_model.bin",
                           flags, 1, argc, argv, NULL, &pos);
  if (rc == 1) return 0;
  if (rc < 0) rdt_die_last();
  if (pos.n != 1) rdt_die("usage: rdt inspect PATH [--json]");
  rdt_st *st = rdt_st_open(pos.v[0]);
  rdt_strlist_free(&pos);
  if (!st) rdt_die_last();
  const rdt_tensor **sorted = rdt_malloc(sizeof *sorted * (size_t)(st->count + 1));
  int64_t params = 0;
  for (int i = 0; i < st->count; i++) {
    sorted[i] = rdt_st_get(st, i);
    params += rdt_numel(sorted[i]);
  }
  qsort(sorted, (size_t)st->count, sizeof *sorted, compare_tensors);
  if (as_json) print_json(st, sorted, params);
  else print_text(st, sorted, params);
  free(sorted);
  rdt_st_close(st);
  return 0;
}
