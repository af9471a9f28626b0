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

AIOC_TLS aioc__slab aioc__slabs[AIOC__NSLAB];
#if AIOC_ASAN
bool aioc__slab_off = true;
#else
bool aioc__slab_off = false;
#endif

void *aioc__slab_alloc_slow(unsigned cls, size_t size) {
  if (aioc__slab_off) return aioc__alloc(size);
  aioc__slab *s = &aioc__slabs[cls];
  size_t chunk = s->chunk ? s->chunk * 2 : (size_t)2 << 20;
  if (chunk > ((size_t)64 << 20)) chunk = (size_t)64 << 20;
  char *p = mmap(NULL, chunk, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return NULL;
  /* The rest of the old chunk (less than one object) is left unused. */
  s->carve = p + size;
  s->end = p + chunk;
  s->chunk = chunk;
  return p;
}

void aioc__slab_free_slow(unsigned cls, void *p) {
  (void)cls;
  aioc__free(p);
}
