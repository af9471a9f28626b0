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
 * The requests are real (seed_002_common.h's local services): ip-api
 * answers after 0.12 s, as in the article, ipify after 0.5 s. The loop
 * runs on the real clock (libcurl's), so the time printed varies a little
 * from run to run.
 */
#include "seed_002_common.h"
#include "seed_002_examples.h"

#define IPAPI_MS 120
#define IPIFY_MS 500

static const seed002_service services[] = {
    {"ip-api", SEED002_IPAPI(IPAPI_MS), "query"},
    {"ipify", SEED002_IPIFY(IPIFY_MS), "ip"},
};

static int amain(void *arg, void **result) {
  (void)arg, (void)result;
  return seed002_first_ip(services, 2, 1);
}

static int run(void) {
  int rc = seed002_server_start(0);
  if (rc < 0) return rc;
  rc = seed002_run(amain, NULL);
  int src = seed002_server_stop();
  return rc < 0 ? rc : src;
}

const seed_example seed_002_2c_first_completed_clean = {
    "2c-fetch-first-ip-address-response-no-warning",
    "the same race under asyncio.run(): the slower request is cancelled, so "
    "nothing is reported",
    run};

#ifndef SEED_NO_MAIN
int main(int argc, char **argv) {
  if (!seed_is_check(argc, argv)) return run() == 0 ? 0 : 1;
  static const seed002_line expected[] = {
      {"Fetching IP from ip-api", 0, 0, 0},
      {"Fetching IP from ipify", 0, 0, 0},
      {"ip-api finished with result: 81.106.46.223, took: {took} seconds",
       IPAPI_MS / 1000.0, IPAPI_MS / 1000.0 + SEED002_SLACK, 0},
  };
  int fails = 0;
  seed_capture_begin();
  SEED_CHECK(fails, run() == 0);
  SEED002_EXPECT(fails, "2c-fetch-first-ip-address-response-no-warning",
                 expected, 0, 0);
  SEED_CHECK(fails, seed_reports() == 0);
  seed_capture_end();
  return seed_verdict("seed_002_2c_first_completed_clean", fails);
}
#endif
