/* Shared helpers of the seed ports (tests/seeds/seed_*.c).
 *
 * A seed port prints through seed_out(), which echoes each line to stdout
 * and, once seed_capture_begin() was called, also keeps it, so that the
 * program's --check mode can compare what it printed with the lines the
 * article prints (seed_expect_lines()). Reports of the loop ("Task
 * exception was never retrieved", "Task was destroyed but it is pending")
 * go through seed_report(), which prints them as output lines too and
 * counts them, so a check can assert that they happened.
 *
 * seed_run() is aioc_run_ex() on the virtual clock with seed_report()
 * installed: every timing is exact and the programs run instantly.
 *
 * Everything here is static: each seed program (and each seed file that the
 * demo compiles in) has its own copy of the state. */
#ifndef AIOC_SEED_UTIL_H
#define AIOC_SEED_UTIL_H

#include <aioc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One example of a seed article, as the demo tours it. */
typedef struct seed_example {
  const char *name;  /* the article's file name, e.g. "1-sync-async-execution" */
  const char *about; /* one line: what the example shows */
  int (*run)(void);  /* runs it as the article does; 0 on success */
} seed_example;

/* ---- output capture ---------------------------------------------------- */

static struct {
  int capturing;
  char **lines;
  size_t n, cap;
  /* reports seen, by kind */
  int destroyed_pending; /* "Task was destroyed but it is pending" */
  int never_retrieved;   /* "Task/Future exception was never retrieved" */
  int other_reports;
  int last_code; /* the error code of the last report */
} seed_state;

/* Starts keeping the lines printed by seed_out() (and clears the report
 * counters). */
static inline void seed_capture_begin(void) {
  seed_state.capturing = 1;
  seed_state.destroyed_pending = 0;
  seed_state.never_retrieved = 0;
  seed_state.other_reports = 0;
  seed_state.last_code = 0;
}

/* Forgets the kept lines and stops keeping new ones. */
static inline void seed_capture_end(void) {
  for (size_t i = 0; i < seed_state.n; i++) free(seed_state.lines[i]);
  free(seed_state.lines);
  seed_state.lines = NULL;
  seed_state.n = seed_state.cap = 0;
  seed_state.capturing = 0;
}

/* Prints one line (no trailing newline in fmt) to stdout and keeps it when
 * capturing. */
static inline void seed_out(const char *fmt, ...) AIOC_PRINTF(1, 2);
static inline void seed_out(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int len = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (len < 0) return;
  char *line = malloc((size_t)len + 1);
  if (!line) {
    fprintf(stderr, "seed_out: out of memory\n");
    exit(2);
  }
  va_start(ap, fmt);
  vsnprintf(line, (size_t)len + 1, fmt, ap);
  va_end(ap);
  printf("%s\n", line);
  fflush(stdout);
  if (!seed_state.capturing) {
    free(line);
    return;
  }
  if (seed_state.n == seed_state.cap) {
    size_t cap = seed_state.cap ? 2 * seed_state.cap : 16;
    char **l = realloc(seed_state.lines, cap * sizeof *l);
    if (!l) {
      fprintf(stderr, "seed_out: out of memory\n");
      exit(2);
    }
    seed_state.lines = l;
    seed_state.cap = cap;
  }
  seed_state.lines[seed_state.n++] = line;
}

/* Compares the kept lines with expected[0..n): prints every difference to
 * stderr and returns the number of failures (0: identical). */
static inline int seed_expect_lines(const char *what,
                                    const char *const *expected, size_t n) {
  int fails = 0;
  size_t max = n > seed_state.n ? n : seed_state.n;
  for (size_t i = 0; i < max; i++) {
    const char *e = i < n ? expected[i] : NULL;
    const char *g = i < seed_state.n ? seed_state.lines[i] : NULL;
    if (e && g && strcmp(e, g) == 0) continue;
    fprintf(stderr, "%s: line %zu: expected %s%s%s, got %s%s%s\n", what,
            i + 1, e ? "\"" : "", e ? e : "(nothing)", e ? "\"" : "",
            g ? "\"" : "", g ? g : "(nothing)", g ? "\"" : "");
    fails++;
  }
  return fails;
}

/* Compares the kept lines with a static array of expected lines. */
#define SEED_EXPECT(fails, what, arr)                                          \
  ((fails) += seed_expect_lines((what), (arr), sizeof(arr) / sizeof *(arr)))

/* The number of reports seen since seed_capture_begin(). */
static inline int seed_reports(void) {
  return seed_state.destroyed_pending + seed_state.never_retrieved +
         seed_state.other_reports;
}

/* The check mode's verdict on one condition. */
#define SEED_CHECK(fails, cond)                                                \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
      (fails)++;                                                               \
    }                                                                          \
  } while (0)

/* Non-zero if the program was started with --check. */
static inline int seed_is_check(int argc, char **argv) {
  for (int i = 1; i < argc; i++)
    if (strcmp(argv[i], "--check") == 0) return 1;
  return 0;
}

/* Ends a check: prints the verdict and returns the exit status. */
static inline int seed_verdict(const char *name, int fails) {
  if (fails) {
    fprintf(stderr, "%s: %d check(s) failed\n", name, fails);
    return 1;
  }
  printf("%s: output matches the article\n", name);
  return 0;
}

/* ---- reports ------------------------------------------------------------ */

/* Report handler: prints the report as output lines (the message, the
 * task's name, the error) and counts it by kind. */
static inline void seed_report(void *arg, aioc_loop *loop,
                               const aioc_report *r) {
  (void)loop;
  (void)arg;
  if (strcmp(r->message, "Task was destroyed but it is pending") == 0)
    seed_state.destroyed_pending++;
  else if (strstr(r->message, "exception was never retrieved"))
    seed_state.never_retrieved++;
  else
    seed_state.other_reports++;
  seed_state.last_code = r->code;
  seed_out("%s", r->message);
  if (r->task) seed_out("task: %s", aioc_task_name(r->task));
  if (r->code)
    seed_out("error: %s", r->detail ? r->detail : aioc_strerror(r->code));
  else if (r->detail)
    seed_out("detail: %s", r->detail);
}

/* ---- running ------------------------------------------------------------ */

typedef struct seed_tramp {
  aioc_fn fn;
  void *arg;
} seed_tramp;

static inline int seed_tramp_main(void *arg, void **result) {
  seed_tramp *t = arg;
  aioc_loop_set_report_handler(aioc_get_running_loop(), seed_report, NULL);
  return t->fn(t->arg, result);
}

/* asyncio.run(fn(arg)) on the virtual clock, reports through seed_report().
 * Returns fn's code (or aioc_run_ex()'s own error). */
static inline int seed_run(aioc_fn fn, void *arg) {
  aioc_run_options o;
  memset(&o, 0, sizeof o);
  o.loop.virtual_clock = 1;
  seed_tramp t = {fn, arg};
  return aioc_run_ex(seed_tramp_main, &t, NULL, &o);
}

/* Spawns fn(arg) named name (NULL: "Task-N") on the current loop; results
 * nobody takes are destroyed with result_free (may be NULL). */
static inline int seed_spawn(aioc_task **out, aioc_fn fn, void *arg,
                             const char *name, aioc_free_fn result_free) {
  aioc_task_options o;
  memset(&o, 0, sizeof o);
  o.name = name;
  o.result_free = result_free;
  return aioc_spawn_ex(out, NULL, fn, arg, &o);
}

/* Releases ts[0..n) (NULL entries are harmless). */
static inline void seed_release_all(aioc_task **ts, size_t n) {
  for (size_t i = 0; i < n; i++) {
    aioc_task_unref(ts[i]);
    ts[i] = NULL;
  }
}

#endif /* AIOC_SEED_UTIL_H */
