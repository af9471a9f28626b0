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
 * start. The same servers and clients run over other transports without
 * change.
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
 * harmless. */
AIOC_API void aioc_rpc_transport_free(aioc_rpc_transport *tr);

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
 * shut down before the end), -ECANCELED. Returns 0, -EINVAL (method not
 * 1 to 255 bytes, payload NULL with len > 0, bad options), -ENOMEM. */
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
