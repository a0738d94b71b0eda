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
//!
//! Grants in band (feature `store`, module `grants`): `publish_grants` and `follow_grants` on
//! [`SealedClient`] and [`SealedSyncClient`] work as their v3.1.1 counterparts do: QoS 1
//! retained grants out; the own grant topic followed on every connect, its messages handed to
//! the keystore as `Event::Grant` (never data) and the sealer's and opener's keys reloaded
//! after each accepted grant.

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

/// What the async and the blocking v5 loops share: opener (and grant follower), acks, aliases,
/// packet limit.
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

    /// What one poll of the connection gave: a connection error is noted (the next poll
    /// reconnects) and returned as is, an event is handled.
    fn on_poll(
        &mut self,
        polled: Result<rumqttc::v5::Event, ConnectionError>,
    ) -> Result<SealedEvent, ConnectionError> {
        match polled {
            Ok(event) => Ok(self.handle(event)),
            Err(e) => {
                self.receiver.on_connection_error();
                Err(e)
            }
        }
    }

    /// Opens PUBLISH packets (resolving aliases), tracks CONNACK limits and sessions, passes
    /// the rest.
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
                self.receiver.on_connack(ack.session_present);
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

    /// Follows a grant topic from now on: after each accepted grant the opener and `sealer`
    /// are reloaded from `store`.
    #[cfg(feature = "store")]
    fn follow_grants<S: SealBackend + crate::grants::ReloadKeys>(
        &mut self,
        store: Arc<mqseal_store::Store>,
        sealer: &SharedSealer<S>,
    ) where
        O: crate::grants::ReloadKeys,
    {
        self.receiver
            .follow_grants(crate::grants::GrantFollower::with_sealer(store, sealer));
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

    /// Unsubscribes from a topic filter.
    pub async fn unsubscribe(&self, filter: &str) -> Result<(), Error> {
        check_filter(filter)?;
        self.client.unsubscribe(filter).await.map_err(client_error)
    }

    /// Sends DISCONNECT.
    pub async fn disconnect(&self) -> Result<(), Error> {
        self.client.disconnect().await.map_err(client_error)
    }

    /// Includes the current time in every sealed message (for openers with a max age).
    pub fn set_timestamps(&self, on: bool) {
        self.sealer.set_timestamps(on);
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
        self.subscribe_grants();
        let polled = self.eventloop.poll().await;
        self.state.on_poll(polled)
    }

    /// Hands the acknowledgements of handled messages to rumqttc now (also done by every poll);
    /// call it before `disconnect` so the last message is acknowledged.
    pub fn flush_acks(&mut self) {
        let client = &self.client;
        self.state.flush(|p| client.try_ack(p).is_ok());
    }

    /// Queues the SUBSCRIBE to the followed grant topic once per session (retried on the next
    /// poll if the request channel is full).
    fn subscribe_grants(&mut self) {
        let client = &self.client;
        self.state
            .receiver
            .subscribe_grants(|filter| client.try_subscribe(filter, QoS5::AtLeastOnce).is_ok());
    }

    /// Counts of delivered and rejected messages (and of followed grants).
    pub fn stats(&self) -> &Stats {
        &self.state.receiver.stats
    }

    /// The opener (add keys, trust senders, restore replay windows…).
    pub fn opener_mut(&mut self) -> &mut O {
        &mut self.state.receiver.opener
    }

    /// The opener.
    pub fn opener(&self) -> &O {
        &self.state.receiver.opener
    }

    /// The underlying rumqttc v5 event loop.
    pub fn inner_mut(&mut self) -> &mut rumqttc::v5::EventLoop {
        &mut self.eventloop
    }
}

/// Most aliases remembered per connection. The client advertises no Topic Alias Maximum, so a
/// compliant broker sends none; these bounds only keep a broker that does from growing memory
/// (at most 64 topics of at most 64 KiB: 4 MiB, instead of 65 535 of them).
const MAX_ALIASES: usize = 64;

/// The real topic of a PUBLISH: its topic, recorded under its alias if it has one, or the topic
/// recorded for its alias. `None` for an empty topic with an unknown (or no) alias, and for a
/// new alias beyond [`MAX_ALIASES`] (the message is then refused, nothing is recorded).
fn resolve_alias(aliases: &mut HashMap<u16, Bytes>, publish: &Publish) -> Option<Bytes> {
    let alias = publish.properties.as_ref().and_then(|p| p.topic_alias);
    match (publish.topic.is_empty(), alias) {
        (false, Some(a)) => {
            if !aliases.contains_key(&a) && aliases.len() >= MAX_ALIASES {
                return None;
            }
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

pub(crate) fn client_error(e: ClientError) -> Error {
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
        let sealed = self.seal(topic, qos, retain, payload.as_ref())?;
        self.client
            .publish(topic, qos, retain, sealed)
            .map_err(client_error)
    }

    /// Seals and publishes without blocking ([`Error::ChannelFull`] when the channel is full).
    pub fn try_publish(
        &self,
        topic: &str,
        qos: QoS,
        retain: bool,
        payload: impl AsRef<[u8]>,
    ) -> Result<(), Error> {
        let sealed = self.seal(topic, qos, retain, payload.as_ref())?;
        self.client
            .try_publish(topic, qos, retain, sealed)
            .map_err(client_error)
    }

    /// Subscribes to a topic filter.
    pub fn subscribe(&self, filter: &str, qos: QoS) -> Result<(), Error> {
        check_filter(filter)?;
        self.client.subscribe(filter, qos).map_err(client_error)
    }

    /// Unsubscribes from a topic filter.
    pub fn unsubscribe(&self, filter: &str) -> Result<(), Error> {
        check_filter(filter)?;
        self.client.unsubscribe(filter).map_err(client_error)
    }

    /// Sends DISCONNECT.
    pub fn disconnect(&self) -> Result<(), Error> {
        self.client.disconnect().map_err(client_error)
    }

    /// Includes the current time in every sealed message (for openers with a max age).
    pub fn set_timestamps(&self, on: bool) {
        self.sealer.set_timestamps(on);
    }

    /// Runs `f` on the sealer.
    pub fn with_sealer<R>(&self, f: impl FnOnce(&mut S) -> R) -> R {
        self.sealer.with_backend(f)
    }

    /// The largest PUBLISH packet currently allowed (the broker's limit once connected).
    pub fn max_packet_size(&self) -> usize {
        self.sealer.max_packet()
    }

    /// The underlying rumqttc v5 client (publishing through it directly is **not** sealed).
    pub fn inner(&self) -> &rumqttc::v5::Client {
        &self.client
    }

    fn seal(&self, topic: &str, qos: QoS, retain: bool, payload: &[u8]) -> Result<Vec<u8>, Error> {
        self.sealer.seal(topic, payload, retain, |n| {
            publish_size_v5(topic, qos != QoS5::AtMostOnce, 0, n)
        })
    }
}

impl<O: OpenBackend> SealedConnection<O> {
    /// Blocks for the next event; `None` once the client disconnected or was dropped.
    pub fn recv(&mut self) -> Option<Result<SealedEvent, ConnectionError>> {
        self.flush_acks();
        self.subscribe_grants();
        let polled = self.connection.recv().ok()?;
        Some(self.state.on_poll(polled))
    }

    /// Like [`recv`](Self::recv) with a deadline.
    pub fn recv_timeout(
        &mut self,
        timeout: std::time::Duration,
    ) -> Result<Result<SealedEvent, ConnectionError>, rumqttc::v5::RecvTimeoutError> {
        self.flush_acks();
        self.subscribe_grants();
        let polled = self.connection.recv_timeout(timeout)?;
        Ok(self.state.on_poll(polled))
    }

    /// Hands pending acknowledgements to rumqttc now.
    pub fn flush_acks(&mut self) {
        let client = &self.client;
        self.state.flush(|p| client.try_ack(p).is_ok());
    }

    /// Queues the SUBSCRIBE to the followed grant topic once per session.
    fn subscribe_grants(&mut self) {
        let client = &self.client;
        self.state
            .receiver
            .subscribe_grants(|filter| client.try_subscribe(filter, QoS5::AtLeastOnce).is_ok());
    }

    /// Iterates events until the client disconnects.
    pub fn iter(&mut self) -> impl Iterator<Item = Result<SealedEvent, ConnectionError>> + '_ {
        std::iter::from_fn(move || self.recv())
    }

    /// Counts of delivered and rejected messages (and of followed grants).
    pub fn stats(&self) -> &Stats {
        &self.state.receiver.stats
    }

    /// The opener (add keys, trust senders, restore replay windows…).
    pub fn opener_mut(&mut self) -> &mut O {
        &mut self.state.receiver.opener
    }

    /// The opener.
    pub fn opener(&self) -> &O {
        &self.state.receiver.opener
    }
}

#[cfg(feature = "store")]
impl<S: SealBackend> SealedClient<S> {
    /// Publishes grants a keystore issued ([`Store::issue_grant`], [`Store::rotate`],
    /// [`Store::reissue`]) over MQTT v5: QoS 1, retained, unsealed, on their grant topics, as
    /// the v3.1.1 [`SealedClient::publish_grants`](crate::SealedClient::publish_grants) does
    /// (see [`grants::publish_grants`](crate::grants::publish_grants)). Returns once queued;
    /// the event loop sends them, and the broker's verdict comes back as a PUBACK reason code.
    ///
    /// ```no_run
    /// use mqseal::{OpenPolicy, Profile};
    /// use mqseal_rumqttc::{ConnectOptions, v5};
    /// use mqseal_store::{Store, unix_now};
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let admin = Store::open("admin.store")?;
    /// let options = ConnectOptions::new("admin", "127.0.0.1", 1883).v5()?;
    /// let (client, mut events) = v5::SealedClient::new(
    ///     options, 10, admin.sealer(Profile::Signed)?, admin.opener(OpenPolicy::default())?);
    /// let revoked = admin.peer("intruder")?.fingerprint();
    /// let rotation = admin.rotate("plant/#", &[revoked], unix_now())?;
    /// client.publish_grants(&rotation.grants).await?;   // the event loop sends them
    /// # Ok(()) }
    /// ```
    ///
    /// [`Store::issue_grant`]: mqseal_store::Store::issue_grant
    /// [`Store::rotate`]: mqseal_store::Store::rotate
    /// [`Store::reissue`]: mqseal_store::Store::reissue
    pub async fn publish_grants(
        &self,
        grants: &[mqseal_store::OutgoingGrant],
    ) -> Result<(), Error> {
        crate::grants::publish_grants(&self.client, grants).await
    }
}

#[cfg(feature = "store")]
impl<S: SealBackend + crate::grants::ReloadKeys> SealedClient<S> {
    /// Follows this identity's grants in band over MQTT v5, as the v3.1.1
    /// [`SealedClient::follow_grants`](crate::SealedClient::follow_grants) does: `events`
    /// subscribes to the store's grant filter `<prefix>/<own fingerprint>/+` at QoS 1 once
    /// connected (and again after every reconnect without a kept session); each message there
    /// goes to [`Store::accept_grant_message`](mqseal_store::Store::accept_grant_message), never
    /// to the opener, and comes out as [`Event::Grant`]; after each accepted grant the loop
    /// reloads the opener's keys (every held key, retired epochs until their grace period ends)
    /// and this client's sealer's (live keys only) from `store`, so the sealer switches to a
    /// new epoch with no manual reload. Refused grants are
    /// [`GrantEvent::Refused`](crate::grants::GrantEvent::Refused), counted in
    /// [`Stats::grants_refused`], and the loop goes on.
    ///
    /// ```no_run
    /// use std::sync::Arc;
    /// use mqseal::{OpenPolicy, Profile};
    /// use mqseal_rumqttc::grants::GrantEvent;
    /// use mqseal_rumqttc::{ConnectOptions, Event, v5};
    /// use mqseal_store::Store;
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = Arc::new(Store::open("dashboard.store")?);
    /// let options = ConnectOptions::new("dashboard", "127.0.0.1", 1883).v5()?;
    /// let (client, mut events) = v5::SealedClient::new(
    ///     options, 10, store.sealer(Profile::Signed)?, store.opener(OpenPolicy::default())?);
    /// client.follow_grants(&mut events, store.clone());
    /// client.subscribe("plant/#", v5::QoS::AtLeastOnce).await?;
    /// loop {
    ///     match events.poll().await? {
    ///         Event::Message(m) => println!("{}: {:?} (epoch {})", m.topic, m.payload, m.epoch),
    ///         Event::Grant(GrantEvent::Accepted { grant, .. }) => {
    ///             println!("now using {} epoch {}", grant.update.filter, grant.update.epoch)
    ///         }
    ///         Event::Grant(GrantEvent::Refused(r)) => eprintln!("{r}"),
    ///         _ => {}
    ///     }
    /// }
    /// # }
    /// ```
    pub fn follow_grants<O: OpenBackend + crate::grants::ReloadKeys>(
        &self,
        events: &mut SealedEventLoop<O>,
        store: Arc<mqseal_store::Store>,
    ) {
        events.state.follow_grants(store, &self.sealer);
    }
}

#[cfg(feature = "store")]
impl<S: SealBackend> SealedSyncClient<S> {
    /// Publishes grants a keystore issued over MQTT v5: QoS 1, retained, unsealed, on their
    /// grant topics (see
    /// [`grants::publish_grants_blocking`](crate::grants::publish_grants_blocking)); blocks
    /// while the request channel is full.
    pub fn publish_grants(&self, grants: &[mqseal_store::OutgoingGrant]) -> Result<(), Error> {
        crate::grants::publish_grants_blocking(&self.client, grants)
    }
}

#[cfg(feature = "store")]
impl<S: SealBackend + crate::grants::ReloadKeys> SealedSyncClient<S> {
    /// Follows this identity's grants in band over MQTT v5, as
    /// [`SealedClient::follow_grants`] does for the async v5 client: `connection` subscribes to
    /// the store's grant filter once connected (again after a reconnect without a kept
    /// session), hands what arrives there to the store (as [`Event::Grant`]) and reloads the
    /// opener's and this client's sealer's keys after each accepted grant.
    ///
    /// ```no_run
    /// use std::sync::Arc;
    /// use mqseal::{OpenPolicy, Profile};
    /// use mqseal_rumqttc::{ConnectOptions, Event, v5};
    /// use mqseal_store::Store;
    ///
    /// # fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = Arc::new(Store::open("sensor.store")?);
    /// let options = ConnectOptions::new("sensor", "127.0.0.1", 1883).v5()?;
    /// let (client, mut connection) = v5::SealedSyncClient::new(
    ///     options, 10, store.sealer(Profile::Signed)?, store.opener(OpenPolicy::default())?);
    /// client.follow_grants(&mut connection, store.clone());
    /// while let Some(event) = connection.recv() {
    ///     if let Event::Grant(g) = event? {
    ///         println!("grant on {}: {g:?}", g.topic());
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn follow_grants<O: OpenBackend + crate::grants::ReloadKeys>(
        &self,
        connection: &mut SealedConnection<O>,
        store: Arc<mqseal_store::Store>,
    ) {
        connection.state.follow_grants(store, &self.sealer);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
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
        let mut sealer = Sealer::new(id.clone(), Profile::Signed, 0);
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
    fn a_broker_sending_aliases_anyway_cannot_grow_the_alias_map() {
        let mut aliases = HashMap::new();
        for a in 1..=u16::MAX {
            let topic = format!("t/{a}");
            let resolved = resolve_alias(&mut aliases, &publish(&topic, Some(a), vec![]));
            assert_eq!(
                resolved.is_some(),
                usize::from(a) <= MAX_ALIASES,
                "alias {a}"
            );
        }
        assert_eq!(aliases.len(), MAX_ALIASES);
        // A known alias can still be re-pointed.
        let moved = resolve_alias(&mut aliases, &publish("t/new", Some(1), vec![]));
        assert_eq!(moved.as_deref(), Some(&b"t/new"[..]));
        assert_eq!(aliases.len(), MAX_ALIASES);
    }

    #[test]
    fn connect_does_not_advertise_topic_aliases() {
        let mut o = MqttOptions::new("c", "127.0.0.1", 1);
        o.set_topic_alias_max(Some(10));
        let (client, lp) = SealedClient::new(
            o,
            10,
            Sealer::new(Identity::from_seed([1; 32]), Profile::Signed, 0),
            Opener::new(),
        );
        assert_eq!(lp.eventloop.options.topic_alias_max(), None);
        assert!(lp.eventloop.options.manual_acks());
        assert_eq!(client.max_packet_size(), mqseal::MAX_SEALED_LEN);
    }

    /// The v5 loops call the grant hooks as the v3.1.1 loops do: subscribe once connected,
    /// again after a reconnect without a kept session, not after one with it; grant messages
    /// go to the store, and the sealer is reloaded.
    #[cfg(feature = "store")]
    #[test]
    fn grant_subscription_follows_connacks_and_connection_errors() {
        use mqseal_store::{PersistentOpener, Roles, Store};
        use rumqttc::v5::mqttbytes::v5::{ConnAck, ConnectReturnCode};

        let tmp = tempfile::tempdir().unwrap();
        let admin = Store::create(tmp.path().join("admin"), "admin").unwrap();
        let sensor = Arc::new(Store::create(tmp.path().join("sensor"), "sensor").unwrap());
        admin
            .trust("sensor", &sensor.public(), Roles::SENDER)
            .unwrap();
        sensor
            .trust("admin", &admin.public(), Roles::ISSUER)
            .unwrap();
        admin.create_key("plant/#", 0).unwrap();
        let sealer = SharedSealer::new(
            sensor.sealer(Profile::Signed).unwrap(),
            mqseal::MAX_SEALED_LEN,
        );
        let mut state: V5State<PersistentOpener> = V5State::new(
            sensor.opener(Default::default()).unwrap(),
            sealer.max_packet_handle(),
        );
        state.follow_grants(sensor.clone(), &sealer);
        let connack = |session_present| {
            Ok(rumqttc::v5::Event::Incoming(Packet::ConnAck(ConnAck {
                session_present,
                code: ConnectReturnCode::Success,
                properties: None,
            })))
        };
        let due = |state: &V5State<PersistentOpener>| {
            state.receiver.grant_subscription_due().map(str::to_string)
        };
        let filter = format!("mqseal/grants/{}/+", sensor.fingerprint());
        let mut queued = Vec::new();
        let mut subscribe = |state: &mut V5State<PersistentOpener>| {
            state.receiver.subscribe_grants(|f| {
                queued.push(f.to_string());
                true
            })
        };

        subscribe(&mut state);
        assert_eq!(due(&state), None, "not before the CONNACK");
        assert!(state.on_poll(connack(false)).is_ok());
        assert_eq!(due(&state).as_deref(), Some(filter.as_str()));
        subscribe(&mut state);
        subscribe(&mut state);
        assert_eq!(due(&state), None, "once per session");
        let lost = ConnectionError::Io(std::io::ErrorKind::ConnectionReset.into());
        assert!(state.on_poll(Err(lost)).is_err());
        subscribe(&mut state);
        assert_eq!(due(&state), None, "not while disconnected");
        assert!(state.on_poll(connack(true)).is_ok());
        assert_eq!(due(&state), None, "the session kept the subscription");
        let lost = ConnectionError::Io(std::io::ErrorKind::ConnectionReset.into());
        assert!(state.on_poll(Err(lost)).is_err());
        assert!(state.on_poll(connack(false)).is_ok());
        subscribe(&mut state);
        assert_eq!(queued, [filter.clone(), filter]);

        // A grant arriving on the grant topic is a grant event, and the sealer can seal now.
        let grant = admin.issue_grant("plant/7/#", "sensor").unwrap();
        let mut publish = Publish::new(
            grant.topic.as_str(),
            QoS5::AtLeastOnce,
            grant.payload.clone(),
            None,
        );
        publish.retain = true;
        let event = state
            .on_poll(Ok(rumqttc::v5::Event::Incoming(Packet::Publish(publish))))
            .unwrap();
        match event {
            Event::Grant(g) => assert_eq!(g.accepted().unwrap().update.epoch, 1),
            other => panic!("not a grant: {other:?}"),
        }
        assert_eq!(state.receiver.stats.grants_accepted(), 1);
        assert_eq!(state.pending_acks.len(), 1, "a grant is acknowledged");
        let sealed = sealer
            .seal("plant/7/t", b"x", false, |n| {
                publish_size_v5("plant/7/t", true, 0, n)
            })
            .unwrap();
        assert_eq!(mqseal::inspect(&sealed).unwrap().epoch, 1);
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
