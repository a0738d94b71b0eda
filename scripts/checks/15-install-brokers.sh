#!/usr/bin/env bash
# Installs what the broker tests need before `cargo test` runs (step 20): Debian's Mosquitto
# broker and clients (`mosquitto`, `mosquitto_passwd`), openssl (test certificates) and tshark
# (the "broker only sees ciphertext" packet capture). Installing does not start a broker: the
# test harness starts its own `mosquitto -c <generated conf>` on a free 127.0.0.1 port.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
# tshark asks whether non-root users may capture; answer "no" (the tests run as root in CI, and
# skip the capture with a notice where it is not permitted).
echo "wireshark-common wireshark-common/install-setuid boolean false" \
  | as_root debconf-set-selections 2>/dev/null || true
# libssl-dev/pkg-config: already installed by 10-rust-lint.sh (the openssl crate); listed here
# too so that this step alone prepares everything `cargo test` needs.
apt_install mosquitto mosquitto-clients openssl tshark libssl-dev pkg-config
for tool in mosquitto mosquitto_passwd openssl tshark; do
  if command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ]; then
    echo "found $tool"
  else
    echo "missing $tool after install" >&2
    exit 1
  fi
done
mosquitto -h 2>/dev/null | head -1 || true
echo "brokers and tools: ok"
