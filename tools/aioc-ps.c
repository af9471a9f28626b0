/* aioc-ps: the tasks of a running aioc program, from another process.
 *
 *   aioc-ps [--tree | --dump | --metrics | --stacks | --raw]
 *           [--timeout S] [--dir DIR] PID
 *
 * A program opts in with aioc_loop_options.debug_socket or the
 * AIOC_DEBUG_SOCKET environment variable: each of its loops then serves a
 * Unix socket "<pid>.<n>.sock" in $XDG_RUNTIME_DIR/aioc or
 * /tmp/aioc-<uid> (docs/aioc-ps.md). aioc-ps finds the sockets of PID,
 * sends each a request line and prints the answer: by default a table of
 * the tasks (id, name, state, what each waits on, where, for how long,
 * which tasks await it), with --tree the await tree, with --dump the
 * loop's full dump. The program is not stopped: its loop answers between
 * tasks. A loop blocked by a task cannot answer; aioc-ps then says so
 * after its timeout.
 *
 * Exit status: 0 every loop answered; 1 a loop did not answer in time or
 * answered an error; 2 bad usage; 3 no such process; 4 the process
 * serves no debugging socket; 5 permission denied.
 *
 * Plain C and libc only: it needs nothing of the library. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

enum {
  EXIT_OK = 0,
  EXIT_NOANSWER = 1,
  EXIT_USAGE = 2,
  EXIT_NOPROC = 3,
  EXIT_NOSOCKET = 4,
  EXIT_PERM = 5
};

typedef enum mode { M_PS, M_TREE, M_DUMP, M_METRICS, M_STACKS, M_RAW } mode;

static const char *usage_text =
    "Usage: aioc-ps [OPTIONS] PID\n"
    "Shows the tasks of a running aioc program that serves a debugging\n"
    "socket (aioc_loop_options.debug_socket, or AIOC_DEBUG_SOCKET set in its\n"
    "environment), without stopping it.\n"
    "\n"
    "  -t, --tree         the await tree: each task above the task it awaits\n"
    "  -d, --dump         the loop's full dump (aioc_loop_dump)\n"
    "  -m, --metrics      the loop's metrics\n"
    "  -s, --stacks       stack use per spawn site (AIOC_OBSERVE_STACKS)\n"
    "      --raw          the task lines as the loop sends them\n"
    "  -T, --timeout S    seconds to wait for each loop's answer (default 5)\n"
    "  -D, --dir DIR      look for the sockets in DIR only\n"
    "  -h, --help         this text\n"
    "\n"
    "Exit status: 0 every loop answered; 1 a loop did not answer in time or\n"
    "answered an error; 2 bad usage; 3 no such process; 4 the process serves\n"
    "no debugging socket; 5 permission denied.\n";

/* ---- finding the sockets ---- */

typedef struct sock {
  char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
  unsigned n;
} sock;

typedef struct found {
  sock *v;
  size_t len, cap;
  dev_t dev[4];
  ino_t ino[4];
  int ndirs;
  char looked[1024]; /* the directories searched, for the message */
} found;

static void note_dir(found *f, const char *dir) {
  size_t l = strlen(f->looked);
  snprintf(f->looked + l, sizeof f->looked - l, "%s%s", l ? ", " : "", dir);
}

/* Adds the sockets of pid in dir (each directory once). */
static void scan_dir(found *f, const char *dir, long pid) {
  struct stat st;
  if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
    note_dir(f, dir);
    return;
  }
  for (int i = 0; i < f->ndirs; i++)
    if (f->dev[i] == st.st_dev && f->ino[i] == st.st_ino) return;
  if (f->ndirs < 4) {
    f->dev[f->ndirs] = st.st_dev;
    f->ino[f->ndirs++] = st.st_ino;
  }
  note_dir(f, dir);
  DIR *d = opendir(dir);
  if (!d) return;
  char prefix[32];
  int pl = snprintf(prefix, sizeof prefix, "%ld.", pid);
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strncmp(e->d_name, prefix, (size_t)pl) != 0) continue;
    char *end;
    unsigned long n = strtoul(e->d_name + pl, &end, 10);
    if (end == e->d_name + pl || strcmp(end, ".sock") != 0) continue;
    if (f->len == f->cap) {
      size_t cap = f->cap ? f->cap * 2 : 8;
      sock *v = realloc(f->v, cap * sizeof *v);
      if (!v) break;
      f->v = v;
      f->cap = cap;
    }
    sock *s = &f->v[f->len];
    if (snprintf(s->path, sizeof s->path, "%s/%s", dir, e->d_name) >=
        (int)sizeof s->path)
      continue;
    s->n = (unsigned)n;
    f->len++;
  }
  closedir(d);
}

static int by_n(const void *a, const void *b) {
  const sock *x = a, *y = b;
  return (x->n > y->n) - (x->n < y->n);
}

/* The places a program of uid may have put its sockets. */
static void find_sockets(found *f, long pid, const char *only) {
  char dir[4096];
  if (only) {
    scan_dir(f, only, pid);
  } else {
    /* The owner of the process: its sockets are in that user's places
     * (root looking at another user's program, with sudo). */
    uid_t uid = geteuid();
    struct stat st;
    snprintf(dir, sizeof dir, "/proc/%ld", pid);
    if (stat(dir, &st) == 0) uid = st.st_uid;
    const char *x = getenv("XDG_RUNTIME_DIR");
    if (x && x[0] == '/' && uid == geteuid()) {
      snprintf(dir, sizeof dir, "%s/aioc", x);
      scan_dir(f, dir, pid);
    }
    snprintf(dir, sizeof dir, "/run/user/%u/aioc", (unsigned)uid);
    scan_dir(f, dir, pid);
    snprintf(dir, sizeof dir, "/tmp/aioc-%u", (unsigned)uid);
    scan_dir(f, dir, pid);
  }
  if (f->len) qsort(f->v, f->len, sizeof *f->v, by_n);
}

/* ---- asking a loop ---- */

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Waits for events on fd until deadline: 1 ready, 0 timed out. */
static int wait_fd(int fd, short events, double deadline) {
  for (;;) {
    double left = deadline - now_s();
    if (left <= 0) return 0;
    struct pollfd p = {.fd = fd, .events = events};
    int ms = left > 1000 ? 1000000 : (int)(left * 1000) + 1;
    int r = poll(&p, 1, ms);
    if (r > 0) return 1;
    if (r < 0 && errno != EINTR) return 1; /* the next call says why */
  }
}

typedef enum ask_rc {
  ASK_OK,
  ASK_TIMEOUT,
  ASK_REFUSED, /* nobody listens: a stale socket */
  ASK_PERM,
  ASK_OTHER, /* served by another process */
  ASK_ERROR
} ask_rc;

/* Sends request to the socket at path and reads the whole answer into
 * *out (NUL-terminated, malloc'd). */
static ask_rc ask(const char *path, long pid, const char *request,
                  double timeout, char **out, char *why, size_t wcap) {
  *out = NULL;
  double deadline = now_s() + timeout;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    snprintf(why, wcap, "socket: %s", strerror(errno));
    return ASK_ERROR;
  }
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
  /* A full backlog (the loop blocked, many clients): try again until
   * the deadline. */
  while (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    int e = errno;
    if (e == EINTR) continue;
    if (e == EAGAIN) {
      if (now_s() >= deadline) {
        close(fd);
        return ASK_TIMEOUT;
      }
      struct timespec ts = {0, 20000000};
      nanosleep(&ts, NULL);
      continue;
    }
    close(fd);
    snprintf(why, wcap, "%s", strerror(e));
    if (e == ECONNREFUSED || e == ENOENT) return ASK_REFUSED;
    if (e == EACCES || e == EPERM) return ASK_PERM;
    return ASK_ERROR;
  }
  struct ucred cr;
  socklen_t cl = sizeof cr;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) == 0 &&
      cl == sizeof cr && cr.pid != (pid_t)pid) {
    snprintf(why, wcap, "served by process %ld, not %ld", (long)cr.pid, pid);
    close(fd);
    return ASK_OTHER;
  }
  char line[80];
  int ll = snprintf(line, sizeof line, "%s\n", request);
  size_t sent = 0;
  while (sent < (size_t)ll) {
    ssize_t w = send(fd, line + sent, (size_t)ll - sent, MSG_NOSIGNAL);
    if (w > 0) {
      sent += (size_t)w;
    } else if (w < 0 && errno == EINTR) {
      continue;
    } else if (w < 0 && errno == EAGAIN) {
      if (!wait_fd(fd, POLLOUT, deadline)) {
        close(fd);
        return ASK_TIMEOUT;
      }
    } else {
      snprintf(why, wcap, "send: %s", strerror(errno));
      close(fd);
      return ASK_ERROR;
    }
  }
  size_t len = 0, cap = 65536;
  char *buf = malloc(cap);
  if (!buf) {
    close(fd);
    snprintf(why, wcap, "out of memory");
    return ASK_ERROR;
  }
  for (;;) {
    if (len + 1 == cap) {
      char *b = realloc(buf, cap * 2);
      if (!b) {
        free(buf);
        close(fd);
        snprintf(why, wcap, "out of memory");
        return ASK_ERROR;
      }
      buf = b;
      cap *= 2;
    }
    ssize_t r = recv(fd, buf + len, cap - 1 - len, 0);
    if (r > 0) {
      len += (size_t)r;
    } else if (r == 0) {
      break;
    } else if (errno == EINTR) {
      continue;
    } else if (errno == EAGAIN) {
      if (!wait_fd(fd, POLLIN, deadline)) {
        free(buf);
        close(fd);
        return ASK_TIMEOUT;
      }
    } else {
      snprintf(why, wcap, "recv: %s", strerror(errno));
      free(buf);
      close(fd);
      return ASK_ERROR;
    }
  }
  close(fd);
  buf[len] = 0;
  *out = buf;
  return ASK_OK;
}

/* ---- the task table and the tree ---- */

typedef struct task {
  unsigned id, awaits, spawner;
  char *name, *state, *kind, *call, *file, *line, *waited, *deadline;
  char *spawn_file, *spawn_line;
} task;

/* Undoes the loop's escapes of a field, in place; "-" stays "-". */
static char *unescape(char *s) {
  char *w = s;
  for (char *r = s; *r; r++) {
    if (*r == '\\' && r[1]) {
      r++;
      *w++ = *r == 't' ? '\t' : *r == 'n' ? '\n' : *r;
    } else {
      *w++ = *r;
    }
  }
  *w = 0;
  return s;
}

static unsigned id_of(const char *s) {
  return strcmp(s, "-") == 0 ? 0 : (unsigned)strtoul(s, NULL, 10);
}

/* Splits the answer to "tasks" into v (pointers into text). Returns the
 * number of tasks, or -1 if the answer is not one. */
static int parse_tasks(char *text, task **out, double *time) {
  *out = NULL;
  int n;
  if (sscanf(text, "tasks %d time %lf", &n, time) != 2 || n < 0) return -1;
  task *v = calloc((size_t)n + 1, sizeof *v);
  if (!v) return -1;
  char *line = strchr(text, '\n');
  int k = 0;
  while (line && k < n) {
    line++;
    char *end = strchr(line, '\n');
    if (end) *end = 0;
    char *f[13];
    int nf = 0;
    for (char *p = line; nf < 13;) {
      f[nf++] = p;
      char *t = strchr(p, '\t');
      if (!t) break;
      *t = 0;
      p = t + 1;
    }
    if (nf == 13) {
      task *t = &v[k++];
      t->id = id_of(f[0]);
      t->name = unescape(f[1]);
      t->state = f[2];
      t->kind = f[3];
      t->call = f[4];
      t->file = unescape(f[5]);
      t->line = f[6];
      t->waited = f[7];
      t->deadline = f[8];
      t->awaits = id_of(f[9]);
      t->spawner = id_of(f[10]);
      t->spawn_file = unescape(f[11]);
      t->spawn_line = f[12];
    }
    line = end;
  }
  *out = v;
  return k;
}

static const char *base(const char *path) {
  const char *s = strrchr(path, '/');
  return s ? s + 1 : path;
}

/* The tasks with what links them, found in O(log n): an index sorted by
 * id, and for each task the list of the tasks awaiting it. */
typedef struct graph {
  const task *v;
  int n;
  int *by_id; /* indices of v, sorted by id */
  int *first; /* first awaiter of each task, -1: none */
  int *next;  /* the next awaiter of the same task, -1: none */
} graph;

static const task *sort_base;
static int cmp_id(const void *a, const void *b) {
  unsigned x = sort_base[*(const int *)a].id, y = sort_base[*(const int *)b].id;
  return (x > y) - (x < y);
}

static int index_of(const graph *g, unsigned id) {
  int lo = 0, hi = g->n - 1;
  while (lo <= hi) {
    int mid = (lo + hi) / 2;
    unsigned m = g->v[g->by_id[mid]].id;
    if (m == id) return g->by_id[mid];
    if (m < id)
      lo = mid + 1;
    else
      hi = mid - 1;
  }
  return -1;
}

static bool graph_make(graph *g, const task *v, int n) {
  g->v = v;
  g->n = n;
  g->by_id = malloc(((size_t)n + 1) * sizeof(int));
  g->first = malloc(((size_t)n + 1) * sizeof(int));
  g->next = malloc(((size_t)n + 1) * sizeof(int));
  if (!g->by_id || !g->first || !g->next) return false;
  for (int i = 0; i < n; i++) {
    g->by_id[i] = i;
    g->first[i] = g->next[i] = -1;
  }
  sort_base = v;
  qsort(g->by_id, (size_t)n, sizeof(int), cmp_id);
  /* Backwards, so that each list keeps the order of v. */
  for (int i = n - 1; i >= 0; i--) {
    int a = v[i].awaits ? index_of(g, v[i].awaits) : -1;
    if (a < 0) continue;
    g->next[i] = g->first[a];
    g->first[a] = i;
  }
  return true;
}

static void graph_free(graph *g) {
  free(g->by_id);
  free(g->first);
  free(g->next);
}

static void fmt_secs(char *b, size_t cap, const char *s) {
  if (strcmp(s, "-") == 0) {
    snprintf(b, cap, "-");
    return;
  }
  double x = strtod(s, NULL);
  if (x < 0.001)
    snprintf(b, cap, "%.0f us", x * 1e6);
  else if (x < 1)
    snprintf(b, cap, "%.1f ms", x * 1e3);
  else
    snprintf(b, cap, "%.3f s", x);
}

/* The table's cells of one task (each a string of its own). */
typedef struct row {
  char id[16], waits[160], where[320], dur[32], awaited[320];
} row;

static void fill_row(const graph *g, int k, row *r) {
  const task *t = &g->v[k];
  snprintf(r->id, sizeof r->id, "%u", t->id);
  if (strcmp(t->kind, "-") == 0) {
    snprintf(r->waits, sizeof r->waits, "-");
  } else if (t->awaits) {
    int a = index_of(g, t->awaits);
    snprintf(r->waits, sizeof r->waits, "task %u (%s)", t->awaits,
             a >= 0 ? g->v[a].name : "?");
  } else {
    snprintf(r->waits, sizeof r->waits, "%s", t->kind);
  }
  if (strcmp(t->file, "-") == 0)
    snprintf(r->where, sizeof r->where, "-");
  else
    snprintf(r->where, sizeof r->where, "%s %s:%s", t->call, base(t->file),
             t->line);
  fmt_secs(r->dur, sizeof r->dur, t->waited);
  size_t l = 0;
  r->awaited[0] = 0;
  for (int i = g->first[k]; i >= 0; i = g->next[i]) {
    l += (size_t)snprintf(r->awaited + l, sizeof r->awaited - l, "%s%u (%s)",
                          l ? ", " : "", g->v[i].id, g->v[i].name);
    if (l >= sizeof r->awaited) break;
  }
  if (!l) snprintf(r->awaited, sizeof r->awaited, "-");
}

static int width(int w, const char *s) {
  int l = (int)strlen(s);
  return l > w ? l : w;
}

static void print_table(const graph *g) {
  int n = g->n;
  const task *v = g->v;
  row *rows = calloc((size_t)n + 1, sizeof *rows);
  if (!rows) return;
  int w[6] = {2, 4, 5, 8, 5, 3};
  for (int i = 0; i < n; i++) {
    fill_row(g, i, &rows[i]);
    w[0] = width(w[0], rows[i].id);
    w[1] = width(w[1], v[i].name);
    w[2] = width(w[2], v[i].state);
    w[3] = width(w[3], rows[i].waits);
    w[4] = width(w[4], rows[i].where);
    w[5] = width(w[5], rows[i].dur);
  }
  printf("%-*s  %-*s  %-*s  %-*s  %-*s  %-*s  %s\n", w[0], "ID", w[1], "NAME",
         w[2], "STATE", w[3], "WAITS ON", w[4], "WHERE", w[5], "FOR",
         "AWAITED BY");
  for (int i = 0; i < n; i++)
    printf("%-*s  %-*s  %-*s  %-*s  %-*s  %-*s  %s\n", w[0], rows[i].id, w[1],
           v[i].name, w[2], v[i].state, w[3], rows[i].waits, w[4],
           rows[i].where, w[5], rows[i].dur, rows[i].awaited);
  free(rows);
}

static void print_node(const task *t, int depth) {
  printf("%*s%s%s (id %u)", depth * 4, "", depth ? "└── " : "", t->name, t->id);
  if (strcmp(t->kind, "-") != 0) {
    printf(" %s", t->kind);
    if (strcmp(t->file, "-") != 0)
      printf(" in %s %s:%s", t->call, base(t->file), t->line);
  } else {
    printf(" %s", t->state);
  }
  printf("\n");
}

/* From each task that no task awaits, down the chain of what it awaits:
 * the awaiter above the awaited (a task awaited by several shows under
 * each). Tasks that await each other in a cycle have no such root: they
 * follow, each on its own line. */
static void print_tree(const graph *g) {
  bool *seen = calloc((size_t)g->n + 1, 1);
  if (!seen) return;
  for (int k = 0; k < g->n; k++) {
    if (g->first[k] >= 0) continue; /* awaited: shown under its awaiter */
    int i = k;
    for (int depth = 0; i >= 0 && depth < 64; depth++) {
      print_node(&g->v[i], depth);
      seen[i] = true;
      i = g->v[i].awaits ? index_of(g, g->v[i].awaits) : -1;
    }
  }
  for (int k = 0; k < g->n; k++)
    if (!seen[k]) print_node(&g->v[k], 0);
  free(seen);
}

/* ---- main ---- */

int main(int argc, char **argv) {
  static const struct option longopts[] = {
      {"tree", no_argument, NULL, 't'},
      {"dump", no_argument, NULL, 'd'},
      {"metrics", no_argument, NULL, 'm'},
      {"stacks", no_argument, NULL, 's'},
      {"raw", no_argument, NULL, 'r'},
      {"timeout", required_argument, NULL, 'T'},
      {"dir", required_argument, NULL, 'D'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  mode m = M_PS;
  double timeout = 5;
  const char *dir = NULL;
  int c;
  while ((c = getopt_long(argc, argv, "tdmsT:D:h", longopts, NULL)) != -1) {
    switch (c) {
    case 't':
      m = M_TREE;
      break;
    case 'd':
      m = M_DUMP;
      break;
    case 'm':
      m = M_METRICS;
      break;
    case 's':
      m = M_STACKS;
      break;
    case 'r':
      m = M_RAW;
      break;
    case 'T': {
      char *end;
      timeout = strtod(optarg, &end);
      if (*end || !(timeout > 0) || timeout > 86400) {
        fprintf(stderr, "aioc-ps: bad timeout \"%s\" (seconds, > 0)\n", optarg);
        return EXIT_USAGE;
      }
      break;
    }
    case 'D':
      dir = optarg;
      break;
    case 'h':
      fputs(usage_text, stdout);
      return EXIT_OK;
    default:
      fputs(usage_text, stderr);
      return EXIT_USAGE;
    }
  }
  if (optind != argc - 1) {
    fputs(usage_text, stderr);
    return EXIT_USAGE;
  }
  char *end;
  errno = 0;
  long pid = strtol(argv[optind], &end, 10);
  if (*end || end == argv[optind] || errno || pid <= 0 || pid > INT_MAX) {
    fprintf(stderr, "aioc-ps: bad pid \"%s\"\n", argv[optind]);
    return EXIT_USAGE;
  }
  bool other_user = false;
  if (kill((pid_t)pid, 0) < 0) {
    if (errno == ESRCH) {
      fprintf(stderr, "aioc-ps: no such process: %ld\n", pid);
      return EXIT_NOPROC;
    }
    other_user = errno == EPERM;
  }
  found f = {0};
  find_sockets(&f, pid, dir);
  if (f.len == 0) {
    if (other_user) {
      fprintf(stderr,
              "aioc-ps: process %ld belongs to another user: permission "
              "denied (run aioc-ps as that user)\n",
              pid);
      free(f.v);
      return EXIT_PERM;
    }
    fprintf(stderr,
            "aioc-ps: process %ld serves no debugging socket (looked in %s): "
            "it did not opt in (set AIOC_DEBUG_SOCKET=1 in its environment, "
            "or aioc_loop_options.debug_socket), or no loop of it runs\n",
            pid, f.looked);
    free(f.v);
    return EXIT_NOSOCKET;
  }
  static const char *const requests[] = {"tasks",   "tasks",  "dump",
                                         "metrics", "stacks", "tasks"};
  int status = EXIT_OK;
  size_t answered = 0, stale = 0, denied = 0;
  for (size_t i = 0; i < f.len; i++) {
    const sock *s = &f.v[i];
    char *text = NULL, why[256] = "";
    ask_rc rc = ask(s->path, pid, requests[m], timeout, &text, why, sizeof why);
    switch (rc) {
    case ASK_TIMEOUT:
      fprintf(stderr,
              "aioc-ps: process %ld, loop %u: no answer in %g s: the loop "
              "may be blocked (a task that does not reach a suspension "
              "point), or not running\n",
              pid, s->n, timeout);
      status = EXIT_NOANSWER;
      continue;
    case ASK_REFUSED:
      stale++;
      continue;
    case ASK_PERM:
      denied++;
      fprintf(stderr, "aioc-ps: %s: permission denied\n", s->path);
      continue;
    case ASK_OTHER:
      fprintf(stderr, "aioc-ps: %s: %s: skipped\n", s->path, why);
      continue;
    case ASK_ERROR:
      fprintf(stderr, "aioc-ps: %s: %s\n", s->path, why);
      status = EXIT_NOANSWER;
      continue;
    case ASK_OK:
      break;
    }
    answered++;
    if (strncmp(text, "error: ", 7) == 0) {
      fprintf(stderr, "aioc-ps: process %ld, loop %u: %s", pid, s->n, text);
      if (strncmp(text, "error: permission denied", 24) == 0)
        denied++;
      else
        status = EXIT_NOANSWER;
      answered--;
      free(text);
      continue;
    }
    if (m == M_PS || m == M_TREE) {
      task *v;
      double t;
      char *copy = strdup(text);
      int n = copy ? parse_tasks(copy, &v, &t) : -1;
      if (n < 0) {
        fprintf(stderr, "aioc-ps: process %ld, loop %u: unreadable answer\n",
                pid, s->n);
        status = EXIT_NOANSWER;
      } else {
        printf("process %ld, loop %u: %d task%s, loop time %.3f\n", pid, s->n,
               n, n == 1 ? "" : "s", t);
        graph g = {0};
        if (!graph_make(&g, v, n))
          fprintf(stderr, "aioc-ps: out of memory\n");
        else if (m == M_PS)
          print_table(&g);
        else
          print_tree(&g);
        graph_free(&g);
        free(v);
      }
      free(copy);
    } else {
      if (f.len > 1) printf("process %ld, loop %u:\n", pid, s->n);
      fputs(text, stdout);
    }
    if (i + 1 < f.len) printf("\n");
    free(text);
  }
  if (status == EXIT_OK && answered == 0) {
    if (denied) {
      fprintf(stderr, "aioc-ps: process %ld: permission denied\n", pid);
      status = EXIT_PERM;
    } else {
      fprintf(stderr,
              "aioc-ps: process %ld serves no debugging socket (%zu stale "
              "socket%s left by a process that had its pid)\n",
              pid, stale, stale == 1 ? "" : "s");
      status = EXIT_NOSOCKET;
    }
  }
  free(f.v);
  fflush(stdout);
  return status;
}
