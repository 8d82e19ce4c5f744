#!/usr/bin/env bash
# Triage beside its peers, in one run on this machine, all traffic on loopback:
#   1. checks per second on one core: blackbox_exporter (Debian's 0.23, driven by wrk) and
#      Triage's prober (results persisted), against the same nginx target;
#   2. Uptime Kuma (npm, its SQLite default) and Triage, each with the same 1,000 HTTP monitors
#      every 60 s against that target, one after the other: CPU and memory at steady state, the
#      dashboard's cold load in the same Chromium, and bytes per stored check.
# It prints one table: each figure, each peer, the ratio.
#
# Installs what it lacks (Debian packages; Uptime Kuma from npm into ~/.cache/triage/peers),
# builds target/release/triage and the release site if they are missing or older than the
# sources, and stops and removes everything it started.
# Usage: end2end/bench/peers.sh     (about 13 minutes once installed and built)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
here=$root/end2end/bench/peers
step() { printf '\n== %s (%ss)\n' "$*" "$SECONDS"; }

# Uptime Kuma: npm carries a single version, 2.0.0-dev.0 (a development snapshot of 2023), with
# its front end built in. Its native SQLite binding builds from source (the prebuilt download is
# on GitHub, which this machine cannot reach).
kuma_version=2.0.0-dev.0
cache=${XDG_CACHE_HOME:-$HOME/.cache}/triage/peers
kuma_modules=$cache/kuma-$kuma_version/node_modules
kuma=$kuma_modules/uptime-kuma
tport=3990 bport=3991 kport=3992 triage_port=3993
n=1000 steady=120

missing=()
for p in prometheus-blackbox-exporter:/usr/bin/prometheus-blackbox-exporter nginx-light:/usr/sbin/nginx \
         sqlite3:/usr/bin/sqlite3 wrk:/usr/bin/wrk chromium:/usr/bin/chromium bc:/usr/bin/bc; do
  [[ -x ${p#*:} ]] || missing+=("${p%%:*}")
done
if ((${#missing[@]})); then
  step "Installing ${missing[*]}"
  apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
fi
if [[ ! -f $kuma/server/server.js ]]; then
  step "Installing Uptime Kuma $kuma_version from npm"
  mkdir -p "$cache/kuma-$kuma_version"
  echo '{"name":"triage-peers","private":true}' > "$cache/kuma-$kuma_version/package.json"
  (cd "$cache/kuma-$kuma_version" &&
    JOBS=1 npm_config_nodedir=/usr npm install --foreground-scripts --no-audit --no-fund --loglevel=error \
      "uptime-kuma@$kuma_version" >/dev/null)
fi
# The package ships seven migration files in db/ that its migrator reads from db/old_migrations/.
cp -n "$kuma"/db/patch-*.sql "$kuma/db/old_migrations/" 2>/dev/null || true
[[ -d end2end/node_modules ]] || (cd end2end && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
if [[ ! -x target/release/triage ]] || [[ -n $(find server/src app/src migrations -newer target/release/triage -print -quit) ]]; then
  step "Building target/release/triage"
  cargo build --release -p server --bin triage 2>&1 | tail -n 1
fi
if [[ ! -f target/release/hash.txt ]] || [[ -n $(find app/src style -newer target/release/hash.txt -print -quit) ]]; then
  step "Building the release site"
  LEPTOS_HASH_FILES=true cargo leptos build --release --split --precompress 2>&1 | tail -n 1
fi
cp target/release/hash.txt target/site/hash.txt
bin=$root/target/release/triage
measured_from=$SECONDS

work=$(mktemp -d /tmp/triage-peers-XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do while kill -0 "$p" 2>/dev/null; do sleep 0.2; done; done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM
wait_up() { for _ in $(seq 240); do curl -sf -o /dev/null "$1" && return 0; sleep 0.5; done; echo "not up: $1" >&2; exit 1; }

# CPU seconds of a process and its descendants (exited children included once reaped).
tree() { echo "$1"; for c in $(pgrep -P "$1"); do tree "$c"; done; }
cpu_ticks() {
  local sum=0 p
  for p in $(tree "$1"); do
    sum=$((sum + $(awk '{ print $14 + $15 + $16 + $17 }' "/proc/$p/stat" 2>/dev/null || echo 0)))
  done
  echo "$sum"
}
# Resident memory in kB: the process's RSS, and the proportional share of its descendants'.
rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
children_pss_kb() {
  local sum=0 p
  for p in $(tree "$1" | tail -n +2); do
    sum=$((sum + $(awk '/^Pss:/ { print $2 }' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)))
  done
  echo "$sum"
}
# Samples CPU and memory of PID's tree for $steady seconds: "cpu% rss_kb children_pss_kb".
steady_state() {
  local hz c0 c1 rss=0 pss=0 k=0
  hz=$(getconf CLK_TCK)
  c0=$(cpu_ticks "$1")
  for ((i = 0; i < steady; i += 10)); do
    sleep 10
    rss=$((rss + $(rss_kb "$1"))); pss=$((pss + $(children_pss_kb "$1"))); k=$((k + 1))
  done
  c1=$(cpu_ticks "$1")
  echo "$(echo "scale=1; 100 * ($c1 - $c0) / $hz / $steady" | bc) $((rss / k)) $((pss / k))"
}

step "The target: nginx on core 0, answering 200 \"ok\""
cat > "$work/nginx.conf" <<EOF
daemon off; worker_processes 1; pid $work/nginx.pid; error_log $work/nginx.err warn;
events { worker_connections 8192; }
http { access_log off; server { listen 127.0.0.1:$tport; location / { return 200 "ok\n"; } } }
EOF
taskset -c 0 nginx -c "$work/nginx.conf" -p "$work/" &
pids+=($!)
wait_up "http://127.0.0.1:$tport/"
target="http://127.0.0.1:$tport/"

step "Checks per second on one core (core 1), 15 s each"
cat > "$work/blackbox.yml" <<'EOF'
modules:
  http_2xx:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
EOF
taskset -c 1 /usr/bin/prometheus-blackbox-exporter --config.file="$work/blackbox.yml" \
  --web.listen-address="127.0.0.1:$bport" --log.level=warn &
bbe=$!
pids+=($bbe)
wait_up "http://127.0.0.1:$bport/"
probe_url="http://127.0.0.1:$bport/probe?target=$target&module=http_2xx"
curl -s "$probe_url" | grep -q '^probe_success 1' || { echo "blackbox_exporter cannot probe the target" >&2; exit 1; }
bbe_out=$(taskset -c 0 wrk -t1 -c32 -d15s -s "$here/blackbox-check.lua" "$probe_url")
bbe_rate=$(sed -n 's/.*ok_per_s=\([0-9.]*\).*/\1/p' <<<"$bbe_out")
echo "blackbox_exporter: $(grep probe_ok <<<"$bbe_out")"
kill "$bbe"
# Triage's prober and writer on core 1; its PostgreSQL on core 0 with the target.
triage_probe_out=$(taskset -c 0 "$bin" --log-level warn bench probes --target "$target" --prober-core 1 \
  --probes 20000 --interval 1s --duration 15s)
triage_rate=$(sed -n 's/.*checks started *\([0-9.]*\)\/s.*/\1/p' <<<"$triage_probe_out")
echo "Triage: $(grep 'checks started' <<<"$triage_probe_out")"

step "Uptime Kuma $kuma_version: $n HTTP monitors every 60 s"
mkdir -p "$work/kuma"
# SQLite (no "choose a database" page: db-config.json; the client key makes its SQL dialect
# SQLite's), and no update check (a request to its website at start-up).
echo '{"type":"sqlite","client":"sqlite3"}' > "$work/kuma/db-config.json"
cp "$kuma/db/kuma.db" "$work/kuma/kuma.db"
sqlite3 "$work/kuma/kuma.db" "insert into setting (key, value, type) values ('checkUpdate', 'false', 'general')"
(cd "$kuma" && UPTIME_KUMA_HOST=127.0.0.1 UPTIME_KUMA_PORT=$kport DATA_DIR=$work/kuma/ NODE_ENV=production \
  exec node server/server.js > "$work/kuma.log" 2>&1) &
kuma_pid=$!
pids+=($kuma_pid)
wait_up "http://127.0.0.1:$kport/api/entry-page"
# The subshell execs node: its pid is Kuma's.
export NODE_PATH=$kuma_modules
t0=$SECONDS
node "$here/kuma-import.js" "http://127.0.0.1:$kport" admin 'Bench12345x' "$n" "$target" 60 20
echo "imported in $((SECONDS - t0)) s; a minute for every monitor to check once"
sleep 60
read -r kuma_cpu kuma_rss _ <<<"$(steady_state "$kuma_pid")"
sqlite3 "$work/kuma/kuma.db" "pragma wal_checkpoint(truncate)" >/dev/null
kuma_beats=$(sqlite3 "$work/kuma/kuma.db" "select count(*) from heartbeat")
kuma_bytes=$(sqlite3 "$work/kuma/kuma.db" "select sum(pgsize) from dbstat where name in
  ('heartbeat', 'monitor_id', 'important', 'monitor_time_index', 'monitor_important_time_index')")
kuma_per_beat=$((kuma_bytes / kuma_beats))
echo "CPU ${kuma_cpu} % of a core, RSS $((kuma_rss / 1024)) MB; $kuma_beats heartbeats, $kuma_per_beat B each with indexes"
kuma_loads=$(node "$here/kuma-coldload.js" "http://127.0.0.1:$kport" admin 'Bench12345x' "$n" 3)
echo "$kuma_loads"
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
kuma_listed=$(sed -n 's/.*"listed_ms":\([0-9]*\).*/\1/p' <<<"$kuma_loads" | median)
kuma_beating=$(sed -n 's/.*"with_heartbeats_ms":\([0-9]*\).*/\1/p' <<<"$kuma_loads" | median)
kill "$kuma_pid"
while kill -0 "$kuma_pid" 2>/dev/null; do sleep 0.2; done
unset NODE_PATH

step "Triage: the same $n monitors (one service each) every 60 s"
mkdir -p "$work/triage"
for ((i = 1; i <= n; i++)); do
  name=$(printf 'm%04d' "$i")
  printf '[[service]]\nname = "%s"\n\n[[probe]]\nname = "%s"\nservice = "%s"\nkind = "http"\nurl = "%s?m=%d"\ninterval_secs = 60\n\n' \
    "$name" "$name" "$name" "$target" "$i"
done > "$work/triage/probes.toml"
echo 'bench viewer password' | "$bin" --data-dir "$work/triage" --log-level warn user add --email bench@example.com --role viewer >/dev/null
"$bin" --data-dir "$work/triage" --log-level warn serve --addr "127.0.0.1:$triage_port" --site-root target/site \
  --config "$work/triage/probes.toml" --probe-allow 127.0.0.1/32 --self-watch false &
triage_pid=$!
pids+=($triage_pid)
wait_up "http://127.0.0.1:$triage_port/readyz"
echo "a minute for every probe to check once"
sleep 60
read -r triage_cpu triage_rss triage_pg_pss <<<"$(steady_state "$triage_pid")"
sql() { psql -h "$work/triage/run" -U triage -d triage -At -c "$1"; }
read -r triage_results triage_row_bytes < <(sql "select count(*), (select sum(pg_total_relation_size(inhrelid))
  from pg_inherits where inhparent = 'results'::regclass) + pg_total_relation_size('rollups_minute') from results" | tr '|' ' ')
triage_per_row=$((triage_row_bytes / triage_results))
echo "CPU ${triage_cpu} % of a core (Triage and PostgreSQL), Triage RSS $((triage_rss / 1024)) MB, PostgreSQL PSS $((triage_pg_pss / 1024)) MB"
echo "$triage_results results, $triage_per_row B each as rows with their minute rollups (the first two hours)"
cookie=$(curl -s -i -X POST "http://127.0.0.1:$triage_port/api/v1/auth/login" -H 'content-type: application/json' \
  -d '{"email":"bench@example.com","password":"bench viewer password"}' |
  awk -F'[=;]' 'tolower($1) == "set-cookie: triage_session" { print $2 }')
triage_loads=$(cd end2end && TRIAGE_COOKIE=$cookie node bench/overview-load.js "http://127.0.0.1:$triage_port/" 3 100)
echo "$triage_loads"
triage_listed=$(sed -n 's/^run [0-9]*: .* in \([0-9]*\) ms.*/\1/p' <<<"$triage_loads" | median)
kill "$triage_pid"
while kill -0 "$triage_pid" 2>/dev/null; do sleep 0.2; done

step "Triage's bytes per check once compacted (triage bench storage)"
storage_out=$("$bin" --log-level warn bench storage)
triage_compacted=$(sed -n 's/.*= \([0-9.]*\) B per result.*/\1/p' <<<"$storage_out")
grep -E '^a day of|compacted results' <<<"$storage_out"

ratio() { printf '%.1f' "$(echo "scale=3; $1 / $2" | bc)"; }
step "Peers, measured in this run (the ratio: how many times better Triage does)"
printf '| %-66s | %14s | %14s | %8s |\n' figure Triage peer ratio
printf '|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..68})" "$(printf -- '-%.0s' {1..16})" "$(printf -- '-%.0s' {1..16})" "$(printf -- '-%.0s' {1..10})"
row() { printf '| %-66s | %14s | %14s | %7s× |\n' "$1" "$2" "$3" "$4"; }
row "checks/s on one core (blackbox_exporter 0.23)" "$triage_rate" "$bbe_rate" "$(ratio "$triage_rate" "$bbe_rate")"
row "CPU, $n monitors every 60 s, % of one core (Uptime Kuma)" "$triage_cpu" "$kuma_cpu" "$(ratio "$kuma_cpu" "$triage_cpu")"
row "memory MB: Triage RSS + PostgreSQL PSS (Uptime Kuma RSS)" "$(((triage_rss + triage_pg_pss) / 1024))" "$((kuma_rss / 1024))" \
  "$(ratio "$kuma_rss" "$((triage_rss + triage_pg_pss))")"
row "dashboard cold load, every monitor's state shown, ms" "$triage_listed" "$kuma_listed" "$(ratio "$kuma_listed" "$triage_listed")"
row "  (Uptime Kuma: until every row has a heartbeat), ms" "$triage_listed" "$kuma_beating" "$(ratio "$kuma_beating" "$triage_listed")"
row "bytes per stored check, with indexes (Triage: compacted, rollups in)" "$triage_compacted" "$kuma_per_beat" "$(ratio "$kuma_per_beat" "$triage_compacted")"
row "  Triage's first two hours: rows and minute rollups" "$triage_per_row" "$kuma_per_beat" "$(ratio "$kuma_per_beat" "$triage_per_row")"
echo
echo "Measured in $((SECONDS - measured_from)) s (installs and builds before that: ${measured_from} s)."
echo "Uptime Kuma is npm's only version, $kuma_version, a 2023 development snapshot, with two set-up fixes"
echo "(its migration files copied where its migrator looks, and db-config.json's client key)."
