#!/usr/bin/env bash
# The cost of the committed head (docs/OPERATIONS.md, BENCHMARKS.md): durable ingest and
# `serve --drain` of the same generated events by two premia binaries, alternately, three runs
# each; then the time of `premia verify` (a private copy of the store, a fold of the whole log)
# with the second binary.
# Usage: tests/bench/head-cost.sh BEFORE_BINARY AFTER_BINARY [EVENTS]
# Starts its own nats-server on a free loopback port; needs /usr/bin/time and python3.
set -euo pipefail
before=$(realpath "$1")
after=$(realpath "$2")
events=${3:-1000000}
work=$(mktemp -d)
trap 'kill $npid 2>/dev/null || true; rm -rf "$work"' EXIT

"$after" generate --events "$events" --seed 1 > "$work/events.jsonl"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
/usr/sbin/nats-server -a 127.0.0.1 -p "$port" -js -sd "$work/nats" > "$work/nats.log" 2>&1 &
npid=$!
sleep 1
url=nats://127.0.0.1:$port
"$after" publish "$work/events.jsonl" --nats-url "$url" > /dev/null
sync

for run in 1 2 3; do
  for which in before after; do
    bin=$before; [ "$which" = after ] && bin=$after
    dir="$work/$which-$run"
    /usr/bin/time -f "%e %M" -o "$work/t" "$bin" --data-dir "$dir-ingest" ingest "$work/events.jsonl" > /dev/null
    read -r wall rss < "$work/t"
    echo "ingest $which run $run: ${wall} s, $(awk -v n="$events" -v t="$wall" 'BEGIN { printf "%.0f", n / t }') lines/s, peak $((rss / 1024)) MiB"
    /usr/bin/time -f "%e %M" -o "$work/t" "$bin" --data-dir "$dir-serve" serve --drain --no-feed --http off \
      --nats-url "$url" --consumer "$which-$run" > /dev/null
    read -r wall rss < "$work/t"
    echo "serve  $which run $run: ${wall} s, $(awk -v n="$events" -v t="$wall" 'BEGIN { printf "%.0f", n / t }') msg/s, peak $((rss / 1024)) MiB"
    rm -rf "$dir-serve"
    [ "$which" = before ] && rm -rf "$dir-ingest"
  done
done
du -sh "$work/after-3-ingest/sled"
for run in 1 2 3; do
  /usr/bin/time -f "%e %M" -o "$work/t" "$after" --data-dir "$work/after-3-ingest" verify > /dev/null
  read -r wall rss < "$work/t"
  echo "verify run $run: ${wall} s, peak $((rss / 1024)) MiB"
done
/usr/bin/time -f "%e %M" -o "$work/t" "$after" --data-dir "$work/after-3-ingest" backup --to "$work/backup" > /dev/null
read -r wall rss < "$work/t"
echo "backup of that ledger: ${wall} s, peak $((rss / 1024)) MiB, $(du -sh "$work/backup" | cut -f1)"
