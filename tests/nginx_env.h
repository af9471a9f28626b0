/* The test run's nginx (scripts/nginx.sh, started by the CTest fixture
 * "nginx"): its ports and files, read from the env file whose path is in
 * the environment variable AIOC_NGINX_ENV (tests/CMakeLists.txt sets it
 * for the tests registered with aioc_uses_nginx()). */
#ifndef AIOC_TEST_NGINX_ENV_H
#define AIOC_TEST_NGINX_ENV_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct nginx_env {
  int http_port;             /* plain HTTP/1.1 */
  int https_port;            /* TLS, HTTP/2 and HTTP/1.1, cert by ca_file */
  int https_expired_port;    /* TLS, expired certificate */
  int https_selfsigned_port; /* TLS, self-signed certificate */
  int https_wronghost_port;  /* TLS, certificate for wrong.example */
  char ca_file[512];         /* the CA of https_port's certificate */
  char docroot[512];         /* the files served (/1k, /64k, /1m...) */
  char dir[512];             /* nginx's directory (logs in dir/logs) */
} nginx_env;

/* Fills *e from $AIOC_NGINX_ENV. Returns 0; -ENOENT when the variable is
 * unset or the file missing (no nginx in this build: skip the case);
 * -EPROTO when a key is missing. */
static inline int nginx_env_load(nginx_env *e) {
  memset(e, 0, sizeof *e);
  const char *path = getenv("AIOC_NGINX_ENV");
  if (!path || !*path) return -ENOENT;
  FILE *f = fopen(path, "r");
  if (!f) return -ENOENT;
  char line[1024];
  while (fgets(line, sizeof line, f)) {
    line[strcspn(line, "\r\n")] = 0;
    char *eq = strchr(line, '=');
    if (!eq) continue;
    *eq = 0;
    const char *k = line, *v = eq + 1;
    if (!strcmp(k, "HTTP_PORT")) e->http_port = atoi(v);
    else if (!strcmp(k, "HTTPS_PORT")) e->https_port = atoi(v);
    else if (!strcmp(k, "HTTPS_EXPIRED_PORT")) e->https_expired_port = atoi(v);
    else if (!strcmp(k, "HTTPS_SELFSIGNED_PORT"))
      e->https_selfsigned_port = atoi(v);
    else if (!strcmp(k, "HTTPS_WRONGHOST_PORT"))
      e->https_wronghost_port = atoi(v);
    else if (!strcmp(k, "CA_FILE"))
      snprintf(e->ca_file, sizeof e->ca_file, "%s", v);
    else if (!strcmp(k, "DOCROOT"))
      snprintf(e->docroot, sizeof e->docroot, "%s", v);
    else if (!strcmp(k, "NGINX_DIR"))
      snprintf(e->dir, sizeof e->dir, "%s", v);
  }
  fclose(f);
  if (e->http_port <= 0 || e->https_port <= 0 || e->https_expired_port <= 0 ||
      e->https_selfsigned_port <= 0 || e->https_wronghost_port <= 0 ||
      !e->ca_file[0] || !e->docroot[0])
    return -EPROTO;
  return 0;
}

#endif
