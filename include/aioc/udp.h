/* aioc/udp.h: UDP endpoints: datagrams with their peer address, connected
 * UDP, datagrams as an iterator with a timeout between items.
 *
 * Part of the public API; include <aioc.h> rather than this file, and
 * <sys/socket.h> and <netinet/in.h> to read the addresses (aioc.h does
 * not include the socket headers).
 *
 * Conventions of this part (those of io.h):
 *
 *  - Every waiting call is a suspension point with a timeout in seconds as
 *    its last argument (AIOC_FOREVER: no limit; 0: do not wait; negative
 *    or NaN: -EINVAL). It honours the task's cancellation (-ECANCELED) and
 *    the deadlines in scope (-ETIMEDOUT), and returns -ENOMEM without
 *    waiting when the timer of a finite timeout cannot be armed. A call
 *    that can complete at once does so without suspending and without
 *    looking at cancellation, also outside a task; one that must wait
 *    needs a task (AIOC_ENOTASK otherwise; with a timeout of 0, -ETIMEDOUT).
 *  - Failures of the system are their errno values, negated. A datagram
 *    larger than the buffer it is received into is -EMSGSIZE, its first
 *    bytes delivered with its real size (see aioc_udp_recvfrom()).
 *  - A datagram goes out whole or not at all, and comes in whole (or
 *    truncated, reported): there is no partial send and no end of file.
 *    A datagram of 0 bytes is a datagram like any other.
 *  - No call ever raises SIGPIPE (MSG_NOSIGNAL). Sockets are created
 *    non-blocking and close-on-exec.
 *  - An endpoint belongs to the loop of the task (or the thread) that
 *    opened it and is not thread-safe. Any number of its tasks may send
 *    and receive at once: each receive gets a whole datagram of its own. */
#ifndef AIOC_UDP_H
#define AIOC_UDP_H

#include "gen.h"

#ifdef __cplusplus
extern "C" {
#endif

struct sockaddr;
struct sockaddr_storage;

typedef struct aioc_udp aioc_udp;

/* Options of an endpoint. Zero means the default. */
typedef struct aioc_udp_options {
  /* AF_INET or AF_INET6 to use only that family; 0: whichever the
   * addresses give (IPv4 for a local wildcard with no remote host). */
  int family;
  /* Non-zero: SO_REUSEADDR, SO_REUSEPORT (several endpoints on one
   * port), SO_BROADCAST (send to broadcast addresses). */
  int reuse_addr;
  int reuse_port;
  int broadcast;
  /* SO_RCVBUF and SO_SNDBUF in bytes (0: the system's default). */
  int recv_buffer;
  int send_buffer;
  /* The largest datagram the iterator receives whole (0: 65536 bytes,
   * more than any UDP datagram: none is ever truncated). */
  size_t max_datagram;
} aioc_udp_options;

/* Suspension point (only while a name is looked up): opens a UDP
 * endpoint, within timeout for the whole call.
 *
 * local_host and local_port: the address to bind. local_host NULL is the
 * wildcard address (0.0.0.0, or :: when the family is IPv6); local_port 0
 * a port the system picks (aioc_udp_port() tells which). remote_host and
 * remote_port: the peer of a connected endpoint (connect()), or NULL and
 * 0 for an unconnected one. A connected endpoint sends with
 * aioc_udp_send(), receives only its peer's datagrams, and learns of an
 * ICMP error (port unreachable: -ECONNREFUSED) at its next receive or
 * send. An endpoint with a remote and neither local_host nor local_port
 * is bound by the system at the connect.
 *
 * Hosts are numeric IPv4 or IPv6 addresses, "localhost", or names looked
 * up on the loop (aioc_getaddrinfo(), dns.h), the remote's addresses
 * tried in the resolver's order until one can be connected. With both
 * hosts, the local address is one of the remote's family.
 *
 * Returns 0 with *out; -EADDRINUSE, -EACCES, -EADDRNOTAVAIL, -ENETUNREACH
 * and the other errors of socket(), setsockopt(), bind() and connect();
 * the lookup's errors (AIOC_ENONAME...); -EAFNOSUPPORT (no address of
 * the family asked, or of the remote's family for the local host);
 * -ETIMEDOUT, -ECANCELED (during a lookup); -EINVAL (out NULL, a port
 * out of 0..65535, an empty host, a remote port without a remote host or
 * 0 with one, an unknown family, a bad timeout); AIOC_ECLOSED (the loop
 * is closed); -EMFILE; -ENOMEM. A failure sets the task's error message
 * naming the address. On failure *out is NULL. */
AIOC_API AIOC_NODISCARD int aioc_udp_open(aioc_udp **out,
                                          const char *local_host,
                                          int local_port,
                                          const char *remote_host,
                                          int remote_port,
                                          const aioc_udp_options *opts,
                                          double timeout);

/* Suspension point (only while the socket's send buffer is full): sends
 * len bytes (0 allowed) as one datagram to addr (addrlen bytes: a struct
 * sockaddr_in or sockaddr_in6, such as a peer address received). Returns
 * 0; -EMSGSIZE (larger than a datagram can be); -ECONNREFUSED (a
 * connected endpoint's peer sent an ICMP error); -EACCES (a broadcast
 * address without the broadcast option); -ENETUNREACH, -EAFNOSUPPORT and
 * the other errors of sendto(); -ETIMEDOUT; -ECANCELED; AIOC_ECLOSED;
 * AIOC_ENOTASK; -EINVAL (NULLs, addrlen 0 or larger than a struct
 * sockaddr_storage, a bad timeout). */
AIOC_API AIOC_NODISCARD int aioc_udp_sendto(aioc_udp *u, const void *data,
                                            size_t len,
                                            const struct sockaddr *addr,
                                            size_t addrlen, double timeout);

/* Suspension point: aioc_udp_sendto() to the peer of a connected
 * endpoint. -EDESTADDRREQ when the endpoint is not connected. */
AIOC_API AIOC_NODISCARD int aioc_udp_send(aioc_udp *u, const void *data,
                                          size_t len, double timeout);

/* Suspension point (only while no datagram is waiting): receives one
 * datagram into buf (cap bytes; cap may be 0), *len its size, *addr and
 * *addrlen the sender's address (each may be NULL).
 *
 * A datagram larger than cap is truncated: its first cap bytes are in
 * buf, *len is its real size (larger than cap), the address is filled,
 * and the call returns -EMSGSIZE. The rest of the datagram is gone; the
 * next call receives the next datagram.
 *
 * Returns 0; -EMSGSIZE (truncated, as above); -ECONNREFUSED (a connected
 * endpoint's peer sent an ICMP error: reported once, the endpoint stays
 * usable) and the other errors of recvfrom(); -ETIMEDOUT; -ECANCELED;
 * AIOC_ECLOSED (closed, also during the wait); AIOC_ENOTASK; -EINVAL
 * (u or len NULL, buf NULL with cap > 0, a bad timeout). A call that
 * fails otherwise than with -EMSGSIZE received nothing. */
AIOC_API AIOC_NODISCARD int aioc_udp_recvfrom(aioc_udp *u, void *buf,
                                              size_t cap, size_t *len,
                                              struct sockaddr_storage *addr,
                                              size_t *addrlen, double timeout);

/* ---- Datagrams as an iterator ------------------------------------------ */

/* An item of the iterator (borrowed, valid until the next call on the
 * iterator): the datagram's bytes and its sender's address. */
typedef struct aioc_datagram {
  const char *data;
  size_t len;
  const struct sockaddr *addr;
  size_t addrlen;
} aioc_datagram;

/* Datagrams as they arrive, each a const aioc_datagram * (see above), so
 * that aioc_iter_next()'s timeout and aioc_iter_timed() put a timeout
 * between datagrams; a next() that times out or is cancelled received
 * nothing. max is the largest datagram received whole (0: the endpoint's
 * max_datagram); a larger one makes next() return -EMSGSIZE (and set a
 * message with its size), and it is skipped: the next call returns the
 * next datagram. There is no end: next() returns the codes of
 * aioc_udp_recvfrom() until the iterator is closed (AIOC_EXHAUSTED).
 * Takes ownership of u (closing the iterator closes it, freeing the
 * iterator frees it); on failure the caller keeps it. Returns 0, -EINVAL,
 * -ENOMEM. */
AIOC_API AIOC_NODISCARD int aioc_udp_iter(aioc_iter **out, aioc_udp *u,
                                          size_t max);

/* ---- Addresses, closing ------------------------------------------------ */

/* The local address (getsockname) and the peer's (getpeername, a
 * connected endpoint) into *addr. Returns the address's length (> 0),
 * -ENOTCONN (not connected), AIOC_ECLOSED, -EINVAL. */
AIOC_API int aioc_udp_sockname(const aioc_udp *u,
                               struct sockaddr_storage *addr);
AIOC_API int aioc_udp_peername(const aioc_udp *u,
                               struct sockaddr_storage *addr);

/* The local port (1..65535), or AIOC_ECLOSED, -EINVAL. */
AIOC_API int aioc_udp_port(const aioc_udp *u);

/* The endpoint's socket (borrowed: for setsockopt and the like: joining
 * a multicast group, IP_TTL...), or -1 once closed. */
AIOC_API int aioc_udp_fd(const aioc_udp *u);

/* Closes the socket at once (a datagram has nothing left to send): tasks
 * waiting to send or receive return AIOC_ECLOSED, and so do later calls.
 * Returns 0, AIOC_ECLOSED (closed already), -EINVAL. */
AIOC_API int aioc_udp_close(aioc_udp *u);

/* Frees the endpoint, closing it first (tasks still waiting on it return
 * AIOC_ECLOSED; the memory goes when they have left). Safe after the
 * loop closed. NULL is harmless. */
AIOC_API void aioc_udp_free(aioc_udp *u);

#ifdef __cplusplus
}
#endif
#endif /* AIOC_UDP_H */
