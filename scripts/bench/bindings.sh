#!/usr/bin/env bash
# Seal/open rate of the Python and C bindings next to the Rust API, measured in one run: each
# round runs the Rust reference (crates/mqseal/examples/rate.rs), the Python script
# (bindings/python/bench/bench_rate.py) and the C program (bindings/c/bench/bench_rate.c) back to
# back, for both profiles; the table gives medians over the rounds and the ratios to Rust
# (Python against `seal`/`open`, C against `seal_into`/`open_into`, the calls each wraps).
#
#   scripts/bench/bindings.sh                 # 64-byte payloads, 5 rounds
#   SIZE=1024 ROUNDS=9 scripts/bench/bindings.sh
#
# Builds release artifacts (the rate example, libmqseal_ffi.a, the Python wheel into the venv of
# scripts/checks/50-python.sh). See BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
size=${SIZE:-64}
rounds=${ROUNDS:-5}
declare -A count=([signed]=${COUNT_SIGNED:-3000} [group-mac]=${COUNT_GROUP_MAC:-30000})

echo "== building (release)"
cargo build --release --locked --quiet -p mqseal --example rate
cargo build --release --locked --quiet -p mqseal-ffi
make -s -C bindings/c/bench
venv=target/py-venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
py="$root/$venv/bin/python"
"$py" -m pip install -q --disable-pip-version-check "maturin==1.16.0"
rm -rf target/wheels/mqseal-*.whl
(cd bindings/python && "$py" -m maturin build --release --locked --quiet --out ../../target/wheels) \
  >/dev/null
"$py" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps target/wheels/mqseal-*.whl

results=$(mktemp)
trap 'rm -f "$results"' EXIT
for r in $(seq "$rounds"); do
  for profile in signed group-mac; do
    n=${count[$profile]}
    echo "rust $profile $(target/release/examples/rate "$profile" "$size" "$n")" >>"$results"
    echo "python $profile $("$py" bindings/python/bench/bench_rate.py "$profile" "$size" "$n")" >>"$results"
    echo "c $profile $(target/c/bench/bench_rate "$profile" "$size" "$n")" >>"$results"
  done
  echo "round $r/$rounds done"
done

python3 - "$results" "$size" "$rounds" <<'PY'
import statistics, sys
path, size, rounds = sys.argv[1], sys.argv[2], sys.argv[3]
runs = {}
for line in open(path):
    lang, profile, *fields = line.split()
    for f in fields:
        name, value = f.split("=")
        runs.setdefault((lang, profile, name), []).append(float(value))
med = {k: statistics.median(v) for k, v in runs.items()}
print(f"\n{size}-byte payloads, medians of {rounds} rounds (operations per second)")
print(f"{'profile':<10} {'op':<5} {'rust':>9} {'rust_into':>10} {'python':>9} {'py/rust':>8} {'c':>9} {'c/rust_into':>11}")
for profile in ("signed", "group-mac"):
    for op in ("seal", "open"):
        rust = med[("rust", profile, f"{op}_per_s")]
        rust_into = med[("rust", profile, f"{op}_into_per_s")]
        python = med[("python", profile, f"{op}_per_s")]
        c = med[("c", profile, f"{op}_per_s")]
        print(f"{profile:<10} {op:<5} {rust:>9.0f} {rust_into:>10.0f} {python:>9.0f} {python / rust:>8.2f} {c:>9.0f} {c / rust_into:>11.2f}")
print("target: Python and C >= 0.80 x Rust at 64 B")
print("py/rust: Python seal()/open() against Rust seal()/open(); c/rust_into: mqseal_seal()/mqseal_open() against seal_into()/open_into()")
PY
