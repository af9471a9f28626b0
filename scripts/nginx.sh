#!/bin/bash
# A throwaway nginx for the HTTP tests and benchmark B9: no service manager,
# everything (configuration, certificates, logs, pid file, temporary files,
# the files it serves) in one directory, loopback only, ports picked free at
# start, certificates made with the openssl command at every start. Runs as
# root (the workers then run as root too) or as any other user.
#
#   nginx.sh start DIR    makes DIR (or empties one this script made
#                         before), starts nginx, waits until every port
#                         accepts, and writes DIR/env (below); exit 77 when
#                         nginx or openssl is not installed
#   nginx.sh stop DIR     stops it (SIGTERM, then SIGKILL after 10 s) and
#                         keeps DIR: its logs and certificates stay there
#                         for a look after a failed test, and the next
#                         start empties it
#   nginx.sh destroy DIR  stops it and removes DIR
#   nginx.sh pid DIR      prints the master process's id
#
# DIR/env, shell KEY=VALUE lines (no quoting: DIR may not hold spaces):
#   NGINX_DIR             DIR
#   HTTP_PORT             plain HTTP/1.1
#   HTTPS_PORT            TLS with a certificate for 127.0.0.1 and
#                         localhost signed by CA_FILE; HTTP/2 and
#                         HTTP/1.1 (ALPN)
#   HTTPS_EXPIRED_PORT    TLS, the same names and CA, expired in 2020
#   HTTPS_SELFSIGNED_PORT TLS, the same names, self-signed
#   HTTPS_WRONGHOST_PORT  TLS, signed by CA_FILE for wrong.example only
#   CA_FILE               the throwaway CA's certificate (PEM)
#   DOCROOT               the files served
# Every port serves the same things:
#   /1k /64k /1m          1024, 65536, 1048576 bytes: byte i is
#                         'a' + i % 26 (application/octet-stream)
#   /hello.txt            "Hello, world!\n" (text/plain)
#   /json/ip              {"ip": "127.0.0.1"} (application/json)
#   /json/query           {"query": "127.0.0.1"} (application/json)
#   /redir                302 to /hello.txt
#   /loop                 302 to /loop (a redirect loop)
#   anything else         404
# NGINX_ACCESS_LOG=0 in the environment of start turns the access log off
# (the benchmark does); NGINX_WORKERS sets worker_processes (default 1).
set -eu
cmd=${1:?usage: nginx.sh start|stop|destroy|pid DIR}
dir=${2:?usage: nginx.sh $cmd DIR}
MARK=.aioc-nginx        # in every DIR this script made: safe to empty

case "$dir" in
  *[[:space:]\"\'\;\$\\]*)
    echo "nginx.sh: $dir: spaces, quotes, ';', '\$' and '\\' not allowed" >&2
    exit 2 ;;
  /*) ;;
  *) dir=$PWD/$dir ;;
esac

find_nginx() {
  local n
  n=$(command -v nginx 2>/dev/null || true)
  [ -n "$n" ] || { [ -x /usr/sbin/nginx ] && n=/usr/sbin/nginx; }
  echo "$n"
}

free_port() {   # a port nothing listens on, below the ephemeral range
  local p
  for _ in $(seq 1 200); do
    p=$(( 20000 + RANDOM % 12000 ))
    case " $taken " in *" $p "*) continue ;; esac
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  return 1
}

accepting() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# alive PID: the process runs (a zombie waiting for its reaper does not).
alive() {
  local st
  st=$(sed -n 's/^[0-9]* (.*) \(.\) .*/\1/p' "/proc/$1/stat" 2>/dev/null)
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# ours PID: the nginx master of this DIR (a stale pid file's number may
# have gone to another process since).
ours() {
  tr '\0' ' ' < "/proc/$1/cmdline" 2>/dev/null |
    grep -qF -- "-c $dir/nginx.conf"
}

stop_nginx() {
  local pid kids
  pid=$(cat "$dir/nginx.pid" 2>/dev/null || true)
  if [ -n "$pid" ] && alive "$pid" && ours "$pid"; then
    kids=$(pgrep -P "$pid" 2>/dev/null || true)
    kill -CONT "$pid" 2>/dev/null || true   # a test may have stopped it
    kill -TERM "$pid" 2>/dev/null || true   # fast shutdown
    for _ in $(seq 1 200); do alive "$pid" || break; sleep 0.05; done
    if alive "$pid"; then
      echo "nginx did not stop within 10 s: killed" >&2
      kill -KILL "$pid" $kids 2>/dev/null || true
    fi
  fi
  rm -f "$dir/nginx.pid"
}

# make_certs CERTS: the throwaway CA and the certificates
# (scripts/tls-certs.sh, shared with the TLS tests).
make_certs() {
  "$(cd "$(dirname "$0")" && pwd)/tls-certs.sh" "$1"
}

# make_docroot DOCROOT: the fixed files.
make_docroot() {
  local d=$1 n
  mkdir -p "$d/json"
  for n in 1k:1024 64k:65536 1m:1048576; do
    yes abcdefghijklmnopqrstuvwxyz | tr -d '\n' | head -c "${n#*:}" \
      > "$d/${n%%:*}" || true   # yes ends on SIGPIPE
  done
  printf 'Hello, world!\n' > "$d/hello.txt"
  printf '{"ip": "127.0.0.1"}' > "$d/json/ip"
  printf '{"query": "127.0.0.1"}' > "$d/json/query"
}

# write_conf: nginx.conf for the ports in HTTP_PORT... (already set).
write_conf() {
  local user_line="" access="$dir/logs/access.log"
  # As root, nginx's workers would run as nobody, who cannot read DIR.
  [ "$(id -u)" -eq 0 ] && user_line="user $(id -un) $(id -gn);"
  [ "${NGINX_ACCESS_LOG:-1}" = 0 ] && access=off
  cat > "$dir/locations.conf" <<EOF
root $dir/docroot;
location = /redir { return 302 /hello.txt; }
location = /loop { return 302 /loop; }
location /json/ { default_type application/json; }
EOF
  local tls="ssl_protocols TLSv1.2 TLSv1.3; ssl_session_cache shared:tls:1m;"
  cat > "$dir/nginx.conf" <<EOF
# Written by scripts/nginx.sh for one test run.
daemon on;
master_process on;
worker_processes ${NGINX_WORKERS:-1};
pid $dir/nginx.pid;
lock_file $dir/nginx.lock;
error_log $dir/logs/error.log warn;
$user_line
events { worker_connections 4096; }
http {
  access_log $access;
  client_body_temp_path $dir/tmp/body;
  proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fastcgi;
  uwsgi_temp_path $dir/tmp/uwsgi;
  scgi_temp_path $dir/tmp/scgi;
  types { text/plain txt; application/json json; text/html html; }
  default_type application/octet-stream;
  sendfile on;
  server_tokens off;
  keepalive_timeout 60s;
  keepalive_requests 100000;
  open_file_cache max=64 inactive=60s;
  open_file_cache_valid 60s;
  server {
    listen 127.0.0.1:$HTTP_PORT;
    listen 127.0.0.1:$HTTPS_PORT ssl http2;
    server_name localhost;
    ssl_certificate $dir/certs/good.crt;
    ssl_certificate_key $dir/certs/good.key;
    $tls
    include $dir/locations.conf;
  }
  server {
    listen 127.0.0.1:$HTTPS_EXPIRED_PORT ssl http2;
    ssl_certificate $dir/certs/expired.crt;
    ssl_certificate_key $dir/certs/expired.key;
    $tls
    include $dir/locations.conf;
  }
  server {
    listen 127.0.0.1:$HTTPS_SELFSIGNED_PORT ssl http2;
    ssl_certificate $dir/certs/selfsigned.crt;
    ssl_certificate_key $dir/certs/selfsigned.key;
    $tls
    include $dir/locations.conf;
  }
  server {
    listen 127.0.0.1:$HTTPS_WRONGHOST_PORT ssl http2;
    ssl_certificate $dir/certs/wronghost.crt;
    ssl_certificate_key $dir/certs/wronghost.key;
    $tls
    include $dir/locations.conf;
  }
}
EOF
}

case "$cmd" in
start)
  NGINX=$(find_nginx)
  if [ -z "$NGINX" ]; then
    echo "nginx is not installed (Debian: nginx-light)" >&2
    exit 77
  fi
  if ! command -v openssl > /dev/null; then
    echo "openssl is not installed (Debian: openssl)" >&2
    exit 77
  fi
  if [ -e "$dir" ] && [ ! -e "$dir/$MARK" ] &&
     [ -n "$(ls -A "$dir" 2>/dev/null)" ]; then
    echo "nginx.sh: $dir is not empty and not one of nginx.sh's" >&2
    exit 2
  fi
  [ -e "$dir/$MARK" ] && { stop_nginx; rm -rf "$dir"; }
  mkdir -p "$dir/certs" "$dir/logs" "$dir/tmp"
  : > "$dir/$MARK"
  make_certs "$dir/certs" > "$dir/logs/certs.log" 2>&1 || true
  for f in ca good expired selfsigned wronghost; do
    if [ ! -s "$dir/certs/$f.crt" ]; then
      echo "nginx.sh: openssl did not make certs/$f.crt:" >&2
      tail -n 5 "$dir/logs/certs.log" >&2
      exit 1
    fi
  done
  make_docroot "$dir/docroot"
  t0=$SECONDS
  ok=
  for attempt in 1 2 3 4 5; do      # a port taken meanwhile: others
    taken=""
    for v in HTTP_PORT HTTPS_PORT HTTPS_EXPIRED_PORT HTTPS_SELFSIGNED_PORT \
             HTTPS_WRONGHOST_PORT; do
      p=$(free_port) || { echo "no free port" >&2; exit 1; }
      printf -v "$v" %s "$p"
      taken="$taken $p"
    done
    write_conf
    : > "$dir/logs/error.log"
    if "$NGINX" -p "$dir" -c "$dir/nginx.conf" -e "$dir/logs/error.log" \
         < /dev/null > "$dir/logs/start.log" 2>&1; then
      ok=1
      break
    fi
    grep -q "Address already in use" "$dir/logs/error.log" \
             "$dir/logs/start.log" || break
    echo "a port was taken (attempt $attempt): trying others" >&2
  done
  if [ -z "$ok" ]; then
    echo "nginx did not start; see $dir/logs" >&2
    tail -n 5 "$dir/logs/error.log" "$dir/logs/start.log" >&2
    exit 1
  fi
  for _ in $(seq 1 200); do         # the ports listen before nginx returns
    up=1
    for p in $taken; do accepting "$p" || { up=; break; }; done
    [ -n "$up" ] && [ -s "$dir/nginx.pid" ] && break
    sleep 0.05
  done
  if [ -z "$up" ]; then
    echo "nginx not listening after 10 s; see $dir/logs" >&2
    stop_nginx
    exit 1
  fi
  cat > "$dir/env.tmp" <<EOF
NGINX_DIR=$dir
HTTP_PORT=$HTTP_PORT
HTTPS_PORT=$HTTPS_PORT
HTTPS_EXPIRED_PORT=$HTTPS_EXPIRED_PORT
HTTPS_SELFSIGNED_PORT=$HTTPS_SELFSIGNED_PORT
HTTPS_WRONGHOST_PORT=$HTTPS_WRONGHOST_PORT
CA_FILE=$dir/certs/ca.crt
DOCROOT=$dir/docroot
EOF
  mv "$dir/env.tmp" "$dir/env"
  echo "nginx up on 127.0.0.1:$HTTP_PORT (https $HTTPS_PORT) in" \
       "$((SECONDS - t0)) s (dir $dir)"
  ;;
stop)
  [ -e "$dir/$MARK" ] || { echo "nginx.sh: no nginx in $dir"; exit 0; }
  stop_nginx
  echo "nginx stopped (kept $dir)"
  ;;
destroy)
  [ -e "$dir/$MARK" ] || exit 0
  stop_nginx
  rm -rf "$dir"
  echo "nginx stopped and removed"
  ;;
pid)
  cat "$dir/nginx.pid"
  ;;
*)
  echo "usage: nginx.sh start|stop|destroy|pid DIR" >&2
  exit 2 ;;
esac
