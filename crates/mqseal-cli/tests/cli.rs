//! The `mqseal` binary end to end: demo, keystore commands, pub/sub through a real broker
//! (Mosquitto, or the embedded rumqttd without it), inspect, and the error messages.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn mqseal(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mqseal"))
        .args(args)
        .env_remove("MQSEAL_STORE")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn ok(args: &[&str]) -> String {
    let out = mqseal(args);
    assert!(
        out.status.success(),
        "mqseal {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn fails(args: &[&str]) -> String {
    let out = mqseal(args);
    assert!(!out.status.success(), "mqseal {args:?} should fail");
    String::from_utf8(out.stderr).unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn demo_runs_on_the_embedded_broker_and_exits() {
    let out = ok(&["demo"]);
    assert!(out.contains("embedded MQTT broker"), "{out}");
    assert!(out.contains("\"21.5 C\""), "{out}");
    assert!(!out.contains("PLAINTEXT LEAKED"), "{out}");
    assert!(
        out.contains("[replay]") && out.contains("[key_not_found]"),
        "{out}"
    );
    assert!(out.contains("3 delivered, 2 rejected"), "{out}");
}

#[test]
fn demo_runs_against_a_real_broker() {
    let broker = mqseal_broker_tests::plain_broker().unwrap();
    let port = broker.port().to_string();
    let out = ok(&["demo", "-h", "127.0.0.1", "-p", &port]);
    assert!(out.contains("using the broker at 127.0.0.1"), "{out}");
    assert!(out.contains("\"48 %\""), "{out}");
    assert!(out.contains("3 delivered, 2 rejected"), "{out}");
}

#[test]
fn keygen_trust_grant_pub_sub_through_a_broker() {
    let broker = mqseal_broker_tests::plain_broker().unwrap();
    let port = broker.port().to_string();
    let tmp = tempfile::tempdir().unwrap();
    let (admin, sensor, dash) = (
        tmp.path().join("admin"),
        tmp.path().join("sensor"),
        tmp.path().join("dash"),
    );
    let out = ok(&["keygen", "admin", "--store", s(&admin)]);
    assert!(out.contains("fingerprint"), "{out}");
    let key_mode = std::fs::metadata(admin.join("identity.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(key_mode & 0o777, 0o600);
    ok(&["keygen", "sensor", "--store", s(&sensor)]);
    ok(&["keygen", "dash", "--store", s(&dash)]);
    ok(&["keygen", "--tree", "plant/#", "--store", s(&admin)]);

    let pubfile = |dir: &Path| dir.join("identity.pub");
    ok(&["trust", s(&pubfile(&sensor)), "--store", s(&admin)]);
    ok(&["trust", s(&pubfile(&dash)), "--store", s(&admin)]);
    ok(&[
        "trust",
        s(&pubfile(&admin)),
        "--issuer",
        "--store",
        s(&sensor),
    ]);
    ok(&[
        "trust",
        s(&pubfile(&admin)),
        "--issuer",
        "--store",
        s(&dash),
    ]);
    ok(&["trust", s(&pubfile(&sensor)), "--store", s(&dash)]);

    // One grant by file, one in-band through the broker.
    let grant_file = tmp.path().join("sensor.grant");
    ok(&[
        "grant",
        "plant/7/#",
        "--to",
        "sensor",
        "-o",
        s(&grant_file),
        "--store",
        s(&admin),
    ]);
    let out = ok(&["grant", "--accept", s(&grant_file), "--store", s(&sensor)]);
    assert!(out.contains("accepted the key of plant/7/#"), "{out}");
    let conn = ["-h", "127.0.0.1", "-p", port.as_str()];
    let mut args = vec![
        "grant",
        "plant/#",
        "--to",
        "dash",
        "--publish",
        "--store",
        s(&admin),
    ];
    args.extend(conn);
    ok(&args);
    let mut args = vec!["grant", "--fetch", "--store", s(&dash)];
    args.extend(conn);
    let out = ok(&args);
    assert!(out.contains("accepted the key of plant/#"), "{out}");

    // A retained message first, so the subscriber's first line proves it is subscribed.
    let mut args = vec![
        "pub",
        "-t",
        "plant/7/temp",
        "-m",
        "21.5",
        "-q",
        "1",
        "-r",
        "--store",
        s(&sensor),
    ];
    args.extend(conn);
    ok(&args);
    let mut sub = Command::new(env!("CARGO_BIN_EXE_mqseal"))
        .args([
            "sub",
            "-t",
            "plant/#",
            "-q",
            "1",
            "-C",
            "3",
            "-v",
            "--show-sender",
        ])
        .args(["--store", s(&dash)])
        .args(conn)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(sub.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert_eq!(first, "plant/7/temp [sensor #0] 21.5");
    let mut args = vec![
        "pub",
        "-t",
        "plant/7/door",
        "-l",
        "-q",
        "2",
        "--store",
        s(&sensor),
    ];
    args.extend(conn);
    let mut publisher = Command::new(env!("CARGO_BIN_EXE_mqseal"))
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = publisher.stdin.take().unwrap();
        stdin.write_all(b"open\nclosed\n").unwrap();
    }
    let out = publisher.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    // A new process resumes past the previous one's durable reservation (never below it).
    assert_eq!(rest.len(), 2, "{rest:?}");
    let seq = |line: &str| -> u64 {
        line.split('#')
            .nth(1)
            .unwrap()
            .split(']')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(rest[0].starts_with("plant/7/door [sensor #") && rest[0].ends_with("] open"));
    assert!(rest[1].ends_with("] closed"));
    assert!(
        seq(&rest[0]) > 0 && seq(&rest[1]) == seq(&rest[0]) + 1,
        "{rest:?}"
    );
    assert!(sub.wait().unwrap().success());

    // The sensor only holds plant/7/#: publishing elsewhere fails before connecting.
    let mut args = vec![
        "pub",
        "-t",
        "plant/8/temp",
        "-m",
        "x",
        "--store",
        s(&sensor),
    ];
    args.extend(conn);
    let err = fails(&args);
    assert!(
        err.contains("no key in") && err.contains("mqseal grant"),
        "{err}"
    );
}

#[test]
fn errors_say_what_why_and_how_to_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("id");

    // Missing keystore.
    let err = fails(&["pub", "-t", "a/b", "-m", "x", "--store", s(&store)]);
    assert!(err.contains(s(&store)) && err.contains("keygen"), "{err}");

    ok(&["keygen", "me", "--store", s(&store)]);
    ok(&["keygen", "--tree", "#", "--store", s(&store)]);

    // Unreachable broker (a port nothing listens on).
    let port = mqseal_rumqttc::embedded::free_port().unwrap().to_string();
    let err = fails(&[
        "pub",
        "-h",
        "127.0.0.1",
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
        err.contains("cannot connect") && err.contains("is the broker running"),
        "{err}"
    );

    // Bad certificate file.
    let bad = tmp.path().join("ca.crt");
    std::fs::write(&bad, "not a certificate").unwrap();
    let err = fails(&[
        "pub",
        "--cafile",
        s(&bad),
        "-t",
        "a/b",
        "-m",
        "x",
        "--store",
        s(&store),
    ]);
    assert!(err.contains(s(&bad)) && err.contains("PEM"), "{err}");
    let err = fails(&[
        "sub",
        "--cafile",
        s(&tmp.path().join("nope.crt")),
        "-t",
        "#",
        "--store",
        s(&store),
    ]);
    assert!(
        err.contains("nope.crt") && err.contains("check the path"),
        "{err}"
    );

    // Wildcards are not publish topics.
    let err = fails(&["pub", "-t", "a/+", "-m", "x", "--store", s(&store)]);
    assert!(err.contains("wildcard (+ or #)"), "{err}");

    // A secret key readable by others is refused, with the chmod to run.
    let key = store.join("identity.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = fails(&["pub", "-t", "a/b", "-m", "x", "--store", s(&store)]);
    assert!(err.contains("chmod 600"), "{err}");
}

#[test]
fn inspect_shows_the_header_only() {
    let id = mqseal::Identity::from_seed([9; 32]);
    let mut sealer = mqseal::Sealer::new(id.clone(), mqseal::Profile::Signed, 0);
    sealer.add_key(mqseal::TreeKey::from_secret("#", 4, [1; 32]).unwrap());
    let sealed = sealer.seal("x/y", b"secret payload", false).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("msg.bin");
    std::fs::write(&file, &sealed).unwrap();
    let out = ok(&["inspect", s(&file)]);
    assert!(out.contains("epoch      4"), "{out}");
    assert!(out.contains(&id.public().sender_id().to_string()), "{out}");
    assert!(!out.contains("secret payload"));
    let hex: String = sealed.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(ok(&["inspect", "--hex", &hex]), out);
    let err = fails(&["inspect", "--hex", "00ff"]);
    assert!(err.contains("not an mqseal message"), "{err}");
}

#[test]
fn trust_with_a_scope_and_group_mac_filters() {
    let tmp = tempfile::tempdir().unwrap();
    let (me, lab, dev) = (
        tmp.path().join("me"),
        tmp.path().join("lab"),
        tmp.path().join("dev"),
    );
    for (name, dir) in [("me", &me), ("lab", &lab), ("dev", &dev)] {
        ok(&["keygen", name, "--store", s(dir)]);
    }
    let out = ok(&[
        "trust",
        s(&lab.join("identity.pub")),
        "--issuer",
        "--scope",
        "lab/#",
        "--scope",
        "my room/#",
        "--store",
        s(&me),
    ]);
    assert!(
        out.contains("as issuer (grants under lab/#, my room/#)"),
        "{out}"
    );
    let out = ok(&[
        "trust",
        s(&dev.join("identity.pub")),
        "--group-mac",
        "plant/3/#",
        "--store",
        s(&me),
    ]);
    assert!(out.contains("group-mac messages under plant/3/#"), "{out}");
    let trusted = std::fs::read_to_string(me.join("trusted")).unwrap();
    assert!(
        trusted.contains(" issuer scope=lab/# scope=my%20room/#\n"),
        "{trusted}"
    );
    assert!(
        trusted.contains(" sender group-mac=plant/3/#\n"),
        "{trusted}"
    );
    // A scope needs --issuer; an invalid filter is refused naming it.
    let err = fails(&[
        "trust",
        s(&dev.join("identity.pub")),
        "--scope",
        "a/#",
        "--store",
        s(&lab),
    ]);
    assert!(err.contains("--issuer"), "{err}");
    let err = fails(&[
        "trust",
        s(&dev.join("identity.pub")),
        "--issuer",
        "--scope",
        "a/#/b",
        "--store",
        s(&lab),
    ]);
    assert!(err.contains("a/#/b"), "{err}");
    assert!(
        !std::fs::read_to_string(lab.join("trusted"))
            .unwrap()
            .contains("dev"),
        "a refused trust leaves nothing behind"
    );
}

#[test]
fn rotate_ahead_of_time_with_a_lifetime() {
    let tmp = tempfile::tempdir().unwrap();
    let (admin, sensor, out) = (
        tmp.path().join("admin"),
        tmp.path().join("sensor"),
        tmp.path().join("out"),
    );
    std::fs::create_dir(&out).unwrap();
    ok(&["keygen", "admin", "--store", s(&admin)]);
    ok(&["keygen", "sensor", "--store", s(&sensor)]);
    ok(&[
        "trust",
        s(&sensor.join("identity.pub")),
        "--store",
        s(&admin),
    ]);
    ok(&[
        "trust",
        s(&admin.join("identity.pub")),
        "--issuer",
        "--store",
        s(&sensor),
    ]);
    let created = ok(&[
        "keygen",
        "--tree",
        "plant/#",
        "--valid-for",
        "30d",
        "--store",
        s(&admin),
    ]);
    assert!(created.contains("(epoch 1, valid until 20"), "{created}");
    let grant = tmp.path().join("sensor.grant");
    ok(&[
        "grant",
        "plant/7/#",
        "--to",
        "sensor",
        "-o",
        s(&grant),
        "--store",
        s(&admin),
    ]);
    ok(&["grant", "--accept", s(&grant), "--store", s(&sensor)]);

    let rotated = ok(&[
        "rotate",
        "plant/#",
        "--at",
        "+1d",
        "--valid-for",
        "30d",
        "-o",
        s(&out),
        "--store",
        s(&admin),
    ]);
    assert!(
        rotated.contains("rotated plant/# to epoch 2 (valid from 20"),
        "{rotated}"
    );
    assert!(rotated.contains("epoch 1 is retired"), "{rotated}");
    let accepted = ok(&[
        "grant",
        "--accept",
        s(&out.join("sensor.grant")),
        "--store",
        s(&sensor),
    ]);
    assert!(accepted.contains("plant/7/# (epoch 2)"), "{accepted}");
    let keys = std::fs::read_to_string(sensor.join("keys")).unwrap();
    assert!(
        keys.contains(" not-before=") && keys.contains(" valid-until="),
        "{keys}"
    );

    let err = fails(&[
        "rotate",
        "plant/#",
        "--exclude",
        "nobody",
        "--store",
        s(&admin),
    ]);
    assert!(err.contains("not a member of plant/#"), "{err}");
    let err = fails(&[
        "rotate",
        "plant/#",
        "--valid-for",
        "0",
        "--store",
        s(&admin),
    ]);
    assert!(err.contains("--valid-for 0"), "{err}");
    let err = fails(&["rotate", "plant/#", "--at", "soon", "--store", s(&admin)]);
    assert!(err.contains("not a time"), "{err}");

    // A key that has not begun: publishing says so before connecting to any broker.
    ok(&[
        "keygen",
        "--tree",
        "lab/#",
        "--not-before",
        "+1d",
        "--store",
        s(&sensor),
    ]);
    let err = fails(&["pub", "-t", "lab/x", "-m", "hi", "--store", s(&sensor)]);
    assert!(err.contains("outside its validity"), "{err}");
}
