//! Validator request signing, compatible with rayonlabs fiber (what Score Vision validators use).
//!
//! Headers: `validator-hotkey`, `miner-hotkey`, `nonce`, `signature`. The signed message is
//! `"{nonce}:{miner_hotkey}:{sha256_hex(body)}"`, signed with sr25519 (signing context
//! `b"substrate"`) by the validator hotkey; the signature is hex, usually `0x`-prefixed. The
//! nonce is `"{unix_time_ns}_{random}"`; it must be recent and is accepted once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::HeaderMap;
use sha2::{Digest as _, Sha256};

use crate::config::{AuthMode, ServiceConfig};
use crate::ss58;

pub const HEADER_VALIDATOR: &str = "validator-hotkey";
pub const HEADER_MINER: &str = "miner-hotkey";
pub const HEADER_NONCE: &str = "nonce";
pub const HEADER_SIGNATURE: &str = "signature";

/// Most nonces remembered at once. Only validly signed requests from allow-listed validators
/// add one, so this bounds memory against a misbehaving validator, not the internet.
const NONCE_STORE_CAP: usize = 100_000;

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// The message a validator signs for a request with this body.
pub fn signing_message(nonce: &str, miner_hotkey: &str, body: &[u8]) -> String {
    format!("{nonce}:{miner_hotkey}:{}", sha256_hex(body))
}

/// Verifies a hex (optionally `0x`-prefixed) sr25519 signature of `message` by `public_key`.
pub fn verify_signature(public_key: &[u8; 32], message: &[u8], signature_hex: &str) -> bool {
    let hex_part = signature_hex
        .strip_prefix("0x")
        .or_else(|| signature_hex.strip_prefix("0X"))
        .unwrap_or(signature_hex);
    let Ok(sig_bytes) = hex::decode(hex_part) else {
        return false;
    };
    let Ok(signature) = schnorrkel::Signature::from_bytes(&sig_bytes) else {
        return false;
    };
    let Ok(key) = schnorrkel::PublicKey::from_bytes(public_key) else {
        return false;
    };
    let ctx = schnorrkel::signing_context(b"substrate");
    if key.verify(ctx.bytes(message), &signature).is_ok() {
        return true;
    }
    // substrate-interface's Keypair.verify (which fiber calls) also accepts signatures of the
    // message wrapped in <Bytes>…</Bytes>, as browser wallets produce; so do we.
    let mut wrapped = Vec::with_capacity(message.len() + 15);
    wrapped.extend_from_slice(b"<Bytes>");
    wrapped.extend_from_slice(message);
    wrapped.extend_from_slice(b"</Bytes>");
    key.verify(ctx.bytes(&wrapped), &signature).is_ok()
}

/// Why a request was refused. `Forbidden` → 403, the others → 401.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing header `{0}`")]
    MissingHeader(&'static str),
    #[error("this miner accepts no validators: {0}")]
    NotConfigured(String),
    #[error("validator {0} is not in service.validators")]
    UnknownValidator(String),
    #[error("request is for miner {got}, this is {ours}")]
    WrongMiner { got: String, ours: String },
    #[error("bad nonce: {0}")]
    BadNonce(String),
    #[error("nonce already used")]
    ReplayedNonce,
    #[error("invalid signature")]
    BadSignature,
    #[error("too many recent nonces; try again later")]
    NonceStoreFull,
}

impl AuthError {
    /// Label for the `errors_total{kind}` metric.
    pub fn kind(&self) -> &'static str {
        match self {
            AuthError::MissingHeader(_) => "auth_missing_header",
            AuthError::NotConfigured(_) => "auth_not_configured",
            AuthError::UnknownValidator(_) => "auth_unknown_validator",
            AuthError::WrongMiner { .. } => "auth_wrong_miner",
            AuthError::BadNonce(_) => "auth_bad_nonce",
            AuthError::ReplayedNonce => "auth_replayed_nonce",
            AuthError::BadSignature => "auth_bad_signature",
            AuthError::NonceStoreFull => "auth_nonce_store_full",
        }
    }

    pub fn is_forbidden(&self) -> bool {
        matches!(
            self,
            AuthError::NotConfigured(_) | AuthError::UnknownValidator(_)
        )
    }
}

fn now_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0)
}

/// Nonces seen within the window. A nonce older than the window is refused by the time check,
/// so it can be forgotten; that keeps the store bounded by the request rate × window.
#[derive(Debug)]
pub struct NonceStore {
    window_ns: i128,
    seen: Mutex<HashMap<String, i128>>,
}

impl NonceStore {
    pub fn new(window: Duration) -> NonceStore {
        NonceStore {
            window_ns: window.as_nanos() as i128,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// The nonce's timestamp, if the nonce is well formed and within the window of `now`.
    fn check_time(&self, nonce: &str, now: i128) -> Result<i128, AuthError> {
        if nonce.len() > 128 {
            return Err(AuthError::BadNonce("longer than 128 characters".into()));
        }
        let ts = nonce
            .split('_')
            .next()
            .and_then(|t| t.parse::<i128>().ok())
            .ok_or_else(|| AuthError::BadNonce("expected {unix_time_ns}_{random}".into()))?;
        // A hostile timestamp (i128::MIN) overflowed `now - ts`: a panic in a debug
        // build; in a release build the wrapped skew passed the window check.
        let skew = now.saturating_sub(ts);
        if skew.unsigned_abs() > self.window_ns.unsigned_abs() {
            return Err(AuthError::BadNonce(format!(
                "timestamp is {:.1} s from this miner's clock (window ±{} s)",
                skew as f64 / 1e9,
                self.window_ns / 1_000_000_000
            )));
        }
        Ok(ts)
    }

    /// Records a nonce; false if it was already used.
    fn insert(&self, nonce: &str, ts: i128, now: i128) -> Result<(), AuthError> {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.contains_key(nonce) {
            return Err(AuthError::ReplayedNonce);
        }
        if seen.len() >= NONCE_STORE_CAP / 2 {
            let window = self.window_ns;
            seen.retain(|_, t| now - *t <= window);
        }
        if seen.len() >= NONCE_STORE_CAP {
            return Err(AuthError::NonceStoreFull);
        }
        seen.insert(nonce.to_owned(), ts);
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Checks requests against the configured mode, allow-list and miner hotkey.
#[derive(Debug)]
pub struct Authenticator {
    mode: AuthMode,
    miner_hotkey: Option<String>,
    validators: HashMap<String, [u8; 32]>,
    nonces: NonceStore,
}

/// Who sent an accepted request (for logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Anonymous,
    Validator(String),
}

impl std::fmt::Display for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Caller::Anonymous => f.write_str("anonymous (auth: none)"),
            Caller::Validator(v) => write!(f, "validator {v}"),
        }
    }
}

impl Authenticator {
    /// Expects a validated config (addresses that do not decode are skipped).
    pub fn new(cfg: &ServiceConfig) -> Authenticator {
        let validators = cfg
            .validators
            .iter()
            .filter_map(|v| ss58::decode(v).ok().map(|k| (v.clone(), k)))
            .collect();
        Authenticator {
            mode: cfg.auth,
            miner_hotkey: cfg.miner_hotkey.clone(),
            validators,
            nonces: NonceStore::new(Duration::from_secs(cfg.nonce_window_s)),
        }
    }

    pub fn check(&self, headers: &HeaderMap, body: &[u8]) -> Result<Caller, AuthError> {
        self.check_at(headers, body, now_ns())
    }

    fn check_at(&self, headers: &HeaderMap, body: &[u8], now: i128) -> Result<Caller, AuthError> {
        if self.mode == AuthMode::None {
            return Ok(Caller::Anonymous);
        }
        let header = |name: &'static str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .ok_or(AuthError::MissingHeader(name))
        };
        let validator = header(HEADER_VALIDATOR)?;
        let miner = header(HEADER_MINER)?;
        let nonce = header(HEADER_NONCE)?;
        let signature = header(HEADER_SIGNATURE)?;
        if self.validators.is_empty() {
            return Err(AuthError::NotConfigured(
                "service.validators is empty".into(),
            ));
        }
        let Some(ours) = &self.miner_hotkey else {
            return Err(AuthError::NotConfigured(
                "service.miner_hotkey is not set".into(),
            ));
        };
        let Some(key) = self.validators.get(validator) else {
            return Err(AuthError::UnknownValidator(validator.to_owned()));
        };
        if miner != ours {
            return Err(AuthError::WrongMiner {
                got: miner.to_owned(),
                ours: ours.clone(),
            });
        }
        let ts = self.nonces.check_time(nonce, now)?;
        let message = signing_message(nonce, miner, body);
        if !verify_signature(key, message.as_bytes(), signature) {
            return Err(AuthError::BadSignature);
        }
        // Recorded only once the signature holds, so nobody else can burn a validator's nonces.
        self.nonces.insert(nonce, ts, now)?;
        Ok(Caller::Validator(validator.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use schnorrkel::{ExpansionMode, MiniSecretKey};

    fn keypair(seed: u8) -> schnorrkel::Keypair {
        MiniSecretKey::from_bytes(&[seed; 32])
            .unwrap()
            .expand_to_keypair(ExpansionMode::Ed25519)
    }

    fn sign(kp: &schnorrkel::Keypair, msg: &[u8]) -> String {
        let sig = kp.sign(schnorrkel::signing_context(b"substrate").bytes(msg));
        format!("0x{}", hex::encode(sig.to_bytes()))
    }

    #[test]
    fn signatures_verify_only_for_the_right_key_and_message() {
        let kp = keypair(7);
        let pk = kp.public.to_bytes();
        let sig = sign(&kp, b"hello");
        assert!(verify_signature(&pk, b"hello", &sig));
        assert!(verify_signature(
            &pk,
            b"hello",
            sig.trim_start_matches("0x")
        ));
        assert!(!verify_signature(&pk, b"hellO", &sig));
        assert!(!verify_signature(
            &keypair(8).public.to_bytes(),
            b"hello",
            &sig
        ));
        assert!(!verify_signature(&pk, b"hello", "0xzz"));
        assert!(!verify_signature(&pk, b"hello", "0x1234"));
        let wrapped = sign(&kp, b"<Bytes>hello</Bytes>");
        assert!(verify_signature(&pk, b"hello", &wrapped));
    }

    fn signed_headers(
        kp: &schnorrkel::Keypair,
        miner: &str,
        nonce: &str,
        body: &[u8],
    ) -> HeaderMap {
        let mut h = HeaderMap::new();
        let v = ss58::encode(&kp.public.to_bytes(), 42);
        h.insert(HEADER_VALIDATOR, HeaderValue::from_str(&v).unwrap());
        h.insert(HEADER_MINER, HeaderValue::from_str(miner).unwrap());
        h.insert(HEADER_NONCE, HeaderValue::from_str(nonce).unwrap());
        let sig = sign(kp, signing_message(nonce, miner, body).as_bytes());
        h.insert(HEADER_SIGNATURE, HeaderValue::from_str(&sig).unwrap());
        h
    }

    #[test]
    fn authenticator_checks_in_order() {
        let validator = keypair(1);
        let miner = ss58::encode(&keypair(2).public.to_bytes(), 42);
        let cfg = ServiceConfig {
            miner_hotkey: Some(miner.clone()),
            validators: vec![ss58::encode(&validator.public.to_bytes(), 42)],
            ..Default::default()
        };
        let auth = Authenticator::new(&cfg);
        let now = 1_700_000_000_000_000_000i128;
        let body = br#"{"challenge_id":"1"}"#;
        let nonce = format!("{now}_abcdefghij");
        let h = signed_headers(&validator, &miner, &nonce, body);
        assert!(matches!(
            auth.check_at(&h, body, now),
            Ok(Caller::Validator(_))
        ));
        assert_eq!(auth.check_at(&h, body, now), Err(AuthError::ReplayedNonce));
        // Body changed after signing.
        let nonce2 = format!("{now}_2bcdefghij");
        let h = signed_headers(&validator, &miner, &nonce2, body);
        assert_eq!(auth.check_at(&h, b"{}", now), Err(AuthError::BadSignature));
        // A failed signature did not burn the nonce.
        assert!(auth.check_at(&h, body, now).is_ok());
        // Stale and future nonces.
        let old = format!("{}_x", now - 121_000_000_000);
        let h = signed_headers(&validator, &miner, &old, body);
        assert!(matches!(
            auth.check_at(&h, body, now),
            Err(AuthError::BadNonce(_))
        ));
        let future = format!("{}_x", now + 121_000_000_000);
        let h = signed_headers(&validator, &miner, &future, body);
        assert!(matches!(
            auth.check_at(&h, body, now),
            Err(AuthError::BadNonce(_))
        ));
        let h = signed_headers(&validator, &miner, "garbage", body);
        assert!(matches!(
            auth.check_at(&h, body, now),
            Err(AuthError::BadNonce(_))
        ));
        // Other miner, unknown validator, missing header.
        let h = signed_headers(&validator, "5Other", &format!("{now}_3"), body);
        assert!(matches!(
            auth.check_at(&h, body, now),
            Err(AuthError::WrongMiner { .. })
        ));
        let stranger = keypair(9);
        let h = signed_headers(&stranger, &miner, &format!("{now}_4"), body);
        let e = auth.check_at(&h, body, now).unwrap_err();
        assert!(e.is_forbidden(), "{e}");
        let mut h = signed_headers(&validator, &miner, &format!("{now}_5"), body);
        h.remove(HEADER_SIGNATURE);
        assert_eq!(
            auth.check_at(&h, body, now),
            Err(AuthError::MissingHeader(HEADER_SIGNATURE))
        );
    }

    #[test]
    fn empty_allow_list_refuses_everyone_and_none_mode_allows() {
        let kp = keypair(1);
        let body = b"{}";
        let now = now_ns();
        let h = signed_headers(&kp, "m", &format!("{now}_a"), body);
        let auth = Authenticator::new(&ServiceConfig::default());
        let e = auth.check_at(&h, body, now).unwrap_err();
        assert!(e.is_forbidden());
        let open = Authenticator::new(&ServiceConfig {
            auth: AuthMode::None,
            ..Default::default()
        });
        assert_eq!(
            open.check_at(&HeaderMap::new(), body, now),
            Ok(Caller::Anonymous)
        );
    }

    #[test]
    fn nonce_store_forgets_old_entries() {
        let store = NonceStore::new(Duration::from_secs(1));
        let t0 = 10_000_000_000i128;
        for i in 0..(NONCE_STORE_CAP / 2) {
            store.insert(&format!("{t0}_{i}"), t0, t0).unwrap();
        }
        assert_eq!(store.len(), NONCE_STORE_CAP / 2);
        let later = t0 + 5_000_000_000;
        store.insert(&format!("{later}_new"), later, later).unwrap();
        assert_eq!(store.len(), 1);
    }
}

#[cfg(test)]
mod proptests;
