#!/usr/bin/env bash
# The figures of issue "Cost as the ledger grows", each taken ROUNDS times in a row on one
# generated stream (BENCHMARKS.md, "Aims at 1,000,000 events"):
#   ingest of 1M events: wall, lines/s, peak RSS
#   statement --period 2026-06 on that ledger: wall, and its share of the same round's ingest
#   replay --period 2026-06 --full: wall, and its rate over the same round's ingest rate
#   premia-bench: serve --drain over a raw consumer, over PostgreSQL, and publish -> feed p99
# Usage: tests/bench/aims.sh [EVENTS] [ROUNDS]     (default 1000000 3; about 10 minutes)
# Needs PostgreSQL at 127.0.0.1:5432 (trust auth) for the baseline, and nats-server.
set -euo pipefail
cd "$(dirname "$0")/../.."
events=${1:-1000000}
rounds=${2:-3}
cargo build --release -q -p premia -p premia-bench
premia=$PWD/target/release/premia
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
$premia generate --events "$events" --seed 1 > "$work/events.jsonl"
sync

# Runs a command under /usr/bin/time; prints "wall_s rss_mib".
measure() {
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" > /dev/null 2> "$work/stderr" || { cat "$work/stderr" >&2; exit 1; }
  awk '{ printf "%s %.0f\n", $1, $2 / 1024 }' "$work/time"
}

echo "| round | ingest wall s | lines/s | ingest RSS MiB | statement s | statement / ingest | full replay s | replay rate / ingest rate |"
echo "|---|---|---|---|---|---|---|---|"
for round in $(seq 1 "$rounds"); do
  rm -rf "$work/ledger"
  read -r iw ir < <(measure "$premia" --data-dir "$work/ledger" ingest "$work/events.jsonl" --format json)
  read -r sw _ < <(measure "$premia" --data-dir "$work/ledger" statement --period 2026-06 --format json)
  # The first replay after an ingest builds the replay index, a cost paid once (docs/REPLAY.md).
  measure "$premia" --data-dir "$work/ledger" replay --period 2026-06 --format json > /dev/null
  read -r rw _ < <(measure "$premia" --data-dir "$work/ledger" replay --period 2026-06 --full --format json)
  awk -v r="$round" -v n="$events" -v iw="$iw" -v ir="$ir" -v sw="$sw" -v rw="$rw" 'BEGIN {
    printf "| %d | %.2f | %.0f | %d | %.2f | 1/%.0f | %.2f | %.1fx |\n", r, iw, n / iw, ir, sw, iw / sw, rw, iw / rw }'
done

echo
echo "| round | serve/raw | serve/postgres | serve msg/s | raw msg/s | feed p50 ms | feed p99 ms |"
echo "|---|---|---|---|---|---|---|"
for round in $(seq 1 "$rounds"); do
  target/release/premia-bench --events "$events" > "$work/bench.json" 2> "$work/bench.log" || { cat "$work/bench.log" >&2; exit 1; }
  python3 - "$round" "$work/bench.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[2]))
over_c = r["b_over_c"]
print("| %s | %.2f | %s | %.0f | %.0f | %.1f | %.1f |" % (
    sys.argv[1], r["b_over_a"], "-" if over_c is None else "%.1fx" % over_c,
    r["b_serve"]["per_second"], r["a_raw_consumer"]["per_second"],
    r["latency"]["p50_ms"], r["latency"]["p99_ms"]))
EOF
done
