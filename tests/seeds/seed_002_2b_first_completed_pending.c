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
 * fetch_ip() and main() are shared with 2c (seed_002_common.h). The
 * services answer after fixed latencies: ip-api 0.10 s, as in the article,
 * ipify later. The article's run started ip-api first (asyncio.wait() put
 * the coroutines in a set); here they start in that order.
 */
#include "seed_002_common.h"
#include "seed_002_examples.h"

static const seed002_service services[] = {
    {"ip-api", "ip-api.com", "query", "query", 0.10},
    {"ipify", "api.ipify.org", "ip", "ip", 0.25},
};

static int amain(void *arg, void **result) {
  (void)arg, (void)result;
  return seed002_first_ip(services, 2, 0);
}

static int run(void) {
  aioc_loop_options o = {.virtual_clock = 1};
  aioc_loop *ioloop;
  int rc = aioc_loop_new(&ioloop, &o);
  if (rc < 0) return rc;
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
  return rc < 0 ? rc : crc;
}

const seed_example seed_002_2b_first_completed_pending = {
    "2b-fetch-first-ip-address-response",
    "first answer of two IP services wins (wait FIRST_COMPLETED); the loop "
    "closes on the other: reported",
    run};

#ifndef SEED_NO_MAIN
int main(int argc, char **argv) {
  if (!seed_is_check(argc, argv)) return run() == 0 ? 0 : 1;
  static const char *const expected[] = {
      "Fetching IP from ip-api",
      "Fetching IP from ipify",
      "ip-api finished with result: 81.106.46.223, took: 0.10 seconds",
      "Task was destroyed but it is pending",
      "task: fetch_ip(ipify)",
  };
  int fails = 0;
  seed_capture_begin();
  SEED_CHECK(fails, run() == 0);
  SEED_EXPECT(fails, "2b-fetch-first-ip-address-response", expected);
  SEED_CHECK(fails, seed_state.destroyed_pending == 1);
  SEED_CHECK(fails, seed_reports() == 1);
  seed_capture_end();
  return seed_verdict("seed_002_2b_first_completed_pending", fails);
}
#endif
