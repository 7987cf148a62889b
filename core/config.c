/* core/config.c: YAML configuration on libyaml: a tree of mappings, sequences
 * and typed scalars with dotted-key access and command-line overrides.
 *
 * Plain scalars are typed as YAML 1.2's core schema does: null (~, null, empty),
 * bool (true/false in three casings), int (decimal, 0x hex), float (1.5, 1e-4,
 * .inf, .nan); everything else, and every quoted or block scalar, is a string.
 * Aliases and multiple documents are rejected, as are duplicate keys.
 * A null value reads as absent in the getters.
 */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>
#include "core/config.h"
#include "core/error.h"
#include "core/fsutil.h"
#include "core/json.h"

#define CONFIG_MAX_DEPTH 64

typedef enum { CFG_MAP, CFG_SEQ, CFG_SCALAR } cfg_kind;
typedef enum { CFG_NULL, CFG_BOOL, CFG_INT, CFG_FLOAT, CFG_STR } cfg_type;

typedef struct cfg_node cfg_node;
struct cfg_node {
  cfg_kind kind;
  cfg_type type;        /* scalars */
  char *text;           /* scalars: the source text */
  int64_t i;
  double f;
  int line;             /* 1-based source line, 0 for overrides */
  int n, cap;           /* mapping entries or sequence items */
  char **keys;          /* mappings */
  cfg_node **items;
};

struct rdt_config {
  char *path;
  cfg_node *root;
  char error[1024];     /* first wrong-type problem met by a lenient getter */
};

/* ================================================================ nodes */

static cfg_node *node_new(cfg_kind kind, int line) {
  cfg_node *n = rdt_calloc(1, sizeof *n);
  n->kind = kind;
  n->line = line;
  return n;
}

static void node_free(cfg_node *n) {
  if (!n) return;
  for (int k = 0; k < n->n; k++) {
    if (n->keys) free(n->keys[k]);
    node_free(n->items[k]);
  }
  free(n->keys);
  free(n->items);
  free(n->text);
  free(n);
}

/* Append a child (with its key, for mappings). */
static void node_add(cfg_node *n, const char *key, cfg_node *child) {
  if (n->n == n->cap) {
    n->cap = n->cap ? n->cap * 2 : 4;
    n->items = rdt_realloc(n->items, sizeof *n->items * (size_t)n->cap);
    if (n->kind == CFG_MAP) n->keys = rdt_realloc(n->keys, sizeof *n->keys * (size_t)n->cap);
  }
  if (n->kind == CFG_MAP) n->keys[n->n] = rdt_strdup(key);
  n->items[n->n++] = child;
}

static int map_index(const cfg_node *n, const char *key, size_t len) {
  for (int k = 0; k < n->n; k++)
    if (strlen(n->keys[k]) == len && strncmp(n->keys[k], key, len) == 0) return k;
  return -1;
}

/* Whole-string match of an integer or float in the YAML 1.2 core schema. */
static int type_number(const char *s, cfg_node *n) {
  const char *p = s;
  char *end;
  if (*p == '+' || *p == '-') p++;
  if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X') && p[2]) {
    errno = 0;
    unsigned long long v = strtoull(p + 2, &end, 16);
    if (*end || errno == ERANGE || v > (unsigned long long)INT64_MAX) return 0;
    n->type = CFG_INT, n->i = *s == '-' ? -(int64_t)v : (int64_t)v;
    return 1;
  }
  int digits = 0, dot = 0, exp = 0;
  for (; *p; p++) {
    if (*p >= '0' && *p <= '9') digits++;
    else if (*p == '.' && !dot && !exp) dot = 1;
    else if ((*p == 'e' || *p == 'E') && digits && !exp) {
      exp = 1;
      if (p[1] == '+' || p[1] == '-') p++;
      if (p[1] < '0' || p[1] > '9') return 0;
    } else return 0;
  }
  if (!digits) return 0;
  errno = 0;
  if (!dot && !exp) {
    long long v = strtoll(s, &end, 10);
    if (errno == ERANGE) return 0;
    n->type = CFG_INT, n->i = v;
    return 1;
  }
  n->type = CFG_FLOAT, n->f = strtod(s, &end);
  return 1;
}

/* Type a plain (unquoted) scalar. */
static void type_plain(cfg_node *n) {
  static const char *nulls[] = {"", "~", "null", "Null", "NULL"};
  static const char *trues[] = {"true", "True", "TRUE"}, *falses[] = {"false", "False", "FALSE"};
  static const char *infs[] = {".inf", ".Inf", ".INF"}, *nans[] = {".nan", ".NaN", ".NAN"};
  const char *s = n->text, *u = *s == '+' || *s == '-' ? s + 1 : s;
  n->type = CFG_STR;
  for (int k = 0; k < 5; k++)
    if (!strcmp(s, nulls[k])) n->type = CFG_NULL;
  for (int k = 0; k < 3; k++) {
    if (!strcmp(s, trues[k])) n->type = CFG_BOOL, n->i = 1;
    if (!strcmp(s, falses[k])) n->type = CFG_BOOL, n->i = 0;
    if (!strcmp(u, infs[k])) n->type = CFG_FLOAT, n->f = *s == '-' ? -INFINITY : INFINITY;
    if (!strcmp(s, nans[k])) n->type = CFG_FLOAT, n->f = NAN;
  }
  if (n->type == CFG_STR) type_number(s, n);
}

static cfg_node *scalar_new(const char *text, size_t len, int plain, int line) {
  cfg_node *n = node_new(CFG_SCALAR, line);
  n->text = rdt_malloc(len + 1);
  memcpy(n->text, text, len);
  n->text[len] = 0;
  n->type = CFG_STR;
  if (plain) type_plain(n);
  return n;
}

/* ================================================================ parsing */

typedef struct {
  yaml_parser_t parser;
  const char *name;
} cfg_reader;

/* "FILE:LINE:COLUMN: problem (context)" from libyaml's state. */
static int yaml_fail(cfg_reader *r) {
  const yaml_parser_t *p = &r->parser;
  const char *problem = p->problem ? p->problem : "syntax error";
  if (p->error == YAML_READER_ERROR)
    return rdt_fail("%s: byte %zu: %s", r->name, p->problem_offset, problem);
  if (p->context)
    return rdt_fail("%s:%zu:%zu: %s (%s, line %zu)", r->name, p->problem_mark.line + 1, p->problem_mark.column + 1,
                    problem, p->context, p->context_mark.line + 1);
  return rdt_fail("%s:%zu:%zu: %s", r->name, p->problem_mark.line + 1, p->problem_mark.column + 1, problem);
}

/* "FILE:LINE:COLUMN: message" at an event. */
static int event_fail(cfg_reader *r, const yaml_event_t *e, const char *msg, const char *detail) {
  return rdt_fail("%s:%zu:%zu: %s%s", r->name, e->start_mark.line + 1, e->start_mark.column + 1, msg, detail ? detail : "");
}

static int next_event(cfg_reader *r, yaml_event_t *e) {
  return yaml_parser_parse(&r->parser, e) ? 0 : yaml_fail(r);
}

static int parse_node(cfg_reader *r, yaml_event_t *e, int depth, cfg_node **out);

/* Children of a mapping or sequence, up to its end event. */
static int parse_children(cfg_reader *r, cfg_node *n, int depth) {
  yaml_event_type_t end = n->kind == CFG_MAP ? YAML_MAPPING_END_EVENT : YAML_SEQUENCE_END_EVENT;
  for (;;) {
    yaml_event_t e;
    if (next_event(r, &e) != 0) return -1;
    if (e.type == end) {
      yaml_event_delete(&e);
      return 0;
    }
    cfg_node *key = NULL, *value = NULL;
    if (n->kind == CFG_MAP) {
      if (e.type != YAML_SCALAR_EVENT) {
        int rc = event_fail(r, &e, "mapping keys must be plain values", NULL);
        yaml_event_delete(&e);
        return rc;
      }
      if (parse_node(r, &e, depth + 1, &key) != 0) return -1;
      if (map_index(n, key->text, strlen(key->text)) >= 0) {
        rdt_fail("%s:%d: duplicate key '%s'", r->name, key->line, key->text);
        node_free(key);
        return -1;
      }
      if (next_event(r, &e) != 0) {
        node_free(key);
        return -1;
      }
    }
    int rc = parse_node(r, &e, depth + 1, &value);
    if (rc == 0) node_add(n, key ? key->text : NULL, value);
    node_free(key);
    if (rc != 0) return -1;
  }
}

/* The node starting at event e (consumed and deleted here). */
static int parse_node(cfg_reader *r, yaml_event_t *e, int depth, cfg_node **out) {
  int rc = 0, line = (int)e->start_mark.line + 1;
  *out = NULL;
  if (depth > CONFIG_MAX_DEPTH) {
    rc = event_fail(r, e, "nesting too deep", NULL);
  } else if (e->type == YAML_SCALAR_EVENT) {
    const char *tag = (const char *)e->data.scalar.tag;
    int plain = e->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !(tag && !strcmp(tag, YAML_STR_TAG));
    *out = scalar_new((const char *)e->data.scalar.value, e->data.scalar.length, plain, line);
    if (strlen((*out)->text) != e->data.scalar.length) rc = event_fail(r, e, "NUL character in a value", NULL);
  } else if (e->type == YAML_MAPPING_START_EVENT || e->type == YAML_SEQUENCE_START_EVENT) {
    *out = node_new(e->type == YAML_MAPPING_START_EVENT ? CFG_MAP : CFG_SEQ, line);
    yaml_event_delete(e);
    if (parse_children(r, *out, depth) == 0) return 0;
    node_free(*out);
    *out = NULL;
    return -1;
  } else if (e->type == YAML_ALIAS_EVENT) {
    rc = event_fail(r, e, "aliases are not supported: *", (const char *)e->data.alias.anchor);
  } else {
    rc = event_fail(r, e, "unexpected YAML event", NULL);
  }
  yaml_event_delete(e);
  if (rc != 0) node_free(*out), *out = NULL;
  return rc;
}

/* One document: stream start, document start, the root, document end, stream end. */
static int parse_stream(cfg_reader *r, cfg_node **root) {
  yaml_event_t e;
  *root = NULL;
  if (next_event(r, &e) != 0) return -1;   /* stream start */
  yaml_event_delete(&e);
  if (next_event(r, &e) != 0) return -1;
  if (e.type == YAML_STREAM_END_EVENT) {   /* empty file */
    yaml_event_delete(&e);
    *root = node_new(CFG_MAP, 1);
    return 0;
  }
  yaml_event_delete(&e);                   /* document start */
  if (next_event(r, &e) != 0) return -1;
  if (parse_node(r, &e, 0, root) != 0) return -1;
  if ((*root)->kind == CFG_SCALAR && (*root)->type == CFG_NULL) {   /* only comments */
    node_free(*root);
    *root = node_new(CFG_MAP, 1);
  }
  if ((*root)->kind != CFG_MAP) return rdt_fail("%s: the top level is not a mapping", r->name);
  if (next_event(r, &e) != 0) return -1;   /* document end */
  yaml_event_delete(&e);
  if (next_event(r, &e) != 0) return -1;
  int rc = e.type == YAML_STREAM_END_EVENT ? 0 : event_fail(r, &e, "only one YAML document is allowed", NULL);
  yaml_event_delete(&e);
  return rc;
}

rdt_config *rdt_config_parse(const char *text, size_t len, const char *name) {
  cfg_reader r;
  memset(&r, 0, sizeof r);
  r.name = name ? name : "(config)";
  if (!yaml_parser_initialize(&r.parser)) {
    rdt_fail("%s: cannot start the YAML parser", r.name);
    return NULL;
  }
  yaml_parser_set_input_string(&r.parser, (const unsigned char *)text, len);
  cfg_node *root;
  int rc = parse_stream(&r, &root);
  yaml_parser_delete(&r.parser);
  if (rc != 0) {
    node_free(root);
    return NULL;
  }
  rdt_config *c = rdt_calloc(1, sizeof *c);
  c->path = rdt_strdup(r.name);
  c->root = root;
  return c;
}

rdt_config *rdt_config_load(const char *path) {
  size_t len;
  char *text = rdt_read_file(path, &len);
  if (!text) return NULL;
  rdt_config *c = rdt_config_parse(text, len, path);
  free(text);
  return c;
}

rdt_config *rdt_config_new(void) {
  rdt_config *c = rdt_calloc(1, sizeof *c);
  c->path = rdt_strdup("(config)");
  c->root = node_new(CFG_MAP, 0);
  return c;
}

void rdt_config_free(rdt_config *c) {
  if (!c) return;
  node_free(c->root);
  free(c->path);
  free(c);
}

const char *rdt_config_path(const rdt_config *c) { return c->path; }

/* ================================================================ lookup */

/* Length of the child name of n that starts key: a mapping key (which may
 * itself hold dots) or a sequence index; sets *child; 0 if none. */
static size_t step(const cfg_node *n, const char *key, cfg_node **child) {
  size_t seg = strcspn(key, ".");
  *child = NULL;
  if (n->kind == CFG_MAP) {
    for (size_t len = seg;; len += 1 + strcspn(key + len + 1, ".")) {
      int k = map_index(n, key, len);
      if (k >= 0) return *child = n->items[k], len;
      if (!key[len]) return 0;
    }
  }
  if (n->kind == CFG_SEQ && seg > 0 && seg < 10 && strspn(key, "0123456789") == seg) {
    int idx = atoi(key);
    if (idx < n->n) return *child = n->items[idx], seg;
  }
  return 0;
}

static cfg_node *find(const rdt_config *c, const char *key) {
  cfg_node *n = c->root;
  if (!*key) return n;
  while (n) {
    cfg_node *child;
    size_t len = step(n, key, &child);
    if (!len) return NULL;
    if (!key[len]) return child;
    n = child;
    key += len + 1;
  }
  return NULL;
}

int rdt_config_has(const rdt_config *c, const char *key) {
  const cfg_node *n = find(c, key);
  return n && !(n->kind == CFG_SCALAR && n->type == CFG_NULL);
}

int rdt_config_len(const rdt_config *c, const char *key) {
  const cfg_node *n = find(c, key);
  return n && n->kind != CFG_SCALAR ? n->n : -1;
}

const char *rdt_config_key_at(const rdt_config *c, const char *key, int i) {
  const cfg_node *n = find(c, key);
  return n && n->kind == CFG_MAP && i >= 0 && i < n->n ? n->keys[i] : NULL;
}

/* ================================================================ getters */

static const char *type_name(const cfg_node *n) {
  static const char *names[] = {"null", "bool", "integer", "float", "string"};
  return n->kind == CFG_MAP ? "mapping" : n->kind == CFG_SEQ ? "sequence" : names[n->type];
}

/* Strict lookup: 1 absent (or null), -1 wrong type (message recorded), 0 found with n set. */
static int get_typed(const rdt_config *c, const char *key, const char *want, int ok_types, const cfg_node **out) {
  const cfg_node *n = find(c, key);
  if (!n || (n->kind == CFG_SCALAR && n->type == CFG_NULL)) return 1;
  if (n->kind != CFG_SCALAR || !(ok_types & (1 << n->type))) {
    char where[32] = "";
    if (n->line) snprintf(where, sizeof where, ":%d", n->line);
    return rdt_fail("%s%s: %s should be %s, got %s%s%s%s", c->path, where, key, want, type_name(n),
                    n->text ? " '" : "", n->text ? n->text : "", n->text ? "'" : "");
  }
  *out = n;
  return 0;
}

int rdt_config_get_int(const rdt_config *c, const char *key, int64_t *out) {
  const cfg_node *n;
  int rc = get_typed(c, key, "an integer", 1 << CFG_INT, &n);
  if (rc == 0) *out = n->i;
  return rc;
}

int rdt_config_get_float(const rdt_config *c, const char *key, double *out) {
  const cfg_node *n;
  int rc = get_typed(c, key, "a number", 1 << CFG_INT | 1 << CFG_FLOAT, &n);
  if (rc == 0) *out = n->type == CFG_INT ? (double)n->i : n->f;
  return rc;
}

int rdt_config_get_bool(const rdt_config *c, const char *key, int *out) {
  const cfg_node *n;
  int rc = get_typed(c, key, "true or false", 1 << CFG_BOOL, &n);
  if (rc == 0) *out = (int)n->i;
  return rc;
}

int rdt_config_get_str(const rdt_config *c, const char *key, const char **out) {
  const cfg_node *n;
  int rc = get_typed(c, key, "a value", 1 << CFG_STR | 1 << CFG_INT | 1 << CFG_FLOAT | 1 << CFG_BOOL, &n);
  if (rc == 0) *out = n->text;
  return rc;
}

/* Keep the first wrong-type message for rdt_config_check (the error text is logically mutable). */
static void remember(const rdt_config *c) {
  rdt_config *m = (rdt_config *)c;
  if (!m->error[0]) snprintf(m->error, sizeof m->error, "%s", rdt_error());
}

const char *rdt_config_str(const rdt_config *c, const char *key, const char *def) {
  const char *v = def;
  if (rdt_config_get_str(c, key, &v) < 0) remember(c);
  return v;
}

int64_t rdt_config_int(const rdt_config *c, const char *key, int64_t def) {
  int64_t v = def;
  if (rdt_config_get_int(c, key, &v) < 0) remember(c);
  return v;
}

double rdt_config_float(const rdt_config *c, const char *key, double def) {
  double v = def;
  if (rdt_config_get_float(c, key, &v) < 0) remember(c);
  return v;
}

int rdt_config_bool(const rdt_config *c, const char *key, int def) {
  int v = def;
  if (rdt_config_get_bool(c, key, &v) < 0) remember(c);
  return v;
}

int rdt_config_check(const rdt_config *c) { return c->error[0] ? rdt_fail("%s", c->error) : 0; }

/* ================================================================ overrides */

/* An override's value: a flow collection ("[1, 2]", "{a: 1}") parsed as YAML, else a plain scalar. */
static cfg_node *value_node(const char *value, const char *key) {
  if (value[0] != '[' && value[0] != '{') return scalar_new(value, strlen(value), 1, 0);
  char name[300];
  snprintf(name, sizeof name, "override --%s", key);
  cfg_reader r;
  memset(&r, 0, sizeof r);
  r.name = name;
  if (!yaml_parser_initialize(&r.parser)) return NULL;
  yaml_parser_set_input_string(&r.parser, (const unsigned char *)value, strlen(value));
  yaml_event_t e;
  cfg_node *n = NULL;
  int rc = next_event(&r, &e);
  if (rc == 0) yaml_event_delete(&e), rc = next_event(&r, &e);
  if (rc == 0) yaml_event_delete(&e), rc = next_event(&r, &e);
  if (rc == 0) rc = parse_node(&r, &e, 1, &n);
  yaml_parser_delete(&r.parser);
  return rc == 0 ? n : NULL;
}

int rdt_config_set(rdt_config *c, const char *key, const char *value) {
  if (!*key) return rdt_fail("%s: empty override key", c->path);
  const char *full = key;
  cfg_node *n = c->root;
  for (;;) {
    cfg_node *child;
    size_t len = step(n, key, &child);
    if (len && key[len] && child->kind != CFG_SCALAR) {   /* descend */
      n = child;
      key += len + 1;
      continue;
    }
    if (len && key[len]) return rdt_fail("%s: cannot set '%s': '%.*s' is a value, not a mapping", c->path, full,
                                       (int)(key - full + (ptrdiff_t)len), full);
    if (!len && n->kind != CFG_MAP) return rdt_fail("%s: cannot set '%s': no such sequence item", c->path, full);
    if (!len && strchr(key, '.')) {   /* create the missing mapping */
      size_t seg = strcspn(key, ".");
      char *name = rdt_malloc(seg + 1);
      memcpy(name, key, seg);
      name[seg] = 0;
      cfg_node *m = node_new(CFG_MAP, 0);
      node_add(n, name, m);
      free(name);
      n = m;
      key += seg + 1;
      continue;
    }
    cfg_node *v = value_node(value, full);
    if (!v) return -1;
    if (len) {   /* replace the existing node in its parent */
      for (int k = 0; k < n->n; k++)
        if (n->items[k] == child) node_free(child), n->items[k] = v;
    } else {
      node_add(n, key, v);
    }
    return 0;
  }
}

/* ================================================================ JSON */

static void node_json(rdt_jw *w, const cfg_node *n) {
  if (n->kind == CFG_MAP) {
    jw_obj(w);
    for (int k = 0; k < n->n; k++) jw_key(w, n->keys[k]), node_json(w, n->items[k]);
    jw_obj_end(w);
    return;
  }
  if (n->kind == CFG_SEQ) {
    jw_arr(w);
    for (int k = 0; k < n->n; k++) node_json(w, n->items[k]);
    jw_arr_end(w);
    return;
  }
  switch (n->type) {
    case CFG_NULL: jw_null(w); break;
    case CFG_BOOL: jw_bool(w, (int)n->i); break;
    case CFG_INT: jw_int(w, n->i); break;
    case CFG_FLOAT: jw_num(w, n->f); break;
    case CFG_STR: jw_str(w, n->text); break;
  }
}

char *rdt_config_to_json(const rdt_config *c) {
  rdt_jw w;
  jw_init(&w, 1);
  node_json(&w, c->root);
  return jw_finish(&w);
}
