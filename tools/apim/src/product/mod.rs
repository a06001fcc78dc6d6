//! The product file (`apim.yaml`): consumers, issuers, plans, APIs and gateway settings
//! declared once. `apim check` resolves its references and flags risky choices; `apim render`
//! turns it into each data plane's files, every filter config passed through that filter's own
//! validator first.

pub mod check;
pub mod envoy;
pub mod filters;
pub mod json;
pub mod k8s;
pub mod keys_edit;
pub mod model;
pub mod parse;
mod parse_routes;
mod parse_settings;
pub mod read;
pub mod shipped;
pub mod time;

use crate::yaml_pos::Node;
use read::{Finding, Findings, Severity};
use std::path::Path;
use std::process::ExitCode;

/// The product file read and checked: the model (when its shape allowed one) and everything
/// found, in file order.
pub struct Checked {
    pub product: Option<model::Product>,
    pub findings: Vec<Finding>,
}

impl Checked {
    pub fn errors(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count()
    }
}

/// Reads `text` (the product file) and checks it: shapes, references, risky choices, and the
/// filter configs it renders to (by the filters' validators).
pub fn load(text: &str) -> Result<Checked, String> {
    let docs = crate::yaml_pos::load(text)?;
    let [doc] = docs.as_slice() else {
        return Err(format!("expected one YAML document, found {}", docs.len()));
    };
    let mut f = Findings::default();
    let product = parse::product(doc, &mut f);
    if let Some(p) = &product {
        check::check(p, &mut f);
        if !f.has_errors() {
            filter_validators(p, doc, &mut f);
        }
    }
    Ok(Checked {
        product,
        findings: f.sorted(),
    })
}

/// Every rendered filter config through its filter's own parser, as Envoy will load it; an
/// error is reported where the product file wrote the field, when that can be found.
fn filter_validators(p: &model::Product, doc: &Node, f: &mut Findings) {
    for target in [
        crate::validate_target::Target::Envoy,
        crate::validate_target::Target::Istio,
        crate::validate_target::Target::GatewayApi,
    ] {
        for (module, config) in filters::configs(p, target) {
            let crate_name = module.replace('_', "-");
            let text = config.compact();
            if let Err(e) = crate::validate::check(&crate_name, text.as_bytes()) {
                let field = if e.path.is_empty() {
                    crate_name.clone()
                } else {
                    format!("{crate_name} {}", e.path)
                };
                f.error(locate(doc, &e.path), &field, e.message);
            }
            // What the deployment forbids on top (no rule on a generated route name there).
            let value = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
            let (errors, _placeholder_digests) = crate::validate_target::check(target, &value);
            for e in errors {
                let field = format!("{crate_name} for {}", target.name());
                f.error(doc.pos, &field, e);
            }
        }
    }
}

/// Where the product file holds what a filter's config calls `path` (`plans.gold.limits[0].per`):
/// the deepest node any of the places that field comes from reaches, else the file's start.
fn locate(doc: &Node, path: &str) -> crate::yaml_pos::Pos {
    let mut candidates = vec![path.to_string()];
    for prefix in [
        "quota.",
        "graphql.",
        "transform.",
        "gateway.api_keys.",
        "gateway.tokens.",
    ] {
        candidates.push(format!("{prefix}{path}"));
    }
    candidates.push(path.replacen("providers", "issuers", 1));
    if let Some(rest) = path.strip_prefix("plans.") {
        if let Some((plan, field)) = rest.split_once('.') {
            candidates.push(format!("plans.{plan}.graphql.{field}"));
        }
    }
    candidates
        .iter()
        .map(|c| walk(doc, c))
        .max_by_key(|(depth, _)| *depth)
        .map_or(doc.pos, |(_, pos)| pos)
}

/// How many segments of `path` (`a.b[2].c`) resolve from `node`, and the last node reached.
fn walk(node: &Node, path: &str) -> (usize, crate::yaml_pos::Pos) {
    let mut at = node;
    let mut depth = 0;
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (key, indexes) = part.split_once('[').map_or((part, ""), |(k, i)| (k, i));
        let Some(next) = at.get(key) else { break };
        at = next;
        depth += 1;
        for i in indexes
            .split('[')
            .filter_map(|i| i.trim_end_matches(']').parse::<usize>().ok())
        {
            let Some(next) = at.at(i) else {
                return (depth, at.pos);
            };
            at = next;
            depth += 1;
        }
    }
    (depth, at.pos)
}

fn read(file: &str) -> Result<String, String> {
    let bytes = crate::validate::read(file)?;
    String::from_utf8(bytes).map_err(|_| format!("{file}: not UTF-8"))
}

/// `apim check FILE`: findings as FILE:LINE:COL; exit 1 on an error (or, with `strict`, a
/// warning), 0 otherwise, 2 when the file cannot be read.
pub fn check_cmd(file: &str, strict: bool) -> ExitCode {
    let checked = match read(file).and_then(|t| load(&t).map_err(|e| format!("{file}: {e}"))) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    for finding in &checked.findings {
        eprintln!("{}", finding.render(file));
    }
    let errors = checked.errors();
    let warnings = checked.findings.len() - errors;
    if errors > 0 || (strict && warnings > 0) {
        eprintln!("{file}: {errors} error(s), {warnings} warning(s)");
        return ExitCode::from(1);
    }
    println!("{file}: valid product file ({warnings} warning(s))");
    ExitCode::SUCCESS
}

/// What `apim render` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenderTarget {
    Envoy,
    Istio,
    GatewayApi,
}

impl RenderTarget {
    pub fn name(self) -> &'static str {
        match self {
            RenderTarget::Envoy => "envoy",
            RenderTarget::Istio => "istio",
            RenderTarget::GatewayApi => "gateway-api",
        }
    }
}

/// The rendered text for `target`, or the findings that stop it. `root` is where the built
/// modules are looked for (`target/wasm32-wasip1/release`), to pin the images by digest.
pub fn render_text(
    text: &str,
    source: &str,
    target: RenderTarget,
    root: &Path,
) -> Result<String, String> {
    let checked = load(text).map_err(|e| format!("{source}: {e}"))?;
    match checked.product {
        Some(p) if checked.errors() == 0 => Ok(match target {
            RenderTarget::Envoy => envoy::render(&p, source),
            RenderTarget::Istio => k8s::istio(&p, source, root),
            RenderTarget::GatewayApi => k8s::gateway_api(&p, source, root),
        }),
        _ => Err(checked
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .map(|f| f.render(source))
            .collect::<Vec<_>>()
            .join("\n")),
    }
}

/// `apim render FILE --target T [-o DIR]`: the files on stdout, or DIR/<target>.yaml.
pub fn render_cmd(file: &str, target: RenderTarget, out: Option<&str>) -> ExitCode {
    let text = match read(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let rendered = match render_text(&text, file, target, Path::new(".")) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    match out {
        None => {
            crate::write_stdout(&rendered);
            ExitCode::SUCCESS
        }
        Some(dir) => {
            let path = Path::new(dir).join(format!("{}.yaml", target.name()));
            match std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, rendered)) {
                Ok(()) => {
                    println!("{}", path.display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{}: {e}", path.display());
                    ExitCode::from(2)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
