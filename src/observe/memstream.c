/* The test kit's stream pair (aioc/testing.h): two streams over a
 * socketpair, each with a transport (io.h) that injects faults: its reads
 * are cut short, reset or stalled, its writes delayed in loop time. */
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../io/io.h"

typedef struct ft_chunk ft_chunk;
struct ft_chunk {
  ft_chunk *next;
  int64_t due; /* loop ns */
  size_t len, off;
  char data[];
};

typedef struct fault_tp {
  aioc_stream *s;
  aioc_loop *loop;
  int fd;
  /* reads */
  size_t short_max; /* 0: no limit */
  bool reset_armed;
  size_t reset_left; /* bytes still delivered before the reset */
  bool stalled;
  /* writes */
  int64_t delay_ns;
  ft_chunk *head, *tail;
  aioc_handle *kick; /* the callback that sends the next due chunk */
} fault_tp;

static const aioc__transport_ops ft_ops;

/* A chunk is due within a microsecond of its time: loop time in seconds
 * (a double) and back does not round-trip to the nanosecond. */
#define FT_SLACK_NS 1000

static ssize_t raw_send(fault_tp *f, const void *p, size_t n) {
  for (;;) {
    ssize_t r = send(f->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (r >= 0) return r;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      aioc__iofd *io = aioc__stream_iofd(f->s);
      if (io) io->ready &= ~(uint32_t)EPOLLOUT;
      return -EAGAIN;
    }
    return -errno;
  }
}

static void ft_arm(fault_tp *f);

static void ft_drop(fault_tp *f) {
  while (f->head) {
    ft_chunk *c = f->head;
    f->head = c->next;
    aioc__free(c);
  }
  f->tail = NULL;
}

static void ft_kick(void *arg) {
  fault_tp *f = arg;
  aioc_handle_unref(f->kick);
  f->kick = NULL;
  if (!aioc__stream_iofd(f->s)) { /* its socket is gone: nothing to send */
    ft_drop(f);
    return;
  }
  aioc__stream_kick(f->s);
  ft_arm(f);
}

/* A callback at the first chunk's time (without memory the chunk waits
 * for the next write or flush). */
static void ft_arm(fault_tp *f) {
  if (f->kick || !f->head || f->loop->closed) return;
  AIOC__IGNORE(
      aioc_call_at(&f->kick, f->loop, (double)f->head->due / 1e9, ft_kick, f));
}

static ssize_t ft_recv(void *p, void *buf, size_t cap) {
  fault_tp *f = p;
  aioc__iofd *io = aioc__stream_iofd(f->s);
  if (f->stalled) {
    if (io) io->ready &= ~(uint32_t)EPOLLIN;
    return -EAGAIN;
  }
  if (f->reset_armed && f->reset_left == 0) return -ECONNRESET;
  if (f->short_max && cap > f->short_max) cap = f->short_max;
  if (f->reset_armed && cap > f->reset_left) cap = f->reset_left;
  for (;;) {
    ssize_t r = recv(f->fd, buf, cap, 0);
    if (r > 0) {
      if (f->reset_armed) f->reset_left -= (size_t)r;
      if ((size_t)r < cap && io) io->ready &= ~(uint32_t)EPOLLIN;
      return r;
    }
    if (r == 0) return 0;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (io) io->ready &= ~(uint32_t)EPOLLIN;
      return -EAGAIN;
    }
    return -errno;
  }
}

static int ft_flush(void *p) {
  fault_tp *f = p;
  int64_t now = aioc__now(f->loop);
  while (f->head && f->head->due <= now + FT_SLACK_NS) {
    ft_chunk *c = f->head;
    ssize_t r = raw_send(f, c->data + c->off, c->len - c->off);
    if (r < 0) return (int)r;
    c->off += (size_t)r;
    if (c->off == c->len) {
      f->head = c->next;
      if (!f->head) f->tail = NULL;
      aioc__free(c);
    }
  }
  if (f->head) {
    ft_arm(f);
    return -EAGAIN;
  }
  return 0;
}

static ssize_t ft_send(void *p, const void *data, size_t n) {
  fault_tp *f = p;
  if (!f->delay_ns && !f->head) return raw_send(f, data, n);
  ft_chunk *c = aioc__alloc(sizeof *c + n);
  if (!c) return -ENOMEM;
  int64_t now = aioc__now(f->loop);
  c->next = NULL;
  c->due = f->delay_ns > AIOC__NEVER - now ? AIOC__NEVER : now + f->delay_ns;
  /* Bytes keep their order: none overtakes a chunk held before it. */
  if (f->tail && c->due < f->tail->due) c->due = f->tail->due;
  c->len = n;
  c->off = 0;
  memcpy(c->data, data, n);
  if (f->tail)
    f->tail->next = c;
  else
    f->head = c;
  f->tail = c;
  ft_arm(f);
  return (ssize_t)n;
}

static int ft_shutdown(void *p) {
  return ft_flush(p);
}

static bool ft_pending(void *p) {
  return ((fault_tp *)p)->head != NULL;
}

/* A reset due comes without socket data. */
static bool ft_readable(void *p) {
  fault_tp *f = p;
  return !f->stalled && f->reset_armed && f->reset_left == 0;
}

static void ft_free(void *p) {
  fault_tp *f = p;
  if (f->kick) {
    aioc_handle_cancel(f->kick);
    aioc_handle_unref(f->kick);
  }
  ft_drop(f);
  aioc__free(f);
}

static const aioc__transport_ops ft_ops = {
    ft_recv, ft_send, ft_flush, ft_shutdown, ft_pending, ft_readable, ft_free};

int aioc_test_stream_pair(aioc_stream **a, aioc_stream **b) {
  if (a) *a = NULL;
  if (b) *b = NULL;
  if (!a || !b) return aioc__fail(-EINVAL, "aioc_test_stream_pair: NULL");
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    return aioc__fail(-errno, "aioc_test_stream_pair: socketpair: %s",
                      strerror(errno));
  aioc_stream *s[2] = {NULL, NULL};
  int rc = 0;
  for (int i = 0; i < 2; i++) {
    fault_tp *f = aioc__calloc(1, sizeof *f);
    if (!f) {
      rc = -ENOMEM;
      break;
    }
    rc = aioc_stream_from_fd(&s[i], sv[i], NULL);
    if (rc) {
      aioc__free(f);
      break;
    }
    sv[i] = -1; /* the stream's now */
    f->s = s[i];
    f->fd = aioc_stream_fd(s[i]);
    f->loop = aioc__stream_iofd(s[i])->loop;
    aioc__stream_set_transport(s[i], &ft_ops, f);
  }
  if (rc) {
    aioc_stream_free(s[0]);
    aioc_stream_free(s[1]);
    if (sv[0] >= 0) close(sv[0]);
    if (sv[1] >= 0) close(sv[1]);
    return aioc__fail(rc, "aioc_test_stream_pair: %s", aioc_err_name(rc));
  }
  *a = s[0];
  *b = s[1];
  return 0;
}

/* The fault state of a stream of a test pair (NULL: not one). */
static fault_tp *ft_of(aioc_stream *s) {
  return s ? aioc__stream_transport(s, &ft_ops) : NULL;
}

/* The same for a fault setter, which fails with -EINVAL and a message
 * naming it (fn) for a stream that is not of a pair. */
static fault_tp *ft_for(aioc_stream *s, const char *fn) {
  fault_tp *f = ft_of(s);
  if (!f) aioc__fail(-EINVAL, "%s: not a stream of a test pair", fn);
  return f;
}

/* The reader may have to look again: a fault changed what a read finds. */
static void ft_poke(fault_tp *f) {
  aioc__iofd *io = aioc__stream_iofd(f->s);
  if (!io) return;
  io->ready |= EPOLLIN;
  aioc__iofd_wake(io, AIOC__RD, 0);
}

int aioc_test_stream_delay(aioc_stream *s, double seconds) {
  fault_tp *f = ft_of(s);
  if (!f || !(seconds >= 0) || seconds > 1e9)
    return aioc__fail(-EINVAL, "aioc_test_stream_delay: bad arguments");
  f->delay_ns = (int64_t)(seconds * 1e9);
  return 0;
}

int aioc_test_stream_short_reads(aioc_stream *s, size_t max) {
  fault_tp *f = ft_for(s, "aioc_test_stream_short_reads");
  if (!f) return -EINVAL;
  f->short_max = max;
  return 0;
}

int aioc_test_stream_reset_after(aioc_stream *s, size_t n) {
  fault_tp *f = ft_for(s, "aioc_test_stream_reset_after");
  if (!f) return -EINVAL;
  f->reset_armed = true;
  f->reset_left = n;
  if (n == 0) ft_poke(f);
  return 0;
}

int aioc_test_stream_stall(aioc_stream *s, int stalled) {
  fault_tp *f = ft_for(s, "aioc_test_stream_stall");
  if (!f) return -EINVAL;
  bool was = f->stalled;
  f->stalled = stalled != 0;
  if (was && !f->stalled) ft_poke(f);
  return 0;
}
