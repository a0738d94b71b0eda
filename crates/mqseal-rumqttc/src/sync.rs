//! MQTT v3.1.1, blocking: [`SealedSyncClient`] + [`SealedConnection`] over rumqttc's `Client` +
//! `Connection`.

use std::time::Duration;

use mqseal::{Opener, Sealer};
use rumqttc::{Client, ConnectionError, MqttOptions, Packet, Publish, QoS, RecvTimeoutError};

use crate::client::{SealedEvent, client_error};
use crate::error::Error;
use crate::event::{Event, Stats};
use crate::receive::{Incoming, Receiver};
use crate::seal::{SequenceReservation, SharedSealer, publish_size_v4};

/// Blocking client that publishes sealed messages (clones share the sealer).
#[derive(Clone)]
pub struct SealedSyncClient {
    client: Client,
    sealer: SharedSealer,
}

/// Blocking connection: iterate it to drive the connection and receive opened messages.
/// Acknowledgements are manual and sent when the next event is requested (see
/// [`SealedEventLoop`](crate::SealedEventLoop)).
pub struct SealedConnection {
    connection: rumqttc::Connection,
    client: Client,
    receiver: Receiver,
    pending_acks: Vec<Publish>,
}

impl SealedSyncClient {
    /// Creates the client and its connection (manual acks, one max packet size both ways).
    pub fn new(
        mut options: MqttOptions,
        cap: usize,
        sealer: Sealer,
        opener: Opener,
    ) -> (SealedSyncClient, SealedConnection) {
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
        self.client.subscribe(filter, qos).map_err(client_error)
    }

    /// Sends DISCONNECT; the connection's iterator then ends.
    pub fn disconnect(&self) -> Result<(), Error> {
        self.client.disconnect().map_err(client_error)
    }

    /// Installs a durable sequence-reservation hook.
    pub fn set_sequence_reservation(&self, hook: Box<dyn SequenceReservation>) {
        self.sealer.set_reservation(hook);
    }

    /// Runs `f` on the sealer.
    pub fn with_sealer<R>(&self, f: impl FnOnce(&mut Sealer) -> R) -> R {
        self.sealer.with_sealer(f)
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

impl SealedConnection {
    /// Blocks for the next event; `None` once the client disconnected or was dropped.
    pub fn recv(&mut self) -> Option<Result<SealedEvent, ConnectionError>> {
        self.flush_acks();
        let event = self.connection.recv().ok()?;
        Some(event.map(|e| self.handle(e)))
    }

    /// Like [`recv`](Self::recv) with a deadline: `Err(Timeout)` if nothing happened in time.
    pub fn recv_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<Result<SealedEvent, ConnectionError>, RecvTimeoutError> {
        self.flush_acks();
        let event = self.connection.recv_timeout(timeout)?;
        Ok(event.map(|e| self.handle(e)))
    }

    /// Iterates events until the client disconnects.
    pub fn iter(&mut self) -> impl Iterator<Item = Result<SealedEvent, ConnectionError>> + '_ {
        std::iter::from_fn(move || self.recv())
    }

    /// Counts of delivered and rejected messages.
    pub fn stats(&self) -> &Stats {
        &self.receiver.stats
    }

    /// The opener (add keys, trust senders…).
    pub fn opener_mut(&mut self) -> &mut Opener {
        &mut self.receiver.opener
    }

    fn flush_acks(&mut self) {
        let client = &self.client;
        self.pending_acks.retain(|p| client.try_ack(p).is_err());
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
                if publish.qos != QoS::AtMostOnce {
                    self.pending_acks.push(publish);
                }
                match out {
                    Ok(m) => Event::Message(m),
                    Err(r) => Event::Rejected(r),
                }
            }
            rumqttc::Event::Incoming(Packet::ConnAck(ack)) => {
                if !ack.session_present {
                    self.pending_acks.clear();
                }
                Event::Mqtt(rumqttc::Event::Incoming(Packet::ConnAck(ack)))
            }
            other => Event::Mqtt(other),
        }
    }
}
