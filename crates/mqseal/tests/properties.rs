//! Property tests: round trips for any topic/payload/flags, and any single mutation of a sealed
//! message (bit flip, truncation, extension, byte insertion) is rejected without panicking.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use mqseal::{Delivery, Error, Identity, Opener, Profile, SealOptions, Sealer, TreeKey};
use proptest::prelude::*;

fn parties(profile: Profile) -> (Sealer, Opener) {
    let sender = Identity::from_seed([3; 32]);
    let root = TreeKey::from_secret("site/#", 4, [8; 32]).unwrap();
    let mut sealer = Sealer::new(sender.clone(), profile, 0);
    sealer.add_key(root.clone());
    let mut opener = Opener::new();
    opener
        .trust_group_mac_sender(sender.public(), "site/#")
        .unwrap();
    opener.trust_sender(Identity::from_seed([4; 32]).public());
    opener.add_key(root);
    (sealer, opener)
}

fn topic() -> impl Strategy<Value = String> {
    proptest::collection::vec("[a-z0-9 $/]{0,6}", 0..4)
        .prop_map(|levels| format!("site/{}", levels.join("/")))
        .prop_filter("valid topic", |t| mqseal::validate_topic(t).is_ok())
}

fn profile() -> impl Strategy<Value = Profile> {
    prop_oneof![Just(Profile::Signed), Just(Profile::GroupMac)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, .. ProptestConfig::default() })]

    #[test]
    fn round_trip(
        profile in profile(),
        topic in topic(),
        payload in proptest::collection::vec(any::<u8>(), 0..600),
        seq in any::<u64>().prop_filter("not max", |s| *s < u64::MAX),
        retain in any::<bool>(),
        timestamp in proptest::option::of(any::<u64>()),
    ) {
        let (mut sealer, mut opener) = parties(profile);
        sealer.set_sequence(seq, u64::MAX);
        let options = SealOptions { retain, timestamp };
        let sealed = sealer.seal_with(&topic, &payload, &options).unwrap();
        let header = mqseal::inspect(&sealed).unwrap();
        prop_assert_eq!(header.seq, seq);
        prop_assert_eq!(header.retain, retain);
        prop_assert_eq!(header.timestamp, timestamp);
        prop_assert_eq!(sealer.next_seq(), seq + 1);
        let delivery = Delivery { retained: retain, ..Delivery::default() };
        let opened = opener.open_delivered(&topic, &sealed, &delivery).unwrap();
        prop_assert_eq!(opened.payload, payload);
        prop_assert_eq!(opened.seq, seq);
        prop_assert_eq!(opened.profile, profile);
        prop_assert_eq!(opener.open_delivered(&topic, &sealed, &delivery).unwrap_err(), Error::Replay);
    }

    #[test]
    fn any_bit_flip_is_rejected(
        profile in profile(),
        payload in proptest::collection::vec(any::<u8>(), 0..64),
        position in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let (mut sealer, mut opener) = parties(profile);
        let sealed = sealer.seal("site/a", &payload, false).unwrap();
        let mut bad = sealed.clone();
        let i = position.index(bad.len());
        bad[i] ^= 1 << bit;
        prop_assert!(opener.open("site/a", &bad).is_err());
        // The genuine message still opens afterwards: a rejected forgery leaves no state behind.
        prop_assert_eq!(opener.open("site/a", &sealed).unwrap().payload, payload);
    }

    #[test]
    fn any_truncation_extension_or_insertion_is_rejected(
        profile in profile(),
        payload in proptest::collection::vec(any::<u8>(), 0..64),
        cut in any::<prop::sample::Index>(),
        extra in proptest::collection::vec(any::<u8>(), 1..8),
        at in any::<prop::sample::Index>(),
    ) {
        let (mut sealer, mut opener) = parties(profile);
        let sealed = sealer.seal("site/a", &payload, false).unwrap();
        let truncated = &sealed[..cut.index(sealed.len())];
        prop_assert!(opener.open("site/a", truncated).is_err());
        let mut extended = sealed.clone();
        extended.extend_from_slice(&extra);
        prop_assert!(opener.open("site/a", &extended).is_err());
        let mut inserted = sealed.clone();
        let pos = at.index(inserted.len() + 1);
        inserted.splice(pos..pos, extra.iter().copied());
        prop_assert!(opener.open("site/a", &inserted).is_err());
        prop_assert!(opener.open("site/a", &sealed).is_ok());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let (_, mut opener) = parties(Profile::Signed);
        prop_assert!(opener.open("site/a", &bytes).is_err());
        let _ = mqseal::inspect(&bytes);
        let _ = mqseal::Grant::from_bytes(&bytes);
    }

    #[test]
    fn header_swaps_between_messages_are_rejected(
        profile in profile(),
        a in proptest::collection::vec(any::<u8>(), 1..32),
        b in proptest::collection::vec(any::<u8>(), 1..32),
    ) {
        let (mut sealer, mut opener) = parties(profile);
        let m1 = sealer.seal("site/a", &a, false).unwrap();
        let m2 = sealer.seal("site/a", &b, false).unwrap();
        let h1 = mqseal::inspect(&m1).unwrap().encoded_len();
        let h2 = mqseal::inspect(&m2).unwrap().encoded_len();
        let mut swapped = m1[..h1].to_vec();
        swapped.extend_from_slice(&m2[h2..]);
        prop_assert!(opener.open("site/a", &swapped).is_err());
    }
}

#[test]
fn wildcard_holder_and_exact_holder_derive_the_same_topic_key() {
    let root = TreeKey::from_secret("plant/#", 1, [5; 32]).unwrap();
    let wildcard = root.derive("plant/7/#").unwrap();
    let exact = root.derive("plant/7/temp").unwrap();
    assert!(
        wildcard
            .topic_key("plant/7/temp")
            .unwrap()
            .ct_eq(&exact.topic_key("plant/7/temp").unwrap())
    );
    // And a message sealed with the exact key opens with the wildcard key.
    let sender = Identity::from_seed([6; 32]);
    let mut sealer = Sealer::new(sender.clone(), Profile::Signed, 0);
    sealer.add_key(exact);
    let sealed = sealer.seal("plant/7/temp", b"x", false).unwrap();
    let mut opener = Opener::new();
    opener.trust_sender(sender.public());
    opener.add_key(wildcard);
    assert_eq!(opener.open("plant/7/temp", &sealed).unwrap().payload, b"x");
}

#[test]
fn a_key_for_a_b_subtree_cannot_derive_a_c() {
    let root = TreeKey::from_secret("a/#", 1, [5; 32]).unwrap();
    let ab = root.derive("a/b/#").unwrap();
    assert_eq!(ab.topic_key("a/c").unwrap_err(), Error::KeyNotFound);
    assert_eq!(ab.derive("a/c/#").unwrap_err(), Error::KeyNotFound);
    assert_eq!(ab.derive("a/#").unwrap_err(), Error::KeyNotFound);
    // A receiver holding only a/b/# cannot open a/c.
    let sender = Identity::from_seed([6; 32]);
    let mut sealer = Sealer::new(sender.clone(), Profile::Signed, 0);
    sealer.add_key(root);
    let sealed = sealer.seal("a/c", b"secret", false).unwrap();
    let mut opener = Opener::new();
    opener.trust_sender(sender.public());
    opener.add_key(ab);
    assert_eq!(opener.open("a/c", &sealed).unwrap_err(), Error::KeyNotFound);
}

#[test]
fn sequence_numbers_are_never_reused_and_limits_hold() {
    let sender = Identity::from_seed([6; 32]);
    let mut sealer = Sealer::new(sender, Profile::Signed, 0);
    sealer.add_key(TreeKey::from_secret("#", 1, [1; 32]).unwrap());
    sealer.set_sequence(10, 12);
    assert_eq!(
        mqseal::inspect(&sealer.seal("t", b"", false).unwrap())
            .unwrap()
            .seq,
        10
    );
    assert_eq!(
        mqseal::inspect(&sealer.seal("u", b"", false).unwrap())
            .unwrap()
            .seq,
        11
    );
    assert_eq!(
        sealer.seal("t", b"", false).unwrap_err(),
        Error::SequenceExhausted
    );
    sealer.set_sequence(u64::MAX - 1, u64::MAX);
    assert!(sealer.seal("t", b"", false).is_ok());
    assert_eq!(
        sealer.seal("t", b"", false).unwrap_err(),
        Error::SequenceExhausted
    );
    // Failing before a key is found does not consume a number; afterwards nothing is reused.
    let mut fresh = Sealer::new(Identity::from_seed([7; 32]), Profile::Signed, 0);
    assert_eq!(fresh.seal("t", b"", false).unwrap_err(), Error::KeyNotFound);
    assert_eq!(fresh.next_seq(), 0);
    assert_eq!(
        fresh.seal("a/+", b"", false).unwrap_err(),
        Error::InvalidTopic
    );
}

#[test]
fn seal_into_reports_small_buffers_and_opens_into_caller_buffers() {
    let sender = Identity::from_seed([6; 32]);
    let key = TreeKey::from_secret("#", 1, [1; 32]).unwrap();
    let mut sealer = Sealer::new(sender.clone(), Profile::GroupMac, 0);
    sealer.add_key(key.clone());
    let options = SealOptions::default();
    let need = sealer.sealed_len("t", 5, &options).unwrap();
    let mut small = vec![0u8; need - 1];
    assert_eq!(
        sealer
            .seal_into("t", b"hello", &options, &mut small)
            .unwrap_err(),
        Error::BufferTooSmall
    );
    let mut buf = vec![0u8; need];
    let n = sealer.seal_into("t", b"hello", &options, &mut buf).unwrap();
    assert_eq!(n, need);
    let mut opener = Opener::new();
    opener.trust_group_mac_sender(sender.public(), "#").unwrap();
    opener.add_key(key);
    let mut out = [0u8; 4];
    assert_eq!(
        opener
            .open_into("t", &buf, &Delivery::default(), &mut out)
            .unwrap_err(),
        Error::BufferTooSmall
    );
    let mut out = [0u8; 5];
    let info = opener
        .open_into("t", &buf, &Delivery::default(), &mut out)
        .unwrap();
    assert_eq!(&out[..info.payload_len], b"hello");
}
