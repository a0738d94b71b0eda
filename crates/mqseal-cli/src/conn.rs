//! Connection flags as in mosquitto_pub/mosquitto_sub, and connecting with clear failures.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use mqseal_rumqttc::{
    BrokerUrl, ConnectFailure, ConnectOptions, Event, OpenBackend, SealedEventLoop, TlsFiles,
    TlsVersion,
};

use crate::error::{CliError, Result};

/// `-h -p -u -P -L --cafile --capath --tls-use-os-certs --cert --key --insecure --tls-version
/// --ciphers -i -k`, as mosquitto_pub/sub.
#[derive(Clone, Args)]
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
    /// Directory of CA certificates named by subject hash (`openssl rehash DIR`): turns TLS on.
    #[arg(long)]
    pub capath: Option<PathBuf>,
    /// Trust the system's CAs too (OpenSSL's default store): turns TLS on.
    #[arg(long = "tls-use-os-certs")]
    pub tls_use_os_certs: bool,
    /// Client certificate (PEM), for brokers with require_certificate.
    #[arg(long)]
    pub cert: Option<PathBuf>,
    /// Client private key (PEM); if encrypted, its passphrase is read from the
    /// MQSEAL_KEY_PASSPHRASE environment variable.
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// Do not check that the broker's certificate names the host (testing only: anyone with a
    /// certificate from the same CA could pose as the broker).
    #[arg(long)]
    pub insecure: bool,
    /// TLS version to use: tlsv1.3 or tlsv1.2 (default: either).
    #[arg(long = "tls-version", value_name = "VERSION")]
    pub tls_version: Option<String>,
    /// TLS 1.2 cipher suites to offer, OpenSSL names separated by ':' (TLS 1.3 unaffected).
    #[arg(long)]
    pub ciphers: Option<String>,
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

/// Shows whether a password is set, never the password (nor one inside an `-L` URL).
impl std::fmt::Debug for ConnFlags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = self.url.as_deref().map(|u| {
            BrokerUrl::parse(u).map_or_else(|_| "<invalid URL>".to_string(), |u| u.to_string())
        });
        f.debug_struct("ConnFlags")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("cafile", &self.cafile)
            .field("capath", &self.capath)
            .field("tls_use_os_certs", &self.tls_use_os_certs)
            .field("cert", &self.cert)
            .field("key", &self.key)
            .field("insecure", &self.insecure)
            .field("tls_version", &self.tls_version)
            .field("ciphers", &self.ciphers)
            .field("id", &self.id)
            .field("keepalive", &self.keepalive)
            .field("url", &url)
            .finish()
    }
}

impl ConnFlags {
    /// `-h localhost`, no other flag (the base of flags built in code).
    pub fn basic() -> ConnFlags {
        ConnFlags {
            host: "localhost".into(),
            port: None,
            username: None,
            password: None,
            cafile: None,
            capath: None,
            tls_use_os_certs: false,
            cert: None,
            key: None,
            insecure: false,
            tls_version: None,
            ciphers: None,
            id: None,
            keepalive: 60,
            url: None,
        }
    }

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
            match &mut o.tls {
                Some(tls) => {
                    // The URL gave TLS with --cafile or, without it, the system's CAs; --capath
                    // and --tls-use-os-certs say exactly which CAs instead.
                    if self.capath.is_some() || self.tls_use_os_certs {
                        tls.use_os_certs = self.tls_use_os_certs;
                        tls.ca_path = self.capath.clone();
                    }
                    self.fill_tls(tls)?;
                }
                None if self.tls_flag().is_some() => {
                    return Err(CliError(format!(
                        "{} given for the plain TCP URL {url}; fix: use mqtts:// for TLS",
                        self.tls_flag().unwrap_or("a TLS flag")
                    )));
                }
                None => {}
            }
            return Ok(o);
        }
        let tls_on = self.cafile.is_some() || self.capath.is_some() || self.tls_use_os_certs;
        let default_port = if tls_on { 8883 } else { 1883 };
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
        if tls_on {
            let mut tls = TlsFiles {
                ca_file: self.cafile.clone(),
                ca_path: self.capath.clone(),
                use_os_certs: self.tls_use_os_certs,
                ..TlsFiles::default()
            };
            self.fill_tls(&mut tls)?;
            o.tls = Some(tls);
        } else if let Some(flag) = self.tls_flag() {
            return Err(CliError(format!(
                "{flag} given without --cafile; fix: add --cafile with the CA of the broker's \
                 certificate (or --capath DIR, or --tls-use-os-certs)"
            )));
        }
        Ok(o)
    }

    /// The first TLS-only flag given (for errors when TLS is off).
    fn tls_flag(&self) -> Option<&'static str> {
        [
            (self.cert.is_some(), "--cert"),
            (self.key.is_some(), "--key"),
            (self.insecure, "--insecure"),
            (self.tls_version.is_some(), "--tls-version"),
            (self.ciphers.is_some(), "--ciphers"),
            (self.capath.is_some(), "--capath"),
            (self.tls_use_os_certs, "--tls-use-os-certs"),
        ]
        .into_iter()
        .find_map(|(given, flag)| given.then_some(flag))
    }

    /// Client certificate, key (passphrase from `MQSEAL_KEY_PASSPHRASE`), --insecure (with a
    /// warning), --tls-version and --ciphers.
    fn fill_tls(&self, tls: &mut TlsFiles) -> Result<()> {
        tls.client_cert = self.cert.clone();
        tls.client_key = self.key.clone();
        if self.key.is_some() {
            tls.key_passphrase = std::env::var("MQSEAL_KEY_PASSPHRASE").ok();
        }
        tls.tls_version = self
            .tls_version
            .as_deref()
            .map(TlsVersion::parse)
            .transpose()?;
        tls.ciphers = self.ciphers.clone();
        if self.insecure {
            tls.insecure = true;
            eprintln!(
                "mqseal: WARNING: --insecure: the broker's certificate is not checked against \
                 the host name; anyone holding a certificate from the same CA can pose as the \
                 broker and read what you send. Use it for testing only."
            );
        }
        Ok(())
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
        let tls_on = self.cafile.is_some() || self.capath.is_some() || self.tls_use_os_certs;
        let default_port = if tls_on { 8883 } else { 1883 };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_a_password() {
        let flags = ConnFlags {
            password: Some("hunter2-pw".into()),
            url: Some("mqtts://u:hunter2-url@host/t".into()),
            ..ConnFlags::basic()
        };
        let text = format!("{flags:?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("<redacted>"), "{text}");
    }

    #[test]
    fn tls_flags_need_tls_and_turn_it_on() {
        let e = ConnFlags {
            insecure: true,
            ..ConnFlags::basic()
        }
        .connect_options("pub");
        assert!(
            e.is_err_and(|e| e.0.contains("--insecure given without --cafile")),
            "TLS-only flag without TLS"
        );
        let o = ConnFlags {
            capath: Some("/etc/ssl/certs".into()),
            tls_version: Some("tlsv1.3".into()),
            ..ConnFlags::basic()
        }
        .connect_options("pub")
        .ok()
        .and_then(|o| o.tls.map(|t| (o.port, t)));
        let (port, tls) = o.unwrap_or_default();
        assert_eq!(port, 8883);
        assert_eq!(
            tls.ca_path.as_deref(),
            Some(std::path::Path::new("/etc/ssl/certs"))
        );
        assert_eq!(tls.tls_version, Some(TlsVersion::Tls13));
        let bad = ConnFlags {
            cafile: Some("ca.crt".into()),
            tls_version: Some("sslv3".into()),
            ..ConnFlags::basic()
        }
        .connect_options("pub");
        assert!(bad.is_err_and(|e| e.0.contains("--tls-version")));
    }
}
