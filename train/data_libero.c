/* train/data_libero.c: LIBERO demonstration files -> RDT training samples,
 * dataset mixtures, sampling, and the statistics behind `rdt stats`. */
#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "core/fsutil.h"
#include "core/json.h"
#include "rdt_build.h"
#include "train/data_libero.h"
#if RDT_HAVE_HDF5
#include <hdf5.h>
#endif

/* Joint motion (rad) that ends the still prefix of an episode (upstream EPS). */
#define STILL_EPS 1e-2

typedef struct {
  char *path;
  char *instruction;
  int dataset;
#if RDT_HAVE_HDF5
  hid_t fid;
#endif
} lfile;

typedef struct {
  rdt_episode_info info;
  int file;
  int h, w;              /* image size */
} lepisode;

struct rdt_libero_data {
  rdt_libero_opts opts;
  int nds;
  char **ds_name;
  double *ds_weight;     /* normalised sampling probability */
  int *ds_ep0;           /* episodes of dataset i: [ds_ep0[i], ds_ep0[i+1]) */
  int nfiles;
  lfile *files;
  int neps;
  lepisode *eps;
  int64_t *cum;          /* cum[e] = usable steps of episodes before e; cum[neps] = total */
};

/* One episode's low-dimensional arrays, T rows each. */
typedef struct {
  int T;
  double *actions, *joints, *gripper, *pos, *ori;   /* 7, 7, 2, 3, 3 columns */
} lowdim;

/* ================================================================ options and sources */

void rdt_libero_opts_init(rdt_libero_opts *o, int image_size) {
  memset(o, 0, sizeof *o);
  o->format = rdt_uni_format_default();
  rdt_image_cfg_init(&o->image, image_size);
  o->chunk = 64;
  o->skip_still = 1;
  o->action_offset = 0;
  o->instruction = RDT_INSTR_FILENAME;
}

static int has_suffix(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && !strcmp(s + n - m, suffix);
}

/* Append one source. */
static void add_source(rdt_data_source **s, int *n, const char *name, const char *path, double w) {
  *s = rdt_realloc(*s, sizeof **s * (size_t)(*n + 1));
  (*s)[*n].name = rdt_strdup(name);
  (*s)[*n].path = rdt_strdup(path);
  (*s)[*n].weight = w;
  (*n)++;
}

/* A path from a list file: absolute as is, else relative to the list's folder. */
static char *list_path(const char *dir, const char *p) {
  return p[0] == '/' ? rdt_strdup(p) : rdt_path_join(dir, p);
}

/* Weight of `name` from a finetune_sample_weights.json object (0 if absent). */
static int weight_of(const rdt_json *weights, const char *name, const char *wpath, double *w) {
  *w = 0;
  if (!weights) return 0;
  const rdt_json *v = rdt_json_get(weights, name);
  if (!v) return rdt_fail("%s: no weight for dataset '%s'", wpath, name);
  if (v->type != RDT_JSON_NUMBER || !(v->number > 0))
    return rdt_fail("%s: weight of '%s' must be a positive number", wpath, name);
  *w = v->number;
  return 0;
}

/* A dataset-list JSON (array of names or {name: path}) plus optional weights beside it. */
static int parse_list(const char *json_path, rdt_data_source **s, int *n) {
  rdt_json *list = rdt_json_load(json_path), *weights = NULL;
  if (!list) return -1;
  char *dir = rdt_dirname(json_path), *wpath = rdt_path_join(dir, "finetune_sample_weights.json");
  int rc = 0;
  if (rdt_is_file(wpath)) {
    weights = rdt_json_load(wpath);
    if (!weights) rc = -1;
    else if (weights->type != RDT_JSON_OBJECT) rc = rdt_fail("%s: expected an object {name: weight}", wpath);
  }
  if (!rc && list->type != RDT_JSON_ARRAY && list->type != RDT_JSON_OBJECT)
    rc = rdt_fail("%s: expected a list of dataset names or an object {name: path}", json_path);
  for (int i = 0; !rc && i < list->count; i++) {
    const rdt_json *it = &list->items[i];
    const char *name = list->type == RDT_JSON_ARRAY ? it->string : it->key;
    double w;
    if (it->type != RDT_JSON_STRING) {
      rc = rdt_fail("%s: item %d: expected a string", json_path, i);
      break;
    }
    if ((rc = weight_of(weights, name, wpath, &w)) < 0) break;
    char *path = list_path(dir, it->string);
    add_source(s, n, name, path, w);
    free(path);
  }
  if (!rc && list->count == 0) rc = rdt_fail("%s: no datasets listed", json_path);
  rdt_json_free(list);
  rdt_json_free(weights);
  free(dir);
  free(wpath);
  return rc;
}

int rdt_data_sources_parse(const char *const *values, int n, const char *dataset_name,
                           rdt_data_source **out, int *n_out) {
  rdt_data_source *s = NULL;
  int ns = 0;
  if (n <= 0) return rdt_fail("no --data_dir given");
  for (int i = 0; i < n; i++) {
    if (has_suffix(values[i], ".json")) {
      if (parse_list(values[i], &s, &ns) < 0) {
        rdt_data_sources_free(s, ns);
        return -1;
      }
    } else {
      add_source(&s, &ns, dataset_name && *dataset_name ? dataset_name : "libero", values[i], 0);
    }
  }
  *out = s;
  *n_out = ns;
  return 0;
}

void rdt_data_sources_free(rdt_data_source *s, int n) {
  for (int i = 0; i < n; i++) free(s[i].name), free(s[i].path);
  free(s);
}

/* ================================================================ instructions */

#if RDT_HAVE_HDF5   /* the instruction helpers serve the HDF5 layer only */
/* LIBERO's grab_language_from_filename on a demo file name: for upper-case
 * names the words after "SCENE<digits>_", else all words; '_' -> ' '.  The
 * "_demo.hdf5" / ".hdf5" tail is dropped first.  NULL when the name does not
 * follow the pattern. */
static char *instruction_from_filename(const char *path) {
  const char *base = rdt_basename(path), *s = base;
  size_t n = strlen(base);
  if (has_suffix(base, "_demo.hdf5")) n -= strlen("_demo.hdf5");
  else if (has_suffix(base, ".hdf5")) n -= strlen(".hdf5");
  if (isupper((unsigned char)base[0])) {
    const char *sc = strstr(base, "SCENE");
    if (!sc || sc >= base + n) return NULL;
    s = sc + 5;
    while (isdigit((unsigned char)*s)) s++;
    if (*s != '_') return NULL;
    s++;
  }
  if (s >= base + n) return NULL;
  char *out = rdt_malloc(n + 1);
  size_t len = (size_t)(base + n - s);
  for (size_t i = 0; i < len; i++) out[i] = s[i] == '_' ? ' ' : s[i];
  out[len] = 0;
  return out;
}

/* language_instruction of a problem_info JSON text; NULL + error. */
static char *instruction_from_problem_info(const char *path, const char *text) {
  if (!text) {
    rdt_fail("%s: data: no readable string attribute problem_info", path);
    return NULL;
  }
  rdt_json *j = rdt_json_parse(text, strlen(text));
  if (!j) {
    rdt_fail_ctx("%s: data.attrs['problem_info']", path);
    return NULL;
  }
  const rdt_json *v = rdt_json_get(j, "language_instruction");
  char *out = v && v->type == RDT_JSON_STRING ? rdt_strdup(v->string) : NULL;
  if (!out) rdt_fail("%s: problem_info has no language_instruction string", path);
  rdt_json_free(j);
  return out;
}

/* ================================================================ HDF5 layer */

/* HDF5 is built thread-safe on Debian; one lock keeps other builds safe too. */
static pthread_mutex_t h5_lock = PTHREAD_MUTEX_INITIALIZER;

/* Silence HDF5's automatic error printing (per thread in thread-safe builds). */
static void h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

static herr_t h5_first_error(unsigned n, const H5E_error2_t *e, void *data) {
  if (n == 0 && e->desc) snprintf((char *)data, 200, "%s", e->desc);
  return 0;
}

/* The most specific message on this thread's HDF5 error stack (or ""). */
static const char *h5_reason(void) {
  static _Thread_local char buf[200];
  buf[0] = 0;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, h5_first_error, buf);
  H5Eclear2(H5E_DEFAULT);
  return buf;
}

/* Open a dataset and check rank, trailing dims, class; dims[0] returned as *T. */
static hid_t h5_dataset(hid_t fid, const char *file, const char *dpath, int rank,
                        const hsize_t *tail, H5T_class_t cls, hsize_t *dims) {
  if (H5Lexists(fid, dpath, H5P_DEFAULT) <= 0) {
    rdt_fail("%s: %s: missing", file, dpath);
    return -1;
  }
  hid_t d = H5Dopen2(fid, dpath, H5P_DEFAULT);
  if (d < 0) {
    rdt_fail("%s: %s: cannot open (%s)", file, dpath, h5_reason());
    return -1;
  }
  hid_t sp = H5Dget_space(d), ty = H5Dget_type(d);
  int r = H5Sget_simple_extent_ndims(sp), ok = r == rank;
  if (ok) H5Sget_simple_extent_dims(sp, dims, NULL);
  for (int i = 1; ok && i < rank; i++) ok = !tail[i - 1] || dims[i] == tail[i - 1];
  H5T_class_t c = H5Tget_class(ty);
  size_t tsize = H5Tget_size(ty);
  H5Sclose(sp);
  H5Tclose(ty);
  if (!ok) {
    char want[64] = "(T";
    for (int i = 1; i < rank; i++) {
      size_t l = strlen(want);
      if (tail[i - 1]) snprintf(want + l, sizeof want - l, ",%llu", (unsigned long long)tail[i - 1]);
      else snprintf(want + l, sizeof want - l, ",*");
    }
    strcat(want, ")");
    char got[64] = "(";
    for (int i = 0; i < r && i < 4; i++) {
      size_t l = strlen(got);
      snprintf(got + l, sizeof got - l, "%s%llu", i ? "," : "", (unsigned long long)dims[i]);
    }
    strcat(got, ")");
    rdt_fail("%s: %s: expected shape %s, found %s", file, dpath, want, r == rank ? got : "another rank");
  } else if (c != cls || (cls == H5T_INTEGER && tsize != 1)) {
    rdt_fail("%s: %s: expected %s, found another type", file, dpath,
             cls == H5T_INTEGER ? "uint8" : "floating-point numbers");
    ok = 0;
  }
  if (!ok) {
    H5Dclose(d);
    return -1;
  }
  return d;
}

/* Read rows [r0, r0 + nrows) of a dataset with row size `row` elements into buf. */
static int h5_read_rows(hid_t d, hid_t memtype, int rank, const hsize_t *dims, hsize_t r0,
                        hsize_t nrows, void *buf) {
  hsize_t start[4] = {r0, 0, 0, 0}, count[4] = {nrows, dims[1], rank > 2 ? dims[2] : 1, rank > 3 ? dims[3] : 1};
  hid_t fs = H5Dget_space(d), ms = H5Screate_simple(rank, count, NULL);
  herr_t e = H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL);
  if (e >= 0) e = H5Dread(d, memtype, ms, fs, H5P_DEFAULT, buf);
  H5Sclose(ms);
  H5Sclose(fs);
  return e < 0 ? -1 : 0;
}

/* A string attribute of an object (variable or fixed length); NULL if absent or unreadable. */
static char *h5_string_attr(hid_t obj, const char *name) {
  if (H5Aexists(obj, name) <= 0) return NULL;
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT), ty = H5Aget_type(a), mt = H5Tcopy(H5T_C_S1);
  char *out = NULL;
  if (H5Tget_class(ty) == H5T_STRING) {
    H5Tset_cset(mt, H5Tget_cset(ty));   /* h5py writes UTF-8; HDF5 will not convert between sets */
    if (H5Tis_variable_str(ty) > 0) {
      char *s = NULL;
      H5Tset_size(mt, H5T_VARIABLE);
      if (H5Aread(a, mt, &s) >= 0 && s) out = rdt_strdup(s);
      if (s) H5free_memory(s);
    } else {
      size_t n = H5Tget_size(ty);
      out = rdt_calloc(n + 1, 1);
      H5Tset_size(mt, n + 1);
      if (H5Aread(a, mt, out) < 0) free(out), out = NULL;
    }
  }
  H5Tclose(mt);
  H5Tclose(ty);
  H5Aclose(a);
  return out;
}

/* The shapes of the low-dimensional arrays and the images. */
static const char *const lowdim_names[5] = {"actions", "obs/joint_states", "obs/gripper_states",
                                            "obs/ee_pos", "obs/ee_ori"};
static const hsize_t lowdim_cols[5] = {7, 7, 2, 3, 3};
static const char *const image_names[2] = {"obs/agentview_rgb", "obs/eye_in_hand_rgb"};

/* Validate one episode group; fills T and the image size. */
static int check_episode(const lfile *f, const char *key, int *T, int *h, int *w) {
  char p[256];
  hsize_t dims[4];
  for (int i = 0; i < 5; i++) {
    snprintf(p, sizeof p, "data/%s/%s", key, lowdim_names[i]);
    hid_t d = h5_dataset(f->fid, f->path, p, 2, &lowdim_cols[i], H5T_FLOAT, dims);
    if (d < 0) return -1;
    H5Dclose(d);
    if (i == 0) *T = (int)dims[0];
    if ((int)dims[0] != *T || dims[0] == 0)
      return rdt_fail("%s: %s: %llu rows, but actions has %d", f->path, p,
                      (unsigned long long)dims[0], *T);
  }
  for (int c = 0; c < 2; c++) {
    static const hsize_t tail[3] = {0, 0, 3};
    snprintf(p, sizeof p, "data/%s/%s", key, image_names[c]);
    hid_t d = h5_dataset(f->fid, f->path, p, 4, tail, H5T_INTEGER, dims);
    if (d < 0) return -1;
    H5Dclose(d);
    if ((int)dims[0] != *T) return rdt_fail("%s: %s: %llu frames, but actions has %d rows",
                                            f->path, p, (unsigned long long)dims[0], *T);
    if (c == 0) *h = (int)dims[1], *w = (int)dims[2];
    else if ((int)dims[1] != *h || (int)dims[2] != *w)
      return rdt_fail("%s: %s: %llux%llu images, agentview has %dx%d", f->path, p,
                      (unsigned long long)dims[1], (unsigned long long)dims[2], *h, *w);
  }
  return 0;
}

/* Read all five low-dimensional arrays of an episode. */
static int read_lowdim(const rdt_libero_data *d, int e, lowdim *L) {
  const lepisode *ep = &d->eps[e];
  const lfile *f = &d->files[ep->file];
  double **dst[5] = {&L->actions, &L->joints, &L->gripper, &L->pos, &L->ori};
  char p[256];
  int rc = 0;
  L->T = ep->info.length;
  for (int i = 0; i < 5; i++) *dst[i] = rdt_malloc(sizeof(double) * L->T * lowdim_cols[i]);
  h5_quiet();
  pthread_mutex_lock(&h5_lock);
  for (int i = 0; i < 5 && !rc; i++) {
    hsize_t dims[2] = {(hsize_t)L->T, lowdim_cols[i]};
    snprintf(p, sizeof p, "data/%s/%s", ep->info.key, lowdim_names[i]);
    hid_t ds = H5Dopen2(f->fid, p, H5P_DEFAULT);
    if (ds < 0 || h5_read_rows(ds, H5T_NATIVE_DOUBLE, 2, dims, 0, dims[0], *dst[i]) < 0)
      rc = rdt_fail("%s: %s: read failed (%s)", f->path, p, h5_reason());
    if (ds >= 0) H5Dclose(ds);
  }
  pthread_mutex_unlock(&h5_lock);
  return rc;
}

/* Read frame t of camera c of episode e into buf (h x w x 3). */
static int read_frame(const rdt_libero_data *d, int e, int c, int t, uint8_t *buf) {
  const lepisode *ep = &d->eps[e];
  const lfile *f = &d->files[ep->file];
  char p[256];
  hsize_t dims[4] = {(hsize_t)ep->info.length, (hsize_t)ep->h, (hsize_t)ep->w, 3};
  int rc = 0;
  snprintf(p, sizeof p, "data/%s/%s", ep->info.key, image_names[c]);
  h5_quiet();
  pthread_mutex_lock(&h5_lock);
  hid_t ds = H5Dopen2(f->fid, p, H5P_DEFAULT);
  if (ds < 0 || h5_read_rows(ds, H5T_NATIVE_UINT8, 4, dims, (hsize_t)t, 1, buf) < 0)
    rc = rdt_fail("%s: %s: reading frame %d failed (%s)", f->path, p, t, h5_reason());
  if (ds >= 0) H5Dclose(ds);
  pthread_mutex_unlock(&h5_lock);
  return rc;
}

/* Numeric suffix order of demo_N keys. */
static int compare_demo_keys(const void *a, const void *b) {
  long x = strtol(*(char *const *)a + 5, NULL, 10), y = strtol(*(char *const *)b + 5, NULL, 10);
  return x < y ? -1 : x > y;
}

/* The demo_N member names of the data group (sorted by N); count or -1. */
static int list_demos(const lfile *f, hid_t g, char ***out) {
  H5G_info_t info;
  if (H5Gget_info(g, &info) < 0) return rdt_fail("%s: data: unreadable group (%s)", f->path, h5_reason());
  char **keys = rdt_malloc(sizeof *keys * (info.nlinks + 1));
  int n = 0;
  for (hsize_t i = 0; i < info.nlinks; i++) {
    char name[128];
    if (H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof name, H5P_DEFAULT) < 0)
      continue;
    char *end;
    if (!strncmp(name, "demo_", 5) && name[5] && (strtol(name + 5, &end, 10), !*end))
      keys[n++] = rdt_strdup(name);
  }
  qsort(keys, (size_t)n, sizeof *keys, compare_demo_keys);
  *out = keys;
  return n;
}

/* Open one file: validate it, read its instruction, append its episodes. */
static int open_file(rdt_libero_data *d, lfile *f) {
  h5_quiet();
  FILE *probe = fopen(f->path, "rb");
  if (!probe) return rdt_fail("%s: cannot open", f->path);
  fclose(probe);
  f->fid = H5Fopen(f->path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f->fid < 0) return rdt_fail("%s: not a readable HDF5 file (truncated or corrupt?): %s", f->path, h5_reason());
  if (H5Lexists(f->fid, "data", H5P_DEFAULT) <= 0)
    return rdt_fail("%s: no group 'data' (not a LIBERO demo file)", f->path);
  hid_t g = H5Gopen2(f->fid, "data", H5P_DEFAULT);
  if (g < 0) return rdt_fail("%s: data: cannot open (%s)", f->path, h5_reason());
  char *info = h5_string_attr(g, "problem_info"), **keys = NULL;
  int rc = 0, n = list_demos(f, g, &keys);
  H5Gclose(g);
  if (d->opts.instruction == RDT_INSTR_FILENAME) f->instruction = instruction_from_filename(f->path);
  if (!f->instruction && !(f->instruction = instruction_from_problem_info(f->path, info))) rc = -1;
  if (!rc && n <= 0) rc = n < 0 ? -1 : rdt_fail("%s: data: no demo_N episodes", f->path);
  for (int i = 0; i < n && !rc; i++) {
    lepisode ep = {.file = (int)(f - d->files)};
    if ((rc = check_episode(f, keys[i], &ep.info.length, &ep.h, &ep.w)) < 0) break;
    ep.info.key = keys[i];
    keys[i] = NULL;
    d->eps = rdt_realloc(d->eps, sizeof *d->eps * (size_t)(d->neps + 1));
    d->eps[d->neps++] = ep;
  }
  for (int i = 0; i < n; i++) free(keys[i]);
  free(keys);
  free(info);
  return rc;
}

static void close_file(lfile *f) {
  if (f->fid > 0) H5Fclose(f->fid);
}

#else  /* !RDT_HAVE_HDF5 */

static int open_file(rdt_libero_data *d, lfile *f) {
  (void)d;
  return rdt_fail("%s: this rdt was built without HDF5 (install libhdf5-dev and rebuild)", f->path);
}
static void close_file(lfile *f) { (void)f; }
static int read_lowdim(const rdt_libero_data *d, int e, lowdim *L) {
  (void)d, (void)e;
  memset(L, 0, sizeof *L);
  return rdt_fail("built without HDF5");
}
static int read_frame(const rdt_libero_data *d, int e, int c, int t, uint8_t *buf) {
  (void)d, (void)e, (void)c, (void)t, (void)buf;
  return rdt_fail("built without HDF5");
}

#endif

static void lowdim_free(lowdim *L) {
  free(L->actions), free(L->joints), free(L->gripper), free(L->pos), free(L->ori);
}

/* ================================================================ opening */

/* Files of a source: the file itself or the sorted *.hdf5 of a folder. */
static int source_files(const rdt_data_source *s, char ***paths) {
  if (rdt_is_file(s->path)) {
    *paths = rdt_malloc(sizeof **paths);
    (*paths)[0] = rdt_strdup(s->path);
    return 1;
  }
  if (!rdt_is_dir(s->path)) return rdt_fail("dataset '%s': %s: no such file or folder", s->name, s->path);
  char **names;
  int n = rdt_list_dir(s->path, ".hdf5", &names);
  if (n < 0) return -1;
  if (n == 0) {
    free(names);
    return rdt_fail("dataset '%s': %s: no *.hdf5 files", s->name, s->path);
  }
  for (int i = 0; i < n; i++) {
    char *p = rdt_path_join(s->path, names[i]);
    free(names[i]);
    names[i] = p;
  }
  *paths = names;
  return n;
}

/* The first usable step: the step before the first joint move > STILL_EPS. */
static int still_prefix(const lowdim *L) {
  for (int t = 1; t < L->T; t++)
    for (int j = 0; j < 7; j++)
      if (fabs(L->joints[t * 7 + j] - L->joints[j]) > STILL_EPS) return t - 1;
  return 0;
}

/* Starts, cumulative steps, dataset ranges and weights. */
static int index_episodes(rdt_libero_data *d) {
  d->cum = rdt_calloc((size_t)d->neps + 1, sizeof *d->cum);
  d->ds_ep0 = rdt_calloc((size_t)d->nds + 1, sizeof *d->ds_ep0);
  for (int e = 0; e < d->neps; e++) {
    rdt_episode_info *in = &d->eps[e].info;
    lfile *f = &d->files[d->eps[e].file];
    in->dataset = f->dataset;
    in->file = f->path;
    in->instruction = f->instruction;
    if (d->opts.skip_still) {
      lowdim L;
      int rc = read_lowdim(d, e, &L);
      if (!rc) in->start = still_prefix(&L);
      lowdim_free(&L);
      if (rc) return -1;
    }
    d->cum[e + 1] = d->cum[e] + (in->length - in->start);
    d->ds_ep0[in->dataset + 1] = e + 1;
  }
  for (int i = 1; i <= d->nds; i++)
    if (d->ds_ep0[i] < d->ds_ep0[i - 1]) d->ds_ep0[i] = d->ds_ep0[i - 1];
  int weighted = 0;
  double total = 0;
  for (int i = 0; i < d->nds; i++) weighted += d->ds_weight[i] > 0;
  if (weighted && weighted != d->nds)
    return rdt_fail("sample weights: give a weight to every dataset or to none");
  for (int i = 0; i < d->nds; i++) {
    if (!weighted) d->ds_weight[i] = (double)(d->cum[d->ds_ep0[i + 1]] - d->cum[d->ds_ep0[i]]);
    total += d->ds_weight[i];
  }
  for (int i = 0; i < d->nds; i++) d->ds_weight[i] /= total;
  return 0;
}

rdt_libero_data *rdt_libero_open(const rdt_data_source *src, int n, const rdt_libero_opts *o) {
  rdt_libero_data *d = rdt_calloc(1, sizeof *d);
  d->opts = *o;
  if (!d->opts.format) d->opts.format = rdt_uni_format_default();
  if (n <= 0 || o->chunk <= 0) {
    if (n <= 0) rdt_fail("no datasets given");
    else rdt_fail("action chunk size %d: must be positive", o->chunk);
    free(d);
    return NULL;
  }
  d->nds = n;
  d->ds_name = rdt_calloc((size_t)n, sizeof *d->ds_name);
  d->ds_weight = rdt_calloc((size_t)n, sizeof *d->ds_weight);
  for (int i = 0; i < n; i++) {
    char **paths = NULL;
    d->ds_name[i] = rdt_strdup(src[i].name);
    d->ds_weight[i] = src[i].weight;
    int nf = source_files(&src[i], &paths);
    if (nf < 0) goto fail;
    d->files = rdt_realloc(d->files, sizeof *d->files * (size_t)(d->nfiles + nf));
    for (int k = 0; k < nf; k++) d->files[d->nfiles++] = (lfile){.path = paths[k], .dataset = i};
    free(paths);
  }
  for (int k = 0; k < d->nfiles; k++)
    if (open_file(d, &d->files[k]) < 0) goto fail;
  if (index_episodes(d) == 0) return d;
fail:
  rdt_libero_close(d);
  return NULL;
}

void rdt_libero_close(rdt_libero_data *d) {
  if (!d) return;
  for (int i = 0; i < d->nfiles; i++) {
    close_file(&d->files[i]);
    free(d->files[i].path);
    free(d->files[i].instruction);
  }
  for (int e = 0; e < d->neps; e++) free((char *)d->eps[e].info.key);
  for (int i = 0; i < d->nds; i++) free(d->ds_name[i]);
  free(d->files), free(d->eps), free(d->cum), free(d->ds_name), free(d->ds_weight), free(d->ds_ep0);
  free(d);
}

/* ================================================================ queries and sampling */

const rdt_libero_opts *rdt_libero_options(const rdt_libero_data *d) { return &d->opts; }
int rdt_libero_num_datasets(const rdt_libero_data *d) { return d->nds; }
const char *rdt_libero_dataset_name(const rdt_libero_data *d, int i) { return d->ds_name[i]; }
int rdt_libero_num_episodes(const rdt_libero_data *d) { return d->neps; }
const rdt_episode_info *rdt_libero_episode(const rdt_libero_data *d, int e) { return &d->eps[e].info; }
int64_t rdt_libero_num_steps(const rdt_libero_data *d) { return d->cum[d->neps]; }

void rdt_libero_image_size(const rdt_libero_data *d, int e, int *h, int *w) {
  *h = d->eps[e].h;
  *w = d->eps[e].w;
}

/* The episode e in [lo, hi) with cum[e] <= i < cum[e+1]. */
static int find_episode(const rdt_libero_data *d, int lo, int hi, int64_t i) {
  while (hi - lo > 1) {
    int mid = (lo + hi) / 2;
    if (d->cum[mid] <= i) lo = mid;
    else hi = mid;
  }
  return lo;
}

void rdt_libero_step_at(const rdt_libero_data *d, int64_t i, int *episode, int *t) {
  int e = find_episode(d, 0, d->neps, i);
  *episode = e;
  *t = d->eps[e].info.start + (int)(i - d->cum[e]);
}

void rdt_libero_draw(const rdt_libero_data *d, rdt_rng *r, int *episode, int *t) {
  double u = rdt_rng_uniform(r);
  int ds = 0;
  while (ds < d->nds - 1 && (u -= d->ds_weight[ds]) >= 0) ds++;
  while (d->ds_ep0[ds + 1] == d->ds_ep0[ds]) ds = (ds + 1) % d->nds;   /* a dataset without steps */
  int lo = d->ds_ep0[ds], hi = d->ds_ep0[ds + 1];
  int64_t i = d->cum[lo] + (int64_t)rdt_rng_below(r, (uint64_t)(d->cum[hi] - d->cum[lo]));
  int e = find_episode(d, lo, hi, i);
  *episode = e;
  *t = d->eps[e].info.start + (int)(i - d->cum[e]);
}

/* ================================================================ samples */

rdt_sample *rdt_sample_new(const rdt_libero_data *d) {
  rdt_sample *s = rdt_calloc(1, sizeof *s);
  size_t S = (size_t)d->opts.image.size;
  s->in.images = rdt_malloc(sizeof(float) * RDT_NUM_IMAGES * 3 * S * S);
  s->actions = rdt_malloc(sizeof(float) * (size_t)d->opts.chunk * RDT_UNI_DIM);
  return s;
}

void rdt_sample_free(rdt_sample *s) {
  if (!s) return;
  free(s->in.images);
  free(s->actions);
  free(s);
}

/* Row t of the arrays as a raw observation (no images). */
static void lowdim_obs(const lowdim *L, int t, rdt_raw_obs *o) {
  memcpy(o->joint_pos, L->joints + t * 7, sizeof o->joint_pos);
  memcpy(o->gripper_qpos, L->gripper + t * 2, sizeof o->gripper_qpos);
  memcpy(o->eef_pos, L->pos + t * 3, sizeof o->eef_pos);
  memcpy(o->eef_ori, L->ori + t * 3, sizeof o->eef_ori);
}

/* Chunk element k at step t: step index min(t + offset + k, T - 1), where
 * absolute formats look one step further (the poses after the current one). */
static void chunk_element(const rdt_libero_data *d, const lowdim *L, int t, int k, float *out) {
  int idx = t + d->opts.action_offset + k + (d->opts.format->action == RDT_ACT_ABS);
  if (idx > L->T - 1) idx = L->T - 1;
  if (idx < 0) idx = 0;
  rdt_uni_action(d->opts.format, L->actions + idx * 7, L->pos + idx * 3, L->ori + idx * 3, out);
}

/* Per-episode mean, population std and root mean square of the state vectors. */
static void episode_state_stats(const rdt_libero_data *d, const lowdim *L, rdt_sample *s) {
  rdt_stat_acc acc;
  rdt_stat_result r;
  rdt_raw_obs o = {0};
  float v[RDT_UNI_DIM];
  rdt_stat_acc_init(&acc);
  for (int t = 0; t < L->T; t++) {
    lowdim_obs(L, t, &o);
    rdt_uni_state(d->opts.format, &o, v);
    rdt_stat_acc_add(&acc, v);
  }
  rdt_stat_acc_result(&acc, &r);
  for (int i = 0; i < RDT_UNI_DIM; i++) {
    s->state_mean[i] = (float)r.mean[i];
    s->state_std[i] = (float)r.std[i];
    s->state_norm[i] = (float)sqrt(acc.sumsq[i] / (double)acc.n);
  }
}

/* The raw observation at (e, t) with its images read into buf (4 frames). */
static int raw_obs(const rdt_libero_data *d, const lowdim *L, int e, int t, rdt_raw_obs *o,
                   uint8_t *buf) {
  const lepisode *ep = &d->eps[e];
  size_t frame = (size_t)ep->h * ep->w * 3;
  memset(o, 0, sizeof *o);
  lowdim_obs(L, t, o);
  o->h = ep->h, o->w = ep->w;
  for (int c = 0; c < RDT_RAW_CAMERAS; c++)
    for (int hist = 0; hist < RDT_IMG_HISTORY; hist++) {
      int tt = t - (RDT_IMG_HISTORY - 1 - hist);
      if (tt < ep->info.start) continue;   /* before the episode start: absent, mask 0 */
      uint8_t *dst = buf + (size_t)(c * RDT_IMG_HISTORY + hist) * frame;
      if (read_frame(d, e, c, tt, dst) < 0) return -1;
      o->image[c][hist] = dst;
    }
  return 0;
}

/* Check (e, t) against the episode. */
static int check_step(const rdt_libero_data *d, int e, int t) {
  if (e < 0 || e >= d->neps) return rdt_fail("episode %d out of range (0..%d)", e, d->neps - 1);
  const rdt_episode_info *in = &d->eps[e].info;
  if (t < 0 || t >= in->length)
    return rdt_fail("%s: data/%s: step %d out of range (0..%d)", in->file, in->key, t, in->length - 1);
  return 0;
}

int rdt_libero_raw_obs(const rdt_libero_data *d, int e, int t, rdt_raw_obs *o, uint8_t *buf) {
  lowdim L;
  if (check_step(d, e, t) < 0) return -1;
  int rc = read_lowdim(d, e, &L);
  if (!rc) rc = raw_obs(d, &L, e, t, o, buf);
  lowdim_free(&L);
  return rc;
}

int rdt_libero_get(const rdt_libero_data *d, int e, int t, rdt_rng *aug, rdt_sample *s) {
  lowdim L;
  rdt_raw_obs o;
  if (check_step(d, e, t) < 0) return -1;
  const lepisode *ep = &d->eps[e];
  uint8_t *buf = rdt_malloc((size_t)4 * ep->h * ep->w * 3);
  int rc = read_lowdim(d, e, &L);
  if (!rc) rc = raw_obs(d, &L, e, t, &o, buf);
  if (!rc) rc = rdt_obs_to_model_input(d->opts.format, &d->opts.image, &o, aug, &s->in);
  if (!rc) {
    s->episode = e, s->t = t, s->dataset = ep->info.dataset;
    s->dataset_name = d->ds_name[ep->info.dataset];
    s->instruction = ep->info.instruction;
    for (int k = 0; k < d->opts.chunk; k++) chunk_element(d, &L, t, k, s->actions + (size_t)k * RDT_UNI_DIM);
    rdt_uni_action_mask(d->opts.format, s->action_mask);
    episode_state_stats(d, &L, s);
  }
  lowdim_free(&L);
  free(buf);
  return rc;
}

/* ================================================================ statistics */

void rdt_stat_acc_init(rdt_stat_acc *a) {
  memset(a, 0, sizeof *a);
  for (int i = 0; i < RDT_UNI_DIM; i++) a->min[i] = INFINITY, a->max[i] = -INFINITY;
}

void rdt_stat_acc_add(rdt_stat_acc *a, const float v[RDT_UNI_DIM]) {
  a->n++;
  for (int i = 0; i < RDT_UNI_DIM; i++) {
    double x = v[i];
    a->sum[i] += x;
    a->sumsq[i] += x * x;
    if (fabs(x) > 1e-8) a->nz[i]++, a->zsum[i] += x, a->zsumsq[i] += x * x;
    if (x < a->min[i]) a->min[i] = x;
    if (x > a->max[i]) a->max[i] = x;
  }
}

void rdt_stat_acc_merge(rdt_stat_acc *a, const rdt_stat_acc *b) {
  a->n += b->n;
  for (int i = 0; i < RDT_UNI_DIM; i++) {
    a->sum[i] += b->sum[i], a->sumsq[i] += b->sumsq[i];
    a->nz[i] += b->nz[i], a->zsum[i] += b->zsum[i], a->zsumsq[i] += b->zsumsq[i];
    if (b->min[i] < a->min[i]) a->min[i] = b->min[i];
    if (b->max[i] > a->max[i]) a->max[i] = b->max[i];
  }
}

/* mean = sum/n; std = sqrt(max(sumsq/n - mean^2, 0)); std_nz as upstream:
 * sqrt(max(zsumsq/nz - (zsum/n)^2 * n/nz, 0)) with nz at least 1. */
void rdt_stat_acc_result(const rdt_stat_acc *a, rdt_stat_result *r) {
  double n = a->n > 0 ? (double)a->n : 1;
  for (int i = 0; i < RDT_UNI_DIM; i++) {
    double mean = a->sum[i] / n, nz = a->nz[i] > 1 ? a->nz[i] : 1, zm = a->zsum[i] / n;
    r->mean[i] = mean;
    r->std[i] = sqrt(fmax(a->sumsq[i] / n - mean * mean, 0));
    r->std_nz[i] = sqrt(fmax(a->zsumsq[i] / nz - zm * zm * (n / nz), 0));
    r->min[i] = a->n ? a->min[i] : 0;
    r->max[i] = a->n ? a->max[i] : 0;
  }
}

int rdt_libero_stats(const rdt_libero_data *d, int ds, rdt_stat_acc *state, rdt_stat_acc *action) {
  if (ds < 0 || ds >= d->nds) return rdt_fail("dataset %d out of range", ds);
  rdt_raw_obs o = {0};
  float v[RDT_UNI_DIM];
  for (int e = d->ds_ep0[ds]; e < d->ds_ep0[ds + 1]; e++) {
    lowdim L;
    if (read_lowdim(d, e, &L) < 0) {
      lowdim_free(&L);
      return -1;
    }
    for (int t = 0; t < L.T; t++) {
      lowdim_obs(&L, t, &o);
      rdt_uni_state(d->opts.format, &o, v);
      rdt_stat_acc_add(state, v);
      chunk_element(d, &L, t, 0, v);
      rdt_stat_acc_add(action, v);
    }
    lowdim_free(&L);
  }
  return 0;
}
