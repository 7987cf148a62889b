/* tests/core/config_test.c: YAML loading, typing, dotted keys, overrides, type errors, syntax errors. */
#include "test.h"
#include "core/config.h"
#include "core/error.h"
#include "core/json.h"

static rdt_config *parse(const char *text) { return rdt_config_parse(text, strlen(text), "test.yaml"); }

/* Values of the upstream base.yaml (RDT-1B). */
static void t_base_yaml(void) {
  char path[4096];
  snprintf(path, sizeof path, "%s/configs/base.yaml", getenv("RDT_SOURCE_DIR") ? getenv("RDT_SOURCE_DIR") : "..");
  rdt_config *c = rdt_config_load(path);
  CHECK_MSG(c != NULL, "%s", rdt_error());
  if (!c) return;
  CHECK(rdt_config_int(c, "common.action_chunk_size", 0) == 64);
  CHECK(rdt_config_int(c, "common.state_dim", 0) == 128);
  CHECK(rdt_config_int(c, "model.rdt.hidden_size", 0) == 2048);
  CHECK(rdt_config_int(c, "model.rdt.depth", 0) == 28);
  CHECK(rdt_config_int(c, "model.noise_scheduler.num_train_timesteps", 0) == 1000);
  CHECK(strcmp(rdt_config_str(c, "model.noise_scheduler.beta_schedule", ""), "squaredcos_cap_v2") == 0);
  CHECK(rdt_config_bool(c, "model.noise_scheduler.clip_sample", 1) == 0);   /* "False" */
  CHECK(rdt_config_check(c) == 0);
  CHECK(strcmp(rdt_config_path(c), path) == 0);
  rdt_config_free(c);
}

static void t_scalar_typing(void) {
  rdt_config *c = parse("i: 42\nneg: -7\nhex: 0x1F\nf: 1.5\nsci: 1e-4\nsci2: 2.5E+3\ninf: -.inf\n"
                        "t: True\nf2: false\nn: ~\nn2: null\nempty:\nq1: '12'\nq2: \"true\"\nword: hello world\n"
                        "ver: 1.2.3\nblock: |\n  line one\n  line two\ntagged: !!str 7\n");
  CHECK_MSG(c != NULL, "%s", rdt_error());
  if (!c) return;
  int64_t i;
  double f;
  int b;
  const char *s;
  CHECK(rdt_config_get_int(c, "i", &i) == 0 && i == 42);
  CHECK(rdt_config_get_int(c, "neg", &i) == 0 && i == -7);
  CHECK(rdt_config_get_int(c, "hex", &i) == 0 && i == 31);
  CHECK(rdt_config_get_float(c, "f", &f) == 0 && f == 1.5);
  CHECK(rdt_config_get_float(c, "sci", &f) == 0 && f == 1e-4);
  CHECK(rdt_config_get_float(c, "sci2", &f) == 0 && f == 2500.0);
  CHECK(rdt_config_get_float(c, "inf", &f) == 0 && isinf(f) && f < 0);
  CHECK(rdt_config_get_float(c, "i", &f) == 0 && f == 42.0);   /* ints read as floats */
  CHECK(rdt_config_get_bool(c, "t", &b) == 0 && b == 1);
  CHECK(rdt_config_get_bool(c, "f2", &b) == 0 && b == 0);
  CHECK(rdt_config_get_int(c, "n", &i) == 1 && rdt_config_get_str(c, "n2", &s) == 1);   /* null = absent */
  CHECK(rdt_config_int(c, "empty", 9) == 9 && !rdt_config_has(c, "empty"));
  CHECK(rdt_config_get_int(c, "q1", &i) == -1);                     /* quoted: a string */
  CHECK(rdt_config_get_str(c, "q1", &s) == 0 && !strcmp(s, "12"));
  CHECK(rdt_config_get_bool(c, "q2", &b) == -1);
  CHECK(rdt_config_get_str(c, "word", &s) == 0 && !strcmp(s, "hello world"));
  CHECK(rdt_config_get_str(c, "ver", &s) == 0 && !strcmp(s, "1.2.3"));
  CHECK(rdt_config_get_float(c, "ver", &f) == -1);
  CHECK(rdt_config_get_str(c, "block", &s) == 0 && !strcmp(s, "line one\nline two\n"));
  CHECK(rdt_config_get_int(c, "tagged", &i) == -1);
  CHECK(rdt_config_get_str(c, "i", &s) == 0 && !strcmp(s, "42"));  /* any scalar reads as its text */
  CHECK(rdt_config_get_int(c, "absent", &i) == 1);
  rdt_config_free(c);
}

static void t_tree_access(void) {
  rdt_config *c = parse("model:\n  rdt: {depth: 2, heads: 4}\n  sizes: [3, 5, 7]\n  \"a.b\": 9\n"
                        "list:\n  - name: x\n  - name: y\n");
  CHECK(c != NULL);
  if (!c) return;
  CHECK(rdt_config_int(c, "model.rdt.depth", 0) == 2);
  CHECK(rdt_config_int(c, "model.sizes.2", 0) == 7);
  CHECK(rdt_config_len(c, "model.sizes") == 3);
  CHECK(rdt_config_len(c, "model.rdt") == 2);
  CHECK(rdt_config_len(c, "model.rdt.depth") == -1 && rdt_config_len(c, "nope") == -1);
  CHECK(strcmp(rdt_config_key_at(c, "model.rdt", 1), "heads") == 0);
  CHECK(rdt_config_key_at(c, "model.rdt", 2) == NULL && rdt_config_key_at(c, "model.sizes", 0) == NULL);
  CHECK(strcmp(rdt_config_key_at(c, "", 0), "model") == 0);
  CHECK(rdt_config_int(c, "model.a.b", 0) == 9);                 /* a key holding a dot */
  CHECK(strcmp(rdt_config_str(c, "list.1.name", ""), "y") == 0);
  CHECK(!rdt_config_has(c, "model.sizes.3") && !rdt_config_has(c, "model.sizes.x"));
  CHECK(rdt_config_has(c, "model.rdt"));
  rdt_config_free(c);
}

static void t_overrides(void) {
  rdt_config *c = parse("model:\n  rdt:\n    depth: 28\n  name: big\n");
  CHECK(rdt_config_set(c, "model.rdt.depth", "2") == 0);
  CHECK(rdt_config_int(c, "model.rdt.depth", 0) == 2);
  CHECK(rdt_config_set(c, "train.lr", "1e-4") == 0);               /* creates train: */
  CHECK(rdt_config_float(c, "train.lr", 0) == 1e-4);
  CHECK(rdt_config_set(c, "train.deep.er.flag", "true") == 0);
  CHECK(rdt_config_bool(c, "train.deep.er.flag", 0) == 1);
  CHECK(rdt_config_set(c, "model.name", "small#1") == 0);          /* no comment stripping */
  CHECK(strcmp(rdt_config_str(c, "model.name", ""), "small#1") == 0);
  CHECK(rdt_config_set(c, "model.sizes", "[1, 2, 3]") == 0);
  CHECK(rdt_config_len(c, "model.sizes") == 3 && rdt_config_int(c, "model.sizes.1", 0) == 2);
  CHECK(rdt_config_set(c, "model.sizes.0", "9") == 0 && rdt_config_int(c, "model.sizes.0", 0) == 9);
  CHECK(rdt_config_set(c, "model.sizes.5", "9") == -1);            /* no such item */
  CHECK(rdt_config_set(c, "model.name.sub", "1") == -1 && strstr(rdt_error(), "model.name"));
  CHECK(rdt_config_set(c, "model.bad", "[1, 2") == -1 && strstr(rdt_error(), "override --model.bad"));
  rdt_config *e = rdt_config_new();
  CHECK(rdt_config_set(e, "a.b", "x") == 0 && strcmp(rdt_config_str(e, "a.b", ""), "x") == 0);
  rdt_config_free(e);
  rdt_config_free(c);
}

static void t_wrong_types(void) {
  rdt_config *c = parse("model:\n  rdt:\n    depth: deep\n    rate: [1]\n");
  CHECK(rdt_config_int(c, "model.rdt.depth", 5) == 5);             /* default, problem recorded */
  CHECK(rdt_config_float(c, "model.rdt.rate", 1) == 1);
  CHECK(rdt_config_check(c) == -1);
  CHECK_MSG(strstr(rdt_error(), "test.yaml:3: model.rdt.depth should be an integer, got string 'deep'"), "%s", rdt_error());
  int64_t v;
  CHECK(rdt_config_get_int(c, "model.rdt", &v) == -1 && strstr(rdt_error(), "mapping"));
  rdt_config_free(c);
}

/* Syntax errors name the file, line and column (1-based). */
static void t_syntax_errors(void) {
  static const struct { const char *text, *where; } bad[] = {
    {"a: 1\nb: c: d\n", "test.yaml:2:5: mapping values are not allowed"},
    {"a:\n\tb: 1\n", "test.yaml:2:1:"},
    {"a: [1, 2\nb: 3\n", "test.yaml:"},
    {"a: 1\na: 2\n", "test.yaml:2: duplicate key 'a'"},
    {"a: &x 1\nb: *x\n", "test.yaml:2:4: aliases are not supported"},
    {"a: 1\n---\nb: 2\n", "only one YAML document"},
    {"- 1\n- 2\n", "not a mapping"},
    {"a: \"unterminated\n", "test.yaml:"},
    {"? [1]\n: 2\n", "test.yaml:1:3: mapping keys"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    rdt_config *c = parse(bad[i].text);
    CHECK_MSG(c == NULL, "#%zu accepted", i);
    rdt_config_free(c);
    CHECK_MSG(strstr(rdt_error(), bad[i].where), "#%zu: %s", i, rdt_error());
  }
  CHECK(rdt_config_load("/nonexistent.yaml") == NULL && strstr(rdt_error(), "/nonexistent.yaml"));
  rdt_config *c = parse("# only a comment\n");
  CHECK(c && rdt_config_len(c, "") == 0);
  rdt_config_free(c);
  c = parse("");
  CHECK(c && rdt_config_len(c, "") == 0);
  rdt_config_free(c);
}

static void t_to_json(void) {
  rdt_config *c = parse("a: {b: 1, c: [true, null, 2.5, x]}\nd: '3'\n");
  char *s = rdt_config_to_json(c);
  rdt_json *j = rdt_json_parse(s, strlen(s));
  CHECK_MSG(j != NULL, "%s", s);
  if (j) {
    const rdt_json *a = rdt_json_get(j, "a"), *arr = rdt_json_get(a, "c");
    CHECK(rdt_json_get(a, "b")->type == RDT_JSON_NUMBER && rdt_json_get(a, "b")->number == 1);
    CHECK(arr && arr->count == 4 && arr->items[0].type == RDT_JSON_BOOL && arr->items[1].type == RDT_JSON_NULL);
    CHECK(arr && arr->items[2].number == 2.5 && !strcmp(arr->items[3].string, "x"));
    CHECK(rdt_json_get(j, "d")->type == RDT_JSON_STRING);
  }
  rdt_json_free(j);
  free(s);
  rdt_config_free(c);
}

int main(void) {
  RUN(t_base_yaml);
  RUN(t_scalar_typing);
  RUN(t_tree_access);
  RUN(t_overrides);
  RUN(t_wrong_types);
  RUN(t_syntax_errors);
  RUN(t_to_json);
  return test_done();
}
