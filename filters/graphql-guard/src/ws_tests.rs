//! Frames as a client sends them (masked, fragmented, split across chunks) and the operations
//! their messages carry.

use super::*;
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
use wasm_bindgen_test::wasm_bindgen_test as test;

/// A masked client frame.
pub(crate) fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x12u8, 0x34, 0x56, 0x78];
    let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= 0xFFFF => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().zip(mask.iter().cycle()).map(|(p, m)| p ^ m));
    out
}

#[test]
fn messages_are_reassembled_across_frames_and_chunks() {
    let long = "x".repeat(300);
    let mut stream = frame(true, 1, b"one");
    stream.extend(frame(true, 9, b"ping"));
    stream.extend(frame(false, 1, b"tw"));
    stream.extend(frame(true, 10, b""));
    stream.extend(frame(true, 0, b"o"));
    stream.extend(frame(true, 1, long.as_bytes()));
    // Every way of cutting the stream in two gives the same messages.
    for cut in 0..=stream.len() {
        let mut r = FrameReader::new(1000);
        let (a, b) = stream.split_at(cut);
        let mut got = r.feed(a).unwrap();
        got.extend(r.feed(b).unwrap());
        assert_eq!(
            got,
            vec![b"one".to_vec(), b"two".to_vec(), long.as_bytes().to_vec()],
            "cut at {cut}"
        );
    }
}

#[test]
fn untrusted_frames_fail_the_stream() {
    let mut unmasked = frame(true, 1, b"{}");
    unmasked[1] &= 0x7F;
    let mut compressed = frame(true, 1, b"{}");
    compressed[0] |= 0x40;
    let cases: Vec<(Vec<u8>, WsError)> = vec![
        (
            unmasked,
            WsError::Malformed("a client frame must be masked"),
        ),
        (compressed, WsError::Compressed),
        (frame(true, 2, b"\x00"), WsError::Binary),
        (
            frame(true, 0, b"x"),
            WsError::Malformed("a continuation without a message"),
        ),
        (frame(true, 3, b""), WsError::Malformed("a reserved opcode")),
        (
            frame(false, 9, b""),
            WsError::Malformed("a fragmented or long control frame"),
        ),
        (frame(true, 1, &[b'a'; 101]), WsError::TooLarge),
        (
            [frame(false, 1, &[b'a'; 60]), frame(true, 0, &[b'a'; 60])].concat(),
            WsError::TooLarge,
        ),
        (
            [frame(false, 1, b"a"), frame(true, 1, b"b")].concat(),
            WsError::Malformed("a new message inside a fragmented one"),
        ),
    ];
    for (bytes, want) in cases {
        let mut r = FrameReader::new(100);
        assert_eq!(r.feed(&bytes), Err(want.clone()), "{want:?}");
        // A failed stream stays failed.
        assert!(r.feed(&frame(true, 1, b"{}")).is_err());
    }
    // A 64-bit length beyond the cap is refused from the header alone.
    let mut r = FrameReader::new(100);
    let mut huge = vec![0x81, 0x80 | 127];
    huge.extend_from_slice(&u64::MAX.to_be_bytes());
    assert_eq!(r.feed(&huge), Err(WsError::TooLarge));
}

#[test]
fn operations_are_found_in_both_subprotocols() {
    let cases: [(&str, Option<&str>); 6] = [
        (r#"{"type":"connection_init","payload":{}}"#, None),
        (
            r#"{"id":"1","type":"subscribe","payload":{"query":"{ a }"}}"#,
            Some("{ a }"),
        ),
        (
            r#"{"id":"1","type":"start","payload":{"query":"{ b }"}}"#,
            Some("{ b }"),
        ),
        // Whatever the type says, a payload with a query is checked.
        (
            r#"{"id":"1","type":"next","payload":{"query":"{ c }"}}"#,
            Some("{ c }"),
        ),
        (r#"{"type":"ping"}"#, None),
        (r#"{"id":"1","type":"complete"}"#, None),
    ];
    for (msg, want) in cases {
        let got = operation(msg.as_bytes(), &[]).unwrap();
        assert_eq!(got.and_then(|r| r.query).as_deref(), want, "{msg}");
    }
    let hash = operation(
        br#"{"type":"subscribe","payload":{"extensions":{"persistedQuery":{"sha256Hash":"ab"}}}}"#,
        &[],
    )
    .unwrap()
    .unwrap();
    assert_eq!(hash.persisted_hash.as_deref(), Some("ab"));
    for bad in [
        &b"nope"[..],
        b"[1]",
        br#"{"type":"subscribe","payload":{"query":5}}"#,
    ] {
        assert!(
            operation(bad, &[]).is_err(),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn only_known_subprotocols_are_inspected() {
    for (header, want) in [
        (Some("graphql-transport-ws"), true),
        (Some("graphql-ws"), true),
        (Some("graphql-ws, graphql-transport-ws"), true),
        (Some("GraphQL-WS"), true),
        (Some("graphql-ws, mqtt"), false),
        (Some(""), false),
        (None, false),
    ] {
        assert_eq!(subprotocols_understood(header), want, "{header:?}");
    }
}

/// An operation message must carry something the guard can check: a `subscribe`/`start` whose
/// payload has no `query` and no hash (a `documentId`, nothing) is refused, and so is a GraphQL
/// key in another case.
#[test]
fn operation_messages_without_a_checkable_document_are_refused() {
    let refused: &[&str] = &[
        r#"{"id":"1","type":"subscribe","payload":{"documentId":"abc"}}"#,
        r#"{"id":"1","type":"subscribe","payload":{"id":"abc"}}"#,
        r#"{"id":"1","type":"start","payload":{"namedQuery":"abc"}}"#,
        r#"{"id":"1","type":"subscribe","payload":{}}"#,
        r#"{"id":"1","type":"subscribe","payload":{"variables":{}}}"#,
        r#"{"id":"1","type":"subscribe"}"#,
        r#"{"id":"1","type":"subscribe","payload":"{ a }"}"#,
        r#"{"id":"1","type":"subscribe","payload":{"Query":"{ a }"}}"#,
        r#"{"id":"1","type":"other","payload":{"documentId":"abc"}}"#,
    ];
    for msg in refused {
        assert!(operation(msg.as_bytes(), &[]).is_err(), "{msg}");
    }
    let none: &[&str] = &[
        r#"{"type":"connection_init","payload":{"token":"x"}}"#,
        r#"{"id":"1","type":"complete"}"#,
        r#"{"type":"pong","payload":{}}"#,
    ];
    for msg in none {
        assert_eq!(operation(msg.as_bytes(), &[]), Ok(None), "{msg}");
    }
}

/// What a stream buffers (a partial frame and a fragmented message together) stays within the
/// cap: a frame that would take the message past it fails the stream as soon as its header is
/// read, before its payload is buffered.
#[test]
fn buffering_is_bounded_by_the_message_cap() {
    // A 100-byte first fragment, then a frame header declaring 60 more: refused at the header.
    let mut r = FrameReader::new(150);
    assert_eq!(r.feed(&frame(false, 1, &[b'a'; 100])), Ok(vec![]));
    let next = frame(true, 0, &[b'b'; 60]);
    assert_eq!(r.feed(next.get(..8).unwrap()), Err(WsError::TooLarge));
    // Within the cap: reassembled.
    let mut r = FrameReader::new(160);
    assert_eq!(r.feed(&frame(false, 1, &[b'a'; 100])), Ok(vec![]));
    assert_eq!(r.feed(&frame(true, 0, &[b'b'; 60])).unwrap().len(), 1);
    // A control frame between fragments still fits when the message is at the cap.
    let mut r = FrameReader::new(100);
    assert_eq!(r.feed(&frame(false, 1, &[b'a'; 100])), Ok(vec![]));
    assert_eq!(r.feed(&frame(true, 9, &[b'p'; 125])), Ok(vec![]));
    // A single frame's declared length over the cap: refused at its header.
    let mut r = FrameReader::new(64);
    let big = frame(true, 1, &[b'a'; 200]);
    assert_eq!(r.feed(big.get(..4).unwrap()), Err(WsError::TooLarge));
}
