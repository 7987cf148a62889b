/* core/flags.h: command-line flags with upstream names.
 *
 * A command declares a table of flags; rdt_flags_parse applies the defaults,
 * then argv.  Both --name=value and --name value work; a bool flag alone means
 * true (--record_video), or takes true/false/1/0.  A dotted flag
 * (--model.rdt.depth=2) is a config override and is collected in `overrides`.
 * An unknown flag fails with the closest known name suggested.  --help prints
 * every flag with its default.
 */
#ifndef RDT_FLAGS_H
#define RDT_FLAGS_H

#include <stdio.h>
#include <stdint.h>

typedef enum {
  RDT_FLAG_STR,    /* ptr: const char **                       */
  RDT_FLAG_INT,    /* ptr: int64_t *                            */
  RDT_FLAG_FLOAT,  /* ptr: double *                             */
  RDT_FLAG_BOOL,   /* ptr: int *                                */
  RDT_FLAG_LIST    /* ptr: rdt_strlist *; repeatable, commas split */
} rdt_flag_type;

typedef struct {
  int n;
  char **v;
} rdt_strlist;

typedef struct {
  const char *name;   /* without the leading dashes */
  rdt_flag_type type;
  void *ptr;
  const char *def;    /* default as text, or NULL for none (STR stays NULL) */
  const char *help;
} rdt_flag;

/* key=value pairs from dotted flags, in command-line order. */
typedef struct {
  int n;
  char **keys;
  char **values;
} rdt_overrides;

/* Parse argv[1..argc-1] (argv[0] is the command name).  Positional arguments
 * are returned in *pos (may be NULL: then positionals are an error).
 * Returns 0 ok, 1 when --help was printed (caller exits 0), -1 on error
 * (message in rdt_error()).  ov may be NULL: then dotted flags are an error. */
int rdt_flags_parse(const char *cmd, const char *summary, const rdt_flag *flags, int nflags,
                    int argc, char **argv, rdt_overrides *ov, rdt_strlist *pos);

/* Print usage: summary, then each flag with type, default and help. */
void rdt_flags_usage(FILE *f, const char *cmd, const char *summary, const rdt_flag *flags, int nflags);

/* Was this flag given explicitly on the command line (after the last parse)? */
int rdt_flag_given(const rdt_flag *flags, int nflags, const char *name);

/* Edit distance, exposed for tests. */
int rdt_edit_distance(const char *a, const char *b);

void rdt_strlist_push(rdt_strlist *l, const char *s);
void rdt_strlist_free(rdt_strlist *l);
void rdt_overrides_free(rdt_overrides *ov);

#endif
