/* Seed 002, example 2a-async-fetch-from-server-as-completed: results are
 * processed as soon as each arrives, whatever the order of the calls.
 *
 *   async def fetch_async(pid):
 *       start = time.time()
 *       sleepy_time = random.randint(2, 5)
 *       print('Fetch async process {} started, sleeping for {} seconds'
 *             .format(pid, sleepy_time))
 *       await asyncio.sleep(sleepy_time)
 *       response = await aiohttp_get(URL)
 *       datetime = response.headers.get('Date')
 *       response.close()
 *       return 'Process {}: {}, took: {:.2f} seconds'.format(
 *           pid, datetime, time.time() - start)
 *
 *   async def main():
 *       start = time.time()
 *       futures = [fetch_async(i) for i in range(1, MAX_CLIENTS + 1)]
 *       for i, future in enumerate(asyncio.as_completed(futures)):
 *           result = await future
 *           print('{} {}'.format(">>" * (i + 1), result))
 *       print("Process took: {:.2f} seconds".format(time.time() - start))
 *
 * Fixed to the article's run: as_completed() put the coroutines in a set,
 * which started process 2 first, then 3, then 1, drawing 5, 4 and 3 seconds
 * of sleep. The GitHub request becomes a sleep of the latency it had (0.68
 * or 0.70 s), and its Date header comes from a fake server clock that read
 * Fri, 29 Jun 2018 11:44:15.5 GMT when the loop started.
 */
#include <time.h>

#include "seed_002_common.h"
#include "seed_002_examples.h"

#define MAX_CLIENTS 3
#define SERVER_T0 1530272655.5 /* 2018-06-29 11:44:15.5 UTC */

typedef struct process {
  int pid;
  int sleepy_time; /* random.randint(2, 5) in the article */
  double request;  /* how long aiohttp_get(URL) took */
} process;

/* In the order the article's run started them. */
static const process processes[MAX_CLIENTS] = {
    {2, 5, 0.68}, {3, 4, 0.68}, {1, 3, 0.70}};

/* The response's Date header: the fake server's clock, now. */
static void http_date(char *buf, size_t n) {
  time_t t = (time_t)(SERVER_T0 + aioc_time());
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(buf, n, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

static int fetch_async(void *arg, void **result) {
  const process *p = arg;
  double start = aioc_time();
  seed_out("Fetch async process %d started, sleeping for %d seconds", p->pid,
           p->sleepy_time);
  int rc = aioc_sleep(p->sleepy_time);
  if (rc < 0) return rc;
  if ((rc = aioc_sleep(p->request)) < 0) return rc; /* aiohttp_get(URL) */
  char datetime[64];
  http_date(datetime, sizeof datetime);
  SEED002_RETURN_STR(result, "Process %d: %s, took: %.2f seconds", p->pid,
                     datetime, aioc_time() - start);
}

static int amain(void *arg, void **result) {
  (void)arg, (void)result;
  double start = aioc_time();
  aioc_task *tasks[MAX_CLIENTS] = {NULL};
  aioc_future *futures[MAX_CLIENTS];
  int rc = 0;
  for (int i = 0; i < MAX_CLIENTS && rc == 0; i++) {
    char name[32];
    snprintf(name, sizeof name, "fetch_async(%d)", processes[i].pid);
    rc = seed_spawn(&tasks[i], fetch_async, (void *)&processes[i], name, free);
    if (rc == 0) futures[i] = aioc_task_future(tasks[i]);
  }
  aioc_as_completed *it = NULL;
  if (rc == 0)
    rc = aioc_as_completed_new(&it, futures, MAX_CLIENTS, AIOC_FOREVER);
  for (int i = 0; rc == 0; i++) {
    aioc_future *future;
    rc = aioc_as_completed_next(it, &future, AIOC_FOREVER);
    if (rc == AIOC_EXHAUSTED) {
      rc = 0;
      break;
    }
    void *res;
    if (rc == 0) rc = aioc_await(future, &res);
    if (rc < 0) break;
    char arrows[2 * MAX_CLIENTS + 1] = "";
    for (int j = 0; j <= i; j++) strcat(arrows, ">>");
    seed_out("%s %s", arrows, (char *)res);
    free(res);
  }
  aioc_as_completed_free(it);
  seed_release_all(tasks, MAX_CLIENTS);
  if (rc < 0) return rc;
  seed_out("Process took: %.2f seconds", aioc_time() - start);
  return 0;
}

static int run(void) { return seed_run(amain, NULL); }

const seed_example seed_002_2a_as_completed = {
    "2a-async-fetch-from-server-as-completed",
    "three fetches of 5, 4 and 3 s (+ request) started at once; as_completed "
    "hands back each as it finishes",
    run};

#ifndef SEED_NO_MAIN
int main(int argc, char **argv) {
  if (!seed_is_check(argc, argv)) return run() == 0 ? 0 : 1;
  static const char *const expected[] = {
      "Fetch async process 2 started, sleeping for 5 seconds",
      "Fetch async process 3 started, sleeping for 4 seconds",
      "Fetch async process 1 started, sleeping for 3 seconds",
      ">> Process 1: Fri, 29 Jun 2018 11:44:19 GMT, took: 3.70 seconds",
      ">>>> Process 3: Fri, 29 Jun 2018 11:44:20 GMT, took: 4.68 seconds",
      ">>>>>> Process 2: Fri, 29 Jun 2018 11:44:21 GMT, took: 5.68 seconds",
      "Process took: 5.68 seconds",
  };
  int fails = 0;
  seed_capture_begin();
  SEED_CHECK(fails, run() == 0);
  SEED_EXPECT(fails, "2a-async-fetch-from-server-as-completed", expected);
  SEED_CHECK(fails, seed_reports() == 0);
  seed_capture_end();
  return seed_verdict("seed_002_2a_as_completed", fails);
}
#endif
