/* aioc/io.h: fd readiness, TCP and Unix stream sockets, streams, servers.
 *
 * Part of the public API; include <aioc.h> rather than this file.
 *
 * Conventions of this part (as everywhere in aioc):
 *
 *  - Every waiting call is a suspension point with a timeout in seconds as
 *    its last argument (AIOC_FOREVER: no limit; 0: do not wait; negative
 *    or NaN: -EINVAL). It honours the task's cancellation (-ECANCELED) and
 *    the deadlines in scope (-ETIMEDOUT), and returns -ENOMEM without
 *    waiting when the timer of a finite timeout cannot be armed. A call
 *    that can complete at once does so without suspending and without
 *    looking at cancellation; one that must wait needs a task
 *    (AIOC_ENOTASK otherwise).
 *  - Failures of the system are their errno values, negated:
 *    -ECONNREFUSED, -ECONNRESET, -EPIPE, -ETIMEDOUT, -EMFILE, ...
 *  - No call ever raises SIGPIPE: sockets are written with MSG_NOSIGNAL.
 *    Sockets are created non-blocking and close-on-exec.
 *  - A stream, a server and the fd registrations belong to the loop of the
 *    task (or the thread) that created them and are not thread-safe. */
#ifndef AIOC_IO_H
#define AIOC_IO_H

#include "gen.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- fd readiness ------------------------------------------------------
 *
 * For libraries that do their own I/O on their own fds (libcurl, libpq,
 * rabbitmq-c...): wait from a task until an fd is readable or writable,
 * or have a callback run while it is (asyncio's add_reader/add_writer).
 *
 * Level-triggered. aioc_wait_readable() returns at once if the fd is
 * readable now (then it does not suspend), otherwise when it becomes so;
 * a reader callback runs at every iteration of the loop while the fd is
 * readable (the same for writable). "Readable" includes end of file, a
 * hang-up and a pending error: the next read says which.
 *
 * Several waiters on one fd: any number of tasks may wait on one fd, in
 * either direction; readiness wakes every waiter of that direction (each
 * then tries its operation, and whoever finds nothing waits again). An fd
 * has at most one reader callback and one writer callback; adding one
 * replaces the previous one.
 *
 * An fd stays registered with the loop's poller after a wait (later waits
 * cost no registration). Before closing an fd that was waited on or had a
 * callback, call aioc_fd_forget(): the tasks still waiting on it return
 * -EBADF, its callbacks are removed and the poller forgets it. Closing it
 * without that is a bug (the poller may keep watching a stale fd, and an
 * fd number reused later would not be watched). The fds of streams,
 * servers and UDP endpoints (udp.h) are the library's: these calls return
 * -EBUSY for them. */

/* A readiness callback: arg first, then the fd and the epoll events
 * reported (EPOLLIN, EPOLLOUT, EPOLLERR, EPOLLHUP, EPOLLRDHUP). */
typedef void (*aioc_fd_fn)(void *arg, int fd, unsigned events);

/* Suspension point: waits until fd is readable, at most timeout seconds.
 * Returns 0 (readable, at end of file, hung up or in error), -ETIMEDOUT,
 * -ECANCELED, -EBADF (fd not open, or forgotten during the wait), -EPERM
 * (an fd epoll cannot watch, such as a regular file: those are always
 * readable, so this only happens when poll() disagrees), -EBUSY (the fd
 * of a stream, server or UDP endpoint), AIOC_ENOTASK (not ready, and not
 * in a task), -EINVAL, -ENOMEM. */
AIOC_API AIOC_NODISCARD int aioc_wait_readable(int fd, double timeout);

/* Suspension point: the same for writable (or hung up, or in error). */
AIOC_API AIOC_NODISCARD int aioc_wait_writable(int fd, double timeout);

/* Runs fn(arg, fd, events) from loop (NULL: the running loop, else the
 * thread's current loop) at every iteration while fd is readable, until
 * aioc_remove_reader() or aioc_fd_forget(). Replaces a reader callback
 * already set. fn may add and remove callbacks and forget fds, this one
 * included. Returns 0, -EINVAL (fd < 0, fn NULL), -EBADF, -EPERM (an fd
 * epoll cannot watch), -EBUSY (the fd of a stream, server or UDP
 * endpoint), AIOC_ECLOSED, -ENOMEM. */
AIOC_API AIOC_NODISCARD int aioc_add_reader(aioc_loop *loop, int fd,
                                            aioc_fd_fn fn, void *arg);

/* The same for writable. */
AIOC_API AIOC_NODISCARD int aioc_add_writer(aioc_loop *loop, int fd,
                                            aioc_fd_fn fn, void *arg);

/* Removes the reader (writer) callback of fd. Returns 1 if there was one,
 * 0 if not, -EINVAL, -EBUSY (the fd of a stream, server or UDP
 * endpoint). */
AIOC_API int aioc_remove_reader(aioc_loop *loop, int fd);
AIOC_API int aioc_remove_writer(aioc_loop *loop, int fd);

/* Tells loop (NULL: the running or current loop) that fd is about to be
 * closed (Trio's notify_closing): tasks waiting on it are woken with
 * -EBADF, its callbacks are removed and the poller stops watching it.
 * Call it before close(fd). Returns 1 if the loop knew fd, 0 if not,
 * -EINVAL, -EBUSY (the fd of a stream, server or UDP endpoint: close
 * those with their own calls). */
AIOC_API int aioc_fd_forget(aioc_loop *loop, int fd);

/* ---- Streams -------------------------------------------------------------
 *
 * A stream is a connected stream socket (TCP over IPv4 or IPv6, or a Unix
 * socket) with asyncio's StreamReader and StreamWriter in one object.
 *
 * Reading: at most one task reads at a time (a second one gets -EBUSY).
 * Data is consumed only when a read returns it: a read that ends with
 * -ETIMEDOUT or -ECANCELED (at any of its suspension points) took
 * nothing, and the next read gets the same bytes.
 *
 * Writing: aioc_stream_write() never waits. What the socket does not take
 * at once is buffered and sent as the peer reads; aioc_stream_drain()
 * waits while the buffer is above its high-water mark until it is down to
 * the low-water mark, so a writer that drains after each write holds at
 * most the high-water mark plus one write in memory, however slow the
 * reader (asyncio's flow control). A failed send (the peer reset or
 * closed the connection) is remembered: every later write and drain
 * returns it.
 *
 * Closing: aioc_stream_close() stops the stream at once for the caller
 * (later calls return AIOC_ECLOSED) while buffered data still goes out in
 * the background; aioc_stream_wait_closed() waits for that and the
 * socket's close; aioc_stream_free() releases everything, dropping data
 * not yet sent. */

typedef struct aioc_stream aioc_stream;

/* Options of a stream. Zero means the default. */
typedef struct aioc_stream_options {
  /* The longest line the lines iterator returns, separator included
   * (0: 64 KiB). */
  size_t limit;
  /* Write buffer flow control: drain waits while more than high_water
   * bytes are buffered, until at most low_water are (0: 64 KiB and a
   * quarter of high_water). */
  size_t high_water;
  size_t low_water;
  /* Non-zero: leave Nagle's algorithm on (TCP_NODELAY is set by
   * default). */
  int nagle;
} aioc_stream_options;

/* Suspension point: connects to host and port over TCP, within timeout
 * for the whole call (name lookup included). host is a numeric IPv4 or
 * IPv6 address, "localhost", or a name looked up on the loop
 * (aioc_getaddrinfo(), dns.h). With several addresses, Happy Eyeballs
 * (RFC 8305): the families interleaved, the first attempt at once, the
 * next when the ones before failed or 250 ms passed without a
 * connection, the first connection wins and the other attempts are
 * cancelled. Returns 0 with *out, -ECONNREFUSED, -ETIMEDOUT, -ENETUNREACH
 * and the other errors of connect() (the last attempt's, when every
 * address failed), the lookup's errors (AIOC_ENONAME...), -EAFNOSUPPORT,
 * -EINVAL, -ECANCELED, AIOC_ENOTASK, -EMFILE, -ENOMEM. On failure *out is
 * NULL. */
AIOC_API AIOC_NODISCARD int aioc_open_connection(aioc_stream **out,
                                                 const char *host, int port,
                                                 const aioc_stream_options *opts,
                                                 double timeout);

/* Suspension point: connects to the Unix stream socket at path (a leading
 * '@' names an abstract socket). Returns as aioc_open_connection(), and
 * -ENOENT, -ENAMETOOLONG. */
AIOC_API AIOC_NODISCARD int
aioc_open_unix_connection(aioc_stream **out, const char *path,
                          const aioc_stream_options *opts, double timeout);

/* Makes a stream of a connected stream socket fd, which it owns from then
 * on (it is made non-blocking; aioc_stream_free() closes it). The stream
 * belongs to the running loop, or the thread's current loop. Returns 0
 * with *out, -EINVAL (fd < 0), -ENOTSOCK, AIOC_ECLOSED, -ENOMEM; on
 * failure the caller keeps fd. */
AIOC_API AIOC_NODISCARD int aioc_stream_from_fd(aioc_stream **out, int fd,
                                                const aioc_stream_options *opts);

/* Suspension point (only when nothing is buffered): reads up to cap bytes
 * into buf, *n the count: at least 1, or 0 at end of file (and after it).
 * Returns 0, -ECONNRESET (and the other errors of recv()), -ETIMEDOUT,
 * -ECANCELED, -EBUSY (another task is reading), AIOC_ECLOSED (closed
 * with aioc_stream_close()), AIOC_ENOTASK, -EINVAL (cap 0, NULLs). */
AIOC_API AIOC_NODISCARD int aioc_stream_read(aioc_stream *s, void *buf,
                                             size_t cap, size_t *n,
                                             double timeout);

/* Suspension point: reads exactly n bytes into buf. If the peer closes
 * first, returns AIOC_EINCOMPLETE with the bytes that came (all of them
 * consumed) in buf and their count in *got (asyncio's
 * IncompleteReadError). On any other failure nothing is consumed and *got
 * is 0. Returns 0 (*got == n), AIOC_EINCOMPLETE, and the codes of
 * aioc_stream_read(), -ENOMEM. */
AIOC_API AIOC_NODISCARD int aioc_stream_readexactly(aioc_stream *s, void *buf,
                                                    size_t n, size_t *got,
                                                    double timeout);

/* Suspension point: reads up to and including the first occurrence of sep
 * (seplen > 0 bytes) into buf, *n the count. The data, separator
 * included, must fit in cap: if cap bytes arrive without the separator,
 * or the separator ends beyond cap, returns -EMSGSIZE and leaves the data
 * in the stream (asyncio's LimitOverrunError: read it with
 * aioc_stream_read(), or skip it). At end of file without the separator,
 * returns AIOC_EINCOMPLETE with the rest of the data (consumed) in buf
 * (-EMSGSIZE if it does not fit; at end of file with nothing left, *n is
 * 0). On other failures nothing is consumed. Returns 0, AIOC_EINCOMPLETE,
 * -EMSGSIZE, the codes of aioc_stream_read(), -ENOMEM. */
AIOC_API AIOC_NODISCARD int aioc_stream_readuntil(aioc_stream *s,
                                                  const void *sep,
                                                  size_t seplen, void *buf,
                                                  size_t cap, size_t *n,
                                                  double timeout);

/* Suspension point: reads a line ending with "\n" (included) into buf, *n
 * its length. At end of file the last line may lack the "\n"; *n is 0
 * once nothing is left (asyncio's readline). A line longer than cap
 * returns -EMSGSIZE and is skipped, up to its "\n": the next call returns
 * the next line, so the stream stays usable. Returns 0, -EMSGSIZE, the
 * codes of aioc_stream_read(), -ENOMEM. */
AIOC_API AIOC_NODISCARD int aioc_stream_readline(aioc_stream *s, void *buf,
                                                 size_t cap, size_t *n,
                                                 double timeout);

/* Non-zero once the peer's end of file was read and nothing is buffered
 * (asyncio's at_eof). */
AIOC_API int aioc_stream_is_eof(const aioc_stream *s);

/* Writes n bytes: sends what the socket takes now and buffers the rest
 * (copied), never waiting. Returns 0, -EPIPE (after aioc_stream_write_eof,
 * or the peer closed), -ECONNRESET and the other errors of send() (also
 * every later write: the stream is broken), AIOC_ECLOSED, -EINVAL, -ENOMEM
 * (the rest could not be buffered: the stream is broken from then on). */
AIOC_API AIOC_NODISCARD int aioc_stream_write(aioc_stream *s, const void *data,
                                              size_t n);

/* Suspension point (only when the write buffer is above its high-water
 * mark): waits until it is down to the low-water mark. Returns 0, the
 * send error that broke the stream (-EPIPE, -ECONNRESET...),
 * -ETIMEDOUT, -ECANCELED, AIOC_ECLOSED, AIOC_ENOTASK, -EINVAL. */
AIOC_API AIOC_NODISCARD int aioc_stream_drain(aioc_stream *s, double timeout);

/* The number of bytes buffered and not yet sent. */
AIOC_API size_t aioc_stream_write_buffer_size(const aioc_stream *s);

/* Half-close: once the buffered data is sent, the peer reads end of file
 * (shutdown(SHUT_WR)); reading goes on. Later writes return -EPIPE.
 * Returns 0, the stream's send error, AIOC_ECLOSED, -EINVAL. */
AIOC_API int aioc_stream_write_eof(aioc_stream *s);

/* Closes the stream: later calls on it return AIOC_ECLOSED, and a read
 * or drain waiting in another task returns AIOC_ECLOSED. Buffered data is
 * still sent in the background, then the socket is closed (at once if
 * nothing is buffered or the stream is broken). Returns 0, AIOC_ECLOSED
 * (closed already), -EINVAL. */
AIOC_API int aioc_stream_close(aioc_stream *s);

/* Non-zero once aioc_stream_close() was called. */
AIOC_API int aioc_stream_is_closing(const aioc_stream *s);

/* Suspension point (only while buffered data is still going out after
 * aioc_stream_close()): waits until the socket is closed. Returns 0,
 * AIOC_ESTATE (the stream was not closed), -ETIMEDOUT, -ECANCELED,
 * AIOC_ENOTASK, -EINVAL. On -ETIMEDOUT the data still goes out in the
 * background (until aioc_stream_free()). */
AIOC_API AIOC_NODISCARD int aioc_stream_wait_closed(aioc_stream *s,
                                                    double timeout);

/* Frees the stream, closing its socket at once: buffered data not sent is
 * dropped (call aioc_stream_close() and aioc_stream_wait_closed() first
 * for a graceful close). Tasks still waiting on it return AIOC_ECLOSED
 * first. Safe after the loop closed. NULL is harmless. */
AIOC_API void aioc_stream_free(aioc_stream *s);

/* The peer's address (getpeername) and the local one (getsockname) into
 * *addr (from <sys/socket.h>). Returns the address's length (> 0),
 * -ENOTCONN, AIOC_ECLOSED, -EINVAL. */
struct sockaddr_storage;
AIOC_API int aioc_stream_peername(const aioc_stream *s,
                                  struct sockaddr_storage *addr);
AIOC_API int aioc_stream_sockname(const aioc_stream *s,
                                  struct sockaddr_storage *addr);

/* The stream's socket (borrowed: for setsockopt and the like), or -1. */
AIOC_API int aioc_stream_fd(const aioc_stream *s);

/* ---- Streams as iterators ----------------------------------------------
 *
 * The items of both iterators are const aioc_bytes * (borrowed, valid
 * until the next call on the iterator), so aioc_iter_timed() puts a
 * timeout between lines or chunks, and the helpers work on network data.
 * Each takes ownership of the stream (closing the iterator closes it,
 * freeing the iterator frees it); on failure the caller keeps it. */
typedef struct aioc_bytes {
  const char *data;
  size_t len;
} aioc_bytes;

/* Lines, "\n" included (the last one may lack it), until end of file
 * (AIOC_EXHAUSTED). A line longer than the stream's limit gives -EMSGSIZE
 * and is skipped; the next call returns the next line. Errors are those
 * of aioc_stream_readline(). Returns 0, -EINVAL, -ENOMEM. */
AIOC_API AIOC_NODISCARD int aioc_stream_lines_iter(aioc_iter **out,
                                                   aioc_stream *s);

/* Chunks of up to max bytes (0: 64 KiB) as they arrive, until end of
 * file. Returns 0, -EINVAL, -ENOMEM. */
AIOC_API AIOC_NODISCARD int aioc_stream_chunks_iter(aioc_iter **out,
                                                    aioc_stream *s,
                                                    size_t max);

/* ---- Servers -------------------------------------------------------------
 *
 * asyncio's start_server: a listening socket whose every connection runs
 * fn(arg, stream) in a task of its own. The stream is the handler's to
 * use and free; when the handler returns, the server closes a stream it
 * did not free (buffered data goes out for up to 5 s, unless the task was
 * cancelled) and frees it. A handler's failure is reported like that of
 * any task nobody awaits (return 0 or AIOC_NORESULT to stay quiet).
 *
 * Accepting under fd exhaustion (EMFILE, ENFILE) or memory shortage: the
 * server stops accepting and retries after 10 ms, doubling to 1 s while
 * the shortage lasts, so it does not spin, and serves again once fds are
 * free; the waiting connections stay in the kernel's backlog meanwhile. */

typedef struct aioc_server aioc_server;

/* A connection handler; see above. */
typedef int (*aioc_conn_fn)(void *arg, aioc_stream *s);

typedef struct aioc_server_options {
  aioc_stream_options stream; /* for every accepted stream */
  int backlog;                /* listen() backlog (0: 511) */
  int reuse_port;             /* non-zero: SO_REUSEPORT */
} aioc_server_options;

/* Listens on host and port over TCP and serves: host NULL listens on
 * every IPv4 and IPv6 address, else a numeric address or "localhost".
 * port 0 picks a free port (aioc_server_port() tells which). SO_REUSEADDR
 * is set. The server belongs to the running loop (or the thread's current
 * loop) and starts accepting when that loop runs. Returns 0 with *out,
 * -EADDRINUSE and the other errors of socket(), bind() and listen(),
 * -EINVAL, AIOC_ECLOSED, -ENOMEM. */
AIOC_API AIOC_NODISCARD int aioc_start_server(aioc_server **out,
                                              const char *host, int port,
                                              aioc_conn_fn fn, void *arg,
                                              const aioc_server_options *opts);

/* The same on a Unix stream socket at path (a leading '@' names an
 * abstract socket; a file already at path is not removed: -EADDRINUSE). */
AIOC_API AIOC_NODISCARD int
aioc_start_unix_server(aioc_server **out, const char *path, aioc_conn_fn fn,
                       void *arg, const aioc_server_options *opts);

/* The port the server listens on (its first socket), or a negative code. */
AIOC_API int aioc_server_port(const aioc_server *srv);

/* The number of connections whose handler is still running. */
AIOC_API size_t aioc_server_connections(const aioc_server *srv);

/* Stops accepting: the listening sockets are closed (a Unix socket's file
 * is left in place). Connections in progress go on. Returns 0,
 * AIOC_ECLOSED (closed already), -EINVAL. */
AIOC_API int aioc_server_close(aioc_server *srv);

/* Cancels the task of every connection in progress: each handler sees
 * -ECANCELED at its current or next suspension point and cleans up.
 * Returns the number of tasks cancelled, or -EINVAL. */
AIOC_API int aioc_server_cancel_connections(aioc_server *srv);

/* Suspension point: waits until the server is closed and every handler
 * has returned. Returns 0, AIOC_ESTATE (not closed), -ETIMEDOUT,
 * -ECANCELED, AIOC_ENOTASK, -EINVAL. A graceful shutdown: close, wait
 * with a grace period, cancel the connections left, wait again. */
AIOC_API AIOC_NODISCARD int aioc_server_wait_closed(aioc_server *srv,
                                                    double timeout);

/* Frees the server, closing it and cancelling its connections first;
 * their handlers finish later, on their own. NULL is harmless. */
AIOC_API void aioc_server_free(aioc_server *srv);

#ifdef __cplusplus
}
#endif
#endif /* AIOC_IO_H */
