//! Insiders who try to exceed their trust, reproduced against the core and shown refused (spec
//! `mqseal-v2.md` sections 7.3, 7.7 and 8.1; the keystore's side is in `rollback.rs`'s
//! neighbours and `crates/mqseal-store/tests`):
//!
//! - **A group-mac key holder forging a sender that only signs.** With v1's one global
//!   switch, any holder of the topic key could seal a `group-mac` message naming any sender.
//!   Now group-mac is accepted only from the senders a receiver trusts for it, on their filters.
//! - **A forged group-mac number locking a signed sender out.** v1 shared one replay window
//!   per (sender, epoch, topic) between the profiles, so a forged group-mac message with number
//!   2^64−2 made every real signed message `too_old`. Windows are now per profile.
//! - **A scoped issuer hijacking a topic.** Sealers prefer the most specific key, so an issuer
//!   meant for `lab/#` that grants a device an exact `plant/7/temp` key made it seal with a key
//!   the issuer chose: the issuer read it, the real receivers got `key_not_found`. Scopes
//!   refuse that grant (`out_of_scope`).
//! - **A rival issuer's key of the same filter and epoch** no longer displaces the real one in
//!   a receiver: both are held and each message's key id picks its own.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use mqseal::{Error, Grant, Identity, Issuer, Opener, Profile, Sealer, TreeKey};

fn plant_key() -> TreeKey {
    TreeKey::from_secret("plant/#", 1, [0x40; 32]).unwrap()
}

#[test]
fn a_group_mac_key_holder_cannot_forge_a_sender_that_only_signs() {
    let key = plant_key();
    let alice = Identity::from_seed([1; 32]); // signs
    let sensor = Identity::from_seed([2; 32]); // a constrained device, group-mac on plant/3/#
    let mut opener = Opener::new();
    opener.add_key(key.clone());
    opener.trust_sender(alice.public());
    opener
        .trust_group_mac_sender(sensor.public(), "plant/3/#")
        .unwrap();

    // The sensor's own group-mac traffic works where it is expected.
    let mut device = Sealer::new(sensor.clone(), Profile::GroupMac, 0);
    device.add_key(key.clone());
    let m = device.seal("plant/3/temp", b"19.0", false).unwrap();
    assert_eq!(
        opener.open("plant/3/temp", &m).unwrap().sender,
        sensor.public()
    );

    // The sensor (a key holder) forges alice in group-mac: it knows alice's public key and
    // the topic key, which is all a group-mac sender key needs.
    let mut forger = Sealer::new(alice.clone(), Profile::GroupMac, 1_000);
    forger.add_key(key.clone());
    let forged = forger
        .seal("plant/3/temp", b"open the valve", false)
        .unwrap();
    assert_eq!(
        opener.open("plant/3/temp", &forged).unwrap_err(),
        Error::ProfileNotAllowed
    );
    // Nor can it pass as itself where it is not expected to publish.
    let elsewhere = device.seal("plant/4/temp", b"19.0", false).unwrap();
    assert_eq!(
        opener.open("plant/4/temp", &elsewhere).unwrap_err(),
        Error::ProfileNotAllowed
    );
    // Alice's real signed messages are unaffected.
    let mut real = Sealer::new(alice.clone(), Profile::Signed, 5);
    real.add_key(key);
    let m = real.seal("plant/3/temp", b"close", false).unwrap();
    assert_eq!(opener.open("plant/3/temp", &m).unwrap().payload, b"close");
}

#[test]
fn a_forged_group_mac_number_cannot_lock_the_senders_signed_messages_out() {
    // The sensor may use group-mac and also signs (e.g. after a firmware update). Another key
    // holder forges it in group-mac with the highest number there is.
    let key = plant_key();
    let sensor = Identity::from_seed([2; 32]);
    let mut opener = Opener::new();
    opener.add_key(key.clone());
    opener
        .trust_group_mac_sender(sensor.public(), "plant/#")
        .unwrap();
    let mut forger = Sealer::new(sensor.clone(), Profile::GroupMac, u64::MAX - 2);
    forger.add_key(key.clone());
    let forged = forger.seal("plant/3/temp", b"x", false).unwrap();
    assert!(opener.open("plant/3/temp", &forged).is_ok()); // group-mac: forgeable by design

    // In v1 this window was shared: every real number below 2^64−2−2048 became too_old.
    let mut real = Sealer::new(sensor.clone(), Profile::Signed, 10);
    real.add_key(key);
    for i in 0..3u8 {
        let m = real.seal("plant/3/temp", &[i], false).unwrap();
        assert_eq!(opener.open("plant/3/temp", &m).unwrap().payload, [i]);
    }
    let fp = sensor.public().fingerprint();
    assert_eq!(opener.high_water_mark(&fp, Profile::Signed), Some(12));
    assert_eq!(
        opener.high_water_mark(&fp, Profile::GroupMac),
        Some(u64::MAX - 2)
    );
}

#[test]
fn a_scoped_issuer_cannot_hijack_a_topic_outside_its_scope() {
    let admin = Identity::from_seed([10; 32]);
    let lab_admin = Identity::from_seed([11; 32]);
    let device = Identity::from_seed([12; 32]);
    let real = plant_key();
    let rogue = TreeKey::from_secret("plant/7/temp", 1, [0x66; 32]).unwrap();
    let grant = Grant::issue_with_ikm(&lab_admin, &device.public(), &rogue, &[1; 32]).unwrap();

    // The defect, as v1 had it: an issuer trusted for everything. The device accepts the
    // rogue exact-topic key and its sealer prefers it over the real plant/# key.
    let unscoped = [
        Issuer::unscoped(admin.public()),
        Issuer::unscoped(lab_admin.public()),
    ];
    let hijack = grant.accept_from(&device, &unscoped).unwrap();
    let mut sealer = Sealer::new(device.clone(), Profile::Signed, 0);
    sealer.add_key(real.clone());
    sealer.add_key(hijack);
    let m = sealer.seal("plant/7/temp", b"21.5", false).unwrap();
    let mut receiver = Opener::new();
    receiver.add_key(real.clone());
    receiver.trust_sender(device.public());
    assert_eq!(
        receiver.open("plant/7/temp", &m).unwrap_err(),
        Error::KeyNotFound
    );

    // With scopes, the lab administrator's grant outside lab/# is refused, so the device
    // keeps sealing with the real key and the real receivers read it.
    let scoped = [
        Issuer::unscoped(admin.public()),
        Issuer::new(lab_admin.public(), &["lab/#"]).unwrap(),
    ];
    assert_eq!(
        grant.accept_from(&device, &scoped).unwrap_err(),
        Error::OutOfScope
    );
    let mut sealer = Sealer::new(device.clone(), Profile::Signed, 100);
    sealer.add_key(real.clone());
    let m = sealer.seal("plant/7/temp", b"21.5", false).unwrap();
    assert_eq!(receiver.open("plant/7/temp", &m).unwrap().payload, b"21.5");
    // Inside its scope the lab administrator is trusted as before.
    let lab = TreeKey::from_secret("lab/7/#", 1, [0x77; 32]).unwrap();
    let g = Grant::issue_with_ikm(&lab_admin, &device.public(), &lab, &[2; 32]).unwrap();
    assert!(g.accept_from(&device, &scoped).unwrap().ct_eq(&lab));
}

#[test]
fn a_rival_key_of_the_same_filter_and_epoch_does_not_displace_the_real_one() {
    // Two issuers trusted for plant/# each hand out a plant/# key at epoch 1. v1 replaced one
    // with the other (or made it a conflict); both are now held and both senders are read.
    let real = plant_key();
    let rival = TreeKey::from_secret("plant/#", 1, [0x41; 32]).unwrap();
    let a = Identity::from_seed([20; 32]);
    let b = Identity::from_seed([21; 32]);
    let mut opener = Opener::new();
    opener.trust_sender(a.public());
    opener.trust_sender(b.public());
    opener.add_key(real.clone());
    opener.add_key(rival.clone());
    let mut sa = Sealer::new(a, Profile::Signed, 0);
    sa.add_key(real);
    let mut sb = Sealer::new(b, Profile::Signed, 0);
    sb.add_key(rival);
    let ma = sa.seal("plant/1", b"a", false).unwrap();
    let mb = sb.seal("plant/1", b"b", false).unwrap();
    assert_eq!(opener.open("plant/1", &ma).unwrap().payload, b"a");
    assert_eq!(opener.open("plant/1", &mb).unwrap().payload, b"b");
}
