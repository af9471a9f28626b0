/* Seed 002, example 3c-fetch-ip-addresses-ignore-exceptions: main waits
 * for the three requests but ignores their outcomes, so nobody retrieves
 * ip-api's KeyError; when the last reference to that task goes, the loop
 * reports "Task exception was never retrieved" with the task and the
 * error.
 *
 *   async def fetch_ip(service):
 *       start = time.time()
 *       print('Fetching IP from {}'.format(service.name))
 *       try:
 *           json_response = await aiohttp_get_json(service.url)
 *       except:
 *           print('{} is unresponsive'.format(service.name))
 *       else:
 *           ip = json_response[service.ip_attr]
 *           print('{} finished with result: {}, took: {:.2f} seconds'
 *                 .format(service.name, ip, time.time() - start))
 *
 *   async def main():
 *       futures = [fetch_ip(service) for service in SERVICES]
 *       await asyncio.wait(futures)  # intentionally ignore results
 *
 * Started in the article's order (borken, ip-api, ipify); ipify answers in
 * 1.41 s as printed. The report comes when main releases its task handles,
 * after the wait (in Python, when the task is garbage-collected).
 */
#include "seed_002_common.h"
#include "seed_002_examples.h"

#define NSERVICES 3

static const seed002_service services[NSERVICES] = {
    {"borken", "no-way-this-is-going-to-work.com", "ip", NULL, 0.05},
    {"ip-api", "ip-api.com", "this-is-not-an-attr", "query", 0.80},
    {"ipify", "api.ipify.org", "ip", "ip", 1.41},
};

static int fetch_ip(void *arg, void **result) {
  (void)result;
  const seed002_service *service = arg;
  double start = aioc_time();
  seed_out("Fetching IP from %s", service->name);
  seed002_json json_response;
  int rc = seed002_get_json(service, &json_response);
  if (rc == -ECANCELED) return rc;
  if (rc < 0) {
    seed_out("%s is unresponsive", service->name);
  } else {
    const char *ip;
    if ((rc = seed002_json_get(&json_response, service->ip_attr, &ip)) < 0)
      return rc;
    seed_out("%s finished with result: %s, took: %.2f seconds", service->name,
             ip, aioc_time() - start);
  }
  return 0;
}

static int amain(void *arg, void **result) {
  (void)arg, (void)result;
  aioc_task *ts[NSERVICES] = {NULL};
  aioc_future *futures[NSERVICES];
  int rc = seed002_spawn_fetches(ts, fetch_ip, services, NSERVICES);
  if (rc < 0) return rc;
  for (int i = 0; i < NSERVICES; i++) futures[i] = aioc_task_future(ts[i]);
  /* intentionally ignore results */
  rc = aioc_wait(futures, NSERVICES, AIOC_WAIT_ALL_COMPLETED, NULL, NULL, NULL,
                 NULL, AIOC_FOREVER);
  seed_release_all(ts, NSERVICES);
  return rc;
}

static int run(void) { return seed_run(amain, NULL); }

const seed_example seed_002_3c_exception_ignored = {
    "3c-fetch-ip-addresses-ignore-exceptions",
    "results ignored: nobody retrieves ip-api's KeyError, so the loop "
    "reports it",
    run};

#ifndef SEED_NO_MAIN
int main(int argc, char **argv) {
  if (!seed_is_check(argc, argv)) return run() == 0 ? 0 : 1;
  static const char *const expected[] = {
      "Fetching IP from borken",
      "Fetching IP from ip-api",
      "Fetching IP from ipify",
      "borken is unresponsive",
      "ipify finished with result: 81.106.46.223, took: 1.41 seconds",
      "Task exception was never retrieved",
      "task: fetch_ip(ip-api)",
      "error: KeyError: 'this-is-not-an-attr'",
  };
  int fails = 0;
  seed_capture_begin();
  SEED_CHECK(fails, run() == 0);
  SEED_EXPECT(fails, "3c-fetch-ip-addresses-ignore-exceptions", expected);
  SEED_CHECK(fails, seed_state.never_retrieved == 1);
  SEED_CHECK(fails, seed_state.last_code == -ENOENT);
  SEED_CHECK(fails, seed_reports() == 1);
  seed_capture_end();
  return seed_verdict("seed_002_3c_exception_ignored", fails);
}
#endif
