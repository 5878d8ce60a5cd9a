//! `portcullis demo-upstream`: a small MCP server (rmcp, Streamable HTTP) to try the
//! proxy with, and the upstream the tests run in-process.
//!
//! Its tools cover the hint combinations the input-schema rules filter on: read-only,
//! destructive, idempotent, and one left unannotated (so the MCP defaults apply).
//! `whoami` answers with the `Authorization` header it received, which shows that the
//! proxy injected the connector's credential and never the run token. With
//! `require_token` set, requests without that bearer token are answered 401.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::serve::ListenerExt;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::Extension;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{ServerCapabilities, ServerConfig};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ServerHandler, schemars, tool, tool_handler, tool_router};
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// How the demo server behaves.
#[derive(Clone, Debug, Default)]
pub struct DemoOptions {
    /// When set, every request must carry `Authorization: Bearer <token>`.
    pub require_token: Option<String>,
}

/// A demo server running in the background; stops when dropped.
pub struct DemoUpstream {
    pub addr: SocketAddr,
    /// The MCP endpoint, `http://<addr>/mcp`.
    pub url: String,
    task: JoinHandle<()>,
}

impl Drop for DemoUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Items = Arc<Mutex<BTreeMap<u64, String>>>;

#[derive(Clone)]
struct Demo {
    items: Items,
    tool_router: ToolRouter<Demo>,
}

#[derive(Deserialize, schemars::JsonSchema)]
struct ItemId {
    /// The item's number.
    id: u64,
}

#[derive(Deserialize, schemars::JsonSchema)]
struct NewItem {
    /// The item's text.
    name: String,
}

#[derive(Deserialize, schemars::JsonSchema)]
struct ItemUpdate {
    id: u64,
    name: String,
}

#[derive(Deserialize, schemars::JsonSchema)]
struct Message {
    /// Where the message goes, such as `#general`.
    channel: String,
    text: String,
}

#[tool_router]
impl Demo {
    fn new(items: Items) -> Self {
        Self {
            items,
            tool_router: Self::tool_router(),
        }
    }

    #[tool(
        description = "List every item with its id",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    fn list_items(&self) -> String {
        let items = self.items.lock().expect("items lock");
        if items.is_empty() {
            return "no items".to_owned();
        }
        items
            .iter()
            .map(|(id, name)| format!("{id}: {name}"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[tool(
        description = "Read one item",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    fn get_item(&self, Parameters(ItemId { id }): Parameters<ItemId>) -> String {
        match self.items.lock().expect("items lock").get(&id) {
            Some(name) => format!("{id}: {name}"),
            None => format!("no item {id}"),
        }
    }

    #[tool(
        description = "Create an item and answer its id",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    fn create_item(&self, Parameters(NewItem { name }): Parameters<NewItem>) -> String {
        let mut items = self.items.lock().expect("items lock");
        let id = items.keys().next_back().map_or(1, |last| last + 1);
        items.insert(id, name);
        format!("created item {id}")
    }

    #[tool(
        description = "Rename an item; renaming twice to the same name changes nothing more",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    fn update_item(&self, Parameters(ItemUpdate { id, name }): Parameters<ItemUpdate>) -> String {
        match self.items.lock().expect("items lock").get_mut(&id) {
            Some(slot) => {
                *slot = name;
                format!("updated item {id}")
            }
            None => format!("no item {id}"),
        }
    }

    #[tool(
        description = "Delete an item for good",
        annotations(
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    fn delete_item(&self, Parameters(ItemId { id }): Parameters<ItemId>) -> String {
        match self.items.lock().expect("items lock").remove(&id) {
            Some(_) => format!("deleted item {id}"),
            None => format!("no item {id}"),
        }
    }

    /// Deliberately unannotated: the MCP defaults make it a destructive, open-world,
    /// non-idempotent tool.
    #[tool(description = "Send a message to a channel (pretend)")]
    fn send_message(&self, Parameters(Message { channel, text }): Parameters<Message>) -> String {
        format!("sent {} characters to {channel}", text.chars().count())
    }

    #[tool(
        description = "Report the Authorization header this server received",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    fn whoami(&self, Extension(parts): Extension<http::request::Parts>) -> String {
        match parts.headers.get(header::AUTHORIZATION) {
            Some(value) => format!(
                "Authorization: {}",
                value.to_str().unwrap_or("(not visible ASCII)")
            ),
            None => "no Authorization header".to_owned(),
        }
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Demo {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}

/// The demo server's routes: the MCP endpoint at `/mcp`.
pub fn router(options: DemoOptions) -> Router {
    let items: Items = Arc::new(Mutex::new(BTreeMap::from([
        (1, "buy milk".to_owned()),
        (2, "write the report".to_owned()),
    ])));
    let service: StreamableHttpService<Demo, LocalSessionManager> = StreamableHttpService::new(
        move || Ok(Demo::new(items.clone())),
        Default::default(),
        StreamableHttpServerConfig::default(),
    );
    let expected = options
        .require_token
        .map(|t| Arc::<str>::from(format!("Bearer {t}")));
    Router::new()
        .nest_service("/mcp", service)
        .layer(middleware::from_fn_with_state(expected, require_token))
}

async fn require_token(
    State(expected): State<Option<Arc<str>>>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(expected) = expected {
        let presented = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if presented != Some(&*expected) {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer error=\"invalid_token\"")],
                "invalid or missing token\n",
            )
                .into_response();
        }
    }
    next.run(request).await
}

/// Starts the demo server on `addr` (port 0 picks a free one) in the background.
pub async fn spawn_demo_upstream(
    addr: SocketAddr,
    options: DemoOptions,
) -> anyhow::Result<DemoUpstream> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let addr = listener.local_addr()?;
    let listener = listener.tap_io(|tcp| {
        // Without it a proxy's pooled connection waits ~40 ms on every call.
        let _ = tcp.set_nodelay(true);
    });
    let app = router(options);
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "demo upstream stopped");
        }
    });
    Ok(DemoUpstream {
        addr,
        url: format!("http://{addr}/mcp"),
        task,
    })
}

/// Runs the demo server until Ctrl-C.
pub async fn run(addr: SocketAddr, options: DemoOptions) -> anyhow::Result<()> {
    let demo = spawn_demo_upstream(addr, options).await?;
    println!("Demo MCP server: {}", demo.url);
    tokio::signal::ctrl_c().await?;
    drop(demo);
    Ok(())
}
