//! The in-process upstream: one per test binary, started on first use, shared by every test.
//!
//! It runs on its own thread with its own tokio runtime, so tests stay plain `#[test]` functions
//! and never need an async runtime themselves. What it answers is in [`handlers`].

mod handlers;

use std::convert::Infallible;
use std::net::TcpListener;
use std::sync::OnceLock;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

pub use handlers::{EchoRequest, Reply};

static PORT: OnceLock<u16> = OnceLock::new();

/// The port of the shared echo upstream on 127.0.0.1, starting it on first call.
pub fn upstream_port() -> u16 {
    *PORT.get_or_init(|| match start() {
        Ok(port) => port,
        Err(e) => panic!("cannot start the echo upstream: {e}"),
    })
}

/// Serves the echo upstream on `addr` in the foreground, forever: the demo's upstream
/// (`demo-upstream --port 10080`).
pub fn serve_forever(addr: &str) -> Result<(), String> {
    let listener = TcpListener::bind(addr).map_err(|e| format!("bind {addr}: {e}"))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("set_nonblocking: {e}"))?;
    runtime()?.block_on(serve(listener));
    Ok(())
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("echo-upstream")
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))
}

fn start() -> Result<u16, String> {
    // Bind before spawning so the port is known (and accepting) when this returns.
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("set_nonblocking: {e}"))?;
    let runtime = runtime()?;
    std::thread::Builder::new()
        .name("echo-upstream".into())
        .spawn(move || runtime.block_on(serve(listener)))
        .map_err(|e| format!("spawn: {e}"))?;
    Ok(port)
}

async fn serve(listener: TcpListener) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("echo upstream: {e}");
            return;
        }
    };
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            // A connection error (Envoy resetting a stream) is not the test's business.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service_fn(handle))
                .await;
        });
    }
}

async fn handle(req: hyper::Request<Incoming>) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes().to_vec(),
        Err(e) => return Ok(to_hyper(Reply::text(400, &format!("reading body: {e}")))),
    };
    let request = EchoRequest {
        method: parts.method.as_str().to_owned(),
        path: parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.to_string(), |pq| pq.as_str().to_owned()),
        // hyper's HeaderMap yields names in first-seen order with repeated names grouped
        // together (values in the order received); names are already lowercase.
        headers: parts
            .headers
            .iter()
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                (name.as_str().to_owned(), value)
            })
            .collect(),
        body,
    };
    Ok(to_hyper(handlers::dispatch(&request)))
}

fn to_hyper(reply: Reply) -> hyper::Response<Full<Bytes>> {
    let mut response = hyper::Response::new(Full::new(Bytes::from(reply.body)));
    *response.status_mut() = hyper::StatusCode::from_u16(reply.status)
        .unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in reply.headers {
        if let (Ok(name), Ok(value)) = (
            hyper::header::HeaderName::from_bytes(name.as_bytes()),
            hyper::header::HeaderValue::from_str(&value),
        ) {
            response.headers_mut().append(name, value);
        }
    }
    response
}
