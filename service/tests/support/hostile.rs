//! A scripted hostile client against a running service: slow-loris headers, trickled bodies,
//! oversize declared bodies, bad signatures, unknown validators, the wrong miner, replayed
//! nonces, and one genuine signed challenge in the middle that must still get its 200.
//! Used by `tests/service.rs` (small scale) and `examples/hostile_client.rs` (full scale,
//! against `pitchside serve`, with its peak RSS).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::signing::{self, Hotkey};

/// How much of each kind of abuse to send.
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    pub slow_headers: usize,
    pub slow_bodies: usize,
    pub oversize: usize,
    pub bad_signatures: usize,
    pub replays: usize,
    /// Longest a hostile connection may stay open (the service's header/body timeouts plus
    /// slack); one still open after this is a failure.
    pub hold_limit: Duration,
}

/// What happened, and what went wrong (empty when the service behaved).
#[derive(Debug, Default)]
pub struct Report {
    /// Status line counts of the refused requests, e.g. `401` → 120.
    pub statuses: std::collections::BTreeMap<u16, usize>,
    pub genuine_status: u16,
    pub genuine_frames: usize,
    pub genuine_seconds: f64,
    /// Longest a slow (header or body) connection stayed open.
    pub longest_hold: Duration,
    pub failures: Vec<String>,
}

/// The request the validator really sends.
pub struct Genuine {
    pub validator: Hotkey,
    pub miner_address: String,
    pub video_url: String,
    pub expected_frames: usize,
}

fn challenge_body(id: &str, url: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "challenge_id": id,
        "type": "gsr",
        "video_url": url,
        "created_at": "2025-01-01T00:00:00Z",
    }))
    .unwrap()
}

/// One request on a fresh connection; returns the status and the body.
async fn request(target: SocketAddr, head: &str, body: &[u8]) -> std::io::Result<(u16, String)> {
    let mut sock = TcpStream::connect(target).await?;
    sock.write_all(head.as_bytes()).await?;
    sock.write_all(body).await?;
    let mut got = Vec::new();
    sock.read_to_end(&mut got).await?;
    let text = String::from_utf8_lossy(&got).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    Ok((status, body))
}

fn post_head(target: SocketAddr, headers: &[(&str, String)], len: usize) -> String {
    let mut h = format!(
        "POST /soccer/challenge HTTP/1.1\r\nHost: {target}\r\nContent-Type: application/json\r\n\
         Connection: close\r\nContent-Length: {len}\r\n"
    );
    for (k, v) in headers {
        h.push_str(&format!("{k}: {v}\r\n"));
    }
    h.push_str("\r\n");
    h
}

/// Holds a connection by trickling `head` (then, if `body_len` > 0, a body) one byte every
/// 200 ms; returns how long the service let it stay open.
async fn trickle(target: SocketAddr, head: Vec<u8>, give_up: Duration) -> Duration {
    let t0 = Instant::now();
    let Ok(mut sock) = TcpStream::connect(target).await else {
        return Duration::ZERO;
    };
    let mut buf = [0u8; 512];
    let mut i = 0;
    while t0.elapsed() < give_up {
        let byte = head.get(i).copied().unwrap_or(b'x');
        i += 1;
        if sock.write_all(&[byte]).await.is_err() {
            break;
        }
        match tokio::time::timeout(Duration::from_millis(200), sock.read(&mut buf)).await {
            // Closed, reset, or answered (408) and then closed: either way it is let go.
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(_)) => {}
            Err(_) => {}
        }
    }
    t0.elapsed()
}

/// Runs the whole script against `target`.
pub async fn run(target: SocketAddr, genuine: &Genuine, scale: Scale) -> Report {
    let mut report = Report::default();
    let stranger = Hotkey::from_seed(99);
    let miner = genuine.miner_address.clone();

    // Slow connections first, left running in the background through the rest.
    let mut slow = Vec::new();
    let give_up = scale.hold_limit + Duration::from_secs(5);
    for _ in 0..scale.slow_headers {
        let head = b"POST /soccer/challenge HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".to_vec();
        slow.push(tokio::spawn(trickle(target, head, give_up)));
    }
    for _ in 0..scale.slow_bodies {
        let head = post_head(target, &[], 400).into_bytes();
        // The headers arrive whole; then the body trickles.
        slow.push(tokio::spawn(async move {
            let t0 = Instant::now();
            let Ok(mut sock) = TcpStream::connect(target).await else {
                return Duration::ZERO;
            };
            if sock.write_all(&head).await.is_err() {
                return t0.elapsed();
            }
            let mut buf = [0u8; 512];
            while t0.elapsed() < give_up {
                if sock.write_all(b"{").await.is_err() {
                    break;
                }
                match tokio::time::timeout(Duration::from_millis(200), sock.read(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => break,
                    _ => {}
                }
            }
            t0.elapsed()
        }));
    }

    let mut refused = Vec::new();
    // Oversize declared bodies: refused (413) before the body is read.
    for _ in 0..scale.oversize {
        let head = post_head(target, &[], 10_000_000_000);
        refused.push(tokio::spawn(
            async move { request(target, &head, b"{").await },
        ));
    }
    // Bad signatures: garbage, another message's signature, a stranger's key, the wrong miner.
    for i in 0..scale.bad_signatures {
        let body = challenge_body(&format!("bad-{i}"), &genuine.video_url);
        let nonce = signing::nonce();
        let mut headers = signing::headers(&genuine.validator, &miner, &nonce, &body);
        match i % 4 {
            0 => headers[3].1 = format!("0x{}", "ab".repeat(64)),
            1 => {
                headers = signing::headers(&genuine.validator, &miner, &nonce, b"{}");
            }
            2 => headers = signing::headers(&stranger, &miner, &nonce, &body),
            _ => headers = signing::headers(&genuine.validator, &stranger.address, &nonce, &body),
        }
        let head = post_head(target, &headers, body.len());
        refused.push(tokio::spawn(
            async move { request(target, &head, &body).await },
        ));
    }
    // The genuine challenge, in the middle of it all.
    let body = challenge_body("genuine", &genuine.video_url);
    let nonce = signing::nonce();
    let headers = signing::headers(&genuine.validator, &miner, &nonce, &body);
    let head = post_head(target, &headers, body.len());
    let (g_head, g_body) = (head.clone(), body.clone());
    let t0 = Instant::now();
    let genuine_task = tokio::spawn(async move { request(target, &g_head, &g_body).await });
    // Let it be accepted (its nonce recorded) before replaying it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..scale.replays {
        let (head, body) = (head.clone(), body.clone());
        refused.push(tokio::spawn(
            async move { request(target, &head, &body).await },
        ));
    }
    for r in refused {
        match r.await {
            Ok(Ok((status, body))) => {
                *report.statuses.entry(status).or_default() += 1;
                if status == 200 || status >= 500 || status == 0 {
                    report
                        .failures
                        .push(format!("a hostile request got {status}: {body}"));
                }
            }
            Ok(Err(e)) => report
                .failures
                .push(format!("a hostile request failed: {e}")),
            Err(e) => report.failures.push(format!("task: {e}")),
        }
    }
    match genuine_task.await {
        Ok(Ok((status, body))) => {
            report.genuine_status = status;
            report.genuine_seconds = t0.elapsed().as_secs_f64();
            let frames = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["frames"].as_array().map(Vec::len))
                .unwrap_or(0);
            report.genuine_frames = frames;
            if status != 200 || frames != genuine.expected_frames {
                report.failures.push(format!(
                    "the genuine challenge got {status} with {frames} frames (expected 200 with {}): {}",
                    genuine.expected_frames,
                    body.chars().take(300).collect::<String>()
                ));
            }
        }
        Ok(Err(e)) => report.failures.push(format!("the genuine challenge: {e}")),
        Err(e) => report.failures.push(format!("task: {e}")),
    }
    for s in slow {
        let held = s.await.unwrap_or_default();
        report.longest_hold = report.longest_hold.max(held);
    }
    if report.longest_hold > scale.hold_limit {
        report.failures.push(format!(
            "a slow connection stayed open {:?} (limit {:?})",
            report.longest_hold, scale.hold_limit
        ));
    }
    report
}

/// Sends the genuine signed challenge on a fresh connection (from the default address):
/// its status and the number of frames answered.
#[allow(dead_code)] // tests/service.rs; the example sends it within `run`.
pub async fn genuine_challenge(
    target: SocketAddr,
    genuine: &Genuine,
    id: &str,
) -> std::io::Result<(u16, usize, String)> {
    signed_challenge(target, genuine, id, &genuine.video_url).await
}

/// A challenge signed by the genuine validator for `video_url` (a hostile file behind a
/// real signature: the content check is what stops it).
pub async fn signed_challenge(
    target: SocketAddr,
    genuine: &Genuine,
    id: &str,
    video_url: &str,
) -> std::io::Result<(u16, usize, String)> {
    let body = challenge_body(id, video_url);
    let nonce = signing::nonce();
    let headers = signing::headers(&genuine.validator, &genuine.miner_address, &nonce, &body);
    let head = post_head(target, &headers, body.len());
    let (status, text) = request(target, &head, &body).await?;
    let frames = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["frames"].as_array().map(Vec::len))
        .unwrap_or(0);
    Ok((status, frames, text))
}

/// One GET on a fresh connection: the status (0 when the connection was closed unanswered).
pub async fn get(target: SocketAddr, path: &str) -> u16 {
    let head = format!("GET {path} HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\n\r\n");
    request(target, &head, b"").await.map_or(0, |(s, _)| s)
}

/// An idle-socket flood: `sockets` connections from `from` (a loopback alias such as
/// 127.0.0.2, a peer of its own) that never send a byte, each reopened when the service
/// drops it, `reopen_per_s` reopenings a second in all at most. Unsigned, unauthenticated:
/// what anyone who can reach the port can do.
pub struct Flood {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Connections made, first ones included.
    pub opened: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Flood {
    pub fn start(
        target: SocketAddr,
        from: std::net::IpAddr,
        sockets: usize,
        reopen_per_s: f64,
    ) -> Flood {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        let stop = Arc::new(AtomicBool::new(false));
        let opened = Arc::new(AtomicU64::new(0));
        // Each socket waits this long before reopening: `reopen_per_s` in all.
        let pause = Duration::from_secs_f64(sockets as f64 / reopen_per_s.max(1e-3));
        let tasks = (0..sockets)
            .map(|_| {
                let (stop, opened) = (stop.clone(), opened.clone());
                tokio::spawn(async move {
                    let mut buf = [0u8; 64];
                    while !stop.load(Ordering::Relaxed) {
                        let sock = tokio::net::TcpSocket::new_v4().and_then(|s| {
                            s.bind(SocketAddr::new(from, 0))?;
                            Ok(s)
                        });
                        let Ok(sock) = sock else {
                            tokio::time::sleep(pause).await;
                            continue;
                        };
                        if let Ok(mut s) = sock.connect(target).await {
                            opened.fetch_add(1, Ordering::Relaxed);
                            // Held until the service closes it (or the flood stops).
                            loop {
                                if stop.load(Ordering::Relaxed) {
                                    return;
                                }
                                match tokio::time::timeout(
                                    Duration::from_millis(200),
                                    s.read(&mut buf),
                                )
                                .await
                                {
                                    Err(_) => continue,
                                    Ok(Ok(n)) if n > 0 => continue,
                                    Ok(_) => break,
                                }
                            }
                        }
                        tokio::time::sleep(pause).await;
                    }
                })
            })
            .collect();
        Flood {
            stop,
            tasks,
            opened,
        }
    }

    /// Stops reopening and closes every socket.
    pub async fn stop(self) -> u64 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for t in self.tasks {
            let _ = t.await;
        }
        self.opened.load(std::sync::atomic::Ordering::Relaxed)
    }
}
