/* core/json.c: a strict RFC 8259 reader (DOM) and an appending writer. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "core/fsutil.h"
#include "core/json.h"

#define JSON_MAX_DEPTH 64

/* ================================================================ reader */

typedef struct {
  const char *start, *p, *end;
  int depth;
} json_parser;

/* Record "line L column C: message" for the parser's current position. */
static int json_error(const json_parser *P, const char *fmt, ...) RDT_PRINTF(2, 3);
static int json_error(const json_parser *P, const char *fmt, ...) {
  int line = 1, column = 1;
  for (const char *q = P->start; q < P->p; q++) {
    if (*q == '\n') line++, column = 1;
    else column++;
  }
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return rdt_fail("line %d column %d: %s", line, column, msg);
}

static void skip_space(json_parser *P) {
  while (P->p < P->end && (*P->p == ' ' || *P->p == '\t' || *P->p == '\n' || *P->p == '\r')) P->p++;
}

/* Describe the character at the cursor for error messages. */
static const char *found(const json_parser *P, char *buf, size_t len) {
  unsigned char c = P->p < P->end ? (unsigned char)*P->p : 0;
  if (P->p >= P->end) snprintf(buf, len, "end of input");
  else if (c >= 0x20 && c < 0x7f) snprintf(buf, len, "'%c'", c);
  else snprintf(buf, len, "byte 0x%02x", c);
  return buf;
}

static int expect_literal(json_parser *P, const char *word) {
  size_t n = strlen(word);
  if ((size_t)(P->end - P->p) < n || memcmp(P->p, word, n) != 0) {
    char b[32];
    return json_error(P, "unexpected %s", found(P, b, sizeof b));
  }
  P->p += n;
  return 0;
}

/* Append code point cp as UTF-8. */
static size_t put_utf8(char *o, unsigned cp) {
  if (cp < 0x80) return o[0] = (char)cp, 1;
  if (cp < 0x800) return o[0] = (char)(0xc0 | cp >> 6), o[1] = (char)(0x80 | (cp & 0x3f)), 2;
  if (cp < 0x10000) {
    o[0] = (char)(0xe0 | cp >> 12), o[1] = (char)(0x80 | ((cp >> 6) & 0x3f)), o[2] = (char)(0x80 | (cp & 0x3f));
    return 3;
  }
  o[0] = (char)(0xf0 | cp >> 18), o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
  o[2] = (char)(0x80 | ((cp >> 6) & 0x3f)), o[3] = (char)(0x80 | (cp & 0x3f));
  return 4;
}

/* Length of the well-formed UTF-8 sequence at p (at most n bytes), 0 if invalid. */
static size_t utf8_valid(const unsigned char *p, size_t n) {
  unsigned c = p[0], cp, min;
  size_t len;
  if (c < 0x80) return 1;
  if (c >= 0xc2 && c <= 0xdf) len = 2, cp = c & 0x1f, min = 0x80;
  else if (c >= 0xe0 && c <= 0xef) len = 3, cp = c & 0x0f, min = 0x800;
  else if (c >= 0xf0 && c <= 0xf4) len = 4, cp = c & 0x07, min = 0x10000;
  else return 0;
  if (n < len) return 0;
  for (size_t i = 1; i < len; i++) {
    if ((p[i] & 0xc0) != 0x80) return 0;
    cp = cp << 6 | (p[i] & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return len;
}

/* Four hex digits after \u; -1 if malformed. */
static long hex4(const json_parser *P, const char *q) {
  if (P->end - q < 4) return -1;
  long v = 0;
  for (int i = 0; i < 4; i++) {
    char c = q[i];
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

/* A \uXXXX escape (with its low surrogate if any) at the cursor, after the 'u'. */
static int parse_unicode_escape(json_parser *P, unsigned *cp) {
  long hi = hex4(P, P->p);
  if (hi < 0) return json_error(P, "bad \\u escape (need 4 hex digits)");
  P->p += 4;
  if (hi >= 0xdc00 && hi <= 0xdfff) return json_error(P, "lone low surrogate \\u%04lx", hi);
  if (hi >= 0xd800 && hi <= 0xdbff) {
    long lo = P->end - P->p >= 2 && P->p[0] == '\\' && P->p[1] == 'u' ? hex4(P, P->p + 2) : -1;
    if (lo < 0xdc00 || lo > 0xdfff) return json_error(P, "high surrogate \\u%04lx without a low surrogate", hi);
    P->p += 6;
    *cp = 0x10000 + (((unsigned)hi - 0xd800) << 10) + ((unsigned)lo - 0xdc00);
    return 0;
  }
  if (hi == 0) return json_error(P, "\\u0000 is not supported in strings");
  *cp = (unsigned)hi;
  return 0;
}

/* A string at the cursor (on the opening quote) into a malloc'd UTF-8 buffer. */
static int parse_string(json_parser *P, char **out) {
  P->p++;
  const char *q = P->p;
  while (q < P->end && *q != '"' && *q != '\\') q++;
  size_t cap = (size_t)(q - P->p) + 16, n = 0;   /* escapes only shrink the text */
  char *s = rdt_malloc(cap);
  for (;;) {
    if (P->p >= P->end) {
      free(s);
      return json_error(P, "unterminated string");
    }
    unsigned char c = (unsigned char)*P->p;
    if (n + 8 > cap) s = rdt_realloc(s, cap *= 2);
    if (c == '"') break;
    if (c < 0x20) {
      free(s);
      return json_error(P, "control character 0x%02x in string", c);
    }
    if (c == '\\') {
      P->p++;
      char e = P->p < P->end ? *P->p : 0;
      static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
      const char *hit = e ? strchr(from, e) : NULL;
      if (e == 'u') {
        unsigned cp = 0;
        P->p++;
        if (parse_unicode_escape(P, &cp) != 0) {
          free(s);
          return -1;
        }
        n += put_utf8(s + n, cp);
        continue;
      }
      if (!hit) {
        free(s);
        return json_error(P, "bad escape in string");
      }
      s[n++] = to[hit - from];
      P->p++;
      continue;
    }
    size_t len = utf8_valid((const unsigned char *)P->p, (size_t)(P->end - P->p));
    if (!len) {
      free(s);
      return json_error(P, "invalid UTF-8 in string");
    }
    memcpy(s + n, P->p, len);
    n += len;
    P->p += len;
  }
  P->p++;
  s[n] = 0;
  *out = s;
  return 0;
}

/* A number token per RFC 8259 at the cursor. */
static int parse_number(json_parser *P, rdt_json *j) {
  const char *q = P->p, *e = P->end;
  if (q < e && *q == '-') q++;
  if (q < e && *q == '0') q++;
  else if (q < e && *q >= '1' && *q <= '9') while (q < e && *q >= '0' && *q <= '9') q++;
  else return json_error(P, "bad number");
  if (q < e && *q == '.') {
    if (++q >= e || *q < '0' || *q > '9') return json_error(P, "bad number: digits must follow '.'");
    while (q < e && *q >= '0' && *q <= '9') q++;
  }
  if (q < e && (*q == 'e' || *q == 'E')) {
    q++;
    if (q < e && (*q == '+' || *q == '-')) q++;
    if (q >= e || *q < '0' || *q > '9') return json_error(P, "bad number: digits must follow the exponent");
    while (q < e && *q >= '0' && *q <= '9') q++;
  }
  size_t n = (size_t)(q - P->p);
  char *raw = rdt_malloc(n + 1);
  memcpy(raw, P->p, n);
  raw[n] = 0;
  errno = 0;
  double v = strtod(raw, NULL);
  if (!isfinite(v)) {
    free(raw);
    return json_error(P, "number out of range");
  }
  j->type = RDT_JSON_NUMBER;
  j->number = v;
  j->raw = raw;
  P->p = q;
  return 0;
}

static int parse_value(json_parser *P, rdt_json *j);

/* Append a zeroed child to an array or object node. */
static rdt_json *push_child(rdt_json *j, int *cap) {
  if (j->count == *cap) {
    *cap = *cap ? *cap * 2 : 4;
    j->items = rdt_realloc(j->items, sizeof *j->items * (size_t)*cap);
  }
  rdt_json *c = &j->items[j->count++];
  memset(c, 0, sizeof *c);
  return c;
}

/* An array or object at the cursor (on '[' or '{'). */
static int parse_container(json_parser *P, rdt_json *j, int object) {
  char close = object ? '}' : ']', b[32];
  if (++P->depth > JSON_MAX_DEPTH) return json_error(P, "nesting deeper than %d", JSON_MAX_DEPTH);
  j->type = object ? RDT_JSON_OBJECT : RDT_JSON_ARRAY;
  P->p++;
  skip_space(P);
  int cap = 0;
  if (P->p < P->end && *P->p == close) {
    P->p++;
    P->depth--;
    return 0;
  }
  for (;;) {
    rdt_json *c = push_child(j, &cap);
    if (object) {
      skip_space(P);
      if (P->p >= P->end || *P->p != '"') return json_error(P, "expected a string key, found %s", found(P, b, sizeof b));
      if (parse_string(P, &c->key) != 0) return -1;
      skip_space(P);
      if (P->p >= P->end || *P->p != ':') return json_error(P, "expected ':', found %s", found(P, b, sizeof b));
      P->p++;
    }
    if (parse_value(P, c) != 0) return -1;
    skip_space(P);
    if (P->p < P->end && *P->p == ',') {
      P->p++;
      continue;
    }
    if (P->p < P->end && *P->p == close) break;
    return json_error(P, "expected ',' or '%c', found %s", close, found(P, b, sizeof b));
  }
  P->p++;
  P->depth--;
  return 0;
}

static int parse_value(json_parser *P, rdt_json *j) {
  skip_space(P);
  char b[32];
  char c = P->p < P->end ? *P->p : 0;
  switch (c) {
    case '{': return parse_container(P, j, 1);
    case '[': return parse_container(P, j, 0);
    case '"': j->type = RDT_JSON_STRING; return parse_string(P, &j->string);
    case 't': j->type = RDT_JSON_BOOL, j->boolean = 1; return expect_literal(P, "true");
    case 'f': j->type = RDT_JSON_BOOL; return expect_literal(P, "false");
    case 'n': j->type = RDT_JSON_NULL; return expect_literal(P, "null");
    default:
      if (c == '-' || (c >= '0' && c <= '9')) return parse_number(P, j);
      return json_error(P, "unexpected %s", found(P, b, sizeof b));
  }
}

/* Free the contents of a node (not the node itself). */
static void json_clear(rdt_json *j) {
  for (int i = 0; i < j->count; i++) json_clear(&j->items[i]);
  free(j->items);
  free(j->string);
  free(j->key);
  free((char *)j->raw);
}

rdt_json *rdt_json_parse(const char *text, size_t len) {
  json_parser P = {text, text, text + len, 0};
  rdt_json *j = rdt_calloc(1, sizeof *j);
  int rc = parse_value(&P, j);
  if (rc == 0) {
    skip_space(&P);
    char b[32];
    if (P.p < P.end) rc = json_error(&P, "unexpected %s after the value", found(&P, b, sizeof b));
  }
  if (rc != 0) {
    rdt_json_free(j);
    return NULL;
  }
  return j;
}

rdt_json *rdt_json_load(const char *path) {
  size_t len;
  char *text = rdt_read_file(path, &len);
  if (!text) return NULL;
  rdt_json *j = rdt_json_parse(text, len);
  free(text);
  if (!j) rdt_fail_ctx("%s", path);
  return j;
}

void rdt_json_free(rdt_json *j) {
  if (!j) return;
  json_clear(j);
  free(j);
}

const rdt_json *rdt_json_get(const rdt_json *obj, const char *key) {
  if (!obj || obj->type != RDT_JSON_OBJECT) return NULL;
  for (int i = 0; i < obj->count; i++)
    if (strcmp(obj->items[i].key, key) == 0) return &obj->items[i];
  return NULL;
}

const rdt_json *rdt_json_at(const rdt_json *arr, int i) {
  if (!arr || (arr->type != RDT_JSON_ARRAY && arr->type != RDT_JSON_OBJECT) || i < 0 || i >= arr->count) return NULL;
  return &arr->items[i];
}

int rdt_json_int64(const rdt_json *j, int64_t *out) {
  if (!j || j->type != RDT_JSON_NUMBER) return -1;
  if (j->raw && strpbrk(j->raw, ".eE") == NULL) {   /* plain integer token: exact */
    errno = 0;
    char *end;
    long long v = strtoll(j->raw, &end, 10);
    if (errno == ERANGE || *end) return -1;
    *out = v;
    return 0;
  }
  double v = j->number;   /* 1e3, 2.0: exact only below 2^53 */
  if (v != floor(v) || fabs(v) > 9007199254740992.0) return -1;
  *out = (int64_t)v;
  return 0;
}

/* ================================================================ writer */

void jw_init(rdt_jw *w, int pretty) {
  memset(w, 0, sizeof *w);
  w->pretty = pretty;
  w->first[0] = 1;
}

/* Append n bytes. */
static void jw_put(rdt_jw *w, const char *s, size_t n) {
  if (w->len + n + 1 > w->cap) {
    w->cap = (w->len + n + 1) * 2 + 64;
    w->buf = rdt_realloc(w->buf, w->cap);
  }
  memcpy(w->buf + w->len, s, n);
  w->len += n;
  w->buf[w->len] = 0;
}

static void jw_puts(rdt_jw *w, const char *s) { jw_put(w, s, strlen(s)); }

/* Newline and indentation for the current depth (pretty mode). */
static void jw_newline(rdt_jw *w) {
  if (!w->pretty) return;
  jw_put(w, "\n", 1);
  for (int i = 0; i < w->depth; i++) jw_put(w, "  ", 2);
}

/* Separator before a value or key: a comma unless first, then layout. */
static void jw_before(rdt_jw *w) {
  if (w->after_key) {
    w->after_key = 0;
    return;
  }
  int d = w->depth < 64 ? w->depth : 63;
  if (!w->first[d]) jw_put(w, ",", 1);
  w->first[d] = 0;
  if (w->depth > 0) jw_newline(w);
}

/* Open a container. */
static void jw_open(rdt_jw *w, char c) {
  jw_before(w);
  jw_put(w, &c, 1);
  w->depth++;
  if (w->depth < 64) w->first[w->depth] = 1;
}

/* Close a container. */
static void jw_close(rdt_jw *w, char c) {
  int empty = w->depth < 64 && w->first[w->depth];
  w->depth--;
  if (!empty) jw_newline(w);
  jw_put(w, &c, 1);
}

void jw_obj(rdt_jw *w) { jw_open(w, '{'); }
void jw_obj_end(rdt_jw *w) { jw_close(w, '}'); }
void jw_arr(rdt_jw *w) { jw_open(w, '['); }
void jw_arr_end(rdt_jw *w) { jw_close(w, ']'); }

/* A quoted, escaped string (no separator). */
static void jw_quoted(rdt_jw *w, const char *s) {
  jw_put(w, "\"", 1);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    char esc[8];
    if (*p == '"' || *p == '\\') esc[0] = '\\', esc[1] = (char)*p, esc[2] = 0;
    else if (*p == '\n') strcpy(esc, "\\n");
    else if (*p == '\t') strcpy(esc, "\\t");
    else if (*p == '\r') strcpy(esc, "\\r");
    else if (*p < 0x20) snprintf(esc, sizeof esc, "\\u%04x", *p);
    else esc[0] = (char)*p, esc[1] = 0;
    jw_puts(w, esc);
  }
  jw_put(w, "\"", 1);
}

void jw_key(rdt_jw *w, const char *k) {
  jw_before(w);
  jw_quoted(w, k);
  jw_puts(w, w->pretty ? ": " : ":");
  w->after_key = 1;
}

void jw_str(rdt_jw *w, const char *s) {
  jw_before(w);
  jw_quoted(w, s);
}

void jw_int(rdt_jw *w, int64_t v) {
  char b[32];
  snprintf(b, sizeof b, "%lld", (long long)v);
  jw_before(w);
  jw_puts(w, b);
}

/* The shortest %.Ng (N from lo to 17) that reads back as exactly v. */
static void shortest(char *b, size_t len, double v, int lo, int is_float) {
  for (int prec = lo; prec <= 17; prec++) {
    snprintf(b, len, "%.*g", prec, v);
    double back = strtod(b, NULL);
    if (is_float ? (float)back == (float)v : back == v) return;
  }
}

/* A number (NaN and infinities as null), shortest form from lo significant digits up. */
static void jw_number(rdt_jw *w, double v, int lo, int is_float) {
  if (!isfinite(v)) {
    jw_null(w);
    return;
  }
  char b[40];
  shortest(b, sizeof b, v, lo, is_float);
  jw_before(w);
  jw_puts(w, b);
}

void jw_num(rdt_jw *w, double v) { jw_number(w, v, 15, 0); }

void jw_float(rdt_jw *w, float v) { jw_number(w, v, 6, 1); }

void jw_bool(rdt_jw *w, int v) {
  jw_before(w);
  jw_puts(w, v ? "true" : "false");
}

void jw_null(rdt_jw *w) {
  jw_before(w);
  jw_puts(w, "null");
}

void jw_raw(rdt_jw *w, const char *json) {
  jw_before(w);
  jw_puts(w, json);
}

void jw_value(rdt_jw *w, const rdt_json *j) {
  switch (j->type) {
    case RDT_JSON_NULL: jw_null(w); break;
    case RDT_JSON_BOOL: jw_bool(w, j->boolean); break;
    case RDT_JSON_NUMBER: j->raw ? jw_raw(w, j->raw) : jw_num(w, j->number); break;
    case RDT_JSON_STRING: jw_str(w, j->string); break;
    case RDT_JSON_ARRAY:
      jw_arr(w);
      for (int i = 0; i < j->count; i++) jw_value(w, &j->items[i]);
      jw_arr_end(w);
      break;
    case RDT_JSON_OBJECT:
      jw_obj(w);
      for (int i = 0; i < j->count; i++) {
        jw_key(w, j->items[i].key);
        jw_value(w, &j->items[i]);
      }
      jw_obj_end(w);
      break;
  }
}

char *jw_finish(rdt_jw *w) {
  char *s = w->buf ? w->buf : rdt_strdup("");
  int pretty = w->pretty;
  jw_init(w, pretty);
  return s;
}

void jw_free(rdt_jw *w) {
  free(w->buf);
  jw_init(w, w->pretty);
}
