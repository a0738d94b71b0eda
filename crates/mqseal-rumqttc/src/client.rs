//! MQTT v3.1.1, async: [`SealedClient`] + [`SealedEventLoop`] over rumqttc's `AsyncClient` +
//! `EventLoop`.

use mqseal::{Opener, Sealer};
use rumqttc::{AsyncClient, ClientError, ConnectionError, MqttOptions, Packet, Publish, QoS};

use crate::backend::{OpenBackend, SealBackend};
use crate::error::Error;
use crate::event::{Event, Stats};
use crate::filter::check_filter;
use crate::receive::{Incoming, Receiver};
use crate::seal::{SharedSealer, publish_size_v4};

/// An event of a v3.1.1 loop: rumqttc's own [`rumqttc::Event`] for everything but PUBLISH.
pub type SealedEvent = Event<rumqttc::Event>;

/// Publishes sealed messages (clone it freely; clones share the sealer and its counter).
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

/// Drives the connection and opens incoming messages. Poll it in a loop, like rumqttc's
/// `EventLoop`.
///
/// Acknowledgements are manual: the PUBACK/PUBREC of a QoS 1/2 message is sent when `poll` is
/// called again, i.e. once the application has handled the previous event. Messages that do not
/// open are acknowledged too (definitively rejected: a redelivery would be refused again).
pub struct SealedEventLoop<O = Opener> {
    eventloop: rumqttc::EventLoop,
    client: AsyncClient,
    receiver: Receiver<O>,
    pending_acks: Vec<Publish>,
}

impl<S: SealBackend> SealedClient<S> {
    /// Creates the client and its event loop. Turns on manual acks and uses one maximum packet
    /// size for both directions (`options.max_packet_size()`), against which sealed messages are
    /// checked before they are sent.
    pub fn new<O: OpenBackend>(
        mut options: MqttOptions,
        cap: usize,
        sealer: S,
        opener: O,
    ) -> (SealedClient<S>, SealedEventLoop<O>) {
        let max = options.max_packet_size();
        options.set_manual_acks(true).set_max_packet_size(max, max);
        let (client, eventloop) = AsyncClient::new(options, cap);
        let sealed = SealedClient {
            client: client.clone(),
            sealer: SharedSealer::new(sealer, max),
        };
        let lp = SealedEventLoop {
            eventloop,
            client,
            receiver: Receiver::new(opener),
            pending_acks: Vec::new(),
        };
        (sealed, lp)
    }

    /// Seals `payload` for `topic` and publishes it. The retain flag is bound into the seal.
    pub async fn publish(
        &self,
        topic: &str,
        qos: QoS,
        retain: bool,
        payload: impl AsRef<[u8]>,
    ) -> Result<(), Error> {
        let sealed = self.seal(topic, qos, retain, payload.as_ref())?;
        self.client
            .publish(topic, qos, retain, sealed)
            .await
            .map_err(client_error)
    }

    /// Like [`publish`](Self::publish) without waiting: fails with [`Error::ChannelFull`] when
    /// the request channel is full (the sequence number is then spent, never reused).
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

    /// Subscribes to a topic filter (wildcards allowed).
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

    /// Sends DISCONNECT; the event loop then ends.
    pub async fn disconnect(&self) -> Result<(), Error> {
        self.client.disconnect().await.map_err(client_error)
    }

    /// Includes the current time in every sealed message (for openers with a max age).
    pub fn set_timestamps(&self, on: bool) {
        self.sealer.set_timestamps(on);
    }

    /// Runs `f` on the sealer (add or rotate keys, set the sequence block…).
    pub fn with_sealer<R>(&self, f: impl FnOnce(&mut S) -> R) -> R {
        self.sealer.with_backend(f)
    }

    /// The underlying rumqttc client. Anything published through it directly is **not** sealed.
    pub fn inner(&self) -> &AsyncClient {
        &self.client
    }

    fn seal(&self, topic: &str, qos: QoS, retain: bool, payload: &[u8]) -> Result<Vec<u8>, Error> {
        self.sealer.seal(topic, payload, retain, |n| {
            publish_size_v4(topic, qos != QoS::AtMostOnce, n)
        })
    }
}

impl<O: OpenBackend> SealedEventLoop<O> {
    /// Polls the connection: returns the next opened message, rejection, or other MQTT event.
    /// Errors are rumqttc's connection errors (poll again to reconnect); nothing a broker or
    /// peer sends can make it panic.
    pub async fn poll(&mut self) -> Result<SealedEvent, ConnectionError> {
        self.flush_acks();
        self.subscribe_grants();
        let event = match self.eventloop.poll().await {
            Ok(event) => event,
            Err(e) => {
                self.receiver.on_connection_error();
                return Err(e);
            }
        };
        Ok(match event {
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
                    // Acks of a previous session's packet ids mean nothing to the new one.
                    self.pending_acks.clear();
                }
                Event::Mqtt(rumqttc::Event::Incoming(Packet::ConnAck(ack)))
            }
            other => Event::Mqtt(other),
        })
    }

    /// Hands the acknowledgements of handled messages to rumqttc now (also done by every poll;
    /// those that do not fit in its request channel stay pending); call it before `disconnect`
    /// so the last message is acknowledged.
    pub fn flush_acks(&mut self) {
        let client = &self.client;
        self.pending_acks.retain(|p| client.try_ack(p).is_err());
    }

    /// Queues the SUBSCRIBE to the followed grant topic once per session (retried on the next
    /// poll if the request channel is full).
    fn subscribe_grants(&mut self) {
        let client = &self.client;
        self.receiver
            .subscribe_grants(|filter| client.try_subscribe(filter, QoS::AtLeastOnce).is_ok());
    }

    /// Counts of delivered and rejected messages (and of followed grants).
    pub fn stats(&self) -> &Stats {
        &self.receiver.stats
    }

    /// The opener (add keys, trust senders, restore replay windows…).
    pub fn opener_mut(&mut self) -> &mut O {
        &mut self.receiver.opener
    }

    /// The opener.
    pub fn opener(&self) -> &O {
        &self.receiver.opener
    }

    /// The underlying rumqttc event loop (its options and state).
    pub fn inner_mut(&mut self) -> &mut rumqttc::EventLoop {
        &mut self.eventloop
    }
}

#[cfg(feature = "store")]
impl<S: SealBackend> SealedClient<S> {
    /// Publishes grants a keystore issued ([`Store::issue_grant`], [`Store::rotate`],
    /// [`Store::reissue`]): QoS 1, retained, unsealed, on their grant topics (see
    /// [`grants::publish_grants`](crate::grants::publish_grants)). Returns once queued.
    ///
    /// ```no_run
    /// use std::sync::Arc;
    /// use mqseal::{OpenPolicy, Profile};
    /// use mqseal_rumqttc::{ConnectOptions, SealedClient};
    /// use mqseal_store::{Store, unix_now};
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let admin = Store::open("admin.store")?;
    /// let options = ConnectOptions::new("admin", "127.0.0.1", 1883).v4()?;
    /// let (client, mut events) = SealedClient::new(
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
    /// Follows this identity's grants in band (feature `store`): `events` subscribes to the
    /// store's grant filter `<prefix>/<own fingerprint>/+` at QoS 1 once connected (and again
    /// after every reconnect without a kept session). Each message there goes to
    /// [`Store::accept_grant_message`](mqseal_store::Store::accept_grant_message) instead of
    /// the opener and comes out as [`Event::Grant`]; once a grant is accepted, the loop reloads
    /// the opener's keys (every held key, retired epochs until their grace period ends) and
    /// this client's sealer's (live keys only) from `store`. A sender thus seals under the
    /// newest epoch, and receivers open it, as soon as the grant arrived: no manual reload.
    /// Refused grants are [`GrantEvent::Refused`](crate::grants::GrantEvent::Refused), counted
    /// in [`Stats::grants_refused`], and the loop goes on.
    ///
    /// Keys are loaded when a grant arrives: a store's sealer and opener start with the store's
    /// keys already; in-memory ones can be loaded first with
    /// [`ReloadKeys::reload_keys`](crate::grants::ReloadKeys::reload_keys).
    ///
    /// ```no_run
    /// use std::sync::Arc;
    /// use mqseal::{OpenPolicy, Profile};
    /// use mqseal_rumqttc::grants::GrantEvent;
    /// use mqseal_rumqttc::{ConnectOptions, Event, SealedClient};
    /// use mqseal_store::Store;
    /// use rumqttc::QoS;
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = Arc::new(Store::open("dashboard.store")?);
    /// let options = ConnectOptions::new("dashboard", "127.0.0.1", 1883).v4()?;
    /// let (client, mut events) = SealedClient::new(
    ///     options, 10, store.sealer(Profile::Signed)?, store.opener(OpenPolicy::default())?);
    /// client.follow_grants(&mut events, store.clone());
    /// client.subscribe("plant/#", QoS::AtLeastOnce).await?;
    /// loop {
    ///     match events.poll().await? {
    ///         Event::Message(m) => println!("{}: {:?} (epoch {})", m.topic, m.payload, m.epoch),
    ///         Event::Grant(GrantEvent::Accepted { grant, .. }) => {
    ///             println!("now using {} epoch {}", grant.update.filter, grant.update.epoch)
    ///         }
    ///         Event::Grant(GrantEvent::Refused(r)) => eprintln!("{r}"),
    ///         Event::Rejected(r) => eprintln!("refused a message on {}: {}", r.topic, r.error),
    ///         _ => {}
    ///     }
    /// }
    /// # }
    /// ```
    pub fn follow_grants<O: OpenBackend + crate::grants::ReloadKeys>(
        &self,
        events: &mut SealedEventLoop<O>,
        store: std::sync::Arc<mqseal_store::Store>,
    ) {
        events
            .receiver
            .follow_grants(crate::grants::GrantFollower::with_sealer(
                store,
                &self.sealer,
            ));
    }
}

pub(crate) fn client_error(e: ClientError) -> Error {
    match e {
        ClientError::Request(_) => Error::ClientClosed,
        ClientError::TryRequest(_) => Error::ChannelFull,
    }
}
