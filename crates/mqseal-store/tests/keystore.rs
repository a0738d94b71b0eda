//! Store files: creation, permissions, trust, and every bad/corrupt/truncated/missing file giving
//! a clear error — never a silent reset of the counter or the replay windows.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use mqseal::{Identity, OpenPolicy, Profile};
use mqseal_store::{Roles, Store, StoreError, StoreOptions, layout};

fn store(dir: &Path, name: &str, seed: u8) -> Store {
    Store::create_with(
        dir.join(name),
        name,
        Identity::from_seed([seed; 32]),
        StoreOptions::default(),
    )
    .unwrap()
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn set_mode(p: &Path, m: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(m)).unwrap();
}

#[test]
fn create_writes_the_layout_with_private_modes_and_open_reads_it_back() {
    let tmp = tempfile::tempdir().unwrap();
    let s = store(tmp.path(), "sensor-7", 1);
    let d = s.dir().to_path_buf();
    assert_eq!(mode(&d), 0o700);
    assert_eq!(mode(&d.join(layout::STATE)), 0o700);
    for f in [
        layout::IDENTITY_KEY,
        layout::KEYS,
        layout::SEQ,
        layout::REPLAY_SNAPSHOT,
        layout::REPLAY_LOG,
    ] {
        assert_eq!(mode(&d.join(f)), 0o600, "{f}");
    }
    for f in [layout::IDENTITY_PUB, layout::TRUSTED, layout::ISSUED] {
        assert_eq!(mode(&d.join(f)), 0o644, "{f}");
    }
    let text = fs::read_to_string(d.join(layout::IDENTITY_PUB)).unwrap();
    assert!(text.starts_with("sensor-7 mqseal-pub1:"), "{text}");
    assert_eq!(text, s.public_line());
    let again = Store::open(&d).unwrap();
    assert_eq!(again.public(), s.public());
    assert_eq!(again.name(), "sensor-7");
    assert_eq!(again.reserved_sequence().unwrap(), 0);
    // No secret in Debug.
    let seed_hex = hex::encode([1u8; 32]);
    assert!(!format!("{again:?}").contains(&seed_hex));
    // Creating over a non-empty directory is refused; an empty one is fine.
    assert!(matches!(
        Store::create(&d, "x"),
        Err(StoreError::AlreadyExists { .. })
    ));
    let empty = tmp.path().join("empty");
    fs::create_dir(&empty).unwrap();
    Store::create(&empty, "fresh").unwrap();
    assert!(matches!(
        Store::create(tmp.path().join("bad"), "no spaces"),
        Err(StoreError::InvalidName { .. })
    ));
}

#[test]
fn group_or_world_readable_secret_files_are_refused_with_the_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let s = store(tmp.path(), "a", 1);
    let key = s.path(layout::IDENTITY_KEY);
    for m in [0o644, 0o640, 0o604, 0o620, 0o660] {
        set_mode(&key, m);
        let err = Store::open(s.dir()).unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(err, StoreError::Permissions { mode, .. } if mode == m),
            "{msg}"
        );
        assert!(msg.contains(&key.display().to_string()), "{msg}");
        assert!(msg.contains(&format!("{m:04o}")), "{msg}");
        assert!(
            msg.contains(&format!("chmod 600 {}", key.display())),
            "{msg}"
        );
    }
    set_mode(&key, 0o400); // owner-only read is fine
    let s = Store::open(s.dir()).unwrap();
    let keys = s.path(layout::KEYS);
    set_mode(&keys, 0o640);
    assert!(matches!(s.held_keys(), Err(StoreError::Permissions { .. })));
    set_mode(&keys, 0o600);
    let seq = s.path(layout::SEQ);
    set_mode(&seq, 0o644);
    assert!(matches!(
        s.sealer(Profile::Signed),
        Err(StoreError::Permissions { .. })
    ));
}

#[test]
fn identity_files_damaged_or_mismatched_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let s = store(tmp.path(), "a", 1);
    let key = s.path(layout::IDENTITY_KEY);
    let good = fs::read_to_string(&key).unwrap();
    let cases: Vec<(String, &str)> = vec![
        (String::new(), "no mqseal-secret1: line"),
        (good[..good.len() - 10].to_string(), "not 64 hex digits"),
        (
            good.replace("mqseal-secret1:", "mqseal-secret2:"),
            "does not start with",
        ),
        (format!("{good}{good}"), "more than one key line"),
    ];
    for (text, expect) in cases {
        fs::write(&key, &text).unwrap();
        let msg = Store::open(s.dir()).unwrap_err().to_string();
        assert!(
            msg.contains(expect) && msg.contains("identity.key"),
            "{msg}"
        );
    }
    fs::remove_file(&key).unwrap();
    let msg = Store::open(s.dir()).unwrap_err().to_string();
    assert!(msg.contains("not an mqseal store"), "{msg}");
    // identity.pub of another identity.
    fs::write(&key, &good).unwrap();
    set_mode(&key, 0o600);
    let other = Identity::from_seed([2; 32]);
    fs::write(
        s.path(layout::IDENTITY_PUB),
        format!("a {}\n", mqseal_store::public_token(&other.public())),
    )
    .unwrap();
    let msg = Store::open(s.dir()).unwrap_err().to_string();
    assert!(msg.contains("does not match identity.key"), "{msg}");
}

#[test]
fn trust_store_adds_lists_edits_and_removes_peers_keeping_comments() {
    let tmp = tempfile::tempdir().unwrap();
    let s = store(tmp.path(), "me", 1);
    let alice = Identity::from_seed([2; 32]).public();
    let bob = Identity::from_seed([3; 32]).public();
    let path = s.path(layout::TRUSTED);
    fs::write(&path, "# my peers\n\n# the admin below\n").unwrap();
    s.trust("alice", &alice, Roles::SENDER).unwrap();
    let bob_line = format!("bob {}", mqseal_store::public_token(&bob));
    s.trust_line(&bob_line, Roles::BOTH).unwrap();
    assert_eq!(s.trusted().unwrap().len(), 2);
    assert_eq!(s.peer("bob").unwrap().roles, Roles::BOTH);
    assert!(matches!(
        s.trust("alice", &bob, Roles::SENDER),
        Err(StoreError::DuplicatePeer { .. })
    ));
    assert!(matches!(
        s.trust("alice2", &alice, Roles::SENDER),
        Err(StoreError::DuplicatePeer { existing, .. }) if existing == "alice"
    ));
    assert!(matches!(
        s.trust("self", &s.public(), Roles::SENDER),
        Err(StoreError::DuplicatePeer { .. })
    ));
    assert_eq!(
        s.set_roles("alice", Roles::ISSUER).unwrap().roles,
        Roles::ISSUER
    );
    assert_eq!(s.trusted_issuers().unwrap().len(), 3); // me, alice, bob
    assert_eq!(s.trusted_senders().unwrap().len(), 2); // me, bob
    assert_eq!(s.untrust("bob").unwrap().public, bob);
    assert!(matches!(
        s.untrust("bob"),
        Err(StoreError::UnknownPeer { .. })
    ));
    let text = fs::read_to_string(&path).unwrap();
    assert!(
        text.starts_with("# my peers\n\n# the admin below\nalice "),
        "{text}"
    );
    assert!(text.trim_end().ends_with(" issuer"), "{text}");
    // A hand-edited bad line is reported with its line number, and nothing is rewritten.
    fs::write(&path, format!("{text}carol mqseal-pub1:zz\n")).unwrap();
    let msg = s.trusted().unwrap_err().to_string();
    assert!(
        msg.contains("trusted:5:") && msg.contains("128 hex"),
        "{msg}"
    );
    assert!(s.trust("dave", &bob, Roles::SENDER).is_err());
    assert!(s.untrust("alice").is_err());
}

/// Every machine-written file: truncated at each line boundary and in the middle, edited, or
/// emptied → a `Corrupt` error naming the file; never a silent default.
#[test]
fn corrupt_or_truncated_state_files_never_reset_anything() {
    let tmp = tempfile::tempdir().unwrap();
    let s = store(tmp.path(), "a", 1);
    s.create_key("t/#", 0).unwrap();
    {
        let mut sealer = s.sealer(Profile::Signed).unwrap();
        sealer.seal("t/x", b"1", false).unwrap();
        let mut opener = s.opener(OpenPolicy::default()).unwrap();
        let m = sealer.seal("t/x", b"2", false).unwrap();
        opener.open("t/x", &m).unwrap();
        opener.compact().unwrap();
        let m = sealer.seal("t/x", b"3", false).unwrap();
        opener.open("t/x", &m).unwrap();
    }
    type Check = fn(&Store) -> Result<(), StoreError>;
    let checks: [(&str, Check); 5] = [
        (layout::SEQ, |s| s.sealer(Profile::Signed).map(drop)),
        (layout::KEYS, |s| s.held_keys().map(drop)),
        (layout::ISSUED, |s| s.issued().map(drop)),
        (layout::REPLAY_SNAPSHOT, |s| {
            s.opener(OpenPolicy::default()).map(drop)
        }),
        (layout::REPLAY_LOG, |s| {
            s.opener(OpenPolicy::default()).map(drop)
        }),
    ];
    for (file, check) in checks {
        let path = s.path(file);
        let good = fs::read(&path).unwrap();
        check(&s).unwrap();
        let mut damaged: Vec<(String, Vec<u8>)> = vec![("empty".into(), Vec::new())];
        if file == layout::REPLAY_LOG {
            // A log cut inside its last record is a torn append (tested in replay.rs); here:
            // damage inside the magic and in a record followed by another one.
            damaged.push(("magic".into(), good[..5].to_vec()));
            let mut mid = good.clone();
            mid.extend_from_slice(&good[8..]); // a second copy of the record
            mid[20] ^= 0x40;
            damaged.push(("flipped".into(), mid));
        } else {
            for n in [1, good.len() / 2, good.len() - 1] {
                damaged.push((format!("cut at {n}"), good[..n].to_vec()));
            }
            for (i, _) in good.iter().enumerate().filter(|(_, b)| **b == b'\n') {
                if i + 1 < good.len() {
                    damaged.push((format!("cut after line end {i}"), good[..=i].to_vec()));
                }
            }
            let mut flipped = good.clone();
            let at = good.len() / 3;
            flipped[at] ^= 0x01;
            damaged.push(("flipped".into(), flipped));
        }
        for (what, bytes) in damaged {
            fs::write(&path, &bytes).unwrap();
            let err = check(&s).expect_err(&format!("{file} {what} was accepted"));
            let msg = err.to_string();
            assert!(
                matches!(err, StoreError::Corrupt { .. }) && msg.contains(file),
                "{file} {what}: {msg}"
            );
        }
        fs::remove_file(&path).unwrap();
        let err = check(&s).unwrap_err();
        assert!(matches!(err, StoreError::Missing { .. }), "{file}: {err}");
        fs::write(&path, &good).unwrap();
        set_mode(&path, 0o600);
        check(&s).unwrap();
    }
}

#[test]
fn a_lost_sequence_file_needs_an_explicit_floor_and_never_goes_down() {
    let tmp = tempfile::tempdir().unwrap();
    let s = store(tmp.path(), "a", 1);
    s.create_key("#", 0).unwrap();
    let used = {
        let mut sealer = s.sealer(Profile::Signed).unwrap();
        sealer.seal("x", b"", false).unwrap();
        sealer.reserved()
    };
    fs::remove_file(s.path(layout::SEQ)).unwrap();
    let msg = s.sealer(Profile::Signed).unwrap_err().to_string();
    assert!(msg.contains("sequence state is lost"), "{msg}");
    assert_eq!(s.raise_sequence_floor(used + 10).unwrap(), used + 10);
    assert_eq!(s.raise_sequence_floor(5).unwrap(), used + 10); // never lowered
    let mut sealer = s.sealer(Profile::Signed).unwrap();
    assert_eq!(sealer.next_seq(), used + 10);
    // While a sealer runs the floor cannot be changed.
    assert!(matches!(
        s.raise_sequence_floor(1 << 40),
        Err(StoreError::Locked { .. })
    ));
    let m = sealer.seal("x", b"", false).unwrap();
    assert_eq!(mqseal::inspect(&m).unwrap().seq, used + 10);
    // A seq file of another identity is refused.
    drop(sealer);
    let other = store(tmp.path(), "b", 2);
    fs::copy(other.path(layout::SEQ), s.path(layout::SEQ)).unwrap();
    let msg = s.sealer(Profile::Signed).unwrap_err().to_string();
    assert!(msg.contains("belongs to identity"), "{msg}");
}

#[test]
fn one_sealer_and_one_opener_per_store_at_a_time() {
    let tmp = tempfile::tempdir().unwrap();
    let s = store(tmp.path(), "a", 1);
    let sealer = s.sealer(Profile::Signed).unwrap();
    let err = s.sealer(Profile::GroupMac).unwrap_err();
    assert!(matches!(err, StoreError::Locked { .. }), "{err}");
    assert_eq!(err.code(), 105);
    let opener = s.opener(OpenPolicy::default()).unwrap();
    assert!(matches!(
        s.opener(OpenPolicy::default()),
        Err(StoreError::Locked { .. })
    ));
    // Through a second Store handle (as another process would) too.
    let s2 = Store::open(s.dir()).unwrap();
    assert!(matches!(
        s2.sealer(Profile::Signed),
        Err(StoreError::Locked { .. })
    ));
    drop(sealer);
    drop(opener);
    s2.sealer(Profile::Signed).unwrap();
    s2.opener(OpenPolicy::default()).unwrap();
}

#[test]
fn debug_output_and_errors_never_show_secrets() {
    let tmp = tempfile::tempdir().unwrap();
    let admin = store(tmp.path(), "admin", 0x5a);
    let member = store(tmp.path(), "member", 0x6b);
    admin
        .trust_line(&member.public_line(), Roles::SENDER)
        .unwrap();
    member
        .trust_line(&admin.public_line(), Roles::ISSUER)
        .unwrap();
    let key = admin.create_key("a/#", 0).unwrap();
    let secrets = [
        hex::encode([0x5au8; 32]),
        hex::encode([0x6bu8; 32]),
        hex::encode(*key.key.secret_bytes()),
    ];
    let grant = admin.issue_grant("a/#", "member").unwrap();
    let accepted = member
        .accept_grant_message(&grant.topic, &grant.payload, 0)
        .unwrap();
    let rotation = admin.rotate("a/#", &[], 5).unwrap();
    let new_secret = hex::encode(
        *admin
            .held_keys()
            .unwrap()
            .iter()
            .find(|k| k.epoch() == 2)
            .unwrap()
            .key
            .secret_bytes(),
    );
    let sealer = admin.sealer(Profile::Signed).unwrap();
    let opener = admin.opener(OpenPolicy::default()).unwrap();
    let rendered = format!(
        "{admin:?} {member:?} {key:?} {grant:?} {accepted:?} {rotation:?} {sealer:?} {opener:?} {:?} {:?}",
        admin.key_file().unwrap(),
        admin.held_keys().unwrap()
    );
    for s in secrets.iter().chain([&new_secret]) {
        assert!(!rendered.contains(s.as_str()), "secret in Debug output");
    }
}

/// Files that confer trust: `trusted` decides who may send and who may issue keys, the store
/// directory holds it. A local user who could write either would become an issuer (issue 12).
#[test]
fn a_trusted_file_or_store_directory_others_may_write_is_refused_with_the_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let s = store(tmp.path(), "me", 0x71);
    let dir = tmp.path().join("me");
    let peer = Identity::from_seed([0x72; 32]).public();
    s.trust("peer", &peer, Roles::SENDER).unwrap();
    let trusted = dir.join(layout::TRUSTED);

    set_mode(&trusted, 0o664);
    let err = s.trusted().unwrap_err();
    assert!(matches!(err, StoreError::Insecure { .. }), "{err}");
    assert_eq!(err.code(), 117);
    assert!(err.to_string().contains("chmod go-w"), "{err}");
    assert!(s.opener(OpenPolicy::default()).is_err());
    set_mode(&trusted, 0o644);
    assert_eq!(s.trusted().unwrap().len(), 1);

    set_mode(&dir, 0o777);
    let err = Store::open(&dir).unwrap_err();
    assert!(matches!(err, StoreError::Insecure { .. }), "{err}");
    assert!(err.to_string().contains(dir.to_str().unwrap()), "{err}");
    set_mode(&dir, 0o755);
    assert!(Store::open(&dir).is_ok());

    // An existing empty directory handed to create becomes private.
    let empty = tmp.path().join("other");
    fs::create_dir(&empty).unwrap();
    set_mode(&empty, 0o777);
    store(tmp.path(), "other", 0x73);
    assert_eq!(mode(&empty), 0o700);
}

/// keystore.md sections 4 and 5: a scoped issuer's grant outside its scope is refused and
/// stores nothing; two issuers' keys of one filter and epoch are separate lineages (neither
/// retires, conflicts with nor makes stale the other); the sealer uses the lineage of the
/// issuer listed first, whatever the epochs; the `trusted` file keeps the attributes.
#[test]
fn scoped_issuers_and_coexisting_lineages() {
    let tmp = tempfile::tempdir().unwrap();
    let me = store(tmp.path(), "me", 1);
    let admin = store(tmp.path(), "admin", 2);
    let lab = store(tmp.path(), "lab", 3);
    me.trust("admin", &admin.public(), Roles::ISSUER).unwrap();
    let mut lab_peer = mqseal_store::TrustedPeer::new("lab", lab.public(), Roles::ISSUER);
    lab_peer.scope = vec!["lab/#".into()];
    me.trust_peer(lab_peer).unwrap();
    for s in [&admin, &lab] {
        s.trust("me", &me.public(), Roles::SENDER).unwrap();
        s.create_key("plant/#", 1_000).unwrap();
    }
    // lab issues plant/#: outside its scope.
    let grant = lab.issue_grant("plant/#", "me").unwrap();
    let parsed = mqseal::Grant::from_bytes(&grant.payload).unwrap();
    let err = me.accept_grant(&parsed, 1_000).unwrap_err();
    assert_eq!(err.core(), Some(mqseal::Error::OutOfScope));
    assert!(me.held_keys().unwrap().is_empty());
    // Widened: both lineages of plant/# epoch 1 are held side by side.
    me.set_scope("lab", &["lab/#", "plant/#"]).unwrap();
    me.accept_grant(&parsed, 1_000).unwrap();
    // lab rotates twice (epoch 3): still not admin's lineage.
    for _ in 0..2 {
        let r = lab.rotate("plant/#", &[], 1_001).unwrap();
        for g in r.grants {
            let update = me
                .accept_grant(&mqseal::Grant::from_bytes(&g.payload).unwrap(), 1_001)
                .unwrap()
                .update;
            assert!(update.added);
        }
    }
    let from_admin = admin.issue_grant("plant/#", "me").unwrap();
    let accepted = me
        .accept_grant(
            &mqseal::Grant::from_bytes(&from_admin.payload).unwrap(),
            1_002,
        )
        .unwrap();
    assert!(accepted.update.added && accepted.update.retired.is_empty());
    let held = me.held_keys().unwrap();
    assert_eq!(held.len(), 4); // lab 1, 2 (retired), 3; admin 1
    let sealing = me.sealing_keys().unwrap();
    let admin_key = held
        .iter()
        .find(|k| k.issuer == Some(admin.fingerprint()))
        .unwrap();
    assert_eq!(sealing.len(), 1);
    assert!(sealing[0].ct_eq(&admin_key.key), "admin is listed first");
    // The same admin key again changes nothing; a different secret at its epoch conflicts.
    let again = me
        .add_key(admin_key.key.clone(), Some(admin.fingerprint()), 1_003)
        .unwrap();
    assert!(!again.added);
    let rival = mqseal::TreeKey::from_secret("plant/#", 1, [9; 32]).unwrap();
    assert!(matches!(
        me.add_key(rival, Some(admin.fingerprint()), 1_003),
        Err(StoreError::KeyConflict { .. })
    ));
    let text = fs::read_to_string(me.dir().join(layout::TRUSTED)).unwrap();
    assert!(
        text.contains(" issuer scope=lab/# scope=plant/#\n"),
        "{text}"
    );
    // Untrusting admin: its key is no longer sealed with; lab's lineage takes over.
    me.untrust("admin").unwrap();
    let sealing = me.sealing_keys().unwrap();
    assert_eq!(sealing.len(), 1);
    assert_eq!(sealing[0].epoch(), 3);
}
