#!/usr/bin/env bash
# Durable ingest throughput and peak memory on generated events (BENCHMARKS.md).
# Usage: tests/bench/ingest.sh [EVENTS] [BATCH_LINES]
set -euo pipefail
cd "$(dirname "$0")/../.."
events=${1:-1000000}
batch=${2:-8192}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cargo build --release -q -p premia
premia=target/release/premia
$premia generate --events "$events" --seed 1 > "$work/events.jsonl"
sync  # let the input reach the disk first, so its writeback does not compete with our flushes
echo "input: $events lines, $(du -h "$work/events.jsonl" | cut -f1)"

# Peak RSS and wall time of the whole command, snapshot included.
/usr/bin/time -f "wall %e s, peak rss %M KiB" \
  $premia --data-dir "$work/data" ingest "$work/events.jsonl" --batch-lines "$batch" --format json 2> "$work/time" > "$work/counts"
cat "$work/counts"
cat "$work/time"
wall=$(sed -n 's/^wall \([0-9.]*\) s.*/\1/p' "$work/time")
echo "throughput: $(awk -v n="$events" -v t="$wall" 'BEGIN { printf "%.0f", n / t }') lines/s"
du -sh "$work/data/sled" "$work/data/snapshot.bin"

# Opening the ledger again (snapshot load) and a statement.
/usr/bin/time -f "statement: wall %e s, peak rss %M KiB" \
  $premia --data-dir "$work/data" statement --period 2026-03 --format json > /dev/null
# Folding the whole log from nothing.
/usr/bin/time -f "rebuild: wall %e s, peak rss %M KiB" \
  $premia --data-dir "$work/data" rebuild --format json
