/* core/flags.c: command-line flags (--name=value, --name value), usage and suggestions.
 *
 * cmd is the subcommand name ("train"); messages say 'rdt train'.  A cmd that
 * already starts with "rdt" is used as it is.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "core/flags.h"

/* Which flags the last rdt_flags_parse saw on the command line. */
static const rdt_flag *given_table;
static unsigned char *given;
static int given_count;

static const char *type_names[] = {"string", "int", "float", "bool", "list"};

/* "rdt train" from "train" into buf. */
static const char *full_cmd(const char *cmd, char *buf, size_t len) {
  if (strncmp(cmd, "rdt", 3) == 0 && (cmd[3] == 0 || cmd[3] == ' ')) snprintf(buf, len, "%s", cmd);
  else snprintf(buf, len, "rdt %s", cmd);
  return buf;
}

int rdt_edit_distance(const char *a, const char *b) {
  /* Optimal string alignment: insertions, deletions, substitutions, adjacent swaps. */
  size_t n = strlen(a), m = strlen(b);
  int *d = rdt_malloc(sizeof *d * (n + 1) * (m + 1));
#define D(i, j) d[(i) * (m + 1) + (j)]
  for (size_t i = 0; i <= n; i++) D(i, 0) = (int)i;
  for (size_t j = 0; j <= m; j++) D(0, j) = (int)j;
  for (size_t i = 1; i <= n; i++) {
    for (size_t j = 1; j <= m; j++) {
      int cost = a[i - 1] != b[j - 1];
      int v = D(i - 1, j) + 1;
      if (D(i, j - 1) + 1 < v) v = D(i, j - 1) + 1;
      if (D(i - 1, j - 1) + cost < v) v = D(i - 1, j - 1) + cost;
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && D(i - 2, j - 2) + 1 < v)
        v = D(i - 2, j - 2) + 1;
      D(i, j) = v;
    }
  }
  int r = D(n, m);
#undef D
  free(d);
  return r;
}

void rdt_strlist_push(rdt_strlist *l, const char *s) {
  l->v = rdt_realloc(l->v, sizeof *l->v * (size_t)(l->n + 1));
  l->v[l->n++] = rdt_strdup(s);
}

void rdt_strlist_free(rdt_strlist *l) {
  for (int i = 0; i < l->n; i++) free(l->v[i]);
  free(l->v);
  l->n = 0;
  l->v = NULL;
}

void rdt_overrides_free(rdt_overrides *ov) {
  for (int i = 0; i < ov->n; i++) free(ov->keys[i]), free(ov->values[i]);
  free(ov->keys);
  free(ov->values);
  memset(ov, 0, sizeof *ov);
}

/* Append each comma-separated item of text (empty items skipped). */
static void list_add_items(rdt_strlist *l, const char *text) {
  char *copy = rdt_strdup(text), *save = NULL;
  for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) rdt_strlist_push(l, tok);
  free(copy);
}

/* Parse a bool spelling; -1 if not one. */
static int parse_bool(const char *s) {
  if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "1") || !strcmp(s, "yes")) return 1;
  if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "0") || !strcmp(s, "no")) return 0;
  return -1;
}

/* Store value into flag f (from the command line, or its default when is_default). */
static int flag_set(const char *cmd, const rdt_flag *f, const char *value, int is_default) {
  char c[128];
  const char *where = is_default ? "default of" : "flag";
  switch (f->type) {
    case RDT_FLAG_STR: *(const char **)f->ptr = value; return 0;
    case RDT_FLAG_INT: {
      char *end;
      errno = 0;
      long long v = strtoll(value, &end, 10);
      if (!*value || *end || errno == ERANGE)
        return rdt_fail("%s --%s for '%s' expects an integer, got '%s'", where, f->name, full_cmd(cmd, c, sizeof c), value);
      *(int64_t *)f->ptr = v;
      return 0;
    }
    case RDT_FLAG_FLOAT: {
      char *end;
      errno = 0;
      double v = strtod(value, &end);
      if (!*value || *end || errno == ERANGE || !isfinite(v))
        return rdt_fail("%s --%s for '%s' expects a number, got '%s'", where, f->name, full_cmd(cmd, c, sizeof c), value);
      *(double *)f->ptr = v;
      return 0;
    }
    case RDT_FLAG_BOOL: {
      int v = parse_bool(value);
      if (v < 0)
        return rdt_fail("%s --%s for '%s' expects true or false, got '%s'", where, f->name, full_cmd(cmd, c, sizeof c), value);
      *(int *)f->ptr = v;
      return 0;
    }
    case RDT_FLAG_LIST: list_add_items(f->ptr, value); return 0;
  }
  return rdt_fail("flag --%s: bad type", f->name);
}

/* Apply every flag's default. */
static int apply_defaults(const char *cmd, const rdt_flag *flags, int nflags) {
  for (int i = 0; i < nflags; i++) {
    const rdt_flag *f = &flags[i];
    if (f->type == RDT_FLAG_LIST) memset(f->ptr, 0, sizeof(rdt_strlist));
    if (f->type == RDT_FLAG_STR) *(const char **)f->ptr = f->def;
    else if (f->def && flag_set(cmd, f, f->def, 1) != 0) return -1;
  }
  return 0;
}

static int find_flag(const rdt_flag *flags, int nflags, const char *name, size_t len) {
  for (int i = 0; i < nflags; i++)
    if (strlen(flags[i].name) == len && strncmp(flags[i].name, name, len) == 0) return i;
  return -1;
}

/* The "unknown flag" error, with the closest known name when it is close. */
static int unknown_flag(const char *cmd, const rdt_flag *flags, int nflags, const char *name) {
  char c[128];
  int best = -1, best_d = 1 << 30;
  for (int i = 0; i < nflags; i++) {
    int d = rdt_edit_distance(name, flags[i].name);
    if (d < best_d) best_d = d, best = i;
  }
  int close = best >= 0 && (best_d <= 2 || best_d * 3 <= (int)strlen(name));
  if (close)
    return rdt_fail("unknown flag --%s for '%s' (did you mean --%s?)", name, full_cmd(cmd, c, sizeof c), flags[best].name);
  return rdt_fail("unknown flag --%s for '%s' (see rdt %s --help)", name, full_cmd(cmd, c, sizeof c),
                  strncmp(cmd, "rdt ", 4) == 0 ? cmd + 4 : cmd);
}

/* Handle one "--name[=value]" at argv[*i]; may consume the next argument. */
static int parse_one(const char *cmd, const rdt_flag *flags, int nflags, int argc, char **argv, int *i,
                     rdt_overrides *ov) {
  char c[128];
  const char *name = argv[*i] + 2, *eq = strchr(name, '=');
  size_t len = eq ? (size_t)(eq - name) : strlen(name);
  const char *value = eq ? eq + 1 : NULL;
  int k = find_flag(flags, nflags, name, len);
  if (k < 0 && memchr(name, '.', len) && ov) {   /* config override */
    if (!value) {
      if (*i + 1 >= argc) return rdt_fail("override --%s for '%s' needs a value", name, full_cmd(cmd, c, sizeof c));
      value = argv[++*i];
    }
    ov->keys = rdt_realloc(ov->keys, sizeof *ov->keys * (size_t)(ov->n + 1));
    ov->values = rdt_realloc(ov->values, sizeof *ov->values * (size_t)(ov->n + 1));
    ov->keys[ov->n] = rdt_malloc(len + 1);
    memcpy(ov->keys[ov->n], name, len);
    ov->keys[ov->n][len] = 0;
    ov->values[ov->n++] = rdt_strdup(value);
    return 0;
  }
  if (k < 0) {
    char *bare = rdt_malloc(len + 1);
    memcpy(bare, name, len);
    bare[len] = 0;
    unknown_flag(cmd, flags, nflags, bare);
    free(bare);
    return -1;
  }
  const rdt_flag *f = &flags[k];
  if (!value && f->type == RDT_FLAG_BOOL) {   /* --flag alone, or --flag true|false */
    if (*i + 1 < argc && parse_bool(argv[*i + 1]) >= 0) value = argv[++*i];
    else value = "true";
  }
  if (!value) {
    if (*i + 1 >= argc) return rdt_fail("flag --%s for '%s' needs a value", f->name, full_cmd(cmd, c, sizeof c));
    value = argv[++*i];
  }
  if (f->type == RDT_FLAG_LIST && !given[k]) rdt_strlist_free(f->ptr);   /* replace the default */
  given[k] = 1;
  return flag_set(cmd, f, value, 0);
}

int rdt_flags_parse(const char *cmd, const char *summary, const rdt_flag *flags, int nflags,
                    int argc, char **argv, rdt_overrides *ov, rdt_strlist *pos) {
  char c[128];
  free(given);
  given = rdt_calloc((size_t)nflags + 1, 1);
  given_table = flags;
  given_count = nflags;
  if (ov) memset(ov, 0, sizeof *ov);
  if (pos) memset(pos, 0, sizeof *pos);
  if (apply_defaults(cmd, flags, nflags) != 0) return -1;
  int only_positional = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!only_positional && (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)) {
      rdt_flags_usage(stdout, cmd, summary, flags, nflags);
      return 1;
    }
    if (!only_positional && strcmp(a, "--") == 0) {
      only_positional = 1;
    } else if (!only_positional && a[0] == '-' && a[1] == '-') {
      if (parse_one(cmd, flags, nflags, argc, argv, &i, ov) != 0) return -1;
    } else if (!only_positional && a[0] == '-' && a[1] != 0) {
      return rdt_fail("unknown flag %s for '%s' (flags start with --)", a, full_cmd(cmd, c, sizeof c));
    } else if (pos) {
      rdt_strlist_push(pos, a);
    } else {
      return rdt_fail("'%s' takes no positional arguments, got '%s'", full_cmd(cmd, c, sizeof c), a);
    }
  }
  return 0;
}

void rdt_flags_usage(FILE *f, const char *cmd, const char *summary, const rdt_flag *flags, int nflags) {
  char c[128];
  fprintf(f, "usage: %s [flags]\n", full_cmd(cmd, c, sizeof c));
  if (summary && *summary) fprintf(f, "\n%s\n", summary);
  fprintf(f, "\nflags:\n");
  int width = 0;
  for (int i = 0; i < nflags; i++) {
    int w = (int)strlen(flags[i].name) + (int)strlen(type_names[flags[i].type]) + 1;
    if (w > width) width = w;
  }
  for (int i = 0; i < nflags; i++) {
    const rdt_flag *g = &flags[i];
    int w = (int)strlen(g->name) + (int)strlen(type_names[g->type]) + 1;
    fprintf(f, "  --%s %s%*s  %s", g->name, type_names[g->type], width - w, "", g->help ? g->help : "");
    if (g->def) fprintf(f, " (default: %s)", *g->def ? g->def : "\"\"");
    else if (!g->help || !strstr(g->help, "default")) fprintf(f, " (default: none)");   /* else the help says it */
    fputc('\n', f);
  }
  fprintf(f, "  --%-*s  print this help\n", width, "help");
}

int rdt_flag_given(const rdt_flag *flags, int nflags, const char *name) {
  if (flags != given_table || !given) return 0;
  int k = find_flag(flags, nflags < given_count ? nflags : given_count, name, strlen(name));
  return k >= 0 && given[k];
}
