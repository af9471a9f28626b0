/* aioc/process.h: subprocesses: spawn a program with its standard streams
 * as aioc streams (or inherited, or /dev/null), wait for its exit status,
 * send it signals, communicate() with it.
 *
 * Part of the public API; include <aioc.h> rather than this file, and
 * <signal.h> for the signal numbers.
 *
 * Conventions of this part (those of io.h):
 *
 *  - Every waiting call is a suspension point with a timeout in seconds as
 *    its last argument (AIOC_FOREVER: no limit; 0: do not wait; negative
 *    or NaN: -EINVAL). It honours the task's cancellation (-ECANCELED) and
 *    the deadlines in scope (-ETIMEDOUT), and returns -ENOMEM without
 *    waiting when the timer of a finite timeout cannot be armed. A call
 *    that can complete at once does so without suspending, also outside a
 *    task; one that must wait needs a task (AIOC_ENOTASK otherwise; with a
 *    timeout of 0, -ETIMEDOUT). A wait that times out or is cancelled
 *    leaves the child running.
 *  - The return code, as asyncio's returncode: the exit status (0 to 255)
 *    of a child that exited, or -N for a child killed by signal N (-9 for
 *    SIGKILL). It comes out through an int *, never as the call's return
 *    value (which is an error code when negative).
 *  - A program that cannot be run (missing, not executable, a bad working
 *    directory...) is an error of the spawn itself, with a message naming
 *    the program (aioc_error_message()): no child is left behind.
 *  - No zombies: every child is reaped (waited for) by the library, also
 *    one whose handle was freed while it ran, and one still running when
 *    its loop closes (a process-wide reaper thread takes it over then).
 *    Do not reap aioc's children yourself (waitpid(-1, ...), or SIGCHLD
 *    set to SIG_IGN): their status is then lost (-ECHILD).
 *  - A process belongs to the loop of the task (or the thread) that
 *    spawned it and is not thread-safe. Any number of its tasks may wait
 *    for its exit at once. */
#ifndef AIOC_PROCESS_H
#define AIOC_PROCESS_H

#include "io.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct aioc_process aioc_process;

/* What a standard stream of the child is connected to. */
typedef enum aioc_stdio {
  /* The parent's own fd 0, 1 or 2 (the default, asyncio's None). */
  AIOC_STDIO_INHERIT = 0,
  /* A pipe to the parent, read or written through an aioc_stream
   * (aioc_process_stdin(), ...). It is a connected Unix stream socket
   * pair (the stream API works on sockets): the child sees a socket. */
  AIOC_STDIO_PIPE = 1,
  /* /dev/null. */
  AIOC_STDIO_DEVNULL = 2,
  /* For stderr only: wherever stdout goes (asyncio's STDOUT). */
  AIOC_STDIO_STDOUT = 3
} aioc_stdio;

/* Options of a spawn. Zero means the default. */
typedef struct aioc_process_options {
  /* The child's stdin, stdout and stderr (0: inherited). */
  aioc_stdio in;
  aioc_stdio out;
  aioc_stdio err;
  /* The child's environment: "NAME=value" strings, NULL-terminated; NULL:
   * the parent's (environ). A program named without a '/' is looked up in
   * this environment's PATH (the parent's when env is NULL; "/bin:/usr/bin"
   * when there is none). */
  const char *const *env;
  /* The child's working directory (NULL: the parent's). A program named
   * with a relative path containing a '/' is found from there. */
  const char *cwd;
  /* Non-zero: the child starts a new session (setsid()), so that it and
   * its own children can be signalled as a group (kill(-pid, ...)) and no
   * longer get the terminal's signals (Ctrl-C). */
  int new_session;
  /* Non-zero: the child inherits the parent's fds that are not
   * close-on-exec. By default it gets only 0, 1 and 2 (asyncio's
   * close_fds=True). */
  int keep_fds;
  /* The options of the pipes' streams (limit, flow control). */
  aioc_stream_options stream;
} aioc_process_options;

/* Spawns argv[0] with the arguments argv (NULL-terminated, argv[0] the
 * program, also given to it as its name) and returns at once, without
 * waiting (asyncio's create_subprocess_exec). A program named without a
 * '/' is looked up in PATH (see env above). The child starts with no
 * signal blocked and SIGPIPE and SIGXFSZ at their default action
 * (whatever the parent blocked or ignored); other signals the parent
 * ignores stay ignored. Its pipes' streams belong to the process (see
 * aioc_process_stdin()). The process belongs to the running loop, or the
 * thread's current loop.
 *
 * Returns 0 with *out, or: -ENOENT (no such program, or cwd does not
 * exist), -EACCES (not executable, or a directory), -ENOEXEC (not a
 * format the system runs), -ENOTDIR, -E2BIG and the other errors of
 * execve() and chdir(); -EMFILE, -ENFILE (no fd left for the pipes or the
 * child's handle); -EAGAIN (too many processes); -EINVAL (out or argv
 * NULL, argv[0] NULL or empty, AIOC_STDIO_STDOUT for in or out, a mode
 * out of range); AIOC_ECLOSED (the loop is closed); -ENOMEM.
 * A failure sets the task's error message naming the program, and leaves
 * nothing behind: no child, no fd. On failure *out is NULL. */
AIOC_API AIOC_NODISCARD int
aioc_create_subprocess_exec(aioc_process **out, const char *const *argv,
                            const aioc_process_options *opts);

/* aioc_create_subprocess_exec() of "/bin/sh", "-c", cmd (asyncio's
 * create_subprocess_shell): cmd is a shell command line. A command the
 * shell cannot find is the shell's error: exit status 127, not a failure
 * of the spawn. Returns as aioc_create_subprocess_exec() (-EINVAL for cmd
 * NULL). */
AIOC_API AIOC_NODISCARD int
aioc_create_subprocess_shell(aioc_process **out, const char *cmd,
                             const aioc_process_options *opts);

/* The child's process id (> 0; still valid after it exited), or -EINVAL. */
AIOC_API int aioc_process_pid(const aioc_process *p);

/* The stream of a piped stdin (written by the parent), stdout or stderr
 * (read by the parent), or NULL when that stream is not a pipe. Borrowed:
 * the process owns it and aioc_process_free() frees it. Close stdin with
 * aioc_stream_close() to give the child its end of file; never free
 * these streams yourself. */
AIOC_API aioc_stream *aioc_process_stdin(const aioc_process *p);
AIOC_API aioc_stream *aioc_process_stdout(const aioc_process *p);
AIOC_API aioc_stream *aioc_process_stderr(const aioc_process *p);

/* Suspension point (only while the child runs): waits until the child
 * has exited and sets *returncode (see above). A child that exited before
 * anyone waited is reaped at once. The pipes are not read: a child that
 * writes more than a pipe holds to a stdout nobody reads blocks and never
 * exits (read the streams, or use aioc_process_communicate()). Returns 0;
 * -ETIMEDOUT, -ECANCELED (the child still runs); -ECHILD (the child was
 * reaped by someone else: its status is lost); AIOC_ECLOSED (the loop
 * closed, or the process was freed during the wait); AIOC_ENOTASK;
 * -EINVAL (p or returncode NULL, a bad timeout). */
AIOC_API AIOC_NODISCARD int aioc_process_wait(aioc_process *p,
                                              int *returncode,
                                              double timeout);

/* asyncio's returncode attribute, without waiting: 1 with *returncode
 * once the child has exited (reaping it now if it exited since the loop
 * last looked), 0 while it runs (*returncode untouched). Returns -ECHILD
 * (reaped by someone else), AIOC_ECLOSED (the loop closed before the
 * child's exit was seen), -EINVAL (p or returncode NULL). */
AIOC_API int aioc_process_returncode(aioc_process *p, int *returncode);

/* Sends signal signum to the child (asyncio's send_signal). Returns 0;
 * -ESRCH (the child has exited and was reaped: asyncio's
 * ProcessLookupError); -EINVAL (p NULL, signum not a signal number; 0
 * tests that the child can be signalled); AIOC_ECLOSED (the loop closed:
 * the child is no longer the handle's to signal). */
AIOC_API int aioc_process_send_signal(aioc_process *p, int signum);

/* aioc_process_send_signal() of SIGTERM and of SIGKILL. */
AIOC_API int aioc_process_terminate(aioc_process *p);
AIOC_API int aioc_process_kill(aioc_process *p);

/* Suspension point: asyncio's communicate(). Writes input (len bytes; NULL
 * with len 0 for none) to the child's stdin and closes it (the child
 * reads its end of file), while reading its stdout and stderr to their
 * ends, then waits for its exit; all within timeout for the whole call.
 * Reading both outputs while writing means no deadlock, whatever their
 * sizes.
 *
 * *out and *err (each may be NULL when not wanted; a piped output is
 * read anyway) receive the bytes read (NUL-terminated, the NUL not
 * counted in *out_len and *err_len; NULL with length 0 when that stream
 * is not a pipe), to free with aioc_mem_free(). input is ignored when
 * stdin is not a pipe. The return code is then aioc_process_returncode()'s.
 *
 * On -ETIMEDOUT or -ECANCELED the child still runs, nothing is returned,
 * and nothing is lost: what was read so far is kept, and a later call
 * returns it with the rest (the input is written once: later calls ignore
 * theirs). A child that exits without reading all its input is not an
 * error (the rest is dropped).
 *
 * Returns 0; -ETIMEDOUT; -ECANCELED; -EBUSY (another task reads one of the
 * streams); -ECHILD; the errors of aioc_stream_read(); AIOC_ECLOSED (the
 * loop closed, a stream was closed by the caller, or the process was
 * freed during the call); AIOC_ENOTASK; -EINVAL (p NULL, input NULL with
 * len > 0, out without out_len or err without err_len, a bad timeout);
 * -ENOMEM. On failure the out-pointers are NULL and 0. */
AIOC_API AIOC_NODISCARD int
aioc_process_communicate(aioc_process *p, const void *input, size_t len,
                         char **out, size_t *out_len, char **err,
                         size_t *err_len, double timeout);

/* Frees the handle and its streams (data not yet written to stdin is
 * dropped; the child reads its end of file, and gets SIGPIPE or EPIPE if
 * it writes to a pipe). A child still running keeps running (it is not
 * signalled) and is reaped when it exits, by its loop, or after the
 * loop's close by the process-wide reaper. Tasks still waiting on the
 * process return AIOC_ECLOSED; the memory goes when they have left. Safe
 * after the loop closed. NULL is harmless. */
AIOC_API void aioc_process_free(aioc_process *p);

#ifdef __cplusplus
}
#endif
#endif /* AIOC_PROCESS_H */
