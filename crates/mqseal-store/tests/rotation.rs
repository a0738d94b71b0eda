//! In-band grants, rotation with a grace period, and revocation, across four stores: an admin,
//! a sensor (sender), and two readers, one of which gets revoked.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::Path;

use mqseal::{Delivery, Error, Grant, Identity, OpenPolicy, Profile, SealOptions, Validity};
use mqseal_store::{GrantTopics, OutgoingGrant, Roles, Store, StoreError, StoreOptions};

const GRACE: u64 = 600;
const T0: u64 = 1_800_000_000;

struct World {
    admin: Store,
    sensor: Store,
    alice: Store,
    bob: Store,
}

fn world(dir: &Path) -> World {
    let opts = StoreOptions {
        grace_period: GRACE,
        grant_topics: GrantTopics::new("site/grants").unwrap(),
        ..StoreOptions::default()
    };
    let mk = |name: &str, seed: u8| {
        Store::create_with(
            dir.join(name),
            name,
            Identity::from_seed([seed; 32]),
            opts.clone(),
        )
        .unwrap()
    };
    let w = World {
        admin: mk("admin", 1),
        sensor: mk("sensor", 2),
        alice: mk("alice", 3),
        bob: mk("bob", 4),
    };
    for member in [&w.sensor, &w.alice, &w.bob] {
        w.admin
            .trust_line(&member.public_line(), Roles::SENDER)
            .unwrap();
        member
            .trust_line(&w.admin.public_line(), Roles::ISSUER)
            .unwrap();
    }
    for reader in [&w.alice, &w.bob] {
        reader
            .trust_line(&w.sensor.public_line(), Roles::SENDER)
            .unwrap();
    }
    w
}

/// Delivers grants as a broker would: each recipient's store handles what arrives on its
/// subscription.
fn deliver(grants: &[OutgoingGrant], to: &[&Store], now: u64) {
    for g in grants {
        assert!(g.retain);
        for s in to {
            let sub = s.options().grant_topics.subscription(&s.fingerprint());
            let prefix = sub.trim_end_matches('+');
            if g.topic.starts_with(prefix) {
                let accepted = s
                    .accept_grant_message(&g.topic, &g.payload, now)
                    .unwrap()
                    .unwrap();
                assert_eq!(
                    (accepted.key.epoch(), accepted.issuer_name.as_deref()),
                    (g.epoch, Some("admin"))
                );
            }
        }
    }
}

fn at(now: u64) -> Delivery {
    Delivery {
        now: Some(now),
        ..Delivery::default()
    }
}

#[test]
fn grants_travel_in_band_and_are_checked_against_their_topic() {
    let tmp = tempfile::tempdir().unwrap();
    let w = world(tmp.path());
    w.admin.create_key("plant/#", T0).unwrap();
    let to_alice = w.admin.issue_grant("plant/#", "alice").unwrap();
    let to_sensor = w.admin.issue_grant("plant/7/#", "sensor").unwrap();
    assert!(
        to_alice
            .topic
            .starts_with(&format!("site/grants/{}/", w.alice.fingerprint()))
    );
    assert_eq!(to_sensor.filter, "plant/7/#");
    // What the broker sees contains no key material of the tree.
    let root = w.admin.held_keys().unwrap()[0].key.secret_bytes();
    assert!(
        !to_alice
            .payload
            .windows(32)
            .any(|win| win == root.as_slice())
    );

    // Wrong recipient's subscription, moved to another slot, or on a foreign topic: refused.
    let err = w
        .bob
        .accept_grant_message(&to_alice.topic, &to_alice.payload, T0)
        .unwrap_err();
    assert!(
        matches!(err, StoreError::GrantTopicMismatch { .. }),
        "{err}"
    );
    let moved = to_alice.topic.replace(
        &to_alice.topic[to_alice.topic.len() - 16..],
        "0000000000000000",
    );
    let err = w
        .alice
        .accept_grant_message(&moved, &to_alice.payload, T0)
        .unwrap_err();
    assert!(
        matches!(err, StoreError::GrantTopicMismatch { .. }),
        "{err}"
    );
    assert!(
        w.alice
            .accept_grant_message("plant/7/temp", &to_alice.payload, T0)
            .is_err()
    );
    // A grant for bob published on alice's topic: not for her.
    let to_bob = w.admin.issue_grant("plant/#", "bob").unwrap();
    let on_alice = format!(
        "site/grants/{}/{}",
        w.alice.fingerprint(),
        &to_bob.topic[to_bob.topic.len() - 16..]
    );
    assert_eq!(
        w.alice
            .accept_grant_message(&on_alice, &to_bob.payload, T0)
            .unwrap_err()
            .core(),
        Some(Error::GrantNotForUs)
    );
    // A cleared retained message (empty payload) is ignored; garbage is an error.
    assert!(
        w.alice
            .accept_grant_message(&to_alice.topic, b"", T0)
            .unwrap()
            .is_none()
    );
    assert!(
        w.alice
            .accept_grant_message(&to_alice.topic, b"\x01garbage", T0)
            .is_err()
    );
    // Only peers trusted as issuers can grant: the sensor cannot hand alice a key.
    let forged_key = mqseal::TreeKey::generate("plant/#", 99).unwrap();
    let forged = Grant::issue(w.sensor.identity(), &w.alice.public(), &forged_key).unwrap();
    assert_eq!(
        w.alice.accept_grant(&forged, T0).unwrap_err().core(),
        Some(Error::UntrustedIssuer)
    );

    deliver(
        &[to_alice.clone(), to_sensor, to_bob],
        &[&w.alice, &w.sensor, &w.bob],
        T0,
    );
    // The same grant again changes nothing.
    let again = w
        .alice
        .accept_grant_message(&to_alice.topic, &to_alice.payload, T0)
        .unwrap()
        .unwrap();
    assert!(!again.update.added);
    let mut sealer = w.sensor.sealer(Profile::Signed).unwrap();
    let m = sealer.seal("plant/7/temp", b"21.5", false).unwrap();
    let mut alice = w.alice.opener(OpenPolicy::default()).unwrap();
    assert_eq!(alice.open("plant/7/temp", &m).unwrap().payload, b"21.5");
    assert_eq!(w.admin.members("plant/#").unwrap().len(), 3);
}

#[test]
fn rotation_switches_senders_and_expires_the_old_epoch_after_the_grace_period() {
    let tmp = tempfile::tempdir().unwrap();
    let w = world(tmp.path());
    w.admin.create_key("plant/#", T0).unwrap();
    let grants = vec![
        w.admin.issue_grant("plant/#", "alice").unwrap(),
        w.admin.issue_grant("plant/7/#", "sensor").unwrap(),
    ];
    deliver(&grants, &[&w.alice, &w.sensor], T0);

    let mut sealer = w.sensor.sealer(Profile::Signed).unwrap();
    let mut alice = w.alice.opener(OpenPolicy::default()).unwrap();
    let old1 = sealer.seal("plant/7/temp", b"e1 a", false).unwrap();
    let old2 = sealer.seal("plant/7/temp", b"e1 b", false).unwrap();
    let old3 = sealer.seal("plant/7/temp", b"e1 c", false).unwrap();
    assert_eq!(
        alice
            .open_delivered("plant/7/temp", &old1, &at(T0))
            .unwrap()
            .epoch,
        1
    );

    let t1 = T0 + 100;
    let rotation = w.admin.rotate("plant/#", &[], t1).unwrap();
    assert_eq!((rotation.epoch, rotation.grants.len()), (2, 2));
    assert_eq!(rotation.retired, vec![(1, t1 + GRACE)]);
    deliver(&rotation.grants, &[&w.alice, &w.sensor], t1);
    // A replayed grant of epoch 1 changes nothing (the key stays retired, same deadline).
    let replayed = w
        .alice
        .accept_grant_message(&grants[0].topic, &grants[0].payload, t1 + 50)
        .unwrap();
    assert!(!replayed.unwrap().update.added);
    let held = w.alice.held_keys().unwrap();
    let e1 = held.iter().find(|k| k.epoch() == 1).unwrap();
    assert_eq!(e1.not_after, Some(t1 + GRACE));

    // The sender switches to the newest epoch once it reloads its keys.
    sealer.set_keys(w.sensor.sealing_keys().unwrap());
    let new1 = sealer.seal("plant/7/temp", b"e2", false).unwrap();
    assert_eq!(mqseal::inspect(&new1).unwrap().epoch, 2);
    // The reader keeps accepting epoch 1 during the grace period, then refuses it distinctly.
    alice.set_keys(&w.alice.held_keys().unwrap());
    assert_eq!(
        alice
            .open_delivered("plant/7/temp", &new1, &at(t1))
            .unwrap()
            .epoch,
        2
    );
    assert_eq!(
        alice
            .open_delivered("plant/7/temp", &old2, &at(t1 + GRACE))
            .unwrap()
            .payload,
        b"e1 b"
    );
    let late = alice
        .open_delivered("plant/7/temp", &old3, &at(t1 + GRACE + 1))
        .unwrap_err();
    assert_eq!(late.core(), Some(Error::EpochExpired));
    assert_eq!(late.code(), 23);
    // A restarted reader still knows the retirement.
    drop(alice);
    let mut alice = w.alice.opener(OpenPolicy::default()).unwrap();
    assert_eq!(
        alice
            .open_delivered("plant/7/temp", &old3, &at(t1 + GRACE + 1))
            .unwrap_err()
            .core(),
        Some(Error::EpochExpired)
    );
    // Pruning removes the expired key for good; its grant cannot bring it back.
    assert!(w.alice.prune(t1 + GRACE).unwrap().is_empty());
    let gone = w.alice.prune(t1 + GRACE + 1).unwrap();
    assert_eq!((gone.len(), gone[0].epoch), (1, 1));
    alice.set_keys(&w.alice.held_keys().unwrap());
    assert_eq!(
        alice
            .open_delivered("plant/7/temp", &old3, &at(t1 + GRACE + 1))
            .unwrap_err()
            .core(),
        Some(Error::KeyNotFound)
    );
    let err = w
        .alice
        .accept_grant(&Grant::from_bytes(&grants[0].payload).unwrap(), t1)
        .unwrap_err();
    assert!(
        matches!(err, StoreError::StaleKey { newest: 2, .. }),
        "{err}"
    );
    // Republishing the current grants works (e.g. after the admin crashed before publishing).
    let again = w.admin.reissue("plant/#").unwrap();
    assert_eq!(again.len(), 2);
    assert!(again.iter().all(|g| g.epoch == 2));
    deliver(&again, &[&w.alice, &w.sensor], t1);
}

#[test]
fn a_revoked_member_cannot_open_anything_sealed_under_later_epochs() {
    let tmp = tempfile::tempdir().unwrap();
    let w = world(tmp.path());
    w.admin.create_key("plant/#", T0).unwrap();
    let grants: Vec<OutgoingGrant> = ["alice", "bob", "sensor"]
        .iter()
        .map(|n| w.admin.issue_grant("plant/#", n).unwrap())
        .collect();
    deliver(&grants, &[&w.alice, &w.bob, &w.sensor], T0);
    let mut sealer = w.sensor.sealer(Profile::Signed).unwrap();
    let before = sealer.seal("plant/1", b"before", false).unwrap();
    let mut bob = w.bob.opener(OpenPolicy::default()).unwrap();
    assert!(bob.open_delivered("plant/1", &before, &at(T0)).is_ok());

    // Revoke bob: rotate excluding him. Everyone else gets epoch 2.
    let rotation = w
        .admin
        .rotate("plant/#", &[w.bob.fingerprint()], T0 + 10)
        .unwrap();
    assert_eq!(rotation.excluded, vec![w.bob.fingerprint()]);
    assert_eq!(rotation.grants.len(), 2);
    assert!(
        rotation
            .grants
            .iter()
            .all(|g| g.recipient != w.bob.fingerprint())
    );
    deliver(&rotation.grants, &[&w.alice, &w.sensor], T0 + 10);
    // Bob can accept none of the new grants (they are wrapped to the others' keys).
    for g in &rotation.grants {
        let grant = Grant::from_bytes(&g.payload).unwrap();
        assert_eq!(
            w.bob.accept_grant(&grant, T0 + 10).unwrap_err().core(),
            Some(Error::GrantNotForUs)
        );
        assert_eq!(
            grant
                .accept(w.bob.identity(), &[w.admin.public()])
                .unwrap_err(),
            Error::GrantNotForUs
        );
    }
    sealer.set_keys(w.sensor.sealing_keys().unwrap());
    let mut alice = w.alice.opener(OpenPolicy::default()).unwrap();
    for (i, topic) in ["plant/1", "plant/7/temp", "plant"].iter().enumerate() {
        let m = sealer.seal(topic, &[i as u8], false).unwrap();
        assert_eq!(mqseal::inspect(&m).unwrap().epoch, 2);
        assert_eq!(
            alice
                .open_delivered(topic, &m, &at(T0 + 20))
                .unwrap()
                .payload,
            [i as u8]
        );
        // Bob, even reloading everything he holds, has no key for epoch 2.
        bob.set_keys(&w.bob.held_keys().unwrap());
        assert_eq!(
            bob.open_delivered(topic, &m, &at(T0 + 20))
                .unwrap_err()
                .core(),
            Some(Error::KeyNotFound)
        );
        // Nor can the epoch-1 key open it if he relabels it as epoch 2: its key id is not the
        // one the message names, so it is not even tried.
        let old = w.bob.held_keys().unwrap()[0].key.clone();
        let relabeled = mqseal::TreeKey::from_secret("plant/#", 2, *old.secret_bytes()).unwrap();
        let mut o = mqseal::Opener::new();
        o.trust_sender(w.sensor.public());
        o.add_key(relabeled);
        assert_eq!(o.open(topic, &m).unwrap_err(), Error::KeyNotFound);
    }
    // A later rotation does not re-admit bob.
    let next = w.admin.rotate("plant/#", &[], T0 + 30).unwrap();
    assert_eq!(next.epoch, 3);
    assert_eq!(next.grants.len(), 2);
    assert!(next.excluded.is_empty());
    assert!(
        w.admin
            .members("plant/#")
            .unwrap()
            .iter()
            .all(|m| m.recipient_name != "bob")
    );
}

#[test]
fn keys_follow_the_epoch_rules() {
    let tmp = tempfile::tempdir().unwrap();
    let w = world(tmp.path());
    let k = w.admin.create_key("a/#", T0).unwrap();
    assert_eq!(k.epoch(), 1);
    assert!(matches!(
        w.admin.create_key("a/#", T0),
        Err(StoreError::KeyConflict { .. })
    ));
    assert!(matches!(
        w.admin.rotate("b/#", &[], T0),
        Err(StoreError::NoKeyFor { .. })
    ));
    assert!(matches!(
        w.admin.issue_grant("b/x", "alice"),
        Err(StoreError::NoKeyFor { .. })
    ));
    assert!(matches!(
        w.admin.issue_grant("a/#", "nobody"),
        Err(StoreError::UnknownPeer { .. })
    ));
    let other = mqseal::TreeKey::from_secret("a/#", 1, [9; 32]).unwrap();
    assert!(matches!(
        w.admin.add_key(other, None, T0),
        Err(StoreError::KeyConflict { .. })
    ));
    // Removing leaves a tombstone: the epoch cannot come back, the next one is 2.
    assert!(w.admin.remove_key("a/#", 1).unwrap());
    assert!(!w.admin.remove_key("a/#", 1).unwrap());
    let back = mqseal::TreeKey::from_secret("a/#", 1, [9; 32]).unwrap();
    assert!(matches!(
        w.admin.add_key(back, None, T0),
        Err(StoreError::StaleKey { .. })
    ));
    assert_eq!(w.admin.create_key("a/#", T0).unwrap().epoch(), 2);
    // Exact-topic and deeper filters are their own lineages.
    w.admin.create_key("a/b/#", T0).unwrap();
    let g = w.admin.issue_grant("a/b/c", "alice").unwrap();
    assert_eq!((g.filter.as_str(), g.epoch), ("a/b/c", 1));
    assert_eq!(w.admin.issued().unwrap()[0].root_filter, "a/b/#");
}

/// keystore.md section 11: an epoch granted ahead of time. The sensor gets epoch 2 long before
/// its `not_before`, keeps sealing under epoch 1 until then and switches by itself at
/// `not_before` (no reload, no delivery); receivers retire epoch 1 from `not_before` on.
#[test]
fn an_epoch_granted_ahead_of_time_takes_over_at_its_not_before() {
    let tmp = tempfile::tempdir().unwrap();
    let w = world(tmp.path());
    w.admin.create_key("plant/#", T0).unwrap();
    let grants = vec![
        w.admin.issue_grant("plant/#", "alice").unwrap(),
        w.admin.issue_grant("plant/7/#", "sensor").unwrap(),
    ];
    deliver(&grants, &[&w.alice, &w.sensor], T0);
    let switch = T0 + 10_000;
    let ahead = Validity::new(switch, Some(switch + 30 * 86_400)).unwrap();
    let rotation = w.admin.rotate_with("plant/#", &[], ahead, T0 + 1).unwrap();
    assert_eq!((rotation.epoch, rotation.validity), (2, ahead));
    // The admin's own epoch 1 is retired from the switch on, not from now.
    assert_eq!(rotation.retired, vec![(1, switch + GRACE)]);
    deliver(&rotation.grants, &[&w.alice, &w.sensor], T0 + 2);
    let held = w.sensor.held_keys().unwrap();
    let e1 = held.iter().find(|k| k.epoch() == 1).unwrap();
    let e2 = held.iter().find(|k| k.epoch() == 2).unwrap();
    assert_eq!(e1.not_after, Some(switch + GRACE));
    assert_eq!(e2.key.validity(), ahead);
    assert!(
        std::fs::read_to_string(w.sensor.path("keys"))
            .unwrap()
            .contains(&format!(
                "not-before={switch} valid-until={}",
                switch + 30 * 86_400
            ))
    );
    // Before the switch the sealer gets both epochs, after it only the new one.
    let epochs = |now| -> Vec<u32> {
        let mut e: Vec<u32> = w
            .sensor
            .sealing_keys_at(now)
            .unwrap()
            .iter()
            .map(|k| k.epoch())
            .collect();
        e.sort();
        e
    };
    assert_eq!(epochs(switch - 1), [1, 2]);
    assert_eq!(epochs(switch), [2]);

    // A sealer opened before the switch (then offline: nothing reloads it) changes by itself.
    let mut sealer = w.sensor.sealer(Profile::Signed).unwrap();
    let at_time = |t| SealOptions::at(false, t);
    let before = sealer
        .seal_with("plant/7/temp", b"e1", &at_time(switch - 1))
        .unwrap();
    let after = sealer
        .seal_with("plant/7/temp", b"e2", &at_time(switch))
        .unwrap();
    assert_eq!(mqseal::inspect(&before).unwrap().epoch, 1);
    assert_eq!(mqseal::inspect(&after).unwrap().epoch, 2);
    let mut alice = w.alice.opener(OpenPolicy::default()).unwrap();
    assert_eq!(
        alice
            .open_delivered("plant/7/temp", &before, &at(switch + GRACE))
            .unwrap()
            .payload,
        b"e1"
    );
    assert_eq!(
        alice
            .open_delivered("plant/7/temp", &after, &at(switch))
            .unwrap()
            .epoch,
        2
    );
    // Past the new key's validity the sealer refuses instead of sealing under it forever.
    let end = switch + 30 * 86_400;
    assert!(
        sealer
            .seal_with("plant/7/temp", b"last", &at_time(end))
            .is_ok()
    );
    let err = sealer
        .seal_with("plant/7/temp", b"too late", &at_time(end + 1))
        .unwrap_err();
    assert_eq!(err.core(), Some(Error::KeyExpired));
    assert_eq!(err.code(), 25);
    // Pruning drops the expired key once the grace period after its validity is over.
    assert!(
        w.sensor
            .prune(end + GRACE)
            .unwrap()
            .iter()
            .all(|t| t.epoch == 1)
    );
    let gone = w.sensor.prune(end + GRACE + 1).unwrap();
    assert_eq!(gone.iter().map(|t| t.epoch).collect::<Vec<_>>(), [2]);
}

/// The same key again with another validity is a conflict: grants of one epoch are unordered,
/// so a replayed older grant must not shorten or extend a held key.
#[test]
fn a_held_keys_validity_never_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let w = world(tmp.path());
    let key = w
        .admin
        .create_key_with("lab/#", Validity::new(0, Some(T0 + 86_400)).unwrap(), T0)
        .unwrap();
    assert_eq!(key.key.validity().not_after(), Some(T0 + 86_400));
    let granted = w.admin.issue_grant("lab/#", "alice").unwrap();
    deliver(std::slice::from_ref(&granted), &[&w.alice], T0);
    let longer = key
        .key
        .clone()
        .with_validity(Validity::new(0, Some(T0 + 2 * 86_400)).unwrap());
    let err = w
        .alice
        .add_key(longer, Some(w.admin.fingerprint()), T0)
        .unwrap_err();
    assert!(matches!(err, StoreError::KeyConflict { .. }), "{err}");
    // The very same grant again is fine (nothing changes).
    let again = w
        .alice
        .accept_grant_message(&granted.topic, &granted.payload, T0 + 5)
        .unwrap()
        .unwrap();
    assert!(!again.update.added);
}
