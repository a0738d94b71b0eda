//! The broker a benchmark runs through: one given with -h/-p, or one started for the run (a
//! Mosquitto on a free 127.0.0.1 port with a generated configuration, stopped on exit; or the
//! embedded rumqttd when Mosquitto is not installed).

use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use clap::ValueEnum;
use mqseal_rumqttc::embedded::{EmbeddedBroker, free_port, wait_until_accepting};

use super::cpu;
use crate::error::{CliError, Result, err};

/// Which broker to start when none is given with -h/-p.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BrokerChoice {
    /// Mosquitto if installed, else the embedded rumqttd.
    Auto,
    /// Mosquitto (an error if it is not installed).
    Mosquitto,
    /// The embedded rumqttd (in this process).
    Embedded,
}

/// A broker for the run.
#[derive(Debug)]
pub struct Broker {
    kind: Kind,
    /// Host to connect to.
    pub host: String,
    /// Port to connect to.
    pub port: u16,
    /// One line saying what it is.
    pub description: String,
}

#[derive(Debug)]
enum Kind {
    Given,
    Mosquitto(MosquittoProcess),
    Embedded,
}

impl Broker {
    /// A broker someone else runs.
    pub fn given(host: &str, port: u16) -> Broker {
        Broker {
            kind: Kind::Given,
            host: host.to_string(),
            port,
            description: format!("the broker at {host}:{port} (given)"),
        }
    }

    /// Starts a broker on 127.0.0.1 as `choice` says.
    pub fn start(choice: BrokerChoice) -> Result<Broker> {
        let mosquitto = match choice {
            BrokerChoice::Embedded => None,
            BrokerChoice::Auto | BrokerChoice::Mosquitto => find_tool("mosquitto"),
        };
        if let Some(binary) = mosquitto {
            let process = MosquittoProcess::start(&binary)?;
            let version = mosquitto_version(&binary);
            return Ok(Broker {
                host: "127.0.0.1".into(),
                port: process.port,
                description: format!(
                    "{version} started on 127.0.0.1:{} (pid {}, generated config, log_dest \
                     stdout; stopped on exit)",
                    process.port,
                    process.child.id()
                ),
                kind: Kind::Mosquitto(process),
            });
        }
        if choice == BrokerChoice::Mosquitto {
            return Err(CliError(
                "mosquitto is not installed; fix: apt-get install mosquitto, or use --broker \
                 embedded, or give a broker with -h/-p"
                    .into(),
            ));
        }
        let broker = EmbeddedBroker::start()
            .map_err(|e| err("cannot start the embedded broker on 127.0.0.1", e))?;
        let why = if choice == BrokerChoice::Auto {
            "mosquitto is not installed; "
        } else {
            ""
        };
        Ok(Broker {
            kind: Kind::Embedded,
            host: "127.0.0.1".into(),
            port: broker.port,
            description: format!(
                "embedded rumqttd on 127.0.0.1:{} ({why}in this process: its CPU is counted \
                 as broker CPU)",
                broker.port
            ),
        })
    }

    /// CPU time the broker has used so far (ns): Mosquitto's process, or the live threads of
    /// this process other than the benchmark's own (the embedded broker); `None` for a given
    /// broker.
    pub fn cpu_ns(&self) -> Option<u64> {
        match &self.kind {
            Kind::Given => None,
            Kind::Mosquitto(m) => cpu::process_ns(&m.child.id().to_string()),
            Kind::Embedded => cpu::process_ns("self"),
        }
    }

    /// Whether the broker was started for this run.
    pub fn is_local(&self) -> bool {
        !matches!(self.kind, Kind::Given)
    }
}

/// A Mosquitto child process and its directory, both removed on drop.
#[derive(Debug)]
struct MosquittoProcess {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl MosquittoProcess {
    fn start(binary: &Path) -> Result<MosquittoProcess> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir =
            std::env::temp_dir().join(format!("mqseal-bench-{}-{nanos:08x}", std::process::id()));
        let started = Self::spawn(binary, &dir);
        if started.is_err() {
            let _ = fs::remove_dir_all(&dir);
        }
        started
    }

    fn spawn(binary: &Path, dir: &Path) -> Result<MosquittoProcess> {
        let io = |what: &str, e: std::io::Error| err(&format!("{}: {what}", dir.display()), e);
        fs::create_dir(dir).map_err(|e| io("cannot create", e))?;
        // Mosquitto started as root drops to the `mosquitto` user: keep its files readable.
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755))
            .map_err(|e| io("cannot set permissions", e))?;
        let port = free_port().map_err(|e| err("no free port on 127.0.0.1", e))?;
        let mut conf = String::new();
        for line in [
            "per_listener_settings false",
            "persistence false",
            "log_dest stdout",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "allow_anonymous true",
        ] {
            let _ = writeln!(conf, "{line}");
        }
        let _ = writeln!(conf, "listener {port} 127.0.0.1");
        let conf_path = dir.join("mosquitto.conf");
        fs::write(&conf_path, conf).map_err(|e| io("cannot write mosquitto.conf", e))?;
        fs::set_permissions(&conf_path, fs::Permissions::from_mode(0o644))
            .map_err(|e| io("cannot set permissions", e))?;
        let log_path = dir.join("mosquitto.log");
        let log = fs::File::create(&log_path).map_err(|e| io("cannot create the log", e))?;
        let log2 = log.try_clone().map_err(|e| io("cannot open the log", e))?;
        let child = Command::new(binary)
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|e| err(&format!("cannot run {}", binary.display()), e))?;
        let process = MosquittoProcess {
            child,
            port,
            dir: dir.to_path_buf(),
        };
        if let Err(e) = wait_until_accepting(port) {
            let log = fs::read_to_string(&log_path).unwrap_or_default();
            return Err(CliError(format!(
                "mosquitto did not start: {e}; its log:\n{log}"
            )));
        }
        Ok(process)
    }
}

impl Drop for MosquittoProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// `name` on `PATH`, or in the sbin directories where Debian installs daemons.
fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/local/sbin".into(), "/sbin".into()])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// "mosquitto version 2.0.11", from `mosquitto -h`'s first line.
fn mosquitto_version(binary: &Path) -> String {
    Command::new(binary)
        .arg("-h")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .and_then(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            text.lines()
                .next()
                .filter(|l| l.starts_with("mosquitto"))
                .map(str::to_string)
        })
        .unwrap_or_else(|| "mosquitto".into())
}
