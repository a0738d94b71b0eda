//! Test harness for mqseal against real brokers.
//!
//! - [`Mosquitto`]: Debian's `mosquitto` started with a generated config on a free 127.0.0.1
//!   port (`log_dest stdout`), killed by PID on drop. Its files live in a temporary directory
//!   readable by the `mosquitto` user (the broker drops to it when started as root).
//! - [`Pki`]: a CA, a server certificate for `localhost`/`127.0.0.1`, a client certificate, and
//!   an untrusted CA with its own client certificate, made with the `openssl` CLI as in the usual
//!   Mosquitto TLS walkthroughs.
//! - [`Capture`]: a loopback packet capture (tshark) filtered on one port.
//! - [`plain_broker`]: Mosquitto if installed, else the embedded rumqttd (with a notice).
//! - [`Parties`]: an admin, a publisher and a subscriber with a key tree and grants.
#![forbid(unsafe_code)]
// A test-support crate: failing a test set-up loudly is its job.
#![allow(clippy::panic)]

mod capture;
mod mosquitto;
mod parties;
mod pki;

pub use capture::Capture;
pub use mosquitto::{
    Broker, Mosquitto, MosquittoConfig, TlsListener, find_mosquitto, plain_broker,
};
pub use parties::{
    Collected, Parties, RawSubscriber, collect, collect_v5, connect, connect_v5, spawn_driver,
    spawn_driver_v5, subscribe,
};
pub use pki::Pki;

/// Prints a notice that a test part was skipped (visible with `--nocapture` and in failures).
pub fn notice(msg: &str) {
    eprintln!("NOTICE: {msg}");
}
