/* train/metrics.h: the training logs of rank 0.
 *
 *   OUTPUT/metrics.jsonl   one JSON object per logged step: {"step": N, name: value, ...}
 *   OUTPUT/logs/roboticDiffusionTransformer/events.out.tfevents.TIME.HOST.PID
 *                          the same scalars for TensorBoard (upstream's
 *                          accelerate tracker folder and project name)
 *
 * The event file is TFRecord framing (u64 length, masked CRC32C of the length,
 * payload, masked CRC32C of the payload) around Event protobufs: a first
 * event with file_version "brain.Event:2", then one event per step holding a
 * Summary with one simple_value per scalar.  On resume, metrics.jsonl keeps
 * only the rows up to the resumed step, and a new event file is started
 * (TensorBoard shows the later file's values for repeated steps).
 */
#ifndef RDT_TRAIN_METRICS_H
#define RDT_TRAIN_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  const char *name;
  double value;
} rdt_scalar;

typedef struct rdt_metrics rdt_metrics;

/* Open the logs in output_dir; tensorboard 0 writes only metrics.jsonl.
 * resume_step >= 0 drops later metrics.jsonl rows (a resumed run); -1 starts
 * a fresh file.  NULL + rdt_error(). */
rdt_metrics *rdt_metrics_open(const char *output_dir, int tensorboard, int64_t resume_step);
/* Append one row (and one event) of n scalars for a step; flushed at once.
 * 0 or -1. */
int rdt_metrics_log(rdt_metrics *m, int64_t step, const rdt_scalar *v, int n);
void rdt_metrics_close(rdt_metrics *m);
/* The event file's path (NULL without TensorBoard). */
const char *rdt_metrics_event_path(const rdt_metrics *m);

/* CRC32C (Castagnoli), and TFRecord's mask of it.  Exposed for tests. */
uint32_t rdt_crc32c(const void *data, size_t n);
uint32_t rdt_crc32c_masked(const void *data, size_t n);

#endif
