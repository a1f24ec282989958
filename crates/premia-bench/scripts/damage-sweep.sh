#!/bin/bash
# The whole damage sweep of docs/OPERATIONS.md: three data dirs (right after an ingest, after a
# SIGKILLed serve, after a clean stop), and for every file of each one byte flipped at N
# positions (24 by default), the file cut to half and the file deleted; verify, statement,
# pending, export and serve --drain run on every damaged copy must refuse or answer as the
# undamaged copy does, never panic, and verify must write nothing. The suite runs the same test
# with 2 positions per file (tests/damage.rs).
#
# usage: crates/premia-bench/scripts/damage-sweep.sh [POSITIONS] [EVENTS]
# Prints one line per data dir and the totals (cases, refused, identical, silent, crashed,
# verify_wrote); the aim is silent = crashed = verify_wrote = 0. Needs nats-server on the PATH
# or in /usr/sbin (apt-get install nats-server).
set -eu
cd "$(dirname "$0")/../../.."
export PREMIA_DAMAGE_POSITIONS=${1:-24}
export PREMIA_DAMAGE_EVENTS=${2:-2500}
cargo test --locked -p premia --test damage -- --nocapture 2>&1 |
  grep -E '^(ingested|killed|stopped|damage sweep|SILENT|CRASH|MUTE|VERIFY WROTE)|test result'
