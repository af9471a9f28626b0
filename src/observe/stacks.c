/* Stack use per spawn site (AIOC_OBSERVE_STACKS): the task layer
 * measures each observed task's high-water mark when it ends and adds it
 * to its spawn site's aggregate; this file reads them. */
#include <stdlib.h>
#include <string.h>

#include "../task/task.h"

static void fill(const aioc__stack_site *s, aioc_stack_use *u) {
  *u = (aioc_stack_use){.site = s->site,
                        .tasks = s->tasks,
                        .max_used = s->max_used,
                        .mean_used = s->tasks ? (size_t)(s->sum_used / s->tasks)
                                              : 0,
                        .stack_size = s->stack_size};
}

int aioc_loop_get_stack_use(aioc_loop *loop, aioc_stack_use *out,
                            size_t cap) {
  if (loop && !AIOC__LOOP_OK(loop, "aioc_loop_get_stack_use")) return -EINVAL;
  loop = aioc__loop_pick(loop);
  if (!loop || (!out && cap)) return -EINVAL;
  for (size_t i = 0; i < loop->nstack_sites && i < cap; i++)
    fill(&loop->stack_sites[i], &out[i]);
  return (int)loop->nstack_sites;
}

static int by_max_desc(const void *a, const void *b) {
  const aioc_stack_use *x = a, *y = b;
  return (x->max_used < y->max_used) - (x->max_used > y->max_used);
}

int aioc_loop_write_stack_use(aioc_loop *loop, FILE *out) {
  if (loop && !AIOC__LOOP_OK(loop, "aioc_loop_write_stack_use"))
    return -EINVAL;
  loop = aioc__loop_pick(loop);
  if (!loop || !out) return -EINVAL;
  size_t n = loop->nstack_sites;
  aioc_stack_use *v = n ? aioc__calloc(n, sizeof *v) : NULL;
  if (n && !v) return -ENOMEM;
  for (size_t i = 0; i < n; i++) fill(&loop->stack_sites[i], &v[i]);
  if (n) qsort(v, n, sizeof *v, by_max_desc);
  fprintf(out, "%10s %10s %10s %10s %5s  %s\n", "tasks", "max", "mean",
          "stack", "max%", "spawned at");
  for (size_t i = 0; i < n; i++) {
    const aioc_stack_use *u = &v[i];
    fprintf(out, "%10llu %10zu %10zu %10zu %4.0f%%  ",
            (unsigned long long)u->tasks, u->max_used, u->mean_used,
            u->stack_size,
            u->stack_size ? 100.0 * (double)u->max_used / (double)u->stack_size
                          : 0.0);
    if (u->site)
      fprintf(out, "%s:%d\n", u->site->file, u->site->line);
    else
      fprintf(out, "(unknown)\n");
  }
  fflush(out);
  aioc__free(v);
  return 0;
}
