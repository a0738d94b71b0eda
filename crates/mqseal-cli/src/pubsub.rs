//! `pub` and `sub`: mosquitto_pub/mosquitto_sub with sealing and opening.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io::{BufRead, Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use clap::Args;
use mqseal::{OpenPolicy, Opener, Profile, SealOptions, Sealer};
use mqseal_store::Store;
use rumqttc::QoS;

use crate::conn::{ConnFlags, runtime};
use crate::error::{CliError, Result, err};
use crate::session::{Options, Polled, Protocol};
use crate::{HelpFlag, StoreFlag};

/// `mqseal pub`.
#[derive(Debug, Args)]
pub struct PubArgs {
    #[command(flatten)]
    conn: ConnFlags,
    /// Topic to publish to (or the path of the -L URL).
    #[arg(short = 't', long = "topic", required_unless_present = "url",
          value_parser = clap::builder::OsStringValueParser::new())]
    topic: Option<OsString>,
    /// The message.
    #[arg(short = 'm', long = "message", conflicts_with_all = ["file", "stdin_line", "stdin_file"])]
    message: Option<String>,
    /// Send the content of a file as one message.
    #[arg(short = 'f', long = "file", conflicts_with_all = ["stdin_line", "stdin_file"])]
    file: Option<PathBuf>,
    /// Read stdin, send each line as a message.
    #[arg(short = 'l', long = "stdin-line", conflicts_with = "stdin_file")]
    stdin_line: bool,
    /// Read stdin, send it whole as one message.
    #[arg(short = 's', long = "stdin-file")]
    stdin_file: bool,
    /// QoS (0, 1 or 2).
    #[arg(short = 'q', long = "qos", default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    qos: u8,
    /// Publish retained (the retain flag is sealed into the message).
    #[arg(short = 'r', long = "retain")]
    retain: bool,
    /// MQTT version: 311 (v3.1.1) or 5. A publish the broker's ACL denies is dropped silently
    /// with 311 (Mosquitto still acknowledges it); with 5 the broker refuses it and, at -q 1 or
    /// 2, `mqseal pub` fails saying so.
    #[arg(
        short = 'V',
        long = "protocol-version",
        value_enum,
        default_value = "311"
    )]
    protocol: Protocol,
    #[command(flatten)]
    store: StoreFlag,
    #[command(flatten)]
    help: HelpFlag,
}

/// `mqseal sub`.
#[derive(Debug, Args)]
pub struct SubArgs {
    #[command(flatten)]
    conn: ConnFlags,
    /// Topic filter to subscribe to (repeatable; `+` and `#` allowed; or the path of the -L URL).
    #[arg(short = 't', long = "topic", required_unless_present = "url",
          value_parser = clap::builder::OsStringValueParser::new())]
    topics: Vec<OsString>,
    /// QoS of the subscriptions.
    #[arg(short = 'q', long = "qos", default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    qos: u8,
    /// Exit after this many messages.
    #[arg(short = 'C', long = "count")]
    count: Option<u64>,
    /// Print the topic before each message.
    #[arg(short = 'v', long = "verbose")]
    verbose: bool,
    /// Print the sender (trusted name, or fingerprint) and sequence number too.
    #[arg(long)]
    show_sender: bool,
    /// MQTT version: 311 (v3.1.1) or 5.
    #[arg(
        short = 'V',
        long = "protocol-version",
        value_enum,
        default_value = "311"
    )]
    protocol: Protocol,
    #[command(flatten)]
    store: StoreFlag,
    #[command(flatten)]
    help: HelpFlag,
}

fn qos(level: u8) -> QoS {
    match level {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

/// The payloads to publish. `max` bounds what is read: nothing larger can be sent.
fn messages(a: &PubArgs, max: usize) -> Result<Vec<Vec<u8>>> {
    let too_large = |what: &str| {
        CliError(format!(
            "{what}: a payload must fit in one MQTT packet of at most {max} bytes; fix: send a \
             smaller payload (an empty one is fine)"
        ))
    };
    if let Some(m) = &a.message {
        return Ok(vec![m.clone().into_bytes()]);
    }
    if let Some(f) = &a.file {
        let what = format!("{}", f.display());
        // Checked before reading: a huge file is refused without loading it.
        let len = std::fs::metadata(f)
            .map_err(|e| err(&format!("{what}: cannot read"), e))?
            .len();
        if len > max as u64 {
            return Err(too_large(&format!("{what} is {len} bytes")));
        }
        let bytes = std::fs::read(f).map_err(|e| err(&format!("{what}: cannot read"), e))?;
        return Ok(vec![bytes]);
    }
    if a.stdin_file {
        let mut all = Vec::new();
        std::io::stdin()
            .take(max as u64 + 1)
            .read_to_end(&mut all)
            .map_err(|e| err("cannot read stdin", e))?;
        if all.len() > max {
            return Err(too_large(&format!("stdin holds more than {max} bytes")));
        }
        return Ok(vec![all]);
    }
    if a.stdin_line {
        return std::io::stdin()
            .lock()
            .lines()
            .map(|l| {
                l.map(String::into_bytes)
                    .map_err(|e| err("cannot read stdin", e))
            })
            .collect();
    }
    Err(CliError(
        "nothing to publish; fix: give -m MESSAGE, -f FILE, -l (lines of stdin) or -s (stdin)"
            .into(),
    ))
}

/// What is wrong with a publish topic, if anything (the checks of `mqseal::validate_topic`).
fn topic_problem(topic: &str) -> Option<String> {
    if topic.is_empty() {
        Some("the topic is empty".into())
    } else if topic.len() > usize::from(u16::MAX) {
        Some(format!(
            "the topic is {} bytes long, MQTT allows 65535",
            topic.len()
        ))
    } else if topic.contains('\0') {
        Some("the topic contains a NUL character".into())
    } else if topic.contains(['+', '#']) {
        Some("the topic contains a wildcard (+ or #): wildcards are for subscriptions".into())
    } else {
        None
    }
}

/// A topic or filter for messages: at most 64 characters, then its length.
pub fn shorten(topic: &str) -> String {
    if topic.chars().count() <= 64 {
        return format!("{topic:?}");
    }
    let head: String = topic.chars().take(48).collect();
    format!("{head:?}… ({} bytes)", topic.len())
}

/// Size of the PUBLISH packet carrying a `payload`-byte payload (`extra`: 1 for the empty v5
/// property length, 0 for MQTT 3.1.1).
fn publish_packet_len(topic: &str, qos: QoS, extra: usize, payload: usize) -> usize {
    let rest = 2 + topic.len() + if qos == QoS::AtMostOnce { 0 } else { 2 } + extra + payload;
    let length_bytes = match rest {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    };
    1 + length_bytes + rest
}

/// A topic or filter from the command line: MQTT topics are UTF-8.
fn utf8<'a>(topic: &'a OsStr, what: &str) -> Result<&'a str> {
    topic.to_str().ok_or_else(|| {
        CliError(format!(
            "invalid {what} {}: not UTF-8 (MQTT topics are UTF-8 text); fix: check the \
             terminal's or script's encoding",
            shorten(&topic.to_string_lossy())
        ))
    })
}

pub fn publish(a: &PubArgs) -> Result<()> {
    let topic = a.conn.topic_from(a.topic.as_deref())?;
    let topic = utf8(&topic, "publish topic")?;
    if let Some(problem) = topic_problem(topic) {
        return Err(CliError(format!(
            "invalid publish topic {}: {problem}; fix: publish to a concrete topic such as \
             plant/7/temp",
            shorten(topic)
        )));
    }
    let dir = a.store.dir();
    let store = Store::open(&dir)?;
    let options = SealOptions::retain(a.retain);
    let mqtt = Options::new(&a.conn, "pub", a.protocol)?;
    let address = a.conn.address();
    let level = qos(a.qos);
    // Everything that can be checked locally is checked before the persistent sealer starts
    // (starting it reserves a block of sequence numbers in the store). The probe sealer stands
    // at the largest sequence number, so its lengths bound the real ones.
    let mut probe = Sealer::new(store.identity().clone(), Profile::Signed, 0);
    for key in store.sealing_keys()? {
        probe.add_key(key);
    }
    probe.set_sequence(u64::MAX - 1, u64::MAX);
    if probe.sealed_len(topic, 0, &options).is_none() {
        // Why: the probe's refusal (it spends nothing that matters: it is not the real sealer).
        if let Err(mqseal::Error::KeyExpired) = probe.seal_with(topic, b"", &options) {
            return Err(CliError(format!(
                "the key in {} for {} is outside its validity (expired, or granted ahead of time \
                 and not begun yet); fix: accept the newer epoch's grant (mqseal grant --fetch), \
                 or ask its issuer to rotate (mqseal rotate FILTER)",
                dir.display(),
                shorten(topic)
            )));
        }
        return Err(CliError(format!(
            "no key in {} covers {}; fix: accept a grant for it (mqseal grant --accept FILE or \
             --fetch) or create a tree key (mqseal keygen --tree FILTER)",
            dir.display(),
            shorten(topic)
        )));
    }
    let max = mqtt.max_packet_size();
    let payloads = messages(a, max)?;
    let mut largest = 0;
    for payload in &payloads {
        let sealed = probe
            .sealed_len(topic, payload.len(), &options)
            .unwrap_or(usize::MAX);
        let packet = publish_packet_len(topic, level, mqtt.publish_overhead(), sealed);
        largest = largest.max(packet);
        if packet > max {
            return Err(CliError(format!(
                "a {}-byte payload seals into a {packet}-byte MQTT packet, more than the maximum \
                 packet size of {max} bytes; fix: send a smaller payload",
                payload.len()
            )));
        }
    }
    let sealer = store.sealer(Profile::Signed)?;
    runtime()?.block_on(async {
        let (client, mut lp) = mqtt.open(100, sealer, Opener::new());
        lp.wait_connected(&address).await?;
        // Count completions: PUBACK (QoS 1), PUBCOMP (QoS 2), or the write itself (QoS 0); and
        // refusals (MQTT v5 only: a v3.1.1 broker cannot refuse, it drops).
        let done = Arc::new(AtomicUsize::new(0));
        let refused = Arc::new(std::sync::Mutex::new(Vec::new()));
        let notify = Arc::new(tokio::sync::Notify::new());
        let (d, r, n) = (done.clone(), refused.clone(), notify.clone());
        let driver = tokio::spawn(async move {
            loop {
                let finished = match lp.poll().await {
                    Ok(Polled::PubAck) => level == QoS::AtLeastOnce,
                    Ok(Polled::PubComp) => level == QoS::ExactlyOnce,
                    Ok(Polled::SentPublish) => level == QoS::AtMostOnce,
                    Ok(Polled::Refused(why)) => {
                        if let Ok(mut list) = r.lock() {
                            list.push(why);
                        }
                        true
                    }
                    Ok(_) => false,
                    Err(f) => return Some(f),
                };
                if finished {
                    d.fetch_add(1, Ordering::SeqCst);
                    n.notify_one();
                }
            }
        });
        for payload in &payloads {
            client.publish(topic, level, a.retain, payload).await?;
        }
        let total = payloads.len();
        while done.load(Ordering::SeqCst) < total {
            if driver.is_finished() {
                break;
            }
            let _ = tokio::time::timeout(Duration::from_millis(200), notify.notified()).await;
        }
        let _ = client.disconnect().await;
        let ended = driver.await.ok().flatten();
        let refused: Vec<&str> = refused.lock().map(|l| l.clone()).unwrap_or_default();
        if let Some(why) = refused.first() {
            return Err(CliError(format!(
                "the broker refused the publish: {why}: {} of {total} message(s) to {} refused \
                 by {address}",
                refused.len(),
                shorten(topic)
            )));
        }
        let sent = done.load(Ordering::SeqCst);
        if sent < total {
            // Connected and authenticated already: the usual cause is a message the broker
            // refuses by closing the connection (above its max_packet_size, or forbidden).
            let why = ended.map_or("connection closed".to_string(), |f| {
                format!(
                    "{}; fix: see the broker's log: a broker drops the connection on a message \
                     above its max_packet_size (the largest here is a {largest}-byte packet) or \
                     one its ACL forbids",
                    f.reason
                )
            });
            return Err(CliError(format!(
                "only {sent} of {total} message(s) confirmed by {address}: {why}"
            )));
        }
        Ok(())
    })
}

pub fn subscribe(a: &SubArgs) -> Result<()> {
    let mut filters = Vec::new();
    // The -t filters, and the -L URL's path as one more (mosquitto_sub does the same).
    let mut topics = a.topics.clone();
    if let Some(t) = a.conn.url_topic()? {
        topics.push(t.into());
    }
    if topics.is_empty() {
        topics.push(a.conn.topic_from(None)?);
    }
    for t in &topics {
        let t = utf8(t, "topic filter")?;
        filters.push(t);
        mqseal_rumqttc::check_filter(t).map_err(|e| {
            CliError(format!(
                "{e}; fix: subscribe to a topic or a filter such as plant/+/temp or plant/#"
            ))
        })?;
    }
    let store = Store::open(a.store.dir())?;
    let opener = store.opener(OpenPolicy::default())?;
    let names: HashMap<mqseal::Fingerprint, String> = store
        .trusted()?
        .into_iter()
        .map(|p| (p.public.fingerprint(), p.name))
        .chain([(store.fingerprint(), store.name().to_string())])
        .collect();
    // The subscriber never publishes: its sealer has no key and is never used.
    let sealer = Sealer::new(store.identity().clone(), Profile::Signed, 0);
    let mqtt = Options::new(&a.conn, "sub", a.protocol)?;
    let address = a.conn.address();
    let level = qos(a.qos);
    runtime()?.block_on(async {
        let (client, mut lp) = mqtt.open(100, sealer, opener);
        for t in &filters {
            client.subscribe(t, level).await?;
        }
        lp.wait_connected(&address).await?;
        let mut received = 0u64;
        let mut out = std::io::stdout();
        loop {
            if a.count.is_some_and(|c| received >= c) {
                break;
            }
            match lp.poll().await {
                Ok(Polled::Message(m)) => {
                    received += 1;
                    let mut line = Vec::new();
                    if a.verbose {
                        line.extend_from_slice(m.topic.as_bytes());
                        line.push(b' ');
                    }
                    if a.show_sender {
                        let fp = m.sender.fingerprint();
                        let who = names.get(&fp).cloned().unwrap_or_else(|| fp.to_string());
                        line.extend_from_slice(format!("[{who} #{}] ", m.seq).as_bytes());
                    }
                    line.extend_from_slice(&m.payload);
                    line.push(b'\n');
                    out.write_all(&line)
                        .and_then(|()| out.flush())
                        .map_err(|e| err("cannot write to stdout", e))?;
                }
                Ok(Polled::Rejected(r)) => {
                    if r.error == mqseal::Error::Duplicate {
                        continue;
                    }
                    eprintln!(
                        "mqseal: refused a message on {}: {} [{}]",
                        r.topic,
                        r.error,
                        r.error.name()
                    );
                }
                Ok(Polled::StorageFailed(f)) => {
                    eprintln!(
                        "mqseal: cannot record a message on {} ({}); not acknowledged",
                        f.topic, f.reason
                    );
                }
                Ok(_) => {}
                Err(f) => {
                    eprintln!(
                        "mqseal: connection to {address} lost: {}; reconnecting",
                        f.reason
                    );
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
        lp.flush_acks();
        let _ = client.disconnect().await;
        // Let the acknowledgements and the DISCONNECT go out.
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while lp.poll().await.is_ok() {}
        })
        .await;
        Ok(())
    })
}
