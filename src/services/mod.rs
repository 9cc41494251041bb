//! One module per service path; `register` declares them all.

pub mod ai_assistants;
pub mod api_keys;
pub mod authentication;
pub mod common;
pub mod contacts;
pub mod conversation_counts;
pub mod conversation_views;
pub mod conversations;
pub mod jobs;
pub mod messages;
pub mod outgoing;
pub mod people;
pub mod pipelines;
pub mod predefined_messages;
pub mod tags;
pub mod users;

use crate::auth::{SharedAuth, admin_only};
use crate::channels::Channel;
use crate::domain::unit_of_work::InUnitOfWork;
use crate::feathers::{Access, Hooks, Method, Registry};
use sea_orm::DatabaseConnection;
use std::sync::Arc;

/// Declares every service of the app.
pub fn register(
    registry: &mut Registry,
    db: &DatabaseConnection,
    auth: &SharedAuth,
    fixture: bool,
) {
    registry.hooks(Hooks::new().around(InUnitOfWork::METHODS, InUnitOfWork::hook(db)));
    registry.use_service(
        "authentication",
        Access::Public,
        Arc::new(authentication::AuthenticationService { auth: auth.clone() }),
    );
    registry.use_service(
        "users",
        Access::Authenticated,
        Arc::new(users::UsersService(users::sql(db.clone()), auth.clone())),
    );
    registry.use_service(
        "api-keys",
        Access::Authenticated,
        Arc::new(api_keys::ApiKeysService::new(db.clone(), auth.clone())),
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
    registry
        .use_service(
            "ai-assistants",
            Access::Authenticated,
            Arc::new(ai_assistants::service(db.clone())),
        )
        .hooks(Hooks::new().before(Method::WRITES, admin_only()));
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
    let conversations = conversations::ConversationsService::new(db.clone());
    if let Some(anchors) = conversations.0.options.anchors.clone() {
        registry.add_cache("conversations anchors and kept statements", anchors);
    }
    registry.use_service(
        "conversations",
        Access::Authenticated,
        Arc::new(conversations),
    );
    registry.use_service(
        "conversation-predefined-messages",
        Access::Authenticated,
        Arc::new(predefined_messages::PredefinedMessagesService::new(
            db.clone(),
        )),
    );
    registry.use_service(
        "jobs",
        Access::Authenticated,
        Arc::new(jobs::JobsService::new(db.clone())),
    );
    for channel in Channel::ALL {
        registry.use_service(
            &format!("conversation-messages-{}", channel.as_str()),
            Access::Authenticated,
            Arc::new(messages::MessagesService::new(db.clone(), channel)),
        );
    }
    for channel in [
        Channel::Whatsapp,
        Channel::Instagram,
        Channel::Messenger,
        Channel::Webchat,
    ] {
        registry.use_service(
            &format!(
                "conversation-messages-transform-outgoing-{}",
                channel.as_str()
            ),
            Access::Authenticated,
            Arc::new(outgoing::TransformOutgoingService::new(db.clone(), channel)),
        );
    }
    if fixture {
        people::mount(registry, db);
    }
}
