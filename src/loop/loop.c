/* Loop creation, close and free, and the thread's current loop. The rest
 * of the loop layer, one concept a file: clock.c, timer.c, handle.c,
 * tscall.c, poll.c, run.c, report.c. */

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "loop.h"
#include "../observe/stall.h"

AIOC_TLS aioc_loop *aioc__running;
__thread aioc_loop *aioc__thread_current;
/* The loop aioc_loop_current() created for this thread: the thread owns
 * it, and a thread-specific key frees it when the thread exits. */
static __thread aioc_loop *thread_owned;
static pthread_key_t owned_key;
static pthread_once_t owned_once = PTHREAD_ONCE_INIT;

/* ---- creation, lifetime ---- */

/* The AIOC_OBSERVE environment variable: "timing,spawns,stacks,events"
 * (any of them, comma-separated) or "all". Unknown words are ignored. */
static unsigned aioc__observe_from_env(void) {
  const char *e = getenv("AIOC_OBSERVE");
  if (!e || !*e) return 0;
  static const struct {
    const char *word;
    unsigned flag;
  } words[] = {{"timing", AIOC_OBSERVE_TIMING},
               {"spawns", AIOC_OBSERVE_SPAWNS},
               {"stacks", AIOC_OBSERVE_STACKS},
               {"events", AIOC_OBSERVE_EVENTS},
               {"all", AIOC_OBSERVE_ALL}};
  unsigned flags = 0;
  while (*e) {
    size_t n = strcspn(e, ",");
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
      if (strlen(words[i].word) == n && strncmp(e, words[i].word, n) == 0)
        flags |= words[i].flag;
    e += n;
    if (*e) e++;
  }
  return flags;
}

/* A numeric environment variable, or dflt when unset, empty or not a
 * number. */
static unsigned long aioc__env_ulong(const char *name, unsigned long dflt) {
  const char *e = getenv(name);
  if (!e || !*e) return dflt;
  char *end;
  errno = 0;
  unsigned long v = strtoul(e, &end, 0);
  return errno || *end ? dflt : v;
}

static double aioc__env_double(const char *name, double dflt) {
  const char *e = getenv(name);
  if (!e || !*e) return dflt;
  char *end;
  double v = strtod(e, &end);
  return *end || !(v >= 0) ? dflt : v;
}

int aioc_loop_new(aioc_loop **out, const aioc_loop_options *opts) {
  if (!out) return -EINVAL;
  *out = NULL;
  aioc_loop *loop = aioc__calloc(1, sizeof *loop);
  if (!loop) return -ENOMEM;
  loop->epfd = epoll_create1(EPOLL_CLOEXEC);
  loop->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (loop->epfd < 0 || loop->evfd < 0) {
    int err = -errno;
    if (loop->epfd >= 0) close(loop->epfd);
    if (loop->evfd >= 0) close(loop->evfd);
    aioc__free(loop);
    return err;
  }
  /* Events carry the fd, looked up at delivery (a callback may remove
   * another fd's registration in the same poll); the eventfd is marked. */
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = UINT64_MAX};
  epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->evfd, &ev);
  aioc__list_init(&loop->deferred);
  loop->refs = 1;
  loop->stack_stride = aioc__stack_stride(opts ? opts->stack_size : 0);
  loop->virtual_clock = opts && opts->virtual_clock;
  loop->quiet = opts && opts->quiet;
  loop->observe = opts && opts->observe ? opts->observe
                                        : aioc__observe_from_env();
  if (loop->observe & AIOC_OBSERVE_STACKS)
    loop->observe |= AIOC_OBSERVE_SPAWNS;
  loop->trace_events = opts && opts->trace_events
                           ? opts->trace_events
                           : (unsigned)aioc__env_ulong("AIOC_TRACE_EVENTS", 0);
  if ((loop->observe & AIOC_OBSERVE_EVENTS) && aioc__trace_new(loop) < 0) {
    close(loop->epfd);
    close(loop->evfd);
    aioc__free(loop);
    return -ENOMEM;
  }
  loop->stall_threshold = opts && opts->stall_threshold > 0
                              ? opts->stall_threshold
                              : aioc__env_double("AIOC_STALL", 0);
  if (loop->stall_threshold > 0) loop->observe |= AIOC__OBSERVE_STALL;
  const char *cb = getenv("AIOC_COOP_BUDGET");
  loop->coop_budget =
      opts && opts->coop_budget ? opts->coop_budget
      : cb && strcmp(cb, "never") == 0
          ? UINT_MAX
          : (unsigned)aioc__env_ulong("AIOC_COOP_BUDGET", 0);
  if (!loop->coop_budget) loop->coop_budget = AIOC__COOP_DEFAULT;
  /* Seeded schedules need the virtual clock (a real one reorders
   * anyway). */
  loop->schedule_seed =
      !loop->virtual_clock ? 0
      : opts && opts->schedule_seed
          ? opts->schedule_seed
          : (uint64_t)aioc__env_ulong("AIOC_SCHEDULE_SEED", 0);
  loop->debug_socket = (opts && opts->debug_socket) ||
                       (getenv("AIOC_DEBUG_SOCKET") != NULL);
  aioc__list_init(&loop->live);
  aioc__list_init(&loop->slots);
  loop->scav_when = AIOC__NEVER;
  AIOC__ARMOR_SET(loop, AIOC__MAGIC_LOOP);
  aioc__overflow_install();
  *out = loop;
  return 0;
}

void aioc__loop_free(aioc_loop *loop) {
  AIOC__ARMOR_SET(loop, AIOC__MAGIC_DEAD);
  aioc__trace_free(loop);
  aioc__stall_free(loop);
  aioc__free(loop->stack_sites);
  aioc__sched_free(loop);
  aioc__free(loop);
}

int aioc_loop_close(aioc_loop *loop) {
  if (!loop || !AIOC__LOOP_OK(loop, "aioc_loop_close")) return -EINVAL;
  if (loop->closed) return AIOC_ECLOSED;
  if (loop->running) return AIOC_ERUNNING;
  /* Generators left unfinished run their cleanup first (asyncio's
   * shutdown_asyncgens). */
  aioc__loop_shutdown_live(loop);
  loop->closed = true;
  /* Calls posted from now on are refused; those already posted are
   * dropped once everything else is gone. */
  aioc__posted *posted = aioc__post_close(loop);
  /* Tasks that can no longer run: each reports itself and ends cancelled.
   * Abandoning one may schedule others (its waiters), which are dropped
   * with the ready queue below. */
  aioc__list *l;
  while ((l = aioc__list_pop_front(&loop->live)) != NULL) {
    aioc__live *n = aioc__container_of(l, aioc__live, link);
    n->ops->abandon(n);
  }
  /* Callbacks never run: drop them. Every runnable (and task step)
   * checks loop->closed and only cleans up; tasks that never started
   * report themselves there. */
  uintptr_t e;
  while ((e = aioc__ready_pop(loop)) != 0) aioc__ready_run(loop, e);
  while (loop->nheap) {
    aioc__timer *t = loop->heap[0].t;
    aioc__timer_disarm(loop, t);
    t->fire(loop, t); /* fired on a closed loop: owners clean up */
    while ((e = aioc__ready_pop(loop)) != 0) aioc__ready_run(loop, e);
  }
  aioc__free(loop->heap);
  loop->heap = NULL;
  if (loop->debugsock) aioc__debugsock_stop(loop);
  close(loop->epfd);
  close(loop->evfd);
  aioc__poll_drop_all(loop);
  aioc__post_drop_all(posted);
  if (aioc__thread_current == loop) aioc__thread_current = NULL;
  aioc__stack_trim(64);
  return 0;
}

void aioc__loop_shutdown_live(aioc_loop *loop) {
  /* Running the loop may end (and free) any of them: rescan each time. */
  for (;;) {
    aioc__live *n = NULL;
    aioc__list_each(l, &loop->live) {
      aioc__live *x = aioc__container_of(l, aioc__live, link);
      if (x->ops->shutdown && !x->shut) {
        n = x;
        break;
      }
    }
    if (!n) return;
    n->shut = true;
    n->ops->shutdown(n);
  }
}

void aioc_loop_free(aioc_loop *loop) {
  if (!loop || !AIOC__LOOP_OK(loop, "aioc_loop_free")) return;
  if (loop->running) {
    fprintf(stderr, "aioc_loop_free: the loop is running; not freed\n");
    return;
  }
  if (!loop->closed) aioc_loop_close(loop);
  if (thread_owned == loop) {
    thread_owned = NULL;
    pthread_setspecific(owned_key, NULL);
  }
  if (aioc__thread_current == loop) aioc__thread_current = NULL;
  /* Freed for its user, even if futures keep its memory a while. */
  AIOC__ARMOR_SET(loop, AIOC__MAGIC_DEAD);
  aioc__loop_unref(loop);
}

static void owned_exit(void *p) {
  if (p == thread_owned) aioc_loop_free(p);
}

static int owned_key_rc;
static void owned_key_make(void) {
  owned_key_rc = pthread_key_create(&owned_key, owned_exit);
}

aioc_loop *aioc_get_running_loop(void) {
  return aioc__running;
}

aioc_loop *aioc_loop_current(void) {
  if (aioc__running) return aioc__running;
  if (aioc__thread_current) return aioc__thread_current;
  if (thread_owned && !thread_owned->closed)
    return aioc__thread_current = thread_owned;
  /* A closed implicit loop is replaced (it was the thread's to free). */
  aioc_loop_free(thread_owned);
  aioc_loop *loop;
  if (aioc_loop_new(&loop, NULL) < 0) return NULL;
  pthread_once(&owned_once, owned_key_make);
  if (owned_key_rc != 0 || pthread_setspecific(owned_key, loop) != 0) {
    aioc_loop_free(loop);
    return NULL;
  }
  thread_owned = aioc__thread_current = loop;
  return loop;
}

int aioc_loop_set_current(aioc_loop *loop) {
  if (loop && !AIOC__LOOP_OK(loop, "aioc_loop_set_current")) return -EINVAL;
  if (loop && loop->closed) return AIOC_ECLOSED;
  aioc__thread_current = loop;
  return 0;
}

int aioc_loop_is_running(const aioc_loop *loop) {
  return loop && AIOC__LOOP_OK(loop, "aioc_loop_is_running") && loop->running;
}

int aioc_loop_is_closed(const aioc_loop *loop) {
  return loop && AIOC__LOOP_OK(loop, "aioc_loop_is_closed") && loop->closed;
}

double aioc_time(void) {
  aioc_loop *loop = aioc__running ? aioc__running : aioc__thread_current;
  return loop ? aioc_loop_time(loop) : 0;
}
