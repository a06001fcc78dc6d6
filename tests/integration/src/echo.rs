//! Reading answers in tests: the echo upstream's report of what it received (a JSON object with
//! `method`, `path`, `headers` as `[name, value]` pairs, `body`) and a filter's problem+json
//! refusal.

use serde_json::Value;

use crate::Response;

/// The echo upstream's report in `r`, after checking that it is one (200, `application/json`):
/// proof that the request reached the upstream. `what` names the case in a failure.
pub fn upstream_echo(r: &Response, what: &str) -> Value {
    assert_eq!(r.status, 200, "{what}: {}", r.text());
    assert_eq!(
        r.header("content-type"),
        Some("application/json"),
        "{what}: not the echo upstream: {}",
        r.text()
    );
    r.json()
}

/// Every value of header `name` (lower case) in the echo upstream's report, in order.
pub fn echoed_header(echo: &Value, name: &str) -> Vec<String> {
    echo["headers"]
        .as_array()
        .unwrap_or_else(|| panic!("not an echo report: {echo}"))
        .iter()
        .filter(|h| h[0] == name)
        .map(|h| match h[1].as_str() {
            Some(v) => v.to_owned(),
            None => panic!("not an echo report: {echo}"),
        })
        .collect()
}

/// A filter's own refusal: `status`, `application/problem+json`, `code`; returns the body.
pub fn assert_problem(r: &Response, status: u16, code: &str, what: &str) -> Value {
    assert_eq!(r.status, status, "{what}: {}", r.text());
    assert_eq!(
        r.header("content-type"),
        Some("application/problem+json"),
        "{what}: not the filter's reply: {}",
        r.text()
    );
    let body = r.json();
    assert_eq!(body["code"], code, "{what}");
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, content_type: &str, body: &str) -> Response {
        Response {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn reads_the_echo_report() {
        let r = response(
            200,
            "application/json",
            r#"{"headers": [["x-a", "1"], ["x-b", "2"], ["x-a", "3"]]}"#,
        );
        let echo = upstream_echo(&r, "case");
        assert_eq!(echoed_header(&echo, "x-a"), ["1", "3"]);
        assert!(echoed_header(&echo, "x-c").is_empty());
    }

    #[test]
    #[should_panic(expected = "not the echo upstream")]
    fn a_reply_that_is_not_the_echo_fails() {
        upstream_echo(&response(200, "text/plain", "hi"), "case");
    }

    #[test]
    fn reads_a_problem() {
        let r = response(400, "application/problem+json", r#"{"code": "bad"}"#);
        assert_eq!(assert_problem(&r, 400, "bad", "case")["code"], "bad");
    }

    #[test]
    #[should_panic(expected = "not the filter's reply")]
    fn a_problem_of_another_type_fails() {
        assert_problem(&response(400, "application/json", "{}"), 400, "bad", "case");
    }
}
