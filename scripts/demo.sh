#!/usr/bin/env bash
# The quick-start demo: installs what is needed (scripts/setup.sh), starts a real
# PostgreSQL 15 in a temporary directory, puts pgpool in front of it with a
# pgbouncer.ini (transaction pooling, pool_size 10, max_client_conn 1000), runs
# 500 concurrent clients doing transactions through that pool of 10, and prints
# what pgpool did. Everything it starts is stopped, and its files removed, on exit.
#
# Run from anywhere, as root on a fresh Debian machine (or as a user with sudo):
#   scripts/demo.sh
# Environment: DEMO_CLIENTS (500), DEMO_DURATION (10s), DEMO_SECTIONS ("pgpool").
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

clients=${DEMO_CLIENTS:-500}
duration=${DEMO_DURATION:-10s}
sections=${DEMO_SECTIONS:-pgpool} # later: "pgpool kvproxy"
pgbin=/usr/lib/postgresql/15/bin

say() { printf '\n==> %s\n' "$*"; }

# --- housekeeping -----------------------------------------------------------------

tmp=$(mktemp -d /tmp/poolsuite-demo.XXXXXX)
chmod 755 "$tmp"
pids=()          # background processes to stop on exit
cleanups=()      # commands to run on exit, last first

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  for ((i = ${#cleanups[@]} - 1; i >= 0; i--)); do
    eval "${cleanups[i]}" >/dev/null 2>&1 || true
  done
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  rm -rf "$tmp"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# as_postgres runs a command as the unprivileged postgres user (PostgreSQL refuses root).
as_postgres() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  elif [ "$(id -un)" = postgres ]; then
    "$@"
  else
    sudo -u postgres -- "$@"
  fi
}

# free_port prints a TCP port nobody listens on.
free_port() {
  local port
  while :; do
    port=$((20000 + RANDOM % 40000))
    ss -Hltn "sport = :$port" | grep -q . || { echo "$port"; return; }
  done
}

# wait_port waits until 127.0.0.1:$1 accepts connections (or fails after $2 seconds).
wait_port() {
  local deadline=$((SECONDS + ${2:-30}))
  until (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
    ((SECONDS < deadline)) || { echo "demo: nothing listens on port $1" >&2; return 1; }
    sleep 0.1
  done
}

# --- setup ---------------------------------------------------------------------

say "Installing what the demo needs (scripts/setup.sh)"
"$root/scripts/setup.sh"
command -v go >/dev/null 2>&1 || export PATH=$PATH:/usr/local/go/bin

say "Building pgpool and the load generator"
mkdir -p "$tmp/bin"
go build -o "$tmp/bin/pgpool" ./cmd/pgpool
go build -o "$tmp/bin/pgload" ./bench/cmd/pgload

# --- PostgreSQL ----------------------------------------------------------------

start_postgres() {
  say "Starting PostgreSQL 15 in $tmp/pg"
  pg_port=$(free_port)
  pg_password=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
  mkdir -p "$tmp/pg"
  chown postgres: "$tmp/pg"
  printf '%s\n' "$pg_password" >"$tmp/pg/pwfile"
  chown postgres: "$tmp/pg/pwfile"
  as_postgres "$pgbin/initdb" -D "$tmp/pg/data" -U postgres --pwfile="$tmp/pg/pwfile" \
    -A scram-sha-256 --auth-local=trust >"$tmp/pg/initdb.log"
  cat >"$tmp/pg/data/pg_hba.conf" <<EOF
local all all trust
host  all all 127.0.0.1/32 scram-sha-256
host  all all ::1/128      scram-sha-256
EOF
  as_postgres "$pgbin/pg_ctl" -D "$tmp/pg/data" -l "$tmp/pg/postgres.log" -w -t 60 \
    -o "-p $pg_port -k $tmp/pg -c listen_addresses=127.0.0.1 -c max_connections=100 -c fsync=off -c synchronous_commit=off" \
    start >/dev/null
  cleanups+=("as_postgres $pgbin/pg_ctl -D $tmp/pg/data -m immediate stop")
  pg_dsn="postgres://postgres:$pg_password@127.0.0.1:$pg_port/postgres?sslmode=disable"
  app_password=app-$pg_password
  as_postgres "$pgbin/psql" -X -q -h "$tmp/pg" -p "$pg_port" -U postgres -d postgres -v ON_ERROR_STOP=1 <<EOF
create role app login password '$app_password';
create database app owner app;
EOF
  echo "PostgreSQL listens on 127.0.0.1:$pg_port (max_connections=100)"
}

# --- pgpool --------------------------------------------------------------------

start_pgpool() {
  say "Starting pgpool in front of it"
  pgpool_port=$(free_port)
  mkdir -p "$tmp/pgpool"
  # userlist.txt as PgBouncer users write it: the SCRAM secret copied from pg_authid
  # for the application, a plain password for the admin console's user.
  local secret
  secret=$(as_postgres "$pgbin/psql" -X -At -h "$tmp/pg" -p "$pg_port" -U postgres -d postgres \
    -c "select rolpassword from pg_authid where rolname = 'app'")
  printf '"app" "%s"\n"admin" "admin-secret"\n' "$secret" >"$tmp/pgpool/userlist.txt"
  cat >"$tmp/pgpool/pgbouncer.ini" <<EOF
[databases]
app = host=127.0.0.1 port=$pg_port dbname=app

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $pgpool_port
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $tmp/pgpool/userlist.txt
admin_users = admin
pool_mode = transaction
default_pool_size = 10
max_client_conn = 1000
logfile = $tmp/pgpool/pgpool.log
pidfile = $tmp/pgpool/pgpool.pid
EOF
  "$tmp/bin/pgpool" check-config "$tmp/pgpool/pgbouncer.ini"
  "$tmp/bin/pgpool" "$tmp/pgpool/pgbouncer.ini" 2>>"$tmp/pgpool/pgpool.log" &
  pids+=($!)
  wait_port "$pgpool_port" 30
  echo "pgpool $("$tmp/bin/pgpool" version | cut -d' ' -f2) listens on 127.0.0.1:$pgpool_port (pool_size 10, transaction mode)"
}

run_pgpool_workload() {
  say "Running $clients clients for $duration, each doing transactions through the pool of 10"
  "$tmp/bin/pgload" -clients "$clients" -duration "$duration" \
    -dsn "postgres://app:$app_password@127.0.0.1:$pgpool_port/app?sslmode=disable&default_query_exec_mode=exec" \
    -admin-dsn "postgres://admin:admin-secret@127.0.0.1:$pgpool_port/pgbouncer?sslmode=disable" \
    -pg-dsn "$pg_dsn"
  local errors
  errors=$(grep -c 'level=ERROR' "$tmp/pgpool/pgpool.log" || true)
  echo "  pgpool log: $(wc -l <"$tmp/pgpool/pgpool.log") lines, $errors errors"
}

demo_pgpool() {
  start_postgres
  start_pgpool
  run_pgpool_workload
}

# --- kvproxy -------------------------------------------------------------------
# A demo_kvproxy function goes here (Redis/memcached servers, kvproxy in front,
# a workload, a summary); add "kvproxy" to DEMO_SECTIONS' default to run it.

for section in $sections; do
  "demo_$section"
done
say "Done; stopping everything and removing $tmp"
