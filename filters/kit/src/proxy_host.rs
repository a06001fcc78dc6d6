//! [`Host`] over the proxy-wasm ABI: the only place in the suite that calls host functions
//! for the request path. Failures of a host call are logged or read as "absent", never
//! unwrapped: a trap would stop the VM for every later request.

use crate::denial::Reply;
use crate::host::{Host, LogLevel, SetResult, Side};
use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, MapType, MetricType, Status};
use std::time::Duration;

fn map(side: Side) -> MapType {
    match side {
        Side::Request => MapType::HttpRequestHeaders,
        Side::Response => MapType::HttpResponseHeaders,
    }
}

fn buffer(side: Side) -> BufferType {
    match side {
        Side::Request => BufferType::HttpRequestBody,
        Side::Response => BufferType::HttpResponseBody,
    }
}

/// The host for the HTTP context currently being served.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProxyHost;

impl Host for ProxyHost {
    fn request_headers(&self) -> Vec<(String, Vec<u8>)> {
        hostcalls::get_map_bytes(MapType::HttpRequestHeaders).unwrap_or_default()
    }

    fn request_header(&self, name: &str) -> Option<Vec<u8>> {
        if name.starts_with(':') {
            // Pseudo-headers are single-valued.
            return hostcalls::get_map_value_bytes(MapType::HttpRequestHeaders, name)
                .ok()
                .flatten();
        }
        // Envoy's header-map read returns only the first copy of a repeated header; the
        // `request.headers` attribute joins every copy with ',' at the same cost, so a second,
        // different credential cannot hide behind the first.
        match hostcalls::get_property(vec!["request", "headers", name]) {
            Ok(Some(value)) => Some(value),
            // The attribute reads an empty value as absent; only the map read can tell an empty
            // header from a missing one (which matters: an empty key is invalid, not missing).
            _ => hostcalls::get_map_value_bytes(MapType::HttpRequestHeaders, name)
                .ok()
                .flatten(),
        }
    }

    fn route_name(&self) -> Option<String> {
        hostcalls::get_property(vec!["xds", "route_name"])
            .ok()
            .flatten()
            .and_then(|b| String::from_utf8(b).ok())
    }

    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        hostcalls::get_property(path.to_vec()).ok().flatten()
    }

    fn set_property(&self, key: &str, value: &[u8]) {
        if let Err(e) = hostcalls::set_property(vec![key], Some(value)) {
            self.log(
                LogLevel::Warn,
                &format!("set_property({key}) failed: {e:?}"),
            );
        }
    }

    fn set_request_header(&self, name: &str, value: &[u8]) {
        if let Err(e) =
            hostcalls::set_map_value_bytes(MapType::HttpRequestHeaders, name, Some(value))
        {
            self.log(
                LogLevel::Warn,
                &format!("setting header {name} failed: {e:?}"),
            );
        }
    }

    fn remove_request_header(&self, name: &str) {
        if let Err(e) = hostcalls::remove_map_value(MapType::HttpRequestHeaders, name) {
            self.log(
                LogLevel::Warn,
                &format!("removing header {name} failed: {e:?}"),
            );
        }
    }

    fn send_reply(&self, reply: &Reply) {
        let headers: Vec<(&str, &str)> = reply
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let status = u32::from(reply.status);
        if let Err(e) = hostcalls::send_http_response(status, headers, Some(&reply.body)) {
            self.log(
                LogLevel::Error,
                &format!("sending the local reply failed: {e:?}"),
            );
        }
    }

    fn now_unix(&self) -> u64 {
        hostcalls::get_current_time()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs())
    }

    fn define_counter(&self, name: &str) -> Option<u32> {
        hostcalls::define_metric(MetricType::Counter, name).ok()
    }

    fn increment_counter(&self, id: u32, by: i64) {
        // A failed increment loses one count; it must never fail the request.
        let _ = hostcalls::increment_metric(id, by);
    }

    fn log(&self, level: LogLevel, message: &str) {
        let level = match level {
            LogLevel::Debug => proxy_wasm::types::LogLevel::Debug,
            LogLevel::Info => proxy_wasm::types::LogLevel::Info,
            LogLevel::Warn => proxy_wasm::types::LogLevel::Warn,
            LogLevel::Error => proxy_wasm::types::LogLevel::Error,
        };
        let _ = hostcalls::log(level, message);
    }

    fn headers(&self, side: Side) -> Vec<(String, Vec<u8>)> {
        hostcalls::get_map_bytes(map(side)).unwrap_or_default()
    }

    fn set_header(&self, side: Side, name: &str, value: &[u8]) {
        if let Err(e) = hostcalls::set_map_value_bytes(map(side), name, Some(value)) {
            self.log(
                LogLevel::Warn,
                &format!("setting header {name} failed: {e:?}"),
            );
        }
    }

    fn add_header(&self, side: Side, name: &str, value: &[u8]) {
        if let Err(e) = hostcalls::add_map_value_bytes(map(side), name, value) {
            self.log(
                LogLevel::Warn,
                &format!("adding header {name} failed: {e:?}"),
            );
        }
    }

    fn remove_header(&self, side: Side, name: &str) {
        if let Err(e) = hostcalls::remove_map_value(map(side), name) {
            self.log(
                LogLevel::Warn,
                &format!("removing header {name} failed: {e:?}"),
            );
        }
    }

    fn replace_headers(&self, side: Side, headers: &[(String, Vec<u8>)]) {
        let pairs: Vec<(&str, &[u8])> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_slice()))
            .collect();
        if let Err(e) = hostcalls::set_map_bytes(map(side), pairs) {
            self.log(
                LogLevel::Warn,
                &format!("replacing the headers failed: {e:?}"),
            );
        }
    }

    fn body(&self, side: Side, start: usize, size: usize) -> Option<Vec<u8>> {
        hostcalls::get_buffer(buffer(side), start, size)
            .ok()
            .flatten()
    }

    fn set_body(&self, side: Side, start: usize, size: usize, body: &[u8]) {
        if let Err(e) = hostcalls::set_buffer(buffer(side), start, size, body) {
            self.log(LogLevel::Warn, &format!("replacing the body failed: {e:?}"));
        }
    }

    fn shared_data(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        hostcalls::get_shared_data(key).unwrap_or((None, None))
    }

    fn set_shared_data(&self, key: &str, value: &[u8], cas: Option<u32>) -> SetResult {
        match hostcalls::set_shared_data(key, Some(value), cas) {
            Ok(()) => SetResult::Ok,
            Err(Status::CasMismatch) => SetResult::CasMismatch,
            Err(_) => SetResult::Failed,
        }
    }

    fn http_call(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<u32, String> {
        hostcalls::dispatch_http_call(cluster, headers.to_vec(), body, Vec::new(), timeout)
            .map_err(|e| format!("{e:?}"))
    }

    fn grpc_call(
        &self,
        cluster: &str,
        service: &str,
        method: &str,
        message: &[u8],
        timeout: Duration,
    ) -> Result<u32, String> {
        hostcalls::dispatch_grpc_call(
            cluster,
            service,
            method,
            Vec::<(&str, &[u8])>::new(),
            Some(message),
            timeout,
        )
        .map_err(|e| format!("{e:?}"))
    }

    fn http_call_response_header(&self, name: &str) -> Option<String> {
        calls::http_call_response_header(name)
    }

    fn http_call_response_body(&self, size: usize) -> Option<Vec<u8>> {
        calls::http_call_response_body(0, size)
    }

    fn grpc_response_body(&self, size: usize) -> Option<Vec<u8>> {
        calls::grpc_response_body(0, size)
    }

    fn set_tick_period(&self, period: Duration) -> bool {
        calls::set_tick_period(period)
    }

    fn resume_request(&self) -> bool {
        calls::resume_request()
    }

    fn reset_request(&self) {
        let _ = hostcalls::reset_http_request();
    }
}

/// Non-panicking forms of the SDK's `Context`/`HttpContext` helpers, which `unwrap` the host's
/// status: a host error there would trap and stop the VM for every later request. Filters call
/// these instead.
pub mod calls {
    use proxy_wasm::hostcalls;
    use proxy_wasm::types::{BufferType, MapType};
    use std::time::Duration;

    /// The plugin's configuration bytes (empty if the host has none or refuses).
    pub fn plugin_configuration() -> Vec<u8> {
        hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX)
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    pub fn request_body(start: usize, size: usize) -> Option<Vec<u8>> {
        hostcalls::get_buffer(BufferType::HttpRequestBody, start, size)
            .ok()
            .flatten()
    }

    pub fn response_body(start: usize, size: usize) -> Option<Vec<u8>> {
        hostcalls::get_buffer(BufferType::HttpResponseBody, start, size)
            .ok()
            .flatten()
    }

    pub fn http_call_response_header(name: &str) -> Option<String> {
        hostcalls::get_map_value(MapType::HttpCallResponseHeaders, name)
            .ok()
            .flatten()
    }

    pub fn http_call_response_body(start: usize, size: usize) -> Option<Vec<u8>> {
        hostcalls::get_buffer(BufferType::HttpCallResponseBody, start, size)
            .ok()
            .flatten()
    }

    pub fn grpc_response_body(start: usize, size: usize) -> Option<Vec<u8>> {
        hostcalls::get_buffer(BufferType::GrpcReceiveBuffer, start, size)
            .ok()
            .flatten()
    }

    /// Value and CAS token of a shared-data key (`(None, None)` if absent or refused).
    pub fn shared_data(key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        hostcalls::get_shared_data(key).unwrap_or((None, None))
    }

    /// Whether the host accepted the tick period.
    pub fn set_tick_period(period: Duration) -> bool {
        hostcalls::set_tick_period(period).is_ok()
    }

    /// Whether the paused request could be resumed.
    pub fn resume_request() -> bool {
        hostcalls::resume_http_request().is_ok()
    }
}
