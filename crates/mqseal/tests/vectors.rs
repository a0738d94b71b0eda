//! Every file in `spec/vectors/`: the committed files must equal what the generator produces
//! (code and vectors cannot drift), and replaying them through the public API gives exactly the
//! expected bytes, payloads and errors.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

#[path = "support/generate.rs"]
mod generate;

use mqseal::{
    Delivery, Error, Grant, Header, Identity, Issuer, OpenPolicy, Opener, Profile, PublicIdentity,
    SealOptions, Sealer, TreeKey, Validity,
};
use serde_json::Value;

fn dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../spec/vectors")
}

fn load(file: &str) -> Value {
    let text = std::fs::read_to_string(dir().join(file)).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn b(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

fn a32(v: &Value) -> [u8; 32] {
    b(v).try_into().unwrap()
}

/// A key of a vector; `not_before` and `not_after` are present when it has a validity limit
/// (absent: 0 and none).
fn key(v: &Value) -> TreeKey {
    let validity = Validity::new(
        v["not_before"].as_u64().unwrap_or(0),
        v["not_after"].as_u64(),
    )
    .unwrap();
    TreeKey::from_secret(
        v["filter"].as_str().unwrap(),
        v["epoch"].as_u64().unwrap() as u32,
        a32(&v["secret"]),
    )
    .unwrap()
    .with_validity(validity)
}

fn public(v: &Value) -> PublicIdentity {
    PublicIdentity::from_slice(&b(v)).unwrap()
}

#[test]
fn committed_vectors_match_the_generator() {
    for file in generate::FILES {
        let expected = serde_json::to_string_pretty(&generate::generate(file)).unwrap() + "\n";
        let actual = std::fs::read_to_string(dir().join(file)).unwrap_or_default();
        assert!(
            actual == expected,
            "spec/vectors/{file} is stale: run `cargo run -p mqseal --example gen-vectors` \
             and commit the spec change with it"
        );
    }
}

#[test]
fn identities() {
    for v in load("identities.json")["vectors"].as_array().unwrap() {
        let id = Identity::from_seed(a32(&v["seed"]));
        let p = id.public();
        assert_eq!(p.to_bytes().to_vec(), b(&v["public_identity"]));
        assert_eq!(p.ed25519().to_vec(), b(&v["ed25519_public"]));
        assert_eq!(p.x25519().to_vec(), b(&v["x25519_public"]));
        assert_eq!(p.fingerprint().0.to_vec(), b(&v["fingerprint"]));
        assert_eq!(p.sender_id().0.to_vec(), b(&v["sender_id"]));
        assert_eq!(public(&v["public_identity"]), p);
    }
}

#[test]
fn invalid_public_identities() {
    let vectors = load("identities.json");
    let vectors = vectors["invalid_public_identities"].as_array().unwrap();
    for error in [Error::InvalidKey, Error::Malformed] {
        assert!(
            vectors.iter().any(|v| v["error"] == error.name()),
            "{error:?}"
        );
    }
    for v in vectors {
        let name = v["name"].as_str().unwrap();
        let bytes = b(&v["public_identity"]);
        let err = PublicIdentity::from_slice(&bytes).unwrap_err();
        assert_eq!(err.name(), v["error"].as_str().unwrap(), "{name}");
        assert_eq!(
            Some(err),
            Error::from_code(v["code"].as_u64().unwrap() as u32)
        );
        if let Ok(exact) = <[u8; 64]>::try_from(&bytes[..]) {
            assert_eq!(
                PublicIdentity::from_bytes(&exact).err(),
                Some(err),
                "{name}"
            );
        }
    }
}

#[test]
fn key_schedule() {
    let v = load("key-schedule.json");
    let root = key(&v["root"]);
    for d in v["derivations"].as_array().unwrap() {
        let derived = root.derive(d["filter"].as_str().unwrap()).unwrap();
        assert!(derived.ct_eq(&key(d)), "{d}");
    }
    let signed = v["topics"].as_array().unwrap();
    for t in signed {
        let topic = t["topic"].as_str().unwrap();
        let tk = root.topic_key(topic).unwrap();
        assert_eq!(tk.secret_bytes().to_vec(), b(&t["topic_key"]), "{topic}");
        assert_eq!(tk.topic_digest().to_vec(), b(&t["topic_digest"]));
        assert_eq!(tk.key_id().to_vec(), b(&t["key_id"]), "{topic}");
        for s in t["sender_keys"].as_array().unwrap() {
            let profile = match s["profile"].as_str().unwrap() {
                "signed" => Profile::Signed,
                _ => Profile::GroupMac,
            };
            let k = tk.sender_key(profile, &a32(&s["sender_ed25519"]));
            assert_eq!(k.to_vec(), b(&s["key"]));
        }
        // Every holder on the path derives the same topic key.
        for d in v["derivations"].as_array().unwrap() {
            let holder = key(d);
            if holder.covers(topic) {
                assert!(holder.topic_key(topic).unwrap().ct_eq(&tk));
            }
        }
    }
    let global = key(&v["global_root"]);
    for t in v["global_topics"].as_array().unwrap() {
        let tk = global.topic_key(t["topic"].as_str().unwrap()).unwrap();
        assert_eq!(tk.secret_bytes().to_vec(), b(&t["topic_key"]));
    }
    // Spec 6 step 2 through the public API: seal at the case's time and read the epoch and key
    // id back from the header.
    let choices = v["key_choice"].as_array().unwrap();
    assert!(choices.iter().any(|c| c["error"] == "key_expired"));
    for c in choices {
        let mut sealer = Sealer::new(Identity::from_seed([1; 32]), Profile::Signed, 0);
        let keys: Vec<TreeKey> = c["keys"].as_array().unwrap().iter().map(key).collect();
        for k in &keys {
            sealer.add_key(k.clone());
        }
        let topic = c["topic"].as_str().unwrap();
        let options = match c["now"].as_u64() {
            Some(now) => SealOptions::at(false, now),
            None => SealOptions::without_timestamp(false),
        };
        let result = sealer.seal_with(topic, b"x", &options);
        match c["error"].as_str() {
            Some(error) => assert_eq!(result.unwrap_err().name(), error, "{c}"),
            None => {
                let (header, _) = Header::decode(&result.unwrap()).unwrap();
                let chosen = &keys[c["chosen"].as_u64().unwrap() as usize];
                assert_eq!(header.epoch, chosen.epoch(), "{c}");
                assert_eq!(header.key_id, chosen.topic_key(topic).unwrap().key_id());
            }
        }
    }
}

fn profile(v: &Value) -> Profile {
    match v.as_str().unwrap() {
        "signed" => Profile::Signed,
        "group-mac" => Profile::GroupMac,
        other => panic!("profile {other}"),
    }
}

/// A random source that returns the salt recorded in a vector (exactly once).
struct VectorSalt(Vec<u8>);

impl mqseal::RandomSource for VectorSalt {
    fn fill(&mut self, buf: &mut [u8]) -> mqseal::Result<()> {
        if buf.len() != self.0.len() {
            return Err(Error::Randomness);
        }
        buf.copy_from_slice(&self.0);
        self.0.clear();
        Ok(())
    }
}

#[test]
fn envelopes_seal_and_open_exactly() {
    for v in load("envelopes.json")["vectors"].as_array().unwrap() {
        let name = v["name"].as_str().unwrap();
        let topic = v["topic"].as_str().unwrap();
        let payload = b(&v["payload"]);
        let sender = Identity::from_seed(a32(&v["sender_seed"]));
        // The vector's salt stands in for the random generator.
        let salt = VectorSalt(b(&v["salt"]));
        let mut sealer = Sealer::with_random(
            sender.clone(),
            profile(&v["profile"]),
            v["seq"].as_u64().unwrap(),
            Box::new(salt),
        );
        sealer.add_key(key(&v["sealer_key"]));
        let options = SealOptions {
            retain: v["retain"].as_bool().unwrap(),
            timestamp: v["timestamp"].as_u64(),
        };
        let sealed = sealer.seal_with(topic, &payload, &options).unwrap();
        assert_eq!(
            hex::encode(&sealed),
            v["sealed"].as_str().unwrap(),
            "{name}"
        );
        // The documented pieces concatenate to the message.
        let mut parts = b(&v["header"]);
        parts.extend(b(&v["ciphertext"]));
        parts.extend(b(&v["tag"]));
        if let Some(sig) = v["signature"].as_str() {
            parts.extend(hex::decode(sig).unwrap());
        }
        assert_eq!(parts, sealed, "{name}");
        // Where v2 lands (spec: Overhead): with a timestamp before 2106 and seq < 2^7, epoch < 128:
        // 104 signed, 40 group-mac; 5 bytes less without a timestamp.
        let overhead = v["overhead"].as_u64().unwrap() as usize;
        assert_eq!(overhead, sealed.len() - payload.len());
        if v["seq"].as_u64().unwrap() < 1 << 7 {
            let landed = match profile(&v["profile"]) {
                Profile::Signed => 104,
                Profile::GroupMac => 40,
            } - if options.timestamp.is_none() { 5 } else { 0 };
            assert_eq!(overhead, landed, "{name}: overhead {overhead}");
        }
        let header = mqseal::inspect(&sealed).unwrap();
        assert_eq!(header.key_id.to_vec(), b(&v["key_id"]), "{name}");
        assert_eq!(header.salt.to_vec(), b(&v["salt"]), "{name}");

        let mut opener = Opener::new();
        match profile(&v["profile"]) {
            Profile::Signed => opener.trust_sender(public(&v["sender_public"])),
            Profile::GroupMac => opener
                .trust_group_mac_sender(public(&v["sender_public"]), "#")
                .unwrap(),
        }
        opener.add_key(key(&v["opener_key"]));
        let delivery = Delivery {
            retained: options.retain,
            ..Delivery::default()
        };
        let opened = opener.open_delivered(topic, &sealed, &delivery).unwrap();
        assert_eq!(opened.payload, payload, "{name}");
        assert_eq!(opened.seq, v["seq"].as_u64().unwrap());
        assert_eq!(opened.sender, sender.public());
        assert_eq!(opened.timestamp, options.timestamp);
    }
}

#[test]
fn envelopes_negative() {
    let file = load("envelopes-negative.json");
    let vectors = file["vectors"].as_array().unwrap();
    assert!(vectors.len() >= 57);
    // Every receiver error of spec section 7.1 has a vector, except too_large (section 11: a
    // message above 268 435 455 bytes is tested by `too_large_is_checked_first` below).
    for error in [
        Error::Malformed,
        Error::UnsupportedVersion,
        Error::ProfileNotAllowed,
        Error::InvalidTopic,
        Error::UnknownSender,
        Error::KeyNotFound,
        Error::EpochExpired,
        Error::BadSignature,
        Error::AuthenticationFailed,
        Error::RetainMismatch,
        Error::MissingTimestamp,
        Error::Expired,
        Error::Replay,
        Error::Duplicate,
        Error::TooOld,
        Error::KeyExpired,
    ] {
        assert!(
            vectors.iter().any(|v| v["error"] == error.name()),
            "{error:?}"
        );
    }
    for v in vectors {
        let name = v["name"].as_str().unwrap();
        let o = &v["opener"];
        let p = &o["policy"];
        let mut opener = Opener::with_policy(OpenPolicy {
            max_age: p["max_age"].as_u64(),
            max_future_skew: p["max_future_skew"].as_u64().unwrap(),
            require_timestamp: p["require_timestamp"].as_bool().unwrap(),
            validity_grace: p["validity_grace"]
                .as_u64()
                .unwrap_or(mqseal::DEFAULT_VALIDITY_GRACE),
        });
        for t in o["trusted"].as_array().unwrap() {
            opener.trust_sender(public(t));
        }
        for g in o["group_mac"].as_array().unwrap() {
            opener
                .trust_group_mac_sender(public(&g["sender"]), g["filter"].as_str().unwrap())
                .unwrap();
        }
        for k in o["keys"].as_array().unwrap() {
            opener.add_key(key(k));
        }
        for r in o["retired"].as_array().into_iter().flatten() {
            opener.retire_key(
                r["filter"].as_str().unwrap(),
                r["epoch"].as_u64().unwrap() as u32,
                r["not_after"].as_u64().unwrap(),
            );
        }
        let d = &v["delivery"];
        let now = d["now"].as_u64();
        for pre in v["preload"].as_array().unwrap() {
            let live = Delivery {
                now,
                ..Delivery::default()
            };
            opener
                .open_delivered(pre["topic"].as_str().unwrap(), &b(&pre["sealed"]), &live)
                .unwrap();
        }
        let delivery = Delivery {
            retained: d["retained"].as_bool().unwrap(),
            duplicate: d["duplicate"].as_bool().unwrap(),
            now,
        };
        let err = opener
            .open_delivered(v["topic"].as_str().unwrap(), &b(&v["sealed"]), &delivery)
            .unwrap_err();
        assert_eq!(err.name(), v["error"].as_str().unwrap(), "{name}");
        assert_eq!(
            Some(err),
            Error::from_code(v["code"].as_u64().unwrap() as u32)
        );
    }
}

/// Spec section 11: the one receiver error without a JSON vector. A message one byte above the
/// MQTT limit is refused before any byte is read, even with a valid header in front.
#[test]
fn too_large_is_checked_first() {
    let file = load("envelopes.json");
    let v = &file["vectors"][0];
    let mut huge = vec![0u8; mqseal::MAX_SEALED_LEN + 1];
    let sealed = b(&v["sealed"]);
    huge[..sealed.len()].copy_from_slice(&sealed);
    let mut opener = Opener::new();
    opener.trust_sender(public(&v["sender_public"]));
    opener.add_key(key(&v["opener_key"]));
    let topic = v["topic"].as_str().unwrap();
    assert_eq!(opener.open(topic, &huge).unwrap_err(), Error::TooLarge);
    assert_eq!(mqseal::inspect(&huge).unwrap_err(), Error::TooLarge);
    // Not even the version is looked at first.
    huge[0] = 0x20; // version 1
    assert_eq!(opener.open(topic, &huge).unwrap_err(), Error::TooLarge);
    huge.truncate(mqseal::MAX_SEALED_LEN);
    assert_eq!(
        opener.open(topic, &huge).unwrap_err(),
        Error::UnsupportedVersion
    );
}

#[test]
fn grants() {
    let v = load("grants.json");
    for g in v["positive"].as_array().unwrap() {
        let issuer = Identity::from_seed(a32(&g["issuer_seed"]));
        let recipient = Identity::from_seed(a32(&g["recipient_seed"]));
        let k = key(&g["key"]);
        let grant =
            Grant::issue_with_ikm(&issuer, &recipient.public(), &k, &a32(&g["ikm_e"])).unwrap();
        assert_eq!(hex::encode(grant.as_bytes()), g["grant"].as_str().unwrap());
        let received = Grant::from_bytes(&b(&g["grant"])).unwrap();
        let got = received
            .accept(&recipient, &[public(&g["issuer_public"])])
            .unwrap();
        assert!(got.ct_eq(&k));
        assert_eq!(got.validity(), k.validity());
    }
    let negative = v["negative"].as_array().unwrap();
    for error in [
        Error::Malformed,
        Error::UnsupportedVersion,
        Error::GrantNotForUs,
        Error::UntrustedIssuer,
        Error::BadSignature,
        Error::InvalidKey,
        Error::AuthenticationFailed,
        Error::InvalidFilter,
        Error::OutOfScope,
    ] {
        assert!(
            negative.iter().any(|n| n["error"] == error.name()),
            "{error:?}"
        );
    }
    for g in v["in_scope"].as_array().unwrap() {
        let me = Identity::from_seed(a32(&g["recipient_seed"]));
        let got = Grant::from_bytes(&b(&g["grant"]))
            .unwrap()
            .accept_from(&me, &issuers(g))
            .unwrap();
        assert!(got.ct_eq(&key(&g["key"])));
        assert_eq!(got.validity(), key(&g["key"]).validity());
    }
    for n in negative {
        let me = Identity::from_seed(a32(&n["recipient_seed"]));
        let err = Grant::from_bytes(&b(&n["grant"]))
            .and_then(|g| g.accept_from(&me, &issuers(n)))
            .unwrap_err();
        assert_eq!(err.name(), n["error"].as_str().unwrap(), "{}", n["name"]);
        assert_eq!(
            Some(err),
            Error::from_code(n["code"].as_u64().unwrap() as u32)
        );
    }
}

/// The trusted issuers of a grant vector: `trusted_issuers[i]` for the filters `scopes[i]`, or
/// for the whole tree where the vector has no `scopes`.
fn issuers(v: &Value) -> Vec<Issuer> {
    let trusted = v["trusted_issuers"].as_array().unwrap();
    trusted
        .iter()
        .enumerate()
        .map(|(i, t)| match v["scopes"].get(i) {
            Some(scope) => {
                let filters: Vec<&str> = scope
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|f| f.as_str().unwrap())
                    .collect();
                Issuer::new(public(t), &filters).unwrap()
            }
            None => Issuer::unscoped(public(t)),
        })
        .collect()
}

#[test]
fn replay_window() {
    let v = load("replay-window.json");
    assert_eq!(v["window"].as_u64().unwrap(), mqseal::REPLAY_WINDOW);
    let mut w = mqseal::ReplayWindow::new();
    for step in v["steps"].as_array().unwrap() {
        let got = w.accept(step["seq"].as_u64().unwrap());
        let got = got.err().map_or("accepted", |e| e.name());
        assert_eq!(got, step["result"].as_str().unwrap(), "{step}");
    }
}

#[test]
fn bounded_replay_state() {
    let v = &load("replay-window.json")["bounded"];
    let who = |name: &str| Identity::from_seed(a32(&v["senders"][name]));
    let (a, b) = (who("a"), who("b"));
    let key = key(&v["key"]);
    let mut opener = Opener::new();
    opener.trust_sender(a.public());
    opener.trust_sender(b.public());
    opener.add_key(key.clone());
    opener.set_replay_limits(mqseal::ReplayLimits {
        per_sender: v["per_sender"].as_u64().unwrap() as usize,
        total: v["total"].as_u64().unwrap() as usize,
    });
    for step in v["steps"].as_array().unwrap() {
        let sender = if step["sender"] == "a" { &a } else { &b };
        let topic = step["topic"].as_str().unwrap();
        let retained = step["retained"].as_bool().unwrap();
        let mut sealer = Sealer::new(
            sender.clone(),
            Profile::Signed,
            step["seq"].as_u64().unwrap(),
        );
        sealer.add_key(key.clone());
        let options = SealOptions {
            retain: retained,
            timestamp: None,
        };
        let m = sealer.seal_with(topic, b"x", &options).unwrap();
        let delivery = Delivery {
            retained,
            duplicate: step["duplicate"].as_bool().unwrap(),
            now: None,
        };
        let got = opener.open_delivered(topic, &m, &delivery);
        let got = got.err().map_or("accepted", |e| e.name());
        assert_eq!(got, step["result"].as_str().unwrap(), "{step}");
    }
    let windows: Vec<(String, String, Option<u64>)> = opener
        .replay_windows()
        .map(|(fp, _, _, t, w)| {
            let name = if fp == a.fingerprint() { "a" } else { "b" };
            (name.to_string(), t.to_string(), w.highest())
        })
        .collect();
    let expected: Vec<(String, String, Option<u64>)> = v["windows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["sender"].as_str().unwrap().to_string(),
                w["topic"].as_str().unwrap().to_string(),
                w["highest"].as_u64(),
            )
        })
        .collect();
    assert_eq!(windows, expected);
    for f in v["floors"].as_array().unwrap() {
        let sender = if f["sender"] == "a" { &a } else { &b };
        assert_eq!(
            opener.replay_floor(&sender.fingerprint(), Profile::Signed),
            f["floor"].as_u64()
        );
    }
}

/// The signature digest of a sealed signed message on `topic` and its signature.
fn digest_and_signature(sealed: &[u8], topic: &str) -> ([u8; 64], [u8; 64]) {
    let header = mqseal::inspect(sealed).unwrap();
    let hl = header.encoded_len();
    let n = sealed.len() - 64;
    let digest = mqseal::vectors_support::message_signature_digest(
        &sealed[..hl],
        &mqseal::vectors_support::topic_digest(topic),
        &sealed[hl..n],
    );
    (digest, sealed[n..].try_into().unwrap())
}

/// A ZIP-215 verifier, for these tests only: `S < L`, `R` any encoding that decodes (y taken
/// mod p), the cofactored equation. It has none of spec 7.6's checks on `R`.
fn zip215_accepts(a: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> bool {
    use curve25519_dalek::edwards::CompressedEdwardsY;
    use curve25519_dalek::scalar::Scalar;
    use curve25519_dalek::traits::IsIdentity;
    use sha2::{Digest, Sha512};
    let r_bytes: [u8; 32] = signature[..32].try_into().unwrap();
    let (Some(r), Some(point_a)) = (
        CompressedEdwardsY(r_bytes).decompress(),
        CompressedEdwardsY(*a).decompress(),
    ) else {
        return false;
    };
    let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(
        signature[32..].try_into().unwrap(),
    )) else {
        return false;
    };
    let k = Scalar::from_bytes_mod_order_wide(
        &Sha512::new()
            .chain_update(r_bytes)
            .chain_update(a)
            .chain_update(message)
            .finalize()
            .into(),
    );
    (curve25519_dalek::EdwardsPoint::mul_base(&s) - r - point_a * k)
        .mul_by_cofactor()
        .is_identity()
}

#[test]
fn the_small_order_r_vectors_pass_lax_and_zip215_verifiers() {
    // The vectors are only worth having if verifiers without spec 7.6's R checks accept them:
    // ed25519-dalek's non-strict `verify` (cofactorless) accepts the neutral element, and a
    // ZIP-215 verifier (cofactored, non-canonical R allowed) every one of the 14 encodings.
    use ed25519_dalek::Verifier;
    let file = load("envelopes-negative.json");
    let vectors: Vec<&Value> = file["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| {
            v["name"]
                .as_str()
                .unwrap()
                .starts_with("signature-small-order-r")
        })
        .collect();
    assert_eq!(vectors.len(), 14);
    for v in vectors {
        let name = v["name"].as_str().unwrap();
        let (digest, sig) = digest_and_signature(&b(&v["sealed"]), v["topic"].as_str().unwrap());
        let alice = public(&v["opener"]["trusted"][0]);
        assert!(zip215_accepts(&alice.ed25519(), &digest, &sig), "{name}");
        let key = ed25519_dalek::VerifyingKey::from_bytes(&alice.ed25519()).unwrap();
        let sig = ed25519_dalek::Signature::from_bytes(&sig);
        assert!(key.verify_strict(&digest, &sig).is_err(), "{name}");
        if name == "signature-small-order-r" {
            assert!(
                key.verify(&digest, &sig).is_ok(),
                "lax verification accepts it"
            );
        }
    }
}

#[test]
fn mixed_order_r_envelopes_open() {
    // Valid under the cofactored equation only: a cofactorless verifier refuses every one.
    let file = load("envelopes.json");
    let vectors = file["mixed_order_r"].as_array().unwrap();
    let orders: Vec<u64> = vectors
        .iter()
        .map(|v| v["torsion_order"].as_u64().unwrap())
        .collect();
    assert_eq!(orders, [8, 4, 2]);
    for v in vectors {
        let name = v["name"].as_str().unwrap();
        let topic = v["topic"].as_str().unwrap();
        let sealed = b(&v["sealed"]);
        let sender = public(&v["sender_public"]);
        let (digest, sig) = digest_and_signature(&sealed, topic);
        assert_eq!(digest.to_vec(), b(&v["signature_digest"]), "{name}");
        assert_eq!(sig.to_vec(), b(&v["signature"]), "{name}");
        let verifying = ed25519_dalek::VerifyingKey::from_bytes(&sender.ed25519()).unwrap();
        let strict = verifying.verify_strict(&digest, &ed25519_dalek::Signature::from_bytes(&sig));
        assert!(
            strict.is_err(),
            "{name}: cofactorless verification refuses it"
        );
        assert!(zip215_accepts(&sender.ed25519(), &digest, &sig), "{name}");
        let mut opener = Opener::new();
        opener.trust_sender(sender.clone());
        opener.add_key(key(&v["opener_key"]));
        let opened = opener.open(topic, &sealed).unwrap();
        assert_eq!(opened.payload, b(&v["payload"]), "{name}");
        assert_eq!(opened.seq, v["seq"].as_u64().unwrap(), "{name}");
        assert_eq!(opened.sender, sender, "{name}");
    }
}
