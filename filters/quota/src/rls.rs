//! The global tier's wire format: the few messages of Envoy's Rate Limit Service v3
//! (`envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit`), written and read by hand (a
//! few varints and length-delimited fields) so the module needs no protobuf crate. Both sides are
//! here: the filter encodes requests and decodes responses; the other side (decoding requests,
//! encoding responses) lets the unit tests and the `quota_rls` fuzz target check the filter's
//! half against it (the e2e tests use envoyproxy/ratelimit itself). Every read is bounded and returns an error value on malformed input.
//!
//! Request: `RateLimitRequest { domain = 1; repeated RateLimitDescriptor descriptors = 2;
//! uint32 hits_addend = 3 }`, `RateLimitDescriptor { repeated Entry entries = 1 (key = 1,
//! value = 2); RateLimitOverride limit = 2 (requests_per_unit = 1, unit = 2);
//! google.protobuf.UInt64Value hits_addend = 3 }`.
//! Response: `RateLimitResponse { Code overall_code = 1; repeated DescriptorStatus statuses = 2 }`,
//! `DescriptorStatus { code = 1; RateLimit current_limit = 2 (requests_per_unit = 1, unit = 2,
//! name = 3); uint32 limit_remaining = 3; google.protobuf.Duration duration_until_reset = 4 }`.

use crate::window::Window;

/// `envoy.type.v3.RateLimitUnit` / `RateLimit.Unit` (same numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Second = 1,
    Minute = 2,
    Hour = 3,
    Day = 4,
    Month = 5,
}

impl Unit {
    /// The RLS limit override can only say "per unit": other windows cannot be global.
    pub fn from_window(w: Window) -> Option<Self> {
        match w {
            Window::Seconds(1) => Some(Self::Second),
            Window::Seconds(60) => Some(Self::Minute),
            Window::Seconds(3600) => Some(Self::Hour),
            Window::Seconds(86_400) => Some(Self::Day),
            Window::Month => Some(Self::Month),
            Window::Seconds(_) => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    pub entries: Vec<(String, String)>,
    /// Limit override: requests per unit.
    pub limit: Option<(u32, Unit)>,
    /// Per-descriptor cost.
    pub hits_addend: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Unknown,
    Ok,
    OverLimit,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub code: Code,
    pub requests_per_unit: u32,
    pub limit_name: String,
    pub limit_remaining: u32,
    /// Seconds until the descriptor's window resets.
    pub reset_seconds: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub overall: Code,
    pub statuses: Vec<Status>,
}

/// Most descriptor statuses read from one response.
pub const MAX_STATUSES: usize = 64;

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_tag(out: &mut Vec<u8>, field: u32, wire: u8) {
    put_varint(out, (u64::from(field) << 3) | u64::from(wire));
}

fn put_bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_tag(out, field, 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn put_uint(out: &mut Vec<u8>, field: u32, v: u64) {
    if v != 0 {
        put_tag(out, field, 0);
        put_varint(out, v);
    }
}

fn varint_len(v: u64) -> usize {
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Encoded size of a length-delimited field holding `len` bytes.
fn bytes_len(field: u32, len: usize) -> usize {
    varint_len(u64::from(field) << 3) + varint_len(len as u64) + len
}

/// Encoded size of a varint field (absent when 0, as `put_uint` writes it).
fn uint_len(field: u32, v: u64) -> usize {
    if v == 0 {
        0
    } else {
        varint_len(u64::from(field) << 3) + varint_len(v)
    }
}

/// Writes the tag and length of a length-delimited field whose `len` bytes follow.
fn put_len(out: &mut Vec<u8>, field: u32, len: usize) {
    put_tag(out, field, 2);
    put_varint(out, len as u64);
}

fn entry_len(k: &str, v: &str) -> usize {
    bytes_len(1, k.len()) + bytes_len(2, v.len())
}

fn limit_len(requests: u32, unit: Unit) -> usize {
    uint_len(1, u64::from(requests)) + uint_len(2, unit as u64)
}

fn descriptor_len(d: &Descriptor) -> usize {
    let entries: usize = d
        .entries
        .iter()
        .map(|(k, v)| bytes_len(1, entry_len(k, v)))
        .sum();
    let limit = d.limit.map_or(0, |(requests, unit)| {
        bytes_len(2, limit_len(requests, unit))
    });
    let hits = d.hits_addend.map_or(0, |h| bytes_len(3, uint_len(1, h)));
    entries + limit + hits
}

/// The serialized `RateLimitRequest` (the gRPC message, without the 5-byte frame header that
/// `dispatch_grpc_call` adds). Every nested length is computed first, so the message is
/// written once into one buffer of its exact size.
pub fn encode_request(domain: &str, descriptors: &[Descriptor], hits_addend: u32) -> Vec<u8> {
    let sizes: Vec<usize> = descriptors.iter().map(descriptor_len).collect();
    let total = bytes_len(1, domain.len())
        + sizes.iter().map(|n| bytes_len(2, *n)).sum::<usize>()
        + uint_len(3, u64::from(hits_addend));
    let mut out = Vec::with_capacity(total);
    put_bytes(&mut out, 1, domain.as_bytes());
    for (d, size) in descriptors.iter().zip(sizes) {
        put_len(&mut out, 2, size);
        for (k, v) in &d.entries {
            put_len(&mut out, 1, entry_len(k, v));
            put_bytes(&mut out, 1, k.as_bytes());
            put_bytes(&mut out, 2, v.as_bytes());
        }
        if let Some((requests, unit)) = d.limit {
            put_len(&mut out, 2, limit_len(requests, unit));
            put_uint(&mut out, 1, u64::from(requests));
            put_uint(&mut out, 2, unit as u64);
        }
        if let Some(h) = d.hits_addend {
            put_len(&mut out, 3, uint_len(1, h));
            put_uint(&mut out, 1, h);
        }
    }
    put_uint(&mut out, 3, u64::from(hits_addend));
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeError;

/// One field: number and value (a varint, or the bytes of a length-delimited field).
enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Skipped,
}

fn varint(buf: &mut &[u8]) -> Result<u64, DecodeError> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = buf.split_first().ok_or(DecodeError)?;
        *buf = rest;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Ok(v);
        }
    }
    Err(DecodeError)
}

fn fields(mut buf: &[u8]) -> Result<Vec<(u64, Value<'_>)>, DecodeError> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let tag = varint(&mut buf)?;
        let value = match tag & 7 {
            0 => Value::Varint(varint(&mut buf)?),
            1 => {
                buf = buf.get(8..).ok_or(DecodeError)?;
                Value::Skipped
            }
            2 => {
                let len = usize::try_from(varint(&mut buf)?).map_err(|_| DecodeError)?;
                let (bytes, rest) = buf.split_at_checked(len).ok_or(DecodeError)?;
                buf = rest;
                Value::Bytes(bytes)
            }
            5 => {
                buf = buf.get(4..).ok_or(DecodeError)?;
                Value::Skipped
            }
            _ => return Err(DecodeError),
        };
        out.push((tag >> 3, value));
    }
    Ok(out)
}

fn code(v: u64) -> Code {
    match v {
        1 => Code::Ok,
        2 => Code::OverLimit,
        _ => Code::Unknown,
    }
}

/// The largest `RateLimitResponse` read: an answer for [`MAX_DESCRIPTORS`] descriptors with
/// their limits and a few headers is a few KiB; anything larger is refused unread (a failure of
/// the service, handled as the config's `failure_mode` says), never copied into the VM.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Reads a `RateLimitResponse`; unknown fields are skipped.
pub fn decode_response(bytes: &[u8]) -> Result<Response, DecodeError> {
    let mut resp = Response {
        overall: Code::Unknown,
        statuses: Vec::new(),
    };
    for (field, value) in fields(bytes)? {
        match (field, value) {
            (1, Value::Varint(v)) => resp.overall = code(v),
            (2, Value::Bytes(b)) => {
                if resp.statuses.len() >= MAX_STATUSES {
                    return Err(DecodeError);
                }
                resp.statuses.push(decode_status(b)?);
            }
            _ => {}
        }
    }
    Ok(resp)
}

fn decode_status(bytes: &[u8]) -> Result<Status, DecodeError> {
    let mut s = Status {
        code: Code::Unknown,
        requests_per_unit: 0,
        limit_name: String::new(),
        limit_remaining: 0,
        reset_seconds: 0,
    };
    for (field, value) in fields(bytes)? {
        match (field, value) {
            (1, Value::Varint(v)) => s.code = code(v),
            (2, Value::Bytes(b)) => {
                for (f, v) in fields(b)? {
                    match (f, v) {
                        (1, Value::Varint(n)) => {
                            s.requests_per_unit = u32::try_from(n).unwrap_or(u32::MAX)
                        }
                        (3, Value::Bytes(name)) => {
                            s.limit_name = String::from_utf8_lossy(name).into_owned()
                        }
                        _ => {}
                    }
                }
            }
            (3, Value::Varint(v)) => s.limit_remaining = u32::try_from(v).unwrap_or(u32::MAX),
            (4, Value::Bytes(b)) => {
                for (f, v) in fields(b)? {
                    if let (1, Value::Varint(secs)) = (f, v) {
                        // int64 seconds; a negative one (two's complement) reads as 0.
                        s.reset_seconds = if secs > i64::MAX as u64 { 0 } else { secs };
                    }
                }
            }
            _ => {}
        }
    }
    Ok(s)
}

/// A `RateLimitRequest` as a server reads it (the test Rate Limit Service).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub domain: String,
    pub descriptors: Vec<Descriptor>,
    pub hits_addend: u32,
}

/// Most descriptors, and entries per descriptor, read from one request.
pub const MAX_DESCRIPTORS: usize = 64;

fn unit(v: u64) -> Option<Unit> {
    match v {
        1 => Some(Unit::Second),
        2 => Some(Unit::Minute),
        3 => Some(Unit::Hour),
        4 => Some(Unit::Day),
        5 => Some(Unit::Month),
        _ => None,
    }
}

impl Unit {
    /// The unit in seconds (a month counts as 30 days).
    pub fn seconds(self) -> u64 {
        match self {
            Self::Second => 1,
            Self::Minute => 60,
            Self::Hour => 3600,
            Self::Day => 86_400,
            Self::Month => 30 * 86_400,
        }
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub fn decode_request(bytes: &[u8]) -> Result<Request, DecodeError> {
    let mut req = Request {
        domain: String::new(),
        descriptors: Vec::new(),
        hits_addend: 0,
    };
    for (field, value) in fields(bytes)? {
        match (field, value) {
            (1, Value::Bytes(b)) => req.domain = text(b),
            (2, Value::Bytes(b)) => {
                if req.descriptors.len() >= MAX_DESCRIPTORS {
                    return Err(DecodeError);
                }
                let mut d = Descriptor {
                    entries: Vec::new(),
                    limit: None,
                    hits_addend: None,
                };
                for (f, v) in fields(b)? {
                    match (f, v) {
                        (1, Value::Bytes(e)) => {
                            if d.entries.len() >= MAX_DESCRIPTORS {
                                return Err(DecodeError);
                            }
                            let (mut k, mut val) = (String::new(), String::new());
                            for (ef, ev) in fields(e)? {
                                match (ef, ev) {
                                    (1, Value::Bytes(x)) => k = text(x),
                                    (2, Value::Bytes(x)) => val = text(x),
                                    _ => {}
                                }
                            }
                            d.entries.push((k, val));
                        }
                        (2, Value::Bytes(l)) => {
                            let (mut n, mut u) = (0u64, 0u64);
                            for (lf, lv) in fields(l)? {
                                match (lf, lv) {
                                    (1, Value::Varint(x)) => n = x,
                                    (2, Value::Varint(x)) => u = x,
                                    _ => {}
                                }
                            }
                            if let (Ok(n), Some(u)) = (u32::try_from(n), unit(u)) {
                                d.limit = Some((n, u));
                            }
                        }
                        (3, Value::Bytes(h)) => {
                            let mut x = 0;
                            for (hf, hv) in fields(h)? {
                                if let (1, Value::Varint(v)) = (hf, hv) {
                                    x = v;
                                }
                            }
                            d.hits_addend = Some(x);
                        }
                        _ => {}
                    }
                }
                req.descriptors.push(d);
            }
            (3, Value::Varint(v)) => req.hits_addend = u32::try_from(v).unwrap_or(u32::MAX),
            _ => {}
        }
    }
    Ok(req)
}

/// The serialized `RateLimitResponse` (for the tests: what a Rate Limit Service answers).
pub fn encode_response(resp: &Response, units: &[Option<Unit>]) -> Vec<u8> {
    let code_num = |c: Code| match c {
        Code::Unknown => 0,
        Code::Ok => 1,
        Code::OverLimit => 2,
    };
    let mut out = Vec::with_capacity(32 + 32 * resp.statuses.len());
    put_uint(&mut out, 1, code_num(resp.overall));
    for (i, s) in resp.statuses.iter().enumerate() {
        let mut st = Vec::with_capacity(32);
        put_uint(&mut st, 1, code_num(s.code));
        let mut limit = Vec::with_capacity(16);
        put_uint(&mut limit, 1, u64::from(s.requests_per_unit));
        if let Some(Some(u)) = units.get(i) {
            put_uint(&mut limit, 2, *u as u64);
        }
        if !s.limit_name.is_empty() {
            put_bytes(&mut limit, 3, s.limit_name.as_bytes());
        }
        put_bytes(&mut st, 2, &limit);
        put_uint(&mut st, 3, u64::from(s.limit_remaining));
        let mut dur = Vec::with_capacity(8);
        put_uint(&mut dur, 1, s.reset_seconds);
        put_bytes(&mut st, 4, &dur);
        put_bytes(&mut out, 2, &st);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn request_bytes_are_exact() {
        let d = Descriptor {
            entries: vec![
                ("plan".into(), "gold".into()),
                ("consumer".into(), "alice".into()),
            ],
            limit: Some((100, Unit::Minute)),
            hits_addend: Some(3),
        };
        let got = encode_request("apim", &[d], 0);
        let want: Vec<u8> = [
            &[0x0a, 4][..],
            b"apim",
            &[0x12, 43],
            &[0x0a, 12, 0x0a, 4],
            b"plan",
            &[0x12, 4],
            b"gold",
            &[0x0a, 17, 0x0a, 8],
            b"consumer",
            &[0x12, 5],
            b"alice",
            &[0x12, 4, 0x08, 100, 0x10, 2],
            &[0x1a, 2, 0x08, 3],
        ]
        .concat();
        assert_eq!(got, want);
        // hits_addend on the request, a big limit (multi-byte varint).
        let d = Descriptor {
            entries: vec![],
            limit: Some((300, Unit::Second)),
            hits_addend: None,
        };
        assert_eq!(
            encode_request("", &[d], 2),
            vec![0x0a, 0, 0x12, 7, 0x12, 5, 0x08, 0xac, 0x02, 0x10, 1, 0x18, 2]
        );
    }

    /// The nested form (each submessage in its own buffer), the reference for the one-buffer
    /// encoder.
    fn nested_encode(domain: &str, descriptors: &[Descriptor], hits_addend: u32) -> Vec<u8> {
        let mut out = Vec::new();
        put_bytes(&mut out, 1, domain.as_bytes());
        for d in descriptors {
            let mut desc = Vec::new();
            for (k, v) in &d.entries {
                let mut entry = Vec::new();
                put_bytes(&mut entry, 1, k.as_bytes());
                put_bytes(&mut entry, 2, v.as_bytes());
                put_bytes(&mut desc, 1, &entry);
            }
            if let Some((requests, unit)) = d.limit {
                let mut limit = Vec::new();
                put_uint(&mut limit, 1, u64::from(requests));
                put_uint(&mut limit, 2, unit as u64);
                put_bytes(&mut desc, 2, &limit);
            }
            if let Some(h) = d.hits_addend {
                let mut wrapper = Vec::new();
                put_uint(&mut wrapper, 1, h);
                put_bytes(&mut desc, 3, &wrapper);
            }
            put_bytes(&mut out, 2, &desc);
        }
        put_uint(&mut out, 3, u64::from(hits_addend));
        out
    }

    #[test]
    fn one_buffer_encoding_equals_the_nested_one() {
        let long = "k".repeat(300);
        let huge = "v".repeat(20_000);
        /// A descriptor, and the request's hits.
        struct Case {
            entries: Vec<(String, String)>,
            limit: Option<(u32, Unit)>,
            /// the descriptor's hits_addend
            hits: Option<u64>,
            /// the request's hits_addend
            request_hits: u32,
        }
        let cases = vec![
            Case {
                entries: vec![],
                limit: None,
                hits: None,
                request_hits: 0,
            },
            Case {
                entries: vec![],
                limit: Some((0, Unit::Second)),
                hits: Some(0),
                request_hits: 1,
            },
            Case {
                entries: vec![("quota_key".into(), long.clone())],
                limit: Some((u32::MAX, Unit::Month)),
                hits: Some(u64::MAX),
                request_hits: u32::MAX,
            },
            Case {
                entries: vec![(long.clone(), huge.clone()), ("".into(), "".into())],
                limit: Some((127, Unit::Hour)),
                hits: Some(128),
                request_hits: 127,
            },
        ];
        for Case {
            entries,
            limit,
            hits,
            request_hits,
        } in cases
        {
            let d = Descriptor {
                entries,
                limit,
                hits_addend: hits,
            };
            let two = [d.clone(), d.clone()];
            for ds in [&two[..1], &two[..]] {
                let got = encode_request("apim", ds, request_hits);
                assert_eq!(got, nested_encode("apim", ds, request_hits));
                assert_eq!(got.len(), got.capacity());
            }
        }
    }

    #[test]
    fn responses_are_read_and_junk_is_an_error() {
        let status = [
            &[0x08, 2][..],
            &[0x12, 9, 0x08, 10, 0x10, 2, 0x1a, 3],
            b"bur",
            &[0x18, 0],
            &[0x22, 2, 0x08, 42],
            // An unknown fixed64 field is skipped.
            &[0x29, 1, 2, 3, 4, 5, 6, 7, 8],
        ]
        .concat();
        let mut resp = vec![0x08, 2, 0x12, status.len() as u8];
        resp.extend_from_slice(&status);
        assert_eq!(
            decode_response(&resp),
            Ok(Response {
                overall: Code::OverLimit,
                statuses: vec![Status {
                    code: Code::OverLimit,
                    requests_per_unit: 10,
                    limit_name: "bur".into(),
                    limit_remaining: 0,
                    reset_seconds: 42,
                }],
            })
        );
        assert_eq!(
            decode_response(&[]),
            Ok(Response {
                overall: Code::Unknown,
                statuses: vec![]
            })
        );
        for junk in [
            &[0x08][..],
            &[0x12, 5, 1],
            &[0x0f],
            &[0xff; 11],
            &[0x12, 2, 0x12, 9],
        ] {
            assert_eq!(decode_response(junk), Err(DecodeError), "{junk:?}");
        }
        let many: Vec<u8> = (0..=MAX_STATUSES).flat_map(|_| [0x12, 0]).collect();
        assert_eq!(decode_response(&many), Err(DecodeError));
    }

    #[test]
    fn server_side_round_trips() {
        let d = Descriptor {
            entries: vec![
                ("plan".into(), "gold".into()),
                ("key".into(), "alice".into()),
            ],
            limit: Some((100_000, Unit::Month)),
            hits_addend: Some(7),
        };
        let bytes = encode_request("apim", std::slice::from_ref(&d), 7);
        assert_eq!(
            decode_request(&bytes),
            Ok(Request {
                domain: "apim".into(),
                descriptors: vec![d],
                hits_addend: 7
            })
        );
        let resp = Response {
            overall: Code::OverLimit,
            statuses: vec![
                Status {
                    code: Code::Ok,
                    requests_per_unit: 5,
                    limit_name: "burst".into(),
                    limit_remaining: 2,
                    reset_seconds: 9,
                },
                Status {
                    code: Code::OverLimit,
                    requests_per_unit: 70_000,
                    limit_name: String::new(),
                    limit_remaining: 0,
                    reset_seconds: 100_000,
                },
            ],
        };
        let bytes = encode_response(&resp, &[Some(Unit::Second), None]);
        assert_eq!(decode_response(&bytes), Ok(resp));
        assert_eq!(decode_request(&[0x12, 3, 0x0a, 1]), Err(DecodeError));
    }

    #[test]
    fn only_unit_windows_can_be_global() {
        assert_eq!(Unit::from_window(Window::Seconds(60)), Some(Unit::Minute));
        assert_eq!(Unit::from_window(Window::Month), Some(Unit::Month));
        assert_eq!(Unit::from_window(Window::Seconds(10)), None);
    }
}
