//! MQTT v3.1.1, blocking: [`SealedSyncClient`] + [`SealedConnection`] over rumqttc's `Client` +
//! `Connection`.

use std::time::Duration;

use mqseal::{Opener, Sealer};
use rumqttc::{Client, ConnectionError, MqttOptions, Packet, Publish, QoS, RecvTimeoutError};

use crate::backend::{OpenBackend, SealBackend};
use crate::client::{SealedEvent, client_error};
use crate::error::Error;
use crate::event::{Event, Stats};
use crate::filter::check_filter;
use crate::receive::{Incoming, Receiver};
use crate::seal::{SharedSealer, publish_size_v4};

/// Blocking client that publishes sealed messages (clones share the sealer).
pub struct SealedSyncClient<S = Sealer> {
    client: Client,
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

/// Blocking connection: iterate it to drive the connection and receive opened messages.
/// Acknowledgements are manual and sent when the next event is requested (see
/// [`SealedEventLoop`](crate::SealedEventLoop)).
pub struct SealedConnection<O = Opener> {
    connection: rumqttc::Connection,
    client: Client,
    receiver: Receiver<O>,
    pending_acks: Vec<Publish>,
}

impl<S: SealBackend> SealedSyncClient<S> {
    /// Creates the client and its connection (manual acks, one max packet size both ways).
    pub fn new<O: OpenBackend>(
        mut options: MqttOptions,
        cap: usize,
        sealer: S,
        opener: O,
    ) -> (SealedSyncClient<S>, SealedConnection<O>) {
        let max = options.max_packet_size();
        options.set_manual_acks(true).set_max_packet_size(max, max);
        let (client, connection) = Client::new(options, cap);
        (
            SealedSyncClient {
                client: client.clone(),
                sealer: SharedSealer::new(sealer, max),
            },
            SealedConnection {
                connection,
                client,
                receiver: Receiver::new(opener),
                pending_acks: Vec::new(),
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

    /// Includes the current time in every sealed message (for openers with a max age).
    pub fn set_timestamps(&self, on: bool) {
        self.sealer.set_timestamps(on);
    }

    /// Sends DISCONNECT; the connection's iterator then ends.
    pub fn disconnect(&self) -> Result<(), Error> {
        self.client.disconnect().map_err(client_error)
    }

    /// Runs `f` on the sealer.
    pub fn with_sealer<R>(&self, f: impl FnOnce(&mut S) -> R) -> R {
        self.sealer.with_backend(f)
    }

    /// The underlying rumqttc client (publishing through it directly is **not** sealed).
    pub fn inner(&self) -> &Client {
        &self.client
    }

    fn seal(&self, topic: &str, qos: QoS, retain: bool, payload: &[u8]) -> Result<Vec<u8>, Error> {
        self.sealer.seal(topic, payload, retain, |n| {
            publish_size_v4(topic, qos != QoS::AtMostOnce, n)
        })
    }
}

impl<O: OpenBackend> SealedConnection<O> {
    /// Blocks for the next event; `None` once the client disconnected or was dropped.
    pub fn recv(&mut self) -> Option<Result<SealedEvent, ConnectionError>> {
        self.flush_acks();
        self.subscribe_grants();
        let event = self.connection.recv().ok()?;
        if event.is_err() {
            self.receiver.on_connection_error();
        }
        Some(event.map(|e| self.handle(e)))
    }

    /// Like [`recv`](Self::recv) with a deadline: `Err(Timeout)` if nothing happened in time.
    pub fn recv_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<Result<SealedEvent, ConnectionError>, RecvTimeoutError> {
        self.flush_acks();
        self.subscribe_grants();
        let event = self.connection.recv_timeout(timeout)?;
        if event.is_err() {
            self.receiver.on_connection_error();
        }
        Ok(event.map(|e| self.handle(e)))
    }

    /// Iterates events until the client disconnects.
    pub fn iter(&mut self) -> impl Iterator<Item = Result<SealedEvent, ConnectionError>> + '_ {
        std::iter::from_fn(move || self.recv())
    }

    /// Counts of delivered and rejected messages (and of followed grants).
    pub fn stats(&self) -> &Stats {
        &self.receiver.stats
    }

    /// The opener (add keys, trust senders…).
    pub fn opener_mut(&mut self) -> &mut O {
        &mut self.receiver.opener
    }

    /// The opener.
    pub fn opener(&self) -> &O {
        &self.receiver.opener
    }

    /// Hands the acknowledgements of handled messages to rumqttc now (also done by every poll);
    /// call it before `disconnect` so the last message is acknowledged.
    pub fn flush_acks(&mut self) {
        let client = &self.client;
        self.pending_acks.retain(|p| client.try_ack(p).is_err());
    }

    /// Queues the SUBSCRIBE to the followed grant topic once per session.
    fn subscribe_grants(&mut self) {
        let client = &self.client;
        self.receiver
            .subscribe_grants(|filter| client.try_subscribe(filter, QoS::AtLeastOnce).is_ok());
    }

    fn handle(&mut self, event: rumqttc::Event) -> SealedEvent {
        match event {
            rumqttc::Event::Incoming(Packet::Publish(publish)) => {
                let out = self.receiver.receive(Incoming {
                    topic: publish.topic.as_bytes(),
                    payload: &publish.payload,
                    qos: publish.qos,
                    retain: publish.retain,
                    dup: publish.dup,
                });
                if publish.qos != QoS::AtMostOnce && out.ackable() {
                    self.pending_acks.push(publish);
                }
                out.into_event()
            }
            rumqttc::Event::Incoming(Packet::ConnAck(ack)) => {
                self.receiver.on_connack(ack.session_present);
                if !ack.session_present {
                    self.pending_acks.clear();
                }
                Event::Mqtt(rumqttc::Event::Incoming(Packet::ConnAck(ack)))
            }
            other => Event::Mqtt(other),
        }
    }
}

#[cfg(feature = "store")]
impl<S: SealBackend> SealedSyncClient<S> {
    /// Publishes grants a keystore issued: QoS 1, retained, unsealed, on their grant topics (see
    /// [`grants::publish_grants_blocking`](crate::grants::publish_grants_blocking)).
    pub fn publish_grants(&self, grants: &[mqseal_store::OutgoingGrant]) -> Result<(), Error> {
        crate::grants::publish_grants_blocking(&self.client, grants)
    }
}

#[cfg(feature = "store")]
impl<S: SealBackend + crate::grants::ReloadKeys> SealedSyncClient<S> {
    /// Follows this identity's grants in band, as
    /// [`SealedClient::follow_grants`](crate::SealedClient::follow_grants) does for the async
    /// client: `connection` subscribes to the store's grant filter once connected, hands what
    /// arrives there to the store (as [`Event::Grant`]) and reloads the opener's and this
    /// client's sealer's keys after each accepted grant.
    ///
    /// ```no_run
    /// use std::sync::Arc;
    /// use mqseal::{OpenPolicy, Profile};
    /// use mqseal_rumqttc::{ConnectOptions, Event, SealedSyncClient};
    /// use mqseal_store::Store;
    ///
    /// # fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = Arc::new(Store::open("sensor.store")?);
    /// let options = ConnectOptions::new("sensor", "127.0.0.1", 1883).v4()?;
    /// let (client, mut connection) = SealedSyncClient::new(
    ///     options, 10, store.sealer(Profile::Signed)?, store.opener(OpenPolicy::default())?);
    /// client.follow_grants(&mut connection, store.clone());
    /// for event in connection.iter() {
    ///     if let Event::Grant(g) = event? {
    ///         println!("grant on {}: {g:?}", g.topic());
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn follow_grants<O: OpenBackend + crate::grants::ReloadKeys>(
        &self,
        connection: &mut SealedConnection<O>,
        store: std::sync::Arc<mqseal_store::Store>,
    ) {
        connection
            .receiver
            .follow_grants(crate::grants::GrantFollower::with_sealer(
                store,
                &self.sealer,
            ));
    }
}
