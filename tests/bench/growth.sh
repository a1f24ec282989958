#!/usr/bin/env bash
# How cost grows with history (issue "Cost as the ledger grows", BENCHMARKS.md): for each size,
# generate N events, ingest them, open the ledger for one statement, replay one period in full, and
# serve --drain them from a scratch nats-server; print wall time, cost per event and peak RSS.
# Usage: tests/bench/growth.sh [SIZE ...]   (default: 100000 1000000 10000000)
# Needs nats-server on the PATH or in /usr/sbin, and about 12 GiB of disk at 10M events.
set -euo pipefail
cd "$(dirname "$0")/../.."
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(100000 1000000 10000000)
nats_server=$(command -v nats-server || echo /usr/sbin/nats-server)
# PREMIA_BIN runs another build (a quick check of this script with the debug one, say).
if [ -z "${PREMIA_BIN:-}" ]; then cargo build --release -q -p premia; fi
premia=${PREMIA_BIN:-$PWD/target/release/premia}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT

# Runs a command under /usr/bin/time; prints "wall_s rss_mib".
measure() {
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" > /dev/null 2> "$work/stderr" || { cat "$work/stderr" >&2; exit 1; }
  awk '{ printf "%s %.0f\n", $1, $2 / 1024 }' "$work/time"
}
row() { # step size wall rss
  awk -v s="$1" -v n="$2" -v w="$3" -v r="$4" 'BEGIN { printf "%-10s %10d %9.2f %12.2f %9d\n", s, n, w, w * 1e6 / n, r }'
}

printf "%-10s %10s %9s %12s %9s\n" step events wall_s us_per_event rss_mib
for n in "${sizes[@]}"; do
  dir="$work/$n"; mkdir -p "$dir"
  # The same shape at every size: about a year of 3000 events a day per million events.
  per_day=$(( n / 333 > 300 ? n / 333 : 300 ))
  read -r w r < <(measure sh -c "$premia generate --events $n --seed 1 --events-per-day $per_day > $dir/events.jsonl")
  row generate "$n" "$w" "$r"
  sync
  read -r w r < <(measure "$premia" --data-dir "$dir/ledger" ingest "$dir/events.jsonl" --format json)
  row ingest "$n" "$w" "$r"
  # A period from the middle of the stream: the month of its middle line.
  period=$(sed -n "$(( n / 2 ))"'{s/.*"time": *"\([0-9]\{4\}-[0-9]\{2\}\).*/\1/p;q}' "$dir/events.jsonl")
  read -r w r < <(measure "$premia" --data-dir "$dir/ledger" statement --period "$period" --format json)
  row statement "$n" "$w" "$r"
  # The first replay after an ingest builds the replay index (docs/REPLAY.md): a cost of its own.
  read -r w r < <(measure "$premia" --data-dir "$dir/ledger" replay --period "$period" --format json)
  row index "$n" "$w" "$r"
  read -r w r < <(measure "$premia" --data-dir "$dir/ledger" replay --period "$period" --full --format json)
  row replay "$n" "$w" "$r"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "$nats_server" -a 127.0.0.1 -p "$port" -js -sd "$dir/nats" > /dev/null 2>&1 &
  nats=$!
  sleep 1
  "$premia" publish "$dir/events.jsonl" --nats-url "nats://127.0.0.1:$port" --format json > /dev/null
  read -r w r < <(measure "$premia" --data-dir "$dir/served" serve --drain --no-feed --http off --nats-url "nats://127.0.0.1:$port")
  row serve "$n" "$w" "$r"
  kill "$nats"; wait "$nats" 2>/dev/null || true
  rm -rf "$dir"
done
