//! The well-behaved upstreams: rmcp's own Streamable HTTP server in front of a [`ToolSet`].

use std::sync::Arc;

use axum::{Router, middleware};
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
};
use tokio_util::sync::CancellationToken;

use crate::{
    catalogue::{self, ToolSet},
    handler::CatalogueServer,
    recording::record,
    server::{self, MCP_PATH, Upstream},
};

/// How to start an rmcp upstream. The shortcuts ([`sessions`], [`stateless`], [`paging`],
/// [`progress`], [`recording`]) cover the usual cases; the builder lets a test pick the tools
/// and keep a handle on them.
///
/// ```no_run
/// # async fn f() {
/// use portcullis_test_upstreams::{McpUpstream, ToolSet, catalogue};
/// let tools = ToolSet::channels();
/// tools.remove("archive_channel");
/// let upstream = McpUpstream::with_sessions().tools(tools.clone()).start().await;
/// // ... authorize a connector against upstream.url() ...
/// tools.add(catalogue::archive_channel()); // appears upstream only now
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct McpUpstream {
    tools: ToolSet,
    sessions: bool,
    page_size: Option<usize>,
    record: bool,
    keep_alive: bool,
}

impl McpUpstream {
    /// rmcp with sessions (`legacy_session_mode: true`): `initialize` mints an
    /// `Mcp-Session-Id`, and every request is answered over SSE, opening with rmcp's priming
    /// event (an `id: 0` event with `retry: 3000` and empty data). Serves the channel tools.
    pub fn with_sessions() -> Self {
        Self {
            tools: ToolSet::channels(),
            sessions: true,
            page_size: None,
            record: true,
            keep_alive: true,
        }
    }

    /// rmcp without sessions (`legacy_session_mode: false`, `json_response: true`): no
    /// `Mcp-Session-Id`, each request served on its own, answered as `application/json`
    /// unless the tool sends a notification first (then SSE). 2026-07-28 requests
    /// (`server/discover` and requests carrying the `_meta` protocol fields) are served as
    /// rmcp serves them. Serves the channel tools.
    pub fn stateless() -> Self {
        Self {
            sessions: false,
            ..Self::with_sessions()
        }
    }

    /// Serves `tools` instead of the channel tools. Keep a clone to change them later.
    pub fn tools(mut self, tools: ToolSet) -> Self {
        self.tools = tools;
        self
    }

    /// Pages `tools/list` by `page_size` with `nextCursor`s, sending one
    /// `notifications/progress` before each page when the request carries a progressToken
    /// (rmcp clients always send one). An unknown cursor gets `-32602`.
    pub fn page_size(mut self, page_size: usize) -> Self {
        self.page_size = Some(page_size);
        self
    }

    /// Starts the upstream on `127.0.0.1` with an ephemeral port.
    ///
    /// # Panics
    /// If no loopback port can be bound, or outside a tokio runtime.
    pub async fn start(self) -> Upstream {
        let stop = CancellationToken::new();
        let mut config = StreamableHttpServerConfig::default()
            .with_legacy_session_mode(self.sessions)
            .with_json_response(!self.sessions)
            .with_cancellation_token(stop.clone());
        if !self.keep_alive {
            config = config.with_sse_keep_alive(None);
        }
        let handler = CatalogueServer {
            tools: self.tools,
            page_size: self.page_size,
        };
        let service: StreamableHttpService<CatalogueServer, LocalSessionManager> =
            StreamableHttpService::new(
                move || Ok(handler.clone()),
                Arc::new(LocalSessionManager::default()),
                config,
            );
        let log = server::new_log();
        let mut app = Router::new().nest_service(MCP_PATH, service);
        if self.record {
            app = app.layer(middleware::from_fn_with_state(log.clone(), record));
        }
        let (listener, addr) = server::bind();
        server::spawn(listener, addr, app, log, stop)
    }
}

/// rmcp with sessions, serving the channel tools and `echo`. See
/// [`McpUpstream::with_sessions`].
pub async fn sessions() -> Upstream {
    McpUpstream::with_sessions().start().await
}

/// rmcp without sessions, answering JSON, serving the channel tools and `echo`. See
/// [`McpUpstream::stateless`].
pub async fn stateless() -> Upstream {
    McpUpstream::stateless().start().await
}

/// rmcp with sessions serving `total` tools `tool_000`, `tool_001`, ... in pages of
/// `page_size`, each page answered over SSE after a progress notification. See
/// [`McpUpstream::page_size`].
pub async fn paging(total: usize, page_size: usize) -> Upstream {
    McpUpstream::with_sessions()
        .tools(ToolSet::new(catalogue::numbered(total)))
        .page_size(page_size)
        .start()
        .await
}

/// rmcp with sessions serving `slow_count` and `echo`: `slow_count` streams
/// `notifications/progress` over SSE before its result (see [`catalogue::slow_count`]).
pub async fn progress() -> Upstream {
    McpUpstream::with_sessions()
        .tools(ToolSet::new(vec![
            catalogue::slow_count(),
            catalogue::echo(),
        ]))
        .start()
        .await
}

/// rmcp with sessions serving the channel tools, `echo` and `whoami`, which answers the
/// `Authorization` header it received. Every upstream records what reaches it
/// ([`Upstream::requests`]); this one exists for the tests whose point is that record.
pub async fn recording() -> Upstream {
    let tools = ToolSet::channels();
    tools.add(catalogue::whoami());
    McpUpstream::with_sessions().tools(tools).start().await
}

/// The benchmark upstream: rmcp without sessions, JSON answers, one `echo` tool, no request
/// recording and no SSE keep-alive, so that what a benchmark measures is the proxy.
pub async fn echo_bench() -> Upstream {
    McpUpstream {
        record: false,
        keep_alive: false,
        ..McpUpstream::stateless().tools(ToolSet::new(vec![catalogue::echo()]))
    }
    .start()
    .await
}
