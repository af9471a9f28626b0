/* What the HTTP examples of seed 002 (1d to 4a) share: the local server
 * that stands in for GitHub and the IP services, aiohttp_get() and
 * aiohttp_get_json() as real HTTP requests (aioc_http_request(), libcurl),
 * the JSON lookup that raises KeyError, the fetch_ip() coroutines that
 * several examples of the article repeat word for word, and the check of
 * an output whose timings vary.
 *
 * The services. Every request is a real HTTP request to the test server
 * of tests/httpd.h, which answers like the article's services: /json/ip
 * as ipify ({"ip": ...}), /json/query as ip-api ({"query": ...}), /events
 * as GitHub (with a Date header), each after ?delay=MS milliseconds, all
 * with the article's address, 81.106.46.223. The server listens on
 * 127.0.0.1 and runs in a thread of its own on a loop of its own, as a
 * remote server would: the example's loop holds only the article's tasks,
 * so what it reports (2b's pending task, 3c's unretrieved error) is about
 * them alone, and 1d's synchronous requests, each made by a loop run to
 * its end, have a server to wait for. The offline service, "borken", is a
 * host under the .invalid top-level domain, which RFC 6761 reserves so
 * that it never resolves: its request really fails (AIOC_ENONAME, from
 * the name lookup) and needs no network.
 *
 * The clock. libcurl keeps real time, so these examples run on the real
 * clock and their "took: X.XX seconds" vary from run to run. The checks
 * (seed002_expect()) compare every line exactly except those numbers,
 * which must lie within bounds derived from the server's delays: the
 * lower bounds are the delays themselves, the upper ones generous. The
 * delays are kept small, so the examples take about a second each. */
#ifndef AIOC_SEED_002_COMMON_H
#define AIOC_SEED_002_COMMON_H

#include <ctype.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>

#include "httpd.h"
#include "seed_util.h"

/* The address the services answer (the article's). */
#define SEED002_IP "81.106.46.223"

/* The URL of the service that does not resolve (the article's
 * http://no-way-this-is-going-to-work.com/json): the .invalid TLD never
 * resolves (RFC 6761). */
#define SEED002_BORKEN_URL "http://no-way-this-is-going-to-work.invalid/json"

#define SEED002_STR_(x) #x
#define SEED002_STR(x) SEED002_STR_(x)

/* Seconds a request may take to resolve and connect: the local server
 * connects at once and .invalid fails at once on a machine with a
 * resolver; this bounds a resolver that does not answer. */
#define SEED002_CONNECT_TIMEOUT 5.0

/* ---- the local server ---------------------------------------------------- */

/* The server of the example running now (each seed file has its own). */
static struct seed002_server {
  httpd_options opts;
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int state;        /* 0 starting, 1 serving, or the error it failed with */
  int port;         /* once serving */
  aioc_loop *loop;  /* the server's loop, once serving */
  aioc_event *stop; /* set (on the server's loop) to stop it */
  int rc;           /* how the server's thread ended */
} seed002_server;

/* The server's thread runs this as its asyncio.run(): it serves until the
 * stop event is set, then closes the server. */
static inline int seed002_serve(void *arg, void **result) {
  (void)result;
  struct seed002_server *s = arg;
  httpd *h = NULL;
  aioc_event *stop = NULL;
  int rc = aioc_event_new(&stop);
  if (rc == 0) rc = httpd_start(&h, &s->opts);
  pthread_mutex_lock(&s->mu);
  if (rc == 0) {
    s->port = httpd_port(h);
    s->loop = aioc_get_running_loop();
    s->stop = stop;
    s->state = 1;
  } else {
    s->state = rc;
  }
  pthread_cond_signal(&s->cv);
  pthread_mutex_unlock(&s->mu);
  if (rc == 0) {
    rc = aioc_event_wait(stop, AIOC_FOREVER);
    int crc = httpd_close(h, 5);
    if (rc == 0) rc = crc;
  }
  httpd_free(h);
  aioc_event_free(stop);
  return rc;
}

static inline void *seed002_server_thread(void *arg) {
  struct seed002_server *s = arg;
  s->rc = aioc_run(seed002_serve, s, NULL);
  return NULL;
}

static inline void seed002_server_stop_cb(void *arg) {
  aioc_event_set((aioc_event *)arg);
}

/* Stops the services and waits for their thread. Returns how the server
 * ended (0, or an error of httpd_close()). Harmless when not started. */
static inline int seed002_server_stop(void) {
  struct seed002_server *s = &seed002_server;
  if (s->state != 1) return 0;
  /* The loop lives until the stop event is set: the call cannot outlive
   * it. */
  int rc = aioc_call_soon_threadsafe(s->loop, seed002_server_stop_cb, s->stop);
  if (rc < 0) {
    fprintf(stderr, "seed002_server_stop: %s\n", aioc_strerror(rc));
    abort(); /* the thread would never end */
  }
  pthread_join(s->thread, NULL);
  pthread_cond_destroy(&s->cv);
  pthread_mutex_destroy(&s->mu);
  s->state = 0;
  return s->rc;
}

static inline int seed002_warm_up(void *arg, void **result);

/* Starts the services on 127.0.0.1 in a thread of their own, answering
 * with SEED002_IP; date_base non-zero gives the Date header a fake clock
 * that reads it now (httpd_options.date_base). Returns 0 once the server
 * listens and has answered a first request (seed002_warm_up()), or an
 * error. */
static inline int seed002_server_start(double date_base) {
  int rc;
  struct seed002_server *s = &seed002_server;
  memset(s, 0, sizeof *s);
  s->opts.ip = SEED002_IP;
  s->opts.date_base = date_base;
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv, NULL);
  rc = -pthread_create(&s->thread, NULL, seed002_server_thread, s);
  if (rc == 0) {
    pthread_mutex_lock(&s->mu);
    while (s->state == 0) pthread_cond_wait(&s->cv, &s->mu);
    rc = s->state < 0 ? s->state : 0;
    pthread_mutex_unlock(&s->mu);
    if (rc < 0) pthread_join(s->thread, NULL);
  }
  if (rc < 0) {
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    s->state = 0;
    return rc;
  }
  if ((rc = aioc_run(seed002_warm_up, NULL, NULL)) < 0) {
    fprintf(stderr, "seed 002: the local server does not answer: %s\n",
            aioc_strerror(rc));
    seed002_server_stop();
  }
  return rc;
}

/* The URL of url: a path on the local server ("/json/ip?delay=100")
 * becomes "http://127.0.0.1:PORT/json/ip?delay=100"; a whole URL stays as
 * it is. */
static inline void seed002_url(char *buf, size_t n, const char *url) {
  if (url[0] == '/')
    snprintf(buf, n, "http://127.0.0.1:%d%s", seed002_server.port, url);
  else
    snprintf(buf, n, "%s", url);
}

/* ---- running ------------------------------------------------------------- */

/* asyncio.run(fn(arg)) on the real clock, reports through seed_report(). */
static inline int seed002_run(aioc_fn fn, void *arg) {
  aioc_run_options o;
  memset(&o, 0, sizeof o);
  seed_tramp t = {fn, arg};
  return aioc_run_ex(seed_tramp_main, &t, NULL, &o);
}

/* time.time() for plain code: a monotonic clock, in seconds. */
static inline double seed002_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- aiohttp_get(), aiohttp_get_json(), json[key] ------------------------ */

/* await aiohttp_get(url) (url as for seed002_url()): 0 with the response
 * (aioc_http_response_free() it), or the request's error (AIOC_ENONAME,
 * -ECONNREFUSED, -ECANCELED...) with libcurl's message on the task. */
static inline int seed002_get(const char *url, aioc_http_response **out) {
  char full[256];
  seed002_url(full, sizeof full, url);
  aioc_http_options o;
  memset(&o, 0, sizeof o);
  o.connect_timeout = SEED002_CONNECT_TIMEOUT;
  return aioc_http_request(NULL, out, full, &o, AIOC_FOREVER);
}

/* import aiohttp, as it were: the first request of a process is slower
 * than the others (libcurl initialises, OpenSSL too, and under an
 * emulator every code path it takes is translated the first time: 0.1 to
 * 0.4 s under qemu). seed002_server_start() makes one (a GET of /events,
 * at once) before the example's timings start, as the article's imports
 * come before its. */
static inline int seed002_warm_up(void *arg, void **result) {
  (void)arg, (void)result;
  aioc_http_response *r;
  int rc = seed002_get("/events", &r);
  if (rc == 0) aioc_http_response_free(r);
  return rc;
}

/* await aiohttp_get_json(url): 0 with the parsed answer (json_decref()
 * it), or the request's error, or -EPROTO "JSONDecodeError: ..." for a
 * body that is not JSON. */
static inline int seed002_get_json(const char *url, json_t **out) {
  *out = NULL;
  aioc_http_response *r;
  int rc = seed002_get(url, &r);
  if (rc < 0) return rc;
  json_error_t err;
  *out = json_loadb(r->body, r->body_len, 0, &err);
  aioc_http_response_free(r);
  if (!*out) return aioc_error(-EPROTO, "JSONDecodeError: %s", err.text);
  return 0;
}

/* json_response[key], a string: 0 with the value (valid as long as j),
 * or fails the current task with -ENOENT "KeyError: 'key'". */
static inline int seed002_json_get(json_t *j, const char *key,
                                   const char **value) {
  *value = json_string_value(json_object_get(j, key));
  if (!*value) return aioc_error(-ENOENT, "KeyError: '%s'", key);
  return 0;
}

/* ---- results ------------------------------------------------------------- */

/* A malloc'ed, printf-formatted string (a task's result, freed by the
 * taker or by the task's result_free = free). NULL without memory. */
static inline char *seed002_format(const char *fmt, ...) AIOC_PRINTF(1, 2);
static inline char *seed002_format(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int len = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (len < 0) return NULL;
  char *s = malloc((size_t)len + 1);
  if (!s) return NULL;
  va_start(ap, fmt);
  vsnprintf(s, (size_t)len + 1, fmt, ap);
  va_end(ap);
  return s;
}

/* Stores a formatted string as a task's result. */
#define SEED002_RETURN_STR(result, ...)                                        \
  do {                                                                         \
    if (!(*(result) = seed002_format(__VA_ARGS__))) return -ENOMEM;            \
    return 0;                                                                  \
  } while (0)

/* ---- the IP services ----------------------------------------------------- */

/* Service = namedtuple('Service', ('name', 'url', 'ip_attr')). The url is
 * a path on the local server (with the delay the service takes to
 * answer) or a whole URL (SEED002_BORKEN_URL). */
typedef struct seed002_service {
  const char *name;
  const char *url;
  const char *ip_attr; /* the key fetch_ip() reads from the answer */
} seed002_service;

/* The services' paths, answering after MS milliseconds. */
#define SEED002_IPIFY(ms) "/json/ip?delay=" SEED002_STR(ms)
#define SEED002_IPAPI(ms) "/json/query?delay=" SEED002_STR(ms)

/* fetch_ip() of 2b and 2c: no error handling.
 *
 *   async def fetch_ip(service):
 *       start = time.time()
 *       print('Fetching IP from {}'.format(service.name))
 *       json_response = await aiohttp_get_json(service.url)
 *       ip = json_response[service.ip_attr]
 *       return '{} finished with result: {}, took: {:.2f} seconds'.format(
 *           service.name, ip, time.time() - start)
 */
static inline int seed002_fetch_ip(void *arg, void **result) {
  const seed002_service *service = arg;
  double start = aioc_time();
  seed_out("Fetching IP from %s", service->name);
  json_t *json_response;
  int rc = seed002_get_json(service->url, &json_response);
  if (rc < 0) return rc;
  const char *ip;
  if ((rc = seed002_json_get(json_response, service->ip_attr, &ip)) == 0) {
    if (!(*result = seed002_format(
              "%s finished with result: %s, took: %.2f seconds",
              service->name, ip, aioc_time() - start)))
      rc = -ENOMEM;
  }
  json_decref(json_response);
  return rc;
}

/* fetch_ip() of 3a and 3b: a failed request is caught and becomes the
 * result; a missing key (outside the try) fails the task.
 *
 *   try:
 *       json_response = await aiohttp_get_json(service.url)
 *   except:
 *       return '{} is unresponsive'.format(service.name)
 *   ip = json_response[service.ip_attr]
 *   return '{} finished with result: ...'
 */
static inline int seed002_fetch_ip_catching(void *arg, void **result) {
  const seed002_service *service = arg;
  double start = aioc_time();
  seed_out("Fetching IP from %s", service->name);
  json_t *json_response;
  int rc = seed002_get_json(service->url, &json_response);
  if (rc == -ECANCELED) return rc; /* the bare except would catch
                                      CancelledError too; let it through */
  if (rc < 0) SEED002_RETURN_STR(result, "%s is unresponsive", service->name);
  const char *ip;
  if ((rc = seed002_json_get(json_response, service->ip_attr, &ip)) == 0) {
    if (!(*result = seed002_format(
              "%s finished with result: %s, took: %.2f seconds",
              service->name, ip, aioc_time() - start)))
      rc = -ENOMEM;
  }
  json_decref(json_response);
  return rc;
}

/* futures = [fetch(service) for service in services]: spawns one task per
 * service, in the order given, named "fetch_ip(<name>)", string results.
 * On failure, releases what it spawned and returns the code. */
static inline int seed002_spawn_fetches(aioc_task **ts, aioc_fn fetch,
                                        const seed002_service *services,
                                        size_t n) {
  for (size_t i = 0; i < n; i++) {
    char name[64];
    snprintf(name, sizeof name, "fetch_ip(%s)", services[i].name);
    int rc = seed_spawn(&ts[i], fetch, (void *)&services[i], name, free);
    if (rc < 0) {
      seed_release_all(ts, i);
      return rc;
    }
  }
  return 0;
}

/* main() of 2b and 2c, which the article writes identically:
 *
 *   futures = [fetch_ip(service) for service in SERVICES]
 *   done, pending = await asyncio.wait(futures, return_when=FIRST_COMPLETED)
 *   print(done.pop().result())
 *
 * With cancel_pending, the pending tasks are then cancelled (what
 * asyncio.run() does under the hood; 2c makes it explicit). Without it they
 * are left behind, still running. */
#define SEED002_MAX_SERVICES 4
static inline int seed002_first_ip(const seed002_service *services, size_t n,
                                   int cancel_pending) {
  aioc_task *ts[SEED002_MAX_SERVICES] = {NULL};
  aioc_future *futures[SEED002_MAX_SERVICES], *done[SEED002_MAX_SERVICES],
      *pending[SEED002_MAX_SERVICES];
  size_t ndone = 0, npending = 0;
  if (n > SEED002_MAX_SERVICES) return -EINVAL;
  int rc = seed002_spawn_fetches(ts, seed002_fetch_ip, services, n);
  if (rc < 0) return rc;
  for (size_t i = 0; i < n; i++) futures[i] = aioc_task_future(ts[i]);
  rc = aioc_wait(futures, n, AIOC_WAIT_FIRST_COMPLETED, done, &ndone, pending,
                 &npending, AIOC_FOREVER);
  if (rc == 0 && ndone > 0) {
    void *res;
    rc = aioc_future_result(done[0], &res);
    if (rc == 0) {
      seed_out("%s", (char *)res);
      free(res);
    }
  }
  if (cancel_pending)
    for (size_t i = 0; i < npending; i++) aioc_future_cancel(pending[i], NULL);
  seed_release_all(ts, n);
  return rc;
}

/* ---- checking an output on the real clock -------------------------------- */

/* One expected line. text is the line as printed, except that "{took}"
 * stands for a duration printed with two decimals, which must lie within
 * [lo, hi] seconds, and "{date}" for an HTTP date (IMF-fixdate, "Fri, 29
 * Jun 2018 11:41:37 GMT") within the check's window. Lines in a row with
 * the same non-zero group may come in any order among themselves (the
 * order in which concurrent requests finish is not the article's point
 * everywhere). */
typedef struct seed002_line {
  const char *text;
  double lo, hi;
  int group;
} seed002_line;

/* How much later than its lower bound a duration may be: generous, for
 * loaded machines, sanitizers and emulators. */
#define SEED002_SLACK 3.0

/* An HTTP date at s: its length (29) with its Unix time in *t, or 0. */
static inline size_t seed002_parse_date(const char *s, double *t) {
  static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
  char wday[4], mon[4];
  struct tm tm;
  int n = -1;
  memset(&tm, 0, sizeof tm);
  if (sscanf(s, "%3[A-Za-z], %2d %3s %4d %2d:%2d:%2d GMT%n", wday, &tm.tm_mday,
             mon, &tm.tm_year, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 7 ||
      n != 29)
    return 0;
  const char *m = strstr(months, mon);
  if (!m || (m - months) % 3) return 0;
  tm.tm_mon = (int)(m - months) / 3;
  tm.tm_year -= 1900;
  time_t tt = timegm(&tm);
  /* Formatted back, it must read the same (the weekday, the fields). */
  char back[64];
  strftime(back, sizeof back, "%a, %d %b %Y %H:%M:%S GMT", gmtime_r(&tt, &tm));
  if (strncmp(back, s, 29) != 0) return 0;
  *t = (double)tt;
  return 29;
}

/* Does got match e (dates within [dlo, dhi])? */
static inline int seed002_line_matches(const seed002_line *e, const char *got,
                                       double dlo, double dhi) {
  const char *p = e->text, *g = got;
  while (*p) {
    if (strncmp(p, "{took}", 6) == 0) {
      char *end;
      if (!isdigit((unsigned char)*g)) return 0;
      double v = strtod(g, &end);
      const char *dot = strchr(g, '.');
      if (!dot || dot >= end || end - dot != 3) return 0; /* "%.2f" */
      /* printed rounded to 0.01 */
      if (v < e->lo - 0.006 || v > e->hi + 0.006) return 0;
      g = end;
      p += 6;
    } else if (strncmp(p, "{date}", 6) == 0) {
      double t;
      size_t n = seed002_parse_date(g, &t);
      if (!n || t < dlo || t > dhi) return 0;
      g += n;
      p += 6;
    } else {
      if (*p != *g) return 0;
      p++, g++;
    }
  }
  return *g == 0;
}

static inline void seed002_describe(const seed002_line *e) {
  fprintf(stderr, "\"%s\"", e->text);
  if (strstr(e->text, "{took}"))
    fprintf(stderr, " (took within [%.2f, %.2f])", e->lo, e->hi);
}

/* Compares the kept lines (seed_out()) with expected[0..n), {date} within
 * [date_lo, date_hi] (Unix time): prints every difference to stderr and
 * returns the number of failures (0: all match). */
static inline int seed002_expect(const char *what, const seed002_line *expected,
                                 size_t n, double date_lo, double date_hi) {
  int fails = 0;
  size_t got = seed_state.n, m = n < got ? n : got;
  if (got != n) {
    fprintf(stderr, "%s: %zu lines, expected %zu\n", what, got, n);
    fails++;
  }
  for (size_t i = 0; i < m;) {
    size_t j = i + 1; /* expected[i..j): a group, in any order */
    if (expected[i].group)
      while (j < m && j - i < 32 && expected[j].group == expected[i].group)
        j++;
    unsigned long used = 0;
    for (size_t k = i; k < j; k++) {
      const char *line = seed_state.lines[k];
      size_t x = i;
      while (x < j &&
             ((used >> (x - i)) & 1 ||
              !seed002_line_matches(&expected[x], line, date_lo, date_hi)))
        x++;
      if (x < j) {
        used |= 1ul << (x - i);
        continue;
      }
      fprintf(stderr, "%s: line %zu: got \"%s\", expected ", what, k + 1, line);
      if (j - i == 1) {
        seed002_describe(&expected[k]);
      } else {
        fprintf(stderr, "one of lines %zu-%zu:", i + 1, j);
        for (size_t y = i; y < j; y++) {
          fprintf(stderr, "\n    ");
          seed002_describe(&expected[y]);
        }
      }
      fprintf(stderr, "\n");
      fails++;
    }
    i = j;
  }
  for (size_t k = m; k < got; k++)
    fprintf(stderr, "%s: line %zu: unexpected \"%s\"\n", what, k + 1,
            seed_state.lines[k]);
  for (size_t k = m; k < n; k++) {
    fprintf(stderr, "%s: line %zu: missing ", what, k + 1);
    seed002_describe(&expected[k]);
    fprintf(stderr, "\n");
  }
  return fails;
}

/* Compares the kept lines with a static array of seed002_line. */
#define SEED002_EXPECT(fails, what, arr, date_lo, date_hi)                     \
  ((fails) += seed002_expect((what), (arr), sizeof(arr) / sizeof *(arr),       \
                             (date_lo), (date_hi)))

#endif /* AIOC_SEED_002_COMMON_H */
