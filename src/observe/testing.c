/* The test kit (aioc/testing.h): seeded schedules, waiting until every
 * other task is blocked, a test run under many seeds; and the slow path
 * of the cooperative budget (loop.h). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "../task/task.h"

struct aioc__sched {
  uint64_t rng;     /* splitmix64 state, from the seed */
  uintptr_t *nodes; /* the links of the batch being permuted */
  size_t *tasks;    /* the positions of its tasks among them */
  size_t cap;
  unsigned quiet; /* tasks inside aioc_wait_all_tasks_blocked() */
};

static struct aioc__sched *sched_get(aioc_loop *loop) {
  if (!loop->sched) {
    struct aioc__sched *s = aioc__calloc(1, sizeof *s);
    if (!s) return NULL;
    s->rng = loop->schedule_seed;
    loop->sched = s;
  }
  return loop->sched;
}

void aioc__sched_free(aioc_loop *loop) {
  struct aioc__sched *s = loop->sched;
  if (!s) return;
  aioc__free(s->nodes);
  aioc__free(s->tasks);
  aioc__free(s);
  loop->sched = NULL;
}

uint64_t aioc_loop_schedule_seed(const aioc_loop *loop) {
  if (!loop || !AIOC__LOOP_OK(loop, "aioc_loop_schedule_seed")) return 0;
  return loop->schedule_seed;
}

/* ---- seeded schedules ---- */

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));
  z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
  return z ^ (z >> 31);
}

static inline aioc__qnode *qnode(uintptr_t e) {
  return (aioc__qnode *)(e & ~AIOC__QTASK);
}

/* The batch that begins is the whole ready queue. Its tasks trade places
 * among the positions tasks hold (a Fisher-Yates shuffle drawn from the
 * seed's generator); callbacks keep theirs, so call_soon's FIFO order and
 * the place of each callback among the tasks stand. Out of memory, the
 * batch keeps the plain order. */
void aioc__sched_shuffle(aioc_loop *loop) {
  size_t n = loop->batch_left;
  if (n < 2) return;
  struct aioc__sched *s = sched_get(loop);
  if (!s) return;
  if (s->cap < n) {
    size_t cap = s->cap ? s->cap : 16;
    while (cap < n)
      cap *= 2;
    uintptr_t *nv = aioc__realloc(s->nodes, cap * sizeof *nv);
    if (!nv) return;
    s->nodes = nv;
    size_t *tv = aioc__realloc(s->tasks, cap * sizeof *tv);
    if (!tv) return;
    s->tasks = tv;
    s->cap = cap;
  }
  size_t k = 0;
  uintptr_t e = loop->ready.head;
  for (size_t i = 0; i < n; i++) {
    s->nodes[i] = e;
    if (e & AIOC__QTASK) s->tasks[k++] = i;
    e = qnode(e)->next;
  }
  if (k < 2) return;
  for (size_t j = k - 1; j > 0; j--) {
    size_t r = (size_t)(splitmix64(&s->rng) % (uint64_t)(j + 1));
    uintptr_t tmp = s->nodes[s->tasks[j]];
    s->nodes[s->tasks[j]] = s->nodes[s->tasks[r]];
    s->nodes[s->tasks[r]] = tmp;
  }
  loop->ready.head = s->nodes[0];
  for (size_t i = 0; i + 1 < n; i++)
    qnode(s->nodes[i])->next = s->nodes[i + 1];
  qnode(s->nodes[n - 1])->next = e;
  if (!e) loop->ready.tail = qnode(s->nodes[n - 1]);
}

/* ---- the cooperative budget ---- */

AIOC_TLS uint32_t aioc__coop_left = AIOC__COOP_DEFAULT;

void aioc__coop_spent(void) {
  aioc_loop *loop = aioc__running;
  aioc__coop_left = loop ? loop->coop_budget : UINT32_MAX;
  aioc_task *t = loop ? loop->current : NULL;
  if (!t || loop->coop_budget == UINT_MAX) return;
  aioc__task_yield(t); /* switch_out restarts the count */
}

/* ---- quiescence ---- */

/* Nothing but the other quiescence waiters (each of them is queued while
 * this one runs) is ready, no thread-safe call or deferred work waits,
 * and no timer is due. */
static bool quiet_now(aioc_loop *loop, const struct aioc__sched *s) {
  return loop->ready.len + 1 == s->quiet && !aioc__ts_pending(loop) &&
         aioc__list_is_empty(&loop->deferred) &&
         !(loop->nheap && loop->heap[0].when <= aioc__now(loop));
}

int aioc_wait_all_tasks_blocked(double timeout) {
  if (!(timeout >= 0))
    return aioc__fail(-EINVAL, "aioc_wait_all_tasks_blocked: bad timeout");
  aioc_task *t = aioc__current();
  if (!t)
    return aioc__fail(AIOC_ENOTASK,
                      "aioc_wait_all_tasks_blocked: not in a task");
  aioc_loop *loop = t->f.loop;
  struct aioc__sched *s = sched_get(loop);
  if (!s)
    return aioc__fail(-ENOMEM, "aioc_wait_all_tasks_blocked: out of memory");
  int rc = aioc__task_check(t);
  if (rc) return rc;
  int64_t deadline = timeout == AIOC_FOREVER
                         ? AIOC__NEVER
                         : aioc__deadline_after(loop, timeout);
  bool polled = false;
  s->quiet++;
  for (;;) {
    aioc__task_yield(t);
    if ((rc = aioc__task_check(t)) != 0) break;
    if (quiet_now(loop, s)) {
      /* Tasks waiting on fds: one more round, whose iteration polls them
       * without waiting (the loop polls every 61st iteration while work
       * is ready: this makes the next one poll). A task whose fd is
       * ready is then queued, and this round is not quiet. */
      if (!loop->nfds || polled) break;
      polled = true;
      loop->iter = 60;
      continue;
    }
    polled = false;
    if (deadline != AIOC__NEVER &&
        (loop->virtual_clock ? loop->now : aioc__clock_ns()) >= deadline) {
      rc = aioc__fail(-ETIMEDOUT,
                      "aioc_wait_all_tasks_blocked: tasks still running");
      break;
    }
  }
  s->quiet--;
  return rc;
}

/* ---- a test under many seeds ---- */

int aioc_test_seeds(aioc_fn fn, void *arg, uint64_t first, unsigned count,
                    uint64_t *failed) {
  if (failed) *failed = 0;
  if (!fn || !count || !first || first - 1 > UINT64_MAX - count)
    return aioc__fail(-EINVAL, "aioc_test_seeds: bad arguments");
  if (aioc__running) return AIOC_ERUNNING;
  const char *env = getenv("AIOC_SCHEDULE_SEED");
  if (env && *env) {
    char *end;
    unsigned long long v = strtoull(env, &end, 0);
    if (!*end && v) {
      first = v;
      count = 1;
    }
  }
  for (unsigned i = 0; i < count; i++) {
    uint64_t seed = first + i;
    aioc_loop_options o = {.virtual_clock = 1, .schedule_seed = seed};
    aioc_loop *loop;
    int rc = aioc_loop_new(&loop, &o);
    if (rc) return rc;
    aioc_task *t;
    rc = aioc_spawn_ex(&t, loop, fn, arg, NULL);
    if (rc) {
      aioc_loop_free(loop);
      return rc;
    }
    rc = aioc_loop_run_until_complete(loop, aioc_task_future(t));
    int out = rc ? rc : aioc_future_error(aioc_task_future(t));
    aioc_task_unref(t);
    aioc_loop_free(loop);
    if (out) {
      fprintf(stderr,
              "failed under seed %llu (AIOC_SCHEDULE_SEED=%llu to replay)\n",
              (unsigned long long)seed, (unsigned long long)seed);
      if (failed) *failed = seed;
      return 1;
    }
  }
  return 0;
}
