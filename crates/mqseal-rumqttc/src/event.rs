//! What the wrapped event loops hand the application: opened messages, rejections, and the
//! remaining MQTT events.

use std::fmt;

use mqseal::{Fingerprint, Profile, PublicIdentity, SenderId};
use rumqttc::QoS;

/// One event of a wrapped event loop. `M` is rumqttc's own event type (v3.1.1 or v5); incoming
/// PUBLISH packets never appear as `Mqtt`: they are opened and become `Message` or `Rejected`.
#[non_exhaustive]
#[derive(Debug)]
// Messages are the common case: boxing them would cost an allocation per message.
#[allow(clippy::large_enum_variant)]
pub enum Event<M> {
    /// A sealed message that opened: verified, decrypted, not a replay.
    Message(Message),
    /// An incoming PUBLISH that did not open (its payload is never handed out as data).
    Rejected(Rejected),
    /// An incoming PUBLISH that opened but could not be recorded durably by a persistent opener:
    /// not delivered and not acknowledged.
    StorageFailed(StorageFailure),
    /// A message on this identity's grant topic, handed to the keystore (feature `store`, after
    /// [`SealedClient::follow_grants`](crate::SealedClient::follow_grants)): accepted (the
    /// sealer and opener now use the new key), cleared, or refused. Never application data.
    #[cfg(feature = "store")]
    Grant(crate::grants::GrantEvent),
    /// Any other MQTT event (ConnAck, SubAck, acks of our publishes, pings, outgoing packets).
    Mqtt(M),
}

/// A message that opened.
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    /// The topic it was published to (and sealed for).
    pub topic: String,
    /// The plaintext.
    pub payload: Vec<u8>,
    /// Its sender, authenticated by an Ed25519 signature in the `signed` profile.
    pub sender: PublicIdentity,
    /// The sender's sequence number.
    pub seq: u64,
    /// The key epoch it was sealed under.
    pub epoch: u32,
    /// The authentication profile.
    pub profile: Profile,
    /// Delivered from the broker's retained store (and published retained, which was checked).
    pub retained: bool,
    /// The QoS the broker delivered it with.
    pub qos: QoS,
    /// The sender's timestamp, if it sealed one.
    pub timestamp: Option<u64>,
}

impl Message {
    /// The sender's fingerprint.
    pub fn sender_fingerprint(&self) -> Fingerprint {
        self.sender.fingerprint()
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("topic", &self.topic)
            .field("payload_len", &self.payload.len())
            .field("sender", &self.sender.fingerprint().sender_id())
            .field("seq", &self.seq)
            .field("epoch", &self.epoch)
            .field("retained", &self.retained)
            .field("qos", &self.qos)
            .finish_non_exhaustive()
    }
}

/// An incoming PUBLISH that was refused, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// The topic it arrived on (lossily decoded if not UTF-8).
    pub topic: String,
    /// Why it was refused. [`mqseal::Error::Duplicate`] is the expected QoS 1/2 redelivery of a
    /// message already delivered (MQTT DUP flag), not an attack.
    pub error: mqseal::Error,
    /// The sender id its header claims, if the header parsed (unauthenticated).
    pub claimed_sender: Option<SenderId>,
    /// The sequence number its header claims, if the header parsed (unauthenticated).
    pub claimed_seq: Option<u64>,
    /// Length of the payload as received.
    pub len: usize,
    /// The QoS the broker delivered it with.
    pub qos: QoS,
    /// The broker's retain flag.
    pub retained: bool,
    /// The broker's DUP flag.
    pub duplicate: bool,
}

/// A message a persistent opener could not record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageFailure {
    /// The topic it arrived on.
    pub topic: String,
    /// The storage error.
    pub reason: String,
}

/// Counts of delivered and rejected messages, rejections by reason (core error code).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    delivered: u64,
    rejected: [u64; 32],
    storage_failures: u64,
    grants_accepted: u64,
    grants_refused: u64,
}

impl Stats {
    /// Messages that opened and were handed to the application.
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// Messages rejected for `reason`.
    pub fn rejected(&self, reason: mqseal::Error) -> u64 {
        self.rejected
            .get(reason.code() as usize)
            .copied()
            .unwrap_or(0)
    }

    /// Messages a persistent opener could not record (neither delivered nor acknowledged).
    pub fn storage_failures(&self) -> u64 {
        self.storage_failures
    }

    /// Grants the keystore accepted on the followed grant topic (feature `store`), including
    /// ones already held and ones after which reloading the keys failed.
    pub fn grants_accepted(&self) -> u64 {
        self.grants_accepted
    }

    /// Messages on the followed grant topic that the keystore refused (feature `store`). They
    /// are not counted as rejected messages.
    pub fn grants_refused(&self) -> u64 {
        self.grants_refused
    }

    /// All rejected messages.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.iter().sum()
    }

    /// Every reason with a non-zero count, in code order.
    pub fn rejections(&self) -> Vec<(mqseal::Error, u64)> {
        mqseal::Error::ALL
            .iter()
            .map(|e| (*e, self.rejected(*e)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    pub(crate) fn count_delivered(&mut self) {
        self.delivered += 1;
    }

    pub(crate) fn count_storage_failure(&mut self) {
        self.storage_failures += 1;
    }

    #[cfg(feature = "store")]
    pub(crate) fn count_grant(&mut self, event: &crate::grants::GrantEvent) {
        use crate::grants::GrantEvent;
        match event {
            GrantEvent::Accepted { .. } | GrantEvent::ReloadFailed { .. } => {
                self.grants_accepted += 1;
            }
            GrantEvent::Refused(_) => self.grants_refused += 1,
            _ => {}
        }
    }

    pub(crate) fn count_rejected(&mut self, reason: mqseal::Error) {
        if let Some(n) = self.rejected.get_mut(reason.code() as usize) {
            *n += 1;
        }
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} delivered, {} rejected",
            self.delivered,
            self.rejected_total()
        )?;
        let reasons = self.rejections();
        if !reasons.is_empty() {
            f.write_str(" (")?;
            for (i, (e, n)) in reasons.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{}: {n}", e.name())?;
            }
            f.write_str(")")?;
        }
        if self.grants_accepted + self.grants_refused > 0 {
            write!(
                f,
                "; grants: {} accepted, {} refused",
                self.grants_accepted, self.grants_refused
            )?;
        }
        Ok(())
    }
}
