#!/bin/sh
# The RPC demo over RabbitMQ: starts a throwaway broker on loopback (data
# in a temporary directory), an aioc-rpc worker process, and calls it from
# another process: a stream of chunks, then a call whose chunks come
# slower than the client waits between them. Stops everything at the end.
# Usage: scripts/demo-amqp.sh [AIOC_RPC_BINARY]   (default build/tools/aioc-rpc)
set -eu
tool=${1:-build/tools/aioc-rpc}
here=$(cd "$(dirname "$0")" && pwd)
env=$(mktemp)
wpid=
cleanup() {
  [ -n "$wpid" ] && kill -TERM "$wpid" 2>/dev/null && wait "$wpid" || true
  "$here/rmq.sh" destroy "$env" >/dev/null 2>&1 || true
  rm -f "$env"
}
trap cleanup EXIT INT TERM
"$here/rmq.sh" start "$env"
. "$env"
url=amqp://guest:guest@127.0.0.1:$RMQ_PORT
"$tool" worker --amqp "$url" --grace 5 &
wpid=$!
sleep 1
echo "== aioc-rpc call --amqp $url count 5,0.2"
"$tool" call --amqp "$url" count 5,0.2
echo "== aioc-rpc call --amqp $url --timeout 0.3 --give-up 3 count 3,0.5"
"$tool" call --amqp "$url" --timeout 0.3 --give-up 3 count 3,0.5 || true
