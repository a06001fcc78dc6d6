//! A sequential keep-alive HTTP/1.1 client for the instructions bench: one connection, one
//! request at a time, every response's status checked, so the number of requests in a window is
//! exact (wrk's is not: it stops mid-request and has several in flight).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Under valgrind one request takes 0.5 to 2 ms, a first one (V8 compiling) up to seconds.
const IO_TIMEOUT: Duration = Duration::from_secs(60);
/// Bounds a response head (Envoy's replies are a few hundred bytes).
const MAX_HEAD: usize = 64 * 1024;

/// One open connection to Envoy.
pub struct Connection {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Connection {
    pub fn open(port: u16) -> Result<Connection, String> {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
            .map_err(|e| format!("connect to {addr}: {e}"))?;
        stream
            .set_read_timeout(Some(IO_TIMEOUT))
            .and_then(|()| stream.set_write_timeout(Some(IO_TIMEOUT)))
            .and_then(|()| stream.set_nodelay(true))
            .map_err(|e| format!("socket options: {e}"))?;
        Ok(Connection {
            stream,
            buf: Vec::new(),
        })
    }

    /// Sends `request` (whole bytes, keep-alive) `count` times, one after the other, and checks
    /// every status is `expect_status`; returns the seconds it took. The first wrong status or
    /// a closed connection is an error naming the request's number.
    pub fn send_many(
        &mut self,
        request: &[u8],
        count: u64,
        expect_status: u16,
    ) -> Result<f64, String> {
        let start = Instant::now();
        for i in 1..=count {
            self.stream
                .write_all(request)
                .map_err(|e| format!("request {i}/{count}: write: {e}"))?;
            let status = self
                .read_response()
                .map_err(|e| format!("request {i}/{count}: {e}"))?;
            if status != expect_status {
                return Err(format!(
                    "request {i}/{count} got status {status} (expected {expect_status})"
                ));
            }
        }
        Ok(start.elapsed().as_secs_f64())
    }

    /// Reads one response (Content-Length framed, as Envoy's direct and local replies are) and
    /// returns its status.
    fn read_response(&mut self) -> Result<u16, String> {
        let head_len = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            if self.buf.len() > MAX_HEAD {
                return Err("response head too large".into());
            }
            self.fill()?;
        };
        let head = self.buf.get(..head_len).unwrap_or_default();
        let (status, body_len, close) = parse_head(head)?;
        if close {
            return Err("Envoy asked to close the connection (connection: close)".into());
        }
        while self.buf.len() < head_len + body_len {
            self.fill()?;
        }
        self.buf.drain(..head_len + body_len);
        Ok(status)
    }

    fn fill(&mut self) -> Result<(), String> {
        let mut chunk = [0u8; 16 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) => Err("Envoy closed the connection".into()),
            Ok(n) => {
                self.buf
                    .extend_from_slice(chunk.get(..n).unwrap_or_default());
                Ok(())
            }
            Err(e) => Err(format!("read: {e}")),
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Status, body length and whether the server closes, from a response head.
fn parse_head(head: &[u8]) -> Result<(u16, usize, bool), String> {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut body_len = None;
    let mut close = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("content-length") {
            body_len = Some(
                value
                    .parse::<usize>()
                    .map_err(|_| format!("bad content-length {value:?}"))?,
            );
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(format!("unsupported transfer-encoding {value:?}"));
        } else if name.eq_ignore_ascii_case("connection") && value.eq_ignore_ascii_case("close") {
            close = true;
        }
    }
    let no_body = status == 204 || status == 304 || (100..200).contains(&status);
    let body_len = match body_len {
        Some(n) => n,
        None if no_body => 0,
        None => return Err(format!("response {status} without content-length")),
    };
    Ok((status, body_len, close))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads() {
        let cases: &[(&str, Result<(u16, usize, bool), &str>)] = &[
            (
                "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
                Ok((200, 0, false)),
            ),
            (
                "HTTP/1.1 401 Unauthorized\r\nContent-Length: 12\r\nconnection: close\r\n\r\n",
                Ok((401, 12, true)),
            ),
            ("HTTP/1.1 204 No Content\r\n\r\n", Ok((204, 0, false))),
            ("HTTP/1.1 200 OK\r\n\r\n", Err("without content-length")),
            (
                "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
                Err("transfer-encoding"),
            ),
            ("HTTP/1.0 200 OK\r\n\r\n", Err("bad status line")),
            (
                "HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n",
                Err("bad content-length"),
            ),
        ];
        for (head, want) in cases {
            match (parse_head(head.as_bytes()), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, *want, "{head}"),
                (Err(e), Err(needle)) => assert!(e.contains(needle), "{e} lacks {needle}"),
                (got, want) => panic!("{head:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    /// Against a local server that answers three pipelined-looking responses in odd pieces.
    #[test]
    fn reads_responses_back_to_back_on_one_connection() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut seen = 0;
            let mut buf = [0u8; 1024];
            let mut got = Vec::new();
            while seen < 3 {
                let n = s.read(&mut buf).unwrap();
                got.extend_from_slice(&buf[..n]);
                while let Some(i) = find(&got, b"\r\n\r\n") {
                    got.drain(..i + 4);
                    seen += 1;
                    let reply: &[u8] = if seen == 3 {
                        b"HTTP/1.1 403 Forbidden\r\ncontent-length: 2\r\n\r\nno"
                    } else {
                        b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nyes"
                    };
                    s.write_all(reply).unwrap();
                }
            }
        });
        let mut c = Connection::open(port).unwrap();
        let req = b"GET / HTTP/1.1\r\nhost: x\r\n\r\n";
        assert!(c.send_many(req, 2, 200).is_ok());
        let err = c.send_many(req, 1, 200).unwrap_err();
        assert!(err.contains("got status 403"), "{err}");
        server.join().unwrap();
    }
}
