//! TLS to the broker, as in the usual Mosquitto set-ups: a CA file, an optional client
//! certificate and key (mTLS, `require_certificate true`), on top of which username/password work
//! unchanged.
//!
//! Backend: rustls with the `ring` crypto provider, chosen explicitly (rumqttc built with
//! `default-features = false` and `use-rustls-no-provider`). rumqttc's default features bring in
//! `aws-lc-rs`, whose C build dominates a clean build on small machines; `ring` builds in a
//! fraction of that and supports everything here (TLS 1.2/1.3, RSA and ECDSA certificates and
//! client keys). The provider is handed to rustls per connection, so nothing process-wide is
//! installed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

use crate::error::Error;

/// TLS files of a connection, with the flags `mosquitto_pub` uses for them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// `--cafile`: PEM certificate(s) of the CA that signed the broker's certificate.
    pub ca_file: PathBuf,
    /// `--cert`: PEM client certificate (chain), for brokers with `require_certificate true`.
    pub client_cert: Option<PathBuf>,
    /// `--key`: PEM private key of the client certificate (PKCS#8, PKCS#1 or SEC1).
    pub client_key: Option<PathBuf>,
}

impl TlsFiles {
    /// TLS trusting the CA in `ca_file`, without a client certificate.
    pub fn ca(ca_file: impl Into<PathBuf>) -> TlsFiles {
        TlsFiles {
            ca_file: ca_file.into(),
            ..TlsFiles::default()
        }
    }

    /// Adds a client certificate and key (mTLS).
    pub fn with_client_cert(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.client_cert = Some(cert.into());
        self.client_key = Some(key.into());
        self
    }

    /// Reads the files and builds a rustls client configuration (ring provider). Every failure
    /// names the file, the reason and a fix.
    pub fn client_config(&self) -> Result<Arc<ClientConfig>, Error> {
        let mut roots = RootCertStore::empty();
        let ca = read_certs(&self.ca_file, "--cafile")?;
        let (added, _ignored) = roots.add_parsable_certificates(ca);
        if added == 0 {
            return Err(Error::Tls {
                path: self.ca_file.clone(),
                reason: "no usable CA certificate in the file".into(),
                fix: "pass the PEM certificate of the CA that signed the broker's certificate",
            });
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Tls {
                path: self.ca_file.clone(),
                reason: format!("TLS set-up failed: {e}"),
                fix: "this is a bug in mqseal; please report it",
            })?
            .with_root_certificates(roots);
        let config = match (&self.client_cert, &self.client_key) {
            (None, None) => builder.with_no_client_auth(),
            (Some(cert), Some(key)) => {
                let chain = read_certs(cert, "--cert")?;
                let private = read_key(key)?;
                builder
                    .with_client_auth_cert(chain, private)
                    .map_err(|e| Error::Tls {
                        path: cert.clone(),
                        reason: format!("client certificate and key cannot be used: {e}"),
                        fix: "pass the certificate with --cert and its own private key with --key",
                    })?
            }
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
        Ok(Arc::new(config))
    }

    /// The rumqttc transport for these files.
    pub fn transport(&self) -> Result<rumqttc::Transport, Error> {
        Ok(rumqttc::Transport::Tls(rumqttc::TlsConfiguration::Rustls(
            self.client_config()?,
        )))
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

fn read_certs(path: &Path, flag: &str) -> Result<Vec<CertificateDer<'static>>, Error> {
    let pem = read_file(path, flag)?;
    let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(&pem).collect();
    match certs {
        Ok(certs) if !certs.is_empty() => Ok(certs),
        Ok(_) => Err(Error::Tls {
            path: path.to_path_buf(),
            reason: format!("no PEM certificate in the {flag} file"),
            fix: "use a PEM file starting with -----BEGIN CERTIFICATE----- \
                  (convert DER with `openssl x509 -inform der -in F -out F.pem`)",
        }),
        Err(e) => Err(Error::Tls {
            path: path.to_path_buf(),
            reason: format!("the {flag} file is not valid PEM: {e:?}"),
            fix: "use a PEM certificate file",
        }),
    }
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, Error> {
    let pem = read_file(path, "--key")?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| Error::Tls {
        path: path.to_path_buf(),
        reason: format!("no usable private key in the --key file: {e:?}"),
        fix: "use an unencrypted PEM private key (PKCS#8, RSA or EC); \
              decrypt it with `openssl pkey -in F -out F.plain`",
    })
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
            ca_file: garbage.clone(),
            client_cert: Some(garbage.clone()),
            client_key: None,
        }
        .client_config()
        .unwrap_err();
        assert!(e.to_string().contains("garbage.crt"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
