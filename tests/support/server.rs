//! Starting, stopping and killing the `footfall` binary.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::api::Api;
use crate::util::{free_port, random_token, tail};

/// How long a server may take from spawn to a 200 on `/healthz`.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a server may take to exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// How many times to retry when the probed port was taken in between.
const PORT_ATTEMPTS: u32 = 4;

/// The `footfall` binary under test.
///
/// `FOOTFALL_BIN` wins; otherwise it sits next to the test executable's
/// `deps/` directory. Panics with instructions when it does not exist.
pub fn binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let path = match std::env::var_os("FOOTFALL_BIN") {
            Some(p) => PathBuf::from(p),
            None => {
                let exe = std::env::current_exe().expect("path of the running test executable");
                // target/<profile>/deps/e2e-xxxx -> target/<profile>/footfall
                let profile_dir =
                    exe.parent().and_then(Path::parent).expect("test executable lives in target/<profile>/deps/");
                profile_dir.join(format!("footfall{}", std::env::consts::EXE_SUFFIX))
            }
        };
        assert!(
            path.is_file(),
            "the footfall binary was not found at {}: build it with `cargo build --bin footfall` \
             (same CARGO_TARGET_DIR and profile as the tests), or point FOOTFALL_BIN at it",
            path.display()
        );
        path
    })
}

/// How to start a server: the optional `serve` flags plus anything extra.
#[derive(Clone, Debug, Default)]
pub struct ServerOpts {
    /// `--storage URL` (`file:///…` or `s3://bucket/prefix`).
    pub storage: Option<String>,
    /// `--flush-age SECS`.
    pub flush_age: Option<u64>,
    /// `--flush-bytes N`.
    pub flush_bytes: Option<u64>,
    /// `--trusted-proxies CIDR[,CIDR]`.
    pub trusted_proxies: Option<String>,
    /// Extra command-line arguments, appended last.
    pub args: Vec<String>,
    /// Extra environment variables for the server process.
    pub env: Vec<(String, String)>,
    /// `--data-dir` somewhere the test prepared (a small file system); by default a fresh folder
    /// in the server's temporary directory.
    pub data_dir: Option<PathBuf>,
}

impl ServerOpts {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn storage(mut self, url: impl Into<String>) -> Self {
        self.storage = Some(url.into());
        self
    }

    pub fn flush_age(mut self, secs: u64) -> Self {
        self.flush_age = Some(secs);
        self
    }

    pub fn flush_bytes(mut self, bytes: u64) -> Self {
        self.flush_bytes = Some(bytes);
        self
    }

    pub fn trusted_proxies(mut self, cidrs: impl Into<String>) -> Self {
        self.trusted_proxies = Some(cidrs.into());
        self
    }

    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }
}

/// A running (or stopped) `footfall serve` on a temporary data directory.
///
/// Layout of the temporary root: `data/` is `--data-dir`, `footfall.log`
/// beside it collects stdout and stderr of every start (kept outside the data
/// directory so that scans of the data directory see only what the server
/// wrote there). Dropping the value SIGKILLs the child; if the thread is
/// panicking, the log tail is printed, and with `FOOTFALL_TEST_KEEP=1` the
/// directory is kept.
///
/// `Server` dereferences to [`Api`] for the HTTP helpers. The port changes on
/// every start; clone `api()` again after a restart.
pub struct Server {
    root: TempDir,
    data_dir: PathBuf,
    log_path: PathBuf,
    admin_token: String,
    opts: ServerOpts,
    child: Option<Child>,
    api: Api,
    starts: u32,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("data_dir", &self.data_dir)
            .field("base_url", &self.api.base_url())
            .field("pid", &self.pid())
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Starts a server on a fresh temporary data directory and waits until
    /// `/healthz` answers 200.
    pub fn start(opts: ServerOpts) -> Self {
        let root = tempfile::Builder::new()
            .prefix("footfall-e2e-")
            .tempdir()
            .expect("create a temporary directory for the server");
        let data_dir = opts.data_dir.clone().unwrap_or_else(|| root.path().join("data"));
        fs::create_dir_all(&data_dir).expect("create the data directory");
        let log_path = root.path().join("footfall.log");
        let admin_token = random_token();
        let api = Api::new("http://127.0.0.1:1".to_string(), admin_token.clone());
        let mut server = Server { root, data_dir, log_path, admin_token, opts, child: None, api, starts: 0 };
        server.spawn();
        server
    }

    /// Starts with default options.
    pub fn start_default() -> Self {
        Self::start(ServerOpts::default())
    }

    /// Stops gracefully if running (asserting exit code 0), then starts again
    /// on the same data directory with the same options.
    pub fn restart(&mut self) {
        if self.is_running() {
            self.stop();
        }
        self.spawn();
    }

    /// Like [`Server::restart`], with new options.
    pub fn restart_with(&mut self, opts: ServerOpts) {
        self.opts = opts;
        self.restart();
    }

    /// SIGKILL and reap. No-op if not running.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL the server");
            child.wait().expect("reap the killed server");
            self.log_line("=== killed with SIGKILL by the test ===");
        }
    }

    /// SIGTERM, wait up to 30 s, assert exit code 0.
    pub fn stop(&mut self) {
        let status = self.terminate();
        if !status.success() {
            panic!("server did not exit cleanly after SIGTERM: {status}\n--- log tail ---\n{}", self.log_tail(60));
        }
    }

    /// SIGTERM and wait up to 30 s; returns the exit status without judging
    /// it. Panics if the server does not exit in time (after SIGKILLing it).
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("terminate: the server is not running");
        let pid = child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().expect("run `kill -TERM`");
        assert!(sent.success(), "`kill -TERM {pid}` failed: {sent}");
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match child.try_wait().expect("poll the server process") {
                Some(status) => {
                    self.log_line(&format!("=== exited after SIGTERM: {status} ==="));
                    return status;
                }
                None if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "server did not exit within {STOP_TIMEOUT:?} of SIGTERM\n--- log tail ---\n{}",
                        self.log_tail(60)
                    );
                }
                None => thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// Whether the child is still alive.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            None => false,
            Some(child) => match child.try_wait() {
                Ok(None) => true,
                Ok(Some(_)) | Err(_) => false,
            },
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The HTTP client for the current process (its port changes on restart).
    pub fn api(&self) -> &Api {
        &self.api
    }

    /// The admin token (the same across restarts).
    pub fn admin(&self) -> &str {
        &self.admin_token
    }

    /// `--data-dir`.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The default storage root: `<data-dir>/storage`.
    pub fn storage_dir(&self) -> PathBuf {
        self.data_dir.join("storage")
    }

    /// Where stdout and stderr of every start go.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The last `lines` lines of the server log.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log_path, lines)
    }

    pub fn opts(&self) -> &ServerOpts {
        &self.opts
    }

    fn log_line(&self, line: &str) {
        if let Ok(mut f) = OpenOptions::new().append(true).open(&self.log_path) {
            let _ = writeln!(f, "{line}");
        }
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "spawn: the server is already running");
        for attempt in 1..=PORT_ATTEMPTS {
            let port = free_port();
            let listen = format!("127.0.0.1:{port}");
            let mut args: Vec<String> = vec![
                "serve".into(),
                "--listen".into(),
                listen.clone(),
                "--data-dir".into(),
                self.data_dir.display().to_string(),
            ];
            if let Some(s) = &self.opts.storage {
                args.extend(["--storage".into(), s.clone()]);
            }
            if let Some(a) = self.opts.flush_age {
                args.extend(["--flush-age".into(), a.to_string()]);
            }
            if let Some(b) = self.opts.flush_bytes {
                args.extend(["--flush-bytes".into(), b.to_string()]);
            }
            if let Some(p) = &self.opts.trusted_proxies {
                args.extend(["--trusted-proxies".into(), p.clone()]);
            }
            args.extend(self.opts.args.iter().cloned());

            self.starts += 1;
            let mut log =
                OpenOptions::new().create(true).append(true).open(&self.log_path).expect("open the server log");
            writeln!(
                log,
                "=== start #{} (attempt {attempt}): {} {} ===",
                self.starts,
                binary().display(),
                args.join(" ")
            )
            .expect("write the server log");
            let log_offset = log.metadata().map(|m| m.len()).unwrap_or(0);
            let stderr: File = log.try_clone().expect("clone the log handle");

            let mut cmd = Command::new(binary());
            cmd.args(&args)
                .env("FOOTFALL_ADMIN_TOKEN", &self.admin_token)
                .env("RUST_LOG", std::env::var("FOOTFALL_TEST_RUST_LOG").unwrap_or_else(|_| "info".into()))
                .env("RUST_BACKTRACE", "1")
                .stdin(Stdio::null())
                .stdout(Stdio::from(log))
                .stderr(Stdio::from(stderr));
            for (k, v) in &self.opts.env {
                cmd.env(k, v);
            }
            let child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {}: {e}", binary().display()));
            self.child = Some(child);
            self.api = Api::new(format!("http://{listen}"), self.admin_token.clone());

            match self.wait_ready() {
                Ok(()) => return,
                Err(status) => {
                    let since = fs::read(&self.log_path)
                        .map(|b| {
                            let from = usize::try_from(log_offset).unwrap_or(0).min(b.len());
                            String::from_utf8_lossy(&b[from..]).into_owned()
                        })
                        .unwrap_or_default();
                    let port_taken = since.contains("in use") || since.contains("AddrInUse");
                    if port_taken && attempt < PORT_ATTEMPTS {
                        continue;
                    }
                    panic!(
                        "footfall exited before becoming healthy ({status})\n--- log tail ---\n{}",
                        self.log_tail(80)
                    );
                }
            }
        }
    }

    /// Polls `/healthz` until 200. `Err(status)` if the process exited;
    /// panics on timeout.
    fn wait_ready(&mut self) -> Result<(), ExitStatus> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let probe = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("build the health-check client");
        let url = self.api.url("/healthz");
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait().expect("poll the server process") {
                    self.child = None;
                    return Err(status);
                }
            }
            if let Ok(resp) = probe.get(&url).send() {
                if resp.status() == reqwest::StatusCode::OK {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                if let Some(mut child) = self.child.take() {
                    let _ = child.kill();
                    let _ = child.wait();
                }
                panic!(
                    "footfall did not answer 200 on {url} within {READY_TIMEOUT:?}\n--- log tail ---\n{}",
                    self.log_tail(80)
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Deref for Server {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if thread::panicking() {
            eprintln!(
                "--- footfall log tail ({}) ---\n{}\n--- end of footfall log ---",
                self.log_path.display(),
                self.log_tail(60)
            );
            if std::env::var_os("FOOTFALL_TEST_KEEP").is_some_and(|v| v == "1") {
                self.root.disable_cleanup(true);
                eprintln!("kept the test directory {}", self.root.path().display());
            }
        }
    }
}
