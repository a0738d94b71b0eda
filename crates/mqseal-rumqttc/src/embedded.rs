//! An in-process MQTT broker (rumqttd) on 127.0.0.1, for the `mqseal demo` and for tests on
//! machines without Mosquitto. Feature `embedded-broker`.
//!
//! rumqttd is built without its default features (no TLS, no websockets); it still brings a
//! few dependencies of its own (metrics, config), which is why it is an optional feature.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

/// A running rumqttd broker: an MQTT v3.1.1 listener and an MQTT v5 listener on free
/// 127.0.0.1 ports. rumqttd cannot be stopped: it runs until the process exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmbeddedBroker {
    /// Port of the MQTT v3.1.1 listener.
    pub port: u16,
    /// Port of the MQTT v5 listener.
    pub port_v5: u16,
}

impl EmbeddedBroker {
    /// Starts the broker on two free loopback ports and waits until both accept connections.
    pub fn start() -> io::Result<EmbeddedBroker> {
        let port = free_port()?;
        let port_v5 = free_port()?;
        let config = rumqttd::Config {
            id: 0,
            router: rumqttd::RouterConfig {
                max_connections: 1000,
                max_outgoing_packet_count: 200,
                max_segment_size: 10 * 1024 * 1024,
                max_segment_count: 10,
                ..rumqttd::RouterConfig::default()
            },
            v4: Some(HashMap::from([("v4".to_string(), settings("v4", port))])),
            v5: Some(HashMap::from([("v5".to_string(), settings("v5", port_v5))])),
            ..rumqttd::Config::default()
        };
        let mut broker = rumqttd::Broker::new(config);
        thread::Builder::new()
            .name("mqseal-embedded-broker".into())
            .spawn(move || {
                if let Err(e) = broker.start() {
                    eprintln!("embedded broker stopped: {e}");
                }
            })?;
        wait_until_accepting(port)?;
        wait_until_accepting(port_v5)?;
        Ok(EmbeddedBroker { port, port_v5 })
    }
}

fn settings(name: &str, port: u16) -> rumqttd::ServerSettings {
    rumqttd::ServerSettings {
        name: name.to_string(),
        listen: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        tls: None,
        next_connection_delay_ms: 1,
        connections: rumqttd::ConnectionSettings {
            connection_timeout_ms: 60_000,
            max_payload_size: 1 << 20,
            max_inflight_count: 100,
            auth: None,
            external_auth: None,
            dynamic_filters: true,
        },
    }
}

/// A port that was free on 127.0.0.1 a moment ago (the OS picks it).
pub fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// Waits (up to 10 s) until something accepts TCP connections on 127.0.0.1:`port`.
pub fn wait_until_accepting(port: u16) -> io::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match TcpStream::connect((Ipv4Addr::LOCALHOST, port)) {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() >= deadline => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("nothing accepts connections on 127.0.0.1:{port}: {e}"),
                ));
            }
            Err(_) => thread::sleep(Duration::from_millis(20)),
        }
    }
}
