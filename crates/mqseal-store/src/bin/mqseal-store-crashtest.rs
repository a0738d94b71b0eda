//! Test helper for `tests/crash.rs`: seals or opens in a loop, printing one line per message,
//! so a test can SIGKILL it at any instant and check what survived. Not a user tool.
//!
//! ```text
//! mqseal-store-crashtest seal <store> <block> <count|0>   prints "<topic> <sealed hex>" per message
//! mqseal-store-crashtest open <store> <messages file>     prints "ok <line> <seq>" or "err <line> <name>"
//! ```
#![forbid(unsafe_code)]

use std::error::Error;
use std::io::{BufRead, BufReader, Write};

use mqseal::{Delivery, OpenPolicy, Profile};
use mqseal_store::{Store, StoreOptions};

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["seal", dir, block, count] => seal(dir, block.parse()?, count.parse()?),
        ["open", dir, file] => open(dir, file),
        _ => Err(
            "usage: mqseal-store-crashtest seal <store> <block> <count> | open <store> <file>"
                .into(),
        ),
    }
}

fn seal(dir: &str, block: u64, count: u64) -> Result<(), Box<dyn Error>> {
    let options = StoreOptions {
        sequence_block: block,
        ..StoreOptions::default()
    };
    let store = Store::open_with(dir, options)?;
    let mut sealer = store.sealer(Profile::Signed)?;
    let mut out = std::io::stdout().lock();
    let mut i: u64 = 0;
    while count == 0 || i < count {
        let topic = format!("crash/{}", i % 3);
        let sealed = sealer.seal(&topic, &i.to_be_bytes(), false)?;
        writeln!(out, "{topic} {}", hex::encode(&sealed))?;
        out.flush()?;
        i += 1;
    }
    Ok(())
}

fn open(dir: &str, file: &str) -> Result<(), Box<dyn Error>> {
    let store = Store::open(dir)?;
    let mut opener = store.opener(OpenPolicy::default())?;
    let mut out = std::io::stdout().lock();
    let input = BufReader::new(std::fs::File::open(file)?);
    for (n, line) in input.lines().enumerate() {
        let line = line?;
        let (topic, sealed) = line.split_once(' ').ok_or("bad input line")?;
        let sealed = hex::decode(sealed)?;
        match opener.open_delivered(topic, &sealed, &Delivery::default()) {
            Ok(opened) => writeln!(out, "ok {n} {}", opened.seq)?,
            Err(e) => writeln!(out, "err {n} {}", e.name())?,
        }
        out.flush()?;
    }
    Ok(())
}
