/* Exact resume (issue 4, acceptance 3): 20 steps, stop, resume to 40 gives
 * the losses of steps 21-40 of an uninterrupted 40-step run bit for bit, and
 * the same EMA and weight files (CPU, one thread).  The runs use gradient
 * accumulation, a warmup schedule, validation and different loader thread
 * counts, so the restored schedule, EMA count, optimizer moments and data
 * position all matter. */
#include "train_fixture.h"

static char data[512], cmd[16384];

/* Run rdt train with the common settings plus extra flags into dir/name. */
static int train(const char *name, const char *extra) {
  snprintf(cmd, sizeof cmd,
           "%s train --device cpu --config %s --data_dir %s --output_dir %s/%s --train_batch_size 3 "
           "--gradient_accumulation_steps 2 --learning_rate 1e-3 --lr_scheduler constant_with_warmup "
           "--lr_warmup_steps 5 --seed 7 --threads 1 --checkpointing_period 20 --sample_period 15 "
           "--num_sample_batches 1 --sample_batch_size 2 --report_to none %s 2>> %s/log.txt",
           fx_rdt(), fx_tiny(), data, data, name, extra, data);
  return test_sh("%s", cmd);
}

static int same_file(const char *a, const char *b) {
  size_t na, nb;
  char *x = rdt_read_file(a, &na), *y = rdt_read_file(b, &nb);
  int same = x && y && na == nb && memcmp(x, y, na) == 0;
  free(x), free(y);
  return same;
}

static void t_resume_bitwise(void) {
  CHECK(train("full", "--max_train_steps 40 --dataloader_num_workers 2") == 0);
  CHECK(train("split", "--max_train_steps 20 --dataloader_num_workers 0") == 0);
  CHECK(train("split", "--max_train_steps 40 --dataloader_num_workers 3 --resume_from_checkpoint latest") == 0);
  char full[4300], split[4300];
  snprintf(full, sizeof full, "%s/full", data);
  snprintf(split, sizeof split, "%s/split", data);
  double a[64], b[64];
  int na = fx_losses(full, a, 64), nb = fx_losses(split, b, 64);
  CHECK(na == 40 && nb == 40);
  int equal = na == nb;
  for (int i = 0; i < na && i < nb; i++) equal &= memcmp(&a[i], &b[i], sizeof a[i]) == 0;
  CHECK_MSG(equal, "losses differ after the resume");
  const char *files[] = {"ema/model.safetensors", "model.safetensors", "checkpoint-40/ema/model.safetensors",
                         "checkpoint-40/optimizer.safetensors"};
  char pa[4500], pb[4500];
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    snprintf(pa, sizeof pa, "%s/%s", full, files[i]);
    snprintf(pb, sizeof pb, "%s/%s", split, files[i]);
    CHECK_MSG(same_file(pa, pb), "%s differs", files[i]);
  }
  snprintf(pa, sizeof pa, "%s/log.txt", data);
  CHECK(fx_file_has(pa, "Resuming from checkpoint") && fx_file_has(pa, "checkpoint-20 (step 20)"));
}

/* A checkpoint folder as upstream writes it (weights and EMA, no trainer
 * state): the resumed run starts at its step with the same weights and data
 * position, so its first loss is the uninterrupted run's loss of that step. */
static void t_resume_upstream_folder(void) {
  char dir[600], src[1200], dst[1200];
  snprintf(dir, sizeof dir, "%s/up/checkpoint-20", data);
  snprintf(dst, sizeof dst, "%s/ema", dir);
  rdt_mkdirs(dst);
  const char *files[] = {"model.safetensors", "config.json", "ema/model.safetensors"};
  for (int i = 0; i < 3; i++) {
    snprintf(src, sizeof src, "%s/full/checkpoint-20/%s", data, files[i]);
    snprintf(dst, sizeof dst, "%s/%s", dir, files[i]);
    size_t n;
    char *bytes = rdt_read_file(src, &n);
    CHECK(bytes && rdt_write_file_atomic(dst, bytes, n) == 0);
    free(bytes);
  }
  char flags[1200];
  snprintf(flags, sizeof flags, "--max_train_steps 22 --resume_from_checkpoint %s", dir);
  CHECK(train("up", flags) == 0);
  char full[1024], up[1024];
  snprintf(full, sizeof full, "%s/full", data);
  snprintf(up, sizeof up, "%s/up", data);
  double a[64], b[64];
  int na = fx_losses(full, a, 64), nb = fx_losses(up, b, 64);
  CHECK(na == 40 && nb == 2);
  CHECK(nb >= 1 && memcmp(&a[20], &b[0], sizeof b[0]) == 0);
  snprintf(up, sizeof up, "%s/log.txt", data);
  CHECK(fx_file_has(up, "no trainer_state.json"));
}

int main(void) {
  snprintf(data, sizeof data, "%s", test_tmpdir("train-resume"));
  fx_write(data, 3, 70, 16);
  RUN(t_resume_bitwise);
  RUN(t_resume_upstream_folder);
  return test_done();
}
