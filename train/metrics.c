/* train/metrics.c: metrics.jsonl and a TensorBoard event file (see metrics.h). */
#include "train/metrics.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>
#include "core/error.h"
#include "core/fsutil.h"
#include "core/json.h"

struct rdt_metrics {
  FILE *jsonl;
  FILE *events;
  char *jsonl_path, *event_path;
};

/* ---------------------------------------------------------------- CRC32C */
static uint32_t crc_table[256];

/* The reflected Castagnoli table (polynomial 0x82F63B78), built once. */
static void crc_table_init(void) {
  if (crc_table[1]) return;
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    crc_table[i] = c;
  }
}

uint32_t rdt_crc32c(const void *data, size_t n) {
  crc_table_init();
  const uint8_t *p = data;
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; i++) c = crc_table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

/* TFRecord's masked CRC: rotate right by 15 and add a constant. */
uint32_t rdt_crc32c_masked(const void *data, size_t n) {
  uint32_t c = rdt_crc32c(data, n);
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

/* ---------------------------------------------------------------- protobuf */
typedef struct {
  uint8_t *p;
  size_t n, cap;
} pb_buf;

static void pb_bytes(pb_buf *b, const void *d, size_t n) {
  if (b->n + n > b->cap) {
    b->cap = (b->n + n) * 2 + 64;
    b->p = rdt_realloc(b->p, b->cap);
  }
  memcpy(b->p + b->n, d, n);
  b->n += n;
}

static void pb_varint(pb_buf *b, uint64_t v) {
  uint8_t t[10];
  int k = 0;
  do {
    t[k] = (uint8_t)(v & 0x7F);
    v >>= 7;
    if (v) t[k] |= 0x80;
    k++;
  } while (v);
  pb_bytes(b, t, (size_t)k);
}

/* Little-endian fixed-width field payloads. */
static void pb_fixed(pb_buf *b, uint64_t v, int bytes) {
  uint8_t t[8];
  for (int i = 0; i < bytes; i++) t[i] = (uint8_t)(v >> (8 * i));
  pb_bytes(b, t, (size_t)bytes);
}

/* A length-delimited field (wire type 2). */
static void pb_len_field(pb_buf *b, int field, const void *d, size_t n) {
  pb_varint(b, (uint64_t)field << 3 | 2);
  pb_varint(b, n);
  pb_bytes(b, d, n);
}

/* Event{wall_time = 1 (double), step = 2 (int64), file_version = 3 or
 * summary = 5}; Summary{value = 1}; Value{tag = 1, simple_value = 2 (float)}. */
static void event_encode(pb_buf *ev, double wall, int64_t step, const char *version,
                         const rdt_scalar *v, int n) {
  uint64_t wall_bits;
  memcpy(&wall_bits, &wall, 8);
  pb_varint(ev, 1 << 3 | 1);
  pb_fixed(ev, wall_bits, 8);
  pb_varint(ev, 2 << 3 | 0);
  pb_varint(ev, (uint64_t)step);
  if (version) {
    pb_len_field(ev, 3, version, strlen(version));
    return;
  }
  pb_buf summary = {0};
  for (int i = 0; i < n; i++) {
    pb_buf value = {0};
    pb_len_field(&value, 1, v[i].name, strlen(v[i].name));
    float f = (float)v[i].value;
    uint32_t bits;
    memcpy(&bits, &f, 4);
    pb_varint(&value, 2 << 3 | 5);
    pb_fixed(&value, bits, 4);
    pb_len_field(&summary, 1, value.p, value.n);
    free(value.p);
  }
  pb_len_field(ev, 5, summary.p, summary.n);
  free(summary.p);
}

/* One TFRecord: length, masked CRC of the length, data, masked CRC of data. */
static int record_write(FILE *f, const void *data, size_t n) {
  uint8_t len[8];
  for (int i = 0; i < 8; i++) len[i] = (uint8_t)((uint64_t)n >> (8 * i));
  uint32_t c1 = rdt_crc32c_masked(len, 8), c2 = rdt_crc32c_masked(data, n);
  uint8_t t1[4], t2[4];
  for (int i = 0; i < 4; i++) t1[i] = (uint8_t)(c1 >> (8 * i)), t2[i] = (uint8_t)(c2 >> (8 * i));
  if (fwrite(len, 1, 8, f) != 8 || fwrite(t1, 1, 4, f) != 4 || fwrite(data, 1, n, f) != n ||
      fwrite(t2, 1, 4, f) != 4 || fflush(f) != 0)
    return -1;
  return 0;
}

static double wall_seconds(void) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return (double)tv.tv_sec + tv.tv_usec * 1e-6;
}

/* ---------------------------------------------------------------- files */
/* Keep the rows of metrics.jsonl with step <= keep (a resumed run). */
static int jsonl_truncate(const char *path, int64_t keep) {
  if (!rdt_is_file(path)) return 0;
  size_t len;
  char *text = rdt_read_file(path, &len);
  if (!text) return -1;
  char *kept = rdt_malloc(len + 1);
  size_t nk = 0;
  for (char *line = text; *line;) {
    char *end = strchr(line, '\n');
    size_t n = end ? (size_t)(end - line) : strlen(line);
    rdt_json *j = rdt_json_parse(line, n);
    int64_t step;
    if (j && rdt_json_int64(rdt_json_get(j, "step"), &step) == 0 && step <= keep) {
      memcpy(kept + nk, line, n);
      nk += n;
      kept[nk++] = '\n';
    }
    rdt_json_free(j);
    line += n + (end ? 1 : 0);
  }
  rdt_error_clear();
  int rc = rdt_write_file_atomic(path, kept, nk);
  free(kept);
  free(text);
  return rc;
}

/* Open the event file and write its version record. */
static int events_open(rdt_metrics *m, const char *output_dir) {
  char *dir = rdt_path_join(output_dir, "logs/roboticDiffusionTransformer");
  if (rdt_mkdirs(dir) != 0) {
    free(dir);
    return -1;
  }
  char host[128] = "localhost", name[320];
  gethostname(host, sizeof host - 1);
  double now = wall_seconds();
  snprintf(name, sizeof name, "events.out.tfevents.%010lld.%s.%d", (long long)now, host, (int)getpid());
  m->event_path = rdt_path_join(dir, name);
  free(dir);
  m->events = fopen(m->event_path, "wb");
  if (!m->events) return rdt_fail("%s: cannot create: %s", m->event_path, strerror(errno));
  pb_buf ev = {0};
  event_encode(&ev, now, 0, "brain.Event:2", NULL, 0);
  int rc = record_write(m->events, ev.p, ev.n);
  free(ev.p);
  return rc ? rdt_fail("%s: write failed", m->event_path) : 0;
}

rdt_metrics *rdt_metrics_open(const char *output_dir, int tensorboard, int64_t resume_step) {
  rdt_metrics *m = rdt_calloc(1, sizeof *m);
  m->jsonl_path = rdt_path_join(output_dir, "metrics.jsonl");
  int rc = resume_step >= 0 ? jsonl_truncate(m->jsonl_path, resume_step) : 0;
  if (rc == 0) {
    m->jsonl = fopen(m->jsonl_path, resume_step >= 0 ? "a" : "w");
    if (!m->jsonl) rc = rdt_fail("%s: cannot open: %s", m->jsonl_path, strerror(errno));
  }
  if (rc == 0 && tensorboard) rc = events_open(m, output_dir);
  if (rc != 0) {
    rdt_metrics_close(m);
    return NULL;
  }
  return m;
}

int rdt_metrics_log(rdt_metrics *m, int64_t step, const rdt_scalar *v, int n) {
  rdt_jw w;
  jw_init(&w, 0);
  jw_obj(&w);
  jw_key(&w, "step");
  jw_int(&w, step);
  for (int i = 0; i < n; i++) {
    jw_key(&w, v[i].name);
    jw_num(&w, v[i].value);
  }
  jw_obj_end(&w);
  char *line = jw_finish(&w);
  int bad = fprintf(m->jsonl, "%s\n", line) < 0 || fflush(m->jsonl) != 0;
  free(line);
  if (bad) return rdt_fail("%s: write failed", m->jsonl_path);
  if (!m->events) return 0;
  pb_buf ev = {0};
  event_encode(&ev, wall_seconds(), step, NULL, v, n);
  int rc = record_write(m->events, ev.p, ev.n);
  free(ev.p);
  return rc ? rdt_fail("%s: write failed", m->event_path) : 0;
}

void rdt_metrics_close(rdt_metrics *m) {
  if (!m) return;
  if (m->jsonl) fclose(m->jsonl);
  if (m->events) fclose(m->events);
  free(m->jsonl_path);
  free(m->event_path);
  free(m);
}

const char *rdt_metrics_event_path(const rdt_metrics *m) { return m->event_path; }
