//! `mqseal`: end-to-end sealed MQTT from the command line.
//!
//! ```text
//! mqseal keygen sensor --store ./sensor          # an identity (identity.key 0600, identity.pub)
//! mqseal keygen --tree 'plant/#' --store ./admin # a random key for a topic tree
//! mqseal trust ./sensor/identity.pub --store ./admin
//! mqseal grant 'plant/7/#' --to sensor --store ./admin -o sensor.grant
//! mqseal rotate 'plant/#' --at +1d --valid-for 30d --store ./admin  # next epoch ahead of time
//! mqseal pub -h broker -p 8883 --cafile ca.crt -t plant/7/temp -m 21.5 --store ./sensor
//! mqseal sub -h broker -p 8883 --cafile ca.crt -t 'plant/#' -v --store ./admin
//! mqseal inspect sealed.bin                      # the header of a sealed message, no keys
//! mqseal demo                                    # everything above on an embedded broker
//! mqseal bench                                   # plaintext vs sealed throughput via Mosquitto
//! ```
#![forbid(unsafe_code)]

mod bench;
mod conn;
mod demo;
mod error;
mod inspect;
mod keys;
mod pubsub;
mod session;
mod when;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// End-to-end payload encryption for MQTT: brokers only ever see ciphertext.
#[derive(Debug, Parser)]
#[command(name = "mqseal", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the keystore lives.
#[derive(Debug, Clone, Args)]
struct StoreFlag {
    /// Keystore directory (default: $MQSEAL_STORE, else ~/.mqseal).
    #[arg(long, value_name = "DIR")]
    store: Option<PathBuf>,
}

impl StoreFlag {
    fn dir(&self) -> PathBuf {
        if let Some(dir) = &self.store {
            return dir.clone();
        }
        if let Some(dir) = std::env::var_os("MQSEAL_STORE") {
            return dir.into();
        }
        let home = std::env::var_os("HOME").unwrap_or_else(|| ".".into());
        PathBuf::from(home).join(".mqseal")
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create an identity (a new keystore), or with --tree a random key for a topic tree.
    Keygen(keys::KeygenArgs),
    /// Trust a peer's public identity (an identity.pub file or line) as sender and/or issuer.
    Trust(keys::TrustArgs),
    /// Issue a grant of a topic filter's key to a trusted peer; or accept grants (--accept FILE,
    /// or --fetch from the broker).
    Grant(keys::GrantArgs),
    /// Rotate a tree key to a new epoch and grant it to its members (--exclude revokes one;
    /// --at grants it ahead of time, --valid-for gives it a lifetime).
    Rotate(keys::RotateArgs),
    /// Seal and publish, like mosquitto_pub.
    #[command(disable_help_flag = true)]
    Pub(pubsub::PubArgs),
    /// Subscribe and open, like mosquitto_sub.
    #[command(disable_help_flag = true)]
    Sub(pubsub::SubArgs),
    /// Decode the header of a sealed message (no keys needed).
    Inspect(inspect::InspectArgs),
    /// Show mqseal end to end on an embedded broker (or a real one with -h/-p), then exit.
    #[command(disable_help_flag = true)]
    Demo(demo::DemoArgs),
    /// Measure plaintext and sealed MQTT throughput, latency and CPU per message through a
    /// broker (started here, or given with -h/-p), in one run.
    #[command(disable_help_flag = true)]
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Keygen(a) => keys::keygen(&a),
        Command::Trust(a) => keys::trust(&a),
        Command::Grant(a) => keys::grant(&a),
        Command::Rotate(a) => keys::rotate(&a),
        Command::Pub(a) => pubsub::publish(&a),
        Command::Sub(a) => pubsub::subscribe(&a),
        Command::Inspect(a) => inspect::inspect(&a),
        Command::Demo(a) => demo::demo(&a),
        Command::Bench(a) => bench::bench(&a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mqseal: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The `--help` flag of commands whose `-h` is the broker host (as in mosquitto_pub/sub).
#[derive(Debug, Clone, Args)]
struct HelpFlag {
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn mosquitto_style_flags_parse() {
        let cli = Cli::try_parse_from([
            "mqseal", "pub", "-h", "broker", "-p", "8883", "-t", "a/b", "-m", "hi", "-q", "1",
            "-r", "-u", "user", "-P", "pw", "--cafile", "ca.crt", "--cert", "c.crt", "--key",
            "c.key",
        ]);
        assert!(cli.is_ok(), "{cli:?}");
        let cli = Cli::try_parse_from([
            "mqseal", "sub", "-h", "broker", "-t", "a/#", "-t", "b/+", "-C", "3", "-v",
        ]);
        assert!(cli.is_ok(), "{cli:?}");
        for version in ["5", "mqttv5", "311", "mqttv311"] {
            let cli = Cli::try_parse_from(["mqseal", "pub", "-V", version, "-t", "a", "-m", "x"]);
            assert!(cli.is_ok(), "{cli:?}");
        }
        let cli = Cli::try_parse_from(["mqseal", "sub", "-V", "31", "-t", "a"]);
        assert!(cli.is_err(), "MQTT 3.1 is not supported");
    }
}
