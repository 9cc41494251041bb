//! Webhook signatures (NOTES.md section 7): `X-Webhook-Signature` is
//! `sha256=` + lowercase hex HMAC-SHA256 over `"{X-Webhook-Timestamp}.{raw body}"`,
//! keyed with the secret's UTF-8 bytes as given (`whsec_` prefix included).
//! Verification must see the raw body bytes, never re-serialised JSON.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The largest accepted |now − timestamp|, in seconds (the SDK's default): bounds replays
/// of captured deliveries in both directions.
pub const TOLERANCE_SECS: i64 = 300;

const PREFIX: &str = "sha256=";

/// Why a delivery's signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// `X-Webhook-Signature` or `X-Webhook-Timestamp` is absent.
    #[error("webhook signature or timestamp header missing")]
    Missing,
    /// The signature is not `sha256=` + 64 lowercase hex digits, or the timestamp is not
    /// a (non-empty, in-range) string of ASCII digits.
    #[error("webhook signature or timestamp header malformed")]
    Malformed,
    /// Well formed, but not the HMAC of this timestamp and body under this secret.
    #[error("webhook signature does not match")]
    Mismatch,
    /// A valid signature over a timestamp more than [`TOLERANCE_SECS`] from now.
    #[error("webhook timestamp outside the tolerance")]
    Stale,
}

fn mac(secret: &str, timestamp: &str, body: &[u8]) -> HmacSha256 {
    let mut mac =
        HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `X-Webhook-Signature` value AgentPhone sends for this timestamp and body:
/// `"sha256=" + lowercase hex HMAC-SHA256(key = secret's UTF-8 bytes, msg = "{timestamp}.{body}")`.
pub fn sign(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let tag = mac(secret, timestamp, body).finalize().into_bytes();
    format!("{PREFIX}{}", hex::encode(tag))
}

/// Checks one delivery: headers present ([`SignatureError::Missing`]) and well formed
/// ([`SignatureError::Malformed`]; uppercase hex counts as malformed, since AgentPhone
/// sends lowercase and its SDK compares the whole string), then the signature in constant
/// time (`Mac::verify_slice`, [`SignatureError::Mismatch`]), and only then the age,
/// `|now_unix − timestamp| <= TOLERANCE_SECS` ([`SignatureError::Stale`]), so an attacker
/// learns nothing about the clock from unsigned requests.
pub fn verify(
    secret: &str,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now_unix: i64,
) -> Result<(), SignatureError> {
    let (Some(timestamp), Some(signature)) = (timestamp, signature) else {
        return Err(SignatureError::Missing);
    };
    if timestamp.is_empty() || !timestamp.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SignatureError::Malformed);
    }
    let ts: i64 = timestamp.parse().map_err(|_| SignatureError::Malformed)?;
    let hex_tag = signature
        .strip_prefix(PREFIX)
        .ok_or(SignatureError::Malformed)?;
    if hex_tag.len() != 64
        || !hex_tag
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err(SignatureError::Malformed);
    }
    let tag = hex::decode(hex_tag).map_err(|_| SignatureError::Malformed)?;
    mac(secret, timestamp, body)
        .verify_slice(&tag)
        .map_err(|_| SignatureError::Mismatch)?;
    if now_unix.abs_diff(ts) > TOLERANCE_SECS.unsigned_abs() {
        return Err(SignatureError::Stale);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test_secret";
    const TS: &str = "1700000000";
    const NOW: i64 = 1_700_000_000;
    const BODY: &[u8] =
        br#"{"event":"agent.message","channel":"sms","data":{"from":"+15551234567","message":"hi"}}"#;
    const HEADER: &str = "sha256=8b09ab48dcf61d80fdd49b10d281c229476733bdfa6e8526023ba6f054f54db5";

    fn check(
        ts: Option<&str>,
        sig: Option<&str>,
        body: &[u8],
        now: i64,
    ) -> Result<(), SignatureError> {
        verify(SECRET, ts, sig, body, now)
    }

    #[test]
    fn test_vector_signs_and_verifies() {
        assert_eq!(sign(SECRET, TS, BODY), HEADER);
        assert_eq!(check(Some(TS), Some(HEADER), BODY, NOW), Ok(()));
    }

    #[test]
    fn a_changed_byte_is_a_mismatch() {
        let mut body = BODY.to_vec();
        let i = body.iter().position(|&b| b == b'h').unwrap();
        body[i] = b'H';
        assert_eq!(
            check(Some(TS), Some(HEADER), &body, NOW),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check(Some("1700000001"), Some(HEADER), BODY, NOW),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify("whsec_test_secreT", Some(TS), Some(HEADER), BODY, NOW),
            Err(SignatureError::Mismatch)
        );
        // The prefix is part of the key: the bare secret does not verify.
        assert_eq!(
            verify("test_secret", Some(TS), Some(HEADER), BODY, NOW),
            Err(SignatureError::Mismatch)
        );
        let mut flipped = HEADER.to_string();
        flipped.replace_range(70.., "4");
        assert_eq!(
            check(Some(TS), Some(&flipped), BODY, NOW),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn the_tolerance_is_300_seconds_both_ways() {
        assert_eq!(check(Some(TS), Some(HEADER), BODY, NOW + 300), Ok(()));
        assert_eq!(check(Some(TS), Some(HEADER), BODY, NOW - 300), Ok(()));
        assert_eq!(
            check(Some(TS), Some(HEADER), BODY, NOW + 301),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            check(Some(TS), Some(HEADER), BODY, NOW - 301),
            Err(SignatureError::Stale)
        );
        // Extreme clocks do not overflow.
        assert_eq!(
            check(Some(TS), Some(HEADER), BODY, i64::MIN),
            Err(SignatureError::Stale)
        );
    }

    #[test]
    fn the_signature_is_checked_before_the_age() {
        assert_eq!(
            check(Some("1700000001"), Some(HEADER), BODY, 0),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn missing_headers() {
        assert_eq!(
            check(None, Some(HEADER), BODY, NOW),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            check(Some(TS), None, BODY, NOW),
            Err(SignatureError::Missing)
        );
        assert_eq!(check(None, None, BODY, NOW), Err(SignatureError::Missing));
    }

    #[test]
    fn malformed_headers() {
        let malformed = |ts: &str, sig: &str| {
            assert_eq!(
                check(Some(ts), Some(sig), BODY, NOW),
                Err(SignatureError::Malformed),
                "{ts} {sig}"
            );
        };
        malformed(TS, &HEADER.to_uppercase());
        malformed(TS, &format!("sha256={}", &HEADER[7..].to_uppercase()));
        malformed(TS, &HEADER[7..]);
        malformed(TS, &HEADER[..HEADER.len() - 2]);
        malformed(TS, &format!("{HEADER}00"));
        malformed(TS, &format!("{}zz", &HEADER[..HEADER.len() - 2]));
        malformed(TS, "");
        malformed(TS, &format!(" {HEADER}"));
        malformed("", HEADER);
        malformed("1700000000.5", HEADER);
        malformed("-1700000000", HEADER);
        malformed(" 1700000000", HEADER);
        malformed("2023-11-14T22:13:20Z", HEADER);
        malformed("99999999999999999999", HEADER);
    }
}
