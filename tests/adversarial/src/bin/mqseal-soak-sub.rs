//! Crash/soak helper (`tests/crash_soak.rs`): a QoS 1 subscriber with a persistent MQTT session
//! and the keystore's `PersistentOpener`, appending what it hands to the application to an
//! application log (`mqseal_adversarial_tests::soak`). Exits once every index below `total` was
//! delivered. Not a user tool.
//!
//! ```text
//! mqseal-soak-sub <store> <application log> <port> <client id> <total> <run>
//! ```
//!
//! Exactly-once hand-over to the application across `kill -9`: each message is opened with the
//! acceptance recorded in memory only (`open_uncommitted`), its application record (with the
//! sealed bytes) is appended to the log, then the acceptance is made durable (`commit`), and only
//! then is the message acknowledged (on the next poll). A kill before the record leaves the
//! message unacknowledged: the broker delivers it again and it is accepted then. A kill between
//! the record and the commit is repaired at start: the last record's sealed bytes are opened
//! again, so the window holds it before the broker's redelivery arrives (and is refused).
//!
//! Prints `recovered <index> <seq>` when the start-up repair was needed, `ready` on its SUBACK,
//! `first <index> <seq>` on its first delivery, and `done <peak RSS KiB>` at the end. With
//! `MQSEAL_SOAK_SUB_DIE_BEFORE_COMMIT=n` it kills itself (SIGKILL) right after its n-th record,
//! before the commit.
#![forbid(unsafe_code)]

use std::collections::HashSet;
use std::error::Error;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use mqseal::{Delivery, OpenPolicy, Opened, Profile, Sealer};
use mqseal_adversarial_tests::soak::{self, Delivered, Record};
use mqseal_rumqttc::{ConnectOptions, Event, OpenBackend, OpenFailure, SealedClient};
use mqseal_store::{PersistentOpener, Store, StoreError};
use rumqttc::QoS;

/// The persistent opener, accepting in memory; the application commits after its record.
struct Backend {
    opener: PersistentOpener,
    /// The bytes of the last delivery (for the application log, refused ones included).
    last: Vec<u8>,
}

impl OpenBackend for Backend {
    fn open(
        &mut self,
        topic: &str,
        message: &[u8],
        delivery: &Delivery,
    ) -> Result<Opened, OpenFailure> {
        self.last = message.to_vec();
        self.opener
            .open_uncommitted(topic, message, delivery)
            .map_err(|e| match e {
                StoreError::Core(core) => OpenFailure::Refused(core),
                other => OpenFailure::Storage(other.to_string()),
            })
    }
}

/// SIGKILL to ourselves (no destructor, no flush: like an external `kill -9`).
fn die() -> ! {
    let _ = say("dying");
    let _ = std::process::Command::new("kill")
        .arg("-KILL")
        .arg(std::process::id().to_string())
        .status();
    std::process::abort()
}

fn say(line: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()
}

fn main() -> Result<(), Box<dyn Error>> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let [store, log_path, port, client_id, total, run] = a.as_slice() else {
        return Err("usage: mqseal-soak-sub <store> <log> <port> <client id> <total> <run>".into());
    };
    let log_path = PathBuf::from(log_path);
    let port: u16 = port.parse()?;
    let total: u64 = total.parse()?;
    let run: u32 = run.parse()?;
    // Fault injection: die by SIGKILL right after the n-th record of this run, before its
    // commit (the narrow window the recovery at start exists for).
    let die_before_commit: Option<u64> = std::env::var("MQSEAL_SOAK_SUB_DIE_BEFORE_COMMIT")
        .ok()
        .and_then(|v| v.parse().ok());

    let store = Store::open(store)?;
    let mut opener = store.opener(OpenPolicy::default())?;

    // Recovery: drop a record torn by a kill, and make sure the last handled message is in the
    // replay window (it is, unless the kill fell between its record and its commit).
    let mut delivered: HashSet<u64> = HashSet::new();
    let mut last = None;
    let complete = soak::scan_log(&log_path, |r| {
        if let Record::Delivered(d) = r {
            delivered.insert(d.index);
            last = Some(d);
        }
    })?;
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&log_path)?;
    file.set_len(complete)?;
    drop(file);
    if let Some(d) = last {
        match opener.open_uncommitted(&d.topic, &d.sealed, &Delivery::default()) {
            Ok(_) => {
                opener.commit()?;
                say(&format!("recovered {} {}", d.index, d.seq))?;
            }
            Err(StoreError::Core(mqseal::Error::Replay | mqseal::Error::TooOld)) => {}
            Err(e) => return Err(format!("recovery of seq {}: {e}", d.seq).into()),
        }
    }
    let mut log = OpenOptions::new().append(true).open(&log_path)?;
    log.write_all(Record::Started(run).line().as_bytes())?;

    let mut connect = ConnectOptions::new(client_id.clone(), "127.0.0.1", port);
    connect.clean_session = false;
    // Never used to publish: no key.
    let sealer = Sealer::new(store.identity().clone(), Profile::Signed, 0);
    let backend = Backend {
        opener,
        last: Vec::new(),
    };
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async {
            let (client, mut lp) = SealedClient::new(connect.v4()?, 100, sealer, backend);
            client.subscribe(soak::FILTER, QoS::AtLeastOnce).await?;
            let mut ready = false;
            let mut first = false;
            let mut handled = 0u64;
            while (delivered.len() as u64) < total {
                match lp.poll().await {
                    Ok(Event::Message(m)) => {
                        let sealed = std::mem::take(&mut lp.opener_mut().last);
                        let (index, publisher_run) =
                            soak::parse_payload(&m.payload).ok_or("bad payload")?;
                        let record = Record::Delivered(Delivered {
                            index,
                            run: publisher_run,
                            topic: m.topic.clone(),
                            epoch: m.epoch,
                            seq: m.seq,
                            sender: m.sender.fingerprint().to_string(),
                            sealed,
                        });
                        // Handle (the record), then commit; the ack goes with the next poll.
                        log.write_all(record.line().as_bytes())?;
                        handled += 1;
                        if die_before_commit == Some(handled) {
                            die();
                        }
                        lp.opener_mut().opener.commit()?;
                        delivered.insert(index);
                        if !first {
                            first = true;
                            say(&format!("first {index} {}", m.seq))?;
                        }
                    }
                    Ok(Event::Rejected(r)) => {
                        let record = Record::Refused {
                            reason: r.error.name().to_string(),
                            seq: r.claimed_seq,
                            duplicate: r.duplicate,
                            topic: r.topic.clone(),
                            sealed: std::mem::take(&mut lp.opener_mut().last),
                        };
                        log.write_all(record.line().as_bytes())?;
                    }
                    Ok(Event::StorageFailed(f)) => {
                        return Err(format!("storage failure: {}", f.reason).into());
                    }
                    Ok(Event::Mqtt(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_)))) => {
                        if !ready {
                            ready = true;
                            say("ready")?;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
            lp.flush_acks();
            // Not `disconnect().await`: with the request channel full of acknowledgements it
            // would wait for a poll that never comes.
            let _ = client.inner().try_disconnect();
            let _ = tokio::time::timeout(Duration::from_secs(2), async {
                while lp.poll().await.is_ok() {}
            })
            .await;
            Ok::<_, Box<dyn Error>>(())
        })?;
    let rss = soak::peak_rss_kib(std::process::id()).unwrap_or(0);
    say(&format!("done {rss}"))?;
    Ok(())
}
