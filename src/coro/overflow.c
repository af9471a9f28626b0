/* The stack-overflow reporter: a SIGSEGV/SIGBUS handler on a per-thread
 * alternate stack maps a faulting address to the guard of a coroutine
 * stack and names the task, then lets the signal kill the process. It
 * chains to any earlier handler for other addresses. Under ASan, ASan's
 * own report is used. */
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "coro.h"

#if !AIOC_ASAN
static struct sigaction prev_segv, prev_bus;
static pthread_once_t handler_once = PTHREAD_ONCE_INIT;
static __thread bool altstack_done;

static void put_str(const char *s) {
  ssize_t r = write(2, s, strlen(s));
  (void)r;
}

static void put_num(uintptr_t v, int base) {
  char buf[32];
  int i = sizeof buf;
  buf[--i] = 0;
  do {
    buf[--i] = "0123456789abcdef"[v % (uintptr_t)base];
    v /= (uintptr_t)base;
  } while (v && i > 0);
  put_str(&buf[i]);
}

static void segv_handler(int sig, siginfo_t *si, void *uctx) {
  const char *owner;
  uint64_t owner_id;
  size_t usable;
  if (aioc__stack_guard_hit(si->si_addr, &owner, &owner_id, &usable)) {
    put_str("aioc: coroutine stack overflow in task '");
    if (owner) {
      put_str(owner);
    } else {
      put_str("Task-");
      put_num((uintptr_t)owner_id, 10);
    }
    put_str("': touched 0x");
    put_num((uintptr_t)si->si_addr, 16);
    put_str(" in the guard page below a stack of ");
    put_num((uintptr_t)usable, 10);
    put_str(" bytes; give the task a larger stack_size (and build with "
            "-fstack-clash-protection)\n");
    signal(sig, SIG_DFL); /* the access repeats and the process dies */
    return;
  }
  struct sigaction *prev = sig == SIGBUS ? &prev_bus : &prev_segv;
  if (prev->sa_flags & SA_SIGINFO) {
    if (prev->sa_sigaction) {
      prev->sa_sigaction(sig, si, uctx);
      return;
    }
  } else if (prev->sa_handler != SIG_DFL && prev->sa_handler != SIG_IGN) {
    prev->sa_handler(sig);
    return;
  }
  signal(sig, SIG_DFL);
}

static void install_handler(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = segv_handler;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, &prev_segv);
  sigaction(SIGBUS, &sa, &prev_bus);
}

#endif /* !AIOC_ASAN */

void aioc__overflow_install(void) {
#if AIOC_ASAN
  /* ASan reports stack overflows itself and owns SIGSEGV. */
  return;
#else
  if (altstack_done) return;
  altstack_done = true;
  stack_t cur;
  if (sigaltstack(NULL, &cur) == 0 && !(cur.ss_flags & SS_DISABLE) &&
      cur.ss_size >= 16384) {
    /* The thread already has one. */
  } else {
    size_t sz = 64 * 1024;
    void *p = mmap(NULL, sz, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return;
    stack_t ss = {.ss_sp = p, .ss_size = sz, .ss_flags = 0};
    if (sigaltstack(&ss, NULL) != 0) {
      munmap(p, sz);
      return;
    }
  }
  pthread_once(&handler_once, install_handler);
#endif
}
