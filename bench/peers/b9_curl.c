/* B9's floor: COUNT GETs of URL with INFLIGHT transfers at once, in
 * libcurl's multi interface with no runtime around it, in its two forms:
 *
 *  - by default curl's own loop, curl_multi_perform and curl_multi_poll
 *    (runtime "curl");
 *  - with --epoll the event-driven form an event loop integrating libcurl
 *    uses: curl_multi_socket_action, its socket callback on an epoll set,
 *    its timer callback on a timerfd (runtime "curl-epoll"). As a good
 *    event loop does, a connection's socket stays in the epoll set while
 *    the connection waits in libcurl's cache between requests (libcurl
 *    removes and adds it around each one): a removal only marks it
 *    parked, an add with the same events then needs no system call, and
 *    the socket leaves the set when libcurl closes it (its close-socket
 *    callback) or when an event comes for it while parked.
 *
 * INFLIGHT easy handles are made once, and each is removed and re-added
 * with the next request as soon as it finishes, so the multi handle's
 * connection cache keeps the connections alive between requests, as a curl
 * user would. CURLOPT_NOSIGNAL is set; everything else is libcurl's
 * default. Every response must be 200 with --expect bytes (default 1024).
 *
 *   b9_curl [--epoll] [--expect BYTES] URL COUNT INFLIGHT
 *
 * Prints RESULT workload=B9 runtime=curl|curl-epoll value=<req/s>
 * unit=req/s lower_is_better=0, and an INFO line (connections opened,
 * seconds). Build: cc -O2 b9_curl.c $(pkg-config --cflags --libs libcurl). */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

typedef struct slot {
  CURL *easy;
  size_t bytes; /* of the current response */
} slot;

static CURLM *multi;
static int epfd = -1, tfd = -1;
static int timeout_now; /* curl asked for a timeout of 0 */
static long count, started, done, connects, expect = 1024;
static const char *url;

static void die(const char *what, const char *why) {
  fprintf(stderr, "b9_curl: %s: %s\n", what, why);
  exit(1);
}

static size_t on_data(char *p, size_t size, size_t n, void *arg) {
  (void)p;
  ((slot *)arg)->bytes += size * n;
  return size * n;
}

/* Per fd: the events in the epoll set (0: not in it), and whether the
 * registration is parked (libcurl removed the socket but keeps it open). */
enum { MAXFD = 65536 };
static unsigned char reg[MAXFD], parked[MAXFD];

static void unregister(int s) {
  if (s >= 0 && s < MAXFD && reg[s]) {
    epoll_ctl(epfd, EPOLL_CTL_DEL, s, NULL);
    reg[s] = parked[s] = 0;
  }
}

static int on_socket(CURL *e, curl_socket_t s, int what, void *arg,
                     void *sockp) {
  (void)e, (void)arg, (void)sockp;
  if (s < 0 || s >= MAXFD) die("socket", "descriptor out of range");
  if (what == CURL_POLL_REMOVE) {
    parked[s] = 1;
    return 0;
  }
  struct epoll_event ev = {0};
  ev.data.fd = s;
  if (what & CURL_POLL_IN) ev.events |= EPOLLIN;
  if (what & CURL_POLL_OUT) ev.events |= EPOLLOUT;
  parked[s] = 0;
  if (reg[s] == ev.events) return 0;
  if (epoll_ctl(epfd, reg[s] ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, s, &ev) != 0)
    die("epoll_ctl", strerror(errno));
  reg[s] = (unsigned char)ev.events;
  return 0;
}

/* libcurl closes a connection's socket: out of the epoll set first. */
static int on_close(void *arg, curl_socket_t s) {
  (void)arg;
  unregister(s);
  return close(s);
}

/* curl's timer: 0 means act at once (done by the main loop without the
 * timerfd), -1 none; the timerfd is touched only when it must change. */
static int on_timer(CURLM *m, long ms, void *arg) {
  (void)m, (void)arg;
  static int armed;
  struct itimerspec its = {0};
  timeout_now = ms == 0;
  if (ms > 0) {
    its.it_value.tv_sec = ms / 1000;
    its.it_value.tv_nsec = (ms % 1000) * 1000000L;
  } else if (!armed) {
    return 0;
  }
  armed = ms > 0;
  timerfd_settime(tfd, 0, &its, NULL);
  return 0;
}

static void start(slot *sl) {
  sl->bytes = 0;
  CURLMcode mc = curl_multi_add_handle(multi, sl->easy);
  if (mc != CURLM_OK) die("curl_multi_add_handle", curl_multi_strerror(mc));
  started++;
}

/* Checks the finished transfers and starts the next requests. */
static void reap(void) {
  CURLMsg *msg;
  int left;
  while ((msg = curl_multi_info_read(multi, &left))) {
    if (msg->msg != CURLMSG_DONE) continue;
    CURL *e = msg->easy_handle;
    slot *sl;
    long status = 0, nconn = 0;
    curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&sl);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &nconn);
    if (msg->data.result != CURLE_OK)
      die(url, curl_easy_strerror(msg->data.result));
    if (status != 200 || (long)sl->bytes != expect) {
      fprintf(stderr, "b9_curl: %s: status %ld, %zu bytes\n", url, status,
              sl->bytes);
      exit(1);
    }
    connects += nconn;
    done++;
    curl_multi_remove_handle(multi, e);
    if (started < count) start(sl);
  }
}

static void run_socket_action(void) {
  struct epoll_event evs[128];
  int running;
  while (done < count) {
    int n = epoll_wait(epfd, evs, 128, timeout_now ? 0 : 10000);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait", strerror(errno));
    }
    if (n == 0 && !timeout_now) die(url, "no progress in 10 s");
    if (timeout_now) {
      timeout_now = 0;
      curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
    }
    for (int i = 0; i < n; i++) {
      int fd = evs[i].data.fd;
      if (fd == tfd) {
        unsigned long long ticks;
        if (read(tfd, &ticks, sizeof ticks) < 0) {
        }
        curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
        continue;
      }
      if (parked[fd]) { /* the server closed an idle connection */
        unregister(fd);
        continue;
      }
      int flags = 0;
      if (evs[i].events & EPOLLIN) flags |= CURL_CSELECT_IN;
      if (evs[i].events & EPOLLOUT) flags |= CURL_CSELECT_OUT;
      if (evs[i].events & (EPOLLERR | EPOLLHUP)) flags |= CURL_CSELECT_ERR;
      curl_multi_socket_action(multi, fd, flags, &running);
    }
    reap();
  }
}

static void run_poll(void) {
  int running;
  while (done < count) {
    CURLMcode mc = curl_multi_perform(multi, &running);
    if (mc != CURLM_OK) die("curl_multi_perform", curl_multi_strerror(mc));
    reap();
    if (done >= count) break;
    mc = curl_multi_poll(multi, NULL, 0, 1000, NULL);
    if (mc != CURLM_OK) die("curl_multi_poll", curl_multi_strerror(mc));
  }
}

int main(int argc, char **argv) {
  int poll_mode = 1;
  int i = 1;
  for (; i < argc && argv[i][0] == '-'; i++) {
    if (!strcmp(argv[i], "--epoll")) poll_mode = 0;
    else if (!strcmp(argv[i], "--expect") && i + 1 < argc)
      expect = atol(argv[++i]);
    else break;
  }
  if (argc - i != 3) {
    fprintf(stderr,
            "usage: b9_curl [--epoll] [--expect BYTES] URL COUNT INFLIGHT\n");
    return 2;
  }
  url = argv[i];
  count = atol(argv[i + 1]);
  long inflight = atol(argv[i + 2]);
  if (count <= 0 || inflight <= 0) die("arguments", "COUNT and INFLIGHT > 0");
  if (inflight > count) inflight = count;

  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
    die("curl_global_init", "failed");
  multi = curl_multi_init();
  if (!multi) die("curl_multi_init", "failed");
  if (!poll_mode) {
    epfd = epoll_create1(EPOLL_CLOEXEC);
    tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (epfd < 0 || tfd < 0) die("epoll/timerfd", strerror(errno));
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = tfd};
    epoll_ctl(epfd, EPOLL_CTL_ADD, tfd, &ev);
    curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, on_timer);
  }
  slot *slots = calloc((size_t)inflight, sizeof *slots);
  if (!slots) die("calloc", "out of memory");
  for (long k = 0; k < inflight; k++) {
    CURL *e = curl_easy_init();
    if (!e) die("curl_easy_init", "failed");
    slots[k].easy = e;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &slots[k]);
    curl_easy_setopt(e, CURLOPT_PRIVATE, &slots[k]);
    if (!poll_mode) curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, on_close);
  }

  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (long k = 0; k < inflight; k++) start(&slots[k]);
  if (poll_mode) run_poll();
  else run_socket_action();
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double secs = (double)(t1.tv_sec - t0.tv_sec) +
                (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;

  printf("RESULT workload=B9 runtime=%s value=%.1f unit=req/s "
         "lower_is_better=0\n",
         poll_mode ? "curl" : "curl-epoll", (double)count / secs);
  printf("INFO connections=%ld seconds=%.3f libcurl=%s\n", connects, secs,
         curl_version_info(CURLVERSION_NOW)->version);
  for (long k = 0; k < inflight; k++) curl_easy_cleanup(slots[k].easy);
  free(slots);
  curl_multi_cleanup(multi);
  curl_global_cleanup();
  if (epfd >= 0) close(epfd);
  if (tfd >= 0) close(tfd);
  return 0;
}
