//! Protocol v2 defects of v1, reproduced and shown gone (spec `mqseal-v2.md` sections 4.6, 4.7,
//! 7.3, 7.4):
//!
//! - **Rollback of the sender's state**: a store re-created from a backed-up `identity.key`
//!   starts again at sequence number 0, and two sealers of one identity (a fork, a restored VM
//!   snapshot, one identity on two hosts) use the same numbers. In v1 that reused (key, nonce)
//!   pairs, so `c1 ⊕ c2 = p1 ⊕ p2` leaked to the broker; now every message has its own key.
//! - **Historic replays on a topic a receiver has no window for**: v1 accepted them; now the
//!   sender's high-water mark refuses them.
//! - **One message, two keys**: a sender holding two same-epoch keys of independent trees
//!   names one of them; the receiver never tries the other.
//! - **Retained rollback**: what a late subscriber can and cannot detect.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use mqseal::{
    Delivery, Error, Identity, OpenPolicy, Opener, Profile, SealOptions, Sealer, TreeKey,
};
use mqseal_store::{Roles, Store, StoreOptions};

const T: u64 = 1_800_000_000;

fn at(now: u64) -> Delivery {
    Delivery {
        now: Some(now),
        ..Delivery::default()
    }
}

/// The ciphertext bytes of a sealed message (between header and tag).
fn ciphertext(sealed: &[u8], payload_len: usize) -> Vec<u8> {
    let hl = mqseal::inspect(sealed).unwrap().encoded_len();
    sealed[hl..hl + payload_len].to_vec()
}

fn xor(a: &[u8], b: &[u8]) -> Vec<u8> {
    a.iter().zip(b).map(|(x, y)| x ^ y).collect()
}

#[test]
fn a_store_recreated_from_a_backed_up_identity_reuses_numbers_but_no_nonce() {
    let dir = tempfile::tempdir().unwrap();
    let identity = Identity::from_seed([0x51; 32]);
    let key = TreeKey::from_secret("plant/#", 1, [0x52; 32]).unwrap();
    let p1 = b"valve 7: open  ".to_vec();
    let p2 = b"valve 7: closed".to_vec();
    let mut sealed = Vec::new();
    for (run, payload) in [(0, &p1), (1, &p2)] {
        // The operator restores identity.key from a backup into a fresh store (state/ lost).
        let path = dir.path().join(format!("restored-{run}"));
        let store =
            Store::create_with(&path, "sensor", identity.clone(), StoreOptions::default()).unwrap();
        store.add_key(key.clone(), None, T).unwrap();
        let mut sealer = store.sealer(Profile::Signed).unwrap();
        let m = sealer
            .seal_with("plant/7/valve", payload, &SealOptions::at(false, T))
            .unwrap();
        sealed.push(m);
    }
    let (h1, h2) = (
        mqseal::inspect(&sealed[0]).unwrap(),
        mqseal::inspect(&sealed[1]).unwrap(),
    );
    assert_eq!(
        h1.seq, h2.seq,
        "both restored stores start at the same number"
    );
    assert_ne!(h1.salt, h2.salt, "but each message drew its own salt");
    // v1: the keystream repeated, so the broker learnt p1 ⊕ p2. Now the keystreams differ.
    let leak = xor(
        &ciphertext(&sealed[0], p1.len()),
        &ciphertext(&sealed[1], p2.len()),
    );
    assert_ne!(
        leak,
        xor(&p1, &p2),
        "keystream reuse: the broker learns p1 xor p2"
    );

    // The receiver refuses the repeated number (delivery, not confidentiality, is affected).
    let mut opener = Opener::new();
    opener.trust_sender(identity.public());
    opener.add_key(key);
    assert_eq!(
        opener
            .open_delivered("plant/7/valve", &sealed[0], &at(T))
            .unwrap()
            .payload,
        p1
    );
    assert_eq!(
        opener
            .open_delivered("plant/7/valve", &sealed[1], &at(T))
            .unwrap_err(),
        Error::Replay
    );
}

#[test]
fn two_sealers_of_one_identity_never_share_a_keystream() {
    // A process forked after building its sealer, or one identity on two hosts: both at 0.
    let identity = Identity::from_seed([0x61; 32]);
    let key = TreeKey::from_secret("#", 1, [0x62; 32]).unwrap();
    let mut a = Sealer::new(identity.clone(), Profile::GroupMac, 0);
    let mut b = Sealer::new(identity, Profile::GroupMac, 0);
    a.add_key(key.clone());
    b.add_key(key);
    let zeros = [0u8; 64];
    for _ in 0..100 {
        // With an all-zero payload the ciphertext *is* the keystream.
        let ka = ciphertext(&a.seal("t", &zeros, false).unwrap(), 64);
        let kb = ciphertext(&b.seal("t", &zeros, false).unwrap(), 64);
        assert_ne!(ka, kb);
    }
}

#[test]
fn a_broker_replaying_history_on_a_topic_the_receiver_never_saw_is_refused() {
    // The dashboard subscribes to plant/7/temp only; later it also subscribes to plant/7/door.
    // The broker kept an old door message and delivers it live, as if new.
    let sensor = Identity::from_seed([0x71; 32]);
    let key = TreeKey::from_secret("plant/#", 1, [0x72; 32]).unwrap();
    let mut sealer = Sealer::new(sensor.clone(), Profile::Signed, 0);
    sealer.add_key(key.clone());
    let old_door = sealer
        .seal_with("plant/7/door", b"open", &SealOptions::at(false, T))
        .unwrap();
    sealer.set_sequence(10_000, u64::MAX);
    let mut opener = Opener::new();
    opener.trust_sender(sensor.public());
    opener.add_key(key);
    for i in 0..5u8 {
        let m = sealer
            .seal_with("plant/7/temp", &[i], &SealOptions::at(false, T + 3600))
            .unwrap();
        opener
            .open_delivered("plant/7/temp", &m, &at(T + 3600))
            .unwrap();
    }
    // v1 accepted it: no window existed for plant/7/door.
    assert_eq!(
        opener
            .open_delivered("plant/7/door", &old_door, &at(T + 3600))
            .unwrap_err(),
        Error::TooOld
    );
    // A real new door message from the sender (a number near its counter) is accepted.
    let new_door = sealer
        .seal_with("plant/7/door", b"closed", &SealOptions::at(false, T + 3601))
        .unwrap();
    assert_eq!(
        opener
            .open_delivered("plant/7/door", &new_door, &at(T + 3601))
            .unwrap()
            .payload,
        b"closed"
    );
}

#[test]
fn a_sender_holding_two_keys_cannot_make_one_message_mean_two_things() {
    // Two independent trees of the same epoch, both covering the topic: the sender holds
    // both; audience A holds only tree A, audience B only tree B, C holds both.
    let sender = Identity::from_seed([0x81; 32]);
    let tree_a = TreeKey::from_secret("plant/#", 1, [0x82; 32]).unwrap();
    let tree_b = TreeKey::from_secret("plant/7/#", 1, [0x83; 32]).unwrap();
    let mut sealer = Sealer::new(sender.clone(), Profile::Signed, 0);
    sealer.add_key(tree_a.clone());
    sealer.add_key(tree_b.clone());
    let opener_with = |keys: &[&TreeKey]| {
        let mut o = Opener::new();
        o.trust_sender(sender.public());
        for k in keys {
            o.add_key((*k).clone());
        }
        o
    };
    // The sealer uses the most specific key (tree B) and names it.
    let m = sealer.seal("plant/7/temp", b"for B", false).unwrap();
    let named = mqseal::inspect(&m).unwrap().key_id;
    assert_eq!(named, tree_b.topic_key("plant/7/temp").unwrap().key_id());
    assert_ne!(named, tree_a.topic_key("plant/7/temp").unwrap().key_id());
    // Audience A is not asked to try its key: the message names another.
    assert_eq!(
        opener_with(&[&tree_a])
            .open("plant/7/temp", &m)
            .unwrap_err(),
        Error::KeyNotFound
    );
    assert_eq!(
        opener_with(&[&tree_b])
            .open("plant/7/temp", &m)
            .unwrap()
            .payload,
        b"for B"
    );
    // Audience C opens with exactly the named key, whatever order it holds them in.
    assert!(
        opener_with(&[&tree_a, &tree_b])
            .open("plant/7/temp", &m)
            .is_ok()
    );
    assert!(
        opener_with(&[&tree_b, &tree_a])
            .open("plant/7/temp", &m)
            .is_ok()
    );
    // Renaming the key in the header (to aim it at audience A) breaks the signature.
    let mut aimed = m.clone();
    let a_id = tree_a.topic_key("plant/7/temp").unwrap().key_id();
    aimed[6..10].copy_from_slice(&a_id);
    assert_eq!(
        opener_with(&[&tree_a])
            .open("plant/7/temp", &aimed)
            .unwrap_err(),
        Error::BadSignature
    );
}

#[test]
fn retained_rollback_what_a_late_subscriber_can_and_cannot_detect() {
    let sensor = Identity::from_seed([0x91; 32]);
    let key = TreeKey::from_secret("plant/#", 1, [0x92; 32]).unwrap();
    let mut sealer = Sealer::new(sensor.clone(), Profile::Signed, 0);
    sealer.add_key(key.clone());
    // The sensor retained "running" at T, then "stopped" at T + 600 on the same topic.
    let older = sealer
        .seal_with("plant/7/state", b"running", &SealOptions::at(true, T))
        .unwrap();
    let newer = sealer
        .seal_with("plant/7/state", b"stopped", &SealOptions::at(true, T + 600))
        .unwrap();
    let retained = |now| Delivery {
        retained: true,
        now: Some(now),
        ..Delivery::default()
    };
    let late_subscriber = |policy| {
        let mut o = Opener::with_policy(policy);
        o.trust_sender(sensor.public());
        o.add_key(key.clone());
        o
    };
    // Cannot detect: a broker serving the older retained message to a new subscriber, within
    // any maximum age, is accepted (authentic, retained, no window yet; spec 7.4).
    let mut fresh = late_subscriber(OpenPolicy::default());
    assert_eq!(
        fresh
            .open_delivered("plant/7/state", &older, &retained(T + 700))
            .unwrap()
            .payload,
        b"running"
    );
    // Can detect: older than the maximum age.
    let mut strict = late_subscriber(OpenPolicy {
        max_age: Some(300),
        ..OpenPolicy::default()
    });
    assert_eq!(
        strict
            .open_delivered("plant/7/state", &older, &retained(T + 700))
            .unwrap_err(),
        Error::Expired
    );
    assert!(
        strict
            .open_delivered("plant/7/state", &newer, &retained(T + 700))
            .is_ok()
    );
    // Can detect: the same retained message again (every new subscription redelivers it).
    assert_eq!(
        strict
            .open_delivered("plant/7/state", &newer, &retained(T + 710))
            .unwrap_err(),
        Error::Replay
    );
    // Cannot detect, without a maximum age: the older one after the newer one was accepted. Its
    // number is inside the window and unseen, so it is a late delivery, accepted once (spec
    // 7.4: the broker's retained slot is not authenticated).
    let mut seen = late_subscriber(OpenPolicy::default());
    seen.open_delivered("plant/7/state", &newer, &retained(T + 700))
        .unwrap();
    assert!(
        seen.open_delivered("plant/7/state", &older, &retained(T + 800))
            .is_ok()
    );
    assert_eq!(
        seen.open_delivered("plant/7/state", &older, &retained(T + 900))
            .unwrap_err(),
        Error::Replay
    );
}

#[test]
fn a_trusted_peer_store_still_works_after_a_restore() {
    // After a restore, raising the counter above what receivers saw (keystore.md section 13)
    // gets delivery back; the salt was never what made it safe.
    let dir = tempfile::tempdir().unwrap();
    let admin = Store::create(dir.path().join("admin"), "admin").unwrap();
    let identity = Identity::from_seed([0xa1; 32]);
    let sensor = Store::create_with(
        dir.path().join("sensor"),
        "sensor",
        identity.clone(),
        StoreOptions::default(),
    )
    .unwrap();
    admin
        .trust("sensor", &identity.public(), Roles::SENDER)
        .unwrap();
    let held = admin.create_key("plant/#", T).unwrap();
    sensor.add_key(held.key.clone(), None, T).unwrap();
    let mut opener = admin.opener(OpenPolicy::default()).unwrap();
    let mut sealer = sensor.sealer(Profile::Signed).unwrap();
    let m = sealer
        .seal_with("plant/1", b"before", &SealOptions::at(false, T))
        .unwrap();
    assert!(opener.open_delivered("plant/1", &m, &at(T)).is_ok());
    drop(sealer);
    drop(sensor);
    let restored = Store::create_with(
        dir.path().join("sensor-restored"),
        "sensor",
        identity,
        StoreOptions::default(),
    )
    .unwrap();
    restored.add_key(held.key, None, T).unwrap();
    let mut sealer = restored.sealer(Profile::Signed).unwrap();
    let again = sealer
        .seal_with("plant/1", b"after restore", &SealOptions::at(false, T))
        .unwrap();
    assert_eq!(mqseal::inspect(&again).unwrap().seq, 0);
    assert_eq!(
        opener
            .open_delivered("plant/1", &again, &at(T))
            .unwrap_err()
            .core(),
        Some(Error::Replay)
    );
}
