/* Seed 002, example 2c-fetch-first-ip-address-response-no-warning: the
 * same race as 2b, run with asyncio.run(), which cancels what is left
 * pending, so the output is clean. The port cancels the slower request
 * itself, right after the wait, to show the step (aioc_run() would also
 * cancel it).
 *
 *   async def main():
 *       futures = [fetch_ip(service) for service in SERVICES]
 *       done, pending = await asyncio.wait(
 *           futures, return_when=FIRST_COMPLETED)
 *       print(done.pop().result())
 *
 *   asyncio.run(main())
 *
 * ip-api answers in 0.12 s, as in the article; ipify later.
 */
#include "seed_002_common.h"
#include "seed_002_examples.h"

static const seed002_service services[] = {
    {"ip-api", "ip-api.com", "query", "query", 0.12},
    {"ipify", "api.ipify.org", "ip", "ip", 0.25},
};

static int amain(void *arg, void **result) {
  (void)arg, (void)result;
  return seed002_first_ip(services, 2, 1);
}

static int run(void) { return seed_run(amain, NULL); }

const seed_example seed_002_2c_first_completed_clean = {
    "2c-fetch-first-ip-address-response-no-warning",
    "the same race under asyncio.run(): the slower request is cancelled, so "
    "nothing is reported",
    run};

#ifndef SEED_NO_MAIN
int main(int argc, char **argv) {
  if (!seed_is_check(argc, argv)) return run() == 0 ? 0 : 1;
  static const char *const expected[] = {
      "Fetching IP from ip-api",
      "Fetching IP from ipify",
      "ip-api finished with result: 81.106.46.223, took: 0.12 seconds",
  };
  int fails = 0;
  seed_capture_begin();
  SEED_CHECK(fails, run() == 0);
  SEED_EXPECT(fails, "2c-fetch-first-ip-address-response-no-warning",
              expected);
  SEED_CHECK(fails, seed_reports() == 0);
  seed_capture_end();
  return seed_verdict("seed_002_2c_first_completed_clean", fails);
}
#endif
