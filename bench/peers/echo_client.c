/* B6's client: TCP echo ping-pong over many connections, in libuv (see
 * bench/README.md). The same program drives every echo server of B6.
 *
 * Usage: echo_client [-r RUNTIME] [-p SERVER_PID] [-w WARMUP_S]
 *                    HOST PORT CONNECTIONS SIZE SECONDS
 *
 * Opens CONNECTIONS connections to HOST:PORT (IPv4). On each one it sends SIZE
 * bytes, waits until the same SIZE bytes have come back (checked byte for
 * byte), and sends again, with a different payload every round trip. Once
 * every connection is up it lets them run WARMUP_S seconds (default 1), then
 * measures a window of SECONDS seconds, then stops sending, waits for the
 * round trips in flight and closes every connection (the server sees EOF).
 *
 * It prints, on stdout:
 *
 *   INFO rt=441234 seconds=5.000 rt_per_s=88246.8 ...
 *   RESULT workload=B6 runtime=RUNTIME value=88246.8 unit=rt/s lower_is_better=0
 *   RESULT workload=B6cpu runtime=RUNTIME value=9.31 unit=µs/rt lower_is_better=1
 *
 * RUNTIME (default "server") names the server being driven. The B6cpu line,
 * the server's CPU time (user + system, all its threads) over the measured
 * window divided by the round trips of the window, is printed only with
 * -p SERVER_PID: it is read from /proc/SERVER_PID/stat at the start and at
 * the end of the window. The INFO line also gives the client's own CPU per
 * round trip and the fewest and most round trips of one connection.
 *
 * Exits 0 on success and 1 on any failure: a connection refused or reset,
 * wrong echoed bytes, a connection that made no round trip in the window,
 * connections not all up within 10 s.
 *
 * Build: cc -O2 -o echo_client echo_client.c $(pkg-config --cflags --libs libuv)
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <uv.h>

#define CONNECT_TIMEOUT_MS 10000
#define DRAIN_TIMEOUT_MS 5000

typedef struct conn {
  uv_tcp_t tcp;
  uv_connect_t connect_req;
  uv_write_t write_req;
  unsigned id;
  uint64_t seq;     /* round trips completed */
  uint64_t seq_at_start; /* seq when the measured window opened */
  uint64_t seq_at_end;   /* seq when it closed */
  size_t got;       /* bytes of the current echo received so far */
  unsigned char *out;
  unsigned char *in;
  size_t in_cap;
} conn_t;

static uv_loop_t *loop;
static conn_t *conns;
static unsigned n_conns;
static size_t size;
static double seconds;
static double warmup = 1.0;
static const char *runtime = "server";
static long server_pid = 0;

static unsigned n_connected;
static unsigned n_closed;
static int stopping;   /* window over: no new round trips */
static int failed;
static uv_timer_t timer;

static uint64_t t_start, t_end;       /* uv_hrtime() at the window's edges */
static double srv_cpu_start = -1, srv_cpu_end = -1;
static double cli_cpu_start, cli_cpu_end;
static uint64_t rt_start, rt_end;

/* ------------------------------------------------------------- helpers */

static void close_all(void);

/* Reports the first failure and closes everything: the run is void. */
static void fail(const char *what, int err) {
  if (!failed)
    fprintf(stderr, "echo_client: %s%s%s\n", what, err ? ": " : "",
            err ? uv_strerror(err) : "");
  failed = 1;
  close_all();
}

/* The server's CPU time (user + system, all threads) in seconds, from
 * /proc/PID/stat; -1 if it cannot be read. */
static double server_cpu(void) {
  char path[64], buf[4096];
  FILE *f;
  size_t n;
  char *p;
  unsigned long long utime, stime;
  if (server_pid <= 0) return -1;
  snprintf(path, sizeof path, "/proc/%ld/stat", server_pid);
  f = fopen(path, "r");
  if (f == NULL) return -1;
  n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  /* Fields after the command name, which is in parentheses and may hold
   * spaces: state (3) ... utime (14), stime (15). */
  p = strrchr(buf, ')');
  if (p == NULL) return -1;
  if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
             &utime, &stime) != 2)
    return -1;
  return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

static double self_cpu(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 +
         (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
}

static uint64_t total_rt(void) {
  uint64_t s = 0;
  for (unsigned i = 0; i < n_conns; i++) s += conns[i].seq;
  return s;
}

/* The payload of round trip c->seq: differs per connection and per round. */
static void fill(conn_t *c) {
  unsigned char base = (unsigned char)(c->seq * 31u + c->id * 7u);
  for (size_t i = 0; i < size; i++) c->out[i] = (unsigned char)(base + i);
}

/* ------------------------------------------------------------- ping-pong */

static void on_close(uv_handle_t *h) {
  (void)h;
  if (++n_closed == n_conns && !uv_is_closing((uv_handle_t *)&timer))
    uv_close((uv_handle_t *)&timer, NULL);
}

static void close_conn(conn_t *c) {
  if (!uv_is_closing((uv_handle_t *)&c->tcp))
    uv_close((uv_handle_t *)&c->tcp, on_close);
}

static void close_all(void) {
  stopping = 1;
  for (unsigned i = 0; i < n_conns; i++) close_conn(&conns[i]);
}

static void on_write(uv_write_t *req, int status) {
  conn_t *c = (conn_t *)req->data;
  (void)c;
  if (status < 0) fail("write", status);
}

static void send_ping(conn_t *c) {
  uv_buf_t b = uv_buf_init((char *)c->out, (unsigned)size);
  int r;
  fill(c);
  c->got = 0;
  c->write_req.data = c;
  r = uv_write(&c->write_req, (uv_stream_t *)&c->tcp, &b, 1, on_write);
  if (r < 0) fail("write", r);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  conn_t *c = (conn_t *)h->data;
  (void)suggested;
  *buf = uv_buf_init((char *)c->in + c->got, (unsigned)(c->in_cap - c->got));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  conn_t *c = (conn_t *)s->data;
  (void)buf;
  if (nread == 0) return;
  if (nread < 0) {
    fail(nread == UV_EOF ? "server closed a connection" : "read",
         nread == UV_EOF ? 0 : (int)nread);
    return;
  }
  c->got += (size_t)nread;
  if (c->got < size) return;
  if (c->got > size) {
    fail("server sent more bytes than it was sent", 0);
    return;
  }
  if (memcmp(c->in, c->out, size) != 0) {
    fail("echoed bytes differ from the bytes sent", 0);
    return;
  }
  c->seq++;
  if (stopping) {
    close_conn(c);
    return;
  }
  send_ping(c);
}

/* ------------------------------------------------------------- phases */

static void on_drain_timeout(uv_timer_t *t) {
  (void)t;
  fail("round trips in flight not back within the drain timeout", 0);
}

/* Every connection has one round trip in flight: it closes when its echo is
 * back, so that the server sees a clean EOF. */
static void on_window_end(uv_timer_t *t) {
  t_end = uv_hrtime();
  srv_cpu_end = server_cpu();
  cli_cpu_end = self_cpu();
  for (unsigned i = 0; i < n_conns; i++) conns[i].seq_at_end = conns[i].seq;
  rt_end = total_rt();
  stopping = 1;
  uv_timer_start(t, on_drain_timeout, DRAIN_TIMEOUT_MS, 0);
}

static void on_warm(uv_timer_t *t) {
  for (unsigned i = 0; i < n_conns; i++) conns[i].seq_at_start = conns[i].seq;
  t_start = uv_hrtime();
  rt_start = total_rt();
  srv_cpu_start = server_cpu();
  cli_cpu_start = self_cpu();
  uv_timer_start(t, on_window_end, (uint64_t)(seconds * 1000 + 0.5), 0);
}

static void on_connect_timeout(uv_timer_t *t) {
  (void)t;
  fprintf(stderr, "echo_client: only %u of %u connections up after %d ms\n",
          n_connected, n_conns, CONNECT_TIMEOUT_MS);
  fail("connect timeout", 0);
}

static void on_connect(uv_connect_t *req, int status) {
  conn_t *c = (conn_t *)req->data;
  int r;
  if (status < 0) {
    fail("connect", status);
    return;
  }
  if (stopping) return; /* closed already */
  uv_tcp_nodelay(&c->tcp, 1);
  r = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  if (r < 0) {
    fail("read_start", r);
    return;
  }
  send_ping(c);
  if (++n_connected == n_conns) {
    uv_timer_stop(&timer);
    uv_timer_start(&timer, on_warm, (uint64_t)(warmup * 1000 + 0.5), 0);
  }
}

/* ------------------------------------------------------------- main */

static void usage(void) {
  fprintf(stderr,
          "usage: echo_client [-r RUNTIME] [-p SERVER_PID] [-w WARMUP_S] "
          "HOST PORT CONNECTIONS SIZE SECONDS\n");
  exit(2);
}

int main(int argc, char **argv) {
  struct sockaddr_in addr;
  int opt, r, port;
  uint64_t min_rt = UINT64_MAX, max_rt = 0, rt;
  double wall, rate, srv_cpu, cli_cpu;

  while ((opt = getopt(argc, argv, "r:p:w:")) != -1) {
    switch (opt) {
    case 'r': runtime = optarg; break;
    case 'p': server_pid = atol(optarg); break;
    case 'w': warmup = atof(optarg); break;
    default: usage();
    }
  }
  if (argc - optind != 5) usage();
  port = atoi(argv[optind + 1]);
  n_conns = (unsigned)atoi(argv[optind + 2]);
  size = (size_t)atol(argv[optind + 3]);
  seconds = atof(argv[optind + 4]);
  if (port <= 0 || port > 65535 || n_conns == 0 || size == 0 ||
      seconds <= 0 || warmup < 0)
    usage();
  if (uv_ip4_addr(argv[optind], port, &addr) != 0) {
    fprintf(stderr, "echo_client: bad IPv4 address %s\n", argv[optind]);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);

  loop = uv_default_loop();
  conns = calloc(n_conns, sizeof *conns);
  if (conns == NULL) return 1;
  uv_timer_init(loop, &timer);
  for (unsigned i = 0; i < n_conns; i++) {
    conn_t *c = &conns[i];
    c->id = i;
    c->in_cap = size * 2;
    c->out = malloc(size);
    c->in = malloc(c->in_cap);
    if (c->out == NULL || c->in == NULL) return 1;
    uv_tcp_init(loop, &c->tcp);
    c->tcp.data = c;
    c->connect_req.data = c;
  }
  uv_timer_start(&timer, on_connect_timeout, CONNECT_TIMEOUT_MS, 0);
  for (unsigned i = 0; i < n_conns && !failed; i++) {
    r = uv_tcp_connect(&conns[i].connect_req, &conns[i].tcp,
                       (const struct sockaddr *)&addr, on_connect);
    if (r < 0) fail("connect", r);
  }
  uv_run(loop, UV_RUN_DEFAULT);

  if (t_end == 0 || failed) {
    if (!failed) fprintf(stderr, "echo_client: no measured window\n");
    return 1;
  }
  for (unsigned i = 0; i < n_conns; i++) {
    rt = conns[i].seq_at_end - conns[i].seq_at_start;
    if (rt < min_rt) min_rt = rt;
    if (rt > max_rt) max_rt = rt;
  }
  if (min_rt == 0) {
    fprintf(stderr, "echo_client: a connection made no round trip in the "
                    "measured window\n");
    return 1;
  }
  wall = (double)(t_end - t_start) * 1e-9;
  rt = rt_end - rt_start;
  rate = (double)rt / wall;
  cli_cpu = cli_cpu_end - cli_cpu_start;
  srv_cpu = (srv_cpu_start >= 0 && srv_cpu_end >= 0)
                ? srv_cpu_end - srv_cpu_start
                : -1;
  printf("INFO connections=%u size=%zu warmup=%.1f seconds=%.3f rt=%llu "
         "rt_per_s=%.1f client_cpu_s=%.3f client_cpu_us_per_rt=%.3f "
         "conn_rt_min=%llu conn_rt_max=%llu",
         n_conns, size, warmup, wall, (unsigned long long)rt, rate, cli_cpu,
         cli_cpu * 1e6 / (double)rt, (unsigned long long)min_rt,
         (unsigned long long)max_rt);
  if (srv_cpu >= 0)
    printf(" server_cpu_s=%.3f server_cpu_us_per_rt=%.3f", srv_cpu,
           srv_cpu * 1e6 / (double)rt);
  printf("\n");
  printf("RESULT workload=B6 runtime=%s value=%.1f unit=rt/s "
         "lower_is_better=0\n",
         runtime, rate);
  if (srv_cpu >= 0)
    printf("RESULT workload=B6cpu runtime=%s value=%.3f unit=\xc2\xb5s/rt "
           "lower_is_better=1\n",
           runtime, srv_cpu * 1e6 / (double)rt);
  else if (server_pid > 0)
    fprintf(stderr, "echo_client: could not read /proc/%ld/stat\n",
            server_pid);
  return 0;
}
