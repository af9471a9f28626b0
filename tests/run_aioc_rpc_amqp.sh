#!/bin/sh
# aioc-rpc over the test run's RabbitMQ: a worker process and a caller
# process meet through the broker; the worker stops cleanly on SIGTERM.
# Usage: run_aioc_rpc_amqp.sh AIOC_RPC_BINARY   (AIOC_RMQ_ENV: the broker)
set -u
tool=$1
[ -f "${AIOC_RMQ_ENV:-}" ] || { echo "skipped: no broker"; exit 0; }
. "$AIOC_RMQ_ENV"
url=amqp://guest:guest@127.0.0.1:$RMQ_PORT
out=$(mktemp -d)
trap 'kill $wpid 2>/dev/null; rm -rf "$out"' EXIT
"$tool" worker --amqp "$url" --prefix aioc.tooltest. --grace 5 \
  >"$out/worker" 2>&1 &
wpid=$!
i=0
until grep -q serving "$out/worker"; do
  i=$((i + 1))
  if [ $i -gt 300 ] || ! kill -0 $wpid 2>/dev/null; then
    echo "worker did not start:"; cat "$out/worker"; exit 1
  fi
  sleep 0.1
done
"$tool" call --amqp "$url" --prefix aioc.tooltest. --timeout 10 \
  count 3,0.05 >"$out/call" 2>&1 || { cat "$out/call"; exit 1; }
cat "$out/call"
grep -q "chunk 0: 1" "$out/call" && grep -q "chunk 2: 3" "$out/call" &&
  grep -q "end of the response" "$out/call" || exit 1
kill -TERM $wpid
wait $wpid
status=$?
cat "$out/worker"
[ $status -eq 0 ] && grep -q "1 request(s) handled" "$out/worker"
