//! `demo`: two identities, a grant, sealed messages through a broker, and side by side what the
//! key holder reads and what a key-less subscriber (or the broker) sees. Exits by itself.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use mqseal::{Grant, Identity, Opener, Profile, Sealer, TreeKey};
use mqseal_rumqttc::embedded::EmbeddedBroker;
use mqseal_rumqttc::{Event, Message, Rejected, SealedClient, SealedEventLoop};
use rumqttc::QoS;

use crate::HelpFlag;
use crate::conn::{ConnFlags, runtime, wait_connected};
use crate::error::{CliError, Result, err};

/// `mqseal demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Use this broker instead of the embedded one.
    #[arg(short = 'h', long = "host")]
    host: Option<String>,
    /// Port of that broker.
    #[arg(short = 'p', long = "port")]
    port: Option<u16>,
    /// Username.
    #[arg(short = 'u', long = "username")]
    username: Option<String>,
    /// Password.
    #[arg(short = 'P', long = "pw")]
    password: Option<String>,
    /// CA certificate of a TLS broker.
    #[arg(long)]
    cafile: Option<PathBuf>,
    /// Client certificate.
    #[arg(long)]
    cert: Option<PathBuf>,
    /// Client key.
    #[arg(long)]
    key: Option<PathBuf>,
    #[command(flatten)]
    help: HelpFlag,
}

const WAIT: Duration = Duration::from_secs(10);

pub fn demo(a: &DemoArgs) -> Result<()> {
    let real = a.host.is_some() || a.port.is_some();
    let conn = if real {
        ConnFlags {
            host: a.host.clone().unwrap_or_else(|| "localhost".into()),
            port: a.port,
            username: a.username.clone(),
            password: a.password.clone(),
            cafile: a.cafile.clone(),
            cert: a.cert.clone(),
            key: a.key.clone(),
            id: None,
            keepalive: 30,
            url: None,
            ..ConnFlags::basic()
        }
    } else {
        let broker = EmbeddedBroker::start()
            .map_err(|e| err("cannot start the embedded broker on 127.0.0.1", e))?;
        println!(
            "started an embedded MQTT broker (rumqttd) on 127.0.0.1:{}",
            broker.port
        );
        ConnFlags {
            host: "127.0.0.1".into(),
            port: Some(broker.port),
            username: None,
            password: None,
            cafile: None,
            cert: None,
            key: None,
            id: None,
            keepalive: 30,
            url: None,
            ..ConnFlags::basic()
        }
    };
    let address = conn.address();
    if real {
        println!("using the broker at {address}");
    }

    // On a shared broker keep to a topic tree of our own.
    let root = if real {
        let tag = Identity::generate()?.fingerprint().to_string();
        format!("mqseal-demo-{}/plant", tag.get(..8).unwrap_or("0"))
    } else {
        "plant".to_string()
    };

    // Two identities: a sensor that owns the key of the plant's topic tree, and a dashboard it
    // grants that key to (HPKE-wrapped to the dashboard, signed by the sensor).
    let sensor = Identity::generate()?;
    let dashboard = Identity::generate()?;
    let tree = TreeKey::generate(&format!("{root}/#"), 1)?;
    let grant = Grant::issue(&sensor, &dashboard.public(), &tree)?;
    println!("sensor    {}", sensor.fingerprint());
    println!("dashboard {}", dashboard.fingerprint());
    println!(
        "the sensor grants the dashboard the key of {root}/# ({} bytes, safe to send via the \
         broker)\n",
        grant.as_bytes().len()
    );
    let mut sealer = Sealer::new(sensor.clone(), Profile::Signed, 0);
    sealer.add_key(tree.clone());
    let mut opener = Opener::new();
    opener.trust_sender(sensor.public());
    opener.add_key(grant.accept(&dashboard, &[sensor.public()])?);

    let readings = [
        (format!("{root}/7/temp"), "21.5 C"),
        (format!("{root}/7/humidity"), "48 %"),
        (format!("{root}/7/door"), "open"),
    ];
    runtime()?.block_on(async {
        // The dashboard: holds the key.
        let (dash, mut dash_lp) = SealedClient::new(
            conn.options("demo-dashboard")?,
            10,
            Sealer::new(dashboard.clone(), Profile::Signed, 0),
            opener,
        );
        dash.subscribe(&format!("{root}/#"), QoS::AtLeastOnce)
            .await?;
        wait_connected(&mut dash_lp, &address).await?;
        wait_suback(&mut dash_lp).await?;

        // A plain subscriber without any key, on `#`: sees what the broker sees.
        let watch = if real {
            format!("{root}/#")
        } else {
            "#".into()
        };
        let (raw, mut raw_lp) = rumqttc::AsyncClient::new(conn.options("demo-keyless")?, 10);
        raw.subscribe(&watch, QoS::AtLeastOnce)
            .await
            .map_err(|e| err("subscribe", e))?;
        raw_until(&mut raw_lp, |e| {
            matches!(e, rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_)))
        })
        .await?;

        // The sensor publishes sealed readings.
        let (sensor_client, mut sensor_lp) =
            SealedClient::new(conn.options("demo-sensor")?, 10, sealer, Opener::new());
        wait_connected(&mut sensor_lp, &address).await?;
        let driver = tokio::spawn(async move { while sensor_lp.poll().await.is_ok() {} });
        for (topic, reading) in &readings {
            sensor_client
                .publish(topic, QoS::AtLeastOnce, false, reading)
                .await?;
        }

        let (read, _) = collect(&mut dash_lp, readings.len()).await;
        let mut seen = Vec::new();
        while seen.len() < readings.len() {
            let event = raw_until(&mut raw_lp, |e| {
                matches!(e, rumqttc::Event::Incoming(rumqttc::Packet::Publish(_)))
            })
            .await?;
            if let rumqttc::Event::Incoming(rumqttc::Packet::Publish(p)) = event {
                seen.push((p.topic.clone(), p.payload.to_vec()));
            }
        }

        println!(
            "{:<22} {:<28} key-less subscriber on '#' sees",
            "topic", "dashboard reads (has key)"
        );
        for (topic, reading) in &readings {
            let opened = read
                .iter()
                .find(|m| &m.topic == topic)
                .map_or("(nothing)".to_string(), |m| {
                    format!("{:?}", String::from_utf8_lossy(&m.payload))
                });
            let cipher =
                seen.iter()
                    .find(|(t, _)| t == topic)
                    .map_or("(nothing)".to_string(), |(_, c)| {
                        let leaked = c.windows(reading.len()).any(|w| w == reading.as_bytes());
                        format!(
                            "{} bytes {}…{}",
                            c.len(),
                            hex(c.get(..16).unwrap_or(c)),
                            if leaked { " PLAINTEXT LEAKED" } else { "" }
                        )
                    });
            println!("{:<22} {:<28} {}", short(topic, &root), opened, cipher);
        }
        if let Some(m) = read.first() {
            println!(
                "\nevery message is signed by the sensor ({}) and numbered: seq {}..={}",
                m.sender.fingerprint().sender_id(),
                m.seq,
                m.seq + readings.len() as u64 - 1
            );
        }

        // What the broker cannot do: replay a message, or move it to another topic.
        if let Some((topic, sealed)) = seen.first() {
            let moved = format!("{root}/8/temp");
            for t in [topic.clone(), moved] {
                raw.publish(&t, QoS::AtLeastOnce, false, sealed.clone())
                    .await
                    .map_err(|e| err("publish", e))?;
            }
            let raw_driver = tokio::spawn(async move { while raw_lp.poll().await.is_ok() {} });
            let (_, refused) = collect(&mut dash_lp, 2).await;
            println!(
                "a broker replaying the first message, then moving it to {}:",
                short(&format!("{root}/8/temp"), &root)
            );
            for r in &refused {
                println!(
                    "  {:<20} refused by the dashboard: {} [{}]",
                    short(&r.topic, &root),
                    r.error,
                    r.error.name()
                );
            }
            raw_driver.abort();
        }
        let stats = dash_lp.stats().clone();
        println!("\ndashboard: {stats}");
        let _ = sensor_client.disconnect().await;
        let _ = dash.disconnect().await;
        let _ = raw.disconnect().await;
        let _ = tokio::time::timeout(Duration::from_secs(2), driver).await;
        if read.len() != readings.len() {
            return Err(CliError(format!(
                "the dashboard opened {} of {} messages",
                read.len(),
                readings.len()
            )));
        }
        Ok(())
    })
}

fn short(topic: &str, root: &str) -> String {
    match topic.strip_prefix(root) {
        Some(rest) if root != "plant" => format!("…/plant{rest}"),
        _ => topic.to_string(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn wait_suback(lp: &mut SealedEventLoop) -> Result<()> {
    loop {
        match tokio::time::timeout(WAIT, lp.poll()).await {
            Ok(Ok(Event::Mqtt(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_))))) => {
                return Ok(());
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(err("subscription failed", e)),
            Err(_) => return Err(CliError("no SUBACK from the broker within 10 s".into())),
        }
    }
}

async fn collect(lp: &mut SealedEventLoop, n: usize) -> (Vec<Message>, Vec<Rejected>) {
    let (mut read, mut refused) = (Vec::new(), Vec::new());
    while read.len() + refused.len() < n {
        match tokio::time::timeout(WAIT, lp.poll()).await {
            Ok(Ok(Event::Message(m))) => read.push(m),
            Ok(Ok(Event::Rejected(r))) => refused.push(r),
            Ok(Ok(_)) => {}
            Ok(Err(_)) | Err(_) => break,
        }
    }
    (read, refused)
}

async fn raw_until(
    lp: &mut rumqttc::EventLoop,
    want: impl Fn(&rumqttc::Event) -> bool,
) -> Result<rumqttc::Event> {
    loop {
        match tokio::time::timeout(WAIT, lp.poll()).await {
            Ok(Ok(e)) if want(&e) => return Ok(e),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(err("key-less subscriber", e)),
            Err(_) => return Err(CliError("the broker went quiet for 10 s".into())),
        }
    }
}
