#!/usr/bin/env bash
# The core crate must build for bare-metal firmware (no_std + alloc).
set -euo pipefail
target=thumbv7em-none-eabihf
if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
  rustup target add "$target" >/dev/null 2>&1 || true
fi
if rustup target list --installed 2>/dev/null | grep -qx "$target"; then
  cargo build -p mqseal --no-default-features --target "$target" --locked
  echo "no_std build for $target: ok"
else
  echo "NOTICE: could not add rustup target $target; skipping the no_std firmware build"
  cargo build -p mqseal --no-default-features --locked
fi
