/* Subprocesses: echo through cat, communicate() with megabytes both ways,
 * exit codes, deaths by signal, terminate and kill, waits with a timeout,
 * cancelled and under a deadline, programs that cannot run (an error at
 * the spawn, nothing left behind), /dev/null, inherited and merged
 * streams, the environment and the working directory, a child that exits
 * before anyone waits, a handle freed while its child runs (the child is
 * still reaped), fd exhaustion at the spawn, the loop closing with
 * children running, and calls outside a task. The cases about reaping
 * run twice: with the child watched through its pidfd, and through
 * SIGCHLD (the fallback of kernels without pidfd_open()). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>

#include "io/process.h"
#include "io_common.h"

/* ---- helpers -------------------------------------------------------------- */

static aioc_process *spawn(const char *const *argv,
                           const aioc_process_options *o) {
  aioc_process *p = NULL;
  int rc = aioc_create_subprocess_exec(&p, argv, o);
  CHECK_RC(rc, 0);
  if (rc) fprintf(stderr, "  (%s)\n", aioc_error_message());
  return p;
}

/* Waits for p's exit; returns its return code (or the error). */
static int wait_rc(aioc_process *p) {
  int code = 12345;
  int rc = aioc_process_wait(p, &code, 60);
  CHECK_RC(rc, 0);
  return rc ? rc : code;
}

/* The number of open fds of this process. */
static int count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  if (!d) return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.') n++;
  closedir(d);
  return n;
}

/* Has pid been reaped (it is no longer our child, zombie or not)? The
 * check itself reaps nothing (WNOWAIT). */
static bool reaped(pid_t pid) {
  siginfo_t si;
  memset(&si, 0, sizeof si);
  return waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0 &&
         errno == ECHILD;
}

/* Has this process no child at all (none running, no zombie)? */
static bool no_children(void) {
  siginfo_t si;
  memset(&si, 0, sizeof si);
  return waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 &&
         errno == ECHILD;
}

/* Runs the loop (from a task) until pid is reaped, at most 30 s. */
static bool reaped_soon(pid_t pid) {
  for (int i = 0; i < 3000; i++) {
    if (reaped(pid)) return true;
    IGNORE_RC(aioc_sleep(0.01));
  }
  return false;
}

/* The same from plain code, the loop not running (the reaper thread). */
static bool reaped_soon_plain(pid_t pid) {
  for (int i = 0; i < 3000; i++) {
    if (reaped(pid)) return true;
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  return false;
}

/* Reads s to its end into buf (NUL-terminated); the count. */
static size_t read_all(aioc_stream *s, char *buf, size_t cap) {
  size_t len = 0, n;
  for (;;) {
    int rc = aioc_stream_read(s, buf + len, cap - 1 - len, &n, 30);
    CHECK_RC(rc, 0);
    if (rc || n == 0) break;
    len += n;
    if (len + 1 >= cap) break;
  }
  buf[len] = 0;
  return len;
}

/* Each reaping case runs with the pidfd watcher and with the SIGCHLD one. */
#define BOTH_WATCHERS(name, main)                                              \
  TEST(name##_pidfd) { io_run(main, NULL); }                                   \
  TEST(name##_sigchld) {                                                       \
    aioc__process_use_pidfd(false);                                            \
    io_run(main, NULL);                                                        \
    aioc__process_use_pidfd(true);                                             \
  }

/* ---- echo through cat ------------------------------------------------------ */

static int echo_main(void *arg, void **res) {
  (void)arg, (void)res;
  const char *argv[] = {"cat", NULL};
  aioc_process_options o = {.in = AIOC_STDIO_PIPE, .out = AIOC_STDIO_PIPE};
  aioc_process *p = spawn(argv, &o);
  if (!p) return 0;
  CHECK(aioc_process_pid(p) > 0);
  aioc_stream *in = aioc_process_stdin(p), *out = aioc_process_stdout(p);
  CHECK(in != NULL);
  CHECK(out != NULL);
  CHECK(aioc_process_stderr(p) == NULL);
  char line[64];
  size_t n;
  for (int i = 0; i < 50; i++) {
    char msg[32];
    int len = snprintf(msg, sizeof msg, "line %d\n", i);
    CHECK_RC(aioc_stream_write(in, msg, (size_t)len), 0);
    CHECK_RC(aioc_stream_drain(in, 30), 0);
    CHECK_RC(aioc_stream_readline(out, line, sizeof line, &n, 30), 0);
    CHECK_EQ(n, len);
    CHECK(memcmp(line, msg, n) == 0);
  }
  /* Closing stdin ends cat: end of file on its stdout, then exit 0. */
  int code = 7;
  CHECK_EQ(aioc_process_returncode(p, &code), 0);
  CHECK_EQ(code, 7);
  CHECK_RC(aioc_stream_close(in), 0);
  CHECK_RC(aioc_stream_read(out, line, sizeof line, &n, 30), 0);
  CHECK_EQ(n, 0);
  CHECK_EQ(wait_rc(p), 0);
  CHECK_EQ(aioc_process_returncode(p, &code), 1);
  CHECK_EQ(code, 0);
  aioc_process_free(p);
  return 0;
}

TEST(test_echo_cat) { io_run(echo_main, NULL); }

/* ---- communicate: megabytes both ways -------------------------------------- */

static int big_main(void *arg, void **res) {
  (void)arg, (void)res;
  /* 3 MB to stderr first (the parent must read it while it writes stdin),
   * then 4 MB of stdin back on stdout. */
  const char *argv[] = {"/bin/sh", "-c",
                        "head -c 3000000 /dev/zero >&2; exec cat", NULL};
  aioc_process_options o = {.in = AIOC_STDIO_PIPE,
                            .out = AIOC_STDIO_PIPE,
                            .err = AIOC_STDIO_PIPE};
  aioc_process *p = spawn(argv, &o);
  if (!p) return 0;
  size_t len = 4u << 20;
  char *input = malloc(len);
  for (size_t i = 0; i < len; i++) input[i] = (char)('a' + (i * 7 + i / 4096) % 26);
  char *out = NULL, *err = NULL;
  size_t olen = 1, elen = 1;
  int rc = aioc_process_communicate(p, input, len, &out, &olen, &err, &elen,
                                    120);
  CHECK_RC(rc, 0);
  CHECK_EQ(olen, len);
  CHECK(out && memcmp(out, input, len) == 0);
  CHECK(out && out[olen] == 0);
  CHECK_EQ(elen, 3000000);
  bool zeros = err != NULL;
  for (size_t i = 0; err && i < elen; i++) zeros = zeros && err[i] == 0;
  CHECK(zeros);
  int code = -1;
  CHECK_EQ(aioc_process_returncode(p, &code), 1);
  CHECK_EQ(code, 0);
  aioc_mem_free(out);
  aioc_mem_free(err);
  free(input);
  aioc_process_free(p);
  return 0;
}

TEST(test_communicate_large) { io_run(big_main, NULL); }

static int communicate_task(void *arg, void **res) {
  (void)res;
  char *out = (char *)1;
  size_t len = 1;
  int rc = aioc_process_communicate(arg, NULL, 0, &out, &len, NULL, NULL, 60);
  CHECK(out == NULL);
  CHECK_EQ(len, 0);
  return rc;
}

/* communicate() that times out or is cancelled keeps what it read; the
 * next call returns it with the rest. A child without pipes: nothing to read, just the
 * exit. */
static int comm_retry_main(void *arg, void **res) {
  (void)arg, (void)res;
  const char *argv[] = {"/bin/sh", "-c", "echo first; exec sleep 30", NULL};
  aioc_process_options o = {.out = AIOC_STDIO_PIPE};
  aioc_process *p = spawn(argv, &o);
  if (!p) return 0;
  char *out = (char *)1;
  size_t olen = 5;
  CHECK_RC(aioc_process_communicate(p, NULL, 0, &out, &olen, NULL, NULL, 0.3),
           -ETIMEDOUT);
  CHECK(out == NULL);
  CHECK_EQ(olen, 0);
  int code = 0;
  CHECK_EQ(aioc_process_returncode(p, &code), 0); /* still running */
  /* Cancelled: the same. */
  aioc_task *ct = spawn_io(communicate_task, p);
  settle_io();
  aioc_task_cancel(ct, NULL);
  CHECK_RC(join_io(ct), -ECANCELED);
  CHECK_RC(aioc_process_kill(p), 0);
  CHECK_RC(aioc_process_communicate(p, "ignored", 7, &out, &olen, NULL, NULL,
                                    60),
           0);
  CHECK_EQ(olen, 6);
  CHECK_STR(out, "first\n");
  aioc_mem_free(out);
  CHECK_EQ(aioc_process_returncode(p, &code), 1);
  CHECK_EQ(code, -SIGKILL);
  aioc_process_free(p);

  const char *argv2[] = {"/bin/sh", "-c", "exit 3", NULL};
  p = spawn(argv2, NULL);
  if (!p) return 0;
  char *e = (char *)1;
  size_t el = 9;
  CHECK_RC(aioc_process_communicate(p, "x", 1, &out, &olen, &e, &el, 60), 0);
  CHECK(out == NULL && e == NULL);
  CHECK_EQ(olen + el, 0);
  CHECK_EQ(aioc_process_returncode(p, &code), 1);
  CHECK_EQ(code, 3);
  aioc_process_free(p);

  /* A child that exits without reading its input: not an error. */
  const char *argv3[] = {"/bin/true", NULL};
  aioc_process_options o3 = {.in = AIOC_STDIO_PIPE};
  p = spawn(argv3, &o3);
  if (!p) return 0;
  char *big = calloc(1, 1 << 20);
  CHECK_RC(aioc_process_communicate(p, big, 1 << 20, NULL, NULL, NULL, NULL,
                                    60),
           0);
  free(big);
  CHECK_EQ(wait_rc(p), 0);
  aioc_process_free(p);
  return 0;
}

TEST(test_communicate_retry) { io_run(comm_retry_main, NULL); }

/* ---- exit codes, signals ----------------------------------------------------- */

static int codes_main(void *arg, void **res) {
  (void)arg, (void)res;
  const char *t[] = {"/bin/true", NULL};
  const char *f[] = {"false", NULL}; /* found in PATH */
  const char *x[] = {"/bin/sh", "-c", "exit 42", NULL};
  const char *y[] = {"/bin/sh", "-c", "exit 255", NULL};
  const char *const *progs[] = {t, f, x, y};
  int want[] = {0, 1, 42, 255};
  for (int i = 0; i < 4; i++) {
    aioc_process *p = spawn(progs[i], NULL);
    if (!p) continue;
    CHECK_EQ(wait_rc(p), want[i]);
    /* Known from then on, and waiting again returns it at once. */
    int code = -1;
    CHECK_EQ(aioc_process_returncode(p, &code), 1);
    CHECK_EQ(code, want[i]);
    code = -1;
    CHECK_RC(aioc_process_wait(p, &code, 0), 0);
    CHECK_EQ(code, want[i]);
    /* Exited and reaped: no more signals. */
    CHECK_RC(aioc_process_send_signal(p, SIGTERM), -ESRCH);
    CHECK(reaped(aioc_process_pid(p)));
    aioc_process_free(p);
  }
  /* The shell. */
  aioc_process *p = NULL;
  aioc_process_options o = {.out = AIOC_STDIO_PIPE};
  CHECK_RC(aioc_create_subprocess_shell(&p, "echo $((6 * 7))", &o), 0);
  char *out = NULL;
  size_t olen = 0;
  CHECK_RC(aioc_process_communicate(p, NULL, 0, &out, &olen, NULL, NULL, 60),
           0);
  CHECK_STR(out, "42\n");
  aioc_mem_free(out);
  aioc_process_free(p);
  CHECK_RC(aioc_create_subprocess_shell(&p, "no-such-command-here 2>/dev/null",
                                        NULL),
           0);
  CHECK_EQ(wait_rc(p), 127);
  aioc_process_free(p);
  return 0;
}

BOTH_WATCHERS(test_exit_codes, codes_main)

static int killed_main(void *arg, void **res) {
  (void)arg, (void)res;
  /* The child kills itself: the status says which signal. */
  const char *a[] = {"/bin/sh", "-c", "kill -USR1 $$", NULL};
  aioc_process *p = spawn(a, NULL);
  if (p) {
    CHECK_EQ(wait_rc(p), -SIGUSR1);
    aioc_process_free(p);
  }
  /* terminate() and kill(), with SIGTERM blocked here: the child starts
   * with no signal blocked. */
  sigset_t m, old;
  sigemptyset(&m);
  sigaddset(&m, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &m, &old);
  const char *s[] = {"/bin/sleep", "30", NULL};
  p = spawn(s, NULL);
  if (p) {
    CHECK_RC(aioc_process_send_signal(p, 0), 0); /* alive */
    CHECK_RC(aioc_process_terminate(p), 0);
    CHECK_EQ(wait_rc(p), -SIGTERM);
    CHECK_RC(aioc_process_terminate(p), -ESRCH);
    aioc_process_free(p);
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  p = spawn(s, NULL);
  if (p) {
    CHECK_RC(aioc_process_kill(p), 0);
    CHECK_EQ(wait_rc(p), -SIGKILL);
    CHECK_RC(aioc_process_kill(p), -ESRCH);
    CHECK_RC(aioc_process_send_signal(p, -1), -EINVAL);
    CHECK_RC(aioc_process_send_signal(p, 1000), -EINVAL);
    aioc_process_free(p);
  }
  return 0;
}

BOTH_WATCHERS(test_killed_by_signal, killed_main)

/* ---- waits: timeout, cancellation, deadline ---------------------------------- */

static int waiter_task(void *arg, void **res) {
  (void)res;
  int code;
  return aioc_process_wait(arg, &code, AIOC_FOREVER);
}

static int waits_main(void *arg, void **res) {
  (void)arg, (void)res;
  const char *s[] = {"/bin/sleep", "30", NULL};
  aioc_process *p = spawn(s, NULL);
  if (!p) return 0;
  int code = 99;
  /* A timeout: the child still runs. */
  CHECK_RC(aioc_process_wait(p, &code, 0.2), -ETIMEDOUT);
  CHECK_RC(aioc_process_wait(p, &code, 0), -ETIMEDOUT);
  CHECK_EQ(code, 99);
  CHECK_EQ(aioc_process_returncode(p, &code), 0);
  CHECK_RC(aioc_process_send_signal(p, 0), 0);
  /* A deadline in scope. */
  aioc_scope *sc;
  CHECK_RC(aioc_timeout_enter(&sc, 0.1), 0);
  CHECK_RC(aioc_process_wait(p, &code, AIOC_FOREVER), -ETIMEDOUT);
  IGNORE_RC(aioc_scope_exit(sc));
  aioc_scope_free(sc);
  /* A waiting task cancelled. */
  aioc_task *w = spawn_io(waiter_task, p);
  settle_io();
  CHECK(aioc_task_is_running(w));
  aioc_task_cancel(w, NULL);
  CHECK_RC(join_io(w), -ECANCELED);
  CHECK_EQ(aioc_process_returncode(p, &code), 0);
  /* Several waiters: all see the exit. */
  aioc_task *w1 = spawn_io(waiter_task, p), *w2 = spawn_io(waiter_task, p);
  settle_io();
  CHECK_RC(aioc_process_kill(p), 0);
  CHECK_RC(join_io(w1), 0);
  CHECK_RC(join_io(w2), 0);
  CHECK_EQ(wait_rc(p), -SIGKILL);
  aioc_process_free(p);
  return 0;
}

BOTH_WATCHERS(test_wait_timeout_cancel, waits_main)

/* A task waits, or communicates, while the handle is freed: it returns
 * AIOC_ECLOSED; the child (cat, its stdin closed by the free; sleep,
 * killed) is still reaped. */
static int free_waited_main(void *arg, void **res) {
  (void)arg, (void)res;
  const char *c[] = {"cat", NULL};
  aioc_process_options o = {.in = AIOC_STDIO_PIPE};
  aioc_process *p = spawn(c, &o);
  if (!p) return 0;
  pid_t pid = aioc_process_pid(p);
  aioc_task *w = spawn_io(waiter_task, p);
  settle_io();
  aioc_process_free(p);
  CHECK_RC(join_io(w), AIOC_ECLOSED);
  CHECK(reaped_soon(pid));
  /* The same during communicate(): its readers see the streams go. */
  const char *s[] = {"/bin/sh", "-c", "echo partial; exec sleep 30", NULL};
  aioc_process_options po = {.out = AIOC_STDIO_PIPE, .err = AIOC_STDIO_PIPE};
  p = spawn(s, &po);
  if (!p) return 0;
  pid = aioc_process_pid(p);
  aioc_task *ct = spawn_io(communicate_task, p);
  IGNORE_RC(aioc_sleep(0.05));
  CHECK(aioc_task_is_running(ct));
  aioc_process_free(p);
  CHECK_RC(join_io(ct), AIOC_ECLOSED);
  CHECK(!reaped(pid)); /* not signalled by the free */
  CHECK(kill(pid, SIGKILL) == 0);
  CHECK(reaped_soon(pid));
  return 0;
}

BOTH_WATCHERS(test_free_while_waited, free_waited_main)

/* ---- programs that cannot run ------------------------------------------------- */

static void cannot_run(const char *const *argv, const aioc_process_options *o,
                       int want, const char *named) {
  aioc_process *p = (aioc_process *)1;
  int before = count_fds();
  CHECK_RC(aioc_create_subprocess_exec(&p, argv, o), want);
  CHECK(p == NULL);
  CHECK(strstr(aioc_error_message(), named) != NULL);
  CHECK_EQ(count_fds(), before);
  CHECK(no_children());
}

static int noprog_main(void *arg, void **res) {
  (void)arg, (void)res;
  aioc_process_options pipes = {.in = AIOC_STDIO_PIPE,
                                .out = AIOC_STDIO_PIPE,
                                .err = AIOC_STDIO_PIPE};
  const char *a[] = {"/nonexistent/program", NULL};
  cannot_run(a, NULL, -ENOENT, "/nonexistent/program");
  cannot_run(a, &pipes, -ENOENT, "/nonexistent/program");
  const char *b[] = {"no-such-program-in-path", NULL};
  cannot_run(b, &pipes, -ENOENT, "no-such-program-in-path");
  /* Not executable: a plain file, a directory. */
  char path[] = "/tmp/aioc-test-process-XXXXXX";
  int fd = mkstemp(path);
  CHECK(fd >= 0);
  CHECK(write(fd, "#!/bin/sh\n", 10) == 10);
  close(fd);
  chmod(path, 0644);
  const char *c[] = {path, NULL};
  if (geteuid() != 0) cannot_run(c, &pipes, -EACCES, path);
  unlink(path);
  const char *d[] = {"/tmp", NULL};
  cannot_run(d, &pipes, -EACCES, "/tmp");
  /* A working directory that does not exist. */
  aioc_process_options o = {.cwd = "/nonexistent/dir", .out = AIOC_STDIO_PIPE};
  const char *t[] = {"/bin/true", NULL};
  cannot_run(t, &o, -ENOENT, "/nonexistent/dir");
  /* PATH from the environment given: none there. */
  const char *env[] = {"PATH=/nonexistent", NULL};
  aioc_process_options oe = {.env = env};
  const char *s[] = {"sh", "-c", "exit 0", NULL};
  cannot_run(s, &oe, -ENOENT, "sh");
  /* And a program that runs, after all that. */
  aioc_process *p = spawn(t, &pipes);
  if (p) {
    CHECK_EQ(wait_rc(p), 0);
    aioc_process_free(p);
  }
  return 0;
}

TEST(test_nonexistent_program) { io_run(noprog_main, NULL); }

/* ---- /dev/null, inherited, merged; environment, cwd, fds ------------------------ */

static int stdio_main(void *arg, void **res) {
  (void)arg, (void)res;
  char *out = NULL, *err = NULL;
  size_t olen = 0, elen = 0;
  /* stderr into stdout. */
  const char *a[] = {"/bin/sh", "-c", "echo out; echo err >&2", NULL};
  aioc_process_options m = {.out = AIOC_STDIO_PIPE, .err = AIOC_STDIO_STDOUT};
  aioc_process *p = spawn(a, &m);
  if (p) {
    CHECK(aioc_process_stderr(p) == NULL);
    CHECK_RC(aioc_process_communicate(p, NULL, 0, &out, &olen, &err, &elen, 60),
             0);
    CHECK_STR(out, "out\nerr\n");
    CHECK(err == NULL);
    aioc_mem_free(out);
    aioc_process_free(p);
  }
  /* stdout to /dev/null, stderr piped. */
  aioc_process_options n = {.out = AIOC_STDIO_DEVNULL, .err = AIOC_STDIO_PIPE};
  p = spawn(a, &n);
  if (p) {
    CHECK(aioc_process_stdout(p) == NULL);
    CHECK_RC(aioc_process_communicate(p, NULL, 0, &out, &olen, &err, &elen, 60),
             0);
    CHECK(out == NULL);
    CHECK_STR(err, "err\n");
    aioc_mem_free(err);
    aioc_process_free(p);
  }
  /* stdin from /dev/null: cat ends at once. */
  const char *c[] = {"cat", NULL};
  aioc_process_options i = {.in = AIOC_STDIO_DEVNULL, .out = AIOC_STDIO_PIPE};
  p = spawn(c, &i);
  if (p) {
    CHECK(aioc_process_stdin(p) == NULL);
    char buf[16];
    CHECK_EQ(read_all(aioc_process_stdout(p), buf, sizeof buf), 0);
    CHECK_EQ(wait_rc(p), 0);
    aioc_process_free(p);
  }
  /* Inherited: the child writes to our fd 1 (a file for the test). */
  char path[] = "/tmp/aioc-test-process-XXXXXX";
  int fd = mkstemp(path);
  CHECK(fd >= 0);
  fflush(stdout);
  int saved = dup(1);
  dup2(fd, 1);
  const char *e[] = {"/bin/sh", "-c", "echo inherited", NULL};
  p = spawn(e, NULL);
  dup2(saved, 1);
  close(saved);
  if (p) {
    CHECK_EQ(wait_rc(p), 0);
    aioc_process_free(p);
  }
  char buf[64] = "";
  CHECK(pread(fd, buf, sizeof buf - 1, 0) == 10);
  CHECK_STR(buf, "inherited\n");
  close(fd);
  unlink(path);
  /* The environment and the working directory. */
  const char *env[] = {"FOO=bar baz", NULL};
  aioc_process_options ec = {.env = env, .cwd = "/", .out = AIOC_STDIO_PIPE};
  const char *f[] = {"sh", "-c", "echo \"$FOO\"; pwd", NULL};
  p = spawn(f, &ec);
  if (p) {
    CHECK_RC(aioc_process_communicate(p, NULL, 0, &out, &olen, NULL, NULL, 60),
             0);
    CHECK_STR(out, "bar baz\n/\n");
    aioc_mem_free(out);
    aioc_process_free(p);
  }
  /* Only 0, 1 and 2 go to the child, unless keep_fds. */
  int pf[2];
  CHECK(pipe(pf) == 0); /* not close-on-exec */
  char cmd[96];
  snprintf(cmd, sizeof cmd,
           "if [ -e /proc/self/fd/%d ]; then echo open; else echo closed; fi",
           pf[1]);
  const char *g[] = {"/bin/sh", "-c", cmd, NULL};
  for (int keep = 0; keep < 2; keep++) {
    aioc_process_options k = {.out = AIOC_STDIO_PIPE, .keep_fds = keep};
    p = spawn(g, &k);
    if (!p) continue;
    CHECK_RC(aioc_process_communicate(p, NULL, 0, &out, &olen, NULL, NULL, 60),
             0);
    CHECK_STR(out, keep ? "open\n" : "closed\n");
    aioc_mem_free(out);
    aioc_process_free(p);
  }
  close(pf[0]);
  close(pf[1]);
  /* A new session: the child leads its session and process group. */
  /* /proc/PID/stat: pid (comm) state ppid pgrp session ... */
  const char *h[] = {"/bin/sh", "-c",
                     "read -r pid comm state ppid pgrp sid rest"
                     " < /proc/$$/stat; [ \"$sid\" = $$ ] && [ \"$pgrp\" = $$ ]",
                     NULL};
  aioc_process_options ns = {.new_session = 1};
  p = spawn(h, &ns);
  if (p) {
    CHECK_EQ(wait_rc(p), 0);
    aioc_process_free(p);
  }
  return 0;
}

TEST(test_stdio_modes) { io_run(stdio_main, NULL); }

/* ---- a child that exits before anyone waits -------------------------------------- */

static int early_main(void *arg, void **res) {
  (void)arg, (void)res;
  const char *t[] = {"/bin/sh", "-c", "exit 5", NULL};
  /* The loop runs meanwhile: it reaps the child on its own. */
  aioc_process *p = spawn(t, NULL);
  if (!p) return 0;
  pid_t pid = aioc_process_pid(p);
  CHECK(reaped_soon(pid));
  int code = -1;
  CHECK_EQ(aioc_process_returncode(p, &code), 1);
  CHECK_EQ(code, 5);
  CHECK_RC(aioc_process_wait(p, &code, 0), 0);
  CHECK_EQ(code, 5);
  aioc_process_free(p);
  /* The loop does not run meanwhile: the wait finds it exited. */
  p = spawn(t, NULL);
  if (!p) return 0;
  siginfo_t si;
  memset(&si, 0, sizeof si);
  CHECK(waitid(P_PID, (id_t)aioc_process_pid(p), &si, WEXITED | WNOWAIT) == 0);
  code = -1;
  CHECK_RC(aioc_process_wait(p, &code, 0), 0);
  CHECK_EQ(code, 5);
  aioc_process_free(p);
  return 0;
}

BOTH_WATCHERS(test_exit_before_wait, early_main)

/* ---- a handle freed while its child runs ------------------------------------------ */

static int freed_main(void *arg, void **res) {
  (void)arg, (void)res;
  /* cat ends when the free closes its stdin. */
  const char *c[] = {"cat", NULL};
  aioc_process_options o = {.in = AIOC_STDIO_PIPE, .out = AIOC_STDIO_PIPE};
  aioc_process *p = spawn(c, &o);
  if (!p) return 0;
  pid_t pid = aioc_process_pid(p);
  CHECK_RC(aioc_stream_write(aioc_process_stdin(p), "unread\n", 7), 0);
  aioc_process_free(p);
  CHECK(reaped_soon(pid));
  /* A child killed behind the library's back, after its handle went. */
  const char *s[] = {"/bin/sleep", "30", NULL};
  p = spawn(s, NULL);
  if (!p) return 0;
  pid = aioc_process_pid(p);
  aioc_process_free(p);
  IGNORE_RC(aioc_sleep(0.05));
  CHECK(!reaped(pid)); /* still running: not signalled by the free */
  CHECK(kill(pid, SIGKILL) == 0);
  CHECK(reaped_soon(pid));
  CHECK(no_children());
  return 0;
}

BOTH_WATCHERS(test_freed_handle_reaped, freed_main)

/* ---- fd exhaustion ---------------------------------------------------------------- */

static int emfile_main(void *arg, void **res) {
  (void)arg, (void)res;
  /* Fill the table up to a low limit, then free 0 to 9 fds: each spawn
   * either works, or fails with -EMFILE leaving no fd and no child. */
  struct rlimit rl;
  CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0);
  struct rlimit low = {.rlim_cur = (rlim_t)count_fds() + 64,
                       .rlim_max = rl.rlim_max};
  CHECK(setrlimit(RLIMIT_NOFILE, &low) == 0);
  int fill[128], nfill = 0;
  for (;;) {
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      CHECK_EQ(errno, EMFILE);
      break;
    }
    if (nfill == 128) {
      close(fd);
      break;
    }
    fill[nfill++] = fd;
  }
  const char *c[] = {"cat", NULL};
  aioc_process_options o = {.in = AIOC_STDIO_PIPE,
                            .out = AIOC_STDIO_PIPE,
                            .err = AIOC_STDIO_PIPE};
  int failed = 0, worked = 0;
  for (int spare = 0; spare < 10 && nfill > 0; spare++) {
    if (spare) close(fill[--nfill]);
    int before = count_fds(); /* opendir itself takes one: 1 fewer spare */
    aioc_process *p = (aioc_process *)1;
    int rc = aioc_create_subprocess_exec(&p, c, &o);
    if (rc == 0) {
      worked++;
      CHECK_RC(aioc_stream_close(aioc_process_stdin(p)), 0);
      CHECK_EQ(wait_rc(p), 0);
      aioc_process_free(p);
    } else {
      failed++;
      CHECK(rc == -EMFILE || rc == -ENFILE);
      CHECK(p == NULL);
      CHECK(strstr(aioc_error_message(), "cat") != NULL);
    }
    CHECK_EQ(count_fds(), before);
    CHECK(no_children());
  }
  CHECK(failed > 0);
  CHECK(worked > 0);
  while (nfill) close(fill[--nfill]);
  setrlimit(RLIMIT_NOFILE, &rl);
  return 0;
}

BOTH_WATCHERS(test_emfile, emfile_main)

/* ---- the loop closes with children running ---------------------------------------- */

static void loop_close_body(void) {
  aioc_loop *loop = test_loop(0);
  /* One handle kept over the close, one freed before it. */
  const char *c[] = {"cat", NULL};
  aioc_process_options o = {.in = AIOC_STDIO_PIPE};
  aioc_process *kept = spawn(c, &o);
  const char *s[] = {"/bin/sleep", "30", NULL};
  aioc_process *gone = spawn(s, NULL);
  if (!kept || !gone) return;
  pid_t pk = aioc_process_pid(kept), pg = aioc_process_pid(gone);
  aioc_process_free(gone);
  CLOSE_CLEAN(loop);
  /* The handle still answers, without its loop. */
  int code = 0;
  CHECK_RC(aioc_process_wait(kept, &code, 1), AIOC_ECLOSED);
  CHECK_RC(aioc_process_returncode(kept, &code), AIOC_ECLOSED);
  CHECK_RC(aioc_process_kill(kept), AIOC_ECLOSED);
  CHECK(aioc_process_pid(kept) == pk);
  /* Both run on; each is reaped when it ends. */
  CHECK(!reaped(pk));
  CHECK(!reaped(pg));
  aioc_process_free(kept); /* cat reads its end of file */
  CHECK(reaped_soon_plain(pk));
  CHECK(kill(pg, SIGKILL) == 0);
  CHECK(reaped_soon_plain(pg));
  CHECK(no_children());
}

TEST(test_loop_close_running_pidfd) { loop_close_body(); }
TEST(test_loop_close_running_sigchld) {
  aioc__process_use_pidfd(false);
  loop_close_body();
  aioc__process_use_pidfd(true);
}

/* ---- outside a task ----------------------------------------------------------------- */

TEST(test_outside_task) {
  aioc_loop *loop = test_loop(0);
  const char *s[] = {"/bin/sleep", "30", NULL};
  aioc_process *p = spawn(s, NULL);
  if (p) {
    int code = 0;
    CHECK_RC(aioc_process_wait(p, &code, 0), -ETIMEDOUT);
    CHECK_RC(aioc_process_wait(p, &code, 1), AIOC_ENOTASK);
    CHECK_RC(aioc_process_kill(p), 0);
    /* Exited, not yet reaped: returncode() reaps it. */
    siginfo_t si;
    memset(&si, 0, sizeof si);
    CHECK(waitid(P_PID, (id_t)aioc_process_pid(p), &si, WEXITED | WNOWAIT) ==
          0);
    CHECK_EQ(aioc_process_returncode(p, &code), 1);
    CHECK_EQ(code, -SIGKILL);
    CHECK_RC(aioc_process_wait(p, &code, 1), 0);
    aioc_process_free(p);
  }
  CLOSE_CLEAN(loop);
  CHECK(no_children());
}

/* ---- bad input ---------------------------------------------------------------------- */

static int bad_main(void *arg, void **res) {
  (void)arg, (void)res;
  aioc_process *p = (aioc_process *)1;
  const char *empty[] = {NULL};
  const char *blank[] = {"", NULL};
  const char *t[] = {"/bin/true", NULL};
  CHECK_RC(aioc_create_subprocess_exec(NULL, t, NULL), -EINVAL);
  CHECK_RC(aioc_create_subprocess_exec(&p, NULL, NULL), -EINVAL);
  CHECK(p == NULL);
  CHECK_RC(aioc_create_subprocess_exec(&p, empty, NULL), -EINVAL);
  CHECK_RC(aioc_create_subprocess_exec(&p, blank, NULL), -EINVAL);
  aioc_process_options o = {.in = AIOC_STDIO_STDOUT};
  CHECK_RC(aioc_create_subprocess_exec(&p, t, &o), -EINVAL);
  o = (aioc_process_options){.out = AIOC_STDIO_STDOUT};
  CHECK_RC(aioc_create_subprocess_exec(&p, t, &o), -EINVAL);
  o = (aioc_process_options){.err = (aioc_stdio)9};
  CHECK_RC(aioc_create_subprocess_exec(&p, t, &o), -EINVAL);
  CHECK_RC(aioc_create_subprocess_shell(&p, NULL, NULL), -EINVAL);
  CHECK(p == NULL);
  CHECK(no_children());
  int code;
  CHECK_RC(aioc_process_wait(NULL, &code, 1), -EINVAL);
  CHECK_RC(aioc_process_returncode(NULL, &code), -EINVAL);
  CHECK_RC(aioc_process_pid(NULL), -EINVAL);
  CHECK(aioc_process_stdin(NULL) == NULL);
  CHECK(aioc_process_stdout(NULL) == NULL);
  CHECK(aioc_process_stderr(NULL) == NULL);
  CHECK_RC(aioc_process_send_signal(NULL, SIGTERM), -EINVAL);
  CHECK_RC(aioc_process_terminate(NULL), -EINVAL);
  CHECK_RC(aioc_process_kill(NULL), -EINVAL);
  char *out;
  size_t ol;
  CHECK_RC(aioc_process_communicate(NULL, NULL, 0, &out, &ol, NULL, NULL, 1),
           -EINVAL);
  p = spawn(t, NULL);
  if (p) {
    CHECK_RC(aioc_process_wait(p, NULL, 1), -EINVAL);
    CHECK_RC(aioc_process_wait(p, &code, -1), -EINVAL);
    CHECK_RC(aioc_process_returncode(p, NULL), -EINVAL);
    CHECK_RC(aioc_process_communicate(p, NULL, 5, NULL, NULL, NULL, NULL, 1),
             -EINVAL);
    CHECK_RC(aioc_process_communicate(p, NULL, 0, &out, NULL, NULL, NULL, 1),
             -EINVAL);
    CHECK_RC(aioc_process_communicate(p, NULL, 0, NULL, NULL, NULL, NULL, -1),
             -EINVAL);
    CHECK_EQ(wait_rc(p), 0);
    aioc_process_free(p);
  }
  aioc_process_free(NULL);
  return 0;
}

TEST(test_bad_input) { io_run(bad_main, NULL); }

CHECK_MAIN(120)
