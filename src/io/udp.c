/* UDP endpoints: a datagram socket on the loop's poller, sends and
 * receives with the peer's address, connected UDP, and the datagrams as
 * an iterator.
 *
 * The hot path is the stream's: the fd is registered once, edge-triggered,
 * from open to close. A receive calls recvfrom() at once while the
 * poller's last report says a datagram may be waiting, and only EAGAIN
 * marks the socket dry (a datagram does not tell whether another one
 * follows), so a waiting receive costs no system call until the next
 * edge; a send calls sendto() at once and waits only on EAGAIN (a full
 * send buffer). MSG_TRUNC makes recvfrom() return a datagram's real size,
 * so a truncated one is reported with it. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "io.h"

/* Larger than any UDP datagram (65,507 bytes over IPv4, 65,527 over IPv6
 * without jumbograms): the iterator's default never truncates. */
#define DEFAULT_MAX ((size_t)65536)

struct aioc_udp {
  aioc_loop *loop;
  aioc__iofd *io; /* NULL once closed or the loop closed */
  int fd;         /* -1 once closed */
  size_t max_datagram;
  uint32_t users; /* calls in progress that may suspend */
  bool closing;   /* aioc_udp_close() or free */
  bool freed;     /* the memory goes when the last user leaves */
  AIOC__ARMOR_FIELD
};

#define UDP_OK(u, fn) AIOC__ARMOR_OK(u, AIOC__MAGIC_UDP, fn, "UDP endpoint")

#define fail aioc__fail

/* "192.0.2.1:53", "[::1]:53" */
static const char *addr_str(const struct sockaddr *sa, char *buf, size_t n) {
  char ip[INET6_ADDRSTRLEN] = "?";
  int port = 0;
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
    inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof ip);
    port = ntohs(s4->sin_port);
    snprintf(buf, n, "%s:%d", ip, port);
  } else if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
    inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof ip);
    port = ntohs(s6->sin6_port);
    snprintf(buf, n, "[%s]:%d", ip, port);
  } else {
    snprintf(buf, n, "(family %d)", sa->sa_family);
  }
  return buf;
}

/* ---- lifetime ---- */

static void free_mem(aioc_udp *u) {
  aioc_loop *loop = u->loop;
  AIOC__ARMOR_SET(u, AIOC__MAGIC_DEAD);
  aioc__free(u);
  aioc__loop_unref(loop);
}

/* A call that may suspend enters and leaves; freeing the endpoint while
 * one is suspended (or woken, not yet resumed) defers the memory. */
static inline void enter(aioc_udp *u) { u->users++; }
static inline void leave(aioc_udp *u) {
  if (--u->users == 0 && u->freed) free_mem(u);
}

/* The socket goes: its waiters return AIOC_ECLOSED. */
static void finish_close(aioc_udp *u) {
  u->closing = true;
  if (u->io) {
    aioc__iofd_release(u->io, AIOC_ECLOSED);
    u->io = NULL;
  }
  if (u->fd >= 0) {
    close(u->fd);
    u->fd = -1;
  }
}

static bool udp_event(aioc__iofd *io, uint32_t events) {
  (void)io, (void)events;
  return true; /* nothing buffered: the waiters do the work */
}

static void udp_dropped(aioc__iofd *io) {
  aioc_udp *u = io->owner;
  u->io = NULL; /* the loop closed: the fd stays until close or free */
}

static const aioc__iofd_ops udp_ops = {udp_event, udp_dropped};

int aioc_udp_close(aioc_udp *u) {
  if (!u || !UDP_OK(u, "aioc_udp_close")) return -EINVAL;
  if (u->closing) return AIOC_ECLOSED;
  finish_close(u);
  return 0;
}

void aioc_udp_free(aioc_udp *u) {
  if (!u || !UDP_OK(u, "aioc_udp_free") || u->freed) return;
  u->freed = true;
  finish_close(u);
  if (!u->users) free_mem(u);
}

/* ---- opening ---- */

static int set_opt(int fd, int level, int name, int value) {
  return setsockopt(fd, level, name, &value, sizeof value) < 0 ? -errno : 0;
}

/* A bound (and connected) socket for local (may be NULL) and remote (may
 * be NULL): fd, or a negative code with the task's message. */
static int make_socket(int family, const struct sockaddr *local,
                       socklen_t llen, const struct sockaddr *remote,
                       socklen_t rlen, const aioc_udp_options *o) {
  char as[INET6_ADDRSTRLEN + 16];
  int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    int rc = -errno;
    return fail(rc, "cannot open a UDP socket (%s): %s",
                family == AF_INET6 ? "IPv6" : "IPv4", aioc_strerror(rc));
  }
  int rc = 0;
  const char *what = NULL;
  if (o && o->reuse_addr &&
      (rc = set_opt(fd, SOL_SOCKET, SO_REUSEADDR, 1)) < 0)
    what = "SO_REUSEADDR";
  else if (o && o->reuse_port &&
           (rc = set_opt(fd, SOL_SOCKET, SO_REUSEPORT, 1)) < 0)
    what = "SO_REUSEPORT";
  else if (o && o->broadcast &&
           (rc = set_opt(fd, SOL_SOCKET, SO_BROADCAST, 1)) < 0)
    what = "SO_BROADCAST";
  else if (o && o->recv_buffer > 0 &&
           (rc = set_opt(fd, SOL_SOCKET, SO_RCVBUF, o->recv_buffer)) < 0)
    what = "SO_RCVBUF";
  else if (o && o->send_buffer > 0 &&
           (rc = set_opt(fd, SOL_SOCKET, SO_SNDBUF, o->send_buffer)) < 0)
    what = "SO_SNDBUF";
  if (rc < 0) {
    close(fd);
    return fail(rc, "cannot set %s: %s", what, aioc_strerror(rc));
  }
  if (local && bind(fd, local, llen) < 0) {
    rc = -errno;
    close(fd);
    return fail(rc, "cannot bind UDP to %s: %s",
                addr_str(local, as, sizeof as), aioc_strerror(rc));
  }
  while (remote && connect(fd, remote, rlen) < 0) {
    if (errno == EINTR) continue;
    rc = -errno;
    close(fd);
    return fail(rc, "cannot connect UDP to %s: %s",
                addr_str(remote, as, sizeof as), aioc_strerror(rc));
  }
  return fd;
}

/* The addresses of host and port: numeric at once, a name looked up on
 * the loop. */
static int lookup(const char *host, int port, int64_t deadline,
                  aioc_loop *loop, aioc__addrs *out) {
  int rc = aioc__resolve(host, port, false, out);
  if (rc == -EINVAL) {
    rc = aioc__resolve_name(host, port, deadline, loop, out);
    if (rc < 0)
      rc = fail(rc, "cannot resolve %s: %s", host, aioc_strerror(rc));
  }
  return rc;
}

/* Keeps the addresses of family (0: all). */
static void keep_family(aioc__addrs *a, int family) {
  if (!family) return;
  size_t k = 0;
  for (size_t i = 0; i < a->n; i++) {
    if (a->v[i].ss_family != family) continue;
    a->v[k] = a->v[i];
    a->len[k] = a->len[i];
    k++;
  }
  a->n = k;
}

/* The wildcard address of family on port. */
static socklen_t wildcard(struct sockaddr_storage *ss, int family, int port) {
  memset(ss, 0, sizeof *ss);
  if (family == AF_INET6) {
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    s6->sin6_family = AF_INET6;
    s6->sin6_addr = in6addr_any;
    s6->sin6_port = htons((uint16_t)port);
    return sizeof *s6;
  }
  struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
  s4->sin_family = AF_INET;
  s4->sin_addr.s_addr = htonl(INADDR_ANY);
  s4->sin_port = htons((uint16_t)port);
  return sizeof *s4;
}

/* One attempt: the socket for remote (NULL: unconnected) of family, bound
 * to the local address of that family (or the wildcard when bind says
 * so). fd, or a negative code. */
static int attempt(int family, const struct sockaddr *remote, socklen_t rlen,
                   const aioc__addrs *local, bool bind_any, int lport,
                   const aioc_udp_options *o) {
  struct sockaddr_storage ss;
  const struct sockaddr *la = NULL;
  socklen_t llen = 0;
  if (local) {
    for (size_t i = 0; i < local->n && !la; i++) {
      if (local->v[i].ss_family == family) {
        la = (const struct sockaddr *)&local->v[i];
        llen = local->len[i];
      }
    }
    if (!la)
      return fail(-EAFNOSUPPORT, "no local address of the remote's family (%s)",
                  family == AF_INET6 ? "IPv6" : "IPv4");
  } else if (bind_any) {
    llen = wildcard(&ss, family, lport);
    la = (const struct sockaddr *)&ss;
  }
  return make_socket(family, la, llen, remote, rlen, o);
}

static int bad_port(int port) { return port < 0 || port > 65535; }

int aioc_udp_open(aioc_udp **out, const char *local_host, int local_port,
                  const char *remote_host, int remote_port,
                  const aioc_udp_options *opts, double timeout) {
  if (!out) return -EINVAL;
  *out = NULL;
  int family = opts ? opts->family : 0;
  if (bad_port(local_port) || bad_port(remote_port) ||
      (local_host && !*local_host) || (remote_host && !*remote_host) ||
      (!remote_host && remote_port) || (remote_host && !remote_port) ||
      (family != 0 && family != AF_INET && family != AF_INET6) ||
      aioc__io_bad_timeout(timeout))
    return -EINVAL;
  aioc_loop *loop = aioc__io_loop();
  if (!loop) return -ENOMEM;
  if (loop->closed) return AIOC_ECLOSED;
  int64_t deadline = aioc__io_deadline(loop, timeout);
  aioc__addrs remote = {0}, local = {0};
  int rc = 0;
  if (remote_host) {
    rc = lookup(remote_host, remote_port, deadline, loop, &remote);
    if (rc == 0) {
      keep_family(&remote, family);
      if (!remote.n)
        rc = fail(-EAFNOSUPPORT, "%s has no address of the family asked",
                  remote_host);
    }
  }
  if (rc == 0 && local_host) {
    rc = lookup(local_host, local_port, deadline, loop, &local);
    if (rc == 0) {
      keep_family(&local, family);
      if (!local.n)
        rc = fail(-EAFNOSUPPORT, "%s has no address of the family asked",
                  local_host);
    }
  }
  int fd = rc;
  if (rc == 0 && remote_host) {
    /* The remote's addresses in order, until one connects (the last
     * failure is reported when each fails). */
    for (size_t i = 0; i < remote.n; i++) {
      fd = attempt(remote.v[i].ss_family, (struct sockaddr *)&remote.v[i],
                   remote.len[i], local_host ? &local : NULL, local_port != 0,
                   local_port, opts);
      if (fd >= 0) break;
    }
  } else if (rc == 0) {
    int fam = local_host ? local.v[0].ss_family
                         : (family ? family : AF_INET);
    fd = attempt(fam, NULL, 0, local_host ? &local : NULL, true, local_port,
                 opts);
  }
  aioc__addrs_free(&remote);
  aioc__addrs_free(&local);
  if (fd < 0) return fd;
  aioc_udp *u = aioc__calloc(1, sizeof *u);
  aioc__iofd *io = NULL;
  rc = u ? aioc__iofd_get(loop, fd, &io) : -ENOMEM;
  if (rc < 0) {
    aioc__free(u);
    close(fd);
    return rc;
  }
  io->ops = &udp_ops;
  io->owner = u;
  u->loop = loop;
  aioc__loop_ref(loop);
  u->io = io;
  u->fd = fd;
  u->max_datagram =
      opts && opts->max_datagram ? opts->max_datagram : DEFAULT_MAX;
  AIOC__ARMOR_SET(u, AIOC__MAGIC_UDP);
  *out = u;
  return 0;
}

/* ---- sending ---- */

static int send_core(aioc_udp *u, const void *data, size_t len,
                     const struct sockaddr *addr, socklen_t addrlen,
                     double timeout) {
  aioc_task *t = NULL;
  int64_t deadline = 0;
  int rc;
  for (;;) {
    if (u->closing || !u->io) return AIOC_ECLOSED;
    ssize_t r = addr ? sendto(u->fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT,
                              addr, addrlen)
                     : send(u->fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (r >= 0) return 0;
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return -errno;
    /* The send buffer is full: wait for the poller's next "writable". */
    u->io->ready &= ~(uint32_t)AIOC__WR_EVENTS;
    if (!t) {
      t = aioc__current();
      if (!t) return timeout == 0 ? -ETIMEDOUT : AIOC_ENOTASK;
      deadline = aioc__io_deadline(u->loop, timeout);
    }
    enter(u);
    rc = aioc__iofd_wait(u->io, t, AIOC__WR, deadline);
    if (rc == 0 && u->closing) rc = AIOC_ECLOSED;
    leave(u); /* may free u: then rc is AIOC_ECLOSED */
    if (rc) return rc;
  }
}

int aioc_udp_sendto(aioc_udp *u, const void *data, size_t len,
                    const struct sockaddr *addr, size_t addrlen,
                    double timeout) {
  if (!u || (!data && len) || !addr || !addrlen ||
      addrlen > sizeof(struct sockaddr_storage) ||
      aioc__io_bad_timeout(timeout) || !UDP_OK(u, "aioc_udp_sendto"))
    return -EINVAL;
  return send_core(u, data, len, addr, (socklen_t)addrlen, timeout);
}

int aioc_udp_send(aioc_udp *u, const void *data, size_t len, double timeout) {
  if (!u || (!data && len) || aioc__io_bad_timeout(timeout) ||
      !UDP_OK(u, "aioc_udp_send"))
    return -EINVAL;
  return send_core(u, data, len, NULL, 0, timeout);
}

/* ---- receiving ---- */

/* Receives one datagram into buf: 0 with *size its real size (larger than
 * cap when truncated) and its sender in *ss, *sl; or the code. */
static int recv_core(aioc_udp *u, void *buf, size_t cap, size_t *size,
                     struct sockaddr_storage *ss, socklen_t *sl,
                     double timeout) {
  aioc_task *t = aioc__current();
  /* From plain code, or without waiting, the socket is tried whatever
   * the poller said last: neither could wait for its next report. */
  bool try_anyway = !t || timeout == 0;
  int64_t deadline = AIOC__NEVER;
  bool waited = false;
  int rc;
  for (;;) {
    if (u->closing || !u->io) return AIOC_ECLOSED;
    if ((u->io->ready & AIOC__RD_EVENTS) || try_anyway) {
      try_anyway = false;
      *sl = sizeof *ss;
      ssize_t r = recvfrom(u->fd, buf, cap, MSG_TRUNC | MSG_DONTWAIT,
                           (struct sockaddr *)ss, sl);
      if (r >= 0) {
        *size = (size_t)r;
        return 0;
      }
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) return -errno;
      /* Dry (a pending error, a hang-up included: recvfrom() reported
       * them): the next edge says when a datagram comes. */
      u->io->ready &= ~(uint32_t)AIOC__RD_EVENTS;
    }
    if (!t) return timeout == 0 ? -ETIMEDOUT : AIOC_ENOTASK;
    if (!waited) {
      waited = true;
      deadline = aioc__io_deadline(u->loop, timeout);
    }
    enter(u);
    rc = aioc__iofd_wait(u->io, t, AIOC__RD, deadline);
    if (rc == 0 && u->closing) rc = AIOC_ECLOSED;
    leave(u); /* may free u: then rc is AIOC_ECLOSED */
    if (rc) return rc;
  }
}

int aioc_udp_recvfrom(aioc_udp *u, void *buf, size_t cap, size_t *len,
                      struct sockaddr_storage *addr, size_t *addrlen,
                      double timeout) {
  if (len) *len = 0;
  if (addrlen) *addrlen = 0;
  if (!u || !len || (!buf && cap) || aioc__io_bad_timeout(timeout) ||
      !UDP_OK(u, "aioc_udp_recvfrom"))
    return -EINVAL;
  struct sockaddr_storage ss;
  socklen_t sl = 0;
  size_t size = 0;
  int rc = recv_core(u, buf, cap, &size, &ss, &sl, timeout);
  if (rc) return rc;
  *len = size;
  if (addr) {
    memset(addr, 0, sizeof *addr);
    memcpy(addr, &ss, sl);
  }
  if (addrlen) *addrlen = sl;
  if (size > cap) {
    char as[INET6_ADDRSTRLEN + 16];
    return fail(-EMSGSIZE, "a datagram of %zu bytes from %s truncated to %zu",
                size, addr_str((struct sockaddr *)&ss, as, sizeof as), cap);
  }
  return 0;
}

/* ---- the iterator ---- */

typedef struct uiter {
  aioc_udp *u;
  char *buf;
  size_t max;
  struct sockaddr_storage addr;
  aioc_datagram item;
} uiter;

static int uiter_next(void *self, void **item, double timeout) {
  uiter *it = self;
  size_t size;
  socklen_t sl;
  int rc = recv_core(it->u, it->buf, it->max, &size, &it->addr, &sl, timeout);
  if (rc) return rc;
  if (size > it->max) {
    char as[INET6_ADDRSTRLEN + 16];
    return fail(-EMSGSIZE,
                "a datagram of %zu bytes from %s skipped: larger than %zu",
                size, addr_str((struct sockaddr *)&it->addr, as, sizeof as),
                it->max);
  }
  it->item = (aioc_datagram){.data = it->buf, .len = size,
                             .addr = (const struct sockaddr *)&it->addr,
                             .addrlen = sl};
  *item = &it->item;
  return 0;
}

static int uiter_close(void *self) {
  uiter *it = self;
  int rc = aioc_udp_close(it->u);
  return rc == AIOC_ECLOSED ? 0 : rc;
}

static void uiter_free(void *self) {
  uiter *it = self;
  aioc_udp_free(it->u);
  aioc__free(it->buf);
  aioc__free(it);
}

static const aioc_iter_vtable uiter_vt = {uiter_next, uiter_close, uiter_free};

int aioc_udp_iter(aioc_iter **out, aioc_udp *u, size_t max) {
  if (!out) return -EINVAL;
  *out = NULL;
  if (!u || !UDP_OK(u, "aioc_udp_iter")) return -EINVAL;
  uiter *it = aioc__calloc(1, sizeof *it);
  if (!it) return -ENOMEM;
  it->u = u;
  it->max = max ? max : u->max_datagram;
  it->buf = aioc__alloc(it->max);
  int rc = it->buf ? aioc_iter_new(out, &uiter_vt, it) : -ENOMEM;
  if (rc < 0) {
    aioc__free(it->buf);
    aioc__free(it);
  }
  return rc;
}

/* ---- addresses ---- */

static int names(const aioc_udp *u, struct sockaddr_storage *addr, bool peer,
                 const char *fn) {
  (void)fn;
  if (!u || !addr || !UDP_OK(u, fn)) return -EINVAL;
  if (u->fd < 0) return AIOC_ECLOSED;
  socklen_t len = sizeof *addr;
  memset(addr, 0, sizeof *addr);
  int r = peer ? getpeername(u->fd, (struct sockaddr *)addr, &len)
               : getsockname(u->fd, (struct sockaddr *)addr, &len);
  return r < 0 ? -errno : (int)len;
}

int aioc_udp_sockname(const aioc_udp *u, struct sockaddr_storage *addr) {
  return names(u, addr, false, "aioc_udp_sockname");
}

int aioc_udp_peername(const aioc_udp *u, struct sockaddr_storage *addr) {
  return names(u, addr, true, "aioc_udp_peername");
}

int aioc_udp_port(const aioc_udp *u) {
  struct sockaddr_storage ss;
  int rc = names(u, &ss, false, "aioc_udp_port");
  if (rc < 0) return rc;
  return ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                  : ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

int aioc_udp_fd(const aioc_udp *u) {
  return u && UDP_OK(u, "aioc_udp_fd") ? u->fd : -1;
}
