//! HTTP/2 (prior knowledge, cleartext) requests through `curl`: the raw client speaks HTTP/1
//! only, and curl sends `-X` verbatim as `:method`, which is how a test sends `options` or `get`
//! in lower case.

use super::Response;

/// Sends one HTTP/2 request with `curl --http2-prior-knowledge` (at most 20 s) and returns the
/// final response: status, headers (names lower-case, as HTTP/2 sends them) and body. An error
/// if curl cannot run or fails (connection refused, timeout, a bad HTTP/2 answer).
pub fn send_h2(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Result<Response, String> {
    let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
    let head_file = dir.path().join("headers");
    let mut cmd = std::process::Command::new("curl");
    cmd.args(["-sS", "--http2-prior-knowledge", "--max-time", "20"])
        .args(["-X", method])
        .arg("-D")
        .arg(&head_file)
        .arg(format!("http://127.0.0.1:{port}{path}"));
    for (name, value) in headers {
        cmd.arg("-H").arg(format!("{name}: {value}"));
    }
    if let Some(body) = body {
        if body.starts_with('@') {
            return Err("a body starting with '@' would be read by curl as a file name".into());
        }
        cmd.arg("--data-binary").arg(body);
    }
    let out = cmd
        .output()
        .map_err(|e| format!("curl (needed for HTTP/2) did not run: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "curl failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let head = std::fs::read_to_string(&head_file).map_err(|e| format!("curl's headers: {e}"))?;
    let (status, headers) = parse_head(&head)?;
    Ok(Response {
        status,
        headers,
        body: out.stdout,
    })
}

/// The status and headers of the last (final) response head in curl's `-D` dump, which holds
/// every head received, interim 1xx ones first.
fn parse_head(dump: &str) -> Result<(u16, Vec<(String, String)>), String> {
    let last = dump
        .split("\r\n\r\n")
        .filter(|block| block.starts_with("HTTP/"))
        .last()
        .ok_or_else(|| format!("no response head in curl's dump: {dump:?}"))?;
    parse_head_block(last)
}

/// One response head as curl writes it (`HTTP/2 200`, then `name: value` lines): the status
/// and the headers, names lower-case.
pub(crate) fn parse_head_block(head: &str) -> Result<(u16, Vec<(String, String)>), String> {
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("curl: no status line in {head:?}"))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Ok((status, headers))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_head_takes_the_final_response() {
        let dump = "HTTP/2 100\r\n\r\nHTTP/2 405\r\nAllow: GET, POST\r\ncontent-type: a/b\r\n\r\n";
        let (status, headers) = parse_head(dump).unwrap();
        assert_eq!(status, 405);
        assert_eq!(
            headers,
            vec![
                ("allow".to_owned(), "GET, POST".to_owned()),
                ("content-type".to_owned(), "a/b".to_owned())
            ]
        );
        assert!(parse_head("").is_err());
        assert!(parse_head("HTTP/2 abc\r\n\r\n").is_err());
    }

    #[test]
    fn a_body_naming_a_file_is_refused() {
        let err = send_h2(1, "POST", "/", &[], Some("@/etc/passwd")).unwrap_err();
        assert!(err.contains("'@'"), "{err}");
    }
}
