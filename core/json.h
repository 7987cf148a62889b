/* core/json.h: a small JSON reader (DOM) and writer.
 *
 * The reader is strict RFC 8259 with a depth limit, used for safetensors
 * headers, config.json, dataset statistics and results files.  The writer
 * appends to a growing buffer; numbers are printed so that they read back
 * exactly (%.17g for doubles, %.9g via jw_float for floats).
 */
#ifndef RDT_JSON_H
#define RDT_JSON_H

#include <stddef.h>
#include <stdint.h>

typedef enum { RDT_JSON_NULL, RDT_JSON_BOOL, RDT_JSON_NUMBER, RDT_JSON_STRING,
               RDT_JSON_ARRAY, RDT_JSON_OBJECT } rdt_json_type;

typedef struct rdt_json rdt_json;
struct rdt_json {
  rdt_json_type type;
  int boolean;
  double number;
  const char *raw;   /* number token text (exact integers beyond 2^53) */
  char *string;      /* STRING value */
  char *key;         /* the member name, for children of an OBJECT (else NULL) */
  int count;         /* ARRAY/OBJECT children */
  rdt_json *items;   /* children, in document order */
};

/* Parse text; NULL + rdt_error() "line L column C: ..." on failure. */
rdt_json *rdt_json_parse(const char *text, size_t len);
rdt_json *rdt_json_load(const char *path);   /* parse a file; errors name it */
void rdt_json_free(rdt_json *j);

const rdt_json *rdt_json_get(const rdt_json *obj, const char *key);   /* NULL if absent */
const rdt_json *rdt_json_at(const rdt_json *arr, int i);
/* Exact int64 from a NUMBER (rejects fractions and overflow): 0 or -1. */
int rdt_json_int64(const rdt_json *j, int64_t *out);

/* ---- writer ---- */
typedef struct {
  char *buf;
  size_t len, cap;
  int depth;
  int pretty;
  unsigned char first[64];   /* per depth: no comma needed yet */
  int after_key;
} rdt_jw;

void jw_init(rdt_jw *w, int pretty);
void jw_obj(rdt_jw *w);          /* { */
void jw_obj_end(rdt_jw *w);      /* } */
void jw_arr(rdt_jw *w);          /* [ */
void jw_arr_end(rdt_jw *w);      /* ] */
void jw_key(rdt_jw *w, const char *k);
void jw_str(rdt_jw *w, const char *s);
void jw_int(rdt_jw *w, int64_t v);
void jw_num(rdt_jw *w, double v);   /* NaN/Inf written as null */
void jw_float(rdt_jw *w, float v);
void jw_bool(rdt_jw *w, int v);
void jw_null(rdt_jw *w);
void jw_raw(rdt_jw *w, const char *json);  /* an already-encoded value */
void jw_value(rdt_jw *w, const rdt_json *j);  /* a parsed value, numbers as written */
/* Return the text (caller frees) and reset the writer. */
char *jw_finish(rdt_jw *w);
void jw_free(rdt_jw *w);

#endif
