/* eval/results.h: evaluation results -- episode records, summaries, files.
 *
 * results.json (written atomically after every episode):
 *   {"benchmark", "checkpoint",
 *    "settings": {...}      everything that decides the outcome (weights,
 *                           config, encoders, protocol, seed, image size);
 *                           --resume refuses a file whose settings differ,
 *    "run": {...}           how this invocation ran (device, workers, model
 *                           calls, wall time): may differ between resumes,
 *    "overall", "scene_classes": {kitchen, living_room, study},
 *    "tasks": [{task, name, scene, trials, successes, rate, mean_steps,
 *               mean_steps_success}],
 *    "episodes": [{task, trial, success, steps, queries, end, wall_s, digest,
 *                  frames, video, detail}]}         sorted by (task, trial)
 * results.csv: one row per task, then one per scene class and "overall".
 * Merging (rdt eval --merge, scripts/eval_batch.sh): many results files ->
 * one checkpoint x task table of success rates, as CSV and Markdown.
 */
#ifndef RDT_EVAL_RESULTS_H
#define RDT_EVAL_RESULTS_H

#include <stdio.h>
#include "core/json.h"
#include "eval/runner.h"

typedef struct {
  eval_episode *ep;     /* sorted by (task, trial) */
  char **video;         /* per episode: the video path or NULL */
  int n, cap;
  char *benchmark, *checkpoint;
  char *settings;       /* JSON object text */
  char *run;            /* JSON object text */
} eval_results;

void eval_results_init(eval_results *r);
void eval_results_free(eval_results *r);
/* Insert the record of (task, trial), replacing an earlier one.  video may be NULL. */
void eval_results_put(eval_results *r, const eval_episode *ep, const char *video);
/* The record of (task, trial), or NULL. */
const eval_episode *eval_results_find(const eval_results *r, int task, int trial);
/* Set the descriptive members (copied). */
void eval_results_describe(eval_results *r, const char *benchmark, const char *checkpoint, const char *settings,
                           const char *run);

/* Read a results.json written by eval_results_write: 0, 1 when the file does
 * not exist, -1 + rdt_error() when it is unreadable or malformed. */
int eval_results_load(eval_results *r, const char *path);
/* Do two settings objects (JSON text) say the same?  1 yes, 0 no (the first
 * differing member named in *what, malloc'd), -1 malformed. */
int eval_settings_equal(const char *a, const char *b, char **what);

/* The whole file as JSON text (malloc'd). */
char *eval_results_json(const eval_results *r);
/* Write results.json and results.csv atomically.  0 or -1. */
int eval_results_write(const eval_results *r, const char *json_path, const char *csv_path);
/* The table printed at the end: per task, per scene class, overall. */
void eval_results_print(const eval_results *r, FILE *f);

/* Scene class of a libero_90 task name: "kitchen", "living_room", "study" (or "other"). */
const char *eval_scene_class(const char *task_name);

/* Merge results files into PREFIX.csv and PREFIX.md: one row per task, one
 * column per checkpoint (files of the same checkpoint are pooled), cells
 * "successes/trials" rates; the Markdown is also printed to f (may be NULL).
 * 0 or -1. */
int eval_merge(const char *const *paths, int n, const char *prefix, FILE *f);

#endif
