/* Evaluation pieces that need no simulator data: the policy wrapper (inputs
 * against a hand-assembled reference batch, batch-composition independence,
 * chunk -> LIBERO actions on hand-worked cases, strict checkpoint errors),
 * raw observations, results records and files (summaries checked against
 * hand-computed numbers), settings comparison, merging, names. */
#include <math.h>
#include "eval/policy.h"
#include "eval/results.h"
#include "model/siglip.h"
#include "model/t5.h"
#include "model/tiny_encoders.h"
#include "eval_fixture.h"

static char dir[4096], ckpt[4200];
static rdt_config *tiny;

/* ================================================================ policy */

enum { RAW = 20 };   /* raw camera side (preprocessing resizes it to the encoder's 32) */

/* A random raw observation; images in buf (4 frames), t-1 absent when first. */
static void random_obs(rdt_rng *r, uint8_t *buf, int first, rdt_raw_obs *o) {
  memset(o, 0, sizeof *o);
  for (int i = 0; i < 7; i++) o->joint_pos[i] = rdt_rng_uniform(r) - 0.5;
  o->gripper_qpos[0] = 0.03, o->gripper_qpos[1] = -0.028;
  for (int i = 0; i < 3; i++) o->eef_pos[i] = rdt_rng_uniform(r), o->eef_ori[i] = rdt_rng_uniform(r) - 0.5;
  o->h = o->w = RAW;
  for (size_t i = 0; i < (size_t)4 * RAW * RAW * 3; i++) buf[i] = (uint8_t)rdt_rng_below(r, 256);
  for (int c = 0; c < 2; c++)
    for (int h = 0; h < 2; h++) o->image[c][h] = first && h == 0 ? NULL : buf + (size_t)(c * 2 + h) * RAW * RAW * 3;
}

static eval_policy *open_policy(const char *pretrained, eval_batch_mode mode) {
  eval_policy_opts o = {pretrained, NULL, NULL, NULL, "cpu", 1, "bf16", mode};
  return eval_policy_open(tiny, &o);
}

static eval_policy *open_tiny_policy(const char *pretrained) { return open_policy(pretrained, EVAL_BATCH_AUTO); }

/* The chunk of one observation computed without the wrapper: model inputs by
 * rdt_obs_to_model_input, tiny encoders, the instruction unpadded, ctrl freq 20. */
static void reference_chunk(const rdt_raw_obs *o, const char *text, uint64_t seed, uint64_t stream, float *chunk) {
  rdt_model_config mc;
  rdt_tiny_cfg tc;
  CHECK(rdt_model_config_from_yaml(tiny, &mc) == 0 && rdt_tiny_cfg_from_config(tiny, &tc) == 1);
  k_backend *b = k_open("cpu", 1);
  rdt_model *m = rdt_model_new(b, &mc);
  rdt_st *st = rdt_st_open(ckpt);
  CHECK(st && rdt_model_load(m, st, NULL) == 0);
  rdt_st_close(st);
  rdt_image_cfg ic;
  CHECK(rdt_image_cfg_from_config(&ic, tiny, tc.image_size) == 0);
  rdt_model_input in;
  in.images = malloc(sizeof(float) * 6 * 3 * 32 * 32);
  CHECK(rdt_obs_to_model_input(rdt_uni_format_default(), &ic, o, NULL, &in) == 0);
  rdt_tiny_vision *v = rdt_tiny_vision_new(&tc);
  rdt_tiny_text *t = rdt_tiny_text_new(&tc);
  float *tokens = malloc(sizeof(float) * mc.img_cond_len * mc.img_token_dim);
  float *lang = malloc(sizeof(float) * tc.max_length * tc.lang_token_dim);
  uint8_t mask[64];
  rdt_tiny_vision_encode(v, in.images, 6, tokens);
  int L = rdt_tiny_text_encode(t, text, lang, mask);
  float noise[64 * 128], freq = 20;
  rdt_rng r;
  rdt_rng_seed(&r, seed, stream);
  for (int i = 0; i < 64 * 128; i++) noise[i] = (float)rdt_rng_normal(&r);
  rdt_batch bt = {1, L, lang, NULL, tokens, in.state, in.state_mask, &freq, NULL};
  CHECK(rdt_model_sample(m, &bt, noise, chunk) == 0);
  free(in.images), free(tokens), free(lang);
  rdt_tiny_vision_free(v), rdt_tiny_text_free(t);
  rdt_model_free(m);
  k_close(b);
}

/* Relative L2 distance of two chunks. */
static double chunk_err(const float *a, const float *b) {
  double num = 0, den = 0;
  for (int k = 0; k < 64 * 128; k++) num += (a[k] - b[k]) * (a[k] - b[k]), den += b[k] * b[k];
  return sqrt(num / den);
}

/* Two requests (one without a t-1 frame), answered alone and together: rows
 * mode gives bit-identical chunks, batch mode the same to float rounding; both
 * match a batch assembled by hand from the model API. */
static void check_batches(eval_batch_mode mode) {
  eval_policy *p = open_policy(dir, mode);   /* the folder: its ema/model.safetensors */
  CHECK_MSG(p != NULL, "%s", rdt_error());
  if (!p) return;
  CHECK(!strcmp(eval_policy_weights(p), ckpt));
  /* the longer instruction fixes the padded length; both rows use the shorter one,
     so both are padded and masked */
  const char *text[2] = {"close the top drawer of the cabinet and put the black bowl on top of it",
                         "close the top drawer of the cabinet"};
  CHECK(eval_policy_instructions(p, text, 2) == 0);
  uint8_t buf[2][4 * RAW * RAW * 3];
  rdt_raw_obs o[2];
  rdt_rng r;
  rdt_rng_seed(&r, 3, 0);
  random_obs(&r, buf[0], 1, &o[0]);
  random_obs(&r, buf[1], 0, &o[1]);
  eval_request *q[2] = {eval_request_new(p), eval_request_new(p)};
  float *alone[2] = {malloc(sizeof(float) * 64 * 128), malloc(sizeof(float) * 64 * 128)};
  for (int i = 0; i < 2; i++) {   /* each row alone */
    rdt_rng_seed(&r, 11, (uint64_t)i);
    CHECK(eval_policy_prepare(p, &o[i], 1, &r, q[i]) == 0);
    CHECK(eval_policy_run(p, &q[i], 1) == 0);
    memcpy(alone[i], q[i]->chunk, sizeof(float) * 64 * 128);
  }
  for (int i = 0; i < 2; i++) {   /* both rows in one call */
    rdt_rng_seed(&r, 11, (uint64_t)i);
    CHECK(eval_policy_prepare(p, &o[i], 1, &r, q[i]) == 0);
  }
  CHECK(eval_policy_run(p, q, 2) == 0);
  CHECK(eval_policy_rows(p) == 4 && eval_policy_calls(p) == (mode == EVAL_BATCH_ONE ? 3 : 4));
  for (int i = 0; i < 2; i++) {
    if (mode == EVAL_BATCH_ONE)
      CHECK_MSG(chunk_err(q[i]->chunk, alone[i]) < 1e-5, "row %d: B=2 vs B=1 error %g", i,
                chunk_err(q[i]->chunk, alone[i]));
    else
      CHECK_MSG(!memcmp(alone[i], q[i]->chunk, sizeof(float) * 64 * 128), "row %d differs between alone and together", i);
    float ref[64 * 128];
    reference_chunk(&o[i], text[1], 11, (uint64_t)i, ref);
    CHECK_MSG(chunk_err(q[i]->chunk, ref) < 1e-5, "row %d: relative error %g against the hand-assembled batch", i,
              chunk_err(q[i]->chunk, ref));
    int nz = 0;
    for (int k = 0; k < 64 * 128; k++) nz += ref[k] != 0;
    CHECK(nz == 64 * 17);   /* the state mask: 7 joints, gripper, 3 position, 6 rotation */
  }
  eval_request_free(q[0]), eval_request_free(q[1]);
  free(alone[0]), free(alone[1]);
  eval_policy_free(p);
}

static void t_policy_rows(void) { check_batches(EVAL_BATCH_ROWS); }
static void t_policy_batch(void) { check_batches(EVAL_BATCH_ONE); }

/* 6D of R = Rz(a) (first two columns, column by column). */
static void rz_6d(double a, float *d) {
  d[0] = (float)cos(a), d[1] = (float)sin(a), d[2] = 0, d[3] = (float)-sin(a), d[4] = (float)cos(a), d[5] = 0;
}

static void t_policy_actions(void) {
  eval_policy *p = open_tiny_policy(ckpt);
  CHECK_MSG(p != NULL, "%s", rdt_error());
  if (!p) return;
  eval_request *q = eval_request_new(p);
  float *e3 = q->chunk + 3 * 128, *e5 = q->chunk + 5 * 128;
  e3[30] = 0.06f, e3[31] = -0.012f, e3[32] = 0, e3[10] = 0.75f;   /* /1.2 -> 0.05, -0.01; 2g-1 = 0.5 */
  rz_6d(0.2, e3 + 33);                                              /* Euler z 0.2 / 0.5 = 0.4 */
  e5[30] = 1.5f, e5[10] = 0, e5[33] = 1, e5[37] = 1;                /* 1.25 clipped to 1; identity; g -1 */
  rdt_raw_obs cur;
  memset(&cur, 0, sizeof cur);
  double a[7], want3[7] = {0.05, -0.01, 0, 0, 0, 0.4, 0.5}, want5[7] = {1, 0, 0, 0, 0, 0, -1};
  eval_policy_action(p, q, 3, &cur, a);
  for (int i = 0; i < 7; i++) CHECK_NEAR(a[i], want3[i], 1e-6);
  eval_policy_action(p, q, 5, &cur, a);
  for (int i = 0; i < 7; i++) CHECK_NEAR(a[i], want5[i], 1e-6);
  eval_request_free(q);
  eval_policy_free(p);
}

static void t_policy_bad_checkpoints(void) {
  char bad[4300];
  snprintf(bad, sizeof bad, "%s/notes.txt", dir);
  FILE *f = fopen(bad, "w");
  fputs("not a checkpoint\n", f);
  fclose(f);
  CHECK(open_tiny_policy(bad) == NULL);
  CHECK_MSG(strstr(rdt_error(), "notes.txt") != NULL, "%s", rdt_error());
  /* a checkpoint of another width: every tensor's shape is wrong */
  char other[4300];
  snprintf(other, sizeof other, "%s/wide.safetensors", dir);
  rdt_model_config mc;
  CHECK(rdt_model_config_from_yaml(tiny, &mc) == 0);
  mc.hidden_size = 32;
  k_backend *b = k_open("cpu", 1);
  rdt_model *m = rdt_model_new(b, &mc);
  CHECK(m && rdt_model_save(m, NULL, other, RDT_F32) == 0);
  rdt_model_free(m);
  k_close(b);
  CHECK(open_tiny_policy(other) == NULL);
  CHECK_MSG(strstr(rdt_error(), "model.blocks.0.attn.qkv.weight") && strstr(rdt_error(), "71 wrong shape"),
            "%s", rdt_error());
}

/* configs/tiny.yaml without its model.tiny_encoders section, as a config object. */
static rdt_config *config_without_tiny_encoders(void) {
  char *text = rdt_read_file(fx_tiny_yaml(), NULL), *out = malloc(strlen(text) + 1), *o = out;
  int skipping = 0;
  for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
    if (!strncmp(line, "  tiny_encoders:", 16)) skipping = 1;
    else if (skipping && strncmp(line, "    ", 4)) skipping = 0;
    if (!skipping) o += sprintf(o, "%s\n", line);
  }
  rdt_config *c = rdt_config_parse(out, strlen(out), "tiny-without-encoders.yaml");
  free(text), free(out);
  return c;
}

/* One precomputed instruction embedding [L, 32] of value v, where
 * --precomp_lang_embed looks for it. */
static void write_embedding(const char *folder, const char *text, int L, float v) {
  float emb[32 * 32];
  for (int i = 0; i < L * 32; i++) emb[i] = v * (float)((i % 7) - 3);
  char *path = t5_embed_path(folder, text);
  rdt_st_writer *w = rdt_st_writer_new();
  int64_t shape[2] = {L, 32};
  rdt_st_writer_add(w, "embeddings", RDT_F32, 2, shape, emb);
  CHECK(rdt_st_writer_save(w, path) == 0);
  rdt_st_writer_free(w);
  free(path);
}

/* A config without the tiny encoders: SigLIP (a small random one) and
 * precomputed language embeddings. */
static void t_siglip_and_precomputed(void) {
  char vis[4300], lang[4300];
  snprintf(vis, sizeof vis, "%s/siglip", dir), snprintf(lang, sizeof lang, "%s/lang", dir);
  siglip_config sc = {32, 64, 1, 2, 3, 32, 8, 1e-6f};   /* 16 tokens x 32 per 32 x 32 image */
  CHECK(siglip_write_random(&sc, vis, RDT_F32, 4) == 0 && rdt_mkdirs(lang) == 0);
  const char *text = "close the top drawer of the cabinet";
  write_embedding(lang, text, 9, 0.1f);
  rdt_config *cfg = config_without_tiny_encoders();
  CHECK(cfg != NULL);
  eval_policy_opts o = {ckpt, NULL, NULL, NULL, "cpu", 1, "bf16", EVAL_BATCH_ROWS};
  CHECK(eval_policy_open(cfg, &o) == NULL && strstr(rdt_error(), "--vision_encoder"));
  o.vision_encoder = vis;
  CHECK(eval_policy_open(cfg, &o) == NULL && strstr(rdt_error(), "--precomp_lang_embed"));
  o.precomp_lang_embed = lang;
  eval_policy *p = eval_policy_open(cfg, &o);
  CHECK_MSG(p != NULL, "%s", rdt_error());
  if (p) {
    const char *missing = "turn on the stove";
    CHECK(eval_policy_instructions(p, &missing, 1) == -1 && strstr(rdt_error(), "turn_on_the_stove.safetensors"));
    eval_policy_free(p);
  }
  float chunk[2][64 * 128];
  for (int pass = 0; pass < 2; pass++) {   /* the embedding file's content reaches the model */
    if (pass) write_embedding(lang, text, 9, -0.2f);
    p = eval_policy_open(cfg, &o);
    CHECK(p && eval_policy_instructions(p, &text, 1) == 0);
    if (!p) break;
    uint8_t buf[4 * RAW * RAW * 3];
    rdt_raw_obs ob;
    rdt_rng r;
    rdt_rng_seed(&r, 8, 0);
    random_obs(&r, buf, 0, &ob);
    eval_request *q = eval_request_new(p);
    CHECK(eval_policy_prepare(p, &ob, 0, &r, q) == 0 && eval_policy_run(p, &q, 1) == 0);
    memcpy(chunk[pass], q->chunk, sizeof chunk[pass]);
    eval_request_free(q);
    eval_policy_free(p);
  }
  CHECK(chunk_err(chunk[0], chunk[1]) > 1e-3 && isfinite(chunk[0][30]));
  rdt_config_free(cfg);
}

static void t_raw_obs(void) {
  sim_obs so;
  memset(&so, 0, sizeof so);
  for (int i = 0; i < 7; i++) so.joint_pos[i] = i;
  so.gripper_qpos[0] = 0.04, so.gripper_qpos[1] = -0.04;
  so.eef_pos[0] = 1, so.eef_pos[1] = 2, so.eef_pos[2] = 3;
  so.eef_quat[2] = sin(M_PI / 4), so.eef_quat[3] = cos(M_PI / 4);   /* 90 degrees about z, x y z w */
  uint8_t a = 1, b = 2, c = 3;
  const uint8_t *cur[2] = {&a, &b}, *prev[2] = {&c, NULL};
  rdt_raw_obs o;
  eval_raw_obs(&so, cur, prev, 7, &o);
  CHECK(o.joint_pos[6] == 6 && o.gripper_qpos[1] == -0.04 && o.eef_pos[2] == 3 && o.h == 7 && o.w == 7);
  CHECK_NEAR(o.eef_ori[0], 0, 1e-12);
  CHECK_NEAR(o.eef_ori[2], M_PI / 2, 1e-12);
  CHECK(o.image[0][1] == &a && o.image[1][1] == &b && o.image[0][0] == &c && o.image[1][0] == NULL);
  eval_raw_obs(&so, NULL, NULL, 7, &o);
  CHECK(!o.image[0][0] && !o.image[0][1] && !o.image[1][0] && !o.image[1][1]);
}

/* ================================================================ results */

static eval_episode ep(int task, int trial, int success, int steps) {
  eval_episode e;
  memset(&e, 0, sizeof e);
  e.task = task, e.trial = trial, e.success = success, e.steps = steps, e.queries = (steps + 7) / 8;
  e.end = success ? EVAL_END_SUCCESS : EVAL_END_MAX_STEPS;
  e.digest = 0xfedcba9876543210ULL + (uint64_t)trial;
  return e;
}

/* Does text contain this line? */
static int has_line(const char *text, const char *line) {
  size_t n = strlen(line);
  for (const char *p = text; (p = strstr(p, line)); p++)
    if ((p == text || p[-1] == '\n') && (p[n] == '\n' || p[n] == 0)) return 1;
  return 0;
}

static int living_room_task(void) {
  for (int t = 0; t < SIM_NUM_TASKS; t++)
    if (!strncmp(sim_task_name(t), "LIVING_ROOM_", 12)) return t;
  return -1;
}

static void t_results_file(void) {
  eval_results r;
  eval_results_init(&r);
  int lr = living_room_task();
  eval_episode e = ep(0, 2, 0, 30);
  eval_results_put(&r, &e, NULL);
  e = ep(lr, 0, 1, 12);
  eval_results_put(&r, &e, NULL);
  e = ep(0, 0, 1, 10);
  eval_results_put(&r, &e, "v/00_x/trial00_success.mp4");
  e = ep(0, 1, 0, 99);
  eval_results_put(&r, &e, NULL);
  e = ep(0, 1, 1, 20);   /* replaces the record of (0, 1) */
  eval_results_put(&r, &e, NULL);
  CHECK(r.n == 4 && r.ep[0].trial == 0 && r.ep[1].trial == 1 && r.ep[2].trial == 2 && r.ep[3].task == lr);
  CHECK(eval_results_find(&r, 0, 1)->steps == 20 && eval_results_find(&r, 0, 3) == NULL);
  eval_results_describe(&r, "libero_90", "/x/ckpt-1/ema/model.safetensors", "{\"seed\":0}", "{\"workers\":2}");
  char json[4300], csv[4300];
  snprintf(json, sizeof json, "%s/r/results.json", dir);
  snprintf(csv, sizeof csv, "%s/r/results.csv", dir);
  CHECK(rdt_mkdirs(dir) == 0 && test_sh("mkdir -p '%s/r'", dir) == 0);
  CHECK(eval_results_write(&r, json, csv) == 0);
  /* task 0: successes at 10 and 20 steps, one failure at 30 -> 2/3, mean 20, successes 15 */
  char *text = rdt_read_file(csv, NULL);
  char line[256];
  CHECK(has_line(text, "task,0,KITCHEN_SCENE10_close_the_top_drawer_of_the_cabinet,3,2,0.6667,20.00,15.00"));
  snprintf(line, sizeof line, "task,%d,%s,1,1,1.0000,12.00,12.00", lr, sim_task_name(lr));
  CHECK(has_line(text, line));
  CHECK(has_line(text, "scene,,kitchen,3,2,0.6667,20.00,15.00"));
  CHECK(has_line(text, "scene,,living_room,1,1,1.0000,12.00,12.00"));
  CHECK(has_line(text, "overall,,all,4,3,0.7500,18.00,14.00"));
  free(text);
  rdt_json *j = fx_json(json);
  const rdt_json *ov = rdt_json_get(j, "overall");
  CHECK(fx_int(ov, "tasks") == 2 && fx_int(ov, "successes") == 3);
  CHECK_NEAR(rdt_json_get(ov, "mean_task_rate")->number, (2.0 / 3 + 1) / 2, 1e-12);
  CHECK(fx_int(rdt_json_get(j, "run"), "workers") == 2);
  rdt_json_free(j);
  /* round trip */
  eval_results back;
  eval_results_init(&back);
  CHECK(eval_results_load(&back, json) == 0);
  CHECK(back.n == 4);
  for (int i = 0; i < back.n && i < 4; i++) {
    CHECK(back.ep[i].task == r.ep[i].task && back.ep[i].trial == r.ep[i].trial);
    CHECK(back.ep[i].steps == r.ep[i].steps && back.ep[i].success == r.ep[i].success);
    CHECK(back.ep[i].digest == r.ep[i].digest && back.ep[i].end == r.ep[i].end);
  }
  CHECK(back.video[0] && !strcmp(back.video[0], "v/00_x/trial00_success.mp4") && !back.video[1]);
  char *what = NULL;
  CHECK(eval_settings_equal(back.settings, "{\"seed\":0}", &what) == 1);
  eval_results_free(&back);
  CHECK(eval_results_load(&back, "/nonexistent/results.json") == 1);
  eval_results_free(&back);
  eval_results_free(&r);
}

static void t_settings(void) {
  char *what = NULL;
  CHECK(eval_settings_equal("{\"a\":1,\"b\":{\"c\":[1,2]}}", "{\"b\":{\"c\":[1,2]},\"a\":1}", &what) == 1);
  CHECK(eval_settings_equal("{\"a\":1,\"b\":2}", "{\"a\":1,\"b\":3}", &what) == 0);
  CHECK(what && !strcmp(what, "b"));
  free(what);
  CHECK(eval_settings_equal("{\"a\":1}", "{\"a\":1,\"seed\":4}", &what) == 0);
  CHECK(what && !strcmp(what, "seed"));
  free(what);
  CHECK(eval_settings_equal("{", "{}", &what) == -1);
}

/* A results file of one checkpoint with (task, successes of 2 trials). */
static void write_results(const char *path, const char *ckpt_path, const int *tasks, const int *succ, int n) {
  eval_results r;
  eval_results_init(&r);
  for (int i = 0; i < n; i++)
    for (int k = 0; k < 2; k++) {
      eval_episode e = ep(tasks[i], k, k < succ[i], 10);
      eval_results_put(&r, &e, NULL);
    }
  eval_results_describe(&r, "libero_90", ckpt_path, "{}", "{}");
  CHECK(eval_results_write(&r, path, NULL) == 0);
  eval_results_free(&r);
}

static void t_merge(void) {
  char a1[4300], a2[4300], b[4300], prefix[4300], path[4400];
  snprintf(a1, sizeof a1, "%s/a1.json", dir), snprintf(a2, sizeof a2, "%s/a2.json", dir);
  snprintf(b, sizeof b, "%s/b.json", dir), snprintf(prefix, sizeof prefix, "%s/sum/summary", dir);
  int t0[1] = {0}, s0[1] = {2}, t1[1] = {5}, s1[1] = {1}, tb[2] = {0, 5}, sb[2] = {0, 1};
  write_results(a1, "runs/a/checkpoint-10/ema/model.safetensors", t0, s0, 1);   /* a: task 0 2/2 */
  write_results(a2, "runs/a/checkpoint-10", t1, s1, 1);                          /* a: task 5 1/2 (same label) */
  write_results(b, "runs/b.safetensors", tb, sb, 2);                             /* b: 0/2, 1/2 */
  const char *in[3] = {a1, b, a2};
  CHECK_MSG(eval_merge(in, 3, prefix, NULL) == 0, "%s", rdt_error());
  snprintf(path, sizeof path, "%s.csv", prefix);
  char *csv = rdt_read_file(path, NULL);
  CHECK(csv && has_line(csv, "task,name,\"runs/a/checkpoint-10\",\"runs/b.safetensors\""));
  CHECK(csv && has_line(csv, "0,KITCHEN_SCENE10_close_the_top_drawer_of_the_cabinet,1.0000,0.0000"));
  char line[256];
  snprintf(line, sizeof line, "5,%s,0.5000,0.5000", sim_task_name(5));
  CHECK(csv && has_line(csv, line));
  CHECK(csv && has_line(csv, "mean,mean of task rates,0.7500,0.2500"));
  free(csv);
  snprintf(path, sizeof path, "%s.md", prefix);
  char *md = rdt_read_file(path, NULL);
  CHECK(md && strstr(md, "| 0 | KITCHEN_SCENE10_close_the_top_drawer_of_the_cabinet | 100.0% (2/2) | 0.0% (0/2) |"));
  CHECK(md && strstr(md, "**75.0%** (3/4)"));
  free(md);
  const char *missing[1] = {"/nonexistent.json"};
  CHECK(eval_merge(missing, 1, prefix, NULL) == -1 && strstr(rdt_error(), "/nonexistent.json"));
}

static void t_names(void) {
  CHECK(!strcmp(eval_scene_class("KITCHEN_SCENE3_turn_on_the_stove"), "kitchen"));
  CHECK(!strcmp(eval_scene_class("LIVING_ROOM_SCENE2_pick_up_the_butter"), "living_room"));
  CHECK(!strcmp(eval_scene_class("STUDY_SCENE1_pick_up_the_book"), "study"));
  char *p = eval_video_path("v", 0, 7, 1), *q = eval_video_path("v", 0, 12, 0), *t = eval_video_path("v", 0, 3, -1);
  CHECK(!strcmp(p, "v/00_KITCHEN_SCENE10_close_the_top_drawer_of_the_cabinet/trial07_success.mp4"));
  CHECK(!strcmp(q, "v/00_KITCHEN_SCENE10_close_the_top_drawer_of_the_cabinet/trial12_failure.mp4"));
  CHECK(!strcmp(t, "v/00_KITCHEN_SCENE10_close_the_top_drawer_of_the_cabinet/trial03.mp4"));
  free(p), free(q), free(t);
  CHECK(eval_end_parse("max_steps") == EVAL_END_MAX_STEPS && eval_end_parse("nope") == -1);
  CHECK(!strcmp(eval_end_name(EVAL_END_SIM_ERROR), "sim_error"));
  char *w = eval_weights_path(dir);   /* a folder with ema/model.safetensors */
  CHECK(!strcmp(w, ckpt));
  free(w);
}

int main(void) {
  snprintf(dir, sizeof dir, "%s", test_tmpdir("eval-units"));
  snprintf(ckpt, sizeof ckpt, "%s/ema/model.safetensors", dir);
  fx_checkpoint(dir, 5, 0.05);
  tiny = rdt_config_load(fx_tiny_yaml());
  if (!tiny) return fprintf(stderr, "%s\n", rdt_error()), 2;
  RUN(t_policy_rows);
  RUN(t_policy_batch);
  RUN(t_policy_actions);
  RUN(t_policy_bad_checkpoints);
  RUN(t_siglip_and_precomputed);
  RUN(t_raw_obs);
  RUN(t_results_file);
  RUN(t_settings);
  RUN(t_merge);
  RUN(t_names);
  rdt_config_free(tiny);
  if (!test_done()) test_sh("rm -rf '%s'", dir);
  return test_done();
}
