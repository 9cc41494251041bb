//! Authentication hardening: no public secret (a short one refuses to start, a
//! missing one is generated privately and kept), logins that neither tell which
//! emails exist nor can be guessed at will, revocable tokens (logout, password and
//! role change, removal), strict token checks (`typ`, `nbf`), and a local login that
//! ignores a stale `Authorization` header.

use crate::helpers::*;
use inbox_gateway::app::Application;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

async fn local_login(app: &TestApp, email: &str, password: &str) -> (StatusCode, Value) {
    app.call(
        Method::POST,
        "/authentication",
        Some(json!({"strategy": "local", "email": email, "password": password})),
        None,
    )
    .await
}

/// `GET /users` with `token`: 200 while it is valid.
async fn users_status(app: &TestApp, token: &str) -> StatusCode {
    app.call(Method::GET, "/users", None, Some(token)).await.0
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

#[actix_web::test]
async fn an_unknown_email_takes_as_long_as_a_wrong_password() {
    let app = spawn_app().await;
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for i in 0..5 {
        let started = Instant::now();
        let (status, _) = local_login(&app, &app.org.email, "wrong-password").await;
        known.push(started.elapsed());
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let started = Instant::now();
        let (status, body) =
            local_login(&app, &format!("nobody-{i}@example.test"), "wrong-password").await;
        unknown.push(started.elapsed());
        assert_error(status, &body, 401, "NotAuthenticated");
        assert_eq!(body["message"], "Invalid login");
    }
    let (known, unknown) = (median(known), median(unknown));
    assert!(
        unknown * 2 >= known,
        "an unknown email answers too fast: {unknown:?} vs {known:?} for a known one"
    );
}

#[actix_web::test]
async fn failed_logins_are_throttled_per_email() {
    let app = spawn_app_with(|s| s.login_failures_per_email = 3).await;
    let agent = app.new_user(&app.org, "agent").await;
    // Successful logins do not count.
    for _ in 0..4 {
        app.login(&app.org.email, "admin-password").await;
    }
    for _ in 0..3 {
        let (status, body) = local_login(&app, &app.org.email, "wrong-password").await;
        assert_error(status, &body, 401, "NotAuthenticated");
    }
    for password in ["wrong-password", "admin-password"] {
        let res = app
            .client
            .post(app.url("/authentication"))
            .json(&json!({"strategy": "local", "email": app.org.email, "password": password}))
            .send()
            .await
            .unwrap();
        let status = res.status();
        let retry_after: u64 = res
            .headers()
            .get("retry-after")
            .expect("a Retry-After header")
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let body: Value = res.json().await.unwrap();
        assert_error(status, &body, 429, "TooManyRequests");
        assert!((1..=900).contains(&retry_after), "{retry_after}");
        assert_eq!(body["data"]["retryAfter"], retry_after);
    }
    // The email's case does not get around it; another email is not blocked.
    let (status, _) = local_login(&app, &app.org.email.to_uppercase(), "x").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    app.login(&agent.email, "user-password").await;
}

#[actix_web::test]
async fn failed_logins_are_throttled_per_client_address() {
    let app = spawn_app_with(|s| {
        s.login_failures_per_email = 100;
        s.login_failures_per_address = 3;
    })
    .await;
    for i in 0..3 {
        let (status, _) = local_login(&app, &format!("guess-{i}@example.test"), "x").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, body) = local_login(&app, &app.org.email, "admin-password").await;
    assert_error(status, &body, 429, "TooManyRequests");
}

#[actix_web::test]
async fn logout_revokes_that_token_only() {
    let app = spawn_app().await;
    let token = app.org.token.clone();
    let other = app.login(&app.org.email, "admin-password").await;
    let (status, body) = app
        .call(Method::DELETE, "/authentication", None, Some(&token))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let (status, err) = app.call(Method::GET, "/users", None, Some(&token)).await;
    assert_error(status, &err, 401, "NotAuthenticated");
    assert_eq!(err["message"], "The access token has been revoked");
    let (status, err) = app
        .call(
            Method::POST,
            "/authentication",
            Some(json!({"strategy": "jwt", "accessToken": token})),
            None,
        )
        .await;
    assert_error(status, &err, 401, "NotAuthenticated");
    let (status, err) = app
        .call(Method::DELETE, "/authentication", None, Some(&token))
        .await;
    assert_error(status, &err, 401, "NotAuthenticated");

    assert_eq!(users_status(&app, &other).await, StatusCode::OK);
}

#[actix_web::test]
async fn a_password_change_revokes_the_users_tokens() {
    let app = spawn_app().await;
    let agent = app.new_user(&app.org, "agent").await;
    let second = app.login(&agent.email, "user-password").await;
    let (status, body) = app
        .call(
            Method::PATCH,
            &format!("/users/{}", agent.user_id),
            Some(json!({"password": "new-password"})),
            Some(&agent.token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for old in [&agent.token, &second] {
        assert_eq!(users_status(&app, old).await, StatusCode::UNAUTHORIZED);
    }
    // A token issued right after the change (in the same second) works.
    let (status, _) = local_login(&app, &agent.email, "user-password").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let fresh = app.login(&agent.email, "new-password").await;
    assert_eq!(users_status(&app, &fresh).await, StatusCode::OK);
    // Nobody else's tokens are touched.
    assert_eq!(users_status(&app, &app.org.token).await, StatusCode::OK);
}

#[actix_web::test]
async fn a_role_change_revokes_the_users_tokens() {
    let app = spawn_app().await;
    let agent = app.new_user(&app.org, "agent").await;
    let path = format!("/users/{}", agent.user_id);
    // Patches that change no role (the same role, a name) leave the tokens alone.
    patch_ok(&app, &path, json!({"role": "agent", "first_name": "Same"})).await;
    assert_eq!(users_status(&app, &agent.token).await, StatusCode::OK);

    patch_ok(&app, &path, json!({"role": "admin"})).await;
    assert_eq!(
        users_status(&app, &agent.token).await,
        StatusCode::UNAUTHORIZED
    );
    let token = app.login(&agent.email, "user-password").await;
    let (status, me) = app.call(Method::GET, &path, None, Some(&token)).await;
    assert_eq!(
        (status, me["role"].clone()),
        (StatusCode::OK, json!("admin"))
    );
}

#[actix_web::test]
async fn a_removed_users_tokens_are_refused() {
    let app = spawn_app().await;
    let agent = app.new_user(&app.org, "agent").await;
    assert_eq!(users_status(&app, &agent.token).await, StatusCode::OK);
    let (status, body) = app.delete(&format!("/users/{}", agent.user_id)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, err) = app
        .call(Method::GET, "/users", None, Some(&agent.token))
        .await;
    assert_error(status, &err, 401, "NotAuthenticated");
}

#[actix_web::test]
async fn tokens_of_another_type_or_not_yet_valid_are_refused() {
    let app = spawn_app().await;
    let now = chrono::Utc::now().timestamp();
    let sign = |typ: Option<&str>, nbf: Option<i64>| {
        let mut claims = json!({
            "sub": app.org.user_id.to_string(), "organization_id": app.org.org_id,
            "aud": "https://yourdomain.com", "iat": now, "exp": now + 600,
            "jti": uuid::Uuid::new_v4().to_string(),
        });
        if let Some(nbf) = nbf {
            claims["nbf"] = nbf.into();
        }
        let header = Header {
            typ: typ.map(Into::into),
            ..Header::new(Algorithm::HS256)
        };
        let key = EncodingKey::from_secret(app.jwt_secret.as_bytes());
        jsonwebtoken::encode(&header, &claims, &key).unwrap()
    };
    let good = sign(Some("access"), Some(now - 10));
    assert_eq!(users_status(&app, &good).await, StatusCode::OK);
    for (token, message) in [
        (sign(Some("refresh"), None), "invalid token type"),
        (sign(None, None), "invalid token type"),
        (sign(Some("JWT"), None), "invalid token type"),
        (sign(Some("access"), Some(now + 3600)), "jwt not active"),
    ] {
        let (status, err) = app.call(Method::GET, "/users", None, Some(&token)).await;
        assert_error(status, &err, 401, "NotAuthenticated");
        assert_eq!(err["message"], message);
    }
}

#[actix_web::test]
async fn a_local_login_ignores_a_stale_authorization_header() {
    let app = spawn_app().await;
    let revoked = app.login(&app.org.email, "admin-password").await;
    app.call(Method::DELETE, "/authentication", None, Some(&revoked))
        .await;
    for header in [
        "Bearer garbage".to_string(),
        format!("Bearer {revoked}"),
        "Basic Zm9vOmJhcg==".to_string(),
    ] {
        let (status, body) = send(
            app.client
                .post(app.url("/authentication"))
                .header("authorization", &header)
                .json(&json!({"strategy": "local", "email": app.org.email, "password": "admin-password"})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{header}: {body}");
        assert!(body["accessToken"].is_string());
    }
    // A bad API key is no credential either on the public path, but stays a 401 elsewhere.
    let (status, _) = send(
        app.client
            .post(app.url("/authentication"))
            .header("x-api-key", "igk_nope")
            .json(
                &json!({"strategy": "local", "email": app.org.email, "password": "admin-password"}),
            ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, err) = send(
        app.client
            .get(app.url("/users"))
            .header("authorization", "Bearer garbage"),
    )
    .await;
    assert_error(status, &err, 401, "NotAuthenticated");
}

#[actix_web::test]
async fn a_short_configured_secret_refuses_to_start() {
    let url = fresh_database().await;
    for short in ["dev-secret-change-me", "test-secret", ""] {
        let mut s = settings(&url);
        s.jwt_secret = Some(short.into());
        let err = Application::build(&s)
            .await
            .err()
            .expect("refuses to start")
            .to_string();
        assert!(err.contains("JWT_SECRET") && err.contains("32"), "{err}");
    }
}

#[cfg(unix)]
#[actix_web::test]
async fn a_generated_secret_is_private_and_reused_on_the_next_start() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("data-{}", uuid::Uuid::new_v4().simple()));
    let data_dir = dir.display().to_string();
    let app = spawn_app_with(|s| {
        s.jwt_secret = None;
        s.data_dir = Some(data_dir.clone());
    })
    .await;
    let file = dir.join(inbox_gateway::config::JWT_SECRET_FILE);
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{mode:o}");
    let kept = std::fs::read_to_string(&file).unwrap();
    assert_eq!(kept.trim(), app.jwt_secret);
    assert!(app.jwt_secret.len() >= 32);

    // The next start (here a second instance on the same data) reuses it: the first
    // one's tokens are valid there.
    let mut s = settings(&app.database_url);
    s.jwt_secret = None;
    s.data_dir = Some(data_dir);
    let again = Application::build(&s).await.expect("starts again");
    let base = format!("http://127.0.0.1:{}", again.port());
    actix_web::rt::spawn(again.run_until_stopped());
    let res = app
        .client
        .get(format!("{base}/users"))
        .bearer_auth(&app.org.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), kept);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Revocation lives in the database: a token logged out, or made stale by a password
/// change, through one instance is refused by another instance on the same database
/// (one that has not cached it; a caching instance follows within its 5 s).
#[actix_web::test]
async fn revocation_holds_on_another_instance() {
    let app = spawn_app().await;
    let mut second = settings(&app.database_url);
    second.jwt_secret = Some(app.jwt_secret.clone());
    let second = Application::build(&second).await.expect("second instance");
    let second_base = format!("http://127.0.0.1:{}", second.port());
    actix_web::rt::spawn(second.run_until_stopped());
    let on_second = |token: String| {
        let (client, base) = (app.client.clone(), second_base.clone());
        async move {
            let res = client
                .get(format!("{base}/users"))
                .bearer_auth(token)
                .send()
                .await
                .expect("sent");
            res.status()
        }
    };
    let logged_out = app.login(&app.org.email, "admin-password").await;
    let agent = app.new_user(&app.org, "agent").await;
    let (status, _) = app
        .call(Method::DELETE, "/authentication", None, Some(&logged_out))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .call(
            Method::PATCH,
            &format!("/users/{}", agent.user_id),
            Some(json!({"password": "a-new-password"})),
            Some(&agent.token),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(on_second(logged_out).await, StatusCode::UNAUTHORIZED);
    assert_eq!(on_second(agent.token).await, StatusCode::UNAUTHORIZED);
    assert_eq!(on_second(app.org.token.clone()).await, StatusCode::OK);
}
