#!/usr/bin/env bash
# make bench: builds jwtd and the floor server, drives both with wrk on
# loopback in the same run, and prints requests/s, p50/p99 latency and the
# ratio to the floor for each endpoint. Every wrk run stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-5s}
CONNS=${CONNS:-32}
THREADS=${THREADS:-2}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT

CGO_ENABLED=0 go build -o "$work/jwtd" ./cmd/jwtd
go build -o "$work/floor" ./bench/floor
key=a9ddbcaba8c0ac1a0a812dc0c2f08514b23f2db0a68343cb8199ebb38a6d91e4ebfb378e22ad39c2d01d0b4ec9c34aa91056862ddace3fbbd6852ee60c36acbf
cat > "$work/jwtd.yaml" <<YAML
listen: 127.0.0.1:18080
data_dir: $work/data
log_level: warn
ratelimit: {per_ip: "100000000 per second", per_phone: "100000000 per second", routes: {verify: [ip]}}  # checked, never binding
keys:
  - {kid: cl1, alg: HS512, secret: "$key", encoding: raw}
profiles:
  castlabs: {key: cl1}
YAML
"$work/floor" --listen 127.0.0.1:18081 & 
"$work/jwtd" serve --config "$work/jwtd.yaml" 2>"$work/jwtd.log" &
for _ in $(seq 100); do
  curl -sf http://127.0.0.1:18080/healthz >/dev/null && curl -sf http://127.0.0.1:18081/ >/dev/null && break
  sleep 0.1
done

tok=$(curl -sf -X POST -H 'Content-Type: application/json' -d '{"user_data":"bench"}' http://127.0.0.1:18080/generateToken | sed 's/.*"JWT Token":"\([^"]*\)".*/\1/')
cat > "$work/generate.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"user_data":"this is test"}'
LUA
cat > "$work/verify.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"Token":"$tok","Signing_key":"$key"}'
LUA
cat > "$work/phone.lua" <<'LUA'
-- A new transaction per request, as App Verify clients make them.
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", string.format("/v1/token/+14155552671/bench-%d-%d", math.random(1e9), n))
end
LUA

# name|url|script
runs=(
  "floor (bare net/http)|http://127.0.0.1:18081/|"
  "GET /healthz|http://127.0.0.1:18080/healthz|"
  "GET /.well-known/jwks.json|http://127.0.0.1:18080/.well-known/jwks.json|"
  "POST /verifyToken (HS512)|http://127.0.0.1:18080/verifyToken|$work/verify.lua"
  "POST /generateToken (HS512, recorded)|http://127.0.0.1:18080/generateToken|$work/generate.lua"
  "GET /v1/token/{phone}/{xid} (HS256, recorded)|http://127.0.0.1:18080/v1/token|$work/phone.lua"
)
# wrk prints latency in us/ms/s; normalise to ms.
to_ms() { awk -v v="$1" 'BEGIN { u=v; sub(/[0-9.]+/, "", u); n=v+0; if (u=="us") n/=1000; else if (u=="s") n*=1000; printf "%.2f", n }'; }
printf '| endpoint | requests/s | p50 ms | p99 ms | vs floor |\n|---|---|---|---|---|\n'
floor=""
for r in "${runs[@]}"; do
  IFS='|' read -r name url script <<<"$r"
  args=(-t"$THREADS" -c"$CONNS" -d"$DURATION" --latency)
  [ -n "$script" ] && args+=(-s "$script")
  out=$(wrk "${args[@]}" "$url")
  rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
  p50=$(to_ms "$(awk '$1=="50%" {print $2}' <<<"$out")")
  p99=$(to_ms "$(awk '$1=="99%" {print $2}' <<<"$out")")
  errs=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
  [ -z "$floor" ] && floor=$rps
  ratio=$(awk -v a="$rps" -v b="$floor" 'BEGIN { printf "%.2f", a/b }')
  printf '| %s | %.0f | %s | %s | %s |%s\n' "$name" "$rps" "$p50" "$p99" "$ratio" "${errs:+ ($errs non-2xx)}"
done
