/* rdt eval end to end on a tiny random checkpoint (CPU):
 *   1. --num_tasks 2 --num_trials 2 --max_steps 30 --exec_horizon 8
 *      --record_video: results.json with 2 tasks x 2 trials, four mp4 files
 *      named by outcome that ffprobe reads as H.264 yuv420p 256x128 at 20 fps
 *      with 1 + steps frames (the settle steps are not in the videos);
 *   2. every episode queried the model ceil(steps / 8) times (4 for 30 steps);
 *   5. --workers 2 (no video) gives the same episodes as --workers 1: outcome,
 *      steps, queries and the digest of every executed action;
 *   7. wrong checkpoints (not safetensors; missing, unexpected and wrong-shaped
 *      tensors; another model size) stop before any rollout: exit 1, every
 *      problem named, no results file, no video folder. */
#include "core/safetensors.h"
#include "eval_fixture.h"

static char dir[4096], ckpt[4200];

/* Read a whole file into a static buffer ("" when absent). */
static const char *slurp(const char *path) {
  static char *text;
  free(text);
  text = rdt_read_file(path, NULL);
  if (!text) text = rdt_strdup("");
  return text;
}

/* rdt eval with the common flags plus `extra`; stdout and stderr to LOG. */
static int eval_run(const char *out, const char *extra, const char *log) {
  return test_sh("'%s' eval --config '%s' --pretrained '%s' --benchmark libero_90 --num_tasks 2 --num_trials 2 "
               "--max_steps 30 --exec_horizon 8 --threads 1 --output '%s' %s > '%s' 2>&1",
               test_rdt_bin(), fx_tiny_yaml(), ckpt, out, extra, log);
}

/* ffprobe's codec, pix_fmt, size, rate and decoded frame count of a video. */
static void probe(const char *path, char *out, size_t n) {
  char cmd[8400];
  snprintf(cmd, sizeof cmd, "ffprobe -v error -count_frames -select_streams v:0 -show_entries "
           "stream=codec_name,pix_fmt,width,height,r_frame_rate,nb_read_frames -of csv=p=0 '%s'", path);
  FILE *p = popen(cmd, "r");
  out[0] = 0;
  if (p && fgets(out, (int)n, p)) out[strcspn(out, "\n")] = 0;
  if (p) pclose(p);
}

static void t_videos_and_queries(void) {
  char out[4300], vid[4300], log[4300], json[4400];
  snprintf(out, sizeof out, "%s/r1", dir), snprintf(vid, sizeof vid, "%s/videos", dir);
  snprintf(log, sizeof log, "%s/r1.log", dir), snprintf(json, sizeof json, "%s/results.json", out);
  char extra[4400];
  snprintf(extra, sizeof extra, "--record_video --video_output_dir '%s'", vid);
  int rc = eval_run(out, extra, log);
  CHECK_MSG(rc == 0, "rdt eval exit %d:\n%s", rc, slurp(log));
  if (rc != 0) return;
  rdt_json *j = fx_json(json);
  const rdt_json *tasks = rdt_json_get(j, "tasks"), *eps = rdt_json_get(j, "episodes");
  CHECK(tasks && tasks->count == 2 && eps && eps->count == 4);
  for (int i = 0; tasks && i < tasks->count; i++) CHECK(fx_int(&tasks->items[i], "trials") == 2);
  int have_ffprobe = test_sh("command -v ffprobe > /dev/null 2>&1") == 0;
  for (int i = 0; eps && i < eps->count; i++) {
    const rdt_json *e = &eps->items[i];
    int steps = fx_int(e, "steps"), task = fx_int(e, "task"), trial = fx_int(e, "trial");
    CHECK(task == i / 2 && trial == i % 2);
    CHECK_MSG(fx_int(e, "queries") == (steps + 7) / 8, "episode %d: %d queries for %d steps", i,
              fx_int(e, "queries"), steps);
    CHECK(fx_bool(e, "success") ? steps <= 30 : steps == 30 && !strcmp(fx_str(e, "end"), "max_steps"));
    if (steps == 30) CHECK(fx_int(e, "queries") == 4);
    CHECK(fx_int(e, "frames") == steps + 1);
    char path[8000], want[256], got[512];
    snprintf(path, sizeof path, "%s/%02d_%s/trial%02d_%s.mp4", vid, task, fx_str(rdt_json_at(tasks, task), "name"),
             trial, fx_bool(e, "success") ? "success" : "failure");
    CHECK_MSG(rdt_is_file(path) && !strcmp(fx_str(e, "video"), path), "no video %s", path);
    if (!have_ffprobe) continue;
    probe(path, got, sizeof got);
    snprintf(want, sizeof want, "h264,256,128,yuv420p,20/1,%d", steps + 1);
    CHECK_MSG(!strcmp(got, want), "%s: ffprobe says '%s', expected '%s'", path, got, want);
  }
  if (!have_ffprobe) fprintf(stderr, "note: ffprobe not on PATH, video streams not probed\n");
  rdt_json_free(j);
  snprintf(json, sizeof json, "%s/results.csv", out);
  CHECK(strstr(slurp(json), "overall,,all,4,") != NULL);
}

static void t_workers_agree(void) {
  char one[4400], two[4300], log[4300];
  snprintf(one, sizeof one, "%s/r1/results.json", dir), snprintf(two, sizeof two, "%s/r2", dir);
  snprintf(log, sizeof log, "%s/r2.log", dir);
  int rc = eval_run(two, "--workers 2", log);
  CHECK_MSG(rc == 0, "rdt eval --workers 2 exit %d:\n%s", rc, slurp(log));
  if (rc != 0 || !rdt_is_file(one)) return;
  char json[4400];
  snprintf(json, sizeof json, "%s/results.json", two);
  rdt_json *a = fx_json(one), *b = fx_json(json);
  const rdt_json *ea = rdt_json_get(a, "episodes"), *eb = rdt_json_get(b, "episodes");
  CHECK(ea && eb && ea->count == 4 && eb->count == 4);
  for (int i = 0; ea && eb && i < ea->count && i < eb->count; i++)
    CHECK_MSG(fx_same_episode(&ea->items[i], &eb->items[i]), "episode %d differs: digest %s vs %s", i,
              fx_str(&ea->items[i], "digest"), fx_str(&eb->items[i], "digest"));
  /* the rollouts are not all the same (the checkpoint is not degenerate) */
  CHECK(ea && ea->count == 4 && strcmp(fx_str(&ea->items[0], "digest"), fx_str(&ea->items[1], "digest")) != 0);
  CHECK(fx_int(rdt_json_get(b, "run"), "workers") == 2);
  rdt_json_free(a), rdt_json_free(b);
}

/* A safetensors file from the good checkpoint with two tensors dropped, one
 * renamed (unexpected) and one with a wrong shape. */
static void write_broken(const char *path) {
  rdt_st *st = rdt_st_open(ckpt);
  CHECK(st != NULL);
  if (!st) return;
  rdt_st_writer *w = rdt_st_writer_new();
  for (int i = 0; i < rdt_st_count(st); i++) {
    const rdt_tensor *t = rdt_st_get(st, i);
    if (!strcmp(t->name, "lang_adaptor.0.weight") || !strcmp(t->name, "model.t_embedder.mlp.0.bias")) continue;
    const char *name = !strcmp(t->name, "state_adaptor.4.bias") ? "state_adaptor.9.bias" : t->name;
    int64_t shape[8];
    memcpy(shape, t->shape, sizeof(int64_t) * (size_t)t->ndim);
    int nd = t->ndim;
    if (!strcmp(t->name, "model.final_layer.ffn_final.fc2.weight")) shape[0] = 1, shape[1] = rdt_numel(t), nd = 2;
    rdt_st_writer_add(w, name, t->dtype, nd, shape, t->data);
  }
  CHECK(rdt_st_writer_save(w, path) == 0);
  rdt_st_writer_free(w);
  rdt_st_close(st);
}

/* rdt eval on a bad --pretrained must fail before any rollout, naming `names`. */
static void expect_refusal(const char *pretrained, const char *const *names, int n, const char *tag) {
  char out[4300], vid[4300], log[4300], cmd_extra[4500];
  snprintf(out, sizeof out, "%s/bad-%s", dir, tag), snprintf(vid, sizeof vid, "%s/bad-%s-videos", dir, tag);
  snprintf(log, sizeof log, "%s/bad-%s.log", dir, tag);
  snprintf(cmd_extra, sizeof cmd_extra, "--record_video --video_output_dir '%s'", vid);
  int rc = test_sh("'%s' eval --config '%s' --pretrained '%s' --num_tasks 1 --num_trials 1 --max_steps 5 --output "
                 "'%s' %s > '%s' 2>&1", test_rdt_bin(), fx_tiny_yaml(), pretrained, out, cmd_extra, log);
  const char *msg = slurp(log);
  CHECK_MSG(rc == 1, "%s: exit %d", tag, rc);
  for (int i = 0; i < n; i++) CHECK_MSG(strstr(msg, names[i]) != NULL, "%s: '%s' not named in:\n%s", tag, names[i], msg);
  char json[4400];
  snprintf(json, sizeof json, "%s/results.json", out);
  CHECK_MSG(!rdt_is_file(json) && !rdt_is_dir(vid), "%s: something was written", tag);
}

static void t_bad_checkpoints(void) {
  char text[4300], broken[4300], wide[4300];
  snprintf(text, sizeof text, "%s/weights.bin", dir);
  FILE *f = fopen(text, "w");
  fputs("PK this is not a tensor file", f);
  fclose(f);
  const char *n1[] = {"weights.bin"};
  expect_refusal(text, n1, 1, "text");

  snprintf(broken, sizeof broken, "%s/broken.safetensors", dir);
  write_broken(broken);
  /* renaming state_adaptor.4.bias makes it missing and its new name unexpected */
  const char *n2[] = {"3 missing", "lang_adaptor.0.weight", "model.t_embedder.mlp.0.bias", "1 unexpected",
                      "state_adaptor.9.bias", "wrong shape", "model.final_layer.ffn_final.fc2.weight",
                      "state_adaptor.4.bias"};
  expect_refusal(broken, n2, 8, "broken");

  snprintf(wide, sizeof wide, "%s/wide", dir);   /* a whole checkpoint of another width */
  CHECK(test_sh("'%s' init --config '%s' --model.rdt.hidden_size=32 --output '%s/model.safetensors' > /dev/null 2>&1",
              test_rdt_bin(), fx_tiny_yaml(), wide) == 0);
  const char *n3[] = {"wrong shape", "model.x_pos_embed"};
  expect_refusal(wide, n3, 2, "wide");

  const char *n4[] = {"no-such-checkpoint"};
  expect_refusal("/nonexistent/no-such-checkpoint", n4, 1, "missing");
}

int main(void) {
  fx_libero_env();
  snprintf(dir, sizeof dir, "%s", test_tmpdir("eval-cli"));
  snprintf(ckpt, sizeof ckpt, "%s/checkpoint-1", dir);
  fx_checkpoint(ckpt, 7, 0.05);
  RUN(t_bad_checkpoints);
  RUN(t_videos_and_queries);
  RUN(t_workers_agree);
  if (!test_done()) test_sh("rm -rf '%s'", dir);
  return test_done();
}
