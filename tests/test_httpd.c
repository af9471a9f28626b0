/* The test HTTP server (httpd.h), seen by a plain client on aioc's
 * streams: the routes, keep-alive and pipelining, request bodies (sized,
 * chunked, with "Expect: 100-continue"), the faults it makes on request
 * (drip, stall, close mid-body, reset), bad requests, a client that goes
 * away mid-response, and closing the server. Timing checks are lower
 * bounds only. Loopback only. */
#include <stdlib.h>
#include <strings.h>

#include "httpd.h"
#include "io_common.h"

#define T 10.0 /* seconds any one read may take */

/* ---- a minimal client ---------------------------------------------------- */

typedef struct resp {
  int status;
  char head[4096];
  size_t head_len;
  long long content_length; /* -1: none */
  int chunked;
  char *body;
  size_t len;
} resp;

static void resp_clear(resp *r) {
  free(r->body);
  memset(r, 0, sizeof *r);
}

/* The value of header name in r->head (copied into out), or NULL. */
static const char *header(const resp *r, const char *name, char *out,
                          size_t cap) {
  size_t k = strlen(name);
  for (const char *l = strchr(r->head, '\n'); l && l[1]; l = strchr(l, '\n')) {
    l++;
    if (!strncasecmp(l, name, k) && l[k] == ':') {
      const char *v = l + k + 1;
      while (*v == ' ') v++;
      size_t n = strcspn(v, "\r\n");
      if (n >= cap) n = cap - 1;
      memcpy(out, v, n);
      out[n] = 0;
      return out;
    }
  }
  return NULL;
}

static int connect_to(aioc_stream **s, httpd *h) {
  return aioc_open_connection(s, "127.0.0.1", httpd_port(h), NULL, T);
}

static int send_str(aioc_stream *s, const char *req) {
  return aioc_stream_write(s, req, strlen(req));
}

/* Reads a response's status line and headers. */
static int read_head(aioc_stream *s, resp *r) {
  resp_clear(r);
  int rc = aioc_stream_readuntil(s, "\r\n\r\n", 4, r->head, sizeof r->head - 1,
                                 &r->head_len, T);
  if (rc < 0) return rc;
  r->head[r->head_len] = 0;
  if (sscanf(r->head, "HTTP/1.1 %d", &r->status) != 1) return -EPROTO;
  char v[64];
  r->content_length = header(r, "Content-Length", v, sizeof v) ? atoll(v) : -1;
  r->chunked = header(r, "Transfer-Encoding", v, sizeof v) &&
               !strcasecmp(v, "chunked");
  return 0;
}

/* Reads one chunk of a chunked body, appending it to r->body; *n is its
 * size (0: the last chunk, trailer read). */
static int read_chunk(aioc_stream *s, resp *r, size_t *n) {
  char line[64];
  size_t got;
  int rc = aioc_stream_readline(s, line, sizeof line - 1, &got, T);
  if (rc < 0) return rc;
  line[got] = 0;
  *n = strtoul(line, NULL, 16);
  if (*n == 0) {
    rc = aioc_stream_readline(s, line, sizeof line, &got, T);
    return rc < 0 ? rc : strncmp(line, "\r\n", 2) ? -EPROTO : 0;
  }
  r->body = realloc(r->body, r->len + *n + 2);
  rc = aioc_stream_readexactly(s, r->body + r->len, *n + 2, &got, T);
  if (rc < 0) return rc;
  if (memcmp(r->body + r->len + *n, "\r\n", 2) != 0) return -EPROTO;
  r->len += *n;
  return 0;
}

/* Reads a whole response (no body for HEAD, 204, 304). */
static int read_resp(aioc_stream *s, resp *r, int head_only) {
  int rc = read_head(s, r);
  if (rc < 0 || head_only || r->status == 204 || r->status == 304) return rc;
  if (r->chunked) {
    size_t n;
    do rc = read_chunk(s, r, &n);
    while (rc == 0 && n);
    return rc;
  }
  if (r->content_length >= 0) {
    size_t got;
    r->body = malloc((size_t)r->content_length + 1);
    rc = aioc_stream_readexactly(s, r->body, (size_t)r->content_length, &got,
                                 T);
    r->len = got;
    return rc;
  }
  return -EPROTO; /* every route announces its length */
}

/* GET path on s, the response into r. */
static int get(aioc_stream *s, const char *path, resp *r) {
  char req[512];
  snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path);
  int rc = send_str(s, req);
  return rc < 0 ? rc : read_resp(s, r, 0);
}

static int is_pattern(const char *b, size_t n, unsigned long long off) {
  for (size_t i = 0; i < n; i++)
    if (b[i] != httpd_byte(off + i)) return 0;
  return 1;
}

#define CHECK_BODY(r, text)                                                    \
  do {                                                                         \
    CHECK_EQ((r).len, strlen(text));                                           \
    CHECK((r).body && (r).len == strlen(text) &&                               \
          memcmp((r).body, text, (r).len) == 0);                               \
  } while (0)

/* Waits (up to 5 s) until cond holds. */
#define EVENTUALLY(cond)                                                       \
  do {                                                                         \
    for (int i_ = 0; i_ < 500 && !(cond); i_++) IGNORE_RC(aioc_sleep(0.01));   \
    CHECK(cond);                                                               \
  } while (0)

static httpd *start(void) {
  httpd *h = NULL;
  CHECK_RC(httpd_start(&h, NULL), 0);
  CHECK(h && httpd_port(h) > 0);
  return h;
}

static void stop(httpd *h) {
  CHECK_RC(httpd_close(h, 5), 0);
  httpd_stats st;
  httpd_get_stats(h, &st);
  CHECK_EQ(st.open, 0);
  httpd_free(h);
}

/* ---- routes over one kept-alive connection ------------------------------ */

static int routes_main(void *arg, void **res) {
  (void)arg, (void)res;
  httpd *h = start();
  aioc_stream *s;
  CHECK_RC(connect_to(&s, h), 0);
  resp r = {0};
  char v[128];
  int n = 0;

  CHECK_RC(get(s, "/bytes/0", &r), 0);
  n++;
  CHECK_EQ(r.status, 200);
  CHECK_EQ(r.content_length, 0);
  CHECK_RC(get(s, "/bytes/1000", &r), 0);
  n++;
  CHECK_EQ(r.len, 1000);
  CHECK(is_pattern(r.body, r.len, 0));
  CHECK_STR(header(&r, "Content-Type", v, sizeof v), "application/octet-stream");
  CHECK(header(&r, "Date", v, sizeof v) != NULL);
  CHECK(header(&r, "Connection", v, sizeof v) == NULL);
  CHECK_RC(get(s, "/bytes/300000", &r), 0);
  n++;
  CHECK_EQ(r.len, 300000);
  CHECK(is_pattern(r.body, r.len, 0));

  CHECK_RC(get(s, "/json/ip", &r), 0);
  n++;
  CHECK_EQ(r.status, 200);
  CHECK_STR(header(&r, "Content-Type", v, sizeof v), "application/json");
  CHECK_BODY(r, "{\"ip\": \"127.0.0.1\"}");
  CHECK_RC(get(s, "/json/query", &r), 0);
  n++;
  CHECK_BODY(r, "{\"query\": \"127.0.0.1\"}");

  double t0 = aioc_time();
  CHECK_RC(get(s, "/json/ip?delay=50", &r), 0);
  n++;
  CHECK(aioc_time() - t0 >= 0.045);
  CHECK_BODY(r, "{\"ip\": \"127.0.0.1\"}");
  t0 = aioc_time();
  CHECK_RC(get(s, "/delay/80", &r), 0);
  n++;
  CHECK(aioc_time() - t0 >= 0.075);
  CHECK_BODY(r, "{\"delay\": 80}");

  CHECK_RC(get(s, "/events?delay=10", &r), 0);
  n++;
  CHECK_EQ(r.status, 200);
  CHECK(header(&r, "Date", v, sizeof v) != NULL);
  CHECK(strstr(v, " GMT") != NULL);
  CHECK(r.len > 2 && r.body[0] == '[' && r.body[r.len - 1] == ']');

  CHECK_RC(get(s, "/redirect-loop", &r), 0);
  n++;
  CHECK_EQ(r.status, 302);
  CHECK_STR(header(&r, "Location", v, sizeof v), "/redirect-loop");

  CHECK_RC(get(s, "/no/such/thing", &r), 0);
  n++;
  CHECK_EQ(r.status, 404);
  CHECK_RC(get(s, "/status/503", &r), 0);
  n++;
  CHECK_EQ(r.status, 503);
  CHECK_RC(get(s, "/status/204", &r), 0);
  n++;
  CHECK_EQ(r.status, 204);
  CHECK(header(&r, "Content-Length", v, sizeof v) == NULL);

  CHECK_RC(send_str(s, "HEAD /bytes/5000 HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
  n++;
  CHECK_RC(read_resp(s, &r, 1), 0);
  CHECK_EQ(r.status, 200);
  CHECK_EQ(r.content_length, 5000);

  CHECK_RC(send_str(s, "GET /headers HTTP/1.1\r\nHost: x\r\n"
                       "X-Test: yes\r\n\r\n"), 0);
  n++;
  CHECK_RC(read_resp(s, &r, 0), 0);
  CHECK(r.body && strstr(r.body, "X-Test: yes\r\n") != NULL);
  CHECK(r.body && strncmp(r.body, "GET /headers HTTP/1.1\r\n", 23) == 0);

  /* Two requests in one write: two responses, in order. */
  CHECK_RC(send_str(s, "GET /bytes/3 HTTP/1.1\r\nHost: x\r\n\r\n"
                       "GET /json/ip HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
  n += 2;
  CHECK_RC(read_resp(s, &r, 0), 0);
  CHECK_BODY(r, "abc");
  CHECK_RC(read_resp(s, &r, 0), 0);
  CHECK_BODY(r, "{\"ip\": \"127.0.0.1\"}");

  httpd_stats st;
  httpd_get_stats(h, &st);
  CHECK_EQ(st.connections, 1); /* all of it on one connection */
  CHECK_EQ(st.open, 1);
  CHECK_EQ(st.requests, n);
  CHECK_EQ(st.completed, n);
  CHECK_EQ(st.aborted, 0);
  CHECK_EQ(httpd_requests(h), n);

  /* "Connection: close": answered, then the server closes. */
  CHECK_RC(send_str(s, "GET /bytes/10 HTTP/1.1\r\nConnection: close\r\n\r\n"),
           0);
  CHECK_RC(read_resp(s, &r, 0), 0);
  CHECK_STR(header(&r, "Connection", v, sizeof v), "close");
  char c;
  size_t got;
  CHECK_RC(aioc_stream_read(s, &c, 1, &got, T), 0);
  CHECK_EQ(got, 0);
  aioc_stream_free(s);
  EVENTUALLY((httpd_get_stats(h, &st), st.open == 0));

  /* HTTP/1.0: closed after the response unless kept alive. */
  CHECK_RC(connect_to(&s, h), 0);
  CHECK_RC(send_str(s, "GET /bytes/4 HTTP/1.0\r\n\r\n"), 0);
  CHECK_RC(aioc_stream_readuntil(s, "\r\n\r\n", 4, r.head, sizeof r.head,
                                 &got, T),
           0);
  char tail[16];
  CHECK_RC(aioc_stream_readexactly(s, tail, 4, &got, T), 0);
  CHECK_RC(aioc_stream_read(s, &c, 1, &got, T), 0);
  CHECK_EQ(got, 0);
  aioc_stream_free(s);

  resp_clear(&r);
  stop(h);
  return 0;
}

TEST(test_routes_keepalive) { io_run(routes_main, NULL); }

/* ---- request bodies ----------------------------------------------------- */

static int echo_main(void *arg, void **res) {
  (void)arg, (void)res;
  httpd *h = start();
  aioc_stream *s;
  CHECK_RC(connect_to(&s, h), 0);
  resp r = {0};
  char v[128];

  CHECK_RC(send_str(s, "POST /echo HTTP/1.1\r\nHost: x\r\n"
                       "Content-Type: application/json\r\n"
                       "Content-Length: 13\r\n\r\n{\"a\": [1, 2]}"),
           0);
  CHECK_RC(read_resp(s, &r, 0), 0);
  CHECK_EQ(r.status, 200);
  CHECK_STR(header(&r, "Content-Type", v, sizeof v), "application/json");
  CHECK_BODY(r, "{\"a\": [1, 2]}");

  /* Chunked upload, no Content-Type. */
  CHECK_RC(send_str(s, "POST /echo HTTP/1.1\r\nHost: x\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n"
                       "5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n"),
           0);
  CHECK_RC(read_resp(s, &r, 0), 0);
  CHECK_STR(header(&r, "Content-Type", v, sizeof v), "application/octet-stream");
  CHECK_BODY(r, "hello, world");

  /* Expect: 100-continue: the interim answer first, then the body. */
  CHECK_RC(send_str(s, "PUT /echo HTTP/1.1\r\nHost: x\r\n"
                       "Content-Type: text/plain\r\nContent-Length: 4\r\n"
                       "Expect: 100-continue\r\n\r\n"),
           0);
  CHECK_RC(read_head(s, &r), 0);
  CHECK_EQ(r.status, 100);
  CHECK_RC(send_str(s, "ping"), 0);
  CHECK_RC(read_resp(s, &r, 0), 0);
  CHECK_EQ(r.status, 200);
  CHECK_BODY(r, "ping");

  /* A body split over several writes. */
  CHECK_RC(send_str(s, "POST /echo HTTP/1.1\r\nContent-Length: 6\r\n\r\nab"),
           0);
  IGNORE_RC(aioc_sleep(0.02));
  CHECK_RC(send_str(s, "cdef"), 0);
  CHECK_RC(read_resp(s, &r, 0), 0);
  CHECK_BODY(r, "abcdef");

  aioc_stream_free(s);
  resp_clear(&r);
  httpd_stats st;
  httpd_get_stats(h, &st);
  CHECK_EQ(st.connections, 1);
  CHECK_EQ(st.completed, 4);
  stop(h);
  return 0;
}

TEST(test_request_bodies) { io_run(echo_main, NULL); }

/* ---- slow responses ----------------------------------------------------- */

static int drip_main(void *arg, void **res) {
  (void)arg, (void)res;
  httpd *h = start();
  aioc_stream *s;
  CHECK_RC(connect_to(&s, h), 0);
  resp r = {0};
  enum { N = 5, MS = 60 };
  double t0 = aioc_time();
  CHECK_RC(send_str(s, "GET /drip/5/60 HTTP/1.1\r\n\r\n"), 0);
  CHECK_RC(read_head(s, &r), 0);
  CHECK_EQ(r.status, 200);
  CHECK(r.chunked);
  double at[N + 1];
  size_t n;
  int chunks = 0;
  for (;;) {
    CHECK_RC(read_chunk(s, &r, &n), 0);
    if (n == 0) break;
    CHECK_EQ(n, 1024);
    if (chunks <= N) at[chunks] = aioc_time();
    chunks++;
  }
  CHECK_EQ(chunks, N);
  CHECK_EQ(r.len, N * 1024);
  CHECK(is_pattern(r.body, r.len, 0));
  /* The chunks came MS apart (lower bounds only). */
  CHECK(aioc_time() - t0 >= (N - 1) * MS / 1000.0 - 0.005);
  for (int i = 1; i < chunks && i < N; i++)
    CHECK(at[i] - at[i - 1] >= MS / 1000.0 - 0.005);

  /* The connection is still good. */
  CHECK_RC(get(s, "/bytes/26", &r), 0);
  CHECK_BODY(r, "abcdefghijklmnopqrstuvwxyz");
  aioc_stream_free(s);
  resp_clear(&r);
  stop(h);
  return 0;
}

TEST(test_drip) { io_run(drip_main, NULL); }

static int stall_main(void *arg, void **res) {
  (void)arg, (void)res;
  httpd *h = start();
  aioc_stream *s;
  CHECK_RC(connect_to(&s, h), 0);
  resp r = {0};
  char buf[4096];
  size_t got;

  /* 1000 bytes, a stall of 300 ms, the other 1000. */
  double t0 = aioc_time();
  CHECK_RC(send_str(s, "GET /stall/1000/300 HTTP/1.1\r\n\r\n"), 0);
  CHECK_RC(read_head(s, &r), 0);
  CHECK_EQ(r.content_length, 2000);
  CHECK_RC(aioc_stream_readexactly(s, buf, 1000, &got, T), 0);
  CHECK(is_pattern(buf, 1000, 0));
  CHECK_RC(aioc_stream_readexactly(s, buf + 1000, 1000, &got, T), 0);
  CHECK(aioc_time() - t0 >= 0.295);
  CHECK(is_pattern(buf, 2000, 0));

  /* ?total=: 100 bytes of 3000 first. */
  CHECK_RC(send_str(s, "GET /stall/100/10?total=3000 HTTP/1.1\r\n\r\n"), 0);
  CHECK_RC(read_resp(s, &r, 0), 0);
  CHECK_EQ(r.len, 3000);
  CHECK(is_pattern(r.body, r.len, 0));

  /* A client that gives up during a long stall: the server notices at
   * once (it reads while it waits) and counts an aborted response. */
  CHECK_RC(send_str(s, "GET /stall/500/60000 HTTP/1.1\r\n\r\n"), 0);
  CHECK_RC(read_head(s, &r), 0);
  CHECK_RC(aioc_stream_readexactly(s, buf, 500, &got, T), 0);
  CHECK_RC(aioc_stream_read(s, buf, sizeof buf, &got, 0.05), -ETIMEDOUT);
  aioc_stream_free(s);
  httpd_stats st;
  EVENTUALLY((httpd_get_stats(h, &st), st.open == 0));
  CHECK_EQ(st.aborted, 1);
  CHECK_EQ(st.completed, 2);
  resp_clear(&r);
  stop(h);
  return 0;
}

TEST(test_stall) { io_run(stall_main, NULL); }

/* The same for a drip and a delay the client leaves. */
static int leave_main(void *arg, void **res) {
  (void)arg, (void)res;
  httpd *h = start();
  resp r = {0};
  const char *reqs[] = {"GET /drip/100/1000 HTTP/1.1\r\n\r\n",
                        "GET /delay/60000 HTTP/1.1\r\n\r\n",
                        "GET /events?delay=60000 HTTP/1.1\r\n\r\n"};
  for (int i = 0; i < 3; i++) {
    aioc_stream *s;
    CHECK_RC(connect_to(&s, h), 0);
    CHECK_RC(send_str(s, reqs[i]), 0);
    if (i == 0) CHECK_RC(read_head(s, &r), 0);
    else IGNORE_RC(aioc_sleep(0.02));
    aioc_stream_free(s);
    httpd_stats st;
    EVENTUALLY((httpd_get_stats(h, &st), st.open == 0));
    CHECK_EQ(st.aborted, i + 1);
  }
  resp_clear(&r);
  stop(h);
  return 0;
}

TEST(test_client_leaves) { io_run(leave_main, NULL); }

/* ---- faults ------------------------------------------------------------- */

static int faults_main(void *arg, void **res) {
  (void)arg, (void)res;
  httpd *h = start();
  aioc_stream *s;
  resp r = {0};
  char buf[2048];
  size_t got;

  /* Close mid-body: 100 of the 1000 bytes announced, then end of file. */
  CHECK_RC(connect_to(&s, h), 0);
  CHECK_RC(send_str(s, "GET /close-mid-body HTTP/1.1\r\n\r\n"), 0);
  CHECK_RC(read_head(s, &r), 0);
  CHECK_EQ(r.status, 200);
  CHECK_EQ(r.content_length, 1000);
  CHECK_RC(aioc_stream_readexactly(s, buf, 1000, &got, T), AIOC_EINCOMPLETE);
  CHECK_EQ(got, 100);
  CHECK(is_pattern(buf, 100, 0));
  aioc_stream_free(s);

  /* Reset after the headers. */
  CHECK_RC(connect_to(&s, h), 0);
  CHECK_RC(send_str(s, "GET /reset HTTP/1.1\r\n\r\n"), 0);
  CHECK_RC(read_head(s, &r), 0);
  CHECK_EQ(r.content_length, 1000);
  CHECK_RC(aioc_stream_readexactly(s, buf, 1000, &got, T), -ECONNRESET);
  aioc_stream_free(s);

  /* Bad requests: 400, 431, each closing the connection. */
  CHECK_RC(connect_to(&s, h), 0);
  CHECK_RC(send_str(s, "NONSENSE\r\n\r\n"), 0);
  CHECK_RC(read_resp(s, &r, 0), 0);
  CHECK_EQ(r.status, 400);
  CHECK_RC(aioc_stream_read(s, buf, sizeof buf, &got, T), 0);
  CHECK_EQ(got, 0);
  aioc_stream_free(s);

  CHECK_RC(connect_to(&s, h), 0);
  CHECK_RC(send_str(s, "GET / HTTP/1.1\r\nX-Long: "), 0);
  memset(buf, 'x', sizeof buf);
  for (int i = 0; i < 10; i++) CHECK_RC(aioc_stream_write(s, buf, sizeof buf), 0);
  CHECK_RC(read_resp(s, &r, 0), 0);
  CHECK_EQ(r.status, 431);
  aioc_stream_free(s);

  CHECK_RC(connect_to(&s, h), 0);
  CHECK_RC(send_str(s, "POST /echo HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n"),
           0);
  CHECK_RC(read_resp(s, &r, 0), 0);
  CHECK_EQ(r.status, 413);
  aioc_stream_free(s);

  /* A client that says nothing and leaves: no request counted. */
  CHECK_RC(connect_to(&s, h), 0);
  aioc_stream_free(s);

  httpd_stats st;
  EVENTUALLY((httpd_get_stats(h, &st), st.connections == 6 && st.open == 0));
  CHECK_EQ(st.requests, 5);
  CHECK_EQ(st.completed, 5);
  CHECK_EQ(st.aborted, 0);
  resp_clear(&r);
  stop(h);
  return 0;
}

TEST(test_faults) { io_run(faults_main, NULL); }

/* ---- closing ------------------------------------------------------------ */

static int close_main(void *arg, void **res) {
  (void)arg, (void)res;
  httpd *h = start();
  int port = httpd_port(h);
  aioc_stream *idle, *busy;
  CHECK_RC(connect_to(&idle, h), 0);
  CHECK_RC(connect_to(&busy, h), 0);
  CHECK_RC(send_str(busy, "GET /delay/60000 HTTP/1.1\r\n\r\n"), 0);
  httpd_stats st;
  EVENTUALLY((httpd_get_stats(h, &st), st.requests == 1 && st.open == 2));
  /* Both handlers are cancelled; both clients read end of file. */
  CHECK_RC(httpd_close(h, 5), 0);
  httpd_get_stats(h, &st);
  CHECK_EQ(st.open, 0);
  CHECK_EQ(st.aborted, 1);
  char c;
  size_t got;
  CHECK_RC(aioc_stream_read(idle, &c, 1, &got, T), 0);
  CHECK_EQ(got, 0);
  CHECK_RC(aioc_stream_read(busy, &c, 1, &got, T), 0);
  CHECK_EQ(got, 0);
  aioc_stream_free(idle);
  aioc_stream_free(busy);
  /* No longer listening. */
  aioc_stream *s = NULL;
  CHECK_RC(aioc_open_connection(&s, "127.0.0.1", port, NULL, T),
           -ECONNREFUSED);
  CHECK_RC(httpd_close(h, 5), 0);
  httpd_free(h);

  /* Freed without a close, a connection in progress: its handler ends
   * on its own. */
  h = start();
  CHECK_RC(connect_to(&s, h), 0);
  CHECK_RC(send_str(s, "GET /delay/60000 HTTP/1.1\r\n\r\n"), 0);
  IGNORE_RC(aioc_sleep(0.02));
  httpd_free(h);
  CHECK_RC(aioc_stream_read(s, &c, 1, &got, T), 0);
  CHECK_EQ(got, 0);
  aioc_stream_free(s);
  settle_io();
  return 0;
}

TEST(test_close) { io_run(close_main, NULL); }

/* Options: the address answered, a fake clock for Date. */
static int options_main(void *arg, void **res) {
  (void)arg, (void)res;
  httpd *h;
  httpd_options o = {.ip = "81.106.46.223", .date_base = 1530272655.0};
  CHECK_RC(httpd_start(&h, &o), 0);
  aioc_stream *s;
  CHECK_RC(connect_to(&s, h), 0);
  resp r = {0};
  char v[64];
  CHECK_RC(get(s, "/json/query", &r), 0);
  CHECK_BODY(r, "{\"query\": \"81.106.46.223\"}");
  CHECK_RC(get(s, "/events", &r), 0);
  /* 11:44:15, or a second later on a slow machine. */
  CHECK(header(&r, "Date", v, sizeof v) &&
        !strncmp(v, "Fri, 29 Jun 2018 11:44:1", 24) && strstr(v, " GMT"));
  aioc_stream_free(s);
  resp_clear(&r);
  stop(h);
  return 0;
}

TEST(test_options) { io_run(options_main, NULL); }

CHECK_MAIN(120)
