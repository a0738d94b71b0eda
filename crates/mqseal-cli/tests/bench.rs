//! `mqseal bench` end to end with small counts: it runs through a broker it starts (Mosquitto,
//! or the embedded rumqttd), through the embedded rumqttd on request, and through a given
//! broker, and prints its table. Nothing here depends on the figures (no timed assertions).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::process::{Command, Output, Stdio};

fn mqseal(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mqseal"))
        .arg("bench")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn ok(args: &[&str]) -> String {
    let out = mqseal(args);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "mqseal bench {args:?} failed:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The table row of `mode`: (ratio column, received, lost, refused).
fn row(out: &str, mode: &str) -> Option<(String, u64, u64, u64)> {
    let line = out
        .lines()
        .find(|l| l.split_whitespace().next() == Some(mode) && l.contains(" us"))?;
    let t: Vec<&str> = line.split_whitespace().collect();
    let n = t.len();
    Some((
        t[2].to_string(),
        t[n - 3].parse().unwrap(),
        t[n - 2].parse().unwrap(),
        t[n - 1].parse().unwrap(),
    ))
}

#[test]
fn runs_through_a_broker_it_starts_and_stops() {
    let out = ok(&["-n", "300", "--rounds", "1"]);
    assert!(out.contains("machine: "), "{out}");
    for mode in ["plaintext", "signed", "group-mac"] {
        let (_, received, lost, refused) = row(&out, mode).unwrap_or_else(|| panic!("{out}"));
        assert_eq!((received, lost, refused), (300, 0, 0), "{out}");
    }
    assert_eq!(row(&out, "plaintext").unwrap().0, "1.00", "{out}");
    assert!(out.contains("p50 ms") && out.contains("pub CPU"), "{out}");
    // 64 B QoS 0 with plaintext measured: the targets are judged.
    assert!(
        out.contains("target signed    >= 0.50 x plaintext"),
        "{out}"
    );
    assert!(
        out.contains("target group-mac >= 0.90 x plaintext"),
        "{out}"
    );
    // Which broker it used, said; a Mosquitto it started is gone once it exited.
    let broker = out.lines().find(|l| l.starts_with("broker:")).unwrap();
    if let Some(rest) = broker.split("(pid ").nth(1) {
        assert!(broker.contains("mosquitto"), "{broker}");
        let pid = rest.split(',').next().unwrap();
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "mosquitto (pid {pid}) still runs after mqseal bench exited"
        );
    } else {
        assert!(broker.contains("embedded rumqttd"), "{broker}");
    }
}

#[test]
fn runs_on_the_embedded_broker_with_qos1_and_chosen_modes() {
    let out = ok(&[
        "--broker",
        "embedded",
        "-n",
        "200",
        "--rounds",
        "2",
        "-q",
        "1",
        "--modes",
        "plaintext,signed",
        "--window",
        "50",
        "--rate",
        "4000",
    ]);
    assert!(out.contains("paced at 4000 msg/s"), "{out}");
    assert!(
        out.contains("broker:  embedded rumqttd on 127.0.0.1:"),
        "{out}"
    );
    assert_eq!(row(&out, "plaintext").unwrap().1, 400, "{out}");
    let (ratio, received, lost, refused) = row(&out, "signed").unwrap();
    assert_eq!((received, lost, refused), (400, 0, 0), "{out}");
    assert!(ratio.parse::<f64>().is_ok(), "{out}");
    assert!(row(&out, "group-mac").is_none(), "{out}");
    assert!(!out.contains("target "), "paced, QoS 1: no targets\n{out}");
}

#[test]
fn runs_through_a_given_broker_one_message_at_a_time() {
    let broker = mqseal_broker_tests::plain_broker().unwrap();
    let port = broker.port().to_string();
    let out = ok(&[
        "-h",
        "127.0.0.1",
        "-p",
        &port,
        "-n",
        "150",
        "--rounds",
        "1",
        "-s",
        "1024",
        "--batch",
        "1",
        "--modes",
        "signed,group-mac",
    ]);
    assert!(out.contains(&format!("127.0.0.1:{port} (given)")), "{out}");
    assert!(out.contains("opens one message at a time"), "{out}");
    for mode in ["signed", "group-mac"] {
        let (ratio, received, _, _) = row(&out, mode).unwrap();
        assert_eq!(received, 150, "{out}");
        assert_eq!(ratio, "-", "no plaintext round to compare with\n{out}");
    }
    assert!(out.contains("n/a"), "broker CPU of a given broker\n{out}");
}

#[test]
fn refuses_what_it_cannot_measure() {
    let out = mqseal(&["-s", "4", "--broker", "embedded"]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("at least 8 bytes"), "{err}");

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port().to_string();
    drop(closed);
    let out = mqseal(&["-h", "127.0.0.1", "-p", &port, "-n", "10", "--rounds", "1"]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("could not connect"), "{err}");
}
