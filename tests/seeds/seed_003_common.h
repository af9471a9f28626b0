/* What examples 8 and 9 of seed 003 share: the async iterable of jobs and
 * the comprehension over it,
 *
 *   (await x.run() async for x in gen if not (await x.skip()))
 *
 * as aioc iterator helpers: aioc_iter_filter() for the `if`, then
 * aioc_iter_map() for the expression. Both callbacks await (they run in
 * the consumer's task): skip() takes 0.01 s and skips the even jobs,
 * run() takes 0.1 s and returns x * x. */
#ifndef AIOC_SEED_003_COMMON_H
#define AIOC_SEED_003_COMMON_H

#include "seed_util.h"

#define SEED003_NJOBS 5

typedef struct seed003_job {
  int id;
} seed003_job;

static const seed003_job seed003_jobs[SEED003_NJOBS] = {
    {1}, {2}, {3}, {4}, {5}};

/* Calls of the callbacks, for the checks. */
static int seed003_skips, seed003_runs;

/* gen: an async generator over the jobs (borrowed items). */
static inline int seed003_gen(void *arg, aioc_gen *g) {
  (void)arg;
  for (int i = 0; i < SEED003_NJOBS; i++) {
    int rc = aioc_gen_yield(g, (void *)&seed003_jobs[i], NULL);
    if (rc < 0) return rc == AIOC_EGENEXIT ? 0 : rc;
  }
  return 0;
}

/* if not (await x.skip()) */
static inline int seed003_not_skip(void *arg, void *item) {
  (void)arg;
  const seed003_job *x = item;
  int rc = aioc_sleep(0.01);
  if (rc < 0) return rc;
  seed003_skips++;
  int skip = x->id % 2 == 0;
  seed_out("t=%.2f x=%d: await x.skip() -> %s", aioc_time(), x->id,
           skip ? "True" : "False");
  return !skip;
}

/* await x.run() */
static inline int seed003_run(void *arg, void *item, void **out) {
  (void)arg;
  const seed003_job *x = item;
  int rc = aioc_sleep(0.1);
  if (rc < 0) return rc;
  seed003_runs++;
  *out = AIOC_INT(x->id * x->id);
  seed_out("t=%.2f x=%d: await x.run() -> %d", aioc_time(), x->id,
           x->id * x->id);
  return 0;
}

/* async for x in gen: a fresh gen over the jobs, as an iterator. */
static inline int seed003_jobs_iter(aioc_iter **out) {
  aioc_gen *g;
  int rc = aioc_gen_new(&g, seed003_gen, NULL, NULL);
  if (rc < 0) return rc;
  rc = aioc_gen_iter(out, g);
  if (rc < 0) aioc_gen_free(g);
  return rc;
}

/* def sync_method(gen):
 *     it = (await x.run() async for x in gen if not (await x.skip()))
 *     return it
 *
 * Plain code: builds the comprehension, runs nothing. Takes ownership of
 * gen (freed on failure too). */
static inline int seed003_sync_method(aioc_iter **it, aioc_iter *gen) {
  aioc_iter *kept;
  int rc = aioc_iter_filter(&kept, gen, seed003_not_skip, NULL, NULL);
  if (rc < 0) {
    aioc_iter_free(gen); /* a helper that fails leaves its source to us */
    return rc;
  }
  rc = aioc_iter_map(it, kept, seed003_run, NULL);
  if (rc < 0) aioc_iter_free(kept);
  return rc;
}

/* The trace lines of one pass over the comprehension, in order. */
#define SEED003_TRACE                                                          \
  "t=0.01 x=1: await x.skip() -> False", "t=0.11 x=1: await x.run() -> 1",     \
      "t=0.12 x=2: await x.skip() -> True",                                    \
      "t=0.13 x=3: await x.skip() -> False",                                   \
      "t=0.23 x=3: await x.run() -> 9", "t=0.24 x=4: await x.skip() -> True",  \
      "t=0.25 x=5: await x.skip() -> False", "t=0.35 x=5: await x.run() -> 25"

#endif /* AIOC_SEED_003_COMMON_H */
