//! What the integration tests share: where the checkout is, the real clip, the plugin
//! libraries built for them, and a watchdog for code that could deadlock.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::OnceLock;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

/// The repository root, read at run time (test binaries are reused across checkouts that
/// share a target dir).
pub fn root() -> PathBuf {
    PathBuf::from(
        &std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into()),
    )
}

/// The real test clip (scripts/fetch-assets.sh): 768x576, 795 frames, XVID AVI.
pub fn vtest() -> PathBuf {
    let p = root().join("assets/vtest.avi");
    assert!(
        p.is_file(),
        "{} is missing: run scripts/fetch-assets.sh",
        p.display()
    );
    p
}

/// A plugin library of this workspace by crate name (`colour_ball_detector`,
/// `pitchside_test_plugins`). Both are built once, on first use, by a nested `cargo build`
/// into a target dir of their own (as trybuild does), so the outer cargo's lock never matters.
pub fn plugin_lib(crate_name: &str) -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let exe = std::env::current_exe().unwrap();
        let target = exe.ancestors().nth(3).unwrap().join("plugin-tests");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--lib", "-p", "colour-ball-detector"])
            .args(["-p", "pitchside-test-plugins", "--manifest-path"])
            .arg(root().join("Cargo.toml"))
            .arg("--target-dir")
            .arg(&target)
            .status()
            .unwrap();
        assert!(status.success(), "building the plugin libraries failed");
        target.join("debug")
    });
    dir.join(format!(
        "{}{crate_name}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ))
}

/// Sends `sig` (e.g. "TERM", "INT") to a child process.
pub fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig} {}", child.id());
}

/// Polls `done` every 20 ms until it holds; fails after `limit` with `what` and `context()`.
pub fn wait_until(
    limit: Duration,
    what: &str,
    mut done: impl FnMut() -> bool,
    context: impl Fn() -> String,
) {
    let start = std::time::Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "{what}: {}", context());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `f` on its own thread and returns its result, failing if it has not returned
/// within `limit`: a deadlock then fails the test instead of hanging the run (the stuck
/// thread is left behind; the test process still exits).
pub fn within<T: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(f());
    });
    match finished.recv_timeout(limit) {
        Ok(v) => v,
        Err(RecvTimeoutError::Timeout) => panic!("{what}: still running after {limit:?}"),
        Err(RecvTimeoutError::Disconnected) => panic!("{what}: panicked"),
    }
}

/// A loopback HTTP/1.1 server on raw TCP (a thread per connection): `/vtest.avi` is the real
/// clip with its Content-Length, every other path a 404. Its threads live as long as the
/// test process.
pub struct VideoServer {
    pub addr: std::net::SocketAddr,
}

impl VideoServer {
    pub fn start() -> VideoServer {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let video = std::sync::Arc::new(std::fs::read(vtest()).unwrap());
        std::thread::spawn(move || {
            for sock in listener.incoming() {
                let (Ok(mut sock), video) = (sock, video.clone()) else {
                    continue;
                };
                std::thread::spawn(move || -> std::io::Result<()> {
                    let mut req = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                        let n = sock.read(&mut buf)?;
                        if n == 0 || req.len() > 65536 {
                            return Ok(());
                        }
                        req.extend_from_slice(&buf[..n]);
                    }
                    let line = String::from_utf8_lossy(&req);
                    let path = line.split_whitespace().nth(1).unwrap_or("/");
                    if path == "/stalling.avi" {
                        // The header and the first 64 KiB of the video, then nothing for
                        // a minute: a download in progress.
                        write!(
                            sock,
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            video.len()
                        )?;
                        sock.write_all(&video[..65536])?;
                        std::thread::sleep(std::time::Duration::from_secs(60));
                        return Ok(());
                    }
                    let (status, body): (&str, &[u8]) = if path == "/vtest.avi" {
                        ("200 OK", &video)
                    } else {
                        ("404 Not Found", b"not found")
                    };
                    write!(
                        sock,
                        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    )?;
                    sock.write_all(body)
                });
            }
        });
        VideoServer { addr }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}
