/* tests/core/json_test.c: the JSON reader on valid and invalid corpora; the writer's exact text. */
#include "test.h"
#include "core/error.h"
#include "core/json.h"

static rdt_json *parse(const char *s) { return rdt_json_parse(s, strlen(s)); }

static void t_scalars(void) {
  rdt_json *j = parse(" [true, false, null, -0, 1e-4, 1E+2, 0.5, \"x\"] ");
  CHECK(j && j->type == RDT_JSON_ARRAY && j->count == 8);
  if (!j) return;
  CHECK(j->items[0].type == RDT_JSON_BOOL && j->items[0].boolean == 1);
  CHECK(j->items[1].type == RDT_JSON_BOOL && j->items[1].boolean == 0);
  CHECK(j->items[2].type == RDT_JSON_NULL);
  CHECK(j->items[3].type == RDT_JSON_NUMBER && j->items[3].number == 0 && signbit(j->items[3].number));
  CHECK(j->items[4].number == 1e-4);
  CHECK(j->items[5].number == 100.0);
  CHECK(j->items[6].number == 0.5);
  CHECK(j->items[7].type == RDT_JSON_STRING && strcmp(j->items[7].string, "x") == 0);
  rdt_json_free(j);
}

static void t_objects(void) {
  rdt_json *j = parse("{\"a\": {\"b\": [1, 2, {\"c\": \"d\"}]}, \"e\": {}, \"f\": []}");
  CHECK(j && j->type == RDT_JSON_OBJECT && j->count == 3);
  if (!j) return;
  const rdt_json *b = rdt_json_get(rdt_json_get(j, "a"), "b");
  CHECK(b && b->type == RDT_JSON_ARRAY && b->count == 3);
  CHECK(strcmp(rdt_json_get(rdt_json_at(b, 2), "c")->string, "d") == 0);
  CHECK(rdt_json_get(j, "e")->type == RDT_JSON_OBJECT && rdt_json_get(j, "e")->count == 0);
  CHECK(rdt_json_get(j, "f")->type == RDT_JSON_ARRAY && rdt_json_get(j, "f")->count == 0);
  CHECK(rdt_json_get(j, "zz") == NULL);
  CHECK(rdt_json_at(b, 3) == NULL && rdt_json_at(b, -1) == NULL);
  CHECK(strcmp(j->items[1].key, "e") == 0);
  rdt_json_free(j);
}

/* Escapes: hand-encoded UTF-8 of U+00E9, U+20AC and U+1F600 (a surrogate pair). */
static void t_string_escapes(void) {
  rdt_json *j = parse("\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\\u00e9\\u20AC\\ud83d\\ude00\xc3\xa9\"");
  CHECK(j && j->type == RDT_JSON_STRING);
  if (!j) return;
  const char want[] = "a\"b\\c/d\b\f\n\r\t\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xc3\xa9";
  CHECK(strcmp(j->string, want) == 0);
  rdt_json_free(j);
}

static void t_int64(void) {
  rdt_json *j = parse("[9007199254740993, -9223372036854775808, 9223372036854775808, 1.5, 2.0, 1e3]");
  int64_t v = 0;
  CHECK(rdt_json_int64(&j->items[0], &v) == 0 && v == 9007199254740993LL);   /* beyond 2^53: exact */
  CHECK(rdt_json_int64(&j->items[1], &v) == 0 && v == INT64_MIN);
  CHECK(rdt_json_int64(&j->items[2], &v) == -1);                             /* overflow */
  CHECK(rdt_json_int64(&j->items[3], &v) == -1);                             /* fraction */
  CHECK(rdt_json_int64(&j->items[4], &v) == 0 && v == 2);
  CHECK(rdt_json_int64(&j->items[5], &v) == 0 && v == 1000);
  rdt_json_free(j);
}

/* Each invalid document fails, and the message carries the expected position. */
static void t_invalid_corpus(void) {
  static const struct { const char *text, *where; } bad[] = {
    {"", "line 1 column 1"},          {"01", "line 1 column 2"},      {"1.", "line 1 column 1"},
    {".5", "line 1 column 1"},        {"+1", "line 1 column 1"},      {"[1,]", "line 1 column 4"},
    {"{\"a\" 1}", "line 1 column 6"}, {"{a:1}", "line 1 column 2"},   {"\"\\x\"", "line 1 column 3"},
    {"\"\\ud800\"", "line 1 column 8"}, {"\"\\udc00\"", "line 1 column 8"}, {"\"abc", "line 1 column 5"},
    {"tru", "line 1 column 1"},       {"1 2", "line 1 column 3"},     {"\"\t\"", "line 1 column 2"},
    {"\"\xc0\xaf\"", "line 1 column 2"}, {"\"\xed\xa0\x80\"", "line 1 column 2"}, {"NaN", "line 1 column 1"},
    {"Infinity", "line 1 column 1"},  {"1e400", "line 1 column 1"},   {"[1 2]", "line 1 column 4"},
    {"{\n  \"a\": tru\n}", "line 2 column 8"}, {"{\"a\":1,}", "line 1 column 8"}, {"[\"\\u12\"]", "line 1 column 5"},
    {"\"\\u0000\"", "line 1 column 8"}, {"-", "line 1 column 1"}, {"1e", "line 1 column 1"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    rdt_json *j = parse(bad[i].text);
    CHECK_MSG(j == NULL, "accepted invalid document #%zu", i);
    rdt_json_free(j);
    CHECK_MSG(strstr(rdt_error(), bad[i].where) != NULL, "#%zu: '%s' lacks '%s'", i, rdt_error(), bad[i].where);
  }
  /* An embedded NUL byte is not whitespace. */
  CHECK(rdt_json_parse("[1]\0", 4) == NULL);
}

static void t_depth_limit(void) {
  char deep[200];
  memset(deep, '[', 64);
  memset(deep + 64, ']', 64);
  deep[128] = 0;
  rdt_json *j = parse(deep);
  CHECK(j != NULL);   /* 64 levels: accepted */
  rdt_json_free(j);
  memset(deep, '[', 65);
  memset(deep + 65, ']', 65);
  deep[130] = 0;
  CHECK(parse(deep) == NULL && strstr(rdt_error(), "nesting"));
}

static void t_writer_compact(void) {
  rdt_jw w;
  jw_init(&w, 0);
  jw_obj(&w);
  jw_key(&w, "name");
  jw_str(&w, "a\"b\n\x01");
  jw_key(&w, "n");
  jw_int(&w, -42);
  jw_key(&w, "x");
  jw_num(&w, 0.1);
  jw_key(&w, "lr");
  jw_num(&w, 1e-4);
  jw_key(&w, "f");
  jw_float(&w, 0.1f);
  jw_key(&w, "bad");
  jw_num(&w, NAN);
  jw_key(&w, "list");
  jw_arr(&w);
  jw_bool(&w, 1);
  jw_null(&w);
  jw_raw(&w, "{\"k\":[]}");
  jw_arr_end(&w);
  jw_key(&w, "empty");
  jw_obj(&w);
  jw_obj_end(&w);
  jw_obj_end(&w);
  char *s = jw_finish(&w);
  const char *want = "{\"name\":\"a\\\"b\\n\\u0001\",\"n\":-42,\"x\":0.1,\"lr\":0.0001,\"f\":0.1,"
                     "\"bad\":null,\"list\":[true,null,{\"k\":[]}],\"empty\":{}}";
  CHECK_MSG(strcmp(s, want) == 0, "got %s", s);
  rdt_json *j = parse(s);
  CHECK(j && strcmp(rdt_json_get(j, "name")->string, "a\"b\n\x01") == 0);
  rdt_json_free(j);
  free(s);
}

static void t_writer_pretty(void) {
  rdt_jw w;
  jw_init(&w, 1);
  jw_obj(&w);
  jw_key(&w, "a");
  jw_arr(&w);
  jw_int(&w, 1);
  jw_int(&w, 2);
  jw_arr_end(&w);
  jw_key(&w, "b");
  jw_arr(&w);
  jw_arr_end(&w);
  jw_obj_end(&w);
  char *s = jw_finish(&w);
  const char *want = "{\n  \"a\": [\n    1,\n    2\n  ],\n  \"b\": []\n}";
  CHECK_MSG(strcmp(s, want) == 0, "got %s", s);
  free(s);
}

/* Doubles print so that they read back bit for bit. */
static void t_writer_round_trip_numbers(void) {
  const double v[] = {1.0 / 3.0, 2.0 / 3.0, 1e-300, 5e-324, 1.7976931348623157e308, 123456789.123456789, -0.0};
  rdt_jw w;
  jw_init(&w, 0);
  jw_arr(&w);
  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) jw_num(&w, v[i]);
  jw_arr_end(&w);
  char *s = jw_finish(&w);
  rdt_json *j = parse(s);
  CHECK(j && j->count == (int)(sizeof v / sizeof v[0]));
  for (int i = 0; j && i < j->count; i++) CHECK(memcmp(&j->items[i].number, &v[i], sizeof(double)) == 0);
  rdt_json_free(j);
  free(s);
}

/* A parsed document written back with jw_value gives the same compact text
 * (member order kept, integers beyond 2^53 and exponents as written). */
static void t_writer_value(void) {
  const char *text = "{\"b\":[1,2.5,-3e-07,true,null],\"a\":{\"big\":9007199254740993,\"s\":\"x\\\"y\"},\"e\":[]}";
  rdt_json *j = rdt_json_parse(text, strlen(text));
  CHECK(j != NULL);
  if (!j) return;
  rdt_jw w;
  jw_init(&w, 0);
  jw_value(&w, j);
  char *out = jw_finish(&w);
  CHECK_MSG(strcmp(out, text) == 0, "got %s", out);
  free(out);
  rdt_json_free(j);
}

int main(void) {
  RUN(t_scalars);
  RUN(t_objects);
  RUN(t_string_escapes);
  RUN(t_int64);
  RUN(t_invalid_corpus);
  RUN(t_depth_limit);
  RUN(t_writer_compact);
  RUN(t_writer_pretty);
  RUN(t_writer_round_trip_numbers);
  RUN(t_writer_value);
  return test_done();
}
