/* TCP (IPv4, IPv6), Unix streams and servers: echo exchanges, every read
 * and write call, flow control, half-close and close, the iterators, and
 * the faults: refused, reset by peer, a peer closing early, writes to a
 * closed peer, accept under EMFILE, a slow reader, an over-long line, a
 * connect that times out, cancellation at each suspension point, a server
 * closed with connections in progress. Loopback only. */
#include <math.h>
#include <pthread.h>
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


/* ---- faults: refused, reset, a peer closing early, a closed peer ------- */

/* ---- one loop per thread, sharing a port (SO_REUSEPORT) ----------------- */

typedef struct port_loop {
  int index;
  int port; /* in: 0 for the first loop; out: the port it listens on */
  pthread_t thread;
  aioc_loop *loop; /* published under mu once it serves */
  aioc_event *stop;
  int status; /* 0 starting, 1 serving, < 0 failed */
  int rc;
  unsigned long accepted; /* counted on the loop's own thread */
} port_loop;

static pthread_mutex_t pl_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pl_cv = PTHREAD_COND_INITIALIZER;

static int counting_echo(void *arg, aioc_stream *s) {
  ((port_loop *)arg)->accepted++;
  return echo_handler(NULL, s);
}

static void pl_announce(port_loop *l, int status) {
  pthread_mutex_lock(&pl_mu);
  l->status = status;
  pthread_cond_broadcast(&pl_cv);
  pthread_mutex_unlock(&pl_mu);
}

static int port_loop_main(void *arg, void **res) {
  (void)res;
  port_loop *l = arg;
  aioc_server_options o = {.reuse_port = 1};
  aioc_server *srv;
  int rc = aioc_event_new(&l->stop);
  if (rc < 0) {
    pl_announce(l, rc);
    return rc;
  }
  rc = aioc_start_server(&srv, "127.0.0.1", l->port, counting_echo, l, &o);
  if (rc < 0) {
    aioc_event_free(l->stop);
    pl_announce(l, rc);
    return rc;
  }
  l->port = aioc_server_port(srv);
  l->loop = aioc_get_running_loop();
  pl_announce(l, 1);
  rc = aioc_event_wait(l->stop, 60);
  aioc_server_close(srv);
  int wrc = aioc_server_wait_closed(srv, 10);
  aioc_server_free(srv);
  aioc_event_free(l->stop);
  return rc < 0 ? rc : wrc;
}

static void *port_loop_thread(void *arg) {
  port_loop *l = arg;
  l->rc = run_main_real(port_loop_main, l, NULL);
  return NULL;
}

static void port_loop_stop(void *arg) {
  port_loop *l = arg;
  IGNORE_RC(aioc_event_set(l->stop));
}

static int port_loop_start(port_loop *l) {
  CHECK_EQ(pthread_create(&l->thread, NULL, port_loop_thread, l), 0);
  pthread_mutex_lock(&pl_mu);
  while (l->status == 0) pthread_cond_wait(&pl_cv, &pl_mu);
  int st = l->status;
  pthread_mutex_unlock(&pl_mu);
  return st < 0 ? st : 0;
}

typedef struct shared_port_clients {
  int port;
} shared_port_clients;

static int shared_port_clients_main(void *arg, void **res) {
  (void)res;
  shared_port_clients *sp = arg;
  enum { N = 32 };
  echo_client c[N];
  aioc_task *t[N];
  for (int i = 0; i < N; i++) {
    c[i] = (echo_client){.host = "127.0.0.1", .port = sp->port, .id = i,
                         .rounds = 5};
    t[i] = spawn_io(echo_client_main, &c[i]);
  }
  for (int i = 0; i < N; i++) {
    CHECK_RC(join_io(t[i]), 0);
    CHECK_RC(c[i].rc, 0);
  }
  return 0;
}

/* The documented pattern for one loop per core (docs/servers.md): loops on
 * their own threads listen on one port with reuse_port, the kernel spreads
 * the connections, and another thread stops each loop only through
 * aioc_call_soon_threadsafe(). */
TEST(test_loops_share_a_port) {
  port_loop l[2] = {{.index = 0}, {.index = 1}};
  CHECK_RC(port_loop_start(&l[0]), 0);
  l[1].port = l[0].port;
  CHECK_RC(port_loop_start(&l[1]), 0);
  CHECK_EQ(l[1].port, l[0].port);
  shared_port_clients sp = {.port = l[0].port};
  CHECK_RC(run_main_real(shared_port_clients_main, &sp, NULL), 0);
  for (int i = 0; i < 2; i++)
    CHECK_RC(aioc_call_soon_threadsafe(l[i].loop, port_loop_stop, &l[i]), 0);
  for (int i = 0; i < 2; i++) {
    pthread_join(l[i].thread, NULL);
    CHECK_RC(l[i].rc, 0);
  }
  CHECK_EQ(l[0].accepted + l[1].accepted, 32);
  /* each connection is hashed to one of the two sockets: all 32 on one
   * loop would mean they do not share the port (chance 2^-31) */
  CHECK(l[0].accepted > 0 && l[1].accepted > 0);
}

static int reuse_refused_main(void *arg, void **res) {
  (void)arg, (void)res;
  aioc_server_options o = {.reuse_port = 1};
  aioc_server *a, *b;
  CHECK_RC(aioc_start_server(&a, "127.0.0.1", 0, echo_handler, NULL, NULL), 0);
  /* the first socket did not ask for SO_REUSEPORT: the port is taken */
  CHECK_RC(aioc_start_server(&b, "127.0.0.1", aioc_server_port(a),
                             echo_handler, NULL, &o),
           -EADDRINUSE);
  CHECK_RC(aioc_server_close(a), 0);
  CHECK_RC(aioc_server_wait_closed(a, 5), 0);
  aioc_server_free(a);
  return 0;
}
TEST(test_reuse_port_needs_both) { io_run(reuse_refused_main, NULL); }

static int refused_main(void *arg, void **res) {
  (void)arg, (void)res;
  aioc_stream *s = (aioc_stream *)1;
  CHECK_RC(aioc_open_connection(&s, "127.0.0.1", dead_port(), NULL, 5),
           -ECONNREFUSED);
  CHECK(s == NULL);
  /* Bad input (names: test_open_connection_by_name). */
  CHECK_RC(aioc_open_connection(&s, "127.0.0.1", 70000, NULL, 5), -EINVAL);
  CHECK_RC(aioc_open_connection(&s, "127.0.0.1", 80, NULL, -1), -EINVAL);
  CHECK_RC(aioc_open_connection(NULL, "127.0.0.1", 80, NULL, 1), -EINVAL);
  CHECK_RC(aioc_open_unix_connection(&s, "/nonexistent/aioc/sock", NULL, 5),
           -ENOENT);
  return 0;
}

TEST(test_connection_refused) { io_run(refused_main, NULL); }

/* Once the client spoke, the handler writes "abc" and resets the
 * connection (SO_LINGER 0). */
static int reset_handler(void *arg, aioc_stream *s) {
  (void)arg;
  char c;
  size_t got;
  if (aioc_stream_readexactly(s, &c, 1, &got, 5) < 0) return 0;
  IGNORE_RC(aioc_stream_write(s, "abc", 3));
  struct linger l = {.l_onoff = 1, .l_linger = 0};
  setsockopt(aioc_stream_fd(s), SOL_SOCKET, SO_LINGER, &l, sizeof l);
  aioc_stream_free(s);
  return 0;
}

static int reset_main(void *arg, void **res) {
  (void)arg, (void)res;
  aioc_server *srv;
  CHECK_RC(aioc_start_server(&srv, "127.0.0.1", 0, reset_handler, NULL, NULL),
           0);
  aioc_stream *s;
  CHECK_RC(aioc_open_connection(&s, "127.0.0.1", aioc_server_port(srv), NULL,
                                5),
           0);
  CHECK_RC(aioc_stream_write(s, "!", 1), 0);
  /* The data before the reset, then the reset (it may overtake the data:
   * then the error comes first). */
  char buf[16];
  size_t n, total = 0;
  int rc;
  while ((rc = aioc_stream_read(s, buf, sizeof buf, &n, 5)) == 0 && n)
    total += n;
  CHECK_RC(rc, -ECONNRESET);
  CHECK(total <= 3);
  /* The error stays. */
  CHECK_RC(aioc_stream_read(s, buf, sizeof buf, &n, 5), -ECONNRESET);
  aioc_stream_free(s);
  aioc_server_close(srv);
  CHECK_RC(aioc_server_wait_closed(srv, 5), 0);
  aioc_server_free(srv);
  return 0;
}

TEST(test_reset_by_peer) { io_run(reset_main, NULL); }

static int incomplete_main(void *arg, void **res) {
  (void)arg, (void)res;
  int sv[2];
  sock_pair(sv);
  aioc_stream *s;
  CHECK_RC(aioc_stream_from_fd(&s, sv[1], NULL), 0);
  CHECK_EQ(write(sv[0], "hello", 5), 5);
  char buf[16] = {0};
  size_t got = 99;
  /* Not all there yet: a timeout takes nothing. */
  CHECK_RC(aioc_stream_readexactly(s, buf, 10, &got, 0.05), -ETIMEDOUT);
  CHECK_EQ(got, 0);
  close(sv[0]);
  CHECK_RC(aioc_stream_readexactly(s, buf, 10, &got, 5), AIOC_EINCOMPLETE);
  CHECK_EQ(got, 5);
  CHECK(memcmp(buf, "hello", 5) == 0);
  CHECK(aioc_stream_is_eof(s));
  CHECK_RC(aioc_stream_readexactly(s, buf, 1, &got, 5), AIOC_EINCOMPLETE);
  CHECK_EQ(got, 0);
  CHECK_RC(aioc_stream_readexactly(s, buf, 0, &got, 5), 0);
  size_t n = 7;
  CHECK_RC(aioc_stream_read(s, buf, sizeof buf, &n, 5), 0);
  CHECK_EQ(n, 0);
  aioc_stream_free(s);
  return 0;
}

TEST(test_peer_closes_mid_readexactly) { io_run(incomplete_main, NULL); }

static int closer_handler(void *arg, aioc_stream *s) {
  (void)arg;
  aioc_stream_free(s);
  return 0;
}

static int closed_peer_main(void *arg, void **res) {
  (void)arg, (void)res;
  /* A Unix peer that is gone: the first write fails. */
  int sv[2];
  sock_pair(sv);
  aioc_stream *s;
  CHECK_RC(aioc_stream_from_fd(&s, sv[1], NULL), 0);
  close(sv[0]);
  CHECK_RC(aioc_stream_write(s, "x", 1), -EPIPE);
  CHECK_RC(aioc_stream_write(s, "x", 1), -EPIPE); /* it stays */
  CHECK_RC(aioc_stream_drain(s, 1), -EPIPE);
  aioc_stream_free(s);
  /* A TCP peer that closed: writes go through until the reset comes. */
  aioc_server *srv;
  CHECK_RC(aioc_start_server(&srv, "127.0.0.1", 0, closer_handler, NULL, NULL),
           0);
  CHECK_RC(aioc_open_connection(&s, "127.0.0.1", aioc_server_port(srv), NULL,
                                5),
           0);
  char buf[1024] = {0};
  int rc = 0;
  for (int i = 0; i < 200 && rc == 0; i++) {
    rc = aioc_stream_write(s, buf, sizeof buf);
    if (rc == 0) rc = aioc_stream_drain(s, 5);
    if (rc == 0) rc = aioc_sleep(0.005);
  }
  CHECK(rc == -EPIPE || rc == -ECONNRESET);
  aioc_stream_free(s);
  aioc_server_close(srv);
  CHECK_RC(aioc_server_wait_closed(srv, 5), 0);
  aioc_server_free(srv);
  return 0;
}

TEST(test_write_to_closed_peer) {
  signal(SIGPIPE, SIG_DFL); /* a SIGPIPE would kill the case */
  io_run(closed_peer_main, NULL);
}

/* ---- accept under EMFILE ---------------------------------------------- */

static int emfile_handler(void *arg, aioc_stream *s) {
  int *served = arg;
  char c;
  size_t got;
  if (aioc_stream_readexactly(s, &c, 1, &got, 10) == 0 &&
      aioc_stream_write(s, &c, 1) == 0) {
    IGNORE_RC(aioc_stream_drain(s, 10));
    (*served)++;
  }
  return 0;
}

enum { EMFILE_CLIENTS = 12 };

/* The clients, in a process of their own (their fds do not count). */
static int emfile_clients(int port, rlim_t max) {
  struct rlimit rl = {max, max};
  setrlimit(RLIMIT_NOFILE, &rl);
  int fds[EMFILE_CLIENTS];
  for (int i = 0; i < EMFILE_CLIENTS; i++)
    if ((fds[i] = raw_connect(port)) < 0) return 10;
  for (int i = 0; i < EMFILE_CLIENTS; i++) {
    char c = (char)('a' + i), back = 0;
    if (write(fds[i], &c, 1) != 1) return 11;
    if (read(fds[i], &back, 1) != 1 || back != c) return 12;
    close(fds[i]);
  }
  return 0;
}

static int emfile_main(void *arg, void **res) {
  (void)arg, (void)res;
  int served = 0;
  aioc_server *srv;
  CHECK_RC(aioc_start_server(&srv, "127.0.0.1", 0, emfile_handler, &served,
                             NULL),
           0);
  int port = aioc_server_port(srv);
  /* Room for two connections at a time at most. */
  int fd = open("/dev/null", O_RDONLY);
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  rlim_t max = rl.rlim_max;
  rl.rlim_cur = (rlim_t)fd + 3;
  close(fd);
  CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0);
  pid_t pid = fork();
  if (pid == 0) _exit(emfile_clients(port, max));
  struct rusage r0, r1;
  getrusage(RUSAGE_SELF, &r0);
  int status = 0;
  pid_t done = 0;
  while (served < EMFILE_CLIENTS && done == 0) {
    CHECK_RC(aioc_sleep(0.01), 0);
    done = waitpid(pid, &status, WNOHANG);
  }
  getrusage(RUSAGE_SELF, &r1);
  if (done == 0) CHECK(waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  CHECK_EQ(served, EMFILE_CLIENTS);
  /* Backing off, not spinning: far less CPU than the time it took. */
  double cpu = (double)(r1.ru_utime.tv_sec - r0.ru_utime.tv_sec) +
               (double)(r1.ru_stime.tv_sec - r0.ru_stime.tv_sec) +
               (double)(r1.ru_utime.tv_usec - r0.ru_utime.tv_usec) / 1e6 +
               (double)(r1.ru_stime.tv_usec - r0.ru_stime.tv_usec) / 1e6;
  CHECK(cpu < 2.0);
  aioc_server_close(srv);
  CHECK_RC(aioc_server_wait_closed(srv, 5), 0);
  aioc_server_free(srv);
  return 0;
}

TEST(test_accept_emfile) { io_run(emfile_main, NULL); }

/* ---- a slow reader: drain blocks, memory stays bounded ------------------ */

typedef struct slow {
  int fd;       /* the reader's raw end */
  size_t total; /* bytes it read */
  size_t want;
} slow;

static int slow_reader(void *arg, void **res) {
  (void)res;
  slow *sl = arg;
  char buf[4096];
  while (sl->total < sl->want) {
    int rc = aioc_wait_readable(sl->fd, 10);
    if (rc < 0) return rc;
    ssize_t r = read(sl->fd, buf, sizeof buf);
    if (r > 0) sl->total += (size_t)r;
    else if (r == 0) break;
    IGNORE_RC(aioc_sleep(0.001)); /* slow */
  }
  return 0;
}

static int slow_main(void *arg, void **res) {
  (void)arg, (void)res;
  int sv[2];
  sock_pair(sv);
  int small = 4096;
  setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  fcntl(sv[0], F_SETFL, O_NONBLOCK);
  aioc_stream_options o = {.high_water = 16384, .low_water = 4096};
  aioc_stream *s;
  CHECK_RC(aioc_stream_from_fd(&s, sv[1], &o), 0);
  char chunk[8192];
  memset(chunk, 'z', sizeof chunk);
  /* Nobody reads: drain blocks (and times out), the buffer stays within
   * the high-water mark plus one write. */
  int rc = 0;
  size_t written = 0;
  for (int i = 0; i < 100 && rc == 0; i++) {
    CHECK_RC(aioc_stream_write(s, chunk, sizeof chunk), 0);
    written += sizeof chunk;
    rc = aioc_stream_drain(s, 0.05);
    CHECK(aioc_stream_write_buffer_size(s) <= 16384 + sizeof chunk);
  }
  CHECK_RC(rc, -ETIMEDOUT);
  /* A reader comes: every byte arrives, in order of writing. */
  slow sl = {.fd = sv[0], .want = 200 * sizeof chunk};
  aioc_task *t = spawn_io(slow_reader, &sl);
  CHECK_RC(aioc_stream_drain(s, 10), 0);
  CHECK(aioc_stream_write_buffer_size(s) <= 4096);
  for (int i = 0; written < sl.want; i++) {
    CHECK_RC(aioc_stream_write(s, chunk, sizeof chunk), 0);
    written += sizeof chunk;
    CHECK_RC(aioc_stream_drain(s, 10), 0);
    CHECK(aioc_stream_write_buffer_size(s) <= 16384 + sizeof chunk);
  }
  CHECK_RC(join_io(t), 0);
  CHECK_EQ(sl.total, sl.want);
  CHECK(aioc_fd_forget(NULL, sv[0]) >= 0);
  close(sv[0]);
  aioc_stream_free(s);
  return 0;
}

TEST(test_slow_reader) { io_run(slow_main, NULL); }

/* ---- lines: readline, readuntil, over-long lines ---------------------- */

static int lines_main(void *arg, void **res) {
  (void)arg, (void)res;
  int sv[2];
  sock_pair(sv);
  aioc_stream *s;
  CHECK_RC(aioc_stream_from_fd(&s, sv[1], NULL), 0);
  char longline[200];
  memset(longline, 'x', sizeof longline);
  longline[sizeof longline - 1] = '\n';
  CHECK_EQ(write(sv[0], "short\n", 6), 6);
  CHECK_EQ(write(sv[0], longline, sizeof longline), (ssize_t)sizeof longline);
  CHECK_EQ(write(sv[0], "next\n0123456789--rest", 21), 21);
  char buf[32];
  size_t n;
  CHECK_RC(aioc_stream_readline(s, buf, sizeof buf, &n, 5), 0);
  CHECK_EQ(n, 6);
  CHECK(memcmp(buf, "short\n", 6) == 0);
  /* Over the limit: an error, the line skipped, the stream usable. */
  CHECK_RC(aioc_stream_readline(s, buf, sizeof buf, &n, 5), -EMSGSIZE);
  CHECK_RC(aioc_stream_readline(s, buf, sizeof buf, &n, 5), 0);
  CHECK_EQ(n, 5);
  CHECK(memcmp(buf, "next\n", 5) == 0);
  /* readuntil over its limit leaves the data. */
  CHECK_RC(aioc_stream_readuntil(s, "--", 2, buf, 8, &n, 5), -EMSGSIZE);
  CHECK_RC(aioc_stream_readuntil(s, "--", 2, buf, sizeof buf, &n, 5), 0);
  CHECK_EQ(n, 12);
  CHECK(memcmp(buf, "0123456789--", 12) == 0);
  /* Not there yet: a timeout takes nothing. */
  CHECK_RC(aioc_stream_readuntil(s, "!", 1, buf, sizeof buf, &n, 0.05),
           -ETIMEDOUT);
  close(sv[0]);
  /* At the end without the separator: the rest comes with the code. */
  CHECK_RC(aioc_stream_readuntil(s, "!", 1, buf, sizeof buf, &n, 5),
           AIOC_EINCOMPLETE);
  CHECK_EQ(n, 4);
  CHECK(memcmp(buf, "rest", 4) == 0);
  CHECK_RC(aioc_stream_readline(s, buf, sizeof buf, &n, 5), 0);
  CHECK_EQ(n, 0);
  aioc_stream_free(s);
  return 0;
}

TEST(test_lines_and_limits) { io_run(lines_main, NULL); }

/* ---- a connect that times out ---------------------------------------- */

static int connect_timeout_main(void *arg, void **res) {
  (void)arg, (void)res;
  /* A listener that never accepts, with a backlog of 0: once its queue is
   * full, the kernel drops further SYNs and connects hang. */
  int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t al = sizeof a;
  CHECK(bind(l, (struct sockaddr *)&a, sizeof a) == 0);
  CHECK(listen(l, 0) == 0);
  getsockname(l, (struct sockaddr *)&a, &al);
  int port = ntohs(a.sin_port);
  aioc_stream *s[8] = {0};
  int rc = 0, i;
  for (i = 0; i < 8; i++) {
    rc = aioc_open_connection(&s[i], "127.0.0.1", port, NULL, 0.3);
    if (rc < 0) break;
  }
  CHECK_RC(rc, -ETIMEDOUT);
  CHECK(i < 8 && s[i] == NULL);
  /* The same with a deadline in scope, then cancelled. */
  aioc_scope *sc;
  CHECK_RC(aioc_timeout_enter(&sc, 0.2), 0);
  aioc_stream *x;
  CHECK_RC(aioc_open_connection(&x, "127.0.0.1", port, NULL, AIOC_FOREVER),
           -ETIMEDOUT);
  CHECK_RC(aioc_scope_exit(sc), -ETIMEDOUT);
  aioc_scope_free(sc);
  for (int k = 0; k < 8; k++) aioc_stream_free(s[k]);
  close(l);
  return 0;
}

TEST(test_connect_timeout) { io_run(connect_timeout_main, NULL); }

/* ---- Happy Eyeballs: a name with two addresses ----------------------- */

static int he_conn(void *arg, aioc_stream *s) {
  (void)arg;
  IGNORE_RC(aioc_stream_write(s, "6", 1));
  IGNORE_RC(aioc_stream_drain(s, 1));
  return 0;
}

static int happy_eyeballs_main(void *arg, void **res) {
  (void)arg, (void)res;
  /* "localhost" is 127.0.0.1, then ::1. On 127.0.0.1 the port has a
   * listener that never accepts, its backlog full: connects there hang.
   * On ::1 the same port number has a server. */
  int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t al = sizeof a;
  CHECK(bind(l, (struct sockaddr *)&a, sizeof a) == 0);
  CHECK(listen(l, 0) == 0);
  getsockname(l, (struct sockaddr *)&a, &al);
  int port = ntohs(a.sin_port);
  int fill[4];
  for (int i = 0; i < 4; i++) {
    fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    IGNORE_RC(connect(fill[i], (struct sockaddr *)&a, sizeof a));
  }
  aioc_server *srv;
  int rc = aioc_start_server(&srv, "::1", port, he_conn, NULL, NULL);
  if (rc == -EADDRINUSE || rc == -EADDRNOTAVAIL || rc == -EAFNOSUPPORT) {
    fprintf(stderr, "skipped: no [::1]:%d here (%s)\n", port,
            aioc_err_name(rc));
  } else {
    CHECK_RC(rc, 0);
    /* The first attempt hangs; the second starts after the delay and
     * wins; the first is cancelled. */
    aioc_stream *s;
    double t0 = aioc_time();
    CHECK_RC(aioc_open_connection(&s, "localhost", port, NULL, 10), 0);
    double took = aioc_time() - t0;
    CHECK(took >= 0.2); /* the delay before the second address */
    struct sockaddr_storage peer;
    CHECK(aioc_stream_peername(s, &peer) > 0);
    CHECK_EQ(peer.ss_family, AF_INET6);
    char c;
    size_t got;
    CHECK_RC(aioc_stream_readexactly(s, &c, 1, &got, 5), 0);
    CHECK_EQ(c, '6');
    aioc_stream_free(s);
    /* Cancelled while both attempts run: nothing is left behind. */
    aioc_scope *sc;
    aioc_server_close(srv);
    CHECK_RC(aioc_server_wait_closed(srv, 5), 0);
    aioc_server_free(srv);
    CHECK_RC(aioc_timeout_enter(&sc, 0.1), 0);
    CHECK_RC(aioc_open_connection(&s, "localhost", port, NULL, 10), -ETIMEDOUT);
    CHECK_RC(aioc_scope_exit(sc), -ETIMEDOUT);
    aioc_scope_free(sc);
  }
  for (int i = 0; i < 4; i++) close(fill[i]);
  close(l);
  return 0;
}

TEST(test_happy_eyeballs) { io_run(happy_eyeballs_main, NULL); }

/* A name from the hosts file, through the loop's resolver. */
static int name_main(void *arg, void **res) {
  (void)arg, (void)res;
  char host[256];
  if (gethostname(host, sizeof host) != 0) return 0;
  /* Loopback only: a name not in the hosts file goes to a name server
   * on 127.0.0.1 that is not there (refused at once). */
  aioc_dns_options dopts = {.servers = "127.0.0.1:9", .try_timeout = 0.2,
                            .tries = 1};
  CHECK_RC(aioc_dns_configure(NULL, &dopts), 0);
  aioc_server *srv;
  CHECK_RC(aioc_start_server(&srv, "127.0.0.1", 0, he_conn, NULL, NULL), 0);
  aioc_stream *s;
  int rc = aioc_open_connection(&s, host, aioc_server_port(srv), NULL, 10);
  if (rc == AIOC_ENONAME || rc == -ECONNREFUSED || rc == -ETIMEDOUT) {
    fprintf(stderr, "skipped: %s does not resolve to 127.0.0.1 here (%s)\n",
            host, aioc_err_name(rc));
  } else {
    CHECK_RC(rc, 0);
    char c;
    size_t got;
    CHECK_RC(aioc_stream_readexactly(s, &c, 1, &got, 5), 0);
    CHECK_EQ(c, '6');
    aioc_stream_free(s);
  }
  /* A name no source knows: the resolver's code, nothing connected. */
  s = NULL;
  rc = aioc_open_connection(&s, "no-such-host.invalid", 80, NULL, 5);
  CHECK(rc == AIOC_ENONAME || rc == -ETIMEDOUT || rc == -ECONNREFUSED);
  CHECK(s == NULL);
  aioc_server_close(srv);
  CHECK_RC(aioc_server_wait_closed(srv, 5), 0);
  aioc_server_free(srv);
  return 0;
}

TEST(test_open_connection_by_name) { io_run(name_main, NULL); }

/* ---- cancellation at every suspension point --------------------------- */

typedef struct op {
  aioc_stream *s;
  int kind;
  char buf[64];
  size_t n;
  int rc;
} op;

enum { OP_READ, OP_EXACT, OP_UNTIL, OP_LINE, OP_DRAIN, OP_CLOSED };

static int op_task(void *arg, void **res) {
  (void)res;
  op *o = arg;
  switch (o->kind) {
  case OP_READ:
    o->rc = aioc_stream_read(o->s, o->buf, sizeof o->buf, &o->n, AIOC_FOREVER);
    break;
  case OP_EXACT:
    o->rc = aioc_stream_readexactly(o->s, o->buf, 8, &o->n, AIOC_FOREVER);
    break;
  case OP_UNTIL:
    o->rc = aioc_stream_readuntil(o->s, "\r\n", 2, o->buf, sizeof o->buf,
                                  &o->n, AIOC_FOREVER);
    break;
  case OP_LINE:
    o->rc = aioc_stream_readline(o->s, o->buf, sizeof o->buf, &o->n,
                                 AIOC_FOREVER);
    break;
  case OP_DRAIN:
    o->rc = aioc_stream_drain(o->s, AIOC_FOREVER);
    break;
  case OP_CLOSED:
    o->rc = aioc_stream_wait_closed(o->s, AIOC_FOREVER);
    break;
  }
  return 0;
}

/* Starts op kind on s, lets it wait, cancels it: it returns -ECANCELED. */
static void cancel_op(aioc_stream *s, int kind) {
  op o = {.s = s, .kind = kind};
  aioc_task *t = spawn_io(op_task, &o);
  settle_io();
  CHECK(aioc_task_is_running(t));
  aioc_task_cancel(t, NULL);
  CHECK_RC(join_io(t), 0);
  CHECK_RC(o.rc, -ECANCELED);
}

static int cancel_main(void *arg, void **res) {
  (void)arg, (void)res;
  int sv[2];
  sock_pair(sv);
  aioc_stream *s;
  CHECK_RC(aioc_stream_from_fd(&s, sv[1], NULL), 0);
  size_t n;
  char buf[64];
  /* Each read kind, cancelled with part of its data there: nothing is
   * consumed, the next read gets everything. */
  cancel_op(s, OP_READ);
  CHECK_EQ(write(sv[0], "1234", 4), 4);
  cancel_op(s, OP_EXACT);
  cancel_op(s, OP_UNTIL);
  cancel_op(s, OP_LINE);
  CHECK_EQ(write(sv[0], "5678\r\n", 6), 6);
  CHECK_RC(aioc_stream_readexactly(s, buf, 8, &n, 5), 0);
  CHECK(memcmp(buf, "12345678", 8) == 0);
  CHECK_RC(aioc_stream_readuntil(s, "\r\n", 2, buf, sizeof buf, &n, 5), 0);
  CHECK_EQ(n, 2);
  /* Two readers: the second is refused. */
  op o = {.s = s, .kind = OP_READ};
  aioc_task *t = spawn_io(op_task, &o);
  settle_io();
  CHECK_RC(aioc_stream_read(s, buf, sizeof buf, &n, 1), -EBUSY);
  CHECK_EQ(write(sv[0], "x", 1), 1);
  CHECK_RC(join_io(t), 0);
  CHECK_RC(o.rc, 0);
  CHECK_EQ(o.n, 1);
  /* Drain, cancelled: the data stays buffered and still goes out. */
  aioc_stream_options so = {.high_water = 1024};
  aioc_stream *w;
  int wv[2];
  sock_pair(wv);
  int small = 4096;
  setsockopt(wv[1], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  CHECK_RC(aioc_stream_from_fd(&w, wv[1], &so), 0);
  char big[65536];
  memset(big, 'q', sizeof big);
  CHECK_RC(aioc_stream_write(w, big, sizeof big), 0);
  size_t pending = aioc_stream_write_buffer_size(w);
  CHECK(pending > 1024);
  cancel_op(w, OP_DRAIN);
  CHECK_EQ(aioc_stream_write_buffer_size(w), pending);
  /* wait_closed, cancelled, and with a timeout: the data still goes. */
  CHECK_RC(aioc_stream_wait_closed(w, 1), AIOC_ESTATE);
  CHECK_RC(aioc_stream_close(w), 0);
  CHECK_RC(aioc_stream_write(w, "x", 1), AIOC_ECLOSED);
  cancel_op(w, OP_CLOSED);
  CHECK_RC(aioc_stream_wait_closed(w, 0.02), -ETIMEDOUT);
  size_t total = 0;
  fcntl(wv[0], F_SETFL, O_NONBLOCK);
  while (total < sizeof big) {
    CHECK_RC(aioc_wait_readable(wv[0], 5), 0);
    ssize_t r = read(wv[0], big, sizeof big);
    if (r <= 0) break;
    total += (size_t)r;
  }
  CHECK_EQ(total, sizeof big);
  CHECK_RC(aioc_stream_wait_closed(w, 5), 0);
  CHECK_EQ(read(wv[0], big, 1), 0); /* closed after the data */
  CHECK_EQ(aioc_fd_forget(NULL, wv[0]), 1);
  close(wv[0]);
  aioc_stream_free(w);
  /* A read waiting while another task closes or frees the stream. */
  o = (op){.s = s, .kind = OP_READ};
  t = spawn_io(op_task, &o);
  settle_io();
  aioc_stream_free(s);
  CHECK_RC(join_io(t), 0);
  CHECK_RC(o.rc, AIOC_ECLOSED);
  close(sv[0]);
  return 0;
}

TEST(test_cancel_every_point) { io_run(cancel_main, NULL); }

/* ---- half-close; close flushes ------------------------------------------ */

static int count_handler(void *arg, aioc_stream *s) {
  (void)arg;
  char buf[256];
  size_t n, total = 0;
  int rc;
  while ((rc = aioc_stream_read(s, buf, sizeof buf, &n, 5)) == 0 && n)
    total += n;
  if (rc < 0) return 0;
  int len = snprintf(buf, sizeof buf, "%zu\n", total);
  IGNORE_RC(aioc_stream_write(s, buf, (size_t)len));
  return 0; /* the server closes the stream, sending what was written */
}

static int half_close_main(void *arg, void **res) {
  (void)arg, (void)res;
  aioc_server *srv;
  CHECK_RC(aioc_start_server(&srv, "127.0.0.1", 0, count_handler, NULL, NULL),
           0);
  aioc_stream *s;
  CHECK_RC(aioc_open_connection(&s, "127.0.0.1", aioc_server_port(srv), NULL,
                                5),
           0);
  struct sockaddr_storage a, b;
  CHECK(aioc_stream_peername(s, &a) > 0);
  CHECK(aioc_stream_sockname(s, &b) > 0);
  CHECK_EQ(ntohs(((struct sockaddr_in *)&a)->sin_port), aioc_server_port(srv));
  CHECK_EQ(a.ss_family, AF_INET);
  static char data[300000];
  CHECK_RC(aioc_stream_write(s, data, sizeof data), 0);
  CHECK_RC(aioc_stream_write_eof(s), 0);
  CHECK_RC(aioc_stream_write(s, "x", 1), -EPIPE);
  char buf[64];
  size_t n;
  CHECK_RC(aioc_stream_readline(s, buf, sizeof buf, &n, 10), 0);
  buf[n] = 0;
  CHECK_STR(buf, "300000\n");
  CHECK_RC(aioc_stream_read(s, buf, sizeof buf, &n, 10), 0);
  CHECK_EQ(n, 0);
  CHECK(aioc_stream_is_eof(s));
  aioc_stream_free(s);
  aioc_server_close(srv);
  CHECK_RC(aioc_server_wait_closed(srv, 5), 0);
  aioc_server_free(srv);
  return 0;
}

TEST(test_half_close) { io_run(half_close_main, NULL); }

/* ---- a server closed with connections in progress ----------------------- */

static int stuck_handler(void *arg, aioc_stream *s) {
  int *cancelled = arg;
  char buf[16];
  size_t n;
  int rc = aioc_stream_read(s, buf, sizeof buf, &n, AIOC_FOREVER);
  if (rc == -ECANCELED) (*cancelled)++;
  return 0;
}

static int server_close_main(void *arg, void **res) {
  (void)arg, (void)res;
  int cancelled = 0;
  aioc_server *srv;
  CHECK_RC(aioc_start_server(&srv, "127.0.0.1", 0, stuck_handler, &cancelled,
                             NULL),
           0);
  int port = aioc_server_port(srv);
  CHECK_RC(aioc_server_wait_closed(srv, 1), AIOC_ESTATE);
  aioc_stream *c[5];
  for (int i = 0; i < 5; i++)
    CHECK_RC(aioc_open_connection(&c[i], "127.0.0.1", port, NULL, 5), 0);
  while (aioc_server_connections(srv) < 5) CHECK_RC(aioc_sleep(0.001), 0);
  CHECK_RC(aioc_server_close(srv), 0);
  /* No new connections; the ones in progress go on. */
  aioc_stream *x;
  CHECK_RC(aioc_open_connection(&x, "127.0.0.1", port, NULL, 5),
           -ECONNREFUSED);
  CHECK_RC(aioc_server_wait_closed(srv, 0.05), -ETIMEDOUT);
  CHECK_EQ(aioc_server_connections(srv), 5);
  CHECK_EQ(aioc_server_cancel_connections(srv), 5);
  CHECK_RC(aioc_server_wait_closed(srv, 5), 0);
  CHECK_EQ(cancelled, 5);
  CHECK_EQ(aioc_server_connections(srv), 0);
  /* The clients see the end. */
  char buf[4];
  size_t n;
  for (int i = 0; i < 5; i++) {
    CHECK_RC(aioc_stream_read(c[i], buf, sizeof buf, &n, 5), 0);
    CHECK_EQ(n, 0);
    aioc_stream_free(c[i]);
  }
  aioc_server_free(srv);
  /* Freed with connections in progress: they are cancelled, and end. */
  cancelled = 0;
  CHECK_RC(aioc_start_server(&srv, "127.0.0.1", 0, stuck_handler, &cancelled,
                             NULL),
           0);
  CHECK_RC(aioc_open_connection(&x, "127.0.0.1", aioc_server_port(srv), NULL,
                                5),
           0);
  settle_io();
  aioc_server_free(srv);
  CHECK_RC(aioc_stream_read(x, buf, sizeof buf, &n, 5), 0);
  CHECK_EQ(n, 0);
  aioc_stream_free(x);
  return 0;
}

TEST(test_server_close_active) { io_run(server_close_main, NULL); }

/* ---- iterators ------------------------------------------------------------ */

static int writer_task(void *arg, void **res) {
  (void)res;
  int fd = *(int *)arg;
  const char *parts[] = {"one\ntw", "o\n", "three\n"};
  for (int i = 0; i < 3; i++) {
    if (write(fd, parts[i], strlen(parts[i])) < 0) return -errno;
    IGNORE_RC(aioc_sleep(i == 1 ? 0.3 : 0.01)); /* a pause before three */
  }
  close(fd);
  return 0;
}

static int iter_main(void *arg, void **res) {
  (void)arg, (void)res;
  int sv[2];
  sock_pair(sv);
  aioc_stream *s;
  CHECK_RC(aioc_stream_from_fd(&s, sv[1], NULL), 0);
  aioc_iter *lines, *it;
  CHECK_RC(aioc_stream_lines_iter(&lines, s), 0);
  aioc_timed_options to = {.between = 0.1};
  CHECK_RC(aioc_iter_timed(&it, lines, &to), 0);
  aioc_task *w = spawn_io(writer_task, &sv[0]);
  const char *want[] = {"one\n", "two\n", "three\n"};
  int got = 0, timeouts = 0;
  for (;;) {
    void *item;
    int rc = aioc_iter_next(it, &item, AIOC_FOREVER);
    if (rc == AIOC_EXHAUSTED) break;
    if (rc == -ETIMEDOUT) {
      timeouts++; /* the pause: the next call still gets the line */
      continue;
    }
    CHECK_RC(rc, 0);
    if (rc < 0) break;
    const aioc_bytes *b = item;
    CHECK(got < 3 && b->len == strlen(want[got]) &&
          memcmp(b->data, want[got], b->len) == 0);
    got++;
  }
  CHECK_EQ(got, 3);
  CHECK(timeouts >= 1);
  CHECK_RC(join_io(w), 0);
  aioc_iter_free(it); /* frees the stream */
  /* Chunks, through a helper. */
  sock_pair(sv);
  CHECK_RC(aioc_stream_from_fd(&s, sv[1], NULL), 0);
  CHECK_RC(aioc_stream_chunks_iter(&it, s, 4), 0);
  CHECK_EQ(write(sv[0], "abcdefghij", 10), 10);
  close(sv[0]);
  size_t total = 0;
  void *item;
  int rc;
  while ((rc = aioc_iter_next(it, &item, 5)) == 0) {
    const aioc_bytes *b = item;
    CHECK(b->len >= 1 && b->len <= 4);
    CHECK(memcmp(b->data, "abcdefghij" + total, b->len) == 0);
    total += b->len;
  }
  CHECK_RC(rc, AIOC_EXHAUSTED);
  CHECK_EQ(total, 10);
  aioc_iter_free(it);
  return 0;
}

TEST(test_iterators) { io_run(iter_main, NULL); }

/* ---- bad input ------------------------------------------------------------ */

static int bad_main(void *arg, void **res) {
  (void)arg, (void)res;
  int sv[2];
  sock_pair(sv);
  aioc_stream *s;
  char buf[8];
  size_t n;
  CHECK_RC(aioc_stream_from_fd(NULL, sv[1], NULL), -EINVAL);
  CHECK_RC(aioc_stream_from_fd(&s, -1, NULL), -EINVAL);
  int fd = open("/dev/null", O_RDONLY);
  CHECK_RC(aioc_stream_from_fd(&s, fd, NULL), -ENOTSOCK);
  close(fd);
  CHECK_RC(aioc_stream_from_fd(&s, sv[1], NULL), 0);
  CHECK_RC(aioc_stream_read(NULL, buf, 1, &n, 1), -EINVAL);
  CHECK_RC(aioc_stream_read(s, buf, 0, &n, 1), -EINVAL);
  CHECK_RC(aioc_stream_read(s, buf, 1, &n, NAN), -EINVAL);
  CHECK_RC(aioc_stream_readuntil(s, "", 0, buf, 8, &n, 1), -EINVAL);
  CHECK_RC(aioc_stream_write(s, NULL, 1), -EINVAL);
  CHECK_RC(aioc_stream_write(s, NULL, 0), 0);
  CHECK_RC(aioc_stream_drain(s, -1), -EINVAL);
  CHECK_RC(aioc_stream_read(s, buf, 1, &n, 0), -ETIMEDOUT);
  CHECK_EQ(aioc_fd_forget(NULL, sv[1]), -EBUSY);
  CHECK_RC(aioc_wait_readable(sv[1], 0), -EBUSY);
  CHECK_EQ(aioc_stream_fd(s), sv[1]);
  CHECK_RC(aioc_stream_close(s), 0);
  CHECK_RC(aioc_stream_close(s), AIOC_ECLOSED);
  CHECK_RC(aioc_stream_read(s, buf, 1, &n, 1), AIOC_ECLOSED);
  CHECK_RC(aioc_stream_wait_closed(s, 1), 0);
  CHECK_EQ(aioc_stream_fd(s), -1);
  aioc_stream_free(s);
  aioc_stream_free(NULL);
  close(sv[0]);
  aioc_server *srv;
  CHECK_RC(aioc_start_server(&srv, "127.0.0.1", 0, NULL, NULL, NULL), -EINVAL);
  CHECK_RC(aioc_start_server(&srv, "nowhere", 0, echo_handler, NULL, NULL),
           -EINVAL);
  CHECK_RC(aioc_start_server(&srv, "127.0.0.1", 0, echo_handler, NULL, NULL),
           0);
  aioc_server *srv2;
  CHECK_RC(aioc_start_server(&srv2, "127.0.0.1", aioc_server_port(srv),
                             echo_handler, NULL, NULL),
           -EADDRINUSE);
  aioc_server_options ro = {.reuse_port = 1};
  aioc_server_free(srv);
  /* Two servers on one port with SO_REUSEPORT. */
  CHECK_RC(aioc_start_server(&srv, "127.0.0.1", 0, echo_handler, NULL, &ro), 0);
  CHECK_RC(aioc_start_server(&srv2, "127.0.0.1", aioc_server_port(srv),
                             echo_handler, NULL, &ro),
           0);
  aioc_server_free(srv2);
  aioc_server_free(srv);
  aioc_server_free(NULL);
  settle_io(); /* the cancelled acceptors end */
  return 0;
}

TEST(test_bad_input) { io_run(bad_main, NULL); }

/* Outside a task: what needs no wait works, what would wait says so. */
TEST(test_outside_task) {
  aioc_loop *loop = test_loop(0);
  int sv[2];
  sock_pair(sv);
  aioc_stream *s;
  CHECK_RC(aioc_stream_from_fd(&s, sv[1], NULL), 0);
  char buf[8];
  size_t n;
  CHECK_RC(aioc_stream_read(s, buf, sizeof buf, &n, 1), AIOC_ENOTASK);
  CHECK_RC(aioc_stream_write(s, "hi", 2), 0);
  CHECK_EQ(read(sv[0], buf, 2), 2);
  CHECK_EQ(write(sv[0], "yo", 2), 2);
  CHECK_RC(aioc_stream_read(s, buf, sizeof buf, &n, 1), 0);
  CHECK_EQ(n, 2);
  aioc_stream *x;
  CHECK_RC(aioc_open_connection(&x, "127.0.0.1", 1, NULL, 1), AIOC_ENOTASK);
  /* The loop closes with the stream alive: freeing it later is safe. */
  aioc_stream *keep;
  CHECK_RC(aioc_stream_from_fd(&keep, sv[0], NULL), 0);
  CLOSE_CLEAN(loop);
  aioc_stream_free(keep);
  aioc_stream_free(s);
}

CHECK_MAIN(60)
