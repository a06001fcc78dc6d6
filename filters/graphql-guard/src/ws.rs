//! GraphQL over WebSocket, `websocket: inspect`: the client's frames after the upgrade (the
//! request stream Envoy passes through the filter) are read, and every operation a
//! `graphql-transport-ws` `subscribe` or `graphql-ws` `start` message carries is checked with the
//! same limits as over HTTP. Anything the reader cannot be sure of (a compressed or binary frame,
//! an unmasked or malformed one, a message over the size cap, JSON it cannot read) ends the
//! stream, as a violation does.
//!
//! RFC 6455 framing: FIN, RSV1-3, opcode; MASK and a 7-, 16- or 64-bit length; a 4-byte mask.
//! Client frames must be masked. No extension is negotiated (the glue removes
//! `sec-websocket-extensions` from the upgrade request), so any RSV bit is an error.

use crate::transport::{from_object, GqlRequest, TransportError, DOCUMENT_ID_PARAMS, URL_PARAMS};
use serde_json::Value;

/// The subprotocols whose messages are understood.
pub const SUBPROTOCOLS: [&str; 2] = ["graphql-transport-ws", "graphql-ws"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsError {
    /// A frame the reader cannot trust: what was wrong.
    Malformed(&'static str),
    /// A frame with an RSV bit set (permessage-deflate was not negotiated).
    Compressed,
    /// A binary message: the GraphQL subprotocols speak JSON text.
    Binary,
    /// A message (or a frame) longer than the cap.
    TooLarge,
    /// A text message that is not a JSON object, or whose operation has the wrong shape.
    BadMessage(String),
}

impl WsError {
    pub fn message(&self) -> String {
        match self {
            WsError::Malformed(m) => format!("malformed WebSocket frame: {m}"),
            WsError::Compressed => "compressed WebSocket frames are not accepted".into(),
            WsError::Binary => "binary WebSocket messages are not accepted".into(),
            WsError::TooLarge => "WebSocket message exceeds the size limit".into(),
            WsError::BadMessage(m) => format!("WebSocket message: {m}"),
        }
    }
}

/// Reassembles the client's text messages from the byte stream, chunk by chunk.
#[derive(Debug, Clone, Default)]
pub struct FrameReader {
    /// Bytes of a frame not complete yet.
    carry: Vec<u8>,
    /// A fragmented text message being assembled.
    message: Option<Vec<u8>>,
    /// Largest message (and frame payload).
    max: usize,
    /// Once an error was reported, every later chunk is refused too.
    failed: bool,
}

/// One parsed frame: FIN, opcode, unmasked payload.
struct Frame {
    fin: bool,
    opcode: u8,
    payload: Vec<u8>,
}

impl FrameReader {
    pub fn new(max: usize) -> Self {
        Self {
            max,
            ..Self::default()
        }
    }

    /// Feeds the next chunk of the client's stream; returns the text messages it completes.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<Vec<u8>>, WsError> {
        if self.failed {
            return Err(WsError::Malformed("the stream already failed"));
        }
        let out = self.feed_inner(bytes);
        if out.is_err() {
            self.failed = true;
            self.carry.clear();
            self.message = None;
        }
        out
    }

    fn feed_inner(&mut self, bytes: &[u8]) -> Result<Vec<Vec<u8>>, WsError> {
        self.carry.extend_from_slice(bytes);
        let mut out = Vec::new();
        let mut pos = 0;
        loop {
            // A frame's payload may not take the message (or the partial one) past the cap: what
            // is buffered (carry and message) stays within `max` plus one frame header.
            let room = self
                .max
                .saturating_sub(self.message.as_ref().map_or(0, Vec::len));
            let Some(found) = parse_frame(self.carry.get(pos..).unwrap_or(&[]), room) else {
                break;
            };
            let (frame, used) = found?;
            pos += used;
            match frame.opcode {
                0x1 => {
                    if self.message.is_some() {
                        return Err(WsError::Malformed("a new message inside a fragmented one"));
                    }
                    if frame.fin {
                        out.push(frame.payload);
                    } else {
                        self.message = Some(frame.payload);
                    }
                }
                0x0 => {
                    let Some(mut m) = self.message.take() else {
                        return Err(WsError::Malformed("a continuation without a message"));
                    };
                    if m.len().saturating_add(frame.payload.len()) > self.max {
                        return Err(WsError::TooLarge);
                    }
                    m.extend_from_slice(&frame.payload);
                    if frame.fin {
                        out.push(m);
                    } else {
                        self.message = Some(m);
                    }
                }
                0x2 => return Err(WsError::Binary),
                0x8..=0xA => {
                    if !frame.fin || frame.payload.len() > 125 {
                        return Err(WsError::Malformed("a fragmented or long control frame"));
                    }
                }
                _ => return Err(WsError::Malformed("a reserved opcode")),
            }
        }
        self.carry.drain(..pos.min(self.carry.len()));
        Ok(out)
    }
}

/// The frame at the start of `b`: `None` while incomplete.
fn parse_frame(b: &[u8], max: usize) -> Option<Result<(Frame, usize), WsError>> {
    let (&b0, &b1) = (b.first()?, b.get(1)?);
    if b0 & 0x70 != 0 {
        return Some(Err(WsError::Compressed));
    }
    if b1 & 0x80 == 0 {
        return Some(Err(WsError::Malformed("a client frame must be masked")));
    }
    let (len, header) = match b1 & 0x7F {
        126 => {
            let n = b.get(2..4)?;
            (
                u64::from(u16::from_be_bytes([
                    n.first().copied()?,
                    n.get(1).copied()?,
                ])),
                4,
            )
        }
        127 => {
            let n = b.get(2..10)?;
            let mut a = [0u8; 8];
            a.copy_from_slice(n);
            (u64::from_be_bytes(a), 10)
        }
        n => (u64::from(n), 2),
    };
    // A control frame (at most 125 bytes, checked by the caller) may come between fragments.
    let max = if b0 & 0x08 != 0 { max.max(125) } else { max };
    let Some(len) = usize::try_from(len).ok().filter(|l| *l <= max) else {
        return Some(Err(WsError::TooLarge));
    };
    let mask = b.get(header..header + 4)?;
    let start = header + 4;
    let payload = b.get(start..start.checked_add(len)?)?;
    let payload = payload
        .iter()
        .zip(mask.iter().cycle())
        .map(|(p, m)| p ^ m)
        .collect();
    Some(Ok((
        Frame {
            fin: b0 & 0x80 != 0,
            opcode: b0 & 0x0F,
            payload,
        },
        start + len,
    )))
}

/// The GraphQL operation a message carries, if any: the `payload` of a `subscribe`
/// (graphql-transport-ws) or `start` (graphql-ws) message, which must hold a `query` or a
/// persisted-query hash (a payload with neither, e.g. a `documentId` alone, is refused), or of
/// any other message whose payload holds a GraphQL key.
pub fn operation(message: &[u8], pass: &[String]) -> Result<Option<GqlRequest>, WsError> {
    let value: Value = crate::strict_json::from_slice(message)
        .map_err(|e| WsError::BadMessage(format!("not JSON: {e}")))?;
    let Value::Object(map) = value else {
        return Err(WsError::BadMessage("not a JSON object".into()));
    };
    let starts = map
        .get("type")
        .and_then(Value::as_str)
        .is_some_and(|t| t == "subscribe" || t == "start");
    let payload = match map.get("payload") {
        Some(p) => p,
        None if starts => {
            return Err(WsError::BadMessage(
                "an operation message without a payload".into(),
            ))
        }
        None => return Ok(None),
    };
    let carries = payload.as_object().is_some_and(|p| {
        p.keys().any(|k| {
            let k = k.as_bytes();
            URL_PARAMS
                .iter()
                .chain(DOCUMENT_ID_PARAMS.iter())
                .any(|n| n.as_bytes().eq_ignore_ascii_case(k))
        })
    });
    if !starts && !carries {
        return Ok(None);
    }
    from_object(payload.clone(), pass)
        .map(Some)
        .map_err(|e| match e {
            TransportError::BadRequest(m) => WsError::BadMessage(m),
            other => WsError::BadMessage(format!("{other:?}")),
        })
}

/// Whether a `sec-websocket-protocol` header offers only subprotocols the reader understands.
pub fn subprotocols_understood(header: Option<&str>) -> bool {
    let Some(h) = header else {
        return false;
    };
    let mut any = false;
    for p in h.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if !SUBPROTOCOLS.iter().any(|s| s.eq_ignore_ascii_case(p)) {
            return false;
        }
        any = true;
    }
    any
}

#[cfg(test)]
#[path = "ws_tests.rs"]
pub(crate) mod tests;
