/* tests/core/fsutil_test.c: atomic writes, folder listing, paths. */
#include <sys/stat.h>
#include "test.h"
#include "core/error.h"
#include "core/fsutil.h"

static const char *dir;

static void t_atomic_write_and_read(void) {
  char *p = rdt_path_join(dir, "a.txt");
  CHECK(rdt_write_file_atomic(p, "hello", 5) == 0);
  size_t n = 0;
  char *s = rdt_read_file(p, &n);
  CHECK(s && n == 5 && strcmp(s, "hello") == 0);   /* NUL-terminated */
  free(s);
  CHECK(rdt_write_file_atomic(p, "bye", 3) == 0);   /* replaces */
  s = rdt_read_file(p, &n);
  CHECK(s && n == 3 && strcmp(s, "bye") == 0);
  free(s);
  /* No temporary left behind. */
  char **names;
  int count = rdt_list_dir(dir, ".txt", &names);
  CHECK(count == 1);
  for (int i = 0; i < count; i++) free(names[i]);
  free(names);
  free(p);
}

/* A write that cannot happen (target is a folder) fails and keeps what was there. */
static void t_atomic_write_failure_keeps_old(void) {
  char *sub = rdt_path_join(dir, "sub");
  CHECK(rdt_mkdirs(sub) == 0);
  char *inner = rdt_path_join(sub, "keep");
  CHECK(rdt_write_file_atomic(inner, "x", 1) == 0);
  CHECK(rdt_write_file_atomic(sub, "data", 4) == -1);   /* rename onto a non-empty folder */
  CHECK(strstr(rdt_error(), sub) != NULL);
  CHECK(rdt_is_dir(sub) && rdt_is_file(inner));
  char *missing = rdt_path_join(dir, "no/such/folder/f");
  CHECK(rdt_write_file_atomic(missing, "x", 1) == -1);
  free(missing);
  free(inner);
  free(sub);
}

static void t_map_file(void) {
  char *p = rdt_path_join(dir, "m.bin"), *e = rdt_path_join(dir, "empty.bin");
  CHECK(rdt_write_file_atomic(p, "abcdef", 6) == 0 && rdt_write_file_atomic(e, "", 0) == 0);
  size_t n = 0;
  char *m = rdt_map_file(p, &n);
  CHECK(m && n == 6 && memcmp(m, "abcdef", 6) == 0);
  rdt_unmap_file(m, n);
  m = rdt_map_file(e, &n);
  CHECK(m != NULL && n == 0);
  rdt_unmap_file(m, n);
  CHECK(rdt_map_file(dir, &n) == NULL && strstr(rdt_error(), "not a regular file"));
  CHECK(rdt_map_file("/nonexistent/x", &n) == NULL && strstr(rdt_error(), "/nonexistent/x"));
  free(p);
  free(e);
}

static void t_list_dir_sorted(void) {
  char *d = rdt_path_join(dir, "list");
  CHECK(rdt_mkdirs(d) == 0);
  const char *files[] = {"c.bin", "a.bin", "b.txt", "b.bin"};
  for (int i = 0; i < 4; i++) {
    char *p = rdt_path_join(d, files[i]);
    CHECK(rdt_write_file_atomic(p, "", 0) == 0);
    free(p);
  }
  char **names;
  int n = rdt_list_dir(d, ".bin", &names);
  CHECK(n == 3);
  if (n == 3) CHECK(!strcmp(names[0], "a.bin") && !strcmp(names[1], "b.bin") && !strcmp(names[2], "c.bin"));
  for (int i = 0; i < n; i++) free(names[i]);
  free(names);
  n = rdt_list_dir(d, "", &names);
  CHECK(n == 4);
  for (int i = 0; i < n; i++) free(names[i]);
  free(names);
  CHECK(rdt_list_dir("/nonexistent/folder", "", &names) == -1);
  free(d);
}

static void t_mkdirs_and_rmtree(void) {
  char *deep = rdt_path_join(dir, "x/y/z/");
  CHECK(rdt_mkdirs(deep) == 0 && rdt_is_dir(deep));
  CHECK(rdt_mkdirs(deep) == 0);   /* exists: fine */
  char *f = rdt_path_join(deep, "f");
  CHECK(rdt_write_file_atomic(f, "1", 1) == 0);
  CHECK(rdt_mkdirs(f) == -1);     /* a file in the way */
  char *top = rdt_path_join(dir, "x");
  CHECK(rdt_rmtree(top) == 0 && !rdt_is_dir(top));
  CHECK(rdt_rmtree(top) == 0);    /* absent: fine */
  free(top);
  free(f);
  free(deep);
}

static void t_paths(void) {
  char *s = rdt_path_join("a", "b");
  CHECK(!strcmp(s, "a/b"));
  free(s);
  s = rdt_path_join("a/", "b");
  CHECK(!strcmp(s, "a/b"));
  free(s);
  CHECK(!strcmp(rdt_basename("/x/y/z.bin"), "z.bin") && !strcmp(rdt_basename("z"), "z"));
  s = rdt_dirname("/x/y/z.bin");
  CHECK(!strcmp(s, "/x/y"));
  free(s);
  s = rdt_dirname("z.bin");
  CHECK(!strcmp(s, "."));
  free(s);
  s = rdt_dirname("/z");
  CHECK(!strcmp(s, "/"));
  free(s);
  CHECK(rdt_read_file("/nonexistent/file", NULL) == NULL && strstr(rdt_error(), "/nonexistent/file"));
}

int main(void) {
  dir = test_tmpdir("fsutil");
  RUN(t_atomic_write_and_read);
  RUN(t_atomic_write_failure_keeps_old);
  RUN(t_map_file);
  RUN(t_list_dir_sorted);
  RUN(t_mkdirs_and_rmtree);
  RUN(t_paths);
  rdt_rmtree(dir);
  return test_done();
}
