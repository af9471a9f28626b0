/* The HTTP client against real servers on loopback: the test's own
 * fault-injecting server (httpd.h, in the same process, on the same loop)
 * for the protocol cases and the faults, and the run's nginx (the CTest
 * fixture, scripts/nginx.sh) for TLS, HTTP/2 and the bad certificates.
 * Real clock throughout (libcurl keeps its own time); no case asserts an
 * upper bound on a duration. */
#include <curl/curl.h>
#include <jansson.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "httpd.h"
#include "nginx_env.h"

static httpd *srv;
static char base[64];

static const char *url(const char *path) {
  static char buf[8][256];
  static int k;
  char *b = buf[k++ % 8];
  snprintf(b, 256, "%s%s", base, path);
  return b;
}

/* Starts the test server on the running loop. */
static void serve(void) {
  CHECK_RC(httpd_start(&srv, NULL), 0);
  snprintf(base, sizeof base, "http://127.0.0.1:%d", httpd_port(srv));
}

static void unserve(void) {
  CHECK_RC(httpd_close(srv, 5), 0);
  httpd_free(srv);
  srv = NULL;
}

static void check_pattern(const char *p, size_t n, size_t from) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != httpd_byte(from + i)) {
      CHECK_FAIL_(__FILE__, __LINE__, "byte %zu is %d", from + i, p[i]);
      return;
    }
}

static size_t running(void) {
  size_t r = 99;
  CHECK_RC(aioc_http_stats(NULL, NULL, &r, NULL), 0);
  return r;
}

/* Waits (real time, at most 30 s: generous for emulators under load)
 * until the server counted `n` aborted responses. */
static void wait_aborted(unsigned long n) {
  httpd_stats st;
  for (int i = 0; i < 3000; i++) {
    httpd_get_stats(srv, &st);
    if (st.aborted >= n) break;
    CHECK_RC(aioc_sleep(0.01), 0);
  }
  httpd_get_stats(srv, &st);
  CHECK_INT(st.aborted, >=, n);
}

/* ---- requests --------------------------------------------------------- */

static int get_body_main(void *arg, void **res) {
  (void)arg, (void)res;
  serve();
  aioc_http_response *r;
  CHECK_RC(aioc_http_get(NULL, &r, url("/bytes/100000"), 10), 0);
  CHECK_EQ(r->status, 200);
  CHECK_EQ(r->version, 11);
  CHECK_EQ(r->body_len, 100000);
  check_pattern(r->body, r->body_len, 0);
  CHECK_EQ(r->body[r->body_len], 0);
  CHECK_STR(r->url, url("/bytes/100000"));
  CHECK(aioc_http_header_get(r, "date") != NULL);
  CHECK_STR(aioc_http_header_get(r, "CONTENT-LENGTH"), "100000");
  CHECK(aioc_http_header_get(r, "X-Nothing") == NULL);
  CHECK(r->nheaders >= 3);
  aioc_http_response_free(r);
  CHECK_EQ(running(), 0);
  unserve();
  return 0;
}
TEST(get_body) { CHECK_RC(run_main_real(get_body_main, NULL, NULL), 0); }

static int statuses(void *arg, void **res) {
  (void)arg, (void)res;
  serve();
  aioc_http_response *r;
  CHECK_RC(aioc_http_get(NULL, &r, url("/no/such/thing"), 10), 0);
  CHECK_EQ(r->status, 404);
  aioc_http_response_free(r);
  CHECK_RC(aioc_http_get(NULL, &r, url("/status/503"), 10), 0);
  CHECK_EQ(r->status, 503);
  aioc_http_response_free(r);
  CHECK_RC(aioc_http_get(NULL, &r, url("/status/204"), 10), 0);
  CHECK_EQ(r->status, 204);
  CHECK_EQ(r->body_len, 0);
  CHECK_STR(r->body, "");
  aioc_http_response_free(r);
  unserve();
  return 0;
}
TEST(statuses_are_responses) { CHECK_RC(run_main_real(statuses, NULL, NULL), 0); }

static int keepalive(void *arg, void **res) {
  (void)arg, (void)res;
  serve();
  size_t c0, c1;
  CHECK_RC(aioc_http_stats(NULL, NULL, NULL, &c0), 0);
  for (int i = 0; i < 5; i++) {
    aioc_http_response *r;
    CHECK_RC(aioc_http_get(NULL, &r, url("/bytes/10"), 10), 0);
    CHECK_EQ(r->status, 200);
    aioc_http_response_free(r);
  }
  CHECK_RC(aioc_http_stats(NULL, NULL, NULL, &c1), 0);
  CHECK_EQ(c1 - c0, 1);
  httpd_stats st;
  httpd_get_stats(srv, &st);
  CHECK_EQ(st.connections, 1);
  CHECK_EQ(st.requests, 5);
  unserve();
  return 0;
}
TEST(keepalive_reuses_one_connection) {
  CHECK_RC(run_main_real(keepalive, NULL, NULL), 0);
}

/* Between requests a kept-alive connection's socket stays registered with
 * the poller; a connection the server closes while idle, or right after
 * its response, must not leave a stale registration behind for the next
 * socket, which usually gets the same number. */
static int closed_connections(void *arg, void **res) {
  (void)arg, (void)res;
  serve();
  aioc_http_response *r;
  for (int i = 0; i < 3; i++) { /* closed by the server after each */
    CHECK_RC(aioc_http_get(NULL, &r, url("/close"), 10), 0);
    CHECK_EQ(r->status, 200);
    CHECK_EQ(r->body_len, 2);
    aioc_http_response_free(r);
  }
  for (int i = 0; i < 3; i++) { /* closed while idle, between requests */
    CHECK_RC(aioc_http_get(NULL, &r, url("/close-after/20"), 10), 0);
    CHECK_EQ(r->status, 200);
    aioc_http_response_free(r);
    CHECK_RC(aioc_sleep(0.2), 0);
  }
  CHECK_RC(aioc_http_get(NULL, &r, url("/bytes/10"), 10), 0);
  CHECK_EQ(r->status, 200);
  aioc_http_response_free(r);
  httpd_stats st;
  httpd_get_stats(srv, &st);
  CHECK_EQ(st.requests, 7);
  CHECK_EQ(st.connections, 7); /* none reused after its close */
  unserve();
  return 0;
}
TEST(closed_connections_leave_no_registration) {
  CHECK_RC(run_main_real(closed_connections, NULL, NULL), 0);
}

static int one_get(void *arg, void **res) {
  aioc_http_response *r;
  int rc = aioc_http_get(NULL, &r, arg, 30);
  if (rc < 0) return rc;
  *res = (void *)(intptr_t)r->status;
  aioc_http_response_free(r);
  return 0;
}

static int concurrent(void *arg, void **res) {
  (void)arg, (void)res;
  serve();
  enum { N = 20 };
  aioc_task *t[N];
  for (int i = 0; i < N; i++)
    CHECK_RC(aioc_spawn(&t[i], one_get, (void *)url("/delay/200")), 0);
  CHECK_EQ(running(), 0); /* not started before they run */
  for (int i = 0; i < N; i++) {
    void *v;
    CHECK_RC(aioc_await(aioc_task_future(t[i]), &v), 0);
    CHECK_EQ((int)(intptr_t)v, 200);
    aioc_task_unref(t[i]);
  }
  httpd_stats st;
  httpd_get_stats(srv, &st);
  CHECK_EQ(st.requests, N);
  CHECK_EQ(st.connections, N); /* all at once: one connection each */
  unserve();
  return 0;
}
TEST(concurrent_requests) { CHECK_RC(run_main_real(concurrent, NULL, NULL), 0); }

static int post_and_methods(void *arg, void **res) {
  (void)arg, (void)res;
  serve();
  aioc_http_response *r;
  CHECK_RC(aioc_http_post_json(NULL, &r, url("/echo"), "{\"a\": [1, 2]}", 10), 0);
  CHECK_EQ(r->status, 200);
  CHECK_STR(r->body, "{\"a\": [1, 2]}");
  CHECK_STR(aioc_http_header_get(r, "content-type"), "application/json");
  json_error_t je;
  json_t *j = json_loads(r->body, 0, &je);
  CHECK(j != NULL);
  CHECK_EQ(json_integer_value(json_array_get(json_object_get(j, "a"), 1)), 2);
  json_decref(j);
  aioc_http_response_free(r);

  static const char *const sh[] = {"X-Session: s1", NULL};
  static const char *const rh[] = {"X-Request: r1", "User-Agent:", NULL};
  aioc_http_session *s;
  CHECK_RC(aioc_http_session_new(&s, NULL, &(aioc_http_options){.headers = sh}), 0);
  CHECK_RC(aioc_http_request(s, &r, url("/headers"),
                             &(aioc_http_options){.method = "PUT",
                                                  .headers = rh,
                                                  .body = "xyz",
                                                  .body_len = 3},
                             10),
           0);
  CHECK_EQ(r->status, 200);
  CHECK(strncmp(r->body, "PUT /headers HTTP/1.1", 21) == 0);
  CHECK(strstr(r->body, "X-Session: s1") != NULL);
  CHECK(strstr(r->body, "X-Request: r1") != NULL);
  CHECK(strstr(r->body, "User-Agent") == NULL);
  CHECK(strstr(r->body, "Content-Length: 3") != NULL);
  aioc_http_response_free(r);

  CHECK_RC(aioc_http_request(s, &r, url("/bytes/5000"),
                             &(aioc_http_options){.method = "HEAD"}, 10),
           0);
  CHECK_EQ(r->status, 200);
  CHECK_EQ(r->body_len, 0);
  CHECK_STR(aioc_http_header_get(r, "Content-Length"), "5000");
  aioc_http_response_free(r);
  aioc_http_session_free(s);
  unserve();
  return 0;
}
TEST(post_json_methods_headers) {
  CHECK_RC(run_main_real(post_and_methods, NULL, NULL), 0);
}

/* A session's jar: a cookie set by a response goes with the session's
 * later requests, and with no other session's. */
static int cookies(void *arg, void **res) {
  (void)arg, (void)res;
  serve();
  aioc_http_session *a, *b;
  CHECK_RC(aioc_http_session_new(&a, NULL, NULL), 0);
  CHECK_RC(aioc_http_session_new(&b, NULL, NULL), 0);
  aioc_http_response *r;
  CHECK_RC(aioc_http_get(a, &r, url("/headers"), 10), 0);
  CHECK(strstr(r->body, "Cookie:") == NULL);
  aioc_http_response_free(r);
  CHECK_RC(aioc_http_get(a, &r, url("/cookie?sid=42"), 10), 0);
  CHECK_EQ(r->status, 200);
  CHECK(strstr(aioc_http_header_get(r, "Set-Cookie"), "sid=42") != NULL);
  aioc_http_response_free(r);
  CHECK_RC(aioc_http_get(a, &r, url("/headers"), 10), 0);
  CHECK(strstr(r->body, "Cookie: sid=42") != NULL);
  aioc_http_response_free(r);
  CHECK_RC(aioc_http_get(b, &r, url("/headers"), 10), 0);
  CHECK(strstr(r->body, "Cookie:") == NULL);
  aioc_http_response_free(r);
  CHECK_RC(aioc_http_get(NULL, &r, url("/headers"), 10), 0);
  CHECK(strstr(r->body, "Cookie:") == NULL);
  aioc_http_response_free(r);
  aioc_http_session_free(a);
  aioc_http_session_free(b);
  unserve();
  return 0;
}
TEST(session_cookie_jar) { CHECK_RC(run_main_real(cookies, NULL, NULL), 0); }

/* libcurl options aioc has no field for go through the setopt hook. */
static int set_agent(void *arg, void *easy) {
  return curl_easy_setopt(easy, CURLOPT_USERAGENT, (const char *)arg) ==
                 CURLE_OK
             ? 0
             : -EIO;
}
static int set_url(void *arg, void *easy) {
  return curl_easy_setopt(easy, CURLOPT_URL, (const char *)arg) == CURLE_OK
             ? 0
             : -EIO;
}
static int refuse(void *arg, void *easy) {
  (void)arg, (void)easy;
  return -EPERM;
}

static int setopt_main(void *arg, void **res) {
  (void)arg, (void)res;
  serve();
  aioc_http_session *s;
  CHECK_RC(aioc_http_session_new(&s, NULL,
                                 &(aioc_http_options){.setopt = set_agent,
                                                      .setopt_arg = "agent-7"}),
           0);
  aioc_http_response *r;
  CHECK_RC(aioc_http_get(s, &r, url("/headers"), 10), 0);
  CHECK(strstr(r->body, "User-Agent: agent-7") != NULL);
  aioc_http_response_free(r);
  CHECK_RC(aioc_http_request(s, &r, url("/headers"),
                             &(aioc_http_options){.setopt = refuse}, 10),
           -EPERM);
  CHECK(strstr(aioc_error_message(), "setopt") != NULL);
  CHECK_EQ(httpd_requests(srv), 1);
  /* the hook's URL wins over the request's, also on a handle that a
   * request without a hook used before */
  CHECK_RC(aioc_http_get(NULL, &r, url("/bytes/10"), 10), 0);
  aioc_http_response_free(r);
  char u20[128];
  snprintf(u20, sizeof u20, "%s", url("/bytes/20"));
  CHECK_RC(aioc_http_request(NULL, &r, url("/bytes/10"),
                             &(aioc_http_options){.setopt = set_url,
                                                  .setopt_arg = u20},
                             10),
           0);
  CHECK_EQ(r->body_len, 20);
  CHECK_STR(r->url, u20);
  aioc_http_response_free(r);
  CHECK_RC(aioc_http_get(NULL, &r, url("/bytes/10"), 10), 0);
  CHECK_EQ(r->body_len, 10);
  aioc_http_response_free(r);
  CHECK_EQ(running(), 0);
  aioc_http_session_free(s);
  unserve();
  return 0;
}
TEST(setopt_hook) { CHECK_RC(run_main_real(setopt_main, NULL, NULL), 0); }

/* Proxies come from the environment. A session made while no proxy
 * variable is set tells libcurl there is none (later changes are not
 * seen); one made while one is set leaves libcurl to read them on every
 * transfer. The test server is also a proxy to itself; nobody listens on
 * port 1. */
static const char *const proxy_names[] = {
    "http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy",
    "ALL_PROXY",  "no_proxy",   "NO_PROXY",    "ftp_proxy"};
#define NPROXY (sizeof proxy_names / sizeof *proxy_names)

static void clear_proxy_env(void) {
  for (size_t i = 0; i < NPROXY; i++) unsetenv(proxy_names[i]);
}

static int env_proxy_main(void *arg, void **res) {
  (void)arg, (void)res;
  serve();
  char *saved[NPROXY]; /* the environment's, put back at the end */
  for (size_t i = 0; i < NPROXY; i++) {
    const char *v = getenv(proxy_names[i]);
    saved[i] = v ? strdup(v) : NULL;
  }
  clear_proxy_env();
  char proxy[64];
  snprintf(proxy, sizeof proxy, "http://127.0.0.1:%d", httpd_port(srv));
  const char *far = "http://127.0.0.1:1/headers";
  const char *via = "GET http://127.0.0.1:1/headers HTTP/1.1";
  aioc_http_session *plain, *proxied, *upper, *empty;
  aioc_http_response *r;
  setenv("http_proxy", "", 1); /* empty: as if unset */
  CHECK_RC(aioc_http_session_new(&plain, NULL, NULL), 0);
  setenv("http_proxy", proxy, 1);
  CHECK_RC(aioc_http_session_new(&proxied, NULL, NULL), 0);
  CHECK_RC(aioc_http_get(proxied, &r, far, 10), 0);
  CHECK(strncmp(r->body, via, strlen(via)) == 0);
  aioc_http_response_free(r);
  CHECK_RC(aioc_http_get(plain, &r, far, 10), -ECONNREFUSED);
  setenv("no_proxy", "127.0.0.1", 1);
  CHECK_RC(aioc_http_get(proxied, &r, far, 10), -ECONNREFUSED);
  clear_proxy_env();
  CHECK_RC(aioc_http_get(proxied, &r, far, 10), -ECONNREFUSED);
  setenv("ALL_PROXY", proxy, 1);
  CHECK_RC(aioc_http_session_new(&upper, NULL, NULL), 0);
  CHECK_RC(aioc_http_get(upper, &r, far, 10), 0);
  CHECK(strncmp(r->body, via, strlen(via)) == 0);
  aioc_http_response_free(r);
  CHECK_RC(aioc_http_get(plain, &r, far, 10), -ECONNREFUSED);
  clear_proxy_env();
  setenv("ftp_proxy", proxy, 1); /* another scheme's */
  CHECK_RC(aioc_http_session_new(&empty, NULL, NULL), 0);
  CHECK_RC(aioc_http_get(empty, &r, far, 10), -ECONNREFUSED);
  setenv("http_proxy", proxy, 1);
  CHECK_RC(aioc_http_get(empty, &r, far, 10), 0); /* read each transfer */
  aioc_http_response_free(r);
  clear_proxy_env();
  for (size_t i = 0; i < NPROXY; i++) {
    if (saved[i]) setenv(proxy_names[i], saved[i], 1);
    free(saved[i]);
  }
  CHECK_EQ(httpd_requests(srv), 3);
  aioc_http_session_free(plain);
  aioc_http_session_free(proxied);
  aioc_http_session_free(upper);
  aioc_http_session_free(empty);
  unserve();
  return 0;
}
TEST(proxies_from_the_environment) {
  CHECK_RC(run_main_real(env_proxy_main, NULL, NULL), 0);
}

/* Transfers reuse libcurl handles: nothing of a request's options may
 * stay for the next one. */
static int reuse(void *arg, void **res) {
  (void)arg, (void)res;
  serve();
  aioc_http_response *r;
  static const char *const xa[] = {"X-A: 1", NULL};
  CHECK_RC(aioc_http_request(NULL, &r, url("/headers"),
                             &(aioc_http_options){.method = "POST",
                                                  .headers = xa,
                                                  .body = "abc",
                                                  .body_len = 3},
                             10),
           0);
  CHECK(strncmp(r->body, "POST ", 5) == 0);
  CHECK(strstr(r->body, "X-A: 1") != NULL);
  aioc_http_response_free(r);
  CHECK_RC(aioc_http_get(NULL, &r, url("/headers"), 10), 0);
  CHECK(strncmp(r->body, "GET ", 4) == 0);
  CHECK(strstr(r->body, "X-A") == NULL);
  CHECK(strstr(r->body, "Content-Length") == NULL);
  CHECK(strstr(r->body, "Accept-Encoding") == NULL); /* libcurl's default */
  aioc_http_response_free(r);
  CHECK_RC(aioc_http_request(NULL, &r, url("/headers"),
                             &(aioc_http_options){.compressed = 1}, 10),
           0);
  CHECK(strstr(r->body, "Accept-Encoding: ") != NULL);
  aioc_http_response_free(r);
  CHECK_RC(aioc_http_get(NULL, &r, url("/headers"), 10), 0);
  CHECK(strstr(r->body, "Accept-Encoding") == NULL);
  aioc_http_response_free(r);
  CHECK_RC(aioc_http_request(NULL, &r, url("/headers"),
                             &(aioc_http_options){.method = "PATCH"}, 10),
           0);
  CHECK(strncmp(r->body, "PATCH ", 6) == 0);
  aioc_http_response_free(r);
  CHECK_RC(aioc_http_request(NULL, &r, url("/bytes/10"),
                             &(aioc_http_options){.method = "HEAD"}, 10),
           0);
  CHECK_EQ(r->body_len, 0);
  aioc_http_response_free(r);
  CHECK_RC(aioc_http_get(NULL, &r, url("/headers"), 10), 0);
  CHECK(strncmp(r->body, "GET ", 4) == 0);
  aioc_http_response_free(r);
  CHECK_RC(aioc_http_get(NULL, &r, url("/bytes/10"), 10), 0);
  CHECK_EQ(r->body_len, 10);
  aioc_http_response_free(r);
  CHECK_RC(aioc_http_request(NULL, &r, url("/bytes/5000"),
                             &(aioc_http_options){.max_body = 100}, 10),
           -EMSGSIZE);
  CHECK_RC(aioc_http_get(NULL, &r, url("/bytes/5000"), 10), 0);
  CHECK_EQ(r->body_len, 5000);
  aioc_http_response_free(r);
  CHECK_RC(aioc_http_request(NULL, &r, url("/redirect-loop"),
                             &(aioc_http_options){.max_redirects = -1}, 10),
           0);
  CHECK_EQ(r->status, 302);
  aioc_http_response_free(r);
  CHECK_RC(aioc_http_get(NULL, &r, url("/redirect-loop"), 10), -ELOOP);
  CHECK_RC(aioc_http_request(NULL, &r, url("/delay/300"),
                             &(aioc_http_options){.timeout = 0.1}, 10),
           -ETIMEDOUT);
  CHECK_RC(aioc_http_get(NULL, &r, url("/delay/300"), 10), 0);
  CHECK_EQ(r->status, 200);
  aioc_http_response_free(r);
  /* A handle keeps the URL it was given: the same one again, another,
   * and the first again (each request in turn takes the one handle that
   * the last released). */
  static const char *const paths[] = {"/bytes/10", "/bytes/10", "/bytes/20",
                                      "/bytes/10", "/status/404"};
  static const size_t lens[] = {10, 10, 20, 10, 0};
  for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
    CHECK_RC(aioc_http_get(NULL, &r, url(paths[i]), 10), 0);
    CHECK_EQ(r->status, i == 4 ? 404 : 200);
    if (i < 4) CHECK_EQ(r->body_len, lens[i]);
    CHECK(strcmp(r->url, url(paths[i])) == 0);
    aioc_http_response_free(r);
  }
  /* The URL is parsed afresh for each new one: a reference relative to
   * the handle's last URL is not resolved against it, and the response
   * names the URL normalised as libcurl does. */
  CHECK_RC(aioc_http_get(NULL, &r, "/bytes/10", 10), -EINVAL);
  CHECK(strstr(aioc_error_message(), "/bytes/10") != NULL);
  char bare[128];
  snprintf(bare, sizeof bare, "%s", url(""));
  CHECK_RC(aioc_http_get(NULL, &r, bare, 10), 0);
  CHECK_STR(r->url, url("/"));
  aioc_http_response_free(r);
  unserve();
  return 0;
}
TEST(reused_handles_forget_options) {
  CHECK_RC(run_main_real(reuse, NULL, NULL), 0);
}

static int redirects(void *arg, void **res) {
  (void)arg, (void)res;
  serve();
  aioc_http_response *r = (void *)1;
  CHECK_RC(aioc_http_get(NULL, &r, url("/redirect-loop"), 10), -ELOOP);
  CHECK(r == NULL);
  CHECK(strstr(aioc_error_message(), "/redirect-loop") != NULL);
  CHECK_RC(aioc_http_request(NULL, &r, url("/redirect-loop"),
                             &(aioc_http_options){.max_redirects = -1}, 10),
           0);
  CHECK_EQ(r->status, 302);
  CHECK(aioc_http_header_get(r, "Location") != NULL);
  aioc_http_response_free(r);
  CHECK_RC(aioc_http_request(NULL, &r, url("/redirect-loop"),
                             &(aioc_http_options){.max_redirects = 3}, 10),
           -ELOOP);
  httpd_stats st;
  httpd_get_stats(srv, &st);
  CHECK_EQ(st.requests, 11 + 1 + 4); /* 10 followed, 0, 3 followed */
  unserve();
  return 0;
}
TEST(redirect_loop) { CHECK_RC(run_main_real(redirects, NULL, NULL), 0); }

/* ---- bad input and faults --------------------------------------------- */

static int bad_input_main(void *arg, void **res) {
  (void)arg, (void)res;
  aioc_http_response *r;
  CHECK_RC(aioc_http_get(NULL, &r, "htp:/nothing", 10), -EINVAL);
  CHECK(strstr(aioc_error_message(), "htp") != NULL);
  CHECK_RC(aioc_http_get(NULL, &r, "http://", 10), -EINVAL);
  CHECK_RC(aioc_http_get(NULL, &r, NULL, 10), -EINVAL);
  CHECK_RC(aioc_http_get(NULL, NULL, "http://127.0.0.1:1/", 10), -EINVAL);
  CHECK_RC(aioc_http_get(NULL, &r, "http://127.0.0.1:1/", -1), -EINVAL);
  CHECK_RC(aioc_http_get(NULL, &r, "http://127.0.0.1:1/", NAN), -EINVAL);
  CHECK_RC(aioc_http_request(NULL, &r, "http://127.0.0.1:1/",
                             &(aioc_http_options){.between = -1}, 10),
           -EINVAL);
  CHECK_RC(aioc_http_request(NULL, &r, "http://127.0.0.1:1/",
                             &(aioc_http_options){.body_len = 3}, 10),
           -EINVAL);
  CHECK_RC(aioc_http_request(NULL, &r, "http://127.0.0.1:1/",
                             &(aioc_http_options){.version = 99}, 10),
           -EINVAL);
  CHECK_RC(aioc_http_post_json(NULL, &r, "http://127.0.0.1:1/", NULL, 10),
           -EINVAL);
  aioc_iter *it;
  CHECK_RC(aioc_http_open(NULL, NULL, &it, "http://127.0.0.1:1/", NULL, 1),
           -EINVAL);
  CHECK_EQ(running(), 0);
  return 0;
}
TEST(bad_input) { CHECK_RC(run_main_real(bad_input_main, NULL, NULL), 0); }

TEST(outside_a_task) {
  aioc_loop *loop = test_loop(0);
  aioc_http_response *r = (void *)1;
  CHECK_RC(aioc_http_get(NULL, &r, "http://127.0.0.1:1/", 1), AIOC_ENOTASK);
  CHECK(r == NULL);
  aioc_http_session *s;
  CHECK_RC(aioc_http_session_new(&s, NULL, NULL), 0);
  aioc_http_session_free(s);
  CHECK_RC(aioc_http_session_new(&s, NULL,
                                 &(aioc_http_options){.timeout = NAN}),
           -EINVAL);
  CLOSE_CLEAN(loop);
}

static int refused(void *arg, void **res) {
  (void)arg, (void)res;
  /* a port nobody listens on: bind one and close it */
  serve();
  int port = httpd_port(srv);
  unserve();
  char u[64];
  snprintf(u, sizeof u, "http://127.0.0.1:%d/x", port);
  aioc_http_response *r;
  CHECK_RC(aioc_http_get(NULL, &r, u, 10), -ECONNREFUSED);
  CHECK(strstr(aioc_error_message(), u) != NULL);
  CHECK(strstr(aioc_error_message(), "onnect") != NULL);
  return 0;
}
TEST(connection_refused) { CHECK_RC(run_main_real(refused, NULL, NULL), 0); }

static int noname(void *arg, void **res) {
  (void)arg, (void)res;
  aioc_http_response *r;
  /* RFC 6761: .invalid names never resolve */
  int rc = aioc_http_request(NULL, &r, "http://no-way-this-is-going-to-work.invalid/json",
                             &(aioc_http_options){.connect_timeout = 20}, 30);
  CHECK_RC(rc, AIOC_ENONAME);
  CHECK(strstr(aioc_error_message(), "resolve") != NULL);
  return 0;
}
TEST(unresolvable_host) { CHECK_RC(run_main_real(noname, NULL, NULL), 0); }

static int faults_main(void *arg, void **res) {
  (void)arg, (void)res;
  serve();
  aioc_http_response *r;
  CHECK_RC(aioc_http_get(NULL, &r, url("/close-mid-body"), 10), AIOC_EINCOMPLETE);
  CHECK(strstr(aioc_error_message(), "/close-mid-body") != NULL);
  CHECK_RC(aioc_http_get(NULL, &r, url("/reset"), 10), -ECONNRESET);
  /* a stall longer than `between` */
  CHECK_RC(aioc_http_request(NULL, &r, url("/stall/100/3000"),
                             &(aioc_http_options){.between = 0.3}, 10),
           -ETIMEDOUT);
  CHECK(strstr(aioc_error_message(), "nothing received") != NULL);
  /* a stall shorter than `between` */
  CHECK_RC(aioc_http_request(NULL, &r, url("/stall/100/100"),
                             &(aioc_http_options){.between = 5}, 10),
           0);
  CHECK_EQ(r->body_len, 200);
  aioc_http_response_free(r);
  /* the body cap: announced by Content-Length, and chunked */
  CHECK_RC(aioc_http_request(NULL, &r, url("/bytes/100000"),
                             &(aioc_http_options){.max_body = 1000}, 10),
           -EMSGSIZE);
  CHECK_RC(aioc_http_request(NULL, &r, url("/drip/10/1"),
                             &(aioc_http_options){.max_body = 2048}, 10),
           -EMSGSIZE);
  CHECK_RC(aioc_http_request(NULL, &r, url("/drip/2/1"),
                             &(aioc_http_options){.max_body = 2048}, 10),
           0);
  CHECK_EQ(r->body_len, 2048);
  aioc_http_response_free(r);
  /* libcurl's whole-transfer timeout */
  CHECK_RC(aioc_http_request(NULL, &r, url("/delay/3000"),
                             &(aioc_http_options){.timeout = 0.2}, 10),
           -ETIMEDOUT);
  CHECK_EQ(running(), 0);
  unserve();
  return 0;
}
TEST(faults) { CHECK_RC(run_main_real(faults_main, NULL, NULL), 0); }

/* ---- giving up --------------------------------------------------------- */

static int call_timeout(void *arg, void **res) {
  (void)arg, (void)res;
  serve();
  aioc_http_response *r;
  CHECK_RC(aioc_http_get(NULL, &r, url("/delay/5000"), 0.2), -ETIMEDOUT);
  CHECK_EQ(running(), 0);
  wait_aborted(1); /* the server saw the connection go */
  /* a deadline in scope */
  aioc_scope *sc;
  CHECK_RC(aioc_timeout_enter(&sc, 0.2), 0);
  CHECK_RC(aioc_http_get(NULL, &r, url("/delay/5000"), AIOC_FOREVER), -ETIMEDOUT);
  if (aioc_scope_exit(sc)) {}
  aioc_scope_free(sc);
  CHECK_EQ(running(), 0);
  wait_aborted(2);
  unserve();
  return 0;
}
TEST(timeout_removes_the_transfer) {
  CHECK_RC(run_main_real(call_timeout, NULL, NULL), 0);
}

static int get_then_report(void *arg, void **res) {
  (void)res;
  aioc_http_response *r;
  int rc = aioc_http_get(NULL, &r, arg, AIOC_FOREVER);
  if (rc == 0) aioc_http_response_free(r);
  return rc;
}

static int open_then_read(void *arg, void **res) {
  (void)res;
  aioc_http_response *r;
  aioc_iter *it;
  int rc = aioc_http_open(NULL, &r, &it, arg, NULL, AIOC_FOREVER);
  if (rc < 0) return rc;
  void *item;
  while ((rc = aioc_iter_next(it, &item, AIOC_FOREVER)) == 0) {}
  aioc_iter_free(it);
  aioc_http_response_free(r);
  return rc;
}

static int cancel_stages(void *arg, void **res) {
  (void)arg, (void)res;
  serve();
  /* before it starts */
  aioc_task *t;
  CHECK_RC(aioc_spawn(&t, get_then_report, (void *)url("/delay/5000")), 0);
  aioc_task_cancel(t, NULL);
  CHECK_RC(aioc_await(aioc_task_future(t), NULL), -ECANCELED);
  aioc_task_unref(t);
  CHECK_EQ(httpd_requests(srv), 0);
  /* waiting for the response */
  CHECK_RC(aioc_spawn(&t, get_then_report, (void *)url("/delay/5000")), 0);
  CHECK_RC(aioc_sleep(0.2), 0);
  CHECK_EQ(running(), 1);
  aioc_task_cancel(t, NULL);
  CHECK_RC(aioc_await(aioc_task_future(t), NULL), -ECANCELED);
  aioc_task_unref(t);
  CHECK_EQ(running(), 0);
  wait_aborted(1);
  /* mid-body, in a whole-body request */
  CHECK_RC(aioc_spawn(&t, get_then_report, (void *)url("/drip/100/50")), 0);
  CHECK_RC(aioc_sleep(0.3), 0);
  aioc_task_cancel(t, NULL);
  CHECK_RC(aioc_await(aioc_task_future(t), NULL), -ECANCELED);
  aioc_task_unref(t);
  CHECK_EQ(running(), 0);
  wait_aborted(2);
  /* waiting for the headers of a streamed body, then mid-body */
  CHECK_RC(aioc_spawn(&t, open_then_read, (void *)url("/delay/5000")), 0);
  CHECK_RC(aioc_sleep(0.2), 0);
  aioc_task_cancel(t, NULL);
  CHECK_RC(aioc_await(aioc_task_future(t), NULL), -ECANCELED);
  aioc_task_unref(t);
  wait_aborted(3);
  CHECK_RC(aioc_spawn(&t, open_then_read, (void *)url("/drip/100/50")), 0);
  CHECK_RC(aioc_sleep(0.3), 0);
  aioc_task_cancel(t, NULL);
  CHECK_RC(aioc_await(aioc_task_future(t), NULL), -ECANCELED);
  aioc_task_unref(t);
  CHECK_EQ(running(), 0);
  wait_aborted(4);
  unserve();
  return 0;
}
TEST(cancellation_at_every_stage) {
  CHECK_RC(run_main_real(cancel_stages, NULL, NULL), 0);
}

/* ---- streamed bodies --------------------------------------------------- */

static int stream_chunks_main(void *arg, void **res) {
  (void)arg, (void)res;
  serve();
  aioc_http_response *r;
  aioc_iter *it;
  CHECK_RC(aioc_http_open(NULL, &r, &it, url("/drip/5/50"), NULL, 10), 0);
  CHECK_EQ(r->status, 200);
  CHECK_EQ(r->body_len, 0);
  CHECK_STR(aioc_http_header_get(r, "Transfer-Encoding"), "chunked");
  size_t total = 0, n = 0;
  void *item;
  int rc;
  while ((rc = aioc_iter_next(it, &item, 10)) == 0) {
    const aioc_bytes *b = item;
    check_pattern(b->data, b->len, total);
    total += b->len;
    n++;
  }
  CHECK_RC(rc, AIOC_EXHAUSTED);
  CHECK_RC(aioc_iter_next(it, &item, 10), AIOC_EXHAUSTED);
  CHECK_EQ(total, 5 * 1024);
  CHECK_INT(n, >=, 2); /* they came apart */
  aioc_iter_free(it);
  aioc_http_response_free(r);
  unserve();
  return 0;
}
TEST(stream_chunks) { CHECK_RC(run_main_real(stream_chunks_main, NULL, NULL), 0); }

/* Seed 000's timeout between items on an HTTP body: the late chunk still
 * comes after -ETIMEDOUT, nothing lost. */
static int stream_timeout(void *arg, void **res) {
  (void)arg, (void)res;
  serve();
  aioc_http_response *r;
  aioc_iter *it;
  CHECK_RC(aioc_http_open(NULL, &r, &it, url("/stall/100/800"), NULL, 10), 0);
  void *item;
  size_t total = 0;
  CHECK_RC(aioc_iter_next(it, &item, 5), 0);
  total += ((aioc_bytes *)item)->len;
  int timeouts = 0, rc;
  while ((rc = aioc_iter_next(it, &item, 0.1)) != AIOC_EXHAUSTED) {
    if (rc == -ETIMEDOUT) {
      timeouts++;
      continue;
    }
    CHECK_RC(rc, 0);
    const aioc_bytes *b = item;
    check_pattern(b->data, b->len, total);
    total += b->len;
  }
  CHECK_INT(timeouts, >=, 1);
  CHECK_EQ(total, 200);
  aioc_iter_free(it);
  aioc_http_response_free(r);
  /* the failure comes after the chunks before it */
  CHECK_RC(aioc_http_open(NULL, &r, &it, url("/close-mid-body"), NULL, 10), 0);
  total = 0;
  while ((rc = aioc_iter_next(it, &item, 10)) == 0)
    total += ((aioc_bytes *)item)->len;
  CHECK_RC(rc, AIOC_EINCOMPLETE);
  CHECK_EQ(total, 100);
  aioc_iter_free(it);
  aioc_http_response_free(r);
  unserve();
  return 0;
}
TEST(stream_timeout_between_chunks) {
  CHECK_RC(run_main_real(stream_timeout, NULL, NULL), 0);
}

/* A consumer that falls behind pauses the transfer: what waits for it
 * stays near `buffer`, and nothing is lost. */
static int flow_control(void *arg, void **res) {
  (void)arg, (void)res;
  serve();
  enum { TOTAL = 32 << 20, BUF = 16 << 10 };
  aioc_http_response *r;
  aioc_iter *it;
  char path[64];
  snprintf(path, sizeof path, "/bytes/%d", TOTAL);
  CHECK_RC(aioc_http_open(NULL, &r, &it, url(path),
                          &(aioc_http_options){.buffer = BUF, .between = 0.5},
                          10),
           0);
  CHECK_RC(aioc_sleep(1.0), 0); /* behind: longer than `between` too */
  httpd_stats st;
  httpd_get_stats(srv, &st);
  CHECK_EQ(st.completed, 0); /* the server is held back by TCP */
  size_t total = 0, biggest = 0;
  void *item;
  int rc;
  while ((rc = aioc_iter_next(it, &item, 10)) == 0) {
    const aioc_bytes *b = item;
    if (b->len > biggest) biggest = b->len;
    check_pattern(b->data, b->len, total);
    total += b->len;
  }
  CHECK_RC(rc, AIOC_EXHAUSTED);
  CHECK_EQ(total, TOTAL);
  CHECK_INT(biggest, <=, BUF + CURL_MAX_WRITE_SIZE);
  aioc_iter_free(it);
  aioc_http_response_free(r);
  unserve();
  return 0;
}
TEST(flow_control_bounds_memory) {
  CHECK_RC(run_main_real(flow_control, NULL, NULL), 0);
}

static int early_close(void *arg, void **res) {
  (void)arg, (void)res;
  serve();
  aioc_http_response *r;
  aioc_iter *it;
  CHECK_RC(aioc_http_open(NULL, &r, &it, url("/bytes/50000000"), NULL, 10), 0);
  void *item;
  CHECK_RC(aioc_iter_next(it, &item, 10), 0);
  CHECK_EQ(running(), 1);
  CHECK_RC(aioc_iter_close(it), 0);
  CHECK_EQ(running(), 0);
  CHECK_RC(aioc_iter_next(it, &item, 10), AIOC_EXHAUSTED);
  aioc_iter_free(it);
  aioc_http_response_free(r);
  wait_aborted(1);
  unserve();
  return 0;
}
TEST(closing_the_body_removes_the_transfer) {
  CHECK_RC(run_main_real(early_close, NULL, NULL), 0);
}

/* The loop closes under pending requests (one waiting for its response,
 * one for its headers): nothing leaks, no hang. The server is a socket
 * that listens and never accepts. */
static int hang_get(void *arg, void **res) {
  (void)res;
  aioc_http_response *r;
  return aioc_http_get(NULL, &r, arg, AIOC_FOREVER);
}

static int hang_open(void *arg, void **res) {
  (void)res;
  aioc_http_response *r;
  aioc_iter *it;
  return aioc_http_open(NULL, &r, &it, arg, NULL, AIOC_FOREVER);
}

static int start_and_stop(void *arg, void **res) {
  (void)res;
  aioc_task **t = arg;
  CHECK_RC(aioc_spawn(&t[0], hang_get, (void *)url("/a")), 0);
  CHECK_RC(aioc_spawn(&t[1], hang_open, (void *)url("/b")), 0);
  for (int i = 0; i < 100 && running() < 2; i++) CHECK_RC(aioc_sleep(0.01), 0);
  CHECK_RC(aioc_sleep(0.1), 0);
  CHECK_EQ(running(), 2);
  return 0;
}

TEST(loop_closes_under_requests) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof sa;
  CHECK(fd >= 0);
  CHECK_EQ(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  CHECK_EQ(listen(fd, 16), 0);
  CHECK_EQ(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
  snprintf(base, sizeof base, "http://127.0.0.1:%d", ntohs(sa.sin_port));
  aioc_loop *loop = test_loop(0);
  aioc_loop_set_report_handler(loop, count_report, NULL);
  g_reports = 0;
  aioc_task *t[2], *m;
  CHECK_RC(aioc_spawn_ex(&m, loop, start_and_stop, t, NULL), 0);
  CHECK_RC(aioc_loop_run_until_complete(loop, aioc_task_future(m)), 0);
  CHECK_RC(aioc_future_result(aioc_task_future(m), NULL), 0);
  aioc_task_unref(m);
  aioc_task_unref(t[0]);
  aioc_task_unref(t[1]);
  CHECK_RC(aioc_loop_close(loop), 0);
  aioc_loop_free(loop);
  CHECK_EQ(g_reports, 2); /* the two pending tasks */
  close(fd);
}

/* ---- nginx: TLS, HTTP/2, certificates ---------------------------------- */

static nginx_env ng;

static int tls(void *arg, void **res) {
  (void)arg, (void)res;
  char u[256];
  aioc_http_response *r;
  aioc_http_session *s;
  CHECK_RC(aioc_http_session_new(&s, NULL,
                                 &(aioc_http_options){.ca_file = ng.ca_file}),
           0);
  snprintf(u, sizeof u, "https://localhost:%d/1k", ng.https_port);
  CHECK_RC(aioc_http_get(s, &r, u, 30), 0);
  CHECK_EQ(r->status, 200);
  CHECK_EQ(r->version, 20);
  CHECK_EQ(r->body_len, 1024);
  check_pattern(r->body, r->body_len, 0);
  aioc_http_response_free(r);
  CHECK_RC(aioc_http_request(s, &r, u,
                             &(aioc_http_options){.version = AIOC_HTTP_VERSION_1_1},
                             30),
           0);
  CHECK_EQ(r->version, 11);
  aioc_http_response_free(r);
  snprintf(u, sizeof u, "https://localhost:%d/1m", ng.https_port);
  CHECK_RC(aioc_http_get(s, &r, u, 30), 0);
  CHECK_EQ(r->body_len, 1 << 20);
  check_pattern(r->body, r->body_len, 0);
  aioc_http_response_free(r);
  /* the bad certificates, each with its reason */
  struct {
    int port;
    const char *why;
  } bad[] = {{ng.https_expired_port, "expired"},
             {ng.https_selfsigned_port, "self"},
             {ng.https_wronghost_port, "localhost"}};
  for (size_t i = 0; i < 3; i++) {
    snprintf(u, sizeof u, "https://localhost:%d/1k", bad[i].port);
    CHECK_RC(aioc_http_get(s, &r, u, 30), AIOC_ETLS);
    CHECK(strstr(aioc_error_message(), bad[i].why) != NULL);
  }
  /* no CA given: the system's store does not know the test CA */
  snprintf(u, sizeof u, "https://localhost:%d/1k", ng.https_port);
  CHECK_RC(aioc_http_get(NULL, &r, u, 30), AIOC_ETLS);
  /* insecure accepts the self-signed one */
  snprintf(u, sizeof u, "https://localhost:%d/1k", ng.https_selfsigned_port);
  CHECK_RC(aioc_http_request(NULL, &r, u, &(aioc_http_options){.insecure = 1}, 30), 0);
  CHECK_EQ(r->status, 200);
  aioc_http_response_free(r);
  CHECK_RC(aioc_http_get(NULL, &r, u, 30), AIOC_ETLS); /* not kept */
  /* a CA file given once is not kept either */
  snprintf(u, sizeof u, "https://localhost:%d/1k", ng.https_port);
  CHECK_RC(aioc_http_request(NULL, &r, u,
                             &(aioc_http_options){.ca_file = ng.ca_file}, 30),
           0);
  aioc_http_response_free(r);
  CHECK_RC(aioc_http_get(NULL, &r, u, 30), AIOC_ETLS);
  /* a plaintext server on a TLS port */
  snprintf(u, sizeof u, "https://127.0.0.1:%d/1k", ng.http_port);
  CHECK_RC(aioc_http_get(s, &r, u, 30), AIOC_ETLS);
  /* plain HTTP/1.1 from nginx, with a redirect */
  snprintf(u, sizeof u, "http://127.0.0.1:%d/64k", ng.http_port);
  CHECK_RC(aioc_http_get(s, &r, u, 30), 0);
  CHECK_EQ(r->version, 11);
  CHECK_EQ(r->body_len, 64 << 10);
  aioc_http_response_free(r);
  snprintf(u, sizeof u, "http://127.0.0.1:%d/redir", ng.http_port);
  CHECK_RC(aioc_http_get(s, &r, u, 30), 0);
  CHECK_EQ(r->status, 200);
  CHECK(strstr(r->url, "/hello.txt") != NULL);
  aioc_http_response_free(r);
  aioc_http_session_free(s);
  return 0;
}

TEST(nginx_tls_http2_certificates) {
  int rc = nginx_env_load(&ng);
  if (rc == -ENOENT) {
    printf("skipped: no nginx in this run\n");
    return;
  }
  CHECK_RC(rc, 0);
  CHECK_RC(run_main_real(tls, NULL, NULL), 0);
}

CHECK_MAIN(120)
