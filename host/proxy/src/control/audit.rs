//! `/audit`: the decision records of the data plane, newest first.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::Deserialize;

use super::error::{ApiError, ApiResult, QueryParams};
use crate::state::AppState;
use crate::store::{AuditQuery, AuditRecord};

const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    #[serde(default)]
    run: Option<String>,
    #[serde(default)]
    connector: Option<String>,
    #[serde(default)]
    limit: Option<u32>,
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    QueryParams(params): QueryParams<AuditParams>,
) -> ApiResult<Json<Vec<AuditRecord>>> {
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "invalid_query",
            format!("`limit` must be between 1 and {MAX_LIMIT}"),
        ));
    }
    let records = state
        .store
        .audit(&AuditQuery {
            run: params.run,
            connector: params.connector,
            limit,
        })
        .await?;
    Ok(Json(records))
}
