/* train/data_libero.h: LIBERO demonstration files (HDF5) -> RDT training samples.
 *
 * A LIBERO *_demo.hdf5 file holds data/demo_N groups with actions (T,7) and
 * obs/{agentview_rgb, eye_in_hand_rgb} (T,H,W,3 uint8, bottom row first),
 * obs/joint_states (T,7), obs/gripper_states (T,2), obs/ee_pos (T,3),
 * obs/ee_ori (T,3 axis-angle); data attributes problem_info (JSON) and
 * bddl_file_content.  Files are validated when opened; every error names the
 * file and the HDF5 path.
 *
 * A sample at step t of an episode (rdt_libero_get):
 *   - the state at t in the unified vector + its mask (model/unified.h);
 *   - the chunk: actions t+o .. t+o+chunk-1 (o = opts.action_offset, 0 as the
 *     recipe) mapped by the format, the last action repeated past the end;
 *   - six images: agentview -> exterior slot, eye_in_hand -> right-wrist slot,
 *     at t-1 and t; before the episode start the t-1 image is absent (mask 0,
 *     background); the left-wrist slot is the background, mask 0;
 *   - the instruction (opts.instruction: from the file name as LIBERO's
 *     evaluators do, default; or problem_info's language_instruction);
 *   - per-episode state mean / std / norm as upstream's HDF5 dataset returns.
 * Model inputs are built by rdt_obs_to_model_input, the function evaluation
 * uses too.  With opts.skip_still (upstream default) an episode starts at the
 * step before the first joint move of more than 0.01 rad.
 *
 * Sampling: rdt_libero_draw picks a dataset by weight, an episode by its
 * number of usable steps (upstream length weighting) and a step uniformly;
 * rdt_libero_step_at enumerates all usable steps.  All reads are thread-safe.
 */
#ifndef RDT_DATA_LIBERO_H
#define RDT_DATA_LIBERO_H

#include <stdint.h>
#include "core/rng.h"
#include "model/image.h"
#include "model/unified.h"

typedef enum { RDT_INSTR_FILENAME, RDT_INSTR_PROBLEM_INFO } rdt_instr_source;

typedef struct {
  const rdt_uni_format *format;   /* default rdt_uni_format_default() */
  rdt_image_cfg image;            /* preprocessing; image.augment = --image_aug */
  int chunk;                      /* action chunk size (64) */
  int skip_still;                 /* 1: start at the step before the first motion */
  int action_offset;              /* 0: actions t.. (recipe); 1: actions t+1.. */
  rdt_instr_source instruction;
} rdt_libero_opts;

/* Defaults for an encoder of side image_size. */
void rdt_libero_opts_init(rdt_libero_opts *o, int image_size);

/* ---------------------------------------------------------------- sources */
/* One dataset of a mixture: a name (statistics key, control frequency), a
 * folder of *.hdf5 files or one file, and a sampling weight (0 = its step count). */
typedef struct {
  char *name;
  char *path;
  double weight;
} rdt_data_source;

/* Turn --data_dir values into sources.  Each value is a folder, an .hdf5 file
 * (both named dataset_name), or a dataset-list JSON as upstream's
 * finetune_datasets.json: an array of names, each a folder beside the JSON
 * file, or an object {name: path}; weights come from
 * finetune_sample_weights.json ({name: weight}) in the same folder when it
 * exists.  0 or -1; free with rdt_data_sources_free. */
int rdt_data_sources_parse(const char *const *values, int n, const char *dataset_name,
                           rdt_data_source **out, int *n_out);
void rdt_data_sources_free(rdt_data_source *s, int n);

/* ---------------------------------------------------------------- dataset */
typedef struct rdt_libero_data rdt_libero_data;

typedef struct {
  int dataset;               /* index into the sources */
  const char *file;          /* path of its HDF5 file */
  const char *key;           /* "demo_N" */
  const char *instruction;
  int length;                /* T */
  int start;                 /* first usable step (skip_still), else 0 */
} rdt_episode_info;

/* Open and validate every file of the sources (folders: *.hdf5 sorted by
 * name; episodes by N).  NULL + rdt_error() naming the file and dataset. */
rdt_libero_data *rdt_libero_open(const rdt_data_source *src, int n, const rdt_libero_opts *o);
void rdt_libero_close(rdt_libero_data *d);

const rdt_libero_opts *rdt_libero_options(const rdt_libero_data *d);
int rdt_libero_num_datasets(const rdt_libero_data *d);
const char *rdt_libero_dataset_name(const rdt_libero_data *d, int i);
int rdt_libero_num_episodes(const rdt_libero_data *d);
const rdt_episode_info *rdt_libero_episode(const rdt_libero_data *d, int e);
/* Usable steps: the sum of length - start over all episodes. */
int64_t rdt_libero_num_steps(const rdt_libero_data *d);
/* Full enumeration: step i in [0, num_steps) -> (episode, t). */
void rdt_libero_step_at(const rdt_libero_data *d, int64_t i, int *episode, int *t);
/* Random draw: dataset by weight, episode by usable steps, step uniform. */
void rdt_libero_draw(const rdt_libero_data *d, rdt_rng *r, int *episode, int *t);

/* ---------------------------------------------------------------- samples */
typedef struct {
  int episode, t, dataset;
  const char *dataset_name;
  const char *instruction;
  rdt_model_input in;             /* state, state_mask, images (owned), image_valid */
  float *actions;                 /* chunk x 128 (owned) */
  float action_mask[RDT_UNI_DIM]; /* slots the actions fill */
  float state_mean[RDT_UNI_DIM];  /* this episode's states: mean, std, */
  float state_std[RDT_UNI_DIM];   /* sqrt(mean(x^2)) as upstream state_norm */
  float state_norm[RDT_UNI_DIM];
} rdt_sample;

/* A sample with its buffers sized for d's options. */
rdt_sample *rdt_sample_new(const rdt_libero_data *d);
void rdt_sample_free(rdt_sample *s);
/* Fill s for (episode, t).  aug: the loader thread's rng (used only when
 * opts.image.augment).  0 or -1 with the file and dataset path in the error. */
int rdt_libero_get(const rdt_libero_data *d, int episode, int t, rdt_rng *aug, rdt_sample *s);
/* The raw observation at (episode, t), images pointing into buf, which holds
 * 4 x H x W x 3 bytes (H, W from rdt_libero_image_size).  0 or -1. */
int rdt_libero_raw_obs(const rdt_libero_data *d, int episode, int t, rdt_raw_obs *o, uint8_t *buf);
void rdt_libero_image_size(const rdt_libero_data *d, int episode, int *h, int *w);

/* ---------------------------------------------------------------- statistics */
/* Running per-slot statistics of 128-dim vectors (double precision). */
typedef struct {
  int64_t n;
  double sum[RDT_UNI_DIM], sumsq[RDT_UNI_DIM];
  double nz[RDT_UNI_DIM];                        /* count of |x| > 1e-8 */
  double zsum[RDT_UNI_DIM], zsumsq[RDT_UNI_DIM]; /* the same over those entries */
  double min[RDT_UNI_DIM], max[RDT_UNI_DIM];
} rdt_stat_acc;

typedef struct {
  double mean[RDT_UNI_DIM];
  double std[RDT_UNI_DIM];       /* population std (the fork's action_std) */
  double std_nz[RDT_UNI_DIM];    /* upstream compute_dataset_stat_hdf5.py: std over non-zero entries */
  double min[RDT_UNI_DIM], max[RDT_UNI_DIM];
} rdt_stat_result;

void rdt_stat_acc_init(rdt_stat_acc *a);
void rdt_stat_acc_add(rdt_stat_acc *a, const float v[RDT_UNI_DIM]);
void rdt_stat_acc_merge(rdt_stat_acc *a, const rdt_stat_acc *b);
void rdt_stat_acc_result(const rdt_stat_acc *a, rdt_stat_result *r);
/* Add every step (all t in [0, T)) of every episode of dataset ds: its state
 * and its own action (chunk element 0) in the unified layout.  0 or -1. */
int rdt_libero_stats(const rdt_libero_data *d, int ds, rdt_stat_acc *state, rdt_stat_acc *action);

#endif
