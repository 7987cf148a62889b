/* core/log.c: leveled messages to stderr, optionally mirrored to a file. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "core/log.h"

static rdt_log_level log_level = RDT_LOG_INFO;
static int log_level_read;
static int log_rank = -1;
static FILE *log_file;
static pthread_mutex_t log_mutex = PTHREAD_MUTEX_INITIALIZER;

void rdt_log_set_level(rdt_log_level level) {
  log_level = level;
  log_level_read = 1;
}

void rdt_log_set_rank(int rank) { log_rank = rank; }

void rdt_log_set_file(const char *path) {
  pthread_mutex_lock(&log_mutex);
  if (log_file) fclose(log_file);
  log_file = path ? fopen(path, "a") : NULL;
  pthread_mutex_unlock(&log_mutex);
}

/* RDT_LOG from the environment, read once. */
static void read_env_level(void) {
  if (log_level_read) return;
  log_level_read = 1;
  const char *e = getenv("RDT_LOG");
  if (!e) return;
  if (strcmp(e, "debug") == 0) log_level = RDT_LOG_DEBUG;
  else if (strcmp(e, "warn") == 0) log_level = RDT_LOG_WARN;
  else if (strcmp(e, "error") == 0) log_level = RDT_LOG_ERROR;
}

static void vlog(rdt_log_level level, const char *fmt, va_list ap) {
  static const char *names[] = {"debug", "info", "warning", "error"};
  char msg[4096], rank[32] = "";
  vsnprintf(msg, sizeof msg, fmt, ap);
  if (log_rank >= 0) snprintf(rank, sizeof rank, "[rank %d] ", log_rank);
  pthread_mutex_lock(&log_mutex);
  if (level >= log_level) {
    if (level == RDT_LOG_INFO) fprintf(stderr, "%s%s\n", rank, msg);
    else fprintf(stderr, "%srdt: %s: %s\n", rank, names[level], msg);
  }
  if (log_file) {
    time_t now = time(NULL);
    struct tm tm;
    char stamp[32];
    localtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", &tm);
    fprintf(log_file, "%s %s%s: %s\n", stamp, rank, names[level], msg);
    fflush(log_file);
  }
  pthread_mutex_unlock(&log_mutex);
}

void rdt_log(rdt_log_level level, const char *fmt, ...) {
  read_env_level();
  va_list ap;
  va_start(ap, fmt);
  vlog(level, fmt, ap);
  va_end(ap);
}

#define WARN_ONCE_MAX 256
static char *warned[WARN_ONCE_MAX];
static int nwarned;

void rdt_warn_once(const char *key, const char *fmt, ...) {
  pthread_mutex_lock(&log_mutex);
  for (int i = 0; i < nwarned; i++) {
    if (strcmp(warned[i], key) == 0) {
      pthread_mutex_unlock(&log_mutex);
      return;
    }
  }
  if (nwarned < WARN_ONCE_MAX) warned[nwarned++] = strdup(key);
  pthread_mutex_unlock(&log_mutex);
  read_env_level();
  va_list ap;
  va_start(ap, fmt);
  vlog(RDT_LOG_WARN, fmt, ap);
  va_end(ap);
}
