/* tests/model/encoders_real.c: the real checkpoints, when present.
 *
 *   RDT_SIGLIP_PATH  a google/siglip-so400m-patch14-384 folder (or any SigLIP)
 *   RDT_T5_PATH      a google/t5-v1_1-xxl folder with spiece.model
 *
 * Encodes one image (and the background twice: the second from the cache) and
 * one instruction, and checks shapes and finiteness; the real tokenizer is
 * compared with spm_encode on a few instructions.  Without either variable
 * the test is skipped with a message: the weights cannot be downloaded in CI.
 * On a CPU the XXL encoder is streamed from its bf16 shards (minutes).
 */
#include "test.h"

#include <math.h>
#include "core/error.h"
#include "kernels/kernels.h"
#include "model/siglip.h"
#include "model/t5.h"

static k_backend *cpu;
static const char *siglip_dir, *t5_dir;

/* Every value finite. */
static int all_finite(const float *x, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!isfinite(x[i])) return 0;
  return 1;
}

/* One random image and the background (twice) through the real SigLIP. */
static void t_siglip(void) {
  const char *dir = siglip_dir;
  siglip *m = siglip_load(cpu, dir, ENC_AUTO);
  CHECK_MSG(m != NULL, "%s", rdt_error());
  if (!m) return;
  const siglip_config *c = siglip_cfg(m);
  const int T = siglip_tokens(m), S = c->image_size;
  fprintf(stderr, "SigLIP: %d layers, hidden %d, %d tokens per image\n", c->num_layers, c->hidden_size, T);
  CHECK(T == (S / c->patch_size) * (S / c->patch_size));
  if (c->hidden_size == 1152 && S == 384) CHECK(T == 729);   /* so400m-patch14-384 */
  size_t per = (size_t)3 * S * S, out_n = (size_t)T * c->hidden_size;
  float *img = malloc(3 * per * sizeof *img), *out = malloc(3 * out_n * sizeof *out);
  for (size_t i = 0; i < per; i++) img[i] = (float)sin(0.001 * (double)i);   /* a smooth pattern */
  for (size_t i = per; i < 3 * per; i++) img[i] = (127.0f / 255.0f - 0.5f) / 0.5f;   /* background */
  siglip_encode(m, img, 3, out);
  CHECK(all_finite(out, 3 * out_n));
  CHECK(memcmp(out + out_n, out + 2 * out_n, out_n * sizeof *out) == 0);
  CHECK(siglip_cache_hits(m) == 1);
  free(img), free(out);
  siglip_free(m);
}

/* One instruction through the real T5; the tokenizer against spm_encode. */
static void t_t5(void) {
  const char *dir = t5_dir;
  t5 *m = t5_load(cpu, dir, ENC_AUTO);
  CHECK_MSG(m != NULL, "%s", rdt_error());
  if (!m) return;
  const t5_config *c = t5_cfg(m);
  fprintf(stderr, "T5: %d blocks, d_model %d%s\n", c->num_layers, c->d_model,
          t5_streamed(m) ? ", streamed per layer" : "");
  CHECK(t5_tokenizer(m) != NULL);
  const char *text = "pick up the black bowl between the plate and the ramekin and place it on the plate";
  if (t5_tokenizer(m) && system("command -v spm_encode >/dev/null") == 0) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "echo '%s' | spm_encode --model='%s/spiece.model' --output_format=id", text, dir);
    FILE *p = popen(cmd, "r");
    char line[4096] = "";
    CHECK(p && fgets(line, sizeof line, p));
    if (p) pclose(p);
    int *ids;
    int n = spm_encode_t5(t5_tokenizer(m), text, 1024, &ids);
    char mine[4096];
    int k = 0;
    for (int i = 0; i < n - 1; i++) k += snprintf(mine + k, sizeof mine - (size_t)k, i ? " %d" : "%d", ids[i]);
    line[strcspn(line, "\n")] = 0;
    CHECK_MSG(strcmp(mine, line) == 0, "ids %s, spm_encode %s", mine, line);
    CHECK(ids[n - 1] == 1);
    free(ids);
  }
  float *emb = NULL;
  int L = 0;
  CHECK_MSG(t5_encode_text(m, text, 1024, &emb, &L) == 0, "%s", rdt_error());
  CHECK(L > 1 && L < 64);
  if (emb) CHECK(all_finite(emb, (size_t)L * c->d_model));
  free(emb);
  t5_free(m);
}

int main(void) {
  siglip_dir = getenv("RDT_SIGLIP_PATH"), t5_dir = getenv("RDT_T5_PATH");
  if (siglip_dir && !*siglip_dir) siglip_dir = NULL;
  if (t5_dir && !*t5_dir) t5_dir = NULL;
  if (!siglip_dir && !t5_dir) {
    fprintf(stderr, "skipped: set RDT_SIGLIP_PATH and/or RDT_T5_PATH to real model folders "
                    "(google/siglip-so400m-patch14-384, google/t5-v1_1-xxl) to run this test\n");
    return 77;
  }
  cpu = k_open("cpu", 0);
  if (!cpu) return 1;
  if (siglip_dir) RUN(t_siglip);
  if (t5_dir) RUN(t_t5);
  k_close(cpu);
  return test_done();
}
