#!/bin/sh
# The test run's nginx (scripts/nginx.sh, the CTest fixture "nginx"), seen
# by the curl command: HTTP/1.1 on the plain port, HTTP/2 with the CA on the
# TLS port, each bad certificate refused, the redirects, a 404, the files.
# Usage: nginx_check.sh   (AIOC_NGINX_ENV: nginx's env file)
set -u
[ -f "${AIOC_NGINX_ENV:-}" ] || { echo "skipped: no nginx"; exit 77; }
command -v curl > /dev/null || { echo "skipped: no curl command"; exit 77; }
. "$AIOC_NGINX_ENV"
fails=0
http=http://127.0.0.1:$HTTP_PORT
https=https://127.0.0.1:$HTTPS_PORT
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# expect WHAT WANT CURL-ARGS...: curl's -w output must be WANT.
expect() {
  what=$1 want=$2
  shift 2
  got=$(curl -sS --noproxy "*" --max-time 10 -o "$out/body" "$@" 2> "$out/err")
  if [ "$got" = "$want" ]; then
    echo "ok   $what"
  else
    echo "FAIL $what: got '$got', want '$want'"
    sed 's/^/     /' "$out/err"
    fails=$((fails + 1))
  fi
}

# refused WHAT CODE CURL-ARGS...: curl must fail with exit status CODE.
refused() {
  what=$1 want=$2
  shift 2
  curl -sS --noproxy "*" --max-time 10 -o /dev/null "$@" 2> "$out/err"
  rc=$?
  if [ "$rc" -eq "$want" ]; then
    echo "ok   $what: $(head -n 1 "$out/err")"
  else
    echo "FAIL $what: curl exit $rc, want $want"
    sed 's/^/     /' "$out/err"
    fails=$((fails + 1))
  fi
}

v='%{http_code} %{size_download} %{http_version}'
expect "HTTP/1.1 GET /1k" "200 1024 1.1" -w "$v" --http1.1 "$http/1k"
cmp -s "$out/body" "$DOCROOT/1k" || { echo "FAIL /1k body"; fails=$((fails + 1)); }
expect "HTTP/1.1 GET /64k" "200 65536 1.1" -w "$v" "$http/64k"
expect "HTTP/1.1 GET /1m" "200 1048576 1.1" -w "$v" "$http/1m"
cmp -s "$out/body" "$DOCROOT/1m" || { echo "FAIL /1m body"; fails=$((fails + 1)); }
expect "HTTPS, HTTP/2 negotiated" "200 1024 2" -w "$v" --http2 \
  --cacert "$CA_FILE" "$https/1k"
expect "HTTPS by name (localhost)" "200 14 2" -w "$v" --http2 \
  --cacert "$CA_FILE" "https://localhost:$HTTPS_PORT/hello.txt"
expect "HTTPS, HTTP/1.1 asked" "200 1048576 1.1" -w "$v" --http1.1 \
  --cacert "$CA_FILE" "$https/1m"
expect "/json/ip over HTTP/2" "200 application/json 2" \
  -w '%{http_code} %{content_type} %{http_version}' --cacert "$CA_FILE" "$https/json/ip"
[ "$(cat "$out/body")" = '{"ip": "127.0.0.1"}' ] ||
  { echo "FAIL /json/ip body: $(cat "$out/body")"; fails=$((fails + 1)); }
expect "/json/query" "200 application/json" \
  -w '%{http_code} %{content_type}' "$http/json/query"
[ "$(cat "$out/body")" = '{"query": "127.0.0.1"}' ] ||
  { echo "FAIL /json/query body: $(cat "$out/body")"; fails=$((fails + 1)); }
expect "/redir followed" "200 1 $http/hello.txt" \
  -w '%{http_code} %{num_redirects} %{url_effective}' -L "$http/redir"
expect "404" "404" -w '%{http_code}' "$http/nothing-here"
refused "redirect loop" 47 -L --max-redirs 5 "$http/loop"
refused "expired certificate" 60 --cacert "$CA_FILE" \
  "https://127.0.0.1:$HTTPS_EXPIRED_PORT/1k"
refused "self-signed certificate" 60 --cacert "$CA_FILE" \
  "https://127.0.0.1:$HTTPS_SELFSIGNED_PORT/1k"
refused "wrong host" 60 --cacert "$CA_FILE" \
  "https://127.0.0.1:$HTTPS_WRONGHOST_PORT/1k"
# The same ports without verification: the certificates, not the servers,
# were refused.
for p in $HTTPS_EXPIRED_PORT $HTTPS_SELFSIGNED_PORT $HTTPS_WRONGHOST_PORT; do
  expect "port $p unverified" "200 1024 2" -w "$v" -k --http2 \
    "https://127.0.0.1:$p/1k"
done
expect "wrong host by its own name" "200" -w '%{http_code}' \
  --cacert "$CA_FILE" \
  --resolve "wrong.example:$HTTPS_WRONGHOST_PORT:127.0.0.1" \
  "https://wrong.example:$HTTPS_WRONGHOST_PORT/hello.txt"

[ $fails -eq 0 ] || { echo "$fails check(s) failed"; exit 1; }
echo "all checks passed"
