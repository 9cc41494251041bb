//! One module per service path; `register` declares them all.

pub mod api_keys;
pub mod authentication;
pub mod people;
pub mod users;

use crate::auth::SharedAuth;
use crate::feathers::{Access, Registry};
use sea_orm::DatabaseConnection;
use std::sync::Arc;

/// Declares every service of the app.
pub fn register(
    registry: &mut Registry,
    db: &DatabaseConnection,
    auth: &SharedAuth,
    fixture: bool,
) {
    registry.use_service(
        "authentication",
        Access::Public,
        Arc::new(authentication::AuthenticationService { auth: auth.clone() }),
    );
    registry.use_service(
        "users",
        Access::Authenticated,
        Arc::new(users::UsersService(users::sql(db.clone()))),
    );
    registry.use_service(
        "api-keys",
        Access::Authenticated,
        Arc::new(api_keys::ApiKeysService::new(db.clone())),
    );
    if fixture {
        people::mount(registry, db);
    }
}
