//! A loopback HTTP/1.1 server for challenge videos, written on raw TCP so that it can
//! misbehave exactly: stall, cut a body short, lie about its length, fail then recover.
//!
//! Paths (any query string is ignored):
//! - `/vtest.avi`: the real clip, with Content-Length
//! - `/chunked.avi`: the clip, chunked (no Content-Length)
//! - `/redirect.avi`: 302 to `/vtest.avi`
//! - `/missing.avi`: 404
//! - `/stall-headers.avi`: accepts, then never answers
//! - `/stall-body.avi`: headers and 64 KiB of the clip, then nothing, connection kept open
//! - `/cut.avi`: announces the clip's length, sends half, closes
//! - `/text.avi`: 200 with 200 KiB of text
//! - `/huge.avi`: announces 50 GiB, sends 1 KiB, closes
//! - `/flaky.avi`: 503 for the first two requests, then the clip
//! - `/always-500.avi`: 500
//! - `/empty.avi`: 200 with no bytes
//! - `/redirect-loop.avi`: 302 to itself, forever
//! - `/huge-frame.mp4`: a real 6000x4000 video (2 frames of H.264, 7 KB:
//!   tests/fixtures/videos/green-6000x4000.mp4)
//! - `/bomb.mp4`: gzip data a game-music demuxer inflates (100 KB → 100 MB:
//!   tests/fixtures/hostile/gzip-bomb.vgz); `PITCHSIDE_BOMB` names a bigger one
//! - `/playlist.m3u8`: an HLS playlist of the miner's own `file:` assets/vtest.avi
//! - `/concat.mp4`: an ffconcat script of the same file

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub struct VideoServer {
    pub addr: SocketAddr,
    hits: Arc<Mutex<HashMap<String, usize>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for VideoServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl VideoServer {
    /// Serves `video` on 127.0.0.1 (a free port).
    pub async fn start(video: Vec<u8>) -> VideoServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(Mutex::new(HashMap::new()));
        let video = Arc::new(video);
        let h = hits.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    continue;
                };
                let (video, hits) = (video.clone(), h.clone());
                tokio::spawn(async move {
                    let _ = handle(sock, &video, &hits).await;
                });
            }
        });
        VideoServer { addr, hits, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Requests received for `path`.
    pub fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

fn head(status: &str, content_type: &str, length: Option<u64>) -> String {
    let mut h =
        format!("HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nConnection: close\r\n");
    match length {
        Some(n) => h.push_str(&format!("Content-Length: {n}\r\n")),
        None => h.push_str("Transfer-Encoding: chunked\r\n"),
    }
    h.push_str("\r\n");
    h
}

async fn handle(
    mut sock: TcpStream,
    video: &[u8],
    hits: &Mutex<HashMap<String, usize>>,
) -> std::io::Result<()> {
    let mut req = Vec::new();
    let mut buf = [0u8; 4096];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = sock.read(&mut buf).await?;
        if n == 0 || req.len() > 65536 {
            return Ok(());
        }
        req.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&req);
    let target = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let path = target.split('?').next().unwrap_or("/").to_owned();
    let count = {
        let mut h = hits.lock().unwrap();
        let c = h.entry(path.clone()).or_default();
        *c += 1;
        *c
    };
    let len = video.len() as u64;
    match path.as_str() {
        "/vtest.avi" => {
            sock.write_all(head("200 OK", "video/x-msvideo", Some(len)).as_bytes())
                .await?;
            sock.write_all(video).await?;
        }
        "/chunked.avi" => {
            sock.write_all(head("200 OK", "video/x-msvideo", None).as_bytes())
                .await?;
            for chunk in video.chunks(64 * 1024) {
                sock.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                    .await?;
                sock.write_all(chunk).await?;
                sock.write_all(b"\r\n").await?;
            }
            sock.write_all(b"0\r\n\r\n").await?;
        }
        "/redirect.avi" => {
            sock.write_all(
                b"HTTP/1.1 302 Found\r\nLocation: /vtest.avi\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            )
            .await?;
        }
        "/missing.avi" => {
            sock.write_all(head("404 Not Found", "text/plain", Some(9)).as_bytes())
                .await?;
            sock.write_all(b"not found").await?;
        }
        "/stall-headers.avi" => std::future::pending::<()>().await,
        "/stall-body.avi" => {
            sock.write_all(head("200 OK", "video/x-msvideo", Some(len)).as_bytes())
                .await?;
            sock.write_all(&video[..64 * 1024]).await?;
            sock.flush().await?;
            std::future::pending::<()>().await;
        }
        "/cut.avi" => {
            sock.write_all(head("200 OK", "video/x-msvideo", Some(len)).as_bytes())
                .await?;
            sock.write_all(&video[..video.len() / 2]).await?;
        }
        "/text.avi" => {
            let text = "This is not a video, just some text. ".repeat(200 * 1024 / 37);
            sock.write_all(head("200 OK", "video/x-msvideo", Some(text.len() as u64)).as_bytes())
                .await?;
            sock.write_all(text.as_bytes()).await?;
        }
        "/huge.avi" => {
            sock.write_all(head("200 OK", "video/x-msvideo", Some(50 << 30)).as_bytes())
                .await?;
            sock.write_all(&video[..1024]).await?;
        }
        "/flaky.avi" if count <= 2 => {
            sock.write_all(head("503 Service Unavailable", "text/plain", Some(4)).as_bytes())
                .await?;
            sock.write_all(b"busy").await?;
        }
        "/flaky.avi" => {
            sock.write_all(head("200 OK", "video/x-msvideo", Some(len)).as_bytes())
                .await?;
            sock.write_all(video).await?;
        }
        "/empty.avi" => {
            sock.write_all(head("200 OK", "video/x-msvideo", Some(0)).as_bytes())
                .await?;
        }
        "/redirect-loop.avi" => {
            sock.write_all(
                b"HTTP/1.1 302 Found\r\nLocation: /redirect-loop.avi\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            )
            .await?;
        }
        "/huge-frame.mp4" => {
            let big =
                std::fs::read(super::root().join("tests/fixtures/videos/green-6000x4000.mp4"))?;
            sock.write_all(head("200 OK", "video/mp4", Some(big.len() as u64)).as_bytes())
                .await?;
            sock.write_all(&big).await?;
        }
        "/bomb.mp4" => {
            let bomb = match std::env::var_os("PITCHSIDE_BOMB") {
                Some(p) => std::fs::read(p)?,
                None => std::fs::read(super::root().join("tests/fixtures/hostile/gzip-bomb.vgz"))?,
            };
            sock.write_all(head("200 OK", "video/mp4", Some(bomb.len() as u64)).as_bytes())
                .await?;
            sock.write_all(&bomb).await?;
        }
        "/playlist.m3u8" | "/concat.mp4" => {
            let local = super::root().join("assets/vtest.avi");
            let text = if path == "/concat.mp4" {
                format!("ffconcat version 1.0\nfile 'file:{}'\n", local.display())
            } else {
                format!(
                    "#EXTM3U\n#EXT-X-TARGETDURATION:40\n#EXTINF:40,\nfile:{}\n#EXT-X-ENDLIST\n",
                    local.display()
                )
            };
            sock.write_all(
                head(
                    "200 OK",
                    "application/vnd.apple.mpegurl",
                    Some(text.len() as u64),
                )
                .as_bytes(),
            )
            .await?;
            sock.write_all(text.as_bytes()).await?;
        }
        "/always-500.avi" => {
            sock.write_all(head("500 Internal Server Error", "text/plain", Some(4)).as_bytes())
                .await?;
            sock.write_all(b"oops").await?;
        }
        _ => {
            sock.write_all(head("404 Not Found", "text/plain", Some(0)).as_bytes())
                .await?;
        }
    }
    sock.shutdown().await
}
