#!/bin/bash
# BENCHMARKS.md's HTTP section: a million events (1,000 managers) served, then wrk on one
# manager's statement, idle and while more millions are published and served.
#
# usage: crates/premia-bench/scripts/http-statement.sh WORKDIR PREMIA_BINARY [LABEL]
#   e.g. cargo build --release -p premia &&
#        crates/premia-bench/scripts/http-statement.sh /tmp/http-bench target/release/premia
# Needs wrk (apt-get install wrk), curl, python3 and bc; starts its own nats-server on a free
# loopback port. The findings go to WORKDIR/run-LABEL/log.
set -u
B=$1
PREMIA=$(realpath "$2")
LABEL=${3:-run}
SCRIPTS=$(dirname "$(realpath "$0")")
mkdir -p "$B"
[ -s "$B/events1.jsonl" ] || "$PREMIA" generate --events 1000000 --seed 1 --managers 1000 > "$B/events1.jsonl"
W=$B/run-$LABEL
rm -rf "$W"; mkdir -p "$W"
TOKEN=bench-admin-token-$LABEL
HASH=$(printf %s "$TOKEN" | sha256sum | cut -d' ' -f1)
printf '[[http.tokens]]\nsha256 = "%s"\nrole = "admin"\n' "$HASH" > "$W/premia.toml"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
NPORT=$(free_port)
/usr/sbin/nats-server -a 127.0.0.1 -p "$NPORT" -js -sd "$W/nats" > "$W/nats.log" 2>&1 &
NPID=$!
sleep 1
NURL=nats://127.0.0.1:$NPORT
HPORT=$(free_port)
BASE=http://127.0.0.1:$HPORT
AUTH="Authorization: Bearer $TOKEN"
log() { echo "$*" >> "$W/log"; }
metric() { curl -s -H "$AUTH" "$BASE/metrics" | awk -v n="$1" '$1==n {print $2}'; }
seq_now() { curl -s "$BASE/readyz" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("ledger_seq",0))' 2>/dev/null || echo 0; }
rss() { grep -E 'VmRSS|VmHWM' /proc/$SPID/status | tr -s ' \t' ' ' | tr '\n' ' '; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
events() { # $1 tag, $2 rename ids too
  if [ "$2" = yes ]; then
    sed -e "s#\"source\":\"crm/synth\"#\"source\":\"crm/$1\"#; s#\"\(deal_id\|payment_id\|refund_id\)\":\"\([DPR]\)-#\"\1\":\"\2$1-#g" $B/events1.jsonl > $W/ev-$1.jsonl
  else
    sed -e "s#\"source\":\"crm/synth\"#\"source\":\"crm/$1\"#" $B/events1.jsonl > $W/ev-$1.jsonl
  fi
}
start_serve() {
  "$PREMIA" --data-dir "$W/ledger" --config "$W/premia.toml" serve --nats-url "$NURL" --http 127.0.0.1:$HPORT >> "$W/serve.out" 2>> "$W/serve.err" &
  SPID=$!
  for i in $(seq 1 600); do [ "$(curl -s -o /dev/null -w "%{http_code}" $BASE/readyz)" = 200 ] && break; sleep 0.05; done
}
stop_serve() { kill -TERM $SPID; wait $SPID; }
drained() { local last=-1 now p; for i in $(seq 1 900); do now=$(seq_now); p=$(metric premia_consumer_pending); [ "$now" = "$last" ] && [ "$p" = 0 ] && return; last=$now; sleep 1; done; }
wrkrun() { # $1 label, $2 path, [$3 pace ms]
  local R
  if [ -n "${3:-}" ]; then R=$(PACE_MS=$3 wrk -t2 -c8 -d10s --latency -s $SCRIPTS/paced.lua -H "$AUTH" "$BASE$2" 2>&1)
  else R=$(wrk -t2 -c8 -d10s --latency -H "$AUTH" "$BASE$2" 2>&1); fi
  echo "$R" > "$W/wrk-$1.txt"
  log "$1 $2${3:+ paced $3 ms}: p50 $(echo "$R" | awk '$1=="50%"{print $2}') p90 $(echo "$R" | awk '$1=="90%"{print $2}') p99 $(echo "$R" | awk '$1=="99%"{print $2}') max $(echo "$R" | awk '$1=="Latency"{print $4}') | $(echo "$R" | awk '/Requests\/sec/{print $2}') req/s $(echo "$R" | grep -o 'timeout [0-9]*')"
}
log "machine: $(nproc) vCPU $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2); load at start $(load)"

# (1) the first million: published, then taken in by serve --drain --http (feed on)
"$PREMIA" publish "$B/events1.jsonl" --nats-url "$NURL" --format json > /dev/null 2>&1
{ /usr/bin/time -f "(1) serve --drain --http, 1M: wall %e s, max RSS %M KiB" "$PREMIA" --data-dir "$W/ledger" --config "$W/premia.toml" serve --nats-url "$NURL" --http 127.0.0.1:$HPORT --drain --format json; } >> "$W/log" 2>&1

# (2) idle reads
start_serve
log "(2) serve ready at seq $(seq_now): $(rss)"
U1=/v1/managers/M-500/statements/2026-06
U2=/v1/managers/M-500/statements/2027-02
for U in $U1 $U2; do
  curl -s -o "$W/first-$(basename $U).json" -w "(2) first GET $U: %{http_code} %{size_download} B in %{time_total} s\n" -H "$AUTH" "$BASE$U" >> "$W/log"
done
log "(2) after the first GETs: $(rss)"
wrkrun idle-2026-06 $U1
wrkrun idle-2027-02 $U2
wrkrun idle-healthz /healthz
for P in 2026-03 2026-09 2026-11; do
  curl -s -o /dev/null -w "(2) first GET M-500 $P: %{time_total} s\n" -H "$AUTH" "$BASE/v1/managers/M-500/statements/$P" >> "$W/log"
done
log "(2) after three more periods read: $(rss); load $(load)"

# (3) ingest without reads, into the open period 2027-02 held in memory: a third million
# (renamed ids, so applied; dated in closed months, so booked in 2027-02 as adjustments)
events r3 yes
stop_serve
"$PREMIA" publish "$W/ev-r3.jsonl" --nats-url "$NURL" --format json > /dev/null 2>&1
rm -f "$W/ev-r3.jsonl"
T0=$(date +%s.%N)
start_serve
curl -s -o /dev/null -H "$AUTH" "$BASE$U2"
S0=$(seq_now)
drained
T1=$(date +%s.%N); S1=$(seq_now)
log "(3) serve took in a million (renamed ids, into 2027-02, held) from restart to drained: $(echo "$T1 - $T0" | bc) s, seq $S0 -> $S1; $(rss); load $(load)"
curl -s -o "$W/after3-2027-02.json" -w "(3) GET $U2: %{http_code} %{size_download} B in %{time_total} s\n" -H "$AUTH" "$BASE$U2" >> "$W/log"

# (4) reads while ingesting: each wrk run while another million is published and served
ingest_run() { # $1 tag, $2 rename ids, $3 label, $4 path, [$5 pace]
  events $1 $2
  local S0 S1 S2
  S0=$(seq_now)
  "$PREMIA" publish "$W/ev-$1.jsonl" --nats-url "$NURL" --format json > /dev/null 2>&1 &
  local PP=$!
  for i in $(seq 1 300); do [ "$(seq_now)" -gt $((S0 + 20000)) ] && break; sleep 0.1; done
  S1=$(seq_now)
  wrkrun $3 $4 ${5:-}
  S2=$(seq_now)
  log "    ledger seq $S1 -> $S2 during that run (+$((S2 - S1))); $(rss); load $(load)"
  wait $PP
  rm -f "$W/ev-$1.jsonl"
  drained
}
ingest_run s2 no ingest-2026-06 $U1
ingest_run s4 no ingest-healthz /healthz
ingest_run s5 no ingest-2026-06-paced $U1 4
ingest_run r6 yes ingest-2027-02 $U2
curl -s -o "$W/last-2027-02.json" -w "(4) GET $U2 after: %{http_code} %{size_download} B in %{time_total} s\n" -H "$AUTH" "$BASE$U2" >> "$W/log"
log "(4) final seq $(seq_now): $(rss); load $(load)"
stop_serve
kill $NPID; wait $NPID
rm -rf "$W/nats" "$W/ledger"
log done
