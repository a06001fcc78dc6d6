//! The messages of `pets.v1.Pets`, written by hand (what `prost-build` would generate from
//! `pets.proto`), and the `google.rpc` messages a refusal's `grpc-status-details-bin` holds.
#![allow(clippy::derive_partial_eq_without_eq)]

#[derive(Clone, PartialEq, prost::Message)]
pub struct GetPetRequest {
    #[prost(uint64, tag = "1")]
    pub id: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ListPetsRequest {
    #[prost(uint32, tag = "1")]
    pub count: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Pet {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(string, tag = "2")]
    pub name: String,
    /// The request metadata the service received, `name: value`, in order (pseudo-headers and
    /// HTTP/2 plumbing left out).
    #[prost(string, repeated, tag = "3")]
    pub seen: Vec<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct AddPetsReply {
    #[prost(uint32, tag = "1")]
    pub added: u32,
    #[prost(string, repeated, tag = "3")]
    pub seen: Vec<String>,
}

/// `google.rpc.Status`
#[derive(Clone, PartialEq, prost::Message)]
pub struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<Any>,
}

/// `google.protobuf.Any`
#[derive(Clone, PartialEq, prost::Message)]
pub struct Any {
    #[prost(string, tag = "1")]
    pub type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// `google.rpc.ErrorInfo`
#[derive(Clone, PartialEq, prost::Message)]
pub struct ErrorInfo {
    #[prost(string, tag = "1")]
    pub reason: String,
    #[prost(string, tag = "2")]
    pub domain: String,
    #[prost(btree_map = "string, string", tag = "3")]
    pub metadata: std::collections::BTreeMap<String, String>,
}

/// `google.protobuf.Duration`
#[derive(Clone, PartialEq, prost::Message)]
pub struct Duration {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

/// `google.rpc.RetryInfo`
#[derive(Clone, PartialEq, prost::Message)]
pub struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    pub retry_delay: Option<Duration>,
}

/// A refusal's `google.rpc.Status` as the client decodes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub code: i32,
    pub message: String,
    /// `ErrorInfo`, when there is one.
    pub info: Option<(String, String, std::collections::BTreeMap<String, String>)>,
    /// `RetryInfo.retry_delay` in seconds, when there is one.
    pub retry_delay: Option<i64>,
}

impl Refusal {
    /// Decodes `grpc-status-details-bin` (already base64-decoded, as tonic hands it over).
    pub fn decode(details: &[u8]) -> Result<Refusal, String> {
        use prost::Message as _;
        let status = RpcStatus::decode(details).map_err(|e| format!("google.rpc.Status: {e}"))?;
        let mut refusal = Refusal {
            code: status.code,
            message: status.message,
            info: None,
            retry_delay: None,
        };
        for any in status.details {
            match any.type_url.as_str() {
                "type.googleapis.com/google.rpc.ErrorInfo" => {
                    let i = ErrorInfo::decode(any.value.as_slice())
                        .map_err(|e| format!("ErrorInfo: {e}"))?;
                    refusal.info = Some((i.reason, i.domain, i.metadata));
                }
                "type.googleapis.com/google.rpc.RetryInfo" => {
                    let r = RetryInfo::decode(any.value.as_slice())
                        .map_err(|e| format!("RetryInfo: {e}"))?;
                    refusal.retry_delay = r.retry_delay.map(|d| d.seconds);
                }
                other => return Err(format!("unexpected detail {other}")),
            }
        }
        Ok(refusal)
    }
}
