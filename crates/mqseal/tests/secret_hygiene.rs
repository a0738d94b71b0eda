//! No secret byte ever appears in a `Debug` or `Display` rendering.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use mqseal::{Grant, Identity, Opener, Profile, Sealer, TreeKey};

/// Renders `bytes` as lowercase hex and as Rust's `[1, 2, …]` debug list, and checks neither
/// appears (even partially: any 4 consecutive bytes) in `text`.
fn assert_no_secret(text: &str, secret: &[u8]) {
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    for window in hex.as_bytes().chunks(8).filter(|c| c.len() == 8) {
        let w = std::str::from_utf8(window).unwrap();
        assert!(!text.contains(w), "secret hex {w} leaked in {text}");
    }
    let list = format!("{:?}", &secret[..4]);
    assert!(
        !text.contains(&list[1..list.len() - 1]),
        "secret bytes leaked in {text}"
    );
}

#[test]
fn debug_output_holds_no_secret() {
    let seed = [0x5c; 32];
    let id = Identity::from_seed(seed);
    let key = TreeKey::from_secret("a/#", 1, [0x6d; 32]).unwrap();
    let topic_key = key.topic_key("a/b").unwrap();
    let mut sealer = Sealer::new(id.clone(), Profile::Signed, 0);
    sealer.add_key(key.clone());
    let mut opener = Opener::new();
    opener.add_key(key.clone());
    opener.trust_sender(id.public());
    let grant = Grant::issue(&id, &id.public(), &key).unwrap();

    let renderings = [
        format!("{id:?}"),
        format!("{key:?}"),
        format!("{topic_key:?}"),
        format!("{sealer:?}"),
        format!("{opener:?}"),
        format!("{grant:?}"),
    ];
    let derived_secret = *topic_key.secret_bytes();
    let (ed, x) = mqseal::vectors_support::identity_secrets(&seed);
    for text in &renderings {
        for secret in [&seed[..], &[0x6d; 32], &derived_secret, &ed, &x] {
            assert_no_secret(text, secret);
        }
    }
    // The public fingerprint is what identifies things instead.
    assert!(renderings[0].contains(&id.fingerprint().to_string()));
}
