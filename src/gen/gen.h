/* Generator layer internals. */
#ifndef AIOC_GEN_INTERNAL_H
#define AIOC_GEN_INTERNAL_H

#include <stdio.h>

#include "../task/task.h"

AIOC_HIDDEN bool aioc__gen_suppressed(const aioc_gen *g);

#endif
