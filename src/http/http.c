/* The HTTP client: libcurl's multi interface driven by the loop.
 *
 * Each loop has one curl multi handle (struct multi, a loop slot), made on
 * first use. libcurl says which sockets to watch (CURLMOPT_SOCKETFUNCTION:
 * level-triggered poller registrations) and when to call it back
 * (CURLMOPT_TIMERFUNCTION: one loop timer). Every call into the multi
 * handle is followed by drain(), which takes the finished transfers off
 * curl_multi_info_read(): completions are only reported there.
 *
 * libcurl is never called from inside one of its callbacks: the socket and
 * timer callbacks only record; the write and header callbacks only buffer
 * and wake tasks (a wake schedules a task, it never runs one). Removing a
 * transfer happens in drain(), in a loop timer, or in the task that gives
 * up, all outside libcurl.
 *
 * A transfer (struct xfer) is one easy handle with its buffers. The task
 * of aioc_http_request() owns it until the response is made; the body
 * iterator of aioc_http_open() owns it afterwards. */
#include <curl/curl.h>
#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../io/io.h"
#include "aioc/http.h"

#define DEFAULT_CONNECT_S 30.0
#define DEFAULT_REDIRECTS 10L
#define DEFAULT_BUFFER ((size_t)256 * 1024)
#define EASY_POOL 128

typedef struct multi multi;

/* Session defaults (copied strings). */
struct aioc_http_session {
  aioc_loop *loop;
  size_t refs; /* the caller's (until free) and one per transfer */
  bool freed;
  aioc_http_options o; /* method, body and body_len unused */
  char **headers;      /* NULL-terminated copy of o.headers */
  CURLSH *share;       /* the cookie jar */
  bool is_default;
  /* Finished transfers with their easy handles, for the next ones (see
   * xfer_start() for what is set again on each). */
  struct xfer *pool[EASY_POOL];
  size_t npool;
  char *default_ca; /* libcurl's built-in CA bundle, or NULL */
  /* No proxy variable in the environment when the session was made (see
   * env_has_proxy()) */
  bool no_env_proxy;
};

/* The options last set on a pooled easy handle, so that the next
 * transfer on it sets only those that differ (a setopt costs about a
 * hundred instructions, the URL's parse more). */
typedef struct easy_set {
  bool valid;       /* the fields below say what the handle holds */
  bool plain_get;   /* a GET without a body, no custom method */
  bool compressed;
  bool follow;
  bool insecure;
  bool hdrs;        /* CURLOPT_HTTPHEADER holds a list */
  bool no_proxy;    /* CURLOPT_PROXY and CURLOPT_NOPROXY are "" */
  long version, connect_ms, timeout_ms, redirects;
  curl_off_t max_body;
  char *ca;         /* copy of CURLOPT_CAINFO's value, NULL: unknown */
} easy_set;

typedef struct xfer {
  /* The request's state, zeroed at the start of each (up to `e`). */
  aioc__list link; /* in mt->xfers */
  multi *mt;       /* NULL once the loop closed */
  aioc_http_session *s;
  struct curl_slist *hdrs;
  char *body; /* request body copy */
  /* the length of the response's header block in hb (the last block:
   * redirects and 1xx responses start it again) */
  size_t hlen;
  size_t nh; /* header lines in hl[] */
  int status;
  bool follow;
  bool headers_done; /* the final response's headers are in */
  bool done;
  bool streaming;
  bool reusable; /* no setopt hook touched the handle */
  bool paused; /* the write callback paused the transfer */
  bool request_owned; /* owned by a suspended aioc_http_request() */
  int err;           /* the transfer's failure (aioc code), 0 */
  CURLcode cc;
  /* body: bytes in bb the consumer has not taken */
  size_t blen;
  size_t total, max_body, buffer;
  /* between chunks */
  aioc__timer idle;
  int64_t between_ns, last_data;
  aioc__list waiters; /* the task waiting for progress (aioc__lwait) */
  /* Kept with the easy handle while it is pooled in its session. */
  CURL *e;   /* NULL once released */
  char *url; /* the URL set on e, as the caller gave it */
  CURLU *uh; /* url parsed, e's CURLOPT_CURLU; NULL: not set */
  /* The buffers of the header block and of the body (kept while small:
   * see xfer_free()) */
  char *hb, *bb;
  size_t hcap, bcap;
  /* Where the header lines of hb are, as header_cb() found them:
   * offsets of each name, its colon, its value and the value's end. */
  struct hline {
    uint32_t name, colon, value, vend;
  } *hl;
  size_t hlcap;
  easy_set set;
  char errbuf[CURL_ERROR_SIZE];
} xfer;

struct multi {
  aioc__slot slot; /* key: &multi_key */
  aioc__live live;
  aioc_loop *loop;
  CURLM *m;
  /* libcurl's timeout: due when libcurl wants to be called (AIOC__NEVER:
   * not), tm armed at due or earlier. A later or cancelled timeout
   * leaves tm as it is, and its firing early re-arms it for due: libcurl
   * moves its timeout several times a request, and a timer moved in the
   * loop's heap costs a sift each time. */
  int64_t due;
  aioc__timer tm;
  aioc__list xfers;
  size_t started, running, connections;
  int watch_err; /* a socket or the timer could not be watched: why */
  /* owned[fd]: a connection socket libcurl opened and will close through
   * close_sock(), so its registration may be parked between requests */
  unsigned char *owned;
  size_t nowned;
  aioc_http_session *deflt;
};

static const char multi_key;

/* ---- errors ---- */

#define fail aioc__fail

static int map_code(xfer *x, CURLcode cc) {
  long os = 0;
  switch (cc) {
  case CURLE_OK: return 0;
  case CURLE_COULDNT_RESOLVE_HOST: case CURLE_COULDNT_RESOLVE_PROXY:
    return AIOC_ENONAME;
  case CURLE_COULDNT_CONNECT:
    curl_easy_getinfo(x->e, CURLINFO_OS_ERRNO, &os);
    return os > 0 ? -(int)os : -ECONNREFUSED;
  case CURLE_OPERATION_TIMEDOUT: return -ETIMEDOUT;
  case CURLE_PARTIAL_FILE: return AIOC_EINCOMPLETE;
  case CURLE_GOT_NOTHING: return -ECONNRESET;
  case CURLE_RECV_ERROR: case CURLE_SEND_ERROR:
    curl_easy_getinfo(x->e, CURLINFO_OS_ERRNO, &os);
    return os > 0 ? -(int)os : -ECONNRESET;
  case CURLE_TOO_MANY_REDIRECTS: return -ELOOP;
  case CURLE_FILESIZE_EXCEEDED: return -EMSGSIZE;
  case CURLE_OUT_OF_MEMORY: return -ENOMEM;
  case CURLE_URL_MALFORMAT: case CURLE_UNSUPPORTED_PROTOCOL:
  case CURLE_BAD_FUNCTION_ARGUMENT: case CURLE_UNKNOWN_OPTION:
    return -EINVAL;
  case CURLE_PEER_FAILED_VERIFICATION: case CURLE_SSL_CONNECT_ERROR:
  case CURLE_SSL_CERTPROBLEM: case CURLE_SSL_CIPHER:
  case CURLE_SSL_CACERT_BADFILE: case CURLE_SSL_ISSUER_ERROR:
  case CURLE_SSL_PINNEDPUBKEYNOTMATCH: case CURLE_SSL_INVALIDCERTSTATUS:
  case CURLE_SSL_CRL_BADFILE: case CURLE_SSL_SHUTDOWN_FAILED:
  case CURLE_USE_SSL_FAILED: case CURLE_SSL_ENGINE_NOTFOUND:
  case CURLE_SSL_ENGINE_SETFAILED: case CURLE_SSL_ENGINE_INITFAILED:
    return AIOC_ETLS;
  case CURLE_WEIRD_SERVER_REPLY: case CURLE_HTTP2: case CURLE_HTTP2_STREAM:
  case CURLE_HTTP3: case CURLE_BAD_CONTENT_ENCODING:
  case CURLE_RANGE_ERROR:
    return -EPROTO;
  default: return -EIO;
  }
}

/* The failure of x as the caller's code and message. */
static int report(xfer *x) {
  const char *msg = x->errbuf[0] ? x->errbuf : curl_easy_strerror(x->cc);
  if (x->err == -EMSGSIZE)
    return fail(-EMSGSIZE, "%s: body larger than %zu bytes", x->url,
                x->max_body);
  if (x->err == -ETIMEDOUT && x->cc == CURLE_OK)
    return fail(-ETIMEDOUT, "%s: nothing received for %.3g s", x->url,
                (double)x->between_ns / 1e9);
  if (x->err == -ENOMEM && x->cc == CURLE_OK)
    return fail(-ENOMEM, "%s: out of memory watching the transfer", x->url);
  if (x->err == AIOC_ECLOSED)
    return fail(AIOC_ECLOSED, "%s: the loop closed", x->url);
  if (x->err && x->cc == CURLE_OK)
    return fail(x->err, "%s: cannot watch the transfer's socket: %s", x->url,
                aioc_strerror(x->err));
  return fail(x->err, "%s: %s", x->url, msg);
}

/* ---- the easy handles ---- */

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;
static CURLcode lib_status;
static void *c_malloc(size_t n) { return aioc__alloc(n); }
static void c_free(void *p) { aioc__free(p); }
static void *c_realloc(void *p, size_t n) { return aioc__realloc(p, n); }
static void *c_calloc(size_t n, size_t m) { return aioc__calloc(n, m); }
static char *c_strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = aioc__alloc(n);
  if (d) memcpy(d, s, n);
  return d;
}
/* libcurl allocates through aioc's hook when there is one (set, as
 * aioc_set_allocator() says, before any other call), else through libc
 * directly: a wrapper around each of its allocations cost about 1,500
 * instructions a request. */
static void lib_init(void) {
  lib_status = aioc__alloc_is_default()
                   ? curl_global_init(CURL_GLOBAL_DEFAULT)
                   : curl_global_init_mem(CURL_GLOBAL_DEFAULT, c_malloc,
                                          c_free, c_realloc, c_strdup,
                                          c_calloc);
}

static char *dup_str(const char *s) {
  return s ? c_strdup(s) : NULL;
}

/* ---- driving the multi handle ---- */

static void finish(xfer *x, int err, CURLcode cc);

static void fail_all(multi *mt, int err) {
  aioc__list_each(l, &mt->xfers) {
    xfer *x = aioc__container_of(l, xfer, link);
    if (!x->done) finish(x, err, CURLE_OK);
  }
}

/* After every call into the multi handle: the finished transfers. */
static void drain(multi *mt) {
  CURLMsg *msg;
  int left;
  while ((msg = curl_multi_info_read(mt->m, &left))) {
    if (msg->msg != CURLMSG_DONE) continue;
    xfer *x = NULL;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
    if (x && !x->done) finish(x, 0, msg->data.result);
  }
  if (mt->watch_err) {
    int err = mt->watch_err;
    mt->watch_err = 0;
    fail_all(mt, err);
  }
}

static void on_io(aioc_loop *loop, int fd, uint32_t events, void *arg) {
  (void)loop;
  multi *mt = arg;
  int flags = (events & (EPOLLIN | EPOLLHUP | EPOLLRDHUP) ? CURL_CSELECT_IN
                                                          : 0) |
              (events & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
              (events & EPOLLERR ? CURL_CSELECT_ERR : 0);
  int running;
  curl_multi_socket_action(mt->m, fd, flags, &running);
  drain(mt);
}

static void on_timer(aioc_loop *loop, aioc__timer *t) {
  multi *mt = aioc__container_of(t, multi, tm);
  if (loop->closed || mt->due == AIOC__NEVER) return;
  if (mt->due > aioc__now(loop)) { /* fired early: the timeout moved */
    if (aioc__timer_arm(loop, &mt->tm, mt->due) < 0) fail_all(mt, -ENOMEM);
    return;
  }
  mt->due = AIOC__NEVER;
  int running;
  curl_multi_socket_action(mt->m, CURL_SOCKET_TIMEOUT, 0, &running);
  drain(mt);
}

static bool owned(multi *mt, int fd) {
  return fd >= 0 && (size_t)fd < mt->nowned && mt->owned[fd];
}

/* The sockets of libcurl's connections: opened here and closed in
 * close_sock(), so that the registration of a kept-alive connection stays
 * in the kernel between its requests (two epoll_ctl calls a request
 * fewer). Not for a transfer whose setopt hook may have replaced either
 * callback. */
static curl_socket_t open_sock(void *clientp, curlsocktype purpose,
                               struct curl_sockaddr *a) {
  (void)purpose;
  xfer *x = clientp;
  multi *mt = x->mt;
  int fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
  if (fd < 0 || !x->reusable || !mt) return fd < 0 ? CURL_SOCKET_BAD : fd;
  if ((size_t)fd >= mt->nowned) {
    size_t n = mt->nowned ? mt->nowned : 64;
    while (n <= (size_t)fd) n *= 2;
    unsigned char *v = aioc__realloc(mt->owned, n);
    if (!v) return fd; /* not parked then: removed and added each time */
    memset(v + mt->nowned, 0, n - mt->nowned);
    mt->owned = v;
    mt->nowned = n;
  }
  mt->owned[fd] = 1;
  return fd;
}

static int close_sock(void *clientp, curl_socket_t fd) {
  multi *mt = clientp;
  if (owned(mt, fd)) {
    mt->owned[fd] = 0;
    aioc__poll_del(mt->loop, fd);
  }
  return close(fd);
}

static int sock_cb(CURL *e, curl_socket_t fd, int what, void *userp,
                   void *socketp) {
  (void)e;
  (void)socketp;
  multi *mt = userp;
  if (what == CURL_POLL_REMOVE) {
    if (owned(mt, fd)) aioc__poll_park(mt->loop, fd);
    else aioc__poll_del(mt->loop, fd);
    return 0;
  }
  uint32_t ev = (what & CURL_POLL_IN ? EPOLLIN : 0) |
                (what & CURL_POLL_OUT ? EPOLLOUT : 0);
  int rc = aioc__poll_add(mt->loop, fd, ev, on_io, mt);
  if (rc < 0) mt->watch_err = rc;
  return 0;
}

static int timer_cb(CURLM *m, long ms, void *userp) {
  (void)m;
  multi *mt = userp;
  if (ms < 0) {
    mt->due = AIOC__NEVER; /* tm, if armed, fires for nothing */
    return 0;
  }
  mt->due = aioc__now(mt->loop) + (int64_t)ms * 1000000;
  if ((mt->tm.idx == AIOC__NOTIMER || mt->tm.when > mt->due) &&
      aioc__timer_arm(mt->loop, &mt->tm, mt->due) < 0)
    mt->watch_err = -ENOMEM;
  return 0;
}

/* ---- the loop's multi handle ---- */

static void session_unref(aioc_http_session *s);
static void multi_abandon(aioc__live *n);
static const aioc__live_ops multi_live_ops = {NULL, multi_abandon};


static multi *multi_of(aioc_loop *loop, int *rc) {
  aioc__slot *sl = aioc__slot_find(loop, &multi_key);
  if (sl) return aioc__container_of(sl, multi, slot);
  pthread_once(&lib_once, lib_init);
  if (lib_status != CURLE_OK) {
    *rc = fail(-EIO, "cannot initialise libcurl: %s",
               curl_easy_strerror(lib_status));
    return NULL;
  }
  multi *mt = aioc__calloc(1, sizeof *mt);
  if (!mt || !(mt->m = curl_multi_init())) {
    aioc__free(mt);
    *rc = fail(-ENOMEM, "out of memory");
    return NULL;
  }
  mt->loop = loop;
  mt->due = AIOC__NEVER;
  aioc__timer_init(&mt->tm, on_timer);
  aioc__list_init(&mt->xfers);
  curl_multi_setopt(mt->m, CURLMOPT_SOCKETFUNCTION, sock_cb);
  curl_multi_setopt(mt->m, CURLMOPT_SOCKETDATA, mt);
  curl_multi_setopt(mt->m, CURLMOPT_TIMERFUNCTION, timer_cb);
  curl_multi_setopt(mt->m, CURLMOPT_TIMERDATA, mt);
  /* libcurl's default cache (4 times the transfers added) shrinks as
   * transfers end, closing connections the next requests could reuse:
   * 100 requests in flight then opened about 3 to 7 connections per 100
   * requests instead of reusing 100. Idle ones still go after 118 s. */
  curl_multi_setopt(mt->m, CURLMOPT_MAXCONNECTS, 1000L);
  aioc__slot_add(loop, &mt->slot, &multi_key);
  aioc__live_add(loop, &mt->live, &multi_live_ops);
  return mt;
}


static void xfer_free(xfer *x);

/* The loop closes: every transfer ends with AIOC_ECLOSED. Those of a
 * suspended aioc_http_request() are freed (their task never runs again);
 * an iterator's stays for the iterator to free. */
static void multi_abandon(aioc__live *n) {
  multi *mt = aioc__container_of(n, multi, live);
  aioc__list *l;
  while ((l = aioc__list_first(&mt->xfers)) != NULL) {
    xfer *x = aioc__container_of(l, xfer, link);
    if (!x->done) finish(x, AIOC_ECLOSED, CURLE_OK);
    aioc__list_del(&x->link);
    aioc__list_init(&x->link);
    x->mt = NULL;
    if (x->request_owned) xfer_free(x);
  }
  aioc__timer_disarm(mt->loop, &mt->tm);
  curl_multi_cleanup(mt->m);
  aioc__free(mt->owned);
  if (mt->deflt) session_unref(mt->deflt);
  aioc__slot_del(&mt->slot);
  aioc__free(mt);
}

/* ---- sessions ---- */

static void free_strv(char **v) {
  if (!v) return;
  for (char **p = v; *p; p++) aioc__free(*p);
  aioc__free(v);
}

static char **dup_strv(const char *const *v, bool *nomem) {
  if (!v) return NULL;
  size_t n = 0;
  while (v[n]) n++;
  char **d = aioc__calloc(n + 1, sizeof *d);
  if (!d) {
    *nomem = true;
    return NULL;
  }
  for (size_t i = 0; i < n; i++) {
    if (!(d[i] = c_strdup(v[i]))) {
      free_strv(d);
      *nomem = true;
      return NULL;
    }
  }
  return d;
}

static void xfer_release(xfer *x);

static void session_destroy(aioc_http_session *s) {
  while (s->npool) xfer_release(s->pool[--s->npool]);
  aioc__free(s->default_ca);
  free_strv(s->headers);
  aioc__free((char *)s->o.ca_file);
  if (s->share) curl_share_cleanup(s->share);
  aioc__loop_unref(s->loop);
  aioc__free(s);
}

static void session_unref(aioc_http_session *s) {
  if (--s->refs == 0) session_destroy(s);
}

static bool bad_seconds(double v) { return isnan(v) || v < 0; }

static int check_options(const aioc_http_options *o) {
  if (!o) return 0;
  if (bad_seconds(o->connect_timeout) || bad_seconds(o->timeout) ||
      bad_seconds(o->between))
    return fail(-EINVAL, "a negative or NaN time in the HTTP options");
  if ((unsigned)o->version > AIOC_HTTP_VERSION_2_PRIOR)
    return fail(-EINVAL, "unknown HTTP version %d", (int)o->version);
  if (o->body_len && !o->body)
    return fail(-EINVAL, "a body length without a body");
  return 0;
}

/* Is any proxy variable set in the environment? libcurl reads them for
 * every transfer (<scheme>_proxy, its upper-case form but for http,
 * all_proxy and no_proxy in both forms: five getenv() calls a request
 * over HTTP, about 1,700 instructions); a session made when none is set
 * (none of any name ending in "_proxy", any case, with a value) tells
 * libcurl there is no proxy instead, as Go's net/http reads them once. */
static bool env_has_proxy(void) {
  extern char **environ;
  for (char **v = environ; v && *v; v++) {
    const char *eq = strchr(*v, '=');
    if (!eq || !eq[1] || eq - *v < 6) continue;
    if (strncasecmp(eq - 6, "_proxy", 6) == 0) return true;
  }
  return false;
}

static int session_make(aioc_http_session **out, aioc_loop *loop,
                        const aioc_http_options *o) {
  pthread_once(&lib_once, lib_init);
  if (lib_status != CURLE_OK)
    return fail(-EIO, "cannot initialise libcurl: %s",
                curl_easy_strerror(lib_status));
  aioc_http_session *s = aioc__calloc(1, sizeof *s);
  if (!s) return fail(-ENOMEM, "out of memory");
  bool nomem = false;
  if (o) s->o = *o;
  s->o.method = NULL;
  s->o.body = NULL;
  s->o.body_len = 0;
  s->o.headers = NULL;
  s->headers = o ? dup_strv(o->headers, &nomem) : NULL;
  s->o.ca_file = o && o->ca_file ? dup_str(o->ca_file) : NULL;
  if (o && o->ca_file && !s->o.ca_file) nomem = true;
  s->share = curl_share_init();
  if (!s->share ||
      curl_share_setopt(s->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_COOKIE) !=
          CURLSHE_OK)
    nomem = true;
  s->no_env_proxy = !env_has_proxy();
  s->loop = loop;
  aioc__loop_ref(loop);
  s->refs = 1;
  if (nomem) {
    session_destroy(s);
    return fail(-ENOMEM, "out of memory");
  }
  *out = s;
  return 0;
}

int aioc_http_session_new(aioc_http_session **out, aioc_loop *loop,
                          const aioc_http_options *opts) {
  if (!out) return fail(-EINVAL, "no place for the session");
  *out = NULL;
  int rc = check_options(opts);
  if (rc < 0) return rc;
  if (!(loop = aioc__io_pick_loop(loop, "aioc_http_session_new", &rc)))
    return fail(rc, "no loop for the session");
  return session_make(out, loop, opts);
}

void aioc_http_session_free(aioc_http_session *s) {
  if (!s || s->freed || s->is_default) return;
  s->freed = true;
  session_unref(s);
}

/* ---- responses ---- */

/* One allocation holds the response, its header array, its URL, its
 * header block and, unless large, its body. */
typedef struct response {
  aioc_http_response r; /* first */
  char *hb;             /* the header block, split in place */
  char *bb;             /* the body */
  bool own_body;        /* bb is a block of its own */
  aioc_http_header *hv; /* just after the struct */
} response;

/* A body up to this size is copied into the response's block; a larger
 * one moves there with its buffer. */
#define BODY_COPY_MAX ((size_t)4096)
/* A pooled transfer keeps buffers up to these sizes. */
#define KEEP_HB ((size_t)4096)
#define KEEP_BB ((size_t)16384)

const char *aioc_http_header_get(const aioc_http_response *r,
                                 const char *name) {
  if (!r || !name) return NULL;
  const char *v = NULL;
  for (size_t i = 0; i < r->nheaders; i++)
    if (strcasecmp(r->headers[i].name, name) == 0) v = r->headers[i].value;
  return v;
}

void aioc_http_response_free(aioc_http_response *r) {
  if (!r) return;
  response *p = (response *)r;
  if (p->own_body) aioc__free(p->bb);
  aioc__free(p);
}

/* The header block's name/value pairs, split in place at the offsets
 * header_cb() noted (n of them). */
static void split_headers(response *p, const struct hline *hl, size_t n) {
  for (size_t i = 0; i < n; i++) {
    p->hb[hl[i].colon] = 0;
    p->hb[hl[i].vend] = 0;
    p->hv[i].name = p->hb + hl[i].name;
    p->hv[i].value = p->hb + hl[i].value;
  }
  p->r.headers = p->hv;
  p->r.nheaders = n;
}

/* The response of x: headers, and the body unless streaming (copied,
 * or when large moved with its buffer). */
static int make_response(xfer *x, aioc_http_response **out) {
  long ver = 0;
  char *eff = NULL;
  curl_easy_getinfo(x->e, CURLINFO_HTTP_VERSION, &ver);
  curl_easy_getinfo(x->e, CURLINFO_EFFECTIVE_URL, &eff);
  const char *url = eff ? eff : x->url;
  size_t ulen = strlen(url) + 1, lines = x->nh ? x->nh : 1;
  size_t hsize = x->hlen + 1;
  bool move = !x->streaming && x->blen > BODY_COPY_MAX;
  size_t bsize = move ? 0 : x->streaming ? 1 : x->blen + 1;
  response *p = aioc__alloc(sizeof *p + lines * sizeof *p->hv + ulen +
                            hsize + bsize);
  if (!p) return -ENOMEM;
  memset(p, 0, sizeof *p);
  p->hv = (aioc_http_header *)(p + 1);
  char *at = (char *)(p->hv + lines);
  memcpy(at, url, ulen);
  p->r.url = at;
  at += ulen;
  p->hb = at;
  if (x->hlen) memcpy(p->hb, x->hb, x->hlen);
  p->hb[x->hlen] = 0;
  at += hsize;
  p->r.status = x->status;
  p->r.version = ver == CURL_HTTP_VERSION_1_0   ? 10
                 : ver == CURL_HTTP_VERSION_1_1 ? 11
                 : ver == CURL_HTTP_VERSION_2_0 ? 20
                 : ver == CURL_HTTP_VERSION_3   ? 30
                                                : 0;
  if (move) {
    p->bb = x->bb; /* has room for the terminator */
    p->own_body = true;
    x->bb = NULL;
    x->bcap = 0;
  } else {
    p->bb = at;
  }
  if (!x->streaming) {
    if (x->blen && !move) memcpy(p->bb, x->bb, x->blen);
    p->r.body_len = x->blen;
    x->blen = 0;
  }
  p->bb[p->r.body_len] = 0;
  split_headers(p, x->hl, x->nh);
  p->r.body = p->bb;
  *out = &p->r;
  return 0;
}

/* ---- transfers: libcurl's callbacks (no libcurl call in them) ---- */

static void wake(xfer *x) { aioc__lwait_wake_all(&x->waiters, 0); }

static void xfer_fail_soon(xfer *x, int err) {
  if (!x->err) x->err = err;
}

/* Is the header block in x->hb the final response's? Interim ones: 1xx,
 * and a redirect that will be followed. */
static bool final_block(xfer *x) {
  if (x->status >= 100 && x->status < 200) return false;
  if (x->follow && x->status >= 300 && x->status < 400 &&
      x->status != 304) {
    /* followed only when it names where to go */
    for (const char *c = x->hb; c && *c;) {
      if (strncasecmp(c, "location:", 9) == 0) return false;
      const char *nl = strchr(c, '\n');
      c = nl ? nl + 1 : NULL;
    }
  }
  return true;
}

static size_t header_cb(char *data, size_t size, size_t n, void *arg) {
  xfer *x = arg;
  size_t len = size * n;
  if (x->headers_done) return len; /* trailers */
  bool status_line = len >= 5 && memcmp(data, "HTTP/", 5) == 0;
  if (status_line) {
    x->hlen = 0;
    x->nh = 0;
    /* "HTTP/1.1 200 OK", "HTTP/2 200" */
    const char *c = memchr(data, ' ', len);
    int st = 0;
    for (size_t i = c ? (size_t)(c - data) + 1 : len, k = 0;
         i < len && k < 3 && data[i] >= '0' && data[i] <= '9'; i++, k++)
      st = st * 10 + (data[i] - '0');
    x->status = st;
  }
  if (x->hlen + len + 1 > x->hcap) {
    size_t cap = x->hcap ? x->hcap : 512;
    while (cap < x->hlen + len + 1) cap *= 2;
    char *nb = aioc__realloc(x->hb, cap);
    if (!nb) {
      xfer_fail_soon(x, -ENOMEM);
      return 0;
    }
    x->hb = nb;
    x->hcap = cap;
  }
  /* libcurl gives one line per call, with its end: a header is "name:
   * value", the value's surrounding blanks and the line's end left out
   * (where the value's end is then cut) */
  const char *colon = status_line ? NULL : memchr(data, ':', len);
  if (colon && colon != data && data[len - 1] == '\n') {
    if (x->nh == x->hlcap) {
      size_t cap = x->hlcap ? 2 * x->hlcap : 16;
      struct hline *v = aioc__realloc(x->hl, cap * sizeof *v);
      if (!v) {
        xfer_fail_soon(x, -ENOMEM);
        return 0;
      }
      x->hl = v;
      x->hlcap = cap;
    }
    size_t c = (size_t)(colon - data), vs = c + 1, ve = len - 1;
    if (ve > vs && data[ve - 1] == '\r') ve--; /* the line's end */
    while (ve > vs && (data[ve - 1] == ' ' || data[ve - 1] == '\t')) ve--;
    while (vs < ve && (data[vs] == ' ' || data[vs] == '\t')) vs++;
    uint32_t at = (uint32_t)x->hlen;
    x->hl[x->nh++] = (struct hline){at, at + (uint32_t)c, at + (uint32_t)vs,
                                    at + (uint32_t)ve};
  }
  memcpy(x->hb + x->hlen, data, len);
  x->hlen += len;
  x->hb[x->hlen] = 0;
  if ((len == 2 && data[0] == '\r') || (len == 1 && data[0] == '\n')) {
    if (final_block(x)) {
      x->headers_done = true;
      if (x->streaming) wake(x);
    }
  }
  return len;
}

static size_t write_cb(char *data, size_t size, size_t n, void *arg) {
  xfer *x = arg;
  size_t len = size * n;
  if (len == 0) return 0;
  if (x->max_body && x->total + len > x->max_body) {
    xfer_fail_soon(x, -EMSGSIZE);
    return 0;
  }
  if (x->streaming && x->blen >= x->buffer) {
    x->paused = true;
    return CURL_WRITEFUNC_PAUSE;
  }
  if (x->blen + len + 1 > x->bcap) {
    size_t cap = x->bcap ? x->bcap : 16384;
    curl_off_t cl = -1;
    /* the whole body at once when its length is known */
    if (x->total == 0 && !x->streaming &&
        curl_easy_getinfo(x->e, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl) ==
            CURLE_OK &&
        cl > 0 && (uint64_t)cl < ((uint64_t)64 << 20) && (size_t)cl >= len)
      cap = (size_t)cl + 1;
    while (cap < x->blen + len + 1) cap *= 2;
    char *nb = aioc__realloc(x->bb, cap);
    if (!nb) {
      xfer_fail_soon(x, -ENOMEM);
      return 0;
    }
    x->bb = nb;
    x->bcap = cap;
  }
  memcpy(x->bb + x->blen, data, len);
  x->blen += len;
  x->total += len;
  if (x->between_ns && x->mt) x->last_data = aioc__now(x->mt->loop);
  x->headers_done = true; /* a body without a blank line seen (HTTP/0.9) */
  if (x->streaming) wake(x);
  return len;
}

/* ---- transfers: start, end ---- */

/* x ends: its handle leaves the multi handle (never called from inside
 * libcurl), and the waiter is woken. */
static void finish(xfer *x, int err, CURLcode cc) {
  multi *mt = x->mt;
  x->done = true;
  x->cc = cc;
  if (!x->err) x->err = err ? err : map_code(x, cc);
  if (mt) {
    aioc__timer_disarm(mt->loop, &x->idle);
    long nc = 0;
    if (x->e && curl_easy_getinfo(x->e, CURLINFO_NUM_CONNECTS, &nc) == CURLE_OK)
      mt->connections += (size_t)nc;
    if (x->e) curl_multi_remove_handle(mt->m, x->e);
    mt->running--;
  }
  wake(x);
}

static void on_idle(aioc_loop *loop, aioc__timer *t) {
  xfer *x = aioc__container_of(t, xfer, idle);
  if (loop->closed || x->done) return;
  int64_t now = aioc__now(loop);
  if (x->paused) x->last_data = now; /* the consumer is behind */
  int64_t due = x->last_data + x->between_ns;
  if (due > now) {
    if (aioc__timer_arm(loop, &x->idle, due) < 0) finish(x, -ENOMEM, CURLE_OK);
    return;
  }
  finish(x, -ETIMEDOUT, CURLE_OK);
}

static void xfer_free(xfer *x) {
  if (!x) return;
  multi *mt = x->mt;
  if (mt) {
    if (!x->done) {
      x->done = true;
      aioc__timer_disarm(mt->loop, &x->idle);
      if (x->e) curl_multi_remove_handle(mt->m, x->e);
      mt->running--;
    }
    aioc__list_del(&x->link);
  }
  curl_slist_free_all(x->hdrs);
  aioc__free(x->body);
  aioc_http_session *s = x->s;
  if (s && x->e && x->reusable && s->refs > 1 && s->npool < EASY_POOL) {
    /* with its handle and small buffers, for the next transfer */
    if (x->hcap > KEEP_HB) {
      aioc__free(x->hb);
      x->hb = NULL;
      x->hcap = 0;
    }
    if (x->bcap > KEEP_BB) {
      aioc__free(x->bb);
      x->bb = NULL;
      x->bcap = 0;
    }
    s->pool[s->npool++] = x;
  } else {
    xfer_release(x);
  }
  if (s) session_unref(s);
}

/* Frees x with its easy handle (x's request state is already freed). */
static void xfer_release(xfer *x) {
  if (x->e) curl_easy_cleanup(x->e);
  curl_url_cleanup(x->uh);
  aioc__free(x->hb);
  aioc__free(x->bb);
  aioc__free(x->hl);
  aioc__free(x->set.ca);
  aioc__free(x->url);
  aioc__free(x);
}

static long curl_version_of(aioc_http_version v) {
  switch (v) {
  case AIOC_HTTP_VERSION_1_0: return CURL_HTTP_VERSION_1_0;
  case AIOC_HTTP_VERSION_1_1: return CURL_HTTP_VERSION_1_1;
  case AIOC_HTTP_VERSION_2: return CURL_HTTP_VERSION_2_0;
  case AIOC_HTTP_VERSION_2_PRIOR: return CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE;
  default: return CURL_HTTP_VERSION_2TLS;
  }
}

static long ms_of(double s) {
  double ms = ceil(s * 1000);
  return ms > 2e9 ? 2000000000L : ms < 1 ? 1 : (long)ms;
}

/* Sets url on x's handle. libcurl parses the URL of CURLOPT_URL again
 * for every transfer (about 5,000 instructions); given it parsed, as
 * CURLOPT_CURLU, it copies the parsed form instead. So the URL is parsed
 * here, with the flags libcurl's own parse uses, into a new handle (a URL
 * set on a used one would be resolved against the old one), and kept
 * with the easy handle while the URL stays the same. CURLOPT_URL gets
 * the normalised URL, the one libcurl reports as the effective URL. With
 * a setopt hook (which may set CURLOPT_URL, or options the parse depends
 * on) the URL is given as it is. Returns 0 or a failure (reported). */
static int set_url(xfer *x, const char *url, bool hook) {
  CURL *e = x->e;
  CURLU *u = NULL;
  char *norm = NULL;
  if (!hook) {
    if (!(u = curl_url())) return fail(-ENOMEM, "out of memory");
    CURLUcode uc = curl_url_set(u, CURLUPART_URL, url,
                                CURLU_GUESS_SCHEME | CURLU_NON_SUPPORT_SCHEME);
    if (uc == CURLUE_OK) uc = curl_url_get(u, CURLUPART_URL, &norm, 0);
    if (uc != CURLUE_OK) {
      curl_url_cleanup(u);
      return uc == CURLUE_OUT_OF_MEMORY
                 ? fail(-ENOMEM, "out of memory")
                 : fail(-EINVAL, "%s: %s", url, curl_url_strerror(uc));
    }
  }
  CURLcode cc = curl_easy_setopt(e, CURLOPT_URL, norm ? norm : url);
  curl_free(norm);
  if (cc != CURLE_OK) {
    curl_url_cleanup(u);
    return fail(-ENOMEM, "out of memory");
  }
  curl_easy_setopt(e, CURLOPT_CURLU, u);
  curl_url_cleanup(x->uh);
  x->uh = u;
  return 0;
}

#define PICK(f) (o && o->f ? o->f : so->f)

/* Makes and starts a transfer. Returns 0 with *out, or a code. */
static int xfer_start(xfer **out, aioc_http_session *s, const char *url,
                      const aioc_http_options *o, bool streaming) {
  *out = NULL;
  if (!url) return fail(-EINVAL, "no URL");
  int rc = check_options(o);
  if (rc < 0) return rc;
  aioc_task *t = aioc__current();
  if (!t) return fail(AIOC_ENOTASK, "%s: an HTTP request needs a task", url);
  aioc_loop *loop = t->f.loop;
  if (loop->closed) return fail(AIOC_ECLOSED, "%s: the loop is closed", url);
  multi *mt = multi_of(loop, &rc);
  if (!mt) return rc;
  if (!s) {
    if (!mt->deflt) {
      if ((rc = session_make(&mt->deflt, loop, NULL)) < 0) return rc;
      mt->deflt->is_default = true;
    }
    s = mt->deflt;
  } else if (s->freed || s->loop != loop) {
    return fail(-EINVAL, "%s: the session is freed or of another loop", url);
  }
  const aioc_http_options *so = &s->o;
  aioc_http_setopt_fn hook = o && o->setopt ? o->setopt : so->setopt;
  void *hook_arg = o && o->setopt ? o->setopt_arg : so->setopt_arg;
  /* A pooled transfer keeps its handle and what was set on it; its
   * request state starts from zero like a fresh one's. */
  bool fresh = s->npool == 0;
  xfer *x;
  if (fresh) {
    if (!(x = aioc__calloc(1, sizeof *x)))
      return fail(-ENOMEM, "out of memory");
  } else {
    x = s->pool[--s->npool];
    memset(x, 0, offsetof(xfer, e));
    x->errbuf[0] = 0;
  }
  aioc__list_init(&x->link);
  aioc__list_init(&x->waiters);
  aioc__timer_init(&x->idle, on_idle);
  x->s = s;
  s->refs++;
  x->streaming = streaming;
  x->reusable = !hook;
  x->max_body = PICK(max_body);
  x->buffer = PICK(buffer) ? PICK(buffer) : DEFAULT_BUFFER;
  int redirects = PICK(max_redirects);
  x->follow = redirects >= 0;
  bool nomem = false,
       url_set = x->url && !hook && x->uh && strcmp(x->url, url) == 0;
  if (!url_set) {
    aioc__free(x->url);
    nomem = !(x->url = dup_str(url));
  }
  if (o && o->body_len) {
    if ((x->body = aioc__alloc(o->body_len)))
      memcpy(x->body, o->body, o->body_len);
    else
      nomem = true;
  }
  if (fresh && !(x->e = curl_easy_init())) nomem = true;
  /* headers: the session's, then the request's */
  for (char **h = s->headers; !nomem && h && *h; h++) {
    struct curl_slist *n = curl_slist_append(x->hdrs, *h);
    if (!n) nomem = true;
    else x->hdrs = n;
  }
  for (const char *const *h = o ? o->headers : NULL; !nomem && h && *h; h++) {
    struct curl_slist *n = curl_slist_append(x->hdrs, *h);
    if (!n) nomem = true;
    else x->hdrs = n;
  }
  CURL *e = x->e;
  if (!nomem && fresh && !s->default_ca) {
    char *ca = NULL;
    if (curl_easy_getinfo(e, CURLINFO_CAINFO, &ca) == CURLE_OK && ca &&
        !(s->default_ca = dup_str(ca)))
      nomem = true;
  }
  if (nomem) {
    xfer_free(x);
    return fail(-ENOMEM, "out of memory");
  }
  /* A handle is reused, not reset: curl_easy_reset() in libcurl 7.88
   * leaks the cookie file list, and the cookie engine must stay on. So
   * every option a transfer may set is set on every transfer, to its
   * value or back to libcurl's default, unless the handle holds that
   * value already (x->set); a handle a setopt hook touched is not
   * reused. The callbacks' data is x, which stays with the handle. */
  if (fresh) {
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_sock);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, close_sock);
    curl_easy_setopt(e, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
    curl_easy_setopt(e, CURLOPT_SHARE, s->share);
    curl_easy_setopt(e, CURLOPT_COOKIEFILE, ""); /* the cookie engine on */
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, x);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, mt);
  }
  if (!url_set && (rc = set_url(x, url, hook != NULL)) < 0) {
    aioc__free(x->url); /* not what e holds */
    x->url = NULL;
    xfer_free(x);
    return rc;
  }
  easy_set *was = &x->set, now = {.valid = true};
  /* libcurl's default: no Accept-Encoding unless asked (offering it costs
   * about 5,000 instructions a request even for an identity response) */
  now.compressed = PICK(compressed) != 0;
  now.version = curl_version_of(PICK(version));
  now.connect_ms = ms_of(PICK(connect_timeout) ? PICK(connect_timeout)
                                               : DEFAULT_CONNECT_S);
  now.timeout_ms = PICK(timeout) ? ms_of(PICK(timeout)) : 0L;
  now.follow = x->follow;
  now.redirects = redirects > 0 ? (long)redirects : DEFAULT_REDIRECTS;
  now.max_body = (curl_off_t)x->max_body;
  now.insecure = PICK(insecure) != 0;
  const char *ca = PICK(ca_file) ? PICK(ca_file) : s->default_ca;
  now.hdrs = x->hdrs != NULL;
  now.no_proxy = s->no_env_proxy;
  now.plain_get = !x->body && (!o || !o->method || strcmp(o->method, "GET") == 0);
  bool all = !was->valid;
#define CHANGED(f) (all || now.f != was->f)
  if (CHANGED(compressed))
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, now.compressed ? "" : NULL);
  if (CHANGED(version)) curl_easy_setopt(e, CURLOPT_HTTP_VERSION, now.version);
  if (CHANGED(connect_ms))
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, now.connect_ms);
  if (CHANGED(timeout_ms))
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, now.timeout_ms);
  if (CHANGED(follow))
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, now.follow ? 1L : 0L);
  if (CHANGED(redirects)) curl_easy_setopt(e, CURLOPT_MAXREDIRS, now.redirects);
  if (CHANGED(max_body))
    curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, now.max_body);
  if (CHANGED(no_proxy)) {
    curl_easy_setopt(e, CURLOPT_PROXY, now.no_proxy ? "" : (char *)NULL);
    curl_easy_setopt(e, CURLOPT_NOPROXY, now.no_proxy ? "" : (char *)NULL);
  }
  if (CHANGED(insecure)) {
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, now.insecure ? 0L : 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, now.insecure ? 0L : 2L);
  }
  if (all || !was->ca || !ca || strcmp(was->ca, ca) != 0) {
    curl_easy_setopt(e, CURLOPT_CAINFO, ca);
    aioc__free(was->ca);
    now.ca = ca ? dup_str(ca) : NULL; /* NULL: compared as unknown */
  } else {
    now.ca = was->ca;
  }
  if (now.hdrs || CHANGED(hdrs)) curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->hdrs);
  /* the method: GET first, which also undoes HEAD and POST (after the
   * last body is forgotten: setting POSTFIELDS makes it a POST) */
  if (!now.plain_get || CHANGED(plain_get)) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, (char *)NULL);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)-1);
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, (char *)NULL);
  }
#undef CHANGED
  *was = now;
  if (x->body) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)o->body_len);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->body);
  }
  if (o && o->method) {
    if (strcmp(o->method, "HEAD") == 0)
      curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    else if (!(strcmp(o->method, "GET") == 0 && !x->body) &&
             !(strcmp(o->method, "POST") == 0 && x->body))
      curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, o->method);
  }
  if (hook && (rc = hook(hook_arg, e)) < 0) {
    xfer_free(x);
    return fail(rc, "%s: the setopt hook failed", url);
  }
  double between = PICK(between);
  x->mt = mt;
  if (between > 0) {
    x->between_ns = (int64_t)(between * 1e9);
    x->last_data = aioc__now(loop);
    if (aioc__timer_arm(loop, &x->idle, x->last_data + x->between_ns) < 0) {
      x->mt = NULL;
      xfer_free(x);
      return fail(-ENOMEM, "out of memory");
    }
  }
  CURLMcode mc = curl_multi_add_handle(mt->m, e);
  if (mc != CURLM_OK) {
    aioc__timer_disarm(loop, &x->idle);
    x->mt = NULL;
    xfer_free(x);
    return fail(mc == CURLM_OUT_OF_MEMORY ? -ENOMEM : -EIO, "%s: %s", url,
                curl_multi_strerror(mc));
  }
  aioc__list_push_back(&mt->xfers, &x->link);
  mt->started++;
  mt->running++;
  *out = x;
  return 0;
}

/* Waits until cond(x) holds or the transfer ended, before deadline.
 * Returns 0, or the code that ended the wait (the transfer goes on). */
static int xfer_wait(xfer *x, bool (*cond)(const xfer *), int64_t deadline) {
  aioc_task *t = aioc__current();
  while (!x->done && !cond(x)) {
    x->request_owned = !x->streaming || !x->headers_done;
    int rc = aioc__lwait_park(&x->waiters, t, deadline);
    x->request_owned = false;
    if (rc) return rc;
  }
  return 0;
}

static bool has_headers(const xfer *x) { return x->headers_done; }
static bool never(const xfer *x) {
  (void)x;
  return false;
}

int aioc_http_request(aioc_http_session *s, aioc_http_response **out,
                      const char *url, const aioc_http_options *opts,
                      double timeout) {
  if (!out) return fail(-EINVAL, "no place for the response");
  *out = NULL;
  if (aioc__io_bad_timeout(timeout)) return fail(-EINVAL, "bad timeout");
  xfer *x;
  int rc = xfer_start(&x, s, url, opts, false);
  if (rc < 0) return rc;
  rc = xfer_wait(x, never, aioc__io_deadline(x->mt->loop, timeout));
  if (rc == 0 && x->err) rc = report(x);
  else if (rc == 0 && (rc = make_response(x, out)) < 0)
    rc = fail(rc, "out of memory");
  else if (rc == -ETIMEDOUT)
    rc = fail(rc, "%s: timed out", x->url);
  else if (rc == -ECANCELED)
    rc = fail(rc, "%s: cancelled", x->url);
  xfer_free(x);
  return rc;
}

int aioc_http_get(aioc_http_session *s, aioc_http_response **out,
                  const char *url, double timeout) {
  return aioc_http_request(s, out, url, NULL, timeout);
}

int aioc_http_post_json(aioc_http_session *s, aioc_http_response **out,
                        const char *url, const char *json, double timeout) {
  if (!json) {
    if (out) *out = NULL;
    return fail(-EINVAL, "no JSON body");
  }
  static const char *const hdrs[] = {"Content-Type: application/json", NULL};
  aioc_http_options o = {.method = "POST", .headers = hdrs, .body = json,
                         .body_len = strlen(json)};
  return aioc_http_request(s, out, url, &o, timeout);
}

/* ---- body iterators ---- */

typedef struct body_iter {
  xfer *x;
  char *lent; /* the chunk given last (valid until the next call) */
  size_t lent_cap;
  aioc_bytes item;
  bool closed;
} body_iter;

static int body_next(void *self, void **item, double timeout) {
  body_iter *b = self;
  xfer *x = b->x;
  if (b->closed) return AIOC_EXHAUSTED;
  if (aioc__io_bad_timeout(timeout)) return fail(-EINVAL, "bad timeout");
  if (x->blen == 0 && !x->done) {
    if (!x->mt) return fail(AIOC_ECLOSED, "%s: the loop closed", x->url);
    if (timeout == 0) return -ETIMEDOUT;
    aioc_task *t = aioc__current();
    if (!t) return fail(AIOC_ENOTASK, "%s: reading a body needs a task", x->url);
    int64_t deadline = aioc__io_deadline(x->mt->loop, timeout);
    while (x->blen == 0 && !x->done) {
      int rc = aioc__lwait_park(&x->waiters, t, deadline);
      if (rc) return rc;
    }
  }
  if (x->blen) {
    /* the buffered bytes go to the consumer; the transfer fills the
     * other buffer meanwhile */
    char *tmp = b->lent;
    size_t cap = b->lent_cap;
    b->lent = x->bb;
    b->lent_cap = x->bcap;
    b->item.data = b->lent;
    b->item.len = x->blen;
    x->bb = tmp;
    x->bcap = cap;
    x->blen = 0;
    if (x->paused && !x->done && x->mt) {
      x->paused = false;
      x->last_data = aioc__now(x->mt->loop);
      curl_easy_pause(x->e, CURLPAUSE_CONT);
      drain(x->mt);
    }
    *item = &b->item;
    return 0;
  }
  if (x->err) return report(x);
  return AIOC_EXHAUSTED;
}

static int body_close(void *self) {
  body_iter *b = self;
  if (!b->closed) {
    b->closed = true;
    xfer_free(b->x);
    b->x = NULL;
  }
  return 0;
}

static void body_free(void *self) {
  body_iter *b = self;
  body_close(b);
  aioc__free(b->lent);
  aioc__free(b);
}

static const aioc_iter_vtable body_vt = {body_next, body_close, body_free};

int aioc_http_open(aioc_http_session *s, aioc_http_response **resp,
                   aioc_iter **body, const char *url,
                   const aioc_http_options *opts, double timeout) {
  if (resp) *resp = NULL;
  if (body) *body = NULL;
  if (!resp || !body) return fail(-EINVAL, "no place for the response");
  if (aioc__io_bad_timeout(timeout)) return fail(-EINVAL, "bad timeout");
  xfer *x;
  int rc = xfer_start(&x, s, url, opts, true);
  if (rc < 0) return rc;
  rc = xfer_wait(x, has_headers, aioc__io_deadline(x->mt->loop, timeout));
  /* a failure after the headers is the body iterator's to report, once
   * the chunks before it were given */
  if (rc == 0 && x->done && x->err && !x->headers_done) rc = report(x);
  else if (rc == -ETIMEDOUT)
    rc = fail(rc, "%s: no response headers in time", x->url);
  else if (rc == -ECANCELED)
    rc = fail(rc, "%s: cancelled", x->url);
  body_iter *b = NULL;
  if (rc == 0 && !(b = aioc__calloc(1, sizeof *b))) rc = fail(-ENOMEM, "out of memory");
  if (rc == 0 && (rc = make_response(x, resp)) < 0) rc = fail(rc, "out of memory");
  if (rc == 0 && (rc = aioc_iter_new(body, &body_vt, b)) < 0) {
    aioc_http_response_free(*resp);
    *resp = NULL;
    rc = fail(rc, "out of memory");
  }
  if (rc < 0) {
    aioc__free(b);
    xfer_free(x);
    return rc;
  }
  b->x = x;
  return 0;
}

int aioc_http_stats(aioc_loop *loop, size_t *started, size_t *running,
                    size_t *connections) {
  int rc;
  if (!(loop = aioc__io_pick_loop(loop, "aioc_http_stats", &rc))) return rc;
  aioc__slot *sl = aioc__slot_find(loop, &multi_key);
  multi *mt = sl ? aioc__container_of(sl, multi, slot) : NULL;
  if (started) *started = mt ? mt->started : 0;
  if (running) *running = mt ? mt->running : 0;
  if (connections) *connections = mt ? mt->connections : 0;
  return 0;
}
