/* DNS on the loop through c-ares. Each loop has one resolver: a c-ares
 * channel whose sockets the loop polls (ARES_OPT_SOCK_STATE_CB tells
 * which and for what) and whose retransmissions a loop timer drives
 * (ares_timeout() after every call into c-ares). A lookup is a query
 * record and a future: c-ares' callback completes the future and frees
 * the record, and the task awaits the future, which gives it
 * cancellation and deadlines. Numeric hosts and a NULL host never reach
 * c-ares. */
#include <ares.h>
#include <arpa/inet.h>
#include <ctype.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "io.h"

typedef struct resolver resolver;

/* A lookup c-ares runs. Freed by c-ares' callback, which always comes:
 * with the answer, on a failure, or when the channel is cancelled or
 * destroyed. */
typedef struct query {
  aioc__list link; /* in r->queries */
  resolver *r;
  aioc_future *f;  /* a reference */
  bool detached;   /* nobody waits any more: the answer is dropped */
  char host[];     /* for messages */
} query;

struct resolver {
  aioc__slot slot; /* key: &resolver_key */
  aioc__live live;
  aioc_loop *loop;
  ares_channel ch; /* NULL until first needed */
  aioc__timer tm;  /* c-ares' next timeout */
  aioc__list queries;
  size_t nqueries, nwaiting; /* all, and those someone waits for */
  bool nomem; /* a socket or the timer could not be watched */
};

static const char resolver_key;

/* ---- c-ares, allocating through the hook ---- */

static void *ca_malloc(size_t n) { return aioc__alloc(n); }
static void ca_free(void *p) { aioc__free(p); }
static void *ca_realloc(void *p, size_t n) { return aioc__realloc(p, n); }

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;
static int lib_status;
static void lib_init(void) {
  lib_status = ares_library_init_mem(ARES_LIB_INIT_ALL, ca_malloc, ca_free,
                                     ca_realloc);
}

/* A failure of this call: the code, with its message for the task (or,
 * from plain code, the thread). */
#define fail aioc__fail

static int map_status(int st) {
  switch (st) {
  case ARES_SUCCESS: return 0;
  case ARES_ENOTFOUND: return AIOC_ENONAME;
  case ARES_ENODATA: return -ENODATA;
  case ARES_ESERVFAIL: case ARES_EREFUSED: case ARES_EFORMERR:
  case ARES_EBADRESP: case ARES_ENOTIMP: case ARES_EOF:
    return AIOC_EDNS;
  case ARES_ETIMEOUT: return -ETIMEDOUT;
  case ARES_ECONNREFUSED: return -ECONNREFUSED;
  case ARES_ENOMEM: return -ENOMEM;
  case ARES_ECANCELLED: case ARES_EDESTRUCTION: return -ECANCELED;
  case ARES_EBADNAME: case ARES_EBADFLAGS: case ARES_EBADHINTS:
  case ARES_EBADFAMILY: case ARES_EBADSTR: case ARES_EBADQUERY:
  case ARES_ENONAME: case ARES_ESERVICE:
    return -EINVAL;
  default: return -EIO;
  }
}

/* ---- driving the channel from the loop ---- */

static void rearm(resolver *r) {
  struct timeval tv;
  if (!r->ch || !ares_timeout(r->ch, NULL, &tv)) {
    aioc__timer_disarm(r->loop, &r->tm);
    return;
  }
  int64_t ns = (int64_t)tv.tv_sec * 1000000000 + (int64_t)tv.tv_usec * 1000;
  if (aioc__timer_arm(r->loop, &r->tm, aioc__now(r->loop) + ns) < 0)
    r->nomem = true;
}

/* After every call into c-ares: its next timeout on the loop timer. If a
 * socket or the timer could not be watched (out of memory), the lookups
 * cannot be trusted to end: those waited for fail with -ENOMEM and every
 * query is abandoned. */
static void after_call(resolver *r) {
  for (;;) {
    rearm(r);
    if (!r->nomem) return;
    r->nomem = false;
    aioc__list_each(l, &r->queries) {
      query *q = aioc__container_of(l, query, link);
      if (q->detached) continue;
      q->detached = true;
      r->nwaiting--;
      AIOC__IGNORE(aioc_future_set_error(
          q->f, -ENOMEM, "%s: out of memory watching the lookup", q->host));
    }
    ares_cancel(r->ch);
  }
}

static void on_io(aioc_loop *loop, int fd, uint32_t events, void *arg) {
  (void)loop;
  resolver *r = arg;
  ares_socket_t rd = events & (EPOLLIN | EPOLLERR | EPOLLHUP) ? fd
                                                              : ARES_SOCKET_BAD;
  ares_socket_t wr = events & (EPOLLOUT | EPOLLERR) ? fd : ARES_SOCKET_BAD;
  ares_process_fd(r->ch, rd, wr);
  after_call(r);
}

static void on_sock_state(void *data, ares_socket_t fd, int readable,
                          int writable) {
  resolver *r = data;
  if (!readable && !writable) {
    aioc__poll_del(r->loop, fd);
    return;
  }
  uint32_t ev = (readable ? EPOLLIN : 0) | (writable ? EPOLLOUT : 0);
  if (aioc__poll_add(r->loop, fd, ev, on_io, r) < 0) r->nomem = true;
}

static void on_timer(aioc_loop *loop, aioc__timer *t) {
  resolver *r = aioc__container_of(t, resolver, tm);
  if (loop->closed || !r->ch) return;
  ares_process_fd(r->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
  after_call(r);
}

/* ---- the loop's resolver ---- */

static void resolver_abandon(aioc__live *n);
static const aioc__live_ops resolver_live_ops = {NULL, resolver_abandon};

static int channel_new(resolver *r, ares_channel *out,
                       const aioc_dns_options *o) {
  pthread_once(&lib_once, lib_init);
  if (lib_status != ARES_SUCCESS)
    return fail(-EIO, "cannot initialise c-ares: %s",
                ares_strerror(lib_status));
  struct ares_options ao;
  memset(&ao, 0, sizeof ao);
  int mask = ARES_OPT_SOCK_STATE_CB;
  ao.sock_state_cb = on_sock_state;
  ao.sock_state_cb_data = r;
  if (o && o->try_timeout > 0) {
    double ms = ceil(o->try_timeout * 1000);
    ao.timeout = ms > 1e9 ? 1000000000 : (int)ms;
    mask |= ARES_OPT_TIMEOUTMS;
  }
  if (o && o->tries > 0) {
    ao.tries = o->tries;
    mask |= ARES_OPT_TRIES;
  }
  int st = ares_init_options(out, &ao, mask);
  if (st != ARES_SUCCESS) {
    *out = NULL;
    return st == ARES_ENOMEM ? fail(-ENOMEM, "out of memory")
                             : fail(-EIO, "cannot set up c-ares: %s",
                                    ares_strerror(st));
  }
  if (o && o->servers) {
    st = ares_set_servers_ports_csv(*out, o->servers);
    if (st != ARES_SUCCESS) {
      ares_destroy(*out);
      *out = NULL;
      return st == ARES_ENOMEM ? fail(-ENOMEM, "out of memory")
                               : fail(-EINVAL, "bad name servers \"%s\"",
                                      o->servers);
    }
  }
  return 0;
}


/* The loop's resolver record (without a channel when new), or NULL. */
static resolver *resolver_of(aioc_loop *loop) {
  aioc__slot *s = aioc__slot_find(loop, &resolver_key);
  if (s) return aioc__container_of(s, resolver, slot);
  resolver *r = aioc__calloc(1, sizeof *r);
  if (!r) return NULL;
  r->loop = loop;
  aioc__timer_init(&r->tm, on_timer);
  aioc__list_init(&r->queries);
  aioc__slot_add(loop, &r->slot, &resolver_key);
  aioc__live_add(loop, &r->live, &resolver_live_ops);
  return r;
}

/* The loop closes: the queries are dropped (their waiters never run
 * again) and c-ares calls back for each, freeing it. */
static void resolver_abandon(aioc__live *n) {
  resolver *r = aioc__container_of(n, resolver, live);
  aioc__list_each(l, &r->queries) {
    query *q = aioc__container_of(l, query, link);
    q->detached = true;
  }
  r->nwaiting = 0;
  aioc__timer_disarm(r->loop, &r->tm);
  if (r->ch) ares_destroy(r->ch);
  aioc__slot_del(&r->slot);
  aioc__free(r);
}

int aioc_dns_configure(aioc_loop *loop, const aioc_dns_options *opts) {
  if (opts && (isnan(opts->try_timeout) || opts->try_timeout < 0 ||
               opts->tries < 0))
    return fail(-EINVAL, "bad resolver options");
  int rc;
  if (!(loop = aioc__io_pick_loop(loop, "aioc_dns_configure", &rc))) return rc;
  resolver *r = resolver_of(loop);
  if (!r) return fail(-ENOMEM, "out of memory");
  if (r->nqueries) return fail(-EBUSY, "lookups are under way");
  ares_channel ch;
  if ((rc = channel_new(r, &ch, opts)) < 0) return rc;
  if (r->ch) ares_destroy(r->ch);
  r->ch = ch;
  return 0;
}

/* ---- results ---- */

void aioc_freeaddrinfo(struct addrinfo *ai) {
  while (ai) {
    struct addrinfo *next = ai->ai_next;
    aioc__free(ai); /* one block: entry, address, canonical name */
    ai = next;
  }
}

/* Appends an entry for addr (a sockaddr_in or sockaddr_in6 whose port is
 * set here) to *tail. */
static int add_entry(struct addrinfo ***tail, const struct sockaddr *addr,
                     socklen_t len, int port, const struct addrinfo *h,
                     const char *canon) {
  size_t clen = canon ? strlen(canon) + 1 : 0;
  struct addrinfo *e = aioc__calloc(1, sizeof *e + len + clen);
  if (!e) return -ENOMEM;
  e->ai_flags = h->ai_flags;
  e->ai_family = addr->sa_family;
  e->ai_socktype = h->ai_socktype;
  e->ai_protocol = h->ai_protocol;
  e->ai_addrlen = len;
  e->ai_addr = (struct sockaddr *)(e + 1);
  memcpy(e->ai_addr, addr, len);
  if (addr->sa_family == AF_INET)
    ((struct sockaddr_in *)e->ai_addr)->sin_port = htons((uint16_t)port);
  else
    ((struct sockaddr_in6 *)e->ai_addr)->sin6_port = htons((uint16_t)port);
  if (canon) {
    e->ai_canonname = (char *)e->ai_addr + len;
    memcpy(e->ai_canonname, canon, clen);
  }
  **tail = e;
  *tail = &e->ai_next;
  return 0;
}

static int add_v4(struct addrinfo ***tail, const struct in_addr *a, int port,
                  const struct addrinfo *h, const char *canon) {
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr = *a};
  return add_entry(tail, (struct sockaddr *)&sa, sizeof sa, port, h, canon);
}

static int add_v6(struct addrinfo ***tail, const struct in6_addr *a, int port,
                  const struct addrinfo *h, const char *canon) {
  struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_addr = *a};
  return add_entry(tail, (struct sockaddr *)&sa, sizeof sa, port, h, canon);
}

/* The list for a host NULL: the loopback or (AI_PASSIVE) the wildcard
 * addresses, in glibc's order. */
static int null_host(struct addrinfo **out, int port,
                     const struct addrinfo *h) {
  struct addrinfo **tail = out;
  bool passive = h->ai_flags & AI_PASSIVE;
  struct in_addr a4 = {htonl(passive ? INADDR_ANY : INADDR_LOOPBACK)};
  const struct in6_addr *a6 = passive ? &in6addr_any : &in6addr_loopback;
  int rc = 0, fam = h->ai_family;
  if (passive) {
    if (fam != AF_INET6) rc = add_v4(&tail, &a4, port, h, NULL);
    if (rc == 0 && fam != AF_INET) rc = add_v6(&tail, a6, port, h, NULL);
  } else {
    if (fam != AF_INET) rc = add_v6(&tail, a6, port, h, NULL);
    if (rc == 0 && fam != AF_INET6) rc = add_v4(&tail, &a4, port, h, NULL);
  }
  return rc;
}

/* A numeric host: 1 with the list made (or rc < 0 in *rc), 0 if host is
 * not numeric. */
static int numeric_host(struct addrinfo **out, const char *host, int port,
                        const struct addrinfo *h, int *rc) {
  struct in_addr a4;
  struct in6_addr a6;
  struct addrinfo **tail = out;
  const char *canon = h->ai_flags & AI_CANONNAME ? host : NULL;
  int fam = h->ai_family;
  if (inet_pton(AF_INET, host, &a4) == 1) {
    if (fam == AF_INET6 && !(h->ai_flags & AI_V4MAPPED)) {
      *rc = fail(AIOC_ENONAME, "%s: an IPv4 address, IPv6 asked", host);
      return 1;
    }
    if (fam == AF_INET6) { /* ::ffff:a.b.c.d */
      memset(&a6, 0, sizeof a6);
      a6.s6_addr[10] = a6.s6_addr[11] = 0xff;
      memcpy(&a6.s6_addr[12], &a4, 4);
      *rc = add_v6(&tail, &a6, port, h, canon);
    } else {
      *rc = add_v4(&tail, &a4, port, h, canon);
    }
  } else if (inet_pton(AF_INET6, host, &a6) == 1) {
    if (fam == AF_INET) {
      *rc = fail(AIOC_ENONAME, "%s: an IPv6 address, IPv4 asked", host);
      return 1;
    }
    *rc = add_v6(&tail, &a6, port, h, canon);
  } else {
    return 0;
  }
  if (*rc < 0) *rc = fail(*rc, "out of memory");
  return 1;
}

/* c-ares' answer as a getaddrinfo() list. */
static int convert(struct addrinfo **out, const struct ares_addrinfo *ai,
                   const char *host, int port, const struct addrinfo *h) {
  const char *canon = NULL;
  if (h->ai_flags & AI_CANONNAME) {
    const struct ares_addrinfo_cname *c = ai->cnames;
    while (c && c->next) c = c->next;
    canon = c && c->name ? c->name : ai->name ? ai->name : host;
  }
  struct addrinfo **tail = out;
  for (const struct ares_addrinfo_node *n = ai->nodes; n; n = n->ai_next) {
    if (n->ai_family != AF_INET && n->ai_family != AF_INET6) continue;
    int rc = add_entry(&tail, n->ai_addr, n->ai_addrlen, port, h, canon);
    if (rc < 0) {
      aioc_freeaddrinfo(*out);
      *out = NULL;
      return fail(rc, "out of memory");
    }
    canon = NULL;
  }
  if (!*out) return fail(-ENODATA, "%s: no address", host);
  return 0;
}

/* The port of service: 0 with *port set, or a code. */
static int service_port(const char *service, const struct addrinfo *h,
                        int *port) {
  *port = 0;
  if (!service) return 0;
  if (isdigit((unsigned char)service[0])) {
    char *end;
    unsigned long v = strtoul(service, &end, 10);
    if (*end == 0) {
      if (v > 65535) return fail(-EINVAL, "port %s over 65535", service);
      *port = (int)v;
      return 0;
    }
  }
  if (h->ai_flags & AI_NUMERICSERV)
    return fail(-EINVAL, "service \"%s\" is not a number", service);
  struct servent se, *sp = NULL;
  char buf[1024];
  const char *proto = h->ai_socktype == SOCK_DGRAM ? "udp" : "tcp";
  if (getservbyname_r(service, proto, &se, buf, sizeof buf, &sp) != 0 || !sp)
    return fail(-EINVAL, "unknown service \"%s\" (%s)", service, proto);
  *port = ntohs((uint16_t)sp->s_port);
  return 0;
}

/* ---- lookups ---- */

static void free_answer(void *p) { ares_freeaddrinfo(p); }

static void on_answer(void *arg, int status, int timeouts,
                      struct ares_addrinfo *res) {
  (void)timeouts;
  query *q = arg;
  resolver *r = q->r;
  aioc__list_del(&q->link);
  r->nqueries--;
  if (!q->detached) {
    r->nwaiting--;
    if (status == ARES_SUCCESS) {
      if (aioc_future_set_result(q->f, res, free_answer) == 0) res = NULL;
    } else {
      int code = map_status(status);
      AIOC__IGNORE(aioc_future_set_error(
          q->f, code, "%s: %s (%s)", q->host, aioc_strerror(code),
          ares_strerror(status)));
    }
  }
  if (res) ares_freeaddrinfo(res);
  aioc_future_unref(q->f);
  aioc__free(q);
}

/* The waiter leaves before the answer: when nobody else waits, c-ares
 * abandons every query of the channel (it has no way to abandon one). */
static void detach(query *q) {
  resolver *r = q->r;
  q->detached = true;
  if (--r->nwaiting == 0) {
    ares_cancel(r->ch);
    after_call(r);
  }
}

static bool future_done(void *arg) {
  return ((aioc_future *)arg)->state != AIOC_FUTURE_PENDING;
}

#define KNOWN_FLAGS                                                            \
  (AI_PASSIVE | AI_CANONNAME | AI_NUMERICHOST | AI_NUMERICSERV | AI_V4MAPPED | \
   AI_ALL | AI_ADDRCONFIG)

/* Waits for f, the future of q; 0 with c-ares' answer in *res, or a
 * code. q is freed once f is done. */
static int wait_answer(aioc_future *f, query *q, const char *host,
                       double timeout, struct ares_addrinfo **res) {
  void *v = NULL;
  int rc;
  aioc_task *t = aioc__current();
  if (future_done(f)) {
    rc = aioc__future_take(f, &v, t);
    if (rc < 0 && !t) aioc__plain_error_set(f->ext ? f->ext->msg : NULL);
  } else if (t) {
    aioc_scope *s = NULL;
    rc = timeout == AIOC_FOREVER ? 0 : aioc_timeout_enter(&s, timeout);
    if (rc == 0) rc = aioc_await(f, &v);
    if (s) {
      AIOC__IGNORE(aioc_scope_exit(s));
      aioc_scope_free(s);
    }
  } else if (aioc__running) {
    rc = fail(AIOC_ERUNNING, "%s: a lookup cannot wait in a callback",
              host);
  } else {
    aioc__waitpoint wp;
    aioc__waitpoint_init(&wp, f->loop);
    rc = aioc__waitpoint_wait(&wp, future_done, f, timeout, false);
    if (rc == 0) {
      rc = aioc__future_take(f, &v, NULL);
      if (rc < 0) aioc__plain_error_set(f->ext ? f->ext->msg : NULL);
    }
  }
  if (!future_done(f)) detach(q); /* we gave up: q is still c-ares' */
  *res = v;
  return rc;
}

int aioc_getaddrinfo(struct addrinfo **out, const char *host,
                     const char *service, const struct addrinfo *hints,
                     double timeout) {
  if (!out) return fail(-EINVAL, "no place for the result");
  *out = NULL;
  if (isnan(timeout) || timeout < 0) return fail(-EINVAL, "bad timeout");
  struct addrinfo h0;
  memset(&h0, 0, sizeof h0);
  const struct addrinfo *h = hints ? hints : &h0;
  if (h->ai_flags & ~KNOWN_FLAGS)
    return fail(-EINVAL, "unknown flags 0x%x", h->ai_flags & ~KNOWN_FLAGS);
  if (h->ai_family != AF_UNSPEC && h->ai_family != AF_INET &&
      h->ai_family != AF_INET6)
    return fail(-EINVAL, "address family %d not supported", h->ai_family);
  if (!host && !service) return fail(-EINVAL, "no host and no service");
  int port, rc;
  if ((rc = service_port(service, h, &port)) < 0) return rc;
  if (!host) {
    if ((rc = null_host(out, port, h)) < 0) {
      aioc_freeaddrinfo(*out);
      *out = NULL;
      return fail(rc, "out of memory");
    }
    return 0;
  }
  if (!*host) return fail(AIOC_ENONAME, "empty host name");
  if (numeric_host(out, host, port, h, &rc)) return rc;
  if (h->ai_flags & AI_NUMERICHOST)
    return fail(AIOC_ENONAME, "%s: not a numeric address", host);

  aioc_loop *loop = aioc__io_pick_loop(NULL, "aioc_getaddrinfo", &rc);
  if (!loop) return fail(rc, "no loop to resolve %s on", host);
  resolver *r = resolver_of(loop);
  if (!r) return fail(-ENOMEM, "out of memory");
  if (!r->ch && (rc = channel_new(r, &r->ch, NULL)) < 0) return rc;
  size_t hlen = strlen(host) + 1;
  query *q = aioc__alloc(sizeof *q + hlen);
  if (!q) return fail(-ENOMEM, "out of memory");
  if ((rc = aioc_future_new(&q->f, loop)) < 0) {
    aioc__free(q);
    return fail(rc, "out of memory");
  }
  memcpy(q->host, host, hlen);
  q->r = r;
  q->detached = false;
  aioc_future *f = aioc_future_ref(q->f); /* ours; q keeps its own */
  aioc__list_push_back(&r->queries, &q->link);
  r->nqueries++;
  r->nwaiting++;

  struct ares_addrinfo_hints ah;
  memset(&ah, 0, sizeof ah);
  ah.ai_family = h->ai_family;
  ah.ai_socktype = h->ai_socktype;
  ah.ai_protocol = h->ai_protocol;
  if (h->ai_flags & AI_CANONNAME) ah.ai_flags |= ARES_AI_CANONNAME;
  if (h->ai_flags & AI_V4MAPPED) ah.ai_flags |= ARES_AI_V4MAPPED;
  if (h->ai_flags & AI_ALL) ah.ai_flags |= ARES_AI_ALL;
  ares_getaddrinfo(r->ch, host, NULL, &ah, on_answer, q);
  after_call(r); /* may have answered (the hosts file), or failed */

  struct ares_addrinfo *res = NULL;
  rc = wait_answer(f, q, host, timeout, &res); /* q may be gone already */
  aioc_future_unref(f);
  if (rc < 0) return rc;
  rc = convert(out, res, host, port, h);
  ares_freeaddrinfo(res);
  return rc;
}
