//! One line of the JSON access log a rendered bootstrap writes (`product::envoy::ACCESS_LOG_FIELDS`)
//! as a typed record. Fields Envoy logs as `null` (nothing published) stay `None`; a line that
//! is not such an object is counted as unreadable, never guessed at.

use serde_json::Value;

/// Longest line read; a longer one is unreadable (a bound on a hostile or broken log).
pub const MAX_LINE_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Milliseconds since the epoch.
    pub time_ms: u64,
    pub route: String,
    pub status: u16,
    pub duration_ms: u64,
    pub consumer: Option<String>,
    pub plan: Option<String>,
    /// `key` (api-key-auth), `token` (scope-authz) or both.
    pub auth: Option<String>,
    /// `<filter>:<code>` of a refusal.
    pub decision: Option<String>,
    pub operation: Option<String>,
    pub graphql_cost: Option<u64>,
    /// The admitting quota limit: name, requests per window, what was left.
    pub quota: Option<(String, u64, u64)>,
}

fn text(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) if !s.is_empty() && s != "-" => Some(s.clone()),
        _ => None,
    }
}

fn number(v: &Value, key: &str) -> Option<u64> {
    match v.get(key)? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// `"gold-burst";q=100;r=99` (quota's `apim_quota`).
fn quota(s: &str) -> Option<(String, u64, u64)> {
    let mut parts = s.split(';');
    let name = parts
        .next()?
        .trim()
        .strip_prefix('"')?
        .strip_suffix('"')?
        .to_string();
    let (mut q, mut r) = (None, None);
    for p in parts {
        match p.trim().split_once('=') {
            Some(("q", v)) => q = v.parse().ok(),
            Some(("r", v)) => r = v.parse().ok(),
            _ => {}
        }
    }
    Some((name, q?, r?))
}

/// How a caller proved who it is, from the identity's `source`.
fn auth(source: &str) -> &'static str {
    match (
        source.contains("api-key-auth"),
        source.contains("scope-authz"),
    ) {
        (true, true) => "key+token",
        (true, false) => "key",
        (false, true) => "token",
        _ => "other",
    }
}

/// The record of one log line, or `None` when it is not one.
pub fn parse(line: &str) -> Option<Record> {
    if line.len() > MAX_LINE_BYTES {
        return None;
    }
    let v: Value = serde_json::from_str(line).ok()?;
    let time_ms = crate::product::time::parse_utc_ms(&text(&v, "time")?)?;
    let status = u16::try_from(number(&v, "status")?).ok()?;
    let identity: Option<Value> = text(&v, "consumer").and_then(|c| serde_json::from_str(&c).ok());
    let field = |k: &str| {
        identity
            .as_ref()
            .and_then(|i| i.get(k))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    Some(Record {
        time_ms,
        route: text(&v, "route").unwrap_or_else(|| "-".to_string()),
        status,
        duration_ms: number(&v, "duration_ms").unwrap_or(0),
        consumer: field("id"),
        plan: field("plan"),
        auth: field("source").map(|s| auth(&s).to_string()),
        decision: text(&v, "decision"),
        operation: text(&v, "graphql_operation"),
        graphql_cost: number(&v, "graphql_cost"),
        quota: text(&v, "quota").and_then(|q| quota(&q)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_of_the_rendered_access_log() {
        let line = r#"{"consumer":"{\"id\":\"alice\",\"plan\":\"gold\",\"scopes\":[\"pets:read\"],\"source\":\"api-key-auth+scope-authz\"}","decision":null,"duration_ms":2,"graphql_cost":"12","graphql_operation":"Pets","method":"POST","quota":"\"gold-burst\";q=100;r=99","response_flags":"-","route":"graphql","status":200,"time":"2026-12-02T02:20:27.840Z"}"#;
        let r = parse(line).unwrap();
        assert_eq!(r.consumer.as_deref(), Some("alice"));
        assert_eq!(r.plan.as_deref(), Some("gold"));
        assert_eq!(r.auth.as_deref(), Some("key+token"));
        assert_eq!(r.quota, Some(("gold-burst".to_string(), 100, 99)));
        assert_eq!(
            (r.graphql_cost, r.operation.as_deref()),
            (Some(12), Some("Pets"))
        );
        assert_eq!(
            (r.status, r.duration_ms, r.route.as_str()),
            (200, 2, "graphql")
        );
        let refused = r#"{"consumer":null,"decision":"api-key-auth:missing_api_key","duration_ms":0,"route":"pets","status":401,"time":"2026-12-02T02:20:13.046Z"}"#;
        let r = parse(refused).unwrap();
        assert_eq!(
            (r.consumer, r.decision.as_deref()),
            (None, Some("api-key-auth:missing_api_key"))
        );
        for bad in [
            "",
            "not json",
            "[]",
            r#"{"status":200}"#,
            r#"{"time":"yesterday","status":200}"#,
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
        assert_eq!(
            parse(&format!("{{\"x\":\"{}\"}}", "a".repeat(MAX_LINE_BYTES))),
            None
        );
    }
}
