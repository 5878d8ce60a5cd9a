//! The control plane: the admin API under `/admin/v1` (design.md, "Admin API v1").
//!
//! Every route sits behind `Authorization: Bearer <admin token>`, compared in constant
//! time. Every answer that is not a success has the shape `{"error":{"code","message"}}`,
//! unknown paths and methods included.
//!
//! | module | owns |
//! |---|---|
//! | `connectors` | `/connectors`: create (with discovery), list, show, restrict, re-authorize, delete |
//! | `oauth` | `/connectors/probe`, OAuth connectors' authorization, and `GET /oauth/callback` (outside `/admin`) |
//! | `actors` | `/actors/{id}`: actors and their input schemas |
//! | `schema` | validating an input schema's `mcpConnector` properties |
//! | `runs` | `/runs`: start (checked by the access chain), show, finish |
//! | `plugins` | `/plugins`: list, inspect, install (provenance checked), versions, roll back, delete |
//! | `plugin_shadow` | `/plugins/{name}/shadow`: shadow candidates, their counts, promotion |
//! | `chains` | `/chains`: the chain configuration, read and replaced live |
//! | `audit` | `/audit`: the audit log, and the recording of every administrative change |
//! | `error` | the one error shape, the strict extractors, the shared field checks |
//!
//! A change that the data plane may be holding on to (a run finished, a connector or an
//! actor changed) is told to it through [`crate::revocation::Revocations`], never by
//! reaching into its caches. A run just created is handed to it the same way, through
//! [`crate::data::DataPlane::run_created`], so that the run's first message reads
//! nothing from the store.

mod actors;
mod audit;
mod chains;
mod connectors;
mod error;
mod oauth;
mod plugin_shadow;
mod plugins;
mod runs;
pub mod schema;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post, put};
use portcullis_runtime::MAX_COMPONENT_BYTES;
use subtle::ConstantTimeEq;

use crate::auth;
use crate::state::AppState;
use crate::vault::token_hash;

pub use error::{ApiError, ApiResult};

/// The admin API under `/admin/v1`, and the OAuth callback.
pub fn router(state: Arc<AppState>) -> Router {
    let plugins = Router::new()
        .route(
            "/plugins/{name}",
            put(plugins::install)
                .get(plugins::show)
                .delete(plugins::remove),
        )
        .route(
            "/plugins/{name}/shadow",
            put(plugin_shadow::put)
                .get(plugin_shadow::show)
                .delete(plugin_shadow::remove),
        )
        .layer(DefaultBodyLimit::max(MAX_COMPONENT_BYTES));
    let api = Router::new()
        .route(
            "/connectors",
            post(connectors::create).get(connectors::list),
        )
        .route(
            "/connectors/{id}",
            get(connectors::show)
                .patch(connectors::update)
                .delete(connectors::remove),
        )
        .route("/connectors/probe", post(oauth::probe))
        .route(
            "/connectors/{id}/reauthorize",
            post(connectors::reauthorize),
        )
        .route("/actors/{id}", put(actors::put).get(actors::show))
        .route("/runs", post(runs::start))
        .route("/runs/{id}", get(runs::show))
        .route("/runs/{id}/finish", post(runs::finish))
        .route("/plugins", get(plugins::list))
        .route("/plugins/{name}/rollback", post(plugins::rollback))
        .route("/plugins/{name}/versions", get(plugins::versions))
        .route(
            "/plugins/{name}/shadow/promote",
            post(plugin_shadow::promote),
        )
        .route("/chains", get(chains::show).put(chains::put))
        .route("/audit", get(audit::list))
        // The API's root (`/admin/v1`) is no endpoint, but it is inside the API.
        .route("/", any(unknown_path))
        .layer(DefaultBodyLimit::max(state.config.http.max_body_bytes))
        .merge(plugins)
        .fallback(unknown_path)
        .method_not_allowed_fallback(wrong_method);
    let guarded = |router: Router<Arc<AppState>>| {
        router
            .layer(middleware::from_fn_with_state(state.clone(), authenticate))
            .layer(middleware::from_fn_with_state(state.clone(), count))
            .with_state(state.clone())
    };
    // Nesting does not route `/admin/v1/` (the root with a trailing slash) to the nested
    // router or its fallback; it is inside the API all the same and answers in its shape.
    let slash_root = Router::new().route("/admin/v1/", any(unknown_path));
    let callback = Router::new()
        .route(crate::oauth::CALLBACK_PATH, get(oauth::callback))
        .with_state(state.clone());
    Router::new()
        .nest("/admin/v1", guarded(api))
        .merge(guarded(slash_root))
        .merge(callback)
}

async fn authenticate(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(presented) = auth::bearer(request.headers()) else {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send the admin token as `Authorization: Bearer <admin token>`",
        )
        .into_response();
    };
    // Comparing hashes keeps the comparison constant-time whatever the lengths.
    let matches: bool = token_hash(presented).ct_eq(&state.admin_token_hash).into();
    if !matches {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the admin token is not valid; use PORTCULLIS_ADMIN_TOKEN or the token in the \
             data directory's admin.token file",
        )
        .into_response();
    }
    next.run(request).await
}

async fn count(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    state.metrics.admin_request(response.status().as_u16());
    response
}

async fn unknown_path(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("there is no admin API endpoint {method} {uri}; see the admin API reference"),
    )
}

async fn wrong_method(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{uri} does not accept {method}; see the admin API reference"),
    )
}
