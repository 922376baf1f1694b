//! Property tests of what a client controls in a challenge's authentication: the four
//! headers (any bytes a header may hold), the body, and SS58 addresses. A request passes
//! only when it is a genuine signature by an allowed validator, for us, over this body,
//! with a fresh nonce in the window; nothing else passes and nothing panics. Bounded for CI;
//! a long run by hand: `PROPTEST_CASES=100000 cargo test -p pitchside-service --lib proptests`.

use axum::http::{HeaderMap, HeaderValue};
use proptest::prelude::*;
use schnorrkel::{ExpansionMode, MiniSecretKey};

use super::*;
use crate::ss58;

fn config(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn keypair(seed: u8) -> schnorrkel::Keypair {
    MiniSecretKey::from_bytes(&[seed; 32])
        .unwrap()
        .expand_to_keypair(ExpansionMode::Ed25519)
}

const NOW: i128 = 1_700_000_000_000_000_000;

struct Setup {
    auth: Authenticator,
    validator: schnorrkel::Keypair,
    validator_address: String,
    miner: String,
}

fn setup() -> Setup {
    let validator = keypair(1);
    let validator_address = ss58::encode(&validator.public.to_bytes(), 42);
    let miner = ss58::encode(&keypair(2).public.to_bytes(), 42);
    let auth = Authenticator::new(&ServiceConfig {
        miner_hotkey: Some(miner.clone()),
        validators: vec![validator_address.clone()],
        ..Default::default()
    });
    Setup {
        auth,
        validator,
        validator_address,
        miner,
    }
}

/// The four fields of a genuine request.
#[derive(Debug, Clone)]
struct Fields {
    validator: Vec<u8>,
    miner: Vec<u8>,
    nonce: Vec<u8>,
    signature: Vec<u8>,
    body: Vec<u8>,
}

fn genuine(s: &Setup, nonce: &str, body: &[u8]) -> Fields {
    let msg = signing_message(nonce, &s.miner, body);
    let sig = s
        .validator
        .sign(schnorrkel::signing_context(b"substrate").bytes(msg.as_bytes()));
    Fields {
        validator: s.validator_address.clone().into_bytes(),
        miner: s.miner.clone().into_bytes(),
        nonce: nonce.as_bytes().to_vec(),
        signature: format!("0x{}", hex::encode(sig.to_bytes())).into_bytes(),
        body: body.to_vec(),
    }
}

/// Headers as hyper would hand them over: values that are not valid header bytes never
/// reach the handler, so they are left out (as a missing header).
fn headers(f: &Fields) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (name, v) in [
        (HEADER_VALIDATOR, &f.validator),
        (HEADER_MINER, &f.miner),
        (HEADER_NONCE, &f.nonce),
        (HEADER_SIGNATURE, &f.signature),
    ] {
        if let Ok(v) = HeaderValue::from_bytes(v) {
            h.insert(name, v);
        }
    }
    h
}

/// A header value a hostile client might send.
fn hostile_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200),
        "[0-9]{1,45}_[a-z]{0,10}".prop_map(String::into_bytes),
        "-?[0-9]{30,40}_x".prop_map(String::into_bytes),
        "(0x)?[0-9a-fA-F]{0,140}".prop_map(String::into_bytes),
        "[1-9A-HJ-NP-Za-km-z]{0,60}".prop_map(String::into_bytes),
        prop::sample::select(vec![
            "-170141183460469231731687303715884105728_x",
            "170141183460469231731687303715884105727_x",
            "_",
            "",
            " ",
            "0x",
            "\u{0}",
        ])
        .prop_map(|s| s.as_bytes().to_vec()),
    ]
}

/// Which part of a genuine request to replace or alter.
#[derive(Debug, Clone)]
enum Tamper {
    Replace(usize, Vec<u8>),
    FlipBit(usize, usize, u8),
}

fn tamper() -> impl Strategy<Value = Tamper> {
    prop_oneof![
        (0usize..5, hostile_value()).prop_map(|(f, v)| Tamper::Replace(f, v)),
        (0usize..5, any::<usize>(), 0u8..8).prop_map(|(f, i, b)| Tamper::FlipBit(f, i, b)),
    ]
}

fn field(f: &mut Fields, i: usize) -> &mut Vec<u8> {
    match i {
        0 => &mut f.validator,
        1 => &mut f.miner,
        2 => &mut f.nonce,
        3 => &mut f.signature,
        _ => &mut f.body,
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// Any change to a genuine request is refused (or, for a change that leaves it
    /// equivalent, such as a `0x` → `0X` or surrounding spaces, accepted once: never twice).
    #[test]
    fn a_tampered_request_is_refused(
        tampers in prop::collection::vec(tamper(), 1..4),
        body in prop::collection::vec(any::<u8>(), 0..100),
        nonce_tail in "[a-z0-9]{1,16}",
    ) {
        let s = setup();
        let nonce = format!("{NOW}_{nonce_tail}");
        let original = genuine(&s, &nonce, &body);
        let mut f = original.clone();
        for t in &tampers {
            match t {
                Tamper::Replace(i, v) => *field(&mut f, *i) = v.clone(),
                Tamper::FlipBit(i, at, bit) => {
                    let v = field(&mut f, *i);
                    if !v.is_empty() {
                        let n = v.len();
                        v[at % n] ^= 1 << bit;
                    }
                }
            }
        }
        let h = headers(&f);
        let first = s.auth.check_at(&h, &f.body, NOW);
        if first.is_ok() {
            // Accepted only if it is the genuine request up to what the checks normalise.
            let normal = |v: &[u8]| String::from_utf8_lossy(v).trim().to_string();
            prop_assert_eq!(normal(&f.validator), normal(&original.validator));
            prop_assert_eq!(normal(&f.miner), normal(&original.miner));
            prop_assert_eq!(normal(&f.nonce), normal(&original.nonce));
            prop_assert_eq!(&f.body, &original.body);
            prop_assert_eq!(
                s.auth.check_at(&h, &f.body, NOW),
                Err(AuthError::ReplayedNonce)
            );
        }
    }

    /// Headers made up from nothing: refused, whatever they hold.
    #[test]
    fn made_up_headers_are_refused(
        validator in hostile_value(),
        miner in hostile_value(),
        nonce in hostile_value(),
        signature in hostile_value(),
        body in prop::collection::vec(any::<u8>(), 0..64),
        now in any::<i64>(),
    ) {
        let s = setup();
        let f = Fields { validator, miner, nonce, signature, body };
        prop_assert!(s.auth.check_at(&headers(&f), &f.body, now as i128).is_err());
    }

    /// Well-formed but wrong: the real validator and miner, any nonce and signature.
    #[test]
    fn real_hotkeys_with_made_up_nonce_and_signature_are_refused(
        nonce in hostile_value(),
        signature in hostile_value(),
        body in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let s = setup();
        let f = Fields {
            validator: s.validator_address.clone().into_bytes(),
            miner: s.miner.clone().into_bytes(),
            nonce,
            signature,
            body,
        };
        prop_assert!(s.auth.check_at(&headers(&f), &f.body, NOW).is_err());
    }

    #[test]
    fn ss58_decodes_what_it_encodes_and_refuses_or_decodes_anything_else(
        key in any::<[u8; 32]>(),
        prefix in 0u16..16384,
        junk in ".{0,80}",
        flip in any::<(usize, u8)>(),
    ) {
        let address = ss58::encode(&key, prefix);
        prop_assert_eq!(ss58::decode(&address), Ok(key));
        let _ = ss58::decode(&junk);
        // One character changed: the checksum catches it (or it is no longer base58).
        let mut chars: Vec<char> = address.chars().collect();
        let i = flip.0 % chars.len();
        let alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
        let c = alphabet.chars().nth(flip.1 as usize % alphabet.len()).unwrap();
        if chars[i] != c {
            chars[i] = c;
            let changed: String = chars.into_iter().collect();
            // Unless the key bytes themselves are untouched (a prefix change whose checksum
            // collides, 1 in 65536), the address no longer decodes to the key.
            let key_untouched = bs58::decode(&changed)
                .into_vec()
                .is_ok_and(|d| d.windows(32).any(|w| w == key));
            if !key_untouched {
                prop_assert_ne!(ss58::decode(&changed), Ok(key));
            }
        }
    }
}

/// Found by the properties above: a nonce timestamp of i128::MIN overflowed the skew
/// computation (a panic in a debug build, a window check that wrapped in a release one).
#[test]
fn an_extreme_nonce_timestamp_is_refused_not_overflowed() {
    let s = setup();
    for ts in [i128::MIN, i128::MAX] {
        let f = genuine(&s, &format!("{ts}_x"), b"{}");
        assert!(matches!(
            s.auth.check_at(&headers(&f), &f.body, NOW),
            Err(AuthError::BadNonce(_))
        ));
    }
}
