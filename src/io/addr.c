/* Addresses and sockets: the list of addresses a connection tries, from a
 * numeric host or a name looked up on the loop (dns.c), ordered for Happy
 * Eyeballs; Unix socket addresses; socket creation. */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "io.h"

static int add(aioc__addrs *a, int af, const void *ip, int port) {
  size_t n = a->n + 1;
  struct sockaddr_storage *v = aioc__realloc(a->v, n * sizeof *v);
  if (!v) return -ENOMEM;
  a->v = v;
  socklen_t *l = aioc__realloc(a->len, n * sizeof *l);
  if (!l) return -ENOMEM;
  a->len = l;
  struct sockaddr_storage *ss = &v[a->n];
  memset(ss, 0, sizeof *ss);
  if (af == AF_INET) {
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)port);
    memcpy(&sin->sin_addr, ip, sizeof sin->sin_addr);
    l[a->n] = sizeof *sin;
  } else {
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons((uint16_t)port);
    memcpy(&sin6->sin6_addr, ip, sizeof sin6->sin6_addr);
    l[a->n] = sizeof *sin6;
  }
  a->n = n;
  return 0;
}

void aioc__addrs_free(aioc__addrs *a) {
  aioc__free(a->v);
  aioc__free(a->len);
  a->v = NULL;
  a->len = NULL;
  a->n = 0;
}

int aioc__resolve(const char *host, int port, bool passive, aioc__addrs *out) {
  *out = (aioc__addrs){0};
  if (port < 0 || port > 65535) return -EINVAL;
  struct in_addr a4;
  struct in6_addr a6;
  int rc;
  if (!host) {
    if (!passive) return -EINVAL;
    /* Every address: IPv4 and IPv6 sockets side by side (IPV6_V6ONLY). */
    a4.s_addr = htonl(INADDR_ANY);
    rc = add(out, AF_INET, &a4, port);
    if (rc == 0) rc = add(out, AF_INET6, &in6addr_any, port);
  } else if (inet_pton(AF_INET, host, &a4) == 1) {
    rc = add(out, AF_INET, &a4, port);
  } else if (inet_pton(AF_INET6, host, &a6) == 1) {
    rc = add(out, AF_INET6, &a6, port);
  } else if (strcmp(host, "localhost") == 0) {
    /* As /etc/hosts usually has it; IPv4 first (what getaddrinfo's
     * default rules give for loopback). */
    a4.s_addr = htonl(INADDR_LOOPBACK);
    rc = add(out, AF_INET, &a4, port);
    if (rc == 0) rc = add(out, AF_INET6, &in6addr_loopback, port);
  } else {
    return -EINVAL; /* a name: aioc__resolve_name() */
  }
  if (rc < 0) aioc__addrs_free(out);
  return rc;
}

int aioc__resolve_name(const char *host, int port, int64_t deadline,
                       aioc_loop *loop, aioc__addrs *out) {
  *out = (aioc__addrs){0};
  if (port < 0 || port > 65535) return -EINVAL;
  char service[8];
  snprintf(service, sizeof service, "%d", port);
  struct addrinfo hints;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  double timeout = AIOC_FOREVER;
  if (deadline != AIOC__NEVER) {
    int64_t left = deadline - aioc__now(loop);
    if (left <= 0) return -ETIMEDOUT;
    timeout = (double)left / 1e9;
  }
  struct addrinfo *res;
  int rc = aioc_getaddrinfo(&res, host, service, &hints, timeout);
  if (rc < 0) return rc;
  /* RFC 8305, section 4: the resolver's order (RFC 6724), with the two
   * families interleaved, starting with the family of the first. */
  int first = res->ai_family;
  const struct addrinfo *fam[2] = {res, res}; /* next of each family */
  for (int turn = 0; rc == 0; turn ^= 1) {
    const struct addrinfo *ai = fam[turn];
    while (ai && !((ai->ai_family == AF_INET || ai->ai_family == AF_INET6) &&
                   (ai->ai_family == first) == (turn == 0)))
      ai = ai->ai_next;
    fam[turn] = ai ? ai->ai_next : NULL;
    if (ai) {
      const void *ip =
          ai->ai_family == AF_INET
              ? (const void *)&((const struct sockaddr_in *)ai->ai_addr)
                    ->sin_addr
              : (const void *)&((const struct sockaddr_in6 *)ai->ai_addr)
                    ->sin6_addr;
      rc = add(out, ai->ai_family, ip, port);
    } else if (!fam[turn ^ 1]) {
      break; /* both families done */
    }
  }
  aioc_freeaddrinfo(res);
  if (rc == 0 && out->n == 0) rc = AIOC_ENONAME;
  if (rc < 0) aioc__addrs_free(out);
  return rc;
}

int aioc__unix_addr(const char *path, struct sockaddr_storage *ss,
                    socklen_t *len) {
  if (!path || !*path) return -EINVAL;
  struct sockaddr_un *un = (struct sockaddr_un *)ss;
  memset(un, 0, sizeof *un);
  un->sun_family = AF_UNIX;
  size_t n = strlen(path);
  if (n >= sizeof un->sun_path) return -ENAMETOOLONG;
  memcpy(un->sun_path, path, n);
  if (path[0] == '@') {
    un->sun_path[0] = 0; /* abstract: no terminating NUL counted */
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
  } else {
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
  }
  return 0;
}

int aioc__socket(int af) {
  int fd = socket(af, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  return fd < 0 ? -errno : fd;
}
