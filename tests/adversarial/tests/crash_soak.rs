//! Crash/soak: a stream of 100 000 numbered messages at QoS 1 through Mosquitto (persistence
//! on), while the sealing process is killed with `kill -9` at random points (22 times), the
//! subscriber is killed and restarted too (7 times: 6 at random points, once right between an
//! application record and its commit), and the broker is restarted (4 times).
//!
//! - publisher (`mqseal-soak-pub`): the mqseal-rumqttc wrapper over the keystore's crash-safe
//!   `PersistentSealer`, a persistent MQTT session, and a progress file of the logical index
//!   acknowledged by the broker. After a kill it resumes at that index: the unacknowledged tail is
//!   sealed again under new sequence numbers (a *logical* duplicate: a new sealed message).
//! - subscriber (`mqseal-soak-sub`): a persistent session at QoS 1, the keystore's
//!   `PersistentOpener`, manual acks after the application handled the message, and an
//!   application log (what the application received, with the sealed bytes).
//!
//! Shown, over every run: no (epoch, sender, sequence number) — the nonce — ever carried two
//! different messages (every delivery the subscriber got, refused ones included, is logged with
//! its bytes); every logical index was delivered (nothing lost at QoS 1); no sealed
//! message was handed to the application twice (broker redeliveries and retransmissions are
//! refused by the persisted replay windows); every restarted publisher seals above everything
//! sealed before; every restarted subscriber accepts new messages (no lock-out); the peak
//! resident memory of each process stays below 200 MiB (figures printed).
//!
//! The stores live on tmpfs (`/dev/shm`) when it exists: `kill -9` keeps the page cache, so
//! `fsync` adds nothing to this test but 4 ms per call on this machine's disk (power loss is
//! out of scope here; `mqseal-store` documents its fsync discipline). Without Mosquitto
//! (`MQSEAL_TEST_NO_MOSQUITTO=1`) the stream runs on the embedded rumqttd, without broker
//! restarts (it keeps no state across a restart), and a notice says so.
//!
//! Mosquitto 2.0.11 (Debian 12) caveat, found with this test: with a *second* persistent session
//! subscribed to the same messages, a restart makes the broker redeliver thousands of messages
//! the subscriber had already acknowledged, interleaved with new ones. The replay windows refuse
//! every stale copy (no duplicate reaches the application), but a new message overtaken by more
//! than the window (2048 sequence numbers) is refused as `too_old`: lost. The stream therefore
//! has one persistent subscriber; the nonce check reads the subscriber's log instead of a
//! key-less observer's.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::thread;
use std::time::{Duration, Instant};

use mqseal::Identity;
use mqseal_adversarial_tests::soak::{self, Record};
use mqseal_broker_tests::{Broker, Mosquitto, MosquittoConfig, notice, plain_broker};
use mqseal_store::{Roles, Store, StoreOptions};

const PUB_BIN: &str = env!("CARGO_BIN_EXE_mqseal-soak-pub");
const SUB_BIN: &str = env!("CARGO_BIN_EXE_mqseal-soak-sub");

/// Logical messages in the stream.
const MESSAGES: u64 = 100_000;
/// Publisher runs killed with -9 (then one final run to the end).
const PUBLISHER_KILLS: u64 = 22;
/// Cycles in which the subscriber is killed with -9 and restarted.
const SUBSCRIBER_KILL_CYCLES: [u64; 6] = [1, 5, 9, 12, 16, 20];
/// In this subscriber-kill cycle the restarted subscriber kills itself between an application
/// record and its commit, and the next one must repair that at start.
const WINDOW_KILL_CYCLE: u64 = 9;
/// Cycles in which the broker is restarted (gracefully: Mosquitto saves its database).
const BROKER_RESTART_CYCLES: [u64; 4] = [3, 8, 12, 18];
/// Messages per publisher batch (acknowledged together, then recorded as progress).
const BATCH: u64 = 64;
/// Upper bound asserted on each helper's peak RSS.
const RSS_LIMIT_KIB: u64 = 200 * 1024;
/// Safety net for waits on the helpers (not a timing assertion: it only turns a hang into a
/// failure with diagnostics).
const PATIENCE: Duration = Duration::from_secs(600);

/// Deterministic xorshift64*, so a failing run can be reproduced.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// A helper process whose stdout lines arrive on a channel; its stderr goes to a file.
struct Helper {
    name: String,
    child: Child,
    lines: Receiver<String>,
    stderr: PathBuf,
}

impl Helper {
    fn spawn(
        name: String,
        bin: &str,
        args: &[String],
        dir: &Path,
        env: &[(&str, String)],
    ) -> Helper {
        let stderr = dir.join(format!("{name}.stderr"));
        let mut child = Command::new(bin)
            .args(args)
            .envs(env.iter().map(|(k, v)| (*k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Helper {
            name,
            child,
            lines,
            stderr,
        }
    }

    /// Waits for the first line `accept` returns `Some` for.
    fn wait_for<T>(&mut self, what: &str, mut accept: impl FnMut(&str) -> Option<T>) -> T {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(v) = accept(&line) {
                        return v;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    let _ = self.child.kill();
                    panic!("{}: no {what} after {PATIENCE:?}", self.name);
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().unwrap();
                    let err = fs::read_to_string(&self.stderr).unwrap_or_default();
                    panic!("{} exited ({status}) before {what}: {err}", self.name);
                }
            }
        }
    }

    /// Publisher: waits until the broker acknowledged every index below `target`.
    fn wait_acked(&mut self, target: u64) -> u64 {
        self.wait_for(&format!("acked >= {target}"), |l| {
            let n: u64 = l.strip_prefix("acked ")?.parse().ok()?;
            (n >= target).then_some(n)
        })
    }

    /// `kill -9`; returns the peak RSS it reached (KiB), read just before.
    fn kill9(&mut self) -> u64 {
        let rss = soak::peak_rss_kib(self.child.id()).unwrap_or(0);
        self.child.kill().unwrap(); // SIGKILL on Unix
        let status = self.child.wait().unwrap();
        assert!(!status.success(), "{} was not killed", self.name);
        rss
    }

    /// Waits for the process to die on its own (fault injection); returns the peak RSS.
    fn wait_death(&mut self) -> u64 {
        self.wait_for("dying", |l| (l == "dying").then_some(()));
        let rss = soak::peak_rss_kib(self.child.id()).unwrap_or(0);
        let status = self.child.wait().unwrap();
        assert!(!status.success(), "{} did not die", self.name);
        rss
    }

    /// Waits for the normal end (`done <peak RSS>`); returns the peak RSS.
    fn finish(mut self) -> u64 {
        let rss = self.wait_for("done", |l| l.strip_prefix("done ")?.parse().ok());
        let status = self.child.wait().unwrap();
        assert!(status.success(), "{} failed: {status}", self.name);
        rss
    }
}

impl Drop for Helper {
    /// A failing test leaves no helper behind.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The broker for the stream: Mosquitto with persistence, else the embedded rumqttd.
enum SoakBroker {
    Mosquitto(Mosquitto),
    Embedded(Broker),
}

impl SoakBroker {
    fn start() -> SoakBroker {
        let config = MosquittoConfig {
            persistence: true,
            // Queue without limit for offline persistent sessions (default: 1000, then drop).
            extra: vec!["max_queued_messages 0".into()],
            ..MosquittoConfig::default()
        };
        match Mosquitto::start(&config).unwrap() {
            Some(m) => SoakBroker::Mosquitto(m),
            None => {
                notice(
                    "crash/soak without Mosquitto: the stream runs on the embedded rumqttd and \
                     the broker-restart part is skipped (rumqttd keeps no state across a restart)",
                );
                SoakBroker::Embedded(plain_broker().unwrap())
            }
        }
    }

    fn port(&self) -> u16 {
        match self {
            SoakBroker::Mosquitto(m) => m.port,
            SoakBroker::Embedded(b) => b.port(),
        }
    }

    /// Restarts the broker; false if it cannot be (embedded).
    fn restart(&mut self) -> bool {
        match self {
            SoakBroker::Mosquitto(m) => {
                m.restart().unwrap();
                true
            }
            SoakBroker::Embedded(_) => false,
        }
    }

    fn peak_rss_kib(&self) -> Option<u64> {
        match self {
            SoakBroker::Mosquitto(m) => m.peak_rss_kib(),
            SoakBroker::Embedded(_) => None,
        }
    }
}

/// A directory on tmpfs if there is one (see the module documentation).
fn state_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(dir) = tempfile::Builder::new()
            .prefix("mqseal-soak-")
            .tempdir_in(shm)
    {
        return dir;
    }
    notice("no tmpfs at /dev/shm: the stores live on disk and every fsync is paid");
    tempfile::tempdir().unwrap()
}

/// A publisher identity and a subscriber identity, with the key of `soak/#` granted.
fn stores(dir: &Path) -> (Store, Store) {
    let tx = Store::create_with(
        dir.join("pub"),
        "soak-pub",
        Identity::from_seed([0x51; 32]),
        StoreOptions::default(),
    )
    .unwrap();
    let rx = Store::create_with(
        dir.join("sub"),
        "soak-sub",
        Identity::from_seed([0x52; 32]),
        StoreOptions::default(),
    )
    .unwrap();
    tx.trust_line(&rx.public_line(), Roles::SENDER).unwrap();
    rx.trust_line(&tx.public_line(), Roles::BOTH).unwrap();
    tx.create_key(soak::FILTER, 0).unwrap();
    let g = tx.issue_grant(soak::FILTER, "soak-sub").unwrap();
    rx.accept_grant_message(&g.topic, &g.payload, 0).unwrap();
    (tx, rx)
}

struct Figures {
    publisher_rss: Vec<u64>,
    subscriber_rss: Vec<u64>,
    publisher_kills: u64,
    subscriber_kills: u64,
    broker_restarts: u64,
}

#[test]
fn kill9_publisher_and_subscriber_and_restart_the_broker_during_100k_messages() {
    let started = Instant::now();
    let state = state_dir();
    let work = tempfile::tempdir().unwrap();
    let (tx, rx) = stores(state.path());
    let mut broker = SoakBroker::start();
    let port = broker.port().to_string();
    let app_log = work.path().join("application.log");
    let progress = work.path().join("publisher.progress");
    let mut rng = Rng(0x50a4_c4a5_4b11_0001);
    let mut figures = Figures {
        publisher_rss: Vec::new(),
        subscriber_rss: Vec::new(),
        publisher_kills: 0,
        subscriber_kills: 0,
        broker_restarts: 0,
    };

    let mut sub_runs = 0u32;
    let start_subscriber = |run: u32, env: &[(&str, String)]| {
        let args = [
            rx.dir().to_str().unwrap().to_string(),
            app_log.to_str().unwrap().to_string(),
            port.clone(),
            "soak-sub".to_string(),
            MESSAGES.to_string(),
            run.to_string(),
        ];
        Helper::spawn(
            format!("subscriber run {run}"),
            SUB_BIN,
            &args,
            work.path(),
            env,
        )
    };
    let start_publisher = |run: u64| {
        let block = [16u64, 64, 256, 4096][(run % 4) as usize];
        let args = [
            tx.dir().to_str().unwrap().to_string(),
            progress.to_str().unwrap().to_string(),
            port.clone(),
            "soak-pub".to_string(),
            MESSAGES.to_string(),
            BATCH.to_string(),
            run.to_string(),
            block.to_string(),
        ];
        Helper::spawn(
            format!("publisher run {run}"),
            PUB_BIN,
            &args,
            work.path(),
            &[],
        )
    };
    let mut subscriber = start_subscriber(sub_runs, &[]);
    subscriber.wait_for("ready", |l| (l == "ready").then_some(()));
    let mut repairs = 0;

    let mut previous_target = 0;
    for cycle in 0..PUBLISHER_KILLS {
        let mut publisher = start_publisher(cycle);
        publisher.wait_for("start", |l| l.starts_with("start ").then_some(()));
        // Kill points spread over the stream, each at a random instant after the broker
        // acknowledged a random index around its share.
        let share = MESSAGES / (PUBLISHER_KILLS + 1);
        let target = share * (cycle + 1) + rng.below(share / 2);
        let midway = previous_target + (target - previous_target) / 2;
        let restart_broker = BROKER_RESTART_CYCLES.contains(&cycle);
        let kill_subscriber = SUBSCRIBER_KILL_CYCLES.contains(&cycle);
        if restart_broker || kill_subscriber {
            publisher.wait_acked(midway);
        }
        if kill_subscriber {
            thread::sleep(Duration::from_micros(rng.below(20_000)));
            figures.subscriber_rss.push(subscriber.kill9());
            figures.subscriber_kills += 1;
            sub_runs += 1;
        }
        // Once (cycle 12), the broker restarts while the subscriber is down: its queued
        // messages must survive in the broker's database.
        if restart_broker && broker.restart() {
            figures.broker_restarts += 1;
        }
        if kill_subscriber && cycle == WINDOW_KILL_CYCLE {
            // Killed between an application record and its commit…
            let n = 1 + rng.below(200);
            let env = [("MQSEAL_SOAK_SUB_DIE_BEFORE_COMMIT", n.to_string())];
            let mut doomed = start_subscriber(sub_runs, &env);
            figures.subscriber_rss.push(doomed.wait_death());
            figures.subscriber_kills += 1;
            sub_runs += 1;
            // …the next start puts that message into the replay window before anything else.
            subscriber = start_subscriber(sub_runs, &[]);
            subscriber.wait_for("the repair", |l| l.starts_with("recovered ").then_some(()));
            repairs += 1;
            subscriber.wait_for("a first delivery", |l| {
                l.starts_with("first ").then_some(())
            });
        } else if kill_subscriber {
            subscriber = start_subscriber(sub_runs, &[]);
            // No lock-out: the restarted subscriber accepts messages again.
            subscriber.wait_for("a first delivery", |l| {
                l.starts_with("first ").then_some(())
            });
        }
        publisher.wait_acked(target);
        thread::sleep(Duration::from_micros(rng.below(3_000)));
        figures.publisher_rss.push(publisher.kill9());
        figures.publisher_kills += 1;
        previous_target = target;
    }
    // The last run publishes the rest; the subscriber exits once it delivered every index.
    let publisher = start_publisher(PUBLISHER_KILLS);
    figures.publisher_rss.push(publisher.finish());
    figures.subscriber_rss.push(subscriber.finish());
    let broker_rss = broker.peak_rss_kib();

    // ---- what the application received -------------------------------------------------------
    let (records, _) = soak::read_log(&app_log).unwrap();
    let mut deliveries_by_index: BTreeMap<u64, u32> = BTreeMap::new();
    let mut delivered_messages: HashMap<(String, u32, u64), usize> = HashMap::new();
    // Every sealed message the subscriber got (delivered or refused), by nonce.
    let mut nonces: HashMap<(u32, [u8; 4], u64), Vec<u8>> = HashMap::new();
    let mut carried = 0u64;
    let mut seqs_by_run: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
    let mut per_sub_run: Vec<u64> = Vec::new();
    let publisher_fp = tx.fingerprint().to_string();
    let mut one_nonce_one_message = |sealed: &[u8]| {
        carried += 1;
        let h = mqseal::inspect(sealed).unwrap();
        let previous = nonces
            .entry((h.epoch, h.sender.0, h.seq))
            .or_insert_with(|| sealed.to_vec());
        assert_eq!(
            previous.as_slice(),
            sealed,
            "nonce reuse: epoch {} seq {} carried two different messages",
            h.epoch,
            h.seq
        );
    };
    for r in &records {
        match r {
            Record::Started(_) => per_sub_run.push(0),
            Record::Delivered(d) => {
                *per_sub_run.last_mut().unwrap() += 1;
                assert_eq!(d.sender, publisher_fp);
                one_nonce_one_message(&d.sealed);
                *deliveries_by_index.entry(d.index).or_default() += 1;
                // The same sealed message (topic, epoch, seq) handed over twice?
                let n = delivered_messages
                    .entry((d.topic.clone(), d.epoch, d.seq))
                    .or_default();
                *n += 1;
                assert_eq!(
                    *n, 1,
                    "sealed message seq {} on {} delivered twice to the application",
                    d.seq, d.topic
                );
                let e = seqs_by_run.entry(d.run).or_insert((u64::MAX, 0));
                e.0 = e.0.min(d.seq);
                e.1 = e.1.max(d.seq);
            }
            Record::Refused {
                reason,
                seq,
                sealed,
                ..
            } => {
                assert!(
                    matches!(reason.as_str(), "duplicate" | "replay" | "too_old"),
                    "refused seq {seq:?}: {reason}"
                );
                one_nonce_one_message(sealed);
            }
        }
    }
    // Nothing lost at QoS 1.
    let missing: Vec<u64> = (0..MESSAGES)
        .filter(|i| !deliveries_by_index.contains_key(i))
        .collect();
    assert!(
        missing.is_empty(),
        "{} logical messages lost, first {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    let logical_duplicates: u64 = deliveries_by_index
        .values()
        .map(|n| u64::from(*n - 1))
        .sum();
    // Every restarted publisher sealed above everything sealed by earlier runs.
    let mut highest: Option<u64> = None;
    for (run, (low, high)) in &seqs_by_run {
        if let Some(h) = highest {
            assert!(
                *low > h,
                "publisher run {run} sealed seq {low}, not above {h}"
            );
        }
        highest = Some(*high);
    }
    // No lock-out: every subscriber run delivered messages.
    assert_eq!(per_sub_run.len() as u32, sub_runs + 1);
    assert!(
        per_sub_run.iter().all(|n| *n > 0),
        "a subscriber run delivered nothing: {per_sub_run:?}"
    );
    let refused = soak::refusals(&records);

    // ---- memory ------------------------------------------------------------------------------
    let pub_peak = figures.publisher_rss.iter().copied().max().unwrap();
    let sub_peak = figures.subscriber_rss.iter().copied().max().unwrap();
    assert!(pub_peak > 0 && sub_peak > 0, "peak RSS not readable");
    assert!(
        pub_peak < RSS_LIMIT_KIB,
        "publisher peak RSS {pub_peak} KiB"
    );
    assert!(
        sub_peak < RSS_LIMIT_KIB,
        "subscriber peak RSS {sub_peak} KiB"
    );

    if let SoakBroker::Mosquitto(_) = broker {
        assert_eq!(figures.broker_restarts, BROKER_RESTART_CYCLES.len() as u64);
    }
    assert!(figures.publisher_kills >= 20);
    eprintln!(
        "crash/soak: {MESSAGES} logical messages, {} sealed messages reached the subscriber \
         ({carried} deliveries), {} handed to the application ({logical_duplicates} logical \
         re-sends after publisher kills, 0 sealed message twice); {} publisher kills, {} \
         subscriber kills, {} broker restarts; 0 nonce reuse, 0 lost; refused redeliveries \
         {refused:?}; {repairs} start-up repair(s) after a kill between record and commit; \
         peak RSS publisher {pub_peak} KiB, subscriber {sub_peak} KiB, broker {} KiB; {:.1} s",
        nonces.len(),
        delivered_messages.len(),
        figures.publisher_kills,
        figures.subscriber_kills,
        figures.broker_restarts,
        broker_rss.map_or("n/a".to_string(), |k| k.to_string()),
        started.elapsed().as_secs_f64()
    );
}
