/* train/loader.c: a bounded, ordered queue of batches filled by threads (see loader.h). */
#include "train/loader.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include "core/error.h"

typedef struct {
  rdt_loader *l;
  int id;
} worker_arg;

struct rdt_loader {
  int workers, depth;
  void **slots;
  int64_t *slot_index;    /* the batch a slot holds, -1 while empty/filling */
  rdt_loader_fill fill;
  void *ctx;
  int64_t next_claim;     /* next batch a worker will fill */
  int64_t next_take;      /* next batch the consumer takes */
  int stop, failed;
  int64_t fail_index;     /* the first batch that failed (valid when failed) */
  char error[1024];
  pthread_mutex_t mu;
  pthread_cond_t cv;
  pthread_t *threads;
  worker_arg *args;
};

/* Claim batch numbers in order and fill their slots until stopped. */
static void *worker_main(void *p) {
  worker_arg *a = p;
  rdt_loader *l = a->l;
  pthread_mutex_lock(&l->mu);
  for (;;) {
    while (!l->stop && !l->failed && l->next_claim >= l->next_take + l->depth) pthread_cond_wait(&l->cv, &l->mu);
    if (l->stop || l->failed) break;
    int64_t k = l->next_claim++;
    int s = (int)(k % l->depth);
    pthread_mutex_unlock(&l->mu);
    int rc = l->fill(l->ctx, k, l->slots[s], a->id);
    pthread_mutex_lock(&l->mu);
    if (rc != 0 && (!l->failed || k < l->fail_index)) {
      l->failed = 1;
      l->fail_index = k;
      snprintf(l->error, sizeof l->error, "loading batch %lld: %s", (long long)k, rdt_error());
    }
    if (rc == 0) l->slot_index[s] = k;
    pthread_cond_broadcast(&l->cv);
  }
  pthread_mutex_unlock(&l->mu);
  return NULL;
}

rdt_loader *rdt_loader_new(int workers, int depth, void **slots, rdt_loader_fill fill, void *ctx, int64_t first) {
  RDT_ASSERT(depth >= 1 && workers >= 0);
  rdt_loader *l = rdt_calloc(1, sizeof *l);
  l->workers = workers;
  l->depth = depth;
  l->slots = slots;
  l->slot_index = rdt_malloc((size_t)depth * sizeof(int64_t));
  for (int i = 0; i < depth; i++) l->slot_index[i] = -1;
  l->fill = fill;
  l->ctx = ctx;
  l->next_claim = l->next_take = first;
  pthread_mutex_init(&l->mu, NULL);
  pthread_cond_init(&l->cv, NULL);
  l->threads = rdt_calloc((size_t)workers + 1, sizeof *l->threads);
  l->args = rdt_calloc((size_t)workers + 1, sizeof *l->args);
  for (int i = 0; i < workers; i++) {
    l->args[i] = (worker_arg){l, i};
    if (pthread_create(&l->threads[i], NULL, worker_main, &l->args[i]) != 0)
      rdt_internal_error(__FILE__, __LINE__, "pthread_create");
  }
  return l;
}

void *rdt_loader_next(rdt_loader *l, int64_t *index) {
  int64_t k = l->next_take;
  int s = (int)(k % l->depth);
  if (l->workers == 0) {
    if (l->fill(l->ctx, k, l->slots[s], 0) != 0) {
      rdt_fail_ctx("loading batch %lld", (long long)k);
      return NULL;
    }
    *index = k;
    return l->slots[s];
  }
  pthread_mutex_lock(&l->mu);
  /* Batches before a failed one were claimed earlier and still complete:
   * the error surfaces only when the consumer reaches the failed batch. */
  while (l->slot_index[s] != k && !(l->failed && k >= l->fail_index)) pthread_cond_wait(&l->cv, &l->mu);
  int ok = l->slot_index[s] == k;
  pthread_mutex_unlock(&l->mu);
  if (!ok) {
    rdt_fail("%s", l->error);
    return NULL;
  }
  *index = k;
  return l->slots[s];
}

void rdt_loader_release(rdt_loader *l) {
  pthread_mutex_lock(&l->mu);
  l->slot_index[l->next_take % l->depth] = -1;
  l->next_take++;
  pthread_cond_broadcast(&l->cv);
  pthread_mutex_unlock(&l->mu);
}

void rdt_loader_free(rdt_loader *l) {
  if (!l) return;
  pthread_mutex_lock(&l->mu);
  l->stop = 1;
  pthread_cond_broadcast(&l->cv);
  pthread_mutex_unlock(&l->mu);
  for (int i = 0; i < l->workers; i++) pthread_join(l->threads[i], NULL);
  pthread_mutex_destroy(&l->mu);
  pthread_cond_destroy(&l->cv);
  free(l->threads);
  free(l->args);
  free(l->slot_index);
  free(l);
}
