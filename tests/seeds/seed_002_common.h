/* What the IP-service examples of seed 002 (2b to 4a) share: the services,
 * a fake aiohttp_get_json() that sleeps instead of doing HTTP, the JSON
 * lookup that raises KeyError, and the fetch_ip() coroutines that several
 * examples of the article repeat word for word.
 *
 * A "request" is aioc_sleep(latency) followed by a fixed answer
 * {json_key: SEED002_IP}, or a failure for an unreachable service. */
#ifndef AIOC_SEED_002_COMMON_H
#define AIOC_SEED_002_COMMON_H

#include <stdio.h>

#include "seed_util.h"

/* The address every fake service answers (the article's). */
#define SEED002_IP "81.106.46.223"

/* Service = namedtuple('Service', ('name', 'url', 'ip_attr')), plus what
 * the fake needs to answer like the real service did in the article. */
typedef struct seed002_service {
  const char *name;
  const char *host;     /* the URL's host, for the connection error */
  const char *ip_attr;  /* the key fetch_ip() reads from the answer */
  const char *json_key; /* the key the service answers with; NULL: the
                           host does not resolve, the request fails */
  double latency;       /* seconds the request takes */
} seed002_service;

/* A JSON answer with one member. */
typedef struct seed002_json {
  const char *key, *value;
} seed002_json;

/* await aiohttp_get_json(service.url): 0 with the answer, or the error
 * (-EHOSTUNREACH for an unreachable host, -ECANCELED, ...). */
static inline int seed002_get_json(const seed002_service *s,
                                   seed002_json *out) {
  out->key = out->value = NULL;
  int rc = aioc_sleep(s->latency);
  if (rc < 0) return rc;
  if (!s->json_key)
    return aioc_error(-EHOSTUNREACH, "Cannot connect to host %s:80", s->host);
  out->key = s->json_key;
  out->value = SEED002_IP;
  return 0;
}

/* json_response[key]: 0 with the value, or fails the current task with
 * -ENOENT "KeyError: 'key'". */
static inline int seed002_json_get(const seed002_json *j, const char *key,
                                   const char **value) {
  *value = NULL;
  if (strcmp(j->key, key) != 0)
    return aioc_error(-ENOENT, "KeyError: '%s'", key);
  *value = j->value;
  return 0;
}

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
  seed002_json json_response;
  int rc = seed002_get_json(service, &json_response);
  if (rc < 0) return rc;
  const char *ip;
  if ((rc = seed002_json_get(&json_response, service->ip_attr, &ip)) < 0)
    return rc;
  SEED002_RETURN_STR(result, "%s finished with result: %s, took: %.2f seconds",
                     service->name, ip, aioc_time() - start);
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
  seed002_json json_response;
  int rc = seed002_get_json(service, &json_response);
  if (rc == -ECANCELED) return rc; /* the bare except would catch
                                      CancelledError too; let it through */
  if (rc < 0) SEED002_RETURN_STR(result, "%s is unresponsive", service->name);
  const char *ip;
  if ((rc = seed002_json_get(&json_response, service->ip_attr, &ip)) < 0)
    return rc;
  SEED002_RETURN_STR(result, "%s finished with result: %s, took: %.2f seconds",
                     service->name, ip, aioc_time() - start);
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

#endif /* AIOC_SEED_002_COMMON_H */
