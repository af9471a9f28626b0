/* DNS on the loop: numeric hosts, a NULL host, services, "localhost"
 * through /etc/hosts, and lookups answered by a tiny DNS server that the
 * test runs on 127.0.0.1 (A and AAAA records, a CNAME, NXDOMAIN, an
 * empty answer, SERVFAIL, FORMERR, and one name it never answers): results,
 * error codes, concurrency, the timeout, deadlines, cancellation
 * mid-lookup, a refused server, plain code, and allocation failures.
 * Nothing depends on the machine's own resolver. */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>

#include "check.h"

/* ---- the test's DNS server ------------------------------------------------ */

typedef struct dns_server {
  int fd;
  int stop[2]; /* a byte on stop[1] ends the thread */
  int port;
  pthread_t th;
  atomic_int queries;
} dns_server;

static size_t put16(unsigned char *p, unsigned v) {
  p[0] = (unsigned char)(v >> 8);
  p[1] = (unsigned char)v;
  return 2;
}

/* Appends a resource record whose owner is a pointer to name_at. */
static size_t put_rr(unsigned char *p, unsigned name_at, unsigned type,
                     const void *data, size_t len) {
  size_t n = put16(p, 0xc000 | name_at);
  n += put16(p + n, type);
  n += put16(p + n, 1);  /* IN */
  n += put16(p + n, 0);  /* TTL, high half */
  n += put16(p + n, 60); /* TTL, low half */
  n += put16(p + n, (unsigned)len);
  memcpy(p + n, data, len);
  return n + len;
}

/* Answers one query in q (n bytes) into a; returns the answer's length,
 * 0 to stay silent. */
static size_t answer(const unsigned char *q, size_t n, unsigned char *a) {
  if (n < 17) return 0;
  char name[256];
  size_t i = 12, o = 0;
  while (i < n && q[i] && o < sizeof name - 65) {
    unsigned l = q[i++];
    if (i + l > n) return 0;
    if (o) name[o++] = '.';
    memcpy(name + o, q + i, l);
    o += l;
    i += l;
  }
  name[o] = 0;
  size_t qend = i + 5; /* the zero label, type, class */
  if (qend > n) return 0;
  unsigned type = (unsigned)q[i + 1] << 8 | q[i + 2];
  memcpy(a, q, qend); /* id, then the question */
  a[2] = 0x81;        /* a response, recursion desired */
  a[3] = 0x80;        /* recursion available, NOERROR */
  a[6] = a[7] = a[8] = a[9] = a[10] = a[11] = 0;
  size_t len = qend;
  unsigned an = 0;
  static const unsigned char v4a[] = {192, 0, 2, 1}, v4b[] = {192, 0, 2, 2};
  static const unsigned char v6[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 1};
  static const unsigned char target[] = "\1a\4test"; /* a.test */
  if (!strcmp(name, "hang.test")) return 0;
  if (!strcmp(name, "fail.test")) {
    a[3] = 0x82; /* SERVFAIL */
  } else if (!strcmp(name, "formerr.test")) {
    a[3] = 0x81; /* FORMERR */
  } else if (!strcmp(name, "a.test")) {
    if (type == 1) len += put_rr(a + len, 12, 1, v4a, 4), an++;
    if (type == 28) len += put_rr(a + len, 12, 28, v6, 16), an++;
  } else if (!strcmp(name, "multi.test")) {
    if (type == 1) {
      len += put_rr(a + len, 12, 1, v4a, 4);
      len += put_rr(a + len, 12, 1, v4b, 4);
      an += 2;
    }
  } else if (!strcmp(name, "v4only.test")) {
    if (type == 1) len += put_rr(a + len, 12, 1, v4a, 4), an++;
  } else if (!strcmp(name, "alias.test")) {
    size_t rdata = len + 12; /* where the CNAME's target will be */
    len += put_rr(a + len, 12, 5, target, sizeof target);
    an++;
    if (type == 1) len += put_rr(a + len, (unsigned)rdata, 1, v4a, 4), an++;
    if (type == 28) len += put_rr(a + len, (unsigned)rdata, 28, v6, 16), an++;
  } else {
    a[3] = 0x83; /* NXDOMAIN */
  }
  put16(a + 6, an);
  return len;
}

static void *server_thread(void *arg) {
  dns_server *s = arg;
  unsigned char q[512], a[1024];
  for (;;) {
    struct pollfd p[2] = {{s->fd, POLLIN, 0}, {s->stop[0], POLLIN, 0}};
    if (poll(p, 2, -1) < 0) continue;
    if (p[1].revents) return NULL;
    struct sockaddr_storage from;
    socklen_t fl = sizeof from;
    ssize_t n = recvfrom(s->fd, q, sizeof q, 0, (struct sockaddr *)&from, &fl);
    if (n <= 0) continue;
    atomic_fetch_add(&s->queries, 1);
    size_t len = answer(q, (size_t)n, a);
    if (len) sendto(s->fd, a, len, 0, (struct sockaddr *)&from, fl);
  }
}

static void server_start(dns_server *s) {
  s->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t sl = sizeof sa;
  if (s->fd < 0 || bind(s->fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
      getsockname(s->fd, (struct sockaddr *)&sa, &sl) != 0 ||
      pipe(s->stop) != 0) {
    perror("dns server");
    exit(2);
  }
  s->port = ntohs(sa.sin_port);
  atomic_init(&s->queries, 0);
  pthread_create(&s->th, NULL, server_thread, s);
}

static void server_stop(dns_server *s) {
  ssize_t r = write(s->stop[1], "x", 1);
  (void)r;
  pthread_join(s->th, NULL);
  close(s->fd);
  close(s->stop[0]);
  close(s->stop[1]);
}

/* Points the current loop's resolver at s, with short retransmissions. */
static int use_server(dns_server *s, double try_timeout, int tries) {
  char servers[64];
  snprintf(servers, sizeof servers, "127.0.0.1:%d", s->port);
  aioc_dns_options o = {.servers = servers, .try_timeout = try_timeout,
                        .tries = tries};
  return aioc_dns_configure(NULL, &o);
}

/* ---- helpers -------------------------------------------------------------- */

/* The addresses of a list, "a,b,..." with ports ("1.2.3.4:80"). */
static const char *addrs(const struct addrinfo *ai) {
  static char buf[512];
  size_t o = 0;
  buf[0] = 0;
  for (; ai && o < sizeof buf - 64; ai = ai->ai_next) {
    char a[INET6_ADDRSTRLEN];
    int port;
    if (ai->ai_family == AF_INET) {
      struct sockaddr_in *s = (struct sockaddr_in *)ai->ai_addr;
      inet_ntop(AF_INET, &s->sin_addr, a, sizeof a);
      port = ntohs(s->sin_port);
      CHECK_EQ(ai->ai_addrlen, sizeof *s);
    } else {
      struct sockaddr_in6 *s = (struct sockaddr_in6 *)ai->ai_addr;
      inet_ntop(AF_INET6, &s->sin6_addr, a, sizeof a);
      port = ntohs(s->sin6_port);
      CHECK_EQ(ai->ai_addrlen, sizeof *s);
      CHECK_EQ(ai->ai_family, AF_INET6);
    }
    o += (size_t)snprintf(buf + o, sizeof buf - o, "%s%s:%d", o ? "," : "", a,
                          port);
  }
  return buf;
}

/* One lookup: its code, and its addresses in *got ("" on failure). */
static int lookup(const char *host, const char *service, int family,
                  int flags, const char **got) {
  struct addrinfo h = {.ai_family = family, .ai_flags = flags,
                       .ai_socktype = SOCK_STREAM};
  struct addrinfo *ai = (struct addrinfo *)1;
  int rc = aioc_getaddrinfo(&ai, host, service, &h, 10);
  if (rc < 0) CHECK(ai == NULL);
  *got = rc == 0 ? addrs(ai) : "";
  if (rc == 0) {
    CHECK(ai != NULL);
    CHECK_EQ(ai->ai_socktype, SOCK_STREAM);
  }
  aioc_freeaddrinfo(ai);
  return rc;
}

/* ---- without a name server ------------------------------------------------ */

TEST(test_dns_bad_input) {
  aioc_loop *loop = test_loop(0);
  struct addrinfo *ai = (struct addrinfo *)1;
  struct addrinfo h = {0};
  CHECK_RC(aioc_getaddrinfo(NULL, "127.0.0.1", NULL, NULL, 1), -EINVAL);
  CHECK_RC(aioc_getaddrinfo(&ai, NULL, NULL, NULL, 1), -EINVAL);
  CHECK(ai == NULL);
  CHECK_RC(aioc_getaddrinfo(&ai, "127.0.0.1", NULL, NULL, -1), -EINVAL);
  h.ai_family = AF_UNIX;
  CHECK_RC(aioc_getaddrinfo(&ai, "127.0.0.1", NULL, &h, 1), -EINVAL);
  h.ai_family = 0;
  h.ai_flags = 0x10000;
  CHECK_RC(aioc_getaddrinfo(&ai, "127.0.0.1", NULL, &h, 1), -EINVAL);
  h.ai_flags = AI_NUMERICSERV;
  CHECK_RC(aioc_getaddrinfo(&ai, "127.0.0.1", "http", &h, 1), -EINVAL);
  CHECK_RC(aioc_getaddrinfo(&ai, "127.0.0.1", "70000", NULL, 1), -EINVAL);
  CHECK_RC(aioc_getaddrinfo(&ai, "127.0.0.1", "no-such-service-x", NULL, 1),
           -EINVAL);
  CHECK(aioc_error_message() != NULL);
  CHECK_RC(aioc_getaddrinfo(&ai, "", NULL, NULL, 1), AIOC_ENONAME);
  h.ai_flags = AI_NUMERICHOST;
  CHECK_RC(aioc_getaddrinfo(&ai, "localhost", NULL, &h, 1), AIOC_ENONAME);
  CHECK(ai == NULL);
  aioc_dns_options bad = {.tries = -1};
  CHECK_RC(aioc_dns_configure(loop, &bad), -EINVAL);
  bad = (aioc_dns_options){.try_timeout = -1};
  CHECK_RC(aioc_dns_configure(loop, &bad), -EINVAL);
  bad = (aioc_dns_options){.servers = "not an address"};
  CHECK_RC(aioc_dns_configure(loop, &bad), -EINVAL);
  CHECK_RC(aioc_dns_configure(loop, NULL), 0);
  CHECK_STR(aioc_strerror(AIOC_ENONAME), "name does not resolve");
  CHECK_STR(aioc_err_name(AIOC_EDNS), "AIOC_EDNS");
  aioc_freeaddrinfo(NULL);
  CHECK_EQ(aioc_all_tasks(loop, NULL, 0), 0);
  CHECK_RC(aioc_loop_close(loop), 0);
  CHECK_RC(aioc_dns_configure(loop, NULL), AIOC_ECLOSED);
  aioc_loop_free(loop);
}

/* Numeric hosts, a NULL host and service names never wait: from plain
 * code, without a loop running. */
TEST(test_dns_numeric_and_services) {
  aioc_loop *loop = test_loop(0);
  const char *got;
  CHECK_RC(lookup("127.0.0.1", "8080", AF_UNSPEC, 0, &got), 0);
  CHECK_STR(got, "127.0.0.1:8080");
  CHECK_RC(lookup("::1", "0", AF_INET6, 0, &got), 0);
  CHECK_STR(got, "::1:0");
  CHECK_RC(lookup("::1", NULL, AF_UNSPEC, 0, &got), 0);
  CHECK_STR(got, "::1:0");
  CHECK_RC(lookup("::1", "80", AF_INET, 0, &got), AIOC_ENONAME);
  CHECK_RC(lookup("127.0.0.1", "80", AF_INET6, 0, &got), AIOC_ENONAME);
  CHECK_RC(lookup("127.0.0.1", "80", AF_INET6, AI_V4MAPPED, &got), 0);
  CHECK_STR(got, "::ffff:127.0.0.1:80");
  CHECK_RC(lookup(NULL, "8080", AF_UNSPEC, AI_PASSIVE, &got), 0);
  CHECK_STR(got, "0.0.0.0:8080,:::8080");
  CHECK_RC(lookup(NULL, "8080", AF_UNSPEC, 0, &got), 0);
  CHECK_STR(got, "::1:8080,127.0.0.1:8080");
  CHECK_RC(lookup(NULL, "8080", AF_INET, AI_PASSIVE, &got), 0);
  CHECK_STR(got, "0.0.0.0:8080");
  struct servent *se = getservbyname("http", "tcp");
  if (se) { /* a service name, through /etc/services */
    CHECK_RC(lookup("192.0.2.9", "http", AF_INET, 0, &got), 0);
    CHECK_STR(got, "192.0.2.9:80");
  }
  struct addrinfo h = {.ai_flags = AI_CANONNAME}, *ai;
  CHECK_RC(aioc_getaddrinfo(&ai, "192.0.2.9", NULL, &h, 0), 0);
  CHECK_STR(ai->ai_canonname, "192.0.2.9");
  CHECK(ai->ai_next == NULL);
  aioc_freeaddrinfo(ai);
  CLOSE_CLEAN(loop);
}

/* "localhost" through /etc/hosts (or as RFC 6761 has it): never sent to a
 * name server, so the resolver can point at nothing. */
static int localhost_main(void *arg, void **result) {
  (void)arg, (void)result;
  aioc_dns_options o = {.servers = "127.0.0.1:9"};
  CHECK_RC(aioc_dns_configure(NULL, &o), 0);
  const char *got;
  CHECK_RC(lookup("localhost", "443", AF_INET, 0, &got), 0);
  CHECK(strstr(got, "127.0.0.1:443") != NULL);
  struct addrinfo h = {.ai_family = AF_INET, .ai_flags = AI_CANONNAME}, *ai;
  CHECK_RC(aioc_getaddrinfo(&ai, "localhost", NULL, &h, AIOC_FOREVER), 0);
  CHECK(ai && ai->ai_canonname && !strcmp(ai->ai_canonname, "localhost"));
  aioc_freeaddrinfo(ai);
  return 0;
}

TEST(test_dns_localhost) {
  CHECK_RC(run_main_real(localhost_main, NULL, NULL), 0);
  /* And from plain code. */
  aioc_loop *loop = test_loop(0);
  const char *got;
  CHECK_RC(lookup("localhost", NULL, AF_INET, 0, &got), 0);
  CHECK(strstr(got, "127.0.0.1:0") != NULL);
  CLOSE_CLEAN(loop);
}

/* ---- with the test's name server ------------------------------------------ */

static dns_server g_srv;

static int answers_main(void *arg, void **result) {
  (void)arg, (void)result;
  CHECK_RC(use_server(&g_srv, 1, 2), 0);
  const char *got;
  CHECK_RC(lookup("a.test", "80", AF_INET, 0, &got), 0);
  CHECK_STR(got, "192.0.2.1:80");
  CHECK_RC(lookup("a.test", "80", AF_INET6, 0, &got), 0);
  CHECK_STR(got, "2001:db8::1:80");
  CHECK_RC(lookup("a.test", "80", AF_UNSPEC, 0, &got), 0);
  CHECK(!strcmp(got, "2001:db8::1:80,192.0.2.1:80") ||
        !strcmp(got, "192.0.2.1:80,2001:db8::1:80"));
  CHECK_RC(lookup("multi.test", NULL, AF_INET, 0, &got), 0);
  CHECK(!strcmp(got, "192.0.2.1:0,192.0.2.2:0") ||
        !strcmp(got, "192.0.2.2:0,192.0.2.1:0"));
  CHECK_RC(lookup("nowhere.test", "80", AF_INET, 0, &got), AIOC_ENONAME);
  CHECK(aioc_error_message() && strstr(aioc_error_message(), "nowhere.test"));
  CHECK_RC(lookup("v4only.test", "80", AF_INET6, 0, &got), -ENODATA);
  CHECK_RC(lookup("v4only.test", "80", AF_UNSPEC, 0, &got), 0);
  CHECK_STR(got, "192.0.2.1:80");
  CHECK_RC(lookup("formerr.test", "80", AF_INET, 0, &got), AIOC_EDNS);
  /* SERVFAIL from every server: before c-ares 1.20, "refused". */
  int rc = lookup("fail.test", "80", AF_INET, 0, &got);
  CHECK(rc == AIOC_EDNS || rc == -ECONNREFUSED);
  struct addrinfo h = {.ai_family = AF_INET, .ai_flags = AI_CANONNAME}, *ai;
  CHECK_RC(aioc_getaddrinfo(&ai, "alias.test", "80", &h, AIOC_FOREVER), 0);
  CHECK_STR(addrs(ai), "192.0.2.1:80");
  CHECK_STR(ai->ai_canonname, "a.test");
  aioc_freeaddrinfo(ai);
  CHECK(atomic_load(&g_srv.queries) > 0);
  return 0;
}

TEST(test_dns_answers) {
  server_start(&g_srv);
  CHECK_RC(run_main_real(answers_main, NULL, NULL), 0);
  server_stop(&g_srv);
}

static int one_lookup(void *arg, void **result) {
  struct addrinfo *ai;
  int rc = aioc_getaddrinfo(&ai, arg, NULL, NULL, AIOC_FOREVER);
  if (rc < 0) return rc;
  *result = AIOC_INT(ai->ai_family);
  aioc_freeaddrinfo(ai);
  return 0;
}

/* Several lookups at once on the one resolver. */
static int concurrent_main(void *arg, void **result) {
  (void)arg, (void)result;
  CHECK_RC(use_server(&g_srv, 1, 2), 0);
  enum { N = 20 };
  aioc_task *t[N];
  aioc_future *f[N];
  void *res[N];
  int codes[N];
  static const char *names[] = {"a.test", "multi.test", "nowhere.test",
                                "v4only.test"};
  for (int i = 0; i < N; i++) {
    CHECK_RC(aioc_spawn(&t[i], one_lookup, (void *)names[i % 4]), 0);
    f[i] = aioc_task_future(t[i]);
  }
  CHECK_RC(aioc_gather(f, N, res, codes, 0), 0);
  for (int i = 0; i < N; i++) {
    CHECK_RC(codes[i], i % 4 == 2 ? AIOC_ENONAME : 0);
    aioc_task_unref(t[i]);
  }
  return 0;
}

TEST(test_dns_concurrent) {
  server_start(&g_srv);
  CHECK_RC(run_main_real(concurrent_main, NULL, NULL), 0);
  server_stop(&g_srv);
}

/* A server that never answers: the caller's deadline, the timeout
 * argument, c-ares' own tries, and a cancellation. */
static int hang_lookup(void *arg, void **result) {
  (void)arg, (void)result;
  struct addrinfo *ai = NULL;
  int rc = aioc_getaddrinfo(&ai, "hang.test", "80", NULL, AIOC_FOREVER);
  CHECK(ai == NULL);
  return rc;
}

static int timeouts_main(void *arg, void **result) {
  (void)arg, (void)result;
  CHECK_RC(use_server(&g_srv, 30, 2), 0); /* c-ares would wait long */
  const char *got;
  /* A deadline in scope. */
  aioc_scope *s;
  CHECK_RC(aioc_timeout_enter(&s, 0.05), 0);
  CHECK_RC(lookup("hang.test", "80", AF_INET, 0, &got), -ETIMEDOUT);
  CHECK_RC(aioc_scope_exit(s), -ETIMEDOUT);
  aioc_scope_free(s);
  /* The timeout argument. */
  struct addrinfo *ai;
  CHECK_RC(aioc_getaddrinfo(&ai, "hang.test", NULL, NULL, 0.05), -ETIMEDOUT);
  /* Cancellation mid-lookup. */
  aioc_task *t;
  CHECK_RC(aioc_spawn(&t, hang_lookup, NULL), 0);
  CHECK_RC(aioc_sleep(0.05), 0);
  aioc_task_cancel(t, NULL);
  CHECK_RC(aioc_task_await(t, NULL), -ECANCELED);
  aioc_task_unref(t);
  /* Two waiting, one cancelled: its query runs on detached while the
   * other still waits; then an answered lookup meanwhile. */
  aioc_task *t2;
  CHECK_RC(aioc_spawn(&t, hang_lookup, NULL), 0);
  CHECK_RC(aioc_spawn(&t2, hang_lookup, NULL), 0);
  CHECK_RC(aioc_sleep(0.05), 0);
  aioc_task_cancel(t, NULL);
  CHECK_RC(aioc_task_await(t, NULL), -ECANCELED);
  CHECK_RC(lookup("a.test", "80", AF_INET, 0, &got), 0);
  CHECK_STR(got, "192.0.2.1:80");
  CHECK_RC(aioc_dns_configure(NULL, NULL), -EBUSY); /* queries run */
  aioc_task_cancel(t2, NULL);
  CHECK_RC(aioc_task_await(t2, NULL), -ECANCELED);
  aioc_task_unref(t);
  aioc_task_unref(t2);
  /* Nobody waits any more: every query was abandoned. */
  CHECK_RC(use_server(&g_srv, 0.05, 1), 0);
  /* c-ares' own limit: one try of 50 ms. */
  CHECK_RC(lookup("hang.test", "80", AF_INET, 0, &got), -ETIMEDOUT);
  CHECK(strstr(aioc_error_message(), "hang.test") != NULL);
  return 0;
}

TEST(test_dns_timeouts_and_cancellation) {
  server_start(&g_srv);
  CHECK_RC(run_main_real(timeouts_main, NULL, NULL), 0);
  server_stop(&g_srv);
}

/* A query given up while another task still waits runs on detached, and
 * goes when that task gives up too; the resolver then closes with the
 * loop. */
TEST(test_dns_detached_then_closed) {
  server_start(&g_srv);
  aioc_loop *loop = test_loop(0);
  CHECK_RC(use_server(&g_srv, 30, 2), 0);
  aioc_task *t;
  CHECK_RC(aioc_spawn(&t, hang_lookup, NULL), 0);
  CHECK_RC(aioc_loop_run_once(loop), 1); /* t waits */
  struct addrinfo *ai;
  CHECK_RC(aioc_getaddrinfo(&ai, "hang.test", NULL, NULL, 0.02), -ETIMEDOUT);
  aioc_task_cancel(t, NULL);
  CHECK_RC(aioc_loop_run_until_complete(loop, aioc_task_future(t)), 0);
  CHECK_RC(aioc_future_error(aioc_task_future(t)), -ECANCELED);
  aioc_task_unref(t);
  CLOSE_CLEAN(loop);
  server_stop(&g_srv);
}

/* From plain code the loop runs until the answer is there. */
TEST(test_dns_plain_code) {
  server_start(&g_srv);
  aioc_loop *loop = test_loop(0);
  CHECK_RC(use_server(&g_srv, 1, 2), 0);
  const char *got;
  CHECK_RC(lookup("a.test", "53", AF_INET6, 0, &got), 0);
  CHECK_STR(got, "2001:db8::1:53");
  CHECK_RC(lookup("nowhere.test", NULL, AF_INET, 0, &got), AIOC_ENONAME);
  CHECK(aioc_error_message() && strstr(aioc_error_message(), "nowhere.test"));
  struct addrinfo *ai;
  CHECK_RC(aioc_getaddrinfo(&ai, "hang.test", NULL, NULL, 0.05), -ETIMEDOUT);
  CLOSE_CLEAN(loop);
  server_stop(&g_srv);
}

/* A port where nothing listens: the ICMP error ends the lookup. */
static int refused_main(void *arg, void **result) {
  (void)arg, (void)result;
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t sl = sizeof sa;
  bind(fd, (struct sockaddr *)&sa, sizeof sa);
  getsockname(fd, (struct sockaddr *)&sa, &sl);
  close(fd); /* the port is free again */
  char servers[64];
  snprintf(servers, sizeof servers, "127.0.0.1:%d", ntohs(sa.sin_port));
  aioc_dns_options o = {.servers = servers, .try_timeout = 0.5, .tries = 1};
  CHECK_RC(aioc_dns_configure(NULL, &o), 0);
  const char *got;
  int rc = lookup("a.test", NULL, AF_INET, 0, &got);
  /* Refused, or (if the ICMP error is lost) timed out. */
  CHECK(rc == -ECONNREFUSED || rc == -ETIMEDOUT);
  return 0;
}

TEST(test_dns_refused) {
  CHECK_RC(run_main_real(refused_main, NULL, NULL), 0);
}

/* ---- allocation failures -------------------------------------------------- */

static atomic_long g_allocs, g_fail_at;
static void *failing_realloc(void *ud, void *p, size_t n) {
  (void)ud;
  if (n == 0) {
    free(p);
    return NULL;
  }
  long k = atomic_fetch_add(&g_allocs, 1) + 1;
  if (k == atomic_load(&g_fail_at)) return NULL;
  return realloc(p, n);
}

static int enomem_main(void *arg, void **result) {
  (void)result;
  const char *host = arg;
  struct addrinfo h = {.ai_family = AF_INET, .ai_flags = AI_CANONNAME}, *ai;
  atomic_store(&g_allocs, 0); /* counted from here */
  int rc = aioc_getaddrinfo(&ai, host, "80", &h, 5);
  if (rc == 0) {
    CHECK_STR(addrs(ai), strcmp(host, "localhost") ? "192.0.2.1:80"
                                                   : "127.0.0.1:80");
    aioc_freeaddrinfo(ai);
  }
  return rc;
}

/* Fails the N-th allocation of a lookup for N = 1, 2, ... until one
 * succeeds: each returns -ENOMEM (or succeeds), never hangs, leaks
 * nothing (LeakSanitizer checks at the end). */
static void enomem_run(const char *host, bool server) {
  aioc_set_allocator(failing_realloc, NULL);
  if (server) server_start(&g_srv);
  int nomem = 0, ok = 0;
  for (long n = 1; n < 2000 && !ok; n++) {
    atomic_store(&g_fail_at, 0);
    aioc_loop *loop;
    if (aioc_loop_new(&loop, NULL) < 0) continue;
    aioc_loop_set_current(loop);
    if (server) CHECK_RC(use_server(&g_srv, 1, 2), 0);
    atomic_store(&g_fail_at, n);
    aioc_task *t;
    int rc = aioc_spawn_ex(&t, loop, enomem_main, (void *)host, NULL);
    if (rc == 0) {
      CHECK_RC(aioc_loop_run_until_complete(loop, aioc_task_future(t)), 0);
      rc = aioc_future_error(aioc_task_future(t));
      aioc_task_unref(t);
    }
    atomic_store(&g_fail_at, 0);
    if (rc == -ENOMEM)
      nomem++;
    else if (rc == 0)
      ok = 1;
    else
      CHECK_RC(rc, -ENOMEM);
    CHECK_RC(aioc_loop_close(loop), 0);
    aioc_loop_free(loop);
  }
  CHECK(ok);
  CHECK(nomem > 0);
  if (server) server_stop(&g_srv);
  aioc_set_allocator(NULL, NULL);
}

TEST(test_dns_enomem_server) { enomem_run("a.test", true); }

TEST(test_dns_enomem_hosts_file) { enomem_run("localhost", false); }

CHECK_MAIN(120)
