//! The rmcp server behind every rmcp upstream: it lists a [`ToolSet`] and answers its tools.
//!
//! Written against `ServerHandler` directly rather than with `#[tool_router]`, because the
//! tool list is data a test changes while the server runs, not a fixed set of methods.

use std::time::Duration;

use rmcp::{
    ErrorData, RoleServer, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
        JsonObject, ListToolsResult, PaginatedRequestParams, ProgressNotificationParam,
        ServerCapabilities, ServerConfig,
    },
    service::RequestContext,
};

use crate::catalogue::ToolSet;

#[derive(Clone)]
pub(crate) struct CatalogueServer {
    pub(crate) tools: ToolSet,
    /// `None` lists every tool in one page.
    pub(crate) page_size: Option<usize>,
}

const CURSOR_PREFIX: &str = "offset-";

impl ServerHandler for CatalogueServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build()).with_server_info(
            Implementation::new("portcullis-test-upstream", env!("CARGO_PKG_VERSION")),
        )
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let Some(page_size) = self.page_size else {
            return Ok(ListToolsResult::with_all_items(self.tools.read().clone()));
        };
        let offset = match request.and_then(|r| r.cursor) {
            None => 0,
            Some(cursor) => cursor
                .strip_prefix(CURSOR_PREFIX)
                .and_then(|n| n.parse::<usize>().ok())
                .ok_or_else(|| {
                    ErrorData::invalid_params(format!("Invalid cursor: {cursor}"), None)
                })?,
        };
        // A notification before the result is what makes a paged answer arrive as a stream
        // of several events, which is the case a proxy's SSE filter must get right.
        if let Some(token) = context.meta.get_progress_token() {
            let _ = context
                .peer
                .notify_progress(
                    ProgressNotificationParam::new(token, offset as f64)
                        .with_message("listing tools"),
                )
                .await;
        }
        let (page, total) = {
            let tools = self.tools.read();
            let page: Vec<_> = tools.iter().skip(offset).take(page_size).cloned().collect();
            (page, tools.len())
        };
        let next = offset + page.len();
        let mut result = ListToolsResult::with_all_items(page);
        if next < total && page_size > 0 {
            result.next_cursor = Some(format!("{CURSOR_PREFIX}{next}"));
        }
        Ok(result)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let name = request.name.as_ref();
        if !self.tools.contains(name) {
            return Err(ErrorData::invalid_params(
                format!("Unknown tool: {name}"),
                None,
            ));
        }
        let arguments = request.arguments.unwrap_or_default();
        let result = match name {
            "echo" => echo(&arguments)?,
            "whoami" => whoami(&context),
            "slow_count" => slow_count(&arguments, &context).await,
            _ => CallToolResult::success(vec![ContentBlock::text(format!(
                "{name}: {}",
                serde_json::Value::Object(arguments)
            ))]),
        };
        Ok(result.into())
    }
}

fn echo(arguments: &JsonObject) -> Result<CallToolResult, ErrorData> {
    let text = arguments
        .get("text")
        .and_then(|t| t.as_str())
        .ok_or_else(|| ErrorData::invalid_params("echo needs a string `text`", None))?;
    Ok(CallToolResult::success(vec![ContentBlock::text(text)]))
}

fn whoami(context: &RequestContext<RoleServer>) -> CallToolResult {
    let authorization = context
        .extensions
        .get::<http::request::Parts>()
        .and_then(|parts| parts.headers.get(http::header::AUTHORIZATION))
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
    match authorization {
        Some(value) => CallToolResult::success(vec![ContentBlock::text(value)]),
        None => CallToolResult::error(vec![ContentBlock::text("no Authorization header")]),
    }
}

async fn slow_count(
    arguments: &JsonObject,
    context: &RequestContext<RoleServer>,
) -> CallToolResult {
    let number = |key: &str, default: u64| {
        arguments
            .get(key)
            .and_then(|v| v.as_u64())
            .unwrap_or(default)
    };
    let count = number("count", 3);
    let delay = Duration::from_millis(number("delay_ms", 20));
    let token = context.meta.get_progress_token();
    for step in 1..=count {
        if let Some(token) = &token {
            let _ = context
                .peer
                .notify_progress(
                    ProgressNotificationParam::new(token.clone(), step as f64)
                        .with_total(count as f64)
                        .with_message(format!("counted {step}")),
                )
                .await;
        }
        // Sleeping after each event, the last one included, leaves a gap a test can observe
        // between the last progress event and the result.
        tokio::time::sleep(delay).await;
    }
    CallToolResult::success(vec![ContentBlock::text(format!("counted {count}"))])
}
