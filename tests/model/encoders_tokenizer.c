/* tests/model/encoders_tokenizer.c: the SentencePiece tokenizer against the
 * reference implementation (Debian's spm_train / spm_encode, package
 * `sentencepiece`).
 *
 * Small unigram models are trained on tests/model/encoders_corpus.txt (the
 * LIBERO-90 instructions and prose written for this test) with several
 * normaliser and vocabulary settings; a few hundred sentences (the corpus,
 * whitespace variants, Unicode that NFKC rewrites, characters outside the
 * vocabulary, malformed UTF-8) are encoded by `spm_encode --output_format=id`
 * and by model/tokenizer.c, and the ids must be identical; the T5 rule (EOS
 * appended, truncation, padding mask) is checked on top.
 */
#include "test.h"

#include "core/error.h"
#include "core/fsutil.h"
#include "model/tokenizer.h"

/* Sentences beyond the corpus: NFKC rewrites, odd whitespace, unknown
 * characters, user-defined symbols, digits. */
static const char *const extra_sentences[] = {
  "Hello   World",
  "   leading and trailing spaces   ",
  "tabs\tbetween\twords and\t\tdoubled",
  "\xef\xac\x81ne ligatures: \xef\xac\x81, \xef\xac\x82, \xef\xac\x80",       /* fi, fl, ff */
  "circled \xe2\x91\xa0 \xe2\x91\xa1 \xe2\x91\xa2 numbers",                    /* 1 2 3 */
  "\xef\xbc\xa8\xef\xbd\x85\xef\xbd\x8c\xef\xbd\x8c\xef\xbd\x8f full width \xef\xbc\x91\xef\xbc\x92\xef\xbc\x93",
  "ellipsis\xe2\x80\xa6 and em\xe2\x80\x94" "dash and \xe2\x80\x9c" "quotes\xe2\x80\x9d",
  "no\xc2\xa0" "break\xc2\xa0space and ideographic\xe3\x80\x80space",
  "zero\xe2\x80\x8bwidth space and soft\xc2\xadhyphen",
  "cafe\xcc\x81 versus caf\xc3\xa9 and nai\xcc\x88ve",                          /* combining accents */
  "superscript x\xc2\xb2 and fraction \xc2\xbd and \xe2\x84\xa2 mark",
  "Roman \xe2\x85\xab and \xe2\x85\xb0\xe2\x85\xb1 numerals",
  "half width \xef\xbd\xb6\xef\xbe\x80\xef\xbd\xb6\xef\xbe\x85 katakana",
  "Japanese \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e text inside",
  "Greek \xce\xb1\xce\xb2\xce\xb3 and Cyrillic \xd0\xb4\xd0\xb0",
  "emoji \xf0\x9f\x98\x80\xf0\x9f\x8d\x95 at the end \xf0\x9f\xa4\x96",
  "<extra_id_0> put the bowl <extra_id_0>on the plate",
  "the drawer drawers drawer's DRAWER",
  "put the black bowl in the top drawer\xef\xbc\xb8 of the cabinet",
  "numbers 1234567890 and 3.14159 and 2,718",
  "a",
  "A",
  "?!.,;:",
  "x",
  "\xe2\x96\x81 literal lower one eighth block \xe2\x96\x81\xe2\x96\x81",
  "replacement \xef\xbf\xbd char",
  "UPPERCASE PUT THE BOWL ON THE PLATE",
  "MiXeD cAsE Open The Microwave",
  "put  the   bowl\t on  the plate .",
  "close the top drawer of the cabinet and put the black bowl on top of it.",
  "pick up the alphabet soup and place it in the basket",
  "Turn ON the stove!!!",
  "turn off the stove, then turn it on again",
  "open the microwave\xe3\x80\x82",                                             /* ideographic full stop */
  "\xef\xbc\x88parentheses\xef\xbc\x89 and \xef\xbc\xbb" "brackets\xef\xbc\xbd",
  "\xe2\x84\x8c\xe2\x84\xaf\xe2\x84\x93\xe2\x84\x93\xe2\x84\xb4 letterlike",
  "\xe3\x8e\x8f \xe3\x8e\xa1 \xe3\x8f\x84 squared units",
  "Angstrom \xe2\x84\xab and Ohm \xe2\x84\xa6 and Kelvin \xe2\x84\xaa",
  "\xea\xb0\x80\xeb\x82\x98\xeb\x8b\xa4 Hangul syllables",
  "Thai \xe0\xb8\xaa\xe0\xb8\xa7\xe0\xb8\xb1\xe0\xb8\xaa\xe0\xb8\x94\xe0\xb8\xb5",
};

/* Malformed UTF-8 (built here so the data files stay valid text). */
static const char *const malformed_sentences[] = {
  "bad \xff byte",
  "truncated \xe2\x96 sequence",
  "overlong \xc0\xaf slash",
  "surrogate \xed\xa0\x80 half",
  "lone continuation \x80\x80 bytes",
};

/* A child process's exit status is 0. */
static int run(const char *cmd) {
  int rc = system(cmd);
  if (rc != 0) fprintf(stderr, "command failed (%d): %s\n", rc, cmd);
  return rc == 0;
}

/* Append a line to the growing list. */
static void push(char ***lines, int *n, const char *s) {
  *lines = rdt_realloc(*lines, (size_t)(*n + 1) * sizeof **lines);
  (*lines)[(*n)++] = rdt_strdup(s);
}

/* Split text into lines (no trailing newline kept), skipping '#' comments if asked. */
static int split_lines(char *text, int skip_comments, char ***lines) {
  int n = 0;
  *lines = NULL;
  for (char *p = text; *p;) {
    char *e = strchr(p, '\n');
    if (e) *e = 0;
    if (!(skip_comments && p[0] == '#')) push(lines, &n, p);
    if (!e) break;
    p = e + 1;
  }
  return n;
}

/* Parse "3 14 159" into ids; returns the count. */
static int parse_ids(const char *line, int *ids, int cap) {
  int n = 0;
  char *end;
  for (const char *p = line; *p && n < cap;) {
    long v = strtol(p, &end, 10);
    if (end == p) break;
    ids[n++] = (int)v;
    p = end;
  }
  return n;
}

static char **corpus;
static int ncorpus;
static char **sentences;
static int nsentences;
static char tmp[4096];

/* Corpus and the sentence list (corpus + whitespace variants + extras). */
static void setup(void) {
  const char *src = getenv("RDT_SOURCE_DIR");
  char path[4096];
  snprintf(path, sizeof path, "%s/tests/model/encoders_corpus.txt", src ? src : ".");
  char *text = rdt_read_file(path, NULL);
  if (!text) {
    fprintf(stderr, "cannot read the corpus: %s\n", rdt_error());
    exit(1);
  }
  ncorpus = split_lines(text, 1, &corpus);
  free(text);
  for (int i = 0; i < ncorpus; i++) {
    push(&sentences, &nsentences, corpus[i]);
    if (i % 3 == 0) {   /* a whitespace variant: padded, doubled and tabbed spaces */
      char v[2048];
      int k = 0;
      v[k++] = ' ';
      for (const char *c = corpus[i]; *c && k < (int)sizeof v - 8; c++) {
        if (*c == ' ') {
          v[k++] = ' ';
          if (k % 5 == 0) v[k++] = '\t';
        }
        v[k++] = *c;
      }
      v[k++] = ' ';
      v[k] = 0;
      push(&sentences, &nsentences, v);
    }
  }
  for (size_t i = 0; i < sizeof extra_sentences / sizeof *extra_sentences; i++)
    push(&sentences, &nsentences, extra_sentences[i]);
  for (size_t i = 0; i < sizeof malformed_sentences / sizeof *malformed_sentences; i++)
    push(&sentences, &nsentences, malformed_sentences[i]);
  snprintf(tmp, sizeof tmp, "%s", test_tmpdir("tokenizer"));

  char *train = rdt_path_join(tmp, "train.txt"), *sent = rdt_path_join(tmp, "sentences.txt");
  FILE *f = fopen(train, "w");
  for (int i = 0; i < ncorpus; i++) fprintf(f, "%s\n", corpus[i]);
  fclose(f);
  f = fopen(sent, "w");
  for (int i = 0; i < nsentences; i++) fprintf(f, "%s\n", sentences[i]);
  fclose(f);
  free(train);
  free(sent);
  fprintf(stderr, "%d corpus lines, %d sentences\n", ncorpus, nsentences);
}

/* Train a model named `name` with extra spm_train flags; load it with ours
 * and compare the ids of every sentence with spm_encode's. */
static spm_model *train_and_compare(const char *name, const char *flags) {
  char cmd[8192];
  snprintf(cmd, sizeof cmd,
           "cd '%s' && spm_train --input=train.txt --model_prefix=%s --model_type=unigram "
           "--hard_vocab_limit=false --num_threads=1 --minloglevel=2 %s >%s.log 2>&1 && "
           "spm_encode --model=%s.model --output_format=id <sentences.txt >%s.ids",
           tmp, name, flags, name, name, name);
  CHECK(run(cmd));
  snprintf(cmd, sizeof cmd, "%s/%s.model", tmp, name);
  spm_model *m = spm_load(cmd);
  CHECK_MSG(m != NULL, "%s", rdt_error());
  snprintf(cmd, sizeof cmd, "%s/%s.ids", tmp, name);
  char *text = rdt_read_file(cmd, NULL);
  CHECK(text != NULL);
  if (!m || !text) {
    free(text);
    return m;
  }
  char **ref;
  int nref = split_lines(text, 0, &ref);
  free(text);
  CHECK(nref == nsentences);
  int mismatches = 0, t5_mismatches = 0, tokens = 0, unknowns = 0;
  int want[4096];
  for (int i = 0; i < nref && i < nsentences; i++) {
    int nwant = parse_ids(ref[i], want, 4095);
    int *got;
    int ngot = spm_encode(m, sentences[i], strlen(sentences[i]), &got);
    int same = ngot == nwant;
    for (int k = 0; same && k < ngot; k++) same = got[k] == want[k];
    for (int k = 0; k < nwant; k++) unknowns += want[k] == spm_unk_id(m);
    tokens += nwant;
    if (!same && mismatches++ < 5) {
      fprintf(stderr, "[%s] sentence %d '%s'\n  spm_encode:", name, i, sentences[i]);
      for (int k = 0; k < nwant; k++) fprintf(stderr, " %d", want[k]);
      fprintf(stderr, "\n  rdt:       ");
      for (int k = 0; k < ngot; k++) fprintf(stderr, " %d", got[k]);
      fprintf(stderr, "\n");
    }
    /* T5 rule on top: the same ids, then EOS */
    int *t5;
    int nt5 = spm_encode_t5(m, sentences[i], 1024, &t5);
    int t5_ok = nt5 == nwant + 1 && t5[nt5 - 1] == spm_eos_id(m);
    for (int k = 0; t5_ok && k < nwant; k++) t5_ok = t5[k] == want[k];
    t5_mismatches += !t5_ok;
    free(t5);
    free(got);
    free(ref[i]);
  }
  free(ref);
  CHECK_MSG(mismatches == 0, "[%s] %d of %d sentences differ", name, mismatches, nsentences);
  CHECK_MSG(t5_mismatches == 0, "[%s] %d T5 sequences differ", name, t5_mismatches);
  fprintf(stderr, "[%s] vocab %d, %d sentences, %d tokens (%d unknown), %d differ\n", name,
          spm_vocab_size(m), nsentences, tokens, unknowns, mismatches);
  return m;
}

/* T5's ids: pad 0, EOS 1, unk 2, no BOS; NFKC-based nmt normaliser. */
static void t_t5_like_model(void) {
  spm_model *m = train_and_compare("t5like", "--vocab_size=600 --pad_id=0 --eos_id=1 --unk_id=2 --bos_id=-1");
  if (!m) return;
  CHECK(spm_pad_id(m) == 0 && spm_eos_id(m) == 1 && spm_unk_id(m) == 2);
  CHECK(strcmp(spm_piece(m, 1), "</s>") == 0 && strcmp(spm_piece(m, 0), "<pad>") == 0);
  CHECK(spm_piece_type(m, 2) == SPM_UNKNOWN && spm_piece_type(m, 1) == SPM_CONTROL);

  /* truncation keeps the EOS; the padded batch and mask */
  int *full, *cut;
  int nfull = spm_encode_t5(m, corpus[0], 1024, &full);
  int ncut = spm_encode_t5(m, corpus[0], 3, &cut);
  CHECK(nfull > 3);
  CHECK(ncut == 3 && cut[0] == full[0] && cut[1] == full[1] && cut[2] == 1);
  const char *texts[3] = {corpus[0], "", corpus[1]};
  spm_batch b;
  spm_batch_t5(m, texts, 3, 1024, &b);
  CHECK(b.n == 3 && b.lengths[0] == nfull && b.lengths[1] == 1);
  int longest = b.lengths[0] > b.lengths[2] ? b.lengths[0] : b.lengths[2];
  CHECK(b.len == longest);
  for (int t = 0; t < b.len; t++) {
    CHECK(b.mask[t] == (t < nfull));
    CHECK(b.ids[t] == (t < nfull ? full[t] : 0));
    CHECK(b.mask[b.len + t] == (t == 0) && b.ids[b.len + t] == (t == 0 ? 1 : 0));
  }
  spm_batch_free(&b);
  free(full);
  free(cut);
  /* an all-whitespace text normalises to nothing: EOS only */
  int *ws;
  CHECK(spm_encode_t5(m, " \t  ", 10, &ws) == 1 && ws[0] == 1);
  free(ws);
  spm_free(m);
}

/* Byte fallback, user-defined pieces (matched before normalisation), NFKC. */
static void t_byte_fallback_user_defined(void) {
  spm_model *m = train_and_compare("bytes",
                                   "--vocab_size=800 --byte_fallback=true --character_coverage=0.98 "
                                   "--normalization_rule_name=nfkc "
                                   "'--user_defined_symbols=<extra_id_0>,drawer,\xef\xbc\xb8'");
  if (!m) return;
  int found = 0;
  for (int i = 0; i < spm_vocab_size(m); i++) found += spm_piece_type(m, i) == SPM_BYTE;
  CHECK(found == 256);
  spm_free(m);
}

/* No normalisation rules, whitespace kept, whitespace as a suffix. */
static void t_identity_whitespace_suffix(void) {
  spm_model *m = train_and_compare("identity",
                                   "--vocab_size=500 --normalization_rule_name=identity "
                                   "--remove_extra_whitespaces=false --treat_whitespace_as_suffix=true");
  spm_free(m);
}

/* No dummy prefix. */
static void t_no_dummy_prefix(void) {
  spm_free(train_and_compare("noprefix", "--vocab_size=400 --add_dummy_prefix=false"));
}

/* Loading garbage fails with a message naming the file. */
static void t_bad_files(void) {
  const unsigned char junk[] = {0x0a, 0x05, 0x0a, 0x03, 'a'};   /* truncated piece message */
  spm_model *m = spm_parse(junk, sizeof junk, "junk.model");
  CHECK(m == NULL && strstr(rdt_error(), "junk.model") != NULL);
  const char text[] = "this is not a protobuf";
  CHECK(spm_parse(text, sizeof text, "text.model") == NULL);
  CHECK(spm_load("/nonexistent/spiece.model") == NULL);
}

int main(void) {
  if (!run("command -v spm_train >/dev/null && command -v spm_encode >/dev/null")) {
    fprintf(stderr, "spm_train/spm_encode not found: install Debian's 'sentencepiece' package\n");
    return 1;
  }
  setup();
  RUN(t_t5_like_model);
  RUN(t_byte_fallback_user_defined);
  RUN(t_identity_whitespace_suffix);
  RUN(t_no_dummy_prefix);
  RUN(t_bad_files);
  if (!test_failures_) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    run(cmd);
  }
  for (int i = 0; i < ncorpus; i++) free(corpus[i]);
  for (int i = 0; i < nsentences; i++) free(sentences[i]);
  free(corpus);
  free(sentences);
  return test_done();
}
