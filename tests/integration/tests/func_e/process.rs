//! The func-e binary and one `func-e run` with its own scratch homes.
//!
//! func-e keeps everything per run under its homes: Envoy installs in
//! `$FUNC_E_DATA_HOME/envoy-versions/<version>/`, Envoy's stdout/stderr copies in
//! `$FUNC_E_STATE_HOME/envoy-runs/<run id>/`, the admin address file in
//! `$FUNC_E_RUNTIME_DIR/<run id>/admin-address.txt`. The test fixes the run id so it knows
//! where to look.
//!
//! Shutdown: func-e turns SIGTERM/SIGINT into killing Envoy and waiting for it, then exits 0;
//! it starts Envoy with a parent-death signal (SIGKILL), so even a func-e killed outright takes
//! its Envoy with it. `Drop` stops func-e that way if the test fails first.

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use apim_integration::{repo_root, Request};

const HINT: &str = "run `make setup-func-e` (go install of the pinned func-e into the tool cache)";

/// `$FUNC_E_BIN` (the Makefile exports it), else where `make setup-func-e` installs the version
/// the Makefile pins. Missing is a test failure naming the make target, never a skip.
pub fn func_e_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("FUNC_E_BIN").filter(|v| !v.is_empty()) {
        let bin = PathBuf::from(bin);
        assert!(
            bin.is_file(),
            "func-e is missing: FUNC_E_BIN={} does not exist: {HINT}",
            bin.display()
        );
        return bin;
    }
    let makefile = std::fs::read_to_string(repo_root().join("Makefile")).unwrap();
    let version = makefile
        .lines()
        .find_map(|line| line.strip_prefix("FUNC_E_VERSION"))
        .and_then(|rest| rest.trim_start().strip_prefix(":="))
        .map(str::trim)
        .expect("the Makefile pins FUNC_E_VERSION");
    let home = std::env::var_os("HOME").expect("HOME is set");
    let bin = Path::new(&home)
        .join(".cache/apim-filters/tools")
        .join(format!("func-e-{version}"))
        .join("func-e");
    assert!(
        bin.is_file(),
        "func-e {version} is missing (looked for {}): {HINT}",
        bin.display()
    );
    bin
}

/// func-e's four homes, inside one scratch dir.
pub struct Homes {
    root: PathBuf,
}

impl Homes {
    pub fn new(root: &Path) -> Homes {
        std::fs::create_dir_all(root).unwrap();
        Homes {
            root: root.to_path_buf(),
        }
    }

    pub fn data(&self) -> PathBuf {
        self.root.join("data")
    }

    /// Where func-e installs `version`'s Envoy.
    pub fn installed_envoy(&self, version: &str) -> PathBuf {
        self.data()
            .join("envoy-versions")
            .join(version)
            .join("bin/envoy")
    }

    pub fn run_dir(&self, run_id: &str) -> PathBuf {
        self.root.join("state/envoy-runs").join(run_id)
    }

    fn admin_address_file(&self, run_id: &str) -> PathBuf {
        self.root
            .join("runtime")
            .join(run_id)
            .join("admin-address.txt")
    }

    /// `func-e <args>` from the repository root (so it reads `.envoy-version` there, and the
    /// gateway's relative module paths resolve), with these homes, this run id and this versions
    /// index, and nothing inherited that would change which Envoy it picks.
    pub fn command(&self, func_e: &Path, run_id: &str, versions_url: &str) -> Command {
        let mut command = Command::new(func_e);
        command
            .current_dir(repo_root())
            .env_remove("ENVOY_PATH")
            .env_remove("ENVOY_VERSION")
            .env_remove("FUNC_E_HOME")
            .env_remove("FUNC_E_PLATFORM")
            .env("ENVOY_VERSIONS_URL", versions_url)
            .env("FUNC_E_CONFIG_HOME", self.root.join("config"))
            .env("FUNC_E_DATA_HOME", self.data())
            .env("FUNC_E_STATE_HOME", self.root.join("state"))
            .env("FUNC_E_RUNTIME_DIR", self.root.join("runtime"))
            .env("FUNC_E_RUN_ID", run_id)
            .stdin(Stdio::null());
        command
    }

    /// Runs `command` to the end (bounded by `timeout`), output to a file in the scratch dir;
    /// returns the exit status and that output.
    pub fn run_to_end(
        &self,
        mut command: Command,
        name: &str,
        timeout: Duration,
    ) -> (ExitStatus, String) {
        let out_path = self.root.join(format!("{name}.out"));
        let out = File::create(&out_path).unwrap();
        let mut child = command
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        let status = wait_deadline(&mut child, timeout).unwrap_or_else(|| {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{name} did not finish in {timeout:?}: {}", read(&out_path))
        });
        (status, read(&out_path))
    }
}

/// A running `func-e run`. Its own output (status lines, then Envoy's stdout/stderr) goes to a
/// file in the scratch dir.
pub struct FuncERun<'h> {
    homes: &'h Homes,
    run_id: String,
    child: Child,
    output: PathBuf,
    envoy_pid: Option<u32>,
}

impl<'h> FuncERun<'h> {
    pub fn start(homes: &'h Homes, mut command: Command, run_id: &str) -> FuncERun<'h> {
        let output = homes.root.join(format!("{run_id}.out"));
        let out = File::create(&output).unwrap();
        let child = command
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        FuncERun {
            homes,
            run_id: run_id.to_owned(),
            child,
            output,
            envoy_pid: None,
        }
    }

    /// func-e's output so far.
    pub fn output(&self) -> String {
        read(&self.output)
    }

    /// Envoy's stderr (its log at `-l info`) as func-e keeps it in the run directory.
    pub fn envoy_stderr(&self) -> String {
        read(&self.homes.run_dir(&self.run_id).join("stderr.log"))
    }

    /// Waits (bounded) until func-e's Envoy has written its admin address and says LIVE;
    /// returns the admin port. func-e exiting first fails the test with its output.
    pub fn wait_ready(&mut self, timeout: Duration) -> u16 {
        let deadline = Instant::now() + timeout;
        let file = self.homes.admin_address_file(&self.run_id);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "func-e exited ({status}) before Envoy was ready:\n{}",
                    self.report()
                );
            }
            let port = std::fs::read_to_string(&file)
                .ok()
                .and_then(|text| text.trim().parse::<SocketAddr>().ok())
                .map(|addr| addr.port());
            if let Some(port) = port {
                let live = Request::get("/ready").send(port).ok();
                if live.is_some_and(|r| r.status == 200 && r.text().trim() == "LIVE") {
                    return port;
                }
            }
            assert!(
                Instant::now() < deadline,
                "Envoy under func-e not ready within {timeout:?}:\n{}",
                self.report()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The one process func-e started (its only child), remembered so `Drop` can make sure it
    /// is gone.
    pub fn envoy_pid(&mut self) -> u32 {
        let children = children_of(self.child.id());
        let [pid] = children.as_slice() else {
            panic!(
                "func-e should have exactly one child (Envoy), has {children:?}:\n{}",
                self.report()
            );
        };
        self.envoy_pid = Some(*pid);
        *pid
    }

    /// SIGTERM, as Ctrl-C or a service manager would; returns func-e's exit status (bounded).
    pub fn stop(&mut self) -> ExitStatus {
        signal("-TERM", self.child.id());
        match wait_deadline(&mut self.child, Duration::from_secs(10)) {
            Some(status) => status,
            None => panic!(
                "func-e did not exit within 10 s of SIGTERM:\n{}",
                self.report()
            ),
        }
    }

    /// For failure messages: func-e's output, which holds its status lines and then Envoy's
    /// console (func-e copies that to the run directory's stdout.log/stderr.log as well).
    pub fn report(&self) -> String {
        format!(
            "----- func-e output -----\n{}\n----- end of func-e output -----",
            self.output()
        )
    }
}

impl Drop for FuncERun<'_> {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            signal("-TERM", self.child.id());
            if wait_deadline(&mut self.child, Duration::from_secs(10)).is_none() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
        // Belt and braces: func-e kills and reaps Envoy before it exits (and the kernel kills
        // Envoy if func-e dies), so this only acts if both of those failed.
        if let Some(pid) = self.envoy_pid.filter(|pid| alive(*pid)) {
            signal("-KILL", pid);
        }
        if std::thread::panicking() {
            eprintln!("{}", self.report());
        }
    }
}

/// Whether `pid` is a live process (not gone, not a zombie).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit_once(')')
                .map(|(_, rest)| rest.trim().to_owned())
        })
        .is_some_and(|rest| !rest.starts_with('Z'))
}

/// Processes whose parent is `parent`, from /proc.
fn children_of(parent: u32) -> Vec<u32> {
    let mut children = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        // stat: "pid (comm) state ppid …"; comm may hold spaces and parentheses.
        let ppid = std::fs::read_to_string(entry.path().join("stat"))
            .ok()
            .and_then(|stat| {
                let (_, rest) = stat.rsplit_once(')')?;
                rest.split_whitespace().nth(1)?.parse::<u32>().ok()
            });
        if ppid == Some(parent) {
            children.push(pid);
        }
    }
    children
}

/// kill(1): std can only SIGKILL, and the crate forbids unsafe.
fn signal(sig: &str, pid: u32) {
    let _ = Command::new("kill")
        .arg(sig)
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

fn wait_deadline(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn read(path: &Path) -> String {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}
