/* Seed 002, example 1d-async-fetch-from-server: the same URL fetched three
 * times with a blocking client, one request after the other, then three
 * times at once with tasks: the asynchronous total is about the slowest
 * request, not the sum.
 *
 *   URL = 'https://api.github.com/events'
 *   MAX_CLIENTS = 3
 *
 *   def fetch_sync(pid):
 *       print('Fetch sync process {} started'.format(pid))
 *       start = time.time()
 *       response = urllib.request.urlopen(URL)
 *       datetime = response.getheader('Date')
 *       print('Process {}: {}, took: {:.2f} seconds'.format(
 *           pid, datetime, time.time() - start))
 *       return datetime
 *
 *   async def fetch_async(pid):
 *       print('Fetch async process {} started'.format(pid))
 *       start = time.time()
 *       response = await aiohttp_get(URL)
 *       datetime = response.headers.get('Date')
 *       print('Process {}: {}, took: {:.2f} seconds'.format(
 *           pid, datetime, time.time() - start))
 *       response.close()
 *       return datetime
 *
 *   def synchronous():
 *       start = time.time()
 *       for i in range(1, MAX_CLIENTS + 1):
 *           fetch_sync(i)
 *       print("Process took: {:.2f} seconds".format(time.time() - start))
 *
 *   async def asynchronous():
 *       start = time.time()
 *       tasks = [asyncio.create_task(
 *           fetch_async(i)) for i in range(1, MAX_CLIENTS + 1)]
 *       await asyncio.wait(tasks)
 *       print("Process took: {:.2f} seconds".format(time.time() - start))
 *
 *   print('Synchronous:')
 *   synchronous()
 *   print('Asynchronous:')
 *   asyncio.run(asynchronous())
 *
 * Every request is a real GET of /events from the local server standing
 * in for GitHub (seed_002_common.h), which answers after 0.25 s with a
 * Date header from a fake clock that read Fri, 29 Jun 2018 11:41:37 GMT
 * when it started. urlopen() is a blocking call: in C, a request made by a
 * loop run to its end (aioc_run(), a loop of its own for each request),
 * called from plain code. The synchronous part takes the sum of the three
 * requests, the asynchronous one about the slowest. The timings are real,
 * so they vary a little from run to run, and so may the order in which
 * the three asynchronous requests finish.
 */
#include "seed_002_common.h"
#include "seed_002_examples.h"

#define MAX_CLIENTS 3
#define REQUEST_MS 250 /* the server's delay */
#define URL "/events?delay=" SEED002_STR(REQUEST_MS)
#define SERVER_T0 1530272497.0 /* 2018-06-29 11:41:37 UTC */

/* ---- synchronous ---- */

typedef struct blocking_get {
  const char *url;
  char date[64]; /* the response's Date header */
} blocking_get;

static int get_date(void *arg, void **result) {
  (void)result;
  blocking_get *g = arg;
  aioc_http_response *response;
  int rc = seed002_get(g->url, &response);
  if (rc < 0) return rc;
  const char *date = aioc_http_header_get(response, "Date");
  snprintf(g->date, sizeof g->date, "%s", date ? date : "None");
  aioc_http_response_free(response);
  return 0;
}

/* response = urllib.request.urlopen(URL); response.getheader('Date'):
 * blocks the calling thread until the response is in. */
static int urlopen_date(const char *url, char *date, size_t n) {
  blocking_get g = {url, ""};
  int rc = seed002_run(get_date, &g);
  if (rc == 0) snprintf(date, n, "%s", g.date);
  return rc;
}

static int fetch_sync(int pid) {
  seed_out("Fetch sync process %d started", pid);
  double start = seed002_now();
  char datetime[64];
  int rc = urlopen_date(URL, datetime, sizeof datetime);
  if (rc < 0) return rc;
  seed_out("Process %d: %s, took: %.2f seconds", pid, datetime,
           seed002_now() - start);
  return 0;
}

static int synchronous(void) {
  double start = seed002_now();
  for (int i = 1; i <= MAX_CLIENTS; i++) {
    int rc = fetch_sync(i);
    if (rc < 0) return rc;
  }
  seed_out("Process took: %.2f seconds", seed002_now() - start);
  return 0;
}

/* ---- asynchronous ---- */

static int fetch_async(void *arg, void **result) {
  (void)result;
  int pid = (int)(intptr_t)arg;
  seed_out("Fetch async process %d started", pid);
  double start = aioc_time();
  aioc_http_response *response;
  int rc = seed002_get(URL, &response);
  if (rc < 0) return rc;
  const char *datetime = aioc_http_header_get(response, "Date");
  seed_out("Process %d: %s, took: %.2f seconds", pid,
           datetime ? datetime : "None", aioc_time() - start);
  aioc_http_response_free(response);
  return 0;
}

static int asynchronous(void *arg, void **result) {
  (void)arg, (void)result;
  double start = aioc_time();
  aioc_task *tasks[MAX_CLIENTS] = {NULL};
  aioc_future *futures[MAX_CLIENTS];
  int rc = 0;
  for (int i = 0; i < MAX_CLIENTS && rc == 0; i++) {
    char name[32];
    snprintf(name, sizeof name, "fetch_async(%d)", i + 1);
    rc = seed_spawn(&tasks[i], fetch_async, (void *)(intptr_t)(i + 1), name,
                    NULL);
    if (rc == 0) futures[i] = aioc_task_future(tasks[i]);
  }
  if (rc == 0)
    rc = aioc_wait(futures, MAX_CLIENTS, AIOC_WAIT_ALL_COMPLETED, NULL, NULL,
                   NULL, NULL, AIOC_FOREVER);
  /* A request that failed would be reported when its task goes. */
  seed_release_all(tasks, MAX_CLIENTS);
  if (rc < 0) return rc;
  seed_out("Process took: %.2f seconds", aioc_time() - start);
  return 0;
}

static int run(void) {
  int rc = seed002_server_start(SERVER_T0);
  if (rc < 0) return rc;
  seed_out("Synchronous:");
  rc = synchronous();
  if (rc == 0) {
    seed_out("Asynchronous:");
    rc = seed002_run(asynchronous, NULL);
  }
  int src = seed002_server_stop();
  return rc < 0 ? rc : src;
}

const seed_example seed_002_1d_fetch_from_server = {
    "1d-async-fetch-from-server",
    "three GETs from a local server, one after the other with a blocking "
    "call, then at once with tasks: the sum of the requests, then about the "
    "slowest",
    run};

#ifndef SEED_NO_MAIN
int main(int argc, char **argv) {
  if (!seed_is_check(argc, argv)) return run() == 0 ? 0 : 1;
  /* Each request takes REQUEST_MS at least; the synchronous ones add up,
   * the asynchronous ones overlap (they may finish in any order: group
   * 1). */
#define REQ (REQUEST_MS / 1000.0)
#define SLACK SEED002_SLACK
  static const seed002_line expected[] = {
      {"Synchronous:", 0, 0, 0},
      {"Fetch sync process 1 started", 0, 0, 0},
      {"Process 1: {date}, took: {took} seconds", REQ, REQ + SLACK, 0},
      {"Fetch sync process 2 started", 0, 0, 0},
      {"Process 2: {date}, took: {took} seconds", REQ, REQ + SLACK, 0},
      {"Fetch sync process 3 started", 0, 0, 0},
      {"Process 3: {date}, took: {took} seconds", REQ, REQ + SLACK, 0},
      {"Process took: {took} seconds", 3 * REQ, 3 * REQ + SLACK, 0},
      {"Asynchronous:", 0, 0, 0},
      {"Fetch async process 1 started", 0, 0, 0},
      {"Fetch async process 2 started", 0, 0, 0},
      {"Fetch async process 3 started", 0, 0, 0},
      {"Process 1: {date}, took: {took} seconds", REQ, REQ + SLACK, 1},
      {"Process 2: {date}, took: {took} seconds", REQ, REQ + SLACK, 1},
      {"Process 3: {date}, took: {took} seconds", REQ, REQ + SLACK, 1},
      {"Process took: {took} seconds", REQ, REQ + SLACK, 0},
  };
#undef REQ
#undef SLACK
  int fails = 0;
  seed_capture_begin();
  SEED_CHECK(fails, run() == 0);
  /* The fake server clock read SERVER_T0 when the server started. */
  SEED002_EXPECT(fails, "1d-async-fetch-from-server", expected, SERVER_T0,
                 SERVER_T0 + 4 * (REQUEST_MS / 1000.0 + SEED002_SLACK) + 1);
  SEED_CHECK(fails, seed_reports() == 0);
  seed_capture_end();
  return seed_verdict("seed_002_1d_fetch_from_server", fails);
}
#endif
