/* The debugging socket that aioc-ps reads (aioc_loop_debug_socket,
 * aioc_loop_write_debug; docs/aioc-ps.md).
 *
 * A loop that asks for it listens, from its first run to its close, on a
 * Unix stream socket "<pid>.<n>.sock" in a directory of the user's
 * ($XDG_RUNTIME_DIR/aioc, else /tmp/aioc-<uid>; mode 0700, refused if it
 * is not the user's or others may write to it). The loop serves it
 * itself, through poller callbacks, not a task: nothing shows in the
 * dumps, user code cannot cancel it, and the hot paths are untouched
 * (the socket's fds are ordinary registrations of the poller). Each
 * connection sends one request line; the loop builds the whole answer
 * between tasks (aioc_loop_write_debug into a buffer), sends it as the
 * socket takes it and closes. A peer of another user (but root) is
 * refused, a few clients are served at once, and a client that has not
 * been answered and gone after a bound of real time (a timerfd, not the
 * loop's timers: the virtual clock never jumps for it) is dropped.
 * Everything here runs on the loop's thread. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include "../task/task.h"

#define MAX_CLIENTS 4
#define REQ_MAX 64
#define LISTEN_RETRY_NS ((int64_t)1000000000)

/* How long a client may take, from its connection to the end of its
 * answer (tests shorten it). */
AIOC_HIDDEN int64_t aioc__debugsock_client_ns = (int64_t)10 * 1000000000;

typedef struct ds_client {
  int fd;           /* -1: a free slot */
  int64_t deadline; /* monotonic clock, ns */
  size_t nreq;
  char req[REQ_MAX];
  char *out; /* the answer, once built */
  size_t len, sent;
  bool owned; /* out is ours to free */
} ds_client;

struct aioc__debugsock {
  aioc_loop *loop;
  int lfd, tfd;
  pid_t pid;      /* the process that made the socket file */
  int64_t armed;  /* the timerfd's deadline, AIOC__NEVER: disarmed */
  int64_t resume; /* accept paused (fd exhaustion) until, or NEVER */
  char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
  ds_client c[MAX_CLIENTS];
};

/* Loops of this process that opened a socket: the <n> of the names. */
static atomic_uint sockets_made;

/* ---- the answers ---- */

/* A name or a path in a tab-separated field. */
static void put_field(FILE *f, const char *s) {
  if (!s || !*s) {
    fputc('-', f);
    return;
  }
  for (; *s; s++) {
    if (*s == '\t')
      fputs("\\t", f);
    else if (*s == '\n')
      fputs("\\n", f);
    else if (*s == '\\')
      fputs("\\\\", f);
    else if ((unsigned char)*s < 0x20)
      fputc('?', f);
    else
      fputc(*s, f);
  }
}

static void put_id(FILE *f, uint32_t id) {
  if (id)
    fprintf(f, "\t%u", (unsigned)id);
  else
    fputs("\t-", f);
}

static int write_tasks(aioc_loop *loop, FILE *out) {
  int n = aioc_loop_get_tasks(loop, NULL, 0);
  if (n < 0) return n;
  aioc_task_info *v = n ? aioc__calloc((size_t)n, sizeof *v) : NULL;
  if (n && !v) return -ENOMEM;
  n = aioc_loop_get_tasks(loop, v, (size_t)n);
  double now = aioc_loop_time(loop);
  fprintf(out, "tasks %d time %.6f pid %d\n", n, now, (int)getpid());
  for (int k = 0; k < n; k++) {
    const aioc_task_info *i = &v[k];
    fprintf(out, "%u\t", (unsigned)i->id);
    put_field(out, i->name);
    fprintf(out, "\t%s", aioc_task_state_name(i->state));
    bool susp = i->state == AIOC_TASK_STATE_SUSPENDED;
    fprintf(out, "\t%s", susp ? aioc_wait_kind_name(i->wait_kind) : "-");
    const aioc_site *w = susp ? i->wait_site : NULL;
    fputc('\t', out);
    put_field(out, w ? w->call : NULL);
    fputc('\t', out);
    put_field(out, w ? w->file : NULL);
    if (w)
      fprintf(out, "\t%d", w->line);
    else
      fputs("\t-", out);
    if (susp && i->waited >= 0)
      fprintf(out, "\t%.6f", i->waited);
    else
      fputs("\t-", out);
    if (susp && !isinf(i->deadline))
      fprintf(out, "\t%.6f", i->deadline > now ? i->deadline - now : 0.0);
    else
      fputs("\t-", out);
    put_id(out, i->awaits);
    put_id(out, i->spawner);
    fputc('\t', out);
    put_field(out, i->spawn_site ? i->spawn_site->file : NULL);
    if (i->spawn_site)
      fprintf(out, "\t%d\n", i->spawn_site->line);
    else
      fputs("\t-\n", out);
  }
  fflush(out);
  aioc__free(v);
  return 0;
}

static int write_metrics(aioc_loop *loop, FILE *out) {
  aioc_loop_metrics m;
  int rc = aioc_loop_get_metrics(loop, &m);
  if (rc < 0) return rc;
  fprintf(out,
          "iterations %llu\nready %zu\ntimers_fired %llu\nlag_max %.9f\n"
          "lag_total %.9f\ntask_runs %llu\ntask_time %.9f\npoll_time %.9f\n"
          "tasks %d\n",
          (unsigned long long)m.iterations, m.ready,
          (unsigned long long)m.timers_fired, m.lag_max, m.lag_total,
          (unsigned long long)m.task_runs, m.task_time, m.poll_time,
          aioc_loop_get_tasks(loop, NULL, 0));
  fflush(out);
  return 0;
}

static bool is_word(const char *s, size_t n, const char *word) {
  return strlen(word) == n && memcmp(s, word, n) == 0;
}

int aioc_loop_write_debug(aioc_loop *loop, const char *request, FILE *out) {
  if (loop && !AIOC__LOOP_OK(loop, "aioc_loop_write_debug")) return -EINVAL;
  loop = aioc__loop_pick(loop);
  if (!loop || !request || !out)
    return aioc__fail(-EINVAL, "aioc_loop_write_debug: %s",
                      !loop ? "no loop" : "NULL argument");
  size_t n = strcspn(request, "\r\n");
  if (is_word(request, n, "tasks")) return write_tasks(loop, out);
  if (is_word(request, n, "dump")) return aioc_loop_dump(loop, out);
  if (is_word(request, n, "metrics")) return write_metrics(loop, out);
  if (is_word(request, n, "stacks"))
    return aioc_loop_write_stack_use(loop, out);
  return aioc__fail(-EINVAL,
                    "aioc_loop_write_debug: unknown request \"%.*s\" (tasks, "
                    "dump, metrics, stacks)",
                    (int)(n > 40 ? 40 : n), request);
}

const char *aioc_loop_debug_socket(aioc_loop *loop) {
  if (loop && !AIOC__LOOP_OK(loop, "aioc_loop_debug_socket")) return NULL;
  loop = aioc__loop_pick(loop);
  return loop && loop->debugsock ? loop->debugsock->path : NULL;
}

/* ---- an answer in memory, through the allocation hook ---- */

typedef struct membuf {
  char *p;
  size_t len, cap;
  bool failed;
} membuf;

static ssize_t membuf_write(void *cookie, const char *data, size_t n) {
  membuf *b = cookie;
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n)
      cap *= 2;
    char *p = aioc__realloc(b->p, cap);
    if (!p) {
      b->failed = true;
      return 0; /* an error, for stdio */
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, data, n);
  b->len += n;
  return (ssize_t)n;
}

/* ---- clients ---- */

static void arm(struct aioc__debugsock *ds);
static void on_client(aioc_loop *loop, int fd, uint32_t events, void *arg);

static void client_drop(struct aioc__debugsock *ds, ds_client *c) {
  aioc__poll_del(ds->loop, c->fd);
  close(c->fd);
  if (c->owned) aioc__free(c->out);
  *c = (ds_client){.fd = -1};
}

/* Sends what the socket takes; the end of the answer ends the client. */
static void client_send(struct aioc__debugsock *ds, ds_client *c) {
  while (c->sent < c->len) {
    ssize_t w = send(c->fd, c->out + c->sent, c->len - c->sent,
                     MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w > 0) {
      c->sent += (size_t)w;
    } else if (w < 0 && errno == EINTR) {
      continue;
    } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return; /* EPOLLOUT brings us back */
    } else {
      break; /* the client went away */
    }
  }
  client_drop(ds, c);
  arm(ds);
}

static void client_answer_static(ds_client *c, const char *text) {
  c->out = (char *)text;
  c->len = strlen(text);
  c->owned = false;
}

/* The request is in; the answer is built at once, then sent. */
static void client_answer(struct aioc__debugsock *ds, ds_client *c) {
  c->req[c->nreq] = 0;
  c->req[strcspn(c->req, "\r\n")] = 0;
  membuf b = {0};
  FILE *f =
      fopencookie(&b, "w", (cookie_io_functions_t){.write = membuf_write});
  if (!f) {
    client_answer_static(c, "error: out of memory\n");
  } else {
    int rc = aioc_loop_write_debug(ds->loop, c->req, f);
    if (rc == -EINVAL) {
      fputs("error: unknown request \"", f);
      put_field(f, c->req);
      fputs("\" (tasks, dump, metrics, stacks)\n", f);
    } else if (rc < 0) {
      fprintf(f, "error: %s\n", aioc_strerror(rc));
    }
    if (fclose(f) != 0 || b.failed) {
      aioc__free(b.p);
      client_answer_static(c, "error: out of memory\n");
    } else {
      c->out = b.p;
      c->len = b.len;
      c->owned = true;
    }
  }
  /* From now on only the answer matters: wait for room to send it. */
  if (aioc__poll_add(ds->loop, c->fd, EPOLLOUT, on_client, ds) < 0) {
    client_drop(ds, c); /* cannot wait for room: give up on it */
    arm(ds);
    return;
  }
  client_send(ds, c);
}

static ds_client *client_of(struct aioc__debugsock *ds, int fd) {
  for (int i = 0; i < MAX_CLIENTS; i++)
    if (ds->c[i].fd == fd) return &ds->c[i];
  return NULL;
}

static void on_client(aioc_loop *loop, int fd, uint32_t events, void *arg) {
  (void)loop;
  struct aioc__debugsock *ds = arg;
  ds_client *c = client_of(ds, fd);
  if (!c) return;
  if (c->out) {
    if (events & (EPOLLERR | EPOLLHUP)) {
      client_drop(ds, c);
      arm(ds);
      return;
    }
    client_send(ds, c);
    return;
  }
  for (;;) {
    ssize_t r = recv(fd, c->req + c->nreq, REQ_MAX - 1 - c->nreq, MSG_DONTWAIT);
    if (r > 0) {
      c->nreq += (size_t)r;
      if (memchr(c->req, '\n', c->nreq) || c->nreq == REQ_MAX - 1) {
        client_answer(ds, c);
        return;
      }
    } else if (r == 0) {
      if (c->nreq) {
        client_answer(ds, c); /* a request without its newline */
      } else {
        client_drop(ds, c);
        arm(ds);
      }
      return;
    } else if (errno == EINTR) {
      continue;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      return;
    } else {
      client_drop(ds, c);
      arm(ds);
      return;
    }
  }
}

/* Is the peer of a connected Unix socket this user or root? */
AIOC_HIDDEN bool aioc__debugsock_peer_ok(int fd);
bool aioc__debugsock_peer_ok(int fd) {
  struct ucred cr;
  socklen_t len = sizeof cr;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0 ||
      len != sizeof cr)
    return false;
  return cr.uid == geteuid() || cr.uid == 0;
}

/* Best effort: a short refusal, then the connection is closed. */
static void refuse(int fd, const char *text) {
  ssize_t w = send(fd, text, strlen(text), MSG_NOSIGNAL | MSG_DONTWAIT);
  (void)w;
  close(fd);
}

static void on_listen(aioc_loop *loop, int fd, uint32_t events, void *arg) {
  (void)events;
  struct aioc__debugsock *ds = arg;
  for (;;) {
    int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        /* Out of fds or memory: the connection stays queued, and the
         * level-triggered listener would call us at once again. Pause
         * accepting for a while instead. */
        aioc__poll_add(loop, fd, 0, on_listen, ds);
        ds->resume = aioc__clock_ns() + LISTEN_RETRY_NS;
        arm(ds);
      }
      return;
    }
    if (!aioc__debugsock_peer_ok(c)) {
      refuse(c, "error: permission denied\n");
      continue;
    }
    ds_client *slot = client_of(ds, -1);
    if (!slot) {
      refuse(c, "error: busy\n");
      continue;
    }
    if (aioc__poll_add(loop, c, EPOLLIN | EPOLLRDHUP, on_client, ds) < 0) {
      refuse(c, "error: out of memory\n");
      continue;
    }
    *slot = (ds_client){
        .fd = c, .deadline = aioc__clock_ns() + aioc__debugsock_client_ns};
    arm(ds);
  }
}

/* ---- the timer: clients past their bound, a paused listener ---- */

static void arm(struct aioc__debugsock *ds) {
  int64_t when = ds->resume;
  for (int i = 0; i < MAX_CLIENTS; i++)
    if (ds->c[i].fd >= 0 && ds->c[i].deadline < when) when = ds->c[i].deadline;
  if (when == ds->armed) return;
  struct itimerspec its = {{0, 0}, {0, 0}};
  if (when != AIOC__NEVER) {
    if (when <= 0) when = 1; /* 0 would disarm */
    its.it_value.tv_sec = when / 1000000000;
    its.it_value.tv_nsec = when % 1000000000;
  }
  if (timerfd_settime(ds->tfd, TFD_TIMER_ABSTIME, &its, NULL) == 0)
    ds->armed = when;
}

static void on_timer(aioc_loop *loop, int fd, uint32_t events, void *arg) {
  (void)events;
  struct aioc__debugsock *ds = arg;
  uint64_t ticks;
  ssize_t r = read(fd, &ticks, sizeof ticks);
  (void)r;
  ds->armed = AIOC__NEVER; /* fired (or disarmed): set again below */
  int64_t now = aioc__clock_ns();
  for (int i = 0; i < MAX_CLIENTS; i++)
    if (ds->c[i].fd >= 0 && ds->c[i].deadline <= now)
      client_drop(ds, &ds->c[i]);
  if (ds->resume != AIOC__NEVER && ds->resume <= now) {
    ds->resume = AIOC__NEVER;
    aioc__poll_add(loop, ds->lfd, EPOLLIN, on_listen, ds);
  }
  arm(ds);
}

/* ---- opening and closing ---- */

/* The directory of the sockets, made if missing; *dir receives it. */
static int socket_dir(char *dir, size_t cap, char *why, size_t wcap) {
  const char *x = getenv("XDG_RUNTIME_DIR");
  int n = x && x[0] == '/'
              ? snprintf(dir, cap, "%s/aioc", x)
              : snprintf(dir, cap, "/tmp/aioc-%u", (unsigned)geteuid());
  if (n < 0 || (size_t)n + 32 > cap) {
    snprintf(why, wcap, "%s/aioc: path too long for a Unix socket", x ? x : "");
    return -ENAMETOOLONG;
  }
  if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
    int rc = -errno;
    snprintf(why, wcap, "%s: cannot create: %s", dir, strerror(errno));
    return rc;
  }
  struct stat st;
  if (lstat(dir, &st) < 0) {
    int rc = -errno;
    snprintf(why, wcap, "%s: %s", dir, strerror(errno));
    return rc;
  }
  if (!S_ISDIR(st.st_mode)) {
    snprintf(why, wcap, "%s: not a directory", dir);
    return -ENOTDIR;
  }
  if (st.st_uid != geteuid()) {
    snprintf(why, wcap, "%s: owned by uid %u, not by this user (uid %u)", dir,
             (unsigned)st.st_uid, (unsigned)geteuid());
    return -EPERM;
  }
  if (st.st_mode & 022) {
    snprintf(why, wcap, "%s: others may write to it (mode %03o)", dir,
             (unsigned)(st.st_mode & 0777));
    return -EPERM;
  }
  return 0;
}

/* Is name "<pid>.<n>.sock"? Then *pid is its pid. */
static bool socket_name(const char *name, pid_t *pid) {
  char *end;
  long p = strtol(name, &end, 10);
  if (end == name || *end != '.' || p <= 0) return false;
  const char *s = end + 1;
  (void)strtoul(s, &end, 10);
  if (end == s || strcmp(end, ".sock") != 0) return false;
  *pid = (pid_t)p;
  return true;
}

/* Removes the sockets of processes that no longer exist. */
static void clean_stale(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *e;
  pid_t self = getpid();
  while ((e = readdir(d)) != NULL) {
    pid_t pid;
    if (!socket_name(e->d_name, &pid) || pid == self) continue;
    if (kill(pid, 0) < 0 && errno == ESRCH) unlinkat(dirfd(d), e->d_name, 0);
  }
  closedir(d);
}

static void ds_free(struct aioc__debugsock *ds, bool unlink_it) {
  aioc_loop *loop = ds->loop;
  for (int i = 0; i < MAX_CLIENTS; i++)
    if (ds->c[i].fd >= 0) client_drop(ds, &ds->c[i]);
  if (ds->lfd >= 0) {
    aioc__poll_del(loop, ds->lfd); /* -ENOENT when never added */
    close(ds->lfd);
  }
  if (ds->tfd >= 0) {
    aioc__poll_del(loop, ds->tfd);
    close(ds->tfd);
  }
  /* A forked child closing its copy of the loop leaves its parent's. */
  if (unlink_it && getpid() == ds->pid) unlink(ds->path);
  aioc__free(ds);
}

static int open_socket(aioc_loop *loop, char *why, size_t wcap) {
  struct aioc__debugsock *ds = aioc__calloc(1, sizeof *ds);
  if (!ds) {
    snprintf(why, wcap, "out of memory");
    return -ENOMEM;
  }
  ds->loop = loop;
  ds->lfd = ds->tfd = -1;
  ds->armed = ds->resume = AIOC__NEVER;
  ds->pid = getpid();
  for (int i = 0; i < MAX_CLIENTS; i++)
    ds->c[i].fd = -1;
  bool bound = false;
  char dir[sizeof ds->path];
  int rc = socket_dir(dir, sizeof dir, why, wcap);
  if (rc < 0) goto fail;
  clean_stale(dir);
  unsigned n = atomic_fetch_add(&sockets_made, 1);
  int pl = snprintf(ds->path, sizeof ds->path, "%s/%d.%u.sock", dir,
                    (int)ds->pid, n);
  if (pl < 0 || (size_t)pl >= sizeof ds->path) {
    snprintf(why, wcap, "%s: path too long for a Unix socket", dir);
    rc = -ENAMETOOLONG;
    goto fail;
  }
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  memcpy(sa.sun_path, ds->path, sizeof sa.sun_path);
  ds->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  ds->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (ds->lfd < 0 || ds->tfd < 0) {
    rc = -errno;
    snprintf(why, wcap, "%s: %s", ds->path, strerror(errno));
    goto fail;
  }
  /* A file of that name is a stale socket of an earlier process that had
   * our pid: this process's names are all different. */
  unlink(ds->path);
  if (bind(ds->lfd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    rc = -errno;
    snprintf(why, wcap, "%s: bind: %s", ds->path, strerror(errno));
    goto fail;
  }
  bound = true;
  if (chmod(ds->path, 0600) < 0 || listen(ds->lfd, 8) < 0) {
    rc = -errno;
    snprintf(why, wcap, "%s: %s", ds->path, strerror(errno));
    goto fail;
  }
  if ((rc = aioc__poll_add(loop, ds->lfd, EPOLLIN, on_listen, ds)) < 0 ||
      (rc = aioc__poll_add(loop, ds->tfd, EPOLLIN, on_timer, ds)) < 0) {
    snprintf(why, wcap, "%s: cannot watch it: %s", ds->path, aioc_strerror(rc));
    goto fail;
  }
  loop->debugsock = ds;
  return 0;
fail:
  ds_free(ds, bound);
  return rc;
}

void aioc__debugsock_start(aioc_loop *loop) {
  char why[512];
  why[0] = 0;
  int rc = open_socket(loop, why, sizeof why);
  if (rc == 0) return;
  loop->debug_socket = false; /* reported once */
  aioc_report r = {
      .message = "Debugging socket not served", .code = rc, .detail = why};
  aioc__report(loop, &r);
}

void aioc__debugsock_stop(aioc_loop *loop) {
  struct aioc__debugsock *ds = loop->debugsock;
  loop->debugsock = NULL;
  loop->debug_socket = false;
  if (ds) ds_free(ds, true);
}
