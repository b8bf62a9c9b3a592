//! Storage faults for the end-to-end tests: a small filesystem that fills up ([`Tmpfs`]) and a
//! network fault between the server and its S3 bucket ([`FaultProxy`]).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// A tmpfs mounted on a folder for the life of the value (unmounted on drop). Needs root.
pub struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (as `mount` takes it: `16m`) on `path`, which must exist.
    pub fn mount(path: &Path, size: &str) -> Result<Self, String> {
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .output()
            .map_err(|e| format!("running mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount -t tmpfs on {}: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Self { path: path.to_path_buf() })
    }

    /// Free bytes, as `df` reports them.
    pub fn available(&self) -> u64 {
        let out = Command::new("df").args(["-B1", "--output=avail"]).arg(&self.path).output().expect("run df");
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines().nth(1).and_then(|l| l.trim().parse().ok()).unwrap_or_else(|| panic!("df output: {text}"))
    }

    /// Writes a file of zeros until at most `leave` bytes are free; `0`: until not a byte more fits.
    pub fn fill(&self, name: &str, leave: u64) -> PathBuf {
        let path = self.path.join(name);
        let mut file = std::fs::File::create(&path).expect("create the filler file");
        let chunk = vec![0u8; 64 << 10];
        while leave == 0 || self.available() > leave + chunk.len() as u64 {
            if file.write_all(&chunk).is_err() {
                break;
            }
        }
        if leave == 0 {
            // Down to the last page.
            while file.write_all(&[0u8; 512]).is_ok() {}
        }
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount").arg(&self.path).status().is_ok_and(|s| s.success());
        if !ok {
            // Something still holds a file there (a server that did not die yet): detach it lazily
            // so the temporary folder can still go.
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
    }
}

/// Whether the test may mount file systems; `Err` says why not. Under `CI` a missing privilege is a
/// failure, elsewhere the caller may skip.
pub fn require_mount(test: &str, probe: Result<Tmpfs, String>) -> Option<Tmpfs> {
    match probe {
        Ok(t) => Some(t),
        Err(e) if std::env::var_os("CI").is_some() => {
            panic!("{test} must mount a tmpfs (run as root, as CI does): {e}")
        }
        Err(e) => {
            eprintln!("{test}: SKIPPED, cannot mount a tmpfs (needs root): {e}");
            None
        }
    }
}

struct ProxyShared {
    stop: AtomicBool,
    down: AtomicBool,
    delay_ms: AtomicU64,
    next_conn: AtomicU64,
    /// A handle to each live connection's two sockets, to cut them when the outage starts.
    conns: Mutex<HashMap<u64, (TcpStream, TcpStream)>>,
}

/// A TCP proxy on a loopback port in front of `upstream` (the S3 emulator): it passes bytes
/// through, delays every chunk ([`FaultProxy::slow`]), or is down ([`FaultProxy::down`]: live
/// connections are cut and new ones refused, as a bucket's host that went away).
pub struct FaultProxy {
    port: u16,
    shared: Arc<ProxyShared>,
    acceptor: Option<JoinHandle<()>>,
}

impl FaultProxy {
    pub fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let shared = Arc::new(ProxyShared {
            stop: AtomicBool::new(false),
            down: AtomicBool::new(false),
            delay_ms: AtomicU64::new(0),
            next_conn: AtomicU64::new(0),
            conns: Mutex::new(HashMap::new()),
        });
        let acceptor = {
            let shared = shared.clone();
            thread::spawn(move || accept_loop(Some(listener), port, upstream, &shared))
        };
        Self { port, shared, acceptor: Some(acceptor) }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Down: cuts every live connection and refuses new ones until [`FaultProxy::up`].
    pub fn down(&self) {
        self.shared.down.store(true, Ordering::SeqCst);
        let conns = std::mem::take(&mut *self.shared.conns.lock().unwrap_or_else(|p| p.into_inner()));
        for (a, b) in conns.values() {
            let _ = a.shutdown(Shutdown::Both);
            let _ = b.shutdown(Shutdown::Both);
        }
    }

    /// Passes traffic again, without delay.
    pub fn up(&self) {
        self.shared.delay_ms.store(0, Ordering::SeqCst);
        self.shared.down.store(false, Ordering::SeqCst);
    }

    /// Holds every chunk (up to 16 KiB, either way) for `delay` before passing it on.
    pub fn slow(&self, delay: Duration) {
        self.shared.delay_ms.store(delay.as_millis() as u64, Ordering::SeqCst);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.down();
        if let Some(t) = self.acceptor.take() {
            let _ = t.join();
        }
    }
}

fn accept_loop(mut listener: Option<TcpListener>, port: u16, upstream: SocketAddr, shared: &Arc<ProxyShared>) {
    while !shared.stop.load(Ordering::SeqCst) {
        if shared.down.load(Ordering::SeqCst) {
            // No listener at all: connecting is refused, as with a host whose server is gone.
            listener = None;
            thread::sleep(Duration::from_millis(10));
            continue;
        }
        let Some(l) = listener.as_ref() else {
            // std sets SO_REUSEADDR, so the same port binds again at once.
            match TcpListener::bind(("127.0.0.1", port)) {
                Ok(l) => listener = Some(l),
                Err(_) => thread::sleep(Duration::from_millis(10)),
            }
            continue;
        };
        if l.set_nonblocking(true).is_err() {
            return;
        }
        match l.accept() {
            Ok((client, _)) => {
                let shared = shared.clone();
                thread::spawn(move || serve(client, upstream, &shared));
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => thread::sleep(Duration::from_millis(5)),
            Err(_) => thread::sleep(Duration::from_millis(10)),
        }
    }
}

fn serve(client: TcpStream, upstream: SocketAddr, shared: &Arc<ProxyShared>) {
    if client.set_nonblocking(false).is_err() {
        return;
    }
    let Ok(server) = TcpStream::connect(upstream) else { return };
    let id = shared.next_conn.fetch_add(1, Ordering::SeqCst);
    let (Ok(c2), Ok(s2), Ok(c3), Ok(s3)) =
        (client.try_clone(), server.try_clone(), client.try_clone(), server.try_clone())
    else {
        return;
    };
    shared.conns.lock().unwrap_or_else(|p| p.into_inner()).insert(id, (c3, s3));
    if shared.down.load(Ordering::SeqCst) {
        // Went down while connecting: cut.
        let _ = client.shutdown(Shutdown::Both);
        let _ = server.shutdown(Shutdown::Both);
    }
    let upload = {
        let shared = shared.clone();
        thread::spawn(move || pump(client, s2, &shared))
    };
    pump(server, c2, shared);
    let _ = upload.join();
    shared.conns.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
}

fn pump(mut from: TcpStream, mut to: TcpStream, shared: &ProxyShared) {
    let mut buf = vec![0u8; 16 << 10];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let delay = shared.delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            thread::sleep(Duration::from_millis(delay));
        }
        if shared.down.load(Ordering::SeqCst) || to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
    let _ = from.shutdown(Shutdown::Read);
}
