/* B6's libuv echo server (see bench/README.md).
 *
 * Usage: echo_uv PORT
 *
 * Listens on 127.0.0.1:PORT and echoes every byte back on each connection:
 * uv_tcp_t, uv_read_start into a buffer that belongs to the connection, and
 * the bytes read written back with uv_try_write; whatever the socket does
 * not take at once is copied and queued with uv_write (libuv keeps the
 * order: uv_try_write declines while a write is queued). This is how a
 * libuv server that cares for speed writes it (Node's streams try the
 * direct write first too). The guide's simpler form, a fresh 64 KiB buffer
 * from malloc for every read, freed once written, costs several times the
 * CPU per round trip here: the heap grows and shrinks and fresh pages fault
 * in on every loop iteration. TCP_NODELAY is set on each connection, as
 * asyncio, Go and aioc do by default. Exits 0 on SIGTERM or SIGINT.
 *
 * Build: cc -O2 -o echo_uv echo_uv.c $(pkg-config --cflags --libs libuv)
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#define BACKLOG 511
#define BUF_SIZE (64 * 1024)

typedef struct {
  uv_tcp_t tcp; /* first: the handle is the connection */
  char buf[BUF_SIZE];
} conn_t;

typedef struct {
  uv_write_t req;
  uv_buf_t buf;
} write_req_t;

static uv_loop_t *loop;

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  conn_t *c = (conn_t *)h;
  (void)suggested;
  *buf = uv_buf_init(c->buf, sizeof c->buf);
}

static void on_close(uv_handle_t *h) { free(h); }

static void close_conn(uv_stream_t *s) {
  if (!uv_is_closing((uv_handle_t *)s)) uv_close((uv_handle_t *)s, on_close);
}

static void on_write(uv_write_t *req, int status) {
  write_req_t *w = (write_req_t *)req;
  if (status < 0) close_conn(req->handle);
  free(w->buf.base);
  free(w);
}

static void on_read(uv_stream_t *client, ssize_t nread, const uv_buf_t *buf) {
  uv_buf_t b;
  int done;
  write_req_t *w;
  if (nread < 0) {
    if (nread != UV_EOF && nread != UV_ECONNRESET)
      fprintf(stderr, "echo_uv: read: %s\n", uv_strerror((int)nread));
    close_conn(client);
    return;
  }
  if (nread == 0) return;
  b = uv_buf_init(buf->base, (unsigned)nread);
  done = uv_try_write(client, &b, 1);
  if (done == (int)nread) return;
  if (done < 0 && done != UV_EAGAIN) {
    close_conn(client);
    return;
  }
  if (done < 0) done = 0;
  /* The rest goes through the write queue, from a copy: the connection's
   * buffer is read into again before it is written. */
  w = malloc(sizeof *w);
  if (w != NULL) {
    w->buf = uv_buf_init(malloc((size_t)nread - (size_t)done),
                         (unsigned)(nread - done));
    if (w->buf.base != NULL) {
      memcpy(w->buf.base, buf->base + done, w->buf.len);
      if (uv_write(&w->req, client, &w->buf, 1, on_write) == 0) return;
      free(w->buf.base);
    }
    free(w);
  }
  close_conn(client);
}

static void on_connection(uv_stream_t *server, int status) {
  conn_t *c;
  if (status < 0) {
    fprintf(stderr, "echo_uv: accept: %s\n", uv_strerror(status));
    return;
  }
  c = malloc(sizeof *c);
  if (c == NULL) return;
  uv_tcp_init(loop, &c->tcp);
  if (uv_accept(server, (uv_stream_t *)&c->tcp) == 0) {
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  } else {
    close_conn((uv_stream_t *)&c->tcp);
  }
}

static void on_signal(uv_signal_t *s, int signum) {
  (void)s;
  (void)signum;
  uv_stop(loop);
}

int main(int argc, char **argv) {
  uv_tcp_t server;
  uv_signal_t sigterm, sigint;
  struct sockaddr_in addr;
  int r, port = argc == 2 ? atoi(argv[1]) : 0;

  if (port <= 0 || port > 65535) {
    fprintf(stderr, "usage: echo_uv PORT\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  loop = uv_default_loop();
  uv_signal_init(loop, &sigterm);
  uv_signal_start(&sigterm, on_signal, SIGTERM);
  uv_signal_init(loop, &sigint);
  uv_signal_start(&sigint, on_signal, SIGINT);

  uv_tcp_init(loop, &server);
  uv_ip4_addr("127.0.0.1", port, &addr);
  r = uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0);
  if (r == 0) r = uv_listen((uv_stream_t *)&server, BACKLOG, on_connection);
  if (r != 0) {
    fprintf(stderr, "echo_uv: listen on 127.0.0.1:%d: %s\n", port,
            uv_strerror(r));
    return 1;
  }
  uv_run(loop, UV_RUN_DEFAULT);
  return 0;
}
