/* aioc/gen.h: generators, async iterators with a timeout between items,
 * iterator helpers, async context managers.
 *
 * A generator is a function that yields values to its consumer. Its body
 * runs on its own stack, lazily: only when the consumer asks for the next
 * value, up to the next yield. The same generator can be consumed from
 * inside a task (the consumer suspends while the body works; the body may
 * await anything) and from plain code (the thread's loop runs underneath
 * until the value is ready).
 *
 * Every "next item" source (generators, as_completed, queues, and later
 * streams, HTTP bodies and RPC responses) can be seen through one
 * interface, aioc_iter, whose next() takes a timeout. A timeout on the
 * consumer never kills the producer: the producer keeps its place, and the
 * next call waits for the same item. */
#ifndef AIOC_GEN_H
#define AIOC_GEN_H

#include "combine.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Generators --------------------------------------------------------- */

typedef struct aioc_gen aioc_gen;

/* A generator body. It yields with aioc_gen_yield() and ends by returning:
 * 0 ends the iteration (the consumer then gets AIOC_EXHAUSTED), a negative
 * code is an error the consumer receives (with the message of
 * aioc_error()). A body may also return a value at its end, as Python's
 * `return value` in a generator (Generator[Y, S, R]): `return
 * aioc_gen_return(g, value);`, read with aioc_gen_result(). */
typedef int (*aioc_gen_fn)(void *arg, aioc_gen *g);

/* Flags of aioc_gen_options. */
enum {
  /* A timed-out next() cancels the body (Python's wait_for(anext())
   * behaviour) instead of letting it keep its place. */
  AIOC_GEN_CANCEL_ON_TIMEOUT = 1
};

typedef struct aioc_gen_options {
  const char *name;        /* copied; NULL: "gen-<id>" */
  size_t stack_size;       /* 0: the loop's default */
  unsigned flags;          /* AIOC_GEN_* */
  aioc_free_fn item_free;  /* destroys an item produced but never taken */
  aioc_free_fn return_free; /* destroys a return value never taken */
} aioc_gen_options;

/* Creates a generator on the thread's current loop (NULL opts: defaults).
 * The body does not run until the first next. The caller owns the
 * generator: free it with aioc_gen_free(). Returns 0, -EINVAL (fn NULL),
 * -ENOMEM or AIOC_ECLOSED. */
AIOC_API AIOC_NODISCARD int aioc_gen_new(aioc_gen **out, aioc_gen_fn fn,
                                         void *arg,
                                         const aioc_gen_options *opts);

/* Suspension point for the consumer: asks for the next value and waits at
 * most timeout seconds (AIOC_FOREVER: no limit) and within the deadlines
 * in scope. Returns 0 with the value in *item (the consumer owns it),
 * AIOC_EXHAUSTED once the body returned 0 (and on every call after the end,
 * after a close, or after an error was delivered), the body's error code
 * (once; its message becomes the consumer task's aioc_error_message(), or
 * from plain code the thread's), -ETIMEDOUT (the body keeps its place and keeps
 * working: the next call waits for the same value; with
 * AIOC_GEN_CANCEL_ON_TIMEOUT the body is cancelled instead), -ECANCELED (the
 * consumer was cancelled; the body keeps its place as on a timeout), -ENOMEM
 * (the timer of a finite timeout could not be armed: the call never waits
 * without its limit; the body keeps its place as on a timeout), -EBUSY (another
 * consumer is waiting on this generator), -EDEADLK (called from g's own
 * body), -EINVAL. From plain code the loop
 * runs until the value is ready; inside a callback of a running loop:
 * AIOC_ERUNNING. */
AIOC_API AIOC_NODISCARD int aioc_gen_next(aioc_gen *g, void **item,
                                          double timeout);

/* aioc_gen_next() that resumes the body's pending yield with value (which
 * the yield returns in *sent), as Python's asend(). The first call of a
 * generator cannot send (there is no yield to resume): -EINVAL unless
 * value is NULL. -EAGAIN when there is no yield to resume now: the body is
 * still busy since an earlier timed-out request, or the item it produced
 * then waits to be taken with aioc_gen_next(). */
AIOC_API AIOC_NODISCARD int aioc_gen_send(aioc_gen *g, void *value, void **item,
                                          double timeout);

/* aioc_gen_next() that resumes the body's pending yield with an error:
 * the yield returns code (negative), as Python's athrow(). If the body
 * does not handle it and returns it, the consumer gets it back. A
 * generator that has not started is finished by it without running:
 * returns code. -EAGAIN as aioc_gen_send(). */
AIOC_API AIOC_NODISCARD int aioc_gen_throw(aioc_gen *g, int code, void **item,
                                           double timeout);

/* Closes the generator, as Python's aclose(): the pending yield returns
 * AIOC_EGENEXIT, the body runs its cleanup and returns; a body busy
 * elsewhere (after a consumer timeout) is cancelled instead. Waits for the
 * body to end (a suspension point that is not interrupted: cleanup always
 * completes). A body that yields again while closing gets AIOC_EGENEXIT
 * again at once and is finished when it returns; close then returns
 * AIOC_EGENYIELD. Returns 0, AIOC_EGENYIELD, the error the body returned
 * during cleanup, -EDEADLK (called from g's own body), AIOC_ERUNNING (in a
 * callback of a running loop, where nothing can wait: aioc_gen_free()
 * closes in the background there), or -EINVAL. Closing a finished or
 * unstarted generator is harmless (0). */
AIOC_API int aioc_gen_close(aioc_gen *g);

/* Closes (as aioc_gen_close()) and frees the generator. Values produced
 * but never taken are destroyed with item_free. NULL is harmless. */
AIOC_API void aioc_gen_free(aioc_gen *g);

/* Inside the body: hands value to the consumer and suspends until the next
 * request. Returns 0 (next; *sent, if not NULL, receives the value of
 * aioc_gen_send(), else NULL), the code given to aioc_gen_throw(),
 * AIOC_EGENEXIT when the generator is being closed (return promptly after
 * cleanup), -ECANCELED when the body was cancelled (only with
 * AIOC_GEN_CANCEL_ON_TIMEOUT or on close while busy), -ETIMEDOUT when a
 * deadline in scope of the body has passed. -EINVAL if called from
 * anything but g's own body (nothing happens: value stays the caller's).
 *
 * Ownership, one rule whatever the code: value leaves the body with the
 * call. The body never frees what it yielded, even when the yield
 * returns non-zero. A consumer that receives it from next, send or
 * throw owns it. A value no consumer receives goes to the generator's
 * item_free (forgotten if there is none): one the yield could not hand
 * over (a close under way: AIOC_EGENEXIT; a cancellation or an expired
 * deadline: -ECANCELED / -ETIMEDOUT), or one produced after its consumer
 * gave up and left when the generator is closed or freed. A code that
 * resumes a yield (a throw, AIOC_EGENEXIT or -ECANCELED reaching a parked
 * yield) comes after its value was handed over: it says nothing about
 * the value either. */
AIOC_API AIOC_NODISCARD int aioc_gen_yield(aioc_gen *g, void *value,
                                           void **sent);

/* Inside the body: sets the value the generator returns at its end (what
 * Python's `return value` gives as StopIteration.value, or `yield from`
 * evaluates to), and returns 0, so that `return aioc_gen_return(g, v);`
 * ends the body with it. The generator owns the value until
 * aioc_gen_result() takes it; a second call replaces it (the first goes to
 * return_free). If the body ends with an error (or cancelled) instead of
 * 0, or nobody takes the value before aioc_gen_free(), it goes to the
 * return_free of the options (forgotten if there is none). -EINVAL if not
 * called from g's own body (value stays the caller's). */
AIOC_API int aioc_gen_return(aioc_gen *g, void *value);

/* After the end (aioc_gen_next() returned AIOC_EXHAUSTED, or
 * aioc_gen_close() ended it): the value the body returned with
 * aioc_gen_return(). Does not wait; from a task or plain code. Returns 0
 * with *value (NULL when the body set none; the caller owns it from then
 * on, and later calls give NULL), the body's error code when it ended
 * with one (-ECANCELED if it was cancelled; *value NULL), AIOC_ESTATE when
 * the body has not ended yet, -EINVAL (g or value NULL). */
AIOC_API AIOC_NODISCARD int aioc_gen_result(aioc_gen *g, void **value);

/* Non-zero once the body has ended (or was closed before it started). */
AIOC_API int aioc_gen_is_finished(const aioc_gen *g);

/* ---- The iterator interface --------------------------------------------- */

typedef struct aioc_iter aioc_iter;

/* What an iterator is made of. next() is a suspension point with the
 * contract of aioc_iter_next(); close() may wait and must make the source
 * release what it holds; free() releases the object (after close). */
typedef struct aioc_iter_vtable {
  int (*next)(void *self, void **item, double timeout);
  int (*close)(void *self);
  void (*free)(void *self);
} aioc_iter_vtable;

/* Wraps any source into an iterator; the iterator owns self and calls
 * vt->free(self) when freed. Returns 0, -EINVAL or -ENOMEM. */
AIOC_API AIOC_NODISCARD int
aioc_iter_new(aioc_iter **out, const aioc_iter_vtable *vt, void *self);

/* Suspension point: the next item within timeout seconds (AIOC_FOREVER: no
 * limit). Returns 0 with *item, AIOC_EXHAUSTED at the end (and after it),
 * -ETIMEDOUT (nothing lost: the next call waits for the same item), an
 * error of the source, -ECANCELED, -EINVAL. */
AIOC_API AIOC_NODISCARD int aioc_iter_next(aioc_iter *it, void **item,
                                           double timeout);

/* Closes the iterator and its sources (may wait for their cleanup); later
 * next() calls return AIOC_EXHAUSTED. Returns 0 or the first error of a
 * source's close. */
AIOC_API int aioc_iter_close(aioc_iter *it);

/* Closes (if not closed) and frees the iterator. NULL is harmless. */
AIOC_API void aioc_iter_free(aioc_iter *it);

/* Sets how to destroy an item of it that a helper drew from it but cannot
 * deliver: the incomplete tuple of aioc_iter_zip() at the end, items the
 * pumps of aioc_iter_merge() or a partial chunk of aioc_iter_chunks() hold
 * when closed. NULL (the default): such items are dropped. An iterator
 * over a generator starts with the generator's item_free. A NULL it is
 * harmless. */
AIOC_API void aioc_iter_set_item_free(aioc_iter *it, aioc_free_fn fn);

/* Iterator over a generator; the iterator takes ownership of g. */
AIOC_API AIOC_NODISCARD int aioc_gen_iter(aioc_iter **out, aioc_gen *g);

/* Iterator over an as_completed; takes ownership of ac. Items are the
 * completed futures (borrowed from the as_completed). */
AIOC_API AIOC_NODISCARD int aioc_as_completed_iter(aioc_iter **out,
                                                   aioc_as_completed *ac);

/* ---- A timeout between items (an AsyncTimedIterable) ---------------------- */

/* Limits of aioc_iter_timed(). A field of 0 (as in a zero-initialised
 * struct) or AIOC_FOREVER means no limit, so {.between = 0.2} limits only
 * the time between items. */
typedef struct aioc_timed_options {
  double first;   /* time to the first item */
  double between; /* time from one item to the next */
  double total;   /* time for the whole stream */
} aioc_timed_options;

/* Wraps src (taking ownership) so that every next() applies the limits:
 * the earliest of "first" (before the first item), "between" (after each
 * item) and "total" (since the first next()). An expired limit returns
 * -ETIMEDOUT and leaves the source in place: a later next() gets a fresh
 * "first"/"between" window and may still get the item. Once "total"
 * expired, every next() returns -ETIMEDOUT. The timeout argument of next()
 * applies on top. Times are loop time. Returns 0, -EINVAL (NULL, negative
 * or NaN limits) or -ENOMEM; on failure the caller keeps src. */
AIOC_API AIOC_NODISCARD int aioc_iter_timed(aioc_iter **out, aioc_iter *src,
                                            const aioc_timed_options *opts);

/* ---- Helpers (the comprehensions) ----------------------------------------
 *
 * Each takes ownership of its source iterator(s) when it succeeds (on
 * failure the caller keeps them), is lazy (pulls only when asked), passes
 * the timeout of next() on, and closes its sources when closed. Callbacks
 * run in the consumer's task and may wait. */

/* Items transformed by fn: 0 with *out, or a negative code that ends the
 * iteration with that error (later calls: AIOC_EXHAUSTED). */
typedef int (*aioc_map_fn)(void *arg, void *item, void **out);
AIOC_API AIOC_NODISCARD int aioc_iter_map(aioc_iter **out, aioc_iter *src,
                                          aioc_map_fn fn, void *arg);

/* Items for which pred returns 1 (0: skip, negative: an error that ends the
 * iteration). Skipped items, and the one pred failed on, are passed to
 * drop (may be NULL). */
typedef int (*aioc_pred_fn)(void *arg, void *item);
AIOC_API AIOC_NODISCARD int aioc_iter_filter(aioc_iter **out, aioc_iter *src,
                                             aioc_pred_fn pred, void *arg,
                                             aioc_free_fn drop);

/* At most n items, then AIOC_EXHAUSTED (the source is closed then). */
AIOC_API AIOC_NODISCARD int aioc_iter_take(aioc_iter **out, aioc_iter *src,
                                           size_t n);

/* Items paired with their index: each item is an aioc_indexed valid until
 * the next call. */
typedef struct aioc_indexed {
  size_t index;
  void *item;
} aioc_indexed;
AIOC_API AIOC_NODISCARD int aioc_iter_enumerate(aioc_iter **out,
                                                aioc_iter *src);

/* The sources one after the other. Takes ownership of srcs[0..n). */
AIOC_API AIOC_NODISCARD int aioc_iter_chain(aioc_iter **out,
                                            aioc_iter *const *srcs, size_t n);

/* Tuples: each item is an array of n items (valid until the next call),
 * one from every source; ends as soon as any source ends (items already
 * drawn for that last tuple go to their sources' item destructors, see
 * aioc_iter_set_item_free()). */
AIOC_API AIOC_NODISCARD int aioc_iter_zip(aioc_iter **out,
                                          aioc_iter *const *srcs, size_t n);

/* Items from every source as they arrive (each source is pumped by its own
 * task that holds at most one item); ends when all sources ended, or with
 * the first error. Items held by the pumps when it is closed go to their
 * sources' item destructors (aioc_iter_set_item_free()). */
AIOC_API AIOC_NODISCARD int aioc_iter_merge(aioc_iter **out,
                                            aioc_iter *const *srcs, size_t n);

/* Chunks of up to max_items items, a chunk ending early when max_seconds
 * have passed since its first item (AIOC_FOREVER: no time limit). Each
 * item is an aioc_chunk valid until the next call. */
typedef struct aioc_chunk {
  size_t n;
  void **items;
} aioc_chunk;
AIOC_API AIOC_NODISCARD int aioc_iter_chunks(aioc_iter **out, aioc_iter *src,
                                             size_t max_items,
                                             double max_seconds);

/* Suspension point: drains it into a new array (*items, *n items; free
 * the array with aioc_mem_free(), the items as their source says) within
 * timeout for the whole collection. Does not free it. Returns 0, or the
 * error that stopped it, -ENOMEM included (the items gathered so far are
 * still returned; an item drawn when the array could not grow goes to
 * the iterator's item destructor). */
AIOC_API AIOC_NODISCARD int aioc_iter_collect(aioc_iter *it, void ***items,
                                              size_t *n, double timeout);

/* ---- Async context managers --------------------------------------------- */

/* The enter/exit protocol. enter() may wait and binds the object; exit()
 * may wait, receives the code the body ended with (0 when none) and
 * returns: 0 to let that code propagate, 1 to suppress it, or a negative
 * code of its own. exit() always runs: after success, error or
 * cancellation, inside a shielded region with its own grace deadline. */
typedef struct aioc_cm_vtable {
  int (*enter)(void *self, void **bound);
  int (*exit)(void *self, int body_rc);
} aioc_cm_vtable;

typedef struct aioc_cm {
  const aioc_cm_vtable *vt;
  void *self;
  double exit_grace; /* seconds for exit (0: 5 s) */
} aioc_cm;

/* The scoped form: enters cm, runs body(arg, bound), exits cm with the
 * body's code, and returns the body's code, 0 if exit suppressed it, or
 * enter's error (the body and exit then do not run). When exit fails
 * while the body had failed, both are reported: the body's code is
 * returned and exit's failure is in *exit_rc (may be NULL). Works inside a
 * task and from plain code (the loop runs underneath). */
AIOC_API AIOC_NODISCARD int aioc_with(const aioc_cm *cm,
                                      int (*body)(void *arg, void *bound),
                                      void *arg, int *exit_rc);

/* An asynccontextmanager from a generator: setup, yield the object once,
 * teardown. The body's code arrives at the yield (0 on success, the error
 * otherwise: aioc_gen_yield returns it); returning 0 from the generator
 * after an error suppresses nothing unless it calls aioc_cm_suppress()
 * first. Fills *cm; free its state with aioc_gen_cm_free() after use. */
AIOC_API AIOC_NODISCARD int aioc_gen_cm(aioc_cm *cm, aioc_gen_fn fn, void *arg);
AIOC_API void aioc_gen_cm_free(aioc_cm *cm);

/* Inside a generator used by aioc_gen_cm(): suppress the error that
 * arrived at the yield. */
AIOC_API void aioc_cm_suppress(aioc_gen *g);

/* An exit stack (AsyncExitStack): managers entered one by one are exited
 * in reverse order, each seeing the code the previous exits left. Like
 * aioc_with(), usable inside a task and from plain code. */
typedef struct aioc_exit_stack aioc_exit_stack;
AIOC_API AIOC_NODISCARD int aioc_exit_stack_new(aioc_exit_stack **out);
/* Enters cm and pushes it; *bound (may be NULL) receives enter's object.
 * On failure nothing is pushed and enter's code is returned. */
AIOC_API AIOC_NODISCARD int
aioc_exit_stack_enter(aioc_exit_stack *s, const aioc_cm *cm, void **bound);
/* Exits every manager in reverse order with body_rc; returns the final
 * code (0 if suppressed). The stack is empty afterwards. */
AIOC_API int aioc_exit_stack_close(aioc_exit_stack *s, int body_rc);
/* Closes with 0 if not empty, then frees. NULL is harmless. */
AIOC_API void aioc_exit_stack_free(aioc_exit_stack *s);

#ifdef __cplusplus
}
#endif
#endif /* AIOC_GEN_H */
