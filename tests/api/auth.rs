//! Authentication as a Feathers client sees it: `POST /authentication` (local and
//! jwt), the token in `Authorization`, logout, and 401 on every protected service.

use crate::helpers::*;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use reqwest::{Method, StatusCode};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

/// The harness' JWT audience (see helpers::settings); the secret is `app.jwt_secret`.
const AUDIENCE: &str = "https://yourdomain.com";

async fn authenticate(app: &TestApp, body: Value) -> (StatusCode, Value) {
    app.call(Method::POST, "/authentication", Some(body), None)
        .await
}

/// Signs `claims` the way the server does, with `typ: access`.
fn sign(claims: &Value, secret: &[u8]) -> String {
    let header = Header {
        typ: Some("access".into()),
        ..Header::new(Algorithm::HS256)
    };
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(secret)).unwrap()
}

/// GET /users with a raw `Authorization` header value.
async fn users_with_authorization(app: &TestApp, value: &str) -> (StatusCode, Value) {
    send(
        app.client
            .get(app.url("/users"))
            .header("authorization", value),
    )
    .await
}

#[actix_web::test]
async fn local_login_answers_201_with_token_payload_and_user() {
    let app = spawn_app().await;
    let (status, body) = authenticate(
        &app,
        json!({"strategy": "local", "email": app.org.email, "password": "admin-password"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let token = body["accessToken"].as_str().expect("accessToken");
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");
    assert_eq!(body["authentication"]["strategy"], "local");
    let payload = &body["authentication"]["payload"];
    assert_eq!(
        payload["sub"],
        app.org.user_id.to_string(),
        "sub is the id as a string"
    );
    assert_eq!(payload["organization_id"], app.org.org_id);
    assert_eq!(payload["aud"], AUDIENCE);
    let iat = payload["iat"].as_i64().expect("iat");
    let exp = payload["exp"].as_i64().expect("exp");
    assert_eq!(exp - iat, 3600, "the harness' jwt_expires_secs");
    let now = chrono::Utc::now().timestamp();
    assert!((iat - now).abs() < 300, "iat is now: {iat} vs {now}");
    let jti = uuid::Uuid::parse_str(payload["jti"].as_str().expect("jti")).expect("jti is a UUID");
    assert_eq!(jti.get_version_num(), 4);
    assert!(
        payload.get("iss").is_none(),
        "no iss unless configured: {payload}"
    );

    // The token is what the payload says, signed with the server's secret, typ access.
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("access"));
    assert_eq!(header.alg, Algorithm::HS256);
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_audience(&[AUDIENCE]);
    let claims = jsonwebtoken::decode::<Value>(
        token,
        &DecodingKey::from_secret(app.jwt_secret.as_bytes()),
        &validation,
    )
    .expect("token verifies")
    .claims;
    assert_eq!(&claims, payload);

    let user = &body["user"];
    assert_eq!(user["id"], app.org.user_id);
    assert_eq!(user["email"], app.org.email);
    assert_eq!(user["organization_id"], app.org.org_id);
    assert_eq!(user["role"], "admin");
    assert!(user.get("password").is_none(), "{user}");
    assert!(user.get("password_hash").is_none(), "{user}");

    // The token works, and each login mints a new jti.
    let (status, _) = app.call(Method::GET, "/users", None, Some(token)).await;
    assert_eq!(status, StatusCode::OK);
    let (_, again) = authenticate(
        &app,
        json!({"strategy": "local", "email": app.org.email, "password": "admin-password"}),
    )
    .await;
    assert_ne!(again["authentication"]["payload"]["jti"], payload["jti"]);
}

#[actix_web::test]
async fn bad_credentials_are_invalid_login() {
    let app = spawn_app().await;
    for body in [
        json!({"strategy": "local", "email": app.org.email, "password": "wrong-password"}),
        json!({"strategy": "local", "email": "nobody@example.test", "password": "admin-password"}),
        json!({"strategy": "local", "email": app.org.email}),
        json!({"strategy": "local", "password": "admin-password"}),
        json!({"strategy": "local", "email": app.org.email, "password": ""}),
    ] {
        let (status, err) = authenticate(&app, body.clone()).await;
        assert_error(status, &err, 401, "NotAuthenticated");
        assert_eq!(err["message"], "Invalid login", "{body}");
        assert!(err.get("accessToken").is_none());
    }
}

#[actix_web::test]
async fn a_missing_or_unknown_strategy_is_refused() {
    let app = spawn_app().await;
    let (status, err) = authenticate(
        &app,
        json!({"email": app.org.email, "password": "admin-password"}),
    )
    .await;
    assert_error(status, &err, 401, "NotAuthenticated");
    assert_eq!(
        err["message"],
        "Invalid authentication information (no `strategy` set)"
    );
    for strategy in ["oauth", "api-key", "LOCAL"] {
        let (status, err) = authenticate(
            &app,
            json!({"strategy": strategy, "email": app.org.email, "password": "admin-password"}),
        )
        .await;
        assert_error(status, &err, 401, "NotAuthenticated");
        assert_eq!(
            err["message"],
            "Invalid authentication information (strategy not allowed in authStrategies)",
            "{strategy}"
        );
    }
}

#[actix_web::test]
async fn jwt_strategy_echoes_the_same_token() {
    let app = spawn_app().await;
    let token = app.org.token.clone();
    let (status, body) = authenticate(&app, json!({"strategy": "jwt", "accessToken": token})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["accessToken"], token, "no new token is minted");
    assert_eq!(body["authentication"]["strategy"], "jwt");
    assert_eq!(body["authentication"]["accessToken"], token);
    assert_eq!(
        body["authentication"]["payload"]["sub"],
        app.org.user_id.to_string()
    );
    assert_eq!(body["user"]["id"], app.org.user_id);
    assert!(body["user"].get("password_hash").is_none());

    for bad in ["not-a-token", "a.b.c", ""] {
        let (status, err) =
            authenticate(&app, json!({"strategy": "jwt", "accessToken": bad})).await;
        assert_error(status, &err, 401, "NotAuthenticated");
    }
    let (status, err) = authenticate(&app, json!({"strategy": "jwt"})).await;
    assert_error(status, &err, 401, "NotAuthenticated");
}

#[actix_web::test]
async fn authorization_accepts_bearer_jwt_and_a_bare_token_only() {
    let app = spawn_app().await;
    let token = &app.org.token;
    for value in [
        format!("Bearer {token}"),
        format!("bearer {token}"),
        format!("JWT {token}"),
        format!("jwt {token}"),
        token.clone(),
    ] {
        let (status, body) = users_with_authorization(&app, &value).await;
        assert_eq!(status, StatusCode::OK, "{value}: {body}");
        assert_eq!(ids(&body), [app.org.user_id]);
    }
    for value in [format!("Basic {token}"), "Basic x".to_string()] {
        let (status, err) = users_with_authorization(&app, &value).await;
        assert_error(status, &err, 401, "NotAuthenticated");
        assert_eq!(err["message"], "Not authenticated");
    }
    let (status, err) = send(app.client.get(app.url("/users"))).await;
    assert_error(status, &err, 401, "NotAuthenticated");
    assert_eq!(err["message"], "Not authenticated");
}

#[actix_web::test]
async fn invalid_tokens_are_401() {
    let app = spawn_app().await;
    let second = app.login(&app.org.email, "admin-password").await;
    let other = app.new_tenant("Other").await;
    let token = &app.org.token;
    let (head_payload, _) = token.rsplit_once('.').unwrap();
    let (_, other_signature) = other.token.rsplit_once('.').unwrap();
    let (_, second_signature) = second.rsplit_once('.').unwrap();
    assert_ne!(second_signature, token.rsplit_once('.').unwrap().1);

    // A token whose signature belongs to another payload.
    for tampered in [
        format!("{head_payload}.{other_signature}"),
        format!("{head_payload}.{second_signature}"),
    ] {
        let (status, err) = users_with_authorization(&app, &format!("Bearer {tampered}")).await;
        assert_error(status, &err, 401, "NotAuthenticated");
        assert_eq!(err["message"], "invalid signature");
        assert_eq!(err["data"]["name"], "JsonWebTokenError");
    }

    let now = chrono::Utc::now().timestamp();
    let claims = |iat: i64, exp: i64, aud: &str, sub: String, org: i64| {
        json!({"sub": sub, "organization_id": org, "aud": aud, "iat": iat, "exp": exp,
               "jti": uuid::Uuid::new_v4().to_string()})
    };
    let me = app.org.user_id.to_string();
    let org = app.org.org_id;
    let secret = app.jwt_secret.as_bytes();

    // A well-signed token works; the same claims expired, for another audience,
    // another secret, or a user of another organization do not.
    let good = sign(&claims(now, now + 600, AUDIENCE, me.clone(), org), secret);
    let (status, _) = users_with_authorization(&app, &format!("Bearer {good}")).await;
    assert_eq!(status, StatusCode::OK);

    let expired = sign(
        &claims(now - 7200, now - 3600, AUDIENCE, me.clone(), org),
        secret,
    );
    let (status, err) = users_with_authorization(&app, &format!("Bearer {expired}")).await;
    assert_error(status, &err, 401, "NotAuthenticated");
    assert_eq!(err["message"], "jwt expired");
    assert_eq!(err["data"]["name"], "TokenExpiredError");

    let cases = [
        sign(
            &claims(now, now + 600, "https://elsewhere.example", me.clone(), org),
            secret,
        ),
        sign(
            &claims(now, now + 600, AUDIENCE, me.clone(), org),
            b"another-secret",
        ),
        sign(
            &claims(now, now + 600, AUDIENCE, me.clone(), other.org_id),
            secret,
        ),
        sign(
            &claims(now, now + 600, AUDIENCE, "999999".into(), org),
            secret,
        ),
        "garbage".to_string(),
    ];
    for bad in cases {
        let (status, err) = users_with_authorization(&app, &format!("Bearer {bad}")).await;
        assert_error(status, &err, 401, "NotAuthenticated");
        // The jwt strategy refuses it too.
        let (status, err) =
            authenticate(&app, json!({"strategy": "jwt", "accessToken": bad})).await;
        assert_error(status, &err, 401, "NotAuthenticated");
    }
}

#[actix_web::test]
async fn logout_checks_the_token() {
    let app = spawn_app().await;
    let token = app.org.token.clone();
    let other = app.login(&app.org.email, "admin-password").await;
    assert_ne!(token, other);

    let (status, body) = app
        .call(Method::DELETE, "/authentication", None, Some(&token))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["accessToken"], token);
    assert_eq!(body["authentication"]["strategy"], "jwt");
    assert_eq!(body["user"]["id"], app.org.user_id);
    assert!(body["user"].get("password_hash").is_none());

    // The id, when given, must be the header's token.
    let (status, err) = app
        .call(
            Method::DELETE,
            &format!("/authentication/{token}"),
            None,
            Some(&other),
        )
        .await;
    assert_error(status, &err, 401, "NotAuthenticated");
    assert_eq!(err["message"], "Invalid access token");

    let (status, body) = app
        .call(
            Method::DELETE,
            &format!("/authentication/{other}"),
            None,
            Some(&other),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["accessToken"], other);

    let (status, err) = app
        .call(Method::DELETE, "/authentication", None, None)
        .await;
    assert_error(status, &err, 401, "NotAuthenticated");
}

#[actix_web::test]
async fn health_endpoints_need_no_auth() {
    let app = spawn_app().await;
    for path in ["/healthz", "/readyz"] {
        let (status, body) = send(app.client.get(app.url(path))).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        assert_eq!(body["status"], "ok");
    }
}

#[actix_web::test]
async fn every_service_but_authentication_needs_credentials() {
    let app = spawn_app().await;
    let person = app.create("/people", json!({"name": "Private"})).await;
    let id = person["id"].as_i64().unwrap();
    let services = [
        "users",
        "api-keys",
        "people",
        "people-multi",
        "people-p1",
        "people-p3",
        "people-p10",
    ];
    for service in services {
        let calls = [
            (Method::GET, format!("/{service}"), None),
            (Method::GET, format!("/{service}/{id}"), None),
            (
                Method::POST,
                format!("/{service}"),
                Some(json!({"name": "x"})),
            ),
            (
                Method::PUT,
                format!("/{service}/{id}"),
                Some(json!({"name": "x"})),
            ),
            (
                Method::PATCH,
                format!("/{service}/{id}"),
                Some(json!({"name": "x"})),
            ),
            (
                Method::PATCH,
                format!("/{service}"),
                Some(json!({"name": "x"})),
            ),
            (Method::DELETE, format!("/{service}/{id}"), None),
            (Method::DELETE, format!("/{service}"), None),
        ];
        for (method, path, body) in calls {
            let (status, err) = app.call(method.clone(), &path, body, None).await;
            assert_error(status, &err, 401, "NotAuthenticated");
            assert_eq!(err["message"], "Not authenticated", "{method} {path}");
        }
    }
    // Nothing happened to the data.
    let (status, all) = app.get("/people").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(all, json!([person]));

    // /authentication itself is public: its refusals are about the method or the body.
    let (status, err) = app.call(Method::GET, "/authentication", None, None).await;
    assert_error(status, &err, 405, "MethodNotAllowed");
    assert_eq!(
        err["message"],
        "Method `find` is not supported by this endpoint."
    );
}

#[actix_web::test]
async fn postgres_connections_plan_each_statement_once() {
    let app = spawn_app().await;
    if app.db.get_database_backend() != sea_orm::DbBackend::Postgres {
        return; // SQLite prepares and plans each statement once anyway.
    }
    let row = app
        .db
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SHOW plan_cache_mode",
        ))
        .await
        .unwrap()
        .unwrap();
    let mode: String = row.try_get_by_index(0).unwrap();
    assert_eq!(mode, "force_generic_plan");
}
