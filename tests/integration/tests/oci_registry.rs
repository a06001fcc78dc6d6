//! The OCI images `apim oci build` makes are pushed to a real registry and pulled back, as a
//! cluster's image pull would: Debian's `docker-registry` (the CNCF distribution registry) on
//! 127.0.0.1, `skopeo copy` both ways. The registry must store each image under the digest the
//! shipped manifests pin (`# image:` lines), and the image pulled back must be valid
//! (`apim oci verify`) and carry the module's exact bytes. `make setup-registry` installs both
//! tools (Debian packages).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use apim_integration::{apim_bin, repo_root};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const MODULES: [&str; 6] = [
    "api_key_auth",
    "scope_authz",
    "quota",
    "graphql_guard",
    "transform",
    "apim_suite",
];
const TAG: &str = "0.1.0";

fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e} (run `make setup-registry`)"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A registry on a free 127.0.0.1 port with its storage in `dir`, stopped on drop.
struct Registry {
    child: Child,
    port: u16,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Registry {
    fn start(dir: &Path) -> Registry {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.join("storage").display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run docker-registry: {e} (run `make setup-registry`)")
            });
        let registry = Registry { child, port };
        // Bounds a hang only: the registry answers /v2/ once it listens.
        let deadline = Instant::now() + Duration::from_secs(30);
        while apim_integration::Request::get("/v2/")
            .send(port)
            .map(|r| r.status)
            != Ok(200)
        {
            assert!(Instant::now() < deadline, "the registry did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        registry
    }
}

/// The digests the shipped manifests pin for `module`'s image (every `# image:` line).
fn pinned_image_digests(module: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![repo_root().join("envoy")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml") {
                let text = std::fs::read_to_string(&path).unwrap();
                let marker = format!("# image: {module}");
                for line in text.lines().filter(|l| l.trim_end().ends_with(&marker)) {
                    if let Some(hex) = line.trim_start().strip_prefix("sha256: ") {
                        found.push(hex.chars().take(64).collect::<String>());
                    }
                }
            }
        }
    }
    found
}

#[test]
fn every_image_goes_through_a_real_registry_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::start(dir.path());
    let wasm_dir = repo_root().join("target/wasm32-wasip1/release");
    for module in MODULES {
        let wasm = wasm_dir.join(format!("{module}.wasm"));
        assert!(
            wasm.is_file(),
            "{} is missing: run `make build`",
            wasm.display()
        );
        let image = dir.path().join(module);
        let built = run(
            apim_bin().to_str().unwrap(),
            &[
                "oci",
                "build",
                wasm.to_str().unwrap(),
                image.to_str().unwrap(),
                TAG,
            ],
        );
        let tarball = format!("{}.tar", image.display());
        let remote = format!("docker://127.0.0.1:{}/apim/{module}:{TAG}", registry.port);
        run(
            "skopeo",
            &[
                "--insecure-policy",
                "copy",
                "--dest-tls-verify=false",
                &format!("oci-archive:{tarball}"),
                &remote,
            ],
        );
        // What the registry serves for the tag: the digest the manifests pin.
        let r = apim_integration::Request::new("HEAD", &format!("/v2/apim/{module}/manifests/{TAG}"))
            .header(
                "accept",
                "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json",
            )
            .send(registry.port)
            .unwrap();
        assert_eq!(r.status, 200, "{module}: {}", r.text());
        let served = r
            .header("docker-content-digest")
            .and_then(|d| d.strip_prefix("sha256:"))
            .unwrap_or_default()
            .to_string();
        assert!(
            built.contains(&format!("image sha256:{served}")),
            "{module}: the registry serves {served}, apim built: {built}"
        );
        let pinned = pinned_image_digests(module);
        assert!(!pinned.is_empty(), "no `# image: {module}` line in envoy/");
        assert!(
            pinned.iter().all(|p| *p == served),
            "{module}: pinned {pinned:?}, the registry serves {served}"
        );
        // Pulled back: a valid image carrying the module's exact bytes.
        let back = dir.path().join(format!("{module}-pulled"));
        run(
            "skopeo",
            &[
                "--insecure-policy",
                "copy",
                "--src-tls-verify=false",
                &remote,
                &format!("oci:{}:{TAG}", back.display()),
            ],
        );
        let verified = run(
            apim_bin().to_str().unwrap(),
            &["oci", "verify", back.to_str().unwrap()],
        );
        let module_sha = kit::digest::to_hex(&kit::digest::sha256(&std::fs::read(&wasm).unwrap()));
        assert!(
            verified.contains(&format!("module sha256 {module_sha}")),
            "{module}: {verified}"
        );
    }
}
