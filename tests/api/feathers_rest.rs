//! Feathers REST semantics over the fixture services `/people`, `/people-multi`,
//! `/people-p1` `{1, max 2}`, `/people-p3` `{3}` and `/people-p10` `{10, max 100}`
//! (one table; fields `name` string, `age` number, `created` boolean).

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The `name`s of a find answer, in order.
fn names(body: &Value) -> Vec<String> {
    records(body)
        .iter()
        .map(|r| r["name"].as_str().unwrap_or("<null>").to_string())
        .collect()
}

/// The `name`s of a find answer, sorted (for filters, where order is not the point).
fn name_set(body: &Value) -> Vec<String> {
    let mut n = names(body);
    n.sort();
    n
}

/// The keys of a record, sorted.
fn keys(record: &Value) -> Vec<String> {
    let mut k: Vec<String> = record
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {record}"))
        .keys()
        .cloned()
        .collect();
    k.sort();
    k
}

/// Finds on `path` as the first organization's admin, asserting 200.
async fn find(app: &TestApp, path: &str) -> Value {
    let (status, body) = app.get(path).await;
    assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
    body
}

/// Alice 20, Bob 30 (created), Carol 40 (created), Dave 50, Eve 30 (created).
async fn seed(app: &TestApp) -> Vec<Value> {
    let mut out = Vec::new();
    for (name, age, created) in [
        ("Alice", 20, false),
        ("Bob", 30, true),
        ("Carol", 40, true),
        ("Dave", 50, false),
        ("Eve", 30, true),
    ] {
        out.push(
            app.create(
                "/people",
                json!({"name": name, "age": age, "created": created}),
            )
            .await,
        );
    }
    out
}

fn id_of(record: &Value) -> i64 {
    record["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("id is not a number: {record}"))
}

#[actix_web::test]
async fn unknown_path_is_a_feathers_404() {
    let app = spawn_app().await;
    let (status, body) = app.get("/nope").await;
    assert_error(status, &body, 404, "NotFound");
    assert_eq!(body["message"], "Path /nope not found");
    assert_eq!(body["className"], "not-found");

    let (status, body) = app.get("/people/1/extra").await;
    assert_error(status, &body, 404, "NotFound");
    assert_eq!(body["message"], "Path /people/1/extra not found");
}

#[actix_web::test]
async fn create_answers_201_and_find_pages_are_clamped() {
    let app = spawn_app().await;
    for i in 0..5 {
        app.create("/people", json!({"name": format!("p{i}"), "age": i}))
            .await;
    }
    let (status, page) = app.get("/people-p1?$limit=4").await;
    assert_eq!(status, 200);
    assert_eq!(page["limit"], 2);
    assert_eq!(page["total"], 5);
    assert_eq!(page["data"].as_array().unwrap().len(), 2);
}

#[actix_web::test]
async fn status_codes_follow_feathers() {
    let app = spawn_app().await;

    let (status, created) = app
        .post(
            "/people",
            json!({"name": "Doug", "age": 32, "created": false}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert!(created["id"].is_i64(), "id is a JSON number: {created}");
    assert_eq!(created["name"], "Doug");
    assert_eq!(created["age"], 32);
    assert_eq!(created["created"], false);
    let id = id_of(&created);

    let (status, got) = app.get(&format!("/people/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got, created);

    let (status, patched) = app
        .patch(&format!("/people/{id}"), json!({"age": 33}))
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["age"], 33);
    assert_eq!(patched["name"], "Doug", "patch merges");

    let (status, replaced) = app
        .put(&format!("/people/{id}"), json!({"name": "Douglas"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{replaced}");
    assert_eq!(replaced["name"], "Douglas");
    assert_eq!(replaced["age"], Value::Null, "update replaces the record");
    assert_eq!(replaced["id"], id, "the id comes from the URL");

    let (status, removed) = app.delete(&format!("/people/{id}")).await;
    assert_eq!(status, StatusCode::OK, "remove answers 200 with the record");
    assert_eq!(removed, replaced);

    let (status, body) = app.get(&format!("/people/{id}")).await;
    assert_error(status, &body, 404, "NotFound");
    assert_eq!(body["message"], format!("No record found for id '{id}'"));

    // Empty results are still 200 with a body, never 204.
    let (status, body) = app.get("/people").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!([]));
    let (status, body) = app.delete("/people-multi?name=nobody").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!([]));
    let (status, body) = app
        .patch("/people-multi?name=nobody", json!({"age": 1}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!([]));
}

#[actix_web::test]
async fn multi_create_answers_201_with_an_array_in_order() {
    let app = spawn_app().await;
    let (status, body) = app
        .post(
            "/people-multi",
            json!([{"name": "Gerald", "age": 18}, {"name": "Herald", "age": 18}]),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(names(&body), ["Gerald", "Herald"]);
    let got = find(&app, "/people?$sort[id]=1").await;
    assert_eq!(ids(&got), ids(&body), "both are stored");

    let (status, body) = app.post("/people-multi", json!([])).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(body, json!([]));
}

#[actix_web::test]
async fn multi_methods_on_a_single_service_are_405_with_feathers_messages() {
    let app = spawn_app().await;
    seed(&app).await;

    let (status, body) = app
        .post("/people", json!([{"name": "X"}, {"name": "Y"}]))
        .await;
    assert_error(status, &body, 405, "MethodNotAllowed");
    assert_eq!(body["message"], "Can not create multiple entries");
    let (status, body) = app.post("/people", json!([])).await;
    assert_error(status, &body, 405, "MethodNotAllowed");
    assert_eq!(body["message"], "Can not create multiple entries");

    let (status, body) = app.patch("/people?created=true", json!({"age": 1})).await;
    assert_error(status, &body, 405, "MethodNotAllowed");
    assert_eq!(body["message"], "Can not patch multiple entries");

    let (status, body) = app.delete("/people?created=true").await;
    assert_error(status, &body, 405, "MethodNotAllowed");
    assert_eq!(body["message"], "Can not remove multiple entries");
    let (status, body) = app.delete("/people").await;
    assert_error(status, &body, 405, "MethodNotAllowed");
    assert_eq!(body["message"], "Can not remove multiple entries");

    // Nothing was written or removed.
    let all = find(&app, "/people").await;
    assert_eq!(names(&all), ["Alice", "Bob", "Carol", "Dave", "Eve"]);
    assert!(records(&all).iter().all(|r| r["age"] != 1));
}

#[actix_web::test]
async fn put_without_an_id_is_a_bad_request() {
    let app = spawn_app().await;
    seed(&app).await;
    for path in ["/people", "/people-multi"] {
        let (status, body) = app.put(path, json!({"name": "Everyone"})).await;
        assert_error(status, &body, 400, "BadRequest");
        assert_eq!(
            body["message"],
            "You can not replace multiple instances. Did you mean 'patch'?"
        );
    }
    let all = find(&app, "/people").await;
    assert!(!names(&all).contains(&"Everyone".to_string()));
}

#[actix_web::test]
async fn multi_patch_and_remove_touch_every_match_and_ignore_pagination() {
    let app = spawn_app().await;
    seed(&app).await;
    for i in 0..4 {
        app.create(
            "/people",
            json!({"name": format!("Extra{i}"), "age": 60, "created": true}),
        )
        .await;
    }
    // 7 created rows; /people-p1 pages by 1 (max 2) but multi patch must see all of them.
    let (status, patched) = app
        .patch(
            "/people-p1?created=true&$limit=1",
            json!({"created": false, "age": 99}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    let patched = patched.as_array().expect("multi patch answers an array");
    assert_eq!(patched.len(), 7);
    assert!(
        patched
            .iter()
            .all(|r| r["created"] == false && r["age"] == 99),
        "answers the patched rows re-read, even though they no longer match: {patched:?}"
    );
    let untouched = find(&app, "/people?name[$in][]=Alice&name[$in][]=Dave").await;
    assert!(records(&untouched).iter().all(|r| r["age"] != 99));

    let (status, removed) = app.delete("/people-p10?age=99&$limit=2").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(removed.as_array().unwrap().len(), 7);
    let left = find(&app, "/people").await;
    assert_eq!(names(&left), ["Alice", "Dave"]);
}

#[actix_web::test]
async fn pagination_shapes_limits_and_totals() {
    let app = spawn_app().await;
    seed(&app).await;

    // No pagination: a plain array.
    let all = find(&app, "/people").await;
    assert!(all.is_array(), "{all}");
    assert_eq!(all.as_array().unwrap().len(), 5);

    // A page has exactly these four keys.
    let page = find(&app, "/people-p3").await;
    assert_eq!(keys(&page), ["data", "limit", "skip", "total"]);
    assert_eq!(page["total"], 5);
    assert_eq!(page["limit"], 3, "the default page size");
    assert_eq!(page["skip"], 0);
    assert_eq!(names(&page), ["Alice", "Bob", "Carol"]);

    // Default 1, max 2: a larger $limit is clamped silently.
    let page = find(&app, "/people-p1").await;
    assert_eq!(
        (page["limit"].clone(), page["total"].clone()),
        (json!(1), json!(5))
    );
    assert_eq!(records(&page).len(), 1);
    let page = find(&app, "/people-p1?$limit=1000").await;
    assert_eq!(page["limit"], 2);
    assert_eq!(records(&page).len(), 2);
    let page = find(&app, "/people-p10?$limit=101").await;
    assert_eq!(page["limit"], 100);
    assert_eq!(records(&page).len(), 5);

    // No max: any $limit.
    let page = find(&app, "/people-p3?$limit=1000").await;
    assert_eq!(page["limit"], 1000);
    assert_eq!(records(&page).len(), 5);

    // $limit=0 only counts.
    let page = find(&app, "/people-p10?$limit=0&created=true").await;
    assert_eq!(page, json!({"total": 3, "limit": 0, "skip": 0, "data": []}));
    let (status, body) = app.get("/people?$limit=0").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!([]));

    // $skip pages through, total ignores limit and skip, past the end is empty.
    let page = find(&app, "/people-p10?$limit=2&$skip=2").await;
    assert_eq!(names(&page), ["Carol", "Dave"]);
    assert_eq!(
        (page["total"].clone(), page["skip"].clone()),
        (json!(5), json!(2))
    );
    let page = find(&app, "/people-p10?$skip=100").await;
    assert_eq!(
        page,
        json!({"total": 5, "limit": 10, "skip": 100, "data": []})
    );
    let body = find(&app, "/people?$skip=3").await;
    assert_eq!(names(&body), ["Dave", "Eve"]);
    let body = find(&app, "/people?$skip=10").await;
    assert_eq!(body, json!([]));
    let body = find(&app, "/people?$limit=2").await;
    assert_eq!(names(&body), ["Alice", "Bob"]);

    // A $limit or $skip that is not a non-negative integer is refused.
    for bad in ["$limit=-1", "$limit=abc", "$skip=-3", "$skip=x"] {
        let (status, body) = app.get(&format!("/people-p10?{bad}")).await;
        assert_error(status, &body, 400, "BadRequest");
    }
}

#[actix_web::test]
async fn sort_applies_several_keys_in_the_order_written() {
    let app = spawn_app().await;
    seed(&app).await;

    let body = find(&app, "/people?$sort[age]=-1&$sort[name]=1").await;
    assert_eq!(names(&body), ["Dave", "Carol", "Bob", "Eve", "Alice"]);
    let body = find(&app, "/people?$sort[age]=-1&$sort[name]=-1").await;
    assert_eq!(names(&body), ["Dave", "Carol", "Eve", "Bob", "Alice"]);
    let body = find(&app, "/people?$sort[created]=1&$sort[age]=1&$sort[name]=-1").await;
    assert_eq!(names(&body), ["Alice", "Dave", "Eve", "Bob", "Carol"]);
    // Name first, then age: name decides.
    let body = find(&app, "/people?$sort[name]=-1&$sort[age]=1").await;
    assert_eq!(names(&body), ["Eve", "Dave", "Carol", "Bob", "Alice"]);
    // Paginated, with $skip.
    let page = find(
        &app,
        "/people-p10?$sort[age]=1&$sort[name]=1&$limit=2&$skip=1",
    )
    .await;
    assert_eq!(names(&page), ["Bob", "Eve"]);

    for bad in [
        "$sort[nope]=1",
        "$sort[age]=2",
        "$sort[age]=up",
        "$sort=age",
    ] {
        let (status, body) = app.get(&format!("/people?{bad}")).await;
        assert_error(status, &body, 400, "BadRequest");
    }
}

#[actix_web::test]
async fn select_applies_to_every_method_and_always_keeps_the_id() {
    let app = spawn_app().await;
    seed(&app).await;

    let body = find(&app, "/people?$select[]=name").await;
    assert_eq!(records(&body).len(), 5);
    for r in records(&body) {
        assert_eq!(keys(r), ["id", "name"], "{r}");
    }
    let page = find(&app, "/people-p10?$select[0]=age&$select[1]=created").await;
    for r in records(&page) {
        assert_eq!(keys(r), ["age", "created", "id"], "{r}");
    }

    let (status, created) = app
        .post(
            "/people?$select[]=name",
            json!({"name": "Sel", "age": 7, "created": true}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(keys(&created), ["id", "name"]);
    assert_eq!(created["name"], "Sel");
    let id = id_of(&created);

    let got = find(&app, &format!("/people/{id}?$select[]=age")).await;
    assert_eq!(got, json!({"id": id, "age": 7}));

    let (status, patched) = app
        .patch(&format!("/people/{id}?$select[]=age"), json!({"age": 8}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(patched, json!({"id": id, "age": 8}));

    let (status, replaced) = app
        .put(
            &format!("/people/{id}?$select[]=name"),
            json!({"name": "Sel2", "age": 9}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(replaced, json!({"id": id, "name": "Sel2"}));

    let (status, multi) = app
        .patch(
            "/people-multi?name=Sel2&$select[]=created",
            json!({"created": false}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(multi, json!([{"id": id, "created": false}]));

    let (status, removed) = app
        .delete(&format!("/people/{id}?$select[]=name&$select[]=age"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(removed, json!({"id": id, "name": "Sel2", "age": 9}));

    // The full record was still stored and is gone now.
    let (status, _) = app.get(&format!("/people/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    for bad in ["$select=name", "$select[]=nope"] {
        let (status, body) = app.get(&format!("/people?{bad}")).await;
        assert_error(status, &body, 400, "BadRequest");
    }
}

#[actix_web::test]
async fn comparison_operators_filter_with_coerced_values() {
    let app = spawn_app().await;
    seed(&app).await;
    let cases: &[(&str, &[&str])] = &[
        ("age=30", &["Bob", "Eve"]),
        ("created=true", &["Bob", "Carol", "Eve"]),
        ("created=false", &["Alice", "Dave"]),
        ("name=Carol&age=40", &["Carol"]),
        ("name=Carol&age=30", &[]),
        ("age[$lt]=30", &["Alice"]),
        ("age[$lte]=30", &["Alice", "Bob", "Eve"]),
        ("age[$gt]=30", &["Carol", "Dave"]),
        ("age[$gte]=40", &["Carol", "Dave"]),
        ("age[$gt]=20&age[$lt]=50", &["Bob", "Carol", "Eve"]),
        ("age[$ne]=30", &["Alice", "Carol", "Dave"]),
        ("name[$ne]=Alice&created=false", &["Dave"]),
        ("age[$gte]=1e1&age[$lt]=2.5e1", &["Alice"]),
        ("age[$in][]=20&age[$in][]=50", &["Alice", "Dave"]),
        ("name[$in][]=Bob&name[$in][]=Eve", &["Bob", "Eve"]),
        ("name[$in][0]=Bob&name[$in][1]=Carol", &["Bob", "Carol"]),
        ("name[$in][0]=Dave", &["Dave"]),
        (
            "name[$nin][]=Bob&name[$nin][]=Eve",
            &["Alice", "Carol", "Dave"],
        ),
        ("age[$nin][0]=30", &["Alice", "Carol", "Dave"]),
        (
            "$or[0][name]=Alice&$or[1][age][$gte]=50",
            &["Alice", "Dave"],
        ),
        (
            "$or[0][age]=30&$or[1][age]=20&created=true",
            &["Bob", "Eve"],
        ),
        (
            "$and[0][age][$gte]=30&$and[1][age][$lte]=40",
            &["Bob", "Carol", "Eve"],
        ),
        (
            "$and[0][$or][0][name]=Bob&$and[0][$or][1][name]=Dave&$and[1][created]=true",
            &["Bob"],
        ),
        ("id[$in][]=-1", &[]),
    ];
    for (qs, expected) in cases {
        let body = find(&app, &format!("/people?{qs}")).await;
        assert_eq!(name_set(&body), *expected, "GET /people?{qs}");
    }
    // The same filters paginate on a paged service.
    let page = find(&app, "/people-p1?age[$lte]=30").await;
    assert_eq!(page["total"], 3);
}

#[actix_web::test]
async fn like_and_ilike_match_patterns_on_name() {
    let app = spawn_app().await;
    for name in ["Alice", "Alan", "alfred", "Bob", "ALVIN"] {
        app.create("/people", json!({"name": name})).await;
    }
    let body = find(&app, "/people?name[$like]=Al%25").await;
    let found = name_set(&body);
    assert!(
        found.contains(&"Alice".into()) && found.contains(&"Alan".into()),
        "{found:?}"
    );
    assert!(!found.contains(&"Bob".into()), "{found:?}");
    let body = find(&app, "/people?name[$like]=%25ic%25").await;
    assert_eq!(name_set(&body), ["Alice"]);
    let body = find(&app, "/people?name[$ilike]=al%25").await;
    assert_eq!(name_set(&body), ["ALVIN", "Alan", "Alice", "alfred"]);
    let body = find(&app, "/people?name[$ilike]=%25O%25").await;
    assert_eq!(name_set(&body), ["Bob"]);
    let body = find(&app, "/people?name[$notlike]=%25l%25").await;
    let found = name_set(&body);
    assert!(
        found.contains(&"Bob".into()) && !found.contains(&"Alan".into()),
        "{found:?}"
    );

    // Only on fields that declare them.
    let (status, body) = app.get("/people?age[$like]=1%25").await;
    assert_error(status, &body, 400, "BadRequest");
}

#[actix_web::test]
async fn unknown_or_uncoercible_query_parts_are_bad_requests() {
    let app = spawn_app().await;
    seed(&app).await;
    for qs in [
        "nope=1",
        "age[$regex]=1",
        "$foo=1",
        "age=abc",
        "age[$gt]=ten",
        "created=1",
        "created=yes",
        "created=TRUE",
        "name[$in]=Bob",
        "name=Bob&name=Eve",
        "age[$in][]=x",
        "$or=1",
        "$or[0]=1",
    ] {
        let (status, body) = app.get(&format!("/people?{qs}")).await;
        assert_error(status, &body, 400, "BadRequest");
        assert!(body["message"].is_string(), "{qs}: {body}");
        // The same rules hold on the other methods.
        let (status, body) = app.delete(&format!("/people-multi?{qs}")).await;
        assert_error(status, &body, 400, "BadRequest");
    }
    // Nothing was removed by the refused multi removes.
    assert_eq!(records(&find(&app, "/people").await).len(), 5);

    // Error bodies are Feathers-shaped, with no internals.
    let (_, body) = app.get("/people?created=1").await;
    assert_eq!(body["className"], "bad-request");
    let allowed = ["className", "code", "data", "errors", "message", "name"];
    for k in keys(&body) {
        assert!(allowed.contains(&k.as_str()), "unexpected key {k}: {body}");
    }
}

#[actix_web::test]
async fn bodies_are_validated_against_the_schema() {
    let app = spawn_app().await;
    let record = app
        .create("/people", json!({"name": "Val", "age": 1}))
        .await;
    let id = id_of(&record);
    for bad in [
        json!({"name": "X", "nope": 1}),
        json!({"name": 5}),
        json!({"age": "5"}),
        json!({"created": "true"}),
        json!({"created": 1}),
        json!("just a string"),
        json!([1, 2]),
    ] {
        let (status, body) = app.post("/people-multi", bad.clone()).await;
        assert_error(status, &body, 400, "BadRequest");
        if bad.is_object() {
            let (status, body) = app.patch(&format!("/people/{id}"), bad.clone()).await;
            assert_error(status, &body, 400, "BadRequest");
        }
    }
    let got = find(&app, &format!("/people/{id}")).await;
    assert_eq!(got, record, "refused patches changed nothing");
    assert_eq!(records(&find(&app, "/people").await).len(), 1);

    // An id in a patch body is ignored: the id comes from the URL.
    let (status, patched) = app
        .patch(&format!("/people/{id}"), json!({"id": id + 1000, "age": 2}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(patched["id"], id);
    assert_eq!(patched["age"], 2);
}

#[actix_web::test]
async fn id_and_query_must_both_match() {
    let app = spawn_app().await;
    let people = seed(&app).await;
    let bob = &people[1];
    let id = id_of(bob);
    let other = id_of(&people[0]);
    let not_found = format!("No record found for id '{id}'");

    let (status, body) = app.get(&format!("/people/{id}?name=Alice")).await;
    assert_error(status, &body, 404, "NotFound");
    assert_eq!(body["message"], not_found);
    let (status, body) = app.get(&format!("/people/{id}?id={other}")).await;
    assert_error(status, &body, 404, "NotFound");
    let (status, body) = app.get(&format!("/people/{id}?age[$gt]=30")).await;
    assert_error(status, &body, 404, "NotFound");
    // A matching query answers the record.
    let got = find(&app, &format!("/people/{id}?name=Bob&created=true")).await;
    assert_eq!(&got, bob);

    let (status, body) = app
        .patch(&format!("/people/{id}?created=false"), json!({"age": 99}))
        .await;
    assert_error(status, &body, 404, "NotFound");
    assert_eq!(body["message"], not_found);
    let (status, body) = app
        .put(&format!("/people/{id}?name=Eve"), json!({"name": "Robert"}))
        .await;
    assert_error(status, &body, 404, "NotFound");
    let (status, body) = app.delete(&format!("/people/{id}?age=31")).await;
    assert_error(status, &body, 404, "NotFound");
    assert_eq!(body["message"], not_found);

    let got = find(&app, &format!("/people/{id}")).await;
    assert_eq!(&got, bob, "nothing changed");
}

#[actix_web::test]
async fn ids_that_do_not_parse_or_do_not_exist_are_404() {
    let app = spawn_app().await;
    seed(&app).await;
    let (status, body) = app.get("/people/abc").await;
    assert_error(status, &body, 404, "NotFound");
    assert_eq!(body["message"], "No record found for id 'abc'");
    let (status, body) = app.get("/people/568225fbfe21222432e836ff").await;
    assert_error(status, &body, 404, "NotFound");
    assert_eq!(
        body["message"],
        "No record found for id '568225fbfe21222432e836ff'"
    );
    let (status, body) = app.patch("/people/abc", json!({"age": 1})).await;
    assert_error(status, &body, 404, "NotFound");
    let (status, body) = app.put("/people/abc", json!({"age": 1})).await;
    assert_error(status, &body, 404, "NotFound");
    let (status, body) = app.delete("/people/abc").await;
    assert_error(status, &body, 404, "NotFound");
    assert_eq!(body["message"], "No record found for id 'abc'");
    let (status, body) = app.get("/people/999999").await;
    assert_error(status, &body, 404, "NotFound");
    assert_eq!(body["message"], "No record found for id '999999'");
    // The id arrives URL-decoded.
    let (status, body) = app.get("/people/a%20b").await;
    assert_error(status, &body, 404, "NotFound");
    assert_eq!(body["message"], "No record found for id 'a b'");
    assert_eq!(records(&find(&app, "/people").await).len(), 5);
}

#[actix_web::test]
async fn malformed_json_is_a_bad_request() {
    let app = spawn_app().await;
    for body in [r#"{"name":"#, "{name: 'x'}", "not json"] {
        let (status, err) = send(
            app.request(Method::POST, "/people")
                .header("content-type", "application/json")
                .body(body),
        )
        .await;
        assert_error(status, &err, 400, "BadRequest");
    }
    let (status, err) = send(
        app.request(Method::PATCH, "/people-multi")
            .header("content-type", "application/json")
            .body("{"),
    )
    .await;
    assert_error(status, &err, 400, "BadRequest");
    assert_eq!(find(&app, "/people").await, json!([]));
}

#[actix_web::test]
async fn bodies_over_the_limit_are_413() {
    let app = spawn_app().await;
    // The harness sets max_body_bytes to 64 KiB.
    let big = "x".repeat(70 * 1024);
    let (status, body) = send(
        app.request(Method::POST, "/people")
            .header("content-type", "application/json")
            .body(json!({"name": big}).to_string()),
    )
    .await;
    assert_error(status, &body, 413, "PayloadTooLarge");
    assert_eq!(body["className"], "payload-too-large");
    let (status, body) = send(
        app.request(Method::PATCH, "/people/1")
            .header("content-type", "application/json")
            .body(json!({"name": big}).to_string()),
    )
    .await;
    assert_error(status, &body, 413, "PayloadTooLarge");
    assert_eq!(find(&app, "/people").await, json!([]));

    // Under the limit is fine.
    let fits = "y".repeat(60 * 1024);
    let created = app.create("/people", json!({"name": fits})).await;
    assert_eq!(created["name"].as_str().unwrap().len(), 60 * 1024);
}

#[actix_web::test]
async fn options_and_custom_methods_are_405() {
    let app = spawn_app().await;
    let record = app.create("/people", json!({"name": "Opt"})).await;
    for path in ["/people".to_string(), format!("/people/{}", id_of(&record))] {
        let (status, body) = send(app.request(Method::OPTIONS, &path)).await;
        assert_error(status, &body, 405, "MethodNotAllowed");
        assert_eq!(body["message"], "Method OPTIONS not allowed");
    }
    let (status, body) = send(
        app.request(Method::POST, "/people")
            .header("x-service-method", "find")
            .json(&json!({})),
    )
    .await;
    assert_error(status, &body, 405, "MethodNotAllowed");
    assert_eq!(
        body["message"],
        "Method `find` is not supported by this endpoint."
    );
}

#[actix_web::test]
async fn head_answers_like_get() {
    let app = spawn_app().await;
    let record = app.create("/people", json!({"name": "Head"})).await;
    let id = id_of(&record);
    for path in [
        "/people".to_string(),
        format!("/people/{id}"),
        "/people-p3".into(),
    ] {
        let res = app.request(Method::HEAD, &path).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "HEAD {path}");
        let content_type = res.headers()["content-type"].to_str().unwrap().to_string();
        assert!(
            content_type.starts_with("application/json"),
            "{content_type}"
        );
        assert!(res.text().await.unwrap().is_empty(), "HEAD has no body");
    }
    let res = app
        .request(Method::HEAD, "/people/abc")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = app
        .request(Method::HEAD, "/people?nope=1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let res = app.client.head(app.url("/people")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn trailing_slashes_are_ignored() {
    let app = spawn_app().await;
    let record = app.create("/people/", json!({"name": "Slash"})).await;
    let id = id_of(&record);
    let body = find(&app, "/people/").await;
    assert_eq!(ids(&body), [id]);
    let page = find(&app, "/people-p3/?name=Slash").await;
    assert_eq!(page["total"], 1);
    let got = find(&app, &format!("/people/{id}/")).await;
    assert_eq!(got, record);
    let (status, patched) = app
        .patch(&format!("/people/{id}/"), json!({"age": 4}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(patched["age"], 4);
    let (status, _) = app.delete(&format!("/people/{id}/")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(find(&app, "/people").await, json!([]));
}

#[actix_web::test]
async fn form_encoded_bodies_are_accepted_and_coerced() {
    let app = spawn_app().await;
    let (status, created) = send(
        app.request(Method::POST, "/people")
            .header("content-type", "application/x-www-form-urlencoded")
            .body("name=Form+User&age=3&created=true"),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["name"], "Form User");
    assert_eq!(created["age"], 3, "age is a number: {created}");
    assert_eq!(created["created"], true);
    let id = id_of(&created);

    let (status, patched) = send(
        app.request(Method::PATCH, &format!("/people/{id}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("age=4.5"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["age"], 4.5);

    for bad in ["name=X&age=old", "name=X&created=1", "nope=1"] {
        let (status, body) = send(
            app.request(Method::POST, "/people")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(bad),
        )
        .await;
        assert_error(status, &body, 400, "BadRequest");
    }
    assert_eq!(records(&find(&app, "/people").await).len(), 1);
}

#[actix_web::test]
async fn the_profiles_share_one_table() {
    let app = spawn_app().await;
    let a = app.create("/people-multi", json!({"name": "Shared"})).await;
    for path in ["/people", "/people-multi"] {
        assert_eq!(ids(&find(&app, path).await), [id_of(&a)], "{path}");
    }
    for path in ["/people-p1", "/people-p3", "/people-p10"] {
        assert_eq!(find(&app, path).await["total"], 1, "{path}");
    }
    let (status, _) = app.delete(&format!("/people-p3/{}", id_of(&a))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(find(&app, "/people").await, json!([]));
}

#[actix_web::test]
async fn people_of_another_organization_are_invisible() {
    let app = spawn_app().await;
    let mine = seed(&app).await;
    let other = app.new_tenant("Other").await;
    let theirs = app
        .call_as(
            &other,
            Method::POST,
            "/people",
            Some(json!({"name": "Zed", "age": 30, "created": true})),
        )
        .await
        .1;
    let their_id = id_of(&theirs);

    // Find never crosses organizations, on any profile and with any filter.
    let (status, body) = app.call_as(&other, Method::GET, "/people", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&body), [their_id]);
    let (_, page) = app
        .call_as(&other, Method::GET, "/people-p10?age=30", None)
        .await;
    assert_eq!(page["total"], 1);
    assert_eq!(ids(&page), [their_id]);
    let mine_found = find(&app, "/people?age=30").await;
    assert_eq!(name_set(&mine_found), ["Bob", "Eve"]);

    // Every method on another organization's id is a 404, and changes nothing.
    for record in &mine {
        let id = id_of(record);
        let path = format!("/people/{id}");
        let not_found = format!("No record found for id '{id}'");
        for (method, body) in [
            (Method::GET, None),
            (Method::PATCH, Some(json!({"age": 1}))),
            (Method::PUT, Some(json!({"name": "Stolen"}))),
            (Method::DELETE, None),
        ] {
            let (status, err) = app.call_as(&other, method.clone(), &path, body).await;
            assert_error(status, &err, 404, "NotFound");
            assert_eq!(err["message"], not_found, "{method} {path}");
        }
    }
    let after = find(&app, "/people").await;
    assert_eq!(
        records(&after),
        &mine,
        "the first organization's rows are intact"
    );

    // organization_id naming another organization is forbidden, in a query or a body.
    let me = app.org.org_id;
    for qs in [
        format!("organization_id={me}"),
        format!("organization_id[$in][]={me}"),
        format!("$or[0][organization_id]={me}&$or[1][name]=Zed"),
        format!("organization_id[$ne]={}", other.org_id),
    ] {
        let (status, body) = app
            .call_as(&other, Method::GET, &format!("/people?{qs}"), None)
            .await;
        assert_error(status, &body, 403, "Forbidden");
    }
    let (status, body) = app
        .call_as(
            &other,
            Method::POST,
            "/people",
            Some(json!({"name": "Planted", "organization_id": me})),
        )
        .await;
    assert_error(status, &body, 403, "Forbidden");
    let (status, body) = app
        .call_as(
            &other,
            Method::PATCH,
            &format!("/people/{their_id}"),
            Some(json!({"organization_id": me})),
        )
        .await;
    assert_error(status, &body, 403, "Forbidden");
    let (status, body) = app
        .call_as(
            &other,
            Method::DELETE,
            &format!("/people-multi?organization_id={me}"),
            None,
        )
        .await;
    assert_error(status, &body, 403, "Forbidden");
    assert!(!names(&find(&app, "/people").await).contains(&"Planted".to_string()));

    // The caller's own organization_id is accepted (and redundant).
    let (status, body) = app
        .call_as(
            &other,
            Method::GET,
            &format!("/people?organization_id={}", other.org_id),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(ids(&body), [their_id]);
    let (status, body) = app
        .call_as(
            &other,
            Method::POST,
            "/people",
            Some(json!({"name": "Own", "organization_id": other.org_id})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // Multi patch and remove only touch the caller's rows.
    let (status, patched) = app
        .call_as(
            &other,
            Method::PATCH,
            "/people-multi?age=30",
            Some(json!({"age": 31})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&patched), [their_id]);
    let (status, removed) = app
        .call_as(&other, Method::DELETE, "/people-multi", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(names(&removed), ["Zed", "Own"]);
    let (_, left) = app.call_as(&other, Method::GET, "/people", None).await;
    assert_eq!(left, json!([]));
    let after = find(&app, "/people").await;
    assert_eq!(
        records(&after),
        &mine,
        "the first organization's rows are intact"
    );
}

#[actix_web::test]
async fn unsupported_verbs_are_refused_before_authentication() {
    let app = spawn_app().await;
    let res = app
        .client
        .request(reqwest::Method::OPTIONS, format!("{}/people", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["name"], "MethodNotAllowed");
    assert_eq!(body["message"], "Method OPTIONS not allowed");
}

/// The id orders the page where the client puts it: keys after it change nothing,
/// and its own direction is kept (it was once replaced by the last key's).
#[actix_web::test]
async fn an_id_sort_key_keeps_its_place_and_direction() {
    let app = spawn_app().await;
    seed(&app).await;
    let by_id_desc = names(&find(&app, "/people?$sort[id]=-1&$sort[name]=1").await);
    assert_eq!(by_id_desc, ["Eve", "Dave", "Carol", "Bob", "Alice"]);
    let by_age = names(&find(&app, "/people?$sort[age]=1&$sort[id]=-1&$sort[name]=1").await);
    assert_eq!(by_age, ["Alice", "Eve", "Bob", "Carol", "Dave"]);
}
