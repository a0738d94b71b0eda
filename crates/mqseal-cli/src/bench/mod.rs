//! `bench`: plaintext and sealed MQTT throughput through a real broker, measured in one run.
//!
//! Every round sends N messages per mode (plaintext, signed, group-mac), modes interleaved, each
//! with a fresh publisher and subscriber in this process (see [`round`]). The table gives the
//! median rate over the rounds, each sealed rate as a ratio to the plaintext rate of the same
//! round, latency percentiles over all messages, and CPU time per message of the publisher, the
//! subscriber and (when started here) the broker.

mod broker;
mod cpu;
mod report;
mod round;

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use rumqttc::QoS;

use crate::HelpFlag;
use crate::conn::ConnFlags;
use crate::error::{CliError, Result};
use broker::{Broker, BrokerChoice};

/// What travels: plaintext, or a sealing profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Plain MQTT: the payload as is.
    Plaintext,
    /// Sealed, `signed` profile (Ed25519 signature per message).
    Signed,
    /// Sealed, `group-mac` profile (AEAD only).
    GroupMac,
}

impl Mode {
    /// The name used on the command line and in the table.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Plaintext => "plaintext",
            Mode::Signed => "signed",
            Mode::GroupMac => "group-mac",
        }
    }
}

/// `mqseal bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Use this broker (default: start one on 127.0.0.1, see --broker).
    #[arg(short = 'h', long = "host")]
    host: Option<String>,
    /// Port of that broker.
    #[arg(short = 'p', long = "port")]
    port: Option<u16>,
    /// Username.
    #[arg(short = 'u', long = "username")]
    username: Option<String>,
    /// Password.
    #[arg(short = 'P', long = "pw")]
    password: Option<String>,
    /// CA certificate of a TLS broker.
    #[arg(long)]
    cafile: Option<PathBuf>,
    /// Client certificate.
    #[arg(long)]
    cert: Option<PathBuf>,
    /// Client key.
    #[arg(long)]
    key: Option<PathBuf>,
    /// Broker to start when none is given with -h/-p.
    #[arg(long, value_enum, default_value_t = BrokerChoice::Auto)]
    broker: BrokerChoice,
    /// Messages per mode and round.
    #[arg(short = 'n', long = "count", default_value_t = 50_000)]
    count: u64,
    /// Payload size in bytes (at least 8: the send time travels inside the payload).
    #[arg(short = 's', long = "size", default_value_t = 64)]
    size: usize,
    /// QoS of the publications and the subscription (0, 1 or 2).
    #[arg(short = 'q', long = "qos", default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    qos: u8,
    /// Rounds; the modes are interleaved in each round and the rates are medians over rounds.
    #[arg(long, default_value_t = 5)]
    rounds: u32,
    /// Publish at this many messages per second (to measure latency under a given load)
    /// instead of as fast as the window allows.
    #[arg(long)]
    rate: Option<u32>,
    /// Messages in flight end to end, at most (the publisher waits for the subscriber). Keep it
    /// below the broker's queue limit: Mosquitto drops QoS 0 messages beyond
    /// `max_queued_messages` (1000 by default) queued for a client.
    #[arg(long, default_value_t = 800)]
    window: u64,
    /// Largest batch the subscriber opens at once (Ed25519 batch verification: the larger, the
    /// cheaper each signature); 1 opens one message at a time.
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// Modes to measure (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Mode::Plaintext, Mode::Signed, Mode::GroupMac])]
    modes: Vec<Mode>,
    #[command(flatten)]
    help: HelpFlag,
}

/// One measured round of one mode.
#[derive(Debug)]
pub struct Measured {
    /// The mode.
    pub mode: Mode,
    /// The round (0-based).
    pub round: u32,
    /// What the round measured.
    pub outcome: round::Outcome,
    /// Broker CPU during the round, ns (`None`: a given broker).
    pub broker_cpu_ns: Option<u64>,
}

/// The settings a report describes.
#[derive(Debug)]
pub struct Settings {
    /// Messages per mode and round.
    pub count: u64,
    /// Payload bytes.
    pub size: usize,
    /// QoS level.
    pub qos: u8,
    /// Rounds.
    pub rounds: u32,
    /// Flow-control window.
    pub window: u64,
    /// Open batch size.
    pub batch: usize,
    /// Publishing pace (messages per second), if any.
    pub rate: Option<u32>,
}

pub fn bench(a: &BenchArgs) -> Result<()> {
    if a.size < 8 {
        return Err(CliError(format!(
            "-s {}: too small; fix: use at least 8 bytes (the send time travels inside the \
             payload)",
            a.size
        )));
    }
    if a.count == 0 || a.rounds == 0 || a.window == 0 || a.batch == 0 || a.rate == Some(0) {
        return Err(CliError(
            "-n, --rounds, --window, --batch and --rate must be at least 1".into(),
        ));
    }
    let mut modes = Vec::new();
    for m in &a.modes {
        if !modes.contains(m) {
            modes.push(*m);
        }
    }
    let broker = if a.host.is_some() || a.port.is_some() {
        let default_port = if a.cafile.is_some() { 8883 } else { 1883 };
        Broker::given(
            a.host.as_deref().unwrap_or("localhost"),
            a.port.unwrap_or(default_port),
        )
    } else {
        Broker::start(a.broker)?
    };
    let conn = ConnFlags {
        host: broker.host.clone(),
        port: Some(broker.port),
        username: a.username.clone(),
        password: a.password.clone(),
        cafile: a.cafile.clone(),
        cert: a.cert.clone(),
        key: a.key.clone(),
        id: None,
        keepalive: 60,
        url: None,
        ..ConnFlags::basic()
    };
    let settings = Settings {
        count: a.count,
        size: a.size,
        qos: a.qos,
        rounds: a.rounds,
        window: a.window,
        batch: a.batch,
        rate: a.rate,
    };
    report::header(&broker, &settings);

    // On a shared broker keep to a topic tree of our own.
    let tag = mqseal::Identity::generate()?.fingerprint().to_string();
    let tag = tag.get(..12).unwrap_or("0");
    let qos = match a.qos {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    };
    let mut measured = Vec::new();
    for r in 0..a.rounds {
        for &mode in &modes {
            let spec = round::Spec {
                mode,
                conn: conn.clone(),
                topic: format!("mqseal-bench/{tag}/{}/{r}", mode.name()),
                count: a.count,
                size: a.size,
                qos,
                window: a.window,
                batch: a.batch,
                rate: a.rate,
            };
            let before = broker.cpu_ns();
            let outcome = round::run(&spec)?;
            let after = broker.cpu_ns();
            let broker_cpu_ns = before.zip(after).map(|(b, a)| a.saturating_sub(b));
            report::progress(mode, r, &outcome);
            measured.push(Measured {
                mode,
                round: r,
                outcome,
                broker_cpu_ns,
            });
        }
    }
    report::table(&modes, &measured, &settings, broker.is_local());
    let lost: u64 = measured
        .iter()
        .map(|m| {
            a.count
                .saturating_sub(m.outcome.received + m.outcome.rejected)
        })
        .sum();
    let rejected: u64 = measured.iter().map(|m| m.outcome.rejected).sum();
    if lost > 0 || rejected > 0 {
        return Err(CliError(format!(
            "{lost} message(s) lost and {rejected} refused: the figures above are not \
             comparable; fix: lower --window (the broker's queue overflowed) or check the \
             broker's limits"
        )));
    }
    Ok(())
}
