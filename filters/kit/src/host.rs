//! The few host operations a filter's glue needs, as a trait, with a recording mock.
//!
//! The logic never calls the host. The glue (in each filter's `filter.rs` and `handler.rs`)
//! talks to the host only through [`Host`], so how a decision is applied (which headers are
//! removed, what is published, which counter moves) is unit-tested natively with [`MockHost`].
//! The real implementation over proxy-wasm lives in `proxy_host` (wasm32-wasip1 only).

use crate::denial::Reply;
use std::cell::RefCell;
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

pub trait Host {
    /// Every request header, pseudo-headers included, in one call.
    fn request_headers(&self) -> Vec<(String, Vec<u8>)>;
    /// One request header. A header sent several times comes back as one value with the
    /// copies joined by `,` (RFC 9110 §5.3), so callers that must see duplicates split on it.
    /// One host call, far cheaper than fetching the whole map. Request headers can be read
    /// only in the request-headers callback: Envoy answers BadArgument later, which the
    /// proxy-wasm SDK (0.2.5) turns into a trap, so filters read what they need up front.
    fn request_header(&self, name: &str) -> Option<Vec<u8>>;
    /// Whether the request carries a header (any copy, empty or not): one host call, no value
    /// copied into the module when it is absent.
    fn has_request_header(&self, name: &str) -> bool {
        self.request_header(name).is_some()
    }
    /// Envoy's matched route name (`xds.route_name`).
    fn route_name(&self) -> Option<String>;
    /// A filter-state or other property, by path.
    fn property(&self, path: &[&str]) -> Option<Vec<u8>>;
    /// Publishes filter state under a single-segment key.
    fn set_property(&self, key: &str, value: &[u8]);
    /// Replaces every value of a request header with one value.
    fn set_request_header(&self, name: &str, value: &[u8]);
    fn remove_request_header(&self, name: &str);
    /// Ends the request with a local reply.
    fn send_reply(&self, reply: &Reply);
    /// Wall-clock time, Unix seconds.
    fn now_unix(&self) -> u64;
    /// Defines a counter at start-up; `None` if the host refused.
    fn define_counter(&self, name: &str) -> Option<u32>;
    fn increment_counter(&self, id: u32, by: i64);
    fn log(&self, level: LogLevel, message: &str);
}

/// What the mock saw, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    SetProperty(String, Vec<u8>),
    SetHeader(String, Vec<u8>),
    RemoveHeader(String),
    Reply(Reply),
    Increment(String, i64),
    Log(LogLevel, String),
    RouteName,
    GetHeader(String),
}

/// A host for unit tests: canned request, recorded effects.
#[derive(Debug, Default)]
pub struct MockHost {
    pub headers: Vec<(String, Vec<u8>)>,
    pub route: Option<String>,
    pub properties: HashMap<String, Vec<u8>>,
    pub now: u64,
    counters: RefCell<Vec<String>>,
    calls: RefCell<Vec<Call>>,
}

impl MockHost {
    pub fn new(headers: &[(&str, &str)]) -> Self {
        Self {
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_string(), v.as_bytes().to_vec()))
                .collect(),
            now: 1_800_000_000,
            ..Self::default()
        }
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.borrow().clone()
    }

    /// The local reply sent, if any.
    pub fn reply(&self) -> Option<Reply> {
        self.calls.borrow().iter().find_map(|c| match c {
            Call::Reply(r) => Some(r.clone()),
            _ => None,
        })
    }

    /// Header changes only, in order.
    pub fn header_changes(&self) -> Vec<Call> {
        self.calls
            .borrow()
            .iter()
            .filter(|c| matches!(c, Call::SetHeader(..) | Call::RemoveHeader(_)))
            .cloned()
            .collect()
    }

    /// Total increments of a counter by name.
    pub fn counter(&self, name: &str) -> i64 {
        self.calls
            .borrow()
            .iter()
            .map(|c| match c {
                Call::Increment(n, by) if n == name => *by,
                _ => 0,
            })
            .sum()
    }

    pub fn published(&self, key: &str) -> Option<Vec<u8>> {
        self.calls.borrow().iter().rev().find_map(|c| match c {
            Call::SetProperty(k, v) if k == key => Some(v.clone()),
            _ => None,
        })
    }

    fn record(&self, call: Call) {
        self.calls.borrow_mut().push(call);
    }
}

impl Host for MockHost {
    fn request_headers(&self) -> Vec<(String, Vec<u8>)> {
        self.headers.clone()
    }
    fn request_header(&self, name: &str) -> Option<Vec<u8>> {
        self.record(Call::GetHeader(name.to_string()));
        let values: Vec<&[u8]> = self
            .headers
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_slice())
            .collect();
        (!values.is_empty()).then(|| values.join(b",".as_slice()))
    }
    fn route_name(&self) -> Option<String> {
        self.record(Call::RouteName);
        self.route.clone()
    }
    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        self.properties.get(&path.join(".")).cloned()
    }
    fn set_property(&self, key: &str, value: &[u8]) {
        self.record(Call::SetProperty(key.to_string(), value.to_vec()));
    }
    fn set_request_header(&self, name: &str, value: &[u8]) {
        self.record(Call::SetHeader(name.to_string(), value.to_vec()));
    }
    fn remove_request_header(&self, name: &str) {
        self.record(Call::RemoveHeader(name.to_string()));
    }
    fn send_reply(&self, reply: &Reply) {
        self.record(Call::Reply(reply.clone()));
    }
    fn now_unix(&self) -> u64 {
        self.now
    }
    fn define_counter(&self, name: &str) -> Option<u32> {
        let mut c = self.counters.borrow_mut();
        c.push(name.to_string());
        u32::try_from(c.len() - 1).ok()
    }
    fn increment_counter(&self, id: u32, by: i64) {
        let name = usize::try_from(id)
            .ok()
            .and_then(|i| self.counters.borrow().get(i).cloned())
            .unwrap_or_default();
        self.record(Call::Increment(name, by));
    }
    fn log(&self, level: LogLevel, message: &str) {
        self.record(Call::Log(level, message.to_string()));
    }
}
