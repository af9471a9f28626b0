/* The test HTTP/1.1 server (httpd.h): one aioc server, a handler task per
 * connection reading requests into a buffer of its own, a table of
 * routes. Everything runs on one loop, so the counters need no locks. */
#define _GNU_SOURCE /* strcasestr */
#include "httpd.h"

#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#define HEAD_MAX (16 * 1024)        /* request line and headers */
#define BODY_MAX (16 * 1024 * 1024) /* a request's body */
#define PIECE (64 * 1024)           /* bytes written per write + drain */

struct httpd {
  aioc_server *srv;
  double idle;
  char ip[64];
  double date_base, t0; /* the fake clock's reading and aioc_time() then */
  int verbose;
  int refs; /* the owner's, and one per handler running */
  int closed;
  httpd_stats st;
  char pattern[PIECE + 26]; /* httpd_byte(0...) */
};

typedef struct conn {
  httpd *h;
  aioc_stream *s;
  char buf[HEAD_MAX]; /* bytes read and not yet used */
  size_t len;
} conn;

typedef struct req {
  char method[16];
  char *target; /* the path, in work */
  char *query;  /* after '?' (in work), or NULL */
  int http10;
  int keep_alive;
  long long content_length; /* -1: none */
  int chunked;
  int expect_continue;
  char content_type[128];
  char *body; /* malloc'ed, NUL-terminated */
  size_t body_len;
  size_t head_len;
  char head[HEAD_MAX]; /* the request's head as it came, NUL-terminated */
  char work[HEAD_MAX]; /* the same, cut up by parse_head() */
} req;

/* What a route returns besides a failure: keep the connection or not. */
enum { KEEP = 0, CLOSE = 1 };

static void release(httpd *h) {
  if (--h->refs == 0) free(h);
}

/* ---- reading ------------------------------------------------------------ */

/* Reads more into c->buf, within the idle timeout. Returns the count (0
 * at end of file) or a code. */
static int fill(conn *c) {
  if (c->len == sizeof c->buf) return -EMSGSIZE;
  size_t n = 0;
  int rc = aioc_stream_read(c->s, c->buf + c->len, sizeof c->buf - c->len, &n,
                            c->h->idle);
  if (rc < 0) return rc;
  c->len += n;
  return (int)n;
}

static void consume(conn *c, size_t n) {
  memmove(c->buf, c->buf + n, c->len - n);
  c->len -= n;
}

/* Waits ms milliseconds while reading the socket, so that a client that
 * goes away is noticed at once (bytes that come meanwhile, a pipelined
 * request, are kept). Returns 0, -ECONNRESET (end of file or reset: the
 * client is gone), -ECANCELED. */
static int pause_ms(conn *c, unsigned long long ms) {
  double deadline = aioc_time() + (double)ms / 1000.0;
  for (;;) {
    double left = deadline - aioc_time();
    if (left <= 0) return 0;
    if (c->len == sizeof c->buf) return aioc_sleep(left);
    size_t n = 0;
    int rc = aioc_stream_read(c->s, c->buf + c->len, sizeof c->buf - c->len,
                              &n, left);
    if (rc == -ETIMEDOUT) return 0;
    if (rc < 0) return rc == -ECANCELED ? rc : -ECONNRESET;
    if (n == 0) return -ECONNRESET;
    c->len += n;
  }
}

/* The end of the head in c->buf (after its empty line), or 0. */
static size_t head_end(const conn *c) {
  for (size_t i = 0; i + 1 < c->len; i++) {
    if (c->buf[i] != '\n') continue;
    if (c->buf[i + 1] == '\n') return i + 2;
    if (c->buf[i + 1] == '\r' && i + 2 < c->len && c->buf[i + 2] == '\n')
      return i + 3;
  }
  return 0;
}

static char *trim(char *s) {
  while (*s == ' ' || *s == '\t') s++;
  size_t n = strlen(s);
  while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
    s[--n] = 0;
  return s;
}

/* Parses the head (a copy of it in r->work). Returns 0 or -EPROTO. */
static int parse_head(req *r) {
  memcpy(r->work, r->head, r->head_len + 1);
  char *line = r->work, *next = strchr(line, '\n');
  if (!next) return -EPROTO;
  *next++ = 0;
  char *sp1 = strchr(line, ' ');
  char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
  if (!sp1 || !sp2 || (size_t)(sp1 - line) >= sizeof r->method) return -EPROTO;
  memcpy(r->method, line, (size_t)(sp1 - line));
  r->method[sp1 - line] = 0;
  *sp2 = 0;
  r->target = sp1 + 1;
  if (strncmp(r->target, "http://", 7) == 0) { /* absolute form: a proxy's */
    char *path = strchr(r->target + 7, '/');
    r->target = path ? path : (char *)"/";
  }
  char *version = trim(sp2 + 1);
  if (r->target[0] != '/' || strncmp(version, "HTTP/1.", 7) != 0)
    return -EPROTO;
  r->http10 = strcmp(version, "HTTP/1.0") == 0;
  r->keep_alive = !r->http10;
  r->content_length = -1;
  r->query = strchr(r->target, '?');
  if (r->query) *r->query++ = 0;
  for (line = next; line && *line; line = next) {
    next = strchr(line, '\n');
    if (next) *next++ = 0;
    char *colon = strchr(line, ':');
    if (!colon) {
      if (*trim(line)) return -EPROTO;
      break; /* the empty line */
    }
    *colon = 0;
    char *name = line, *value = trim(colon + 1);
    if (!strcasecmp(name, "Content-Length")) {
      char *end;
      errno = 0;
      long long v = strtoll(value, &end, 10);
      if (errno || end == value || *end || v < 0) return -EPROTO;
      r->content_length = v;
    } else if (!strcasecmp(name, "Transfer-Encoding")) {
      if (strcasestr(value, "chunked")) r->chunked = 1;
    } else if (!strcasecmp(name, "Connection")) {
      if (strcasestr(value, "close")) r->keep_alive = 0;
      else if (strcasestr(value, "keep-alive")) r->keep_alive = 1;
    } else if (!strcasecmp(name, "Expect")) {
      if (!strcasecmp(value, "100-continue")) r->expect_continue = 1;
    } else if (!strcasecmp(name, "Content-Type")) {
      snprintf(r->content_type, sizeof r->content_type, "%s", value);
    }
  }
  return 0;
}

/* Appends n bytes of the body (from c->buf, then the socket) to r->body. */
static int read_body_bytes(conn *c, req *r, size_t n) {
  if (r->body_len + n > BODY_MAX) return -EFBIG;
  char *b = realloc(r->body, r->body_len + n + 1);
  if (!b) return -ENOMEM;
  r->body = b;
  while (n) {
    if (c->len == 0) {
      int rc = fill(c);
      if (rc < 0) return rc;
      if (rc == 0) return -EPROTO;
    }
    size_t k = c->len < n ? c->len : n;
    memcpy(r->body + r->body_len, c->buf, k);
    r->body_len += k;
    consume(c, k);
    n -= k;
  }
  r->body[r->body_len] = 0;
  return 0;
}

/* A line of a chunked body (without its end) into line. */
static int read_line(conn *c, char *line, size_t cap) {
  for (;;) {
    char *nl = memchr(c->buf, '\n', c->len);
    if (nl) {
      size_t n = (size_t)(nl - c->buf) + 1;
      if (n > cap) return -EPROTO;
      memcpy(line, c->buf, n - 1);
      line[n - 1] = 0;
      consume(c, n);
      trim(line);
      return 0;
    }
    if (c->len >= cap) return -EPROTO;
    int rc = fill(c);
    if (rc < 0) return rc;
    if (rc == 0) return -EPROTO;
  }
}

static int read_chunked(conn *c, req *r) {
  char line[256];
  for (;;) {
    int rc = read_line(c, line, sizeof line);
    if (rc < 0) return rc;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(line, &end, 16);
    if (errno || end == line) return -EPROTO;
    if (n == 0) break;
    if (n > BODY_MAX) return -EFBIG;
    if ((rc = read_body_bytes(c, r, (size_t)n)) < 0) return rc;
    if ((rc = read_line(c, line, sizeof line)) < 0) return rc;
    if (line[0]) return -EPROTO;
  }
  for (;;) { /* trailers, up to the empty line */
    int rc = read_line(c, line, sizeof line);
    if (rc < 0) return rc;
    if (!line[0]) return 0;
  }
}

static int send_bytes(conn *c, const void *data, size_t n);

/* Reads the next request. Returns 0; 1 at a clean end (the client closed
 * between requests, or stayed idle too long); -EPROTO (400), -EMSGSIZE
 * (431), -EFBIG (413); another code when the connection failed. */
static int read_request(conn *c, req *r) {
  free(r->body);
  memset(r, 0, offsetof(req, head));
  size_t end;
  while (!(end = head_end(c))) {
    if (c->len == sizeof c->buf) return -EMSGSIZE;
    size_t before = c->len;
    int rc = fill(c);
    if (before == 0 && (rc == 0 || rc == -ETIMEDOUT || rc == -ECONNRESET))
      return 1;
    if (rc < 0) return rc;
    if (rc == 0) return -EPROTO; /* end of file inside a head */
  }
  memcpy(r->head, c->buf, end);
  r->head[end] = 0;
  r->head_len = end;
  consume(c, end);
  int rc = parse_head(r);
  if (rc < 0) return rc;
  if (r->chunked || r->content_length > 0) {
    if (r->content_length > BODY_MAX) return -EFBIG;
    if (r->expect_continue) {
      static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
      if ((rc = send_bytes(c, cont, sizeof cont - 1)) < 0) return rc;
    }
    rc = r->chunked ? read_chunked(c, r)
                    : read_body_bytes(c, r, (size_t)r->content_length);
    if (rc < 0) return rc;
  }
  return 0;
}

/* ---- writing ------------------------------------------------------------ */

static int send_bytes(conn *c, const void *data, size_t n) {
  int rc = aioc_stream_write(c->s, data, n);
  if (rc == 0) rc = aioc_stream_drain(c->s, c->h->idle);
  return rc;
}

/* n bytes of the pattern, starting at byte off of the body. */
static int send_pattern(conn *c, unsigned long long off, unsigned long long n) {
  while (n) {
    size_t k = n < PIECE ? (size_t)n : PIECE;
    int rc = send_bytes(c, c->h->pattern + off % 26, k);
    if (rc < 0) return rc;
    off += k;
    n -= k;
  }
  return 0;
}

static const char *reason(int status) {
  switch (status) {
  case 200: return "OK";
  case 201: return "Created";
  case 204: return "No Content";
  case 301: return "Moved Permanently";
  case 302: return "Found";
  case 304: return "Not Modified";
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 413: return "Content Too Large";
  case 429: return "Too Many Requests";
  case 431: return "Request Header Fields Too Large";
  case 500: return "Internal Server Error";
  case 502: return "Bad Gateway";
  case 503: return "Service Unavailable";
  case 504: return "Gateway Timeout";
  default: return "Status";
  }
}

static void http_date(const httpd *h, char *out, size_t cap) {
  time_t t = h->date_base != 0
                 ? (time_t)(h->date_base + (aioc_time() - h->t0))
                 : time(NULL);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(out, cap, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

/* Sends the status line and headers. length < 0: chunked; extra: more
 * header lines, each ending with "\r\n" (or NULL). */
static int send_head(conn *c, const req *r, int status, const char *ctype,
                     long long length, const char *extra) {
  char date[64], head[1024], len[64] = "";
  http_date(c->h, date, sizeof date);
  if (length < 0)
    snprintf(len, sizeof len, "Transfer-Encoding: chunked\r\n");
  else if (status != 204 && status != 304)
    snprintf(len, sizeof len, "Content-Length: %lld\r\n", length);
  int n = snprintf(head, sizeof head,
                   "HTTP/1.1 %d %s\r\nDate: %s\r\nServer: aioc-test-httpd\r\n"
                   "%s%s%s%s%s%s",
                   status, reason(status), date, ctype ? "Content-Type: " : "",
                   ctype ? ctype : "", ctype ? "\r\n" : "", len,
                   !r->keep_alive ? "Connection: close\r\n"
                   : r->http10    ? "Connection: keep-alive\r\n"
                                  : "",
                   extra ? extra : "");
  if (n < 0 || (size_t)n + 3 > sizeof head) return -EOVERFLOW;
  memcpy(head + n, "\r\n", 3);
  return send_bytes(c, head, (size_t)n + 2);
}

static int is_head(const req *r) { return strcmp(r->method, "HEAD") == 0; }

/* A whole response with a body in memory. */
static int respond(conn *c, const req *r, int status, const char *ctype,
                   const char *body, size_t n) {
  int rc = send_head(c, r, status, ctype, (long long)n, NULL);
  if (rc == 0 && n && !is_head(r)) rc = send_bytes(c, body, n);
  return rc < 0 ? rc : KEEP;
}

static int respond_text(conn *c, const req *r, int status, const char *fmt,
                        ...) __attribute__((format(printf, 4, 5)));
static int respond_text(conn *c, const req *r, int status, const char *fmt,
                        ...) {
  char body[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(body, sizeof body, fmt, ap);
  va_end(ap);
  if (n < 0) n = 0;
  if ((size_t)n >= sizeof body) n = sizeof body - 1;
  return respond(c, r, status, "text/plain", body, (size_t)n);
}

/* ---- routes ------------------------------------------------------------- */

/* Parses a decimal number at *p, advancing it. */
static int number(const char **p, unsigned long long *v) {
  if (!isdigit((unsigned char)**p)) return 0;
  char *end;
  errno = 0;
  *v = strtoull(*p, &end, 10);
  if (errno) return 0;
  *p = end;
  return 1;
}

/* "PREFIX<n>" exactly: 1 with *a. */
static int match1(const char *path, const char *prefix,
                  unsigned long long *a) {
  size_t k = strlen(prefix);
  if (strncmp(path, prefix, k) != 0) return 0;
  const char *p = path + k;
  return number(&p, a) && *p == 0;
}

/* "PREFIX<n>/<m>" exactly: 1 with *a and *b. */
static int match2(const char *path, const char *prefix, unsigned long long *a,
                  unsigned long long *b) {
  size_t k = strlen(prefix);
  if (strncmp(path, prefix, k) != 0) return 0;
  const char *p = path + k;
  if (!number(&p, a) || *p++ != '/') return 0;
  return number(&p, b) && *p == 0;
}

/* The number of the query parameter name, or def. */
static unsigned long long query_num(const req *r, const char *name,
                                    unsigned long long def) {
  size_t k = strlen(name);
  for (const char *q = r->query; q && *q;) {
    if (!strncmp(q, name, k) && q[k] == '=') {
      const char *p = q + k + 1;
      unsigned long long v;
      return number(&p, &v) ? v : def;
    }
    q = strchr(q, '&');
    if (q) q++;
  }
  return def;
}

static int route_drip(conn *c, const req *r, unsigned long long n,
                      unsigned long long ms) {
  int rc = send_head(c, r, 200, "application/octet-stream", -1, NULL);
  if (rc < 0 || is_head(r)) return rc;
  for (unsigned long long i = 0; i < n; i++) {
    if (i && (rc = pause_ms(c, ms)) < 0) return rc;
    if ((rc = send_bytes(c, "400\r\n", 5)) < 0 ||
        (rc = send_pattern(c, i * 1024, 1024)) < 0 ||
        (rc = send_bytes(c, "\r\n", 2)) < 0)
      return rc;
  }
  rc = send_bytes(c, "0\r\n\r\n", 5);
  return rc < 0 ? rc : KEEP;
}

static int route_stall(conn *c, const req *r, unsigned long long n,
                       unsigned long long ms) {
  unsigned long long total = query_num(r, "total", 2 * n);
  if (total < n) total = n;
  int rc = send_head(c, r, 200, "application/octet-stream", (long long)total,
                     NULL);
  if (rc < 0 || is_head(r)) return rc;
  if ((rc = send_pattern(c, 0, n)) < 0 || (rc = pause_ms(c, ms)) < 0 ||
      (rc = send_pattern(c, n, total - n)) < 0)
    return rc;
  return KEEP;
}

static const char events_json[] =
    "[{\"id\": \"1\", \"type\": \"PushEvent\", \"actor\": {\"login\": "
    "\"octocat\"}, \"repo\": {\"name\": \"octocat/hello-world\"}}, "
    "{\"id\": \"2\", \"type\": \"WatchEvent\", \"actor\": {\"login\": "
    "\"hubot\"}, \"repo\": {\"name\": \"octocat/spoon-knife\"}}]";

/* Answers r. Returns KEEP, CLOSE, or a code when the client went away. */
static int route(conn *c, req *r) {
  const char *p = r->target;
  unsigned long long a, b;
  int rc;
  unsigned long long delay = query_num(r, "delay", 0);
  if (match1(p, "/bytes/", &a)) {
    if ((rc = send_head(c, r, 200, "application/octet-stream", (long long)a,
                        NULL)) < 0)
      return rc;
    if (!is_head(r) && (rc = send_pattern(c, 0, a)) < 0) return rc;
    return KEEP;
  }
  if (match1(p, "/delay/", &a)) {
    if ((rc = pause_ms(c, a)) < 0) return rc;
    char body[64];
    int n = snprintf(body, sizeof body, "{\"delay\": %llu}", a);
    return respond(c, r, 200, "application/json", body, (size_t)n);
  }
  if (match2(p, "/drip/", &a, &b)) return route_drip(c, r, a, b);
  if (match2(p, "/stall/", &a, &b)) return route_stall(c, r, a, b);
  if (!strcmp(p, "/close-mid-body")) {
    if ((rc = send_head(c, r, 200, "application/octet-stream", 1000, NULL)) <
            0 ||
        (rc = send_pattern(c, 0, 100)) < 0)
      return rc;
    return CLOSE;
  }
  if (!strcmp(p, "/reset")) {
    if ((rc = send_head(c, r, 200, "application/octet-stream", 1000, NULL)) <
            0 ||
        (rc = pause_ms(c, 20)) < 0)
      return rc;
    struct linger l = {.l_onoff = 1, .l_linger = 0};
    setsockopt(aioc_stream_fd(c->s), SOL_SOCKET, SO_LINGER, &l, sizeof l);
    aioc_stream_free(c->s);
    c->s = NULL;
    return CLOSE;
  }
  if (!strcmp(p, "/close")) {
    if ((rc = send_head(c, r, 200, "text/plain", 2, "Connection: close\r\n")) <
            0 ||
        (!is_head(r) && (rc = send_bytes(c, "ok", 2)) < 0))
      return rc;
    return CLOSE;
  }
  if (match1(p, "/close-after/", &a)) {
    if ((rc = respond(c, r, 200, "text/plain", "ok", 2)) < 0) return rc;
    /* an idle connection the server closes (a request sent meanwhile is
     * not answered) */
    rc = pause_ms(c, a);
    return rc < 0 ? rc : CLOSE;
  }
  if (!strcmp(p, "/json/ip") || !strcmp(p, "/json/query")) {
    if ((rc = pause_ms(c, delay)) < 0) return rc;
    char body[128];
    int n = snprintf(body, sizeof body, "{\"%s\": \"%s\"}",
                     p[6] == 'i' ? "ip" : "query", c->h->ip);
    return respond(c, r, 200, "application/json", body, (size_t)n);
  }
  if (!strcmp(p, "/events")) {
    if ((rc = pause_ms(c, delay)) < 0) return rc;
    return respond(c, r, 200, "application/json; charset=utf-8", events_json,
                   sizeof events_json - 1);
  }
  if (!strcmp(p, "/redirect-loop")) {
    static const char body[] = "redirecting to /redirect-loop\n";
    if ((rc = send_head(c, r, 302, "text/plain", sizeof body - 1,
                        "Location: /redirect-loop\r\n")) < 0)
      return rc;
    if (!is_head(r) && (rc = send_bytes(c, body, sizeof body - 1)) < 0)
      return rc;
    return KEEP;
  }
  if (!strcmp(p, "/echo"))
    return respond(c, r, 200,
                   r->content_type[0] ? r->content_type
                                      : "application/octet-stream",
                   r->body, r->body_len);
  if (!strcmp(p, "/headers"))
    return respond(c, r, 200, "text/plain", r->head, r->head_len);
  if (!strcmp(p, "/cookie") && r->query && strchr(r->query, '=') &&
      strlen(r->query) < 200 && !strpbrk(r->query, "\r\n;")) {
    char set[256];
    snprintf(set, sizeof set, "Set-Cookie: %s; Path=/\r\n", r->query);
    static const char body[] = "cookie set\n";
    if ((rc = send_head(c, r, 200, "text/plain", sizeof body - 1, set)) < 0)
      return rc;
    if (!is_head(r) && (rc = send_bytes(c, body, sizeof body - 1)) < 0)
      return rc;
    return KEEP;
  }
  if (match1(p, "/status/", &a) && a >= 200 && a <= 599) {
    if (a == 204 || a == 304) {
      rc = send_head(c, r, (int)a, NULL, 0, NULL);
      return rc < 0 ? rc : KEEP;
    }
    return respond_text(c, r, (int)a, "status %llu\n", a);
  }
  return respond_text(c, r, 404, "not found: %s\n", p);
}

/* ---- connections -------------------------------------------------------- */

static int serve(void *arg, aioc_stream *s) {
  httpd *h = arg;
  conn *c = malloc(sizeof *c);
  req *r = calloc(1, sizeof *r);
  h->refs++;
  h->st.connections++;
  h->st.open++;
  if (!c || !r) goto out;
  c->h = h;
  c->s = s;
  c->len = 0;
  for (;;) {
    int rc = read_request(c, r);
    if (rc == 1) break;
    int bad = rc == -EPROTO ? 400 : rc == -EMSGSIZE ? 431
                                  : rc == -EFBIG    ? 413
                                                    : 0;
    if (rc < 0 && !bad) break; /* the connection failed, or cancelled */
    h->st.requests++;
    if (bad) {
      r->keep_alive = 0;
      rc = respond_text(c, r, bad, "bad request\n");
      if (h->verbose) fprintf(stderr, "httpd: bad request -> %d\n", bad);
      if (rc < 0) h->st.aborted++;
      else h->st.completed++;
      break;
    }
    rc = route(c, r);
    if (h->verbose)
      fprintf(stderr, "httpd: %s %s%s%s -> %s\n", r->method, r->target,
              r->query ? "?" : "", r->query ? r->query : "",
              rc < 0 ? aioc_err_name(rc) : "sent");
    if (rc < 0) {
      h->st.aborted++;
      break;
    }
    h->st.completed++;
    if (rc == CLOSE || !r->keep_alive) break;
  }
out:
  /* Unless /reset freed it, the server closes the stream now, gracefully
   * (what was written still goes out). */
  if (r) free(r->body);
  free(r);
  free(c);
  h->st.open--;
  release(h);
  return 0;
}

/* ---- the server --------------------------------------------------------- */

int httpd_start(httpd **out, const httpd_options *opts) {
  if (!out) return -EINVAL;
  *out = NULL;
  httpd_options o = opts ? *opts : (httpd_options){0};
  httpd *h = calloc(1, sizeof *h);
  if (!h) return -ENOMEM;
  h->idle = o.idle_timeout > 0 ? o.idle_timeout : 30;
  snprintf(h->ip, sizeof h->ip, "%s", o.ip ? o.ip : "127.0.0.1");
  h->date_base = o.date_base;
  h->t0 = aioc_time();
  h->verbose = o.verbose;
  h->refs = 1;
  for (size_t i = 0; i < sizeof h->pattern; i++) h->pattern[i] = httpd_byte(i);
  int rc = aioc_start_server(&h->srv, o.host ? o.host : "127.0.0.1", o.port,
                             serve, h, NULL);
  if (rc < 0) {
    free(h);
    return rc;
  }
  *out = h;
  return 0;
}

int httpd_port(const httpd *h) { return h ? aioc_server_port(h->srv) : -EINVAL; }

void httpd_get_stats(const httpd *h, httpd_stats *st) {
  if (h && st) *st = h->st;
}

unsigned long httpd_requests(const httpd *h) { return h ? h->st.requests : 0; }

int httpd_close(httpd *h, double timeout) {
  if (!h) return -EINVAL;
  if (!h->closed) {
    h->closed = 1;
    aioc_server_close(h->srv);
  }
  aioc_server_cancel_connections(h->srv);
  return aioc_server_wait_closed(h->srv, timeout);
}

void httpd_free(httpd *h) {
  if (!h) return;
  aioc_server_free(h->srv);
  h->srv = NULL;
  release(h);
}
