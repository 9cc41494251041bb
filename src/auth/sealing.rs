//! Secrets at rest (channel-account API keys and webhook secrets): AES-256-GCM
//! with a random nonce per seal, bound to the organization that owns them (the
//! additional data), so a sealed value copied into another tenant's row does not
//! open. Stored as hex of `nonce || ciphertext || tag`.

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use sha2::Digest;

/// What opens and seals secrets; one per app, from configuration.
pub struct Sealer {
    key: RandomizedNonceKey,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("the sealing key must be 64 hexadecimal characters (32 bytes)")]
    BadKey,
    #[error("a sealed secret does not open with this key (another key, or altered)")]
    DoesNotOpen,
}

impl Sealer {
    /// From `secrets_key` (64 hex characters) when configured, else derived from the
    /// JWT secret (so a fresh install needs nothing more; rotating that secret then
    /// makes stored secrets unreadable, which is why production sets `secrets_key`).
    pub fn new(secrets_key: Option<&str>, jwt_secret: &str) -> Result<Self, SealError> {
        let bytes: [u8; 32] = match secrets_key {
            Some(hex_key) => hex::decode(hex_key.trim())
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or(SealError::BadKey)?,
            None => sha2::Sha256::digest(format!("channel-secrets:{jwt_secret}")).into(),
        };
        let key = RandomizedNonceKey::new(&AES_256_GCM, &bytes).map_err(|_| SealError::BadKey)?;
        Ok(Self { key })
    }

    pub fn seal(&self, organization_id: i64, plaintext: &[u8]) -> String {
        let mut data = plaintext.to_vec();
        let nonce = self
            .key
            .seal_in_place_append_tag(Aad::from(organization_id.to_be_bytes()), &mut data)
            .expect("AES-GCM sealing of a small buffer cannot fail");
        let mut out = nonce.as_ref().to_vec();
        out.extend_from_slice(&data);
        hex::encode(out)
    }

    pub fn open(&self, organization_id: i64, sealed: &str) -> Result<Vec<u8>, SealError> {
        let bytes = hex::decode(sealed).map_err(|_| SealError::DoesNotOpen)?;
        if bytes.len() < NONCE_LEN {
            return Err(SealError::DoesNotOpen);
        }
        let (nonce, rest) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::DoesNotOpen)?;
        let mut data = rest.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(organization_id.to_be_bytes()), &mut data)
            .map_err(|_| SealError::DoesNotOpen)?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_for_its_organization_only() {
        let sealer = Sealer::new(None, "a-jwt-secret-of-enough-length-0123456789").unwrap();
        let sealed = sealer.seal(7, b"sk_live_abc");
        assert!(!sealed.contains("sk_live"));
        assert_eq!(sealer.open(7, &sealed).unwrap(), b"sk_live_abc");
        assert_eq!(sealer.open(8, &sealed), Err(SealError::DoesNotOpen));
        // A random nonce: the same secret seals differently each time.
        assert_ne!(sealer.seal(7, b"sk_live_abc"), sealed);
    }

    #[test]
    fn another_key_or_an_altered_value_does_not_open() {
        let a = Sealer::new(Some(&"11".repeat(32)), "x").unwrap();
        let b = Sealer::new(Some(&"22".repeat(32)), "x").unwrap();
        let sealed = a.seal(1, b"whsec_1");
        assert_eq!(b.open(1, &sealed), Err(SealError::DoesNotOpen));
        let mut altered = sealed.into_bytes();
        let last = altered.len() - 1;
        altered[last] = if altered[last] == b'0' { b'1' } else { b'0' };
        let altered = String::from_utf8(altered).unwrap();
        assert_eq!(a.open(1, &altered), Err(SealError::DoesNotOpen));
        assert_eq!(a.open(1, "zz"), Err(SealError::DoesNotOpen));
    }

    #[test]
    fn a_key_that_is_not_32_bytes_of_hex_is_refused() {
        assert_eq!(
            Sealer::new(Some("abcd"), "x").unwrap_err(),
            SealError::BadKey
        );
        assert_eq!(
            Sealer::new(Some(&"zz".repeat(32)), "x").unwrap_err(),
            SealError::BadKey
        );
    }
}
