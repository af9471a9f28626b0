/* RPC layer internals: the transport interface, and the server, request
 * and call records the transports work with.
 *
 * The core (server.c, client.c) knows nothing of how requests and chunks
 * travel; a transport (local.c) knows nothing of handlers and iterators.
 * They meet here:
 *   - client side: the core gives a call to the transport (send_request);
 *     the transport hands each reply message to the call
 *     (aioc__rpc_call_deliver), in a task (it may wait for the call's
 *     window) or in a callback (it may not: the window is then not
 *     enforced, the transport's own flow control bounds memory); a call
 *     the client gives up is withdrawn (cancel_request), after which the
 *     transport never touches it again;
 *   - server side: the transport hands each request it takes for a
 *     server to the core (aioc__rpc_server_dispatch); the core's handler
 *     task sends reply messages (send_reply, which may wait) and tells
 *     the transport when the request is over (finish); a server shutting
 *     down may first offer back what it did not finish (requeue).
 * A reply message is an aioc_rpc_chunk whose kind_ says what it is:
 * data (seq counts them from 0), the end of the response, or an error
 * (seq holds the negated code, data the message). */
#ifndef AIOC_RPC_INTERNAL_H
#define AIOC_RPC_INTERNAL_H

#include <string.h>

#include "../sync/sync.h"

enum { AIOC__RPC_DATA = 0, AIOC__RPC_END = 1, AIOC__RPC_ERROR = 2 };

#define AIOC__RPC_METHOD_MAX 255

typedef struct aioc__rpc_call aioc__rpc_call;

typedef struct aioc__rpc_tops {
  /* Client: sends call's request. 0, or a negative code (nothing sent). */
  int (*send_request)(aioc_rpc_transport *tr, aioc__rpc_call *call);
  /* Client: the call is given up before its end: tell the worker (best
   * effort) and never deliver to it again. */
  void (*cancel_request)(aioc_rpc_transport *tr, aioc__rpc_call *call);
  /* Server: starts handing s's requests to aioc__rpc_server_dispatch(). */
  int (*serve)(aioc_rpc_transport *tr, aioc_rpc_server *s);
  /* Server: stops taking requests for s. */
  void (*unserve)(aioc_rpc_transport *tr, aioc_rpc_server *s);
  /* Server: sends msg (ownership passes, whatever the outcome) for req.
   * wait: from req's handler task, which may wait for room; otherwise it
   * must not wait, and a message that cannot go out at once ends the call
   * with -ESHUTDOWN (its consumer gets what was queued, then that). 0,
   * AIOC_EGENEXIT (the client gave up, or the call was ended: nothing
   * more to send), -ECANCELED, -ETIMEDOUT (a deadline of the handler),
   * -ENOMEM. */
  int (*send_reply)(aioc_rpc_transport *tr, aioc_rpc_request *req,
                    aioc_rpc_chunk *msg, bool wait);
  /* Server: req is over (acknowledge it); the transport frees what it
   * attached to it. */
  void (*finish)(aioc_rpc_transport *tr, aioc_rpc_request *req);
  void (*free)(aioc_rpc_transport *tr);
  /* Server, optional (NULL: never): the server shuts down and gives req
   * back unfinished (it never started, or its handler was closed). true:
   * the transport took it back (a broker redelivers it to another
   * worker), so the core sends no final reply; finish still follows.
   * false: the core fails it with -ESHUTDOWN. */
  bool (*requeue)(aioc_rpc_transport *tr, aioc_rpc_request *req);
} aioc__rpc_tops;

struct aioc_rpc_transport {
  const aioc__rpc_tops *ops;
  aioc_loop *loop;
};

/* A registered method. */
typedef struct aioc__rpc_method {
  char *name;
  aioc_rpc_handler fn;
  void *arg;
} aioc__rpc_method;

struct aioc_rpc_server {
  aioc_rpc_transport *tr;
  aioc_loop *loop;
  aioc__rpc_method *methods;
  size_t nmethods;
  size_t prefetch, stack_size;
  aioc__list waiting; /* requests waiting their turn (arrival order) */
  aioc__list active;  /* requests being handled */
  size_t nactive, handled;
  bool started, stopping;
  bool orphan;        /* freed while handlers ran: the last one frees it */
  aioc__waitpoint wp; /* shutdown: waits for nactive == 0 */
  void *tpriv;        /* the transport's */
};

struct aioc_rpc_request {
  aioc__list link; /* in s->waiting, then s->active */
  aioc_rpc_server *s;
  const aioc__rpc_method *m;
  char *method;
  void *payload; /* len bytes and a NUL */
  size_t len;
  int64_t expiry; /* loop ns; AIOC__NEVER: none */
  aioc_task *task; /* the handler's, while it runs */
  aioc_rpc_chunk *fin; /* the final message, allocated at dispatch (its
                          data has room for a 255-byte error message) */
  uint32_t seq;    /* the next data chunk's */
  bool gone;       /* the client gave up: no more replies */
  bool closed;     /* the server closed it (shutdown) */
  bool sending;    /* the handler waits in send_reply */
  void *tpriv;     /* the transport's */
};

struct aioc__rpc_call {
  aioc_rpc_client *c;
  aioc_rpc_transport *tr;
  aioc_queue *q;     /* reply messages, bounded by the window */
  const char *method;  /* the request, during send_request only */
  const void *payload;
  size_t len;
  int64_t expiry;    /* loop ns; AIOC__NEVER: none */
  uint32_t next_seq; /* the data chunk the consumer gets next */
  bool ended;        /* the end or an error was handed to the consumer */
  bool sent;         /* send_request succeeded */
  bool withdrawn;    /* given up (cancel_request was called if sent) */
  void *tpriv;       /* the transport's */
};

struct aioc_rpc_client {
  aioc_rpc_transport *tr;
  aioc_loop *loop;
  size_t window;
  size_t calls; /* iterators not yet freed */
};

/* A reply message of kind with seq and a copy of len bytes of data (data
 * NULL: room for len bytes, to be filled in). */
AIOC_HIDDEN aioc_rpc_chunk *aioc__rpc_msg(int kind, uint32_t seq,
                                          const void *data, size_t len);

/* Is m a valid method name (1 to 255 bytes)? */
static inline bool aioc__rpc_method_ok(const char *m) {
  size_t n = m ? strnlen(m, AIOC__RPC_METHOD_MAX + 1) : 0;
  return n >= 1 && n <= AIOC__RPC_METHOD_MAX;
}

/* Transport to core: a new request record (method and payload copied,
 * expiry in loop ns or AIOC__NEVER), or NULL when out of memory. */
AIOC_HIDDEN aioc_rpc_request *aioc__rpc_request_new(const char *method,
                                                    const void *payload,
                                                    size_t len,
                                                    int64_t expiry);

/* Transport to core: req for s. The core owns req from now on (it ends
 * with the transport's finish), and every request gets its final reply. */
AIOC_HIDDEN void aioc__rpc_server_dispatch(aioc_rpc_server *s,
                                           aioc_rpc_request *req);

/* Transport to core: the client of req gave up. A request still waiting
 * its turn ends at once (finish runs); a running handler is told: its
 * next aioc_rpc_yield() returns AIOC_EGENEXIT, and it is cancelled if it
 * waits on something else. */
AIOC_HIDDEN void aioc__rpc_request_abandon(aioc_rpc_request *req);

/* Transport to core: a reply message for call (ownership passes). wait:
 * called from a task that may wait for room in the window. Returns 0,
 * AIOC_EGENEXIT (the call is closed: msg was freed) or -ECANCELED (the
 * waiting task was cancelled: msg was freed). */
AIOC_HIDDEN int aioc__rpc_call_deliver(aioc__rpc_call *call,
                                       aioc_rpc_chunk *msg, bool wait);

#endif
