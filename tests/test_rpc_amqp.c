/* Streaming RPC over the AMQP transport.
 *
 * Without a broker: bad input, a refused connection, a handshake that
 * never comes. With the throwaway RabbitMQ the test run starts
 * (scripts/rmq.sh through CTest fixtures; AIOC_RMQ_ENV names its file):
 * seed 000's scenario, errors and expiry, a request the broker refuses
 * (with and without publisher confirms), a malformed request
 * (dead-lettered), a reply for an unknown correlation id (dropped and
 * counted, sent by a worker written with rabbitmq-c's own API, which also
 * checks the wire format), a worker killed mid-stream (two worker
 * processes: redelivery, nothing lost, nothing twice), the broker
 * blocking publishers (the loop's timers stay on time), the broker hung
 * (heartbeats) and the broker killed and restarted (an error, then the
 * transport connects again and serves). */
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "rpc_common.h"

#ifdef AIOC_HAVE_RABBITMQ
#include <amqp.h>
#include <amqp_tcp_socket.h>
#endif

/* ---- the broker of this run ---- */

static int g_port;
static char g_url[128];
static char g_prefix[64];
static const char *g_envfile, *g_script;

/* Reads the broker's port; 0 if there is no broker (with the reason). */
static int broker(const char *why_needed) {
  g_envfile = getenv("AIOC_RMQ_ENV");
  g_script = getenv("AIOC_RMQ_SCRIPT");
  const char *why = NULL;
  FILE *f = g_envfile ? fopen(g_envfile, "r") : NULL;
  if (!g_envfile || !g_script)
    why = "no broker for this build";
  else if (!f)
    why = "the broker did not start (RabbitMQ not installed?)";
  char line[256];
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, "RMQ_PORT=", 9) == 0) g_port = atoi(line + 9);
  if (f) fclose(f);
  if (!why && !g_port) why = "the broker's port is unknown";
#ifndef AIOC_HAVE_RABBITMQ
  why = "aioc was built without rabbitmq-c";
#endif
  if (why) {
    printf("skipped (%s): %s\n", why_needed, why);
    return 0;
  }
  snprintf(g_url, sizeof g_url, "amqp://guest:guest@127.0.0.1:%d", g_port);
  /* Names of this case only: the broker is shared by the run. */
  snprintf(g_prefix, sizeof g_prefix, "t%d.%s.", (int)getpid(),
           check_current + 14);
  return 1;
}

/* Runs the broker script's command (restart, ctl ...) with args; its
 * exit status. */
static int rmq(const char *command, const char *args) {
  char cmd[512];
  snprintf(cmd, sizeof cmd, "%s %s %s %s >/dev/null 2>&1", g_script, command,
           g_envfile, args);
  return system(cmd);
}

static pid_t broker_pid(void) {
  char cmd[512];
  snprintf(cmd, sizeof cmd, "%s pid %s", g_script, g_envfile);
  FILE *p = popen(cmd, "r");
  int pid = 0;
  if (p) {
    if (fscanf(p, "%d", &pid) != 1) pid = 0;
    pclose(p);
  }
  return (pid_t)pid;
}

/* ---- handlers ---- */



/* A worker transport with a server, and a client on a transport of its
 * own (two connections, as two processes would have). */
typedef struct fixture {
  aioc_rpc_transport *wt, *ct;
  aioc_rpc_server *s;
  aioc_rpc_client *c;
} fixture;

static aioc_rpc_amqp_options amqp_opts(void) {
  return (aioc_rpc_amqp_options){
      .prefix = g_prefix, .heartbeat = 1, .connect_timeout = 10};
}

static int fixture_up(fixture *f, stream_spec *sp, size_t prefetch) {
  memset(f, 0, sizeof *f);
  aioc_rpc_amqp_options o = amqp_opts();
  int rc = aioc_rpc_amqp_new(&f->wt, g_url, &o);
  CHECK_RC(rc, 0);
  if (rc) return rc;
  CHECK_RC(aioc_rpc_amqp_new(&f->ct, g_url, &o), 0);
  aioc_rpc_server_options so = {.prefetch = prefetch};
  CHECK_RC(aioc_rpc_server_new(&f->s, f->wt, &so), 0);
  CHECK_RC(aioc_rpc_server_register(f->s, "stream", stream_handler, sp), 0);
  CHECK_RC(aioc_rpc_server_start(f->s), 0);
  CHECK_RC(aioc_rpc_client_new(&f->c, f->ct, NULL), 0);
  /* Calls find the worker's queue once its consumer is set up. */
  aioc_rpc_amqp_counters k = {0};
  for (int i = 0; i < 200 && !k.serving; i++) {
    CHECK_RC(aioc_rpc_amqp_stats(f->wt, &k), 0);
    if (!k.serving) CHECK_RC(aioc_sleep(0.05), 0);
  }
  CHECK_EQ(k.serving, 1);
  return 0;
}

static void fixture_down(fixture *f) {
  aioc_rpc_client_free(f->c);
  aioc_rpc_server_free(f->s);
  aioc_rpc_transport_free(f->ct);
  aioc_rpc_transport_free(f->wt);
}

/* ---- without a broker ---- */

static int bad_input_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  aioc_rpc_transport *tr = (aioc_rpc_transport *)1;
  CHECK_RC(aioc_rpc_amqp_new(NULL, "amqp://127.0.0.1/", NULL), -EINVAL);
  CHECK_RC(aioc_rpc_amqp_new(&tr, NULL, NULL), -EINVAL);
  CHECK(tr == NULL);
#ifdef AIOC_HAVE_RABBITMQ
  CHECK_RC(aioc_rpc_amqp_new(&tr, "http://127.0.0.1/", NULL), -EINVAL);
  CHECK_RC(aioc_rpc_amqp_new(&tr, "amqps://127.0.0.1/", NULL), -EINVAL);
  /* A name would need a resolver that blocks: refused. */
  CHECK_RC(aioc_rpc_amqp_new(&tr, "amqp://broker.invalid/", NULL), -EINVAL);
  aioc_rpc_amqp_options o = {.heartbeat = -1};
  CHECK_RC(aioc_rpc_amqp_new(&tr, "amqp://127.0.0.1/", &o), -EINVAL);
  char longp[256];
  memset(longp, 'p', sizeof longp - 1);
  longp[255] = 0;
  o = (aioc_rpc_amqp_options){.prefix = longp};
  CHECK_RC(aioc_rpc_amqp_new(&tr, "amqp://127.0.0.1/", &o), -EINVAL);
#else
  CHECK_RC(aioc_rpc_amqp_new(&tr, "amqp://127.0.0.1/", NULL), -ENOSYS);
#endif
  CHECK(tr == NULL);
  aioc_rpc_transport *local;
  CHECK_RC(aioc_rpc_local_new(&local), 0);
  aioc_rpc_amqp_counters k;
  CHECK_RC(aioc_rpc_amqp_stats(local, &k), -EINVAL);
  CHECK_RC(aioc_rpc_amqp_stats(NULL, &k), -EINVAL);
  aioc_rpc_transport_free(local);
  return 0;
}

TEST(test_rpc_amqp_bad_input) {
  CHECK_RC(run_main_real(bad_input_main, NULL, NULL), 0);
}

#ifdef AIOC_HAVE_RABBITMQ

/* A loopback port with a listener that never answers, or none. */
static int listener(int *port, int listen_too) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
      getsockname(fd, (struct sockaddr *)&a, &len) < 0)
    return -1;
  if (listen_too && listen(fd, 4) < 0) return -1;
  *port = ntohs(a.sin_port);
  return fd;
}

static int no_broker_main(void *arg, void **res) {
  (void)res;
  int silent = AIOC_TO_INT(arg);
  int port = 0;
  int fd = listener(&port, silent);
  CHECK(fd >= 0);
  char url[64];
  snprintf(url, sizeof url, "amqp://127.0.0.1:%d/", port);
  aioc_rpc_amqp_options o = {.connect_timeout = 0.5};
  aioc_rpc_transport *tr = NULL;
  double t0 = aioc_time();
  /* Bound, not listening: refused. Listening, never answering: the
   * handshake times out. */
  CHECK_RC(aioc_rpc_amqp_new(&tr, url, &o),
           silent ? -ETIMEDOUT : -ECONNREFUSED);
  CHECK(aioc_error_message() != NULL);
  CHECK(tr == NULL);
  if (silent) CHECK(aioc_time() - t0 >= 0.5);
  close(fd);
  return 0;
}

TEST(test_rpc_amqp_connection_refused) {
  CHECK_RC(run_main_real(no_broker_main, AIOC_INT(0), NULL), 0);
}

TEST(test_rpc_amqp_handshake_timeout) {
  CHECK_RC(run_main_real(no_broker_main, AIOC_INT(1), NULL), 0);
}

/* ---- raw rabbitmq-c (another client of the wire format) ---- */

static amqp_connection_state_t raw_connect(void) {
  amqp_connection_state_t conn = amqp_new_connection();
  amqp_socket_t *sock = amqp_tcp_socket_new(conn);
  struct timeval tv = {5, 0};
  if (!sock || amqp_socket_open_noblock(sock, "127.0.0.1", g_port, &tv)) {
    amqp_destroy_connection(conn);
    return NULL;
  }
  amqp_rpc_reply_t r = amqp_login(conn, "/", 0, 131072, 0,
                                  AMQP_SASL_METHOD_PLAIN, "guest", "guest");
  amqp_set_rpc_timeout(conn, &tv);
  if (r.reply_type != AMQP_RESPONSE_NORMAL || !amqp_channel_open(conn, 1)) {
    amqp_destroy_connection(conn);
    return NULL;
  }
  return conn;
}

static void raw_close(amqp_connection_state_t conn) {
  amqp_channel_close(conn, 1, AMQP_REPLY_SUCCESS);
  amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
  amqp_destroy_connection(conn);
}

/* Messages ready in queue (passive declare), -1 on error. */
static long raw_count(const char *queue) {
  amqp_connection_state_t conn = raw_connect();
  if (!conn) return -1;
  amqp_queue_declare_ok_t *ok = amqp_queue_declare(
      conn, 1, amqp_cstring_bytes(queue), 1, 0, 0, 0, amqp_empty_table);
  long n = ok ? (long)ok->message_count : -1;
  raw_close(conn);
  return n;
}

/* ---- seed 000 over AMQP ---- */

static int seed000_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  stream_spec sp = {.n = 5, .pause = 0.1, .long_at = 1.0, .fail_at = -1};
  fixture f;
  if (fixture_up(&f, &sp, 0)) return 0;
  aioc_iter *it;
  void *item;
  CHECK_RC(aioc_rpc_call(&it, f.c, "stream", "job", 3, NULL), 0);
  CHECK_RC(aioc_iter_next(it, &item, 5), 0);
  check_chunk(item, "job-0", 0);
  CHECK_RC(aioc_iter_next(it, &item, 5), 0);
  check_chunk(item, "job-1", 1);
  /* Chunk 2 comes a second later: a 0.3 s wait times out, nothing lost. */
  CHECK_RC(aioc_iter_next(it, &item, 0.3), -ETIMEDOUT);
  CHECK(item == NULL);
  /* Keep waiting: the late chunk arrives. */
  CHECK_RC(aioc_iter_next(it, &item, 5), 0);
  check_chunk(item, "job-2", 2);
  CHECK_RC(aioc_iter_next(it, &item, 5), 0);
  check_chunk(item, "job-3", 3);
  CHECK_RC(aioc_iter_next(it, &item, 5), 0);
  check_chunk(item, "job-4", 4);
  CHECK_RC(aioc_iter_next(it, &item, 5), AIOC_EXHAUSTED);
  aioc_iter_free(it);
  CHECK_EQ(sp.yielded, 5);

  /* Give up after the timeout: the worker is told (its sleep is
   * cancelled). */
  sp = (stream_spec){.n = 5, .pause = 0.1, .long_at = 1.0, .fail_at = -1};
  CHECK_RC(aioc_rpc_call(&it, f.c, "stream", "x", 1, NULL), 0);
  CHECK_RC(aioc_iter_next(it, &item, 5), 0);
  check_chunk(item, "x-0", 0);
  CHECK_RC(aioc_iter_next(it, &item, 5), 0);
  check_chunk(item, "x-1", 1);
  CHECK_RC(aioc_iter_next(it, &item, 0.3), -ETIMEDOUT);
  aioc_iter_free(it); /* gives up */
  for (int i = 0; i < 100 && !sp.last_rc; i++)
    CHECK_RC(aioc_sleep(0.05), 0);
  CHECK_EQ(sp.last_rc, -ECANCELED);
  CHECK_EQ(sp.yielded, 2);
  size_t handled = 0, active = 1;
  for (int i = 0; i < 100 && (handled < 2 || active); i++) {
    CHECK_RC(aioc_rpc_server_stats(f.s, &handled, &active), 0);
    CHECK_RC(aioc_sleep(0.05), 0);
  }
  CHECK_EQ((int)handled, 2);
  CHECK_EQ((int)active, 0);
  fixture_down(&f);
  return 0;
}

TEST(test_rpc_amqp_seed000) {
  if (!broker("seed 000 over AMQP")) return;
  CHECK_RC(run_main_real(seed000_main, NULL, NULL), 0);
}

/* ---- errors, unknown methods, unary calls, expiry ---- */

static int errors_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  stream_spec sp = {.n = 5, .fail_at = 2};
  fixture f;
  if (fixture_up(&f, &sp, 1)) return 0;
  aioc_iter *it, *b;
  void *item;
  CHECK_RC(aioc_rpc_call(&it, f.c, "stream", "e", 1, NULL), 0);
  CHECK_RC(aioc_iter_next(it, &item, 5), 0);
  check_chunk(item, "e-0", 0);
  CHECK_RC(aioc_iter_next(it, &item, 5), 0);
  check_chunk(item, "e-1", 1);
  CHECK_RC(aioc_iter_next(it, &item, 5), -EIO);
  CHECK_STR(aioc_error_message(), "handler failed after 2 chunks");
  CHECK_RC(aioc_iter_next(it, &item, 5), AIOC_EXHAUSTED);
  aioc_iter_free(it);

  /* Nobody serves the method: the broker returns the request. */
  CHECK_RC(aioc_rpc_call(&it, f.c, "nothing", NULL, 0, NULL), 0);
  CHECK_RC(aioc_iter_next(it, &item, 5), -ENOENT);
  aioc_iter_free(it);

  /* Unary. */
  sp = (stream_spec){.n = 3, .fail_at = -1};
  aioc_rpc_chunk *reply;
  CHECK_RC(aioc_rpc_call_unary(f.c, "stream", "u", 1, &reply, 5), 0);
  CHECK_STR(reply->data, "u-0");
  aioc_rpc_chunk_free(reply);

  /* Expiry: b waits behind a (prefetch 1) and is never handled. */
  sp = (stream_spec){.n = 2, .pause = 1, .fail_at = -1};
  CHECK_RC(aioc_sleep(0.2), 0);
  CHECK_RC(aioc_rpc_call(&it, f.c, "stream", "a", 1, NULL), 0);
  aioc_rpc_call_options eo = {.expiry = 0.5};
  CHECK_RC(aioc_rpc_call(&b, f.c, "stream", "b", 1, &eo), 0);
  CHECK_RC(aioc_iter_next(b, &item, 10), -ETIMEDOUT);
  CHECK_STR(aioc_error_message(),
            "the request expired before a worker took it");
  CHECK_RC(aioc_iter_next(it, &item, 5), 0);
  check_chunk(item, "a-0", 0);
  CHECK_RC(aioc_iter_next(it, &item, 5), 0);
  check_chunk(item, "a-1", 1);
  CHECK_RC(aioc_iter_next(it, &item, 5), AIOC_EXHAUSTED);
  aioc_iter_free(it);
  aioc_iter_free(b);
  CHECK_RC(aioc_sleep(0.5), 0);
  CHECK_EQ(sp.ran, 1); /* b expired in the queue */
  fixture_down(&f);
  return 0;
}

TEST(test_rpc_amqp_errors_expiry) {
  if (!broker("errors over AMQP")) return;
  CHECK_RC(run_main_real(errors_main, NULL, NULL), 0);
}

/* ---- a request the broker refuses (publisher confirms) ---- */

/* A method queue that refuses every message (x-max-length 0,
 * reject-publish) and has no consumer: with confirms (the default) the
 * broker's basic.nack ends the call with -EIO; a client without them
 * does not see it, and the call ends by its first-item limit. Either way
 * a request with no queue at all comes back (-ENOENT), and calls that a
 * worker serves work alike. */
static int refused_main(void *arg, void **res) {
  (void)res;
  bool unconfirmed = arg != NULL;
  stream_spec sp = {.n = 2, .fail_at = -1};
  fixture f;
  if (fixture_up(&f, &sp, 0)) return 0;
  char queue[128];
  snprintf(queue, sizeof queue, "%sfull", g_prefix);
  amqp_connection_state_t conn = raw_connect();
  CHECK(conn != NULL);
  if (conn) {
    amqp_table_entry_t qa[2] = {
        {.key = amqp_cstring_bytes("x-max-length"),
         .value = {.kind = AMQP_FIELD_KIND_I64, .value.i64 = 0}},
        {.key = amqp_cstring_bytes("x-overflow"),
         .value = {.kind = AMQP_FIELD_KIND_UTF8,
                   .value.bytes = amqp_cstring_bytes("reject-publish")}}};
    CHECK(amqp_queue_declare(conn, 1, amqp_cstring_bytes(queue), 0, 0, 0, 1,
                             (amqp_table_t){2, qa}) != NULL);
  }
  aioc_rpc_transport *ct = f.ct;
  aioc_rpc_client *c = f.c;
  if (unconfirmed) {
    aioc_rpc_amqp_options o = amqp_opts();
    o.unconfirmed_requests = 1;
    CHECK_RC(aioc_rpc_amqp_new(&ct, g_url, &o), 0);
    CHECK_RC(aioc_rpc_client_new(&c, ct, NULL), 0);
  }
  aioc_iter *it;
  void *item;
  aioc_rpc_call_options co = {.limits = {.first = 1}};
  CHECK_RC(aioc_rpc_call(&it, c, "full", "r", 1, &co), 0);
  if (unconfirmed) {
    CHECK_RC(aioc_iter_next(it, &item, 5), -ETIMEDOUT);
  } else {
    CHECK_RC(aioc_iter_next(it, &item, 5), -EIO);
    CHECK_STR(aioc_error_message(), "the broker refused the request (nack)");
  }
  aioc_iter_free(it);
  CHECK_RC(aioc_rpc_call(&it, c, "nothing", NULL, 0, NULL), 0);
  CHECK_RC(aioc_iter_next(it, &item, 5), -ENOENT);
  aioc_iter_free(it);
  CHECK_RC(aioc_rpc_call(&it, c, "stream", "ok", 2, NULL), 0);
  CHECK_RC(aioc_iter_next(it, &item, 5), 0);
  check_chunk(item, "ok-0", 0);
  CHECK_RC(aioc_iter_next(it, &item, 5), 0);
  check_chunk(item, "ok-1", 1);
  CHECK_RC(aioc_iter_next(it, &item, 5), AIOC_EXHAUSTED);
  aioc_iter_free(it);
  if (unconfirmed) {
    aioc_rpc_client_free(c);
    aioc_rpc_transport_free(ct);
  }
  if (conn) raw_close(conn);
  fixture_down(&f);
  return 0;
}

TEST(test_rpc_amqp_refused_request) {
  if (!broker("a refused request over AMQP")) return;
  CHECK_RC(run_main_real(refused_main, NULL, NULL), 0);
}

TEST(test_rpc_amqp_unconfirmed_requests) {
  if (!broker("requests without confirms over AMQP")) return;
  CHECK_RC(run_main_real(refused_main, AIOC_INT(1), NULL), 0);
}

/* ---- a malformed request is dead-lettered; the worker goes on ---- */

static int malformed_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  stream_spec sp = {.n = 2, .fail_at = -1};
  fixture f;
  if (fixture_up(&f, &sp, 0)) return 0;
  char queue[128], dlq[128];
  snprintf(queue, sizeof queue, "%sstream", g_prefix);
  snprintf(dlq, sizeof dlq, "%sdead-letter", g_prefix);
  /* No reply_to, no correlation id. */
  amqp_connection_state_t conn = raw_connect();
  CHECK(conn != NULL);
  if (conn) {
    amqp_basic_properties_t p = {._flags = 0};
    CHECK_EQ(amqp_basic_publish(conn, 1, amqp_empty_bytes,
                                amqp_cstring_bytes(queue), 0, 0, &p,
                                amqp_cstring_bytes("garbage")),
             0);
    raw_close(conn);
  }
  aioc_rpc_amqp_counters k = {0};
  for (int i = 0; i < 100 && !k.requests_rejected; i++) {
    CHECK_RC(aioc_sleep(0.05), 0);
    CHECK_RC(aioc_rpc_amqp_stats(f.wt, &k), 0);
  }
  CHECK_EQ((int)k.requests_rejected, 1);
  CHECK_EQ(raw_count(dlq), 1);
  CHECK_EQ(sp.ran, 0);
  /* The worker keeps serving. */
  aioc_iter *it;
  void *item;
  CHECK_RC(aioc_rpc_call(&it, f.c, "stream", "ok", 2, NULL), 0);
  CHECK_RC(aioc_iter_next(it, &item, 5), 0);
  check_chunk(item, "ok-0", 0);
  CHECK_RC(aioc_iter_next(it, &item, 5), 0);
  check_chunk(item, "ok-1", 1);
  CHECK_RC(aioc_iter_next(it, &item, 5), AIOC_EXHAUSTED);
  aioc_iter_free(it);
  fixture_down(&f);
  return 0;
}

TEST(test_rpc_amqp_malformed_dead_lettered) {
  if (!broker("dead-lettering")) return;
  CHECK_RC(run_main_real(malformed_main, NULL, NULL), 0);
}

/* ---- a reply for an unknown correlation id: a raw worker ---- */

/* A worker written with rabbitmq-c's blocking API from the wire format:
 * takes one request of method "raw", answers a stranger's correlation id
 * first, then the request's chunk 0 and its end. */
static int raw_worker(void *arg) {
  (void)arg;
  amqp_connection_state_t conn = raw_connect();
  if (!conn) return 10;
  char queue[128], dl[128];
  snprintf(queue, sizeof queue, "%sraw", g_prefix);
  snprintf(dl, sizeof dl, "%sdead-letter", g_prefix);
  amqp_table_entry_t args[2] = {
      {.key = amqp_cstring_bytes("x-dead-letter-exchange"),
       .value = {.kind = AMQP_FIELD_KIND_UTF8,
                 .value.bytes = amqp_cstring_bytes("")}},
      {.key = amqp_cstring_bytes("x-dead-letter-routing-key"),
       .value = {.kind = AMQP_FIELD_KIND_UTF8,
                 .value.bytes = amqp_cstring_bytes(dl)}}};
  if (!amqp_queue_declare(conn, 1, amqp_cstring_bytes(queue), 0, 1, 0, 0,
                          (amqp_table_t){2, args}))
    return 11;
  if (!amqp_basic_consume(conn, 1, amqp_cstring_bytes(queue), amqp_empty_bytes,
                          0, 0, 0, amqp_empty_table))
    return 12;
  /* Tell the parent the queue is there: a file. */
  char ready[160];
  snprintf(ready, sizeof ready, "/tmp/%sready", g_prefix);
  FILE *rf = fopen(ready, "w");
  if (rf) fclose(rf);
  amqp_envelope_t env;
  struct timeval tv = {20, 0};
  amqp_maybe_release_buffers(conn);
  if (amqp_consume_message(conn, &env, &tv, 0).reply_type !=
      AMQP_RESPONSE_NORMAL)
    return 13;
  amqp_basic_properties_t *rp = &env.message.properties;
  if (!(rp->_flags & AMQP_BASIC_REPLY_TO_FLAG) ||
      !(rp->_flags & AMQP_BASIC_CORRELATION_ID_FLAG))
    return 14;
  for (int i = 0; i < 3; i++) {
    const char *kind = i == 2 ? "end" : "data";
    amqp_table_entry_t h[2] = {
        {.key = amqp_cstring_bytes("x-kind"),
         .value = {.kind = AMQP_FIELD_KIND_UTF8,
                   .value.bytes = amqp_cstring_bytes(kind)}},
        {.key = amqp_cstring_bytes("x-seq"),
         .value = {.kind = AMQP_FIELD_KIND_I32, .value.i32 = i == 2 ? 1 : 0}}};
    amqp_basic_properties_t p = {
        ._flags = AMQP_BASIC_CORRELATION_ID_FLAG | AMQP_BASIC_HEADERS_FLAG,
        .correlation_id =
            i == 0 ? amqp_cstring_bytes("stranger.1") : rp->correlation_id,
        .headers = {2, h}};
    if (amqp_basic_publish(conn, 1, amqp_empty_bytes, rp->reply_to, 0, 0, &p,
                           amqp_cstring_bytes("raw-0")) != 0)
      return 15;
  }
  amqp_basic_ack(conn, 1, env.delivery_tag, 0);
  amqp_destroy_envelope(&env);
  raw_close(conn);
  return 0;
}

static int unknown_corr_main(void *arg, void **res) {
  (void)res;
  pid_t child = *(pid_t *)arg;
  aioc_rpc_amqp_options o = amqp_opts();
  aioc_rpc_transport *ct;
  CHECK_RC(aioc_rpc_amqp_new(&ct, g_url, &o), 0);
  aioc_rpc_client *c;
  CHECK_RC(aioc_rpc_client_new(&c, ct, NULL), 0);
  char ready[160];
  snprintf(ready, sizeof ready, "/tmp/%sready", g_prefix);
  for (int i = 0; i < 200 && access(ready, F_OK) != 0; i++)
    CHECK_RC(aioc_sleep(0.05), 0);
  unlink(ready);
  aioc_iter *it;
  void *item;
  CHECK_RC(aioc_rpc_call(&it, c, "raw", "r", 1, NULL), 0);
  CHECK_RC(aioc_iter_next(it, &item, 10), 0);
  check_chunk(item, "raw-0", 0);
  CHECK_RC(aioc_iter_next(it, &item, 10), AIOC_EXHAUSTED);
  aioc_iter_free(it);
  aioc_rpc_amqp_counters k;
  CHECK_RC(aioc_rpc_amqp_stats(ct, &k), 0);
  CHECK_EQ((int)k.replies_dropped, 1);
  int status = 0;
  for (int i = 0; i < 200 && waitpid(child, &status, WNOHANG) == 0; i++)
    CHECK_RC(aioc_sleep(0.05), 0);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  aioc_rpc_client_free(c);
  aioc_rpc_transport_free(ct);
  return 0;
}

TEST(test_rpc_amqp_unknown_correlation_id) {
  if (!broker("unknown correlation ids")) return;
  fflush(stdout);
  pid_t child = fork();
  if (child == 0) _exit(raw_worker(NULL));
  CHECK(child > 0);
  CHECK_RC(run_main_real(unknown_corr_main, &child, NULL), 0);
}

/* ---- a worker killed mid-stream ---- */

static int worker_proc_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  stream_spec sp = {.n = 6, .pause = 0.3, .fail_at = -1, .with_pid = 1};
  aioc_rpc_amqp_options o = amqp_opts();
  aioc_rpc_transport *wt;
  if (aioc_rpc_amqp_new(&wt, g_url, &o) < 0) return -EIO;
  aioc_rpc_server *s;
  aioc_rpc_server_options so = {.prefetch = 1};
  if (aioc_rpc_server_new(&s, wt, &so) < 0 ||
      aioc_rpc_server_register(s, "stream", stream_handler, &sp) < 0 ||
      aioc_rpc_server_start(s) < 0)
    return -EIO;
  /* Serves until killed, or 30 s. */
  int rc = aioc_sleep(30);
  (void)rc;
  aioc_rpc_server_free(s);
  aioc_rpc_transport_free(wt);
  return 0;
}

static pid_t spawn_worker(void) {
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    aioc_loop *loop = test_loop(0);
    int rc = aioc_run(worker_proc_main, NULL, NULL);
    (void)loop;
    _exit(rc < 0 ? 1 : 0);
  }
  return pid;
}

static int worker_killed_main(void *arg, void **res) {
  (void)res;
  pid_t *w = arg;
  aioc_rpc_amqp_options o = amqp_opts();
  aioc_rpc_transport *ct;
  CHECK_RC(aioc_rpc_amqp_new(&ct, g_url, &o), 0);
  aioc_rpc_client *c;
  CHECK_RC(aioc_rpc_client_new(&c, ct, NULL), 0);
  /* Both workers up: calls succeed. */
  aioc_rpc_chunk *r = NULL;
  for (int i = 0; i < 100; i++) {
    int urc = aioc_rpc_call_unary(c, "stream", NULL, 0, &r, 5);
    aioc_rpc_chunk_free(r);
    if (urc == 0) break;
    CHECK_RC(aioc_sleep(0.1), 0);
  }
  CHECK_RC(aioc_sleep(1), 0); /* the second worker is up too */
  aioc_iter *it;
  void *item;
  CHECK_RC(aioc_rpc_call(&it, c, "stream", NULL, 0, NULL), 0);
  int first = 0, seen[6] = {0}, got = 0;
  for (;;) {
    int rc = aioc_iter_next(it, &item, 10);
    if (rc) {
      CHECK_RC(rc, AIOC_EXHAUSTED);
      break;
    }
    aioc_rpc_chunk *ch = item;
    int pid = 0, i = -1;
    CHECK_EQ(sscanf(ch->data, "%d:%d", &pid, &i), 2);
    CHECK_EQ(i, (int)ch->seq);
    CHECK_EQ(i, got); /* in order, nothing twice, nothing missing */
    if (i >= 0 && i < 6) seen[i]++;
    got++;
    if (i == 1) {
      first = pid;
      CHECK(pid == w[0] || pid == w[1]);
      if (pid == w[0] || pid == w[1]) kill(pid, SIGKILL); /* mid-stream */
    } else if (i > 1) {
      CHECK(pid != first); /* the other worker took it over */
    }
    aioc_rpc_chunk_free(ch);
  }
  aioc_iter_free(it);
  CHECK_EQ(got, 6);
  for (int i = 0; i < 6; i++)
    CHECK_EQ(seen[i], 1);
  CHECK(first == w[0] || first == w[1]);
  aioc_rpc_client_free(c);
  aioc_rpc_transport_free(ct);
  return 0;
}

TEST(test_rpc_amqp_worker_killed) {
  if (!broker("worker failover")) return;
  pid_t w[2] = {spawn_worker(), spawn_worker()};
  CHECK(w[0] > 0 && w[1] > 0);
  CHECK_RC(run_main_real(worker_killed_main, w, NULL), 0);
  for (int i = 0; i < 2; i++) {
    kill(w[i], SIGKILL);
    waitpid(w[i], NULL, 0);
  }
}

/* ---- the broker blocks publishers ---- */

typedef struct ticker {
  double max_late;
  int ticks;
  bool stop;
} ticker;

static int ticker_main(void *arg, void **res) {
  (void)res;
  ticker *tk = arg;
  while (!tk->stop) {
    double t0 = aioc_time();
    if (aioc_sleep(0.02) < 0) break;
    double late = aioc_time() - t0 - 0.02;
    if (late > tk->max_late) tk->max_late = late;
    tk->ticks++;
  }
  return 0;
}

static int blocked_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  stream_spec sp = {.n = 200, .fail_at = -1};
  fixture f;
  if (fixture_up(&f, &sp, 0)) return 0;
  ticker tk = {0};
  aioc_task *tt;
  CHECK_RC(aioc_spawn(&tt, ticker_main, &tk), 0);
  CHECK_EQ(rmq("ctl", "set_vm_memory_high_watermark absolute 1"), 0);
  /* Publish until the broker says it blocks us (its alarm takes a
   * moment): requests of 64 KiB. */
  static char big[65536];
  aioc_iter *its[64];
  int nits = 0, eagain = 0;
  aioc_rpc_amqp_counters k = {0};
  for (int i = 0; i < 400 && !k.is_blocked; i++) {
    aioc_iter *it;
    int rc = aioc_rpc_call(&it, f.c, "stream", big, sizeof big, NULL);
    if (rc == 0 && nits < 64)
      its[nits++] = it;
    else if (rc == 0)
      aioc_iter_free(it);
    else if (rc == -EAGAIN)
      eagain++;
    CHECK_RC(aioc_sleep(0.01), 0);
    CHECK_RC(aioc_rpc_amqp_stats(f.ct, &k), 0);
  }
  CHECK(k.is_blocked);
  CHECK(k.blocked >= 1);
  /* While blocked: calls fail fast, and the loop runs on time (the
   * broker script above blocked it: the count starts now). */
  aioc_iter *it;
  CHECK_RC(aioc_rpc_call(&it, f.c, "stream", "x", 1, NULL), -EAGAIN);
  tk.max_late = 0;
  tk.ticks = 0;
  CHECK_RC(aioc_sleep(2), 0);
  double max_late = tk.max_late;
  int ticks = tk.ticks;
  CHECK_RC(aioc_rpc_amqp_stats(f.ct, &k), 0);
  CHECK(k.is_blocked);
  CHECK_EQ(rmq("ctl", "set_vm_memory_high_watermark 0.4"), 0);
  for (int i = 0; i < 200 && k.is_blocked; i++) {
    CHECK_RC(aioc_sleep(0.05), 0);
    CHECK_RC(aioc_rpc_amqp_stats(f.ct, &k), 0);
  }
  CHECK(!k.is_blocked);
  tk.stop = true;
  CHECK_RC(aioc_task_await(tt, NULL), 0);
  aioc_task_unref(tt);
  /* A blocked loop would have been late by the whole 2 s. */
  printf("blocked for 2 s: %d ticks of 20 ms, the latest %.1f ms late\n", ticks,
         max_late * 1e3);
  CHECK(max_late < 0.5);
  CHECK(ticks > 20);
  for (int i = 0; i < nits; i++)
    aioc_iter_free(its[i]);
  /* Unblocked: calls go through again. */
  sp = (stream_spec){.n = 1, .fail_at = -1};
  aioc_rpc_chunk *r = NULL;
  int rc = -1;
  for (int i = 0; i < 50 && rc != 0; i++) {
    rc = aioc_rpc_call_unary(f.c, "stream", "u", 1, &r, 5);
    if (rc) CHECK_RC(aioc_sleep(0.1), 0);
  }
  CHECK_RC(rc, 0);
  aioc_rpc_chunk_free(r);
  fixture_down(&f);
  return 0;
}

TEST(test_rpc_amqp_blocked_publishers) {
  if (!broker("connection.blocked")) return;
  CHECK_RC(run_main_real(blocked_main, NULL, NULL), 0);
  IGNORE_RC(rmq("ctl", "set_vm_memory_high_watermark 0.4"));
}

/* ---- the broker hung, then killed and restarted ---- */

static int broker_fault_main(void *arg, void **res) {
  (void)res;
  int kill_it = AIOC_TO_INT(arg);
  stream_spec sp = {.n = 50, .pause = 0.2, .fail_at = -1};
  fixture f;
  if (fixture_up(&f, &sp, 0)) return 0;
  aioc_iter *it;
  void *item;
  CHECK_RC(aioc_rpc_call(&it, f.c, "stream", "k", 1, NULL), 0);
  CHECK_RC(aioc_iter_next(it, &item, 5), 0);
  check_chunk(item, "k-0", 0);
  pid_t pid = broker_pid();
  CHECK(pid > 0);
  double t0 = aioc_time();
  if (pid > 0) kill(pid, kill_it ? SIGKILL : SIGSTOP);
  /* The call ends with a clear error: at once when the broker dies (the
   * connection resets), within two heartbeats (1 s) when it hangs. The
   * chunk timeout (0.5 s) fires meanwhile without ending the call. */
  int rc;
  while ((rc = aioc_iter_next(it, &item, 0.5)) == 0 || rc == -ETIMEDOUT) {
    aioc_rpc_chunk_free(item);
    if (aioc_time() - t0 > 20) break;
  }
  CHECK_RC(rc, -ECONNRESET);
  CHECK(aioc_error_message() != NULL);
  printf("broker %s: error after %.2f s: %s\n", kill_it ? "killed" : "hung",
         aioc_time() - t0, aioc_error_message());
  aioc_iter_free(it);
  CHECK(aioc_time() - t0 < 10);
  aioc_rpc_amqp_counters k;
  CHECK_RC(aioc_rpc_amqp_stats(f.ct, &k), 0);
  CHECK(!k.connected);
  aioc_rpc_chunk *r = NULL;
  CHECK_RC(aioc_rpc_call_unary(f.c, "stream", "u", 1, &r, 1), -ENOTCONN);
  if (kill_it) {
    CHECK_EQ(rmq("restart", ""), 0);
  } else if (pid > 0) {
    /* The worker's transport notices the hang too, by its own heartbeat
     * bound: it has not always by the time the client does (the broker's
     * last frame to each came at another moment), and once the broker
     * runs again there is nothing left to notice. */
    for (int i = 0; i < 100; i++) {
      CHECK_RC(aioc_rpc_amqp_stats(f.wt, &k), 0);
      if (!k.connected) break;
      CHECK_RC(aioc_sleep(0.05), 0);
    }
    CHECK(!k.connected);
    printf("worker's transport: connection lost after %.2f s\n",
           aioc_time() - t0);
    kill(pid, SIGCONT);
  }
  /* Both transports connect again, the worker declares and consumes
   * again, calls go through. */
  sp = (stream_spec){.n = 2, .fail_at = -1};
  rc = -1;
  for (int i = 0; i < 300 && rc != 0; i++) {
    rc = aioc_rpc_call_unary(f.c, "stream", "again", 5, &r, 5);
    if (rc) CHECK_RC(aioc_sleep(0.1), 0);
  }
  CHECK_RC(rc, 0);
  if (r) CHECK_STR(r->data, "again-0");
  aioc_rpc_chunk_free(r);
  CHECK_RC(aioc_rpc_amqp_stats(f.wt, &k), 0);
  CHECK(k.connections >= 2);
  fixture_down(&f);
  return 0;
}

TEST(test_rpc_amqp_broker_hung) {
  if (!broker("heartbeats")) return;
  CHECK_RC(run_main_real(broker_fault_main, AIOC_INT(0), NULL), 0);
}

TEST(test_rpc_amqp_broker_killed_restarted) {
  if (!broker("reconnection")) return;
  CHECK_RC(run_main_real(broker_fault_main, AIOC_INT(1), NULL), 0);
}

#endif /* AIOC_HAVE_RABBITMQ */

CHECK_MAIN(120)
