//! The `service:` section of a deployment.
//!
//! Every field has a default, so `service: {}` (or no section at all) is a valid, safe
//! configuration: signed requests only, and with no validator allow-list every challenge is
//! refused until the operator names the validators they trust.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::auth::ss58_decode;

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
    /// Longest wait for response headers or for the next piece of the body.
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

/// A semantic problem in the `service:` section.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("service.{field}: {message}")]
pub struct ServiceConfigError {
    pub field: String,
    pub message: String,
}

fn err(field: impl Into<String>, message: impl Into<String>) -> ServiceConfigError {
    ServiceConfigError {
        field: field.into(),
        message: message.into(),
    }
}

fn positive_secs(field: &str, v: f64) -> Result<(), ServiceConfigError> {
    // Duration::from_secs_f64 panics on negative, NaN or huge values: reject them here.
    if v.is_finite() && v > 0.0 && v < 1.0e9 {
        Ok(())
    } else {
        Err(err(
            field,
            format!("must be a positive number of seconds, got {v}"),
        ))
    }
}

impl ServiceConfig {
    /// Checks values serde cannot: ranges, SS58 addresses, duplicates.
    pub fn validate(&self) -> Result<(), ServiceConfigError> {
        if self.max_concurrent_challenges == 0 {
            return Err(err("max_concurrent_challenges", "must be at least 1"));
        }
        if self.max_request_bytes < 1024 {
            return Err(err("max_request_bytes", "must be at least 1024"));
        }
        if self.nonce_window_s == 0 || self.nonce_window_s > 3600 {
            return Err(err("nonce_window_s", "must be between 1 and 3600"));
        }
        if self.retry_after_s == 0 {
            return Err(err("retry_after_s", "must be at least 1"));
        }
        positive_secs("drain_timeout_s", self.drain_timeout_s)?;
        if let Some([w, h]) = self.warm_up_frame
            && (w == 0 || h == 0 || w > 8192 || h > 8192)
        {
            return Err(err(
                "warm_up_frame",
                format!("{w}x{h}: width and height must be between 1 and 8192"),
            ));
        }
        if let Some(h) = &self.miner_hotkey {
            ss58_decode(h).map_err(|e| err("miner_hotkey", format!("{h:?}: {e}")))?;
        }
        let mut seen = std::collections::HashSet::new();
        for (i, v) in self.validators.iter().enumerate() {
            ss58_decode(v).map_err(|e| err(format!("validators[{i}]"), format!("{v:?}: {e}")))?;
            if !seen.insert(v) {
                return Err(err(
                    format!("validators[{i}]"),
                    format!("{v} is listed twice"),
                ));
            }
        }
        let d = &self.download;
        positive_secs("download.connect_timeout_s", d.connect_timeout_s)?;
        positive_secs("download.read_timeout_s", d.read_timeout_s)?;
        positive_secs("download.total_timeout_s", d.total_timeout_s)?;
        positive_secs("download.backoff_base_s", d.backoff_base_s)?;
        if d.retries > 20 {
            return Err(err("download.retries", "must be at most 20"));
        }
        if d.max_bytes == 0 {
            return Err(err("download.max_bytes", "must be positive"));
        }
        if d.max_redirects > 50 {
            return Err(err("download.max_redirects", "must be at most 50"));
        }
        Ok(())
    }

    /// Resolves a relative `temp_dir` against the deployment file's directory, as model paths are.
    pub fn resolve_paths(&mut self, base_dir: &Path) {
        if let Some(d) = self.temp_dir.as_mut().filter(|d| d.is_relative()) {
            *d = base_dir.join(&*d);
        }
    }

    /// Why challenges will be refused with this configuration, if they all will be.
    pub fn refusal_reason(&self) -> Option<String> {
        if self.auth == AuthMode::None {
            return None;
        }
        if self.validators.is_empty() {
            return Some(
                "service.validators is empty: every challenge is refused (403); list the \
                 validator hotkeys allowed to send challenges"
                    .into(),
            );
        }
        if self.miner_hotkey.is_none() {
            return Some(
                "service.miner_hotkey is not set: every challenge is refused (403); set it to \
                 this miner's hotkey (SS58)"
                    .into(),
            );
        }
        None
    }
}

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
    fn defaults_are_valid_and_safe() {
        let c = ServiceConfig::default();
        c.validate().unwrap();
        assert_eq!(c.auth, AuthMode::Signed);
        assert!(!c.download.allow_private_addresses);
        assert!(c.refusal_reason().unwrap().contains("validators"));
        let parsed: ServiceConfig = serde_yaml_ng::from_str("{}").unwrap();
        assert_eq!(parsed, c);
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
    }

    #[test]
    fn validate_catches_bad_values() {
        let mut c = ServiceConfig {
            max_concurrent_challenges: 0,
            ..Default::default()
        };
        assert_eq!(c.validate().unwrap_err().field, "max_concurrent_challenges");
        c.max_concurrent_challenges = 1;
        c.validators = vec!["not-an-address".into()];
        assert_eq!(c.validate().unwrap_err().field, "validators[0]");
        c.validators = vec![];
        c.download.read_timeout_s = -1.0;
        assert_eq!(c.validate().unwrap_err().field, "download.read_timeout_s");
        c.download.read_timeout_s = f64::NAN;
        assert!(c.validate().is_err());
        c.download.read_timeout_s = 30.0;
        c.warm_up_frame = Some([0, 1080]);
        assert_eq!(c.validate().unwrap_err().field, "warm_up_frame");
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
