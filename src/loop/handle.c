/* Callback handles: call_soon, call_later, call_at and their cancel. */

#include "loop.h"

struct aioc_handle {
  aioc__runnable rq;
  aioc__timer tm;
  aioc_loop *loop;
  aioc_callback cb;
  void *arg;
  uint32_t refs;
  bool cancelled, ran;
  AIOC__ARMOR_FIELD
};

#define HANDLE_OK(h, fn) AIOC__ARMOR_OK(h, AIOC__MAGIC_HANDLE, fn, "handle")

static void handle_unref(aioc_handle *h) {
  if (--h->refs) return;
  aioc_loop *loop = h->loop;
  AIOC__ARMOR_SET(h, AIOC__MAGIC_DEAD);
  aioc__free(h);
  aioc__loop_unref(loop);
}

static void handle_run(aioc__runnable *r) {
  aioc_handle *h = aioc__container_of(r, aioc_handle, rq);
  if (!h->cancelled && !h->loop->closed) {
    h->ran = true;
    h->cb(h->arg);
  }
  handle_unref(h);
}

static void handle_fire(aioc_loop *loop, aioc__timer *t) {
  aioc_handle *h = aioc__container_of(t, aioc_handle, tm);
  aioc__ready_push(loop, &h->rq);
}

static int schedule(aioc_loop *loop, int64_t when, aioc_callback cb, void *arg,
                    aioc_handle **out) {
  if (out) *out = NULL;
  if (!loop || !cb) return -EINVAL;
  if (loop->closed) return AIOC_ECLOSED;
  aioc_handle *h = aioc__alloc(sizeof *h);
  if (!h) return -ENOMEM;
  h->loop = loop;
  h->cb = cb;
  h->arg = arg;
  h->refs = out ? 2 : 1;
  h->cancelled = h->ran = false;
  h->rq.run = handle_run;
  AIOC__ARMOR_SET(h, AIOC__MAGIC_HANDLE);
  aioc__timer_init(&h->tm, handle_fire);
  if (when == INT64_MIN) {
    aioc__ready_push(loop, &h->rq);
  } else if (aioc__timer_arm(loop, &h->tm, when) < 0) {
    aioc__free(h);
    return -ENOMEM;
  }
  aioc__loop_ref(loop);
  if (out) *out = h;
  return 0;
}

int aioc_call_soon(aioc_handle **out, aioc_loop *loop, aioc_callback cb,
                   void *arg) {
  if (loop && !AIOC__LOOP_OK(loop, "aioc_call_soon")) {
    if (out) *out = NULL;
    return -EINVAL;
  }
  return schedule(loop, INT64_MIN, cb, arg, out);
}

int aioc_call_later(aioc_handle **out, aioc_loop *loop, double delay,
                    aioc_callback cb, void *arg) {
  if (out) *out = NULL;
  if (isnan(delay) || delay < 0 || isinf(delay)) return -EINVAL;
  if (!loop || !AIOC__LOOP_OK(loop, "aioc_call_later")) return -EINVAL;
  return schedule(loop, aioc__deadline_after(loop, delay), cb, arg, out);
}

int aioc_call_at(aioc_handle **out, aioc_loop *loop, double when,
                 aioc_callback cb, void *arg) {
  if (out) *out = NULL;
  if (isnan(when) || isinf(when)) return -EINVAL;
  if (loop && !AIOC__LOOP_OK(loop, "aioc_call_at")) return -EINVAL;
  int64_t w = aioc__deadline_at(when);
  if (w == INT64_MIN) w++;
  return schedule(loop, w, cb, arg, out);
}

int aioc_handle_cancel(aioc_handle *h) {
  if (!h || !HANDLE_OK(h, "aioc_handle_cancel")) return -EINVAL;
  if (h->cancelled || h->ran) return 0;
  h->cancelled = true;
  if (h->tm.idx != AIOC__NOTIMER) {
    aioc__timer_disarm(h->loop, &h->tm);
    handle_unref(h); /* the loop's reference: it will never run */
  }
  return 1;
}

int aioc_handle_is_cancelled(const aioc_handle *h) {
  return h && HANDLE_OK(h, "aioc_handle_is_cancelled") && h->cancelled;
}

void aioc_handle_unref(aioc_handle *h) {
  if (h && HANDLE_OK(h, "aioc_handle_unref")) handle_unref(h);
}
