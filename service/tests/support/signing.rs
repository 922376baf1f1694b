//! Signing requests as a Score Vision validator does (rayonlabs fiber): sr25519 with the
//! `substrate` context over `"{nonce}:{miner_hotkey}:{sha256_hex(body)}"`.
//!
//! SS58 encoding is written out here rather than borrowed from the engine, so that the tests
//! check the engine's decoder against an independent encoder.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use blake2::{Blake2b512, Digest as _};
use schnorrkel::{ExpansionMode, Keypair, MiniSecretKey};
use sha2::Sha256;

/// SS58 with a one-byte network prefix (42, the generic Substrate one that Bittensor uses).
pub fn ss58(public_key: &[u8; 32]) -> String {
    let mut data = vec![42u8];
    data.extend_from_slice(public_key);
    let mut h = Blake2b512::new();
    h.update(b"SS58PRE");
    h.update(&data);
    let checksum = h.finalize();
    data.extend_from_slice(&checksum[..2]);
    bs58::encode(data).into_string()
}

/// A hotkey made from a fixed seed (as substrate derives sr25519 keys from a mini secret).
pub struct Hotkey {
    pub keypair: Keypair,
    pub address: String,
}

impl Hotkey {
    pub fn from_seed(seed: u8) -> Hotkey {
        let keypair = MiniSecretKey::from_bytes(&[seed; 32])
            .expect("32-byte seed")
            .expand_to_keypair(ExpansionMode::Ed25519);
        let address = ss58(&keypair.public.to_bytes());
        Hotkey { keypair, address }
    }

    /// `0x`-prefixed hex sr25519 signature, as fiber's `sign_message`.
    pub fn sign(&self, message: &[u8]) -> String {
        let sig = self
            .keypair
            .sign(schnorrkel::signing_context(b"substrate").bytes(message));
        format!("0x{}", hex::encode(sig.to_bytes()))
    }
}

/// `"{unix_time_ns}_{10 chars}"`, unique within the process.
pub fn nonce() -> String {
    nonce_at(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as i128,
    )
}

pub fn nonce_at(unix_ns: i128) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut n = COUNTER.fetch_add(1, Ordering::Relaxed) ^ (unix_ns as u64).rotate_left(17);
    let suffix: String = (0..10)
        .map(|_| {
            let c = ALPHABET[(n % 62) as usize] as char;
            n /= 62;
            c
        })
        .collect();
    format!("{unix_ns}_{suffix}")
}

/// The four fiber headers for a request with `body`.
pub fn headers(
    validator: &Hotkey,
    miner_hotkey: &str,
    nonce: &str,
    body: &[u8],
) -> Vec<(&'static str, String)> {
    let hash = hex::encode(Sha256::digest(body));
    let message = format!("{nonce}:{miner_hotkey}:{hash}");
    vec![
        ("validator-hotkey", validator.address.clone()),
        ("miner-hotkey", miner_hotkey.to_owned()),
        ("nonce", nonce.to_owned()),
        ("signature", validator.sign(message.as_bytes())),
    ]
}
