/* RPC clients: a call is an iterator over its reply messages. */
#include <math.h>

#include "rpc.h"

int aioc_rpc_client_new(aioc_rpc_client **out, aioc_rpc_transport *tr,
                        const aioc_rpc_client_options *opts) {
  if (!out) return -EINVAL;
  *out = NULL;
  if (!tr) return -EINVAL;
  aioc_rpc_client *c = aioc__calloc(1, sizeof *c);
  if (!c) return -ENOMEM;
  c->tr = tr;
  c->loop = tr->loop;
  c->window = opts && opts->window ? opts->window : 64;
  *out = c;
  return 0;
}

void aioc_rpc_client_free(aioc_rpc_client *c) { aioc__free(c); }

/* ---- delivery (from the transport) ---- */

int aioc__rpc_call_deliver(aioc__rpc_call *call, aioc_rpc_chunk *msg,
                           bool wait) {
  aioc_queue *q = call->q;
  int rc = wait ? aioc_queue_put(q, msg, AIOC_FOREVER)
                : aioc_queue_try_put(q, msg);
  if (rc == 0) return 0;
  /* call may be gone now (a put that waited): only q's code is used. */
  aioc_rpc_chunk_free(msg);
  if (rc == AIOC_EFULL) {
    /* Cannot wait: the call ends, its consumer gets what is queued. */
    AIOC__IGNORE(aioc_queue_shutdown(q, 0));
    return AIOC_EGENEXIT;
  }
  return rc == -ESHUTDOWN ? AIOC_EGENEXIT : rc;
}

/* ---- the response iterator ---- */

/* next() inside a task of the call's loop. */
static int call_next_task(aioc__rpc_call *call, void **item, double timeout) {
  for (;;) {
    void *p;
    int rc = aioc_queue_get(call->q, &p, timeout);
    if (rc == -ESHUTDOWN) {
      call->ended = true;
      return aioc_error(-ESHUTDOWN, "the server shut down before the end");
    }
    if (rc) return rc;
    aioc_rpc_chunk *m = p;
    if (m->kind_ == AIOC__RPC_DATA) {
      if (m->seq < call->next_seq) {
        aioc_rpc_chunk_free(m); /* a restarted stream: seen already */
        continue;
      }
      call->next_seq = m->seq + 1;
      *item = m;
      return 0;
    }
    call->ended = true;
    if (m->kind_ == AIOC__RPC_END) {
      aioc_rpc_chunk_free(m);
      return AIOC_EXHAUSTED;
    }
    rc = -(int)m->seq;
    if (rc >= 0) rc = -EPROTO;
    rc = m->len ? aioc_error(rc, "%s", m->data) : rc;
    aioc_rpc_chunk_free(m);
    return rc;
  }
}

typedef struct plain_next {
  aioc__rpc_call *call;
  void **item;
  double timeout;
  int rc;
} plain_next;

static int plain_next_main(void *arg, void **result) {
  (void)result;
  plain_next *a = arg;
  int rc = call_next_task(a->call, a->item, a->timeout);
  if (rc < 0) return rc; /* the message travels with it to plain code */
  a->rc = rc;
  return 0;
}

static int call_next(void *self, void **item, double timeout) {
  aioc__rpc_call *call = self;
  *item = NULL;
  if (call->ended || call->withdrawn) return AIOC_EXHAUSTED;
  if (aioc__current()) return call_next_task(call, item, timeout);
  if (aioc__running) return AIOC_ERUNNING;
  /* Plain code: a task of the call's loop waits, the loop runs. */
  plain_next a = {call, item, timeout, 0};
  aioc_task *t;
  int rc = aioc_spawn_ex(&t, call->c->loop, plain_next_main, &a, NULL);
  if (rc < 0) return rc;
  rc = aioc_block_on(aioc_task_future(t), NULL);
  aioc_task_unref(t);
  return rc < 0 ? rc : a.rc;
}

/* Gives the call up before its end: the worker is told, and what is
 * queued is dropped. */
static int call_close(void *self) {
  aioc__rpc_call *call = self;
  if (!call->withdrawn) {
    call->withdrawn = true;
    if (!call->ended && call->sent) call->tr->ops->cancel_request(call->tr, call);
  }
  return aioc_queue_shutdown(call->q, 1);
}

static void call_free(void *self) {
  aioc__rpc_call *call = self;
  call_close(call);
  aioc_queue_free(call->q);
  call->c->calls--;
  aioc__free(call);
}

static const aioc_iter_vtable call_vt = {call_next, call_close, call_free};

static bool timed_limits(const aioc_timed_options *o) {
  return o->first > 0 || o->between > 0 || o->total > 0;
}

static bool bad_limit(double v) { return isnan(v) || v < 0; }

int aioc_rpc_call(aioc_iter **out, aioc_rpc_client *c, const char *method,
                  const void *payload, size_t len,
                  const aioc_rpc_call_options *opts) {
  if (!out) return -EINVAL;
  *out = NULL;
  if (!c || !aioc__rpc_method_ok(method) || (!payload && len)) return -EINVAL;
  aioc_rpc_call_options o = {0};
  if (opts) o = *opts;
  if (bad_limit(o.expiry) || bad_limit(o.limits.first) ||
      bad_limit(o.limits.between) || bad_limit(o.limits.total))
    return -EINVAL;
  aioc__rpc_call *call = aioc__calloc(1, sizeof *call);
  if (!call) return -ENOMEM;
  call->c = c;
  call->tr = c->tr;
  call->method = method;
  call->payload = payload;
  call->len = len;
  call->expiry = o.expiry > 0 ? aioc__deadline_after(c->loop, o.expiry)
                              : AIOC__NEVER;
  aioc_queue_options qo = {.kind = AIOC_QUEUE_FIFO,
                           .item_free = aioc_rpc_chunk_free};
  int rc = aioc_queue_new(&call->q, (int)(c->window > INT32_MAX ? INT32_MAX
                                                                : c->window),
                          &qo);
  /* The window's room exists from the start: a reply message (the
   * final one above all) never fails for lack of memory on its way. */
  if (rc == 0) rc = aioc__queue_reserve(call->q, c->window);
  if (rc < 0) {
    aioc_queue_free(call->q);
    aioc__free(call);
    return rc;
  }
  c->calls++;
  aioc_iter *it;
  rc = aioc_iter_new(&it, &call_vt, call);
  if (rc < 0) {
    call->withdrawn = true;
    call_free(call);
    return rc;
  }
  if (timed_limits(&o.limits)) {
    aioc_iter *timed;
    rc = aioc_iter_timed(&timed, it, &o.limits);
    if (rc < 0) {
      aioc_iter_free(it);
      return rc;
    }
    it = timed;
  }
  /* Everything that can fail for lack of memory is done: send. */
  rc = c->tr->ops->send_request(c->tr, call);
  call->method = NULL; /* the transport copied what it keeps */
  call->payload = NULL;
  if (rc < 0) {
    aioc_iter_free(it);
    return rc;
  }
  call->sent = true;
  *out = it;
  return 0;
}

int aioc_rpc_call_unary(aioc_rpc_client *c, const char *method,
                        const void *payload, size_t len,
                        aioc_rpc_chunk **reply, double timeout) {
  if (reply) *reply = NULL;
  if (!reply || isnan(timeout) || timeout < 0) return -EINVAL;
  aioc_iter *it;
  int rc = aioc_rpc_call(&it, c, method, payload, len, NULL);
  if (rc < 0) return rc;
  void *item;
  rc = aioc_iter_next(it, &item, timeout);
  if (rc == 0) *reply = item;
  aioc_iter_free(it); /* any further chunk is not wanted */
  return rc;
}
