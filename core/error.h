/* core/error.h: one path for errors.
 *
 * Functions that can fail return -1 (or NULL) and record one message in a
 * thread-local buffer with rdt_fail(); the caller reads it with rdt_error().
 * Messages name the file and the problem, e.g. "model.safetensors: header
 * length 9e9 exceeds file size 1024".  Commands print it once and exit 1.
 */
#ifndef RDT_ERROR_H
#define RDT_ERROR_H

#include <stdarg.h>
#include <stddef.h>

#if defined(__GNUC__)
#define RDT_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define RDT_NORETURN __attribute__((noreturn))
#else
#define RDT_PRINTF(a, b)
#define RDT_NORETURN
#endif

/* Record a message for this thread; always returns -1. */
int rdt_fail(const char *fmt, ...) RDT_PRINTF(1, 2);

/* Like rdt_fail, but prefixes the message already recorded with new context:
 * rdt_fail_ctx("config.yaml") turns "line 3: bad" into "config.yaml: line 3: bad". */
int rdt_fail_ctx(const char *fmt, ...) RDT_PRINTF(1, 2);

/* The last message recorded on this thread ("" if none). */
const char *rdt_error(void);

/* Forget the recorded message. */
void rdt_error_clear(void);

/* Print "rdt: error: MSG" to stderr and exit(1).  For command-line code only. */
void rdt_die(const char *fmt, ...) RDT_PRINTF(1, 2) RDT_NORETURN;

/* Print "rdt: error: <last recorded message>" and exit(1). */
void rdt_die_last(void) RDT_NORETURN;

/* Return -1 with a message when cond is false. */
#define RDT_CHECK(cond, ...) do { if (!(cond)) return rdt_fail(__VA_ARGS__); } while (0)

/* Abort with file and line for an internal invariant or a failed allocation. */
#define RDT_ASSERT(cond) do { if (!(cond)) rdt_internal_error(__FILE__, __LINE__, #cond); } while (0)
void rdt_internal_error(const char *file, int line, const char *what) RDT_NORETURN;

/* Allocation that never returns NULL (exits with a message naming the size). */
void *rdt_malloc(size_t n);
void *rdt_calloc(size_t n, size_t size);
void *rdt_realloc(void *p, size_t n);
char *rdt_strdup(const char *s);

#endif
