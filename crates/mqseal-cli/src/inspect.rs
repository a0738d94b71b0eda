//! `inspect`: what anyone (the broker included) can read of a sealed message: its header.

use std::io::Read;
use std::path::PathBuf;

use clap::Args;

use crate::error::{CliError, Result, err};

/// `mqseal inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// File holding the sealed message (raw bytes, or hex); `-` or nothing for stdin.
    file: Option<PathBuf>,
    /// The message as hex on the command line instead.
    #[arg(long, conflicts_with = "file")]
    hex: Option<String>,
}

/// The most input worth reading: a sealed message of the largest size, as hex with newlines.
const MAX_INPUT: u64 = 2 * mqseal::MAX_SEALED_LEN as u64 + 2;

pub fn inspect(a: &InspectArgs) -> Result<()> {
    let too_large = |what: &str| {
        CliError(format!(
            "{what} is larger than any mqseal message ({} bytes at most); fix: pass one sealed \
             payload",
            mqseal::MAX_SEALED_LEN
        ))
    };
    let raw = match (&a.hex, &a.file) {
        (Some(h), _) => h.clone().into_bytes(),
        (None, Some(f)) if f.as_os_str() != "-" => {
            let what = format!("{}", f.display());
            let len = std::fs::metadata(f)
                .map_err(|e| err(&format!("{what}: cannot read"), e))?
                .len();
            if len > MAX_INPUT {
                return Err(too_large(&what));
            }
            std::fs::read(f).map_err(|e| err(&format!("{what}: cannot read"), e))?
        }
        _ => {
            let mut all = Vec::new();
            std::io::stdin()
                .take(MAX_INPUT + 1)
                .read_to_end(&mut all)
                .map_err(|e| err("cannot read stdin", e))?;
            if all.len() as u64 > MAX_INPUT {
                return Err(too_large("stdin"));
            }
            all
        }
    };
    let bytes = decode_hex(&raw).unwrap_or(raw);
    print!("{}", describe(&bytes)?);
    Ok(())
}

/// The header of a sealed message, as `key value` lines.
pub fn describe(bytes: &[u8]) -> Result<String> {
    let h = mqseal::inspect(bytes).map_err(|e| {
        CliError(format!(
            "not an mqseal message: {e} [{}]; fix: pass the exact payload bytes (raw or hex)",
            e.name()
        ))
    })?;
    let body = bytes
        .len()
        .saturating_sub(h.encoded_len() + h.profile.trailer_len());
    Ok(format!(
        "version    {}\nprofile    {}\nretain     {}\nepoch      {}\nsender-id  {}\nseq        {}\n\
         timestamp  {}\nlength     {} bytes ({} bytes of ciphertext, {} of header and trailer)\n",
        mqseal::VERSION,
        h.profile.name(),
        h.retain,
        h.epoch,
        h.sender,
        h.seq,
        h.timestamp.map_or("none".to_string(), |t| t.to_string()),
        bytes.len(),
        body,
        bytes.len() - body,
    ))
}

fn decode_hex(raw: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(raw).ok()?;
    let clean: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if clean.is_empty() || !clean.len().is_multiple_of(2) {
        return None;
    }
    clean
        .chunks(2)
        .map(|pair| {
            let s = std::str::from_utf8(pair).ok()?;
            u8::from_str_radix(s, 16).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn describes_a_sealed_message_and_refuses_garbage() {
        let id = mqseal::Identity::from_seed([5; 32]);
        let mut sealer = mqseal::Sealer::new(id.clone(), mqseal::Profile::Signed, 0);
        sealer.add_key(mqseal::TreeKey::from_secret("#", 3, [6; 32]).unwrap());
        sealer.set_sequence(41, u64::MAX);
        let sealed = sealer.seal("a/b", b"hello", true).unwrap();
        let text = describe(&sealed).unwrap();
        assert!(text.contains("profile    signed"), "{text}");
        assert!(text.contains("retain     true"));
        assert!(text.contains("epoch      3"));
        assert!(text.contains("seq        41"));
        assert!(text.contains(&format!("sender-id  {}", id.public().sender_id())));
        assert!(text.contains("(5 bytes of ciphertext"), "{text}");
        let hex: String = sealed.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(decode_hex(hex.as_bytes()).unwrap(), sealed);
        assert!(describe(b"").is_err());
        assert!(
            describe(b"plain text")
                .unwrap_err()
                .0
                .contains("not an mqseal message")
        );
    }
}
