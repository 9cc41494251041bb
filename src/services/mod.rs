//! One module per service path; `register` declares them all.

pub mod ai_assistants;
pub mod api_keys;
pub mod authentication;
pub mod common;
pub mod contacts;
pub mod conversation_counts;
pub mod conversation_views;
pub mod conversations;
pub mod people;
pub mod pipelines;
pub mod tags;
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
    registry.use_service(
        "contacts",
        Access::Authenticated,
        Arc::new(contacts::ContactsService::new(db.clone())),
    );
    registry.use_service(
        "tags",
        Access::Authenticated,
        Arc::new(tags::service(db.clone())),
    );
    registry.use_service(
        "ai-assistants",
        Access::Authenticated,
        Arc::new(ai_assistants::service(db.clone())),
    );
    registry.use_service(
        "pipelines",
        Access::Authenticated,
        Arc::new(pipelines::PipelinesService::new(db.clone())),
    );
    registry.use_service(
        "conversation-views",
        Access::Authenticated,
        Arc::new(conversation_views::ConversationViewsService::new(
            db.clone(),
        )),
    );
    registry.use_service(
        "conversations",
        Access::Authenticated,
        Arc::new(conversations::ConversationsService::new(db.clone())),
    );
    if fixture {
        people::mount(registry, db);
    }
}
