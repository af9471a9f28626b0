/* Seed 002, example 4a-timeout-with-wait-kwarg: the IP is a nice extra, not
 * worth a long wait. wait(timeout=..., return_when=FIRST_COMPLETED) returns
 * after the timeout at the latest; whatever is still pending is cancelled
 * and the response goes out with or without the IP.
 *
 *   async def fetch_ip(service):
 *       start = time.time()
 *       print('Fetching IP from {}'.format(service.name))
 *       await asyncio.sleep(random.randint(1, 3) * 0.1)
 *       try:
 *           json_response = await aiohttp_get_json(service.url)
 *       except:
 *           return '{} is unresponsive'.format(service.name)
 *       ip = json_response[service.ip_attr]
 *       print('{} finished with result: {}, took: {:.2f} seconds'.format(
 *           service.name, ip, time.time() - start))
 *       return ip
 *
 *   async def main(timeout):
 *       response = {"message": "Result from asynchronous.",
 *                   "ip": "not available"}
 *       futures = [fetch_ip(service) for service in SERVICES]
 *       done, pending = await asyncio.wait(
 *           futures, timeout=timeout, return_when=FIRST_COMPLETED)
 *       for future in pending:
 *           future.cancel()
 *       for future in done:
 *           response["ip"] = future.result()
 *       print(response)
 *
 *   print("Using a {} timeout".format(args.timeout))   # -t, default 0.01
 *   asyncio.run(main(args.timeout))
 *
 * The random pause is fixed to the article's run (ipify 0.3 s, ip-api
 * 0.2 s). The requests are real (seed_002_common.h): the local server
 * answers ip-api after 0.02 s, so that it finishes in 0.22 s as in the
 * article, and ipify after 0.3 s (it is cancelled, the article does not
 * say how long it took). The loop runs on the real clock (libcurl's), so
 * the time printed varies a little from run to run.
 * Usage: seed_002_4a_timeout [-t SECONDS]; --check runs the article's two
 * invocations (the default 0.01, then -t 5) and compares both.
 */
#include "seed_002_common.h"
#include "seed_002_examples.h"

#define NSERVICES 2
#define DEFAULT_TIMEOUT 0.01
#define IPIFY_MS 300
#define IPAPI_MS 20

static const seed002_service services[NSERVICES] = {
    {"ipify", SEED002_IPIFY(IPIFY_MS), "ip"},
    {"ip-api", SEED002_IPAPI(IPAPI_MS), "query"},
};

/* random.randint(1, 3) for each service, as drawn in the article's run. */
static const int pause_tenths[NSERVICES] = {3, 2};

static int fetch_ip(void *arg, void **result) {
  const seed002_service *service = arg;
  double start = aioc_time();
  seed_out("Fetching IP from %s", service->name);
  int rc = aioc_sleep(pause_tenths[service - services] * 0.1);
  if (rc < 0) return rc;
  json_t *json_response;
  rc = seed002_get_json(service->url, &json_response);
  if (rc == -ECANCELED) return rc;
  if (rc < 0) SEED002_RETURN_STR(result, "%s is unresponsive", service->name);
  const char *ip;
  if ((rc = seed002_json_get(json_response, service->ip_attr, &ip)) == 0) {
    seed_out("%s finished with result: %s, took: %.2f seconds", service->name,
             ip, aioc_time() - start);
    if (!(*result = seed002_format("%s", ip))) rc = -ENOMEM;
  }
  json_decref(json_response);
  return rc;
}

static int amain(void *arg, void **result) {
  (void)result;
  double timeout = *(const double *)arg;
  const char *ip = "not available";
  char *ip_owned = NULL;
  aioc_task *ts[NSERVICES] = {NULL};
  aioc_future *futures[NSERVICES], *done[NSERVICES], *pending[NSERVICES];
  size_t ndone = 0, npending = 0;
  int rc = seed002_spawn_fetches(ts, fetch_ip, services, NSERVICES);
  if (rc < 0) return rc;
  for (int i = 0; i < NSERVICES; i++) futures[i] = aioc_task_future(ts[i]);
  rc = aioc_wait(futures, NSERVICES, AIOC_WAIT_FIRST_COMPLETED, done, &ndone,
                 pending, &npending, timeout);
  for (size_t i = 0; i < npending; i++) aioc_future_cancel(pending[i], NULL);
  for (size_t i = 0; i < ndone && rc == 0; i++) {
    void *res;
    rc = aioc_future_result(done[i], &res); /* an error would "raise" */
    if (rc == 0) {
      free(ip_owned);
      ip = ip_owned = res;
    }
  }
  if (rc == 0)
    seed_out("{'message': 'Result from asynchronous.', 'ip': '%s'}", ip);
  free(ip_owned);
  seed_release_all(ts, NSERVICES);
  return rc;
}

/* str(float) as Python prints it: the shortest repr, ".0" for integers. */
static void py_float(char *buf, size_t n, double x) {
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(buf, n, "%.*g", prec, x);
    if (strtod(buf, NULL) == x) break;
  }
  if (!strpbrk(buf, ".eni")) strncat(buf, ".0", n - strlen(buf) - 1);
}

static int run_with(double timeout) {
  char t[32];
  py_float(t, sizeof t, timeout);
  seed_out("Using a %s timeout", t);
  int rc = seed002_server_start(0);
  if (rc < 0) return rc;
  rc = seed002_run(amain, &timeout);
  int src = seed002_server_stop();
  return rc < 0 ? rc : src;
}

/* The article's two invocations. */
static int run(void) {
  int rc = run_with(DEFAULT_TIMEOUT);
  int rc2 = run_with(5);
  return rc < 0 ? rc : rc2;
}

const seed_example seed_002_4a_timeout = {
    "4a-timeout-with-wait-kwarg",
    "wait(timeout, FIRST_COMPLETED), then cancel the rest: with 0.01 s the "
    "IP is \"not available\", with 5 s it arrives",
    run};

#ifndef SEED_NO_MAIN
int main(int argc, char **argv) {
  if (!seed_is_check(argc, argv)) {
    double timeout = DEFAULT_TIMEOUT;
    for (int i = 1; i < argc; i++) {
      if ((strcmp(argv[i], "-t") == 0 || strcmp(argv[i], "--timeout") == 0) &&
          i + 1 < argc) {
        char *end;
        timeout = strtod(argv[++i], &end);
        if (*end || !(timeout >= 0)) {
          fprintf(stderr, "invalid timeout: %s\n", argv[i]);
          return 2;
        }
      } else {
        fprintf(stderr, "usage: %s [-t SECONDS] [--check]\n", argv[0]);
        return 2;
      }
    }
    return run_with(timeout) == 0 ? 0 : 1;
  }
  static const seed002_line expected_default[] = {
      {"Using a 0.01 timeout", 0, 0, 0},
      {"Fetching IP from ipify", 0, 0, 0},
      {"Fetching IP from ip-api", 0, 0, 0},
      {"{'message': 'Result from asynchronous.', 'ip': 'not available'}", 0,
       0, 0},
  };
  /* ip-api's time: its pause (pause_tenths[1]), then its request. */
#define TOOK (0.2 + IPAPI_MS / 1000.0)
  static const seed002_line expected_5[] = {
      {"Using a 5.0 timeout", 0, 0, 0},
      {"Fetching IP from ipify", 0, 0, 0},
      {"Fetching IP from ip-api", 0, 0, 0},
      {"ip-api finished with result: 81.106.46.223, took: {took} seconds",
       TOOK, TOOK + SEED002_SLACK, 0},
      {"{'message': 'Result from asynchronous.', 'ip': '81.106.46.223'}", 0,
       0, 0},
  };
#undef TOOK
  int fails = 0;
  seed_capture_begin();
  SEED_CHECK(fails, run_with(DEFAULT_TIMEOUT) == 0);
  SEED002_EXPECT(fails, "4a-timeout-with-wait-kwarg", expected_default, 0,
                 0);
  SEED_CHECK(fails, seed_reports() == 0);
  seed_capture_end();
  seed_capture_begin();
  SEED_CHECK(fails, run_with(5) == 0);
  SEED002_EXPECT(fails, "4a-timeout-with-wait-kwarg -t 5", expected_5, 0, 0);
  SEED_CHECK(fails, seed_reports() == 0);
  seed_capture_end();
  return seed_verdict("seed_002_4a_timeout", fails);
}
#endif
