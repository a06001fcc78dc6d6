//! The shipped demo gateway (`envoy/gateway.yaml`, `envoy/gateway-suite.yaml`) as a harness
//! template: the same file, its fixed ports moved so tests never clash with a running demo or
//! with each other.

use crate::repo_root;

/// The demo's fixed ports, and what each becomes: the listener and the admin on free ports
/// (port 0), the demo upstream on the harness's echo upstream, the demo's gRPC service on this
/// process's `pets.v1.Pets` server ([`crate::grpc::server::grpc_port`]).
fn ports() -> [(&'static str, String); 4] {
    [
        ("port_value: 10000", "port_value: 0".into()),
        ("port_value: 9901", "port_value: 0".into()),
        ("port_value: 10080", "port_value: {{UPSTREAM_PORT}}".into()),
        (
            "port_value: 10090",
            format!("port_value: {}", crate::grpc::server::grpc_port()),
        ),
    ]
}

/// The shipped gateway file `file` (relative to the repository root) as a template for
/// [`crate::Envoy`]: every fixed port must appear exactly once, so a changed file fails here
/// rather than starting an Envoy on the demo's ports.
pub fn gateway_template(file: &str) -> Result<String, String> {
    let shipped =
        std::fs::read_to_string(repo_root().join(file)).map_err(|e| format!("read {file}: {e}"))?;
    ports().iter().try_fold(shipped, |text, (fixed, moved)| {
        match text.matches(fixed).count() {
            1 => Ok(text.replace(fixed, moved)),
            n => Err(format!(
                "{file}: `{fixed}` appears {n} times, expected once"
            )),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::gateway_template;

    #[test]
    fn both_shipped_gateways_move_to_free_ports() {
        for file in ["envoy/gateway.yaml", "envoy/gateway-suite.yaml"] {
            let template = gateway_template(file).unwrap();
            assert!(!template.contains("port_value: 10000"), "{file}");
            assert!(!template.contains("port_value: 9901"), "{file}");
            assert!(template.contains("port_value: {{UPSTREAM_PORT}}"), "{file}");
        }
        assert!(gateway_template("envoy/no-such.yaml").is_err());
    }
}
