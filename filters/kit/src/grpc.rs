//! gRPC: telling a gRPC call from other requests, and the parts of a gRPC-shaped refusal.
//!
//! A gRPC call is an HTTP/2 `POST` to `/package.Service/Method` with `content-type:
//! application/grpc` (or `application/grpc+proto`, `+json`, …). gRPC-Web (`application/grpc-web`,
//! `application/grpc-web+proto`, `application/grpc-web-text…`) names its methods the same way and
//! reaches the same handlers (a backend with a gRPC-Web layer, or Envoy's `grpc_web` filter placed
//! after ours), so it counts as gRPC here too: the same rules hold for it, and its refusals are
//! trailers-only gRPC-Web replies (`grpc-status` in the headers, which gRPC-Web clients read).
//!
//! Rules ([`crate::matcher`]) compare a call's service and method only when the request is a
//! *clean* call ([`clean_call`]): exactly one content-type, a gRPC one spelled exactly, `POST`,
//! and a `:path` that is exactly `/service/method` (no query, no escapes, nothing after). Anything
//! else never meets a rule that loosens; a rule that restricts reads the method from the
//! normalised path whatever the content type (a backend may not check it), so no spelling of a
//! request walks around it.
//!
//! The refusal is rendered in [`crate::denial`]; this module holds the status mapping, the
//! `grpc-message` percent-encoding of the gRPC spec and a hand-written protobuf encoder for the
//! `google.rpc.Status` carried in `grpc-status-details-bin` (no protoc, no protobuf runtime in
//! the module).

use crate::request::RequestHead;

/// Longest `grpc-message` sent, in bytes before encoding: a header, kept short.
pub const MAX_MESSAGE: usize = 512;
/// Most `ErrorInfo.metadata` entries, and the longest value of one.
const MAX_METADATA: usize = 16;
const MAX_METADATA_VALUE: usize = 256;

/// Which gRPC wire a request speaks, for the shape of its refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// `application/grpc[+…]`
    Grpc,
    /// `application/grpc-web[+…]`
    Web,
    /// `application/grpc-web-text[+…]` (base64 frames; a trailers-only reply has none).
    WebText,
}

impl Flavor {
    /// The content-type of a trailers-only refusal.
    pub fn content_type(self) -> &'static str {
        match self {
            Flavor::Grpc => "application/grpc",
            Flavor::Web => "application/grpc-web+proto",
            Flavor::WebText => "application/grpc-web-text+proto",
        }
    }
}

/// The gRPC flavour a content-type names, exactly as the gRPC and gRPC-Web specs spell it
/// (`application/grpc`, then optionally `+subtype`; no parameters, lowercase).
pub fn flavor_exact(content_type: &[u8]) -> Option<Flavor> {
    let (flavor, rest) = if let Some(rest) = content_type.strip_prefix(b"application/grpc-web-text")
    {
        (Flavor::WebText, rest)
    } else if let Some(rest) = content_type.strip_prefix(b"application/grpc-web") {
        (Flavor::Web, rest)
    } else if let Some(rest) = content_type.strip_prefix(b"application/grpc") {
        (Flavor::Grpc, rest)
    } else {
        return None;
    };
    match rest.split_first() {
        None => Some(flavor),
        Some((b'+', sub))
            if !sub.is_empty()
                && sub.iter().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(b)
                }) =>
        {
            Some(flavor)
        }
        _ => None,
    }
}

/// The flavour of the refusal for a request whose content-type (as the host gives it: copies
/// joined by `,`) is `content_type`. Lenient (case, spaces, parameters): a client that wrote
/// `Application/GRPC` is still a gRPC client and reads `grpc-status`; this only shapes the
/// refusal, it never decides one.
pub fn reply_flavor(content_type: Option<&[u8]>) -> Option<Flavor> {
    let first = content_type?.split(|b| *b == b',').next()?;
    let first = first.split(|b| *b == b';').next()?;
    let lower = first.trim_ascii().to_ascii_lowercase();
    let base = lower.split(|b| *b == b'+').next()?;
    match base {
        b"application/grpc" => Some(Flavor::Grpc),
        b"application/grpc-web" => Some(Flavor::Web),
        b"application/grpc-web-text" => Some(Flavor::WebText),
        _ => None,
    }
}

/// `/service/method` → (service, method) when `path` is exactly that: a service of
/// `[A-Za-z0-9_.]` not starting or ending with `.`, a method of `[A-Za-z0-9_]`, nothing else.
pub fn parse_method_path(path: &str) -> Option<(&str, &str)> {
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    (is_service_name(service) && is_method_name(method)).then_some((service, method))
}

/// A protobuf full service name (`package.Service`, `Service`).
pub fn is_service_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 256
        && !s.starts_with('.')
        && !s.ends_with('.')
        && !s.contains("..")
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
}

/// A protobuf method name.
pub fn is_method_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 256 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The service and method of a request that is unmistakably one gRPC call (see the module
/// docs); `None` for anything else, which may then never meet a loosening rule. The view must
/// hold `content-type`, `:method` and `:path` ([`crate::matcher::RouteMatcher::needed_headers`]).
pub fn clean_call(head: &RequestHead) -> Option<(&str, &str)> {
    let mut types = head.all("content-type");
    let content_type = types.next()?;
    // A second copy, or copies the host joined with ',': which one a backend reads is unknown.
    if types.next().is_some() || flavor_exact(content_type).is_none() {
        return None;
    }
    if head.method() != "POST" {
        return None;
    }
    parse_method_path(head.get_str(":path")?)
}

/// The gRPC status for an HTTP status of a refusal: 401 → 16 UNAUTHENTICATED, 403 → 7
/// PERMISSION_DENIED, 429 → 8 RESOURCE_EXHAUSTED, 400/411/413/414/415/422/431 → 3
/// INVALID_ARGUMENT, 404 → 12 UNIMPLEMENTED (no such method), 500 → 13 INTERNAL,
/// 502/503/504 → 14 UNAVAILABLE (a dependency is down), anything else 2 UNKNOWN.
pub fn status_for_http(status: u16) -> u32 {
    match status {
        401 => 16,
        403 => 7,
        429 => 8,
        400 | 411 | 413 | 414 | 415 | 422 | 431 => 3,
        404 => 12,
        500 => 13,
        502..=504 => 14,
        _ => 2,
    }
}

/// `grpc-message` as the gRPC spec encodes it: bytes outside printable ASCII (0x20–0x7E) and
/// `%` itself as `%XX`, after cutting the text to [`MAX_MESSAGE`] bytes at a char boundary.
pub fn percent_encode_message(message: &str) -> String {
    let mut end = message.len().min(MAX_MESSAGE);
    while !message.is_char_boundary(end) {
        end = end.saturating_sub(1);
    }
    let cut = message.get(..end).unwrap_or_default();
    let mut out = String::with_capacity(cut.len());
    for b in cut.bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// What goes into `grpc-status-details-bin`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Details<'a> {
    pub code: u32,
    pub message: &'a str,
    /// `ErrorInfo.reason`: the refusal's stable code.
    pub reason: &'a str,
    /// `ErrorInfo.domain`: the filter that refused.
    pub domain: &'a str,
    pub metadata: Vec<(String, String)>,
    /// `RetryInfo.retry_delay`, in seconds, when the caller is told when to come back.
    pub retry_delay: Option<u64>,
}

const ERROR_INFO_URL: &str = "type.googleapis.com/google.rpc.ErrorInfo";
const RETRY_INFO_URL: &str = "type.googleapis.com/google.rpc.RetryInfo";

impl Details<'_> {
    /// The `google.rpc.Status` message, protobuf-encoded: `{code, message, details:
    /// [Any(ErrorInfo{reason, domain, metadata}), Any(RetryInfo{retry_delay})?]}`.
    pub fn encode(&self) -> Vec<u8> {
        let mut info = Vec::new();
        proto::string(&mut info, 1, self.reason);
        proto::string(&mut info, 2, self.domain);
        for (k, v) in self.metadata.iter().take(MAX_METADATA) {
            let mut entry = Vec::new();
            proto::string(&mut entry, 1, k);
            proto::string(&mut entry, 2, cut(v, MAX_METADATA_VALUE));
            proto::bytes(&mut info, 3, &entry);
        }
        let mut status = Vec::new();
        proto::varint_field(&mut status, 1, u64::from(self.code));
        proto::string(&mut status, 2, cut(self.message, MAX_MESSAGE));
        proto::bytes(&mut status, 3, &any(ERROR_INFO_URL, &info));
        if let Some(seconds) = self.retry_delay {
            let mut duration = Vec::new();
            proto::varint_field(&mut duration, 1, seconds);
            let mut retry = Vec::new();
            proto::bytes(&mut retry, 1, &duration);
            proto::bytes(&mut status, 3, &any(RETRY_INFO_URL, &retry));
        }
        status
    }

    /// The header value: base64 without padding, as gRPC implementations send `-bin` headers.
    pub fn header_value(&self) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(self.encode())
    }
}

fn any(type_url: &str, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    proto::string(&mut out, 1, type_url);
    proto::bytes(&mut out, 2, value);
    out
}

fn cut(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end = end.saturating_sub(1);
    }
    s.get(..end).unwrap_or_default()
}

/// The protobuf wire format, as much of it as the messages above need. Proto3 leaves a field
/// at its default (0, "") out.
pub mod proto {
    pub fn varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v & 0x7f) as u8 | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    fn key(out: &mut Vec<u8>, field: u32, wire_type: u8) {
        varint(out, (u64::from(field) << 3) | u64::from(wire_type));
    }

    pub fn varint_field(out: &mut Vec<u8>, field: u32, v: u64) {
        if v != 0 {
            key(out, field, 0);
            varint(out, v);
        }
    }

    /// A length-delimited field (bytes, string, embedded message), written even when empty for
    /// messages (an empty embedded message is still present).
    pub fn bytes(out: &mut Vec<u8>, field: u32, v: &[u8]) {
        key(out, field, 2);
        varint(out, v.len() as u64);
        out.extend_from_slice(v);
    }

    pub fn string(out: &mut Vec<u8>, field: u32, v: &str) {
        if !v.is_empty() {
            bytes(out, field, v.as_bytes());
        }
    }
}

#[cfg(test)]
#[path = "grpc_tests.rs"]
mod tests;
