/* Coroutine stacks: fixed-stride slots carved from large mappings.
 *
 * One mapping (a "chunk") holds many slots and costs one VMA, so a million
 * stacks stay far below vm.max_map_count. Each slot is
 *
 *   [guard | usable stack ........ | header]
 *   low                              high
 *
 * The guard is installed with MADV_GUARD_INSTALL (Linux >= 6.13: no VMA
 * split), else with mprotect within a map-count budget. The header (free
 * list link, owner name, tool ids) sits at the top of the slot, in the page
 * the coroutine touches first anyway. Free slots are kept on a per-thread
 * LIFO list so the most recently used (hot) stack is reused first. */

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "coro.h"

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define AIOC_HAVE_VALGRIND 1
#endif
#endif
#if AIOC_ASAN
#include <sanitizer/asan_interface.h>
#endif
#if AIOC_TSAN
#include <sanitizer/tsan_interface.h>
#endif

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

#define MIN_SHIFT 14 /* 16 KiB */
#define MAX_SHIFT 26 /* 64 MiB */
#define NCLASS (MAX_SHIFT - MIN_SHIFT + 1)
#define DEFAULT_STRIDE ((size_t)128 << 10)
#define HEADER_SIZE 64
#define BATCH 32     /* stacks moved between the global and thread lists */
#define MAX_CARVE 256 /* new slots prepared with one pair of syscalls */
#define MAX_REGIONS 8192

struct aioc__stack {
  aioc__stack *next;
  char *lo;          /* lowest usable byte, just above the guard */
  const char *owner; /* name of the task running on it */
  uint64_t owner_id;
  unsigned cls;
  unsigned vg_id;
  void *tsan_fiber;
};

typedef struct region {
  char *base;
  size_t size;
  size_t stride;
  size_t guard; /* 0: slots of this region are unguarded */
} region;

/* Append-only table read by the SIGSEGV handler without locks. */
static region regions[MAX_REGIONS];
static atomic_size_t nregions;

/* A free slot whose pages went back to the kernel: its header is gone
 * too, so it is remembered here and rebuilt when the slot is reused. */
typedef struct cold_slot {
  char *slot;
  size_t guard;
} cold_slot;

typedef struct klass {
  cold_slot *cold; /* global: trimmed slots (from any thread) */
  size_t ncold, capcold;
  char *carve, *carve_end; /* unused part of the newest chunk */
  size_t carve_guard;
  size_t chunk_slots; /* slots in the next chunk (grows) */
  size_t carve_n;     /* slots per carve (grows with demand) */
} klass;

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static klass classes[NCLASS];

typedef struct tcache {
  aioc__stack *head[NCLASS];
  size_t count[NCLASS];
  /* The scavenger's view: the lowest count since its last look. The
   * stacks below it, at the cold end of the list, were not needed. */
  size_t low[NCLASS];
  bool watching; /* low[] is being kept (a scavenger is armed) */
} tcache;
static AIOC_TLS tcache cache;
static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

static pthread_once_t probe_once = PTHREAD_ONCE_INIT;
static aioc__guard_mode guard_mode;
static size_t guard_size = 8192;
static long map_budget;         /* mprotect guards left (-1: unlimited) */
static int allow_unguarded;     /* past the budget: run without guards */
static size_t page_size = 4096;
static size_t default_stride = DEFAULT_STRIDE;

static size_t pow2_shift(size_t size) {
  size_t shift = MIN_SHIFT;
  while (shift < MAX_SHIFT && ((size_t)1 << shift) < size) shift++;
  return shift;
}

static long count_maps(void) {
  FILE *f = fopen("/proc/self/maps", "r");
  if (!f) return 0;
  long n = 0;
  int c;
  while ((c = fgetc(f)) != EOF)
    if (c == '\n') n++;
  fclose(f);
  return n;
}

static long read_long_file(const char *path, long dflt) {
  FILE *f = fopen(path, "r");
  long v = dflt;
  if (f) {
    if (fscanf(f, "%ld", &v) != 1) v = dflt;
    fclose(f);
  }
  return v;
}

/* Decides the guard mechanism once per process. AIOC_STACK_GUARD forces
 * one (madvise, mprotect, none); AIOC_STACK_UNGUARDED=1 allows running
 * unguarded past the mprotect budget; AIOC_STACK_MAP_BUDGET overrides the
 * number of mprotect guards allowed. */
static void probe(void) {
  long ps = sysconf(_SC_PAGESIZE);
  if (ps > 0) page_size = (size_t)ps;
  if (guard_size < page_size) guard_size = page_size;
  const char *env = getenv("AIOC_STACK_SIZE");
  if (env && *env) {
    size_t v = (size_t)strtoull(env, NULL, 0);
    if (v) default_stride = (size_t)1 << pow2_shift(v);
  }
  const char *force = getenv("AIOC_STACK_GUARD");
  env = getenv("AIOC_STACK_UNGUARDED");
  allow_unguarded = env && *env == '1';
  if (force && strcmp(force, "none") == 0) {
    guard_mode = AIOC_GUARD_NONE;
    return;
  }
  if (!force || strcmp(force, "madvise") == 0) {
    /* Probe on a scratch mapping. */
    char *p = mmap(NULL, 2 * page_size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p != MAP_FAILED) {
      int rc = madvise(p, page_size, MADV_GUARD_INSTALL);
      munmap(p, 2 * page_size);
      if (rc == 0) {
        guard_mode = AIOC_GUARD_MADVISE;
        return;
      }
    }
  }
  guard_mode = AIOC_GUARD_MPROTECT;
  /* Each mprotect'ed guard splits a VMA in two: keep a reserve for the
   * rest of the process. */
  long max = read_long_file("/proc/sys/vm/max_map_count", 65530);
  map_budget = (max - count_maps() - 1024) / 2;
  if (map_budget < 0) map_budget = 0;
  env = getenv("AIOC_STACK_MAP_BUDGET");
  if (env && *env) map_budget = strtol(env, NULL, 0);
}

aioc__guard_mode aioc__stack_guard_mode(void) {
  pthread_once(&probe_once, probe);
  return guard_mode;
}

size_t aioc__stack_stride(size_t size) {
  pthread_once(&probe_once, probe);
  if (size == 0) return default_stride;
  return (size_t)1 << pow2_shift(size);
}

char *aioc__stack_lo(const aioc__stack *st) { return st->lo; }
char *aioc__stack_hi(const aioc__stack *st) { return (char *)st; }

void aioc__stack_set_owner(aioc__stack *st, const char *name, uint64_t id) {
  st->owner = name;
  st->owner_id = id;
}

#if AIOC_TSAN
void *aioc__stack_tsan_fiber(aioc__stack *st) {
  if (!st->tsan_fiber) st->tsan_fiber = __tsan_create_fiber(0);
  return st->tsan_fiber;
}
#endif

static void cache_flush(void *unused);

static void make_key(void) { pthread_key_create(&cache_key, cache_flush); }

/* Maps a new chunk for class k; called with pool_lock held. */
static int grow(klass *k, size_t stride) {
  size_t slots = k->chunk_slots ? k->chunk_slots : 64;
  size_t size = slots * stride;
  char *base = mmap(NULL, size, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED) return AIOC_ESTACK;
  /* A huge page would make every idle stack cost 2 MiB. */
  madvise(base, size, MADV_NOHUGEPAGE);
  size_t idx = atomic_load(&nregions);
  if (idx >= MAX_REGIONS) {
    munmap(base, size);
    return AIOC_ESTACK;
  }
  regions[idx] = (region){base, size, stride, 0};
  k->carve = base;
  k->carve_end = base + size;
  if (k->chunk_slots < 8192) k->chunk_slots = slots * 2;
  atomic_store(&nregions, idx + 1);
  return 0;
}

static bool budget_warned;

/* Installs the guard of one slot; returns the guard size actually used
 * (0 when running unguarded) or a negative code. */
static long install_guard(char *slot) {
  switch (guard_mode) {
  case AIOC_GUARD_MADVISE:
    if (madvise(slot, guard_size, MADV_GUARD_INSTALL) == 0)
      return (long)guard_size;
    return AIOC_ESTACK;
  case AIOC_GUARD_MPROTECT:
    if (map_budget > 0 && mprotect(slot, guard_size, PROT_NONE) == 0) {
      map_budget--;
      return (long)guard_size;
    }
    if (allow_unguarded) return 0;
    if (!budget_warned) {
      budget_warned = true;
      fprintf(stderr,
              "aioc: no coroutine stack with a guard page can be made: this "
              "kernel lacks MADV_GUARD_INSTALL (Linux >= 6.13) and the "
              "vm.max_map_count budget is spent; raise vm.max_map_count "
              "or set AIOC_STACK_UNGUARDED=1\n");
    }
    return AIOC_ESTACK;
  case AIOC_GUARD_NONE:
  default:
    return 0;
  }
}

/* process_madvise() on our own pid applies one advice to many ranges in
 * one system call (Linux >= 6.13 accepts every advice for the calling
 * process). A pidfd is per process: reopened after fork. */
static int self_pidfd = -1;
static pid_t self_pid;
static bool batch_broken;

static bool advise_batch(struct iovec *iov, size_t n, int advice) {
#if defined(SYS_process_madvise) && defined(SYS_pidfd_open)
  if (batch_broken || n == 0) return false;
  pid_t pid = getpid();
  if (self_pidfd < 0 || self_pid != pid) {
    if (self_pidfd >= 0) close(self_pidfd);
    self_pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    self_pid = pid;
    if (self_pidfd < 0) {
      batch_broken = true;
      return false;
    }
  }
  size_t total = 0;
  for (size_t i = 0; i < n; i++) total += iov[i].iov_len;
  long r = syscall(SYS_process_madvise, self_pidfd, iov, n, advice, 0);
  if (r == (long)total) return true;
  if (r < 0 && (errno == EINVAL || errno == ENOSYS || errno == EPERM))
    batch_broken = true;
  return false;
#else
  (void)iov;
  (void)n;
  (void)advice;
  return false;
#endif
}

static __thread struct iovec carve_iov[MAX_CARVE];

static void init_header(aioc__stack *st, char *lo, unsigned c) {
  st->lo = lo;
  st->owner = NULL;
  st->owner_id = 0;
  st->cls = c;
  st->tsan_fiber = NULL;
#if AIOC_HAVE_VALGRIND
  st->vg_id = VALGRIND_STACK_REGISTER(st->lo, (char *)st - 1);
#else
  st->vg_id = 0;
#endif
}

/* Prepares new slots into the thread cache: guards, then the top page of
 * each slot made resident in one batch (the header lives there and the
 * coroutine's first frames touch it at once), which costs far less than
 * one page fault per stack. pool_lock held. */
static int carve(unsigned c, size_t stride) {
  klass *k = &classes[c];
  if (k->carve == k->carve_end) {
    int rc = grow(k, stride);
    if (rc < 0) return rc;
  }
  /* Few slots at first (a program with one hot stack needs one), more as
   * demand keeps coming. */
  size_t want = k->carve_n ? k->carve_n : 4;
  k->carve_n = want * 2 > MAX_CARVE ? MAX_CARVE : want * 2;
  size_t avail = (size_t)(k->carve_end - k->carve) / stride;
  size_t n = want < avail ? want : avail;
  char *first = k->carve;
  size_t idx = atomic_load(&nregions) - 1;
  size_t g = 0;
  bool batched = false;
  if (guard_mode == AIOC_GUARD_MADVISE) {
    for (size_t i = 0; i < n; i++)
      carve_iov[i] = (struct iovec){first + i * stride, guard_size};
    batched = advise_batch(carve_iov, n, MADV_GUARD_INSTALL);
    if (batched) g = guard_size;
  }
  /* One guard at a time: the slots of one carve share one guard size (an
   * mprotect budget running out midway ends the carve there). */
  for (size_t i = 0; !batched && i < n; i++) {
    long r = install_guard(first + i * stride);
    if (r < 0 || (i > 0 && (size_t)r != g)) {
      if (i == 0) return (int)r;
      n = i;
      break;
    }
    g = (size_t)r;
  }
  k->carve += n * stride;
  if (g > 0) regions[idx].guard = g;
  for (size_t i = 0; i < n; i++)
    carve_iov[i] = (struct iovec){first + (i + 1) * stride - page_size,
                                  page_size};
  advise_batch(carve_iov, n, MADV_POPULATE_WRITE);
  for (size_t i = n; i-- > 0;) {
    char *slot = first + i * stride;
    aioc__stack *st = (aioc__stack *)(slot + stride - HEADER_SIZE);
    init_header(st, slot + g, c);
    st->next = cache.head[c];
    cache.head[c] = st;
    cache.count[c]++;
  }
  return 0;
}

int aioc__stack_get(size_t stride, aioc__stack **out) {
  unsigned c = (unsigned)(pow2_shift(stride) - MIN_SHIFT);
  aioc__stack *st = cache.head[c];
  if (aioc__likely(st != NULL)) {
    cache.head[c] = st->next;
    size_t n = --cache.count[c];
    if (n < cache.low[c]) cache.low[c] = n; /* the recent peak's depth */
    *out = st;
    return 0;
  }
  pthread_once(&probe_once, probe);
  pthread_once(&cache_once, make_key);
  pthread_setspecific(cache_key, &cache);
  pthread_mutex_lock(&pool_lock);
  klass *k = &classes[c];
  int rc = 0;
  if (k->ncold) {
    /* Reuse trimmed slots: rebuild their headers (fresh zero pages). */
    size_t cstride = (size_t)1 << (c + MIN_SHIFT);
    for (int i = 0; i < BATCH && k->ncold; i++) {
      cold_slot cs = k->cold[--k->ncold];
      aioc__stack *s = (aioc__stack *)(cs.slot + cstride - HEADER_SIZE);
      init_header(s, cs.slot + cs.guard, c);
      s->next = cache.head[c];
      cache.head[c] = s;
      cache.count[c]++;
    }
  } else {
    rc = carve(c, (size_t)1 << (c + MIN_SHIFT));
  }
  pthread_mutex_unlock(&pool_lock);
  if (rc < 0) return rc;
  st = cache.head[c];
  cache.head[c] = st->next;
  cache.count[c]--;
  *out = st;
  return 0;
}

void aioc__stack_put(aioc__stack *st) {
#if AIOC_ASAN
  /* Frames that never returned leave poisoned redzones behind. */
  ASAN_UNPOISON_MEMORY_REGION(st->lo, (size_t)((char *)st - st->lo));
#endif
  st->owner = NULL;
  st->next = cache.head[st->cls];
  cache.head[st->cls] = st;
  cache.count[st->cls]++;
}

/* Releases the tool state of a free slot and describes it as cold; its
 * pages, header included, go back to the kernel with the next flush (the
 * guard survives MADV_DONTNEED). */
static cold_slot drop_pages(aioc__stack *st, struct iovec *iov) {
  size_t stride = (size_t)1 << (st->cls + MIN_SHIFT);
  char *slot = (char *)st + HEADER_SIZE - stride;
  cold_slot cs = {slot, (size_t)(st->lo - slot)};
#if AIOC_TSAN
  if (st->tsan_fiber) __tsan_destroy_fiber(st->tsan_fiber);
#endif
#if AIOC_HAVE_VALGRIND
  VALGRIND_STACK_DEREGISTER(st->vg_id);
#endif
  *iov = (struct iovec){slot + cs.guard, stride - cs.guard};
  return cs;
}

/* One system call for many slots where the kernel allows it. */
static void flush_drops(struct iovec *iov, size_t n) {
  if (n && !advise_batch(iov, n, MADV_DONTNEED))
    for (size_t i = 0; i < n; i++)
      madvise(iov[i].iov_base, iov[i].iov_len, MADV_DONTNEED);
}

/* Keeps the hottest `keep` free stacks of class c and returns the pages of
 * at most `max` of the next ones to the kernel (the rest of the list stays
 * as it is). Returns how many were dropped. */
static size_t trim_class(unsigned c, size_t keep, size_t max) {
  if (cache.count[c] <= keep || max == 0) return 0;
  aioc__stack **pp = &cache.head[c];
  for (size_t i = 0; i < keep && *pp; i++) pp = &(*pp)->next;
  aioc__stack *rest = *pp;
  klass *k = &classes[c];
  size_t ndrop = 0, dropped = 0;
  pthread_mutex_lock(&pool_lock);
  while (rest && dropped < max) {
    aioc__stack *next = rest->next;
    if (k->ncold == k->capcold) {
      size_t cap = k->capcold ? k->capcold * 2 : 256;
      cold_slot *v = aioc__realloc(k->cold, cap * sizeof *v);
      if (!v) break; /* keep the rest hot rather than lose them */
      k->cold = v;
      k->capcold = cap;
    }
    k->cold[k->ncold++] = drop_pages(rest, &carve_iov[ndrop++]);
    cache.count[c]--;
    dropped++;
    if (ndrop == MAX_CARVE) {
      flush_drops(carve_iov, ndrop);
      ndrop = 0;
    }
    rest = next;
  }
  *pp = rest;
  flush_drops(carve_iov, ndrop);
  pthread_mutex_unlock(&pool_lock);
  return dropped;
}

void aioc__stack_trim(size_t keep) {
  for (unsigned c = 0; c < NCLASS; c++) trim_class(c, keep, SIZE_MAX);
  cache.watching = false;
}

/* ---- the scavenger (see coro.h and docs/stacks.md) ---- */

bool aioc__stack_scavenge_wanted(void) {
  for (unsigned c = 0; c < NCLASS; c++)
    if (cache.count[c] > AIOC__STACK_KEEP) return true;
  return false;
}

void aioc__stack_scavenge_watch(void) {
  if (cache.watching) return;
  for (unsigned c = 0; c < NCLASS; c++) cache.low[c] = cache.count[c];
  cache.watching = true;
}

int aioc__stack_scavenge(void) {
  if (!cache.watching) {
    aioc__stack_scavenge_watch();
    return aioc__stack_scavenge_wanted() ? 1 : 0;
  }
  size_t budget = AIOC__SCAVENGE_MAX;
  bool capped = false, more = false;
  for (unsigned c = 0; c < NCLASS; c++) {
    size_t n = cache.count[c];
    /* The stacks above the low-water mark were drawn since the last look:
     * the recent peak's working set, kept with a floor of KEEP. */
    size_t low = cache.low[c] < n ? cache.low[c] : n;
    size_t keep = n - low > AIOC__STACK_KEEP ? n - low : AIOC__STACK_KEEP;
    if (n > keep) {
      size_t want = n - keep;
      size_t got = trim_class(c, keep, want < budget ? want : budget);
      budget -= got;
      if (got < want) capped = true;
    }
    cache.low[c] = cache.count[c];
    if (cache.count[c] > AIOC__STACK_KEEP) more = true;
  }
  if (!more) {
    cache.watching = false;
    return 0;
  }
  return capped ? 2 : 1;
}

size_t aioc__stack_resident_pages(size_t stride) {
  size_t total = 0, n = atomic_load(&nregions);
  for (size_t i = 0; i < n; i++) {
    region *r = &regions[i];
    if (r->stride != stride) continue;
    size_t pages = r->size / page_size;
    unsigned char *vec = malloc(pages);
    if (!vec) continue;
    if (mincore(r->base, r->size, vec) == 0)
      for (size_t p = 0; p < pages; p++) total += vec[p] & 1;
    free(vec);
  }
  return total;
}

static void cache_flush(void *unused) {
  (void)unused;
  aioc__stack_trim(0);
}

/* ---- guard lookup (for the overflow reporter) ---- */

/* Async-signal-safe: reads the append-only region table and the header
 * of the slot whose guard holds addr. */
bool aioc__stack_guard_hit(const void *addr, const char **owner,
                           uint64_t *owner_id, size_t *usable) {
  const char *a = addr;
  size_t n = atomic_load(&nregions);
  for (size_t i = 0; i < n; i++) {
    region *r = &regions[i];
    if (a < r->base || a >= r->base + r->size || r->guard == 0) continue;
    size_t slot = (size_t)(a - r->base) / r->stride;
    char *slot_base = r->base + slot * r->stride;
    if ((size_t)(a - slot_base) >= r->guard) return false;
    aioc__stack *st = (aioc__stack *)(slot_base + r->stride - HEADER_SIZE);
    *owner = st->owner;
    *owner_id = st->owner_id;
    *usable = r->stride - r->guard - HEADER_SIZE;
    return true;
  }
  return false;
}
