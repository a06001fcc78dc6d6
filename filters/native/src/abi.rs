//! Envoy's dynamic-module ABI as far as this crate uses it: the C types, and the callbacks
//! Envoy exports (resolved against the Envoy binary when the module is loaded).
//!
//! Written by hand from the pinned Envoy 1.40.0 (ABI `v0.2.0`): the names are checked against
//! the binary's export table (`nm -D`, see `tests/integration/tests/native_abi.rs`), the
//! signatures against Envoy's public `abi.h` and SDKs. Enums are C `enum`s (32 bits). Buffers
//! Envoy hands over are valid only during the call that gave them.

use std::ffi::c_void;

/// `envoy_dynamic_module_on_program_init`'s answer, checked by Envoy against its own.
pub const ABI_VERSION: &std::ffi::CStr = c"v0.2.0";

/// Bytes owned by Envoy (`envoy_dynamic_module_type_envoy_buffer`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct EnvoyBuffer {
    pub ptr: *const u8,
    pub length: usize,
}

impl EnvoyBuffer {
    pub const EMPTY: Self = Self {
        ptr: std::ptr::null(),
        length: 0,
    };
}

/// Bytes owned by the module (`envoy_dynamic_module_type_module_buffer`), valid for the call.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ModuleBuffer {
    pub ptr: *const u8,
    pub length: usize,
}

impl ModuleBuffer {
    pub fn of(bytes: &[u8]) -> Self {
        Self {
            ptr: bytes.as_ptr(),
            length: bytes.len(),
        }
    }
    /// A null buffer: `set_header` with it removes the header.
    pub const NULL: Self = Self {
        ptr: std::ptr::null(),
        length: 0,
    };
}

/// A header owned by Envoy (`envoy_dynamic_module_type_envoy_http_header`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct EnvoyHeader {
    pub key_ptr: *const u8,
    pub key_length: usize,
    pub value_ptr: *const u8,
    pub value_length: usize,
}

impl EnvoyHeader {
    pub const EMPTY: Self = Self {
        key_ptr: std::ptr::null(),
        key_length: 0,
        value_ptr: std::ptr::null(),
        value_length: 0,
    };
}

/// A header owned by the module (`envoy_dynamic_module_type_module_http_header`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ModuleHeader {
    pub key_ptr: *const u8,
    pub key_length: usize,
    pub value_ptr: *const u8,
    pub value_length: usize,
}

/// `envoy_dynamic_module_type_http_header_type`.
pub const REQUEST_HEADER: u32 = 0;
pub const RESPONSE_HEADER: u32 = 2;

/// `envoy_dynamic_module_type_http_body_type`.
pub const RECEIVED_REQUEST_BODY: u32 = 0;
pub const BUFFERED_REQUEST_BODY: u32 = 1;
pub const RECEIVED_RESPONSE_BODY: u32 = 2;
pub const BUFFERED_RESPONSE_BODY: u32 = 3;

/// `envoy_dynamic_module_type_log_level`.
pub const LOG_DEBUG: u32 = 1;
pub const LOG_INFO: u32 = 2;
pub const LOG_WARN: u32 = 3;
pub const LOG_ERROR: u32 = 4;

/// `envoy_dynamic_module_type_attribute_id` (its order in `abi.h`).
pub const ATTR_RESPONSE_CODE: u32 = 15;
pub const ATTR_RESPONSE_CODE_DETAILS: u32 = 16;
pub const ATTR_SOURCE_ADDRESS: u32 = 24;
pub const ATTR_XDS_ROUTE_NAME: u32 = 61;

/// `envoy_dynamic_module_type_http_callout_init_result_Success` and
/// `envoy_dynamic_module_type_http_callout_result_Success`.
pub const CALLOUT_SUCCESS: u32 = 0;

/// `envoy_dynamic_module_type_metrics_result_Success`.
pub const METRICS_SUCCESS: u32 = 0;

/// `envoy_dynamic_module_type_http_filter_stream_reset_reason_LocalReset`.
pub const RESET_LOCAL: u32 = 0;

/// Hook answers: `…_request_headers_status_Continue`/`_StopIteration`; the body statuses
/// `Continue`/`StopIterationAndBuffer`; trailers `Continue`/`StopIteration`. 0 and 1 in each.
pub const CONTINUE: u32 = 0;
pub const STOP: u32 = 1;

// The callbacks, resolved in the Envoy process that loads the module. Linked lazily: nothing
// here is called in unit tests (they use `kit::host::MockHost`).
#[allow(clippy::too_many_arguments)]
extern "C" {
    pub fn envoy_dynamic_module_callback_log(level: u32, message: ModuleBuffer);

    pub fn envoy_dynamic_module_callback_http_get_header(
        filter: *mut c_void,
        header_type: u32,
        key: ModuleBuffer,
        result: *mut EnvoyBuffer,
        index: usize,
        count: *mut usize,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_get_headers_size(
        filter: *mut c_void,
        header_type: u32,
    ) -> usize;
    pub fn envoy_dynamic_module_callback_http_get_headers(
        filter: *mut c_void,
        header_type: u32,
        result: *mut EnvoyHeader,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_set_header(
        filter: *mut c_void,
        header_type: u32,
        key: ModuleBuffer,
        value: ModuleBuffer,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_add_header(
        filter: *mut c_void,
        header_type: u32,
        key: ModuleBuffer,
        value: ModuleBuffer,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_send_response(
        filter: *mut c_void,
        status: u32,
        headers: *const ModuleHeader,
        headers_len: usize,
        body: ModuleBuffer,
        details: ModuleBuffer,
    );

    pub fn envoy_dynamic_module_callback_http_get_body_chunks_size(
        filter: *mut c_void,
        body_type: u32,
    ) -> usize;
    pub fn envoy_dynamic_module_callback_http_get_body_chunks(
        filter: *mut c_void,
        body_type: u32,
        result: *mut EnvoyBuffer,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_get_body_size(
        filter: *mut c_void,
        body_type: u32,
    ) -> usize;
    pub fn envoy_dynamic_module_callback_http_drain_body(
        filter: *mut c_void,
        body_type: u32,
        bytes: usize,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_append_body(
        filter: *mut c_void,
        body_type: u32,
        data: ModuleBuffer,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_received_buffered_request_body(
        filter: *mut c_void,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_received_buffered_response_body(
        filter: *mut c_void,
    ) -> bool;

    pub fn envoy_dynamic_module_callback_http_set_filter_state_bytes(
        filter: *mut c_void,
        key: ModuleBuffer,
        value: ModuleBuffer,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_get_filter_state_bytes(
        filter: *mut c_void,
        key: ModuleBuffer,
        result: *mut EnvoyBuffer,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_filter_get_attribute_string(
        filter: *mut c_void,
        id: u32,
        result: *mut EnvoyBuffer,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_filter_get_attribute_int(
        filter: *mut c_void,
        id: u32,
        result: *mut u64,
    ) -> bool;

    pub fn envoy_dynamic_module_callback_http_filter_config_define_counter(
        config: *mut c_void,
        name: ModuleBuffer,
        labels: *const ModuleBuffer,
        labels_len: usize,
        id: *mut usize,
    ) -> u32;
    pub fn envoy_dynamic_module_callback_http_filter_increment_counter(
        filter: *mut c_void,
        id: usize,
        labels: *const ModuleBuffer,
        labels_len: usize,
        value: u64,
    ) -> u32;

    pub fn envoy_dynamic_module_callback_http_filter_continue_decoding(filter: *mut c_void);
    pub fn envoy_dynamic_module_callback_http_filter_http_callout(
        filter: *mut c_void,
        callout_id: *mut u64,
        cluster: ModuleBuffer,
        headers: *const ModuleHeader,
        headers_len: usize,
        body: ModuleBuffer,
        timeout_ms: u64,
    ) -> u32;
    pub fn envoy_dynamic_module_callback_http_filter_start_http_stream(
        filter: *mut c_void,
        stream_id: *mut u64,
        cluster: ModuleBuffer,
        headers: *const ModuleHeader,
        headers_len: usize,
        body: ModuleBuffer,
        end_of_stream: bool,
        timeout_ms: u64,
    ) -> u32;
    pub fn envoy_dynamic_module_callback_http_filter_reset_stream(
        filter: *mut c_void,
        reason: u32,
        details: ModuleBuffer,
    );

    // The config's own services, outside any stream (see `crate::root`): a counter, a callout
    // and a scheduler whose events run on the main thread (`commit` may be called from any
    // thread: Envoy posts the event to the main dispatcher).
    pub fn envoy_dynamic_module_callback_http_filter_config_increment_counter(
        config: *mut c_void,
        id: usize,
        labels: *const ModuleBuffer,
        labels_len: usize,
        value: u64,
    ) -> u32;
    pub fn envoy_dynamic_module_callback_http_filter_config_http_callout(
        config: *mut c_void,
        callout_id: *mut u64,
        cluster: ModuleBuffer,
        headers: *const ModuleHeader,
        headers_len: usize,
        body: ModuleBuffer,
        timeout_ms: u64,
    ) -> u32;
    pub fn envoy_dynamic_module_callback_http_filter_config_scheduler_new(
        config: *mut c_void,
    ) -> *mut c_void;
    pub fn envoy_dynamic_module_callback_http_filter_config_scheduler_commit(
        scheduler: *mut c_void,
        event_id: u64,
    );
    pub fn envoy_dynamic_module_callback_http_filter_config_scheduler_delete(
        scheduler: *mut c_void,
    );
}

/// The callbacks this crate declares, for the ABI test (each must be exported by the Envoy
// binary the modules are loaded into).
pub const CALLBACKS: &[&str] = &[
    "envoy_dynamic_module_callback_log",
    "envoy_dynamic_module_callback_http_get_header",
    "envoy_dynamic_module_callback_http_get_headers_size",
    "envoy_dynamic_module_callback_http_get_headers",
    "envoy_dynamic_module_callback_http_set_header",
    "envoy_dynamic_module_callback_http_add_header",
    "envoy_dynamic_module_callback_http_send_response",
    "envoy_dynamic_module_callback_http_get_body_chunks_size",
    "envoy_dynamic_module_callback_http_get_body_chunks",
    "envoy_dynamic_module_callback_http_get_body_size",
    "envoy_dynamic_module_callback_http_drain_body",
    "envoy_dynamic_module_callback_http_append_body",
    "envoy_dynamic_module_callback_http_received_buffered_request_body",
    "envoy_dynamic_module_callback_http_received_buffered_response_body",
    "envoy_dynamic_module_callback_http_set_filter_state_bytes",
    "envoy_dynamic_module_callback_http_get_filter_state_bytes",
    "envoy_dynamic_module_callback_http_filter_get_attribute_string",
    "envoy_dynamic_module_callback_http_filter_get_attribute_int",
    "envoy_dynamic_module_callback_http_filter_config_define_counter",
    "envoy_dynamic_module_callback_http_filter_increment_counter",
    "envoy_dynamic_module_callback_http_filter_continue_decoding",
    "envoy_dynamic_module_callback_http_filter_http_callout",
    "envoy_dynamic_module_callback_http_filter_start_http_stream",
    "envoy_dynamic_module_callback_http_filter_reset_stream",
    "envoy_dynamic_module_callback_http_filter_config_increment_counter",
    "envoy_dynamic_module_callback_http_filter_config_http_callout",
    "envoy_dynamic_module_callback_http_filter_config_scheduler_new",
    "envoy_dynamic_module_callback_http_filter_config_scheduler_commit",
    "envoy_dynamic_module_callback_http_filter_config_scheduler_delete",
];
