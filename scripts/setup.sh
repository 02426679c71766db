#!/usr/bin/env bash
# Installs what the demo, the tests and the benchmarks need, from Debian's packages:
# PostgreSQL 15 and PgBouncer, Redis, memcached and nutcracker (twemproxy), and the real
# clients the tests drive (psql, pgbench, redis-cli, redis-benchmark, libmemcached tools,
# ActiveRecord with ruby-pg, dalli). Safe to run again: it installs only what is missing.
set -euo pipefail

packages=(
  postgresql-15 postgresql-client-15 pgbouncer prometheus
  redis-server redis-tools
  memcached libmemcached-tools
  nutcracker
  ruby ruby-activerecord ruby-pg ruby-dalli
  procps iproute2 ca-certificates openssl
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  # Debian starts the services it installs where it can; the tests start their own.
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
  export PATH=$PATH:/usr/local/go/bin
fi
command -v go >/dev/null || { echo "setup: Go is required (https://go.dev/dl)"; exit 1; }
echo "setup: ok"
