//! `/audit`: the audit log, decisions and administrative changes, queried by run,
//! connector, decision, method, plugin, kind and time range; and [`audited`], which every
//! administrative change goes through so that it is recorded whether it succeeds or not.
//!
//! An administrative record names who made the change (`admin:` and the first 16 hex
//! digits of the SHA-256 of the admin token: never the token), what (`action`, such as
//! `plugin.install`), on what (`target`), and the state before and after as JSON: plugin
//! summaries, digests and chain configurations, which hold no secret.
//!
//! A query first waits (at most [`FLUSH_WAIT`]) for the records this proxy queued before
//! it, so that a decision made before the query is in its answer although the writer
//! batches its inserts.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::error::{ApiError, ApiResult, QueryParams};
use crate::clock::now_ms;
use crate::state::AppState;
use crate::store::{AuditKind, AuditQuery, AuditRecord};

const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;
/// The longest a query waits for the records queued before it.
const FLUSH_WAIT: Duration = Duration::from_secs(2);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    #[serde(default)]
    run: Option<String>,
    #[serde(default)]
    connector: Option<String>,
    #[serde(default)]
    decision: Option<String>,
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    plugin: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    /// Unix milliseconds, inclusive.
    #[serde(default)]
    since: Option<i64>,
    /// Unix milliseconds, exclusive.
    #[serde(default)]
    until: Option<i64>,
    /// Only records after this sequence number, oldest first (to page through the log).
    #[serde(default)]
    after: Option<i64>,
    #[serde(default)]
    limit: Option<u32>,
}

fn bad_query(message: String) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", message)
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    QueryParams(params): QueryParams<AuditParams>,
) -> ApiResult<Json<Vec<AuditRecord>>> {
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(bad_query(format!(
            "`limit` must be between 1 and {MAX_LIMIT}"
        )));
    }
    if let Some(decision) = &params.decision
        && !["allow", "deny"].contains(&decision.as_str())
    {
        return Err(bad_query("`decision` is `allow` or `deny`".to_owned()));
    }
    let kind = match params.kind.as_deref() {
        None => None,
        Some(text) => Some(
            AuditKind::parse(text)
                .ok_or_else(|| bad_query("`kind` is `decision` or `admin`".to_owned()))?,
        ),
    };
    state.data.audit.flush(FLUSH_WAIT).await;
    let records = state
        .store
        .audit(&AuditQuery {
            run: params.run,
            connector: params.connector,
            decision: params.decision,
            method: params.method,
            plugin: params.plugin,
            kind,
            since_ms: params.since,
            until_ms: params.until,
            ascending: params.after.is_some(),
            after_seq: params.after,
            limit,
        })
        .await?;
    Ok(Json(records))
}

/// Who an administrative change is by: the admin token's id.
pub fn actor(state: &AppState) -> String {
    format!("admin:{}", &hex::encode(state.admin_token_hash)[..16])
}

/// Records the administrative change `action` on `target` with its outcome, then hands
/// the outcome on. `before` is the state before; the state after is the answer of a
/// success. A refusal is recorded as `deny`, with the error's reason (or code).
pub async fn audited<T: Serialize>(
    state: &AppState,
    action: &str,
    target: &str,
    before: Option<serde_json::Value>,
    outcome: ApiResult<T>,
) -> ApiResult<T> {
    let text = |value: &serde_json::Value| value.to_string();
    let (decision, reason, after) = match &outcome {
        Ok(answer) => {
            let after = serde_json::to_value(answer).ok().filter(|v| !v.is_null());
            ("allow", None, after.as_ref().map(text))
        }
        Err(error) => {
            let reason = error
                .reason
                .clone()
                .unwrap_or_else(|| error.code.to_owned());
            ("deny", Some(reason), None)
        }
    };
    let record = AuditRecord {
        at_ms: now_ms(),
        kind: AuditKind::Admin,
        decision: decision.to_owned(),
        reason,
        actor: Some(actor(state)),
        action: Some(action.to_owned()),
        target: Some(target.to_owned()),
        before: before.as_ref().map(text),
        after,
        ..AuditRecord::default()
    };
    state.data.audit.record(record).await;
    outcome
}
