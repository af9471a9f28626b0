/* What the RPC tests share: a streaming handler whose behaviour a spec
 * sets (chunks, pauses, a failure), and a chunk check. */
#ifndef AIOC_TEST_RPC_COMMON_H
#define AIOC_TEST_RPC_COMMON_H

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

typedef struct stream_spec {
  int n;          /* chunks */
  double pause;   /* before each chunk */
  double long_at; /* the pause before chunk 2 instead, if > 0 */
  int fail_at;    /* return an error after that many chunks (-1: never) */
  int with_pid;   /* chunks say which process made them */
  /* observed */
  int yielded;
  int last_rc;    /* the code that made the handler stop */
  int ran;
} stream_spec;

/* Yields "<payload>-<i>" (or "<pid>:<i>") for i below n, as sp says. */
static inline int stream_handler(void *arg, aioc_rpc_request *req) {
  stream_spec *sp = arg;
  sp->ran++;
  size_t len;
  const char *p = aioc_rpc_request_payload(req, &len);
  for (int i = 0; i < sp->n; i++) {
    if (i == sp->fail_at)
      return aioc_error(-EIO, "handler failed after %d chunks", i);
    double pause = (i == 2 && sp->long_at > 0) ? sp->long_at : sp->pause;
    if (pause > 0) {
      int rc = aioc_sleep(pause);
      if (rc) {
        sp->last_rc = rc;
        return rc;
      }
    }
    char buf[64];
    int n = sp->with_pid ? snprintf(buf, sizeof buf, "%d:%d", (int)getpid(), i)
                         : snprintf(buf, sizeof buf, "%.*s-%d", (int)len, p, i);
    int rc = aioc_rpc_yield(req, buf, (size_t)n);
    if (rc) {
      sp->last_rc = rc;
      return rc == AIOC_EGENEXIT ? 0 : rc;
    }
    sp->yielded++;
  }
  return 0;
}

/* item is the chunk seq whose text is want; it is freed. */
static inline void check_chunk(void *item, const char *want, uint32_t seq) {
  aioc_rpc_chunk *c = item;
  CHECK(c != NULL);
  if (!c) return;
  CHECK_EQ((int)c->seq, (int)seq);
  CHECK_EQ((int)c->len, (int)strlen(want));
  CHECK_STR(c->data, want);
  aioc_rpc_chunk_free(c);
}

#endif
