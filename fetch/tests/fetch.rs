//! The blocking download of a local run against a real HTTP server on loopback: the bytes
//! arrive, an HTTP error names the URL and status, a stop flag ends a download that hangs,
//! and the temporary file goes with the download in every case.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use pitchside_engine::config::{ConfigSource, Deployment};
use pitchside_fetch::{DownloadError, Downloader};

/// Serves each connection on its own thread: `/ok` 200 with `body`, `/slow` headers then a
/// trickle that never ends, anything else 404.
fn serve(body: Vec<u8>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let body = Arc::new(body);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let body = body.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) <= 2 {
                        break;
                    }
                }
                match path.as_str() {
                    "/ok.mp4" => {
                        let head = format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        );
                        let _ = stream.write_all(head.as_bytes());
                        let _ = stream.write_all(&body);
                    }
                    "/slow.mp4" => {
                        let _ =
                            stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n");
                        for _ in 0..600 {
                            if stream.write_all(b"x").is_err() {
                                return;
                            }
                            std::thread::sleep(Duration::from_millis(100));
                        }
                    }
                    _ => {
                        let _ = stream.write_all(
                            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        );
                    }
                }
            });
        }
    });
    format!("http://{addr}")
}

/// The model and pipeline sections of a deployment (not read by a download).
const PIPELINE: &str = "\
models:
  players: { path: p.pt, task: detect }
pipeline:
  detectors: [{ role: players, plugin: yolo }]
  tracker: { plugin: bytetrack }
";

/// A deployment whose downloads go to `temp` (relative, resolved against the file's folder).
fn deployment(dir: &Path) -> Deployment {
    std::fs::create_dir_all(dir).unwrap();
    let text = format!("{PIPELINE}service:\n  temp_dir: downloads\n  download: {{ retries: 0 }}\n");
    Deployment::parse(
        &text,
        ConfigSource::File(dir.join("d.yaml")),
        dir.to_path_buf(),
    )
    .unwrap()
}

fn temp_root(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("pitchside-fetch-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn files_in(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

#[test]
fn a_local_run_downloads_to_the_deployments_temp_dir() {
    let root = temp_root("ok");
    let body: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let base = serve(body.clone());
    let d = Downloader::for_local_use(&deployment(&root)).unwrap();
    // Loopback is allowed for a local run (serve refuses it).
    let got = d
        .fetch_blocking(&format!("{base}/ok.mp4"), &AtomicBool::new(false))
        .unwrap()
        .expect("not stopped");
    assert_eq!(got.bytes, body.len() as u64);
    assert!(got.file.path().starts_with(root.join("downloads")));
    assert!(got.file.path().to_string_lossy().ends_with(".mp4"));
    let mut read = Vec::new();
    std::fs::File::open(got.file.path())
        .unwrap()
        .read_to_end(&mut read)
        .unwrap();
    assert_eq!(read, body);
    drop(got);
    assert_eq!(files_in(&root.join("downloads")), 0);
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn an_http_error_names_the_url_and_status() {
    let root = temp_root("404");
    let base = serve(Vec::new());
    let d = Downloader::for_local_use(&deployment(&root)).unwrap();
    let url = format!("{base}/missing.mp4");
    let err = d.fetch_blocking(&url, &AtomicBool::new(false)).unwrap_err();
    assert!(matches!(err, DownloadError::Status { .. }), "{err:?}");
    assert_eq!(err.to_string(), format!("GET {url}: HTTP 404 Not Found"));
    assert_eq!(files_in(&root.join("downloads")), 0);
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn a_stop_flag_ends_a_hanging_download_and_removes_its_file() {
    let root = temp_root("stop");
    let base = serve(Vec::new());
    let d = Downloader::for_local_use(&deployment(&root)).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        flag.store(true, Ordering::Relaxed);
    });
    let t = Instant::now();
    let got = d
        .fetch_blocking(&format!("{base}/slow.mp4"), &stop)
        .unwrap();
    assert!(got.is_none(), "stopped, not finished");
    // The trickle would take a minute; the flag is looked at every 50 ms.
    assert!(t.elapsed() < Duration::from_secs(30), "{:?}", t.elapsed());
    assert_eq!(files_in(&root.join("downloads")), 0);
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn download_settings_are_checked_where_the_deployment_is_parsed() {
    let text = format!("{PIPELINE}service:\n  download:\n    retries: 99\n");
    let err = Deployment::parse(
        &text,
        ConfigSource::File(PathBuf::from("d.yaml")),
        PathBuf::from("."),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "d.yaml:8:5: service.download.retries: must be at most 20",
        "the message names the key's file:line:col"
    );
}

/// Needs the internet: the default download path (public DNS through the address guard,
/// TLS with rustls) against a real host. PITCHSIDE_PUBLIC_URL overrides the URL.
#[tokio::test]
#[ignore = "needs the internet"]
async fn downloads_over_https_from_a_public_host() {
    let url = std::env::var("PITCHSIDE_PUBLIC_URL")
        .unwrap_or_else(|_| "https://pypi.org/simple/pip/".to_string());
    let root = temp_root("public");
    std::fs::create_dir_all(&root).unwrap();
    let d = Downloader::new(&Default::default(), root.clone()).unwrap();
    let got = d.fetch(&url).await.expect("downloads");
    assert!(got.bytes > 0);
    assert_eq!(std::fs::metadata(got.file.path()).unwrap().len(), got.bytes);
    drop(got);
    assert_eq!(files_in(&root), 0);
    std::fs::remove_dir_all(root).unwrap();
}
