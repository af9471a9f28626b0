/* Generator layer internals. */
#ifndef AIOC_GEN_INTERNAL_H
#define AIOC_GEN_INTERNAL_H

#include <stdio.h>

#include "../task/task.h"

AIOC_HIDDEN bool aioc__gen_suppressed(const aioc_gen *g);
AIOC_HIDDEN aioc_free_fn aioc__gen_item_free(const aioc_gen *g);

/* Passes an item of it that a helper cannot deliver to it's item
 * destructor (aioc_iter_set_item_free), if any. */
AIOC_HIDDEN void aioc__iter_drop(aioc_iter *it, void *item);

#endif
