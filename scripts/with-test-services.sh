#!/usr/bin/env bash
# Runs a command with the real servers the tests need, started on
# free loopback ports with temporary data directories and stopped afterwards,
# also when the command fails:
#   - FerretDB v1.24.0 on SQLite (a MongoDB wire-protocol server), built from
#     tools/ferretdb through the Go module proxy;
#   - Redis, from Debian's redis-server package (installed if missing, with
#     redis-sentinel and redis-tools' redis-cli, which the failover tests
#     use to start Sentinel sets and Clusters of their own).
# The command sees JWTD_TEST_MONGO_URL, JWTD_TEST_REDIS_URL, the binaries
# (for tests that stop and start servers of their own) and
# JWTD_TEST_REQUIRE_SERVICES=1.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/ensure-packages.sh" redis-server redis-sentinel redis-tools

mkdir -p "$root/bin"
# make build's settings, as the Makefile's ferretdb target: a cache hit.
(cd "$root/tools/ferretdb" && CGO_ENABLED=0 go build -trimpath -tags ferretdb_no_postgresql -o "$root/bin/ferretdb" .)

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "$2 did not start on port $1" >&2
  return 1
}

mongo_port=$(free_port)
"$root/bin/ferretdb" --listen "127.0.0.1:$mongo_port" --dir "$work/ferretdb" 2>"$work/ferretdb.log" &
pids+=($!)
redis_bin=$(command -v redis-server || echo /usr/bin/redis-server)
redis_port=$(free_port)
"$redis_bin" --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" >"$work/redis.log" 2>&1 &
pids+=($!)
wait_port "$mongo_port" FerretDB || { cat "$work/ferretdb.log" >&2; exit 1; }
wait_port "$redis_port" Redis || { cat "$work/redis.log" >&2; exit 1; }

export JWTD_TEST_MONGO_URL="mongodb://127.0.0.1:$mongo_port"
export JWTD_TEST_REDIS_URL="redis://127.0.0.1:$redis_port/0"
export JWTD_TEST_FERRETDB_BIN="$root/bin/ferretdb"
export JWTD_TEST_REDIS_BIN="$redis_bin"
export JWTD_TEST_REDIS_SENTINEL_BIN=$(command -v redis-sentinel || echo /usr/bin/redis-sentinel)
export JWTD_TEST_REDIS_CLI_BIN=$(command -v redis-cli || echo /usr/bin/redis-cli)
export JWTD_TEST_REQUIRE_SERVICES=1
echo "test services: FerretDB $JWTD_TEST_MONGO_URL, Redis $JWTD_TEST_REDIS_URL" >&2
set +e
"$@"
status=$?
set -e
exit $status
