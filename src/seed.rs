//! `inbox-gateway seed`: a benchmark organization with users, AI assistants,
//! pipelines, tags and N contacts with one conversation each, inserted with
//! set-based SQL (one statement per table), so a million rows take seconds.
//! Distribution: 30% open; channels round-robin; 20 agents plus unassigned;
//! 3 AI assistants plus none; 3 pipelines of 5 stages plus none; 20% unread;
//! a third of the open ones waiting; a tenth of the contacts tagged.

use crate::auth::password;
use crate::services::conversations::CHANNELS;
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, TransactionTrait};

pub const SEED_PASSWORD: &str = "bench-password";

/// What was seeded.
#[derive(Debug, serde::Serialize)]
pub struct SeedReport {
    pub organization_id: i64,
    pub admin_email: String,
    pub admin_password: &'static str,
    pub conversations: u64,
    pub open: i64,
    /// The conversation that got `messages` messages, and its channel.
    pub message_conversation_id: Option<i64>,
    pub message_channel: Option<String>,
    pub messages: u64,
}

fn case(expr: &str, values: &[String]) -> String {
    let arms: String = values
        .iter()
        .enumerate()
        .map(|(i, v)| format!(" WHEN {i} THEN {v}"))
        .collect();
    format!("(CASE ({expr}) % {}{arms} END)", values.len())
}

/// Why `seed` stopped (nothing of it is kept: it runs in one transaction).
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("could not create the benchmark organization")]
    Admin(#[from] crate::admin::AdminError),
    #[error("could not hash the password: {0}")]
    Hash(String),
    #[error("a seed statement failed: {statement}")]
    Statement {
        statement: String,
        #[source]
        source: DbErr,
    },
    #[error("messages asked for, but no conversation to put them in")]
    NoConversation,
    #[error("the database failed")]
    Database(#[from] DbErr),
}

async fn ids<C: ConnectionTrait>(conn: &C, sql: &str) -> Result<Vec<i64>, DbErr> {
    let stmt = sea_orm::Statement::from_string(conn.get_database_backend(), sql.to_string());
    conn.query_all_raw(stmt)
        .await?
        .iter()
        .map(|r| r.try_get_by_index::<i64>(0))
        .collect()
}

/// The texts spread messages cycle through (a search for one of their words
/// matches a seventh of them), each with its message's own `ticket-{i}` (one match).
const SPREAD_TEXTS: [&str; 7] = [
    "where is my parcel?",
    "thanks, that helped",
    "can I change my address",
    "the invoice is wrong",
    "when do you open tomorrow",
    "I want a refund",
    "hello there",
];

/// Seeds `conversations` conversations, `messages` messages in the first of them,
/// and `spread_messages` more spread over all of them.
pub async fn seed(
    db: &DatabaseConnection,
    conversations: u64,
    messages: u64,
    spread_messages: u64,
) -> Result<SeedReport, SeedError> {
    let stamp = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let admin_email = format!("bench-{stamp}@bench.test");
    let (org, _) =
        crate::admin::create_admin(db, &format!("Bench {stamp}"), &admin_email, SEED_PASSWORD)
            .await?;
    let pg = db.get_database_backend() == DatabaseBackend::Postgres;
    let hash = password::hash(SEED_PASSWORD).map_err(SeedError::Hash)?;
    let series = |n: u64| {
        if pg {
            format!("generate_series(1, {n}) AS s(i)")
        } else {
            format!(
                "(WITH RECURSIVE q(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM q WHERE i < {n}) SELECT i FROM q) AS s"
            )
        }
    };
    let now = chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6f+00:00")
        .to_string();
    let ago = |secs: &str| {
        if pg {
            format!("(TIMESTAMPTZ '{now}' - ({secs}) * INTERVAL '1 second')")
        } else {
            format!(
                "(strftime('%Y-%m-%dT%H:%M:%f', '{now}', '-' || ({secs}) || ' seconds') || '+00:00')"
            )
        }
    };
    let ts = if pg {
        format!("TIMESTAMPTZ '{now}'")
    } else {
        format!("'{now}'")
    };
    let txn = db.begin().await?;
    let exec = |sql: String| {
        let txn = &txn;
        async move {
            let started = std::time::Instant::now();
            let result = txn
                .execute_unprepared(&sql)
                .await
                .map(|_| ())
                .map_err(|source| SeedError::Statement {
                    statement: sql.chars().take(200).collect(),
                    source,
                });
            let statement: String = sql.chars().take(60).collect();
            tracing::debug!(seconds = started.elapsed().as_secs_f64(), %statement, "seed step");
            result
        }
    };
    exec(format!(
        "INSERT INTO users (organization_id, email, password_hash, first_name, last_name, role, created_at, updated_at) \
         SELECT {org}, 'agent' || i || '-{stamp}@bench.test', '{hash}', 'Agent', 'No' || i, 'agent', {ts}, {ts} FROM {}",
        series(20)
    ))
    .await?;
    for (table, n) in [("ai_assistants", 3), ("pipelines", 3), ("tags", 10)] {
        exec(format!(
            "INSERT INTO {table} (organization_id, name, created_at, updated_at) SELECT {org}, '{table} ' || i, {ts}, {ts} FROM {}",
            series(n)
        ))
        .await?;
    }
    exec(format!(
        "INSERT INTO pipeline_stages (organization_id, pipeline_id, name, position, created_at, updated_at) \
         SELECT {org}, p.id, 'Stage ' || s.i, s.i - 1, {ts}, {ts} FROM pipelines p, {} WHERE p.organization_id = {org}",
        series(5)
    ))
    .await?;
    let users = ids(
        &txn,
        &format!(
            "SELECT id FROM users WHERE organization_id = {org} AND role = 'agent' ORDER BY id"
        ),
    )
    .await?;
    let ais = ids(
        &txn,
        &format!("SELECT id FROM ai_assistants WHERE organization_id = {org} ORDER BY id"),
    )
    .await?;
    let pipelines = ids(
        &txn,
        &format!("SELECT id FROM pipelines WHERE organization_id = {org} ORDER BY id"),
    )
    .await?;
    let stages = ids(&txn, &format!("SELECT id FROM pipeline_stages WHERE organization_id = {org} ORDER BY pipeline_id, position")).await?;
    let tags = ids(
        &txn,
        &format!("SELECT id FROM tags WHERE organization_id = {org} ORDER BY id"),
    )
    .await?;

    // A bulk load builds indexes faster from scratch than row by row: on PostgreSQL
    // drop the secondary indexes of the big tables and recreate them from their
    // own definitions afterwards. The unique `(organization_id, id)` indexes stay:
    // the tenant foreign keys of migration m0008 depend on them.
    let mut index_defs = Vec::new();
    if pg {
        let stmt = sea_orm::Statement::from_string(
            DatabaseBackend::Postgres,
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() \
             AND tablename IN ('contacts', 'conversations', 'messages') AND indexname NOT LIKE '%\\_pkey' \
             AND indexname NOT LIKE '%\\_org\\_key'"
                .to_string(),
        );
        for row in txn.query_all_raw(stmt).await? {
            let name: String = row.try_get_by_index(0)?;
            index_defs.push(row.try_get_by_index::<String>(1)?);
            exec(format!("DROP INDEX {name}")).await?;
        }
    }
    if pg {
        // Bulk load without per-row foreign-key checks and count triggers (the ids come
        // from the rows just inserted); the counts are rebuilt in one pass below. More
        // memory for the index builds at the end.
        exec("SET LOCAL session_replication_role = replica".into()).await?;
        exec("SET LOCAL maintenance_work_mem = '512MB'".into()).await?;
    }
    exec(format!(
        "INSERT INTO contacts (organization_id, first_name, last_name, email, phone, created_at, updated_at) \
         SELECT {org}, 'First' || i, 'Last' || i, 'contact' || i || '@example.com', '+1555' || (1000000 + i), {ts}, {ts} FROM {}",
        series(conversations)
    ))
    .await?;
    let null = || "NULL".to_string();
    let opt = |v: &[i64]| {
        std::iter::once(null())
            .chain(v.iter().map(i64::to_string))
            .collect::<Vec<_>>()
    };
    let quoted: Vec<String> = CHANNELS.iter().map(|c| format!("'{c}'")).collect();
    // Pipeline p (1..=3) owns stages 5(p-1)..5p; stage choice follows the pipeline choice.
    let pipeline_of = "(c.id % 4)";
    let stage_values: Vec<String> = (0..20)
        .map(|k| {
            if k % 4 == 0 {
                null()
            } else {
                stages[(k % 4 - 1) * 5 + (k / 4) % 5].to_string()
            }
        })
        .collect();
    let last = ago("(c.id * 7919) % 2592000");
    // The contact's copies (m0007) are written here: with the triggers off they would not be.
    use migrations::current::{contact_copies as copies, contact_sources as sources};
    exec(format!(
        "INSERT INTO conversations (organization_id, contact_id, channel, status, assigned_user_id, assigned_ai_assistant_id, \
         pipeline_id, pipeline_stage_id, unread_count, waiting_since, last_interaction_at, created_at, updated_at, {copies}) \
         SELECT {org}, c.id, {channel}, CASE WHEN c.id % 10 < 3 THEN 'open' ELSE 'closed' END, {user}, {ai}, {pipeline}, {stage}, \
         CASE WHEN c.id % 5 = 0 THEN 1 + c.id % 3 ELSE 0 END, CASE WHEN c.id % 10 = 1 THEN {last} ELSE NULL END, {last}, {last}, {last}, \
         {sources} FROM contacts c WHERE c.organization_id = {org}",
        copies = copies().join(", "),
        sources = sources("c"),
        channel = case("c.id", &quoted),
        user = case("c.id", &opt(&users)),
        ai = case("c.id", &opt(&ais)),
        pipeline = case(pipeline_of, &opt(&pipelines)),
        stage = case("c.id", &stage_values),
    ))
    .await?;
    exec(format!(
        "INSERT INTO contact_tags (organization_id, contact_id, tag_id) SELECT {org}, c.id, {tag} FROM contacts c \
         WHERE c.organization_id = {org} AND c.id % 10 = 0",
        tag = case("c.id / 10", &tags.iter().map(i64::to_string).collect::<Vec<_>>())
    ))
    .await?;
    if pg {
        exec("SET LOCAL session_replication_role = origin".into()).await?;
        for sql in migrations::current::rebuild_counts(org) {
            exec(sql).await?;
        }
        // The version triggers were off too: count the load as one change.
        exec(migrations::current::bump_conversation_versions(org)).await?;
    }
    let mut message_conversation = None;
    if messages > 0 {
        let first = ids(
            &txn,
            &format!("SELECT MIN(id) FROM conversations WHERE organization_id = {org}"),
        )
        .await?;
        let conversation = *first.first().ok_or(SeedError::NoConversation)?;
        let channel = CHANNELS[(conversation as usize) % CHANNELS.len()];
        let at = ago("s.i");
        exec(format!(
            "INSERT INTO messages (organization_id, conversation_id, channel, direction, message_type, sender_type, text, \
             delivery_status, created_at, updated_at) \
             SELECT {org}, c.id, c.channel, CASE WHEN s.i % 2 = 0 THEN 'inbound' ELSE 'outbound' END, \
             CASE WHEN s.i % 20 = 0 THEN 'reaction' ELSE 'text' END, CASE WHEN s.i % 2 = 0 THEN 'contact' ELSE 'user' END, \
             'Message number ' || s.i, CASE WHEN s.i % 2 = 0 THEN 'received' ELSE 'delivered' END, {at}, {at} \
             FROM conversations c, {} WHERE c.id = {conversation}",
            series(messages)
        ))
        .await?;
        message_conversation = Some((conversation, channel.to_string()));
    }
    if spread_messages > 0 && conversations > 0 {
        let texts: Vec<String> = SPREAD_TEXTS.iter().map(|t| format!("'{t}'")).collect();
        let at = ago("(s.i * 13) % 2592000");
        exec(format!(
            "INSERT INTO messages (organization_id, conversation_id, channel, direction, message_type, sender_type, text, \
             delivery_status, created_at, updated_at) \
             SELECT {org}, c.id, c.channel, CASE WHEN s.i % 2 = 0 THEN 'inbound' ELSE 'outbound' END, 'text', \
             CASE WHEN s.i % 2 = 0 THEN 'contact' ELSE 'user' END, {text} || ' ticket-' || s.i, \
             CASE WHEN s.i % 2 = 0 THEN 'received' ELSE 'delivered' END, {at}, {at} \
             FROM {series} JOIN conversations c ON c.id = \
             (SELECT MIN(id) FROM conversations WHERE organization_id = {org}) + (CAST(s.i AS BIGINT) * 7919) % {conversations}",
            text = case("s.i", &texts),
            series = series(spread_messages),
        ))
        .await?;
    }
    for def in index_defs {
        exec(def).await?;
    }
    txn.commit().await?;
    if pg {
        db.execute_unprepared("VACUUM ANALYZE").await?;
    }
    let open = ids(
        db,
        &format!(
            "SELECT COUNT(*) FROM conversations WHERE organization_id = {org} AND status = 'open'"
        ),
    )
    .await?
    .first()
    .copied()
    .unwrap_or(0);
    let (message_conversation_id, message_channel) = message_conversation.unzip();
    Ok(SeedReport {
        message_conversation_id,
        message_channel,
        messages,
        organization_id: org,
        admin_email,
        admin_password: SEED_PASSWORD,
        conversations,
        open,
    })
}
