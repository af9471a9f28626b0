/* Coroutine layer: execution contexts on pooled stacks.
 *
 * A context is a saved stack pointer (or, in the ucontext build, a pointer
 * to a ucontext_t that lives at the top of the context's own stack). The
 * switch carries the sanitizer and valgrind annotations, so callers never
 * see them. */
#ifndef AIOC_CORO_H
#define AIOC_CORO_H

#include "../util/common.h"

typedef struct aioc__stack aioc__stack;

typedef struct aioc__coro {
  void *sp;           /* saved stack pointer, or ucontext_t * */
  aioc__stack *stack; /* NULL for the thread's own context */
#if AIOC_ASAN
  void *asan_fake;
  const void *asan_bottom;
  size_t asan_size;
#endif
#if AIOC_TSAN
  void *tsan_fiber;
#endif
} aioc__coro;

/* What passes between two contexts of one thread around a switch, kept
 * by whoever drives the switches (one per loop): the first context of a
 * coroutine about to start (made here, then copied by the coroutine onto
 * its own stack), that stack's stride, and the stack of a coroutine that
 * has just exited, which the next context gives back (nothing can free
 * the stack it runs on). */
typedef struct aioc__coro_relay {
  aioc__coro start;
  size_t start_stride;
  aioc__stack *exited;
} aioc__coro_relay;

/* Which switch this build uses: "x86_64", "aarch64" or "ucontext". */
AIOC_HIDDEN const char *aioc__coro_backend(void);

/* Prepares c to represent the calling thread's own context. */
AIOC_HIDDEN void aioc__coro_init_thread(aioc__coro *c);

/* Prepares c to run fn(arg) on st when first switched to. fn must never
 * return: it ends with aioc__coro_exit(). */
AIOC_HIDDEN void aioc__coro_make(aioc__coro *c, aioc__stack *st,
                                 void (*fn)(void *), void *arg);

/* Which switch: the assembly one, or makecontext()/swapcontext(). */
#if defined(AIOC_UCONTEXT) ||                                                  \
    (!defined(__x86_64__) && !defined(__aarch64__))
#define AIOC_USE_UCONTEXT 1
#endif

/* The thread's signal mask changed (signal handlers of the I/O layer
 * block their signals). swapcontext() restores each context's own mask,
 * so from then on every context resumed takes the thread's new mask; the
 * assembly switch leaves the mask alone and this does nothing. */
#if AIOC_USE_UCONTEXT
AIOC_HIDDEN void aioc__coro_sigmask_changed(void);
#else
static inline void aioc__coro_sigmask_changed(void) {}
#endif

/* Suspends from and resumes to. Returns when something switches back.
 * Without sanitizers and with the assembly switch it is inline: the hot
 * paths (task to task, generator to consumer) pay for the switch alone.
 *
 * aioc__coro_switch keeps each context's floating-point control state
 * (MXCSR and x87 control word, FPCR): the context resumed gets its own
 * back. aioc__coro_switch_inherit hands the current state over instead,
 * and the context left takes over the current state when it is resumed:
 * for contexts that are one logical thread (a generator body and its
 * consumer). A fresh context takes over the state of whoever first
 * resumes it. With swapcontext() both keep each context's own. */
#if !AIOC_ASAN && !AIOC_TSAN && !defined(AIOC_UCONTEXT) &&                     \
    (defined(__x86_64__) || defined(__aarch64__))
#define AIOC_CORO_INLINE_SWITCH 1
AIOC_HIDDEN void aioc__ctx_switch(void **save_sp, void *to_sp);
AIOC_HIDDEN void aioc__ctx_switch_inherit(void **save_sp, void *to_sp);
static inline void aioc__coro_switch(aioc__coro *from, aioc__coro *to) {
  aioc__ctx_switch(&from->sp, to->sp);
}
static inline void aioc__coro_switch_inherit(aioc__coro *from,
                                             aioc__coro *to) {
  aioc__ctx_switch_inherit(&from->sp, to->sp);
}
#else
AIOC_HIDDEN void aioc__coro_switch(aioc__coro *from, aioc__coro *to);
#if AIOC_USE_UCONTEXT
/* swapcontext() always restores the context's own floating-point state. */
#define aioc__coro_switch_inherit aioc__coro_switch
#else
AIOC_HIDDEN void aioc__coro_switch_inherit(aioc__coro *from, aioc__coro *to);
#endif
#endif

/* For a function that switches stacks and then returns to its caller: its
 * ret would be predicted from the return-stack buffer, which after the
 * switch holds the other stack's return addresses, and be mispredicted on
 * every hand-off where the two sides run different code (a generator and
 * its consumer). Such functions return through __x86_return_thunk
 * (switch_x86_64.S), an indirect jump predicted from its own history. B7
 * measured 28 -> 18 ns an item. Elsewhere it is nothing. */
#if defined(AIOC_CORO_INLINE_SWITCH) && defined(__x86_64__) &&                 \
    defined(__has_attribute)
#if __has_attribute(function_return)
#define AIOC__HANDOFF __attribute__((function_return("thunk-extern")))
#endif
#endif
#ifndef AIOC__HANDOFF
#define AIOC__HANDOFF
#endif

/* dst is suspended; if it was left by aioc__coro_switch_inherit (so that it
 * would take over whatever state is current when resumed), it gets src's
 * saved floating-point control state instead (src suspended too), or the
 * current one if src is NULL. For a generator's consumer resumed by the
 * loop rather than by its body. No-op with swapcontext(). */
AIOC_HIDDEN void aioc__coro_fpenv_adopt(aioc__coro *dst, const aioc__coro *src);

/* Leaves a finished coroutine for good: from is never resumed, so its stack
 * can go back to the pool once to runs. Does not return. */
AIOC_HIDDEN void aioc__coro_exit(aioc__coro *from, aioc__coro *to)
    __attribute__((noreturn));

/* First call on a fresh coroutine's stack (sanitizer bookkeeping). */
AIOC_HIDDEN void aioc__coro_started(aioc__coro *self);

/* ---- stacks ---- */

/* Stack geometry and policy for the whole process. */
typedef enum { AIOC_GUARD_MADVISE, AIOC_GUARD_MPROTECT, AIOC_GUARD_NONE }
    aioc__guard_mode;

/* Rounds a requested size to the stride actually used (a power of two in
 * [16 KiB, 64 MiB]); 0 means the default. */
AIOC_HIDDEN size_t aioc__stack_stride(size_t size);

/* Takes a stack of the given stride from the pool (carving new slots as
 * needed). Returns 0, or AIOC_ESTACK with a message on stderr the first
 * time (address space exhausted, map count budget reached). */
AIOC_HIDDEN int aioc__stack_get(size_t stride, aioc__stack **out);

/* Returns a stack to the pool. Its pages stay mapped (hot reuse) unless
 * the pool is above its watermark. */
AIOC_HIDDEN void aioc__stack_put(aioc__stack *st);

/* Usable range [lo, hi) of a stack. */
AIOC_HIDDEN char *aioc__stack_lo(const aioc__stack *st);
AIOC_HIDDEN char *aioc__stack_hi(const aioc__stack *st);

#if AIOC_TSAN
/* The TSan fiber cached with a pooled stack (created on first use). */
AIOC_HIDDEN void *aioc__stack_tsan_fiber(aioc__stack *st);
#endif

/* Records who runs on st, for the overflow report: a name (which must
 * outlive the use of the stack; NULL: "Task-<id>") and an id. */
AIOC_HIDDEN void aioc__stack_set_owner(aioc__stack *st, const char *name,
                                       uint64_t id);

/* Returns the pages of this thread's cached stacks to the kernel, keeping
 * at most keep stacks hot. */
AIOC_HIDDEN void aioc__stack_trim(size_t keep);

/* The scavenger: a loop returns the pages of the free stacks its thread
 * did not need lately (docs/stacks.md, "Pooling").
 *
 * Free stacks each size keeps hot whatever happens, and what one pass
 * releases at most (the next pass then comes sooner). */
#define AIOC__STACK_KEEP 64
#define AIOC__SCAVENGE_MAX 8192
/* Does a free list hold more than AIOC__STACK_KEEP stacks? */
AIOC_HIDDEN bool aioc__stack_scavenge_wanted(void);
/* Starts watching how deep the thread digs into its free lists (the
 * low-water mark of each), unless it already does. */
AIOC_HIDDEN void aioc__stack_scavenge_watch(void);
/* One pass: for each size, the free stacks that stayed below the
 * low-water mark since the last pass (the cold end of the LIFO list) have
 * their pages returned, keeping max(stacks drawn meanwhile,
 * AIOC__STACK_KEEP) hot, at most AIOC__SCAVENGE_MAX in all. Returns 0 when
 * no list holds more than AIOC__STACK_KEEP any more (watching stops), 1
 * when another pass is due after a period, 2 when this one hit its limit
 * (the next is due sooner). */
AIOC_HIDDEN int aioc__stack_scavenge(void);
/* For tests: resident pages of the stack mappings of this stride. */
AIOC_HIDDEN size_t aioc__stack_resident_pages(size_t stride);

/* The guard mode in force (probed once). */
AIOC_HIDDEN aioc__guard_mode aioc__stack_guard_mode(void);

/* Installs the overflow reporter for this thread (sigaltstack + SIGSEGV
 * handler, chaining to any previous handler). Idempotent. */
AIOC_HIDDEN void aioc__overflow_install(void);

/* If addr lies in the guard of a coroutine stack: that stack's owner (name
 * or id) and usable size. Async-signal-safe. */
AIOC_HIDDEN bool aioc__stack_guard_hit(const void *addr, const char **owner,
                                       uint64_t *owner_id, size_t *usable);

#endif
