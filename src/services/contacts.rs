//! `/contacts`: the people conversations are with (Apex contact fields), with
//! their tags as `tag_ids` (written as a whole list, read embedded).

use super::common::{record_id, records_mut, selected, tenant_options, tenant_schema};
use crate::domain::UnitOfWork;
use crate::domain::contacts::{self, ContactId};
use crate::feathers::sql::{VirtualFilters, WriteMode};
use crate::feathers::{
    FeathersError, Field, FieldType, Id, Params, Principal, Result, Service, SqlService, Typed,
};
use async_trait::async_trait;
use sea_orm::sea_query::{Alias, Condition, Expr, ExprTrait, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection};
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
}

/// `tag_ids` as a set of ids (400 unless an array of integers).
fn tag_ids(tags: &Value) -> Result<BTreeSet<i64>> {
    tags.as_array()
        .and_then(|a| a.iter().map(Value::as_i64).collect::<Option<BTreeSet<_>>>())
        .ok_or_else(|| FeathersError::invalid("tag_ids", "must be an array of tag ids"))
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
        let uow = UnitOfWork::of(params)?;
        let txn = uow.conn().await?;
        let tags = data.get("tag_ids").map(tag_ids).transpose()?;
        let fields = self
            .0
            .validate_write(txn, &data, WriteMode::Create, params)
            .await?;
        let id = self
            .0
            .insert(
                txn,
                &fields,
                &[("created_by_user_id", principal.user_id.into())],
                params,
            )
            .await?;
        if let Some(tags) = tags {
            contacts::set_tags(uow, principal.tenant_id, ContactId(id), &tags).await?;
        }
        let mut record = self.0._get(txn, &id.to_string(), params).await?;
        self.embed_tags(txn, &mut record, params).await?;
        Ok(record)
    }
    async fn patch(&self, id: Option<&Id>, data: Value, params: &Params) -> Result<Value> {
        let contact = ContactId(record_id(id)?);
        let org = params.principal()?.tenant_id;
        let uow = UnitOfWork::of(params)?;
        let txn = uow.conn().await?;
        let tags = data.get("tag_ids").map(tag_ids).transpose()?;
        let mut record = self
            .0
            ._patch(txn, id, data, params, WriteMode::Patch)
            .await?;
        if let Some(tags) = tags {
            contacts::set_tags(uow, org, contact, &tags).await?;
        }
        self.embed_tags(txn, &mut record, params).await?;
        contacts::conversations_follow(uow, org, contact).await?;
        Ok(record)
    }
    /// Removes a contact that has no conversations (409 otherwise: remove those first).
    async fn remove(&self, id: Option<&Id>, params: &Params) -> Result<Value> {
        let contact = ContactId(record_id(id)?);
        let uow = UnitOfWork::of(params)?;
        contacts::check_removable(uow, params.principal()?.tenant_id, contact).await?;
        self.0._remove(uow.conn().await?, id, params).await
    }
}
