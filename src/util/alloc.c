/* The allocation hook and small string helpers. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

static void *default_realloc(void *ud, void *p, size_t size) {
  (void)ud;
  if (size == 0) {
    free(p);
    return NULL;
  }
  return realloc(p, size);
}

static aioc_realloc_fn alloc_fn = default_realloc;
static void *alloc_ud;

void aioc_set_allocator(aioc_realloc_fn fn, void *ud) {
  alloc_fn = fn ? fn : default_realloc;
  alloc_ud = fn ? ud : NULL;
#if !AIOC_ASAN
  /* Every object then comes from the hook (fault injection, accounting). */
  aioc__slab_off = fn != NULL;
#endif
}

bool aioc__alloc_is_default(void) { return alloc_fn == default_realloc; }

/* Without a hook, malloc, calloc and free themselves: realloc(NULL, n)
 * costs more than malloc(n), and calloc skips the memset for memory fresh
 * from the kernel. */
void *aioc__alloc(size_t size) {
  if (aioc__likely(alloc_fn == default_realloc))
    return malloc(size ? size : 1);
  return alloc_fn(alloc_ud, NULL, size ? size : 1);
}

void *aioc__calloc(size_t n, size_t size) {
  if (size && n > SIZE_MAX / size) return NULL;
  size_t total = n * size;
  if (aioc__likely(alloc_fn == default_realloc))
    return calloc(total ? total : 1, 1);
  void *p = alloc_fn(alloc_ud, NULL, total ? total : 1);
  if (p) memset(p, 0, total ? total : 1);
  return p;
}

void *aioc__realloc(void *p, size_t size) {
  return alloc_fn(alloc_ud, p, size ? size : 1);
}

void aioc__free(void *p) {
  if (aioc__likely(alloc_fn == default_realloc)) free(p);
  else if (p) alloc_fn(alloc_ud, p, 0);
}

char *aioc__strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = aioc__alloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

char *aioc__vformat(const char *fmt, va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (n < 0) return NULL;
  char *s = aioc__alloc((size_t)n + 1);
  if (s) vsnprintf(s, (size_t)n + 1, fmt, ap);
  return s;
}

void aioc_mem_free(void *p) {
  aioc__free(p);
}

#if AIOC__ARMOR
bool aioc__armor_fail(const char *fn, const char *kind) {
  fprintf(stderr, "%s: not a live %s (freed or corrupt)\n", fn, kind);
  return false;
}
#endif
