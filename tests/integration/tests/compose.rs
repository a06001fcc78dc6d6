//! Keeps `demo/docker-compose.yaml` true without a container engine:
//!
//! - every Envoy config the `envoy` service runs exists and the merged bootstrap it starts
//!   (`-c envoy/gateway.yaml --config-yaml "$(cat demo/compose/global-tier.yaml)"`) passes
//!   `envoy --mode validate`, and really starts with both listeners (Envoy appends the fragment);
//!   all of it for the three gateways it can run (`GATEWAY_CONFIG`: the five modules by default,
//!   `envoy/gateway-suite.yaml`, the suite module, or `envoy/gateway-native.yaml`, the native
//!   modules found on the search path the service sets), each a row of [`GATEWAYS`];
//! - every host path it mounts exists (sources) or is the output of a named make target
//!   (build outputs), and every file the Envoy configs name (`filename:`) is inside a mount, at
//!   the same path relative to the container's `working_dir` as in the repo;
//! - the ports hold together: the services run on the host network (so nothing is published and
//!   the 127.0.0.1 addresses in gateway.yaml hold), the upstream listens where gateway.yaml's
//!   `demo_upstream` points, ratelimit where the `ratelimit` cluster points, Redis where
//!   ratelimit looks, and no two services bind the same port;
//! - the plugin configs embedded in the compose-only fragment pass the filter's own validator,
//!   and the ratelimit config declares the domain the quota filter asks for;
//! - with Debian's `docker-compose` (v1) on PATH, `docker-compose config` accepts the file
//!   (skipped, loudly, otherwise: `make compose-check` installs it).

// Test code: a failed expectation is a test failure with its message.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use apim_integration::{envoy_bin, repo_root};
use serde_yaml::Value;

const COMPOSE: &str = "demo/docker-compose.yaml";

/// The gateways the `envoy` service runs: (GATEWAY_CONFIG as set in the environment of
/// `docker-compose`, the bootstrap it runs then).
const GATEWAYS: [(Option<&str>, &str); 3] = [
    (None, "envoy/gateway.yaml"),
    (Some("envoy/gateway-suite.yaml"), "envoy/gateway-suite.yaml"),
    (
        Some("envoy/gateway-native.yaml"),
        "envoy/gateway-native.yaml",
    ),
];

/// A word of the compose file with `${GATEWAY_CONFIG:-default}` resolved as docker-compose
/// does, GATEWAY_CONFIG set to `set` (or unset).
fn interpolate(word: &str, set: Option<&str>) -> String {
    match word
        .strip_prefix("${GATEWAY_CONFIG:-")
        .and_then(|rest| rest.strip_suffix('}'))
    {
        Some(default) => set.unwrap_or(default).to_string(),
        None => word.to_string(),
    }
}

/// Build outputs the compose file mounts, with what produces them (checked against the Makefile).
const PRODUCED: &[(&str, &str, &str)] = &[
    // (path relative to the repo, make target, text the target's recipe must contain)
    (
        "target/wasm32-wasip1/release",
        "build",
        "--target $(WASM_TARGET)",
    ),
    (
        "target/release/demo-upstream",
        "demo",
        "--bin demo-upstream",
    ),
    ("target/release/demo-grpc", "demo", "--bin demo-grpc"),
    (
        "target/native-modules",
        "build",
        "cargo zigbuild --profile native",
    ),
];

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn compose() -> Value {
    serde_yaml::from_str(&read(&repo_root().join(COMPOSE))).unwrap()
}

fn services(c: &Value) -> BTreeMap<String, Value> {
    c["services"]
        .as_mapping()
        .expect("`services` is a mapping")
        .iter()
        .map(|(k, v)| (k.as_str().unwrap().to_string(), v.clone()))
        .collect()
}

/// One bind mount: host path (resolved against the compose file's folder) and container path.
struct Mount {
    host_rel: String,
    host: PathBuf,
    container: PathBuf,
}

fn mounts(service: &Value) -> Vec<Mount> {
    let base = repo_root().join("demo");
    service["volumes"]
        .as_sequence()
        .map(|v| v.as_slice())
        .unwrap_or(&[])
        .iter()
        .map(|v| {
            let spec = v
                .as_str()
                .expect("short volume syntax `host:container[:ro]`");
            let parts: Vec<&str> = spec.split(':').collect();
            assert!(
                parts.len() >= 2 && (parts[0].starts_with('.') || parts[0].starts_with('/')),
                "volume {spec:?} is not a bind mount of a repo path"
            );
            let host = normalize(&base.join(parts[0]));
            let host_rel = host
                .strip_prefix(repo_root())
                .unwrap_or_else(|_| panic!("volume {spec:?} mounts something outside the repo"))
                .to_string_lossy()
                .into_owned();
            Mount {
                host_rel,
                host,
                container: PathBuf::from(parts[1]),
            }
        })
        .collect()
}

/// `a/b/../c` → `a/c` without touching the file system (the path may not exist yet).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// The host file behind a container path, through the service's mounts (longest match wins).
fn host_path(mounts: &[Mount], container: &Path) -> Option<PathBuf> {
    mounts
        .iter()
        .filter(|m| container.starts_with(&m.container))
        .max_by_key(|m| m.container.components().count())
        .map(|m| match container.strip_prefix(&m.container) {
            Ok(rest) if rest.as_os_str().is_empty() => m.host.clone(),
            Ok(rest) => m.host.join(rest),
            Err(_) => unreachable!("filtered on starts_with"),
        })
}

/// The Envoy service's command line: `-c <file>` and the `--config-yaml "$$(cat <file>)"` file,
/// both relative to its working_dir.
struct EnvoyCommand {
    config: String,
    config_yaml_file: Option<String>,
}

fn envoy_command(envoy: &Value, gateway_config: Option<&str>) -> EnvoyCommand {
    let cmd: Vec<String> = match &envoy["command"] {
        Value::Sequence(s) => s.iter().map(|v| v.as_str().unwrap().to_string()).collect(),
        Value::String(s) => vec![s.clone()],
        other => panic!("envoy.command: unexpected {other:?}"),
    };
    let line = cmd.join(" ");
    let words: Vec<&str> = line.split_whitespace().collect();
    let after = |flag: &str| {
        words
            .iter()
            .position(|w| *w == flag)
            .and_then(|i| words.get(i + 1))
            .map(|w| interpolate(w, gateway_config))
    };
    let config = after("-c").expect("envoy.command has `-c <config>`");
    let config_yaml_file = line.split_once("--config-yaml ").map(|(_, rest)| {
        rest.strip_prefix("\"$$(cat ")
            .and_then(|r| r.split_once(")\""))
            .map(|(file, _)| file.trim().to_string())
            .unwrap_or_else(|| panic!("--config-yaml takes \"$$(cat <file>)\", got {rest}"))
    });
    EnvoyCommand {
        config,
        config_yaml_file,
    }
}

struct EnvoyFiles {
    mounts: Vec<Mount>,
    working_dir: PathBuf,
    config: PathBuf,
    fragment: Option<PathBuf>,
    /// ENVOY_DYNAMIC_MODULES_SEARCH_PATH in the container, and the host folder behind it.
    search_path: Option<(PathBuf, PathBuf)>,
}

/// The files the `envoy` service runs with GATEWAY_CONFIG set to `gateway_config` (or unset).
fn envoy_files(gateway_config: Option<&str>) -> EnvoyFiles {
    let c = compose();
    let svcs = services(&c);
    let envoy = svcs.get("envoy").expect("an `envoy` service");
    let mounts = mounts(envoy);
    let working_dir = PathBuf::from(envoy["working_dir"].as_str().expect("envoy.working_dir"));
    let cmd = envoy_command(envoy, gateway_config);
    let resolve = |rel: &str| {
        host_path(&mounts, &working_dir.join(rel))
            .unwrap_or_else(|| panic!("envoy runs {rel}, which no volume mounts"))
    };
    let search_path = envoy["environment"]["ENVOY_DYNAMIC_MODULES_SEARCH_PATH"]
        .as_str()
        .map(|inside| {
            let inside = PathBuf::from(inside);
            let host = host_path(&mounts, &inside).unwrap_or_else(|| {
                panic!(
                    "ENVOY_DYNAMIC_MODULES_SEARCH_PATH {} is in no volume",
                    inside.display()
                )
            });
            (inside, host)
        });
    EnvoyFiles {
        config: resolve(&cmd.config),
        fragment: cmd.config_yaml_file.as_deref().map(resolve),
        mounts,
        working_dir,
        search_path,
    }
}

/// Runs Envoy with `args` from the repo root (native modules found in `search_path`), output
/// to a file (a full pipe could block it).
fn run_envoy(
    args: &[&str],
    search_path: Option<&Path>,
    deadline: Duration,
) -> (Option<std::process::ExitStatus>, String) {
    let mut out = tempfile::tempfile().unwrap();
    let mut command = Command::new(envoy_bin());
    if let Some(dir) = search_path {
        command.env("ENVOY_DYNAMIC_MODULES_SEARCH_PATH", dir);
    }
    let mut child = command
        .args(args)
        .current_dir(repo_root())
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out.try_clone().unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", envoy_bin().display()));
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if start.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut text = String::new();
    use std::io::Seek;
    out.rewind().unwrap();
    out.read_to_string(&mut text).unwrap();
    (status, text)
}

/// Every `port_value` under `socket_address` in a bootstrap, by listener/cluster/admin name.
fn bootstrap_ports(b: &Value) -> BTreeMap<String, u16> {
    let mut out = BTreeMap::new();
    let port = |addr: &Value| {
        addr["socket_address"]["port_value"]
            .as_u64()
            .map(|p| p as u16)
    };
    if let Some(p) = port(&b["admin"]["address"]) {
        out.insert("admin".to_string(), p);
    }
    for l in b["static_resources"]["listeners"]
        .as_sequence()
        .map(|s| s.as_slice())
        .unwrap_or(&[])
    {
        let name = l["name"].as_str().unwrap();
        out.insert(format!("listener {name}"), port(&l["address"]).unwrap());
    }
    for c in b["static_resources"]["clusters"]
        .as_sequence()
        .map(|s| s.as_slice())
        .unwrap_or(&[])
    {
        let name = c["name"].as_str().unwrap();
        for e in c["load_assignment"]["endpoints"][0]["lb_endpoints"]
            .as_sequence()
            .unwrap()
        {
            out.insert(
                format!("cluster {name}"),
                port(&e["endpoint"]["address"]).unwrap(),
            );
        }
    }
    out
}

/// Every `filename:` value (Wasm modules) in a YAML document.
fn filenames(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Mapping(m) => {
            for (k, v) in m {
                if k.as_str() == Some("filename") {
                    if let Some(s) = v.as_str() {
                        out.push(s.to_string());
                    }
                }
                filenames(v, out);
            }
        }
        Value::Sequence(s) => s.iter().for_each(|v| filenames(v, out)),
        _ => {}
    }
}

/// Every `dynamic_module_config.name` (native modules, `lib<name>.so`) in a YAML document.
fn dynamic_modules(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Mapping(m) => {
            if let Some(name) = m
                .get("dynamic_module_config")
                .and_then(|c| c.get("name"))
                .and_then(Value::as_str)
            {
                out.push(format!("lib{name}.so"));
            }
            m.values().for_each(|v| dynamic_modules(v, out));
        }
        Value::Sequence(s) => s.iter().for_each(|v| dynamic_modules(v, out)),
        _ => {}
    }
}

/// Every Wasm filter's (root_id, plugin config JSON) in a YAML bootstrap.
fn wasm_plugin_configs(v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Mapping(m) => {
            if let (Some(root), Some(cfg)) = (
                m.get("root_id").and_then(|r| r.as_str()),
                m.get("configuration")
                    .and_then(|c| c.get("value"))
                    .and_then(|v| v.as_str()),
            ) {
                out.push((root.to_string(), cfg.to_string()));
            }
            m.values().for_each(|v| wasm_plugin_configs(v, out));
        }
        Value::Sequence(s) => s.iter().for_each(|v| wasm_plugin_configs(v, out)),
        _ => {}
    }
}

#[test]
fn envoy_image_is_the_pinned_release() {
    let version = read(&repo_root().join(".envoy-version")).trim().to_string();
    let c = compose();
    assert_eq!(
        services(&c)["envoy"]["image"].as_str(),
        Some(format!("envoyproxy/envoy:v{version}").as_str()),
        "the envoy service must run the Envoy release in .envoy-version"
    );
    // Every image is pinned to a tag (never implicit `latest`, never `master`).
    for (name, svc) in services(&c) {
        let image = svc["image"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: no image"));
        let tag = image.rsplit_once(':').map(|(_, t)| t).unwrap_or("");
        assert!(
            !tag.is_empty() && tag != "latest" && tag != "master",
            "{name}: image {image} is not pinned to a tag"
        );
    }
}

#[test]
fn envoy_configs_exist_and_the_merged_bootstrap_validates() {
    for (gateway_config, gateway) in GATEWAYS {
        envoy_config_exists_and_the_merged_bootstrap_validates(gateway_config, gateway);
    }
}

fn envoy_config_exists_and_the_merged_bootstrap_validates(
    gateway_config: Option<&str>,
    gateway: &str,
) {
    let files = envoy_files(gateway_config);
    assert_eq!(
        files.config,
        repo_root().join(gateway),
        "with GATEWAY_CONFIG={gateway_config:?} the compose demo runs {gateway} itself"
    );
    assert!(
        files.config.is_file(),
        "{} is missing",
        files.config.display()
    );
    let mut args = vec![
        "--mode".to_string(),
        "validate".to_string(),
        "-l".to_string(),
        "warn".to_string(),
        "-c".to_string(),
        files.config.to_string_lossy().into_owned(),
    ];
    if let Some(fragment) = &files.fragment {
        args.push("--config-yaml".to_string());
        args.push(read(fragment));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let search = files.search_path.as_ref().map(|(_, host)| host.as_path());
    let (status, output) = run_envoy(&args, search, Duration::from_secs(60));
    assert!(
        status.is_some_and(|s| s.success()),
        "`envoy --mode validate` of the compose Envoy config ({gateway}) failed ({status:?}):\n{output}\n\
         (a missing .wasm means: run `make build`)"
    );
}

#[test]
fn every_mounted_host_path_exists_or_is_built_by_a_make_target() {
    let makefile = read(&repo_root().join("Makefile"));
    let c = compose();
    let mut missing = Vec::new();
    for (name, svc) in services(&c) {
        for m in mounts(&svc) {
            match PRODUCED.iter().find(|(p, _, _)| *p == m.host_rel) {
                Some((path, target, recipe)) => {
                    // The named target exists and its recipe (or that of a target it runs
                    // first) builds the path.
                    assert!(
                        makefile
                            .lines()
                            .any(|l| l.starts_with(&format!("{target}:"))),
                        "{name}: {path} should come from `make {target}`, which does not exist"
                    );
                    assert!(
                        makefile.contains(recipe),
                        "{name}: no Makefile recipe contains {recipe:?}, which builds {path}"
                    );
                    if !m.host.exists() {
                        eprintln!("note: {path} (mounted by {name}) is built by `make {target}`");
                    }
                }
                None => {
                    assert!(
                        !m.host_rel.starts_with("target/"),
                        "{name}: mounts build output {} that no make target is known to produce \
                         (add it to PRODUCED in this test)",
                        m.host_rel
                    );
                    if !m.host.exists() {
                        missing.push(format!("{name}: {}", m.host_rel));
                    }
                }
            }
        }
    }
    assert!(missing.is_empty(), "mounted paths missing: {missing:#?}");
}

#[test]
fn every_module_the_configs_name_is_mounted_at_the_same_relative_path() {
    for (gateway_config, _) in GATEWAYS {
        every_module_is_mounted_at_the_same_relative_path(gateway_config);
    }
}

fn every_module_is_mounted_at_the_same_relative_path(gateway_config: Option<&str>) {
    let files = envoy_files(gateway_config);
    let mut names = Vec::new();
    let mut native = Vec::new();
    for f in std::iter::once(&files.config).chain(files.fragment.as_ref()) {
        let doc = serde_yaml::from_str(&read(f)).unwrap();
        filenames(&doc, &mut names);
        dynamic_modules(&doc, &mut native);
    }
    assert!(
        !names.is_empty() || !native.is_empty(),
        "no module named in the Envoy configs"
    );
    // A native module is found on the search path, which must hold the repo's build.
    for so in native {
        let (inside, host) = files
            .search_path
            .as_ref()
            .expect("native modules named but no ENVOY_DYNAMIC_MODULES_SEARCH_PATH set");
        assert_eq!(
            host.join(&so),
            repo_root().join("target/native-modules").join(&so),
            "{so}: {} is mounted from another path than the repo's build",
            inside.display()
        );
        assert!(
            host.join(&so).is_file(),
            "{} is missing: run `make build`",
            host.join(&so).display()
        );
    }
    for name in names {
        assert!(
            Path::new(&name).is_relative(),
            "{name}: absolute module paths would not hold inside the container"
        );
        let inside = files.working_dir.join(&name);
        let host = host_path(&files.mounts, &inside)
            .unwrap_or_else(|| panic!("{name} ({}) is in no volume", inside.display()));
        assert_eq!(
            host,
            repo_root().join(&name),
            "{name} is mounted from another path than the repo's"
        );
        assert!(
            host.is_file(),
            "{} is missing: run `make build`",
            host.display()
        );
    }
}

#[test]
fn ports_match_the_gateway_and_each_other() {
    for (gateway_config, _) in GATEWAYS {
        ports_match(gateway_config);
    }
}

fn ports_match(gateway_config: Option<&str>) {
    let c = compose();
    let svcs = services(&c);
    let files = envoy_files(gateway_config);
    let gateway: Value = serde_yaml::from_str(&read(&files.config)).unwrap();
    let mut envoy_ports = bootstrap_ports(&gateway);
    if let Some(f) = &files.fragment {
        let fragment: Value = serde_yaml::from_str(&read(f)).unwrap();
        for (k, p) in bootstrap_ports(&fragment) {
            assert!(
                envoy_ports.insert(k.clone(), p).is_none(),
                "{k} is in both gateway.yaml and the fragment: --config-yaml would duplicate it"
            );
        }
    }
    // The ports the gateway is documented and toured on.
    assert_eq!(envoy_ports.get("listener gateway"), Some(&10000));
    assert_eq!(envoy_ports.get("admin"), Some(&9901));

    // Host networking: the addresses in the configs hold as written, and publishing is moot.
    for (name, svc) in &svcs {
        assert_eq!(
            svc["network_mode"].as_str(),
            Some("host"),
            "{name}: the demo's configs use 127.0.0.1 addresses, which hold only on the host network"
        );
        assert!(
            svc.get("ports").is_none(),
            "{name}: `ports` does not apply to network_mode: host"
        );
    }

    let arg_after = |svc: &str, flag: &str| -> u16 {
        let cmd: Vec<&str> = svcs[svc]["command"]
            .as_sequence()
            .unwrap_or_else(|| panic!("{svc}.command is a list"))
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let i = cmd
            .iter()
            .position(|w| *w == flag)
            .unwrap_or_else(|| panic!("{svc}.command has no {flag}"));
        cmd[i + 1].parse().unwrap()
    };
    let env = |svc: &str, key: &str| -> String {
        svcs[svc]["environment"][key]
            .as_str()
            .unwrap_or_else(|| panic!("{svc}.environment.{key}"))
            .to_string()
    };
    let upstream = arg_after("upstream", "--port");
    assert_eq!(
        envoy_ports.get("cluster demo_upstream"),
        Some(&upstream),
        "gateway.yaml's demo_upstream must point at the upstream service's --port"
    );
    let grpc_service = arg_after("grpc", "--port");
    assert_eq!(
        envoy_ports.get("cluster demo_grpc"),
        Some(&grpc_service),
        "gateway.yaml's demo_grpc must point at the grpc service's --port"
    );
    let redis = arg_after("redis", "--port");
    assert_eq!(
        env("ratelimit", "REDIS_URL"),
        format!("127.0.0.1:{redis}"),
        "ratelimit must find Redis where it listens"
    );
    let grpc: u16 = env("ratelimit", "GRPC_PORT").parse().unwrap();
    if files.fragment.is_some() {
        assert_eq!(
            envoy_ports.get("cluster ratelimit"),
            Some(&grpc),
            "the `ratelimit` cluster must point at ratelimit's GRPC_PORT"
        );
    }

    // Nothing binds a port twice on the shared host network.
    let mut bound: BTreeMap<u16, String> = BTreeMap::new();
    let mut bind = |port: u16, what: String| {
        if let Some(prev) = bound.insert(port, what.clone()) {
            panic!("port {port} is bound by both {prev} and {what}");
        }
    };
    for (k, p) in &envoy_ports {
        if !k.starts_with("cluster ") {
            bind(*p, format!("envoy {k}"));
        }
    }
    bind(upstream, "upstream".into());
    bind(grpc_service, "grpc".into());
    bind(redis, "redis".into());
    for key in ["PORT", "GRPC_PORT", "DEBUG_PORT"] {
        bind(
            env("ratelimit", key).parse().unwrap(),
            format!("ratelimit {key}"),
        );
    }
}

#[test]
fn compose_plugin_configs_pass_the_filters_validators_and_ratelimit_knows_the_domain() {
    // The fragment is the same for both gateways.
    let files = envoy_files(None);
    let Some(fragment) = &files.fragment else {
        return;
    };
    let doc: Value = serde_yaml::from_str(&read(fragment)).unwrap();
    let mut configs = Vec::new();
    wasm_plugin_configs(&doc, &mut configs);
    assert!(
        !configs.is_empty(),
        "no Wasm filter in {}",
        fragment.display()
    );
    let mut domains = BTreeSet::new();
    for (root_id, json) in configs {
        match root_id.as_str() {
            "quota" => {
                if let Err(e) = quota::config::Config::parse(json.as_bytes()) {
                    panic!("quota config in {}: {e}", fragment.display());
                }
                let v: serde_json::Value = serde_json::from_str(&json).unwrap();
                if let Some(g) = v.get("global") {
                    domains.insert(g["domain"].as_str().unwrap_or("apim").to_string());
                }
            }
            other => panic!("no validator wired here for root_id {other}: add it"),
        }
    }
    // The ratelimit service only serves domains its config declares.
    let rl_dir = repo_root().join("demo/compose/ratelimit/config");
    let mut declared = BTreeSet::new();
    for entry in std::fs::read_dir(&rl_dir).unwrap() {
        let path = entry.unwrap().path();
        let doc: Value = serde_yaml::from_str(&read(&path)).unwrap();
        declared.insert(
            doc["domain"]
                .as_str()
                .unwrap_or_else(|| panic!("{}: no domain", path.display()))
                .to_string(),
        );
        assert!(
            doc["descriptors"].as_sequence().is_some(),
            "{}: no descriptors list",
            path.display()
        );
    }
    for d in &domains {
        assert!(
            declared.contains(d),
            "the quota filter asks ratelimit for domain {d:?}, which {} does not declare",
            rl_dir.display()
        );
    }
}

/// GET `path` from 127.0.0.1:`port`, the body; `None` if the admin does not answer within the
/// read timeout (its main thread is still compiling the Wasm modules on a loaded machine): the
/// caller polls again until its own deadline.
fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// Envoy appends the --config-yaml fragment's listeners and clusters to gateway.yaml's (it does
/// not replace them): start the merged bootstrap (ports moved to 0 so it cannot collide with a
/// running demo) and list its listeners.
#[test]
fn the_merged_bootstrap_runs_both_listeners() {
    for (gateway_config, _) in GATEWAYS {
        the_merged_bootstrap_runs(gateway_config);
    }
}

fn the_merged_bootstrap_runs(gateway_config: Option<&str>) {
    let files = envoy_files(gateway_config);
    let Some(fragment) = &files.fragment else {
        return;
    };
    let zero_ports = |text: String| {
        let mut t = text;
        for p in [10000, 9901, 10001] {
            t = t.replace(&format!("port_value: {p} "), "port_value: 0 ");
        }
        t
    };
    let scratch = tempfile::tempdir().unwrap();
    let config = scratch.path().join("gateway.yaml");
    std::fs::write(&config, zero_ports(read(&files.config))).unwrap();
    let admin_file = scratch.path().join("admin");
    let mut command = Command::new(envoy_bin());
    if let Some((_, host)) = &files.search_path {
        command.env("ENVOY_DYNAMIC_MODULES_SEARCH_PATH", host);
    }
    let child = command
        .arg("-c")
        .arg(&config)
        .arg("--config-yaml")
        .arg(zero_ports(read(fragment)))
        .arg("--disable-hot-restart")
        .arg("--concurrency")
        .arg("1")
        .arg("-l")
        .arg("warn")
        .arg("--admin-address-path")
        .arg(&admin_file)
        .current_dir(repo_root())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = Kill(child);
    let start = Instant::now();
    let listeners = loop {
        assert!(
            child.0.try_wait().unwrap().is_none(),
            "Envoy exited while starting the merged bootstrap (run it by hand to see why)"
        );
        assert!(
            // Bounds a hang only: a loaded machine compiles six Wasm VMs slowly.
            start.elapsed() < Duration::from_secs(180),
            "Envoy did not become ready"
        );
        if let Some(port) = std::fs::read_to_string(&admin_file)
            .ok()
            .and_then(|a| a.trim().rsplit_once(':').and_then(|(_, p)| p.parse().ok()))
        {
            if http_get(port, "/ready").is_some_and(|r| r.contains("LIVE")) {
                if let Some(listeners) = http_get(port, "/listeners") {
                    break listeners;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        listeners.contains("gateway::") && listeners.contains("global_quota::"),
        "both {}'s listener and the fragment's should run:\n{listeners}",
        files.config.display()
    );
}

#[test]
fn docker_compose_config_accepts_the_file() {
    let found = Command::new("docker-compose")
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        eprintln!(
            "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
             !! SKIPPED: `docker-compose config` check — docker-compose (v1) is not on PATH.\n\
             !! `make compose-check` installs it (apt-get install -y docker-compose).\n\
             !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
        );
        return;
    }
    for (gateway_config, gateway) in GATEWAYS {
        let mut cmd = Command::new("docker-compose");
        cmd.arg("-f")
            .arg(repo_root().join(COMPOSE))
            .arg("config")
            .current_dir(repo_root())
            .stdin(Stdio::null())
            .env_remove("GATEWAY_CONFIG");
        if let Some(value) = gateway_config {
            cmd.env("GATEWAY_CONFIG", value);
        }
        let out = cmd.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "docker-compose config rejected {COMPOSE} (GATEWAY_CONFIG={gateway_config:?}):\n{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // docker-compose resolves the variable as `interpolate` does.
        assert!(
            stdout.contains(&format!("exec envoy -c {gateway} ")),
            "GATEWAY_CONFIG={gateway_config:?}: want `-c {gateway}` in:\n{stdout}"
        );
    }
}
