//! A generic Feathers 5 service layer: services, schemas, the query language, a
//! SQL adapter and the REST transport. Nothing in here knows the domain.

pub mod anchors;
pub mod error;
pub mod hooks;
pub mod qs;
pub mod query;
pub mod rate_limit;
pub mod registry;
pub mod rest;
pub mod rows;
pub mod schema;
pub mod service;
pub mod sql;
pub mod sql_text;
pub mod unit;

pub use error::{FeathersError, Result};
pub use hooks::{Around, Context, Hook, Hooks, Method, Next};
pub use query::{Direction, Filter, Op, Query};
pub use registry::{Access, Registry, Weighed};
pub use schema::{Field, FieldType, Schema, Typed};
pub use service::{Id, JsonText, Params, Principal, Service};
pub use sql::{Multi, SqlOptions, SqlService, WriteMode};
pub use unit::Unit;
