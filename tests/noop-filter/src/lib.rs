//! An HTTP filter that does nothing: every callback keeps the SDK's default (continue).
//!
//! `make bench` loads it as the `wasm-noop` row, so the cost of the Wasm approach itself
//! (V8, the ABI, the SDK's dispatcher) is measured in the same run as our filters.

#[cfg(target_arch = "wasm32")]
mod noop {
    use proxy_wasm::traits::{Context, HttpContext, RootContext};
    use proxy_wasm::types::{ContextType, LogLevel};

    struct NoopRoot;
    struct NoopHttp;

    impl Context for NoopRoot {}
    impl RootContext for NoopRoot {
        fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
            Some(Box::new(NoopHttp))
        }
        fn get_type(&self) -> Option<ContextType> {
            Some(ContextType::HttpContext)
        }
    }
    impl Context for NoopHttp {}
    impl HttpContext for NoopHttp {}

    proxy_wasm::main! {{
        proxy_wasm::set_log_level(LogLevel::Warn);
        proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(NoopRoot) });
    }}
}
