/* The one intrusive list of the library: circular and doubly linked, its
 * head a node of the same type, so insertion and removal never branch on
 * an end. A detached node points at itself, so removing it twice is
 * harmless and aioc__list_is_linked() tells. Nodes live inside the
 * objects they link (often on a task's stack); aioc__container_of gets
 * the object back. */
#ifndef AIOC_UTIL_LIST_H
#define AIOC_UTIL_LIST_H

#include <stdbool.h>
#include <stddef.h>

typedef struct aioc__list aioc__list;
struct aioc__list {
  aioc__list *next, *prev;
};

/* An empty list, or a detached node. */
static inline void aioc__list_init(aioc__list *n) {
  n->next = n->prev = n;
}

static inline bool aioc__list_is_empty(const aioc__list *head) {
  return head->next == head;
}

static inline bool aioc__list_is_linked(const aioc__list *n) {
  return n->next != n;
}

/* Links n right after pos (pos may be the head: n becomes the first). */
static inline void aioc__list_insert_after(aioc__list *pos, aioc__list *n) {
  n->next = pos->next;
  n->prev = pos;
  pos->next->prev = n;
  pos->next = n;
}

static inline void aioc__list_push_front(aioc__list *head, aioc__list *n) {
  aioc__list_insert_after(head, n);
}

static inline void aioc__list_push_back(aioc__list *head, aioc__list *n) {
  aioc__list_insert_after(head->prev, n);
}

/* Unlinks n and leaves it detached. */
static inline void aioc__list_del(aioc__list *n) {
  n->prev->next = n->next;
  n->next->prev = n->prev;
  n->next = n->prev = n;
}

/* The first node, or NULL when the list is empty. */
static inline aioc__list *aioc__list_first(const aioc__list *head) {
  return head->next == head ? NULL : head->next;
}

/* The first node, unlinked, or NULL. */
static inline aioc__list *aioc__list_pop_front(aioc__list *head) {
  aioc__list *n = aioc__list_first(head);
  if (n) aioc__list_del(n);
  return n;
}

/* Walks the list; the body may unlink (and free) n itself but no other
 * node. */
#define aioc__list_each(n, head)                                               \
  for (aioc__list *n = (head)->next, *n##_next_ = n->next; n != (head);        \
       n = n##_next_, n##_next_ = n->next)

#endif
