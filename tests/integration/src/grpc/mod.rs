//! A small gRPC service, `pets.v1.Pets`, and a blocking client for it: what the e2e tests
//! (`tests/grpc.rs`) and the demo (`demo-grpc serve`, `demo-grpc call …`) put behind Envoy.
//!
//! No protoc and no build script: the messages are hand-written `prost::Message` structs
//! ([`messages`]), the server dispatches on the path to tonic's own unary / streaming handlers
//! with the prost codec ([`server`]), and the client calls tonic's generic `Grpc` client
//! ([`client`]). Each side runs its own tokio runtime on its own thread, so tests stay plain
//! `#[test]` functions.
//!
//! The methods:
//! - `GetPet` (unary, a read) and `DeletePet` (unary, a write): one [`messages::Pet`];
//! - `ListPets` (server streaming, a read): `count` pets;
//! - `AddPets` (client streaming, a write): how many pets were sent.
//!
//! Every answer carries the request metadata the service saw ([`messages::Pet::seen`]), so a
//! test asserts what went upstream.

pub mod client;
pub mod messages;
pub mod server;

/// The service's full name.
pub const SERVICE: &str = "pets.v1.Pets";
