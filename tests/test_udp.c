/* UDP endpoints over loopback (127.0.0.1 and ::1): echo between
 * endpoints with the peers' addresses, connected UDP, ICMP port
 * unreachable as -ECONNREFUSED, truncation, the iterator with a timeout
 * between datagrams, cancellation and deadlines during a receive, a close
 * from another task, several receivers, options, names, bad input, and
 * calls outside a task. */
#include <math.h>

#include "io_common.h"
#include "timer_fill.h"

/* ---- helpers -------------------------------------------------------------- */

/* An endpoint bound to host (numeric loopback) on a port the system picks;
 * NULL when the family is missing here (IPv6 disabled). */
static aioc_udp *bound(const char *host) {
  aioc_udp *u = NULL;
  int rc = aioc_udp_open(&u, host, 0, NULL, 0, NULL, 5);
  if (strchr(host, ':') && (rc == -EADDRNOTAVAIL || rc == -EAFNOSUPPORT))
    return NULL;
  CHECK_RC(rc, 0);
  return u;
}

/* The address of u (its local address). */
static socklen_t addr_of(aioc_udp *u, struct sockaddr_storage *ss) {
  int n = aioc_udp_sockname(u, ss);
  CHECK(n > 0);
  return n > 0 ? (socklen_t)n : 0;
}

static int port_of(const struct sockaddr_storage *ss) {
  return ss->ss_family == AF_INET6
             ? ntohs(((const struct sockaddr_in6 *)ss)->sin6_port)
             : ntohs(((const struct sockaddr_in *)ss)->sin_port);
}

/* Same family, address and port. */
static bool same_addr(const struct sockaddr *a, const struct sockaddr *b) {
  if (a->sa_family != b->sa_family) return false;
  if (a->sa_family == AF_INET) {
    const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
    return x->sin_port == y->sin_port &&
           x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
  return x->sin6_port == y->sin6_port &&
         memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
}

/* A loopback UDP port with nothing bound to it (bound, then closed). */
static int dead_udp_port(int family) {
  int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  socklen_t l;
  if (family == AF_INET6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    a->sin6_family = AF_INET6;
    a->sin6_addr = in6addr_loopback;
    l = sizeof *a;
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    l = sizeof *a;
  }
  CHECK(bind(fd, (struct sockaddr *)&ss, l) == 0);
  CHECK(getsockname(fd, (struct sockaddr *)&ss, &l) == 0);
  close(fd);
  return port_of(&ss);
}

/* ---- echo: unconnected endpoints, the peers' addresses ------------------- */

typedef struct echo_srv {
  aioc_udp *u;
  int served;
} echo_srv;

/* Sends every datagram back to its sender, until the endpoint closes. */
static int echo_task(void *arg, void **res) {
  (void)res;
  echo_srv *e = arg;
  for (;;) {
    char buf[2048];
    size_t n, alen;
    struct sockaddr_storage from;
    int rc = aioc_udp_recvfrom(e->u, buf, sizeof buf, &n, &from, &alen,
                               AIOC_FOREVER);
    if (rc == AIOC_ECLOSED) return 0;
    CHECK_RC(rc, 0);
    if (rc < 0) return rc;
    rc = aioc_udp_sendto(e->u, buf, n, (struct sockaddr *)&from, alen, 5);
    CHECK_RC(rc, 0);
    e->served++;
  }
}

static int echo_main(void *arg, void **res) {
  (void)res;
  const char *host = arg;
  echo_srv e = {.u = bound(host)};
  if (!e.u) {
    printf("(no IPv6 loopback: skipped)\n");
    return 0;
  }
  struct sockaddr_storage saddr;
  socklen_t slen = addr_of(e.u, &saddr);
  CHECK(aioc_udp_port(e.u) > 0);
  CHECK_EQ(aioc_udp_port(e.u), port_of(&saddr));
  aioc_task *srv = spawn_io(echo_task, &e);

  /* An unconnected client: sendto, and the reply's sender is the server. */
  aioc_udp *c = bound(host);
  struct sockaddr_storage caddr;
  addr_of(c, &caddr);
  for (int i = 0; i < 20; i++) {
    char msg[32], back[64];
    int len = snprintf(msg, sizeof msg, "datagram %d", i);
    CHECK_RC(aioc_udp_sendto(c, msg, (size_t)len, (struct sockaddr *)&saddr,
                             slen, 5),
             0);
    size_t n, alen;
    struct sockaddr_storage from;
    CHECK_RC(aioc_udp_recvfrom(c, back, sizeof back, &n, &from, &alen, 5), 0);
    CHECK_EQ(n, len);
    CHECK(memcmp(back, msg, (size_t)len) == 0);
    CHECK_EQ(alen, slen);
    CHECK(same_addr((struct sockaddr *)&from, (struct sockaddr *)&saddr));
  }
  /* Not connected: no peer. */
  struct sockaddr_storage peer;
  CHECK_RC(aioc_udp_peername(c, &peer), -ENOTCONN);
  CHECK_RC(aioc_udp_send(c, "x", 1, 1), -EDESTADDRREQ);
  aioc_udp_free(c);

  /* A connected client: send, and the peer's address is the server's. */
  CHECK_RC(aioc_udp_open(&c, NULL, 0, host, port_of(&saddr), NULL, 5), 0);
  CHECK_EQ(aioc_udp_peername(c, &peer), slen);
  CHECK(same_addr((struct sockaddr *)&peer, (struct sockaddr *)&saddr));
  CHECK(aioc_udp_port(c) > 0);
  CHECK(aioc_udp_fd(c) >= 0);
  for (int i = 0; i < 20; i++) {
    char msg[32], back[64];
    int len = snprintf(msg, sizeof msg, "connected %d", i);
    CHECK_RC(aioc_udp_send(c, msg, (size_t)len, 5), 0);
    size_t n;
    CHECK_RC(aioc_udp_recvfrom(c, back, sizeof back, &n, NULL, NULL, 5), 0);
    CHECK_EQ(n, len);
    CHECK(memcmp(back, msg, (size_t)len) == 0);
  }
  /* A datagram of 0 bytes is one. */
  CHECK_RC(aioc_udp_send(c, "", 0, 5), 0);
  size_t n = 99;
  char b[4];
  CHECK_RC(aioc_udp_recvfrom(c, b, sizeof b, &n, NULL, NULL, 5), 0);
  CHECK_EQ(n, 0);
  aioc_udp_free(c);

  CHECK_EQ(e.served, 41);
  CHECK_RC(aioc_udp_close(e.u), 0); /* the echo task returns */
  CHECK_RC(join_io(srv), 0);
  aioc_udp_free(e.u);
  return 0;
}

TEST(test_echo_udp4) { io_run(echo_main, "127.0.0.1"); }
TEST(test_echo_udp6) { io_run(echo_main, "::1"); }

/* ---- connected UDP: only the peer's datagrams, ICMP errors ---------------- */

static int connected_main(void *arg, void **res) {
  (void)arg, (void)res;
  aioc_udp *a = bound("127.0.0.1"), *b = bound("127.0.0.1"),
           *stranger = bound("127.0.0.1");
  struct sockaddr_storage aa, ba;
  socklen_t al = addr_of(a, &aa);
  addr_of(b, &ba);
  /* b connected to a, bound to its own port (a local port with a remote
   * binds the wildcard of the remote's family on it). */
  aioc_udp *bc;
  CHECK_RC(aioc_udp_open(&bc, "127.0.0.1", 0, "127.0.0.1", port_of(&aa), NULL,
                         5),
           0);
  struct sockaddr_storage bca;
  socklen_t bcl = addr_of(bc, &bca);
  /* A stranger's datagram is dropped by the kernel; a's arrives. */
  CHECK_RC(aioc_udp_sendto(stranger, "no", 2, (struct sockaddr *)&bca, bcl, 5),
           0);
  CHECK_RC(aioc_udp_sendto(a, "yes", 3, (struct sockaddr *)&bca, bcl, 5), 0);
  char buf[16];
  size_t n, fl;
  struct sockaddr_storage from;
  CHECK_RC(aioc_udp_recvfrom(bc, buf, sizeof buf, &n, &from, &fl, 5), 0);
  CHECK_EQ(n, 3);
  CHECK(memcmp(buf, "yes", 3) == 0);
  CHECK_EQ(fl, al);
  CHECK(same_addr((struct sockaddr *)&from, (struct sockaddr *)&aa));
  CHECK_RC(aioc_udp_recvfrom(bc, buf, sizeof buf, &n, NULL, NULL, 0),
           -ETIMEDOUT);
  /* sendto() on a connected endpoint goes where it says (Linux). */
  CHECK_RC(aioc_udp_sendto(bc, "b", 1, (struct sockaddr *)&ba, addr_of(b, &ba),
                           5),
           0);
  CHECK_RC(aioc_udp_recvfrom(b, buf, sizeof buf, &n, NULL, NULL, 5), 0);
  CHECK_EQ(n, 1);
  /* A local port with a remote and no local host. */
  aioc_udp *lp;
  int port = dead_udp_port(AF_INET);
  CHECK_RC(aioc_udp_open(&lp, NULL, port, "127.0.0.1", port_of(&aa), NULL, 5),
           0);
  CHECK_EQ(aioc_udp_port(lp), port);
  aioc_udp_free(lp);
  aioc_udp_free(bc);
  aioc_udp_free(a);
  aioc_udp_free(b);
  aioc_udp_free(stranger);
  return 0;
}

TEST(test_connected_filters_peer) { io_run(connected_main, NULL); }

typedef struct recv_op {
  aioc_udp *u;
  char buf[64];
  size_t n;
  int rc;
} recv_op;

static int recv_task(void *arg, void **res) {
  (void)res;
  recv_op *o = arg;
  o->rc = aioc_udp_recvfrom(o->u, o->buf, sizeof o->buf, &o->n, NULL, NULL,
                            AIOC_FOREVER);
  return 0;
}

/* Port unreachable: the next receive (a waiting one) or send of a
 * connected endpoint returns -ECONNREFUSED, once; the endpoint stays
 * usable. */
static int refused_main(void *arg, void **res) {
  (void)res;
  const char *host = arg;
  int family = strchr(host, ':') ? AF_INET6 : AF_INET;
  if (family == AF_INET6) {
    aioc_udp *probe = bound(host);
    if (!probe) {
      printf("(no IPv6 loopback: skipped)\n");
      return 0;
    }
    aioc_udp_free(probe);
  }
  aioc_udp *c;
  CHECK_RC(aioc_udp_open(&c, NULL, 0, host, dead_udp_port(family), NULL, 5),
           0);
  /* A receive waiting in another task is woken by the error. */
  recv_op o = {.u = c};
  aioc_task *t = spawn_io(recv_task, &o);
  settle_io();
  CHECK(aioc_task_is_running(t));
  CHECK_RC(aioc_udp_send(c, "ping", 4, 5), 0);
  CHECK_RC(join_io(t), 0);
  CHECK_RC(o.rc, -ECONNREFUSED);
  /* Reported once: nothing more to receive. */
  size_t n;
  char buf[8];
  CHECK_RC(aioc_udp_recvfrom(c, buf, sizeof buf, &n, NULL, NULL, 0.05),
           -ETIMEDOUT);
  /* The next send after an ICMP error returns it. */
  CHECK_RC(aioc_udp_send(c, "ping", 4, 5), 0);
  int rc = 0;
  for (int i = 0; i < 100 && rc == 0; i++) {
    IGNORE_RC(aioc_sleep(0.01));
    rc = aioc_udp_send(c, "ping", 4, 5);
  }
  CHECK_RC(rc, -ECONNREFUSED);
  /* And a receive that finds it pending. */
  for (int i = 0; i < 100; i++) {
    rc = aioc_udp_recvfrom(c, buf, sizeof buf, &n, NULL, NULL, 0.05);
    if (rc != -ETIMEDOUT) break;
    IGNORE_RC(aioc_udp_send(c, "ping", 4, 5));
  }
  CHECK_RC(rc, -ECONNREFUSED);
  aioc_udp_free(c);
  return 0;
}

TEST(test_connection_refused4) { io_run(refused_main, "127.0.0.1"); }
TEST(test_connection_refused6) { io_run(refused_main, "::1"); }

/* ---- truncation ------------------------------------------------------------ */

static int trunc_main(void *arg, void **res) {
  (void)arg, (void)res;
  aioc_udp *r = bound("127.0.0.1"), *s = bound("127.0.0.1");
  struct sockaddr_storage ra, sa;
  socklen_t rl = addr_of(r, &ra);
  socklen_t sl = addr_of(s, &sa);
  char big[1000];
  for (size_t i = 0; i < sizeof big; i++) big[i] = (char)('a' + i % 26);
  /* recvfrom: the first cap bytes, the real size, the sender, -EMSGSIZE. */
  CHECK_RC(aioc_udp_sendto(s, big, sizeof big, (struct sockaddr *)&ra, rl, 5),
           0);
  CHECK_RC(aioc_udp_sendto(s, "next", 4, (struct sockaddr *)&ra, rl, 5), 0);
  char buf[16];
  memset(buf, 0, sizeof buf);
  size_t n, fl;
  struct sockaddr_storage from;
  CHECK_RC(aioc_udp_recvfrom(r, buf, 10, &n, &from, &fl, 5), -EMSGSIZE);
  CHECK_EQ(n, sizeof big);
  CHECK(memcmp(buf, big, 10) == 0);
  CHECK_EQ(buf[10], 0); /* nothing beyond cap */
  CHECK_EQ(fl, sl);
  CHECK(same_addr((struct sockaddr *)&from, (struct sockaddr *)&sa));
  const char *msg = aioc_error_message();
  CHECK(msg && strstr(msg, "1000 bytes") && strstr(msg, "truncated"));
  /* The rest is gone: the next call gets the next datagram, whole. */
  CHECK_RC(aioc_udp_recvfrom(r, buf, sizeof buf, &n, NULL, NULL, 5), 0);
  CHECK_EQ(n, 4);
  CHECK(memcmp(buf, "next", 4) == 0);
  /* A datagram exactly the size of the buffer is whole. */
  CHECK_RC(aioc_udp_sendto(s, big, 16, (struct sockaddr *)&ra, rl, 5), 0);
  CHECK_RC(aioc_udp_recvfrom(r, buf, 16, &n, NULL, NULL, 5), 0);
  CHECK_EQ(n, 16);
  /* cap 0: an empty datagram fits, another is truncated to nothing. */
  CHECK_RC(aioc_udp_sendto(s, NULL, 0, (struct sockaddr *)&ra, rl, 5), 0);
  CHECK_RC(aioc_udp_sendto(s, "xy", 2, (struct sockaddr *)&ra, rl, 5), 0);
  CHECK_RC(aioc_udp_recvfrom(r, NULL, 0, &n, NULL, NULL, 5), 0);
  CHECK_EQ(n, 0);
  CHECK_RC(aioc_udp_recvfrom(r, NULL, 0, &n, NULL, NULL, 5), -EMSGSIZE);
  CHECK_EQ(n, 2);
  /* A datagram larger than any UDP datagram cannot be sent. */
  size_t huge = 70000;
  char *h = calloc(1, huge);
  CHECK_RC(aioc_udp_sendto(s, h, huge, (struct sockaddr *)&ra, rl, 5),
           -EMSGSIZE);
  /* The largest IPv4 datagram comes whole through the default iterator. */
  CHECK_RC(aioc_udp_sendto(s, h, 65507, (struct sockaddr *)&ra, rl, 5), 0);
  free(h);
  aioc_iter *it;
  CHECK_RC(aioc_udp_iter(&it, r, 0), 0);
  void *item;
  CHECK_RC(aioc_iter_next(it, &item, 5), 0);
  CHECK_EQ(((const aioc_datagram *)item)->len, 65507);
  aioc_iter_free(it);

  /* The iterator: a datagram over max is -EMSGSIZE and skipped. */
  r = bound("127.0.0.1");
  rl = addr_of(r, &ra);
  CHECK_RC(aioc_udp_iter(&it, r, 8), 0);
  CHECK_RC(aioc_udp_sendto(s, "12345678", 8, (struct sockaddr *)&ra, rl, 5),
           0);
  CHECK_RC(aioc_udp_sendto(s, "123456789", 9, (struct sockaddr *)&ra, rl, 5),
           0);
  CHECK_RC(aioc_udp_sendto(s, "ok", 2, (struct sockaddr *)&ra, rl, 5), 0);
  CHECK_RC(aioc_iter_next(it, &item, 5), 0);
  CHECK_EQ(((const aioc_datagram *)item)->len, 8);
  CHECK_RC(aioc_iter_next(it, &item, 5), -EMSGSIZE);
  CHECK(item == NULL);
  msg = aioc_error_message();
  CHECK(msg && strstr(msg, "9 bytes") && strstr(msg, "skipped"));
  CHECK_RC(aioc_iter_next(it, &item, 5), 0);
  const aioc_datagram *d = item;
  CHECK_EQ(d->len, 2);
  CHECK(memcmp(d->data, "ok", 2) == 0);
  CHECK(same_addr(d->addr, (struct sockaddr *)&sa));
  CHECK_EQ(d->addrlen, sl);
  aioc_iter_free(it);

  /* The endpoint's max_datagram is the iterator's default. */
  aioc_udp_options o = {.max_datagram = 4};
  CHECK_RC(aioc_udp_open(&r, "127.0.0.1", 0, NULL, 0, &o, 5), 0);
  rl = addr_of(r, &ra);
  CHECK_RC(aioc_udp_iter(&it, r, 0), 0);
  CHECK_RC(aioc_udp_sendto(s, "12345", 5, (struct sockaddr *)&ra, rl, 5), 0);
  CHECK_RC(aioc_udp_sendto(s, "1234", 4, (struct sockaddr *)&ra, rl, 5), 0);
  CHECK_RC(aioc_iter_next(it, &item, 5), -EMSGSIZE);
  CHECK_RC(aioc_iter_next(it, &item, 5), 0);
  CHECK_EQ(((const aioc_datagram *)item)->len, 4);
  aioc_iter_free(it);
  aioc_udp_free(s);
  return 0;
}

TEST(test_truncation) { io_run(trunc_main, NULL); }

/* ---- the iterator: a timeout between datagrams ---------------------------- */

typedef struct late {
  aioc_udp *s;
  struct sockaddr_storage to;
  socklen_t tolen;
  double delays[4];
  int n;
} late;

/* Sends "0", "1"... each after its delay. */
static int late_sender(void *arg, void **res) {
  (void)res;
  late *l = arg;
  for (int i = 0; i < l->n; i++) {
    int rc = aioc_sleep(l->delays[i]);
    if (rc < 0) return rc;
    char c = (char)('0' + i);
    rc = aioc_udp_sendto(l->s, &c, 1, (struct sockaddr *)&l->to, l->tolen, 5);
    CHECK_RC(rc, 0);
  }
  return 0;
}

/* Runs on the virtual clock: the timeouts take no real time, and loopback
 * delivers a datagram within the sendto() call. */
static int iter_timeout_main(void *arg, void **res) {
  (void)arg, (void)res;
  aioc_udp *r = bound("127.0.0.1");
  late l = {.s = bound("127.0.0.1"), .delays = {0.35, 0.05, 0.5}, .n = 3};
  l.tolen = addr_of(r, &l.to);
  aioc_iter *it;
  CHECK_RC(aioc_udp_iter(&it, r, 0), 0);
  aioc_task *t = spawn_io(late_sender, &l);
  /* next() with a timeout of 0.1 s: each -ETIMEDOUT received nothing, and
   * every datagram arrives, in order, after its timeouts. */
  int got = 0, timeouts = 0;
  double start = aioc_time();
  while (got < 3 && timeouts < 100) {
    void *item;
    int rc = aioc_iter_next(it, &item, 0.1);
    if (rc == -ETIMEDOUT) {
      timeouts++;
      continue;
    }
    CHECK_RC(rc, 0);
    if (rc < 0) break;
    const aioc_datagram *d = item;
    CHECK_EQ(d->len, 1);
    CHECK_EQ(d->data[0], '0' + got);
    got++;
  }
  CHECK_EQ(got, 3);
  CHECK(timeouts >= 3 + 4); /* 0.35 s: 3 of them; 0.5 s: 4 */
  CHECK(aioc_time() - start >= 0.9 - 1e-9);
  CHECK_RC(join_io(t), 0);

  /* Through aioc_iter_timed(): the same with a limit of 0.1 s before
   * the first datagram and between datagrams. */
  aioc_iter *timed;
  aioc_timed_options to = {.first = 0.1, .between = 0.1};
  CHECK_RC(aioc_iter_timed(&timed, it, &to), 0);
  l.n = 2;
  l.delays[0] = 0.25;
  l.delays[1] = 0.25;
  t = spawn_io(late_sender, &l);
  got = timeouts = 0;
  while (got < 2 && timeouts < 100) {
    void *item;
    int rc = aioc_iter_next(timed, &item, AIOC_FOREVER);
    if (rc == -ETIMEDOUT) {
      timeouts++;
      continue;
    }
    CHECK_RC(rc, 0);
    if (rc < 0) break;
    CHECK_EQ(((const aioc_datagram *)item)->data[0], '0' + got);
    got++;
  }
  CHECK_EQ(got, 2);
  CHECK(timeouts >= 4); /* two before each datagram */
  CHECK_RC(join_io(t), 0);
  /* Closing the iterator closes the endpoint: the end. */
  CHECK_RC(aioc_iter_close(timed), 0);
  void *item;
  CHECK_RC(aioc_iter_next(timed, &item, 1), AIOC_EXHAUSTED);
  aioc_iter_free(timed); /* frees the endpoint */
  aioc_udp_free(l.s);
  return 0;
}

TEST(test_iter_timeout) { CHECK_RC(run_main(iter_timeout_main, NULL, NULL), 0); }

/* The same on the real clock, the sender another endpoint of the same
 * loop: bounds are lower bounds only. */
static int iter_real_main(void *arg, void **res) {
  (void)arg, (void)res;
  aioc_udp *r = bound("127.0.0.1");
  late l = {.s = bound("127.0.0.1"), .delays = {0.15}, .n = 1};
  l.tolen = addr_of(r, &l.to);
  aioc_iter *it;
  CHECK_RC(aioc_udp_iter(&it, r, 0), 0);
  aioc_task *t = spawn_io(late_sender, &l);
  void *item;
  int timeouts = 0, rc;
  while ((rc = aioc_iter_next(it, &item, 0.02)) == -ETIMEDOUT && timeouts < 500)
    timeouts++;
  CHECK_RC(rc, 0);
  CHECK(timeouts >= 1);
  CHECK_EQ(((const aioc_datagram *)item)->data[0], '0');
  CHECK_RC(join_io(t), 0);
  aioc_iter_free(it);
  aioc_udp_free(l.s);
  return 0;
}

TEST(test_iter_timeout_real_clock) { io_run(iter_real_main, NULL); }

/* ---- cancellation and deadlines during a receive -------------------------- */

static int iter_task(void *arg, void **res) {
  (void)res;
  void **a = arg;
  void *item;
  *(int *)a[1] = aioc_iter_next(a[0], &item, AIOC_FOREVER);
  return 0;
}

static int cancel_main(void *arg, void **res) {
  (void)arg, (void)res;
  aioc_udp *r = bound("127.0.0.1"), *s = bound("127.0.0.1");
  struct sockaddr_storage ra;
  socklen_t rl = addr_of(r, &ra);
  /* A waiting receive, cancelled: -ECANCELED, nothing received. */
  recv_op o = {.u = r};
  aioc_task *t = spawn_io(recv_task, &o);
  settle_io();
  CHECK(aioc_task_is_running(t));
  aioc_task_cancel(t, NULL);
  CHECK_RC(join_io(t), 0);
  CHECK_RC(o.rc, -ECANCELED);
  /* The next datagram goes to the next receive. */
  CHECK_RC(aioc_udp_sendto(s, "a", 1, (struct sockaddr *)&ra, rl, 5), 0);
  char buf[8];
  size_t n;
  CHECK_RC(aioc_udp_recvfrom(r, buf, sizeof buf, &n, NULL, NULL, 5), 0);
  CHECK_EQ(buf[0], 'a');
  /* A deadline in scope: -ETIMEDOUT whatever the call's timeout. */
  aioc_scope *sc;
  CHECK_RC(aioc_timeout_enter(&sc, 0.05), 0);
  CHECK_RC(aioc_udp_recvfrom(r, buf, sizeof buf, &n, NULL, NULL, AIOC_FOREVER),
           -ETIMEDOUT);
  CHECK_RC(aioc_scope_exit(sc), -ETIMEDOUT);
  aioc_scope_free(sc);
  /* A datagram the poller reported is received at once even under an
   * expired scope (no wait, no check); with none, -ETIMEDOUT at once. */
  CHECK_RC(aioc_udp_sendto(s, "b", 1, (struct sockaddr *)&ra, rl, 5), 0);
  IGNORE_RC(aioc_sleep(0.01)); /* the loop polls */
  CHECK_RC(aioc_timeout_enter(&sc, 0), 0);
  CHECK_RC(aioc_udp_recvfrom(r, buf, sizeof buf, &n, NULL, NULL, 1), 0);
  CHECK_EQ(buf[0], 'b');
  CHECK_RC(aioc_udp_recvfrom(r, buf, sizeof buf, &n, NULL, NULL, 1),
           -ETIMEDOUT);
  CHECK_RC(aioc_scope_exit(sc), -ETIMEDOUT);
  aioc_scope_free(sc);
  /* The iterator's next, cancelled; the datagram after it is the next
   * item. */
  aioc_iter *it;
  CHECK_RC(aioc_udp_iter(&it, r, 0), 0);
  int rc = 1;
  void *a[2] = {it, &rc};
  t = spawn_io(iter_task, a);
  settle_io();
  aioc_task_cancel(t, NULL);
  CHECK_RC(join_io(t), 0);
  CHECK_RC(rc, -ECANCELED);
  CHECK_RC(aioc_udp_sendto(s, "c", 1, (struct sockaddr *)&ra, rl, 5), 0);
  void *item;
  CHECK_RC(aioc_iter_next(it, &item, 5), 0);
  CHECK_EQ(((const aioc_datagram *)item)->data[0], 'c');
  /* A timeout of 0 does not wait; a deadline in scope applies to next(). */
  CHECK_RC(aioc_iter_next(it, &item, 0), -ETIMEDOUT);
  CHECK_RC(aioc_timeout_enter(&sc, 0.05), 0);
  CHECK_RC(aioc_iter_next(it, &item, AIOC_FOREVER), -ETIMEDOUT);
  CHECK_RC(aioc_scope_exit(sc), -ETIMEDOUT);
  aioc_scope_free(sc);
  aioc_iter_free(it);
  aioc_udp_free(s);
  return 0;
}

TEST(test_cancel_and_deadline) { io_run(cancel_main, NULL); }

/* A finite timeout whose timer cannot be armed: -ENOMEM without waiting,
 * and nothing lost. */
static int nomem_main(void *arg, void **res) {
  (void)arg, (void)res;
  aioc_udp *r = bound("127.0.0.1"), *s = bound("127.0.0.1");
  struct sockaddr_storage ra;
  socklen_t rl = addr_of(r, &ra);
  aioc_iter *it;
  CHECK_RC(aioc_udp_iter(&it, r, 0), 0);
  fill_timer_heap(aioc_get_running_loop());
  check_fail_grow = true;
  char buf[8];
  size_t n;
  CHECK_RC(aioc_udp_recvfrom(r, buf, sizeof buf, &n, NULL, NULL, 0.05),
           -ENOMEM);
  void *item;
  CHECK_RC(aioc_iter_next(it, &item, 0.05), -ENOMEM);
  CHECK_DBL(aioc_time(), 0.0, 1e-9);
  /* Without a limit no timer is needed. */
  CHECK_RC(aioc_udp_sendto(s, "m", 1, (struct sockaddr *)&ra, rl, 0.05), 0);
  CHECK_RC(aioc_iter_next(it, &item, AIOC_FOREVER), 0);
  CHECK_EQ(((const aioc_datagram *)item)->data[0], 'm');
  check_fail_grow = false;
  aioc_iter_free(it);
  aioc_udp_free(s);
  return 0;
}

TEST(test_timer_nomem) {
  aioc_set_allocator(check_grow_failing_realloc, NULL);
  CHECK_RC(aioc_event_new(&nomem_ev), 0);
  CHECK_RC(run_main(nomem_main, NULL, NULL), 0);
  aioc_event_free(nomem_ev);
  aioc_set_allocator(NULL, NULL);
}

/* ---- a close (or a free) from another task while a receive waits ---------- */

static int close_main(void *arg, void **res) {
  (void)arg, (void)res;
  aioc_udp *r = bound("127.0.0.1");
  recv_op o[3] = {{.u = r}, {.u = r}, {.u = r}};
  aioc_task *t[3];
  for (int i = 0; i < 3; i++) t[i] = spawn_io(recv_task, &o[i]);
  settle_io();
  CHECK_RC(aioc_udp_close(r), 0);
  for (int i = 0; i < 3; i++) {
    CHECK_RC(join_io(t[i]), 0);
    CHECK_RC(o[i].rc, AIOC_ECLOSED);
  }
  /* Every later call says so. */
  char buf[4];
  size_t n;
  struct sockaddr_storage ss;
  CHECK_RC(aioc_udp_close(r), AIOC_ECLOSED);
  CHECK_RC(aioc_udp_recvfrom(r, buf, sizeof buf, &n, NULL, NULL, 1),
           AIOC_ECLOSED);
  CHECK_RC(aioc_udp_send(r, "x", 1, 1), AIOC_ECLOSED);
  CHECK_RC(aioc_udp_sendto(r, "x", 1, (struct sockaddr *)&ss, sizeof(struct sockaddr_in), 1),
           AIOC_ECLOSED);
  CHECK_RC(aioc_udp_sockname(r, &ss), AIOC_ECLOSED);
  CHECK_RC(aioc_udp_peername(r, &ss), AIOC_ECLOSED);
  CHECK_RC(aioc_udp_port(r), AIOC_ECLOSED);
  CHECK_EQ(aioc_udp_fd(r), -1);
  aioc_iter *it;
  CHECK_RC(aioc_udp_iter(&it, r, 0), 0);
  void *item;
  CHECK_RC(aioc_iter_next(it, &item, 1), AIOC_ECLOSED);
  aioc_iter_free(it); /* frees r */

  /* Freed while receives wait: they return AIOC_ECLOSED, and the memory
   * goes when the last has left (AddressSanitizer would see a use after
   * free otherwise). */
  r = bound("127.0.0.1");
  for (int i = 0; i < 3; i++) {
    o[i] = (recv_op){.u = r};
    t[i] = spawn_io(recv_task, &o[i]);
  }
  settle_io();
  aioc_udp_free(r);
  for (int i = 0; i < 3; i++) {
    CHECK_RC(join_io(t[i]), 0);
    CHECK_RC(o[i].rc, AIOC_ECLOSED);
  }
  return 0;
}

TEST(test_close_while_receiving) { io_run(close_main, NULL); }

/* ---- several receivers on one endpoint ------------------------------------ */

typedef struct rx {
  aioc_udp *u;
  int *seen; /* per datagram number */
  int count;
} rx;

static int rx_task(void *arg, void **res) {
  (void)res;
  rx *x = arg;
  for (;;) {
    unsigned char buf[8];
    size_t n;
    int rc = aioc_udp_recvfrom(x->u, buf, sizeof buf, &n, NULL, NULL,
                               AIOC_FOREVER);
    if (rc == AIOC_ECLOSED) return 0;
    CHECK_RC(rc, 0);
    if (rc < 0) return rc;
    CHECK_EQ(n, 2);
    x->seen[buf[0] | buf[1] << 8]++;
    x->count++;
  }
}

static int many_main(void *arg, void **res) {
  (void)arg, (void)res;
  enum { R = 4, N = 400 };
  aioc_udp_options ro = {.recv_buffer = 1 << 20};
  aioc_udp *r, *s = bound("127.0.0.1");
  CHECK_RC(aioc_udp_open(&r, "127.0.0.1", 0, NULL, 0, &ro, 5), 0);
  struct sockaddr_storage ra;
  socklen_t rl = addr_of(r, &ra);
  static int seen[N];
  memset(seen, 0, sizeof seen);
  rx x[R];
  aioc_task *t[R];
  for (int i = 0; i < R; i++) {
    x[i] = (rx){.u = r, .seen = seen};
    t[i] = spawn_io(rx_task, &x[i]);
  }
  settle_io();
  /* In bursts the receive buffer holds (loopback drops nothing then); a
   * short sleep lets the loop poll, and the receivers drain the socket. */
  int total = 0;
  for (int i = 0; i < N; i++) {
    unsigned char d[2] = {(unsigned char)(i & 0xff), (unsigned char)(i >> 8)};
    CHECK_RC(aioc_udp_sendto(s, d, 2, (struct sockaddr *)&ra, rl, 5), 0);
    if (i % 20 == 19) IGNORE_RC(aioc_sleep(0.001));
  }
  for (int k = 0; k < 500; k++) {
    total = 0;
    for (int i = 0; i < R; i++) total += x[i].count;
    if (total == N) break;
    IGNORE_RC(aioc_sleep(0.01));
  }
  CHECK_EQ(total, N);
  for (int i = 0; i < N; i++) CHECK_EQ(seen[i], 1);
  aioc_udp_free(r);
  for (int i = 0; i < R; i++) CHECK_RC(join_io(t[i]), 0);
  aioc_udp_free(s);
  return 0;
}

TEST(test_several_receivers) { io_run(many_main, NULL); }

/* ---- options ---------------------------------------------------------------- */

static int options_main(void *arg, void **res) {
  (void)arg, (void)res;
  /* A port in use; with SO_REUSEPORT on both, two endpoints share it. */
  aioc_udp *a = bound("127.0.0.1"), *b;
  int port = aioc_udp_port(a);
  CHECK_RC(aioc_udp_open(&b, "127.0.0.1", port, NULL, 0, NULL, 5), -EADDRINUSE);
  CHECK(b == NULL);
  const char *msg = aioc_error_message();
  CHECK(msg && strstr(msg, "127.0.0.1:") && strstr(msg, "bind"));
  aioc_udp_free(a);
  aioc_udp_options ro = {.reuse_port = 1};
  CHECK_RC(aioc_udp_open(&a, "127.0.0.1", 0, NULL, 0, &ro, 5), 0);
  port = aioc_udp_port(a);
  CHECK_RC(aioc_udp_open(&b, "127.0.0.1", port, NULL, 0, &ro, 5), 0);
  CHECK_EQ(aioc_udp_port(b), port);
  aioc_udp_free(b);
  aioc_udp_free(a);
  aioc_udp_options ra = {.reuse_addr = 1};
  CHECK_RC(aioc_udp_open(&a, "127.0.0.1", 0, NULL, 0, &ra, 5), 0);
  port = aioc_udp_port(a);
  CHECK_RC(aioc_udp_open(&b, "127.0.0.1", port, NULL, 0, &ra, 5), 0);
  aioc_udp_free(b);
  aioc_udp_free(a);

  /* Buffer sizes (Linux doubles what it is given). */
  aioc_udp_options bo = {.recv_buffer = 100000, .send_buffer = 50000};
  CHECK_RC(aioc_udp_open(&a, "127.0.0.1", 0, NULL, 0, &bo, 5), 0);
  int v = 0;
  socklen_t vl = sizeof v;
  CHECK(getsockopt(aioc_udp_fd(a), SOL_SOCKET, SO_RCVBUF, &v, &vl) == 0);
  CHECK(v >= 100000);
  CHECK(getsockopt(aioc_udp_fd(a), SOL_SOCKET, SO_SNDBUF, &v, &vl) == 0);
  CHECK(v >= 50000);
  /* Non-blocking and close-on-exec. */
  CHECK(fcntl(aioc_udp_fd(a), F_GETFL) & O_NONBLOCK);
  CHECK(fcntl(aioc_udp_fd(a), F_GETFD) & FD_CLOEXEC);
  aioc_udp_free(a);

  /* Broadcast: refused without the option, sent with it (to the
   * loopback broadcast address, where the system has one). */
  a = bound("127.0.0.1");
  struct sockaddr_in bc = {.sin_family = AF_INET, .sin_port = htons(9)};
  bc.sin_addr.s_addr = htonl(0x7fffffff); /* 127.255.255.255 */
  int rc = aioc_udp_sendto(a, "b", 1, (struct sockaddr *)&bc, sizeof bc, 5);
  if (rc == -ENETUNREACH) {
    printf("(no loopback broadcast address: broadcast skipped)\n");
  } else {
    CHECK_RC(rc, -EACCES);
    aioc_udp_options bo2 = {.broadcast = 1};
    aioc_udp *w;
    CHECK_RC(aioc_udp_open(&w, NULL, 0, NULL, 0, &bo2, 5), 0);
    v = 0;
    vl = sizeof v;
    CHECK(getsockopt(aioc_udp_fd(w), SOL_SOCKET, SO_BROADCAST, &v, &vl) == 0);
    CHECK(v != 0);
    CHECK_RC(aioc_udp_sendto(w, "b", 1, (struct sockaddr *)&bc, sizeof bc, 5),
             0);
    aioc_udp_free(w);
  }
  aioc_udp_free(a);

  /* The wildcard address: IPv4 by default, IPv6 with the family. */
  struct sockaddr_storage ss;
  CHECK_RC(aioc_udp_open(&a, NULL, 0, NULL, 0, NULL, 5), 0);
  CHECK(aioc_udp_sockname(a, &ss) > 0);
  CHECK_EQ(ss.ss_family, AF_INET);
  CHECK_EQ(((struct sockaddr_in *)&ss)->sin_addr.s_addr, htonl(INADDR_ANY));
  aioc_udp_free(a);
  aioc_udp_options fo = {.family = AF_INET6};
  rc = aioc_udp_open(&a, NULL, 0, NULL, 0, &fo, 5);
  if (rc == 0) {
    CHECK(aioc_udp_sockname(a, &ss) > 0);
    CHECK_EQ(ss.ss_family, AF_INET6);
    aioc_udp_free(a);
  } else {
    CHECK_RC(rc, -EAFNOSUPPORT);
  }
  /* A family the addresses do not have. */
  CHECK_RC(aioc_udp_open(&a, "127.0.0.1", 0, NULL, 0, &fo, 5), -EAFNOSUPPORT);
  CHECK_RC(aioc_udp_open(&a, NULL, 0, "127.0.0.1", 9, &fo, 5), -EAFNOSUPPORT);
  /* A local host of the other family than the remote. */
  CHECK_RC(aioc_udp_open(&a, "::1", 0, "127.0.0.1", 9, NULL, 5),
           -EAFNOSUPPORT);
  return 0;
}

TEST(test_options) { io_run(options_main, NULL); }

/* ---- names -------------------------------------------------------------------- */

static int names_main(void *arg, void **res) {
  (void)arg, (void)res;
  /* Loopback only: a name not in the hosts file goes to a name server on
   * 127.0.0.1 that is not there. */
  aioc_dns_options dopts = {.servers = "127.0.0.1:9", .try_timeout = 0.2,
                            .tries = 1};
  CHECK_RC(aioc_dns_configure(NULL, &dopts), 0);
  aioc_udp *srv = bound("127.0.0.1"), *c;
  int port = aioc_udp_port(srv);
  /* "localhost": 127.0.0.1 first. */
  CHECK_RC(aioc_udp_open(&c, "localhost", 0, "localhost", port, NULL, 5), 0);
  CHECK_RC(aioc_udp_send(c, "l", 1, 5), 0);
  char buf[8];
  size_t n;
  CHECK_RC(aioc_udp_recvfrom(srv, buf, sizeof buf, &n, NULL, NULL, 5), 0);
  CHECK_EQ(buf[0], 'l');
  aioc_udp_free(c);
  /* "localhost" with the IPv6 family: ::1. */
  aioc_udp_options fo = {.family = AF_INET6};
  int rc = aioc_udp_open(&c, "localhost", 0, NULL, 0, &fo, 5);
  if (rc == 0) {
    struct sockaddr_storage ss;
    CHECK(aioc_udp_sockname(c, &ss) > 0);
    CHECK_EQ(ss.ss_family, AF_INET6);
    aioc_udp_free(c);
  }
  /* The machine's name, from the hosts file through the loop's
   * resolver, when it is there. */
  char host[256];
  if (gethostname(host, sizeof host) == 0) {
    rc = aioc_udp_open(&c, NULL, 0, host, port, NULL, 10);
    if (rc == 0) {
      aioc_udp_free(c);
    } else {
      CHECK(rc == AIOC_ENONAME || rc == -ECONNREFUSED || rc == -ETIMEDOUT ||
            rc == -ENETUNREACH || rc == -ENODATA);
      printf("(%s does not resolve here: %s)\n", host, aioc_err_name(rc));
    }
  }
  /* A name no source knows: the resolver's code and a message. */
  c = (aioc_udp *)1;
  rc = aioc_udp_open(&c, NULL, 0, "no-such-host.invalid", 53, NULL, 5);
  CHECK(rc == AIOC_ENONAME || rc == -ETIMEDOUT || rc == -ECONNREFUSED);
  CHECK(c == NULL);
  const char *msg = aioc_error_message();
  CHECK(msg && strstr(msg, "no-such-host.invalid"));
  aioc_udp_free(srv);
  return 0;
}

TEST(test_names) { io_run(names_main, NULL); }

/* ---- bad input -------------------------------------------------------------- */

static int bad_main(void *arg, void **res) {
  (void)arg, (void)res;
  aioc_udp *u = (aioc_udp *)1;
  CHECK_RC(aioc_udp_open(NULL, NULL, 0, NULL, 0, NULL, 1), -EINVAL);
  CHECK_RC(aioc_udp_open(&u, NULL, -1, NULL, 0, NULL, 1), -EINVAL);
  CHECK(u == NULL);
  CHECK_RC(aioc_udp_open(&u, NULL, 65536, NULL, 0, NULL, 1), -EINVAL);
  CHECK_RC(aioc_udp_open(&u, NULL, 0, "127.0.0.1", 70000, NULL, 1), -EINVAL);
  CHECK_RC(aioc_udp_open(&u, NULL, 0, "127.0.0.1", 0, NULL, 1), -EINVAL);
  CHECK_RC(aioc_udp_open(&u, NULL, 0, NULL, 53, NULL, 1), -EINVAL);
  CHECK_RC(aioc_udp_open(&u, "", 0, NULL, 0, NULL, 1), -EINVAL);
  CHECK_RC(aioc_udp_open(&u, NULL, 0, "", 53, NULL, 1), -EINVAL);
  CHECK_RC(aioc_udp_open(&u, NULL, 0, NULL, 0, NULL, -1), -EINVAL);
  CHECK_RC(aioc_udp_open(&u, NULL, 0, NULL, 0, NULL, NAN), -EINVAL);
  aioc_udp_options fo = {.family = AF_UNIX};
  CHECK_RC(aioc_udp_open(&u, NULL, 0, NULL, 0, &fo, 1), -EINVAL);
  CHECK(u == NULL);

  u = bound("127.0.0.1");
  struct sockaddr_storage ss;
  socklen_t sl = addr_of(u, &ss);
  char buf[8];
  size_t n, al;
  CHECK_RC(aioc_udp_sendto(NULL, "x", 1, (struct sockaddr *)&ss, sl, 1),
           -EINVAL);
  CHECK_RC(aioc_udp_sendto(u, NULL, 1, (struct sockaddr *)&ss, sl, 1), -EINVAL);
  CHECK_RC(aioc_udp_sendto(u, "x", 1, NULL, sl, 1), -EINVAL);
  CHECK_RC(aioc_udp_sendto(u, "x", 1, (struct sockaddr *)&ss, 0, 1), -EINVAL);
  CHECK_RC(aioc_udp_sendto(u, "x", 1, (struct sockaddr *)&ss, sizeof ss + 1, 1),
           -EINVAL);
  CHECK_RC(aioc_udp_sendto(u, "x", 1, (struct sockaddr *)&ss, sl, -1), -EINVAL);
  CHECK_RC(aioc_udp_sendto(u, "x", 1, (struct sockaddr *)&ss, sl, NAN),
           -EINVAL);
  CHECK_RC(aioc_udp_send(NULL, "x", 1, 1), -EINVAL);
  CHECK_RC(aioc_udp_send(u, NULL, 1, 1), -EINVAL);
  CHECK_RC(aioc_udp_send(u, "x", 1, NAN), -EINVAL);
  CHECK_RC(aioc_udp_recvfrom(NULL, buf, sizeof buf, &n, NULL, NULL, 1),
           -EINVAL);
  CHECK_RC(aioc_udp_recvfrom(u, buf, sizeof buf, NULL, NULL, NULL, 1), -EINVAL);
  CHECK_RC(aioc_udp_recvfrom(u, NULL, 1, &n, NULL, NULL, 1), -EINVAL);
  CHECK_RC(aioc_udp_recvfrom(u, buf, sizeof buf, &n, NULL, &al, -1), -EINVAL);
  CHECK_RC(aioc_udp_recvfrom(u, buf, sizeof buf, &n, NULL, &al, NAN), -EINVAL);
  /* An address of the other family. */
  struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_port = htons(9)};
  a6.sin6_addr = in6addr_loopback;
  int rc = aioc_udp_sendto(u, "x", 1, (struct sockaddr *)&a6, sizeof a6, 1);
  CHECK(rc == -EAFNOSUPPORT || rc == -EINVAL);
  CHECK_RC(aioc_udp_sockname(NULL, &ss), -EINVAL);
  CHECK_RC(aioc_udp_sockname(u, NULL), -EINVAL);
  CHECK_RC(aioc_udp_peername(NULL, &ss), -EINVAL);
  CHECK_RC(aioc_udp_port(NULL), -EINVAL);
  CHECK_EQ(aioc_udp_fd(NULL), -1);
  CHECK_RC(aioc_udp_close(NULL), -EINVAL);
  aioc_iter *it = (aioc_iter *)1;
  CHECK_RC(aioc_udp_iter(NULL, u, 0), -EINVAL);
  CHECK_RC(aioc_udp_iter(&it, NULL, 0), -EINVAL);
  CHECK(it == NULL);
  /* The endpoint's fd is the library's. */
  CHECK_RC(aioc_wait_readable(aioc_udp_fd(u), 0), -EBUSY);
  CHECK_RC(aioc_fd_forget(NULL, aioc_udp_fd(u)), -EBUSY);
  /* A timeout of 0 with nothing there: -ETIMEDOUT at once. */
  CHECK_RC(aioc_udp_recvfrom(u, buf, sizeof buf, &n, NULL, NULL, 0),
           -ETIMEDOUT);
  aioc_udp_free(u);
  aioc_udp_free(NULL);
  return 0;
}

TEST(test_bad_input) { io_run(bad_main, NULL); }

/* ---- outside a task ------------------------------------------------------------ */

/* What needs no wait works from plain code; what would wait says so. The
 * loop closes with endpoints alive: their calls say AIOC_ECLOSED, and
 * freeing them later is safe. */
TEST(test_outside_task) {
  aioc_loop *loop = test_loop(0);
  aioc_udp *a, *b;
  CHECK_RC(aioc_udp_open(&a, "127.0.0.1", 0, NULL, 0, NULL, 1), 0);
  CHECK_RC(aioc_udp_open(&b, NULL, 0, "127.0.0.1", aioc_udp_port(a), NULL, 1),
           0);
  char buf[8];
  size_t n;
  CHECK_RC(aioc_udp_recvfrom(a, buf, sizeof buf, &n, NULL, NULL, 1),
           AIOC_ENOTASK);
  CHECK_RC(aioc_udp_recvfrom(a, buf, sizeof buf, &n, NULL, NULL, 0),
           -ETIMEDOUT);
  CHECK_RC(aioc_udp_send(b, "hi", 2, 1), 0);
  struct sockaddr_storage from;
  size_t fl;
  CHECK_RC(aioc_udp_recvfrom(a, buf, sizeof buf, &n, &from, &fl, 1), 0);
  CHECK_EQ(n, 2);
  CHECK_EQ(port_of(&from), aioc_udp_port(b));
  CHECK_RC(aioc_udp_sendto(a, "yo", 2, (struct sockaddr *)&from, fl, 1), 0);
  CHECK_RC(aioc_udp_recvfrom(b, buf, sizeof buf, &n, NULL, NULL, 1), 0);
  CHECK_EQ(n, 2);
  CLOSE_CLEAN(loop);
  CHECK_RC(aioc_udp_send(b, "x", 1, 1), AIOC_ECLOSED);
  CHECK_RC(aioc_udp_recvfrom(a, buf, sizeof buf, &n, NULL, NULL, 0),
           AIOC_ECLOSED);
  CHECK(aioc_udp_port(a) > 0); /* the socket stays until closed */
  CHECK_RC(aioc_udp_close(a), 0);
  aioc_udp_free(a);
  aioc_udp_free(b);
}

CHECK_MAIN(60)
