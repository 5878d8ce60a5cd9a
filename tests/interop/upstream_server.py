"""A small MCP server built on the official Python SDK, used as an upstream in the interop suite.

Runs with either SDK line: `FastMCP` (mcp 1.x) or `MCPServer` (mcp 2.x, where FastMCP was
renamed). It binds 127.0.0.1 only, on an ephemeral port chosen by the kernel, and writes that
port to --port-file once it listens. Every HTTP request it receives is appended, as one JSON
line holding the request's method, path and headers, to --header-log, so the suite can check
afterwards that the proxy injected the connector credential and never forwarded the run token.

The SDK's DNS-rebinding protection stays at its loopback default (Host must be
127.0.0.1/localhost/[::1] with any port; a foreign Origin is refused), as in a real deployment.

Tools (annotations chosen so that the actor's mcpServers rules permit some and deny others):
  whoami                 read-only; reports the scheme and sha256 of the Authorization header
  count_slowly           read-only; sends a progress notification per step
  reveal_authorization   read-only; returns the raw Authorization header (to test redaction)
  add                    read-only and idempotent, but never declared by the actor
  send_message           mutating, non-destructive, open-world
  delete_record          mutating and destructive
  admin_reset            no annotations at all (MCP defaults: mutating, destructive)
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import socket
import sys

import mcp.types as types

try:  # mcp 2.x
    from mcp.server.mcpserver import Context, MCPServer as ServerClass

    SDK_LINE = 2
except ImportError:  # mcp 1.x
    from mcp.server.fastmcp import Context, FastMCP as ServerClass

    SDK_LINE = 1

try:
    from importlib.metadata import version as _pkg_version

    SDK_VERSION = _pkg_version("mcp")
except Exception:  # pragma: no cover - metadata always present in a pip install
    SDK_VERSION = "unknown"


def _headers(ctx: Context) -> dict[str, str]:
    """The HTTP headers of the request that carried this tool call (both SDK lines)."""
    request = getattr(ctx.request_context, "request", None)
    headers = getattr(request, "headers", None)
    if headers is None:
        return {}
    return {k.lower(): v for k, v in headers.items()}


def build_server(name: str) -> ServerClass:
    server = ServerClass(name)

    @server.tool(
        description="Report which credential this server received (scheme and sha256, never the value).",
        annotations=types.ToolAnnotations(readOnlyHint=True, openWorldHint=False),
    )
    def whoami(ctx: Context) -> str:
        headers = _headers(ctx)
        auth = headers.get("authorization")
        scheme, _, credential = (auth or "").partition(" ")
        return json.dumps(
            {
                "server": name,
                "sdk": SDK_VERSION,
                "has_authorization": auth is not None,
                "scheme": scheme if auth else None,
                "credential_sha256": hashlib.sha256(credential.encode()).hexdigest() if auth else None,
                "authorization_sha256": hashlib.sha256(auth.encode()).hexdigest() if auth else None,
                "header_names": sorted(headers),
                "host": headers.get("host"),
            }
        )

    @server.tool(
        description="Count to `steps`, sending one progress notification per step.",
        annotations=types.ToolAnnotations(readOnlyHint=True, openWorldHint=False),
    )
    async def count_slowly(ctx: Context, steps: int = 3, delay_ms: int = 50) -> str:
        for i in range(1, steps + 1):
            await asyncio.sleep(delay_ms / 1000)
            await ctx.report_progress(i, steps, f"step {i} of {steps}")
        return f"counted to {steps}"

    @server.tool(
        description="Return the raw Authorization header this server received.",
        annotations=types.ToolAnnotations(readOnlyHint=True, openWorldHint=False),
    )
    def reveal_authorization(ctx: Context) -> str:
        return "authorization=" + str(_headers(ctx).get("authorization"))

    @server.tool(
        description="Add two integers.",
        annotations=types.ToolAnnotations(readOnlyHint=True, idempotentHint=True, openWorldHint=False),
    )
    def add(a: int, b: int) -> str:
        return str(a + b)

    @server.tool(
        description="Pretend to send a message.",
        annotations=types.ToolAnnotations(
            readOnlyHint=False, destructiveHint=False, idempotentHint=False, openWorldHint=True
        ),
    )
    def send_message(channel: str, text: str) -> str:
        return f"sent to {channel}: {text}"

    @server.tool(
        description="Pretend to delete a record.",
        annotations=types.ToolAnnotations(readOnlyHint=False, destructiveHint=True, openWorldHint=False),
    )
    def delete_record(record_id: str) -> str:
        return f"deleted {record_id}"

    @server.tool(description="Pretend to reset everything (no annotations).")
    def admin_reset() -> str:
        return "reset"

    return server


class HeaderLog:
    """Pure ASGI wrapper: append each HTTP request's method, path and headers to a JSONL file,
    then its body (as a separate "body" record) once the application has read it."""

    def __init__(self, app, path: str, name: str) -> None:
        self.app = app
        self.path = path
        self.name = name

    async def __call__(self, scope, receive, send):
        if scope.get("type") == "http":
            record = {
                "upstream": self.name,
                "kind": "request",
                "method": scope.get("method"),
                "path": scope.get("path"),
                "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope.get("headers", [])],
            }
            self._append(record)
            chunks: list[bytes] = []

            async def logging_receive():
                message = await receive()
                if message.get("type") == "http.request":
                    chunks.append(message.get("body", b""))
                    if not message.get("more_body", False):
                        body = b"".join(chunks)[:65536].decode("utf-8", "replace")
                        self._append({"upstream": self.name, "kind": "body", "method": record["method"],
                                      "body": body})
                return message

            await self.app(scope, logging_receive, send)
            return
        await self.app(scope, receive, send)

    def _append(self, record: dict) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", required=True)
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--header-log", required=True)
    args = parser.parse_args()

    import uvicorn

    server = build_server(args.name)
    app = server.streamable_http_app()
    wrapped = HeaderLog(app, args.header_log, args.name)

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.set_inheritable(True)
    port = sock.getsockname()[1]

    config = uvicorn.Config(wrapped, log_level="warning", lifespan="on", timeout_graceful_shutdown=1)
    uv = uvicorn.Server(config)

    async def serve() -> None:
        task = asyncio.create_task(uv.serve(sockets=[sock]))
        for _ in range(200):
            if uv.started or task.done():
                break
            await asyncio.sleep(0.02)
        if uv.started:
            tmp = args.port_file + ".tmp"
            with open(tmp, "w") as f:
                f.write(str(port))
            os.replace(tmp, args.port_file)
            print(f"{args.name}: mcp {SDK_VERSION} listening on 127.0.0.1:{port}", file=sys.stderr, flush=True)
        await task

    asyncio.run(serve())


if __name__ == "__main__":
    main()
