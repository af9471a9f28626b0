/* Signals through signalfd: one signalfd per loop, holding the union of
 * the signals its handlers take, polled by the loop and read until
 * empty; each signal read goes to every handler that takes it. The
 * signals are blocked in the thread that adds a handler (signalfd only
 * sees blocked signals), and each thread counts the handlers of each
 * signal so that the last one to go restores the signal's blocked state.
 * The dispositions are never touched. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "../task/task.h"

#define MAXSIG 64 /* signal numbers 1..64; bit s - 1 of a uint64_t */
#define BIT(s) ((uint64_t)1 << ((s) - 1))

typedef struct sigloop sigloop;

struct aioc_signal {
  aioc__list link; /* in sl->handlers while sl is set */
  aioc_loop *loop; /* referenced until the handler is freed */
  sigloop *sl;     /* NULL once unlinked */
  uint64_t set;
  aioc_signal_fn fn; /* NULL: an iterator */
  void *arg;
  bool closed;
  bool freed; /* freed during a dispatch: the sweep frees it */
  /* The iterator: numbers not yet taken, each at most once. */
  aioc__waitpoint wp;
  uint8_t ring[MAXSIG];
  unsigned head, count;
  uint64_t queued;
  AIOC__ARMOR_FIELD
};

/* The loop's signalfd and its handlers. */
struct sigloop {
  aioc__slot slot; /* key: &sigloop_key */
  aioc__live live;
  aioc_loop *loop;
  int fd; /* -1: none */
  uint64_t set; /* the signals on fd */
  aioc__list handlers;
  unsigned nhandlers[MAXSIG + 1]; /* open handlers of each signal */
  unsigned dispatching; /* handlers are being called: unlink nothing */
};

static const char sigloop_key;

#define SIGNAL_OK(s, fn) AIOC__ARMOR_OK(s, AIOC__MAGIC_SIGNAL, fn, "signal")

/* ---- the thread's signal mask ---- */

/* The handlers of this thread (all its loops) on each signal, and the
 * signals that were blocked before the first of them blocked it. */
static __thread unsigned t_users[MAXSIG + 1];
static __thread uint64_t t_was_blocked;

static void mask_take(uint64_t set) {
  sigset_t add, old;
  sigemptyset(&add);
  uint64_t fresh = 0;
  for (int s = 1; s <= MAXSIG; s++)
    if ((set & BIT(s)) && t_users[s]++ == 0) {
      sigaddset(&add, s);
      fresh |= BIT(s);
    }
  if (!fresh) return;
  pthread_sigmask(SIG_BLOCK, &add, &old);
  aioc__coro_sigmask_changed();
  for (int s = 1; s <= MAXSIG; s++)
    if (fresh & BIT(s)) {
      if (sigismember(&old, s))
        t_was_blocked |= BIT(s);
      else
        t_was_blocked &= ~BIT(s);
    }
}

static void mask_give(uint64_t set) {
  sigset_t del;
  sigemptyset(&del);
  bool any = false;
  for (int s = 1; s <= MAXSIG; s++)
    if ((set & BIT(s)) && t_users[s] && --t_users[s] == 0 &&
        !(t_was_blocked & BIT(s))) {
      sigaddset(&del, s);
      any = true;
    }
  if (any) {
    pthread_sigmask(SIG_UNBLOCK, &del, NULL);
    aioc__coro_sigmask_changed();
  }
}

static bool signal_ok(int s) {
  if (s >= SIGRTMIN && s <= SIGRTMAX && s <= MAXSIG) return true;
  if (s < 1 || s > 31) return false; /* 32 and 33 belong to glibc */
  switch (s) {
  case SIGKILL: case SIGSTOP: /* cannot be blocked */
  case SIGSEGV: case SIGBUS: case SIGFPE: case SIGILL: case SIGTRAP:
    return false; /* a fault cannot wait for the loop */
  default: return true;
  }
}

/* ---- the loop's signalfd ---- */

static void sl_readable(aioc_loop *loop, int fd, uint32_t events, void *arg);
static void sl_abandon(aioc__live *n);
static const aioc__live_ops sl_live_ops = {NULL, sl_abandon};

static sigloop *sl_get(aioc_loop *loop) {
  aioc__slot *s = aioc__slot_find(loop, &sigloop_key);
  if (s) return aioc__container_of(s, sigloop, slot);
  sigloop *sl = aioc__calloc(1, sizeof *sl);
  if (!sl) return NULL;
  sl->loop = loop;
  sl->fd = -1;
  aioc__list_init(&sl->handlers);
  aioc__slot_add(loop, &sl->slot, &sigloop_key);
  aioc__live_add(loop, &sl->live, &sl_live_ops);
  return sl;
}

static void sl_free(sigloop *sl) {
  if (sl->fd >= 0) {
    aioc__poll_del(sl->loop, sl->fd);
    close(sl->fd);
  }
  aioc__slot_del(&sl->slot);
  aioc__live_del(&sl->live);
  aioc__free(sl);
}

/* Makes the signalfd take exactly the signals of the open handlers
 * (closing it when there are none, unless a dispatch reads it). */
static int sl_update(sigloop *sl) {
  uint64_t want = 0;
  for (int s = 1; s <= MAXSIG; s++)
    if (sl->nhandlers[s]) want |= BIT(s);
  if (want == sl->set && sl->fd >= 0) return 0;
  if (!want) {
    if (sl->dispatching || sl->fd < 0) return 0;
    aioc__poll_del(sl->loop, sl->fd);
    close(sl->fd);
    sl->fd = -1;
    sl->set = 0;
    return 0;
  }
  sigset_t m;
  sigemptyset(&m);
  for (int s = 1; s <= MAXSIG; s++)
    if (want & BIT(s)) sigaddset(&m, s);
  if (sl->fd >= 0) {
    if (signalfd(sl->fd, &m, 0) < 0) return -errno;
    sl->set = want;
    return 0;
  }
  int fd = signalfd(-1, &m, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0) return -errno;
  int rc = aioc__poll_add(sl->loop, fd, EPOLLIN, sl_readable, sl);
  if (rc < 0) {
    close(fd);
    return rc;
  }
  sl->fd = fd;
  sl->set = want;
  return 0;
}

static void handler_release(aioc_signal *h) {
  aioc_loop *loop = h->loop;
  AIOC__ARMOR_SET(h, AIOC__MAGIC_DEAD);
  aioc__free(h);
  aioc__loop_unref(loop);
}

/* After a dispatch: unlinks the handlers closed meanwhile, frees those
 * freed, and fits the signalfd (or drops it all) to what is left. */
static void sl_sweep(sigloop *sl) {
  if (sl->dispatching) return;
  aioc__list_each(l, &sl->handlers) {
    aioc_signal *h = aioc__container_of(l, aioc_signal, link);
    if (!h->closed) continue;
    aioc__list_del(&h->link);
    h->sl = NULL;
    if (h->freed) handler_release(h);
  }
  if (aioc__list_is_empty(&sl->handlers))
    sl_free(sl);
  else
    AIOC__IGNORE(sl_update(sl)); /* fewer signals: cannot fail */
}

static void iter_push(aioc_signal *h, int signo) {
  if (h->queued & BIT(signo)) return; /* coalesced */
  h->ring[(h->head + h->count) % MAXSIG] = (uint8_t)signo;
  h->count++;
  h->queued |= BIT(signo);
  aioc__waitpoint_notify(&h->wp);
}

static void dispatch(sigloop *sl, int signo) {
  if (signo < 1 || signo > MAXSIG) return;
  sl->dispatching++;
  aioc__list_each(l, &sl->handlers) {
    aioc_signal *h = aioc__container_of(l, aioc_signal, link);
    if (h->closed || !(h->set & BIT(signo))) continue;
    if (h->fn)
      h->fn(h->arg, signo);
    else
      iter_push(h, signo);
  }
  sl->dispatching--;
}

static void sl_readable(aioc_loop *loop, int fd, uint32_t events, void *arg) {
  (void)loop, (void)events;
  sigloop *sl = arg;
  struct signalfd_siginfo si[8];
  sl->dispatching++; /* the fd stays open until the sweep */
  for (;;) {
    ssize_t r = read(fd, si, sizeof si);
    if (r <= 0) break;
    for (size_t i = 0; i < (size_t)r / sizeof si[0]; i++)
      dispatch(sl, (int)si[i].ssi_signo);
    if (aioc__list_is_empty(&sl->handlers)) break;
  }
  sl->dispatching--;
  sl_sweep(sl);
}

/* The loop closes with handlers still open: each is closed (the signals
 * go back to their previous state) and stays the user's to free. */
static void sl_abandon(aioc__live *n) {
  sigloop *sl = aioc__container_of(n, sigloop, live);
  aioc__list *l;
  while ((l = aioc__list_pop_front(&sl->handlers)) != NULL) {
    aioc_signal *h = aioc__container_of(l, aioc_signal, link);
    h->sl = NULL;
    if (!h->closed) {
      h->closed = true;
      mask_give(h->set);
    }
    if (h->freed) handler_release(h);
  }
  sl_free(sl);
}

/* ---- handlers ---- */

static aioc_loop *pick_loop(aioc_loop *loop, int *rc) {
  if (!loop) loop = aioc__running ? aioc__running : aioc_loop_current();
  *rc = !loop ? -ENOMEM /* no implicit loop could be made */
        : !AIOC__LOOP_OK(loop, "aioc_signal_add") ? -EINVAL
        : loop->closed ? AIOC_ECLOSED
                       : 0;
  return *rc ? NULL : loop;
}

static int handler_new(aioc_signal **out, aioc_loop *loop, const int *signums,
                       size_t n, aioc_signal_fn fn, void *arg) {
  if (!out) return -EINVAL;
  *out = NULL;
  if (!signums || !n) return -EINVAL;
  uint64_t set = 0;
  for (size_t i = 0; i < n; i++) {
    if (!signal_ok(signums[i])) return -EINVAL;
    set |= BIT(signums[i]);
  }
  int rc;
  if (!(loop = pick_loop(loop, &rc))) return rc;
  aioc_signal *h = aioc__calloc(1, sizeof *h);
  if (!h) return -ENOMEM;
  sigloop *sl = sl_get(loop);
  if (!sl) {
    aioc__free(h);
    return -ENOMEM;
  }
  for (int s = 1; s <= MAXSIG; s++)
    if (set & BIT(s)) sl->nhandlers[s]++;
  /* Blocked first: one sent before the signalfd exists waits for it. */
  mask_take(set);
  if ((rc = sl_update(sl)) < 0) {
    for (int s = 1; s <= MAXSIG; s++)
      if (set & BIT(s)) sl->nhandlers[s]--;
    mask_give(set);
    if (aioc__list_is_empty(&sl->handlers)) sl_free(sl);
    aioc__free(h);
    return rc;
  }
  h->loop = loop;
  h->sl = sl;
  h->set = set;
  h->fn = fn;
  h->arg = arg;
  aioc__waitpoint_init(&h->wp, loop);
  aioc__list_push_back(&sl->handlers, &h->link);
  aioc__loop_ref(loop);
  AIOC__ARMOR_SET(h, AIOC__MAGIC_SIGNAL);
  *out = h;
  return 0;
}

int aioc_signal_add(aioc_signal **out, aioc_loop *loop, const int *signums,
                    size_t n, aioc_signal_fn fn, void *arg) {
  if (!fn) {
    if (out) *out = NULL;
    return -EINVAL;
  }
  return handler_new(out, loop, signums, n, fn, arg);
}

int aioc_signal_close(aioc_signal *h) {
  if (!h || !SIGNAL_OK(h, "aioc_signal_close")) return -EINVAL;
  if (h->closed) return AIOC_ECLOSED;
  h->closed = true;
  mask_give(h->set);
  sigloop *sl = h->sl;
  for (int s = 1; s <= MAXSIG; s++)
    if (h->set & BIT(s)) sl->nhandlers[s]--;
  /* An iterator's consumer learns of the end. */
  if (!h->fn) aioc__waitpoint_notify(&h->wp);
  sl_sweep(sl); /* unlinks it now, or after the dispatch under way */
  return 0;
}

void aioc_signal_free(aioc_signal *h) {
  if (!h || !SIGNAL_OK(h, "aioc_signal_free")) return;
  if (!h->closed) aioc_signal_close(h);
  if (h->sl) /* still linked: a dispatch is under way */
    h->freed = true;
  else
    handler_release(h);
}

/* ---- the iterator ---- */

static bool iter_ready(void *arg) {
  aioc_signal *h = arg;
  return h->count || h->closed;
}

static int iter_next(void *self, void **item, double timeout) {
  aioc_signal *h = self;
  *item = NULL;
  if (!iter_ready(h)) {
    int rc = aioc__waitpoint_wait(&h->wp, iter_ready, h, timeout, false);
    if (rc < 0) return rc;
  }
  if (!h->count) return AIOC_EXHAUSTED;
  int s = h->ring[h->head];
  h->head = (h->head + 1) % MAXSIG;
  h->count--;
  h->queued &= ~BIT(s);
  *item = AIOC_INT(s);
  return 0;
}

static int iter_close(void *self) {
  int rc = aioc_signal_close(self);
  return rc == AIOC_ECLOSED ? 0 : rc;
}

static void iter_free(void *self) { aioc_signal_free(self); }

static const aioc_iter_vtable signal_iter_vt = {iter_next, iter_close,
                                                iter_free};

int aioc_signal_iter(aioc_iter **out, aioc_loop *loop, const int *signums,
                     size_t n) {
  aioc_signal *h;
  int rc = handler_new(&h, loop, signums, n, NULL, NULL);
  if (rc < 0) {
    if (out) *out = NULL;
    return rc;
  }
  if ((rc = aioc_iter_new(out, &signal_iter_vt, h)) < 0) aioc_signal_free(h);
  return rc;
}

/* ---- a graceful end on SIGINT and SIGTERM ---- */

typedef struct graceful {
  aioc_fn main;
  void *arg;
  aioc_task *task;
  int sig;
} graceful;

static void graceful_signal(void *arg, int signum) {
  graceful *g = arg;
  if (g->sig) aioc_signal_exit(signum); /* asked twice: no more waiting */
  g->sig = signum;
  aioc_task_cancel(g->task,
                   signum == SIGINT ? "SIGINT received" : "SIGTERM received");
}

static int graceful_main(void *arg, void **result) {
  graceful *g = arg;
  g->task = aioc_current_task();
  aioc_signal *s;
  static const int stop[] = {SIGINT, SIGTERM};
  int rc = aioc_signal_add(&s, NULL, stop, 2, graceful_signal, g);
  if (rc < 0) return aioc_error(rc, "cannot handle SIGINT and SIGTERM");
  rc = g->main(g->arg, result);
  aioc_signal_free(s);
  return rc;
}

int aioc_run_graceful(aioc_fn main, void *arg, void **result, int *signum,
                      const aioc_run_options *opts) {
  if (signum) *signum = 0;
  if (result) *result = NULL;
  if (!main) return -EINVAL;
  graceful g = {.main = main, .arg = arg};
  int rc = aioc_run_ex(graceful_main, &g, result, opts);
  if (signum) *signum = g.sig;
  return rc;
}

void aioc_signal_exit(int signum) {
  fflush(NULL);
  if (signum > 0 && signum < NSIG && signum != SIGSTOP) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    sigaction(signum, &sa, NULL);
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, signum);
    pthread_sigmask(SIG_UNBLOCK, &m, NULL);
    raise(signum); /* returns only if its default is not to terminate */
  }
  _exit(signum > 0 && signum < 128 ? 128 + signum : 255);
}
