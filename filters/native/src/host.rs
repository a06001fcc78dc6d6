//! [`kit::host::Host`] over Envoy's dynamic-module callbacks, for the stream being served.
//!
//! Like proxy-wasm's host calls, the callbacks act on "the current stream": the hook being run
//! sets it ([`enter`]) for the thread, and [`NativeHost`] is a zero-sized static the stages'
//! `RequestHost` wraps, exactly as `ProxyHost` is in the Wasm runtime. A local reply and a
//! stream reset are not made inside the hook but queued and made by the hook after the stages
//! have returned ([`take_deferred`]): Envoy runs the encoder hooks of a local reply (ours
//! among them) before `send_response` returns, and the stages must not be re-entered while
//! they are running (Wasm defers its local reply the same way).
//!
//! Every failure of a callback reads as "absent" or is logged, never a panic.

use crate::abi::{self, EnvoyBuffer, EnvoyHeader, ModuleBuffer, ModuleHeader};
use crate::shared;
use kit::denial::Reply;
use kit::host::{Host, LogLevel, SetResult, Side};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ffi::c_void;
use std::rc::Rc;

/// Filter state is published under the key the Wasm form uses (proxy-wasm's `set_property`
/// stores `wasm.<key>`), so a Lua filter or an access log reads it the same in every form.
const FILTER_STATE_PREFIX: &str = "wasm.";

/// The filter-state key of a property `key`, built by hand: `format!` costs more than the
/// callback on this per-request path.
fn filter_state_key(key: &str) -> String {
    let mut full = String::with_capacity(FILTER_STATE_PREFIX.len() + key.len());
    full.push_str(FILTER_STATE_PREFIX);
    full.push_str(key);
    full
}

/// Most copies of one request header joined into one value (a client repeating a header
/// thousands of times must not make the module loop that many times per read).
const MAX_HEADER_COPIES: usize = 256;

/// What the hook does once the stages have returned.
#[derive(Debug, Default)]
pub struct Deferred {
    pub reply: Option<Reply>,
    pub reset: bool,
    /// Resume the request Envoy holds for us (after a callout's answer released it).
    pub resume: bool,
}

/// The answer of an HTTP callout, while its hook runs.
#[derive(Debug, Default)]
pub struct CalloutAnswer {
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

thread_local! {
    /// The `filter_envoy` pointer of the hook running on this thread (null: none, or the
    /// main thread's config hooks).
    static CURRENT: Cell<*mut c_void> = const { Cell::new(std::ptr::null_mut()) };
    static DEFERRED: RefCell<Deferred> = RefCell::new(Deferred::default());
    /// Counter name → Envoy id, while a worker's stages are being activated.
    static DEFINED: RefCell<Option<HashMap<String, usize>>> = const { RefCell::new(None) };
    /// The body hook running, if any: its received chunk is part of the body.
    static IN_BODY: Cell<Option<Side>> = const { Cell::new(None) };
    /// The shared-data key prefix of the filter being served ([`shared_prefix`]).
    static NAMESPACE: RefCell<Rc<str>> = RefCell::new(Rc::from(""));
    /// The callout answer being delivered, if any.
    static ANSWER: RefCell<Option<CalloutAnswer>> = const { RefCell::new(None) };
    /// The gRPC message being delivered, if any.
    static GRPC_MESSAGE: RefCell<Option<Vec<u8>>> = const { RefCell::new(None) };
    /// The root work running on this thread, if any (no stream is current then).
    static ROOT: RefCell<Option<crate::root::Context>> = const { RefCell::new(None) };
}

/// Runs root work `f` (a stage's periodic work or a root callout's answer) for `root`, with no
/// stream current: callouts and counters go through the config (`crate::root`).
pub fn in_root<T>(root: crate::root::Context, namespace: &Rc<str>, f: impl FnOnce() -> T) -> T {
    let outer = ROOT.with(|r| r.replace(Some(root)));
    let out = enter(std::ptr::null_mut(), namespace, f);
    ROOT.with(|r| *r.borrow_mut() = outer);
    out
}

fn root() -> Option<crate::root::Context> {
    ROOT.with(|r| r.borrow().clone())
}

/// Makes `message` the gRPC answer the stages read for the duration of `f`.
pub fn with_grpc_message<T>(message: Vec<u8>, f: impl FnOnce() -> T) -> T {
    GRPC_MESSAGE.with(|m| *m.borrow_mut() = Some(message));
    let out = f();
    GRPC_MESSAGE.with(|m| *m.borrow_mut() = None);
    out
}

/// Copies headers Envoy lent for a hook.
pub(crate) fn copy_headers(headers: *const EnvoyHeader, len: usize) -> Vec<(String, Vec<u8>)> {
    if headers.is_null() {
        return Vec::new();
    }
    // SAFETY: Envoy passes `len` headers at `headers`, valid during the hook.
    let raw = unsafe { std::slice::from_raw_parts(headers, len) };
    raw.iter()
        .map(|h| {
            let key = copy(EnvoyBuffer {
                ptr: h.key_ptr,
                length: h.key_length,
            });
            let value = copy(EnvoyBuffer {
                ptr: h.value_ptr,
                length: h.value_length,
            });
            (String::from_utf8_lossy(&key).into_owned(), value)
        })
        .collect()
}

/// Copies body chunks Envoy lent for a hook onto `out`.
pub(crate) fn copy_chunks(chunks: *const EnvoyBuffer, len: usize, out: &mut Vec<u8>) {
    if chunks.is_null() {
        return;
    }
    // SAFETY: Envoy passes `len` chunks at `chunks`, valid during the hook.
    let raw = unsafe { std::slice::from_raw_parts(chunks, len) };
    for c in raw {
        out.extend_from_slice(&copy(*c));
    }
}

/// The total size of `len` body chunks Envoy lent for a hook.
pub(crate) fn chunks_size(chunks: *const EnvoyBuffer, len: usize) -> usize {
    if chunks.is_null() {
        return 0;
    }
    // SAFETY: Envoy passes `len` chunks at `chunks`, valid during the hook.
    let raw = unsafe { std::slice::from_raw_parts(chunks, len) };
    raw.iter()
        .fold(0usize, |total, c| total.saturating_add(c.length))
}

/// Copies a callout's answer out of the buffers Envoy lent for the hook.
pub(crate) fn callout_answer(
    headers: *const EnvoyHeader,
    headers_len: usize,
    body: *const EnvoyBuffer,
    body_len: usize,
) -> CalloutAnswer {
    let mut answer = CalloutAnswer {
        headers: copy_headers(headers, headers_len),
        body: Vec::new(),
    };
    copy_chunks(body, body_len, &mut answer.body);
    answer
}

/// Headers for Envoy (a callout's, a local reply's), pointing into `headers` (which must
/// outlive the call).
pub(crate) fn module_headers<K: AsRef<str>, V: AsRef<str>>(
    headers: &[(K, V)],
) -> Vec<ModuleHeader> {
    headers
        .iter()
        .map(|(k, v)| {
            let (k, v) = (k.as_ref(), v.as_ref());
            ModuleHeader {
                key_ptr: k.as_ptr(),
                key_length: k.len(),
                value_ptr: v.as_ptr(),
                value_length: v.len(),
            }
        })
        .collect()
}

/// A callout's answer as the stages read it, with its body's size: none (no `:status`, which
/// a stage reads as the call failing) unless it succeeded, and the body copied only up to
/// `max_body` bytes (a larger one is handed over empty with its size, and the stage refuses it
/// by size, as in Wasm, where an answer is read only after its size is checked).
pub(crate) fn callout_result(
    result: u32,
    headers: *const EnvoyHeader,
    headers_len: usize,
    body: *const EnvoyBuffer,
    body_len: usize,
    max_body: usize,
) -> (CalloutAnswer, usize) {
    if result != abi::CALLOUT_SUCCESS {
        return (CalloutAnswer::default(), 0);
    }
    let size = chunks_size(body, body_len);
    let body = if size <= max_body {
        body
    } else {
        std::ptr::null()
    };
    (callout_answer(headers, headers_len, body, body_len), size)
}

/// Makes `answer` the callout answer the stages read for the duration of `f`.
pub fn with_answer<T>(answer: CalloutAnswer, f: impl FnOnce() -> T) -> T {
    ANSWER.with(|a| *a.borrow_mut() = Some(answer));
    let out = f();
    ANSWER.with(|a| *a.borrow_mut() = None);
    out
}

/// Resumes the current stream's request (called by the hook, outside the stages).
pub fn continue_decoding() {
    let filter = current();
    if filter.is_null() {
        return;
    }
    // SAFETY: `filter` is the current hook's live `filter_envoy`.
    unsafe { abi::envoy_dynamic_module_callback_http_filter_continue_decoding(filter) }
}

/// Makes `filter` the current stream, and `namespace` the shared data it sees, for the duration
/// of `f` (nested hooks restore the outer).
pub fn enter<T>(filter: *mut c_void, namespace: &Rc<str>, f: impl FnOnce() -> T) -> T {
    let outer = CURRENT.with(|c| c.replace(filter));
    let outer_ns = NAMESPACE.with(|n| n.replace(Rc::clone(namespace)));
    let out = f();
    CURRENT.with(|c| c.set(outer));
    NAMESPACE.with(|n| *n.borrow_mut() = outer_ns);
    out
}

/// The shared-data key prefix of a filter named `filter_name` (its length first, so no two
/// names and keys run together): filters with the same `filter_name` share their shared data,
/// as Wasm filters with the same VM id do (a quota config on another listener with its own
/// name counts apart).
pub fn shared_prefix(filter_name: &str) -> String {
    format!("{}:{filter_name}", filter_name.len())
}

/// The shared-data key of `key` in the current namespace (a prefix made once per config: this
/// runs on every shared-data access).
fn namespaced(key: &str) -> String {
    NAMESPACE.with(|n| {
        let n = n.borrow();
        let mut full = String::with_capacity(n.len() + key.len());
        full.push_str(&n);
        full.push_str(key);
        full
    })
}

/// Marks the body hook of `side` as running for the duration of `f`.
pub fn in_body<T>(side: Side, f: impl FnOnce() -> T) -> T {
    let outer = IN_BODY.with(|c| c.replace(Some(side)));
    let out = f();
    IN_BODY.with(|c| c.set(outer));
    out
}

/// The reply and reset the stages asked for, to make now.
pub fn take_deferred() -> Deferred {
    DEFERRED.with(|d| std::mem::take(&mut *d.borrow_mut()))
}

/// Runs `f` with `define_counter` answered from `ids` (counters are defined on the main
/// thread when Envoy creates the config; workers activate their stages with those ids).
pub fn with_defined_counters<T>(ids: &[(String, usize)], f: impl FnOnce() -> T) -> T {
    let map: HashMap<String, usize> = ids.iter().cloned().collect();
    DEFINED.with(|d| *d.borrow_mut() = Some(map));
    let out = f();
    DEFINED.with(|d| *d.borrow_mut() = None);
    out
}

fn current() -> *mut c_void {
    CURRENT.with(Cell::get)
}

/// Copies what Envoy lent: valid only during the callback that gave it.
pub fn copy(buf: EnvoyBuffer) -> Vec<u8> {
    if buf.ptr.is_null() || buf.length == 0 {
        return Vec::new();
    }
    // SAFETY: Envoy returned `ptr` and `length` for a live buffer of this length, valid until
    // the current hook returns; we copy it before returning.
    unsafe { std::slice::from_raw_parts(buf.ptr, buf.length) }.to_vec()
}

fn header_type(side: Side) -> u32 {
    match side {
        Side::Request => abi::REQUEST_HEADER,
        Side::Response => abi::RESPONSE_HEADER,
    }
}

fn body_types(side: Side) -> (u32, u32) {
    match side {
        Side::Request => (abi::BUFFERED_REQUEST_BODY, abi::RECEIVED_REQUEST_BODY),
        Side::Response => (abi::BUFFERED_RESPONSE_BODY, abi::RECEIVED_RESPONSE_BODY),
    }
}

/// Logs one line through Envoy's `dynamic_modules` logger.
pub fn log_line(level: LogLevel, message: &str) {
    let level = match level {
        LogLevel::Debug => abi::LOG_DEBUG,
        LogLevel::Info => abi::LOG_INFO,
        LogLevel::Warn => abi::LOG_WARN,
        LogLevel::Error => abi::LOG_ERROR,
    };
    // SAFETY: the message buffer points into `message`, alive for the call; Envoy copies it.
    unsafe { abi::envoy_dynamic_module_callback_log(level, ModuleBuffer::of(message.as_bytes())) }
}

/// Defines a counter on the config being created (main thread).
pub(crate) fn define_counter(config_envoy: *mut c_void, name: &str) -> Option<usize> {
    if config_envoy.is_null() {
        return None;
    }
    let mut id = 0usize;
    // SAFETY: `config_envoy` is the pointer Envoy gave `config_new`, which is running; the name
    // buffer lives for the call; no labels (null, 0); `id` is a valid place to write.
    let result = unsafe {
        abi::envoy_dynamic_module_callback_http_filter_config_define_counter(
            config_envoy,
            ModuleBuffer::of(name.as_bytes()),
            std::ptr::null(),
            0,
            &mut id,
        )
    };
    (result == abi::METRICS_SUCCESS).then_some(id)
}

/// Adds to a counter defined by [`define_counter`], on the current stream (or through the
/// config, in root work).
pub fn increment(id: usize, by: u64) {
    let filter = current();
    if filter.is_null() {
        if let Some(root) = root() {
            root.increment(id, by);
        }
        return;
    }
    // SAFETY: `filter` is the current hook's live `filter_envoy`; no labels (null, 0).
    let _ = unsafe {
        abi::envoy_dynamic_module_callback_http_filter_increment_counter(
            filter,
            id,
            std::ptr::null(),
            0,
            by,
        )
    };
}

/// Sends a local reply on the current stream (called by the hook, outside the stages).
pub fn send_response(reply: &Reply) {
    let filter = current();
    if filter.is_null() {
        return;
    }
    let headers = module_headers(&reply.headers);
    const DETAILS: &[u8] = b"apim_local_reply";
    // SAFETY: every pointer refers to `reply`, `headers` or a static, alive for the call; Envoy
    // copies what it keeps. `filter` is the current hook's live `filter_envoy`.
    unsafe {
        abi::envoy_dynamic_module_callback_http_send_response(
            filter,
            u32::from(reply.status),
            headers.as_ptr(),
            headers.len(),
            ModuleBuffer::of(&reply.body),
            ModuleBuffer::of(DETAILS),
        );
    }
}

/// Resets the current stream (called by the hook, outside the stages).
pub fn reset_stream() {
    let filter = current();
    if filter.is_null() {
        return;
    }
    // SAFETY: `filter` is the current hook's live `filter_envoy`; the details are static.
    unsafe {
        abi::envoy_dynamic_module_callback_http_filter_reset_stream(
            filter,
            abi::RESET_LOCAL,
            ModuleBuffer::of(b"apim_reset"),
        );
    }
}

/// The size of the body a body hook sees: what was buffered plus the chunk received (once
/// when the received chunk is the buffer itself).
pub fn body_size(side: Side) -> usize {
    let filter = current();
    if filter.is_null() {
        return 0;
    }
    let (buffered, received) = body_types(side);
    let same = received_is_buffered(filter, side);
    // SAFETY: `filter` is the current hook's live `filter_envoy`; the body types are valid.
    let b = unsafe { abi::envoy_dynamic_module_callback_http_get_body_size(filter, buffered) };
    if same {
        return b;
    }
    // SAFETY: as above.
    let r = unsafe { abi::envoy_dynamic_module_callback_http_get_body_size(filter, received) };
    b.saturating_add(r)
}

fn received_is_buffered(filter: *mut c_void, side: Side) -> bool {
    // SAFETY: `filter` is the current hook's live `filter_envoy`.
    unsafe {
        match side {
            Side::Request => {
                abi::envoy_dynamic_module_callback_http_received_buffered_request_body(filter)
            }
            Side::Response => {
                abi::envoy_dynamic_module_callback_http_received_buffered_response_body(filter)
            }
        }
    }
}

fn chunks(filter: *mut c_void, body_type: u32, out: &mut Vec<u8>) {
    // SAFETY: `filter` is the current hook's live `filter_envoy`.
    let n =
        unsafe { abi::envoy_dynamic_module_callback_http_get_body_chunks_size(filter, body_type) };
    if n == 0 {
        return;
    }
    let mut bufs = vec![EnvoyBuffer::EMPTY; n];
    // SAFETY: `bufs` has room for the `n` chunks Envoy just said it has.
    let ok = unsafe {
        abi::envoy_dynamic_module_callback_http_get_body_chunks(
            filter,
            body_type,
            bufs.as_mut_ptr(),
        )
    };
    if ok {
        for b in bufs {
            out.extend_from_slice(&copy(b));
        }
    }
}

/// The whole body as the stages see it (buffered, then the chunk received).
fn whole_body(side: Side) -> Vec<u8> {
    let filter = current();
    let mut out = Vec::new();
    if filter.is_null() {
        return out;
    }
    let (buffered, received) = body_types(side);
    let same = received_is_buffered(filter, side);
    chunks(filter, buffered, &mut out);
    if !same && IN_BODY.with(Cell::get) == Some(side) {
        chunks(filter, received, &mut out);
    }
    out
}

fn envoy_header(
    filter: *mut c_void,
    side: Side,
    name: &str,
    index: usize,
    count: &mut usize,
) -> Option<Vec<u8>> {
    let mut value = EnvoyBuffer::EMPTY;
    // SAFETY: `filter` is the current hook's live `filter_envoy`; the key buffer lives for the
    // call; `value` and `count` are valid places to write.
    let found = unsafe {
        abi::envoy_dynamic_module_callback_http_get_header(
            filter,
            header_type(side),
            ModuleBuffer::of(name.as_bytes()),
            &mut value,
            index,
            count,
        )
    };
    found.then(|| copy(value))
}

fn set(side: Side, name: &str, value: Option<&[u8]>) {
    let filter = current();
    if filter.is_null() {
        return;
    }
    if value.is_some_and(<[u8]>::is_empty) {
        // Envoy's `set_header` reads an empty value as "remove": an empty header is the header
        // removed, then added empty.
        set(side, name, None);
        add(filter, side, name, b"");
        return;
    }
    let value = value.map_or(ModuleBuffer::NULL, ModuleBuffer::of);
    // SAFETY: `filter` is the current hook's live `filter_envoy`; both buffers live for the
    // call (a null value removes the header).
    let ok = unsafe {
        abi::envoy_dynamic_module_callback_http_set_header(
            filter,
            header_type(side),
            ModuleBuffer::of(name.as_bytes()),
            value,
        )
    };
    if !ok && value.ptr.is_null() {
        // Removing an absent header is not a failure worth a line.
        return;
    }
    if !ok {
        log_line(LogLevel::Warn, &format!("setting header {name} failed"));
    }
}

/// Drains the whole of one body buffer.
fn drain(filter: *mut c_void, body_type: u32) {
    // SAFETY: `filter` is the current hook's live `filter_envoy`; the body type is valid.
    let n = unsafe { abi::envoy_dynamic_module_callback_http_get_body_size(filter, body_type) };
    if n > 0 {
        // SAFETY: as above; `n` is the buffer's current size.
        let _ = unsafe { abi::envoy_dynamic_module_callback_http_drain_body(filter, body_type, n) };
    }
}

fn add(filter: *mut c_void, side: Side, name: &str, value: &[u8]) {
    // SAFETY: `filter` is the current hook's live `filter_envoy`; both buffers live for the
    // call.
    let ok = unsafe {
        abi::envoy_dynamic_module_callback_http_add_header(
            filter,
            header_type(side),
            ModuleBuffer::of(name.as_bytes()),
            ModuleBuffer::of(value),
        )
    };
    if !ok {
        log_line(LogLevel::Warn, &format!("adding header {name} failed"));
    }
}

fn attribute_string(id: u32) -> Option<Vec<u8>> {
    let filter = current();
    if filter.is_null() {
        return None;
    }
    let mut out = EnvoyBuffer::EMPTY;
    // SAFETY: `filter` is the current hook's live `filter_envoy`; `out` is a valid place.
    let ok = unsafe {
        abi::envoy_dynamic_module_callback_http_filter_get_attribute_string(filter, id, &mut out)
    };
    ok.then(|| copy(out))
}

fn attribute_int(id: u32) -> Option<u64> {
    let filter = current();
    if filter.is_null() {
        return None;
    }
    let mut out = 0u64;
    // SAFETY: `filter` is the current hook's live `filter_envoy`; `out` is a valid place.
    let ok = unsafe {
        abi::envoy_dynamic_module_callback_http_filter_get_attribute_int(filter, id, &mut out)
    };
    ok.then_some(out)
}

/// The host of the stream being served (see the module docs).
#[derive(Debug, Default, Clone, Copy)]
pub struct NativeHost;

impl Host for NativeHost {
    fn request_headers(&self) -> Vec<(String, Vec<u8>)> {
        self.headers(Side::Request)
    }

    fn request_header(&self, name: &str) -> Option<Vec<u8>> {
        let filter = current();
        if filter.is_null() {
            return None;
        }
        let mut count = 0usize;
        let first = envoy_header(filter, Side::Request, name, 0, &mut count)?;
        if count <= 1 {
            return Some(first);
        }
        // Every copy, joined with ',' as proxy-wasm's `request.headers` attribute does, so a
        // second, different credential cannot hide behind the first.
        let mut joined = first;
        for index in 1..count.min(MAX_HEADER_COPIES) {
            let mut ignored = 0usize;
            if let Some(v) = envoy_header(filter, Side::Request, name, index, &mut ignored) {
                joined.push(b',');
                joined.extend_from_slice(&v);
            }
        }
        Some(joined)
    }

    fn has_request_header(&self, name: &str) -> bool {
        let filter = current();
        if filter.is_null() {
            return false;
        }
        let mut count = 0usize;
        let _ = envoy_header(filter, Side::Request, name, 0, &mut count);
        count > 0
    }

    fn route_name(&self) -> Option<String> {
        attribute_string(abi::ATTR_XDS_ROUTE_NAME)
            .and_then(|b| String::from_utf8(b).ok())
            .filter(|s| !s.is_empty())
    }

    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        match path {
            [key] => {
                let filter = current();
                if filter.is_null() {
                    return None;
                }
                let key = filter_state_key(key);
                let mut out = EnvoyBuffer::EMPTY;
                // SAFETY: `filter` is the current hook's live `filter_envoy`; the key lives
                // for the call; `out` is a valid place.
                let ok = unsafe {
                    abi::envoy_dynamic_module_callback_http_get_filter_state_bytes(
                        filter,
                        ModuleBuffer::of(key.as_bytes()),
                        &mut out,
                    )
                };
                ok.then(|| copy(out))
            }
            ["xds", "route_name"] => attribute_string(abi::ATTR_XDS_ROUTE_NAME),
            ["source", "address"] => attribute_string(abi::ATTR_SOURCE_ADDRESS),
            ["response", "code"] => {
                attribute_int(abi::ATTR_RESPONSE_CODE).map(|c| c.to_le_bytes().to_vec())
            }
            ["response", "code_details"] => attribute_string(abi::ATTR_RESPONSE_CODE_DETAILS),
            // No other property is read by the stages in the native form (a config that would
            // need one is refused at load, see `support`).
            _ => None,
        }
    }

    fn set_property(&self, key: &str, value: &[u8]) {
        let filter = current();
        if filter.is_null() {
            return;
        }
        let full = filter_state_key(key);
        // SAFETY: `filter` is the current hook's live `filter_envoy`; both buffers live for
        // the call and Envoy copies them.
        let ok = unsafe {
            abi::envoy_dynamic_module_callback_http_set_filter_state_bytes(
                filter,
                ModuleBuffer::of(full.as_bytes()),
                ModuleBuffer::of(value),
            )
        };
        if !ok {
            log_line(LogLevel::Warn, &format!("set_property({key}) failed"));
        }
    }

    fn set_request_header(&self, name: &str, value: &[u8]) {
        set(Side::Request, name, Some(value));
    }

    fn remove_request_header(&self, name: &str) {
        set(Side::Request, name, None);
    }

    fn send_reply(&self, reply: &Reply) {
        DEFERRED.with(|d| d.borrow_mut().reply = Some(reply.clone()));
    }

    fn now_unix(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }

    fn define_counter(&self, name: &str) -> Option<u32> {
        DEFINED
            .with(|d| d.borrow().as_ref().and_then(|m| m.get(name).copied()))
            .and_then(|id| u32::try_from(id).ok())
    }

    fn increment_counter(&self, id: u32, by: i64) {
        if let (Ok(id), Ok(by)) = (usize::try_from(id), u64::try_from(by)) {
            increment(id, by);
        }
    }

    fn log(&self, level: LogLevel, message: &str) {
        log_line(level, message);
    }

    fn headers(&self, side: Side) -> Vec<(String, Vec<u8>)> {
        let filter = current();
        if filter.is_null() {
            return Vec::new();
        }
        // SAFETY: `filter` is the current hook's live `filter_envoy`.
        let n = unsafe {
            abi::envoy_dynamic_module_callback_http_get_headers_size(filter, header_type(side))
        };
        if n == 0 {
            return Vec::new();
        }
        let mut raw = vec![EnvoyHeader::EMPTY; n];
        // SAFETY: `raw` has room for the `n` headers Envoy just said the map has.
        let ok = unsafe {
            abi::envoy_dynamic_module_callback_http_get_headers(
                filter,
                header_type(side),
                raw.as_mut_ptr(),
            )
        };
        if !ok {
            return Vec::new();
        }
        copy_headers(raw.as_ptr(), raw.len())
    }

    fn set_header(&self, side: Side, name: &str, value: &[u8]) {
        set(side, name, Some(value));
    }

    fn add_header(&self, side: Side, name: &str, value: &[u8]) {
        let filter = current();
        if !filter.is_null() {
            add(filter, side, name, value);
        }
    }

    fn remove_header(&self, side: Side, name: &str) {
        set(side, name, None);
    }

    fn header_edits_are_cheap(&self) -> bool {
        // A callback per edit, no VM crossing: cheaper than reading the map to replace it.
        true
    }

    fn replace_headers(&self, side: Side, headers: &[(String, Vec<u8>)]) {
        // Only what differs crosses to Envoy (each callback costs; a map replaced whole would
        // be one per header): names no longer there are removed, a name whose values changed
        // is set to its first value and given the others, in order.
        let old = self.headers(side);
        for (name, _) in &old {
            if !headers.iter().any(|(k, _)| k == name) {
                set(side, name, None);
            }
        }
        let mut done: Vec<&str> = Vec::new();
        for (name, _) in headers {
            if done.contains(&name.as_str()) {
                continue;
            }
            done.push(name);
            let values = |map: &[(String, Vec<u8>)]| -> Vec<Vec<u8>> {
                map.iter()
                    .filter(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
                    .collect()
            };
            let new = values(headers);
            if new == values(&old) {
                continue;
            }
            let mut rest = new.iter();
            if let Some(first) = rest.next() {
                set(side, name, Some(first));
            }
            for v in rest {
                self.add_header(side, name, v);
            }
        }
    }

    fn body(&self, side: Side, start: usize, size: usize) -> Option<Vec<u8>> {
        let body = whole_body(side);
        let end = start.saturating_add(size).min(body.len());
        body.get(start..end).map(<[u8]>::to_vec)
    }

    fn set_body(&self, side: Side, start: usize, size: usize, new: &[u8]) {
        let filter = current();
        if filter.is_null() {
            return;
        }
        let old = whole_body(side);
        let from = start.min(old.len());
        let to = start.saturating_add(size).min(old.len());
        let mut body = old.get(..from).map(<[u8]>::to_vec).unwrap_or_default();
        body.extend_from_slice(new);
        body.extend_from_slice(old.get(to..).unwrap_or_default());
        let (buffered, received) = body_types(side);
        let same = received_is_buffered(filter, side);
        let in_body = IN_BODY.with(Cell::get) == Some(side);
        // The new body goes where Envoy takes the stream's body from next: the received chunk
        // in a body hook (Envoy moves it after what is buffered), else the buffer.
        let target = if in_body && !same { received } else { buffered };
        drain(filter, buffered);
        if in_body && !same {
            drain(filter, received);
        }
        if !body.is_empty() {
            // SAFETY: `filter` is the current hook's live `filter_envoy`; `body` lives for the
            // call and Envoy copies it.
            let ok = unsafe {
                abi::envoy_dynamic_module_callback_http_append_body(
                    filter,
                    target,
                    ModuleBuffer::of(&body),
                )
            };
            if !ok {
                log_line(LogLevel::Warn, "replacing the body failed");
            }
        }
    }

    fn shared_data(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        shared::store().get(&namespaced(key))
    }

    fn set_shared_data(&self, key: &str, value: &[u8], cas: Option<u32>) -> SetResult {
        shared::store().set(&namespaced(key), value, cas)
    }

    fn shared_data_cas(&self, key: &str) -> Option<u32> {
        shared::store().cas(&namespaced(key))
    }

    fn reset_request(&self) {
        DEFERRED.with(|d| d.borrow_mut().reset = true);
    }

    fn resume_request(&self) -> bool {
        DEFERRED.with(|d| d.borrow_mut().resume = true);
        true
    }

    fn calls_from_root(&self) -> bool {
        root().is_none_or(|r| r.calls())
    }

    fn http_call(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
        timeout: std::time::Duration,
    ) -> Result<u32, String> {
        let filter = current();
        if filter.is_null() {
            return match root() {
                Some(root) => root.http_call(cluster, headers, body, timeout),
                None => Err("no stream to call from".to_string()),
            };
        }
        let raw = module_headers(headers);
        let mut id = 0u64;
        let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        // SAFETY: `filter` is the current hook's live `filter_envoy`; the cluster, headers and
        // body point into live values for the call (Envoy copies them); `id` is a valid place.
        let result = unsafe {
            abi::envoy_dynamic_module_callback_http_filter_http_callout(
                filter,
                &mut id,
                ModuleBuffer::of(cluster.as_bytes()),
                raw.as_ptr(),
                raw.len(),
                ModuleBuffer::of(body.unwrap_or_default()),
                timeout_ms,
            )
        };
        if result != abi::CALLOUT_SUCCESS {
            return Err(format!("Envoy refused the callout (result {result})"));
        }
        u32::try_from(id).map_err(|_| format!("callout id {id} out of range"))
    }

    /// A unary gRPC call as an HTTP/2 stream to the cluster (the ABI has no gRPC client): the
    /// message framed as gRPC, the answer gathered by the stream hooks (`crate::grpc`).
    fn grpc_call(
        &self,
        cluster: &str,
        service: &str,
        method: &str,
        message: &[u8],
        timeout: std::time::Duration,
    ) -> Result<u32, String> {
        let filter = current();
        if filter.is_null() {
            return Err("no stream to call from".to_string());
        }
        let path = format!("/{service}/{method}");
        let pairs: [(&str, &str); 5] = [
            (":method", "POST"),
            (":path", &path),
            (":authority", cluster),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
        ];
        let raw = module_headers(&pairs);
        let body = crate::grpc::frame(message).ok_or("the message is too large")?;
        let mut id = 0u64;
        let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        // SAFETY: `filter` is the current hook's live `filter_envoy`; the cluster, headers and
        // body point into live values for the call (Envoy copies them); `id` is a valid place.
        let result = unsafe {
            abi::envoy_dynamic_module_callback_http_filter_start_http_stream(
                filter,
                &mut id,
                ModuleBuffer::of(cluster.as_bytes()),
                raw.as_ptr(),
                raw.len(),
                ModuleBuffer::of(&body),
                true,
                timeout_ms,
            )
        };
        if result != abi::CALLOUT_SUCCESS {
            return Err(format!("Envoy refused the stream (result {result})"));
        }
        u32::try_from(id).map_err(|_| format!("stream id {id} out of range"))
    }

    fn grpc_response_body(&self, size: usize) -> Option<Vec<u8>> {
        GRPC_MESSAGE.with(|m| {
            let m = m.borrow();
            let body = m.as_ref()?;
            body.get(..size.min(body.len())).map(<[u8]>::to_vec)
        })
    }

    fn http_call_response_header(&self, name: &str) -> Option<String> {
        ANSWER.with(|a| {
            let a = a.borrow();
            let values: Vec<String> = a
                .as_ref()?
                .headers
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
                .collect();
            (!values.is_empty()).then(|| values.join(","))
        })
    }

    fn http_call_response_body(&self, size: usize) -> Option<Vec<u8>> {
        ANSWER.with(|a| {
            let a = a.borrow();
            let body = &a.as_ref()?.body;
            body.get(..size.min(body.len())).map(<[u8]>::to_vec)
        })
    }
}
