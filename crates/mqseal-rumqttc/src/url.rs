//! Broker URLs as `mosquitto_pub -L` takes them: `mqtt://[user[:password]@]host[:port][/topic]`
//! for plain TCP, `mqtts://…` for TLS.

use std::fmt;
use std::path::PathBuf;

use crate::error::Error;
use crate::options::ConnectOptions;
use crate::tls::TlsFiles;

/// Debian's bundle of the public CAs (`ca-certificates`). An `mqtts://` URL without a CA file
/// trusts the system's CAs through OpenSSL's default store (this file on Debian, or
/// `SSL_CERT_FILE`/`SSL_CERT_DIR`); a broker with a private CA needs its CA file instead.
pub const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// A parsed broker URL. `Debug` and [`Display`](fmt::Display) never show the password.
///
/// ```
/// use mqseal_rumqttc::BrokerUrl;
///
/// let url = BrokerUrl::parse("mqtts://sensor:s3cret@broker.example:8883/plant/7/temp")?;
/// assert!(url.tls);
/// assert_eq!((url.host.as_str(), url.port), ("broker.example", 8883));
/// assert_eq!(url.username.as_deref(), Some("sensor"));
/// assert_eq!(url.topic.as_deref(), Some("plant/7/temp"));
/// assert_eq!(url.to_string(), "mqtts://sensor:<redacted>@broker.example:8883/plant/7/temp");
///
/// // With the CA of a private broker; the port defaults to 8883 for mqtts, 1883 for mqtt.
/// let options = url.connect_options("sensor-7", Some("ca.crt".into()))?;
/// assert_eq!(options.tls.and_then(|t| t.ca_file), Some("ca.crt".into()));
/// # Ok::<(), mqseal_rumqttc::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    /// `mqtts://`: TLS; `mqtt://`: plain TCP.
    pub tls: bool,
    /// Host name or IP address (IPv6 without its brackets).
    pub host: String,
    /// Port: as given, else 8883 with TLS and 1883 without.
    pub port: u16,
    /// User name, if the URL has one.
    pub username: Option<String>,
    /// Password, if the URL has one (after the user name and a `:`).
    pub password: Option<String>,
    /// Topic (or topic filter): the path after the first `/` following the host, if any.
    pub topic: Option<String>,
}

impl BrokerUrl {
    /// Parses `mqtt://…` or `mqtts://…`. Percent signs are taken literally (as `mosquitto_pub`
    /// does); a password may contain `:` and `@` (the last `@` ends it). Errors never repeat
    /// the password.
    pub fn parse(url: &str) -> Result<BrokerUrl, Error> {
        let bad = |reason: &'static str| Error::InvalidUrl {
            url: redact(url),
            reason,
        };
        let (scheme, rest) = url
            .split_once("://")
            .ok_or(bad("it does not start with mqtt:// or mqtts://"))?;
        let tls = if scheme.eq_ignore_ascii_case("mqtts") {
            true
        } else if scheme.eq_ignore_ascii_case("mqtt") {
            false
        } else {
            return Err(bad("the scheme must be mqtt:// (TCP) or mqtts:// (TLS)"));
        };
        let (authority, topic) = match rest.split_once('/') {
            Some((authority, path)) => (authority, (!path.is_empty()).then(|| path.to_string())),
            None => (rest, None),
        };
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((userinfo, hostport)) => (Some(userinfo), hostport),
            None => (None, authority),
        };
        let (username, password) = match userinfo {
            None => (None, None),
            Some(info) => {
                let (user, password) = match info.split_once(':') {
                    Some((user, password)) => (user, Some(password.to_string())),
                    None => (info, None),
                };
                if user.is_empty() {
                    return Err(bad("the user name before '@' is empty"));
                }
                (Some(user.to_string()), password)
            }
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or(bad("an IPv6 address lacks its closing ']'"))?;
            match after {
                "" => (host, None),
                _ => (
                    host,
                    Some(
                        after
                            .strip_prefix(':')
                            .ok_or(bad("only ':port' may follow an IPv6 address"))?,
                    ),
                ),
            }
        } else {
            match hostport.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (hostport, None),
            }
        };
        if host.is_empty() {
            return Err(bad("the host is empty"));
        }
        let port = match port {
            None => {
                if tls {
                    8883
                } else {
                    1883
                }
            }
            Some(p) => match p.parse::<u16>() {
                Ok(p) if p != 0 => p,
                _ => return Err(bad("the port is not a number from 1 to 65535")),
            },
        };
        Ok(BrokerUrl {
            tls,
            host: host.to_string(),
            port,
            username,
            password,
            topic,
        })
    }

    /// Connection settings for this URL as `client_id`. With `mqtts://` the broker's
    /// certificate is checked against `ca_file`, or the system's CAs if `None`; a CA file
    /// with `mqtt://` is refused (the URL says plain TCP).
    pub fn connect_options(
        &self,
        client_id: impl Into<String>,
        ca_file: Option<PathBuf>,
    ) -> Result<ConnectOptions, Error> {
        let mut o = ConnectOptions::new(client_id, self.host.clone(), self.port);
        o.username = self.username.clone();
        o.password = self.password.clone();
        match (self.tls, ca_file) {
            (true, Some(ca)) => o.tls = Some(TlsFiles::ca(ca)),
            (true, None) => o.tls = Some(TlsFiles::os_certs()),
            (false, None) => {}
            (false, Some(_)) => {
                return Err(Error::InvalidUrl {
                    url: self.to_string(),
                    reason: "a CA file was given for an mqtt:// (plain TCP) URL: use mqtts:// \
                             for TLS",
                });
            }
        }
        Ok(o)
    }

    /// `host:port`, an IPv6 host in brackets (`[::1]:1883`), for messages.
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// `url` with any password replaced (for error messages).
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        // No authority part, so no user information to hide; keep it short.
        return url.chars().take(64).collect();
    };
    let (authority, path) = match rest.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (rest, None),
    };
    let authority = match authority.rsplit_once('@') {
        Some((info, host)) => match info.split_once(':') {
            Some((user, _)) => format!("{user}:<redacted>@{host}"),
            None => format!("{info}@{host}"),
        },
        None => authority.to_string(),
    };
    let mut out = format!("{scheme}://{authority}");
    if let Some(path) = path {
        out.push('/');
        out.push_str(path);
    }
    out
}

impl fmt::Display for BrokerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.tls { "mqtts://" } else { "mqtt://" })?;
        if let Some(user) = &self.username {
            f.write_str(user)?;
            if self.password.is_some() {
                f.write_str(":<redacted>")?;
            }
            f.write_str("@")?;
        }
        f.write_str(&self.address())?;
        if let Some(topic) = &self.topic {
            write!(f, "/{topic}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for BrokerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrokerUrl")
            .field("tls", &self.tls)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("topic", &self.topic)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_the_mosquitto_forms() {
        let u = BrokerUrl::parse("mqtt://127.0.0.1").unwrap();
        assert_eq!(
            (u.tls, u.host.as_str(), u.port, u.topic.as_deref()),
            (false, "127.0.0.1", 1883, None)
        );
        let u = BrokerUrl::parse("MQTTS://broker/").unwrap();
        assert_eq!((u.tls, u.port, u.topic.as_deref()), (true, 8883, None));
        let u = BrokerUrl::parse("mqtt://u:p:w@d@[::1]:1884/plant/+/temp").unwrap();
        assert_eq!(u.username.as_deref(), Some("u"));
        assert_eq!(u.password.as_deref(), Some("p:w@d"));
        assert_eq!((u.host.as_str(), u.port), ("::1", 1884));
        assert_eq!(u.topic.as_deref(), Some("plant/+/temp"));
        assert_eq!(u.to_string(), "mqtt://u:<redacted>@[::1]:1884/plant/+/temp");
        let u = BrokerUrl::parse("mqtt://only-user@h:2/a/#").unwrap();
        assert_eq!(
            (u.username.as_deref(), u.password.as_deref()),
            (Some("only-user"), None)
        );
        assert_eq!(u.topic.as_deref(), Some("a/#"));
    }

    #[test]
    fn refuses_bad_urls_without_showing_the_password() {
        for url in [
            "",
            "broker:1883",
            "http://broker",
            "mqtt://",
            "mqtt://:pw@host",
            "mqtt://user:hunter2@",
            "mqtt://user:hunter2@host:0",
            "mqtt://user:hunter2@host:65536",
            "mqtt://user:hunter2@host:x",
            "mqtt://user:hunter2@[::1",
            "mqtt://user:hunter2@[::1]x",
        ] {
            let e = BrokerUrl::parse(url).unwrap_err();
            assert!(matches!(e, Error::InvalidUrl { .. }), "{url}");
            assert_eq!(e.code(), 307);
            assert!(!e.to_string().contains("hunter2"), "{e}");
            assert!(!format!("{e:?}").contains("hunter2"), "{e:?}");
        }
        let u = BrokerUrl::parse("mqtts://user:hunter2@host").unwrap();
        assert!(!format!("{u:?}").contains("hunter2"));
        assert!(!u.to_string().contains("hunter2"));
    }

    #[test]
    fn connect_options_follow_the_scheme() {
        let u = BrokerUrl::parse("mqtts://a:b@host").unwrap();
        let o = u.connect_options("c", None).unwrap();
        assert_eq!(o.tls, Some(TlsFiles::os_certs()));
        assert_eq!(
            (o.username.as_deref(), o.password.as_deref()),
            (Some("a"), Some("b"))
        );
        let o = u.connect_options("c", Some("ca.pem".into())).unwrap();
        assert_eq!(o.tls.and_then(|t| t.ca_file), Some(PathBuf::from("ca.pem")));
        let plain = BrokerUrl::parse("mqtt://host:1").unwrap();
        assert!(plain.connect_options("c", None).unwrap().tls.is_none());
        let e = plain
            .connect_options("c", Some("ca.pem".into()))
            .unwrap_err();
        assert!(e.to_string().contains("mqtts://"), "{e}");
    }
}
