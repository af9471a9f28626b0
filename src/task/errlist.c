/* A list of errors (code and message), kept by TaskGroup and Group. */
#include "task.h"

void aioc__errlist_add(aioc__errlist *l, int code, const char *msg) {
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 4;
    aioc__errent *v = aioc__realloc(l->v, cap * sizeof *v);
    if (!v) return; /* the count stays right for what was kept */
    l->v = v;
    l->cap = cap;
  }
  l->v[l->n++] = (aioc__errent){code, msg ? aioc__strdup(msg) : NULL};
}

int aioc__errlist_get(const aioc__errlist *l, size_t i, int *code,
                      const char **msg) {
  if (i < l->n) {
    if (code) *code = l->v[i].code;
    if (msg) *msg = l->v[i].msg;
  }
  return (int)l->n;
}

int aioc__errlist_first(const aioc__errlist *l, aioc_task *t) {
  if (!l->n) return 0;
  if (t && l->v[0].msg)
    aioc__task_set_errmsg(t, l->v[0].code, aioc__strdup(l->v[0].msg));
  return l->v[0].code;
}

void aioc__errlist_clear(aioc__errlist *l) {
  for (size_t i = 0; i < l->n; i++) aioc__free(l->v[i].msg);
  l->n = 0;
}

void aioc__errlist_free(aioc__errlist *l) {
  aioc__errlist_clear(l);
  aioc__free(l->v);
  l->v = NULL;
  l->cap = 0;
}
