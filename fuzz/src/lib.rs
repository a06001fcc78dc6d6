//! Helpers shared by the fuzz targets: a readable input format for requests, and the checks
//! every target applies to what a filter did.
//!
//! A request input is text-like so seeds can be written by hand: header lines `name: value`
//! (pseudo-headers too: `:path: /x`), then an empty line, then the body (any bytes). Header
//! values Envoy's codecs would refuse are left out (see [`request`]).

use kit::host::{Call, MockHost};

/// Splits a request input into its header lines and its body.
pub fn request(data: &[u8]) -> (Vec<(String, Vec<u8>)>, &[u8]) {
    let (head, body) = match data.windows(2).position(|w| w == b"\n\n") {
        Some(i) => (
            data.get(..i).unwrap_or_default(),
            data.get(i + 2..).unwrap_or_default(),
        ),
        None => (data, &[][..]),
    };
    let mut headers = Vec::new();
    for line in head.split(|b| *b == b'\n') {
        // The name ends at the first ':' after its first byte (pseudo-headers start with one).
        let Some(colon) = line.iter().skip(1).position(|b| *b == b':').map(|p| p + 1) else {
            continue;
        };
        let (name, value) = line.split_at(colon);
        // Envoy hands names lowercased (RequestHead lowercases them again).
        let name = name.to_ascii_lowercase();
        let name = name.as_slice();
        let value = value.get(1..).unwrap_or_default();
        let value = value.strip_prefix(b" ").unwrap_or(value);
        // Only what Envoy's codecs deliver: no NUL or CR in any value (LF ends the line), no
        // control byte in a pseudo-header and no space in `:path` (HTTP/1 and HTTP/2 both
        // refuse them in the request line / pseudo-header fields).
        let bad_path = name == b":path" && value.iter().any(|b| *b <= b' ' || *b == 0x7f);
        if value.iter().any(|b| *b == 0 || *b == b'\r')
            || (name.first() == Some(&b':') && kit::header_value::check(value).is_err())
            || bad_path
        {
            continue;
        }
        headers.push((String::from_utf8_lossy(name).into_owned(), value.to_vec()));
    }
    (headers, body)
}

/// The first line and the rest.
pub fn first_line(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|b| *b == b'\n') {
        Some(i) => (
            data.get(..i).unwrap_or_default(),
            data.get(i + 1..).unwrap_or_default(),
        ),
        None => (data, &[][..]),
    }
}

/// A mock host holding the request.
pub fn host(headers: Vec<(String, Vec<u8>)>) -> MockHost {
    let mut host = MockHost::new(&[]);
    host.headers = headers;
    host.route = Some("pets".into());
    host
}

/// Every header value a filter set must pass the suite's one check for header values built
/// from client data (no control bytes, bounded length). A header the client sent itself may
/// come back reformatted (a cookie, `Authorization` or path without the credential): Envoy
/// already accepted those bytes, so only a control byte the client did not send is an error.
pub fn assert_header_safe(sent: &[(String, Vec<u8>)], name: &str, value: &[u8]) {
    let control = |v: &[u8]| v.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f);
    let copies: Vec<&[u8]> = sent
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_slice())
        .collect();
    let ok = if copies.is_empty() {
        kit::header_value::check(value).is_ok()
    } else {
        !control(value) || copies.iter().any(|v| control(v))
    };
    assert!(
        ok,
        "unsafe value set on {name}: {:?}",
        String::from_utf8_lossy(value)
    );
}

/// [`assert_header_safe`] for every header the filter set through the mock host.
pub fn assert_headers_safe(host: &MockHost) {
    for call in host.calls() {
        if let Call::SetHeader(name, value) = call {
            assert_header_safe(&host.headers, &name, &value);
        }
    }
}

/// A local reply, if any, is a valid status with a JSON body.
pub fn assert_reply_sane(host: &MockHost) {
    if let Some(reply) = host.reply() {
        assert!(
            (200..600).contains(&reply.status),
            "status {}",
            reply.status
        );
        assert!(
            serde_json::from_slice::<serde_json::Value>(&reply.body).is_ok(),
            "reply body is not JSON"
        );
    }
}

/// A transform `Io` over one exchange: the request, a canned response, recorded effects.
#[derive(Default)]
pub struct TransformIo {
    pub request: Vec<(String, Vec<u8>)>,
    pub response: Vec<(String, Vec<u8>)>,
    pub request_body: Vec<u8>,
    pub response_body: Vec<u8>,
    /// Header values the filter wrote.
    pub set_headers: std::cell::RefCell<Vec<(String, Vec<u8>)>>,
    pub new_bodies: std::cell::RefCell<Vec<Vec<u8>>>,
    pub replies: std::cell::RefCell<Vec<kit::denial::Reply>>,
}

impl transform::handler::Io for TransformIo {
    fn headers(&self, side: transform::handler::Side) -> Vec<(String, Vec<u8>)> {
        match side {
            transform::handler::Side::Request => self.request.clone(),
            transform::handler::Side::Response => self.response.clone(),
        }
    }
    fn route_name(&self) -> Option<String> {
        Some("pets".into())
    }
    fn property(&self, _key: &str) -> Option<Vec<u8>> {
        None
    }
    fn edit(&self, _side: transform::handler::Side, edit: &transform::headers::Edit) {
        let mut list = Vec::new();
        transform::handler::apply_edits(&mut list, std::slice::from_ref(edit));
        self.set_headers.borrow_mut().extend(list);
    }
    /// Only the values the filter built (not the client's own, passed back unchanged).
    fn set_headers(&self, side: transform::handler::Side, headers: &[(String, Vec<u8>)]) {
        let before = self.headers(side);
        self.set_headers
            .borrow_mut()
            .extend(headers.iter().filter(|h| !before.contains(h)).cloned());
    }
    fn body(&self, side: transform::handler::Side, size: usize) -> Option<Vec<u8>> {
        let b = match side {
            transform::handler::Side::Request => &self.request_body,
            transform::handler::Side::Response => &self.response_body,
        };
        Some(b.get(..size).unwrap_or(b).to_vec())
    }
    fn set_body(&self, _side: transform::handler::Side, _size: usize, body: &[u8]) {
        self.new_bodies.borrow_mut().push(body.to_vec());
    }
    fn send_reply(&self, reply: &kit::denial::Reply) {
        self.replies.borrow_mut().push(reply.clone());
    }
    fn dispatch(&self, _call: &transform::graphql::Call) -> bool {
        true
    }
    fn count(&self, _counter: transform::handler::Counter) {}
    fn warn(&self, _message: &str) {}
}
