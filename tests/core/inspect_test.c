/* tests/core/inspect_test.c: `rdt inspect` on good files (table and JSON) and on
 * broken ones (truncated, header lying about offsets, non-JSON header): a
 * one-line error naming the file, exit 1, no crash and no sanitizer report. */
#include "test.h"
#include "core/fsutil.h"
#include "core/json.h"
#include "core/safetensors.h"

static const char *dir;
static char out[1 << 16];

/* Run `rdt inspect ARGS`, capturing stdout and stderr; the exit code, or 128 + signal. */
static int inspect(const char *args) {
  char cmd[8192];
  snprintf(cmd, sizeof cmd, "'%s' inspect %s", test_rdt_bin(), args);
  return test_capture(cmd, out, sizeof out);
}

static void write_bytes(const char *path, const void *data, size_t n) { CHECK(rdt_write_file_atomic(path, data, n) == 0); }

/* A header with a little-endian length prefix. */
static void write_header_file(const char *path, const char *header, size_t extra) {
  size_t hl = strlen(header);
  unsigned char b[4096] = {0};
  for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)hl >> (8 * i));
  memcpy(b + 8, header, hl);
  write_bytes(path, b, 8 + hl + extra);
}

static void check_one_line_error(const char *path, const char *problem) {
  char args[4200];
  snprintf(args, sizeof args, "'%s'", path);
  int rc = inspect(args);
  CHECK_MSG(rc == 1, "%s: exit %d", path, rc);
  char want[4200];
  snprintf(want, sizeof want, "rdt: error: %s: ", path);
  CHECK_MSG(strncmp(out, want, strlen(want)) == 0, "got: %s", out);
  CHECK_MSG(strstr(out, problem) != NULL, "got: %s", out);
  size_t len = strlen(out);
  CHECK_MSG(len > 0 && out[len - 1] == '\n' && strchr(out, '\n') == out + len - 1, "not one line: %s", out);
  CHECK(!strstr(out, "Sanitizer") && !strstr(out, "runtime error"));
}

static void t_broken_files(void) {
  char *trunc = rdt_path_join(dir, "truncated.safetensors");
  char *lying = rdt_path_join(dir, "lying.safetensors");
  char *nonjson = rdt_path_join(dir, "nonjson.safetensors");
  char *cut = rdt_path_join(dir, "cut.safetensors");
  write_bytes(trunc, "\x40\0\0\0", 4);
  write_header_file(lying, "{\"w\":{\"dtype\":\"F32\",\"shape\":[1000],\"data_offsets\":[0,4000]}}", 16);
  write_header_file(nonjson, "this is not JSON at all", 8);
  write_header_file(cut, "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 16);
  CHECK(truncate(cut, 30) == 0);   /* cut inside the header */
  check_one_line_error(trunc, "too short");
  check_one_line_error(lying, "past the end");
  check_one_line_error(nonjson, "not valid JSON");
  check_one_line_error(cut, "exceeds the file size");
  check_one_line_error("/nonexistent/model.safetensors", "cannot open");
  free(trunc);
  free(lying);
  free(nonjson);
  free(cut);
}

static void t_listing(void) {
  char *p = rdt_path_join(dir, "model.safetensors");
  static float data[64];
  int64_t s1[2] = {4, 8}, s2[1] = {16}, s3[1] = {16};
  rdt_st_writer *w = rdt_st_writer_new();
  rdt_st_writer_add(w, "blocks.10.w", RDT_F32, 2, s1, data);
  rdt_st_writer_add(w, "blocks.2.w", RDT_BF16, 1, s2, data);
  rdt_st_writer_add(w, "alpha", RDT_I64, 1, s3, data);
  CHECK(rdt_st_writer_save(w, p) == 0);
  rdt_st_writer_free(w);
  char args[4200];
  snprintf(args, sizeof args, "'%s'", dir);   /* the folder form */
  CHECK(inspect(args) == 0);
  const char *a = strstr(out, "alpha"), *b2 = strstr(out, "blocks.2.w"), *b10 = strstr(out, "blocks.10.w");
  CHECK_MSG(a && b2 && b10 && a < b2 && b2 < b10, "%s", out);   /* natural name order */
  CHECK(strstr(out, "3 tensors, 64 parameters"));              /* 32 + 16 + 16 */
  CHECK(b10 && strstr(b10, "F32") && strstr(b10, "[4, 8]"));
  snprintf(args, sizeof args, "'%s' --json", p);
  CHECK(inspect(args) == 0);
  rdt_json *j = rdt_json_parse(out, strlen(out));
  CHECK_MSG(j != NULL, "%s", out);
  if (j) {
    int64_t v;
    CHECK(rdt_json_int64(rdt_json_get(j, "parameters"), &v) == 0 && v == 64);
    CHECK(rdt_json_int64(rdt_json_get(j, "count"), &v) == 0 && v == 3);
    const rdt_json *t = rdt_json_get(j, "tensors");
    CHECK(t && t->count == 3 && !strcmp(rdt_json_get(&t->items[1], "name")->string, "blocks.2.w"));
    CHECK(t && !strcmp(rdt_json_get(&t->items[1], "dtype")->string, "BF16"));
    CHECK(t && rdt_json_get(&t->items[2], "shape")->count == 2);
  }
  rdt_json_free(j);
  CHECK(inspect("--help") == 0 && strstr(out, "--json"));
  CHECK(inspect("") == 1 && strstr(out, "usage"));
  free(p);
}

int main(void) {
  if (!getenv("RDT_BIN")) {
    fprintf(stderr, "RDT_BIN not set\n");
    return 1;
  }
  dir = test_tmpdir("inspect");
  RUN(t_broken_files);
  RUN(t_listing);
  rdt_rmtree(dir);
  return test_done();
}
