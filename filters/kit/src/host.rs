//! The few host operations a filter's glue needs, as a trait, with a recording mock.
//!
//! The logic never calls the host. The glue (in each filter's `filter.rs` and `handler.rs`)
//! talks to the host only through [`Host`], so how a decision is applied (which headers are
//! removed, what is published, which counter moves) is unit-tested natively with [`MockHost`].
//! The real implementation over proxy-wasm lives in `proxy_host` (wasm32-wasip1 only).

use crate::denial::Reply;
use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

/// Which half of the exchange a header or body operation is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Request,
    Response,
}

/// The outcome of a shared-data write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetResult {
    Ok,
    /// The compare-and-swap token was stale: someone wrote in between.
    CasMismatch,
    Failed,
}

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
    /// Whether reading headers one by one costs no host call (they are served from a copy
    /// already read): then a reader never asks for the whole map to save calls.
    fn header_reads_are_cheap(&self) -> bool {
        false
    }
    /// Whether header edits one by one cost no more than replacing the map: a native module's
    /// callbacks (no VM crossing), or a shared request host that batches them anyway. A
    /// writer then sends its edits one by one instead of the whole map.
    fn header_edits_are_cheap(&self) -> bool {
        false
    }
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
    /// The chain is about to run its stage `index` (the request host names a refusal by it).
    fn enter_stage(&self, _index: usize) {}
    /// Wall-clock time, Unix seconds.
    fn now_unix(&self) -> u64;
    /// Defines a counter at start-up; `None` if the host refused.
    fn define_counter(&self, name: &str) -> Option<u32>;
    fn increment_counter(&self, id: u32, by: i64);
    fn log(&self, level: LogLevel, message: &str);

    // What stages beyond the request head need: the response, bodies, shared data, callouts
    // and timers. The defaults describe a host that has none of them (reads absent, writes
    // ignored, calls refused), so a test host implements only what it exercises.

    /// Every header of one side, in one call.
    fn headers(&self, side: Side) -> Vec<(String, Vec<u8>)> {
        match side {
            Side::Request => self.request_headers(),
            Side::Response => Vec::new(),
        }
    }
    /// Replaces every value of a header with one value.
    fn set_header(&self, side: Side, name: &str, value: &[u8]) {
        if side == Side::Request {
            self.set_request_header(name, value);
        }
    }
    /// Adds a value, keeping the ones there.
    fn add_header(&self, _side: Side, _name: &str, _value: &[u8]) {}
    fn remove_header(&self, side: Side, name: &str) {
        if side == Side::Request {
            self.remove_request_header(name);
        }
    }
    /// Replaces the whole header map of one side.
    fn replace_headers(&self, _side: Side, _headers: &[(String, Vec<u8>)]) {}
    /// `size` bytes of the buffered body from `start`.
    fn body(&self, _side: Side, _start: usize, _size: usize) -> Option<Vec<u8>> {
        None
    }
    /// Replaces `size` bytes of the buffered body from `start` with `body`.
    fn set_body(&self, _side: Side, _start: usize, _size: usize, _body: &[u8]) {}
    /// Value and compare-and-swap token of a shared-data key (every worker of the VM id).
    fn shared_data(&self, _key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        (None, None)
    }
    fn set_shared_data(&self, _key: &str, _value: &[u8], _cas: Option<u32>) -> SetResult {
        SetResult::Failed
    }
    /// The compare-and-swap token of a shared-data key alone: every write changes it, so a
    /// reader that saw it before knows the value is the same without copying it (a native
    /// module polls at every stream's end). proxy-wasm has no such call: by default the value
    /// is read and dropped.
    fn shared_data_cas(&self, key: &str) -> Option<u32> {
        self.shared_data(key).1
    }
    /// Whether root work (a stage's periodic work, outside any request) sends its callouts
    /// here. Not on a native module's workers: the main thread's copy of the stages sends them
    /// (`apim_native::root`), and a worker asks for one through shared data.
    fn calls_from_root(&self) -> bool {
        true
    }
    /// Sends an HTTP request to a cluster; the token its answer comes back with.
    fn http_call(
        &self,
        cluster: &str,
        _headers: &[(&str, &str)],
        _body: Option<&[u8]>,
        _timeout: Duration,
    ) -> Result<u32, String> {
        Err(format!("no callouts to cluster {cluster} from this host"))
    }
    /// Sends a unary gRPC request to a cluster; the token its answer comes back with.
    fn grpc_call(
        &self,
        cluster: &str,
        _service: &str,
        _method: &str,
        _message: &[u8],
        _timeout: Duration,
    ) -> Result<u32, String> {
        Err(format!("no callouts to cluster {cluster} from this host"))
    }
    /// A header of the HTTP callout's answer being delivered.
    fn http_call_response_header(&self, _name: &str) -> Option<String> {
        None
    }
    /// The body of the HTTP callout's answer being delivered.
    fn http_call_response_body(&self, _size: usize) -> Option<Vec<u8>> {
        None
    }
    /// The message of the gRPC answer being delivered.
    fn grpc_response_body(&self, _size: usize) -> Option<Vec<u8>> {
        None
    }
    /// The caller's identity an earlier filter published (`apim_consumer`): `None` when there
    /// is none, `Some(None)` when what is there is not a valid identity (a reader refuses that,
    /// never reads it as "no identity"). The suite's shared host decodes it once per request.
    fn identity(&self) -> Option<Option<crate::identity::Identity>> {
        self.property(&[crate::identity::PROPERTY])
            .map(|b| crate::identity::Identity::decode(&b))
    }
    /// Whether the host accepted the timer period.
    fn set_tick_period(&self, _period: Duration) -> bool {
        false
    }
    /// Resumes the paused request; whether it could.
    fn resume_request(&self) -> bool {
        false
    }
    /// Resets the request stream (both directions).
    fn reset_request(&self) {}
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
    AddResponseHeader(String, Vec<u8>),
    HttpCall(String),
    GrpcCall(String),
    /// The whole request header map replaced in one call.
    ReplaceHeaders(Vec<(String, Vec<u8>)>),
    Reset,
}

/// A host for unit tests: canned request, recorded effects.
#[derive(Debug, Default)]
pub struct MockHost {
    pub headers: Vec<(String, Vec<u8>)>,
    pub route: Option<String>,
    pub properties: HashMap<String, Vec<u8>>,
    pub now: u64,
    /// The buffered request body the stages read.
    pub body: Vec<u8>,
    /// Answers `header_edits_are_cheap` (as a native module's host does).
    pub cheap_edits: bool,
    /// Answers `calls_from_root` negated (as a native module's worker does).
    pub no_root_calls: bool,
    pub shared: RefCell<HashMap<String, (Vec<u8>, u32)>>,
    counters: RefCell<Vec<String>>,
    calls: RefCell<Vec<Call>>,
    /// Every trait method called, each one host call in the real host.
    host_calls: RefCell<Vec<&'static str>>,
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

    /// How many host calls the glue made (each trait method is one crossing in Envoy).
    pub fn host_calls(&self) -> usize {
        self.host_calls.borrow().len()
    }

    /// The host calls made, by method name, in order.
    pub fn host_call_names(&self) -> Vec<&'static str> {
        self.host_calls.borrow().clone()
    }

    fn record(&self, call: Call) {
        self.calls.borrow_mut().push(call);
    }

    fn crossing(&self, method: &'static str) {
        self.host_calls.borrow_mut().push(method);
    }
}

impl Host for MockHost {
    fn header_edits_are_cheap(&self) -> bool {
        self.cheap_edits
    }
    fn calls_from_root(&self) -> bool {
        !self.no_root_calls
    }
    fn request_headers(&self) -> Vec<(String, Vec<u8>)> {
        self.crossing("request_headers");
        self.headers.clone()
    }
    fn request_header(&self, name: &str) -> Option<Vec<u8>> {
        self.crossing("request_header");
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
        self.crossing("route_name");
        self.record(Call::RouteName);
        self.route.clone()
    }
    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        self.crossing("property");
        self.properties.get(&path.join(".")).cloned()
    }
    fn set_property(&self, key: &str, value: &[u8]) {
        self.crossing("set_property");
        self.record(Call::SetProperty(key.to_string(), value.to_vec()));
    }
    fn set_request_header(&self, name: &str, value: &[u8]) {
        self.crossing("set_request_header");
        self.record(Call::SetHeader(name.to_string(), value.to_vec()));
    }
    fn remove_request_header(&self, name: &str) {
        self.crossing("remove_request_header");
        self.record(Call::RemoveHeader(name.to_string()));
    }
    fn send_reply(&self, reply: &Reply) {
        self.crossing("send_reply");
        self.record(Call::Reply(reply.clone()));
    }
    fn now_unix(&self) -> u64 {
        self.crossing("now_unix");
        self.now
    }
    fn define_counter(&self, name: &str) -> Option<u32> {
        self.crossing("define_counter");
        let mut c = self.counters.borrow_mut();
        c.push(name.to_string());
        u32::try_from(c.len() - 1).ok()
    }
    fn increment_counter(&self, id: u32, by: i64) {
        self.crossing("increment_counter");
        let name = usize::try_from(id)
            .ok()
            .and_then(|i| self.counters.borrow().get(i).cloned())
            .unwrap_or_default();
        self.record(Call::Increment(name, by));
    }
    fn log(&self, level: LogLevel, message: &str) {
        self.crossing("log");
        self.record(Call::Log(level, message.to_string()));
    }
    fn add_header(&self, side: Side, name: &str, value: &[u8]) {
        self.crossing("add_header");
        if side == Side::Response {
            self.record(Call::AddResponseHeader(name.to_string(), value.to_vec()));
        }
    }
    fn body(&self, side: Side, start: usize, size: usize) -> Option<Vec<u8>> {
        self.crossing("body");
        match side {
            Side::Request => self
                .body
                .get(start..start.saturating_add(size))
                .map(<[u8]>::to_vec),
            Side::Response => None,
        }
    }
    fn shared_data(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        self.crossing("shared_data");
        match self.shared.borrow().get(key) {
            Some((v, cas)) => (Some(v.clone()), Some(*cas)),
            None => (None, None),
        }
    }
    fn set_shared_data(&self, key: &str, value: &[u8], cas: Option<u32>) -> SetResult {
        self.crossing("set_shared_data");
        let mut shared = self.shared.borrow_mut();
        let current = shared.get(key).map_or(0, |(_, c)| *c);
        if cas.is_some_and(|c| c != current) {
            return SetResult::CasMismatch;
        }
        shared.insert(key.to_string(), (value.to_vec(), current + 1));
        SetResult::Ok
    }
    fn http_call(
        &self,
        cluster: &str,
        _headers: &[(&str, &str)],
        _body: Option<&[u8]>,
        _timeout: Duration,
    ) -> Result<u32, String> {
        self.crossing("http_call");
        self.record(Call::HttpCall(cluster.to_string()));
        Ok(1)
    }
    fn grpc_call(
        &self,
        cluster: &str,
        _service: &str,
        _method: &str,
        _message: &[u8],
        _timeout: Duration,
    ) -> Result<u32, String> {
        self.crossing("grpc_call");
        self.record(Call::GrpcCall(cluster.to_string()));
        Ok(2)
    }
    fn replace_headers(&self, side: Side, headers: &[(String, Vec<u8>)]) {
        self.crossing("replace_headers");
        if side == Side::Request {
            self.record(Call::ReplaceHeaders(headers.to_vec()));
        }
    }
    fn set_body(&self, _side: Side, _start: usize, _size: usize, _body: &[u8]) {
        self.crossing("set_body");
    }
    fn http_call_response_header(&self, _name: &str) -> Option<String> {
        self.crossing("http_call_response_header");
        None
    }
    fn http_call_response_body(&self, _size: usize) -> Option<Vec<u8>> {
        self.crossing("http_call_response_body");
        None
    }
    fn grpc_response_body(&self, _size: usize) -> Option<Vec<u8>> {
        self.crossing("grpc_response_body");
        None
    }
    fn set_tick_period(&self, _period: Duration) -> bool {
        self.crossing("set_tick_period");
        true
    }
    fn resume_request(&self) -> bool {
        self.crossing("resume_request");
        true
    }
    fn reset_request(&self) {
        self.crossing("reset_request");
        self.record(Call::Reset);
    }
}
