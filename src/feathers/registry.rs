//! The service registry: the one place a service is declared (`use_service`).
//! REST routes and internal calls both go through it, and every successful
//! write publishes `created`/`updated`/`patched`/`removed` on the event bus.

use super::error::{FeathersError, Result};
use super::service::{Id, JsonText, Params, Service};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::broadcast;

/// A change event, one per record (multi results publish one each).
#[derive(Debug, Clone)]
pub struct ServiceEvent {
    pub path: String,
    /// `created`, `updated`, `patched` or `removed`.
    pub event: &'static str,
    pub tenant_id: Option<i64>,
    pub data: Value,
}

/// Whether a path needs an authenticated caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Public,
    Authenticated,
}

struct Entry {
    service: Arc<dyn Service>,
    access: Access,
}

/// A cache or map that grows with requests, by the bytes it says it holds.
pub trait Weighed: Send + Sync {
    fn bytes(&self) -> u64;
}

/// All services of the app, by path (no leading or trailing slash).
pub struct Registry {
    services: HashMap<String, Entry>,
    events: broadcast::Sender<ServiceEvent>,
    caches: Vec<(String, Arc<dyn Weighed>)>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl Registry {
    pub fn new() -> Self {
        Self {
            services: HashMap::new(),
            events: broadcast::channel(1024).0,
            caches: Vec::new(),
        }
    }

    /// Declares a service at `path`.
    pub fn use_service(&mut self, path: &str, access: Access, service: Arc<dyn Service>) {
        let path = path.trim_matches('/').to_string();
        assert!(
            !self.services.contains_key(&path),
            "service {path} declared twice"
        );
        self.services.insert(path, Entry { service, access });
    }

    /// The service at `path`, wrapped so that writes publish events.
    pub fn service(&self, path: &str) -> Option<ServiceHandle<'_>> {
        let (path, entry) = self.services.get_key_value(path.trim_matches('/'))?;
        Some(ServiceHandle {
            path,
            access: entry.access,
            service: entry.service.as_ref(),
            events: &self.events,
        })
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

    /// Subscribes to every service event.
    pub fn subscribe(&self) -> broadcast::Receiver<ServiceEvent> {
        self.events.subscribe()
    }
}

/// A service as callers use it: the same methods, plus events after writes.
pub struct ServiceHandle<'a> {
    pub path: &'a str,
    pub access: Access,
    service: &'a dyn Service,
    events: &'a broadcast::Sender<ServiceEvent>,
}

impl ServiceHandle<'_> {
    pub async fn find(&self, params: &Params) -> Result<Value> {
        self.service.find(params).await
    }
    pub async fn find_raw(&self, params: &Params) -> Result<JsonText> {
        self.service.find_raw(params).await
    }
    pub async fn get(&self, id: &Id, params: &Params) -> Result<Value> {
        self.service.get(id, params).await
    }
    pub async fn create(&self, data: Value, params: &Params) -> Result<Value> {
        let result = self.service.create(data, params).await?;
        self.publish("created", &result, params);
        Ok(result)
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
        let result = self.service.update(id, data, params).await?;
        self.publish("updated", &result, params);
        Ok(result)
    }
    pub async fn patch(&self, id: Option<&Id>, data: Value, params: &Params) -> Result<Value> {
        let result = self.service.patch(id, data, params).await?;
        self.publish("patched", &result, params);
        Ok(result)
    }
    pub async fn remove(&self, id: Option<&Id>, params: &Params) -> Result<Value> {
        let result = self.service.remove(id, params).await?;
        self.publish("removed", &result, params);
        Ok(result)
    }

    fn publish(&self, event: &'static str, result: &Value, params: &Params) {
        // An event goes to its tenant's subscribers; a write made without a tenant
        // (a login) has no one to go to.
        let Some(tenant_id) = params.principal.as_ref().map(|p| p.tenant_id) else {
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
            // No subscriber is fine: the bus is best-effort fan-out in this process.
            let _ = self.events.send(ServiceEvent {
                path: self.path.to_string(),
                event,
                tenant_id: Some(tenant_id),
                data,
            });
        }
    }
}
