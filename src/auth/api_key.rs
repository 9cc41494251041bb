//! Machine keys: random, shown once, stored as a SHA-256 hash (they carry 160
//! bits of entropy, so a slow hash adds nothing but latency on every request).

use sha2::{Digest, Sha256};

/// `N` bytes from the operating system's random generator.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    // Only fails when the OS has no generator at all, where nothing secret can be made.
    getrandom::fill(&mut bytes).expect("the operating system's random generator");
    bytes
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new key: `igk_` and 40 hex characters, 20 random bytes (160 bits).
pub fn generate() -> String {
    format!("igk_{}", hex(&random_bytes::<20>()))
}

/// The stored form of a key.
pub fn hash(key: &str) -> String {
    hex(&Sha256::digest(key.as_bytes()))
}

/// What may be shown later to recognise a key.
pub fn prefix(key: &str) -> String {
    key.chars().take(8).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_are_unique_and_hash_stably() {
        let (a, b) = (super::generate(), super::generate());
        assert_ne!(a, b);
        assert_eq!(a.len(), 44);
        assert!(a[4..].bytes().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(super::hash(&a), super::hash(&a));
        assert_ne!(super::hash(&a), super::hash(&b));
        assert_eq!(
            super::hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn every_bit_of_a_key_varies() {
        // 160 random bits: over 64 keys, each of the 40 hex digits takes several values
        // (a fixed version or variant nibble, as in a UUID, would take one).
        let keys: Vec<String> = (0..64).map(|_| super::generate()).collect();
        for i in 4..44 {
            let digits: std::collections::HashSet<u8> =
                keys.iter().map(|k| k.as_bytes()[i]).collect();
            assert!(digits.len() > 4, "digit {i} barely varies: {digits:?}");
        }
    }
}
