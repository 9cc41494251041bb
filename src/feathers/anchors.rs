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

use quick_cache::sync::Cache;
use sea_orm::sea_query::{Expr, ExprTrait, SelectStatement};
use sea_orm::{DbBackend, Statement};

/// Anchors remembered per service instance (least recently useful evicted first).
const CAPACITY: usize = 10_000;
/// Built page statements kept per service instance (a few kilobytes each).
const STATEMENTS: usize = 1_000;

/// Remembered first rows of deep pages, with the version they were read at.
pub struct Anchors {
    /// The versions table; its tenant column has the served table's tenant column name.
    pub versions_table: &'static str,
    cache: Cache<String, Anchor>,
    /// Page statements built from an anchor, by request, with the version they were
    /// built at. Any of them is exact whenever it runs (it checks the version itself);
    /// kept so that a repeated deep page is not built again.
    statements: Cache<String, (Statement, i64)>,
}

#[derive(Debug, Clone, Copy)]
struct Anchor {
    id: i64,
    version: i64,
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
    key: String,
}

impl Anchors {
    pub fn new(versions_table: &'static str) -> Self {
        Self {
            versions_table,
            cache: Cache::new(CAPACITY),
            statements: Cache::new(STATEMENTS),
        }
    }

    /// The page statement kept for a request, with the version it was built at.
    pub fn statement(&self, request: &str) -> Option<(Statement, i64)> {
        self.statements.get(request)
    }

    /// Keeps a page statement built from an anchor that was current (`version`).
    pub fn keep_statement(&self, request: String, statement: Statement, version: i64) {
        self.statements.insert(request, (statement, version));
    }

    /// Drops a kept statement whose anchor is out of date.
    pub fn forget_statement(&self, request: &str) {
        self.statements.remove(request);
    }

    /// The condition "at or after the row at position `skip`" for `query`, from a
    /// remembered anchor when there is one.
    pub fn page(&self, backend: DbBackend, query: AnchorQuery) -> AnchoredPage {
        let key = format!("{}\u{0}{:?}", query.at_skip.sql, query.at_skip.values);
        let version = || Expr::SubQuery(None, Box::new(query.version.clone().into()));
        let at_skip = embed(query.at_skip);
        let anchor = self.cache.get(&key);
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
        self.cache.insert(
            page.key,
            Anchor {
                id: first_id,
                version,
            },
        );
    }
}

/// A built statement as an expression (its placeholders renumbered where it lands).
fn embed(statement: Statement) -> Expr {
    Expr::cust_with_values(
        statement.sql,
        statement.values.map(|v| v.0).unwrap_or_default(),
    )
}

/// `template` with each `{}` replaced by the next of `parts`.
fn compose(backend: DbBackend, template: &str, parts: Vec<Expr>) -> Expr {
    let mut sql = String::new();
    for (i, piece) in template.split("{}").enumerate() {
        if i > 0 {
            match backend {
                DbBackend::Postgres => sql.push_str(&format!("${i}")),
                _ => sql.push('?'),
            }
        }
        sql.push_str(piece);
    }
    Expr::cust_with_exprs(sql, parts)
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
}
