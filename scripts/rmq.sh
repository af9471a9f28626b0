#!/bin/bash
# A throwaway RabbitMQ node for the tests: no service manager, everything
# (data, logs, cookie, config) in one temporary directory, loopback only,
# ports picked free at start, a private epmd.
#
#   rmq.sh start ENVFILE     starts a node in a new temporary directory,
#                            waits until its AMQP port accepts, and writes
#                            RMQ_DIR, RMQ_PORT, RMQ_DIST_PORT, RMQ_EPMD_PORT
#                            to ENVFILE (shell syntax); exit 77 when
#                            RabbitMQ is not installed
#   rmq.sh restart ENVFILE   starts the node of ENVFILE again (same
#                            directory and ports), after a stop or a kill
#   rmq.sh stop ENVFILE      stops it (SIGTERM, then SIGKILL), keeps the
#                            directory
#   rmq.sh destroy ENVFILE   stops it and removes the directory and ENVFILE
#   rmq.sh ctl ENVFILE ARGS  runs rabbitmqctl ARGS against it
#   rmq.sh pid ENVFILE       prints the broker's process id
set -eu
cmd=${1:?usage: rmq.sh start|restart|stop|destroy|ctl|pid ENVFILE ...}
envfile=${2:?usage: rmq.sh $cmd ENVFILE ...}
shift 2
RMQ_BIN=/usr/lib/rabbitmq/bin   # the real scripts (/usr/sbin's switch user)
NODE=aioctest@localhost

free_port() {   # a port nothing listens on, below the ephemeral range
  local p        # (an outgoing connection cannot take it meanwhile)
  for _ in $(seq 1 200); do
    p=$(( 20000 + RANDOM % 12000 ))
    case $p in 25672|35672|4369|5672|15672) continue ;; esac
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  return 1
}

rmq_env() {
  export HOME="$RMQ_DIR"              # .erlang.cookie is read from $HOME
  export RABBITMQ_NODENAME="$NODE"
  export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
  export RABBITMQ_NODE_PORT="$RMQ_PORT"
  export RABBITMQ_DIST_PORT="$RMQ_DIST_PORT"
  export ERL_EPMD_PORT="$RMQ_EPMD_PORT"
  export ERL_EPMD_ADDRESS=127.0.0.1
  export RABBITMQ_CTL_DIST_PORT_MIN=$((RMQ_DIST_PORT + 1))
  export RABBITMQ_CTL_DIST_PORT_MAX=$((RMQ_DIST_PORT + 10))
  export RABBITMQ_MNESIA_BASE="$RMQ_DIR/mnesia"
  export RABBITMQ_LOG_BASE="$RMQ_DIR/log"
  export RABBITMQ_CONFIG_FILE="$RMQ_DIR/rabbitmq.conf"
  export RABBITMQ_ADVANCED_CONFIG_FILE="$RMQ_DIR/advanced.config"
  export RABBITMQ_ENABLED_PLUGINS_FILE="$RMQ_DIR/enabled_plugins"
  export RABBITMQ_CONF_ENV_FILE="$RMQ_DIR/rabbitmq-env.conf"
  export RABBITMQ_PID_FILE="$RMQ_DIR/rabbit.pid"
  export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
}

write_env() {   # what the other commands and the tests read
  cat > "$envfile" <<EOF
RMQ_DIR=$RMQ_DIR
RMQ_PORT=$RMQ_PORT
RMQ_DIST_PORT=$RMQ_DIST_PORT
RMQ_EPMD_PORT=$RMQ_EPMD_PORT
EOF
}

accepting() { (exec 3<>"/dev/tcp/127.0.0.1/$RMQ_PORT") 2>/dev/null; }

launch() {
  rmq_env
  rm -f "$RMQ_DIR/rabbit.pid"
  local t0=$SECONDS
  setsid "$RMQ_BIN/rabbitmq-server" > "$RMQ_DIR/log/stdout.log" 2>&1 \
    < /dev/null &
  echo $! > "$RMQ_DIR/launcher.pid"
  for _ in $(seq 1 1800); do        # the AMQP listener opens last
    accepting && break
    if ! kill -0 "$(cat "$RMQ_DIR/launcher.pid")" 2>/dev/null; then
      echo "rabbitmq died during boot; see $RMQ_DIR/log" >&2
      tail -5 "$RMQ_DIR/log/stdout.log" >&2
      return 1
    fi
    sleep 0.05
  done
  accepting || { echo "rabbitmq not listening after 90 s" >&2; return 1; }
  echo "rabbitmq up on 127.0.0.1:$RMQ_PORT in $((SECONDS - t0)) s (dir $RMQ_DIR)"
}

stop_node() {
  rmq_env
  local pid
  pid=$(cat "$RMQ_DIR/rabbit.pid" 2>/dev/null || true)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -CONT "$pid" 2>/dev/null || true   # a test may have stopped it
    kill -TERM "$pid"
    for _ in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  local l
  l=$(cat "$RMQ_DIR/launcher.pid" 2>/dev/null || true)
  [ -n "$l" ] && kill -KILL "$l" 2>/dev/null || true
  epmd -port "$RMQ_EPMD_PORT" -kill > /dev/null 2>&1 || true
  rm -f "$RMQ_DIR/rabbit.pid" "$RMQ_DIR/launcher.pid"
}

case "$cmd" in
start)
  if [ ! -x "$RMQ_BIN/rabbitmq-server" ]; then
    echo "RabbitMQ is not installed (Debian: rabbitmq-server)" >&2
    exit 77
  fi
  RMQ_DIR=$(mktemp -d "${TMPDIR:-/tmp}/aioc-rmq.XXXXXX")
  RMQ_PORT=$(free_port)
  RMQ_DIST_PORT=$(free_port)
  RMQ_EPMD_PORT=$(free_port)
  mkdir -p "$RMQ_DIR/log" "$RMQ_DIR/mnesia"
  head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$RMQ_DIR/.erlang.cookie"
  chmod 400 "$RMQ_DIR/.erlang.cookie"      # Erlang refuses a readable one
  echo '[].' > "$RMQ_DIR/enabled_plugins"
  : > "$RMQ_DIR/rabbitmq-env.conf"
  cat > "$RMQ_DIR/rabbitmq.conf" <<EOF
listeners.tcp.default = 127.0.0.1:$RMQ_PORT
disk_free_limit.absolute = 50MB
log.console = false
log.file.level = warning
EOF
  write_env
  # A port taken between the check and the broker's listen (eaddrinuse in
  # its boot log): new ports, up to three times.
  for try in 1 2 3; do
    launch && exit 0
    grep -q eaddrinuse "$RMQ_DIR/log/stdout.log" 2>/dev/null || exit 1
    stop_node
    echo "a port was taken meanwhile; trying others" >&2
    RMQ_PORT=$(free_port)
    RMQ_DIST_PORT=$(free_port)
    RMQ_EPMD_PORT=$(free_port)
    sed -i "s/^listeners.tcp.default = .*/listeners.tcp.default = 127.0.0.1:$RMQ_PORT/" \
      "$RMQ_DIR/rabbitmq.conf"
    write_env
  done
  exit 1
  ;;
restart)
  . "$envfile"
  stop_node
  launch
  ;;
stop)
  . "$envfile"
  stop_node
  echo "rabbitmq stopped"
  ;;
destroy)
  [ -f "$envfile" ] || exit 0
  . "$envfile"
  stop_node
  case "$RMQ_DIR" in */aioc-rmq.*) rm -rf "$RMQ_DIR" ;; esac
  rm -f "$envfile"
  echo "rabbitmq stopped and removed"
  ;;
ctl)
  . "$envfile"
  rmq_env
  "$RMQ_BIN/rabbitmqctl" -n "$NODE" "$@"
  ;;
pid)
  . "$envfile"
  cat "$RMQ_DIR/rabbit.pid"
  ;;
*)
  echo "usage: rmq.sh start|restart|stop|destroy|ctl|pid ENVFILE ..." >&2
  exit 2 ;;
esac
