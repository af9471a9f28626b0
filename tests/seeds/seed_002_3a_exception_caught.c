/* Seed 002, example 3a-fetch-ip-addresses-fail: one of three IP services
 * is offline; fetch_ip() catches the failed request with try/except and
 * returns "borken is unresponsive" instead.
 *
 *   async def fetch_ip(service):       # seed002_fetch_ip_catching()
 *       ...
 *       try:
 *           json_response = await aiohttp_get_json(service.url)
 *       except:
 *           return '{} is unresponsive'.format(service.name)
 *       ...
 *
 *   async def main():
 *       futures = [fetch_ip(service) for service in SERVICES]
 *       done, _ = await asyncio.wait(futures)
 *       for future in done:
 *           print(future.result())
 *
 * Python's sets have no order; aioc's arrays do. The port starts the
 * requests in the order the article's run did (ip-api, ipify, borken) and
 * lists them to wait() in the order its done set was printed (ipify,
 * borken, ip-api). Latencies: ipify 5.35 s, ip-api 4.91 s as printed;
 * borken's host fails to resolve after 0.05 s.
 */
#include "seed_002_common.h"
#include "seed_002_examples.h"

#define NSERVICES 3

/* SERVICES, in the order the requests start. */
static const seed002_service services[NSERVICES] = {
    {"ip-api", "ip-api.com", "query", "query", 4.91},
    {"ipify", "api.ipify.org", "ip", "ip", 5.35},
    {"borken", "no-way-this-is-going-to-work.com", "ip", NULL, 0.05},
};

/* The order in which the article printed its done set. */
static const int done_order[NSERVICES] = {1, 2, 0};

static int amain(void *arg, void **result) {
  (void)arg, (void)result;
  aioc_task *ts[NSERVICES] = {NULL};
  aioc_future *futures[NSERVICES], *done[NSERVICES];
  size_t ndone = 0;
  int rc = seed002_spawn_fetches(ts, seed002_fetch_ip_catching, services,
                                 NSERVICES);
  if (rc < 0) return rc;
  for (int i = 0; i < NSERVICES; i++)
    futures[i] = aioc_task_future(ts[done_order[i]]);
  rc = aioc_wait(futures, NSERVICES, AIOC_WAIT_ALL_COMPLETED, done, &ndone,
                 NULL, NULL, AIOC_FOREVER);
  for (size_t i = 0; i < ndone && rc == 0; i++) {
    void *res;
    rc = aioc_future_result(done[i], &res); /* an error would "raise" */
    if (rc == 0) {
      seed_out("%s", (char *)res);
      free(res);
    }
  }
  seed_release_all(ts, NSERVICES);
  return rc;
}

static int run(void) { return seed_run(amain, NULL); }

const seed_example seed_002_3a_exception_caught = {
    "3a-fetch-ip-addresses-fail",
    "one of three services is offline: fetch_ip catches the failed request "
    "and returns \"borken is unresponsive\"",
    run};

#ifndef SEED_NO_MAIN
int main(int argc, char **argv) {
  if (!seed_is_check(argc, argv)) return run() == 0 ? 0 : 1;
  static const char *const expected[] = {
      "Fetching IP from ip-api",
      "Fetching IP from ipify",
      "Fetching IP from borken",
      "ipify finished with result: 81.106.46.223, took: 5.35 seconds",
      "borken is unresponsive",
      "ip-api finished with result: 81.106.46.223, took: 4.91 seconds",
  };
  int fails = 0;
  seed_capture_begin();
  SEED_CHECK(fails, run() == 0);
  SEED_EXPECT(fails, "3a-fetch-ip-addresses-fail", expected);
  SEED_CHECK(fails, seed_reports() == 0);
  seed_capture_end();
  return seed_verdict("seed_002_3a_exception_caught", fails);
}
#endif
