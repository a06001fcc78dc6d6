//! The `pets.v1.Pets` server: tonic's unary and streaming handlers with the prost codec,
//! dispatched on the method's name (what generated code does, written out).

use std::convert::Infallible;
use std::future::{ready, Future, Ready};
use std::net::TcpListener;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};

use tonic::body::Body;
use tonic::server::{Grpc, NamedService};
use tonic::{Request, Response, Status, Streaming};
use tonic_prost::ProstCodec;
use tower_service::Service;

use super::messages::{AddPetsReply, GetPetRequest, ListPetsRequest, Pet};

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Metadata the answers leave out of `seen`: HTTP/2 and gRPC plumbing.
const PLUMBING: [&str; 4] = ["te", "content-type", "user-agent", "grpc-accept-encoding"];

fn seen(metadata: &tonic::metadata::MetadataMap) -> Vec<String> {
    let headers = metadata.clone().into_headers();
    headers
        .iter()
        .filter(|(k, _)| !PLUMBING.contains(&k.as_str()))
        .map(|(k, v)| format!("{}: {}", k, String::from_utf8_lossy(v.as_bytes())))
        .collect()
}

fn pet(id: u64, seen: Vec<String>) -> Pet {
    Pet {
        id,
        name: format!("pet-{id}"),
        seen,
    }
}

/// The service as tonic's server takes it.
#[derive(Clone, Copy, Debug, Default)]
pub struct PetsServer;

impl NamedService for PetsServer {
    const NAME: &'static str = super::SERVICE;
}

impl Service<http::Request<Body>> for PetsServer {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<http::Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let method = req.uri().path().rsplit('/').next().unwrap_or("").to_owned();
        Box::pin(async move {
            Ok(match method.as_str() {
                "GetPet" | "DeletePet" => Grpc::new(ProstCodec::default()).unary(Unary, req).await,
                "ListPets" => {
                    Grpc::new(ProstCodec::default())
                        .server_streaming(ListPets, req)
                        .await
                }
                "AddPets" => {
                    Grpc::new(ProstCodec::default())
                        .client_streaming(AddPets, req)
                        .await
                }
                _ => Status::unimplemented(format!("no method {method}")).into_http(),
            })
        })
    }
}

/// `GetPet` and `DeletePet`: the pet asked for.
#[derive(Clone, Copy)]
struct Unary;

impl Service<Request<GetPetRequest>> for Unary {
    type Response = Response<Pet>;
    type Error = Status;
    type Future = Ready<Result<Response<Pet>, Status>>;
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }
    fn call(&mut self, req: Request<GetPetRequest>) -> Self::Future {
        let seen = seen(req.metadata());
        ready(Ok(Response::new(pet(req.into_inner().id, seen))))
    }
}

/// `ListPets`: `count` pets, one message each.
#[derive(Clone, Copy)]
struct ListPets;

type PetStream = tokio_stream::Iter<std::vec::IntoIter<Result<Pet, Status>>>;

impl Service<Request<ListPetsRequest>> for ListPets {
    type Response = Response<PetStream>;
    type Error = Status;
    type Future = Ready<Result<Response<PetStream>, Status>>;
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }
    fn call(&mut self, req: Request<ListPetsRequest>) -> Self::Future {
        let seen = seen(req.metadata());
        let count = req.into_inner().count.min(1000);
        let pets: Vec<Result<Pet, Status>> = (1..=u64::from(count))
            .map(|id| Ok(pet(id, seen.clone())))
            .collect();
        ready(Ok(Response::new(tokio_stream::iter(pets))))
    }
}

/// `AddPets`: how many pets the client sent.
#[derive(Clone, Copy)]
struct AddPets;

impl Service<Request<Streaming<Pet>>> for AddPets {
    type Response = Response<AddPetsReply>;
    type Error = Status;
    type Future = BoxFuture<Result<Response<AddPetsReply>, Status>>;
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }
    fn call(&mut self, req: Request<Streaming<Pet>>) -> Self::Future {
        let seen = seen(req.metadata());
        let mut stream = req.into_inner();
        Box::pin(async move {
            let mut added = 0u32;
            while stream.message().await?.is_some() {
                added = added.saturating_add(1);
            }
            Ok(Response::new(AddPetsReply { added, seen }))
        })
    }
}

static PORT: OnceLock<u16> = OnceLock::new();

/// The port of this process's `pets.v1.Pets` server on 127.0.0.1, started on first call.
pub fn grpc_port() -> u16 {
    *PORT.get_or_init(|| {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the gRPC server");
        let port = listener.local_addr().expect("its address").port();
        std::thread::Builder::new()
            .name("grpc-upstream".into())
            .spawn(move || {
                if let Err(e) = serve(listener) {
                    eprintln!("gRPC upstream stopped: {e}");
                }
            })
            .expect("spawn the gRPC server thread");
        port
    })
}

/// Serves `pets.v1.Pets` on `addr` in the foreground, forever (the demo's gRPC upstream).
pub fn serve_forever(addr: &str) -> Result<(), String> {
    let listener = TcpListener::bind(addr).map_err(|e| format!("bind {addr}: {e}"))?;
    serve(listener)
}

fn serve(listener: TcpListener) -> Result<(), String> {
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("set_nonblocking: {e}"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("grpc-upstream")
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    runtime.block_on(async move {
        let listener =
            tokio::net::TcpListener::from_std(listener).map_err(|e| format!("listener: {e}"))?;
        // One service, so no router: tonic serves it for every path and it answers
        // UNIMPLEMENTED for a method it does not have.
        tonic::transport::Server::builder()
            .serve_with_incoming(
                PetsServer,
                tonic::transport::server::TcpIncoming::from(listener),
            )
            .await
            .map_err(|e| format!("serve: {e}"))
    })
}
