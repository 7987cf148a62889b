/* core/error.c: the thread-local error message and fatal exits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"

#define RDT_ERROR_MAX 2048

static _Thread_local char error_buf[RDT_ERROR_MAX];

int rdt_fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(error_buf, sizeof error_buf, fmt, ap);
  va_end(ap);
  return -1;
}

int rdt_fail_ctx(const char *fmt, ...) {
  char prefix[RDT_ERROR_MAX], old[RDT_ERROR_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  memcpy(old, error_buf, sizeof old);
  size_t n = strlen(prefix);
  if (n > RDT_ERROR_MAX / 2) n = RDT_ERROR_MAX / 2;
  memcpy(error_buf, prefix, n);
  error_buf[n++] = ':';
  error_buf[n++] = ' ';
  const char *tail = old[0] ? old : "failed";
  size_t m = strlen(tail);
  if (m > RDT_ERROR_MAX - 1 - n) m = RDT_ERROR_MAX - 1 - n;
  memcpy(error_buf + n, tail, m);
  error_buf[n + m] = 0;
  return -1;
}

const char *rdt_error(void) { return error_buf; }

void rdt_error_clear(void) { error_buf[0] = 0; }

void rdt_die(const char *fmt, ...) {
  va_list ap;
  fflush(stdout);
  fputs("rdt: error: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  exit(1);
}

void rdt_die_last(void) { rdt_die("%s", error_buf[0] ? error_buf : "failed (no message)"); }

void rdt_internal_error(const char *file, int line, const char *what) {
  fflush(stdout);
  fprintf(stderr, "rdt: internal error at %s:%d: %s\n", file, line, what);
  abort();
}

static void out_of_memory(size_t n) {
  fflush(stdout);
  fprintf(stderr, "rdt: error: out of memory allocating %zu bytes\n", n);
  exit(1);
}

void *rdt_malloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) out_of_memory(n);
  return p;
}

void *rdt_calloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size ? size : 1);
  if (!p) out_of_memory(n * size);
  return p;
}

void *rdt_realloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (!q) out_of_memory(n);
  return q;
}

char *rdt_strdup(const char *s) {
  size_t n = strlen(s) + 1;
  return memcpy(rdt_malloc(n), s, n);
}
