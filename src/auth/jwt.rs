//! Access tokens as Feathers issues them: HS256, header `typ: access`, claims
//! `sub` (user id as a string), `organization_id`, `aud`, `iat`, `exp`, `jti`.

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
}

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

    /// A new token for a user; a new `jti` every time.
    pub fn issue(
        &self,
        user_id: i64,
        organization_id: i64,
    ) -> Result<(String, Claims), FeathersError> {
        let iat = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: user_id.to_string(),
            organization_id,
            aud: self.audience.clone(),
            iat,
            exp: iat + self.expires_secs,
            jti: uuid::Uuid::new_v4().to_string(),
        };
        let header = Header {
            typ: Some("access".into()),
            ..Header::new(Algorithm::HS256)
        };
        let token = encode(&header, &claims, &self.encoding).map_err(FeathersError::general)?;
        Ok((token, claims))
    }

    /// Verifies signature, audience and expiry; the 401 says which failed, as Feathers does.
    pub fn verify(&self, token: &str) -> Result<Claims, FeathersError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "sub", "aud"]);
        validation.leeway = 0;
        decode::<Claims>(token, &self.decoding, &validation)
            .map(|d| d.claims)
            .map_err(|e| {
                let (name, message) = match e.kind() {
                    ErrorKind::ExpiredSignature => ("TokenExpiredError", "jwt expired"),
                    ErrorKind::InvalidSignature => ("JsonWebTokenError", "invalid signature"),
                    ErrorKind::InvalidAudience => ("JsonWebTokenError", "jwt audience invalid"),
                    _ => ("JsonWebTokenError", "jwt malformed"),
                };
                FeathersError::not_authenticated(message)
                    .with_data(serde_json::json!({ "name": name, "message": message }))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_fail_clearly() {
        let keys = JwtKeys::new("secret-a", "https://yourdomain.com", 60);
        let (token, claims) = keys.issue(7, 3).unwrap();
        assert_eq!(keys.verify(&token).unwrap(), claims);
        assert_eq!(claims.sub, "7");
        let (_, again) = keys.issue(7, 3).unwrap();
        assert_ne!(claims.jti, again.jti);

        let other = JwtKeys::new("secret-b", "https://yourdomain.com", 60);
        assert_eq!(
            other.verify(&token).unwrap_err().message,
            "invalid signature"
        );
        let expired = JwtKeys::new("secret-a", "https://yourdomain.com", -10);
        let (old, _) = expired.issue(7, 3).unwrap();
        assert_eq!(keys.verify(&old).unwrap_err().message, "jwt expired");
        assert_eq!(
            keys.verify("not.a.jwt").unwrap_err().message,
            "jwt malformed"
        );
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.typ.as_deref(), Some("access"));
    }
}
