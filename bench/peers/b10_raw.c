/* B10's floor: the same streaming calls as aioc's AMQP transport makes
 * (docs/rpc-wire.md: a request queue, direct reply-to, x-kind/x-seq
 * headers, 5 chunks of 64 bytes, ack after the end), in plain blocking
 * rabbitmq-c, with no event loop and no coroutine. Workers are forked
 * processes; the client keeps `inflight` calls going on one connection.
 *
 *   b10_raw PORT CALLS INFLIGHT WORKERS
 *
 * Prints one line: calls per second and chunk latency p50/p99 (ms). */
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHUNKS 5
#define CHUNK_LEN 64

static int port;
static char queue[64];

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static amqp_connection_state_t connect_broker(void) {
  amqp_connection_state_t c = amqp_new_connection();
  amqp_socket_t *s = amqp_tcp_socket_new(c);
  struct timeval tv = {10, 0};
  if (!s || amqp_socket_open_noblock(s, "127.0.0.1", port, &tv)) exit(2);
  if (amqp_login(c, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, "guest", "guest")
          .reply_type != AMQP_RESPONSE_NORMAL)
    exit(3);
  amqp_channel_open(c, 1);
  return c;
}

static amqp_table_entry_t hdr[2];
static amqp_table_t headers(const char *kind, int seq) {
  hdr[0] =
      (amqp_table_entry_t){.key = amqp_cstring_bytes("x-kind"),
                           .value = {.kind = AMQP_FIELD_KIND_UTF8,
                                     .value.bytes = amqp_cstring_bytes(kind)}};
  hdr[1] = (amqp_table_entry_t){
      .key = amqp_cstring_bytes("x-seq"),
      .value = {.kind = AMQP_FIELD_KIND_I64, .value.i64 = seq}};
  return (amqp_table_t){2, hdr};
}

static void worker(void) {
  amqp_connection_state_t c = connect_broker();
  amqp_basic_qos(c, 1, 0, 64, 1);
  amqp_queue_declare(c, 1, amqp_cstring_bytes(queue), 0, 0, 0, 1,
                     amqp_empty_table);
  amqp_basic_consume(c, 1, amqp_cstring_bytes(queue), amqp_empty_bytes, 0, 0, 0,
                     amqp_empty_table);
  char chunk[CHUNK_LEN];
  memset(chunk, 'x', sizeof chunk);
  for (;;) {
    amqp_envelope_t env;
    amqp_maybe_release_buffers(c);
    if (amqp_consume_message(c, &env, NULL, 0).reply_type !=
        AMQP_RESPONSE_NORMAL)
      exit(0);
    amqp_basic_properties_t *rp = &env.message.properties;
    for (int i = 0; i <= CHUNKS; i++) {
      amqp_basic_properties_t p = {
          ._flags = AMQP_BASIC_CORRELATION_ID_FLAG | AMQP_BASIC_HEADERS_FLAG,
          .correlation_id = rp->correlation_id,
          .headers = headers(i < CHUNKS ? "data" : "end", i)};
      amqp_bytes_t body =
          i < CHUNKS ? (amqp_bytes_t){sizeof chunk, chunk} : amqp_empty_bytes;
      amqp_basic_publish(c, 1, amqp_empty_bytes, rp->reply_to, 0, 0, &p, body);
    }
    amqp_basic_ack(c, 1, env.delivery_tag, 0);
    amqp_destroy_envelope(&env);
  }
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: b10_raw PORT CALLS INFLIGHT WORKERS\n");
    return 2;
  }
  port = atoi(argv[1]);
  int calls = atoi(argv[2]), inflight = atoi(argv[3]), workers = atoi(argv[4]);
  snprintf(queue, sizeof queue, "b10raw.%d", (int)getpid());
  amqp_connection_state_t c = connect_broker();
  amqp_queue_declare(c, 1, amqp_cstring_bytes(queue), 0, 0, 0, 1,
                     amqp_empty_table);
  pid_t *pids = calloc((size_t)workers, sizeof *pids);
  for (int w = 0; w < workers; w++)
    if ((pids[w] = fork()) == 0) worker();
  amqp_basic_consume(c, 1, amqp_cstring_bytes("amq.rabbitmq.reply-to"),
                     amqp_empty_bytes, 0, 1, 0, amqp_empty_table);
  double *sent = calloc((size_t)calls, sizeof *sent);
  double *lat = calloc((size_t)calls * CHUNKS, sizeof *lat);
  size_t nlat = 0;
  int next = 0, done = 0;
  char corr[32], req[16] = "request-payload";
  double t0 = now();
  while (done < calls) {
    while (next < calls && next - done < inflight) {
      snprintf(corr, sizeof corr, "%d", next);
      amqp_basic_properties_t p = {
          ._flags = AMQP_BASIC_CORRELATION_ID_FLAG | AMQP_BASIC_REPLY_TO_FLAG |
                    AMQP_BASIC_DELIVERY_MODE_FLAG,
          .correlation_id = amqp_cstring_bytes(corr),
          .reply_to = amqp_cstring_bytes("amq.rabbitmq.reply-to"),
          .delivery_mode = 2};
      sent[next] = now();
      amqp_basic_publish(c, 1, amqp_empty_bytes, amqp_cstring_bytes(queue), 0,
                         0, &p, (amqp_bytes_t){sizeof req, req});
      next++;
    }
    amqp_envelope_t env;
    amqp_maybe_release_buffers(c);
    if (amqp_consume_message(c, &env, NULL, 0).reply_type !=
        AMQP_RESPONSE_NORMAL)
      break;
    amqp_bytes_t id = env.message.properties.correlation_id;
    char buf[32];
    size_t n = id.len < sizeof buf - 1 ? id.len : sizeof buf - 1;
    memcpy(buf, id.bytes, n);
    buf[n] = 0;
    int k = atoi(buf);
    if (env.message.body.len) {
      if (k >= 0 && k < calls) lat[nlat++] = now() - sent[k];
    } else {
      done++; /* the end */
    }
    amqp_destroy_envelope(&env);
  }
  double el = now() - t0;
  qsort(lat, nlat, sizeof *lat, cmp);
  printf("{\"calls_per_s\": %.0f, \"p50_ms\": %.3f, \"p99_ms\": %.3f, "
         "\"calls\": %d, \"inflight\": %d, \"workers\": %d}\n",
         done / el, nlat ? lat[nlat / 2] * 1e3 : 0,
         nlat ? lat[nlat * 99 / 100] * 1e3 : 0, done, inflight, workers);
  for (int w = 0; w < workers; w++)
    kill(pids[w], SIGKILL);
  for (int w = 0; w < workers; w++)
    waitpid(pids[w], NULL, 0);
  amqp_connection_close(c, AMQP_REPLY_SUCCESS);
  amqp_destroy_connection(c);
  return 0;
}
