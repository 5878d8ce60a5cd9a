//! `/actors/{id}`: an actor and its input schema, whose `mcpConnector` properties decide
//! which connectors its runs may be given and which tools they may use.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::error::{ApiError, ApiResult, JsonBody};
use super::schema;
use crate::clock::now_secs;
use crate::revocation::Revocation;
use crate::state::AppState;
use crate::store::ActorRecord;
use portcullis_model::FieldKind;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutBody {
    /// A JSON Schema object (any other JSON type is a malformed body).
    input_schema: serde_json::Map<String, serde_json::Value>,
}

#[derive(Serialize)]
pub struct ActorView {
    id: String,
    input_schema: serde_json::Value,
    /// The schema's connector properties, as validated.
    connector_fields: Vec<FieldView>,
    created_at: i64,
    updated_at: i64,
}

#[derive(Serialize)]
struct FieldView {
    name: String,
    #[serde(rename = "type")]
    kind: &'static str,
}

impl From<ActorRecord> for ActorView {
    fn from(a: ActorRecord) -> Self {
        Self {
            id: a.id,
            input_schema: a.input_schema,
            connector_fields: a
                .connector_fields
                .into_iter()
                .map(|f| FieldView {
                    name: f.name,
                    kind: match f.kind {
                        FieldKind::Single => "string",
                        FieldKind::Multiple => "array",
                    },
                })
                .collect(),
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
}

/// Actor ids are path segments of this API and of audit queries: keep them plain.
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'))
}

pub async fn put(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<PutBody>,
) -> ApiResult<(StatusCode, Json<ActorView>)> {
    if !valid_id(&id) {
        return Err(ApiError::invalid(
            "invalid_field",
            "an actor id is 1 to 128 letters, digits, `-`, `_`, `.` or `~`",
        ));
    }
    let input_schema = serde_json::Value::Object(body.input_schema);
    let connector_fields = schema::connector_fields(&input_schema)
        .map_err(|e| ApiError::invalid("invalid_input_schema", e.to_string()))?;
    let now = now_secs();
    let mut actor = ActorRecord {
        id,
        input_schema,
        connector_fields,
        created_at: now,
        updated_at: now,
    };
    let created = state.store.put_actor(&actor).await?;
    state
        .revocations
        .revoke(Revocation::ActorChanged {
            actor: actor.id.clone(),
        })
        .await;
    if !created {
        // The store keeps the first creation time; answer with what it holds.
        if let Some(stored) = state.store.actor(&actor.id).await? {
            actor = stored;
        }
    }
    tracing::info!(actor = %actor.id, created, fields = actor.connector_fields.len(), "actor stored");
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(actor.into())))
}

pub async fn show(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> ApiResult<Json<ActorView>> {
    let actor = state
        .store
        .actor(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("actor `{id}`")))?;
    Ok(Json(actor.into()))
}
