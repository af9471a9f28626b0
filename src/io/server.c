/* Servers: a task per listening socket accepts (edge-triggered: it accepts
 * until EAGAIN, then waits for the poller), and a task per connection runs
 * the handler. Every connection is linked on its server until its task
 * ends, however it ends (a waiter on the task's future cleans up, even for
 * a task cancelled before it ran), so the server can cancel them and wait
 * for them. The server's memory lives until its acceptors and connections
 * have let go. */
#include <netinet/in.h>
#include <string.h>
#include <unistd.h>

#include "io.h"

#define MAX_LISTEN 2
#define BACKOFF_MIN 0.01
#define BACKOFF_MAX 1.0
#define CLOSE_GRACE 5.0

struct aioc_server {
  aioc_loop *loop;
  int fds[MAX_LISTEN]; /* listening sockets, -1 once closed */
  aioc__iofd *io[MAX_LISTEN];
  struct acceptor {
    aioc__waiter w;        /* on the task's future: its end */
    aioc_server *srv;
    aioc_task *task;       /* until it ends (borrowed) */
  } acc[MAX_LISTEN];
  size_t nfd;
  size_t nacceptors;
  aioc_conn_fn fn;
  void *arg;
  aioc_stream_options sopts;
  aioc__list conns;
  size_t nconns;
  aioc__list closers; /* tasks in aioc_server_wait_closed */
  uint32_t refs;      /* the user's, each acceptor's, each connection's */
  int port;
  aioc__server_prep_fn prep; /* before each handler (TLS), or NULL */
  void *prep_ctx;
  void (*prep_free)(void *);
  bool closed;
  bool freed;
  AIOC__ARMOR_FIELD
};

#define SERVER_OK(s, fn) AIOC__ARMOR_OK(s, AIOC__MAGIC_SERVER, fn, "server")

typedef struct conn {
  aioc__list link;  /* in srv->conns */
  aioc__waiter w;   /* on the task's future: cleanup when it ends */
  aioc_server *srv;
  aioc_task *task;  /* borrowed: the loop owns it until it ends */
  aioc_stream *stream; /* NULL once the handler freed it */
} conn;


static void unref(aioc_server *srv) {
  if (--srv->refs) return;
  aioc_loop *loop = srv->loop;
  if (srv->prep_free) srv->prep_free(srv->prep_ctx);
  AIOC__ARMOR_SET(srv, AIOC__MAGIC_DEAD);
  aioc__free(srv);
  aioc__loop_unref(loop);
}

static void notify_closers(aioc_server *srv) {
  if (!srv->closed || srv->nconns || srv->nacceptors) return;
  aioc__lwait_wake_all(&srv->closers, 0);
}

/* ---- connections ---- */

static int conn_main(void *arg, void **result) {
  (void)result;
  conn *c = arg;
  if (c->srv->prep && c->srv->prep(c->srv->prep_ctx, c->stream) < 0)
    return AIOC_NORESULT; /* dropped quietly: the server's end frees it */
  int rc = c->srv->fn(c->srv->arg, c->stream);
  aioc_stream *s = c->stream;
  if (s && !aioc__stream_is_iter_owned(s) && !aioc_stream_is_closing(s) &&
      !aioc_task_cancelling(c->task)) {
    /* What the handler wrote still goes out, for a while. */
    aioc_stream_close(s);
    AIOC__IGNORE(aioc_stream_wait_closed(s, CLOSE_GRACE));
  }
  return rc;
}

/* The task ended (ran, failed, was cancelled, maybe before it started,
 * or its loop closed under it). */
static void conn_done(aioc__waiter *w, aioc_future *f) {
  (void)f;
  conn *c = aioc__container_of(w, conn, w);
  aioc_server *srv = c->srv;
  if (c->stream && !aioc__stream_is_iter_owned(c->stream))
    aioc_stream_free(c->stream);
  aioc__list_del(&c->link);
  srv->nconns--;
  aioc__free(c);
  notify_closers(srv);
  unref(srv);
}

/* Serves a new connection; closes fd if it cannot. Returns 0 or
 * -ENOMEM. */
static int start_conn(aioc_server *srv, int fd) {
  conn *c = aioc__calloc(1, sizeof *c);
  if (!c) {
    close(fd);
    return -ENOMEM;
  }
  int rc = aioc__stream_new(&c->stream, srv->loop, fd, &srv->sopts);
  if (rc < 0) {
    close(fd);
    aioc__free(c);
    return rc;
  }
  aioc_task *t;
  rc = aioc_spawn_ex(&t, srv->loop, conn_main, c, NULL);
  if (rc < 0) {
    aioc_stream_free(c->stream);
    aioc__free(c);
    return rc;
  }
  c->srv = srv;
  c->task = t;
  aioc__stream_set_conn(c->stream, (void **)&c->stream);
  c->w.notify = conn_done;
  aioc__future_add_waiter(aioc_task_future(t), &c->w);
  aioc_task_unref(t);
  aioc__list_push_back(&srv->conns, &c->link);
  srv->nconns++;
  srv->refs++;
  return 0;
}

void aioc__server_set_prep(aioc_server *srv, aioc__server_prep_fn fn,
                           void *ctx, void (*ctx_free)(void *)) {
  srv->prep = fn;
  srv->prep_ctx = ctx;
  srv->prep_free = ctx_free;
}

/* ---- accepting ---- */

static int acceptor_main(void *arg, void **result) {
  (void)result;
  aioc_server *srv = arg;
  aioc_task *t = aioc__current();
  size_t i = 0;
  while (i < srv->nfd && srv->acc[i].task != t) i++;
  double backoff = 0;
  unsigned burst = 0;
  int rc = 0;
  while (rc == 0 && !srv->closed && srv->io[i]) {
    int fd = accept4(srv->fds[i], NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      if (start_conn(srv, fd) == 0) {
        backoff = 0;
      } else {
        rc = aioc_sleep(backoff = BACKOFF_MIN);
        continue;
      }
      /* Let the new connections run now and then during a burst. */
      if (++burst % 64 == 0) rc = aioc_yield();
      continue;
    }
    switch (errno) {
    case EINTR:
    case ECONNABORTED:
    case EPROTO:
      continue;
    case EAGAIN:
#if EWOULDBLOCK != EAGAIN
    case EWOULDBLOCK:
#endif
      srv->io[i]->ready &= ~(uint32_t)EPOLLIN;
      rc = aioc__iofd_wait(srv->io[i], t, AIOC__RD, AIOC__NEVER);
      break;
    case EMFILE:
    case ENFILE:
    case ENOBUFS:
    case ENOMEM:
      /* No fd (or memory) for now: the connection waits in the backlog
       * and no edge will come for it, so try again later, backing off. */
      backoff = backoff ? backoff * 2 : BACKOFF_MIN;
      if (backoff > BACKOFF_MAX) backoff = BACKOFF_MAX;
      rc = aioc_sleep(backoff);
      break;
    default:
      rc = -errno; /* the socket is gone */
      break;
    }
  }
  return AIOC_NORESULT; /* the server's end is not a failure */
}

/* An acceptor ended (or was cancelled before it ran). */
static void acceptor_done(aioc__waiter *w, aioc_future *f) {
  (void)f;
  struct acceptor *a = aioc__container_of(w, struct acceptor, w);
  aioc_server *srv = a->srv;
  a->task = NULL;
  srv->nacceptors--;
  notify_closers(srv);
  unref(srv);
}

static bool listen_event(aioc__iofd *io, uint32_t events) {
  (void)io;
  (void)events;
  return true;
}

static void listen_dropped(aioc__iofd *io) {
  aioc_server *srv = io->owner;
  for (size_t i = 0; i < srv->nfd; i++)
    if (srv->io[i] == io) srv->io[i] = NULL;
}

static const aioc__iofd_ops listen_ops = {listen_event, listen_dropped};

/* ---- starting ---- */

static int listen_on(aioc_server *srv, const struct sockaddr *sa,
                     socklen_t len, const aioc_server_options *o) {
  int fd = aioc__socket(sa->sa_family);
  if (fd < 0) return fd;
  int one = 1;
  if (sa->sa_family != AF_UNIX) {
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (sa->sa_family == AF_INET6)
      setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  }
  int rc = 0;
  if (o && o->reuse_port &&
      setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)
    rc = -errno;
  if (rc == 0 && bind(fd, sa, len) < 0) rc = -errno;
  if (rc == 0 && listen(fd, o && o->backlog ? o->backlog : 511) < 0)
    rc = -errno;
  aioc__iofd *io = NULL;
  if (rc == 0) rc = aioc__iofd_get(srv->loop, fd, &io);
  if (rc < 0) {
    close(fd);
    return rc;
  }
  io->ops = &listen_ops;
  io->owner = srv;
  srv->fds[srv->nfd] = fd;
  srv->io[srv->nfd] = io;
  if (srv->nfd == 0 && sa->sa_family != AF_UNIX) {
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
      srv->port = ntohs(ss.ss_family == AF_INET
                            ? ((struct sockaddr_in *)&ss)->sin_port
                            : ((struct sockaddr_in6 *)&ss)->sin6_port);
  }
  srv->nfd++;
  return 0;
}

static void close_listeners(aioc_server *srv) {
  for (size_t i = 0; i < srv->nfd; i++) {
    if (srv->io[i]) {
      /* The acceptor waiting on it wakes with AIOC_ECLOSED. */
      aioc__iofd_release(srv->io[i], AIOC_ECLOSED);
      srv->io[i] = NULL;
    }
    if (srv->fds[i] >= 0) {
      close(srv->fds[i]);
      srv->fds[i] = -1;
    }
  }
}

static int start(aioc_server **out, aioc__addrs *a, aioc_conn_fn fn,
                 void *arg, const aioc_server_options *o) {
  aioc_loop *loop = aioc__io_loop();
  if (!loop) return -ENOMEM;
  if (loop->closed) return AIOC_ECLOSED;
  aioc_server *srv = aioc__calloc(1, sizeof *srv);
  if (!srv) return -ENOMEM;
  srv->loop = loop;
  aioc__loop_ref(loop);
  srv->refs = 1;
  srv->fn = fn;
  srv->arg = arg;
  srv->port = -ENOTSOCK;
  if (o) srv->sopts = o->stream;
  aioc__list_init(&srv->conns);
  aioc__list_init(&srv->closers);
  AIOC__ARMOR_SET(srv, AIOC__MAGIC_SERVER);
  for (size_t i = 0; i < MAX_LISTEN; i++) srv->fds[i] = -1;
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < a->n && i < MAX_LISTEN; i++) {
    int port = srv->port;
    /* Every socket of "any address" on the port the first one got. */
    if (i > 0 && port > 0) {
      if (a->v[i].ss_family == AF_INET)
        ((struct sockaddr_in *)&a->v[i])->sin_port = htons((uint16_t)port);
      else if (a->v[i].ss_family == AF_INET6)
        ((struct sockaddr_in6 *)&a->v[i])->sin6_port = htons((uint16_t)port);
    }
    rc = listen_on(srv, (struct sockaddr *)&a->v[i], a->len[i], o);
    /* A machine without IPv6 still serves IPv4. */
    if (rc == -EAFNOSUPPORT && i > 0) rc = 0;
  }
  for (size_t i = 0; rc == 0 && i < srv->nfd; i++) {
    aioc_task *t;
    rc = aioc_spawn_ex(&t, loop, acceptor_main, srv, NULL);
    if (rc == 0) {
      srv->acc[i].srv = srv;
      srv->acc[i].task = t;
      srv->acc[i].w.notify = acceptor_done;
      srv->nacceptors++;
      srv->refs++;
      aioc__future_add_waiter(aioc_task_future(t), &srv->acc[i].w);
      aioc_task_unref(t);
    }
  }
  if (rc < 0) {
    aioc_server_free(srv);
    return rc;
  }
  *out = srv;
  return 0;
}

int aioc_start_server(aioc_server **out, const char *host, int port,
                      aioc_conn_fn fn, void *arg,
                      const aioc_server_options *opts) {
  if (!out) return -EINVAL;
  *out = NULL;
  if (!fn) return -EINVAL;
  aioc__addrs a;
  int rc = aioc__resolve(host, port, true, &a);
  if (rc < 0) return rc;
  rc = start(out, &a, fn, arg, opts);
  aioc__addrs_free(&a);
  return rc;
}

int aioc_start_unix_server(aioc_server **out, const char *path,
                           aioc_conn_fn fn, void *arg,
                           const aioc_server_options *opts) {
  if (!out) return -EINVAL;
  *out = NULL;
  if (!fn) return -EINVAL;
  struct sockaddr_storage ss;
  socklen_t len;
  int rc = aioc__unix_addr(path, &ss, &len);
  if (rc < 0) return rc;
  aioc__addrs a = {.v = &ss, .len = &len, .n = 1};
  return start(out, &a, fn, arg, opts);
}

/* ---- queries, closing ---- */

int aioc_server_port(const aioc_server *srv) {
  if (!srv || !SERVER_OK(srv, "aioc_server_port")) return -EINVAL;
  return srv->port;
}

size_t aioc_server_connections(const aioc_server *srv) {
  return srv && SERVER_OK(srv, "aioc_server_connections") ? srv->nconns : 0;
}

int aioc_server_close(aioc_server *srv) {
  if (!srv || !SERVER_OK(srv, "aioc_server_close")) return -EINVAL;
  if (srv->closed) return AIOC_ECLOSED;
  srv->closed = true;
  close_listeners(srv);
  /* An acceptor not yet started sees closed and ends at once. */
  notify_closers(srv);
  return 0;
}

int aioc_server_cancel_connections(aioc_server *srv) {
  if (!srv || !SERVER_OK(srv, "aioc_server_cancel_connections")) return -EINVAL;
  int n = 0;
  aioc__list_each(l, &srv->conns) {
    conn *c = aioc__container_of(l, conn, link);
    /* Cancelling may end a task that never ran, unlinking c now. */
    if (aioc_task_cancel(c->task, "server closed") > 0) n++;
  }
  return n;
}

int aioc_server_wait_closed(aioc_server *srv, double timeout) {
  if (!srv || aioc__io_bad_timeout(timeout) ||
      !SERVER_OK(srv, "aioc_server_wait_closed"))
    return -EINVAL;
  if (!srv->closed) return AIOC_ESTATE;
  if (!srv->nconns && !srv->nacceptors) return 0;
  aioc_task *t = aioc__current();
  if (!t) return AIOC_ENOTASK;
  srv->refs++;
  int rc = aioc__lwait_park(&srv->closers, t,
                            aioc__io_deadline(srv->loop, timeout));
  unref(srv);
  return rc;
}

void aioc_server_free(aioc_server *srv) {
  if (!srv || !SERVER_OK(srv, "aioc_server_free") || srv->freed) return;
  srv->freed = true;
  if (!srv->closed) aioc_server_close(srv);
  AIOC__IGNORE(aioc_server_cancel_connections(srv));
  for (size_t i = 0; i < srv->nfd; i++)
    if (srv->acc[i].task) aioc_task_cancel(srv->acc[i].task, NULL);
  unref(srv);
}
