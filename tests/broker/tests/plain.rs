//! mqseal over a plain listener (Mosquitto, or the embedded rumqttd where Mosquitto is not
//! installed): QoS 0/1/2, wildcards with a subtree key, retained messages, QoS 1 redelivery,
//! MQTT v3.1.1 and v5, and "the broker only ever sees ciphertext" (key-less subscriber on `#`
//! and a loopback packet capture).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::time::Duration;

use mqseal_broker_tests::{
    Capture, Parties, RawSubscriber, collect, collect_v5, connect, connect_v5, notice,
    plain_broker, spawn_driver, spawn_driver_v5, subscribe,
};
use mqseal_rumqttc::{ConnectOptions, Event, SealedClient, SealedSyncClient, v5};
use rumqttc::QoS;

const QUIET: Duration = Duration::from_secs(10);

fn unique(tag: &str) -> String {
    format!("{tag}-{}-{:x}", std::process::id(), rand_u64())
}

fn rand_u64() -> u64 {
    let id = mqseal::Identity::generate().unwrap();
    u64::from_le_bytes(id.fingerprint().0[..8].try_into().unwrap())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn v311_qos_levels_wildcards_subtree_key_and_broker_sees_only_ciphertext() {
    let broker = plain_broker().unwrap();
    let port = broker.port();
    let capture = match Capture::start(port) {
        Ok(c) => Some(c),
        Err(why) => {
            notice(&format!("packet capture skipped: {why}"));
            None
        }
    };
    let parties = Parties::new("plant/#");

    // The subscriber holds only the plant/7 subtree, and also listens on plant/+/alarm.
    let sub_opts = ConnectOptions::new(unique("sub"), "127.0.0.1", port)
        .v4()
        .unwrap();
    let (sub, mut sub_lp) = SealedClient::new(
        sub_opts,
        100,
        parties.sealer("plant/7/#"),
        parties.opener("plant/7/#"),
    );
    connect(&mut sub_lp).await.unwrap();
    subscribe(
        &sub,
        &mut sub_lp,
        &[
            ("plant/7/#", QoS::ExactlyOnce),
            ("plant/+/alarm", QoS::AtLeastOnce),
        ],
    )
    .await
    .unwrap();
    let mut raw = RawSubscriber::start(port, "#").await;

    let pub_opts = ConnectOptions::new(unique("pub"), "127.0.0.1", port)
        .v4()
        .unwrap();
    let (publisher, mut pub_lp) = SealedClient::new(
        pub_opts,
        100,
        parties.sealer("plant/#"),
        parties.opener("plant/#"),
    );
    connect(&mut pub_lp).await.unwrap();
    let driver = spawn_driver(pub_lp);

    let secret = unique("top-secret-reading");
    let sent = [
        ("plant/7/temp", QoS::AtMostOnce, format!("{secret}-q0")),
        ("plant/7/temp", QoS::AtLeastOnce, format!("{secret}-q1")),
        ("plant/7/temp", QoS::ExactlyOnce, format!("{secret}-q2")),
        (
            "plant/7/door/state",
            QoS::AtLeastOnce,
            format!("{secret}-door"),
        ),
        (
            "plant/9/alarm",
            QoS::AtLeastOnce,
            format!("{secret}-alarm9"),
        ),
    ];
    for (topic, qos, payload) in &sent {
        publisher
            .publish(topic, *qos, false, payload)
            .await
            .unwrap();
    }

    let got = collect(&mut sub_lp, sent.len(), QUIET).await;
    let mut delivered: Vec<(String, String, QoS)> = got
        .messages
        .iter()
        .map(|m| {
            let payload = String::from_utf8(m.payload.clone()).unwrap();
            // Mosquitto delivers at min(publish, subscription QoS); rumqttd at the subscription's.
            let qos = match sent.iter().find(|s| s.2 == payload) {
                Some(s) if !broker.is_mosquitto() => s.1,
                _ => m.qos,
            };
            (m.topic.clone(), payload, qos)
        })
        .collect();
    delivered.sort_by(|a, b| a.1.cmp(&b.1));
    let mut expected: Vec<(String, String, QoS)> = sent[..4]
        .iter()
        .map(|(t, q, p)| (t.to_string(), p.clone(), *q))
        .collect();
    expected.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(delivered, expected, "rejected: {:?}", got.rejected);
    for m in &got.messages {
        assert_eq!(m.sender, parties.publisher.public());
        assert!(!m.retained);
    }
    // plain/9/alarm arrived through the `+` subscription, but the subtree key does not cover it.
    assert_eq!(got.rejected.len(), 1);
    assert_eq!(got.rejected[0].topic, "plant/9/alarm");
    assert_eq!(got.rejected[0].error, mqseal::Error::KeyNotFound);
    assert_eq!(sub_lp.stats().delivered(), 4);
    assert_eq!(sub_lp.stats().rejected(mqseal::Error::KeyNotFound), 1);

    // What the broker (or anyone subscribed to `#`) gets: sealed bytes only.
    let seen = raw.collect(sent.len(), QUIET).await;
    assert_eq!(seen.len(), sent.len());
    for (topic, payload) in &seen {
        assert!(
            !contains(payload, secret.as_bytes()),
            "plaintext on {topic}"
        );
        let header = mqseal::inspect(payload).expect("a sealed header");
        assert_eq!(header.sender, parties.publisher.public().sender_id());
    }

    publisher.disconnect().await.unwrap();
    let _ = driver.await;
    if let Some(capture) = capture {
        let pcap = capture.finish().unwrap();
        assert!(
            contains(&pcap, b"plant/7/temp"),
            "the capture saw no MQTT traffic ({} bytes)",
            pcap.len()
        );
        assert!(!contains(&pcap, secret.as_bytes()), "plaintext on the wire");
        eprintln!(
            "capture: {} bytes, topics visible, no plaintext",
            pcap.len()
        );
    }
}

#[tokio::test]
async fn retained_message_opens_once_for_a_late_subscriber() {
    let broker = plain_broker().unwrap();
    let port = broker.port();
    let parties = Parties::new("home/#");
    let topic = format!("home/{}/state", unique("room"));

    let (publisher, mut pub_lp) = SealedClient::new(
        ConnectOptions::new(unique("pub"), "127.0.0.1", port)
            .v4()
            .unwrap(),
        10,
        parties.sealer("home/#"),
        parties.opener("home/#"),
    );
    connect(&mut pub_lp).await.unwrap();
    let driver = spawn_driver(pub_lp);
    publisher
        .publish(&topic, QoS::AtLeastOnce, true, "lights on")
        .await
        .unwrap();
    publisher.disconnect().await.unwrap();
    let _ = driver.await;

    // Subscribes after the publisher is gone: the broker hands out the retained copy.
    let (sub, mut sub_lp) = SealedClient::new(
        ConnectOptions::new(unique("late"), "127.0.0.1", port)
            .v4()
            .unwrap(),
        10,
        parties.sealer("home/#"),
        parties.opener("home/#"),
    );
    connect(&mut sub_lp).await.unwrap();
    let mut got = subscribe(&sub, &mut sub_lp, &[(&topic, QoS::AtLeastOnce)])
        .await
        .unwrap();
    if got.messages.is_empty() {
        got = collect(&mut sub_lp, 1, QUIET).await;
    }
    assert_eq!(got.messages.len(), 1, "rejected: {:?}", got.rejected);
    assert_eq!(got.messages[0].payload, b"lights on");
    assert!(got.messages[0].retained);

    if !broker.is_mosquitto() {
        notice("rumqttd does not resend retained messages on re-subscription; rest skipped");
        return;
    }
    // Subscribing again makes the broker send the retained copy again: it is not delivered twice.
    let again = subscribe(&sub, &mut sub_lp, &[(&topic, QoS::AtLeastOnce)])
        .await
        .unwrap();
    let again = if again.messages.is_empty() && again.rejected.is_empty() {
        collect(&mut sub_lp, 1, QUIET).await
    } else {
        again
    };
    assert!(again.messages.is_empty());
    assert_eq!(again.rejected.len(), 1);
    assert_eq!(again.rejected[0].error, mqseal::Error::Replay);
    assert!(again.rejected[0].retained);
}

#[tokio::test]
async fn qos1_redelivery_after_reconnect_is_a_duplicate_not_delivered_twice() {
    let broker = plain_broker().unwrap();
    if !broker.is_mosquitto() {
        notice("redelivery test needs Mosquitto's persistent sessions; skipped");
        return;
    }
    let port = broker.port();
    let parties = Parties::new("line/#");
    let sub_id = unique("durable");
    let durable = |id: &str| {
        let mut o = ConnectOptions::new(id, "127.0.0.1", port);
        o.clean_session = false;
        o.v4().unwrap()
    };

    // First session: subscribe, then receive a QoS 1 message and drop the connection before
    // polling again, i.e. before the wrapper acknowledged it.
    let (sub, mut sub_lp) = SealedClient::new(
        durable(&sub_id),
        10,
        parties.sealer("line/#"),
        parties.opener("line/#"),
    );
    connect(&mut sub_lp).await.unwrap();
    subscribe(&sub, &mut sub_lp, &[("line/#", QoS::AtLeastOnce)])
        .await
        .unwrap();

    let (publisher, mut pub_lp) = SealedClient::new(
        ConnectOptions::new(unique("pub"), "127.0.0.1", port)
            .v4()
            .unwrap(),
        10,
        parties.sealer("line/#"),
        parties.opener("line/#"),
    );
    connect(&mut pub_lp).await.unwrap();
    let driver = spawn_driver(pub_lp);
    publisher
        .publish("line/1/count", QoS::AtLeastOnce, false, "42")
        .await
        .unwrap();

    let got = collect(&mut sub_lp, 1, QUIET).await;
    assert_eq!(got.messages.len(), 1);
    assert_eq!(got.messages[0].payload, b"42");
    let opener = sub_lp.opener().clone();
    drop(sub_lp);
    drop(sub);

    // Second session, same client id and opener state: Mosquitto redelivers with DUP set.
    let (_sub2, mut sub_lp2) =
        SealedClient::new(durable(&sub_id), 10, parties.sealer("line/#"), opener);
    let redelivered = collect(&mut sub_lp2, 1, QUIET).await;
    assert!(redelivered.messages.is_empty(), "delivered twice");
    assert_eq!(redelivered.rejected.len(), 1);
    assert!(redelivered.rejected[0].duplicate);
    assert_eq!(redelivered.rejected[0].error, mqseal::Error::Duplicate);
    // The duplicate was acknowledged: a third session gets nothing more.
    let _ = collect(&mut sub_lp2, 1, Duration::from_millis(300)).await;
    drop(sub_lp2);
    let (_sub3, mut sub_lp3) = SealedClient::new(
        durable(&sub_id),
        10,
        parties.sealer("line/#"),
        parties.opener("line/#"),
    );
    connect(&mut sub_lp3).await.unwrap();
    let third = collect(&mut sub_lp3, 1, Duration::from_secs(1)).await;
    assert!(
        third.messages.is_empty() && third.rejected.is_empty(),
        "{third:?}"
    );
    publisher.disconnect().await.unwrap();
    let _ = driver.await;
}

#[tokio::test]
async fn v5_round_trip_with_publisher_topic_alias_and_wildcards() {
    let broker = plain_broker().unwrap();
    let port = broker.port_v5();
    let parties = Parties::new("fleet/#");
    let (sub, mut sub_lp) = v5::SealedClient::new(
        ConnectOptions::new(unique("sub5"), "127.0.0.1", port)
            .v5()
            .unwrap(),
        10,
        parties.sealer("fleet/#"),
        parties.opener("fleet/truck-1/#"),
    );
    connect_v5(&mut sub_lp).await.unwrap();
    sub.subscribe("fleet/+/gps", v5::QoS::AtLeastOnce)
        .await
        .unwrap();
    sub.subscribe("fleet/truck-1/engine/#", v5::QoS::ExactlyOnce)
        .await
        .unwrap();
    // Wait for both SUBACKs.
    let mut acks = 0;
    while acks < 2 {
        use rumqttc::v5::mqttbytes::v5::Packet;
        if let Event::Mqtt(rumqttc::v5::Event::Incoming(Packet::SubAck(_))) =
            sub_lp.poll().await.unwrap()
        {
            acks += 1;
        }
    }

    let (publisher, mut pub_lp) = v5::SealedClient::new(
        ConnectOptions::new(unique("pub5"), "127.0.0.1", port)
            .v5()
            .unwrap(),
        10,
        parties.sealer("fleet/#"),
        parties.opener("fleet/#"),
    );
    connect_v5(&mut pub_lp).await.unwrap();
    let driver = spawn_driver_v5(pub_lp);
    publisher
        .publish(
            "fleet/truck-1/gps",
            v5::QoS::AtMostOnce,
            false,
            "48.85,2.35",
        )
        .await
        .unwrap();
    publisher
        .publish(
            "fleet/truck-1/engine/fuel",
            v5::QoS::ExactlyOnce,
            false,
            "61%",
        )
        .await
        .unwrap();
    publisher
        .publish(
            "fleet/truck-2/gps",
            v5::QoS::AtLeastOnce,
            false,
            "45.76,4.84",
        )
        .await
        .unwrap();
    let mut expected = 3;
    if broker.is_mosquitto() {
        // The publisher may use a topic alias towards the broker; the broker forwards the real
        // topic, so the subscriber still opens it.
        let props = rumqttc::v5::mqttbytes::v5::PublishProperties {
            topic_alias: Some(1),
            ..Default::default()
        };
        publisher
            .publish_with_properties(
                "fleet/truck-1/gps",
                v5::QoS::AtLeastOnce,
                false,
                "48.86,2.36",
                props,
            )
            .await
            .unwrap();
        expected += 1;
    }
    let got = collect_v5(&mut sub_lp, expected, QUIET).await;
    let mut payloads: Vec<String> = got
        .messages
        .iter()
        .map(|m| format!("{} {}", m.topic, String::from_utf8_lossy(&m.payload)))
        .collect();
    payloads.sort();
    let mut want = vec![
        "fleet/truck-1/engine/fuel 61%".to_string(),
        "fleet/truck-1/gps 48.85,2.35".to_string(),
    ];
    if broker.is_mosquitto() {
        want.push("fleet/truck-1/gps 48.86,2.36".to_string());
    }
    want.sort();
    assert_eq!(payloads, want, "rejected: {:?}", got.rejected);
    assert_eq!(got.rejected.len(), 1);
    assert_eq!(got.rejected[0].topic, "fleet/truck-2/gps");
    assert_eq!(got.rejected[0].error, mqseal::Error::KeyNotFound);
    publisher.disconnect().await.unwrap();
    let _ = driver.await;
}

#[test]
fn blocking_client_round_trip() {
    let broker = plain_broker().unwrap();
    let port = broker.port();
    let parties = Parties::new("sync/#");
    let (sub, mut conn) = SealedSyncClient::new(
        ConnectOptions::new(unique("ssub"), "127.0.0.1", port)
            .v4()
            .unwrap(),
        10,
        parties.sealer("sync/#"),
        parties.opener("sync/#"),
    );
    sub.subscribe("sync/#", QoS::AtLeastOnce).unwrap();
    loop {
        match conn.recv_timeout(Duration::from_secs(20)).unwrap().unwrap() {
            Event::Mqtt(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_))) => break,
            _ => continue,
        }
    }
    let (publisher, mut pconn) = SealedSyncClient::new(
        ConnectOptions::new(unique("spub"), "127.0.0.1", port)
            .v4()
            .unwrap(),
        10,
        parties.sealer("sync/#"),
        parties.opener("sync/#"),
    );
    publisher
        .publish("sync/a", QoS::AtLeastOnce, false, "one")
        .unwrap();
    publisher
        .publish("sync/b", QoS::ExactlyOnce, false, "two")
        .unwrap();
    // Drive the publisher until its QoS 2 flow completed (the broker forwards on PUBREL).
    let pub_thread = std::thread::spawn(move || {
        for event in pconn.iter() {
            match event {
                Ok(Event::Mqtt(rumqttc::Event::Incoming(rumqttc::Packet::PubComp(_)))) => {
                    publisher.disconnect().unwrap();
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    });
    let mut got = Vec::new();
    while got.len() < 2 {
        match conn.recv_timeout(Duration::from_secs(20)).unwrap().unwrap() {
            Event::Message(m) => got.push(String::from_utf8(m.payload).unwrap()),
            Event::Rejected(r) => panic!("rejected: {r:?}"),
            _ => {}
        }
    }
    got.sort();
    assert_eq!(got, ["one", "two"]);
    assert_eq!(conn.stats().delivered(), 2);
    pub_thread.join().unwrap();
}

#[test]
fn blocking_v5_client_round_trip() {
    use rumqttc::v5::mqttbytes::v5::Packet;
    let broker = plain_broker().unwrap();
    let port = broker.port_v5();
    let parties = Parties::new("sync5/#");
    let (sub, mut conn) = v5::SealedSyncClient::new(
        ConnectOptions::new(unique("s5sub"), "127.0.0.1", port)
            .v5()
            .unwrap(),
        10,
        parties.sealer("sync5/#"),
        parties.opener("sync5/a/#"),
    );
    sub.subscribe("sync5/#", v5::QoS::AtLeastOnce).unwrap();
    loop {
        if let Event::Mqtt(rumqttc::v5::Event::Incoming(Packet::SubAck(_))) =
            conn.recv_timeout(Duration::from_secs(20)).unwrap().unwrap()
        {
            break;
        }
    }
    let (publisher, mut pconn) = v5::SealedSyncClient::new(
        ConnectOptions::new(unique("s5pub"), "127.0.0.1", port)
            .v5()
            .unwrap(),
        10,
        parties.sealer("sync5/#"),
        parties.opener("sync5/#"),
    );
    publisher
        .publish("sync5/a/x", v5::QoS::AtLeastOnce, false, "one")
        .unwrap();
    publisher
        .try_publish(
            "sync5/b/x",
            v5::QoS::AtLeastOnce,
            false,
            "not for the subtree",
        )
        .unwrap();
    let pub_thread = std::thread::spawn(move || {
        let mut acks = 0;
        while let Some(event) = pconn.recv() {
            match event {
                Ok(Event::Mqtt(rumqttc::v5::Event::Incoming(Packet::PubAck(_)))) => {
                    acks += 1;
                    if acks == 2 {
                        publisher.disconnect().unwrap();
                    }
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    });
    let (mut got, mut refused) = (Vec::new(), Vec::new());
    while got.len() + refused.len() < 2 {
        match conn.recv_timeout(Duration::from_secs(20)).unwrap().unwrap() {
            Event::Message(m) => got.push(String::from_utf8(m.payload).unwrap()),
            Event::Rejected(r) => refused.push(r.error),
            _ => {}
        }
    }
    assert_eq!(got, ["one"]);
    assert_eq!(refused, [mqseal::Error::KeyNotFound]);
    assert_eq!(conn.stats().rejected(mqseal::Error::KeyNotFound), 1);
    pub_thread.join().unwrap();
    // Unsubscribing is acknowledged on the same connection.
    sub.unsubscribe("sync5/#").unwrap();
    loop {
        if let Event::Mqtt(rumqttc::v5::Event::Incoming(Packet::UnsubAck(_))) =
            conn.recv_timeout(Duration::from_secs(20)).unwrap().unwrap()
        {
            break;
        }
    }
}
