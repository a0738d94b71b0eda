//! Test certificates made with the `openssl` CLI, as in the usual Mosquitto TLS set-ups.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::mosquitto::{find_tool, make_readable, run, shared_tempdir};

/// A private CA with a server and a client certificate, plus an untrusted CA and client.
#[derive(Debug)]
pub struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    /// Generates everything (RSA 2048 like the walkthroughs; SAN `localhost` and `127.0.0.1`
    /// on the server certificate, which rustls requires). `Ok(None)` without `openssl`.
    pub fn generate() -> io::Result<Option<Pki>> {
        let Some(openssl) = find_tool("openssl") else {
            return Ok(None);
        };
        let dir = shared_tempdir()?;
        let d = dir.path();
        let ossl = |args: &[&str]| run(Command::new(&openssl).current_dir(d).args(args));
        for ca in ["ca", "rogue-ca"] {
            ossl(&[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "30",
                "-keyout",
                &format!("{ca}.key"),
                "-out",
                &format!("{ca}.crt"),
                "-subj",
                &format!("/CN=mqseal test {ca}"),
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ])?;
        }
        fs::write(
            d.join("server.ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        )?;
        fs::write(d.join("client.ext"), "extendedKeyUsage=clientAuth\n")?;
        for (name, ca, ext) in [
            ("server", "ca", "server.ext"),
            ("client", "ca", "client.ext"),
            ("rogue-client", "rogue-ca", "client.ext"),
        ] {
            ossl(&["genrsa", "-out", &format!("{name}.key"), "2048"])?;
            ossl(&[
                "req",
                "-new",
                "-key",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                &format!("/CN=mqseal test {name}"),
            ])?;
            ossl(&[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                &format!("{ca}.crt"),
                "-CAkey",
                &format!("{ca}.key"),
                "-CAcreateserial",
                "-out",
                &format!("{name}.crt"),
                "-days",
                "30",
                "-extfile",
                ext,
            ])?;
        }
        for entry in fs::read_dir(d)? {
            make_readable(&entry?.path())?;
        }
        Ok(Some(Pki { dir }))
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The directory holding the files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The trusted CA certificate.
    pub fn ca(&self) -> PathBuf {
        self.file("ca.crt")
    }
    /// The server certificate (signed by the CA).
    pub fn server_cert(&self) -> PathBuf {
        self.file("server.crt")
    }
    /// The server key.
    pub fn server_key(&self) -> PathBuf {
        self.file("server.key")
    }
    /// A client certificate signed by the CA.
    pub fn client_cert(&self) -> PathBuf {
        self.file("client.crt")
    }
    /// Its key.
    pub fn client_key(&self) -> PathBuf {
        self.file("client.key")
    }
    /// A CA the broker does not trust.
    pub fn rogue_ca(&self) -> PathBuf {
        self.file("rogue-ca.crt")
    }
    /// A client certificate signed by the untrusted CA.
    pub fn rogue_client_cert(&self) -> PathBuf {
        self.file("rogue-client.crt")
    }
    /// Its key.
    pub fn rogue_client_key(&self) -> PathBuf {
        self.file("rogue-client.key")
    }
}
