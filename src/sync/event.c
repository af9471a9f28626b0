/* Event: set wakes every waiter; a woken waiter returns 0 even if the
 * event is cleared before it runs (as asyncio). */
#include "sync.h"

struct aioc_event {
  aioc__wlist waiters;
  aioc_loop *loop;
  bool set;
};

int aioc_event_new(aioc_event **out) {
  if (!out) return -EINVAL;
  *out = NULL;
  aioc_event *e = aioc__alloc(sizeof *e);
  if (!e) return -ENOMEM;
  aioc__wlist_init(&e->waiters);
  e->loop = NULL;
  e->set = false;
  *out = e;
  return 0;
}

void aioc_event_free(aioc_event *e) {
  if (!e) return;
  aioc__sync_destroy_list(&e->waiters);
  aioc__free(e);
}

int aioc_event_set(aioc_event *e) {
  if (!e) return -EINVAL;
  e->set = true;
  return (int)aioc__sync_deliver_all(&e->waiters, 0);
}

int aioc_event_clear(aioc_event *e) {
  if (!e) return -EINVAL;
  e->set = false;
  return 0;
}

int aioc_event_is_set(const aioc_event *e) { return e && e->set; }

int aioc_event_wait(aioc_event *e, double timeout) {
  if (!e || aioc__sync_bad_timeout(timeout)) return -EINVAL;
  aioc__coop_tick();
  if (e->set) return 0;
  aioc_task *t;
  int rc = aioc__sync_task(&e->loop, &t);
  if (rc) return rc;
  aioc__swait s;
  s.item = NULL;
  s.aux = 0;
  return aioc__sync_park(t, &s, &e->waiters, timeout);
}
