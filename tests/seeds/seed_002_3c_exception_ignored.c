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
 * Started in the article's order (borken, ip-api, ipify). The requests are
 * real (seed_002_common.h): ip-api's answer comes from the local server
 * after 0.3 s, ipify's after 0.5 s (1.41 s in the article); borken's host
 * is under .invalid, which never resolves (RFC 6761): the name lookup
 * fails at once on a machine with a resolver, so borken is unresponsive
 * first, as in the article (the check allows for a slow resolver). The
 * report comes when main releases its task handles, after the wait (in
 * Python, when the task is garbage-collected). The timings are real and
 * vary a little from run to run.
 */
#include "seed_002_common.h"
#include "seed_002_examples.h"

#define NSERVICES 3
#define IPAPI_MS 300
#define IPIFY_MS 500

static const seed002_service services[NSERVICES] = {
    {"borken", SEED002_BORKEN_URL, "ip"},
    {"ip-api", SEED002_IPAPI(IPAPI_MS), "this-is-not-an-attr"},
    {"ipify", SEED002_IPIFY(IPIFY_MS), "ip"},
};

static int fetch_ip(void *arg, void **result) {
  (void)result;
  const seed002_service *service = arg;
  double start = aioc_time();
  seed_out("Fetching IP from %s", service->name);
  json_t *json_response;
  int rc = seed002_get_json(service->url, &json_response);
  if (rc == -ECANCELED) return rc;
  if (rc < 0) {
    seed_out("%s is unresponsive", service->name);
    return 0;
  }
  const char *ip;
  if ((rc = seed002_json_get(json_response, service->ip_attr, &ip)) == 0)
    seed_out("%s finished with result: %s, took: %.2f seconds", service->name,
             ip, aioc_time() - start);
  json_decref(json_response);
  return rc;
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

static int run(void) {
  int rc = seed002_server_start(0);
  if (rc < 0) return rc;
  rc = seed002_run(amain, NULL);
  int src = seed002_server_stop();
  return rc < 0 ? rc : src;
}

const seed_example seed_002_3c_exception_ignored = {
    "3c-fetch-ip-addresses-ignore-exceptions",
    "results ignored: nobody retrieves ip-api's KeyError, so the loop "
    "reports it",
    run};

#ifndef SEED_NO_MAIN
int main(int argc, char **argv) {
  if (!seed_is_check(argc, argv)) return run() == 0 ? 0 : 1;
  /* borken fails as soon as its name lookup does, ipify answers after
   * IPIFY_MS: borken comes first unless the resolver is slow (group 1: in
   * either order). */
  static const seed002_line expected[] = {
      {"Fetching IP from borken", 0, 0, 0},
      {"Fetching IP from ip-api", 0, 0, 0},
      {"Fetching IP from ipify", 0, 0, 0},
      {"borken is unresponsive", 0, 0, 1},
      {"ipify finished with result: 81.106.46.223, took: {took} seconds",
       IPIFY_MS / 1000.0, IPIFY_MS / 1000.0 + SEED002_SLACK, 1},
      {"Task exception was never retrieved", 0, 0, 0},
      {"task: fetch_ip(ip-api)", 0, 0, 0},
      {"error: KeyError: 'this-is-not-an-attr'", 0, 0, 0},
  };
  int fails = 0;
  seed_capture_begin();
  SEED_CHECK(fails, run() == 0);
  SEED002_EXPECT(fails, "3c-fetch-ip-addresses-ignore-exceptions", expected,
                 0, 0);
  SEED_CHECK(fails, seed_state.never_retrieved == 1);
  SEED_CHECK(fails, seed_state.last_code == -ENOENT);
  SEED_CHECK(fails, seed_reports() == 1);
  seed_capture_end();
  return seed_verdict("seed_002_3c_exception_ignored", fails);
}
#endif
