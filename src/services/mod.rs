//! One module per service path; `register` declares them all.

pub mod ai_assistants;
pub mod api_keys;
pub mod authentication;
pub mod automations;
pub mod bulk_actions;
pub mod channel_accounts;
pub mod common;
pub mod contacts;
pub mod conversation_counts;
pub mod conversation_views;
pub mod conversations;
pub mod files;
pub mod imessage;
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
use crate::delivery::AgentPhone;
use crate::domain::unit_of_work::InUnitOfWork;
use crate::domain::{self, Readers, Units};
use crate::feathers::hooks::single_record;
use crate::feathers::{Access, Hooks, Method, Registry};
use crate::messaging::idempotency::IdempotentCreate;
use std::collections::HashMap;

/// The methods that take one record only, on every service declaring them so.
const SINGLE: &[Method] = &[Method::Update, Method::Patch, Method::Remove];
use sea_orm::DatabaseConnection;
use std::sync::Arc;

/// What the services are set up with, besides the database and authentication.
pub struct ServiceSettings {
    /// Mount the conformance suite's `/people` fixture.
    pub fixture: bool,
    /// Keys the request hashes of `Idempotency-Key` (a `/users` body has a password).
    pub idempotency_pepper: [u8; 32],
    pub agentphone: Arc<AgentPhone>,
    /// The bucket conversation files live in (`None`: the file services answer 503).
    pub storage: Option<Arc<crate::storage::Storage>>,
    /// Bulk actions over at most this many conversations complete before the answer.
    pub bulk_sync_limit: u64,
    /// Which targets an automation's webhook step may call.
    pub webhook_policy: domain::automations::WebhookPolicy,
}

/// Declares every service of the app, with the hooks of each; answers what units of
/// work start from (for the app's other writers: jobs, webhooks).
pub fn register(
    registry: &mut Registry,
    db: &DatabaseConnection,
    auth: &SharedAuth,
    with: ServiceSettings,
) -> Units {
    let ServiceSettings {
        fixture,
        idempotency_pepper,
        agentphone,
        storage,
        bulk_sync_limit,
        webhook_policy,
    } = with;
    let agentphone = &agentphone;
    let storage = &storage;
    let sealer = &agentphone.sealer;
    let conversations = conversations::ConversationsService::new(db.clone());
    let contacts = contacts::ContactsService::new(db.clone());
    let channel_accounts =
        channel_accounts::ChannelAccountsService::new(db.clone(), sealer.clone());
    let automations =
        automations::AutomationsService::new(db.clone(), sealer.clone(), webhook_policy);
    let executions = automations::ExecutionsService::new(db.clone(), sealer.clone());
    let messages: Vec<(Channel, messages::MessagesService)> = (Channel::ALL.into_iter())
        .map(|channel| (channel, messages::MessagesService::new(db.clone(), channel)))
        .collect();
    // The records side effects touch are read for their events as their paths show them.
    let mut readers = HashMap::new();
    readers.insert(
        domain::conversations::PATH.to_string(),
        conversations.0.clone(),
    );
    readers.insert(domain::contacts::PATH.to_string(), contacts.0.clone());
    readers.insert(
        domain::bulk_actions::PATH.to_string(),
        bulk_actions::BulkActionsService::read_binding(db.clone()),
    );
    readers.insert(
        domain::channel_accounts::PATH.to_string(),
        channel_accounts.sql.clone(),
    );
    readers.insert(
        domain::automations::PATH.to_string(),
        automations.sql.clone(),
    );
    readers.insert(
        domain::automations::EXECUTIONS_PATH.to_string(),
        executions.sql.clone(),
    );
    let files = files::sql(db.clone());
    readers.insert(domain::conversation_files::PATH.to_string(), files.clone());
    for (channel, service) in &messages {
        readers.insert(
            domain::messages::path_of(channel.as_str()),
            service.sql.clone(),
        );
    }
    let units = Units {
        db: db.clone(),
        readers: Readers::new(readers),
    };
    // Every write runs in a unit of work; every create honours `Idempotency-Key` in it.
    registry.hooks(
        Hooks::new()
            .around(Method::WRITES, InUnitOfWork::hook(&units))
            .around(
                &[Method::Create],
                Arc::new(IdempotentCreate {
                    pepper: idempotency_pepper,
                }),
            ),
    );
    registry.use_service(
        "authentication",
        Access::Public,
        Arc::new(authentication::AuthenticationService { auth: auth.clone() }),
    );
    registry
        .use_service(
            "users",
            Access::Authenticated,
            Arc::new(users::UsersService(users::sql(db.clone()), auth.clone())),
        )
        .hooks(
            Hooks::new()
                .before(&[Method::Create, Method::Remove], admin_only())
                .before(SINGLE, single_record()),
        );
    registry
        .use_service(
            "api-keys",
            Access::Authenticated,
            Arc::new(api_keys::ApiKeysService::new(db.clone(), auth.clone())),
        )
        .hooks(
            Hooks::new()
                .before(Method::ALL, admin_only())
                .before(SINGLE, single_record()),
        );
    registry
        .use_service(
            domain::channel_accounts::PATH,
            Access::Authenticated,
            Arc::new(channel_accounts),
        )
        .hooks(
            Hooks::new()
                .before(Method::ALL, admin_only())
                .before(SINGLE, single_record()),
        );
    registry
        .use_service(
            domain::automations::PATH,
            Access::Authenticated,
            Arc::new(automations),
        )
        .hooks(
            Hooks::new()
                .before(Method::WRITES, admin_only())
                .before(SINGLE, single_record()),
        );
    // Runs: create, find and get (no patch or remove: a run is the server's).
    registry.use_service(
        domain::automations::EXECUTIONS_PATH,
        Access::Authenticated,
        Arc::new(executions),
    );
    registry
        .use_service("contacts", Access::Authenticated, Arc::new(contacts))
        .hooks(Hooks::new().before(SINGLE, single_record()));
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
    registry
        .use_service(
            "pipelines",
            Access::Authenticated,
            Arc::new(pipelines::PipelinesService::new(db.clone())),
        )
        .hooks(
            Hooks::new()
                .before(Method::WRITES, admin_only())
                .before(SINGLE, single_record()),
        );
    registry
        .use_service(
            "conversation-views",
            Access::Authenticated,
            Arc::new(conversation_views::ConversationViewsService::new(
                db.clone(),
            )),
        )
        .hooks(Hooks::new().before(SINGLE, single_record()));
    if let Some(anchors) = conversations.0.options.anchors.clone() {
        registry.add_cache("conversations anchors and kept statements", anchors);
    }
    let bulk = bulk_actions::BulkActionsService::new(
        db.clone(),
        conversations::ConversationsService(conversations.0.clone()),
        bulk_sync_limit,
    );
    registry
        .use_service(
            "conversations",
            Access::Authenticated,
            Arc::new(conversations),
        )
        .hooks(
            Hooks::new()
                .before(&[Method::Remove], admin_only())
                .before(SINGLE, single_record()),
        );
    registry
        .use_service(
            "conversation-predefined-messages",
            Access::Authenticated,
            Arc::new(predefined_messages::PredefinedMessagesService::new(
                db.clone(),
            )),
        )
        .hooks(Hooks::new().before(SINGLE, single_record()));
    registry
        .use_service(
            "jobs",
            Access::Authenticated,
            Arc::new(jobs::JobsService::new(db.clone())),
        )
        .hooks(
            Hooks::new()
                .before(Method::ALL, admin_only())
                .before(SINGLE, single_record()),
        );
    for (channel, service) in messages {
        registry
            .use_service(
                &domain::messages::path_of(channel.as_str()),
                Access::Authenticated,
                Arc::new(service),
            )
            .hooks(Hooks::new().before(SINGLE, single_record()));
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
    registry
        .use_service(
            domain::bulk_actions::PATH,
            Access::Authenticated,
            Arc::new(bulk),
        )
        .hooks(Hooks::new().before(SINGLE, single_record()));
    registry.use_service(
        "conversation-message-reactions",
        Access::Authenticated,
        Arc::new(imessage::ReactionsService),
    );
    registry.use_service(
        "conversation-typing",
        Access::Authenticated,
        Arc::new(imessage::TypingService {
            db: db.clone(),
            agentphone: agentphone.clone(),
        }),
    );
    registry
        .use_service(
            "conversation-backgrounds",
            Access::Authenticated,
            Arc::new(imessage::BackgroundsService {
                db: db.clone(),
                agentphone: agentphone.clone(),
            }),
        )
        .hooks(Hooks::new().before(SINGLE, single_record()));
    registry.use_service(
        "s3-url-signing",
        Access::Authenticated,
        Arc::new(files::UrlSigningService {
            db: db.clone(),
            storage: storage.clone(),
        }),
    );
    registry
        .use_service(
            domain::conversation_files::PATH,
            Access::Authenticated,
            Arc::new(files::ConversationFilesService {
                sql: files,
                storage: storage.clone(),
            }),
        )
        .hooks(Hooks::new().before(SINGLE, single_record()));
    if fixture {
        people::mount(registry, db);
    }
    units
}
