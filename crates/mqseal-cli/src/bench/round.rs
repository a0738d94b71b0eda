//! One measured round: N messages of one mode through the broker, publisher and subscriber in
//! this process, each side pipelined over two threads.
//!
//! ```text
//! publisher:  [seal thread] --rumqttc request channel--> [network thread] --> broker
//! subscriber: broker --> [network thread] --channel--> [open thread: batches of up to --batch]
//! ```
//! The seal thread writes its clock into the first 8 bytes of each payload before sealing; the
//! open thread reads it back after opening, so a latency covers seal, broker, open. At most
//! `window` messages are in flight between the seal thread and the open thread (end-to-end
//! flow control: QoS 0 gives none, and brokers drop what overflows their queues).

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use mqseal::{BatchItem, Delivery, Identity, OpenPolicy, Opener, Profile, Sealer, TreeKey};
use rumqttc::{Client, Connection, Event, Outgoing, Packet, Publish, QoS};

use super::Mode;
use super::cpu;
use crate::conn::ConnFlags;
use crate::error::{CliError, Result, err};

/// How long without progress before a round gives up on the missing messages.
const STALL: Duration = Duration::from_secs(10);

/// What a round is asked to do.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Plaintext or a sealing profile.
    pub mode: Mode,
    /// The broker and how to connect to it.
    pub conn: ConnFlags,
    /// The topic (unique to the round).
    pub topic: String,
    /// Messages to send.
    pub count: u64,
    /// Payload bytes (at least 8: the send time travels inside).
    pub size: usize,
    /// MQTT QoS of the publications and the subscription.
    pub qos: QoS,
    /// Messages in flight end to end, at most.
    pub window: u64,
    /// Messages opened at once, at most (1: one by one).
    pub batch: usize,
    /// Messages per second to publish at (`None`: as fast as the window allows).
    pub rate: Option<u32>,
}

/// What a round measured.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Messages opened (or, plaintext, received) intact.
    pub received: u64,
    /// Messages that did not open, with the first reason.
    pub rejected: u64,
    /// The first rejection's reason.
    pub first_error: Option<String>,
    /// From the first seal to the last open.
    pub elapsed: Duration,
    /// Per message: from before sealing to after opening, in ns.
    pub latencies_ns: Vec<u64>,
    /// CPU of the publisher's two threads, ns.
    pub pub_cpu_ns: u64,
    /// CPU of the subscriber's two threads, ns.
    pub sub_cpu_ns: u64,
}

/// Runs one round. Setup (keys, connections, subscription) happens before the clock starts.
pub fn run(spec: &Spec) -> Result<Outcome> {
    let (sealer, opener) = parties(spec)?;
    let start = Instant::now();

    // Subscriber: connect and subscribe before anything is published.
    let mut sub_options = spec.conn.options("bench-sub")?;
    sub_options.set_max_packet_size(packet_limit(spec.size), packet_limit(spec.size));
    let (sub_client, mut sub_conn) = Client::new(sub_options, 64);
    no_delay(&mut sub_conn);
    sub_client
        .subscribe(spec.topic.as_str(), spec.qos)
        .map_err(|e| err("subscribe", e))?;
    let (msg_tx, msg_rx) = mpsc::channel();
    let (ready_tx, ready_rx) = mpsc::channel();
    let sub_net = spawn("bench-sub-net", move || {
        subscriber_network(sub_conn, msg_tx, ready_tx)
    })?;
    wait_ready(&ready_rx, "the subscriber")?;

    let mut pub_options = spec.conn.options("bench-pub")?;
    pub_options.set_max_packet_size(packet_limit(spec.size), packet_limit(spec.size));
    let (pub_client, mut pub_conn) = Client::new(pub_options, 1024);
    no_delay(&mut pub_conn);
    let (ready_tx, ready_rx) = mpsc::channel();
    let pub_net = spawn("bench-pub-net", move || {
        publisher_network(pub_conn, ready_tx)
    })?;
    wait_ready(&ready_rx, "the publisher")?;

    // The measured part.
    let credits = Arc::new(Credits::default());
    let opener_side = {
        let (credits, spec) = (credits.clone(), spec.clone());
        spawn("bench-open", move || {
            open_loop(&spec, opener, &msg_rx, &credits, start)
        })?
    };
    let sealer_side = {
        let (credits, spec, client) = (credits.clone(), spec.clone(), pub_client.clone());
        spawn("bench-seal", move || {
            seal_loop(&spec, sealer, &client, &credits, start)
        })?
    };
    let seal = join(sealer_side)?;
    let open = join(opener_side)?;
    let _ = pub_client.disconnect();
    let _ = sub_client.disconnect();
    drop((pub_client, sub_client));
    let (pub_net_cpu, pub_failure) = join(pub_net)?;
    let (sub_net_cpu, sub_failure) = join(sub_net)?;
    let mut open = open?;
    let (first_send, seal_cpu) = seal?;
    if open.received + open.rejected < spec.count {
        for (who, failure) in [("publisher", pub_failure), ("subscriber", sub_failure)] {
            if let Some(why) = failure {
                return Err(CliError(format!(
                    "the {who} lost its connection during the {} round: {why}",
                    spec.mode.name()
                )));
            }
        }
    }
    open.elapsed = open.elapsed.saturating_sub(first_send);
    open.pub_cpu_ns = seal_cpu + pub_net_cpu;
    open.sub_cpu_ns += sub_net_cpu;
    Ok(open)
}

/// TCP_NODELAY: small packets go out at once instead of waiting (Nagle's algorithm) for the
/// acknowledgement of the previous ones, which the peer may delay by up to 40 ms.
fn no_delay(conn: &mut Connection) {
    let mut network = conn.eventloop.network_options();
    network.set_tcp_nodelay(true);
    conn.eventloop.set_network_options(network);
}

/// A sealer and an opener sharing a fresh key (and, signed, the sender's identity).
fn parties(spec: &Spec) -> Result<(Option<Sealer>, Option<Opener>)> {
    let profile = match spec.mode {
        Mode::Plaintext => return Ok((None, None)),
        Mode::Signed => Profile::Signed,
        Mode::GroupMac => Profile::GroupMac,
    };
    let sender = Identity::generate()?;
    let key = TreeKey::generate(&spec.topic, 1)?;
    let mut sealer = Sealer::new(sender.clone(), profile, 0);
    sealer.add_key(key.clone());
    let mut opener = Opener::with_policy(OpenPolicy::default());
    opener.trust_sender(sender.public());
    if profile == Profile::GroupMac {
        opener.trust_group_mac_sender(sender.public(), &spec.topic)?;
    }
    opener.add_key(key);
    Ok((Some(sealer), Some(opener)))
}

/// The largest packet either client sends or accepts: the sealed payload plus headroom.
fn packet_limit(size: usize) -> usize {
    (size + mqseal::MAX_OVERHEAD_SIGNED + 1024).max(64 * 1024)
}

/// Messages opened so far, for the publisher's flow control.
#[derive(Debug, Default)]
struct Credits {
    done: Mutex<Progress>,
    changed: Condvar,
}

#[derive(Debug, Default, Clone, Copy)]
struct Progress {
    /// Messages the open thread is finished with (opened, rejected).
    settled: u64,
    /// The open thread stopped (all received, or gave up).
    finished: bool,
}

impl Credits {
    fn settle(&self, n: u64, finished: bool) {
        let mut p = self.done.lock().unwrap_or_else(PoisonError::into_inner);
        p.settled += n;
        p.finished |= finished;
        drop(p);
        self.changed.notify_one();
    }

    /// Waits until fewer than `window` of `sent` messages are unsettled; `false` if the open
    /// thread stopped or nothing moved for the stall period.
    fn wait_below(&self, sent: u64, window: u64) -> bool {
        let mut p = self.done.lock().unwrap_or_else(PoisonError::into_inner);
        let mut last = (p.settled, Instant::now());
        while sent.saturating_sub(p.settled) >= window {
            if p.finished {
                return false;
            }
            if p.settled != last.0 {
                last = (p.settled, Instant::now());
            } else if last.1.elapsed() > STALL {
                return false;
            }
            p = self
                .changed
                .wait_timeout(p, Duration::from_millis(100))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }
}

/// Seals (unless plaintext) and hands `count` messages to the publisher's client. Returns the
/// time of the first send and this thread's CPU time.
fn seal_loop(
    spec: &Spec,
    mut sealer: Option<Sealer>,
    client: &Client,
    credits: &Credits,
    start: Instant,
) -> Result<(Duration, u64)> {
    let cpu0 = cpu::thread_ns().unwrap_or(0);
    let first = start.elapsed();
    let mut payload = vec![0x5a_u8; spec.size];
    let interval = spec.rate.map(|r| Duration::from_secs(1) / r.max(1));
    let mut next = Instant::now();
    for sent in 0..spec.count {
        if let Some(interval) = interval {
            // Paced: the schedule does not slip when a send is late (open loop).
            let now = Instant::now();
            if next > now {
                thread::sleep(next - now);
            }
            next += interval;
        }
        if !credits.wait_below(sent, spec.window) {
            break;
        }
        let now = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        if let Some(stamp) = payload.get_mut(..8) {
            stamp.copy_from_slice(&now.to_le_bytes());
        }
        let bytes = match sealer.as_mut() {
            Some(s) => s.seal(&spec.topic, &payload, false)?,
            None => payload.clone(),
        };
        client
            .publish(spec.topic.as_str(), spec.qos, false, bytes)
            .map_err(|e| err("publish", e))?;
    }
    Ok((first, cpu::thread_ns().unwrap_or(0).saturating_sub(cpu0)))
}

/// Receives, opens in batches (whatever has arrived, up to `spec.batch`), and records the
/// latency of every message.
fn open_loop(
    spec: &Spec,
    mut opener: Option<Opener>,
    rx: &Receiver<Publish>,
    credits: &Credits,
    start: Instant,
) -> Result<Outcome> {
    let cpu0 = cpu::thread_ns().unwrap_or(0);
    let mut out = Outcome {
        latencies_ns: Vec::with_capacity(usize::try_from(spec.count).unwrap_or(0)),
        ..Outcome::default()
    };
    let mut batch: Vec<Publish> = Vec::with_capacity(spec.batch);
    let mut stamps: Vec<u64> = Vec::with_capacity(spec.batch);
    let mut plain = vec![0u8; spec.size + mqseal::MAX_OVERHEAD_SIGNED];
    while out.received + out.rejected < spec.count {
        batch.clear();
        match rx.recv_timeout(STALL) {
            Ok(p) => batch.push(p),
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
        }
        while batch.len() < spec.batch {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        stamps.clear();
        match opener.as_mut() {
            None => stamps.extend(batch.iter().filter_map(|p| stamp(&p.payload))),
            // Batches pay off with signatures (Ed25519 batch verification); without, each
            // message is opened into a reused buffer, allocation-free.
            Some(opener) if spec.batch > 1 && spec.mode == Mode::Signed => {
                let items: Vec<BatchItem<'_>> = batch
                    .iter()
                    .map(|p| BatchItem {
                        topic: &p.topic,
                        message: &p.payload,
                        delivery: delivery(p),
                    })
                    .collect();
                for result in opener.open_batch(&items) {
                    match result {
                        Ok(m) => stamps.extend(stamp(&m.payload)),
                        Err(e) => reject(&mut out, &e),
                    }
                }
            }
            Some(opener) => {
                for p in &batch {
                    match opener.open_into(&p.topic, &p.payload, &delivery(p), &mut plain) {
                        Ok(info) => stamps.extend(plain.get(..info.payload_len).and_then(stamp)),
                        Err(e) => reject(&mut out, &e),
                    }
                }
            }
        }
        let now = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        out.latencies_ns
            .extend(stamps.iter().map(|&t| now.saturating_sub(t)));
        out.received += stamps.len() as u64;
        out.elapsed = start.elapsed();
        let settled = batch.len() as u64;
        credits.settle(settled, out.received + out.rejected >= spec.count);
    }
    credits.settle(0, true);
    out.sub_cpu_ns = cpu::thread_ns().unwrap_or(0).saturating_sub(cpu0);
    Ok(out)
}

fn delivery(p: &Publish) -> Delivery {
    Delivery {
        retained: p.retain,
        duplicate: p.dup,
        now: None,
    }
}

fn reject(out: &mut Outcome, e: &mqseal::Error) {
    out.rejected += 1;
    if out.first_error.is_none() {
        out.first_error = Some(format!("{e} [{}]", e.name()));
    }
}

/// The send time written by the seal thread.
fn stamp(payload: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(payload.get(..8)?.try_into().ok()?))
}

/// Drives the subscriber's connection: reports readiness on SUBACK, forwards every PUBLISH.
/// Returns this thread's CPU time from SUBACK on, and the connection's failure if it failed.
fn subscriber_network(
    mut conn: Connection,
    messages: Sender<Publish>,
    ready: Sender<std::result::Result<(), String>>,
) -> (u64, Option<String>) {
    let mut cpu0 = None;
    let mut failure = None;
    for event in conn.iter() {
        match event {
            Ok(Event::Incoming(Packet::SubAck(_))) => {
                cpu0 = cpu::thread_ns();
                let _ = ready.send(Ok(()));
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                let _ = messages.send(p);
            }
            Ok(Event::Outgoing(Outgoing::Disconnect)) => break,
            Ok(_) => {}
            Err(e) => {
                let why = describe(&e);
                let _ = ready.send(Err(why.clone()));
                failure = Some(why);
                break;
            }
        }
    }
    (cpu_since(cpu0), failure)
}

/// Drives the publisher's connection (QoS 1/2 acknowledgements included). Returns this
/// thread's CPU time from CONNACK on, and the connection's failure if it failed.
fn publisher_network(
    mut conn: Connection,
    ready: Sender<std::result::Result<(), String>>,
) -> (u64, Option<String>) {
    let mut cpu0 = None;
    let mut failure = None;
    for event in conn.iter() {
        match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                cpu0 = cpu::thread_ns();
                let _ = ready.send(Ok(()));
            }
            Ok(Event::Outgoing(Outgoing::Disconnect)) => break,
            Ok(_) => {}
            Err(e) => {
                let why = describe(&e);
                let _ = ready.send(Err(why.clone()));
                failure = Some(why);
                break;
            }
        }
    }
    (cpu_since(cpu0), failure)
}

fn cpu_since(start: Option<u64>) -> u64 {
    match (start, cpu::thread_ns()) {
        (Some(a), Some(b)) => b.saturating_sub(a),
        _ => 0,
    }
}

fn describe(e: &rumqttc::ConnectionError) -> String {
    let f = mqseal_rumqttc::explain(e);
    format!("{}; fix: {}", f.reason, f.fix)
}

fn wait_ready(rx: &Receiver<std::result::Result<(), String>>, who: &str) -> Result<()> {
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(why)) => Err(CliError(format!("{who} could not connect: {why}"))),
        Err(_) => Err(CliError(format!(
            "{who} got no answer from the broker within 30 s"
        ))),
    }
}

fn spawn<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<thread::JoinHandle<T>> {
    thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map_err(|e| err("cannot start a thread", e))
}

fn join<T>(handle: thread::JoinHandle<T>) -> Result<T> {
    handle
        .join()
        .map_err(|_| CliError("a benchmark thread panicked".into()))
}
