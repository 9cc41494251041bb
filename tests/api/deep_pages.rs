//! `/conversations` pages past the first, which start from remembered anchors while
//! the organization's conversations are unchanged: every page must equal the same
//! slice of the full list, before and after each kind of write, for each tenant.

use crate::helpers::*;
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{Value, json};

fn base_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap()
}

fn id_of(record: &Value) -> i64 {
    record["id"].as_i64().expect("numeric id")
}

/// Every page of `query` (size `limit`), each asked three times (the second from the
/// anchor the first left, the third by the statement the second kept), must be the
/// matching slice of the whole list.
async fn assert_pages(app: &TestApp, query: &str, limit: usize) {
    let all = get_ok(app, &format!("/conversations?$limit=50&{query}")).await;
    let all_ids = ids(&all);
    assert!(all_ids.len() < 50, "the fixture fits one page of 50");
    for skip in 1..=all_ids.len() + 1 {
        let expected: Vec<i64> = all_ids.iter().skip(skip).take(limit).copied().collect();
        for round in 0..3 {
            let page = get_ok(
                app,
                &format!("/conversations?$limit={limit}&$skip={skip}&{query}"),
            )
            .await;
            assert_eq!(
                ids(&page),
                expected,
                "{query} skip {skip} (round {round}): {page}"
            );
            assert_eq!(page["total"], all["total"], "{query} skip {skip}");
        }
    }
}

#[actix_web::test]
async fn deep_pages_stay_exact_through_every_kind_of_write() {
    let app = spawn_app().await;
    let contact = id_of(&create_contact(&app, json!({"first_name": "Dana"})).await);
    let mut created = Vec::new();
    for i in 0..14 {
        // Pairs share a time, so the id decides inside each pair.
        let at = base_time() + Duration::minutes(i / 2);
        let status = if i % 3 == 0 { "closed" } else { "open" };
        created
            .push(create_conversation_at(&app, app.org.org_id, contact, "sms", status, at).await);
    }
    let queries = ["", "status=open", "$sort[created_at]=1", "$sort[id]=-1"];
    for q in queries {
        assert_pages(&app, q, 3).await;
    }

    // A conversation moves to the top (a new message), another changes status, one is
    // removed, one arrives: each is a write the anchors must not outlive.
    set_conversation_time(
        &app,
        created[3],
        "last_interaction_at",
        Some(base_time() + Duration::hours(1)),
    )
    .await;
    for q in queries {
        assert_pages(&app, q, 3).await;
    }
    patch_ok(
        &app,
        &format!("/conversations/{}", created[8]),
        json!({"status": "closed"}),
    )
    .await;
    for q in queries {
        assert_pages(&app, q, 3).await;
    }
    let (status, _) = app.delete(&format!("/conversations/{}", created[5])).await;
    assert_eq!(status.as_u16(), 200);
    for q in queries {
        assert_pages(&app, q, 4).await;
    }
    let at = base_time() + Duration::seconds(150);
    create_conversation_at(&app, app.org.org_id, contact, "sms", "open", at).await;
    for q in queries {
        assert_pages(&app, q, 2).await;
    }
}

#[actix_web::test]
async fn filters_over_other_tables_are_exact_when_only_those_tables_change() {
    let app = spawn_app().await;
    let vip = id_of(&app.create("/tags", json!({"name": "vip"})).await);
    let mut contacts = Vec::new();
    for i in 0..8 {
        let tags = if i % 2 == 0 { json!([vip]) } else { json!([]) };
        let c = create_contact(
            &app,
            json!({"first_name": format!("Mulder{i}"), "tag_ids": tags}),
        )
        .await;
        let contact = id_of(&c);
        let at = base_time() + Duration::minutes(i);
        create_conversation_at(&app, app.org.org_id, contact, "whatsapp", "open", at).await;
        contacts.push(contact);
    }
    let tagged = format!("tag_id={vip}");
    assert_pages(&app, &tagged, 2).await;
    assert_pages(&app, "searchTerm=mulder", 2).await;
    // Tag one more contact and rename another: no conversation changes, the pages do.
    patch_ok(
        &app,
        &format!("/contacts/{}", contacts[7]),
        json!({"tag_ids": [vip], "first_name": "Fox"}),
    )
    .await;
    let page = get_ok(&app, &format!("/conversations?$limit=2&$skip=1&{tagged}")).await;
    assert_eq!(page["total"], 5);
    assert_pages(&app, &tagged, 2).await;
    assert_pages(&app, "searchTerm=mulder", 2).await;
}

#[actix_web::test]
async fn a_deep_page_never_shows_another_organizations_rows() {
    let app = spawn_app().await;
    let other = app.new_tenant("Globex").await;
    let mine = id_of(&create_contact(&app, json!({"first_name": "Dana"})).await);
    let theirs = create_contact_as(&app, &other, json!({"first_name": "Hank"})).await;
    for i in 0..6 {
        let at = base_time() + Duration::minutes(i);
        create_conversation_at(&app, app.org.org_id, mine, "sms", "open", at).await;
        create_conversation_at(&app, other.org_id, theirs, "sms", "open", at).await;
    }
    // The same query from both organizations, alternating, anchors and kept
    // statements in place.
    for _ in 0..3 {
        for tenant in [&app.org, &other] {
            let (_, page) = app
                .call_as(
                    tenant,
                    reqwest::Method::GET,
                    "/conversations?$skip=2&$limit=3",
                    None,
                )
                .await;
            let orgs: Vec<i64> = records(&page)
                .iter()
                .map(|r| r["organization_id"].as_i64().unwrap())
                .collect();
            assert_eq!(orgs, vec![tenant.org_id; 3], "{page}");
            assert_eq!(page["total"], 6);
        }
    }
}

#[actix_web::test]
async fn a_deep_page_shows_only_the_selected_fields() {
    let app = spawn_app().await;
    let contact = id_of(&create_contact(&app, json!({"first_name": "Dana"})).await);
    for i in 0..5 {
        let at = base_time() + Duration::minutes(i);
        create_conversation_at(&app, app.org.org_id, contact, "sms", "open", at).await;
    }
    let all = ids(&get_ok(&app, "/conversations").await);
    for _ in 0..3 {
        let page = get_ok(&app, "/conversations?$skip=2&$limit=2&$select[]=status").await;
        assert_eq!(ids(&page), all[2..4]);
        for record in records(&page) {
            let mut keys: Vec<&String> = record.as_object().unwrap().keys().collect();
            keys.sort();
            assert_eq!(keys, ["id", "status"], "{record}");
        }
    }
}
