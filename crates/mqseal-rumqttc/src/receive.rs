//! Opening incoming PUBLISH payloads (shared by the v3.1.1, v5, async and sync loops).

use mqseal::Delivery;
use rumqttc::QoS;

use crate::backend::{OpenBackend, OpenFailure};
use crate::event::{Message, Rejected, Stats, StorageFailure};

/// An incoming PUBLISH as the transport delivered it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Incoming<'a> {
    pub topic: &'a [u8],
    pub payload: &'a [u8],
    pub qos: QoS,
    pub retain: bool,
    pub dup: bool,
}

/// What became of a delivery.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub(crate) enum Outcome {
    /// Opened: deliver, then acknowledge.
    Delivered(Message),
    /// Refused for good: acknowledge, never deliver.
    Rejected(Rejected),
    /// Not recorded durably: neither deliver nor acknowledge.
    NotStored(StorageFailure),
    /// A message on the followed grant topic, handed to the store: never delivered as data;
    /// acknowledged unless the store failed for a passing reason (I/O, lock), so the broker
    /// delivers it again (a refused grant would be refused again).
    #[cfg(feature = "store")]
    Grant(crate::grants::GrantEvent),
}

impl Outcome {
    /// Whether the broker may be told the message was handled.
    pub fn ackable(&self) -> bool {
        match self {
            Outcome::NotStored(_) => false,
            #[cfg(feature = "store")]
            Outcome::Grant(g) => !g.is_transient_failure(),
            _ => true,
        }
    }

    /// The application-facing event.
    pub fn into_event<M>(self) -> crate::event::Event<M> {
        match self {
            Outcome::Delivered(m) => crate::event::Event::Message(m),
            Outcome::Rejected(r) => crate::event::Event::Rejected(r),
            Outcome::NotStored(f) => crate::event::Event::StorageFailed(f),
            #[cfg(feature = "store")]
            Outcome::Grant(g) => crate::event::Event::Grant(g),
        }
    }
}

/// The opener and the counters of one event loop (and, with the `store` feature, the follower
/// of its grant topic).
#[derive(Debug)]
pub(crate) struct Receiver<O> {
    pub opener: O,
    pub stats: Stats,
    /// The broker accepted the connection (CONNACK seen, no connection error since).
    connected: bool,
    #[cfg(feature = "store")]
    grants: Option<crate::grants::GrantFollower<O>>,
}

impl<O> Receiver<O> {
    /// A CONNACK arrived: without a kept session, subscriptions are to be made again.
    pub fn on_connack(&mut self, session_present: bool) {
        self.connected = true;
        #[cfg(feature = "store")]
        if let Some(f) = self.grants.as_mut()
            && !session_present
        {
            f.set_subscribed(false);
        }
        #[cfg(not(feature = "store"))]
        let _ = session_present;
    }

    /// The connection failed (the next poll reconnects).
    pub fn on_connection_error(&mut self) {
        self.connected = false;
    }

    /// The grant filter to subscribe to now, if one is followed and not subscribed in this
    /// session (only once connected: a SUBSCRIBE queued earlier would be sent twice).
    #[cfg(feature = "store")]
    pub fn grant_subscription_due(&self) -> Option<&str> {
        if !self.connected {
            return None;
        }
        self.grants.as_ref().and_then(|f| f.due())
    }

    /// The SUBSCRIBE of [`grant_subscription_due`](Self::grant_subscription_due) was queued.
    #[cfg(feature = "store")]
    pub fn grant_subscribed(&mut self) {
        if let Some(f) = self.grants.as_mut() {
            f.set_subscribed(true);
        }
    }

    /// Queues the SUBSCRIBE to the followed grant filter if one is due in this session (see
    /// [`grant_subscription_due`](Self::grant_subscription_due)): `try_subscribe(filter)` queues
    /// a QoS 1 SUBSCRIBE without waiting and says whether it was queued; if not (request
    /// channel full), the next poll tries again. Every loop calls it before it polls.
    pub fn subscribe_grants(&mut self, try_subscribe: impl FnOnce(&str) -> bool) {
        #[cfg(feature = "store")]
        if let Some(filter) = self.grant_subscription_due()
            && try_subscribe(filter)
        {
            self.grant_subscribed();
        }
        #[cfg(not(feature = "store"))]
        let _ = try_subscribe;
    }

    /// Follows a grant topic from now on (replacing an earlier follower).
    #[cfg(feature = "store")]
    pub fn follow_grants(&mut self, follower: crate::grants::GrantFollower<O>) {
        self.grants = Some(follower);
    }
}

impl<O: OpenBackend> Receiver<O> {
    pub fn new(opener: O) -> Receiver<O> {
        Receiver {
            opener,
            stats: Stats::default(),
            connected: false,
            #[cfg(feature = "store")]
            grants: None,
        }
    }

    /// Opens one delivery, or hands it to the store if it arrived on the followed grant topic;
    /// never panics, whatever the bytes.
    pub fn receive(&mut self, incoming: Incoming<'_>) -> Outcome {
        #[cfg(feature = "store")]
        if let Some(follower) = self.grants.as_mut()
            && let Some(topic) = follower.claims(incoming.topic)
        {
            let event = follower.handle(&mut self.opener, topic, incoming.payload, incoming.retain);
            self.stats.count_grant(&event);
            return Outcome::Grant(event);
        }
        let delivery = Delivery {
            retained: incoming.retain,
            duplicate: incoming.dup,
            now: None,
        };
        let opened = match std::str::from_utf8(incoming.topic) {
            Ok(topic) => self
                .opener
                .open(topic, incoming.payload, &delivery)
                .map(|o| (topic, o)),
            Err(_) => Err(OpenFailure::Refused(mqseal::Error::InvalidTopic)),
        };
        match opened {
            Ok((topic, opened)) => {
                self.stats.count_delivered();
                Outcome::Delivered(Message {
                    topic: topic.to_string(),
                    payload: opened.payload,
                    sender: opened.sender,
                    seq: opened.seq,
                    epoch: opened.epoch,
                    profile: opened.profile,
                    retained: incoming.retain,
                    qos: incoming.qos,
                    timestamp: opened.timestamp,
                })
            }
            Err(OpenFailure::Storage(reason)) => {
                self.stats.count_storage_failure();
                Outcome::NotStored(StorageFailure {
                    topic: String::from_utf8_lossy(incoming.topic).into_owned(),
                    reason,
                })
            }
            Err(OpenFailure::Refused(error)) => {
                self.stats.count_rejected(error);
                let header = mqseal::inspect(incoming.payload).ok();
                Outcome::Rejected(Rejected {
                    topic: String::from_utf8_lossy(incoming.topic).into_owned(),
                    error,
                    claimed_sender: header.map(|h| h.sender),
                    claimed_seq: header.map(|h| h.seq),
                    len: incoming.payload.len(),
                    qos: incoming.qos,
                    retained: incoming.retain,
                    duplicate: incoming.dup,
                })
            }
        }
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
    use mqseal::{Identity, Opener, Profile, Sealer, TreeKey};

    impl Outcome {
        pub(crate) fn unwrap(self) -> Message {
            match self {
                Outcome::Delivered(m) => m,
                other => panic!("not delivered: {other:?}"),
            }
        }
        pub(crate) fn unwrap_err(self) -> Rejected {
            match self {
                Outcome::Rejected(r) => r,
                other => panic!("not rejected: {other:?}"),
            }
        }
        fn is_err(&self) -> bool {
            !matches!(self, Outcome::Delivered(_))
        }
    }

    fn setup() -> (Sealer, Receiver<Opener>) {
        let id = Identity::from_seed([7; 32]);
        let key = TreeKey::from_secret("a/#", 1, [9; 32]).unwrap();
        let mut sealer = Sealer::new(id.clone(), Profile::Signed, 0);
        sealer.add_key(key.clone());
        let mut opener = Opener::new();
        opener.trust_sender(id.public());
        opener.add_key(key);
        (sealer, Receiver::new(opener))
    }

    fn live<'a>(topic: &'a str, payload: &'a [u8]) -> Incoming<'a> {
        Incoming {
            topic: topic.as_bytes(),
            payload,
            qos: QoS::AtLeastOnce,
            retain: false,
            dup: false,
        }
    }

    #[test]
    fn opens_then_rejects_replay_and_duplicate_and_counts() {
        let (mut sealer, mut rx) = setup();
        let sealed = sealer.seal("a/b", b"hello", false).unwrap();
        let msg = rx.receive(live("a/b", &sealed)).unwrap();
        assert_eq!(msg.payload, b"hello");
        assert_eq!(msg.seq, 0);
        let redelivery = Incoming {
            dup: true,
            ..live("a/b", &sealed)
        };
        assert_eq!(
            rx.receive(redelivery).unwrap_err().error,
            mqseal::Error::Duplicate
        );
        let rejected = rx.receive(live("a/b", &sealed)).unwrap_err();
        assert_eq!(rejected.error, mqseal::Error::Replay);
        assert_eq!(rejected.claimed_seq, Some(0));
        assert_eq!(rx.stats.delivered(), 1);
        assert_eq!(rx.stats.rejected(mqseal::Error::Duplicate), 1);
        assert_eq!(rx.stats.rejected(mqseal::Error::Replay), 1);
        assert_eq!(rx.stats.rejected_total(), 2);
        assert_eq!(
            rx.stats.to_string(),
            "1 delivered, 2 rejected (replay: 1, duplicate: 1)"
        );
    }

    #[test]
    fn garbage_non_utf8_and_moved_messages_are_typed_rejections() {
        let (mut sealer, mut rx) = setup();
        let sealed = sealer.seal("a/b", b"x", false).unwrap();
        let bad_topic = Incoming {
            topic: &[0xff, 0xfe],
            ..live("a/b", &sealed)
        };
        assert_eq!(
            rx.receive(bad_topic).unwrap_err().error,
            mqseal::Error::InvalidTopic
        );
        // Moved to another topic: the key id is per topic (spec 4.6).
        assert_eq!(
            rx.receive(live("a/c", &sealed)).unwrap_err().error,
            mqseal::Error::KeyNotFound
        );
        assert_eq!(
            rx.receive(live("a/b", b"")).unwrap_err().error,
            mqseal::Error::Malformed
        );
        assert!(matches!(
            rx.receive(live("a/b", b"plain text")).unwrap_err().error,
            mqseal::Error::Malformed | mqseal::Error::UnsupportedVersion
        ));
        let retained_flip = Incoming {
            retain: true,
            ..live("a/b", &sealed)
        };
        assert_eq!(
            rx.receive(retained_flip).unwrap_err().error,
            mqseal::Error::RetainMismatch
        );
        // Every prefix of a real message is refused without a panic.
        for n in 0..sealed.len() {
            assert!(rx.receive(live("a/b", &sealed[..n])).is_err());
        }
        // The untouched message still opens afterwards.
        assert_eq!(rx.receive(live("a/b", &sealed)).unwrap().payload, b"x");
    }
}
