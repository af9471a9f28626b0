/* aioc/http.h: an HTTP client on libcurl, driven by the loop.
 *
 * Part of the public API; include <aioc.h> rather than this file.
 *
 * Everything of HTTP itself is libcurl's: parsing, TLS (certificates are
 * verified against the system's CA store by default), redirects,
 * keep-alive, HTTP/2 (negotiated over TLS by ALPN), proxies (the usual
 * environment variables; a session made while none of them is set uses
 * no proxy, whatever is set later), cookies. aioc drives libcurl's multi
 * interface from the loop: each loop has one curl multi handle, created
 * on first use and cleaned up when the loop closes; its sockets are
 * polled by the loop and its one timer is a loop timer, so a transfer ties
 * up no thread (libcurl may still run a short-lived thread for a name
 * lookup).
 *
 * Conventions (as everywhere in aioc):
 *
 *  - Every waiting call is a suspension point of a task (AIOC_ENOTASK
 *    from plain code) with a timeout in seconds as its last argument
 *    (AIOC_FOREVER: no limit; negative or NaN: -EINVAL). It honours the
 *    task's cancellation (-ECANCELED) and the deadlines in scope
 *    (-ETIMEDOUT). Giving up, for any of these reasons, removes the
 *    transfer from libcurl at once: its connection is closed, nothing of
 *    it is left behind.
 *  - A response with any status (404, 500...) is a success: the status is
 *    in the response, as with aiohttp's default. Failures are negative
 *    codes, with libcurl's own message in the task's error message
 *    (aioc_error_message()), prefixed with the URL:
 *      AIOC_ENONAME      the host name does not resolve
 *      -ECONNREFUSED     nobody listens (other connect failures: their
 *                        errno, -ENETUNREACH, -EHOSTUNREACH...)
 *      -ETIMEDOUT        a timeout of the options, or of the call
 *      -ECONNRESET       the connection was reset, or closed with nothing
 *                        received
 *      AIOC_EINCOMPLETE  the server closed before the whole body came
 *      -EMSGSIZE         the body is larger than max_body
 *      -ELOOP            more redirects than max_redirects
 *      AIOC_ETLS         TLS failed: a certificate that does not verify
 *                        (expired, self-signed, wrong host), a failed
 *                        handshake, a plaintext server on a TLS port
 *      -EINVAL           a malformed URL, an unsupported scheme, bad
 *                        options
 *      -EPROTO           the server broke the protocol
 *      -ENOMEM           out of memory
 *      -EIO              any other libcurl failure
 *  - A session, a response and a body iterator belong to the loop of the
 *    task that made them and are not thread-safe.
 *
 * Concurrency limits belong to aioc (a Pool, a Group's limit, a
 * Semaphore), not to libcurl's connection caps: time a transfer spends
 * queued inside libcurl counts against its timeouts. */
#ifndef AIOC_HTTP_H
#define AIOC_HTTP_H

#include "io.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Options -------------------------------------------------------------
 *
 * Zero means the default in every field; NULL options mean all defaults.
 * A request's options override its session's field by field (a field at
 * 0 takes the session's value). Strings are copied before the call
 * returns. */

/* The HTTP versions to ask for (libcurl's CURLOPT_HTTP_VERSION). */
typedef enum aioc_http_version {
  AIOC_HTTP_VERSION_DEFAULT = 0, /* HTTP/2 over TLS when the server offers
                                    it (ALPN), HTTP/1.1 otherwise */
  AIOC_HTTP_VERSION_1_0,
  AIOC_HTTP_VERSION_1_1,
  AIOC_HTTP_VERSION_2,           /* also over plain HTTP (upgrade) */
  AIOC_HTTP_VERSION_2_PRIOR,     /* plain HTTP/2, no upgrade */
} aioc_http_version;

/* A hook that sets libcurl options aioc has no field for; easy is the
 * transfer's CURL * (include <curl/curl.h> to use it). Called after
 * aioc's own options, on every transfer. Returns 0, or a negative code
 * that fails the request before it starts. It must not call libcurl's
 * multi functions, and options that replace aioc's callbacks
 * (CURLOPT_WRITEFUNCTION, CURLOPT_HEADERFUNCTION, CURLOPT_PRIVATE and
 * their data) break the transfer. */
typedef int (*aioc_http_setopt_fn)(void *arg, void *easy);

typedef struct aioc_http_options {
  /* The method: "GET" (the default, or "POST" when a body is set),
   * "HEAD", "PUT", "DELETE", "PATCH", ... */
  const char *method;
  /* Request headers, "Name: value" strings, NULL-terminated. They add to
   * the session's; "Name:" removes a header libcurl would send. */
  const char *const *headers;
  /* The request body (body_len bytes; copied). */
  const void *body;
  size_t body_len;
  /* Seconds to connect (0: 30 s). */
  double connect_timeout;
  /* Seconds for the whole transfer (0: no limit besides the call's). */
  double timeout;
  /* Seconds the transfer may go without receiving a byte before it fails
   * with -ETIMEDOUT (0: no limit): seed 000's timeout between items,
   * applied to a body that stalls. While the consumer of a body iterator
   * is behind (flow control), the clock is stopped. */
  double between;
  /* The largest body accepted, in bytes (0: no limit): a larger one
   * fails with -EMSGSIZE as soon as it is known to be larger. */
  size_t max_body;
  /* Redirects followed (0: up to 10; a negative value: none, the 3xx
   * response is returned as it is). */
  int max_redirects;
  /* Certificates: a CA bundle to verify servers against instead of the
   * system's store (PEM file). */
  const char *ca_file;
  /* Non-zero: do not verify the server's certificate nor its host name
   * (for tests only). */
  int insecure;
  aioc_http_version version;
  /* Non-zero: offer every content encoding libcurl supports (gzip,
   * deflate, brotli, zstd) and decompress the body (libcurl's default,
   * kept at 0, asks for none). */
  int compressed;
  /* Body iterators: the most bytes buffered for a consumer that is
   * behind before the transfer is paused (0: 256 KiB). */
  size_t buffer;
  aioc_http_setopt_fn setopt;
  void *setopt_arg;
} aioc_http_options;

/* ---- Sessions ------------------------------------------------------------
 *
 * aiohttp's ClientSession: shared defaults (headers, timeouts, the CA
 * file...) and a cookie jar (cookies set by responses go with the
 * session's later requests). Connections are kept alive and reused by
 * every request of the loop (libcurl's connection cache belongs to the
 * loop's multi handle). The NULL session is the loop's default one,
 * made on first use, with default options and its own cookie jar. */

typedef struct aioc_http_session aioc_http_session;

/* A session on loop (NULL: the running loop, else the thread's current
 * loop) with defaults opts (copied; NULL: all defaults; body, method and
 * setopt are per request and ignored here, setopt is kept). Returns 0,
 * -EINVAL, -ENOMEM, AIOC_ECLOSED. */
AIOC_API AIOC_NODISCARD int
aioc_http_session_new(aioc_http_session **out, aioc_loop *loop,
                      const aioc_http_options *opts);

/* Releases the caller's session. Requests still running keep it until
 * they end; later requests may not use it. NULL is ignored. */
AIOC_API void aioc_http_session_free(aioc_http_session *s);

/* ---- Responses ------------------------------------------------------- */

typedef struct aioc_http_header {
  const char *name;  /* as the server sent it */
  const char *value; /* without surrounding blanks */
} aioc_http_header;

/* A response, read-only. Its strings live as long as it does. */
typedef struct aioc_http_response {
  int status;              /* 200, 404... (of the last response when
                              redirects were followed) */
  int version;             /* 10, 11, 20 or 30: HTTP/1.0 ... HTTP/3 */
  const char *url;         /* the URL it came from, after redirects */
  const aioc_http_header *headers; /* of the last response, in order */
  size_t nheaders;
  /* The body, NUL-terminated (the terminator is not counted); empty
   * (never NULL) for a HEAD request and in the response of
   * aioc_http_open(). */
  const char *body;
  size_t body_len;
} aioc_http_response;

/* The value of the response's header name (case-insensitive; the last one
 * when repeated), or NULL. */
AIOC_API const char *aioc_http_header_get(const aioc_http_response *r,
                                          const char *name);

/* Frees a response. NULL is ignored. */
AIOC_API void aioc_http_response_free(aioc_http_response *r);

/* ---- Requests ------------------------------------------------------------ */

/* Suspension point: performs one request with session s (NULL: the
 * loop's default session) and the whole body in memory. Returns 0 with
 * *out (free it with aioc_http_response_free()), or a code of the list
 * above with *out NULL. */
AIOC_API AIOC_NODISCARD int aioc_http_request(aioc_http_session *s,
                                              aioc_http_response **out,
                                              const char *url,
                                              const aioc_http_options *opts,
                                              double timeout);

/* Suspension point: GET url. */
AIOC_API AIOC_NODISCARD int aioc_http_get(aioc_http_session *s,
                                          aioc_http_response **out,
                                          const char *url, double timeout);

/* Suspension point: POST json (a NUL-terminated JSON text, sent as it is
 * with "Content-Type: application/json"). aioc does not parse JSON:
 * give the response's body to a JSON library (jansson, cJSON). */
AIOC_API AIOC_NODISCARD int aioc_http_post_json(aioc_http_session *s,
                                                aioc_http_response **out,
                                                const char *url,
                                                const char *json,
                                                double timeout);

/* Suspension point: starts a request and returns once the final
 * response's status and headers are in (*resp, with an empty body), with
 * the body as an iterator of chunks (*body): items are const aioc_bytes *
 * (borrowed, valid until the next call on the iterator), in order, until
 * AIOC_EXHAUSTED once the whole body came; then a transfer error is the
 * code of next() (the chunks that came before it were all given). The
 * iterator's next() timeout is a timeout between chunks that loses
 * nothing: after -ETIMEDOUT the transfer goes on and the next call
 * returns the late chunk (aioc_iter_timed() adds first-item and total
 * limits). The transfer is paused while more than opts->buffer bytes
 * wait for the consumer, so memory stays bounded however slow it is.
 * Closing or freeing the iterator before the end removes the transfer.
 * timeout bounds the wait for the headers only. Returns 0, or a code of
 * the list above (nothing to free then). */
AIOC_API AIOC_NODISCARD int aioc_http_open(aioc_http_session *s,
                                           aioc_http_response **resp,
                                           aioc_iter **body, const char *url,
                                           const aioc_http_options *opts,
                                           double timeout);

/* Counters of loop's multi handle (NULL: the running or current loop):
 * transfers started, transfers under way, and connections libcurl
 * opened (a request served over a kept-alive connection opens none).
 * Returns 0, or AIOC_ECLOSED. */
AIOC_API int aioc_http_stats(aioc_loop *loop, size_t *started,
                             size_t *running, size_t *connections);

#ifdef __cplusplus
}
#endif

#endif
