//! Connection settings in the terms of `mosquitto_pub`/`mosquitto_sub` (`-h -p -u -P --cafile
//! --cert --key`), turned into rumqttc options for MQTT v3.1.1 or v5.

use std::fmt;
use std::time::Duration;

use crate::error::Error;
use crate::tls::TlsFiles;

/// Where and how to connect. `Debug` shows whether a password is set, never the password.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectOptions {
    /// Client identifier (must be unique on the broker).
    pub client_id: String,
    /// `-h`: broker host name or IP address (for TLS, a name in the broker certificate).
    pub host: String,
    /// `-p`: broker port.
    pub port: u16,
    /// `-u`: username.
    pub username: Option<String>,
    /// `-P`: password (only sent with a username, as `mosquitto_pub` does).
    pub password: Option<String>,
    /// TLS files; `None` for a plain TCP listener.
    pub tls: Option<TlsFiles>,
    /// Keep-alive interval.
    pub keep_alive: Duration,
    /// Start a clean session (v3.1.1 clean session, v5 clean start).
    pub clean_session: bool,
    /// Largest packet sent or accepted, in bytes (both directions).
    pub max_packet_size: usize,
}

impl fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("client_id", &self.client_id)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("tls", &self.tls)
            .field("keep_alive", &self.keep_alive)
            .field("clean_session", &self.clean_session)
            .field("max_packet_size", &self.max_packet_size)
            .finish()
    }
}

impl ConnectOptions {
    /// Plain TCP to `host:port` as `client_id`, clean session, 60 s keep-alive, 1 MiB packets.
    pub fn new(client_id: impl Into<String>, host: impl Into<String>, port: u16) -> ConnectOptions {
        ConnectOptions {
            client_id: client_id.into(),
            host: host.into(),
            port,
            username: None,
            password: None,
            tls: None,
            keep_alive: Duration::from_secs(60),
            clean_session: true,
            max_packet_size: 1 << 20,
        }
    }

    /// Sets username and password.
    pub fn credentials(mut self, username: impl Into<String>, password: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self.password = Some(password.into());
        self
    }

    /// Uses TLS with these files.
    pub fn tls(mut self, tls: TlsFiles) -> Self {
        self.tls = Some(tls);
        self
    }

    /// MQTT v3.1.1 options (TLS files are read here: errors name the file and the fix).
    pub fn v4(&self) -> Result<rumqttc::MqttOptions, Error> {
        let mut o = rumqttc::MqttOptions::new(&self.client_id, &self.host, self.port);
        o.set_keep_alive(self.keep_alive)
            .set_clean_session(self.clean_session)
            .set_max_packet_size(self.max_packet_size, self.max_packet_size);
        if let Some(user) = &self.username {
            o.set_credentials(user, self.password.as_deref().unwrap_or(""));
        }
        if let Some(tls) = &self.tls {
            o.set_transport(tls.transport()?);
        }
        Ok(o)
    }

    /// MQTT v5 options (TLS files are read here).
    pub fn v5(&self) -> Result<rumqttc::v5::MqttOptions, Error> {
        let mut o = rumqttc::v5::MqttOptions::new(&self.client_id, &self.host, self.port);
        let max = u32::try_from(self.max_packet_size).unwrap_or(u32::MAX);
        o.set_keep_alive(self.keep_alive)
            .set_clean_start(self.clean_session)
            .set_max_packet_size(Some(max));
        if let Some(user) = &self.username {
            o.set_credentials(user, self.password.as_deref().unwrap_or(""));
        }
        if let Some(tls) = &self.tls {
            o.set_transport(tls.transport()?);
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn flags_reach_rumqttc_options() {
        let o = ConnectOptions::new("c1", "127.0.0.1", 18830).credentials("u", "p");
        let v4 = o.v4().unwrap();
        assert_eq!(v4.broker_address(), ("127.0.0.1".to_string(), 18830));
        let login = v4.credentials().unwrap();
        assert_eq!(
            (login.username.as_str(), login.password.as_str()),
            ("u", "p")
        );
        assert_eq!(v4.max_packet_size(), 1 << 20);
        let v5 = o.v5().unwrap();
        assert_eq!(v5.max_packet_size(), Some(1 << 20));
        assert!(
            o.clone()
                .tls(TlsFiles::ca("/nonexistent/ca.crt"))
                .v4()
                .is_err()
        );
    }
}
