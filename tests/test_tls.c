/* TLS streams over loopback, against certificates made at run time with
 * the openssl command (scripts/tls-certs.sh: a throwaway CA, a good
 * certificate for localhost and 127.0.0.1, an expired one, a self-signed
 * one, one for another host): echo with lines, readexactly and the lines
 * iterator; the negotiated version, ALPN, SNI and the peer's subject;
 * large transfers both ways with flow control, a reader and a writer task
 * on one stream, a peer that reads late; STARTTLS, also with the
 * ClientHello already buffered; rejected certificates with the reason;
 * plaintext peers both ways; a peer that stops mid-handshake on either
 * side; a close the peer never answers and one that cannot get out; TLS
 * 1.3 key updates mid-stream from either side and session tickets during
 * reads; half-close; cancellation during the handshake and during a read;
 * bad input. */
#include <openssl/ssl.h>

#include "io_common.h"

/* ---- certificates ---------------------------------------------------- */

static char g_certs[256]; /* the directory, made once for every case */

/* AIOC_TLS_CERTS names a directory the test fixture filled; without it
 * (the program run by hand) the certificates are made here. */
__attribute__((constructor)) static void make_certs(void) {
  const char *env = getenv("AIOC_TLS_CERTS");
  if (env && *env) {
    snprintf(g_certs, sizeof g_certs, "%s", env);
    return;
  }
  snprintf(g_certs, sizeof g_certs, "/tmp/aioc-tls-test-XXXXXX");
  if (!mkdtemp(g_certs)) {
    perror("mkdtemp");
    exit(2);
  }
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "%s %s >%s/log 2>&1", AIOC_TLS_CERTS_SCRIPT,
           g_certs, g_certs);
  if (system(cmd) != 0) {
    fprintf(stderr, "%s failed (see %s/log)\n", AIOC_TLS_CERTS_SCRIPT,
            g_certs);
    exit(2);
  }
}

static pid_t g_maker;
__attribute__((constructor)) static void note_maker(void) { g_maker = getpid(); }
__attribute__((destructor)) static void remove_certs(void) {
  if (getpid() != g_maker || getenv("AIOC_TLS_CERTS")) return;
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf %s", g_certs);
  IGNORE_RC(system(cmd));
}

static const char *cert(const char *name) {
  static char bufs[8][320];
  static int k;
  char *b = bufs[k++ % 8];
  snprintf(b, sizeof bufs[0], "%s/%s", g_certs, name);
  return b;
}

/* A server's context with certificate NAME.crt and its key. */
static aioc_tls_context *server_ctx(const char *name, const char *const *alpn) {
  char c[64], k[64];
  snprintf(c, sizeof c, "%s.crt", name);
  snprintf(k, sizeof k, "%s.key", name);
  aioc_tls_options o = {.server = 1, .alpn = alpn, .handshake_timeout = 30};
  o.cert_file = cert(c);
  o.key_file = cert(k);
  aioc_tls_context *ctx = NULL;
  CHECK_RC(aioc_tls_context_new(&ctx, &o), 0);
  return ctx;
}

/* A client's context trusting the throwaway CA. */
static aioc_tls_context *client_ctx(const char *const *alpn) {
  aioc_tls_options o = {.ca_file = cert("ca.crt"), .alpn = alpn};
  aioc_tls_context *ctx = NULL;
  CHECK_RC(aioc_tls_context_new(&ctx, &o), 0);
  return ctx;
}

/* ---- servers ------------------------------------------------------------- */

typedef struct srv_state {
  int handled;     /* handlers that ran */
  char sni[64];    /* the last server name seen */
  char alpn[32];   /* the last protocol settled on ("-": none) */
  int key_updates; /* echo: request a key update every this many lines */
} srv_state;

/* Echoes lines until end of file. */
static int echo_handler(void *arg, aioc_stream *s) {
  srv_state *st = arg;
  st->handled++;
  const char *sni = aioc_stream_tls_server_name(s);
  snprintf(st->sni, sizeof st->sni, "%s", sni ? sni : "-");
  const char *alpn = aioc_stream_tls_alpn(s);
  snprintf(st->alpn, sizeof st->alpn, "%s", alpn ? alpn : "-");
  CHECK(aioc_stream_is_tls(s));
  CHECK(aioc_stream_tls_peer_subject(s) == NULL); /* no client certificate */
  char line[4096];
  size_t n;
  for (int i = 1;; i++) {
    int rc = aioc_stream_readline(s, line, sizeof line, &n, 30);
    if (rc < 0) return rc;
    if (!n) break;
    if (st->key_updates && i % st->key_updates == 0)
      CHECK_EQ(SSL_key_update(aioc_stream_tls_ssl(s), SSL_KEY_UPDATE_REQUESTED),
               1);
    if ((rc = aioc_stream_write(s, line, n)) < 0) return rc;
    if ((rc = aioc_stream_drain(s, 30)) < 0) return rc;
  }
  return 0;
}

static aioc_server *tls_server(aioc_tls_context *ctx, aioc_conn_fn fn,
                               void *arg) {
  aioc_server *srv = NULL;
  CHECK_RC(aioc_tls_start_server(&srv, "127.0.0.1", 0, fn, arg, ctx, NULL), 0);
  return srv;
}

static void stop_server(aioc_server *srv) {
  CHECK_RC(aioc_server_close(srv), 0);
  CHECK_RC(aioc_server_wait_closed(srv, 30), 0);
  aioc_server_free(srv);
}

/* Writes a line and reads it back. */
static int round_trip(aioc_stream *s, const char *msg) {
  char back[256];
  size_t n;
  int rc = aioc_stream_write(s, msg, strlen(msg));
  if (rc == 0) rc = aioc_stream_readline(s, back, sizeof back, &n, 30);
  if (rc == 0 && (n != strlen(msg) || memcmp(back, msg, n) != 0))
    rc = -EPROTO;
  CHECK_RC(rc, 0);
  return rc;
}

/* ---- echo, lines, readexactly, what was negotiated ----------------------- */

static int echo_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  srv_state st = {0};
  aioc_tls_context *sctx = server_ctx("good", NULL);
  aioc_tls_context *cctx = client_ctx(NULL);
  aioc_server *srv = tls_server(sctx, echo_handler, &st);
  aioc_tls_context_free(sctx); /* the server keeps it */
  int port = aioc_server_port(srv);

  aioc_stream *s;
  CHECK_RC(aioc_tls_open_connection(&s, "localhost", port, cctx, NULL, 30), 0);
  CHECK(aioc_stream_is_tls(s));
  CHECK_STR(aioc_stream_tls_version(s), "TLSv1.3");
  CHECK_STR(aioc_stream_tls_peer_subject(s), "CN=good");
  CHECK_STR(aioc_stream_tls_server_name(s), "localhost");
  CHECK(aioc_stream_tls_alpn(s) == NULL);
  for (int i = 0; i < 50; i++) {
    char msg[64];
    snprintf(msg, sizeof msg, "line %d over TLS\n", i);
    round_trip(s, msg);
  }
  CHECK_STR(st.sni, "localhost"); /* the server saw the name (SNI) */
  CHECK_STR(st.alpn, "-");

  /* readexactly over several lines, and readuntil. */
  CHECK_RC(aioc_stream_write(s, "abc\ndef\nghi\n", 12), 0);
  char buf[16];
  size_t got;
  CHECK_RC(aioc_stream_readexactly(s, buf, 6, &got, 30), 0);
  CHECK(got == 6 && memcmp(buf, "abc\nde", 6) == 0);
  CHECK_RC(aioc_stream_readuntil(s, "h", 1, buf, sizeof buf, &got, 30), 0);
  CHECK(got == 4 && memcmp(buf, "f\ngh", 4) == 0);
  CHECK_RC(aioc_stream_readexactly(s, buf, 2, &got, 30), 0);
  CHECK(memcmp(buf, "i\n", 2) == 0);

  /* By numeric address: the certificate names 127.0.0.1 too; no SNI. */
  aioc_stream *s2;
  CHECK_RC(aioc_tls_open_connection(&s2, "127.0.0.1", port, cctx, NULL, 30),
           0);
  round_trip(s2, "by address\n");
  CHECK(aioc_stream_tls_server_name(s2) == NULL);
  CHECK_STR(st.sni, "-");

  /* The lines iterator over TLS (it owns s2 then). */
  aioc_iter *it;
  CHECK_RC(aioc_stream_lines_iter(&it, s2), 0);
  CHECK_RC(aioc_stream_write(s2, "one\ntwo\n", 8), 0);
  void *item;
  CHECK_RC(aioc_iter_next(it, &item, 30), 0);
  CHECK(((aioc_bytes *)item)->len == 4);
  CHECK_RC(aioc_iter_next(it, &item, 30), 0);
  CHECK(memcmp(((aioc_bytes *)item)->data, "two\n", 4) == 0);
  aioc_iter_free(it);

  CHECK_RC(aioc_stream_close(s), 0);
  CHECK_RC(aioc_stream_wait_closed(s, 30), 0);
  aioc_stream_free(s);
  aioc_tls_context_free(cctx);
  stop_server(srv);
  CHECK_EQ(st.handled, 2);
  return 0;
}

TEST(test_tls_echo) { io_run(echo_main, NULL); }

/* ---- ALPN ---------------------------------------------------------------- */

static int alpn_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  static const char *const srv_alpn[] = {"h2", "http/1.1", NULL};
  static const char *const both[] = {"http/1.1", "h2", NULL};
  static const char *const other[] = {"foo", NULL};
  static const char *const h11[] = {"http/1.1", NULL};
  srv_state st = {0};
  aioc_tls_context *sctx = server_ctx("good", srv_alpn);
  aioc_server *srv = tls_server(sctx, echo_handler, &st);
  int port = aioc_server_port(srv);
  struct {
    const char *const *offer;
    const char *want;
  } cases[] = {{both, "h2"}, {h11, "http/1.1"}, {other, NULL}, {NULL, NULL}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    aioc_tls_context *cctx = client_ctx(cases[i].offer);
    aioc_stream *s;
    CHECK_RC(aioc_tls_open_connection(&s, "localhost", port, cctx, NULL, 30),
             0);
    const char *got = aioc_stream_tls_alpn(s);
    if (cases[i].want)
      CHECK_STR(got, cases[i].want);
    else
      CHECK(got == NULL);
    round_trip(s, "alpn\n");
    CHECK_STR(st.alpn, cases[i].want ? cases[i].want : "-");
    aioc_stream_free(s);
    aioc_tls_context_free(cctx);
  }
  stop_server(srv);
  aioc_tls_context_free(sctx);
  return 0;
}

TEST(test_tls_alpn) { io_run(alpn_main, NULL); }

/* ---- large transfers, a reader task and a writer task on one stream ----- */

#define BIG ((size_t)6 * 1024 * 1024)

/* The size of a large transfer: BIG, less under an emulator (still many
 * times what the sockets and the TLS layer hold). */
static size_t big(void) {
  static size_t n;
  if (!n) n = getenv("AIOC_TEST_QEMU") ? BIG / 3 : BIG;
  return n;
}

static char pattern(size_t i) { return (char)('a' + (i * 7 + i / 4099) % 26); }

typedef struct big_io {
  aioc_stream *s;
  size_t done;
  int rc;
} big_io;

static int big_writer(void *arg, void **res) {
  (void)res;
  big_io *b = arg;
  char chunk[50000];
  while (b->done < big()) {
    size_t k = big() - b->done < sizeof chunk ? big() - b->done : sizeof chunk;
    for (size_t i = 0; i < k; i++) chunk[i] = pattern(b->done + i);
    int rc = aioc_stream_write(b->s, chunk, k);
    if (rc == 0) rc = aioc_stream_drain(b->s, 60);
    if (rc < 0) return b->rc = rc;
    b->done += k;
  }
  return 0;
}

static int big_reader(void *arg, void **res) {
  (void)res;
  big_io *b = arg;
  char buf[70000];
  while (b->done < big()) {
    size_t n;
    int rc = aioc_stream_read(b->s, buf, sizeof buf, &n, 60);
    if (rc == 0 && n == 0) rc = AIOC_EINCOMPLETE;
    if (rc < 0) return b->rc = rc;
    for (size_t i = 0; i < n; i++)
      if (buf[i] != pattern(b->done + i)) return b->rc = -EPROTO;
    b->done += n;
  }
  return 0;
}

/* Echoes raw chunks until end of file. */
static int chunk_echo(void *arg, aioc_stream *s) {
  (void)arg;
  char buf[32768];
  for (;;) {
    size_t n;
    int rc = aioc_stream_read(s, buf, sizeof buf, &n, 60);
    if (rc < 0) return rc;
    if (!n) return 0;
    if ((rc = aioc_stream_write(s, buf, n)) < 0) return rc;
    if ((rc = aioc_stream_drain(s, 60)) < 0) return rc;
  }
}

static int duplex_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  aioc_tls_context *sctx = server_ctx("good", NULL);
  aioc_tls_context *cctx = client_ctx(NULL);
  aioc_server *srv = tls_server(sctx, chunk_echo, NULL);
  aioc_stream_options so = {.high_water = 65536};
  aioc_stream *s;
  CHECK_RC(aioc_tls_open_connection(&s, "localhost", aioc_server_port(srv),
                                    cctx, &so, 30),
           0);
  /* One task writes 6 MiB while another reads the echo of it: the two
   * drive the one SSL object in turns, each suspended while the other
   * runs, and the echo server's flow control holds the writer back. */
  big_io w = {.s = s}, r = {.s = s};
  aioc_task *tw = spawn_io(big_writer, &w);
  aioc_task *tr = spawn_io(big_reader, &r);
  CHECK_RC(join_io(tw), 0);
  CHECK_RC(join_io(tr), 0);
  CHECK_EQ(w.done, big());
  CHECK_EQ(r.done, big());
  CHECK_RC(aioc_stream_write_eof(s), 0);
  char c;
  size_t n;
  CHECK_RC(aioc_stream_read(s, &c, 1, &n, 30), 0);
  CHECK_EQ(n, 0); /* the server ended after our close_notify */
  CHECK(aioc_stream_is_eof(s));
  aioc_stream_free(s);
  stop_server(srv);
  aioc_tls_context_free(sctx);
  aioc_tls_context_free(cctx);
  return 0;
}

TEST(test_tls_duplex_large) { io_run(duplex_main, NULL); }

/* The server writes 6 MiB at once to a client that starts reading only
 * later: the socket fills, the encrypted records wait, and every byte
 * arrives in order (a write retried with other bytes would corrupt the
 * stream or fail with "bad write retry"). */
static int push_handler(void *arg, aioc_stream *s) {
  (void)arg;
  char *all = malloc(big());
  for (size_t i = 0; i < big(); i++) all[i] = pattern(i);
  int rc = 0;
  for (size_t off = 0; off < big() && rc == 0; off += 300000) {
    size_t k = big() - off < 300000 ? big() - off : 300000;
    rc = aioc_stream_write(s, all + off, k); /* no drain: it all buffers */
  }
  free(all); /* the stream copied what the socket did not take */
  if (rc == 0) rc = aioc_stream_close(s);
  if (rc == 0) rc = aioc_stream_wait_closed(s, 60);
  CHECK_RC(rc, 0);
  return rc;
}

static int late_reader_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  aioc_tls_context *sctx = server_ctx("good", NULL);
  aioc_tls_context *cctx = client_ctx(NULL);
  aioc_server *srv = tls_server(sctx, push_handler, NULL);
  aioc_stream *s;
  CHECK_RC(aioc_tls_open_connection(&s, "localhost", aioc_server_port(srv),
                                    cctx, NULL, 30),
           0);
  CHECK_RC(aioc_sleep(0.3), 0);
  big_io r = {.s = s};
  aioc_task *tr = spawn_io(big_reader, &r);
  CHECK_RC(join_io(tr), 0);
  CHECK_EQ(r.done, big());
  char c;
  size_t n;
  CHECK_RC(aioc_stream_read(s, &c, 1, &n, 30), 0);
  CHECK_EQ(n, 0); /* close_notify: a clean end of file */
  aioc_stream_free(s);
  stop_server(srv);
  aioc_tls_context_free(sctx);
  aioc_tls_context_free(cctx);
  return 0;
}

TEST(test_tls_late_reader) { io_run(late_reader_main, NULL); }

/* ---- STARTTLS ------------------------------------------------------------ */

typedef struct starttls_state {
  aioc_tls_context *ctx;
  int reply; /* answer "OK\n" before the handshake */
  int rc;
} starttls_state;

/* A plain server: reads "STARTTLS\n", upgrades, then echoes lines. */
static int starttls_handler(void *arg, aioc_stream *s) {
  starttls_state *st = arg;
  char line[64];
  size_t n;
  /* Pipelined: the command and the ClientHello are both in the socket
   * by then, and the readline takes them together. */
  if (!st->reply) IGNORE_RC(aioc_sleep(0.2));
  int rc = aioc_stream_readline(s, line, sizeof line, &n, 30);
  if (rc == 0 && (n != 9 || memcmp(line, "STARTTLS\n", 9) != 0))
    rc = -EPROTO;
  if (rc == 0 && st->reply) rc = aioc_stream_write(s, "OK\n", 3);
  CHECK(!aioc_stream_is_tls(s));
  if (rc == 0) rc = aioc_stream_start_tls(s, st->ctx, NULL, 30);
  st->rc = rc;
  if (rc < 0) return rc;
  CHECK(aioc_stream_is_tls(s));
  CHECK_RC(aioc_stream_start_tls(s, st->ctx, NULL, 30), -EALREADY);
  return echo_handler(&(srv_state){0}, s);
}

/* Writes a line as soon as s is TLS, while its handshake is running. */
static int early_writer(void *arg, void **res) {
  (void)res;
  aioc_stream *s = arg;
  while (!aioc_stream_is_tls(s)) {
    int rc = aioc_sleep(0);
    if (rc < 0) return rc;
  }
  CHECK(aioc_stream_tls_version(s) == NULL); /* not done yet */
  return aioc_stream_write(s, "written during the handshake\n", 29);
}

static int starttls_main(void *arg, void **res) {
  (void)res;
  int reply = *(int *)arg;
  starttls_state st = {.ctx = server_ctx("good", NULL), .reply = reply};
  aioc_tls_context *cctx = client_ctx(NULL);
  aioc_server *srv;
  CHECK_RC(aioc_start_server(&srv, "127.0.0.1", 0, starttls_handler, &st,
                             NULL),
           0);
  aioc_stream *s;
  CHECK_RC(aioc_open_connection(&s, "127.0.0.1", aioc_server_port(srv), NULL,
                                30),
           0);
  CHECK_RC(aioc_stream_write(s, "STARTTLS\n", 9), 0);
  if (reply) {
    char line[16];
    size_t n;
    CHECK_RC(aioc_stream_readline(s, line, sizeof line, &n, 30), 0);
    CHECK(n == 3 && memcmp(line, "OK\n", 3) == 0);
  } else {
    /* The ClientHello follows the command at once: the server's readline
     * may have buffered it, and the handshake must take it from there. */
    settle_io();
  }
  aioc_task *w = spawn_io(early_writer, s);
  CHECK_RC(aioc_stream_start_tls(s, cctx, "localhost", 30), 0);
  CHECK_RC(join_io(w), 0);
  CHECK_STR(aioc_stream_tls_peer_subject(s), "CN=good");
  char early[64];
  size_t en;
  CHECK_RC(aioc_stream_readline(s, early, sizeof early, &en, 30), 0);
  CHECK(en == 29 && memcmp(early, "written during the handshake\n", 29) == 0);
  round_trip(s, "after STARTTLS\n");
  aioc_stream_free(s);
  stop_server(srv);
  CHECK_RC(st.rc, 0);
  aioc_tls_context_free(st.ctx);
  aioc_tls_context_free(cctx);
  return 0;
}

TEST(test_tls_starttls) {
  int reply = 1;
  io_run(starttls_main, &reply);
}

TEST(test_tls_starttls_pipelined) {
  int reply = 0;
  io_run(starttls_main, &reply);
}

/* ---- certificates that must be rejected ---------------------------------- */

typedef struct bad_case {
  const char *cert;     /* the server's */
  const char *host;     /* the name the client connects to */
  const char *reason;   /* in the message */
  aioc_tls_options copt; /* the client's options */
} bad_case;

static int bad_cert_main(void *arg, void **res) {
  (void)res;
  bad_case *b = arg;
  srv_state st = {0};
  aioc_tls_context *sctx = server_ctx(b->cert, NULL);
  aioc_server *srv = tls_server(sctx, echo_handler, &st);
  aioc_tls_context *cctx;
  CHECK_RC(aioc_tls_context_new(&cctx, &b->copt), 0);
  aioc_stream *s = (aioc_stream *)1;
  int rc = aioc_tls_open_connection(&s, b->host, aioc_server_port(srv), cctx,
                                    NULL, 30);
  CHECK_RC(rc, AIOC_ETLS);
  CHECK(s == NULL);
  const char *msg = aioc_error_message();
  CHECK(msg && strstr(msg, b->reason));
  if (!msg || !strstr(msg, b->reason))
    fprintf(stderr, "message: %s\n", msg ? msg : "(none)");
  /* The same server with verification off: accepted. */
  aioc_tls_context *insecure;
  CHECK_RC(aioc_tls_context_new(&insecure, &(aioc_tls_options){.insecure = 1}),
           0);
  CHECK_RC(aioc_tls_open_connection(&s, b->host, aioc_server_port(srv),
                                    insecure, NULL, 30),
           0);
  round_trip(s, "insecure\n");
  aioc_stream_free(s);
  stop_server(srv);
  CHECK_EQ(st.handled, 1); /* the rejected one never reached the handler */
  aioc_tls_context_free(insecure);
  aioc_tls_context_free(cctx);
  aioc_tls_context_free(sctx);
  return 0;
}

TEST(test_tls_expired) {
  bad_case b = {"expired", "localhost", "certificate has expired",
                {.ca_file = cert("ca.crt")}};
  io_run(bad_cert_main, &b);
}

TEST(test_tls_self_signed) {
  bad_case b = {"selfsigned", "127.0.0.1", "self-signed certificate",
                {.ca_file = cert("ca.crt")}};
  io_run(bad_cert_main, &b);
}

TEST(test_tls_wrong_host) {
  bad_case b = {"wronghost", "localhost", "hostname mismatch",
                {.ca_file = cert("ca.crt")}};
  io_run(bad_cert_main, &b);
}

TEST(test_tls_wrong_ip) {
  bad_case b = {"wronghost", "127.0.0.1", "IP address mismatch",
                {.ca_file = cert("ca.crt")}};
  io_run(bad_cert_main, &b);
}

/* The system's store by default: it does not know the throwaway CA. */
TEST(test_tls_unknown_ca) {
  bad_case b = {"good", "localhost", "unable to get local issuer certificate",
                {0}};
  io_run(bad_cert_main, &b);
}

/* ---- plaintext peers ----------------------------------------------------- */

static int plain_peer_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  srv_state st = {0};
  aioc_tls_context *sctx = server_ctx("good", NULL);
  aioc_server *srv = tls_server(sctx, echo_handler, &st);
  /* A plaintext client on the TLS port: the handshake fails, the
   * connection is closed, the handler never runs. */
  aioc_stream *p;
  CHECK_RC(aioc_open_connection(&p, "127.0.0.1", aioc_server_port(srv), NULL,
                                30),
           0);
  const char req[] = "GET / HTTP/1.0\r\n\r\n";
  CHECK_RC(aioc_stream_write(p, req, sizeof req - 1), 0);
  char buf[512];
  size_t n = 1;
  int rc = 0;
  while (rc == 0 && n) rc = aioc_stream_read(p, buf, sizeof buf, &n, 30);
  CHECK(rc == 0 || rc == -ECONNRESET); /* an alert, then the close */
  aioc_stream_free(p);
  stop_server(srv);
  CHECK_EQ(st.handled, 0);
  aioc_tls_context_free(sctx);
  return 0;
}

TEST(test_tls_plaintext_client) { io_run(plain_peer_main, NULL); }

/* A plaintext server: it answers the ClientHello with an HTTP error. */
static int http_400(void *arg, aioc_stream *s) {
  (void)arg;
  char buf[512];
  size_t n;
  IGNORE_RC(aioc_stream_read(s, buf, sizeof buf, &n, 30));
  const char resp[] = "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n";
  IGNORE_RC(aioc_stream_write(s, resp, sizeof resp - 1));
  return 0;
}

static int plain_server_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  aioc_server *srv;
  CHECK_RC(aioc_start_server(&srv, "127.0.0.1", 0, http_400, NULL, NULL), 0);
  aioc_tls_context *cctx = client_ctx(NULL);
  aioc_stream *s;
  CHECK_RC(aioc_tls_open_connection(&s, "localhost", aioc_server_port(srv),
                                    cctx, NULL, 30),
           AIOC_ETLS);
  const char *msg = aioc_error_message();
  CHECK(msg && strstr(msg, "wrong version number"));
  stop_server(srv);
  aioc_tls_context_free(cctx);
  return 0;
}

TEST(test_tls_plaintext_server) { io_run(plain_server_main, NULL); }

/* ---- peers that stop mid-handshake -------------------------------------- */

/* Accepts and reads, never answers, until cancelled. */
static int silent_handler(void *arg, aioc_stream *s) {
  int *seen = arg;
  char buf[4096];
  size_t n;
  int rc;
  while ((rc = aioc_stream_read(s, buf, sizeof buf, &n, AIOC_FOREVER)) == 0 &&
         n)
    *seen += (int)n;
  return rc == -ECANCELED ? 0 : rc;
}

static int stalled_server_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  int seen = 0;
  aioc_server *srv;
  CHECK_RC(aioc_start_server(&srv, "127.0.0.1", 0, silent_handler, &seen,
                             NULL),
           0);
  aioc_tls_context *cctx = client_ctx(NULL);
  aioc_stream *s = (aioc_stream *)1;
  CHECK_RC(aioc_tls_open_connection(&s, "localhost", aioc_server_port(srv),
                                    cctx, NULL, 0.3),
           -ETIMEDOUT);
  CHECK(s == NULL);
  CHECK(seen > 0); /* the ClientHello went out */
  aioc_server_cancel_connections(srv);
  stop_server(srv);
  aioc_tls_context_free(cctx);
  return 0;
}

TEST(test_tls_server_stalls_handshake) { io_run(stalled_server_main, NULL); }

static int stalled_client_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  srv_state st = {0};
  aioc_tls_options o = {.server = 1, .handshake_timeout = 0.3};
  o.cert_file = cert("good.crt");
  o.key_file = cert("good.key");
  aioc_tls_context *sctx;
  CHECK_RC(aioc_tls_context_new(&sctx, &o), 0);
  aioc_server *srv = tls_server(sctx, echo_handler, &st);
  /* Connects and sends nothing: the server drops it after its handshake
   * timeout (we read its end of file). */
  aioc_stream *p;
  CHECK_RC(aioc_open_connection(&p, "127.0.0.1", aioc_server_port(srv), NULL,
                                30),
           0);
  char buf[64];
  size_t n;
  CHECK_RC(aioc_stream_read(p, buf, sizeof buf, &n, 30), 0);
  CHECK_EQ(n, 0);
  aioc_stream_free(p);
  stop_server(srv);
  CHECK_EQ(st.handled, 0);
  aioc_tls_context_free(sctx);
  return 0;
}

TEST(test_tls_client_stalls_handshake) { io_run(stalled_client_main, NULL); }

/* ---- closing --------------------------------------------------------------- */

/* Completes the handshake, then neither reads nor writes until
 * cancelled: it never answers a close_notify. */
static int mute_handler(void *arg, aioc_stream *s) {
  (void)arg;
  (void)s;
  int rc = aioc_sleep(AIOC_FOREVER);
  return rc == -ECANCELED ? 0 : rc;
}

static int close_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  aioc_tls_context *sctx = server_ctx("good", NULL);
  aioc_tls_context *cctx = client_ctx(NULL);
  aioc_server *srv = tls_server(sctx, mute_handler, NULL);
  int port = aioc_server_port(srv);

  /* Our close_notify goes out and the socket closes without waiting for
   * the peer's. */
  aioc_stream *s;
  CHECK_RC(aioc_tls_open_connection(&s, "localhost", port, cctx, NULL, 30), 0);
  CHECK_RC(aioc_stream_write(s, "unread\n", 7), 0);
  CHECK_RC(aioc_stream_close(s), 0);
  CHECK_RC(aioc_stream_wait_closed(s, 30), 0);
  aioc_stream_free(s);

  /* A peer that never reads: what we wrote cannot get out, and the close
   * is bounded by wait_closed's timeout; free drops the rest. */
  CHECK_RC(aioc_tls_open_connection(&s, "localhost", port, cctx, NULL, 30), 0);
  char *junk = calloc(1, BIG);
  CHECK_RC(aioc_stream_write(s, junk, BIG), 0);
  free(junk);
  CHECK(aioc_stream_write_buffer_size(s) > 0);
  CHECK_RC(aioc_stream_close(s), 0);
  CHECK_RC(aioc_stream_wait_closed(s, 0.3), -ETIMEDOUT);
  aioc_stream_free(s);

  aioc_server_cancel_connections(srv);
  stop_server(srv);
  aioc_tls_context_free(sctx);
  aioc_tls_context_free(cctx);
  return 0;
}

TEST(test_tls_close_unanswered) { io_run(close_main, NULL); }

/* Half-close: our close_notify ends the server's reading; it answers after
 * that, and we read its answer. */
static int count_handler(void *arg, aioc_stream *s) {
  (void)arg;
  char buf[4096];
  size_t n, total = 0;
  int rc;
  while ((rc = aioc_stream_read(s, buf, sizeof buf, &n, 30)) == 0 && n)
    total += n;
  if (rc < 0) return rc;
  char out[64];
  int len = snprintf(out, sizeof out, "got %zu\n", total);
  return aioc_stream_write(s, out, (size_t)len);
}

static int half_close_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  aioc_tls_context *sctx = server_ctx("good", NULL);
  aioc_tls_context *cctx = client_ctx(NULL);
  aioc_server *srv = tls_server(sctx, count_handler, NULL);
  aioc_stream *s;
  CHECK_RC(aioc_tls_open_connection(&s, "localhost", aioc_server_port(srv),
                                    cctx, NULL, 30),
           0);
  char data[10000];
  memset(data, 'x', sizeof data);
  for (int i = 0; i < 10; i++)
    CHECK_RC(aioc_stream_write(s, data, sizeof data), 0);
  CHECK_RC(aioc_stream_write_eof(s), 0);
  CHECK_RC(aioc_stream_write(s, "x", 1), -EPIPE);
  char line[64];
  size_t n;
  CHECK_RC(aioc_stream_readline(s, line, sizeof line, &n, 30), 0);
  CHECK(n == 11 && memcmp(line, "got 100000\n", 11) == 0);
  CHECK_RC(aioc_stream_readline(s, line, sizeof line, &n, 30), 0);
  CHECK_EQ(n, 0);
  aioc_stream_free(s);
  stop_server(srv);
  aioc_tls_context_free(sctx);
  aioc_tls_context_free(cctx);
  return 0;
}

TEST(test_tls_half_close) { io_run(half_close_main, NULL); }

/* A peer that ends the TCP connection without a close_notify: the data
 * before it arrives, then the end is -ECONNRESET (a truncation), not an
 * end of file. */
static int ragged_handler(void *arg, aioc_stream *s) {
  (void)arg;
  int rc = aioc_stream_write(s, "last words\n", 11);
  if (rc == 0) rc = aioc_stream_drain(s, 30);
  IGNORE_RC(aioc_sleep(0.1));
  shutdown(aioc_stream_fd(s), SHUT_WR); /* a FIN, no close_notify */
  if (rc == 0) rc = aioc_sleep(AIOC_FOREVER);
  return rc == -ECANCELED ? 0 : rc;
}

static int ragged_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  aioc_tls_context *sctx = server_ctx("good", NULL);
  aioc_tls_context *cctx = client_ctx(NULL);
  aioc_server *srv = tls_server(sctx, ragged_handler, NULL);
  aioc_stream *s;
  CHECK_RC(aioc_tls_open_connection(&s, "localhost", aioc_server_port(srv),
                                    cctx, NULL, 30),
           0);
  char line[64];
  size_t n;
  CHECK_RC(aioc_stream_readline(s, line, sizeof line, &n, 30), 0);
  CHECK_EQ(n, 11);
  CHECK_RC(aioc_stream_readline(s, line, sizeof line, &n, 30), -ECONNRESET);
  CHECK(aioc_error_message() &&
        strstr(aioc_error_message(), "without a close_notify"));
  CHECK(!aioc_stream_is_eof(s));
  CHECK_RC(aioc_stream_read(s, line, sizeof line, &n, 30), -ECONNRESET);
  aioc_stream_free(s);
  aioc_server_cancel_connections(srv);
  stop_server(srv);
  aioc_tls_context_free(sctx);
  aioc_tls_context_free(cctx);
  return 0;
}

TEST(test_tls_truncated) { io_run(ragged_main, NULL); }

/* ---- key updates and session tickets mid-stream -------------------------- */

typedef struct msg_count {
  int key_update_in, key_update_out, ticket_in;
} msg_count;

/* OpenSSL's message callback: counts the handshake messages after the
 * handshake (KeyUpdate 24, NewSessionTicket 4) in each direction. */
static void on_msg(int write_p, int version, int content_type, const void *buf,
                   size_t len, SSL *ssl, void *arg) {
  (void)version;
  (void)ssl;
  msg_count *c = arg;
  if (content_type != SSL3_RT_HANDSHAKE || len < 1) return;
  int type = ((const unsigned char *)buf)[0];
  if (type == SSL3_MT_KEY_UPDATE) {
    if (write_p)
      c->key_update_out++;
    else
      c->key_update_in++;
  } else if (type == SSL3_MT_NEWSESSION_TICKET && !write_p) {
    c->ticket_in++;
  }
}

typedef struct pump {
  aioc_stream *s;
  int lines;
  int rc;
} pump;

static int line_writer(void *arg, void **res) {
  (void)res;
  pump *p = arg;
  char msg[2100];
  for (int i = 0; i < p->lines; i++) {
    int len = snprintf(msg, sizeof msg, "%d ", i);
    memset(msg + len, 'k', 2000);
    msg[len + 2000] = '\n';
    int rc = aioc_stream_write(p->s, msg, (size_t)len + 2001);
    if (rc == 0) rc = aioc_stream_drain(p->s, 60);
    if (rc < 0) return p->rc = rc;
    if (i % 7 == 0) IGNORE_RC(aioc_sleep(0));
  }
  return 0;
}

static int line_reader(void *arg, void **res) {
  (void)res;
  pump *p = arg;
  char line[4096];
  for (int i = 0; i < p->lines; i++) {
    size_t n;
    int rc = aioc_stream_readline(p->s, line, sizeof line, &n, 60);
    if (rc < 0) return p->rc = rc;
    if (n != 2001 + (size_t)snprintf(NULL, 0, "%d ", i) || atoi(line) != i)
      return p->rc = -EPROTO;
  }
  return 0;
}

static int key_update_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  srv_state st = {.key_updates = 25};
  aioc_tls_context *sctx = server_ctx("good", NULL);
  aioc_tls_context *cctx = client_ctx(NULL);
  aioc_server *srv = tls_server(sctx, echo_handler, &st);
  aioc_stream *s;
  CHECK_RC(aioc_tls_open_connection(&s, "localhost", aioc_server_port(srv),
                                    cctx, NULL, 30),
           0);
  msg_count mc = {0};
  SSL *ssl = aioc_stream_tls_ssl(s);
  CHECK(ssl != NULL);
  SSL_set_msg_callback(ssl, on_msg);
  SSL_set_msg_callback_arg(ssl, &mc);
  /* The server requests a key update every 25 lines while we read and
   * write from two tasks: each one arrives during a read, which must
   * answer with a KeyUpdate of ours while the writer goes on. */
  enum { LINES = 400 };
  pump w = {.s = s, .lines = LINES}, r = {.s = s, .lines = LINES};
  aioc_task *tw = spawn_io(line_writer, &w);
  aioc_task *tr = spawn_io(line_reader, &r);
  CHECK_RC(join_io(tw), 0);
  CHECK_RC(join_io(tr), 0);
  CHECK_RC(w.rc, 0);
  CHECK_RC(r.rc, 0);
  CHECK_EQ(mc.key_update_in, LINES / 25);
  /* Each one answered: OpenSSL sends the answer with our next write. */
  round_trip(s, "answer the last one\n");
  CHECK_EQ(mc.key_update_out, LINES / 25);

  /* Our own key update, requesting the server's: it arrives while the
   * server reads, and everything still round-trips. */
  CHECK_EQ(SSL_key_update(ssl, SSL_KEY_UPDATE_REQUESTED), 1);
  round_trip(s, "after our key update\n");
  round_trip(s, "and again\n");
  CHECK_EQ(mc.key_update_out, LINES / 25 + 1);
  CHECK_EQ(mc.key_update_in, LINES / 25 + 1); /* the server's answer */
  aioc_stream_free(s);
  stop_server(srv);
  aioc_tls_context_free(sctx);
  aioc_tls_context_free(cctx);
  return 0;
}

TEST(test_tls_key_update) { io_run(key_update_main, NULL); }

/* TLS 1.3 session tickets come after the handshake: the client's first
 * read takes them in stride. */
static int tickets_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  srv_state st = {0};
  aioc_tls_context *sctx = server_ctx("good", NULL);
  aioc_tls_context *cctx = client_ctx(NULL);
  aioc_server *srv = tls_server(sctx, echo_handler, &st);
  aioc_stream *s;
  CHECK_RC(aioc_tls_open_connection(&s, "localhost", aioc_server_port(srv),
                                    cctx, NULL, 30),
           0);
  msg_count mc = {0};
  SSL_set_msg_callback(aioc_stream_tls_ssl(s), on_msg);
  SSL_set_msg_callback_arg(aioc_stream_tls_ssl(s), &mc);
  round_trip(s, "tickets\n");
  CHECK(mc.ticket_in >= 1);
  aioc_stream_free(s);
  stop_server(srv);
  aioc_tls_context_free(sctx);
  aioc_tls_context_free(cctx);
  return 0;
}

TEST(test_tls_session_tickets) { io_run(tickets_main, NULL); }

/* ---- cancellation -------------------------------------------------------- */

typedef struct conn_try {
  aioc_tls_context *ctx;
  int port;
  aioc_stream *s;
} conn_try;

static int connect_forever(void *arg, void **res) {
  (void)res;
  conn_try *c = arg;
  return aioc_tls_open_connection(&c->s, "localhost", c->port, c->ctx, NULL,
                                  AIOC_FOREVER);
}

static int read_forever(void *arg, void **res) {
  (void)res;
  char buf[64];
  size_t n;
  return aioc_stream_read(arg, buf, sizeof buf, &n, AIOC_FOREVER);
}

static int cancel_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  int seen = 0;
  aioc_server *silent;
  CHECK_RC(aioc_start_server(&silent, "127.0.0.1", 0, silent_handler, &seen,
                             NULL),
           0);
  aioc_tls_context *cctx = client_ctx(NULL);
  /* During the handshake. */
  conn_try c = {cctx, aioc_server_port(silent), (aioc_stream *)1};
  aioc_task *t = spawn_io(connect_forever, &c);
  CHECK_RC(aioc_sleep(0.1), 0);
  aioc_task_cancel(t, NULL);
  CHECK_RC(join_io(t), -ECANCELED);
  CHECK(c.s == NULL);
  aioc_server_cancel_connections(silent);
  stop_server(silent);

  /* During a read: nothing is consumed, and the stream goes on. */
  aioc_tls_context *sctx = server_ctx("good", NULL);
  srv_state st = {0};
  aioc_server *srv = tls_server(sctx, echo_handler, &st);
  aioc_stream *s;
  CHECK_RC(aioc_tls_open_connection(&s, "localhost", aioc_server_port(srv),
                                    cctx, NULL, 30),
           0);
  t = spawn_io(read_forever, s);
  CHECK_RC(aioc_sleep(0.1), 0);
  aioc_task_cancel(t, NULL);
  CHECK_RC(join_io(t), -ECANCELED);
  round_trip(s, "still fine\n");
  aioc_stream_free(s);
  stop_server(srv);
  aioc_tls_context_free(sctx);
  aioc_tls_context_free(cctx);
  return 0;
}

TEST(test_tls_cancel) { io_run(cancel_main, NULL); }

/* ---- bad input ------------------------------------------------------------ */

static int bad_input_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  aioc_tls_context *ctx = (aioc_tls_context *)1;
  CHECK_RC(aioc_tls_context_new(NULL, NULL), -EINVAL);
  CHECK_RC(aioc_tls_context_new(&ctx, &(aioc_tls_options){.server = 1}),
           -EINVAL);
  CHECK(ctx == NULL);
  static const char *const empty[] = {"", NULL};
  CHECK_RC(aioc_tls_context_new(&ctx, &(aioc_tls_options){.alpn = empty}),
           -EINVAL);
  CHECK_RC(aioc_tls_context_new(&ctx, &(aioc_tls_options){.min_version = 9}),
           -EINVAL);
  aioc_tls_options o = {.server = 1, .cert_file = "/nonexistent/x.crt",
                        .key_file = cert("good.key")};
  CHECK_RC(aioc_tls_context_new(&ctx, &o), AIOC_ETLS);
  CHECK(aioc_error_message() && strstr(aioc_error_message(), "x.crt"));
  o.cert_file = cert("good.crt");
  o.key_file = cert("expired.key"); /* not this certificate's key */
  CHECK_RC(aioc_tls_context_new(&ctx, &o), AIOC_ETLS);
  CHECK_RC(aioc_tls_context_new(
               &ctx, &(aioc_tls_options){.ca_file = "/nonexistent/ca.crt"}),
           AIOC_ETLS);
  aioc_tls_context *sctx = server_ctx("good", NULL);
  aioc_tls_context *cctx = client_ctx(NULL);
  srv_state st = {0};
  aioc_server *srv = tls_server(sctx, echo_handler, &st);
  aioc_stream *s;
  CHECK_RC(aioc_tls_open_connection(&s, "localhost", aioc_server_port(srv),
                                    sctx, NULL, 30),
           -EINVAL); /* a server's context */
  CHECK_RC(aioc_tls_open_connection(&s, "localhost", aioc_server_port(srv),
                                    cctx, NULL, -1),
           -EINVAL);
  CHECK_RC(aioc_tls_open_connection(&s, NULL, 1, cctx, NULL, 1), -EINVAL);
  aioc_server *srv2;
  CHECK_RC(aioc_tls_start_server(&srv2, "127.0.0.1", 0, echo_handler, NULL,
                                 cctx, NULL),
           -EINVAL);
  CHECK_RC(aioc_tls_start_server(&srv2, "127.0.0.1", 0, echo_handler, NULL,
                                 NULL, NULL),
           -EINVAL);
  /* A plain stream: no TLS accessors; start_tls needs a name to verify. */
  CHECK_RC(aioc_open_connection(&s, "127.0.0.1", aioc_server_port(srv), NULL,
                                30),
           0);
  CHECK(!aioc_stream_is_tls(s));
  CHECK(aioc_stream_tls_alpn(s) == NULL);
  CHECK(aioc_stream_tls_version(s) == NULL);
  CHECK(aioc_stream_tls_peer_subject(s) == NULL);
  CHECK(aioc_stream_tls_server_name(s) == NULL);
  CHECK(aioc_stream_tls_ssl(s) == NULL);
  CHECK_RC(aioc_stream_start_tls(s, cctx, NULL, 30), -EINVAL);
  CHECK_RC(aioc_stream_start_tls(s, NULL, "localhost", 30), -EINVAL);
  CHECK_RC(aioc_stream_start_tls(NULL, cctx, "localhost", 30), -EINVAL);
  CHECK_RC(aioc_stream_start_tls(s, cctx, "localhost", 30), 0);
  round_trip(s, "upgraded by hand\n");
  aioc_stream_free(s);
  CHECK(!aioc_stream_is_tls(NULL));
  aioc_tls_context_free(NULL);
  stop_server(srv);
  aioc_tls_context_free(sctx);
  aioc_tls_context_free(cctx);
  return 0;
}

TEST(test_tls_bad_input) { io_run(bad_input_main, NULL); }

/* A failed handshake breaks a STARTTLS stream for good. */
static int broken_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  aioc_server *srv;
  CHECK_RC(aioc_start_server(&srv, "127.0.0.1", 0, http_400, NULL, NULL), 0);
  aioc_tls_context *cctx = client_ctx(NULL);
  aioc_stream *s;
  CHECK_RC(aioc_open_connection(&s, "127.0.0.1", aioc_server_port(srv), NULL,
                                30),
           0);
  CHECK_RC(aioc_stream_start_tls(s, cctx, "localhost", 30), AIOC_ETLS);
  char buf[8];
  size_t n;
  CHECK_RC(aioc_stream_read(s, buf, sizeof buf, &n, 1), AIOC_ETLS);
  CHECK_RC(aioc_stream_write(s, "x", 1), AIOC_ETLS);
  CHECK_RC(aioc_stream_close(s), 0);
  CHECK_RC(aioc_stream_wait_closed(s, 30), 0);
  aioc_stream_free(s);
  stop_server(srv);
  aioc_tls_context_free(cctx);
  return 0;
}

TEST(test_tls_broken_after_failed_handshake) { io_run(broken_main, NULL); }

CHECK_MAIN(120)
