//! The service registry: the one place a service is declared (`use_service`, with
//! its hooks). REST routes and internal calls both go through it: each call runs
//! the app's hooks, then the service's, then the service; a successful write
//! records one `created`/`updated`/`patched`/`removed` event per record in the
//! call's unit of work (secret fields stripped), which publishes them at commit.

use super::error::{FeathersError, Result};
use super::hooks::{Around, Context, Hook, Hooks, Inner, Method, Next, for_method};
use super::service::{Id, JsonText, Params, Service};
use async_trait::async_trait;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// Whether a path needs an authenticated caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Public,
    Authenticated,
}

struct Entry {
    service: Arc<dyn Service>,
    access: Access,
    hooks: Hooks,
}

/// A cache or map that grows with requests, by the bytes it says it holds.
pub trait Weighed: Send + Sync {
    fn bytes(&self) -> u64;
}

/// Where the event stream stands: the seq REST answers carry as `X-Last-Event-Id`.
pub trait Position: Send + Sync {
    fn last_seq(&self) -> Option<i64>;
}

/// All services of the app, by path (no leading or trailing slash).
#[derive(Default)]
pub struct Registry {
    services: HashMap<String, Entry>,
    hooks: Hooks,
    caches: Vec<(String, Arc<dyn Weighed>)>,
    position: Option<Arc<dyn Position>>,
}

/// A service just declared: its hooks are declared on it.
pub struct Declared<'a>(&'a mut Entry);

impl Declared<'_> {
    /// The service's hooks (Feathers' `app.service(path).hooks({...})`).
    pub fn hooks(self, hooks: Hooks) {
        self.0.hooks = hooks;
    }
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Declares a service at `path`.
    pub fn use_service(
        &mut self,
        path: &str,
        access: Access,
        service: Arc<dyn Service>,
    ) -> Declared<'_> {
        let path = path.trim_matches('/').to_string();
        assert!(
            !self.services.contains_key(&path),
            "service {path} declared twice"
        );
        let entry = self.services.entry(path).or_insert(Entry {
            service,
            access,
            hooks: Hooks::new(),
        });
        Declared(entry)
    }

    /// The app's hooks, run around every service's (Feathers' `app.hooks({...})`).
    pub fn hooks(&mut self, hooks: Hooks) {
        self.hooks = hooks;
    }

    /// The service at `path`, wrapped so that calls run their hooks.
    pub fn service(&self, path: &str) -> Option<ServiceHandle<'_>> {
        let (path, entry) = self.services.get_key_value(path.trim_matches('/'))?;
        Some(ServiceHandle {
            path,
            access: entry.access,
            service: entry.service.as_ref(),
            app: &self.hooks,
            own: &entry.hooks,
        })
    }

    /// The paths of every declared service.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.services.keys().map(String::as_str)
    }

    /// Declares a cache of the app, so that what it holds can be read ([`Self::caches`]).
    pub fn add_cache(&mut self, name: &str, cache: Arc<dyn Weighed>) {
        self.caches.push((name.to_string(), cache));
    }

    /// Each declared cache's name and the bytes it holds now (its own accounting).
    pub fn caches(&self) -> Vec<(String, u64)> {
        (self.caches.iter())
            .map(|(name, cache)| (name.clone(), cache.bytes()))
            .collect()
    }

    /// Declares where the event stream stands (for `X-Last-Event-Id`).
    pub fn set_position(&mut self, position: Arc<dyn Position>) {
        self.position = Some(position);
    }

    /// The last event seq this instance knows committed, if events are kept.
    pub fn last_seq(&self) -> Option<i64> {
        self.position.as_ref().and_then(|p| p.last_seq())
    }
}

/// A service as callers use it: the same methods, with the hooks around them.
pub struct ServiceHandle<'a> {
    pub path: &'a str,
    pub access: Access,
    service: &'a dyn Service,
    app: &'a Hooks,
    own: &'a Hooks,
}

impl ServiceHandle<'_> {
    pub async fn find(&self, params: &Params) -> Result<Value> {
        if self.hookless(Method::Find) {
            return self.service.find(params).await;
        }
        self.call(Method::Find, None, None, params).await
    }
    /// `find` as JSON text (what REST sends). With find hooks declared, the hooks run
    /// on the records and the answer is serialized after them.
    pub async fn find_raw(&self, params: &Params) -> Result<JsonText> {
        if self.hookless(Method::Find) {
            return self.service.find_raw(params).await;
        }
        let value = self.call(Method::Find, None, None, params).await?;
        let text = serde_json::to_vec(&value)
            .map_err(|e| FeathersError::general(format!("could not serialize: {e}")))?;
        match params.max_answer_bytes {
            Some(max) if text.len() > max => Err(super::rows::answer_too_large(max)),
            _ => Ok(JsonText(text)),
        }
    }
    pub async fn get(&self, id: &Id, params: &Params) -> Result<Value> {
        if self.hookless(Method::Get) {
            return self.service.get(id, params).await;
        }
        self.call(Method::Get, Some(id), None, params).await
    }
    pub async fn create(&self, data: Value, params: &Params) -> Result<Value> {
        self.call(Method::Create, None, Some(data), params).await
    }
    pub fn create_status(&self, params: &Params) -> u16 {
        self.service.create_status(params)
    }
    pub async fn update(&self, id: Option<&Id>, data: Value, params: &Params) -> Result<Value> {
        if id.is_none() {
            return Err(FeathersError::bad_request(
                "You can not replace multiple instances. Did you mean 'patch'?",
            ));
        }
        self.call(Method::Update, id, Some(data), params).await
    }
    pub async fn patch(&self, id: Option<&Id>, data: Value, params: &Params) -> Result<Value> {
        self.call(Method::Patch, id, Some(data), params).await
    }
    pub async fn remove(&self, id: Option<&Id>, params: &Params) -> Result<Value> {
        self.call(Method::Remove, id, None, params).await
    }

    fn hookless(&self, method: Method) -> bool {
        self.app.is_empty_for(method) && self.own.is_empty_for(method)
    }

    async fn call(
        &self,
        method: Method,
        id: Option<&Id>,
        data: Option<Value>,
        params: &Params,
    ) -> Result<Value> {
        let around: Vec<Arc<dyn Around>> = for_method(&self.app.around, method)
            .chain(for_method(&self.own.around, method))
            .cloned()
            .collect();
        let mut ctx = Context {
            path: self.path.to_string(),
            method,
            id: id.cloned(),
            data,
            params: params.clone(),
            result: None,
            dry_run: method == Method::Create && self.service.create_status(params) != 201,
        };
        Next {
            around: &around,
            inner: self,
        }
        .run(&mut ctx)
        .await?;
        ctx.result
            .ok_or_else(|| FeathersError::general(format!("{} answered nothing", method.as_str())))
    }

    async fn invoke(&self, ctx: &mut Context) -> Result<Value> {
        let (id, params) = (ctx.id.as_ref(), &ctx.params);
        let data = || ctx.data.clone().unwrap_or(Value::Null);
        match ctx.method {
            Method::Find => self.service.find(params).await,
            Method::Get => {
                let id = id.ok_or_else(|| FeathersError::general("get without an id"))?;
                self.service.get(id, params).await
            }
            Method::Create => self.service.create(data(), params).await,
            Method::Update => self.service.update(id, data(), params).await,
            Method::Patch => self.service.patch(id, data(), params).await,
            Method::Remove => self.service.remove(id, params).await,
        }
    }

    /// One event per record of a write's result, in the call's unit of work. A write
    /// outside a unit or without a tenant (a login) records nothing.
    fn record(&self, ctx: &Context, result: &Value) {
        let (Some(event), Some(unit)) = (ctx.method.event(), &ctx.params.unit) else {
            return;
        };
        let secrets = self.service.secret_fields();
        let records: Vec<&Value> = match result {
            Value::Array(items) => items.iter().collect(),
            Value::Null => Vec::new(),
            other => vec![other],
        };
        for data in records {
            let mut data = data.clone();
            if let Value::Object(fields) = &mut data {
                for secret in secrets {
                    fields.shift_remove(*secret);
                }
            }
            unit.record(self.path, event, data);
        }
    }
}

#[async_trait]
impl Inner for ServiceHandle<'_> {
    async fn run(&self, ctx: &mut Context) -> Result<()> {
        let method = ctx.method;
        let before: Vec<&Arc<dyn Hook>> = for_method(&self.app.before, method)
            .chain(for_method(&self.own.before, method))
            .collect();
        for hook in before {
            hook.run(ctx).await?;
            if ctx.result.is_some() {
                break;
            }
        }
        if ctx.result.is_none() {
            let result = self.invoke(ctx).await?;
            self.record(ctx, &result);
            ctx.result = Some(result);
        }
        let after: Vec<&Arc<dyn Hook>> = for_method(&self.own.after, method)
            .chain(for_method(&self.app.after, method))
            .collect();
        for hook in after {
            hook.run(ctx).await?;
        }
        Ok(())
    }
}
