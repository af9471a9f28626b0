/* Task dumps: every live task of a loop, as data (aioc_loop_get_tasks)
 * and as text (aioc_loop_dump), on demand or on a signal. Read on the
 * loop's thread only: the task layer's records are not locked. */
#include <math.h>
#include <string.h>

#include "../task/task.h"

static const char *const kind_names[] = {
    "nothing",   "future",    "sleep",   "queue", "lock",
    "event",     "condition", "semaphore", "barrier", "fd",
    "stream",    "iterator",  "futures", "other"};

const char *aioc_wait_kind_name(aioc_wait_kind kind) {
  if ((unsigned)kind >= sizeof kind_names / sizeof kind_names[0]) return "?";
  return kind_names[kind];
}

const char *aioc_task_state_name(aioc_task_state state) {
  static const char *const names[] = {"scheduled", "ready", "running",
                                      "suspended"};
  if ((unsigned)state >= sizeof names / sizeof names[0]) return "?";
  return names[state];
}

static double secs(int64_t ns) { return (double)ns / 1e9; }

/* The earliest deadline that ends t's wait: its own timer, or a scope's
 * (up to the first shield, which outer deadlines do not cross). */
static int64_t wait_deadline(const aioc_task *t) {
  int64_t when = AIOC__NEVER;
  aioc__wait *w = t->r->wait;
  if (w && w->unhook == aioc__twait_unhook) {
    const aioc__twait *tw = aioc__container_of(w, aioc__twait, w);
    if (aioc__twait_armed(tw)) when = tw->tm.when;
  }
  for (aioc_scope *s = t->r->scopes; s; s = s->parent) {
    if (s->kind != SCOPE_SHIELD && s->tm.idx != AIOC__NOTIMER &&
        s->tm.when < when)
      when = s->tm.when;
    if (s->kind == SCOPE_SHIELD) {
      if (s->tm.idx != AIOC__NOTIMER && s->tm.when < when) when = s->tm.when;
      break;
    }
  }
  return when;
}

static void fill(aioc_task *t, aioc_task_info *i) {
  aioc_loop *loop = t->f.loop;
  const aioc__tobs *o = t->f.ext ? t->f.ext->obs : NULL;
  *i = (aioc_task_info){.task = t,
                        .id = t->f.tid,
                        .name = aioc__task_display_name(t),
                        .waited = -1,
                        .deadline = AIOC_FOREVER,
                        .spawner = o ? o->spawner : 0,
                        .spawn_site = o ? o->spawn_site : NULL};
  switch (t->f.tstate) {
  case T_CREATED:
    i->state = AIOC_TASK_STATE_SCHEDULED;
    return;
  case T_READY:
    i->state = AIOC_TASK_STATE_READY;
    return;
  case T_RUNNING:
    i->state = AIOC_TASK_STATE_RUNNING;
    return;
  default:
    break;
  }
  i->state = AIOC_TASK_STATE_SUSPENDED;
  aioc__trun *r = t->r;
  i->wait_site = r->site;
  i->wait_future = aioc__task_awaiting(t);
  if (i->wait_future) {
    i->wait_kind = AIOC_WAIT_KIND_FUTURE;
    if (i->wait_future->is_task)
      i->awaits = ((aioc_task *)i->wait_future)->f.tid;
  } else if (r->site && r->site->kind != AIOC_WAIT_KIND_FUTURE) {
    i->wait_kind = r->site->kind;
  } else {
    i->wait_kind = AIOC_WAIT_KIND_OTHER;
  }
  /* A site noted for another kind of wait is stale: not this one. */
  if (r->site && r->site->kind != i->wait_kind &&
      !(r->site->kind == AIOC_WAIT_KIND_GROUP ||
        i->wait_kind == AIOC_WAIT_KIND_OTHER))
    i->wait_site = NULL;
  if (r->wait_since >= 0) i->waited = secs(aioc__now(loop) - r->wait_since);
  int64_t d = wait_deadline(t);
  if (d != AIOC__NEVER) i->deadline = secs(d);
}

typedef struct gather_infos {
  aioc_task_info *out;
  size_t cap, n;
} gather_infos;

static void gather_one(aioc_task *t, void *arg) {
  gather_infos *g = arg;
  if (g->n < g->cap) fill(t, &g->out[g->n]);
  g->n++;
}

int aioc_loop_get_tasks(aioc_loop *loop, aioc_task_info *out, size_t cap) {
  if (loop && !AIOC__LOOP_OK(loop, "aioc_loop_get_tasks")) return -EINVAL;
  loop = aioc__loop_pick(loop);
  if (!loop || (!out && cap)) return -EINVAL;
  gather_infos g = {out, cap, 0};
  aioc__tasks_each(loop, gather_one, &g);
  return (int)g.n;
}

/* ---- text ---- */

static void print_secs(FILE *f, double s) {
  if (s < 0.001)
    fprintf(f, "%.0f us", s * 1e6);
  else if (s < 1)
    fprintf(f, "%.3f ms", s * 1e3);
  else
    fprintf(f, "%.3f s", s);
}

static const char *base(const char *path) {
  const char *s = strrchr(path, '/');
  return s ? s + 1 : path;
}

static const aioc_task_info *by_id(const aioc_task_info *v, size_t n,
                                   uint32_t id) {
  for (size_t i = 0; i < n; i++)
    if (v[i].id == id) return &v[i];
  return NULL;
}

/* The call stack of a task that is switched out, a frame a line. */
static void print_stack(FILE *f, const aioc_task_info *i) {
  if (i->state != AIOC_TASK_STATE_SUSPENDED &&
      i->state != AIOC_TASK_STATE_READY)
    return;
  void *fr[AIOC_STACK_FRAMES_MAX];
  int n = aioc_task_get_stack(i->task, fr, AIOC_STACK_FRAMES_MAX);
  if (n <= 0) return;
  fprintf(f, "    stack:\n");
  for (int k = 0; k < n; k++) {
    char b[256];
    aioc_frame_describe(fr[k], b, sizeof b);
    fprintf(f, "        #%d %s\n", k, b);
  }
}

static void print_task(FILE *f, const aioc_task_info *v, size_t n,
                       const aioc_task_info *i, double now) {
  fprintf(f, "%s (id %u): %s", i->name, (unsigned)i->id,
          aioc_task_state_name(i->state));
  if (i->state == AIOC_TASK_STATE_SUSPENDED) {
    fprintf(f, " on %s", aioc_wait_kind_name(i->wait_kind));
    if (i->awaits) {
      const aioc_task_info *a = by_id(v, n, i->awaits);
      fprintf(f, " %s (id %u)", a ? a->name : "task", (unsigned)i->awaits);
    } else if (i->wait_future) {
      fprintf(f, " %p", (void *)i->wait_future);
    }
    if (i->wait_site)
      fprintf(f, " in %s at %s:%d", i->wait_site->call, i->wait_site->file,
              i->wait_site->line);
    if (i->waited >= 0) {
      fprintf(f, ", for ");
      print_secs(f, i->waited);
    }
    if (!isinf(i->deadline)) {
      fprintf(f, ", deadline %.6f (in ", i->deadline);
      print_secs(f, i->deadline > now ? i->deadline - now : 0);
      fprintf(f, ")");
    }
  }
  fprintf(f, "\n");
  if (i->spawner || i->spawn_site) {
    fprintf(f, "    spawned");
    if (i->spawner) {
      const aioc_task_info *s = by_id(v, n, i->spawner);
      if (s)
        fprintf(f, " by %s (id %u)", s->name, (unsigned)i->spawner);
      else
        fprintf(f, " by task id %u", (unsigned)i->spawner);
    }
    if (i->spawn_site)
      fprintf(f, " at %s:%d", base(i->spawn_site->file), i->spawn_site->line);
    fprintf(f, "\n");
  }
  bool first = true;
  for (size_t k = 0; k < n; k++) {
    if (v[k].awaits != i->id) continue;
    fprintf(f, "%s%s (id %u)", first ? "    awaited by " : ", ", v[k].name,
            (unsigned)v[k].id);
    first = false;
  }
  if (!first) fprintf(f, "\n");
  aioc_task_metrics m;
  if (aioc_task_get_metrics(i->task, &m) == 0 && m.runs) {
    fprintf(f, "    runs %llu, ran ", (unsigned long long)m.runs);
    print_secs(f, m.run_time);
    fprintf(f, " (longest ");
    print_secs(f, m.run_max);
    fprintf(f, "), ready ");
    print_secs(f, m.ready_time);
    fprintf(f, "\n");
  }
  print_stack(f, i);
}

/* The await tree: from each task nobody awaits, down what it awaits. */
static void print_tree(FILE *f, const aioc_task_info *v, size_t n) {
  fprintf(f, "await tree:\n");
  for (size_t k = 0; k < n; k++) {
    bool awaited = false;
    for (size_t j = 0; j < n && !awaited; j++)
      awaited = v[j].awaits == v[k].id;
    if (awaited) continue;
    const aioc_task_info *i = &v[k];
    for (int depth = 0; i && depth < 64; depth++) {
      fprintf(f, "%*s%s%s (id %u)", depth * 4, "", depth ? "└── " : "",
              i->name, (unsigned)i->id);
      if (i->wait_site && i->state == AIOC_TASK_STATE_SUSPENDED)
        fprintf(f, " %s %s:%d", i->wait_site->call, base(i->wait_site->file),
                i->wait_site->line);
      fprintf(f, "\n");
      i = i->awaits ? by_id(v, n, i->awaits) : NULL;
    }
  }
}

int aioc_loop_dump(aioc_loop *loop, FILE *out) {
  if (loop && !AIOC__LOOP_OK(loop, "aioc_loop_dump")) return -EINVAL;
  loop = aioc__loop_pick(loop);
  if (!loop || !out) return -EINVAL;
  int n = aioc_loop_get_tasks(loop, NULL, 0);
  aioc_task_info *v = n ? aioc__calloc((size_t)n, sizeof *v) : NULL;
  if (n && !v) return -ENOMEM;
  n = aioc_loop_get_tasks(loop, v, (size_t)n);
  aioc_loop_metrics m;
  aioc_loop_get_metrics(loop, &m);
  double now = aioc_loop_time(loop);
  fprintf(out,
          "loop %p: %d task%s, time %.6f, %llu iterations, %zu ready, "
          "%llu timers fired, loop lag max ",
          (void *)loop, n, n == 1 ? "" : "s", now,
          (unsigned long long)m.iterations, m.ready,
          (unsigned long long)m.timers_fired);
  print_secs(out, m.lag_max);
  if (m.task_runs) {
    fprintf(out, ", in tasks ");
    print_secs(out, m.task_time);
    fprintf(out, ", polling ");
    print_secs(out, m.poll_time);
  }
  fprintf(out, "\n");
  for (int k = 0; k < n; k++) print_task(out, v, (size_t)n, &v[k], now);
  if (n) print_tree(out, v, (size_t)n);
  fflush(out);
  aioc__free(v);
  return 0;
}

/* ---- on a signal ---- */

static void dump_on_signal(void *arg, int signum) {
  (void)signum;
  aioc_loop_dump(aioc_get_running_loop(), arg ? (FILE *)arg : stderr);
}

int aioc_loop_dump_on_signal(aioc_signal **out, aioc_loop *loop, int signum,
                             FILE *to) {
  return aioc_signal_add(out, loop, &signum, 1, dump_on_signal, to);
}
