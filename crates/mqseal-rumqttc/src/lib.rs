//! # mqseal-rumqttc — mqseal over the rumqttc MQTT client
//!
//! A thin wrapper over [rumqttc] 0.25 that seals every payload on publish and opens every
//! incoming PUBLISH, handing the application the plaintext, the authenticated sender and its
//! sequence number. All cryptography, replay and duplicate detection live in the core
//! [`mqseal`] crate; this crate only plumbs it into the client.
//!
//! | flavour | client | event loop |
//! |---|---|---|
//! | MQTT v3.1.1, async | [`SealedClient`] | [`SealedEventLoop`] |
//! | MQTT v3.1.1, blocking | [`SealedSyncClient`] | [`SealedConnection`] |
//! | MQTT v5, async | [`v5::SealedClient`] | [`v5::SealedEventLoop`] |
//! | MQTT v5, blocking | [`v5::SealedSyncClient`] | [`v5::SealedConnection`] |
//!
//! ```no_run
//! use mqseal::{Identity, Opener, Profile, Sealer, TreeKey};
//! use mqseal_rumqttc::{ConnectOptions, Event, SealedClient, TlsFiles};
//! use rumqttc::QoS;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let me = Identity::generate()?;
//! let key = TreeKey::generate("plant/#", 1)?;
//! let mut sealer = Sealer::new(me.clone(), Profile::Signed, 0);
//! sealer.add_key(key.clone());
//! let mut opener = Opener::new();
//! opener.trust_sender(me.public());
//! opener.add_key(key);
//!
//! // Like `mosquitto_sub -h broker -p 8883 --cafile ca.crt -u user -P pass`.
//! let options = ConnectOptions::new("dashboard", "broker.example", 8883)
//!     .credentials("user", "pass")
//!     .tls(TlsFiles::ca("ca.crt"))
//!     .v4()?;
//! let (client, mut events) = SealedClient::new(options, 10, sealer, opener);
//! client.subscribe("plant/#", QoS::AtLeastOnce).await?;
//! client.publish("plant/7/temp", QoS::AtLeastOnce, false, "21.5").await?;
//! loop {
//!     match events.poll().await? {
//!         Event::Message(m) => println!("{} from {}: {:?}", m.topic, m.sender.fingerprint(), m.payload),
//!         Event::Rejected(r) => eprintln!("refused a message on {}: {}", r.topic, r.error),
//!         _ => {} // other MQTT events, storage failures of a persistent opener
//!     }
//! }
//! # }
//! ```
//!
//! ## What the wrapper guarantees
//! - **Sealed on publish**: `publish`/`try_publish` seal before the request enters rumqttc, so
//!   retransmissions resend the same sealed bytes (one sequence number per message). The
//!   sealed size is checked against the maximum packet size first ([`Error::PacketTooLarge`],
//!   no sequence number spent) instead of letting rumqttc drop the connection.
//! - **Failures are events**: a PUBLISH that does not open (unknown sender, wrong key, tampered,
//!   replayed, moved to another topic, retain flag flipped…) becomes [`Event::Rejected`] with the
//!   core [`mqseal::Error`] as reason, counted in [`Stats`]; its payload is never handed out and
//!   the loop goes on.
//! - **Manual acks**: PUBACK/PUBREC of a QoS 1/2 message is sent when the loop is polled again,
//!   i.e. after the application handled the message. A redelivery (MQTT DUP flag) of a message
//!   already accepted is recognised by the core replay window and rejected as
//!   [`mqseal::Error::Duplicate`], so it is not delivered twice.
//! - **Retained**: the broker's retain flag is passed as [`mqseal::Delivery::retained`]; a
//!   message delivered retained but not sealed retained is refused.
//! - **MQTT v5 topic aliases**: see [`v5`]: not advertised, and resolved anyway.
//! - **Grants in band** (feature `store`, module `grants`): `SealedClient::publish_grants` publishes
//!   what a keystore issued or rotated (QoS 1, retained, on `mqseal/grants/<fingerprint>/<slot>`);
//!   `SealedClient::follow_grants` subscribes to the client's own grant topic, hands each grant
//!   to the store (`Event::Grant`, never application data; refusals counted) and reloads the
//!   sealer's and opener's keys, so senders switch to a new epoch and receivers open it with no
//!   manual reload, the previous epoch still opened for the store's grace period. The same
//!   methods exist on the blocking and the [`v5`] clients.
//! - **State across restarts**: the clients are generic over a [`SealBackend`] and an
//!   [`OpenBackend`]: the in-memory core [`mqseal::Sealer`]/[`mqseal::Opener`], or with the
//!   `store` feature the keystore's `PersistentSealer` (sequence blocks reserved durably before
//!   use) and `PersistentOpener` (replay windows persisted before delivery; a message that
//!   cannot be recorded is neither delivered nor acknowledged: [`Event::StorageFailed`]).
//!
//! ## TLS backend (build cost)
//! rumqttc is used with `default-features = false` and `use-rustls-no-provider`, plus rustls
//! with only the `ring` provider. rumqttc's default features pull `aws-lc-rs`/`aws-lc-sys`, a
//! large C build (about 111 s of a clean release build on 2 cores); `ring` builds in a fraction
//! of that (figures in this crate's README.md). The broker's certificate is verified by OpenSSL
//! with libmosquitto's host-name rule ([`verify`]), so that what `mosquitto_pub` accepts is
//! accepted, including the X.509 v1, CN-only certificates of the usual Mosquitto walkthroughs.
//! [`TlsFiles`] turns `mosquitto_pub`'s TLS flags into a rustls configuration with errors that
//! name the file, the reason and the fix; [`explain`] does the same for connection failures.
//!
//! ## Wrapping any other client
//! The wrapper is only this, so any MQTT client (or none: plain bytes) works the same way:
//! seal right before handing the payload to the client, open right after receiving it, and
//! pass the transport's retain and DUP flags.
//!
//! ```
//! use mqseal::{Delivery, Identity, Opener, Profile, Sealer, TreeKey};
//!
//! let sensor = Identity::from_seed([1; 32]);
//! let key = TreeKey::from_secret("plant/#", 1, [2; 32]).unwrap();
//! let mut sealer = Sealer::new(sensor.clone(), Profile::Signed, 0);
//! sealer.add_key(key.clone());
//! let mut opener = Opener::new();
//! opener.trust_sender(sensor.public());
//! opener.add_key(key);
//!
//! // Publisher side: `other_client.publish(topic, qos, retain, sealed)`.
//! let (topic, retain) = ("plant/7/temp", true);
//! let sealed: Vec<u8> = sealer.seal(topic, b"21.5", retain).unwrap();
//!
//! // Subscriber side, in the client's message callback (topic, payload, retain, dup flags):
//! let delivery = Delivery { retained: true, duplicate: false, now: None };
//! match opener.open_delivered(topic, &sealed, &delivery) {
//!     Ok(msg) => assert_eq!(msg.payload, b"21.5"),          // hand to the application
//!     Err(mqseal::Error::Duplicate) => {}                    // QoS 1 redelivery: ack, drop
//!     Err(e) => panic!("refused: {e}"),                      // count and drop, never deliver
//! }
//! // Acknowledge (manual acks) only now that the message was handled.
//! ```
//!
//! [rumqttc]: https://docs.rs/rumqttc/0.25
#![forbid(unsafe_code)]

mod backend;
mod client;
mod diagnose;
#[cfg(feature = "embedded-broker")]
pub mod embedded;
mod error;
mod event;
mod filter;
#[cfg(feature = "store")]
pub mod grants;
mod options;
mod receive;
mod seal;
mod sync;
mod tls;
mod url;
pub mod v5;
pub mod verify;

pub use backend::{OpenBackend, OpenFailure, SealBackend};
pub use client::{SealedClient, SealedEvent, SealedEventLoop};
pub use diagnose::{ConnectFailure, FailureKind, explain, explain_v5};
pub use error::Error;
pub use event::{Event, Message, Rejected, Stats, StorageFailure};
pub use filter::check_filter;
pub use options::ConnectOptions;
pub use sync::{SealedConnection, SealedSyncClient};
pub use tls::{TlsFiles, TlsVersion};
pub use url::{BrokerUrl, SYSTEM_CA_BUNDLE};
pub use verify::{ServerCertProblem, ServerCertProblemKind};

/// The rumqttc version this crate wraps, re-exported so applications use the same one.
pub use rumqttc;
