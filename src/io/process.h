/* Subprocess internals shared with the tests. */
#ifndef AIOC_PROCESS_INTERNAL_H
#define AIOC_PROCESS_INTERNAL_H

#include "io.h"

/* Whether children spawned from now on are watched through a pidfd (the
 * default where the kernel has pidfd_open()) or through SIGCHLD and
 * waitpid() (the fallback, used by itself where pidfd_open() is ENOSYS).
 * false forces the fallback, so that it is exercised on every kernel;
 * true goes back to the default. Process-wide; set it before spawning. */
AIOC_HIDDEN void aioc__process_use_pidfd(bool on);

#endif
