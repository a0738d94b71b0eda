//! In-band grants over the wrapped clients (feature `store`; `spec/keystore.md` sections 10
//! and 11): publish the grants a keystore issued, follow this identity's grant topic, and switch
//! keys as grants arrive. MQTT 3.1.1 and v5, async and blocking alike.
//!
//! - **Publishing**: [`publish_grants`] (a rumqttc `AsyncClient`, v3.1.1 or v5),
//!   [`publish_grants_blocking`] (a blocking `Client`, v3.1.1 or v5), or the `publish_grants`
//!   methods of the wrapped clients ([`SealedClient`], [`SealedSyncClient`],
//!   [`v5::SealedClient`], [`v5::SealedSyncClient`]): each [`OutgoingGrant`] that
//!   [`Store::issue_grant`], [`Store::rotate`] or [`Store::reissue`] returned is published as
//!   is (unsealed: it is HPKE-wrapped and signed already), QoS 1, retained, on the topic the
//!   store computed. The topic prefix is the store's ([`StoreOptions::grant_topics`], default
//!   [`mqseal_store::DEFAULT_GRANT_PREFIX`]): issuer and recipients must use the same one.
//! - **Following**: the `follow_grants` methods of the same four clients subscribe the event
//!   loop to the store's own grant filter (`<prefix>/<own fingerprint>/+`, QoS 1) once
//!   connected, and again after every reconnect without a kept session. A PUBLISH arriving
//!   there is never opened or delivered as application data: it goes to
//!   [`Store::accept_grant_message`] and comes out as [`Event::Grant`](crate::Event::Grant)
//!   with a [`GrantEvent`]. Refused grants are counted
//!   ([`Stats::grants_refused`](crate::Stats::grants_refused)) and the loop goes on.
//! - **Switching epochs**: after each accepted grant the loop reloads the opener's and the
//!   sealer's keys from the store ([`ReloadKeys`]): the opener gets every held key with its
//!   retirement time (so the previous epoch is still opened until the store's grace period
//!   ends, then refused as [`mqseal::Error::EpochExpired`]), the sealer only the live keys (so
//!   it seals under the newest epoch at once). No manual `set_keys` needed.
//!
//! No cryptography here: verification, unwrapping and key bookkeeping are the store's.
//!
//! [`SealedClient`]: crate::SealedClient
//! [`SealedSyncClient`]: crate::SealedSyncClient
//! [`v5::SealedClient`]: crate::v5::SealedClient
//! [`v5::SealedSyncClient`]: crate::v5::SealedSyncClient
//! [`StoreOptions::grant_topics`]: mqseal_store::StoreOptions::grant_topics

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use mqseal_store::{
    AcceptedGrant, OutgoingGrant, PersistentOpener, PersistentSealer, Store, StoreError, unix_now,
};
use rumqttc::QoS;
use rumqttc::v5::mqttbytes::QoS as QoS5;

use crate::backend::SealBackend;
use crate::error::Error;
use crate::seal::SharedSealer;

/// A seal or open backend whose keys can be (re)loaded from a keystore. The follower of grant
/// topics calls it after every accepted grant.
pub trait ReloadKeys {
    /// Replaces the backend's keys with what `store` holds now (sealers: the live keys only;
    /// openers: every held key with its retirement time).
    fn reload_keys(&mut self, store: &Store) -> Result<(), StoreError>;
}

impl ReloadKeys for PersistentSealer {
    fn reload_keys(&mut self, store: &Store) -> Result<(), StoreError> {
        self.set_keys(store.sealing_keys()?);
        Ok(())
    }
}

impl ReloadKeys for PersistentOpener {
    fn reload_keys(&mut self, store: &Store) -> Result<(), StoreError> {
        self.set_keys(&store.held_keys()?);
        Ok(())
    }
}

/// The in-memory sealer: adds the store's live keys and drops the retired and removed ones
/// (keys added by hand that the store never held are kept).
impl ReloadKeys for mqseal::Sealer {
    fn reload_keys(&mut self, store: &Store) -> Result<(), StoreError> {
        let file = store.key_file()?;
        for held in file.keys {
            if held.not_after.is_some() {
                self.remove_key(held.filter(), held.epoch());
            } else {
                self.add_key(held.key);
            }
        }
        for gone in &file.retired {
            self.remove_key(&gone.filter, gone.epoch);
        }
        Ok(())
    }
}

/// The in-memory opener: adds every held key with its retirement time and drops removed ones
/// (replay windows are kept).
impl ReloadKeys for mqseal::Opener {
    fn reload_keys(&mut self, store: &Store) -> Result<(), StoreError> {
        let file = store.key_file()?;
        for held in file.keys {
            let (filter, epoch, not_after) =
                (held.filter().to_string(), held.epoch(), held.not_after);
            self.remove_key(&filter, epoch);
            self.add_key(held.key);
            if let Some(t) = not_after {
                self.retire_key(&filter, epoch, t);
            }
        }
        for gone in &file.retired {
            self.remove_key(&gone.filter, gone.epoch);
        }
        Ok(())
    }
}

/// What became of a message on this identity's grant topic. Grant messages are never
/// delivered as application data.
#[non_exhaustive]
#[derive(Debug)]
pub enum GrantEvent {
    /// The grant was verified and stored, and (when following) the sealer and opener were
    /// reloaded: the new key is in use. `grant.update.added` is `false` for a grant already
    /// held (e.g. the retained copy delivered again on reconnect).
    Accepted {
        /// The grant topic it arrived on.
        topic: String,
        /// The broker's retain flag (a grant published before this client subscribed).
        retained: bool,
        /// What the store accepted: the key's filter and epoch, the issuer, retired epochs.
        grant: AcceptedGrant,
    },
    /// The grant was stored, but reloading the sealer's or opener's keys from the store failed
    /// (an I/O error, a damaged `keys` file): the backends keep their previous keys until the
    /// next accepted grant reloads them.
    ReloadFailed {
        /// The grant topic it arrived on.
        topic: String,
        /// What the store accepted.
        grant: AcceptedGrant,
        /// Why the keys could not be reloaded.
        error: StoreError,
    },
    /// An empty payload: a cleared retained grant. Nothing changed.
    Cleared {
        /// The grant topic.
        topic: String,
    },
    /// The grant was refused and nothing was stored.
    Refused(RefusedGrant),
}

impl GrantEvent {
    /// The grant topic the message arrived on.
    pub fn topic(&self) -> &str {
        match self {
            GrantEvent::Accepted { topic, .. }
            | GrantEvent::ReloadFailed { topic, .. }
            | GrantEvent::Cleared { topic } => topic,
            GrantEvent::Refused(r) => &r.topic,
        }
    }

    /// Whether the store could not record the grant for a passing reason (an I/O error, another
    /// process holding its lock). Such a grant message is not acknowledged, so the broker
    /// delivers it again (QoS 1 after a reconnect, or the retained copy on the next
    /// subscription) instead of it being lost; every other refusal is final and acknowledged.
    pub fn is_transient_failure(&self) -> bool {
        matches!(
            self,
            GrantEvent::Refused(RefusedGrant {
                error: StoreError::Io { .. } | StoreError::Locked { .. },
                ..
            })
        )
    }

    /// The grant the store accepted, if any.
    pub fn accepted(&self) -> Option<&AcceptedGrant> {
        match self {
            GrantEvent::Accepted { grant, .. } | GrantEvent::ReloadFailed { grant, .. } => {
                Some(grant)
            }
            _ => None,
        }
    }
}

/// A message on the grant topic that the store refused.
pub struct RefusedGrant {
    /// The topic it arrived on.
    pub topic: String,
    /// Why: e.g. `grant_not_for_us`, `untrusted_issuer`, `bad_signature`, `malformed`
    /// ([`StoreError::Core`]), `grant_topic_mismatch`, `stale_key`, `key_conflict`, or an I/O
    /// error of the store.
    pub error: StoreError,
    /// Length of the payload as received.
    pub len: usize,
    /// The broker's retain flag.
    pub retained: bool,
}

impl fmt::Debug for RefusedGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefusedGrant")
            .field("topic", &self.topic)
            .field("error", &self.error.name())
            .field("len", &self.len)
            .field("retained", &self.retained)
            .finish()
    }
}

impl fmt::Display for RefusedGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "refused a grant on {}: {}", self.topic, self.error)
    }
}

/// The topic filter `store`'s grants arrive on: `<prefix>/<own fingerprint>/+`.
pub fn grant_subscription(store: &Store) -> String {
    store
        .options()
        .grant_topics
        .subscription(&store.fingerprint())
}

/// Hands one message that arrived on `store`'s grant subscription to
/// [`Store::accept_grant_message`] (verify, unwrap, check the topic, store, retire older
/// epochs) and says what became of it. Never panics, whatever the bytes. It does not reload any
/// sealer or opener: the followers of [`SealedClient::follow_grants`] do that.
///
/// ```
/// use mqseal_rumqttc::grants::{GrantEvent, handle_grant_message};
/// use mqseal_store::{Roles, Store};
/// # let tmp = tempfile::tempdir().unwrap();
/// let admin = Store::create(tmp.path().join("admin"), "admin").unwrap();
/// let sensor = Store::create(tmp.path().join("sensor"), "sensor").unwrap();
/// admin.trust("sensor", &sensor.public(), Roles::SENDER).unwrap();
/// sensor.trust("admin", &admin.public(), Roles::ISSUER).unwrap();
/// admin.create_key("plant/#", 0).unwrap();
/// let grant = admin.issue_grant("plant/7/#", "sensor").unwrap();
///
/// // What a subscriber to `grant_subscription(&sensor)` receives:
/// match handle_grant_message(&sensor, &grant.topic, &grant.payload, true) {
///     GrantEvent::Accepted { grant, .. } => assert_eq!(grant.update.epoch, 1),
///     other => panic!("{other:?}"),
/// }
/// // Garbage on the grant topic is a typed refusal, not a crash.
/// assert!(matches!(
///     handle_grant_message(&sensor, &grant.topic, b"garbage", false),
///     GrantEvent::Refused(_)
/// ));
/// ```
///
/// [`SealedClient::follow_grants`]: crate::SealedClient::follow_grants
pub fn handle_grant_message(
    store: &Store,
    topic: &str,
    payload: &[u8],
    retained: bool,
) -> GrantEvent {
    match store.accept_grant_message(topic, payload, unix_now()) {
        Ok(Some(grant)) => GrantEvent::Accepted {
            topic: topic.to_string(),
            retained,
            grant,
        },
        Ok(None) => GrantEvent::Cleared {
            topic: topic.to_string(),
        },
        Err(error) => GrantEvent::Refused(RefusedGrant {
            topic: topic.to_string(),
            error,
            len: payload.len(),
            retained,
        }),
    }
}

/// A rumqttc async client that grants can be published with: the MQTT 3.1.1
/// [`rumqttc::AsyncClient`] or the MQTT v5 [`rumqttc::v5::AsyncClient`] (sealed: implemented
/// for these two only).
pub trait GrantPublisher: sealed::Sealed {
    /// Queues one grant: QoS 1, its retain flag, its topic, its bytes as the payload.
    #[doc(hidden)]
    fn publish_grant(
        &self,
        grant: &OutgoingGrant,
    ) -> impl Future<Output = Result<(), Error>> + Send;
}

/// A blocking rumqttc client that grants can be published with: the MQTT 3.1.1
/// [`rumqttc::Client`] or the MQTT v5 [`rumqttc::v5::Client`] (sealed: implemented for these
/// two only).
pub trait BlockingGrantPublisher: sealed::Sealed {
    /// Queues one grant (blocks while the request channel is full).
    #[doc(hidden)]
    fn publish_grant_blocking(&self, grant: &OutgoingGrant) -> Result<(), Error>;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for rumqttc::AsyncClient {}
    impl Sealed for rumqttc::Client {}
    impl Sealed for rumqttc::v5::AsyncClient {}
    impl Sealed for rumqttc::v5::Client {}
}

impl GrantPublisher for rumqttc::AsyncClient {
    async fn publish_grant(&self, grant: &OutgoingGrant) -> Result<(), Error> {
        self.publish(
            &grant.topic,
            QoS::AtLeastOnce,
            grant.retain,
            grant.payload.clone(),
        )
        .await
        .map_err(crate::client::client_error)
    }
}

impl GrantPublisher for rumqttc::v5::AsyncClient {
    async fn publish_grant(&self, grant: &OutgoingGrant) -> Result<(), Error> {
        self.publish(
            &grant.topic,
            QoS5::AtLeastOnce,
            grant.retain,
            grant.payload.clone(),
        )
        .await
        .map_err(crate::v5::client_error)
    }
}

impl BlockingGrantPublisher for rumqttc::Client {
    fn publish_grant_blocking(&self, grant: &OutgoingGrant) -> Result<(), Error> {
        self.publish(
            &grant.topic,
            QoS::AtLeastOnce,
            grant.retain,
            grant.payload.clone(),
        )
        .map_err(crate::client::client_error)
    }
}

impl BlockingGrantPublisher for rumqttc::v5::Client {
    fn publish_grant_blocking(&self, grant: &OutgoingGrant) -> Result<(), Error> {
        self.publish(
            &grant.topic,
            QoS5::AtLeastOnce,
            grant.retain,
            grant.payload.clone(),
        )
        .map_err(crate::v5::client_error)
    }
}

fn check_grant(grant: &OutgoingGrant) -> Result<(), Error> {
    mqseal::validate_topic(&grant.topic)?;
    Ok(())
}

/// Publishes grants with a plain rumqttc async client, MQTT 3.1.1 ([`rumqttc::AsyncClient`])
/// or v5 ([`rumqttc::v5::AsyncClient`]): each at QoS 1, retained (as the store marks every
/// grant), on its grant topic, with the grant bytes as the payload (unsealed: they are wrapped
/// to the recipient and signed). Returns once they are queued; the event loop sends them and
/// gets the PUBACKs. An invalid grant topic is refused before anything of that grant is queued
/// (the grants before it are queued already).
///
/// ```no_run
/// # async fn run(admin: mqseal_store::Store, client: rumqttc::AsyncClient, revoked: mqseal::Fingerprint)
/// # -> Result<(), Box<dyn std::error::Error>> {
/// // Rotate plant/#, leaving out a revoked member, and hand the new epoch to everyone else.
/// let rotation = admin.rotate("plant/#", &[revoked], mqseal_store::unix_now())?;
/// mqseal_rumqttc::grants::publish_grants(&client, &rotation.grants).await?;
/// # Ok(()) }
/// ```
pub async fn publish_grants<C: GrantPublisher>(
    client: &C,
    grants: &[OutgoingGrant],
) -> Result<(), Error> {
    for grant in grants {
        check_grant(grant)?;
        client.publish_grant(grant).await?;
    }
    Ok(())
}

/// [`publish_grants`] with a blocking rumqttc client, MQTT 3.1.1 ([`rumqttc::Client`]) or v5
/// ([`rumqttc::v5::Client`]); blocks while the request channel is full.
pub fn publish_grants_blocking<C: BlockingGrantPublisher>(
    client: &C,
    grants: &[OutgoingGrant],
) -> Result<(), Error> {
    for grant in grants {
        check_grant(grant)?;
        client.publish_grant_blocking(grant)?;
    }
    Ok(())
}

type ReloadFn = Box<dyn FnMut(&Store) -> Result<(), StoreError> + Send>;

/// The grant side of an event loop: its store, its subscription, and how to reload keys.
pub(crate) struct GrantFollower<O> {
    store: Arc<Store>,
    subscription: String,
    /// `<prefix>/<own fingerprint>/`: topics directly below it are grant topics.
    topic_prefix: String,
    reload_opener: fn(&mut O, &Store) -> Result<(), StoreError>,
    reload_sealer: ReloadFn,
    /// A SUBSCRIBE to the grant filter was queued in the current session.
    subscribed: bool,
    /// The last grant accepted on each grant topic, with its bytes: a broker redelivering the
    /// same retained grant (every reconnect, or on purpose, in a loop) costs a comparison, not
    /// a signature check, an HPKE open, file reads and a key reload. Only accepted grants are
    /// remembered (at most [`SEEN_LIMIT`] topics), so refusals leave nothing behind.
    seen: HashMap<String, (Vec<u8>, AcceptedGrant)>,
}

/// Grant topics remembered by a [`GrantFollower`] before it forgets them all.
const SEEN_LIMIT: usize = 256;

impl<O> fmt::Debug for GrantFollower<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrantFollower")
            .field("store", &self.store)
            .field("subscription", &self.subscription)
            .field("subscribed", &self.subscribed)
            .finish_non_exhaustive()
    }
}

impl<O: ReloadKeys> GrantFollower<O> {
    pub fn new(store: Arc<Store>, reload_sealer: ReloadFn) -> GrantFollower<O> {
        let subscription = grant_subscription(&store);
        let topic_prefix = subscription
            .strip_suffix('+')
            .unwrap_or(&subscription)
            .to_string();
        GrantFollower {
            store,
            subscription,
            topic_prefix,
            reload_opener: <O as ReloadKeys>::reload_keys,
            reload_sealer,
            subscribed: false,
            seen: HashMap::new(),
        }
    }

    /// The follower of a client's loop: after each accepted grant it reloads the loop's opener
    /// and then `sealer`, the client's (shared with its clones).
    pub fn with_sealer<S: SealBackend + ReloadKeys>(
        store: Arc<Store>,
        sealer: &SharedSealer<S>,
    ) -> GrantFollower<O> {
        let sealer = sealer.clone();
        GrantFollower::new(
            store,
            Box::new(move |store| sealer.with_backend(|s| s.reload_keys(store))),
        )
    }
}

impl<O> GrantFollower<O> {
    /// The grant topic `topic` is, if it matches the grant subscription.
    pub fn claims<'a>(&self, topic: &'a [u8]) -> Option<&'a str> {
        let topic = std::str::from_utf8(topic).ok()?;
        let slot = topic.strip_prefix(self.topic_prefix.as_str())?;
        (!slot.contains('/')).then_some(topic)
    }

    /// The filter to subscribe to now, if a SUBSCRIBE is due in this session.
    pub fn due(&self) -> Option<&str> {
        (!self.subscribed).then_some(self.subscription.as_str())
    }

    pub fn set_subscribed(&mut self, subscribed: bool) {
        self.subscribed = subscribed;
    }

    /// Stores the grant and, once a new key was added, reloads the opener's and then the
    /// sealer's keys. The same bytes accepted before on the same topic are answered from memory
    /// (`Accepted`, `update.added == false`): nothing to verify, store or reload.
    pub fn handle(
        &mut self,
        opener: &mut O,
        topic: &str,
        payload: &[u8],
        retained: bool,
    ) -> GrantEvent {
        if let Some((bytes, grant)) = self.seen.get(topic)
            && bytes.as_slice() == payload
        {
            let mut grant = grant.clone();
            grant.update.added = false;
            grant.update.retired.clear();
            return GrantEvent::Accepted {
                topic: topic.to_string(),
                retained,
                grant,
            };
        }
        match handle_grant_message(&self.store, topic, payload, retained) {
            GrantEvent::Accepted {
                topic,
                retained,
                grant,
            } if !grant.update.added => {
                // Already held: the backends have the key since it was added.
                self.remember(&topic, payload, &grant);
                GrantEvent::Accepted {
                    topic,
                    retained,
                    grant,
                }
            }
            GrantEvent::Accepted {
                topic,
                retained,
                grant,
            } => {
                // A new key: earlier answers from memory may be stale (retired epochs).
                self.seen.clear();
                // The opener first: a receiver accepts the new epoch before this client seals
                // under it.
                let reloaded = (self.reload_opener)(opener, &self.store)
                    .and_then(|()| (self.reload_sealer)(&self.store));
                match reloaded {
                    Ok(()) => {
                        self.remember(&topic, payload, &grant);
                        GrantEvent::Accepted {
                            topic,
                            retained,
                            grant,
                        }
                    }
                    Err(error) => GrantEvent::ReloadFailed {
                        topic,
                        grant,
                        error,
                    },
                }
            }
            other => other,
        }
    }

    fn remember(&mut self, topic: &str, payload: &[u8], grant: &AcceptedGrant) {
        if self.seen.len() >= SEEN_LIMIT {
            self.seen.clear();
        }
        self.seen
            .insert(topic.to_string(), (payload.to_vec(), grant.clone()));
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )]
    use super::*;
    use crate::receive::{Incoming, Outcome, Receiver};
    use mqseal::{Profile, Sealer};
    use mqseal_store::{GrantTopics, Roles, StoreOptions};
    use std::sync::Mutex;

    struct Parties {
        _tmp: tempfile::TempDir,
        admin: Store,
        sensor: Arc<Store>,
        dash: Arc<Store>,
    }

    fn parties(prefix: &str) -> Parties {
        let tmp = tempfile::tempdir().unwrap();
        let options = StoreOptions {
            grant_topics: GrantTopics::new(prefix).unwrap(),
            ..StoreOptions::default()
        };
        let make = |name: &str| {
            Store::create_with(
                tmp.path().join(name),
                name,
                mqseal::Identity::generate().unwrap(),
                options.clone(),
            )
            .unwrap()
        };
        let (admin, sensor, dash) = (make("admin"), make("sensor"), make("dash"));
        admin
            .trust("sensor", &sensor.public(), Roles::SENDER)
            .unwrap();
        admin.trust("dash", &dash.public(), Roles::SENDER).unwrap();
        for s in [&sensor, &dash] {
            s.trust("admin", &admin.public(), Roles::ISSUER).unwrap();
        }
        dash.trust("sensor", &sensor.public(), Roles::SENDER)
            .unwrap();
        admin.create_key("plant/#", 0).unwrap();
        Parties {
            _tmp: tmp,
            admin,
            sensor: Arc::new(sensor),
            dash: Arc::new(dash),
        }
    }

    fn on<'a>(topic: &'a str, payload: &'a [u8]) -> Incoming<'a> {
        Incoming {
            topic: topic.as_bytes(),
            payload,
            qos: QoS::AtLeastOnce,
            retain: true,
            dup: false,
        }
    }

    fn grant_event(out: Outcome) -> GrantEvent {
        match out {
            Outcome::Grant(g) => g,
            other => panic!("not a grant event: {other:?}"),
        }
    }

    #[test]
    fn a_redelivered_grant_is_answered_from_memory_without_store_work_or_reload() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let p = parties("mqseal/grants");
        let reloads = Arc::new(AtomicUsize::new(0));
        let counter = reloads.clone();
        let mut follower: GrantFollower<PersistentOpener> = GrantFollower::new(
            p.sensor.clone(),
            Box::new(move |_| {
                counter.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }),
        );
        let mut opener = p.sensor.opener(Default::default()).unwrap();
        let g = p.admin.issue_grant("plant/7/#", "sensor").unwrap();
        let first = follower.handle(&mut opener, &g.topic, &g.payload, true);
        assert!(matches!(&first, GrantEvent::Accepted { grant, .. } if grant.update.added));
        assert_eq!(reloads.load(Ordering::SeqCst), 1);
        // Make the store unusable: an answer that touched it would be a refusal now.
        let trusted = p.sensor.dir().join(mqseal_store::layout::TRUSTED);
        let mode = |m| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&trusted, std::fs::Permissions::from_mode(m)).unwrap();
        };
        mode(0o666);
        for _ in 0..100 {
            let again = follower.handle(&mut opener, &g.topic, &g.payload, true);
            assert!(
                matches!(&again, GrantEvent::Accepted { grant, .. } if !grant.update.added),
                "{again:?}"
            );
        }
        assert_eq!(
            reloads.load(Ordering::SeqCst),
            1,
            "no reload for a grant already held"
        );
        // Other bytes on the same topic do go to the store (and are refused here).
        let mut other = g.payload.clone();
        other[10] ^= 1;
        let refused = follower.handle(&mut opener, &g.topic, &other, true);
        assert!(matches!(refused, GrantEvent::Refused(_)), "{refused:?}");
        mode(0o644);
    }

    #[test]
    fn accepted_grants_switch_sealer_and_opener_refusals_are_counted() {
        let p = parties("site/keys");
        let shared = Arc::new(Mutex::new(p.sensor.sealer(Profile::Signed).unwrap()));
        let sealer = shared.clone();
        let mut sensor_rx = Receiver::new(p.sensor.opener(Default::default()).unwrap());
        sensor_rx.follow_grants(GrantFollower::new(
            p.sensor.clone(),
            Box::new(move |store| sealer.lock().unwrap().reload_keys(store)),
        ));
        let mut dash_rx = Receiver::new(p.dash.opener(Default::default()).unwrap());
        dash_rx.follow_grants(GrantFollower::new(p.dash.clone(), Box::new(|_| Ok(()))));
        assert_eq!(
            dash_rx.grant_subscription_due(),
            None,
            "not before the CONNACK"
        );
        dash_rx.on_connack(false);
        let filter = format!("site/keys/{}/+", p.dash.fingerprint());
        assert_eq!(dash_rx.grant_subscription_due(), Some(filter.as_str()));
        dash_rx.grant_subscribed();
        assert_eq!(dash_rx.grant_subscription_due(), None);
        dash_rx.on_connack(true);
        assert_eq!(dash_rx.grant_subscription_due(), None, "session kept");
        dash_rx.on_connection_error();
        dash_rx.on_connack(false);
        assert_eq!(dash_rx.grant_subscription_due(), Some(filter.as_str()));

        // Epoch 1, in band.
        let g1 = p.admin.issue_grant("plant/7/#", "sensor").unwrap();
        let d1 = p.admin.issue_grant("plant/#", "dash").unwrap();
        assert!(g1.topic.starts_with("site/keys/"));
        let e = grant_event(sensor_rx.receive(on(&g1.topic, &g1.payload)));
        assert!(
            matches!(&e, GrantEvent::Accepted { grant, retained: true, .. } if grant.update.epoch == 1)
        );
        let e = grant_event(dash_rx.receive(on(&d1.topic, &d1.payload)));
        assert!(e.accepted().is_some(), "{e:?}");
        let m1 = shared
            .lock()
            .unwrap()
            .seal("plant/7/t", b"one", false)
            .unwrap();
        let got = dash_rx.receive(Incoming {
            retain: false,
            ..on("plant/7/t", &m1)
        });
        assert_eq!(got.unwrap().epoch, 1);

        // Rotation: both switch without a manual reload; the old epoch is still opened.
        let rotation = p.admin.rotate("plant/#", &[], unix_now()).unwrap();
        let late = shared
            .lock()
            .unwrap()
            .seal("plant/7/t", b"late", false)
            .unwrap();
        for g in &rotation.grants {
            let rx = if g.recipient == p.sensor.fingerprint() {
                &mut sensor_rx
            } else {
                &mut dash_rx
            };
            let e = grant_event(rx.receive(on(&g.topic, &g.payload)));
            let a = e.accepted().unwrap();
            assert_eq!((a.update.epoch, a.update.retired.len()), (2, 1));
        }
        let m2 = shared
            .lock()
            .unwrap()
            .seal("plant/7/t", b"two", false)
            .unwrap();
        assert_eq!(mqseal::inspect(&m2).unwrap().epoch, 2);
        let live = |m| Incoming {
            retain: false,
            ..on("plant/7/t", m)
        };
        assert_eq!(dash_rx.receive(live(&m2)).unwrap().epoch, 2);
        assert_eq!(dash_rx.receive(live(&late)).unwrap().epoch, 1);

        // Refusals: garbage, a grant for someone else, a wrong slot; empty clears. Counted,
        // never delivered, and the receiver goes on.
        let slot = format!("site/keys/{}/0011223344556677", p.dash.fingerprint());
        let sensor_grant = &rotation
            .grants
            .iter()
            .find(|g| g.recipient == p.sensor.fingerprint())
            .unwrap()
            .payload;
        let dash_grant = &rotation
            .grants
            .iter()
            .find(|g| g.recipient == p.dash.fingerprint())
            .unwrap()
            .payload;
        for (topic, payload, name) in [
            (
                slot.as_str(),
                &b"garbage"[..],
                &["malformed", "unsupported_version"][..],
            ),
            (
                slot.as_str(),
                sensor_grant.as_slice(),
                &["grant_not_for_us"],
            ),
            (
                slot.as_str(),
                dash_grant.as_slice(),
                &["grant_topic_mismatch"],
            ),
        ] {
            match grant_event(dash_rx.receive(on(topic, payload))) {
                GrantEvent::Refused(r) => {
                    assert!(name.contains(&r.error.name()), "{r:?}");
                    assert_eq!(r.len, payload.len());
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(
            grant_event(dash_rx.receive(on(&slot, b""))),
            GrantEvent::Cleared { .. }
        ));
        assert_eq!(dash_rx.stats.grants_accepted(), 2);
        assert_eq!(dash_rx.stats.grants_refused(), 3);
        assert_eq!(dash_rx.stats.delivered(), 3);
        assert_eq!(dash_rx.stats.rejected_total(), 0);
        // Topics below the slot level, or other recipients', are not grant topics.
        let deeper = format!("site/keys/{}/a/b", p.dash.fingerprint());
        assert!(matches!(
            dash_rx.receive(on(&deeper, b"x")),
            Outcome::Rejected(_)
        ));
    }

    #[test]
    fn in_memory_backends_reload_live_and_retired_keys() {
        let p = parties("mqseal/grants");
        let id = p.sensor.identity().clone();
        let mut sealer = Sealer::new(id.clone(), Profile::Signed, 0);
        let mut opener = mqseal::Opener::new();
        opener.trust_sender(id.public());
        let g = p.admin.issue_grant("plant/7/#", "sensor").unwrap();
        p.sensor
            .accept_grant_message(&g.topic, &g.payload, unix_now())
            .unwrap();
        sealer.reload_keys(&p.sensor).unwrap();
        opener.reload_keys(&p.sensor).unwrap();
        let m1 = sealer.seal("plant/7/a", b"1", false).unwrap();
        let r = p.admin.rotate("plant/#", &[], unix_now()).unwrap();
        p.sensor
            .accept_grant_message(&r.grants[0].topic, &r.grants[0].payload, unix_now())
            .unwrap();
        sealer.reload_keys(&p.sensor).unwrap();
        opener.reload_keys(&p.sensor).unwrap();
        let m2 = sealer.seal("plant/7/a", b"2", false).unwrap();
        assert_eq!(mqseal::inspect(&m2).unwrap().epoch, 2);
        assert_eq!(opener.open("plant/7/a", &m1).unwrap().epoch, 1);
        assert_eq!(opener.open("plant/7/a", &m2).unwrap().epoch, 2);
        assert!(opener.key_retirement("plant/7/#", 1).is_some());
        // After removal (pruning), the old epoch is gone from the opener.
        let old_key = p
            .sensor
            .held_keys()
            .unwrap()
            .into_iter()
            .find(|k| k.epoch() == 1)
            .unwrap()
            .key;
        p.sensor.remove_key("plant/7/#", 1).unwrap();
        opener.reload_keys(&p.sensor).unwrap();
        sealer.reload_keys(&p.sensor).unwrap();
        let mut old = Sealer::new(id, Profile::Signed, 0);
        old.add_key(old_key);
        old.set_sequence(100, u64::MAX);
        let m3 = old.seal("plant/7/a", b"3", false).unwrap();
        assert_eq!(
            opener.open("plant/7/a", &m3).unwrap_err(),
            mqseal::Error::KeyNotFound
        );
        assert!(opener.key_retirement("plant/7/#", 1).is_none());
    }

    #[test]
    fn grants_the_store_could_not_record_are_not_acknowledged() {
        let refused = |error: StoreError| {
            Outcome::Grant(GrantEvent::Refused(RefusedGrant {
                topic: "mqseal/grants/x/y".into(),
                error,
                len: 3,
                retained: false,
            }))
        };
        let io = StoreError::Io {
            path: "keys".into(),
            action: "write",
            source: std::io::Error::other("disk full"),
        };
        let locked = StoreError::Locked {
            path: "state/open.lock".into(),
        };
        for transient in [io, locked] {
            let outcome = refused(transient);
            assert!(!outcome.ackable(), "{outcome:?}");
        }
        // A refusal for good (a forged or foreign grant) is acknowledged: it would only be
        // refused again.
        let outcome = refused(StoreError::Core(mqseal::Error::BadSignature));
        assert!(outcome.ackable());
        let outcome = Outcome::Grant(GrantEvent::Cleared {
            topic: "mqseal/grants/x/y".into(),
        });
        assert!(outcome.ackable());
    }
}
