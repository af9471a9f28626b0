/* Context switch for aarch64 (AAPCS64).
 *
 * void aioc__ctx_switch(void **save_sp, void *to_sp)
 * void aioc__ctx_switch_inherit(void **save_sp, void *to_sp)
 *
 * Saves x19-x30, d8-d15 and FPCR (unless AIOC_NO_FPENV) in a 176-byte frame
 * on the current stack, stores sp in *save_sp, loads to_sp, restores the
 * same frame from there and returns through x30. `bti c` lands the call;
 * resuming with ret needs no landing pad. The inherit variant leaves FPCR
 * as it is and marks the frame it leaves (all ones, not a valid FPCR) to
 * take over the current FPCR when resumed (see switch_x86_64.S). */
#if defined(__aarch64__) && !defined(AIOC_UCONTEXT)

.macro SAVE_FRAME
  sub sp, sp, #176
  .cfi_adjust_cfa_offset 176
  stp x19, x20, [sp, #0]
  stp x21, x22, [sp, #16]
  stp x23, x24, [sp, #32]
  stp x25, x26, [sp, #48]
  stp x27, x28, [sp, #64]
  stp x29, x30, [sp, #80]
  .cfi_rel_offset x29, 80
  .cfi_rel_offset x30, 88
  stp d8, d9, [sp, #96]
  stp d10, d11, [sp, #112]
  stp d12, d13, [sp, #128]
  stp d14, d15, [sp, #144]
.endm

.macro RESUME_FRAME
  ldp x19, x20, [sp, #0]
  ldp x21, x22, [sp, #16]
  ldp x23, x24, [sp, #32]
  ldp x25, x26, [sp, #48]
  ldp x27, x28, [sp, #64]
  ldp x29, x30, [sp, #80]
  ldp d8, d9, [sp, #96]
  ldp d10, d11, [sp, #112]
  ldp d12, d13, [sp, #128]
  ldp d14, d15, [sp, #144]
  add sp, sp, #176
  ret
.endm

  .text
  .globl aioc__ctx_switch
  .hidden aioc__ctx_switch
  .type aioc__ctx_switch, %function
  .p2align 4
aioc__ctx_switch:
  .cfi_startproc
  hint #34
  SAVE_FRAME
#ifndef AIOC_NO_FPENV
  mrs x9, fpcr
  str x9, [sp, #160]
#endif
  mov x9, sp
  str x9, [x0]
  mov sp, x1
#ifndef AIOC_NO_FPENV
  /* Writing FPCR can be slow: only when the contexts differ, and not into
   * a frame marked by the inherit variant. */
  mrs x10, fpcr
  ldr x9, [sp, #160]
  cmp x9, x10
  b.eq 1f
  cmn x9, #1
  b.eq 1f
  msr fpcr, x9
1:
#endif
  RESUME_FRAME
  .cfi_endproc
  .size aioc__ctx_switch, .-aioc__ctx_switch

  .globl aioc__ctx_switch_inherit
  .hidden aioc__ctx_switch_inherit
  .type aioc__ctx_switch_inherit, %function
  .p2align 4
aioc__ctx_switch_inherit:
  .cfi_startproc
  hint #34
  SAVE_FRAME
  mov x9, #-1
  str x9, [sp, #160]
  mov x9, sp
  str x9, [x0]
  mov sp, x1
  RESUME_FRAME
  .cfi_endproc
  .size aioc__ctx_switch_inherit, .-aioc__ctx_switch_inherit

/* First code run on a new stack: x19 holds the entry, x20 its argument. */
  .globl aioc__ctx_trampoline
  .hidden aioc__ctx_trampoline
  .type aioc__ctx_trampoline, %function
  .p2align 4
aioc__ctx_trampoline:
  .cfi_startproc
  .cfi_undefined x30
  hint #34
  mov x0, x20
  blr x19
  brk #0
  .cfi_endproc
  .size aioc__ctx_trampoline, .-aioc__ctx_trampoline

#endif
  .section .note.GNU-stack,"",%progbits
