/* Out-of-process inspection: the answers of aioc_loop_write_debug(), the
 * debugging socket (where it lives, its modes, its removal at close, a
 * directory refused, a silent client dropped while the loop goes on, too
 * many clients, an answer that cannot be built for lack of memory, a peer
 * of another user refused), and the aioc-ps tool run
 * against child processes: the table, the tree, the dump, a program that
 * did not opt in, a process that does not exist, a blocked loop. */
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>

#include "observe_common.h"

/* Internal (src/observe/debugsock.c): the bound on a client's time, and
 * the peer check. */
extern int64_t aioc__debugsock_client_ns;
bool aioc__debugsock_peer_ok(int fd);

/* ---- helpers ---------------------------------------------------------- */

static char g_tmp[256];

/* A private XDG_RUNTIME_DIR for this case. */
static void private_runtime_dir(void) {
  snprintf(g_tmp, sizeof g_tmp, "/tmp/aioc-test-dbg-XXXXXX");
  if (!mkdtemp(g_tmp)) {
    perror("mkdtemp");
    exit(2);
  }
  setenv("XDG_RUNTIME_DIR", g_tmp, 1);
}

static void remove_runtime_dir(void) {
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
  IGNORE_RC(system(cmd));
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static aioc_loop *new_loop(int debug_socket, int virtual_clock) {
  return loop_with((aioc_loop_options){.debug_socket = debug_socket,
                                       .virtual_clock = virtual_clock});
}


/* ---- three stuck tasks: on a queue, a sleep, an await ------------------ */

static int g_lq, g_ls, g_lw; /* the lines of their waits */

static int consumer_fn(void *arg, void **res) {
  (void)res;
  void *item;
  return g_lq = __LINE__, aioc_queue_get(arg, &item, AIOC_FOREVER);
}

static int sleeper_fn(void *arg, void **res) {
  (void)arg, (void)res;
  return g_ls = __LINE__, aioc_sleep(3600);
}

static int waiter_fn(void *arg, void **res) {
  (void)res;
  return g_lw = __LINE__, aioc_task_await(arg, NULL);
}

typedef struct stuck {
  aioc_queue *q;
  aioc_task *consumer, *sleeper, *waiter;
} stuck;

static aioc_task *spawn_named(const char *name, aioc_fn fn, void *arg) {
  aioc_task *t = NULL;
  aioc_task_options o = {.name = name};
  CHECK_RC(aioc_spawn_ex(&t, NULL, fn, arg, &o), 0);
  return t;
}

static void stuck_setup(stuck *s) {
  CHECK_RC(aioc_queue_new(&s->q, 0, NULL), 0);
  s->consumer = spawn_named("consumer", consumer_fn, s->q);
  s->sleeper = spawn_named("sleeper", sleeper_fn, NULL);
  s->waiter = spawn_named("waiter", waiter_fn, s->consumer);
  CHECK_RC(aioc_yield(), 0);
  CHECK_RC(aioc_yield(), 0);
}

static void stuck_teardown(stuck *s) {
  aioc_task *v[3] = {s->waiter, s->consumer, s->sleeper};
  for (int i = 0; i < 3; i++)
    aioc_task_cancel(v[i], NULL);
  for (int i = 0; i < 3; i++) {
    CHECK_RC(aioc_task_await(v[i], NULL), -ECANCELED);
    aioc_task_unref(v[i]);
  }
  aioc_queue_free(s->q);
}

/* The tab-separated fields of the line of task name in a "tasks" answer
 * (a copy the caller frees; fields point into it), or NULL. */
static char *task_line(const char *answer, const char *name, char **f) {
  char key[64];
  snprintf(key, sizeof key, "\t%s\t", name);
  for (const char *l = answer, *end; l && *l; l = end ? end + 1 : NULL) {
    end = strchr(l, '\n');
    size_t len = end ? (size_t)(end - l) : strlen(l);
    const char *k = strstr(l, key);
    if (!k || k > l + len) continue;
    char *copy = strndup(l, len);
    int n = 0;
    for (char *p = copy; n < 13;) {
      f[n++] = p;
      char *t = strchr(p, '\t');
      if (!t) break;
      *t = 0;
      p = t + 1;
    }
    if (n == 13) return copy;
    free(copy);
    return NULL;
  }
  return NULL;
}

static bool ends_with(const char *s, const char *tail) {
  size_t a = strlen(s), b = strlen(tail);
  return a >= b && strcmp(s + a - b, tail) == 0;
}

static char *answer_of(const char *request, int *rc) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  *rc = aioc_loop_write_debug(NULL, request, f);
  fclose(f);
  return buf;
}

/* ---- the answers, in-process ------------------------------------------ */

static int answers_main(void *arg, void **res) {
  (void)arg, (void)res;
  stuck s;
  stuck_setup(&s);
  aioc_task *odd = spawn_named("a\tb\\c", sleeper_fn, NULL);
  CHECK_RC(aioc_yield(), 0);
  int rc;
  char *a = answer_of("tasks\n", &rc);
  CHECK_RC(rc, 0);
  CHECK(strncmp(a, "tasks 5 time ", 13) == 0);
  char *f[13];
  char *l = task_line(a, "consumer", f);
  CHECK(l != NULL);
  if (l) {
    CHECK_STR(f[2], "suspended");
    CHECK_STR(f[3], "queue");
    CHECK_STR(f[4], "aioc_queue_get");
    CHECK(ends_with(f[5], "test_debugsock.c"));
    CHECK_EQ(atoi(f[6]), g_lq);
    CHECK_STR(f[9], "-"); /* awaits no task */
  }
  unsigned consumer_id = l ? (unsigned)atoi(f[0]) : 0;
  free(l);
  l = task_line(a, "waiter", f);
  CHECK(l != NULL);
  if (l) {
    CHECK_STR(f[3], "future");
    CHECK_STR(f[4], "aioc_task_await");
    CHECK_EQ(atoi(f[6]), g_lw);
    CHECK_EQ(atoi(f[9]), consumer_id);
  }
  free(l);
  l = task_line(a, "sleeper", f);
  CHECK(l != NULL);
  if (l) {
    CHECK_STR(f[3], "sleep");
    CHECK_STR(f[4], "aioc_sleep");
    CHECK_EQ(atoi(f[6]), g_ls);
    CHECK_DBL(atof(f[8]), 3600, 1); /* its deadline, virtual time */
  }
  free(l);
  l = task_line(a, "main", f);
  CHECK(l != NULL);
  if (l) {
    CHECK_STR(f[2], "running");
    CHECK_STR(f[3], "-");
    CHECK_STR(f[5], "-");
  }
  free(l);
  /* Tabs, newlines and backslashes of names are escaped. */
  CHECK(strstr(a, "\ta\\tb\\\\c\tsuspended\t") != NULL);
  free(a);

  a = answer_of("dump", &rc);
  CHECK_RC(rc, 0);
  CHECK(strstr(a, "await tree:") != NULL);
  CHECK(strstr(a, "consumer (id") != NULL);
  free(a);
  a = answer_of("metrics", &rc);
  CHECK_RC(rc, 0);
  CHECK(strncmp(a, "iterations ", 11) == 0);
  CHECK(strstr(a, "\ntasks 5\n") != NULL);
  free(a);
  a = answer_of("stacks", &rc);
  CHECK_RC(rc, 0);
  CHECK(strstr(a, "spawned at") != NULL);
  free(a);
  a = answer_of("bogus", &rc);
  CHECK_RC(rc, -EINVAL);
  CHECK(strstr(aioc_error_message(), "unknown request") != NULL);
  free(a);
  CHECK_RC(aioc_loop_write_debug(NULL, NULL, stdout), -EINVAL);
  CHECK_RC(aioc_loop_write_debug(NULL, "tasks", NULL), -EINVAL);
  /* Not asked for: no socket. */
  CHECK(aioc_loop_debug_socket(NULL) == NULL);

  aioc_task_cancel(odd, NULL);
  CHECK_RC(aioc_task_await(odd, NULL), -ECANCELED);
  aioc_task_unref(odd);
  stuck_teardown(&s);
  return 0;
}

TEST(test_write_debug) {
  aioc_loop *loop = new_loop(0, 1);
  CHECK_RC(run_on(loop, answers_main, NULL), 0);
  CLOSE_CLEAN(loop);
}

/* ---- the socket, in-process ------------------------------------------- */

/* Connects to path, sends request, reads to the end (a task). */
static char *ask_socket(const char *path, const char *request) {
  aioc_stream *s = NULL;
  int rc = aioc_open_unix_connection(&s, path, NULL, 30);
  CHECK_RC(rc, 0);
  if (rc) return NULL;
  CHECK_RC(aioc_stream_write(s, request, strlen(request)), 0);
  if (!strchr(request, '\n')) CHECK_RC(aioc_stream_write_eof(s), 0);
  size_t len = 0, cap = 1 << 16;
  char *buf = calloc(1, cap);
  for (;;) {
    size_t n = 0;
    rc = aioc_stream_read(s, buf + len, cap - 1 - len, &n, 30);
    CHECK_RC(rc, 0);
    if (rc || n == 0) break;
    len += n;
    if (len + 1 == cap) break;
  }
  buf[len] = 0;
  aioc_stream_free(s);
  return buf;
}

static char g_path[256];

static int socket_main(void *arg, void **res) {
  (void)arg, (void)res;
  const char *path = aioc_loop_debug_socket(NULL);
  CHECK(path != NULL);
  if (!path) return -1;
  snprintf(g_path, sizeof g_path, "%s", path);
  char want[300];
  snprintf(want, sizeof want, "%s/aioc/%d.", g_tmp, (int)getpid());
  CHECK(strncmp(path, want, strlen(want)) == 0);
  CHECK(ends_with(path, ".sock"));
  struct stat st;
  char dir[300];
  snprintf(dir, sizeof dir, "%s/aioc", g_tmp);
  CHECK(stat(dir, &st) == 0 && S_ISDIR(st.st_mode));
  CHECK_EQ(st.st_mode & 0777, 0700);
  CHECK_EQ(st.st_uid, geteuid());
  CHECK(stat(path, &st) == 0 && S_ISSOCK(st.st_mode));
  CHECK_EQ(st.st_mode & 077, 0);

  stuck s;
  stuck_setup(&s);
  char *a = ask_socket(path, "tasks\n");
  CHECK(a && strncmp(a, "tasks 4 time ", 13) == 0);
  char *f[13];
  char *l = a ? task_line(a, "consumer", f) : NULL;
  CHECK(l != NULL);
  if (l) CHECK_EQ(atoi(f[6]), g_lq);
  free(l);
  /* The socket is served by the loop, not by a task: main is the asker. */
  l = a ? task_line(a, "main", f) : NULL;
  CHECK(l && strcmp(f[2], "suspended") == 0 && strcmp(f[3], "stream") == 0);
  free(l);
  free(a);
  a = ask_socket(path, "bogus\n");
  CHECK(a && strncmp(a, "error: unknown request \"bogus\"", 30) == 0);
  free(a);
  a = ask_socket(path, "dump"); /* no newline: the end of file ends it */
  CHECK(a && strstr(a, "await tree:") != NULL);
  free(a);
  stuck_teardown(&s);
  return 0;
}

TEST(test_socket_lifecycle) {
  private_runtime_dir();
  aioc_loop *loop = new_loop(1, 0);
  /* Opened by the loop's first run. */
  CHECK(aioc_loop_debug_socket(loop) == NULL);
  CHECK_RC(run_on(loop, socket_main, NULL), 0);
  struct stat st;
  CHECK(stat(g_path, &st) == 0);
  CHECK(aioc_loop_debug_socket(loop) != NULL);
  CLOSE_CLEAN(loop);
  /* Removed at close. */
  CHECK(stat(g_path, &st) < 0 && errno == ENOENT);
  remove_runtime_dir();
}

/* The environment variable asks for it too; a stale socket of a dead
 * process is removed at the next listen. */
TEST(test_socket_env_and_stale) {
  private_runtime_dir();
  char dir[300], stale[400];
  snprintf(dir, sizeof dir, "%s/aioc", g_tmp);
  CHECK(mkdir(dir, 0700) == 0);
  /* A pid that cannot exist (above the kernel's limit). */
  snprintf(stale, sizeof stale, "%s/999999999.0.sock", dir);
  int fd = open(stale, O_CREAT | O_WRONLY, 0600);
  CHECK(fd >= 0);
  close(fd);
  setenv("AIOC_DEBUG_SOCKET", "1", 1);
  aioc_loop *loop = new_loop(0, 1);
  unsetenv("AIOC_DEBUG_SOCKET");
  CHECK_RC(aioc_loop_run_once(loop), 0);
  const char *path = aioc_loop_debug_socket(loop);
  CHECK(path != NULL && strncmp(path, dir, strlen(dir)) == 0);
  struct stat st;
  CHECK(stat(stale, &st) < 0 && errno == ENOENT);
  CLOSE_CLEAN(loop);
  remove_runtime_dir();
}

/* A raw client socket connected to path (blocking). */
static int raw_connect(const char *path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
  CHECK_EQ(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  return fd;
}

static int ticker_fn(void *arg, void **res) {
  (void)res;
  int *ticks = arg;
  for (int i = 0; i < 20; i++) {
    if (aioc_sleep(0.01) != 0) return -1;
    (*ticks)++;
  }
  return 0;
}

static int silent_main(void *arg, void **res) {
  (void)arg, (void)res;
  const char *path = aioc_loop_debug_socket(NULL);
  CHECK(path != NULL);
  if (!path) return -1;
  double t0 = now_s();
  int silent[4];
  for (int i = 0; i < 4; i++)
    silent[i] = raw_connect(path);
  /* A fifth client at once: the loop serves four at a time. */
  int extra = raw_connect(path);
  CHECK_RC(aioc_wait_readable(extra, 30), 0);
  char buf[64] = "";
  ssize_t r = recv(extra, buf, sizeof buf - 1, 0);
  CHECK(r > 0 && strncmp(buf, "error: busy", 11) == 0);
  aioc_fd_forget(NULL, extra);
  close(extra);
  /* The loop goes on while they say nothing. */
  int ticks = 0;
  aioc_task *t = spawn_named("ticker", ticker_fn, &ticks);
  CHECK_RC(aioc_task_await(t, NULL), 0);
  aioc_task_unref(t);
  CHECK_EQ(ticks, 20);
  /* After their bound they are dropped: end of file. */
  for (int i = 0; i < 4; i++) {
    CHECK_RC(aioc_wait_readable(silent[i], 30), 0);
    CHECK_EQ(recv(silent[i], buf, sizeof buf, MSG_DONTWAIT), 0);
    aioc_fd_forget(NULL, silent[i]);
    close(silent[i]);
  }
  CHECK(now_s() - t0 >= 0.15);
  /* The slots are free again. */
  char *a = ask_socket(path, "metrics\n");
  CHECK(a && strncmp(a, "iterations ", 11) == 0);
  free(a);
  return 0;
}

TEST(test_silent_clients) {
  private_runtime_dir();
  aioc__debugsock_client_ns = 200 * 1000000; /* 0.2 s */
  aioc_loop *loop = new_loop(1, 0);
  CHECK_RC(run_on(loop, silent_main, NULL), 0);
  CLOSE_CLEAN(loop);
  remove_runtime_dir();
}

/* An answer that cannot be built for lack of memory: the client is told
 * so, and the loop goes on (the next answer is whole). */
#define OOM_TASKS 300

static int oom_main(void *arg, void **res) {
  (void)arg, (void)res;
  const char *path = aioc_loop_debug_socket(NULL);
  CHECK(path != NULL);
  if (!path) return -1;
  static aioc_task *t[OOM_TASKS];
  for (int i = 0; i < OOM_TASKS; i++)
    CHECK_RC(aioc_spawn(&t[i], sleeper_fn, NULL), 0);
  CHECK_RC(aioc_yield(), 0);
  /* About 30 KB of task lines: the answer's buffer must grow. */
  check_fail_grow = true;
  char *a = ask_socket(path, "tasks\n");
  check_fail_grow = false;
  CHECK(a && strcmp(a, "error: out of memory\n") == 0);
  free(a);
  a = ask_socket(path, "tasks\n");
  CHECK(a && strncmp(a, "tasks 301 time ", 15) == 0);
  CHECK(a && strlen(a) > 20000);
  free(a);
  for (int i = 0; i < OOM_TASKS; i++)
    aioc_task_cancel(t[i], NULL);
  for (int i = 0; i < OOM_TASKS; i++) {
    CHECK_RC(aioc_task_await(t[i], NULL), -ECANCELED);
    aioc_task_unref(t[i]);
  }
  return 0;
}

TEST(test_answer_out_of_memory) {
  aioc_set_allocator(check_grow_failing_realloc, NULL);
  private_runtime_dir();
  aioc_loop *loop = new_loop(1, 0);
  CHECK_RC(run_on(loop, oom_main, NULL), 0);
  CLOSE_CLEAN(loop);
  remove_runtime_dir();
}

/* ---- a directory refused: reported once, the loop runs on ------------- */

static int g_reports;
static char g_report_msg[128], g_report_detail[512];
static int g_report_code;

static void on_report(void *arg, aioc_loop *loop, const aioc_report *r) {
  (void)arg, (void)loop;
  g_reports++;
  snprintf(g_report_msg, sizeof g_report_msg, "%s", r->message);
  snprintf(g_report_detail, sizeof g_report_detail, "%s",
           r->detail ? r->detail : "");
  g_report_code = r->code;
}

static int nap_main(void *arg, void **res) {
  (void)arg, (void)res;
  return aioc_sleep(0.01);
}

static void refused_dir(const char *why_part, int code) {
  g_reports = 0;
  aioc_loop *loop = new_loop(1, 1);
  CHECK_RC(aioc_loop_set_report_handler(loop, on_report, NULL), 0);
  CHECK_RC(run_on(loop, nap_main, NULL), 0);
  CHECK_EQ(g_reports, 1);
  CHECK_STR(g_report_msg, "Debugging socket not served");
  CHECK_RC(g_report_code, code);
  CHECK(strstr(g_report_detail, why_part) != NULL);
  CHECK(aioc_loop_debug_socket(loop) == NULL);
  /* Tried once. */
  CHECK_RC(run_on(loop, nap_main, NULL), 0);
  CHECK_EQ(g_reports, 1);
  CLOSE_CLEAN(loop);
}

TEST(test_dir_refused) {
  private_runtime_dir();
  char dir[300];
  snprintf(dir, sizeof dir, "%s/aioc", g_tmp);
  CHECK(mkdir(dir, 0700) == 0);
  CHECK(chmod(dir, 0777) == 0);
  refused_dir("others may write to it", -EPERM);
  CHECK(chmod(dir, 0700) == 0);
  if (geteuid() == 0) {
    CHECK(chown(dir, 65534, 65534) == 0);
    refused_dir("not by this user", -EPERM);
    CHECK(chown(dir, 0, 0) == 0);
  }
  CHECK(rmdir(dir) == 0);
  int fd = open(dir, O_CREAT | O_WRONLY, 0600);
  close(fd);
  refused_dir("not a directory", -ENOTDIR);
  remove_runtime_dir();
}

/* ---- a peer of another user ------------------------------------------- */

static int refused_main(void *arg, void **res) {
  (void)arg, (void)res;
  const char *path = aioc_loop_debug_socket(NULL);
  CHECK(path != NULL);
  if (!path) return -1;
  /* Let the other user reach the socket: only the loop's check stands. */
  char dir[300];
  snprintf(dir, sizeof dir, "%s/aioc", g_tmp);
  CHECK(chmod(g_tmp, 0711) == 0);
  CHECK(chmod(dir, 0711) == 0);
  CHECK(chmod(path, 0666) == 0);
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid == 0) {
    if (setgid(65534) != 0 || setuid(65534) != 0) _exit(3);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) _exit(4);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 30000) != 1) _exit(6);
    char buf[128] = "";
    ssize_t r = recv(fd, buf, sizeof buf - 1, 0);
    _exit(r > 0 && strncmp(buf, "error: permission denied", 24) == 0 ? 0 : 7);
  }
  CHECK(pid > 0);
  int status = -1;
  for (int i = 0; i < 3000; i++) {
    if (waitpid(pid, &status, WNOHANG) == pid) break;
    IGNORE_RC(aioc_sleep(0.01));
  }
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  if (!WIFEXITED(status)) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
  } else if (WEXITSTATUS(status)) {
    fprintf(stderr, "  (the other user's client exited with %d)\n",
            WEXITSTATUS(status));
  }
  return 0;
}

TEST(test_peer_of_another_user) {
  /* A peer of this user passes the check. */
  int sv[2];
  CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
  CHECK(aioc__debugsock_peer_ok(sv[0]));
  close(sv[0]);
  close(sv[1]);
  /* Not a socket: refused. */
  CHECK(pipe(sv) == 0);
  CHECK(!aioc__debugsock_peer_ok(sv[0]));
  close(sv[0]);
  close(sv[1]);
  if (geteuid() != 0) {
    printf("  (not root: no second user to connect as; the check only)\n");
    return;
  }
  private_runtime_dir();
  aioc_loop *loop = new_loop(1, 0);
  CHECK_RC(run_on(loop, refused_main, NULL), 0);
  CLOSE_CLEAN(loop);
  remove_runtime_dir();
}

/* ---- aioc-ps against child processes ---------------------------------- */

#ifdef AIOC_PS_PATH

/* Runs aioc-ps with args (NULL-terminated), through the emulator of a
 * cross build (fork and exec: the simplest under qemu-user); its stdout
 * and stderr in out. Returns its exit status, or
 * -1 if it did not exit normally. */
static int run_tool(char *out, size_t cap, const char *const *args) {
  const char *argv[32];
  int n = 0;
#ifdef AIOC_PS_EMULATOR
  static char emu[512];
  snprintf(emu, sizeof emu, "%s", AIOC_PS_EMULATOR);
  for (char *p = emu; p && n < 16;) {
    argv[n++] = p;
    p = strchr(p, '|');
    if (p) *p++ = 0;
  }
#endif
  argv[n++] = AIOC_PS_PATH;
  for (int i = 0; args[i] && n < 31; i++)
    argv[n++] = args[i];
  argv[n] = NULL;
  int pfd[2];
  if (pipe(pfd) != 0) return -1;
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(pfd[1], 1);
    dup2(pfd[1], 2);
    close(pfd[0]);
    close(pfd[1]);
    execvp(argv[0], (char *const *)argv);
    _exit(127);
  }
  close(pfd[1]);
  if (pid < 0) {
    close(pfd[0]);
    snprintf(out, cap, "fork: %s", strerror(errno));
    return -1;
  }
  size_t len = 0;
  ssize_t r;
  while (len + 1 < cap && (r = read(pfd[0], out + len, cap - 1 - len)) > 0)
    len += (size_t)r;
  out[len] = 0;
  close(pfd[0]);
  int status;
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

#define TOOL(out, ...)                                                         \
  run_tool(out, sizeof out, (const char *const[]){__VA_ARGS__, NULL})

/* A child process: a loop (with or without the socket) whose main task
 * sets up the stuck tasks, says "PATH LQ LS LW" on tell, then waits for
 * the end of file on ctl (or, blocking, reads it: the loop is blocked). */
typedef struct child_args {
  int tell, ctl;
  bool block;
} child_args;

static int child_main(void *arg, void **res) {
  (void)res;
  child_args *c = arg;
  stuck s;
  stuck_setup(&s);
  const char *path = aioc_loop_debug_socket(NULL);
  char line[400];
  int n = snprintf(line, sizeof line, "%s %d %d %d\n", path ? path : "-", g_lq,
                   g_ls, g_lw);
  IGNORE_RC(write(c->tell, line, (size_t)n));
  char b;
  if (c->block)
    IGNORE_RC(read(c->ctl, &b, 1)); /* blocks the whole loop */
  else
    IGNORE_RC(aioc_wait_readable(c->ctl, 120));
  stuck_teardown(&s);
  return 0;
}

typedef struct child {
  pid_t pid;
  int ctl; /* closing it ends the child */
  char path[256];
  int lq, ls, lw;
} child;

static bool child_start(child *ch, int debug_socket, bool block) {
  int tell[2], ctl[2];
  if (pipe(tell) != 0 || pipe(ctl) != 0) return false;
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid == 0) {
    close(tell[0]);
    close(ctl[1]);
    alarm(120);
    child_args a = {tell[1], ctl[0], block};
    aioc_loop *loop = new_loop(debug_socket, 0);
    int rc = run_on(loop, child_main, &a);
    aioc_loop_close(loop);
    aioc_loop_free(loop);
    _exit(rc == 0 && check_failures == 0 ? 0 : 1);
  }
  close(tell[1]);
  close(ctl[0]);
  ch->pid = pid;
  ch->ctl = ctl[1];
  char line[400] = "";
  size_t len = 0;
  struct pollfd p = {.fd = tell[0], .events = POLLIN};
  while (len + 1 < sizeof line && !memchr(line, '\n', len) &&
         poll(&p, 1, 60000) == 1) {
    ssize_t r = read(tell[0], line + len, sizeof line - 1 - len);
    if (r <= 0) break;
    len += (size_t)r;
    line[len] = 0;
  }
  close(tell[0]);
  return pid > 0 && sscanf(line, "%255s %d %d %d", ch->path, &ch->lq, &ch->ls,
                           &ch->lw) == 4;
}

/* Ends the child; its exit status. */
static int child_end(child *ch) {
  close(ch->ctl);
  int status = -1;
  if (waitpid(ch->pid, &status, 0) != ch->pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The line of out holding needle, or NULL. */
static const char *line_with(const char *out, const char *needle) {
  const char *p = strstr(out, needle);
  if (!p) return NULL;
  while (p > out && p[-1] != '\n')
    p--;
  return p;
}

TEST(test_aioc_ps) {
  private_runtime_dir();
  child ch;
  CHECK(child_start(&ch, 1, false));
  char pid[32], want[128];
  snprintf(pid, sizeof pid, "%d", (int)ch.pid);
  static char out[1 << 16];

  /* The table. */
  CHECK_EQ(TOOL(out, pid), 0);
  snprintf(want, sizeof want, "process %s, loop ", pid);
  CHECK(strstr(out, want) != NULL);
  CHECK(strstr(out, "4 tasks") != NULL);
  const char *l = line_with(out, " consumer ");
  snprintf(want, sizeof want, "aioc_queue_get test_debugsock.c:%d", ch.lq);
  CHECK(l && strstr(l, " suspended ") && strstr(l, " queue ") &&
        strstr(l, want) && strstr(l, "(waiter)"));
  l = line_with(out, " sleeper ");
  snprintf(want, sizeof want, "aioc_sleep test_debugsock.c:%d", ch.ls);
  CHECK(l && strstr(l, " sleep ") && strstr(l, want));
  l = line_with(out, " waiter ");
  snprintf(want, sizeof want, "aioc_task_await test_debugsock.c:%d", ch.lw);
  CHECK(l && strstr(l, "(consumer)") && strstr(l, want));
  l = line_with(out, " main ");
  CHECK(l && strstr(l, " fd "));
  if (check_failures) fprintf(stderr, "aioc-ps said:\n%s", out);

  /* The tree: the awaiter above the awaited. */
  CHECK_EQ(TOOL(out, "--tree", pid), 0);
  const char *w = strstr(out, "waiter (id");
  const char *c = strstr(out, "consumer (id");
  CHECK(w && c && w < c);
  l = c ? line_with(out, "consumer (id") : NULL;
  static const char branch[] = "    └── consumer";
  CHECK(l && strncmp(l, branch, strlen(branch)) == 0);
  snprintf(want, sizeof want, "test_debugsock.c:%d", ch.lq);
  CHECK(l && strstr(l, want));
  if (check_failures) fprintf(stderr, "aioc-ps --tree said:\n%s", out);

  /* The dump, the metrics, the raw lines. */
  CHECK_EQ(TOOL(out, "--dump", pid), 0);
  CHECK(strstr(out, "await tree:") && strstr(out, "consumer (id"));
  CHECK_EQ(TOOL(out, "-m", pid), 0);
  CHECK(strncmp(out, "iterations ", 11) == 0);
  CHECK_EQ(TOOL(out, "--raw", pid), 0);
  CHECK(strncmp(out, "tasks 4 time ", 13) == 0);
  /* Looking elsewhere: nothing there. */
  CHECK_EQ(TOOL(out, "--dir", "/nonexistent", pid), 4);

  CHECK_EQ(child_end(&ch), 0);
  /* The child closed its loop: the socket is gone. */
  struct stat st;
  CHECK(stat(ch.path, &st) < 0 && errno == ENOENT);
  /* And the process too. */
  CHECK_EQ(TOOL(out, pid), 3);
  CHECK(strstr(out, "no such process") != NULL);
  remove_runtime_dir();
}

TEST(test_aioc_ps_not_opted_in) {
  private_runtime_dir();
  child ch;
  CHECK(child_start(&ch, 0, false));
  CHECK_STR(ch.path, "-");
  char pid[32];
  snprintf(pid, sizeof pid, "%d", (int)ch.pid);
  static char out[1 << 14];
  CHECK_EQ(TOOL(out, pid), 4);
  CHECK(strstr(out, "serves no debugging socket") != NULL);
  CHECK(strstr(out, "AIOC_DEBUG_SOCKET") != NULL);
  CHECK_EQ(child_end(&ch), 0);
  /* Bad usage. */
  CHECK_EQ(TOOL(out, "--bogus", pid), 2);
  CHECK_EQ(TOOL(out, "12x"), 2);
  CHECK_EQ(TOOL(out, "--timeout", "-1", pid), 2);
  CHECK_EQ(TOOL(out, "--help"), 0);
  CHECK(strstr(out, "Usage: aioc-ps") != NULL);
  remove_runtime_dir();
}

TEST(test_aioc_ps_blocked_loop) {
  private_runtime_dir();
  child ch;
  CHECK(child_start(&ch, 1, true));
  char pid[32];
  snprintf(pid, sizeof pid, "%d", (int)ch.pid);
  static char out[1 << 14];
  CHECK_EQ(TOOL(out, "--timeout", "0.5", pid), 1);
  CHECK(strstr(out, "no answer in 0.5 s: the loop may be blocked") != NULL);
  if (check_failures) fprintf(stderr, "aioc-ps said:\n%s", out);
  CHECK_EQ(child_end(&ch), 0);
  remove_runtime_dir();
}

#endif /* AIOC_PS_PATH */

CHECK_MAIN(120)
