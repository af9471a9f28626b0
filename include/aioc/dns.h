/* aioc/dns.h: name resolution on the loop (c-ares).
 *
 * aioc_getaddrinfo() is getaddrinfo() as a suspension point: the lookup
 * runs on the loop (c-ares, its sockets polled by the loop and its
 * retransmission timeouts on a loop timer), so it never ties up a thread
 * and honours the task's cancellation and the deadlines in scope.
 *
 * Each loop has one resolver (a c-ares channel), created on first use
 * (or by aioc_dns_configure()) and destroyed when the loop closes. Like
 * glibc's getaddrinfo() it reads /etc/resolv.conf (name servers, search
 * domains, ndots, timeout and attempts; and the LOCALDOMAIN and
 * RES_OPTIONS environment variables) and /etc/hosts, and looks names up
 * in the order of the "hosts:" line of /etc/nsswitch.conf ("files" and
 * "dns"). It differs in this:
 *
 * - /etc/resolv.conf is read once, when the loop's resolver is created
 *   (glibc notices a change); /etc/hosts is read at each lookup, as
 *   glibc does.
 * - Only the "files" and "dns" sources exist: other NSS modules (mdns,
 *   myhostname, systemd-resolved's "resolve", LDAP...) are not consulted.
 * - "localhost" is never sent to a name server: when /etc/hosts does not
 *   list it, it resolves to 127.0.0.1 and ::1 (RFC 6761).
 * - Addresses are sorted by RFC 6724's default policy; /etc/gai.conf is
 *   not read. AI_ADDRCONFIG is accepted and ignored.
 * - One entry per address, with the socket type and protocol of the hints
 *   (glibc gives one per socket type when the hints leave it at 0).
 * - Numeric hosts must be in standard form (inet_pton(): "127.0.0.1",
 *   "::1"); "127.1" is looked up as a name.
 * - Errors are aioc codes (below), not EAI_* values. */
#ifndef AIOC_DNS_H
#define AIOC_DNS_H

#include "task.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The resolver of a loop (aioc_dns_configure()). A field of 0 (NULL)
 * keeps what /etc/resolv.conf says (c-ares' defaults where it is
 * silent). */
/* getaddrinfo()'s entry: include <netdb.h> to read it (aioc.h does not,
 * to keep the socket headers' names out of programs that do not ask). */
struct addrinfo;

typedef struct aioc_dns_options {
  /* Name servers, instead of those of /etc/resolv.conf: comma-separated
   * addresses with an optional port, "192.0.2.1", "127.0.0.1:5353",
   * "[::1]:5353" (copied). */
  const char *servers;
  /* Seconds to wait for the first answer from a server (later tries
   * wait longer); c-ares' default is 5. */
  double try_timeout;
  /* Queries sent to each server before a lookup fails with -ETIMEDOUT;
   * c-ares' default is 4. */
  int tries;
} aioc_dns_options;

/* Recreates loop's resolver (NULL loop: the thread's current loop) with
 * opts (NULL: all defaults): /etc/resolv.conf is read again, and the
 * options override it. Does not wait. Returns 0; -EBUSY while queries of
 * this loop are under way (abandoned ones included, see
 * aioc_getaddrinfo()); -EINVAL (a servers string c-ares cannot parse, a
 * negative or NaN try_timeout, a negative tries); -ENOMEM; AIOC_ECLOSED;
 * -EIO (c-ares could not be set up; the message says why). Nothing
 * changes on failure. */
AIOC_API AIOC_NODISCARD int aioc_dns_configure(aioc_loop *loop,
                                               const aioc_dns_options *opts);

/* Suspension point: resolves host and service as getaddrinfo() does, on
 * the current task's loop (from plain code: on the thread's current loop,
 * which runs until the answer is there). host may be NULL (then service
 * may not): the loopback address, or with AI_PASSIVE the wildcard
 * address, of each family allowed. service is a port number ("8080") or a
 * service name of /etc/services ("http"; looked up for UDP when
 * hints->ai_socktype is SOCK_DGRAM, TCP otherwise), or NULL (port 0).
 * hints (NULL: all 0) gives ai_family (AF_UNSPEC, AF_INET or AF_INET6),
 * ai_socktype and ai_protocol (copied into the results) and ai_flags
 * (AI_PASSIVE, AI_CANONNAME, AI_NUMERICHOST, AI_NUMERICSERV, AI_V4MAPPED,
 * AI_ALL, AI_ADDRCONFIG). A numeric host, a host NULL and an /etc/hosts
 * entry complete without waiting, even in a callback.
 *
 * Waits at most timeout seconds (AIOC_FOREVER: no limit) and within the
 * deadlines in scope. On 0, *out is a list (ai_next) of at least one
 * entry, freed with aioc_freeaddrinfo(); with AI_CANONNAME the first
 * entry's ai_canonname is the canonical name. When the wait ends early
 * (-ECANCELED, -ETIMEDOUT) the lookup is abandoned: nothing is left to
 * free. c-ares can abandon only all the queries of a resolver at once,
 * which it does when no other lookup of the loop is waiting; otherwise
 * the abandoned query runs on in the background until its own timeout
 * (try_timeout and tries above) and its answer is dropped.
 *
 * Returns 0; AIOC_ENONAME (the name does not exist: the name servers
 * answered NXDOMAIN for every name tried, or the name is in no source; an
 * AI_NUMERICHOST host that is not numeric; a numeric host of another
 * family); -ENODATA (the name exists but has no address of the family
 * asked); AIOC_EDNS (the name servers failed: FORMERR, a malformed
 * answer; SERVFAIL and REFUSED with c-ares 1.20 and later); -ETIMEDOUT
 * (the timeout, a deadline in scope, or no answer after every try);
 * -ECONNREFUSED (no name server gave an answer: none could be reached,
 * or, before c-ares 1.20, each answered SERVFAIL or REFUSED); -ECANCELED;
 * -ENOMEM; -EINVAL (out NULL, host and service NULL, an unknown service
 * name, a port over 65535, a service that is not a number with
 * AI_NUMERICSERV, an unknown family or flag, a bad timeout); -EIO (/etc/hosts could not be read); AIOC_ERUNNING (in a
 * callback of the running loop, for a lookup that must wait); AIOC_ECLOSED.
 * Every failure sets the task's error message (from plain
 * code, the thread's, see aioc_error_message()). *out is NULL on failure. */
AIOC_API AIOC_NODISCARD int aioc_getaddrinfo(struct addrinfo **out,
                                             const char *host,
                                             const char *service,
                                             const struct addrinfo *hints,
                                             double timeout);

/* Frees a list that aioc_getaddrinfo() returned (never one of libc's
 * getaddrinfo(), nor a part of a list). NULL is harmless. */
AIOC_API void aioc_freeaddrinfo(struct addrinfo *ai);

#ifdef __cplusplus
}
#endif
#endif /* AIOC_DNS_H */
