//! mqseal over the Mosquitto set-ups users run today: a TLS listener with a private CA,
//! `require_certificate true` (mTLS), `allow_anonymous false` + `password_file`, an ACL, and the
//! broker's maximum packet size. mqseal works over each and fails clearly where the broker
//! refuses. Skipped with a notice where Mosquitto or openssl is not installed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::time::Duration;

use mqseal_broker_tests::{
    MosquittoConfig, Parties, collect, collect_v5, connect, connect_v5, mosquitto_or_skip as start,
    pki_or_skip as pki, seeds_broker_config, seeds_pki_or_skip, spawn_driver, subscribe,
    tls_listener,
};
use mqseal_rumqttc::{ConnectOptions, Event, FailureKind, SealedClient, TlsFiles, v5};
use rumqttc::QoS;

const QUIET: Duration = Duration::from_secs(10);

fn unique(tag: &str) -> String {
    let id = mqseal::Identity::generate().unwrap();
    format!("{tag}-{}", &id.fingerprint().to_string()[..12])
}

/// Publishes one sealed message through `publisher_opts` and checks `subscriber_opts` opens it.
async fn round_trip(publisher_opts: ConnectOptions, subscriber_opts: ConnectOptions) {
    let parties = Parties::new("site/#");
    let (sub, mut sub_lp) = SealedClient::new(
        subscriber_opts.v4().unwrap(),
        10,
        parties.sealer("site/#"),
        parties.opener("site/#"),
    );
    connect(&mut sub_lp).await.unwrap();
    subscribe(&sub, &mut sub_lp, &[("site/#", QoS::AtLeastOnce)])
        .await
        .unwrap();
    let (publisher, mut pub_lp) = SealedClient::new(
        publisher_opts.v4().unwrap(),
        10,
        parties.sealer("site/#"),
        parties.opener("site/#"),
    );
    connect(&mut pub_lp).await.unwrap();
    let driver = spawn_driver(pub_lp);
    publisher
        .publish("site/a/door", QoS::AtLeastOnce, false, "open")
        .await
        .unwrap();
    let got = collect(&mut sub_lp, 1, QUIET).await;
    assert_eq!(got.messages.len(), 1, "rejected: {:?}", got.rejected);
    assert_eq!(got.messages[0].payload, b"open");
    publisher.disconnect().await.unwrap();
    let _ = driver.await;
}

/// Connects with `opts` and returns the explained failure (panics if it connects).
async fn refused(opts: ConnectOptions) -> mqseal_rumqttc::ConnectFailure {
    let parties = Parties::new("site/#");
    let (_client, mut lp) = SealedClient::new(
        opts.v4().unwrap(),
        10,
        parties.sealer("site/#"),
        parties.opener("site/#"),
    );
    match connect(&mut lp).await {
        Ok(()) => panic!("the broker accepted a connection it should refuse"),
        Err(f) => {
            eprintln!("refused as expected: {f}");
            f
        }
    }
}

fn localhost(tag: &str, port: u16) -> ConnectOptions {
    ConnectOptions::new(unique(tag), "localhost", port)
}

#[tokio::test]
async fn tls_listener_with_private_ca() {
    let Some(pki) = pki() else { return };
    let Some(broker) = start(&tls_listener(&pki, false)) else {
        return;
    };
    let tls = TlsFiles::ca(pki.ca());
    round_trip(
        localhost("pub", broker.port).tls(tls.clone()),
        ConnectOptions::new(unique("sub"), "127.0.0.1", broker.port).tls(tls),
    )
    .await;

    // A client that trusts another CA refuses the broker's certificate, and says so.
    let f = refused(localhost("wrong-ca", broker.port).tls(TlsFiles::ca(pki.rogue_ca()))).await;
    assert_eq!(f.kind, FailureKind::BadServerCertificate, "{f}");
    assert!(f.fix.contains("--cafile"));
    // Plain MQTT spoken to a TLS listener fails (the broker drops the connection).
    let f = refused(localhost("plain", broker.port)).await;
    assert_ne!(f.kind, FailureKind::NotAuthorized, "{f}");
}

#[tokio::test]
async fn mtls_require_certificate_accepts_valid_and_refuses_untrusted_client_certs() {
    let Some(pki) = pki() else { return };
    let Some(broker) = start(&tls_listener(&pki, true)) else {
        return;
    };
    let valid = TlsFiles::ca(pki.ca()).with_client_cert(pki.client_cert(), pki.client_key());
    round_trip(
        localhost("pub", broker.port).tls(valid.clone()),
        localhost("sub", broker.port).tls(valid),
    )
    .await;

    let rogue =
        TlsFiles::ca(pki.ca()).with_client_cert(pki.rogue_client_cert(), pki.rogue_client_key());
    let f = refused(localhost("rogue", broker.port).tls(rogue)).await;
    assert_eq!(f.kind, FailureKind::ClientCertificateRefused, "{f}");
    assert!(f.fix.contains("--cert"), "{f}");

    let f = refused(localhost("no-cert", broker.port).tls(TlsFiles::ca(pki.ca()))).await;
    assert_eq!(f.kind, FailureKind::ClientCertificateRefused, "{f}");
}

#[tokio::test]
async fn password_file_without_anonymous_access() {
    let config = MosquittoConfig {
        users: vec![
            ("sensor".into(), "s3nsor-pass".into()),
            ("dashboard".into(), "dash-pass".into()),
        ],
        ..MosquittoConfig::default()
    };
    let Some(broker) = start(&config) else { return };
    let port = broker.port;
    round_trip(
        localhost("pub", port).credentials("sensor", "s3nsor-pass"),
        localhost("sub", port).credentials("dashboard", "dash-pass"),
    )
    .await;

    let f = refused(localhost("bad-pass", port).credentials("sensor", "wrong")).await;
    assert_eq!(f.kind, FailureKind::NotAuthorized, "{f}");
    assert!(f.fix.contains("-u/-P"));
    let f = refused(localhost("anonymous", port)).await;
    assert_eq!(f.kind, FailureKind::NotAuthorized, "{f}");
}

#[tokio::test]
async fn acl_allows_the_publisher_only_its_topic_over_tls_with_passwords() {
    // The full set-up of the walkthroughs: TLS with a private CA, client certificates,
    // passwords, no anonymous access, and an ACL.
    let Some(pki) = pki() else { return };
    let mut config = tls_listener(&pki, true);
    config.users = vec![
        ("sensor".into(), "s3nsor-pass".into()),
        ("dashboard".into(), "dash-pass".into()),
    ];
    config.acl =
        Some("user sensor\ntopic write plant/7/#\n\nuser dashboard\ntopic read plant/#\n".into());
    let Some(broker) = start(&config) else { return };
    let tls = TlsFiles::ca(pki.ca()).with_client_cert(pki.client_cert(), pki.client_key());
    let parties = Parties::new("plant/#");

    let (sub, mut sub_lp) = SealedClient::new(
        localhost("dash", broker.port)
            .credentials("dashboard", "dash-pass")
            .tls(tls.clone())
            .v4()
            .unwrap(),
        10,
        parties.sealer("plant/#"),
        parties.opener("plant/#"),
    );
    connect(&mut sub_lp).await.unwrap();
    subscribe(&sub, &mut sub_lp, &[("plant/#", QoS::AtLeastOnce)])
        .await
        .unwrap();

    let (publisher, mut pub_lp) = SealedClient::new(
        localhost("sensor", broker.port)
            .credentials("sensor", "s3nsor-pass")
            .tls(tls)
            .v4()
            .unwrap(),
        10,
        parties.sealer("plant/#"),
        parties.opener("plant/#"),
    );
    connect(&mut pub_lp).await.unwrap();
    let driver = spawn_driver(pub_lp);
    // Outside its ACL: Mosquitto silently drops it (MQTT 3.1.1 has no way to say no).
    publisher
        .publish("plant/8/temp", QoS::AtLeastOnce, false, "forbidden")
        .await
        .unwrap();
    publisher
        .publish("plant/7/temp", QoS::AtLeastOnce, false, "allowed")
        .await
        .unwrap();
    let got = collect(&mut sub_lp, 2, Duration::from_secs(2)).await;
    let payloads: Vec<&[u8]> = got.messages.iter().map(|m| m.payload.as_slice()).collect();
    assert_eq!(payloads, [b"allowed".as_slice()], "{got:?}");
    assert!(got.rejected.is_empty());
    publisher.disconnect().await.unwrap();
    let _ = driver.await;
}

#[tokio::test]
async fn v5_broker_maximum_packet_size_counts_the_envelope_overhead() {
    let config = MosquittoConfig {
        extra: vec!["max_packet_size 1024".into()],
        ..MosquittoConfig::default()
    };
    let Some(broker) = start(&config) else { return };
    let parties = Parties::new("big/#");
    let (sub, mut sub_lp) = v5::SealedClient::new(
        localhost("sub5", broker.port).v5().unwrap(),
        10,
        parties.sealer("big/#"),
        parties.opener("big/#"),
    );
    connect_v5(&mut sub_lp).await.unwrap();
    sub.subscribe("big/#", v5::QoS::AtLeastOnce).await.unwrap();
    // The SUBSCRIBE only leaves when the loop is polled: wait for its SUBACK before publishing,
    // or the broker may route the message before the subscription exists.
    loop {
        use rumqttc::v5::mqttbytes::v5::Packet;
        if let Event::Mqtt(rumqttc::v5::Event::Incoming(Packet::SubAck(_))) =
            tokio::time::timeout(Duration::from_secs(20), sub_lp.poll())
                .await
                .expect("no SUBACK within 20 s")
                .unwrap()
        {
            break;
        }
    }

    let (publisher, mut pub_lp) = v5::SealedClient::new(
        localhost("pub5", broker.port).v5().unwrap(),
        10,
        parties.sealer("big/#"),
        parties.opener("big/#"),
    );
    connect_v5(&mut pub_lp).await.unwrap();
    assert_eq!(publisher.max_packet_size(), 1024);
    // 950 bytes fit in 1024 as plaintext, not once sealed (~100 bytes of envelope).
    let err = publisher
        .publish("big/blob", v5::QoS::AtLeastOnce, false, vec![7u8; 950])
        .await
        .unwrap_err();
    match err {
        mqseal_rumqttc::Error::PacketTooLarge { size, max } => {
            assert_eq!(max, 1024);
            assert!(size > 1024 && size < 1024 + mqseal::MAX_OVERHEAD_SIGNED + 20);
        }
        other => panic!("expected PacketTooLarge, got {other}"),
    }
    // The connection is intact and the counter untouched: a smaller message goes through.
    assert_eq!(publisher.with_sealer(|s| s.next_seq()), 0);
    publisher
        .publish("big/blob", v5::QoS::AtLeastOnce, false, vec![7u8; 800])
        .await
        .unwrap();
    let driver = tokio::spawn(async move {
        loop {
            if pub_lp.poll().await.is_err() {
                break;
            }
        }
    });
    let got = collect_v5(&mut sub_lp, 1, QUIET).await;
    assert_eq!(got.messages.len(), 1, "{got:?}");
    assert_eq!(got.messages[0].payload.len(), 800);
    assert_eq!(got.messages[0].seq, 0);
    publisher.disconnect().await.unwrap();
    let _ = driver.await;
}

#[tokio::test]
async fn v5_acl_refusal_reaches_the_publisher_as_a_puback_reason() {
    // MQTT 3.1.1 cannot refuse a PUBLISH (see the ACL test above: Mosquitto drops it and still
    // acknowledges it); MQTT v5 can: Mosquitto answers the QoS 1 PUBACK with reason code 0x87.
    // The wrapper passes PUBACKs through untouched, reason code included.
    use rumqttc::v5::mqttbytes::v5::{Packet, PubAckReason};
    let config = MosquittoConfig {
        users: vec![("sensor".into(), "s3nsor-pass".into())],
        acl: Some("user sensor\ntopic readwrite plant/7/#\n".into()),
        ..MosquittoConfig::default()
    };
    let Some(broker) = start(&config) else { return };
    let parties = Parties::new("plant/#");
    let (publisher, mut lp) = v5::SealedClient::new(
        localhost("sensor5", broker.port)
            .credentials("sensor", "s3nsor-pass")
            .v5()
            .unwrap(),
        10,
        parties.sealer("plant/#"),
        parties.opener("plant/#"),
    );
    connect_v5(&mut lp).await.unwrap();
    let mut pkids = Vec::new();
    let mut acks = Vec::new();
    for topic in ["plant/8/temp", "plant/7/temp"] {
        publisher
            .publish(topic, v5::QoS::AtLeastOnce, false, "21.5")
            .await
            .unwrap();
        // One PUBLISH at a time: its packet id, then its PUBACK.
        loop {
            let event = tokio::time::timeout(Duration::from_secs(20), lp.poll())
                .await
                .expect("no PUBACK within 20 s")
                .unwrap();
            match event {
                Event::Mqtt(rumqttc::v5::Event::Outgoing(rumqttc::Outgoing::Publish(pkid))) => {
                    pkids.push(pkid);
                }
                Event::Mqtt(rumqttc::v5::Event::Incoming(Packet::PubAck(ack))) => {
                    acks.push((ack.pkid, ack.reason));
                    break;
                }
                _ => {}
            }
        }
    }
    assert_eq!(pkids.len(), 2, "{pkids:?}");
    assert_eq!(
        acks,
        [
            (pkids[0], PubAckReason::NotAuthorized),
            // Allowed; nobody subscribed (0x10 is a success code).
            (pkids[1], PubAckReason::NoMatchingSubscribers),
        ]
    );
    // The refusal costs the connection nothing: the allowed message above went through on it,
    // and each sealed message spent its own sequence number.
    assert_eq!(publisher.with_sealer(|s| s.next_seq()), 2);
    publisher.disconnect().await.unwrap();
}

/// The seeds' walkthrough: X.509 v1 certificates (server CN=127.0.0.1, no subjectAltName) made
/// by its openssl commands, a broker with `require_certificate true` and a `password_file`.
/// The wrapper delivers through it over MQTT v3.1.1 and v5, and names each refusal's cause.
#[tokio::test]
async fn the_seeds_v1_certificates_work_and_refusals_name_their_cause() {
    let Some(pki) = seeds_pki_or_skip() else {
        return;
    };
    let users = [("userclient", "client-pw"), ("userbroker", "broker-pw")];
    let Some(broker) = start(&seeds_broker_config(&pki, "server.crt", true, &users, None)) else {
        return;
    };
    let Some(expired) = start(&seeds_broker_config(
        &pki,
        "expired.crt",
        true,
        &users,
        None,
    )) else {
        return;
    };
    let seeds = |tag: &str, host: &str, port: u16| {
        ConnectOptions::new(unique(tag), host, port)
            .credentials("userclient", "client-pw")
            .tls(
                TlsFiles::ca(pki.file("ca.crt"))
                    .with_client_cert(pki.file("client.crt"), pki.file("client.key")),
            )
    };
    round_trip(
        seeds("pub", "127.0.0.1", broker.port),
        seeds("sub", "127.0.0.1", broker.port),
    )
    .await;

    // MQTT v5 through the same broker.
    let parties = Parties::new("site/#");
    let (sub, mut sub_lp) = v5::SealedClient::new(
        seeds("sub5", "127.0.0.1", broker.port).v5().unwrap(),
        10,
        parties.sealer("site/#"),
        parties.opener("site/#"),
    );
    connect_v5(&mut sub_lp).await.unwrap();
    sub.subscribe("site/#", v5::QoS::AtLeastOnce).await.unwrap();
    loop {
        use rumqttc::v5::mqttbytes::v5::Packet;
        if let Event::Mqtt(rumqttc::v5::Event::Incoming(Packet::SubAck(_))) =
            tokio::time::timeout(Duration::from_secs(20), sub_lp.poll())
                .await
                .expect("no SUBACK within 20 s")
                .unwrap()
        {
            break;
        }
    }
    let (publisher, mut pub_lp) = v5::SealedClient::new(
        seeds("pub5", "127.0.0.1", broker.port).v5().unwrap(),
        10,
        parties.sealer("site/#"),
        parties.opener("site/#"),
    );
    connect_v5(&mut pub_lp).await.unwrap();
    publisher
        .publish("site/b/door", v5::QoS::AtLeastOnce, false, "closed")
        .await
        .unwrap();
    let driver = tokio::spawn(async move { while pub_lp.poll().await.is_ok() {} });
    let got = collect_v5(&mut sub_lp, 1, QUIET).await;
    assert_eq!(got.messages.len(), 1, "{got:?}");
    assert_eq!(got.messages[0].payload, b"closed");
    publisher.disconnect().await.unwrap();
    let _ = driver.await;

    // A host the certificate does not name: the names it lists, and the host to use.
    let f = refused(seeds("name", "localhost", broker.port)).await;
    assert_eq!(f.kind, FailureKind::ServerNameMismatch, "{f}");
    assert!(
        f.reason
            .contains("it lists CN=127.0.0.1, no subjectAltName"),
        "{f}"
    );
    assert!(f.fix.contains("-h 127.0.0.1"), "{f}");
    // ... accepted with `insecure` (the chain is still checked).
    let mut insecure = seeds("insecure", "localhost", broker.port);
    if let Some(tls) = insecure.tls.as_mut() {
        tls.insecure = true;
    }
    round_trip(insecure, seeds("sub2", "127.0.0.1", broker.port)).await;
    // Another CA: the server certificate is blamed, with its issuer; not the client's.
    let mut other = seeds("other-ca", "127.0.0.1", broker.port);
    if let Some(tls) = other.tls.as_mut() {
        tls.ca_file = Some(pki.file("other-ca.crt"));
    }
    let f = refused(other).await;
    assert_eq!(f.kind, FailureKind::BadServerCertificate, "{f}");
    assert!(f.reason.contains("signed by CN=seeds CA") && !f.to_string().contains("--cert"));
    // Expired: the dates.
    let f = refused(seeds("expired", "127.0.0.1", expired.port)).await;
    assert_eq!(f.kind, FailureKind::ServerCertificateExpired, "{f}");
    assert!(f.reason.contains("to Feb  1 00:00:00 2020 GMT"), "{f}");
    // A client key that does not match: refused before connecting (Error::Tls, code 305).
    let mismatched = seeds("mismatch", "127.0.0.1", broker.port).tls(
        TlsFiles::ca(pki.file("ca.crt"))
            .with_client_cert(pki.file("client.crt"), pki.file("server.key")),
    );
    let e = mismatched.v4().unwrap_err();
    assert_eq!(e.code(), 305);
    assert!(
        e.to_string()
            .contains("does not belong to the --cert certificate"),
        "{e}"
    );
}
