/* core/torchzip.c: torch.save archives without Python: a zip reader, a small
 * pickle machine that builds an object tree, and two interpreters of that tree
 * (state dicts of tensors; pickled numpy arrays).
 *
 * Every read is bounds-checked; a malformed file gives an error naming it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "core/fsutil.h"
#include "core/st_internal.h"
#include "core/torchzip.h"

/* ================================================================ zip */

typedef struct {
  char *name;
  int method;             /* 0 stored, 8 deflate, ... */
  uint64_t offset, size;  /* of the entry's bytes in the archive */
} zip_entry;

struct rdt_zip {
  char *path;
  unsigned char *base;
  size_t size;
  int count;
  zip_entry *entries;
};

static uint32_t le16(const unsigned char *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t le32(const unsigned char *p) { return le16(p) | le16(p + 2) << 16; }
static uint64_t le64(const unsigned char *p) { return le32(p) | (uint64_t)le32(p + 4) << 32; }

/* Does [off, off + len) lie inside the archive? */
static int zip_in(const rdt_zip *z, uint64_t off, uint64_t len) { return off <= z->size && len <= z->size - off; }

/* The end-of-central-directory record: where the directory starts and how many entries it has. */
static int zip_find_directory(const rdt_zip *z, uint64_t *cd_off, uint64_t *count) {
  if (z->size < 22) return rdt_fail("too short for a zip archive");
  size_t lowest = z->size > 22 + 65535 ? z->size - 22 - 65535 : 0, at = z->size - 22;
  for (;; at--) {
    if (le32(z->base + at) == 0x06054b50) break;
    if (at == lowest) return rdt_fail("not a zip archive (no end-of-directory record)");
  }
  const unsigned char *e = z->base + at;
  *count = le16(e + 10);
  *cd_off = le32(e + 16);
  if (*count != 0xffff && *cd_off != 0xffffffffu) return 0;
  /* zip64: a locator just before the record points at the zip64 end record. */
  if (at < 20 || le32(e - 20) != 0x07064b50) return rdt_fail("zip64 archive without a zip64 locator");
  uint64_t rec = le64(e - 12);
  if (!zip_in(z, rec, 56) || le32(z->base + rec) != 0x06064b50) return rdt_fail("bad zip64 end-of-directory record");
  *count = le64(z->base + rec + 32);
  *cd_off = le64(z->base + rec + 48);
  return 0;
}

/* Replace 0xffffffff sizes/offset with the values of a zip64 extra field. */
static int zip64_extra(const unsigned char *extra, uint32_t len, uint64_t *usize, uint64_t *csize, uint64_t *off) {
  for (uint32_t k = 0; k + 4 <= len;) {
    uint32_t id = le16(extra + k), n = le16(extra + k + 2);
    if (k + 4 + n > len) return rdt_fail("zip extra field runs past its entry");
    if (id == 1) {
      uint32_t q = k + 4;
      uint64_t *fields[3] = {usize, csize, off};
      for (int f = 0; f < 3; f++) {
        if (*fields[f] != 0xffffffffu) continue;
        if (q + 8 > k + 4 + n) return rdt_fail("zip64 extra field too short");
        *fields[f] = le64(extra + q);
        q += 8;
      }
    }
    k += 4 + n;
  }
  return 0;
}

/* Parse the central directory entry at *at into e; advances *at. */
static int zip_read_entry(rdt_zip *z, uint64_t *at, zip_entry *e) {
  if (!zip_in(z, *at, 46) || le32(z->base + *at) != 0x02014b50) return rdt_fail("bad central directory entry");
  const unsigned char *c = z->base + *at;
  uint32_t name_len = le16(c + 28), extra_len = le16(c + 30), comment_len = le16(c + 32);
  if (!zip_in(z, *at + 46, (uint64_t)name_len + extra_len + comment_len)) return rdt_fail("central directory entry runs past the end");
  uint64_t csize = le32(c + 20), usize = le32(c + 24), local = le32(c + 42);
  if (zip64_extra(c + 46 + name_len, extra_len, &usize, &csize, &local) != 0) return -1;
  e->name = rdt_malloc(name_len + 1);
  memcpy(e->name, c + 46, name_len);
  e->name[name_len] = 0;
  e->method = (int)le16(c + 10);
  *at += 46 + (uint64_t)name_len + extra_len + comment_len;
  if (!zip_in(z, local, 30) || le32(z->base + local) != 0x04034b50) return rdt_fail("entry '%s': bad local header", e->name);
  uint64_t data = local + 30 + le16(z->base + local + 26) + le16(z->base + local + 28);
  if (!zip_in(z, data, csize)) return rdt_fail("entry '%s' runs past the end of the archive", e->name);
  if (e->method == 0 && csize != usize) return rdt_fail("stored entry '%s' has different sizes", e->name);
  e->offset = data;
  e->size = csize;
  return 0;
}

/* Map path and read its central directory. */
static int zip_load(rdt_zip *z, const char *path) {
  if (!(z->base = rdt_map_file(path, &z->size))) return -1;
  uint64_t at = 0, count = 0;
  if (zip_find_directory(z, &at, &count) != 0) return -1;
  if (count > z->size / 46) return rdt_fail("zip directory claims %llu entries", (unsigned long long)count);
  z->entries = rdt_calloc((size_t)count + 1, sizeof *z->entries);
  for (uint64_t i = 0; i < count; i++) {
    z->count++;
    if (zip_read_entry(z, &at, &z->entries[i]) != 0) return -1;
  }
  return 0;
}

rdt_zip *rdt_zip_open(const char *path) {
  rdt_zip *z = rdt_calloc(1, sizeof *z);
  z->path = rdt_strdup(path);
  if (zip_load(z, path) != 0) {
    rdt_fail_ctx("%s", path);
    rdt_zip_close(z);
    return NULL;
  }
  return z;
}

void rdt_zip_close(rdt_zip *z) {
  if (!z) return;
  for (int i = 0; i < z->count; i++) free(z->entries[i].name);
  rdt_unmap_file(z->base, z->size);
  free(z->entries);
  free(z->path);
  free(z);
}

int rdt_zip_count(const rdt_zip *z) { return z->count; }

const char *rdt_zip_name(const rdt_zip *z, int i) { return i >= 0 && i < z->count ? z->entries[i].name : NULL; }

const void *rdt_zip_data(rdt_zip *z, const char *name, size_t *len) {
  for (int i = 0; i < z->count; i++) {
    const zip_entry *e = &z->entries[i];
    if (strcmp(e->name, name) != 0) continue;
    if (e->method != 0) {
      rdt_fail("%s: entry '%s' is compressed (method %d); only stored entries are supported", z->path, name, e->method);
      return NULL;
    }
    if (len) *len = (size_t)e->size;
    return z->base + e->offset;
  }
  rdt_fail("%s: no entry '%s'", z->path, name);
  return NULL;
}

/* ================================================================ pickle machine */

typedef enum { PY_NONE, PY_BOOL, PY_INT, PY_FLOAT, PY_STR, PY_BYTES, PY_TUPLE, PY_LIST, PY_DICT, PY_GLOBAL,
               PY_CALL, PY_PERSID } py_type;

/* A pickled object.  STR/BYTES/GLOBAL ("module.name") keep s (owned, NUL-terminated);
 * TUPLE/LIST keep items; DICT keeps keys and values alternating; CALL is
 * fn(*args) with BUILD state; PERSID is a persistent id (args). */
typedef struct py py;
struct py {
  py_type type;
  int64_t i;
  double f;
  char *s;
  size_t len;
  int n, cap;
  py **items;
  py *fn, *args, *state;
};

#define PVM_MAX_OBJECTS (1 << 24)
#define PVM_MAX_MEMO (1 << 20)

typedef struct {
  const unsigned char *start, *p, *end;
  py **pool;   /* every object, freed together */
  int npool, cap_pool;
  py **stack;
  int sp, cap_stack;
  int *marks;
  int nmarks, cap_marks;
  py **memo;
  size_t cap_memo, memo_count;   /* slots allocated; slots set (MEMOIZE's next index) */
} pvm;

/* "offset N: message" for the opcode being run. */
static int pvm_fail(const pvm *m, const char *what) {
  return rdt_fail("pickle offset %ld: %s", (long)(m->p - m->start), what);
}

static py *py_new(pvm *m, py_type type) {
  if (m->npool >= PVM_MAX_OBJECTS) return NULL;
  if (m->npool == m->cap_pool) {
    m->cap_pool = m->cap_pool ? m->cap_pool * 2 : 256;
    m->pool = rdt_realloc(m->pool, sizeof *m->pool * (size_t)m->cap_pool);
  }
  py *o = rdt_calloc(1, sizeof *o);
  o->type = type;
  m->pool[m->npool++] = o;
  return o;
}

static void py_append(py *o, py *item) {
  if (o->n == o->cap) {
    o->cap = o->cap ? o->cap * 2 : 4;
    o->items = rdt_realloc(o->items, sizeof *o->items * (size_t)o->cap);
  }
  o->items[o->n++] = item;
}

static void pvm_free(pvm *m) {
  for (int i = 0; i < m->npool; i++) free(m->pool[i]->s), free(m->pool[i]->items), free(m->pool[i]);
  free(m->pool);
  free(m->stack);
  free(m->marks);
  free(m->memo);
}

static int push(pvm *m, py *o) {
  if (!o) return pvm_fail(m, "too many objects");
  if (m->sp == m->cap_stack) {
    m->cap_stack = m->cap_stack ? m->cap_stack * 2 : 64;
    m->stack = rdt_realloc(m->stack, sizeof *m->stack * (size_t)m->cap_stack);
  }
  m->stack[m->sp++] = o;
  return 0;
}

/* Pop one object; NULL (with an error) if the stack is empty or at a mark. */
static py *pop(pvm *m) {
  int floor = m->nmarks ? m->marks[m->nmarks - 1] : 0;
  if (m->sp <= floor) {
    pvm_fail(m, "stack underflow");
    return NULL;
  }
  return m->stack[--m->sp];
}

static py *top(pvm *m) {
  int floor = m->nmarks ? m->marks[m->nmarks - 1] : 0;
  if (m->sp <= floor) {
    pvm_fail(m, "stack underflow");
    return NULL;
  }
  return m->stack[m->sp - 1];
}

/* n operand bytes at the cursor (advancing past them); NULL if truncated. */
static const unsigned char *take(pvm *m, uint64_t n) {
  if (n > (uint64_t)(m->end - m->p)) {
    pvm_fail(m, "truncated");
    return NULL;
  }
  const unsigned char *q = m->p;
  m->p += n;
  return q;
}

/* A STR or BYTES object from n bytes. */
static int push_text(pvm *m, py_type type, const unsigned char *q, uint64_t n) {
  py *o = py_new(m, type);
  if (!o) return pvm_fail(m, "too many objects");
  o->s = rdt_malloc((size_t)n + 1);
  memcpy(o->s, q, (size_t)n);
  o->s[n] = 0;
  o->len = (size_t)n;
  return push(m, o);
}

/* A length-prefixed string or bytes operand: nlen little-endian length bytes, then the data. */
static int op_text(pvm *m, py_type type, int nlen) {
  const unsigned char *q = take(m, (uint64_t)nlen);
  if (!q) return -1;
  uint64_t n = nlen == 1 ? q[0] : nlen == 4 ? le32(q) : le64(q);
  const unsigned char *d = take(m, n);
  return d ? push_text(m, type, d, n) : -1;
}

/* GLOBAL: "module\nname\n" operands. */
static int op_global(pvm *m) {
  const unsigned char *a = m->p, *nl1 = memchr(a, '\n', (size_t)(m->end - a));
  const unsigned char *nl2 = nl1 ? memchr(nl1 + 1, '\n', (size_t)(m->end - nl1 - 1)) : NULL;
  if (!nl2) return pvm_fail(m, "truncated GLOBAL");
  m->p = nl2 + 1;
  if (push_text(m, PY_GLOBAL, a, (uint64_t)(nl2 - a)) != 0) return -1;
  m->stack[m->sp - 1]->s[nl1 - a] = '.';
  return 0;
}

static int op_stack_global(pvm *m) {
  py *name = pop(m), *module = name ? pop(m) : NULL;
  if (!module) return -1;
  if (name->type != PY_STR || module->type != PY_STR) return pvm_fail(m, "STACK_GLOBAL needs two strings");
  py *g = py_new(m, PY_GLOBAL);
  if (!g) return pvm_fail(m, "too many objects");
  g->len = module->len + 1 + name->len;
  g->s = rdt_malloc(g->len + 1);
  snprintf(g->s, g->len + 1, "%s.%s", module->s, name->s);
  return push(m, g);
}

static int memo_put(pvm *m, uint64_t idx) {
  py *o = top(m);
  if (!o) return -1;
  if (idx >= PVM_MAX_MEMO) return pvm_fail(m, "memo index too large");
  if (idx >= m->cap_memo) {
    size_t cap = m->cap_memo ? m->cap_memo : 64;
    while (cap <= idx) cap *= 2;
    m->memo = rdt_realloc(m->memo, sizeof *m->memo * cap);
    memset(m->memo + m->cap_memo, 0, sizeof *m->memo * (cap - m->cap_memo));
    m->cap_memo = cap;
  }
  if (!m->memo[idx]) m->memo_count++;
  m->memo[idx] = o;
  return 0;
}

static int memo_get(pvm *m, uint64_t idx) {
  if (idx >= m->cap_memo || !m->memo[idx]) return pvm_fail(m, "memo get of an unset index");
  return push(m, m->memo[idx]);
}

/* Pop everything above the last mark into a new TUPLE or LIST (mark removed). */
static py *pop_to_mark(pvm *m, py_type type) {
  if (!m->nmarks) {
    pvm_fail(m, "no mark");
    return NULL;
  }
  int from = m->marks[--m->nmarks];
  py *o = py_new(m, type);
  if (!o) {
    pvm_fail(m, "too many objects");
    return NULL;
  }
  for (int k = from; k < m->sp; k++) py_append(o, m->stack[k]);
  m->sp = from;
  return o;
}

static int op_tuple_n(pvm *m, int n) {
  py *t = py_new(m, PY_TUPLE);
  if (!t) return pvm_fail(m, "too many objects");
  int floor = m->nmarks ? m->marks[m->nmarks - 1] : 0;
  if (m->sp - floor < n) return pvm_fail(m, "stack underflow");
  for (int k = m->sp - n; k < m->sp; k++) py_append(t, m->stack[k]);
  m->sp -= n;
  return push(m, t);
}

/* Add key/value pairs (or list items) from the mark into the container below it. */
static int op_setitems(pvm *m, int with_mark, int pairs) {
  py *items;
  if (with_mark) {
    if (!(items = pop_to_mark(m, PY_TUPLE))) return -1;
  } else {
    if (op_tuple_n(m, pairs ? 2 : 1) != 0) return -1;
    items = m->stack[--m->sp];
  }
  py *target = top(m);
  if (!target) return -1;
  if (target->type != (pairs ? PY_DICT : PY_LIST)) return pvm_fail(m, pairs ? "SETITEM on a non-dict" : "APPEND on a non-list");
  if (pairs && items->n % 2) return pvm_fail(m, "odd number of SETITEMS operands");
  for (int k = 0; k < items->n; k++) py_append(target, items->items[k]);
  return 0;
}

static int is_global(const py *o, const char *name) { return o && o->type == PY_GLOBAL && strcmp(o->s, name) == 0; }

/* _codecs.encode(text, "latin1"): numpy's way of pickling raw bytes as a string. */
static int encode_latin1(pvm *m, const py *text, py *out) {
  out->type = PY_BYTES;
  out->s = rdt_malloc(text->len + 1);
  size_t n = 0;
  for (size_t k = 0; k < text->len; n++) {
    unsigned char c = (unsigned char)text->s[k];
    if (c < 0x80) out->s[n] = (char)c, k += 1;
    else if ((c == 0xc2 || c == 0xc3) && k + 1 < text->len && ((unsigned char)text->s[k + 1] & 0xc0) == 0x80)
      out->s[n] = (char)((c & 0x03) << 6 | (text->s[k + 1] & 0x3f)), k += 2;
    else return pvm_fail(m, "text outside latin-1 in _codecs.encode");
  }
  out->s[n] = 0;
  out->len = n;
  return 0;
}

/* REDUCE / NEWOBJ: call fn(*args).  A few callables are evaluated here
 * (OrderedDict(), _codecs.encode, _rebuild_parameter); others become CALL nodes. */
static int op_call(pvm *m) {
  py *args = pop(m), *fn = args ? pop(m) : NULL;
  if (!fn) return -1;
  if (args->type != PY_TUPLE) return pvm_fail(m, "call arguments are not a tuple");
  if ((is_global(fn, "collections.OrderedDict") || is_global(fn, "builtins.dict")) && args->n == 0)
    return push(m, py_new(m, PY_DICT));
  if (is_global(fn, "torch._utils._rebuild_parameter") && args->n >= 1) return push(m, args->items[0]);
  py *o = py_new(m, PY_CALL);
  if (!o) return pvm_fail(m, "too many objects");
  if (is_global(fn, "_codecs.encode") && args->n == 2 && args->items[0]->type == PY_STR &&
      args->items[1]->type == PY_STR && (!strcmp(args->items[1]->s, "latin1") || !strcmp(args->items[1]->s, "latin-1"))) {
    if (encode_latin1(m, args->items[0], o) != 0) return -1;
    return push(m, o);
  }
  o->fn = fn;
  o->args = args;
  return push(m, o);
}

static int op_build(pvm *m) {
  py *state = pop(m), *obj = state ? top(m) : NULL;
  if (!obj) return -1;
  if (obj->type == PY_CALL) obj->state = state;   /* dict/other states (e.g. _metadata) are not needed */
  return 0;
}

/* Signed little-endian integer of n bytes (LONG1); more than 8 bytes is out of range. */
static int op_long(pvm *m, int nlen) {
  const unsigned char *q = take(m, (uint64_t)nlen);
  if (!q) return -1;
  uint64_t n = nlen == 1 ? q[0] : le32(q);
  const unsigned char *d = take(m, n);
  if (!d) return -1;
  if (n > 8) return pvm_fail(m, "integer wider than 64 bits");
  uint64_t v = 0;
  for (uint64_t k = 0; k < n; k++) v |= (uint64_t)d[k] << (8 * k);
  if (n > 0 && n < 8 && (d[n - 1] & 0x80)) v |= ~(uint64_t)0 << (8 * n);   /* sign-extend */
  py *o = py_new(m, PY_INT);
  if (!o) return pvm_fail(m, "too many objects");
  o->i = (int64_t)v;
  return push(m, o);
}

static int push_int(pvm *m, int64_t v) {
  py *o = py_new(m, PY_INT);
  if (!o) return pvm_fail(m, "too many objects");
  o->i = v;
  return push(m, o);
}

/* Run one opcode; 1 at STOP, 0 to continue, -1 on error. */
static int pvm_step(pvm *m, py **result) {
  const unsigned char *q = take(m, 1);
  if (!q) return -1;
  unsigned op = q[0];
  switch (op) {
    case 0x80: return take(m, 1) ? 0 : -1;                                  /* PROTO */
    case 0x95: return take(m, 8) ? 0 : -1;                                  /* FRAME */
    case '.': return (*result = pop(m)) ? 1 : -1;                           /* STOP */
    case '(':                                                               /* MARK */
      if (m->nmarks == m->cap_marks) {
        m->cap_marks = m->cap_marks ? m->cap_marks * 2 : 16;
        m->marks = rdt_realloc(m->marks, sizeof *m->marks * (size_t)m->cap_marks);
      }
      m->marks[m->nmarks++] = m->sp;
      return 0;
    case 'N': return push(m, py_new(m, PY_NONE));
    case 0x88: case 0x89: {                                                 /* NEWTRUE, NEWFALSE */
      py *o = py_new(m, PY_BOOL);
      if (o) o->i = op == 0x88;
      return push(m, o);
    }
    case 'J': return (q = take(m, 4)) ? push_int(m, (int32_t)le32(q)) : -1; /* BININT */
    case 'K': return (q = take(m, 1)) ? push_int(m, q[0]) : -1;             /* BININT1 */
    case 'M': return (q = take(m, 2)) ? push_int(m, le16(q)) : -1;          /* BININT2 */
    case 0x8a: return op_long(m, 1);                                        /* LONG1 */
    case 0x8b: return op_long(m, 4);                                        /* LONG4 */
    case 'G': {                                                             /* BINFLOAT, big-endian */
      if (!(q = take(m, 8))) return -1;
      uint64_t bits = 0;
      for (int k = 0; k < 8; k++) bits = bits << 8 | q[k];
      py *o = py_new(m, PY_FLOAT);
      if (o) memcpy(&o->f, &bits, 8);
      return push(m, o);
    }
    case 'X': return op_text(m, PY_STR, 4);                                 /* BINUNICODE */
    case 0x8c: return op_text(m, PY_STR, 1);                                /* SHORT_BINUNICODE */
    case 0x8d: return op_text(m, PY_STR, 8);                                /* BINUNICODE8 */
    case 'T': return op_text(m, PY_STR, 4);                                 /* BINSTRING */
    case 'U': return op_text(m, PY_STR, 1);                                 /* SHORT_BINSTRING */
    case 'B': return op_text(m, PY_BYTES, 4);                               /* BINBYTES */
    case 'C': return op_text(m, PY_BYTES, 1);                               /* SHORT_BINBYTES */
    case 0x8e: case 0x96: return op_text(m, PY_BYTES, 8);                   /* BINBYTES8, BYTEARRAY8 */
    case '}': return push(m, py_new(m, PY_DICT));                           /* EMPTY_DICT */
    case ']': return push(m, py_new(m, PY_LIST));                           /* EMPTY_LIST */
    case ')': return push(m, py_new(m, PY_TUPLE));                          /* EMPTY_TUPLE */
    case 0x85: return op_tuple_n(m, 1);
    case 0x86: return op_tuple_n(m, 2);
    case 0x87: return op_tuple_n(m, 3);
    case 't': { py *t = pop_to_mark(m, PY_TUPLE); return t ? push(m, t) : -1; }
    case 'l': { py *t = pop_to_mark(m, PY_LIST); return t ? push(m, t) : -1; }   /* LIST */
    case 'd': {                                                             /* DICT */
      py *t = pop_to_mark(m, PY_DICT);
      if (t && t->n % 2) return pvm_fail(m, "odd number of DICT operands");
      return t ? push(m, t) : -1;
    }
    case 's': return op_setitems(m, 0, 1);                                  /* SETITEM */
    case 'u': return op_setitems(m, 1, 1);                                  /* SETITEMS */
    case 'a': return op_setitems(m, 0, 0);                                  /* APPEND */
    case 'e': return op_setitems(m, 1, 0);                                  /* APPENDS */
    case 'q': return (q = take(m, 1)) ? memo_put(m, q[0]) : -1;             /* BINPUT */
    case 'r': return (q = take(m, 4)) ? memo_put(m, le32(q)) : -1;          /* LONG_BINPUT */
    case 0x94: return memo_put(m, m->memo_count);                           /* MEMOIZE */
    case 'h': return (q = take(m, 1)) ? memo_get(m, q[0]) : -1;             /* BINGET */
    case 'j': return (q = take(m, 4)) ? memo_get(m, le32(q)) : -1;          /* LONG_BINGET */
    case 'c': return op_global(m);
    case 0x93: return op_stack_global(m);
    case 'R': case 0x81: return op_call(m);                                 /* REDUCE, NEWOBJ */
    case 0x92: {                                                            /* NEWOBJ_EX: drop kwargs */
      py *kw = pop(m);
      return kw ? op_call(m) : -1;
    }
    case 'b': return op_build(m);
    case 'Q': {                                                             /* BINPERSID */
      py *pid = pop(m), *o = pid ? py_new(m, PY_PERSID) : NULL;
      if (!pid) return -1;
      if (!o) return pvm_fail(m, "too many objects");
      o->args = pid;
      return push(m, o);
    }
    case '0': return pop(m) ? 0 : -1;                                       /* POP */
    case '2': { py *o = top(m); return o ? push(m, o) : -1; }               /* DUP */
    default: {
      char msg[64];
      snprintf(msg, sizeof msg, "unsupported opcode 0x%02x", op);
      m->p--;
      return pvm_fail(m, msg);
    }
  }
}

/* Run a pickle to STOP; the result lives in m's pool. */
static py *pvm_run(pvm *m, const void *data, size_t len) {
  memset(m, 0, sizeof *m);
  m->start = m->p = data;
  m->end = m->start + len;
  py *result = NULL;
  for (;;) {
    int rc = pvm_step(m, &result);
    if (rc < 0) return NULL;
    if (rc == 1) return result;
  }
}

/* ================================================================ interpreting the tree */

static const py *tuple_item(const py *t, int i, py_type type) {
  return t && t->type == PY_TUPLE && i < t->n && t->items[i]->type == type ? t->items[i] : NULL;
}

/* A tuple of non-negative ints into dims (at most RDT_MAX_DIMS); -1 if not one. */
static int int_tuple(const py *t, int64_t *dims, int *n) {
  if (!t || t->type != PY_TUPLE || t->n > RDT_MAX_DIMS) return -1;
  for (int k = 0; k < t->n; k++) {
    if (t->items[k]->type != PY_INT || t->items[k]->i < 0) return -1;
    dims[k] = t->items[k]->i;
  }
  *n = t->n;
  return 0;
}

/* torch.XxxStorage -> dtype. */
static int storage_dtype(const py *g, rdt_dtype *out) {
  static const struct { const char *name; rdt_dtype dtype; } table[] = {
    {"torch.FloatStorage", RDT_F32}, {"torch.BFloat16Storage", RDT_BF16}, {"torch.HalfStorage", RDT_F16},
    {"torch.DoubleStorage", RDT_F64}, {"torch.LongStorage", RDT_I64},     {"torch.IntStorage", RDT_I32},
    {"torch.ShortStorage", RDT_I16},  {"torch.CharStorage", RDT_I8},      {"torch.ByteStorage", RDT_U8},
    {"torch.BoolStorage", RDT_BOOL},
  };
  for (size_t k = 0; k < sizeof table / sizeof table[0]; k++)
    if (is_global(g, table[k].name)) return *out = table[k].dtype, 0;
  return -1;
}

/* Is a tensor of this size and stride laid out contiguously (row-major)? */
static int contiguous(int ndim, const int64_t *size, const int64_t *stride) {
  int64_t expect = 1;
  for (int d = ndim - 1; d >= 0; d--) {
    if (size[d] != 1 && stride[d] != expect) return 0;
    expect *= size[d];
  }
  return 1;
}

/* _rebuild_tensor_v2(storage, offset, size, stride, ...) -> a tensor over the storage entry. */
static int add_tensor(rdt_st *st, rdt_zip *z, const char *prefix, const char *name, const py *v) {
  if (!v || v->type != PY_CALL || !(is_global(v->fn, "torch._utils._rebuild_tensor_v2") ||
                                    is_global(v->fn, "torch._utils._rebuild_tensor")))
    return rdt_fail("state dict entry '%s' is not a tensor", name);
  const py *args = v->args, *pers = tuple_item(args, 0, PY_PERSID), *off = tuple_item(args, 1, PY_INT);
  const py *pid = pers ? pers->args : NULL;
  const py *kind = tuple_item(pid, 0, PY_STR), *type = tuple_item(pid, 1, PY_GLOBAL), *key = tuple_item(pid, 2, PY_STR);
  int64_t size[RDT_MAX_DIMS], stride[RDT_MAX_DIMS];
  int ndim = 0, nstride = 0;
  rdt_dtype dtype;
  if (!off || !key || !kind || strcmp(kind->s, "storage") != 0 || int_tuple(tuple_item(args, 2, PY_TUPLE), size, &ndim) != 0 ||
      int_tuple(tuple_item(args, 3, PY_TUPLE), stride, &nstride) != 0 || nstride != ndim || off->i < 0)
    return rdt_fail("tensor '%s': malformed _rebuild_tensor_v2 arguments", name);
  if (storage_dtype(type, &dtype) != 0) return rdt_fail("tensor '%s': unsupported storage type %s", name, type ? type->s : "?");
  if (!contiguous(ndim, size, stride)) return rdt_fail("tensor '%s' is not contiguous", name);
  char entry[512];
  snprintf(entry, sizeof entry, "%sdata/%s", prefix, key->s);
  size_t bytes;
  const unsigned char *data = rdt_zip_data(z, entry, &bytes);
  if (!data) return rdt_fail("tensor '%s': storage %s missing from the archive", name, entry);
  uint64_t esize = rdt_dtype_size(dtype), need = esize, first;
  for (int d = 0; d < ndim; d++)
    if (__builtin_mul_overflow(need, (uint64_t)size[d], &need)) return rdt_fail("tensor '%s': size overflows", name);
  if (__builtin_mul_overflow((uint64_t)off->i, esize, &first) || first > bytes || need > bytes - first)
    return rdt_fail("tensor '%s': offset %lld + %llu bytes exceed its storage (%zu bytes)", name, (long long)off->i,
                    (unsigned long long)need, bytes);
  rdt_st_push(st, name, dtype, ndim, size, (void *)(data + first), (size_t)need);
  return 0;
}

/* The state dict inside the top object: itself, or its "state_dict"/"module" entry. */
static const py *find_state_dict(const py *o) {
  if (!o || o->type != PY_DICT) return NULL;
  for (int k = 0; k + 1 < o->n; k += 2) {
    const py *key = o->items[k];
    if (key->type == PY_STR && (!strcmp(key->s, "state_dict") || !strcmp(key->s, "module")) && o->items[k + 1]->type == PY_DICT)
      return o->items[k + 1];
  }
  return o;
}

/* data.pkl's entry name and its folder prefix ("archive/"); -1 if absent. */
static int find_pickle(const rdt_zip *z, char *prefix, size_t len) {
  for (int i = 0; i < z->count; i++) {
    const char *n = z->entries[i].name, *slash = strrchr(n, '/');
    const char *base = slash ? slash + 1 : n;
    if (strcmp(base, "data.pkl") != 0) continue;
    size_t plen = (size_t)(base - n);
    if (plen >= len) continue;
    memcpy(prefix, n, plen);
    prefix[plen] = 0;
    return i;
  }
  return rdt_fail("no data.pkl in the archive: not a torch.save file");
}

/* Open a torch zip and run its data.pkl; the tree lives in m. */
static const py *load_pickle(const char *path, rdt_zip **zp, pvm *m, char *prefix, size_t len) {
  memset(m, 0, sizeof *m);
  rdt_zip *z = *zp = rdt_zip_open(path);
  if (!z) return NULL;
  int i = find_pickle(z, prefix, len);
  char order[256];
  snprintf(order, sizeof order, "%sbyteorder", prefix);
  size_t n = 0;
  const char *bo = NULL;
  for (int k = 0; k < z->count && !bo; k++)
    if (!strcmp(z->entries[k].name, order)) bo = rdt_zip_data(z, order, &n);
  if (bo && !(n == 6 && memcmp(bo, "little", 6) == 0)) i = rdt_fail("byte order is not little-endian");
  if (i < 0) {
    rdt_fail_ctx("%s", path);
    return NULL;
  }
  const void *pkl = rdt_zip_data(z, z->entries[i].name, &n);   /* its errors name the file */
  const py *top = pkl ? pvm_run(m, pkl, n) : NULL;
  if (pkl && !top) rdt_fail_ctx("%s: %s", path, z->entries[i].name);
  return top;
}

rdt_st *rdt_torch_open_state_dict(const char *path) {
  rdt_zip *z;
  pvm m;
  char prefix[256];
  const py *top = load_pickle(path, &z, &m, prefix, sizeof prefix);
  rdt_st *st = rdt_st_new(path);
  int rc = top ? 0 : -1;
  const py *dict = find_state_dict(top);
  if (rc == 0 && !dict) rc = rdt_fail("the pickle holds no state dict");
  for (int k = 0; rc == 0 && k + 1 < dict->n; k += 2) {
    const py *key = dict->items[k];
    if (key->type != PY_STR) rc = rdt_fail("state dict key is not a string");
    else rc = add_tensor(st, z, prefix, key->s, dict->items[k + 1]);
  }
  if (rc == 0) rc = rdt_st_finish(st);
  if (rc != 0 && top) rdt_fail_ctx("%s", path);
  pvm_free(&m);
  if (z) rdt_st_keep_zip(st, z);
  if (rc != 0) {
    rdt_st_close(st);
    return NULL;
  }
  return st;
}

/* numpy dtype strings: "f8", "<f4", "i8", "u1", "b1", ... */
static int numpy_dtype(const char *s, rdt_dtype *out) {
  static const struct { const char *name; rdt_dtype dtype; } table[] = {
    {"f8", RDT_F64}, {"f4", RDT_F32}, {"f2", RDT_F16}, {"i8", RDT_I64}, {"i4", RDT_I32},
    {"i2", RDT_I16}, {"i1", RDT_I8},  {"u1", RDT_U8},  {"b1", RDT_BOOL},
  };
  if (*s == '<' || *s == '|' || *s == '=') s++;
  for (size_t k = 0; k < sizeof table / sizeof table[0]; k++)
    if (!strcmp(s, table[k].name)) return *out = table[k].dtype, 0;
  return -1;
}

/* numpy.core.multiarray._reconstruct(...) with BUILD state (version, shape, dtype, fortran, bytes). */
static int numpy_array(const py *o, rdt_tensor *out) {
  if (!o || o->type != PY_CALL || !(is_global(o->fn, "numpy.core.multiarray._reconstruct") ||
                                    is_global(o->fn, "numpy._core.multiarray._reconstruct")))
    return rdt_fail("the pickle is not a numpy array");
  const py *state = o->state, *dt = tuple_item(state, 2, PY_CALL), *fortran = tuple_item(state, 3, PY_BOOL);
  const py *raw = tuple_item(state, 4, PY_BYTES);
  const py *code = dt && is_global(dt->fn, "numpy.dtype") ? tuple_item(dt->args, 0, PY_STR) : NULL;
  const py *order = dt ? tuple_item(dt->state, 1, PY_STR) : NULL;
  memset(out, 0, sizeof *out);
  if (!raw || !code || !fortran || int_tuple(tuple_item(state, 1, PY_TUPLE), out->shape, &out->ndim) != 0)
    return rdt_fail("malformed numpy array state");
  if (numpy_dtype(code->s, &out->dtype) != 0) return rdt_fail("unsupported numpy dtype '%s'", code->s);
  if (order && !strcmp(order->s, ">")) return rdt_fail("big-endian numpy arrays are not supported");
  if (fortran->i && out->ndim > 1) return rdt_fail("Fortran-order numpy arrays are not supported");
  uint64_t need = rdt_dtype_size(out->dtype);
  for (int d = 0; d < out->ndim; d++)
    if (__builtin_mul_overflow(need, (uint64_t)out->shape[d], &need)) return rdt_fail("numpy shape overflows");
  if (need != raw->len) return rdt_fail("numpy array holds %zu bytes, its shape needs %llu", raw->len, (unsigned long long)need);
  out->nbytes = raw->len;
  out->data = rdt_malloc(raw->len);
  memcpy(out->data, raw->s, raw->len);
  return 0;
}

int rdt_torch_load_numpy(const char *path, rdt_tensor *out) {
  rdt_zip *z;
  pvm m;
  char prefix[256];
  const py *top = load_pickle(path, &z, &m, prefix, sizeof prefix);
  int rc = top ? numpy_array(top, out) : -1;
  if (rc != 0 && top) rdt_fail_ctx("%s", path);
  pvm_free(&m);
  rdt_zip_close(z);
  return rc;
}
