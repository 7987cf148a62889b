/* kernels/cpu/pool.c: a small persistent thread pool for the CPU backend.
 *
 * threads - 1 workers sleep on a condition variable; kcpu_pool_run publishes a
 * loop, wakes them and takes tasks itself.  Tasks are claimed from one atomic
 * word holding the loop number, the task count and the next task, so a worker
 * that wakes late can never claim a task of another loop, and the caller waits
 * only for tasks
 * to finish, not for sleeping workers to check in (which matters when the
 * cores are shared).  Which thread runs a task never changes its result: tasks
 * write disjoint outputs and reductions combine per-task partials in task
 * order.  Calls from different threads are serialised by a mutex.
 */
#include <pthread.h>
#include <stdlib.h>
#include "core/error.h"
#include "kernels/cpu/cpu.h"

struct kcpu_pool {
  int threads;
  pthread_t *tids;
  pthread_mutex_t run_lock;   /* one parallel loop at a time */
  pthread_mutex_t lock;       /* sleeping and waking */
  pthread_cond_t wake, done_cond;
  uint32_t loop;              /* number of the current loop (under lock) */
  int quit;
  kcpu_task_fn fn;            /* the current loop, valid while it runs */
  void *ctx;
  uint64_t claim;             /* atomic: loop (24 bits) | ntasks (20) | next task (20) */
  int done;                   /* atomic: finished tasks of the current loop */
  float **scratch;            /* per worker */
  size_t *scratch_n;
};

#define TASK_BITS 20
#define TASK_MASK ((1u << TASK_BITS) - 1)
#define LOOP_MASK 0xFFFFFFu

static uint64_t claim_word(uint32_t loop, int ntasks) {
  return (uint64_t)(loop & LOOP_MASK) << (2 * TASK_BITS) | (uint64_t)ntasks << TASK_BITS;
}

/* Claim the next task of loop `loop` and say how many it has; -1 when it has
 * none left (or is over). */
static int pool_claim(kcpu_pool *p, uint32_t loop, int *ntasks) {
  uint64_t v = __atomic_load_n(&p->claim, __ATOMIC_ACQUIRE);
  for (;;) {
    uint32_t next = (uint32_t)v & TASK_MASK, count = (uint32_t)(v >> TASK_BITS) & TASK_MASK;
    if ((uint32_t)(v >> (2 * TASK_BITS)) != (loop & LOOP_MASK) || next >= count) return -1;
    *ntasks = (int)count;
    if (__atomic_compare_exchange_n(&p->claim, &v, v + 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) return (int)next;
  }
}

/* Run tasks of loop `loop` until none are left; wake the caller after the last. */
static void pool_drain(kcpu_pool *p, uint32_t loop, int worker) {
  int t, ntasks;
  while ((t = pool_claim(p, loop, &ntasks)) >= 0) {
    p->fn(p->ctx, t, worker);
    if (__atomic_add_fetch(&p->done, 1, __ATOMIC_ACQ_REL) == ntasks) {
      pthread_mutex_lock(&p->lock);
      pthread_cond_signal(&p->done_cond);
      pthread_mutex_unlock(&p->lock);
    }
  }
}

typedef struct {
  kcpu_pool *pool;
  int worker;
} pool_arg;

/* Worker thread: sleep until a new loop is published, help with it, repeat. */
static void *pool_main(void *arg) {
  pool_arg a = *(pool_arg *)arg;
  free(arg);
  kcpu_pool *p = a.pool;
  uint32_t seen = 0;
  pthread_mutex_lock(&p->lock);
  for (;;) {
    while (!p->quit && p->loop == seen) pthread_cond_wait(&p->wake, &p->lock);
    if (p->quit) break;
    seen = p->loop;
    pthread_mutex_unlock(&p->lock);
    pool_drain(p, seen, a.worker);
    pthread_mutex_lock(&p->lock);
  }
  pthread_mutex_unlock(&p->lock);
  return NULL;
}

kcpu_pool *kcpu_pool_create(int threads) {
  kcpu_pool *p = rdt_calloc(1, sizeof *p);
  p->threads = threads < 1 ? 1 : threads;
  p->tids = rdt_calloc((size_t)p->threads, sizeof *p->tids);
  p->scratch = rdt_calloc((size_t)p->threads, sizeof *p->scratch);
  p->scratch_n = rdt_calloc((size_t)p->threads, sizeof *p->scratch_n);
  pthread_mutex_init(&p->run_lock, NULL);
  pthread_mutex_init(&p->lock, NULL);
  pthread_cond_init(&p->wake, NULL);
  pthread_cond_init(&p->done_cond, NULL);
  for (int i = 1; i < p->threads; i++) {
    pool_arg *a = rdt_malloc(sizeof *a);
    a->pool = p;
    a->worker = i;
    if (pthread_create(&p->tids[i], NULL, pool_main, a) != 0) rdt_die("cpu backend: cannot start worker thread %d", i);
  }
  return p;
}

void kcpu_pool_destroy(kcpu_pool *p) {
  if (!p) return;
  pthread_mutex_lock(&p->lock);
  p->quit = 1;
  pthread_cond_broadcast(&p->wake);
  pthread_mutex_unlock(&p->lock);
  for (int i = 1; i < p->threads; i++) pthread_join(p->tids[i], NULL);
  for (int i = 0; i < p->threads; i++) free(p->scratch[i]);
  pthread_mutex_destroy(&p->run_lock);
  pthread_mutex_destroy(&p->lock);
  pthread_cond_destroy(&p->wake);
  pthread_cond_destroy(&p->done_cond);
  free(p->scratch);
  free(p->scratch_n);
  free(p->tids);
  free(p);
}

void kcpu_pool_run(kcpu_pool *p, int ntasks, kcpu_task_fn fn, void *ctx) {
  if (ntasks <= 0) return;
  RDT_ASSERT((unsigned)ntasks <= TASK_MASK);
  pthread_mutex_lock(&p->run_lock);
  if (p->threads == 1 || ntasks == 1) {
    for (int t = 0; t < ntasks; t++) fn(ctx, t, 0);
    pthread_mutex_unlock(&p->run_lock);
    return;
  }
  pthread_mutex_lock(&p->lock);
  uint32_t loop = ++p->loop;
  p->fn = fn;
  p->ctx = ctx;
  __atomic_store_n(&p->done, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&p->claim, claim_word(loop, ntasks), __ATOMIC_RELEASE);
  pthread_cond_broadcast(&p->wake);
  pthread_mutex_unlock(&p->lock);
  pool_drain(p, loop, 0);
  pthread_mutex_lock(&p->lock);
  while (__atomic_load_n(&p->done, __ATOMIC_ACQUIRE) < ntasks) pthread_cond_wait(&p->done_cond, &p->lock);
  pthread_mutex_unlock(&p->lock);
  pthread_mutex_unlock(&p->run_lock);
}

float *kcpu_pool_scratch(kcpu_pool *p, int worker, size_t n) {
  if (p->scratch_n[worker] < n) {
    free(p->scratch[worker]);
    p->scratch[worker] = rdt_malloc(n * sizeof(float));
    p->scratch_n[worker] = n;
  }
  return p->scratch[worker];
}

typedef struct {
  kcpu_range_fn fn;
  void *ctx;
  size_t n, grain;
} range_job;

/* One chunk of a range loop. */
static void range_task(void *arg, int task, int worker) {
  range_job *j = arg;
  size_t i0 = (size_t)task * j->grain;
  size_t i1 = i0 + j->grain < j->n ? i0 + j->grain : j->n;
  j->fn(j->ctx, i0, i1, worker);
}

void kcpu_for(k_backend *b, size_t n, size_t grain, kcpu_range_fn fn, void *ctx) {
  if (n == 0) return;
  if (grain == 0) grain = 1;
  size_t ntasks = (n + grain - 1) / grain;
  RDT_ASSERT(ntasks < (size_t)1 << 20);
  range_job j = {fn, ctx, n, grain};
  kcpu_pool_run(kcpu_pool_of(b), (int)ntasks, range_task, &j);
}
