//! Starting and stopping a real Mosquitto broker.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use mqseal_rumqttc::embedded::{EmbeddedBroker, free_port, wait_until_accepting};

/// The `mosquitto` binary, if installed (on `PATH` or in `/usr/sbin`, where Debian puts it).
/// `MQSEAL_TEST_NO_MOSQUITTO=1` pretends it is not, to exercise the embedded-broker fallback.
pub fn find_mosquitto() -> Option<PathBuf> {
    if std::env::var_os("MQSEAL_TEST_NO_MOSQUITTO").is_some_and(|v| v == "1") {
        return None;
    }
    find_tool("mosquitto")
}

/// A tool on `PATH` or in the usual system directories.
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/bin".into(), "/sbin".into()])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// TLS settings of the listener.
#[derive(Debug, Clone)]
pub struct TlsListener {
    /// `cafile`: CA that signed the server certificate (and trusted client certificates).
    pub ca: PathBuf,
    /// `certfile`.
    pub cert: PathBuf,
    /// `keyfile`.
    pub key: PathBuf,
    /// `require_certificate true` (mTLS).
    pub require_certificate: bool,
}

/// What to write into the generated `mosquitto.conf`.
#[derive(Debug, Clone, Default)]
pub struct MosquittoConfig {
    /// TLS on the listener.
    pub tls: Option<TlsListener>,
    /// `(user, password)` pairs; when non-empty: `allow_anonymous false` + `password_file`
    /// made with `mosquitto_passwd -b -c`.
    pub users: Vec<(String, String)>,
    /// Content of an `acl_file`, if any.
    pub acl: Option<String>,
    /// Extra configuration lines (e.g. `max_packet_size 2048`).
    pub extra: Vec<String>,
    /// `persistence true` with a `persistence_location` in the broker's directory: sessions,
    /// subscriptions and queued QoS 1/2 messages survive [`Mosquitto::restart`].
    pub persistence: bool,
}

/// A running Mosquitto, killed (by PID) and its directory removed on drop.
#[derive(Debug)]
pub struct Mosquitto {
    child: Child,
    /// The listener's port on 127.0.0.1.
    pub port: u16,
    dir: tempfile::TempDir,
    binary: PathBuf,
}

impl Mosquitto {
    /// Starts Mosquitto with `config`; `Ok(None)` if Mosquitto is not installed.
    pub fn start(config: &MosquittoConfig) -> io::Result<Option<Mosquitto>> {
        let Some(binary) = find_mosquitto() else {
            return Ok(None);
        };
        let dir = shared_tempdir()?;
        let port = free_port()?;
        let mut conf = String::new();
        let _ = writeln!(conf, "per_listener_settings false");
        if config.persistence {
            // Written by the broker's user (it drops privileges when started as root).
            let db = dir.path().join("db");
            fs::create_dir(&db)?;
            fs::set_permissions(&db, fs::Permissions::from_mode(0o777))?;
            let _ = writeln!(conf, "persistence true");
            let _ = writeln!(conf, "persistence_location {}/", db.display());
        } else {
            let _ = writeln!(conf, "persistence false");
        }
        let _ = writeln!(conf, "log_dest stdout");
        let _ = writeln!(conf, "log_type error");
        let _ = writeln!(conf, "log_type warning");
        let _ = writeln!(conf, "log_type notice");
        let _ = writeln!(conf, "listener {port} 127.0.0.1");
        if let Some(tls) = &config.tls {
            let _ = writeln!(conf, "cafile {}", tls.ca.display());
            let _ = writeln!(conf, "certfile {}", tls.cert.display());
            let _ = writeln!(conf, "keyfile {}", tls.key.display());
            if tls.require_certificate {
                let _ = writeln!(conf, "require_certificate true");
            }
        }
        if config.users.is_empty() {
            let _ = writeln!(conf, "allow_anonymous true");
        } else {
            let file = dir.path().join("passwd");
            for (i, (user, password)) in config.users.iter().enumerate() {
                let mut cmd = Command::new(
                    find_tool("mosquitto_passwd").unwrap_or("mosquitto_passwd".into()),
                );
                cmd.arg("-b");
                if i == 0 {
                    cmd.arg("-c");
                }
                run(cmd.arg(&file).arg(user).arg(password))?;
            }
            make_readable(&file)?;
            let _ = writeln!(conf, "allow_anonymous false");
            let _ = writeln!(conf, "password_file {}", file.display());
        }
        if let Some(acl) = &config.acl {
            let file = dir.path().join("acl");
            fs::write(&file, acl)?;
            make_readable(&file)?;
            let _ = writeln!(conf, "acl_file {}", file.display());
        }
        for line in &config.extra {
            let _ = writeln!(conf, "{line}");
        }
        let conf_path = dir.path().join("mosquitto.conf");
        fs::write(&conf_path, conf)?;
        make_readable(&conf_path)?;
        let child = spawn(&binary, dir.path())?;
        let mut broker = Mosquitto {
            child,
            port,
            dir,
            binary,
        };
        broker.wait_started()?;
        Ok(Some(broker))
    }

    fn wait_started(&mut self) -> io::Result<()> {
        if let Err(e) = wait_until_accepting(self.port) {
            let _ = self.child.kill();
            return Err(io::Error::new(
                e.kind(),
                format!("mosquitto did not start: {e}; log:\n{}", self.log()),
            ));
        }
        Ok(())
    }

    /// Stops the broker gracefully (SIGTERM: with persistence, it saves its database) and starts
    /// it again with the same configuration on the same port. Clients see a disconnection.
    pub fn restart(&mut self) -> io::Result<()> {
        run(Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string()))?;
        let status = self.child.wait()?;
        if !status.success() {
            return Err(io::Error::other(format!(
                "mosquitto exited with {status} on SIGTERM; log:\n{}",
                self.log()
            )));
        }
        self.child = spawn(&self.binary, self.dir.path())?;
        self.wait_started()
    }

    /// Peak resident memory of the broker process (`VmHWM`), in KiB, if readable.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    }

    /// The broker's log so far (`log_dest stdout`).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("mosquitto.log")).unwrap_or_default()
    }

    /// The broker's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A broker for the plain (no TLS, anonymous) cases.
#[derive(Debug)]
pub enum Broker {
    /// Debian's Mosquitto.
    Mosquitto(Mosquitto),
    /// The in-process rumqttd (when Mosquitto is not installed).
    Embedded(EmbeddedBroker),
}

impl Broker {
    /// Port of the MQTT v3.1.1 listener.
    pub fn port(&self) -> u16 {
        match self {
            Broker::Mosquitto(m) => m.port,
            Broker::Embedded(e) => e.port,
        }
    }

    /// Port of the MQTT v5 listener (Mosquitto speaks both on one listener).
    pub fn port_v5(&self) -> u16 {
        match self {
            Broker::Mosquitto(m) => m.port,
            Broker::Embedded(e) => e.port_v5,
        }
    }

    /// Whether this is a real Mosquitto.
    pub fn is_mosquitto(&self) -> bool {
        matches!(self, Broker::Mosquitto(_))
    }
}

/// Starts `mosquitto -c <dir>/mosquitto.conf`, appending its output to `<dir>/mosquitto.log`.
fn spawn(binary: &Path, dir: &Path) -> io::Result<Child> {
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("mosquitto.log"))?;
    Command::new(binary)
        .arg("-c")
        .arg(dir.join("mosquitto.conf"))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
}

/// A plain anonymous Mosquitto, or the embedded rumqttd with a printed notice if Mosquitto is
/// not installed.
pub fn plain_broker() -> io::Result<Broker> {
    match Mosquitto::start(&MosquittoConfig::default())? {
        Some(m) => Ok(Broker::Mosquitto(m)),
        None => {
            crate::notice(
                "mosquitto is not installed (scripts/checks/15-install-brokers.sh installs it); \
                 using the embedded rumqttd broker",
            );
            Ok(Broker::Embedded(EmbeddedBroker::start()?))
        }
    }
}

/// A temporary directory the `mosquitto` user can read (Mosquitto drops privileges to it).
pub(crate) fn shared_tempdir() -> io::Result<tempfile::TempDir> {
    let dir = tempfile::Builder::new()
        .prefix("mqseal-broker-")
        .tempdir()?;
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755))?;
    Ok(dir)
}

/// Makes a test file readable by the broker's user (test material only, never real keys).
pub(crate) fn make_readable(path: &Path) -> io::Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(0o644))
}

pub(crate) fn run(cmd: &mut Command) -> io::Result<()> {
    let out = cmd.stdin(Stdio::null()).output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "{cmd:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )))
    }
}
