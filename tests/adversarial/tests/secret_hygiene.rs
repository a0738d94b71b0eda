//! Secret hygiene across the crates: no key byte in any `Debug`/`Display` rendering (core,
//! keystore, rumqttc wrapper, connection failures, the CLI's output), no password either;
//! secret files written 0600 and group/world-accessible ones refused with the fix; secrets
//! zeroized on drop where the type system can tell. (Python `repr`: bindings/python/tests.)
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use mqseal::{Grant, Identity, OpenPolicy, Opener, Profile, Sealer, TopicKey, TreeKey};
use mqseal_broker_tests::{Mosquitto, MosquittoConfig, notice};
use mqseal_rumqttc::{ConnectOptions, Event, SealedClient};
use mqseal_store::{Roles, Store, StoreError, StoreOptions, layout};
use zeroize::{ZeroizeOnDrop, Zeroizing};

/// 32 pseudo-random bytes per tag (xorshift), so that no window of one secret shows up in
/// another or anywhere else by chance.
fn secret(tag: u8) -> [u8; 32] {
    let mut x = 0x9e37_79b9_7f4a_7c15_u64 ^ u64::from(tag).wrapping_mul(0xd1b5_4a32_d192_ed03);
    std::array::from_fn(|_| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x >> 24) as u8
    })
}

/// A named secret and every way it could be rendered: lowercase and uppercase hex, Rust's
/// `[1, 2, …]` list (and `0x` hex list), any 4 consecutive bytes at any offset; text secrets
/// (passwords) as they are.
struct Secret {
    name: String,
    needles: Vec<String>,
}

impl Secret {
    fn bytes(name: &str, bytes: &[u8]) -> Secret {
        let mut needles = Vec::new();
        for w in bytes.windows(4) {
            let hex: String = w.iter().map(|b| format!("{b:02x}")).collect();
            needles.push(hex.to_uppercase());
            needles.push(hex);
            needles.push(
                w.iter()
                    .map(|b| b.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            );
            needles.push(
                w.iter()
                    .map(|b| format!("{b:#04x}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            );
        }
        Secret {
            name: name.to_string(),
            needles,
        }
    }

    fn text(name: &str, text: &str) -> Secret {
        Secret {
            name: name.to_string(),
            needles: vec![text.to_string()],
        }
    }
}

/// Fails if any rendering holds any secret.
fn assert_clean(renderings: &[(String, String)], secrets: &[Secret]) {
    assert!(!renderings.is_empty());
    for (what, text) in renderings {
        for s in secrets {
            if let Some(n) = s.needles.iter().find(|n| text.contains(n.as_str())) {
                panic!("{} leaked ({n}) in {what}: {text}", s.name);
            }
        }
    }
}

macro_rules! debug {
    ($($e:expr),+ $(,)?) => {
        vec![$((format!("{} (Debug)", stringify!($e)), format!("{:?}", $e)),
               (format!("{} (Debug, pretty)", stringify!($e)), format!("{:#?}", $e))),+]
    };
}

/// A core world with known secrets: the identity seed and its derived Ed25519/X25519 keys, a
/// tree key, a subtree key, a topic key and sender keys, and a grant's ephemeral secret.
struct Core {
    id: Identity,
    key: TreeKey,
    secrets: Vec<Secret>,
}

fn core() -> Core {
    let seed = secret(1);
    let id = Identity::from_seed(seed);
    let key = TreeKey::from_secret("plant/#", 7, secret(2)).unwrap();
    let sub = key.derive("plant/7/#").unwrap();
    let topic_key: TopicKey = key.topic_key("plant/7/temp").unwrap();
    let (ed, x) = mqseal::vectors_support::identity_secrets(&seed);
    let mut secrets = vec![
        Secret::bytes("identity seed", &seed),
        Secret::bytes("Ed25519 secret key", &ed),
        Secret::bytes("X25519 secret key", &x),
        Secret::bytes("tree key", &secret(2)),
        Secret::bytes("subtree key", &*sub.secret_bytes()),
        Secret::bytes("topic key", &*topic_key.secret_bytes()),
        Secret::bytes("grant ephemeral secret", &secret(3)),
    ];
    for profile in [Profile::Signed, Profile::GroupMac] {
        let k = topic_key.sender_key(profile, &id.public().ed25519());
        secrets.push(Secret::bytes("sender key", &*k));
    }
    let hpke = mqseal::vectors_support::grant_hpke(&id.public(), &secret(3)).unwrap();
    secrets.push(Secret::bytes(
        "grant HPKE shared secret",
        &hpke.shared_secret,
    ));
    secrets.push(Secret::bytes("grant HPKE key", &hpke.key));
    Core { id, key, secrets }
}

#[test]
fn the_detector_finds_secrets_in_every_rendering() {
    let s = secret(1);
    let list: Vec<String> = s[3..8].iter().map(|b| format!("{b:#04x}")).collect();
    for text in [
        hex::encode(s),
        format!("key {} end", hex::encode_upper(&s[5..9])),
        format!("{:?}", &s[3..8]),
        list.join(", "),
    ] {
        let probe = text.clone();
        let found = std::panic::catch_unwind(move || {
            assert_clean(
                &[("probe".into(), probe)],
                &[Secret::bytes("probe", &secret(1))],
            );
        });
        assert!(found.is_err(), "not detected: {text}");
    }
    assert_clean(
        &[("unrelated".into(), hex::encode(secret(2)))],
        &[Secret::bytes("probe", &s)],
    );
}

#[test]
fn core_and_keystore_renderings_hold_no_key_bytes() {
    let Core { id, key, secrets } = core();
    let topic_key = key.topic_key("plant/7/temp").unwrap();
    let grant = Grant::issue_with_ikm(&id, &id.public(), &key, &secret(3)).unwrap();
    let accepted = grant.accept(&id, &[id.public()]).unwrap();
    let mut sealer = Sealer::new(id.clone(), Profile::Signed, 0);
    sealer.add_key(key.clone());
    let mut opener = Opener::new();
    opener.trust_sender(id.public());
    opener.add_key(key.clone());
    let sealed = sealer.seal("plant/7/temp", b"x", false).unwrap();
    // Opening caches the topic key inside the opener: it must not show either.
    let opened = opener.open("plant/7/temp", &sealed).unwrap();
    let header = mqseal::inspect(&sealed).unwrap();
    let filter = key.filter();
    let fingerprint = id.fingerprint();
    let mut renderings = debug!(
        id,
        id.public(),
        key,
        accepted,
        topic_key,
        grant,
        sealer,
        opener,
        opened,
        header,
        filter,
        fingerprint
    );
    renderings.push(("fingerprint (Display)".into(), fingerprint.to_string()));
    renderings.push(("filter (Display)".into(), filter.to_string()));
    for e in mqseal::Error::ALL {
        renderings.push((format!("{e:?} (Display)"), e.to_string()));
    }

    // The keystore: a store holding the same identity and key, its sealer and opener, a
    // rotation, and the errors of damaged secret files.
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::create_with(
        tmp.path().join("s"),
        "me",
        id.clone(),
        StoreOptions::default(),
    )
    .unwrap();
    store
        .trust(
            "peer",
            &Identity::from_seed(secret(9)).public(),
            Roles::BOTH,
        )
        .unwrap();
    let update = store.add_key(key.clone(), None, 1).unwrap();
    let accepted_grant = store.accept_grant(&grant, 1).unwrap();
    let held = store.held_keys().unwrap();
    let key_file = store.key_file().unwrap();
    let issued_grant = store.issue_grant("plant/7/#", "peer").unwrap();
    let rotation = store.rotate("plant/#", &[], 2).unwrap();
    let issued = store.issued().unwrap();
    let mut persistent_sealer = store.sealer(Profile::Signed).unwrap();
    let mut persistent_opener = store.opener(OpenPolicy::default()).unwrap();
    let m = persistent_sealer.seal("plant/7/temp", b"y", false).unwrap();
    persistent_opener.open("plant/7/temp", &m).unwrap();
    let trusted = store.trusted().unwrap();
    let options = store.options().clone();
    renderings.extend(debug!(
        store,
        update,
        held,
        key_file,
        issued_grant,
        rotation,
        issued,
        accepted_grant,
        persistent_sealer,
        persistent_opener,
        trusted,
        options
    ));
    drop((persistent_sealer, persistent_opener));

    // Errors about secret files name the file, never its content: a damaged identity.key
    // (one hex digit changed), a damaged keys file, and a permissive mode.
    let key_path = store.path(layout::IDENTITY_KEY);
    let good = fs::read_to_string(&key_path).unwrap();
    let seed_hex = hex::encode(secret(1));
    assert!(
        good.contains(&seed_hex),
        "identity.key holds the seed in hex"
    );
    let mut store_errors: Vec<StoreError> = Vec::new();
    for damage in [
        good.replace(&seed_hex, &format!("zz{}", &seed_hex[2..])),
        good.replacen(&seed_hex, &seed_hex[..62], 1),
        format!("{good}{good}"),
        good.replace("mqseal-secret1:", "mqseal-secret9:"),
    ] {
        fs::write(&key_path, damage).unwrap();
        store_errors.push(Store::open(store.dir()).unwrap_err());
    }
    fs::write(&key_path, &good).unwrap();
    fs::set_permissions(&key_path, fs::Permissions::from_mode(0o644)).unwrap();
    store_errors.push(Store::open(store.dir()).unwrap_err());
    fs::set_permissions(&key_path, fs::Permissions::from_mode(0o600)).unwrap();
    let keys_path = store.path(layout::KEYS);
    let keys_text = fs::read_to_string(&keys_path).unwrap();
    let key_hex = hex::encode(secret(2));
    assert!(
        keys_text.contains(&key_hex),
        "keys holds the tree key in hex"
    );
    for damage in [
        keys_text.replace(&key_hex, &format!("zz{}", &key_hex[2..])),
        keys_text.replacen(&key_hex, &key_hex[..60], 1),
    ] {
        fs::write(&keys_path, damage).unwrap();
        store_errors.push(store.held_keys().unwrap_err());
    }
    for e in &store_errors {
        renderings.push((format!("store error {} (Display)", e.name()), e.to_string()));
        renderings.push((
            format!("store error {} (Debug)", e.name()),
            format!("{e:?}"),
        ));
    }
    assert_clean(&renderings, &secrets);
}

#[test]
fn connection_settings_and_failures_hold_no_password() {
    const PASSWORD: &str = "pw-Tr0ub4dor&3-never-print";
    let options = ConnectOptions::new("client", "127.0.0.1", 1).credentials("alice", PASSWORD);
    let mut renderings = debug!(options);
    let secrets = [Secret::text("password", PASSWORD)];
    assert_clean(&renderings, &secrets);
    assert!(renderings[0].1.contains("alice"), "{}", renderings[0].1);

    // A real refusal by Mosquitto (password_file): the explanation names the cause, not the
    // password.
    let config = MosquittoConfig {
        users: vec![("alice".into(), "the-right-one".into())],
        ..MosquittoConfig::default()
    };
    let Some(broker) = Mosquitto::start(&config).unwrap() else {
        notice("mosquitto is not installed: the refused-login part of this test is skipped");
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let failure = runtime.block_on(async {
        let options = ConnectOptions::new("hygiene", "127.0.0.1", broker.port)
            .credentials("alice", PASSWORD)
            .v4()
            .unwrap();
        let id = Identity::from_seed(secret(1));
        let (_client, mut lp) = SealedClient::new(
            options,
            10,
            Sealer::new(id, Profile::Signed, 0),
            Opener::new(),
        );
        loop {
            match tokio::time::timeout(Duration::from_secs(20), lp.poll()).await {
                Ok(Err(e)) => break mqseal_rumqttc::explain(&e),
                Ok(Ok(Event::Mqtt(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(a))))) => {
                    panic!("a wrong password was accepted: {a:?}")
                }
                Ok(Ok(_)) => {}
                Err(_) => panic!("no answer from the broker in 20 s"),
            }
        }
    });
    assert_eq!(
        failure.kind,
        mqseal_rumqttc::FailureKind::NotAuthorized,
        "{failure}"
    );
    renderings.extend(debug!(failure));
    renderings.push(("connect failure (Display)".into(), failure.to_string()));

    // The CLI refused by the same broker: its output names the refusal, not the password.
    if let Some(bin) = mqseal_binary() {
        let tmp = tempfile::tempdir().unwrap();
        let store = tmp.path().join("s");
        let store = store.to_str().unwrap();
        for args in [
            &["keygen", "me", "--store", store][..],
            &["keygen", "--tree", "a/#", "--store", store],
        ] {
            let out = run(&bin, args);
            assert!(out.status.success(), "{out:?}");
        }
        let port = broker.port.to_string();
        let out = run(
            &bin,
            &[
                "pub",
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-u",
                "alice",
                "-P",
                PASSWORD,
                "-t",
                "a/b",
                "-m",
                "x",
                "--store",
                store,
            ],
        );
        assert!(
            !out.status.success(),
            "a wrong password was accepted: {out:?}"
        );
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.to_lowercase().contains("not authorized") || text.contains("refused"),
            "{text}"
        );
        renderings.push(("mqseal pub output".into(), text));
    } else {
        notice("the mqseal binary is not built (run `cargo test --workspace`): CLI part skipped");
    }
    assert_clean(&renderings, &secrets);
}

/// The `mqseal` binary of this build, if it was built (`cargo test --workspace` builds it;
/// `cargo test -p mqseal-adversarial-tests` alone does not).
fn mqseal_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?.parent()?; // target/<profile>/deps/x → target/<profile>
    let bin = dir.join("mqseal");
    bin.is_file().then_some(bin)
}

fn run(bin: &Path, args: &[&str]) -> Output {
    Command::new(bin)
        .args(args)
        .env_remove("MQSEAL_STORE")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn set_mode(p: &Path, m: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(m)).unwrap();
}

#[test]
fn secret_files_are_private_and_permissive_ones_are_refused_with_the_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::create_with(
        tmp.path().join("s"),
        "me",
        Identity::from_seed(secret(4)),
        StoreOptions::default(),
    )
    .unwrap();
    store.create_key("plant/#", 1).unwrap();
    let mut sealer = store.sealer(Profile::Signed).unwrap();
    let m = sealer.seal("plant/1", b"x", false).unwrap();
    drop(sealer);
    {
        let mut opener = store.opener(OpenPolicy::default()).unwrap();
        opener.open("plant/1", &m).unwrap();
        opener.compact().unwrap();
    }
    let secret_files = [
        layout::IDENTITY_KEY,
        layout::KEYS,
        layout::SEQ,
        layout::REPLAY_SNAPSHOT,
        layout::REPLAY_LOG,
    ];
    for f in secret_files {
        assert_eq!(mode(&store.path(f)), 0o600, "{f} must be written 0600");
    }
    for d in [store.dir().to_path_buf(), store.path(layout::STATE)] {
        assert_eq!(mode(&d), 0o700, "{} must be 0700", d.display());
    }
    for f in [layout::IDENTITY_PUB, layout::TRUSTED, layout::ISSUED] {
        assert_eq!(mode(&store.path(f)), 0o644, "{f} is public");
    }
    // Each secret file, group- or world-accessible, is refused by whatever reads it, with an
    // error that names the file, its mode and the chmod to run; owner-only modes are fine.
    let dir = store.dir().to_path_buf();
    let read = |f: &str| -> Result<(), StoreError> {
        let s = Store::open(&dir)?;
        match f {
            layout::IDENTITY_KEY => Ok(()),
            layout::KEYS => s.held_keys().map(drop),
            layout::SEQ => s.sealer(Profile::Signed).map(drop),
            _ => s.opener(OpenPolicy::default()).map(drop),
        }
    };
    let mut refused = 0;
    for f in secret_files {
        let path = store.path(f);
        for m in [0o644, 0o640, 0o604, 0o660, 0o666, 0o610] {
            set_mode(&path, m);
            let err = read(f).unwrap_err();
            let msg = err.to_string();
            assert!(
                matches!(err, StoreError::Permissions { mode, .. } if mode == m),
                "{f} {m:o}: {msg}"
            );
            assert!(msg.contains(&path.display().to_string()), "{msg}");
            assert!(msg.contains(&format!("{m:04o}")), "{msg}");
            assert!(
                msg.contains(&format!("chmod 600 {}", path.display())),
                "{msg}"
            );
            refused += 1;
        }
        for m in [0o600, 0o400] {
            set_mode(&path, m);
            read(f).unwrap_or_else(|e| panic!("{f} at {m:o}: {e}"));
        }
        set_mode(&path, 0o600);
    }
    assert_eq!(refused, 30);

    // The CLI writes the same files the same way, and refuses the same way.
    let Some(bin) = mqseal_binary() else {
        notice("the mqseal binary is not built (run `cargo test --workspace`): CLI part skipped");
        return;
    };
    let cli_store = tmp.path().join("cli");
    let out = run(
        &bin,
        &["keygen", "me", "--store", cli_store.to_str().unwrap()],
    );
    assert!(out.status.success(), "{out:?}");
    let seed = Store::open(&cli_store).unwrap().identity().seed();
    let out_text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_clean(
        &[("mqseal keygen output".into(), out_text)],
        &[Secret::bytes("seed", &*seed)],
    );
    assert_eq!(mode(&cli_store.join(layout::IDENTITY_KEY)), 0o600);
    let out = run(
        &bin,
        &[
            "keygen",
            "--tree",
            "plant/#",
            "--store",
            cli_store.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(mode(&cli_store.join(layout::KEYS)), 0o600);
    let tree = Store::open(&cli_store)
        .unwrap()
        .sealing_keys()
        .unwrap()
        .remove(0);
    let out_text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_clean(
        &[("mqseal keygen --tree output".into(), out_text)],
        &[Secret::bytes("tree key", &*tree.secret_bytes())],
    );
    set_mode(&cli_store.join(layout::IDENTITY_KEY), 0o640);
    let out = run(
        &bin,
        &[
            "pub",
            "-h",
            "127.0.0.1",
            "-p",
            "1",
            "-t",
            "plant/1",
            "-m",
            "x",
            "--store",
            cli_store.to_str().unwrap(),
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("chmod 600"), "{err}");
}

#[test]
fn secrets_are_zeroized_on_drop_where_the_types_say_so() {
    fn zeroized_on_drop<T: ZeroizeOnDrop>(_: &T) {}
    let id = Identity::from_seed(secret(5));
    zeroized_on_drop(&id);
    let key = TreeKey::from_secret("a/#", 1, secret(6)).unwrap();
    zeroized_on_drop(&key);
    let topic_key = key.topic_key("a/b").unwrap();
    zeroized_on_drop(&topic_key);
    // Every accessor handing out secret bytes hands out a self-zeroizing copy.
    let copies: [Zeroizing<[u8; 32]>; 4] = [
        id.seed(),
        key.secret_bytes(),
        topic_key.secret_bytes(),
        topic_key.sender_key(Profile::Signed, &id.public().ed25519()),
    ];
    for c in &copies {
        zeroized_on_drop(c);
    }
    let formatted: Zeroizing<String> = mqseal_store::formats::format_identity_key(&id, "me");
    zeroized_on_drop(&formatted);
    let key_file = mqseal_store::KeyFile::default().format();
    zeroized_on_drop(&key_file);
    // And zeroizing one really clears it.
    let mut copy = key.secret_bytes();
    zeroize::Zeroize::zeroize(&mut copy);
    assert_eq!(*copy, [0u8; 32]);
    assert_eq!(
        *key.secret_bytes(),
        secret(6),
        "the key itself is untouched"
    );
}
