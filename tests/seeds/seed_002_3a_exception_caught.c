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
 * borken, ip-api). The requests are real (seed_002_common.h): ipify and
 * ip-api are the local server, answering after 0.45 and 0.40 s (the
 * article's took 5.35 and 4.91 s over the internet); borken's host is
 * under .invalid, which never resolves (RFC 6761), so its request fails
 * with AIOC_ENONAME, as the article's did. The timings are real and vary
 * a little from run to run.
 */
#include "seed_002_common.h"
#include "seed_002_examples.h"

#define NSERVICES 3
#define IPAPI_MS 400
#define IPIFY_MS 450

/* SERVICES, in the order the requests start. */
static const seed002_service services[NSERVICES] = {
    {"ip-api", SEED002_IPAPI(IPAPI_MS), "query"},
    {"ipify", SEED002_IPIFY(IPIFY_MS), "ip"},
    {"borken", SEED002_BORKEN_URL, "ip"},
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

static int run(void) {
  int rc = seed002_server_start(0);
  if (rc < 0) return rc;
  rc = seed002_run(amain, NULL);
  int src = seed002_server_stop();
  return rc < 0 ? rc : src;
}

const seed_example seed_002_3a_exception_caught = {
    "3a-fetch-ip-addresses-fail",
    "one of three services is offline: fetch_ip catches the failed request "
    "and returns \"borken is unresponsive\"",
    run};

#ifndef SEED_NO_MAIN
int main(int argc, char **argv) {
  if (!seed_is_check(argc, argv)) return run() == 0 ? 0 : 1;
  static const seed002_line expected[] = {
      {"Fetching IP from ip-api", 0, 0, 0},
      {"Fetching IP from ipify", 0, 0, 0},
      {"Fetching IP from borken", 0, 0, 0},
      {"ipify finished with result: 81.106.46.223, took: {took} seconds",
       IPIFY_MS / 1000.0, IPIFY_MS / 1000.0 + SEED002_SLACK, 0},
      {"borken is unresponsive", 0, 0, 0},
      {"ip-api finished with result: 81.106.46.223, took: {took} seconds",
       IPAPI_MS / 1000.0, IPAPI_MS / 1000.0 + SEED002_SLACK, 0},
  };
  int fails = 0;
  seed_capture_begin();
  SEED_CHECK(fails, run() == 0);
  SEED002_EXPECT(fails, "3a-fetch-ip-addresses-fail", expected, 0, 0);
  SEED_CHECK(fails, seed_reports() == 0);
  seed_capture_end();
  return seed_verdict("seed_002_3a_exception_caught", fails);
}
#endif
