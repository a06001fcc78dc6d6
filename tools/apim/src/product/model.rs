//! The product file (`apim.yaml`) as typed values: what `apim check` checks and `apim render`
//! renders. Fields a filter passes on as they are (GraphQL limits, a transform's steps, an
//! inline JWKS) stay JSON here and are checked by that filter's own validator at render.
//! The schema, field by field, is `schemas/apim.schema.json` and the README's "Product file".

use super::read::At;
use crate::yaml_pos::Node;
use crate::yaml_pos::Pos;

/// Which form of the suite the rendered gateway loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// Five Wasm modules, one per filter.
    Modules,
    /// One Wasm module holding the five stages (`apim_suite.wasm`).
    Suite,
    /// Five dynamic modules (`libapim_*.so`).
    Native,
    /// The suite as one dynamic module.
    NativeSuite,
}

impl Form {
    pub const NAMES: [&'static str; 4] = ["modules", "suite", "native", "native-suite"];

    pub fn parse(s: &str) -> Option<Form> {
        match s {
            "modules" => Some(Form::Modules),
            "suite" => Some(Form::Suite),
            "native" => Some(Form::Native),
            "native-suite" => Some(Form::NativeSuite),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub address: String,
    pub port: u64,
    pub pos: Pos,
}

/// The HTTP connection manager's hardening: path handling and the client address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hardening {
    pub normalize_path: bool,
    pub merge_slashes: bool,
    /// `reject` (400), `unescape_and_redirect`, `unescape_and_forward` or `keep`.
    pub escaped_slashes: String,
    pub use_remote_address: bool,
    pub xff_trusted_hops: u64,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Gateway {
    pub form: Form,
    pub listener: Address,
    pub admin: Option<Address>,
    /// Where the modules are, relative to where Envoy runs (default per form).
    pub modules_dir: Option<String>,
    pub hardening: Hardening,
    pub realm: Option<String>,
    pub cors_preflight: bool,
    /// api-key-auth's `sources` (JSON, its validator checks it).
    pub key_sources: Option<Node>,
    /// `{consumer_id_header, consumer_plan_header}`.
    pub forward: Option<Node>,
    pub forward_claims: Option<Node>,
    pub publish_claims: bool,
    /// Where the JSON access log goes (insights); `None`: no access log.
    pub access_log: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct QuotaSettings {
    pub default_plan: Option<At<String>>,
    /// `deny`, `unlimited` or a plan.
    pub unknown_plan: At<String>,
    pub missing_key: String,
    /// `closed` (the store failing refuses) or `open` (admits).
    pub failure: At<String>,
    pub headers: Option<Node>,
    pub shadow: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub name: At<String>,
    /// quota's limits (`{requests, per, name?}`), checked by quota's validator.
    pub limits: Vec<Node>,
    /// graphql-guard's limits for this plan.
    pub graphql: Option<Node>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub pos: Pos,
    pub sha256: At<String>,
    pub not_before: Option<At<String>>,
    pub expires_at: Option<At<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumer {
    pub id: At<String>,
    pub plan: Option<At<String>>,
    pub groups: Vec<At<String>>,
    pub scopes: Vec<At<String>>,
    pub keys: Vec<Key>,
    pub disabled: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Jwks {
    /// The JWKS document itself.
    Inline(Node),
    /// Fetched from `path` on `upstream` (a declared upstream).
    Remote {
        upstream: At<String>,
        path: String,
        refresh_seconds: Option<u64>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Issuer {
    pub name: At<String>,
    pub issuer: At<String>,
    pub audiences: Vec<At<String>>,
    pub algorithms: Vec<At<String>>,
    pub jwks: Option<Jwks>,
    /// The scopes this issuer's tokens may carry (what `apim check` knows it can grant).
    pub scopes: Vec<At<String>>,
    /// The plan of every caller with this issuer's token.
    pub plan: Option<At<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    pub name: At<String>,
    pub address: String,
    pub port: u64,
    pub http2: bool,
    /// TLS to the upstream, with this SNI.
    pub tls_sni: Option<String>,
    /// The Kubernetes Service behind it (HTTPRoute backendRefs): name and port.
    pub service: (String, u64),
}

/// Where the Kubernetes targets put things.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deploy {
    /// Namespace of the HTTPRoutes and EnvoyExtensionPolicies.
    pub namespace: String,
    /// OCI registry of the module images (`<registry>/<image>:<tag>`).
    pub registry: String,
    pub tag: String,
    /// Namespace and workload labels of Istio's ingress gateway.
    pub istio_namespace: String,
    pub istio_selector: Vec<(String, String)>,
    /// The Gateway the HTTPRoutes attach to: name, namespace.
    pub gateway: (String, String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathKind {
    Exact,
    Prefix,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathMatch {
    pub kind: PathKind,
    pub path: At<String>,
    pub ignore_case: bool,
    /// The methods the route takes (empty: every method).
    pub methods: Vec<At<String>>,
}

/// The methods a route may name: Gateway API's (an HTTPRoute matches no other).
pub const METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// An API key is required (scopes: the consumer's, or a token's).
    Key,
    /// A token only: api-key-auth lets the request through, scope-authz requires the token.
    Token,
    /// No authentication at all.
    None,
    /// No key: the request continues as this (keyless) consumer; a wrong key is still refused.
    Anonymous(At<String>),
}

/// Scopes a route requires: the same for every method, or reads (GET, HEAD) and writes (every
/// other method, so a client that picks an unusual method gets the stricter requirement).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scopes {
    All(Vec<At<String>>),
    ReadWrite {
        read: Vec<At<String>>,
        write: Vec<At<String>>,
    },
}

impl Scopes {
    pub fn all(&self) -> Vec<&At<String>> {
        match self {
            Scopes::All(s) => s.iter().collect(),
            Scopes::ReadWrite { read, write } => read.iter().chain(write).collect(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrpcMethod {
    pub name: At<String>,
    pub scopes: Option<Vec<At<String>>>,
    pub plan: Option<At<String>>,
    pub cost: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteQuota {
    Skip,
    Count {
        plan: Option<At<String>>,
        cost: Option<u64>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum RouteTarget {
    Upstream(At<String>),
    Respond { status: u64, body: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    pub name: At<String>,
    pub pos: Pos,
    pub path: PathMatch,
    /// The gRPC service this route serves (`/<service>/<Method>`).
    pub grpc: Option<At<String>>,
    pub grpc_methods: Vec<GrpcMethod>,
    pub target: RouteTarget,
    pub auth: Auth,
    pub allow_groups: Vec<At<String>>,
    pub allow_consumers: Vec<At<String>>,
    pub scopes: Option<Scopes>,
    pub quota: RouteQuota,
    pub graphql: bool,
    /// transform's rules for this route, without their `match` (the route's path is).
    pub transforms: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Api {
    pub name: At<String>,
    pub hosts: Vec<String>,
    pub routes: Vec<Route>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Product {
    /// Comment lines for the rendered files' header.
    pub description: Option<String>,
    pub gateway: Gateway,
    pub deploy: Deploy,
    pub quota: QuotaSettings,
    /// graphql-guard's settings other than `rules` and `plans` (limits, introspection, …).
    pub graphql: Option<Node>,
    /// transform's settings other than `rules` (`max_body_bytes`, …).
    pub transform: Option<Node>,
    pub plans: Vec<Plan>,
    pub consumers: Vec<Consumer>,
    pub issuers: Vec<Issuer>,
    pub upstreams: Vec<Upstream>,
    pub apis: Vec<Api>,
}

impl Product {
    pub fn routes(&self) -> impl Iterator<Item = &Route> {
        self.apis.iter().flat_map(|a| a.routes.iter())
    }

    pub fn plan(&self, name: &str) -> Option<&Plan> {
        self.plans.iter().find(|p| p.name.v == name)
    }

    pub fn consumer(&self, id: &str) -> Option<&Consumer> {
        self.consumers.iter().find(|c| c.id.v == id)
    }

    pub fn upstream(&self, name: &str) -> Option<&Upstream> {
        self.upstreams.iter().find(|u| u.name.v == name)
    }
}
