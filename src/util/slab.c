/* A per-thread slab for the library's hottest fixed-size objects (tasks).
 *
 * A million tasks alive at once would otherwise cost a million malloc
 * calls. The slab carves objects from large mappings and recycles them
 * through a per-thread LIFO free list; its memory is kept for reuse, never
 * returned to the system. The mappings are not advised for transparent
 * huge pages: with the kernel's usual "defrag=madvise" a huge-page fault
 * may compact memory first, and spawning a million tasks measured either
 * 88 or 750 ns a task depending on fragmentation, against a steady 210 ns
 * with small pages (the first touch of fresh memory dominates either way).
 *
 * With a custom allocator (aioc_set_allocator, e.g. fault injection) or
 * under AddressSanitizer (which must see every object), objects come from
 * the allocation hook instead. */
#include <sys/mman.h>

#include "common.h"

typedef struct freeobj {
  struct freeobj *next;
} freeobj;

typedef struct slab {
  freeobj *free;
  char *carve, *end;
  size_t chunk;
} slab;

#define NSLAB 4
static AIOC_TLS slab slabs[NSLAB];

AIOC_HIDDEN bool aioc__alloc_is_default(void);

static bool use_slab(void) {
#if AIOC_ASAN
  return false;
#else
  return aioc__alloc_is_default();
#endif
}

void *aioc__slab_alloc(unsigned cls, size_t size) {
  if (!use_slab()) return aioc__alloc(size);
  slab *s = &slabs[cls];
  freeobj *o = s->free;
  if (aioc__likely(o != NULL)) {
    s->free = o->next;
    return o;
  }
  size = (size + 15) & ~(size_t)15;
  if ((size_t)(s->end - s->carve) < size) {
    size_t chunk = s->chunk ? s->chunk * 2 : (size_t)2 << 20;
    if (chunk > ((size_t)64 << 20)) chunk = (size_t)64 << 20;
    char *p = mmap(NULL, chunk, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    s->carve = p;
    s->end = p + chunk;
    s->chunk = chunk;
  }
  void *r = s->carve;
  s->carve += size;
  return r;
}

void aioc__slab_free(unsigned cls, void *p) {
  if (!p) return;
  if (!use_slab()) {
    aioc__free(p);
    return;
  }
  freeobj *o = p;
  o->next = slabs[cls].free;
  slabs[cls].free = o;
}
