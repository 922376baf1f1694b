//! SS58, the Substrate account address format that Bittensor hotkeys use: base58 of
//! `prefix ‖ public key ‖ checksum`, the checksum being the first two bytes of
//! BLAKE2b-512(`"SS58PRE"` ‖ prefix ‖ public key). Pure functions, no state.

use blake2::{Blake2b512, Digest as _};

/// The generic Substrate SS58 prefix, which Bittensor uses.
pub const SS58_PREFIX_SUBSTRATE: u16 = 42;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Ss58Error {
    #[error("not base58")]
    Base58,
    #[error("wrong length ({0} bytes) for an SS58 account address")]
    Length(usize),
    #[error("bad SS58 checksum")]
    Checksum,
}

fn checksum(data: &[u8]) -> [u8; 2] {
    let mut h = Blake2b512::new();
    h.update(b"SS58PRE");
    h.update(data);
    let d = h.finalize();
    [d[0], d[1]]
}

/// Decodes an SS58 account address (any network prefix) into its 32-byte public key.
pub fn decode(address: &str) -> Result<[u8; 32], Ss58Error> {
    let data = bs58::decode(address)
        .into_vec()
        .map_err(|_| Ss58Error::Base58)?;
    // 1-byte prefixes are 0..=63; 2-byte prefixes set bit 6 of the first byte.
    let prefix_len = match (data.len(), data.first()) {
        (35, Some(b)) if *b < 64 => 1,
        (36, Some(b)) if (64..128).contains(b) => 2,
        (n, _) => return Err(Ss58Error::Length(n)),
    };
    let (body, check) = data.split_at(data.len() - 2);
    if checksum(body) != check {
        return Err(Ss58Error::Checksum);
    }
    let mut key = [0u8; 32];
    key.copy_from_slice(&body[prefix_len..]);
    Ok(key)
}

/// Encodes a public key as an SS58 address with `prefix` (42 for Bittensor).
pub fn encode(public_key: &[u8; 32], prefix: u16) -> String {
    let mut data = Vec::with_capacity(36);
    if prefix < 64 {
        data.push(prefix as u8);
    } else {
        let p = prefix & 0x3fff;
        data.push((((p & 0b1111_1100) >> 2) as u8) | 0b0100_0000);
        data.push(((p >> 8) as u8) | (((p & 0b11) as u8) << 6));
    }
    data.extend_from_slice(public_key);
    let c = checksum(&data);
    data.extend_from_slice(&c);
    bs58::encode(data).into_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Alice's well-known sr25519 public key and her generic-prefix address.
    const ALICE_HEX: &str = "d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d";
    const ALICE: &str = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";

    fn alice() -> [u8; 32] {
        hex::decode(ALICE_HEX).unwrap().try_into().unwrap()
    }

    #[test]
    fn matches_the_known_address_both_ways() {
        assert_eq!(encode(&alice(), SS58_PREFIX_SUBSTRATE), ALICE);
        assert_eq!(decode(ALICE).unwrap(), alice());
    }

    #[test]
    fn a_changed_character_fails_the_checksum() {
        let bad = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQZ";
        assert_eq!(decode(bad), Err(Ss58Error::Checksum));
    }

    #[test]
    fn non_base58_and_wrong_lengths_are_refused() {
        // 0, O, I and l are not in the base58 alphabet.
        assert_eq!(decode("0OIl"), Err(Ss58Error::Base58));
        assert!(matches!(decode("abc"), Err(Ss58Error::Length(_))));
        // A valid address with one byte dropped before the checksum.
        let mut data = bs58::decode(ALICE).into_vec().unwrap();
        data.remove(5);
        let short = bs58::encode(data).into_string();
        assert_eq!(decode(&short), Err(Ss58Error::Length(34)));
    }

    #[test]
    fn two_byte_prefixes_round_trip() {
        for prefix in [64, 1000, 0x3fff] {
            let a = encode(&alice(), prefix);
            assert_ne!(a, ALICE);
            assert_eq!(decode(&a).unwrap(), alice(), "prefix {prefix}");
        }
        // Bittensor's own prefix is a one-byte one.
        assert_eq!(decode(&encode(&alice(), 0)).unwrap(), alice());
    }
}
