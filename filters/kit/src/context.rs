//! The names under which the filters hand the request's shared context to each other (and to
//! access logs, Lua, other filters) as Envoy filter state: single-segment keys, written with
//! `set_property` (multi-segment keys do not round-trip in Envoy 1.40). Inside the suite module
//! the same values pass in memory (see [`crate::stage::RequestHost`]) and are still published.

/// The caller's identity ([`crate::identity::Identity`], compact JSON): api-key-auth or
/// scope-authz write it; scope-authz, graphql-guard, quota and transform read it.
pub const CONSUMER: &str = "apim_consumer";
/// The GraphQL operation's computed cost (decimal): graphql-guard writes it, quota charges it.
pub const COST: &str = "apim_cost";
/// The verified token's claims (JSON): scope-authz writes them, transform's templates read them.
pub const CLAIMS: &str = "apim_claims";
