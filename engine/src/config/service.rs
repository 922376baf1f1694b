//! The `service:` section of a deployment: plain data, parsed with the rest of the file (so a
//! typo in it is reported at its file:line:column). The download settings' ranges are checked
//! by the parse too ([`DownloadConfig::check`]); the miner service (crate `pitchside-service`)
//! checks the rest of what serde cannot (ranges, SS58 addresses) when it starts.
//!
//! Every field has a default, so `service: {}` (or no section at all) is a valid, safe
//! configuration: signed requests only, and with no validator allow-list every challenge is
//! refused until the operator names the validators they trust.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Who may send challenges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// Requests must carry a validator's sr25519 signature (fiber's headers) and come from a
    /// hotkey in `validators`.
    #[default]
    Signed,
    /// No checks at all: for local testing only. Must be written out explicitly.
    None,
}

/// The miner service (`pitchside serve`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceConfig {
    /// Address to listen on; `--listen` overrides it.
    pub listen: SocketAddr,
    pub auth: AuthMode,
    /// Our miner hotkey (SS58); requests signed for another miner are refused.
    pub miner_hotkey: Option<String>,
    /// Validator hotkeys (SS58) allowed to send challenges.
    pub validators: Vec<String>,
    /// How far (seconds, either way) a nonce's timestamp may be from our clock.
    pub nonce_window_s: u64,
    /// Challenges analysed at the same time (one per device is the sane default).
    pub max_concurrent_challenges: usize,
    /// Largest accepted request body; a challenge is a few hundred bytes of JSON.
    pub max_request_bytes: usize,
    /// Longest wait for a request's body once its headers are in (a client that trickles
    /// its body must not hold a connection).
    pub request_body_timeout_s: f64,
    /// Longest wait for a request's headers, from the connection's first byte or from the
    /// previous answer on a kept-alive connection (a client that trickles its headers, or
    /// idles, must not hold a connection).
    pub header_read_timeout_s: f64,
    /// Open connections at once. At the cap a new connection takes the place of the oldest
    /// idle one (no request in progress); it is closed at once only when all are working.
    pub max_connections: usize,
    /// Open connections of one peer (an IPv4 address, an IPv6 /64) at once, with the same
    /// rule: one client's idle sockets cannot fill `max_connections`.
    pub max_connections_per_peer: usize,
    /// `Retry-After` (seconds) sent with 503 when busy or shutting down.
    pub retry_after_s: u64,
    /// On SIGTERM, how long to wait for running challenges before asking them to stop.
    pub drain_timeout_s: f64,
    /// Where downloads go (default: the system temporary directory).
    pub temp_dir: Option<PathBuf>,
    /// Frame size (width, height) of a warm-up batch run through every model before the
    /// service accepts challenges, so the first challenge does not pay for kernel
    /// compilation and GPU autotuning; `null` skips it.
    pub warm_up_frame: Option<[u32; 2]>,
    pub download: DownloadConfig,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 8000)),
            auth: AuthMode::Signed,
            miner_hotkey: None,
            validators: Vec::new(),
            nonce_window_s: 120,
            max_concurrent_challenges: 1,
            max_request_bytes: 64 * 1024,
            request_body_timeout_s: 10.0,
            header_read_timeout_s: 10.0,
            max_connections: 256,
            max_connections_per_peer: 32,
            retry_after_s: 5,
            drain_timeout_s: 600.0,
            temp_dir: None,
            warm_up_frame: Some([1920, 1080]),
            download: DownloadConfig::default(),
        }
    }
}

/// How challenge videos are fetched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DownloadConfig {
    /// TCP + TLS connect timeout per attempt.
    pub connect_timeout_s: f64,
    /// Longest wait for the next piece of the body. The response headers must come within
    /// `connect_timeout_s + read_timeout_s` of sending the request: the HTTP client's send
    /// includes the connection and does not say when it was made.
    pub read_timeout_s: f64,
    /// Whole download, all attempts and back-off included.
    pub total_timeout_s: f64,
    /// Extra attempts after a connection error, a cut body or a 5xx (never after a 4xx).
    pub retries: u32,
    /// First back-off delay; doubles each retry.
    pub backoff_base_s: f64,
    /// Size cap in bytes, checked against Content-Length and while streaming.
    pub max_bytes: u64,
    pub max_redirects: usize,
    /// Allow URLs whose host is loopback/private/link-local/etc. (tests, local setups).
    pub allow_private_addresses: bool,
}

impl Default for DownloadConfig {
    fn default() -> Self {
        DownloadConfig {
            connect_timeout_s: 10.0,
            read_timeout_s: 30.0,
            total_timeout_s: 300.0,
            retries: 3,
            backoff_base_s: 0.5,
            max_bytes: 1 << 30,
            max_redirects: 10,
            allow_private_addresses: false,
        }
    }
}

impl ServiceConfig {
    /// The ranges of what every front end uses (`download`, `warm_up_frame`: `run`, `serve`,
    /// `worker`), checked by the deployment's parse so that none has to remember to.
    /// `Err((key path, message))`.
    pub fn check_shared(&self) -> Result<(), (Vec<&'static str>, String)> {
        self.download
            .check()
            .map_err(|(field, m)| (vec!["service", "download", field], m))?;
        if let Some([w, h]) = self.warm_up_frame
            && (w == 0 || h == 0 || w > 8192 || h > 8192)
        {
            return Err((
                vec!["service", "warm_up_frame"],
                format!("{w}x{h}: width and height must be between 1 and 8192"),
            ));
        }
        Ok(())
    }

    /// Resolves a relative `temp_dir` against the deployment file's directory, as model paths are.
    pub fn resolve_paths(&mut self, base_dir: &Path) {
        if let Some(d) = self.temp_dir.as_mut().filter(|d| d.is_relative()) {
            *d = base_dir.join(&*d);
        }
    }
}

/// A positive, finite number of seconds (Duration::from_secs_f64 panics on anything else).
pub fn check_secs(v: f64) -> Result<(), String> {
    if v.is_finite() && v > 0.0 && v < 1.0e9 {
        Ok(())
    } else {
        Err(format!("must be a positive number of seconds, got {v}"))
    }
}

impl DownloadConfig {
    /// What serde cannot check: ranges. Called by the deployment's parse, so every front end
    /// that downloads gets a checked configuration, and an error at the key's file:line:col.
    /// `Err((field, message))`.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        for (field, v) in [
            ("connect_timeout_s", self.connect_timeout_s),
            ("read_timeout_s", self.read_timeout_s),
            ("total_timeout_s", self.total_timeout_s),
            ("backoff_base_s", self.backoff_base_s),
        ] {
            check_secs(v).map_err(|m| (field, m))?;
        }
        if self.retries > 20 {
            return Err(("retries", "must be at most 20".into()));
        }
        // Challenge clips are tens of MB; the file goes to disk, and 64 GiB fills most disks.
        if !(1..=64 << 30).contains(&self.max_bytes) {
            return Err((
                "max_bytes",
                "must be between 1 and 68719476736 (64 GiB)".into(),
            ));
        }
        if self.max_redirects > 50 {
            return Err(("max_redirects", "must be at most 50".into()));
        }
        Ok(())
    }
}

/// The timeouts as durations. They panic on negative, NaN or huge values, which
/// [`DownloadConfig::check`] refuses when the deployment is parsed.
impl DownloadConfig {
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.connect_timeout_s)
    }
    pub fn read_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.read_timeout_s)
    }
    pub fn total_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.total_timeout_s)
    }
    /// Back-off before retry `n` (1-based): base, 2·base, 4·base, … capped at 30 s.
    pub fn backoff(&self, n: u32) -> Duration {
        let f = 2f64.powi(n.saturating_sub(1).min(16) as i32);
        Duration::from_secs_f64((self.backoff_base_s * f).min(30.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_section_is_the_default() {
        let parsed: ServiceConfig = serde_yaml_ng::from_str("{}").unwrap();
        assert_eq!(parsed, ServiceConfig::default());
        assert_eq!(parsed.auth, AuthMode::Signed);
        assert!(!parsed.download.allow_private_addresses);
    }

    #[test]
    fn parses_yaml_and_rejects_unknown_keys() {
        let c: ServiceConfig = serde_yaml_ng::from_str(
            "listen: 127.0.0.1:9000\nauth: none\nmax_concurrent_challenges: 2\n\
             download: { read_timeout_s: 0.5, allow_private_addresses: true }\n",
        )
        .unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.auth, AuthMode::None);
        assert_eq!(c.download.read_timeout(), Duration::from_millis(500));
        assert_eq!(c.download.retries, 3);
        assert!(serde_yaml_ng::from_str::<ServiceConfig>("lisen: 1.2.3.4:1").is_err());
        assert!(serde_yaml_ng::from_str::<ServiceConfig>("download: { retry: 1 }").is_err());
        assert!(serde_yaml_ng::from_str::<ServiceConfig>("auth: off").is_err());
        let off: ServiceConfig = serde_yaml_ng::from_str("warm_up_frame: null").unwrap();
        assert_eq!(off.warm_up_frame, None);
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let d = DownloadConfig::default();
        assert_eq!(d.backoff(1), Duration::from_millis(500));
        assert_eq!(d.backoff(2), Duration::from_secs(1));
        assert_eq!(d.backoff(3), Duration::from_secs(2));
        assert_eq!(d.backoff(30), Duration::from_secs(30));
    }

    #[test]
    fn relative_temp_dir_resolves_against_the_file() {
        let mut c = ServiceConfig {
            temp_dir: Some("tmp".into()),
            ..Default::default()
        };
        c.resolve_paths(Path::new("/etc/pitchside"));
        assert_eq!(c.temp_dir.as_deref(), Some(Path::new("/etc/pitchside/tmp")));
    }
}
