//! Fetching a challenge video: streamed to a temporary file, never held in memory.
//!
//! Per attempt: connect timeout, connect + read timeout for the headers (from the request),
//! the read timeout for every piece of the body, the size cap (Content-Length and a running count). Attempts are retried with
//! exponential back-off after connection errors, timeouts, cut bodies and 5xx answers, never
//! after a 4xx. One total timeout covers all attempts. Internal addresses are refused (see
//! [`crate::netguard`]). Google Drive share links go through [`crate::gdrive`].
//! [`Downloader::fetch_blocking`] is the same download for callers without a runtime.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::header::{CONTENT_TYPE, COOKIE, SET_COOKIE};
use reqwest::{StatusCode, Url};
use tempfile::NamedTempFile;
use tokio::io::AsyncWriteExt;
use tokio::time::timeout;

use pitchside_engine::config::Deployment;

use crate::DownloadConfig;
use crate::gdrive;
use crate::netguard::{self, UrlRefused};

/// Largest interstitial page read into memory (Drive's are ~3 KiB).
const MAX_HTML_BYTES: usize = 2 << 20;
/// Drive needs one confirmation step; more than a few means a loop.
const MAX_DRIVE_STEPS: usize = 3;

/// Why a download failed. Every message names the URL.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("{url}: invalid video URL: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("{url}: {reason}")]
    Refused { url: String, reason: String },
    #[error("GET {url}: HTTP {status}{}", tries(.attempts))]
    Status {
        url: String,
        status: StatusCode,
        attempts: u32,
    },
    #[error("GET {url}: timed out {what}{}", tries(.attempts))]
    Timeout {
        url: String,
        what: String,
        attempts: u32,
    },
    #[error("GET {url}: connection failed: {message}{}", tries(.attempts))]
    Connect {
        url: String,
        message: String,
        attempts: u32,
    },
    #[error("GET {url}: body cut short: {message}{}", tries(.attempts))]
    Truncated {
        url: String,
        message: String,
        attempts: u32,
    },
    #[error("GET {url}: {what} exceeds service.download.max_bytes ({max} bytes)")]
    TooLarge { url: String, what: String, max: u64 },
    #[error("GET {url}: {message}")]
    Redirect { url: String, message: String },
    #[error("{url}: {message}")]
    GoogleDrive { url: String, message: String },
    #[error("{url}: downloaded {bytes} bytes but they are not a video: {message}")]
    NotVideo {
        url: String,
        bytes: u64,
        message: String,
    },
    #[error("temporary file in {dir}: {message}")]
    TempFile { dir: String, message: String },
    #[error("{url}: cannot start the download: {message}")]
    Runtime { url: String, message: String },
    #[error("cannot set up downloads: {message}")]
    Setup { message: String },
}

fn tries(attempts: &u32) -> String {
    if *attempts > 1 {
        format!(" (after {attempts} attempts)")
    } else {
        String::new()
    }
}

impl DownloadError {
    /// Label for the `errors_total{kind}` metric (prefixed `download_`).
    pub fn kind(&self) -> &'static str {
        match self {
            DownloadError::InvalidUrl { .. } => "invalid_url",
            DownloadError::Refused { .. } => "refused_address",
            DownloadError::Status { .. } => "http_status",
            DownloadError::Timeout { .. } => "timeout",
            DownloadError::Connect { .. } => "connect",
            DownloadError::Truncated { .. } => "truncated",
            DownloadError::TooLarge { .. } => "too_large",
            DownloadError::Redirect { .. } => "redirect",
            DownloadError::GoogleDrive { .. } => "google_drive",
            DownloadError::NotVideo { .. } => "not_video",
            DownloadError::TempFile { .. } => "temp_file",
            DownloadError::Runtime { .. } => "runtime",
            DownloadError::Setup { .. } => "setup",
        }
    }

    /// Transient failures worth another attempt.
    fn retryable(&self) -> bool {
        match self {
            DownloadError::Status { status, .. } => status.is_server_error(),
            DownloadError::Timeout { .. }
            | DownloadError::Connect { .. }
            | DownloadError::Truncated { .. } => true,
            _ => false,
        }
    }

    fn set_attempts(&mut self, n: u32) {
        match self {
            DownloadError::Status { attempts, .. }
            | DownloadError::Timeout { attempts, .. }
            | DownloadError::Connect { attempts, .. }
            | DownloadError::Truncated { attempts, .. } => *attempts = n,
            _ => {}
        }
    }
}

/// A finished download. Dropping it deletes the file.
#[derive(Debug)]
pub struct Downloaded {
    pub file: NamedTempFile,
    pub bytes: u64,
    pub elapsed: Duration,
    pub attempts: u32,
}

/// Downloads challenge videos; one per service, sharing its connection pool.
#[derive(Debug, Clone)]
pub struct Downloader {
    client: reqwest::Client,
    cfg: DownloadConfig,
    temp_dir: PathBuf,
}

/// Error chain as one line (reqwest's own message is just "error sending request").
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

fn refused_to_error(url: &str, r: UrlRefused) -> DownloadError {
    match r {
        UrlRefused::Forbidden(f) => DownloadError::Refused {
            url: url.to_owned(),
            reason: f.to_string(),
        },
        other => DownloadError::InvalidUrl {
            url: url.to_owned(),
            reason: other.to_string(),
        },
    }
}

/// Keeps a plausible video extension so that OpenCV's format probing gets the usual hint.
fn suffix_for(url: &Url) -> String {
    const VIDEO: [&str; 12] = [
        "mp4", "m4v", "mov", "avi", "mkv", "webm", "ts", "mts", "mpg", "mpeg", "wmv", "flv",
    ];
    let ext = url
        .path_segments()
        .and_then(|mut s| s.next_back())
        .and_then(|name| name.rsplit_once('.'))
        .map(|(_, e)| e.to_ascii_lowercase());
    match ext {
        Some(e) if VIDEO.contains(&e.as_str()) => format!(".{e}"),
        _ => String::new(),
    }
}

impl Downloader {
    pub fn new(cfg: &DownloadConfig, temp_dir: PathBuf) -> Result<Downloader, reqwest::Error> {
        let allow_private = cfg.allow_private_addresses;
        let max_redirects = cfg.max_redirects;
        // Every redirect target gets the URL check too; the resolver covers named hosts.
        let policy = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > max_redirects {
                return attempt.error(format!("more than {max_redirects} redirects"));
            }
            match netguard::check_url(attempt.url(), allow_private) {
                Ok(()) => attempt.follow(),
                Err(e) => attempt.error(e),
            }
        });
        let mut builder = reqwest::Client::builder()
            .connect_timeout(cfg.connect_timeout())
            .redirect(policy)
            // An environment proxy would resolve names itself, bypassing the address check.
            .no_proxy()
            .user_agent(concat!("pitchside/", env!("CARGO_PKG_VERSION")));
        if !allow_private {
            builder = builder.dns_resolver(Arc::new(netguard::GuardedResolver));
        }
        Ok(Downloader {
            client: builder.build()?,
            cfg: cfg.clone(),
            temp_dir,
        })
    }

    /// The downloader of a local run (`pitchside run URL`, the Python package): the
    /// deployment's `service.download` settings and `service.temp_dir` (created if missing),
    /// with private and loopback addresses allowed (unlike `serve`: a video on one's own
    /// network is normal here).
    pub fn for_local_use(deployment: &Deployment) -> Result<Downloader, DownloadError> {
        let mut service = deployment.file.service.clone().unwrap_or_default();
        service.resolve_paths(&deployment.base_dir);
        let mut cfg = service.download;
        cfg.allow_private_addresses = true;
        let temp_dir = service.temp_dir.unwrap_or_else(std::env::temp_dir);
        std::fs::create_dir_all(&temp_dir).map_err(|e| DownloadError::TempFile {
            dir: temp_dir.display().to_string(),
            message: e.to_string(),
        })?;
        Downloader::new(&cfg, temp_dir).map_err(|e| DownloadError::Setup {
            message: format!("the HTTP client: {}", chain(&e)),
        })
    }

    /// Downloads `raw_url` into a new temporary file.
    pub async fn fetch(&self, raw_url: &str) -> Result<Downloaded, DownloadError> {
        let started = Instant::now();
        let parsed = Url::parse(raw_url).map_err(|e| DownloadError::InvalidUrl {
            url: raw_url.to_owned(),
            reason: e.to_string(),
        })?;
        let drive = gdrive::is_drive(&parsed);
        let url = gdrive::rewrite(&parsed).unwrap_or(parsed);
        // Fail fast (no retries) on a URL that can never be fetched.
        netguard::check_url(&url, self.cfg.allow_private_addresses)
            .map_err(|r| refused_to_error(raw_url, r))?;
        let file = tempfile::Builder::new()
            .prefix("pitchside-challenge-")
            .suffix(&suffix_for(&url))
            .tempfile_in(&self.temp_dir)
            .map_err(|e| DownloadError::TempFile {
                dir: self.temp_dir.display().to_string(),
                message: e.to_string(),
            })?;
        let mut attempts = 0u32;
        let all = async {
            loop {
                attempts += 1;
                match self.attempt(raw_url, &url, drive, &file).await {
                    Ok(n) => break Ok(n),
                    Err(e) if e.retryable() && attempts <= self.cfg.retries => {
                        let wait = self.cfg.backoff(attempts);
                        tracing::warn!(
                            "download attempt {attempts} failed: {e}; retrying in {:.2} s",
                            wait.as_secs_f64()
                        );
                        tokio::time::sleep(wait).await;
                    }
                    Err(mut e) => {
                        e.set_attempts(attempts);
                        break Err(e);
                    }
                }
            }
        };
        let outcome = timeout(self.cfg.total_timeout(), all).await;
        match outcome {
            Ok(Ok(bytes)) => Ok(Downloaded {
                file,
                bytes,
                elapsed: started.elapsed(),
                attempts,
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(DownloadError::Timeout {
                url: raw_url.to_owned(),
                what: format!(
                    "after {:.1} s in all (service.download.total_timeout_s)",
                    self.cfg.total_timeout_s
                ),
                attempts,
            }),
        }
    }

    fn classify(&self, shown: &str, e: reqwest::Error) -> DownloadError {
        if let Some(r) = netguard::find_refused(&e) {
            return refused_to_error(shown, r);
        }
        let url = shown.to_owned();
        let (redirect, timed_out, body) = (
            e.is_redirect(),
            e.is_timeout(),
            e.is_body() || e.is_decode(),
        );
        let message = chain(&e.without_url());
        if redirect {
            DownloadError::Redirect { url, message }
        } else if timed_out {
            DownloadError::Timeout {
                url,
                what: format!("connecting ({message})"),
                attempts: 1,
            }
        } else if body {
            DownloadError::Truncated {
                url,
                message,
                attempts: 1,
            }
        } else {
            DownloadError::Connect {
                url,
                message,
                attempts: 1,
            }
        }
    }

    /// [`Downloader::fetch`] for callers without an async runtime (`pitchside run`, the
    /// Python package): `Ok(None)` if `stop` was set first (looked at every 50 ms; the
    /// unfinished download and its temporary file are dropped).
    pub fn fetch_blocking(
        &self,
        raw_url: &str,
        stop: &AtomicBool,
    ) -> Result<Option<Downloaded>, DownloadError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| DownloadError::Runtime {
                url: raw_url.to_owned(),
                message: e.to_string(),
            })?;
        rt.block_on(async {
            let fetch = self.fetch(raw_url);
            tokio::pin!(fetch);
            loop {
                match timeout(Duration::from_millis(50), &mut fetch).await {
                    Ok(r) => return r.map(Some),
                    Err(_) if stop.load(Ordering::Relaxed) => return Ok(None),
                    Err(_) => {}
                }
            }
        })
    }

    /// One attempt: (re)writes the temporary file from the start; returns its size.
    async fn attempt(
        &self,
        shown: &str,
        start: &Url,
        drive: bool,
        file: &NamedTempFile,
    ) -> Result<u64, DownloadError> {
        let temp_err = |e: std::io::Error| DownloadError::TempFile {
            dir: self.temp_dir.display().to_string(),
            message: e.to_string(),
        };
        let handle = file.reopen().map_err(temp_err)?;
        handle.set_len(0).map_err(temp_err)?;
        let mut out =
            tokio::io::BufWriter::with_capacity(1 << 20, tokio::fs::File::from_std(handle));
        let read_timeout = self.cfg.read_timeout();
        // Headers may only come after a connect, so their wait includes the connect timeout.
        let header_timeout = self.cfg.connect_timeout() + read_timeout;
        let mut url = start.clone();
        let mut cookie: Option<String> = None;
        for _ in 0..=MAX_DRIVE_STEPS {
            netguard::check_url(&url, self.cfg.allow_private_addresses)
                .map_err(|r| refused_to_error(shown, r))?;
            let mut req = self.client.get(url.clone());
            if let Some(c) = &cookie {
                req = req.header(COOKIE, c);
            }
            let resp = match timeout(header_timeout, req.send()).await {
                Err(_) => {
                    return Err(DownloadError::Timeout {
                        url: shown.to_owned(),
                        what: format!(
                            "waiting {:.1} s for the response headers \
                             (service.download.connect_timeout_s + read_timeout_s)",
                            header_timeout.as_secs_f64()
                        ),
                        attempts: 1,
                    });
                }
                Ok(Err(e)) => return Err(self.classify(shown, e)),
                Ok(Ok(r)) => r,
            };
            let status = resp.status();
            if !status.is_success() {
                let final_url = resp.url().as_str();
                let url = if final_url == shown {
                    shown.to_owned()
                } else {
                    format!("{shown} (at {final_url})")
                };
                return Err(DownloadError::Status {
                    url,
                    status,
                    attempts: 1,
                });
            }
            let is_html = resp
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.to_ascii_lowercase().starts_with("text/html"));
            if drive && is_html {
                let page = resp.url().clone();
                let cookies: Vec<String> = resp
                    .headers()
                    .get_all(SET_COOKIE)
                    .iter()
                    .filter_map(|v| v.to_str().ok().map(str::to_owned))
                    .collect();
                let html = self.read_small(shown, resp).await?;
                let next = gdrive::confirm_step(&page, &cookies, &html).map_err(|message| {
                    DownloadError::GoogleDrive {
                        url: shown.to_owned(),
                        message,
                    }
                })?;
                tracing::debug!("Google Drive interstitial: confirming with {}", next.url);
                url = next.url;
                cookie = next.cookie;
                continue;
            }
            let n = self.stream_body(shown, resp, &mut out).await?;
            out.flush().await.map_err(temp_err)?;
            return Ok(n);
        }
        Err(DownloadError::GoogleDrive {
            url: shown.to_owned(),
            message: format!("still an HTML page after {MAX_DRIVE_STEPS} confirmation steps"),
        })
    }

    async fn stream_body(
        &self,
        shown: &str,
        mut resp: reqwest::Response,
        out: &mut tokio::io::BufWriter<tokio::fs::File>,
    ) -> Result<u64, DownloadError> {
        let max = self.cfg.max_bytes;
        let expected = resp.content_length();
        if let Some(len) = expected.filter(|&len| len > max) {
            return Err(DownloadError::TooLarge {
                url: shown.to_owned(),
                what: format!("Content-Length {len}"),
                max,
            });
        }
        let read_timeout = self.cfg.read_timeout();
        let mut n = 0u64;
        loop {
            let chunk = match timeout(read_timeout, resp.chunk()).await {
                Err(_) => {
                    return Err(DownloadError::Timeout {
                        url: shown.to_owned(),
                        what: format!(
                            "after {n} bytes: no data for {:.1} s (service.download.read_timeout_s)",
                            read_timeout.as_secs_f64()
                        ),
                        attempts: 1,
                    });
                }
                Ok(Err(e)) => {
                    let of = expected.map(|l| format!(" of {l}")).unwrap_or_default();
                    return Err(DownloadError::Truncated {
                        url: shown.to_owned(),
                        message: format!("after {n}{of} bytes: {}", chain(&e.without_url())),
                        attempts: 1,
                    });
                }
                Ok(Ok(None)) => break,
                Ok(Ok(Some(c))) => c,
            };
            n += chunk.len() as u64;
            if n > max {
                return Err(DownloadError::TooLarge {
                    url: shown.to_owned(),
                    what: format!("the body (over {n} bytes so far)"),
                    max,
                });
            }
            out.write_all(&chunk)
                .await
                .map_err(|e| DownloadError::TempFile {
                    dir: self.temp_dir.display().to_string(),
                    message: e.to_string(),
                })?;
        }
        if let Some(len) = expected.filter(|&len| n < len) {
            return Err(DownloadError::Truncated {
                url: shown.to_owned(),
                message: format!("got {n} of {len} bytes"),
                attempts: 1,
            });
        }
        Ok(n)
    }

    /// Reads a small (HTML) body, capped, under the read timeout.
    async fn read_small(
        &self,
        shown: &str,
        mut resp: reqwest::Response,
    ) -> Result<String, DownloadError> {
        let mut buf = Vec::new();
        loop {
            match timeout(self.cfg.read_timeout(), resp.chunk()).await {
                Err(_) => {
                    return Err(DownloadError::Timeout {
                        url: shown.to_owned(),
                        what: "reading a Google Drive page".into(),
                        attempts: 1,
                    });
                }
                Ok(Err(e)) => {
                    return Err(DownloadError::Truncated {
                        url: shown.to_owned(),
                        message: chain(&e.without_url()),
                        attempts: 1,
                    });
                }
                Ok(Ok(None)) => break,
                Ok(Ok(Some(c))) => {
                    buf.extend_from_slice(&c);
                    if buf.len() > MAX_HTML_BYTES {
                        return Err(DownloadError::GoogleDrive {
                            url: shown.to_owned(),
                            message: "HTML page larger than 2 MiB".into(),
                        });
                    }
                }
            }
        }
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_video_extensions_only() {
        let u = |s: &str| Url::parse(s).unwrap();
        assert_eq!(suffix_for(&u("https://x.org/a/clip.MP4?sig=1")), ".mp4");
        assert_eq!(suffix_for(&u("https://x.org/a/clip.avi")), ".avi");
        assert_eq!(suffix_for(&u("https://x.org/a/clip.exe")), "");
        assert_eq!(suffix_for(&u("https://x.org/uc?id=1")), "");
    }

    #[test]
    fn only_transient_errors_are_retried() {
        let s = |code: u16| DownloadError::Status {
            url: "u".into(),
            status: StatusCode::from_u16(code).unwrap(),
            attempts: 1,
        };
        assert!(s(500).retryable());
        assert!(s(503).retryable());
        assert!(!s(404).retryable());
        assert!(!s(429).retryable());
        let mut e = s(503);
        e.set_attempts(4);
        assert_eq!(
            e.to_string(),
            "GET u: HTTP 503 Service Unavailable (after 4 attempts)"
        );
        assert_eq!(s(404).to_string(), "GET u: HTTP 404 Not Found");
    }
}
