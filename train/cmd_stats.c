/* train/cmd_stats.c: `rdt stats`, per-dataset statistics in upstream's
 * dataset_stat.json form (upstream data/compute_dataset_stat_hdf5.py). */
#include <stdlib.h>
#include <string.h>
#include "cli/commands.h"
#include "core/config.h"
#include "core/error.h"
#include "core/flags.h"
#include "core/json.h"
#include "core/log.h"
#include "train/data_libero.h"
#include "train/stats.h"

/* Is NAME already an entry of the statistics file at path? */
static int has_entry(const char *path, const char *name) {
  rdt_json *j = rdt_json_load(path);
  int found = j && rdt_json_get(j, name) != NULL;
  rdt_json_free(j);
  rdt_error_clear();
  return found;
}

int rdt_cmd_stats(int argc, char **argv) {
  rdt_strlist data_dir = {0};
  const char *dataset = NULL, *output = NULL, *save_path = NULL, *config = NULL;
  int skip_exist = 0;
  const rdt_flag flags[] = {
      {"data_dir", RDT_FLAG_LIST, &data_dir, NULL,
       "LIBERO *_demo.hdf5 folder or file, or a dataset-list JSON (repeatable)"},
      {"dataset", RDT_FLAG_STR, &dataset, "libero_90", "dataset name (the entry's key) for folders and files"},
      {"output", RDT_FLAG_STR, &output, "dataset_stat.json", "statistics file (entries are added or replaced)"},
      {"save_path", RDT_FLAG_STR, &save_path, NULL, "same as --output (upstream name)"},
      {"config", RDT_FLAG_STR, &config, NULL, "config whose dataset.unified_format applies (default libero_delta)"},
      {"skip_exist", RDT_FLAG_BOOL, &skip_exist, "false", "skip datasets that already have an entry"},
  };
  int nflags = (int)(sizeof flags / sizeof flags[0]);
  int rc = rdt_flags_parse(argv[0], "per-dataset state/action statistics (upstream dataset_stat.json form)", flags,
                           nflags, argc, argv, NULL, NULL);
  if (rc == 1) return 0;
  if (rc < 0) rdt_die_last();
  if (save_path) output = save_path;
  if (data_dir.n == 0) rdt_die("--data_dir is required");
  rdt_libero_opts lo;
  rdt_libero_opts_init(&lo, 32);
  if (config) {
    rdt_config *c = rdt_config_load(config);
    lo.format = c ? rdt_uni_format_from_config(c) : NULL;
    rdt_config_free(c);
    if (!lo.format) rdt_die_last();
  }
  rdt_data_source *src;
  int nsrc;
  if (rdt_data_sources_parse((const char *const *)data_dir.v, data_dir.n, dataset, &src, &nsrc) != 0) rdt_die_last();
  rdt_libero_data *d = rdt_libero_open(src, nsrc, &lo);
  if (!d) rdt_die_last();
  for (int i = 0; i < rdt_libero_num_datasets(d); i++) {
    const char *name = rdt_libero_dataset_name(d, i);
    if (skip_exist && has_entry(output, name)) {
      rdt_info("Skipping existing %s dataset statistics", name);
      continue;
    }
    rdt_dataset_stats s;
    if (rdt_stats_compute(d, i, &s) != 0 || rdt_stats_write(output, name, &s) != 0) rdt_die_last();
    rdt_info("%s: %d episodes, %lld steps, action_std_global %.6g -> %s", name, s.num_episodes,
             (long long)s.num_steps, s.action_std_global, output);
  }
  rdt_libero_close(d);
  rdt_data_sources_free(src, nsrc);
  rdt_strlist_free(&data_dir);
  return 0;
}
