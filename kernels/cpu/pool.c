/* kernels/cpu/pool.c: a small persistent thread pool for the CPU backend.
 *
 * threads - 1 workers sleep on a condition variable; kcpu_pool_run wakes them,
 * the caller takes tasks too, and tasks are handed out through one atomic
 * counter.  Which thread runs a task never changes its result: tasks write
 * disjoint outputs and reductions combine per-task partials in task order.
 * Calls from different threads are serialised by a mutex.
 */
#include <pthread.h>
#include <stdlib.h>
#include "core/error.h"
#include "kernels/cpu/cpu.h"

struct kcpu_pool {
  int threads;
  pthread_t *tids;
  pthread_mutex_t run_lock;   /* one parallel loop at a time */
  pthread_mutex_t lock;       /* guards the fields below */
  pthread_cond_t wake, done;
  unsigned long generation;   /* bumped for each loop */
  int busy;                   /* workers still inside the current loop */
  int quit;
  kcpu_task_fn fn;
  void *ctx;
  int ntasks;
  int next;                   /* next task to hand out (atomic) */
  float **scratch;            /* per worker */
  size_t *scratch_n;
};

/* Take tasks until none are left. */
static void pool_drain(kcpu_pool *p, int worker) {
  for (;;) {
    int t = __atomic_fetch_add(&p->next, 1, __ATOMIC_RELAXED);
    if (t >= p->ntasks) return;
    p->fn(p->ctx, t, worker);
  }
}

typedef struct {
  kcpu_pool *pool;
  int worker;
} pool_arg;

/* Worker thread: wait for a new generation, drain, report, repeat. */
static void *pool_main(void *arg) {
  pool_arg a = *(pool_arg *)arg;
  free(arg);
  kcpu_pool *p = a.pool;
  unsigned long seen = 0;
  pthread_mutex_lock(&p->lock);
  for (;;) {
    while (!p->quit && p->generation == seen) pthread_cond_wait(&p->wake, &p->lock);
    if (p->quit) break;
    seen = p->generation;
    pthread_mutex_unlock(&p->lock);
    pool_drain(p, a.worker);
    pthread_mutex_lock(&p->lock);
    if (--p->busy == 0) pthread_cond_signal(&p->done);
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
  pthread_cond_init(&p->done, NULL);
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
  pthread_cond_destroy(&p->done);
  free(p->scratch);
  free(p->scratch_n);
  free(p->tids);
  free(p);
}

void kcpu_pool_run(kcpu_pool *p, int ntasks, kcpu_task_fn fn, void *ctx) {
  if (ntasks <= 0) return;
  pthread_mutex_lock(&p->run_lock);
  if (p->threads == 1 || ntasks == 1) {
    for (int t = 0; t < ntasks; t++) fn(ctx, t, 0);
    pthread_mutex_unlock(&p->run_lock);
    return;
  }
  pthread_mutex_lock(&p->lock);
  p->fn = fn;
  p->ctx = ctx;
  p->ntasks = ntasks;
  __atomic_store_n(&p->next, 0, __ATOMIC_RELAXED);
  p->busy = p->threads - 1;
  p->generation++;
  pthread_cond_broadcast(&p->wake);
  pthread_mutex_unlock(&p->lock);
  pool_drain(p, 0);
  pthread_mutex_lock(&p->lock);
  while (p->busy > 0) pthread_cond_wait(&p->done, &p->lock);
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
  RDT_ASSERT(ntasks <= (size_t)1 << 30);
  range_job j = {fn, ctx, n, grain};
  kcpu_pool_run(kcpu_pool_of(b), (int)ntasks, range_task, &j);
}
