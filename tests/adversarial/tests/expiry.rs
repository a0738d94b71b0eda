//! Keys that expire, and keys granted ahead of time (spec `mqseal-v2.md` sections 4.1, 6 step 2,
//! 7.1 step 4; `keystore.md` section 11), against a broker that decides which grants arrive:
//!
//! - **A broker withholding the new grant**: before validities, a sealer kept sealing under the
//!   epoch it held for as long as the broker kept the rotation from it — a revoked member kept
//!   reading. Now the sealer stops at the key's `not_after` with `key_expired`, and receivers
//!   refuse messages under it after their grace, even from a sealer that ignores the validity.
//! - **A device offline at rotation time**: the next epoch, granted ahead of time, takes over at
//!   its `not_before` on the device by itself, with no delivery at that moment.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::Path;

use mqseal::{Delivery, Error, Identity, OpenPolicy, Profile, SealOptions, Sealer, Validity};
use mqseal_store::{OutgoingGrant, Roles, Store, StoreOptions};

const T: u64 = 1_800_000_000;
const GRACE: u64 = 600;
/// Key lifetime the administrator gives every epoch.
const LIFE: u64 = 7 * 86_400;
const TOPIC: &str = "plant/7/temp";

fn at(now: u64) -> Delivery {
    Delivery {
        now: Some(now),
        ..Delivery::default()
    }
}

fn sealed_at(t: u64) -> SealOptions {
    SealOptions::at(false, t)
}

struct Site {
    admin: Store,
    sensor: Store,
    dashboard: Store,
    mallory: Store,
}

/// An administrator, a sensor that publishes, a dashboard and mallory (who will be revoked)
/// that read; every member trusts the admin as issuer, the readers trust the sensor.
fn site(dir: &Path) -> Site {
    let options = StoreOptions {
        grace_period: GRACE,
        ..StoreOptions::default()
    };
    let store = |name: &str, seed: u8| {
        Store::create_with(
            dir.join(name),
            name,
            Identity::from_seed([seed; 32]),
            options.clone(),
        )
        .unwrap()
    };
    let s = Site {
        admin: store("admin", 0x61),
        sensor: store("sensor", 0x62),
        dashboard: store("dashboard", 0x63),
        mallory: store("mallory", 0x64),
    };
    for member in [&s.sensor, &s.dashboard, &s.mallory] {
        s.admin
            .trust_line(&member.public_line(), Roles::SENDER)
            .unwrap();
        member
            .trust_line(&s.admin.public_line(), Roles::ISSUER)
            .unwrap();
    }
    for reader in [&s.dashboard, &s.mallory] {
        reader
            .trust_line(&s.sensor.public_line(), Roles::SENDER)
            .unwrap();
    }
    s
}

/// The broker: hands each grant to the member it is addressed to, unless it withholds it.
fn broker(grants: &[OutgoingGrant], members: &[&Store], withhold: &[&Store], now: u64) {
    for g in grants {
        let to = members
            .iter()
            .find(|m| m.fingerprint() == g.recipient)
            .unwrap();
        if withhold.iter().any(|w| w.fingerprint() == g.recipient) {
            continue;
        }
        to.accept_grant_message(&g.topic, &g.payload, now)
            .unwrap()
            .unwrap();
    }
}

/// Grants `plant/#` (valid `validity`) to the readers and `plant/7/#` to the sensor.
fn first_epoch(s: &Site, validity: Validity) {
    s.admin.create_key_with("plant/#", validity, T).unwrap();
    let grants = vec![
        s.admin.issue_grant("plant/7/#", "sensor").unwrap(),
        s.admin.issue_grant("plant/#", "dashboard").unwrap(),
        s.admin.issue_grant("plant/#", "mallory").unwrap(),
    ];
    broker(&grants, &[&s.sensor, &s.dashboard, &s.mallory], &[], T);
}

#[test]
fn a_broker_withholding_the_new_grant_cannot_keep_the_sealer_on_the_revoked_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let s = site(dir.path());
    first_epoch(&s, Validity::new(0, Some(T + LIFE)).unwrap());
    let mut sensor = s.sensor.sealer(Profile::Signed).unwrap();
    let mut mallory = s.mallory.opener(OpenPolicy::default()).unwrap();

    // Mallory is revoked; the broker (in league with her) keeps epoch 2 from the sensor.
    let revoke = T + 3_600;
    let rotation = s
        .admin
        .rotate_with(
            "plant/#",
            &[s.mallory.fingerprint()],
            Validity::new(0, Some(revoke + LIFE)).unwrap(),
            revoke,
        )
        .unwrap();
    assert_eq!(rotation.excluded, [s.mallory.fingerprint()]);
    broker(
        &rotation.grants,
        &[&s.sensor, &s.dashboard],
        &[&s.sensor],
        revoke,
    );
    sensor.set_keys(s.sensor.sealing_keys_at(revoke).unwrap());

    // Until epoch 1's not_after the sensor seals under it, and mallory reads it: that much a
    // withholding broker can do.
    let last = sensor
        .seal_with(TOPIC, b"21.5", &sealed_at(T + LIFE))
        .unwrap();
    assert_eq!(mqseal::inspect(&last).unwrap().epoch, 1);
    assert_eq!(
        mallory
            .open_delivered(TOPIC, &last, &at(T + LIFE))
            .unwrap()
            .payload,
        b"21.5"
    );
    // From then on the sensor refuses, instead of sealing for mallory forever.
    for t in [T + LIFE + 1, T + 10 * LIFE] {
        let err = sensor.seal_with(TOPIC, b"22.0", &sealed_at(t)).unwrap_err();
        assert_eq!(err.core(), Some(Error::KeyExpired), "at {t}");
    }
    assert_eq!(sensor.next_seq(), mqseal::inspect(&last).unwrap().seq + 1);

    // A sealer that ignores validities (old or modified software on the sensor, holding the
    // epoch-1 key) gains nothing past the receivers' grace: the dashboard refuses it.
    let e1 = s
        .sensor
        .held_keys()
        .unwrap()
        .into_iter()
        .find(|k| k.epoch() == 1)
        .unwrap();
    let stripped = e1.key.clone().with_validity(Validity::ALWAYS);
    let mut rogue = Sealer::new(s.sensor.identity().clone(), Profile::Signed, 1 << 40);
    rogue.add_key(stripped);
    let late = rogue
        .seal_with(TOPIC, b"sealed anyway", &sealed_at(T + 2 * LIFE))
        .unwrap();
    let mut dashboard = s
        .dashboard
        .opener(OpenPolicy {
            validity_grace: GRACE,
            ..OpenPolicy::default()
        })
        .unwrap();
    let refused = dashboard
        .open_delivered(TOPIC, &late, &at(T + LIFE + GRACE + 1))
        .unwrap_err();
    // The dashboard accepted epoch 2, so epoch 1 is retired too: retirement is checked first.
    assert_eq!(refused.core(), Some(Error::EpochExpired));
    let refused = mallory
        .open_delivered(TOPIC, &late, &at(T + LIFE + 86_401))
        .unwrap_err();
    // Mallory never got epoch 2: only the validity stops her opener.
    assert_eq!(refused.core(), Some(Error::KeyExpired));
    // A message sealed just before not_after and delivered late still opens within the grace.
    assert!(
        mallory
            .open_delivered(TOPIC, &late, &at(T + LIFE + 86_400))
            .is_ok()
    );

    // Without a lifetime, the old limit stands: a key with no not_after is sealed with for as
    // long as the broker withholds its successor.
    s.admin.create_key("legacy/#", T).unwrap();
    let legacy = s.admin.issue_grant("legacy/#", "sensor").unwrap();
    broker(&[legacy], &[&s.sensor], &[], T);
    let rotation = s.admin.rotate("legacy/#", &[], revoke).unwrap();
    broker(&rotation.grants, &[&s.sensor], &[&s.sensor], revoke);
    sensor.set_keys(s.sensor.sealing_keys_at(revoke).unwrap());
    let forever = sensor
        .seal_with("legacy/x", b"still epoch 1", &sealed_at(T + 100 * LIFE))
        .unwrap();
    assert_eq!(mqseal::inspect(&forever).unwrap().epoch, 1);
}

#[test]
fn a_device_offline_at_rotation_switches_at_not_before_without_any_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let s = site(dir.path());
    first_epoch(&s, Validity::ALWAYS);

    // The admin grants epoch 2 ahead of time, to switch at `switch`, leaving mallory out; the
    // grants reach the sensor and the dashboard well before.
    let switch = T + 86_400;
    let rotation = s
        .admin
        .rotate_with(
            "plant/#",
            &[s.mallory.fingerprint()],
            Validity::new(switch, Some(switch + LIFE)).unwrap(),
            T + 10,
        )
        .unwrap();
    broker(&rotation.grants, &[&s.sensor, &s.dashboard], &[], T + 20);
    // Both start before the switch; nothing is delivered to either from here on (the device
    // is offline at rotation time) and nothing reloads their keys.
    let mut sensor = s.sensor.sealer(Profile::Signed).unwrap();
    sensor.set_keys(s.sensor.sealing_keys_at(T + 30).unwrap());
    let mut dashboard = s
        .dashboard
        .opener(OpenPolicy {
            validity_grace: GRACE,
            ..OpenPolicy::default()
        })
        .unwrap();
    let mut mallory = s.mallory.opener(OpenPolicy::default()).unwrap();

    let before = sensor
        .seal_with(TOPIC, b"epoch 1", &sealed_at(switch - 1))
        .unwrap();
    let after = sensor
        .seal_with(TOPIC, b"epoch 2", &sealed_at(switch))
        .unwrap();
    assert_eq!(mqseal::inspect(&before).unwrap().epoch, 1);
    assert_eq!(mqseal::inspect(&after).unwrap().epoch, 2);
    assert_eq!(
        dashboard
            .open_delivered(TOPIC, &before, &at(switch))
            .unwrap()
            .payload,
        b"epoch 1"
    );
    assert_eq!(
        dashboard
            .open_delivered(TOPIC, &after, &at(switch))
            .unwrap()
            .payload,
        b"epoch 2"
    );
    // The revoked member reads the last epoch-1 message, nothing after the switch.
    assert!(mallory.open_delivered(TOPIC, &before, &at(switch)).is_ok());
    assert_eq!(
        mallory
            .open_delivered(TOPIC, &after, &at(switch))
            .unwrap_err()
            .core(),
        Some(Error::KeyNotFound)
    );
    // A device that missed the early grant keeps sealing under epoch 1; receivers that got
    // epoch 2 retired epoch 1 from the switch on and refuse it after the grace.
    let mut stale = Sealer::new(s.sensor.identity().clone(), Profile::Signed, 1 << 40);
    stale.add_key(
        s.sensor
            .held_keys()
            .unwrap()
            .into_iter()
            .find(|k| k.epoch() == 1)
            .unwrap()
            .key,
    );
    let lagging = stale
        .seal_with(TOPIC, b"behind", &sealed_at(switch + GRACE + 1))
        .unwrap();
    assert_eq!(
        dashboard
            .open_delivered(TOPIC, &lagging, &at(switch + GRACE + 1))
            .unwrap_err()
            .core(),
        Some(Error::EpochExpired)
    );
    // And the new epoch's own lifetime ends the story if the next rotation is withheld.
    let err = sensor
        .seal_with(TOPIC, b"too late", &sealed_at(switch + LIFE + 1))
        .unwrap_err();
    assert_eq!(err.core(), Some(Error::KeyExpired));
}
