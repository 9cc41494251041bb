//! Conversation counts kept by the database itself, so that a list's exact
//! `total` costs one small sum instead of a `COUNT(*)` over every matching row.
//!
//! Each *grouping* is a set of dimensions; for every grouping, the table
//! `conversation_counts` holds one row per combination of dimension values (per
//! organization and slot) with the number of live conversations in it. Triggers
//! change those rows in the same transaction as every insert, update and delete
//! of `conversations` (statement-level with transition tables on PostgreSQL, so
//! a bulk update is one aggregate; row-level on SQLite). A filter whose
//! dimensions all fit in one grouping is answered by summing that grouping's
//! matching rows. On PostgreSQL each backend writes its own slot, so concurrent
//! writers do not queue on one hot row.

/// The dimensions: name, SQL over a conversation row `r`, and SQL type.
pub const DIMENSIONS: &[(&str, &str, &str)] = &[
    ("status", "r.status", "VARCHAR"),
    ("channel", "r.channel", "VARCHAR"),
    ("assigned_user_id", "r.assigned_user_id", "BIGINT"),
    (
        "assigned_ai_assistant_id",
        "r.assigned_ai_assistant_id",
        "BIGINT",
    ),
    ("pipeline_id", "r.pipeline_id", "BIGINT"),
    ("pipeline_stage_id", "r.pipeline_stage_id", "BIGINT"),
    ("waiting", "(r.waiting_since IS NOT NULL)", "BOOLEAN"),
    ("unread", "(r.unread_count > 0)", "BOOLEAN"),
];

/// The groupings maintained; a grouping's number is its index.
pub const GROUPINGS: &[&[&str]] = &[
    &["status", "channel"],
    &["status", "channel", "assigned_user_id"],
    &["status", "channel", "assigned_ai_assistant_id"],
    &["status", "channel", "pipeline_id", "pipeline_stage_id"],
    &["status", "channel", "waiting", "unread"],
    &["status", "channel", "assigned_user_id", "waiting", "unread"],
];

/// The conversation columns the dimensions read.
const SOURCE_COLUMNS: &[&str] = &[
    "organization_id",
    "status",
    "channel",
    "assigned_user_id",
    "assigned_ai_assistant_id",
    "pipeline_id",
    "pipeline_stage_id",
    "waiting_since",
    "unread_count",
];

fn column_list() -> String {
    DIMENSIONS
        .iter()
        .map(|(n, _, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

/// One pass over the conversations in `source` (aliased `r`, with a `d` column of
/// +1/-1): their net count per organization and full combination of dimensions,
/// with one column per dimension.
fn combinations(source: &str) -> String {
    let dims = DIMENSIONS
        .iter()
        .map(|(name, sql, _)| format!("{sql} AS {name}"))
        .collect::<Vec<_>>()
        .join(", ");
    let group = DIMENSIONS
        .iter()
        .map(|(_, sql, _)| *sql)
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "SELECT r.organization_id, {dims}, SUM(r.d) AS d FROM {source} r GROUP BY r.organization_id, {group}"
    )
}

/// `SELECT` of the per-grouping rows of the combinations in `from` (aliased `c`).
fn grouping_rows(from: &str, slot: &str) -> String {
    GROUPINGS
        .iter()
        .enumerate()
        .map(|(g, dims)| {
            let key = dims
                .iter()
                .map(|d| format!("COALESCE(CAST(c.{d} AS TEXT), '~')"))
                .collect::<Vec<_>>()
                .join(" || '|' || ");
            let values = DIMENSIONS
                .iter()
                .map(|(name, _, ty)| {
                    if dims.contains(name) {
                        format!("c.{name} AS {name}")
                    } else {
                        // Typed, so that every branch of the UNION agrees (PostgreSQL insists).
                        format!("CAST(NULL AS {ty}) AS {name}")
                    }
                })
                .collect::<Vec<_>>()
                .join(", ");
            format!("SELECT c.organization_id, {g} AS grp, {key} AS combo, {slot} AS slot, {values}, c.d FROM {from} c")
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ")
}

/// The upsert of the counts changed by the conversations in `source`. With `cte`, the
/// combinations are computed once in a `WITH` (not allowed in SQLite trigger bodies).
fn upsert(source: &str, slot: &str, cte: bool) -> String {
    let cols = column_list();
    let (with, from) = if cte {
        (
            format!("WITH combos AS ({}) ", combinations(source)),
            "combos".to_string(),
        )
    } else {
        (String::new(), format!("({})", combinations(source)))
    };
    let rows = grouping_rows(&from, slot);
    format!(
        "{with}INSERT INTO conversation_counts (organization_id, grp, combo, slot, {cols}, n) \
         SELECT organization_id, grp, combo, slot, {cols}, SUM(d) FROM ({rows}) x \
         GROUP BY organization_id, grp, combo, slot, {cols} HAVING SUM(d) <> 0 \
         ORDER BY organization_id, grp, combo, slot \
         ON CONFLICT (organization_id, grp, combo, slot) DO UPDATE SET n = conversation_counts.n + excluded.n"
    )
}

/// PostgreSQL: one trigger function for the three statements, over transition tables.
/// Its upserts lock count rows in key order (`ORDER BY` the conflict key), so two
/// writers sharing a slot cannot deadlock on each other's rows.
pub fn postgres_function() -> String {
    let slot = "(pg_backend_pid() % 4)";
    let live_new = "(SELECT *, 1 AS d FROM new_rows WHERE deleted_at IS NULL)";
    let live_old = "(SELECT *, -1 AS d FROM old_rows WHERE deleted_at IS NULL)";
    let both = format!(
        "({} UNION ALL {})",
        &live_new[1..live_new.len() - 1],
        &live_old[1..live_old.len() - 1]
    );
    format!(
        "CREATE OR REPLACE FUNCTION conversation_counts_apply() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
         IF TG_OP = 'INSERT' THEN {}; \
         ELSIF TG_OP = 'DELETE' THEN {}; \
         ELSE {}; END IF; RETURN NULL; END $$",
        upsert(live_new, slot, true),
        upsert(live_old, slot, true),
        upsert(&both, slot, true),
    )
}

/// PostgreSQL: the trigger function and the three statement-level triggers.
pub fn postgres_triggers() -> Vec<String> {
    vec![
        postgres_function(),
        "CREATE TRIGGER conversation_counts_insert AFTER INSERT ON conversations REFERENCING NEW TABLE AS new_rows \
         FOR EACH STATEMENT EXECUTE FUNCTION conversation_counts_apply()"
            .into(),
        "CREATE TRIGGER conversation_counts_update AFTER UPDATE ON conversations REFERENCING OLD TABLE AS old_rows \
         NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION conversation_counts_apply()"
            .into(),
        "CREATE TRIGGER conversation_counts_delete AFTER DELETE ON conversations REFERENCING OLD TABLE AS old_rows \
         FOR EACH STATEMENT EXECUTE FUNCTION conversation_counts_apply()"
            .into(),
    ]
}

/// SQLite: row-level triggers; an update fires only when a counted column changes.
pub fn sqlite_triggers() -> Vec<String> {
    let row = |alias: &str, d: i32| {
        let cols = SOURCE_COLUMNS
            .iter()
            .map(|c| format!("{alias}.{c} AS {c}"))
            .collect::<Vec<_>>()
            .join(", ");
        format!("(SELECT {cols}, {d} AS d WHERE {alias}.deleted_at IS NULL)")
    };
    let watched = format!("{}, deleted_at", SOURCE_COLUMNS.join(", "));
    vec![
        format!(
            "CREATE TRIGGER conversation_counts_insert AFTER INSERT ON conversations BEGIN {}; END",
            upsert(&row("NEW", 1), "0", false)
        ),
        format!(
            "CREATE TRIGGER conversation_counts_update AFTER UPDATE OF {watched} ON conversations BEGIN {}; {}; END",
            upsert(&row("OLD", -1), "0", false),
            upsert(&row("NEW", 1), "0", false)
        ),
        format!(
            "CREATE TRIGGER conversation_counts_delete AFTER DELETE ON conversations BEGIN {}; END",
            upsert(&row("OLD", -1), "0", false)
        ),
    ]
}

/// Recomputes one organization's counts from its conversations (after a bulk load
/// that ran with triggers off). Same SQL on both databases.
pub fn rebuild(organization_id: i64) -> Vec<String> {
    let live = format!(
        "(SELECT {}, 1 AS d FROM conversations WHERE organization_id = {organization_id} AND deleted_at IS NULL)",
        SOURCE_COLUMNS.join(", ")
    );
    vec![
        format!("DELETE FROM conversation_counts WHERE organization_id = {organization_id}"),
        upsert(&live, "0", true),
    ]
}
