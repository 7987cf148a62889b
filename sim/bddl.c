/* sim/bddl.c: LIBERO's BDDL task files (see bddl.h). */
#include "sim/bddl.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/fsutil.h"

/* ------------------------------------------------------------------ s-expressions */

/* An atom (text != NULL) or a list. */
typedef struct sx {
  char *text;
  struct sx *items;
  int n, cap;
  int line;
} sx;

/* Free the contents of an s-expression. */
static void sx_clear(sx *s) {
  free(s->text);
  for (int i = 0; i < s->n; i++) sx_clear(&s->items[i]);
  free(s->items);
}

/* Append an empty item to a list and return it. */
static sx *sx_push(sx *list) {
  if (list->n == list->cap) {
    list->cap = list->cap ? 2 * list->cap : 8;
    list->items = rdt_realloc(list->items, (size_t)list->cap * sizeof *list->items);
  }
  sx *s = &list->items[list->n++];
  memset(s, 0, sizeof *s);
  return s;
}

/* Tokenise as bddl.parsing.scan_tokens: ';' comments removed, lower case,
 * tokens '(' ')' and runs of other non-space characters.  The result is the
 * single top-level expression in *out. */
static int sx_scan(const char *text, const char *name, sx *out) {
  sx top = {0};
  sx *stack[256];
  int depth = 0;
  sx *cur = &top;
  int line = 1;
  int open_line[256];
  for (const char *p = text; *p;) {
    if (*p == ';') {
      while (*p && *p != '\n') p++;
      continue;
    }
    if (*p == '\n') line++;
    if (isspace((unsigned char)*p)) {
      p++;
      continue;
    }
    if (*p == '(') {
      if (depth == 255) {
        sx_clear(&top);
        return rdt_fail("%s:%d: expressions nested too deeply", name, line);
      }
      sx *s = sx_push(cur);
      s->line = line;
      open_line[depth] = line;
      stack[depth++] = cur;
      cur = s;
      p++;
    } else if (*p == ')') {
      if (!depth) {
        sx_clear(&top);
        return rdt_fail("%s:%d: expected '(' before ')' (unbalanced parenthesis)", name, line);
      }
      cur = stack[--depth];
      p++;
    } else {
      const char *s = p;
      while (*p && !isspace((unsigned char)*p) && *p != '(' && *p != ')' && *p != ';') p++;
      sx *a = sx_push(cur);
      a->line = line;
      a->text = rdt_malloc((size_t)(p - s) + 1);
      for (size_t i = 0; i < (size_t)(p - s); i++) a->text[i] = (char)tolower((unsigned char)s[i]);
      a->text[p - s] = 0;
    }
  }
  if (depth) {
    int l = open_line[depth - 1];
    sx_clear(&top);
    return rdt_fail("%s:%d: expected ')' to close this '(' before end of file", name, l);
  }
  if (top.n != 1) {
    int l = top.n ? top.items[1 < top.n ? 1 : 0].line : line;
    sx_clear(&top);
    return rdt_fail("%s:%d: expected exactly one top-level expression", name, l);
  }
  *out = top.items[0];
  free(top.items);
  return 0;
}

/* Is s an atom equal to word? */
static int sx_is(const sx *s, const char *word) { return s->text && !strcmp(s->text, word); }

/* Is s a list whose first item is the atom word? */
static int sx_head(const sx *s, const char *word) { return !s->text && s->n > 0 && sx_is(&s->items[0], word); }

/* ------------------------------------------------------------------ sections */

typedef struct {
  const char *name;
  bddl_problem *p;
} bddl_ctx;

/* "FILE:LINE: expected WHAT". */
static int bddl_expected(const bddl_ctx *c, int line, const char *what) {
  return rdt_fail("%s:%d: expected %s", c->name, line, what);
}

/* Parse a number atom; -1 with a message if not a number. */
static int bddl_number(const bddl_ctx *c, const sx *s, double *out) {
  char *e;
  if (!s->text || !*s->text) return bddl_expected(c, s->line, "a number");
  *out = strtod(s->text, &e);
  if (*e) return bddl_expected(c, s->line, "a number");
  return 0;
}

/* One region: (name (:target t) (:ranges ((x0 y0 x1 y1) ...)) (:yaw_rotation ((a b))) (:rgba (r g b a))). */
static int bddl_region_parse(bddl_ctx *c, const sx *r) {
  if (r->text || r->n < 1 || !r->items[0].text) return bddl_expected(c, r->line, "(REGION_NAME (:target ...) ...)");
  bddl_problem *p = c->p;
  p->regions = rdt_realloc(p->regions, (size_t)(p->nregions + 1) * sizeof *p->regions);
  bddl_region *g = &p->regions[p->nregions++];
  memset(g, 0, sizeof *g);
  g->name = rdt_strdup(r->items[0].text);
  g->line = r->line;
  g->rgba[2] = 1;
  for (int i = 1; i < r->n; i++) {
    const sx *a = &r->items[i];
    if (a->text || a->n < 1 || !a->items[0].text)
      return bddl_expected(c, a->line, "a region attribute (:target, :ranges, :yaw_rotation or :rgba)");
    const char *k = a->items[0].text;
    if (!strcmp(k, ":target")) {
      if (a->n != 2 || !a->items[1].text) return bddl_expected(c, a->line, "(:target NAME)");
      free(g->target);
      g->target = rdt_strdup(a->items[1].text);
    } else if (!strcmp(k, ":ranges")) {
      if (a->n != 2 || a->items[1].text) return bddl_expected(c, a->line, "(:ranges ((x0 y0 x1 y1) ...))");
      const sx *list = &a->items[1];
      for (int j = 0; j < list->n; j++) {
        const sx *rr = &list->items[j];
        if (rr->text || rr->n != 4) return bddl_expected(c, rr->line, "a range of 4 numbers (x0 y0 x1 y1)");
        g->ranges = rdt_realloc(g->ranges, (size_t)(g->nranges + 1) * sizeof *g->ranges);
        for (int d = 0; d < 4; d++)
          if (bddl_number(c, &rr->items[d], &g->ranges[g->nranges][d])) return -1;
        g->nranges++;
      }
    } else if (!strcmp(k, ":yaw_rotation")) {
      if (a->n != 2 || a->items[1].text) return bddl_expected(c, a->line, "(:yaw_rotation ((min max)))");
      const sx *list = &a->items[1];
      for (int j = 0; j < list->n; j++) {   /* upstream keeps the last pair */
        const sx *v = &list->items[j];
        if (v->text || v->n != 2) return bddl_expected(c, v->line, "a yaw range of 2 numbers (min max)");
        if (bddl_number(c, &v->items[0], &g->yaw[0]) || bddl_number(c, &v->items[1], &g->yaw[1])) return -1;
      }
    } else if (!strcmp(k, ":rgba")) {
      if (a->n != 2 || a->items[1].text || a->items[1].n != 4) return bddl_expected(c, a->line, "(:rgba (r g b a))");
      for (int d = 0; d < 4; d++)
        if (bddl_number(c, &a->items[1].items[d], &g->rgba[d])) return -1;
    } else {
      return bddl_expected(c, a->line, "a region attribute (:target, :ranges, :yaw_rotation or :rgba)");
    }
  }
  if (!g->target) return bddl_expected(c, r->line, "a (:target NAME) in this region");
  size_t n = strlen(g->target) + strlen(g->name) + 2;
  g->key = rdt_malloc(n);
  snprintf(g->key, n, "%s_%s", g->target, g->name);
  return 0;
}

/* Typed list "a b - type c - type2" into instances, in LIBERO's dict order:
 * a category keeps its first position; a repeated category replaces its list. */
static int bddl_typed_list(bddl_ctx *c, const sx *g, bddl_instance **out, int *count) {
  int pending_from = g->n;  /* index of the first untyped name */
  for (int i = 1; i < g->n; i++) {
    const sx *t = &g->items[i];
    if (!t->text) return bddl_expected(c, t->line, "a name or '-'");
    if (strcmp(t->text, "-")) {
      if (pending_from == g->n) pending_from = i;
      continue;
    }
    if (i + 1 >= g->n || !g->items[i + 1].text) return bddl_expected(c, t->line, "a category name after '-'");
    if (pending_from == g->n) return bddl_expected(c, t->line, "instance names before '-'");
    const char *cat = g->items[i + 1].text;
    /* drop an earlier list of the same category, keep its position */
    int at = -1;
    for (int k = 0; k < *count; k++)
      if (!strcmp((*out)[k].category, cat)) {
        if (at < 0) at = k;
      }
    int nnew = i - pending_from;
    bddl_instance *fresh = rdt_malloc((size_t)nnew * sizeof *fresh);
    for (int k = 0; k < nnew; k++) {
      fresh[k].name = rdt_strdup(g->items[pending_from + k].text);
      fresh[k].category = rdt_strdup(cat);
    }
    if (at < 0) {
      *out = rdt_realloc(*out, (size_t)(*count + nnew) * sizeof **out);
      memcpy(*out + *count, fresh, (size_t)nnew * sizeof *fresh);
      *count += nnew;
    } else {
      int old_end = at;
      while (old_end < *count && !strcmp((*out)[old_end].category, cat)) old_end++;
      for (int k = at; k < old_end; k++) free((*out)[k].name), free((*out)[k].category);
      int nold = old_end - at, total = *count - nold + nnew;
      bddl_instance *merged = rdt_malloc((size_t)total * sizeof *merged);
      memcpy(merged, *out, (size_t)at * sizeof *merged);
      memcpy(merged + at, fresh, (size_t)nnew * sizeof *merged);
      memcpy(merged + at + nnew, *out + old_end, (size_t)(*count - old_end) * sizeof *merged);
      free(*out);
      *out = merged;
      *count = total;
    }
    free(fresh);
    pending_from = g->n;
    i++;
  }
  if (pending_from != g->n)  /* untyped names end up under "object" upstream */
    return bddl_expected(c, g->items[pending_from].line, "'- CATEGORY' after the instance names");
  return 0;
}

/* An atom (pred a [b]) into *a. */
static int bddl_atom_parse(bddl_ctx *c, const sx *s, bddl_atom *a) {
  memset(a, 0, sizeof *a);
  if (s->text || s->n < 2 || s->n > 3) return bddl_expected(c, s->line, "a predicate with one or two arguments, e.g. (On a b)");
  for (int i = 0; i < s->n; i++)
    if (!s->items[i].text) return bddl_expected(c, s->items[i].line, "a name, not a list, in the predicate");
  a->pred = rdt_strdup(s->items[0].text);
  a->nargs = s->n - 1;
  for (int i = 0; i < a->nargs; i++) a->args[i] = rdt_strdup(s->items[i + 1].text);
  a->line = s->line;
  return 0;
}

/* Print an atom list (for goal_text). */
static void bddl_print_sx(const sx *s, char *buf, size_t cap, size_t *len) {
  if (s->text) {
    *len += (size_t)snprintf(buf + *len, *len < cap ? cap - *len : 0, "%s", s->text);
    return;
  }
  *len += (size_t)snprintf(buf + *len, *len < cap ? cap - *len : 0, "(");
  for (int i = 0; i < s->n; i++) {
    if (i) *len += (size_t)snprintf(buf + *len, *len < cap ? cap - *len : 0, " ");
    bddl_print_sx(&s->items[i], buf, cap, len);
  }
  *len += (size_t)snprintf(buf + *len, *len < cap ? cap - *len : 0, ")");
}

/* :goal (and atoms...) or a single atom, as bddl package_predicates. */
static int bddl_goal_parse(bddl_ctx *c, const sx *g) {
  if (g->n != 2 || g->items[1].text) return bddl_expected(c, g->line, "(:goal (And ...))");
  const sx *body = &g->items[1];
  bddl_problem *p = c->p;
  int from = sx_head(body, "and") ? 1 : 0;
  int n = from ? body->n - 1 : 1;
  if (n < 1) return bddl_expected(c, body->line, "at least one goal predicate");
  p->goal = rdt_calloc((size_t)n, sizeof *p->goal);
  for (int i = 0; i < n; i++) {
    const sx *s = from ? &body->items[i + 1] : body;
    if (bddl_atom_parse(c, s, &p->goal[i])) return -1;
    p->ngoal++;
  }
  char buf[4096];
  size_t len = 0;
  bddl_print_sx(body, buf, sizeof buf, &len);
  p->goal_text = rdt_strdup(buf);
  return 0;
}

/* One top-level section. */
static int bddl_section(bddl_ctx *c, const sx *g, unsigned *seen) {
  bddl_problem *p = c->p;
  if (g->text || g->n < 1 || !g->items[0].text) return bddl_expected(c, g->line, "a section such as (:objects ...)");
  const char *t = g->items[0].text;
  /* upstream walks sections from the end, so the first occurrence wins */
  static const char *names[] = {"problem", ":domain", ":language", ":regions", ":fixtures",
                                ":objects", ":obj_of_interest", ":init", ":goal", ":requirements"};
  int k = 0;
  while (k < 10 && strcmp(t, names[k])) k++;
  if (k == 10) return bddl_expected(c, g->line, "a known section (:language, :regions, :fixtures, :objects, :obj_of_interest, :init, :goal)");
  if (*seen & (1u << k)) return rdt_fail("%s:%d: section %s appears twice", c->name, g->line, t);
  *seen |= 1u << k;
  if (k == 0) {
    if (g->n != 2 || !g->items[1].text) return bddl_expected(c, g->line, "(problem NAME)");
    p->problem = rdt_strdup(g->items[1].text);
  } else if (k == 1) {
    if (g->n != 2 || !sx_is(&g->items[1], "robosuite")) return bddl_expected(c, g->line, "(:domain robosuite)");
  } else if (k == 2) {
    size_t len = 1;
    for (int i = 1; i < g->n; i++) {
      if (!g->items[i].text) return bddl_expected(c, g->items[i].line, "words in :language");
      len += strlen(g->items[i].text) + 1;
    }
    p->language = rdt_calloc(len, 1);
    for (int i = 1; i < g->n; i++) {
      if (i > 1) strcat(p->language, " ");
      strcat(p->language, g->items[i].text);
    }
  } else if (k == 3) {
    for (int i = 1; i < g->n; i++)
      if (bddl_region_parse(c, &g->items[i])) return -1;
  } else if (k == 4) {
    return bddl_typed_list(c, g, &p->fixtures, &p->nfixtures);
  } else if (k == 5) {
    return bddl_typed_list(c, g, &p->objects, &p->nobjects);
  } else if (k == 6) {
    p->interest = rdt_calloc((size_t)g->n, sizeof *p->interest);
    for (int i = 1; i < g->n; i++) {
      if (!g->items[i].text) return bddl_expected(c, g->items[i].line, "an object name in :obj_of_interest");
      p->interest[p->ninterest++] = rdt_strdup(g->items[i].text);
    }
  } else if (k == 7) {
    p->init = rdt_calloc((size_t)g->n, sizeof *p->init);
    for (int i = 1; i < g->n; i++) {
      if (bddl_atom_parse(c, &g->items[i], &p->init[p->ninit])) return -1;
      p->ninit++;
    }
  } else if (k == 8) {
    return bddl_goal_parse(c, g);
  }
  return 0;
}

/* Check that every name the goal refers to exists. */
static int bddl_check_names(bddl_ctx *c) {
  bddl_problem *p = c->p;
  for (int i = 0; i < p->ngoal; i++)
    for (int a = 0; a < p->goal[i].nargs; a++) {
      const char *n = p->goal[i].args[a];
      if (!bddl_object_find(p, n) && !bddl_fixture_find(p, n) && !bddl_region_find(p, n))
        return rdt_fail("%s:%d: expected an object, fixture or region name, got '%s'", c->name,
                        p->goal[i].line, n);
    }
  return 0;
}

/* Parse text. */
bddl_problem *bddl_parse(const char *text, const char *name) {
  sx top;
  if (sx_scan(text, name, &top)) return NULL;
  bddl_problem *p = rdt_calloc(1, sizeof *p);
  p->path = rdt_strdup(name);
  bddl_ctx c = {name, p};
  unsigned seen = 0;
  int rc = 0;
  if (top.text || top.n < 1 || !sx_is(&top.items[0], "define")) {
    rc = bddl_expected(&c, top.line, "(define (problem NAME) ...)");
  } else {
    for (int i = 1; i < top.n && !rc; i++) rc = bddl_section(&c, &top.items[i], &seen);
  }
  if (!rc && !p->problem) rc = bddl_expected(&c, top.line, "(problem NAME) in the define");
  if (!rc && !p->ngoal) rc = bddl_expected(&c, top.line, "a (:goal ...) section");
  if (!rc) rc = bddl_check_names(&c);
  if (!p->language) p->language = rdt_strdup("");
  sx_clear(&top);
  if (rc) {
    bddl_free(p);
    return NULL;
  }
  return p;
}

/* Parse a file. */
bddl_problem *bddl_load(const char *path) {
  size_t len;
  char *text = rdt_read_file(path, &len);
  if (!text) return NULL;
  if (strlen(text) != len) {
    free(text);
    return rdt_fail("%s: expected text, found a NUL byte", path), NULL;
  }
  bddl_problem *p = bddl_parse(text, path);
  free(text);
  return p;
}

/* Free instances. */
static void bddl_free_instances(bddl_instance *v, int n) {
  for (int i = 0; i < n; i++) free(v[i].name), free(v[i].category);
  free(v);
}

/* Free atoms. */
static void bddl_free_atoms(bddl_atom *v, int n) {
  for (int i = 0; i < n; i++) {
    free(v[i].pred);
    for (int a = 0; a < v[i].nargs; a++) free(v[i].args[a]);
  }
  free(v);
}

/* Free a problem. */
void bddl_free(bddl_problem *p) {
  if (!p) return;
  for (int i = 0; i < p->nregions; i++) {
    free(p->regions[i].key), free(p->regions[i].name), free(p->regions[i].target);
    free(p->regions[i].ranges);
  }
  free(p->regions);
  bddl_free_instances(p->fixtures, p->nfixtures);
  bddl_free_instances(p->objects, p->nobjects);
  for (int i = 0; i < p->ninterest; i++) free(p->interest[i]);
  free(p->interest);
  bddl_free_atoms(p->init, p->ninit);
  bddl_free_atoms(p->goal, p->ngoal);
  free(p->goal_text);
  free(p->language);
  free(p->problem);
  free(p->path);
  free(p);
}

/* Region by key. */
const bddl_region *bddl_region_find(const bddl_problem *p, const char *key) {
  for (int i = 0; i < p->nregions; i++)
    if (!strcmp(p->regions[i].key, key)) return &p->regions[i];
  return NULL;
}

/* Instance by name in a list. */
static const bddl_instance *bddl_find_in(const bddl_instance *v, int n, const char *name) {
  for (int i = 0; i < n; i++)
    if (!strcmp(v[i].name, name)) return &v[i];
  return NULL;
}

const bddl_instance *bddl_fixture_find(const bddl_problem *p, const char *name) {
  return bddl_find_in(p->fixtures, p->nfixtures, name);
}

const bddl_instance *bddl_object_find(const bddl_problem *p, const char *name) {
  return bddl_find_in(p->objects, p->nobjects, name);
}
