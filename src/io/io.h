/* I/O layer internals: the per-fd state every waiter, callback, stream and
 * server of a loop shares, and the address helpers. */
#ifndef AIOC_IO_INTERNAL_H
#define AIOC_IO_INTERNAL_H

#include <sys/epoll.h>
#include <sys/socket.h>

#include "../task/task.h"

enum { AIOC__RD = 0, AIOC__WR = 1 };

/* What readiness means for each direction: a hang-up or an error wakes
 * both, since the next operation reports it. */
#define AIOC__RD_EVENTS (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)
#define AIOC__WR_EVENTS (EPOLLOUT | EPOLLHUP | EPOLLERR)

typedef struct aioc__iofd aioc__iofd;

/* An owner of an fd (a stream, a server's listening socket): told of every
 * event before the waiters are woken (false: it released io meanwhile),
 * and of the loop's close. */
typedef struct aioc__iofd_ops {
  bool (*event)(aioc__iofd *io, uint32_t events);
  void (*dropped)(aioc__iofd *io); /* the loop closed: io is going away */
} aioc__iofd_ops;

/* The state of one fd the loop watches, the argument of its poller
 * registration. Without callbacks it is registered once, edge-triggered,
 * for both directions (no epoll_ctl per wait), and `ready` remembers what
 * the poller reported since the owner last found the fd dry (EAGAIN). With
 * a callback (asyncio's add_reader) it is level-triggered, for the
 * directions that have a callback or a waiter. */
struct aioc__iofd {
  aioc_loop *loop;
  int fd;
  uint32_t ready;  /* edge-triggered: events seen, cleared on EAGAIN */
  uint32_t reg;    /* the events registered now */
  aioc__list waiters[2]; /* aioc__iowait, per direction */
  aioc_fd_fn cb[2];
  void *cbarg[2];
  const aioc__iofd_ops *ops; /* owned by a stream or a server, or NULL */
  void *owner;
};

/* A task waiting on an fd: the one timed wait, queued on io->waiters. */
typedef struct aioc__iowait {
  aioc__twait tw;
  aioc__list link;
  aioc__iofd *io; /* NULL once the fd was forgotten or dropped */
} aioc__iowait;

/* The state of fd on loop, created (and registered) if missing. Returns 0
 * with *out, -EBUSY (registered by another layer), -EBADF, -EPERM,
 * -ENOMEM. */
AIOC_HIDDEN int aioc__iofd_get(aioc_loop *loop, int fd, aioc__iofd **out);

/* Forgets io: its waiters are woken with rc, it leaves the poller and is
 * freed. The fd stays open. */
AIOC_HIDDEN void aioc__iofd_release(aioc__iofd *io, int rc);

/* Parks task t on io for direction dir until the poller reports it ready,
 * deadline passes (-ETIMEDOUT), or t is interrupted. Checks cancellation
 * and the deadlines in scope first. Returns the wake code. */
AIOC_HIDDEN int aioc__iofd_wait(aioc__iofd *io, aioc_task *t, int dir,
                                int64_t deadline);

/* Wakes every task waiting on io in direction dir with rc. */
AIOC_HIDDEN void aioc__iofd_wake(aioc__iofd *io, int dir, int rc);

/* The deadline (loop ns) of a wait of timeout seconds from now. */
static inline int64_t aioc__io_deadline(aioc_loop *loop, double timeout) {
  return timeout == AIOC_FOREVER ? AIOC__NEVER
                                 : aioc__deadline_after(loop, timeout);
}

static inline bool aioc__io_bad_timeout(double timeout) {
  return !(timeout >= 0);
}

/* The loop a per-loop service (the resolver, the HTTP client) works on:
 * loop, or if NULL the running loop, else the thread's current one. NULL
 * with *rc: -ENOMEM (no implicit loop could be made), -EINVAL (not a
 * live loop), AIOC_ECLOSED. fn names the caller for the armor check. */
static inline aioc_loop *aioc__io_pick_loop(aioc_loop *loop, const char *fn,
                                            int *rc) {
  (void)fn; /* for the armor check */
  if (!loop) loop = aioc__running ? aioc__running : aioc_loop_current();
  *rc = !loop ? -ENOMEM
        : !AIOC__LOOP_OK(loop, fn) ? -EINVAL
        : loop->closed ? AIOC_ECLOSED
                       : 0;
  return *rc ? NULL : loop;
}

/* The loop streams and servers made outside a task belong to. */
AIOC_HIDDEN aioc_loop *aioc__io_loop(void);

/* ---- addresses (addr.c) ---- */

/* A list of socket addresses to try in order. */
typedef struct aioc__addrs {
  struct sockaddr_storage *v;
  socklen_t *len;
  size_t n;
} aioc__addrs;

/* The addresses of a numeric host (or "localhost") and port, in the order
 * to try them, without waiting. passive: for a server (host NULL: every
 * IPv4 and IPv6 address). Returns 0 with *out (free it with
 * aioc__addrs_free), -EINVAL (a name: see below), -ENOMEM. */
AIOC_HIDDEN int aioc__resolve(const char *host, int port, bool passive,
                              aioc__addrs *out);

/* The addresses of a name, looked up on the loop (aioc_getaddrinfo())
 * before deadline (loop ns, AIOC__NEVER: none), in the order Happy
 * Eyeballs tries them: the resolver's, the two families interleaved
 * (RFC 8305, section 4). A suspension point. Returns 0 with *out, or the
 * lookup's error. */
AIOC_HIDDEN int aioc__resolve_name(const char *host, int port,
                                   int64_t deadline, aioc_loop *loop,
                                   aioc__addrs *out);
AIOC_HIDDEN void aioc__addrs_free(aioc__addrs *a);

/* A Unix socket address for path ('@': abstract). Returns 0, -EINVAL,
 * -ENAMETOOLONG. */
AIOC_HIDDEN int aioc__unix_addr(const char *path, struct sockaddr_storage *ss,
                                socklen_t *len);

/* A non-blocking, close-on-exec stream socket of family af: fd, or a
 * negative code. */
AIOC_HIDDEN int aioc__socket(int af);

/* ---- streams (stream.c), for the server and the iterators ---- */

/* A stream of connected socket fd on loop (the stream owns fd on
 * success). Returns 0, -EINVAL, -EBADF, -ENOMEM. */
AIOC_HIDDEN int aioc__stream_new(aioc_stream **out, aioc_loop *loop, int fd,
                                 const aioc_stream_options *o);

/* A stream of the server's connection: the server is told when the
 * handler frees it (conn != NULL). */
AIOC_HIDDEN void aioc__stream_set_conn(aioc_stream *s, void **conn_slot);

/* The core of readline and of the lines iterator: the next line (ending
 * with "\n", or the rest at end of file; *len 0 at the end) stays in the
 * stream's buffer, *line pointing at it, until the caller consumes it
 * with aioc__stream_consume(). A line longer than cap: -EMSGSIZE, and it
 * is skipped. The core of the chunks iterator: up to max buffered bytes
 * (reading once if none), *len 0 at the end. Both return 0 or the codes
 * of aioc_stream_read(). */
AIOC_HIDDEN int aioc__stream_line(aioc_stream *s, size_t cap, double timeout,
                                  const char **line, size_t *len);
AIOC_HIDDEN int aioc__stream_chunk(aioc_stream *s, size_t max, double timeout,
                                   const char **data, size_t *len);
AIOC_HIDDEN void aioc__stream_consume(aioc_stream *s, size_t n);
AIOC_HIDDEN size_t aioc__stream_limit(const aioc_stream *s);
/* An iterator owns s now (a server leaves it alone). */
AIOC_HIDDEN void aioc__stream_set_iter_owned(aioc_stream *s);
AIOC_HIDDEN bool aioc__stream_is_iter_owned(const aioc_stream *s);


/* ---- transports (stream.c; tls.c is one) ----
 *
 * A stream's bytes go through its socket, or through a transport that
 * sits between the stream's buffers and the socket (TLS): the stream
 * keeps its read buffer, its write buffer and flow control, and calls the
 * transport where it would call recv(), send() and shutdown(). A
 * transport does its own socket I/O on aioc__stream_iofd(), clearing the
 * direction's `ready` bit when the socket says EAGAIN, as the stream
 * does. */
typedef struct aioc__transport_ops {
  /* Up to cap bytes into buf: the count (> 0), 0 at the end of the data,
   * -EAGAIN (wait until the socket is readable), or an error. */
  ssize_t (*recv)(void *tp, void *buf, size_t cap);
  /* Takes up to n of the bytes at p: the count (> 0), -EAGAIN (wait until
   * the socket is writable; the same bytes come again, maybe more), or an
   * error. */
  ssize_t (*send)(void *tp, const void *p, size_t n);
  /* Sends what the transport holds: 0 (nothing left), -EAGAIN, or an
   * error. */
  int (*flush)(void *tp);
  /* Ends the data (TLS: close_notify), then flushes: as flush. */
  int (*shutdown)(void *tp);
  /* Does it hold bytes to send? May a recv() return data while the
   * socket has none? */
  bool (*pending)(void *tp);
  bool (*readable)(void *tp);
  void (*free)(void *tp);
} aioc__transport_ops;

/* Puts a transport under s (s frees it with tp->free). */
AIOC_HIDDEN void aioc__stream_set_transport(aioc_stream *s,
                                            const aioc__transport_ops *ops,
                                            void *tp);
/* The transport of s if its operations are ops, else NULL. */
AIOC_HIDDEN void *aioc__stream_transport(const aioc_stream *s,
                                         const aioc__transport_ops *ops);
/* Has s a transport (of any kind)? */
AIOC_HIDDEN bool aioc__stream_has_transport(const aioc_stream *s);
/* The state of the socket of s on its loop, NULL once closed. */
AIOC_HIDDEN aioc__iofd *aioc__stream_iofd(const aioc_stream *s);
/* Takes the reading side of s for a while (0, or AIOC_ECLOSED, -EBUSY),
 * and gives it back. */
AIOC_HIDDEN int aioc__stream_begin_read(aioc_stream *s);
AIOC_HIDDEN void aioc__stream_end_read(aioc_stream *s);
/* Waits from task t until the socket of s is ready in direction dir, or
 * deadline. 0, AIOC_ECLOSED (closed meanwhile), or the wait's code. */
AIOC_HIDDEN int aioc__stream_wait(aioc_stream *s, aioc_task *t, int dir,
                                  int64_t deadline);
/* Waits until the write buffer of s is empty: 0, the send error, or the
 * wait's code. */
AIOC_HIDDEN int aioc__stream_wait_sent(aioc_stream *s, aioc_task *t,
                                       int64_t deadline);
/* The bytes read and not yet consumed (consume them with
 * aioc__stream_consume()). */
AIOC_HIDDEN size_t aioc__stream_buffered(const aioc_stream *s,
                                         const char **data);
/* Sends what waits in the write buffer and the transport, now if the
 * socket takes it (after a handshake). */
AIOC_HIDDEN void aioc__stream_kick(aioc_stream *s);
/* Breaks s: every later read and write returns err. */
AIOC_HIDDEN void aioc__stream_fail(aioc_stream *s, int err);

/* A server's accepted connections go through fn(ctx, stream) before the
 * handler (a TLS handshake): a failure drops the connection quietly.
 * ctx_free releases ctx with the server. */
typedef int (*aioc__server_prep_fn)(void *ctx, aioc_stream *s);
AIOC_HIDDEN void aioc__server_set_prep(aioc_server *srv,
                                       aioc__server_prep_fn fn, void *ctx,
                                       void (*ctx_free)(void *));

#endif
