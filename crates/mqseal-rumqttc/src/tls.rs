//! TLS to the broker with `mosquitto_pub`'s flags (`--cafile --capath --tls-use-os-certs --cert
//! --key --insecure --tls-version --ciphers`) and `mosquitto_pub`'s verdicts.
//!
//! Design: rustls speaks TLS (the `ring` provider, handed to rustls per connection: nothing
//! process-wide is installed; rumqttc is built with `use-rustls-no-provider`, without aws-lc).
//! The broker's certificate is verified by OpenSSL (`X509_verify_cert`, as libmosquitto does)
//! and its host name by libmosquitto's rule, see [`crate::verify`]: the X.509 v1, CN-only
//! certificates of the usual Mosquitto walkthroughs are accepted as `mosquitto_pub` accepts
//! them, and whatever OpenSSL refuses (unknown CA, expired, weak key) is refused with a reason
//! naming the certificate. Client certificates and keys are read by OpenSSL too (PEM: PKCS#8,
//! PKCS#1, SEC1, encrypted with a passphrase) and sent as they are, v1 or not.
//!
//! Limits, all reported as errors: TLS 1.2 and 1.3 only (rustls; Mosquitto with OpenSSL 3
//! refuses older versions by default too), and the ECDHE AES-GCM/ChaCha20 suites (those every
//! Mosquitto offers by default).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openssl::pkey::{PKey, Private};
use openssl::ssl::{SslContext, SslFiletype, SslMethod};
use openssl::x509::store::{X509Lookup, X509StoreBuilder};
use openssl::x509::verify::X509VerifyParam;
use openssl::x509::{X509, X509PurposeId};
use rustls::client::ResolvesClientCert;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, SignatureScheme, SupportedCipherSuite};

use crate::error::Error;
use crate::verify::{OpenSslVerifier, dn};

/// `--tls-version`, with libmosquitto's meaning: the oldest version accepted, except
/// `tlsv1.3` which is the only one (default: TLS 1.2 or 1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersion {
    /// `tlsv1.1`: TLS 1.1 or newer; rustls has no TLS 1.1, so TLS 1.2 or 1.3 here.
    Tls11,
    /// `tlsv1.2`: TLS 1.2 or 1.3.
    Tls12,
    /// `tlsv1.3`: TLS 1.3 only.
    Tls13,
}

impl TlsVersion {
    /// Parses `mosquitto_pub`'s spelling (`tlsv1.3`, `tlsv1.2`, `tlsv1.1`).
    pub fn parse(text: &str) -> Result<TlsVersion, Error> {
        match text {
            "tlsv1.3" => Ok(TlsVersion::Tls13),
            "tlsv1.2" => Ok(TlsVersion::Tls12),
            "tlsv1.1" => Ok(TlsVersion::Tls11),
            _ => Err(Error::TlsOption {
                option: "--tls-version",
                reason: format!("TLS version {:?} is not supported", shorten(text)),
                fix: "use tlsv1.3 (TLS 1.3 only) or tlsv1.2 (TLS 1.2 or newer), as with \
                      mosquitto_pub",
            }),
        }
    }

    /// The rustls protocol versions this allows.
    fn versions(self) -> &'static [&'static rustls::SupportedProtocolVersion] {
        match self {
            TlsVersion::Tls11 | TlsVersion::Tls12 => rustls::DEFAULT_VERSIONS,
            TlsVersion::Tls13 => TLS13_ONLY,
        }
    }
}

static TLS13_ONLY: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];

/// TLS settings of a connection, with the flags `mosquitto_pub` uses for them. TLS needs at
/// least one source of trusted CAs: `ca_file`, `ca_path` or `use_os_certs`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// `--cafile`: PEM certificate(s) of the CA that signed the broker's certificate.
    pub ca_file: Option<PathBuf>,
    /// `--capath`: a directory of PEM CA certificates named by subject hash (`openssl rehash
    /// DIR` or `c_rehash DIR` makes the names).
    pub ca_path: Option<PathBuf>,
    /// `--tls-use-os-certs`: also trust the system's CAs (OpenSSL's default store, which
    /// honours `SSL_CERT_FILE`/`SSL_CERT_DIR`).
    pub use_os_certs: bool,
    /// `--cert`: PEM client certificate (chain), for brokers with `require_certificate true`.
    pub client_cert: Option<PathBuf>,
    /// `--key`: PEM private key of the client certificate (PKCS#8, PKCS#1 or SEC1; encrypted
    /// ones need [`key_passphrase`](TlsFiles::key_passphrase)).
    pub client_key: Option<PathBuf>,
    /// The passphrase of an encrypted `--key` (never shown by `Debug`).
    pub key_passphrase: Option<String>,
    /// `--insecure`: do not check that the certificate names the host (the chain is still
    /// verified). For tests only: anyone holding a certificate from the same CA can then pose
    /// as the broker.
    pub insecure: bool,
    /// `--tls-version`.
    pub tls_version: Option<TlsVersion>,
    /// `--ciphers`: colon-separated OpenSSL names of the TLS 1.2 suites to offer, e.g.
    /// `ECDHE-RSA-AES256-GCM-SHA384`. As with `mosquitto_pub`, TLS 1.3 suites are not affected.
    pub ciphers: Option<String>,
}

impl fmt::Debug for TlsFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsFiles")
            .field("ca_file", &self.ca_file)
            .field("ca_path", &self.ca_path)
            .field("use_os_certs", &self.use_os_certs)
            .field("client_cert", &self.client_cert)
            .field("client_key", &self.client_key)
            .field(
                "key_passphrase",
                &self.key_passphrase.as_ref().map(|_| "<redacted>"),
            )
            .field("insecure", &self.insecure)
            .field("tls_version", &self.tls_version)
            .field("ciphers", &self.ciphers)
            .finish()
    }
}

/// The OpenSSL names of the TLS 1.2 suites rustls (ring) offers, and the suites.
fn tls12_suites() -> [(&'static str, SupportedCipherSuite); 6] {
    use rustls::crypto::ring::cipher_suite as cs;
    [
        (
            "ECDHE-ECDSA-AES256-GCM-SHA384",
            cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        ),
        (
            "ECDHE-ECDSA-AES128-GCM-SHA256",
            cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        ),
        (
            "ECDHE-ECDSA-CHACHA20-POLY1305",
            cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        ),
        (
            "ECDHE-RSA-AES256-GCM-SHA384",
            cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        ),
        (
            "ECDHE-RSA-AES128-GCM-SHA256",
            cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        ),
        (
            "ECDHE-RSA-CHACHA20-POLY1305",
            cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        ),
    ]
}

fn shorten(text: &str) -> String {
    text.chars().take(64).collect()
}

/// The cipher suites for `--ciphers`: every TLS 1.3 suite, then the named TLS 1.2 ones in the
/// order given. A name rustls cannot honour is an error naming those it can.
fn cipher_suites(list: &str) -> Result<Vec<SupportedCipherSuite>, Error> {
    let known = tls12_suites();
    let mut suites: Vec<SupportedCipherSuite> = rustls::crypto::ring::DEFAULT_CIPHER_SUITES
        .iter()
        .copied()
        .filter(|s| s.tls13().is_some())
        .collect();
    for name in list.split([':', ',', ' ']).filter(|n| !n.is_empty()) {
        match known.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
            Some((_, suite)) => {
                if !suites.contains(suite) {
                    suites.push(*suite);
                }
            }
            None => {
                return Err(Error::TlsOption {
                    option: "--ciphers",
                    reason: format!(
                        "cipher {:?} cannot be offered (mqseal offers the TLS 1.2 suites {})",
                        shorten(name),
                        known.map(|(n, _)| n).join(":")
                    ),
                    fix: "list some of those, separated by ':', or drop --ciphers (TLS 1.3 \
                          suites are not affected by --ciphers, as with mosquitto_pub)",
                });
            }
        }
    }
    if suites.len() == rustls::crypto::ring::DEFAULT_CIPHER_SUITES.len() - known.len() {
        return Err(Error::TlsOption {
            option: "--ciphers",
            reason: "the cipher list is empty".into(),
            fix: "name at least one TLS 1.2 suite, e.g. ECDHE-RSA-AES256-GCM-SHA384",
        });
    }
    Ok(suites)
}

impl TlsFiles {
    /// TLS trusting the CA in `ca_file`, without a client certificate.
    pub fn ca(ca_file: impl Into<PathBuf>) -> TlsFiles {
        TlsFiles {
            ca_file: Some(ca_file.into()),
            ..TlsFiles::default()
        }
    }

    /// TLS trusting the system's CAs (`--tls-use-os-certs`).
    pub fn os_certs() -> TlsFiles {
        TlsFiles {
            use_os_certs: true,
            ..TlsFiles::default()
        }
    }

    /// Adds a client certificate and key (mTLS).
    pub fn with_client_cert(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.client_cert = Some(cert.into());
        self.client_key = Some(key.into());
        self
    }

    /// The OpenSSL store of trusted CAs, with libssl's settings for a TLS client, and a
    /// description of where the CAs come from (for messages).
    fn trust_store(&self) -> Result<(openssl::x509::store::X509Store, String), Error> {
        let setup = |e: openssl::error::ErrorStack| Error::TlsOption {
            option: "--cafile",
            reason: format!("OpenSSL set-up failed: {e}"),
            fix: "check the system's OpenSSL installation (libssl3)",
        };
        let mut store = X509StoreBuilder::new().map_err(setup)?;
        let mut sources = Vec::new();
        if let Some(file) = &self.ca_file {
            let pem = read_file(file, "--cafile")?;
            let certs = parse_certs(&pem, file, "--cafile")?;
            let names: Vec<String> = certs.iter().map(|c| dn(c.subject_name())).collect();
            for cert in certs {
                // A certificate listed twice is not an error for OpenSSL 3 either.
                store.add_cert(cert).map_err(setup)?;
            }
            sources.push(format!(
                "--cafile {} ({})",
                file.display(),
                names.join("; ")
            ));
        }
        if let Some(dir) = &self.ca_path {
            if !dir.is_dir() {
                return Err(Error::Tls {
                    path: dir.clone(),
                    reason: "the --capath directory does not exist".into(),
                    fix: "give a directory of CA certificates named by `openssl rehash DIR`",
                });
            }
            let text = dir.to_str().ok_or_else(|| Error::Tls {
                path: dir.clone(),
                reason: "the --capath is not valid UTF-8".into(),
                fix: "use a directory path in UTF-8",
            })?;
            store
                .add_lookup(X509Lookup::hash_dir())
                .and_then(|l| l.add_dir(text, SslFiletype::PEM))
                .map_err(setup)?;
            sources.push(format!("--capath {}", dir.display()));
        }
        if self.use_os_certs {
            store.set_default_paths().map_err(setup)?;
            sources.push("the system's CAs (--tls-use-os-certs)".into());
        }
        if sources.is_empty() {
            return Err(Error::TlsOption {
                option: "--cafile",
                reason: "TLS needs CA certificates to check the broker's certificate".into(),
                fix: "give --cafile FILE, --capath DIR or --tls-use-os-certs",
            });
        }
        // As libssl for a TLS client: purpose sslserver, the configured security level.
        let level = SslContext::builder(SslMethod::tls_client())
            .map(|b| b.build().security_level())
            .map_err(setup)?;
        let mut param = X509VerifyParam::new().map_err(setup)?;
        param
            .set_purpose(X509PurposeId::SSL_SERVER)
            .map_err(setup)?;
        param.set_auth_level(i32::try_from(level).unwrap_or(2));
        store.set_param(&param).map_err(setup)?;
        Ok((store.build(), sources.join(", ")))
    }

    /// The client certificate and key, checked to belong together.
    fn client_auth(&self, provider: &CryptoProvider) -> Result<Option<Arc<CertifiedKey>>, Error> {
        let (cert, key) = match (&self.client_cert, &self.client_key) {
            (None, None) => return Ok(None),
            (Some(cert), Some(key)) => (cert, key),
            (Some(cert), None) => {
                return Err(Error::Tls {
                    path: cert.clone(),
                    reason: "client certificate given without its key".into(),
                    fix: "add --key with the certificate's private key",
                });
            }
            (None, Some(key)) => {
                return Err(Error::Tls {
                    path: key.clone(),
                    reason: "client key given without its certificate".into(),
                    fix: "add --cert with the client certificate",
                });
            }
        };
        let pem = read_file(cert, "--cert")?;
        let chain = parse_certs(&pem, cert, "--cert")?;
        let private = read_key(key, self.key_passphrase.as_deref())?;
        let leaf_key = chain
            .first()
            .and_then(|c| c.public_key().ok())
            .ok_or_else(|| Error::Tls {
                path: cert.clone(),
                reason: "the --cert certificate has no usable public key".into(),
                fix: "pass the client certificate made by `openssl x509 -req`",
            })?;
        if !leaf_key.public_eq(&private) {
            return Err(Error::Tls {
                path: key.clone(),
                reason: format!(
                    "this private key does not belong to the --cert certificate {}",
                    cert.display()
                ),
                fix: "pass the key the certificate's request was made with (compare `openssl \
                      x509 -noout -pubkey -in CERT` with `openssl pkey -pubout -in KEY`)",
            });
        }
        let der = private.private_key_to_pkcs8().map_err(|e| Error::Tls {
            path: key.clone(),
            reason: format!("cannot convert the private key: {e}"),
            fix: "use an RSA, EC or Ed25519 private key",
        })?;
        let signing = provider
            .key_provider
            .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der)))
            .map_err(|e| Error::Tls {
                path: key.clone(),
                reason: format!("this kind of private key cannot sign TLS handshakes: {e}"),
                fix: "use an RSA key of 2048 bits or more, or an EC P-256/P-384 or Ed25519 key",
            })?;
        let mut ders = Vec::new();
        for c in &chain {
            let der = c.to_der().map_err(|e| Error::Tls {
                path: cert.clone(),
                reason: format!("cannot encode the certificate: {e}"),
                fix: "pass a valid PEM certificate",
            })?;
            ders.push(CertificateDer::from(der));
        }
        Ok(Some(Arc::new(CertifiedKey::new(ders, signing))))
    }

    /// Reads the files and builds a rustls client configuration (ring provider, OpenSSL
    /// certificate verification). Every failure names the file or flag, the reason and a fix.
    pub fn client_config(&self) -> Result<Arc<ClientConfig>, Error> {
        let mut provider = rustls::crypto::ring::default_provider();
        if let Some(list) = &self.ciphers {
            provider.cipher_suites = cipher_suites(list)?;
        }
        let client = self.client_auth(&provider)?;
        let (store, trusted) = self.trust_store()?;
        let verifier = OpenSslVerifier {
            store,
            trusted,
            insecure: self.insecure,
        };
        let versions = self
            .tls_version
            .map_or(rustls::DEFAULT_VERSIONS, TlsVersion::versions);
        let builder = ClientConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(versions)
            .map_err(|e| Error::TlsOption {
                option: "--ciphers",
                reason: format!("no cipher suite for the TLS version: {e}"),
                fix: "--ciphers only affects TLS 1.2: drop it with --tls-version tlsv1.3",
            })?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier));
        let config = match client {
            None => builder.with_no_client_auth(),
            Some(key) => builder.with_client_cert_resolver(Arc::new(ClientCert(key))),
        };
        Ok(Arc::new(config))
    }

    /// The rumqttc transport for these settings.
    pub fn transport(&self) -> Result<rumqttc::Transport, Error> {
        Ok(rumqttc::Transport::Tls(rumqttc::TlsConfiguration::Rustls(
            self.client_config()?,
        )))
    }
}

/// The client certificate, sent whenever the broker asks for one (as libssl does).
struct ClientCert(Arc<CertifiedKey>);

impl fmt::Debug for ClientCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientCert(<certificate and key>)")
    }
}

impl ResolvesClientCert for ClientCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

fn read_file(path: &Path, flag: &str) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| Error::Tls {
        path: path.to_path_buf(),
        reason: format!("cannot read {flag} file: {e}"),
        fix: match e.kind() {
            std::io::ErrorKind::NotFound => "check the path",
            std::io::ErrorKind::PermissionDenied => "make the file readable by this user",
            _ => "check the file",
        },
    })
}

fn parse_certs(pem: &[u8], path: &Path, flag: &str) -> Result<Vec<X509>, Error> {
    let none = || Error::Tls {
        path: path.to_path_buf(),
        reason: format!("no PEM certificate in the {flag} file"),
        fix: "use a PEM file starting with -----BEGIN CERTIFICATE----- \
              (convert DER with `openssl x509 -inform der -in F -out F.pem`)",
    };
    if !pem
        .windows(b"-----BEGIN CERTIFICATE-----".len())
        .any(|w| w == b"-----BEGIN CERTIFICATE-----")
    {
        return Err(none());
    }
    match X509::stack_from_pem(pem) {
        Ok(certs) if !certs.is_empty() => Ok(certs),
        Ok(_) => Err(none()),
        Err(e) => Err(Error::Tls {
            path: path.to_path_buf(),
            reason: format!("the {flag} file holds a damaged PEM certificate: {e}"),
            fix: "copy the certificate again, from -----BEGIN CERTIFICATE----- to -----END \
                  CERTIFICATE-----",
        }),
    }
}

fn read_key(path: &Path, passphrase: Option<&str>) -> Result<PKey<Private>, Error> {
    let pem = read_file(path, "--key")?;
    let encrypted = pem.windows(9).any(|w| w == b"ENCRYPTED");
    let key = match (encrypted, passphrase) {
        (true, None) => {
            return Err(Error::Tls {
                path: path.to_path_buf(),
                reason: "the --key file is encrypted (protected by a passphrase)".into(),
                fix: "give its passphrase (mqseal: the MQSEAL_KEY_PASSPHRASE environment \
                      variable; mosquitto_pub asks on the terminal), or decrypt the key once \
                      with `openssl pkey -in KEY -out KEY.plain`",
            });
        }
        (true, Some(p)) => {
            PKey::private_key_from_pem_passphrase(&pem, p.as_bytes()).map_err(|_| Error::Tls {
                path: path.to_path_buf(),
                reason: "cannot decrypt the --key file: wrong passphrase".into(),
                fix: "give the passphrase the key was encrypted with",
            })?
        }
        // The callback answers "no passphrase": OpenSSL never prompts on the terminal.
        (false, _) => {
            PKey::private_key_from_pem_callback(&pem, |_| Ok(0)).map_err(|_| Error::Tls {
                path: path.to_path_buf(),
                reason: "no usable private key in the --key file".into(),
                fix: "pass the PEM private key made with the certificate (-----BEGIN PRIVATE \
                      KEY-----, or RSA/EC PRIVATE KEY)",
            })?
        }
    };
    Ok(key)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn tls_err(e: Error) -> (PathBuf, String) {
        match e {
            Error::Tls { path, reason, .. } => (path, reason),
            other => panic!("not a TLS error: {other}"),
        }
    }

    #[test]
    fn missing_and_garbage_files_name_the_file_and_reason() {
        let dir = std::env::temp_dir().join(format!("mqseal-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("nope.crt");
        let (path, reason) = tls_err(TlsFiles::ca(&missing).client_config().unwrap_err());
        assert_eq!(path, missing);
        assert!(reason.contains("cannot read --cafile"), "{reason}");

        let garbage = dir.join("garbage.crt");
        std::fs::write(&garbage, b"not a certificate").unwrap();
        let (path, reason) = tls_err(TlsFiles::ca(&garbage).client_config().unwrap_err());
        assert_eq!(path, garbage);
        assert!(reason.contains("no PEM certificate"), "{reason}");

        let e = TlsFiles {
            ca_file: Some(garbage.clone()),
            client_cert: Some(garbage.clone()),
            ..TlsFiles::default()
        }
        .client_config()
        .unwrap_err();
        assert!(e.to_string().contains("garbage.crt"));

        // A key file without a key, and an encrypted one without its passphrase.
        let key = dir.join("client.key");
        std::fs::write(
            &key,
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        let (path, reason) = tls_err(read_key(&key, None).unwrap_err());
        assert_eq!(path, key);
        assert!(reason.contains("no usable private key"), "{reason}");
        std::fs::write(
            &key,
            b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
        )
        .unwrap();
        let (_, reason) = tls_err(read_key(&key, None).unwrap_err());
        assert!(reason.contains("encrypted"), "{reason}");
        let (_, reason) = tls_err(read_key(&key, Some("guess")).unwrap_err());
        assert!(reason.contains("wrong passphrase"), "{reason}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn tls_needs_a_ca_source_and_options_are_checked() {
        let e = TlsFiles::default().client_config().unwrap_err();
        assert_eq!(e.code(), 308);
        assert!(
            e.to_string().contains("--capath DIR or --tls-use-os-certs"),
            "{e}"
        );
        let e = TlsFiles {
            ca_path: Some("/nonexistent/dir".into()),
            ..TlsFiles::default()
        }
        .client_config()
        .unwrap_err();
        assert!(
            e.to_string().contains("--capath directory does not exist"),
            "{e}"
        );

        assert_eq!(TlsVersion::parse("tlsv1.3").unwrap(), TlsVersion::Tls13);
        assert_eq!(TlsVersion::Tls13.versions().len(), 1);
        assert_eq!(TlsVersion::Tls12.versions().len(), 2);
        assert_eq!(TlsVersion::Tls11.versions().len(), 2);
        let e = TlsVersion::parse("sslv3").unwrap_err();
        assert!(e.to_string().starts_with("--tls-version: "), "{e}");

        let suites =
            cipher_suites("ECDHE-RSA-AES256-GCM-SHA384:ecdhe-rsa-aes128-gcm-sha256").unwrap();
        let tls12: Vec<_> = suites.iter().filter(|s| s.tls13().is_none()).collect();
        assert_eq!(tls12.len(), 2);
        assert!(suites.iter().filter(|s| s.tls13().is_some()).count() >= 3);
        let e = cipher_suites("ECDHE-RSA-AES256-GCM-SHA384:AES128-SHA").unwrap_err();
        assert!(
            e.to_string().contains("\"AES128-SHA\" cannot be offered"),
            "{e}"
        );
        assert!(cipher_suites("::").is_err());
    }

    #[test]
    fn debug_never_shows_the_key_passphrase() {
        let t = TlsFiles {
            key_passphrase: Some("hunter2-pass".into()),
            ..TlsFiles::ca("ca.crt")
        };
        assert!(!format!("{t:?}").contains("hunter2"));
    }
}
