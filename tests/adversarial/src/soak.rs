//! The crash/soak stream, shared by its helper binaries (`mqseal-soak-pub`, `mqseal-soak-sub`)
//! and `tests/crash_soak.rs`: the numbered payloads, the subscriber's application log, progress
//! files and peak memory.
//!
//! Application log (one line per event, appended by the subscriber, never rewritten except to
//! drop a line torn by a kill):
//!
//! ```text
//! s <subscriber run>                                          a subscriber process started
//! d <index> <publisher run> <topic> <epoch> <seq> <sender fingerprint> <sealed hex>
//! r <reason> <claimed seq or -> <dup flag 0|1> <topic> <sealed hex or ->   a refused delivery
//! ```

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::Path;

/// Topics the stream is spread over (one replay window each).
pub const TOPICS: u64 = 4;

/// The topic filter the subscriber and observer use.
pub const FILTER: &str = "soak/#";

/// The topic of logical message `index`.
pub fn topic(index: u64) -> String {
    format!("soak/{}", index % TOPICS)
}

/// The plaintext of logical message `index` sent by publisher run `run`.
pub fn payload(index: u64, run: u32) -> Vec<u8> {
    format!("{index} {run}").into_bytes()
}

/// `(index, run)` of a payload made by [`payload`].
pub fn parse_payload(bytes: &[u8]) -> Option<(u64, u32)> {
    let text = std::str::from_utf8(bytes).ok()?;
    let (index, run) = text.split_once(' ')?;
    Some((index.parse().ok()?, run.parse().ok()?))
}

/// One line of the application log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// A subscriber process started (its run number).
    Started(u32),
    /// A message handed to the application.
    Delivered(Delivered),
    /// A delivery the wrapper refused (not handed to the application).
    Refused {
        /// The core error's name (`duplicate`, `replay`…).
        reason: String,
        /// The sequence number the header claims.
        seq: Option<u64>,
        /// The broker's DUP flag.
        duplicate: bool,
        /// The topic it arrived on.
        topic: String,
        /// The bytes as received.
        sealed: Vec<u8>,
    },
}

/// A message the application handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// The logical index (from the plaintext).
    pub index: u64,
    /// The publisher run that sealed it (from the plaintext).
    pub run: u32,
    /// Its topic.
    pub topic: String,
    /// Its key epoch.
    pub epoch: u32,
    /// Its sequence number.
    pub seq: u64,
    /// The sender's fingerprint (hex).
    pub sender: String,
    /// The sealed bytes as received (the subscriber's redo record).
    pub sealed: Vec<u8>,
}

impl Record {
    /// The log line, with its final newline.
    pub fn line(&self) -> String {
        match self {
            Record::Started(run) => format!("s {run}\n"),
            Record::Delivered(d) => format!(
                "d {} {} {} {} {} {} {}\n",
                d.index,
                d.run,
                d.topic,
                d.epoch,
                d.seq,
                d.sender,
                hex::encode(&d.sealed)
            ),
            Record::Refused {
                reason,
                seq,
                duplicate,
                topic,
                sealed,
            } => format!(
                "r {reason} {} {} {topic} {}\n",
                seq.map_or("-".to_string(), |s| s.to_string()),
                u8::from(*duplicate),
                if sealed.is_empty() {
                    "-".to_string()
                } else {
                    hex::encode(sealed)
                }
            ),
        }
    }

    /// Parses a line (without its newline).
    pub fn parse(line: &str) -> Option<Record> {
        let f: Vec<&str> = line.split(' ').collect();
        match f.as_slice() {
            ["s", run] => Some(Record::Started(run.parse().ok()?)),
            ["d", index, run, topic, epoch, seq, sender, sealed] => {
                Some(Record::Delivered(Delivered {
                    index: index.parse().ok()?,
                    run: run.parse().ok()?,
                    topic: (*topic).to_string(),
                    epoch: epoch.parse().ok()?,
                    seq: seq.parse().ok()?,
                    sender: (*sender).to_string(),
                    sealed: hex::decode(sealed).ok()?,
                }))
            }
            ["r", reason, seq, dup, topic, sealed] => Some(Record::Refused {
                reason: (*reason).to_string(),
                seq: seq.parse().ok(),
                duplicate: *dup == "1",
                topic: (*topic).to_string(),
                sealed: if *sealed == "-" {
                    Vec::new()
                } else {
                    hex::decode(sealed).ok()?
                },
            }),
            _ => None,
        }
    }
}

/// Reads an application log: its records and the length of its complete lines (a last line
/// without newline was torn by a kill and is not a record). A missing file is empty.
pub fn read_log(path: &Path) -> io::Result<(Vec<Record>, u64)> {
    let mut records = Vec::new();
    let complete = scan_log(path, |r| records.push(r))?;
    Ok((records, complete))
}

/// Like [`read_log`], one record at a time (constant memory); returns the complete length.
pub fn scan_log(path: &Path, mut each: impl FnMut(Record)) -> io::Result<u64> {
    let file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut reader = io::BufReader::new(file);
    let mut line = Vec::new();
    let mut complete = 0u64;
    loop {
        line.clear();
        let n = io::BufRead::read_until(&mut reader, b'\n', &mut line)?;
        if n == 0 || line.last() != Some(&b'\n') {
            return Ok(complete);
        }
        let text = std::str::from_utf8(line.get(..n - 1).unwrap_or_default())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let record = Record::parse(text).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, format!("bad log line {text:?}"))
        })?;
        each(record);
        complete += n as u64;
    }
}

/// Reads a progress file (`next <index>`); 0 when missing.
pub fn read_progress(path: &Path) -> io::Result<u64> {
    match fs::read_to_string(path) {
        Ok(text) => text
            .trim()
            .strip_prefix("next ")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad progress file")),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e),
    }
}

/// Replaces the progress file atomically (temporary file, rename). No fsync: the stream is
/// about `kill -9`, which leaves the page cache intact.
pub fn write_progress(path: &Path, next: u64) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, format!("next {next}\n"))?;
    fs::rename(tmp, path)
}

/// Peak resident set size (`VmHWM`) of process `pid`, in KiB.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// Counts of refusals by reason.
pub fn refusals(records: &[Record]) -> HashMap<String, u64> {
    let mut out = HashMap::new();
    for r in records {
        if let Record::Refused { reason, .. } = r {
            *out.entry(reason.clone()).or_default() += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn records_round_trip() {
        let all = [
            Record::Started(3),
            Record::Delivered(Delivered {
                index: 7,
                run: 2,
                topic: topic(7),
                epoch: 1,
                seq: 99,
                sender: "ab".repeat(32),
                sealed: vec![1, 2, 3],
            }),
            Record::Refused {
                reason: "duplicate".into(),
                seq: Some(4),
                duplicate: true,
                topic: topic(4),
                sealed: vec![9, 9],
            },
            Record::Refused {
                reason: "malformed".into(),
                seq: None,
                duplicate: false,
                topic: topic(1),
                sealed: Vec::new(),
            },
        ];
        for r in all {
            let line = r.line();
            assert_eq!(Record::parse(line.trim_end()).unwrap(), r);
        }
        assert_eq!(parse_payload(&payload(12, 5)), Some((12, 5)));
    }
}
