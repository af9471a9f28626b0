/* Reports: unretrieved errors, tasks destroyed while pending, tasks that
 * ignored their cancellation; the default handler prints them. */
#include <stdio.h>

#include "loop.h"

int aioc_loop_set_report_handler(aioc_loop *loop, aioc_report_fn fn,
                                 void *arg) {
  if (!loop || !AIOC__LOOP_OK(loop, "aioc_loop_set_report_handler"))
    return -EINVAL;
  loop->report_fn = fn;
  loop->report_arg = arg;
  return 0;
}

void aioc_loop_default_report(aioc_loop *loop, const aioc_report *r) {
  (void)loop;
  fprintf(stderr, "aioc: %s\n", r->message);
  if (r->task_name) fprintf(stderr, "  task: %s\n", r->task_name);
  if (r->code)
    fprintf(stderr, "  error: %s (%d): %s\n", aioc_err_name(r->code), r->code,
            r->detail ? r->detail : aioc_strerror(r->code));
  else if (r->detail)
    fprintf(stderr, "  detail: %s\n", r->detail);
}

void aioc__report(aioc_loop *loop, const aioc_report *r) {
  if (loop && loop->report_fn)
    loop->report_fn(loop->report_arg, loop, r);
  else
    aioc_loop_default_report(loop, r);
}
