//! A tiny HTTP/1.1 client over a std `TcpStream`.
//!
//! Tests need to send what client crates refuse to: duplicate headers, non-UTF-8 header bytes,
//! odd framing. So the request is written byte by byte as built, and the response is parsed by
//! hand (content-length, chunked, or read to EOF).

mod curl_h2;
mod response;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

pub(crate) use curl_h2::parse_head_block;
pub use curl_h2::send_h2;
pub use response::Response;

/// Bounds a single read and the connect: a hung server fails the test instead of hanging it.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Bounds the whole exchange against a server that drips bytes forever.
const TOTAL_TIMEOUT: Duration = Duration::from_secs(30);

/// A request under construction; `send` writes it exactly as built.
#[derive(Clone, Debug)]
pub struct Request {
    method: String,
    target: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Option<Vec<u8>>,
}

impl Request {
    pub fn new(method: &str, path_and_query: &str) -> Request {
        Request {
            method: method.to_owned(),
            target: path_and_query.to_owned(),
            headers: Vec::new(),
            body: None,
        }
    }

    pub fn get(path_and_query: &str) -> Request {
        Request::new("GET", path_and_query)
    }

    /// Adds a header; calling it twice with one name sends the header twice.
    pub fn header(self, name: &str, value: &str) -> Request {
        self.header_bytes(name, value.as_bytes())
    }

    /// Adds a header whose value is arbitrary bytes (say, invalid UTF-8).
    pub fn header_bytes(mut self, name: &str, value: &[u8]) -> Request {
        self.headers.push((name.to_owned(), value.to_vec()));
        self
    }

    /// Sets the body; `Content-Length` is added unless a framing header was given.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Request {
        self.body = Some(body.into());
        self
    }

    fn has_header(&self, name: &str) -> bool {
        self.headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    /// The bytes `send` writes: defaults `Host: localhost` and `Connection: close` unless given.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!("{} {} HTTP/1.1\r\n", self.method, self.target).into_bytes();
        if !self.has_header("host") {
            out.extend_from_slice(b"Host: localhost\r\n");
        }
        for (name, value) in &self.headers {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        if !self.has_header("connection") {
            out.extend_from_slice(b"Connection: close\r\n");
        }
        if let Some(body) = &self.body {
            if !self.has_header("content-length") && !self.has_header("transfer-encoding") {
                out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
            }
        }
        out.extend_from_slice(b"\r\n");
        if let Some(body) = &self.body {
            out.extend_from_slice(body);
        }
        out
    }

    /// Sends to 127.0.0.1:`port` on a fresh connection and reads one response.
    pub fn send(&self, port: u16) -> Result<Response, String> {
        exchange(
            port,
            &self.to_bytes(),
            self.method.eq_ignore_ascii_case("HEAD"),
        )
    }

    /// [`Request::send`] for a test: a failure panics, naming the request (its first 300
    /// characters) and the error.
    pub fn send_or_panic(&self, port: u16) -> Response {
        self.send(port).unwrap_or_else(|e| {
            let head: String = String::from_utf8_lossy(&self.to_bytes())
                .chars()
                .take(300)
                .collect();
            panic!("sending {head}…: {e}")
        })
    }
}

/// Sends raw bytes (a whole request, as malformed as the test wants) and reads one response.
pub fn send_raw(port: u16, bytes: &[u8]) -> Result<Response, String> {
    exchange(port, bytes, bytes.starts_with(b"HEAD "))
}

fn exchange(port: u16, request: &[u8], head: bool) -> Result<Response, String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
        .map_err(|e| format!("connect to {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(IO_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(IO_TIMEOUT)))
        .map_err(|e| format!("socket timeouts: {e}"))?;
    // A server may answer early and close (413, 400) before taking the whole request: keep the
    // write error, but prefer the response if there is one.
    let write_error = stream.write_all(request).err();
    let deadline = Instant::now() + TOTAL_TIMEOUT;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some(response) = response::parse(&buf, false, head)? {
            return Ok(response);
        }
        if Instant::now() > deadline {
            return Err(format!("no complete response within {TOTAL_TIMEOUT:?}"));
        }
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            // A reset after the server wrote a full response still gives that response.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => return Err(format!("read from {addr}: {e} (got {} bytes)", buf.len())),
        }
    }
    match response::parse(&buf, true, head) {
        Ok(Some(response)) => Ok(response),
        Ok(None) | Err(_) if buf.is_empty() => Err(match write_error {
            Some(e) => format!("write to {addr}: {e}; connection closed without a response"),
            None => format!("connection to {addr} closed without a response"),
        }),
        Ok(None) => Err(format!(
            "incomplete response: {:?}",
            String::from_utf8_lossy(&buf)
        )),
        Err(e) => Err(e),
    }
}
