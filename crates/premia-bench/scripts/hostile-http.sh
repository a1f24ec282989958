#!/bin/bash
# docs/HTTP.md "Hostile clients": N connections (15,000) that each send half a request line and
# then nothing, held HOLD seconds (65) after the last one is opened, against premia serve --http
# with an empty ledger. Prints serve's resident memory before, at its peak (VmHWM) and after the
# connections are gone; how many of them serve still held after HOLD seconds (as the client sees
# it, and as ss counts serve's established sockets); and /healthz's latency, measured once a
# second with curl while they are open.
#
# usage: crates/premia-bench/scripts/hostile-http.sh PREMIA_BINARY [LABEL]
#   e.g. cargo build -p premia && crates/premia-bench/scripts/hostile-http.sh target/debug/premia
# Environment: CONNECTIONS (15000), HOLD (65 s), AFTER (15 s: how long after the client closed
# its sockets the last RSS is read), ROUNDS (1: the whole experiment again on the same serve,
# to see whether the memory kept after a round is used again by the next), HTTP_LIMITS (lines for the config file's [http] section,
# e.g. $'max_connections = 1000000\nheader_timeout_secs = 100000' to put the limits out of
# reach). Needs nats-server (/usr/sbin or the PATH), curl, ss and python3; raises its open-file
# limit to the hard one (15,000 connections need more than 15,000 descriptors on the client
# side, and as many on serve's without a cap). The run's files go to a temporary directory.
set -eu
PREMIA=$(realpath "$1")
LABEL=${2:-run}
CONNECTIONS=${CONNECTIONS:-15000}
HOLD=${HOLD:-65}
AFTER=${AFTER:-15}
ulimit -n "$(ulimit -Hn)"
W=$(mktemp -d "/tmp/hostile-http-$LABEL.XXXX")
NATS=$(command -v nats-server || echo /usr/sbin/nats-server)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
NPORT=$(free_port)
HPORT=$(free_port)
BASE=http://127.0.0.1:$HPORT
printf '[http]\n%s\n' "${HTTP_LIMITS:-}" > "$W/premia.toml"
"$NATS" -a 127.0.0.1 -p "$NPORT" -js -sd "$W/nats" > "$W/nats.log" 2>&1 &
NPID=$!
"$PREMIA" --data-dir "$W/ledger" --config "$W/premia.toml" serve --nats-url "nats://127.0.0.1:$NPORT" \
  --http "127.0.0.1:$HPORT" > "$W/serve.out" 2> "$W/serve.err" &
SPID=$!
trap 'kill $SPID $NPID 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do [ "$(curl -s -o /dev/null -w "%{http_code}" "$BASE/readyz")" = 200 ] && break; sleep 0.1; done
kb() { awk -v k="$1:" '$1==k {print $2}' "/proc/$SPID/status"; }
mib() { echo "$(( $1 / 1024 )) MiB"; }
echo "machine: $(nproc) vCPU, $(free -g | awk '/^Mem/ {print $2}') GiB; premia $PREMIA; [http] ${HTTP_LIMITS:-defaults}"
echo "open-file limit $(ulimit -n); serve's: $(awk '/Max open files/ {print $4}' "/proc/$SPID/limits")"
BEFORE=$(kb VmRSS)
echo "RSS before: $(mib "$BEFORE")"

one_round() {
# The client: opens the connections, each sending half a request line, signals READY, then
# after HOLD seconds counts those the server has closed (recv peeks end of file or a reset).
rm -f "$W/ready"; mkfifo "$W/ready"
python3 - "$HPORT" "$CONNECTIONS" "$HOLD" "$W/ready" > "$W/client.out" <<'EOF' &
import socket, sys, time
port, n, hold, ready = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
socks, failed = [], 0
start = time.monotonic()
for _ in range(n):
    s = socket.socket()
    s.settimeout(5)
    try:
        s.connect(("127.0.0.1", port))
        s.sendall(b"GET /healthz HTT")
        socks.append(s)
    except OSError:
        failed += 1
        s.close()
opened = time.monotonic() - start
with open(ready, "w") as f:
    f.write("ready\n")
time.sleep(hold)
still = 0
for s in socks:
    s.setblocking(False)  # a socket with a timeout would wait it out for each peek
    try:
        still += s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b""
    except BlockingIOError:
        still += 1
    except OSError:
        pass
print(f"opened {len(socks)} of {n} in {opened:.1f} s ({failed} failed to connect or send); "
      f"still open after {hold:.0f} s: {still}")
sys.stdout.flush()
time.sleep(3)  # while the script counts serve's sockets
for s in socks:
    s.close()
EOF
CLIENT=$!
read -r _ < "$W/ready"
echo "RSS with the connections just opened: $(mib "$(kb VmRSS)")"
: > "$W/healthz.txt"
T0=$SECONDS
while [ $((SECONDS - T0)) -lt "$HOLD" ]; do
  curl -s -o /dev/null -m 10 -w '%{http_code} %{time_total}\n' "$BASE/healthz" >> "$W/healthz.txt" || echo "000 10" >> "$W/healthz.txt"
  sleep 1
done
while [ ! -s "$W/client.out" ]; do sleep 0.2; done
cat "$W/client.out"
echo "serve's established sockets then: $(ss -tnH state established "( sport = :$HPORT )" | wc -l)"
wait $CLIENT
echo "RSS peak (VmHWM): $(mib "$(kb VmHWM)"), at the end of the hold: $(mib "$(kb VmRSS)")"
sort -n -k2 "$W/healthz.txt" | awk '{ t[NR] = $2 * 1000; if ($1 != 200) bad++ }
  END { printf "/healthz: %d requests, %d not 200; latency min %.1f ms, median %.1f ms, max %.1f ms\n",
        NR, bad, t[1], t[int((NR + 1) / 2)], t[NR] }'
sleep "$AFTER"
echo "RSS $AFTER s after the client closed its sockets: $(mib "$(kb VmRSS)") (before: $(mib "$BEFORE"))"
}
for R in $(seq 1 "${ROUNDS:-1}"); do
  [ "${ROUNDS:-1}" = 1 ] || echo "-- round $R"
  one_round
done
echo "serve's established sockets now: $(ss -tnH state established "( sport = :$HPORT )" | wc -l)"
rm -rf "$W"
