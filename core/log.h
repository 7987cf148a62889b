/* core/log.h: messages to stderr, with a level and an optional rank prefix. */
#ifndef RDT_LOG_H
#define RDT_LOG_H

#include "core/error.h"

typedef enum { RDT_LOG_DEBUG, RDT_LOG_INFO, RDT_LOG_WARN, RDT_LOG_ERROR } rdt_log_level;

/* Messages below this level are dropped (default INFO; RDT_LOG=debug|info|warn|error). */
void rdt_log_set_level(rdt_log_level level);
/* Prefix every line with "[rank R] " (distributed runs); -1 for none. */
void rdt_log_set_rank(int rank);
/* Also append every message to this file (NULL to stop). */
void rdt_log_set_file(const char *path);

void rdt_log(rdt_log_level level, const char *fmt, ...) RDT_PRINTF(2, 3);
#define rdt_debug(...) rdt_log(RDT_LOG_DEBUG, __VA_ARGS__)
#define rdt_info(...)  rdt_log(RDT_LOG_INFO, __VA_ARGS__)
#define rdt_warn(...)  rdt_log(RDT_LOG_WARN, __VA_ARGS__)

/* Warn once per distinct key for the life of the process (thread-safe). */
void rdt_warn_once(const char *key, const char *fmt, ...) RDT_PRINTF(2, 3);

#endif
