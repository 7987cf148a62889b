/* sim/xml.c: a small XML tree for composing MJCF (see xml.h). */
#include "sim/xml.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/fsutil.h"

/* ------------------------------------------------------------------ nodes */

/* A new element with no attributes or children. */
xml_node *xml_new(const char *tag) {
  xml_node *n = rdt_calloc(1, sizeof *n);
  n->tag = rdt_strdup(tag);
  return n;
}

/* Free a subtree. */
void xml_free(xml_node *n) {
  if (!n) return;
  for (int i = 0; i < n->nattr; i++) free(n->keys[i]), free(n->values[i]);
  for (int i = 0; i < n->nchild; i++) xml_free(n->child[i]);
  free(n->keys);
  free(n->values);
  free(n->child);
  free(n->tag);
  free(n);
}

/* Attribute value or NULL. */
const char *xml_get(const xml_node *n, const char *key) {
  for (int i = 0; i < n->nattr; i++)
    if (!strcmp(n->keys[i], key)) return n->values[i];
  return NULL;
}

/* Set (replace or append) an attribute. */
void xml_set(xml_node *n, const char *key, const char *value) {
  for (int i = 0; i < n->nattr; i++)
    if (!strcmp(n->keys[i], key)) {
      char *v = rdt_strdup(value);
      free(n->values[i]);
      n->values[i] = v;
      return;
    }
  if (n->nattr == n->cattr) {
    n->cattr = n->cattr ? 2 * n->cattr : 8;
    n->keys = rdt_realloc(n->keys, (size_t)n->cattr * sizeof *n->keys);
    n->values = rdt_realloc(n->values, (size_t)n->cattr * sizeof *n->values);
  }
  n->keys[n->nattr] = rdt_strdup(key);
  n->values[n->nattr] = rdt_strdup(value);
  n->nattr++;
}

/* Set an attribute from a printf format. */
void xml_setf(xml_node *n, const char *key, const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  xml_set(n, key, buf);
}

/* Remove an attribute; returns 1 if it was present. */
int xml_unset(xml_node *n, const char *key) {
  for (int i = 0; i < n->nattr; i++)
    if (!strcmp(n->keys[i], key)) {
      free(n->keys[i]);
      free(n->values[i]);
      memmove(n->keys + i, n->keys + i + 1, (size_t)(n->nattr - i - 1) * sizeof *n->keys);
      memmove(n->values + i, n->values + i + 1, (size_t)(n->nattr - i - 1) * sizeof *n->values);
      n->nattr--;
      return 1;
    }
  return 0;
}

/* Index of child c in parent, or -1. */
int xml_index(const xml_node *parent, const xml_node *c) {
  for (int i = 0; i < parent->nchild; i++)
    if (parent->child[i] == c) return i;
  return -1;
}

/* Detach child i from its parent and return it. */
xml_node *xml_detach(xml_node *parent, int i) {
  xml_node *c = parent->child[i];
  memmove(parent->child + i, parent->child + i + 1, (size_t)(parent->nchild - i - 1) * sizeof *parent->child);
  parent->nchild--;
  c->parent = NULL;
  return c;
}

/* Append a child, detaching it from a previous parent. */
void xml_append(xml_node *parent, xml_node *child) {
  if (child->parent) xml_detach(child->parent, xml_index(child->parent, child));
  if (parent->nchild == parent->cchild) {
    parent->cchild = parent->cchild ? 2 * parent->cchild : 4;
    parent->child = rdt_realloc(parent->child, (size_t)parent->cchild * sizeof *parent->child);
  }
  parent->child[parent->nchild++] = child;
  child->parent = parent;
}

/* Deep copy with parent NULL. */
xml_node *xml_clone(const xml_node *n) {
  xml_node *c = xml_new(n->tag);
  c->line = n->line;
  for (int i = 0; i < n->nattr; i++) xml_set(c, n->keys[i], n->values[i]);
  for (int i = 0; i < n->nchild; i++) xml_append(c, xml_clone(n->child[i]));
  return c;
}

/* First direct child with tag (and key == value when key is set). */
xml_node *xml_child(const xml_node *n, const char *tag, const char *key, const char *value) {
  for (int i = 0; i < n->nchild; i++) {
    xml_node *c = n->child[i];
    if (strcmp(c->tag, tag)) continue;
    if (key) {
      const char *v = xml_get(c, key);
      if (!v || strcmp(v, value)) continue;
    }
    return c;
  }
  return NULL;
}

/* First match in the subtree, document order, n included. */
xml_node *xml_find(xml_node *n, const char *tag, const char *key, const char *value) {
  int tag_ok = !tag || !strcmp(n->tag, tag);
  if (tag_ok && key) {
    const char *v = xml_get(n, key);
    tag_ok = v && !strcmp(v, value);
  }
  if (tag_ok) return n;
  for (int i = 0; i < n->nchild; i++) {
    xml_node *f = xml_find(n->child[i], tag, key, value);
    if (f) return f;
  }
  return NULL;
}

/* ------------------------------------------------------------------ parser */

typedef struct {
  const char *p, *end, *name;
  int line;
} xml_reader;

/* Record "NAME:LINE: msg"; returns -1. */
static int xml_error(const xml_reader *r, const char *what) {
  return rdt_fail("%s:%d: %s", r->name, r->line, what);
}

/* Advance over whitespace, counting lines. */
static void xml_skip_space(xml_reader *r) {
  while (r->p < r->end && isspace((unsigned char)*r->p)) {
    if (*r->p == '\n') r->line++;
    r->p++;
  }
}

/* Skip past the terminator string, counting lines; -1 if absent. */
static int xml_skip_past(xml_reader *r, const char *term) {
  size_t tl = strlen(term);
  while (r->p + tl <= r->end) {
    if (!memcmp(r->p, term, tl)) {
      r->p += tl;
      return 0;
    }
    if (*r->p == '\n') r->line++;
    r->p++;
  }
  return -1;
}

/* Copy text with the five predefined entities (and &#N;) decoded. */
static char *xml_decode(const char *s, size_t n) {
  char *out = rdt_malloc(n + 1);
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] != '&') {
      out[o++] = s[i];
      continue;
    }
    static const char *names[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"};
    static const char chars[] = "&<>\"'";
    int done = 0;
    for (int k = 0; k < 5 && !done; k++) {
      size_t l = strlen(names[k]);
      if (i + l <= n && !memcmp(s + i, names[k], l)) out[o++] = chars[k], i += l - 1, done = 1;
    }
    if (!done && i + 2 < n && s[i + 1] == '#') {
      char *e;
      long c = s[i + 2] == 'x' ? strtol(s + i + 3, &e, 16) : strtol(s + i + 2, &e, 10);
      if (*e == ';' && c > 0 && c < 128) out[o++] = (char)c, i = (size_t)(e - s), done = 1;
    }
    if (!done) out[o++] = '&';
  }
  out[o] = 0;
  return out;
}

/* Is c a character of an XML name? */
static int xml_name_char(char c) {
  return isalnum((unsigned char)c) || c == '_' || c == '-' || c == '.' || c == ':';
}

/* Read a name at r->p into a malloc'd string; NULL if none. */
static char *xml_read_name(xml_reader *r) {
  const char *s = r->p;
  while (r->p < r->end && xml_name_char(*r->p)) r->p++;
  if (r->p == s) return NULL;
  char *out = rdt_malloc((size_t)(r->p - s) + 1);
  memcpy(out, s, (size_t)(r->p - s));
  out[r->p - s] = 0;
  return out;
}

/* Skip comments, <?...?>, <!DOCTYPE>, and text until the next '<' of an
 * element or end tag. */
static int xml_skip_misc(xml_reader *r) {
  for (;;) {
    while (r->p < r->end && *r->p != '<') {
      if (*r->p == '\n') r->line++;
      r->p++;
    }
    if (r->p >= r->end) return 0;
    if (r->end - r->p >= 4 && !memcmp(r->p, "<!--", 4)) {
      if (xml_skip_past(r, "-->")) return xml_error(r, "unterminated comment");
    } else if (r->end - r->p >= 2 && r->p[1] == '?') {
      if (xml_skip_past(r, "?>")) return xml_error(r, "unterminated <?");
    } else if (r->end - r->p >= 9 && !memcmp(r->p, "<![CDATA[", 9)) {
      if (xml_skip_past(r, "]]>")) return xml_error(r, "unterminated CDATA");
    } else if (r->end - r->p >= 2 && r->p[1] == '!') {
      if (xml_skip_past(r, ">")) return xml_error(r, "unterminated <!");
    } else {
      return 0;
    }
  }
}

/* Parse attributes up to '>' or '/>'; *closed = 1 for '/>'. */
static int xml_read_attrs(xml_reader *r, xml_node *n, int *closed) {
  for (;;) {
    xml_skip_space(r);
    if (r->p >= r->end) return xml_error(r, "expected '>' before end of file");
    if (*r->p == '>') {
      r->p++;
      *closed = 0;
      return 0;
    }
    if (*r->p == '/' && r->p + 1 < r->end && r->p[1] == '>') {
      r->p += 2;
      *closed = 1;
      return 0;
    }
    char *key = xml_read_name(r);
    if (!key) return xml_error(r, "expected an attribute name");
    xml_skip_space(r);
    if (r->p >= r->end || *r->p != '=') {
      free(key);
      return xml_error(r, "expected '=' after attribute name");
    }
    r->p++;
    xml_skip_space(r);
    if (r->p >= r->end || (*r->p != '"' && *r->p != '\'')) {
      free(key);
      return xml_error(r, "expected a quoted attribute value");
    }
    char q = *r->p++;
    const char *s = r->p;
    while (r->p < r->end && *r->p != q) {
      if (*r->p == '\n') r->line++;
      r->p++;
    }
    if (r->p >= r->end) {
      free(key);
      return xml_error(r, "unterminated attribute value");
    }
    char *val = xml_decode(s, (size_t)(r->p - s));
    r->p++;
    xml_set(n, key, val);
    free(key);
    free(val);
  }
}

/* Parse one element starting at '<' (recursively). */
static xml_node *xml_read_element(xml_reader *r, int depth) {
  if (depth > 200) return xml_error(r, "elements nested too deeply"), NULL;
  r->p++; /* '<' */
  int line = r->line;
  char *tag = xml_read_name(r);
  if (!tag) return xml_error(r, "expected an element name after '<'"), NULL;
  xml_node *n = xml_new(tag);
  free(tag);
  n->line = line;
  int closed = 0;
  if (xml_read_attrs(r, n, &closed)) goto fail;
  if (closed) return n;
  for (;;) {
    if (xml_skip_misc(r)) goto fail;
    if (r->p >= r->end) {
      rdt_fail("%s:%d: expected </%s> before end of file", r->name, line, n->tag);
      goto fail;
    }
    if (r->p + 1 < r->end && r->p[1] == '/') {
      r->p += 2;
      char *end = xml_read_name(r);
      int ok = end && !strcmp(end, n->tag);
      free(end);
      xml_skip_space(r);
      if (!ok || r->p >= r->end || *r->p != '>') {
        char msg[300];
        snprintf(msg, sizeof msg, "expected </%s>", n->tag);
        xml_error(r, msg);
        goto fail;
      }
      r->p++;
      return n;
    }
    xml_node *c = xml_read_element(r, depth + 1);
    if (!c) goto fail;
    xml_append(n, c);
  }
fail:
  xml_free(n);
  return NULL;
}

/* Parse a document: its single root element. */
xml_node *xml_parse(const char *text, size_t len, const char *name) {
  xml_reader r = {text, text + len, name, 1};
  if (xml_skip_misc(&r)) return NULL;
  if (r.p >= r.end) return xml_error(&r, "expected a root element"), NULL;
  xml_node *root = xml_read_element(&r, 0);
  if (!root) return NULL;
  if (xml_skip_misc(&r) || r.p < r.end) {
    if (r.p < r.end) xml_error(&r, "expected end of file after the root element");
    xml_free(root);
    return NULL;
  }
  return root;
}

/* Read and parse a file. */
xml_node *xml_load(const char *path) {
  size_t len;
  char *text = rdt_read_file(path, &len);
  if (!text) return NULL;
  xml_node *n = xml_parse(text, len, path);
  free(text);
  return n;
}

/* ------------------------------------------------------------------ writer */

typedef struct {
  char *buf;
  size_t len, cap;
} xml_buf;

/* Append n bytes. */
static void xml_put(xml_buf *b, const char *s, size_t n) {
  if (b->len + n + 1 > b->cap) {
    while (b->len + n + 1 > b->cap) b->cap = b->cap ? 2 * b->cap : 4096;
    b->buf = rdt_realloc(b->buf, b->cap);
  }
  memcpy(b->buf + b->len, s, n);
  b->len += n;
  b->buf[b->len] = 0;
}

/* Append an attribute value with &, <, > and " escaped. */
static void xml_put_escaped(xml_buf *b, const char *s) {
  for (; *s; s++) {
    switch (*s) {
      case '&': xml_put(b, "&amp;", 5); break;
      case '<': xml_put(b, "&lt;", 4); break;
      case '>': xml_put(b, "&gt;", 4); break;
      case '"': xml_put(b, "&quot;", 6); break;
      default: xml_put(b, s, 1);
    }
  }
}

/* Write one element and its subtree, indented. */
static void xml_write_node(xml_buf *b, const xml_node *n, int depth) {
  for (int i = 0; i < depth; i++) xml_put(b, " ", 1);
  xml_put(b, "<", 1);
  xml_put(b, n->tag, strlen(n->tag));
  for (int i = 0; i < n->nattr; i++) {
    xml_put(b, " ", 1);
    xml_put(b, n->keys[i], strlen(n->keys[i]));
    xml_put(b, "=\"", 2);
    xml_put_escaped(b, n->values[i]);
    xml_put(b, "\"", 1);
  }
  if (!n->nchild) {
    xml_put(b, "/>\n", 3);
    return;
  }
  xml_put(b, ">\n", 2);
  for (int i = 0; i < n->nchild; i++) xml_write_node(b, n->child[i], depth + 1);
  for (int i = 0; i < depth; i++) xml_put(b, " ", 1);
  xml_put(b, "</", 2);
  xml_put(b, n->tag, strlen(n->tag));
  xml_put(b, ">\n", 2);
}

/* Serialise a subtree. */
char *xml_write(const xml_node *n) {
  xml_buf b = {0};
  xml_write_node(&b, n, 0);
  return b.buf;
}

/* ------------------------------------------------------------------ numbers */

/* Parse up to max numbers; count, or -1 on junk. */
int xml_numbers(const char *s, double *out, int max) {
  int n = 0;
  while (*s) {
    while (isspace((unsigned char)*s)) s++;
    if (!*s) break;
    char *e;
    double v = strtod(s, &e);
    if (e == s) return -1;
    if (n < max) out[n] = v;
    n++;
    s = e;
  }
  return n > max ? max : n;
}

/* Format n numbers with round-trip precision. */
void xml_set_numbers(xml_node *node, const char *key, const double *v, int n) {
  char buf[512];
  size_t o = 0;
  for (int i = 0; i < n && o < sizeof buf - 32; i++)
    o += (size_t)snprintf(buf + o, sizeof buf - o, i ? " %.17g" : "%.17g", v[i]);
  xml_set(node, key, buf);
}
