#!/usr/bin/env bash
# Replays spec/vectors through an independent Python implementation written from the spec alone
# (tests/spec-conformance/mqseal_ref.py): proves the spec suffices to interoperate.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
venv=target/venv-spec
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" || { apt_install python3-venv 2>/dev/null; python3 -m venv "$venv"; }
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check "cryptography>=42" "pytest>=8"
cd tests/spec-conformance
"../../$venv/bin/python" -m pytest -p no:cacheprovider -v test_vectors.py
