//! The per-organization request limit: once an organization has made its requests
//! for the window, every caller of it gets 429 TooManyRequests with `Retry-After`;
//! other organizations and logging in are not affected.

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::Value;

#[actix_web::test]
async fn an_organization_over_its_limit_is_refused_with_retry_after() {
    let app = spawn_app_with(|s| s.rate_limit_requests = 4).await;
    let other = app.new_tenant("Other").await;
    // Creating the agent is the organization's first request (logging in is not counted).
    let agent = app.new_user(&app.org, "agent").await;
    assert_eq!(app.get("/users").await.0, StatusCode::OK);
    let (status, _) = app
        .call_as(&agent, Method::GET, "/conversations", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(app.get("/contacts").await.0, StatusCode::OK);

    let res = app.request(Method::GET, "/users").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let err: Value = res.json().await.unwrap();
    assert_error(StatusCode::TOO_MANY_REQUESTS, &err, 429, "TooManyRequests");
    assert_eq!(err["data"]["limit"], 4);
    assert_eq!(err["data"]["current"], 4);
    assert_eq!(err["data"]["window"], 3600);
    assert_eq!(err["data"]["retryAfter"], retry_after);
    assert!(retry_after > 0 && retry_after <= 2 * 3600, "{retry_after}");

    // Every caller of the organization shares the count; refusals are not counted.
    let (status, err) = app
        .call_as(&agent, Method::GET, "/conversations", None)
        .await;
    assert_error(status, &err, 429, "TooManyRequests");
    assert_eq!(err["data"]["current"], 4);
    // Another organization has its own; logging in still works.
    let (status, _) = app.call_as(&other, Method::GET, "/users", None).await;
    assert_eq!(status, StatusCode::OK);
    app.login(&agent.email, "user-password").await;
}

#[actix_web::test]
async fn zero_turns_the_limit_off() {
    let app = spawn_app_with(|s| s.rate_limit_requests = 0).await;
    for _ in 0..20 {
        assert_eq!(app.get("/users").await.0, StatusCode::OK);
    }
}
