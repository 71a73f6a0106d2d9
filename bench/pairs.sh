#!/bin/bash
# pairs.sh -- servers measured in alternation, pinned, side by side: the way
# to compare two kv-wal builds (or kv-wal and Redis) on a noisy machine,
# where one configuration's throughput moves by 2x between minutes.
#
#   bench/pairs.sh [options] SERVER...
#     SERVER     a kv-wal build (path to a .wasm, optionally followed by
#                paste-host run options after commas: kv-wal.wasm,--busy-poll,0),
#                redis (no persistence) or redis-aof (appendfsync always, on tmpfs)
#     -r N       rounds (default 3); each round runs every SERVER once, in order
#     -n N       SETs measured per run (default 200000), after a warm-up of -w N (default 50000)
#     -e ENGINE  kv-wal's --port-engine (default auto)
#     -d DIR     where pools and AOF files go (default /dev/shm: kv-wal pmem);
#                a directory on a disk makes kv-wal run msync and Redis's AOF fsync to that disk
#     -- ARGS    redis-benchmark's client options (default: -c 50 -P 16)
#
# Each run starts a fresh server on core 1 (pmem pool on /dev/shm for
# kv-wal), warms it up, then runs redis-benchmark -t set -d 1024 on core 0
# and prints SET/s, p50 and the server's CPU per SET (user + system time of
# all its threads, /proc/PID/stat). Needs redis-server, redis-tools, taskset.
set -euo pipefail
rounds=3 n=200000 warm=50000 engine=auto base=/dev/shm
while getopts "r:n:w:e:d:" o; do
  case $o in r) rounds=$OPTARG ;; n) n=$OPTARG ;; w) warm=$OPTARG ;; e) engine=$OPTARG ;; d) base=$OPTARG ;; *) exit 2 ;; esac
done
shift $((OPTIND - 1))
servers=() client=()
for a in "$@"; do
  if [ "$a" = "--" ]; then client=(); seen=1; continue; fi
  if [ "${seen:-}" ]; then client+=("$a"); else servers+=("$a"); fi
done
[ ${#client[@]} -gt 0 ] || client=(-c 50 -P 16)
[ ${#servers[@]} -gt 0 ] || { sed -n '2,21p' "$0"; exit 2; }
root=$(cd "$(dirname "$0")/.." && pwd)
tick=$(getconf CLK_TCK)
dir=$(mktemp -d "$base/paste-pairs-XXXXXX")
persist=msync
[ "$(stat -f -c %T "$dir")" = tmpfs ] && persist=pmem
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$dir"' EXIT

cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
bench() { taskset -c 0 redis-benchmark -p "$port" -t set -d 1024 "${client[@]}" -n "$1" -q 2>/dev/null | tr '\r' '\n' | grep 'requests per second' | tail -1; }

start() {
  port=$((20000 + RANDOM % 20000))
  case $1 in
    redis|redis-aof)
      local aof=(--appendonly no)
      [ "$1" = redis-aof ] && aof=(--appendonly yes --appendfsync always)
      taskset -c 1 redis-server --port "$port" --bind 127.0.0.1 --save "" --dir "$dir" "${aof[@]}" > "$dir/server.log" 2>&1 &
      pid=$! ;;
    *)
      rm -rf "$dir"/pairs.pool*
      local spec extra
      IFS=, read -r -a spec <<< "$1"
      extra=("${spec[@]:1}")
      taskset -c 1 node "$root/dist/host/cli.js" run --pool "$dir/pairs.pool" --create-size 256M --handler "${spec[0]}" \
        --listen "tcp://127.0.0.1:$port" --admin off --persist "$persist" --port-engine "$engine" "${extra[@]}" > "$dir/server.log" 2>&1 &
      pid=$! ;;
  esac
  for _ in $(seq 100); do
    redis-cli -p "$port" ping > /dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "pairs.sh: $1 did not start:" >&2; cat "$dir/server.log" >&2; exit 1
}

echo "redis-benchmark -t set -d 1024 ${client[*]} -n $n, after $warm to warm up; server on core 1, client on core 0; kv-wal $persist in $base"
for r in $(seq "$rounds"); do
  for s in "${servers[@]}"; do
    start "$s"
    [ "$warm" -gt 0 ] && bench "$warm" > /dev/null
    t0=$(cpu "$pid")
    out=$(bench "$n")
    t1=$(cpu "$pid")
    kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
    rm -rf "$dir"/appendonly* "$dir"/*.aof
    printf 'round %s  %-40s %s  cpu %s us/SET\n' "$r" "$s" "${out#SET: }" "$(echo "scale=2; ($t1 - $t0) * 1000000 / $tick / $n" | bc)"
  done
done
