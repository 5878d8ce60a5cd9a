//! `/runs`: starting a run (its token and environment, shown once), reading it, and
//! finishing it, which ends its token and its proxy sessions at once.
//!
//! A run keeps its actor's connector fields as they are when it starts, and is judged by
//! them for its whole life (spec FR-6).
//!
//! A run's input is checked when it starts: every connector named in a connector field
//! must exist (the host's answer: there is nothing to ask a plugin about) and be accepted
//! by the access plugin chain, the same chain the data plane asks, with a context holding
//! only that field, so both planes agree and the error can name the field. Whose
//! connector a run may use, and in what state, is the chain's decision alone: an
//! operator who swaps `connector-access` for a plugin of their own changes it here too.
//! The host only reports the answer: the built-in plugin's `not_owner` and
//! `not_authorized` as `connector_not_available`, any other denial as
//! `connector_not_eligible`, each with the denial's reason in the error's `reason`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use portcullis_model::{Decision, Denial, FieldKind};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::error::{ApiError, ApiResult, JsonBody, require_text};
use crate::clock::now_secs;
use crate::context::decision_context;
use crate::revocation::Revocation;
use crate::state::AppState;
use crate::store::{ActorRecord, ConnectorFieldSpec, RunRecord, RunStatus, new_id};
use crate::vault::{new_run_token, token_hash};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartBody {
    actor: String,
    user: String,
    input: Map<String, Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinishBody {
    #[serde(default)]
    status: Option<RunStatus>,
}

#[derive(Serialize)]
pub struct RunView {
    id: String,
    actor: String,
    user: String,
    input: Value,
    status: RunStatus,
    created_at: i64,
    finished_at: Option<i64>,
    expires_at: i64,
}

impl From<RunRecord> for RunView {
    fn from(run: RunRecord) -> Self {
        // A run past its lifetime is over even if nobody finished it.
        let status = if run.status == RunStatus::Running && !run.is_live(now_secs()) {
            RunStatus::TimedOut
        } else {
            run.status
        };
        Self {
            id: run.id,
            actor: run.actor,
            user: run.user,
            input: run.input,
            status,
            created_at: run.created_at,
            finished_at: run.finished_at,
            expires_at: run.expires_at,
        }
    }
}

pub async fn start(
    State(state): State<Arc<AppState>>,
    JsonBody(body): JsonBody<StartBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    require_text("user", &body.user, 256)?;
    let input = body.input;
    let actor = state.store.actor(&body.actor).await?.ok_or_else(|| {
        ApiError::invalid(
            "unknown_actor",
            format!(
                "actor `{}` does not exist; create it with PUT /admin/v1/actors/{{id}}",
                body.actor
            ),
        )
    })?;
    let now = now_secs();
    let lifetime = i64::try_from(state.config.runs.max_lifetime_secs).unwrap_or(i64::MAX);
    let mut run = RunRecord {
        id: new_id("run"),
        actor: actor.id.clone(),
        user: body.user,
        input: Value::Object(Map::new()),
        status: RunStatus::Running,
        created_at: now,
        finished_at: None,
        expires_at: now.saturating_add(lifetime),
        connector_fields: Some(actor.connector_fields.clone()),
    };
    for field in &actor.connector_fields {
        check_field(&state, &actor, &run, field, input.get(&field.name)).await?;
    }
    run.input = Value::Object(input);
    let token = new_run_token();
    let fill = state.data.before_run_created();
    state.store.insert_run(&run, &token_hash(&token)).await?;
    tracing::info!(run = %run.id, actor = %run.actor, "run started");
    let id = run.id.clone();
    state.data.run_created(fill, token_hash(&token), run);
    let base = format!("{}/mcp", state.config.base_url());
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "id": id,
            "status": RunStatus::Running,
            "token": token,
            "env": {
                "ACTOR_MCP_CONNECTOR_BASE_URL": base,
                "APIFY_MCP_PROXY_URL": base,
                "APIFY_TOKEN": token,
            },
        })),
    ))
}

/// Checks the connectors one input field names.
async fn check_field(
    state: &AppState,
    actor: &ActorRecord,
    run: &RunRecord,
    field: &ConnectorFieldSpec,
    value: Option<&Value>,
) -> ApiResult<()> {
    let name = &field.name;
    let ids: Vec<&str> = match (field.kind, value) {
        (_, None | Some(Value::Null)) => return Ok(()),
        (FieldKind::Single, Some(Value::String(id))) => vec![id.as_str()],
        (FieldKind::Multiple, Some(Value::Array(items))) => items
            .iter()
            .map(Value::as_str)
            .collect::<Option<_>>()
            .ok_or_else(|| {
                ApiError::invalid(
                    "invalid_input",
                    format!("input field `{name}` must be an array of connector id strings"),
                )
            })?,
        (kind, Some(_)) => {
            let expected = match kind {
                FieldKind::Single => "a connector id string",
                FieldKind::Multiple => "an array of connector id strings",
            };
            return Err(ApiError::invalid(
                "invalid_input",
                format!("input field `{name}` must be {expected}"),
            ));
        }
    };
    // The access plugins see only this field, so a deny is this field's.
    let only_this_field = RunRecord {
        input: json!({ (name.as_str()): value }),
        ..run.clone()
    };
    for id in ids {
        let Some(connector) = state.store.connector(id).await? else {
            return Err(ApiError::invalid(
                "connector_not_available",
                format!("input field `{name}`: connector `{id}` does not exist"),
            ));
        };
        let context = decision_context(&only_this_field, actor, &connector);
        let verdict = state.runtime.access(Arc::new(context)).await;
        if let Some(fault) = verdict.fault {
            tracing::warn!(error = %fault, "access chain failed while checking a run's input");
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "policy_unavailable",
                format!(
                    "the access plugins could not decide ({fault}); retry, or check GET /admin/v1/plugins"
                ),
            ));
        }
        if let Decision::Deny(denial) = verdict.value {
            return Err(refused(name, id, &run.user, &denial));
        }
    }
    Ok(())
}

/// The 422 for a connector the access chain refused, naming the field and the cause.
fn refused(field: &str, id: &str, user: &str, denial: &Denial) -> ApiError {
    let at = format!("input field `{field}`: connector `{id}`");
    let (code, message) = match denial.reason.as_str() {
        "not_owner" => (
            "connector_not_available",
            format!("{at} does not belong to user `{user}`"),
        ),
        "not_authorized" => (
            "connector_not_available",
            format!("{at} needs re-authorization (POST /admin/v1/connectors/{id}/reauthorize)"),
        ),
        _ => (
            "connector_not_eligible",
            format!(
                "{at} is not eligible ({}); choose a connector whose server and tools match \
                 the field's mcpServers rules",
                denial.message
            ),
        ),
    };
    ApiError::invalid(code, message).with_reason(&denial.reason)
}

pub async fn show(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> ApiResult<Json<RunView>> {
    Ok(Json(load(&state, &id).await?.into()))
}

pub async fn finish(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<FinishBody>,
) -> ApiResult<Json<RunView>> {
    let status = body.status.unwrap_or(RunStatus::Succeeded);
    if status == RunStatus::Running {
        return Err(ApiError::invalid(
            "invalid_field",
            "`status` must be a final status: succeeded, failed, aborted or timed_out",
        ));
    }
    load(&state, &id).await?;
    let changed = state.store.finish_run(&id, status, now_secs()).await?;
    // Also on a repeated finish: a first finish that raced a new session is covered.
    state
        .revocations
        .revoke(Revocation::RunFinished { run: id.clone() })
        .await;
    if changed {
        tracing::info!(run = %id, status = status.as_str(), "run finished");
    }
    Ok(Json(load(&state, &id).await?.into()))
}

async fn load(state: &AppState, id: &str) -> ApiResult<RunRecord> {
    state
        .store
        .run(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("run `{id}`")))
}
