//! quota's config parser (JSON → validated config) on any bytes: errors are values naming a
//! field, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = quota::config::Config::parse(data) {
        assert!(!e.to_string().is_empty());
    }
});
