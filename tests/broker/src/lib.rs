//! Test harness for mqseal against real brokers.
//!
//! - [`Mosquitto`]: Debian's `mosquitto` started with a generated config on a free 127.0.0.1
//!   port (`log_dest stdout`), killed by PID on drop. Its files live in a temporary directory
//!   readable by the `mosquitto` user (the broker drops to it when started as root).
//! - [`Pki`]: a CA, a server certificate for `localhost`/`127.0.0.1`, a client certificate, and
//!   an untrusted CA with its own client certificate, made with the `openssl` CLI as in the usual
//!   Mosquitto TLS walkthroughs.
//! - [`SeedsPki`]: the PKI of the seeds' Mosquitto walkthrough, made with exactly its openssl
//!   commands (X.509 v1 certificates, server CN `127.0.0.1`, no subjectAltName), and
//!   [`seeds_broker_config`] for a broker configured as the walkthrough configures it.
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
    Broker, Mosquitto, MosquittoConfig, TlsListener, find_mosquitto, find_tool, plain_broker,
};
pub use parties::{
    Collected, Parties, RawSubscriber, collect, collect_v5, connect, connect_v5, spawn_driver,
    spawn_driver_v5, subscribe,
};
pub use pki::{Pki, SEEDS_CA_PASSPHRASE, SEEDS_KEY_PASSPHRASE, SeedsPki};

/// Prints a notice that a test part was skipped (visible with `--nocapture` and in failures).
pub fn notice(msg: &str) {
    eprintln!("NOTICE: {msg}");
}

/// A fresh [`Pki`], or `None` with a notice where openssl is not installed (the test command
/// installs it, so in CI this never skips).
pub fn pki_or_skip() -> Option<Pki> {
    let pki = Pki::generate().unwrap_or_else(|e| panic!("cannot generate the test PKI: {e}"));
    if pki.is_none() {
        notice("openssl is not installed; TLS test skipped");
    }
    pki
}

/// The seeds' PKI ([`SeedsPki`]), or `None` with a notice where openssl is not installed.
pub fn seeds_pki_or_skip() -> Option<SeedsPki> {
    let pki =
        SeedsPki::generate().unwrap_or_else(|e| panic!("cannot generate the seeds' PKI: {e}"));
    if pki.is_none() {
        notice("openssl is not installed; TLS test skipped");
    }
    pki
}

/// A Mosquitto configured as the seeds configure it: a TLS listener (on a free 127.0.0.1 port)
/// with `cafile`/`certfile`/`keyfile` of `pki` (`certfile` = `server_cert`, e.g. `server.crt`),
/// `require_certificate` as given, `allow_anonymous false` + a `password_file` made with
/// `mosquitto_passwd` for `users`, and `acl` as the `acl_file` if given.
pub fn seeds_broker_config(
    pki: &SeedsPki,
    server_cert: &str,
    require_certificate: bool,
    users: &[(&str, &str)],
    acl: Option<&str>,
) -> MosquittoConfig {
    MosquittoConfig {
        tls: Some(TlsListener {
            ca: pki.file("ca.crt"),
            cert: pki.file(server_cert),
            key: pki.file("server.key"),
            require_certificate,
        }),
        users: users
            .iter()
            .map(|(u, p)| (u.to_string(), p.to_string()))
            .collect(),
        acl: acl.map(str::to_string),
        ..MosquittoConfig::default()
    }
}

/// Mosquitto started with `config`, or `None` with a notice where it is not installed (the
/// test command installs it, so in CI this never skips).
pub fn mosquitto_or_skip(config: &MosquittoConfig) -> Option<Mosquitto> {
    let broker = Mosquitto::start(config).unwrap_or_else(|e| panic!("cannot start mosquitto: {e}"));
    if broker.is_none() {
        notice("mosquitto is not installed (scripts/checks/15-install-brokers.sh); test skipped");
    }
    broker
}

/// A broker configuration with one TLS listener using `pki`'s server certificate, requiring
/// client certificates signed by its CA if `require_certificate`.
pub fn tls_listener(pki: &Pki, require_certificate: bool) -> MosquittoConfig {
    MosquittoConfig {
        tls: Some(TlsListener {
            ca: pki.ca(),
            cert: pki.server_cert(),
            key: pki.server_key(),
            require_certificate,
        }),
        ..MosquittoConfig::default()
    }
}
