//! Attachments in three steps (Apex, `apex/NOTES.md` section 10):
//! `POST /s3-url-signing` answers a presigned PUT, the client PUTs the bytes
//! straight to S3, then `POST /conversation-files` registers the object (checked
//! with HeadObject) and answers its `_id`, which a message sends as
//! `conversation_file_id`. Without a configured bucket every method is a 503.

use super::common::{record_id, records_mut, tenant_options, tenant_schema};
use crate::channels::Channel;
use crate::domain::UnitOfWork;
use crate::domain::conversation_files::{self, NewFile};
use crate::domain::conversations::{self, ConversationRow};
use crate::feathers::{FeathersError, Field, FieldType, Id, Params, Result, Service, SqlService};
use crate::storage::{Category, Storage, keys, unavailable};
use async_trait::async_trait;
use sea_orm::DatabaseConnection;
use serde::Deserialize;
use serde_json::{Value, json};
use std::str::FromStr;
use std::sync::Arc;

/// The most characters of a file name as the client gives it.
pub const MAX_NAME_CHARS: usize = 1024;
/// The most characters of a MIME type.
const MAX_TYPE_CHARS: usize = 255;

pub fn schema() -> crate::feathers::Schema {
    use FieldType::*;
    tenant_schema(vec![
        Field::new("conversation_id", Integer).query(),
        Field::new("created_by_user_id", Integer),
        Field::new("s3_key", String),
        Field::new("s3_path", String),
        Field::new("file_name", String),
        Field::new("file_type", String),
        Field::new("file_size", Integer),
        Field::new("file_category", Enum(&["image", "audio", "video", "file"])).query(),
    ])
}

/// The read binding of `/conversation-files` (also its events' reader).
pub fn sql(db: DatabaseConnection) -> SqlService {
    SqlService::new(db, tenant_options("conversation_files", schema()))
}

fn storage(storage: &Option<Arc<Storage>>) -> Result<&Storage> {
    storage.as_deref().ok_or_else(unavailable)
}

fn object_body<T: for<'de> Deserialize<'de>>(data: Value) -> Result<T> {
    if !data.is_object() {
        return Err(FeathersError::bad_request("The body must be a JSON object"));
    }
    serde_json::from_value(data)
        .map_err(|e| FeathersError::bad_request(format!("Invalid body: {e}")))
}

fn own_organization(org: Option<i64>, params: &Params) -> Result<i64> {
    let mine = params.principal()?.tenant_id;
    match org {
        Some(o) if o != mine => Err(FeathersError::forbidden(
            "organization_id must be the caller's own",
        )),
        _ => Ok(mine),
    }
}

/// A required text field: present, non-blank, bounded; no control characters
/// unless `controls` (a file name: sanitized instead).
fn text<'a>(field: &str, value: &'a Option<String>, max: usize) -> Result<&'a str> {
    text_of(field, value, max, false)
}

fn file_name(value: &Option<String>) -> Result<&str> {
    text_of("file_name", value, MAX_NAME_CHARS, true)
}

fn text_of<'a>(
    field: &str,
    value: &'a Option<String>,
    max: usize,
    controls: bool,
) -> Result<&'a str> {
    let v = value
        .as_deref()
        .ok_or_else(|| FeathersError::invalid(field, "is required"))?;
    if v.trim().is_empty() {
        return Err(FeathersError::invalid(field, "must not be blank"));
    }
    if v.chars().count() > max {
        return Err(FeathersError::invalid(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if !controls && v.chars().any(char::is_control) {
        return Err(FeathersError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(v)
}

/// The caller's live conversation (404 otherwise) and its channel.
async fn conversation(
    db: &DatabaseConnection,
    org: i64,
    id: Option<i64>,
) -> Result<(ConversationRow, Channel)> {
    let id = id.ok_or_else(|| FeathersError::invalid("conversation_id", "is required"))?;
    let row = conversations::load(db, org, id).await?;
    let channel = Channel::from_str(&row.channel)
        .map_err(|e| FeathersError::general(format!("conversation {id}: {e}")))?;
    Ok((row, channel))
}

/// The category the body names (400 if it is not one), else the MIME type's.
fn category(given: Option<&str>, mime: &str) -> Result<Category> {
    match given {
        Some(name) => Category::parse(name).ok_or_else(|| {
            FeathersError::invalid("file_category", "must be one of image, audio, video, file")
        }),
        None => Ok(Category::of_mime(mime)),
    }
}

/// `POST /s3-url-signing`.
pub struct UrlSigningService {
    pub db: DatabaseConnection,
    pub storage: Option<Arc<Storage>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SigningBody {
    conversation_id: Option<i64>,
    organization_id: Option<i64>,
    file_name: Option<String>,
    file_type: Option<String>,
    file_size: Option<u64>,
    file_category: Option<String>,
}

#[async_trait]
impl Service for UrlSigningService {
    async fn create(&self, data: Value, params: &Params) -> Result<Value> {
        let storage = storage(&self.storage)?;
        if data.is_array() {
            return Err(FeathersError::method_not_allowed(
                "Can not create multiple entries",
            ));
        }
        let body: SigningBody = object_body(data)?;
        let org = own_organization(body.organization_id, params)?;
        let file_name = file_name(&body.file_name)?;
        let file_type = text("file_type", &body.file_type, MAX_TYPE_CHARS)?;
        let file_size = body
            .file_size
            .ok_or_else(|| FeathersError::invalid("file_size", "is required"))?;
        let (conv, channel) = conversation(&self.db, org, body.conversation_id).await?;
        let category = category(body.file_category.as_deref(), file_type)?;
        storage
            .limits
            .check(channel, category, file_type, file_size)?;
        let unique = uuid::Uuid::new_v4().simple().to_string();
        let key = keys::new_key(org, conv.id, &unique, file_name);
        let put = storage.presign_upload(&key, file_type, file_size).await?;
        Ok(json!({
            "method": "PUT",
            "url": put.url,
            "headers": put.headers,
            "s3_key": key,
            "s3PathWithoutBucket": key,
            "s3_path": storage.s3_path(&key),
            "file_name": key.rsplit('/').next(),
            "file_category": category.as_str(),
            "expires_at": crate::feathers::schema::format_timestamp(&put.expires_at),
        }))
    }
}

/// `/conversation-files`.
pub struct ConversationFilesService {
    pub sql: SqlService,
    pub storage: Option<Arc<Storage>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileBody {
    conversation_id: Option<i64>,
    organization_id: Option<i64>,
    file_name: Option<String>,
    file_type: Option<String>,
    file_size: Option<u64>,
    s3_key: Option<String>,
    s3_path: Option<String>,
    file_category: Option<String>,
}

impl ConversationFilesService {
    /// `_id` (Apex clients read it) and a short-lived download `url` on a record.
    async fn present(&self, storage: &Storage, record: &mut Value) -> Result<()> {
        let Some(obj) = record.as_object_mut() else {
            return Ok(());
        };
        if let Some(id) = obj.get("id").cloned() {
            obj.insert("_id".into(), id);
        }
        if let Some(key) = obj
            .get("s3_key")
            .and_then(Value::as_str)
            .map(str::to_string)
        {
            let get = storage.presign_download(&key, storage.download_ttl).await?;
            obj.insert("url".into(), json!(get.url));
            obj.insert(
                "url_expires_at".into(),
                json!(crate::feathers::schema::format_timestamp(&get.expires_at)),
            );
        }
        Ok(())
    }
}

#[async_trait]
impl Service for ConversationFilesService {
    async fn find(&self, params: &Params) -> Result<Value> {
        let storage = storage(&self.storage)?;
        let mut page = self.sql.find(params).await?;
        for record in records_mut(&mut page) {
            self.present(storage, record).await?;
        }
        Ok(page)
    }

    async fn get(&self, id: &Id, params: &Params) -> Result<Value> {
        let storage = storage(&self.storage)?;
        let mut record = self.sql.get(id, params).await?;
        self.present(storage, &mut record).await?;
        Ok(record)
    }

    async fn create(&self, data: Value, params: &Params) -> Result<Value> {
        let storage = storage(&self.storage)?;
        if data.is_array() {
            return Err(FeathersError::method_not_allowed(
                "Can not create multiple entries",
            ));
        }
        let body: FileBody = object_body(data)?;
        let org = own_organization(body.organization_id, params)?;
        let file_name = file_name(&body.file_name)?;
        let file_type = text("file_type", &body.file_type, MAX_TYPE_CHARS)?;
        let file_size = body
            .file_size
            .ok_or_else(|| FeathersError::invalid("file_size", "is required"))?;
        let key = text("s3_key", &body.s3_key, 1024)?;
        let (conv, channel) = conversation(&self.sql.db, org, body.conversation_id).await?;
        let prefix = keys::conversation_prefix(org, conv.id);
        if !keys::key_is_under(key, &prefix) {
            return Err(FeathersError::forbidden(format!(
                "s3_key must name a file of this conversation (under {prefix})"
            ))
            .with_data(
                json!({ "rule": "file_in_conversation", "field": "s3_key", "prefix": prefix }),
            ));
        }
        let s3_path = storage.s3_path(key);
        if body.s3_path.as_deref().is_some_and(|p| p != s3_path) {
            return Err(FeathersError::forbidden(format!("s3_path must be {s3_path}"))
                .with_data(json!({ "rule": "file_in_conversation", "field": "s3_path", "expected": s3_path })));
        }
        let category = category(body.file_category.as_deref(), file_type)?;
        storage
            .limits
            .check(channel, category, file_type, file_size)?;
        // Outside the transaction: nothing is held while the store answers.
        let Some(object) = storage.head(key).await? else {
            return Err(
                FeathersError::unprocessable("No object was uploaded at s3_key")
                    .with_data(json!({ "rule": "object_exists", "s3_key": key })),
            );
        };
        if object.size != file_size {
            return Err(FeathersError::unprocessable(format!(
                "The uploaded object has {} bytes, not file_size {file_size}",
                object.size
            ))
            .with_data(
                json!({ "rule": "object_size", "expected": file_size, "actual": object.size }),
            ));
        }
        let stored_type = object.content_type.unwrap_or_default();
        if !stored_type.trim().eq_ignore_ascii_case(file_type.trim()) {
            return Err(FeathersError::unprocessable(format!(
                "The uploaded object's type is {stored_type:?}, not file_type {file_type:?}"
            ))
            .with_data(
                json!({ "rule": "object_type", "expected": file_type, "actual": stored_type }),
            ));
        }
        let uow = UnitOfWork::of(params)?;
        let new = NewFile {
            conversation_id: conv.id,
            created_by_user_id: Some(params.principal()?.user_id),
            s3_key: key.to_string(),
            s3_path,
            file_name: keys::sanitize_file_name(file_name),
            file_type: file_type.to_string(),
            file_size,
            file_category: category.as_str().to_string(),
        };
        let id = conversation_files::create(uow, org, &new).await?;
        let mut record = (uow.recorded(conversation_files::PATH, id))
            .ok_or_else(|| FeathersError::general("a created file was not recorded"))?;
        self.present(storage, &mut record).await?;
        Ok(record)
    }

    async fn update(&self, _id: Option<&Id>, _data: Value, _params: &Params) -> Result<Value> {
        Err(FeathersError::method_not_allowed(
            "A conversation file does not change: remove it and upload another",
        ))
    }

    async fn patch(&self, _id: Option<&Id>, _data: Value, _params: &Params) -> Result<Value> {
        Err(FeathersError::method_not_allowed(
            "A conversation file does not change: remove it and upload another",
        ))
    }

    /// Removes the record, then (once that has committed) the object; an object
    /// whose delete fails is left to the orphan sweep.
    async fn remove(&self, id: Option<&Id>, params: &Params) -> Result<Value> {
        let store = self.storage.clone().ok_or_else(unavailable)?;
        let id = record_id(id)?;
        let uow = UnitOfWork::of(params)?;
        let org = params.principal()?.tenant_id;
        let file = conversation_files::remove(uow, org, id).await?;
        let mut record = (uow.recorded(conversation_files::PATH, id))
            .ok_or_else(|| FeathersError::general("a removed file was not recorded"))?;
        if let Some(obj) = record.as_object_mut() {
            obj.insert("_id".into(), json!(id));
        }
        uow.after_commit(move || {
            tokio::spawn(async move {
                if let Err(e) = store.delete(&file.s3_key).await {
                    tracing::warn!(key = %file.s3_key, error = %e.message, cause = %e.chain(),
                        "a removed file's object stays until the orphan sweep");
                }
            });
        });
        Ok(record)
    }
}
