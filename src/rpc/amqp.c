/* The AMQP transport: servers and clients meet through a RabbitMQ broker.
 *
 * rabbitmq-c is used as a codec only: the loop owns the socket (a
 * non-blocking fd on the loop's poller), bytes read go through
 * amqp_handle_input(), and frames are encoded with amqp_encode_method()
 * and amqp_encode_properties() into our own write buffer, flushed when
 * the socket takes it. So nothing waits inside the library, no frame
 * hides in a buffer that epoll cannot see, and a broker that stops
 * reading (connection.blocked) makes publishers wait in their tasks, not
 * the loop. The handshake is done the same way.
 *
 * A manager task per transport connects, sets up channels, queues and
 * consumers with the synchronous AMQP methods (it waits for each -ok in
 * the loop), and when the connection is lost, ends what depended on it
 * and connects again. The I/O callback decodes frames, assembles
 * messages per channel and hands them on: replies to calls, requests to
 * servers, cancellations to running requests.
 *
 * Channel 1 is the client's: it consumes direct reply-to and the worker
 * cancellations, and publishes requests (in confirm mode). Each server
 * gets a channel of its own, so that basic.qos with global set bounds the
 * server's unacknowledged requests by its prefetch. The wire format is in
 * docs/rpc-wire.md. */
#include "rpc.h"

#ifdef AIOC_HAVE_RABBITMQ

#include <amqp.h>
#include <amqp_framing.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXCH 64         /* channels per connection */
#define NBUCKETS 1024    /* the calls' hash table */
#define BACKLOG_MAX 4096 /* replies held for a call beyond its window */
#define RBUF_SIZE 65536
#define FRAME_MAX 131072
#define CORR_MAX 64
#define ERRMSG_MAX 200

enum { DOWN, CONNECTING, HANDSHAKE, OPENING, OPEN, UP };
enum { MSG_DELIVER = 1, MSG_RETURN = 2 };
enum { KIND_NONE, KIND_DATA, KIND_END, KIND_ERROR, KIND_CANCEL, KIND_BAD };

typedef struct amqp_tr amqp_tr;

/* A message being assembled on a channel: method, header, body frames. */
typedef struct asm_msg {
  int what; /* 0: idle, MSG_DELIVER, MSG_RETURN */
  bool in_body;
  uint64_t tag;
  bool redelivered;
  uint16_t reply_code;
  char ctag[64];
  char corr[CORR_MAX + 1];
  size_t corr_len;
  bool has_corr, has_reply_to, bad, keep;
  char reply_to[256];
  int kind;
  bool has_seq, has_expires;
  int64_t seq, code, expires_at;
  uint8_t *body; /* kept: body_len bytes and a NUL */
  uint64_t body_len, body_got;
} asm_msg;

typedef struct pending_confirm {
  uint64_t seq, call_id;
} pending_confirm;

typedef struct server_rec server_rec;

typedef struct chan {
  uint16_t id;
  uint32_t sync_expect; /* the -ok the manager waits for, 0: none */
  bool sync_done;
  char qname[256];     /* from queue.declare-ok */
  bool confirming;     /* in confirm mode */
  uint64_t pub_seq;    /* publishes so far (confirm mode) */
  pending_confirm *pc; /* requests published, not yet confirmed */
  size_t npc, cappc;
  uint64_t *done; /* delivery tags of requests finished, to acknowledge */
  size_t ndone, capdone;
  asm_msg m;
  server_rec *srv; /* NULL: the client's channel, or a server's gone */
} chan;

/* A server served on this transport. */
struct server_rec {
  aioc__list link;    /* t->servers */
  aioc_rpc_server *s; /* NULL once unserved */
  chan *ch;           /* NULL: to be set up on the connection */
  size_t prefetch, nmethods;
  char **names; /* the methods (copies: setup may outlive s) */
};

/* A request taken from the broker, while its handler has it. */
typedef struct req_rec {
  aioc__list link; /* t->reqs */
  aioc_rpc_request *req;
  chan *ch;
  uint64_t tag;
  char corr[CORR_MAX + 1];
  char reply_to[256];
  bool lost;      /* the connection it came on is gone */
  bool cancelled; /* its client gave up */
  bool requeued;
} req_rec;

/* A call in flight. */
typedef struct call_rec {
  struct call_rec *hnext; /* in the hash bucket */
  amqp_tr *t;
  uint64_t id;
  aioc__rpc_call *call;     /* NULL once withdrawn */
  aioc_rpc_chunk *fail;     /* a final error, allocated up front */
  aioc_rpc_chunk **backlog; /* replies beyond the window, oldest first */
  size_t nback, capback, headback;
  aioc_task *pump;
  aioc_handle *expiry;
  bool in_table, got_reply, final_queued, failing;
} call_rec;

struct amqp_tr {
  aioc_rpc_transport tr;
  /* configuration */
  struct sockaddr_storage addr;
  socklen_t addrlen;
  char *user, *pass, *vhost, *prefix;
  size_t prefix_len;
  double hb_want, connect_timeout;
  size_t max_buffer;
  bool confirm_requests; /* the client's channel in confirm mode */
  char client_id[40];
  /* the connection */
  int state;
  int fd;
  amqp_connection_state_t st;
  int hb;                   /* negotiated heartbeat, seconds (0: none) */
  int64_t last_rx, last_tx; /* loop ns */
  bool blocked, failing, out_armed;
  int err;
  char errmsg[ERRMSG_MAX + 56];
  uint8_t *out;
  size_t out_head, out_len, out_cap;
  uint8_t *rbuf;
  aioc_handle *flush_h, *hb_h;
  chan *ch[MAXCH];
  bool cancel_consumer;   /* worker cancellations consumed on channel 1 */
  server_rec *setting_up; /* the server the manager sets up now */
  /* the manager */
  aioc_task *mgr;
  aioc__waitpoint wp;
  aioc_event *can_pub; /* publishers may go on (or must look again) */
  aioc_event *first;   /* the first connection attempt is over */
  int first_rc;
  bool closing, orphan;
  /* clients */
  call_rec *tab[NBUCKETS];
  uint64_t next_id;
  size_t npumps; /* pump tasks alive */
  /* servers */
  aioc__list servers, reqs;
  aioc_rpc_amqp_counters cnt;
};

static const aioc__rpc_tops amqp_ops;

static amqp_tr *of(aioc_rpc_transport *tr) {
  return aioc__container_of(tr, amqp_tr, tr);
}

static amqp_bytes_t bytes_of(const char *s) {
  return (amqp_bytes_t){strlen(s), (void *)s};
}

static int64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void fail(amqp_tr *t, int code, const char *fmt, ...) AIOC_PRINTF(3, 4);
static void flush(amqp_tr *t);

/* ---- publishers' gate ---- */

static bool can_publish(const amqp_tr *t) {
  return t->state == UP && !t->failing && !t->blocked &&
         t->out_len < t->max_buffer;
}

/* Sets the gate to what the state says; a change of state that waiters
 * must see (a request lost, cancelled) also wakes them. */
static void gate(amqp_tr *t, bool kick) {
  if (!t->can_pub) return;
  if (can_publish(t) || kick) AIOC__IGNORE(aioc_event_set(t->can_pub));
  if (!can_publish(t)) AIOC__IGNORE(aioc_event_clear(t->can_pub));
}

/* ---- the write buffer ---- */

static int out_reserve(amqp_tr *t, size_t more) {
  if (t->out_head && t->out_len + more > t->out_cap - t->out_head) {
    memmove(t->out, t->out + t->out_head, t->out_len);
    t->out_head = 0;
  }
  if (t->out_len + more <= t->out_cap) return 0;
  size_t cap = t->out_cap ? t->out_cap : 16384;
  while (cap < t->out_len + more)
    cap *= 2;
  uint8_t *p = aioc__realloc(t->out, cap);
  if (!p) return -ENOMEM;
  t->out = p;
  t->out_cap = cap;
  return 0;
}

/* Appends (room reserved). */
static void out_put(amqp_tr *t, const void *p, size_t n) {
  if (n) memcpy(t->out + t->out_head + t->out_len, p, n);
  t->out_len += n;
}

static void be16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}
static void be32(uint8_t *p, uint32_t v) {
  be16(p, (uint16_t)(v >> 16));
  be16(p + 2, (uint16_t)v);
}
static void be64(uint8_t *p, uint64_t v) {
  be32(p, (uint32_t)(v >> 32));
  be32(p + 4, (uint32_t)v);
}

/* One frame (room reserved): type, channel, size, payload, end. */
static void put_frame(amqp_tr *t, uint8_t type, uint16_t ch, const void *p,
                      size_t n) {
  uint8_t h[7], end = AMQP_FRAME_END;
  h[0] = type;
  be16(h + 1, ch);
  be32(h + 3, (uint32_t)n);
  out_put(t, h, 7);
  out_put(t, p, n);
  out_put(t, &end, 1);
}

static void flush_cb(void *arg) {
  amqp_tr *t = arg;
  aioc_handle_unref(t->flush_h);
  t->flush_h = NULL;
  flush(t);
}

/* Written at the end of the loop's iteration (batching), or now. */
static void flush_soon(amqp_tr *t) {
  if (t->flush_h || t->fd < 0) return;
  if (aioc_call_soon(&t->flush_h, t->tr.loop, flush_cb, t) < 0) flush(t);
}

/* Encodes method id on channel ch into the buffer, to be written with
 * what comes next. 0 or a negative code (nothing written). */
static int encode_method(amqp_tr *t, uint16_t ch, amqp_method_number_t id,
                         void *decoded) {
  uint8_t buf[8192];
  be32(buf, id);
  int n =
      amqp_encode_method(id, decoded, (amqp_bytes_t){sizeof buf - 4, buf + 4});
  if (n < 0) return -EINVAL;
  if (out_reserve(t, (size_t)n + 12) < 0) return -ENOMEM;
  put_frame(t, AMQP_FRAME_METHOD, ch, buf, (size_t)n + 4);
  return 0;
}

/* The same, written at the end of the loop's iteration. */
static int put_method(amqp_tr *t, uint16_t ch, amqp_method_number_t id,
                      void *decoded) {
  int rc = encode_method(t, ch, id, decoded);
  if (rc == 0) flush_soon(t);
  return rc;
}

static void put_acks(amqp_tr *t);

/* basic.publish, its header and its body frames, all or nothing. */
static int put_publish(amqp_tr *t, chan *c, const char *exchange,
                       const char *rkey, bool mandatory,
                       amqp_basic_properties_t *props, const void *body,
                       size_t len) {
  uint8_t mbuf[1024], hbuf[4096];
  amqp_basic_publish_t pm = {.exchange = bytes_of(exchange),
                             .routing_key = bytes_of(rkey),
                             .mandatory = mandatory};
  be32(mbuf, AMQP_BASIC_PUBLISH_METHOD);
  int mn = amqp_encode_method(AMQP_BASIC_PUBLISH_METHOD, &pm,
                              (amqp_bytes_t){sizeof mbuf - 4, mbuf + 4});
  be16(hbuf, AMQP_BASIC_CLASS);
  be16(hbuf + 2, 0);
  be64(hbuf + 4, len);
  int hn = amqp_encode_properties(AMQP_BASIC_CLASS, props,
                                  (amqp_bytes_t){sizeof hbuf - 12, hbuf + 12});
  if (mn < 0 || hn < 0) return -EINVAL;
  size_t fmax = (size_t)amqp_get_frame_max(t->st) - 8;
  size_t nframes = (len + fmax - 1) / fmax;
  if (out_reserve(t, (size_t)mn + 12 + (size_t)hn + 20 + len + nframes * 8) < 0)
    return -ENOMEM;
  put_frame(t, AMQP_FRAME_METHOD, c->id, mbuf, (size_t)mn + 4);
  put_frame(t, AMQP_FRAME_HEADER, c->id, hbuf, (size_t)hn + 12);
  for (size_t off = 0; off < len; off += fmax)
    put_frame(t, AMQP_FRAME_BODY, c->id, (const uint8_t *)body + off,
              len - off < fmax ? len - off : fmax);
  c->pub_seq++;
  flush_soon(t);
  return 0;
}

static int watch(amqp_tr *t, uint32_t events);

static void set_out_interest(amqp_tr *t, bool want) {
  if (t->fd < 0 || want == t->out_armed) return;
  if (watch(t, EPOLLIN | (want ? EPOLLOUT : 0)) == 0) t->out_armed = want;
}

static void flush(amqp_tr *t) {
  if (t->fd < 0 || t->state < HANDSHAKE) return;
  put_acks(t);
  while (t->out_len) {
    ssize_t k = send(t->fd, t->out + t->out_head, t->out_len,
                     MSG_NOSIGNAL | MSG_DONTWAIT);
    if (k < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      fail(t, -ECONNRESET, "writing to the broker: %s", strerror(errno));
      return;
    }
    t->out_head += (size_t)k;
    t->out_len -= (size_t)k;
    t->last_tx = aioc__now(t->tr.loop);
  }
  if (!t->out_len) t->out_head = 0;
  set_out_interest(t, t->out_len > 0);
  gate(t, false);
}

/* ---- calls (client side) ---- */

static call_rec **bucket(amqp_tr *t, uint64_t id) {
  return &t->tab[(id * 0x9E3779B97F4A7C15ull) >> 54 & (NBUCKETS - 1)];
}

static call_rec *call_find(amqp_tr *t, uint64_t id) {
  for (call_rec *r = *bucket(t, id); r; r = r->hnext)
    if (r->id == id) return r;
  return NULL;
}

static void call_unlink(call_rec *r) {
  if (!r->in_table) return;
  for (call_rec **p = bucket(r->t, r->id); *p; p = &(*p)->hnext)
    if (*p == r) {
      *p = r->hnext;
      break;
    }
  r->in_table = false;
}

static void call_rec_free(call_rec *r) {
  call_unlink(r);
  if (r->expiry) {
    aioc_handle_cancel(r->expiry);
    aioc_handle_unref(r->expiry);
  }
  for (size_t i = 0; i < r->nback; i++)
    aioc_rpc_chunk_free(r->backlog[(r->headback + i) % r->capback]);
  aioc__free(r->backlog);
  aioc_rpc_chunk_free(r->fail);
  aioc__free(r);
}

/* The record is done with once the call has its final message in its
 * queue, or was withdrawn; a pump at work frees it when it ends. */
static void call_rec_maybe_free(call_rec *r) {
  if (r->pump) return;
  if (r->call && !r->final_queued) return;
  if (r->call) r->call->tpriv = NULL;
  call_rec_free(r);
}

static aioc_rpc_chunk *back_pop(call_rec *r) {
  if (r->nback) {
    aioc_rpc_chunk *m = r->backlog[r->headback];
    r->headback = (r->headback + 1) % r->capback;
    r->nback--;
    return m;
  }
  if (r->failing && r->fail) {
    aioc_rpc_chunk *m = r->fail;
    r->fail = NULL;
    return m;
  }
  return NULL;
}

static bool is_final(const aioc_rpc_chunk *m) {
  return m->kind_ != AIOC__RPC_DATA;
}

static void call_flow(call_rec *r);
static void publish_cancel(amqp_tr *t, uint64_t id);

/* Hands the backlog to the call as its consumer makes room. */
static int pump_main(void *arg, void **result) {
  (void)result;
  call_rec *r = arg;
  aioc_rpc_chunk *m;
  while (r->call && !r->final_queued && (m = back_pop(r))) {
    bool fin = is_final(m);
    /* A closed call (rc != 0) has cleared r->call by then. */
    if (aioc__rpc_call_deliver(r->call, m, true) != 0) break;
    if (fin) r->final_queued = true;
  }
  aioc_task_unref(r->pump);
  r->pump = NULL;
  amqp_tr *t = r->t;
  call_rec_maybe_free(r);
  t->npumps--;
  aioc__waitpoint_notify(&t->wp);
  return 0;
}

/* Moves what waits for the call (its backlog, then a final error) into
 * its queue while there is room; a pump task waits for room for the
 * rest. */
static void call_flow(call_rec *r) {
  aioc_rpc_chunk *m;
  while (!r->pump && r->call && !r->final_queued &&
         !aioc_queue_is_full(r->call->q) && (m = back_pop(r))) {
    bool fin = is_final(m);
    if (aioc__rpc_call_deliver(r->call, m, false) != 0 || fin)
      r->final_queued = true;
  }
  if (!r->pump && r->call && !r->final_queued &&
      (r->nback || (r->failing && r->fail))) {
    aioc_task_options o = {.name = "rpc-amqp-pump"};
    if (aioc_spawn_ex(&r->pump, r->t->tr.loop, pump_main, r, &o) == 0) {
      r->t->npumps++;
    } else {
      /* No task: the call ends here, its consumer gets what fits. */
      r->pump = NULL;
      while (r->call && !r->final_queued && (m = back_pop(r)))
        if (aioc__rpc_call_deliver(r->call, m, false) != 0 || is_final(m))
          r->final_queued = true;
      r->final_queued = true;
    }
  }
  call_rec_maybe_free(r);
}

static void fill_fail(call_rec *r, int code, const char *fmt, va_list ap) {
  r->failing = true;
  if (!r->fail) return;
  int n = vsnprintf(r->fail->data, AIOC__RPC_METHOD_MAX + 1, fmt, ap);
  r->fail->len = n < 0                              ? 0
                 : (size_t)n > AIOC__RPC_METHOD_MAX ? AIOC__RPC_METHOD_MAX
                                                    : (size_t)n;
  r->fail->seq = (uint32_t)-code;
}

static void set_fail(call_rec *r, int code, const char *fmt, ...)
    AIOC_PRINTF(3, 4);
static void set_fail(call_rec *r, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fill_fail(r, code, fmt, ap);
  va_end(ap);
}

/* Queues a reply message for the call (ownership passes); call_flow()
 * moves it on. */
static void call_push(call_rec *r, aioc_rpc_chunk *m) {
  if (!r->call || r->final_queued || r->failing) {
    aioc_rpc_chunk_free(m);
    return;
  }
  if (r->nback == r->capback) {
    size_t cap = r->capback ? r->capback * 2 : 16;
    aioc_rpc_chunk **v =
        r->nback < BACKLOG_MAX ? aioc__alloc(cap * sizeof *v) : NULL;
    if (!v) {
      aioc_rpc_chunk_free(m);
      call_unlink(r);
      if (r->nback < BACKLOG_MAX)
        set_fail(r, -ENOMEM, "out of memory receiving a reply");
      else
        set_fail(r, -ENOBUFS,
                 "the client fell too far behind the worker's replies");
      publish_cancel(r->t, r->id);
      return;
    }
    for (size_t i = 0; i < r->nback; i++)
      v[i] = r->backlog[(r->headback + i) % r->capback];
    aioc__free(r->backlog);
    r->backlog = v;
    r->capback = cap;
    r->headback = 0;
  }
  r->backlog[(r->headback + r->nback) % r->capback] = m;
  r->nback++;
}

/* Ends the call with code and message (its final message). */
static void call_fail(call_rec *r, int code, const char *fmt, ...)
    AIOC_PRINTF(3, 4);
static void call_fail(call_rec *r, int code, const char *fmt, ...) {
  call_unlink(r);
  if (r->failing || r->final_queued || !r->call) return;
  va_list ap;
  va_start(ap, fmt);
  fill_fail(r, code, fmt, ap);
  va_end(ap);
  call_flow(r);
}

/* Room to track one more publish's confirm on c. */
static int pc_reserve(chan *c) {
  if (c->npc < c->cappc) return 0;
  size_t cap = c->cappc ? c->cappc * 2 : 64;
  pending_confirm *v = aioc__realloc(c->pc, cap * sizeof *v);
  if (!v) return -ENOMEM;
  c->pc = v;
  c->cappc = cap;
  return 0;
}

static void corr_of(const amqp_tr *t, uint64_t id, char *out, size_t cap) {
  snprintf(out, cap, "%s.%" PRIx64, t->client_id, id);
}

/* Tells the workers that the call with this id is given up. */
static void publish_cancel(amqp_tr *t, uint64_t id) {
  if (t->state != UP || t->failing || !t->ch[1]) return;
  char corr[CORR_MAX + 1], ex[256];
  corr_of(t, id, corr, sizeof corr);
  snprintf(ex, sizeof ex, "%scancel", t->prefix);
  amqp_table_entry_t h[1] = {
      {.key = amqp_cstring_bytes("x-kind"),
       .value = {.kind = AMQP_FIELD_KIND_UTF8,
                 .value.bytes = amqp_cstring_bytes("cancel")}}};
  amqp_basic_properties_t p = {._flags = AMQP_BASIC_CORRELATION_ID_FLAG |
                                         AMQP_BASIC_HEADERS_FLAG |
                                         AMQP_BASIC_DELIVERY_MODE_FLAG,
                               .correlation_id = bytes_of(corr),
                               .delivery_mode = 1,
                               .headers = {1, h}};
  chan *c = t->ch[1];
  /* Best effort: without room to track its confirm, it is not sent. */
  if (!c->confirming) {
    AIOC__IGNORE(put_publish(t, c, ex, "", false, &p, NULL, 0));
  } else if (pc_reserve(c) == 0 &&
             put_publish(t, c, ex, "", false, &p, NULL, 0) == 0) {
    c->pc[c->npc++] = (pending_confirm){c->pub_seq, 0};
  }
}

static void expiry_cb(void *arg) {
  call_rec *r = arg;
  aioc_handle_unref(r->expiry);
  r->expiry = NULL;
  if (r->got_reply || !r->in_table) return;
  publish_cancel(r->t, r->id);
  call_fail(r, -ETIMEDOUT, "the request expired before a worker took it");
}

static int amqp_send_request(aioc_rpc_transport *tr, aioc__rpc_call *call) {
  amqp_tr *t = of(tr);
  if (t->state != UP || t->failing)
    return aioc_error(-ENOTCONN, "not connected to the broker");
  if (t->blocked || t->out_len >= t->max_buffer)
    return aioc_error(-EAGAIN, "%s",
                      t->blocked ? "the broker blocks publishers"
                                 : "the write buffer is full");
  char queue[512];
  int qn = snprintf(queue, sizeof queue, "%s%s", t->prefix, call->method);
  if (qn < 0 || qn > 255)
    return aioc_error(-EINVAL, "the method name is too long for AMQP");
  chan *c = t->ch[1];
  if (c->confirming && pc_reserve(c) < 0) return -ENOMEM;
  call_rec *r = aioc__calloc(1, sizeof *r);
  if (!r) return -ENOMEM;
  r->t = t;
  r->id = ++t->next_id;
  r->call = call;
  r->fail = aioc__rpc_msg(AIOC__RPC_ERROR, EPROTO, NULL, AIOC__RPC_METHOD_MAX);
  int64_t now = aioc__now(tr->loop);
  double delay = 0;
  if (call->expiry != AIOC__NEVER) {
    delay = (double)(call->expiry - now) / 1e9;
    if (delay < 0.001) delay = 0.001;
  }
  if (!r->fail ||
      (call->expiry != AIOC__NEVER &&
       aioc_call_later(&r->expiry, tr->loop, delay, expiry_cb, r) < 0)) {
    call_rec_free(r);
    return -ENOMEM;
  }
  char corr[CORR_MAX + 1], exp[32];
  corr_of(t, r->id, corr, sizeof corr);
  amqp_table_entry_t h[1];
  /* Transient (delivery mode 1): the replies go through direct reply-to,
   * which lives and dies with this connection, so a request kept across a
   * broker restart could only be handled for nobody; and a persistent
   * message to a durable queue in confirm mode costs the broker a disk
   * sync per request when it is not busy (twice its CPU per call at one
   * call in flight). A worker that dies still gets its requests
   * redelivered: that is acknowledgement, not persistence. */
  amqp_basic_properties_t p = {
      ._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
                AMQP_BASIC_CORRELATION_ID_FLAG | AMQP_BASIC_REPLY_TO_FLAG,
      .content_type = amqp_cstring_bytes("application/octet-stream"),
      .delivery_mode = 1,
      .correlation_id = bytes_of(corr),
      .reply_to = amqp_cstring_bytes("amq.rabbitmq.reply-to")};
  if (call->expiry != AIOC__NEVER) {
    long long ms = (long long)(delay * 1000 + 0.999);
    snprintf(exp, sizeof exp, "%lld", ms);
    p._flags |= AMQP_BASIC_EXPIRATION_FLAG | AMQP_BASIC_HEADERS_FLAG;
    p.expiration = bytes_of(exp);
    h[0] = (amqp_table_entry_t){
        .key = amqp_cstring_bytes("x-expires-at"),
        .value = {.kind = AMQP_FIELD_KIND_I64, .value.i64 = wall_ms() + ms}};
    p.headers = (amqp_table_t){1, h};
  }
  int rc = put_publish(t, c, "", queue, true, &p, call->payload, call->len);
  if (rc < 0) {
    call_rec_free(r);
    return rc;
  }
  if (c->confirming) c->pc[c->npc++] = (pending_confirm){c->pub_seq, r->id};
  call_rec **b = bucket(t, r->id);
  r->hnext = *b;
  *b = r;
  r->in_table = true;
  call->tpriv = r;
  return 0;
}

static void amqp_cancel_request(aioc_rpc_transport *tr, aioc__rpc_call *call) {
  amqp_tr *t = of(tr);
  call_rec *r = call->tpriv;
  call->tpriv = NULL;
  if (!r) return;
  if (r->in_table) publish_cancel(t, r->id);
  call_unlink(r);
  r->call = NULL;
  call_rec_maybe_free(r);
}

/* A reply on channel 1 (direct reply-to). */
static void on_reply(amqp_tr *t, asm_msg *m) {
  size_t idlen = strlen(t->client_id);
  call_rec *r = NULL;
  if (m->has_corr && m->corr_len > idlen + 1 &&
      memcmp(m->corr, t->client_id, idlen) == 0 && m->corr[idlen] == '.') {
    char *end;
    uint64_t id = strtoull(m->corr + idlen + 1, &end, 16);
    if (*end == '\0') r = call_find(t, id);
  }
  int kind = m->kind;
  if (!r || kind == KIND_NONE || kind == KIND_BAD || kind == KIND_CANCEL ||
      (kind == KIND_DATA &&
       (!m->has_seq || m->seq < 0 || m->seq > UINT32_MAX))) {
    t->cnt.replies_dropped++;
    return;
  }
  r->got_reply = true;
  aioc_rpc_chunk *msg;
  if (kind == KIND_DATA) {
    msg = aioc__rpc_msg(AIOC__RPC_DATA, (uint32_t)m->seq, m->body, m->body_len);
  } else if (kind == KIND_END) {
    msg = aioc__rpc_msg(AIOC__RPC_END, 0, NULL, 0);
  } else {
    int64_t code = m->code > 0 && m->code < 4096 ? m->code : EPROTO;
    size_t n =
        m->body_len < AIOC__RPC_METHOD_MAX ? m->body_len : AIOC__RPC_METHOD_MAX;
    msg = aioc__rpc_msg(AIOC__RPC_ERROR, (uint32_t)code, m->body, n);
  }
  if (!msg) {
    publish_cancel(t, r->id);
    call_fail(r, -ENOMEM, "out of memory receiving a reply");
    return;
  }
  if (kind != KIND_DATA) call_unlink(r);
  call_push(r, msg);
  call_flow(r);
}

/* A request returned by the broker (mandatory: no queue for the method). */
static void on_return(amqp_tr *t, asm_msg *m) {
  size_t idlen = strlen(t->client_id);
  if (!m->has_corr || m->corr_len <= idlen + 1 ||
      memcmp(m->corr, t->client_id, idlen) != 0)
    return;
  call_rec *r = call_find(t, strtoull(m->corr + idlen + 1, NULL, 16));
  if (!r) return;
  if (m->reply_code == AMQP_NO_ROUTE)
    call_fail(r, -ENOENT, "no worker serves this method (no queue)");
  else
    call_fail(r, -EIO, "the broker returned the request (%u)",
              (unsigned)m->reply_code);
}

/* basic.ack / basic.nack from the broker (publisher confirms). */
static void on_confirm(amqp_tr *t, chan *c, uint64_t tag, bool multiple,
                       bool nack) {
  if (c->srv || c->id != 1) {
    if (nack) t->cnt.replies_nacked++;
    return;
  }
  size_t j = 0;
  for (size_t i = 0; i < c->npc; i++) {
    pending_confirm e = c->pc[i];
    if (e.seq == tag || (multiple && e.seq < tag)) {
      if (nack && e.call_id) {
        call_rec *r = call_find(t, e.call_id);
        if (r) call_fail(r, -EIO, "the broker refused the request (nack)");
      }
      continue;
    }
    c->pc[j++] = e;
  }
  c->npc = j;
}

/* ---- servers (worker side) ---- */

static void ack_req(amqp_tr *t, req_rec *q, bool ack, bool requeue) {
  if (q->lost || t->state != UP || t->failing) return;
  if (ack) {
    amqp_basic_ack_t a = {.delivery_tag = q->tag};
    AIOC__IGNORE(put_method(t, q->ch->id, AMQP_BASIC_ACK_METHOD, &a));
  } else {
    amqp_basic_nack_t a = {.delivery_tag = q->tag, .requeue = requeue};
    AIOC__IGNORE(put_method(t, q->ch->id, AMQP_BASIC_NACK_METHOD, &a));
  }
}

static void reject_delivery(amqp_tr *t, chan *c, uint64_t tag, bool requeue) {
  amqp_basic_nack_t a = {.delivery_tag = tag, .requeue = requeue};
  AIOC__IGNORE(put_method(t, c->id, AMQP_BASIC_NACK_METHOD, &a));
}

static void on_request(amqp_tr *t, chan *c, asm_msg *m) {
  server_rec *sr = c->srv;
  /* Consumer tags of requests: "aioc.s<channel>.<method index>". */
  char *end = NULL;
  const char *dot = strrchr(m->ctag, '.');
  unsigned long mi = dot ? strtoul(dot + 1, &end, 10) : 0;
  if (!sr || !sr->s || !dot || *end || mi >= sr->nmethods) {
    reject_delivery(t, c, m->tag, true); /* not ours (any more) */
    return;
  }
  if (!m->has_corr || !m->corr_len || !m->has_reply_to || m->bad ||
      !m->reply_to[0] || m->kind != KIND_NONE) {
    reject_delivery(t, c, m->tag, false); /* to the dead-letter queue */
    t->cnt.requests_rejected++;
    return;
  }
  int64_t expiry = AIOC__NEVER;
  if (m->has_expires) {
    int64_t left_ms = m->expires_at - wall_ms();
    expiry = aioc__now(t->tr.loop) + left_ms * 1000000;
  }
  req_rec *q = aioc__calloc(1, sizeof *q);
  aioc_rpc_request *req =
      q ? aioc__rpc_request_new(sr->names[mi], (const char *)m->body,
                                (size_t)m->body_len, expiry)
        : NULL;
  if (!req) {
    aioc__free(q);
    reject_delivery(t, c, m->tag, true); /* another worker may have room */
    return;
  }
  q->req = req;
  q->ch = c;
  q->tag = m->tag;
  memcpy(q->corr, m->corr, m->corr_len + 1);
  memcpy(q->reply_to, m->reply_to, sizeof q->reply_to);
  aioc__list_init(&q->link);
  aioc__list_push_back(&t->reqs, &q->link);
  req->tpriv = q;
  aioc__rpc_server_dispatch(sr->s, req);
}

/* A worker cancellation (fanout): the client of a running request gave
 * up. */
static void on_cancel(amqp_tr *t, asm_msg *m) {
  if (!m->has_corr) return;
  aioc__list_each(l, &t->reqs) {
    req_rec *q = aioc__container_of(l, req_rec, link);
    if (q->req && !q->cancelled && strcmp(q->corr, m->corr) == 0) {
      q->cancelled = true;
      aioc__rpc_request_abandon(q->req); /* may free q */
      gate(t, true);                     /* wakes it if it waits to send */
      return;
    }
  }
}

static int amqp_send_reply(aioc_rpc_transport *tr, aioc_rpc_request *req,
                           aioc_rpc_chunk *msg, bool wait) {
  amqp_tr *t = of(tr);
  req_rec *q = req->tpriv;
  int rc = 0;
  while (q && !q->lost && !q->cancelled && wait && !can_publish(t)) {
    rc = aioc_event_wait(t->can_pub, AIOC_FOREVER);
    if (rc < 0) break;
  }
  if (!q || q->lost || q->cancelled) {
    aioc_rpc_chunk_free(msg);
    return AIOC_EGENEXIT;
  }
  if (rc < 0) {
    aioc_rpc_chunk_free(msg);
    return rc;
  }
  const char *kind = msg->kind_ == AIOC__RPC_DATA  ? "data"
                     : msg->kind_ == AIOC__RPC_END ? "end"
                                                   : "error";
  amqp_table_entry_t h[3];
  int nh = 0;
  h[nh++] =
      (amqp_table_entry_t){.key = amqp_cstring_bytes("x-kind"),
                           .value = {.kind = AMQP_FIELD_KIND_UTF8,
                                     .value.bytes = amqp_cstring_bytes(kind)}};
  if (msg->kind_ == AIOC__RPC_ERROR) {
    h[nh++] = (amqp_table_entry_t){
        .key = amqp_cstring_bytes("x-error-code"),
        .value = {.kind = AMQP_FIELD_KIND_I64, .value.i64 = msg->seq}};
  } else {
    h[nh++] = (amqp_table_entry_t){
        .key = amqp_cstring_bytes("x-seq"),
        .value = {.kind = AMQP_FIELD_KIND_I64, .value.i64 = msg->seq}};
  }
  amqp_basic_properties_t p = {
      ._flags = AMQP_BASIC_CORRELATION_ID_FLAG | AMQP_BASIC_HEADERS_FLAG |
                AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_CONTENT_TYPE_FLAG,
      .content_type = amqp_cstring_bytes(msg->kind_ == AIOC__RPC_ERROR
                                             ? "text/plain"
                                             : "application/octet-stream"),
      .correlation_id = bytes_of(q->corr),
      .delivery_mode = 1,
      .headers = {nh, h}};
  if (t->state != UP || t->failing) {
    aioc_rpc_chunk_free(msg);
    return AIOC_EGENEXIT;
  }
  /* A server's channel goes into confirm mode before its first reply to
   * a queue: only a queue can refuse a message (replies_nacked). RabbitMQ
   * hands a reply to direct reply-to over at once and confirms it
   * whatever happens, so for those replies confirms would cost an ack
   * frame each, to the broker and to the worker, and tell nothing. */
  if (!q->ch->confirming && strncmp(q->reply_to, "amq.rabbitmq.reply-to.",
                                    strlen("amq.rabbitmq.reply-to.")) != 0) {
    amqp_confirm_select_t cs = {.nowait = 1};
    rc = put_method(t, q->ch->id, AMQP_CONFIRM_SELECT_METHOD, &cs);
    if (rc < 0) {
      aioc_rpc_chunk_free(msg);
      return rc;
    }
    q->ch->confirming = true;
  }
  rc = put_publish(t, q->ch, "", q->reply_to, false, &p, msg->data, msg->len);
  aioc_rpc_chunk_free(msg);
  gate(t, false);
  return rc;
}

/* Acknowledges the requests finished since the last write, just before
 * it: those below every request still held on their channel with one
 * basic.ack (multiple), the others one by one. Nothing waits for another
 * request to finish. */
static void put_acks(amqp_tr *t) {
  if (t->state != UP || t->failing) return;
  for (int i = 2; i < MAXCH; i++) {
    chan *c = t->ch[i];
    if (!c || !c->ndone) continue;
    /* Requests are held in the order of their delivery tags. */
    uint64_t held = UINT64_MAX, below = 0;
    aioc__list_each(l, &t->reqs) {
      req_rec *q = aioc__container_of(l, req_rec, link);
      if (q->ch == c && !q->lost) {
        held = q->tag;
        break;
      }
    }
    size_t nbelow = 0;
    for (size_t k = 0; k < c->ndone; k++) {
      uint64_t tag = c->done[k];
      if (tag < held) {
        nbelow++;
        if (tag > below) below = tag;
      } else {
        amqp_basic_ack_t a = {.delivery_tag = tag};
        AIOC__IGNORE(encode_method(t, c->id, AMQP_BASIC_ACK_METHOD, &a));
      }
    }
    if (nbelow) {
      amqp_basic_ack_t a = {.delivery_tag = below, .multiple = nbelow > 1};
      AIOC__IGNORE(encode_method(t, c->id, AMQP_BASIC_ACK_METHOD, &a));
    }
    c->ndone = 0;
  }
}

static void amqp_finish(aioc_rpc_transport *tr, aioc_rpc_request *req) {
  amqp_tr *t = of(tr);
  req_rec *q = req->tpriv;
  req->tpriv = NULL;
  if (!q) return;
  aioc__list_del(&q->link);
  /* Acknowledged with the next write, after the replies written before
   * (the broker handles a channel's frames in order), or now if there is
   * no room to remember it. */
  if (!q->requeued && !q->lost && t->state == UP && !t->failing) {
    chan *c = q->ch;
    if (c->ndone == c->capdone) {
      size_t cap = c->capdone ? c->capdone * 2 : 16;
      uint64_t *v = aioc__realloc(c->done, cap * sizeof *v);
      if (v) {
        c->done = v;
        c->capdone = cap;
      }
    }
    if (c->ndone < c->capdone) {
      c->done[c->ndone++] = q->tag;
      flush_soon(t);
    } else {
      ack_req(t, q, true, false);
    }
  }
  aioc__free(q);
}

static bool amqp_requeue(aioc_rpc_transport *tr, aioc_rpc_request *req) {
  amqp_tr *t = of(tr);
  req_rec *q = req->tpriv;
  if (!q || q->cancelled) return false;
  ack_req(t, q, false, true); /* lost: the broker requeued it already */
  q->requeued = true;
  return true;
}

static void server_rec_free(server_rec *sr) {
  if (sr->names)
    for (size_t i = 0; sr->names[i]; i++)
      aioc__free(sr->names[i]);
  aioc__free(sr->names);
  aioc__free(sr);
}

static int amqp_serve(aioc_rpc_transport *tr, aioc_rpc_server *s) {
  amqp_tr *t = of(tr);
  for (size_t i = 0; i < s->nmethods; i++)
    if (t->prefix_len + strlen(s->methods[i].name) > 255) return -EINVAL;
  server_rec *sr = aioc__calloc(1, sizeof *sr);
  char **names = sr ? aioc__calloc(s->nmethods + 1, sizeof *names) : NULL;
  if (!names) {
    aioc__free(sr);
    return -ENOMEM;
  }
  sr->names = names;
  for (size_t i = 0; i < s->nmethods; i++)
    if (!(names[i] = aioc__strdup(s->methods[i].name))) {
      server_rec_free(sr);
      return -ENOMEM;
    }
  sr->nmethods = s->nmethods;
  sr->prefetch = s->prefetch;
  sr->s = s;
  aioc__list_init(&sr->link);
  aioc__list_push_back(&t->servers, &sr->link);
  s->tpriv = sr;
  aioc__waitpoint_notify(&t->wp); /* the manager sets it up */
  return 0;
}

static void amqp_unserve(aioc_rpc_transport *tr, aioc_rpc_server *s) {
  amqp_tr *t = of(tr);
  server_rec *sr = s->tpriv;
  s->tpriv = NULL;
  if (!sr) return;
  if (sr->ch) {
    /* No more deliveries; the requests held are acknowledged (or given
     * back) on the channel as they end. */
    for (size_t i = 0; i < sr->nmethods; i++) {
      char tag[64];
      snprintf(tag, sizeof tag, "aioc.s%u.%zu", (unsigned)sr->ch->id, i);
      amqp_basic_cancel_t m = {.consumer_tag = bytes_of(tag), .nowait = 1};
      if (t->state == UP && !t->failing)
        AIOC__IGNORE(put_method(t, sr->ch->id, AMQP_BASIC_CANCEL_METHOD, &m));
    }
    sr->ch->srv = NULL;
  }
  aioc__list_del(&sr->link);
  sr->s = NULL;
  if (t->setting_up != sr) server_rec_free(sr); /* else the manager does */
}

/* ---- incoming frames ---- */

static int64_t int_of(const amqp_field_value_t *v, bool *ok) {
  *ok = true;
  switch (v->kind) {
  case AMQP_FIELD_KIND_I8:
    return v->value.i8;
  case AMQP_FIELD_KIND_U8:
    return v->value.u8;
  case AMQP_FIELD_KIND_I16:
    return v->value.i16;
  case AMQP_FIELD_KIND_U16:
    return v->value.u16;
  case AMQP_FIELD_KIND_I32:
    return v->value.i32;
  case AMQP_FIELD_KIND_U32:
    return v->value.u32;
  case AMQP_FIELD_KIND_I64:
    return v->value.i64;
  case AMQP_FIELD_KIND_U64:
    if (v->value.u64 <= INT64_MAX) return (int64_t)v->value.u64;
    break;
  default:
    break;
  }
  *ok = false;
  return 0;
}

static bool key_is(const amqp_table_entry_t *e, const char *k) {
  size_t n = strlen(k);
  return e->key.len == n && memcmp(e->key.bytes, k, n) == 0;
}

static bool str_is(const amqp_field_value_t *v, const char *s) {
  if (v->kind != AMQP_FIELD_KIND_UTF8 && v->kind != AMQP_FIELD_KIND_BYTES)
    return false;
  size_t n = strlen(s);
  return v->value.bytes.len == n && memcmp(v->value.bytes.bytes, s, n) == 0;
}

/* Copies what the handlers need out of the header frame (the frame's
 * memory is recycled). */
static void take_props(asm_msg *m, const amqp_basic_properties_t *p) {
  if (p->_flags & AMQP_BASIC_CORRELATION_ID_FLAG) {
    if (p->correlation_id.len <= CORR_MAX &&
        !memchr(p->correlation_id.bytes, 0, p->correlation_id.len)) {
      memcpy(m->corr, p->correlation_id.bytes, p->correlation_id.len);
      m->corr[p->correlation_id.len] = '\0';
      m->corr_len = p->correlation_id.len;
      m->has_corr = true;
    } else {
      m->bad = true;
    }
  }
  if (p->_flags & AMQP_BASIC_REPLY_TO_FLAG) {
    if (p->reply_to.len < sizeof m->reply_to &&
        !memchr(p->reply_to.bytes, 0, p->reply_to.len)) {
      memcpy(m->reply_to, p->reply_to.bytes, p->reply_to.len);
      m->reply_to[p->reply_to.len] = '\0';
      m->has_reply_to = true;
    } else {
      m->bad = true;
    }
  }
  if (!(p->_flags & AMQP_BASIC_HEADERS_FLAG)) return;
  for (int i = 0; i < p->headers.num_entries; i++) {
    const amqp_table_entry_t *e = &p->headers.entries[i];
    bool ok = true;
    if (key_is(e, "x-kind")) {
      m->kind = str_is(&e->value, "data")     ? KIND_DATA
                : str_is(&e->value, "end")    ? KIND_END
                : str_is(&e->value, "error")  ? KIND_ERROR
                : str_is(&e->value, "cancel") ? KIND_CANCEL
                                              : KIND_BAD;
    } else if (key_is(e, "x-seq")) {
      m->seq = int_of(&e->value, &ok);
      m->has_seq = ok;
    } else if (key_is(e, "x-error-code")) {
      m->code = int_of(&e->value, &ok);
    } else if (key_is(e, "x-expires-at")) {
      m->expires_at = int_of(&e->value, &ok);
      m->has_expires = ok;
    }
    if (!ok) m->bad = true;
  }
}

static void msg_reset(asm_msg *m) {
  aioc__free(m->body);
  memset(m, 0, sizeof *m);
}

static void msg_done(amqp_tr *t, chan *c) {
  asm_msg *m = &c->m;
  if (m->what == MSG_RETURN) {
    on_return(t, m);
  } else if (c->id == 1 && strcmp(m->ctag, "aioc.r") == 0) {
    on_reply(t, m);
  } else if (c->id == 1 && strcmp(m->ctag, "aioc.x") == 0) {
    on_cancel(t, m);
  } else if (c->id == 1) {
    t->cnt.replies_dropped++;
  } else {
    on_request(t, c, m);
  }
  msg_reset(m);
}

static void send_close_ok(amqp_tr *t, uint16_t ch) {
  if (ch == 0) {
    amqp_connection_close_ok_t ok = {0};
    AIOC__IGNORE(put_method(t, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok));
  } else {
    amqp_channel_close_ok_t ok = {0};
    AIOC__IGNORE(put_method(t, ch, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok));
  }
  flush(t);
}

static bool has_word(amqp_bytes_t list, const char *w) {
  size_t n = strlen(w);
  const char *p = list.bytes, *e = p + list.len;
  while (p < e) {
    const char *sp = memchr(p, ' ', (size_t)(e - p));
    size_t len = sp ? (size_t)(sp - p) : (size_t)(e - p);
    if (len == n && memcmp(p, w, n) == 0) return true;
    p += len + 1;
  }
  return false;
}

static void on_connection_method(amqp_tr *t, amqp_method_t *mt) {
  switch (mt->id) {
  case AMQP_CONNECTION_START_METHOD: {
    amqp_connection_start_t *s = mt->decoded;
    if (t->state != HANDSHAKE || !has_word(s->mechanisms, "PLAIN")) {
      fail(t, -EPROTO, "the broker offers no PLAIN authentication");
      return;
    }
    amqp_table_entry_t caps[5] = {
        {.key = amqp_cstring_bytes("authentication_failure_close"),
         .value = {.kind = AMQP_FIELD_KIND_BOOLEAN, .value.boolean = 1}},
        {.key = amqp_cstring_bytes("connection.blocked"),
         .value = {.kind = AMQP_FIELD_KIND_BOOLEAN, .value.boolean = 1}},
        {.key = amqp_cstring_bytes("consumer_cancel_notify"),
         .value = {.kind = AMQP_FIELD_KIND_BOOLEAN, .value.boolean = 1}},
        {.key = amqp_cstring_bytes("publisher_confirms"),
         .value = {.kind = AMQP_FIELD_KIND_BOOLEAN, .value.boolean = 1}},
        {.key = amqp_cstring_bytes("basic.nack"),
         .value = {.kind = AMQP_FIELD_KIND_BOOLEAN, .value.boolean = 1}}};
    amqp_table_entry_t props[2] = {
        {.key = amqp_cstring_bytes("product"),
         .value = {.kind = AMQP_FIELD_KIND_UTF8,
                   .value.bytes = amqp_cstring_bytes("aioc")}},
        {.key = amqp_cstring_bytes("capabilities"),
         .value = {.kind = AMQP_FIELD_KIND_TABLE, .value.table = {5, caps}}}};
    size_t ul = strlen(t->user), pl = strlen(t->pass);
    char resp[600];
    if (ul + pl + 2 > sizeof resp) {
      fail(t, -EINVAL, "credentials too long");
      return;
    }
    resp[0] = '\0';
    memcpy(resp + 1, t->user, ul);
    resp[1 + ul] = '\0';
    memcpy(resp + 2 + ul, t->pass, pl);
    amqp_connection_start_ok_t ok = {.client_properties = {2, props},
                                     .mechanism = amqp_cstring_bytes("PLAIN"),
                                     .response = {ul + pl + 2, resp},
                                     .locale = amqp_cstring_bytes("en_US")};
    if (put_method(t, 0, AMQP_CONNECTION_START_OK_METHOD, &ok) < 0)
      fail(t, -ENOMEM, "out of memory in the handshake");
    break;
  }
  case AMQP_CONNECTION_TUNE_METHOD: {
    amqp_connection_tune_t *tu = mt->decoded;
    uint16_t chmax = tu->channel_max && tu->channel_max < MAXCH - 1
                         ? tu->channel_max
                         : MAXCH - 1;
    uint32_t fmax =
        tu->frame_max && tu->frame_max < FRAME_MAX ? tu->frame_max : FRAME_MAX;
    int want = (int)(t->hb_want + 0.5);
    if (want < 1) want = 1;
    int hb = tu->heartbeat && tu->heartbeat < want ? tu->heartbeat : want;
    t->hb = hb;
    amqp_connection_tune_ok_t ok = {chmax, fmax, (uint16_t)hb};
    amqp_connection_open_t op = {.virtual_host = bytes_of(t->vhost),
                                 .capabilities = amqp_empty_bytes};
    if (amqp_tune_connection(t->st, chmax, (int)fmax, 0) != 0 ||
        put_method(t, 0, AMQP_CONNECTION_TUNE_OK_METHOD, &ok) < 0 ||
        put_method(t, 0, AMQP_CONNECTION_OPEN_METHOD, &op) < 0) {
      fail(t, -ENOMEM, "out of memory in the handshake");
      return;
    }
    t->state = OPENING;
    break;
  }
  case AMQP_CONNECTION_OPEN_OK_METHOD:
    t->state = OPEN;
    aioc__waitpoint_notify(&t->wp);
    break;
  case AMQP_CONNECTION_CLOSE_METHOD: {
    amqp_connection_close_t *cl = mt->decoded;
    send_close_ok(t, 0);
    int code = cl->reply_code == AMQP_ACCESS_REFUSED ||
                       cl->reply_code == AMQP_NOT_ALLOWED
                   ? -EACCES
                   : -ECONNRESET;
    fail(t, code, "the broker closed the connection: %u %.*s",
         (unsigned)cl->reply_code,
         (int)(cl->reply_text.len > ERRMSG_MAX ? ERRMSG_MAX
                                               : cl->reply_text.len),
         (const char *)cl->reply_text.bytes);
    break;
  }
  case AMQP_CONNECTION_BLOCKED_METHOD:
    if (!t->blocked) t->cnt.blocked++;
    t->blocked = true;
    gate(t, false);
    break;
  case AMQP_CONNECTION_UNBLOCKED_METHOD:
    t->blocked = false;
    gate(t, false);
    break;
  default:
    break;
  }
}

static void on_channel_method(amqp_tr *t, chan *c, amqp_method_t *mt) {
  if (c->sync_expect && mt->id == c->sync_expect) {
    if (mt->id == AMQP_QUEUE_DECLARE_OK_METHOD) {
      amqp_queue_declare_ok_t *ok = mt->decoded;
      size_t n = ok->queue.len < 255 ? ok->queue.len : 255;
      memcpy(c->qname, ok->queue.bytes, n);
      c->qname[n] = '\0';
    }
    c->sync_expect = 0;
    c->sync_done = true;
    aioc__waitpoint_notify(&t->wp);
    return;
  }
  switch (mt->id) {
  case AMQP_BASIC_DELIVER_METHOD: {
    amqp_basic_deliver_t *d = mt->decoded;
    msg_reset(&c->m);
    c->m.what = MSG_DELIVER;
    c->m.tag = d->delivery_tag;
    c->m.redelivered = d->redelivered;
    size_t n = d->consumer_tag.len < sizeof c->m.ctag - 1
                   ? d->consumer_tag.len
                   : sizeof c->m.ctag - 1;
    memcpy(c->m.ctag, d->consumer_tag.bytes, n);
    c->m.ctag[n] = '\0';
    break;
  }
  case AMQP_BASIC_RETURN_METHOD: {
    amqp_basic_return_t *r = mt->decoded;
    msg_reset(&c->m);
    c->m.what = MSG_RETURN;
    c->m.reply_code = r->reply_code;
    break;
  }
  case AMQP_BASIC_ACK_METHOD: {
    amqp_basic_ack_t *a = mt->decoded;
    on_confirm(t, c, a->delivery_tag, a->multiple, false);
    break;
  }
  case AMQP_BASIC_NACK_METHOD: {
    amqp_basic_nack_t *a = mt->decoded;
    on_confirm(t, c, a->delivery_tag, a->multiple, true);
    break;
  }
  case AMQP_BASIC_CANCEL_METHOD:
    /* The broker cancelled a consumer (its queue was deleted): connect
     * again, which declares everything anew. */
    fail(t, -ECONNRESET, "the broker cancelled a consumer");
    break;
  case AMQP_CHANNEL_CLOSE_METHOD: {
    amqp_channel_close_t *cl = mt->decoded;
    send_close_ok(t, c->id);
    fail(t, cl->reply_code == AMQP_ACCESS_REFUSED ? -EACCES : -EPROTO,
         "the broker closed channel %u: %u %.*s", (unsigned)c->id,
         (unsigned)cl->reply_code,
         (int)(cl->reply_text.len > ERRMSG_MAX ? ERRMSG_MAX
                                               : cl->reply_text.len),
         (const char *)cl->reply_text.bytes);
    break;
  }
  default:
    break;
  }
}

static void on_frame(amqp_tr *t, amqp_frame_t *f) {
  if (f->frame_type == 'A' /* the broker's protocol header */) {
    fail(t, -EPROTO, "the broker does not speak AMQP 0-9-1");
    return;
  }
  if (f->frame_type == AMQP_FRAME_HEARTBEAT) return;
  if (f->channel == 0) {
    if (f->frame_type == AMQP_FRAME_METHOD)
      on_connection_method(t, &f->payload.method);
    return;
  }
  chan *c = f->channel < MAXCH ? t->ch[f->channel] : NULL;
  if (!c) return;
  switch (f->frame_type) {
  case AMQP_FRAME_METHOD:
    on_channel_method(t, c, &f->payload.method);
    break;
  case AMQP_FRAME_HEADER: {
    asm_msg *m = &c->m;
    if (!m->what || m->in_body) break;
    take_props(m, f->payload.properties.decoded);
    m->body_len = f->payload.properties.body_size;
    m->in_body = true;
    if (m->body_len > (64u << 20)) m->bad = true; /* refused unread */
    m->keep = !m->bad;
    if (m->keep) {
      m->body = aioc__alloc((size_t)m->body_len + 1);
      if (!m->body) {
        /* Cannot keep it: requests held go back to the broker, calls in
         * flight end with an error. Never a silent loss. */
        fail(t, -ENOMEM, "out of memory receiving a message");
        return;
      }
      m->body[m->body_len] = 0;
    }
    if (m->body_len == 0) msg_done(t, c);
    break;
  }
  case AMQP_FRAME_BODY: {
    asm_msg *m = &c->m;
    if (!m->in_body) break;
    amqp_bytes_t b = f->payload.body_fragment;
    uint64_t room = m->body_len - m->body_got;
    size_t n = b.len <= room ? b.len : (size_t)room;
    if (m->keep) memcpy(m->body + m->body_got, b.bytes, n);
    m->body_got += n;
    if (m->body_got >= m->body_len) {
      if (!m->keep) m->body_len = 0;
      msg_done(t, c);
    }
    break;
  }
  default:
    break;
  }
}

static void read_input(amqp_tr *t) {
  for (int round = 0; round < 16 && t->fd >= 0; round++) {
    ssize_t k = recv(t->fd, t->rbuf, RBUF_SIZE, 0);
    if (k == 0) {
      fail(t, -ECONNRESET, "the broker closed the connection");
      return;
    }
    if (k < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      fail(t, -ECONNRESET, "reading from the broker: %s", strerror(errno));
      return;
    }
    t->last_rx = aioc__now(t->tr.loop);
    for (size_t off = 0; off < (size_t)k && t->fd >= 0;) {
      amqp_frame_t f;
      int used = amqp_handle_input(
          t->st, (amqp_bytes_t){(size_t)k - off, t->rbuf + off}, &f);
      if (used < 0) {
        fail(t, -EPROTO, "bad data from the broker: %s",
             amqp_error_string2(used));
        return;
      }
      off += (size_t)used;
      if (f.frame_type) on_frame(t, &f);
    }
    if (t->st) amqp_maybe_release_buffers(t->st);
    if (k < RBUF_SIZE) return;
  }
}

static void on_io(aioc_loop *loop, int fd, uint32_t events, void *arg) {
  (void)loop;
  (void)fd;
  amqp_tr *t = arg;
  if (t->state == CONNECTING) {
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(t->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
    if (err) {
      fail(t, -err, "connecting to the broker: %s", strerror(err));
      return;
    }
    t->state = HANDSHAKE;
    static const uint8_t hdr[8] = {'A', 'M', 'Q', 'P', 0, 0, 9, 1};
    if (out_reserve(t, sizeof hdr) < 0) {
      fail(t, -ENOMEM, "out of memory");
      return;
    }
    out_put(t, hdr, sizeof hdr);
    t->last_rx = aioc__now(t->tr.loop);
    t->out_armed = true; /* registered for EPOLLOUT while connecting */
    flush(t);
    return;
  }
  if (events & EPOLLIN) {
    read_input(t);
  } else if (events & (EPOLLERR | EPOLLHUP)) {
    fail(t, -ECONNRESET, "the connection to the broker broke");
    return;
  }
  if (t->fd >= 0 && (events & EPOLLOUT)) flush(t);
}

/* poll_add needs the callback each time it changes the events. */
static int watch(amqp_tr *t, uint32_t events) {
  return aioc__poll_add(t->tr.loop, t->fd, events, on_io, t);
}

/* ---- heartbeats ---- */

static void hb_cb(void *arg) {
  amqp_tr *t = arg;
  aioc_handle_unref(t->hb_h);
  t->hb_h = NULL;
  if (t->fd < 0 || t->failing || t->hb <= 0 || t->state < OPEN) return;
  int64_t now = aioc__now(t->tr.loop), hbns = (int64_t)t->hb * 1000000000;
  if (now - t->last_rx > 2 * hbns) {
    fail(t, -ECONNRESET, "the broker stopped answering (no heartbeat for %d s)",
         2 * t->hb);
    return;
  }
  if (now - t->last_tx >= hbns / 2 && out_reserve(t, 8) == 0) {
    put_frame(t, AMQP_FRAME_HEARTBEAT, 0, NULL, 0);
    flush(t);
  }
  AIOC__IGNORE(aioc_call_later(&t->hb_h, t->tr.loop, t->hb / 4.0, hb_cb, t));
}

/* ---- the connection's life (the manager task) ---- */

static void fail(amqp_tr *t, int code, const char *fmt, ...) {
  if (t->failing || t->state == DOWN) return;
  t->failing = true;
  t->err = code;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(t->errmsg, sizeof t->errmsg, fmt, ap);
  va_end(ap);
  /* Stop the I/O now: the number may be reused once closed. */
  if (t->fd >= 0) {
    AIOC__IGNORE(aioc__poll_del(t->tr.loop, t->fd));
    close(t->fd);
    t->fd = -1;
  }
  gate(t, true);
  aioc__waitpoint_notify(&t->wp);
}

static chan *chan_new(amqp_tr *t, uint16_t id) {
  chan *c = aioc__calloc(1, sizeof *c);
  if (!c) return NULL;
  c->id = id;
  t->ch[id] = c;
  return c;
}

static void chan_free(amqp_tr *t, chan *c) {
  t->ch[c->id] = NULL;
  msg_reset(&c->m);
  aioc__free(c->pc);
  aioc__free(c->done);
  aioc__free(c);
}

static bool cond_state(void *arg) {
  amqp_tr *t = arg;
  return t->failing || t->closing || t->state == OPEN || t->state == DOWN;
}

static bool cond_sync(void *arg) {
  chan *c = arg;
  return c->sync_done || !c->sync_expect;
}

typedef struct sync_arg {
  amqp_tr *t;
  chan *c;
} sync_arg;

static bool cond_sync_or_fail(void *arg) {
  sync_arg *a = arg;
  return a->t->failing || a->t->closing || cond_sync(a->c);
}

/* Sends a synchronous method on c and waits for its -ok (expect). */
static int sync_call(amqp_tr *t, chan *c, amqp_method_number_t id,
                     void *decoded, amqp_method_number_t expect,
                     int64_t deadline) {
  c->sync_done = false;
  c->sync_expect = expect;
  int rc = put_method(t, c->id, id, decoded);
  if (rc < 0) return rc;
  flush(t);
  sync_arg a = {t, c};
  double left = (double)(deadline - aioc__now(t->tr.loop)) / 1e9;
  rc = aioc__waitpoint_wait(&t->wp, cond_sync_or_fail, &a, left > 0 ? left : 0,
                            false);
  if (t->failing) return t->err;
  if (t->closing) return -ECANCELED;
  if (rc == -ETIMEDOUT) {
    fail(t, -ETIMEDOUT, "the broker did not answer in time");
    return -ETIMEDOUT;
  }
  if (rc < 0) return rc;
  return c->sync_done ? 0 : -EPROTO;
}

static int declare_queue(amqp_tr *t, chan *c, const char *name, bool durable,
                         bool exclusive, bool with_dlx, int64_t deadline) {
  char dl[300];
  snprintf(dl, sizeof dl, "%sdead-letter", t->prefix);
  amqp_table_entry_t args[2] = {
      {.key = amqp_cstring_bytes("x-dead-letter-exchange"),
       .value = {.kind = AMQP_FIELD_KIND_UTF8,
                 .value.bytes = amqp_cstring_bytes("")}},
      {.key = amqp_cstring_bytes("x-dead-letter-routing-key"),
       .value = {.kind = AMQP_FIELD_KIND_UTF8,
                 .value.bytes = amqp_cstring_bytes(dl)}}};
  amqp_queue_declare_t m = {.queue = bytes_of(name),
                            .durable = durable,
                            .exclusive = exclusive,
                            .auto_delete = exclusive,
                            .arguments = {with_dlx ? 2 : 0, args}};
  return sync_call(t, c, AMQP_QUEUE_DECLARE_METHOD, &m,
                   AMQP_QUEUE_DECLARE_OK_METHOD, deadline);
}

static int consume(amqp_tr *t, chan *c, const char *queue, const char *tag,
                   bool no_ack, int64_t deadline) {
  amqp_basic_consume_t m = {.queue = bytes_of(queue),
                            .consumer_tag = bytes_of(tag),
                            .no_ack = no_ack};
  return sync_call(t, c, AMQP_BASIC_CONSUME_METHOD, &m,
                   AMQP_BASIC_CONSUME_OK_METHOD, deadline);
}

/* Opens channel c, in confirm mode if confirm is set. */
static int open_channel(amqp_tr *t, chan *c, bool confirm, int64_t deadline) {
  amqp_channel_open_t o = {.out_of_band = amqp_empty_bytes};
  int rc = sync_call(t, c, AMQP_CHANNEL_OPEN_METHOD, &o,
                     AMQP_CHANNEL_OPEN_OK_METHOD, deadline);
  amqp_confirm_select_t cs = {0};
  if (rc == 0 && confirm)
    rc = sync_call(t, c, AMQP_CONFIRM_SELECT_METHOD, &cs,
                   AMQP_CONFIRM_SELECT_OK_METHOD, deadline);
  if (rc == 0) c->confirming = confirm;
  return rc;
}

static int declare_cancel_exchange(amqp_tr *t, chan *c, int64_t deadline) {
  char ex[300];
  snprintf(ex, sizeof ex, "%scancel", t->prefix);
  amqp_exchange_declare_t m = {.exchange = bytes_of(ex),
                               .type = amqp_cstring_bytes("fanout"),
                               .durable = 1};
  return sync_call(t, c, AMQP_EXCHANGE_DECLARE_METHOD, &m,
                   AMQP_EXCHANGE_DECLARE_OK_METHOD, deadline);
}

/* A server's channel, its prefetch, the dead-letter queue, a queue and a
 * consumer per method; the worker cancellations' queue on channel 1. */
static int setup_server(amqp_tr *t, server_rec *sr, int64_t deadline) {
  uint16_t id = 2;
  while (id < MAXCH && t->ch[id])
    id++;
  if (id == MAXCH) return -EMFILE;
  chan *c = chan_new(t, id);
  if (!c) return -ENOMEM;
  /* Not in confirm mode until a reply needs it (amqp_send_reply). */
  int rc = open_channel(t, c, false, deadline);
  amqp_basic_qos_t q = {
      .prefetch_count = (uint16_t)(sr->prefetch < 65535 ? sr->prefetch : 65535),
      .global = 1};
  if (rc == 0)
    rc = sync_call(t, c, AMQP_BASIC_QOS_METHOD, &q, AMQP_BASIC_QOS_OK_METHOD,
                   deadline);
  char name[300], tag[64];
  snprintf(name, sizeof name, "%sdead-letter", t->prefix);
  if (rc == 0) rc = declare_queue(t, c, name, true, false, false, deadline);
  if (rc == 0 && !t->cancel_consumer) {
    chan *c1 = t->ch[1];
    rc = declare_queue(t, c1, "", false, true, false, deadline);
    char ex[300];
    snprintf(ex, sizeof ex, "%scancel", t->prefix);
    amqp_queue_bind_t b = {.queue = bytes_of(c1->qname),
                           .exchange = bytes_of(ex),
                           .routing_key = amqp_empty_bytes};
    if (rc == 0)
      rc = sync_call(t, c1, AMQP_QUEUE_BIND_METHOD, &b,
                     AMQP_QUEUE_BIND_OK_METHOD, deadline);
    if (rc == 0) rc = consume(t, c1, c1->qname, "aioc.x", true, deadline);
    if (rc == 0) t->cancel_consumer = true;
  }
  for (size_t i = 0; rc == 0 && sr->s && i < sr->nmethods; i++) {
    snprintf(name, sizeof name, "%s%s", t->prefix, sr->names[i]);
    rc = declare_queue(t, c, name, true, false, true, deadline);
    snprintf(tag, sizeof tag, "aioc.s%u.%zu", (unsigned)id, i);
    if (rc == 0) rc = consume(t, c, name, tag, false, deadline);
  }
  if (rc == 0 && sr->s) {
    sr->ch = c;
    c->srv = sr;
  }
  return rc;
}

static server_rec *pending_server(amqp_tr *t) {
  aioc__list_each(l, &t->servers) {
    server_rec *sr = aioc__container_of(l, server_rec, link);
    if (!sr->ch) return sr;
  }
  return NULL;
}

static int setup_pending_servers(amqp_tr *t) {
  server_rec *sr;
  int rc = 0;
  while (rc == 0 && !t->failing && !t->closing && (sr = pending_server(t))) {
    /* Unserved while it waits here, the record stays until setup ends. */
    t->setting_up = sr;
    rc = setup_server(t, sr,
                      aioc__deadline_after(t->tr.loop, t->connect_timeout));
    t->setting_up = NULL;
    if (!sr->s) server_rec_free(sr);
  }
  return rc;
}

static int connect_once(amqp_tr *t) {
  int64_t deadline = aioc__deadline_after(t->tr.loop, t->connect_timeout);
  t->failing = false;
  t->err = 0;
  t->errmsg[0] = '\0';
  t->blocked = false;
  t->st = amqp_new_connection();
  if (!t->st) return -ENOMEM;
  t->fd =
      socket(t->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (t->fd < 0) return -errno;
  int one = 1;
  setsockopt(t->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  t->state = CONNECTING;
  if (connect(t->fd, (struct sockaddr *)&t->addr, t->addrlen) < 0 &&
      errno != EINPROGRESS) {
    int err = -errno;
    t->failing = true;
    t->err = err;
    snprintf(t->errmsg, sizeof t->errmsg, "connecting to the broker: %s",
             strerror(-err));
    return err;
  }
  int rc = watch(t, EPOLLIN | EPOLLOUT);
  if (rc < 0) return rc;
  t->out_armed = true;
  double left = t->connect_timeout;
  rc = aioc__waitpoint_wait(&t->wp, cond_state, t, left, false);
  if (t->failing) return t->err;
  if (t->closing) return -ECANCELED;
  if (rc < 0 || t->state != OPEN) {
    if (rc == -ETIMEDOUT || rc == 0)
      snprintf(t->errmsg, sizeof t->errmsg,
               "no connection to the broker within %g s", t->connect_timeout);
    return rc < 0 ? rc : -ETIMEDOUT;
  }
  chan *c = chan_new(t, 1);
  if (!c) return -ENOMEM;
  rc = open_channel(t, c, t->confirm_requests, deadline);
  if (rc == 0) rc = declare_cancel_exchange(t, c, deadline);
  if (rc == 0)
    rc = consume(t, c, "amq.rabbitmq.reply-to", "aioc.r", true, deadline);
  if (rc < 0) return rc;
  t->state = UP;
  t->cnt.connections++;
  if (t->hb > 0) {
    t->last_tx = aioc__now(t->tr.loop);
    rc = aioc_call_later(&t->hb_h, t->tr.loop, t->hb / 4.0, hb_cb, t);
    if (rc < 0) return rc;
  }
  rc = setup_pending_servers(t);
  gate(t, false);
  return rc;
}

/* Ends everything the connection carried, and frees it. */
static void teardown(amqp_tr *t) {
  if (!t->failing) {
    t->failing = true;
    if (!t->err) {
      t->err = -ECONNRESET;
      snprintf(t->errmsg, sizeof t->errmsg, "the transport was closed");
    }
  }
  if (t->fd >= 0) {
    AIOC__IGNORE(aioc__poll_del(t->tr.loop, t->fd));
    close(t->fd);
    t->fd = -1;
  }
  if (t->hb_h) {
    aioc_handle_cancel(t->hb_h);
    aioc_handle_unref(t->hb_h);
    t->hb_h = NULL;
  }
  if (t->flush_h) {
    aioc_handle_cancel(t->flush_h);
    aioc_handle_unref(t->flush_h);
    t->flush_h = NULL;
  }
  bool was_up = t->state == UP;
  t->state = DOWN;
  /* Calls in flight: their replies can no longer come. */
  for (size_t b = 0; b < NBUCKETS; b++) {
    call_rec *r;
    while ((r = t->tab[b])) {
      if (was_up)
        call_fail(r, -ECONNRESET, "the connection to the broker was lost: %s",
                  t->errmsg);
      else
        call_fail(r, -ECONNRESET, "%s", t->errmsg);
    }
  }
  /* Requests held: the broker gives them to another worker. */
  aioc__list_each(l, &t->reqs) {
    aioc__container_of(l, req_rec, link)->lost = true;
  }
  for (;;) {
    req_rec *found = NULL;
    aioc__list_each(l, &t->reqs) {
      req_rec *q = aioc__container_of(l, req_rec, link);
      if (q->req && !q->cancelled) {
        found = q;
        break;
      }
    }
    if (!found) break;
    found->cancelled = true;
    aioc__rpc_request_abandon(found->req); /* may free found */
  }
  aioc__list_each(l, &t->servers) {
    aioc__container_of(l, server_rec, link)->ch = NULL;
  }
  for (int i = 0; i < MAXCH; i++)
    if (t->ch[i]) chan_free(t, t->ch[i]);
  t->cancel_consumer = false;
  t->out_head = t->out_len = 0;
  t->out_armed = false;
  t->blocked = false;
  if (t->st) {
    amqp_destroy_connection(t->st);
    t->st = NULL;
  }
  gate(t, true);
}

static bool cond_up_event(void *arg) {
  amqp_tr *t = arg;
  return t->failing || t->closing || pending_server(t);
}

static void destroy(amqp_tr *t);

static bool no_pumps(void *arg) {
  return ((amqp_tr *)arg)->npumps == 0;
}

static int manager_main(void *arg, void **result) {
  (void)result;
  amqp_tr *t = arg;
  double backoff = 0.1;
  bool first = true;
  while (!t->closing) {
    int rc = connect_once(t);
    if (first) {
      t->first_rc = rc;
      if (rc < 0 && t->errmsg[0] == '\0')
        snprintf(t->errmsg, sizeof t->errmsg, "%s", aioc_strerror(rc));
      first = false;
      AIOC__IGNORE(aioc_event_set(t->first));
    }
    if (rc == 0) {
      backoff = 0.1;
      while (!t->failing && !t->closing) {
        rc =
            aioc__waitpoint_wait(&t->wp, cond_up_event, t, AIOC_FOREVER, false);
        if (rc < 0) break;
        if (setup_pending_servers(t) < 0 && !t->failing)
          fail(t, -EPROTO, "setting up a server failed");
      }
    }
    if (t->closing && t->state == UP && !t->failing) {
      /* A clean goodbye, best effort. */
      amqp_connection_close_t cl = {.reply_code = AMQP_REPLY_SUCCESS,
                                    .reply_text = amqp_cstring_bytes("bye")};
      AIOC__IGNORE(put_method(t, 0, AMQP_CONNECTION_CLOSE_METHOD, &cl));
      flush(t);
    }
    teardown(t);
    if (t->closing || rc == -ECANCELED) break;
    if (aioc_sleep(backoff) < 0) break;
    backoff = backoff * 2 < 2 ? backoff * 2 : 2;
  }
  teardown(t);
  /* The calls are withdrawn by now (the clients are freed first): their
   * pumps end at their next step. */
  while (t->npumps)
    AIOC__IGNORE(aioc__waitpoint_wait(&t->wp, no_pumps, t, AIOC_FOREVER, true));
  aioc_task_unref(t->mgr);
  t->mgr = NULL;
  if (t->orphan) destroy(t);
  return 0;
}

/* ---- creation and freeing ---- */

static void destroy(amqp_tr *t) {
  aioc_event_free(t->can_pub);
  aioc_event_free(t->first);
  aioc__list *l;
  while ((l = aioc__list_first(&t->servers))) {
    aioc__list_del(l);
    server_rec_free(aioc__container_of(l, server_rec, link));
  }
  aioc__free(t->out);
  aioc__free(t->rbuf);
  aioc__free(t->user);
  aioc__free(t->pass);
  aioc__free(t->vhost);
  aioc__free(t->prefix);
  aioc__free(t);
}

static void amqp_free(aioc_rpc_transport *tr) {
  amqp_tr *t = of(tr);
  t->closing = true;
  aioc__waitpoint_notify(&t->wp);
  if (!t->mgr) {
    destroy(t);
    return;
  }
  aioc_task *mgr = t->mgr;
  if (aioc__current() || !aioc__running) {
    aioc_task_ref(mgr);
    AIOC__IGNORE(aioc_task_cancel(mgr, "the transport is freed"));
    /* Its end is waited for even in a cancelled task. */
    aioc_task *self = aioc__current();
    if (self) self->r->nocancel++;
    AIOC__IGNORE(aioc_block_on(aioc_task_future(mgr), NULL));
    if (self) self->r->nocancel--;
    aioc_task_unref(mgr);
    destroy(t);
    return;
  }
  /* A callback: the manager frees it at its end. */
  t->orphan = true;
  AIOC__IGNORE(aioc_task_cancel(mgr, "the transport is freed"));
}

static const aioc__rpc_tops amqp_ops = {
    amqp_send_request, amqp_cancel_request, amqp_serve, amqp_unserve,
    amqp_send_reply,   amqp_finish,         amqp_free,  amqp_requeue};

/* Percent-decoded copy of s (NULL: out of memory). */
static char *decode_dup(const char *s) {
  if (!s) s = "";
  char *d = aioc__alloc(strlen(s) + 1), *o = d;
  if (!d) return NULL;
  for (; *s; s++) {
    if (s[0] == '%' && s[1] && s[2]) {
      char hex[3] = {s[1], s[2], 0}, *end;
      long v = strtol(hex, &end, 16);
      if (!*end) {
        *o++ = (char)v;
        s += 2;
        continue;
      }
    }
    *o++ = *s;
  }
  *o = '\0';
  return d;
}

/* Parses url into t (address, credentials, vhost). */
static int parse_url(amqp_tr *t, const char *url) {
  if (strncmp(url, "amqp://", 7) != 0) return -EINVAL;
  char *copy = aioc__strdup(url);
  if (!copy) return -ENOMEM;
  struct amqp_connection_info ci;
  amqp_default_connection_info(&ci);
  int rc = amqp_parse_url(copy, &ci) == AMQP_STATUS_OK ? 0 : -EINVAL;
  if (rc == 0 && ci.ssl) rc = -EINVAL;
  if (rc == 0) {
    const char *host =
        strcmp(ci.host, "localhost") == 0 ? "127.0.0.1" : ci.host;
    struct sockaddr_in *a4 = (struct sockaddr_in *)&t->addr;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&t->addr;
    if (ci.port <= 0 || ci.port > 65535) {
      rc = -EINVAL;
    } else if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
      a4->sin_family = AF_INET;
      a4->sin_port = htons((uint16_t)ci.port);
      t->addrlen = sizeof *a4;
    } else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
      a6->sin6_family = AF_INET6;
      a6->sin6_port = htons((uint16_t)ci.port);
      t->addrlen = sizeof *a6;
    } else {
      rc = -EINVAL; /* a name: resolving it would block */
    }
  }
  if (rc == 0) {
    /* amqp_parse_url decodes the user and password, not the vhost. */
    t->user = aioc__strdup(ci.user);
    t->pass = aioc__strdup(ci.password);
    t->vhost = decode_dup(ci.vhost);
    if (!t->user || !t->pass || !t->vhost) rc = -ENOMEM;
  }
  aioc__free(copy);
  return rc;
}

static bool cond_first(void *arg) {
  return aioc_event_is_set(arg);
}

static int wait_first_main(void *arg, void **result) {
  (void)result;
  amqp_tr *t = arg;
  int rc = aioc_event_wait(t->first, AIOC_FOREVER);
  return rc < 0 ? rc : 0;
}

int aioc_rpc_amqp_new(aioc_rpc_transport **out, const char *url,
                      const aioc_rpc_amqp_options *opts) {
  (void)cond_first;
  if (!out) return -EINVAL;
  *out = NULL;
  if (!url) return -EINVAL;
  aioc_rpc_amqp_options o = {0};
  if (opts) o = *opts;
  if (!(o.heartbeat >= 0) || !(o.connect_timeout >= 0) || o.heartbeat > 65535 ||
      o.connect_timeout > 1e6)
    return -EINVAL;
  if (o.prefix && strlen(o.prefix) > 200) return -EINVAL;
  aioc_task *self = aioc__current();
  if (!self && aioc__running) return AIOC_ERUNNING;
  aioc_loop *loop = aioc__running ? aioc__running : aioc_loop_current();
  if (!loop) return -ENOMEM;
  if (loop->closed) return AIOC_ECLOSED;
  amqp_tr *t = aioc__calloc(1, sizeof *t);
  if (!t) return -ENOMEM;
  t->tr.ops = &amqp_ops;
  t->tr.loop = loop;
  t->fd = -1;
  t->state = DOWN;
  aioc__list_init(&t->servers);
  aioc__list_init(&t->reqs);
  aioc__waitpoint_init(&t->wp, loop);
  t->hb_want = o.heartbeat > 0 ? o.heartbeat : 10;
  t->connect_timeout = o.connect_timeout > 0 ? o.connect_timeout : 10;
  t->max_buffer = o.max_buffer ? o.max_buffer : 4u << 20;
  t->confirm_requests = !o.unconfirmed_requests;
  t->prefix = aioc__strdup(o.prefix ? o.prefix : "aioc.rpc.");
  int rc = t->prefix ? parse_url(t, url) : -ENOMEM;
  if (rc == 0) {
    t->prefix_len = strlen(t->prefix);
    t->rbuf = aioc__alloc(RBUF_SIZE);
    if (!t->rbuf || aioc_event_new(&t->can_pub) < 0 ||
        aioc_event_new(&t->first) < 0)
      rc = -ENOMEM;
  }
  if (rc == 0) {
    /* Correlation ids are unique across clients: a random prefix. */
    unsigned char rnd[12];
    FILE *f = fopen("/dev/urandom", "rb");
    size_t got = f ? fread(rnd, 1, sizeof rnd, f) : 0;
    if (f) fclose(f);
    if (got != sizeof rnd) {
      struct timespec ts;
      clock_gettime(CLOCK_REALTIME, &ts);
      uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^
                   ((uint64_t)getpid() << 40) ^ (uintptr_t)t;
      for (size_t i = 0; i < sizeof rnd; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        rnd[i] = (unsigned char)(x >> 56);
      }
    }
    for (size_t i = 0; i < sizeof rnd; i++)
      snprintf(t->client_id + 2 * i, 3, "%02x", rnd[i]);
    aioc_task_options to = {.name = "rpc-amqp-connection"};
    rc = aioc_spawn_ex(&t->mgr, loop, manager_main, t, &to);
    if (rc < 0) t->mgr = NULL;
  }
  if (rc < 0) {
    destroy(t);
    return rc;
  }
  /* Wait for the first connection attempt. */
  if (self) {
    rc = aioc_event_wait(t->first, AIOC_FOREVER);
  } else {
    aioc_task *w;
    rc = aioc_spawn_ex(&w, loop, wait_first_main, t, NULL);
    if (rc == 0) {
      rc = aioc_block_on(aioc_task_future(w), NULL);
      aioc_task_unref(w);
    }
  }
  if (rc == 0) rc = t->first_rc;
  if (rc < 0) {
    char msg[sizeof t->errmsg];
    snprintf(msg, sizeof msg, "%s", t->errmsg);
    amqp_free(&t->tr);
    return msg[0] ? aioc_error(rc, "%s", msg) : rc;
  }
  *out = &t->tr;
  return 0;
}

int aioc_rpc_amqp_stats(const aioc_rpc_transport *tr,
                        aioc_rpc_amqp_counters *out) {
  if (!tr || !out || tr->ops != &amqp_ops) return -EINVAL;
  const amqp_tr *t = aioc__container_of(tr, amqp_tr, tr);
  *out = t->cnt;
  out->connected = t->state == UP && !t->failing;
  out->is_blocked = t->blocked;
  out->serving = 0;
  aioc__list_each(l, &t->servers) {
    if (aioc__container_of(l, server_rec, link)->ch) out->serving++;
  }
  return 0;
}

#else /* no rabbitmq-c: the API is there, the transport is not */

int aioc_rpc_amqp_new(aioc_rpc_transport **out, const char *url,
                      const aioc_rpc_amqp_options *opts) {
  (void)url;
  (void)opts;
  if (out) *out = NULL;
  return out ? -ENOSYS : -EINVAL;
}

int aioc_rpc_amqp_stats(const aioc_rpc_transport *tr,
                        aioc_rpc_amqp_counters *out) {
  (void)tr;
  (void)out;
  return -EINVAL;
}

#endif
