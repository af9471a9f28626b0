/* aioc/tls.h: TLS streams (OpenSSL): clients, servers, STARTTLS.
 *
 * Part of the public API; include <aioc.h> rather than this file.
 *
 * A TLS stream is an aioc_stream (io.h) like any other: aioc_stream_read(),
 * readexactly, readuntil, readline, write, drain, write_eof, close,
 * wait_closed, free and the stream iterators work on it unchanged, on the
 * decrypted data, with the same buffering and flow control.
 *
 * Conventions of this part (those of io.h):
 *
 *  - Every waiting call is a suspension point with a timeout in seconds as
 *    its last argument (AIOC_FOREVER: no limit; 0: do not wait; negative
 *    or NaN: -EINVAL). It honours the task's cancellation (-ECANCELED) and
 *    the deadlines in scope (-ETIMEDOUT). The timeout of a connection
 *    covers the TLS handshake: a peer that stops answering mid-handshake
 *    gives -ETIMEDOUT.
 *  - A TLS failure (a certificate that does not verify, a handshake the
 *    peer breaks off with an alert, a peer that does not speak TLS, a
 *    record that does not decrypt) is AIOC_ETLS with a message naming the
 *    reason (aioc_error_message()): "certificate has expired",
 *    "self-signed certificate", "hostname mismatch", "wrong version
 *    number"... Failures of the socket keep their errno values.
 *  - Certificates are verified by default (the peer's chain against the
 *    trusted CAs, and for a client the name it connected to against the
 *    certificate's names), with the system's CA store unless CAs are
 *    given.
 *  - OpenSSL is driven through memory buffers on the loop's readiness
 *    waits: no thread, no blocking call. Its own allocations do not go
 *    through aioc_set_allocator()'s hook.
 *  - A context may be shared by the loops of several threads; a stream
 *    belongs to its loop and is not thread-safe (io.h). */
#ifndef AIOC_TLS_H
#define AIOC_TLS_H

#include "io.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The lowest protocol version a context accepts. */
typedef enum aioc_tls_version {
  AIOC_TLS_VERSION_DEFAULT = 0, /* TLS 1.2 */
  AIOC_TLS_VERSION_1_2 = 1,
  AIOC_TLS_VERSION_1_3 = 2
} aioc_tls_version;

/* Options of a context. Zero means the default. */
typedef struct aioc_tls_options {
  /* Non-zero: a server's context (cert_file and key_file are needed);
   * zero: a client's. */
  int server;
  /* The certificate chain (PEM, the certificate first) and its private
   * key (PEM), read when the context is made. */
  const char *cert_file;
  const char *key_file;
  /* The CAs a client trusts: a PEM file of certificates and/or a
   * directory of hashed certificates (c_rehash). Both NULL: the system's
   * store (/etc/ssl/certs on Debian). */
  const char *ca_file;
  const char *ca_dir;
  /* Client, non-zero: no verification at all, neither of the chain nor of
   * the name (for tests against throwaway certificates only). */
  int insecure;
  /* The application protocols offered (client) or accepted (server) by
   * ALPN, in order of preference, a NULL-terminated list ("h2",
   * "http/1.1"). The list is copied. A server picks the first of its own
   * that the client offers; with none in common the handshake goes on
   * without one. NULL: no ALPN. */
  const char *const *alpn;
  /* The lowest version accepted (default TLS 1.2). */
  aioc_tls_version min_version;
  /* Server: the longest an accepted connection's handshake may take
   * before the connection is dropped, in seconds (0: 60). */
  double handshake_timeout;
} aioc_tls_options;

/* The configuration TLS streams are made with: an OpenSSL SSL_CTX and
 * aioc's options. */
typedef struct aioc_tls_context aioc_tls_context;

/* Makes a context (opts NULL: a client's with every default). Files are
 * read now. Returns 0 with *out; AIOC_ETLS with a message (a file that
 * does not load, a key that does not match its certificate); -EINVAL
 * (a server without cert_file or key_file, an ALPN name empty or longer
 * than 255 bytes, a bad version); -ENOMEM. On failure *out is NULL. */
AIOC_API AIOC_NODISCARD int aioc_tls_context_new(aioc_tls_context **out,
                                                 const aioc_tls_options *opts);

/* Frees the context. Streams made with it stay usable, and a server or a
 * handshake in progress that uses it keeps it alive until it is done.
 * NULL is harmless. */
AIOC_API void aioc_tls_context_free(aioc_tls_context *ctx);

/* Suspension point: connects to host and port over TCP as
 * aioc_open_connection() does, then makes the TLS handshake, all within
 * timeout. ctx is a client's context (NULL: one with every default, made
 * for the call). host is sent as the server name (SNI) unless it is a
 * numeric address, and the certificate must name it (a DNS name, or an
 * IP address for a numeric host) unless ctx is insecure. Returns 0 with
 * *out; the codes of aioc_open_connection(); AIOC_ETLS (the reason in
 * aioc_error_message()); -ECONNRESET (the peer closed during the
 * handshake); -EINVAL (ctx a server's). On failure *out is NULL. */
AIOC_API AIOC_NODISCARD int
aioc_tls_open_connection(aioc_stream **out, const char *host, int port,
                         aioc_tls_context *ctx,
                         const aioc_stream_options *opts, double timeout);

/* Suspension point: upgrades the open plain stream s to TLS (STARTTLS):
 * the handshake, as a client or a server as ctx says, within timeout.
 * Data written before the call goes out first, in plain; data already
 * read from the peer and not yet consumed is taken as the start of the
 * handshake. server_hostname (client only) is the name sent as SNI and
 * verified as aioc_tls_open_connection() does with its host; NULL with a
 * client context that verifies is -EINVAL. No other call may read s
 * meanwhile (-EBUSY); writes made meanwhile are buffered and go out
 * encrypted after the handshake. On failure s is broken: every read and
 * write returns the error; close or free it. Returns 0, AIOC_ETLS,
 * -ECONNRESET, -ETIMEDOUT, -ECANCELED, -EBUSY (a read in progress),
 * -EALREADY (s is TLS already), AIOC_ECLOSED, AIOC_ENOTASK, -EINVAL,
 * -ENOMEM. */
AIOC_API AIOC_NODISCARD int aioc_stream_start_tls(aioc_stream *s,
                                                  aioc_tls_context *ctx,
                                                  const char *server_hostname,
                                                  double timeout);

/* Listens as aioc_start_server() does (the same host, port and options),
 * and makes every accepted connection's TLS handshake, with ctx (a
 * server's) and its handshake_timeout, in the connection's task before
 * fn(arg, stream) runs. A connection whose handshake fails (a plaintext
 * client, a client that stops mid-handshake, one that rejects the
 * certificate) is closed without calling fn and without a report. The
 * server keeps ctx alive until it is freed. Returns as
 * aioc_start_server(), and -EINVAL (ctx NULL or a client's). */
AIOC_API AIOC_NODISCARD int
aioc_tls_start_server(aioc_server **out, const char *host, int port,
                      aioc_conn_fn fn, void *arg, aioc_tls_context *ctx,
                      const aioc_server_options *opts);

/* Non-zero if s is a TLS stream (its handshake done or in progress). */
AIOC_API int aioc_stream_is_tls(const aioc_stream *s);

/* The application protocol ALPN settled on ("h2"), or NULL (none, not a
 * TLS stream, or the handshake not done). Valid until s is freed. */
AIOC_API const char *aioc_stream_tls_alpn(const aioc_stream *s);

/* The protocol version negotiated ("TLSv1.3", "TLSv1.2"), or NULL (not a
 * TLS stream, or the handshake not done). A static string. */
AIOC_API const char *aioc_stream_tls_version(const aioc_stream *s);

/* The subject of the peer's certificate, one line in RFC 2253 form
 * ("CN=localhost"), or NULL (the peer sent none, as clients usually do;
 * not a TLS stream; the handshake not done). Valid until s is freed. */
AIOC_API const char *aioc_stream_tls_peer_subject(const aioc_stream *s);

/* The server name (SNI) the client sent, on either side, or NULL (none:
 * a numeric host; not a TLS stream). Valid until s is freed. */
AIOC_API const char *aioc_stream_tls_server_name(const aioc_stream *s);

/* The stream's OpenSSL object (an SSL *), for what this header does not
 * cover: session data, SSL_key_update(), certificate details. Borrowed,
 * valid until s is freed; NULL if s is not TLS. Reading and writing it
 * with SSL_read() or SSL_write() directly would break the stream. */
struct ssl_st;
AIOC_API struct ssl_st *aioc_stream_tls_ssl(const aioc_stream *s);

#ifdef __cplusplus
}
#endif
#endif /* AIOC_TLS_H */
