//! The schema's migrations undo cleanly (tables, triggers and trigger functions)
//! and apply again, on the database the suite runs on.

use crate::helpers::*;
use migrations::{Migrator, MigratorTrait};

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
