/* A small HTTP/1.1 server on aioc's own streams, for the tests and the
 * demo: it runs in the calling process, on the loop of the task that
 * starts it, listens on loopback only and can misbehave on request
 * (stall, drip, close mid-body, reset). It is a test fixture, not a
 * product: it parses a request line and the headers it needs
 * (Content-Length, Transfer-Encoding: chunked, Connection, Expect,
 * Content-Type), keeps connections alive (HTTP/1.1; HTTP/1.0 with
 * "Connection: keep-alive"), answers "Expect: 100-continue", and sends
 * Date and Server on every response.
 *
 * Routes (MS in milliseconds; "?delay=MS" waits before answering):
 *
 *   /bytes/N            N bytes, byte i being httpd_byte(i)
 *   /delay/MS           after MS ms: {"delay": MS} (application/json)
 *   /drip/N/MS          chunked: N chunks of 1 KiB, the first at once,
 *                       then one every MS ms (bytes as /bytes/N*1024)
 *   /stall/N/MS         Content-Length T (?total=T, default 2N): N bytes,
 *                       a stall of MS ms, the other T - N bytes
 *   /close-mid-body     Content-Length 1000, then 100 bytes and a close
 *   /reset              headers announcing 1000 bytes, 20 ms later a
 *                       reset (SO_LINGER 0) instead of the body
 *   /close              "ok", with Connection: close, then a close
 *   /close-after/MS     "ok" on a kept-alive connection, which the
 *                       server closes MS ms later (a request sent
 *                       meanwhile is not answered)
 *   /json/ip            {"ip": "<ip>"}, ipify's answer (?delay=MS)
 *   /json/query         {"query": "<ip>"}, ip-api's answer (?delay=MS)
 *   /events             a small JSON array, like GitHub's events
 *                       (?delay=MS)
 *   /redirect-loop      302 to itself
 *   /echo               the request's body, with its Content-Type
 *                       (application/octet-stream without one)
 *   /headers            the request's head (request line and headers),
 *                       text/plain
 *   /cookie?NAME=VALUE  sets the cookie NAME=VALUE (Path=/)
 *   /status/N           status N (200 to 599) with a short text body
 *                       (none for 204 and 304)
 *   anything else       404
 *
 * A target in absolute form (http://host:port/path, as a client sends it
 * to a proxy) is served by its path: the server is also a proxy to
 * itself. HEAD gets the headers of the same GET. While it waits (a delay, a
 * stall, between drips), the server keeps reading its socket: a client
 * that closes the connection (end of file or reset) is noticed at once,
 * the response is counted as aborted and the connection closed. A request
 * head over 16 KiB gets 431, a body over 16 MiB 413, a malformed request
 * 400; each closes the connection. */
#ifndef AIOC_TEST_HTTPD_H
#define AIOC_TEST_HTTPD_H

#include <aioc.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct httpd httpd;

/* Options; zero means the default. */
typedef struct httpd_options {
  const char *host;    /* address to listen on (NULL: "127.0.0.1") */
  int port;            /* 0: a free port (httpd_port() tells which) */
  double idle_timeout; /* seconds a connection may wait for (the rest of)
                          a request, and a write for the client (0: 30) */
  const char *ip;      /* the address /json/ip and /json/query answer
                          (NULL: "127.0.0.1") */
  double date_base;    /* non-zero: the Date header's clock reads this
                          Unix time at httpd_start() and runs with the
                          loop's clock (a fake server clock); 0: the
                          system's clock */
  int verbose;         /* non-zero: a line per request on stderr */
} httpd_options;

/* What the server did so far. */
typedef struct httpd_stats {
  unsigned long connections; /* accepted */
  unsigned long open;        /* connections being served now */
  unsigned long requests;    /* request heads read and answered */
  unsigned long completed;   /* responses sent in full (as the route
                                meant: /close-mid-body's 100 bytes are) */
  unsigned long aborted;     /* responses cut short: the client closed
                                or reset the connection, a write failed
                                or timed out, or the server was closed */
} httpd_stats;

/* Listens on opts->host (default 127.0.0.1) and serves on the running
 * loop (or the thread's current loop) from the next time it runs.
 * opts may be NULL. Returns 0 with *out, or the codes of
 * aioc_start_server() (-EADDRINUSE...), -EINVAL, -ENOMEM. */
int httpd_start(httpd **out, const httpd_options *opts);

/* The port it listens on. */
int httpd_port(const httpd *h);

/* The counters so far into *st. */
void httpd_get_stats(const httpd *h, httpd_stats *st);

/* Shorthand for the number of requests answered so far. */
unsigned long httpd_requests(const httpd *h);

/* Suspension point: stops accepting, cancels the connections in progress
 * and waits for their handlers to end (at most timeout seconds). Returns
 * 0, -ETIMEDOUT, -ECANCELED, AIOC_ENOTASK, -EINVAL. A second call waits
 * again. */
int httpd_close(httpd *h, double timeout);

/* Frees the server; closes it first if httpd_close() did not. Handlers
 * still running finish on their own (the memory they use stays until
 * then). NULL is harmless. */
void httpd_free(httpd *h);

/* Byte i of the bodies of /bytes, /drip and /stall (and of nginx.sh's
 * /1k, /64k and /1m): 'a' + i % 26. */
static inline char httpd_byte(unsigned long long i) {
  return (char)('a' + i % 26);
}

#ifdef __cplusplus
}
#endif
#endif /* AIOC_TEST_HTTPD_H */
