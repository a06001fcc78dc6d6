//! The suite's stages as Envoy dynamic modules (`libapim_<filter>.so`, `libapim_suite.so`).
//!
//! The same `kit::stage` stages the Wasm modules run, hosted by Envoy's dynamic-module ABI
//! instead of proxy-wasm: loaded by the stock Envoy with
//! `envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter`, configured with the
//! same JSON. No Envoy SDK is on crates.io, so the bindings are ours:
//!
//! - [`abi`]: the C types and the Envoy callbacks used, declared by hand (checked against the
//!   pinned Envoy binary by `tests/integration/tests/native_abi.rs`);
//! - [`host`]: `kit::host::Host` over those callbacks, for the stream being served;
//! - [`shared`]: shared data as process memory, common to every worker;
//! - [`root`]: work outside any request (periodic work, root callouts) through the config;
//! - [`support`]: the features the native form refuses at load, by field;
//! - [`runtime`]: the hooks, threading and failure handling;
//! - [`export_module!`]: what a module package invokes to export every hook Envoy resolves.
//!
//! This is the one crate of the workspace with `unsafe` (crossing a C ABI needs it): every
//! `unsafe` block says why it is sound, and nothing else in the workspace may use any.

pub mod abi;
pub mod grpc;
pub mod host;
pub mod root;
pub mod runtime;
pub mod shared;
pub mod support;

pub use runtime::Module;

/// The hooks every module exports: the HTTP filter hooks Envoy 1.40 resolves when it loads the
/// module for `DynamicModuleFilter` (a missing one fails start-up), and `program_init`. Those
/// for features the native form does not use (config-level streams, per-stream schedulers,
/// per-route config) are exported doing nothing. The list is checked against the Envoy binary by the ABI test.
pub const HOOKS: &[&str] = &[
    "envoy_dynamic_module_on_program_init",
    "envoy_dynamic_module_on_http_filter_config_new",
    "envoy_dynamic_module_on_http_filter_config_destroy",
    "envoy_dynamic_module_on_http_filter_config_scheduled",
    "envoy_dynamic_module_on_http_filter_config_http_callout_done",
    "envoy_dynamic_module_on_http_filter_config_http_stream_headers",
    "envoy_dynamic_module_on_http_filter_config_http_stream_data",
    "envoy_dynamic_module_on_http_filter_config_http_stream_trailers",
    "envoy_dynamic_module_on_http_filter_config_http_stream_complete",
    "envoy_dynamic_module_on_http_filter_config_http_stream_reset",
    "envoy_dynamic_module_on_http_filter_per_route_config_new",
    "envoy_dynamic_module_on_http_filter_per_route_config_destroy",
    "envoy_dynamic_module_on_http_filter_new",
    "envoy_dynamic_module_on_http_filter_destroy",
    "envoy_dynamic_module_on_http_filter_request_headers",
    "envoy_dynamic_module_on_http_filter_request_body",
    "envoy_dynamic_module_on_http_filter_request_trailers",
    "envoy_dynamic_module_on_http_filter_response_headers",
    "envoy_dynamic_module_on_http_filter_response_body",
    "envoy_dynamic_module_on_http_filter_response_trailers",
    "envoy_dynamic_module_on_http_filter_stream_complete",
    "envoy_dynamic_module_on_http_filter_local_reply",
    "envoy_dynamic_module_on_http_filter_scheduled",
    "envoy_dynamic_module_on_http_filter_http_callout_done",
    "envoy_dynamic_module_on_http_filter_http_stream_headers",
    "envoy_dynamic_module_on_http_filter_http_stream_data",
    "envoy_dynamic_module_on_http_filter_http_stream_trailers",
    "envoy_dynamic_module_on_http_filter_http_stream_complete",
    "envoy_dynamic_module_on_http_filter_http_stream_reset",
    "envoy_dynamic_module_on_http_filter_downstream_above_write_buffer_high_watermark",
    "envoy_dynamic_module_on_http_filter_downstream_below_write_buffer_low_watermark",
];

/// Exports every hook of [`HOOKS`] for module `$module` (a [`Module`]). Invoke once, in the
/// module's `cdylib` package. The hooks are one-line forwards to [`runtime`], which holds all
/// the `unsafe` (the generated items only carry `no_mangle`, which is this crate's code).
#[macro_export]
macro_rules! export_module {
    ($module:ident) => {
        mod __apim_native_hooks {
            use ::std::ffi::{c_char, c_void};
            use $crate::abi::{EnvoyBuffer, EnvoyHeader};
            use $crate::runtime as rt;

            #[unsafe(no_mangle)]
            pub extern "C" fn envoy_dynamic_module_on_program_init() -> *const c_char {
                rt::program_init()
            }
            #[unsafe(no_mangle)]
            pub extern "C" fn envoy_dynamic_module_on_http_filter_config_new(
                config_envoy: *mut c_void,
                name: EnvoyBuffer,
                config: EnvoyBuffer,
            ) -> *const c_void {
                rt::config_new::<super::$module>(config_envoy, name, config)
            }
            #[unsafe(no_mangle)]
            pub extern "C" fn envoy_dynamic_module_on_http_filter_config_destroy(config: *const c_void) {
                rt::config_destroy(config)
            }
            #[unsafe(no_mangle)]
            pub extern "C" fn envoy_dynamic_module_on_http_filter_config_scheduled(
                _config_envoy: *mut c_void,
                config: *const c_void,
                _event: u64,
            ) {
                rt::config_scheduled(config)
            }
            #[unsafe(no_mangle)]
            pub extern "C" fn envoy_dynamic_module_on_http_filter_config_http_callout_done(
                _config_envoy: *mut c_void,
                config: *const c_void,
                id: u64,
                result: u32,
                headers: *const EnvoyHeader,
                headers_len: usize,
                body: *const EnvoyBuffer,
                body_len: usize,
            ) {
                rt::config_http_callout_done(config, id, result, headers, headers_len, body, body_len)
            }
            #[unsafe(no_mangle)]
            pub extern "C" fn envoy_dynamic_module_on_http_filter_config_http_stream_headers(
                _config_envoy: *mut c_void,
                _config: *const c_void,
                _stream: u64,
                _headers: *const EnvoyHeader,
                _headers_len: usize,
                _end: bool,
            ) {
            }
            #[unsafe(no_mangle)]
            pub extern "C" fn envoy_dynamic_module_on_http_filter_config_http_stream_data(
                _config_envoy: *mut c_void,
                _config: *const c_void,
                _stream: u64,
                _chunks: *const EnvoyBuffer,
                _chunks_len: usize,
                _end: bool,
            ) {
            }
            #[unsafe(no_mangle)]
            pub extern "C" fn envoy_dynamic_module_on_http_filter_config_http_stream_trailers(
                _config_envoy: *mut c_void,
                _config: *const c_void,
                _stream: u64,
                _trailers: *const EnvoyHeader,
                _trailers_len: usize,
            ) {
            }
            #[unsafe(no_mangle)]
            pub extern "C" fn envoy_dynamic_module_on_http_filter_config_http_stream_complete(
                _config_envoy: *mut c_void,
                _config: *const c_void,
                _stream: u64,
            ) {
            }
            #[unsafe(no_mangle)]
            pub extern "C" fn envoy_dynamic_module_on_http_filter_config_http_stream_reset(
                _config_envoy: *mut c_void,
                _config: *const c_void,
                _stream: u64,
                _reason: u32,
            ) {
            }
            /// Per-route configs are not offered: refused (NULL).
            #[unsafe(no_mangle)]
            pub extern "C" fn envoy_dynamic_module_on_http_filter_per_route_config_new(
                _name: EnvoyBuffer,
                _config: EnvoyBuffer,
            ) -> *const c_void {
                ::std::ptr::null()
            }
            #[unsafe(no_mangle)]
            pub extern "C" fn envoy_dynamic_module_on_http_filter_per_route_config_destroy(
                _config: *const c_void,
            ) {
            }
            #[unsafe(no_mangle)]
            pub extern "C" fn envoy_dynamic_module_on_http_filter_new(
                config: *const c_void,
                filter_envoy: *mut c_void,
            ) -> *const c_void {
                rt::filter_new(config, filter_envoy)
            }
            #[unsafe(no_mangle)]
            pub extern "C" fn envoy_dynamic_module_on_http_filter_destroy(filter: *const c_void) {
                rt::filter_destroy(filter)
            }
            #[unsafe(no_mangle)]
            pub extern "C" fn envoy_dynamic_module_on_http_filter_request_headers(
                fe: *mut c_void,
                fm: *const c_void,
                end_of_stream: bool,
            ) -> u32 {
                rt::request_headers(fe, fm, end_of_stream)
            }
            #[unsafe(no_mangle)]
            pub extern "C" fn envoy_dynamic_module_on_http_filter_request_body(
                fe: *mut c_void,
                fm: *const c_void,
                end_of_stream: bool,
            ) -> u32 {
                rt::request_body(fe, fm, end_of_stream)
            }
            #[unsafe(no_mangle)]
            pub extern "C" fn envoy_dynamic_module_on_http_filter_request_trailers(
                fe: *mut c_void,
                fm: *const c_void,
            ) -> u32 {
                rt::request_trailers(fe, fm)
            }
            #[unsafe(no_mangle)]
            pub extern "C" fn envoy_dynamic_module_on_http_filter_response_headers(
                fe: *mut c_void,
                fm: *const c_void,
                end_of_stream: bool,
            ) -> u32 {
                rt::response_headers(fe, fm, end_of_stream)
            }
            #[unsafe(no_mangle)]
            pub extern "C" fn envoy_dynamic_module_on_http_filter_response_body(
                fe: *mut c_void,
                fm: *const c_void,
                end_of_stream: bool,
            ) -> u32 {
                rt::response_body(fe, fm, end_of_stream)
            }
            #[unsafe(no_mangle)]
            pub extern "C" fn envoy_dynamic_module_on_http_filter_response_trailers(
                fe: *mut c_void,
                fm: *const c_void,
            ) -> u32 {
                rt::response_trailers(fe, fm)
            }
            #[unsafe(no_mangle)]
            pub extern "C" fn envoy_dynamic_module_on_http_filter_stream_complete(
                fe: *mut c_void,
                fm: *const c_void,
            ) {
                rt::stream_complete(fe, fm)
            }
            /// Envoy's own local replies go on as they are (`Continue`).
            #[unsafe(no_mangle)]
            pub extern "C" fn envoy_dynamic_module_on_http_filter_local_reply(
                _fe: *mut c_void,
                _fm: *const c_void,
                _code: u32,
                _details: EnvoyBuffer,
                _reset_imminent: bool,
            ) -> u32 {
                0
            }
            #[unsafe(no_mangle)]
            pub extern "C" fn envoy_dynamic_module_on_http_filter_scheduled(
                _fe: *mut c_void,
                _fm: *const c_void,
                _event: u64,
            ) {
            }
            #[unsafe(no_mangle)]
            pub extern "C" fn envoy_dynamic_module_on_http_filter_http_callout_done(
                fe: *mut c_void,
                fm: *const c_void,
                id: u64,
                result: u32,
                headers: *const EnvoyHeader,
                headers_len: usize,
                body: *const EnvoyBuffer,
                body_len: usize,
            ) {
                rt::http_callout_done(fe, fm, id, result, headers, headers_len, body, body_len)
            }
            #[unsafe(no_mangle)]
            pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_headers(
                fe: *mut c_void,
                fm: *const c_void,
                stream: u64,
                headers: *const EnvoyHeader,
                headers_len: usize,
                end: bool,
            ) {
                rt::http_stream_headers(fe, fm, stream, headers, headers_len, end)
            }
            #[unsafe(no_mangle)]
            pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_data(
                fe: *mut c_void,
                fm: *const c_void,
                stream: u64,
                chunks: *const EnvoyBuffer,
                chunks_len: usize,
                end: bool,
            ) {
                rt::http_stream_data(fe, fm, stream, chunks, chunks_len, end)
            }
            #[unsafe(no_mangle)]
            pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_trailers(
                fe: *mut c_void,
                fm: *const c_void,
                stream: u64,
                trailers: *const EnvoyHeader,
                trailers_len: usize,
            ) {
                rt::http_stream_trailers(fe, fm, stream, trailers, trailers_len)
            }
            #[unsafe(no_mangle)]
            pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_complete(
                fe: *mut c_void,
                fm: *const c_void,
                stream: u64,
            ) {
                rt::http_stream_end(fe, fm, stream, false)
            }
            #[unsafe(no_mangle)]
            pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_reset(
                fe: *mut c_void,
                fm: *const c_void,
                stream: u64,
                _reason: u32,
            ) {
                rt::http_stream_end(fe, fm, stream, true)
            }
            #[unsafe(no_mangle)]
            pub extern "C" fn envoy_dynamic_module_on_http_filter_downstream_above_write_buffer_high_watermark(
                _fe: *mut c_void,
                _fm: *const c_void,
            ) {
            }
            #[unsafe(no_mangle)]
            pub extern "C" fn envoy_dynamic_module_on_http_filter_downstream_below_write_buffer_low_watermark(
                _fe: *mut c_void,
                _fm: *const c_void,
            ) {
            }
        }
    };
}
