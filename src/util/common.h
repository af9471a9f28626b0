/* Internal helpers shared by every layer: allocation, branch hints,
 * sanitizer detection. Not part of the public API. */
#ifndef AIOC_UTIL_COMMON_H
#define AIOC_UTIL_COMMON_H

#include "aioc.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "list.h"

#define AIOC_HIDDEN __attribute__((visibility("hidden")))

#include "ring.h"

/* A code dropped on purpose (GCC's warn_unused_result ignores (void)). */
#define AIOC__IGNORE(x)                                                        \
  do {                                                                         \
    if (x) {                                                                   \
    }                                                                          \
  } while (0)

/* Thread-local state read on every switch, spawn and wait. In the static
 * library, initial-exec makes each access one instruction instead of a
 * __tls_get_addr call (position-independent code defaults to the
 * general-dynamic model). The shared library keeps the default: with
 * initial-exec, dlopen() of it fails when the static TLS block is full. */
#if defined(AIOC_TLS_IE)
#define AIOC_TLS __thread __attribute__((tls_model("initial-exec")))
#else
#define AIOC_TLS __thread
#endif
#define aioc__likely(x) __builtin_expect(!!(x), 1)
#define aioc__unlikely(x) __builtin_expect(!!(x), 0)
#define aioc__container_of(p, type, member)                                    \
  ((type *)((char *)(p) - offsetof(type, member)))

/* One step of a spin-wait: tells the CPU (and a hypervisor) we wait. */
static inline void aioc__cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ volatile("yield");
#endif
}

/* The monotonic clock in nanoseconds. */
static inline int64_t aioc__clock_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* Polls done(arg) until it returns true (then true), or for limit_ns of
 * the monotonic clock (then false). After the first microseconds it
 * yields the CPU between looks (see spin.c). */
AIOC_HIDDEN bool aioc__spin_wait(bool (*done)(void *arg), void *arg,
                                 int64_t limit_ns);

#if defined(__SANITIZE_ADDRESS__)
#define AIOC_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define AIOC_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define AIOC_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define AIOC_TSAN 1
#endif
#endif

/* ---- Debug armor (CMake option AIOC_DEBUG_ARMOR, on in Debug builds) ----
 *
 * Public objects carry a stamp: their kind's magic number from creation
 * until they are freed, AIOC__MAGIC_DEAD from then on (written just
 * before the memory goes back). Public calls check it, so that a double
 * free or a use after free is reported on stderr with the call's name
 * ("aioc_task_unref: not a live task (freed or corrupt)") and refused
 * (-EINVAL, or nothing done) instead of corrupting memory, as SQLite's API
 * armor and curl's magic numbers do. Best effort: freed memory that was
 * reused for an object of the same kind passes the check.
 *
 * How a layer uses it:
 *   struct aioc_thing { ...; AIOC__ARMOR_FIELD };   (last member)
 *   at creation:  AIOC__ARMOR_SET(x, AIOC__MAGIC_THING);
 *   at the free:  AIOC__ARMOR_SET(x, AIOC__MAGIC_DEAD); then free it;
 *   in each public call, after its NULL check:
 *     if (!AIOC__ARMOR_OK(x, AIOC__MAGIC_THING, "aioc_thing_put", "thing"))
 *       return -EINVAL;   (or return; for a void call)
 * With the option off the field does not exist, AIOC__ARMOR_SET is
 * nothing and AIOC__ARMOR_OK is the constant true: the cost is zero. */
#define AIOC__MAGIC_DEAD 0xdeadf4eeu
#define AIOC__MAGIC_LOOP 0xa10c1001u
#define AIOC__MAGIC_HANDLE 0xa10c1002u
#define AIOC__MAGIC_FUTURE 0xa10c1003u
#define AIOC__MAGIC_TASK 0xa10c1004u
#define AIOC__MAGIC_SCOPE 0xa10c1005u
#define AIOC__MAGIC_TASKGROUP 0xa10c1006u
#define AIOC__MAGIC_AS_COMPLETED 0xa10c1007u
#define AIOC__MAGIC_GEN 0xa10c1008u
#define AIOC__MAGIC_ITER 0xa10c1009u
#define AIOC__MAGIC_EXIT_STACK 0xa10c100au
#define AIOC__MAGIC_GROUP 0xa10c100bu
#define AIOC__MAGIC_YIELDER 0xa10c100cu
#define AIOC__MAGIC_LOCK 0xa10c100du
#define AIOC__MAGIC_EVENT 0xa10c100eu
#define AIOC__MAGIC_CONDITION 0xa10c100fu
#define AIOC__MAGIC_SEMAPHORE 0xa10c1010u
#define AIOC__MAGIC_BARRIER 0xa10c1011u
#define AIOC__MAGIC_QUEUE 0xa10c1012u
#define AIOC__MAGIC_TSQUEUE 0xa10c1013u
#define AIOC__MAGIC_EXECUTOR 0xa10c1014u
#define AIOC__MAGIC_TSFUTURE 0xa10c1015u
#define AIOC__MAGIC_SIGNAL 0xa10c1030u
#define AIOC__MAGIC_STREAM 0xa10c1020u
#define AIOC__MAGIC_SERVER 0xa10c1021u
#define AIOC__MAGIC_UDP 0xa10c1022u
#if defined(AIOC_DEBUG_ARMOR) && AIOC_DEBUG_ARMOR
#define AIOC__ARMOR 1
#define AIOC__ARMOR_FIELD uint32_t armor;
#define AIOC__ARMOR_SET(obj, magic) ((obj)->armor = (uint32_t)(magic))
/* Reports "fn: not a live kind (freed or corrupt)"; returns false. */
AIOC_HIDDEN bool aioc__armor_fail(const char *fn, const char *kind);
/* True when cond holds; otherwise reports and is false. */
#define AIOC__ARMOR_CHECK(cond, fn, kind)                                      \
  (aioc__likely(cond) || aioc__armor_fail((fn), (kind)))
#define AIOC__ARMOR_OK(obj, magic, fn, kind)                                   \
  AIOC__ARMOR_CHECK((obj)->armor == (uint32_t)(magic), fn, kind)
#else
#define AIOC__ARMOR 0
#define AIOC__ARMOR_FIELD
#define AIOC__ARMOR_SET(obj, magic) ((void)0)
#define AIOC__ARMOR_CHECK(cond, fn, kind) true
#define AIOC__ARMOR_OK(obj, magic, fn, kind) true
#endif

/* All heap memory goes through the hook set by aioc_set_allocator(). */
AIOC_HIDDEN void *aioc__alloc(size_t size);
AIOC_HIDDEN void *aioc__calloc(size_t n, size_t size);
AIOC_HIDDEN void *aioc__realloc(void *p, size_t size);
AIOC_HIDDEN void aioc__free(void *p);
/* Is the allocator the default one (no aioc_set_allocator() hook)? */
AIOC_HIDDEN bool aioc__alloc_is_default(void);
AIOC_HIDDEN char *aioc__strdup(const char *s);
AIOC_HIDDEN char *aioc__vformat(const char *fmt, va_list ap);

/* The message of the last failure of a task or generator body that plain
 * code of this thread received from the library (Group join, Yielder
 * next, generator requests, aioc_block_on, aioc_run): what
 * aioc_error_message() returns outside a task. A copy in a thread-local
 * buffer (truncated to AIOC__PLAIN_MSG_MAX - 1 bytes), so it allocates
 * nothing and needs no freeing. NULL clears it. */
#define AIOC__PLAIN_MSG_MAX 512
AIOC_HIDDEN void aioc__plain_error_set(const char *msg);
AIOC_HIDDEN const char *aioc__plain_error_get(void);

/* Fixed-size objects from a per-thread slab (see slab.c); cls names the
 * object kind. The common cases are inline: pop the free list, or carve
 * from the current chunk. */
enum {
  AIOC__SLAB_TASK = 0,
  AIOC__SLAB_JOB = 1,
  AIOC__SLAB_RPC_MSG = 2,
  AIOC__NSLAB = 4
};
typedef struct aioc__slab {
  void *free; /* free list, linked through each object's first word */
  char *carve, *end;
  size_t chunk;
} aioc__slab;
extern AIOC_TLS aioc__slab aioc__slabs[AIOC__NSLAB];
/* Objects come from the allocation hook instead (custom allocator, or
 * AddressSanitizer, which must see every object). */
extern bool aioc__slab_off;
AIOC_HIDDEN void *aioc__slab_alloc_slow(unsigned cls, size_t size);
AIOC_HIDDEN void aioc__slab_free_slow(unsigned cls, void *p);

static inline void *aioc__slab_alloc(unsigned cls, size_t size) {
  aioc__slab *s = &aioc__slabs[cls];
  size = (size + 15) & ~(size_t)15;
  if (aioc__likely(!aioc__slab_off)) {
    void **o = (void **)s->free;
    if (o) {
      s->free = *o;
      return o;
    }
    if ((size_t)(s->end - s->carve) >= size) {
      void *r = s->carve;
      s->carve += size;
      return r;
    }
  }
  return aioc__slab_alloc_slow(cls, size);
}

static inline void aioc__slab_free(unsigned cls, void *p) {
  if (aioc__likely(p && !aioc__slab_off)) {
    *(void **)p = aioc__slabs[cls].free;
    aioc__slabs[cls].free = p;
    return;
  }
  aioc__slab_free_slow(cls, p);
}

#endif
