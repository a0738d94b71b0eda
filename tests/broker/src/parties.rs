//! Identities, keys and grants of a test, and helpers to drive the wrapped event loops.

use std::time::Duration;

use mqseal::{Grant, Identity, Opener, Profile, Sealer, TreeKey};
use mqseal_rumqttc::{Event, Message, Rejected, SealedEventLoop, v5};

/// An admin owning a key tree, a publisher and a subscriber, each with a grant from the admin.
#[derive(Debug)]
pub struct Parties {
    /// Issues the grants.
    pub admin: Identity,
    /// Seals.
    pub publisher: Identity,
    /// Opens.
    pub subscriber: Identity,
    /// The tree the admin owns.
    pub tree: TreeKey,
}

impl Parties {
    /// Fresh random identities and a random key for the tree `filter` (epoch 1).
    pub fn new(filter: &str) -> Parties {
        Parties {
            admin: Identity::generate().unwrap_or_else(|e| fail(e)),
            publisher: Identity::generate().unwrap_or_else(|e| fail(e)),
            subscriber: Identity::generate().unwrap_or_else(|e| fail(e)),
            tree: TreeKey::generate(filter, 1).unwrap_or_else(|e| fail(e)),
        }
    }

    /// The publisher's sealer holding `filter` (a subtree of the tree), received as a grant.
    pub fn sealer(&self, filter: &str) -> Sealer {
        let mut sealer = Sealer::new(self.publisher.clone(), Profile::Signed, 0);
        sealer.add_key(self.granted(&self.publisher, filter));
        sealer
    }

    /// The subscriber's opener holding `filter`, received as a grant, trusting the publisher.
    pub fn opener(&self, filter: &str) -> Opener {
        let mut opener = Opener::new();
        opener.trust_sender(self.publisher.public());
        opener.add_key(self.granted(&self.subscriber, filter));
        opener
    }

    fn granted(&self, to: &Identity, filter: &str) -> TreeKey {
        let key = self.tree.derive(filter).unwrap_or_else(|e| fail(e));
        let grant = Grant::issue(&self.admin, &to.public(), &key).unwrap_or_else(|e| fail(e));
        let wire = Grant::from_bytes(grant.as_bytes()).unwrap_or_else(|e| fail(e));
        wire.accept(to, &[self.admin.public()])
            .unwrap_or_else(|e| fail(e))
    }
}

fn fail(e: mqseal::Error) -> ! {
    std::panic::panic_any(format!("test set-up failed: {e}"))
}

/// What a loop delivered.
#[derive(Debug, Default)]
pub struct Collected {
    /// Opened messages, in order.
    pub messages: Vec<Message>,
    /// Rejections, in order.
    pub rejected: Vec<Rejected>,
}

/// Polls until the CONNACK (Ok) or the first connection error (Err, as text), or 20 s.
pub async fn connect(lp: &mut SealedEventLoop) -> Result<(), mqseal_rumqttc::ConnectFailure> {
    loop {
        let polled = tokio::time::timeout(Duration::from_secs(20), lp.poll()).await;
        match polled {
            Err(_) => {
                return Err(mqseal_rumqttc::ConnectFailure {
                    kind: mqseal_rumqttc::FailureKind::Other,
                    reason: "no CONNACK within 20 s".into(),
                    fix: String::new(),
                });
            }
            Ok(Err(e)) => return Err(mqseal_rumqttc::explain(&e)),
            Ok(Ok(Event::Mqtt(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))))) => {
                return Ok(());
            }
            Ok(Ok(_)) => {}
        }
    }
}

/// v5 [`connect`].
pub async fn connect_v5(
    lp: &mut v5::SealedEventLoop,
) -> Result<(), mqseal_rumqttc::ConnectFailure> {
    use rumqttc::v5::mqttbytes::v5::Packet;
    loop {
        let polled = tokio::time::timeout(Duration::from_secs(20), lp.poll()).await;
        match polled {
            Err(_) => {
                return Err(mqseal_rumqttc::ConnectFailure {
                    kind: mqseal_rumqttc::FailureKind::Other,
                    reason: "no CONNACK within 20 s".into(),
                    fix: String::new(),
                });
            }
            Ok(Err(e)) => return Err(mqseal_rumqttc::explain_v5(&e)),
            Ok(Ok(Event::Mqtt(rumqttc::v5::Event::Incoming(Packet::ConnAck(_))))) => return Ok(()),
            Ok(Ok(_)) => {}
        }
    }
}

/// Polls until `n` messages plus rejections arrived, or nothing arrived for `quiet` (a hang
/// guard, not a timing assertion), or the connection failed.
pub async fn collect(lp: &mut SealedEventLoop, n: usize, quiet: Duration) -> Collected {
    let mut got = Collected::default();
    while got.messages.len() + got.rejected.len() < n {
        match tokio::time::timeout(quiet, lp.poll()).await {
            Ok(Ok(Event::Message(m))) => got.messages.push(m),
            Ok(Ok(Event::Rejected(r))) => got.rejected.push(r),
            Ok(Ok(_)) => {}
            Ok(Err(_)) | Err(_) => break,
        }
    }
    got
}

/// v5 [`collect`].
pub async fn collect_v5(lp: &mut v5::SealedEventLoop, n: usize, quiet: Duration) -> Collected {
    let mut got = Collected::default();
    while got.messages.len() + got.rejected.len() < n {
        match tokio::time::timeout(quiet, lp.poll()).await {
            Ok(Ok(Event::Message(m))) => got.messages.push(m),
            Ok(Ok(Event::Rejected(r))) => got.rejected.push(r),
            Ok(Ok(_)) => {}
            Ok(Err(_)) | Err(_) => break,
        }
    }
    got
}

/// Subscribes to `filters` and polls until every SUBACK arrived (events before it are kept).
pub async fn subscribe(
    client: &mqseal_rumqttc::SealedClient,
    lp: &mut SealedEventLoop,
    filters: &[(&str, rumqttc::QoS)],
) -> Result<Collected, mqseal_rumqttc::ConnectFailure> {
    let mut early = Collected::default();
    for (filter, qos) in filters {
        if let Err(e) = client.subscribe(filter, *qos).await {
            return Err(mqseal_rumqttc::ConnectFailure {
                kind: mqseal_rumqttc::FailureKind::Other,
                reason: e.to_string(),
                fix: String::new(),
            });
        }
    }
    let mut acks = 0;
    while acks < filters.len() {
        match tokio::time::timeout(Duration::from_secs(20), lp.poll()).await {
            Ok(Ok(Event::Mqtt(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_))))) => acks += 1,
            Ok(Ok(Event::Message(m))) => early.messages.push(m),
            Ok(Ok(Event::Rejected(r))) => early.rejected.push(r),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(mqseal_rumqttc::explain(&e)),
            Err(_) => {
                return Err(mqseal_rumqttc::ConnectFailure {
                    kind: mqseal_rumqttc::FailureKind::Other,
                    reason: "no SUBACK within 20 s".into(),
                    fix: String::new(),
                });
            }
        }
    }
    Ok(early)
}

/// Drives an event loop in the background until its connection ends (publishers).
pub fn spawn_driver<O: mqseal_rumqttc::OpenBackend>(
    mut lp: SealedEventLoop<O>,
) -> tokio::task::JoinHandle<Option<rumqttc::ConnectionError>> {
    tokio::spawn(async move {
        loop {
            if let Err(e) = lp.poll().await {
                return Some(e);
            }
        }
    })
}

/// Drives a v5 event loop in the background until its connection ends.
pub fn spawn_driver_v5(
    mut lp: v5::SealedEventLoop,
) -> tokio::task::JoinHandle<Option<rumqttc::v5::ConnectionError>> {
    tokio::spawn(async move {
        loop {
            if let Err(e) = lp.poll().await {
                return Some(e);
            }
        }
    })
}

/// A plain rumqttc subscriber without any key (what any broker-side observer sees): returns
/// every `(topic, payload)` it received until `n` arrived or nothing came for `quiet`.
pub struct RawSubscriber {
    lp: rumqttc::EventLoop,
    _client: rumqttc::AsyncClient,
}

impl RawSubscriber {
    /// Connects to 127.0.0.1:`port` and subscribes to `filter` at QoS 1 (waits for the SUBACK).
    pub async fn start(port: u16, filter: &str) -> RawSubscriber {
        let id = format!("raw-{}", std::process::id());
        let mut options = rumqttc::MqttOptions::new(id, "127.0.0.1", port);
        options.set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut lp) = rumqttc::AsyncClient::new(options, 100);
        let subscribed = client.subscribe(filter, rumqttc::QoS::AtLeastOnce).await;
        assert!(subscribed.is_ok(), "raw subscribe request failed");
        loop {
            match tokio::time::timeout(Duration::from_secs(20), lp.poll()).await {
                Ok(Ok(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_)))) => break,
                Ok(Ok(_)) => {}
                other => std::panic::panic_any(format!("raw subscriber failed: {other:?}")),
            }
        }
        RawSubscriber {
            lp,
            _client: client,
        }
    }

    /// Collects `(topic, payload)` pairs.
    pub async fn collect(&mut self, n: usize, quiet: Duration) -> Vec<(String, Vec<u8>)> {
        let mut got = Vec::new();
        while got.len() < n {
            match tokio::time::timeout(quiet, self.lp.poll()).await {
                Ok(Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p)))) => {
                    got.push((p.topic.clone(), p.payload.to_vec()));
                }
                Ok(Ok(_)) => {}
                Ok(Err(_)) | Err(_) => break,
            }
        }
        got
    }
}
