/* TLS streams: OpenSSL as a transport under an ordinary stream.
 *
 * The SSL object talks to two memory BIOs, never to the socket: what it
 * writes (records, alerts, KeyUpdate answers, session tickets) is moved
 * to an out buffer and sent from there; what the socket gives is written
 * into its in BIO before SSL_read() or SSL_do_handshake() is asked again.
 * So no SSL call ever waits on the socket: SSL_write() always takes its
 * bytes whole (there is no retry to repeat with the same arguments), a
 * read that makes OpenSSL answer something only queues the answer (the
 * stream's poller callback sends it), and a reader task and a writer task
 * can take turns on the one SSL object, each call complete before the
 * other starts. The stream (stream.c) keeps its buffers and flow control:
 * a send is refused (-EAGAIN) while the out buffer holds OUT_HIGH bytes
 * the socket did not take, so the plaintext waits in the stream's write
 * buffer, where drain sees it. */
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <string.h>

#include "io.h"

#define fail aioc__fail

#define IN_CHUNK ((size_t)16 * 1024)  /* one recv() into the in BIO */
#define OUT_HIGH ((size_t)64 * 1024)  /* encrypted bytes held back at most */
#define SEND_CHUNK ((size_t)64 * 1024) /* plaintext per SSL_write() */
#define DEFAULT_HANDSHAKE 60.0

struct aioc_tls_context {
  SSL_CTX *ctx;
  unsigned char *alpn; /* the ALPN list in wire format, or NULL */
  size_t alpn_len;
  double handshake_timeout;
  bool server;
  bool verify;
  int refs; /* atomic: the user's, each server's */
};

typedef struct tls {
  aioc_stream *s;
  SSL *ssl;
  BIO *in, *out;  /* the SSL object's network side, both in memory */
  char *ib;       /* a recv() lands here, then goes into `in` */
  char *ob;       /* encrypted bytes not yet sent: olen at ooff */
  size_t ooff, olen, ocap;
  int err;        /* a TLS failure: every later call returns it */
  int werr;       /* the socket's send error */
  bool handshaking;
  bool shut;      /* close_notify queued */
  bool in_eof;    /* the socket's end of file was read */
  char *host;     /* the name a client connected to (messages), or NULL */
  char *alpn, *subject, *sni;
  const char *version;
} tls;

/* ---- contexts ---- */

static void ctx_ref(aioc_tls_context *c) {
  __atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
}

static void ctx_unref(aioc_tls_context *c) {
  if (__atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL)) return;
  SSL_CTX_free(c->ctx);
  aioc__free(c->alpn);
  aioc__free(c);
}

static void ctx_unref_void(void *c) { ctx_unref(c); }

/* The reason of OpenSSL's first queued error (the queue is emptied). */
static const char *ssl_reason(char *buf, size_t cap) {
  unsigned long e = ERR_peek_error();
  const char *r = e ? ERR_reason_error_string(e) : NULL;
  if (r)
    snprintf(buf, cap, "%s", r);
  else if (e)
    snprintf(buf, cap, "OpenSSL error %lx", e);
  else
    snprintf(buf, cap, "unknown error");
  ERR_clear_error();
  return buf;
}

/* A server picks the first of its protocols that the client offers. */
static int alpn_select(SSL *ssl, const unsigned char **out,
                       unsigned char *outlen, const unsigned char *in,
                       unsigned int inlen, void *arg) {
  (void)ssl;
  aioc_tls_context *c = arg;
  unsigned char *o;
  if (SSL_select_next_proto(&o, outlen, c->alpn, (unsigned)c->alpn_len, in,
                            inlen) != OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK; /* nothing in common: no ALPN */
  *out = o;
  return SSL_TLSEXT_ERR_OK;
}

static int alpn_wire(aioc_tls_context *c, const char *const *names) {
  size_t len = 0;
  for (const char *const *p = names; *p; p++) {
    size_t n = strlen(*p);
    if (n == 0 || n > 255) return -EINVAL;
    len += 1 + n;
  }
  if (!len) return 0;
  if (!(c->alpn = aioc__alloc(len))) return -ENOMEM;
  for (const char *const *p = names; *p; p++) {
    size_t n = strlen(*p);
    c->alpn[c->alpn_len++] = (unsigned char)n;
    memcpy(c->alpn + c->alpn_len, *p, n);
    c->alpn_len += n;
  }
  return 0;
}

static int ctx_setup(aioc_tls_context *c, const aioc_tls_options *o) {
  char why[256];
  SSL_CTX *x = c->ctx;
  SSL_CTX_set_min_proto_version(x, o->min_version == AIOC_TLS_VERSION_1_3
                                       ? TLS1_3_VERSION
                                       : TLS1_2_VERSION);
  /* TLS 1.2 renegotiation would let a write need a read; refused. */
  SSL_CTX_set_options(x, SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_mode(x, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (o->cert_file &&
      SSL_CTX_use_certificate_chain_file(x, o->cert_file) != 1)
    return fail(AIOC_ETLS, "TLS: cannot load the certificate chain %s: %s",
                o->cert_file, ssl_reason(why, sizeof why));
  if (o->key_file &&
      SSL_CTX_use_PrivateKey_file(x, o->key_file, SSL_FILETYPE_PEM) != 1)
    return fail(AIOC_ETLS, "TLS: cannot load the private key %s: %s",
                o->key_file, ssl_reason(why, sizeof why));
  if (o->cert_file && o->key_file && SSL_CTX_check_private_key(x) != 1)
    return fail(AIOC_ETLS, "TLS: the key %s does not match the certificate "
                           "%s: %s",
                o->key_file, o->cert_file, ssl_reason(why, sizeof why));
  if (o->ca_file || o->ca_dir) {
    if (SSL_CTX_load_verify_locations(x, o->ca_file, o->ca_dir) != 1)
      return fail(AIOC_ETLS, "TLS: cannot load the CAs %s%s%s: %s",
                  o->ca_file ? o->ca_file : "",
                  o->ca_file && o->ca_dir ? " and " : "",
                  o->ca_dir ? o->ca_dir : "", ssl_reason(why, sizeof why));
  } else if (!o->server && !o->insecure &&
             SSL_CTX_set_default_verify_paths(x) != 1) {
    return fail(AIOC_ETLS, "TLS: cannot load the system's CA store: %s",
                ssl_reason(why, sizeof why));
  }
  c->verify = !o->server && !o->insecure;
  SSL_CTX_set_verify(x, c->verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
  if (c->alpn) {
    if (o->server)
      SSL_CTX_set_alpn_select_cb(x, alpn_select, c);
    else if (SSL_CTX_set_alpn_protos(x, c->alpn, (unsigned)c->alpn_len) != 0)
      return -ENOMEM;
  }
  return 0;
}

int aioc_tls_context_new(aioc_tls_context **out, const aioc_tls_options *o) {
  if (!out) return -EINVAL;
  *out = NULL;
  static const aioc_tls_options defaults;
  if (!o) o = &defaults;
  if ((unsigned)o->min_version > AIOC_TLS_VERSION_1_3 ||
      (o->server && (!o->cert_file || !o->key_file)) ||
      !(o->handshake_timeout >= 0))
    return -EINVAL;
  aioc_tls_context *c = aioc__calloc(1, sizeof *c);
  if (!c) return -ENOMEM;
  c->refs = 1;
  c->server = o->server;
  c->handshake_timeout =
      o->handshake_timeout ? o->handshake_timeout : DEFAULT_HANDSHAKE;
  int rc = o->alpn ? alpn_wire(c, o->alpn) : 0;
  if (rc == 0) {
    c->ctx = SSL_CTX_new(o->server ? TLS_server_method() : TLS_client_method());
    rc = c->ctx ? ctx_setup(c, o) : -ENOMEM;
  }
  if (rc < 0) {
    ERR_clear_error();
    ctx_unref(c);
    return rc;
  }
  *out = c;
  return 0;
}

void aioc_tls_context_free(aioc_tls_context *ctx) {
  if (ctx) ctx_unref(ctx);
}

/* ---- the transport ---- */

static const aioc__transport_ops tls_ops;

/* A failure of the SSL object after SSL_get_error() said e: the code
 * (sticky), with its message. */
static int tls_fail(tls *t, int e, const char *what) {
  char why[256];
  int code = AIOC_ETLS;
  long vr = SSL_get_verify_result(t->ssl);
  const char *with = t->host ? " with " : "", *host = t->host ? t->host : "";
  if (e == SSL_ERROR_SSL && t->handshaking && vr != X509_V_OK &&
      SSL_get_verify_mode(t->ssl) != SSL_VERIFY_NONE) {
    ERR_clear_error();
    t->err = code;
    return fail(code, "TLS %s%s%s: certificate verify failed: %s", what, with,
                host, X509_verify_cert_error_string(vr));
  }
  unsigned long ec = ERR_peek_error();
  if (e == SSL_ERROR_SYSCALL ||
      (e == SSL_ERROR_SSL &&
       ERR_GET_REASON(ec) == SSL_R_UNEXPECTED_EOF_WHILE_READING)) {
    ERR_clear_error();
    t->err = code = -ECONNRESET;
    return fail(code, "TLS %s%s%s: the peer closed the connection without "
                      "a close_notify",
                what, with, host);
  }
  t->err = code;
  return fail(code, "TLS %s%s%s: %s", what, with, host,
              ssl_reason(why, sizeof why));
}

/* Moves what OpenSSL wrote to the out buffer and sends it. 0 (all sent),
 * -EAGAIN (the socket is full), or the send error (sticky). */
static int out_flush(tls *t) {
  if (t->werr) return t->werr;
  size_t p = BIO_ctrl_pending(t->out);
  if (p) {
    if (t->ocap - t->ooff - t->olen < p) {
      if (t->ooff) {
        memmove(t->ob, t->ob + t->ooff, t->olen);
        t->ooff = 0;
      }
      if (t->ocap - t->olen < p) {
        size_t cap = t->ocap ? t->ocap : 16 * 1024;
        while (cap - t->olen < p) cap *= 2;
        char *nb = aioc__realloc(t->ob, cap);
        if (!nb) return t->werr = -ENOMEM;
        t->ob = nb;
        t->ocap = cap;
      }
    }
    int r = BIO_read(t->out, t->ob + t->ooff + t->olen, (int)p);
    if (r > 0) t->olen += (size_t)r;
  }
  aioc__iofd *io = aioc__stream_iofd(t->s);
  while (t->olen) {
    if (!io) return AIOC_ECLOSED;
    ssize_t r = send(io->fd, t->ob + t->ooff, t->olen,
                     MSG_NOSIGNAL | MSG_DONTWAIT);
    if (r > 0) {
      t->ooff += (size_t)r;
      t->olen -= (size_t)r;
    } else if (errno == EINTR) {
      continue;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      io->ready &= ~(uint32_t)EPOLLOUT;
      return -EAGAIN;
    } else {
      return t->werr = -errno;
    }
  }
  t->ooff = 0;
  return 0;
}

/* One recv() from the socket into the in BIO while the poller's last
 * report stands. 0 (bytes, or the end of file, went in), -EAGAIN (dry:
 * wait for the poller), or the error. */
static int in_fill(tls *t) {
  aioc__iofd *io = aioc__stream_iofd(t->s);
  if (!io) return AIOC_ECLOSED;
  if (t->in_eof) return 0;
  if (!(io->ready & AIOC__RD_EVENTS)) return -EAGAIN;
  for (;;) {
    ssize_t r = recv(io->fd, t->ib, IN_CHUNK, 0);
    if (r > 0) {
      if ((size_t)r < IN_CHUNK) io->ready &= ~(uint32_t)EPOLLIN;
      BIO_write(t->in, t->ib, (int)r);
      return 0;
    }
    if (r == 0) {
      t->in_eof = true;
      BIO_set_mem_eof_return(t->in, 0); /* OpenSSL sees the end now */
      return 0;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      io->ready &= ~(uint32_t)EPOLLIN;
      return -EAGAIN;
    }
    return -errno;
  }
}

static ssize_t tls_recv(void *tp, void *buf, size_t cap) {
  tls *t = tp;
  if (t->err) return t->err;
  if (t->handshaking) return -EAGAIN;
  for (;;) {
    ERR_clear_error();
    size_t n = 0;
    int ok = SSL_read_ex(t->ssl, buf, cap, &n);
    int e = ok ? SSL_ERROR_NONE : SSL_get_error(t->ssl, 0);
    /* A KeyUpdate answer or an alert: it goes now, or from the poller
     * (a send error shows at the next write). */
    if (t->olen || BIO_ctrl_pending(t->out)) {
      int frc = out_flush(t);
      (void)frc;
    }
    if (ok) return (ssize_t)n;
    if (e == SSL_ERROR_ZERO_RETURN) return 0; /* close_notify */
    if (e != SSL_ERROR_WANT_READ) return tls_fail(t, e, "read");
    int rc = in_fill(t);
    if (rc < 0) return rc;
  }
}

static ssize_t tls_send(void *tp, const void *p, size_t n) {
  tls *t = tp;
  if (t->err) return t->err;
  if (t->werr) return t->werr;
  if (t->shut) return -EPIPE; /* not reached: the stream stops first */
  if (t->handshaking) return -EAGAIN; /* kept until the handshake ends */
  if (t->olen >= OUT_HIGH) {
    int rc = out_flush(t);
    if (rc < 0 && rc != -EAGAIN) return rc;
    if (t->olen >= OUT_HIGH) return -EAGAIN; /* the socket said EAGAIN */
  }
  size_t k = n < SEND_CHUNK ? n : SEND_CHUNK, w = 0;
  ERR_clear_error();
  if (!SSL_write_ex(t->ssl, p, k, &w))
    return tls_fail(t, SSL_get_error(t->ssl, 0), "write");
  int rc = out_flush(t);
  if (rc < 0 && rc != -EAGAIN) return rc;
  return (ssize_t)w;
}

static int tls_flush(void *tp) {
  tls *t = tp;
  return t->err ? t->err : out_flush(t);
}

static int tls_shutdown(void *tp) {
  tls *t = tp;
  if (t->err || t->handshaking) return 0; /* nothing to end */
  if (!t->shut) {
    t->shut = true;
    ERR_clear_error();
    SSL_shutdown(t->ssl); /* queues close_notify; the peer's is not awaited */
    ERR_clear_error();
  }
  return out_flush(t);
}

static bool tls_pending(void *tp) {
  tls *t = tp;
  return !t->werr && (t->olen || BIO_ctrl_pending(t->out));
}

static bool tls_readable(void *tp) {
  tls *t = tp;
  return !t->handshaking &&
         (t->in_eof || SSL_pending(t->ssl) > 0 || BIO_ctrl_pending(t->in) > 0);
}

static void tls_free(void *tp) {
  tls *t = tp;
  SSL_free(t->ssl); /* and its BIOs */
  aioc__free(t->ib);
  aioc__free(t->ob);
  aioc__free(t->host);
  aioc__free(t->alpn);
  aioc__free(t->subject);
  aioc__free(t->sni);
  aioc__free(t);
}

static const aioc__transport_ops tls_ops = {
    tls_recv,    tls_send,     tls_flush, tls_shutdown,
    tls_pending, tls_readable, tls_free};

/* ---- the handshake ---- */

static char *dup_n(const char *p, size_t n) {
  char *d = aioc__alloc(n + 1);
  if (d) {
    memcpy(d, p, n);
    d[n] = 0;
  }
  return d;
}

static bool is_numeric(const char *host) {
  unsigned char a[16];
  return inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
}

/* Puts a TLS transport under s, handshaking. 0, -ENOMEM. */
static int attach(aioc_stream *s, aioc_tls_context *c, const char *host,
                  tls **out) {
  tls *t = aioc__calloc(1, sizeof *t);
  if (!t) return -ENOMEM;
  t->s = s;
  t->handshaking = true;
  t->ib = aioc__alloc(IN_CHUNK);
  t->ssl = SSL_new(c->ctx);
  t->in = BIO_new(BIO_s_mem());
  t->out = BIO_new(BIO_s_mem());
  if (t->in && t->out && t->ssl) {
    SSL_set_bio(t->ssl, t->in, t->out); /* the SSL object owns them */
  } else {
    BIO_free(t->in);
    BIO_free(t->out);
    t->in = t->out = NULL;
  }
  if (host && !(t->host = dup_n(host, strlen(host)))) t->in = NULL;
  int ok = t->ib && t->in;
  if (ok && c->server) {
    SSL_set_accept_state(t->ssl);
  } else if (ok) {
    SSL_set_connect_state(t->ssl);
    if (is_numeric(host)) {
      if (c->verify)
        ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), host);
    } else {
      ok = SSL_set_tlsext_host_name(t->ssl, host) &&
           (!c->verify || SSL_set1_host(t->ssl, host));
    }
  }
  if (!ok) {
    ERR_clear_error();
    tls_free(t);
    return -ENOMEM;
  }
  /* What was read already (a ClientHello behind a STARTTLS command) is
   * the start of the handshake. */
  const char *data;
  size_t len = aioc__stream_buffered(s, &data);
  if (len) {
    BIO_write(t->in, data, (int)len);
    aioc__stream_consume(s, len);
  }
  aioc__stream_set_transport(s, &tls_ops, t);
  *out = t;
  return 0;
}

static int handshake(tls *t, aioc_task *task, int64_t deadline) {
  for (;;) {
    ERR_clear_error();
    int r = SSL_do_handshake(t->ssl);
    int e = r == 1 ? SSL_ERROR_NONE : SSL_get_error(t->ssl, r);
    int frc = out_flush(t);
    if (frc < 0 && frc != -EAGAIN) return frc;
    if (r == 1) return 0; /* the rest goes from the poller */
    if (e != SSL_ERROR_WANT_READ) return tls_fail(t, e, "handshake");
    int rc;
    if (frc == -EAGAIN) /* the peer waits for what we could not send */
      rc = aioc__stream_wait(t->s, task, AIOC__WR, deadline);
    else if ((rc = in_fill(t)) == -EAGAIN)
      rc = aioc__stream_wait(t->s, task, AIOC__RD, deadline);
    if (rc < 0) return rc;
  }
}

/* What was settled, kept for the accessors. 0 or -ENOMEM. */
static int settled(tls *t) {
  t->version = SSL_get_version(t->ssl);
  const unsigned char *a;
  unsigned alen;
  SSL_get0_alpn_selected(t->ssl, &a, &alen);
  if (alen && !(t->alpn = dup_n((const char *)a, alen))) return -ENOMEM;
  const char *sni = SSL_get_servername(t->ssl, TLSEXT_NAMETYPE_host_name);
  if (sni && !(t->sni = dup_n(sni, strlen(sni)))) return -ENOMEM;
  X509 *peer = SSL_get0_peer_certificate(t->ssl);
  if (peer) {
    BIO *b = BIO_new(BIO_s_mem());
    if (!b) return -ENOMEM;
    X509_NAME_print_ex(b, X509_get_subject_name(peer), 0, XN_FLAG_RFC2253);
    char *p;
    long n = BIO_get_mem_data(b, &p);
    t->subject = dup_n(n > 0 ? p : "", n > 0 ? (size_t)n : 0);
    BIO_free(b);
    if (!t->subject) return -ENOMEM;
  }
  return 0;
}

/* The handshake on s, from task, before deadline. On failure s is
 * broken. */
static int start_tls(aioc_stream *s, aioc_tls_context *c, const char *host,
                     aioc_task *task, int64_t deadline) {
  if (aioc__stream_has_transport(s)) return -EALREADY;
  int rc = aioc__stream_begin_read(s);
  if (rc) return rc;
  tls *t = NULL;
  /* Plain data written before goes out in plain first. */
  rc = aioc__stream_wait_sent(s, task, deadline);
  if (rc == 0) rc = attach(s, c, host, &t);
  if (rc == 0) rc = handshake(t, task, deadline);
  if (rc == 0) rc = settled(t);
  if (rc == 0) {
    t->handshaking = false;
    aioc__stream_kick(s); /* writes made meanwhile */
  } else if (t) {
    if (!t->err) t->err = rc;
    t->handshaking = false;
    aioc__stream_fail(s, rc);
  }
  aioc__stream_end_read(s);
  return rc;
}

int aioc_stream_start_tls(aioc_stream *s, aioc_tls_context *ctx,
                          const char *server_hostname, double timeout) {
  if (!s || !ctx || aioc__io_bad_timeout(timeout) ||
      (!ctx->server && ctx->verify && !server_hostname))
    return -EINVAL;
  aioc_task *t = aioc__current();
  if (!t) return AIOC_ENOTASK;
  return start_tls(s, ctx, ctx->server ? NULL : server_hostname, t,
                   aioc__io_deadline(t->f.loop, timeout));
}

int aioc_tls_open_connection(aioc_stream **out, const char *host, int port,
                             aioc_tls_context *ctx,
                             const aioc_stream_options *opts, double timeout) {
  if (!out) return -EINVAL;
  *out = NULL;
  if (!host || aioc__io_bad_timeout(timeout) || (ctx && ctx->server))
    return -EINVAL;
  aioc_task *t = aioc__current();
  if (!t) return AIOC_ENOTASK;
  int64_t deadline = aioc__io_deadline(t->f.loop, timeout);
  aioc_tls_context *own = NULL;
  if (!ctx) {
    int rc = aioc_tls_context_new(&own, NULL);
    if (rc < 0) return rc;
    ctx = own;
  }
  aioc_stream *s;
  int rc = aioc_open_connection(&s, host, port, opts, timeout);
  if (rc == 0) {
    rc = start_tls(s, ctx, host, t, deadline);
    if (rc < 0)
      aioc_stream_free(s);
    else
      *out = s;
  }
  aioc_tls_context_free(own);
  return rc;
}

/* ---- servers ---- */

static int server_handshake(void *arg, aioc_stream *s) {
  aioc_tls_context *c = arg;
  aioc_task *t = aioc__current();
  return start_tls(s, c, NULL, t,
                   aioc__io_deadline(t->f.loop, c->handshake_timeout));
}

int aioc_tls_start_server(aioc_server **out, const char *host, int port,
                          aioc_conn_fn fn, void *arg, aioc_tls_context *ctx,
                          const aioc_server_options *opts) {
  if (!out) return -EINVAL;
  *out = NULL;
  if (!ctx || !ctx->server) return -EINVAL;
  int rc = aioc_start_server(out, host, port, fn, arg, opts);
  if (rc < 0) return rc;
  ctx_ref(ctx);
  aioc__server_set_prep(*out, server_handshake, ctx, ctx_unref_void);
  return 0;
}

/* ---- what was settled ---- */

static tls *tls_of(const aioc_stream *s) {
  return s ? aioc__stream_transport(s, &tls_ops) : NULL;
}

int aioc_stream_is_tls(const aioc_stream *s) { return tls_of(s) != NULL; }

const char *aioc_stream_tls_alpn(const aioc_stream *s) {
  tls *t = tls_of(s);
  return t ? t->alpn : NULL;
}

const char *aioc_stream_tls_version(const aioc_stream *s) {
  tls *t = tls_of(s);
  return t ? t->version : NULL;
}

const char *aioc_stream_tls_peer_subject(const aioc_stream *s) {
  tls *t = tls_of(s);
  return t ? t->subject : NULL;
}

const char *aioc_stream_tls_server_name(const aioc_stream *s) {
  tls *t = tls_of(s);
  return t ? t->sni : NULL;
}

struct ssl_st *aioc_stream_tls_ssl(const aioc_stream *s) {
  tls *t = tls_of(s);
  return t ? t->ssl : NULL;
}
