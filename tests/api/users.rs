//! `/users`: admins manage the organization's users; a user may change their own
//! name and password; other organizations' users are invisible.

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[actix_web::test]
async fn admin_creates_users_with_hidden_password_lowercased_email_and_default_role() {
    let app = spawn_app().await;
    let (status, user) = app
        .post(
            "/users",
            json!({"email": "New.Person@Example.TEST", "password": "long-enough", "first_name": "New"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{user}");
    assert!(user["id"].is_i64(), "{user}");
    assert_eq!(user["email"], "new.person@example.test");
    assert_eq!(user["role"], "agent");
    assert_eq!(user["first_name"], "New");
    assert_eq!(user["last_name"], serde_json::Value::Null);
    assert_eq!(user["organization_id"], app.org.org_id);
    assert!(user.get("password").is_none(), "{user}");
    assert!(user.get("password_hash").is_none(), "{user}");
    let created_at = user["created_at"].as_str().expect("created_at");
    assert!(
        created_at.ends_with('Z') && created_at.len() == "2026-11-23T14:05:00.000Z".len(),
        "ISO 8601 UTC with milliseconds: {created_at}"
    );

    // The password was stored: the new user logs in (by the lowercased email).
    let token = app.login("new.person@example.test", "long-enough").await;
    let (status, me) = app
        .call(
            Method::GET,
            &format!("/users/{}", user["id"]),
            None,
            Some(&token),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me, user);

    // Find and get never show the password either.
    let (status, page) = app.get("/users").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["total"], 2);
    for u in records(&page) {
        assert!(
            u.get("password_hash").is_none() && u.get("password").is_none(),
            "{u}"
        );
    }
    let (status, err) = app.get("/users?$select[]=password_hash").await;
    assert_error(status, &err, 400, "BadRequest");
    let (status, err) = app.get("/users?password_hash=x").await;
    assert_error(status, &err, 400, "BadRequest");

    // An admin may create another admin.
    let (status, admin) = app
        .post(
            "/users",
            json!({"email": "second-admin@example.test", "password": "long-enough", "role": "admin"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{admin}");
    assert_eq!(admin["role"], "admin");
}

#[actix_web::test]
async fn invalid_user_bodies_are_bad_requests() {
    let app = spawn_app().await;
    for body in [
        json!({"email": "short@example.test", "password": "short"}),
        json!({"email": "nopass@example.test"}),
        json!({"email": "numpass@example.test", "password": 12345678}),
        json!({"email": "not-an-email", "password": "long-enough"}),
        json!({"password": "long-enough"}),
        json!({"email": "role@example.test", "password": "long-enough", "role": "owner"}),
        json!({"email": "extra@example.test", "password": "long-enough", "nope": 1}),
        json!({"email": "hash@example.test", "password": "long-enough", "password_hash": "x"}),
    ] {
        let (status, err) = app.post("/users", body.clone()).await;
        assert_error(status, &err, 400, "BadRequest");
        assert!(err["message"].is_string(), "{body}: {err}");
    }
    let (status, err) = app
        .post(
            "/users",
            json!({"email": "short@example.test", "password": "short"}),
        )
        .await;
    assert_error(status, &err, 400, "BadRequest");
    assert!(
        err["errors"]["password"].is_array(),
        "errors names the field: {err}"
    );

    let (_, page) = app.get("/users").await;
    assert_eq!(page["total"], 1, "nothing was created: {page}");
}

#[actix_web::test]
async fn a_taken_email_is_a_conflict() {
    let app = spawn_app().await;
    app.create(
        "/users",
        json!({"email": "taken@example.test", "password": "long-enough"}),
    )
    .await;
    for email in ["taken@example.test", "TAKEN@example.test"] {
        let (status, err) = app
            .post("/users", json!({"email": email, "password": "long-enough"}))
            .await;
        assert_error(status, &err, 409, "Conflict");
        assert_eq!(err["className"], "conflict");
    }
    // Also across organizations: an email names one login.
    let other = app.new_tenant("Other").await;
    let (status, err) = app
        .call_as(
            &other,
            Method::POST,
            "/users",
            Some(json!({"email": app.org.email, "password": "long-enough"})),
        )
        .await;
    assert_error(status, &err, 409, "Conflict");
    let (_, page) = app.get("/users").await;
    assert_eq!(page["total"], 2);
}

#[actix_web::test]
async fn agents_read_but_cannot_manage_users() {
    let app = spawn_app().await;
    let agent = app.new_user(&app.org, "agent").await;
    let colleague = app.new_user(&app.org, "agent").await;

    let (status, page) = app.call_as(&agent, Method::GET, "/users", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["total"], 3);
    let (status, _) = app
        .call_as(
            &agent,
            Method::GET,
            &format!("/users/{}", app.org.user_id),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let (status, err) = app
        .call_as(
            &agent,
            Method::POST,
            "/users",
            Some(json!({"email": "by-agent@example.test", "password": "long-enough"})),
        )
        .await;
    assert_error(status, &err, 403, "Forbidden");
    for id in [colleague.user_id, app.org.user_id, agent.user_id] {
        let (status, err) = app
            .call_as(&agent, Method::DELETE, &format!("/users/{id}"), None)
            .await;
        assert_error(status, &err, 403, "Forbidden");
    }
    let (status, err) = app
        .call_as(
            &agent,
            Method::PATCH,
            &format!("/users/{}", agent.user_id),
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_error(status, &err, 403, "Forbidden");
    let (status, err) = app
        .call_as(
            &agent,
            Method::PATCH,
            &format!("/users/{}", colleague.user_id),
            Some(json!({"first_name": "Hacked"})),
        )
        .await;
    assert_error(status, &err, 403, "Forbidden");
    let (status, err) = app
        .call_as(
            &agent,
            Method::PATCH,
            &format!("/users/{}", colleague.user_id),
            Some(json!({"password": "hijacked-password"})),
        )
        .await;
    assert_error(status, &err, 403, "Forbidden");

    // Nothing changed: still an agent, the colleague keeps name and password, all users exist.
    let (_, me) = app.get(&format!("/users/{}", agent.user_id)).await;
    assert_eq!(me["role"], "agent");
    let (_, them) = app.get(&format!("/users/{}", colleague.user_id)).await;
    assert_eq!(them["first_name"], "Test");
    app.login(&colleague.email, "user-password").await;
    let (_, page) = app.get("/users").await;
    assert_eq!(page["total"], 3);
    let (status, err) = app
        .call(
            Method::POST,
            "/authentication",
            Some(json!({"strategy": "local", "email": "by-agent@example.test", "password": "long-enough"})),
            None,
        )
        .await;
    assert_error(status, &err, 401, "NotAuthenticated");
}

#[actix_web::test]
async fn a_user_changes_their_own_name_and_password() {
    let app = spawn_app().await;
    let agent = app.new_user(&app.org, "agent").await;
    let path = format!("/users/{}", agent.user_id);

    let (status, me) = app
        .call_as(
            &agent,
            Method::PATCH,
            &path,
            Some(json!({"first_name": "Renamed", "last_name": "Person"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["first_name"], "Renamed");
    assert_eq!(me["last_name"], "Person");
    assert_eq!(me["role"], "agent");
    let (_, seen) = app.get(&path).await;
    assert_eq!(seen["first_name"], "Renamed");

    // Too short is refused and changes nothing.
    let (status, err) = app
        .call_as(
            &agent,
            Method::PATCH,
            &path,
            Some(json!({"password": "short"})),
        )
        .await;
    assert_error(status, &err, 400, "BadRequest");
    app.login(&agent.email, "user-password").await;

    let (status, me) = app
        .call_as(
            &agent,
            Method::PATCH,
            &path,
            Some(json!({"password": "a-new-password"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert!(
        me.get("password").is_none() && me.get("password_hash").is_none(),
        "{me}"
    );
    assert_eq!(me["first_name"], "Renamed");
    // The change revoked the agent's tokens; the new password logs in.
    let (status, err) = app.call_as(&agent, Method::GET, &path, None).await;
    assert_error(status, &err, 401, "NotAuthenticated");
    let agent = Tenant {
        token: app.login(&agent.email, "a-new-password").await,
        ..agent
    };
    let (status, err) = app
        .call(
            Method::POST,
            "/authentication",
            Some(json!({"strategy": "local", "email": agent.email, "password": "user-password"})),
            None,
        )
        .await;
    assert_error(status, &err, 401, "NotAuthenticated");
    assert_eq!(err["message"], "Invalid login");

    // The email is not patchable.
    let (status, err) = app
        .call_as(
            &agent,
            Method::PATCH,
            &path,
            Some(json!({"email": "x@example.test"})),
        )
        .await;
    assert_error(status, &err, 400, "BadRequest");
}

#[actix_web::test]
async fn admins_change_roles_and_remove_users() {
    let app = spawn_app().await;
    let agent = app.new_user(&app.org, "agent").await;
    let path = format!("/users/{}", agent.user_id);

    let (status, promoted) = app.patch(&path, json!({"role": "admin"})).await;
    assert_eq!(status, StatusCode::OK, "{promoted}");
    assert_eq!(promoted["role"], "admin");
    // The promotion revoked the existing token; a new one has the new role.
    let (status, err) = app.call_as(&agent, Method::GET, &path, None).await;
    assert_error(status, &err, 401, "NotAuthenticated");
    let agent = Tenant {
        token: app.login(&agent.email, "user-password").await,
        ..agent
    };
    let (status, created) = app
        .call_as(
            &agent,
            Method::POST,
            "/users",
            Some(json!({"email": "by-promoted@example.test", "password": "long-enough"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");

    let (status, err) = app.patch(&path, json!({"role": "owner"})).await;
    assert_error(status, &err, 400, "BadRequest");
    let (status, err) = app.patch("/users", json!({"first_name": "All"})).await;
    assert_error(status, &err, 405, "MethodNotAllowed");

    let (status, removed) = app.delete(&path).await;
    assert_eq!(status, StatusCode::OK, "{removed}");
    assert_eq!(removed["id"], agent.user_id);
    assert_eq!(removed["email"], agent.email);
    assert!(removed.get("password_hash").is_none(), "{removed}");

    let (status, err) = app.get(&path).await;
    assert_error(status, &err, 404, "NotFound");
    // A removed user can neither log in nor use an old token.
    let (status, err) = app
        .call(
            Method::POST,
            "/authentication",
            Some(json!({"strategy": "local", "email": agent.email, "password": "user-password"})),
            None,
        )
        .await;
    assert_error(status, &err, 401, "NotAuthenticated");
    let (status, err) = app.call_as(&agent, Method::GET, "/users", None).await;
    assert_error(status, &err, 401, "NotAuthenticated");

    let (_, page) = app.get("/users").await;
    assert_eq!(page["total"], 2);
}

#[actix_web::test]
async fn users_find_pages_filters_and_selects() {
    let app = spawn_app().await;
    for i in 0..3 {
        app.create(
            "/users",
            json!({"email": format!("u{i}@example.test"), "password": "long-enough", "first_name": format!("N{i}")}),
        )
        .await;
    }
    let (status, page) = app.get("/users?$limit=1000").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["limit"], 50, "clamped to the maximum");
    assert_eq!(page["total"], 4);
    let (_, page) = app.get("/users").await;
    assert_eq!(page["limit"], 10);
    assert_eq!(ids(&page).first(), Some(&app.org.user_id), "sorted by id");

    let (_, page) = app.get("/users?email=u1@example.test").await;
    assert_eq!(records(&page).len(), 1);
    assert_eq!(records(&page)[0]["first_name"], "N1");
    let (_, page) = app.get("/users?role=admin").await;
    assert_eq!(ids(&page), [app.org.user_id]);
    let (_, page) = app
        .get("/users?first_name[$in][]=N0&first_name[$in][]=N2&$select[]=first_name")
        .await;
    assert_eq!(page["total"], 2);
    for u in records(&page) {
        let mut keys: Vec<_> = u.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(keys, ["first_name", "id"]);
    }
    let (status, err) = app.get("/users?role=owner").await;
    assert_error(status, &err, 400, "BadRequest");
}

#[actix_web::test]
async fn users_of_another_organization_are_invisible() {
    let app = spawn_app().await;
    let agent = app.new_user(&app.org, "agent").await;
    let other = app.new_tenant("Other").await;
    let other_agent = app.new_user(&other, "agent").await;

    // Find only ever answers the caller's organization.
    for caller in [&other, &other_agent] {
        let (status, page) = app
            .call_as(caller, Method::GET, "/users?$limit=50", None)
            .await;
        assert_eq!(status, StatusCode::OK);
        let mut found = ids(&page);
        found.sort();
        assert_eq!(found, [other.user_id, other_agent.user_id]);
        assert!(
            records(&page)
                .iter()
                .all(|u| u["organization_id"] == other.org_id)
        );
    }
    let (_, page) = app
        .call_as(
            &other,
            Method::GET,
            &format!("/users?email={}", app.org.email),
            None,
        )
        .await;
    assert_eq!(page["total"], 0);

    // Every method on the first organization's users is a 404, even for its admin.
    for id in [app.org.user_id, agent.user_id] {
        let path = format!("/users/{id}");
        for (method, body) in [
            (Method::GET, None),
            (Method::PATCH, Some(json!({"first_name": "Stolen"}))),
            (Method::PATCH, Some(json!({"password": "stolen-password"}))),
            (Method::DELETE, None),
        ] {
            let (status, err) = app.call_as(&other, method.clone(), &path, body).await;
            assert_error(status, &err, 404, "NotFound");
            assert_eq!(
                err["message"],
                format!("No record found for id '{id}'"),
                "{method} {path}"
            );
        }
    }
    let (_, me) = app.get(&format!("/users/{}", agent.user_id)).await;
    assert_eq!(me["first_name"], "Test");
    app.login(&agent.email, "user-password").await;
    app.login(&app.org.email, "admin-password").await;

    // organization_id of another organization: 403, in a query or a body.
    let mine = app.org.org_id;
    for path in [
        format!("/users?organization_id={mine}"),
        format!(
            "/users?organization_id[$in][]={mine}&organization_id[$in][]={}",
            other.org_id
        ),
        format!("/users/{}?organization_id={mine}", other.user_id),
    ] {
        let (status, err) = app.call_as(&other, Method::GET, &path, None).await;
        assert_error(status, &err, 403, "Forbidden");
    }
    let (status, err) = app
        .call_as(
            &other,
            Method::POST,
            "/users",
            Some(json!({"email": "planted@example.test", "password": "long-enough", "organization_id": mine})),
        )
        .await;
    assert_error(status, &err, 403, "Forbidden");
    let (status, err) = app
        .call_as(
            &other,
            Method::PATCH,
            &format!("/users/{}", other_agent.user_id),
            Some(json!({"organization_id": mine})),
        )
        .await;
    assert_error(status, &err, 403, "Forbidden");
    let (_, page) = app.get("/users").await;
    assert_eq!(page["total"], 2, "nothing was planted: {page}");

    // The caller's own organization_id is accepted.
    let (status, page) = app
        .call_as(
            &other,
            Method::GET,
            &format!("/users?organization_id={}", other.org_id),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["total"], 2);
    let (status, user) = app
        .call_as(
            &other,
            Method::POST,
            "/users",
            Some(json!({"email": "own-org@example.test", "password": "long-enough", "organization_id": other.org_id})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{user}");
    assert_eq!(user["organization_id"], other.org_id);
}

/// An organization keeps at least one admin: its last admin can be neither demoted
/// nor removed (409), also when two admins demote each other at once.
#[actix_web::test]
async fn the_last_admin_stays() {
    let app = spawn_app().await;
    let me = format!("/users/{}", app.org.user_id);
    let (status, err) = app.patch(&me, json!({"role": "agent"})).await;
    assert_error(status, &err, 409, "Conflict");
    assert_eq!(err["data"]["rule"], "last_admin");
    let (status, err) = app.delete(&me).await;
    assert_error(status, &err, 409, "Conflict");
    // Two admins demoting each other at once: exactly one of them stays admin.
    for round in 0..3 {
        let a = app.new_tenant(&format!("Race{round}")).await;
        let b = app.new_user(&a, "admin").await;
        let (path_a, path_b) = (
            format!("/users/{}", a.user_id),
            format!("/users/{}", b.user_id),
        );
        let demote = json!({"role": "agent"});
        let ((sa, _), (sb, _)) = futures_util::future::join(
            app.call_as(&a, reqwest::Method::PATCH, &path_b, Some(demote.clone())),
            app.call_as(&b, reqwest::Method::PATCH, &path_a, Some(demote.clone())),
        )
        .await;
        let admins = sql_i64(
            &app,
            &format!(
                "SELECT COUNT(*) FROM users WHERE organization_id = {} AND role = 'admin'",
                a.org_id
            ),
        )
        .await;
        assert_eq!(admins, 1, "round {round}: answers {sa} and {sb}");
        // The other is refused: 409 when it saw the last admin, or 401 when the first
        // demotion had already revoked its caller's token.
        let mut answers = [sa.as_u16(), sb.as_u16()];
        answers.sort();
        assert!(
            answers == [200, 409] || answers == [200, 401],
            "round {round}: {answers:?}"
        );
    }
}
