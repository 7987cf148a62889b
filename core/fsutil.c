/* core/fsutil.c: whole-file reads, atomic writes, folders and paths. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "core/error.h"
#include "core/fsutil.h"

/* Open a regular file for reading and stat it; -1 + rdt_error() naming it. */
static int open_regular(const char *path, struct stat *sb) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return rdt_fail("%s: cannot open: %s", path, strerror(errno));
  if (fstat(fd, sb) != 0 || !S_ISREG(sb->st_mode)) {
    close(fd);
    return rdt_fail("%s: not a regular file", path);
  }
  return fd;
}

void *rdt_map_file(const char *path, size_t *len) {
  static char empty;
  struct stat sb;
  int fd = open_regular(path, &sb);
  if (fd < 0) return NULL;
  *len = (size_t)sb.st_size;
  void *p = *len ? mmap(NULL, *len, PROT_READ, MAP_PRIVATE, fd, 0) : &empty;
  close(fd);
  if (p == MAP_FAILED) {
    rdt_fail("%s: cannot map: %s", path, strerror(errno));
    return NULL;
  }
  return p;
}

void rdt_unmap_file(void *p, size_t len) {
  if (p && len) munmap(p, len);
}

char *rdt_read_file(const char *path, size_t *len) {
  struct stat sb;
  int fd = open_regular(path, &sb);
  if (fd < 0) return NULL;
  size_t cap = (size_t)sb.st_size + 1, n = 0;
  char *buf = rdt_malloc(cap);
  for (;;) {
    if (n + 1 >= cap) buf = rdt_realloc(buf, cap *= 2);   /* the file grew meanwhile */
    ssize_t r = read(fd, buf + n, cap - 1 - n);
    if (r == 0) break;
    if (r < 0) {
      if (errno == EINTR) continue;
      rdt_fail("%s: read failed: %s", path, strerror(errno));
      close(fd);
      free(buf);
      return NULL;
    }
    n += (size_t)r;
  }
  close(fd);
  buf[n] = 0;
  if (len) *len = n;
  return buf;
}

int rdt_atomic_open(rdt_atomic_file *f, const char *path) {
  size_t n = strlen(path) + 32;
  memset(f, 0, sizeof *f);
  f->path = rdt_strdup(path);
  f->tmp = rdt_malloc(n);
  snprintf(f->tmp, n, "%s.tmp.%d", path, (int)getpid());
  f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (f->fd < 0) {
    rdt_fail("%s: cannot create %s: %s", path, f->tmp, strerror(errno));
    free(f->path);
    free(f->tmp);
    memset(f, 0, sizeof *f);
    f->fd = -1;
    return -1;
  }
  return 0;
}

void rdt_atomic_abort(rdt_atomic_file *f) {
  if (f->fd >= 0) close(f->fd);
  if (f->tmp) unlink(f->tmp);
  free(f->path);
  free(f->tmp);
  memset(f, 0, sizeof *f);
  f->fd = -1;
}

/* Record "PATH: what failed: errno text", abort, return -1. */
static int atomic_fail(rdt_atomic_file *f, const char *what, int err) {
  rdt_fail("%s: %s: %s", f->path ? f->path : "?", what, strerror(err));
  rdt_atomic_abort(f);
  return -1;
}

int rdt_atomic_write(rdt_atomic_file *f, const void *data, size_t len) {
  const char *p = data;
  if (f->fd < 0) return rdt_fail("atomic write on a closed file");
  while (len > 0) {
    ssize_t w = write(f->fd, p, len > (1u << 30) ? (1u << 30) : len);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return atomic_fail(f, "write failed", errno);
    p += w;
    len -= (size_t)w;
  }
  return 0;
}

int rdt_atomic_commit(rdt_atomic_file *f) {
  if (f->fd < 0) return rdt_fail("atomic commit on a closed file");
  if (fsync(f->fd) != 0) return atomic_fail(f, "fsync failed", errno);
  int rc = close(f->fd);
  f->fd = -1;
  if (rc != 0) return atomic_fail(f, "close failed", errno);
  if (rename(f->tmp, f->path) != 0) return atomic_fail(f, "rename failed", errno);
  char *dir = rdt_dirname(f->path);
  rc = rdt_fsync_dir(dir);
  free(dir);
  free(f->path);
  free(f->tmp);
  memset(f, 0, sizeof *f);
  f->fd = -1;
  return rc;
}

int rdt_write_file_atomic(const char *path, const void *data, size_t len) {
  rdt_atomic_file f;
  if (rdt_atomic_open(&f, path) != 0) return -1;
  if (rdt_atomic_write(&f, data, len) != 0) return -1;
  return rdt_atomic_commit(&f);
}

int rdt_mkdirs(const char *path) {
  if (!*path) return rdt_fail("mkdirs: empty path");
  char *p = rdt_strdup(path);
  for (char *s = p + 1;; s++) {
    if (*s != '/' && *s != 0) continue;
    char c = *s;
    *s = 0;
    if (mkdir(p, 0755) != 0 && errno != EEXIST) {
      rdt_fail("%s: cannot create folder %s: %s", path, p, strerror(errno));
      free(p);
      return -1;
    }
    *s = c;
    if (!c) break;
  }
  free(p);
  return rdt_is_dir(path) ? 0 : rdt_fail("%s: exists and is not a folder", path);
}

int rdt_rmtree(const char *path) {
  struct stat sb;
  if (lstat(path, &sb) != 0) return errno == ENOENT ? 0 : rdt_fail("%s: %s", path, strerror(errno));
  if (!S_ISDIR(sb.st_mode))
    return unlink(path) == 0 ? 0 : rdt_fail("%s: cannot remove: %s", path, strerror(errno));
  DIR *d = opendir(path);
  if (!d) return rdt_fail("%s: cannot open folder: %s", path, strerror(errno));
  int rc = 0;
  struct dirent *e;
  while (rc == 0 && (e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    char *child = rdt_path_join(path, e->d_name);
    rc = rdt_rmtree(child);
    free(child);
  }
  closedir(d);
  if (rc == 0 && rmdir(path) != 0) rc = rdt_fail("%s: cannot remove folder: %s", path, strerror(errno));
  return rc;
}

int rdt_is_dir(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

int rdt_is_file(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

int rdt_fsync_dir(const char *path) {
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return rdt_fail("%s: cannot open folder: %s", path, strerror(errno));
  int rc = fsync(fd) == 0 || errno == EINVAL ? 0 : rdt_fail("%s: fsync failed: %s", path, strerror(errno));
  close(fd);
  return rc;
}

char *rdt_path_join(const char *a, const char *b) {
  size_t na = strlen(a), nb = strlen(b);
  int slash = na > 0 && a[na - 1] != '/';
  char *s = rdt_malloc(na + nb + 2);
  memcpy(s, a, na);
  if (slash) s[na] = '/';
  memcpy(s + na + slash, b, nb + 1);
  return s;
}

const char *rdt_basename(const char *path) {
  const char *s = strrchr(path, '/');
  return s ? s + 1 : path;
}

char *rdt_dirname(const char *path) {
  const char *s = strrchr(path, '/');
  if (!s) return rdt_strdup(".");
  if (s == path) return rdt_strdup("/");
  size_t n = (size_t)(s - path);
  char *d = rdt_malloc(n + 1);
  memcpy(d, path, n);
  d[n] = 0;
  return d;
}

/* qsort comparator for an array of C strings. */
static int compare_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

int rdt_list_dir(const char *path, const char *suffix, char ***out) {
  DIR *d = opendir(path);
  if (!d) return rdt_fail("%s: cannot open folder: %s", path, strerror(errno));
  size_t ns = suffix ? strlen(suffix) : 0;
  int n = 0, cap = 16;
  char **names = rdt_malloc(sizeof *names * (size_t)cap);
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    size_t len = strlen(e->d_name);
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    if (len < ns || memcmp(e->d_name + len - ns, suffix, ns) != 0) continue;
    if (n == cap) names = rdt_realloc(names, sizeof *names * (size_t)(cap *= 2));
    names[n++] = rdt_strdup(e->d_name);
  }
  closedir(d);
  qsort(names, (size_t)n, sizeof *names, compare_names);
  *out = names;
  return n;
}
