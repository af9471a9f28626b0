/* The local transport: servers and clients of one loop, in one process.
 * A request goes straight to the server that serves its method; a reply
 * message goes straight into the call's queue (a handler that finds the
 * client's window full waits there, which is the backpressure). A call
 * and its request point at each other until either side lets go. */
#include <stdio.h>

#include "rpc.h"

typedef struct local_entry {
  char *method;
  aioc_rpc_server *s;
} local_entry;

typedef struct local {
  aioc_rpc_transport tr;
  local_entry *v; /* the methods served, and by whom */
  size_t n;
} local;

static local *of(aioc_rpc_transport *tr) {
  return aioc__container_of(tr, local, tr);
}

static aioc_rpc_server *lookup(local *l, const char *method) {
  for (size_t i = 0; i < l->n; i++)
    if (strcmp(l->v[i].method, method) == 0) return l->v[i].s;
  return NULL;
}

static int local_send_request(aioc_rpc_transport *tr, aioc__rpc_call *call) {
  local *l = of(tr);
  aioc_rpc_server *s = lookup(l, call->method);
  if (!s) {
    /* Nobody serves it: the call's answer is that error. */
    char text[AIOC__RPC_METHOD_MAX + 32];
    int n = snprintf(text, sizeof text, "no server for method %s",
                     call->method);
    aioc_rpc_chunk *m = aioc__rpc_msg(AIOC__RPC_ERROR, ENOENT, text,
                                      (size_t)(n < 0 ? 0 : n));
    if (!m) return -ENOMEM;
    AIOC__IGNORE(aioc__rpc_call_deliver(call, m, false)); /* empty: fits */
    return 0;
  }
  aioc_rpc_request *req = aioc__rpc_request_new(call->method, call->payload,
                                                call->len, call->expiry);
  if (!req) return -ENOMEM;
  req->tpriv = call;
  call->tpriv = req;
  aioc__rpc_server_dispatch(s, req);
  return 0;
}

static void local_cancel_request(aioc_rpc_transport *tr,
                                 aioc__rpc_call *call) {
  (void)tr;
  aioc_rpc_request *req = call->tpriv;
  call->tpriv = NULL;
  if (req) {
    req->tpriv = NULL;
    aioc__rpc_request_abandon(req);
  }
}

static int local_serve(aioc_rpc_transport *tr, aioc_rpc_server *s) {
  local *l = of(tr);
  for (size_t i = 0; i < s->nmethods; i++)
    if (lookup(l, s->methods[i].name)) return -EADDRINUSE;
  local_entry *v = aioc__realloc(l->v, (l->n + s->nmethods) * sizeof *v);
  if (!v && l->n + s->nmethods) return -ENOMEM;
  l->v = v;
  size_t added = 0;
  for (; added < s->nmethods; added++) {
    char *name = aioc__strdup(s->methods[added].name);
    if (!name) break;
    l->v[l->n + added] = (local_entry){name, s};
  }
  if (added < s->nmethods) {
    while (added) aioc__free(l->v[l->n + --added].method);
    return -ENOMEM;
  }
  l->n += added;
  return 0;
}

static void local_unserve(aioc_rpc_transport *tr, aioc_rpc_server *s) {
  local *l = of(tr);
  size_t j = 0;
  for (size_t i = 0; i < l->n; i++) {
    if (l->v[i].s == s)
      aioc__free(l->v[i].method);
    else
      l->v[j++] = l->v[i];
  }
  l->n = j;
}

static int local_send_reply(aioc_rpc_transport *tr, aioc_rpc_request *req,
                            aioc_rpc_chunk *msg, bool wait) {
  (void)tr;
  aioc__rpc_call *call = req->tpriv;
  if (!call) {
    aioc_rpc_chunk_free(msg); /* the client gave up */
    return AIOC_EGENEXIT;
  }
  return aioc__rpc_call_deliver(call, msg, wait);
}

static void local_finish(aioc_rpc_transport *tr, aioc_rpc_request *req) {
  (void)tr;
  aioc__rpc_call *call = req->tpriv;
  if (call) call->tpriv = NULL;
  req->tpriv = NULL;
}

static void local_free(aioc_rpc_transport *tr) {
  local *l = of(tr);
  for (size_t i = 0; i < l->n; i++) aioc__free(l->v[i].method);
  aioc__free(l->v);
  aioc__free(l);
}

static const aioc__rpc_tops local_ops = {
    local_send_request, local_cancel_request, local_serve, local_unserve,
    local_send_reply,   local_finish,         local_free,
    NULL};

int aioc_rpc_local_new(aioc_rpc_transport **out) {
  if (!out) return -EINVAL;
  *out = NULL;
  aioc_loop *loop = aioc__running ? aioc__running : aioc_loop_current();
  if (!loop) return -ENOMEM;
  if (loop->closed) return AIOC_ECLOSED;
  local *l = aioc__calloc(1, sizeof *l);
  if (!l) return -ENOMEM;
  l->tr.ops = &local_ops;
  l->tr.loop = loop;
  *out = &l->tr;
  return 0;
}
