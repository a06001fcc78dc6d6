//! The response type and an incremental HTTP/1.1 response parser.

/// A parsed response. Header values are lossy UTF-8 so odd bytes never fail the read itself.
#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of a header, name compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header, in order.
    pub fn headers_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The body as lossy UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the status and body if it is not JSON (test-only helper).
    pub fn json(&self) -> serde_json::Value {
        match serde_json::from_slice(&self.body) {
            Ok(v) => v,
            Err(e) => panic!(
                "response body is not JSON ({e}); status {}, body: {}",
                self.status,
                self.text()
            ),
        }
    }
}

/// Parses one response from `buf`. `Ok(None)` means more bytes are needed; with `eof` set, a
/// body without framing runs to the end of `buf`. Interim 1xx responses are skipped.
pub(super) fn parse(buf: &[u8], eof: bool, head: bool) -> Result<Option<Response>, String> {
    let mut start = 0;
    loop {
        let rest = &buf[start..];
        let Some(head_len) = find(rest, b"\r\n\r\n").map(|i| i + 4) else {
            return if eof && !rest.is_empty() {
                Err(format!(
                    "truncated response head: {:?}",
                    String::from_utf8_lossy(rest)
                ))
            } else {
                Ok(None)
            };
        };
        let (status, headers) = parse_head(&rest[..head_len])?;
        if (100..200).contains(&status) && status != 101 {
            start += head_len;
            continue;
        }
        let body_bytes = &rest[head_len..];
        let body = if head || status == 204 || status == 304 || (100..200).contains(&status) {
            Some(Vec::new())
        } else if header_has_token(&headers, "transfer-encoding", "chunked") {
            decode_chunked(body_bytes)?
        } else if let Some(len) = content_length(&headers)? {
            body_bytes.get(..len).map(<[u8]>::to_vec)
        } else if eof {
            Some(body_bytes.to_vec())
        } else {
            None
        };
        return match body {
            Some(body) => Ok(Some(Response {
                status,
                headers,
                body,
            })),
            None if eof => Err(format!(
                "truncated body (status {status}, {} bytes)",
                body_bytes.len()
            )),
            None => Ok(None),
        };
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

type Headers = Vec<(String, String)>;

fn parse_head(head: &[u8]) -> Result<(u16, Headers), String> {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let status = parts.next().and_then(|s| s.parse::<u16>().ok());
    let (true, Some(status)) = (version.starts_with("HTTP/1."), status) else {
        return Err(format!("bad status line: {status_line:?}"));
    };
    let headers = lines
        .filter(|line| !line.is_empty())
        .map(|line| match line.split_once(':') {
            Some((name, value)) => Ok((name.trim().to_owned(), value.trim().to_owned())),
            None => Err(format!("bad header line: {line:?}")),
        })
        .collect::<Result<_, _>>()?;
    Ok((status, headers))
}

fn header_has_token(headers: &Headers, name: &str, token: &str) -> bool {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .flat_map(|(_, v)| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

fn content_length(headers: &Headers) -> Result<Option<usize>, String> {
    match headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
    {
        Some((_, v)) => v
            .parse()
            .map(Some)
            .map_err(|_| format!("bad content-length {v:?}")),
        None => Ok(None),
    }
}

/// Decodes a complete chunked body, or `Ok(None)` if it has not all arrived yet.
fn decode_chunked(mut bytes: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let mut body = Vec::new();
    loop {
        let Some(line_end) = find(bytes, b"\r\n") else {
            return Ok(None);
        };
        let line = String::from_utf8_lossy(&bytes[..line_end]);
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        bytes = &bytes[line_end + 2..];
        if size == 0 {
            // Trailers (ignored) end with an empty line.
            let done = bytes.starts_with(b"\r\n") || find(bytes, b"\r\n\r\n").is_some();
            return Ok(done.then_some(body));
        }
        let Some(data) = bytes.get(..size) else {
            return Ok(None);
        };
        body.extend_from_slice(data);
        match bytes.get(size..size + 2) {
            Some(b"\r\n") => bytes = &bytes[size + 2..],
            Some(_) => return Err("chunk not followed by CRLF".into()),
            None => return Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_length_body() {
        let raw = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nX-A: 1\r\nx-a: 2\r\n\r\nhi";
        let r = parse(raw, false, false).unwrap().unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"hi");
        assert_eq!(r.header("x-a"), Some("1"));
        assert_eq!(r.headers_all("X-A"), vec!["1", "2"]);
        assert!(parse(&raw[..raw.len() - 1], false, false)
            .unwrap()
            .is_none());
        assert!(parse(&raw[..raw.len() - 1], true, false).is_err());
    }

    #[test]
    fn chunked_body() {
        let raw = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        let r = parse(raw, false, false).unwrap().unwrap();
        assert_eq!(r.body, b"abcde");
        for cut in 0..raw.len() {
            assert!(
                parse(&raw[..cut], false, false).unwrap().is_none(),
                "cut {cut}"
            );
        }
    }

    #[test]
    fn body_to_eof_and_interim() {
        let raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 200 OK\r\n\r\nuntil eof";
        assert!(parse(raw, false, false).unwrap().is_none());
        let r = parse(raw, true, false).unwrap().unwrap();
        assert_eq!(r.text(), "until eof");
    }

    #[test]
    fn head_and_204_have_no_body() {
        let raw = b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n";
        assert!(parse(raw, false, true).unwrap().unwrap().body.is_empty());
        let raw = b"HTTP/1.1 204 No Content\r\n\r\n";
        assert_eq!(parse(raw, false, false).unwrap().unwrap().status, 204);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(parse(b"nope\r\n\r\n", false, false).is_err());
    }
}
