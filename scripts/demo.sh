#!/usr/bin/env bash
# The quick-start demo: installs what is needed (scripts/setup.sh), starts a real
# PostgreSQL 15 in a temporary directory, puts pgpool in front of it with a
# pgbouncer.ini (transaction pooling, pool_size 10, max_client_conn 1000), runs
# 500 concurrent clients doing transactions through that pool of 10, and prints
# what pgpool did. Then it starts 4 redis-servers with kvproxy in front (a
# nutcracker.yml with one pool, timeout 500), runs redis-benchmark and a split
# MSET/MGET through it, freezes one shard with SIGSTOP to show its keys answering
# "-ERR Connection timed out" within the timeout while the other shards keep working, and prints
# kvproxy's twemproxy stats. Last, 3 memcached servers behind kvproxy (a pool
# without redis: true): memcslap and memccp/memccat through it, in text and binary
# protocol, and one server frozen with SIGSTOP answered within the timeout.
# Everything it starts is stopped, and its files removed, on exit.
#
# Run from anywhere, as root on a fresh Debian machine (or as a user with sudo):
#   scripts/demo.sh
# Environment: DEMO_CLIENTS (500), DEMO_DURATION (10s),
# DEMO_SECTIONS ("pgpool kvproxy memcached").
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

clients=${DEMO_CLIENTS:-500}
duration=${DEMO_DURATION:-10s}
sections=${DEMO_SECTIONS:-pgpool kvproxy memcached}
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

# free_port prints a TCP port no socket uses, below the kernel's range of ephemeral
# ports: a port in that range can be taken by a connection (the workloads open
# hundreds) between this check and the server binding it.
free_port() {
  local port low
  low=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
  ((low > 11000)) || low=32768
  while :; do
    port=$((10000 + RANDOM % (low - 10000)))
    ss -Htan "sport = :$port" | grep -q . || { echo "$port"; return; }
  done
}

# wait_port waits until 127.0.0.1:$1 accepts connections, or fails after $2 seconds,
# or at once when the process $3 (optional) has exited, showing the end of its log $4.
wait_port() {
  local deadline=$((SECONDS + ${2:-30})) pid=${3:-} log=${4:-}
  until (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      echo "demo: the process meant to listen on port $1 exited" >&2
      [ -n "$log" ] && tail -n 20 "$log" | sed 's/^/  | /' >&2
      return 1
    fi
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
  # A port taken by someone else between free_port and the start is retried on another.
  local attempt
  for attempt in 1 2 3; do
    if as_postgres "$pgbin/pg_ctl" -D "$tmp/pg/data" -l "$tmp/pg/postgres.log" -w -t 60 \
      -o "-p $pg_port -k $tmp/pg -c listen_addresses=127.0.0.1 -c max_connections=100 -c fsync=off -c synchronous_commit=off" \
      start >/dev/null; then
      break
    fi
    echo "demo: PostgreSQL did not start (attempt $attempt); its log ends with:" >&2
    tail -n 5 "$tmp/pg/postgres.log" >&2 || true
    [ "$attempt" -eq 3 ] && return 1
    pg_port=$(free_port)
  done
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
; pool_mode defaults to session, as in PgBouncer: transaction pooling is asked for
pool_mode = transaction
default_pool_size = 10
max_client_conn = 1000
logfile = $tmp/pgpool/pgpool.log
pidfile = $tmp/pgpool/pgpool.pid
EOF
  if [ "$(id -u)" -eq 0 ]; then
    # As PgBouncer, pgpool refuses to run as root: it binds, then becomes postgres.
    echo "user = postgres" >>"$tmp/pgpool/pgbouncer.ini"
    chown -R postgres: "$tmp/pgpool"
  fi
  "$tmp/bin/pgpool" check-config "$tmp/pgpool/pgbouncer.ini"
  "$tmp/bin/pgpool" -q "$tmp/pgpool/pgbouncer.ini" 2>>"$tmp/pgpool/pgpool.log" &  # -q: the logfile only, as pgbouncer -q
  pids+=($!)
  wait_port "$pgpool_port" 30 "$!" "$tmp/pgpool/pgpool.log"
  echo "$("$tmp/bin/pgpool" version) listens on 127.0.0.1:$pgpool_port (pool_size 10, pool_mode = transaction; the default is session, as in PgBouncer)"
}

run_pgpool_workload() {
  say "Running $clients clients for $duration, each doing transactions through the pool of 10 (pgx in its default mode: named prepared statements)"
  "$tmp/bin/pgload" -clients "$clients" -duration "$duration" \
    -dsn "postgres://app:$app_password@127.0.0.1:$pgpool_port/app?sslmode=disable" \
    -admin-dsn "postgres://admin:admin-secret@127.0.0.1:$pgpool_port/pgbouncer?sslmode=disable" \
    -pg-dsn "$pg_dsn"
  local errors
  errors=$(grep -cE '\] (ERROR|FATAL) ' "$tmp/pgpool/pgpool.log" || true)  # PgBouncer's log format
  echo "  pgpool log: $(wc -l <"$tmp/pgpool/pgpool.log") lines, $errors errors"
}

demo_pgpool() {
  start_postgres
  start_pgpool
  run_pgpool_workload
}

# --- kvproxy -------------------------------------------------------------------

kv_shards=4

# start_redis starts redis-server shard$1 on a free port, trying another port if the
# chosen one was taken meanwhile, and sets redis_port and redis_pid.
start_redis() {
  local dir=$tmp/redis/shard$1 attempt deadline
  mkdir -p "$dir"
  for attempt in 1 2 3; do
    redis_port=$(free_port)
    redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
      --dir "$dir" --daemonize no --logfile "$dir/redis.log" &
    redis_pid=$!
    pids+=("$redis_pid")
    # A frozen (SIGSTOP) server ignores SIGTERM until it is resumed.
    cleanups+=("kill -CONT $redis_pid")
    deadline=$((SECONDS + 30))
    while kill -0 "$redis_pid" 2>/dev/null && ((SECONDS < deadline)); do
      if (exec 3<>"/dev/tcp/127.0.0.1/$redis_port") 2>/dev/null; then
        return 0
      fi
      sleep 0.1
    done
    kill -KILL "$redis_pid" 2>/dev/null || true
    echo "demo: redis-server shard$1 did not start on port $redis_port (attempt $attempt):" >&2
    tail -3 "$dir/redis.log" >&2 || true
  done
  return 1
}

start_redises() {
  say "Starting $kv_shards redis-servers in $tmp/redis"
  redis_ports=()
  redis_pids=()
  local i
  for ((i = 1; i <= kv_shards; i++)); do
    start_redis "$i"
    redis_ports+=("$redis_port")
    redis_pids+=("$redis_pid")
    echo "  shard$i: redis-server on 127.0.0.1:$redis_port (pid $redis_pid)"
  done
}

start_kvproxy() {
  say "Starting kvproxy in front of them with a nutcracker.yml"
  kv_port=$(free_port)
  kv_stats_port=$(free_port)
  mkdir -p "$tmp/kvproxy"
  {
    cat <<EOF
demo:
  listen: 127.0.0.1:$kv_port
  hash: fnv1a_64
  hash_tag: "{}"
  distribution: ketama
  timeout: 500
  redis: true
  servers:
EOF
    local i
    for ((i = 1; i <= kv_shards; i++)); do
      echo "   - 127.0.0.1:${redis_ports[i - 1]}:1 shard$i"
    done
  } >"$tmp/kvproxy/nutcracker.yml"
  sed 's/^/  | /' "$tmp/kvproxy/nutcracker.yml"
  "$tmp/bin/kvproxy" check-config "$tmp/kvproxy/nutcracker.yml"
  "$tmp/bin/kvproxy" -c "$tmp/kvproxy/nutcracker.yml" -s "$kv_stats_port" -a 127.0.0.1 \
    2>>"$tmp/kvproxy/kvproxy.log" &
  pids+=($!)
  wait_port "$kv_port" 30 "$!" "$tmp/kvproxy/kvproxy.log"
  wait_port "$kv_stats_port" 30 "$!" "$tmp/kvproxy/kvproxy.log"
  echo "$("$tmp/bin/kvproxy" version) listens on 127.0.0.1:$kv_port, stats on 127.0.0.1:$kv_stats_port"
}

# kv runs redis-cli against kvproxy.
kv() { redis-cli -h 127.0.0.1 -p "$kv_port" "$@"; }

# shard_of prints the number of the shard whose redis-server holds key $1.
shard_of() {
  local i
  for ((i = 1; i <= kv_shards; i++)); do
    if [ "$(redis-cli -h 127.0.0.1 -p "${redis_ports[i - 1]}" EXISTS "$1")" = 1 ]; then
      echo "$i"
      return
    fi
  done
  echo "?"
}

# timed runs kv with its arguments and prints the reply on one line with how long it took.
timed() {
  local start=$EPOCHREALTIME out end
  out=$(kv "$@" 2>&1 | paste -sd ' ' - | tr -s ' ') || true
  end=$EPOCHREALTIME
  printf '  %s  ->  %s  (%d ms)\n' "$*" "${out% }" $(((10#${end//[.,]/} - 10#${start//[.,]/}) / 1000))
}

# The keys set with MSET: spread over the shards by fnv1a_64 and ketama.
kv_keys=(user:alice user:bob user:carol user:dave user:erin user:frank)

run_kv_workload() {
  say "redis-benchmark through kvproxy: 100 clients, pipeline 16, 100000 SETs then GETs on 100000 random keys"
  redis-benchmark -h 127.0.0.1 -p "$kv_port" -c 100 -n 100000 -P 16 -r 100000 -t set,get --csv 2>/dev/null |
    awk -F'"' 'NR > 1 { printf "  %-4s %8.0f requests/s  avg %s ms  p50 %s ms  p99 %s ms  max %s ms\n", $2, $4, $6, $10, $14, $16 }'

  say "MSET and MGET through kvproxy are split per shard and merged in request order"
  local k pairs=() n=0
  for k in "${kv_keys[@]}"; do
    pairs+=("$k" "v$((++n))")
  done
  timed MSET "${pairs[@]}"
  timed MGET "${kv_keys[@]}"
  for k in "${kv_keys[@]}"; do
    printf '    %-11s is on shard%s\n' "$k" "$(shard_of "$k")"
  done
  timed MSET '{user:alice}:name' Alice '{user:alice}:mail' alice@example.com
  echo "    {user:alice}:name is on shard$(shard_of '{user:alice}:name'), {user:alice}:mail on shard$(shard_of '{user:alice}:mail'): with hash_tag \"{}\" only \"user:alice\" is hashed"
}

freeze_shard() {
  local frozen healthy="" k
  frozen=$(shard_of "${kv_keys[0]}")
  for k in "${kv_keys[@]}"; do
    if [ "$(shard_of "$k")" != "$frozen" ]; then
      healthy=$k
      break
    fi
  done
  [ -n "$healthy" ] || { echo "demo: every key is on shard$frozen" >&2; return 1; }
  say "Freezing shard$frozen (kill -STOP ${redis_pids[frozen - 1]}): it accepts connections but never answers; timeout is 500 ms"
  kill -STOP "${redis_pids[frozen - 1]}"
  timed GET "${kv_keys[0]}"
  timed GET "$healthy"
  timed MGET "${kv_keys[@]}"
  timed SET "${kv_keys[0]}" new-value
  echo "  meanwhile 20 clients GET $healthy (shard$(shard_of "$healthy")) 20000 times through kvproxy:"
  redis-benchmark -h 127.0.0.1 -p "$kv_port" -c 20 -n 20000 --csv GET "$healthy" 2>/dev/null |
    awk -F'"' 'NR > 1 { printf "  %8.0f requests/s  avg %s ms  p99 %s ms  max %s ms\n", $4, $6, $14, $16 }'
  say "Resuming shard$frozen (kill -CONT): its keys answer again"
  kill -CONT "${redis_pids[frozen - 1]}"
  timed GET "${kv_keys[0]}"
}

show_kv_stats() {
  say "twemproxy's stats JSON on 127.0.0.1:$kv_stats_port (read with bash /dev/tcp; first 400 bytes)"
  local json errors
  exec 3<>"/dev/tcp/127.0.0.1/$kv_stats_port"
  json=$(cat <&3)
  exec 3<&-
  echo "  ${json:0:400}..."
  say "The same stats summarised (bench/kvbench/kvstats)"
  "$tmp/bin/kvstats" -addr "127.0.0.1:$kv_stats_port" | sed 's/^/  /'
  errors=$(grep -c 'level=ERROR' "$tmp/kvproxy/kvproxy.log" || true)
  echo "  kvproxy log: $(wc -l <"$tmp/kvproxy/kvproxy.log") lines, $errors errors"
}

demo_kvproxy() {
  say "Building kvproxy and the stats reader"
  go build -o "$tmp/bin/kvproxy" ./cmd/kvproxy
  go build -o "$tmp/bin/kvstats" ./bench/kvbench/kvstats
  start_redises
  start_kvproxy
  run_kv_workload
  freeze_shard
  show_kv_stats
}

# --- kvproxy in front of memcached ------------------------------------------------

mc_servers=3

# mc_do sends the text requests $2 (printf format) to 127.0.0.1:$1, then quit, and
# prints every reply line.
mc_do() {
  exec 4<>"/dev/tcp/127.0.0.1/$1"
  printf "$2quit\r\n" >&4
  timeout 5 cat <&4 | tr -d '\r' || true
  exec 4<&-
}

# mc_server_of prints the number of the memcached that holds key $1.
mc_server_of() {
  local i
  for ((i = 1; i <= mc_servers; i++)); do
    if mc_do "${mc_ports[i - 1]}" "get $1\r\n" | grep -q '^VALUE'; then
      echo "$i"
      return
    fi
  done
  echo "?"
}

demo_memcached() {
  say "Starting $mc_servers memcached servers and kvproxy in front of them (no redis: true: a memcached pool)"
  [ -x "$tmp/bin/kvproxy" ] || go build -o "$tmp/bin/kvproxy" ./cmd/kvproxy
  mkdir -p "$tmp/memcached"
  mc_ports=()
  mc_pids=()
  local i user=() port pid
  if [ "$(id -u)" -eq 0 ]; then user=(-u nobody); fi
  for ((i = 1; i <= mc_servers; i++)); do
    port=$(free_port)
    memcached -l 127.0.0.1 -p "$port" -U 0 "${user[@]}" 2>>"$tmp/memcached/mc$i.log" &
    pid=$!
    pids+=("$pid")
    cleanups+=("kill -CONT $pid")
    wait_port "$port" 30 "$pid" "$tmp/memcached/mc$i.log"
    mc_ports+=("$port")
    mc_pids+=("$pid")
    echo "  mc$i: memcached on 127.0.0.1:$port (pid $pid)"
  done
  mc_port=$(free_port)
  {
    cat <<EOF
cache:
  listen: 127.0.0.1:$mc_port
  hash: fnv1a_64
  distribution: ketama
  timeout: 500
  servers:
EOF
    for ((i = 1; i <= mc_servers; i++)); do
      echo "   - 127.0.0.1:${mc_ports[i - 1]}:1 mc$i"
    done
  } >"$tmp/memcached/nutcracker.yml"
  sed 's/^/  | /' "$tmp/memcached/nutcracker.yml"
  "$tmp/bin/kvproxy" check-config "$tmp/memcached/nutcracker.yml"
  "$tmp/bin/kvproxy" -c "$tmp/memcached/nutcracker.yml" -s 0 2>>"$tmp/memcached/kvproxy.log" &
  pids+=($!)
  wait_port "$mc_port" 30 "$!" "$tmp/memcached/kvproxy.log"

  local proto
  for proto in text binary; do
    say "memcslap through kvproxy ($proto protocol): 10 threads get 2000 keys 10 times each"
    memcslap --servers="127.0.0.1:$mc_port" $([ $proto = binary ] && echo --binary || true) \
      --concurrency=10 --execute-number=2000 --test=get 2>&1 |
      grep -E '^Time to (set|get)' | tr -s ' ' | sed 's/^/  /'
  done
  say "memccp a 300 KB file through kvproxy (binary), memccat it back (text)"
  head -c 300000 /dev/urandom >"$tmp/memcached/blob"
  (cd "$tmp/memcached" && memccp --servers="127.0.0.1:$mc_port" --binary blob)
  if memccat --servers="127.0.0.1:$mc_port" blob | head -c 300000 | cmp -s - "$tmp/memcached/blob"; then
    echo "  blob: 300000 bytes back, identical (stored on mc$(mc_server_of blob))"
  else
    echo "demo: memccat returned other bytes" >&2
    return 1
  fi

  local keys=(user:alice user:bob user:carol user:dave user:erin user:frank) k req="" frozen healthy="" start end out
  for k in "${keys[@]}"; do req+="set $k 0 0 ${#k}\r\n$k\r\n"; done
  mc_do "$mc_port" "$req" >/dev/null
  frozen=$(mc_server_of "${keys[0]}")
  for k in "${keys[@]}"; do
    if [ "$(mc_server_of "$k")" != "$frozen" ]; then healthy=$k; break; fi
  done
  [ -n "$healthy" ] || { echo "demo: every key is on mc$frozen" >&2; return 1; }
  say "Freezing mc$frozen (kill -STOP ${mc_pids[frozen - 1]}): it accepts connections but never answers; timeout is 500 ms"
  kill -STOP "${mc_pids[frozen - 1]}"
  for req in "get ${keys[0]}" "get $healthy" "get ${keys[*]}"; do
    start=$EPOCHREALTIME
    out=$(mc_do "$mc_port" "$req\r\n" | paste -sd ' ' -)
    end=$EPOCHREALTIME
    printf '  %s  ->  %s  (%d ms)\n' "$req" "$out" $(((10#${end//[.,]/} - 10#${start//[.,]/}) / 1000))
  done
  echo "  (as in twemproxy, a multi-get touching the frozen server gets one SERVER_ERROR, then the connection closes)"
  kill -CONT "${mc_pids[frozen - 1]}"
  echo "  mc$frozen resumed: get ${keys[0]} -> $(mc_do "$mc_port" "get ${keys[0]}\r\n" | paste -sd ' ' -)"
}

for section in $sections; do
  "demo_$section"
done
say "Done; stopping everything and removing $tmp"
