/* Call stacks: the bounds-checked frame-pointer walker (for a suspended
 * task's saved context, and for the stall detector's signal handler),
 * and naming a frame. The library and its users are built with frame
 * pointers (-fno-omit-frame-pointer): each frame record holds the
 * caller's frame pointer and the return address, on x86_64 and aarch64
 * alike. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stall.h"

#if AIOC_USE_UCONTEXT
#include <ucontext.h>
#endif

/* The walker reads whatever the stack holds, ASan's redzones included:
 * not instrumented. Every read is inside [lo, hi), checked first. */
#if defined(__clang__) || defined(__GNUC__)
#define AIOC__NO_SANITIZE                                                      \
  __attribute__((no_sanitize_address, no_sanitize("undefined")))
#else
#define AIOC__NO_SANITIZE
#endif

AIOC__NO_SANITIZE size_t aioc__fp_walk(uintptr_t pc, uintptr_t fp,
                                       uintptr_t lo, uintptr_t hi, void **out,
                                       uintptr_t *fps, size_t cap) {
  size_t n = 0;
  if (!cap) return 0;
  if (pc) {
    if (fps) fps[n] = 0;
    out[n++] = (void *)pc;
  }
  if (lo >= hi || hi - lo < 2 * sizeof(uintptr_t)) return n;
  while (n < cap) {
    /* A frame record: two words, [fp] the caller's fp, [fp + 8] the
     * return address. */
    if (fp < lo || fp > hi - 2 * sizeof(uintptr_t) ||
        (fp & (sizeof(uintptr_t) - 1)))
      break;
    const volatile uintptr_t *rec = (const volatile uintptr_t *)fp;
    uintptr_t next = rec[0], ret = rec[1];
    if (!ret) break;
    if (fps) fps[n] = fp;
    out[n++] = (void *)ret;
    if (next <= fp) break;
    fp = next;
  }
  return n;
}

int aioc_task_get_stack(const aioc_task *t, void **frames, size_t cap) {
  if (!t || (!frames && cap)) return -EINVAL;
  if (!AIOC__TASK_OK(t, "aioc_task_get_stack")) return -EINVAL;
  if (!cap || !aioc__task_started(t)) return 0;
  if (t->f.tstate != T_SUSPENDED && t->f.tstate != T_READY) return 0;
  const aioc__coro *c = &t->r->coro;
  if (!c->stack || !c->sp) return 0;
  uintptr_t hi = (uintptr_t)aioc__stack_hi(c->stack);
  uintptr_t lo = (uintptr_t)aioc__stack_lo(c->stack);
  uintptr_t sp, fp, pc;
#if AIOC_USE_UCONTEXT
  /* The saved context is a ucontext_t at the top of the task's stack. */
  const ucontext_t *uc = c->sp;
  if ((uintptr_t)uc < lo || (uintptr_t)uc + sizeof *uc > hi) return 0;
#if defined(__x86_64__)
  sp = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
  fp = (uintptr_t)uc->uc_mcontext.gregs[REG_RBP];
  pc = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
#elif defined(__aarch64__)
  sp = (uintptr_t)uc->uc_mcontext.sp;
  fp = (uintptr_t)uc->uc_mcontext.regs[29];
  pc = (uintptr_t)uc->uc_mcontext.regs[30];
#else
  (void)sp;
  (void)fp;
  (void)pc;
  return 0; /* stack unavailable */
#endif
#else
  /* The switch's frame (switch_*.S) at the saved stack pointer. */
  const uintptr_t *f = c->sp;
  sp = (uintptr_t)f;
#if defined(__x86_64__)
  /* fp env, r15, r14, r13, r12, rbx, rbp, return address */
  if (sp + 8 * sizeof *f > hi) return 0;
  fp = f[6];
  pc = f[7];
#else
  /* x19..x28, x29 (fp), x30 (lr), ... */
  if (sp + 12 * sizeof *f > hi) return 0;
  fp = f[10];
  pc = f[11];
#endif
#endif
  if (sp < lo || sp >= hi) return 0;
  size_t n = aioc__fp_walk(pc, fp, sp, hi, frames,
                           NULL, cap > AIOC_STACK_FRAMES_MAX
                                     ? AIOC_STACK_FRAMES_MAX
                                     : cap);
  return (int)n;
}

/* ---- naming: the dynamic symbols, else the object's symbol table ----
 *
 * dladdr() knows the exported symbols only. A function that is not
 * exported (static, hidden: the library's own) is looked up in the
 * .symtab of the object's file, when it has one (not stripped): the file
 * is mapped once and kept, for the life of the process. */

#if UINTPTR_MAX == UINT64_MAX
typedef Elf64_Ehdr elf_ehdr;
typedef Elf64_Shdr elf_shdr;
typedef Elf64_Phdr elf_phdr;
typedef Elf64_Sym elf_sym;
#define ELF_ST_TYPE_ ELF64_ST_TYPE
#else
typedef Elf32_Ehdr elf_ehdr;
typedef Elf32_Shdr elf_shdr;
typedef Elf32_Phdr elf_phdr;
typedef Elf32_Sym elf_sym;
#define ELF_ST_TYPE_ ELF32_ST_TYPE
#endif

typedef struct symfile {
  const void *fbase;     /* where dladdr() says the object is loaded */
  const char *map;       /* the file, mapped (NULL: no symbols) */
  size_t size;
  const elf_sym *syms;
  size_t nsyms;
  const char *strs;
  size_t strsize;
  uintptr_t vaddr0;      /* the lowest PT_LOAD's address, page-aligned */
} symfile;

#define SYMFILES_MAX 32
static symfile symfiles[SYMFILES_MAX];
static size_t nsymfiles;
static pthread_mutex_t symfiles_lock = PTHREAD_MUTEX_INITIALIZER;

/* Where the program itself is loaded (the first object, with its lowest
 * PT_LOAD), as dladdr() gives dli_fbase. */
static int find_main(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  uintptr_t v0 = UINTPTR_MAX;
  for (size_t i = 0; i < info->dlpi_phnum; i++)
    if (info->dlpi_phdr[i].p_type == PT_LOAD &&
        info->dlpi_phdr[i].p_vaddr < v0)
      v0 = info->dlpi_phdr[i].p_vaddr;
  if (v0 != UINTPTR_MAX)
    *(uintptr_t *)arg = (uintptr_t)info->dlpi_addr + (v0 & ~(uintptr_t)4095);
  return 1;
}

/* Maps path and finds its symbol table (f->map NULL if none). */
static void symfile_load(symfile *f, const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  struct stat st;
  void *m = MAP_FAILED;
  if (fstat(fd, &st) == 0 && st.st_size > (off_t)sizeof(elf_ehdr))
    m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (m == MAP_FAILED) return;
  size_t size = (size_t)st.st_size;
  const char *map = m;
  const elf_ehdr *eh = m;
  if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 ||
      eh->e_shentsize != sizeof(elf_shdr) ||
      eh->e_phentsize != sizeof(elf_phdr) || eh->e_shoff >= size ||
      eh->e_shnum > (size - eh->e_shoff) / sizeof(elf_shdr) ||
      eh->e_phoff >= size ||
      eh->e_phnum > (size - eh->e_phoff) / sizeof(elf_phdr))
    goto fail;
  const elf_shdr *sh = (const elf_shdr *)(map + eh->e_shoff);
  const elf_phdr *ph = (const elf_phdr *)(map + eh->e_phoff);
  uintptr_t v0 = UINTPTR_MAX;
  for (size_t i = 0; i < eh->e_phnum; i++)
    if (ph[i].p_type == PT_LOAD && ph[i].p_vaddr < v0) v0 = ph[i].p_vaddr;
  if (v0 == UINTPTR_MAX) goto fail;
  for (size_t i = 0; i < eh->e_shnum; i++) {
    if (sh[i].sh_type != SHT_SYMTAB || sh[i].sh_link >= eh->e_shnum)
      continue;
    const elf_shdr *ss = &sh[sh[i].sh_link];
    if (sh[i].sh_offset > size || sh[i].sh_size > size - sh[i].sh_offset ||
        ss->sh_offset > size || ss->sh_size > size - ss->sh_offset ||
        sh[i].sh_entsize != sizeof(elf_sym))
      goto fail;
    f->map = map;
    f->size = size;
    f->syms = (const elf_sym *)(map + sh[i].sh_offset);
    f->nsyms = sh[i].sh_size / sizeof(elf_sym);
    f->strs = map + ss->sh_offset;
    f->strsize = ss->sh_size;
    f->vaddr0 = v0 & ~(uintptr_t)4095;
    return;
  }
fail:
  munmap(m, size);
}

/* The function of di's object that holds pc, from its symbol table:
 * its name and start, or NULL. */
static const char *symtab_lookup(const Dl_info *di, const char *pc,
                                 const char **start) {
  pthread_mutex_lock(&symfiles_lock);
  symfile *f = NULL;
  for (size_t i = 0; i < nsymfiles; i++)
    if (symfiles[i].fbase == di->dli_fbase) f = &symfiles[i];
  if (!f && nsymfiles < SYMFILES_MAX) {
    f = &symfiles[nsymfiles++];
    memset(f, 0, sizeof *f);
    f->fbase = di->dli_fbase;
    uintptr_t main_base = 0;
    dl_iterate_phdr(find_main, &main_base);
    /* The program itself: its path as run may be relative to a working
     * directory since left. */
    const char *path = di->dli_fname;
    if (!path[0] || main_base == (uintptr_t)di->dli_fbase)
      path = "/proc/self/exe";
    symfile_load(f, path);
    /* Not mapped (no memory, no file): tried again next time. */
    if (!f->map) {
      nsymfiles--;
      f = NULL;
    }
  }
  const char *name = NULL;
  if (f && f->map) {
    /* The object is mapped at fbase, which holds its lowest PT_LOAD. */
    uintptr_t a = (uintptr_t)pc - (uintptr_t)f->fbase + f->vaddr0;
    uintptr_t best = 0;
    for (size_t i = 0; i < f->nsyms; i++) {
      const elf_sym *sy = &f->syms[i];
      if (ELF_ST_TYPE_(sy->st_info) != STT_FUNC || !sy->st_value ||
          sy->st_name >= f->strsize)
        continue;
      if (a >= sy->st_value && a < sy->st_value + (sy->st_size ? sy->st_size : 1) &&
          sy->st_value >= best) {
        best = sy->st_value;
        name = f->strs + sy->st_name;
        *start = (const char *)f->fbase + (sy->st_value - f->vaddr0);
      }
    }
    /* A name must end inside the string table. */
    if (name && !memchr(name, 0, f->strsize - (size_t)(name - f->strs)))
      name = NULL;
  }
  pthread_mutex_unlock(&symfiles_lock);
  return name;
}

int aioc_frame_describe(const void *pc, char *buf, size_t cap) {
  if (!buf || !cap) return -EINVAL;
  Dl_info di;
  memset(&di, 0, sizeof di);
  /* pc - 1: a return address after a call that ends its function names
   * the caller, not the function after it. */
  const char *at = (const char *)pc;
  int n;
  if (pc && dladdr(at - 1, &di) && di.dli_fname) {
    const char *obj = strrchr(di.dli_fname, '/');
    obj = obj ? obj + 1 : di.dli_fname;
    if (!*obj) obj = "?";
    if (di.dli_sname && di.dli_saddr)
      n = snprintf(buf, cap, "%s+0x%zx (%s)", di.dli_sname,
                   (size_t)(at - (const char *)di.dli_saddr), obj);
    else {
      const char *start = NULL;
      const char *fn = symtab_lookup(&di, at - 1, &start);
      if (fn)
        n = snprintf(buf, cap, "%s+0x%zx (%s)", fn, (size_t)(at - start), obj);
      else
        n = snprintf(buf, cap, "(%s+0x%zx)", obj,
                     (size_t)(at - (const char *)di.dli_fbase));
    }
  } else {
    n = snprintf(buf, cap, "%p", pc);
  }
  if (n < 0) {
    buf[0] = 0;
    return 0;
  }
  return (size_t)n >= cap ? (int)cap - 1 : n;
}
