/* Streaming RPC over the local transport: seed 000's per-chunk timeout,
 * giving up, errors, unknown methods, unary calls, expiry, prefetch, the
 * client's window, graceful shutdown, plain-code clients, bad input and
 * allocation failure. */
#include <stdlib.h>
#include <string.h>

#include "rpc_common.h"

/* ---- handlers ---- */


typedef struct fixture {
  aioc_rpc_transport *tr;
  aioc_rpc_server *s;
  aioc_rpc_client *c;
} fixture;

static void fixture_up(fixture *f, stream_spec *sp, size_t prefetch,
                       size_t window) {
  CHECK_RC(aioc_rpc_local_new(&f->tr), 0);
  aioc_rpc_server_options so = {.prefetch = prefetch};
  CHECK_RC(aioc_rpc_server_new(&f->s, f->tr, &so), 0);
  CHECK_RC(aioc_rpc_server_register(f->s, "stream", stream_handler, sp), 0);
  CHECK_RC(aioc_rpc_server_start(f->s), 0);
  aioc_rpc_client_options co = {.window = window};
  CHECK_RC(aioc_rpc_client_new(&f->c, f->tr, &co), 0);
}

static void fixture_down(fixture *f) {
  aioc_rpc_client_free(f->c);
  aioc_rpc_server_free(f->s);
  aioc_rpc_transport_free(f->tr);
}


/* ---- seed 000: the timeout between chunks ---- */

static int seed000_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  stream_spec sp = {.n = 5, .pause = 0.1, .long_at = 0.5, .fail_at = -1};
  fixture f;
  fixture_up(&f, &sp, 0, 0);
  aioc_iter *it;
  CHECK_RC(aioc_rpc_call(&it, f.c, "stream", "job", 3, NULL), 0);
  void *item;
  CHECK_RC(aioc_iter_next(it, &item, 0.3), 0);
  check_chunk(item, "job-0", 0);
  CHECK_RC(aioc_iter_next(it, &item, 0.3), 0);
  check_chunk(item, "job-1", 1);
  /* Chunk 2 comes after 0.5 s: a 0.3 s wait times out, nothing lost. */
  double t0 = aioc_time();
  CHECK_RC(aioc_iter_next(it, &item, 0.3), -ETIMEDOUT);
  CHECK(item == NULL);
  CHECK_DBL(aioc_time() - t0, 0.3, 1e-6);
  /* Keep waiting: the late chunk arrives. */
  CHECK_RC(aioc_iter_next(it, &item, 0.3), 0);
  check_chunk(item, "job-2", 2);
  CHECK_RC(aioc_iter_next(it, &item, 0.3), 0);
  check_chunk(item, "job-3", 3);
  CHECK_RC(aioc_iter_next(it, &item, 0.3), 0);
  check_chunk(item, "job-4", 4);
  CHECK_RC(aioc_iter_next(it, &item, 0.3), AIOC_EXHAUSTED);
  CHECK_RC(aioc_iter_next(it, &item, 0.3), AIOC_EXHAUSTED);
  aioc_iter_free(it);
  size_t handled, active;
  CHECK_RC(aioc_rpc_server_stats(f.s, &handled, &active), 0);
  CHECK_EQ((int)handled, 1);
  CHECK_EQ((int)active, 0);
  CHECK_EQ(sp.yielded, 5);
  fixture_down(&f);
  return 0;
}

TEST(test_rpc_seed000_timeout_between_chunks) {
  CHECK_RC(run_main(seed000_main, NULL, NULL), 0);
}

/* Giving up after the timeout: the worker is told (its sleep is
 * cancelled, or its next yield returns AIOC_EGENEXIT). */
static int give_up_main(void *arg, void **res) {
  (void)res;
  int at_yield = AIOC_TO_INT(arg);
  stream_spec sp = {.n = 5, .pause = 0.1, .long_at = 0.5, .fail_at = -1};
  fixture f;
  fixture_up(&f, &sp, 0, at_yield ? 1 : 0);
  aioc_iter *it;
  CHECK_RC(aioc_rpc_call(&it, f.c, "stream", "x", 1, NULL), 0);
  void *item;
  if (at_yield) {
    /* Window 1: the handler waits in its yield of chunk 1 while chunk 0
     * is unread; giving up then wakes it with AIOC_EGENEXIT. */
    CHECK_RC(aioc_sleep(0.25), 0);
    CHECK_EQ(sp.yielded, 1);
  } else {
    CHECK_RC(aioc_iter_next(it, &item, 0.3), 0);
    check_chunk(item, "x-0", 0);
    CHECK_RC(aioc_iter_next(it, &item, 0.3), 0);
    check_chunk(item, "x-1", 1);
    CHECK_RC(aioc_iter_next(it, &item, 0.3), -ETIMEDOUT);
  }
  aioc_iter_free(it); /* gives up */
  CHECK_RC(aioc_sleep(1), 0);
  CHECK_EQ(sp.last_rc, at_yield ? AIOC_EGENEXIT : -ECANCELED);
  CHECK_EQ(sp.yielded, at_yield ? 1 : 2);
  size_t handled, active;
  CHECK_RC(aioc_rpc_server_stats(f.s, &handled, &active), 0);
  CHECK_EQ((int)handled, 1);
  CHECK_EQ((int)active, 0);
  fixture_down(&f);
  return 0;
}

TEST(test_rpc_give_up_tells_the_worker) {
  CHECK_RC(run_main(give_up_main, AIOC_INT(0), NULL), 0);
  CHECK_RC(run_main(give_up_main, AIOC_INT(1), NULL), 0);
}

/* ---- errors, unknown methods, unary calls ---- */

static int errors_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  stream_spec sp = {.n = 5, .fail_at = 2};
  fixture f;
  fixture_up(&f, &sp, 0, 0);
  aioc_iter *it;
  void *item;
  CHECK_RC(aioc_rpc_call(&it, f.c, "stream", "e", 1, NULL), 0);
  CHECK_RC(aioc_iter_next(it, &item, 1), 0);
  check_chunk(item, "e-0", 0);
  CHECK_RC(aioc_iter_next(it, &item, 1), 0);
  check_chunk(item, "e-1", 1);
  CHECK_RC(aioc_iter_next(it, &item, 1), -EIO);
  CHECK_STR(aioc_error_message(), "handler failed after 2 chunks");
  CHECK_RC(aioc_iter_next(it, &item, 1), AIOC_EXHAUSTED);
  aioc_iter_free(it);

  /* Nobody serves the method. */
  CHECK_RC(aioc_rpc_call(&it, f.c, "nothing", NULL, 0, NULL), 0);
  CHECK_RC(aioc_iter_next(it, &item, 1), -ENOENT);
  CHECK_STR(aioc_error_message(), "no server for method nothing");
  aioc_iter_free(it);

  /* Unary: the first chunk; the rest is not wanted. */
  sp = (stream_spec){.n = 3, .pause = 0.1, .fail_at = -1};
  aioc_rpc_chunk *reply;
  CHECK_RC(aioc_rpc_call_unary(f.c, "stream", "u", 1, &reply, 1), 0);
  CHECK_STR(reply->data, "u-0");
  aioc_rpc_chunk_free(reply);
  CHECK_RC(aioc_sleep(1), 0);
  CHECK_EQ(sp.yielded, 1); /* told to stop after the first */
  CHECK_RC(aioc_rpc_call_unary(f.c, "stream", "u", 1, &reply, 0.05),
           -ETIMEDOUT);
  CHECK(reply == NULL);
  CHECK_RC(aioc_rpc_call_unary(f.c, "nothing", "u", 1, &reply, 1), -ENOENT);
  fixture_down(&f);
  return 0;
}

TEST(test_rpc_errors_unknown_unary) {
  CHECK_RC(run_main(errors_main, NULL, NULL), 0);
}

/* ---- prefetch, expiry, the window ---- */

static int prefetch_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  stream_spec sp = {.n = 2, .pause = 1, .fail_at = -1};
  fixture f;
  fixture_up(&f, &sp, 1, 0);
  aioc_iter *a, *b, *c;
  CHECK_RC(aioc_rpc_call(&a, f.c, "stream", "a", 1, NULL), 0);
  /* b waits its turn behind a (prefetch 1) and expires meanwhile. */
  aioc_rpc_call_options eo = {.expiry = 0.5};
  CHECK_RC(aioc_rpc_call(&b, f.c, "stream", "b", 1, &eo), 0);
  CHECK_RC(aioc_rpc_call(&c, f.c, "stream", "c", 1, NULL), 0);
  double t0 = aioc_time();
  CHECK_RC(aioc_sleep(0.1), 0);
  size_t handled, active;
  CHECK_RC(aioc_rpc_server_stats(f.s, &handled, &active), 0);
  CHECK_EQ((int)active, 1);
  void *item;
  /* b's turn comes when a is done (2 s): it has expired by then. */
  CHECK_RC(aioc_iter_next(b, &item, AIOC_FOREVER), -ETIMEDOUT);
  CHECK_STR(aioc_error_message(), "the request expired before a worker took it");
  CHECK_DBL(aioc_time() - t0, 2.0, 1e-6);
  /* c runs next (b took no time): its first chunk a second later. */
  CHECK_RC(aioc_iter_next(c, &item, AIOC_FOREVER), 0);
  check_chunk(item, "c-0", 0);
  CHECK_DBL(aioc_time() - t0, 3.0, 1e-6);
  CHECK_EQ(sp.ran, 2);
  aioc_iter_free(a);
  aioc_iter_free(b);
  aioc_iter_free(c);
  fixture_down(&f);
  return 0;
}

TEST(test_rpc_prefetch_and_expiry) {
  CHECK_RC(run_main(prefetch_main, NULL, NULL), 0);
}

static int window_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  stream_spec sp = {.n = 100, .fail_at = -1};
  fixture f;
  fixture_up(&f, &sp, 0, 4);
  aioc_iter *it;
  CHECK_RC(aioc_rpc_call(&it, f.c, "stream", "w", 1, NULL), 0);
  void *item;
  for (int i = 0; i < 100; i++) {
    CHECK_RC(aioc_sleep(0.01), 0); /* a slow reader */
    /* The handler is never more than the window ahead. */
    CHECK(sp.yielded <= i + 4);
    CHECK_RC(aioc_iter_next(it, &item, 1), 0);
    char want[16];
    snprintf(want, sizeof want, "w-%d", i);
    check_chunk(item, want, (uint32_t)i);
  }
  CHECK_RC(aioc_iter_next(it, &item, 1), AIOC_EXHAUSTED);
  aioc_iter_free(it);
  fixture_down(&f);
  return 0;
}

TEST(test_rpc_window_bounds_memory) {
  CHECK_RC(run_main(window_main, NULL, NULL), 0);
}

/* The call's limits: first chunk, whole response. */
static int limits_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  stream_spec sp = {.n = 3, .pause = 0.4, .fail_at = -1};
  fixture f;
  fixture_up(&f, &sp, 0, 0);
  aioc_iter *it;
  void *item;
  aioc_rpc_call_options o = {.limits = {.first = 0.3}};
  CHECK_RC(aioc_rpc_call(&it, f.c, "stream", "l", 1, &o), 0);
  CHECK_RC(aioc_iter_next(it, &item, AIOC_FOREVER), -ETIMEDOUT);
  CHECK_RC(aioc_iter_next(it, &item, AIOC_FOREVER), 0);
  check_chunk(item, "l-0", 0);
  aioc_iter_free(it);
  o = (aioc_rpc_call_options){.limits = {.total = 1.0}};
  CHECK_RC(aioc_rpc_call(&it, f.c, "stream", "t", 1, &o), 0);
  CHECK_RC(aioc_iter_next(it, &item, AIOC_FOREVER), 0);
  check_chunk(item, "t-0", 0);
  CHECK_RC(aioc_iter_next(it, &item, AIOC_FOREVER), 0);
  check_chunk(item, "t-1", 1);
  CHECK_RC(aioc_iter_next(it, &item, AIOC_FOREVER), -ETIMEDOUT);
  aioc_iter_free(it);
  fixture_down(&f);
  return 0;
}

TEST(test_rpc_call_limits) { CHECK_RC(run_main(limits_main, NULL, NULL), 0); }

/* ---- shutdown ---- */

static int shutdown_main(void *arg, void **res) {
  (void)res;
  int hang = AIOC_TO_INT(arg);
  stream_spec sp = {.n = 3, .pause = hang ? 100 : 0.1, .fail_at = -1};
  fixture f;
  fixture_up(&f, &sp, 1, 0);
  aioc_iter *a, *b;
  CHECK_RC(aioc_rpc_call(&a, f.c, "stream", "a", 1, NULL), 0);
  CHECK_RC(aioc_rpc_call(&b, f.c, "stream", "b", 1, NULL), 0);
  CHECK_RC(aioc_sleep(0.01), 0);
  /* a at work, b waiting its turn. */
  CHECK_RC(aioc_rpc_server_shutdown(f.s, 1), hang ? -ETIMEDOUT : 0);
  void *item;
  if (!hang) {
    for (int i = 0; i < 3; i++) {
      CHECK_RC(aioc_iter_next(a, &item, 1), 0);
      aioc_rpc_chunk_free(item);
    }
    CHECK_RC(aioc_iter_next(a, &item, 1), AIOC_EXHAUSTED);
  } else {
    CHECK_RC(aioc_iter_next(a, &item, 1), -ESHUTDOWN);
    CHECK_EQ(sp.last_rc, -ECANCELED);
  }
  CHECK_RC(aioc_iter_next(b, &item, 1), -ESHUTDOWN);
  CHECK_EQ(sp.ran, 1);
  /* Later calls find nobody; shutting down again is a no-op. */
  aioc_iter *c;
  CHECK_RC(aioc_rpc_call(&c, f.c, "stream", "c", 1, NULL), 0);
  CHECK_RC(aioc_iter_next(c, &item, 1), -ENOENT);
  CHECK_RC(aioc_rpc_server_shutdown(f.s, 1), 0);
  aioc_iter_free(a);
  aioc_iter_free(b);
  aioc_iter_free(c);
  fixture_down(&f);
  return 0;
}

TEST(test_rpc_shutdown) {
  CHECK_RC(run_main(shutdown_main, AIOC_INT(0), NULL), 0);
  CHECK_RC(run_main(shutdown_main, AIOC_INT(1), NULL), 0);
}

/* ---- plain code drives the calls; the server runs on the loop ---- */

TEST(test_rpc_plain_code_client) {
  aioc_loop *loop = test_loop(1);
  stream_spec sp = {.n = 4, .pause = 0.1, .long_at = 1, .fail_at = -1};
  fixture f;
  fixture_up(&f, &sp, 0, 0);
  aioc_iter *it;
  CHECK_RC(aioc_rpc_call(&it, f.c, "stream", "p", 1, NULL), 0);
  void *item;
  CHECK_RC(aioc_iter_next(it, &item, 1), 0);
  check_chunk(item, "p-0", 0);
  CHECK_RC(aioc_iter_next(it, &item, 1), 0);
  check_chunk(item, "p-1", 1);
  CHECK_RC(aioc_iter_next(it, &item, 0.5), -ETIMEDOUT);
  CHECK_RC(aioc_iter_next(it, &item, 1), 0);
  check_chunk(item, "p-2", 2);
  CHECK_RC(aioc_iter_next(it, &item, 1), 0);
  check_chunk(item, "p-3", 3);
  CHECK_RC(aioc_iter_next(it, &item, 1), AIOC_EXHAUSTED);
  aioc_iter_free(it);
  /* An error reaches plain code with its message. */
  sp = (stream_spec){.n = 2, .fail_at = 0};
  CHECK_RC(aioc_rpc_call(&it, f.c, "stream", "p", 1, NULL), 0);
  CHECK_RC(aioc_iter_next(it, &item, 1), -EIO);
  CHECK_STR(aioc_error_message(), "handler failed after 0 chunks");
  aioc_iter_free(it);
  aioc_rpc_chunk *reply;
  sp = (stream_spec){.n = 1, .fail_at = -1};
  CHECK_RC(aioc_rpc_call_unary(f.c, "stream", "q", 1, &reply, 1), 0);
  CHECK_STR(reply->data, "q-0");
  aioc_rpc_chunk_free(reply);
  CHECK_RC(aioc_rpc_server_shutdown(f.s, 1), 0);
  fixture_down(&f);
  CLOSE_CLEAN(loop);
}

/* ---- bad input ---- */

static int nop_handler(void *arg, aioc_rpc_request *req) {
  (void)arg;
  (void)req;
  return 0;
}

static int bad_input_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  aioc_rpc_transport *tr;
  aioc_rpc_server *s, *s2;
  aioc_rpc_client *c;
  CHECK_RC(aioc_rpc_local_new(NULL), -EINVAL);
  CHECK_RC(aioc_rpc_local_new(&tr), 0);
  CHECK_RC(aioc_rpc_server_new(&s, NULL, NULL), -EINVAL);
  CHECK(s == NULL);
  CHECK_RC(aioc_rpc_server_new(&s, tr, NULL), 0);
  CHECK_RC(aioc_rpc_server_register(s, "", nop_handler, NULL), -EINVAL);
  CHECK_RC(aioc_rpc_server_register(s, NULL, nop_handler, NULL), -EINVAL);
  CHECK_RC(aioc_rpc_server_register(s, "m", NULL, NULL), -EINVAL);
  char longname[300];
  memset(longname, 'x', sizeof longname - 1);
  longname[sizeof longname - 1] = '\0';
  CHECK_RC(aioc_rpc_server_register(s, longname, nop_handler, NULL), -EINVAL);
  CHECK_RC(aioc_rpc_server_register(s, "m", nop_handler, NULL), 0);
  CHECK_RC(aioc_rpc_server_register(s, "m", nop_handler, NULL), -EEXIST);
  CHECK_RC(aioc_rpc_server_start(s), 0);
  CHECK_RC(aioc_rpc_server_start(s), AIOC_ESTATE);
  CHECK_RC(aioc_rpc_server_register(s, "n", nop_handler, NULL), AIOC_ESTATE);
  /* One server per method on the local transport. */
  CHECK_RC(aioc_rpc_server_new(&s2, tr, NULL), 0);
  CHECK_RC(aioc_rpc_server_register(s2, "m", nop_handler, NULL), 0);
  CHECK_RC(aioc_rpc_server_start(s2), -EADDRINUSE);
  aioc_rpc_server_free(s2);
  CHECK_RC(aioc_rpc_client_new(&c, tr, NULL), 0);
  aioc_iter *it;
  CHECK_RC(aioc_rpc_call(&it, c, "", NULL, 0, NULL), -EINVAL);
  CHECK(it == NULL);
  CHECK_RC(aioc_rpc_call(&it, c, longname, NULL, 0, NULL), -EINVAL);
  CHECK_RC(aioc_rpc_call(&it, c, "m", NULL, 3, NULL), -EINVAL);
  aioc_rpc_call_options o = {.expiry = -1};
  CHECK_RC(aioc_rpc_call(&it, c, "m", NULL, 0, &o), -EINVAL);
  CHECK_RC(aioc_rpc_call(&it, NULL, "m", NULL, 0, NULL), -EINVAL);
  CHECK_RC(aioc_rpc_yield(NULL, "x", 1), -EINVAL);
  aioc_rpc_chunk *reply;
  CHECK_RC(aioc_rpc_call_unary(c, "m", NULL, 0, NULL, 1), -EINVAL);
  /* A handler that yields nothing: the unary call says so. */
  CHECK_RC(aioc_rpc_call_unary(c, "m", NULL, 0, &reply, 1), AIOC_EXHAUSTED);
  CHECK(reply == NULL);
  CHECK_RC(aioc_rpc_server_shutdown(NULL, 1), -EINVAL);
  CHECK_RC(aioc_rpc_server_shutdown(s, -1), -EINVAL);
  CHECK_RC(aioc_rpc_server_stats(NULL, NULL, NULL), -EINVAL);
  aioc_rpc_client_free(c);
  aioc_rpc_server_free(s);
  aioc_rpc_transport_free(tr);
  aioc_rpc_client_free(NULL);
  aioc_rpc_server_free(NULL);
  aioc_rpc_transport_free(NULL);
  aioc_rpc_chunk_free(NULL);
  return 0;
}

TEST(test_rpc_bad_input) { CHECK_RC(run_main(bad_input_main, NULL, NULL), 0); }

/* ---- allocation failure: every allocation of a whole exchange ---- */

static long g_fail_at, g_allocs;

static void *failing_alloc(void *ud, void *p, size_t n) {
  (void)ud;
  if (n == 0) {
    free(p);
    return NULL;
  }
  if (++g_allocs == g_fail_at) return NULL;
  return realloc(p, n);
}

static int alloc_exchange(void *arg, void **res) {
  (void)arg;
  (void)res;
  stream_spec sp = {.n = 3, .pause = 0.01, .fail_at = -1};
  aioc_rpc_transport *tr = NULL;
  aioc_rpc_server *s = NULL;
  aioc_rpc_client *c = NULL;
  aioc_iter *it = NULL;
  int rc = aioc_rpc_local_new(&tr);
  if (rc == 0) rc = aioc_rpc_server_new(&s, tr, NULL);
  if (rc == 0) rc = aioc_rpc_server_register(s, "stream", stream_handler, &sp);
  if (rc == 0) rc = aioc_rpc_server_start(s);
  if (rc == 0) rc = aioc_rpc_client_new(&c, tr, NULL);
  if (rc == 0) rc = aioc_rpc_call(&it, c, "stream", "a", 1, NULL);
  int got = 0;
  while (rc == 0) {
    void *item;
    rc = aioc_iter_next(it, &item, 1);
    if (rc == 0) {
      aioc_rpc_chunk_free(item);
      got++;
    }
  }
  if (rc == AIOC_EXHAUSTED) {
    CHECK_EQ(got, 3);
    rc = 0;
  }
  CHECK(rc <= 0);
  aioc_iter_free(it);
  aioc_rpc_client_free(c);
  aioc_rpc_server_free(s);
  aioc_rpc_transport_free(tr);
  return rc;
}

TEST(test_rpc_alloc_failure) {
  int clean = 0;
  for (g_fail_at = 1; g_fail_at < 400 && clean < 3; g_fail_at++) {
    g_allocs = 0;
    aioc_loop *loop = test_loop(1);
    aioc_loop_set_report_handler(loop, count_report, NULL);
    aioc_set_allocator(failing_alloc, NULL);
    aioc_task *t = NULL;
    int rc = aioc_spawn_ex(&t, loop, alloc_exchange, NULL, NULL);
    if (rc == 0) {
      IGNORE_RC(aioc_loop_run_until_complete(loop, aioc_task_future(t)));
      rc = aioc_future_result(aioc_task_future(t), NULL);
      aioc_task_unref(t);
    }
    if (!(rc == 0 || rc == -ENOMEM || rc == -ECANCELED))
      fprintf(stderr, "fail_at %ld: %s\n", g_fail_at, aioc_err_name(rc));
    CHECK(rc == 0 || rc == -ENOMEM || rc == -ECANCELED);
    if (g_allocs < g_fail_at) clean++; /* nothing failed: past the end */
    aioc_set_allocator(NULL, NULL);
    IGNORE_RC(aioc_loop_close(loop));
    aioc_loop_free(loop);
  }
  CHECK(clean >= 1);
  CHECK(g_fail_at > 20); /* the exchange allocates that much: each failed */
}

CHECK_MAIN(120)
