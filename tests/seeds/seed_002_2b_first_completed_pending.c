/* Seed 002, example 2b-fetch-first-ip-address-response: ask two IP
 * services at once and keep the first answer (wait FIRST_COMPLETED), in the
 * pre-3.7 style: the loop is closed while the slower request is still
 * pending, and the loop reports it ("Task was destroyed but it is
 * pending").
 *
 *   async def main():
 *       futures = [fetch_ip(service) for service in SERVICES]
 *       done, pending = await asyncio.wait(
 *           futures, return_when=FIRST_COMPLETED)
 *       print(done.pop().result())
 *
 *   ioloop = asyncio.get_event_loop()
 *   ioloop.run_until_complete(main())
 *   ioloop.close()
 *
 * fetch_ip() and main() are shared with 2c (seed_002_common.h); the
 * requests are real (seed_002_common.h's local services). ip-api answers
 * after 0.10 s, as in the article, ipify after 0.5 s, so its request is
 * still under way when the loop closes. The article's run started ip-api
 * first (asyncio.wait() put the coroutines in a set); here they start in
 * that order. The loop runs on the real clock (libcurl's), so the time
 * printed varies a little from run to run.
 */
#include "seed_002_common.h"
#include "seed_002_examples.h"

#define IPAPI_MS 100
#define IPIFY_MS 500

static const seed002_service services[] = {
    {"ip-api", SEED002_IPAPI(IPAPI_MS), "query"},
    {"ipify", SEED002_IPIFY(IPIFY_MS), "ip"},
};

static int amain(void *arg, void **result) {
  (void)arg, (void)result;
  return seed002_first_ip(services, 2, 0);
}

static int run(void) {
  int rc = seed002_server_start(0);
  if (rc < 0) return rc;
  aioc_loop *ioloop;
  if ((rc = aioc_loop_new(&ioloop, NULL)) < 0) {
    seed002_server_stop();
    return rc;
  }
  aioc_loop_set_report_handler(ioloop, seed_report, NULL);
  aioc_task *t;
  aioc_task_options topts = {.name = "main"};
  rc = aioc_spawn_ex(&t, ioloop, amain, NULL, &topts);
  if (rc == 0) {
    rc = aioc_loop_run_until_complete(ioloop, aioc_task_future(t));
    if (rc == 0) rc = aioc_future_result(aioc_task_future(t), NULL);
    aioc_task_unref(t);
  }
  int crc = aioc_loop_close(ioloop);
  aioc_loop_free(ioloop);
  int src = seed002_server_stop();
  return rc < 0 ? rc : crc < 0 ? crc : src;
}

const seed_example seed_002_2b_first_completed_pending = {
    "2b-fetch-first-ip-address-response",
    "first answer of two IP services wins (wait FIRST_COMPLETED); the loop "
    "closes on the other: reported",
    run};

#ifndef SEED_NO_MAIN
int main(int argc, char **argv) {
  if (!seed_is_check(argc, argv)) return run() == 0 ? 0 : 1;
  static const seed002_line expected[] = {
      {"Fetching IP from ip-api", 0, 0, 0},
      {"Fetching IP from ipify", 0, 0, 0},
      {"ip-api finished with result: 81.106.46.223, took: {took} seconds",
       IPAPI_MS / 1000.0, IPAPI_MS / 1000.0 + SEED002_SLACK, 0},
      {"Task was destroyed but it is pending", 0, 0, 0},
      {"task: fetch_ip(ipify)", 0, 0, 0},
  };
  int fails = 0;
  seed_capture_begin();
  SEED_CHECK(fails, run() == 0);
  SEED002_EXPECT(fails, "2b-fetch-first-ip-address-response", expected, 0,
                 0);
  SEED_CHECK(fails, seed_state.destroyed_pending == 1);
  SEED_CHECK(fails, seed_reports() == 1);
  seed_capture_end();
  return seed_verdict("seed_002_2b_first_completed_pending", fails);
}
#endif
