#!/usr/bin/env bash
# Incident creations per second over HTTP: the release binary against PostgreSQL and RabbitMQ on
# this machine, the outbox relay publishing with confirms, wrk as the load. Figures go to
# bench-results/incident-create.md. Not a test: nothing here passes or fails on a number.
# PostgreSQL is on the loopback, so its connection goes without TLS (sslmode=disable), as a
# sidecar or a socket connection would in a deployment.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/services.sh
if ! command -v wrk >/dev/null; then
  apt-get update -qq && apt-get install -y -qq wrk
fi
cargo build --release -p meridian
bin="${CARGO_TARGET_DIR:-target}/release/meridian"
out=bench-results; mkdir -p "$out"
work=$(mktemp -d); trap 'kill "${pid:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT
db=meridian_bench
psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
export MERIDIAN__DATABASE__URL="postgres://postgres@127.0.0.1:5432/$db?sslmode=disable"
export MERIDIAN__DATABASE__POOL_SIZE=8
export MERIDIAN__AUTH__MODE=dev MERIDIAN__AUTH__SECRET=bench-secret-bench-secret-bench-secret-01
export MERIDIAN__BUS__EXCHANGE=bench.events MERIDIAN__BUS__DEAD_LETTER_EXCHANGE=bench.dead
export MERIDIAN__BUS__QUEUE_PREFIX=bench. MERIDIAN__TELEMETRY__LOG_LEVEL=warn
export MERIDIAN__HTTP__BIND=127.0.0.1:0
"$bin" serve --service resolution --migrate > "$work/server.out" 2> "$work/server.err" &
pid=$!
for _ in $(seq 1 100); do grep -q "listening on" "$work/server.out" 2>/dev/null && break; sleep 0.1; done
address=$(sed -n 's/.*listening on http:\/\///p' "$work/server.out")
TOKEN=$("$bin" token --sub bench --roles agent --data "$work") && export TOKEN
cat > "$work/post.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
wrk.body = '{"title":"Bench incident","impact":"medium","urgency":"high","service":"email","configuration_items":["web-01"]}'
LUA
duration=${BENCH_SECONDS:-30}
wrk -t2 -c32 -d5s -s "$work/post.lua" "http://$address/v1/incidents" > /dev/null   # warm-up
wrk -t2 -c32 -d"${duration}s" --latency -s "$work/post.lua" "http://$address/v1/incidents" > "$work/wrk.txt"
rss_now=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
rss_peak=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
start=$(date +%s.%N)
for _ in $(seq 1 600); do
  left=$(psql -h 127.0.0.1 -U postgres -d $db -Atc 'select count(*) from outbox')
  [ "$left" = 0 ] && break; sleep 0.1
done
drain=$(echo "$(date +%s.%N) - $start" | bc)
rps=$(awk '/Requests\/sec/ {print $2}' "$work/wrk.txt")
p50=$(awk '$1 == "50%" {print $2}' "$work/wrk.txt")
p99=$(awk '$1 == "99%" {print $2}' "$work/wrk.txt")
errors=$(grep -E "Non-2xx|Socket errors" "$work/wrk.txt" || echo "none")
incidents=$(psql -h 127.0.0.1 -U postgres -d $db -Atc 'select count(*) from incidents')
{
  echo "# Incident creation benchmark ($(date -u +%Y-%m-%dT%H:%MZ))"
  echo
  echo "POST /v1/incidents over HTTP, wrk 2 threads × 32 connections for ${duration} s, release build,"
  echo "PostgreSQL and RabbitMQ on the same $(nproc)-core machine, outbox relay publishing with confirms."
  echo
  echo "| figure | value |"
  echo "|---|---|"
  echo "| creations per second | $rps |"
  echo "| latency p50 | $p50 |"
  echo "| latency p99 | $p99 |"
  echo "| errors | $errors |"
  echo "| resident memory after the run (VmRSS) | $((rss_now / 1024)) MiB |"
  echo "| peak resident memory (VmHWM) | $((rss_peak / 1024)) MiB |"
  echo "| outbox drained after the load stopped | ${drain} s (backlog then 0: $left left) |"
  echo "| incidents stored | $incidents |"
  echo
  echo '```'
  cat "$work/wrk.txt"
  echo '```'
} > "$out/incident-create.md"
cat "$out/incident-create.md"
kill $pid; wait $pid 2>/dev/null || true
psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"

# The workflow interpreter in memory on one core, and the state one instance keeps.
cargo bench -p meridian-workflow --bench interpreter -- "$PWD/$out/workflow-interpreter.md"

# The same work on SpiffWorkflow (from PyPI), appended to the interpreter's figures.
venv="$work/spiff"
python3 -m venv "$venv" && "$venv/bin/pip" install -q "SpiffWorkflow==3.2.0"
spiff=$("$venv/bin/python" scripts/compare/spiff_cab.py 10)
{
  echo
  echo "## The same work on SpiffWorkflow 3.2.0 (scripts/compare: cab.bpmn, spiff_cab.py)"
  echo
  echo "Every member votes (SpiffWorkflow cannot state a two-of-three quorum), so compare with the"
  echo "three-vote line above. State: SpiffWorkflow's own JSON serializer, after the assessment."
  echo
  echo '```'
  echo "$spiff"
  echo '```'
} >> "$out/workflow-interpreter.md"

# CMDB impact analysis on PostgreSQL over 100,000 CIs and 300,000 relations.
imp=meridian_bench_impact
psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $imp WITH (FORCE)" -c "CREATE DATABASE $imp"
cargo bench -p meridian-control --bench impact -- \
  "postgres://postgres@127.0.0.1:5432/$imp?sslmode=disable" "$PWD/$out/cmdb-impact.md"
psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $imp WITH (FORCE)"

# The durable workflow engine on PostgreSQL, every step committed.
wf=meridian_bench_workflow
psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $wf WITH (FORCE)" -c "CREATE DATABASE $wf"
cargo bench -p meridian-workflow --bench durable -- \
  "postgres://postgres@127.0.0.1:5432/$wf?sslmode=disable" "$PWD/$out/workflow-durable.md"
psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $wf WITH (FORCE)"

# One million open SLA clocks on PostgreSQL: finding and raising the breaches due at one second.
sl=meridian_bench_sla
psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $sl WITH (FORCE)" -c "CREATE DATABASE $sl"
cargo bench -p meridian-service-level --bench clocks -- \
  "postgres://postgres@127.0.0.1:5432/$sl?sslmode=disable" "$PWD/$out/sla-clocks.md"
psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $sl WITH (FORCE)"

