//! The Rust side of the Python interop tests (`tests/test_interop.py`): writes and checks
//! "interop bundles", JSON files of messages sealed by one implementation for the other to open.
//!
//! ```text
//! cargo run -p mqseal-python --example interop -- make  <bundle.json>   # Rust seals
//! cargo run -p mqseal-python --example interop -- check <bundle.json>   # Rust opens
//! ```
//!
//! A bundle holds a sender's public identity, a grant of the tree key to a recipient (with the
//! recipient's seed and the issuer's public identity, so the checker obtains the key the way a
//! real subscriber does), the sealed messages with their expected plaintext and metadata, and
//! tampered messages with the error each must be refused with.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use mqseal::{
    Delivery, Grant, Identity, OpenPolicy, Opener, Profile, PublicIdentity, SealOptions, Sealer,
    TreeKey,
};
use serde_json::{Value, json};

fn b(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("hex string")).expect("valid hex")
}

/// One message to seal: topic, payload, retain, timestamp, profile.
type Case = (&'static str, &'static [u8], bool, Option<u64>, Profile);

const CASES: &[Case] = &[
    ("plant/7/temp", b"21.5", false, None, Profile::Signed),
    (
        "plant/7/temp",
        b"21.6",
        false,
        Some(1_790_000_000),
        Profile::Signed,
    ),
    (
        "plant/7/state",
        b"{\"on\": true}",
        true,
        None,
        Profile::Signed,
    ),
    ("plant/8/caf\u{e9}", b"", false, None, Profile::Signed),
    (
        "plant/9/bulk",
        &[0xa5; 3000],
        false,
        None,
        Profile::GroupMac,
    ),
];

fn make(path: &str) {
    let sender = Identity::generate().unwrap();
    let issuer = Identity::generate().unwrap();
    let recipient = Identity::generate().unwrap();
    let key = TreeKey::generate("plant/#", 3).unwrap();
    let grant = Grant::issue(&issuer, &recipient.public(), &key).unwrap();
    let mut signed = Sealer::new(sender.clone(), Profile::Signed, 0);
    let mut group = Sealer::new(sender.clone(), Profile::GroupMac, 0);
    signed.add_key(key.clone());
    group.add_key(key.clone());
    group.set_sequence(1000, u64::MAX);
    let mut messages = Vec::new();
    for &(topic, payload, retain, timestamp, profile) in CASES {
        let sealer = match profile {
            Profile::Signed => &mut signed,
            _ => &mut group,
        };
        let seq = sealer.next_seq();
        let sealed = sealer
            .seal_with(topic, payload, &SealOptions { retain, timestamp })
            .unwrap();
        messages.push(json!({
            "topic": topic, "payload": hex::encode(payload), "retain": retain,
            "timestamp": timestamp, "profile": profile.name(), "seq": seq,
            "sealed": hex::encode(&sealed),
        }));
    }
    // Tampered copies of the first message, each refused for a known reason.
    let first = b(&messages[0]["sealed"]);
    let mut flipped = first.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    let tampered = vec![
        json!({"topic": "plant/7/temp", "sealed": hex::encode(&first), "error": "replay"}),
        // Moved to another topic: its key id names no key there (spec section 7.1 step 4).
        json!({"topic": "plant/7/other", "sealed": hex::encode(&first), "error": "key_not_found"}),
        // Its number was accepted: the replay pre-check refuses it before any signature work.
        json!({"topic": "plant/7/temp", "sealed": hex::encode(&flipped), "error": "replay"}),
        json!({"topic": "plant/7/temp", "sealed": hex::encode(&first[..10]), "error": "malformed"}),
    ];
    let bundle = json!({
        "producer": "rust",
        "sender_public": hex::encode(sender.public().to_bytes()),
        "issuer_public": hex::encode(issuer.public().to_bytes()),
        "recipient_seed": hex::encode(*recipient.seed()),
        "grant": hex::encode(grant.as_bytes()),
        "messages": messages,
        "tampered": tampered,
    });
    std::fs::write(path, serde_json::to_string_pretty(&bundle).unwrap()).unwrap();
    println!(
        "wrote {} sealed and {} tampered messages to {path}",
        CASES.len(),
        4
    );
}

fn check(path: &str) {
    let bundle: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let recipient = Identity::from_seed(b(&bundle["recipient_seed"]).try_into().unwrap());
    let issuer = PublicIdentity::from_slice(&b(&bundle["issuer_public"])).unwrap();
    let sender = PublicIdentity::from_slice(&b(&bundle["sender_public"])).unwrap();
    let key = Grant::from_bytes(&b(&bundle["grant"]))
        .and_then(|g| g.accept(&recipient, &[issuer]))
        .unwrap_or_else(|e| panic!("grant refused: {e}"));
    let mut opener = Opener::with_policy(OpenPolicy::default());
    opener.trust_group_mac_sender(sender.clone(), "#").unwrap();
    opener.add_key(key);
    let messages = bundle["messages"].as_array().unwrap();
    for m in messages {
        let topic = m["topic"].as_str().unwrap();
        let delivery = Delivery {
            retained: m["retain"].as_bool().unwrap(),
            ..Delivery::default()
        };
        let opened = opener
            .open_delivered(topic, &b(&m["sealed"]), &delivery)
            .unwrap_or_else(|e| panic!("{topic}: refused with {}", e.name()));
        assert_eq!(opened.payload, b(&m["payload"]), "{topic}: payload");
        assert_eq!(opened.sender, sender, "{topic}: sender");
        assert_eq!(opened.seq, m["seq"].as_u64().unwrap(), "{topic}: seq");
        assert_eq!(opened.retain, m["retain"].as_bool().unwrap(), "{topic}");
        assert_eq!(opened.timestamp, m["timestamp"].as_u64(), "{topic}");
        assert_eq!(opened.profile.name(), m["profile"].as_str().unwrap());
    }
    let tampered = bundle["tampered"].as_array().unwrap();
    for t in tampered {
        let topic = t["topic"].as_str().unwrap();
        let err = opener.open(topic, &b(&t["sealed"])).unwrap_err();
        assert_eq!(err.name(), t["error"].as_str().unwrap(), "{topic}");
    }
    println!(
        "{} opened, {} refused as expected (bundle from {})",
        messages.len(),
        tampered.len(),
        bundle["producer"]
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match (args.get(1).map(String::as_str), args.get(2)) {
        (Some("make"), Some(path)) => make(path),
        (Some("check"), Some(path)) => check(path),
        _ => {
            eprintln!("usage: interop make|check <bundle.json>");
            std::process::exit(2);
        }
    }
}
