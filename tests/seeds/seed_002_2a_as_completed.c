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
 * The random draws are fixed to the article's run: as_completed() put the
 * coroutines in a set, which started process 2 first, then 3, then 1,
 * drawing 5, 4 and 3 seconds of sleep. The port sleeps fifths of those
 * (random.randint(2, 5) / 5: 1.0, 0.8 and 0.6 s), so that the example runs
 * in about a second, with 0.2 s between the results. aiohttp_get(URL) is
 * a real GET of /events from the local server standing in for GitHub
 * (seed_002_common.h), which answers after 0.1 s with a Date header from
 * a fake clock that read Fri, 29 Jun 2018 11:44:15.5 GMT when the server
 * started. The timings are real, so they vary a little from run to run.
 */
#include "seed_002_common.h"
#include "seed_002_examples.h"

#define MAX_CLIENTS 3
#define REQUEST_MS 100 /* the server's delay */
#define URL "/events?delay=" SEED002_STR(REQUEST_MS)
#define SERVER_T0 1530272655.5 /* 2018-06-29 11:44:15.5 UTC */

typedef struct process {
  int pid;
  int sleepy_time; /* random.randint(2, 5) in the article */
} process;

/* In the order the article's run started them. */
static const process processes[MAX_CLIENTS] = {{2, 5}, {3, 4}, {1, 3}};

/* The port's sleep for a draw: a fifth of it. */
static double sleep_of(int drawn) { return drawn / 5.0; }

static int fetch_async(void *arg, void **result) {
  const process *p = arg;
  double start = aioc_time();
  double sleepy_time = sleep_of(p->sleepy_time);
  seed_out("Fetch async process %d started, sleeping for %.1f seconds",
           p->pid, sleepy_time);
  int rc = aioc_sleep(sleepy_time);
  if (rc < 0) return rc;
  aioc_http_response *response;
  if ((rc = seed002_get(URL, &response)) < 0) return rc;
  const char *datetime = aioc_http_header_get(response, "Date");
  *result = seed002_format("Process %d: %s, took: %.2f seconds", p->pid,
                           datetime ? datetime : "None", aioc_time() - start);
  aioc_http_response_free(response);
  return *result ? 0 : -ENOMEM;
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

static int run(void) {
  int rc = seed002_server_start(SERVER_T0);
  if (rc < 0) return rc;
  rc = seed002_run(amain, NULL);
  int src = seed002_server_stop();
  return rc < 0 ? rc : src;
}

const seed_example seed_002_2a_as_completed = {
    "2a-async-fetch-from-server-as-completed",
    "three fetches (sleeps of 1.0, 0.8 and 0.6 s, then a real GET from a "
    "local server) started at once; as_completed hands back each as it "
    "finishes",
    run};

#ifndef SEED_NO_MAIN
/* The sleep drawn for process pid, or 0. */
static int drawn_of(int pid) {
  for (int i = 0; i < MAX_CLIENTS; i++)
    if (processes[i].pid == pid) return processes[i].sleepy_time;
  return 0;
}

int main(int argc, char **argv) {
  if (!seed_is_check(argc, argv)) return run() == 0 ? 0 : 1;
  /* Each result comes after its sleep and its request (REQUEST_MS at
   * least). as_completed hands them back as they finish: in the article's
   * order (1, 3, 2: the shortest sleep first), unless the machine stalls
   * one request by the 0.2 s between them. So the check takes the
   * processes in the order they came, asks for the arrows in order, each
   * process once, each within its bounds, and the times in the order the
   * results were handed back. */
#define TOOK(drawn) ((drawn) / 5.0 + REQUEST_MS / 1000.0)
  seed002_line expected[] = {
      {"Fetch async process 2 started, sleeping for 1.0 seconds", 0, 0, 0},
      {"Fetch async process 3 started, sleeping for 0.8 seconds", 0, 0, 0},
      {"Fetch async process 1 started, sleeping for 0.6 seconds", 0, 0, 0},
      {">> Process 1: {date}, took: {took} seconds", 0, 0, 0},
      {">>>> Process 3: {date}, took: {took} seconds", 0, 0, 0},
      {">>>>>> Process 2: {date}, took: {took} seconds", 0, 0, 0},
      {"Process took: {took} seconds", TOOK(5), TOOK(5) + SEED002_SLACK, 0},
  };
  int fails = 0;
  seed_capture_begin();
  SEED_CHECK(fails, run() == 0);
  char texts[MAX_CLIENTS][64];
  double took[MAX_CLIENTS] = {0};
  int seen = 0;
  for (int k = 0; k < MAX_CLIENTS; k++) {
    seed002_line *e = &expected[3 + k];
    const char *line = (size_t)(3 + k) < seed_state.n ? seed_state.lines[3 + k]
                                                      : "";
    const char *p = strstr(line, "Process ");
    int pid = 1 + k;
    if (p && sscanf(p, "Process %d:", &pid) == 1 && drawn_of(pid) &&
        !(seen & 1 << pid)) {
      seen |= 1 << pid;
      snprintf(texts[k], sizeof texts[k],
               "%.*s Process %d: {date}, took: {took} seconds", 2 * (k + 1),
               ">>>>>>>>", pid);
      e->text = texts[k];
    }
    int drawn = drawn_of(pid) ? drawn_of(pid) : 5;
    e->lo = TOOK(drawn);
    e->hi = TOOK(drawn) + SEED002_SLACK;
    p = strstr(line, "took: ");
    if (p) took[k] = strtod(p + 6, NULL);
  }
#undef TOOK
  /* The fake server clock read SERVER_T0 when the server started. */
  SEED002_EXPECT(fails, "2a-async-fetch-from-server-as-completed", expected,
                 SERVER_T0 - 1, SERVER_T0 + 1.1 + SEED002_SLACK + 1);
  SEED_CHECK(fails, took[0] <= took[1] && took[1] <= took[2]);
  SEED_CHECK(fails, seed_reports() == 0);
  seed_capture_end();
  return seed_verdict("seed_002_2a_as_completed", fails);
}
#endif
