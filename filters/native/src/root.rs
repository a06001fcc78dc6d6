//! Root work in the native form: what a stage does outside any request (scope-authz fetching
//! and refreshing a remote JWKS, flushing its batched counts).
//!
//! A Wasm VM has a timer and callouts of its own on every worker. Envoy 1.40's HTTP-filter ABI
//! has neither per worker; per config, it has callouts from the main thread and a scheduler
//! whose events run there (`commit` may be called from any thread). So, per config:
//!
//! - **The main thread keeps a copy of the stages**: the one `config_new` validated and
//!   activated ([`keep_main`]). Its periodic work runs on a scheduler event every [`TICK`],
//!   committed by one module thread, the [`ticker`], which does nothing else (the first event
//!   is committed at once, so a remote JWKS is fetched before the first request). Its callouts
//!   go out at once (`config_http_callout`) and their answers come back to it on the main
//!   thread.
//! - **A worker's stages** run their periodic work when a stream ends (see `runtime`): they
//!   install what shared data holds and flush their counts, but send no callout
//!   (`Host::calls_from_root` is false there); what they want fetched they ask for through
//!   shared data (scope-authz's unknown-`kid` stamp).
//! - **Counters** are incremented through the config, as no stream is current.
//!
//! The copies coordinate through shared data (process memory here) with the same fetch lease
//! as Wasm's workers. Everything held is bounded: [`MAX_PENDING`] callouts per config,
//! [`MAX_ANSWER_BYTES`] of an answer's body (`host::callout_result`).
#![allow(clippy::not_unsafe_ptr_arg_deref)]

use crate::abi::{self, ModuleBuffer};
use crate::host::{self, CalloutAnswer, NativeHost};
use kit::stage::{self, Callout};
use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::atomic::{AtomicPtr, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// How often the main thread's stages run their periodic work (scope-authz's own period).
pub const TICK: Duration = Duration::from_millis(500);

/// Callouts one config may have in flight (or answered inline, not yet delivered).
pub const MAX_PENDING: usize = 64;

/// The largest answer body kept for a stage (a JWKS is refused above 256 KiB).
pub const MAX_ANSWER_BYTES: usize = 1024 * 1024;

static HOST: NativeHost = NativeHost;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock only means a panic elsewhere while it was held; the data is plain.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[derive(Default)]
struct Pending {
    /// Envoy's callout id → the stage's token.
    sent: HashMap<u64, u32>,
    /// Answers that came inline, inside `config_http_callout` (Envoy failing the callout at
    /// once), by callout id: kept until the id is registered.
    early: Vec<(u64, CalloutAnswer, usize)>,
    /// Answers to deliver on the next event: (token, answer, body size).
    answered: Vec<(u32, CalloutAnswer, usize)>,
}

impl Pending {
    fn len(&self) -> usize {
        self.sent.len() + self.early.len() + self.answered.len()
    }

    /// Records the token waiting for callout `id`; an answer that already came is kept for
    /// the next event. Whether it had.
    fn register(&mut self, id: u64, token: u32) -> bool {
        let Some(at) = self.early.iter().position(|(early, ..)| *early == id) else {
            self.sent.insert(id, token);
            return false;
        };
        let (_, answer, size) = self.early.swap_remove(at);
        self.answered.push((token, answer, size));
        true
    }
}

/// The scheduler of a config (its pointer), guarded: committed from the ticker thread,
/// deleted on the main thread when Envoy destroys the config.
struct Scheduler(*mut c_void);

// SAFETY: the pointer is only used under the `Mutex` that holds it: `commit` is thread-safe in
// Envoy (it posts to the main dispatcher), and `delete` happens once, under the same lock.
unsafe impl Send for Scheduler {}

/// A config's root services: its Envoy pointer (callouts, counters) and its scheduler.
pub struct Relay {
    config_envoy: AtomicPtr<c_void>,
    /// Null once the config is destroyed (then nothing is committed).
    scheduler: Mutex<Scheduler>,
    pending: Mutex<Pending>,
    next_token: AtomicU32,
}

impl Relay {
    /// The relay of the config Envoy is creating (main thread, in `config_new`).
    pub fn new(config_envoy: *mut c_void) -> Self {
        let scheduler = if config_envoy.is_null() {
            std::ptr::null_mut()
        } else {
            // SAFETY: `config_envoy` is the pointer Envoy gave `config_new`, which is running;
            // the scheduler is deleted by `close`, when Envoy destroys the config.
            unsafe {
                abi::envoy_dynamic_module_callback_http_filter_config_scheduler_new(config_envoy)
            }
        };
        Self {
            config_envoy: AtomicPtr::new(config_envoy),
            scheduler: Mutex::new(Scheduler(scheduler)),
            pending: Mutex::new(Pending::default()),
            next_token: AtomicU32::new(1),
        }
    }

    /// The config is being destroyed (main thread): nothing is committed or sent any more.
    pub fn close(&self) {
        self.config_envoy
            .store(std::ptr::null_mut(), Ordering::Release);
        let mut scheduler = lock(&self.scheduler);
        let ptr = std::mem::replace(&mut scheduler.0, std::ptr::null_mut());
        if !ptr.is_null() {
            // SAFETY: `ptr` came from `config_scheduler_new` and is deleted once (null is left
            // behind, under the lock every commit takes).
            unsafe { abi::envoy_dynamic_module_callback_http_filter_config_scheduler_delete(ptr) }
        }
    }

    /// Whether the config still lives (its scheduler is not deleted).
    fn live(&self) -> bool {
        !lock(&self.scheduler).0.is_null()
    }

    /// Commits a scheduler event: the main thread runs `runtime::config_scheduled` soon.
    /// Whether the config still lives.
    pub fn kick(&self) -> bool {
        let scheduler = lock(&self.scheduler);
        if scheduler.0.is_null() {
            return false;
        }
        // SAFETY: the scheduler is live (not yet deleted: `close` deletes it under this lock);
        // Envoy posts the event to the main dispatcher, so any thread may commit.
        unsafe {
            abi::envoy_dynamic_module_callback_http_filter_config_scheduler_commit(scheduler.0, 0)
        };
        true
    }

    fn increment(&self, id: usize, by: u64) {
        let config = self.config_envoy.load(Ordering::Acquire);
        if config.is_null() {
            return;
        }
        // SAFETY: `config` is the live config (root work runs between `config_new` and
        // `config_destroy`, on its streams or its events); Envoy's counters are atomic, so any
        // thread may add; no labels (null, 0).
        let _ = unsafe {
            abi::envoy_dynamic_module_callback_http_filter_config_increment_counter(
                config,
                id,
                std::ptr::null(),
                0,
                by,
            )
        };
    }

    /// Sends a callout from the main thread; its answer comes to `config_http_callout_done`.
    fn send(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        timeout_ms: u64,
    ) -> Result<u64, String> {
        let config = self.config_envoy.load(Ordering::Acquire);
        if config.is_null() {
            return Err("the config is gone".to_string());
        }
        let raw = host::module_headers(headers);
        let mut id = 0u64;
        // SAFETY: `config` is the live config and this runs on the main thread (a config
        // hook); the cluster, headers and body point into live values for the call (Envoy
        // copies them); `id` is a valid place to write.
        let result = unsafe {
            abi::envoy_dynamic_module_callback_http_filter_config_http_callout(
                config,
                &mut id,
                ModuleBuffer::of(cluster.as_bytes()),
                raw.as_ptr(),
                raw.len(),
                ModuleBuffer::of(body),
                timeout_ms,
            )
        };
        if result != abi::CALLOUT_SUCCESS {
            return Err(format!("Envoy refused the callout (result {result})"));
        }
        Ok(id)
    }

    /// A callout's answer arrived (main thread): the token to deliver it to now, or `None`
    /// when its id is not registered yet (kept until it is) or no more awaited.
    pub fn answered(
        &self,
        id: u64,
        answer: CalloutAnswer,
        size: usize,
    ) -> Option<(u32, CalloutAnswer, usize)> {
        let mut pending = lock(&self.pending);
        if let Some(token) = pending.sent.remove(&id) {
            return Some((token, answer, size));
        }
        if pending.len() < MAX_PENDING {
            pending.early.push((id, answer, size));
        }
        None
    }

    fn take_answered(&self) -> Vec<(u32, CalloutAnswer, usize)> {
        std::mem::take(&mut lock(&self.pending).answered)
    }
}

/// Root work running on this thread: whose config, and whether it is the main thread's.
#[derive(Clone)]
pub struct Context {
    relay: Arc<Relay>,
    main: bool,
}

impl Context {
    pub fn main(relay: &Arc<Relay>) -> Self {
        Self {
            relay: Arc::clone(relay),
            main: true,
        }
    }

    pub fn worker(relay: &Arc<Relay>) -> Self {
        Self {
            relay: Arc::clone(relay),
            main: false,
        }
    }

    /// Whether this root work sends callouts (only the main thread's does).
    pub fn calls(&self) -> bool {
        self.main
    }

    pub fn increment(&self, id: usize, by: u64) {
        self.relay.increment(id, by);
    }

    /// A stage's callout from root work, sent by the main thread's copy.
    pub fn http_call(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<u32, String> {
        if !self.main {
            return Err("a worker sends no callout outside a request".to_string());
        }
        if lock(&self.relay.pending).len() >= MAX_PENDING {
            return Err(format!("{MAX_PENDING} callouts are already pending"));
        }
        let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        let token = self.relay.next_token.fetch_add(1, Ordering::Relaxed);
        let id = self
            .relay
            .send(cluster, headers, body.unwrap_or_default(), timeout_ms)?;
        if lock(&self.relay.pending).register(id, token) {
            // Answered inline: delivered on the next event (the stage is running now).
            self.relay.kick();
        }
        Ok(token)
    }
}

/// Hands a root callout's answer to every stage of `stages` (each keeps only its own token).
fn deliver(stages: &mut stage::Configured, token: u32, answer: CalloutAnswer, size: usize) {
    host::with_answer(answer, || {
        for (_, stage) in stages.iter_mut() {
            stage.on_root_callout(&HOST, token, Callout::Http { body_size: size });
        }
    });
}

fn tick_all(stages: &mut stage::Configured) {
    for (_, stage) in stages.iter_mut() {
        if stage.tick_period().is_some() {
            stage.on_tick(&HOST);
        }
    }
}

/// The periodic work of a worker's `stages`, as root work.
pub fn worker_tick(
    relay: &Arc<Relay>,
    namespace: &std::rc::Rc<str>,
    stages: &mut stage::Configured,
) {
    if stages.iter().any(|(_, s)| s.tick_period().is_some()) {
        host::in_root(Context::worker(relay), namespace, || tick_all(stages));
    }
}

/// The main thread's copy of a config's stages.
struct MainStages {
    config_id: u64,
    stages: stage::Configured,
}

thread_local! {
    /// The main thread's copies of the stages, by config id.
    static MAIN: RefCell<Vec<MainStages>> = const { RefCell::new(Vec::new()) };
}

/// Keeps `stages` (validated and activated by `config_new`) as the main thread's copy for
/// config `config_id` when one of them has periodic work, and has the ticker drive it.
pub fn keep_main(config_id: u64, stages: stage::Configured, relay: &Arc<Relay>) {
    if !stages.iter().any(|(_, s)| s.tick_period().is_some()) {
        return;
    }
    MAIN.with(|m| m.borrow_mut().push(MainStages { config_id, stages }));
    relay.kick();
    ticker::drive(relay);
}

/// The config is destroyed (main thread): its copy is dropped, the ticker lets it go.
pub fn drop_main(config_id: u64, relay: &Relay) {
    relay.close();
    MAIN.with(|m| m.borrow_mut().retain(|s| s.config_id != config_id));
    ticker::release();
}

/// Runs `f` on the main thread's copy for `config_id`, if any.
fn with_main(config_id: u64, f: impl FnOnce(&mut MainStages)) {
    // Taken out while `f` runs: a stage's host call cannot reach back into this list.
    let taken = MAIN.with(|m| {
        let mut m = m.borrow_mut();
        let at = m.iter().position(|s| s.config_id == config_id)?;
        Some(m.swap_remove(at))
    });
    if let Some(mut main) = taken {
        f(&mut main);
        MAIN.with(|m| m.borrow_mut().push(main));
    }
}

/// A scheduler event (main thread): answers that came inline are delivered, then the main
/// stages run their periodic work.
pub fn main_event(config_id: u64, relay: &Arc<Relay>, namespace: &std::rc::Rc<str>) {
    let answers = relay.take_answered();
    with_main(config_id, |main| {
        host::in_root(Context::main(relay), namespace, || {
            for (token, answer, size) in answers {
                deliver(&mut main.stages, token, answer, size);
            }
            tick_all(&mut main.stages);
        });
    });
}

/// A main-thread callout's answer, delivered to the main stages.
pub fn main_answer(
    config_id: u64,
    relay: &Arc<Relay>,
    namespace: &std::rc::Rc<str>,
    token: u32,
    answer: CalloutAnswer,
    size: usize,
) {
    with_main(config_id, |main| {
        host::in_root(Context::main(relay), namespace, || {
            deliver(&mut main.stages, token, answer, size);
        });
    });
}

/// The one module thread: it commits an event for every config with main-thread stages every
/// [`TICK`] (the ABI offers no timer). It runs while such a config lives and is joined when
/// the last one is destroyed, so no module code runs once Envoy may unload the module.
mod ticker {
    use super::{lock, Relay, HOST, TICK};
    use kit::host::{Host, LogLevel};
    use std::sync::{Arc, Condvar, Mutex, Weak};
    use std::thread::JoinHandle;

    struct Ticked {
        relays: Vec<Weak<Relay>>,
        thread: Option<JoinHandle<()>>,
        /// Bumped when a thread is let go: a thread of an older generation stops.
        generation: u64,
    }

    static TICKED: Mutex<Ticked> = Mutex::new(Ticked {
        relays: Vec::new(),
        thread: None,
        generation: 0,
    });
    /// Wakes the thread early when the last config goes.
    static WAKE: Condvar = Condvar::new();

    /// Commits an event for `relay` every tick while it lives.
    pub fn drive(relay: &Arc<Relay>) {
        let mut t = lock(&TICKED);
        t.relays.push(Arc::downgrade(relay));
        if t.thread.is_some() {
            return;
        }
        let generation = t.generation;
        match std::thread::Builder::new()
            .name("apim-ticker".to_string())
            .spawn(move || run(generation))
        {
            Ok(handle) => t.thread = Some(handle),
            Err(e) => HOST.log(
                LogLevel::Warn,
                &format!("apim: no ticker thread ({e}): periodic work (JWKS refresh) runs only when a config is created"),
            ),
        }
    }

    /// A config was destroyed: the thread stops (and is joined) if no config is left.
    pub fn release() {
        let handle = {
            let mut t = lock(&TICKED);
            t.relays.retain(|r| r.upgrade().is_some_and(|r| r.live()));
            if !t.relays.is_empty() {
                return;
            }
            t.generation += 1;
            t.thread.take()
        };
        WAKE.notify_all();
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }

    fn run(generation: u64) {
        let mut t = lock(&TICKED);
        loop {
            if t.generation != generation {
                return;
            }
            t.relays.retain(|r| r.upgrade().is_some_and(|r| r.kick()));
            t = WAKE
                .wait_timeout(t, TICK)
                .map_or_else(|e| e.into_inner().0, |(guard, _)| guard);
        }
    }
}

/// Envoy's side of the callbacks this module calls, for the unit tests (the test binary has
/// no Envoy to resolve them against): a scheduler that counts commits, callouts that get ids
/// (or are refused for cluster `down`).
#[cfg(test)]
mod fake_envoy {
    use crate::abi::{ModuleBuffer, ModuleHeader};
    use std::ffi::c_void;
    use std::sync::atomic::{AtomicU64, Ordering};

    pub static COMMITS: AtomicU64 = AtomicU64::new(0);
    static NEXT_ID: AtomicU64 = AtomicU64::new(100);

    #[unsafe(no_mangle)]
    extern "C" fn envoy_dynamic_module_callback_http_filter_config_scheduler_new(
        _config: *mut c_void,
    ) -> *mut c_void {
        std::ptr::NonNull::<c_void>::dangling().as_ptr()
    }
    #[unsafe(no_mangle)]
    extern "C" fn envoy_dynamic_module_callback_http_filter_config_scheduler_commit(
        _scheduler: *mut c_void,
        _event_id: u64,
    ) {
        COMMITS.fetch_add(1, Ordering::Relaxed);
    }
    #[unsafe(no_mangle)]
    extern "C" fn envoy_dynamic_module_callback_http_filter_config_scheduler_delete(
        _scheduler: *mut c_void,
    ) {
    }
    #[unsafe(no_mangle)]
    extern "C" fn envoy_dynamic_module_callback_http_filter_config_http_callout(
        _config: *mut c_void,
        callout_id: *mut u64,
        cluster: ModuleBuffer,
        _headers: *const ModuleHeader,
        _headers_len: usize,
        _body: ModuleBuffer,
        _timeout_ms: u64,
    ) -> u32 {
        // SAFETY: the caller passes a live buffer for the call.
        let cluster = unsafe { std::slice::from_raw_parts(cluster.ptr, cluster.length) };
        if cluster == b"down" {
            return 2;
        }
        // SAFETY: the caller passes a valid place to write the id.
        unsafe { *callout_id = NEXT_ID.fetch_add(1, Ordering::Relaxed) };
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A live config (the fake Envoy never reads the pointer).
    fn live_relay() -> Arc<Relay> {
        Arc::new(Relay::new(std::ptr::NonNull::<c_void>::dangling().as_ptr()))
    }

    #[test]
    fn main_callouts_reach_their_token() {
        let r = live_relay();
        let main = Context::main(&r);
        let token = main
            .http_call("idp", &[(":path", "/jwks")], None, TICK)
            .unwrap();
        let id = *lock(&r.pending).sent.keys().next().unwrap();
        let got = r.answered(id, CalloutAnswer::default(), 0);
        assert_eq!(got.map(|(t, ..)| t), Some(token));
        // Answered twice (or never sent): kept as early, bounded, delivered to nobody.
        assert!(r.answered(id, CalloutAnswer::default(), 0).is_none());
        lock(&r.pending).early.clear();
        // Refused by Envoy: an error at once, nothing pending.
        assert!(main.http_call("down", &[], None, TICK).is_err());
        assert_eq!(lock(&r.pending).len(), 0);
    }

    #[test]
    fn an_inline_answer_waits_for_its_registration_and_an_event() {
        let r = live_relay();
        let commits = fake_envoy::COMMITS.load(Ordering::Relaxed);
        assert!(r
            .answered(
                7,
                CalloutAnswer {
                    headers: Vec::new(),
                    body: b"d".to_vec()
                },
                1
            )
            .is_none());
        assert!(lock(&r.pending).register(7, 3));
        assert!(!lock(&r.pending).register(8, 4), "no early answer for 8");
        let answered = r.take_answered();
        assert_eq!(
            answered.first().map(|(t, a, _)| (*t, a.body.clone())),
            Some((3, b"d".to_vec()))
        );
        assert!(r.kick());
        assert!(fake_envoy::COMMITS.load(Ordering::Relaxed) > commits);
    }

    #[test]
    fn workers_send_nothing_and_callouts_are_bounded() {
        let r = live_relay();
        assert!(Context::worker(&r)
            .http_call("idp", &[], None, TICK)
            .is_err());
        assert!(!Context::worker(&r).calls() && Context::main(&r).calls());
        let main = Context::main(&r);
        for _ in 0..MAX_PENDING {
            main.http_call("idp", &[], None, TICK).unwrap();
        }
        assert!(main.http_call("idp", &[], None, TICK).is_err());
    }

    #[test]
    fn a_closed_config_commits_and_sends_nothing() {
        let r = live_relay();
        assert!(r.live());
        r.close();
        assert!(!r.live() && !r.kick());
        assert!(Context::main(&r).http_call("idp", &[], None, TICK).is_err());
        // Without Envoy (no config pointer) nothing is ever live.
        assert!(!Relay::new(std::ptr::null_mut()).live());
    }
}
