/* aioc/signal.h: Unix signals on the loop (signalfd), and a graceful
 * shutdown on SIGINT and SIGTERM.
 *
 * A handler receives its signals on the loop's thread, from the loop: as
 * calls of a callback, or as the items of an iterator. Never in signal
 * handler context, so a handler may call anything.
 *
 * How it works, and what it asks of the program:
 *
 * - Adding a handler blocks its signals in the calling thread
 *   (pthread_sigmask) and reads them from a signalfd that the loop polls.
 *   The signals' dispositions (sigaction) are left as they are. A signal
 *   that arrives while the loop is busy (a task computing, a callback
 *   running) stays pending in the kernel until the loop polls: it is not
 *   lost. When the last handler of a signal on this thread is removed,
 *   the signal is unblocked again if it was not blocked before, and its
 *   previous disposition applies again (one still pending is delivered to
 *   it then).
 * - Add and remove handlers on the thread that runs the loop; the signal
 *   mask is per thread.
 * - Multi-threaded programs: the kernel delivers a process-directed signal
 *   (kill(), Ctrl-C, a service manager's SIGTERM) to any thread that does
 *   not block it, where its disposition applies and the loop never sees
 *   it. So the signals must be blocked in every thread: add the handlers
 *   (or block the signals with pthread_sigmask()) in the main thread
 *   before creating other threads, which inherit the mask. A
 *   thread-directed signal (raise(), pthread_kill()) reaches a loop only
 *   when sent to the loop's own thread.
 * - Several handlers of one signal on one loop all receive it. Several
 *   loops (one per thread) should not handle the same signal: a
 *   process-directed signal is read by one of them only, whichever polls
 *   first.
 * - Coalescing: the kernel keeps one pending instance of a standard
 *   signal (1 to 31), so a signal sent several times before the loop
 *   reads it is delivered once; real-time signals (SIGRTMIN to SIGRTMAX)
 *   are queued, and a callback is called once for each. An iterator holds
 *   each signal number at most once: a signal that arrives again before
 *   the consumer took it is coalesced with it.
 * - Accepted: 1 to 31 except SIGKILL and SIGSTOP (they cannot be blocked)
 *   and the fault signals SIGSEGV, SIGBUS, SIGFPE, SIGILL and SIGTRAP
 *   (raised by the faulting instruction itself, they cannot wait for the
 *   loop), and SIGRTMIN to SIGRTMAX. */
#ifndef AIOC_SIGNAL_H
#define AIOC_SIGNAL_H

#include "gen.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct aioc_signal aioc_signal;

/* A signal callback: runs on the loop's thread, from the loop, once per
 * signal read (see the coalescing rule above). It may remove or free any
 * handler, its own included. */
typedef void (*aioc_signal_fn)(void *arg, int signum);

/* Calls fn(arg, signum) from loop (NULL: the thread's current loop)
 * whenever one of the n signals of signums arrives, until the handler is
 * closed or freed. Call it on the loop's thread (see above). The caller
 * owns the handler: free it with aioc_signal_free(). Returns 0, -EINVAL
 * (signums NULL, n 0, fn NULL, or a signal that cannot be handled: see
 * above), -ENOMEM, AIOC_ECLOSED, or signalfd()'s or the
 * poller's error (-EMFILE...). Nothing is blocked on failure. */
AIOC_API AIOC_NODISCARD int aioc_signal_add(aioc_signal **out, aioc_loop *loop,
                                            const int *signums, size_t n,
                                            aioc_signal_fn fn, void *arg);

/* The n signals of signums as an iterator (include/aioc/gen.h) on loop
 * (NULL: the thread's current loop), so that the per-item timeout and the
 * helpers apply: next() waits for the next signal and gives its number
 * (AIOC_TO_INT(item)), in the order the loop read them (the kernel gives
 * signals pending together lowest number first), each number at most once
 * until taken (above). next() returns 0, -ETIMEDOUT, -ECANCELED,
 * -EBUSY (another consumer waits), AIOC_ERUNNING (in a callback of the
 * running loop, with nothing to give), and AIOC_EXHAUSTED once the
 * iterator was closed or its loop closed and no signal is left; from
 * plain code it runs the loop until a signal arrives. Closing the
 * iterator removes the handler. Returns 0, or the codes of
 * aioc_signal_add() (fn aside). */
AIOC_API AIOC_NODISCARD int aioc_signal_iter(aioc_iter **out, aioc_loop *loop,
                                             const int *signums, size_t n);

/* Removes the handler: no signal reaches it any more, and the signals no
 * other handler of this thread takes get back their previous blocked
 * state (and so their disposition). Call it on the loop's thread. It may
 * be called from a signal callback (for any handler). Returns 0, or
 * AIOC_ECLOSED if it was already closed (by this call or by its loop's
 * close), -EINVAL for NULL. */
AIOC_API int aioc_signal_close(aioc_signal *s);

/* Closes the handler (as aioc_signal_close()) and frees it; from a signal
 * callback too. NULL is harmless. */
AIOC_API void aioc_signal_free(aioc_signal *s);

/* The asyncio.run() of a program that must stop cleanly on SIGINT and
 * SIGTERM: runs main as aioc_run_ex() does, with both signals handled on
 * its loop while main runs. The first of them cancels main (with the
 * message "SIGINT received" or "SIGTERM received"), so its waits return
 * -ECANCELED and its cleanup runs (a shielded region, see task.h, lets
 * cleanup wait); a second one during that cleanup ends the process at
 * once, as aioc_signal_exit() does. Then the tasks left are cancelled and
 * given opts->shutdown_timeout to finish, as aioc_run_ex() does. *signum
 * (if not NULL) is set to the signal that asked for the shutdown, or 0.
 * Returns what aioc_run_ex() returns (main's code; -ECANCELED when main
 * ended on the cancellation), or an error of aioc_signal_add() before main
 * ran. The usual end of main():
 *
 *   int sig, rc = aioc_run_graceful(serve, NULL, NULL, &sig, NULL);
 *   if (sig) aioc_signal_exit(sig);   // the status of a death by sig
 *   return rc < 0;
 *
 * The rules above apply: call it before creating threads (or block SIGINT
 * and SIGTERM in every thread). */
AIOC_API AIOC_NODISCARD int aioc_run_graceful(aioc_fn main, void *arg,
                                              void **result, int *signum,
                                              const aioc_run_options *opts);

/* Ends the process as signum would with its default action, so that its
 * parent sees the right status (a shell prints 128 + signum; waitpid()
 * gives WIFSIGNALED): flushes stdio, restores the default disposition,
 * unblocks signum and raises it; for a signal whose default action is
 * not to terminate, or an invalid one, exits with status 128 + signum
 * instead. Does not return. */
AIOC_API void aioc_signal_exit(int signum) __attribute__((noreturn));

#ifdef __cplusplus
}
#endif
#endif /* AIOC_SIGNAL_H */
