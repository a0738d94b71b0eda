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

/// The passphrase of the seeds' `ca.key` (the walkthrough's first command asks for one).
pub const SEEDS_CA_PASSPHRASE: &str = "seeds-ca-pass";
/// The passphrase of [`SeedsPki::client_key_encrypted`].
pub const SEEDS_KEY_PASSPHRASE: &str = "seeds-key-pass";

/// The PKI of the Mosquitto TLS walkthrough in `shared/seeds/`, made with exactly its openssl
/// commands (`-subj`, `-passout` and `-passin` only answer the prompts): a CA (`req -new -x509
/// -days 1826 -extensions v3_ca`, encrypted key), RSA 2048 keys (`genrsa`), requests (`req
/// -new`) and certificates signed with `x509 -req -CA ca.crt -CAkey ca.key -CAcreateserial
/// -days 360` and no `-extfile`: X.509 **v1** certificates with only a CN and no
/// subjectAltName. The server's CN is `127.0.0.1`, as the walkthrough's CN is the broker's IP.
///
/// Beyond the walkthrough, for the refusals: a second CA with its own client, the same server
/// request certified for dates in the past and in the future (`openssl ca -startdate
/// -enddate`), the client key encrypted with [`SEEDS_KEY_PASSPHRASE`], and a `--capath`
/// directory (`openssl rehash`) holding the CA.
#[derive(Debug)]
pub struct SeedsPki {
    dir: tempfile::TempDir,
}

impl SeedsPki {
    /// Generates everything; `Ok(None)` without `openssl`.
    pub fn generate() -> io::Result<Option<SeedsPki>> {
        let Some(openssl) = find_tool("openssl") else {
            return Ok(None);
        };
        let dir = shared_tempdir()?;
        let d = dir.path();
        let ossl = |args: &[&str]| run(Command::new(&openssl).current_dir(d).args(args));
        let passout = format!("pass:{SEEDS_CA_PASSPHRASE}");
        for (ca, cn) in [("ca", "/CN=seeds CA"), ("other-ca", "/CN=another CA")] {
            let (key, crt) = (format!("{ca}.key"), format!("{ca}.crt"));
            ossl(&[
                "req",
                "-new",
                "-x509",
                "-days",
                "1826",
                "-extensions",
                "v3_ca",
                "-keyout",
                &key,
                "-out",
                &crt,
                "-subj",
                cn,
                "-passout",
                &passout,
            ])?;
        }
        for (name, ca, cn) in [
            ("server", "ca", "/CN=127.0.0.1"),
            ("client", "ca", "/CN=seeds client"),
            ("other-client", "other-ca", "/CN=other client"),
        ] {
            let (key, csr, crt) = (
                format!("{name}.key"),
                format!("{name}.csr"),
                format!("{name}.crt"),
            );
            ossl(&["genrsa", "-out", &key, "2048"])?;
            ossl(&["req", "-out", &csr, "-key", &key, "-new", "-subj", cn])?;
            ossl(&[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                &format!("{ca}.crt"),
                "-CAkey",
                &format!("{ca}.key"),
                "-CAcreateserial",
                "-out",
                &crt,
                "-days",
                "360",
                "-passin",
                &passout,
            ])?;
        }
        // Past and future validity for the same server request: `openssl ca` takes dates.
        fs::create_dir(d.join("newcerts"))?;
        fs::write(d.join("index.txt"), "")?;
        fs::write(
            d.join("ca.cnf"),
            "[ca]\ndefault_ca = seeds\n[seeds]\ndatabase = index.txt\nnew_certs_dir = newcerts\n\
             serial = serial.txt\ncertificate = ca.crt\nprivate_key = ca.key\n\
             default_md = sha256\npolicy = any\nunique_subject = no\n[any]\n\
             commonName = supplied\n",
        )?;
        for (out, start, end) in [
            ("expired.crt", "20200101000000Z", "20200201000000Z"),
            ("future.crt", "20400101000000Z", "20410101000000Z"),
        ] {
            ossl(&[
                "ca",
                "-batch",
                "-config",
                "ca.cnf",
                "-create_serial",
                "-in",
                "server.csr",
                "-out",
                out,
                "-startdate",
                start,
                "-enddate",
                end,
                "-passin",
                &passout,
            ])?;
        }
        ossl(&[
            "pkey",
            "-in",
            "client.key",
            "-aes256",
            "-passout",
            &format!("pass:{SEEDS_KEY_PASSPHRASE}"),
            "-out",
            "client-encrypted.key",
        ])?;
        fs::create_dir(d.join("capath"))?;
        fs::copy(d.join("ca.crt"), d.join("capath/ca.crt"))?;
        ossl(&["rehash", "capath"])?;
        for entry in fs::read_dir(d)? {
            let path = entry?.path();
            if path.is_file() {
                make_readable(&path)?;
            }
        }
        Ok(Some(SeedsPki { dir }))
    }

    /// A file of the PKI by name (`ca.crt`, `server.key`, `client.csr`…).
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The `--capath` directory holding the seeds' CA under its subject hash.
    pub fn capath(&self) -> PathBuf {
        self.file("capath")
    }
}
