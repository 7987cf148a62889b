/* tests/model/encoders_cmd.c: `rdt encode-lang` end to end on a small random T5
 * with a SentencePiece model trained by Debian's spm_train.
 *
 * Checks the stored form (docs/ENCODERS.md): one file per distinct
 * instruction named by the slug rule, a single tensor `embeddings` [L, d]
 * with L = spm_encode's id count + EOS, values equal to the double-precision
 * reference encoder on exactly those ids (so batching with padding changed
 * nothing), the empty instruction as [1, d] (EOS only), index.json, the
 * --benchmark libero_90 path (90 BDDL files, 74 distinct instructions) and
 * the command's errors.
 */
#include "test.h"

#include <stdarg.h>
#include <sys/wait.h>

#include "core/error.h"
#include "core/fsutil.h"
#include "core/json.h"
#include "core/safetensors.h"
#include "model/t5.h"
#include "encoders_ref.h"

static char tmp[4096], model_dir[4200];
static t5_ref ref;
static wfile weights;


/* The ids spm_encode gives for one line of text. */
static int spm_ids(const char *text, int *ids, int cap) {
  char path[4300];
  snprintf(path, sizeof path, "%s/one.txt", tmp);
  FILE *f = fopen(path, "w");
  fprintf(f, "%s\n", text);
  fclose(f);
  CHECK(test_sh("spm_encode --model='%s/spiece.model' --output_format=id <'%s' >'%s.ids'", model_dir, path, path) == 0);
  snprintf(path + strlen(path), 8, ".ids");
  char *line = rdt_read_file(path, NULL);
  int n = 0;
  char *end;
  for (char *p = line; p && *p && n < cap;) {
    long v = strtol(p, &end, 10);
    if (end == p) break;
    ids[n++] = (int)v;
    p = end;
  }
  free(line);
  return n;
}

/* A T5 folder: random weights (vocab = the SentencePiece model's) + spiece.model. */
static void setup(void) {
  snprintf(tmp, sizeof tmp, "%s", test_tmpdir("encode-lang"));
  snprintf(model_dir, sizeof model_dir, "%s/t5", tmp);
  const char *src = getenv("RDT_SOURCE_DIR");
  CHECK(rdt_mkdirs(model_dir) == 0);
  CHECK(test_sh("grep -v '^#' '%s/tests/model/encoders_corpus.txt' >'%s/corpus.txt' && cd '%s' && "
           "spm_train --input=corpus.txt --model_prefix=spiece --model_type=unigram --vocab_size=300 "
           "--pad_id=0 --eos_id=1 --unk_id=2 --bos_id=-1 --num_threads=1 --minloglevel=2 >/dev/null 2>&1 && "
           "mv spiece.model t5/",
           src ? src : ".", tmp, tmp) == 0);
  CHECK(t5_ref_write(&ref, &weights, model_dir, 2, 300, RDT_BF16, KEEP_ALL, 77) == 0);
}

/* The stored embedding of `text` in out against the reference on spm_encode's ids + EOS. */
static void check_file(const char *out, const char *text) {
  char *path = t5_embed_path(out, text);
  rdt_st *st = rdt_st_open(path);
  CHECK_MSG(st != NULL, "%s", rdt_error());
  free(path);
  if (!st) return;
  int ids[256];
  int n = spm_ids(text, ids, 255);
  ids[n++] = 1;   /* EOS */
  const rdt_tensor *t = rdt_st_count(st) == 1 ? rdt_st_find(st, "embeddings") : NULL;
  CHECK(t && t->ndim == 2 && t->shape[0] == n && t->shape[1] == ref.d && t->dtype == RDT_F32);
  const char *meta = rdt_st_metadata(st, "instruction");
  CHECK(meta && strcmp(meta, text) == 0);
  if (t && t->shape[0] == n) {
    float *got = malloc((size_t)n * ref.d * sizeof *got);
    double *want = malloc((size_t)n * ref.d * sizeof *want);
    int32_t ids32[256];
    for (int i = 0; i < n; i++) ids32[i] = ids[i];
    rdt_st_to_f32(t, got);
    t5_ref_forward(&ref, ids32, NULL, 1, n, want);
    CHECK_MSG(rel_err_f(got, want, (size_t)n * ref.d) < 2e-5, "\"%s\": rel err %g", text,
              rel_err_f(got, want, (size_t)n * ref.d));
    free(got), free(want);
  }
  rdt_st_close(st);
}

/* A list file with a duplicate, a comment and a blank line. */
static void t_instruction_file(void) {
  const char *lines[] = {"put the black bowl on the plate", "Open the microwave, please!",
                         "turn on the stove and put the moka pot on it"};
  char list[4300], out[4300];
  snprintf(list, sizeof list, "%s/list.txt", tmp);
  snprintf(out, sizeof out, "%s/out", tmp);
  FILE *f = fopen(list, "w");
  fprintf(f, "# instructions\n%s\n\n%s\r\n%s\n%s\n", lines[0], lines[1], lines[2], lines[0]);
  fclose(f);
  CHECK(test_sh("\"$RDT_BIN\" encode-lang --text_encoder '%s' --instructions '%s' --output '%s' --threads 1 "
           "--batch_size 2 2>'%s/log.txt'", model_dir, list, out, tmp) == 0);
  for (int i = 0; i < 3; i++) check_file(out, lines[i]);
  check_file(out, "");
  char *empty = t5_embed_path(out, "");
  CHECK(strcmp(rdt_basename(empty), "empty_lang_embed.safetensors") == 0);
  free(empty);
  char *p = t5_embed_path(out, lines[1]);
  CHECK(strcmp(rdt_basename(p), "Open_the_microwave__please_.safetensors") == 0);
  free(p);
  char index[4400];
  snprintf(index, sizeof index, "%s/index.json", out);
  rdt_json *j = rdt_json_load(index);
  const rdt_json *arr = j ? rdt_json_get(j, "instructions") : NULL;
  CHECK(arr && arr->count == 4);
  CHECK(j && rdt_json_get(j, "dim") && rdt_json_get(j, "dim")->number == ref.d);
  rdt_json_free(j);
}

/* The 90 LIBERO-90 tasks: 74 distinct instructions + the empty one. */
static void t_benchmark_libero_90(void) {
  const char *root = test_libero_root();
  char out[4300];
  snprintf(out, sizeof out, "%s/libero", tmp);
  CHECK(test_sh("\"$RDT_BIN\" encode-lang --text_encoder '%s' --benchmark libero_90 --libero_root '%s' "
           "--output '%s' --threads 1 --dtype BF16 2>'%s/log.txt'", model_dir, root, out, tmp) == 0);
  char index[4400];
  snprintf(index, sizeof index, "%s/index.json", out);
  rdt_json *j = rdt_json_load(index);
  const rdt_json *arr = j ? rdt_json_get(j, "instructions") : NULL;
  CHECK(arr && arr->count == 75);
  int tasks = 0, found = 0;
  for (int i = 0; arr && i < arr->count; i++) {
    const rdt_json *e = rdt_json_at(arr, i), *tk = rdt_json_get(e, "tasks");
    const char *ins = rdt_json_get(e, "instruction")->string;
    if (tk) tasks++;   /* comma-separated names */
    for (const char *c = tk ? tk->string : ""; *c; c++) tasks += *c == ',';
    if (strcmp(ins, "close the top drawer of the cabinet") == 0)
      found = tk && strstr(tk->string, "KITCHEN_SCENE10_close_the_top_drawer_of_the_cabinet") != NULL;
  }
  CHECK_MSG(tasks == 90, "%d task names", tasks);
  CHECK(found);
  rdt_json_free(j);
  char *p = t5_embed_path(out, "close the top drawer of the cabinet");
  rdt_st *st = rdt_st_open(p);
  const rdt_tensor *t = st ? rdt_st_find(st, "embeddings") : NULL;
  CHECK(t && t->dtype == RDT_BF16 && t->shape[1] == ref.d);
  rdt_st_close(st);
  free(p);
}

/* Usage errors and a folder without a tokenizer fail with a message. */
static void t_errors(void) {
  CHECK(test_sh("\"$RDT_BIN\" encode-lang --text_encoder '%s' --output '%s/x' 2>/dev/null", model_dir, tmp) == 1);
  CHECK(test_sh("\"$RDT_BIN\" encode-lang --text_encoder '%s' --instructions a --benchmark libero_90 --output '%s/x' "
           "2>/dev/null", model_dir, tmp) == 1);
  CHECK(test_sh("mkdir -p '%s/notok' && cp '%s'/*.json '%s'/*.safetensors '%s/notok/' && echo hi >'%s/l.txt' && "
           "\"$RDT_BIN\" encode-lang --text_encoder '%s/notok' --instructions '%s/l.txt' --output '%s/y' "
           "--threads 1 2>'%s/err.txt'", tmp, model_dir, model_dir, tmp, tmp, tmp, tmp, tmp, tmp) == 1);
  char path[4400];
  snprintf(path, sizeof path, "%s/err.txt", tmp);
  char *err = rdt_read_file(path, NULL);
  CHECK(err && strstr(err, "spiece.model"));
  free(err);
}

int main(void) {
  if (test_sh("command -v spm_train >/dev/null && command -v spm_encode >/dev/null") != 0) {
    fprintf(stderr, "spm_train/spm_encode not found: install Debian's 'sentencepiece' package\n");
    return 1;
  }
  if (!getenv("RDT_BIN")) {
    fprintf(stderr, "RDT_BIN is not set (run through ctest)\n");
    return 1;
  }
  setup();
  RUN(t_instruction_file);
  RUN(t_errors);
  if (!test_failures_) RUN(t_benchmark_libero_90);   /* last: skips (77) without the LIBERO data */
  wf_free(&weights);
  if (!test_failures_) rdt_rmtree(tmp);
  return test_done();
}
