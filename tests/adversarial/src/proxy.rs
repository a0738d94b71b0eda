//! A man-in-the-middle MQTT proxy on 127.0.0.1 that plays a malicious broker.
//!
//! Clients connect to the proxy as if it were the broker; the proxy connects to the real broker
//! and relays every packet both ways. PUBLISH packets coming from the broker (deliveries to the
//! subscriber) go through the current [`Attack`], which may drop, hold, duplicate, rewrite or
//! multiply them; the test can also [`inject`](MitmProxy::inject) packets of its own (replays
//! of [`recorded`](MitmProxy::recorded) deliveries) at any time.
//!
//! QoS 1 is terminated at the proxy on both sides: the proxy acknowledges each delivery to the
//! broker itself as soon as it arrives, and swallows the client's PUBACKs. So the broker's
//! in-flight window never fills up with messages the proxy dropped or holds, and injected
//! copies (same packet id) never confuse it. QoS 2 packets are relayed untouched (not attacked).
//! Only one client connection at a time is expected (the subscriber under attack).

use std::io::{self, BufReader, BufWriter, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;

use crate::mqtt::{Frame, Publish, packet_type};

/// What the proxy does with one PUBLISH from the broker: the packets to deliver instead (none
/// drops it; the attack may keep it and deliver it later with another call's output).
pub type Attack = Box<dyn FnMut(Publish) -> Vec<Publish> + Send>;

/// Relays every delivery unchanged.
pub fn pass_through() -> Attack {
    Box::new(|p| vec![p])
}

struct Shared {
    attack: Mutex<Attack>,
    to_client: Mutex<Option<TcpStream>>,
    recorded: Mutex<Vec<Publish>>,
    streams: Mutex<Vec<TcpStream>>,
    delivered: AtomicU64,
    stop: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running proxy; stops (closing every connection) when dropped.
pub struct MitmProxy {
    port: u16,
    shared: Arc<Shared>,
}

impl MitmProxy {
    /// Listens on a free 127.0.0.1 port and relays to the broker on 127.0.0.1:`broker_port`,
    /// passing everything through until [`set_attack`](Self::set_attack).
    pub fn start(broker_port: u16) -> io::Result<MitmProxy> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let port = listener.local_addr()?.port();
        let upstream = SocketAddr::from((Ipv4Addr::LOCALHOST, broker_port));
        let shared = Arc::new(Shared {
            attack: Mutex::new(pass_through()),
            to_client: Mutex::new(None),
            recorded: Mutex::new(Vec::new()),
            streams: Mutex::new(Vec::new()),
            delivered: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let s = Arc::clone(&shared);
        thread::Builder::new()
            .name("mitm-accept".into())
            .spawn(move || accept_loop(&listener, upstream, &s))?;
        Ok(MitmProxy { port, shared })
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Replaces the attack applied to deliveries from now on.
    pub fn set_attack(&self, attack: Attack) {
        *lock(&self.shared.attack) = attack;
    }

    /// Goes back to relaying unchanged.
    pub fn pass_through(&self) {
        self.set_attack(pass_through());
    }

    /// Every PUBLISH the broker delivered through the proxy so far, as it arrived.
    pub fn recorded(&self) -> Vec<Publish> {
        lock(&self.shared.recorded).clone()
    }

    /// PUBLISH packets written to the client so far (attack outputs and injections).
    pub fn delivered(&self) -> u64 {
        self.shared.delivered.load(Ordering::SeqCst)
    }

    /// Sends `packets` to the connected client now, as if the broker delivered them.
    pub fn inject(&self, packets: &[Publish]) -> io::Result<()> {
        let mut client = lock(&self.shared.to_client);
        let stream = client
            .as_mut()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "no client connected"))?;
        send(stream, packets, &self.shared.delivered)
    }
}

impl Drop for MitmProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for s in lock(&self.shared.streams).drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
        // Wake the accept loop so it sees the stop flag.
        let _ = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port));
    }
}

fn send(stream: &mut TcpStream, packets: &[Publish], count: &AtomicU64) -> io::Result<()> {
    let mut out = Vec::new();
    for p in packets {
        out.extend_from_slice(&p.to_frame().encode());
    }
    stream.write_all(&out)?;
    count.fetch_add(packets.len() as u64, Ordering::SeqCst);
    Ok(())
}

fn accept_loop(listener: &TcpListener, upstream: SocketAddr, shared: &Arc<Shared>) {
    for client in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        if let Err(e) = relay(client, upstream, shared) {
            eprintln!("mitm proxy: could not relay a connection: {e}");
        }
    }
}

/// Connects to the broker and starts both pumps for one client connection.
fn relay(client: TcpStream, upstream: SocketAddr, shared: &Arc<Shared>) -> io::Result<()> {
    let broker = TcpStream::connect(upstream)?;
    client.set_nodelay(true)?;
    broker.set_nodelay(true)?;
    {
        let mut streams = lock(&shared.streams);
        streams.push(client.try_clone()?);
        streams.push(broker.try_clone()?);
    }
    *lock(&shared.to_client) = Some(client.try_clone()?);
    let to_broker = Arc::new(Mutex::new(broker.try_clone()?));

    let s = Arc::clone(shared);
    let acks = Arc::clone(&to_broker);
    thread::Builder::new()
        .name("mitm-broker-to-client".into())
        .spawn(move || {
            let _ = broker_to_client(broker, &acks, &s);
            if let Some(c) = lock(&s.to_client).as_ref() {
                let _ = c.shutdown(Shutdown::Both);
            }
        })?;
    thread::Builder::new()
        .name("mitm-client-to-broker".into())
        .spawn(move || {
            let _ = client_to_broker(client, &to_broker);
            let _ = lock(&to_broker).shutdown(Shutdown::Both);
        })?;
    Ok(())
}

fn broker_to_client(
    broker: TcpStream,
    to_broker: &Mutex<TcpStream>,
    shared: &Shared,
) -> io::Result<()> {
    let mut from = BufReader::new(broker);
    while let Some(frame) = Frame::read(&mut from)? {
        let publish = Publish::from_frame(&frame).filter(|p| p.qos < 2);
        let Some(publish) = publish else {
            let mut client = lock(&shared.to_client);
            if let Some(c) = client.as_mut() {
                frame.write(c)?;
            }
            continue;
        };
        if publish.qos == 1 {
            Frame::puback(publish.pkid).write(&mut *lock(to_broker))?;
        }
        lock(&shared.recorded).push(publish.clone());
        let out = (lock(&shared.attack))(publish);
        let mut client = lock(&shared.to_client);
        if let Some(c) = client.as_mut() {
            send(c, &out, &shared.delivered)?;
        }
    }
    Ok(())
}

fn client_to_broker(client: TcpStream, to_broker: &Mutex<TcpStream>) -> io::Result<()> {
    let mut from = BufReader::new(client);
    while let Some(frame) = Frame::read(&mut from)? {
        // The proxy already acknowledged every QoS 1 delivery to the broker.
        if frame.packet_type() == packet_type::PUBACK {
            continue;
        }
        let mut broker = lock(to_broker);
        let mut w = BufWriter::new(&mut *broker);
        frame.write(&mut w)?;
        w.flush()?;
    }
    Ok(())
}
