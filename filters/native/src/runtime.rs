//! The hooks Envoy calls, for any list of stages: kit's stages run as they run in the Wasm root
//! (`kit::runtime`), over [`NativeHost`].
//!
//! Threads: Envoy creates and destroys a config on the main thread and runs streams on workers,
//! concurrently. The stages are `Rc`-based (one VM, one thread, in Wasm), so the config object
//! keeps only what is `Sync`: the validated config bytes, the counter ids Envoy gave, the
//! module's name. Each worker builds its own stages from those bytes the first time it serves
//! that config (a thread-local keyed by the config's id) and keeps them while the config lives:
//! one copy of the stages per worker, as Envoy runs one Wasm VM per worker.
//!
//! Failure: no panic leaves a hook (every hook runs under `catch_unwind`; the native modules are
//! built with `panic = "unwind"`, see the `native` profile). A panic inside a stage fails the
//! request closed: a 500 problem reply on the request side, a reset on the response side (the
//! response may already be on its way), a count on `apim.<module>.failed_closed`, an error
//! line; the stream's stages are not called again.
//!
//! Timers: the HTTP filter ABI has no per-worker timer, so a stage's periodic work (scope-authz
//! flushing its batched counts, refreshing its clock and its remote JWKS) runs on its worker at
//! the end of every stream instead, and before the worker's first; the main thread keeps a copy
//! of the stages whose periodic work runs on the config's scheduler, and the callouts of root
//! work go through the config (see [`crate::root`]).
//!
//! The hook functions take the raw pointers Envoy passes and are `pub` only so that the hooks
//! `export_module!` generates in a module package can forward to them; nothing else calls them.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

use crate::abi::{self, EnvoyBuffer};
use crate::host::{self, NativeHost};
use crate::root::{self, Relay};
use kit::config_error::ConfigError;
use kit::denial::{Denial, Format};
use kit::host::{Host, LogLevel, Side};
use kit::metrics::Counters;
use kit::stage::{self, Chain, Flow, RequestHost, StageSpec};
use std::cell::RefCell;
use std::ffi::{c_char, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

static HOST: NativeHost = NativeHost;

/// The largest callout answer body copied for a request's stages: transform's largest
/// `max_body_bytes`; a larger answer is handed over empty, with its size, and refused by it.
const MAX_STREAM_ANSWER_BYTES: usize = 16 * 1024 * 1024;

/// A module: its name in logs and the stages it can run, in order (as `kit::runtime::Module`).
pub trait Module: 'static {
    const NAME: &'static str;
    const SPECS: &'static [StageSpec];
}

/// A config Envoy accepted (what `config_new` returns): plain data, shared by every worker.
struct Config {
    id: u64,
    /// The prefix of its shared-data keys, from the filter's `filter_name` (see `host::enter`),
    /// made once here rather than per access.
    namespace: String,
    name: &'static str,
    specs: &'static [StageSpec],
    bytes: Vec<u8>,
    /// Counter name → Envoy id, for every stage of the config.
    counters: Vec<(String, usize)>,
    /// `apim.<module>.failed_closed`.
    failed: Option<usize>,
    format: Format,
    /// Cleared when Envoy destroys the config: workers then drop their stages for it.
    alive: Arc<AtomicBool>,
    /// Root work's callouts, counters and scheduler.
    relay: Arc<Relay>,
}

/// One worker's stages for one config.
struct Worker {
    config_id: u64,
    alive: Arc<AtomicBool>,
    stages: stage::Configured,
    relay: Arc<Relay>,
    namespace: Rc<str>,
}

thread_local! {
    static WORKERS: RefCell<Vec<Rc<RefCell<Worker>>>> = const { RefCell::new(Vec::new()) };
}

/// One stream (what `new` returns). Only shared references to it exist; the stream state is
/// borrowed for the length of one hook, and a hook that finds it borrowed (Envoy calling back
/// into this filter from inside one of its own hooks) leaves it alone.
struct Filter {
    namespace: Rc<str>,
    stream: RefCell<Stream>,
    /// gRPC calls in flight (HTTP streams), by stream id: what each has received.
    grpc: RefCell<std::collections::HashMap<u64, crate::grpc::Answer>>,
}

struct Stream {
    /// `None`: the worker could not build the stages (unreachable: the config was validated).
    chain: Option<Chain>,
    host: RequestHost<'static>,
    worker: Option<Rc<RefCell<Worker>>>,
    name: &'static str,
    format: Format,
    failed_id: Option<usize>,
    /// The request headers went on upstream: Envoy no longer lets them be read or edited.
    headers_released: bool,
    /// A stage panicked: the stream was failed closed and its stages are not called again.
    failed: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Request,
    Response,
    /// The stream is over (`stream_complete`): nothing left to refuse or reset.
    Log,
}

static NEXT_CONFIG_ID: AtomicU64 = AtomicU64::new(1);

/// `envoy_dynamic_module_on_program_init`.
pub fn program_init() -> *const c_char {
    abi::ABI_VERSION.as_ptr()
}

/// `envoy_dynamic_module_on_http_filter_config_new`: NULL refuses the config (after the same
/// line the Wasm form logs).
pub fn config_new<M: Module>(
    config_envoy: *mut c_void,
    name: EnvoyBuffer,
    config: EnvoyBuffer,
) -> *const c_void {
    let made = catch_unwind(AssertUnwindSafe(|| {
        let bytes = host::copy(config);
        let namespace = String::from_utf8_lossy(&host::copy(name)).into_owned();
        match load(M::NAME, M::SPECS, config_envoy, namespace, bytes) {
            Ok(config) => Box::into_raw(Box::new(config))
                .cast_const()
                .cast::<c_void>(),
            Err(e) => {
                kit::config_refusal::log(&HOST, M::NAME, &e);
                std::ptr::null()
            }
        }
    }));
    made.unwrap_or_else(|_| {
        host::log_line(
            LogLevel::Error,
            &format!(
                "{}: invalid configuration: (whole config): the module failed while reading it",
                M::NAME
            ),
        );
        std::ptr::null()
    })
}

fn load(
    name: &'static str,
    specs: &'static [StageSpec],
    config_envoy: *mut c_void,
    namespace: String,
    bytes: Vec<u8>,
) -> Result<Config, ConfigError> {
    let mut stages = stage::parse_config(specs, &bytes)?;
    crate::support::check(specs, &bytes)?;
    let mut counters = Vec::new();
    for (index, stage) in &stages {
        let spec = specs.get(*index);
        let stage_name = spec.map_or(name, |s| s.name);
        for w in stage.warnings() {
            HOST.log(LogLevel::Warn, &format!("{stage_name}: {w}"));
        }
        let fixed = spec.map(|s| (s.counter_names)()).unwrap_or_default();
        for counter in fixed.into_iter().chain(stage.config_counter_names()) {
            if let Some(id) = host::define_counter(config_envoy, &counter) {
                counters.push((counter, id));
            }
        }
    }
    let section = match specs {
        [one] => one.section,
        _ => name,
    };
    let failed = host::define_counter(config_envoy, &format!("apim.{section}.failed_closed"));
    // Activated once here, before any worker: what the stages keep in shared data (quota's
    // slots) exists before the first request, whichever worker serves it.
    let namespace = host::shared_prefix(&namespace);
    let ns: Rc<str> = Rc::from(namespace.as_str());
    host::enter(std::ptr::null_mut(), &ns, || {
        activate(specs, &counters, &mut stages);
    });
    let id = NEXT_CONFIG_ID.fetch_add(1, Ordering::Relaxed);
    let relay = Arc::new(Relay::new(config_envoy));
    // The activated stages stay on the main thread for root work (remote JWKS).
    root::keep_main(id, stages, &relay);
    Ok(Config {
        id,
        relay,
        namespace,
        name,
        specs,
        bytes,
        counters,
        failed,
        format: specs.first().map_or(Format::Problem, |s| s.format),
        alive: Arc::new(AtomicBool::new(true)),
    })
}

fn activate(specs: &[StageSpec], counters: &[(String, usize)], stages: &mut stage::Configured) {
    host::with_defined_counters(counters, || {
        for (index, stage) in stages.iter_mut() {
            let names = specs
                .get(*index)
                .map(|s| (s.counter_names)())
                .unwrap_or_default();
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            let c = Rc::new(Counters::define(&HOST, &names));
            stage.activate(&HOST, c);
        }
    });
}

/// `envoy_dynamic_module_on_http_filter_config_destroy`.
pub fn config_destroy(config: *const c_void) {
    if config.is_null() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `config` is the `Box<Config>` `config_new` leaked, and Envoy destroys it
        // once, after every stream that used it.
        let config = unsafe { Box::from_raw(config.cast_mut().cast::<Config>()) };
        config.alive.store(false, Ordering::Release);
        root::drop_main(config.id, &config.relay);
    }));
}

/// This worker's stages for `config`, built on first use (activated as stream `filter_envoy`).
fn worker_for(config: &Config, filter_envoy: *mut c_void) -> Option<Rc<RefCell<Worker>>> {
    WORKERS.with(|workers| {
        let mut workers = workers.borrow_mut();
        workers.retain(|w| w.borrow().alive.load(Ordering::Acquire));
        if let Some(w) = workers.iter().find(|w| w.borrow().config_id == config.id) {
            return Some(Rc::clone(w));
        }
        let mut stages = stage::parse_config(config.specs, &config.bytes).ok()?;
        let namespace: Rc<str> = Rc::from(config.namespace.as_str());
        host::enter(filter_envoy, &namespace, || {
            activate(config.specs, &config.counters, &mut stages);
        });
        let worker = Rc::new(RefCell::new(Worker {
            config_id: config.id,
            alive: Arc::clone(&config.alive),
            stages,
            relay: Arc::clone(&config.relay),
            namespace,
        }));
        tick(&worker);
        workers.push(Rc::clone(&worker));
        Some(worker)
    })
}

/// The stages' periodic work, on this worker (root work: no stream is current).
fn tick(worker: &Rc<RefCell<Worker>>) {
    if let Ok(mut w) = worker.try_borrow_mut() {
        let w = &mut *w;
        root::worker_tick(&w.relay, &w.namespace, &mut w.stages);
    }
}

/// The config of a config hook, if it is one of ours.
fn config_ref<'a>(config: *const c_void) -> Option<&'a Config> {
    // SAFETY: a non-null `config` is the live `Box<Config>` from `config_new` (Envoy calls the
    // config hooks only between `config_new` and `config_destroy`); only shared references.
    (!config.is_null()).then(|| unsafe { &*config.cast::<Config>() })
}

/// `envoy_dynamic_module_on_http_filter_config_scheduled` (main thread): root work is due.
pub fn config_scheduled(config: *const c_void) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        if let Some(config) = config_ref(config) {
            let namespace: Rc<str> = Rc::from(config.namespace.as_str());
            root::main_event(config.id, &config.relay, &namespace);
        }
    }));
}

/// `envoy_dynamic_module_on_http_filter_config_http_callout_done` (main thread): the answer of
/// a callout the main thread's stages sent.
pub fn config_http_callout_done(
    config: *const c_void,
    id: u64,
    result: u32,
    headers: *const abi::EnvoyHeader,
    headers_len: usize,
    body: *const EnvoyBuffer,
    body_len: usize,
) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        let Some(config) = config_ref(config) else {
            return;
        };
        let (answer, size) = host::callout_result(
            result,
            headers,
            headers_len,
            body,
            body_len,
            root::MAX_ANSWER_BYTES,
        );
        if let Some((token, answer, size)) = config.relay.answered(id, answer, size) {
            let namespace: Rc<str> = Rc::from(config.namespace.as_str());
            root::main_answer(config.id, &config.relay, &namespace, token, answer, size);
        }
    }));
}

/// `envoy_dynamic_module_on_http_filter_new`: NULL makes Envoy answer 500 (fail closed).
pub fn filter_new(config: *const c_void, filter_envoy: *mut c_void) -> *const c_void {
    if config.is_null() {
        return std::ptr::null();
    }
    let made = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `config` is the live `Box<Config>` from `config_new` (Envoy keeps it until
        // every stream made from it is destroyed); only shared references are taken.
        let config = unsafe { &*config.cast::<Config>() };
        let worker = worker_for(config, filter_envoy);
        // The worker's copy: no allocation per stream.
        let namespace: Rc<str> = match &worker {
            Some(w) => Rc::clone(&w.borrow().namespace),
            None => Rc::from(config.namespace.as_str()),
        };
        host::enter(filter_envoy, &namespace, || {
            // As the Wasm runtime: shared by several stages, a header snapshot when one of
            // them reads the whole map.
            let host = match &worker {
                Some(w) => RequestHost::for_stages(&HOST, &w.borrow().stages),
                None => RequestHost::new(&HOST, false, false),
            };
            let chain = worker.as_ref().map(|w| {
                Chain::new(
                    w.borrow()
                        .stages
                        .iter()
                        .map(|(_, s)| s.exchange(&host))
                        .collect(),
                )
            });
            let filter = Filter {
                grpc: RefCell::default(),
                namespace: Rc::clone(&namespace),
                stream: RefCell::new(Stream {
                    chain,
                    host,
                    worker,
                    name: config.name,
                    format: config.format,
                    failed_id: config.failed,
                    headers_released: false,
                    failed: false,
                }),
            };
            Box::into_raw(Box::new(filter))
                .cast_const()
                .cast::<c_void>()
        })
    }));
    made.unwrap_or(std::ptr::null())
}

/// `envoy_dynamic_module_on_http_filter_destroy`.
pub fn filter_destroy(filter: *const c_void) {
    if filter.is_null() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `filter` is the `Box<Filter>` `filter_new` leaked; Envoy destroys it once,
        // after its last hook returned.
        drop(unsafe { Box::from_raw(filter.cast_mut().cast::<Filter>()) });
    }));
}

impl Stream {
    fn request_side(&mut self, flow: Flow) -> u32 {
        // The stages' header edits reach Envoy before it goes on (a local reply needs none).
        if flow != Flow::Done {
            self.host.flush();
        }
        match flow {
            Flow::Continue => {
                if !self.headers_released {
                    self.headers_released = true;
                    self.host.forget_headers();
                }
                abi::CONTINUE
            }
            Flow::Done | Flow::WaitBody | Flow::WaitCallout(_) => abi::STOP,
        }
    }
}

fn response_side(flow: Flow) -> u32 {
    match flow {
        Flow::Continue => abi::CONTINUE,
        Flow::Done | Flow::WaitBody | Flow::WaitCallout(_) => abi::STOP,
    }
}

/// Runs one hook: the stream made current, the stages guarded, then the reply or reset they
/// asked for made (after the stream state is released: Envoy calls our encoder hooks for the
/// reply before `send_response` returns).
fn run(
    filter_envoy: *mut c_void,
    filter: *const c_void,
    phase: Phase,
    f: impl FnOnce(&mut Stream) -> u32,
) -> u32 {
    if filter.is_null() {
        return abi::CONTINUE;
    }
    // SAFETY: `filter` is the live `Box<Filter>` from `filter_new` (Envoy destroys it only
    // after its last hook returned); only shared references are taken.
    let namespace = Rc::clone(&unsafe { &*filter.cast::<Filter>() }.namespace);
    host::enter(filter_envoy, &namespace, || {
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: as above.
            let filter = unsafe { &*filter.cast::<Filter>() };
            let Ok(mut stream) = filter.stream.try_borrow_mut() else {
                return None;
            };
            if stream.failed {
                return Some(match phase {
                    Phase::Request => abi::STOP,
                    Phase::Response | Phase::Log => abi::CONTINUE,
                });
            }
            Some(f(&mut stream))
        }));
        let status = match outcome {
            Ok(Some(status)) => status,
            Ok(None) => abi::CONTINUE,
            Err(_) => {
                catch_unwind(AssertUnwindSafe(|| fail_closed(filter, phase))).unwrap_or(abi::STOP)
            }
        };
        // Nothing below touches the filter: the reply or reset may end the stream.
        let deferred = host::take_deferred();
        let _ = catch_unwind(AssertUnwindSafe(|| {
            if let Some(reply) = &deferred.reply {
                host::send_response(reply);
            }
            if deferred.reset {
                host::reset_stream();
            } else if deferred.resume && deferred.reply.is_none() {
                host::continue_decoding();
            }
        }));
        status
    })
}

/// A stage panicked: fail the stream closed (see the module docs).
fn fail_closed(filter: *const c_void, phase: Phase) -> u32 {
    // SAFETY: as in `run`; the panicking hook's borrow was released by the unwind.
    let filter = unsafe { &*filter.cast::<Filter>() };
    let Ok(mut stream) = filter.stream.try_borrow_mut() else {
        return abi::STOP;
    };
    stream.failed = true;
    if let Some(id) = stream.failed_id {
        host::increment(id, 1);
    }
    let what = match phase {
        Phase::Request => "the request was refused (500)",
        Phase::Response => "the stream was reset",
        Phase::Log => "at the end of the stream",
    };
    HOST.log(
        LogLevel::Error,
        &format!("{}: internal failure in a stage; {what}", stream.name),
    );
    let _ = host::take_deferred();
    match phase {
        Phase::Request => {
            let reply = Denial::new(
                500,
                "internal_error",
                "Internal error",
                format!(
                    "The {} filter failed while processing the request.",
                    stream.name
                ),
            )
            .render(stream.format);
            HOST.send_reply(&reply);
            abi::STOP
        }
        Phase::Response => {
            HOST.reset_request();
            abi::CONTINUE
        }
        Phase::Log => abi::CONTINUE,
    }
}

pub fn request_headers(fe: *mut c_void, fm: *const c_void, end_of_stream: bool) -> u32 {
    run(fe, fm, Phase::Request, |s| {
        s.host.next_event();
        let flow = match s.chain.as_mut() {
            Some(chain) => chain.on_request_headers(&s.host, end_of_stream),
            None => {
                HOST.send_reply(&stage::not_configured(s.name, s.format));
                Flow::Done
            }
        };
        s.request_side(flow)
    })
}

pub fn request_body(fe: *mut c_void, fm: *const c_void, end_of_stream: bool) -> u32 {
    run(fe, fm, Phase::Request, |s| {
        host::in_body(Side::Request, || {
            s.host.next_event();
            let size = host::body_size(Side::Request);
            let Some(chain) = s.chain.as_mut() else {
                return abi::CONTINUE;
            };
            let flow = chain.on_request_body(&s.host, size, end_of_stream);
            s.request_side(flow)
        })
    })
}

pub fn request_trailers(fe: *mut c_void, fm: *const c_void) -> u32 {
    run(fe, fm, Phase::Request, |s| {
        s.host.next_event();
        let Some(chain) = s.chain.as_mut() else {
            return abi::CONTINUE;
        };
        let flow = chain.on_request_trailers(&s.host);
        s.request_side(flow)
    })
}

pub fn response_headers(fe: *mut c_void, fm: *const c_void, end_of_stream: bool) -> u32 {
    run(fe, fm, Phase::Response, |s| {
        s.host.next_event();
        s.host.forget_headers();
        match s.chain.as_mut() {
            Some(chain) => response_side(chain.on_response_headers(&s.host, end_of_stream)),
            None => abi::CONTINUE,
        }
    })
}

pub fn response_body(fe: *mut c_void, fm: *const c_void, end_of_stream: bool) -> u32 {
    run(fe, fm, Phase::Response, |s| {
        host::in_body(Side::Response, || {
            s.host.next_event();
            let size = host::body_size(Side::Response);
            match s.chain.as_mut() {
                Some(chain) => response_side(chain.on_response_body(&s.host, size, end_of_stream)),
                None => abi::CONTINUE,
            }
        })
    })
}

pub fn response_trailers(fe: *mut c_void, fm: *const c_void) -> u32 {
    run(fe, fm, Phase::Response, |s| {
        s.host.next_event();
        match s.chain.as_mut() {
            Some(chain) => response_side(chain.on_response_trailers(&s.host)),
            None => abi::CONTINUE,
        }
    })
}

/// `envoy_dynamic_module_on_http_filter_http_callout_done`: the answer of a callout a stage
/// sent (transform's REST→GraphQL call), delivered to the chain as proxy-wasm delivers it.
#[allow(clippy::too_many_arguments)]
pub fn http_callout_done(
    fe: *mut c_void,
    fm: *const c_void,
    id: u64,
    result: u32,
    headers: *const abi::EnvoyHeader,
    headers_len: usize,
    body: *const EnvoyBuffer,
    body_len: usize,
) {
    // Bounded by the largest body a stage takes (transform's `max_body_bytes` limit).
    let (answer, body_size) = catch_unwind(AssertUnwindSafe(|| {
        host::callout_result(
            result,
            headers,
            headers_len,
            body,
            body_len,
            MAX_STREAM_ANSWER_BYTES,
        )
    }))
    .unwrap_or_default();
    let Ok(token) = u32::try_from(id) else {
        return;
    };
    host::with_answer(answer, || {
        deliver_callout(fe, fm, token, kit::stage::Callout::Http { body_size });
    });
}

/// Hands a callout's answer to the stream's chain (the answer itself readable through the
/// host while this runs); a chain it released goes on upstream.
fn deliver_callout(fe: *mut c_void, fm: *const c_void, token: u32, callout: kit::stage::Callout) {
    let _ = run(fe, fm, Phase::Request, |s| {
        s.host.next_event();
        let Some(chain) = s.chain.as_mut() else {
            return abi::CONTINUE;
        };
        if let Some(Flow::Continue) = chain.on_callout(&s.host, token, callout) {
            let status = s.request_side(Flow::Continue);
            HOST.resume_request();
            return status;
        }
        abi::CONTINUE
    });
}

/// Runs `f` on the gRPC answer of stream `id` of filter `fm` (created on first use).
fn with_grpc_answer(fm: *const c_void, id: u64, f: impl FnOnce(&mut crate::grpc::Answer)) {
    if fm.is_null() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `fm` is the live `Box<Filter>` from `filter_new`; only shared references.
        let filter = unsafe { &*fm.cast::<Filter>() };
        if let Ok(mut calls) = filter.grpc.try_borrow_mut() {
            f(calls.entry(id).or_default());
        }
    }));
}

pub fn http_stream_headers(
    _fe: *mut c_void,
    fm: *const c_void,
    id: u64,
    headers: *const abi::EnvoyHeader,
    len: usize,
    _end: bool,
) {
    let headers = host::copy_headers(headers, len);
    with_grpc_answer(fm, id, |a| a.headers = headers);
}

pub fn http_stream_data(
    _fe: *mut c_void,
    fm: *const c_void,
    id: u64,
    chunks: *const EnvoyBuffer,
    len: usize,
    _end: bool,
) {
    let mut data = Vec::new();
    host::copy_chunks(chunks, len, &mut data);
    with_grpc_answer(fm, id, |a| a.add_data(&data));
}

pub fn http_stream_trailers(
    _fe: *mut c_void,
    fm: *const c_void,
    id: u64,
    trailers: *const abi::EnvoyHeader,
    len: usize,
) {
    let trailers = host::copy_headers(trailers, len);
    with_grpc_answer(fm, id, |a| a.trailers = trailers);
}

/// A gRPC call's stream completed (or was reset): its answer goes to the chain as proxy-wasm
/// delivers a gRPC answer.
pub fn http_stream_end(fe: *mut c_void, fm: *const c_void, id: u64, reset: bool) {
    if fm.is_null() {
        return;
    }
    let answer = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `fm` is the live `Box<Filter>` from `filter_new`; only shared references.
        let filter = unsafe { &*fm.cast::<Filter>() };
        filter
            .grpc
            .try_borrow_mut()
            .ok()
            .and_then(|mut calls| calls.remove(&id))
    }))
    .ok()
    .flatten()
    .unwrap_or_default();
    let (status, message) = if reset {
        (crate::grpc::UNAVAILABLE, Vec::new())
    } else {
        answer.outcome()
    };
    let Ok(token) = u32::try_from(id) else {
        return;
    };
    let size = message.len();
    host::with_grpc_message(message, || {
        deliver_callout(fe, fm, token, kit::stage::Callout::Grpc { status, size });
    });
}

pub fn stream_complete(fe: *mut c_void, fm: *const c_void) {
    let _ = run(fe, fm, Phase::Log, |s| {
        s.host.next_event();
        if let Some(chain) = s.chain.as_mut() {
            chain.on_log(&s.host);
        }
        if let Some(worker) = &s.worker {
            tick(worker);
        }
        abi::CONTINUE
    });
}
