//! Crash/soak helper (`tests/crash_soak.rs`): publishes the numbered stream at QoS 1 through the
//! mqseal-rumqttc wrapper with the keystore's crash-safe `PersistentSealer`, resuming after a
//! `kill -9` from its progress file. Not a user tool.
//!
//! ```text
//! mqseal-soak-pub <store> <progress file> <port> <client id> <total> <batch> <run> <seq block>
//! ```
//!
//! Logical messages go out in batches of `batch` (at most rumqttc's 100 in flight). Once every
//! message of a batch is acknowledged by the broker (PUBACK; retransmitted by rumqttc after a
//! broker restart, from the persistent session), `next <end>` is written to the progress file and
//! `acked <end>` printed. A restarted publisher resumes at the recorded index: the messages of an
//! unfinished batch are sealed again, under new sequence numbers (logical duplicates, never a
//! repeated nonce). Prints `start <index> <next seq>` first and `done <peak RSS KiB>` last.
#![forbid(unsafe_code)]

use std::collections::HashSet;
use std::error::Error;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use mqseal::{Opener, Profile};
use mqseal_adversarial_tests::soak;
use mqseal_rumqttc::{ConnectOptions, Event, SealedClient};
use mqseal_store::{Store, StoreOptions};
use rumqttc::{Outgoing, QoS};

struct Args {
    store: PathBuf,
    progress: PathBuf,
    port: u16,
    client_id: String,
    total: u64,
    batch: u64,
    run: u32,
    block: u64,
}

fn args() -> Result<Args, Box<dyn Error>> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let [store, progress, port, client_id, total, batch, run, block] = a.as_slice() else {
        return Err(
            "usage: mqseal-soak-pub <store> <progress> <port> <client id> <total> \
                    <batch> <run> <seq block>"
                .into(),
        );
    };
    let batch: u64 = batch.parse()?;
    if !(1..=90).contains(&batch) {
        return Err("batch must be 1..=90 (rumqttc keeps 100 messages in flight)".into());
    }
    Ok(Args {
        store: store.into(),
        progress: progress.into(),
        port: port.parse()?,
        client_id: client_id.clone(),
        total: total.parse()?,
        batch,
        run: run.parse()?,
        block: block.parse()?,
    })
}

fn say(line: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()
}

fn main() -> Result<(), Box<dyn Error>> {
    let a = args()?;
    let options = StoreOptions {
        sequence_block: a.block,
        ..StoreOptions::default()
    };
    let store = Store::open_with(&a.store, options)?;
    let sealer = store.sealer(Profile::Signed)?;
    let mut next = soak::read_progress(&a.progress)?;
    say(&format!("start {next} {}", sealer.next_seq()))?;

    let mut connect = ConnectOptions::new(a.client_id.clone(), "127.0.0.1", a.port);
    // A persistent session: unacknowledged messages are retransmitted after a broker restart
    // (rumqttc drops them when the broker has no session for us).
    connect.clean_session = false;
    let capacity = usize::try_from(a.batch)? + 10;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async {
            let (client, mut lp) =
                SealedClient::new(connect.v4()?, capacity, sealer, Opener::new());
            while next < a.total {
                let end = (next + a.batch).min(a.total);
                for index in next..end {
                    let topic = soak::topic(index);
                    client
                        .publish(&topic, QoS::AtLeastOnce, false, soak::payload(index, a.run))
                        .await?;
                }
                // The batch is acknowledged once each of its publishes left (distinct packet
                // ids: retransmissions reuse theirs) and nothing is in flight or pending.
                let mut sent = HashSet::new();
                loop {
                    match lp.poll().await {
                        Ok(Event::Mqtt(rumqttc::Event::Outgoing(Outgoing::Publish(pkid)))) => {
                            sent.insert(pkid);
                        }
                        Ok(_) => {}
                        // Broker down or restarting: poll again to reconnect.
                        Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                    }
                    let el = lp.inner_mut();
                    if sent.len() as u64 == end - next
                        && el.state.inflight() == 0
                        && el.pending.is_empty()
                    {
                        break;
                    }
                }
                soak::write_progress(&a.progress, end)?;
                say(&format!("acked {end}"))?;
                next = end;
            }
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
