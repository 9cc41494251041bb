//! `/contacts`: the people conversations are with (Apex contact fields), with
//! their tags as `tag_ids` (written as a whole list, read embedded).

use super::common::{records_mut, selected, single, tenant_options, tenant_schema};
use crate::feathers::sql::{VirtualFilters, WriteMode};
use crate::feathers::{
    FeathersError, Field, FieldType, Id, Params, Principal, Result, Service, SqlService, Typed,
};
use async_trait::async_trait;
use sea_orm::sea_query::{Alias, Condition, Expr, ExprTrait, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait};
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

fn text(name: &'static str, max: usize) -> Field {
    Field::new(name, FieldType::String)
        .nullable()
        .query()
        .like()
        .write()
        .max_len(max)
}

/// The most bytes of JSON a contact's custom fields may hold (a page of 50 contacts
/// stays around a megabyte).
pub const CUSTOM_FIELDS_MAX_BYTES: usize = 16 * 1024;

pub fn schema() -> crate::feathers::Schema {
    tenant_schema(vec![
        text("first_name", 100),
        text("last_name", 100),
        text("email", 254),
        text("phone", 32),
        text("phone_country_code", 8),
        text("phone_country_iso", 2),
        text("channel_whatsapp_wa_id", 64),
        text("channel_instagram_user_id", 64),
        Field::new("avatar_url", FieldType::String)
            .nullable()
            .write()
            .max_len(2048),
        Field::new("owned_by_user_id", FieldType::Integer)
            .nullable()
            .query()
            .write()
            .references("users"),
        Field::new("created_by_user_id", FieldType::Integer)
            .nullable()
            .query(),
        Field::new("custom_fields_by_name", FieldType::Json)
            .nullable()
            .write()
            .max_bytes(CUSTOM_FIELDS_MAX_BYTES),
        Field::new("tag_ids", FieldType::Json)
            .computed()
            .write()
            .max_items(100),
    ])
    .with_virtual("tag_id", FieldType::Integer)
}

/// `tag_id=N`: contacts carrying that tag.
struct ContactFilters;

impl VirtualFilters for ContactFilters {
    fn condition(
        &self,
        name: &str,
        value: &Typed,
        principal: Option<&Principal>,
    ) -> Result<Condition> {
        match (name, value, principal) {
            ("tag_id", Typed::Int(tag), Some(p)) => Ok(Condition::all().add(
                Expr::col((Alias::new("contacts"), Alias::new("id")))
                    .in_subquery(tagged(p.tenant_id, *tag)),
            )),
            _ => Err(FeathersError::invalid(
                name,
                "is not a field that can be queried",
            )),
        }
    }
}

/// `SELECT contact_id FROM contact_tags WHERE organization_id = org AND tag_id = tag`.
pub fn tagged(org: i64, tag: i64) -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .column(Alias::new("contact_id"))
        .from(Alias::new("contact_tags"))
        .and_where(Expr::col(Alias::new("organization_id")).eq(org))
        .and_where(Expr::col(Alias::new("tag_id")).eq(tag))
        .to_owned()
}

pub struct ContactsService(pub SqlService);

impl ContactsService {
    pub fn new(db: DatabaseConnection) -> Self {
        Self(SqlService::new(
            db,
            tenant_options("contacts", schema()).virtuals(Arc::new(ContactFilters)),
        ))
    }

    /// Adds `tag_ids` to every record, with one query for all of them.
    async fn embed_tags<C: ConnectionTrait>(
        &self,
        conn: &C,
        result: &mut Value,
        params: &Params,
    ) -> Result<()> {
        if !selected(params, "tag_ids") {
            return Ok(());
        }
        let mut records = records_mut(result);
        let ids: Vec<i64> = records.iter().filter_map(|r| r["id"].as_i64()).collect();
        let mut by_contact: HashMap<i64, Vec<i64>> = HashMap::new();
        if !ids.is_empty() {
            let mut q = Query::select();
            q.columns([Alias::new("contact_id"), Alias::new("tag_id")])
                .from(Alias::new("contact_tags"))
                .and_where(Expr::col(Alias::new("contact_id")).is_in(ids))
                .order_by(Alias::new("tag_id"), sea_orm::sea_query::Order::Asc);
            for row in conn.query_all(&q).await? {
                by_contact
                    .entry(row.try_get("", "contact_id")?)
                    .or_default()
                    .push(row.try_get("", "tag_id")?);
            }
        }
        for record in records.iter_mut() {
            let id = record["id"].as_i64().unwrap_or_default();
            record["tag_ids"] = json!(by_contact.remove(&id).unwrap_or_default());
        }
        Ok(())
    }

    /// Checks `tag_ids` (a list of this organization's tag ids) and, for an existing
    /// contact, replaces its tags with them.
    async fn write_tags<C: ConnectionTrait>(
        &self,
        conn: &C,
        contact: i64,
        tags: &Value,
        params: &Params,
    ) -> Result<()> {
        let org = params.principal()?.tenant_id;
        let ids: BTreeSet<i64> = tags
            .as_array()
            .and_then(|a| a.iter().map(Value::as_i64).collect::<Option<BTreeSet<_>>>())
            .ok_or_else(|| FeathersError::invalid("tag_ids", "must be an array of tag ids"))?;
        if !ids.is_empty() {
            let mut q = Query::select();
            q.expr_as(Expr::cust("COUNT(*)"), Alias::new("n"))
                .from(Alias::new("tags"))
                .and_where(Expr::col(Alias::new("organization_id")).eq(org))
                .and_where(Expr::col(Alias::new("id")).is_in(ids.iter().copied()));
            let found: i64 = conn
                .query_one(&q)
                .await?
                .map(|r| r.try_get("", "n"))
                .transpose()?
                .unwrap_or(0);
            if found != ids.len() as i64 {
                return Err(FeathersError::unprocessable(
                    "tag_ids names a tag that does not exist in this organization",
                )
                .with_data(json!({ "rule": "reference_in_organization", "field": "tag_ids" })));
            }
        }
        let mut delete = Query::delete();
        delete
            .from_table(Alias::new("contact_tags"))
            .and_where(Expr::col(Alias::new("contact_id")).eq(contact));
        conn.execute(&delete).await?;
        if !ids.is_empty() {
            let mut insert = Query::insert();
            insert
                .into_table(Alias::new("contact_tags"))
                .columns(["organization_id", "contact_id", "tag_id"].map(Alias::new));
            for tag in ids {
                insert.values_panic([org.into(), contact.into(), tag.into()]);
            }
            conn.execute(&insert).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl Service for ContactsService {
    async fn find(&self, params: &Params) -> Result<Value> {
        let mut result = self.0._find(&self.0.db, params).await?;
        self.embed_tags(&self.0.db, &mut result, params).await?;
        Ok(result)
    }
    async fn get(&self, id: &Id, params: &Params) -> Result<Value> {
        let mut result = self.0._get(&self.0.db, id, params).await?;
        self.embed_tags(&self.0.db, &mut result, params).await?;
        Ok(result)
    }
    async fn create(&self, data: Value, params: &Params) -> Result<Value> {
        if data.is_array() {
            return Err(FeathersError::method_not_allowed(
                "Can not create multiple entries",
            ));
        }
        let principal = params.principal()?;
        let txn = self.0.db.begin().await?;
        let fields = self
            .0
            .validate_write(&txn, &data, WriteMode::Create, params)
            .await?;
        let id = self
            .0
            .insert(
                &txn,
                &fields,
                &[("created_by_user_id", principal.user_id.into())],
                params,
            )
            .await?;
        if let Some(tags) = data.get("tag_ids") {
            self.write_tags(&txn, id, tags, params).await?;
        }
        let mut record = self.0._get(&txn, &id.to_string(), params).await?;
        self.embed_tags(&txn, &mut record, params).await?;
        txn.commit().await?;
        Ok(record)
    }
    async fn patch(&self, id: Option<&Id>, data: Value, params: &Params) -> Result<Value> {
        let contact = single(id, "patch")?;
        let txn = self.0.db.begin().await?;
        let mut record = self
            .0
            ._patch(&txn, id, data.clone(), params, WriteMode::Patch)
            .await?;
        if let Some(tags) = data.get("tag_ids") {
            self.write_tags(&txn, contact, tags, params).await?;
        }
        self.embed_tags(&txn, &mut record, params).await?;
        txn.commit().await?;
        Ok(record)
    }
    /// Removes a contact that has no conversations (409 otherwise: remove those first).
    async fn remove(&self, id: Option<&Id>, params: &Params) -> Result<Value> {
        let contact = single(id, "remove")?;
        let org = params.principal()?.tenant_id;
        let txn = self.0.db.begin().await?;
        // Lock the contact first: a conversation created for it meanwhile (its foreign
        // key check takes a share lock on this row) waits for this removal, then fails,
        // instead of being deleted with the contact unseen.
        if txn.get_database_backend() == sea_orm::DbBackend::Postgres {
            let mut lock = Query::select();
            lock.column(Alias::new("id"))
                .from(Alias::new("contacts"))
                .and_where(Expr::col(Alias::new("id")).eq(contact))
                .and_where(Expr::col(Alias::new("organization_id")).eq(org))
                .lock(sea_orm::sea_query::LockType::Update);
            txn.query_one(&lock).await?;
        }
        let mut q = Query::select();
        q.column(Alias::new("id"))
            .from(Alias::new("conversations"))
            .and_where(Expr::col(Alias::new("contact_id")).eq(contact))
            .and_where(Expr::col(Alias::new("organization_id")).eq(params.principal()?.tenant_id))
            .and_where(Expr::col(Alias::new("deleted_at")).is_null())
            .limit(1);
        if txn.query_one(&q).await?.is_some() {
            return Err(FeathersError::conflict(
                "The contact has conversations; remove them first",
            )
            .with_data(json!({ "rule": "contact_has_conversations", "contact_id": contact })));
        }
        let record = self.0._remove(&txn, id, params).await?;
        txn.commit().await?;
        Ok(record)
    }
}
