/* fetch: downloads URLs concurrently and prints each result as it comes.
 *
 *   fetch [-c LIMIT] [-t CHUNK_TIMEOUT] [-T TIMEOUT] [-o DIR] URL...
 *
 * At most LIMIT transfers run at once (default 4): a Yielder with a limit
 * (aioutils' Pool and Yielder in one), driven from plain code, hands each
 * result to main() as soon as its transfer ends, in completion order. A
 * body comes as an iterator of chunks with a timeout between chunks
 * (CHUNK_TIMEOUT seconds, default 10): a server that stalls longer fails
 * that URL, not the others. TIMEOUT (default 60) bounds each URL. With -o
 * each body is written to DIR/<n> (n: the URL's place on the command
 * line), otherwise only counted. On a terminal, a progress line shows the
 * transfers done, running and the bytes so far.
 *
 * Exit status: 0 when every URL gave a 2xx response, 1 otherwise, 2 for a
 * bad command line. */
#include <aioc.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct job {
  int n;           /* place on the command line, from 1 */
  const char *url;
  const char *dir; /* -o, or NULL */
  double chunk_timeout, timeout;
} job;

/* What a transfer gives back to main(). */
typedef struct outcome {
  int n;
  int rc; /* 0, or the failure */
  int status;
  size_t bytes;
  double seconds;
  char msg[512];
} outcome;

static size_t total_bytes;
static int running_now, done_count, url_count;
static int progress_on;
static double last_progress;

static void progress(int force) {
  if (!progress_on) return;
  double now = aioc_time();
  if (!force && now - last_progress < 0.1) return;
  last_progress = now;
  fprintf(stderr, "\r\033[K[%d/%d done, %d running] %zu bytes", done_count,
          url_count, running_now, total_bytes);
  fflush(stderr);
}

/* One URL: the body chunk by chunk, with the timeout between chunks. */
static int fetch_one(void *arg, void **result) {
  job *j = arg;
  outcome *o = calloc(1, sizeof *o);
  if (!o) return -ENOMEM;
  o->n = j->n;
  double start = aioc_time();
  FILE *f = NULL;
  running_now++;
  aioc_http_response *r = NULL;
  aioc_iter *body = NULL;
  aioc_scope *deadline = NULL;
  int rc = aioc_timeout_enter(&deadline, j->timeout);
  if (rc == 0)
    rc = aioc_http_open(NULL, &r, &body, j->url, NULL, AIOC_FOREVER);
  if (rc == 0 && j->dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%d", j->dir, j->n);
    if (!(f = fopen(path, "wb"))) {
      rc = -errno;
      snprintf(o->msg, sizeof o->msg, "%.300s: %s", path, strerror(errno));
    }
  }
  if (rc == 0) {
    o->status = r->status;
    void *item;
    while ((rc = aioc_iter_next(body, &item, j->chunk_timeout)) == 0) {
      const aioc_bytes *chunk = item;
      o->bytes += chunk->len;
      total_bytes += chunk->len;
      if (f && fwrite(chunk->data, 1, chunk->len, f) != chunk->len) {
        rc = -EIO;
        snprintf(o->msg, sizeof o->msg, "write error");
        break;
      }
      progress(0);
    }
    if (rc == AIOC_EXHAUSTED) rc = 0;
    else if (rc == -ETIMEDOUT && !aioc_scope_is_expired(deadline))
      snprintf(o->msg, sizeof o->msg, "no data for %.3g s between chunks",
               j->chunk_timeout);
  }
  if (rc < 0 && !o->msg[0]) {
    const char *m = aioc_error_message();
    snprintf(o->msg, sizeof o->msg, "%s",
             m && *m ? m : aioc_strerror(rc));
  }
  if (deadline) {
    if (aioc_scope_exit(deadline) == -ETIMEDOUT && rc == -ETIMEDOUT)
      snprintf(o->msg, sizeof o->msg, "took longer than %.3g s", j->timeout);
    aioc_scope_free(deadline);
  }
  if (f) fclose(f);
  aioc_iter_free(body);
  aioc_http_response_free(r);
  o->rc = rc;
  o->seconds = aioc_time() - start;
  running_now--;
  done_count++;
  *result = o;
  return 0;
}

static void usage(void) {
  fprintf(stderr, "usage: fetch [-c LIMIT] [-t CHUNK_TIMEOUT] [-T TIMEOUT] "
                  "[-o DIR] URL...\n");
  exit(2);
}

static double seconds_arg(const char *s) {
  char *end;
  double v = strtod(s, &end);
  if (*end || !(v > 0)) usage();
  return v;
}

int main(int argc, char **argv) {
  long limit = 4;
  double chunk_timeout = 10, timeout = 60;
  const char *dir = NULL;
  int opt;
  while ((opt = getopt(argc, argv, "c:t:T:o:")) != -1) {
    switch (opt) {
    case 'c': limit = atol(optarg); if (limit <= 0) usage(); break;
    case 't': chunk_timeout = seconds_arg(optarg); break;
    case 'T': timeout = seconds_arg(optarg); break;
    case 'o': dir = optarg; break;
    default: usage();
    }
  }
  url_count = argc - optind;
  if (url_count <= 0) usage();
  progress_on = isatty(2);

  job *jobs = calloc((size_t)url_count, sizeof *jobs);
  aioc_yielder *y;
  aioc_group_options go = {.limit = limit};
  if (!jobs || aioc_yielder_new(&y, 0, &go) < 0) {
    fprintf(stderr, "fetch: out of memory\n");
    return 1;
  }
  for (int i = 0; i < url_count; i++) {
    jobs[i] = (job){i + 1, argv[optind + i], dir, chunk_timeout, timeout};
    if (aioc_yielder_spawn(y, fetch_one, &jobs[i]) < 0) {
      fprintf(stderr, "fetch: cannot start %s\n", jobs[i].url);
      return 1;
    }
  }
  int failed = 0, rc;
  void *item;
  while ((rc = aioc_yielder_next(y, &item, AIOC_FOREVER)) == 0) {
    outcome *o = item;
    if (progress_on) fprintf(stderr, "\r\033[K");
    if (o->rc == 0) {
      printf("[%d] %s: %d, %zu bytes in %.2f s\n", o->n, jobs[o->n - 1].url,
             o->status, o->bytes, o->seconds);
      if (o->status < 200 || o->status > 299) failed++;
    } else {
      printf("[%d] %s: failed (%s) after %zu bytes in %.2f s: %s\n", o->n,
             jobs[o->n - 1].url, aioc_err_name(o->rc), o->bytes, o->seconds,
             o->msg);
      failed++;
    }
    fflush(stdout);
    free(o);
    progress(1);
  }
  if (progress_on) fprintf(stderr, "\r\033[K");
  if (rc != AIOC_EXHAUSTED) {
    fprintf(stderr, "fetch: %s\n", aioc_strerror(rc));
    failed++;
  }
  printf("%d of %d URLs fetched\n", url_count - failed, url_count);
  aioc_yielder_free(y);
  free(jobs);
  return failed ? 1 : 0;
}
