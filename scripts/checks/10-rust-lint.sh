#!/usr/bin/env bash
# Formatting and lints for the whole workspace.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
# mqseal-rumqttc verifies broker certificates with OpenSSL (the `openssl` crate): its build needs
# Debian's libssl-dev, found through pkg-config. The first step to compile the workspace installs
# them (the later steps find them present).
apt_install libssl-dev pkg-config
rustup component add rustfmt clippy >/dev/null 2>&1 || true
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
