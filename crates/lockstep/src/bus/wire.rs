//! WebSocket framing of what the server sends (RFC 6455, section 5.2): a server's frames are
//! not masked, so one event's bytes are the same for every viewer and are framed once.
//!
//! Written here rather than taken from tungstenite because the room writes the framed bytes
//! into many sockets itself; tungstenite frames a message only into its own connection's
//! buffer. Each message goes out as one final frame.

use bytes::{BufMut, Bytes, BytesMut};

const FIN: u8 = 0x80;
const TEXT: u8 = 0x1;
const PING: u8 = 0x9;

/// The length of a frame's header for a payload of `len` bytes.
fn header_len(len: usize) -> usize {
    match len {
        0..=125 => 2,
        126..=0xFFFF => 4,
        _ => 10,
    }
}

fn push_frame(buf: &mut BytesMut, opcode: u8, payload: &[u8]) {
    buf.reserve(header_len(payload.len()) + payload.len());
    buf.put_u8(FIN | opcode);
    match payload.len() {
        len @ 0..=125 => buf.put_u8(len as u8),
        len @ 126..=0xFFFF => {
            buf.put_u8(126);
            buf.put_u16(len as u16);
        }
        len => {
            buf.put_u8(127);
            buf.put_u64(len as u64);
        }
    }
    buf.put_slice(payload);
}

/// The framed length of a text message of `len` bytes.
pub fn text_len(len: usize) -> usize {
    header_len(len) + len
}

/// Appends a text message.
pub fn push_text(buf: &mut BytesMut, text: &str) {
    push_frame(buf, TEXT, text.as_bytes());
}

/// One text message.
pub fn text(text: &str) -> Bytes {
    let mut buf = BytesMut::with_capacity(text_len(text.len()));
    push_text(&mut buf, text);
    buf.freeze()
}

/// Text messages one after another, in one piece (one write).
pub fn texts<'a>(texts: impl IntoIterator<Item = &'a str>) -> Bytes {
    let mut buf = BytesMut::new();
    for text in texts {
        push_text(&mut buf, text);
    }
    buf.freeze()
}

/// A ping with no payload (browsers answer it themselves).
pub fn ping() -> Bytes {
    Bytes::from_static(&[FIN | PING, 0])
}

#[cfg(test)]
mod tests {
    use super::*;
    use tungstenite::protocol::frame::FrameHeader;

    /// Reads back every frame of `wire` with tungstenite's parser.
    fn parse(wire: &[u8]) -> Vec<(u8, Vec<u8>)> {
        let mut cursor = std::io::Cursor::new(wire);
        let mut frames = Vec::new();
        while (cursor.position() as usize) < wire.len() {
            let (header, len) = FrameHeader::parse(&mut cursor).unwrap().unwrap();
            assert!(header.is_final);
            assert!(header.mask.is_none());
            let start = cursor.position() as usize;
            let end = start + len as usize;
            let opcode: u8 = header.opcode.into();
            frames.push((opcode, wire[start..end].to_vec()));
            cursor.set_position(end as u64);
        }
        frames
    }

    #[test]
    fn texts_of_every_length_class_read_back() {
        let long = "x".repeat(70_000);
        let medium = "é".repeat(100);
        let wire = texts(["", "hello", medium.as_str(), long.as_str()]);
        let frames = parse(&wire);
        assert_eq!(frames.len(), 4);
        assert!(frames.iter().all(|(opcode, _)| *opcode == TEXT));
        assert_eq!(frames[1].1, b"hello");
        assert_eq!(frames[2].1, medium.as_bytes());
        assert_eq!(frames[3].1, long.as_bytes());
        assert_eq!(
            wire.len(),
            text_len(0) + text_len(5) + text_len(medium.len()) + text_len(long.len())
        );
    }

    #[test]
    fn a_ping_has_no_payload() {
        assert_eq!(parse(&ping()), vec![(PING, vec![])]);
    }
}
