//! What each fuzz target does with its input. Every function must return normally for any input:
//! a panic (or a sanitizer report) is a bug. They also check the invariant that nothing is
//! accepted that was not sealed by a trusted sender.

use mqseal::{Delivery, Grant, Identity, OpenPolicy, Opener, Profile, Sealer, TreeKey};
use mqseal_store::formats;

/// Sender, receiver and key shared by the fixed fuzzing setup (also used to build seeds).
pub fn setup() -> (Identity, Identity, TreeKey) {
    let sender = Identity::from_seed([0xa1; 32]);
    let receiver = Identity::from_seed([0xb2; 32]);
    let key = TreeKey::from_secret("plant/#", 1, [0xc3; 32]).unwrap_or_else(|_| unreachable!());
    (sender, receiver, key)
}

/// Topics the first input byte chooses from (index `byte % len`).
pub const TOPICS: [&str; 4] = ["plant/7/temp", "plant/8/temp", "plant", "other/topic"];

/// Input: byte 0 selects topic (bits 0-1), retained (bit 2), duplicate (bit 3), group-mac trust
/// (bit 4: the sender is trusted for group-mac on `plant/#`, bit 5: on `#`); the rest is the
/// sealed message.
pub fn open_envelope(data: &[u8]) {
    let Some((&control, message)) = data.split_first() else {
        return;
    };
    let (sender, _, key) = setup();
    let mut opener = Opener::with_policy(OpenPolicy {
        max_age: Some(3600),
        ..OpenPolicy::default()
    });
    opener.trust_sender(sender.public());
    for (bit, filter) in [(0x10, "plant/#"), (0x20, "#")] {
        if control & bit != 0 {
            let _ = opener.trust_group_mac_sender(sender.public(), filter);
        }
    }
    opener.trust_sender(Identity::from_seed([0xd4; 32]).public());
    opener.add_key(key);
    let topic = TOPICS[usize::from(control & 0x03)];
    let delivery = Delivery {
        retained: control & 0x04 != 0,
        duplicate: control & 0x08 != 0,
        now: Some(1_790_000_000),
    };
    let _ = mqseal::inspect(message);
    if let Ok(opened) = opener.open_delivered(topic, message, &delivery) {
        // Whatever is accepted once is never accepted again (replay window).
        assert!(opened.payload.len() <= message.len());
        let second = opener.open_delivered(topic, message, &delivery);
        assert!(second.is_err(), "a message was accepted twice");
    }
    let mut small = [0u8; 8];
    let _ = opener.open_into(topic, message, &delivery, &mut small);
}

/// Input: a grant. Accepted only if it really is for the fixed receiver from the fixed issuer.
pub fn grant(data: &[u8]) {
    let (issuer, receiver, _) = setup();
    if let Ok(grant) = Grant::from_bytes(data) {
        let _ = grant.recipient();
        let _ = grant.accept(&receiver, &[issuer.public()]);
        let _ = grant.accept(&issuer, &[issuer.public(), receiver.public()]);
    }
}

/// Input: byte 0 selects the keystore file parser; the rest is the file's bytes.
pub fn keystore(data: &[u8]) {
    let Some((&which, bytes)) = data.split_first() else {
        return;
    };
    let path = std::path::Path::new("fuzz-input");
    let (sender, _, _) = setup();
    match which % 8 {
        0 => drop(formats::parse_identity_key(path, bytes)),
        1 => drop(formats::parse_identity_pub(path, bytes)),
        2 => drop(formats::parse_trusted(path, bytes)),
        3 => drop(mqseal_store::KeyFile::parse(path, bytes)),
        4 => drop(formats::parse_issued(path, bytes)),
        5 => drop(formats::parse_seq(path, bytes, &sender.fingerprint())),
        6 => drop(formats::decode_snapshot(path, bytes)),
        _ => drop(formats::decode_log(path, bytes)),
    }
}

/// Seeds for the corpus: valid messages of both profiles with every control byte variant.
pub fn envelope_seeds() -> Vec<Vec<u8>> {
    let (sender, _, key) = setup();
    let mut seeds = Vec::new();
    for (i, profile) in [Profile::Signed, Profile::GroupMac].into_iter().enumerate() {
        let mut sealer = Sealer::new(sender.clone(), profile, 0);
        sealer.add_key(key.clone());
        // One identity, one counter across profiles: continue where the other profile stopped.
        sealer.set_sequence(10 * i as u64, u64::MAX);
        for (j, topic) in TOPICS.iter().take(3).enumerate() {
            if let Ok(sealed) = sealer.seal(topic, b"21.5", j == 2) {
                let control = (j as u8) | if j == 2 { 0x04 } else { 0 } | ((i as u8) << 4);
                let mut seed = vec![control];
                seed.extend_from_slice(&sealed);
                seeds.push(seed);
            }
        }
    }
    seeds
}
