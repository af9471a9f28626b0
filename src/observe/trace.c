/* The flight recorder (aioc/trace.h): a ring of fixed-size records,
 * allocated with the loop, written by the hooks of the task layer's slow
 * path (which every task of a recording loop takes), of the timer heap
 * and of the poller; read as structured data or written as Chrome
 * trace-event JSON. Loop thread only: nothing here is locked. */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../task/task.h"

/* The events' clock: the CPU's counter where it can be read from user
 * space (x86-64's TSC, aarch64's virtual counter), a few nanoseconds
 * where a read of the monotonic clock takes 20 to 60; turned into the
 * monotonic clock's nanoseconds when the events are read, by the line
 * through two points where both clocks were read: the recorder's start
 * and the reading. Elsewhere the monotonic clock itself. */
static inline int64_t ticks(void) {
#if defined(__x86_64__)
  return (int64_t)__builtin_ia32_rdtsc();
#elif defined(__aarch64__)
  uint64_t v;
  __asm__ __volatile__("mrs %0, cntvct_el0" : "=r"(v));
  return (int64_t)v;
#else
  return aioc__clock_ns();
#endif
}

/* One event: 40 bytes. */
typedef struct tev {
  int64_t ns; /* in ticks() */
  uint32_t task, other;
  int32_t code, fd;
  uint32_t events;
  uint8_t kind, cause, wkind;
  const void *ptr; /* the site (SPAWN, SUSPEND) or the timer */
} tev;
#if UINTPTR_MAX == UINT64_MAX
_Static_assert(sizeof(tev) == 40, "an event is 40 bytes");
#endif

/* A task's name, noted at spawn for a task given one (the others are
 * "Task-<id>"): the task may be gone when the trace is written. */
typedef struct tname {
  uint32_t tid;
  char name[28];
} tname;

struct aioc__trace {
  tev *ring;
  uint64_t mask;    /* capacity - 1 (a power of two) */
  uint64_t head;    /* events written since the start */
  uint64_t start;   /* head at the last clear */
  tname *names;
  uint64_t nmask, nhead;
  /* Both clocks read at the start (see ticks()), and the scale last
   * measured from there, over sc_span ns. */
  int64_t tick0, ns0;
  double sc;
  int64_t sc_span;
  /* What runs now on the loop's side, for the cause of a wake-up. */
  uint8_t ctx;      /* AIOC_TRACE_CAUSE_TIMER, _FD or _NONE */
  int ctx_fd;
  uint32_t ctx_events;
  const void *ctx_timer;
};

#define DEFAULT_EVENTS 4096
#define MAX_EVENTS ((uint64_t)1 << 24)

static uint64_t pow2_at_least(uint64_t n) {
  uint64_t c = 1;
  while (c < n) c <<= 1;
  return c;
}

int aioc__trace_new(aioc_loop *loop) {
  uint64_t n = loop->trace_events ? loop->trace_events : DEFAULT_EVENTS;
  if (n > MAX_EVENTS) n = MAX_EVENTS;
  n = pow2_at_least(n);
  uint64_t nn = pow2_at_least(n / 8 < 64 ? 64 : n / 8);
  struct aioc__trace *tr = aioc__calloc(1, sizeof *tr);
  if (!tr) return -ENOMEM;
  tr->ring = aioc__calloc((size_t)n, sizeof *tr->ring);
  tr->names = aioc__calloc((size_t)nn, sizeof *tr->names);
  if (!tr->ring || !tr->names) {
    aioc__free(tr->ring);
    aioc__free(tr->names);
    aioc__free(tr);
    return -ENOMEM;
  }
  tr->mask = n - 1;
  tr->nmask = nn - 1;
  tr->ns0 = aioc__clock_ns();
  tr->tick0 = ticks();
  loop->trace = tr;
  loop->trace_events = (unsigned)n;
  return 0;
}

void aioc__trace_free(aioc_loop *loop) {
  struct aioc__trace *tr = loop->trace;
  if (!tr) return;
  aioc__free(tr->ring);
  aioc__free(tr->names);
  aioc__free(tr);
  loop->trace = NULL;
}

static tev *put(struct aioc__trace *tr, uint8_t kind, uint32_t task) {
  tev *e = &tr->ring[tr->head++ & tr->mask];
  *e = (tev){.ns = ticks(), .task = task, .fd = -1, .kind = kind};
  return e;
}

/* Nanoseconds of the monotonic clock per tick, measured from the start
 * to now (at least a millisecond apart: a younger recorder waits for
 * it). Measured again only once the recorder is twice as old as at the
 * last measure, so that readings close together agree. */
static double tick_scale(const struct aioc__trace *tr_) {
#if defined(__x86_64__) || defined(__aarch64__)
  struct aioc__trace *tr = (struct aioc__trace *)tr_;
  int64_t ns1 = aioc__clock_ns(), t1 = ticks();
  if (tr->sc_span && ns1 - tr->ns0 < 2 * tr->sc_span) return tr->sc;
  while (ns1 - tr->ns0 < 1000000 || t1 == tr->tick0) {
    ns1 = aioc__clock_ns();
    t1 = ticks();
  }
  tr->sc = (double)(ns1 - tr->ns0) / (double)(t1 - tr->tick0);
  tr->sc_span = ns1 - tr->ns0;
  return tr->sc;
#else
  (void)tr_;
  return 1.0;
#endif
}

/* An event's time in the monotonic clock's ns. */
static int64_t ev_ns(const struct aioc__trace *tr, int64_t t, double sc) {
  return tr->ns0 + (int64_t)((double)(t - tr->tick0) * sc);
}

static uint32_t current_tid(aioc_loop *loop) {
  aioc_task *cur = aioc__running == loop ? loop->current : NULL;
  return cur ? cur->f.tid : 0;
}

/* ---- the hooks ---- */

void aioc__trace_spawn(aioc_task *t, uint32_t spawner, const aioc_site *site) {
  struct aioc__trace *tr = t->f.loop->trace;
  tev *e = put(tr, AIOC_TRACE_SPAWN, t->f.tid);
  e->other = spawner;
  e->ptr = site;
  if (t->f.ext && t->f.ext->name) {
    tname *n = &tr->names[tr->nhead++ & tr->nmask];
    n->tid = t->f.tid;
    snprintf(n->name, sizeof n->name, "%s", t->f.ext->name);
  }
}

void aioc__trace_run(aioc_task *t) {
  put(t->f.loop->trace, AIOC_TRACE_RUN, t->f.tid);
}

/* t stops running: parked (its site noted), requeued (a yield), or
 * handing over to a generator's other side (still marked running). */
void aioc__trace_out(aioc_task *t) {
  struct aioc__trace *tr = t->f.loop->trace;
  if (t->f.tstate == T_READY) {
    put(tr, AIOC_TRACE_YIELD, t->f.tid);
    return;
  }
  tev *e = put(tr, AIOC_TRACE_SUSPEND, t->f.tid);
  if (t->f.tstate == T_SUSPENDED) {
    const aioc_site *s = t->r->site;
    e->ptr = s;
    if (aioc__task_awaiting(t))
      e->wkind = AIOC_WAIT_KIND_FUTURE;
    else
      e->wkind = s ? (uint8_t)s->kind : AIOC_WAIT_KIND_OTHER;
  } else {
    e->wkind = AIOC_WAIT_KIND_ITERATOR; /* a generator's hand-off */
  }
}

void aioc__trace_wake(aioc_task *t) {
  aioc_loop *loop = t->f.loop;
  struct aioc__trace *tr = loop->trace;
  tev *e = put(tr, AIOC_TRACE_WAKE, t->f.tid);
  e->code = t->r->wake_rc;
  uint32_t cur = current_tid(loop);
  if (tr->ctx == AIOC_TRACE_CAUSE_TIMER) {
    e->cause = AIOC_TRACE_CAUSE_TIMER;
    e->ptr = tr->ctx_timer;
  } else if (tr->ctx == AIOC_TRACE_CAUSE_FD) {
    e->cause = AIOC_TRACE_CAUSE_FD;
    e->fd = tr->ctx_fd;
    e->events = tr->ctx_events;
  } else if (t->r->wake_rc == -ECANCELED) {
    e->cause = AIOC_TRACE_CAUSE_CANCEL;
    e->other = cur;
  } else if (cur) {
    e->cause = AIOC_TRACE_CAUSE_TASK;
    e->other = cur;
  } else {
    e->cause = AIOC_TRACE_CAUSE_CALLBACK;
  }
}

void aioc__trace_end(aioc_task *t, int rc) {
  bool err = rc < 0 && rc != -ECANCELED;
  tev *e = put(t->f.loop->trace, err ? AIOC_TRACE_ERROR : AIOC_TRACE_END,
               t->f.tid);
  e->code = rc;
}

void aioc__trace_cancel(aioc_task *t) {
  tev *e = put(t->f.loop->trace, AIOC_TRACE_CANCEL, t->f.tid);
  e->other = current_tid(t->f.loop);
}

void aioc__trace_timer(aioc_loop *loop, const void *timer, int64_t lag) {
  struct aioc__trace *tr = loop->trace;
  tev *e = put(tr, AIOC_TRACE_TIMER, 0);
  e->ptr = timer;
  e->code = lag / 1000 > INT32_MAX ? INT32_MAX : (int32_t)(lag / 1000);
  tr->ctx = AIOC_TRACE_CAUSE_TIMER;
  tr->ctx_timer = timer;
}

void aioc__trace_fd(aioc_loop *loop, int fd, uint32_t events) {
  struct aioc__trace *tr = loop->trace;
  tev *e = put(tr, AIOC_TRACE_FD, 0);
  e->fd = fd;
  e->events = events;
  tr->ctx = AIOC_TRACE_CAUSE_FD;
  tr->ctx_fd = fd;
  tr->ctx_events = events;
}

void aioc__trace_ctx_clear(aioc_loop *loop) {
  loop->trace->ctx = AIOC_TRACE_CAUSE_NONE;
}

/* ---- reading ---- */

static uint64_t held(const struct aioc__trace *tr) {
  uint64_t n = tr->head - tr->start;
  return n > tr->mask + 1 ? tr->mask + 1 : n;
}

static const tev *nth(const struct aioc__trace *tr, uint64_t i) {
  return &tr->ring[(tr->head - held(tr) + i) & tr->mask];
}

int aioc_loop_trace_get(aioc_loop *loop, aioc_trace_event *out, size_t cap,
                        uint64_t *lost) {
  if (lost) *lost = 0;
  if (loop && !AIOC__LOOP_OK(loop, "aioc_loop_trace_get")) return -EINVAL;
  loop = aioc__loop_pick(loop);
  if (!loop || (!out && cap)) return -EINVAL;
  const struct aioc__trace *tr = loop->trace;
  if (!tr) return -ENODATA;
  uint64_t n = held(tr);
  if (lost) *lost = tr->head - tr->start - n;
  double sc = n && cap ? tick_scale(tr) : 1.0;
  for (uint64_t i = 0; i < n && i < cap; i++) {
    const tev *e = nth(tr, i);
    bool site = e->kind == AIOC_TRACE_SPAWN || e->kind == AIOC_TRACE_SUSPEND;
    out[i] = (aioc_trace_event){
        .time = (double)ev_ns(tr, e->ns, sc) / 1e9,
        .kind = (aioc_trace_kind)e->kind,
        .task = e->task,
        .cause = (aioc_trace_cause)e->cause,
        .other = e->other,
        .code = e->code,
        .fd = e->fd,
        .events = e->events,
        .wait_kind = (aioc_wait_kind)e->wkind,
        .site = site ? e->ptr : NULL,
        .timer = site ? NULL : e->ptr};
  }
  return n > INT32_MAX ? INT32_MAX : (int)n;
}

int aioc_loop_trace_clear(aioc_loop *loop) {
  if (loop && !AIOC__LOOP_OK(loop, "aioc_loop_trace_clear")) return -EINVAL;
  loop = aioc__loop_pick(loop);
  if (!loop) return -EINVAL;
  if (!loop->trace) return -ENODATA;
  loop->trace->start = loop->trace->head;
  return 0;
}

const char *aioc_trace_kind_name(aioc_trace_kind kind) {
  static const char *const names[] = {"spawn", "run",   "suspend", "yield",
                                      "wake",  "end",   "error",   "cancel",
                                      "timer", "fd"};
  if ((unsigned)kind >= sizeof names / sizeof names[0]) return "?";
  return names[kind];
}

const char *aioc_trace_cause_name(aioc_trace_cause cause) {
  static const char *const names[] = {"none",   "task",  "timer",
                                      "fd",     "cancel", "callback"};
  if ((unsigned)cause >= sizeof names / sizeof names[0]) return "?";
  return names[cause];
}

/* ---- Chrome trace-event JSON ---- */

/* One line of the output: an event of the ring as an instant, or a run
 * (from a RUN to what ended it) as a complete event. */
typedef struct outrec {
  uint32_t lane;
  int64_t ns;
  uint64_t seq;
  int64_t end; /* X: its end; instants: -1 */
  const tev *e;
} outrec;

static int outrec_cmp(const void *a, const void *b) {
  const outrec *x = a, *y = b;
  if (x->lane != y->lane) return x->lane < y->lane ? -1 : 1;
  if (x->ns != y->ns) return x->ns < y->ns ? -1 : 1;
  return (x->seq > y->seq) - (x->seq < y->seq);
}

static void put_str(FILE *f, const char *s) {
  fputc('"', f);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\')
      fprintf(f, "\\%c", *p);
    else if (*p < 0x20)
      fprintf(f, "\\u%04x", *p);
    else
      fputc(*p, f);
  }
  fputc('"', f);
}

static const char *base_name(const char *path) {
  const char *s = strrchr(path, '/');
  return s ? s + 1 : path;
}

/* The name of task tid: the one noted at spawn (newest first), else
 * "Task-<id>". */
static void lane_name(const struct aioc__trace *tr, uint32_t tid, char *buf,
                      size_t cap) {
  uint64_t n = tr->nhead > tr->nmask + 1 ? tr->nmask + 1 : tr->nhead;
  for (uint64_t i = 0; i < n; i++) {
    const tname *x = &tr->names[(tr->nhead - 1 - i) & tr->nmask];
    if (x->tid == tid) {
      snprintf(buf, cap, "%s", x->name);
      return;
    }
  }
  if (tid == 0)
    snprintf(buf, cap, "loop");
  else
    snprintf(buf, cap, "Task-%lu", (unsigned long)tid);
}

static void put_site(FILE *f, const char *key, const aioc_site *s) {
  if (!s) return;
  fprintf(f, ",\"%s\":", key);
  char buf[512];
  snprintf(buf, sizeof buf, "%s:%d", base_name(s->file), s->line);
  put_str(f, buf);
  if (s->call) {
    fprintf(f, ",\"call\":");
    put_str(f, s->call);
  }
}

static void put_args(FILE *f, const tev *e) {
  fprintf(f, ",\"args\":{\"id\":%lu", (unsigned long)e->task);
  switch (e->kind) {
  case AIOC_TRACE_SPAWN:
    fprintf(f, ",\"spawner\":%lu", (unsigned long)e->other);
    put_site(f, "site", e->ptr);
    break;
  case AIOC_TRACE_SUSPEND:
    fprintf(f, ",\"on\":\"%s\"", aioc_wait_kind_name((aioc_wait_kind)e->wkind));
    put_site(f, "site", e->ptr);
    break;
  case AIOC_TRACE_WAKE:
    fprintf(f, ",\"cause\":\"%s\",\"code\":%d",
            aioc_trace_cause_name((aioc_trace_cause)e->cause), e->code);
    if (e->cause == AIOC_TRACE_CAUSE_TASK || e->other)
      fprintf(f, ",\"by\":%lu", (unsigned long)e->other);
    if (e->cause == AIOC_TRACE_CAUSE_TIMER)
      fprintf(f, ",\"timer\":\"%p\"", e->ptr);
    if (e->cause == AIOC_TRACE_CAUSE_FD)
      fprintf(f, ",\"fd\":%d,\"events\":%lu", e->fd,
              (unsigned long)e->events);
    break;
  case AIOC_TRACE_END:
  case AIOC_TRACE_ERROR:
    fprintf(f, ",\"code\":%d,\"error\":\"%s\"", e->code,
            e->code < 0 ? aioc_err_name(e->code) : "");
    break;
  case AIOC_TRACE_CANCEL:
    fprintf(f, ",\"by\":%lu", (unsigned long)e->other);
    break;
  case AIOC_TRACE_TIMER:
    fprintf(f, ",\"timer\":\"%p\",\"late_us\":%d", e->ptr, e->code);
    break;
  case AIOC_TRACE_FD:
    fprintf(f, ",\"fd\":%d,\"events\":%lu", e->fd, (unsigned long)e->events);
    break;
  default:
    break;
  }
  fputc('}', f);
}

static int trace_write(aioc_loop *loop, FILE *f) {
  const struct aioc__trace *tr = loop->trace;
  uint64_t n = held(tr);
  /* One record per event: a RUN is written as its run's slice. */
  outrec *v = aioc__calloc((size_t)(n + 1), sizeof *v);
  /* The lanes (task ids) seen, for their metadata. */
  uint32_t *lanes = aioc__calloc((size_t)(n + 1), sizeof *lanes);
  /* Per event index: the RUN still open on that event's task, found by a
   * small open-addressed table keyed by task id. */
  uint64_t tcap = pow2_at_least(2 * n + 2);
  struct lane_run {
    uint32_t tid;
    bool used;
    int64_t run; /* index of the open RUN, -1: none */
  } *runs = aioc__calloc((size_t)tcap, sizeof *runs);
  if (!v || !lanes || !runs) {
    aioc__free(v);
    aioc__free(lanes);
    aioc__free(runs);
    return -ENOMEM;
  }
  size_t nv = 0, nlanes = 0;
  int64_t now = ticks();
  double sc = tick_scale(tr);
  int64_t base = n ? nth(tr, 0)->ns : now;
  for (uint64_t i = 0; i < n; i++) {
    const tev *e = nth(tr, i);
    uint32_t lane = e->task;
    uint64_t h = (lane * 2654435761u) & (tcap - 1);
    while (runs[h].used && runs[h].tid != lane) h = (h + 1) & (tcap - 1);
    if (!runs[h].used) {
      runs[h] = (struct lane_run){.tid = lane, .used = true, .run = -1};
      lanes[nlanes++] = lane;
    }
    bool ends = e->kind == AIOC_TRACE_SUSPEND || e->kind == AIOC_TRACE_YIELD ||
                e->kind == AIOC_TRACE_END || e->kind == AIOC_TRACE_ERROR ||
                e->kind == AIOC_TRACE_RUN;
    if (lane && ends && runs[h].run >= 0) {
      const tev *r = nth(tr, (uint64_t)runs[h].run);
      v[nv++] = (outrec){lane, r->ns, (uint64_t)runs[h].run, e->ns, r};
      runs[h].run = -1;
    }
    if (e->kind == AIOC_TRACE_RUN) {
      runs[h].run = (int64_t)i;
      continue; /* drawn as the run's slice */
    }
    v[nv++] = (outrec){lane, e->ns, i, -1, e};
  }
  /* Runs still open (the running task): up to now. */
  for (uint64_t h = 0; h < tcap; h++) {
    if (!runs[h].used || runs[h].run < 0) continue;
    const tev *r = nth(tr, (uint64_t)runs[h].run);
    v[nv++] = (outrec){runs[h].tid, r->ns, (uint64_t)runs[h].run,
                       now > r->ns ? now : r->ns, r};
  }
  qsort(v, nv, sizeof *v, outrec_cmp);
  int pid = (int)getpid();
  fprintf(f,
          "{\"displayTimeUnit\":\"ns\",\"otherData\":{\"events\":%llu,"
          "\"lost\":%llu},\n\"traceEvents\":[\n",
          (unsigned long long)n,
          (unsigned long long)(tr->head - tr->start - n));
  fprintf(f,
          "{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":%d,\"tid\":0,"
          "\"args\":{\"name\":\"aioc loop %p\"}}",
          pid, (void *)loop);
  char name[64];
  for (size_t i = 0; i < nlanes; i++) {
    lane_name(tr, lanes[i], name, sizeof name);
    fprintf(f,
            ",\n{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":%d,\"tid\":%lu,"
            "\"args\":{\"name\":",
            pid, (unsigned long)lanes[i]);
    put_str(f, name);
    fprintf(f,
            "}},\n{\"name\":\"thread_sort_index\",\"ph\":\"M\",\"pid\":%d,"
            "\"tid\":%lu,\"args\":{\"sort_index\":%lu}}",
            pid, (unsigned long)lanes[i], (unsigned long)lanes[i]);
  }
  for (size_t i = 0; i < nv; i++) {
    const outrec *o = &v[i];
    const tev *e = o->e;
    /* in ns from the first event, then in µs as the format has it */
    int64_t at = (int64_t)((double)(o->ns - base) * sc);
    double ts = (double)at / 1e3;
    if (o->end >= 0) {
      lane_name(tr, o->lane, name, sizeof name);
      fprintf(f, ",\n{\"name\":");
      put_str(f, name);
      fprintf(f,
              ",\"cat\":\"run\",\"ph\":\"X\",\"ts\":%.3f,\"dur\":%.3f,"
              "\"pid\":%d,\"tid\":%lu,\"args\":{\"id\":%lu}}",
              ts, (double)((int64_t)((double)(o->end - base) * sc) - at) / 1e3,
              pid, (unsigned long)o->lane,
              (unsigned long)o->lane);
      continue;
    }
    fprintf(f,
            ",\n{\"name\":\"%s\",\"cat\":\"%s\",\"ph\":\"i\",\"s\":\"t\","
            "\"ts\":%.3f,\"pid\":%d,\"tid\":%lu",
            aioc_trace_kind_name((aioc_trace_kind)e->kind),
            o->lane ? "task" : "loop", ts, pid, (unsigned long)o->lane);
    put_args(f, e);
    fputc('}', f);
  }
  fprintf(f, "\n]}\n");
  aioc__free(v);
  aioc__free(lanes);
  aioc__free(runs);
  if (fflush(f) != 0 || ferror(f)) return -EIO;
  return 0;
}

int aioc_loop_trace_write(aioc_loop *loop, FILE *out) {
  if (loop && !AIOC__LOOP_OK(loop, "aioc_loop_trace_write")) return -EINVAL;
  loop = aioc__loop_pick(loop);
  if (!loop || !out) return -EINVAL;
  if (!loop->trace) return -ENODATA;
  return trace_write(loop, out);
}

static atomic_uint trace_files;

static char *format(const char *fmt, ...) AIOC_PRINTF(1, 2);
static char *format(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = aioc__vformat(fmt, ap);
  va_end(ap);
  return s;
}

/* aioc_loop_trace_save() without the checks of a live loop: the report
 * of an unretrieved error may come after the loop was freed by its user
 * (its memory lives while futures hold it). */
static int trace_save(aioc_loop *loop, const char *path, char *name,
                      size_t cap) {
  if (!loop->trace) return -ENODATA;
  char buf[1024];
  if (!path) {
    const char *dir = getenv("AIOC_TRACE_DIR");
    if (!dir || !*dir) dir = ".";
    snprintf(buf, sizeof buf, "%s/aioc-trace-%d-%u.json", dir, (int)getpid(),
             atomic_fetch_add(&trace_files, 1) + 1);
    path = buf;
  }
  if (name && cap) snprintf(name, cap, "%s", path);
  FILE *f = fopen(path, "w");
  if (!f) return -errno;
  int rc = trace_write(loop, f);
  if (fclose(f) != 0 && rc == 0) rc = -EIO;
  return rc;
}

int aioc_loop_trace_save(aioc_loop *loop, const char *path, char *name,
                         size_t cap) {
  if (name && cap) name[0] = 0;
  if (loop && !AIOC__LOOP_OK(loop, "aioc_loop_trace_save")) return -EINVAL;
  loop = aioc__loop_pick(loop);
  if (!loop) return -EINVAL;
  return trace_save(loop, path, name, cap);
}

/* The report of a task's error nobody retrieved: the trace goes to a new
 * file, named in the report's detail. */
char *aioc__trace_unretrieved(aioc_loop *loop, const char *detail) {
  char path[1024];
  if (trace_save(loop, NULL, path, sizeof path) < 0) return NULL;
  return format("%s; trace written to %s", detail, path);
}

static void save_on_signal(void *arg, int signum) {
  (void)signum;
  aioc_loop *loop = aioc_get_running_loop();
  if (loop) trace_save(loop, arg, NULL, 0);
}

int aioc_loop_trace_on_signal(aioc_signal **out, aioc_loop *loop, int signum,
                              const char *path) {
  if (out) *out = NULL;
  if (loop && !AIOC__LOOP_OK(loop, "aioc_loop_trace_on_signal"))
    return -EINVAL;
  aioc_loop *l = aioc__loop_pick(loop);
  if (!l || !out) return -EINVAL;
  if (!l->trace) return -ENODATA;
  return aioc_signal_add(out, loop, &signum, 1, save_on_signal, (void *)path);
}
