/* train/stats.h: per-dataset statistics in upstream's configs/dataset_stat.json form.
 *
 * One entry per dataset name:
 *   {"dataset_name": NAME,
 *    "state_mean", "state_std", "state_min", "state_max": 128 floats each,
 *        over every step of every episode in the unified layout; state_std is
 *        upstream compute_dataset_stat_hdf5.py's std over the entries with
 *        |x| > 1e-8;
 *    "action_mean", "action_std", "action_min", "action_max": the same for
 *        each step's own action (chunk element 0), action_std the population
 *        std;
 *    "action_std_global": sqrt of the mean over the action slots (those the
 *        format fills) of the per-slot population variance: the scale of the
 *        validation sample MSE (sample_mse / action_std_global^2 is the
 *        normalised error the trainer logs as overall_avg_sample_nmse);
 *    "num_steps", "num_episodes"}.
 * Only state_mean is used by training (the dummy state of condition dropout),
 * as upstream.
 */
#ifndef RDT_TRAIN_STATS_H
#define RDT_TRAIN_STATS_H

#include "train/data_libero.h"

typedef struct {
  rdt_stat_result state, action;
  double action_std_global;
  int64_t num_steps;
  int num_episodes;
} rdt_dataset_stats;

/* Accumulate dataset ds of d.  0 or -1. */
int rdt_stats_compute(const rdt_libero_data *d, int ds, rdt_dataset_stats *out);
/* Add or replace NAME's entry in the JSON file at path (created when absent),
 * written atomically.  0 or -1. */
int rdt_stats_write(const char *path, const char *name, const rdt_dataset_stats *s);
/* NAME's state_mean from a statistics file: 1 found, 0 no such entry, -1 on
 * a read or format error. */
int rdt_stats_state_mean(const char *path, const char *name, float mean[RDT_UNI_DIM]);
/* NAME's action_std_global: 1 found, 0 absent, -1 error. */
int rdt_stats_action_std_global(const char *path, const char *name, double *out);

#endif
