#!/usr/bin/env bash
# Short, bounded smoke fuzz of every cargo-fuzz target in tests/fuzz (libFuzzer + ASan, via
# RUSTC_BOOTSTRAP on stable). The committed seed corpus is copied to target/ so the run never
# modifies it. Longer runs: see tests/fuzz/README.md.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
seconds=${MQSEAL_FUZZ_SECONDS:-15}
if ! command -v cargo-fuzz >/dev/null; then
  echo "installing cargo-fuzz"
  cargo install cargo-fuzz --locked --quiet || { echo "NOTICE: cargo-fuzz could not be installed; skipping smoke fuzz"; exit 0; }
fi
export RUSTC_BOOTSTRAP=1
total=0
for target in open_envelope grant keystore; do
  work=target/fuzz-corpus/$target
  rm -rf "$work" && mkdir -p "$work" && cp tests/fuzz/corpus/$target/* "$work/"
  log=$(mktemp)
  if ! cargo fuzz run --fuzz-dir tests/fuzz "$target" "$work" -- \
      -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1; then
    tail -40 "$log"
    echo "fuzz target $target FAILED"
    exit 1
  fi
  runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' || echo 0)
  echo "fuzz $target: $runs executions in ${seconds}s, no crash"
  total=$((total + runs))
  rm -f "$log"
done
echo "fuzz smoke: $total executions, 0 crashes"
