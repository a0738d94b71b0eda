//! A minimal MQTT v3.1.1 framing codec for the man-in-the-middle proxy: whole packets (fixed
//! header, remaining length, body) and the fields of PUBLISH packets, nothing else.
//!
//! Only what a tampering proxy needs: it must pass every other packet through byte for byte,
//! and rewrite PUBLISH packets (topic, flags, packet id, payload) freely.

use std::io::{self, Read, Write};

/// MQTT control packet types used by the proxy (the high nibble of the first byte).
pub mod packet_type {
    /// PUBLISH.
    pub const PUBLISH: u8 = 3;
    /// PUBACK.
    pub const PUBACK: u8 = 4;
}

/// One MQTT control packet as it travels: the first byte and the body after the remaining
/// length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Packet type (high nibble) and flags (low nibble).
    pub first: u8,
    /// Everything after the remaining-length field.
    pub body: Vec<u8>,
}

impl Frame {
    /// The packet type (1 CONNECT … 14 DISCONNECT).
    pub fn packet_type(&self) -> u8 {
        self.first >> 4
    }

    /// Reads one packet; `Ok(None)` at a clean end of stream before a packet started.
    pub fn read(r: &mut impl Read) -> io::Result<Option<Frame>> {
        let mut first = [0u8; 1];
        if r.read(&mut first)? == 0 {
            return Ok(None);
        }
        let mut len = 0usize;
        let mut shift = 0;
        loop {
            let mut b = [0u8; 1];
            r.read_exact(&mut b)?;
            len |= usize::from(b[0] & 0x7f) << shift;
            if b[0] & 0x80 == 0 {
                break;
            }
            shift += 7;
            if shift > 21 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "MQTT remaining length longer than 4 bytes",
                ));
            }
        }
        let mut body = vec![0u8; len];
        r.read_exact(&mut body)?;
        Ok(Some(Frame {
            first: first[0],
            body,
        }))
    }

    /// The packet's bytes on the wire.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.body.len() + 5);
        out.push(self.first);
        let mut len = self.body.len();
        loop {
            let low = (len & 0x7f) as u8;
            len >>= 7;
            out.push(if len == 0 { low } else { low | 0x80 });
            if len == 0 {
                break;
            }
        }
        out.extend_from_slice(&self.body);
        out
    }

    /// Writes the packet.
    pub fn write(&self, w: &mut impl Write) -> io::Result<()> {
        w.write_all(&self.encode())
    }

    /// A PUBACK for `pkid`.
    pub fn puback(pkid: u16) -> Frame {
        Frame {
            first: packet_type::PUBACK << 4,
            body: pkid.to_be_bytes().to_vec(),
        }
    }
}

/// The fields of a PUBLISH packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    /// DUP flag (a redelivery).
    pub dup: bool,
    /// QoS 0, 1 or 2.
    pub qos: u8,
    /// RETAIN flag (on a delivery: from the broker's retained store).
    pub retain: bool,
    /// Topic name.
    pub topic: String,
    /// Packet identifier (0 and absent on the wire for QoS 0).
    pub pkid: u16,
    /// Application payload (the sealed message).
    pub payload: Vec<u8>,
}

impl Publish {
    /// Decodes a PUBLISH frame; `None` if it is not one or does not parse (non-UTF-8 topic…).
    pub fn from_frame(frame: &Frame) -> Option<Publish> {
        if frame.packet_type() != packet_type::PUBLISH {
            return None;
        }
        let flags = frame.first & 0x0f;
        let qos = (flags >> 1) & 0x03;
        let (len, rest) = frame.body.split_first_chunk::<2>()?;
        let (topic, rest) = rest.split_at_checked(usize::from(u16::from_be_bytes(*len)))?;
        let topic = String::from_utf8(topic.to_vec()).ok()?;
        let (pkid, payload) = if qos > 0 {
            let (id, rest) = rest.split_first_chunk::<2>()?;
            (u16::from_be_bytes(*id), rest)
        } else {
            (0, rest)
        };
        Some(Publish {
            dup: flags & 0x08 != 0,
            qos,
            retain: flags & 0x01 != 0,
            topic,
            pkid,
            payload: payload.to_vec(),
        })
    }

    /// Encodes it as a frame (topics longer than 65535 bytes are cut: never produced here).
    pub fn to_frame(&self) -> Frame {
        let mut first = packet_type::PUBLISH << 4 | (self.qos & 0x03) << 1;
        if self.dup {
            first |= 0x08;
        }
        if self.retain {
            first |= 0x01;
        }
        let topic = self.topic.as_bytes();
        let topic = topic.get(..usize::from(u16::MAX)).unwrap_or(topic);
        let mut body = Vec::with_capacity(topic.len() + self.payload.len() + 4);
        body.extend_from_slice(&(topic.len() as u16).to_be_bytes());
        body.extend_from_slice(topic);
        if self.qos > 0 {
            body.extend_from_slice(&self.pkid.to_be_bytes());
        }
        body.extend_from_slice(&self.payload);
        Frame { first, body }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn publish_round_trips_through_frames_and_bytes() {
        for qos in 0..=2 {
            let p = Publish {
                dup: qos > 0,
                qos,
                retain: qos == 1,
                topic: "a/b".into(),
                pkid: if qos > 0 { 513 } else { 0 },
                payload: vec![7; 300],
            };
            let bytes = p.to_frame().encode();
            // 300 + 5 + (2 if qos) = remaining length on two bytes.
            assert_eq!(bytes[2] & 0x80, 0);
            let frame = Frame::read(&mut bytes.as_slice()).unwrap().unwrap();
            assert_eq!(Publish::from_frame(&frame).unwrap(), p);
        }
        assert!(Frame::read(&mut [].as_slice()).unwrap().is_none());
        assert!(Frame::read(&mut [0x30, 0x05, 0].as_slice()).is_err());
        assert_eq!(Frame::puback(258).encode(), [0x40, 2, 1, 2]);
        assert!(Publish::from_frame(&Frame::puback(1)).is_none());
    }
}
