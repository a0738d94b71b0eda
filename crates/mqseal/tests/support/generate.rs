//! Generates every file of `spec/vectors/` (except the RFC 9180 copy) from fixed seeds.
//!
//! Shared by `tests/vectors.rs` (which checks the committed files are exactly what this produces)
//! and `examples/gen-vectors.rs` (which writes them). Everything is deterministic.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    dead_code
)]

use mqseal::vectors_support as vs;
use mqseal::{
    Delivery, Grant, Identity, Issuer, OpenPolicy, Opener, Profile, SealOptions, Sealer, TreeKey,
    Validity,
};
use serde_json::{Value, json};

/// Deterministic salts, for test vectors only: each salt byte is the next value of a counter.
/// (Real sealers draw salts from the OS or a hardware RNG; see `mqseal::RandomSource`.)
pub struct VectorSalts(pub u8);

impl mqseal::RandomSource for VectorSalts {
    fn fill(&mut self, buf: &mut [u8]) -> mqseal::Result<()> {
        for b in buf {
            *b = self.0;
            self.0 = self.0.wrapping_add(1);
        }
        Ok(())
    }
}

/// A sealer with deterministic salts starting at `salt`, first sequence number `seq`.
pub fn vector_sealer(who: &Identity, profile: Profile, seq: u64, salt: u8) -> Sealer {
    Sealer::with_random(who.clone(), profile, seq, Box::new(VectorSalts(salt)))
}

/// The files this module generates, relative to `spec/vectors/`.
pub const FILES: [&str; 6] = [
    "identities.json",
    "key-schedule.json",
    "envelopes.json",
    "envelopes-negative.json",
    "grants.json",
    "replay-window.json",
];

fn h(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// A fixed 32-byte seed: `label` repeated/truncated (readable in the vector files).
fn seed(byte: u8) -> [u8; 32] {
    let mut s = [0u8; 32];
    for (i, b) in s.iter_mut().enumerate() {
        *b = byte.wrapping_add(i as u8);
    }
    s
}

fn identity(byte: u8) -> Identity {
    Identity::from_seed(seed(byte))
}

/// A key; `not_before` and `not_after` only for a key with a validity limit (spec 4.1).
fn key_json(k: &TreeKey) -> Value {
    let mut v =
        json!({"filter": k.filter().as_str(), "epoch": k.epoch(), "secret": h(&*k.secret_bytes())});
    let validity = k.validity();
    if validity.is_limited() {
        v["not_before"] = json!(validity.not_before());
        v["not_after"] = json!(validity.not_after());
    }
    v
}

/// A policy; `validity_grace` only when it is not the default (86 400).
fn policy_json(p: &OpenPolicy) -> Value {
    let mut v = json!({
        "max_age": p.max_age,
        "max_future_skew": p.max_future_skew,
        "require_timestamp": p.require_timestamp,
    });
    if p.validity_grace != mqseal::DEFAULT_VALIDITY_GRACE {
        v["validity_grace"] = json!(p.validity_grace);
    }
    v
}

/// `key` with the validity `[not_before, not_after]`.
fn valid(key: TreeKey, not_before: u64, not_after: Option<u64>) -> TreeKey {
    key.with_validity(Validity::new(not_before, not_after).unwrap())
}

fn root_key() -> TreeKey {
    TreeKey::from_secret("plant/#", 1, seed(0x40)).unwrap()
}

pub fn generate(name: &str) -> Value {
    match name {
        "identities.json" => identities(),
        "key-schedule.json" => key_schedule(),
        "envelopes.json" => envelopes(),
        "envelopes-negative.json" => envelopes_negative(),
        "grants.json" => grants(),
        "replay-window.json" => replay_window(),
        other => panic!("unknown vector file {other}"),
    }
}

fn identities() -> Value {
    let vectors: Vec<Value> = [0x00u8, 0xa0, 0xb0, 0xc0, 0xd0]
        .iter()
        .map(|&b| {
            let s = seed(b);
            let id = Identity::from_seed(s);
            let p = id.public();
            let (ed_sk, x_sk) = vs::identity_secrets(&s);
            json!({
                "seed": h(&s),
                "ed25519_secret": h(&ed_sk),
                "x25519_secret": h(&x_sk),
                "ed25519_public": h(&p.ed25519()),
                "x25519_public": h(&p.x25519()),
                "public_identity": h(&p.to_bytes()),
                "fingerprint": h(&p.fingerprint().0),
                "sender_id": h(&p.sender_id().0),
            })
        })
        .collect();
    json!({
        "description": "Identity derivation (spec: Identities). ed25519_secret and x25519_secret are HKDF-SHA256 outputs from the seed; the public keys are the standard Ed25519 / X25519 public keys of those secrets. invalid_public_identities: parsing public_identity (as a trusted sender or issuer) must fail with error (stable code); each has one bad half, the other half is a valid key.",
        "vectors": vectors,
        "invalid_public_identities": invalid_public_identities(),
    })
}

fn hx(text: &str) -> Vec<u8> {
    hex::decode(text).unwrap()
}

/// Public identities a receiver must refuse (spec: Identities): each replaces one half of a valid
/// identity with a key that does not decode or has small order.
fn invalid_public_identities() -> Vec<Value> {
    use mqseal::Error as E;
    let good = identity(0xa0).public().to_bytes();
    let (good_ed, good_x) = good.split_at(32);
    // p + delta, little-endian, for p = 2^255 - 19 (p - 1, and p, p + 1: non-canonical 0 and 1).
    let around_p = |delta: i8| {
        let mut b = [0xffu8; 32];
        b[0] = 0xedu8.wrapping_add_signed(delta);
        b[31] = 0x7f;
        b.to_vec()
    };
    // 32 bytes: `first`, zeros, `last` (little-endian: the low byte and the one with the top bit).
    let ends = |first: u8, last: u8| {
        let mut b = [0u8; 32];
        b[0] = first;
        b[31] = last;
        b.to_vec()
    };
    let bad_ed: Vec<(&str, &str, Vec<u8>)> = vec![
        (
            "ed25519-not-on-curve",
            "Ed25519 key y = 2: (y^2 - 1) / (d y^2 + 1) is not a square mod p, so the key does not decode (RFC 8032 5.1.3)",
            ends(2, 0),
        ),
        (
            "ed25519-not-on-curve-sign-bit",
            "Ed25519 key y = 2 with the sign bit set: does not decode",
            ends(2, 0x80),
        ),
        (
            "ed25519-identity",
            "Ed25519 key y = 1: the neutral element (order 1)",
            ends(1, 0),
        ),
        (
            "ed25519-identity-sign-bit",
            "Ed25519 key y = 1 with the sign bit set (x = 0 written negative): order 1",
            ends(1, 0x80),
        ),
        (
            "ed25519-order-2",
            "Ed25519 key y = p - 1 (x = 0): order 2",
            around_p(-1),
        ),
        (
            "ed25519-order-4",
            "Ed25519 key y = 0 (x = sqrt(-1)): order 4",
            ends(0, 0),
        ),
        (
            "ed25519-order-8",
            "an Ed25519 point of order 8",
            hx("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"),
        ),
        (
            "ed25519-order-8-other",
            "another Ed25519 point of order 8",
            hx("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"),
        ),
        (
            "ed25519-non-canonical-identity",
            "Ed25519 key y = p + 1, reduced mod p: the neutral element",
            around_p(1),
        ),
        (
            "ed25519-mixed-order",
            "the valid key of this identity plus a point of order 8: decodes, has large order, but is not in the prime-order subgroup (a torsion component)",
            {
                use curve25519_dalek::edwards::CompressedEdwardsY;
                let point = |b: &[u8]| {
                    CompressedEdwardsY(b.try_into().unwrap())
                        .decompress()
                        .unwrap()
                };
                let t = point(&hx(
                    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
                ));
                (point(good_ed) + t).compress().to_bytes().to_vec()
            },
        ),
    ];
    let bad_x: Vec<(&str, &str, Vec<u8>)> = vec![
        ("x25519-zero", "X25519 key u = 0 (order 2)", ends(0, 0)),
        ("x25519-one", "X25519 key u = 1 (order 4)", ends(1, 0)),
        (
            "x25519-order-8",
            "an X25519 point of order 8",
            hx("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
        ),
        (
            "x25519-order-8-other",
            "another X25519 point of order 8",
            hx("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
        ),
        (
            "x25519-p-minus-1",
            "X25519 key u = p - 1 (low order, on the twist)",
            around_p(-1),
        ),
        (
            "x25519-p",
            "X25519 key u = p, i.e. 0 (non-canonical)",
            around_p(0),
        ),
        (
            "x25519-p-plus-1",
            "X25519 key u = p + 1, i.e. 1 (non-canonical)",
            around_p(1),
        ),
        (
            "x25519-zero-top-bit",
            "X25519 key u = 0 with the top bit set (X25519 ignores that bit, RFC 7748 section 5)",
            ends(0, 0x80),
        ),
    ];
    let mut cases: Vec<(&str, &str, Vec<u8>, mqseal::Error)> = vec![];
    for (name, description, ed) in bad_ed {
        cases.push((
            name,
            description,
            [ed, good_x.to_vec()].concat(),
            E::InvalidKey,
        ));
    }
    for (name, description, x) in bad_x {
        cases.push((
            name,
            description,
            [good_ed.to_vec(), x].concat(),
            E::InvalidKey,
        ));
    }
    cases.push((
        "too-short",
        "63 bytes: not a public identity",
        good[..63].to_vec(),
        E::Malformed,
    ));
    cases.push((
        "too-long",
        "65 bytes: not a public identity",
        [good.to_vec(), vec![0]].concat(),
        E::Malformed,
    ));
    cases
        .into_iter()
        .map(|(name, description, bytes, error)| {
            // Self-check: the core refuses it with the stated error.
            assert_eq!(
                mqseal::PublicIdentity::from_slice(&bytes).err(),
                Some(error),
                "invalid identity {name}"
            );
            json!({
                "name": name,
                "description": description,
                "public_identity": h(&bytes),
                "error": error.name(),
                "code": error.code(),
            })
        })
        .collect()
}

fn key_schedule() -> Value {
    let root = root_key();
    let sender = identity(0xa0).public();
    let topics = ["plant/7/temp", "plant", "plant//x", "plant/7/temp/raw"];
    let topic_vectors: Vec<Value> = topics
        .iter()
        .map(|topic| {
            let below = topic.strip_prefix("plant").unwrap();
            let mut node = *root.secret_bytes();
            let mut nodes = vec![];
            if let Some(levels) = below.strip_prefix('/') {
                for level in levels.split('/') {
                    node = vs::child_node_key(&node, level);
                    nodes.push(json!({"level": level, "node_key": h(&node)}));
                }
            }
            let tk = root.topic_key(topic).unwrap();
            let sender_keys: Vec<Value> = [Profile::Signed, Profile::GroupMac]
                .iter()
                .map(|&p| {
                    json!({
                        "profile": p.name(),
                        "sender_ed25519": h(&sender.ed25519()),
                        "key": h(&*tk.sender_key(p, &sender.ed25519())),
                    })
                })
                .collect();
            json!({
                "topic": topic,
                "levels_below_root": nodes,
                "topic_key": h(&*tk.secret_bytes()),
                "key_id": h(&tk.key_id()),
                "topic_digest": h(&tk.topic_digest()),
                "sender_keys": sender_keys,
            })
        })
        .collect();
    let derivations: Vec<Value> = ["plant/#", "plant/7/#", "plant/7/temp", "plant//#", "plant"]
        .iter()
        .map(|f| key_json(&root.derive(f).unwrap()))
        .collect();
    let everything = TreeKey::from_secret("#", 2, seed(0x50)).unwrap();
    json!({
        "description": "Key tree (spec: Key schedule). root is the tree key of the filter; derivations are narrower tree keys (subtree filters carry node keys, exact topics carry topic keys); topics list the node key after each level below the root's prefix, the topic key, its key id, the topic digest and sender keys. key_choice (spec 6 step 2): a sealer holding keys (added in that order; not_before and not_after present when a key has a validity limit) seals on topic at the sealing time now (the message's timestamp) with keys[chosen], or fails with error.",
        "root": key_json(&root),
        "derivations": derivations,
        "topics": topic_vectors,
        "global_root": key_json(&everything),
        "global_topics": [
            {"topic": "a/b", "topic_key": h(&*everything.topic_key("a/b").unwrap().secret_bytes())},
            {"topic": "/", "topic_key": h(&*everything.topic_key("/").unwrap().secret_bytes())},
        ],
        "key_choice": key_choice(),
    })
}

/// Spec 6 step 2: which held key a sealer uses for a topic at a sealing time.
fn key_choice() -> Vec<Value> {
    let k = |filter: &str, epoch: u32, secret: u8, nb: u64, na: Option<u64>| {
        valid(
            TreeKey::from_secret(filter, epoch, seed(secret)).unwrap(),
            nb,
            na,
        )
    };
    let e1 = k("plant/#", 1, 0x70, 0, None);
    let e2_ahead = k("plant/#", 2, 0x71, 2_000, None);
    let e3_until = k("plant/#", 3, 0x72, 0, Some(3_000));
    let root = k("#", 1, 0x73, 0, None);
    let exact_later = k("plant/7/temp", 1, 0x74, 5_000, Some(6_000));
    let e2_expired = k("plant/#", 2, 0x75, 0, Some(100));
    let e3_pending = k("plant/#", 3, 0x76, 200, None);
    let lineage_a = k("plant/#", 4, 0x77, 0, None);
    let lineage_b = k("plant/#", 4, 0x78, 0, None);
    let lab = k("lab/#", 1, 0x79, 0, None);
    let cases: Vec<(&str, Vec<&TreeKey>, u64)> = vec![
        (
            "granted ahead: before not_before the older epoch",
            vec![&e1, &e2_ahead],
            1_999,
        ),
        (
            "granted ahead: from not_before on the newer epoch",
            vec![&e1, &e2_ahead],
            2_000,
        ),
        (
            "inside the validity: not_after is inclusive",
            vec![&e3_until, &root],
            3_000,
        ),
        (
            "expired current key: a less specific valid filter",
            vec![&e3_until, &root],
            3_001,
        ),
        (
            "expired current key: never an older epoch of its filter",
            vec![&e3_until, &e1],
            3_001,
        ),
        (
            "an exact key not begun: the subtree key",
            vec![&exact_later, &e1],
            4_999,
        ),
        (
            "an exact key from its not_before: the exact key",
            vec![&exact_later, &e1],
            5_000,
        ),
        (
            "the exact key expired: the subtree key again",
            vec![&exact_later, &e1],
            6_001,
        ),
        ("only a key not begun", vec![&exact_later], 4_999),
        (
            "expired current key, the next not begun",
            vec![&e2_expired, &e3_pending],
            150,
        ),
        (
            "expired current key, the next begun",
            vec![&e2_expired, &e3_pending],
            200,
        ),
        (
            "two lineages of one filter and epoch: the first added",
            vec![&lineage_a, &lineage_b],
            0,
        ),
        ("no key covers the topic", vec![&lab], 0),
    ];
    let topic = "plant/7/temp";
    cases
        .into_iter()
        .map(|(description, keys, now)| {
            let mut sealer = vector_sealer(&identity(0xa0), Profile::Signed, 0, 0);
            for key in &keys {
                sealer.add_key((*key).clone());
            }
            let mut v = json!({
                "description": description,
                "keys": keys.iter().map(|k| key_json(k)).collect::<Vec<_>>(),
                "topic": topic,
                "now": now,
            });
            match sealer.seal_with(topic, b"x", &SealOptions::at(false, now)) {
                Ok(sealed) => {
                    let header = mqseal::inspect(&sealed).unwrap();
                    let chosen = keys
                        .iter()
                        .position(|k| {
                            k.epoch() == header.epoch
                                && k.topic_key(topic).unwrap().key_id() == header.key_id
                        })
                        .unwrap();
                    v["chosen"] = json!(chosen);
                }
                Err(e) => {
                    v["error"] = json!(e.name());
                    v["code"] = json!(e.code());
                }
            }
            v
        })
        .collect()
}

pub struct Case {
    name: &'static str,
    profile: Profile,
    topic: &'static str,
    payload: Vec<u8>,
    seq: u64,
    options: SealOptions,
    sealer_filter: &'static str,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "signed-basic",
            profile: Profile::Signed,
            topic: "plant/7/temp",
            payload: b"21.5".to_vec(),
            seq: 0,
            options: SealOptions::at(false, 1_800_000_000),
            sealer_filter: "plant/7/temp",
        },
        Case {
            name: "signed-no-timestamp",
            profile: Profile::Signed,
            topic: "plant/7/temp",
            payload: b"21.6".to_vec(),
            seq: 1,
            options: SealOptions::without_timestamp(false),
            sealer_filter: "plant/7/temp",
        },
        Case {
            name: "signed-retained-timestamp",
            profile: Profile::Signed,
            topic: "plant/7/status",
            payload: b"{\"state\":\"running\"}".to_vec(),
            seq: 300,
            options: SealOptions {
                retain: true,
                timestamp: Some(1_790_000_000),
            },
            sealer_filter: "plant/7/#",
        },
        Case {
            name: "signed-empty-payload-large-seq",
            profile: Profile::Signed,
            topic: "plant/7/heartbeat",
            payload: vec![],
            seq: u64::MAX - 1,
            options: SealOptions::default(),
            sealer_filter: "plant/#",
        },
        Case {
            name: "group-mac-basic",
            profile: Profile::GroupMac,
            topic: "plant/7/temp",
            payload: b"21.5".to_vec(),
            seq: 1,
            options: SealOptions::at(false, 1_800_000_000),
            sealer_filter: "plant/7/#",
        },
        Case {
            name: "group-mac-binary-payload",
            profile: Profile::GroupMac,
            topic: "plant/8/raw",
            payload: (0u8..=255).collect(),
            seq: 128,
            options: SealOptions::at(true, 1_800_000_001),
            sealer_filter: "plant/#",
        },
    ]
}

struct Sealed {
    bytes: Vec<u8>,
    header_len: usize,
}

fn seal_case(c: &Case) -> Sealed {
    let mut sealer = vector_sealer(&identity(0xa0), c.profile, c.seq, case_salt(c));
    sealer.add_key(root_key().derive(c.sealer_filter).unwrap());
    let bytes = sealer.seal_with(c.topic, &c.payload, &c.options).unwrap();
    let header_len = mqseal::inspect(&bytes).unwrap().encoded_len();
    Sealed { bytes, header_len }
}

/// The first salt byte of a positive case (distinct per case).
pub fn case_salt(c: &Case) -> u8 {
    (c.seq as u8)
        .wrapping_mul(3)
        .wrapping_add(c.payload.len() as u8)
        ^ 0x5a
}

fn envelopes() -> Value {
    let sender = identity(0xa0);
    let vectors: Vec<Value> = cases()
        .iter()
        .map(|c| {
            let sealed = seal_case(c);
            let header = mqseal::inspect(&sealed.bytes).unwrap();
            let key = root_key().derive(c.sealer_filter).unwrap();
            let tk = key.topic_key(c.topic).unwrap();
            let hb = &sealed.bytes[..sealed.header_len];
            let ct_end = sealed.header_len + c.payload.len();
            let mut aad = hb.to_vec();
            aad.extend_from_slice(&tk.topic_digest());
            let signature = (c.profile == Profile::Signed).then(|| &sealed.bytes[ct_end + 16..]);
            let digest = (c.profile == Profile::Signed).then(|| {
                vs::message_signature_digest(
                    hb,
                    &tk.topic_digest(),
                    &sealed.bytes[sealed.header_len..ct_end + 16],
                )
            });
            json!({
                "name": c.name,
                "profile": c.profile.name(),
                "sender_seed": h(&seed(0xa0)),
                "sender_public": h(&sender.public().to_bytes()),
                "sealer_key": key_json(&key),
                "opener_key": key_json(&root_key()),
                "topic": c.topic,
                "payload": h(&c.payload),
                "seq": header.seq,
                "epoch": header.epoch,
                "retain": header.retain,
                "timestamp": header.timestamp,
                "sender_id": h(&header.sender.0),
                "key_id": h(&header.key_id),
                "salt": h(&header.salt),
                "header": h(hb),
                "topic_key": h(&*tk.secret_bytes()),
                "topic_digest": h(&tk.topic_digest()),
                "sender_key": h(&*tk.sender_key(c.profile, &sender.public().ed25519())),
                "message_key": h(&*tk.message_key(c.profile, &sender.public().ed25519(), &header.salt)),
                "nonce": h(&vs::nonce(header.seq)),
                "aad": h(&aad),
                "ciphertext": h(&sealed.bytes[sealed.header_len..ct_end]),
                "tag": h(&sealed.bytes[ct_end..ct_end + 16]),
                "signature_digest": digest.map(|d| h(&d)),
                "signature": signature.map(h),
                "sealed": h(&sealed.bytes),
                "overhead": sealed.bytes.len() - c.payload.len(),
            })
        })
        .collect();
    // Signatures only the cofactored equation accepts (spec 7.6): R' = [r]B + T.
    let mixed: Vec<Value> = [8u8, 4, 2]
        .into_iter()
        .map(|order| {
            let topic = "plant/7/temp";
            let payload = format!("cofactored {order}").into_bytes();
            let seq = 1000 + u64::from(order);
            let sealed = mixed_order_message(&sender, &root_key(), topic, &payload, seq, order);
            let n = sealed.len() - 64;
            let mut opener = Opener::new();
            opener.trust_sender(sender.public());
            opener.add_key(root_key());
            let opened = opener.open(topic, &sealed).unwrap();
            assert_eq!(opened.payload, payload);
            json!({
                "name": format!("mixed-order-r-torsion-{order}"),
                "description": format!("R' = [r]B + T with r the RFC 8032 nonce and T = {} of order {order}; S = r + k'*a, k' = SHA-512(R' || A || M): [S]B - R' - [k']A = -T, so the cofactored equation holds (the cofactorless one does not); R' is canonical and of large order", h(&strict::encoding(&strict::torsion(order)))),
                "torsion_order": order,
                "sender_public": h(&sender.public().to_bytes()),
                "opener_key": key_json(&root_key()),
                "topic": topic,
                "payload": h(&payload),
                "seq": seq,
                "signature_digest": h(&strict::message_digest(&sealed, topic)),
                "signature": h(&sealed[n..]),
                "sealed": h(&sealed),
            })
        })
        .collect();
    json!({
        "description": "Sealed envelopes (spec: Sealed envelope). Seal: with sender_seed and sealer_key, sequence number seq, the given retain/timestamp and salt as the message's random salt, sealing payload on topic gives exactly sealed. Open: an opener trusting sender_public, holding opener_key and accepting group-mac returns payload, seq and the sender. mixed_order_r: signed messages whose signature has a mixed-order R (spec 7.6), made by hand, so not reproducible by sealing: an opener trusting sender_public (signed) and holding opener_key opens sealed on topic (live delivery) to payload and seq.",
        "vectors": vectors,
        "mixed_order_r": mixed,
    })
}

/// One negative case: an opener configuration, messages it already accepted, and the message
/// that must be refused with `error`.
struct Negative {
    name: &'static str,
    description: &'static str,
    topic: String,
    message: Vec<u8>,
    delivery: Delivery,
    trusted: Vec<mqseal::PublicIdentity>,
    /// Senders also trusted for group-mac, each on one filter (`Opener::trust_group_mac_sender`).
    group_mac: Vec<(mqseal::PublicIdentity, &'static str)>,
    keys: Vec<TreeKey>,
    policy: OpenPolicy,
    /// Keys retired with `Opener::retire_key`: (filter, epoch, not_after).
    retired: Vec<(&'static str, u32, u64)>,
    preload: Vec<(String, Vec<u8>)>,
    error: mqseal::Error,
}

fn seal_simple(
    who: &Identity,
    profile: Profile,
    key: &TreeKey,
    topic: &str,
    payload: &[u8],
    seq: u64,
    options: SealOptions,
) -> Vec<u8> {
    let salt = (seq as u8) ^ profile.code().wrapping_mul(0x80) ^ payload.len() as u8;
    let mut s = vector_sealer(who, profile, seq, salt);
    s.add_key(key.clone());
    s.seal_with(topic, payload, &options).unwrap()
}

/// A `&'static str` for a generated name or description.
fn leak(text: String) -> &'static str {
    Box::leak(text.into_boxed_str())
}

/// A signed message from `who` whose signature has a mixed-order `R` (`R' = [r]B + T`, `T` of
/// order `order`; spec 7.6): valid under the cofactored equation only.
fn mixed_order_message(
    who: &Identity,
    key: &TreeKey,
    topic: &str,
    payload: &[u8],
    seq: u64,
    order: u8,
) -> Vec<u8> {
    let sealed = seal_simple(
        who,
        Profile::Signed,
        key,
        topic,
        payload,
        seq,
        SealOptions::default(),
    );
    let digest = strict::message_digest(&sealed, topic);
    let signature =
        strict::mixed_order_r_signature(&digest, &who.seed(), &strict::torsion(order), false);
    strict::with_signature(&sealed, signature)
}

fn negatives() -> Vec<Negative> {
    use mqseal::Error as E;
    let alice = identity(0xa0);
    let mallory = identity(0xb0); // a trusted group member who tries to forge alice
    let stranger = identity(0xc0);
    let root = root_key();
    let topic = "plant/7/temp".to_string();
    let signed = seal_simple(
        &alice,
        Profile::Signed,
        &root,
        &topic,
        b"21.5",
        7,
        SealOptions::default(),
    );
    let group = seal_simple(
        &alice,
        Profile::GroupMac,
        &root,
        &topic,
        b"21.5",
        7,
        SealOptions::default(),
    );
    let base = |name, description, message: Vec<u8>, error| Negative {
        name,
        description,
        topic: topic.clone(),
        message,
        delivery: Delivery {
            now: Some(1_790_000_000),
            ..Delivery::default()
        },
        trusted: vec![alice.public(), mallory.public()],
        group_mac: vec![(alice.public(), "plant/#")],
        keys: vec![root.clone()],
        policy: OpenPolicy::default(),
        retired: vec![],
        preload: vec![],
        error,
    };
    let flip = |m: &[u8], i: usize| {
        let mut m = m.to_vec();
        m[i] ^= 0x01;
        m
    };
    // v2 header offsets: flags 0, epoch 1 (one byte here), sender id 2..6, key id 6..10,
    // salt 10..18, seq from 18; the ciphertext starts after the header.
    let hl = |m: &[u8]| mqseal::inspect(m).unwrap().encoded_len();
    let (hs, hg) = (hl(&signed), hl(&group));
    let mut out = vec![
        base("empty", "no bytes at all", vec![], E::Malformed),
        base(
            "header-only",
            "a header with no ciphertext, tag or signature",
            signed[..hs].to_vec(),
            E::Malformed,
        ),
        base(
            "truncated-signature",
            "last byte of the signature missing",
            signed[..signed.len() - 1].to_vec(),
            E::BadSignature,
        ),
        base(
            "group-mac-too-short",
            "group-mac message shorter than its tag",
            group[..group.len() - 17].to_vec(),
            E::Malformed,
        ),
        base(
            "version-1",
            "version bits 001 (v1 is no longer accepted)",
            {
                let mut m = signed.clone();
                m[0] = 0x20;
                m
            },
            E::UnsupportedVersion,
        ),
        base(
            "version-3",
            "version bits 011",
            {
                let mut m = signed.clone();
                m[0] = 0x60;
                m
            },
            E::UnsupportedVersion,
        ),
        base(
            "truncated-in-salt",
            "the message ends inside the salt",
            signed[..14].to_vec(),
            E::Malformed,
        ),
        base(
            "key-id-names-no-held-key",
            "one key id bit flipped: no held key has that id, and no other key is tried",
            flip(&signed, 6),
            E::KeyNotFound,
        ),
        base(
            "flipped-salt-signed",
            "one salt bit flipped (signed): the signature covers the salt",
            flip(&signed, 12),
            E::BadSignature,
        ),
        base(
            "flipped-salt-group-mac",
            "one salt bit flipped (group-mac): another message key",
            flip(&group, 12),
            E::AuthenticationFailed,
        ),
        base(
            "plaintext-json",
            "a plaintext payload, not a sealed message",
            b"{\"temp\": 21.5}".to_vec(),
            E::UnsupportedVersion,
        ),
        base(
            "reserved-bit",
            "a reserved flag bit set",
            flip(&signed, 0),
            E::Malformed,
        ),
        base(
            "non-minimal-epoch",
            "epoch 1 encoded as 0x81 0x00",
            {
                let mut m = vec![signed[0], 0x81, 0x00];
                m.extend_from_slice(&signed[2..]);
                m
            },
            E::Malformed,
        ),
        base(
            "flipped-ciphertext-signed",
            "one ciphertext bit flipped (signed)",
            flip(&signed, hs + 1),
            E::BadSignature,
        ),
        base(
            "flipped-tag-signed",
            "one tag bit flipped (signed)",
            flip(&signed, signed.len() - 70),
            E::BadSignature,
        ),
        base(
            "flipped-signature",
            "one signature bit flipped",
            flip(&signed, signed.len() - 1),
            E::BadSignature,
        ),
        base(
            "retain-flipped-signed",
            "retain flag set by the broker (signed)",
            {
                let mut m = signed.clone();
                m[0] |= 0x04;
                m
            },
            E::BadSignature,
        ),
        base(
            "flipped-ciphertext-group-mac",
            "one ciphertext bit flipped (group-mac)",
            flip(&group, hg + 1),
            E::AuthenticationFailed,
        ),
        base(
            "retain-flipped-group-mac",
            "retain flag set by the broker (group-mac)",
            {
                let mut m = group.clone();
                m[0] |= 0x04;
                m
            },
            E::AuthenticationFailed,
        ),
        base(
            "seq-changed-group-mac",
            "sequence number changed (group-mac)",
            {
                let mut m = group.clone();
                m[18] = 8;
                m
            },
            E::AuthenticationFailed,
        ),
        base(
            "unknown-sender",
            "sender id of an identity the opener does not trust",
            seal_simple(
                &stranger,
                Profile::Signed,
                &root,
                &topic,
                b"21.5",
                0,
                SealOptions::default(),
            ),
            E::UnknownSender,
        ),
        base(
            "insider-forgery-signed",
            "mallory, a trusted key holder, seals with her own key but writes alice's sender id",
            {
                // Mallory seals and signs as herself, then writes alice's sender id into the
                // header: she cannot produce alice's signature, so verification fails.
                let mut m = seal_simple(
                    &mallory,
                    Profile::Signed,
                    &root,
                    &topic,
                    b"forged",
                    100,
                    SealOptions::default(),
                );
                m[2..6].copy_from_slice(&alice.public().sender_id().0);
                m
            },
            E::BadSignature,
        ),
    ];
    let mut forged = base(
        "insider-forgery-group-mac",
        "in group-mac, mallory derives alice's sender key from the topic key: this is why an opener refuses group-mac from every sender it was not told accepts it (no sender trusted for group-mac: step 2)",
        forge_group_mac(&alice, &root, &topic),
        E::ProfileNotAllowed,
    );
    forged.group_mac = vec![];
    out.push(forged);
    let mut signer_only = base(
        "group-mac-from-a-signed-only-sender",
        "mallory may use group-mac, alice only signs: mallory's forgery of alice in group-mac is refused at step 4 (alice's profile policy), before any decryption",
        forge_group_mac(&alice, &root, &topic),
        E::ProfileNotAllowed,
    );
    signer_only.group_mac = vec![(mallory.public(), "plant/#")];
    out.push(signer_only);
    let mut elsewhere = base(
        "group-mac-outside-the-senders-filter",
        "alice may use group-mac on plant/8/# only; her group-mac message on plant/7/temp is refused",
        group.clone(),
        E::ProfileNotAllowed,
    );
    elsewhere.group_mac = vec![(alice.public(), "plant/8/#")];
    out.push(elsewhere);
    let mut unknown_first = base(
        "unknown-sender-before-profile-policy",
        "a group-mac message from a stranger while alice may use group-mac: unknown_sender (step 4 looks the sender up before its profile policy)",
        seal_simple(
            &stranger,
            Profile::GroupMac,
            &root,
            &topic,
            b"21.5",
            0,
            SealOptions::default(),
        ),
        E::UnknownSender,
    );
    unknown_first.group_mac = vec![(alice.public(), "plant/#")];
    out.push(unknown_first);
    let mut moved = base(
        "moved-topic-signed",
        "a valid message moved by the broker to a sibling topic: the key id is per topic, so no held key has it there",
        signed.clone(),
        E::KeyNotFound,
    );
    moved.topic = "plant/8/temp".into();
    out.push(moved);
    let mut moved_g = base(
        "moved-topic-group-mac",
        "a valid group-mac message moved to a sibling topic (key id per topic)",
        group.clone(),
        E::KeyNotFound,
    );
    moved_g.topic = "plant/8/temp".into();
    out.push(moved_g);
    let mut wildcard = base(
        "wildcard-topic",
        "opened on a topic containing a wildcard",
        signed.clone(),
        E::InvalidTopic,
    );
    wildcard.topic = "plant/+/temp".into();
    out.push(wildcard);
    let mut deep = base(
        "topic-33-levels",
        "opened on a topic of 33 levels (plant/7/temp/ then 30 levels l): more than the 32 a topic name may have (spec section 1), refused before any key derivation",
        signed.clone(),
        E::InvalidTopic,
    );
    deep.topic = format!("plant/7/temp/{}", vec!["l"; 30].join("/"));
    out.push(deep);
    let mut uncovered = base(
        "topic-not-covered",
        "the opener's only key covers plant/8/#",
        signed.clone(),
        E::KeyNotFound,
    );
    uncovered.keys = vec![root.derive("plant/8/#").unwrap()];
    out.push(uncovered);
    let mut epoch = base(
        "wrong-epoch",
        "the opener only holds epoch 2 of the key",
        signed.clone(),
        E::KeyNotFound,
    );
    epoch.keys = vec![TreeKey::from_secret("plant/#", 2, seed(0x41)).unwrap()];
    out.push(epoch);
    let mut wrong_secret = base(
        "wrong-secret-same-epoch",
        "the opener holds another secret under the same filter and epoch: its key id differs",
        signed.clone(),
        E::KeyNotFound,
    );
    wrong_secret.keys = vec![TreeKey::from_secret("plant/#", 1, seed(0x42)).unwrap()];
    out.push(wrong_secret);
    let mut not_allowed = base(
        "group-mac-not-allowed",
        "alice's own group-mac message, opener trusting her (and everyone) for signed only",
        group.clone(),
        E::ProfileNotAllowed,
    );
    not_allowed.group_mac = vec![];
    out.push(not_allowed);
    let mut retain = base(
        "retain-mismatch",
        "delivered as retained although not published retained",
        signed.clone(),
        E::RetainMismatch,
    );
    retain.delivery.retained = true;
    out.push(retain);
    let mut replay = base(
        "replay",
        "the same message delivered twice",
        signed.clone(),
        E::Replay,
    );
    replay.preload = vec![(topic.clone(), signed.clone())];
    out.push(replay);
    let mut dup = base(
        "duplicate",
        "the same message redelivered with the MQTT DUP flag",
        signed.clone(),
        E::Duplicate,
    );
    dup.preload = vec![(topic.clone(), signed.clone())];
    dup.delivery.duplicate = true;
    out.push(dup);
    let mut old = base(
        "too-old",
        "sequence number 7 after 5000 was accepted (window 2048)",
        signed.clone(),
        E::TooOld,
    );
    old.preload = vec![(
        topic.clone(),
        seal_simple(
            &alice,
            Profile::Signed,
            &root,
            &topic,
            b"later",
            5000,
            SealOptions::default(),
        ),
    )];
    out.push(old);
    let stamped = seal_simple(
        &alice,
        Profile::Signed,
        &root,
        &topic,
        b"21.5",
        9,
        SealOptions {
            retain: false,
            timestamp: Some(1_790_000_000),
        },
    );
    let mut expired = base(
        "expired",
        "timestamp 61 s old, max age 60 s",
        stamped.clone(),
        E::Expired,
    );
    expired.policy.max_age = Some(60);
    expired.delivery.now = Some(1_790_000_061);
    out.push(expired);
    let mut future = base(
        "from-the-future",
        "timestamp 61 s ahead, max future skew 60 s",
        stamped,
        E::Expired,
    );
    future.policy.max_age = Some(60);
    future.delivery.now = Some(1_789_999_939);
    out.push(future);
    let mut missing = base(
        "missing-timestamp",
        "no timestamp, opener requires one",
        signed.clone(),
        E::MissingTimestamp,
    );
    missing.policy.require_timestamp = true;
    out.push(missing);
    // Rotation (keystore.md section 11): the opener retired epoch 1 with a grace period.
    let now = 1_790_000_000;
    let mut expired_epoch = base(
        "epoch-expired",
        "the opener retired plant/# epoch 1 with not_after one second before now",
        signed.clone(),
        E::EpochExpired,
    );
    expired_epoch.retired = vec![("plant/#", 1, now - 1)];
    out.push(expired_epoch);
    let mut expired_first = base(
        "epoch-expired-before-signature",
        "a flipped signature under an epoch past its grace period: step 4 refuses it before step 5 looks at the signature",
        flip(&signed, signed.len() - 1),
        E::EpochExpired,
    );
    expired_first.retired = vec![("plant/#", 1, now - 1)];
    out.push(expired_first);
    let mut unknown_first = base(
        "unknown-sender-before-epoch-expired",
        "a stranger's message under an expired epoch: the sender lookup comes first",
        seal_simple(
            &stranger,
            Profile::Signed,
            &root,
            &topic,
            b"21.5",
            0,
            SealOptions::default(),
        ),
        E::UnknownSender,
    );
    unknown_first.retired = vec![("plant/#", 1, now - 1)];
    out.push(unknown_first);
    let mut in_grace = base(
        "retired-key-in-grace",
        "not_after is now (inclusive): the retired key still opens, so the second delivery is a replay",
        signed.clone(),
        E::Replay,
    );
    in_grace.retired = vec![("plant/#", 1, now)];
    in_grace.preload = vec![(topic.clone(), signed.clone())];
    out.push(in_grace);
    let mut live_other = base(
        "retired-key-with-live-key",
        "plant/# epoch 1 is past its grace period and plant/7/# epoch 1 (another secret) is live: the key id names plant/#, the only key tried, so the epoch has expired",
        signed.clone(),
        E::EpochExpired,
    );
    live_other.keys = vec![
        root.clone(),
        TreeKey::from_secret("plant/7/#", 1, seed(0x43)).unwrap(),
    ];
    live_other.retired = vec![("plant/#", 1, now - 1)];
    out.push(live_other);
    // Key validity (spec 4.1, 7.1 step 4): plant/# carries the message under test, plant/7/#
    // (another secret) a preloaded message right at the edge of what is accepted.
    let grace = mqseal::DEFAULT_VALIDITY_GRACE;
    let edge = |nb: u64, na: Option<u64>, sealed_at: u64| {
        let key = valid(
            TreeKey::from_secret("plant/7/#", 1, seed(0x44)).unwrap(),
            nb,
            na,
        );
        let m = seal_simple(
            &alice,
            Profile::Signed,
            &key,
            &topic,
            b"edge",
            3,
            SealOptions::at(false, sealed_at),
        );
        (key, m)
    };
    let under = |nb: u64, na: Option<u64>, sealed_at: u64, message: &dyn Fn(&[u8]) -> Vec<u8>| {
        let key = valid(root.clone(), nb, na);
        let m = seal_simple(
            &alice,
            Profile::Signed,
            &key,
            &topic,
            b"21.5",
            8,
            SealOptions::at(false, sealed_at),
        );
        (key, message(&m))
    };
    let as_is = |m: &[u8]| m.to_vec();
    let with_validity =
        |name, description, error, edge: (TreeKey, Vec<u8>), main: (TreeKey, Vec<u8>)| {
            let mut n = base(name, description, main.1, error);
            n.keys = vec![main.0, edge.0];
            n.preload = vec![(topic.clone(), edge.1)];
            n
        };
    out.push(with_validity(
        "key-expired",
        "plant/# expired one second more than the grace period (86 400 s) before now; plant/7/#, expired exactly the grace period before now, still opens",
        E::KeyExpired,
        edge(0, Some(now - grace), now - grace),
        under(0, Some(now - grace - 1), now - grace - 1, &as_is),
    ));
    out.push(with_validity(
        "key-not-yet-valid",
        "plant/# begins 61 s after now, beyond the 60 s skew; plant/7/#, beginning 60 s after now, already opens",
        E::KeyExpired,
        edge(now + 60, None, now + 60),
        under(now + 61, Some(now + 1_000), now + 61, &as_is),
    ));
    let mut short_grace = with_validity(
        "key-expired-policy-grace",
        "a receiver grace of 10 s: plant/# expired 11 s before now, plant/7/# 10 s before now",
        E::KeyExpired,
        edge(1, Some(now - 10), now - 10),
        under(1, Some(now - 11), now - 11, &as_is),
    );
    short_grace.policy.validity_grace = 10;
    out.push(short_grace);
    out.push(with_validity(
        "key-expired-before-signature",
        "a flipped signature under an expired key: step 4 refuses it before step 5 looks at the signature",
        E::KeyExpired,
        edge(0, Some(now), now),
        under(0, Some(now - grace - 1), now - grace - 1, &|m: &[u8]| flip(m, m.len() - 1)),
    ));
    let mut retired_first = with_validity(
        "epoch-expired-before-key-expired",
        "plant/# epoch 1 is both retired past its grace and expired past the validity grace: retirement is checked first",
        E::EpochExpired,
        edge(0, None, now),
        under(0, Some(now - grace - 1), now - grace - 1, &as_is),
    );
    retired_first.retired = vec![("plant/#", 1, now - 1)];
    out.push(retired_first);
    let mut stranger_first = base(
        "unknown-sender-before-key-expired",
        "a stranger's message under an expired key: the sender lookup comes first",
        seal_simple(
            &stranger,
            Profile::Signed,
            &valid(root.clone(), 0, Some(1)),
            &topic,
            b"21.5",
            0,
            SealOptions::at(false, 1),
        ),
        E::UnknownSender,
    );
    stranger_first.keys = vec![valid(root.clone(), 0, Some(1))];
    out.push(stranger_first);
    let mut no_stamp = base(
        "max-age-without-timestamp",
        "no timestamp, opener with a maximum age (which implies a timestamp)",
        signed.clone(),
        E::MissingTimestamp,
    );
    no_stamp.policy.max_age = Some(60);
    out.push(no_stamp);
    let later = seal_simple(
        &alice,
        Profile::Signed,
        &root,
        &topic,
        b"later",
        5000,
        SealOptions::default(),
    );
    let mut dup_old = base(
        "duplicate-too-old",
        "sequence number 7 with the MQTT DUP flag after 5000 was accepted: too_old, whatever the DUP flag says",
        signed.clone(),
        E::TooOld,
    );
    dup_old.preload = vec![(topic.clone(), later)];
    dup_old.delivery.duplicate = true;
    out.push(dup_old);
    let mut first_contact = base(
        "first-contact-below-high-water-mark",
        "alice's 5000 was accepted on plant/7/other; her 7 arrives live on plant/7/temp, which has no window yet: more than 2048 below her high-water mark",
        signed.clone(),
        E::TooOld,
    );
    first_contact.preload = vec![(
        "plant/7/other".into(),
        seal_simple(
            &alice,
            Profile::Signed,
            &root,
            "plant/7/other",
            b"elsewhere",
            5000,
            SealOptions::default(),
        ),
    )];
    out.push(first_contact);
    let mut replayed_forgery = base(
        "replayed-number-refused-before-the-signature",
        "an accepted number again with a broken signature: the replay pre-check at the end of step 4 refuses it before any signature work",
        flip(&signed, signed.len() - 1),
        E::Replay,
    );
    replayed_forgery.preload = vec![(topic.clone(), signed.clone())];
    out.push(replayed_forgery);
    let mut dup_forgery = base(
        "duplicate-refused-before-the-signature",
        "the same with the MQTT DUP flag: duplicate, before any signature work",
        flip(&signed, signed.len() - 1),
        E::Duplicate,
    );
    dup_forgery.preload = vec![(topic.clone(), signed.clone())];
    dup_forgery.delivery.duplicate = true;
    out.push(dup_forgery);
    // Ed25519 (spec 7.6): signatures a lax or a ZIP-215 verifier accepts, refused by the S and
    // R checks; signatures that fail the cofactored equation.
    out.push(base(
        "signature-s-plus-l",
        "a valid signature with L added to S (S >= L): lax verifiers reducing S accept it",
        strict::s_plus_l(&signed),
        E::BadSignature,
    ));
    let digest = strict::message_digest(&signed, &topic);
    for (i, (suffix, what, r)) in strict::small_order_encodings().into_iter().enumerate() {
        let message = strict::with_signature(
            &signed,
            strict::small_order_r_signature(&digest, &seed(0xa0), r),
        );
        let negative = if i == 0 {
            base(
                "signature-small-order-r",
                "R = 0100..00, the neutral element (small order), and S = k*a (k over these R bytes), made with alice's secret key: [S]B = R + [k]A, so both the cofactorless and the cofactored equation hold and a verifier without the small-order R check accepts it",
                message,
                E::BadSignature,
            )
        } else {
            let canonical = i < 8;
            base(
                leak(format!("signature-small-order-r-{suffix}")),
                leak(format!(
                    "{what}; S = k*a (k over these R bytes), made with alice's secret key: [S]B - R - [k]A = -R has small order, so the cofactored equation holds (a ZIP-215 verifier accepts it); refused because R {}",
                    if canonical {
                        "has small order"
                    } else {
                        "is not canonical (and has small order)"
                    }
                )),
                message,
                E::BadSignature,
            )
        };
        out.push(negative);
    }
    out.push(base(
        "signature-s-equals-l",
        "S = L exactly (not canonical)",
        strict::s_equals_l(&signed),
        E::BadSignature,
    ));
    out.push(base(
        "signature-r-does-not-decode",
        leak(format!(
            "R = {} (y = {}): no x satisfies the curve equation, R does not decode",
            hex::encode(strict::undecodable_r()),
            strict::undecodable_r()[0]
        )),
        strict::with_r(&signed, strict::undecodable_r()),
        E::BadSignature,
    ));
    out.push(base(
        "signature-r-non-canonical-y",
        leak(format!(
            "R = {}: y + p for a small y whose point decodes and has large order; not canonical (no one can make a valid signature with this R without its discrete logarithm, so the equation fails too)",
            hex::encode(strict::non_canonical_large_order_r())
        )),
        strict::with_r(&signed, strict::non_canonical_large_order_r()),
        E::BadSignature,
    ));
    out.push(base(
        "signature-mixed-order-r-wrong-k",
        "R' = [r]B + T (T of order 8, a mixed-order R), S = r + k*a with k hashed over [r]B instead of the R' written in the signature: [S]B - R' - [k']A has a prime-order part, so the cofactored equation fails",
        strict::with_signature(
            &signed,
            strict::mixed_order_r_signature(&digest, &seed(0xa0), &strict::torsion(8), true),
        ),
        E::BadSignature,
    ));
    let mixed = mixed_order_message(&alice, &root, &topic, b"mixed", 8, 8);
    out.push(base(
        "signature-mixed-order-r-s-plus-l",
        "the signature with a mixed-order R of the next vector's preloaded message (valid under the cofactored equation) with L added to S: S >= L",
        strict::s_plus_l(&mixed),
        E::BadSignature,
    ));
    let mut accepted = base(
        "signature-mixed-order-r-accepted-then-replayed",
        "preload: a message whose signature has a mixed-order R (R' = [r]B + T, T of order 8, S = r + k'*a with k' over R'), which only the cofactored equation accepts: it must be accepted. The same message again is a replay",
        mixed.clone(),
        E::Replay,
    );
    accepted.preload = vec![(topic.clone(), mixed)];
    out.push(accepted);
    out
}

/// Signatures made by hand for the verification rule of spec 7.6: ones a lax or a ZIP-215
/// verifier accepts and mqseal refuses (`S ≥ L`, small-order or non-canonical `R`), and ones only
/// the cofactored equation accepts (mixed-order `R`), made with the signer's secret key.
pub mod strict {
    use curve25519_dalek::constants::EIGHT_TORSION;
    use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
    use curve25519_dalek::scalar::Scalar;
    use sha2::{Digest, Sha512};

    /// The group order L, little-endian.
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];

    /// The field prime p = 2^255 - 19, little-endian.
    const P: [u8; 32] = [
        0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ];

    fn split(m: &[u8]) -> (Vec<u8>, [u8; 32], [u8; 32]) {
        let n = m.len() - 64;
        let (r, s) = (
            m[n..n + 32].try_into().unwrap(),
            m[n + 32..].try_into().unwrap(),
        );
        (m[..n].to_vec(), r, s)
    }

    fn join(body: Vec<u8>, r: [u8; 32], s: [u8; 32]) -> Vec<u8> {
        let mut m = body;
        m.extend_from_slice(&r);
        m.extend_from_slice(&s);
        m
    }

    /// Little-endian 256-bit addition (S + L < 2^256 for any S < 2^253).
    fn add_le(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
        let mut out = [0u8; 32];
        let mut carry = 0u16;
        for i in 0..32 {
            let v = u16::from(a[i]) + u16::from(b[i]) + carry;
            out[i] = v as u8;
            carry = v >> 8;
        }
        out
    }

    /// `s + L`, little-endian.
    pub fn add_l(s: &[u8; 32]) -> [u8; 32] {
        add_le(s, &L)
    }

    pub fn s_plus_l(signed: &[u8]) -> Vec<u8> {
        let (body, r, s) = split(signed);
        join(body, r, add_le(&s, &L))
    }

    pub fn s_equals_l(signed: &[u8]) -> Vec<u8> {
        let (body, r, _) = split(signed);
        join(body, r, L)
    }

    /// The message with its signature's `R` replaced (S unchanged).
    pub fn with_r(signed: &[u8], r: [u8; 32]) -> Vec<u8> {
        let (body, _, s) = split(signed);
        join(body, r, s)
    }

    /// The message with its signature replaced.
    pub fn with_signature(signed: &[u8], signature: [u8; 64]) -> Vec<u8> {
        let (body, _, _) = split(signed);
        [&body[..], &signature[..]].concat()
    }

    /// The signature digest (spec section 6 step 6) of a sealed signed message on `topic`.
    pub fn message_digest(signed: &[u8], topic: &str) -> [u8; 64] {
        let (body, _, _) = split(signed);
        let hl = mqseal::inspect(signed).unwrap().encoded_len();
        mqseal::vectors_support::message_signature_digest(
            &body[..hl],
            &mqseal::vectors_support::topic_digest(topic),
            &body[hl..],
        )
    }

    /// The signer's secret scalar `a`, RFC 8032 nonce prefix and public key `A`.
    fn signer(seed: &[u8; 32]) -> (Scalar, [u8; 32], [u8; 32]) {
        let (ed_seed, _) = mqseal::vectors_support::identity_secrets(seed);
        let expanded = ed25519_dalek::hazmat::ExpandedSecretKey::from(&ed_seed);
        let public = ed25519_dalek::SigningKey::from_bytes(&ed_seed).verifying_key();
        (expanded.scalar, expanded.hash_prefix, public.to_bytes())
    }

    fn wide(parts: &[&[u8]]) -> Scalar {
        let mut h = Sha512::new();
        for p in parts {
            h.update(p);
        }
        Scalar::from_bytes_mod_order_wide(&h.finalize().into())
    }

    /// `k = SHA-512(R || A || M) mod L` over the bytes as given.
    fn challenge(r: &[u8; 32], a: &[u8; 32], m: &[u8]) -> Scalar {
        wide(&[r, a, m])
    }

    fn signature(r: [u8; 32], s: Scalar) -> [u8; 64] {
        let mut out = [0u8; 64];
        out[..32].copy_from_slice(&r);
        out[32..].copy_from_slice(&s.to_bytes());
        out
    }

    /// `R` = the given (small-order) encoding and `S = k·a`, `k` over those bytes:
    /// `[S]B = [k]A`, so `[S]B − R − [k]A = −R` is a small-order point and both the
    /// cofactorless equation (for the identity) and the cofactored one (for every small-order
    /// point) hold. Refused only by the `R` checks of spec 7.6.
    pub fn small_order_r_signature(digest: &[u8], seed: &[u8; 32], r: [u8; 32]) -> [u8; 64] {
        let (a, _, public) = signer(seed);
        signature(r, challenge(&r, &public, digest) * a)
    }

    /// `R' = [r]B + T` for the RFC 8032 nonce `r` and a torsion point `T`, `S = r + k'·a` with
    /// `k' = SHA-512(R' || A || M)`: `[S]B − R' − [k']A = −T`, so the cofactored equation holds
    /// and the cofactorless one does not. `wrong_k` computes `k` over `[r]B` instead of the `R'`
    /// it publishes: then neither holds.
    pub fn mixed_order_r_signature(
        digest: &[u8],
        seed: &[u8; 32],
        torsion: &EdwardsPoint,
        wrong_k: bool,
    ) -> [u8; 64] {
        let (a, prefix, public) = signer(seed);
        let r = wide(&[&prefix, digest]);
        let honest_r = EdwardsPoint::mul_base(&r).compress().to_bytes();
        let mixed_r = (EdwardsPoint::mul_base(&r) + torsion).compress().to_bytes();
        let k = challenge(if wrong_k { &honest_r } else { &mixed_r }, &public, digest);
        signature(mixed_r, r + k * a)
    }

    /// The torsion point of order `order` (2, 4 or 8) used in the vectors.
    pub fn torsion(order: u8) -> EdwardsPoint {
        let t = EIGHT_TORSION[match order {
            8 => 1,
            4 => 2,
            2 => 4,
            _ => panic!("order {order}"),
        }];
        assert_eq!(order_of(&t), order);
        t
    }

    fn order_of(point: &EdwardsPoint) -> u8 {
        let mut q = *point;
        for order in [1, 2, 4] {
            if q == EdwardsPoint::default() {
                return order;
            }
            q = q + q;
        }
        8
    }

    /// Every encoding of a small-order point that decodes (spec 7.6 and section 3: y taken mod
    /// p): the 8 canonical ones, then the 6 non-canonical ones (y + p < 2^255, or x = 0 with the
    /// sign bit set). (name suffix, description, bytes).
    pub fn small_order_encodings() -> Vec<(String, String, [u8; 32])> {
        let mut points: Vec<(u8, [u8; 32])> = EIGHT_TORSION
            .iter()
            .map(|p| (order_of(p), p.compress().to_bytes()))
            .collect();
        points.sort();
        let mut canonical = Vec::new();
        let mut non_canonical = Vec::new();
        for (i, &(order, bytes)) in points.iter().enumerate() {
            let nth = points[..i].iter().filter(|(o, _)| *o == order).count() + 1;
            let (name, what) = match order {
                1 => ("identity".to_string(), "the neutral element".to_string()),
                2 => ("order-2".to_string(), "the point of order 2".to_string()),
                _ => (
                    format!("order-{order}-{nth}"),
                    format!("a point of order {order}"),
                ),
            };
            canonical.push((
                name.clone(),
                format!("R = {}, {what} (canonical)", hex::encode(bytes)),
                bytes,
            ));
            let x_is_zero = order <= 2;
            let mut variants = Vec::new();
            if x_is_zero {
                let mut b = bytes;
                b[31] |= 0x80;
                variants.push(("sign-bit", "with the sign bit set although x = 0", b));
            }
            let mut y = bytes;
            y[31] &= 0x7f;
            let y_plus_p = add_le(&y, &P);
            if y_plus_p[31] & 0x80 == 0 {
                let mut b = y_plus_p;
                b[31] |= bytes[31] & 0x80;
                variants.push(("y-plus-p", "with y + p written for y", b));
                if x_is_zero {
                    b[31] |= 0x80;
                    variants.push((
                        "y-plus-p-sign-bit",
                        "with y + p written for y and the sign bit set although x = 0",
                        b,
                    ));
                }
            }
            for (suffix, how, b) in variants {
                non_canonical.push((
                    format!("{name}-{suffix}"),
                    format!("R = {}, {what} {how} (not canonical)", hex::encode(b)),
                    b,
                ));
            }
        }
        for (_, _, b) in canonical.iter().chain(&non_canonical) {
            let point = CompressedEdwardsY(*b).decompress().unwrap();
            assert!(point.is_small_order());
        }
        assert_eq!((canonical.len(), non_canonical.len()), (8, 6));
        canonical.extend(non_canonical);
        canonical
    }

    /// The smallest y with a canonical encoding that does not decode (no x on the curve).
    pub fn undecodable_r() -> [u8; 32] {
        (2u8..)
            .map(|y| {
                let mut b = [0u8; 32];
                b[0] = y;
                b
            })
            .find(|b| CompressedEdwardsY(*b).decompress().is_none())
            .unwrap()
    }

    /// The non-canonical encoding y + p of the smallest y whose point decodes and has large
    /// order (no valid signature can have it as R without its discrete logarithm).
    pub fn non_canonical_large_order_r() -> [u8; 32] {
        (2u8..19)
            .map(|y| {
                let mut b = [0u8; 32];
                b[0] = y;
                b
            })
            .find(|b| {
                CompressedEdwardsY(*b)
                    .decompress()
                    .is_some_and(|p| !p.is_small_order())
            })
            .map(|b| add_le(&b, &P))
            .unwrap()
    }

    /// The canonical encoding of a torsion point (for the vectors' descriptions).
    pub fn encoding(point: &EdwardsPoint) -> [u8; 32] {
        point.compress().to_bytes()
    }
}

/// What an insider can do in group-mac: seal under alice's sender key (derivable by any key
/// holder) claiming to be alice.
fn forge_group_mac(alice: &Identity, root: &TreeKey, topic: &str) -> Vec<u8> {
    // The forger needs only alice's *public* identity and the topic key; we use alice's own
    // sealer here because it produces exactly the bytes a forger would compute.
    seal_simple(
        alice,
        Profile::GroupMac,
        root,
        topic,
        b"forged",
        500,
        SealOptions::default(),
    )
}

fn envelopes_negative() -> Value {
    let vectors: Vec<Value> = negatives()
        .iter()
        .map(|n| {
            // Self-check: the case really fails with the stated error.
            let mut opener = Opener::with_policy(n.policy);
            for t in &n.trusted {
                opener.trust_sender(t.clone());
            }
            for (t, f) in &n.group_mac {
                opener.trust_group_mac_sender(t.clone(), f).unwrap();
            }
            for k in &n.keys {
                opener.add_key(k.clone());
            }
            for &(filter, epoch, not_after) in &n.retired {
                opener.retire_key(filter, epoch, not_after);
            }
            for (t, m) in &n.preload {
                opener.open_delivered(t, m, &Delivery { now: n.delivery.now, ..Delivery::default() }).unwrap();
            }
            assert_eq!(
                opener.open_delivered(&n.topic, &n.message, &n.delivery).err(),
                Some(n.error),
                "negative vector {}",
                n.name
            );
            json!({
                "name": n.name,
                "description": n.description,
                "opener": {
                    "trusted": n.trusted.iter().map(|t| h(&t.to_bytes())).collect::<Vec<_>>(),
                    "group_mac": n.group_mac.iter().map(|(t, f)| json!({"sender": h(&t.to_bytes()), "filter": f})).collect::<Vec<_>>(),
                    "keys": n.keys.iter().map(key_json).collect::<Vec<_>>(),
                    "policy": policy_json(&n.policy),
                    "retired": n.retired.iter().map(|(f, e, t)| json!({"filter": f, "epoch": e, "not_after": t})).collect::<Vec<_>>(),
                },
                "preload": n.preload.iter().map(|(t, m)| json!({"topic": t, "sealed": h(m)})).collect::<Vec<_>>(),
                "topic": n.topic,
                "sealed": h(&n.message),
                "delivery": {"retained": n.delivery.retained, "duplicate": n.delivery.duplicate, "now": n.delivery.now},
                "error": n.error.name(),
                "code": n.error.code(),
            })
        })
        .collect();
    json!({
        "description": "Messages that must be refused (spec: Receiver rules). Build an opener trusting opener.trusted, holding opener.keys, also trusting each opener.group_mac sender for group-mac on its filter (Opener::trust_group_mac_sender; spec 7.1 steps 2 and 4), with opener.policy, and retire each of opener.retired (filter, epoch: accepted until not_after inclusive, then epoch_expired); open every preload message (delivery: live, same now) successfully; then opening sealed on topic with delivery must fail with error (stable code). too_large (above 268435455 bytes) has no vector here: see spec section 11.",
        "vectors": vectors,
    })
}

fn grants() -> Value {
    let admin = identity(0xd0);
    let recipient = identity(0xa0);
    let cases = [
        (root_key(), seed(0x60)),
        (root_key().derive("plant/7/#").unwrap(), seed(0x61)),
        (root_key().derive("plant/7/temp").unwrap(), seed(0x62)),
        // Validities (spec 4.1): the next epoch granted ahead of time (a start only), a key
        // with both ends, and the largest values (a one-second validity at 2^64-1).
        (
            valid(root_key().derive("plant/7/#").unwrap(), 1_800_000_000, None),
            seed(0x64),
        ),
        (
            valid(
                TreeKey::from_secret("plant/#", 2, seed(0x41)).unwrap(),
                1_700_000_000,
                Some(1_800_086_400),
            ),
            seed(0x65),
        ),
        (
            valid(
                root_key().derive("plant/7/temp").unwrap(),
                u64::MAX,
                Some(u64::MAX),
            ),
            seed(0x66),
        ),
    ];
    let positive: Vec<Value> = cases
        .iter()
        .map(|(key, ikm)| {
            let grant = Grant::issue_with_ikm(&admin, &recipient.public(), key, ikm).unwrap();
            let bytes = grant.as_bytes();
            let hp = vs::grant_hpke(&recipient.public(), ikm).unwrap();
            let filter = key.filter().as_str().as_bytes();
            let mut body = vec![key.epoch() as u8];
            body.push(filter.len() as u8);
            body.extend_from_slice(filter);
            body.extend_from_slice(&*key.secret_bytes());
            let validity = key.validity();
            body.extend(varint(validity.not_before()));
            body.extend(varint(validity.not_after().unwrap_or(0)));
            let ct_len = body.len() + 16;
            let ct_start = 1 + 32 + 32 + 32 + 1;
            json!({
                "issuer_seed": h(&seed(0xd0)),
                "issuer_public": h(&admin.public().to_bytes()),
                "recipient_seed": h(&seed(0xa0)),
                "recipient_public": h(&recipient.public().to_bytes()),
                "recipient_fingerprint": h(&recipient.fingerprint().0),
                "key": key_json(key),
                "ikm_e": h(ikm),
                "hpke": {
                    "info": h(b"mqseal/v1/grant"),
                    "enc": h(&hp.enc),
                    "shared_secret": h(&hp.shared_secret),
                    "key_schedule_context": h(&hp.key_schedule_context),
                    "secret": h(&hp.secret),
                    "key": h(&hp.key),
                    "base_nonce": h(&hp.base_nonce),
                    "exporter_secret": h(&hp.exporter_secret),
                },
                "aad": h(&bytes[..65]),
                "body": h(&body),
                "ciphertext": h(&bytes[ct_start..ct_start + ct_len]),
                "signature_digest": h(&vs::grant_signature_digest(&bytes[..bytes.len() - 64])),
                "signature": h(&bytes[bytes.len() - 64..]),
                "grant": h(bytes),
            })
        })
        .collect();
    let grant =
        Grant::issue_with_ikm(&admin, &recipient.public(), &cases[1].0, &cases[1].1).unwrap();
    let g = grant.as_bytes().to_vec();
    let flip = |i: usize| {
        let mut m = g.clone();
        m[i] ^= 1;
        m
    };
    let stranger = identity(0xc0);
    let neg = |name: &str,
               description: &str,
               grant: Vec<u8>,
               who: &Identity,
               trusted: &[&Identity],
               error: mqseal::Error| {
        let result = Grant::from_bytes(&grant)
            .and_then(|gr| gr.accept(who, &trusted.iter().map(|t| t.public()).collect::<Vec<_>>()));
        assert_eq!(result.err(), Some(error), "grant negative {name}");
        json!({
            "name": name,
            "description": description,
            "grant": h(&grant),
            "recipient_seed": h(&who.seed()[..]),
            "trusted_issuers": trusted.iter().map(|t| h(&t.public().to_bytes())).collect::<Vec<_>>(),
            "error": error.name(),
            "code": error.code(),
        })
    };
    // Well-signed grants: the issuer is trusted and the signature verifies, so acceptance gets
    // past `bad_signature` to HPKE and the body.
    let unsigned = &g[..g.len() - 64];
    let resigned_flip = |i: usize| {
        let mut m = unsigned.to_vec();
        m[i] ^= 1;
        sign_grant(&admin, &m)
    };
    let ikm = seed(0x63);
    let crafted = |body: &[u8]| crafted_grant(&admin, &recipient, &ikm, body, None, None);
    // The validity (not_before 0, no not_after) closes every body made here.
    let body_of = |epoch: &[u8], filter: &[u8], secret_len: usize| {
        let mut body = epoch.to_vec();
        body.extend(varint(filter.len() as u64));
        body.extend_from_slice(filter);
        body.extend(std::iter::repeat_n(0x5c, secret_len));
        body.extend([0, 0]);
        body
    };
    // A body of plant/7/# whose validity is the bytes `validity` instead.
    let with_validity_bytes = |filter: &[u8], validity: &[u8]| {
        let mut body = body_of(&[1], filter, 32);
        body.truncate(body.len() - 2);
        body.extend_from_slice(validity);
        body
    };
    let well_signed_body = |name: &str, description: &str, body: Vec<u8>, error| {
        let mut v = neg(
            name,
            description,
            crafted(&body),
            &recipient,
            &[&admin],
            error,
        );
        v["body"] = json!(h(&body));
        v
    };
    let other_aad = {
        let mut aad = vec![mqseal::GRANT_VERSION];
        aad.extend_from_slice(&stranger.public().ed25519());
        aad.extend_from_slice(&recipient.fingerprint().0);
        aad
    };
    let good_body = body_of(&[1], b"plant/7/#", 32);
    use mqseal::Error as E;
    let mut negative = vec![
        neg(
            "truncated",
            "last byte of the signature missing",
            g[..g.len() - 1].to_vec(),
            &recipient,
            &[&admin],
            E::Malformed,
        ),
        neg(
            "trailing-byte",
            "one byte after the signature",
            [g.clone(), vec![0]].concat(),
            &recipient,
            &[&admin],
            E::Malformed,
        ),
        neg(
            "version-2",
            "first byte 0x02",
            {
                let mut m = g.clone();
                m[0] = 2;
                m
            },
            &recipient,
            &[&admin],
            E::UnsupportedVersion,
        ),
        neg(
            "not-for-us",
            "opened by an identity it is not addressed to",
            g.clone(),
            &stranger,
            &[&admin],
            E::GrantNotForUs,
        ),
        neg(
            "untrusted-issuer",
            "the recipient trusts another issuer",
            g.clone(),
            &recipient,
            &[&stranger],
            E::UntrustedIssuer,
        ),
        neg(
            "flipped-ciphertext",
            "one ciphertext bit flipped (the signature no longer verifies)",
            flip(100),
            &recipient,
            &[&admin],
            E::BadSignature,
        ),
        neg(
            "flipped-enc",
            "one bit of enc flipped (the signature no longer verifies)",
            flip(70),
            &recipient,
            &[&admin],
            E::BadSignature,
        ),
        neg(
            "flipped-signature",
            "one signature bit flipped",
            flip(g.len() - 1),
            &recipient,
            &[&admin],
            E::BadSignature,
        ),
        neg(
            "resigned-flipped-ciphertext",
            "one ciphertext bit flipped, then signed again by the issuer: HPKE open fails",
            resigned_flip(100),
            &recipient,
            &[&admin],
            E::AuthenticationFailed,
        ),
        neg(
            "resigned-flipped-tag",
            "one bit of the HPKE tag flipped, then signed again by the issuer",
            resigned_flip(unsigned.len() - 1),
            &recipient,
            &[&admin],
            E::AuthenticationFailed,
        ),
        neg(
            "resigned-flipped-enc",
            "one bit of enc flipped, then signed again by the issuer: another shared secret, the AEAD fails",
            resigned_flip(70),
            &recipient,
            &[&admin],
            E::AuthenticationFailed,
        ),
        neg(
            "wrong-aad-issuer",
            "body sealed with the aad of another issuer, signed by the issuer named in the grant",
            crafted_grant(&admin, &recipient, &ikm, &good_body, Some(&other_aad), None),
            &recipient,
            &[&admin],
            E::AuthenticationFailed,
        ),
        neg(
            "wrong-aad-empty",
            "body sealed with an empty aad",
            crafted_grant(&admin, &recipient, &ikm, &good_body, Some(b""), None),
            &recipient,
            &[&admin],
            E::AuthenticationFailed,
        ),
        neg(
            "low-order-enc-zero",
            "enc is the X25519 point u = 0 (well signed): the DH output is all zeros",
            crafted_grant(&admin, &recipient, &ikm, &good_body, None, Some([0; 32])),
            &recipient,
            &[&admin],
            E::InvalidKey,
        ),
        neg(
            "low-order-enc-order-8",
            "enc is an X25519 point of order 8 (well signed)",
            crafted_grant(
                &admin,
                &recipient,
                &ikm,
                &good_body,
                None,
                Some(
                    hx("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800")
                        .try_into()
                        .unwrap(),
                ),
            ),
            &recipient,
            &[&admin],
            E::InvalidKey,
        ),
        neg(
            "empty",
            "no bytes at all",
            vec![],
            &recipient,
            &[&admin],
            E::Malformed,
        ),
        neg(
            "ct-shorter-than-tag",
            "len(ct) = 15, well signed: it parses, and the HPKE open (after the enc check) finds no room for the 16-byte tag",
            {
                let mut m = unsigned[..97].to_vec();
                m.extend(varint(15));
                m.extend_from_slice(&[0x33; 15]);
                sign_grant(&admin, &m)
            },
            &recipient,
            &[&admin],
            E::Malformed,
        ),
        neg(
            "signature-s-plus-l",
            "the issuer's valid signature with L added to S (strict Ed25519, spec 7.6)",
            {
                let mut m = g.clone();
                let n = m.len();
                let s_plus_l = strict::add_l(m[n - 32..].try_into().unwrap());
                m[n - 32..].copy_from_slice(&s_plus_l);
                m
            },
            &recipient,
            &[&admin],
            E::BadSignature,
        ),
    ];
    // Bodies that decrypt but do not parse (malformed) or carry an invalid filter.
    let bodies: Vec<(&str, &str, Vec<u8>, mqseal::Error)> = vec![
        ("body-empty", "an empty body", vec![], E::Malformed),
        (
            "body-short-secret",
            "a 31-byte secret",
            body_of(&[1], b"plant/7/#", 31),
            E::Malformed,
        ),
        (
            "body-trailing-byte",
            "a 33-byte secret (one byte left over after the validity)",
            body_of(&[1], b"plant/7/#", 33),
            E::Malformed,
        ),
        (
            "body-validity-missing",
            "the secret ends the body: no not_before, no not_after",
            with_validity_bytes(b"plant/7/#", &[]),
            E::Malformed,
        ),
        (
            "body-not-after-missing",
            "not_before 0, then the body ends",
            with_validity_bytes(b"plant/7/#", &[0]),
            E::Malformed,
        ),
        (
            "body-validity-trailing-byte",
            "not_before 0, not_after 0 (none), then one byte more",
            with_validity_bytes(b"plant/7/#", &[0, 0, 0]),
            E::Malformed,
        ),
        (
            "body-non-minimal-not-before",
            "not_before 0 encoded as 0x80 0x00",
            with_validity_bytes(b"plant/7/#", &[0x80, 0x00, 0]),
            E::Malformed,
        ),
        (
            "body-non-minimal-not-after",
            "not_after 1 encoded as 0x81 0x00",
            with_validity_bytes(b"plant/7/#", &[0, 0x81, 0x00]),
            E::Malformed,
        ),
        (
            "body-not-after-above-u64",
            "not_after 2^64 (ten bytes, last 0x02)",
            with_validity_bytes(
                b"plant/7/#",
                &[
                    0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02,
                ],
            ),
            E::Malformed,
        ),
        (
            "body-not-before-after-not-after",
            "not_before 1800000001, not_after 1800000000",
            with_validity_bytes(
                b"plant/7/#",
                &[varint(1_800_000_001), varint(1_800_000_000)].concat(),
            ),
            E::Malformed,
        ),
        (
            "body-bad-validity-and-invalid-filter",
            "filter a/+/b with not_before 2 > not_after 1: the validity is checked (malformed) before the filter",
            with_validity_bytes(b"a/+/b", &[2, 1]),
            E::Malformed,
        ),
        (
            "body-non-minimal-epoch",
            "epoch 1 encoded as 0x81 0x00",
            body_of(&[0x81, 0x00], b"plant/7/#", 32),
            E::Malformed,
        ),
        (
            "body-epoch-above-u32",
            "epoch 2^32",
            body_of(&varint(1 << 32), b"plant/7/#", 32),
            E::Malformed,
        ),
        (
            "body-filter-length-beyond-body",
            "filter length 200, body shorter",
            {
                let mut b = vec![1];
                b.extend(varint(200));
                b.extend_from_slice(b"plant/7/#");
                b.extend([0x5c; 32]);
                b
            },
            E::Malformed,
        ),
        (
            "body-filter-length-above-65535",
            "filter length 65536 (varint 80 80 04)",
            {
                let mut b = vec![1];
                b.extend(varint(65_536));
                b.extend([0x5c; 32]);
                b
            },
            E::Malformed,
        ),
        (
            "body-invalid-filter-and-short-secret",
            "filter a/+/b and a 31-byte secret: the body is parsed (malformed) before the filter is checked",
            body_of(&[1], b"a/+/b", 31),
            E::Malformed,
        ),
        (
            "body-non-utf8-filter-and-short-secret",
            "filter 0xff and a 31-byte secret: malformed before the filter is checked",
            body_of(&[1], &[0xff], 31),
            E::Malformed,
        ),
        (
            "filter-plus",
            "filter a/+/b",
            body_of(&[1], b"a/+/b", 32),
            E::InvalidFilter,
        ),
        (
            "filter-plus-alone",
            "filter +",
            body_of(&[1], b"+", 32),
            E::InvalidFilter,
        ),
        (
            "filter-hash-middle",
            "filter a/#/b",
            body_of(&[1], b"a/#/b", 32),
            E::InvalidFilter,
        ),
        (
            "filter-hash-in-level",
            "filter a# (# not a whole level)",
            body_of(&[1], b"a#", 32),
            E::InvalidFilter,
        ),
        (
            "filter-empty",
            "an empty filter",
            body_of(&[1], b"", 32),
            E::InvalidFilter,
        ),
        (
            "filter-nul",
            "filter a<NUL>b",
            body_of(&[1], b"a\0b", 32),
            E::InvalidFilter,
        ),
        (
            "filter-non-utf8",
            "filter bytes ff fe (not UTF-8)",
            body_of(&[1], &[0xff, 0xfe], 32),
            E::InvalidFilter,
        ),
    ];
    for (name, description, body, error) in bodies {
        negative.push(well_signed_body(name, description, body, error));
    }
    // Issuer scope (spec 8.1): the grant of cases[1] (plant/7/#) from an issuer trusted for
    // less than that; checked last, after the body.
    let scoped = [
        (
            "out-of-scope-sibling",
            "the issuer is trusted for lab/# only and grants plant/7/#",
            vec!["lab/#"],
        ),
        (
            "out-of-scope-exact-hijack",
            "the issuer is trusted for plant/7/temp only (an exact topic) and grants the subtree plant/7/#",
            vec!["plant/7/temp"],
        ),
        (
            "out-of-scope-deeper",
            "the issuer is trusted for plant/7/a/# and grants its parent plant/7/#",
            vec!["plant/7/a/#", "lab/#"],
        ),
        (
            "out-of-scope-empty",
            "the issuer is listed with an empty scope: trusted for nothing",
            vec![],
        ),
    ];
    for (name, description, scope) in scoped {
        let issuer = Issuer::new(admin.public(), &scope).unwrap();
        let result = grant.accept_from(&recipient, &[issuer]);
        assert_eq!(result.err(), Some(E::OutOfScope), "grant negative {name}");
        negative.push(json!({
            "name": name,
            "description": description,
            "grant": h(&g),
            "recipient_seed": h(&recipient.seed()[..]),
            "trusted_issuers": [h(&admin.public().to_bytes())],
            "scopes": [scope],
            "error": E::OutOfScope.name(),
            "code": E::OutOfScope.code(),
        }));
    }
    // In scope: the same grant from an issuer trusted for plant/# (an ancestor) or for exactly
    // plant/7/# is accepted.
    // Ed25519 (spec 7.6) on grants: a small-order R that both equations accept, and a
    // mixed-order R with k over the wrong R, are refused.
    let grant_digest = vs::grant_signature_digest(unsigned);
    negative.push(neg(
        "signature-small-order-r",
        "the issuer's signature with R = 0100..00 (the neutral element, small order) and S = k*a, made with the issuer's secret key: both equations hold, refused because R has small order (spec 7.6)",
        strict::with_signature(
            &g,
            strict::small_order_r_signature(&grant_digest, &seed(0xd0), {
                let mut r = [0u8; 32];
                r[0] = 1;
                r
            }),
        ),
        &recipient,
        &[&admin],
        E::BadSignature,
    ));
    negative.push(neg(
        "signature-mixed-order-r-wrong-k",
        "R' = [r]B + T (T of order 8), S = r + k*a with k hashed over [r]B instead of R': the cofactored equation fails (spec 7.6)",
        strict::with_signature(
            &g,
            strict::mixed_order_r_signature(&grant_digest, &seed(0xd0), &strict::torsion(8), true),
        ),
        &recipient,
        &[&admin],
        E::BadSignature,
    ));
    // Accepted: the issuer's signature with a mixed-order R, valid under the cofactored
    // equation only (trusted for the whole tree).
    let mixed_grants = [8u8, 2].map(|order| {
        let bytes = strict::with_signature(
            &g,
            strict::mixed_order_r_signature(&grant_digest, &seed(0xd0), &strict::torsion(order), false),
        );
        let key = Grant::from_bytes(&bytes)
            .unwrap()
            .accept(&recipient, &[admin.public()])
            .unwrap();
        assert!(key.ct_eq(&cases[1].0));
        json!({
            "name": format!("signature-mixed-order-r-torsion-{order}"),
            "description": format!("the issuer's signature with R' = [r]B + T, T of order {order}, S = r + k'*a with k' over R': valid under the cofactored equation only (spec 7.6)"),
            "grant": h(&bytes),
            "recipient_seed": h(&recipient.seed()[..]),
            "trusted_issuers": [h(&admin.public().to_bytes())],
            "scopes": [["#"]],
            "key": key_json(&key),
        })
    });
    let mut in_scope: Vec<Value> = [vec!["lab/#", "plant/#"], vec!["plant/7/#"], vec!["#"]]
        .into_iter()
        .map(|scope| {
            let issuer = Issuer::new(admin.public(), &scope).unwrap();
            let key = grant.accept_from(&recipient, &[issuer]).unwrap();
            assert!(key.ct_eq(&cases[1].0));
            json!({"grant": h(&g), "recipient_seed": h(&recipient.seed()[..]), "trusted_issuers": [h(&admin.public().to_bytes())], "scopes": [scope], "key": key_json(&key)})
        })
        .collect();
    in_scope.extend(mixed_grants);
    json!({
        "description": "Grants (spec: Grants). Positive: issue_with_ikm(issuer, recipient, key, ikm_e) gives exactly grant; the recipient (trusting issuer_public for the whole tree) accepts it and obtains key, with its validity (not_before and not_after present when the key has a limit; absent: 0 and none). in_scope: accepting grant as recipient_seed, trusting each of trusted_issuers for the filters of the same index in scopes (spec 8.1), gives key (the ones with a name carry a signature with a mixed-order R, valid under the cofactored equation of spec 7.6 only). Negative: accepting grant as recipient_seed with trusted_issuers fails with error (stable code); where scopes is present, trusted_issuers[i] is trusted only for the filters scopes[i] (else for the whole tree, #). Negatives with a body are well signed by the trusted issuer and HPKE-sealed to the recipient (body is the plaintext inside): they fail after the signature, at HPKE open or the body.",
        "positive": positive,
        "in_scope": in_scope,
        "negative": negative,
    })
}

/// LEB128 varint (spec: Conventions), also for values no valid grant carries.
fn varint(mut n: u64) -> Vec<u8> {
    let mut out = vec![];
    loop {
        let low = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(low);
            return out;
        }
        out.push(low | 0x80);
    }
}

/// Appends the issuer's grant signature (spec: Grants) to `unsigned`.
fn sign_grant(issuer: &Identity, unsigned: &[u8]) -> Vec<u8> {
    use ed25519_dalek::Signer;
    let (ed_secret, _) = vs::identity_secrets(&issuer.seed());
    let key = ed25519_dalek::SigningKey::from_bytes(&ed_secret);
    let signature = key.sign(&vs::grant_signature_digest(unsigned));
    [unsigned, &signature.to_bytes()[..]].concat()
}

/// A grant from `issuer` to `recipient` around an arbitrary `body`, HPKE-sealed with the
/// ephemeral key of `ikm` (optionally under another aad, or with another enc written in) and
/// correctly signed: what a buggy or compromised trusted issuer could send.
fn crafted_grant(
    issuer: &Identity,
    recipient: &Identity,
    ikm: &[u8; 32],
    body: &[u8],
    aad: Option<&[u8]>,
    enc: Option<[u8; 32]>,
) -> Vec<u8> {
    use chacha20poly1305::aead::{AeadInOut, KeyInit};
    use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
    let hp = vs::grant_hpke(&recipient.public(), ikm).unwrap();
    let mut bytes = vec![mqseal::GRANT_VERSION];
    bytes.extend_from_slice(&issuer.public().ed25519());
    bytes.extend_from_slice(&recipient.fingerprint().0);
    let mut ct = body.to_vec();
    let tag = ChaCha20Poly1305::new(&Key::from(hp.key))
        .encrypt_inout_detached(
            &Nonce::from(hp.base_nonce),
            aad.unwrap_or(&bytes),
            ct.as_mut_slice().into(),
        )
        .unwrap();
    ct.extend_from_slice(&tag);
    bytes.extend_from_slice(&enc.unwrap_or(hp.enc));
    bytes.extend(varint(ct.len() as u64));
    bytes.extend(ct);
    sign_grant(issuer, &bytes)
}

fn replay_window() -> Value {
    let mut w = mqseal::ReplayWindow::new();
    let seqs: [u64; 14] = [
        100, 100, 99, 102, 101, 101, 2148, 100, 101, 2147, 2147, 5000, 2952, 2953,
    ];
    let steps: Vec<Value> = seqs
        .iter()
        .map(|&s| {
            let r = w.accept(s);
            json!({"seq": s, "result": r.err().map_or("accepted", |e| e.name())})
        })
        .collect();
    json!({
        "description": "Replay window of 2048 entries (spec: Receiver rules): feed seq in order to one fresh window; each step is accepted or refused as given.",
        "window": mqseal::REPLAY_WINDOW,
        "steps": steps,
        "bounded": bounded_windows(),
    })
}

/// Section 7.3 "Bounded state, eviction floors" with the reference policy and tiny caps: each
/// step is a signed message (no timestamp) from sender `a` or `b` sealed at `seq` on `topic`
/// with the header's retain bit = `retained`, delivered with MQTT retain = `retained` and DUP =
/// `duplicate`, opened by one receiver that trusts both and holds `key`.
fn bounded_windows() -> Value {
    let (a, b) = (identity(0x51), identity(0x52));
    let key = TreeKey::from_secret("#", 1, seed(0x53)).unwrap();
    let limits = mqseal::ReplayLimits {
        per_sender: 2,
        total: 3,
    };
    let mut opener = Opener::new();
    opener.trust_sender(a.public());
    opener.trust_sender(b.public());
    opener.add_key(key.clone());
    opener.set_replay_limits(limits);
    let script: [(&str, &str, u64, bool, bool); 16] = [
        ("a", "t/1", 10, false, false),
        ("a", "t/2", 20, false, false),
        ("a", "t/3", 30, false, false), // a at its cap: t/1 (10) is evicted, a's floor 10
        ("a", "t/1", 10, false, false), // at the floor: too_old
        ("a", "t/1", 9, true, false),   // a retained delivery too
        ("a", "t/3", 22, false, false), // late, inside t/3's window, above the floor
        ("a", "t/1", 25, false, false), // new window; t/2 (20) evicted, floor 20
        ("a", "t/2", 20, false, false),
        ("a", "t/3", 22, false, true), // redelivery: duplicate
        ("b", "u/1", 5, false, false), // three windows in all
        ("b", "u/2", 6, false, false), // total cap: a holds the most; t/1 (25) goes, floor 25
        ("a", "t/3", 22, false, true), // at or below the floor: too_old before the window's rule
        ("a", "t/3", 26, false, false),
        ("a", "t/9", 26, true, false), // retained first contact above the floor; evicts b's u/1
        ("b", "u/1", 5, false, false),
        ("b", "u/1", 4, false, true),
    ];
    let steps: Vec<Value> = script
        .iter()
        .map(|&(who, topic, seq, retained, duplicate)| {
            let sender = if who == "a" { &a } else { &b };
            let mut sealer = vector_sealer(sender, Profile::Signed, seq, 0);
            sealer.add_key(key.clone());
            let options = SealOptions {
                retain: retained,
                timestamp: None,
            };
            let m = sealer.seal_with(topic, b"x", &options).unwrap();
            let delivery = Delivery {
                retained,
                duplicate,
                now: None,
            };
            let r = opener.open_delivered(topic, &m, &delivery);
            json!({
                "sender": who, "topic": topic, "seq": seq, "retained": retained,
                "duplicate": duplicate, "result": r.err().map_or("accepted", |e| e.name()),
            })
        })
        .collect();
    let floors: Vec<Value> = [("a", &a), ("b", &b)]
        .iter()
        .map(|(name, who)| {
            json!({"sender": name, "floor": opener.replay_floor(&who.fingerprint(), Profile::Signed)})
        })
        .collect();
    let windows: Vec<Value> = opener
        .replay_windows()
        .map(|(fp, _, _, topic, w)| {
            let name = if fp == a.fingerprint() { "a" } else { "b" };
            json!({"sender": name, "topic": topic, "highest": w.highest()})
        })
        .collect();
    json!({
        "description": "Bounded replay state (section 7.3) with the reference eviction policy: one receiver trusting a and b (seeds below), holding key, with the caps given; each step is a signed message without timestamp from `sender` with sequence number `seq` on `topic`, header retain bit = `retained`, delivered with MQTT retain = `retained` and DUP = `duplicate`. Afterwards the receiver holds exactly `windows` and the floors given (signed profile).",
        "senders": {"a": h(&seed(0x51)), "b": h(&seed(0x52))},
        "key": key_json(&key),
        "per_sender": limits.per_sender,
        "total": limits.total,
        "steps": steps,
        "windows": windows,
        "floors": floors,
    })
}
