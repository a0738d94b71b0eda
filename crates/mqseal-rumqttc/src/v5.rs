//! MQTT v5: async [`SealedClient`] + [`SealedEventLoop`] over rumqttc's v5 `AsyncClient` +
//! `EventLoop`, and blocking [`SealedSyncClient`] + [`SealedConnection`] over `Client` +
//! `Connection`.
//!
//! Topic aliases: a sealed message is bound to its topic, so the receiver must know the real
//! topic. rumqttc queues the PUBLISH event *before* it resolves an alias (the topic arrives
//! empty), so this wrapper (1) does not advertise a Topic Alias Maximum in CONNECT (the broker
//! then must not send aliases) and (2) resolves aliases itself anyway, per connection. A PUBLISH
//! with an unknown alias is rejected with [`mqseal::Error::InvalidTopic`].
//!
//! Maximum packet size: sealed messages are checked against the broker's Maximum Packet Size
//! from its CONNACK (the envelope overhead included) and refused with
//! [`Error::PacketTooLarge`] instead of breaking the connection.
//!
//! Refused publishes: a broker that refuses one of our QoS 1/2 PUBLISH packets (Mosquitto: one
//! its ACL denies) says so in the reason code of the PUBACK/PUBREC, which the loop hands out
//! unchanged as an [`Event::Mqtt`] incoming packet (e.g. `PubAckReason::NotAuthorized`, 0x87).
//! With MQTT 3.1.1 the same refusal is silent.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use mqseal::{Opener, Sealer};
use rumqttc::v5::mqttbytes::QoS as QoS5;
use rumqttc::v5::mqttbytes::v5::{Packet, Publish, PublishProperties};
use rumqttc::v5::{AsyncClient, ClientError, ConnectionError, MqttOptions};

use crate::backend::{OpenBackend, SealBackend};
use crate::error::Error;
use crate::event::{Event, Stats};
use crate::filter::check_filter;
use crate::receive::{Incoming, Receiver};
use crate::seal::{SharedSealer, publish_size_v5};

/// rumqttc's v5 QoS type.
pub use rumqttc::v5::mqttbytes::QoS;

/// An event of a v5 loop: rumqttc's own v5 event for everything but PUBLISH.
pub type SealedEvent = Event<rumqttc::v5::Event>;

/// Publishes sealed messages over MQTT v5 (clones share the sealer).
pub struct SealedClient<S = Sealer> {
    client: AsyncClient,
    sealer: SharedSealer<S>,
}

impl<S> Clone for SealedClient<S> {
    fn clone(&self) -> Self {
        SealedClient {
            client: self.client.clone(),
            sealer: self.sealer.clone(),
        }
    }
}

/// Drives a v5 connection and opens incoming messages; acks are manual, sent on the next poll.
pub struct SealedEventLoop<O = Opener> {
    eventloop: rumqttc::v5::EventLoop,
    client: AsyncClient,
    state: V5State<O>,
}

/// What the async and the blocking v5 loops share: opener, acks, aliases, packet limit.
struct V5State<O> {
    receiver: Receiver<O>,
    pending_acks: Vec<Publish>,
    aliases: HashMap<u16, Bytes>,
    max_packet: Arc<AtomicUsize>,
}

impl<O: OpenBackend> V5State<O> {
    fn new(opener: O, max_packet: Arc<AtomicUsize>) -> V5State<O> {
        V5State {
            receiver: Receiver::new(opener),
            pending_acks: Vec::new(),
            aliases: HashMap::new(),
            max_packet,
        }
    }

    /// Opens PUBLISH packets (resolving aliases), tracks CONNACK limits, passes the rest.
    fn handle(&mut self, event: rumqttc::v5::Event) -> SealedEvent {
        match event {
            rumqttc::v5::Event::Incoming(Packet::Publish(publish)) => {
                let topic = resolve_alias(&mut self.aliases, &publish);
                let qos = v4_qos(publish.qos);
                let out = self.receiver.receive(Incoming {
                    topic: topic.as_deref().unwrap_or(b""),
                    payload: &publish.payload,
                    qos,
                    retain: publish.retain,
                    dup: publish.dup,
                });
                if publish.qos != QoS5::AtMostOnce && out.ackable() {
                    self.pending_acks.push(publish);
                }
                out.into_event()
            }
            rumqttc::v5::Event::Incoming(Packet::ConnAck(ack)) => {
                self.aliases.clear();
                if !ack.session_present {
                    self.pending_acks.clear();
                }
                let broker_max = ack
                    .properties
                    .as_ref()
                    .and_then(|p| p.max_packet_size)
                    .map_or(mqseal::MAX_SEALED_LEN, |m| m as usize);
                self.max_packet.store(broker_max, Ordering::Relaxed);
                Event::Mqtt(rumqttc::v5::Event::Incoming(Packet::ConnAck(ack)))
            }
            other => Event::Mqtt(other),
        }
    }

    /// Keeps the acks `try_ack` could not queue.
    fn flush(&mut self, try_ack: impl Fn(&Publish) -> bool) {
        self.pending_acks.retain(|p| !try_ack(p));
    }
}

impl<S: SealBackend> SealedClient<S> {
    /// Creates the client and its event loop: manual acks, no Topic Alias Maximum advertised.
    pub fn new<O: OpenBackend>(
        mut options: MqttOptions,
        cap: usize,
        sealer: S,
        opener: O,
    ) -> (SealedClient<S>, SealedEventLoop<O>) {
        options.set_manual_acks(true).set_topic_alias_max(None);
        let (client, eventloop) = AsyncClient::new(options, cap);
        // Until the CONNACK tells the broker's limit, only the MQTT maximum applies.
        let shared = SharedSealer::new(sealer, mqseal::MAX_SEALED_LEN);
        (
            SealedClient {
                client: client.clone(),
                sealer: shared.clone(),
            },
            SealedEventLoop {
                eventloop,
                client,
                state: V5State::new(opener, shared.max_packet_handle()),
            },
        )
    }

    /// Seals `payload` for `topic` and publishes it.
    pub async fn publish(
        &self,
        topic: &str,
        qos: QoS,
        retain: bool,
        payload: impl AsRef<[u8]>,
    ) -> Result<(), Error> {
        let sealed = self.seal(topic, qos, retain, payload.as_ref(), 0)?;
        self.client
            .publish(topic, qos, retain, sealed)
            .await
            .map_err(client_error)
    }

    /// Seals and publishes with v5 properties (the topic is always sent in full; a
    /// `topic_alias` in `properties` is fine, the broker resolves it before forwarding).
    pub async fn publish_with_properties(
        &self,
        topic: &str,
        qos: QoS,
        retain: bool,
        payload: impl AsRef<[u8]>,
        properties: PublishProperties,
    ) -> Result<(), Error> {
        let props_len = properties_len(&properties);
        let sealed = self.seal(topic, qos, retain, payload.as_ref(), props_len)?;
        self.client
            .publish_with_properties(topic, qos, retain, sealed, properties)
            .await
            .map_err(client_error)
    }

    /// Seals and publishes without waiting ([`Error::ChannelFull`] when the channel is full).
    pub fn try_publish(
        &self,
        topic: &str,
        qos: QoS,
        retain: bool,
        payload: impl AsRef<[u8]>,
    ) -> Result<(), Error> {
        let sealed = self.seal(topic, qos, retain, payload.as_ref(), 0)?;
        self.client
            .try_publish(topic, qos, retain, sealed)
            .map_err(client_error)
    }

    /// Subscribes to a topic filter.
    pub async fn subscribe(&self, filter: &str, qos: QoS) -> Result<(), Error> {
        check_filter(filter)?;
        self.client
            .subscribe(filter, qos)
            .await
            .map_err(client_error)
    }

    /// Sends DISCONNECT.
    pub async fn disconnect(&self) -> Result<(), Error> {
        self.client.disconnect().await.map_err(client_error)
    }

    /// Runs `f` on the sealer.
    pub fn with_sealer<R>(&self, f: impl FnOnce(&mut S) -> R) -> R {
        self.sealer.with_backend(f)
    }

    /// The largest PUBLISH packet currently allowed (the broker's limit once connected).
    pub fn max_packet_size(&self) -> usize {
        self.sealer.max_packet()
    }

    /// The underlying rumqttc client (publishing through it directly is **not** sealed).
    pub fn inner(&self) -> &AsyncClient {
        &self.client
    }

    fn seal(
        &self,
        topic: &str,
        qos: QoS,
        retain: bool,
        payload: &[u8],
        props_len: usize,
    ) -> Result<Vec<u8>, Error> {
        self.sealer.seal(topic, payload, retain, |n| {
            publish_size_v5(topic, qos != QoS5::AtMostOnce, props_len, n)
        })
    }
}

impl<O: OpenBackend> SealedEventLoop<O> {
    /// Polls the connection: the next opened message, rejection or other MQTT event.
    pub async fn poll(&mut self) -> Result<SealedEvent, ConnectionError> {
        self.flush_acks();
        let event = self.eventloop.poll().await?;
        Ok(self.state.handle(event))
    }

    /// Hands the acknowledgements of handled messages to rumqttc now (also done by every poll);
    /// call it before `disconnect` so the last message is acknowledged.
    pub fn flush_acks(&mut self) {
        let client = &self.client;
        self.state.flush(|p| client.try_ack(p).is_ok());
    }

    /// Counts of delivered and rejected messages.
    pub fn stats(&self) -> &Stats {
        &self.state.receiver.stats
    }

    /// The opener.
    pub fn opener_mut(&mut self) -> &mut O {
        &mut self.state.receiver.opener
    }

    /// The underlying rumqttc v5 event loop.
    pub fn inner_mut(&mut self) -> &mut rumqttc::v5::EventLoop {
        &mut self.eventloop
    }
}

/// The real topic of a PUBLISH: its topic, recorded under its alias if it has one, or the topic
/// recorded for its alias. `None` for an empty topic with an unknown (or no) alias.
fn resolve_alias(aliases: &mut HashMap<u16, Bytes>, publish: &Publish) -> Option<Bytes> {
    let alias = publish.properties.as_ref().and_then(|p| p.topic_alias);
    match (publish.topic.is_empty(), alias) {
        (false, Some(a)) => {
            aliases.insert(a, publish.topic.clone());
            Some(publish.topic.clone())
        }
        (false, None) => Some(publish.topic.clone()),
        (true, Some(a)) => aliases.get(&a).cloned(),
        (true, None) => None,
    }
}

fn v4_qos(q: QoS5) -> rumqttc::QoS {
    match q {
        QoS5::AtMostOnce => rumqttc::QoS::AtMostOnce,
        QoS5::AtLeastOnce => rumqttc::QoS::AtLeastOnce,
        QoS5::ExactlyOnce => rumqttc::QoS::ExactlyOnce,
    }
}

/// Upper bound of the encoded length of PUBLISH properties (checked against max packet size).
fn properties_len(p: &PublishProperties) -> usize {
    let mut len = 0;
    len += p.payload_format_indicator.map_or(0, |_| 2);
    len += p.message_expiry_interval.map_or(0, |_| 5);
    len += p.topic_alias.map_or(0, |_| 3);
    len += p.response_topic.as_ref().map_or(0, |t| 3 + t.len());
    len += p.correlation_data.as_ref().map_or(0, |d| 3 + d.len());
    len += p
        .user_properties
        .iter()
        .map(|(k, v)| 5 + k.len() + v.len())
        .sum::<usize>();
    len += p.subscription_identifiers.len() * 5;
    len += p.content_type.as_ref().map_or(0, |t| 3 + t.len());
    len
}

fn client_error(e: ClientError) -> Error {
    match e {
        ClientError::Request(_) => Error::ClientClosed,
        ClientError::TryRequest(_) => Error::ChannelFull,
    }
}

/// Blocking MQTT v5 client that publishes sealed messages (clones share the sealer).
pub struct SealedSyncClient<S = Sealer> {
    client: rumqttc::v5::Client,
    sealer: SharedSealer<S>,
}

impl<S> Clone for SealedSyncClient<S> {
    fn clone(&self) -> Self {
        SealedSyncClient {
            client: self.client.clone(),
            sealer: self.sealer.clone(),
        }
    }
}

/// Blocking MQTT v5 connection: call [`recv`](Self::recv) in a loop.
pub struct SealedConnection<O = Opener> {
    connection: rumqttc::v5::Connection,
    client: rumqttc::v5::Client,
    state: V5State<O>,
}

impl<S: SealBackend> SealedSyncClient<S> {
    /// Creates the client and its connection: manual acks, no Topic Alias Maximum advertised.
    pub fn new<O: OpenBackend>(
        mut options: MqttOptions,
        cap: usize,
        sealer: S,
        opener: O,
    ) -> (SealedSyncClient<S>, SealedConnection<O>) {
        options.set_manual_acks(true).set_topic_alias_max(None);
        let (client, connection) = rumqttc::v5::Client::new(options, cap);
        let shared = SharedSealer::new(sealer, mqseal::MAX_SEALED_LEN);
        let max_packet = shared.max_packet_handle();
        (
            SealedSyncClient {
                client: client.clone(),
                sealer: shared,
            },
            SealedConnection {
                connection,
                client,
                state: V5State::new(opener, max_packet),
            },
        )
    }

    /// Seals and publishes (blocks while the request channel is full).
    pub fn publish(
        &self,
        topic: &str,
        qos: QoS,
        retain: bool,
        payload: impl AsRef<[u8]>,
    ) -> Result<(), Error> {
        let sealed = self.sealer.seal(topic, payload.as_ref(), retain, |n| {
            publish_size_v5(topic, qos != QoS5::AtMostOnce, 0, n)
        })?;
        self.client
            .publish(topic, qos, retain, sealed)
            .map_err(client_error)
    }

    /// Subscribes to a topic filter.
    pub fn subscribe(&self, filter: &str, qos: QoS) -> Result<(), Error> {
        check_filter(filter)?;
        self.client.subscribe(filter, qos).map_err(client_error)
    }

    /// Sends DISCONNECT.
    pub fn disconnect(&self) -> Result<(), Error> {
        self.client.disconnect().map_err(client_error)
    }

    /// Runs `f` on the sealer.
    pub fn with_sealer<R>(&self, f: impl FnOnce(&mut S) -> R) -> R {
        self.sealer.with_backend(f)
    }
}

impl<O: OpenBackend> SealedConnection<O> {
    /// Blocks for the next event; `None` once the client disconnected or was dropped.
    pub fn recv(&mut self) -> Option<Result<SealedEvent, ConnectionError>> {
        self.flush_acks();
        let event = self.connection.recv().ok()?;
        Some(event.map(|e| self.state.handle(e)))
    }

    /// Like [`recv`](Self::recv) with a deadline.
    pub fn recv_timeout(
        &mut self,
        timeout: std::time::Duration,
    ) -> Result<Result<SealedEvent, ConnectionError>, rumqttc::v5::RecvTimeoutError> {
        self.flush_acks();
        let event = self.connection.recv_timeout(timeout)?;
        Ok(event.map(|e| self.state.handle(e)))
    }

    /// Hands pending acknowledgements to rumqttc now.
    pub fn flush_acks(&mut self) {
        let client = &self.client;
        self.state.flush(|p| client.try_ack(p).is_ok());
    }

    /// Counts of delivered and rejected messages.
    pub fn stats(&self) -> &Stats {
        &self.state.receiver.stats
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use mqseal::{Identity, Profile, TreeKey};

    fn publish(topic: &str, alias: Option<u16>, payload: Vec<u8>) -> Publish {
        let mut p = Publish::new(topic, QoS5::AtLeastOnce, payload, None);
        p.properties = alias.map(|a| PublishProperties {
            topic_alias: Some(a),
            ..PublishProperties::default()
        });
        p
    }

    #[test]
    fn aliases_resolve_per_connection_and_unknown_ones_are_refused() {
        let id = Identity::from_seed([3; 32]);
        let key = TreeKey::from_secret("s/#", 2, [4; 32]).unwrap();
        let mut sealer = Sealer::new(id.clone(), Profile::Signed);
        sealer.add_key(key.clone());
        let mut opener = Opener::new();
        opener.trust_sender(id.public());
        opener.add_key(key);
        let mut rx = Receiver::new(opener);
        let mut aliases = HashMap::new();

        let first = publish("s/1", Some(7), sealer.seal("s/1", b"a", false).unwrap());
        let second = publish("", Some(7), sealer.seal("s/1", b"b", false).unwrap());
        let unknown = publish("", Some(8), sealer.seal("s/1", b"c", false).unwrap());
        for (p, expect) in [(&first, Ok(b"a")), (&second, Ok(b"b")), (&unknown, Err(()))] {
            let topic = resolve_alias(&mut aliases, p);
            let got = rx.receive(Incoming {
                topic: topic.as_deref().unwrap_or(b""),
                payload: &p.payload,
                qos: rumqttc::QoS::AtLeastOnce,
                retain: false,
                dup: false,
            });
            match expect {
                Ok(payload) => {
                    let m = got.unwrap();
                    assert_eq!(m.payload, payload);
                    assert_eq!(m.topic, "s/1");
                }
                Err(()) => assert_eq!(got.unwrap_err().error, mqseal::Error::InvalidTopic),
            }
        }
    }

    #[test]
    fn connect_does_not_advertise_topic_aliases() {
        let mut o = MqttOptions::new("c", "127.0.0.1", 1);
        o.set_topic_alias_max(Some(10));
        let (client, lp) = SealedClient::new(
            o,
            10,
            Sealer::new(Identity::from_seed([1; 32]), Profile::Signed),
            Opener::new(),
        );
        assert_eq!(lp.eventloop.options.topic_alias_max(), None);
        assert!(lp.eventloop.options.manual_acks());
        assert_eq!(client.max_packet_size(), mqseal::MAX_SEALED_LEN);
    }

    #[test]
    fn property_lengths_cover_the_encoding() {
        let p = PublishProperties {
            topic_alias: Some(1),
            user_properties: vec![("k".into(), "v".into())],
            ..PublishProperties::default()
        };
        assert_eq!(properties_len(&p), 3 + 7);
    }
}
