/* Error names and messages, generated from one list. */
#include <string.h>

#include "common.h"

#define AIOC_SYS_ERRORS(X)                                                     \
  X(EPERM) X(ENOENT) X(EINTR) X(EIO) X(EBADF) X(EAGAIN) X(ENOMEM) X(EACCES)   \
  X(EFAULT) X(EBUSY) X(EEXIST) X(EINVAL) X(EMFILE) X(ENOSPC) X(EPIPE)          \
  X(ERANGE) X(EDEADLK) X(ENOSYS) X(ENOTSUP) X(ECANCELED) X(ETIMEDOUT)          \
  X(ECONNRESET) X(ECONNREFUSED) X(EALREADY) X(EINPROGRESS) X(ENOTCONN)         \
  X(EADDRINUSE) X(EHOSTUNREACH) X(ENETUNREACH) X(EMSGSIZE) X(EOVERFLOW)        \
  X(EPROTO) X(ENODATA) X(ESHUTDOWN) X(ECONNABORTED) X(ENOTSOCK)               \
  X(EAFNOSUPPORT) X(ENAMETOOLONG) X(ENFILE) X(ELOOP)

unsigned aioc_version(void) { return AIOC_VERSION_HEX; }

static __thread char plain_msg[AIOC__PLAIN_MSG_MAX];
static __thread bool plain_has;

void aioc__plain_error_set(const char *msg) {
  plain_has = msg != NULL;
  if (!msg) return;
  size_t n = strlen(msg);
  if (n >= sizeof plain_msg) n = sizeof plain_msg - 1;
  memcpy(plain_msg, msg, n);
  plain_msg[n] = 0;
}

const char *aioc__plain_error_get(void) {
  return plain_has ? plain_msg : NULL;
}

#define AIOC__STR2(x) #x
#define AIOC__STR(x) AIOC__STR2(x)
const char *aioc_version_string(void) {
  return AIOC__STR(AIOC_VERSION_MAJOR) "." AIOC__STR(
      AIOC_VERSION_MINOR) "." AIOC__STR(AIOC_VERSION_PATCH);
}

const char *aioc_strerror(int code) {
  switch (code) {
  case 0: return "success";
  case AIOC_EXHAUSTED:
    return "iterator exhausted (not an error)";
  case AIOC_NORESULT:
    return "no result (not an error)";
  /* libc's text speaks of sockets only; queues, streams and pools shut
   * down too. */
  case -ESHUTDOWN:
    return "shut down";
#define AIOC__MSG(name, val, msg)                                              \
  case val: return msg;
    AIOC_ERRNO_MAP(AIOC__MSG)
#undef AIOC__MSG
  default: break;
  }
  if (code < 0 && code > -4000) return strerror(-code);
  return "unknown error";
}

const char *aioc_err_name(int code) {
  switch (code) {
  case 0: return "OK";
  case AIOC_EXHAUSTED:
    return "AIOC_EXHAUSTED";
  case AIOC_NORESULT:
    return "AIOC_NORESULT";
#define AIOC__NAME(name, val, msg)                                             \
  case val: return "AIOC_" #name;
    AIOC_ERRNO_MAP(AIOC__NAME)
#undef AIOC__NAME
#define AIOC__SYS(name)                                                        \
  case -name: return #name;
    AIOC_SYS_ERRORS(AIOC__SYS)
#undef AIOC__SYS
  default: return "UNKNOWN";
  }
}
