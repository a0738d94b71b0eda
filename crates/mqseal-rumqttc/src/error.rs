//! The one error type of the wrapper, with stable numeric codes.

use std::fmt;
use std::path::PathBuf;

/// Everything the wrapper itself can refuse. Messages that fail to *open* are not errors of the
/// client: they arrive as [`Event::Rejected`](crate::Event::Rejected).
///
/// New variants may be added; match with a wildcard arm. Each variant has a stable
/// [`code`](Error::code): a sealing failure keeps the core's code (1–99), the wrapper's own
/// errors are 301 and up (`spec/mqseal-v2.md` section 9: one number space for every crate and
/// binding).
#[non_exhaustive]
#[derive(Debug)]
pub enum Error {
    /// Sealing failed in the core crate (no key covers the topic, invalid topic, sequence numbers
    /// exhausted…).
    Seal(mqseal::Error),
    /// The sealed message would not fit in one MQTT packet of the negotiated maximum size.
    PacketTooLarge {
        /// Size of the PUBLISH packet the sealed message would need.
        size: usize,
        /// The maximum packet size in force.
        max: usize,
    },
    /// The client's event loop is gone (dropped, or the connection was shut down).
    ClientClosed,
    /// `try_*` only: the request channel to the event loop is full; poll the event loop.
    ChannelFull,
    /// The persistent sealer could not reserve sequence numbers (store I/O error, lock…);
    /// nothing was published.
    Sequence(String),
    /// A subscription topic filter is not valid MQTT (nothing was sent).
    InvalidFilter {
        /// The filter (shortened if long).
        filter: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A TLS file could not be used.
    Tls {
        /// The file at fault.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
        /// What to do about it.
        fix: &'static str,
    },
    /// A TLS option (`--tls-version`, `--ciphers`, the CA sources) cannot be honoured.
    TlsOption {
        /// The `mosquitto_pub` flag at fault.
        option: &'static str,
        /// What is wrong with it.
        reason: String,
        /// What to do about it.
        fix: &'static str,
    },
    /// A broker URL is not `mqtt://[user[:password]@]host[:port][/topic]` or `mqtts://…`.
    InvalidUrl {
        /// The URL with any password replaced by `<redacted>`.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl Error {
    /// The stable numeric code of this error: the core's code for [`Error::Seal`], else 301 and
    /// up.
    pub fn code(&self) -> u32 {
        match self {
            Error::Seal(e) => e.code(),
            Error::PacketTooLarge { .. } => 301,
            Error::ClientClosed => 302,
            Error::ChannelFull => 303,
            Error::Sequence(_) => 304,
            Error::Tls { .. } => 305,
            Error::InvalidFilter { .. } => 306,
            Error::InvalidUrl { .. } => 307,
            Error::TlsOption { .. } => 308,
        }
    }

    /// A stable snake_case name (the core's name for [`Error::Seal`]).
    pub fn name(&self) -> &'static str {
        match self {
            Error::Seal(e) => e.name(),
            Error::PacketTooLarge { .. } => "packet_too_large",
            Error::ClientClosed => "client_closed",
            Error::ChannelFull => "channel_full",
            Error::Sequence(_) => "sequence",
            Error::Tls { .. } => "tls",
            Error::InvalidFilter { .. } => "invalid_subscription_filter",
            Error::InvalidUrl { .. } => "invalid_url",
            Error::TlsOption { .. } => "tls_option",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Seal(mqseal::Error::KeyNotFound) => {
                f.write_str("cannot seal: no held key covers this topic")
            }
            Error::Seal(e) => write!(f, "cannot seal: {e}"),
            Error::PacketTooLarge { size, max } => write!(
                f,
                "sealed message needs a {size}-byte packet, more than the maximum packet size \
                 {max} (send a smaller payload or raise the limit on client and broker)"
            ),
            Error::ClientClosed => f.write_str("the MQTT event loop is gone"),
            Error::ChannelFull => {
                f.write_str("the request channel is full (poll the event loop, then retry)")
            }
            Error::Sequence(e) => write!(f, "cannot reserve sequence numbers: {e}"),
            Error::Tls { path, reason, fix } => {
                write!(f, "{}: {reason}; {fix}", path.display())
            }
            Error::TlsOption {
                option,
                reason,
                fix,
            } => write!(f, "{option}: {reason}; {fix}"),
            Error::InvalidFilter { filter, reason } => {
                write!(f, "invalid topic filter {filter:?}: {reason}")
            }
            Error::InvalidUrl { url, reason } => write!(
                f,
                "invalid broker URL {url:?}: {reason} (the form is \
                 mqtt[s]://[user[:password]@]host[:port][/topic])"
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Seal(e) => Some(e),
            _ => None,
        }
    }
}

impl From<mqseal::Error> for Error {
    fn from(e: mqseal::Error) -> Error {
        Error::Seal(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_and_distinct() {
        let all = [
            Error::Seal(mqseal::Error::KeyNotFound),
            Error::PacketTooLarge { size: 2, max: 1 },
            Error::ClientClosed,
            Error::ChannelFull,
            Error::Sequence("disk full".into()),
            Error::Tls {
                path: "ca.crt".into(),
                reason: "missing".into(),
                fix: "check the path",
            },
            Error::InvalidFilter {
                filter: "a/#/b".into(),
                reason: "'#' must be the last level",
            },
            Error::InvalidUrl {
                url: "http://x".into(),
                reason: "the scheme must be mqtt:// (TCP) or mqtts:// (TLS)",
            },
            Error::TlsOption {
                option: "--ciphers",
                reason: "unknown cipher".into(),
                fix: "list known ones",
            },
        ];
        assert_eq!(all[0].code(), mqseal::Error::KeyNotFound.code());
        assert_eq!(all[0].name(), "key_not_found");
        for (i, e) in all.iter().enumerate().skip(1) {
            assert_eq!(e.code() as usize, 300 + i);
            assert!(!e.to_string().is_empty());
        }
        assert_eq!(
            Error::Seal(mqseal::Error::KeyNotFound).to_string(),
            "cannot seal: no held key covers this topic"
        );
    }
}
