/* core/config.h: YAML configuration (libyaml) as a tree with dotted-key access.
 *
 * Keys are dotted paths: "model.rdt.hidden_size", sequence items by index:
 * "model.img_pos_embed_config.0".  Any key can be overridden from the command
 * line (--model.rdt.depth=2, see flags.h), which sets or creates a scalar.
 * Errors name the file, line and column.
 */
#ifndef RDT_CONFIG_H
#define RDT_CONFIG_H

#include <stdint.h>
#include <stddef.h>

typedef struct rdt_config rdt_config;

rdt_config *rdt_config_load(const char *path);                 /* NULL + rdt_error() */
rdt_config *rdt_config_parse(const char *text, size_t len, const char *name);
rdt_config *rdt_config_new(void);                              /* empty mapping */
void rdt_config_free(rdt_config *c);
const char *rdt_config_path(const rdt_config *c);

/* Set (creating mappings as needed) a scalar at a dotted key.  The value is
 * parsed as YAML would type it (int, float, bool, null, string).  0 or -1. */
int rdt_config_set(rdt_config *c, const char *key, const char *value);

int rdt_config_has(const rdt_config *c, const char *key);
/* Number of items of a sequence or mapping at key; -1 if absent or scalar. */
int rdt_config_len(const rdt_config *c, const char *key);
/* Name of the i-th key of a mapping at key (NULL if none). */
const char *rdt_config_key_at(const rdt_config *c, const char *key, int i);

/* Lenient getters: the default when absent.  A present value of the wrong type
 * is an error: these return the default and record it; call rdt_config_check()
 * afterwards, or use the strict forms. */
const char *rdt_config_str(const rdt_config *c, const char *key, const char *def);
int64_t rdt_config_int(const rdt_config *c, const char *key, int64_t def);
double rdt_config_float(const rdt_config *c, const char *key, double def);
int rdt_config_bool(const rdt_config *c, const char *key, int def);
/* -1 (with the first problem in rdt_error()) if a lenient getter met a wrong type. */
int rdt_config_check(const rdt_config *c);

/* Strict getters: 0 found, 1 absent (out untouched), -1 wrong type. */
int rdt_config_get_int(const rdt_config *c, const char *key, int64_t *out);
int rdt_config_get_float(const rdt_config *c, const char *key, double *out);
int rdt_config_get_bool(const rdt_config *c, const char *key, int *out);
int rdt_config_get_str(const rdt_config *c, const char *key, const char **out);

/* The whole tree as JSON text (malloc'd), for results files and config.json. */
char *rdt_config_to_json(const rdt_config *c);

#endif
