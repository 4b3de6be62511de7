#!/usr/bin/env bash
# make bench: builds jwtd and the floor server, drives both with wrk on
# loopback in the same run, and prints requests/s, p50/p99 latency and the
# ratios to the floor for each endpoint. Then it fills a store with a million
# records and measures the phone route and jwtd's memory on it. Every wrk run
# stops by itself.
#
#   DURATION=5s CONNS=64 THREADS=2   wrk settings
#   JWTD_BIN=path                    measure this jwtd binary instead of building one
#   FILL=1000000                     records for the full-store run (0 skips it)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-5s}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
FILL=${FILL:-1000000}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT

jwtd=${JWTD_BIN:-$work/jwtd}
[ -n "${JWTD_BIN:-}" ] || CGO_ENABLED=0 go build -o "$jwtd" ./cmd/jwtd
go build -o "$work/floor" ./bench/floor
go build -o "$work/fill" ./bench/fill
key=a9ddbcaba8c0ac1a0a812dc0c2f08514b23f2db0a68343cb8199ebb38a6d91e4ebfb378e22ad39c2d01d0b4ec9c34aa91056862ddace3fbbd6852ee60c36acbf
apikey=bench-api-key-0123456789
apihash=$(printf %s "$apikey" | sha256sum | cut -d' ' -f1)
# Limits checked on every minting and verifying request, never binding.
cat > "$work/jwtd.yaml" <<YAML
listen: 127.0.0.1:18080
data_dir: $work/data
log_level: warn
ratelimit: {per_ip: "100000000 per second", per_phone: "100000000 per second", per_ip_verify: "100000000 per second"}
keys:
  - {kid: cl1, alg: HS512, secret: "$key", encoding: raw}
profiles:
  castlabs: {key: cl1}
api_keys:
  - {name: bench, sha256: "$apihash", scopes: [admin, issue, introspect]}
YAML

jwtd_pid=
start_jwtd() {
  "$jwtd" serve --config "$work/jwtd.yaml" 2>>"$work/jwtd.log" &
  jwtd_pid=$!
  for _ in $(seq 200); do
    curl -sf http://127.0.0.1:18080/healthz >/dev/null && return 0
    sleep 0.1
  done
  echo "jwtd did not start:" >&2; cat "$work/jwtd.log" >&2; exit 1
}
stop_jwtd() { kill "$jwtd_pid"; wait "$jwtd_pid" 2>/dev/null || true; }

"$work/floor" --listen 127.0.0.1:18081 &
start_jwtd
for _ in $(seq 100); do curl -sf http://127.0.0.1:18081/ >/dev/null && break; sleep 0.1; done

auth="Authorization: Bearer $apikey"
cl_tok=$(curl -sf -X POST -H 'Content-Type: application/json' -d '{"user_data":"bench"}' http://127.0.0.1:18080/generateToken | sed 's/.*"JWT Token":"\([^"]*\)".*/\1/')
av_tok=$(curl -sf http://127.0.0.1:18080/v1/token/+14155552671/bench-introspect)
es_tok=$(curl -sf -X POST -H "$auth" -H 'Content-Type: application/json' -d '{"sub":"bench"}' http://127.0.0.1:18080/v1/tokens | sed 's/.*"token":"\([^"]*\)".*/\1/')

post_lua() { # file content-type body [auth]
  {
    echo 'wrk.method = "POST"'
    echo "wrk.headers[\"Content-Type\"] = \"$2\""
    [ -n "${4:-}" ] && echo "wrk.headers[\"Authorization\"] = \"Bearer $4\""
    echo "wrk.body = '$3'"
  } >"$work/$1.lua"
}
post_lua generate application/json '{"user_data":"this is test"}'
post_lua verify application/json "{\"Token\":\"$cl_tok\",\"Signing_key\":\"$key\"}"
# The same claims signed with a key jwtd never had: a caller's own key,
# which needs no record read (jwtd's key above reads the token's record).
fkey=0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0
fsig=$(printf %s "${cl_tok%.*}" | openssl dgst -sha512 -hmac "$fkey" -binary | base64 -w0 | tr '+/' '-_' | tr -d '=')
post_lua verify-foreign application/json "{\"Token\":\"${cl_tok%.*}.$fsig\",\"Signing_key\":\"$fkey\"}"
for body in "{\"Token\":\"$cl_tok\",\"Signing_key\":\"$key\"}" "{\"Token\":\"${cl_tok%.*}.$fsig\",\"Signing_key\":\"$fkey\"}"; do
  curl -sf -H 'Content-Type: application/json' -d "$body" http://127.0.0.1:18080/verifyToken | grep -q '"Signature Verification":true' ||
    { echo "bench: /verifyToken did not verify its token: $body" >&2; exit 1; }
done
post_lua introspect-hs application/x-www-form-urlencoded "token=$av_tok" "$apikey"
post_lua introspect-es application/x-www-form-urlencoded "token=$es_tok" "$apikey"
post_lua issue-es application/json '{"sub":"bench"}' "$apikey"
cat > "$work/phone.lua" <<'LUA'
-- A new transaction per request for one of 1,000 phones, as App Verify
-- clients make them.
local n = 0
request = function()
  n = n + 1
  local phone = string.format("+1415555%04d", 2000 + math.random(0, 999))
  return wrk.format("GET", string.format("/v1/token/%s/bench-%d-%d", phone, math.random(1e9), n))
end
LUA

# wrk prints latency in us/ms/s; normalise to ms.
to_ms() { awk -v v="$1" 'BEGIN { u=v; sub(/[0-9.]+/, "", u); n=v+0; if (u=="us") n/=1000; else if (u=="s") n*=1000; printf "%.2f", n }'; }
floor_rps="" floor_p99=""
measure() { # name url [script]
  local args=(-t"$THREADS" -c"$CONNS" -d"$DURATION" --latency) out rps p50 p99 errs
  [ -n "${3:-}" ] && args+=(-s "$3")
  out=$(wrk "${args[@]}" "$2")
  rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
  p50=$(to_ms "$(awk '$1=="50%" {print $2}' <<<"$out")")
  p99=$(to_ms "$(awk '$1=="99%" {print $2}' <<<"$out")")
  errs=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
  [ -z "$floor_rps" ] && floor_rps=$rps floor_p99=$p99
  printf '| %s | %.0f | %s | %s | %s | %s |%s\n' "$1" "$rps" "$p50" "$p99" \
    "$(awk -v a="$rps" -v b="$floor_rps" 'BEGIN { printf "%.2f", a/b }')" \
    "$(awk -v a="$p99" -v b="$floor_p99" 'BEGIN { printf "%.1f", a/b }')" "${errs:+ ($errs non-2xx)}"
  last_rps=$rps
}

echo "wrk -t$THREADS -c$CONNS -d$DURATION on $(nproc) CPUs, $(date -u +%F)"
printf '| endpoint | requests/s | p50 ms | p99 ms | rate vs floor | p99 vs floor |\n|---|---|---|---|---|---|\n'
j=http://127.0.0.1:18080
measure "floor (bare net/http)" http://127.0.0.1:18081/
measure "GET /healthz" $j/healthz
measure "GET /.well-known/jwks.json" $j/.well-known/jwks.json
measure "POST /verifyToken (HS512, jwtd's key: record read)" $j/verifyToken "$work/verify.lua"
measure "POST /verifyToken (HS512, a key not jwtd's)" $j/verifyToken "$work/verify-foreign.lua"
measure "POST /generateToken (HS512, recorded)" $j/generateToken "$work/generate.lua"
measure "GET /v1/token/{phone}/{xid} (HS256, recorded)" $j/v1/token "$work/phone.lua"
empty_phone_rps=$last_rps
measure "POST /v1/introspect (HS256)" $j/v1/introspect "$work/introspect-hs.lua"
measure "POST /v1/introspect (ES256)" $j/v1/introspect "$work/introspect-es.lua"
measure "POST /v1/tokens (ES256, recorded)" $j/v1/tokens "$work/issue-es.lua"

[ "$FILL" -gt 0 ] || exit 0
stop_jwtd
"$work/fill" --db "$work/data/jwtd.db" --n "$FILL" >/dev/null
start_jwtd
echo
echo "After $FILL more records in the store ($(du -sh "$work/data" | cut -f1) on disk):"
printf '| endpoint | requests/s | p50 ms | p99 ms | rate vs floor | p99 vs floor |\n|---|---|---|---|---|---|\n'
measure "GET /v1/token/{phone}/{xid} (HS256, recorded)" $j/v1/token "$work/phone.lua"
rss=$(awk '/^VmRSS/ {printf "%.0f", $2/1024}' "/proc/$jwtd_pid/status")
awk -v a="$last_rps" -v b="$empty_phone_rps" -v m="$rss" \
  'BEGIN { printf "phone route on the full store: %.2f of its rate on the empty one; jwtd resident memory %d MB\n", a/b, m }'
