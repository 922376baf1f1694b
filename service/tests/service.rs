//! The miner service end to end: a real HTTP server on loopback serving vtest.avi (and
//! misbehaving), the service with a stand-in analyzer (failure modes, timing) and once with
//! the real pipeline, requests signed with a real sr25519 key.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pitchside_service::{Analyzer, AuthMode, DownloadConfig, Server, ServiceConfig};
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::analyzer::StandInAnalyzer;
use support::signing::{self, Hotkey};
use support::video_server::VideoServer;
use support::{VTEST_FRAMES, vtest_path};

struct Harness<A = StandInAnalyzer> {
    base: String,
    server: Option<Server>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    temp: tempfile::TempDir,
    validator: Hotkey,
    miner: Hotkey,
    client: reqwest::Client,
    videos: VideoServer,
    analyzer: Arc<A>,
}

struct Reply {
    status: StatusCode,
    retry_after: Option<String>,
    body: Value,
}

impl Reply {
    fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or("")
    }
    fn kind(&self) -> &str {
        self.body["kind"].as_str().unwrap_or("")
    }
}

/// Short timeouts so that failure cases take a second, not minutes.
fn test_config(validator: &Hotkey, miner: &Hotkey, temp: &Path) -> ServiceConfig {
    ServiceConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        auth: AuthMode::Signed,
        miner_hotkey: Some(miner.address.clone()),
        validators: vec![validator.address.clone()],
        retry_after_s: 7,
        drain_timeout_s: 30.0,
        temp_dir: Some(temp.to_path_buf()),
        download: DownloadConfig {
            connect_timeout_s: 2.0,
            read_timeout_s: 1.0,
            total_timeout_s: 20.0,
            retries: 2,
            backoff_base_s: 0.05,
            max_bytes: 64 << 20,
            allow_private_addresses: true,
            ..Default::default()
        },
        ..Default::default()
    }
}

impl<A: Analyzer> Harness<A> {
    async fn start(analyzer: A, tweak: impl FnOnce(&mut ServiceConfig)) -> Harness<A> {
        let video =
            std::fs::read(vtest_path()).expect("assets/vtest.avi (run scripts/fetch-assets.sh)");
        let videos = VideoServer::start(video).await;
        let temp = tempfile::tempdir().unwrap();
        let validator = Hotkey::from_seed(1);
        let miner = Hotkey::from_seed(2);
        let mut cfg = test_config(&validator, &miner, temp.path());
        tweak(&mut cfg);
        let analyzer = Arc::new(analyzer);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = Server::start(cfg.clone(), cfg.listen, analyzer.clone(), async {
            let _ = rx.await;
        })
        .await
        .expect("service starts");
        let base = format!("http://{}", server.local_addr());
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        Harness {
            base,
            server: Some(server),
            stop: Some(tx),
            temp,
            validator,
            miner,
            client,
            videos,
            analyzer,
        }
    }

    fn body(&self, id: &str, url: &str) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "challenge_id": id,
            "type": "gsr",
            "video_url": url,
            "created_at": "2025-01-01T00:00:00Z",
        }))
        .unwrap()
    }

    async fn post(&self, body: Vec<u8>, headers: Vec<(&'static str, String)>) -> Reply {
        let mut req = self
            .client
            .post(format!("{}/soccer/challenge", self.base))
            .header("content-type", "application/json")
            .body(body);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let resp = req.send().await.expect("service answers");
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        let body = resp.json::<Value>().await.unwrap_or(Value::Null);
        Reply {
            status,
            retry_after,
            body,
        }
    }

    /// A challenge for `url`, signed by the allow-listed validator.
    async fn challenge(&self, id: &str, url: &str) -> Reply {
        let body = self.body(id, url);
        let headers = signing::headers(
            &self.validator,
            &self.miner.address,
            &signing::nonce(),
            &body,
        );
        self.post(body, headers).await
    }

    async fn get_json(&self, path: &str) -> (StatusCode, Value) {
        let resp = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        (resp.status(), resp.json().await.unwrap())
    }

    async fn available(&self) -> bool {
        let (status, v) = self.get_json("/availability").await;
        assert_eq!(status, StatusCode::OK);
        v["available"].as_bool().expect("{\"available\": bool}")
    }

    async fn metrics(&self) -> String {
        self.client
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// No download left behind in the service's temporary directory.
    fn assert_no_temp_files(&self) {
        let left: Vec<_> = std::fs::read_dir(self.temp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "temporary files left: {left:?}");
    }

    async fn wait_until_busy(&self) {
        let t0 = Instant::now();
        while self.available().await {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "challenge never started"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn assert_full_answer(r: &Reply, id: &str) {
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["challenge_id"], json!(id));
    let frames = r.body["frames"].as_array().expect("frames");
    assert_eq!(frames.len(), VTEST_FRAMES);
    for (i, f) in frames.iter().enumerate() {
        assert_eq!(f["frame_number"], json!(i));
        assert_eq!(f["keypoints"].as_array().unwrap().len(), 32);
    }
    assert!(r.body["processing_time"].as_f64().unwrap() > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn happy_path_downloads_analyses_and_answers_every_frame() {
    let h = Harness::start(StandInAnalyzer::new(), |_| {}).await;
    let (status, health) = h.get_json("/health").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(health["status"], "ok");
    assert_eq!(health["accepting_challenges"], true);
    assert!(h.available().await);

    let r = h
        .challenge("challenge-1", &h.videos.url("/vtest.avi"))
        .await;
    assert_full_answer(&r, "challenge-1");
    assert_eq!(h.videos.hits("/vtest.avi"), 1);
    h.assert_no_temp_files();
    assert!(h.available().await);

    let m = h.metrics().await;
    assert!(
        m.contains("pitchside_challenges_total{outcome=\"ok\"} 1\n"),
        "{m}"
    );
    let size = std::fs::metadata(vtest_path()).unwrap().len();
    assert!(
        m.contains(&format!("pitchside_download_bytes_total {size}\n")),
        "{m}"
    );
    for stage in ["download", "check", "analyze", "total"] {
        assert!(
            m.contains(&format!(
                "pitchside_stage_duration_seconds_count{{stage=\"{stage}\"}} 1\n"
            )),
            "{stage}: {m}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_and_redirected_downloads_work_and_numeric_ids_are_echoed() {
    let h = Harness::start(StandInAnalyzer::new(), |c| c.max_concurrent_challenges = 2).await;
    let body = serde_json::to_vec(&json!({
        "challenge_id": 42,
        "type": "gsr",
        "video_url": h.videos.url("/chunked.avi"),
        "created_at": "2025-01-01T00:00:00Z",
    }))
    .unwrap();
    let headers = signing::headers(&h.validator, &h.miner.address, &signing::nonce(), &body);
    let redirect = h.videos.url("/redirect.avi");
    let (a, b) = tokio::join!(
        h.post(body, headers),
        h.challenge("via-redirect", &redirect)
    );
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["challenge_id"], json!(42));
    assert_eq!(a.body["frames"].as_array().unwrap().len(), VTEST_FRAMES);
    assert_full_answer(&b, "via-redirect");
    assert_eq!(h.videos.hits("/vtest.avi"), 1);
    h.assert_no_temp_files();
}

/// A numeric id above 2^64 comes back with every digit, in the answer and in an error
/// (it came back as a float, 1.8446744073709552e22).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_above_2_to_the_64_is_echoed_exactly() {
    let h = Harness::start(StandInAnalyzer::new(), |_| {}).await;
    let id = "18446744073709551616123";
    for (path, status) in [("/vtest.avi", 200), ("/missing.avi", 502)] {
        let body = format!(
            r#"{{"challenge_id": {id}, "type": "gsr", "video_url": "{}", "created_at": "2025-01-01T00:00:00Z"}}"#,
            h.videos.url(path)
        )
        .into_bytes();
        let headers = signing::headers(&h.validator, &h.miner.address, &signing::nonce(), &body);
        let mut req = h
            .client
            .post(format!("{}/soccer/challenge", h.base))
            .body(body);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), status);
        let text = resp.text().await.unwrap();
        assert!(
            text.starts_with(&format!("{{\"challenge_id\":{id},")),
            "{}",
            &text[..text.len().min(200)]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_404_is_reported_with_url_and_status_and_not_retried() {
    let h = Harness::start(StandInAnalyzer::new(), |_| {}).await;
    let url = h.videos.url("/missing.avi");
    let r = h.challenge("c404", &url).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    assert!(r.error().contains(&url), "{}", r.error());
    assert!(r.error().contains("HTTP 404 Not Found"), "{}", r.error());
    assert_eq!(r.kind(), "download_http_status");
    assert_eq!(r.body["challenge_id"], "c404");
    assert_eq!(h.videos.hits("/missing.avi"), 1, "4xx must not be retried");
    assert_eq!(
        h.analyzer.started.load(std::sync::atomic::Ordering::SeqCst),
        0
    );
    h.assert_no_temp_files();
    let m = h.metrics().await;
    assert!(
        m.contains("pitchside_errors_total{kind=\"download_http_status\"} 1\n"),
        "{m}"
    );
    assert!(
        m.contains("pitchside_challenges_total{outcome=\"download_failed\"} 1\n"),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_server_times_out() {
    let h = Harness::start(StandInAnalyzer::new(), |c| {
        c.download.read_timeout_s = 0.5;
        c.download.retries = 1;
    })
    .await;
    let t0 = Instant::now();
    let r = h
        .challenge("stall-body", &h.videos.url("/stall-body.avi"))
        .await;
    assert_eq!(r.status, StatusCode::GATEWAY_TIMEOUT, "{}", r.body);
    assert!(r.error().contains("timed out"), "{}", r.error());
    assert!(r.error().contains("after 65536 bytes"), "{}", r.error());
    assert!(r.error().contains("(after 2 attempts)"), "{}", r.error());
    assert_eq!(h.videos.hits("/stall-body.avi"), 2);

    let r = h
        .challenge("stall-headers", &h.videos.url("/stall-headers.avi"))
        .await;
    assert_eq!(r.status, StatusCode::GATEWAY_TIMEOUT, "{}", r.body);
    assert!(r.error().contains("response headers"), "{}", r.error());
    // The wait the README documents: connect_timeout_s (2) + read_timeout_s (0.5), named.
    assert!(
        r.error().contains(
            "waiting 2.5 s for the response headers \
             (service.download.connect_timeout_s + read_timeout_s)"
        ),
        "{}",
        r.error()
    );
    assert!(t0.elapsed() < Duration::from_secs(15), "{:?}", t0.elapsed());
    h.assert_no_temp_files();

    // The total timeout bounds everything, retries included.
    let h = Harness::start(StandInAnalyzer::new(), |c| {
        c.download.read_timeout_s = 5.0;
        c.download.total_timeout_s = 0.8;
    })
    .await;
    let t0 = Instant::now();
    let r = h
        .challenge("stall-total", &h.videos.url("/stall-body.avi"))
        .await;
    assert_eq!(r.status, StatusCode::GATEWAY_TIMEOUT, "{}", r.body);
    assert!(r.error().contains("total_timeout_s"), "{}", r.error());
    assert!(t0.elapsed() < Duration::from_secs(4), "{:?}", t0.elapsed());
    h.assert_no_temp_files();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_cut_short_is_retried_then_reported() {
    let h = Harness::start(StandInAnalyzer::new(), |c| c.download.retries = 1).await;
    let url = h.videos.url("/cut.avi");
    let r = h.challenge("cut", &url).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", r.body);
    assert!(r.error().contains("cut short"), "{}", r.error());
    assert!(r.error().contains(&url), "{}", r.error());
    assert_eq!(r.kind(), "download_truncated");
    assert_eq!(h.videos.hits("/cut.avi"), 2);
    h.assert_no_temp_files();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_that_is_not_a_video_is_refused() {
    let h = Harness::start(StandInAnalyzer::new(), |_| {}).await;
    let r = h.challenge("text", &h.videos.url("/text.avi")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.error().contains("not a video"), "{}", r.error());
    assert_eq!(r.kind(), "download_not_video");
    assert_eq!(
        h.analyzer.started.load(std::sync::atomic::Ordering::SeqCst),
        0
    );
    h.assert_no_temp_files();
    let m = h.metrics().await;
    assert!(
        m.contains("pitchside_challenges_total{outcome=\"invalid_video\"} 1\n"),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_files_are_refused_by_length_and_while_streaming() {
    let h = Harness::start(StandInAnalyzer::new(), |c| c.download.max_bytes = 1 << 20).await;
    let r = h.challenge("huge", &h.videos.url("/huge.avi")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(
        r.error().contains("Content-Length 53687091200"),
        "{}",
        r.error()
    );
    assert!(r.error().contains("max_bytes"), "{}", r.error());
    // No length announced: the running count stops it.
    let r = h.challenge("chunked", &h.videos.url("/chunked.avi")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.error().contains("so far"), "{}", r.error());
    assert_eq!(r.kind(), "download_too_large");
    assert_eq!(
        h.videos.hits("/huge.avi") + h.videos.hits("/chunked.avi"),
        2
    );
    h.assert_no_temp_files();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_retried_with_backoff() {
    let h = Harness::start(StandInAnalyzer::new(), |c| c.download.retries = 2).await;
    let r = h.challenge("flaky", &h.videos.url("/flaky.avi")).await;
    assert_full_answer(&r, "flaky");
    assert_eq!(h.videos.hits("/flaky.avi"), 3);

    let url = h.videos.url("/always-500.avi");
    let r = h.challenge("500", &url).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    assert!(
        r.error()
            .contains("HTTP 500 Internal Server Error (after 3 attempts)"),
        "{}",
        r.error()
    );
    assert!(r.error().contains(&url));
    assert_eq!(h.videos.hits("/always-500.avi"), 3);
    h.assert_no_temp_files();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_addresses_are_refused_unless_allowed() {
    let h = Harness::start(StandInAnalyzer::new(), |c| {
        c.download.allow_private_addresses = false;
    })
    .await;
    let port = h.videos.addr.port();
    for (url, what) in [
        (format!("http://127.0.0.1:{port}/vtest.avi"), "loopback"),
        (format!("http://localhost:{port}/vtest.avi"), "loopback"),
        (
            format!("http://[::ffff:127.0.0.1]:{port}/vtest.avi"),
            "loopback",
        ),
        (
            "http://169.254.169.254/latest/meta-data/".to_string(),
            "link-local",
        ),
        ("http://10.0.0.1/x.mp4".to_string(), "private"),
        ("http://[fe80::1]/x.mp4".to_string(), "link-local"),
        ("http://0.0.0.0/x.mp4".to_string(), "unspecified"),
    ] {
        let r = h.challenge("private", &url).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{url}: {}", r.body);
        assert!(r.error().contains(what), "{url}: {}", r.error());
        assert!(
            r.error().contains("allow_private_addresses"),
            "{}",
            r.error()
        );
        assert_eq!(r.kind(), "download_refused_address");
    }
    let r = h.challenge("scheme", "file:///etc/passwd").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.error().contains("scheme"), "{}", r.error());
    assert_eq!(h.videos.hits("/vtest.avi"), 0);
    h.assert_no_temp_files();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_nonce_is_refused() {
    let h = Harness::start(StandInAnalyzer::new(), |_| {}).await;
    let body = h.body("replay", &h.videos.url("/missing.avi"));
    let headers = signing::headers(&h.validator, &h.miner.address, &signing::nonce(), &body);
    let first = h.post(body.clone(), headers.clone()).await;
    // Authenticated (then the download 404s, which is beside the point).
    assert_eq!(first.status, StatusCode::BAD_GATEWAY, "{}", first.body);
    let again = h.post(body, headers).await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED, "{}", again.body);
    assert_eq!(again.kind(), "auth_replayed_nonce");
    assert_eq!(h.videos.hits("/missing.avi"), 1);

    // Nonces outside ±120 s, or not of the form {unix_ns}_{random}.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i128;
    for nonce in [
        signing::nonce_at(now - 150_000_000_000),
        signing::nonce_at(now + 150_000_000_000),
        "not-a-nonce".to_string(),
    ] {
        let body = h.body("old", &h.videos.url("/missing.avi"));
        let headers = signing::headers(&h.validator, &h.miner.address, &nonce, &body);
        let r = h.post(body, headers).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{nonce}: {}", r.body);
        assert_eq!(r.kind(), "auth_bad_nonce");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_or_missing_signatures_are_401() {
    let h = Harness::start(StandInAnalyzer::new(), |_| {}).await;
    let url = h.videos.url("/vtest.avi");
    let body = h.body("sig", &url);

    // Signed by someone else, in the allow-listed validator's name.
    let impostor = Hotkey::from_seed(9);
    let mut headers = signing::headers(&impostor, &h.miner.address, &signing::nonce(), &body);
    headers[0].1 = h.validator.address.clone();
    let r = h.post(body.clone(), headers).await;
    assert_eq!(
        (r.status, r.kind()),
        (StatusCode::UNAUTHORIZED, "auth_bad_signature")
    );

    // Body changed after signing.
    let headers = signing::headers(&h.validator, &h.miner.address, &signing::nonce(), &body);
    let r = h
        .post(h.body("sig", &h.videos.url("/other.avi")), headers)
        .await;
    assert_eq!(
        (r.status, r.kind()),
        (StatusCode::UNAUTHORIZED, "auth_bad_signature")
    );

    // Garbage signature.
    let mut headers = signing::headers(&h.validator, &h.miner.address, &signing::nonce(), &body);
    headers[3].1 = "0xnothex".into();
    let r = h.post(body.clone(), headers).await;
    assert_eq!(
        (r.status, r.kind()),
        (StatusCode::UNAUTHORIZED, "auth_bad_signature")
    );

    // Each header missing in turn.
    for i in 0..4 {
        let mut headers =
            signing::headers(&h.validator, &h.miner.address, &signing::nonce(), &body);
        headers.remove(i);
        let r = h.post(body.clone(), headers).await;
        assert_eq!(
            (r.status, r.kind()),
            (StatusCode::UNAUTHORIZED, "auth_missing_header")
        );
    }

    // Signed for another miner.
    let other = Hotkey::from_seed(3);
    let headers = signing::headers(&h.validator, &other.address, &signing::nonce(), &body);
    let r = h.post(body.clone(), headers).await;
    assert_eq!(
        (r.status, r.kind()),
        (StatusCode::UNAUTHORIZED, "auth_wrong_miner")
    );

    assert_eq!(h.videos.hits("/vtest.avi"), 0);
    assert_eq!(h.videos.hits("/other.avi"), 0);
    let m = h.metrics().await;
    assert!(
        m.contains("pitchside_challenges_total{outcome=\"unauthorized\"} 8\n"),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_validators_are_403_and_an_empty_allow_list_refuses_all() {
    let h = Harness::start(StandInAnalyzer::new(), |_| {}).await;
    let stranger = Hotkey::from_seed(4);
    let body = h.body("who", &h.videos.url("/vtest.avi"));
    let headers = signing::headers(&stranger, &h.miner.address, &signing::nonce(), &body);
    let r = h.post(body.clone(), headers).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert_eq!(r.kind(), "auth_unknown_validator");
    assert!(r.error().contains(&stranger.address));

    let h = Harness::start(StandInAnalyzer::new(), |c| c.validators.clear()).await;
    let (_, health) = h.get_json("/health").await;
    assert_eq!(health["accepting_challenges"], false);
    let headers = signing::headers(&h.validator, &h.miner.address, &signing::nonce(), &body);
    let r = h.post(body, headers).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert_eq!(r.kind(), "auth_not_configured");
    assert_eq!(h.videos.hits("/vtest.avi"), 0);
}

/// Sends `request` on a new connection and reads until the server closes it; fails if it
/// has not closed within `limit` (a client must not be able to hold a connection).
async fn raw_exchange(base: &str, request: &[u8], limit: Duration) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
    sock.write_all(request).await.unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(limit, sock.read_to_end(&mut got))
        .await
        .unwrap_or_else(|_| {
            panic!(
                "connection still open after {limit:?}; got {:?}",
                String::from_utf8_lossy(&got)
            )
        })
        .unwrap();
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_declared_and_trickled_bodies_are_refused_and_the_connection_closed() {
    let h = Harness::start(StandInAnalyzer::new(), |c| c.request_body_timeout_s = 0.5).await;
    let t0 = Instant::now();
    let answer = raw_exchange(
        &h.base,
        b"POST /soccer/challenge HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Content-Length: 10000000000\r\n\r\n{",
        Duration::from_secs(3),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("declares 10000000000 bytes"), "{answer}");
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());

    // Headers in, then 10 of the 200 bytes announced, then nothing.
    let answer = raw_exchange(
        &h.base,
        b"POST /soccer/challenge HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Content-Length: 200\r\n\r\n{\"challenge",
        Duration::from_secs(3),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_body_timeout_s"), "{answer}");
    assert!(
        h.metrics()
            .await
            .contains("pitchside_challenges_total{outcome=\"bad_request\"} 2\n")
    );
    // The service still answers a genuine challenge.
    let r = h.challenge("after", &h.videos.url("/vtest.avi")).await;
    assert_full_answer(&r, "after");
}

/// Opens a connection, sends `head`, then one byte of `trickle` every `every`; returns how
/// long the server took to close the connection (`None`: still open after `limit`).
async fn trickle_until_closed(
    base: &str,
    head: &[u8],
    every: Duration,
    limit: Duration,
) -> Option<Duration> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let t0 = Instant::now();
    let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
    sock.write_all(head).await.unwrap();
    let mut buf = [0u8; 1024];
    while t0.elapsed() < limit {
        match tokio::time::timeout(every, sock.read(&mut buf)).await {
            // Closed (0 bytes or a reset), or answered: hyper sends nothing on a header
            // timeout, and an answer here would be a failure of the test's own request.
            Ok(Ok(0)) | Ok(Err(_)) => return Some(t0.elapsed()),
            Ok(Ok(n)) => panic!(
                "unexpected answer: {:?}",
                String::from_utf8_lossy(&buf[..n])
            ),
            Err(_) => {
                if sock.write_all(b"a").await.is_err() {
                    return Some(t0.elapsed());
                }
            }
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickled_or_idle_headers_are_cut_off_while_a_real_challenge_gets_its_answer() {
    let h = Harness::start(StandInAnalyzer::new(), |c| c.header_read_timeout_s = 1.0).await;
    let base = h.base.clone();
    // A slow-loris client: the request line, then one header byte every 100 ms, forever.
    let slow = tokio::spawn(async move {
        trickle_until_closed(
            &base,
            b"POST /soccer/challenge HTTP/1.1\r\nHost: x\r\nX-Slow: ",
            Duration::from_millis(100),
            Duration::from_secs(10),
        )
        .await
    });
    // One that connects and sends nothing.
    let base = h.base.clone();
    let idle = tokio::spawn(async move {
        trickle_until_closed(&base, b"", Duration::from_secs(20), Duration::from_secs(10)).await
    });
    let r = h.challenge("loris", &h.videos.url("/vtest.avi")).await;
    assert_full_answer(&r, "loris");
    for (what, task) in [("trickled", slow), ("idle", idle)] {
        let closed = task.await.unwrap();
        let closed = closed.unwrap_or_else(|| panic!("{what} headers: still open after 10 s"));
        // The bound is 1 s; the rest is scheduling slack on a loaded machine.
        assert!(
            closed < Duration::from_secs(4),
            "{what} headers: closed after {closed:?}"
        );
    }
    // A kept-alive connection that goes quiet after an answer is closed too.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = h.base.trim_start_matches("http://").to_string();
    let mut sock = tokio::net::TcpStream::connect(&addr).await.unwrap();
    sock.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), sock.read_to_end(&mut got))
        .await
        .expect("a kept-alive idle connection is closed within the header bound")
        .unwrap();
    assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"));
}

/// At `max_connections` with every connection working (here two requests whose bodies are
/// still on their way), a new connection is closed at once; with idle ones among them, the
/// oldest idle one is closed instead and the new one served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_max_connections_are_closed_at_once_when_all_are_working() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let h = Harness::start(StandInAnalyzer::new(), |c| {
        c.max_connections = 2;
        c.header_read_timeout_s = 2.0;
        c.request_body_timeout_s = 2.0;
    })
    .await;
    let addr = h.base.trim_start_matches("http://").to_string();
    let mut working = Vec::new();
    for _ in 0..2 {
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        // Headers whole, body never: the handler is running (reading the body).
        s.write_all(b"POST /soccer/challenge HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
            .await
            .unwrap();
        working.push(s);
    }
    // Give the accept loop time to take both and their headers to be read.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut third = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(1), third.read(&mut buf))
        .await
        .expect("the connection over the cap is closed at once");
    assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
    // Once the working ones time out (408), connections are served again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    drop(working);
    // Two idle connections hold the cap now; a challenge still gets in, in place of one.
    let _idle: Vec<_> = [
        tokio::net::TcpStream::connect(&addr).await.unwrap(),
        tokio::net::TcpStream::connect(&addr).await.unwrap(),
    ]
    .into();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r = h.challenge("after-cap", &h.videos.url("/vtest.avi")).await;
    assert_full_answer(&r, "after-cap");
}

/// One client (127.0.0.2, unsigned) holding 300 idle sockets and reopening each one the
/// service drops, 100 a second, cannot lock the validator (127.0.0.1) out: its share is
/// `max_connections_per_peer`, and at a cap its idle sockets are closed first. The signed
/// challenge gets its 200 with every frame and `/health` answers. Before the per-peer cap
/// and idle-first closing, the flood filled `max_connections` and every challenge failed
/// with a read error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_socket_flood_from_one_address_does_not_lock_out_a_validator() {
    use support::hostile::{self, Flood, Genuine};
    let h = Harness::start(StandInAnalyzer::new(), |_| {}).await;
    let target: SocketAddr = h.base.trim_start_matches("http://").parse().unwrap();
    let flood = Flood::start(target, "127.0.0.2".parse().unwrap(), 300, 100.0);
    // Let it fill its share and start reopening.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(hostile::get(target, "/health").await, 200);
    let genuine = Genuine {
        validator: Hotkey::from_seed(1),
        miner_address: h.miner.address.clone(),
        video_url: h.videos.url("/vtest.avi"),
        expected_frames: VTEST_FRAMES,
    };
    let (status, frames, body) = hostile::genuine_challenge(target, &genuine, "under-flood")
        .await
        .expect("the validator's connection is served");
    // The flood was real: the service closed its sockets and it reopened them. A dropped
    // socket waits 3 s (300 sockets / 100 a second) before reopening, and the stand-in
    // analyzer can answer sooner than that: wait for the reopening rather than assume it.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while flood.opened.load(std::sync::atomic::Ordering::Relaxed) <= 300
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let opened = flood.stop().await;
    assert_eq!(
        status,
        200,
        "{}",
        body.chars().take(300).collect::<String>()
    );
    assert_eq!(frames, VTEST_FRAMES);
    assert!(
        opened > 300,
        "the flood reopened dropped sockets: {opened} opened"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zero_byte_file_and_a_redirect_loop_are_refused() {
    let h = Harness::start(StandInAnalyzer::new(), |_| {}).await;
    let r = h.challenge("empty", &h.videos.url("/empty.avi")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(r.kind(), "download_not_video");
    assert!(r.error().contains("0 bytes"), "{}", r.error());
    let url = h.videos.url("/redirect-loop.avi");
    let r = h.challenge("loop", &url).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", r.body);
    assert_eq!(r.kind(), "download_redirect");
    assert!(r.error().contains("redirects"), "{}", r.error());
    // The default limit (10) and no retry of a redirect error.
    assert_eq!(h.videos.hits("/redirect-loop.avi"), 11);
    assert_eq!(
        h.analyzer.started.load(std::sync::atomic::Ordering::SeqCst),
        0
    );
    h.assert_no_temp_files();
}

/// A signed challenge whose URL serves a gzip "game music" bomb, an HLS playlist or an
/// ffconcat script of the miner's own files gets 422 naming the format; nothing is
/// inflated or opened behind it (the playlist used to be analysed: 200).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exotic_formats_behind_a_signed_url_are_422() {
    let h = Harness::start(StandInAnalyzer::new(), |_| {}).await;
    for (path, format) in [
        ("/bomb.mp4", "(libgme)"),
        ("/playlist.m3u8", "(hls)"),
        ("/concat.mp4", "(concat)"),
    ] {
        let r = h.challenge("exotic", &h.videos.url(path)).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{path}: {}",
            r.body
        );
        assert_eq!(r.kind(), "download_not_video", "{path}");
        assert!(
            r.error().contains(format) && r.error().contains("Pitchside reads MP4/MOV"),
            "{path}: {}",
            r.error()
        );
    }
    assert_eq!(
        h.analyzer.started.load(std::sync::atomic::Ordering::SeqCst),
        0
    );
    h.assert_no_temp_files();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn videos_over_the_profile_bounds_are_422_before_the_analysis() {
    // 6000x4000 is 24 Mpixels a frame, above the default max_frame_pixels (2 × 4K UHD).
    let h = Harness::start(StandInAnalyzer::new(), |_| {}).await;
    let r = h.challenge("huge", &h.videos.url("/huge-frame.mp4")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(r.kind(), "video_too_large");
    assert!(
        r.error().contains("6000x4000") && r.error().contains("max_frame_pixels"),
        "{}",
        r.error()
    );
    assert!(r.error().contains("/huge-frame.mp4"), "{}", r.error());
    assert_eq!(
        h.analyzer.started.load(std::sync::atomic::Ordering::SeqCst),
        0
    );
    h.assert_no_temp_files();

    // vtest.avi's 795 frames, against a bound of 500.
    let h = Harness::start(StandInAnalyzer::with_max_video_frames(500), |_| {}).await;
    let r = h.challenge("long", &h.videos.url("/vtest.avi")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(r.kind(), "video_too_large");
    assert!(
        r.error().contains("795 frames") && r.error().contains("max_video_frames, 500"),
        "{}",
        r.error()
    );
    assert_eq!(
        h.analyzer.started.load(std::sync::atomic::Ordering::SeqCst),
        0
    );
    assert!(
        h.metrics()
            .await
            .contains("pitchside_challenges_total{outcome=\"invalid_video\"} 1\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn availability_is_false_when_every_challenge_would_be_refused() {
    let h = Harness::start(StandInAnalyzer::new(), |_| {}).await;
    assert!(h.available().await);
    // No allow-list, or no miner hotkey: every challenge gets 403, so a validator must not
    // be told to send one.
    type Tweak = fn(&mut ServiceConfig);
    let tweaks: [Tweak; 2] = [|c| c.validators.clear(), |c| c.miner_hotkey = None];
    for tweak in tweaks {
        let h = Harness::start(StandInAnalyzer::new(), tweak).await;
        assert!(!h.available().await);
        assert!(h.metrics().await.contains("pitchside_available 0\n"));
        let (_, health) = h.get_json("/health").await;
        assert_eq!(health["accepting_challenges"], false);
    }
    // auth: none needs neither.
    let h = Harness::start(StandInAnalyzer::new(), |c| {
        c.auth = AuthMode::None;
        c.validators.clear();
        c.miner_hotkey = None;
    })
    .await;
    assert!(h.available().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_none_accepts_unsigned_requests_and_bodies_are_size_limited() {
    let h = Harness::start(StandInAnalyzer::new(), |c| {
        c.auth = AuthMode::None;
        c.validators.clear();
        c.miner_hotkey = None;
        c.max_request_bytes = 4096;
    })
    .await;
    let r = h
        .post(h.body("open", &h.videos.url("/vtest.avi")), vec![])
        .await;
    assert_full_answer(&r, "open");

    let big = h.body(&"x".repeat(5000), &h.videos.url("/vtest.avi"));
    let r = h.post(big, vec![]).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.body);

    let r = h.post(b"{\"challenge_id\": \"1\"}".to_vec(), vec![]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.error().contains("video_url"), "{}", r.error());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_challenge_while_busy_gets_503_with_retry_after() {
    let h = Harness::start(StandInAnalyzer::slow(Duration::from_millis(3)), |_| {}).await;
    let h = Arc::new(h);
    let first = {
        let h = h.clone();
        tokio::spawn(async move { h.challenge("first", &h.videos.url("/vtest.avi")).await })
    };
    h.wait_until_busy().await;
    let r = h.challenge("second", &h.videos.url("/vtest.avi")).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    assert_eq!(r.retry_after.as_deref(), Some("7"));
    assert!(!h.available().await);
    let first = first.await.unwrap();
    assert_full_answer(&first, "first");
    assert!(h.available().await);
    assert_eq!(
        h.videos.hits("/vtest.avi"),
        1,
        "the refused challenge downloaded nothing"
    );
    let m = h.metrics().await;
    assert!(
        m.contains("pitchside_challenges_total{outcome=\"busy\"} 1\n"),
        "{m}"
    );
    h.assert_no_temp_files();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_the_running_challenge_refuses_new_ones_and_exits() {
    let mut h = Harness::start(StandInAnalyzer::slow(Duration::from_millis(3)), |_| {}).await;
    let url = h.videos.url("/vtest.avi");
    let base = h.base.clone();
    let running = {
        let body = h.body("during-shutdown", &url);
        let headers = signing::headers(&h.validator, &h.miner.address, &signing::nonce(), &body);
        let client = h.client.clone();
        let base = base.clone();
        tokio::spawn(async move {
            let mut req = client.post(format!("{base}/soccer/challenge")).body(body);
            for (k, v) in headers {
                req = req.header(k, v);
            }
            let resp = req.send().await.unwrap();
            (resp.status(), resp.json::<Value>().await.unwrap())
        })
    };
    h.wait_until_busy().await;
    h.stop.take().unwrap().send(()).unwrap();
    // Wait for the drain to begin, then try a new challenge.
    let t0 = Instant::now();
    loop {
        let (status, health) = h.get_json("/health").await;
        if status == StatusCode::SERVICE_UNAVAILABLE {
            assert_eq!(health["status"], "draining");
            // It said true here while draining.
            assert_eq!(health["accepting_challenges"], false);
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let r = h.challenge("too-late", &url).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    assert!(r.retry_after.is_some());
    assert!(!h.available().await);

    let (status, body) = running.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["frames"].as_array().unwrap().len(), VTEST_FRAMES);
    assert_eq!(
        h.analyzer
            .cancelled
            .load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the running challenge was not cut short"
    );
    let server = h.server.take().unwrap();
    tokio::time::timeout(Duration::from_secs(10), server.wait())
        .await
        .expect("server exits after the drain")
        .expect("clean exit");
    h.assert_no_temp_files();
    assert!(
        h.client.get(format!("{base}/health")).send().await.is_err(),
        "nothing listens any more"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_drain_timeout_running_challenges_are_asked_to_stop() {
    let mut h = Harness::start(StandInAnalyzer::slow(Duration::from_millis(20)), |c| {
        c.drain_timeout_s = 0.3;
    })
    .await;
    let h_url = h.videos.url("/vtest.avi");
    let body = h.body("cut-off", &h_url);
    let headers = signing::headers(&h.validator, &h.miner.address, &signing::nonce(), &body);
    let (client, base) = (h.client.clone(), h.base.clone());
    let running = tokio::spawn(async move {
        let mut req = client.post(format!("{base}/soccer/challenge")).body(body);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let resp = req.send().await.unwrap();
        (resp.status(), resp.json::<Value>().await.unwrap())
    });
    h.wait_until_busy().await;
    let t0 = Instant::now();
    h.stop.take().unwrap().send(()).unwrap();
    // 795 frames at 20 ms would take 16 s; the cancel flag ends it early with partial results.
    let (status, body) = running.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    let frames = body["frames"].as_array().unwrap().len();
    assert!(frames < VTEST_FRAMES, "{frames} frames");
    assert_eq!(
        h.analyzer
            .cancelled
            .load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    tokio::time::timeout(Duration::from_secs(10), h.server.take().unwrap().wait())
        .await
        .expect("server exits")
        .expect("clean exit");
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    h.assert_no_temp_files();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_validator_hanging_up_stops_the_analysis_and_frees_the_slot() {
    let h = Harness::start(StandInAnalyzer::slow(Duration::from_millis(20)), |_| {}).await;
    let body = h.body("hang-up", &h.videos.url("/vtest.avi"));
    let headers = signing::headers(&h.validator, &h.miner.address, &signing::nonce(), &body);
    let mut req = h
        .client
        .post(format!("{}/soccer/challenge", h.base))
        .timeout(Duration::from_millis(1500))
        .body(body);
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let t0 = Instant::now();
    assert!(req.send().await.unwrap_err().is_timeout());
    // The full analysis would take 16 s; the slot must come back long before.
    while !h.available().await {
        assert!(t0.elapsed() < Duration::from_secs(8), "slot not freed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        h.analyzer
            .cancelled
            .load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    h.assert_no_temp_files();
    let m = h.metrics().await;
    assert!(
        m.contains("pitchside_challenges_total{outcome=\"abandoned\"} 1\n"),
        "{m}"
    );
}

/// The service with the real pipeline (not the stand-in): the test deployment's real
/// weights at 320 px on the real clip, downloaded over loopback, signed like a validator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_pipeline_answers_a_signed_challenge() {
    use pitchside_engine::config::{ConfigSource, Deployment, EnvOverrides};
    use pitchside_engine::device::Backend;
    use pitchside_engine::pipeline::Pipeline;
    use pitchside_service::PipelineAnalyzer;

    let path = support::root().join("tests/fixtures/deployments/vtest-320.yaml");
    let d = Deployment::parse(
        &std::fs::read_to_string(&path).unwrap(),
        ConfigSource::File(path.clone()),
        path.parent().unwrap().to_path_buf(),
    )
    .unwrap();
    d.check_files().unwrap();
    let env = EnvOverrides::read(&[("FRAME_STRIDE", "2")][..]).unwrap();
    let e = d.effective(Backend::Cpu, &env).unwrap();
    let mut pipeline = Pipeline::load(d, e, Backend::Cpu).unwrap();
    pipeline.warm_up(768, 576).unwrap();
    let h = Harness::start(PipelineAnalyzer::new(pipeline), |_| {}).await;

    let r = h.challenge("real-1", &h.videos.url("/vtest.avi")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["challenge_id"], "real-1");
    let frames = r.body["frames"].as_array().unwrap();
    assert_eq!(
        frames.len(),
        VTEST_FRAMES,
        "every source frame, strided or not"
    );
    let mut ids = std::collections::BTreeSet::new();
    for (i, f) in frames.iter().enumerate() {
        assert_eq!(f["frame_number"], json!(i));
        // The pose model of the test deployment has 17 keypoints; the response keeps them.
        assert_eq!(f["keypoints"].as_array().unwrap().len(), 17);
        for o in f["objects"].as_array().unwrap() {
            assert_eq!(o["class_id"], 2, "people are players here");
            ids.insert(o["id"].as_u64().unwrap());
        }
    }
    // People walk through the whole clip: many frames with tracked players, a few dozen ids.
    let with_people = frames
        .iter()
        .filter(|f| !f["objects"].as_array().unwrap().is_empty())
        .count();
    assert!(
        with_people > VTEST_FRAMES / 2,
        "{with_people} frames with people"
    );
    assert!((3..200).contains(&ids.len()), "{} track ids", ids.len());
    h.assert_no_temp_files();
}

/// Challenge bodies a hostile or broken client might send, against a real service (auth
/// off, private addresses refused, so nothing is downloaded): every answer is a JSON 4xx
/// with an error kind, never a 5xx, and the service keeps answering. Cases: 64 in CI,
/// `PROPTEST_CASES=10000` by hand.
#[test]
fn hostile_challenge_bodies_get_a_4xx_with_a_kind() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    let json_value = || {
        prop_oneof![
            Just(json!(null)),
            any::<bool>().prop_map(|b| json!(b)),
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>().prop_map(|f| json!(f)),
            ".{0,40}".prop_map(|s| json!(s)),
            Just(json!([1, "x", {}])),
            Just(json!({"nested": {"deeper": [null]}})),
        ]
    };
    let url = prop_oneof![
        Just("file:///etc/passwd".to_string()),
        Just("http://127.0.0.1:9/x.mp4".to_string()),
        Just("http://[::1]/x.mp4".to_string()),
        Just("http://169.254.169.254/latest/meta-data".to_string()),
        Just("http://10.0.0.1/x.mp4".to_string()),
        Just("http://user:pw@127.0.0.1/x".to_string()),
        Just("ftp://127.0.0.1/x".to_string()),
        Just("gopher://127.0.0.1:70/".to_string()),
        Just("".to_string()),
        "[a-z/:.%?#]{0,40}",
    ];
    let object = (
        json_value(),
        json_value(),
        prop_oneof![url.prop_map(|u| json!(u)), json_value()],
        json_value(),
        any::<u8>(),
    )
        .prop_map(|(id, kind, video_url, created_at, drop)| {
            let mut o = serde_json::Map::new();
            for (i, (k, v)) in [
                ("challenge_id", id),
                ("type", kind),
                ("video_url", video_url),
                ("created_at", created_at),
            ]
            .into_iter()
            .enumerate()
            {
                // Each field present or not.
                if drop & (1 << i) == 0 {
                    o.insert(k.into(), v);
                }
            }
            serde_json::to_vec(&Value::Object(o)).unwrap()
        });
    let bodies = prop_oneof![
        3 => object,
        1 => prop::collection::vec(any::<u8>(), 0..300),
        1 => "[\\[\\]{}\",:0-9a-z ]{0,200}".prop_map(String::into_bytes),
    ];
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let h = rt.block_on(Harness::start(StandInAnalyzer::new(), |c| {
        c.auth = AuthMode::None;
        c.download.allow_private_addresses = false;
    }));
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&bodies, |body| {
            let r = rt.block_on(h.post(body.clone(), vec![]));
            prop_assert!(
                r.status.is_client_error(),
                "{} for {:?}: {}",
                r.status,
                String::from_utf8_lossy(&body),
                r.body
            );
            prop_assert!(!r.kind().is_empty(), "{}", r.body);
            Ok(())
        })
        .unwrap();
    assert!(rt.block_on(h.get_json("/health")).0.is_success());
    assert_eq!(
        h.analyzer.started.load(std::sync::atomic::Ordering::SeqCst),
        0
    );
    h.assert_no_temp_files();
}

/// The scripted hostile client (tests/support/hostile.rs, at a small scale; the full one is
/// examples/hostile_client.rs against `pitchside serve`): every abuse refused with a 4xx,
/// no slow connection held past the timeouts, and the genuine challenge in the middle
/// answered in full.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_client_is_refused_while_a_genuine_challenge_gets_its_200() {
    use support::hostile::{self, Genuine, Scale};
    let h = Harness::start(StandInAnalyzer::new(), |c| {
        c.header_read_timeout_s = 1.0;
        c.request_body_timeout_s = 1.0;
        // Every abuse comes from 127.0.0.1 at once, as the genuine challenge does: here the
        // point is each request's refusal, not the per-peer share (tested on its own).
        c.max_connections_per_peer = c.max_connections;
    })
    .await;
    let genuine = Genuine {
        validator: Hotkey::from_seed(1),
        miner_address: h.miner.address.clone(),
        video_url: h.videos.url("/vtest.avi"),
        expected_frames: VTEST_FRAMES,
    };
    let scale = Scale {
        slow_headers: 10,
        slow_bodies: 5,
        oversize: 10,
        bad_signatures: 100,
        replays: 10,
        hold_limit: Duration::from_secs(6),
    };
    let target = h.base.trim_start_matches("http://").parse().unwrap();
    let report = hostile::run(target, &genuine, scale).await;
    assert!(report.failures.is_empty(), "{report:#?}");
    assert_eq!(report.statuses.get(&413), Some(&10), "{report:#?}");
    // Bad signatures, the wrong miner and the 10 replays: 401; the stranger: 403.
    assert_eq!(report.statuses.get(&401), Some(&85), "{report:#?}");
    assert_eq!(report.statuses.get(&403), Some(&25), "{report:#?}");
    assert_eq!(
        h.analyzer.started.load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    h.assert_no_temp_files();
}

/// Two CPU pipelines (one core each) answer two challenges at once: their runs overlap in
/// time (the pool's recorded start and end of each run), on different pipelines, and
/// `/metrics` counts one run on each. With one pipeline the second run would start after
/// the first ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_cpu_pipelines_run_two_challenges_at_once() {
    use pitchside_engine::config::{ConfigSource, Deployment, EnvOverrides};
    use pitchside_engine::device::{Backend, DeviceId, SystemProbe};
    use pitchside_engine::pool::{PipelinePool, plan_slots};
    use pitchside_service::PipelineAnalyzer;

    let path = support::root().join("tests/fixtures/deployments/vtest-320.yaml");
    let d = Deployment::parse(
        &std::fs::read_to_string(&path).unwrap(),
        ConfigSource::File(path.clone()),
        path.parent().unwrap().to_path_buf(),
    )
    .unwrap();
    d.check_files().unwrap();
    // Small and strided: the point is the overlap, not the detections.
    let env = EnvOverrides::read(&[("FRAME_STRIDE", "8"), ("IMG_SIZE", "160")][..]).unwrap();
    let mut e = d.effective(Backend::Cpu, &env).unwrap();
    e.profile.pipelines_per_device = 2;
    e.profile.cpu_threads = 2;
    let slots = plan_slots(
        None,
        DeviceId::new(Backend::Cpu, 0),
        &e.profile,
        &SystemProbe,
        2,
    )
    .unwrap();
    assert_eq!(
        slots.iter().map(|s| s.threads).collect::<Vec<_>>(),
        [Some(1), Some(1)]
    );
    let pool = Arc::new(PipelinePool::load(&d, &e, slots).unwrap());
    pool.warm_up(768, 576).unwrap();
    let h = Harness::start(PipelineAnalyzer::with_pool(pool.clone()), |c| {
        c.max_concurrent_challenges = 2
    })
    .await;
    assert!(h.available().await);

    let url = h.videos.url("/vtest.avi");
    let (a, b) = tokio::join!(h.challenge("pool-a", &url), h.challenge("pool-b", &url));
    for (r, id) in [(&a, "pool-a"), (&b, "pool-b")] {
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["challenge_id"], id);
        assert_eq!(r.body["frames"].as_array().unwrap().len(), VTEST_FRAMES);
    }
    let runs = pool.recent_runs();
    assert_eq!(runs.len(), 2, "{runs:?}");
    let (x, y) = (runs[0], runs[1]);
    assert_ne!(x.slot, y.slot, "{runs:?}");
    assert!(
        x.start < y.end && y.start < x.end,
        "the runs did not overlap: {runs:?}"
    );
    let m = h.metrics().await;
    for line in [
        "pitchside_pipelines 2\n",
        "pitchside_pipelines_free 2\n",
        "pitchside_pipeline_runs_total{device=\"cpu#0\"} 1\n",
        "pitchside_pipeline_runs_total{device=\"cpu#1\"} 1\n",
        "pitchside_pipeline_run_duration_seconds_count{device=\"cpu#1\"} 1\n",
    ] {
        assert!(m.contains(line), "{line}in\n{m}");
    }
    assert!(h.available().await);
    h.assert_no_temp_files();
}

/// A challenge that finds every pipeline busy waits for one (counted in the queue gauge),
/// and `/availability` is false while none is free even though a challenge slot is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn availability_is_false_while_every_pipeline_is_busy() {
    use pitchside_engine::config::{ConfigSource, Deployment, EnvOverrides};
    use pitchside_engine::device::Backend;
    use pitchside_engine::pipeline::Pipeline;
    use pitchside_service::PipelineAnalyzer;

    let path = support::root().join("tests/fixtures/deployments/vtest-320.yaml");
    let d = Deployment::parse(
        &std::fs::read_to_string(&path).unwrap(),
        ConfigSource::File(path.clone()),
        path.parent().unwrap().to_path_buf(),
    )
    .unwrap();
    let env = EnvOverrides::read(&[("FRAME_STRIDE", "2"), ("IMG_SIZE", "160")][..]).unwrap();
    let e = d.effective(Backend::Cpu, &env).unwrap();
    let pipeline = Pipeline::load(d, e, Backend::Cpu).unwrap();
    let analyzer = PipelineAnalyzer::new(pipeline);
    let pool = analyzer.pool().clone();
    let h = Harness::start(analyzer, |c| c.max_concurrent_challenges = 2).await;
    let url = h.videos.url("/vtest.avi");
    let first = h.challenge("busy-1", &url);
    let probe = async {
        // Until the first challenge holds the pipeline.
        let deadline = Instant::now() + Duration::from_secs(30);
        while pool.free() > 0 {
            assert!(Instant::now() < deadline, "the pipeline was never taken");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let available = h.available().await;
        let m = h.metrics().await;
        (available, m)
    };
    let (r, (available, m)) = tokio::join!(first, probe);
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(!available, "available with the only pipeline busy");
    assert!(
        m.contains("pitchside_pipeline_busy{device=\"cpu\"} 1\n"),
        "{m}"
    );
    assert!(m.contains("pitchside_pipelines_free 0\n"), "{m}");
    assert!(h.available().await);
}
