/* aioc-rpc: call a streaming RPC method and watch its chunks arrive, or
 * serve the built-in methods.
 *
 *   aioc-rpc call [options] METHOD [PAYLOAD]
 *   aioc-rpc worker --amqp URL [options]
 *
 * With the local transport (the default) the call and a worker serving
 * the built-in methods run inside this one process. With --amqp URL the
 * messages go through a RabbitMQ broker: `worker` serves the built-in
 * methods until SIGINT or SIGTERM (then finishes, or hands back, what it
 * holds), and `call` calls whichever worker serves the method. The
 * built-in methods:
 *   count   PAYLOAD "N" or "N,PAUSE": the chunks "1" to "N", PAUSE
 *           seconds apart (default 0.1)
 *   echo    the payload, as one chunk
 *   fail    fails with -EIO and the payload as the message
 *
 * call prints each chunk as it arrives with its time, a line for each
 * chunk timeout (and waits again, up to --give-up timeouts in a row), the
 * error a call ends with, and statistics at the end. Exit status: 0 when
 * every call ended well, 1 otherwise, 2 for bad usage. */
#include <aioc.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct opts {
  double timeout;  /* between chunks */
  double first, total, expiry;
  int give_up;     /* timeouts in a row before giving up */
  long calls;      /* calls to make, one after the other */
  size_t prefetch;
  int quiet;       /* statistics only */
  const char *method, *payload;
  const char *amqp, *prefix; /* RabbitMQ: the broker's URL, the names' prefix */
  double grace;    /* worker: time to finish at shutdown */
} opts;

/* ---- the built-in methods ---- */

static int m_count(void *arg, aioc_rpc_request *req) {
  (void)arg;
  const char *p = aioc_rpc_request_payload(req, NULL);
  char *end;
  long n = strtol(p, &end, 10);
  double pause = *end == ',' ? strtod(end + 1, NULL) : 0.1;
  if (n < 0 || n > 1000000 || !(pause >= 0))
    return aioc_error(-EINVAL, "count: payload is N or N,PAUSE");
  for (long i = 1; i <= n; i++) {
    int rc = pause > 0 ? aioc_sleep(pause) : 0;
    if (rc) return rc;
    char buf[32];
    int len = snprintf(buf, sizeof buf, "%ld", i);
    rc = aioc_rpc_yield(req, buf, (size_t)len);
    if (rc) return rc == AIOC_EGENEXIT ? 0 : rc;
  }
  return 0;
}

static int m_echo(void *arg, aioc_rpc_request *req) {
  (void)arg;
  size_t len;
  const void *p = aioc_rpc_request_payload(req, &len);
  int rc = aioc_rpc_yield(req, p, len);
  return rc == AIOC_EGENEXIT ? 0 : rc;
}

static int m_fail(void *arg, aioc_rpc_request *req) {
  (void)arg;
  return aioc_error(-EIO, "%s", (const char *)aioc_rpc_request_payload(req, NULL));
}

static int register_builtins(aioc_rpc_server *s) {
  int rc = aioc_rpc_server_register(s, "count", m_count, NULL);
  if (rc == 0) rc = aioc_rpc_server_register(s, "echo", m_echo, NULL);
  if (rc == 0) rc = aioc_rpc_server_register(s, "fail", m_fail, NULL);
  return rc;
}

/* The transport: in-process, or the broker's. */
static int transport_new(aioc_rpc_transport **tr, const opts *o) {
  if (!o->amqp) return aioc_rpc_local_new(tr);
  aioc_rpc_amqp_options ao = {.prefix = o->prefix};
  int rc = aioc_rpc_amqp_new(tr, o->amqp, &ao);
  if (rc < 0) {
    const char *msg = aioc_error_message();
    fprintf(stderr, "aioc-rpc: cannot connect to %s: %s%s%s\n", o->amqp,
            aioc_strerror(rc), msg ? ": " : "", msg ? msg : "");
  }
  return rc;
}

/* ---- call ---- */

typedef struct stats {
  long calls, ok, failed;
  long chunks, timeouts;
  long firsts; /* calls that got a first chunk */
  double first_sum, longest_gap;
} stats;

static int one_call(aioc_rpc_client *c, const opts *o, stats *st) {
  aioc_rpc_call_options co = {.expiry = o->expiry,
                              .limits = {.first = o->first,
                                         .total = o->total}};
  const char *payload = o->payload ? o->payload : "";
  aioc_iter *it;
  int rc = aioc_rpc_call(&it, c, o->method, payload, strlen(payload), &co);
  if (rc < 0) return rc;
  double t0 = aioc_time(), last = t0;
  int in_a_row = 0;
  long got = 0;
  for (;;) {
    void *item;
    rc = aioc_iter_next(it, &item, o->timeout);
    double now = aioc_time();
    if (rc == 0) {
      aioc_rpc_chunk *ch = item;
      if (got == 0) {
        st->first_sum += now - t0;
        st->firsts++;
      }
      if (now - last > st->longest_gap) st->longest_gap = now - last;
      last = now;
      got++;
      in_a_row = 0;
      if (!o->quiet)
        printf("%8.3f s  chunk %u: %.*s\n", now - t0, (unsigned)ch->seq,
               (int)ch->len, ch->data);
      aioc_rpc_chunk_free(ch);
    } else if (rc == -ETIMEDOUT && o->timeout != AIOC_FOREVER &&
               ++in_a_row < o->give_up) {
      st->timeouts++;
      if (!o->quiet)
        printf("%8.3f s  no chunk within %g s: waiting again (%d of %d)\n",
               now - t0, o->timeout, in_a_row, o->give_up);
    } else {
      break;
    }
  }
  st->chunks += got;
  if (rc == AIOC_EXHAUSTED) {
    if (!o->quiet) printf("%8.3f s  end of the response\n", aioc_time() - t0);
    rc = 0;
  } else {
    const char *msg = aioc_error_message();
    if (rc == -ETIMEDOUT) st->timeouts++;
    fprintf(stderr, "%8.3f s  call failed: %s (%s)%s%s\n", aioc_time() - t0,
            aioc_strerror(rc), aioc_err_name(rc), msg ? ": " : "",
            msg ? msg : "");
  }
  aioc_iter_free(it); /* before the end: the worker is told */
  return rc;
}

typedef struct call_main_arg {
  const opts *o;
  int rc;
} call_main_arg;

static int call_main(void *arg, void **result) {
  (void)result;
  call_main_arg *a = arg;
  const opts *o = a->o;
  aioc_rpc_transport *tr;
  aioc_rpc_server *s = NULL;
  aioc_rpc_client *c = NULL;
  int rc = transport_new(&tr, o);
  if (rc < 0) return rc;
  aioc_rpc_server_options so = {.prefetch = o->prefetch};
  /* The local transport: a worker in this process serves the call. */
  if (!o->amqp && (rc = aioc_rpc_server_new(&s, tr, &so)) == 0 &&
      (rc = register_builtins(s)) == 0)
    rc = aioc_rpc_server_start(s);
  if (rc == 0 && (rc = aioc_rpc_client_new(&c, tr, NULL)) == 0) {
    stats st = {0};
    double t0 = aioc_time();
    for (long i = 0; i < o->calls; i++) {
      st.calls++;
      if (one_call(c, o, &st) == 0)
        st.ok++;
      else
        st.failed++;
    }
    double el = aioc_time() - t0;
    printf("calls: %ld (%ld ok, %ld failed) in %.3f s; chunks: %ld; "
           "chunk timeouts: %ld; first chunk after %.3f s on average; "
           "longest gap between chunks %.3f s\n",
           st.calls, st.ok, st.failed, el, st.chunks, st.timeouts,
           st.firsts ? st.first_sum / (double)st.firsts : 0.0, st.longest_gap);
    if (o->amqp) {
      aioc_rpc_amqp_counters k;
      if (aioc_rpc_amqp_stats(tr, &k) == 0)
        printf("broker: %llu connection(s), blocked %llu time(s), %llu "
               "stray repl%s dropped\n",
               (unsigned long long)k.connections,
               (unsigned long long)k.blocked,
               (unsigned long long)k.replies_dropped,
               k.replies_dropped == 1 ? "y" : "ies");
    }
    a->rc = st.failed ? 1 : 0;
    if (s) {
      int src = aioc_rpc_server_shutdown(s, 1);
      (void)src; /* freeing it below closes what is left anyway */
    }
  }
  aioc_rpc_client_free(c);
  aioc_rpc_server_free(s);
  aioc_rpc_transport_free(tr);
  return rc;
}

/* ---- worker ---- */

static int worker_main(void *arg, void **result) {
  (void)result;
  call_main_arg *a = arg;
  const opts *o = a->o;
  static const int stop_signals[] = {SIGINT, SIGTERM};
  aioc_iter *signals;
  int rc = aioc_signal_iter(&signals, NULL, stop_signals, 2);
  if (rc < 0) return rc;
  aioc_rpc_transport *tr = NULL;
  aioc_rpc_server *s = NULL;
  aioc_rpc_server_options so = {.prefetch = o->prefetch};
  if ((rc = transport_new(&tr, o)) == 0 &&
      (rc = aioc_rpc_server_new(&s, tr, &so)) == 0 &&
      (rc = register_builtins(s)) == 0 &&
      (rc = aioc_rpc_server_start(s)) == 0) {
    printf("aioc-rpc worker: serving count, echo, fail (Ctrl-C stops)\n");
    fflush(stdout);
    void *sig;
    rc = aioc_iter_next(signals, &sig, AIOC_FOREVER);
    if (rc == 0)
      printf("aioc-rpc worker: %s, finishing what it holds\n",
             strsignal(AIOC_TO_INT(sig)));
    int src = aioc_rpc_server_shutdown(s, o->grace);
    size_t handled = 0;
    if (aioc_rpc_server_stats(s, &handled, NULL) < 0) handled = 0;
    printf("aioc-rpc worker: %zu request(s) handled%s\n", handled,
           src == -ETIMEDOUT ? "; the unfinished ones went back to the broker"
                             : "");
    a->rc = rc == 0 ? 0 : 1;
    rc = 0;
  }
  aioc_rpc_server_free(s);
  aioc_rpc_transport_free(tr);
  aioc_iter_free(signals);
  return rc;
}

static void usage(FILE *f) {
  fputs("usage: aioc-rpc call [options] METHOD [PAYLOAD]\n"
        "       aioc-rpc worker --amqp URL [options]\n"
        "options:\n"
        "  --amqp URL    through RabbitMQ (amqp://user:pass@host:port/vhost)\n"
        "  --prefix P    queue and exchange names start with P\n"
        "  --grace S     worker: time to finish at shutdown (default 30)\n"
        "  --timeout S   longest wait between two chunks (default 5)\n"
        "  --give-up K   give up after K chunk timeouts in a row (default 3)\n"
        "  --first S     limit on the first chunk (default none)\n"
        "  --total S     limit on the whole response (default none)\n"
        "  --expiry S    the request expires if no worker takes it in S\n"
        "  -n CALLS      calls to make, one after the other (default 1)\n"
        "  --prefetch N  requests a worker handles at once (default 16)\n"
        "  -q            statistics only\n"
        "Built-in methods: count (\"N\" or \"N,PAUSE\"), echo, fail.\n"
        "The local transport runs the call and the worker in this process.\n",
        f);
}

static int parse_double(const char *s, double *out) {
  char *end;
  double v = strtod(s, &end);
  if (*s == '\0' || *end != '\0' || !(v >= 0)) return -1;
  *out = v;
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  const char *cmd = argv[1];
  opts o = {.timeout = 5, .give_up = 3, .calls = 1, .grace = 30};
  static const struct option lo[] = {
      {"timeout", required_argument, 0, 't'},
      {"give-up", required_argument, 0, 'g'},
      {"first", required_argument, 0, 'f'},
      {"total", required_argument, 0, 'T'},
      {"expiry", required_argument, 0, 'e'},
      {"prefetch", required_argument, 0, 'p'},
      {"amqp", required_argument, 0, 'a'},
      {"prefix", required_argument, 0, 'P'},
      {"grace", required_argument, 0, 'G'},
      {"help", no_argument, 0, 'h'},
      {0, 0, 0, 0}};
  optind = 2;
  int ch;
  while ((ch = getopt_long(argc, argv, "n:qh", lo, NULL)) != -1) {
    int bad = 0;
    switch (ch) {
    case 't': bad = parse_double(optarg, &o.timeout); break;
    case 'f': bad = parse_double(optarg, &o.first); break;
    case 'T': bad = parse_double(optarg, &o.total); break;
    case 'e': bad = parse_double(optarg, &o.expiry); break;
    case 'g': o.give_up = atoi(optarg); bad = o.give_up < 1; break;
    case 'n': o.calls = atol(optarg); bad = o.calls < 1; break;
    case 'p': o.prefetch = (size_t)atol(optarg); break;
    case 'q': o.quiet = 1; break;
    case 'a': o.amqp = optarg; break;
    case 'P': o.prefix = optarg; break;
    case 'G': bad = parse_double(optarg, &o.grace); break;
    case 'h': usage(stdout); return 0;
    default: bad = 1;
    }
    if (bad) {
      usage(stderr);
      return 2;
    }
  }
  if (strcmp(cmd, "call") == 0) {
    if (optind >= argc || optind + 2 < argc) {
      usage(stderr);
      return 2;
    }
    o.method = argv[optind];
    o.payload = optind + 1 < argc ? argv[optind + 1] : NULL;
    call_main_arg a = {&o, 1};
    int rc = aioc_run(call_main, &a, NULL);
    if (rc < 0) {
      fprintf(stderr, "aioc-rpc: %s\n", aioc_strerror(rc));
      return 1;
    }
    return a.rc;
  }
  if (strcmp(cmd, "worker") == 0) {
    if (!o.amqp || optind != argc) {
      fprintf(stderr, "aioc-rpc worker: needs --amqp URL (the local "
                      "transport serves the calls of one process only)\n");
      return 2;
    }
    call_main_arg a = {&o, 1};
    int rc = aioc_run(worker_main, &a, NULL);
    if (rc < 0) {
      fprintf(stderr, "aioc-rpc: %s\n", aioc_strerror(rc));
      return 1;
    }
    return a.rc;
  }
  usage(stderr);
  return 2;
}
