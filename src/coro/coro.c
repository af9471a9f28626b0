/* Context creation and switching, with the sanitizer hooks.
 *
 * ASan must be told about every stack switch (start/finish_switch_fiber),
 * TSan about fibers; the hooks compile away in normal builds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "coro.h"

#if AIOC_ASAN
#include <sanitizer/common_interface_defs.h>
#endif
#if AIOC_TSAN
#include <sanitizer/tsan_interface.h>
#endif

#if AIOC_USE_UCONTEXT
#include <pthread.h>
#include <signal.h>
#include <ucontext.h>
#endif

#if !AIOC_USE_UCONTEXT
/* Assembly in switch_<arch>.S. */
void aioc__ctx_switch(void **save_sp, void *to_sp);
void aioc__ctx_switch_inherit(void **save_sp, void *to_sp);
void aioc__ctx_trampoline(void);
#endif

const char *aioc__coro_backend(void) {
#if AIOC_USE_UCONTEXT
  return "ucontext";
#elif defined(__x86_64__)
  return "x86_64";
#else
  return "aarch64";
#endif
}

#if AIOC_ASAN
/* The context we switched away from, so that the target can record the
 * thread stack's bounds, which ASan only reveals on the way back. */
static __thread aioc__coro *switch_from;
#endif

static inline void before_switch(aioc__coro *from, aioc__coro *to,
                                 bool from_dead) {
#if AIOC_ASAN
  const void *bottom = to->asan_bottom;
  size_t size = to->asan_size;
  if (to->stack) {
    bottom = aioc__stack_lo(to->stack);
    size = (size_t)(aioc__stack_hi(to->stack) - (char *)bottom);
  }
  switch_from = from;
  __sanitizer_start_switch_fiber(from_dead ? NULL : &from->asan_fake, bottom,
                                 size);
#else
  (void)from;
  (void)from_dead;
#endif
#if AIOC_TSAN
  __tsan_switch_to_fiber(to->tsan_fiber, 0);
#else
  (void)to;
#endif
}

static inline void after_switch(aioc__coro *self) {
#if AIOC_ASAN
  const void *bottom_old = NULL;
  size_t size_old = 0;
  __sanitizer_finish_switch_fiber(self->asan_fake, &bottom_old, &size_old);
  if (switch_from && !switch_from->stack) {
    switch_from->asan_bottom = bottom_old;
    switch_from->asan_size = size_old;
  }
#else
  (void)self;
#endif
}

/* Where a suspended context keeps its floating-point control state: the
 * first 8 bytes of the x86-64 frame (MXCSR, x87 CW), or FPCR at 160 in the
 * aarch64 one; all ones: take over the current state. */
#define FP_MARK UINT64_MAX

void aioc__coro_fpenv_adopt(aioc__coro *dst, const aioc__coro *src) {
#if AIOC_USE_UCONTEXT || defined(AIOC_NO_FPENV)
  (void)dst;
  (void)src;
#else
#if defined(__x86_64__)
  const size_t off = 0;
#else
  const size_t off = 160;
#endif
  uint64_t *d = (uint64_t *)((char *)dst->sp + off);
  if (*d != FP_MARK) return;
  if (src) {
    *d = *(const uint64_t *)((const char *)src->sp + off);
    return;
  }
#if defined(__x86_64__)
  uint32_t env[2] = {0, 0};
  __asm__ volatile("stmxcsr %0\n\tfnstcw %1" : "=m"(env[0]), "=m"(env[1]));
  memcpy(d, env, sizeof env);
#else
  uint64_t fpcr;
  __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
  *d = fpcr;
#endif
#endif
}

void aioc__coro_started(aioc__coro *self) {
#if AIOC_ASAN
  self->asan_fake = NULL;
#endif
  after_switch(self);
}

#if AIOC_USE_UCONTEXT

/* The mask every resumed context takes, once the library changed the
 * thread's (see coro.h); before that each keeps its own. */
static __thread sigset_t uc_mask;
static __thread bool uc_mask_set;

void aioc__coro_sigmask_changed(void) {
  pthread_sigmask(SIG_BLOCK, NULL, &uc_mask);
  uc_mask_set = true;
}

static inline void uc_take_mask(aioc__coro *to) {
  if (uc_mask_set) ((ucontext_t *)to->sp)->uc_sigmask = uc_mask;
}

/* makecontext passes ints: split the pointers. */
static void uc_entry(unsigned fhi, unsigned flo, unsigned ahi, unsigned alo) {
  void (*fn)(void *) =
      (void (*)(void *))(((uintptr_t)fhi << 32) | (uintptr_t)flo);
  void *arg = (void *)(((uintptr_t)ahi << 32) | (uintptr_t)alo);
  fn(arg);
  abort();
}

void aioc__coro_init_thread(aioc__coro *c) {
  memset(c, 0, sizeof *c);
  /* Storage for the thread's registers; freed with the loop. */
  static __thread ucontext_t thread_uc;
  c->sp = &thread_uc;
#if AIOC_TSAN
  c->tsan_fiber = __tsan_get_current_fiber();
#endif
}

void aioc__coro_make(aioc__coro *c, aioc__stack *st, void (*fn)(void *),
                     void *arg) {
  char *lo = aioc__stack_lo(st), *hi = aioc__stack_hi(st);
  /* The ucontext_t lives at the top of the coroutine's own stack. */
  uintptr_t top = ((uintptr_t)hi - sizeof(ucontext_t)) & ~(uintptr_t)63;
  ucontext_t *uc = (ucontext_t *)top;
  getcontext(uc);
  uc->uc_stack.ss_sp = lo;
  uc->uc_stack.ss_size = (size_t)((char *)top - lo);
  uc->uc_link = NULL;
  uintptr_t f = (uintptr_t)fn, a = (uintptr_t)arg;
  makecontext(uc, (void (*)(void))uc_entry, 4, (unsigned)(f >> 32),
              (unsigned)f, (unsigned)(a >> 32), (unsigned)a);
  c->sp = uc;
  c->stack = st;
#if AIOC_TSAN
  c->tsan_fiber = aioc__stack_tsan_fiber(st);
#endif
}

void aioc__coro_switch(aioc__coro *from, aioc__coro *to) {
  before_switch(from, to, false);
  uc_take_mask(to);
  swapcontext((ucontext_t *)from->sp, (ucontext_t *)to->sp);
  after_switch(from);
}

void aioc__coro_exit(aioc__coro *from, aioc__coro *to) {
  before_switch(from, to, true);
  uc_take_mask(to);
  setcontext((ucontext_t *)to->sp);
  abort();
}

#else /* assembly */

void aioc__coro_init_thread(aioc__coro *c) {
  memset(c, 0, sizeof *c);
#if AIOC_TSAN
  c->tsan_fiber = __tsan_get_current_fiber();
#endif
}

void aioc__coro_make(aioc__coro *c, aioc__stack *st, void (*fn)(void *),
                     void *arg) {
  uintptr_t top = (uintptr_t)aioc__stack_hi(st) & ~(uintptr_t)15;
#if defined(__x86_64__)
  /* Frame popped by aioc__ctx_switch: fp env, r15, r14, r13, r12, rbx,
   * rbp, resume address. The trampoline then finds the stack 16-aligned
   * for its call. */
  void **sp = (void **)(top - 64);
  sp[0] = (void *)(intptr_t)-1;             /* fp env: take the current */
  sp[1] = NULL;                             /* r15 */
  sp[2] = NULL;                             /* r14 */
  sp[3] = arg;                              /* r13 */
  sp[4] = (void *)fn;                       /* r12 */
  sp[5] = NULL;                             /* rbx */
  sp[6] = NULL;                             /* rbp: ends backtraces */
  sp[7] = (void *)aioc__ctx_trampoline;     /* resume address */
#else
  void **sp = (void **)(top - 176);
  memset(sp, 0, 176);
  sp[20] = (void *)(intptr_t)-1;            /* FPCR: take the current */
  sp[0] = (void *)fn;                       /* x19 */
  sp[1] = arg;                              /* x20 */
  sp[11] = (void *)aioc__ctx_trampoline;    /* x30 */
#endif
  c->sp = sp;
  c->stack = st;
#if AIOC_TSAN
  c->tsan_fiber = aioc__stack_tsan_fiber(st);
#endif
}

#if !AIOC_CORO_INLINE_SWITCH
void aioc__coro_switch(aioc__coro *from, aioc__coro *to) {
  before_switch(from, to, false);
  aioc__ctx_switch(&from->sp, to->sp);
  after_switch(from);
}

void aioc__coro_switch_inherit(aioc__coro *from, aioc__coro *to) {
  before_switch(from, to, false);
  aioc__ctx_switch_inherit(&from->sp, to->sp);
  after_switch(from);
}
#endif

void aioc__coro_exit(aioc__coro *from, aioc__coro *to) {
  before_switch(from, to, true);
  aioc__ctx_switch(&from->sp, to->sp);
  __builtin_unreachable();
}

#endif
