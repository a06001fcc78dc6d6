//! A blocking client of `pets.v1.Pets` through tonic's generic client: each call runs on the
//! client's own runtime, so a plain `#[test]` (or the demo's CLI) calls it directly.

use std::time::Duration;

use http::uri::PathAndQuery;
use tonic::client::Grpc;
use tonic::metadata::{MetadataKey, MetadataValue};
use tonic::transport::Channel;
use tonic::{Request, Status};
use tonic_prost::ProstCodec;

use super::messages::{AddPetsReply, GetPetRequest, ListPetsRequest, Pet};

pub struct Client {
    runtime: tokio::runtime::Runtime,
    grpc: Grpc<Channel>,
}

/// A request with `message` and the metadata `(name, value)` pairs.
fn request<T>(message: T, metadata: &[(&str, &str)]) -> Result<Request<T>, Status> {
    let mut req = Request::new(message);
    req.set_timeout(Duration::from_secs(20));
    for (name, value) in metadata {
        let key = MetadataKey::from_bytes(name.as_bytes())
            .map_err(|e| Status::invalid_argument(format!("metadata name {name}: {e}")))?;
        let value = MetadataValue::try_from(*value)
            .map_err(|e| Status::invalid_argument(format!("metadata value of {name}: {e}")))?;
        req.metadata_mut().append(key, value);
    }
    Ok(req)
}

fn path(method: &str) -> PathAndQuery {
    PathAndQuery::try_from(format!("/{}/{method}", super::SERVICE))
        .unwrap_or_else(|_| PathAndQuery::from_static("/"))
}

impl Client {
    /// A client of `http://127.0.0.1:{port}` (HTTP/2 cleartext), connected.
    pub fn connect(port: u16) -> Result<Client, String> {
        Self::connect_as(port, None)
    }

    /// The same, its calls naming `authority` (`:authority`) instead of the address.
    pub fn connect_as(port: u16, authority: Option<&str>) -> Result<Client, String> {
        let mut endpoint = Channel::from_shared(format!("http://127.0.0.1:{port}"))
            .map_err(|e| e.to_string())?
            .connect_timeout(Duration::from_secs(10));
        if let Some(authority) = authority {
            let origin = format!("http://{authority}")
                .parse()
                .map_err(|e| format!("authority {authority}: {e}"))?;
            endpoint = endpoint.origin(origin);
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| format!("tokio runtime: {e}"))?;
        let channel = runtime
            .block_on(endpoint.connect())
            .map_err(|e| format!("connect to 127.0.0.1:{port}: {e}"))?;
        Ok(Client {
            runtime,
            grpc: Grpc::new(channel),
        })
    }

    /// A unary call: `GetPet` or `DeletePet`.
    pub fn unary(
        &mut self,
        method: &str,
        id: u64,
        metadata: &[(&str, &str)],
    ) -> Result<Pet, Status> {
        self.unary_with_metadata(method, id, metadata)
            .map(|(pet, _)| pet)
    }

    /// The same, with the response's initial metadata (its headers) as `(name, value)` pairs.
    pub fn unary_with_metadata(
        &mut self,
        method: &str,
        id: u64,
        metadata: &[(&str, &str)],
    ) -> Result<(Pet, Vec<(String, String)>), Status> {
        let req = request(GetPetRequest { id }, metadata)?;
        let grpc = &mut self.grpc;
        self.runtime.block_on(async {
            grpc.ready()
                .await
                .map_err(|e| Status::unavailable(e.to_string()))?;
            let response = grpc.unary(req, path(method), ProstCodec::default()).await?;
            let headers = response
                .metadata()
                .clone()
                .into_headers()
                .iter()
                .map(|(k, v)| {
                    let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
                    (k.to_string(), v)
                })
                .collect();
            Ok((response.into_inner(), headers))
        })
    }

    /// `ListPets` (server streaming): every pet of the stream.
    pub fn list_pets(&mut self, count: u32, metadata: &[(&str, &str)]) -> Result<Vec<Pet>, Status> {
        let req = request(ListPetsRequest { count }, metadata)?;
        let grpc = &mut self.grpc;
        self.runtime.block_on(async {
            grpc.ready()
                .await
                .map_err(|e| Status::unavailable(e.to_string()))?;
            let mut stream = grpc
                .server_streaming(req, path("ListPets"), ProstCodec::default())
                .await?
                .into_inner();
            let mut pets = Vec::new();
            while let Some(pet) = stream.message().await? {
                pets.push(pet);
            }
            Ok(pets)
        })
    }

    /// `AddPets` (client streaming) with `count` pets.
    pub fn add_pets(
        &mut self,
        count: u32,
        metadata: &[(&str, &str)],
    ) -> Result<AddPetsReply, Status> {
        let pets: Vec<Pet> = (1..=u64::from(count))
            .map(|id| Pet {
                id,
                name: format!("new-{id}"),
                seen: Vec::new(),
            })
            .collect();
        let req = request(tokio_stream::iter(pets), metadata)?;
        let grpc = &mut self.grpc;
        self.runtime.block_on(async {
            grpc.ready()
                .await
                .map_err(|e| Status::unavailable(e.to_string()))?;
            grpc.client_streaming(req, path("AddPets"), ProstCodec::default())
                .await
                .map(tonic::Response::into_inner)
        })
    }
}
