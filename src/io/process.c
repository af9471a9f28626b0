/* Subprocesses: posix_spawn() with the child's standard streams on socket
 * pairs the parent reads and writes as aioc streams, a per-loop watcher
 * that reaps the loop's children, and a process-wide reaper thread for
 * the children a closing loop leaves running.
 *
 * Spawning. The program is looked up and checked in the parent (PATH,
 * execute permission, the working directory), then posix_spawn() runs it
 * (glibc: clone(CLONE_VM | CLONE_VFORK), no page table copy, and an exec
 * failure is posix_spawn()'s return). The checks in the parent make a
 * missing program an error of the spawn also where posix_spawn() cannot
 * report the exec's failure (an emulator that turns the vfork into a
 * fork: the child exits with 127 and posix_spawn() returns 0). Everything
 * that can fail for lack of fds or memory is made before the child
 * exists; the only step after it, the pidfd, kills and reaps the child
 * when it fails, so a failed spawn leaves nothing.
 *
 * Watching. A child's pidfd (pidfd_open()) becomes readable when it
 * exits: it is registered on the loop's poller, and its event reaps the
 * child (waitpid(pid, WNOHANG)). Where pidfd_open() is ENOSYS, the loop
 * watches SIGCHLD through the signal layer instead, and each SIGCHLD
 * reaps whichever of its children have exited (waitpid per pid, never
 * waitpid(-1): other children are none of its business). A SIGCHLD may
 * be taken by another thread (one that does not block it, where its
 * default action drops it), so a poll with a growing period (50 ms to
 * 1 s) backs the signal up. Every child stays on its loop's list until it
 * is reaped, whether its handle was freed or not.
 *
 * The loop's close hands the children still running to the reaper thread,
 * which waits on their pidfds (or polls them) and reaps them as they end,
 * then exits when none is left. */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <poll.h>
#include <unistd.h>

#include "process.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

/* Local to this file, so that it stays apart from the other layers'. */
#define MAGIC_PROCESS 0xa10c1040u
#define PROC_OK(p, fn) AIOC__ARMOR_OK(p, MAGIC_PROCESS, fn, "process")

#define fail aioc__fail

extern char **environ;

enum {
  P_RUNNING,  /* not reaped: on its watcher's list */
  P_EXITED,   /* reaped: status holds the wait status */
  P_LOST,     /* reaped by someone else (ECHILD) */
  P_ORPHANED  /* still running when the loop closed: the reaper's now */
};

/* What communicate() has read so far from stdout (0) and stderr (1). */
typedef struct cbuf {
  char *data;
  size_t len, cap;
  bool eof;
} cbuf;

typedef struct watcher watcher;

/* A reader task of communicate(). */
typedef struct creader {
  aioc_process *p;
  int which; /* 0: stdout, 1: stderr */
} creader;

struct aioc_process {
  aioc__list link; /* in w->children while running */
  aioc_loop *loop; /* referenced until the memory goes */
  watcher *w;      /* NULL once reaped or handed to the reaper */
  pid_t pid;
  int pidfd;       /* -1: none (the SIGCHLD watcher's) */
  int state;
  int status;      /* the wait status, once P_EXITED */
  aioc__list waiters; /* aioc__lwait: tasks in aioc_process_wait() */
  uint32_t users;  /* calls in progress that may suspend */
  bool freed;      /* the memory goes when it is reaped and unused */
  bool input_done; /* communicate() wrote its input */
  aioc_stream *io[3];
  cbuf got[2];
  creader rd[2];
  char *name;      /* the program, for messages */
  AIOC__ARMOR_FIELD
};

/* The children of a loop. */
struct watcher {
  aioc__slot slot; /* key: &watcher_key */
  aioc__live live;
  aioc_loop *loop;
  aioc__list children;
  size_t nsig;          /* children without a pidfd */
  aioc_signal *sigchld; /* while nsig > 0 */
  aioc_handle *poll;    /* the backup poll, while nsig > 0 */
  double poll_delay;
};

static const char watcher_key;

/* 1: pidfds where the kernel has them; 0: SIGCHLD (forced, or ENOSYS). */
static _Atomic int g_use_pidfd = 1;
static _Atomic int g_pidfd_nosys;

void aioc__process_use_pidfd(bool on) { g_use_pidfd = on; }

static int code_of(int status) {
  return WIFSIGNALED(status) ? -WTERMSIG(status) : WEXITSTATUS(status);
}

static void reap_blocking(pid_t pid) {
  int st;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
}

/* ---- the reaper thread: children of closed loops ---- */

typedef struct orphan {
  pid_t pid;
  int pidfd; /* -1: polled */
} orphan;

static pthread_mutex_t r_lock = PTHREAD_MUTEX_INITIALIZER;
static orphan *r_v;
static struct pollfd *r_pfd;
static size_t r_n, r_cap;
static bool r_running;
static int r_wake = -1; /* an eventfd: a new orphan */

static void *reaper_main(void *arg) {
  (void)arg;
  pthread_mutex_lock(&r_lock);
  int delay = 10;
  for (;;) {
    for (size_t i = 0; i < r_n;) {
      int st;
      pid_t r = waitpid(r_v[i].pid, &st, WNOHANG);
      if (r == 0 || (r < 0 && errno == EINTR)) {
        i++;
        continue;
      }
      if (r_v[i].pidfd >= 0) close(r_v[i].pidfd);
      r_v[i] = r_v[--r_n];
    }
    if (!r_n) break;
    size_t n = 0;
    bool polled = false;
    if (r_wake >= 0) r_pfd[n++] = (struct pollfd){.fd = r_wake, .events = POLLIN};
    for (size_t i = 0; i < r_n; i++) {
      if (r_v[i].pidfd >= 0)
        r_pfd[n++] = (struct pollfd){.fd = r_v[i].pidfd, .events = POLLIN};
      else
        polled = true;
    }
    /* The array may move while unlocked: poll a copy. */
    struct pollfd local[64];
    size_t m = n < 64 ? n : 64;
    memcpy(local, r_pfd, m * sizeof *local);
    if (m < n) polled = true; /* the rest: by polling */
    pthread_mutex_unlock(&r_lock);
    int r = poll(local, (nfds_t)m, polled ? delay : -1);
    if (polled && delay < 1000) delay *= 2;
    if (r > 0 && r_wake >= 0 && (local[0].revents & POLLIN)) {
      uint64_t v;
      ssize_t k = read(r_wake, &v, sizeof v);
      (void)k;
      delay = 10;
    }
    pthread_mutex_lock(&r_lock);
  }
  r_running = false;
  pthread_mutex_unlock(&r_lock);
  return NULL;
}

/* Hands a running child over to the reaper thread (which closes pidfd). */
static void orphan_add(pid_t pid, int pidfd) {
  pthread_mutex_lock(&r_lock);
  if (r_n == r_cap) {
    size_t cap = r_cap ? r_cap * 2 : 8;
    orphan *v = aioc__realloc(r_v, cap * sizeof *v);
    if (v) r_v = v;
    struct pollfd *pf = v ? aioc__realloc(r_pfd, (cap + 1) * sizeof *pf) : NULL;
    if (pf) {
      r_pfd = pf;
      r_cap = cap;
    }
  }
  if (r_n == r_cap) {
    /* No memory to remember it: the last resort is to wait for it here
     * (it runs on: the caller's close waits). Not expected to happen. */
    pthread_mutex_unlock(&r_lock);
    if (pidfd >= 0) close(pidfd);
    reap_blocking(pid);
    return;
  }
  r_v[r_n++] = (orphan){pid, pidfd};
  if (r_wake < 0) r_wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (!r_running) {
    /* The thread takes no signal: they go to the program's threads. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    pthread_t th;
    if (pthread_create(&th, &a, reaper_main, NULL) == 0) r_running = true;
    pthread_attr_destroy(&a);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
  } else if (r_wake >= 0) {
    uint64_t one = 1;
    ssize_t k = write(r_wake, &one, sizeof one);
    (void)k;
  }
  pthread_mutex_unlock(&r_lock);
}

/* ---- the handle's lifetime ---- */

static void free_mem(aioc_process *p) {
  aioc_loop *loop = p->loop;
  aioc__free(p->got[0].data);
  aioc__free(p->got[1].data);
  aioc__free(p->name);
  AIOC__ARMOR_SET(p, AIOC__MAGIC_DEAD);
  aioc__free(p);
  aioc__loop_unref(loop);
}

/* Frees the memory if nothing needs it any more. Returns true if it did. */
static bool maybe_free(aioc_process *p) {
  if (!p->freed || p->users || p->w) return false;
  free_mem(p);
  return true;
}

static inline void enter(aioc_process *p) { p->users++; }
static inline void leave(aioc_process *p) {
  p->users--;
  maybe_free(p);
}

/* ---- the watcher ---- */

static void w_abandon(aioc__live *n);
static const aioc__live_ops w_live_ops = {NULL, w_abandon};

static watcher *w_get(aioc_loop *loop) {
  aioc__slot *s = aioc__slot_find(loop, &watcher_key);
  if (s) return aioc__container_of(s, watcher, slot);
  watcher *w = aioc__calloc(1, sizeof *w);
  if (!w) return NULL;
  w->loop = loop;
  aioc__list_init(&w->children);
  aioc__slot_add(loop, &w->slot, &watcher_key);
  aioc__live_add(loop, &w->live, &w_live_ops);
  return w;
}

/* Stops watching SIGCHLD once no child needs it (SIGCHLD gets its
 * previous blocked state back), and frees the watcher once it has no
 * child left. */
static void w_tidy(watcher *w) {
  if (!w->nsig) {
    if (w->sigchld) {
      aioc_signal_free(w->sigchld);
      w->sigchld = NULL;
    }
    if (w->poll) {
      aioc_handle_cancel(w->poll);
      aioc_handle_unref(w->poll);
      w->poll = NULL;
    }
  }
  if (aioc__list_is_empty(&w->children)) {
    aioc__slot_del(&w->slot);
    aioc__live_del(&w->live);
    aioc__free(w);
  }
}

/* The child is no longer watched: off the poller and the list. */
static void unwatch(aioc_process *p) {
  watcher *w = p->w;
  if (!w) return;
  if (p->pidfd >= 0)
    aioc__poll_del(p->loop, p->pidfd);
  else
    w->nsig--;
  aioc__list_del(&p->link);
  p->w = NULL;
}

/* Reaps p if it has exited (without waiting): true when its state is
 * known (p may then have been freed, if its handle was). */
static bool reap(aioc_process *p) {
  if (p->state != P_RUNNING) return true;
  int st;
  pid_t r;
  while ((r = waitpid(p->pid, &st, WNOHANG)) < 0 && errno == EINTR) {
  }
  if (r == 0) return false;
  if (r == p->pid) {
    p->state = P_EXITED;
    p->status = st;
  } else {
    p->state = P_LOST; /* ECHILD: someone else reaped it */
  }
  unwatch(p);
  if (p->pidfd >= 0) {
    close(p->pidfd);
    p->pidfd = -1;
  }
  aioc__lwait_wake_all(&p->waiters, 0);
  maybe_free(p);
  return true;
}

/* Reaps every child of w without a pidfd that has exited. */
static void w_reap_sig(watcher *w) {
  aioc__list_each(l, &w->children) {
    aioc_process *p = aioc__container_of(l, aioc_process, link);
    if (p->pidfd < 0) reap(p);
  }
}

static void on_pidfd(aioc_loop *loop, int fd, uint32_t events, void *arg) {
  (void)loop, (void)fd, (void)events;
  aioc_process *p = arg;
  watcher *w = p->w;
  if (reap(p)) w_tidy(w);
}

static void on_sigchld(void *arg, int signum) {
  (void)signum;
  watcher *w = arg;
  w_reap_sig(w);
  w_tidy(w);
}

static int arm_poll(watcher *w);

static void on_poll(void *arg) {
  watcher *w = arg;
  aioc_handle_unref(w->poll);
  w->poll = NULL;
  w_reap_sig(w);
  if (w->nsig) {
    if (w->poll_delay < 1) w->poll_delay *= 2;
    if (arm_poll(w) < 0) { /* no memory: the next SIGCHLD or spawn */
    }
  }
  w_tidy(w);
}

static int arm_poll(watcher *w) {
  if (w->poll) {
    aioc_handle_cancel(w->poll);
    aioc_handle_unref(w->poll);
    w->poll = NULL;
  }
  return aioc_call_later(&w->poll, w->loop, w->poll_delay, on_poll, w);
}

/* Makes w watch SIGCHLD (and poll): for a child without a pidfd. */
static int w_watch_sigchld(watcher *w) {
  static const int chld[] = {SIGCHLD};
  int rc = 0;
  if (!w->sigchld &&
      (rc = aioc_signal_add(&w->sigchld, w->loop, chld, 1, on_sigchld, w)) < 0)
    return rc;
  w->poll_delay = 0.05;
  return arm_poll(w);
}

/* The loop closes: its children still running go to the reaper thread;
 * their handles stay the user's (their calls say AIOC_ECLOSED). */
static void w_abandon(aioc__live *n) {
  watcher *w = aioc__container_of(n, watcher, live);
  aioc__list *l;
  while ((l = aioc__list_first(&w->children)) != NULL) {
    aioc_process *p = aioc__container_of(l, aioc_process, link);
    if (reap(p)) continue; /* exited meanwhile (and maybe freed) */
    int pidfd = p->pidfd;
    unwatch(p);
    p->pidfd = -1;
    p->state = P_ORPHANED;
    aioc__lwait_wake_all(&p->waiters, AIOC_ECLOSED);
    orphan_add(p->pid, pidfd);
    maybe_free(p);
  }
  w->nsig = 0;
  w_tidy(w); /* the live link is gone already: unlinking again is harmless */
}

/* ---- spawning ---- */

/* Can path be run? 0, or the error execve() would give. */
static int check_exec(const char *path) {
  struct stat sb;
  if (stat(path, &sb) < 0) return -errno;
  if (!S_ISREG(sb.st_mode)) return -EACCES;
  if (access(path, X_OK) < 0) return -errno;
  return 0;
}

/* PATH in env (NULL: the parent's environment). */
static const char *path_of(const char *const *env) {
  const char *path = NULL;
  if (!env) {
    path = getenv("PATH");
  } else {
    for (size_t i = 0; env[i]; i++)
      if (strncmp(env[i], "PATH=", 5) == 0) path = env[i] + 5;
  }
  return path ? path : "/bin:/usr/bin";
}

/* The file to run for prog: *out (allocated), or the error with the
 * task's message. */
static int resolve(const char *prog, const aioc_process_options *o,
                   char **out) {
  *out = NULL;
  const char *cwd = o ? o->cwd : NULL;
  if (cwd) {
    struct stat sb;
    int rc = stat(cwd, &sb) < 0 ? -errno
             : !S_ISDIR(sb.st_mode) ? -ENOTDIR
             : access(cwd, X_OK) < 0 ? -errno
                                     : 0;
    if (rc < 0)
      return fail(rc, "cannot run %s: working directory %s: %s", prog, cwd,
                  aioc_strerror(rc));
  }
  if (strchr(prog, '/')) {
    /* Run as given; a relative path is found from the new cwd. */
    int rc;
    if (cwd && prog[0] != '/') {
      size_t n = strlen(cwd) + strlen(prog) + 2;
      char *full = aioc__alloc(n);
      if (!full) return -ENOMEM;
      snprintf(full, n, "%s/%s", cwd, prog);
      rc = check_exec(full);
      aioc__free(full);
    } else {
      rc = check_exec(prog);
    }
    if (rc < 0)
      return fail(rc, "cannot run %s: %s", prog, aioc_strerror(rc));
    *out = aioc__strdup(prog);
    return *out ? 0 : -ENOMEM;
  }
  const char *path = path_of(o ? o->env : NULL);
  int err = -ENOENT;
  size_t plen = strlen(prog);
  for (const char *d = path;; d++) {
    const char *end = strchr(d, ':');
    size_t dlen = end ? (size_t)(end - d) : strlen(d);
    char *full = aioc__alloc(dlen + plen + 3);
    if (!full) return -ENOMEM;
    if (dlen)
      snprintf(full, dlen + plen + 3, "%.*s/%s", (int)dlen, d, prog);
    else
      snprintf(full, dlen + plen + 3, "./%s", prog);
    int rc = check_exec(full);
    if (rc == 0) {
      *out = full;
      return 0;
    }
    aioc__free(full);
    if (rc == -EACCES) err = rc; /* found, but not runnable */
    if (!end) break;
    d = end;
  }
  return fail(err, "cannot run %s: %s (PATH=%s)", prog,
              err == -ENOENT ? "not found" : aioc_strerror(err), path);
}

/* fd moved to 3 or above (the child's 0, 1 and 2 are the dup2 targets). */
static int above_stdio(int fd) {
  if (fd > 2) return fd;
  int n = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  int rc = n < 0 ? -errno : n;
  close(fd);
  return rc;
}

static bool mode_ok(aioc_stdio m, bool is_err) {
  return m == AIOC_STDIO_INHERIT || m == AIOC_STDIO_PIPE ||
         m == AIOC_STDIO_DEVNULL || (is_err && m == AIOC_STDIO_STDOUT);
}

int aioc_create_subprocess_exec(aioc_process **out, const char *const *argv,
                                const aioc_process_options *o) {
  if (!out) return -EINVAL;
  *out = NULL;
  if (!argv || !argv[0] || !*argv[0]) return -EINVAL;
  aioc_stdio mode[3] = {o ? o->in : 0, o ? o->out : 0, o ? o->err : 0};
  for (int i = 0; i < 3; i++)
    if (!mode_ok(mode[i], i == 2)) return -EINVAL;
  aioc_loop *loop = aioc__io_loop();
  if (!loop) return -ENOMEM;
  if (loop->closed) return AIOC_ECLOSED;
  const char *prog = argv[0];
  char *path = NULL;
  int rc = resolve(prog, o, &path);
  if (rc < 0) return rc;

  aioc_process *p = aioc__calloc(1, sizeof *p);
  watcher *w = p ? w_get(loop) : NULL;
  if (p) p->name = aioc__strdup(prog);
  if (!w || !p->name) {
    aioc__free(path);
    if (p) aioc__free(p->name);
    aioc__free(p);
    return fail(-ENOMEM, "cannot run %s: out of memory", prog);
  }
  p->loop = loop;
  aioc__loop_ref(loop);
  p->pidfd = -1;
  aioc__list_init(&p->link);
  aioc__list_init(&p->waiters);
  for (int i = 0; i < 2; i++) p->rd[i] = (creader){p, i};
  bool use_pidfd = g_use_pidfd && !g_pidfd_nosys;

  /* Everything that needs an fd or memory, before the child exists. */
  int child_fd[3] = {-1, -1, -1};
  int nullfd = -1;
  const char *what = NULL;
  if (!use_pidfd && (rc = w_watch_sigchld(w)) < 0) what = "cannot watch SIGCHLD";
  for (int i = 0; i < 3 && rc == 0; i++) {
    if (mode[i] == AIOC_STDIO_DEVNULL && nullfd < 0) {
      nullfd = open("/dev/null", O_RDWR | O_CLOEXEC);
      rc = nullfd < 0 ? -errno : 0;
      if (rc == 0 && (nullfd = above_stdio(nullfd)) < 0) rc = nullfd;
      if (rc < 0) what = "cannot open /dev/null";
    }
    if (mode[i] != AIOC_STDIO_PIPE) continue;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
      rc = -errno;
      what = "cannot make a pipe";
      break;
    }
    /* The parent's end reads (stdout, stderr) or writes (stdin) only. */
    shutdown(sv[0], i == 0 ? SHUT_RD : SHUT_WR);
    if ((child_fd[i] = above_stdio(sv[1])) < 0) {
      rc = child_fd[i];
      close(sv[0]);
      what = "cannot make a pipe";
      break;
    }
    if ((rc = aioc_stream_from_fd(&p->io[i], sv[0], o ? &o->stream : NULL)) <
        0) {
      close(sv[0]);
      what = "cannot make a stream";
      break;
    }
  }

  posix_spawn_file_actions_t fa;
  posix_spawnattr_t at;
  bool fa_ok = false, at_ok = false;
  if (rc == 0) {
    rc = -posix_spawn_file_actions_init(&fa);
    fa_ok = rc == 0;
    if (rc == 0) rc = -posix_spawnattr_init(&at);
    at_ok = fa_ok && rc == 0;
    if (rc < 0) what = "cannot prepare the spawn";
  }
  if (rc == 0) {
    int e = 0;
    if (o && o->cwd) e = posix_spawn_file_actions_addchdir_np(&fa, o->cwd);
    for (int i = 0; i < 3 && !e; i++) {
      if (mode[i] == AIOC_STDIO_PIPE)
        e = posix_spawn_file_actions_adddup2(&fa, child_fd[i], i);
      else if (mode[i] == AIOC_STDIO_DEVNULL)
        e = posix_spawn_file_actions_adddup2(&fa, nullfd, i);
      else if (mode[i] == AIOC_STDIO_STDOUT)
        e = posix_spawn_file_actions_adddup2(&fa, 1, 2);
    }
    if (!e && !(o && o->keep_fds))
      e = posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    sigset_t none, dfl;
    sigemptyset(&none);
    sigemptyset(&dfl);
    sigaddset(&dfl, SIGPIPE);
    sigaddset(&dfl, SIGXFSZ);
    short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
    if (o && o->new_session) flags |= POSIX_SPAWN_SETSID;
    if (!e) e = posix_spawnattr_setsigmask(&at, &none);
    if (!e) e = posix_spawnattr_setsigdefault(&at, &dfl);
    if (!e) e = posix_spawnattr_setflags(&at, flags);
    rc = -e;
    if (rc < 0) what = "cannot prepare the spawn";
  }
  pid_t pid = -1;
  if (rc == 0) {
    char *const *envp = o && o->env ? (char *const *)o->env : environ;
    rc = -posix_spawn(&pid, path, &fa, &at, (char *const *)argv, envp);
    if (rc < 0) {
      pid = -1;
      what = "";
    }
  }
  if (fa_ok) posix_spawn_file_actions_destroy(&fa);
  if (at_ok) posix_spawnattr_destroy(&at);
  for (int i = 0; i < 3; i++)
    if (child_fd[i] >= 0) close(child_fd[i]);
  if (nullfd >= 0) close(nullfd);

  /* The child runs: its pidfd (or the SIGCHLD watcher). */
  if (rc == 0 && use_pidfd) {
    p->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (p->pidfd < 0 && errno == ENOSYS) {
      g_pidfd_nosys = 1;
      use_pidfd = false;
      if ((rc = w_watch_sigchld(w)) < 0) what = "cannot watch SIGCHLD";
    } else if (p->pidfd < 0) {
      rc = -errno;
      what = "cannot open a pidfd";
    } else if ((rc = aioc__poll_add(loop, p->pidfd, EPOLLIN, on_pidfd, p)) <
               0) {
      what = "cannot watch the pidfd";
    }
    if (rc < 0 && p->pidfd >= 0) {
      close(p->pidfd);
      p->pidfd = -1;
    }
    if (rc < 0) {
      /* Nothing left behind: the child goes. */
      kill(pid, SIGKILL);
      reap_blocking(pid);
    }
  }
  aioc__free(path);
  if (rc < 0) {
    for (int i = 0; i < 3; i++) aioc_stream_free(p->io[i]);
    aioc__free(p->name);
    aioc__free(p);
    aioc__loop_unref(loop);
    w_tidy(w);
    if (what && *what)
      return fail(rc, "cannot run %s: %s: %s", prog, what, aioc_strerror(rc));
    return fail(rc, "cannot run %s: %s", prog, aioc_strerror(rc));
  }
  p->pid = pid;
  p->state = P_RUNNING;
  p->w = w;
  if (!use_pidfd) w->nsig++;
  aioc__list_push_back(&w->children, &p->link);
  AIOC__ARMOR_SET(p, MAGIC_PROCESS);
  *out = p;
  return 0;
}

int aioc_create_subprocess_shell(aioc_process **out, const char *cmd,
                                 const aioc_process_options *opts) {
  if (!cmd) {
    if (out) *out = NULL;
    return -EINVAL;
  }
  const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
  return aioc_create_subprocess_exec(out, argv, opts);
}

/* ---- queries, signals ---- */

int aioc_process_pid(const aioc_process *p) {
  if (!p || !PROC_OK(p, "aioc_process_pid")) return -EINVAL;
  return (int)p->pid;
}

static aioc_stream *stream_of(const aioc_process *p, int i, const char *fn) {
  (void)fn;
  return p && PROC_OK(p, fn) ? p->io[i] : NULL;
}

aioc_stream *aioc_process_stdin(const aioc_process *p) {
  return stream_of(p, 0, "aioc_process_stdin");
}

aioc_stream *aioc_process_stdout(const aioc_process *p) {
  return stream_of(p, 1, "aioc_process_stdout");
}

aioc_stream *aioc_process_stderr(const aioc_process *p) {
  return stream_of(p, 2, "aioc_process_stderr");
}

/* 1 with *code once the exit is known (reaping it now if it has exited),
 * 0 while running, or -ECHILD, AIOC_ECLOSED. */
static int outcome(aioc_process *p, int *code) {
  if (p->state == P_RUNNING && p->w) {
    watcher *w = p->w;
    if (reap(p)) w_tidy(w); /* p is the caller's: not freed */
  }
  switch (p->state) {
  case P_EXITED:
    *code = code_of(p->status);
    return 1;
  case P_LOST:
    return fail(-ECHILD, "the status of %s (pid %d) is lost: reaped elsewhere",
                p->name, (int)p->pid);
  case P_ORPHANED:
    return AIOC_ECLOSED;
  default:
    return p->loop->closed ? AIOC_ECLOSED : 0;
  }
}

int aioc_process_returncode(aioc_process *p, int *returncode) {
  if (!p || !returncode || !PROC_OK(p, "aioc_process_returncode"))
    return -EINVAL;
  return outcome(p, returncode);
}

int aioc_process_wait(aioc_process *p, int *returncode, double timeout) {
  if (!p || !returncode || aioc__io_bad_timeout(timeout) ||
      !PROC_OK(p, "aioc_process_wait"))
    return -EINVAL;
  aioc_task *t = NULL;
  int64_t deadline = 0;
  for (;;) {
    if (p->freed) return AIOC_ECLOSED; /* freed during communicate() */
    int rc = outcome(p, returncode);
    if (rc) return rc < 0 ? rc : 0;
    if (!t) {
      t = aioc__current();
      if (!t) return timeout == 0 ? -ETIMEDOUT : AIOC_ENOTASK;
      deadline = aioc__io_deadline(p->loop, timeout);
    }
    enter(p);
    rc = aioc__lwait_park(&p->waiters, t, deadline);
    bool gone = p->freed;
    leave(p); /* may free p */
    if (gone) return AIOC_ECLOSED;
    if (rc) return rc;
  }
}

int aioc_process_send_signal(aioc_process *p, int signum) {
  if (!p || signum < 0 || signum >= NSIG ||
      !PROC_OK(p, "aioc_process_send_signal"))
    return -EINVAL;
  if (p->state == P_ORPHANED) return AIOC_ECLOSED;
  if (p->state != P_RUNNING) return -ESRCH;
  if (p->loop->closed) return AIOC_ECLOSED;
  int r = p->pidfd >= 0
              ? (int)syscall(SYS_pidfd_send_signal, p->pidfd, signum, NULL, 0)
              : kill(p->pid, signum);
  return r < 0 ? -errno : 0;
}

int aioc_process_terminate(aioc_process *p) {
  return aioc_process_send_signal(p, SIGTERM);
}

int aioc_process_kill(aioc_process *p) {
  return aioc_process_send_signal(p, SIGKILL);
}

/* ---- communicate ---- */

static int reader_main(void *arg, void **result) {
  (void)result;
  creader *r = arg;
  aioc_process *p = r->p;
  cbuf *b = &p->got[r->which];
  aioc_stream *s = p->io[r->which + 1];
  while (!b->eof) {
    if (b->cap - b->len < 4096) {
      size_t cap = b->cap ? b->cap * 2 : 65536;
      char *d = aioc__realloc(b->data, cap);
      if (!d) return -ENOMEM;
      b->data = d;
      b->cap = cap;
    }
    size_t n;
    /* Leaves room for the NUL. */
    int rc = aioc_stream_read(s, b->data + b->len, b->cap - b->len - 1, &n,
                              AIOC_FOREVER);
    if (rc) return rc; /* p may be gone: touch nothing */
    if (n == 0)
      b->eof = true;
    else
      b->len += n;
  }
  return 0;
}

/* Seconds left until deadline. */
static double left(aioc_loop *loop, int64_t deadline) {
  if (deadline == AIOC__NEVER) return AIOC_FOREVER;
  int64_t d = deadline - aioc__now(loop);
  return d > 0 ? (double)d / 1e9 : 0;
}

/* Hands b's bytes to the caller (an empty string if none). */
static int take(cbuf *b, char **out, size_t *len) {
  if (!b->data && !(b->data = aioc__alloc(1))) return -ENOMEM;
  b->data[b->len] = 0;
  if (out) {
    *out = b->data;
    *len = b->len;
  } else {
    aioc__free(b->data);
  }
  *b = (cbuf){.eof = true};
  return 0;
}

static int communicate(aioc_process *p, const void *input, size_t len,
                       double timeout) {
  if (p->state == P_ORPHANED || p->loop->closed) return AIOC_ECLOSED;
  int64_t deadline = aioc__io_deadline(p->loop, timeout);
  if (!p->input_done) {
    p->input_done = true;
    aioc_stream *in = p->io[0];
    if (in && !aioc_stream_is_closing(in)) {
      /* Sent in the background as the child reads, then closed; a child
       * that exits first drops the rest (-EPIPE: not an error). */
      int rc = len ? aioc_stream_write(in, input, len) : 0;
      aioc_stream_close(in);
      if (rc == -ENOMEM) return rc;
    }
  }
  aioc_task *t = aioc__current();
  aioc_future *fs[2];
  aioc_task *ts[2];
  size_t n = 0;
  for (int i = 0; i < 2; i++) {
    if (!p->io[i + 1] || p->got[i].eof) continue;
    if (!t) return timeout == 0 ? -ETIMEDOUT : AIOC_ENOTASK;
    aioc_task_options to = {.name = i ? "communicate-stderr"
                                      : "communicate-stdout"};
    int rc = aioc_spawn_ex(&ts[n], p->loop, reader_main, &p->rd[i], &to);
    if (rc < 0) {
      for (size_t j = 0; j < n; j++) {
        aioc_task_cancel(ts[j], NULL);
        aioc__await_uninterruptible(t, aioc_task_future(ts[j]));
        aioc_task_unref(ts[j]);
      }
      return rc;
    }
    fs[n] = aioc_task_future(ts[n]);
    n++;
  }
  int rc = 0;
  if (n) {
    size_t npending = 0;
    rc = aioc_wait(fs, n, AIOC_WAIT_ALL_COMPLETED, NULL, NULL, NULL,
                   &npending, left(p->loop, deadline));
    if (rc == 0 && npending) rc = -ETIMEDOUT;
    for (size_t j = 0; j < n; j++) {
      if (rc) aioc_task_cancel(ts[j], NULL);
      aioc__await_uninterruptible(t, fs[j]);
      int e = aioc_future_error(fs[j]);
      if (!rc && e && e != -ECANCELED) rc = e;
      aioc_task_unref(ts[j]);
    }
    if (rc) return rc;
  }
  int code;
  return aioc_process_wait(p, &code, left(p->loop, deadline));
}

int aioc_process_communicate(aioc_process *p, const void *input, size_t len,
                             char **out, size_t *out_len, char **err,
                             size_t *err_len, double timeout) {
  if (out) *out = NULL;
  if (out_len) *out_len = 0;
  if (err) *err = NULL;
  if (err_len) *err_len = 0;
  if (!p || (!input && len) || (out && !out_len) || (err && !err_len) ||
      aioc__io_bad_timeout(timeout) || !PROC_OK(p, "aioc_process_communicate"))
    return -EINVAL;
  enter(p);
  int rc = communicate(p, input, len, timeout);
  bool gone = p->freed;
  leave(p); /* may free p */
  if (gone) return AIOC_ECLOSED;
  if (rc) return rc;
  char *o = NULL, *e = NULL;
  size_t ol = 0, el = 0;
  if (p->io[1] && (rc = take(&p->got[0], out ? &o : NULL, &ol)) < 0) return rc;
  if (p->io[2] && (rc = take(&p->got[1], err ? &e : NULL, &el)) < 0) {
    aioc__free(o);
    return rc;
  }
  if (out) *out = o, *out_len = ol;
  if (err) *err = e, *err_len = el;
  return 0;
}

/* ---- freeing ---- */

void aioc_process_free(aioc_process *p) {
  if (!p || !PROC_OK(p, "aioc_process_free") || p->freed) return;
  p->freed = true;
  for (int i = 0; i < 3; i++) {
    aioc_stream_free(p->io[i]);
    p->io[i] = NULL;
  }
  aioc__lwait_wake_all(&p->waiters, AIOC_ECLOSED);
  watcher *w = p->w;
  if (w && reap(p)) { /* exited already: p is gone */
    w_tidy(w);
    return;
  }
  maybe_free(p); /* reaped or orphaned: no watcher holds it */
}
