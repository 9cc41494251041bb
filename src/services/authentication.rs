//! `POST /authentication` (strategies `local` and `jwt`) and `DELETE /authentication`,
//! answering in Feathers' shape: `{accessToken, authentication: {strategy, payload}, user}`.
//!
//! A local login verifies the password off the HTTP workers, against a dummy hash
//! when the email is unknown (the time does not tell whether it exists), and is
//! throttled per email and per client address ([`crate::auth::throttle`]). Logout
//! revokes the token it is called with.

use crate::auth::{SharedAuth, bearer_token, find_user, password};
use crate::feathers::{FeathersError, Id, Params, Result, Service};
use crate::services::users::public_user;
use async_trait::async_trait;
use serde_json::{Value, json};

pub struct AuthenticationService {
    pub auth: SharedAuth,
}

impl AuthenticationService {
    async fn answer(
        &self,
        strategy: &str,
        token: String,
        claims: &crate::auth::jwt::Claims,
        user_id: i64,
    ) -> Result<Value> {
        let user = public_user(&self.auth.db, user_id).await?;
        let mut authentication = json!({ "strategy": strategy, "payload": claims });
        if strategy == "jwt" {
            authentication["accessToken"] = json!(token);
        }
        Ok(json!({ "accessToken": token, "authentication": authentication, "user": user }))
    }
}

fn text<'a>(data: &'a Value, key: &str) -> Option<&'a str> {
    data.get(key).and_then(Value::as_str)
}

#[async_trait]
impl Service for AuthenticationService {
    fn secret_fields(&self) -> &'static [&'static str] {
        &["accessToken"]
    }
    async fn create(&self, data: Value, params: &Params) -> Result<Value> {
        match text(&data, "strategy") {
            Some("local") => {
                let (Some(email), Some(pass)) = (text(&data, "email"), text(&data, "password"))
                else {
                    return Err(FeathersError::not_authenticated("Invalid login"));
                };
                let attempt = self.auth.throttle.begin(email, params.remote_addr)?;
                let user = find_user(&self.auth.db, None, Some(email)).await?;
                // Verified against a real hash even for an unknown email, so timing does not tell.
                let stored = user.as_ref().map(|u| u.password_hash.clone());
                let ok = password::verify_async(pass.to_string(), stored).await;
                match user {
                    Some(user) if ok => {
                        self.auth.throttle.succeeded(attempt);
                        let (token, claims) = self.auth.keys.issue(
                            user.id,
                            user.organization_id,
                            user.token_version,
                        )?;
                        self.answer("local", token, &claims, user.id).await
                    }
                    _ => Err(FeathersError::not_authenticated("Invalid login")),
                }
            }
            Some("jwt") => {
                let token = text(&data, "accessToken")
                    .ok_or_else(|| FeathersError::not_authenticated("No access token"))?;
                let (user, claims) = self.auth.user_for_token(token).await?;
                self.answer("jwt", token.to_string(), &claims, user.id)
                    .await
            }
            Some(_) => Err(FeathersError::not_authenticated(
                "Invalid authentication information (strategy not allowed in authStrategies)",
            )),
            None => Err(FeathersError::not_authenticated(
                "Invalid authentication information (no `strategy` set)",
            )),
        }
    }

    /// Logout: checks the header token (and the id, when given), revokes it, and answers
    /// the authentication.
    async fn remove(&self, id: Option<&Id>, params: &Params) -> Result<Value> {
        let token = bearer_token(&params.headers)
            .ok_or_else(|| FeathersError::not_authenticated("Not authenticated"))?;
        if id.is_some_and(|id| id != token) {
            return Err(FeathersError::not_authenticated("Invalid access token"));
        }
        let (user, claims) = self.auth.user_for_token(token).await?;
        let answer = self
            .answer("jwt", token.to_string(), &claims, user.id)
            .await?;
        self.auth.revoke_token(&claims).await?;
        Ok(answer)
    }
}
