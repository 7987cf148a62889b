/* model/cmd_encode.c: `rdt encode-lang` -- encode instructions with T5 once and
 * store them as safetensors, the form --precomp_lang_embed reads
 * (docs/ENCODERS.md):
 *   OUTPUT/<slug>.safetensors          one tensor `embeddings` [L, d_model]
 *   OUTPUT/empty_lang_embed.safetensors  the empty instruction (EOS only)
 *   OUTPUT/index.json                  instruction -> file, tokens, task names
 * As upstream scripts/encode_lang.py: T5 tokenizer with EOS, truncation to
 * --max_length, last_hidden_state of the encoder.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "core/flags.h"
#include "core/fsutil.h"
#include "core/json.h"
#include "core/log.h"
#include "core/progress.h"
#include "core/safetensors.h"
#include "kernels/kernels.h"
#include "model/t5.h"
#include "model/tokenizer.h"

typedef struct {
  char *text;
  char *tasks;   /* comma-separated task names (benchmarks), or NULL */
} instruction;

typedef struct {
  instruction *v;
  int n;
} instruction_list;

/* Add text (and a task name) unless already present; a task name is appended to an existing entry. */
static void list_add(instruction_list *l, const char *text, const char *task) {
  for (int i = 0; i < l->n; i++) {
    if (strcmp(l->v[i].text, text) != 0) continue;
    if (task) {
      size_t len = strlen(l->v[i].tasks) + strlen(task) + 2;
      l->v[i].tasks = rdt_realloc(l->v[i].tasks, len);
      strcat(strcat(l->v[i].tasks, ","), task);
    }
    return;
  }
  l->v = rdt_realloc(l->v, (size_t)(l->n + 1) * sizeof *l->v);
  l->v[l->n].text = rdt_strdup(text);
  l->v[l->n++].tasks = task ? rdt_strdup(task) : NULL;
}

static void list_free(instruction_list *l) {
  for (int i = 0; i < l->n; i++) free(l->v[i].text), free(l->v[i].tasks);
  free(l->v);
}

/* One instruction per line; blank lines and lines starting with '#' skipped. */
static int read_instruction_file(const char *path, instruction_list *l) {
  char *text = rdt_read_file(path, NULL);
  if (!text) return -1;
  for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t')) line[--n] = 0;
    if (n && line[0] != '#') list_add(l, line, NULL);
  }
  free(text);
  return 0;
}

/* The text of "(:language ...)" in a BDDL file, malloc'd; NULL + rdt_error(). */
static char *bddl_language(const char *path) {
  char *text = rdt_read_file(path, NULL);
  if (!text) return NULL;
  char *p = strstr(text, "(:language");
  char *out = NULL;
  if (!p) {
    rdt_fail("%s: no (:language ...) entry", path);
  } else {
    p += strlen("(:language");
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    char *end = strchr(p, ')');
    if (!end) {
      rdt_fail("%s: unterminated (:language", path);
    } else {
      while (end > p && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\n' || end[-1] == '\r')) end--;
      out = rdt_malloc((size_t)(end - p) + 1);
      memcpy(out, p, (size_t)(end - p));
      out[end - p] = 0;
    }
  }
  free(text);
  return out;
}

/* The instructions of a LIBERO benchmark: every .bddl file in bddl_files/<benchmark>. */
static int read_benchmark(const char *root, const char *benchmark, instruction_list *l) {
  if (!root || !*root) root = getenv("RDT_LIBERO_ROOT");
  if (!root || !*root)
    return rdt_fail("--benchmark needs the LIBERO package folder: pass --libero_root DIR or set RDT_LIBERO_ROOT");
  char *sub = rdt_path_join(root, "bddl_files"), *dir = rdt_path_join(sub, benchmark);
  char **names;
  int n = rdt_list_dir(dir, ".bddl", &names), rc = 0;
  if (n == 0) rc = rdt_fail("%s: no .bddl task files", dir);
  for (int i = 0; i < n; i++) {
    char *path = rdt_path_join(dir, names[i]);
    char *lang = rc == 0 ? bddl_language(path) : NULL;
    if (lang) {
      names[i][strlen(names[i]) - strlen(".bddl")] = 0;
      list_add(l, lang, names[i]);
    } else {
      rc = -1;
    }
    free(lang);
    free(path);
    free(names[i]);
  }
  if (n > 0) free(names);
  free(sub);
  free(dir);
  return n < 0 ? -1 : rc;
}

/* Write one embedding file: tensor `embeddings` [L, D] plus metadata. */
static int save_embedding(const char *path, const float *emb, int L, int D, rdt_dtype dtype,
                          const instruction *ins, const char *encoder, const int32_t *ids) {
  size_t n = (size_t)L * D;
  void *data = (void *)emb;
  if (dtype != RDT_F32) {
    data = rdt_malloc(n * rdt_dtype_size(dtype));
    rdt_convert(data, dtype, emb, RDT_F32, n);
  }
  char *id_text = rdt_malloc((size_t)L * 12 + 1);
  size_t k = 0;
  for (int i = 0; i < L; i++) k += (size_t)sprintf(id_text + k, i ? " %d" : "%d", ids[i]);
  id_text[k] = 0;
  rdt_st_writer *w = rdt_st_writer_new();
  const int64_t shape[2] = {L, D};
  rdt_st_writer_add(w, "embeddings", dtype, 2, shape, data);
  rdt_st_writer_meta(w, "instruction", ins->text);
  rdt_st_writer_meta(w, "token_ids", id_text);
  rdt_st_writer_meta(w, "text_encoder", encoder);
  if (ins->tasks) rdt_st_writer_meta(w, "tasks", ins->tasks);
  int rc = rdt_st_writer_save(w, path);
  rdt_st_writer_free(w);
  free(id_text);
  if (data != emb) free(data);
  return rc;
}

/* Two instructions must not share a file name. */
static int check_slugs(const instruction_list *l, const char *out) {
  for (int i = 0; i < l->n; i++)
    for (int j = i + 1; j < l->n; j++) {
      char *a = t5_embed_path(out, l->v[i].text), *b = t5_embed_path(out, l->v[j].text);
      int same = strcmp(a, b) == 0;
      free(a), free(b);
      if (same)
        return rdt_fail("instructions \"%s\" and \"%s\" map to the same file name", l->v[i].text, l->v[j].text);
    }
  return 0;
}

typedef struct {
  const char *encoder, *out;
  int max_length, batch;
  rdt_dtype dtype;
  rdt_jw *index;
} encode_job;

/* Encode instructions [first, first + n) as one padded batch and save each. */
static int encode_batch(t5 *m, const encode_job *job, const instruction *ins, int n) {
  const spm_model *tok = t5_tokenizer(m);
  const int D = t5_cfg(m)->d_model;
  const char **texts = rdt_malloc((size_t)n * sizeof *texts);
  for (int i = 0; i < n; i++) texts[i] = ins[i].text;
  spm_batch bt;
  spm_batch_t5(tok, texts, n, job->max_length, &bt);
  float *out = rdt_malloc((size_t)n * bt.len * D * sizeof *out);
  int rc = t5_encode(m, bt.ids, bt.mask, n, bt.len, out);
  for (int i = 0; rc == 0 && i < n; i++) {
    char *path = t5_embed_path(job->out, ins[i].text);
    rc = save_embedding(path, out + (size_t)i * bt.len * D, bt.lengths[i], D, job->dtype, &ins[i], job->encoder,
                        bt.ids + (size_t)i * bt.len);
    rdt_jw *w = job->index;
    jw_obj(w);
    jw_key(w, "instruction"), jw_str(w, ins[i].text);
    jw_key(w, "file"), jw_str(w, rdt_basename(path));
    jw_key(w, "tokens"), jw_int(w, bt.lengths[i]);
    if (ins[i].tasks) jw_key(w, "tasks"), jw_str(w, ins[i].tasks);
    jw_obj_end(w);
    free(path);
  }
  spm_batch_free(&bt);
  free(out);
  free(texts);
  return rc;
}

/* Encode every instruction in batches, writing the files and index.json. */
static int encode_all(t5 *m, const encode_job *job, const instruction_list *l) {
  rdt_progress bar;
  rdt_progress_start(&bar, "encode-lang", l->n);
  rdt_jw *w = job->index;
  jw_obj(w);
  jw_key(w, "text_encoder"), jw_str(w, job->encoder);
  jw_key(w, "max_length"), jw_int(w, job->max_length);
  jw_key(w, "dim"), jw_int(w, t5_cfg(m)->d_model);
  jw_key(w, "dtype"), jw_str(w, rdt_dtype_name(job->dtype));
  jw_key(w, "instructions");
  jw_arr(w);
  int rc = 0;
  for (int i = 0; rc == 0 && i < l->n; i += job->batch) {
    int n = l->n - i < job->batch ? l->n - i : job->batch;
    rc = encode_batch(m, job, l->v + i, n);
    rdt_progress_update(&bar, i + n, NULL);
  }
  rdt_progress_end(&bar);
  jw_arr_end(w);
  jw_obj_end(w);
  return rc;
}

int rdt_cmd_encode_lang(int argc, char **argv) {
  const char *encoder = NULL, *list = NULL, *benchmark = NULL, *root = NULL, *out = NULL;
  const char *device = NULL, *precision = NULL, *dtype_name = NULL, *weights = NULL;
  int64_t max_length = 0, batch = 0, threads = 0;
  const rdt_flag flags[] = {
    {"text_encoder", RDT_FLAG_STR, &encoder, NULL, "T5 model folder (config.json, safetensors, spiece.model)"},
    {"instructions", RDT_FLAG_STR, &list, NULL, "text file, one instruction per line"},
    {"benchmark", RDT_FLAG_STR, &benchmark, NULL, "encode a LIBERO benchmark's instructions (libero_90)"},
    {"libero_root", RDT_FLAG_STR, &root, NULL, "LIBERO package folder (default $RDT_LIBERO_ROOT)"},
    {"output", RDT_FLAG_STR, &out, NULL, "folder for the .safetensors files and index.json"},
    {"max_length", RDT_FLAG_INT, &max_length, "1024", "most tokens per instruction, EOS included (upstream tokenizer_max_length)"},
    {"batch_size", RDT_FLAG_INT, &batch, "16", "instructions per forward pass"},
    {"device", RDT_FLAG_STR, &device, "cpu", "backend: cpu, cuda or cuda:N"},
    {"threads", RDT_FLAG_INT, &threads, "0", "CPU threads (0 = all cores)"},
    {"mixed_precision", RDT_FLAG_STR, &precision, "bf16", "CUDA activations: bf16 (as upstream) or no (f32)"},
    {"dtype", RDT_FLAG_STR, &dtype_name, "F32", "stored dtype: F32 or BF16"},
    {"weights", RDT_FLAG_STR, &weights, "auto", "auto, resident or stream (convert each layer per pass)"},
  };
  const char *summary = "encode instructions with T5 and store them as safetensors (docs/ENCODERS.md)";
  int prc = rdt_flags_parse(argv[0], summary, flags, (int)(sizeof flags / sizeof *flags), argc, argv, NULL, NULL);
  if (prc == 1) return 0;
  if (prc < 0) rdt_die_last();
  if (!encoder || !out) rdt_die("encode-lang needs --text_encoder DIR and --output DIR");
  if (!list == !benchmark) rdt_die("encode-lang needs exactly one of --instructions FILE and --benchmark NAME");
  if (max_length < 1 || batch < 1) rdt_die("--max_length and --batch_size must be positive");
  rdt_dtype dtype;
  if (rdt_dtype_parse(dtype_name, &dtype) < 0 || (dtype != RDT_F32 && dtype != RDT_BF16))
    rdt_die("--dtype must be F32 or BF16, not '%s'", dtype_name);
  enc_mode mode = strcmp(weights, "resident") == 0 ? ENC_RESIDENT : strcmp(weights, "stream") == 0 ? ENC_STREAM : ENC_AUTO;
  if (mode == ENC_AUTO && strcmp(weights, "auto") != 0) rdt_die("--weights must be auto, resident or stream");

  instruction_list l = {NULL, 0};
  list_add(&l, "", NULL);   /* the empty instruction of condition dropout */
  if ((list ? read_instruction_file(list, &l) : read_benchmark(root, benchmark, &l)) < 0) rdt_die_last();
  if (rdt_mkdirs(out) < 0 || check_slugs(&l, out) < 0) rdt_die_last();

  k_backend *b = k_open(device, (int)threads);
  if (!b) rdt_die_last();
  if (k_kind_of(b) == K_CUDA && k_set_act_dtype(b, strcmp(precision, "no") != 0 ? RDT_BF16 : RDT_F32) < 0) rdt_die_last();
  t5 *m = t5_load(b, encoder, mode);
  if (!m) rdt_die_last();
  if (!t5_tokenizer(m)) rdt_die("%s: no spiece.model (the T5 tokenizer) in the folder", encoder);
  rdt_info("encode-lang: %d instructions (+ the empty one) with %s on %s%s", l.n - 1, encoder, k_name(b),
           t5_streamed(m) ? ", weights streamed per layer" : "");

  rdt_jw index;
  jw_init(&index, 1);
  encode_job job = {encoder, out, (int)max_length, (int)batch, dtype, &index};
  int rc = encode_all(m, &job, &l);
  char *json = jw_finish(&index);
  char *index_path = rdt_path_join(out, "index.json");
  if (rc == 0) rc = rdt_write_file_atomic(index_path, json, strlen(json));
  free(index_path);
  free(json);
  t5_free(m);
  k_close(b);
  if (rc < 0) rdt_die_last();
  rdt_info("encode-lang: wrote %d files and index.json to %s", l.n, out);
  list_free(&l);
  return 0;
}
