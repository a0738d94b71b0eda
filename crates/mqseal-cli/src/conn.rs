//! Connection flags as in mosquitto_pub/mosquitto_sub, and connecting with clear failures.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use mqseal_rumqttc::{
    BrokerUrl, ConnectFailure, ConnectOptions, Event, OpenBackend, SealedEventLoop, TlsFiles,
};

use crate::error::{CliError, Result};

/// `-h -p -u -P -L --cafile --cert --key -i -k`, as mosquitto_pub/sub.
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
    /// Broker URL instead of -h -p -u -P: mqtt://[user[:password]@]host[:port][/topic], or
    /// mqtts://… for TLS (the CA of --cafile, else the system's public CAs). The path is the
    /// topic (pub, sub), as with mosquitto_pub -L.
    #[arg(
        short = 'L',
        long = "url",
        conflicts_with_all = ["host", "port", "username", "password"]
    )]
    pub url: Option<String>,
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
        if let Some(url) = self.broker_url()? {
            let mut o = url.connect_options(id, self.cafile.clone())?;
            o.keep_alive = Duration::from_secs(self.keepalive.max(5));
            match (&mut o.tls, &self.cert, &self.key) {
                (_, None, None) => {}
                (Some(tls), cert, key) => {
                    tls.client_cert = cert.clone();
                    tls.client_key = key.clone();
                }
                (None, _, _) => {
                    return Err(CliError(format!(
                        "--cert/--key given for the plain TCP URL {url}; fix: use mqtts:// for \
                         TLS"
                    )));
                }
            }
            return Ok(o);
        }
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

    /// The `-L` URL, parsed, if given.
    fn broker_url(&self) -> Result<Option<BrokerUrl>> {
        Ok(self.url.as_deref().map(BrokerUrl::parse).transpose()?)
    }

    /// The topic in the path of the `-L` URL, if any; an invalid URL is an error.
    pub fn url_topic(&self) -> Result<Option<String>> {
        Ok(self.broker_url()?.and_then(|u| u.topic))
    }

    /// The topic from `-t` or from the `-L` URL's path (exactly one of them).
    pub fn topic_from(&self, flag: Option<&std::ffi::OsStr>) -> Result<std::ffi::OsString> {
        match (flag, self.url_topic()?) {
            (Some(t), None) => Ok(t.to_os_string()),
            (None, Some(t)) => Ok(t.into()),
            (Some(_), Some(_)) => Err(CliError(
                "the topic is given twice, with -t and in the path of the -L URL; fix: give it \
                 once"
                    .into(),
            )),
            (None, None) => Err(CliError(
                "no topic; fix: give -t TOPIC, or put it in the -L URL's path \
                 (mqtt://host/plant/7/temp)"
                    .into(),
            )),
        }
    }

    /// `host:port` for messages.
    pub fn address(&self) -> String {
        match self.broker_url() {
            Ok(Some(url)) => return url.address(),
            Ok(None) => {}
            // Reported by `connect_options`, which every command calls first.
            Err(_) => return "the broker of -L".to_string(),
        }
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
    until_connected(address, async || {
        let event = lp.poll().await.map_err(|e| mqseal_rumqttc::explain(&e))?;
        Ok(matches!(
            event,
            Event::Mqtt(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_)))
        ))
    })
    .await
}

/// Calls `poll` until it reports the broker's CONNACK (`Ok(true)`); a connection failure, or no
/// event within 30 s, is explained (reason + fix). Shared by every flavour of loop.
pub async fn until_connected(
    address: &str,
    mut poll: impl AsyncFnMut() -> std::result::Result<bool, ConnectFailure>,
) -> Result<()> {
    loop {
        match tokio::time::timeout(Duration::from_secs(30), poll()).await {
            Err(_) => {
                return Err(CliError(format!(
                    "cannot connect to {address}: no answer within 30 s; fix: check the host, \
                     port and firewall"
                )));
            }
            Ok(Err(f)) => {
                return Err(CliError(format!(
                    "cannot connect to {address}: {}; fix: {}",
                    f.reason, f.fix
                )));
            }
            Ok(Ok(true)) => return Ok(()),
            Ok(Ok(false)) => {}
        }
    }
}
