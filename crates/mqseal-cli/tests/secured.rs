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
    MosquittoConfig, SEEDS_KEY_PASSPHRASE, find_tool, mosquitto_or_skip as start,
    pki_or_skip as pki, seeds_broker_config, seeds_pki_or_skip, tls_listener,
};

fn mqseal(args: &[&str]) -> Output {
    mqseal_env(args, &[])
}

fn mqseal_env(args: &[&str], env: &[(&str, String)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mqseal"))
        .args(args)
        .env_remove("MQSEAL_STORE")
        .env_remove("MQSEAL_KEY_PASSPHRASE")
        .envs(env.iter().map(|(k, v)| (k, v)))
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

/// The users of the seeds' password walkthrough, and an ACL: `userclient` publishes under
/// `plant/7/`, `userbroker` reads `plant/#`.
const SEEDS_USERS: [(&str, &str); 2] = [("userclient", "client-pw"), ("userbroker", "broker-pw")];
const SEEDS_ACL: &str =
    "user userclient\ntopic write plant/7/#\n\nuser userbroker\ntopic read plant/#\n";

/// One case of the matrix: the connection flags (the same for mosquitto_pub and mqseal pub).
struct Case {
    name: &'static str,
    /// Which broker: 0 seeds (require_certificate), 1 without require_certificate, 2 expired
    /// server certificate, 3 not yet valid.
    broker: usize,
    flags: Vec<String>,
    env: Vec<(&'static str, String)>,
    /// `None`: delivered; `Some(parts)`: refused, mqseal's one-line message contains them all.
    refused: Option<Vec<String>>,
    /// mosquitto_pub is run too (not where it would ask for a passphrase on the terminal).
    compare: bool,
}

/// mosquitto_pub's verdict: delivered or not. It exits 0 when a v5 broker refuses a QoS 1
/// publish (printing "Warning: Publish 1 failed: Not authorized."), which counts as refused.
/// Run without a controlling terminal (setsid), so it never waits for a passphrase.
fn mosquitto_pub_delivers(flags: &[String], env: &[(&'static str, String)]) -> (bool, String) {
    let tool = find_tool("mosquitto_pub").expect("mosquitto_pub (mosquitto-clients)");
    let mut cmd = match find_tool("setsid") {
        Some(setsid) => {
            let mut c = Command::new(setsid);
            c.arg(tool);
            c
        }
        None => Command::new(tool),
    };
    let out = cmd
        .args(flags)
        .args(["-t", "plant/7/temp", "-m", "21.5", "-q", "1"])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let all = text(&out);
    (
        out.status.success() && !all.contains("failed: Not authorized"),
        all,
    )
}

#[test]
fn the_seeds_mosquitto_as_users_set_it_up_mqseal_and_mosquitto_pub_agree() {
    let Some(pki) = seeds_pki_or_skip() else {
        return;
    };
    if find_tool("mosquitto_pub").is_none() {
        mqseal_broker_tests::notice("mosquitto_pub is not installed; test skipped");
        return;
    }
    let users = SEEDS_USERS;
    let configs = [
        seeds_broker_config(&pki, "server.crt", true, &users, Some(SEEDS_ACL)),
        seeds_broker_config(&pki, "server.crt", false, &users, Some(SEEDS_ACL)),
        seeds_broker_config(&pki, "expired.crt", true, &users, Some(SEEDS_ACL)),
        seeds_broker_config(&pki, "future.crt", true, &users, Some(SEEDS_ACL)),
    ];
    let mut brokers = Vec::new();
    for config in &configs {
        let Some(b) = start(config) else { return };
        brokers.push(b);
    }
    let stores = Stores::new();
    let f = |name: &str| pki.file(name).to_str().unwrap().to_string();
    let capath = pki.capath().to_str().unwrap().to_string();
    let empty_dir = tempfile::tempdir().unwrap();
    let empty = empty_dir.path().to_str().unwrap().to_string();
    // The seeds' publisher: --cafile, --cert/--key, -u/-P (the walkthrough's last command).
    let seeds = |host: &str| -> Vec<String> {
        [
            "-h",
            host,
            "--cafile",
            &f("ca.crt"),
            "--cert",
            &f("client.crt"),
            "--key",
            &f("client.key"),
            "-u",
            "userclient",
            "-P",
            "client-pw",
        ]
        .map(String::from)
        .to_vec()
    };
    let with = |base: Vec<String>, replace: &[(&str, &str)], add: &[&str]| -> Vec<String> {
        let mut out = Vec::new();
        let mut it = base.into_iter();
        while let Some(flag) = it.next() {
            let value = it.next().unwrap();
            match replace.iter().find(|(k, _)| *k == flag) {
                Some((_, "")) => {}
                Some((_, v)) => out.extend([flag, v.to_string()]),
                None => out.extend([flag, value]),
            }
        }
        out.extend(add.iter().map(|a| a.to_string()));
        out
    };
    let parts = |p: &[&str]| Some(p.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    let cases = vec![
        Case {
            name: "the seeds' publisher: v1 server certificate, CN=127.0.0.1, no SAN",
            broker: 0,
            flags: seeds("127.0.0.1"),
            env: vec![],
            refused: None,
            compare: true,
        },
        Case {
            name: "the seeds' subscriber flags: the server's certificate as client certificate",
            broker: 0,
            flags: with(
                seeds("127.0.0.1"),
                &[("--cert", &f("server.crt")), ("--key", &f("server.key"))],
                &[],
            ),
            env: vec![],
            refused: None,
            compare: true,
        },
        Case {
            name: "--capath with the CA under its hash",
            broker: 0,
            flags: with(
                seeds("127.0.0.1"),
                &[("--cafile", "")],
                &["--capath", &capath],
            ),
            env: vec![],
            refused: None,
            compare: true,
        },
        Case {
            name: "--tls-version tlsv1.3",
            broker: 0,
            flags: with(seeds("127.0.0.1"), &[], &["--tls-version", "tlsv1.3"]),
            env: vec![],
            refused: None,
            compare: true,
        },
        Case {
            name: "--tls-version tlsv1.2 --ciphers",
            broker: 0,
            flags: with(
                seeds("127.0.0.1"),
                &[],
                &[
                    "--tls-version",
                    "tlsv1.2",
                    "--ciphers",
                    "ECDHE-RSA-AES128-GCM-SHA256",
                ],
            ),
            env: vec![],
            refused: None,
            compare: true,
        },
        Case {
            name: "--tls-use-os-certs with the CA in the system store (SSL_CERT_FILE)",
            broker: 1,
            flags: with(
                seeds("127.0.0.1"),
                &[("--cafile", ""), ("--cert", ""), ("--key", "")],
                &["--tls-use-os-certs"],
            ),
            env: vec![
                ("SSL_CERT_FILE", f("ca.crt")),
                ("SSL_CERT_DIR", empty.clone()),
            ],
            refused: None,
            compare: true,
        },
        Case {
            name: "--tls-use-os-certs without the private CA",
            broker: 1,
            flags: with(
                seeds("127.0.0.1"),
                &[("--cafile", ""), ("--cert", ""), ("--key", "")],
                &["--tls-use-os-certs"],
            ),
            env: vec![
                ("SSL_CERT_FILE", f("other-ca.crt")),
                ("SSL_CERT_DIR", empty.clone()),
            ],
            refused: parts(&[
                "certificate is not trusted",
                "signed by CN=seeds CA",
                "--cafile",
            ]),
            compare: true,
        },
        Case {
            name: "the wrong CA in --cafile",
            broker: 0,
            flags: with(seeds("127.0.0.1"), &[("--cafile", &f("other-ca.crt"))], &[]),
            env: vec![],
            refused: parts(&[
                "the broker's certificate is not trusted: it (CN=127.0.0.1) is signed by CN=seeds CA",
                "(CN=another CA)",
                "fix: pass the certificate of the CA that signed the broker's certificate (subject CN=seeds CA",
            ]),
            compare: true,
        },
        Case {
            name: "a host name the certificate does not list",
            broker: 0,
            flags: seeds("localhost"),
            env: vec![],
            refused: parts(&[
                "does not name the host \"localhost\": it lists CN=127.0.0.1, no subjectAltName",
                "fix: connect with -h 127.0.0.1",
            ]),
            compare: true,
        },
        Case {
            name: "--insecure: the host name is not checked",
            broker: 0,
            flags: with(seeds("localhost"), &[], &["--insecure"]),
            env: vec![],
            refused: None,
            compare: true,
        },
        Case {
            name: "an expired server certificate",
            broker: 2,
            flags: seeds("127.0.0.1"),
            env: vec![],
            refused: parts(&[
                "the broker's certificate (CN=127.0.0.1) has expired: valid from Jan  1 00:00:00 2020 GMT to Feb  1 00:00:00 2020 GMT",
                "fix: renew it",
            ]),
            compare: true,
        },
        Case {
            name: "a server certificate not valid yet",
            broker: 3,
            flags: seeds("127.0.0.1"),
            env: vec![],
            refused: parts(&[
                "is not valid yet: valid from Jan  1 00:00:00 2040 GMT to Jan  1 00:00:00 2041 GMT",
                "clock",
            ]),
            compare: true,
        },
        Case {
            name: "a client certificate of another CA",
            broker: 0,
            flags: with(
                seeds("127.0.0.1"),
                &[
                    ("--cert", &f("other-client.crt")),
                    ("--key", &f("other-client.key")),
                ],
                &[],
            ),
            env: vec![],
            refused: parts(&[
                "refused the TLS handshake",
                "refused this one",
                "--cert and --key",
            ]),
            compare: true,
        },
        Case {
            name: "no client certificate (require_certificate true)",
            broker: 0,
            flags: with(seeds("127.0.0.1"), &[("--cert", ""), ("--key", "")], &[]),
            env: vec![],
            refused: parts(&["refused the TLS handshake", "(require_certificate true)"]),
            compare: true,
        },
        Case {
            name: "a key that does not match the certificate",
            broker: 0,
            flags: with(seeds("127.0.0.1"), &[("--key", &f("server.key"))], &[]),
            env: vec![],
            refused: parts(&["this private key does not belong to the --cert certificate"]),
            compare: true,
        },
        Case {
            name: "an encrypted key without its passphrase",
            broker: 0,
            flags: with(
                seeds("127.0.0.1"),
                &[("--key", &f("client-encrypted.key"))],
                &[],
            ),
            env: vec![],
            refused: parts(&["the --key file is encrypted", "MQSEAL_KEY_PASSPHRASE"]),
            compare: true,
        },
        Case {
            name: "an encrypted key with its passphrase (mosquitto_pub asks on the terminal)",
            broker: 0,
            flags: with(
                seeds("127.0.0.1"),
                &[("--key", &f("client-encrypted.key"))],
                &[],
            ),
            env: vec![("MQSEAL_KEY_PASSPHRASE", SEEDS_KEY_PASSPHRASE.to_string())],
            refused: None,
            compare: false,
        },
        Case {
            name: "a wrong password",
            broker: 0,
            flags: with(seeds("127.0.0.1"), &[("-P", "Wr0ng-Secret-Pw")], &[]),
            env: vec![],
            refused: parts(&["the broker refused the connection", "password_file"]),
            compare: true,
        },
        Case {
            name: "no credentials (allow_anonymous false)",
            broker: 0,
            flags: with(seeds("127.0.0.1"), &[("-u", ""), ("-P", "")], &[]),
            env: vec![],
            refused: parts(&["the broker refused the connection", "allow_anonymous false"]),
            compare: true,
        },
        Case {
            name: "a publish the ACL denies (MQTT v5)",
            broker: 0,
            flags: with(
                seeds("127.0.0.1"),
                &[("-u", "userbroker"), ("-P", "broker-pw")],
                &["-V", "5"],
            ),
            env: vec![],
            refused: parts(&["the broker refused the publish: not authorized (check its ACL)"]),
            compare: true,
        },
    ];
    let mut table = String::new();
    for case in &cases {
        let port = brokers[case.broker].port.to_string();
        let mut flags = vec!["-p".to_string(), port];
        flags.extend(case.flags.iter().cloned());
        let mut args: Vec<&str> = vec!["pub", "-t", "plant/7/temp", "-m", "21.5", "-q", "1"];
        args.extend(["--store", s(&stores.sensor)]);
        args.extend(flags.iter().map(String::as_str));
        let out = mqseal_env(&args, &case.env);
        let all = text(&out);
        let delivered = out.status.success();
        assert_eq!(
            delivered,
            case.refused.is_none(),
            "{}: mqseal said: {all}",
            case.name
        );
        assert!(
            !all.contains("panicked") && !all.contains("-pw") && !all.contains("Wr0ng"),
            "{all}"
        );
        if let Some(expected) = &case.refused {
            let lines: Vec<&str> = all
                .lines()
                .filter(|l| !l.contains("WARNING: --insecure"))
                .collect();
            assert_eq!(lines.len(), 1, "{}: one line expected: {all}", case.name);
            for part in expected {
                assert!(
                    all.contains(part.as_str()),
                    "{}: {part:?} not in: {all}",
                    case.name
                );
            }
            // Never the client certificate blamed for the server's.
            if case.name.contains("server certificate") || case.name.contains("CA in") {
                assert!(!all.contains("--cert"), "{}: {all}", case.name);
            }
        }
        if flags.iter().any(|f| f == "--insecure") {
            assert!(all.contains("WARNING: --insecure"), "{all}");
        }
        let theirs = if case.compare {
            let (ok, said) = mosquitto_pub_delivers(&flags, &case.env);
            assert_eq!(
                ok, delivered,
                "{}: mosquitto_pub and mqseal disagree\nmosquitto_pub: {said}\nmqseal: {all}",
                case.name
            );
            if ok { "delivered" } else { "refused" }
        } else {
            "(not run)"
        };
        table.push_str(&format!(
            "{:<75} mqseal: {:<9} mosquitto_pub: {theirs}\n",
            case.name,
            if delivered { "delivered" } else { "refused" }
        ));
    }
    eprint!("{table}");
}

#[test]
fn pub_and_sub_deliver_through_the_seeds_mosquitto() {
    let Some(pki) = seeds_pki_or_skip() else {
        return;
    };
    let config = seeds_broker_config(&pki, "server.crt", true, &SEEDS_USERS, Some(SEEDS_ACL));
    let Some(broker) = start(&config) else { return };
    let port = broker.port.to_string();
    let stores = Stores::new();
    let f = |name: &str| pki.file(name).to_str().unwrap().to_string();
    let (ca, client_crt, client_key) = (f("ca.crt"), f("client.crt"), f("client.key"));
    let (server_crt, server_key) = (f("server.crt"), f("server.key"));
    // The walkthrough's publisher and subscriber commands, with mqseal instead of mosquitto_*.
    let mut args = vec!["pub", "-h", "127.0.0.1", "-p", &port, "--cafile", &ca];
    args.extend([
        "--cert",
        &client_crt,
        "--key",
        &client_key,
        "-u",
        "userclient",
    ]);
    args.extend([
        "-P",
        "client-pw",
        "-t",
        "plant/7/temp",
        "-m",
        "Hello world",
        "-q",
        "1",
    ]);
    args.extend(["-r", "--store", s(&stores.sensor)]);
    ok(&args);
    let mut args = vec!["sub", "-h", "127.0.0.1", "-p", &port, "--cafile", &ca];
    args.extend([
        "--cert",
        &server_crt,
        "--key",
        &server_key,
        "-u",
        "userbroker",
    ]);
    args.extend([
        "-P",
        "broker-pw",
        "-t",
        "plant/#",
        "-C",
        "1",
        "-v",
        "--show-sender",
    ]);
    args.extend(["--store", s(&stores.dash)]);
    assert_eq!(ok(&args), "plant/7/temp [sensor #0] Hello world\n");
}
