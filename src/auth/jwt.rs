//! Access tokens as Feathers issues them: HS256, header `typ: access`, claims
//! `sub` (user id as a string), `organization_id`, `aud`, `iat`, `exp`, `jti`, and
//! `ver`, the user's token version when it was issued (see [`Claims::ver`]).
//!
//! Verification pins HS256, requires `typ: access` (what this issuer writes), the
//! audience, an unexpired `exp` and, when present, a `nbf` already reached.

use crate::feathers::FeathersError;
use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode, errors::ErrorKind,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Claims {
    pub sub: String,
    pub organization_id: i64,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    /// `users.token_version` at issue: a password change, a role change or an
    /// administrator bumps the version, which refuses every older token of the user.
    /// Absent (tokens issued before it existed, or by hand) counts as version 0.
    #[serde(default)]
    pub ver: i64,
}

/// The header `typ` this issuer writes and the verifier requires.
pub const TOKEN_TYPE: &str = "access";

/// The header `typ` of a stream token: accepted by `GET /events?token=` alone, and
/// refused as an access token (a URL ends up in logs and histories).
pub const STREAM_TOKEN_TYPE: &str = "event-stream";

/// Signs and verifies tokens with one secret.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    audience: String,
    expires_secs: i64,
}

impl JwtKeys {
    pub fn new(secret: &str, audience: &str, expires_secs: i64) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            audience: audience.to_string(),
            expires_secs,
        }
    }

    /// A new access token for a user at `token_version`; a new `jti` every time.
    pub fn issue(
        &self,
        user_id: i64,
        organization_id: i64,
        token_version: i64,
    ) -> Result<(String, Claims), FeathersError> {
        let expires_secs = self.expires_secs;
        self.issue_typed(
            TOKEN_TYPE,
            expires_secs,
            user_id,
            organization_id,
            token_version,
        )
    }

    /// A new token of type `typ` valid for `expires_secs`.
    pub fn issue_typed(
        &self,
        typ: &str,
        expires_secs: i64,
        user_id: i64,
        organization_id: i64,
        token_version: i64,
    ) -> Result<(String, Claims), FeathersError> {
        let iat = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: user_id.to_string(),
            organization_id,
            aud: self.audience.clone(),
            iat,
            exp: iat + expires_secs,
            jti: uuid::Uuid::new_v4().to_string(),
            ver: token_version,
        };
        let header = Header {
            typ: Some(typ.into()),
            ..Header::new(Algorithm::HS256)
        };
        let token =
            encode(&header, &claims, &self.encoding).map_err(|e| FeathersError::general(e))?;
        Ok((token, claims))
    }

    /// Verifies an access token's signature, type, audience, expiry and not-before;
    /// the 401 says which failed, as Feathers does.
    pub fn verify(&self, token: &str) -> Result<Claims, FeathersError> {
        self.verify_typed(token, TOKEN_TYPE)
    }

    /// [`Self::verify`] for a token of type `typ`.
    pub fn verify_typed(&self, token: &str, typ: &str) -> Result<Claims, FeathersError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "sub", "aud"]);
        validation.validate_nbf = true;
        validation.leeway = 0;
        let refused = |name: &str, message: &str| {
            FeathersError::not_authenticated(message)
                .with_data(serde_json::json!({ "name": name, "message": message }))
        };
        let data = decode::<Claims>(token, &self.decoding, &validation).map_err(|e| {
            let (name, message) = match e.kind() {
                ErrorKind::ExpiredSignature => ("TokenExpiredError", "jwt expired"),
                ErrorKind::ImmatureSignature => ("NotBeforeError", "jwt not active"),
                ErrorKind::InvalidSignature => ("JsonWebTokenError", "invalid signature"),
                ErrorKind::InvalidAudience => ("JsonWebTokenError", "jwt audience invalid"),
                _ => ("JsonWebTokenError", "jwt malformed"),
            };
            refused(name, message)
        })?;
        if data.header.typ.as_deref() != Some(typ) {
            return Err(refused("JsonWebTokenError", "invalid token type"));
        }
        Ok(data.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_fail_clearly() {
        let keys = JwtKeys::new("secret-a", "https://yourdomain.com", 60);
        let (token, claims) = keys.issue(7, 3, 2).unwrap();
        assert_eq!(keys.verify(&token).unwrap(), claims);
        assert_eq!((claims.sub.as_str(), claims.ver), ("7", 2));
        let (_, again) = keys.issue(7, 3, 2).unwrap();
        assert_ne!(claims.jti, again.jti);

        let other = JwtKeys::new("secret-b", "https://yourdomain.com", 60);
        assert_eq!(
            other.verify(&token).unwrap_err().message,
            "invalid signature"
        );
        let expired = JwtKeys::new("secret-a", "https://yourdomain.com", -10);
        let (old, _) = expired.issue(7, 3, 0).unwrap();
        assert_eq!(keys.verify(&old).unwrap_err().message, "jwt expired");
        assert_eq!(
            keys.verify("not.a.jwt").unwrap_err().message,
            "jwt malformed"
        );
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.typ.as_deref(), Some("access"));
    }

    #[test]
    fn only_access_tokens_already_valid_pass() {
        let keys = JwtKeys::new("secret-a", "https://yourdomain.com", 60);
        let (_, claims) = keys.issue(7, 3, 0).unwrap();
        let now = chrono::Utc::now().timestamp();
        let sign = |typ: Option<&str>, nbf: Option<i64>| {
            let mut value = serde_json::to_value(&claims).unwrap();
            if let Some(nbf) = nbf {
                value["nbf"] = nbf.into();
            }
            let header = Header {
                typ: typ.map(Into::into),
                ..Header::new(Algorithm::HS256)
            };
            encode(&header, &value, &EncodingKey::from_secret(b"secret-a")).unwrap()
        };
        assert!(keys.verify(&sign(Some("access"), Some(now - 1))).is_ok());
        for typ in [None, Some("refresh"), Some("JWT")] {
            let err = keys.verify(&sign(typ, None)).unwrap_err();
            assert_eq!(err.message, "invalid token type", "{typ:?}");
        }
        let err = keys
            .verify(&sign(Some("access"), Some(now + 3600)))
            .unwrap_err();
        assert_eq!(err.message, "jwt not active");
    }

    #[test]
    fn a_stream_token_is_no_access_token_and_the_reverse() {
        let keys = JwtKeys::new("secret-a", "https://yourdomain.com", 3600);
        let (stream, claims) = keys.issue_typed(STREAM_TOKEN_TYPE, 60, 7, 3, 1).unwrap();
        assert_eq!(claims.exp - claims.iat, 60);
        assert_eq!(
            keys.verify_typed(&stream, STREAM_TOKEN_TYPE).unwrap(),
            claims
        );
        assert_eq!(
            keys.verify(&stream).unwrap_err().message,
            "invalid token type"
        );
        let (access, _) = keys.issue(7, 3, 1).unwrap();
        assert_eq!(
            keys.verify_typed(&access, STREAM_TOKEN_TYPE)
                .unwrap_err()
                .message,
            "invalid token type"
        );
    }
}
