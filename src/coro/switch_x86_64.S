/* Context switch for x86-64 System V.
 *
 * void aioc__ctx_switch(void **save_sp, void *to_sp)
 * void aioc__ctx_switch_inherit(void **save_sp, void *to_sp)
 *
 * Pushes the callee-saved registers (and, unless AIOC_NO_FPENV, the MXCSR
 * control bits and the x87 control word) on the current stack, stores the
 * stack pointer in *save_sp, loads to_sp and pops the same frame from the
 * other stack. Resumes with pop + jmp rather than ret: measured faster,
 * because the return-stack predictor is not left unbalanced.
 *
 * The inherit variant neither reads nor loads the floating-point control
 * state: the context resumed runs with the current one, and the context
 * left is marked (all ones, not a valid MXCSR) to take over whatever is
 * current when it is resumed. Reading MXCSR (stmxcsr) costs about 6 ns on
 * the AMD EPYC measured; the generator hand-offs use this variant, since a
 * generator body runs as part of its consumer. A fresh context carries the
 * mark too, so it starts with the state of whoever first resumes it. */
#if defined(__x86_64__) && !defined(AIOC_UCONTEXT)

#ifdef __CET__
#define ENDBR endbr64
#else
#define ENDBR
#endif

.macro SAVE_FRAME
  pushq %rbp
  .cfi_adjust_cfa_offset 8
  .cfi_rel_offset %rbp, 0
  pushq %rbx
  .cfi_adjust_cfa_offset 8
  .cfi_rel_offset %rbx, 0
  pushq %r12
  .cfi_adjust_cfa_offset 8
  .cfi_rel_offset %r12, 0
  pushq %r13
  .cfi_adjust_cfa_offset 8
  .cfi_rel_offset %r13, 0
  pushq %r14
  .cfi_adjust_cfa_offset 8
  .cfi_rel_offset %r14, 0
  pushq %r15
  .cfi_adjust_cfa_offset 8
  .cfi_rel_offset %r15, 0
  subq $8, %rsp
  .cfi_adjust_cfa_offset 8
.endm

/* Pops the frame of the context resumed (the CFI still describes the
 * frame pushed, which has the same layout). */
.macro RESUME_FRAME
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  popq %rcx
  jmp *%rcx
.endm

  .text
  .globl aioc__ctx_switch
  .hidden aioc__ctx_switch
  .type aioc__ctx_switch, @function
  .p2align 4
aioc__ctx_switch:
  .cfi_startproc
  ENDBR
  SAVE_FRAME
#ifndef AIOC_NO_FPENV
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
#endif
  movq %rsp, (%rdi)
#ifndef AIOC_NO_FPENV
  /* Our values, read back at the width they were stored (so the loads
   * forward from the stores), to compare with the other context's. */
  movl (%rsp), %eax
  movzwl 4(%rsp), %edx
#endif
  movq %rsi, %rsp
#ifndef AIOC_NO_FPENV
  /* Loading MXCSR and the x87 control word is slow; skip it when the two
   * contexts agree, which is almost always. */
  xorl (%rsp), %eax
  testl $0xffc0, %eax /* MXCSR control bits; status flags are not ours */
  jne 2f
  cmpw 4(%rsp), %dx
  jne 2f
1:
#endif
  RESUME_FRAME
#ifndef AIOC_NO_FPENV
2:
  cmpl $-1, (%rsp) /* marked by the inherit variant: keep ours */
  je 1b
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  jmp 1b
#endif
  .cfi_endproc
  .size aioc__ctx_switch, .-aioc__ctx_switch

  .globl aioc__ctx_switch_inherit
  .hidden aioc__ctx_switch_inherit
  .type aioc__ctx_switch_inherit, @function
  .p2align 4
aioc__ctx_switch_inherit:
  .cfi_startproc
  ENDBR
  SAVE_FRAME
  movq $-1, (%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  RESUME_FRAME
  .cfi_endproc
  .size aioc__ctx_switch_inherit, .-aioc__ctx_switch_inherit

/* Return thunk for the functions that switch and then return to a caller
 * on another stack (the generator hand-offs, marked with
 * function_return("thunk-extern")): their ret would be predicted from the
 * return-stack buffer, which holds the other stack's return addresses, and
 * be mispredicted on every hand-off. An indirect jump is predicted by its
 * target history instead. Weak: any other definition does as well. */
  .weak __x86_return_thunk
  .hidden __x86_return_thunk
  .type __x86_return_thunk, @function
  .p2align 4
__x86_return_thunk:
  .cfi_startproc
  popq %rcx
  .cfi_adjust_cfa_offset -8
  .cfi_register rip, rcx
  jmp *%rcx
  .cfi_endproc
  .size __x86_return_thunk, .-__x86_return_thunk

/* First code run on a new stack: r12 holds the entry function, r13 its
 * argument. The entry never returns; if it did, trap. */
  .globl aioc__ctx_trampoline
  .hidden aioc__ctx_trampoline
  .type aioc__ctx_trampoline, @function
  .p2align 4
aioc__ctx_trampoline:
  .cfi_startproc
  .cfi_undefined rip
  ENDBR
  movq %r13, %rdi
  callq *%r12
  ud2
  .cfi_endproc
  .size aioc__ctx_trampoline, .-aioc__ctx_trampoline

#endif
  .section .note.GNU-stack,"",@progbits
