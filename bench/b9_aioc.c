/* B9 in aioc: COUNT GETs of URL with INFLIGHT at once, through the public
 * HTTP client (aioc_http_get() on the loop's default session), as its
 * users write it: INFLIGHT tasks, each taking the next request until
 * COUNT were made. Every response must be 200 with --expect bytes
 * (default 1024).
 *
 *   b9_aioc [--expect BYTES] URL COUNT INFLIGHT
 *
 * Prints RESULT workload=B9 runtime=aioc value=<req/s> unit=req/s
 * lower_is_better=0, and an INFO line (connections opened, seconds). */
#include <aioc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *url;
static long count, next_req, failures;
static size_t expect = 1024;

static int worker(void *arg, void **result) {
  (void)arg, (void)result;
  while (next_req < count) {
    next_req++;
    aioc_http_response *r;
    int rc = aioc_http_get(NULL, &r, url, 30);
    if (rc < 0) {
      fprintf(stderr, "b9_aioc: %s\n", aioc_error_message());
      failures++;
      return rc;
    }
    if (r->status != 200 || r->body_len != expect) {
      fprintf(stderr, "b9_aioc: status %d, %zu bytes\n", r->status,
              r->body_len);
      failures++;
    }
    aioc_http_response_free(r);
  }
  return 0;
}

static int amain(void *arg, void **result) {
  (void)result;
  long inflight = *(long *)arg;
  aioc_task **t = calloc((size_t)inflight, sizeof *t);
  if (!t) return -ENOMEM;
  double t0 = aioc_time();
  int rc = 0;
  for (long i = 0; i < inflight && rc == 0; i++)
    rc = aioc_spawn(&t[i], worker, NULL);
  for (long i = 0; i < inflight; i++) {
    if (!t[i]) continue;
    int r = aioc_await(aioc_task_future(t[i]), NULL);
    if (r < 0 && rc == 0) rc = r;
    aioc_task_unref(t[i]);
  }
  double secs = aioc_time() - t0;
  free(t);
  if (rc < 0 || failures) return rc < 0 ? rc : -EPROTO;
  size_t conns = 0;
  (void)aioc_http_stats(NULL, NULL, NULL, &conns);
  printf("RESULT workload=B9 runtime=aioc value=%.1f unit=req/s "
         "lower_is_better=0\n",
         (double)count / secs);
  printf("INFO runtime=aioc connections=%zu seconds=%.3f\n", conns, secs);
  return 0;
}

int main(int argc, char **argv) {
  int i = 1;
  if (argc > 2 && strcmp(argv[1], "--expect") == 0) {
    expect = (size_t)atol(argv[2]);
    i = 3;
  }
  if (argc - i != 3) {
    fprintf(stderr, "usage: b9_aioc [--expect BYTES] URL COUNT INFLIGHT\n");
    return 2;
  }
  url = argv[i];
  count = atol(argv[i + 1]);
  long inflight = atol(argv[i + 2]);
  if (count <= 0 || inflight <= 0) {
    fprintf(stderr, "b9_aioc: COUNT and INFLIGHT must be positive\n");
    return 2;
  }
  int rc = aioc_run(amain, &inflight, NULL);
  if (rc < 0) {
    fprintf(stderr, "b9_aioc: %s\n", aioc_strerror(rc));
    return 1;
  }
  return 0;
}
