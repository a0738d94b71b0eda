//! The `mqseal` binary's `pub`/`sub` against secured Mosquitto brokers started by the
//! `mqseal-broker-tests` harness: a TLS listener with a private CA (`--cafile`),
//! `require_certificate true` (`--cert/--key`), `allow_anonymous false` + `password_file`
//! (`-u/-P`), and an ACL over MQTT v3.1.1 and v5 (`-V`). Failures must exit non-zero with one
//! clear line (what failed, what to do), no backtrace, and never the password. Skipped with a
//! notice only where mosquitto or openssl is not installed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use mqseal_broker_tests::{
    MosquittoConfig, mosquitto_or_skip as start, pki_or_skip as pki, tls_listener,
};

fn mqseal(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mqseal"))
        .args(args)
        .env_remove("MQSEAL_STORE")
        // A panic would print its backtrace: the failure checks below would see it.
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn ok(args: &[&str]) -> String {
    let out = mqseal(args);
    assert!(
        out.status.success(),
        "mqseal {args:?} failed: {}",
        text(&out)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a command that must fail: returns everything it printed, checked to be one clear
/// `mqseal: ...` error without a panic or backtrace.
fn fails(args: &[&str]) -> String {
    let out = mqseal(args);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "mqseal {args:?}: {all}");
    assert!(out.stdout.is_empty(), "{all}");
    assert!(all.starts_with("mqseal: "), "{all}");
    assert_eq!(
        all.trim_end().lines().count(),
        1,
        "one line expected: {all}"
    );
    for noise in [
        "panicked",
        "backtrace",
        "RUST_BACKTRACE",
        "Error {",
        "Custom {",
    ] {
        assert!(!all.contains(noise), "{noise:?} in {all}");
    }
    eprint!("failed as expected: {all}");
    all
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A sensor and a dashboard keystore, both granted `plant/#` by an admin (grants by file).
struct Stores {
    _tmp: tempfile::TempDir,
    sensor: PathBuf,
    dash: PathBuf,
}

impl Stores {
    fn new() -> Stores {
        let tmp = tempfile::tempdir().unwrap();
        let [admin, sensor, dash] = ["admin", "sensor", "dash"].map(|n| tmp.path().join(n));
        ok(&["keygen", "admin", "--store", s(&admin)]);
        ok(&["keygen", "sensor", "--store", s(&sensor)]);
        ok(&["keygen", "dash", "--store", s(&dash)]);
        ok(&["keygen", "--tree", "plant/#", "--store", s(&admin)]);
        let admin_pub = admin.join("identity.pub");
        for (who, dir) in [("sensor", &sensor), ("dash", &dash)] {
            ok(&["trust", s(&dir.join("identity.pub")), "--store", s(&admin)]);
            ok(&["trust", s(&admin_pub), "--issuer", "--store", s(dir)]);
            let grant = tmp.path().join(format!("{who}.grant"));
            ok(&[
                "grant",
                "plant/#",
                "--to",
                who,
                "-o",
                s(&grant),
                "--store",
                s(&admin),
            ]);
            ok(&["grant", "--accept", s(&grant), "--store", s(dir)]);
        }
        ok(&[
            "trust",
            s(&sensor.join("identity.pub")),
            "--store",
            s(&dash),
        ]);
        Stores {
            _tmp: tmp,
            sensor,
            dash,
        }
    }

    /// `mqseal pub ... -r -q 1` as the sensor, then `mqseal sub -C 1` as the dashboard: the
    /// retained message is its first (and only) line, so no waiting for the subscription.
    fn round_trip(&self, conn: &[&str], topic: &str, message: &str) {
        let mut args = vec!["pub", "-t", topic, "-m", message, "-q", "1", "-r"];
        args.extend(["--store", s(&self.sensor)]);
        args.extend(conn);
        ok(&args);
        let mut args = vec!["sub", "-t", "plant/#", "-C", "1", "-v", "--show-sender"];
        args.extend(["--store", s(&self.dash)]);
        args.extend(conn);
        let out = ok(&args);
        assert_eq!(out, format!("{topic} [sensor #0] {message}\n"));
    }
}

#[test]
fn pub_and_sub_over_a_tls_listener_with_a_private_ca() {
    let Some(pki) = pki() else { return };
    let Some(broker) = start(&tls_listener(&pki, false)) else {
        return;
    };
    let port = broker.port.to_string();
    let stores = Stores::new();
    let ca = pki.ca();
    stores.round_trip(
        &["-h", "127.0.0.1", "-p", &port, "--cafile", s(&ca)],
        "plant/7/temp",
        "21.5",
    );

    // The wrong CA: the broker's certificate is refused, and the fix names --cafile.
    let rogue = pki.rogue_ca();
    let err = fails(&[
        "pub",
        "-h",
        "127.0.0.1",
        "-p",
        &port,
        "--cafile",
        s(&rogue),
        "-t",
        "plant/7/temp",
        "-m",
        "x",
        "--store",
        s(&stores.sensor),
    ]);
    assert!(
        err.contains("cannot connect to 127.0.0.1:")
            && err.contains("certificate is not trusted")
            && err.contains("--cafile"),
        "{err}"
    );
}

#[test]
fn pub_and_sub_with_require_certificate() {
    let Some(pki) = pki() else { return };
    let Some(broker) = start(&tls_listener(&pki, true)) else {
        return;
    };
    let port = broker.port.to_string();
    let stores = Stores::new();
    let (ca, cert, key) = (pki.ca(), pki.client_cert(), pki.client_key());
    stores.round_trip(
        &[
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "--cafile",
            s(&ca),
            "--cert",
            s(&cert),
            "--key",
            s(&key),
        ],
        "plant/7/door",
        "open",
    );

    // A client certificate from a CA the broker does not trust, and none at all: both refused
    // by the broker, for pub and sub alike, with the flags to fix it.
    let (rogue_cert, rogue_key) = (pki.rogue_client_cert(), pki.rogue_client_key());
    let with_rogue = ["--cert", s(&rogue_cert), "--key", s(&rogue_key)];
    for client_cert in [&with_rogue[..], &[]] {
        for command in ["pub", "sub"] {
            let mut args = vec![command, "-h", "127.0.0.1", "-p", &port, "--cafile", s(&ca)];
            args.extend(client_cert);
            args.extend(["-t", "plant/7/door", "--store"]);
            if command == "pub" {
                args.extend([s(&stores.sensor), "-m", "x"]);
            } else {
                args.extend([s(&stores.dash), "-C", "1"]);
            }
            let err = fails(&args);
            assert!(
                err.contains(&format!("cannot connect to 127.0.0.1:{port}"))
                    && err.contains("refused the TLS handshake")
                    && err.contains("fix: the broker requires a client certificate")
                    && err.contains("--cert and --key"),
                "{args:?}: {err}"
            );
            // A refused certificate and a missing one get their own fix.
            let hint = if client_cert.is_empty() {
                "(require_certificate true)"
            } else {
                "refused this one"
            };
            assert!(err.contains(hint), "{args:?}: {err}");
        }
    }
}

#[test]
fn pub_and_sub_with_a_password_file() {
    let config = MosquittoConfig {
        users: vec![
            ("sensor".into(), "s3nsor-pass".into()),
            ("dashboard".into(), "dash-pass".into()),
        ],
        ..MosquittoConfig::default()
    };
    let Some(broker) = start(&config) else { return };
    let port = broker.port.to_string();
    let stores = Stores::new();
    let conn = ["-h", "127.0.0.1", "-p", &port];
    let mut args = vec![
        "pub",
        "-t",
        "plant/7/temp",
        "-m",
        "22.0",
        "-q",
        "1",
        "-r",
        "-u",
        "sensor",
        "-P",
        "s3nsor-pass",
        "--store",
        s(&stores.sensor),
    ];
    args.extend(conn);
    ok(&args);
    let mut args = vec![
        "sub",
        "-t",
        "plant/#",
        "-C",
        "1",
        "-u",
        "dashboard",
        "-P",
        "dash-pass",
        "--store",
        s(&stores.dash),
    ];
    args.extend(conn);
    assert_eq!(ok(&args), "22.0\n");

    // A wrong password, over both protocol versions, and no credentials at all.
    let wrong = "Wr0ng-Secret-Pw";
    for version in ["311", "5"] {
        for command in ["pub", "sub"] {
            let mut args = vec![command, "-V", version, "-t", "plant/7/temp"];
            args.extend(["-u", "sensor", "-P", wrong, "--store", s(&stores.sensor)]);
            args.extend(if command == "pub" {
                ["-m", "x"]
            } else {
                ["-C", "1"]
            });
            args.extend(conn);
            let err = fails(&args);
            assert!(
                err.contains("the broker refused the connection") && err.contains("-u/-P"),
                "{args:?}: {err}"
            );
            assert!(!err.contains(wrong), "the password leaked: {err}");
        }
    }
    let mut args = vec!["pub", "-t", "plant/7/temp", "-m", "x"];
    args.extend(["--store", s(&stores.sensor)]);
    args.extend(conn);
    let err = fails(&args);
    assert!(
        err.contains("the broker refused the connection") && err.contains("-u/-P"),
        "{err}"
    );
}

#[test]
fn acl_refusal_is_silent_with_v311_and_reported_with_v5() {
    let config = MosquittoConfig {
        users: vec![
            ("sensor".into(), "s3nsor-pass".into()),
            ("dashboard".into(), "dash-pass".into()),
        ],
        acl: Some(
            "user sensor\ntopic write plant/7/#\n\nuser dashboard\ntopic read plant/#\n".into(),
        ),
        ..MosquittoConfig::default()
    };
    let Some(broker) = start(&config) else { return };
    let port = broker.port.to_string();
    let stores = Stores::new();
    let publish = |version: &str, qos: &str, topic: &str, message: &str| {
        let mut args = vec!["pub", "-V", version, "-q", qos, "-r", "-t", topic];
        args.extend(["-m", message, "-u", "sensor", "-P", "s3nsor-pass"]);
        args.extend(["-h", "127.0.0.1", "-p", &port, "--store", s(&stores.sensor)]);
        mqseal(&args)
    };

    // v5, QoS 1 and 2: the broker answers "not authorized" (reason code 0x87), pub says so.
    for qos in ["1", "2"] {
        let out = publish("5", qos, "plant/8/temp", "forbidden");
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        let err = text(&out);
        assert!(
            err.starts_with(
                "mqseal: the broker refused the publish: not authorized (check its ACL)"
            ) && err.contains("\"plant/8/temp\""),
            "{err}"
        );
        assert!(
            !err.contains("s3nsor-pass") && !err.contains("panicked"),
            "{err}"
        );
    }
    // v3.1.1: Mosquitto drops it and still acknowledges it; pub cannot know (documented).
    let out = publish("311", "1", "plant/8/temp", "forbidden");
    assert!(out.status.success(), "{}", text(&out));
    // Allowed topics go through with both versions.
    for version in ["311", "5"] {
        let out = publish(version, "1", &format!("plant/7/v{version}"), version);
        assert!(out.status.success(), "{}", text(&out));
    }

    // The dashboard (v5) gets the two allowed retained messages and nothing of plant/8.
    let mut args = vec!["sub", "-V", "5", "-t", "plant/#", "-C", "2", "-v"];
    args.extend([
        "-u",
        "dashboard",
        "-P",
        "dash-pass",
        "--store",
        s(&stores.dash),
    ]);
    args.extend(["-h", "127.0.0.1", "-p", &port]);
    let out = ok(&args);
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort_unstable();
    assert_eq!(lines, ["plant/7/v311 311", "plant/7/v5 5"]);
}

#[test]
fn pub_and_sub_with_a_broker_url() {
    let Some(pki) = pki() else { return };
    let config = MosquittoConfig {
        users: vec![
            ("sensor".into(), "s3nsor-pass".into()),
            ("dashboard".into(), "dash-pass".into()),
        ],
        ..tls_listener(&pki, false)
    };
    let Some(broker) = start(&config) else { return };
    let port = broker.port;
    let stores = Stores::new();
    let ca = pki.ca();
    // mosquitto_pub -L: credentials, host, port and topic in one URL; TLS from mqtts://.
    let url = format!("mqtts://sensor:s3nsor-pass@127.0.0.1:{port}/plant/7/temp");
    ok(&[
        "pub",
        "-L",
        &url,
        "--cafile",
        s(&ca),
        "-m",
        "21.5",
        "-q",
        "1",
        "-r",
        "--store",
        s(&stores.sensor),
    ]);
    let url = format!("mqtts://dashboard:dash-pass@127.0.0.1:{port}/plant/#");
    let out = ok(&[
        "sub",
        "-L",
        &url,
        "--cafile",
        s(&ca),
        "-C",
        "1",
        "-v",
        "--show-sender",
        "--store",
        s(&stores.dash),
    ]);
    assert_eq!(out, "plant/7/temp [sensor #0] 21.5\n");

    // A wrong password in the URL: refused by the broker, the password never printed.
    let wrong = format!("mqtts://sensor:Wr0ng-Secret-Pw@127.0.0.1:{port}/plant/7/temp");
    let err = fails(&[
        "pub",
        "-L",
        &wrong,
        "--cafile",
        s(&ca),
        "-m",
        "x",
        "--store",
        s(&stores.sensor),
    ]);
    assert!(err.contains("the broker refused the connection"), "{err}");
    assert!(
        !err.contains("Wr0ng-Secret-Pw"),
        "the password leaked: {err}"
    );

    // Malformed URLs and a topic given twice: refused before connecting.
    for (url, expected) in [
        (
            format!("http://sensor:Wr0ng-Secret-Pw@127.0.0.1:{port}/a"),
            "invalid broker URL",
        ),
        (
            "mqtts://sensor:Wr0ng-Secret-Pw@127.0.0.1:99999/a".to_string(),
            "the port is not a number",
        ),
        (
            format!("mqtt://127.0.0.1:{port}/plant/7/temp"),
            "a CA file was given for an mqtt://",
        ),
    ] {
        let err = fails(&[
            "pub",
            "-L",
            &url,
            "--cafile",
            s(&ca),
            "-m",
            "x",
            "--store",
            s(&stores.sensor),
        ]);
        assert!(err.contains(expected), "{url}: {err}");
        assert!(
            !err.contains("Wr0ng-Secret-Pw"),
            "the password leaked: {err}"
        );
    }
    let url = format!("mqtts://127.0.0.1:{port}/plant/7/temp");
    let err = fails(&[
        "pub",
        "-L",
        &url,
        "-t",
        "plant/7/temp",
        "--cafile",
        s(&ca),
        "-m",
        "x",
        "--store",
        s(&stores.sensor),
    ]);
    assert!(err.contains("the topic is given twice"), "{err}");
}
