//! What the service checks in its `service:` section before it starts.
//!
//! The section's types are plain data in the engine's deployment config
//! ([`pitchside_engine::config::service`]), parsed with the rest of the YAML so that a typo is
//! reported at its file:line:column; the checks that need more than serde (ranges, SS58
//! addresses, duplicates) are here, next to the code that relies on them.

pub use pitchside_engine::config::service::{AuthMode, DownloadConfig, ServiceConfig};

use crate::ss58;

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
    pitchside_engine::config::service::check_secs(v).map_err(|m| err(field, m))
}

/// Checks values serde cannot: ranges, SS58 addresses, duplicates.
pub fn validate(cfg: &ServiceConfig) -> Result<(), ServiceConfigError> {
    // Upper bounds: each well above a real deployment's, low enough that no value can
    // exhaust memory or threads.
    // One challenge per device is the sane setting; 64 is more devices than one host has.
    if !(1..=64).contains(&cfg.max_concurrent_challenges) {
        return Err(err("max_concurrent_challenges", "must be between 1 and 64"));
    }
    // A challenge is a few hundred bytes; 16 MiB is held in memory per request at most.
    if !(1024..=16 << 20).contains(&cfg.max_request_bytes) {
        return Err(err(
            "max_request_bytes",
            "must be between 1024 and 16777216 (16 MiB)",
        ));
    }
    if cfg.nonce_window_s == 0 || cfg.nonce_window_s > 3600 {
        return Err(err("nonce_window_s", "must be between 1 and 3600"));
    }
    // A validator waits this long before retrying: an hour is already a lost round.
    if !(1..=3600).contains(&cfg.retry_after_s) {
        return Err(err("retry_after_s", "must be between 1 and 3600"));
    }
    positive_secs("drain_timeout_s", cfg.drain_timeout_s)?;
    positive_secs("request_body_timeout_s", cfg.request_body_timeout_s)?;
    positive_secs("header_read_timeout_s", cfg.header_read_timeout_s)?;
    // Each connection costs a task and its buffers (tens of KiB); 65536 is past a
    // process's usual file limit anyway.
    if !(1..=65536).contains(&cfg.max_connections) {
        return Err(err("max_connections", "must be between 1 and 65536"));
    }
    // Above max_connections it is max_connections (the peer's share cannot be more).
    if !(1..=65536).contains(&cfg.max_connections_per_peer) {
        return Err(err(
            "max_connections_per_peer",
            "must be between 1 and 65536",
        ));
    }
    if let Some(h) = &cfg.miner_hotkey {
        ss58::decode(h).map_err(|e| err("miner_hotkey", format!("{h:?}: {e}")))?;
    }
    let mut seen = std::collections::HashSet::new();
    for (i, v) in cfg.validators.iter().enumerate() {
        ss58::decode(v).map_err(|e| err(format!("validators[{i}]"), format!("{v:?}: {e}")))?;
        if !seen.insert(v) {
            return Err(err(
                format!("validators[{i}]"),
                format!("{v} is listed twice"),
            ));
        }
    }
    // Checked when a deployment is parsed (at the key's file:line:col); again here for a
    // configuration built in code.
    cfg.check_shared()
        .map_err(|(path, message)| err(path[1..].join("."), message))?;
    Ok(())
}

/// Why challenges will be refused with this configuration, if they all will be.
pub fn refusal_reason(cfg: &ServiceConfig) -> Option<String> {
    if cfg.auth == AuthMode::None {
        return None;
    }
    if cfg.validators.is_empty() {
        return Some(
            "service.validators is empty: every challenge is refused (403); list the \
             validator hotkeys allowed to send challenges"
                .into(),
        );
    }
    if cfg.miner_hotkey.is_none() {
        return Some(
            "service.miner_hotkey is not set: every challenge is refused (403); set it to \
             this miner's hotkey (SS58)"
                .into(),
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_safe() {
        let c = ServiceConfig::default();
        validate(&c).unwrap();
        assert_eq!(c.auth, AuthMode::Signed);
        assert!(!c.download.allow_private_addresses);
        assert!(refusal_reason(&c).unwrap().contains("validators"));
        let parsed: ServiceConfig = serde_yaml_ng::from_str("{}").unwrap();
        assert_eq!(parsed, c);
    }

    #[test]
    fn validate_catches_bad_values() {
        let mut c = ServiceConfig {
            max_concurrent_challenges: 0,
            ..Default::default()
        };
        assert_eq!(validate(&c).unwrap_err().field, "max_concurrent_challenges");
        c.max_concurrent_challenges = 1;
        c.validators = vec!["not-an-address".into()];
        assert_eq!(validate(&c).unwrap_err().field, "validators[0]");
        c.validators = vec![];
        c.download.read_timeout_s = -1.0;
        assert_eq!(validate(&c).unwrap_err().field, "download.read_timeout_s");
        c.download.read_timeout_s = f64::NAN;
        assert!(validate(&c).is_err());
        c.download.read_timeout_s = 30.0;
        c.warm_up_frame = Some([0, 1080]);
        assert_eq!(validate(&c).unwrap_err().field, "warm_up_frame");
    }

    #[test]
    fn counts_and_sizes_have_upper_bounds_named_in_the_message() {
        type Case = (&'static str, fn(&mut ServiceConfig), &'static str);
        let cases: [Case; 7] = [
            (
                "max_concurrent_challenges",
                |c| c.max_concurrent_challenges = 100_000,
                "64",
            ),
            (
                "max_request_bytes",
                |c| c.max_request_bytes = 1 << 40,
                "16 MiB",
            ),
            ("retry_after_s", |c| c.retry_after_s = u64::MAX, "3600"),
            ("max_connections", |c| c.max_connections = 0, "65536"),
            (
                "max_connections_per_peer",
                |c| c.max_connections_per_peer = 0,
                "65536",
            ),
            (
                "download.max_bytes",
                |c| c.download.max_bytes = u64::MAX,
                "64 GiB",
            ),
            (
                "warm_up_frame",
                |c| c.warm_up_frame = Some([65536, 65536]),
                "8192",
            ),
        ];
        for (field, set, bound) in cases {
            let mut c = ServiceConfig::default();
            set(&mut c);
            let e = validate(&c).unwrap_err();
            assert_eq!(e.field, field);
            let msg = e.to_string();
            assert!(msg.contains(field) && msg.contains(bound), "{msg}");
        }
    }

    #[test]
    fn refusal_names_what_is_missing() {
        let alice = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY".to_string();
        let mut c = ServiceConfig {
            validators: vec![alice.clone()],
            ..Default::default()
        };
        assert!(refusal_reason(&c).unwrap().contains("miner_hotkey"));
        c.miner_hotkey = Some(alice);
        assert_eq!(refusal_reason(&c), None);
        c.validators.clear();
        c.auth = AuthMode::None;
        assert_eq!(refusal_reason(&c), None);
    }
}
