/* Trainer parts against closed forms and hand-worked cases: LR schedules
 * (diffusers lr_lambda values), upstream EMA decay and update, AdamW's first
 * step, gradient clipping, CRC32C check values and a hand decode of the
 * TensorBoard event file, metrics.jsonl on resume, checkpoint folder
 * selection (latest / prune / temporary folders), and the loader's order and
 * error path with several threads. */
#include <stdint.h>
#include <sys/stat.h>
#include "core/error.h"
#include "core/fsutil.h"
#include "core/json.h"
#include "kernels/kernels.h"
#include "test.h"
#include "train/checkpoint.h"
#include "train/ema.h"
#include "train/loader.h"
#include "train/lr.h"
#include "train/metrics.h"
#include "train/optim.h"

/* ================================================================ schedules */
static void t_lr(void) {
  rdt_lr_schedule s = {RDT_LR_CONSTANT, 2e-4, 10, 110};
  CHECK(rdt_lr_at(&s, 0) == 2e-4 && rdt_lr_at(&s, 500) == 2e-4);
  s.kind = RDT_LR_CONSTANT_WARMUP;
  CHECK(rdt_lr_factor(&s, 0) == 0.0);
  CHECK_NEAR(rdt_lr_factor(&s, 5), 0.5, 1e-15);
  CHECK(rdt_lr_factor(&s, 10) == 1.0 && rdt_lr_factor(&s, 1000) == 1.0);
  s.kind = RDT_LR_LINEAR;
  CHECK_NEAR(rdt_lr_factor(&s, 3), 0.3, 1e-15);
  CHECK_NEAR(rdt_lr_factor(&s, 60), 0.5, 1e-15);   /* (110 - 60) / 100 */
  CHECK(rdt_lr_factor(&s, 110) == 0.0 && rdt_lr_factor(&s, 200) == 0.0);
  s.kind = RDT_LR_COSINE;
  CHECK_NEAR(rdt_lr_factor(&s, 10), 1.0, 1e-15);
  CHECK_NEAR(rdt_lr_factor(&s, 35), 0.5 * (1 + sqrt(0.5)), 1e-12);   /* progress 1/4: cos(pi/4) */
  CHECK_NEAR(rdt_lr_factor(&s, 60), 0.5, 1e-12);
  CHECK_NEAR(rdt_lr_factor(&s, 110), 0.0, 1e-15);
  rdt_lr_kind k;
  CHECK(rdt_lr_parse("cosine", &k) == 0 && k == RDT_LR_COSINE);
  CHECK(rdt_lr_parse("polynomial", &k) == -1 && strstr(rdt_error(), "constant_with_warmup"));
}

/* ================================================================ EMA */
static void t_ema_decay(void) {
  rdt_ema_cfg c = {0, 1.0, 0.75, 0.0, 0.9999};
  CHECK(rdt_ema_decay(&c, 0) == 0.0 && rdt_ema_decay(&c, 1) == 0.0);
  CHECK_NEAR(rdt_ema_decay(&c, 2), 1 - pow(2.0, -0.75), 1e-15);      /* 0.4054 */
  CHECK_NEAR(rdt_ema_decay(&c, 10), 1 - pow(10.0, -0.75), 1e-15);
  CHECK_NEAR(rdt_ema_decay(&c, 10000), 0.999, 1e-12);   /* 1 - (1 + 9999)^-0.75: 0.999 at 10K steps */
  CHECK(rdt_ema_decay(&c, 100000000) == 0.9999);
  c.min_value = 0.5;
  CHECK(rdt_ema_decay(&c, 2) == 0.5 && rdt_ema_decay(&c, 1) == 0.0);
  c.min_value = 0, c.update_after_step = 5, c.inv_gamma = 2.0;
  CHECK(rdt_ema_decay(&c, 6) == 0.0);
  CHECK_NEAR(rdt_ema_decay(&c, 8), 1 - pow(1.0 + 2 / 2.0, -0.75), 1e-15);
}

static void t_ema_update(void) {
  k_backend *b = k_open("cpu", 1);
  rdt_ema_cfg c = {0, 1.0, 0.75, 0.0, 0.9999};
  float p[3] = {1, 2, 3};
  rdt_ema e;
  rdt_ema_init(&e, b, &c, p, 3);
  float p1[3] = {4, 5, 6}, p2[3] = {-1, 0.5f, 7}, p3[3] = {10, 20, 30};
  rdt_ema_update(&e, p1);   /* decay 0: a copy */
  CHECK(e.w[0] == 4 && e.w[2] == 6);
  rdt_ema_update(&e, p2);   /* decay 0 again (step 1) */
  CHECK(e.w[0] == -1 && e.w[1] == 0.5f);
  rdt_ema_update(&e, p3);   /* decay 1 - 2^-0.75 */
  double d = 1 - pow(2.0, -0.75);
  CHECK_NEAR(e.w[0], d * -1 + (1 - d) * 10, 1e-5);
  CHECK_NEAR(e.w[2], d * 7 + (1 - d) * 30, 1e-5);
  CHECK(e.updates == 3);
  rdt_ema_free(&e);
  k_close(b);
}

/* ================================================================ optimizer */
static void t_adamw_clip(void) {
  k_backend *b = k_open("cpu", 1);
  /* The first AdamW step moves each weight by lr * sign(g) after decay:
   * m = 0.1 g, v = 0.001 g^2, step lr / 0.1, denom |g| / 10 (eps aside). */
  rdt_adamw_cfg c = {0.9, 0.999, 1e-8, 0.01};
  rdt_adamw o;
  rdt_adamw_init(&o, b, &c, 2);
  float p[2] = {1.0f, -2.0f}, g[2] = {0.5f, -3.0f};
  rdt_ema_cfg ec = {0, 1.0, 0.75, 0.0, 0.9999};
  rdt_ema e;
  rdt_ema_init(&e, b, &ec, p, 2);
  rdt_adamw_ema_step(&o, &e, p, g, 1.0, 0.1, NULL);   /* the trainer's step, no clipping */
  CHECK_NEAR(p[0], 1.0 * (1 - 0.001) - 0.1, 1e-6);
  CHECK_NEAR(p[1], -2.0 * (1 - 0.001) + 0.1, 1e-6);
  CHECK(o.step == 1);
  CHECK(e.w[0] == p[0] && e.w[1] == p[1] && e.updates == 1);   /* decay 0: the EMA copies */
  CHECK(g[0] == 0.5f && g[1] == -3.0f);   /* the gradient is left as it is */
  rdt_ema_free(&e);
  rdt_adamw_free(&o);
  float v[2] = {3, 4};
  double n = rdt_grad_norm(b, v, 2);
  CHECK_NEAR(n, 5.0, 1e-6);
  CHECK(rdt_grad_clip_coef(n, 10.0) == 1.0);
  CHECK(rdt_grad_clip_coef(n, 0.0) == 1.0);   /* max_norm <= 0: off */
  double coef = rdt_grad_clip_coef(n, 1.0);
  CHECK_NEAR(coef * v[0], 3 / (5 + 1e-6), 1e-7);
  CHECK_NEAR(coef * v[1], 4 / (5 + 1e-6), 1e-7);
  k_close(b);
}

/* ================================================================ TensorBoard */
/* Bit-by-bit CRC32C, reflected polynomial 0x82F63B78. */
static uint32_t crc_ref(const uint8_t *p, size_t n) {
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; i++) {
    c ^= p[i];
    for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1)));
  }
  return ~c;
}

static uint32_t mask_ref(uint32_t c) { return ((c >> 15) | (c << 17)) + 0xa282ead8u; }

static void t_crc(void) {
  CHECK(rdt_crc32c("123456789", 9) == 0xE3069283u);   /* the CRC-32C check value */
  uint8_t zeros[32] = {0};
  CHECK(rdt_crc32c(zeros, 32) == 0x8A9136AAu);        /* RFC 3720 B.4 */
  uint8_t buf[300];
  for (int i = 0; i < 300; i++) buf[i] = (uint8_t)(i * 37 + 11);
  CHECK(rdt_crc32c(buf, 300) == crc_ref(buf, 300));
  CHECK(rdt_crc32c_masked(buf, 300) == mask_ref(crc_ref(buf, 300)));
}

/* A protobuf reader just big enough for Event / Summary / Value. */
typedef struct {
  const uint8_t *p, *end;
} pb;

static uint64_t pb_varint(pb *r) {
  uint64_t v = 0;
  for (int s = 0; r->p < r->end; s += 7) {
    uint8_t b = *r->p++;
    v |= (uint64_t)(b & 0x7F) << s;
    if (!(b & 0x80)) break;
  }
  return v;
}

typedef struct {
  double wall;
  int64_t step;
  char version[32];
  char tags[4][32];
  float values[4];
  int nvalues;
} event;

static void decode_value(pb r, event *e) {
  while (r.p < r.end) {
    uint64_t key = pb_varint(&r);
    if (key == (1 << 3 | 2)) {
      uint64_t n = pb_varint(&r);
      snprintf(e->tags[e->nvalues], 32, "%.*s", (int)n, (const char *)r.p);
      r.p += n;
    } else if (key == (2 << 3 | 5)) {
      memcpy(&e->values[e->nvalues], r.p, 4);
      r.p += 4;
    } else {
      r.p = r.end;
    }
  }
  e->nvalues++;
}

static void decode_event(pb r, event *e) {
  memset(e, 0, sizeof *e);
  while (r.p < r.end) {
    uint64_t key = pb_varint(&r);
    if (key == (1 << 3 | 1)) {
      memcpy(&e->wall, r.p, 8);
      r.p += 8;
    } else if (key == (2 << 3 | 0)) {
      e->step = (int64_t)pb_varint(&r);
    } else if (key == (3 << 3 | 2) || key == (5 << 3 | 2)) {
      uint64_t n = pb_varint(&r);
      if (key == (3 << 3 | 2)) {
        snprintf(e->version, sizeof e->version, "%.*s", (int)n, (const char *)r.p);
      } else {
        pb s = {r.p, r.p + n};
        while (s.p < s.end && e->nvalues < 4) {
          uint64_t k = pb_varint(&s), m = pb_varint(&s);
          if (k == (1 << 3 | 2)) decode_value((pb){s.p, s.p + m}, e);
          s.p += m;
        }
      }
      r.p += n;
    } else {
      r.p = r.end;
    }
  }
}

/* Read TFRecords, checking both masked CRCs of each. */
static int read_events(const char *path, event *ev, int max) {
  size_t len;
  uint8_t *f = (uint8_t *)rdt_read_file(path, &len);
  int n = 0;
  for (size_t at = 0; f && at + 12 <= len && n < max; n++) {
    uint64_t L = 0;
    uint32_t c1, c2;
    for (int i = 0; i < 8; i++) L |= (uint64_t)f[at + i] << (8 * i);
    memcpy(&c1, f + at + 8, 4);
    CHECK(c1 == mask_ref(crc_ref(f + at, 8)));
    memcpy(&c2, f + at + 12 + L, 4);
    CHECK(c2 == mask_ref(crc_ref(f + at + 12, L)));
    decode_event((pb){f + at + 12, f + at + 12 + L}, &ev[n]);
    at += 16 + L;
  }
  free(f);
  return n;
}

static void t_tensorboard(void) {
  const char *dir = test_tmpdir("units-tb");
  rdt_metrics *m = rdt_metrics_open(dir, 1, -1);
  CHECK(m != NULL);
  if (!m) return;
  rdt_scalar s1[] = {{"loss", 0.5}, {"lr", 1e-4}};
  rdt_scalar s2[] = {{"loss", 0.25}, {"lr", 2e-4}};
  CHECK(rdt_metrics_log(m, 1, s1, 2) == 0 && rdt_metrics_log(m, 7, s2, 2) == 0);
  char path[4300];
  snprintf(path, sizeof path, "%s", rdt_metrics_event_path(m));
  rdt_metrics_close(m);
  CHECK(strstr(path, "/logs/roboticDiffusionTransformer/events.out.tfevents.") != NULL);
  event ev[4];
  int n = read_events(path, ev, 4);
  CHECK(n == 3);
  CHECK(strcmp(ev[0].version, "brain.Event:2") == 0 && ev[0].wall > 1.5e9);
  CHECK(ev[1].step == 1 && ev[1].nvalues == 2 && strcmp(ev[1].tags[0], "loss") == 0 && ev[1].values[0] == 0.5f);
  CHECK(strcmp(ev[1].tags[1], "lr") == 0 && ev[1].values[1] == 1e-4f);
  CHECK(ev[2].step == 7 && ev[2].values[0] == 0.25f && ev[2].values[1] == 2e-4f);
}

/* metrics.jsonl rows, and a resumed run dropping the rows after its step. */
static void t_jsonl_resume(void) {
  const char *dir = test_tmpdir("units-jsonl");
  rdt_metrics *m = rdt_metrics_open(dir, 0, -1);
  for (int s = 1; s <= 5; s++) {
    rdt_scalar v = {"loss", 1.0 / s};
    rdt_metrics_log(m, s, &v, 1);
  }
  rdt_metrics_close(m);
  m = rdt_metrics_open(dir, 0, 3);
  rdt_scalar v = {"loss", 42};
  rdt_metrics_log(m, 4, &v, 1);
  rdt_metrics_close(m);
  char path[4300];
  snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
  char *text = rdt_read_file(path, NULL);
  int64_t steps[8];
  double loss[8];
  int n = 0;
  for (char *line = strtok(text, "\n"); line && n < 8; line = strtok(NULL, "\n"), n++) {
    rdt_json *j = rdt_json_parse(line, strlen(line));
    rdt_json_int64(rdt_json_get(j, "step"), &steps[n]);
    loss[n] = rdt_json_get(j, "loss")->number;
    rdt_json_free(j);
  }
  free(text);
  CHECK(n == 4);
  CHECK(steps[0] == 1 && steps[2] == 3 && steps[3] == 4 && loss[1] == 0.5 && loss[3] == 42);
}

/* ================================================================ checkpoints */
static void make_ckpt(const char *dir, const char *name, int complete) {
  char path[4400];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  rdt_mkdirs(path);
  if (complete) {
    snprintf(path, sizeof path, "%s/%s/trainer_state.json", dir, name);
    rdt_write_file_atomic(path, "{}", 2);
  }
}

static void t_checkpoint_names(void) {
  const char *dir = test_tmpdir("units-ckpt");
  make_ckpt(dir, "checkpoint-5", 1);
  make_ckpt(dir, "checkpoint-12", 1);
  make_ckpt(dir, "checkpoint-30", 0);            /* no trainer_state.json: never picked */
  make_ckpt(dir, ".checkpoint-40.tmp-123", 1);   /* a half-written save */
  make_ckpt(dir, "checkpoint-7x", 1);
  make_ckpt(dir, "checkpoint-", 1);
  char *latest = rdt_ckpt_latest(dir);
  CHECK(latest && strcmp(rdt_basename(latest), "checkpoint-12") == 0);
  free(latest);
  CHECK(rdt_ckpt_prune(dir, 1) == 1);
  char path[4400];
  snprintf(path, sizeof path, "%s/checkpoint-5", dir);
  CHECK(!rdt_is_dir(path));
  snprintf(path, sizeof path, "%s/checkpoint-12", dir);
  CHECK(rdt_is_dir(path));
  CHECK(rdt_ckpt_clean_temp(dir) == 1);
  snprintf(path, sizeof path, "%s/.checkpoint-40.tmp-123", dir);
  CHECK(!rdt_is_dir(path));
  CHECK(rdt_ckpt_latest("/nonexistent/folder") == NULL);
}

/* ================================================================ loader */
typedef struct {
  int64_t index;
  int64_t value;
} slot_t;

/* A batch's value is a function of its index; timing is scrambled. */
static int fill_slot(void *ctx, int64_t index, void *slot, int worker) {
  (void)worker;
  int64_t fail_at = *(int64_t *)ctx;
  usleep((useconds_t)((index * 7919) % 5) * 300);
  if (index == fail_at) return rdt_fail("planted failure");
  slot_t *s = slot;
  s->index = index;
  s->value = index * index + 3;
  return 0;
}

static void run_loader(int workers, int64_t first, int64_t fail_at, int count) {
  slot_t slots[4];
  void *ptrs[4] = {&slots[0], &slots[1], &slots[2], &slots[3]};
  rdt_loader *l = rdt_loader_new(workers, workers ? 4 : 1, ptrs, fill_slot, &fail_at, first);
  for (int i = 0; i < count; i++) {
    int64_t k;
    slot_t *s = rdt_loader_next(l, &k);
    if (first + i == fail_at) {
      CHECK(s == NULL && strstr(rdt_error(), "batch") && strstr(rdt_error(), "planted failure"));
      break;
    }
    CHECK(s && k == first + i && s->index == k && s->value == k * k + 3);
    if (!s) break;
    rdt_loader_release(l);
  }
  rdt_loader_free(l);
}

static void t_loader(void) {
  run_loader(3, 17, -1, 60);
  run_loader(0, 5, -1, 10);
  run_loader(2, 0, 30, 40);
  run_loader(0, 0, 3, 10);
}

int main(void) {
  RUN(t_lr);
  RUN(t_ema_decay);
  RUN(t_ema_update);
  RUN(t_adamw_clip);
  RUN(t_crc);
  RUN(t_tensorboard);
  RUN(t_jsonl_resume);
  RUN(t_checkpoint_names);
  RUN(t_loader);
  return test_done();
}
