#!/usr/bin/env bash
# Runs premia's fuzz targets (docs/RELIABILITY.md, "Fuzzing") for MINUTES of wall clock each.
# Usage: crates/premia-bench/scripts/fuzz.sh MINUTES [TARGET...]
#   TARGET: event scheme export http fold (default: all five, one after the other).
#   FUZZ_JOBS=2 runs two targets at a time (no more: each takes a core).
# Builds the fuzz tests once (the test profile: workspace crates with debug assertions and
# overflow checks, dependencies optimised), then runs each test binary with
# PREMIA_FUZZ_SECONDS set. Prints cases run and failures per target; exits non-zero when any
# target failed (its log is kept and named). A failure's seed is appended to the target's
# .proptest-regressions file beside its source: commit it, and make the input a named test.
set -euo pipefail

if [ $# -lt 1 ] || ! [[ $1 =~ ^[0-9]+$ ]] || [ "$1" -lt 1 ]; then
  echo "usage: $0 MINUTES [event|scheme|export|http|fold ...]" >&2
  exit 2
fi
minutes=$1
shift
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(event scheme export http fold)
jobs=${FUZZ_JOBS:-1}
root=$(cd "$(dirname "$0")/../../.." && pwd)
logs=$(mktemp -d "${TMPDIR:-/tmp}/premia-fuzz.XXXXXX")

# target -> package, test file, test function
spec() {
  case $1 in
    event) echo "premia-core fuzz_event fuzz_event_decoder" ;;
    scheme) echo "premia-core fuzz_scheme fuzz_scheme_parser" ;;
    export) echo "premia-ledger fuzz_export fuzz_export_lines" ;;
    http) echo "premia-http fuzz_http fuzz_event_bodies" ;;
    fold) echo "premia-core fuzz_fold fuzz_fold_against_model" ;;
    *) echo "unknown fuzz target $1; use event, scheme, export, http or fold" >&2; return 1 ;;
  esac
}

build_args=()
for t in "${targets[@]}"; do
  spec "$t" > /dev/null || exit 2
  read -r package test _ < <(spec "$t")
  build_args+=(-p "$package" --test "$test")
done
echo "building ${targets[*]} ..."
(cd "$root" && cargo test --locked --no-run --message-format=json "${build_args[@]}") > "$logs/build.json"

binary_of() {
  grep "\"name\":\"$1\"" "$logs/build.json" | grep -o '"executable":"[^"]*"' | tail -1 | cut -d'"' -f4
}

run_target() {
  local t=$1 package test function binary
  read -r package test function < <(spec "$t")
  binary=$(binary_of "$test")
  if [ -z "$binary" ]; then
    echo "fuzz $t: no test binary $test was built" > "$logs/$t.log"
    return 1
  fi
  # Run from the crate's directory, as cargo test does, so regression files land beside the test.
  (cd "$root/crates/$package" && CARGO_MANIFEST_DIR="$root/crates/$package" PREMIA_FUZZ_SECONDS=$((minutes * 60)) \
    "$binary" --exact "$function" --nocapture --test-threads 1) > "$logs/$t.log" 2>&1
}

for t in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do
    wait -n || true
  done
  echo "fuzz $t: running for $minutes min from $(date -u +%H:%M:%S) (log $logs/$t.log)"
  (if run_target "$t"; then echo 0; else echo 1; fi > "$logs/$t.rc") &
done
wait

failed=0
for t in "${targets[@]}"; do
  if [ "$(cat "$logs/$t.rc")" = 0 ]; then
    grep -ho "fuzz $t: .* failures" "$logs/$t.log" || { echo "fuzz $t: ended without its summary line"; failed=1; }
  else
    echo "fuzz $t: FAILED, 1 failure; see $logs/$t.log:"
    grep -h -A3 "fuzz $t:\|panicked" "$logs/$t.log" | head -20
    failed=1
  fi
done
[ $failed -eq 0 ] && echo "all targets: 0 failures" || echo "some targets failed; logs in $logs"
exit $failed
