//! Sealing outgoing payloads (shared by every client flavour): the seal backend behind a mutex
//! and the packet-size check.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use mqseal::SealOptions;

use crate::backend::SealBackend;
use crate::error::Error;

struct SealState<S> {
    backend: S,
    timestamps: bool,
}

/// Cheaply clonable handle on the seal backend plus the maximum packet size in force.
pub(crate) struct SharedSealer<S> {
    state: Arc<Mutex<SealState<S>>>,
    max_packet: Arc<AtomicUsize>,
}

impl<S> Clone for SharedSealer<S> {
    fn clone(&self) -> Self {
        SharedSealer {
            state: self.state.clone(),
            max_packet: self.max_packet.clone(),
        }
    }
}

impl<S: SealBackend> SharedSealer<S> {
    pub fn new(backend: S, max_packet: usize) -> SharedSealer<S> {
        SharedSealer {
            state: Arc::new(Mutex::new(SealState {
                backend,
                timestamps: false,
            })),
            max_packet: Arc::new(AtomicUsize::new(max_packet)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, SealState<S>> {
        // The counter moves before a number is used, so a lock poisoned by a panic elsewhere
        // cannot lead to reuse: take it over.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn with_backend<R>(&self, f: impl FnOnce(&mut S) -> R) -> R {
        f(&mut self.lock().backend)
    }

    pub fn set_timestamps(&self, on: bool) {
        self.lock().timestamps = on;
    }

    pub fn max_packet(&self) -> usize {
        self.max_packet.load(Ordering::Relaxed)
    }

    /// The shared maximum packet size (updated by a v5 event loop from the CONNACK).
    pub fn max_packet_handle(&self) -> Arc<AtomicUsize> {
        self.max_packet.clone()
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
        mqseal::validate_topic(topic)?;
        let Some(sealed_len) = state.backend.sealed_len(topic, payload.len(), &options) else {
            // No usable key: sealing says why (`key_not_found`, or `key_expired` for a key
            // outside its validity) and, refused, spends no sequence number.
            let refusal = state.backend.seal(topic, payload, &options).err();
            return Err(refusal.unwrap_or(Error::Seal(mqseal::Error::KeyNotFound)));
        };
        let size = packet_size(sealed_len);
        let max = self.max_packet();
        if size > max {
            return Err(Error::PacketTooLarge { size, max });
        }
        state.backend.seal(topic, payload, &options)
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
    use mqseal::{Identity, Profile, Sealer, TreeKey};

    fn sealer() -> Sealer {
        let mut s = Sealer::new(Identity::from_seed([1; 32]), Profile::Signed, 0);
        s.add_key(TreeKey::from_secret("#", 1, [2; 32]).unwrap());
        s
    }

    #[test]
    fn too_large_is_refused_before_a_number_is_spent() {
        let shared = SharedSealer::new(sealer(), 130);
        let err = shared
            .seal("t", &[0u8; 200], false, |n| publish_size_v4("t", true, n))
            .unwrap_err();
        assert!(matches!(err, Error::PacketTooLarge { max: 130, .. }));
        assert_eq!(shared.with_backend(|s| s.next_seq()), 0);
        assert!(matches!(
            shared.seal("a/+", b"", false, |n| n),
            Err(Error::Seal(mqseal::Error::InvalidTopic))
        ));
        let ok = shared.seal("t", b"x", false, |n| publish_size_v4("t", true, n));
        assert_eq!(mqseal::inspect(&ok.unwrap()).unwrap().seq, 0);
    }

    #[test]
    fn an_expired_key_is_reported_as_such_and_spends_no_number() {
        let mut s = Sealer::new(Identity::from_seed([1; 32]), Profile::Signed, 0);
        let expired = mqseal::Validity::new(0, Some(1)).unwrap();
        s.add_key(
            TreeKey::from_secret("old/#", 1, [3; 32])
                .unwrap()
                .with_validity(expired),
        );
        let shared = SharedSealer::new(s, usize::MAX);
        assert!(matches!(
            shared.seal("old/x", b"x", false, |n| n),
            Err(Error::Seal(mqseal::Error::KeyExpired))
        ));
        assert!(matches!(
            shared.seal("other", b"x", false, |n| n),
            Err(Error::Seal(mqseal::Error::KeyNotFound))
        ));
        assert_eq!(shared.with_backend(|s| s.next_seq()), 0);
    }

    #[test]
    fn exhausted_sequence_is_a_typed_error() {
        let shared = SharedSealer::new(sealer(), usize::MAX);
        shared.with_backend(|s| s.set_sequence(5, 6));
        assert!(shared.seal("t", b"x", false, |n| n).is_ok());
        assert!(matches!(
            shared.seal("t", b"x", false, |n| n),
            Err(Error::Seal(mqseal::Error::SequenceExhausted))
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
