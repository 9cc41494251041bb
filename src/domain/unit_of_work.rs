//! The unit of work: one transaction, the organization and the actor of a change,
//! and the events it produces. Every writer (a REST call, a job, a webhook, a bulk
//! batch) changes data inside one; at commit it writes its events to the outbox in
//! the same transaction, then wakes the dispatchers and, if it enqueued any, the
//! job workers. Dropped without a commit, it rolls everything back, events included.

use crate::events::{self, Pending};
use crate::feathers::{
    Around, Context, FeathersError, Method, Next, Params, Principal, Result, Unit,
};
use async_trait::async_trait;
use sea_orm::{DatabaseConnection, DatabaseTransaction, TransactionTrait};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::OnceCell;

/// Who makes a change: kept with each event.
#[derive(Debug, Clone, PartialEq)]
pub enum Actor {
    User(i64),
    /// An API key, acting as its user.
    ApiKey {
        user: i64,
    },
    Automation(i64),
    System,
    /// A provider's webhook (`agentphone`).
    Provider(&'static str),
}

impl Actor {
    pub fn of(principal: &Principal) -> Self {
        match principal.strategy.as_str() {
            "api-key" => Actor::ApiKey {
                user: principal.user_id,
            },
            _ => Actor::User(principal.user_id),
        }
    }

    pub fn to_json(&self) -> Value {
        match self {
            Actor::User(id) => json!({"type": "user", "id": id}),
            Actor::ApiKey { user } => json!({"type": "api-key", "user_id": user}),
            Actor::Automation(id) => json!({"type": "automation", "id": id}),
            Actor::System => json!({"type": "system"}),
            Actor::Provider(name) => json!({"type": "provider", "name": name}),
        }
    }
}

pub struct UnitOfWork {
    db: DatabaseConnection,
    txn: OnceCell<DatabaseTransaction>,
    organization: Option<i64>,
    actor: Actor,
    events: Mutex<Vec<Pending>>,
    enqueued: AtomicBool,
}

impl UnitOfWork {
    /// A unit for `organization` (`None`: a change no tenant owns, which records no
    /// event). The transaction begins at the first statement.
    pub fn new(db: &DatabaseConnection, organization: Option<i64>, actor: Actor) -> Self {
        Self {
            db: db.clone(),
            txn: OnceCell::new(),
            organization,
            actor,
            events: Mutex::new(Vec::new()),
            enqueued: AtomicBool::new(false),
        }
    }

    /// The unit of work a call runs in.
    pub fn of(params: &Params) -> Result<&UnitOfWork> {
        params
            .unit
            .as_ref()
            .and_then(|u| u.as_any().downcast_ref::<UnitOfWork>())
            .ok_or_else(|| FeathersError::general("a write ran outside a unit of work"))
    }

    pub fn organization(&self) -> Option<i64> {
        self.organization
    }

    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    /// The transaction, begun at the first call.
    pub async fn conn(&self) -> Result<&DatabaseTransaction> {
        Ok(self.txn.get_or_try_init(|| self.db.begin()).await?)
    }

    /// Records `event` on `path` for one record as it is now.
    pub fn record(&self, path: &str, event: &'static str, data: Value) {
        if self.organization.is_none() {
            return;
        }
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Pending {
                path: path.to_string(),
                event,
                data,
            });
    }

    /// Records `event` on `path` for each of `records`.
    pub fn record_all(&self, path: &str, event: &'static str, records: Vec<Value>) {
        for data in records {
            self.record(path, event, data);
        }
    }

    /// Enqueues a job in this unit's transaction; its worker wakes at commit.
    pub async fn enqueue(&self, job: &crate::jobs::NewJob) -> Result<Option<i64>> {
        let id = crate::jobs::enqueue(self.conn().await?, job).await?;
        self.enqueued.store(id.is_some(), Ordering::Relaxed);
        Ok(id)
    }

    /// Writes the events, commits, and wakes who waits for them; answers the last
    /// event's seq. The events are numbered last, just before the commit, so the
    /// counter row is held for as short a time as can be.
    pub async fn commit(self) -> Result<Option<i64>> {
        let events = std::mem::take(&mut *self.events.lock().unwrap_or_else(|e| e.into_inner()));
        let mut last = None;
        if let (Some(org), false) = (self.organization, events.is_empty()) {
            last = events::outbox::append(self.conn().await?, org, &self.actor.to_json(), &events)
                .await?;
        }
        if let Some(txn) = self.txn.into_inner() {
            txn.commit().await?;
        }
        if last.is_some() {
            events::wake();
        }
        if self.enqueued.load(Ordering::Relaxed) {
            crate::jobs::wake();
        }
        Ok(last)
    }
}

#[async_trait]
impl Unit for UnitOfWork {
    async fn conn(&self) -> Result<&DatabaseTransaction> {
        UnitOfWork::conn(self).await
    }
    fn record(&self, path: &str, event: &'static str, data: Value) {
        UnitOfWork::record(self, path, event, data)
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// The app's around hook for every write: the call runs in a unit of work of the
/// caller's organization, committed when it succeeds and rolled back when it fails.
/// A call made inside another's unit (an internal call) joins it.
pub struct InUnitOfWork {
    pub db: DatabaseConnection,
}

impl InUnitOfWork {
    pub fn hook(db: &DatabaseConnection) -> Arc<dyn Around> {
        Arc::new(Self { db: db.clone() })
    }
    pub const METHODS: &'static [Method] = Method::WRITES;
}

#[async_trait]
impl Around for InUnitOfWork {
    async fn run(&self, ctx: &mut Context, next: Next<'_>) -> Result<()> {
        if ctx.params.unit.is_some() {
            return next.run(ctx).await;
        }
        let (organization, actor) = match &ctx.params.principal {
            Some(p) => (Some(p.tenant_id), Actor::of(p)),
            None => (None, Actor::System),
        };
        let unit = Arc::new(UnitOfWork::new(&self.db, organization, actor));
        ctx.params.unit = Some(unit.clone());
        let outcome = next.run(ctx).await;
        ctx.params.unit = None;
        let unit = Arc::try_unwrap(unit)
            .map_err(|_| FeathersError::general("a unit of work outlived its call"))?;
        outcome?;
        unit.commit().await?;
        Ok(())
    }
}
