/* Deadline scopes and shielded regions.
 *
 * Each scope owns one timer, armed when it is entered: a wait inside the
 * scope arms nothing. When the timer fires, the scope is marked expired
 * and, if its task is suspended and no shield stands between the task's
 * innermost scope and this one, the task is woken with -ETIMEDOUT. Later
 * suspension points see the mark (level-triggered). */
#include <math.h>

#include "task.h"

/* Is s reachable from t's innermost scope without crossing a shield (a
 * shield reaches its own deadline)? */
static bool in_force(const aioc_task *t, const aioc_scope *s) {
  for (aioc_scope *x = t->r->scopes; x; x = x->parent) {
    if (x == s) return true;
    if (x->kind == SCOPE_SHIELD) return false;
  }
  return false;
}

static void scope_fire(aioc_loop *loop, aioc__timer *tm) {
  aioc_scope *s = aioc__container_of(tm, aioc_scope, tm);
  aioc_task *t = s->task;
  s->expired = true;
  if (loop->closed) return;
  if (t->f.tstate == T_SUSPENDED && t->r->wait && !t->r->nocancel &&
      in_force(t, s))
    aioc__task_interrupt(t, -ETIMEDOUT);
}

/* The loop's time, read afresh (the cached time of a long iteration may be
 * behind: a deadline that has passed must be seen as passed). */
static int64_t fresh_now(aioc_loop *loop) {
  return aioc__deadline_after(loop, 0);
}

static int enter(aioc_scope **out, int kind, int64_t when) {
  aioc_task *t = aioc__current();
  if (!t) return AIOC_ENOTASK;
  aioc_scope *s = aioc__alloc(sizeof *s);
  if (!s) return -ENOMEM;
  aioc__timer_init(&s->tm, scope_fire);
  s->task = t;
  s->kind = (uint8_t)kind;
  s->expired = false;
  s->entered = true;
  s->deadline = when;
  AIOC__ARMOR_SET(s, AIOC__MAGIC_SCOPE);
  if (when != AIOC__NEVER && when <= fresh_now(t->f.loop)) {
    /* Already past (0 seconds, a past time): expired from the start, so
     * the first suspension point inside fails, aioc_yield() included
     * (asyncio: `async with timeout(0): await sleep(0)` raises). A timer
     * would only fire after that first wait had gone through. */
    s->tm.when = when;
    s->expired = true;
  } else if (when != AIOC__NEVER) {
    if (aioc__timer_arm(t->f.loop, &s->tm, when) < 0) {
      AIOC__ARMOR_SET(s, AIOC__MAGIC_DEAD);
      aioc__free(s);
      return -ENOMEM;
    }
  }
  s->parent = t->r->scopes;
  t->r->scopes = s;
  *out = s;
  return 0;
}

/* The scopes that expire some seconds from now. */
static int enter_after(aioc_scope **out, int kind, double seconds) {
  if (!out) return -EINVAL;
  *out = NULL;
  if (isnan(seconds) || seconds < 0) return -EINVAL;
  aioc_task *t = aioc__current();
  if (!t) return AIOC_ENOTASK;
  return enter(out, kind, aioc__deadline_after(t->f.loop, seconds));
}

int aioc_timeout_enter(aioc_scope **out, double seconds) {
  return enter_after(out, SCOPE_TIMEOUT, seconds);
}

int aioc_timeout_at_enter(aioc_scope **out, double when) {
  if (!out) return -EINVAL;
  *out = NULL;
  if (isnan(when)) return -EINVAL;
  return enter(out, SCOPE_TIMEOUT, aioc__deadline_at(when));
}

int aioc_move_on_enter(aioc_scope **out, double seconds) {
  return enter_after(out, SCOPE_MOVE_ON, seconds);
}

int aioc_shield_enter(aioc_scope **out, double seconds) {
  return enter_after(out, SCOPE_SHIELD, seconds);
}

int aioc_scope_reschedule(aioc_scope *s, double when) {
  if (!s || isnan(when) || !AIOC__SCOPE_OK(s, "aioc_scope_reschedule"))
    return -EINVAL;
  if (s->expired || !s->entered) return AIOC_ESTATE;
  aioc_loop *loop = s->task->f.loop;
  int64_t w = aioc__deadline_at(when);
  if (w != AIOC__NEVER && w <= fresh_now(loop)) {
    /* Into the past: it expires now, as if its timer had fired (a task
     * waiting under it is woken with -ETIMEDOUT). */
    aioc__timer_disarm(loop, &s->tm);
    s->tm.when = w;
    s->deadline = w;
    scope_fire(loop, &s->tm);
    return 0;
  }
  int rc = aioc__timer_arm(loop, &s->tm, w);
  if (rc == 0) s->deadline = w;
  return rc;
}

double aioc_scope_deadline(const aioc_scope *s) {
  if (!s || !AIOC__SCOPE_OK(s, "aioc_scope_deadline") ||
      s->deadline == AIOC__NEVER)
    return AIOC_FOREVER;
  return (double)s->deadline / 1e9;
}

int aioc_scope_is_expired(const aioc_scope *s) {
  return s && AIOC__SCOPE_OK(s, "aioc_scope_is_expired") && s->expired;
}

int aioc_scope_exit(aioc_scope *s) {
  if (!s || !AIOC__SCOPE_OK(s, "aioc_scope_exit")) return -EINVAL;
  aioc_task *t = aioc__current();
  if (!s->entered || !t || t != s->task || t->r->scopes != s) return -EINVAL;
  t->r->scopes = s->parent;
  s->parent = NULL;
  s->entered = false;
  aioc__timer_disarm(t->f.loop, &s->tm);
  return s->expired && s->kind != SCOPE_MOVE_ON ? -ETIMEDOUT : 0;
}

/* Takes s out of its task's chain wherever it stands (a scope freed while
 * entered, or left open by a task that ended). */
void aioc__scope_unlink(aioc_scope *s) {
  if (!s->entered) return;
  aioc_task *t = s->task;
  for (aioc_scope **p = &t->r->scopes; *p; p = &(*p)->parent) {
    if (*p == s) {
      *p = s->parent;
      break;
    }
  }
  s->parent = NULL;
  s->entered = false;
  aioc__timer_disarm(t->f.loop, &s->tm);
}

void aioc_scope_free(aioc_scope *s) {
  if (!s || !AIOC__SCOPE_OK(s, "aioc_scope_free")) return;
  aioc__scope_unlink(s);
  AIOC__ARMOR_SET(s, AIOC__MAGIC_DEAD);
  aioc__free(s);
}

int aioc_with_timeout(double seconds, int (*body)(void *), void *arg) {
  if (!body) return -EINVAL;
  aioc_scope *s;
  int rc = aioc_timeout_enter(&s, seconds);
  if (rc < 0) return rc;
  int brc = body(arg);
  rc = aioc_scope_exit(s);
  aioc_scope_free(s);
  /* The body's own failure wins unless it is the scope's timeout. */
  if (rc == -ETIMEDOUT && (brc == 0 || brc == -ETIMEDOUT)) return rc;
  return brc;
}
