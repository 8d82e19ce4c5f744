#!/usr/bin/env bash
# The dashboard benchmarks (issue 4; figures in docs/benchmarks.md). Builds the release, then:
#   1. first-load bytes: the wasm, JS and CSS after `brotli -q 11`;
#   2. the overview with 2,000 seeded services, cold loads in headless Chromium;
#   3. SSR of the overview against a trivial axum handler, with wrk;
#   4. a result finishing → shown on an open service page, while 5,000 checks/s run;
#   5. a public status page (HTML, its JSON summary, a badge) against /healthz, with wrk;
#   6. results per second with 1, 2 and 3 replicas sharing one PostgreSQL on this machine;
#   7. an agent's overhead per 1,000 checks, against the server checking the same probes itself.
# Needs what `.ci/dev test` installs, plus wrk and brotli (Debian packages of those names).
# Usage: end2end/bench/run.sh [bytes|load|ssr|live|status|replicas|agents]…   (default: all seven)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:${XDG_CACHE_HOME:-$HOME/.cache}/triage/binaryen-132.0.0/node_modules/binaryen/bin:$PATH"
for tool in wrk brotli bc node cargo-leptos wasm-opt; do
  command -v "$tool" >/dev/null || { echo "missing $tool (wrk, brotli: apt-get install -y wrk brotli; wasm-opt: .ci/dev run; the rest: .ci/dev test)" >&2; exit 1; }
done
want=${*:-bytes load ssr live status replicas agents}
work=$(mktemp -d /tmp/triage-bench-XXXXXX)
chmod 755 "$work"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
bin=target/release/triage
site=target/site
wait_up() { for _ in $(seq 120); do curl -sf "$1" >/dev/null && return 0; sleep 0.5; done; echo "not up: $1" >&2; exit 1; }
# Every page needs a signed-in user: one viewer per data directory, signed in for a session cookie.
bench_password='bench viewer password'
add_viewer() { echo "$bench_password" | "$bin" --data-dir "$1" --log-level warn user add --email bench@example.com --role viewer >/dev/null; }
# A seeded instance with the bench viewer, serving the release site: seeded NAME SERVICES PORT.
seeded() {
  mkdir -p "$work/$1"
  "$bin" --data-dir "$work/$1" --log-level warn seed --services "$2"
  add_viewer "$work/$1"
  "$bin" --data-dir "$work/$1" --log-level warn serve --addr "127.0.0.1:$3" --site-root "$site" --self-watch false &
  pids+=($!)
  wait_up "http://127.0.0.1:$3/healthz"
}
session() {
  curl -s -i -X POST "$1/api/v1/auth/login" -H 'content-type: application/json' \
    -d "{\"email\":\"bench@example.com\",\"password\":\"$bench_password\"}" |
    awk -F'[=;]' 'tolower($1) == "set-cookie: triage_session" { print $2 }'
}

echo "== release build (LEPTOS_HASH_FILES=true cargo leptos build --release --split --precompress)"
LEPTOS_HASH_FILES=true cargo leptos build --release --split --precompress 2>&1 | tail -n 2
cp target/release/hash.txt "$site/hash.txt"

if [[ $want == *bytes* ]]; then
  echo; echo "== first-load bytes on the wire (release, Chromium; what the server sends for the overview)"
  # The files themselves: raw, and the precompressed copies the build wrote.
  for f in "$site"/pkg/triage.*wasm "$site"/pkg/triage.*js "$site"/pkg/__wasm_split.*js "$site"/pkg/triage.*css; do
    [[ -f $f.br ]] || { echo "no precompressed copy of $f: build with --precompress" >&2; exit 1; }
    printf '%-44s %9d raw %9d .br %9d .gz\n' "$(basename "$f")" "$(stat -c %s "$f")" "$(stat -c %s "$f.br")" "$(stat -c %s "$f.gz")"
  done
  seeded bytes 20 3960
  (cd end2end && TRIAGE_COOKIE=$(session http://127.0.0.1:3960) node bench/first-load.js http://127.0.0.1:3960/)
  echo "(target: the first load's wasm, JS and CSS ≤ 200 KB on the wire)"
fi

if [[ $want == *load* || $want == *ssr* ]]; then
  echo; echo "== 2,000 services seeded (an hour of results every 30 s, rolled up)"
  seeded big 2000 3961
fi

if [[ $want == *load* ]]; then
  echo; echo "== overview cold load, 2,000 services, headless Chromium (fresh context per load)"
  (cd end2end && TRIAGE_COOKIE=$(session http://127.0.0.1:3961) node bench/overview-load.js http://127.0.0.1:3961/ 7 100)
fi

if [[ $want == *ssr* ]]; then
  echo; echo "== SSR of the overview (wrk, 2 threads, 32 connections, 10 s each, same machine)"
  for n in 1 20; do
    seeded "small-$n" "$n" "397$n"
  done
  "$bin" trivial-http --addr 127.0.0.1:3963 &
  pids+=($!)
  wait_up http://127.0.0.1:3963/
  rate() { wrk -t2 -c32 -d10s ${2:+-H "Cookie: triage_session=$2"} "$1" | awk '/Requests\/sec/ { print $2 }'; }
  rate http://127.0.0.1:3963/ >/dev/null # warm-up
  trivial=$(rate http://127.0.0.1:3963/)
  healthz=$(rate http://127.0.0.1:39720/healthz)
  one=$(rate http://127.0.0.1:3971/ "$(session http://127.0.0.1:3971)")
  small=$(rate http://127.0.0.1:39720/ "$(session http://127.0.0.1:39720)")
  big=$(wrk -t2 -c8 -d10s -H "Cookie: triage_session=$(session http://127.0.0.1:3961)" http://127.0.0.1:3961/ | awk '/Requests\/sec/ { print $2 }')
  printf 'trivial axum handler (GET / → "ok")              %10.0f req/s\n' "$trivial"
  printf "Triage /healthz (full middleware stack)          %10.0f req/s  (%.2f of trivial)\n" "$healthz" "$(echo "$healthz / $trivial" | bc -l)"
  printf "Triage overview SSR, 1 service                   %10.0f req/s  (%.2f of trivial; target ≥ 10,000)\n" "$one" "$(echo "$one / $trivial" | bc -l)"
  printf "Triage overview SSR, 20 services                 %10.0f req/s  (%.2f of trivial)\n" "$small" "$(echo "$small / $trivial" | bc -l)"
  printf "Triage overview SSR, 2,000 services (8 conns)    %10.0f req/s  (%.4f of trivial)\n" "$big" "$(echo "$big / $trivial" | bc -l)"
fi

if [[ $want == *live* ]]; then
  echo; echo "== result → service page while 5,000 checks/s run (10,000 probes every 2 s on the demo target)"
  "$bin" demo-target --addr 127.0.0.1:3964 --control-addr 127.0.0.1:3965 &
  pids+=($!)
  wait_up http://127.0.0.1:3964/healthz
  python3 - "$work/load.toml" <<'PY'
import sys
shop = "http://127.0.0.1:3964"
out = ['[[service]]\nname = "shop"\n', '[[service]]\nname = "load"\n']
for name, kind, path in [("shop-api", "http", "/api/products"), ("shop-ready", "readiness", "/readyz"), ("shop-pool", "metrics", "/metrics")]:
    out.append(f'[[probe]]\nname = "{name}"\nservice = "shop"\nkind = "{kind}"\nurl = "{shop}{path}"\ninterval_secs = 1\ntimeout_ms = 800\n')
for i in range(10_000):
    out.append(f'[[probe]]\nname = "load-{i}"\nservice = "load"\nkind = "http"\nurl = "{shop}/healthz"\ninterval_secs = 2\ntimeout_ms = 1000\n')
open(sys.argv[1], "w").write("\n".join(out))
PY
  mkdir -p "$work/live"
  add_viewer "$work/live"
  "$bin" --data-dir "$work/live" --log-level warn serve --addr 127.0.0.1:3966 --site-root "$site" --self-watch false \
    --config "$work/load.toml" --probe-allow 127.0.0.0/8 --probe-concurrency 512 &
  pids+=($!)
  wait_up http://127.0.0.1:3966/healthz
  checks() { curl -s http://127.0.0.1:3966/metrics | awk '/^triage_probe_results_written_total/ { print $2 }'; }
  sleep 10 # one interval to spread the probes over their phases
  before=$(checks); t0=$(date +%s.%N)
  (cd end2end && TRIAGE_COOKIE=$(session http://127.0.0.1:3966) node bench/live-latency.js http://127.0.0.1:3966 shop 60)
  after=$(checks); t1=$(date +%s.%N)
  printf 'results written meanwhile: %.0f per second\n' "$(echo "($after - $before) / ($t1 - $t0)" | bc -l)"
fi

if [[ $want == *status* ]]; then
  echo; echo "== public status page, 20 services in 4 groups (wrk, 2 threads, 64 connections, 10 s each)"
  mkdir -p "$work/status"
  "$bin" --data-dir "$work/status" --log-level warn seed --services 20
  token=$("$bin" --data-dir "$work/status" --log-level warn token create --scope admin --name bench)
  "$bin" --data-dir "$work/status" --log-level warn serve --addr 127.0.0.1:3967 --site-root "$site" --self-watch false &
  pids+=($!)
  wait_up http://127.0.0.1:3967/healthz
  ids=$(curl -sf -H "Authorization: Bearer $token" http://127.0.0.1:3967/api/v1/services |
    python3 -c 'import json, sys; print(" ".join(s["id"] for s in json.load(sys.stdin)))')
  page=$(python3 - $ids <<'PY'
import json, sys
ids = sys.argv[1:]
groups = [{"name": f"Group {g}", "services": ids[g::4]} for g in range(4)]
print(json.dumps({"slug": "bench", "title": "Bench status", "description": "20 services", "groups": groups}))
PY
)
  curl -sf -X POST -H "Authorization: Bearer $token" -H 'content-type: application/json' \
    http://127.0.0.1:3967/api/v1/status-pages -d "$page" >/dev/null
  first=${ids%% *}
  # A rate of errors (a page not published, a wrong id) would read as a fast page: refused.
  srate() {
    local out
    out=$(wrk -t2 -c64 -d10s "$1")
    if grep -q 'Non-2xx' <<<"$out"; then echo "error answers from $1:" >&2; echo "$out" >&2; exit 1; fi
    awk '/Requests\/sec/ { print $2 }' <<<"$out"
  }
  srate http://127.0.0.1:3967/s/bench >/dev/null # warm-up: the first build and the connection pool
  healthz=$(srate http://127.0.0.1:3967/healthz)
  html=$(srate http://127.0.0.1:3967/s/bench)
  json=$(srate http://127.0.0.1:3967/s/bench/summary.json)
  badge=$(srate "http://127.0.0.1:3967/badge/services/$first/uptime.svg?window=30d")
  bytes=$(curl -s http://127.0.0.1:3967/s/bench | wc -c)
  printf 'Triage /healthz (the baseline, same run)         %10.0f req/s\n' "$healthz"
  printf 'status page HTML (%6d bytes)                  %10.0f req/s  (%.2f of /healthz; target ≥ 10,000)\n' "$bytes" "$html" "$(echo "$html / $healthz" | bc -l)"
  printf 'status page summary.json                         %10.0f req/s  (%.2f of /healthz)\n' "$json" "$(echo "$json / $healthz" | bc -l)"
  printf 'uptime badge (30 d)                              %10.0f req/s  (%.2f of /healthz)\n' "$badge" "$(echo "$badge / $healthz" | bc -l)"
fi

if [[ $want == *replicas* ]]; then
  fleet=${FLEET_PROBES:-20000}
  echo; echo "== results per second with 1, 2 and 3 replicas on one PostgreSQL ($fleet probes every 2 s)"
  # Demand (10,000 checks/s) is above what this 2-core machine completes, so each run shows how
  # many results the replica set gets written; every replica, the database and the target share
  # the same two cores, so more replicas add coordination, not capacity, here.
  "$bin" demo-target --addr 127.0.0.1:3974 --control-addr 127.0.0.1:3975 &
  pids+=($!)
  wait_up http://127.0.0.1:3974/healthz
  python3 - "$work/fleet.toml" "$fleet" <<'PY'
import sys
out = ['[[service]]\nname = "fleet"\n']
for i in range(int(sys.argv[2])):
    out.append(f'[[probe]]\nname = "fleet-{i}"\nservice = "fleet"\nkind = "http"\nurl = "http://127.0.0.1:3974/healthz"\ninterval_secs = 2\ntimeout_ms = 1500\n')
open(sys.argv[1], "w").write("\n".join(out))
PY
  for n in 1 2 3; do
    dir="$work/replicas-$n"
    mkdir -p "$dir"
    token=$("$bin" --data-dir "$dir" --log-level warn token create --scope admin --name bench)
    run=()
    "$bin" --data-dir "$dir" --log-level warn serve --addr 127.0.0.1:3980 --site-root "$site" --self-watch false \
      --config "$work/fleet.toml" --probe-allow 127.0.0.0/8 &
    run+=($!); pids+=($!)
    wait_up http://127.0.0.1:3980/healthz
    for i in $(seq 2 "$n"); do
      DATABASE_URL="postgres://triage@localhost/triage?host=$dir/run" "$bin" --log-level warn serve \
        --addr "127.0.0.1:$((3979 + i))" --site-root "$site" --self-watch false --probe-allow 127.0.0.0/8 &
      run+=($!); pids+=($!)
      wait_up "http://127.0.0.1:$((3979 + i))/healthz"
    done
    # Until every replica is alive and the probes are shared out.
    for _ in $(seq 60); do
      settled=$(curl -sf -H "Authorization: Bearer $token" http://127.0.0.1:3980/api/v1/replicas | python3 -c '
import json, sys
alive = [r for r in json.load(sys.stdin) if r["alive"]]
print(len(alive) == int(sys.argv[1]) and sum(r["probes_owned"] for r in alive) == int(sys.argv[2]))' "$n" "$fleet")
      [[ $settled == True ]] && break
      sleep 1
    done
    [[ $settled == True ]] || { echo "the replica set did not settle" >&2; exit 1; }
    sleep 10 # past the hand-overs, probes spread over their phases
    written() {
      total=0
      for i in $(seq 1 "$n"); do
        w=$(curl -s "http://127.0.0.1:$((3979 + i))/metrics" | awk '/^triage_probe_results_written_total/ { print $2 }')
        total=$(echo "$total + ${w:-0}" | bc)
      done
      echo "$total"
    }
    cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
    # PostgreSQL: the postmaster of this data directory and its backends (new ones come and go,
    # so both ends count the processes alive then; a backend's own time is what it used).
    pg_cpu() {
      local pm t=0
      pm=$(head -1 "$dir/pg/postmaster.pid")
      for p in "$pm" $(ps -o pid= --ppid "$pm"); do t=$((t + $(cpu "$p"))); done
      echo "$t"
    }
    before=$(written); t0=$(date +%s.%N)
    c0=0; for p in "${run[@]}"; do c0=$((c0 + $(cpu "$p"))); done
    g0=$(pg_cpu)
    sleep 30
    after=$(written); t1=$(date +%s.%N)
    c1=0; for p in "${run[@]}"; do c1=$((c1 + $(cpu "$p"))); done
    g1=$(pg_cpu)
    hz=$(getconf CLK_TCK)
    printf '%d replica(s): %.0f results written per second (of %d due); Triage used %.2f cores, PostgreSQL %.2f\n' "$n" \
      "$(echo "($after - $before) / ($t1 - $t0)" | bc -l)" "$((fleet / 2))" \
      "$(echo "($c1 - $c0) / $hz / ($t1 - $t0)" | bc -l)" "$(echo "($g1 - $g0) / $hz / ($t1 - $t0)" | bc -l)"
    for p in "${run[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${run[@]}"; do wait "$p" 2>/dev/null || true; done
  done
fi

if [[ $want == *agents* ]]; then
  n=${AGENT_PROBES:-2000}
  echo; echo "== an agent's overhead per 1,000 checks ($n HTTP probes every 2 s: $((n / 2)) checks/s)"
  # The same probes twice: checked by the server itself ("local"), then only by an agent on
  # this machine ("bench"), whose results the server judges by quorum in PostgreSQL.
  "$bin" demo-target --addr 127.0.0.1:3976 --control-addr 127.0.0.1:3977 &
  pids+=($!)
  wait_up http://127.0.0.1:3976/healthz
  for mode in local bench; do
    python3 - "$work/$mode.toml" "$n" "$mode" <<'PY'
import sys
out = ['[[service]]\nname = "fleet"\n']
for i in range(int(sys.argv[2])):
    out.append(f'[[probe]]\nname = "fleet-{i}"\nservice = "fleet"\nkind = "http"\nurl = "http://127.0.0.1:3976/healthz"\n'
               f'interval_secs = 2\ntimeout_ms = 1500\nlocations = ["{sys.argv[3]}"]\n')
open(sys.argv[1], "w").write("\n".join(out))
PY
    dir="$work/agents-$mode"
    mkdir -p "$dir"
    run=()
    "$bin" --data-dir "$dir" --log-level warn serve --addr 127.0.0.1:3985 --site-root "$site" --self-watch false \
      --config "$work/$mode.toml" --probe-allow 127.0.0.0/8 &
    server=$!; pids+=($!)
    wait_up http://127.0.0.1:3985/healthz
    agent=""
    if [[ $mode == bench ]]; then
      token=$("$bin" --data-dir "$dir" --log-level warn token create --scope agent --name bench)
      TRIAGE_TOKEN=$token "$bin" --log-level warn agent --server http://127.0.0.1:3985 --location bench \
        --probe-allow 127.0.0.0/8 --spool-dir "$dir/spool" &
      agent=$!; pids+=($!)
    fi
    db="postgres://triage@localhost/triage?host=$dir/run"
    stored() { psql "$db" -Atc "select count(*) from results where coalesce(location, 'local') = '$mode'"; }
    cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
    pg_cpu() {
      local pm t=0
      pm=$(head -1 "$dir/pg/postmaster.pid")
      for p in "$pm" $(ps -o pid= --ppid "$pm"); do t=$((t + $(cpu "$p"))); done
      echo "$t"
    }
    sleep 15 # assignments delivered, probes spread over their phases
    r0=$(stored); t0=$(date +%s.%N); s0=$(cpu "$server"); a0=$( [[ -n $agent ]] && cpu "$agent" || echo 0 ); g0=$(pg_cpu)
    sleep 30
    r1=$(stored); t1=$(date +%s.%N); s1=$(cpu "$server"); a1=$( [[ -n $agent ]] && cpu "$agent" || echo 0 ); g1=$(pg_cpu)
    hz=$(getconf CLK_TCK)
    checks=$((r1 - r0))
    per() { echo "($1) * 1000 / $hz * 1000 / $checks" | bc -l; }
    printf '%-5s %6.0f results/s stored; CPU per 1,000 checks: Triage server %6.1f ms, agent %6.1f ms, PostgreSQL %6.1f ms\n' \
      "$mode" "$(echo "$checks / ($t1 - $t0)" | bc -l)" "$(per "$s1 - $s0")" "$(per "$a1 - $a0")" "$(per "$g1 - $g0")"
    [[ -n $agent ]] && { kill "$agent" 2>/dev/null || true; wait "$agent" 2>/dev/null || true; }
    kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true
  done
fi
