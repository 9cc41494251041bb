//! `/pipelines`: sales/support pipelines with their ordered `stages`
//! (`[{id, name, position}]`). Admins write. On patch, `stages` is the new list:
//! items with an `id` keep (and may rename) that stage, items without one are
//! new, stages left out are deleted (their conversations lose the stage).

use super::common::{record_id, records_mut, selected, tenant_options, tenant_schema};
use crate::feathers::sql::WriteMode;
use crate::feathers::{FeathersError, Field, FieldType, Id, Params, Result, Service, SqlService};
use async_trait::async_trait;
use chrono::Utc;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Order, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde_json::{Value, json};
use std::collections::HashMap;

pub fn schema() -> crate::feathers::Schema {
    tenant_schema(vec![
        Field::new("name", FieldType::String)
            .query()
            .like()
            .required()
            .write()
            .max_len(100)
            .non_blank(),
        Field::new("stages", FieldType::Json)
            .computed()
            .write()
            .max_items(50),
    ])
}

pub struct PipelinesService(pub SqlService);

/// One item of a `stages` list.
struct StageIn {
    id: Option<i64>,
    name: String,
}

fn parse_stages(value: &Value) -> Result<Vec<StageIn>> {
    let items = value
        .as_array()
        .ok_or_else(|| FeathersError::invalid("stages", "must be an array"))?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let path = format!("stages.{i}");
            let name = item
                .get("name")
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|n| !n.is_empty() && n.chars().count() <= 100)
                .ok_or_else(|| {
                    FeathersError::invalid(&path, "needs a name of 1 to 100 characters")
                })?;
            let id = match item.get("id") {
                None | Some(Value::Null) => None,
                Some(v) => Some(
                    v.as_i64()
                        .ok_or_else(|| FeathersError::invalid(&path, "id must be a number"))?,
                ),
            };
            if let Some(key) = item
                .as_object()
                .and_then(|o| o.keys().find(|k| *k != "name" && *k != "id"))
            {
                return Err(FeathersError::invalid(
                    &format!("{path}.{key}"),
                    "is not a field that can be written",
                ));
            }
            Ok(StageIn {
                id,
                name: name.to_string(),
            })
        })
        .collect()
}

impl PipelinesService {
    pub fn new(db: DatabaseConnection) -> Self {
        Self(SqlService::new(db, tenant_options("pipelines", schema())))
    }

    async fn embed_stages<C: ConnectionTrait>(
        &self,
        conn: &C,
        result: &mut Value,
        params: &Params,
    ) -> Result<()> {
        if !selected(params, "stages") {
            return Ok(());
        }
        let mut records = records_mut(result);
        let ids: Vec<i64> = records.iter().filter_map(|r| r["id"].as_i64()).collect();
        let mut by_pipeline: HashMap<i64, Vec<Value>> = HashMap::new();
        if !ids.is_empty() {
            let mut q = Query::select();
            q.columns(["id", "pipeline_id", "name", "position"].map(Alias::new))
                .from(Alias::new("pipeline_stages"))
                .and_where(Expr::col(Alias::new("pipeline_id")).is_in(ids))
                .order_by(Alias::new("position"), Order::Asc)
                .order_by(Alias::new("id"), Order::Asc);
            for row in conn.query_all(&q).await? {
                let stage = json!({
                    "id": row.try_get::<i64>("", "id")?,
                    "name": row.try_get::<String>("", "name")?,
                    "position": row.try_get::<i64>("", "position")?,
                });
                by_pipeline
                    .entry(row.try_get("", "pipeline_id")?)
                    .or_default()
                    .push(stage);
            }
        }
        for record in records.iter_mut() {
            let id = record["id"].as_i64().unwrap_or_default();
            record["stages"] = Value::Array(by_pipeline.remove(&id).unwrap_or_default());
        }
        Ok(())
    }

    /// Makes the pipeline's stages exactly `stages`, in that order.
    async fn write_stages<C: ConnectionTrait>(
        &self,
        conn: &C,
        pipeline: i64,
        stages: &[StageIn],
        params: &Params,
    ) -> Result<()> {
        let org = params.principal()?.tenant_id;
        let mut existing_q = Query::select();
        existing_q
            .column(Alias::new("id"))
            .from(Alias::new("pipeline_stages"))
            .and_where(Expr::col(Alias::new("pipeline_id")).eq(pipeline));
        let existing: Vec<i64> = conn
            .query_all(&existing_q)
            .await?
            .iter()
            .map(|r| r.try_get("", "id"))
            .collect::<Result<_, _>>()?;
        if let Some(foreign) = stages
            .iter()
            .filter_map(|s| s.id)
            .find(|id| !existing.contains(id))
        {
            return Err(FeathersError::unprocessable(format!("stage {foreign} is not a stage of this pipeline"))
                .with_data(json!({ "rule": "stage_in_pipeline", "pipeline_stage_id": foreign, "pipeline_id": pipeline })));
        }
        let kept: Vec<i64> = stages.iter().filter_map(|s| s.id).collect();
        let mut delete = Query::delete();
        delete
            .from_table(Alias::new("pipeline_stages"))
            .and_where(Expr::col(Alias::new("pipeline_id")).eq(pipeline));
        if !kept.is_empty() {
            delete.and_where(Expr::col(Alias::new("id")).is_not_in(kept));
        }
        conn.execute(&delete).await?;
        let now = Utc::now();
        for (position, stage) in stages.iter().enumerate() {
            match stage.id {
                Some(id) => {
                    let mut update = Query::update();
                    update
                        .table(Alias::new("pipeline_stages"))
                        .value(Alias::new("name"), stage.name.clone())
                        .value(Alias::new("position"), position as i64)
                        .value(Alias::new("updated_at"), now)
                        .and_where(Expr::col(Alias::new("id")).eq(id));
                    conn.execute(&update).await?;
                }
                None => {
                    let mut insert = Query::insert();
                    insert
                        .into_table(Alias::new("pipeline_stages"))
                        .columns(
                            [
                                "organization_id",
                                "pipeline_id",
                                "name",
                                "position",
                                "created_at",
                                "updated_at",
                            ]
                            .map(Alias::new),
                        )
                        .values_panic([
                            org.into(),
                            pipeline.into(),
                            stage.name.clone().into(),
                            (position as i64).into(),
                            now.into(),
                            now.into(),
                        ]);
                    conn.execute(&insert).await?;
                }
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Service for PipelinesService {
    async fn find(&self, params: &Params) -> Result<Value> {
        let mut result = self.0._find(&self.0.db, params).await?;
        self.embed_stages(&self.0.db, &mut result, params).await?;
        Ok(result)
    }
    async fn get(&self, id: &Id, params: &Params) -> Result<Value> {
        let mut result = self.0._get(&self.0.db, id, params).await?;
        self.embed_stages(&self.0.db, &mut result, params).await?;
        Ok(result)
    }
    async fn create(&self, data: Value, params: &Params) -> Result<Value> {
        if data.is_array() {
            return Err(FeathersError::method_not_allowed(
                "Can not create multiple entries",
            ));
        }
        let stages = data
            .get("stages")
            .map(parse_stages)
            .transpose()?
            .unwrap_or_default();
        if stages.iter().any(|s| s.id.is_some()) {
            return Err(FeathersError::invalid(
                "stages",
                "new stages cannot carry an id",
            ));
        }
        let txn = params.txn().await?;
        let fields = self
            .0
            .validate_write(txn, &data, WriteMode::Create, params)
            .await?;
        let id = self.0.insert(txn, &fields, &[], params).await?;
        self.write_stages(txn, id, &stages, params).await?;
        let mut record = self.0._get(txn, &id.to_string(), params).await?;
        self.embed_stages(txn, &mut record, params).await?;
        Ok(record)
    }
    async fn patch(&self, id: Option<&Id>, data: Value, params: &Params) -> Result<Value> {
        let pipeline = record_id(id)?;
        let stages = data.get("stages").map(parse_stages).transpose()?;
        let txn = params.txn().await?;
        let mut record = self
            .0
            ._patch(txn, id, data, params, WriteMode::Patch)
            .await?;
        if let Some(stages) = stages {
            self.write_stages(txn, pipeline, &stages, params).await?;
        }
        self.embed_stages(txn, &mut record, params).await?;
        Ok(record)
    }
    async fn remove(&self, id: Option<&Id>, params: &Params) -> Result<Value> {
        let txn = params.txn().await?;
        let mut record = self.0._get(txn, id.expect("single"), params).await?;
        self.embed_stages(txn, &mut record, params).await?;
        self.0._remove(txn, id, params).await?;
        Ok(record)
    }
}
