//! The broker's certificate, judged as `mosquitto_pub` judges it.
//!
//! rustls speaks TLS; this verifier replaces its webpki certificate check with OpenSSL's
//! `X509_verify_cert` (the function libmosquitto relies on), configured as libssl configures it
//! for a TLS client: purpose `sslserver`, the security level of the system's OpenSSL
//! configuration, the CAs of `--cafile`, `--capath` and/or the system's store. The host name is
//! then checked the way libmosquitto 2.0 checks it: a subjectAltName DNS entry (a leading `*.`
//! stands for one label) or IP entry equal to the host; the subject's CN only when there is no
//! DNS entry. That is why the X.509 v1 certificates `openssl x509 -req` makes without
//! `-extfile`, with only `CN=<the broker's IP>`, are accepted, as `mosquitto_pub` accepts them.
//!
//! A refusal carries a [`ServerCertProblem`] (inside `rustls::Error::InvalidCertificate`) that
//! [`explain`](crate::explain) turns into a reason and a fix naming the certificate's names,
//! issuer and dates.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Public};
use openssl::rsa::Padding;
use openssl::sign::{RsaPssSaltlen, Verifier};
use openssl::stack::Stack;
use openssl::x509::store::X509Store;
use openssl::x509::{X509, X509NameRef, X509Ref, X509StoreContext, X509VerifyResult};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, OtherError, SignatureScheme};

/// What is wrong with the broker's certificate.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerCertProblemKind {
    /// Not signed by a trusted CA (or by a CA of the same name with another key).
    Untrusted,
    /// The host name or IP address connected to is not one the certificate names.
    NameMismatch,
    /// A certificate of the chain has expired.
    Expired,
    /// A certificate of the chain is not valid yet.
    NotYetValid,
    /// Anything else OpenSSL refuses (purpose, weak key or digest, malformed…).
    Refused,
}

/// Why the broker's certificate was refused: reason and fix in a Mosquitto user's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerCertProblem {
    /// The class of problem.
    pub kind: ServerCertProblemKind,
    /// What is wrong (names, issuer, dates).
    pub reason: String,
    /// What to do about it.
    pub fix: String,
}

impl fmt::Display for ServerCertProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}; {}", self.reason, self.fix)
    }
}

impl std::error::Error for ServerCertProblem {}

/// Certificate verification by OpenSSL, host name check as libmosquitto's.
pub(crate) struct OpenSslVerifier {
    pub(crate) store: X509Store,
    /// Where the trusted CAs come from, for messages ("--cafile ca.crt (CN=My CA)").
    pub(crate) trusted: String,
    /// `--insecure`: no host name check (the chain is still verified).
    pub(crate) insecure: bool,
}

impl fmt::Debug for OpenSslVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenSslVerifier")
            .field("trusted", &self.trusted)
            .field("insecure", &self.insecure)
            .finish_non_exhaustive()
    }
}

fn bad_encoding() -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::BadEncoding)
}

fn problem(kind: ServerCertProblemKind, reason: String, fix: String) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(
        ServerCertProblem { kind, reason, fix },
    ))))
}

/// Text from the broker (names in its certificate) made safe to print: no control characters,
/// at most 120 characters.
fn printable(s: &str) -> String {
    let mut out: String = s
        .chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .take(120)
        .collect();
    if s.chars().count() > 120 {
        out.push('…');
    }
    out
}

/// `CN=127.0.0.1, O=Acme` for a distinguished name.
pub(crate) fn dn(name: &X509NameRef) -> String {
    let parts: Vec<String> = name
        .entries()
        .map(|e| {
            let key = e.object().nid().short_name().unwrap_or("?");
            let value = e.data().to_string().unwrap_or_else(|_| "?".into());
            format!("{key}={value}")
        })
        .collect();
    if parts.is_empty() {
        "(empty name)".into()
    } else {
        printable(&parts.join(", "))
    }
}

/// The names a certificate is valid for, as libmosquitto reads them.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct CertNames {
    /// subjectAltName DNS entries.
    pub dns: Vec<String>,
    /// subjectAltName IP entries.
    pub ips: Vec<IpAddr>,
    /// The first CN of the subject.
    pub cn: Option<String>,
}

impl CertNames {
    pub(crate) fn of(cert: &X509Ref) -> CertNames {
        let mut names = CertNames::default();
        if let Some(san) = cert.subject_alt_names() {
            for general in san.iter() {
                if let Some(d) = general.dnsname() {
                    names.dns.push(d.to_string());
                } else if let Some(ip) = general.ipaddress() {
                    if let Ok(v4) = <[u8; 4]>::try_from(ip) {
                        names.ips.push(IpAddr::from(v4));
                    } else if let Ok(v6) = <[u8; 16]>::try_from(ip) {
                        names.ips.push(IpAddr::from(v6));
                    }
                }
            }
        }
        names.cn = cert
            .subject_name()
            .entries_by_nid(Nid::COMMONNAME)
            .next()
            .and_then(|e| e.data().to_string().ok());
        names
    }

    /// Whether `host` (as typed with `-h`) is one of these names, by libmosquitto's rule.
    pub(crate) fn matches(&self, host: &str) -> bool {
        let ip: Option<IpAddr> = host.parse().ok();
        if self.dns.iter().any(|d| name_matches(d, host)) {
            return true;
        }
        if let Some(ip) = ip
            && self.ips.contains(&ip)
        {
            return true;
        }
        // The CN counts only when there is no DNS entry (IP entries do not hide it).
        self.dns.is_empty() && self.cn.as_deref().is_some_and(|cn| name_matches(cn, host))
    }

    /// "subjectAltName DNS:a, IP:1.2.3.4; CN=b (not used: ...)" for messages.
    pub(crate) fn describe(&self) -> String {
        let mut san: Vec<String> = self.dns.iter().map(|d| format!("DNS:{d}")).collect();
        san.extend(self.ips.iter().map(|ip| format!("IP:{ip}")));
        let cn = match &self.cn {
            Some(cn) if self.dns.is_empty() => format!("CN={cn}"),
            Some(cn) => format!("CN={cn} (not used: the certificate has DNS names)"),
            None => "no CN".into(),
        };
        let text = if san.is_empty() {
            format!("{cn}, no subjectAltName")
        } else {
            format!("subjectAltName {}; {cn}", san.join(", "))
        };
        printable(&text)
    }

    /// The first name one can connect with (for the fix).
    pub(crate) fn first(&self) -> Option<String> {
        self.dns
            .iter()
            .find(|d| !d.starts_with('*'))
            .cloned()
            .or_else(|| self.ips.first().map(|ip| ip.to_string()))
            .or_else(|| self.cn.clone().filter(|_| self.dns.is_empty()))
            .map(|n| printable(&n))
    }
}

/// libmosquitto's comparison: case-insensitive; `*.rest` matches a host whose part after its
/// first dot is `rest`. A name with a NUL never matches (C would stop at it).
pub(crate) fn name_matches(pattern: &str, host: &str) -> bool {
    if pattern.contains('\0') || host.is_empty() {
        return false;
    }
    match pattern.strip_prefix('*') {
        None => pattern.eq_ignore_ascii_case(host),
        Some(rest) => {
            let Some(suffix) = rest.strip_prefix('.') else {
                return false;
            };
            let without_last = host.get(..host.len() - 1).unwrap_or("");
            let after_first_label = match without_last.find('.') {
                Some(dot) => host.get(dot + 1..).unwrap_or(""),
                None => host,
            };
            suffix.eq_ignore_ascii_case(after_first_label)
        }
    }
}

fn host_text(name: &ServerName<'_>) -> String {
    match name {
        ServerName::DnsName(d) => d.as_ref().to_string(),
        ServerName::IpAddress(ip) => IpAddr::from(*ip).to_string(),
        other => format!("{other:?}"),
    }
}

impl OpenSslVerifier {
    fn chain_problem(
        &self,
        error: X509VerifyResult,
        depth: u32,
        at: &X509Ref,
        leaf: &X509Ref,
    ) -> rustls::Error {
        use ServerCertProblemKind as K;
        let which = if depth == 0 {
            format!("the broker's certificate ({})", dn(leaf.subject_name()))
        } else {
            format!(
                "the CA certificate {} in the broker's chain",
                dn(at.subject_name())
            )
        };
        let issuer = dn(at.issuer_name());
        match error.as_raw() {
            // A CA of the issuer's name is trusted, but its key did not sign this certificate.
            7 => problem(
                K::Untrusted,
                format!(
                    "the broker's certificate is not trusted: {which} names {issuer} as its \
                     issuer, but the trusted CA of that name ({}) did not sign it (another CA \
                     with the same name) [OpenSSL: {}]",
                    self.trusted,
                    error.error_string()
                ),
                format!(
                    "pass the ca.crt that signed the broker's certificate (subject {issuer}) \
                     with --cafile: `openssl verify -CAfile ca.crt server.crt` must say OK"
                ),
            ),
            // unable to get issuer (locally), unable to verify the first certificate, self
            // signed (in chain): not signed by a CA we trust.
            2 | 18 | 19 | 20 | 21 => problem(
                K::Untrusted,
                format!(
                    "the broker's certificate is not trusted: it ({}) is signed by {issuer}, \
                     which is not among the trusted CAs: {} [OpenSSL: {}]",
                    dn(leaf.subject_name()),
                    self.trusted,
                    error.error_string()
                ),
                format!(
                    "pass the certificate of the CA that signed the broker's certificate \
                     (subject {issuer}: the ca.crt made on the broker) with --cafile, or a \
                     directory holding it with --capath"
                ),
            ),
            9 => problem(
                K::NotYetValid,
                format!(
                    "{which} is not valid yet: valid from {} to {}",
                    at.not_before(),
                    at.not_after()
                ),
                "check this machine's clock (and the broker's), or re-issue the certificate".into(),
            ),
            10 => problem(
                K::Expired,
                format!(
                    "{which} has expired: valid from {} to {}",
                    at.not_before(),
                    at.not_after()
                ),
                "renew it on the broker (openssl x509 -req ... -days N), restart Mosquitto; or \
                 check this machine's clock"
                    .into(),
            ),
            26 => problem(
                K::Refused,
                format!("{which} is not for TLS servers (its extendedKeyUsage lacks serverAuth)"),
                "re-issue the broker's certificate with extendedKeyUsage=serverAuth, or without \
                 extendedKeyUsage"
                    .into(),
            ),
            66..=68 => problem(
                K::Refused,
                format!(
                    "{which} is too weak for this system's OpenSSL security level: {}",
                    error.error_string()
                ),
                "re-issue it with an RSA key of at least 2048 bits (openssl genrsa -out \
                 server.key 2048) and SHA-256"
                    .into(),
            ),
            _ => problem(
                K::Refused,
                format!(
                    "OpenSSL refused {which}: {} (issuer {issuer})",
                    error.error_string()
                ),
                "check the broker's certificate chain with `openssl verify -CAfile ca.crt \
                 server.crt`"
                    .into(),
            ),
        }
    }
}

impl ServerCertVerifier for OpenSslVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let internal = |e: openssl::error::ErrorStack| {
            rustls::Error::General(format!("OpenSSL certificate check failed: {e}"))
        };
        let leaf = X509::from_der(end_entity.as_ref()).map_err(|_| bad_encoding())?;
        let mut chain = Stack::new().map_err(internal)?;
        for cert in intermediates {
            let cert = X509::from_der(cert.as_ref()).map_err(|_| bad_encoding())?;
            chain.push(cert).map_err(internal)?;
        }
        let mut ctx = X509StoreContext::new().map_err(internal)?;
        let failed = ctx
            .init(&self.store, &leaf, &chain, |c| {
                Ok(if c.verify_cert()? {
                    None
                } else {
                    Some((
                        c.error(),
                        c.error_depth(),
                        c.current_cert().map(|x| x.to_owned()),
                    ))
                })
            })
            .map_err(internal)?;
        if let Some((error, depth, at)) = failed {
            let at = at.unwrap_or_else(|| leaf.clone());
            return Err(self.chain_problem(error, depth, &at, &leaf));
        }
        if !self.insecure {
            let host = host_text(server_name);
            let names = CertNames::of(&leaf);
            if !names.matches(&host) {
                let connect = names
                    .first()
                    .map(|n| format!("connect with -h {n} (a name it lists), or "))
                    .unwrap_or_default();
                return Err(problem(
                    ServerCertProblemKind::NameMismatch,
                    format!(
                        "the broker's certificate does not name the host \"{}\": it lists {}",
                        printable(&host),
                        names.describe()
                    ),
                    format!(
                        "{connect}re-issue the broker's certificate for \"{}\" (as its CN, or \
                         in subjectAltName); --insecure skips this check (testing only)",
                        printable(&host)
                    ),
                ));
            }
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_signature(message, cert, dss, false)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_signature(message, cert, dss, true)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        SCHEMES.to_vec()
    }
}

const SCHEMES: [SignatureScheme; 10] = [
    SignatureScheme::ECDSA_NISTP384_SHA384,
    SignatureScheme::ECDSA_NISTP256_SHA256,
    SignatureScheme::ECDSA_NISTP521_SHA512,
    SignatureScheme::ED25519,
    SignatureScheme::RSA_PSS_SHA512,
    SignatureScheme::RSA_PSS_SHA384,
    SignatureScheme::RSA_PSS_SHA256,
    SignatureScheme::RSA_PKCS1_SHA512,
    SignatureScheme::RSA_PKCS1_SHA384,
    SignatureScheme::RSA_PKCS1_SHA256,
];

enum Alg {
    Pkcs1(MessageDigest),
    Pss(MessageDigest),
    Ecdsa(MessageDigest, Nid),
    Ed25519,
}

/// The server's handshake signature, checked with the public key of its certificate (OpenSSL:
/// rustls's own check would parse the certificate with webpki, which refuses X.509 v1).
fn verify_signature(
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
    tls13: bool,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    use SignatureScheme as S;
    let bad = || rustls::Error::InvalidCertificate(CertificateError::BadSignature);
    let alg = match dss.scheme {
        S::RSA_PKCS1_SHA256 if !tls13 => Alg::Pkcs1(MessageDigest::sha256()),
        S::RSA_PKCS1_SHA384 if !tls13 => Alg::Pkcs1(MessageDigest::sha384()),
        S::RSA_PKCS1_SHA512 if !tls13 => Alg::Pkcs1(MessageDigest::sha512()),
        S::RSA_PSS_SHA256 => Alg::Pss(MessageDigest::sha256()),
        S::RSA_PSS_SHA384 => Alg::Pss(MessageDigest::sha384()),
        S::RSA_PSS_SHA512 => Alg::Pss(MessageDigest::sha512()),
        S::ECDSA_NISTP256_SHA256 => Alg::Ecdsa(MessageDigest::sha256(), Nid::X9_62_PRIME256V1),
        S::ECDSA_NISTP384_SHA384 => Alg::Ecdsa(MessageDigest::sha384(), Nid::SECP384R1),
        S::ECDSA_NISTP521_SHA512 => Alg::Ecdsa(MessageDigest::sha512(), Nid::SECP521R1),
        S::ED25519 => Alg::Ed25519,
        other => {
            return Err(rustls::Error::General(format!(
                "the broker signed the handshake with {other:?}, which was not offered"
            )));
        }
    };
    let x509 = X509::from_der(cert.as_ref()).map_err(|_| bad_encoding())?;
    let key: PKey<Public> = x509.public_key().map_err(|_| bad_encoding())?;
    let kind_ok = match &alg {
        Alg::Pkcs1(_) | Alg::Pss(_) => key.id() == Id::RSA || key.id() == Id::RSA_PSS,
        Alg::Ecdsa(_, curve) => {
            key.id() == Id::EC
                && (!tls13
                    || key
                        .ec_key()
                        .ok()
                        .and_then(|k| k.group().curve_name())
                        .is_some_and(|n| n == *curve))
        }
        Alg::Ed25519 => key.id() == Id::ED25519,
    };
    if !kind_ok {
        return Err(bad());
    }
    let ok = match alg {
        Alg::Pkcs1(md) | Alg::Ecdsa(md, _) => {
            Verifier::new(md, &key).and_then(|mut v| v.verify_oneshot(dss.signature(), message))
        }
        Alg::Pss(md) => Verifier::new(md, &key).and_then(|mut v| {
            v.set_rsa_padding(Padding::PKCS1_PSS)?;
            v.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH)?;
            v.set_rsa_mgf1_md(md)?;
            v.verify_oneshot(dss.signature(), message)
        }),
        Alg::Ed25519 => Verifier::new_without_digest(&key)
            .and_then(|mut v| v.verify_oneshot(dss.signature(), message)),
    };
    match ok {
        Ok(true) => Ok(HandshakeSignatureValid::assertion()),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_match_as_libmosquitto_matches_them() {
        assert!(name_matches("Broker.Lan", "broker.lan"));
        assert!(name_matches("*.lan", "broker.lan"));
        assert!(!name_matches("*.lan", "a.broker.lan"));
        assert!(!name_matches("*.broker.lan", "broker.lan"));
        // libmosquitto's quirk, kept: a host with one label is compared whole.
        assert!(name_matches("*.lan", "lan"));
        assert!(!name_matches("*lan", "broker.lan"));
        assert!(!name_matches("good\0.evil", "good"));
        assert!(!name_matches("x", ""));
        assert!(!name_matches("*.", "a."));

        // The seeds' certificate: CN = the broker's IP, no subjectAltName.
        let v1 = CertNames {
            cn: Some("192.168.56.20".into()),
            ..CertNames::default()
        };
        assert!(v1.matches("192.168.56.20"));
        assert!(!v1.matches("broker"));
        assert_eq!(v1.first().as_deref(), Some("192.168.56.20"));
        assert_eq!(v1.describe(), "CN=192.168.56.20, no subjectAltName");
        // DNS entries hide the CN; IP entries do not.
        let dns = CertNames {
            dns: vec!["broker".into()],
            cn: Some("10.0.0.1".into()),
            ..CertNames::default()
        };
        assert!(dns.matches("broker") && !dns.matches("10.0.0.1"));
        let ip = CertNames {
            ips: vec!["10.0.0.2".parse().unwrap_or(IpAddr::from([0u8; 4]))],
            cn: Some("broker".into()),
            ..CertNames::default()
        };
        assert!(ip.matches("10.0.0.2") && ip.matches("broker") && !ip.matches("10.0.0.3"));
        assert!(ip.describe().contains("IP:10.0.0.2"));
    }

    #[test]
    fn printable_escapes_and_shortens_broker_text() {
        assert_eq!(printable("a\nb"), "a\\nb");
        let long = "x".repeat(500);
        assert_eq!(printable(&long).chars().count(), 121);
    }
}
