/* aioc/base.h: version, error codes, allocation hook, value helpers.
 *
 * Part of the public API; include <aioc.h> rather than this file. */
#ifndef AIOC_BASE_H
#define AIOC_BASE_H

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(AIOC_BUILDING) && defined(__GNUC__)
#define AIOC_API __attribute__((visibility("default")))
#else
#define AIOC_API
#endif

/* Marks a call whose returned code must be looked at: dropping it is a
 * compiler warning. (With GCC a (void) cast does not silence it; test the
 * code instead.) */
#if defined(__GNUC__)
#define AIOC_NODISCARD __attribute__((warn_unused_result))
#else
#define AIOC_NODISCARD
#endif

#if defined(__GNUC__)
#define AIOC_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define AIOC_PRINTF(f, a)
#endif

#define AIOC_VERSION_MAJOR 0
#define AIOC_VERSION_MINOR 2
#define AIOC_VERSION_PATCH 0
#define AIOC_VERSION_HEX                                                       \
  ((AIOC_VERSION_MAJOR << 16) | (AIOC_VERSION_MINOR << 8) | AIOC_VERSION_PATCH)

/* Returns the version of the library the program runs with, as
 * AIOC_VERSION_HEX encodes it. */
AIOC_API unsigned aioc_version(void);

/* Returns the same version as a string such as "0.1.0". */
AIOC_API const char *aioc_version_string(void);

/* ---- Errors ----------------------------------------------------------
 *
 * Every call that can fail returns an int: 0 (or a documented non-negative
 * value) on success, a negative code on failure. Codes are negative errno
 * values (-ETIMEDOUT, -ECANCELED, -ENOMEM, -EINVAL, ...) or one of the
 * library's own codes below, which lie outside the errno range. */
#define AIOC_ERRNO_MAP(X)                                                      \
  X(ENOTASK, -4001, "called outside a task")                                   \
  X(ECLOSED, -4002, "event loop is closed")                                    \
  X(ESTATE, -4003, "object is in the wrong state for this call")               \
  X(ERUNNING, -4004, "event loop is already running")                          \
  X(ENOLOOP, -4005, "no event loop for this thread")                           \
  X(ESTACK, -4006, "cannot allocate a coroutine stack")                        \
  X(EBROKEN, -4008, "barrier is broken")                                       \
  X(EFULL, -4009, "queue is full")                                             \
  X(EEMPTY, -4010, "queue is empty")                                           \
  X(EGENEXIT, -4011, "generator is being closed")                              \
  X(EGENYIELD, -4012, "generator yielded while being closed")                  \
  X(EINCOMPLETE, -4013, "peer closed before the data was complete")            \
  X(ENONAME, -4014, "name does not resolve")                                   \
  X(EDNS, -4015, "name server failed")                                        \
  X(ETLS, -4016, "TLS failed (certificate, handshake or protocol)")

enum {
#define AIOC__ERRENUM(name, val, msg) AIOC_##name = (val),
  AIOC_ERRNO_MAP(AIOC__ERRENUM)
#undef AIOC__ERRENUM
};

/* The two positive codes. Neither is an error (errors are negative), and
 * aioc_strerror() and aioc_err_name() name both.
 *
 * AIOC_EXHAUSTED: the outcome of a next() that has nothing more to give
 * (an iterator, a generator, a Yielder, as_completed).
 *
 * AIOC_NORESULT: what a task function returns when it produced no result.
 * Every positive return of a task function means this, wherever the task
 * runs: the task succeeds with no result (awaiting it returns 0 with a
 * NULL result, aioc_run() returns 0), and a Yielder yields nothing for it
 * (as aioutils' Yielder skips a coroutine that returns None). A result
 * of NULL or 0 returned with 0 is a result like any other. */
#define AIOC_EXHAUSTED 1
#define AIOC_NORESULT 2

/* Returns a static, human-readable description of an error code (negative
 * errno or AIOC_E*). Never returns NULL; unknown codes get a generic text. */
AIOC_API const char *aioc_strerror(int code);

/* Returns the symbolic name of an error code ("ETIMEDOUT", "AIOC_ECLOSED"),
 * or "UNKNOWN" for codes the library does not know. */
AIOC_API const char *aioc_err_name(int code);

/* ---- Allocation ------------------------------------------------------
 *
 * Every allocation the library makes goes through one function with
 * realloc's contract: realloc(ptr, size) with size 0 meaning free — except
 * memory mapped directly: coroutine stacks, the per-thread signal stack,
 * and task records, which come from a per-thread slab while the default
 * allocator is in use (a custom allocator receives them too). */
typedef void *(*aioc_realloc_fn)(void *ud, void *ptr, size_t size);

/* Replaces the allocator. Call it before any other aioc call; fn NULL
 * restores the default (libc realloc/free). Not thread-safe with other
 * aioc calls. */
AIOC_API void aioc_set_allocator(aioc_realloc_fn fn, void *ud);

/* Frees memory the library allocated and handed to the caller (the array
 * of aioc_iter_collect()), through the allocator in use. NULL is
 * harmless. */
AIOC_API void aioc_mem_free(void *p);

/* ---- Values ----------------------------------------------------------
 *
 * Results travel as void *. These helpers carry an integer in a pointer. */
#define AIOC_INT(i) ((void *)(intptr_t)(i))
#define AIOC_TO_INT(p) ((intptr_t)(p))

/* Destructor for a value (a result nobody took, an error payload). */
typedef void (*aioc_free_fn)(void *value);

/* A timeout that never expires. Negative or NaN timeouts are rejected with
 * -EINVAL everywhere; pass AIOC_FOREVER to wait without a limit. */
#define AIOC_FOREVER (HUGE_VAL)

#ifdef __cplusplus
}
#endif
#endif /* AIOC_BASE_H */
