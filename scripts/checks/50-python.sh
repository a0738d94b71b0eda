#!/usr/bin/env bash
# Python bindings (bindings/python): builds the `mqseal` wheel with maturin (release, abi3), installs
# it in a venv with paho-mqtt, pytest and mypy, checks the hand-written stubs against the built
# module (mypy.stubtest) and the package with mypy --strict, then runs the pytest suite: every
# spec/vectors file, the API, Rust interop both ways, keystores, and live tests against a Mosquitto
# the suite starts itself (installed by 15-install-brokers.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh
venv=target/py-venv
t0=$(date +%s)
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" || { apt_install python3-venv; rm -rf "$venv"; python3 -m venv "$venv"; }
fi
py="$PWD/$venv/bin/python"
"$py" -m pip install -q --disable-pip-version-check \
  "maturin==1.16.0" "pytest==9.2.0" "paho-mqtt==2.2.0" "mypy==2.4.1"
t1=$(date +%s)

# One release build: the wheel proves packaging and is what the tests import.
rm -rf target/wheels/mqseal-*.whl
(cd bindings/python && "$py" -m maturin build --release --locked --out ../../target/wheels)
wheel=$(ls target/wheels/mqseal-*.whl)
"$py" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps "$wheel"
t2=$(date +%s)

# Import from the installed wheel, not from the source tree.
cd target
"$py" -m mypy.stubtest mqseal
"$py" -m mypy --strict --no-incremental -p mqseal
cd ../bindings/python
"$py" -m pytest -p no:cacheprovider -q -rs tests
# Smoke run of the seal/open rate program (figures: scripts/bench/bindings.sh, BENCHMARKS.md).
echo "rate bench smoke (not a figure): $("$py" bench/bench_rate.py signed 64 50)"
t3=$(date +%s)
echo "python: wheel $(basename "$wheel"); venv+tools $((t1 - t0))s, release wheel $((t2 - t1))s, checks+tests $((t3 - t2))s"
