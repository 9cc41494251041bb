//! The schema's migrations undo cleanly (tables, triggers and trigger functions)
//! and apply again, on the database the suite runs on.

use crate::helpers::*;
use migrations::{Migrator, MigratorTrait};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

#[actix_web::test]
async fn every_migration_goes_down_and_up_again() {
    let url = fresh_database().await;
    let db = inbox_gateway::db::connect(&url, 2).await.expect("connect");
    Migrator::up(&db, None).await.expect("up");
    Migrator::down(&db, None).await.expect("down");
    assert!(
        Migrator::get_applied_migrations(&db)
            .await
            .unwrap()
            .is_empty()
    );
    Migrator::up(&db, None).await.expect("up again");
    let pending = Migrator::get_pending_migrations(&db).await.unwrap();
    assert!(pending.is_empty());
}

/// Conversations embed their contact from copies (m0007): the migration fills them
/// for existing conversations, and triggers keep them equal to the contact.
#[actix_web::test]
async fn embedded_contacts_follow_their_contact() {
    let app = spawn_app().await;
    let contact = |name: &str, phone: &str| json!({"first_name": name, "phone": phone});
    let ann = create_contact(&app, contact("Ann", "+15550201")).await["id"]
        .as_i64()
        .unwrap();
    let bob = create_contact(&app, contact("Bob", "+15550202")).await["id"]
        .as_i64()
        .unwrap();
    let other = app.new_tenant("other").await;
    let foreign = create_contact_as(&app, &other, contact("Ann", "+15550201")).await;
    let c1 = create_conversation(&app, app.org.org_id, ann, "sms", "open").await;
    let c2 = create_conversation(&app, other.org_id, foreign, "sms", "open").await;
    let name = |body: Value| body["contact"]["first_name"].clone();
    assert_eq!(
        name(get_ok(&app, &format!("/conversations/{c1}")).await),
        "Ann"
    );

    // A contact's edit shows on its conversations, and only on them.
    patch_ok(
        &app,
        &format!("/contacts/{ann}"),
        json!({"first_name": "Anna", "email": "a@x.test"}),
    )
    .await;
    let got = get_ok(&app, &format!("/conversations/{c1}")).await;
    assert_eq!(
        (name(got.clone()), got["contact"]["email"].clone()),
        (json!("Anna"), json!("a@x.test"))
    );
    let (status, theirs) = app
        .call_as(&other, Method::GET, &format!("/conversations/{c2}"), None)
        .await;
    assert_eq!((status, name(theirs)), (StatusCode::OK, json!("Ann")));

    // A conversation moved to another contact embeds that contact.
    exec_sql(
        &app,
        &format!("UPDATE conversations SET contact_id = {bob} WHERE id = {c1}"),
    )
    .await;
    let page = get_ok(&app, "/conversations").await;
    assert_eq!(records(&page)[0]["contact"]["id"], bob);
    assert_eq!(name(records(&page)[0].clone()), "Bob");

    // Undoing and redoing the migration fills the copies of existing conversations.
    let migrator_db = inbox_gateway::db::connect(&app.database_url, 2)
        .await
        .expect("connect");
    Migrator::down(&migrator_db, Some(1)).await.expect("down");
    Migrator::up(&migrator_db, None).await.expect("up");
    assert_eq!(
        name(get_ok(&app, &format!("/conversations/{c1}")).await),
        "Bob"
    );
    patch_ok(
        &app,
        &format!("/contacts/{bob}"),
        json!({"first_name": "Robert"}),
    )
    .await;
    assert_eq!(
        name(get_ok(&app, &format!("/conversations/{c1}")).await),
        "Robert"
    );
}

/// The benchmark's bulk seed (triggers off on PostgreSQL) writes the contact copies
/// itself: its conversations embed their contacts as `/contacts` shows them.
#[actix_web::test]
async fn seeded_conversations_embed_their_contacts() {
    let app = spawn_app().await;
    let report = inbox_gateway::seed::seed(&app.db, 30, 0, 60)
        .await
        .expect("seed");
    let token = app.login(&report.admin_email, report.admin_password).await;
    let (status, page) = app
        .call(Method::GET, "/conversations?$limit=50", None, Some(&token))
        .await;
    assert_eq!(
        (status, records(&page).len()),
        (StatusCode::OK, 30),
        "{page}"
    );
    for record in records(&page) {
        let path = format!("/contacts/{}", record["contact_id"]);
        let (_, contact) = app.call(Method::GET, &path, None, Some(&token)).await;
        for field in [
            "id",
            "first_name",
            "last_name",
            "email",
            "phone",
            "avatar_url",
        ] {
            assert_eq!(
                record["contact"][field], contact[field],
                "{field}: {record}"
            );
        }
        assert!(record["contact"]["first_name"].is_string(), "{record}");
    }
}
