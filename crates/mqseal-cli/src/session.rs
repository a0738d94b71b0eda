//! One sealed connection for `pub`/`sub`, over MQTT v3.1.1 or v5 (`-V`, as mosquitto_pub/sub),
//! reduced to the events the two commands act on.
//!
//! The difference that matters to users: with v3.1.1 a broker has no way to refuse a PUBLISH,
//! so Mosquitto drops one its ACL denies and still acknowledges it; with v5 it answers the
//! PUBACK (QoS 1) or PUBREC (QoS 2) with a reason code such as 0x87 "not authorized", which
//! becomes [`Polled::Refused`] here.

use mqseal_rumqttc::{
    ConnectFailure, Event, Message, OpenBackend, Rejected, SealBackend, SealedClient,
    SealedEventLoop, StorageFailure, v5,
};
use rumqttc::QoS;
use rumqttc::v5::mqttbytes::v5::{Packet as Packet5, PubAckReason, PubRecReason};

use crate::conn::{ConnFlags, until_connected};
use crate::error::Result;

/// `-V`: the MQTT protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Protocol {
    /// MQTT v3.1.1 (the default, as in mosquitto_pub/sub).
    #[value(name = "311", alias = "mqttv311")]
    V311,
    /// MQTT v5: the broker can tell why it refuses a publish (e.g. its ACL).
    #[value(name = "5", alias = "mqttv5")]
    V5,
}

/// rumqttc options of either version (TLS files already read).
// One of each per process: the size difference does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Options {
    /// MQTT v3.1.1.
    V4(rumqttc::MqttOptions),
    /// MQTT v5.
    V5(rumqttc::v5::MqttOptions),
}

/// The publishing half.
pub enum Client<S> {
    /// MQTT v3.1.1.
    V4(SealedClient<S>),
    /// MQTT v5.
    V5(v5::SealedClient<S>),
}

/// The event loop half.
// One of each per process: the size difference does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Loop<O> {
    /// MQTT v3.1.1.
    V4(SealedEventLoop<O>),
    /// MQTT v5.
    V5(v5::SealedEventLoop<O>),
}

/// What a poll gave, in the terms `pub` and `sub` use.
#[allow(clippy::large_enum_variant)]
pub enum Polled {
    /// A message that opened.
    Message(Message),
    /// A message that did not open.
    Rejected(Rejected),
    /// A message that opened but could not be recorded.
    StorageFailed(StorageFailure),
    /// The broker accepted the connection.
    ConnAck,
    /// One of our QoS 1 messages was acknowledged.
    PubAck,
    /// One of our QoS 2 messages completed.
    PubComp,
    /// One of our QoS 1/2 messages was refused (v5 reason code): why, and what to do.
    Refused(&'static str),
    /// One of our messages was written to the connection.
    SentPublish,
    /// Anything else.
    Other,
}

impl Options {
    /// Options for `conn` in `protocol` (errors name the file and the fix).
    pub fn new(conn: &ConnFlags, role: &str, protocol: Protocol) -> Result<Options> {
        let o = conn.connect_options(role)?;
        Ok(match protocol {
            Protocol::V311 => Options::V4(o.v4()?),
            Protocol::V5 => Options::V5(o.v5()?),
        })
    }

    /// The largest packet sent (v5: until the broker's CONNACK lowers it).
    pub fn max_packet_size(&self) -> usize {
        match self {
            Options::V4(o) => o.max_packet_size(),
            Options::V5(o) => o.max_packet_size().map_or(mqseal::MAX_SEALED_LEN, |m| {
                usize::try_from(m).unwrap_or(usize::MAX)
            }),
        }
    }

    /// Bytes a v5 PUBLISH carries beyond a v3.1.1 one (the empty property length).
    pub fn publish_overhead(&self) -> usize {
        match self {
            Options::V4(_) => 0,
            Options::V5(_) => 1,
        }
    }

    /// Creates the sealed client and its event loop.
    pub fn open<S: SealBackend, O: OpenBackend>(
        self,
        cap: usize,
        sealer: S,
        opener: O,
    ) -> (Client<S>, Loop<O>) {
        match self {
            Options::V4(o) => {
                let (c, l) = SealedClient::new(o, cap, sealer, opener);
                (Client::V4(c), Loop::V4(l))
            }
            Options::V5(o) => {
                let (c, l) = v5::SealedClient::new(o, cap, sealer, opener);
                (Client::V5(c), Loop::V5(l))
            }
        }
    }
}

fn qos5(q: QoS) -> v5::QoS {
    match q {
        QoS::AtMostOnce => v5::QoS::AtMostOnce,
        QoS::AtLeastOnce => v5::QoS::AtLeastOnce,
        QoS::ExactlyOnce => v5::QoS::ExactlyOnce,
    }
}

impl<S: SealBackend> Client<S> {
    /// Seals and publishes.
    pub async fn publish(
        &self,
        topic: &str,
        qos: QoS,
        retain: bool,
        payload: &[u8],
    ) -> std::result::Result<(), mqseal_rumqttc::Error> {
        match self {
            Client::V4(c) => c.publish(topic, qos, retain, payload).await,
            Client::V5(c) => c.publish(topic, qos5(qos), retain, payload).await,
        }
    }

    /// Subscribes to a filter.
    pub async fn subscribe(
        &self,
        filter: &str,
        qos: QoS,
    ) -> std::result::Result<(), mqseal_rumqttc::Error> {
        match self {
            Client::V4(c) => c.subscribe(filter, qos).await,
            Client::V5(c) => c.subscribe(filter, qos5(qos)).await,
        }
    }

    /// Sends DISCONNECT.
    pub async fn disconnect(&self) -> std::result::Result<(), mqseal_rumqttc::Error> {
        match self {
            Client::V4(c) => c.disconnect().await,
            Client::V5(c) => c.disconnect().await,
        }
    }
}

/// Why a v5 broker refused a publish, and what to do; `None` for success.
fn refusal(code: u8) -> Option<&'static str> {
    Some(match code {
        0x00 | 0x10 => return None,
        0x87 => "not authorized (check its ACL)",
        0x90 => "topic name invalid (check the topic)",
        0x91 => "packet identifier in use (retry)",
        0x97 => "quota exceeded (check the broker's limits)",
        0x99 => "payload format invalid",
        0x83 => "implementation-specific error (see the broker's log)",
        _ => "unspecified error (see the broker's log)",
    })
}

fn puback_code(r: &PubAckReason) -> u8 {
    match r {
        PubAckReason::Success => 0x00,
        PubAckReason::NoMatchingSubscribers => 0x10,
        PubAckReason::UnspecifiedError => 0x80,
        PubAckReason::ImplementationSpecificError => 0x83,
        PubAckReason::NotAuthorized => 0x87,
        PubAckReason::TopicNameInvalid => 0x90,
        PubAckReason::PacketIdentifierInUse => 0x91,
        PubAckReason::QuotaExceeded => 0x97,
        PubAckReason::PayloadFormatInvalid => 0x99,
    }
}

fn pubrec_code(r: &PubRecReason) -> u8 {
    match r {
        PubRecReason::Success => 0x00,
        PubRecReason::NoMatchingSubscribers => 0x10,
        PubRecReason::UnspecifiedError => 0x80,
        PubRecReason::ImplementationSpecificError => 0x83,
        PubRecReason::NotAuthorized => 0x87,
        PubRecReason::TopicNameInvalid => 0x90,
        PubRecReason::PacketIdentifierInUse => 0x91,
        PubRecReason::QuotaExceeded => 0x97,
        PubRecReason::PayloadFormatInvalid => 0x99,
    }
}

fn common<M>(event: Event<M>, mqtt: impl FnOnce(M) -> Polled) -> Polled {
    match event {
        Event::Message(m) => Polled::Message(m),
        Event::Rejected(r) => Polled::Rejected(r),
        Event::StorageFailed(f) => Polled::StorageFailed(f),
        Event::Mqtt(m) => mqtt(m),
        _ => Polled::Other,
    }
}

impl<O: OpenBackend> Loop<O> {
    /// Polls the connection; a connection error is explained (reason + fix).
    pub async fn poll(&mut self) -> std::result::Result<Polled, ConnectFailure> {
        use rumqttc::v5::Event as E5;
        use rumqttc::{Event as E4, Outgoing, Packet};
        match self {
            Loop::V4(l) => {
                let event = l.poll().await.map_err(|e| mqseal_rumqttc::explain(&e))?;
                Ok(common(event, |m| match m {
                    E4::Incoming(Packet::ConnAck(_)) => Polled::ConnAck,
                    E4::Incoming(Packet::PubAck(_)) => Polled::PubAck,
                    E4::Incoming(Packet::PubComp(_)) => Polled::PubComp,
                    E4::Outgoing(Outgoing::Publish(_)) => Polled::SentPublish,
                    _ => Polled::Other,
                }))
            }
            Loop::V5(l) => {
                let event = l.poll().await.map_err(|e| mqseal_rumqttc::explain_v5(&e))?;
                Ok(common(event, |m| match m {
                    E5::Incoming(Packet5::ConnAck(_)) => Polled::ConnAck,
                    E5::Incoming(Packet5::PubAck(ack)) => {
                        refusal(puback_code(&ack.reason)).map_or(Polled::PubAck, Polled::Refused)
                    }
                    // A refused PUBREC ends the exchange: no PUBREL, no PUBCOMP follows.
                    E5::Incoming(Packet5::PubRec(rec)) => {
                        refusal(pubrec_code(&rec.reason)).map_or(Polled::Other, Polled::Refused)
                    }
                    E5::Incoming(Packet5::PubComp(_)) => Polled::PubComp,
                    E5::Outgoing(Outgoing::Publish(_)) => Polled::SentPublish,
                    _ => Polled::Other,
                }))
            }
        }
    }

    /// Hands pending acknowledgements to rumqttc.
    pub fn flush_acks(&mut self) {
        match self {
            Loop::V4(l) => l.flush_acks(),
            Loop::V5(l) => l.flush_acks(),
        }
    }

    /// Polls until the broker accepted the connection; a failure is explained (reason + fix).
    pub async fn wait_connected(&mut self, address: &str) -> Result<()> {
        until_connected(address, async || {
            Ok(matches!(self.poll().await?, Polled::ConnAck))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v5_refusals_are_explained_and_successes_are_not() {
        assert_eq!(refusal(puback_code(&PubAckReason::Success)), None);
        assert_eq!(
            refusal(puback_code(&PubAckReason::NoMatchingSubscribers)),
            None
        );
        assert_eq!(
            refusal(puback_code(&PubAckReason::NotAuthorized)),
            Some("not authorized (check its ACL)")
        );
        assert_eq!(
            refusal(pubrec_code(&PubRecReason::NotAuthorized)),
            Some("not authorized (check its ACL)")
        );
        assert!(refusal(0x80).is_some_and(|r| r.contains("broker's log")));
    }
}
