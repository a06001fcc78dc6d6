//! The one shape every filter of the suite has: a *stage*.
//!
//! A [`StageSpec`] names a filter and parses its config section into a [`Stage`] (the VM-wide
//! part: config, counters, timers, callouts of its own such as JWKS refreshes). For each request
//! the stage makes an [`Exchange`] that is handed the request's events (headers, body when it
//! waits for it, trailers, the response side, callout answers) with the [`Host`] and answers
//! with a [`Flow`]: go on, done (a local reply was sent), wait for the body, wait for a callout.
//!
//! [`Chain`] runs an ordered set of exchanges as Envoy would run the same filters one after the
//! other, and [`RequestHost`] is the host they share: header reads served from one snapshot,
//! route name and clock read once, the context values one stage publishes (`apim_consumer`, …)
//! read back by the next from memory while still being published for access logs. The
//! proxy-wasm root in `runtime` (wasm32-wasip1 only) hosts any list of stage specs: one for a
//! filter's own module, all five for `apim_suite.wasm`. Nothing here names a proxy-wasm type, so
//! the same stages can run over another host (Envoy's dynamic modules).

use crate::config_error::ConfigError;
use crate::denial::{Denial, Format, Reply};
use crate::host::{Host, LogLevel, SetResult, Side};
use crate::identity::Identity;
use crate::metrics::Counters;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

/// What a stage answers to one event of the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Go on: the next stage sees the event.
    Continue,
    /// The request is finished here (a local reply was sent or the stream reset).
    Done,
    /// Hold the request until more body arrives (at the headers: hold the headers too).
    WaitBody,
    /// Hold the request until the callout with this token answers.
    WaitCallout(u32),
}

/// A headers-only stage's decision (api-key-auth, scope-authz): go on, or a local reply was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Continue,
    /// A local reply was sent.
    Stop,
}

impl From<Verdict> for Flow {
    fn from(v: Verdict) -> Self {
        match v {
            Verdict::Continue => Flow::Continue,
            Verdict::Stop => Flow::Done,
        }
    }
}

/// The answer of a callout being delivered (read its parts through the host).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Callout {
    Http { body_size: usize },
    Grpc { status: u32, size: usize },
}

/// One request as one stage sees it. Every event but the request headers defaults to
/// "nothing to do here".
pub trait Exchange {
    fn on_request_headers(&mut self, host: &dyn Host, end_of_stream: bool) -> Flow;
    fn on_request_body(&mut self, _host: &dyn Host, _size: usize, _end_of_stream: bool) -> Flow {
        Flow::Continue
    }
    fn on_request_trailers(&mut self, _host: &dyn Host) -> Flow {
        Flow::Continue
    }
    fn on_response_headers(&mut self, _host: &dyn Host, _end_of_stream: bool) -> Flow {
        Flow::Continue
    }
    fn on_response_body(&mut self, _host: &dyn Host, _size: usize, _end_of_stream: bool) -> Flow {
        Flow::Continue
    }
    fn on_response_trailers(&mut self, _host: &dyn Host) -> Flow {
        Flow::Continue
    }
    /// The answer to a callout this exchange sent (the token it waited for, or one it sent
    /// without waiting).
    fn on_callout(&mut self, _host: &dyn Host, _token: u32, _answer: Callout) -> Flow {
        Flow::Continue
    }
    /// The stream is over (answered, or reset by the client).
    fn on_log(&mut self, _host: &dyn Host) {}
    /// Whether the stage reads each request-body chunk once as it passes (graphql-guard on a
    /// WebSocket) rather than the body whole at its end.
    fn reads_body_in_chunks(&self) -> bool {
        false
    }
    /// Such a stage would be handed bytes it already let through: a later stage holds Envoy's
    /// buffer, so the next chunk comes with the earlier ones before it, and the stream can no
    /// longer be read frame by frame. The stage refuses (and counts why); by default the
    /// stream is reset.
    fn on_request_body_unreadable(&mut self, host: &dyn Host) -> Flow {
        host.reset_request();
        Flow::Done
    }
}

/// A filter with a valid config, VM-wide: what outlives one request.
pub trait Stage {
    /// The filter's name (its spec's): what the access log's `apim_decision` names.
    fn name(&self) -> &'static str {
        "apim"
    }
    fn warnings(&self) -> Vec<String> {
        Vec::new()
    }
    /// Counters whose names come from the config (quota's per plan), beyond the spec's fixed
    /// ones. A native module defines them when Envoy creates the config, as the fixed ones; a
    /// Wasm VM defines a metric whenever it is first asked, in `activate`.
    fn config_counter_names(&self) -> Vec<String> {
        Vec::new()
    }
    /// The config was accepted (every section of it, in the suite): create what the stage keeps
    /// in shared data, read what earlier configs left there. Called before any request.
    fn activate(&mut self, _host: &dyn Host, _counters: Rc<Counters>) {}
    /// How often [`Stage::on_tick`] must run; `None`: never.
    fn tick_period(&self) -> Option<Duration> {
        None
    }
    fn on_tick(&mut self, _host: &dyn Host) {}
    /// The answer to a callout the stage sent from the root (not from a request).
    fn on_root_callout(&mut self, _host: &dyn Host, _token: u32, _answer: Callout) {}
    /// The per-request part; in-flight requests keep theirs across a config swap.
    fn exchange(&self, host: &dyn Host) -> Box<dyn Exchange>;
    /// Whether a request this stage acts on has it read the whole request-header map (transform,
    /// whose operations and templates may touch any header). In the suite, one such stage makes
    /// the request host read the map once and batch every stage's edits; without one, each
    /// stage's few named reads are cheaper (see [`RequestHost`]).
    fn reads_request_header_map(&self) -> bool {
        false
    }
}

/// How a filter is found, named and configured.
#[derive(Clone, Copy)]
pub struct StageSpec {
    /// In logs: `api-key-auth: invalid configuration: …`.
    pub name: &'static str,
    /// Its section in the suite's config: `api_key_auth`.
    pub section: &'static str,
    /// How a refusal is written when there is no config (which Envoy should prevent).
    pub format: Format,
    /// Counter names, defined once per VM; indexes follow this order.
    pub counter_names: fn() -> Vec<String>,
    /// The filter's own module config (the same bytes whatever the form) → a stage.
    pub parse: fn(&[u8]) -> Result<Box<dyn Stage>, ConfigError>,
}

/// A parsed configuration: indexes into the spec list, in the spec list's order, with stages.
pub type Configured = Vec<(usize, Box<dyn Stage>)>;

/// Parses a module's configuration. With one spec it is that filter's own config; with several
/// it is one JSON object with a section per filter (each exactly that filter's own config):
/// unknown sections are refused by name, at least one is required, and the stages run in the
/// specs' order whatever the sections' order.
pub fn parse_config(specs: &[StageSpec], bytes: &[u8]) -> Result<Configured, ConfigError> {
    if let [spec] = specs {
        return Ok(vec![(0, (spec.parse)(bytes)?)]);
    }
    let sections: std::collections::BTreeMap<String, Box<serde_json::value::RawValue>> =
        crate::config_error::parse_json(bytes)?;
    for key in sections.keys() {
        if !specs.iter().any(|s| s.section == key) {
            let known: Vec<&str> = specs.iter().map(|s| s.section).collect();
            return Err(ConfigError::new(
                key.clone(),
                format!("unknown section (known: {})", known.join(", ")),
            ));
        }
    }
    let mut stages = Vec::new();
    for (index, spec) in specs.iter().enumerate() {
        if let Some(raw) = sections.get(spec.section) {
            let stage = (spec.parse)(raw.get().as_bytes()).map_err(|e| e.under(spec.section))?;
            stages.push((index, stage));
        }
    }
    if stages.is_empty() {
        let known: Vec<&str> = specs.iter().map(|s| s.section).collect();
        return Err(ConfigError::new(
            "",
            format!("no section: give at least one of {}", known.join(", ")),
        ));
    }
    Ok(stages)
}

/// The refusal of a module with no valid config: unreachable while Envoy honours a refused
/// `on_configure`, fail closed all the same.
pub fn not_configured(name: &str, format: Format) -> Reply {
    let detail = format!("The {name} filter has no valid configuration.");
    Denial::new(503, "not_configured", "Filter not configured", detail).render(format)
}

/// Where one stage is in the request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Progress {
    /// It was given the request headers.
    headers: bool,
    /// The body event (by serial) it was last given.
    body: u32,
    trailers: bool,
    response_headers: bool,
    response_body: u32,
    response_trailers: bool,
}

/// An ordered set of exchanges run as a chain of filters: each event goes to the stages in
/// order (the response side in reverse order, as Envoy's encoders run) until one holds or ends
/// the request. A stage that holds the headers (waiting for the body) keeps the later stages
/// from seeing them until it lets go, then they get the headers and the body so far, as they
/// would behind it in Envoy. The body is Envoy's one buffer, read by every stage that needs it.
///
/// One difference with separate filters remains: a stage that let a body chunk through and is
/// called again while a later stage buffers is handed the buffer from its start (Envoy's buffer
/// is the one filter's), not only the new bytes. That matters only to a stage that reads chunk
/// by chunk ([`Exchange::reads_body_in_chunks`]: graphql-guard on a WebSocket), and only when a
/// later stage buffers the same stream: such a stage is then never handed the buffer, it
/// refuses ([`Exchange::on_request_body_unreadable`]), failing closed.
pub struct Chain {
    exchanges: Vec<Box<dyn Exchange>>,
    progress: Vec<Progress>,
    headers_end_stream: bool,
    /// The latest request body event: serial (from 1), size, end of stream.
    body: Option<(u32, usize, bool)>,
    trailers: bool,
    response_headers_end_stream: bool,
    response_body: Option<(u32, usize, bool)>,
    response_trailers: bool,
    /// The stage waiting for a callout, and the token.
    callout: Option<(usize, u32)>,
    done: bool,
    /// The stage that held the latest request body event (Envoy keeps the buffer, and the next
    /// event's buffer starts with it); `None` when it went on.
    body_held_by: Option<usize>,
    /// `body_held_by` as the current body event found it.
    body_kept_by: Option<usize>,
}

impl Chain {
    pub fn new(exchanges: Vec<Box<dyn Exchange>>) -> Self {
        let n = exchanges.len();
        Self {
            exchanges,
            progress: vec![Progress::default(); n],
            headers_end_stream: false,
            body: None,
            trailers: false,
            response_headers_end_stream: false,
            response_body: None,
            response_trailers: false,
            callout: None,
            done: false,
            body_held_by: None,
            body_kept_by: None,
        }
    }

    pub fn on_request_headers(&mut self, host: &dyn Host, end_of_stream: bool) -> Flow {
        self.headers_end_stream = end_of_stream;
        self.pump_request(host)
    }

    pub fn on_request_body(&mut self, host: &dyn Host, size: usize, end_of_stream: bool) -> Flow {
        let serial = self.body.map_or(1, |(s, _, _)| s.saturating_add(1));
        self.body = Some((serial, size, end_of_stream));
        self.body_kept_by = self.body_held_by.take();
        self.pump_request(host)
    }

    pub fn on_request_trailers(&mut self, host: &dyn Host) -> Flow {
        self.trailers = true;
        self.pump_request(host)
    }

    pub fn on_response_headers(&mut self, host: &dyn Host, end_of_stream: bool) -> Flow {
        self.response_headers_end_stream = end_of_stream;
        self.pump_response(host)
    }

    pub fn on_response_body(&mut self, host: &dyn Host, size: usize, end_of_stream: bool) -> Flow {
        let serial = self
            .response_body
            .map_or(1, |(s, _, _)| s.saturating_add(1));
        self.response_body = Some((serial, size, end_of_stream));
        self.pump_response(host)
    }

    pub fn on_response_trailers(&mut self, host: &dyn Host) -> Flow {
        self.response_trailers = true;
        self.pump_response(host)
    }

    /// A callout answered. `Some(flow)` when it released (or ended) the held request: the
    /// caller resumes the request on `Continue`; `None` when the request was not waiting for
    /// it (an answer to a call sent without waiting goes to whichever stage takes it).
    pub fn on_callout(&mut self, host: &dyn Host, token: u32, answer: Callout) -> Option<Flow> {
        match self.callout {
            Some((index, waited)) if waited == token => {
                self.callout = None;
                host.enter_stage(index);
                let flow = self
                    .exchanges
                    .get_mut(index)
                    .map_or(Flow::Continue, |ex| ex.on_callout(host, token, answer));
                Some(match flow {
                    Flow::Continue => self.pump_request(host),
                    other => self.held(index, other),
                })
            }
            _ => {
                for (index, ex) in self.exchanges.iter_mut().enumerate() {
                    host.enter_stage(index);
                    let _ = ex.on_callout(host, token, answer);
                }
                None
            }
        }
    }

    pub fn on_log(&mut self, host: &dyn Host) {
        for (ex, p) in self.exchanges.iter_mut().zip(&self.progress) {
            if p.headers {
                ex.on_log(host);
            }
        }
    }

    /// Records why stage `index` holds the request.
    fn held(&mut self, index: usize, flow: Flow) -> Flow {
        match flow {
            Flow::Done => self.done = true,
            Flow::WaitCallout(token) => self.callout = Some((index, token)),
            Flow::Continue | Flow::WaitBody => {}
        }
        flow
    }

    fn pump_request(&mut self, host: &dyn Host) -> Flow {
        if self.done {
            return Flow::Done;
        }
        if let Some((_, token)) = self.callout {
            // Envoy buffers what arrives meanwhile; the stages see it once the answer is in.
            return Flow::WaitCallout(token);
        }
        for index in 0..self.exchanges.len() {
            let (Some(ex), Some(p)) = (self.exchanges.get_mut(index), self.progress.get_mut(index))
            else {
                break;
            };
            host.enter_stage(index);
            if !p.headers {
                p.headers = true;
                match ex.on_request_headers(host, self.headers_end_stream) {
                    Flow::Continue => {}
                    // Holding the headers for the body: it gets what body there is now, and
                    // the trailers that ended the stream (which may come with no body).
                    Flow::WaitBody if self.body.is_some() || self.trailers => {}
                    flow => return self.held(index, flow),
                }
            }
            if let Some((serial, size, end)) = self.body {
                if p.body != serial {
                    // The buffer starts with bytes this stage let through, kept by a later one.
                    let refed = p.body != 0
                        && self.body_kept_by.is_some_and(|holder| holder > index)
                        && ex.reads_body_in_chunks();
                    p.body = serial;
                    let flow = if refed {
                        ex.on_request_body_unreadable(host)
                    } else {
                        ex.on_request_body(host, size, end)
                    };
                    match flow {
                        Flow::Continue => {}
                        // More body was awaited, but trailers ended the stream: they come next,
                        // as Envoy hands them to a filter that was buffering.
                        Flow::WaitBody if self.trailers => {}
                        flow => {
                            self.body_held_by = Some(index);
                            return self.held(index, flow);
                        }
                    }
                }
            }
            if self.trailers && !p.trailers {
                p.trailers = true;
                match ex.on_request_trailers(host) {
                    Flow::Continue => {}
                    flow => return self.held(index, flow),
                }
            }
        }
        Flow::Continue
    }

    fn pump_response(&mut self, host: &dyn Host) -> Flow {
        for index in (0..self.exchanges.len()).rev() {
            let (Some(ex), Some(p)) = (self.exchanges.get_mut(index), self.progress.get_mut(index))
            else {
                continue;
            };
            // A stage that never saw the request (a stage before it replied) sees no response.
            if !p.headers {
                continue;
            }
            if !p.response_headers {
                p.response_headers = true;
                match ex.on_response_headers(host, self.response_headers_end_stream) {
                    Flow::Continue => {}
                    Flow::WaitBody if self.response_body.is_some() || self.response_trailers => {}
                    flow => return flow,
                }
            }
            if let Some((serial, size, end)) = self.response_body {
                if p.response_body != serial {
                    p.response_body = serial;
                    match ex.on_response_body(host, size, end) {
                        Flow::Continue => {}
                        Flow::WaitBody if self.response_trailers => {}
                        flow => return flow,
                    }
                }
            }
            if self.response_trailers && !p.response_trailers {
                p.response_trailers = true;
                match ex.on_response_trailers(host) {
                    Flow::Continue => {}
                    flow => return flow,
                }
            }
        }
        Flow::Continue
    }
}

/// Up to this many pending edits reach Envoy one by one; more as one replacement of the map
/// (one host call instead of several), unless the host's edits are cheap (a native module).
const MAX_SINGLE_EDITS: usize = 2;

/// A request-header edit waiting for [`RequestHost::flush`].
#[derive(Debug, Clone, PartialEq, Eq)]
enum Edit {
    Set(String, Vec<u8>),
    Add(String, Vec<u8>),
    Remove(String),
}

#[derive(Debug, Default)]
enum Pending {
    #[default]
    None,
    Edits(Vec<Edit>),
    /// The whole map was replaced (transform's many edits): the snapshot is what Envoy gets.
    Replace,
}

/// The host as the stages of one request share it. With `shared` (several stages), the route
/// name and the clock are read once, and a context value one stage publishes is read back by the
/// next from memory. With `snapshot` as well (a stage reads the whole header map anyway, see
/// [`Stage::reads_request_header_map`]), the request headers are read in one host call on first
/// use and later reads and edits go to that snapshot; the edits reach Envoy's map in one batch
/// ([`RequestHost::flush`]: the runtime flushes before it hands the request back to Envoy, and
/// before anything reads what the edits could change: the route, a `request.*` attribute).
/// Without a snapshot, each header is read by name and each edit goes to Envoy at once, as in
/// the separate modules: measured under callgrind, api-key-auth + quota cost +136.5k
/// instructions per request with the snapshot and +111.6k without (the map read and its
/// replacement outweigh two named reads and three edits; the two modules: +136.0k), while the
/// chain with transform costs +227.5k with it and +272.2k without. A single stage gets the host as it is: its own reads are
/// already the fewest.
pub struct RequestHost<'a> {
    inner: &'a dyn Host,
    shared: bool,
    snapshot: bool,
    headers: RefCell<Option<Vec<(String, Vec<u8>)>>>,
    /// Request-header edits not yet applied to Envoy's map.
    pending: RefCell<Pending>,
    route: RefCell<Option<Option<String>>>,
    now: RefCell<Option<u64>>,
    properties: RefCell<HashMap<String, Option<Vec<u8>>>>,
    /// The published identity, decoded once (the outer `None`: not read yet).
    identity: RefCell<Option<Option<Option<Identity>>>>,
    /// The stages' names, and which one the chain is running ([`Host::enter_stage`]): a
    /// refusal is published as `<stage>:<code>` ([`crate::denial::DECISION`]). A fixed array:
    /// a request host is made per request, and a heap allocation there would cost every one.
    names: [&'static str; MAX_NAMED_STAGES],
    current: std::cell::Cell<usize>,
}

/// Stages a request host can name (the suite has five).
const MAX_NAMED_STAGES: usize = 8;

impl<'a> RequestHost<'a> {
    /// `snapshot` only counts with `shared`.
    pub fn new(inner: &'a dyn Host, shared: bool, snapshot: bool) -> Self {
        Self {
            inner,
            shared,
            snapshot: shared && snapshot,
            headers: RefCell::new(None),
            pending: RefCell::new(Pending::None),
            route: RefCell::new(None),
            now: RefCell::new(None),
            properties: RefCell::new(HashMap::new()),
            identity: RefCell::new(None),
            names: [""; MAX_NAMED_STAGES],
            current: std::cell::Cell::new(0),
        }
    }

    /// The request host for a request run by `stages`: shared when there are several, with a
    /// snapshot of the headers when one of them reads the whole map.
    pub fn for_stages(inner: &'a dyn Host, stages: &Configured) -> Self {
        let snapshot = stages.iter().any(|(_, s)| s.reads_request_header_map());
        let mut host = Self::new(inner, stages.len() > 1, snapshot);
        for (slot, (_, stage)) in host.names.iter_mut().zip(stages.iter()) {
            *slot = stage.name();
        }
        host
    }

    /// The request headers are no longer Envoy's to read or edit (they went upstream): later
    /// events must not be served a stale snapshot.
    pub fn forget_headers(&self) {
        *self.headers.borrow_mut() = None;
        *self.pending.borrow_mut() = Pending::None;
    }

    /// Applies the pending request-header edits to Envoy's map: a few one by one, more as one
    /// replacement of the whole map (the edited snapshot).
    pub fn flush(&self) {
        let pending = std::mem::replace(&mut *self.pending.borrow_mut(), Pending::None);
        match pending {
            Pending::None => {}
            Pending::Edits(edits)
                if edits.len() <= MAX_SINGLE_EDITS || self.inner.header_edits_are_cheap() =>
            {
                for edit in edits {
                    match edit {
                        Edit::Set(n, v) => self.inner.set_header(Side::Request, &n, &v),
                        Edit::Add(n, v) => self.inner.add_header(Side::Request, &n, &v),
                        Edit::Remove(n) => self.inner.remove_header(Side::Request, &n),
                    }
                }
            }
            Pending::Edits(_) | Pending::Replace => {
                if let Some(snapshot) = self.headers.borrow().as_ref() {
                    self.inner.replace_headers(Side::Request, snapshot);
                }
            }
        }
    }

    /// Records an edit of the request headers: applied to the snapshot now, to Envoy's map at
    /// the next [`RequestHost::flush`]. The route Envoy matched may change with the headers.
    fn defer(&self, edit: Edit) {
        self.with_snapshot(|h| match &edit {
            Edit::Set(n, v) => {
                h.retain(|(k, _)| k != n);
                h.push((n.clone(), v.clone()));
            }
            Edit::Add(n, v) => h.push((n.clone(), v.clone())),
            Edit::Remove(n) => h.retain(|(k, _)| k != n),
        });
        *self.route.borrow_mut() = None;
        let mut pending = self.pending.borrow_mut();
        match &mut *pending {
            Pending::None => *pending = Pending::Edits(vec![edit]),
            Pending::Edits(edits) => edits.push(edit),
            Pending::Replace => {}
        }
    }

    /// A new callback: the clock, filter state and the identity are read again when a stage
    /// asks for them. Between callbacks a filter outside this module may have published (the
    /// guard's `apim_cost` while quota waited for the body): a value cached from an earlier
    /// callback, an absent one above all, could make a stage decide on stale input. What the
    /// stages publish is written through to filter state, so nothing is lost.
    pub fn next_event(&self) {
        *self.now.borrow_mut() = None;
        self.properties.borrow_mut().clear();
        *self.identity.borrow_mut() = None;
    }

    /// A request-header edit went straight to Envoy, which matches the route again.
    fn edited(&self, side: Side) {
        if side == Side::Request {
            *self.route.borrow_mut() = None;
        }
    }

    fn with_snapshot<T>(&self, f: impl FnOnce(&mut Vec<(String, Vec<u8>)>) -> T) -> T {
        let mut slot = self.headers.borrow_mut();
        let snapshot = slot.get_or_insert_with(|| self.inner.request_headers());
        f(snapshot)
    }
}

impl Host for RequestHost<'_> {
    fn request_headers(&self) -> Vec<(String, Vec<u8>)> {
        if self.snapshot {
            self.with_snapshot(|h| h.clone())
        } else {
            self.inner.request_headers()
        }
    }
    fn header_reads_are_cheap(&self) -> bool {
        self.snapshot || self.inner.header_reads_are_cheap()
    }
    fn header_edits_are_cheap(&self) -> bool {
        // With a snapshot, edits wait in memory and reach Envoy in one batch at the flush.
        self.snapshot || self.inner.header_edits_are_cheap()
    }
    fn has_request_header(&self, name: &str) -> bool {
        if self.snapshot {
            self.with_snapshot(|h| h.iter().any(|(k, _)| k == name))
        } else {
            // The host's own presence check: one call, no value copied in.
            self.inner.has_request_header(name)
        }
    }
    fn request_header(&self, name: &str) -> Option<Vec<u8>> {
        if !self.snapshot {
            return self.inner.request_header(name);
        }
        self.with_snapshot(|h| {
            let values: Vec<&[u8]> = h
                .iter()
                .filter(|(k, _)| k == name)
                .map(|(_, v)| v.as_slice())
                .collect();
            (!values.is_empty()).then(|| values.join(b",".as_slice()))
        })
    }
    fn route_name(&self) -> Option<String> {
        if !self.shared {
            return self.inner.route_name();
        }
        if let Some(route) = self.route.borrow().as_ref() {
            return route.clone();
        }
        // Envoy matches the route again after a header edit: let it see ours first.
        self.flush();
        let route = self.inner.route_name();
        *self.route.borrow_mut() = Some(route.clone());
        route
    }
    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        let [key] = path else {
            if self.snapshot && path.first() == Some(&"request") {
                self.flush();
            }
            return self.inner.property(path);
        };
        if !self.shared {
            return self.inner.property(path);
        }
        if let Some(v) = self.properties.borrow().get(*key) {
            return v.clone();
        }
        let v = self.inner.property(path);
        self.properties
            .borrow_mut()
            .insert((*key).to_string(), v.clone());
        v
    }
    fn set_property(&self, key: &str, value: &[u8]) {
        if key == crate::context::CONSUMER {
            *self.identity.borrow_mut() = None;
        }
        if self.shared {
            self.properties
                .borrow_mut()
                .insert(key.to_string(), Some(value.to_vec()));
        }
        self.inner.set_property(key, value);
    }
    fn identity(&self) -> Option<Option<Identity>> {
        if !self.shared {
            return self.inner.identity();
        }
        if let Some(cached) = self.identity.borrow().as_ref() {
            return cached.clone();
        }
        let found = self
            .property(&[crate::context::CONSUMER])
            .map(|b| Identity::decode(&b));
        *self.identity.borrow_mut() = Some(found.clone());
        found
    }
    fn set_request_header(&self, name: &str, value: &[u8]) {
        self.set_header(Side::Request, name, value);
    }
    fn remove_request_header(&self, name: &str) {
        self.remove_header(Side::Request, name);
    }
    fn send_reply(&self, reply: &Reply) {
        if let Some(code) = reply.code {
            let stage = self
                .names
                .get(self.current.get())
                .copied()
                .filter(|n| !n.is_empty())
                .unwrap_or("apim");
            let mut decision = String::with_capacity(stage.len() + 1 + code.len());
            decision.push_str(stage);
            decision.push(':');
            decision.push_str(code);
            self.inner
                .set_property(crate::denial::DECISION, decision.as_bytes());
        }
        self.inner.send_reply(reply);
    }
    fn enter_stage(&self, index: usize) {
        self.current.set(index);
    }
    fn now_unix(&self) -> u64 {
        if !self.shared {
            return self.inner.now_unix();
        }
        *self
            .now
            .borrow_mut()
            .get_or_insert_with(|| self.inner.now_unix())
    }
    fn define_counter(&self, name: &str) -> Option<u32> {
        self.inner.define_counter(name)
    }
    fn increment_counter(&self, id: u32, by: i64) {
        self.inner.increment_counter(id, by);
    }
    fn log(&self, level: LogLevel, message: &str) {
        self.inner.log(level, message);
    }
    fn headers(&self, side: Side) -> Vec<(String, Vec<u8>)> {
        match side {
            Side::Request => self.request_headers(),
            Side::Response => self.inner.headers(side),
        }
    }
    fn set_header(&self, side: Side, name: &str, value: &[u8]) {
        if self.snapshot && side == Side::Request {
            self.defer(Edit::Set(name.to_string(), value.to_vec()));
        } else {
            self.edited(side);
            self.inner.set_header(side, name, value);
        }
    }
    fn add_header(&self, side: Side, name: &str, value: &[u8]) {
        if self.snapshot && side == Side::Request {
            self.defer(Edit::Add(name.to_string(), value.to_vec()));
        } else {
            self.edited(side);
            self.inner.add_header(side, name, value);
        }
    }
    fn remove_header(&self, side: Side, name: &str) {
        if self.snapshot && side == Side::Request {
            self.defer(Edit::Remove(name.to_string()));
        } else {
            self.edited(side);
            self.inner.remove_header(side, name);
        }
    }
    fn replace_headers(&self, side: Side, headers: &[(String, Vec<u8>)]) {
        if self.snapshot && side == Side::Request {
            *self.headers.borrow_mut() = Some(headers.to_vec());
            *self.route.borrow_mut() = None;
            *self.pending.borrow_mut() = Pending::Replace;
        } else {
            self.edited(side);
            self.inner.replace_headers(side, headers);
        }
    }
    fn body(&self, side: Side, start: usize, size: usize) -> Option<Vec<u8>> {
        self.inner.body(side, start, size)
    }
    fn set_body(&self, side: Side, start: usize, size: usize, body: &[u8]) {
        self.inner.set_body(side, start, size, body);
    }
    fn shared_data(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        self.inner.shared_data(key)
    }
    fn set_shared_data(&self, key: &str, value: &[u8], cas: Option<u32>) -> SetResult {
        self.inner.set_shared_data(key, value, cas)
    }
    fn http_call(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<u32, String> {
        self.inner.http_call(cluster, headers, body, timeout)
    }
    fn grpc_call(
        &self,
        cluster: &str,
        service: &str,
        method: &str,
        message: &[u8],
        timeout: Duration,
    ) -> Result<u32, String> {
        self.inner
            .grpc_call(cluster, service, method, message, timeout)
    }
    fn http_call_response_header(&self, name: &str) -> Option<String> {
        self.inner.http_call_response_header(name)
    }
    fn http_call_response_body(&self, size: usize) -> Option<Vec<u8>> {
        self.inner.http_call_response_body(size)
    }
    fn grpc_response_body(&self, size: usize) -> Option<Vec<u8>> {
        self.inner.grpc_response_body(size)
    }
    fn set_tick_period(&self, period: Duration) -> bool {
        self.inner.set_tick_period(period)
    }
    fn resume_request(&self) -> bool {
        self.inner.resume_request()
    }
    fn reset_request(&self) {
        self.inner.reset_request();
    }
}

#[cfg(test)]
#[path = "stage_tests.rs"]
mod tests;
