//! How a table is served: its schema, tenant, pages, multi methods, soft delete,
//! timestamps, virtual filters, counters, embeds and deep-page anchors.

use super::*;

/// Page sizes: `default` when no `$limit` is given, `$limit` clamped to `max`.
#[derive(Debug, Clone, Copy)]
pub struct Paginate {
    pub default: u64,
    pub max: Option<u64>,
}

/// Which methods may act on several records at once.
#[derive(Debug, Clone, Copy, Default)]
pub struct Multi {
    pub create: bool,
    pub patch: bool,
    pub remove: bool,
}

impl Multi {
    pub const ALL: Multi = Multi {
        create: true,
        patch: true,
        remove: true,
    };
}

/// Turns a service's virtual query keys into SQL conditions.
pub trait VirtualFilters: Send + Sync {
    fn condition(
        &self,
        name: &str,
        value: &Typed,
        principal: Option<&Principal>,
    ) -> Result<Condition>;

    /// Whether the filter reads only the row's own columns (no other table, no
    /// clock), so that it changes only when the row does (see [`Anchors`]).
    fn row_local(&self, _name: &str) -> bool {
        false
    }
}

/// Answers `total` without counting rows, when the filters allow it.
pub trait TotalCounter: Send + Sync {
    /// A query whose one row and column is the exact total, when maintained counts
    /// answer these filters; else `None` and the adapter counts with `COUNT(*)`.
    fn total_query(&self, tenant_id: Option<i64>, filters: &[Filter]) -> Option<SelectStatement>;
}

/// How one table is served.
#[derive(Clone)]
pub struct SqlOptions {
    pub table: &'static str,
    pub schema: Arc<Schema>,
    /// `None`: find answers a plain array.
    pub paginate: Option<Paginate>,
    pub multi: Multi,
    /// Column holding the tenant id; every query and write is scoped to the caller's.
    pub tenant_column: Option<&'static str>,
    /// Column set by remove instead of deleting; rows with it set are invisible.
    pub soft_delete_column: Option<&'static str>,
    /// Columns the adapter stamps on create / on every write.
    pub created_at: Option<&'static str>,
    pub updated_at: Option<&'static str>,
    /// Sort used when the query has no `$sort`; the id is always the last key.
    pub default_sort: Vec<(&'static str, Direction)>,
    pub virtuals: Option<Arc<dyn VirtualFilters>>,
    pub counter: Option<Arc<dyn TotalCounter>>,
    /// Deep pages start from remembered anchors (needs a tenant and a versions table).
    pub anchors: Option<Arc<Anchors>>,
    /// Records embedded through a many-to-one key, from copies on the row.
    pub embeds: Vec<Embed>,
    /// Columns this service is bound to: every query matches them, every insert sets them
    /// (one table served by several paths, e.g. one per channel).
    pub fixed: Vec<(&'static str, sea_orm::sea_query::Value)>,
}

impl SqlOptions {
    /// A table with an id, no tenant, no pagination and no multi.
    pub fn new(table: &'static str, schema: Schema) -> Self {
        Self {
            table,
            schema: Arc::new(schema),
            paginate: None,
            multi: Multi::default(),
            tenant_column: None,
            soft_delete_column: None,
            created_at: None,
            updated_at: None,
            default_sort: Vec::new(),
            virtuals: None,
            counter: None,
            anchors: None,
            fixed: Vec::new(),
            embeds: Vec::new(),
        }
    }
    pub fn paginate(mut self, default: u64, max: Option<u64>) -> Self {
        self.paginate = Some(Paginate { default, max });
        self
    }
    pub fn multi(mut self, multi: Multi) -> Self {
        self.multi = multi;
        self
    }
    pub fn tenant(mut self, column: &'static str) -> Self {
        self.tenant_column = Some(column);
        if self.schema.field(column).is_none() {
            // A query may name the tenant column (only the caller's own value passes,
            // see `parse_query`), so it must parse even when the schema does not show it.
            Arc::make_mut(&mut self.schema)
                .fields
                .push(Field::new(column, FieldType::Integer).filter().hidden());
        }
        self
    }
    pub fn soft_delete(mut self, column: &'static str) -> Self {
        self.soft_delete_column = Some(column);
        self
    }
    pub fn timestamps(mut self, created_at: &'static str, updated_at: &'static str) -> Self {
        self.created_at = Some(created_at);
        self.updated_at = Some(updated_at);
        self
    }
    pub fn default_sort(mut self, sort: Vec<(&'static str, Direction)>) -> Self {
        self.default_sort = sort;
        self
    }
    pub fn virtuals(mut self, v: Arc<dyn VirtualFilters>) -> Self {
        self.virtuals = Some(v);
        self
    }
    pub fn fixed(
        mut self,
        column: &'static str,
        value: impl Into<sea_orm::sea_query::Value>,
    ) -> Self {
        self.fixed.push((column, value.into()));
        self
    }
    pub fn embed(mut self, embed: Embed) -> Self {
        self.embeds.push(embed);
        self
    }
    pub fn counter(mut self, c: Arc<dyn TotalCounter>) -> Self {
        self.counter = Some(c);
        self
    }
    /// Deep pages from anchors, validated by the per-tenant change counts the database
    /// keeps in `versions_table` (see [`Anchors`]).
    pub fn anchored(mut self, versions_table: &'static str) -> Self {
        self.anchors = Some(Arc::new(Anchors::new(versions_table)));
        self
    }
}

/// What a write is for: which fields are writable and which are required.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    Create,
    Update,
    Patch,
}
