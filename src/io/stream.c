/* Streams: a connected stream socket with a read buffer (for readexactly,
 * readuntil, readline) and a write buffer with flow control.
 *
 * The hot path makes only the system calls the data needs: a read tries
 * recv() first while the poller's last report says the socket may hold
 * data, and a short read (or EAGAIN) marks it dry, so the next read waits
 * for the poller's next edge without a recv() that would fail; a write
 * sends at once when nothing is buffered. The fd stays registered,
 * edge-triggered, from creation to close. Buffered writes go out from the
 * poller's callback, so no task is needed to push them.
 *
 * A transport (TLS, tls.c) may sit between the buffers and the socket
 * (io.h): the calls below then go through it where they would call
 * recv(), send() and shutdown(), and the rest stays as it is. */
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <unistd.h>

#include "io.h"

#define DEFAULT_LIMIT ((size_t)64 * 1024)
#define DEFAULT_HIGH ((size_t)64 * 1024)
#define READ_CHUNK ((size_t)16 * 1024)

struct aioc_stream {
  aioc_loop *loop;
  aioc__iofd *io; /* NULL once the socket is closed or the loop closed */
  int fd;         /* -1 once closed */
  char *rb;       /* read buffer: rlen bytes at roff */
  size_t roff, rlen, rcap;
  char *wb; /* write buffer: wlen bytes at woff */
  size_t woff, wlen, wcap;
  size_t limit, high, low;
  int rerr, werr; /* sticky errors of recv and send */
  uint32_t users; /* calls in progress that may suspend */
  bool eof;       /* the peer's end of file was read */
  bool reading;
  bool closing;   /* aioc_stream_close() or free */
  bool freed;     /* the memory goes when the last user leaves */
  bool eof_pending, eof_sent;
  bool paused; /* above the high-water mark until down to the low one */
  bool skipping; /* readline: the rest of an over-long line goes */
  bool iter_owned;
  void **conn_slot; /* the server's pointer to this stream */
  const aioc__transport_ops *tp; /* NULL: the bytes go to the socket */
  void *tpc;                     /* the transport's state */
  bool tp_shut;                  /* the transport's end was sent */
  aioc__list drainers, closers; /* waiters (aioc__lwait) */
  AIOC__ARMOR_FIELD
};

#define STREAM_OK(s, fn) AIOC__ARMOR_OK(s, AIOC__MAGIC_STREAM, fn, "stream")

/* ---- waiting on a list (drain, wait_closed) ---- */

static int park(aioc_loop *loop, aioc__list *l, aioc_task *t,
                int64_t deadline) {
  (void)loop;
  return aioc__lwait_park(l, t, deadline);
}

static void wake_all(aioc__list *l, int rc) { aioc__lwait_wake_all(l, rc); }

/* ---- lifetime ---- */

static void free_mem(aioc_stream *s) {
  aioc_loop *loop = s->loop;
  if (s->tp) s->tp->free(s->tpc);
  aioc__free(s->rb);
  aioc__free(s->wb);
  AIOC__ARMOR_SET(s, AIOC__MAGIC_DEAD);
  aioc__free(s);
  aioc__loop_unref(loop);
}

/* A call that may suspend enters and leaves; freeing the stream while
 * one is suspended (or woken, not yet resumed) defers the memory. */
static inline void enter(aioc_stream *s) { s->users++; }
static inline void leave(aioc_stream *s) {
  if (--s->users == 0 && s->freed) free_mem(s);
}

/* The socket goes: waiters of the fd return AIOC_ECLOSED, those of
 * wait_closed return 0. */
static void finish_close(aioc_stream *s) {
  if (s->io) {
    aioc__iofd_release(s->io, AIOC_ECLOSED);
    s->io = NULL;
  }
  if (s->fd >= 0) {
    close(s->fd);
    s->fd = -1;
  }
  wake_all(&s->closers, 0);
}

/* A send failed: the stream can no longer be written. */
static void broken(aioc_stream *s, int err) {
  s->werr = err;
  s->woff = s->wlen = 0;
  s->paused = false;
  wake_all(&s->drainers, err);
  if (s->closing) finish_close(s);
}

static void after_flush(aioc_stream *s) {
  if (s->paused && s->wlen <= s->low) {
    s->paused = false;
    wake_all(&s->drainers, 0);
  }
  if (s->wlen) return;
  s->woff = 0;
  if (s->tp && (s->eof_pending || s->closing)) {
    /* A transport ends its data (TLS: close_notify) before the socket's
     * end; what it holds goes out first. */
    if (!s->tp_shut) {
      s->tp_shut = true;
      int rc = s->tp->shutdown(s->tpc);
      if (rc < 0 && rc != -EAGAIN) {
        broken(s, rc);
        return;
      }
    }
    if (s->tp->pending(s->tpc)) return; /* the poller's next "writable" */
  }
  if (s->eof_pending && !s->eof_sent && s->fd >= 0) {
    s->eof_sent = true;
    shutdown(s->fd, SHUT_WR);
  }
  if (s->closing) finish_close(s);
}

/* One send of up to n bytes (n > 0), through the transport if there is
 * one: the count (> 0), -EAGAIN (full: the poller says when to go on),
 * or the error. */
static ssize_t do_send(aioc_stream *s, const void *p, size_t n) {
  if (s->tp) return s->tp->send(s->tpc, p, n);
  for (;;) {
    ssize_t r = send(s->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (r >= 0) return r;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      s->io->ready &= ~(uint32_t)EPOLLOUT;
      return -EAGAIN;
    }
    return -errno;
  }
}

/* Sends buffered data until the socket is full. */
static void flush(aioc_stream *s) {
  while (s->wlen) {
    ssize_t r = do_send(s, s->wb + s->woff, s->wlen);
    if (r > 0) {
      s->woff += (size_t)r;
      s->wlen -= (size_t)r;
    } else if (r == -EAGAIN) {
      return;
    } else {
      broken(s, (int)r);
      return;
    }
  }
  if (s->tp) { /* what the transport holds goes out too */
    int rc = s->tp->flush(s->tpc);
    if (rc == -EAGAIN) return;
    if (rc < 0) {
      broken(s, rc);
      return;
    }
  }
  after_flush(s);
}

/* Is anything waiting to go out? */
static inline bool has_output(aioc_stream *s) {
  return s->wlen || (s->tp && s->tp->pending(s->tpc));
}

static bool stream_event(aioc__iofd *io, uint32_t events) {
  aioc_stream *s = io->owner;
  if ((events & AIOC__WR_EVENTS) && has_output(s)) {
    flush(s);
    return s->io != NULL;
  }
  return true;
}

static void stream_dropped(aioc__iofd *io) {
  aioc_stream *s = io->owner;
  s->io = NULL; /* the loop closed: the fd stays until free */
}

static const aioc__iofd_ops stream_ops = {stream_event, stream_dropped};

int aioc__stream_new(aioc_stream **out, aioc_loop *loop, int fd,
                     const aioc_stream_options *o) {
  aioc_stream *s = aioc__calloc(1, sizeof *s);
  if (!s) return -ENOMEM;
  aioc__iofd *io;
  int rc = aioc__iofd_get(loop, fd, &io);
  if (rc < 0) {
    aioc__free(s);
    return rc == -EBUSY ? -EINVAL : rc;
  }
  io->ops = &stream_ops;
  io->owner = s;
  s->loop = loop;
  aioc__loop_ref(loop);
  s->io = io;
  s->fd = fd;
  s->limit = o && o->limit ? o->limit : DEFAULT_LIMIT;
  s->high = o && o->high_water ? o->high_water : DEFAULT_HIGH;
  s->low = o && o->low_water ? o->low_water : s->high / 4;
  if (s->low > s->high) s->low = s->high;
  aioc__list_init(&s->drainers);
  aioc__list_init(&s->closers);
  AIOC__ARMOR_SET(s, AIOC__MAGIC_STREAM);
  if (!(o && o->nagle)) {
    int one = 1; /* fails harmlessly on Unix sockets */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  *out = s;
  return 0;
}

int aioc_stream_from_fd(aioc_stream **out, int fd,
                        const aioc_stream_options *opts) {
  if (!out) return -EINVAL;
  *out = NULL;
  if (fd < 0) return -EINVAL;
  aioc_loop *loop = aioc__io_loop();
  if (!loop) return -ENOMEM;
  if (loop->closed) return AIOC_ECLOSED;
  int type;
  socklen_t tl = sizeof type;
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0) return -errno;
  if (type != SOCK_STREAM) return -EINVAL;
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return -errno;
  return aioc__stream_new(out, loop, fd, opts);
}

void aioc__stream_set_conn(aioc_stream *s, void **conn_slot) {
  s->conn_slot = conn_slot;
}

void aioc_stream_free(aioc_stream *s) {
  if (!s || !STREAM_OK(s, "aioc_stream_free") || s->freed) return;
  if (s->conn_slot) *s->conn_slot = NULL;
  s->freed = true;
  s->closing = true;
  if (s->tp && !s->tp_shut && !s->wlen && !s->werr && s->io) {
    /* Nothing is dropped: the transport's end (TLS: close_notify) goes
     * if the socket takes it now, so the peer sees a clean end. */
    s->tp_shut = true;
    AIOC__IGNORE(s->tp->shutdown(s->tpc));
  }
  s->woff = s->wlen = 0; /* dropped */
  s->paused = false;
  wake_all(&s->drainers, AIOC_ECLOSED);
  finish_close(s);
  if (!s->users) free_mem(s);
}

/* ---- connecting ---- */

static int connect_to(aioc_stream **out, aioc_loop *loop, aioc_task *t,
                      const struct sockaddr *sa, socklen_t len,
                      const aioc_stream_options *o, int64_t deadline) {
  int fd = aioc__socket(sa->sa_family);
  if (fd < 0) return fd;
  int rc = 0;
  while (connect(fd, sa, len) < 0) {
    if (errno == EINTR) continue;
    rc = -errno;
    if (rc == -EAGAIN) {
      /* A Unix socket whose backlog is full: try again shortly. */
      if (deadline != AIOC__NEVER && deadline <= aioc__now(loop)) {
        rc = -ETIMEDOUT;
        break;
      }
      if ((rc = aioc_sleep(0.01)) < 0) break;
      continue;
    }
    break;
  }
  if (rc < 0 && rc != -EINPROGRESS) {
    close(fd);
    return rc;
  }
  aioc_stream *s;
  int nrc = aioc__stream_new(&s, loop, fd, o);
  if (nrc < 0) {
    close(fd);
    return nrc;
  }
  if (rc == -EINPROGRESS) {
    s->io->ready = 0;
    enter(s);
    while (rc == -EINPROGRESS && !s->freed) {
      if (s->io->ready & AIOC__WR_EVENTS) {
        int err = 0;
        socklen_t el = sizeof err;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0) err = errno;
        rc = -err;
      } else {
        int w = aioc__iofd_wait(s->io, t, AIOC__WR, deadline);
        if (w < 0) rc = w;
      }
    }
    leave(s);
    s->io->ready |= EPOLLIN; /* try the first read */
  }
  if (rc < 0) {
    aioc_stream_free(s);
    return rc;
  }
  *out = s;
  return 0;
}

/* ---- Happy Eyeballs (RFC 8305) ---- */

/* The delay before the next address is tried while earlier attempts are
 * still connecting (the RFC's recommended "Connection Attempt Delay"). */
#define HE_DELAY 0.25

typedef struct he_attempt {
  const struct sockaddr *sa;
  socklen_t len;
  const aioc_stream_options *opts;
  int64_t deadline;
} he_attempt;

static int he_connect(void *arg, void **result) {
  he_attempt *at = arg;
  aioc_task *t = aioc__current();
  aioc_stream *s;
  int rc = connect_to(&s, t->f.loop, t, at->sa, at->len, at->opts,
                      at->deadline);
  if (rc < 0) return rc;
  *result = s;
  return 0;
}

static void he_free_stream(void *s) { aioc_stream_free(s); }

/* Several addresses: the first attempt starts at once, each next one when
 * every attempt so far failed or HE_DELAY passed without a connection,
 * and the first connection wins; the others are cancelled. */
typedef struct he_state {
  aioc__addrs *a;
  const aioc_stream_options *opts;
  int64_t deadline;
  aioc_loop *loop;
  he_attempt *at;
  aioc_task **ts;
  aioc_future **fs;  /* attempts running (NULL once collected) */
  aioc_future **run; /* scratch: the running ones, packed */
  size_t started;
} he_state;

static int he_start(he_state *h) {
  size_t i = h->started;
  h->at[i] = (he_attempt){(struct sockaddr *)&h->a->v[i], h->a->len[i],
                          h->opts, h->deadline};
  aioc_task_options to = {.name = "happy-eyeballs",
                          .result_free = he_free_stream};
  int rc = aioc_spawn_ex(&h->ts[i], h->loop, he_connect, &h->at[i], &to);
  if (rc < 0) return rc;
  h->fs[i] = aioc_task_future(h->ts[i]);
  h->started++;
  return 0;
}

static int happy_eyeballs(aioc_stream **out, aioc__addrs *a,
                          const aioc_stream_options *opts, int64_t deadline,
                          aioc_loop *loop) {
  size_t n = a->n;
  he_state h = {a, opts, deadline, loop, aioc__calloc(n, sizeof *h.at),
                aioc__calloc(n, sizeof *h.ts), aioc__calloc(n, sizeof *h.fs),
                aioc__calloc(n, sizeof *h.run), 0};
  int rc = 0, last_err = -ECONNREFUSED;
  aioc_stream *winner = NULL;
  size_t ended = 0;
  if (!h.at || !h.ts || !h.fs || !h.run) rc = -ENOMEM;
  while (rc == 0 && !winner) {
    if (h.started == ended) { /* nothing running */
      if (h.started == n) {
        rc = last_err; /* every address failed */
        break;
      }
      rc = he_start(&h);
      continue;
    }
    size_t k = 0;
    for (size_t i = 0; i < h.started; i++)
      if (h.fs[i]) h.run[k++] = h.fs[i];
    double wait = h.started < n ? HE_DELAY : AIOC_FOREVER;
    if (deadline != AIOC__NEVER) {
      int64_t left = deadline - aioc__now(loop);
      double l = left > 0 ? (double)left / 1e9 : 0;
      if (l < wait) wait = l;
    }
    rc = aioc_wait(h.run, k, AIOC_WAIT_FIRST_COMPLETED, NULL, NULL, NULL,
                   NULL, wait);
    if (rc < 0) break; /* cancelled, or a deadline in scope */
    bool any = false;
    for (size_t i = 0; i < h.started; i++) {
      if (!h.fs[i] || !aioc_future_is_done(h.fs[i])) continue;
      void *res = NULL;
      int arc = aioc_future_result(h.fs[i], &res);
      h.fs[i] = NULL;
      ended++;
      any = true;
      if (arc == 0 && !winner)
        winner = res;
      else if (arc == 0)
        aioc_stream_free(res); /* a second connection: not needed */
      else
        last_err = arc;
    }
    if (winner || any) continue;
    if (deadline != AIOC__NEVER && aioc__now(loop) >= deadline) {
      rc = -ETIMEDOUT;
      break;
    }
    if (h.started < n) rc = he_start(&h); /* the delay passed */
  }
  /* The others lose: cancelled and waited for (they use h.at and opts);
   * a connection one made meanwhile goes to the tasks' result_free. */
  aioc_task *self = aioc__current();
  for (size_t i = 0; i < h.started; i++)
    if (h.fs[i]) AIOC__IGNORE(aioc_task_cancel(h.ts[i], "another address won"));
  for (size_t i = 0; i < h.started; i++) {
    if (h.fs[i]) {
      aioc__await_uninterruptible(self, h.fs[i]);
      AIOC__IGNORE(aioc_future_error(h.fs[i])); /* seen: not reported */
    }
    aioc_task_unref(h.ts[i]);
  }
  aioc__free(h.at);
  aioc__free(h.ts);
  aioc__free(h.fs);
  aioc__free(h.run);
  if (winner) {
    *out = winner;
    return 0;
  }
  return rc;
}

static int open_addrs(aioc_stream **out, aioc__addrs *a,
                      const aioc_stream_options *opts, int64_t deadline,
                      aioc_loop *loop, aioc_task *t) {
  int rc = aioc__task_check(t);
  if (rc) return rc;
  if (a->n > 1) return happy_eyeballs(out, a, opts, deadline, loop);
  return connect_to(out, loop, t, (struct sockaddr *)&a->v[0], a->len[0],
                    opts, deadline);
}

int aioc_open_connection(aioc_stream **out, const char *host, int port,
                         const aioc_stream_options *opts, double timeout) {
  if (!out) return -EINVAL;
  *out = NULL;
  if (!host || aioc__io_bad_timeout(timeout)) return -EINVAL;
  aioc_task *t = aioc__current();
  if (!t) return AIOC_ENOTASK;
  aioc_loop *loop = t->f.loop;
  int64_t deadline = aioc__io_deadline(loop, timeout);
  aioc__addrs a;
  int rc = aioc__resolve(host, port, false, &a);
  if (rc == -EINVAL && port >= 0 && port <= 65535)
    rc = aioc__resolve_name(host, port, deadline, loop, &a); /* a name */
  if (rc < 0) return rc;
  rc = open_addrs(out, &a, opts, deadline, loop, t);
  aioc__addrs_free(&a);
  return rc;
}

int aioc_open_unix_connection(aioc_stream **out, const char *path,
                              const aioc_stream_options *opts,
                              double timeout) {
  if (!out) return -EINVAL;
  *out = NULL;
  if (aioc__io_bad_timeout(timeout)) return -EINVAL;
  struct sockaddr_storage ss;
  socklen_t len;
  int rc = aioc__unix_addr(path, &ss, &len);
  if (rc < 0) return rc;
  aioc_task *t = aioc__current();
  if (!t) return AIOC_ENOTASK;
  aioc__addrs a = {.v = &ss, .len = &len, .n = 1};
  return open_addrs(out, &a, opts, aioc__io_deadline(t->f.loop, timeout),
                    t->f.loop, t);
}

/* ---- reading ---- */

/* Can s be read now? 0, or the code every read returns. */
static int read_check(aioc_stream *s) {
  if (s->closing || !s->io) return AIOC_ECLOSED;
  if (s->reading) return -EBUSY;
  return 0;
}

/* One recv() into buf: the count (> 0), 0 at end of file, -EAGAIN (dry:
 * wait for the poller), or the error (sticky). */
static ssize_t do_recv(aioc_stream *s, void *buf, size_t cap) {
  if (s->tp) {
    ssize_t r = s->tp->recv(s->tpc, buf, cap);
    if (r == 0) s->eof = true;
    if (r < 0 && r != -EAGAIN) s->rerr = (int)r;
    return r;
  }
  for (;;) {
    ssize_t r = recv(s->fd, buf, cap, 0);
    if (r > 0) {
      /* A short read emptied the socket: the next edge says when more
       * comes, so the next read waits without trying. */
      if ((size_t)r < cap) s->io->ready &= ~(uint32_t)EPOLLIN;
      return r;
    }
    if (r == 0) {
      s->eof = true;
      return 0;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      s->io->ready &= ~(uint32_t)EPOLLIN;
      return -EAGAIN;
    }
    return s->rerr = -errno;
  }
}

/* A read in progress: the task, its deadline (set at the first wait). */
typedef struct rctx {
  aioc_task *t;
  double timeout;
  int64_t deadline;
} rctx;

/* Is a recv() worth trying? While the poller's last report stands, or
 * from plain code, which cannot wait for the next report anyway. */
static inline bool may_recv(aioc_stream *s, rctx *c) {
  return (s->io->ready & AIOC__RD_EVENTS) ||
         (s->tp && s->tp->readable(s->tpc)) || (!c->t && !aioc__current());
}

/* Waits until the poller reports s readable. 0, or why not. */
static int read_wait(aioc_stream *s, rctx *c) {
  if (!c->t) {
    c->t = aioc__current();
    if (!c->t) return AIOC_ENOTASK;
    c->deadline = aioc__io_deadline(s->loop, c->timeout);
  }
  int rc = aioc__iofd_wait(s->io, c->t, AIOC__RD, c->deadline);
  if (rc == 0 && (s->freed || s->closing || !s->io)) rc = AIOC_ECLOSED;
  return rc;
}

/* Reads more into the read buffer (one recv, waiting as needed). Returns
 * 0 (check s->eof), an error, -ETIMEDOUT, -ECANCELED, -ENOMEM. */
static int fill_more(aioc_stream *s, rctx *c) {
  if (s->eof) return 0;
  if (s->rerr) return s->rerr;
  if (s->rcap - s->roff - s->rlen < READ_CHUNK) {
    if (s->roff) {
      memmove(s->rb, s->rb + s->roff, s->rlen);
      s->roff = 0;
    }
    if (s->rcap - s->rlen < READ_CHUNK) {
      size_t cap = s->rcap ? s->rcap * 2 : 4 * READ_CHUNK;
      while (cap - s->rlen < READ_CHUNK) cap *= 2;
      char *nb = aioc__realloc(s->rb, cap);
      if (!nb) return -ENOMEM;
      s->rb = nb;
      s->rcap = cap;
    }
  }
  for (;;) {
    if (may_recv(s, c)) {
      size_t room = s->rcap - s->roff - s->rlen;
      ssize_t r = do_recv(s, s->rb + s->roff + s->rlen, room);
      if (r >= 0) {
        s->rlen += (size_t)r;
        return 0;
      }
      if (r != -EAGAIN) return (int)r;
    }
    int rc = read_wait(s, c);
    if (rc) return rc;
  }
}

void aioc__stream_consume(aioc_stream *s, size_t n) {
  s->roff += n;
  s->rlen -= n;
  if (!s->rlen) s->roff = 0;
}

/* Enters a read: 0, or the code to return at once. */
static int begin_read(aioc_stream *s) {
  int rc = read_check(s);
  if (rc) return rc;
  enter(s);
  s->reading = true;
  return 0;
}

static void end_read(aioc_stream *s) {
  s->reading = false;
  leave(s);
}

int aioc_stream_read(aioc_stream *s, void *buf, size_t cap, size_t *n,
                     double timeout) {
  if (n) *n = 0;
  if (!s || !buf || !cap || !n || aioc__io_bad_timeout(timeout) ||
      !STREAM_OK(s, "aioc_stream_read"))
    return -EINVAL;
  aioc__coop_tick(); /* may yield: before the state is read */
  int rc = read_check(s);
  if (rc) return rc;
  if (s->rlen) {
    size_t k = s->rlen < cap ? s->rlen : cap;
    memcpy(buf, s->rb + s->roff, k);
    aioc__stream_consume(s, k);
    *n = k;
    return 0;
  }
  if (s->eof) return 0;
  if (s->rerr) return s->rerr;
  /* Straight into the caller's buffer: the common case copies nothing. */
  rc = begin_read(s);
  rctx c = {.timeout = timeout};
  for (;;) {
    if (may_recv(s, &c)) {
      ssize_t r = do_recv(s, buf, cap);
      if (r >= 0) {
        *n = (size_t)r;
        break;
      }
      if (r != -EAGAIN) {
        rc = (int)r;
        break;
      }
    }
    if ((rc = read_wait(s, &c)) != 0) break;
  }
  end_read(s);
  return rc;
}

int aioc_stream_readexactly(aioc_stream *s, void *buf, size_t n, size_t *got,
                            double timeout) {
  if (got) *got = 0;
  if (!s || (!buf && n) || !got || aioc__io_bad_timeout(timeout) ||
      !STREAM_OK(s, "aioc_stream_readexactly"))
    return -EINVAL;
  aioc__coop_tick(); /* may yield: before the state is read */
  int rc = begin_read(s);
  if (rc) return rc;
  rctx c = {.timeout = timeout};
  /* Nothing is consumed until all n bytes are there (or the end). */
  while (s->rlen < n && !s->eof && rc == 0) rc = fill_more(s, &c);
  if (rc == 0) {
    size_t k = s->rlen < n ? s->rlen : n;
    if (k) memcpy(buf, s->rb + s->roff, k);
    aioc__stream_consume(s, k);
    *got = k;
    rc = k == n ? 0 : AIOC_EINCOMPLETE;
  }
  end_read(s);
  return rc;
}

static const char *find(const char *p, size_t len, const void *sep,
                        size_t seplen) {
  if (seplen == 1) return memchr(p, *(const char *)sep, len);
  return memmem(p, len, sep, seplen);
}

int aioc_stream_readuntil(aioc_stream *s, const void *sep, size_t seplen,
                          void *buf, size_t cap, size_t *n, double timeout) {
  if (n) *n = 0;
  if (!s || !sep || !seplen || !buf || !n || aioc__io_bad_timeout(timeout) ||
      !STREAM_OK(s, "aioc_stream_readuntil"))
    return -EINVAL;
  aioc__coop_tick(); /* may yield: before the state is read */
  int rc = begin_read(s);
  if (rc) return rc;
  rctx c = {.timeout = timeout};
  for (;;) {
    const char *p = s->rb + s->roff;
    const char *hit = s->rlen ? find(p, s->rlen, sep, seplen) : NULL;
    if (hit) {
      size_t k = (size_t)(hit - p) + seplen;
      if (k > cap) {
        rc = -EMSGSIZE; /* left in the stream */
      } else {
        memcpy(buf, p, k);
        aioc__stream_consume(s, k);
        *n = k;
      }
      break;
    }
    if (s->rlen >= cap) {
      rc = -EMSGSIZE;
      break;
    }
    if (s->eof) {
      if (s->rlen) memcpy(buf, p, s->rlen);
      *n = s->rlen;
      aioc__stream_consume(s, s->rlen);
      rc = AIOC_EINCOMPLETE;
      break;
    }
    if ((rc = fill_more(s, &c)) != 0) break;
  }
  end_read(s);
  return rc;
}

int aioc__stream_line(aioc_stream *s, size_t cap, double timeout,
                      const char **line, size_t *len) {
  *line = NULL;
  *len = 0;
  aioc__coop_tick();
  int rc = begin_read(s);
  if (rc) return rc;
  rctx c = {.timeout = timeout};
  size_t scanned = 0; /* no "\n" in the first scanned bytes */
  for (;;) {
    const char *p = s->rb + s->roff;
    const char *hit =
        s->rlen > scanned ? memchr(p + scanned, '\n', s->rlen - scanned) : NULL;
    if (s->skipping) {
      /* The rest of an over-long line goes, up to its "\n". */
      size_t k = hit ? (size_t)(hit - p) + 1 : s->rlen;
      aioc__stream_consume(s, k);
      scanned = 0;
      if (hit || s->eof) {
        s->skipping = false;
        continue;
      }
    } else if (hit) {
      size_t k = (size_t)(hit - p) + 1;
      if (k > cap) {
        aioc__stream_consume(s, k);
        rc = -EMSGSIZE;
      } else {
        *line = p;
        *len = k;
      }
      break;
    } else if (s->rlen >= cap) {
      aioc__stream_consume(s, s->rlen);
      s->skipping = true;
      rc = -EMSGSIZE;
      break;
    } else if (s->eof) {
      *line = p;
      *len = s->rlen; /* the last line, or 0: the end */
      break;
    } else {
      scanned = s->rlen;
    }
    if ((rc = fill_more(s, &c)) != 0) break;
  }
  end_read(s);
  return rc;
}

int aioc_stream_readline(aioc_stream *s, void *buf, size_t cap, size_t *n,
                         double timeout) {
  if (n) *n = 0;
  if (!s || !buf || !cap || !n || aioc__io_bad_timeout(timeout) ||
      !STREAM_OK(s, "aioc_stream_readline"))
    return -EINVAL;
  const char *line;
  size_t len;
  int rc = aioc__stream_line(s, cap, timeout, &line, &len);
  if (rc == 0 && len) {
    memcpy(buf, line, len);
    aioc__stream_consume(s, len);
    *n = len;
  }
  return rc;
}

int aioc__stream_chunk(aioc_stream *s, size_t max, double timeout,
                       const char **data, size_t *len) {
  *data = NULL;
  *len = 0;
  aioc__coop_tick();
  int rc = begin_read(s);
  if (rc) return rc;
  rctx c = {.timeout = timeout};
  if (!s->rlen) rc = fill_more(s, &c);
  if (rc == 0) {
    *data = s->rb + s->roff;
    *len = s->rlen < max ? s->rlen : max;
  }
  end_read(s);
  return rc;
}

size_t aioc__stream_limit(const aioc_stream *s) { return s->limit; }
void aioc__stream_set_iter_owned(aioc_stream *s) { s->iter_owned = true; }
bool aioc__stream_is_iter_owned(const aioc_stream *s) { return s->iter_owned; }

int aioc_stream_is_eof(const aioc_stream *s) {
  return s && STREAM_OK(s, "aioc_stream_is_eof") && s->eof && !s->rlen;
}

/* ---- writing ---- */

static int write_check(aioc_stream *s) {
  if (s->closing || !s->io) return AIOC_ECLOSED;
  if (s->werr) return s->werr;
  return 0;
}

int aioc_stream_write(aioc_stream *s, const void *data, size_t n) {
  if (!s || (!data && n) || !STREAM_OK(s, "aioc_stream_write")) return -EINVAL;
  int rc = write_check(s);
  if (rc) return rc;
  if (s->eof_pending) return -EPIPE;
  const char *p = data;
  if (!s->wlen) {
    while (n) {
      ssize_t r = do_send(s, p, n);
      if (r > 0) {
        p += r;
        n -= (size_t)r;
      } else if (r == -EAGAIN) {
        break;
      } else {
        broken(s, (int)r);
        return s->werr;
      }
    }
    if (!n) return 0;
  }
  /* Buffered in order behind what waits already; the poller's next
   * "writable" sends it. */
  size_t need = s->wlen + n;
  if (s->wcap - s->woff < need) {
    if (s->woff) {
      memmove(s->wb, s->wb + s->woff, s->wlen);
      s->woff = 0;
    }
    if (s->wcap < need) {
      size_t cap = s->wcap ? s->wcap * 2 : 16 * 1024;
      while (cap < need) cap *= 2;
      char *nb = aioc__realloc(s->wb, cap);
      if (!nb) {
        broken(s, -ENOMEM);
        return -ENOMEM;
      }
      s->wb = nb;
      s->wcap = cap;
    }
  }
  memcpy(s->wb + s->woff + s->wlen, p, n);
  s->wlen += n;
  if (s->wlen > s->high) s->paused = true;
  if (s->io->ready & EPOLLOUT) flush(s); /* the socket took only part */
  return s->werr;
}

int aioc_stream_drain(aioc_stream *s, double timeout) {
  if (!s || aioc__io_bad_timeout(timeout) || !STREAM_OK(s, "aioc_stream_drain"))
    return -EINVAL;
  int rc = write_check(s);
  if (rc || !s->paused) return rc;
  aioc_task *t = aioc__current();
  if (!t) return AIOC_ENOTASK;
  enter(s);
  /* Woken with 0 once down to the low-water mark, or with the error. */
  rc = park(s->loop, &s->drainers, t, aioc__io_deadline(s->loop, timeout));
  leave(s);
  return rc;
}

size_t aioc_stream_write_buffer_size(const aioc_stream *s) {
  return s && STREAM_OK(s, "aioc_stream_write_buffer_size") ? s->wlen : 0;
}

int aioc_stream_write_eof(aioc_stream *s) {
  if (!s || !STREAM_OK(s, "aioc_stream_write_eof")) return -EINVAL;
  int rc = write_check(s);
  if (rc) return rc;
  s->eof_pending = true;
  if (s->tp) { /* the transport's end first, then the socket's */
    if (!s->wlen) after_flush(s);
    return s->werr;
  }
  if (!s->wlen && !s->eof_sent) {
    s->eof_sent = true;
    if (shutdown(s->fd, SHUT_WR) < 0) return -errno;
  }
  return 0;
}

/* ---- closing ---- */

int aioc_stream_close(aioc_stream *s) {
  if (!s || !STREAM_OK(s, "aioc_stream_close")) return -EINVAL;
  if (s->closing) return AIOC_ECLOSED;
  s->closing = true;
  if (s->io) aioc__iofd_wake(s->io, AIOC__RD, AIOC_ECLOSED);
  wake_all(&s->drainers, AIOC_ECLOSED);
  /* Buffered data goes out first, in the background (flush); a
   * transport's end too. */
  if (!s->io || s->werr || (!s->wlen && !s->tp))
    finish_close(s);
  else if (!s->wlen)
    after_flush(s);
  return 0;
}

int aioc_stream_is_closing(const aioc_stream *s) {
  return s && STREAM_OK(s, "aioc_stream_is_closing") && s->closing;
}

int aioc_stream_wait_closed(aioc_stream *s, double timeout) {
  if (!s || aioc__io_bad_timeout(timeout) ||
      !STREAM_OK(s, "aioc_stream_wait_closed"))
    return -EINVAL;
  if (!s->closing) return AIOC_ESTATE;
  if (s->fd < 0) return 0;
  aioc_task *t = aioc__current();
  if (!t) return AIOC_ENOTASK;
  enter(s);
  int rc = park(s->loop, &s->closers, t, aioc__io_deadline(s->loop, timeout));
  leave(s);
  return rc;
}

/* ---- addresses ---- */

static int names(const aioc_stream *s, struct sockaddr_storage *addr,
                 bool peer, const char *fn) {
  (void)fn;
  if (!s || !addr || !STREAM_OK(s, fn)) return -EINVAL;
  if (s->fd < 0) return AIOC_ECLOSED;
  socklen_t len = sizeof *addr;
  int r = peer ? getpeername(s->fd, (struct sockaddr *)addr, &len)
               : getsockname(s->fd, (struct sockaddr *)addr, &len);
  return r < 0 ? -errno : (int)len;
}

int aioc_stream_peername(const aioc_stream *s, struct sockaddr_storage *addr) {
  return names(s, addr, true, "aioc_stream_peername");
}

int aioc_stream_sockname(const aioc_stream *s, struct sockaddr_storage *addr) {
  return names(s, addr, false, "aioc_stream_sockname");
}

int aioc_stream_fd(const aioc_stream *s) {
  return s && STREAM_OK(s, "aioc_stream_fd") ? s->fd : -1;
}

/* ---- transports ---- */

void aioc__stream_set_transport(aioc_stream *s, const aioc__transport_ops *ops,
                                void *tp) {
  s->tp = ops;
  s->tpc = tp;
}

void *aioc__stream_transport(const aioc_stream *s,
                             const aioc__transport_ops *ops) {
  return s->tp == ops ? s->tpc : NULL;
}

bool aioc__stream_has_transport(const aioc_stream *s) { return s->tp; }

aioc__iofd *aioc__stream_iofd(const aioc_stream *s) { return s->io; }

int aioc__stream_begin_read(aioc_stream *s) { return begin_read(s); }

void aioc__stream_end_read(aioc_stream *s) { end_read(s); }

int aioc__stream_wait(aioc_stream *s, aioc_task *t, int dir,
                      int64_t deadline) {
  if (s->closing || !s->io) return AIOC_ECLOSED;
  int rc = aioc__iofd_wait(s->io, t, dir, deadline);
  if (rc == 0 && (s->freed || s->closing || !s->io)) rc = AIOC_ECLOSED;
  return rc;
}

int aioc__stream_wait_sent(aioc_stream *s, aioc_task *t, int64_t deadline) {
  int rc = 0;
  while (rc == 0 && s->wlen && !s->werr)
    rc = aioc__stream_wait(s, t, AIOC__WR, deadline);
  return rc ? rc : s->werr;
}

size_t aioc__stream_buffered(const aioc_stream *s, const char **data) {
  *data = s->rb + s->roff;
  return s->rlen;
}

void aioc__stream_kick(aioc_stream *s) {
  if (s->io && !s->werr && has_output(s)) flush(s);
}

void aioc__stream_fail(aioc_stream *s, int err) {
  s->rerr = err;
  broken(s, err);
}
