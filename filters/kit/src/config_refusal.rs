//! The one log line a filter writes when it refuses a configuration.
//!
//! When `on_configure` returns false, Envoy logs its own lines after the filter's (`Wasm VM
//! failed Failed to configure base Wasm plugin`, `Plugin … failed to load`, and at start-up
//! `error \`Unable to create Wasm plugin …\` initializing config`). The filter cannot speak
//! after them, so the reason must be easy to find just above: one `error` line, the filter's
//! last word on that config, that names the filter and the field. A message echoing config
//! text (a serde error quotes an unknown field's name) may hold a newline or other control
//! bytes; they are escaped so the reason never spills onto lines that look like Envoy's own.

use crate::config_error::ConfigError;
use crate::host::{Host, LogLevel};

/// Longest line written: a config error quoting a huge field name stays one readable line.
pub const MAX_LINE_BYTES: usize = 2048;

/// What the field part says for an error about the whole document (bad JSON, empty config).
pub const WHOLE_CONFIG: &str = "(whole config)";

/// `api-key-auth: invalid configuration: consumers[id=bob].keys[0].sha256: …`, on one line.
pub fn line(filter: &str, e: &ConfigError) -> String {
    let field = if e.path.is_empty() {
        WHOLE_CONFIG
    } else {
        e.path.as_str()
    };
    let raw = format!("{filter}: invalid configuration: {field}: {}", e.message);
    let mut out = String::with_capacity(raw.len().min(MAX_LINE_BYTES));
    for c in raw.chars() {
        let escaped: String = if c.is_control() {
            c.escape_default().collect()
        } else {
            c.to_string()
        };
        if out.len() + escaped.len() > MAX_LINE_BYTES.saturating_sub(3) {
            out.push('…');
            break;
        }
        out.push_str(&escaped);
    }
    out
}

/// Logs [`line`] at `error`. Call it last on the refusing path: nothing the filter logs may
/// follow it for that config.
pub fn log(host: &dyn Host, filter: &str, e: &ConfigError) {
    host.log(LogLevel::Error, &line(filter, e));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::{Call, MockHost};
    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn one_line_naming_filter_and_field() {
        let long = "x".repeat(5000);
        let cases: Vec<(&str, ConfigError, String)> = vec![
            (
                "api-key-auth",
                ConfigError::new("consumers[id=bob].keys[0].sha256", "not 64 hex digits"),
                "api-key-auth: invalid configuration: consumers[id=bob].keys[0].sha256: not 64 hex digits".into(),
            ),
            (
                "quota",
                ConfigError::new("", "config is empty; expected a JSON object"),
                "quota: invalid configuration: (whole config): config is empty; expected a JSON object".into(),
            ),
            (
                "transform",
                ConfigError::new("rules[0].a\nb", "unknown field `a\nb\r\t\u{1b}[31m`"),
                "transform: invalid configuration: rules[0].a\\nb: unknown field `a\\nb\\r\\t\\u{1b}[31m`".into(),
            ),
        ];
        for (filter, e, want) in cases {
            assert_eq!(line(filter, &e), want);
        }
        let l = line("scope-authz", &ConfigError::new("providers[0]", long));
        assert!(l.len() <= MAX_LINE_BYTES, "{}", l.len());
        assert!(l.starts_with("scope-authz: invalid configuration: providers[0]: xxx"));
        assert!(l.ends_with('…'));
        assert!(!l.contains('\n'));
    }

    #[test]
    fn logged_once_at_error() {
        let h = MockHost::default();
        log(&h, "quota", &ConfigError::new("plans", "empty"));
        assert_eq!(
            h.calls(),
            [Call::Log(
                LogLevel::Error,
                "quota: invalid configuration: plans: empty".into()
            )]
        );
    }
}
