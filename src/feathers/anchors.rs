//! Deep pages that start from an anchor instead of skipping rows.
//!
//! `$skip=N` makes the database read N index entries and throw them away. For a
//! table whose writes the database counts per tenant (a *versions* table of
//! `(tenant, slot, v)` rows, bumped by triggers in the same transaction as every
//! insert, update and delete of the table), a page past the first remembers its
//! first row and the tenant's version. The next request for the same position asks,
//! in one statement and so in one snapshot:
//!
//! ```sql
//! SELECT <row>, <total>, <version> FROM t WHERE <cond> AND (<keys>) <= (
//!     SELECT <keys> FROM t WHERE <cond> AND id = <anchor> AND <version> = <seen>
//!     UNION ALL
//!     SELECT * FROM (SELECT <keys> FROM t WHERE <cond> ORDER BY <sort> LIMIT 1 OFFSET N) a
//!     WHERE <version> <> <seen>)
//! ORDER BY <sort> LIMIT <limit>
//! ```
//!
//! (`>=` for an ascending sort). The page is exact either way: while the version
//! is the one seen, the tenant's rows are the ones the anchor was found among, so
//! the anchor is still at position N; otherwise the second branch finds position N
//! by skipping, as it would without an anchor. PostgreSQL evaluates the version
//! once and runs only the branch it selects, and the row comparison is an index
//! range, so an unchanged list's deep page costs what its first page costs.
//!
//! Used only where that reasoning holds: the sort keys (the id last) are all in one
//! direction and none is nullable, so the row comparison is the order; and every
//! filter reads the row's own columns (a filter over another table, or the clock,
//! could change the page with no write to this table).

use super::sql_text::{compose, embed};
use quick_cache::{Weighter, sync::Cache};
use sea_orm::sea_query::{Expr, ExprTrait, SelectStatement, Value as SqlValue};
use sea_orm::{DbBackend, Statement};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;

/// Bytes of anchors kept per service instance (least recently useful evicted first):
/// about 18,000 anchors, each a 32-byte key and two integers.
pub const ANCHOR_BYTES: u64 = 2 << 20;
/// Bytes of built page statements kept per service instance, keys included: a few
/// thousand statements of a few kilobytes (a `/conversations` deep page: about 3.5 KB).
pub const STATEMENT_BYTES: u64 = 16 << 20;
/// Key material (a request's principal, filters, sort and select; or an anchor's
/// statement and values) above which nothing is remembered for it: such a request
/// is served by skipping rows, as without anchors, and holds no memory afterwards.
pub const MAX_KEY_BYTES: usize = 4096;
/// What an entry costs beyond its key and value (the cache's slot and bookkeeping).
const ENTRY_OVERHEAD: u64 = 64;

/// Remembered first rows of deep pages, with the version they were read at.
///
/// Both caches are bounded by bytes (their [`Weighter`]s), not by entries, and never
/// hold a key longer than [`MAX_KEY_BYTES`]:
/// - an anchor is keyed by the SHA-256 of its statement and values (32 bytes). A
///   collision could at worst start a page at another row of the same tenant's table:
///   the page statement still carries the request's own conditions (tenant included)
///   and the version check, so it cannot show another tenant's rows; and finding a
///   SHA-256 collision is beyond reach anyway;
/// - a kept statement is keyed by the request itself (principal, filters, sort,
///   select, skip, limit) compared in full, so it is only ever served to the same
///   principal for the same query: a hash would save nothing there, since the
///   statement holds the filter values anyway.
pub struct Anchors {
    /// The versions table; its tenant column has the served table's tenant column name.
    pub versions_table: &'static str,
    cache: Cache<[u8; 32], Anchor, AnchorWeight>,
    /// Page statements built from an anchor, by request, with the version they were
    /// built at. Any of them is exact whenever it runs (it checks the version itself);
    /// kept so that a repeated deep page is not built again.
    statements: Cache<String, Kept, KeptWeight>,
}

#[derive(Debug, Clone, Copy)]
struct Anchor {
    id: i64,
    version: i64,
}

/// A kept page statement, the version it was built at, and what it weighs.
#[derive(Clone)]
struct Kept {
    statement: Statement,
    version: i64,
    bytes: u64,
}

#[derive(Clone)]
struct AnchorWeight;

impl Weighter<[u8; 32], Anchor> for AnchorWeight {
    fn weight(&self, _: &[u8; 32], _: &Anchor) -> u64 {
        (32 + size_of::<Anchor>()) as u64 + ENTRY_OVERHEAD
    }
}

#[derive(Clone)]
struct KeptWeight;

impl Weighter<String, Kept> for KeptWeight {
    fn weight(&self, key: &String, kept: &Kept) -> u64 {
        key.len() as u64 + kept.bytes + ENTRY_OVERHEAD
    }
}

/// The statements a deep page is made from, built by the SQL adapter.
pub struct AnchorQuery {
    /// `SELECT <keys> FROM t WHERE <cond>`, the keys being the sort columns, id last.
    pub keyed: SelectStatement,
    /// `keyed` sorted, with `LIMIT 1 OFFSET <skip>`: the row a page starts at.
    pub at_skip: Statement,
    /// The id column and the sort columns, as expressions over `t`.
    pub id: Expr,
    pub keys: Vec<Expr>,
    pub ascending: bool,
    /// The tenant's version: `SELECT SUM(v) FROM <versions> WHERE <tenant> = ...`.
    pub version: SelectStatement,
}

/// What a page query adds: a condition, a version column, and where to remember it.
pub struct AnchoredPage {
    pub condition: Expr,
    pub version_column: Expr,
    /// The version of the remembered anchor the condition starts from, if any.
    pub anchored_at: Option<i64>,
    /// `None` when the key material is too large to remember anything for it.
    key: Option<[u8; 32]>,
}

impl Anchors {
    pub fn new(versions_table: &'static str) -> Self {
        Self::with_budget(versions_table, ANCHOR_BYTES, STATEMENT_BYTES)
    }

    /// Caches of `anchor_bytes` and `statement_bytes`.
    pub fn with_budget(
        versions_table: &'static str,
        anchor_bytes: u64,
        statement_bytes: u64,
    ) -> Self {
        Self {
            versions_table,
            cache: Cache::with_weighter((anchor_bytes / 112) as usize, anchor_bytes, AnchorWeight),
            statements: Cache::with_weighter(
                (statement_bytes / 4096) as usize,
                statement_bytes,
                KeptWeight,
            ),
        }
    }

    /// Bytes held by the anchors and the kept statements (their weights).
    pub fn bytes(&self) -> u64 {
        self.cache.weight() + self.statements.weight()
    }

    /// The page statement kept for a request, with the version it was built at.
    pub fn statement(&self, request: &str) -> Option<(Statement, i64)> {
        (self.statements.get(request)).map(|kept| (kept.statement, kept.version))
    }

    /// Keeps a page statement built from an anchor that was current (`version`),
    /// unless its request is longer than [`MAX_KEY_BYTES`].
    pub fn keep_statement(&self, request: String, statement: Statement, version: i64) {
        if request.len() > MAX_KEY_BYTES {
            return;
        }
        // (Its values repeat the request's filter values, so it is bounded with it.)
        let bytes = statement_bytes(&statement);
        self.statements.insert(
            request,
            Kept {
                statement,
                version,
                bytes,
            },
        );
    }

    /// Drops a kept statement whose anchor is out of date.
    pub fn forget_statement(&self, request: &str) {
        self.statements.remove(request);
    }

    /// The condition "at or after the row at position `skip`" for `query`, from a
    /// remembered anchor when there is one.
    pub fn page(&self, backend: DbBackend, query: AnchorQuery) -> AnchoredPage {
        let key = anchor_key(&query.at_skip);
        let version = || Expr::SubQuery(None, Box::new(query.version.clone().into()));
        let at_skip = embed(query.at_skip);
        let anchor = key.and_then(|key| self.cache.get(&key));
        let start = match anchor {
            Some(anchor) => {
                let mut same = query.keyed.clone();
                same.and_where(query.id.clone().eq(anchor.id))
                    .and_where(version().eq(anchor.version));
                let same = embed(backend.build(&same));
                compose(
                    backend,
                    "{} UNION ALL SELECT * FROM ({}) AS page_anchor WHERE {} <> {}",
                    vec![same, at_skip, version(), Expr::val(anchor.version)],
                )
            }
            None => at_skip,
        };
        // (sea-query parenthesizes a custom expression on the right of a comparison.)
        let keys = Expr::tuple(query.keys);
        AnchoredPage {
            condition: if query.ascending {
                keys.gte(start)
            } else {
                keys.lte(start)
            },
            version_column: version(),
            anchored_at: anchor.map(|a| a.version),
            key,
        }
    }

    /// Remembers a served page's first row and the version it was read at.
    pub fn remember(&self, page: AnchoredPage, first_id: i64, version: i64) {
        if let Some(key) = page.key {
            let anchor = Anchor {
                id: first_id,
                version,
            };
            self.cache.insert(key, anchor);
        }
    }
}

impl super::registry::Weighed for Anchors {
    fn bytes(&self) -> u64 {
        Anchors::bytes(self)
    }
}

/// The SHA-256 of a statement's SQL and values, fed as they are formatted (no
/// string is built); `None` past [`MAX_KEY_BYTES`], where formatting stops.
fn anchor_key(statement: &Statement) -> Option<[u8; 32]> {
    struct Hashing {
        hash: Sha256,
        len: usize,
    }
    impl std::fmt::Write for Hashing {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            self.len += s.len();
            if self.len > MAX_KEY_BYTES {
                return Err(std::fmt::Error);
            }
            self.hash.update(s.as_bytes());
            Ok(())
        }
    }
    let mut key = Hashing {
        hash: Sha256::new(),
        len: 0,
    };
    write!(key, "{}\u{0}{:?}", statement.sql, statement.values).ok()?;
    Some(key.hash.finalize().into())
}

/// `args` formatted, or `None` (formatting stopped) past [`MAX_KEY_BYTES`].
pub fn bounded_key(args: std::fmt::Arguments) -> Option<String> {
    struct Bounded(String);
    impl std::fmt::Write for Bounded {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            if self.0.len() + s.len() > MAX_KEY_BYTES {
                return Err(std::fmt::Error);
            }
            self.0.push_str(s);
            Ok(())
        }
    }
    let mut key = Bounded(String::with_capacity(512));
    key.write_fmt(args).ok()?;
    Some(key.0)
}

/// About what a statement holds on the heap: its SQL and its values.
fn statement_bytes(statement: &Statement) -> u64 {
    let values = statement.values.as_ref().map_or(0, |values| {
        (values.0.iter())
            .map(|v| size_of::<SqlValue>() + value_heap_bytes(v))
            .sum()
    });
    (size_of::<Statement>() + statement.sql.len() + values) as u64
}

fn value_heap_bytes(value: &SqlValue) -> usize {
    match value {
        SqlValue::String(Some(s)) => s.len(),
        SqlValue::Bytes(Some(b)) => b.len(),
        SqlValue::Json(Some(j)) => json_bytes(j),
        _ => 0,
    }
}

/// About what a JSON value holds on the heap (its text length, plus a node per value).
fn json_bytes(value: &serde_json::Value) -> usize {
    use serde_json::Value::*;
    size_of::<serde_json::Value>()
        + match value {
            String(s) => s.len(),
            Array(items) => items.iter().map(json_bytes).sum(),
            Object(map) => map.iter().map(|(k, v)| k.len() + json_bytes(v)).sum(),
            _ => 0,
        }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::sea_query::{Alias, Query};

    fn query(backend: DbBackend) -> AnchorQuery {
        let col = |c: &str| Expr::col((Alias::new("t"), Alias::new(c)));
        let mut keyed = Query::select();
        keyed
            .column((Alias::new("t"), Alias::new("at")))
            .column((Alias::new("t"), Alias::new("id")))
            .from(Alias::new("t"))
            .and_where(col("org").eq(7));
        let mut at_skip = backend.build(&keyed);
        at_skip.sql.push_str(" LIMIT 1 OFFSET 40");
        let mut version = Query::select();
        version
            .expr(Expr::cust("SUM(v)"))
            .from(Alias::new("versions"))
            .and_where(Expr::col(Alias::new("org")).eq(7));
        AnchorQuery {
            keyed,
            at_skip,
            id: col("id"),
            keys: vec![col("at"), col("id")],
            ascending: false,
            version,
        }
    }

    fn page_sql(anchors: &Anchors, backend: DbBackend) -> (String, AnchoredPage) {
        let page = anchors.page(backend, query(backend));
        let mut select = Query::select();
        select
            .column(Alias::new("id"))
            .from(Alias::new("t"))
            .and_where(page.condition.clone());
        let built = backend.build(&select);
        (format!("{} {:?}", built.sql, built.values), page)
    }

    #[test]
    fn without_an_anchor_the_page_starts_at_the_skipped_row() {
        let anchors = Anchors::new("versions");
        let (sql, _) = page_sql(&anchors, DbBackend::Postgres);
        assert!(sql.contains(r#"("t"."at", "t"."id") <= (SELECT"#), "{sql}");
        assert!(sql.contains("LIMIT 1 OFFSET 40"), "{sql}");
        assert!(!sql.contains("UNION"), "{sql}");
    }

    #[test]
    fn a_remembered_anchor_is_used_only_at_its_version() {
        let anchors = Anchors::new("versions");
        let (_, page) = page_sql(&anchors, DbBackend::Postgres);
        anchors.remember(page, 1234, 99);
        let (sql, _) = page_sql(&anchors, DbBackend::Postgres);
        // Both branches, gated on the version, placeholders numbered in order.
        assert!(sql.contains(r#""t"."id" = $2"#), "{sql}");
        assert!(sql.contains("UNION ALL SELECT * FROM (SELECT"), "{sql}");
        assert!(sql.contains("AS page_anchor WHERE (SELECT SUM(v)"), "{sql}");
        assert!(sql.contains("<> $"), "{sql}");
        assert!(sql.contains("BigInt(Some(1234))"), "{sql}");
        assert_eq!(sql.matches("BigInt(Some(99))").count(), 2, "{sql}");
        let (_, page) = page_sql(&anchors, DbBackend::Sqlite);
        anchors.remember(page, 1234, 99);
        let (sqlite, _) = page_sql(&anchors, DbBackend::Sqlite);
        assert!(
            sqlite.contains("UNION ALL") && !sqlite.contains('$'),
            "{sqlite}"
        );
    }

    #[test]
    fn bounded_by_bytes_and_large_keys_keep_nothing() {
        let anchors = Anchors::with_budget("versions", 64 << 10, 256 << 10);
        for i in 0..5_000 {
            let mut q = query(DbBackend::Postgres);
            q.at_skip.sql.push_str(&format!(" -- {i}"));
            let page = anchors.page(DbBackend::Postgres, q);
            anchors.remember(page, i, 1);
            let statement = Statement::from_string(DbBackend::Postgres, "x".repeat(2000));
            anchors.keep_statement(format!("request {i}"), statement, 1);
        }
        assert!(anchors.cache.weight() <= 64 << 10);
        assert!(anchors.statements.weight() <= 256 << 10);
        assert!(
            anchors.statements.len() > 50,
            "{}",
            anchors.statements.len()
        );
        // Key material past MAX_KEY_BYTES: neither looked up nor remembered.
        let empty = Anchors::new("versions");
        let mut q = query(DbBackend::Postgres);
        q.at_skip.sql.push_str(&"x".repeat(MAX_KEY_BYTES));
        let page = empty.page(DbBackend::Postgres, q);
        empty.remember(page, 1, 1);
        let request = bounded_key(format_args!("{}", "y".repeat(MAX_KEY_BYTES + 1)));
        assert_eq!(request, None);
        assert_eq!(empty.bytes(), 0);
        assert!(bounded_key(format_args!("{}", "y".repeat(MAX_KEY_BYTES))).is_some());
    }
}
