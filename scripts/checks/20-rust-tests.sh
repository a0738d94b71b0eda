#!/usr/bin/env bash
# All Rust tests (unit, integration, vectors, doc tests) of the workspace.
set -uo pipefail
log=$(mktemp)
cargo test --workspace --locked >"$log" 2>&1
status=$?
grep -E "^(test result|     Running|   Doc-tests|error|failures:|---- )|panicked" "$log"
if [ "$status" -ne 0 ]; then tail -80 "$log"; fi
# Closing line for the whole run, in the plain form CI reads.
passed=$(grep -Eo '[0-9]+ passed' "$log" | awk '{s+=$1} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed' "$log" | awk '{s+=$1} END {print s+0}')
echo "cargo: $passed passed, $failed failed"
rm -f "$log"
exit "$status"
