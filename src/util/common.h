/* Internal helpers shared by every layer: allocation, branch hints,
 * sanitizer detection. Not part of the public API. */
#ifndef AIOC_UTIL_COMMON_H
#define AIOC_UTIL_COMMON_H

#include "aioc.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AIOC_HIDDEN __attribute__((visibility("hidden")))

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

/* All heap memory goes through the hook set by aioc_set_allocator(). */
AIOC_HIDDEN void *aioc__alloc(size_t size);
AIOC_HIDDEN void *aioc__calloc(size_t n, size_t size);
AIOC_HIDDEN void *aioc__realloc(void *p, size_t size);
AIOC_HIDDEN void aioc__free(void *p);
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
enum { AIOC__SLAB_TASK = 0, AIOC__NSLAB = 4 };
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
