/* The stall detector (docs/stalls.md).
 *
 * A loop with a stall threshold publishes, while it runs, a counter
 * bumped each time a task starts, resumes or stops running (odd: a task
 * runs), the running task and its stack's bounds. Its tasks carry the
 * slow-path bit, so the task layer calls aioc__stall_in/out from the
 * slow path it already has; unwatched loops pay nothing. One thread of
 * the library (the detector) checks every running watched loop a few
 * times per threshold: a loop whose counter stayed odd and unchanged for
 * the threshold is stalled. The detector then signals the loop's thread
 * (aioc_stall_signal()); the handler, on the loop's thread, walks the
 * interrupted context's frame pointers inside the bounds of the stack it
 * was on, copies the task's name, and wakes the detector, which names
 * the frames and reports (the report handler runs on its thread). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <ucontext.h>

#include "stall.h"

enum { REQ_IDLE, REQ_ASKED, REQ_FILLING, REQ_DONE };

#define NAME_MAX_ 64

struct aioc__stall {
  aioc_loop *loop;
  /* Published by the loop's thread, read by the signal handler (on that
   * thread) and by the detector (seq and tid only, atomically). */
  _Atomic uint64_t seq; /* odd while a task runs */
  _Atomic uint32_t tid;
  aioc_task *volatile task;
  aioc__stack *volatile stack; /* the running task's stack */
  uintptr_t thr_lo, thr_hi;  /* the loop thread's own stack */
  pthread_t thread;
  double threshold;
  /* The detector's registry (under reg_lock). */
  struct aioc__stall *next;
  bool registered;
  aioc_stall_fn fn;
  void *arg;
  /* The detector's view (its thread only). */
  uint64_t seen_seq;
  int64_t seen_at;
  bool reported;
  uint32_t rep_tid;
  char rep_name[NAME_MAX_];
  /* The sample the handler takes: asked by the detector (req), filled
   * by the handler, which then posts done. */
  atomic_int req;
  sem_t done;
  uint64_t s_seq;
  uint32_t s_tid;
  char s_name[NAME_MAX_];
  void *s_frames[AIOC_STACK_FRAMES_MAX];
  uintptr_t s_fps[AIOC_STACK_FRAMES_MAX];
  size_t s_n;
  uintptr_t s_lo, s_hi;
};

/* ---- the loop's side ---- */

void aioc__stall_in(aioc_task *t) {
  aioc__stall *s = t->f.loop->stall;
  s->task = t;
  s->stack = t->r ? t->r->coro.stack : NULL;
  atomic_store_explicit(&s->tid, t->f.tid, memory_order_relaxed);
  /* One writer: a plain increment to the next odd value, released for
   * the detector. */
  uint64_t q = atomic_load_explicit(&s->seq, memory_order_relaxed);
  atomic_store_explicit(&s->seq, q + 1 + (q & 1), memory_order_release);
}

void aioc__stall_out(aioc_task *t) {
  aioc__stall *s = t->f.loop->stall;
  uint64_t q = atomic_load_explicit(&s->seq, memory_order_relaxed);
  atomic_store_explicit(&s->seq, q + 2 - (q & 1), memory_order_release);
  atomic_signal_fence(memory_order_seq_cst);
  s->task = NULL;
}

/* ---- the signal ---- */

static int stall_sig;
static pthread_once_t sig_once = PTHREAD_ONCE_INIT;
static bool sig_installed;
/* The watched loop running on this thread, for the handler (set before
 * any signal can come, so that even in the shared library, whose
 * thread-locals take the general-dynamic model, the handler's access
 * allocates nothing). */
static AIOC_TLS aioc__stall *tl_stall;
static AIOC_TLS uintptr_t tl_lo, tl_hi; /* this thread's stack */
static AIOC_TLS bool tl_bounds;

/* Copies a NUL-terminated string that may be changing under us (a
 * rename), without the sanitizers' checks. */
__attribute__((no_sanitize_address)) static void copy_name(char *dst,
                                                           const char *src) {
  size_t i = 0;
  if (src)
    for (; i < NAME_MAX_ - 1 && src[i]; i++) dst[i] = src[i];
  dst[i] = 0;
}

static void on_signal(int sig, siginfo_t *si, void *ucv) {
  (void)sig;
  (void)si;
  int saved = errno;
  aioc__stall *s = tl_stall;
  int asked = REQ_ASKED;
  if (!s || !atomic_compare_exchange_strong(&s->req, &asked, REQ_FILLING)) {
    errno = saved;
    return;
  }
  s->s_seq = atomic_load_explicit(&s->seq, memory_order_relaxed);
  atomic_signal_fence(memory_order_seq_cst);
  aioc_task *t = s->task;
  aioc__stack *st = s->stack;
  /* The bounds are read from the stack's record (plain reads). */
  uintptr_t lo = t && st ? (uintptr_t)aioc__stack_lo(st) : 0;
  uintptr_t hi = t && st ? (uintptr_t)aioc__stack_hi(st) : 0;
  s->s_tid = atomic_load_explicit(&s->tid, memory_order_relaxed);
  s->s_name[0] = 0;
  if (t && t->f.ext) copy_name(s->s_name, t->f.ext->name);
  uintptr_t pc = 0, fp = 0, sp = 0;
  const ucontext_t *uc = ucv;
#if defined(__x86_64__)
  pc = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
  fp = (uintptr_t)uc->uc_mcontext.gregs[REG_RBP];
  sp = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
#elif defined(__aarch64__)
  pc = (uintptr_t)uc->uc_mcontext.pc;
  fp = (uintptr_t)uc->uc_mcontext.regs[29];
  sp = (uintptr_t)uc->uc_mcontext.sp;
#else
  (void)uc;
#endif
  /* Walk only the stack the interrupted code was on: the running task's
   * or the thread's own. A signal landing mid-switch (the stack pointer
   * already on the other stack) or on an unknown stack walks nothing
   * past pc, or stops at the first frame out of bounds. */
  uintptr_t wlo = 0, whi = 0;
  if (t && sp >= lo && sp < hi) {
    wlo = sp;
    whi = hi;
  } else if (s->thr_hi && sp >= s->thr_lo && sp < s->thr_hi) {
    wlo = sp;
    whi = s->thr_hi;
  }
  s->s_lo = wlo;
  s->s_hi = whi;
  s->s_n = aioc__fp_walk(pc, fp, wlo, whi, s->s_frames, s->s_fps,
                         AIOC_STACK_FRAMES_MAX);
  atomic_store_explicit(&s->req, REQ_DONE, memory_order_release);
  sem_post(&s->done);
  errno = saved;
}

static void sig_init(void) {
  int sig = SIGRTMAX - 2;
  const char *e = getenv("AIOC_STALL_SIGNAL");
  if (e && *e) {
    char *end;
    long v = strtol(e, &end, 10);
    if (!*end && v >= SIGRTMIN && v <= SIGRTMAX) sig = (int)v;
  }
  stall_sig = sig;
}

int aioc_stall_signal(void) {
  pthread_once(&sig_once, sig_init);
  return stall_sig;
}

static pthread_once_t install_once = PTHREAD_ONCE_INIT;

/* The handler, installed when the first watched loop runs. */
static void sig_install(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_signal;
  sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
  sigfillset(&sa.sa_mask);
  sig_installed = sigaction(aioc_stall_signal(), &sa, NULL) == 0;
}

/* ---- the detector ---- */

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t reg_cond;
static pthread_once_t cond_once = PTHREAD_ONCE_INIT;
static aioc__stall *reg_head;
static bool wd_running;

static void after_fork_child(void) {
  /* The detector did not cross the fork: the next watched run starts
   * one. */
  pthread_mutex_init(&reg_lock, NULL);
  wd_running = false;
}

static void cond_init(void) {
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&reg_cond, &ca);
  pthread_condattr_destroy(&ca);
  pthread_atfork(NULL, NULL, after_fork_child);
}

static int64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static struct timespec ts_at(int64_t ns) {
  return (struct timespec){.tv_sec = ns / 1000000000,
                           .tv_nsec = ns % 1000000000};
}

/* Asks s's thread for a sample and waits for it up to timeout_ns
 * (reg_lock held). true: filled. */
static bool sample(aioc__stall *s, int64_t timeout_ns) {
  if (!sig_installed) return false;
  atomic_store(&s->req, REQ_ASKED);
  if (pthread_kill(s->thread, stall_sig) != 0) {
    atomic_store(&s->req, REQ_IDLE);
    return false;
  }
  struct timespec until = {0};
  clock_gettime(CLOCK_REALTIME, &until);
  int64_t u = (int64_t)until.tv_sec * 1000000000 + until.tv_nsec + timeout_ns;
  until = ts_at(u);
  for (;;) {
    if (sem_timedwait(&s->done, &until) == 0) break;
    if (errno == EINTR) continue;
    /* Not delivered in time (under TSan a signal waits for a safe
     * point): take the request back, unless the handler has it. */
    int asked = REQ_ASKED;
    if (atomic_compare_exchange_strong(&s->req, &asked, REQ_IDLE))
      return false;
    while (sem_wait(&s->done) != 0 && errno == EINTR) {
    }
    break;
  }
  atomic_store(&s->req, REQ_IDLE);
  return true;
}

static void report(aioc__stall *s, const aioc_stall_report *r) {
  if (s->fn)
    s->fn(s->arg, r);
  else
    aioc_stall_report_write(r, stderr);
}

static void check(aioc__stall *s, int64_t now) {
  uint64_t q = atomic_load_explicit(&s->seq, memory_order_acquire);
  if (q != s->seen_seq) {
    if (s->reported) {
      aioc_stall_report r = {.loop = s->loop,
                             .task_id = s->rep_tid,
                             .task_name = s->rep_name,
                             .blocked = (double)(now - s->seen_at) / 1e9,
                             .ended = 1};
      report(s, &r);
    }
    s->seen_seq = q;
    s->seen_at = now;
    s->reported = false;
    return;
  }
  if (!(q & 1) || s->reported) return;
  if ((double)(now - s->seen_at) < s->threshold * 1e9) return;
  uint32_t tid = atomic_load_explicit(&s->tid, memory_order_relaxed);
  if (atomic_load_explicit(&s->seq, memory_order_acquire) != q) return;
  bool got = sample(s, (int64_t)1000000000) && s->s_seq == q;
  s->reported = true;
  s->rep_tid = got ? s->s_tid : tid;
  if (got && s->s_name[0])
    memcpy(s->rep_name, s->s_name, sizeof s->rep_name);
  else
    snprintf(s->rep_name, sizeof s->rep_name, "Task-%u", (unsigned)s->rep_tid);
  aioc_stall_report r = {.loop = s->loop,
                         .task_id = s->rep_tid,
                         .task_name = s->rep_name,
                         .blocked = (double)(now - s->seen_at) / 1e9,
                         .ended = 0,
                         .frames = got && s->s_n ? s->s_frames : NULL,
                         .nframes = got ? s->s_n : 0};
  report(s, &r);
}

static void *detector(void *arg) {
  (void)arg;
  pthread_mutex_lock(&reg_lock);
  for (;;) {
    if (!reg_head) {
      pthread_cond_wait(&reg_cond, &reg_lock);
      continue;
    }
    double period = 1;
    for (aioc__stall *s = reg_head; s; s = s->next)
      if (s->threshold / 4 < period) period = s->threshold / 4;
    if (period < 0.001) period = 0.001;
    struct timespec until = ts_at(mono_ns() + (int64_t)(period * 1e9));
    /* Woken early (a loop registered): checking early is harmless. */
    pthread_cond_timedwait(&reg_cond, &reg_lock, &until);
    int64_t now = mono_ns();
    for (aioc__stall *s = reg_head; s; s = s->next) check(s, now);
  }
  return NULL;
}

/* Starts the detector (reg_lock held). */
static void detector_start(void) {
  if (wd_running) return;
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_t th;
  pthread_attr_t a;
  pthread_attr_init(&a);
  pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
  if (pthread_create(&th, &a, detector, NULL) == 0) wd_running = true;
  pthread_attr_destroy(&a);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static aioc__stall *stall_get(aioc_loop *loop) {
  if (loop->stall) return loop->stall;
  aioc__stall *s = aioc__calloc(1, sizeof *s);
  if (!s) return NULL;
  if (sem_init(&s->done, 0, 0) != 0) {
    aioc__free(s);
    return NULL;
  }
  s->loop = loop;
  atomic_init(&s->req, REQ_IDLE);
  loop->stall = s;
  return s;
}

/* This thread's stack, once per thread. */
static void thread_bounds(void) {
  if (tl_bounds) return;
  tl_bounds = true;
  pthread_attr_t a;
  if (pthread_getattr_np(pthread_self(), &a) != 0) return;
  void *addr;
  size_t size;
  if (pthread_attr_getstack(&a, &addr, &size) == 0) {
    tl_lo = (uintptr_t)addr;
    tl_hi = (uintptr_t)addr + size;
  }
  pthread_attr_destroy(&a);
}

void aioc__stall_run_begin(aioc_loop *loop) {
  if (!(loop->stall_threshold > 0)) return;
  aioc__stall *s = stall_get(loop);
  if (!s) return;
  pthread_once(&cond_once, cond_init);
  pthread_once(&install_once, sig_install);
  thread_bounds();
  s->thr_lo = tl_lo;
  s->thr_hi = tl_hi;
  s->threshold = loop->stall_threshold;
  s->thread = pthread_self();
  tl_stall = s;
  pthread_mutex_lock(&reg_lock);
  if (!s->registered) {
    s->registered = true;
    s->next = reg_head;
    reg_head = s;
    s->seen_seq = atomic_load(&s->seq);
    s->seen_at = mono_ns();
    s->reported = false;
    detector_start();
    pthread_cond_signal(&reg_cond);
  }
  pthread_mutex_unlock(&reg_lock);
}

void aioc__stall_run_end(aioc_loop *loop) {
  aioc__stall *s = loop->stall;
  if (!s) return;
  pthread_mutex_lock(&reg_lock);
  if (s->registered) {
    for (aioc__stall **p = &reg_head; *p; p = &(*p)->next)
      if (*p == s) {
        *p = s->next;
        break;
      }
    s->registered = false;
  }
  pthread_mutex_unlock(&reg_lock);
  if (tl_stall == s) tl_stall = NULL;
}

void aioc__stall_free(aioc_loop *loop) {
  aioc__stall *s = loop->stall;
  if (!s) return;
  aioc__stall_run_end(loop);
  sem_destroy(&s->done);
  aioc__free(s);
  loop->stall = NULL;
}

int aioc_loop_set_stall_handler(aioc_loop *loop, aioc_stall_fn fn,
                                void *arg) {
  if (!loop || !AIOC__LOOP_OK(loop, "aioc_loop_set_stall_handler"))
    return -EINVAL;
  aioc__stall *s = stall_get(loop);
  if (!s) return aioc__fail(-ENOMEM, "no memory for the stall detector");
  pthread_mutex_lock(&reg_lock);
  s->fn = fn;
  s->arg = arg;
  pthread_mutex_unlock(&reg_lock);
  return 0;
}

int aioc_stall_report_write(const aioc_stall_report *r, FILE *out) {
  if (!r || !out) return -EINVAL;
  if (r->ended) {
    fprintf(out,
            "aioc: task %s (id %u) no longer blocks the loop: it ran %.3f s "
            "without suspending\n",
            r->task_name ? r->task_name : "?", (unsigned)r->task_id,
            r->blocked);
    fflush(out);
    return 0;
  }
  fprintf(out,
          "aioc: task %s (id %u) has blocked the loop for %.3f s without "
          "reaching a suspension point\n",
          r->task_name ? r->task_name : "?", (unsigned)r->task_id, r->blocked);
  if (!r->frames || !r->nframes) fprintf(out, "    (stack unavailable)\n");
  for (size_t i = 0; r->frames && i < r->nframes; i++) {
    char b[256];
    aioc_frame_describe(r->frames[i], b, sizeof b);
    fprintf(out, "    #%zu %s\n", i, b);
  }
  fflush(out);
  return 0;
}

int aioc__stall_sample_now(aioc_loop *loop, aioc__stall_sample *out,
                           double timeout) {
  if (!loop || !out) return -EINVAL;
  pthread_mutex_lock(&reg_lock);
  aioc__stall *s = loop->stall;
  if (!s || !s->registered) {
    pthread_mutex_unlock(&reg_lock);
    return -EINVAL;
  }
  bool got = sample(s, (int64_t)(timeout * 1e9));
  if (got) {
    out->n = s->s_n;
    memcpy(out->frames, s->s_frames, sizeof out->frames);
    memcpy(out->fps, s->s_fps, sizeof out->fps);
    out->lo = s->s_lo;
    out->hi = s->s_hi;
    out->seq = s->s_seq;
  }
  pthread_mutex_unlock(&reg_lock);
  return got ? 1 : 0;
}
