/* RPC servers (workers): methods, requests waiting their turn, one task
 * per request at work, graceful shutdown. */
#include <stddef.h>

#include "rpc.h"

#define FIN_MSG_MAX AIOC__RPC_METHOD_MAX /* room for an error message */

/* Where a request's payload starts in its block. */
#define REQ_HEAD                                                              \
  ((sizeof(aioc_rpc_request) + _Alignof(max_align_t) - 1) &                   \
   ~(_Alignof(max_align_t) - 1))

/* A reply message is preceded by a 16-byte prefix that says where its
 * memory came from. Small ones (streamed chunks are usually small) come
 * from the thread's slab: a call of 5 chunks of 64 bytes with 64 calls in
 * flight spent a third of its instructions in malloc and free, whose
 * per-thread cache holds only 7 blocks of a size. */
#define MSG_PREFIX 16
#define MSG_SLAB_SIZE 160 /* prefix, header, up to 127 bytes and a NUL */
enum { MSG_HEAP = 1, MSG_SLAB = 2 };

aioc_rpc_chunk *aioc__rpc_msg(int kind, uint32_t seq, const void *data,
                              size_t len) {
  if (len > SIZE_MAX - sizeof(aioc_rpc_chunk) - 1 - MSG_PREFIX) return NULL;
  size_t total = MSG_PREFIX + sizeof(aioc_rpc_chunk) + len + 1;
  char *b;
  uint32_t origin;
  if (total <= MSG_SLAB_SIZE && !aioc__slab_off) {
    b = aioc__slab_alloc(AIOC__SLAB_RPC_MSG, MSG_SLAB_SIZE);
    origin = MSG_SLAB;
  } else {
    b = aioc__alloc(total);
    origin = MSG_HEAP;
  }
  if (!b) return NULL;
  memcpy(b, &origin, sizeof origin);
  aioc_rpc_chunk *m = (aioc_rpc_chunk *)(b + MSG_PREFIX);
  m->len = len;
  m->seq = seq;
  m->kind_ = kind;
  if (data) {
    if (len) memcpy(m->data, data, len);
  } else {
    m->data[0] = '\0'; /* room only: the caller fills it */
  }
  m->data[len] = '\0';
  return m;
}

void aioc_rpc_chunk_free(void *chunk) {
  if (!chunk) return;
  char *b = (char *)chunk - MSG_PREFIX;
  uint32_t origin;
  memcpy(&origin, b, sizeof origin);
  if (origin == MSG_SLAB) {
    /* Back to this thread's slab (even if it was turned off since). */
    aioc__slab *sl = &aioc__slabs[AIOC__SLAB_RPC_MSG];
    *(void **)b = sl->free;
    sl->free = b;
    return;
  }
  aioc__free(b);
}

void aioc_rpc_transport_free(aioc_rpc_transport *tr) {
  if (tr) tr->ops->free(tr);
}

/* ---- requests ---- */

aioc_rpc_request *aioc__rpc_request_new(const char *method,
                                        const void *payload, size_t len,
                                        int64_t expiry) {
  /* One block: the record, then the payload and its NUL (aligned as
   * malloc's), then the method's name and its NUL. */
  size_t mlen = strlen(method);
  if (len > SIZE_MAX - REQ_HEAD - mlen - 2) return NULL;
  aioc_rpc_request *req = aioc__alloc(REQ_HEAD + len + 1 + mlen + 1);
  if (!req) return NULL;
  memset(req, 0, sizeof *req);
  /* The final reply can always be sent: it exists from the start. */
  req->fin = aioc__rpc_msg(AIOC__RPC_END, 0, NULL, FIN_MSG_MAX);
  if (!req->fin) {
    aioc__free(req);
    return NULL;
  }
  aioc__list_init(&req->link);
  req->payload = (char *)req + REQ_HEAD;
  if (len) memcpy(req->payload, payload, len);
  ((char *)req->payload)[len] = '\0';
  req->method = (char *)req->payload + len + 1;
  memcpy(req->method, method, mlen + 1);
  req->len = len;
  req->expiry = expiry;
  return req;
}

static void request_free(aioc_rpc_request *req) {
  aioc_rpc_chunk_free(req->fin);
  aioc__free(req);
}

const char *aioc_rpc_request_method(const aioc_rpc_request *req) {
  return req ? req->method : NULL;
}

const void *aioc_rpc_request_payload(const aioc_rpc_request *req,
                                     size_t *len) {
  if (len) *len = req ? req->len : 0;
  return req ? req->payload : NULL;
}

/* ---- the server ---- */

int aioc_rpc_server_new(aioc_rpc_server **out, aioc_rpc_transport *tr,
                        const aioc_rpc_server_options *opts) {
  if (!out) return -EINVAL;
  *out = NULL;
  if (!tr) return -EINVAL;
  aioc_rpc_server *s = aioc__calloc(1, sizeof *s);
  if (!s) return -ENOMEM;
  s->tr = tr;
  s->loop = tr->loop;
  s->prefetch = opts && opts->prefetch ? opts->prefetch : 16;
  s->stack_size = opts ? opts->stack_size : 0;
  aioc__list_init(&s->waiting);
  aioc__list_init(&s->active);
  aioc__waitpoint_init(&s->wp, s->loop);
  *out = s;
  return 0;
}

static const aioc__rpc_method *find(const aioc_rpc_server *s,
                                    const char *name) {
  for (size_t i = 0; i < s->nmethods; i++)
    if (strcmp(s->methods[i].name, name) == 0) return &s->methods[i];
  return NULL;
}

int aioc_rpc_server_register(aioc_rpc_server *s, const char *method,
                             aioc_rpc_handler fn, void *arg) {
  if (!s || !fn || !aioc__rpc_method_ok(method)) return -EINVAL;
  if (s->started || s->stopping) return AIOC_ESTATE;
  if (find(s, method)) return -EEXIST;
  char *name = aioc__strdup(method);
  aioc__rpc_method *m =
      name ? aioc__realloc(s->methods, (s->nmethods + 1) * sizeof *m) : NULL;
  if (!m) {
    aioc__free(name);
    return -ENOMEM;
  }
  s->methods = m;
  s->methods[s->nmethods++] = (aioc__rpc_method){name, fn, arg};
  return 0;
}

int aioc_rpc_server_start(aioc_rpc_server *s) {
  if (!s) return -EINVAL;
  if (s->started || s->stopping) return AIOC_ESTATE;
  int rc = s->tr->ops->serve(s->tr, s);
  if (rc < 0) return rc;
  s->started = true;
  return 0;
}

int aioc_rpc_server_stats(const aioc_rpc_server *s, size_t *handled,
                          size_t *active) {
  if (handled) *handled = s ? s->handled : 0;
  if (active) *active = s ? s->nactive : 0;
  return s ? 0 : -EINVAL;
}

/* ---- handling a request ---- */

static void pump(aioc_rpc_server *s);
static void server_destroy(aioc_rpc_server *s);

/* Offers req back to the transport (shutdown): true if it took it. */
static bool give_back(aioc_rpc_request *req) {
  aioc_rpc_transport *tr = req->s->tr;
  return tr->ops->requeue && tr->ops->requeue(tr, req);
}

/* Sends req's final message: the end, or the error code with msg. A
 * request the server closed, or one that could not run, does not wait
 * for room in the client's window. */
static void send_final(aioc_rpc_request *req, int rc, const char *msg,
                       bool wait) {
  aioc_rpc_chunk *fin = req->fin;
  req->fin = NULL;
  if (req->gone) {
    aioc_rpc_chunk_free(fin);
    return;
  }
  if (req->closed && (rc == 0 || rc == AIOC_EGENEXIT || rc == -ECANCELED)) {
    if (give_back(req)) {
      aioc_rpc_chunk_free(fin); /* another worker takes it over */
      return;
    }
    rc = -ESHUTDOWN;
    msg = "the server shut down";
  }
  if (rc >= 0 || rc == AIOC_EGENEXIT) {
    fin->kind_ = AIOC__RPC_END;
    fin->seq = req->seq;
    fin->len = 0;
  } else {
    fin->kind_ = AIOC__RPC_ERROR;
    fin->seq = (uint32_t)-rc;
    size_t n = msg ? strnlen(msg, FIN_MSG_MAX) : 0;
    memcpy(fin->data, msg ? msg : "", n);
    fin->data[n] = '\0';
    fin->len = n;
  }
  /* The handler's cancellation must not cut the final message off. */
  aioc_task *t = aioc__current();
  if (t && wait) t->r->nocancel++;
  AIOC__IGNORE(req->s->tr->ops->send_reply(req->s->tr, req, fin, wait));
  if (t && wait) t->r->nocancel--;
}

/* req is over: the transport is told, and its place goes to the next. */
static void request_done(aioc_rpc_request *req) {
  aioc_rpc_server *s = req->s;
  bool was_active = req->task != NULL;
  aioc__list_del(&req->link);
  s->tr->ops->finish(s->tr, req);
  request_free(req);
  if (was_active) {
    s->nactive--;
    s->handled++;
  }
  if (s->orphan) {
    if (!s->nactive) server_destroy(s);
    return;
  }
  pump(s);
  aioc__waitpoint_notify(&s->wp);
}

static int handler_main(void *arg, void **result) {
  (void)result;
  aioc_rpc_request *req = arg;
  aioc_rpc_server *s = req->s;
  int rc;
  if (req->gone || req->closed) {
    rc = -ESHUTDOWN; /* told to stop before it started */
  } else if (!req->m) {
    rc = aioc_error(-ENOENT, "no handler for method %s", req->method);
  } else if (req->expiry != AIOC__NEVER && aioc__now(s->loop) > req->expiry) {
    rc = aioc_error(-ETIMEDOUT, "the request expired before a worker took it");
  } else {
    rc = req->m->fn(req->m->arg, req);
  }
  send_final(req, rc, rc < 0 ? aioc_error_message() : NULL, true);
  /* The handler's outcome went to its client; the task ends quietly. */
  aioc_task_unref(req->task);
  request_done(req);
  return 0;
}

/* Starts the requests waiting their turn while there is room. */
static void pump(aioc_rpc_server *s) {
  aioc__list *l;
  while (s->nactive < s->prefetch && (l = aioc__list_first(&s->waiting))) {
    aioc_rpc_request *req = aioc__container_of(l, aioc_rpc_request, link);
    aioc__list_del(&req->link);
    /* Unnamed ("Task-N"): a name costs two allocations per request. */
    aioc_task_options o = {.stack_size = s->stack_size};
    int rc = aioc_spawn_ex(&req->task, s->loop, handler_main, req, &o);
    if (rc < 0) {
      /* No task for it: the request fails at once. */
      req->task = NULL;
      send_final(req, rc, "cannot start the handler", false);
      request_done(req);
      return; /* request_done pumped already */
    }
    aioc__list_push_back(&s->active, &req->link);
    s->nactive++;
  }
}

void aioc__rpc_server_dispatch(aioc_rpc_server *s, aioc_rpc_request *req) {
  req->s = s;
  req->m = find(s, req->method);
  if (s->stopping) {
    send_final(req, -ESHUTDOWN, "the server shut down", false);
    request_done(req);
    return;
  }
  aioc__list_push_back(&s->waiting, &req->link);
  pump(s);
}

void aioc__rpc_request_abandon(aioc_rpc_request *req) {
  req->gone = true;
  if (!req->task) {
    request_done(req); /* still waiting its turn */
    return;
  }
  /* Waiting for room in the window: the transport wakes it. */
  if (!req->sending && aioc__task_started(req->task))
    AIOC__IGNORE(aioc_task_cancel(req->task, "the client gave up"));
}

int aioc_rpc_yield(aioc_rpc_request *req, const void *data, size_t len) {
  aioc_task *t = aioc__current();
  if (!req || !t || t != req->task || (!data && len)) return -EINVAL;
  if (req->gone || req->closed) return AIOC_EGENEXIT;
  int rc = aioc__task_check(t);
  if (rc) return rc;
  aioc_rpc_chunk *msg = aioc__rpc_msg(AIOC__RPC_DATA, req->seq, data, len);
  if (!msg) return -ENOMEM;
  req->sending = true;
  rc = req->s->tr->ops->send_reply(req->s->tr, req, msg, true);
  req->sending = false;
  if (rc == 0) req->seq++;
  if (rc == AIOC_EGENEXIT) req->gone = true;
  return rc;
}

/* ---- shutdown ---- */

static bool idle(void *arg) { return ((aioc_rpc_server *)arg)->nactive == 0; }

/* Takes no more requests; those waiting their turn never run. */
static void stop(aioc_rpc_server *s) {
  if (s->stopping) return;
  s->stopping = true;
  if (s->started) s->tr->ops->unserve(s->tr, s);
  aioc__list *l;
  while ((l = aioc__list_first(&s->waiting))) {
    aioc_rpc_request *req = aioc__container_of(l, aioc_rpc_request, link);
    if (give_back(req)) {
      aioc_rpc_chunk_free(req->fin);
      req->fin = NULL;
    } else {
      send_final(req, -ESHUTDOWN, "the server shut down", false);
    }
    request_done(req);
  }
}

/* The handlers at work are told to stop (their clients get -ESHUTDOWN). */
static void close_active(aioc_rpc_server *s) {
  aioc__list_each(l, &s->active) {
    aioc_rpc_request *req = aioc__container_of(l, aioc_rpc_request, link);
    if (req->closed) continue;
    req->closed = true;
    /* One that has not started sees the flag when it does. */
    if (aioc__task_started(req->task))
      AIOC__IGNORE(aioc_task_cancel(req->task, "the server shut down"));
  }
}

int aioc_rpc_server_shutdown(aioc_rpc_server *s, double timeout) {
  if (!s || !(timeout >= 0)) return -EINVAL;
  if (!aioc__current() && aioc__running) return AIOC_ERUNNING;
  stop(s);
  int rc = aioc__waitpoint_wait(&s->wp, idle, s, timeout, false);
  if (rc == 0 || rc == -EBUSY) return rc;
  /* Out of time (or cancelled): the handlers left are closed, and their
   * end is waited for regardless. */
  close_active(s);
  int wrc = aioc__waitpoint_wait(&s->wp, idle, s, AIOC_FOREVER, true);
  if (wrc < 0 && !idle(s)) return wrc;
  return rc;
}

static void server_destroy(aioc_rpc_server *s) {
  for (size_t i = 0; i < s->nmethods; i++) aioc__free(s->methods[i].name);
  aioc__free(s->methods);
  aioc__free(s);
}

void aioc_rpc_server_free(aioc_rpc_server *s) {
  if (!s) return;
  stop(s);
  close_active(s);
  if (s->nactive && (aioc__current() || !aioc__running))
    AIOC__IGNORE(aioc__waitpoint_wait(&s->wp, idle, s, AIOC_FOREVER, true));
  if (s->nactive) {
    /* Cannot wait here (a callback of the loop): the last handler to end
     * frees the server. */
    s->orphan = true;
    return;
  }
  server_destroy(s);
}
