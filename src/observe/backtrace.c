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
#include <stdio.h>
#include <string.h>

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
    else
      n = snprintf(buf, cap, "(%s+0x%zx)", obj,
                   (size_t)(at - (const char *)di.dli_fbase));
  } else {
    n = snprintf(buf, cap, "%p", pc);
  }
  if (n < 0) {
    buf[0] = 0;
    return 0;
  }
  return (size_t)n >= cap ? (int)cap - 1 : n;
}
