//! Keys in band through a real broker (Mosquitto, or the embedded rumqttd where it is not
//! installed), with keystores on every side and no manual key reload anywhere: an admin
//! publishes grants (retained, QoS 1); a sensor, a dashboard and a third member follow their
//! grant topics and pick the keys up; the admin rotates, revoking the third member; the sensor
//! switches to the new epoch on its own, the dashboard opens both epochs (the old one within the
//! grace period), the revoked member cannot open the new epoch (typed rejection). Garbage on a
//! grant topic is a counted refusal, never data, and the loop goes on. The same with MQTT v5
//! clients (async and blocking), whose grants are published and followed by the v5 flavours.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::sync::Arc;
use std::time::Duration;

use mqseal::{OpenPolicy, Profile};
use mqseal_broker_tests::plain_broker;
use mqseal_rumqttc::grants::GrantEvent;
use mqseal_rumqttc::{
    ConnectOptions, Event, Message, OpenBackend, Rejected, SealedClient, SealedEventLoop,
    SealedSyncClient, v5,
};
use mqseal_store::{PersistentOpener, PersistentSealer, Roles, Store, unix_now};
use rumqttc::{Packet, QoS};

/// A hang guard per awaited event, not a timing assertion.
const HANG: Duration = Duration::from_secs(30);

/// Everything a loop produced so far.
#[derive(Debug, Default)]
struct Seen {
    connected: bool,
    messages: Vec<Message>,
    rejected: Vec<Rejected>,
    grants: Vec<GrantEvent>,
    pubacks: usize,
    subacks: usize,
}

/// The MQTT packets a test waits for.
enum Ack {
    Conn,
    Pub,
    Sub,
}

/// rumqttc's events (v3.1.1 or v5) as far as the tests count them.
trait Acks {
    fn ack(&self) -> Option<Ack>;
}

impl Acks for rumqttc::Event {
    fn ack(&self) -> Option<Ack> {
        match self {
            rumqttc::Event::Incoming(Packet::ConnAck(_)) => Some(Ack::Conn),
            rumqttc::Event::Incoming(Packet::PubAck(_)) => Some(Ack::Pub),
            rumqttc::Event::Incoming(Packet::SubAck(_)) => Some(Ack::Sub),
            _ => None,
        }
    }
}

/// MQTT v5 can refuse: a refused publish or subscription fails the test.
impl Acks for rumqttc::v5::Event {
    fn ack(&self) -> Option<Ack> {
        use rumqttc::v5::mqttbytes::v5::{Packet, PubAckReason, SubscribeReasonCode};
        match self {
            rumqttc::v5::Event::Incoming(Packet::ConnAck(_)) => Some(Ack::Conn),
            rumqttc::v5::Event::Incoming(Packet::PubAck(a)) => {
                assert!(
                    matches!(
                        a.reason,
                        PubAckReason::Success | PubAckReason::NoMatchingSubscribers
                    ),
                    "the broker refused a publish: {a:?}"
                );
                Some(Ack::Pub)
            }
            rumqttc::v5::Event::Incoming(Packet::SubAck(a)) => {
                assert!(
                    a.return_codes
                        .iter()
                        .all(|c| matches!(c, SubscribeReasonCode::Success(_))),
                    "the broker refused a subscription: {a:?}"
                );
                Some(Ack::Sub)
            }
            _ => None,
        }
    }
}

impl Seen {
    fn push<M: Acks>(&mut self, event: Event<M>) {
        match event {
            Event::Message(m) => self.messages.push(m),
            Event::Rejected(r) => self.rejected.push(r),
            Event::Grant(g) => self.grants.push(g),
            Event::Mqtt(e) => match e.ack() {
                Some(Ack::Conn) => self.connected = true,
                Some(Ack::Pub) => self.pubacks += 1,
                Some(Ack::Sub) => self.subacks += 1,
                None => {}
            },
            _ => {}
        }
    }

    /// Epochs of the grants accepted (and put to use).
    fn accepted_epochs(&self) -> Vec<u32> {
        self.grants
            .iter()
            .filter_map(|g| match g {
                GrantEvent::Accepted { grant, .. } => Some(grant.update.epoch),
                _ => None,
            })
            .collect()
    }

    fn refused(&self) -> usize {
        self.grants
            .iter()
            .filter(|g| matches!(g, GrantEvent::Refused(_)))
            .count()
    }

    fn message(&self, payload: &str) -> Option<&Message> {
        self.messages
            .iter()
            .find(|m| m.payload == payload.as_bytes())
    }
}

/// Polls `lp` until `done(seen)` holds.
async fn poll_until<O: OpenBackend>(
    lp: &mut SealedEventLoop<O>,
    seen: &mut Seen,
    what: &str,
    done: impl Fn(&Seen) -> bool,
) {
    while !done(seen) {
        match tokio::time::timeout(HANG, lp.poll()).await {
            Err(_) => panic!("hang guard: no {what} within {HANG:?}; so far {seen:#?}"),
            Ok(Err(e)) => panic!("connection failed while waiting for {what}: {e}"),
            Ok(Ok(event)) => seen.push(event),
        }
    }
}

type Client = SealedClient<PersistentSealer>;
type Loop = SealedEventLoop<PersistentOpener>;

/// A client sealing and opening with `store` (crash-safe counter, persisted windows).
fn client(port: u16, name: &str, store: &Store) -> (Client, Loop) {
    let id = format!("{name}-{}", std::process::id());
    let options = ConnectOptions::new(id, "127.0.0.1", port).v4().unwrap();
    SealedClient::new(
        options,
        100,
        store.sealer(Profile::Signed).unwrap(),
        store.opener(OpenPolicy::default()).unwrap(),
    )
}

struct Stores {
    _dir: tempfile::TempDir,
    admin: Arc<Store>,
    sensor: Arc<Store>,
    dash: Arc<Store>,
    intruder: Arc<Store>,
}

/// Four keystores: the admin owns `plant/#`; everyone trusts it as issuer; the dashboard and
/// the (future) intruder trust the sensor as sender; the dashboard also trusts the intruder.
fn stores() -> Stores {
    let dir = tempfile::tempdir().unwrap();
    let make = |name: &str| Arc::new(Store::create(dir.path().join(name), name).unwrap());
    let (admin, sensor, dash, intruder) = (
        make("admin"),
        make("sensor"),
        make("dash"),
        make("intruder"),
    );
    for (name, s) in [
        ("sensor", &sensor),
        ("dash", &dash),
        ("intruder", &intruder),
    ] {
        admin.trust(name, &s.public(), Roles::SENDER).unwrap();
        s.trust("admin", &admin.public(), Roles::ISSUER).unwrap();
    }
    dash.trust("sensor", &sensor.public(), Roles::SENDER)
        .unwrap();
    intruder
        .trust("sensor", &sensor.public(), Roles::SENDER)
        .unwrap();
    admin.create_key("plant/#", unix_now()).unwrap();
    Stores {
        _dir: dir,
        admin,
        sensor,
        dash,
        intruder,
    }
}

#[tokio::test]
async fn grants_in_band_then_rotation_switches_epochs_and_locks_the_revoked_member_out() {
    let broker = plain_broker().unwrap();
    let port = broker.port();
    let s = stores();

    // The admin publishes the first grants, retained, and waits for the broker's PUBACKs.
    let grants = vec![
        s.admin.issue_grant("plant/7/#", "sensor").unwrap(),
        s.admin.issue_grant("plant/#", "dash").unwrap(),
        s.admin.issue_grant("plant/#", "intruder").unwrap(),
    ];
    assert!(grants.iter().all(|g| g.retain && g.epoch == 1));
    let (admin, mut admin_lp) = client(port, "admin", &s.admin);
    let mut admin_seen = Seen::default();
    poll_until(&mut admin_lp, &mut admin_seen, "admin CONNACK", |s| {
        s.connected
    })
    .await;
    admin.publish_grants(&grants).await.unwrap();
    poll_until(&mut admin_lp, &mut admin_seen, "3 grant PUBACKs", |s| {
        s.pubacks == 3
    })
    .await;

    // Members connect later and follow their grant topics: the retained grants arrive.
    let (sensor, mut sensor_lp) = client(port, "sensor", &s.sensor);
    let (dash, mut dash_lp) = client(port, "dash", &s.dash);
    let (intruder, mut intruder_lp) = client(port, "intruder", &s.intruder);
    // No key yet: the sensor cannot seal.
    assert!(matches!(
        sensor
            .publish("plant/7/temp", QoS::AtLeastOnce, false, "too early")
            .await,
        Err(mqseal_rumqttc::Error::Seal(mqseal::Error::KeyNotFound))
    ));
    sensor.follow_grants(&mut sensor_lp, s.sensor.clone());
    dash.follow_grants(&mut dash_lp, s.dash.clone());
    intruder.follow_grants(&mut intruder_lp, s.intruder.clone());
    let (mut sensor_seen, mut dash_seen, mut intruder_seen) =
        (Seen::default(), Seen::default(), Seen::default());
    for (lp, seen) in [
        (&mut sensor_lp, &mut sensor_seen),
        (&mut dash_lp, &mut dash_seen),
        (&mut intruder_lp, &mut intruder_seen),
    ] {
        poll_until(lp, seen, "the epoch 1 grant", |s| {
            s.accepted_epochs() == [1]
        })
        .await;
        match &seen.grants[0] {
            GrantEvent::Accepted {
                topic,
                retained,
                grant,
            } => {
                assert!(*retained, "published before the member subscribed");
                assert!(topic.starts_with("mqseal/grants/"), "{topic}");
                assert_eq!(grant.issuer_name.as_deref(), Some("admin"));
                assert!(grant.update.added);
            }
            other => panic!("{other:?}"),
        }
    }
    for (c, lp, seen) in [
        (&dash, &mut dash_lp, &mut dash_seen),
        (&intruder, &mut intruder_lp, &mut intruder_seen),
    ] {
        c.subscribe("plant/#", QoS::AtLeastOnce).await.unwrap();
        // The grant subscription's SUBACK and this one.
        poll_until(lp, seen, "2 SUBACKs", |s| s.subacks == 2).await;
    }

    // Epoch 1: the sensor seals with the key it got in band, both receivers open.
    sensor
        .publish("plant/7/temp", QoS::AtLeastOnce, false, "e1")
        .await
        .unwrap();
    poll_until(&mut sensor_lp, &mut sensor_seen, "PUBACK of e1", |s| {
        s.pubacks == 1
    })
    .await;
    for (lp, seen) in [
        (&mut dash_lp, &mut dash_seen),
        (&mut intruder_lp, &mut intruder_seen),
    ] {
        poll_until(lp, seen, "e1", |s| s.message("e1").is_some()).await;
        let m = seen.message("e1").unwrap();
        assert_eq!((m.epoch, m.sender.clone()), (1, s.sensor.public()));
    }

    // The admin rotates plant/#, leaving the intruder out, and publishes the new grants.
    let rotation = s
        .admin
        .rotate("plant/#", &[s.intruder.fingerprint()], unix_now())
        .unwrap();
    assert_eq!(rotation.epoch, 2);
    assert_eq!(rotation.excluded, [s.intruder.fingerprint()]);
    let mut recipients: Vec<_> = rotation.grants.iter().map(|g| g.recipient).collect();
    recipients.sort();
    let mut expected = vec![s.sensor.fingerprint(), s.dash.fingerprint()];
    expected.sort();
    assert_eq!(recipients, expected);
    admin.publish_grants(&rotation.grants).await.unwrap();
    poll_until(&mut admin_lp, &mut admin_seen, "5 grant PUBACKs", |s| {
        s.pubacks == 5
    })
    .await;

    // The sensor's loop has not run since: this is sealed under epoch 1 still (a sender that
    // has not taken the new grant yet)...
    sensor
        .publish("plant/7/temp", QoS::AtLeastOnce, false, "late-e1")
        .await
        .unwrap();
    // ...and once its loop takes the grant, it switches on its own.
    poll_until(
        &mut sensor_lp,
        &mut sensor_seen,
        "the epoch 2 grant and PUBACK of late-e1",
        |s| s.accepted_epochs() == [1, 2] && s.pubacks == 2,
    )
    .await;
    let retired = &sensor_seen.grants[1].accepted().unwrap().update.retired;
    assert_eq!(retired.len(), 1);
    assert_eq!(retired[0].0, 1);
    assert!(
        retired[0].1 > unix_now(),
        "epoch 1 kept for the grace period"
    );
    poll_until(
        &mut dash_lp,
        &mut dash_seen,
        "the epoch 2 grant and late-e1",
        |s| s.accepted_epochs() == [1, 2] && s.message("late-e1").is_some(),
    )
    .await;
    assert_eq!(
        dash_seen.message("late-e1").unwrap().epoch,
        1,
        "the old epoch is still opened within the grace period"
    );

    // Garbage on the dashboard's grant topic: a counted refusal, never data; the loop goes on.
    {
        let id = format!("raw-{}", std::process::id());
        let (raw, mut raw_lp) =
            rumqttc::AsyncClient::new(rumqttc::MqttOptions::new(id, "127.0.0.1", port), 10);
        let slot = format!("mqseal/grants/{}/0123456789abcdef", s.dash.fingerprint());
        raw.publish(&slot, QoS::AtLeastOnce, false, &b"not a grant"[..])
            .await
            .unwrap();
        loop {
            match tokio::time::timeout(HANG, raw_lp.poll()).await {
                Ok(Ok(rumqttc::Event::Incoming(Packet::PubAck(_)))) => break,
                Ok(Ok(_)) => {}
                other => panic!("raw publisher: {other:?}"),
            }
        }
    }
    poll_until(&mut dash_lp, &mut dash_seen, "the refused grant", |s| {
        s.refused() == 1
    })
    .await;
    assert_eq!(dash_lp.stats().grants_refused(), 1);

    // Epoch 2: the dashboard opens it, the revoked member gets a typed rejection.
    sensor
        .publish("plant/7/temp", QoS::AtLeastOnce, false, "e2")
        .await
        .unwrap();
    poll_until(&mut sensor_lp, &mut sensor_seen, "PUBACK of e2", |s| {
        s.pubacks == 3
    })
    .await;
    poll_until(&mut dash_lp, &mut dash_seen, "e2", |s| {
        s.message("e2").is_some()
    })
    .await;
    assert_eq!(dash_seen.message("e2").unwrap().epoch, 2);
    poll_until(
        &mut intruder_lp,
        &mut intruder_seen,
        "late-e1 and the rejection of e2",
        |s| s.message("late-e1").is_some() && !s.rejected.is_empty(),
    )
    .await;
    // What senders still sealed under the epoch it held, it reads (spec/keystore.md 11)...
    assert_eq!(intruder_seen.message("late-e1").unwrap().epoch, 1);
    // ...the new epoch it cannot.
    assert_eq!(intruder_seen.rejected.len(), 1);
    assert_eq!(intruder_seen.rejected[0].topic, "plant/7/temp");
    assert_eq!(intruder_seen.rejected[0].error, mqseal::Error::KeyNotFound);
    assert!(intruder_seen.message("e2").is_none());
    assert_eq!(intruder_seen.accepted_epochs(), [1], "no grant of epoch 2");
    assert_eq!(intruder_lp.stats().rejected(mqseal::Error::KeyNotFound), 1);

    // Grants never surfaced as application data.
    for seen in [&dash_seen, &intruder_seen, &sensor_seen] {
        assert!(seen.messages.iter().all(|m| m.topic.starts_with("plant/")));
        assert!(seen.rejected.iter().all(|r| r.topic.starts_with("plant/")));
    }
    assert_eq!(dash_lp.stats().delivered(), 3);
    assert_eq!(dash_lp.stats().rejected_total(), 0);
    assert_eq!(dash_lp.stats().grants_accepted(), 2);
    // The stores hold what the grants carried: epoch 1 retired, epoch 2 live.
    let held = s.dash.held_keys().unwrap();
    let epochs: Vec<_> = held
        .iter()
        .map(|k| (k.epoch(), k.not_after.is_some()))
        .collect();
    assert_eq!(epochs, [(1, true), (2, false)]);
}

/// The blocking client: a sensor and a dashboard follow their grant topics, get epoch 1 live
/// (published after they subscribed), then epoch 2 from a rotation; the sensor seals under
/// epoch 2 with no reload and the dashboard opens it.
#[test]
fn blocking_clients_follow_grants_and_switch_epoch() {
    let broker = plain_broker().unwrap();
    let port = broker.port();
    let s = stores();
    type Conn = mqseal_rumqttc::SealedConnection<PersistentOpener>;
    let make = |name: &str, store: &Store| {
        let options = ConnectOptions::new(
            format!("{name}-sync-{}", std::process::id()),
            "127.0.0.1",
            port,
        )
        .v4()
        .unwrap();
        SealedSyncClient::new(
            options,
            100,
            store.sealer(Profile::Signed).unwrap(),
            store.opener(OpenPolicy::default()).unwrap(),
        )
    };
    let next = |conn: &mut Conn, seen: &mut Seen, what: &str, done: &dyn Fn(&Seen) -> bool| {
        while !done(seen) {
            match conn.recv_timeout(HANG) {
                Err(_) => panic!("hang guard: no {what} within {HANG:?}; so far {seen:#?}"),
                Ok(Err(e)) => panic!("connection failed while waiting for {what}: {e}"),
                Ok(Ok(event)) => seen.push(event),
            }
        }
    };
    let (admin, mut admin_conn) = make("admin", &s.admin);
    let (sensor, mut sensor_conn) = make("sensor", &s.sensor);
    let (dash, mut dash_conn) = make("dash", &s.dash);
    sensor.follow_grants(&mut sensor_conn, s.sensor.clone());
    dash.follow_grants(&mut dash_conn, s.dash.clone());
    let (mut admin_seen, mut sensor_seen, mut dash_seen) =
        (Seen::default(), Seen::default(), Seen::default());
    next(&mut admin_conn, &mut admin_seen, "admin CONNACK", &|s| {
        s.connected
    });
    next(&mut sensor_conn, &mut sensor_seen, "grant SUBACK", &|s| {
        s.subacks == 1
    });
    dash.subscribe("plant/#", QoS::AtLeastOnce).unwrap();
    next(&mut dash_conn, &mut dash_seen, "2 SUBACKs", &|s| {
        s.subacks == 2
    });

    // Published after they subscribed: delivered live, not retained.
    let grants = [
        s.admin.issue_grant("plant/7/#", "sensor").unwrap(),
        s.admin.issue_grant("plant/#", "dash").unwrap(),
    ];
    admin.publish_grants(&grants).unwrap();
    next(&mut admin_conn, &mut admin_seen, "2 grant PUBACKs", &|s| {
        s.pubacks == 2
    });
    for (conn, seen) in [
        (&mut sensor_conn, &mut sensor_seen),
        (&mut dash_conn, &mut dash_seen),
    ] {
        next(conn, seen, "the epoch 1 grant", &|s| {
            s.accepted_epochs() == [1]
        });
        assert!(matches!(
            &seen.grants[0],
            GrantEvent::Accepted {
                retained: false,
                ..
            }
        ));
    }
    let rotation = s.admin.rotate("plant/#", &[], unix_now()).unwrap();
    admin.publish_grants(&rotation.grants).unwrap();
    next(&mut admin_conn, &mut admin_seen, "4 grant PUBACKs", &|s| {
        s.pubacks == 4
    });
    for (conn, seen) in [
        (&mut sensor_conn, &mut sensor_seen),
        (&mut dash_conn, &mut dash_seen),
    ] {
        next(conn, seen, "the epoch 2 grant", &|s| {
            s.accepted_epochs() == [1, 2]
        });
    }

    sensor
        .publish("plant/7/temp", QoS::AtLeastOnce, false, "sync-e2")
        .unwrap();
    next(
        &mut sensor_conn,
        &mut sensor_seen,
        "PUBACK of sync-e2",
        &|s| s.pubacks == 1,
    );
    next(&mut dash_conn, &mut dash_seen, "sync-e2", &|s| {
        s.message("sync-e2").is_some()
    });
    let m = dash_seen.message("sync-e2").unwrap();
    assert_eq!((m.epoch, m.sender.clone()), (2, s.sensor.public()));
    assert_eq!(sensor_conn.stats().grants_accepted(), 2);
    assert_eq!(dash_conn.stats().grants_accepted(), 2);
    assert_eq!(dash_conn.stats().rejected_total(), 0);
}

type Client5 = v5::SealedClient<PersistentSealer>;
type Loop5 = v5::SealedEventLoop<PersistentOpener>;

/// An MQTT v5 client sealing and opening with `store`.
fn client_v5(port: u16, name: &str, store: &Store) -> (Client5, Loop5) {
    let id = format!("{name}-v5-{}", std::process::id());
    let options = ConnectOptions::new(id, "127.0.0.1", port).v5().unwrap();
    v5::SealedClient::new(
        options,
        100,
        store.sealer(Profile::Signed).unwrap(),
        store.opener(OpenPolicy::default()).unwrap(),
    )
}

/// Polls the v5 loop `lp` until `done(seen)` holds.
async fn poll_until_v5<O: OpenBackend>(
    lp: &mut v5::SealedEventLoop<O>,
    seen: &mut Seen,
    what: &str,
    done: impl Fn(&Seen) -> bool,
) {
    while !done(seen) {
        match tokio::time::timeout(HANG, lp.poll()).await {
            Err(_) => panic!("hang guard: no {what} within {HANG:?}; so far {seen:#?}"),
            Ok(Err(e)) => panic!("connection failed while waiting for {what}: {e}"),
            Ok(Ok(event)) => seen.push(event),
        }
    }
}

/// MQTT v5 end to end: the admin publishes grants (retained, QoS 1) with the v5 client; a v5
/// sensor, a v5 dashboard and a v5 third member follow their grant topics and get epoch 1;
/// sealed messages flow; the admin rotates, revoking the third member: the sensor seals under
/// epoch 2 on its own, the dashboard opens it, the revoked member gets `key_not_found`.
#[tokio::test]
async fn v5_clients_follow_grants_and_a_rotation_locks_the_revoked_member_out() {
    let broker = plain_broker().unwrap();
    let port = broker.port_v5();
    let s = stores();

    let (admin, mut admin_lp) = client_v5(port, "admin", &s.admin);
    let mut admin_seen = Seen::default();
    poll_until_v5(&mut admin_lp, &mut admin_seen, "admin CONNACK", |s| {
        s.connected
    })
    .await;
    let grants = [
        s.admin.issue_grant("plant/7/#", "sensor").unwrap(),
        s.admin.issue_grant("plant/#", "dash").unwrap(),
        s.admin.issue_grant("plant/#", "intruder").unwrap(),
    ];
    admin.publish_grants(&grants).await.unwrap();
    poll_until_v5(&mut admin_lp, &mut admin_seen, "3 grant PUBACKs", |s| {
        s.pubacks == 3
    })
    .await;

    // The members connect afterwards: the retained grants reach them on their grant topics.
    let (sensor, mut sensor_lp) = client_v5(port, "sensor", &s.sensor);
    let (dash, mut dash_lp) = client_v5(port, "dash", &s.dash);
    let (intruder, mut intruder_lp) = client_v5(port, "intruder", &s.intruder);
    assert!(matches!(
        sensor
            .publish("plant/7/temp", v5::QoS::AtLeastOnce, false, "too early")
            .await,
        Err(mqseal_rumqttc::Error::Seal(mqseal::Error::KeyNotFound))
    ));
    sensor.follow_grants(&mut sensor_lp, s.sensor.clone());
    dash.follow_grants(&mut dash_lp, s.dash.clone());
    intruder.follow_grants(&mut intruder_lp, s.intruder.clone());
    let (mut sensor_seen, mut dash_seen, mut intruder_seen) =
        (Seen::default(), Seen::default(), Seen::default());
    for (lp, seen, store) in [
        (&mut sensor_lp, &mut sensor_seen, &s.sensor),
        (&mut dash_lp, &mut dash_seen, &s.dash),
        (&mut intruder_lp, &mut intruder_seen, &s.intruder),
    ] {
        poll_until_v5(lp, seen, "the epoch 1 grant", |s| {
            s.accepted_epochs() == [1]
        })
        .await;
        match &seen.grants[0] {
            GrantEvent::Accepted {
                topic,
                retained,
                grant,
            } => {
                assert!(*retained, "published before the member subscribed");
                let own = format!("mqseal/grants/{}/", store.fingerprint());
                assert!(topic.starts_with(&own), "{topic}");
                assert_eq!(grant.issuer_name.as_deref(), Some("admin"));
                assert!(grant.update.added);
            }
            other => panic!("{other:?}"),
        }
    }
    for (c, lp, seen) in [
        (&dash, &mut dash_lp, &mut dash_seen),
        (&intruder, &mut intruder_lp, &mut intruder_seen),
    ] {
        c.subscribe("plant/#", v5::QoS::AtLeastOnce).await.unwrap();
        // The grant subscription's SUBACK and this one.
        poll_until_v5(lp, seen, "2 SUBACKs", |s| s.subacks == 2).await;
    }

    // Epoch 1, with the key the sensor got in band.
    sensor
        .publish("plant/7/temp", v5::QoS::AtLeastOnce, false, "v5-e1")
        .await
        .unwrap();
    poll_until_v5(&mut sensor_lp, &mut sensor_seen, "PUBACK of v5-e1", |s| {
        s.pubacks == 1
    })
    .await;
    for (lp, seen) in [
        (&mut dash_lp, &mut dash_seen),
        (&mut intruder_lp, &mut intruder_seen),
    ] {
        poll_until_v5(lp, seen, "v5-e1", |s| s.message("v5-e1").is_some()).await;
        let m = seen.message("v5-e1").unwrap();
        assert_eq!((m.epoch, m.sender.clone()), (1, s.sensor.public()));
    }

    // Rotation leaving the intruder out, published by the v5 admin.
    let rotation = s
        .admin
        .rotate("plant/#", &[s.intruder.fingerprint()], unix_now())
        .unwrap();
    assert_eq!(rotation.epoch, 2);
    assert_eq!(rotation.grants.len(), 2);
    assert!(
        rotation
            .grants
            .iter()
            .all(|g| g.recipient != s.intruder.fingerprint())
    );
    admin.publish_grants(&rotation.grants).await.unwrap();
    poll_until_v5(&mut admin_lp, &mut admin_seen, "5 grant PUBACKs", |s| {
        s.pubacks == 5
    })
    .await;
    for (lp, seen) in [
        (&mut sensor_lp, &mut sensor_seen),
        (&mut dash_lp, &mut dash_seen),
    ] {
        poll_until_v5(lp, seen, "the epoch 2 grant", |s| {
            s.accepted_epochs() == [1, 2]
        })
        .await;
        let retired = &seen.grants[1].accepted().unwrap().update.retired;
        assert_eq!(retired.len(), 1);
        assert_eq!(retired[0].0, 1);
    }

    // The sensor seals under epoch 2 with no reload; the dashboard opens it, the revoked
    // member cannot.
    sensor
        .publish("plant/7/temp", v5::QoS::AtLeastOnce, false, "v5-e2")
        .await
        .unwrap();
    poll_until_v5(&mut sensor_lp, &mut sensor_seen, "PUBACK of v5-e2", |s| {
        s.pubacks == 2
    })
    .await;
    poll_until_v5(&mut dash_lp, &mut dash_seen, "v5-e2", |s| {
        s.message("v5-e2").is_some()
    })
    .await;
    let m = dash_seen.message("v5-e2").unwrap();
    assert_eq!((m.epoch, m.sender.clone()), (2, s.sensor.public()));
    poll_until_v5(
        &mut intruder_lp,
        &mut intruder_seen,
        "the rejection of v5-e2",
        |s| !s.rejected.is_empty(),
    )
    .await;
    assert_eq!(intruder_seen.rejected.len(), 1);
    assert_eq!(intruder_seen.rejected[0].topic, "plant/7/temp");
    assert_eq!(intruder_seen.rejected[0].error, mqseal::Error::KeyNotFound);
    assert_eq!(
        intruder_seen.rejected[0].claimed_sender,
        Some(s.sensor.public().sender_id())
    );
    assert!(intruder_seen.message("v5-e2").is_none());
    assert_eq!(intruder_seen.accepted_epochs(), [1], "no grant of epoch 2");
    assert_eq!(intruder_lp.stats().rejected(mqseal::Error::KeyNotFound), 1);

    // Grants never surfaced as application data; the counters agree.
    for seen in [&dash_seen, &intruder_seen, &sensor_seen] {
        assert!(seen.messages.iter().all(|m| m.topic.starts_with("plant/")));
        assert!(seen.rejected.iter().all(|r| r.topic.starts_with("plant/")));
        assert_eq!(seen.refused(), 0);
    }
    assert_eq!(sensor_lp.stats().grants_accepted(), 2);
    assert_eq!(dash_lp.stats().grants_accepted(), 2);
    assert_eq!(dash_lp.stats().delivered(), 2);
    assert_eq!(dash_lp.stats().rejected_total(), 0);
    assert_eq!(intruder_lp.stats().grants_accepted(), 1);
    let epochs: Vec<_> = s
        .sensor
        .held_keys()
        .unwrap()
        .iter()
        .map(|k| (k.epoch(), k.not_after.is_some()))
        .collect();
    assert_eq!(epochs, [(1, true), (2, false)]);
}

/// The blocking MQTT v5 client: a sensor and a dashboard follow their grant topics, get epoch
/// 1 live (published after they subscribed, by a blocking v5 admin), then epoch 2 from a
/// rotation; the sensor seals under epoch 2 with no reload and the dashboard opens it.
#[test]
fn blocking_v5_clients_follow_grants_and_switch_epoch() {
    let broker = plain_broker().unwrap();
    let port = broker.port_v5();
    let s = stores();
    type Conn = v5::SealedConnection<PersistentOpener>;
    let make = |name: &str, store: &Store| {
        let options = ConnectOptions::new(
            format!("{name}-sync-v5-{}", std::process::id()),
            "127.0.0.1",
            port,
        )
        .v5()
        .unwrap();
        v5::SealedSyncClient::new(
            options,
            100,
            store.sealer(Profile::Signed).unwrap(),
            store.opener(OpenPolicy::default()).unwrap(),
        )
    };
    let next = |conn: &mut Conn, seen: &mut Seen, what: &str, done: &dyn Fn(&Seen) -> bool| {
        while !done(seen) {
            match conn.recv_timeout(HANG) {
                Err(_) => panic!("hang guard: no {what} within {HANG:?}; so far {seen:#?}"),
                Ok(Err(e)) => panic!("connection failed while waiting for {what}: {e}"),
                Ok(Ok(event)) => seen.push(event),
            }
        }
    };
    let (admin, mut admin_conn) = make("admin", &s.admin);
    let (sensor, mut sensor_conn) = make("sensor", &s.sensor);
    let (dash, mut dash_conn) = make("dash", &s.dash);
    sensor.follow_grants(&mut sensor_conn, s.sensor.clone());
    dash.follow_grants(&mut dash_conn, s.dash.clone());
    let (mut admin_seen, mut sensor_seen, mut dash_seen) =
        (Seen::default(), Seen::default(), Seen::default());
    next(&mut admin_conn, &mut admin_seen, "admin CONNACK", &|s| {
        s.connected
    });
    next(&mut sensor_conn, &mut sensor_seen, "grant SUBACK", &|s| {
        s.subacks == 1
    });
    dash.subscribe("plant/#", v5::QoS::AtLeastOnce).unwrap();
    next(&mut dash_conn, &mut dash_seen, "2 SUBACKs", &|s| {
        s.subacks == 2
    });

    let grants = [
        s.admin.issue_grant("plant/7/#", "sensor").unwrap(),
        s.admin.issue_grant("plant/#", "dash").unwrap(),
    ];
    admin.publish_grants(&grants).unwrap();
    next(&mut admin_conn, &mut admin_seen, "2 grant PUBACKs", &|s| {
        s.pubacks == 2
    });
    for (conn, seen) in [
        (&mut sensor_conn, &mut sensor_seen),
        (&mut dash_conn, &mut dash_seen),
    ] {
        next(conn, seen, "the epoch 1 grant", &|s| {
            s.accepted_epochs() == [1]
        });
        assert!(matches!(
            &seen.grants[0],
            GrantEvent::Accepted {
                retained: false,
                ..
            }
        ));
    }
    let rotation = s.admin.rotate("plant/#", &[], unix_now()).unwrap();
    admin.publish_grants(&rotation.grants).unwrap();
    next(&mut admin_conn, &mut admin_seen, "4 grant PUBACKs", &|s| {
        s.pubacks == 4
    });
    for (conn, seen) in [
        (&mut sensor_conn, &mut sensor_seen),
        (&mut dash_conn, &mut dash_seen),
    ] {
        next(conn, seen, "the epoch 2 grant", &|s| {
            s.accepted_epochs() == [1, 2]
        });
    }

    sensor
        .publish("plant/7/temp", v5::QoS::AtLeastOnce, false, "sync-v5-e2")
        .unwrap();
    next(
        &mut sensor_conn,
        &mut sensor_seen,
        "PUBACK of sync-v5-e2",
        &|s| s.pubacks == 1,
    );
    next(&mut dash_conn, &mut dash_seen, "sync-v5-e2", &|s| {
        s.message("sync-v5-e2").is_some()
    });
    let m = dash_seen.message("sync-v5-e2").unwrap();
    assert_eq!((m.epoch, m.sender.clone()), (2, s.sensor.public()));
    assert_eq!(sensor_conn.stats().grants_accepted(), 2);
    assert_eq!(dash_conn.stats().grants_accepted(), 2);
    assert_eq!(dash_conn.stats().rejected_total(), 0);
}
