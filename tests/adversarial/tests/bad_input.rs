//! Bad input everywhere: the `mqseal` command line and the Rust API given garbage files, empty
//! and huge payloads, invalid topics (wildcards, NUL, more than 65535 bytes, not UTF-8) and
//! damaged keystores.
//!
//! Expected every time: a failure exit code (or a typed error), one clear line naming the problem
//! (and the file and the fix where there is one), nothing written to the keystore (every file's
//! bytes, mode and modification time compared before and after, no file added or removed),
//! nothing lost (the sequence reservation untouched, a valid message afterwards still delivered).
//! An empty payload is legitimate and must go through.
//!
//! The CLI binary is the one `cargo test --workspace` builds (built here with the same profile
//! when this test runs alone).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::SystemTime;

use mqseal::{Delivery, Error, Identity, Opener, Profile, SealOptions, Sealer, TreeKey};
use mqseal_broker_tests::{Broker, Mosquitto, MosquittoConfig, notice, plain_broker};
use mqseal_store::{Roles, Store, StoreError};

// ---- the CLI ------------------------------------------------------------------------------------

/// The `mqseal` binary of this workspace, built with the test profile like `cargo test
/// --workspace` does (a no-op after it).
fn cli() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let out = Command::new(cargo)
            .args([
                "build",
                "-q",
                "--locked",
                "--workspace",
                "--profile",
                "test",
                "--bins",
            ])
            .current_dir(&root)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "cannot build the CLI: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // target/debug/deps/bad_input-<hash> -> target/debug/mqseal
        let exe = std::env::current_exe().unwrap();
        let bin = exe.parent().unwrap().parent().unwrap().join("mqseal");
        assert!(bin.is_file(), "{} missing", bin.display());
        bin
    })
}

fn run(args: &[&OsStr], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(cli())
        .args(args)
        .env_remove("MQSEAL_STORE")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(bytes) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        // The CLI may stop reading early (too much input): a broken pipe is fine.
        let _ = pipe.write_all(bytes);
    }
    child.wait_with_output().unwrap()
}

fn os<'a>(args: &[&'a str]) -> Vec<&'a OsStr> {
    args.iter().map(|a| OsStr::new(*a)).collect()
}

fn ok(args: &[&str]) -> String {
    let out = run(&os(args), None);
    assert!(
        out.status.success(),
        "mqseal {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a command that must fail; returns its error message after checking its shape: a failure
/// exit code, nothing on stdout, and a short message on stderr (no backtrace, no panic).
fn fails_with(args: &[&OsStr], stdin: Option<&[u8]>) -> String {
    let out = run(args, stdin);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "mqseal {args:?} succeeded: {err}");
    assert!(
        out.stdout.is_empty(),
        "mqseal {args:?} printed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "mqseal {args:?} panicked: {err}"
    );
    assert!(
        err.starts_with("mqseal: ") || err.starts_with("error: "),
        "{err}"
    );
    assert!(err.len() < 600, "mqseal {args:?}: error too long: {err}");
    err
}

fn fails(args: &[&str]) -> String {
    fails_with(&os(args), None)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Every file under a directory: bytes, mode, modification time.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot(BTreeMap<PathBuf, (Vec<u8>, u32, SystemTime)>);

fn snapshot(dir: &Path) -> Snapshot {
    fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, (Vec<u8>, u32, SystemTime)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                out.insert(
                    path.clone(),
                    (
                        Vec::new(),
                        meta.permissions().mode(),
                        meta.modified().unwrap(),
                    ),
                );
                walk(&path, out);
            } else {
                out.insert(
                    path.clone(),
                    (
                        std::fs::read(&path).unwrap(),
                        meta.permissions().mode(),
                        meta.modified().unwrap(),
                    ),
                );
            }
        }
    }
    let mut files = BTreeMap::new();
    walk(dir, &mut files);
    Snapshot(files)
}

fn assert_unchanged(before: &Snapshot, dir: &Path, what: &str) {
    let after = snapshot(dir);
    if *before != after {
        let changed: Vec<_> = before
            .0
            .keys()
            .chain(after.0.keys())
            .filter(|k| before.0.get(*k) != after.0.get(*k))
            .collect();
        panic!("{what}: the keystore changed: {changed:?}");
    }
}

/// A keystore `me` holding the key of `a/#`, never used to seal or open yet.
fn fresh_store(dir: &Path) -> PathBuf {
    let store = dir.join("me");
    ok(&["keygen", "me", "--store", s(&store)]);
    ok(&["keygen", "--tree", "a/#", "--store", s(&store)]);
    store
}

fn free_port() -> String {
    mqseal_rumqttc::embedded::free_port().unwrap().to_string()
}

#[test]
fn cli_refuses_bad_topics_and_oversized_payloads_without_touching_the_store() {
    let tmp = tempfile::tempdir().unwrap();
    let store = fresh_store(tmp.path());
    let st = s(&store);
    let before = snapshot(&store);
    // Nothing listens there: a command that got past its checks would fail to connect instead.
    let port = free_port();
    let publish = |topic: &OsStr, extra: &[&str]| {
        let mut args = os(&[
            "pub",
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-q",
            "1",
            "--store",
            st,
        ]);
        args.extend([OsStr::new("-t"), topic]);
        args.extend(os(extra));
        fails_with(&args, None)
    };

    // Publish topics: wildcards, empty, too long, not UTF-8, not covered by a key.
    for (topic, expect) in [
        ("a/+", "wildcard"),
        ("a/#", "wildcard"),
        ("+", "wildcard"),
        ("a/b+c", "wildcard"),
        ("", "the topic is empty"),
    ] {
        let err = publish(OsStr::new(topic), &["-m", "x"]);
        assert!(
            err.contains("invalid publish topic") && err.contains(expect),
            "{topic:?}: {err}"
        );
        assert!(err.contains("fix:"), "{err}");
    }
    let long = format!("a/{}", "x".repeat(70_000));
    let err = publish(OsStr::new(&long), &["-m", "x"]);
    assert!(err.contains("70002 bytes long, MQTT allows 65535"), "{err}");
    let err = publish(OsStr::from_bytes(b"a/\xff\xfe"), &["-m", "x"]);
    assert!(err.contains("not UTF-8"), "{err}");
    let err = publish(OsStr::new("b/c"), &["-m", "x"]);
    assert!(err.contains("no key") && err.contains("b/c"), "{err}");
    // (A NUL cannot travel in a command-line argument; the API cases below cover it.)

    // Payloads: a missing file, a directory, a 300 MB file (refused before being read), more
    // than a packet on stdin.
    let err = publish(OsStr::new("a/b"), &["-f", "/nonexistent/payload"]);
    assert!(err.contains("/nonexistent/payload: cannot read"), "{err}");
    let err = publish(OsStr::new("a/b"), &["-f", s(tmp.path())]);
    assert!(err.contains(s(tmp.path())), "{err}");
    let huge = tmp.path().join("huge.bin");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(300 << 20)
        .unwrap();
    let err = publish(OsStr::new("a/b"), &["-f", s(&huge)]);
    assert!(
        err.contains("is 314572800 bytes")
            && err.contains("at most 1048576 bytes")
            && err.contains("fix:"),
        "{err}"
    );
    let mut args = os(&["pub", "-p", &port, "-t", "a/b", "-s", "--store", st]);
    args.push(OsStr::new("-q"));
    args.push(OsStr::new("1"));
    let err = fails_with(&args, Some(&vec![b'x'; (1 << 20) + 1]));
    assert!(err.contains("stdin holds more than 1048576 bytes"), "{err}");
    // Just under the client's limit alone is fine, but not once sealed.
    let err = fails_with(&args, Some(&vec![b'x'; (1 << 20) - 20]));
    assert!(
        err.contains("seals into a") && err.contains("maximum"),
        "{err}"
    );

    // Subscription filters.
    for (filter, expect) in [
        ("a/#/b", "'#' must be the last level"),
        ("a/b#", "'#' must be the last level"),
        ("a/b+/c", "'+' a whole level"),
        ("", "empty"),
    ] {
        let err = fails(&["sub", "-p", &port, "-t", filter, "--store", st]);
        assert!(
            err.contains("invalid topic filter") && err.contains(expect),
            "{filter:?}: {err}"
        );
    }
    let mut args = os(&["sub", "-p", &port, "--store", st, "-t"]);
    args.push(OsStr::from_bytes(b"a/\xc3"));
    assert!(fails_with(&args, None).contains("not UTF-8"));
    let long_filter = format!("{}/#", "x".repeat(70_000));
    let err = fails(&["sub", "-p", &port, "-t", &long_filter, "--store", st]);
    assert!(err.contains("longer than 65535 bytes"), "{err}");

    // Not one of these touched the keystore: no sequence block reserved, no lock taken.
    assert_unchanged(&before, &store, "bad publish/subscribe input");
}

#[test]
fn cli_publishes_empty_payloads_and_reports_a_broker_refusing_a_large_one() {
    let tmp = tempfile::tempdir().unwrap();
    let store = fresh_store(tmp.path());
    let st = s(&store);
    // A broker with a small maximum packet size, as some deployments configure.
    let config = MosquittoConfig {
        extra: vec!["max_packet_size 2048".into()],
        ..MosquittoConfig::default()
    };
    let (broker, limited) = match Mosquitto::start(&config).unwrap() {
        Some(m) => (Broker::Mosquitto(m), true),
        None => {
            notice("no Mosquitto: the broker's max_packet_size case is skipped");
            (plain_broker().unwrap(), false)
        }
    };
    let port = broker.port().to_string();
    let conn = ["-h", "127.0.0.1", "-p", &port, "--store", st];
    let publish = |args: &[&str], stdin: Option<&[u8]>| {
        let mut all = os(&["pub", "-q", "1", "-r"]);
        all.extend(os(args));
        all.extend(os(&conn));
        run(&all, stdin)
    };

    // Empty payloads are legitimate: -m "", an empty file, empty stdin.
    let empty = tmp.path().join("empty");
    std::fs::write(&empty, b"").unwrap();
    for (args, stdin) in [
        (vec!["-t", "a/empty/m", "-m", ""], None),
        (vec!["-t", "a/empty/f", "-f", s(&empty)], None),
        (vec!["-t", "a/empty/s", "-s"], Some(&b""[..])),
    ] {
        let out = publish(&args, stdin);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut sub = os(&["sub", "-t", "a/empty/#", "-C", "3", "-v", "-q", "1"]);
    sub.extend(os(&conn));
    let out = run(&sub, None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    lines.sort();
    assert_eq!(lines, ["a/empty/f ", "a/empty/m ", "a/empty/s "]);

    if limited {
        // 4000 bytes fit the client's limit (1 MiB) but not the broker's 2048: the broker drops
        // the connection. The CLI says so, points at the likely cause, and fails.
        let big = tmp.path().join("big");
        std::fs::write(&big, vec![7u8; 4000]).unwrap();
        let reserved = Store::open(&store).unwrap().reserved_sequence().unwrap();
        let out = publish(&["-t", "a/big", "-f", s(&big)], None);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{err}");
        assert!(
            err.contains("only 0 of 1 message(s) confirmed") && err.contains("max_packet_size"),
            "{err}"
        );
        assert!(err.contains("4"), "{err}");
        // Nothing lost: the reservation never goes back, and the next message gets through.
        let after = Store::open(&store).unwrap().reserved_sequence().unwrap();
        assert!(
            after >= reserved,
            "reservation went back: {reserved} -> {after}"
        );
        let out = publish(&["-t", "a/after", "-m", "still works"], None);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut sub = os(&["sub", "-t", "a/after", "-C", "1", "--show-sender"]);
        sub.extend(os(&conn));
        let out = run(&sub, None);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("still works"),
            "{text}"
        );
    }
}

#[test]
fn cli_keystore_commands_refuse_garbage_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let store = fresh_store(tmp.path());
    let st = s(&store);
    let peer = tmp.path().join("peer");
    ok(&["keygen", "peer", "--store", s(&peer)]);
    let peer_line = std::fs::read_to_string(peer.join("identity.pub")).unwrap();
    let before = snapshot(&store);

    let garbage = tmp.path().join("garbage");
    let mut bytes = vec![0u8; 300];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(151).wrapping_add(7);
    }
    std::fs::write(&garbage, &bytes).unwrap();
    let empty = tmp.path().join("empty");
    std::fs::write(&empty, b"").unwrap();
    let text = tmp.path().join("text");
    std::fs::write(&text, "hello\nworld\n").unwrap();
    let truncated = tmp.path().join("truncated.pub");
    std::fs::write(&truncated, &peer_line[..60]).unwrap();
    let own_pub = store.join("identity.pub");
    let flipped = tmp.path().join("flipped.pub");
    std::fs::write(
        &flipped,
        peer_line.replacen("mqseal-pub1:", "mqseal-pub2:", 1),
    )
    .unwrap();

    // trust: binary, empty, non-identity text, truncated or altered lines, missing path, a
    // directory, itself.
    let cases: [(&str, &str); 9] = [
        (s(&garbage), "not an identity.pub file (not text)"),
        (s(&empty), "no identity line in the file"),
        (s(&text), "not a valid identity line"),
        (s(&truncated), "not a valid identity line"),
        (s(&flipped), "not a valid identity line"),
        ("/nonexistent/identity.pub", "no such file"),
        (s(tmp.path()), "is a directory"),
        ("x mqseal-pub1:zz", "not a valid identity line"),
        (s(&own_pub), "already has this name or public key"),
    ];
    for (arg, expect) in cases {
        let err = fails(&["trust", arg, "--store", st]);
        assert!(err.contains(expect), "trust {arg}: {err}");
    }

    // grant --accept: garbage, empty, text, missing, a directory, someone else's grant, a
    // truncated grant.
    let grant_for_peer = tmp.path().join("peer.grant");
    {
        let admin = Store::open(&store).unwrap();
        let other = tempfile::tempdir().unwrap();
        let issuer = Store::create(other.path().join("issuer"), "issuer").unwrap();
        issuer
            .trust("peer", &Store::open(&peer).unwrap().public(), Roles::SENDER)
            .unwrap();
        issuer.create_key("z/#", 0).unwrap();
        let g = issuer.issue_grant("z/#", "peer").unwrap();
        std::fs::write(&grant_for_peer, &g.payload).unwrap();
        drop(admin);
    }
    let grant_bytes = std::fs::read(&grant_for_peer).unwrap();
    let cut = tmp.path().join("cut.grant");
    std::fs::write(&cut, &grant_bytes[..grant_bytes.len() / 2]).unwrap();
    for (arg, expect) in [
        (s(&garbage), "not a grant"),
        (s(&empty), "not a grant"),
        (s(&text), "not a grant"),
        (s(&cut), "not a grant"),
        ("/nonexistent/x.grant", "cannot read the grant file"),
        (s(tmp.path()), "cannot read the grant file"),
        (s(&grant_for_peer), "grant"),
    ] {
        let err = fails(&["grant", "--accept", arg, "--store", st]);
        assert!(err.contains(expect), "grant --accept {arg}: {err}");
    }

    // keygen: bad names, an existing store, bad tree filters; grant: bad filters, unknown peers.
    for name in ["bad name", "", "a/b", &"n".repeat(65)] {
        let dir = tmp.path().join("new");
        let err = fails(&["keygen", name, "--store", s(&dir)]);
        assert!(err.contains("invalid peer name"), "{name:?}: {err}");
        assert!(!dir.exists(), "keygen {name:?} left {}", dir.display());
    }
    let new_dir = tmp.path().join("new");
    let mut args = os(&["keygen", "--store", s(&new_dir)]);
    args.push(OsStr::from_bytes(b"n\xffme"));
    assert!(fails_with(&args, None).contains("invalid UTF-8"));
    let err = fails(&["keygen", "again", "--store", st]);
    assert!(err.contains("already exists"), "{err}");
    for filter in ["a/+/b", "a/#/b", "", "+", "a/b#"] {
        let err = fails(&["keygen", "--tree", filter, "--store", st]);
        assert!(err.contains("invalid key filter"), "{filter:?}: {err}");
        assert!(err.contains("fix:"), "{err}");
    }
    assert_unchanged(
        &before,
        &store,
        "bad trust, grant --accept and keygen input",
    );
    ok(&["trust", s(&peer.join("identity.pub")), "--store", st]);
    let before_grant = snapshot(&store);
    let err = fails(&["grant", "a/+/x", "--to", "peer", "--store", st]);
    assert!(err.contains("invalid key filter"), "{err}");
    let err = fails(&["grant", "b/#", "--to", "peer", "--store", st]);
    assert!(err.contains("b/#"), "{err}");
    let err = fails(&["grant", "a/#", "--to", "nobody", "--store", st]);
    assert!(err.contains("no trusted peer named \"nobody\""), "{err}");
    assert_unchanged(&before_grant, &store, "bad grants");
}

#[test]
fn cli_reports_damaged_keystore_files_and_never_repairs_them() {
    let tmp = tempfile::tempdir().unwrap();
    let pristine = fresh_store(tmp.path());
    // Use the store once (a publish and a subscription that cannot connect): its state files
    // and locks exist, as on any store in service.
    let port = free_port();
    fails(&[
        "pub",
        "-p",
        &port,
        "-t",
        "a/b",
        "-m",
        "x",
        "--store",
        s(&pristine),
    ]);
    fails(&["sub", "-p", &port, "-t", "a/#", "--store", s(&pristine)]);

    let damages: [(&str, &[u8]); 3] = [
        (
            "garbage",
            &[0xff, 0x00, 0x13, 0x37, 0xfe, 0x80, b'\n', 0x01],
        ),
        ("empty", b""),
        ("text", b"mqseal rules\n"),
    ];
    let files = [
        ("identity.key", "pub"),
        ("identity.pub", "pub"),
        ("keys", "pub"),
        ("state/seq", "pub"),
        ("trusted", "sub"),
        ("state/replay.snap", "sub"),
    ];
    let mut n = 0;
    for (file, command) in files {
        for (kind, bytes) in damages {
            if file == "trusted" && kind == "empty" {
                continue; // an empty trusted file is valid: nobody is trusted
            }
            n += 1;
            let store = tmp.path().join(format!("copy{n}"));
            let out = Command::new("cp")
                .args(["-a", s(&pristine), s(&store)])
                .output()
                .unwrap();
            assert!(out.status.success());
            std::fs::write(store.join(file), bytes).unwrap();
            let before = snapshot(&store);
            let err = match command {
                "pub" => fails(&[
                    "pub",
                    "-p",
                    &port,
                    "-t",
                    "a/b",
                    "-m",
                    "x",
                    "--store",
                    s(&store),
                ]),
                _ => fails(&["sub", "-p", &port, "-t", "a/#", "--store", s(&store)]),
            };
            let named = store.join(file);
            assert!(
                err.contains(s(&named)),
                "{kind} {file}: the error does not name the file: {err}"
            );
            assert!(
                err.contains("corrupt") || err.contains("truncated") || err.contains("not"),
                "{kind} {file}: {err}"
            );
            assert_unchanged(&before, &store, &format!("{kind} {file}"));
        }
    }
    // A truncated sequence file (a crash mid-write would leave the old one: this is tampering)
    // is refused, never reset to zero (which would reuse nonces).
    let store = tmp.path().join("truncated-seq");
    let out = Command::new("cp")
        .args(["-a", s(&pristine), s(&store)])
        .output()
        .unwrap();
    assert!(out.status.success());
    let seq = std::fs::read(store.join("state/seq")).unwrap();
    std::fs::write(store.join("state/seq"), &seq[..seq.len() - 10]).unwrap();
    let before = snapshot(&store);
    let err = fails(&[
        "pub",
        "-p",
        &port,
        "-t",
        "a/b",
        "-m",
        "x",
        "--store",
        s(&store),
    ]);
    assert!(
        err.contains("state/seq") && err.contains("truncated"),
        "{err}"
    );
    assert_unchanged(&before, &store, "truncated state/seq");
    // A missing one too, without telling the user to create a new identity first.
    std::fs::remove_file(store.join("state/seq")).unwrap();
    let err = fails(&[
        "pub",
        "-p",
        &port,
        "-t",
        "a/b",
        "-m",
        "x",
        "--store",
        s(&store),
    ]);
    assert!(
        err.contains("sequence state is lost") && !err.contains("mqseal keygen NAME"),
        "{err}"
    );
    assert!(!store.join("state/seq").exists());
}

#[test]
fn cli_inspect_refuses_garbage() {
    let tmp = tempfile::tempdir().unwrap();
    let garbage = tmp.path().join("garbage");
    std::fs::write(&garbage, [0x01u8, 0x02, 0xff, 0x00, 0x42]).unwrap();
    let empty = tmp.path().join("empty");
    std::fs::write(&empty, b"").unwrap();
    let json = tmp.path().join("json");
    std::fs::write(&json, br#"{"temp": 21.5}"#).unwrap();
    let huge = tmp.path().join("huge");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(600 << 20)
        .unwrap();
    for (arg, expect) in [
        (s(&garbage), "not an mqseal message"),
        (s(&empty), "not an mqseal message"),
        (s(&json), "not an mqseal message"),
        (s(&huge), "larger than any mqseal message"),
        ("/nonexistent/msg", "cannot read"),
        (s(tmp.path()), "cannot read"),
    ] {
        let err = fails(&["inspect", arg]);
        assert!(err.contains(expect), "inspect {arg}: {err}");
    }
    for hex in ["", "zz", "0", "00ff00"] {
        let err = fails(&["inspect", "--hex", hex]);
        assert!(
            err.contains("not an mqseal message"),
            "--hex {hex:?}: {err}"
        );
    }
    let err = fails_with(&os(&["inspect", "-"]), Some(b"\x00\x01garbage"));
    assert!(err.contains("not an mqseal message"), "{err}");
}

// ---- the Rust API -------------------------------------------------------------------------------

fn parties() -> (Sealer, Opener) {
    let id = Identity::from_seed([3; 32]);
    let key = TreeKey::from_secret("#", 1, [4; 32]).unwrap();
    let mut sealer = Sealer::new(id.clone(), Profile::Signed, 0);
    sealer.add_key(key.clone());
    let mut opener = Opener::new();
    opener.trust_sender(id.public());
    opener.add_key(key);
    (sealer, opener)
}

/// Topics no sealer or opener may accept.
fn bad_topics() -> Vec<String> {
    vec![
        String::new(),
        "a/+".into(),
        "a/#".into(),
        "#".into(),
        "a\0b".into(),
        "\0".into(),
        "x".repeat(65_536),
    ]
}

#[test]
fn api_refuses_bad_topics_and_sizes_without_spending_a_sequence_number() {
    let (mut sealer, mut opener) = parties();
    for topic in bad_topics() {
        assert_eq!(
            sealer.seal(&topic, b"x", false).unwrap_err(),
            Error::InvalidTopic,
            "{:.20}",
            topic
        );
        assert_eq!(mqseal::validate_topic(&topic), Err(Error::InvalidTopic));
    }
    assert_eq!(
        sealer.next_seq(),
        0,
        "a refused topic spent a sequence number"
    );
    // The longest valid topic works.
    let longest = "x".repeat(65_535);
    let sealed = sealer.seal(&longest, b"x", false).unwrap();
    assert_eq!(opener.open(&longest, &sealed).unwrap().payload, b"x");
    for topic in bad_topics() {
        assert_eq!(
            opener.open(&topic, &sealed).unwrap_err(),
            Error::InvalidTopic
        );
    }

    // Empty payloads are fine.
    let sealed = sealer.seal("a/b", b"", false).unwrap();
    assert!(opener.open("a/b", &sealed).unwrap().payload.is_empty());

    // Above the MQTT payload limit: refused before anything is spent (the buffer is zeroed
    // memory the kernel maps lazily).
    let next = sealer.next_seq();
    let huge = vec![0u8; mqseal::MAX_SEALED_LEN];
    assert_eq!(
        sealer.seal("a/b", &huge, false).unwrap_err(),
        Error::TooLarge
    );
    assert_eq!(sealer.next_seq(), next);
    assert_eq!(
        sealer.sealed_len("a/b", usize::MAX, &SealOptions::default()),
        Some(usize::MAX),
        "sealed_len must saturate, not overflow"
    );
    let huge_message = vec![0x01u8; mqseal::MAX_SEALED_LEN + 1];
    assert!(opener.open("a/b", &huge_message).is_err());
    assert_eq!(mqseal::inspect(&huge_message).unwrap_err(), Error::TooLarge);
}

#[test]
fn api_refuses_garbage_bytes_with_typed_errors() {
    let (mut sealer, mut opener) = parties();
    let sealed = sealer.seal("a/b", b"payload", false).unwrap();
    // Every truncation, every single-byte change, and some garbage: an error, never a panic,
    // never a delivery.
    for n in 0..sealed.len() {
        assert!(opener.open("a/b", &sealed[..n]).is_err(), "prefix {n}");
    }
    for i in 0..sealed.len() {
        let mut bad = sealed.clone();
        bad[i] ^= 0x5a;
        assert!(opener.open("a/b", &bad).is_err(), "byte {i} flipped");
    }
    for garbage in [
        &b""[..],
        b"\x00",
        b"\xff\xff\xff\xff",
        b"{\"temp\": 21.5}",
        &[0x01; 300],
    ] {
        assert!(opener.open("a/b", garbage).is_err());
        assert!(mqseal::Grant::from_bytes(garbage).is_err());
        assert!(mqseal::PublicIdentity::from_slice(garbage).is_err());
        assert!(mqseal::ReplayWindow::from_bytes(garbage).is_err());
    }
    // The untouched message still opens afterwards (nothing was recorded by the failures).
    assert_eq!(opener.open("a/b", &sealed).unwrap().payload, b"payload");
    let redelivered = Delivery {
        duplicate: true,
        ..Delivery::default()
    };
    assert_eq!(
        opener
            .open_delivered("a/b", &sealed, &redelivered)
            .unwrap_err(),
        Error::Duplicate
    );
}

#[test]
fn persistent_sealer_refusals_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::create(tmp.path().join("s"), "s").unwrap();
    store.create_key("a/#", 0).unwrap();
    let mut sealer = store.sealer(Profile::Signed).unwrap();
    let reserved = store.reserved_sequence().unwrap();
    let before = snapshot(store.dir());
    let next = sealer.next_seq();
    for topic in bad_topics() {
        assert!(matches!(
            sealer.seal(&topic, b"x", false),
            Err(StoreError::Core(Error::InvalidTopic))
        ));
    }
    assert!(matches!(
        sealer.seal("b/c", b"x", false),
        Err(StoreError::Core(Error::KeyNotFound))
    ));
    let huge = vec![0u8; mqseal::MAX_SEALED_LEN];
    assert!(matches!(
        sealer.seal("a/b", &huge, false),
        Err(StoreError::Core(Error::TooLarge))
    ));
    assert_eq!(sealer.next_seq(), next);
    assert_eq!(store.reserved_sequence().unwrap(), reserved);
    assert_unchanged(&before, store.dir(), "refused seals");
    // A valid message afterwards carries the next number.
    let sealed = sealer.seal("a/b", b"", false).unwrap();
    assert_eq!(mqseal::inspect(&sealed).unwrap().seq, next);
}

#[tokio::test]
async fn wrapper_refuses_bad_topics_filters_and_sizes_before_sending() {
    let (sealer, opener) = parties();
    let port: u16 = free_port().parse().unwrap();
    let mut options = mqseal_rumqttc::ConnectOptions::new("bad-input", "127.0.0.1", port);
    options.max_packet_size = 4096;
    let (client, _lp) =
        mqseal_rumqttc::SealedClient::new(options.v4().unwrap(), 10, sealer, opener);
    use mqseal_rumqttc::Error as W;
    use rumqttc::QoS::AtLeastOnce;
    for topic in bad_topics() {
        let err = client.publish(&topic, AtLeastOnce, false, b"x").await;
        assert!(
            matches!(err, Err(W::Seal(Error::InvalidTopic))),
            "{:.20}: {err:?}",
            topic
        );
    }
    let err = client
        .publish("a/b", AtLeastOnce, false, vec![0u8; 5000])
        .await
        .unwrap_err();
    assert!(matches!(err, W::PacketTooLarge { max: 4096, .. }), "{err}");
    assert!(err.to_string().contains("smaller payload"), "{err}");
    assert_eq!(
        client.with_sealer(|s| s.next_seq()),
        0,
        "a refusal spent a number"
    );
    for filter in ["", "a/#/b", "a/b#", "a+", "a/\0", &"x".repeat(70_000)] {
        let err = client.subscribe(filter, AtLeastOnce).await.unwrap_err();
        assert!(
            matches!(err, W::InvalidFilter { .. }),
            "{filter:.20}: {err}"
        );
        assert_eq!(err.code(), 306);
        assert!(err.to_string().len() < 200, "{err}");
    }
    // The empty payload is accepted (queued; nothing listens on the port).
    client
        .publish("a/b", AtLeastOnce, false, b"")
        .await
        .unwrap();
    assert_eq!(client.with_sealer(|s| s.next_seq()), 1);
}

#[test]
fn bad_topics_are_refused_by_both_helpers_consistently() {
    // The CLI's and the core's topic rules agree: what the core refuses, the CLI refuses (the
    // CLI only adds the reason).
    let tmp = tempfile::tempdir().unwrap();
    let store = fresh_store(tmp.path());
    let port = free_port();
    for topic in bad_topics() {
        if topic.contains('\0') {
            continue; // cannot be a command-line argument
        }
        let mut args = os(&["pub", "-p", &port, "-m", "x", "--store", s(&store), "-t"]);
        let topic = OsString::from(topic);
        args.push(&topic);
        let err = fails_with(&args, None);
        assert!(err.contains("invalid publish topic"), "{err:.200}");
    }
}
