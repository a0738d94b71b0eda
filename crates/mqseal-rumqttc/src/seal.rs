//! Sealing outgoing payloads (shared by every client flavour): the sealer behind a mutex, the
//! sequence-reservation hook and the packet-size check.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use mqseal::{SealOptions, Sealer};

use crate::error::Error;

/// Durable sequence-number reservation (RFC 8613 App. B.1.1 style), called by the client when the
/// sealer's reserved block is used up.
///
/// Implementations persist a new limit (write-temp + fsync + rename) *before* returning it, so a
/// crash can never lead to a sequence number being used twice. The keystore crate provides one;
/// without a hook the sealer runs up to its own limit (`u64::MAX` unless set).
pub trait SequenceReservation: Send {
    /// Durably reserves numbers starting at `next`; returns the new exclusive limit (> `next`).
    fn reserve(&mut self, next: u64) -> Result<u64, String>;
}

/// The sealer of a client and its optional reservation hook, shared by the client's clones.
pub(crate) struct SealState {
    sealer: Sealer,
    reservation: Option<Box<dyn SequenceReservation>>,
    timestamps: bool,
}

/// Cheaply clonable handle on the seal state plus the maximum packet size in force.
#[derive(Clone)]
pub(crate) struct SharedSealer {
    state: Arc<Mutex<SealState>>,
    max_packet: Arc<AtomicUsize>,
}

impl SharedSealer {
    pub fn new(sealer: Sealer, max_packet: usize) -> SharedSealer {
        SharedSealer {
            state: Arc::new(Mutex::new(SealState {
                sealer,
                reservation: None,
                timestamps: false,
            })),
            max_packet: Arc::new(AtomicUsize::new(max_packet)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, SealState> {
        // A panic while holding the lock cannot leave the sealer half-updated in a way that reuses
        // numbers (the counter moves before any use), so a poisoned lock is safe to take over.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn with_sealer<R>(&self, f: impl FnOnce(&mut Sealer) -> R) -> R {
        f(&mut self.lock().sealer)
    }

    pub fn set_reservation(&self, hook: Box<dyn SequenceReservation>) {
        self.lock().reservation = Some(hook);
    }

    pub fn set_timestamps(&self, on: bool) {
        self.lock().timestamps = on;
    }

    pub fn max_packet(&self) -> usize {
        self.max_packet.load(Ordering::Relaxed)
    }

    pub fn set_max_packet(&self, max: usize) {
        self.max_packet.store(max, Ordering::Relaxed);
    }

    /// Seals `payload` for `topic`; `packet_size(sealed_len)` is the size of the PUBLISH packet
    /// that would carry it, checked against the maximum packet size before a sequence number is
    /// spent.
    pub fn seal(
        &self,
        topic: &str,
        payload: &[u8],
        retain: bool,
        packet_size: impl Fn(usize) -> usize,
    ) -> Result<Vec<u8>, Error> {
        let mut state = self.lock();
        let mut options = SealOptions::retain(retain);
        if state.timestamps {
            options = options.with_now();
        }
        let sealed_len = state
            .sealer
            .sealed_len(topic, payload.len(), &options)
            .ok_or(Error::Seal(mqseal::Error::KeyNotFound))?;
        let size = packet_size(sealed_len);
        let max = self.max_packet();
        if size > max {
            return Err(Error::PacketTooLarge { size, max });
        }
        match state.sealer.seal_with(topic, payload, &options) {
            Err(mqseal::Error::SequenceExhausted) if state.reservation.is_some() => {
                let next = state.sealer.next_seq();
                let limit = match state.reservation.as_mut() {
                    Some(hook) => hook.reserve(next).map_err(Error::Sequence)?,
                    None => return Err(Error::Seal(mqseal::Error::SequenceExhausted)),
                };
                state.sealer.set_sequence(next, limit);
                Ok(state.sealer.seal_with(topic, payload, &options)?)
            }
            other => Ok(other?),
        }
    }
}

/// Bytes a remaining-length field of `len` takes.
fn len_len(len: usize) -> usize {
    match len {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// Size of an MQTT 3.1.1 PUBLISH packet (packet id counted for QoS > 0).
pub(crate) fn publish_size_v4(topic: &str, qos_above_0: bool, payload: usize) -> usize {
    let len = 2 + topic.len() + usize::from(qos_above_0) * 2 + payload;
    1 + len_len(len) + len
}

/// Size of an MQTT 5 PUBLISH packet with `properties` bytes of properties.
pub(crate) fn publish_size_v5(
    topic: &str,
    qos_above_0: bool,
    properties: usize,
    payload: usize,
) -> usize {
    let len = 2 + topic.len() + usize::from(qos_above_0) * 2 + len_len(properties) + properties;
    let len = len + payload;
    1 + len_len(len) + len
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use mqseal::{Identity, Profile, TreeKey};

    struct Blocks {
        step: u64,
        calls: Arc<Mutex<Vec<u64>>>,
    }

    impl SequenceReservation for Blocks {
        fn reserve(&mut self, next: u64) -> Result<u64, String> {
            self.calls.lock().unwrap().push(next);
            if next >= 6 {
                return Err("disk full".into());
            }
            Ok(next + self.step)
        }
    }

    fn sealer() -> Sealer {
        let mut s = Sealer::new(Identity::from_seed([1; 32]), Profile::Signed);
        s.add_key(TreeKey::from_secret("#", 1, [2; 32]).unwrap());
        s
    }

    #[test]
    fn reservation_hook_extends_blocks_and_its_failure_stops_sealing() {
        let shared = SharedSealer::new(sealer(), usize::MAX);
        shared.with_sealer(|s| s.set_sequence(0, 0));
        let calls = Arc::new(Mutex::new(Vec::new()));
        shared.set_reservation(Box::new(Blocks {
            step: 3,
            calls: calls.clone(),
        }));
        let mut seqs = Vec::new();
        for _ in 0..6 {
            let sealed = shared.seal("t", b"x", false, |n| n).unwrap();
            seqs.push(mqseal::inspect(&sealed).unwrap().seq);
        }
        assert_eq!(seqs, [0, 1, 2, 3, 4, 5]);
        assert!(matches!(
            shared.seal("t", b"x", false, |n| n),
            Err(Error::Sequence(_))
        ));
        assert_eq!(*calls.lock().unwrap(), [0, 3, 6]);
    }

    #[test]
    fn too_large_is_refused_before_a_number_is_spent() {
        let shared = SharedSealer::new(sealer(), 100);
        let err = shared
            .seal("t", &[0u8; 200], false, |n| publish_size_v4("t", true, n))
            .unwrap_err();
        assert!(matches!(err, Error::PacketTooLarge { max: 100, .. }));
        assert_eq!(shared.with_sealer(|s| s.next_seq()), 0);
        assert!(matches!(
            shared.seal("a/+", b"", false, |n| n),
            Err(Error::Seal(mqseal::Error::InvalidTopic))
        ));
    }

    #[test]
    fn packet_sizes_match_the_mqtt_encoding() {
        // 1 fixed header byte, 1 length byte, 2 + 1 topic, 2 pkid, 4 payload.
        assert_eq!(publish_size_v4("t", true, 4), 1 + 1 + 3 + 2 + 4);
        assert_eq!(publish_size_v4("t", false, 200), 1 + 2 + 3 + 200);
        // v5 adds the properties length (1 byte for none).
        assert_eq!(publish_size_v5("t", false, 0, 4), 1 + 1 + 3 + 1 + 4);
    }
}
