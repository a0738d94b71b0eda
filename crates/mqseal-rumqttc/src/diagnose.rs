//! Human explanations of connection failures: what happened and how to fix it.

use std::error::Error as StdError;
use std::fmt;
use std::io;

use crate::verify::{ServerCertProblem, ServerCertProblemKind};

/// Why a connection to the broker failed, in words a Mosquitto user acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectFailure {
    /// Broad class of the failure.
    pub kind: FailureKind,
    /// What happened (includes the underlying error).
    pub reason: String,
    /// What to do about it.
    pub fix: String,
}

/// Classes of connection failures.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Nothing accepts connections at the address (broker down, wrong host or port).
    Unreachable,
    /// The broker's certificate is not trusted (not signed by a CA of `--cafile`/`--capath`,
    /// or refused by OpenSSL for another reason).
    BadServerCertificate,
    /// The broker's certificate does not name the host connected to (`-h`).
    ServerNameMismatch,
    /// The broker's certificate (or its CA's) has expired or is not valid yet.
    ServerCertificateExpired,
    /// The broker refused our client certificate, or wanted one (mTLS).
    ClientCertificateRefused,
    /// Other TLS failure (plain listener spoken to with TLS or the reverse, protocol mismatch).
    Tls,
    /// The broker refused the credentials or the client (CONNACK refusal).
    NotAuthorized,
    /// Anything else (timeouts, protocol errors, connection reset).
    Other,
}

impl fmt::Display for ConnectFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}; {}", self.reason, self.fix)
    }
}

/// Explains a v3.1.1 connection error.
pub fn explain(error: &rumqttc::ConnectionError) -> ConnectFailure {
    use rumqttc::ConnectionError as E;
    match error {
        E::ConnectionRefused(code) => refused(format!("{code:?}")),
        E::Io(e) => explain_io(e),
        E::Tls(e) => explain_tls_chain(error, &format!("TLS: {e}")),
        E::MqttState(rumqttc::StateError::Io(e)) => explain_io(e),
        other => explain_tls_chain(other, &other.to_string()),
    }
}

/// Explains an MQTT v5 connection error.
pub fn explain_v5(error: &rumqttc::v5::ConnectionError) -> ConnectFailure {
    use rumqttc::v5::ConnectionError as E;
    match error {
        E::ConnectionRefused(code) => refused(format!("{code:?}")),
        E::Io(e) => explain_io(e),
        other => explain_tls_chain(other, &other.to_string()),
    }
}

fn failure(kind: FailureKind, reason: String, fix: &str) -> ConnectFailure {
    ConnectFailure {
        kind,
        reason,
        fix: fix.to_string(),
    }
}

fn refused(code: String) -> ConnectFailure {
    // Mosquitto answers a wrong password with "not authorised" (v3.1.1 code 5) as often as
    // with "bad user name or password" (code 4): both mean the credentials.
    let fix =
        if code.contains("UserName") || code.contains("Password") || code.contains("NotAuthorized")
        {
            "check the username and password (-u/-P) against the broker's password_file (made \
         with mosquitto_passwd); without -u, the broker does not allow anonymous clients \
         (allow_anonymous false)"
        } else {
            "check -u/-P, the client id and the broker's ACL/allow_anonymous settings"
        };
    failure(
        FailureKind::NotAuthorized,
        format!("the broker refused the connection ({code})"),
        fix,
    )
}

fn explain_io(e: &io::Error) -> ConnectFailure {
    if let Some(tls) = find_rustls(e) {
        return explain_rustls(tls);
    }
    match e.kind() {
        io::ErrorKind::ConnectionRefused | io::ErrorKind::AddrNotAvailable => failure(
            FailureKind::Unreachable,
            format!("cannot reach the broker: {e}"),
            "is the broker running? check the host and port (-h/-p)",
        ),
        io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset => failure(
            FailureKind::Other,
            format!("the broker closed the connection: {e}"),
            "a TLS listener needs --cafile (and --cert/--key if it requires a client \
             certificate); a plain listener needs no TLS flags; see the broker's log",
        ),
        _ => failure(
            FailureKind::Other,
            format!("connection failed: {e}"),
            "check the host, port and network; see the broker's log",
        ),
    }
}

fn explain_tls_chain(error: &(dyn StdError + 'static), text: &str) -> ConnectFailure {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(e) = cur {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return explain_rustls(tls);
        }
        if let Some(io) = e.downcast_ref::<io::Error>() {
            return explain_io(io);
        }
        cur = e.source();
    }
    failure(FailureKind::Other, text.to_string(), "see the broker's log")
}

fn find_rustls(e: &io::Error) -> Option<&rustls::Error> {
    e.get_ref()?.downcast_ref::<rustls::Error>()
}

fn explain_rustls(e: &rustls::Error) -> ConnectFailure {
    use rustls::AlertDescription as A;
    match e {
        rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other)) => {
            match other.0.downcast_ref::<ServerCertProblem>() {
                Some(p) => ConnectFailure {
                    kind: match p.kind {
                        ServerCertProblemKind::NameMismatch => FailureKind::ServerNameMismatch,
                        ServerCertProblemKind::Expired | ServerCertProblemKind::NotYetValid => {
                            FailureKind::ServerCertificateExpired
                        }
                        _ => FailureKind::BadServerCertificate,
                    },
                    reason: p.reason.clone(),
                    fix: p.fix.clone(),
                },
                None => bad_server_certificate(e),
            }
        }
        rustls::Error::InvalidCertificate(_) => bad_server_certificate(e),
        // A certificate was sent and refused: signed by a CA the broker does not trust.
        rustls::Error::AlertReceived(
            A::BadCertificate | A::UnknownCA | A::CertificateUnknown | A::AccessDenied,
        ) => failure(
            FailureKind::ClientCertificateRefused,
            format!("the broker refused the TLS handshake ({e})"),
            "the broker requires a client certificate signed by a CA it trusts and refused \
             this one: pass --cert and --key of a certificate signed by the CA of the broker's \
             cafile",
        ),
        rustls::Error::AlertReceived(A::CertificateExpired) => failure(
            FailureKind::ClientCertificateRefused,
            format!("the broker refused the TLS handshake ({e})"),
            "the broker refused the client certificate of --cert as expired: renew it \
             (openssl x509 -req ... -days N)",
        ),
        // No certificate (or none the broker could use) was sent.
        rustls::Error::AlertReceived(A::CertificateRequired | A::HandshakeFailure) => failure(
            FailureKind::ClientCertificateRefused,
            format!("the broker refused the TLS handshake ({e})"),
            "the broker requires a client certificate signed by a CA it trusts: pass --cert \
             and --key (require_certificate true)",
        ),
        other => failure(
            FailureKind::Tls,
            format!("TLS failed: {other}"),
            "check that the port is a TLS listener and the files are the right ones",
        ),
    }
}

fn bad_server_certificate(e: &rustls::Error) -> ConnectFailure {
    failure(
        FailureKind::BadServerCertificate,
        format!("the broker's certificate is not trusted: {e}"),
        "pass the CA that signed the broker's certificate with --cafile, and connect with a \
         host name or IP the certificate names",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_tcp_and_bad_credentials_have_fixes() {
        let e = rumqttc::ConnectionError::Io(io::Error::from(io::ErrorKind::ConnectionRefused));
        let f = explain(&e);
        assert_eq!(f.kind, FailureKind::Unreachable);
        assert!(f.fix.contains("-h/-p"));
        let e = rumqttc::ConnectionError::ConnectionRefused(
            rumqttc::ConnectReturnCode::BadUserNamePassword,
        );
        let f = explain(&e);
        assert_eq!(f.kind, FailureKind::NotAuthorized);
        assert!(f.fix.contains("-u/-P"));
        let tls = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        );
        let f = explain(&rumqttc::ConnectionError::Io(tls));
        assert_eq!(f.kind, FailureKind::BadServerCertificate);
        assert!(f.to_string().contains("--cafile"));
    }
}
