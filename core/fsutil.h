/* core/fsutil.h: files and folders, with atomic writes. */
#ifndef RDT_FSUTIL_H
#define RDT_FSUTIL_H

#include <stddef.h>

/* Read a whole file (NUL-terminated, malloc'd); NULL + rdt_error(). */
char *rdt_read_file(const char *path, size_t *len);
/* Map a regular file read-only; NULL + rdt_error() naming it.  An empty file
 * gives a valid pointer to no bytes.  Release with rdt_unmap_file. */
void *rdt_map_file(const char *path, size_t *len);
void rdt_unmap_file(void *p, size_t len);
/* Write atomically: PATH.tmp.PID, fsync, rename, fsync the folder.  0 or -1. */
int rdt_write_file_atomic(const char *path, const void *data, size_t len);
/* A file written in pieces and published atomically: open creates PATH.tmp.PID,
 * commit fsyncs, renames it over PATH and fsyncs the folder; abort (or a failed
 * write or commit) removes the temporary and leaves PATH as it was. */
typedef struct {
  int fd;
  char *path, *tmp;
} rdt_atomic_file;
int rdt_atomic_open(rdt_atomic_file *f, const char *path);            /* 0 or -1 */
int rdt_atomic_write(rdt_atomic_file *f, const void *data, size_t len); /* 0 or -1 (then aborted) */
int rdt_atomic_commit(rdt_atomic_file *f);                             /* 0 or -1 (then aborted) */
void rdt_atomic_abort(rdt_atomic_file *f);
/* mkdir -p.  0 or -1. */
int rdt_mkdirs(const char *path);
/* Remove a folder and everything below it.  0 or -1. */
int rdt_rmtree(const char *path);
int rdt_is_dir(const char *path);
int rdt_is_file(const char *path);
/* fsync a folder so a rename inside it is durable. */
int rdt_fsync_dir(const char *path);
/* a + "/" + b into a malloc'd string. */
char *rdt_path_join(const char *a, const char *b);
/* Last component (pointer into path) and the folder part (malloc'd). */
const char *rdt_basename(const char *path);
char *rdt_dirname(const char *path);
/* Sorted names in a folder matching a suffix ("" for all), excluding . and ..;
 * returns count, names malloc'd into *out (free each and the array), -1 on error. */
int rdt_list_dir(const char *path, const char *suffix, char ***out);

#endif
