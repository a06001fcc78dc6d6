//! The command line, declared once with clap's derive: every command and subcommand has
//! `--help` (exit 0); a usage error names what is wrong (an unknown option by its name) and
//! exits 2; `apim completions <shell>` prints a completion script from the same declaration.

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Helper CLI of the APIM filter suite: API keys, offline config validation, demo tokens,
/// OCI images and the deployment manifests' pinned digests.
///
/// Exit codes: 0 ok, 1 invalid config (or stale manifests), 2 usage or I/O error.
#[derive(Debug, Parser)]
#[command(name = "apim", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// API keys: make one, or the config entry of one you have.
    #[command(subcommand)]
    Key(KeyCommand),
    /// A consumer's keys inside a product file (apim.yaml): add, rotate, revoke. A new key is
    /// printed once on stdout; the file keeps only its SHA-256 digest.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Check filter configs with the filters' own parsers, as Envoy would on load.
    Validate(ValidateArgs),
    /// Check a product file (apim.yaml): every reference resolved, risky choices flagged,
    /// reported as FILE:LINE:COLUMN; exit 1 on an error.
    Check {
        /// The product file.
        file: String,
        /// Warnings fail too (exit 1).
        #[arg(long)]
        strict: bool,
    },
    /// Render a product file (apim.yaml) into a data plane's files.
    Render {
        /// The product file.
        file: String,
        /// Which data plane.
        #[arg(long, value_enum)]
        target: RenderTarget,
        /// Write the files into DIR instead of printing them.
        #[arg(short = 'o', long = "out", value_name = "DIR")]
        out: Option<String>,
    },
    /// What the gateway's JSON access log says per consumer, plan and route: requests,
    /// refusals by reason, GraphQL cost, the most of each quota limit used, latency p50/p99.
    Insights {
        /// The access log (as every bootstrap `apim render` makes writes it).
        log: String,
        /// Only requests from this instant (2026-12-02T00:00:00Z) or this long ago (1h, 7d).
        #[arg(long, value_name = "WHEN")]
        since: Option<String>,
        /// The report as JSON instead of tables.
        #[arg(long)]
        json: bool,
        /// Also write a self-contained HTML report with requests over time per consumer and plan.
        #[arg(long, value_name = "OUT")]
        html: Option<String>,
    },
    /// Demo access tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// OCI images of the modules (Wasm compat variant), without a Docker engine.
    #[command(subcommand)]
    Oci(OciCommand),
    /// The marked sha256 lines of the deployment manifests (envoy/istio, envoy/gateway-api).
    #[command(subcommand)]
    Manifests(ManifestsCommand),
    /// JSON Schemas for kubeconform from CRD YAML (the CRDs' own OpenAPI schemas, unknown
    /// fields refused): OUT/<group>/<kind>_<version>.json.
    CrdSchemas {
        /// The folder to write them in.
        out: String,
        /// CRD YAML files (multi-document files are fine; other kinds are skipped).
        #[arg(required = true)]
        files: Vec<String>,
    },
    /// Print a shell completion script (e.g. `apim completions bash > /etc/bash_completion.d/apim`).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// A new API key (32 random bytes, base64url), printed once, with its config entry; with
    /// --consumer, the whole consumer entry for api-key-auth's `consumers`.
    New(KeyNewArgs),
    /// The config entry ({"sha256": …}) of an existing key.
    Hash {
        /// The key; read from stdin when absent (a trailing newline is not part of it).
        key: Option<String>,
    },
}

#[derive(Debug, Args, PartialEq, Eq)]
pub struct KeyNewArgs {
    /// The consumer's id: prints the whole consumer entry, ready to paste into `consumers`.
    #[arg(long, value_name = "ID")]
    pub consumer: Option<String>,
    /// The consumer's plan (quota and graphql-guard limits).
    #[arg(long, value_name = "PLAN", requires = "consumer")]
    pub plan: Option<String>,
    /// The consumer's scopes, space-separated ("pets:read pets:write"); repeatable.
    #[arg(long, value_name = "SCOPES", requires = "consumer")]
    pub scopes: Vec<String>,
    /// The consumer's groups, comma- or space-separated; repeatable.
    #[arg(long, value_name = "GROUPS", requires = "consumer")]
    pub groups: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Add a key to CONSUMER, optionally valid only from/until an instant (RFC 3339).
    Add {
        file: String,
        consumer: String,
        #[arg(long, value_name = "RFC3339")]
        not_before: Option<String>,
        #[arg(long, value_name = "RFC3339")]
        expires_at: Option<String>,
    },
    /// A new key for CONSUMER, valid now; its other keys expire after the overlap.
    Rotate {
        file: String,
        consumer: String,
        /// How long the old keys keep working: 7d, 36h, 90m, 600s.
        #[arg(long, default_value = "7d")]
        overlap: String,
    },
    /// Remove one of CONSUMER's keys at once.
    Revoke {
        file: String,
        consumer: String,
        /// The first 8 or more hex digits of the key's sha256 (as the file shows it).
        #[arg(long, value_name = "HEX")]
        key: String,
    },
}

/// Where a config is deployed: what it must not hold there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TargetArg {
    /// A bootstrap of your own: route names are yours.
    Envoy,
    /// Istio (EnvoyFilter, WasmPlugin): route names are generated, keys are digests.
    Istio,
    /// Envoy Gateway (EnvoyExtensionPolicy): route names are generated, keys are digests.
    GatewayApi,
}

#[derive(Debug, Args, PartialEq, Eq)]
#[command(after_help = "Examples:
  apim validate envoy/gateway.yaml                      every suite config in a bootstrap
  apim validate envoy/istio/wasmplugin/api-key-auth.yaml
  apim validate api_key_auth envoy/gateway.yaml         only api-key-auth's configs
  apim validate --target istio quota quota.json         one filter's JSON config (- for stdin)

Filters: api-key-auth, scope-authz, quota, graphql-guard, transform (or their module names,
api_key_auth, …), and suite (apim_suite.wasm: a section per filter). Findings in a deployment file are reported as FILE:LINE:COLUMN.")]
pub struct ValidateArgs {
    /// What the deployment needs on top of the filter's own checks (no `route_name` rules
    /// where route names are generated, key digests only). Default for a deployment file: what
    /// each document is (bootstrap envoy, Istio resource istio, Envoy Gateway policy
    /// gateway-api); for a filter's JSON config: none.
    #[arg(long, value_enum)]
    pub target: Option<TargetArg>,
    /// [FILTER] FILE: an Envoy bootstrap, Istio WasmPlugin/EnvoyFilter or Envoy Gateway
    /// policy (YAML or JSON, several documents allowed), checked for every suite filter
    /// config in it (only FILTER's when named); or FILTER and one filter's JSON config.
    #[arg(value_name = "[FILTER] FILE", num_args = 1..=2, required = true)]
    pub args: Vec<String>,
}

/// What `apim render` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RenderTarget {
    /// A complete Envoy bootstrap (envoy.yaml).
    Envoy,
    /// Istio WasmPlugins on the ingress gateway (istio.yaml).
    Istio,
    /// HTTPRoutes and an Envoy Gateway EnvoyExtensionPolicy (gateway-api.yaml).
    GatewayApi,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Mint a demo JWT (RS256); default key: the DEMO-ONLY issuer key of
    /// envoy/examples/demo-issuer/ (public: anyone can mint tokens with it).
    Mint(MintArgs),
}

#[derive(Debug, Args, PartialEq, Eq)]
pub struct MintArgs {
    /// Space-separated scopes.
    #[arg(long, default_value = "pets:read")]
    pub scope: String,
    #[arg(long, default_value = "demo-user")]
    pub sub: String,
    #[arg(long, default_value = crate::token::DEMO_AUDIENCE)]
    pub aud: String,
    #[arg(long, default_value = crate::token::DEMO_ISSUER)]
    pub iss: String,
    /// Lifetime in seconds (negative: an already expired token).
    #[arg(long, default_value_t = 3600, allow_negative_numbers = true)]
    pub ttl: i64,
    #[arg(long, default_value = crate::token::DEMO_KID)]
    pub kid: String,
    /// A PEM RSA private key instead of the demo issuer's.
    #[arg(long, value_name = "PEM_FILE")]
    pub key: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum OciCommand {
    /// Write MODULE's image as an OCI image-layout folder DIR and DIR.tar.
    Build {
        module: String,
        dir: String,
        #[arg(default_value = "latest")]
        tag: String,
    },
    /// Check an image-layout folder's digests, sizes and layer.
    Verify { dir: String },
}

#[derive(Debug, Subcommand)]
pub enum ManifestsCommand {
    /// Rewrite the marked sha256 lines from the built modules and images.
    Sync {
        /// The repository root (default: the current directory).
        root: Option<String>,
    },
    /// List stale marked lines and filter configs refused for their target (exit 1 if any).
    Check {
        /// The repository root (default: the current directory).
        root: Option<String>,
    },
}

/// Words of repeatable options, split on `seps`, empty ones dropped.
pub fn words(values: &[String], seps: &[char]) -> Vec<String> {
    values
        .iter()
        .flat_map(|v| v.split(seps))
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
#[path = "cli_tests.rs"]
mod tests;
