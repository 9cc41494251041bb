//! The unit of work: one transaction, the organization and the actor of a change,
//! and the events it produces. Every writer (a REST call, a job, a webhook, a bulk
//! batch) changes data inside one; at commit it writes its events to the outbox in
//! the same transaction, then wakes the dispatchers and, if it enqueued any, the
//! job workers. Dropped without a commit, it rolls everything back, events included.

use super::records::Readers;
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

/// What every unit of work starts from: the database and the read adapters its
/// events read records through. Every writer holds one.
#[derive(Clone)]
pub struct Units {
    pub db: DatabaseConnection,
    pub readers: Readers,
}

impl Units {
    /// A unit for `organization` (`None`: a change no tenant owns, which records no
    /// event). The transaction begins at the first statement.
    pub fn begin(&self, organization: Option<i64>, actor: Actor) -> UnitOfWork {
        UnitOfWork {
            db: self.db.clone(),
            readers: self.readers.clone(),
            txn: OnceCell::new(),
            organization,
            actor,
            events: Mutex::new(Vec::new()),
            enqueued: AtomicBool::new(false),
            after_commit: Mutex::new(Vec::new()),
        }
    }
}

/// What runs once a unit has committed (a cache that must not keep what it changed).
type AfterCommit = Box<dyn FnOnce() + Send>;

pub struct UnitOfWork {
    db: DatabaseConnection,
    readers: Readers,
    txn: OnceCell<DatabaseTransaction>,
    organization: Option<i64>,
    actor: Actor,
    events: Mutex<Vec<Pending>>,
    enqueued: AtomicBool,
    after_commit: Mutex<Vec<AfterCommit>>,
}

impl UnitOfWork {
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

    /// Records `event` on `path` for a method's result, unless this unit's own code
    /// already recorded that record (it records the fuller one: as `get` shows it).
    pub fn record_result(&self, path: &str, event: &'static str, data: Value) {
        let id = data.get("id").and_then(Value::as_i64);
        let seen = id.is_some_and(|id| {
            (self.events.lock().unwrap_or_else(|e| e.into_inner()).iter())
                .any(|e| e.path == path && e.data.get("id").and_then(Value::as_i64) == Some(id))
        });
        if !seen {
            self.record(path, event, data);
        }
    }

    /// Records `event` on `path` for the records with these ids, read now (in this
    /// unit's transaction) through the path's read adapter.
    pub async fn record_read(&self, path: &str, event: &'static str, ids: &[i64]) -> Result<()> {
        if self.organization.is_none() || ids.is_empty() {
            return Ok(());
        }
        let records = self.readers.read(self.conn().await?, path, ids).await?;
        self.record_all(path, event, records);
        Ok(())
    }

    /// The records of `path` with these ids as they are now in this unit's
    /// transaction, read through the path's read adapter (no event recorded).
    pub async fn read(&self, path: &str, ids: &[i64]) -> Result<Vec<Value>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.readers.read(self.conn().await?, path, ids).await
    }

    /// The last record this unit recorded for `path` and `id`, if any: a write's
    /// answer when it asks for the whole record (saves reading it again).
    pub fn recorded(&self, path: &str, id: i64) -> Option<Value> {
        let events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        (events.iter().rev())
            .find(|e| e.path == path && e.data.get("id").and_then(Value::as_i64) == Some(id))
            .map(|e| e.data.clone())
    }

    /// Records `event` on `path` for each of `records`.
    pub fn record_all(&self, path: &str, event: &'static str, records: Vec<Value>) {
        for data in records {
            self.record(path, event, data);
        }
    }

    /// Runs `f` once this unit has committed (never if it rolls back).
    pub fn after_commit(&self, f: impl FnOnce() + Send + 'static) {
        (self.after_commit.lock().unwrap_or_else(|e| e.into_inner())).push(Box::new(f));
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
        for f in std::mem::take(&mut *self.after_commit.lock().unwrap_or_else(|e| e.into_inner())) {
            f();
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
        UnitOfWork::record_result(self, path, event, data)
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// The app's around hook for every write: the call runs in a unit of work of the
/// caller's organization, committed when it succeeds and rolled back when it fails.
/// A call made inside another's unit (an internal call) joins it.
pub struct InUnitOfWork(pub Units);

impl InUnitOfWork {
    pub fn hook(units: &Units) -> Arc<dyn Around> {
        Arc::new(Self(units.clone()))
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
        let unit = Arc::new(self.0.begin(organization, actor));
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
