//! A Rate Limit Service (Envoy RLS v3, `envoy.service.ratelimit.v3.RateLimitService/
//! ShouldRateLimit`) for the quota filter's global tier, counting in Redis. Test and demo tool,
//! not a product. (Meant to sit on Kuadrant's `limitador` crate, but limitador 0.12-0.14 does not
//! compile with `redis_storage` alone, and RocksDB is too long a build for CI: the counting is a
//! small atomic Redis script instead.)
//!
//! Each descriptor must carry its limit (the RLS limit override: requests per unit); it is
//! counted in fixed windows aligned on the Unix epoch (a month unit is 30 days), under the Redis
//! key `rls:<domain>:<requests>:<seconds>:<window>:<entries>`, charged `hits_addend` (the
//! descriptor's, else the request's, else 1). A hit that would pass the limit is not charged. Descriptors are checked in order; the first over its limit stops the
//! walk (the ones before it were charged: a request can be under-admitted, never over-admitted).
//! Descriptors without a limit are reported OK and not counted.
//!
//! Run it as `rls-server --port <p> --redis redis://127.0.0.1:<port>` (it prints `listening on
//! <port>` once it accepts connections; `--port 0` picks a free port), or in-process from a test
//! with [`RlsServer::start`], which [`RlsServer::stop`]s it again.
//!
//! Tests that must not see a window end pass a [`Clock`] that starts at a chosen instant
//! ([`RlsServer::start_with_clock`]): the server's own setting, never anything a request says.
//!
//! gRPC over HTTP/2 (h2c) is served with hyper; the messages are `quota::rls`'s, so the filter
//! and this server share one tested codec.

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use quota::rls::{self, Code, Status};
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

const PATH: &str = "/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit";
/// Largest request message accepted.
const MAX_MESSAGE: usize = 64 * 1024;

/// A unary gRPC response body: one data frame, then the trailers.
struct GrpcBody {
    frames: Vec<Frame<Bytes>>,
}

impl hyper::body::Body for GrpcBody {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.frames.is_empty() {
            Poll::Ready(None)
        } else {
            Poll::Ready(Some(Ok(self.frames.remove(0))))
        }
    }
}

fn grpc_reply(message: Option<Vec<u8>>, status: u32, text: &str) -> Response<GrpcBody> {
    let mut frames = Vec::new();
    if let Some(m) = message {
        let mut framed = Vec::with_capacity(m.len() + 5);
        framed.push(0);
        framed.extend_from_slice(&u32::try_from(m.len()).unwrap_or(u32::MAX).to_be_bytes());
        framed.extend_from_slice(&m);
        frames.push(Frame::data(Bytes::from(framed)));
    }
    let mut trailers = hyper::HeaderMap::new();
    trailers.insert("grpc-status", status.into());
    if let Ok(v) = text.parse() {
        trailers.insert("grpc-message", v);
    }
    frames.push(Frame::trailers(trailers));
    let mut resp = Response::new(GrpcBody { frames });
    resp.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/grpc"),
    );
    resp
}

/// Checks and charges one counter atomically: `{over (0/1), remaining, ms to reset}`.
const SCRIPT: &str = r"
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local limit = tonumber(ARGV[1])
local hits = tonumber(ARGV[2])
if cur + hits > limit then
  return {1, limit - cur, redis.call('PTTL', KEYS[1])}
end
local n = redis.call('INCRBY', KEYS[1], hits)
if n == hits then redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3])) end
return {0, limit - n, redis.call('PTTL', KEYS[1])}
";

type Redis = redis::aio::MultiplexedConnection;

/// Where the server's windows take "now" from.
#[derive(Debug, Clone, Copy)]
pub enum Clock {
    /// The system clock.
    System,
    /// Starts at this Unix second when the server starts and runs at real speed from there:
    /// a test picks an instant far from any window's end.
    StartingAt {
        unix: u64,
        started: std::time::Instant,
    },
}

impl Clock {
    /// A clock that reads `unix` now.
    pub fn starting_at(unix: u64) -> Self {
        Self::StartingAt {
            unix,
            started: std::time::Instant::now(),
        }
    }

    fn now(&self) -> Result<u64, String> {
        match self {
            Self::System => Ok(std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_err(|e| e.to_string())?
                .as_secs()),
            Self::StartingAt { unix, started } => {
                Ok(unix.saturating_add(started.elapsed().as_secs()))
            }
        }
    }
}

async fn should_rate_limit(
    redis: &Redis,
    req: rls::Request,
    clock: Clock,
) -> Result<Vec<u8>, String> {
    let script = redis::Script::new(SCRIPT);
    let now = clock.now()?;
    let mut statuses = Vec::with_capacity(req.descriptors.len());
    let mut units = Vec::with_capacity(req.descriptors.len());
    let mut overall = Code::Ok;
    for d in &req.descriptors {
        let unchecked = Status {
            code: Code::Ok,
            requests_per_unit: d.limit.map_or(0, |l| l.0),
            limit_name: String::new(),
            limit_remaining: 0,
            reset_seconds: 0,
        };
        units.push(d.limit.map(|l| l.1));
        // No limit: nothing to count. Once one descriptor is over, the rest are not charged.
        let (Some((requests, unit)), Code::Ok) = (d.limit, overall) else {
            statuses.push(unchecked);
            continue;
        };
        let seconds = unit.seconds();
        let window = now / seconds;
        let ttl = (window + 1) * seconds - now;
        let entries: Vec<String> = d.entries.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let key = format!(
            "rls:{}:{requests}:{seconds}:{window}:{}",
            req.domain,
            entries.join("|")
        );
        let hits = d.hits_addend.unwrap_or(if req.hits_addend == 0 {
            1
        } else {
            u64::from(req.hits_addend)
        });
        let mut conn = redis.clone();
        let (over, remaining, pttl): (i64, i64, i64) = script
            .key(&key)
            .arg(requests)
            .arg(hits)
            .arg(ttl)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| format!("redis: {e}"))?;
        let code = if over == 1 {
            overall = Code::OverLimit;
            Code::OverLimit
        } else {
            Code::Ok
        };
        let reset = if pttl > 0 {
            u64::try_from(pttl).unwrap_or(0).div_ceil(1000)
        } else {
            ttl
        };
        statuses.push(Status {
            code,
            requests_per_unit: requests,
            limit_name: String::new(),
            limit_remaining: u32::try_from(remaining.max(0)).unwrap_or(u32::MAX),
            reset_seconds: reset.max(1),
        });
    }
    Ok(rls::encode_response(
        &rls::Response { overall, statuses },
        &units,
    ))
}

async fn handle(
    redis: Arc<Redis>,
    clock: Clock,
    req: Request<Incoming>,
) -> Result<Response<GrpcBody>, Infallible> {
    if req.uri().path() != PATH {
        return Ok(grpc_reply(None, 12, "unimplemented"));
    }
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return Ok(grpc_reply(None, 13, &format!("reading the request: {e}"))),
    };
    if body.len() > MAX_MESSAGE + 5 || body.len() < 5 {
        return Ok(grpc_reply(None, 3, "bad message size"));
    }
    let Some(message) = body.get(5..) else {
        return Ok(grpc_reply(None, 3, "bad frame"));
    };
    let request = match rls::decode_request(message) {
        Ok(r) => r,
        Err(_) => return Ok(grpc_reply(None, 3, "malformed RateLimitRequest")),
    };
    match should_rate_limit(&redis, request, clock).await {
        Ok(bytes) => Ok(grpc_reply(Some(bytes), 0, "")),
        Err(e) => Ok(grpc_reply(None, 14, &e)),
    }
}

/// Serves RLS on `listener` until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, redis_url: &str) -> Result<(), String> {
    serve_with_clock(listener, redis_url, Clock::System).await
}

/// [`serve`] with windows on `clock`.
pub async fn serve_with_clock(
    listener: tokio::net::TcpListener,
    redis_url: &str,
    clock: Clock,
) -> Result<(), String> {
    let client = redis::Client::open(redis_url).map_err(|e| format!("redis {redis_url}: {e}"))?;
    let conn = client
        .get_multiplexed_tokio_connection()
        .await
        .map_err(|e| format!("redis {redis_url}: {e}"))?;
    let conn = Arc::new(conn);
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let conn = Arc::clone(&conn);
        tokio::spawn(async move {
            let service =
                hyper::service::service_fn(move |req| handle(Arc::clone(&conn), clock, req));
            let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// An in-process server on a free loopback port, with its own runtime; stopped on drop.
pub struct RlsServer {
    port: u16,
    runtime: Option<tokio::runtime::Runtime>,
}

impl RlsServer {
    /// Starts serving on `port` (0: a free one) against the Redis at `redis_url`.
    pub fn start(port: u16, redis_url: &str) -> Result<Self, String> {
        Self::start_with_clock(port, redis_url, Clock::System)
    }

    /// [`RlsServer::start`] with windows on `clock`.
    pub fn start_with_clock(port: u16, redis_url: &str, clock: Clock) -> Result<Self, String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(("127.0.0.1", port)))
            .map_err(|e| format!("binding port {port}: {e}"))?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        // Connect to Redis first, so a bad URL is an error here, not a silent dead server.
        let client =
            redis::Client::open(redis_url).map_err(|e| format!("redis {redis_url}: {e}"))?;
        runtime
            .block_on(client.get_multiplexed_tokio_connection())
            .map_err(|e| format!("redis {redis_url}: {e}"))?;
        let url = redis_url.to_string();
        runtime.spawn(async move {
            if let Err(e) = serve_with_clock(listener, &url, clock).await {
                eprintln!("rls-server: {e}");
            }
        });
        Ok(Self {
            port,
            runtime: Some(runtime),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops accepting and drops every connection.
    pub fn stop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl Drop for RlsServer {
    fn drop(&mut self) {
        self.stop();
    }
}
