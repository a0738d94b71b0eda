//! Seal on one side, open on the other, and print what a broker would see.
//!
//! Run with `cargo run --example quickstart`.

use mqseal::{Grant, Identity, Opener, Profile, Sealer, TreeKey};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Why opening failed (these attempts must fail).
fn refusal(result: Result<mqseal::Opened, mqseal::Error>) -> String {
    match result {
        Ok(_) => "ACCEPTED (this would be a bug)".to_string(),
        Err(e) => format!("refused: {e} [{}]", e.name()),
    }
}

fn main() -> Result<(), mqseal::Error> {
    // Three parties: an administrator who owns the `plant/#` key tree, a sensor that publishes,
    // and a dashboard that subscribes.
    let admin = Identity::generate()?;
    let sensor = Identity::generate()?;
    let dashboard = Identity::generate()?;
    let plant = TreeKey::generate("plant/#", 1)?;

    // The admin grants the sensor the key of its own line, and the dashboard the whole plant.
    // Grants are safe to send over the broker: only the recipient can unwrap them.
    let to_sensor = Grant::issue(&admin, &sensor.public(), &plant.derive("plant/7/#")?)?;
    let to_dashboard = Grant::issue(&admin, &dashboard.public(), &plant)?;

    let mut sealer = Sealer::new(sensor.clone(), Profile::Signed, 0);
    sealer.add_key(to_sensor.accept(&sensor, &[admin.public()])?);

    let mut opener = Opener::new();
    opener.trust_sender(sensor.public());
    opener.add_key(to_dashboard.accept(&dashboard, &[admin.public()])?);

    println!("sensor    {}", sensor.fingerprint());
    println!("dashboard {}\n", dashboard.fingerprint());
    for (topic, reading) in [("plant/7/temp", "21.5 C"), ("plant/7/humidity", "48 %")] {
        let sealed = sealer.seal(topic, reading.as_bytes(), false)?;
        let header = mqseal::inspect(&sealed)?;
        println!("publish {topic:<17} plaintext  {reading:?}");
        println!(
            "  broker sees {} bytes (+{} overhead): {}",
            sealed.len(),
            sealed.len() - reading.len(),
            hex(&sealed)
        );
        println!(
            "  header: profile={} epoch={} sender={} seq={}",
            header.profile.name(),
            header.epoch,
            header.sender,
            header.seq
        );
        let opened = opener.open(topic, &sealed)?;
        println!(
            "  dashboard opens: {:?} from {} seq {}",
            String::from_utf8_lossy(&opened.payload),
            opened.sender.fingerprint().sender_id(),
            opened.seq
        );
        // A replay of the same bytes, or the bytes moved to another topic, are refused.
        println!(
            "  replayed:        {}",
            refusal(opener.open(topic, &sealed))
        );
        println!(
            "  moved to plant/8/temp: {}\n",
            refusal(opener.open("plant/8/temp", &sealed))
        );
    }
    Ok(())
}
