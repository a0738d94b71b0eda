//! Connection flags as in mosquitto_pub/mosquitto_sub, and connecting with clear failures.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use mqseal_rumqttc::{ConnectOptions, Event, OpenBackend, SealedEventLoop, TlsFiles};

use crate::error::{CliError, Result};

/// `-h -p -u -P --cafile --cert --key -i -k`, as mosquitto_pub/sub.
#[derive(Debug, Clone, Args)]
pub struct ConnFlags {
    /// Broker host.
    #[arg(short = 'h', long = "host", default_value = "localhost")]
    pub host: String,
    /// Broker port (default 1883, or 8883 with --cafile).
    #[arg(short = 'p', long = "port")]
    pub port: Option<u16>,
    /// Username.
    #[arg(short = 'u', long = "username")]
    pub username: Option<String>,
    /// Password.
    #[arg(short = 'P', long = "pw")]
    pub password: Option<String>,
    /// CA certificate (PEM) of the broker's TLS certificate: turns TLS on.
    #[arg(long)]
    pub cafile: Option<PathBuf>,
    /// Client certificate (PEM), for brokers with require_certificate.
    #[arg(long)]
    pub cert: Option<PathBuf>,
    /// Client private key (PEM).
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// Client id (default: mqseal-<command>-<pid>).
    #[arg(short = 'i', long = "id")]
    pub id: Option<String>,
    /// Keep-alive in seconds.
    #[arg(short = 'k', long = "keepalive", default_value_t = 60)]
    pub keepalive: u64,
}

impl ConnFlags {
    /// rumqttc v3.1.1 options (TLS files read here, errors name the file and the fix).
    pub fn options(&self, role: &str) -> Result<rumqttc::MqttOptions> {
        Ok(self.connect_options(role)?.v4()?)
    }

    /// The settings, for either MQTT version (flag combinations checked, files not read yet).
    pub fn connect_options(&self, role: &str) -> Result<ConnectOptions> {
        let id = self
            .id
            .clone()
            .unwrap_or_else(|| format!("mqseal-{role}-{}", std::process::id()));
        let default_port = if self.cafile.is_some() { 8883 } else { 1883 };
        let mut o = ConnectOptions::new(id, &self.host, self.port.unwrap_or(default_port));
        o.keep_alive = Duration::from_secs(self.keepalive.max(5));
        o.username = self.username.clone();
        o.password = self.password.clone();
        if self.password.is_some() && self.username.is_none() {
            return Err(CliError(
                "-P given without -u; fix: add -u USER (a password is only sent with a username)"
                    .into(),
            ));
        }
        match (&self.cafile, &self.cert, &self.key) {
            (None, None, None) => {}
            (Some(ca), cert, key) => {
                o.tls = Some(TlsFiles {
                    ca_file: ca.clone(),
                    client_cert: cert.clone(),
                    client_key: key.clone(),
                });
            }
            (None, _, _) => {
                return Err(CliError(
                    "--cert/--key given without --cafile; fix: add --cafile with the CA of the \
                     broker's certificate"
                        .into(),
                ));
            }
        }
        Ok(o)
    }

    /// `host:port` for messages.
    pub fn address(&self) -> String {
        let default_port = if self.cafile.is_some() { 8883 } else { 1883 };
        format!("{}:{}", self.host, self.port.unwrap_or(default_port))
    }
}

/// A current-thread tokio runtime.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError(format!("cannot start the async runtime: {e}")))
}

/// Polls until the broker accepted the connection; a failure is explained (reason + fix).
pub async fn wait_connected<O: OpenBackend>(
    lp: &mut SealedEventLoop<O>,
    address: &str,
) -> Result<()> {
    loop {
        match tokio::time::timeout(Duration::from_secs(30), lp.poll()).await {
            Err(_) => {
                return Err(CliError(format!(
                    "cannot connect to {address}: no answer within 30 s; fix: check the host, \
                     port and firewall"
                )));
            }
            Ok(Err(e)) => {
                let f = mqseal_rumqttc::explain(&e);
                return Err(CliError(format!(
                    "cannot connect to {address}: {}; fix: {}",
                    f.reason, f.fix
                )));
            }
            Ok(Ok(Event::Mqtt(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))))) => {
                return Ok(());
            }
            Ok(Ok(_)) => {}
        }
    }
}
