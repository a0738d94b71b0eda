//! The opener's caches of derived keys (issue 12): only authenticated topics are cached, a new
//! topic under a cached prefix opens, and both caches stay within their limits.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use mqseal::{
    Error, Identity, KeyCacheLimits, OpenPolicy, Opener, Profile, SealOptions, Sealer, TreeKey,
};

const T: u64 = 1_800_000_000;

fn setup(filter: &str) -> (Sealer, Opener) {
    let sender = Identity::from_seed([1; 32]);
    let key = TreeKey::from_secret(filter, 1, [2; 32]).unwrap();
    let mut sealer = Sealer::new(sender.clone(), Profile::Signed, 0);
    sealer.add_key(key.clone());
    let mut opener = Opener::with_policy(OpenPolicy::default());
    opener.trust_sender(sender.public());
    opener.add_key(key);
    (sealer, opener)
}

fn seal(sealer: &mut Sealer, topic: &str) -> Vec<u8> {
    sealer
        .seal_with(topic, b"x", &SealOptions::at(false, T))
        .unwrap()
}

#[test]
fn refusals_grow_neither_cache() {
    let (mut sealer, mut opener) = setup("#");
    let real = seal(&mut sealer, "plant/7/temp");
    assert_eq!(opener.cached_key_counts(), (0, 0));
    // Key-less junk: a trusted sender id, a made-up key id, on new and deep topics.
    let deep = vec!["level"; 32].join("/");
    for i in 0..500u32 {
        let mut junk = real.clone();
        junk[6..10].copy_from_slice(&i.to_be_bytes());
        for topic in [
            format!("plant/{i}/temp"),
            "plant/7/temp".to_string(),
            deep.clone(),
        ] {
            assert_eq!(opener.open(&topic, &junk).unwrap_err(), Error::KeyNotFound);
        }
    }
    // A trusted sender's message with a broken signature: the key id matches, so the topic
    // key is derived, but nothing is kept.
    let mut forged = seal(&mut sealer, "plant/8/temp");
    let last = forged.len() - 1;
    forged[last - 70] ^= 1; // in the ciphertext/tag: the signature no longer covers it
    assert_eq!(
        opener.open("plant/8/temp", &forged).unwrap_err(),
        Error::BadSignature
    );
    assert_eq!(opener.cached_key_counts(), (0, 0));
    // A group-mac message whose tag fails, from a sender trusted for group-mac.
    let meter = Identity::from_seed([3; 32]);
    opener.trust_group_mac_sender(meter.public(), "#").unwrap();
    let mut gm = Sealer::new(meter, Profile::GroupMac, 0);
    gm.add_key(TreeKey::from_secret("#", 1, [2; 32]).unwrap());
    let mut bad = seal(&mut gm, "meter/1/kwh");
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert_eq!(
        opener.open("meter/1/kwh", &bad).unwrap_err(),
        Error::AuthenticationFailed
    );
    assert_eq!(opener.cached_key_counts(), (0, 0));
    // The real message is cached: its topic key and its prefixes' node keys (plant, plant/7).
    assert!(opener.open("plant/7/temp", &real).is_ok());
    assert_eq!(opener.cached_key_counts(), (1, 2));
}

#[test]
fn new_topics_under_cached_prefixes_open() {
    let (mut sealer, mut opener) = setup("plant/#");
    for topic in [
        "plant/7/temp",
        "plant/7/humidity",
        "plant/7",
        "plant/7/temp/raw",
        "plant/8/temp",
        "plant",
        "plant//x",
    ] {
        let m = seal(&mut sealer, topic);
        assert!(opener.open(topic, &m).is_ok(), "{topic}");
        // Moved to another topic under the same cached prefix: still refused.
        assert_eq!(
            opener.open("plant/7/other", &m).unwrap_err(),
            Error::KeyNotFound
        );
    }
    // Prefixes below plant/#: plant/7, plant/7/temp, plant/8, plant/ (an empty level).
    assert_eq!(opener.cached_key_counts(), (7, 4));
}

#[test]
fn both_caches_hold_their_limits_under_ten_times_as_many_topics() {
    let (mut sealer, mut opener) = setup("#");
    let limits = KeyCacheLimits {
        topic_keys: 16,
        node_keys: 24,
    };
    opener.set_key_cache_limits(limits);
    assert_eq!(opener.key_cache_limits(), limits);
    let topics: Vec<String> = (0..160)
        .map(|i| format!("site/{}/line/{}/temp", i % 4, i))
        .collect();
    let mut max = (0, 0);
    for round in 0..2 {
        for topic in &topics {
            let m = seal(&mut sealer, topic);
            assert!(opener.open(topic, &m).is_ok(), "{round} {topic}");
            let (t, n) = opener.cached_key_counts();
            assert!(t <= 16 && n <= 24, "{t} {n}");
            max = (max.0.max(t), max.1.max(n));
        }
    }
    assert_eq!(max, (16, 24));
    // Lowering the limits evicts at once; 0 turns the caches off and messages still open.
    opener.set_key_cache_limits(KeyCacheLimits {
        topic_keys: 0,
        node_keys: 0,
    });
    assert_eq!(opener.cached_key_counts(), (0, 0));
    let m = seal(&mut sealer, "site/0/line/0/temp");
    assert!(opener.open("site/0/line/0/temp", &m).is_ok());
    assert_eq!(opener.cached_key_counts(), (0, 0));
    assert_eq!(KeyCacheLimits::default(), KeyCacheLimits::DEFAULT);
}

#[test]
fn changing_the_keys_clears_the_caches() {
    let (mut sealer, mut opener) = setup("a/#");
    let m = seal(&mut sealer, "a/b/c");
    assert!(opener.open("a/b/c", &m).is_ok());
    assert_eq!(opener.cached_key_counts(), (1, 1));
    opener.add_key(TreeKey::from_secret("z/#", 1, [5; 32]).unwrap());
    assert_eq!(opener.cached_key_counts(), (0, 0));
    let m = seal(&mut sealer, "a/b/d");
    assert!(opener.open("a/b/d", &m).is_ok());
    assert!(opener.remove_key("z/#", 1));
    assert_eq!(opener.cached_key_counts(), (0, 0));
}
