//! Hooks, as Feathers declares them: `around`, `before` and `after` functions per
//! method, for the whole app ([`Registry::hooks`](super::Registry::hooks)) and per
//! service (at `use_service`). App hooks run outside service hooks; around hooks
//! wrap everything inside them (the unit of work is one), before hooks run in
//! order before the service, after hooks after it. A hook that sets
//! `context.result` before the service runs answers in its place.

use super::error::{FeathersError, Result};
use super::service::{Id, Params};
use async_trait::async_trait;
use serde_json::Value;
use std::sync::Arc;

/// A service method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Find,
    Get,
    Create,
    Update,
    Patch,
    Remove,
}

impl Method {
    pub const ALL: &'static [Method] = &[
        Method::Find,
        Method::Get,
        Method::Create,
        Method::Update,
        Method::Patch,
        Method::Remove,
    ];
    /// The methods that change data.
    pub const WRITES: &'static [Method] = &[
        Method::Create,
        Method::Update,
        Method::Patch,
        Method::Remove,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Find => "find",
            Method::Get => "get",
            Method::Create => "create",
            Method::Update => "update",
            Method::Patch => "patch",
            Method::Remove => "remove",
        }
    }

    /// The event a successful call publishes per record, for the methods that change data.
    pub fn event(self) -> Option<&'static str> {
        match self {
            Method::Create => Some("created"),
            Method::Update => Some("updated"),
            Method::Patch => Some("patched"),
            Method::Remove => Some("removed"),
            Method::Find | Method::Get => None,
        }
    }
}

/// One call as hooks see it (Feathers' hook context).
pub struct Context {
    pub path: String,
    pub method: Method,
    pub id: Option<Id>,
    /// The body of a create, update or patch.
    pub data: Option<Value>,
    pub params: Params,
    /// Set by the service, or by a hook that answers in its place.
    pub result: Option<Value>,
    /// A create the service says stores nothing (its status is not 201: a preview).
    pub dry_run: bool,
}

/// Runs around the rest of the chain: call `next.run(ctx)` to go on (or not, to answer
/// without it: set `ctx.result`).
#[async_trait]
pub trait Around: Send + Sync {
    async fn run(&self, ctx: &mut Context, next: Next<'_>) -> Result<()>;
}

/// Runs before the service (or after it); an error stops the call.
#[async_trait]
pub trait Hook: Send + Sync {
    async fn run(&self, ctx: &mut Context) -> Result<()>;
}

/// The rest of an around chain.
pub struct Next<'a> {
    pub(super) around: &'a [Arc<dyn Around>],
    pub(super) inner: &'a (dyn Inner + 'a),
}

/// What the innermost around hook calls: before hooks, the service, after hooks.
#[async_trait]
pub(super) trait Inner: Send + Sync {
    async fn run(&self, ctx: &mut Context) -> Result<()>;
}

impl Next<'_> {
    pub async fn run(self, ctx: &mut Context) -> Result<()> {
        match self.around.split_first() {
            Some((hook, rest)) => {
                hook.run(
                    ctx,
                    Next {
                        around: rest,
                        inner: self.inner,
                    },
                )
                .await
            }
            None => self.inner.run(ctx).await,
        }
    }
}

/// A service's (or the app's) hooks, by kind and method.
#[derive(Clone, Default)]
pub struct Hooks {
    pub(super) around: Vec<(&'static [Method], Arc<dyn Around>)>,
    pub(super) before: Vec<(&'static [Method], Arc<dyn Hook>)>,
    pub(super) after: Vec<(&'static [Method], Arc<dyn Hook>)>,
}

impl Hooks {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn around(mut self, methods: &'static [Method], hook: Arc<dyn Around>) -> Self {
        self.around.push((methods, hook));
        self
    }
    pub fn before(mut self, methods: &'static [Method], hook: Arc<dyn Hook>) -> Self {
        self.before.push((methods, hook));
        self
    }
    pub fn after(mut self, methods: &'static [Method], hook: Arc<dyn Hook>) -> Self {
        self.after.push((methods, hook));
        self
    }
    pub(super) fn is_empty_for(&self, method: Method) -> bool {
        fn has<T: ?Sized>(list: &[(&[Method], Arc<T>)], method: Method) -> bool {
            list.iter().any(|(m, _)| m.contains(&method))
        }
        !has(&self.around, method) && !has(&self.before, method) && !has(&self.after, method)
    }
}

pub(super) fn for_method<'a, T: ?Sized>(
    list: &'a [(&'static [Method], Arc<T>)],
    method: Method,
) -> impl Iterator<Item = &'a Arc<T>> + 'a {
    list.iter()
        .filter(move |(m, _)| m.contains(&method))
        .map(|(_, h)| h)
}

/// Refuses a multi call (no id) of the methods it is declared for: 405, as the
/// Feathers adapters answer when `multi` is off.
pub struct SingleRecord;

#[async_trait]
impl Hook for SingleRecord {
    async fn run(&self, ctx: &mut Context) -> Result<()> {
        if ctx.id.is_none() {
            return Err(FeathersError::method_not_allowed(format!(
                "Can not {} multiple entries",
                ctx.method.as_str()
            )));
        }
        Ok(())
    }
}

/// `SingleRecord` for patch and remove, the usual declaration.
pub fn single_record() -> Arc<dyn Hook> {
    Arc::new(SingleRecord)
}
