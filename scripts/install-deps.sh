#!/usr/bin/env bash
# Installs, from Debian packages, what the build, the tests, the demo and
# (with --bench) the benchmarks need (Python 3 generates the man pages,
# checks the docs and draws the demo's timeline; groff and man-db check the man pages; rabbitmq-c and,
# for the tests, RabbitMQ itself for the RPC layer's AMQP transport;
# libcurl for the HTTP client, jansson for the JSON of its tests and seed
# ports; nginx, openssl and curl for the HTTP tests' local server,
# scripts/nginx.sh, and with --bench B9's aiohttp peer). Safe to run
# again: it installs only what is missing. Needs root (or sudo) when
# something is missing.
set -euo pipefail

want=(gcc make cmake pkg-config valgrind libc-ares-dev librabbitmq-dev
      rabbitmq-server gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user
      libc-ares-dev:arm64 librabbitmq-dev:arm64 python3 groff-base man-db
      libcurl4-openssl-dev libcurl4-openssl-dev:arm64 libjansson-dev
      libjansson-dev:arm64 libssl-dev libssl-dev:arm64 nginx-light openssl
      curl)
if [ "${1:-}" = "--bench" ]; then
  want+=(golang-go libuv1-dev python3-uvloop gnuplot-nox libcurl4-openssl-dev
         python3-aiohttp python3-pika)
fi
if [ "${1:-}" = "--minimal" ]; then
  want=(gcc make cmake pkg-config libc-ares-dev librabbitmq-dev
        libcurl4-openssl-dev libjansson-dev libssl-dev python3)
fi

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing: ${missing[*]}"
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
# The aarch64 cross build links c-ares and rabbitmq-c for arm64 (Debian
# multiarch).
for p in "${missing[@]}"; do
  if [ "${p%:arm64}" != "$p" ] &&
     ! dpkg --print-foreign-architectures | grep -qx arm64; then
    $SUDO dpkg --add-architecture arm64
  fi
done
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
