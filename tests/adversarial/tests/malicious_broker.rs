//! The malicious-broker suite: every attack a broker (or an insider member) can mount on sealed
//! messages, with, for each attack class, zero false accepts, the distinct typed error the
//! receiver rules predict (`spec/mqseal-v2.md` §7.1), no panic, and legitimate traffic still
//! getting through afterwards. Each test prints a summary table per attack class (also shown
//! on success: it is written to stderr directly).
//!
//! - Over the network: a man-in-the-middle MQTT proxy ([`MitmProxy`]) between a real broker
//!   (Mosquitto, or the embedded rumqttd where it is not installed) and a subscriber using the
//!   `mqseal-rumqttc` wrapper; the publisher and an insider publish through the broker. The
//!   proxy replays, duplicates, drops, reorders, delays, moves, flips the retain flag,
//!   truncates, extends, flips bits, swaps headers; the insider forges; a rotation leaves old
//!   epochs and a revoked member behind.
//! - In process, for volume: every bit of every byte of many messages of both profiles flipped
//!   (tens of thousands of opens of the core `Opener`, and of the keystore's
//!   `PersistentOpener`), reordering beyond the replay window, delays beyond a maximum age,
//!   insider forgeries in both profiles, an old epoch during and after its grace period.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mqseal::{
    Delivery, Error, Header, Identity, OpenPolicy, Opener, Profile, SealOptions, Sealer, TreeKey,
};
use mqseal_adversarial_tests::attacks::{self, Layout};
use mqseal_adversarial_tests::mqtt::Publish;
use mqseal_adversarial_tests::proxy::{Attack, MitmProxy};
use mqseal_adversarial_tests::report::Tally;
use mqseal_broker_tests::{Collected, Parties, plain_broker};
use mqseal_rumqttc::{
    ConnectOptions, Event, OpenBackend, SealBackend, SealedClient, SealedEventLoop,
};
use mqseal_store::{GrantTopics, OutgoingGrant, Roles, Store, StoreOptions, unix_now};
use rumqttc::QoS;

/// Hang guard of every wait for deliveries (not a timing assertion).
const QUIET: Duration = Duration::from_secs(10);

fn unique(tag: &str) -> String {
    let id = Identity::generate().unwrap();
    format!(
        "{tag}-{}-{}",
        std::process::id(),
        &id.fingerprint().to_string()[..8]
    )
}

/// Polls until the CONNACK.
async fn connect<O: OpenBackend>(lp: &mut SealedEventLoop<O>) {
    loop {
        match tokio::time::timeout(QUIET, lp.poll()).await {
            Ok(Ok(Event::Mqtt(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))))) => return,
            Ok(Ok(_)) => {}
            other => panic!("no CONNACK: {other:?}"),
        }
    }
}

/// Subscribes to `filter` (QoS 1) and polls until the SUBACK.
async fn subscribe<S: SealBackend, O: OpenBackend>(
    client: &SealedClient<S>,
    lp: &mut SealedEventLoop<O>,
    filter: &str,
) {
    client.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
    loop {
        match tokio::time::timeout(QUIET, lp.poll()).await {
            Ok(Ok(Event::Mqtt(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_))))) => return,
            Ok(Ok(Event::Mqtt(_))) => {}
            other => panic!("no SUBACK: {other:?}"),
        }
    }
}

/// Polls until `n` messages plus rejections arrived, or nothing came for [`QUIET`] (a hang
/// guard: the counts are checked by the caller).
async fn collect<O: OpenBackend>(lp: &mut SealedEventLoop<O>, n: usize) -> Collected {
    let mut got = Collected::default();
    while got.messages.len() + got.rejected.len() < n {
        match tokio::time::timeout(QUIET, lp.poll()).await {
            Ok(Ok(Event::Message(m))) => got.messages.push(m),
            Ok(Ok(Event::Rejected(r))) => got.rejected.push(r),
            Ok(Ok(_)) => {}
            Ok(Err(_)) | Err(_) => break,
        }
    }
    got
}

/// Drives a publisher's event loop in the background.
fn spawn_driver<O: OpenBackend>(mut lp: SealedEventLoop<O>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move { while lp.poll().await.is_ok() {} })
}

/// Expected errors of the attack messages the proxy emitted, in emission order.
type Expectations = Arc<Mutex<Vec<(String, Vec<Error>)>>>;

/// The subscriber under attack, its proxy, and the tally.
struct Net<S: SealBackend, O: OpenBackend> {
    proxy: MitmProxy,
    publisher: SealedClient<S>,
    sub: SealedEventLoop<O>,
    topic: String,
    counter: u64,
    tally: Tally,
    expect: Expectations,
}

impl<S: SealBackend, O: OpenBackend> Net<S, O> {
    /// Publishes `k` legitimate messages (QoS 1) and returns their payloads.
    async fn publish(&mut self, k: usize, retain: bool) -> Vec<Vec<u8>> {
        let topic = self.topic.clone();
        self.publish_on(&topic, k, retain).await
    }

    async fn publish_on(&mut self, topic: &str, k: usize, retain: bool) -> Vec<Vec<u8>> {
        let mut sent = Vec::new();
        for _ in 0..k {
            self.counter += 1;
            let payload = format!("legit message #{}", self.counter).into_bytes();
            self.publisher
                .publish(topic, QoS::AtLeastOnce, retain, &payload)
                .await
                .unwrap();
            sent.push(payload);
        }
        sent
    }

    /// Sets an attack that sees each delivery with the expectation log.
    fn attack(&mut self, f: impl FnMut(Publish, &Expectations) -> Vec<Publish> + Send + 'static) {
        let log = Arc::clone(&self.expect);
        let mut f = f;
        let attack: Attack = Box::new(move |p| f(p, &log));
        self.proxy.set_attack(attack);
    }

    /// Waits for `legit + attack messages` events and tallies them under `class`: messages must
    /// be legitimate ones delivered once; rejections are matched in order with the
    /// expectations the attack logged.
    async fn judge(&mut self, class: &str, legit: &[Vec<u8>], n_attack: usize) -> Collected {
        let got = collect(&mut self.sub, legit.len() + n_attack).await;
        let expect: Vec<(String, Vec<Error>)> = std::mem::take(&mut *self.expect.lock().unwrap());
        let mut seen = HashSet::new();
        for m in &got.messages {
            if legit.contains(&m.payload) && seen.insert(m.payload.clone()) {
                self.tally.legit(class, 1);
            } else {
                let text = String::from_utf8_lossy(&m.payload).into_owned();
                self.tally
                    .false_accept(class, &format!("payload {text:?} seq {}", m.seq));
            }
        }
        if got.rejected.len() != n_attack || expect.len() != n_attack {
            self.tally.note(
                class,
                &format!(
                    "{} rejections, {} attack messages expected, {} logged by the proxy",
                    got.rejected.len(),
                    n_attack,
                    expect.len()
                ),
            );
        }
        for (i, r) in got.rejected.iter().enumerate() {
            let (at, exp) = expect
                .get(i)
                .cloned()
                .unwrap_or_else(|| ("unlogged".to_string(), Vec::new()));
            self.tally.refused(class, r.error, &exp, &at);
        }
        got
    }

    /// Back to an honest relay; one legitimate message must get through, alone.
    async fn follow_up(&mut self, class: &str) {
        self.proxy.pass_through();
        let sent = self.publish(1, false).await;
        let got = collect(&mut self.sub, 1).await;
        let ok = got.rejected.is_empty()
            && got.messages.len() == 1
            && got.messages[0].payload == sent[0];
        self.tally.after(class, 1, u64::from(ok));
        if !ok {
            self.tally.note(
                class,
                &format!("follow-up: got {got:?} instead of one message"),
            );
        }
    }
}

/// Waits until the proxy saw `n` deliveries (hang guard: 10 s).
async fn recorded_at_least(proxy: &MitmProxy, n: usize) -> Vec<Publish> {
    for _ in 0..500 {
        let r = proxy.recorded();
        if r.len() >= n {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "the broker delivered only {} of {n} messages to the proxy",
        proxy.recorded().len()
    );
}

fn log(expect: &Expectations, at: String, errors: Vec<Error>) {
    expect.lock().unwrap().push((at, errors));
}

/// A plain rumqttc client (an insider's: it publishes bytes it sealed or forged itself).
async fn raw_client(port: u16, tag: &str) -> rumqttc::AsyncClient {
    let mut options = rumqttc::MqttOptions::new(unique(tag), "127.0.0.1", port);
    options.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut lp) = rumqttc::AsyncClient::new(options, 100);
    loop {
        match tokio::time::timeout(QUIET, lp.poll()).await {
            Ok(Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_)))) => break,
            Ok(Ok(_)) => {}
            other => panic!("{tag} could not connect: {other:?}"),
        }
    }
    tokio::spawn(async move { while lp.poll().await.is_ok() {} });
    client
}

#[tokio::test]
async fn a_malicious_broker_gets_nothing_past_the_subscriber() {
    let broker = plain_broker().unwrap();
    let proxy = MitmProxy::start(broker.port()).unwrap();
    let parties = Parties::new("plant/#");
    // Mallory is a member: she holds the whole tree and is a trusted sender in her own name.
    let mallory = Identity::generate().unwrap();
    let mut mallory_sealer = Sealer::new(mallory.clone(), Profile::Signed, 0);
    mallory_sealer.add_key(parties.tree.derive("plant/#").unwrap());

    // The subscriber holds plant/7/# only but listens to plant/#, through the proxy.
    let mut opener = parties.opener("plant/7/#");
    opener.trust_sender(mallory.public());
    let options = ConnectOptions::new(unique("sub"), "127.0.0.1", proxy.port())
        .v4()
        .unwrap();
    let (sub, mut sub_lp) = SealedClient::new(options, 1000, parties.sealer("plant/7/#"), opener);
    connect(&mut sub_lp).await;
    subscribe(&sub, &mut sub_lp, "plant/#").await;
    let options = ConnectOptions::new(unique("pub"), "127.0.0.1", broker.port())
        .v4()
        .unwrap();
    let (publisher, mut pub_lp) =
        SealedClient::new(options, 1000, parties.sealer("plant/#"), Opener::new());
    connect(&mut pub_lp).await;
    let _driver = spawn_driver(pub_lp);
    let insider = raw_client(broker.port(), "mallory").await;

    let mut net = Net {
        proxy,
        publisher,
        sub: sub_lp,
        topic: "plant/7/temp".to_string(),
        counter: 0,
        tally: Tally::new(&format!(
            "malicious broker over a MITM proxy ({})",
            if broker.is_mosquitto() {
                "Mosquitto"
            } else {
                "embedded rumqttd"
            }
        )),
        expect: Arc::default(),
    };

    // Baseline: an honest relay, recorded by the proxy.
    let baseline = net.publish(4, false).await;
    let got = collect(&mut net.sub, 4).await;
    assert_eq!(got.messages.len(), 4, "baseline: {got:?}");
    assert!(
        got.messages
            .iter()
            .zip(&baseline)
            .all(|(m, p)| &m.payload == p)
    );
    let recorded = net.proxy.recorded();
    assert_eq!(recorded.len(), 4);

    // Replay: the recorded deliveries again, later, as fresh deliveries.
    let class = "replay (recorded, re-sent later)";
    for p in &recorded {
        log(&net.expect, format!("pkid {}", p.pkid), vec![Error::Replay]);
    }
    net.proxy.inject(&recorded).unwrap();
    net.judge(class, &[], recorded.len()).await;
    net.follow_up(class).await;

    // Duplicate: every delivery twice, the copy flagged as a redelivery (DUP) or not.
    for (class, dup, error) in [
        ("duplicate (DUP flag set)", true, Error::Duplicate),
        ("duplicate (no DUP flag)", false, Error::Replay),
    ] {
        net.attack(move |p, log_| {
            let mut copy = p.clone();
            copy.dup = dup;
            log(log_, format!("copy of pkid {}", p.pkid), vec![error]);
            vec![p, copy]
        });
        let sent = net.publish(4, false).await;
        net.judge(class, &sent, 4).await;
        net.follow_up(class).await;
    }

    // Drop: every third delivery vanishes; the others arrive exactly once, in order.
    let class = "drop (every third delivery)";
    let mut i = 0;
    net.attack(move |p, _| {
        i += 1;
        if i % 3 == 0 { vec![] } else { vec![p] }
    });
    let sent = net.publish(9, false).await;
    let survivors: Vec<Vec<u8>> = sent
        .iter()
        .enumerate()
        .filter(|(i, _)| (i + 1) % 3 != 0)
        .map(|(_, p)| p.clone())
        .collect();
    let got = net.judge(class, &survivors, 0).await;
    let delivered: Vec<Vec<u8>> = got.messages.iter().map(|m| m.payload.clone()).collect();
    assert_eq!(delivered, survivors, "drop: wrong survivors");
    net.tally.suppressed(class, 3);
    net.follow_up(class).await;

    // Reorder: six deliveries held, then delivered last first: all accepted, once each.
    let class = "reorder (6 deliveries reversed)";
    let mut held = Vec::new();
    net.attack(move |p, _| {
        held.push(p);
        if held.len() == 6 {
            held.drain(..).rev().collect()
        } else {
            vec![]
        }
    });
    let sent = net.publish(6, false).await;
    let got = net.judge(class, &sent, 0).await;
    let seqs: Vec<u64> = got.messages.iter().map(|m| m.seq).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] > w[1]),
        "not reversed: {seqs:?}"
    );
    net.follow_up(class).await;

    // Delay: the first delivery is held back until four later ones went through.
    let class = "delay (held behind 4 later deliveries)";
    let mut first: Option<Publish> = None;
    let mut n = 0;
    net.attack(move |p, _| {
        n += 1;
        match n {
            1 => {
                first = Some(p);
                vec![]
            }
            5 => vec![p].into_iter().chain(first.take()).collect(),
            _ => vec![p],
        }
    });
    let sent = net.publish(5, false).await;
    let got = net.judge(class, &sent, 0).await;
    assert_eq!(got.messages.last().map(|m| &m.payload), Some(&sent[0]));
    net.follow_up(class).await;

    // Move to another topic: under the same key (the key id is per topic, so no held key has
    // it there, spec §4.6; the topic is also signed and bound into the AEAD), and to a topic the
    // subscriber holds no key for.
    for (class, to, error) in [
        (
            "move to another topic (same key)",
            "plant/7/humidity",
            Error::KeyNotFound,
        ),
        (
            "move to a topic outside the key",
            "plant/8/temp",
            Error::KeyNotFound,
        ),
    ] {
        net.attack(move |mut p, log_| {
            log(log_, format!("{} -> {to}", p.topic), vec![error]);
            p.topic = to.to_string();
            vec![p]
        });
        let _ = net.publish(4, false).await;
        net.judge(class, &[], 4).await;
        net.follow_up(class).await;
    }

    // Retain flag set on a live delivery of a message not published retained.
    let class = "retain flag set on a live delivery";
    net.attack(|mut p, log_| {
        log(
            log_,
            format!("pkid {}", p.pkid),
            vec![Error::RetainMismatch],
        );
        p.retain = true;
        vec![p]
    });
    let _ = net.publish(4, false).await;
    net.judge(class, &[], 4).await;
    // The other direction is not an attack (spec §7.4): brokers clear the flag on live
    // deliveries of retained publishes, so a cleared flag is accepted.
    net.attack(|mut p, _| {
        p.retain = false;
        vec![p]
    });
    let sent = net.publish_on("plant/7/retained", 1, true).await;
    net.judge(class, &sent, 0).await;
    net.follow_up(class).await;

    // Truncate: cut by 1, 16, 63, 64, 79, 80, 81 bytes, to one byte, to nothing.
    let class = "truncate";
    let cuts = [1usize, 16, 63, 64, 79, 80, 81, usize::MAX - 1, usize::MAX];
    let mut i = 0;
    net.attack(move |mut p, log_| {
        let layout = Layout::of(&p.payload).unwrap();
        let cut = cuts[i % cuts.len()];
        i += 1;
        let len = match cut {
            usize::MAX => 0,
            c if c == usize::MAX - 1 => 1,
            c => p.payload.len().saturating_sub(c),
        };
        log(
            log_,
            format!("{} of {} bytes", len, p.payload.len()),
            vec![attacks::truncate_outcome(&layout, len)],
        );
        p.payload.truncate(len);
        vec![p]
    });
    let _ = net.publish(cuts.len(), false).await;
    net.judge(class, &[], cuts.len()).await;
    net.follow_up(class).await;

    // Extend: append bytes (the signature is taken from the last 64 bytes).
    let class = "extend";
    let extra = [1usize, 7, 64, 1000];
    let mut i = 0;
    net.attack(move |mut p, log_| {
        let n = extra[i % extra.len()];
        i += 1;
        log(log_, format!("+{n} bytes"), vec![Error::BadSignature]);
        p.payload.extend(std::iter::repeat_n(0xa5, n));
        vec![p]
    });
    let _ = net.publish(extra.len(), false).await;
    net.judge(class, &[], extra.len()).await;
    net.follow_up(class).await;

    // Bit flips over the wire: every byte position of two messages, one bit each.
    let class = "bit flip (every byte position, via proxy)";
    let total = Arc::new(Mutex::new(0usize));
    let count = Arc::clone(&total);
    net.attack(move |p, log_| {
        let layout = Layout::of(&p.payload).unwrap();
        let mut out = Vec::new();
        for index in 0..p.payload.len() {
            let bit = (index % 8) as u8;
            let mut q = p.clone();
            q.payload = attacks::flip(&p.payload, index, bit);
            log(
                log_,
                format!("byte {index} bit {bit} ({:?})", layout.region(index)),
                attacks::flip_outcomes(&layout, index, bit),
            );
            out.push(q);
        }
        *count.lock().unwrap() += out.len();
        out
    });
    let mut n = 0;
    for (payload, retain) in [
        (&b""[..], false),
        (&b"a longer payload, retained"[..], true),
    ] {
        n += net.publisher.with_sealer(|s| {
            s.sealed_len(&net.topic, payload.len(), &SealOptions::retain(retain))
                .unwrap()
        });
        net.publisher
            .publish(&net.topic, QoS::AtLeastOnce, retain, payload)
            .await
            .unwrap();
    }
    net.judge(class, &[], n).await;
    assert_eq!(*total.lock().unwrap(), n);
    net.follow_up(class).await;

    // Swap headers between two deliveries of one sender, and between two senders.
    let class = "swap headers between messages";
    let mut pending: Option<Publish> = None;
    net.attack(move |p, log_| match pending.take() {
        None => {
            pending = Some(p);
            vec![]
        }
        Some(a) => {
            let mut x = a.clone();
            x.payload = attacks::swap_header(&a.payload, &p.payload).unwrap();
            let mut y = p.clone();
            y.payload = attacks::swap_header(&p.payload, &a.payload).unwrap();
            log(
                log_,
                "header of 1st on 2nd".into(),
                vec![Error::BadSignature],
            );
            log(
                log_,
                "header of 2nd on 1st".into(),
                vec![Error::BadSignature],
            );
            vec![x, y]
        }
    });
    let _ = net.publish(4, false).await;
    net.judge(class, &[], 4).await;
    // One from the publisher, one from Mallory (each header claims its own sender).
    let _ = net.publish(1, false).await;
    let own = mallory_sealer
        .seal("plant/7/temp", b"mallory", false)
        .unwrap();
    insider
        .publish("plant/7/temp", QoS::AtLeastOnce, false, own)
        .await
        .unwrap();
    net.judge(class, &[], 2).await;
    net.follow_up(class).await;

    // Insider forgery (signed profile): Mallory holds the topic key, so she can derive the
    // publisher's AEAD key and encrypt as the publisher; she cannot sign as the publisher.
    let class = "insider forgery (signed profile)";
    net.proxy.pass_through();
    let victim = parties.publisher.public();
    let topic_key = parties.tree.topic_key("plant/7/temp").unwrap();
    let mut forgeries = Vec::new();
    // Numbers the subscriber has not accepted yet: an accepted one would be refused by the
    // replay pre-check before the signature is looked at (spec 7.1 step 4), see below.
    for seq in [1_000_000u64, 1_000_003, 2_000_000] {
        let header = Header {
            profile: Profile::Signed,
            retain: false,
            epoch: 1,
            sender: victim.sender_id(),
            key_id: [0; 4], // forge() writes the topic key's id
            salt: [seq as u8; 8],
            seq,
            timestamp: None,
        };
        let forged = attacks::forge(
            "plant/7/temp",
            &topic_key,
            &header,
            &victim,
            &mallory,
            b"open the valve",
        )
        .unwrap();
        forgeries.push((
            format!("forged as publisher, seq {seq}"),
            forged,
            Error::BadSignature,
        ));
    }
    let captured = net.proxy.recorded()[0].payload.clone();
    // Its number was accepted: refused by the replay pre-check, with no signature work.
    forgeries.push((
        "publisher's message re-signed by Mallory".into(),
        attacks::resign(&captured, "plant/7/temp", None, &mallory).unwrap(),
        Error::Replay,
    ));
    forgeries.push((
        "publisher's ciphertext claimed and signed by Mallory".into(),
        attacks::resign(
            &captured,
            "plant/7/temp",
            Some(mallory.public().sender_id()),
            &mallory,
        )
        .unwrap(),
        Error::AuthenticationFailed,
    ));
    for (at, bytes, error) in &forgeries {
        log(&net.expect, at.clone(), vec![*error]);
        insider
            .publish("plant/7/temp", QoS::AtLeastOnce, false, bytes.clone())
            .await
            .unwrap();
    }
    // Mallory's own message, in her own name, is delivered and attributed to her.
    let own = mallory_sealer
        .seal("plant/7/temp", b"signed by mallory", false)
        .unwrap();
    insider
        .publish("plant/7/temp", QoS::AtLeastOnce, false, own)
        .await
        .unwrap();
    let got = net
        .judge(class, &[b"signed by mallory".to_vec()], forgeries.len())
        .await;
    assert!(
        got.messages
            .iter()
            .all(|m| m.sender == mallory.public() && m.payload == b"signed by mallory")
    );
    net.follow_up(class).await;

    let stats = net.sub.stats().clone();
    net.tally.verdict();
    eprintln!("subscriber stats: {stats}");
    assert!(net.tally.attempts() >= 200, "{}", net.tally.table());
}

// ----- rotation: old epochs and a revoked member, over the proxy -----------------------------

const GRACE: u64 = 600;

fn stores(dir: &Path) -> (Store, Store, Store, Store) {
    let opts = StoreOptions {
        grace_period: GRACE,
        grant_topics: GrantTopics::new("site/grants").unwrap(),
        ..StoreOptions::default()
    };
    let mk = |name: &str| {
        Store::create_with(
            dir.join(name),
            name,
            Identity::generate().unwrap(),
            opts.clone(),
        )
        .unwrap()
    };
    let (admin, sensor, bob, dash) = (mk("admin"), mk("sensor"), mk("bob"), mk("dash"));
    for member in [&sensor, &bob, &dash] {
        admin
            .trust_line(&member.public_line(), Roles::SENDER)
            .unwrap();
        member
            .trust_line(&admin.public_line(), Roles::ISSUER)
            .unwrap();
    }
    for sender in [&sensor, &bob] {
        dash.trust_line(&sender.public_line(), Roles::SENDER)
            .unwrap();
    }
    // bob reads too (he is revoked below).
    bob.trust_line(&sensor.public_line(), Roles::SENDER)
        .unwrap();
    (admin, sensor, bob, dash)
}

fn deliver(grants: &[OutgoingGrant], to: &Store, now: u64) {
    for g in grants.iter().filter(|g| g.recipient == to.fingerprint()) {
        to.accept_grant_message(&g.topic, &g.payload, now)
            .unwrap()
            .unwrap();
    }
}

#[tokio::test]
async fn old_epochs_and_a_revoked_member_get_nothing_past_the_subscriber() {
    let tmp = tempfile::tempdir().unwrap();
    let (admin, sensor, bob, dash) = stores(tmp.path());
    // Epoch 1 long ago; the rotation below, too, so that its grace period is over by the
    // wall clock the wrapper opens with.
    let t0 = unix_now() - 100_000;
    admin.create_key("plant/#", t0).unwrap();
    for name in ["sensor", "bob", "dash"] {
        let g = admin.issue_grant("plant/#", name).unwrap();
        for s in [&sensor, &bob, &dash] {
            deliver(std::slice::from_ref(&g), s, t0);
        }
    }

    let broker = plain_broker().unwrap();
    let proxy = MitmProxy::start(broker.port()).unwrap();
    let options = ConnectOptions::new(unique("dash"), "127.0.0.1", proxy.port())
        .v4()
        .unwrap();
    let dash_opener = dash.opener(OpenPolicy::default()).unwrap();
    let (dash_client, mut dash_lp) = SealedClient::new(
        options,
        1000,
        Sealer::new(dash.identity().clone(), Profile::Signed, 0),
        dash_opener,
    );
    connect(&mut dash_lp).await;
    subscribe(&dash_client, &mut dash_lp, "plant/#").await;
    let sealed_client = |store: &Store, tag: &str| {
        let options = ConnectOptions::new(unique(tag), "127.0.0.1", broker.port())
            .v4()
            .unwrap();
        SealedClient::new(
            options,
            1000,
            store.sealer(Profile::Signed).unwrap(),
            Opener::new(),
        )
    };
    let (sensor_client, mut lp) = sealed_client(&sensor, "sensor");
    connect(&mut lp).await;
    let _sensor_driver = spawn_driver(lp);
    let (bob_client, mut lp) = sealed_client(&bob, "bob");
    connect(&mut lp).await;
    let _bob_driver = spawn_driver(lp);

    let mut net = Net {
        proxy,
        publisher: sensor_client,
        sub: dash_lp,
        topic: "plant/1/temp".to_string(),
        counter: 0,
        tally: Tally::new(&format!(
            "rotation: old epochs and a revoked member over a MITM proxy ({})",
            if broker.is_mosquitto() {
                "Mosquitto"
            } else {
                "embedded rumqttd"
            }
        )),
        expect: Arc::default(),
    };

    // Epoch 1: three delivered, two withheld by the broker (kept for later); bob publishes
    // two as a member.
    let sent = net.publish(3, false).await;
    let got = collect(&mut net.sub, 3).await;
    assert_eq!(got.messages.len(), 3, "{got:?}");
    net.proxy.set_attack(Box::new(|_| vec![]));
    let _withheld = net.publish(2, false).await;
    recorded_at_least(&net.proxy, 5).await;
    bob_client
        .publish("plant/1/temp", QoS::AtLeastOnce, false, "bob, member")
        .await
        .unwrap();
    bob_client
        .publish("plant/2/temp", QoS::AtLeastOnce, false, "bob, member")
        .await
        .unwrap();
    // The broker delivered all four to the proxy (it records what it drops).
    let old = recorded_at_least(&net.proxy, 7).await;
    net.proxy.pass_through();
    // bob's two, delivered now.
    let bobs: Vec<Publish> = old[5..].to_vec();
    net.proxy.inject(&bobs).unwrap();
    let got = collect(&mut net.sub, 2).await;
    assert_eq!(got.messages.len(), 2, "{got:?}");
    assert!(got.messages.iter().all(|m| m.sender == bob.public()));
    assert_eq!(sent.len(), 3);

    // Rotation excluding bob, 10 000 s ago: epoch 1's grace period is long over.
    let t1 = unix_now() - 10_000;
    let rotation = admin.rotate("plant/#", &[bob.fingerprint()], t1).unwrap();
    assert_eq!((rotation.epoch, rotation.excluded.len()), (2, 1));
    deliver(&rotation.grants, &sensor, t1);
    deliver(&rotation.grants, &dash, t1);
    for g in &rotation.grants {
        let grant = mqseal::Grant::from_bytes(&g.payload).unwrap();
        assert_eq!(
            bob.accept_grant(&grant, t1).unwrap_err().core(),
            Some(Error::GrantNotForUs)
        );
    }
    let keys = sensor.sealing_keys().unwrap();
    net.publisher.with_sealer(|s| s.set_keys(keys));
    net.sub.opener_mut().set_keys(&dash.held_keys().unwrap());
    let sent = net.publish(2, false).await;
    let got = collect(&mut net.sub, 2).await;
    assert_eq!(got.messages.len(), 2, "{got:?}");
    assert!(got.messages.iter().all(|m| m.epoch == 2));
    assert_eq!(got.messages[0].payload, sent[0]);

    // The broker presents epoch-1 traffic again: accepted, withheld and bob's.
    let class = "old epoch after its grace period";
    for p in &old {
        log(
            &net.expect,
            format!("epoch 1, pkid {}", p.pkid),
            vec![Error::EpochExpired],
        );
    }
    net.proxy.inject(&old).unwrap();
    net.judge(class, &[], old.len()).await;
    net.follow_up(class).await;

    // Bob, revoked, publishes with what he holds: epoch 1 (expired at the receiver) …
    let class = "revoked member: its old epoch";
    for i in 0..3 {
        log(&net.expect, format!("bob #{i}"), vec![Error::EpochExpired]);
        bob_client
            .publish("plant/1/temp", QoS::AtLeastOnce, false, "bob, revoked")
            .await
            .unwrap();
    }
    net.judge(class, &[], 3).await;
    net.follow_up(class).await;
    // … or his epoch-1 secret relabelled as epoch 2: signed by him, but its key id names no key
    // the subscriber holds (spec §7.1 step 4), so nothing is decrypted at all.
    let class = "revoked member: forged epoch 2";
    let old_secret = bob.held_keys().unwrap()[0].key.secret_bytes();
    let relabelled = TreeKey::from_secret("plant/#", 2, *old_secret).unwrap();
    bob_client.with_sealer(|s| s.add_key(relabelled));
    for i in 0..3 {
        log(&net.expect, format!("bob #{i}"), vec![Error::KeyNotFound]);
        bob_client
            .publish("plant/1/temp", QoS::AtLeastOnce, false, "bob, forged epoch")
            .await
            .unwrap();
    }
    net.judge(class, &[], 3).await;
    net.follow_up(class).await;
    // Once the subscriber also stops trusting bob as a sender: unknown.
    let class = "revoked member: untrusted sender";
    dash.untrust("bob").unwrap();
    net.sub
        .opener_mut()
        .set_senders(dash.trusted_senders().unwrap())
        .unwrap();
    for i in 0..3 {
        log(&net.expect, format!("bob #{i}"), vec![Error::UnknownSender]);
        bob_client
            .publish("plant/1/temp", QoS::AtLeastOnce, false, "bob, untrusted")
            .await
            .unwrap();
    }
    net.judge(class, &[], 3).await;
    net.follow_up(class).await;
    // And bob cannot read epoch 2: the sensor's new traffic is opaque to him.
    let class = "revoked member: reading epoch 2";
    let mut bob_opener = bob.opener(OpenPolicy::default()).unwrap();
    for p in net.proxy.recorded().iter().filter(|p| {
        mqseal::inspect(&p.payload)
            .is_ok_and(|h| h.epoch == 2 && h.sender == sensor.public().sender_id())
    }) {
        let r = bob_opener.open(&p.topic, &p.payload).map(|_| ());
        net.tally.outcome(
            class,
            r.map_err(|e| e.core().unwrap()),
            &[Error::KeyNotFound],
            "epoch 2",
        );
    }
    net.follow_up(class).await;

    net.tally.verdict();
}

// ----- in process: exhaustive bit flips and the attacks that need a clock or volume --------

/// Opens with panics caught: `Err(None)` = panicked.
fn guarded<T>(f: impl FnOnce() -> Result<T, Error>) -> Result<T, Option<Error>> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r.map_err(Some),
        Err(_) => Err(None),
    }
}

fn record_flip(
    tally: &mut Tally,
    class: &str,
    r: Result<(), Option<Error>>,
    expected: &[Error],
    at: &str,
) {
    match r {
        Ok(()) => tally.false_accept(class, at),
        Err(Some(e)) => tally.refused(class, e, expected, at),
        Err(None) => tally.panicked(class, at),
    }
}

/// Messages of every shape: payload 0/1/33 bytes, retained or not, with and without a
/// timestamp, sequence numbers on 1, 2 and 6 bytes.
fn corpus(sealer: &mut Sealer, topic: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    for seq in [0u64, 300, 1 << 40] {
        sealer.set_sequence(seq, u64::MAX);
        for len in [0usize, 1, 33] {
            for retain in [false, true] {
                for timestamp in [None, Some(1_700_000_000)] {
                    let payload: Vec<u8> = (0..len).map(|i| b'A' + (i % 26) as u8).collect();
                    let options = SealOptions { retain, timestamp };
                    out.push((
                        sealer.seal_with(topic, &payload, &options).unwrap(),
                        payload,
                    ));
                }
            }
        }
    }
    out
}

#[test]
fn every_bit_of_every_byte_of_many_messages_is_refused() {
    let mut tally = Tally::new("bit flips, exhaustive (in process)");
    let sender = Identity::from_seed([0x51; 32]);
    let other = Identity::from_seed([0x52; 32]);
    let key = TreeKey::from_secret("plant/#", 1, [0x33; 32]).unwrap();
    let topic = "plant/7/temp";
    for profile in [Profile::Signed, Profile::GroupMac] {
        let class = format!("bit flip, every bit of every byte ({})", profile.name());
        let mut sealer = Sealer::new(sender.clone(), profile, 0);
        sealer.add_key(key.clone());
        let mut opener = Opener::with_policy(OpenPolicy::default());
        opener.trust_sender(sender.public());
        opener.trust_sender(other.public());
        if profile == Profile::GroupMac {
            opener.trust_group_mac_sender(sender.public(), "#").unwrap();
            opener.trust_group_mac_sender(other.public(), "#").unwrap();
        }
        opener.add_key(key.clone());
        let delivery = |m: &[u8]| Delivery {
            retained: mqseal::inspect(m).is_ok_and(|h| h.retain),
            ..Delivery::default()
        };
        let mut buf = vec![0u8; 256];
        for (m, (message, payload)) in corpus(&mut sealer, topic).iter().enumerate() {
            let layout = Layout::of(message).unwrap();
            for index in 0..message.len() {
                for bit in 0..8u8 {
                    let flipped = attacks::flip(message, index, bit);
                    let d = delivery(message);
                    let r = guarded(|| opener.open_into(topic, &flipped, &d, &mut buf).map(|_| ()));
                    // No unverified plaintext is left in the caller's buffer.
                    if payload.len() >= 8 {
                        assert!(!buf.windows(payload.len()).any(|w| w == payload.as_slice()));
                    }
                    let at = format!(
                        "message {m} byte {index} bit {bit} ({:?})",
                        layout.region(index)
                    );
                    record_flip(
                        &mut tally,
                        &class,
                        r,
                        &attacks::flip_outcomes(&layout, index, bit),
                        &at,
                    );
                }
            }
            let ok = opener
                .open_delivered(topic, message, &delivery(message))
                .is_ok();
            tally.after(&class, 1, u64::from(ok));
        }
    }

    // The keystore's persistent opener (what the wrapper and the CLI use) refuses the same.
    let class = "bit flip, every bit of every byte (persistent opener)";
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::create_with(
        tmp.path().join("s"),
        "s",
        Identity::from_seed([0x53; 32]),
        StoreOptions::default(),
    )
    .unwrap();
    store
        .trust("sender", &sender.public(), Roles::SENDER)
        .unwrap();
    store.add_key(key.clone(), None, unix_now()).unwrap();
    let mut opener = store.opener(OpenPolicy::default()).unwrap();
    let mut sealer = Sealer::new(sender.clone(), Profile::Signed, 0);
    sealer.add_key(key);
    for m in 0..4 {
        let message = sealer
            .seal(topic, format!("persistent #{m}").as_bytes(), false)
            .unwrap();
        let layout = Layout::of(&message).unwrap();
        for index in 0..message.len() {
            for bit in 0..8u8 {
                let flipped = attacks::flip(&message, index, bit);
                let r = guarded(|| {
                    opener
                        .open(topic, &flipped)
                        .map(|_| ())
                        .map_err(|e| e.core().unwrap_or(Error::Malformed))
                });
                let at = format!("message {m} byte {index} bit {bit}");
                record_flip(
                    &mut tally,
                    class,
                    r,
                    &attacks::flip_outcomes(&layout, index, bit),
                    &at,
                );
            }
        }
        tally.after(class, 1, u64::from(opener.open(topic, &message).is_ok()));
    }
    assert_eq!(opener.window_count(), 1);

    tally.verdict();
    assert!(tally.attempts() > 40_000, "{}", tally.table());
}

#[test]
fn forgeries_replays_reordering_delays_and_old_epochs_in_process() {
    let mut tally = Tally::new("forgeries, window, clock and epochs (in process)");
    let alice = Identity::from_seed([0x61; 32]);
    let mallory = Identity::from_seed([0x62; 32]);
    let key = TreeKey::from_secret("plant/#", 1, [0x34; 32]).unwrap();
    let topic = "plant/7/temp";
    let topic_key = key.topic_key(topic).unwrap();
    let opener_for = |policy: OpenPolicy| {
        let mut o = Opener::with_policy(policy);
        o.trust_sender(alice.public());
        o.trust_sender(mallory.public());
        o.add_key(key.clone());
        o
    };
    let mut alice_signed = Sealer::new(alice.clone(), Profile::Signed, 0);
    alice_signed.add_key(key.clone());
    let mut alice_gm = Sealer::new(alice.clone(), Profile::GroupMac, 0);
    alice_gm.add_key(key.clone());

    // Insider forgery: Mallory, a member, claims to be Alice.
    let header = |profile, seq| Header {
        profile,
        retain: false,
        epoch: 1,
        sender: alice.public().sender_id(),
        key_id: [0; 4], // forge() writes the topic key's id
        salt: [seq as u8 ^ 0x5a; 8],
        seq,
        timestamp: None,
    };
    let class = "insider forgery as another member (signed)";
    let mut opener = opener_for(OpenPolicy::default());
    for seq in 0..50u64 {
        let forged = attacks::forge(
            topic,
            &topic_key,
            &header(Profile::Signed, seq),
            &alice.public(),
            &mallory,
            b"forged",
        )
        .unwrap();
        let r = guarded(|| opener.open(topic, &forged).map(|_| ()));
        record_flip(
            &mut tally,
            class,
            r,
            &[Error::BadSignature],
            &format!("seq {seq}"),
        );
    }
    let real = alice_signed.seal(topic, b"real", false).unwrap();
    tally.after(class, 1, u64::from(opener.open(topic, &real).is_ok()));

    // group-mac: documented (spec threat model) as forgeable by any key holder, and refused
    // unless the receiver trusts that sender for group-mac on the topic (spec 7.7).
    let spec = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../spec/mqseal-v2.md"),
    )
    .unwrap();
    assert!(
        spec.lines().any(
            |l| l.contains("`group-mac` profile (opt-in per sender and filter)")
                && l.contains("forge the senders trusted for group-mac")
        ),
        "the spec's threat model must document group-mac forgeries"
    );
    let class = "insider forgery as another member (group-mac)";
    // Alice trusted for group-mac on the whole tree: then any member can forge her.
    let mut accepting = opener_for(OpenPolicy::default());
    accepting
        .trust_group_mac_sender(alice.public(), "#")
        .unwrap();
    let mut default = opener_for(OpenPolicy::default());
    for seq in 0..50u64 {
        let forged = attacks::forge(
            topic,
            &topic_key,
            &header(Profile::GroupMac, seq),
            &alice.public(),
            &mallory,
            b"forged",
        )
        .unwrap();
        let r = guarded(|| default.open(topic, &forged).map(|_| ()));
        record_flip(
            &mut tally,
            class,
            r,
            &[Error::ProfileNotAllowed],
            &format!("default policy, seq {seq}"),
        );
        match accepting.open(topic, &forged) {
            Ok(o) if o.sender == alice.public() && o.payload == b"forged" => {
                tally.documented_accept(class);
            }
            other => tally.note(
                class,
                &format!("group-mac forgery not accepted as documented: {other:?}"),
            ),
        }
    }
    alice_gm.set_sequence(1000, u64::MAX);
    let real = alice_gm.seal(topic, b"real", false).unwrap();
    tally.after(class, 1, u64::from(accepting.open(topic, &real).is_ok()));

    // Header swaps across senders, topics and profiles: all refused.
    let class = "swap headers (senders, topics, profiles)";
    let mut opener = opener_for(OpenPolicy::default());
    opener.trust_group_mac_sender(alice.public(), "#").unwrap();
    let mut mallory_signed = Sealer::new(mallory.clone(), Profile::Signed, 0);
    mallory_signed.add_key(key.clone());
    let mut pool = Vec::new();
    for i in 0..4u8 {
        pool.push(alice_signed.seal(topic, &[i; 20], false).unwrap());
        pool.push(mallory_signed.seal(topic, &[i; 20], false).unwrap());
        pool.push(alice_gm.seal(topic, &[i; 20], false).unwrap());
        pool.push(alice_signed.seal("plant/7/other", &[i; 20], false).unwrap());
    }
    for (i, a) in pool.iter().enumerate() {
        for (j, b) in pool.iter().enumerate() {
            if i == j {
                continue;
            }
            let swapped = attacks::swap_header(a, b).unwrap();
            // The header's profile decides where the body is split (spec §5).
            let body = b.len() - Layout::of(b).unwrap().header_len;
            // Headers of the message on plant/7/other (every fourth) carry that topic's key id:
            // no held key has it on `topic` (step 4, after parsing, before any signature).
            let other_topic = i % 4 == 3;
            let expected = match Layout::of(a).unwrap().profile {
                Profile::Signed if body < mqseal::TAG_LEN + mqseal::SIGNATURE_LEN => {
                    Error::Malformed
                }
                _ if other_topic => Error::KeyNotFound,
                Profile::Signed => Error::BadSignature,
                Profile::GroupMac => Error::AuthenticationFailed,
            };
            let r = guarded(|| opener.open(topic, &swapped).map(|_| ()));
            record_flip(
                &mut tally,
                class,
                r,
                &[expected],
                &format!("header {i} on body {j}"),
            );
        }
    }
    let real = alice_signed.seal(topic, b"real", false).unwrap();
    tally.after(class, 1, u64::from(opener.open(topic, &real).is_ok()));

    // Reordering beyond the replay window (2048): the oldest become too old, the rest are
    // late but accepted once; replays of those are refused.
    let class = "reorder beyond the replay window";
    let mut opener = opener_for(OpenPolicy::default());
    let mut sealer = Sealer::new(alice.clone(), Profile::Signed, 0);
    sealer.add_key(key.clone());
    let early: Vec<Vec<u8>> = (0..10)
        .map(|i| sealer.seal(topic, &[i], false).unwrap())
        .collect();
    sealer.set_sequence(2048 + 5, u64::MAX);
    let newest = sealer.seal(topic, b"newest", false).unwrap();
    assert!(opener.open(topic, &newest).is_ok());
    for (seq, m) in early.iter().enumerate() {
        let r = guarded(|| opener.open(topic, m).map(|_| ()));
        if seq <= 5 {
            record_flip(
                &mut tally,
                class,
                r,
                &[Error::TooOld],
                &format!("seq {seq}"),
            );
        } else {
            assert!(r.is_ok(), "seq {seq} is inside the window: {r:?}");
            tally.legit(class, 1);
            let again = guarded(|| opener.open(topic, m).map(|_| ()));
            record_flip(
                &mut tally,
                class,
                again,
                &[Error::Replay],
                &format!("replay of seq {seq}"),
            );
        }
    }
    let real = sealer.seal(topic, b"real", false).unwrap();
    tally.after(class, 1, u64::from(opener.open(topic, &real).is_ok()));

    // Delay beyond a maximum age (timestamps are authenticated, spec §7.5); also a message
    // dated in the future beyond the allowed skew.
    let class = "delay beyond the maximum age";
    let t = 1_800_000_000u64;
    let mut opener = opener_for(OpenPolicy {
        max_age: Some(60),
        require_timestamp: true,
        ..OpenPolicy::default()
    });
    let at = |now| Delivery {
        now: Some(now),
        ..Delivery::default()
    };
    for (delay, expect) in [
        (61u64, Error::Expired),
        (3600, Error::Expired),
        (86_400, Error::Expired),
    ] {
        let m = sealer
            .seal_with(
                topic,
                b"late",
                &SealOptions {
                    retain: false,
                    timestamp: Some(t),
                },
            )
            .unwrap();
        let r = guarded(|| opener.open_delivered(topic, &m, &at(t + delay)).map(|_| ()));
        record_flip(&mut tally, class, r, &[expect], &format!("held {delay} s"));
    }
    let future = sealer
        .seal_with(
            topic,
            b"future",
            &SealOptions {
                retain: false,
                timestamp: Some(t + 61),
            },
        )
        .unwrap();
    let r = guarded(|| opener.open_delivered(topic, &future, &at(t)).map(|_| ()));
    record_flip(
        &mut tally,
        class,
        r,
        &[Error::Expired],
        "61 s in the future",
    );
    let untimed = sealer
        .seal_with(
            topic,
            b"no timestamp",
            &SealOptions::without_timestamp(false),
        )
        .unwrap();
    let r = guarded(|| opener.open_delivered(topic, &untimed, &at(t)).map(|_| ()));
    record_flip(
        &mut tally,
        class,
        r,
        &[Error::MissingTimestamp],
        "timestamp stripped by sender",
    );
    let fresh = sealer
        .seal_with(
            topic,
            b"fresh",
            &SealOptions {
                retain: false,
                timestamp: Some(t),
            },
        )
        .unwrap();
    tally.after(
        class,
        1,
        u64::from(opener.open_delivered(topic, &fresh, &at(t + 60)).is_ok()),
    );

    // An old epoch presented during its grace period (a late delivery: accepted once), then
    // after it, then after the key was pruned — with the keystore's rotation.
    let tmp = tempfile::tempdir().unwrap();
    let (admin, sensor, _bob, dash) = stores(tmp.path());
    let t0 = 1_800_000_000u64;
    admin.create_key("plant/#", t0).unwrap();
    for name in ["sensor", "dash"] {
        let g = admin.issue_grant("plant/#", name).unwrap();
        deliver(std::slice::from_ref(&g), &sensor, t0);
        deliver(std::slice::from_ref(&g), &dash, t0);
    }
    let mut s = sensor.sealer(Profile::Signed).unwrap();
    let e1: Vec<Vec<u8>> = (0..6u8)
        .map(|i| s.seal(topic, &[i], false).unwrap())
        .collect();
    let mut o = dash.opener(OpenPolicy::default()).unwrap();
    assert!(o.open_delivered(topic, &e1[0], &at(t0)).is_ok());
    let t1 = t0 + 100;
    let rotation = admin.rotate("plant/#", &[], t1).unwrap();
    deliver(&rotation.grants, &sensor, t1);
    deliver(&rotation.grants, &dash, t1);
    o.set_keys(&dash.held_keys().unwrap());
    s.set_keys(sensor.sealing_keys().unwrap());
    let core = |r: Result<(), mqseal_store::StoreError>| {
        r.map_err(|e| e.core().unwrap_or(Error::Malformed))
    };
    let class = "old epoch within its grace period";
    assert!(o.open_delivered(topic, &e1[1], &at(t1 + GRACE)).is_ok());
    tally.legit(class, 1);
    let r = guarded(|| core(o.open_delivered(topic, &e1[0], &at(t1 + 10)).map(|_| ())));
    record_flip(
        &mut tally,
        class,
        r,
        &[Error::Replay],
        "replay of an accepted epoch-1 message",
    );
    let e2 = s.seal(topic, b"epoch 2", false).unwrap();
    tally.after(
        class,
        1,
        u64::from(o.open_delivered(topic, &e2, &at(t1 + 10)).is_ok()),
    );
    let class = "old epoch after its grace period";
    for (i, m) in e1.iter().enumerate() {
        let r = guarded(|| core(o.open_delivered(topic, m, &at(t1 + GRACE + 1)).map(|_| ())));
        record_flip(
            &mut tally,
            class,
            r,
            &[Error::EpochExpired],
            &format!("epoch-1 message {i}"),
        );
    }
    let e2 = s.seal(topic, b"epoch 2", false).unwrap();
    tally.after(
        class,
        1,
        u64::from(o.open_delivered(topic, &e2, &at(t1 + GRACE + 1)).is_ok()),
    );
    let class = "old epoch after its key was pruned";
    dash.prune(t1 + GRACE + 1).unwrap();
    o.set_keys(&dash.held_keys().unwrap());
    for (i, m) in e1.iter().enumerate() {
        let r = guarded(|| core(o.open_delivered(topic, m, &at(t1 + GRACE + 1)).map(|_| ())));
        record_flip(
            &mut tally,
            class,
            r,
            &[Error::KeyNotFound],
            &format!("epoch-1 message {i}"),
        );
    }
    let e2 = s.seal(topic, b"epoch 2", false).unwrap();
    tally.after(
        class,
        1,
        u64::from(o.open_delivered(topic, &e2, &at(t1 + GRACE + 2)).is_ok()),
    );

    tally.verdict();
}
