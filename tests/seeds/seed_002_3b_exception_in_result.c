/* Seed 002, example 3b-fetch-ip-addresses-future-exceptions: an error
 * nobody expected (ip-api's answer lacks the key fetch_ip() reads, a
 * KeyError outside the try) fails the task; it surfaces where the result
 * is read. aioc_future_result() returns the error code and
 * aioc_future_error_message() gives the message.
 *
 *   async def main():
 *       futures = [fetch_ip(service) for service in SERVICES]
 *       done, _ = await asyncio.wait(futures)
 *       for future in done:
 *           try:
 *               print(future.result())
 *           except:
 *               print("Unexpected error: {}".format(traceback.format_exc()))
 *
 * fetch_ip() is 3a's (seed002_fetch_ip_catching()). C has no traceback:
 * the port prints the error's message, "KeyError: 'this-is-not-an-attr'",
 * the traceback's last line. Started in the article's order (ip-api, ipify,
 * borken), listed to wait() in the order its done set was printed (borken,
 * ip-api, ipify). The requests are real (seed_002_common.h): ip-api's
 * answer, {"query": ...}, comes from the local server after 0.4 s and
 * ipify's after 0.5 s (0.52 s in the article); borken's host is under
 * .invalid, which never resolves (RFC 6761). The timings are real and
 * vary a little from run to run.
 */
#include "seed_002_common.h"
#include "seed_002_examples.h"

#define NSERVICES 3
#define IPAPI_MS 400
#define IPIFY_MS 500

static const seed002_service services[NSERVICES] = {
    {"ip-api", SEED002_IPAPI(IPAPI_MS), "this-is-not-an-attr"},
    {"ipify", SEED002_IPIFY(IPIFY_MS), "ip"},
    {"borken", SEED002_BORKEN_URL, "ip"},
};

static const int done_order[NSERVICES] = {2, 0, 1};

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
  for (size_t i = 0; i < ndone; i++) {
    void *res;
    int err = aioc_future_result(done[i], &res);
    if (err == 0) {
      seed_out("%s", (char *)res);
      free(res);
    } else {
      const char *msg = aioc_future_error_message(done[i]);
      seed_out("Unexpected error: %s", msg ? msg : aioc_strerror(err));
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

const seed_example seed_002_3b_exception_in_result = {
    "3b-fetch-ip-addresses-future-exceptions",
    "an unexpected KeyError fails ip-api's task; it surfaces when main reads "
    "the result",
    run};

#ifndef SEED_NO_MAIN
int main(int argc, char **argv) {
  if (!seed_is_check(argc, argv)) return run() == 0 ? 0 : 1;
  static const seed002_line expected[] = {
      {"Fetching IP from ip-api", 0, 0, 0},
      {"Fetching IP from ipify", 0, 0, 0},
      {"Fetching IP from borken", 0, 0, 0},
      {"borken is unresponsive", 0, 0, 0},
      {"Unexpected error: KeyError: 'this-is-not-an-attr'", 0, 0, 0},
      {"ipify finished with result: 81.106.46.223, took: {took} seconds",
       IPIFY_MS / 1000.0, IPIFY_MS / 1000.0 + SEED002_SLACK, 0},
  };
  int fails = 0;
  seed_capture_begin();
  SEED_CHECK(fails, run() == 0);
  SEED002_EXPECT(fails, "3b-fetch-ip-addresses-future-exceptions", expected,
                 0, 0);
  /* The error was retrieved: nothing to report. */
  SEED_CHECK(fails, seed_reports() == 0);
  seed_capture_end();
  return seed_verdict("seed_002_3b_exception_in_result", fails);
}
#endif
