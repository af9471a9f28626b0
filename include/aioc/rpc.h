/* aioc/rpc.h: streaming RPC with a timeout between chunks.
 *
 * A worker (aioc_rpc_server) registers handlers by method name. A handler
 * is a generator body: it reads the request's payload and yields response
 * chunks with aioc_rpc_yield(). A client (aioc_rpc_client) calls a method
 * with a payload and reads the response as an aioc_iter of chunks, so the
 * timeout of each next() is the time allowed between two chunks, and the
 * call's options add limits on the first chunk and on the whole response
 * (aioc_timed_options). A unary call is the one-chunk case of the same
 * API (aioc_rpc_call_unary()).
 *
 * Requests and chunks travel through a transport. The local transport
 * (aioc_rpc_local_new()) carries them inside the process, between a
 * server and clients on the same loop: nothing to install, nothing to
 * start. The AMQP transport (aioc_rpc_amqp_new()) carries them through
 * a RabbitMQ broker, between processes and machines. The same servers and
 * clients run over either without change.
 *
 * The delivery rules, whatever the transport:
 *   - every chunk of a response reaches the client once, in order; the
 *     end of the response (the handler returned 0) is AIOC_EXHAUSTED, a
 *     handler's error is its negative code, with its aioc_error()
 *     message;
 *   - a timeout between chunks loses nothing: the call goes on, and the
 *     next next() may still get the late chunk;
 *   - a client that gives up (closes or frees the iterator before the
 *     end, or whose task is cancelled and then closes it) tells the
 *     worker: the handler's pending or next aioc_rpc_yield() returns
 *     AIOC_EGENEXIT (its generator is closed), or the handler is
 *     cancelled if it waits on something else;
 *   - a request whose expiry passed before a worker took it is not
 *     handled: the client gets -ETIMEDOUT;
 *   - a server handles at most `prefetch` requests at once; the others
 *     wait their turn in arrival order;
 *   - a handler's chunks wait for a slow client: at most `window` chunks
 *     of a call are buffered on the client's side, and aioc_rpc_yield()
 *     waits for room (memory stays bounded). */
#ifndef AIOC_RPC_H
#define AIOC_RPC_H

#include "gen.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct aioc_rpc_transport aioc_rpc_transport;
typedef struct aioc_rpc_server aioc_rpc_server;
typedef struct aioc_rpc_client aioc_rpc_client;
typedef struct aioc_rpc_request aioc_rpc_request;

/* ---- Chunks ------------------------------------------------------------- */

/* One chunk of a response, as the response iterator yields it. The
 * consumer owns it: free it with aioc_rpc_chunk_free(). */
typedef struct aioc_rpc_chunk {
  size_t len;     /* bytes in data */
  uint32_t seq;   /* its place in the response: 0, 1, 2... */
  int32_t kind_;  /* reserved for the library */
  char data[];    /* len bytes, followed by a NUL not counted in len */
} aioc_rpc_chunk;

/* Frees a chunk (NULL is harmless). Also an aioc_free_fn. */
AIOC_API void aioc_rpc_chunk_free(void *chunk);

/* ---- Transports --------------------------------------------------------- */

/* Creates the local transport: servers and clients of the thread's
 * current loop that use it reach each other directly. The caller owns it;
 * it must outlive the servers and clients made on it. Returns 0, -EINVAL
 * (out NULL), -ENOMEM or AIOC_ECLOSED. */
AIOC_API AIOC_NODISCARD int aioc_rpc_local_new(aioc_rpc_transport **out);

/* Frees a transport whose servers and clients are freed. NULL is
 * harmless. An AMQP transport closes its connection and, inside a task
 * or from plain code, waits for its connection task to end (briefly, not
 * on the network, and not interrupted by a cancellation); from a
 * callback it leaves that task to free it. */
AIOC_API void aioc_rpc_transport_free(aioc_rpc_transport *tr);

/* The AMQP transport: servers and clients in any number of processes and
 * machines meet through a RabbitMQ broker (AMQP 0-9-1). A request queue
 * per method, replies through direct reply-to; docs/rpc-wire.md gives
 * the wire format. The loop owns the socket (rabbitmq-c only encodes and
 * decodes frames): nothing here blocks the loop. */
typedef struct aioc_rpc_amqp_options {
  const char *prefix; /* names of queues and exchanges start with it
                         (NULL: "aioc.rpc."); workers and clients that
                         meet must use the same */
  double heartbeat;   /* seconds between heartbeats asked of the broker
                         (0: 10; the broker's value wins if lower); the
                         connection is declared lost after two missed */
  double connect_timeout; /* a connection attempt, handshake and setup
                             included (0: 10 s) */
  size_t max_buffer;  /* bytes waiting to be written before publishers
                         wait (0: 4 MiB) */
  int unconfirmed_requests; /* 0: requests are published with publisher
                               confirms, and one the broker refuses
                               (basic.nack: a queue's reject-publish
                               overflow policy, a queue's failure) ends
                               its call with -EIO. 1: without: the broker
                               writes no confirm per request (about a
                               quarter of its system calls per call at
                               one call in flight), and a refused request
                               is not seen: its call ends by its limits
                               or expiry. A request that no queue takes
                               comes back either way (-ENOENT). */
} aioc_rpc_amqp_options;

/* Creates an AMQP transport connected to the broker at url
 * ("amqp://user:password@host:port/vhost", user, password and vhost
 * percent-decoded, defaults guest, guest, 5672, "/"; host a numeric IPv4
 * or IPv6 address, or localhost: a name to resolve is refused, as
 * resolving would block). A suspension point: it waits for the first
 * connection (within opts->connect_timeout), so that a wrong address or
 * credentials fail here. From then on the transport keeps its connection:
 * when it is lost (the broker stopped, restarted, missed heartbeats), the
 * calls in flight end with -ECONNRESET, the requests held by its servers
 * go back to the broker (another worker gets them), and it reconnects in
 * the background (backoff from 0.1 s to 2 s), declaring its queues and
 * consumers again; meanwhile aioc_rpc_call() fails with -ENOTCONN. The
 * caller owns it: free it with aioc_rpc_transport_free() after its
 * servers and clients. Returns 0, -EINVAL (out or url NULL, a malformed
 * url, a name as host, a prefix over 200 bytes, bad options), -ENOMEM,
 * -ECONNREFUSED and the other errors of connect(), -ETIMEDOUT (no
 * connection within the timeout), -EACCES (the broker refused the
 * credentials or the vhost), -EPROTO (the broker answered out of the
 * protocol), -ECANCELED, AIOC_ERUNNING (from a callback), AIOC_ECLOSED,
 * or -ENOSYS (aioc was built without rabbitmq-c). */
AIOC_API AIOC_NODISCARD int aioc_rpc_amqp_new(aioc_rpc_transport **out,
                                              const char *url,
                                              const aioc_rpc_amqp_options *opts);

/* Counters of an AMQP transport. */
typedef struct aioc_rpc_amqp_counters {
  uint64_t replies_dropped;   /* replies for no call of this transport
                                 (unknown correlation id, a call given
                                 up, or malformed) */
  uint64_t requests_rejected; /* malformed requests sent to the
                                 dead-letter queue */
  uint64_t replies_nacked;    /* replies the broker refused (confirms) */
  uint64_t connections;       /* connections made (1 + reconnections) */
  uint64_t blocked;           /* times the broker blocked publishers */
  int connected;              /* the connection is up now */
  int is_blocked;             /* the broker blocks publishers now */
  int serving;                /* servers whose consumers are set up on the
                                 connection now */
} aioc_rpc_amqp_counters;

/* Copies tr's counters into *out. Returns 0, or -EINVAL (NULL, or not an
 * AMQP transport). */
AIOC_API int aioc_rpc_amqp_stats(const aioc_rpc_transport *tr,
                                 aioc_rpc_amqp_counters *out);

/* ---- Servers (workers) -------------------------------------------------- */

/* A handler: runs as the body of a generator, one per request. It reads
 * the request (aioc_rpc_request_payload()), yields chunks with
 * aioc_rpc_yield() and returns 0 at the end of the response, or a
 * negative code (with an aioc_error() message) that the client receives
 * after the chunks already yielded. It may await anything. */
typedef int (*aioc_rpc_handler)(void *arg, aioc_rpc_request *req);

typedef struct aioc_rpc_server_options {
  size_t prefetch;   /* requests handled at once (0: 16) */
  size_t stack_size; /* handlers' stack size (0: the loop's default) */
} aioc_rpc_server_options;

/* Creates a server on transport tr (NULL opts: defaults). It takes no
 * request before aioc_rpc_server_start(). The caller owns it: free it with
 * aioc_rpc_server_free(). Returns 0, -EINVAL, -ENOMEM. */
AIOC_API AIOC_NODISCARD int
aioc_rpc_server_new(aioc_rpc_server **out, aioc_rpc_transport *tr,
                    const aioc_rpc_server_options *opts);

/* Registers fn for requests to method (copied; 1 to 255 bytes, no NUL).
 * Returns 0, -EINVAL, -EEXIST (already registered on this server),
 * -ENOMEM, or AIOC_ESTATE (the server has started). */
AIOC_API AIOC_NODISCARD int aioc_rpc_server_register(aioc_rpc_server *s,
                                                     const char *method,
                                                     aioc_rpc_handler fn,
                                                     void *arg);

/* Starts taking requests for the registered methods. On the local
 * transport one server at a time serves a method: -EADDRINUSE when
 * another does. Returns 0, -EINVAL, AIOC_ESTATE (started already, or shut
 * down), -EADDRINUSE, -ENOMEM. */
AIOC_API AIOC_NODISCARD int aioc_rpc_server_start(aioc_rpc_server *s);

/* Graceful stop (asyncio's Server.close() then wait_closed()): takes no
 * new request, lets the handlers at work finish within timeout seconds
 * (AIOC_FOREVER: no limit), then closes those left (their clients get
 * -ESHUTDOWN), and fails the requests still waiting their turn with
 * -ESHUTDOWN. Suspension point of a task of the server's loop, or plain
 * code (the loop runs). Returns 0 (everything finished in time),
 * -ETIMEDOUT (some handlers had to be closed), -ECANCELED (the waiting
 * task was cancelled: the handlers are closed all the same), AIOC_ENOTASK
 * / AIOC_ERUNNING from a callback, -EINVAL. Calling it again returns 0. */
AIOC_API AIOC_NODISCARD int aioc_rpc_server_shutdown(aioc_rpc_server *s,
                                                     double timeout);

/* How many requests the server has handled to their end, and how many are
 * at work now. Either pointer may be NULL. Returns 0 or -EINVAL. */
AIOC_API int aioc_rpc_server_stats(const aioc_rpc_server *s, size_t *handled,
                                   size_t *active);

/* Shuts down (closing the handlers at work at once) and frees the server.
 * NULL is harmless. */
AIOC_API void aioc_rpc_server_free(aioc_rpc_server *s);

/* ---- Inside a handler --------------------------------------------------- */

/* The request's method name and payload (len bytes, followed by a NUL not
 * counted), valid while the handler runs. len may be NULL. */
AIOC_API const char *aioc_rpc_request_method(const aioc_rpc_request *req);
AIOC_API const void *aioc_rpc_request_payload(const aioc_rpc_request *req,
                                              size_t *len);

/* Yields one chunk (a copy of len bytes of data) to the client, from the
 * request's handler. A suspension point: it waits while the client's
 * window is full. Returns 0 once the chunk is on its way, AIOC_EGENEXIT
 * (the client gave up or the server is shutting down: return at once,
 * cleanup allowed, no more yields), -ECANCELED, -ENOMEM (nothing sent:
 * the handler may retry or fail), -EINVAL (not called from req's handler,
 * or data NULL with len > 0). */
AIOC_API AIOC_NODISCARD int aioc_rpc_yield(aioc_rpc_request *req,
                                           const void *data, size_t len);

/* ---- Clients ------------------------------------------------------------ */

typedef struct aioc_rpc_client_options {
  size_t window; /* chunks buffered per call before the handler waits
                    (0: 64) */
} aioc_rpc_client_options;

/* Creates a client on transport tr (NULL opts: defaults). The caller owns
 * it: free it with aioc_rpc_client_free() after the calls' iterators.
 * Returns 0, -EINVAL, -ENOMEM. */
AIOC_API AIOC_NODISCARD int
aioc_rpc_client_new(aioc_rpc_client **out, aioc_rpc_transport *tr,
                    const aioc_rpc_client_options *opts);

typedef struct aioc_rpc_call_options {
  double expiry; /* the request is dropped if no worker takes it within
                    expiry seconds (0: never) */
  aioc_timed_options limits; /* first chunk, between chunks, whole
                                response (0 each: no limit) */
} aioc_rpc_call_options;

/* Calls method with a copy of payload (len bytes; NULL with 0) and gives
 * the response as an iterator of aioc_rpc_chunk items (NULL opts: no
 * limits). The request is on its way when this returns; the caller owns
 * *out (freeing it before the end tells the worker to stop). next(it,
 * &chunk, timeout) returns 0 with a chunk, AIOC_EXHAUSTED at the end of
 * the response, the handler's error code (with its message), -ETIMEDOUT
 * (the chunk is late: nothing is lost; with opts->limits as
 * aioc_iter_timed() says; the expiry passed before a worker took the
 * request), -ENOENT (no server serves method), -ESHUTDOWN (the server
 * shut down before the end), -ECONNRESET (the transport lost its
 * connection to the broker before the end), -ECANCELED. Returns 0,
 * -EINVAL (method not 1 to 255 bytes, or too long for the transport's
 * names, payload NULL with len > 0, bad options), -ENOMEM, -ENOTCONN
 * (the transport is not connected now), -EAGAIN (the broker blocks
 * publishers, or the transport's write buffer is full: the call fails at
 * once rather than wait; try again later). */
AIOC_API AIOC_NODISCARD int
aioc_rpc_call(aioc_iter **out, aioc_rpc_client *c, const char *method,
              const void *payload, size_t len,
              const aioc_rpc_call_options *opts);

/* A unary call: the response's first chunk, within timeout seconds for
 * the whole call (AIOC_FOREVER: no limit); any further chunk is dropped
 * and the worker told to stop. A suspension point. Returns 0 with
 * *reply (the caller frees it with aioc_rpc_chunk_free()), or the codes
 * of aioc_rpc_call() and of its iterator's next (AIOC_EXHAUSTED: the
 * handler yielded nothing). */
AIOC_API AIOC_NODISCARD int
aioc_rpc_call_unary(aioc_rpc_client *c, const char *method,
                    const void *payload, size_t len, aioc_rpc_chunk **reply,
                    double timeout);

/* Frees the client (its calls' iterators must be freed first). NULL is
 * harmless. */
AIOC_API void aioc_rpc_client_free(aioc_rpc_client *c);

#ifdef __cplusplus
}
#endif

#endif /* AIOC_RPC_H */
