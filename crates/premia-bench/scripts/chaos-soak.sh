#!/bin/bash
# The chaos soak of docs/RELIABILITY.md: a three-node JetStream cluster, EVENTS generated events
# (with the generator's noise, an orphan payment and a line that is not JSON) published in 20
# chunks while three premia serve replicas fold them; meanwhile SERVE_KILLS SIGKILLs of a random
# replica at random moments, NODE_KILLS SIGKILLs and restarts of NATS nodes (every other one the
# events stream's leader), and one replica destroyed and rebuilt with premia recover. At the end
# every replica's statements must equal a clean file ingest of the same lines, the chain heads
# must be equal and no accrual may be in the feed twice. The suite runs the same test small
# (tests/soak.rs).
#
# usage: crates/premia-bench/scripts/chaos-soak.sh [EVENTS] [SERVE_KILLS] [NODE_KILLS] [SEED]
# Prints the soak's figures as one JSON line. Needs nats-server on the PATH or in /usr/sbin.
set -eu
cd "$(dirname "$0")/../../.."
export PREMIA_SOAK_EVENTS=${1:-200000}
export PREMIA_SOAK_SERVE_KILLS=${2:-50}
export PREMIA_SOAK_NODE_KILLS=${3:-10}
export PREMIA_SOAK_SEED=${4:-59}
cargo test --locked -p premia --test soak -- --nocapture 2>&1 | grep -E -A3 '^soak (figures|work dir)|panicked|test result'
