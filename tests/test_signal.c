/* Signals on the loop: bad input, the callback and the iterator forms,
 * coalescing, a signal sent while the loop is busy, the thread's mask and
 * the previous disposition back after removal, removal from a callback,
 * a loop closed under its handlers, and the graceful SIGTERM/SIGINT
 * shutdown of aioc_run_graceful() (in child processes). */
#include <pthread.h>
#include <signal.h>

#include "check.h"

static int blocked(int s) {
  sigset_t m;
  pthread_sigmask(SIG_BLOCK, NULL, &m);
  return sigismember(&m, s);
}

/* A log of the signals the callbacks saw. */
static int seen[64];
static int nseen;
static void on_signal(void *arg, int signum) {
  (void)arg;
  if (nseen < 64) seen[nseen++] = signum;
}

/* Lets the loop run until n signals were seen (bounded). */
static int wait_seen(int n) {
  for (int i = 0; i < 2000 && nseen < n; i++) {
    int rc = aioc_sleep(0.001);
    if (rc < 0) return rc;
  }
  return nseen >= n ? 0 : -ETIMEDOUT;
}

TEST(test_signal_bad_input) {
  aioc_loop *loop = test_loop(0);
  aioc_signal *s = (aioc_signal *)1;
  int usr1 = SIGUSR1;
  int bad[] = {0, -1, SIGKILL, SIGSTOP, SIGSEGV, SIGBUS, SIGFPE, SIGILL,
               SIGTRAP, 32, 65, 1000};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    CHECK_RC(aioc_signal_add(&s, loop, &bad[i], 1, on_signal, NULL), -EINVAL);
    CHECK(s == NULL);
  }
  int mixed[] = {SIGUSR1, SIGKILL};
  CHECK_RC(aioc_signal_add(&s, loop, mixed, 2, on_signal, NULL), -EINVAL);
  CHECK(!blocked(SIGUSR1)); /* nothing blocked on failure */
  CHECK_RC(aioc_signal_add(&s, loop, &usr1, 0, on_signal, NULL), -EINVAL);
  CHECK_RC(aioc_signal_add(&s, loop, NULL, 1, on_signal, NULL), -EINVAL);
  CHECK_RC(aioc_signal_add(&s, loop, &usr1, 1, NULL, NULL), -EINVAL);
  CHECK_RC(aioc_signal_add(NULL, loop, &usr1, 1, on_signal, NULL), -EINVAL);
  aioc_iter *it = (aioc_iter *)1;
  CHECK_RC(aioc_signal_iter(&it, loop, bad, 1), -EINVAL);
  CHECK(it == NULL);
  CHECK_RC(aioc_signal_close(NULL), -EINVAL);
  aioc_signal_free(NULL);
  CHECK_RC(aioc_loop_close(loop), 0);
  CHECK_RC(aioc_signal_add(&s, loop, &usr1, 1, on_signal, NULL), AIOC_ECLOSED);
  aioc_loop_free(loop);
}

/* ---- the callback form ---------------------------------------------------- */

static int callback_main(void *arg, void **result) {
  (void)arg, (void)result;
  nseen = 0;
  aioc_signal *s;
  int sigs[] = {SIGUSR1, SIGUSR2};
  int rc = aioc_signal_add(&s, NULL, sigs, 2, on_signal, NULL);
  CHECK_RC(rc, 0);
  if (rc < 0) return rc;
  CHECK(blocked(SIGUSR1) && blocked(SIGUSR2));
  raise(SIGUSR1); /* to this thread */
  CHECK_EQ(nseen, 0); /* delivered by the loop, not here */
  CHECK_RC(wait_seen(1), 0);
  kill(getpid(), SIGUSR2); /* to the process */
  CHECK_RC(wait_seen(2), 0);
  CHECK_EQ(nseen, 2);
  CHECK_EQ(seen[0], SIGUSR1);
  CHECK_EQ(seen[1], SIGUSR2);
  CHECK_RC(aioc_signal_close(s), 0);
  CHECK_RC(aioc_signal_close(s), AIOC_ECLOSED);
  CHECK(!blocked(SIGUSR1) && !blocked(SIGUSR2));
  aioc_signal_free(s);
  return 0;
}

TEST(test_signal_callback) {
  CHECK_RC(run_main_real(callback_main, NULL, NULL), 0);
}

/* Standard signals coalesce while pending; real-time ones are queued. */
static int coalesce_main(void *arg, void **result) {
  (void)arg, (void)result;
  nseen = 0;
  aioc_signal *s;
  int sigs[] = {SIGUSR1, SIGRTMIN + 1};
  CHECK_RC(aioc_signal_add(&s, NULL, sigs, 2, on_signal, NULL), 0);
  for (int i = 0; i < 3; i++) raise(SIGUSR1); /* the loop does not run */
  for (int i = 0; i < 3; i++) raise(SIGRTMIN + 1);
  CHECK_RC(wait_seen(4), 0);
  for (int i = 0; i < 20; i++) CHECK_RC(aioc_sleep(0.001), 0);
  int usr1 = 0, rt = 0;
  for (int i = 0; i < nseen; i++) {
    usr1 += seen[i] == SIGUSR1;
    rt += seen[i] == SIGRTMIN + 1;
  }
  CHECK_EQ(usr1, 1);
  CHECK_EQ(rt, 3);
  aioc_signal_free(s);
  return 0;
}

TEST(test_signal_coalesced_and_queued) {
  CHECK_RC(run_main_real(coalesce_main, NULL, NULL), 0);
}

/* A signal sent from another thread while the loop is busy in a task
 * (the task blocks the thread in pthread_join) is read when the loop
 * polls again. */
static void *sender(void *arg) {
  (void)arg;
  kill(getpid(), SIGUSR1);
  return NULL;
}

static int busy_main(void *arg, void **result) {
  (void)arg, (void)result;
  nseen = 0;
  aioc_signal *s;
  int usr1 = SIGUSR1;
  CHECK_RC(aioc_signal_add(&s, NULL, &usr1, 1, on_signal, NULL), 0);
  pthread_t th; /* created after the add: SIGUSR1 is blocked in it too */
  CHECK_EQ(pthread_create(&th, NULL, sender, NULL), 0);
  pthread_join(th, NULL);
  volatile unsigned long spin = 0;
  for (unsigned long i = 0; i < 1000000; i++) spin += i;
  CHECK_EQ(nseen, 0);
  CHECK_RC(wait_seen(1), 0);
  CHECK_EQ(seen[0], SIGUSR1);
  aioc_signal_free(s);
  return 0;
}

TEST(test_signal_busy_loop_not_lost) {
  CHECK_RC(run_main_real(busy_main, NULL, NULL), 0);
}

/* ---- removal: mask and disposition back ----------------------------------- */

static volatile sig_atomic_t handled;
static void old_handler(int s) {
  (void)s;
  handled++;
}

static int restore_main(void *arg, void **result) {
  (void)arg, (void)result;
  nseen = 0;
  handled = 0;
  struct sigaction sa, prev;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = old_handler;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGUSR1, &sa, NULL);
  int usr1 = SIGUSR1;
  aioc_signal *a, *b;
  CHECK_RC(aioc_signal_add(&a, NULL, &usr1, 1, on_signal, NULL), 0);
  CHECK_RC(aioc_signal_add(&b, NULL, &usr1, 1, on_signal, NULL), 0);
  raise(SIGUSR1);
  CHECK_RC(wait_seen(2), 0); /* both handlers */
  CHECK_EQ(handled, 0);
  aioc_signal_free(a);
  CHECK(blocked(SIGUSR1)); /* b still takes it */
  raise(SIGUSR1);
  CHECK_RC(wait_seen(3), 0);
  aioc_signal_free(b);
  CHECK(!blocked(SIGUSR1));
  sigaction(SIGUSR1, NULL, &prev);
  CHECK(prev.sa_handler == old_handler); /* never touched */
  raise(SIGUSR1); /* the previous disposition again */
  CHECK_EQ(handled, 1);
  CHECK_EQ(nseen, 3);

  /* A signal blocked before stays blocked after. */
  sigset_t m;
  sigemptyset(&m);
  sigaddset(&m, SIGUSR2);
  pthread_sigmask(SIG_BLOCK, &m, NULL);
  int usr2 = SIGUSR2;
  CHECK_RC(aioc_signal_add(&a, NULL, &usr2, 1, on_signal, NULL), 0);
  aioc_signal_free(a);
  CHECK(blocked(SIGUSR2));
  pthread_sigmask(SIG_UNBLOCK, &m, NULL);
  signal(SIGUSR1, SIG_DFL);
  return 0;
}

TEST(test_signal_removal_restores) {
  CHECK_RC(run_main_real(restore_main, NULL, NULL), 0);
}

/* A callback frees its own handler and closes another one. */
static aioc_signal *g_self, *g_other;
static void self_freeing(void *arg, int signum) {
  on_signal(arg, signum);
  aioc_signal_free(g_self);
  CHECK_RC(aioc_signal_close(g_other), 0);
}

static int free_in_callback_main(void *arg, void **result) {
  (void)arg, (void)result;
  nseen = 0;
  signal(SIGUSR1, SIG_IGN); /* once every handler is gone */
  int usr1 = SIGUSR1;
  CHECK_RC(aioc_signal_add(&g_self, NULL, &usr1, 1, self_freeing, NULL), 0);
  CHECK_RC(aioc_signal_add(&g_other, NULL, &usr1, 1, on_signal, NULL), 0);
  raise(SIGUSR1);
  CHECK_RC(wait_seen(1), 0);
  for (int i = 0; i < 10; i++) CHECK_RC(aioc_sleep(0.001), 0);
  CHECK_EQ(nseen, 1); /* the other one was closed before its turn */
  CHECK(!blocked(SIGUSR1));
  CHECK_RC(aioc_signal_close(g_other), AIOC_ECLOSED);
  aioc_signal_free(g_other);
  /* And a new handler works after the loop dropped its signalfd. */
  aioc_signal *s;
  CHECK_RC(aioc_signal_add(&s, NULL, &usr1, 1, on_signal, NULL), 0);
  raise(SIGUSR1);
  CHECK_RC(wait_seen(2), 0);
  aioc_signal_free(s);
  return 0;
}

TEST(test_signal_free_in_callback) {
  CHECK_RC(run_main_real(free_in_callback_main, NULL, NULL), 0);
}

TEST(test_signal_loop_closed_under_handler) {
  aioc_loop *loop = test_loop(0);
  int usr1 = SIGUSR1;
  aioc_signal *s;
  aioc_iter *it;
  CHECK_RC(aioc_signal_add(&s, loop, &usr1, 1, on_signal, NULL), 0);
  CHECK_RC(aioc_signal_iter(&it, loop, &usr1, 1), 0);
  CHECK(blocked(SIGUSR1));
  CHECK_RC(aioc_loop_close(loop), 0);
  CHECK(!blocked(SIGUSR1));
  CHECK_RC(aioc_signal_close(s), AIOC_ECLOSED);
  void *x;
  CHECK_RC(aioc_iter_next(it, &x, AIOC_FOREVER), AIOC_EXHAUSTED);
  aioc_loop_free(loop);
  aioc_signal_free(s); /* still the user's to free */
  aioc_iter_free(it);
}

/* ---- the iterator form ---------------------------------------------------- */

static void raise_usr2(void *arg) {
  (void)arg;
  raise(SIGUSR2);
}

static int iter_main(void *arg, void **result) {
  (void)arg, (void)result;
  aioc_iter *it;
  int sigs[] = {SIGUSR1, SIGUSR2};
  CHECK_RC(aioc_signal_iter(&it, NULL, sigs, 2), 0);
  void *x;
  CHECK_RC(aioc_iter_next(it, &x, 0.02), -ETIMEDOUT);
  /* Signals pending together are read lowest number first: one at a
   * time, they keep their order. */
  raise(SIGUSR2);
  CHECK_RC(aioc_sleep(0.01), 0); /* read by the loop, kept by the iterator */
  raise(SIGUSR1);
  CHECK_RC(aioc_sleep(0.01), 0);
  raise(SIGUSR2); /* coalesced with the one kept */
  CHECK_RC(aioc_sleep(0.01), 0);
  CHECK_RC(aioc_iter_next(it, &x, AIOC_FOREVER), 0);
  CHECK_EQ(AIOC_TO_INT(x), SIGUSR2);
  CHECK_RC(aioc_iter_next(it, &x, AIOC_FOREVER), 0);
  CHECK_EQ(AIOC_TO_INT(x), SIGUSR1);
  CHECK_RC(aioc_iter_next(it, &x, 0.02), -ETIMEDOUT);
  /* A waiting next() is woken by the signal. */
  aioc_handle *h;
  CHECK_RC(aioc_call_later(&h, aioc_get_running_loop(), 0.01, raise_usr2,
                           NULL),
           0);
  aioc_handle_unref(h);
  CHECK_RC(aioc_iter_next(it, &x, AIOC_FOREVER), 0);
  CHECK_EQ(AIOC_TO_INT(x), SIGUSR2);
  /* The per-item limit of the timed wrapper applies. */
  aioc_iter *timed;
  aioc_timed_options lim = {.first = 0.02, .between = 0.02};
  CHECK_RC(aioc_iter_timed(&timed, it, &lim), 0);
  CHECK_RC(aioc_iter_next(timed, &x, AIOC_FOREVER), -ETIMEDOUT);
  CHECK(blocked(SIGUSR1));
  CHECK_RC(aioc_iter_close(timed), 0); /* closes the handler */
  CHECK(!blocked(SIGUSR1) && !blocked(SIGUSR2));
  CHECK_RC(aioc_iter_next(timed, &x, AIOC_FOREVER), AIOC_EXHAUSTED);
  aioc_iter_free(timed);
  return 0;
}

TEST(test_signal_iter) {
  CHECK_RC(run_main_real(iter_main, NULL, NULL), 0);
}

static int iter_waiter(void *arg, void **result) {
  (void)result;
  void *x;
  return aioc_iter_next(arg, &x, AIOC_FOREVER);
}

static int iter_cancel_main(void *arg, void **result) {
  (void)arg, (void)result;
  aioc_iter *it;
  int usr1 = SIGUSR1;
  CHECK_RC(aioc_signal_iter(&it, NULL, &usr1, 1), 0);
  aioc_task *t;
  CHECK_RC(aioc_spawn(&t, iter_waiter, it), 0);
  CHECK_RC(aioc_sleep(0.01), 0);
  void *x;
  CHECK_RC(aioc_iter_next(it, &x, 0), -EBUSY);
  aioc_task_cancel(t, NULL);
  CHECK_RC(aioc_task_await(t, NULL), -ECANCELED);
  aioc_task_unref(t);
  /* The signal is still there for the next consumer. */
  raise(SIGUSR1);
  CHECK_RC(aioc_iter_next(it, &x, AIOC_FOREVER), 0);
  CHECK_EQ(AIOC_TO_INT(x), SIGUSR1);
  aioc_iter_free(it);
  return 0;
}

TEST(test_signal_iter_cancelled) {
  CHECK_RC(run_main_real(iter_cancel_main, NULL, NULL), 0);
}

TEST(test_signal_iter_plain_code) {
  aioc_loop *loop = test_loop(0);
  aioc_iter *it;
  int usr2 = SIGUSR2;
  CHECK_RC(aioc_signal_iter(&it, loop, &usr2, 1), 0);
  aioc_handle *h;
  CHECK_RC(aioc_call_later(&h, loop, 0.01, raise_usr2, NULL), 0);
  aioc_handle_unref(h);
  void *x;
  CHECK_RC(aioc_iter_next(it, &x, 10), 0); /* runs the loop */
  CHECK_EQ(AIOC_TO_INT(x), SIGUSR2);
  CHECK_RC(aioc_iter_next(it, &x, 0.01), -ETIMEDOUT);
  aioc_iter_free(it);
  CHECK(!blocked(SIGUSR2));
  CLOSE_CLEAN(loop);
}

/* ---- the graceful shutdown ------------------------------------------------ */

static int g_pipe = -1;    /* the child tells the parent */
static double g_cleanup;   /* seconds the child's cleanup waits */

static void say(const char *s) {
  ssize_t r = write(g_pipe, s, strlen(s));
  (void)r;
}

static int server_main(void *arg, void **result) {
  (void)arg, (void)result;
  say("ready\n");
  int rc = aioc_sleep(60); /* serves until told to stop */
  if (rc != -ECANCELED) return rc;
  say("cancelled\n");
  aioc_scope *s; /* cleanup that waits */
  if (aioc_shield_enter(&s, 30) == 0) {
    if (aioc_sleep(g_cleanup) == 0) say("cleaned up\n");
    IGNORE_RC(aioc_scope_exit(s));
    aioc_scope_free(s);
  }
  return rc;
}

/* The child: the recipe of aioc_run_graceful()'s contract. */
static int graceful_child(void) {
  alarm(60);
  int sig, rc = aioc_run_graceful(server_main, NULL, NULL, &sig, NULL);
  char line[64];
  snprintf(line, sizeof line, "rc %s sig %d\n", aioc_err_name(rc), sig);
  say(line);
  if (sig) aioc_signal_exit(sig);
  return rc < 0;
}

/* Forks a child that serves, sends it the signals once it is ready, and
 * returns its wait status, with its lines in out. */
static int run_graceful(const int *sigs, int n, double cleanup, char *out,
                        size_t cap) {
  int p[2];
  if (pipe(p) != 0) return -1;
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    close(p[0]);
    g_pipe = p[1];
    g_cleanup = cleanup;
    _exit(graceful_child());
  }
  close(p[1]);
  size_t len = 0;
  ssize_t r;
  bool sent = n == 0;
  while (len + 1 < cap && (r = read(p[0], out + len, cap - 1 - len)) > 0) {
    len += (size_t)r;
    out[len] = 0;
    if (!sent && strstr(out, "ready\n")) {
      for (int i = 0; i < n; i++) {
        kill(pid, sigs[i]);
        /* The second only once the first began the cleanup. */
        while (i + 1 < n && !strstr(out, "cancelled\n") && len + 1 < cap &&
               (r = read(p[0], out + len, cap - 1 - len)) > 0) {
          len += (size_t)r;
          out[len] = 0;
        }
      }
      sent = true;
    }
  }
  out[len] = 0;
  close(p[0]);
  int status;
  if (waitpid(pid, &status, 0) != pid) return -1;
  return status;
}

TEST(test_signal_graceful_sigterm) {
  char out[512];
  int term = SIGTERM;
  int st = run_graceful(&term, 1, 0.01, out, sizeof out);
  CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);
  CHECK(strstr(out, "cancelled\ncleaned up\nrc ECANCELED sig 15\n") != NULL);
  if (check_failures) fprintf(stderr, "child said:\n%s", out);
}

TEST(test_signal_graceful_sigint) {
  char out[512];
  int sigint = SIGINT;
  int st = run_graceful(&sigint, 1, 0.01, out, sizeof out);
  CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGINT);
  CHECK(strstr(out, "cleaned up\nrc ECANCELED sig 2\n") != NULL);
  if (check_failures) fprintf(stderr, "child said:\n%s", out);
}

/* A second signal while the cleanup waits ends the process at once. */
TEST(test_signal_graceful_second_signal) {
  char out[512];
  int sigs[] = {SIGTERM, SIGTERM};
  int st = run_graceful(sigs, 2, 30, out, sizeof out);
  CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);
  CHECK(strstr(out, "cancelled\n") != NULL);
  CHECK(strstr(out, "cleaned up") == NULL);
  if (check_failures) fprintf(stderr, "child said:\n%s", out);
}

static int quick_main(void *arg, void **result) {
  (void)arg;
  *result = AIOC_INT(42);
  return 0;
}

/* Without a signal: main's outcome, and the signals as they were. */
TEST(test_signal_graceful_no_signal) {
  int sig = -1;
  void *res;
  CHECK_RC(aioc_run_graceful(quick_main, NULL, &res, &sig, NULL), 0);
  CHECK_EQ(sig, 0);
  CHECK_EQ(AIOC_TO_INT(res), 42);
  CHECK(!blocked(SIGINT) && !blocked(SIGTERM));
  CHECK_RC(aioc_run_graceful(NULL, NULL, NULL, &sig, NULL), -EINVAL);
}

static int exit_child(void *arg) {
  aioc_signal_exit((int)(intptr_t)arg);
}

TEST(test_signal_exit_status) {
  char out[64];
  int st = run_in_child(exit_child, (void *)(intptr_t)SIGTERM, out, sizeof out);
  CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);
  /* A signal whose default is to be ignored: the shell's status. */
  st = run_in_child(exit_child, (void *)(intptr_t)SIGWINCH, out, sizeof out);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 128 + SIGWINCH);
}

CHECK_MAIN(120)
