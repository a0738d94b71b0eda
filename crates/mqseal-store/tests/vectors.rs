//! `spec/vectors/keystore.json`: example contents of every store file, built from fixed seeds.
//! The committed file must equal what this generator produces (code and spec cannot drift), and
//! parsing each example gives back the values it was made from.
//!
//! Regenerate after an intended format change:
//! `MQSEAL_WRITE_VECTORS=1 cargo test -p mqseal-store --test vectors`
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mqseal::{Fingerprint, Identity, Profile, ReplayWindow, TreeKey, Validity};
use mqseal_store::formats::{self, Accepted};
use mqseal_store::{
    GrantTopics, HeldKey, IssuedGrant, KeyFile, Roles, StoreError, Tombstone, TrustedPeer,
};
use serde_json::{Value, json};

const NOW: u64 = 1_800_000_000;

fn path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../spec/vectors/keystore.json")
}

fn seed(start: u8) -> [u8; 32] {
    std::array::from_fn(|i| start.wrapping_add(i as u8))
}

struct Inputs {
    sensor: Identity,
    admin: Identity,
    alice: Identity,
    device: Identity,
    keys: KeyFile,
    issued: Vec<IssuedGrant>,
    window: ReplayWindow,
    window_accepted: Vec<u64>,
    snapshot: formats::ReplaySnapshot,
    log: Vec<Accepted>,
}

fn inputs() -> Inputs {
    let sensor = Identity::from_seed(seed(0x00));
    let admin = Identity::from_seed(seed(0x20));
    let alice = Identity::from_seed(seed(0x40));
    let device = Identity::from_seed(seed(0xe0));
    let keys = KeyFile {
        keys: vec![
            // Epoch 3 was granted ahead of time (valid from NOW + 3600 for 30 days): epoch 2,
            // valid for 30 days from NOW, is retired from epoch 3's start plus one day of grace.
            HeldKey {
                key: TreeKey::from_secret("plant/7/#", 3, seed(0x70))
                    .unwrap()
                    .with_validity(
                        Validity::new(NOW + 3_600, Some(NOW + 3_600 + 2_592_000)).unwrap(),
                    ),
                not_after: None,
                issuer: Some(admin.fingerprint()),
            },
            HeldKey {
                key: TreeKey::from_secret("plant/7/#", 2, seed(0x60))
                    .unwrap()
                    .with_validity(Validity::new(0, Some(NOW + 2_592_000)).unwrap()),
                not_after: Some(NOW + 3_600 + 86_400),
                issuer: Some(admin.fingerprint()),
            },
            HeldKey {
                key: TreeKey::from_secret("plant/7/#", 1, seed(0x80)).unwrap(),
                not_after: Some(NOW + 86_400),
                issuer: Some(admin.fingerprint()),
            },
            HeldKey {
                key: TreeKey::from_secret("my room/#", 1, seed(0xa0)).unwrap(),
                not_after: None,
                issuer: None,
            },
            // Another lineage of the same filter and epoch (alice's grant): both are held.
            HeldKey {
                key: TreeKey::from_secret("my room/#", 1, seed(0xc0)).unwrap(),
                not_after: None,
                issuer: Some(alice.fingerprint()),
            },
        ],
        retired: vec![
            Tombstone {
                filter: "plant/7/#".into(),
                epoch: 0,
                issuer: Some(admin.fingerprint()),
            },
            Tombstone {
                filter: "my room/#".into(),
                epoch: 0,
                issuer: None,
            },
        ],
    };
    let issued = vec![IssuedGrant {
        root_filter: "plant/#".into(),
        epoch: 2,
        granted_filter: "plant/7/#".into(),
        recipient_name: "sensor-7".into(),
        recipient: sensor.public(),
    }];
    let window_accepted = vec![0, 1, 2, 5, 70, 2100];
    let mut window = ReplayWindow::new();
    for s in &window_accepted {
        window.accept(*s).unwrap();
    }
    let mut windows = BTreeMap::new();
    windows.insert(
        (
            sensor.fingerprint(),
            Profile::Signed,
            2,
            "plant/7/temp".to_string(),
        ),
        window.clone(),
    );
    let mut small = ReplayWindow::new();
    small.accept(3).unwrap();
    windows.insert(
        (
            device.fingerprint(),
            Profile::GroupMac,
            2,
            "plant/7/temp".to_string(),
        ),
        small.clone(),
    );
    windows.insert(
        (
            alice.fingerprint(),
            Profile::Signed,
            1,
            "my room/light".to_string(),
        ),
        small,
    );
    // Floors left by evicted windows (mqseal-v2.md 7.3): at most each sender's highest number.
    let mut floors = BTreeMap::new();
    floors.insert((sensor.fingerprint(), Profile::Signed), 40);
    floors.insert((device.fingerprint(), Profile::GroupMac), 1);
    let snapshot = formats::ReplaySnapshot { windows, floors };
    let log = vec![
        Accepted {
            sender: sensor.fingerprint(),
            profile: Profile::Signed,
            epoch: 2,
            topic: "plant/7/temp".into(),
            seq: 2101,
        },
        Accepted {
            sender: alice.fingerprint(),
            profile: Profile::Signed,
            epoch: 1,
            topic: "my room/light".into(),
            seq: 4,
        },
        Accepted {
            sender: device.fingerprint(),
            profile: Profile::GroupMac,
            epoch: 2,
            topic: "plant/7/temp".into(),
            seq: 9,
        },
    ];
    Inputs {
        sensor,
        admin,
        alice,
        device,
        keys,
        issued,
        window,
        window_accepted,
        snapshot,
        log,
    }
}

fn generate() -> Value {
    let i = inputs();
    let mut alice = TrustedPeer::new("alice", i.alice.public(), Roles::BOTH);
    alice.scope = vec!["my room/#".into(), "alice/desk".into()];
    let mut device = TrustedPeer::new("sensor-3", i.device.public(), Roles::SENDER);
    device.group_mac = vec!["plant/7/#".into()];
    let trusted = vec![
        TrustedPeer::new("admin", i.admin.public(), Roles::ISSUER),
        alice,
        device,
    ];
    let token = mqseal_store::public_token(&i.admin.public());
    let trusted_negative: Vec<Value> = [
        (
            "scope-without-issuer",
            format!("a {token} sender scope=a/#"),
        ),
        (
            "group-mac-without-sender",
            format!("a {token} issuer group-mac=a/#"),
        ),
        (
            "invalid-scope-filter",
            format!("a {token} issuer scope=a/#/b"),
        ),
        (
            "same-scope-twice",
            format!("a {token} issuer scope=a/# scope=a/#"),
        ),
        ("unknown-attribute", format!("a {token} issuer expires=1")),
        (
            "roles-after-attribute",
            format!("a {token} scope=a/# issuer"),
        ),
    ]
    .iter()
    .map(|(name, line)| {
        let err = formats::parse_trusted(Path::new("trusted"), format!("{line}\n").as_bytes())
            .unwrap_err();
        json!({"name": name, "file": format!("{line}\n"), "error": err.name()})
    })
    .collect();
    // `keys` files whose validity attributes are wrong, with valid checksums (keystore.md 5).
    let secret = hex::encode(seed(0x60));
    let keys_negative: Vec<Value> = [
        (
            "valid-until-before-not-before",
            " not-before=1800000001 valid-until=1800000000",
        ),
        ("valid-until-zero", " valid-until=0"),
        ("not-before-twice", " not-before=1 not-before=1"),
        ("valid-until-twice", " valid-until=9 valid-until=9"),
        ("not-before-leading-zero", " not-before=01"),
        ("valid-until-above-u64", " valid-until=18446744073709551616"),
    ]
    .iter()
    .map(|(name, attrs)| {
        let unsigned = format!("{}\nkey plant/# 1 {secret}{attrs}\n", formats::KEYS_MAGIC);
        let file = format!(
            "{unsigned}checksum {}\n",
            hex::encode(sha2_digest(unsigned.as_bytes()))
        );
        let err = KeyFile::parse(Path::new("keys"), file.as_bytes()).unwrap_err();
        json!({"name": name, "file": file, "error": err.name()})
    })
    .collect();
    // Re-seals a damaged snapshot body with a valid checksum.
    let resum = |mut bytes: Vec<u8>| {
        let n = bytes.len() - 32;
        let sum = sha2_digest(&bytes[..n]);
        bytes[n..].copy_from_slice(&sum);
        bytes
    };
    let empty = formats::encode_snapshot(&formats::ReplaySnapshot::default());
    let with_magic = |magic: &[u8; 8]| {
        let mut b = empty.clone();
        b[..8].copy_from_slice(magic);
        resum(b)
    };
    // Floors out of order: the snapshot's two floors swapped.
    let good = formats::encode_snapshot(&i.snapshot);
    let floors_at = good.len() - 32 - 2 * 41;
    let mut swapped = good.clone();
    swapped[floors_at..floors_at + 41].copy_from_slice(&good[floors_at + 41..floors_at + 82]);
    swapped[floors_at + 41..floors_at + 82].copy_from_slice(&good[floors_at..floors_at + 41]);
    let swapped = resum(swapped);
    let topics = GrantTopics::default();
    let admin_ed = i.admin.public().ed25519();
    let mut log_bytes = formats::LOG_MAGIC.to_vec();
    for r in &i.log {
        log_bytes.extend_from_slice(&formats::encode_record(r));
    }
    let filters: Vec<Value> = ["#", "plant/7/#", "my room/#", "50%/x", "température/#"]
        .iter()
        .map(|f| json!({"filter": f, "token": formats::encode_filter(f)}))
        .collect();
    let errors: Vec<Value> = StoreError::CODES
        .iter()
        .map(|(code, name)| json!({"code": code, "name": name}))
        .collect();
    json!({
        "description": "mqseal keystore files (spec/keystore.md) built from fixed seeds. Text files are given verbatim; binary ones in hex. Parsing each must give back the listed values.",
        "identity": {
            "description": "identity.key and identity.pub of the identity with seed `seed`, named `name`",
            "seed": hex::encode(seed(0x00)),
            "name": "sensor-7",
            "fingerprint": i.sensor.fingerprint().to_string(),
            "public": hex::encode(i.sensor.public().to_bytes()),
            "identity_key": formats::format_identity_key(&i.sensor, "sensor-7").as_str(),
            "identity_pub": formats::format_identity_pub(&i.sensor, "sensor-7"),
        },
        "trusted": {
            "file": formats::format_trusted(&trusted),
            "peers": trusted.iter().map(|p| json!({
                "name": p.name,
                "public": hex::encode(p.public.to_bytes()),
                "roles": p.roles.token(),
                "scope": p.scope,
                "group_mac": p.group_mac,
            })).collect::<Vec<_>>(),
            "negative": trusted_negative,
        },
        "keys": {
            "file": i.keys.format().as_str(),
            "keys": i.keys.keys.iter().map(|k| json!({
                "filter": k.filter(),
                "epoch": k.epoch(),
                "secret": hex::encode(*k.key.secret_bytes()),
                "not_before": k.key.validity().not_before(),
                "valid_until": k.key.validity().not_after(),
                "not_after": k.not_after,
                "issuer": k.issuer.map(|f| f.to_string()),
            })).collect::<Vec<_>>(),
            "retired": i.keys.retired.iter().map(|t| json!({"filter": t.filter, "epoch": t.epoch, "issuer": t.issuer.map(|f| f.to_string())})).collect::<Vec<_>>(),
            "negative": keys_negative,
        },
        "issued": {
            "file": formats::format_issued(&i.issued),
        },
        "seq": {
            "file": formats::format_seq(&i.sensor.fingerprint(), 8192),
            "identity": i.sensor.fingerprint().to_string(),
            "reserved": 8192,
        },
        "replay_window": {
            "accepted": i.window_accepted,
            "bytes": hex::encode(i.window.to_bytes()),
        },
        "replay_snapshot": {
            "windows": i.snapshot.windows.iter().map(|((fp, profile, epoch, topic), w)| json!({
                "sender": fp.to_string(),
                "profile": profile.name(),
                "epoch": epoch,
                "topic": topic,
                "window": hex::encode(w.to_bytes()),
            })).collect::<Vec<_>>(),
            "floors": i.snapshot.floors.iter().map(|((fp, profile), floor)| json!({
                "sender": fp.to_string(),
                "profile": profile.name(),
                "floor": floor,
            })).collect::<Vec<_>>(),
            "bytes": hex::encode(formats::encode_snapshot(&i.snapshot)),
            "negative": [{
                "name": "version-1-magic",
                "description": "an empty snapshot with the version-1 magic and a valid checksum",
                "bytes": hex::encode(with_magic(b"MQSRSNP1")),
                "error": "corrupt",
            }, {
                "name": "version-2-magic",
                "description": "an empty snapshot with the version-2 magic (no floor section) and a valid checksum",
                "bytes": hex::encode(with_magic(b"MQSRSNP2")),
                "error": "corrupt",
            }, {
                "name": "floors-out-of-order",
                "description": "the snapshot above with its two floor entries swapped, checksum recomputed",
                "bytes": hex::encode(&swapped),
                "error": "corrupt",
            }],
        },
        "replay_log": {
            "records": i.log.iter().map(|r| json!({
                "sender": r.sender.to_string(),
                "profile": r.profile.name(),
                "epoch": r.epoch,
                "topic": r.topic,
                "seq": r.seq,
            })).collect::<Vec<_>>(),
            "bytes": hex::encode(&log_bytes),
        },
        "grant_topic": {
            "prefix": topics.prefix(),
            "recipient": i.sensor.fingerprint().to_string(),
            "issuer_ed25519": hex::encode(admin_ed),
            "filter": "plant/7/#",
            "slot": formats::grant_slot(&i.sensor.fingerprint(), &admin_ed, "plant/7/#"),
            "topic": topics.topic(&i.sensor.fingerprint(), &admin_ed, "plant/7/#"),
            "subscription": topics.subscription(&i.sensor.fingerprint()),
        },
        "filter_encoding": filters,
        "store_errors": errors,
    })
}

fn sha2_digest(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

#[test]
fn committed_vectors_match_the_generator() {
    let expected = serde_json::to_string_pretty(&generate()).unwrap() + "\n";
    if std::env::var_os("MQSEAL_WRITE_VECTORS").is_some() {
        std::fs::write(path(), &expected).unwrap();
    }
    let actual = std::fs::read_to_string(path()).unwrap_or_default();
    assert!(
        actual == expected,
        "spec/vectors/keystore.json is stale: run `MQSEAL_WRITE_VECTORS=1 cargo test -p \
         mqseal-store --test vectors` and commit the spec change with it"
    );
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap()
}

#[test]
fn parsing_the_vectors_gives_back_their_values() {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path()).unwrap()).unwrap();
    let p = Path::new("vector");

    let id = &v["identity"];
    let identity = formats::parse_identity_key(p, s(&id["identity_key"]).as_bytes()).unwrap();
    assert_eq!(hex::encode(*identity.seed()), s(&id["seed"]));
    assert_eq!(identity.fingerprint().to_string(), s(&id["fingerprint"]));
    let public = formats::parse_identity_pub(p, s(&id["identity_pub"]).as_bytes()).unwrap();
    assert_eq!(
        (public.name.as_str(), hex::encode(public.public.to_bytes())),
        (s(&id["name"]), s(&id["public"]).to_string())
    );

    let peers = formats::parse_trusted(p, s(&v["trusted"]["file"]).as_bytes()).unwrap();
    for (peer, want) in peers.iter().zip(v["trusted"]["peers"].as_array().unwrap()) {
        assert_eq!(peer.name, s(&want["name"]));
        assert_eq!(hex::encode(peer.public.to_bytes()), s(&want["public"]));
        assert_eq!(peer.roles.token(), s(&want["roles"]));
        let list = |k: &str| -> Vec<String> {
            want[k]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| s(f).to_string())
                .collect()
        };
        assert_eq!(peer.scope, list("scope"));
        assert_eq!(peer.group_mac, list("group_mac"));
    }
    for n in v["trusted"]["negative"].as_array().unwrap() {
        let err = formats::parse_trusted(p, s(&n["file"]).as_bytes()).unwrap_err();
        assert_eq!(err.name(), s(&n["error"]), "{}", s(&n["name"]));
    }

    let keys = KeyFile::parse(p, s(&v["keys"]["file"]).as_bytes()).unwrap();
    let want = v["keys"]["keys"].as_array().unwrap();
    assert_eq!(keys.keys.len(), want.len());
    for w in want {
        let k = keys
            .keys
            .iter()
            .find(|k| {
                k.filter() == s(&w["filter"])
                    && u64::from(k.epoch()) == w["epoch"].as_u64().unwrap()
                    && k.issuer.map(|f| f.to_string()).as_deref() == w["issuer"].as_str()
            })
            .unwrap();
        assert_eq!(hex::encode(*k.key.secret_bytes()), s(&w["secret"]));
        assert_eq!(
            k.key.validity().not_before(),
            w["not_before"].as_u64().unwrap()
        );
        assert_eq!(k.key.validity().not_after(), w["valid_until"].as_u64());
        assert_eq!(k.not_after, w["not_after"].as_u64());
        assert_eq!(
            k.issuer.map(|f| f.to_string()).as_deref(),
            w["issuer"].as_str()
        );
    }
    assert_eq!(
        keys.retired.len(),
        v["keys"]["retired"].as_array().unwrap().len()
    );
    let negative = v["keys"]["negative"].as_array().unwrap();
    assert!(!negative.is_empty());
    for n in negative {
        let err = KeyFile::parse(p, s(&n["file"]).as_bytes()).unwrap_err();
        assert_eq!(err.name(), s(&n["error"]), "{}", s(&n["name"]));
    }

    let issued = formats::parse_issued(p, s(&v["issued"]["file"]).as_bytes()).unwrap();
    assert_eq!(
        issued[0].recipient.fingerprint().to_string(),
        s(&id["fingerprint"])
    );

    let fp = Fingerprint(
        hex::decode(s(&v["seq"]["identity"]))
            .unwrap()
            .try_into()
            .unwrap(),
    );
    assert_eq!(
        formats::parse_seq(p, s(&v["seq"]["file"]).as_bytes(), &fp).unwrap(),
        v["seq"]["reserved"].as_u64().unwrap()
    );

    let window =
        ReplayWindow::from_bytes(&hex::decode(s(&v["replay_window"]["bytes"])).unwrap()).unwrap();
    let accepted: Vec<u64> = v["replay_window"]["accepted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect();
    for seq in 0..2200 {
        let expect_seen = accepted.contains(&seq);
        let r = window.check(seq);
        if seq + 2048 <= 2100 {
            assert_eq!(r, Err(mqseal::Error::TooOld), "{seq}");
        } else {
            assert_eq!(r.is_err(), expect_seen, "{seq}");
        }
    }

    let snap =
        formats::decode_snapshot(p, &hex::decode(s(&v["replay_snapshot"]["bytes"])).unwrap())
            .unwrap();
    for w in v["replay_snapshot"]["windows"].as_array().unwrap() {
        let fp = Fingerprint(hex::decode(s(&w["sender"])).unwrap().try_into().unwrap());
        let profile = match s(&w["profile"]) {
            "signed" => Profile::Signed,
            _ => Profile::GroupMac,
        };
        let id = (
            fp,
            profile,
            w["epoch"].as_u64().unwrap() as u32,
            s(&w["topic"]).to_string(),
        );
        assert_eq!(hex::encode(snap.windows[&id].to_bytes()), s(&w["window"]));
    }
    let floors = v["replay_snapshot"]["floors"].as_array().unwrap();
    assert_eq!(floors.len(), snap.floors.len());
    for f in floors {
        let fp = Fingerprint(hex::decode(s(&f["sender"])).unwrap().try_into().unwrap());
        let profile = match s(&f["profile"]) {
            "signed" => Profile::Signed,
            _ => Profile::GroupMac,
        };
        assert_eq!(snap.floors[&(fp, profile)], f["floor"].as_u64().unwrap());
    }
    for n in v["replay_snapshot"]["negative"].as_array().unwrap() {
        let err = formats::decode_snapshot(p, &hex::decode(s(&n["bytes"])).unwrap()).unwrap_err();
        assert_eq!(err.name(), s(&n["error"]));
    }

    let log = formats::decode_log(p, &hex::decode(s(&v["replay_log"]["bytes"])).unwrap()).unwrap();
    for (r, w) in log
        .records
        .iter()
        .zip(v["replay_log"]["records"].as_array().unwrap())
    {
        assert_eq!(r.sender.to_string(), s(&w["sender"]));
        assert_eq!(r.profile.name(), s(&w["profile"]));
        assert_eq!(
            (u64::from(r.epoch), r.seq),
            (w["epoch"].as_u64().unwrap(), w["seq"].as_u64().unwrap())
        );
        assert_eq!(r.topic, s(&w["topic"]));
    }

    let g = &v["grant_topic"];
    let topics = GrantTopics::new(s(&g["prefix"])).unwrap();
    let (recipient, slot) = topics.parse(s(&g["topic"])).unwrap();
    assert_eq!(
        (recipient.to_string().as_str(), slot.as_str()),
        (s(&g["recipient"]), s(&g["slot"]))
    );
    let issuer: [u8; 32] = hex::decode(s(&g["issuer_ed25519"]))
        .unwrap()
        .try_into()
        .unwrap();
    assert_eq!(
        formats::grant_slot(&recipient, &issuer, s(&g["filter"])),
        s(&g["slot"])
    );

    for f in v["filter_encoding"].as_array().unwrap() {
        assert_eq!(
            formats::decode_filter(s(&f["token"])).as_deref(),
            Some(s(&f["filter"]))
        );
    }
}
