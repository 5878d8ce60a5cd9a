#!/usr/bin/env python3
"""protected_mcp.py — an MCP server (official Python SDK 1.30, FastMCP, streamable HTTP)
protected by the OAuth AS from as.mjs.

* No/invalid token → 401 with
    WWW-Authenticate: Bearer error="invalid_token", error_description="Authentication required",
                      resource_metadata="http://127.0.0.1:PORT/.well-known/oauth-protected-resource/mcp"
  (built by the SDK's RequireAuthMiddleware).
* RFC 9728 metadata at the path-specific well-known URL above (SDK route), listing the AS.
* Tokens are verified by RFC 7662 introspection at the AS (no cache: a revocation at the AS
  takes effect on the next request) and the audience (`aud`) must equal this server's
  resource URL (checked here AND by the SDK with validate_token_resource=True).
  JWT access tokens (as.mjs --access-token-format jwt) cannot be introspected at oidc-provider;
  they are verified locally against the AS JWKS (signature, iss, aud, exp) and are therefore
  not revocable before they expire.
* Tools: whoami (subject, client id, scopes — never the token), echo, delete_thing
  (destructive), add.
* Step-up (spec ERR-9): --step-up TOOL=SCOPE[,SCOPE…] (repeatable). A tools/call of TOOL with
  a token lacking SCOPE gets HTTP 403 with
    WWW-Authenticate: Bearer error="insufficient_scope", scope="<held + required>",
                      resource_metadata="…", error_description="…"
  The SDK only supports server-wide `required_scopes`, so this is done by an ASGI wrapper
  placed between the SDK's authentication middleware and its RequireAuthMiddleware; it
  buffers the POST body, looks for a JSON-RPC tools/call of a gated tool and answers 403
  before the SDK sees the request.
* Test counters (no auth): GET /__test/counters, POST /__test/reset.

DNS-rebinding protection (SDK default for host 127.0.0.1): the MCP endpoint accepts only
`Host: 127.0.0.1:<port>`, `localhost:<port>` or `[::1]:<port>` (a port is REQUIRED in the Host
header) and, if an Origin header is sent, `http://127.0.0.1:<port>` etc.; anything else gets
421 "Invalid Host header" / 403 "Invalid Origin header". Add names with --allowed-host.
The well-known and /__test routes are not checked.

Listens on 127.0.0.1 only; --port 0 (default) picks a free port. When ready prints ONE JSON
line on stdout:
  {"url": "http://127.0.0.1:PORT/mcp", "resource": …, "resource_metadata": …, "port": PORT, "pid": …}

Flags (env var in brackets):
  --issuer URL                    [MCP_ISSUER]   required: the AS issuer (as.mjs ready line)
  --port N                        [MCP_PORT]     default 0
  --path /mcp                     [MCP_PATH]
  --required-scopes "a b"         [MCP_REQUIRED_SCOPES]  server-wide (SDK required_scopes → 403)
  --scopes-supported "a b"        [MCP_SCOPES_SUPPORTED] advertised in RFC 9728 metadata when no
                                                       required scopes are set
  --step-up TOOL=S1,S2            [MCP_STEP_UP="tool=s1,s2;tool2=s3"]
  --rs-client-id / --rs-client-secret [MCP_RS_CLIENT_ID / MCP_RS_CLIENT_SECRET] for introspection
                                                       (defaults match as.mjs)
  --allowed-host H:PORT|H:*       [MCP_ALLOWED_HOSTS comma list] extra Host header values
  --json-response                 [MCP_JSON_RESPONSE=1] answer POSTs with JSON instead of SSE
  --stateless                     [MCP_STATELESS=1] no Mcp-Session-Id
  --exit-with-stdin               exit when stdin reaches end of file, so a test process that
                                  dies never leaves the server behind
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import socket
import sys
import time
import warnings
from collections import Counter
from typing import Any

import httpx
import uvicorn
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken, TokenVerifier
from mcp.server.auth.routes import build_resource_metadata_url
from mcp.server.auth.settings import AuthSettings
from mcp.server.fastmcp import Context, FastMCP
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import ToolAnnotations
from pydantic import AnyHttpUrl
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

log = logging.getLogger("protected_mcp")

COUNTERS: Counter[str] = Counter()


def env_bool(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes", "on")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--issuer", default=os.environ.get("MCP_ISSUER"))
    p.add_argument("--port", type=int, default=int(os.environ.get("MCP_PORT", "0")))
    p.add_argument("--path", default=os.environ.get("MCP_PATH", "/mcp"))
    p.add_argument("--required-scopes", default=os.environ.get("MCP_REQUIRED_SCOPES", ""))
    p.add_argument("--scopes-supported", default=os.environ.get("MCP_SCOPES_SUPPORTED", "mcp:tools"))
    p.add_argument("--step-up", action="append", default=[])
    p.add_argument("--rs-client-id", default=os.environ.get("MCP_RS_CLIENT_ID", "mcp-resource-server"))
    p.add_argument("--rs-client-secret", default=os.environ.get("MCP_RS_CLIENT_SECRET", "rs-secret-for-tests"))
    p.add_argument("--allowed-host", action="append", default=[])
    p.add_argument("--json-response", action="store_true", default=env_bool("MCP_JSON_RESPONSE"))
    p.add_argument("--stateless", action="store_true", default=env_bool("MCP_STATELESS"))
    p.add_argument("--log-level", default=os.environ.get("MCP_LOG_LEVEL", "warning"))
    p.add_argument("--exit-with-stdin", action="store_true")
    a = p.parse_args()
    if not a.issuer:
        p.error("--issuer (or MCP_ISSUER) is required")
    env_step_up = os.environ.get("MCP_STEP_UP", "")
    a.step_up += [s for s in env_step_up.split(";") if s]
    gates: dict[str, list[str]] = {}
    for spec in a.step_up:
        tool, _, scopes = spec.partition("=")
        if not tool or not scopes:
            p.error(f"--step-up expects TOOL=SCOPE[,SCOPE], got {spec!r}")
        gates[tool] = [s for s in scopes.split(",") if s]
    a.gates = gates
    a.allowed_host += [h for h in os.environ.get("MCP_ALLOWED_HOSTS", "").split(",") if h]
    return a


class IntrospectionVerifier(TokenVerifier):
    """RFC 7662 introspection at the AS, authenticated with the RS's own client credentials
    (client_secret_basic), plus an audience check against this server's resource URL."""

    def __init__(self, introspection_endpoint: str, client_id: str, client_secret: str, resource: str,
                 issuer: str, jwks_uri: str | None):
        self.endpoint = introspection_endpoint
        self.auth = httpx.BasicAuth(client_id, client_secret)
        self.resource = resource.rstrip("/")
        self.issuer = issuer
        self.http = httpx.AsyncClient(timeout=10.0)
        # oidc-provider refuses to introspect structured (RFC 9068 JWT) access tokens, so for
        # as.mjs --access-token-format jwt the signature is checked locally against the AS JWKS
        # (keys fetched once here). JWT access tokens are NOT revocable: revocation at the AS
        # does not reach them until they expire.
        self.jwks = None
        if jwks_uri:
            import jwt  # PyJWT[crypto], a dependency of mcp

            self.jwks = jwt.PyJWKSet.from_dict(httpx.get(jwks_uri, timeout=10).json())

    def verify_jwt(self, token: str) -> AccessToken | None:
        import jwt

        try:
            kid = jwt.get_unverified_header(token).get("kid")
            key = next(k for k in self.jwks.keys if k.key_id == kid)
            claims = jwt.decode(token, key=key.key, algorithms=["RS256", "PS256", "ES256", "EdDSA"],
                                audience=self.resource, issuer=self.issuer)
        except Exception as e:  # noqa: BLE001 — any failure means "not a valid token"
            log.warning("JWT access token rejected: %s", e)
            COUNTERS["tokens_inactive"] += 1
            return None
        COUNTERS["tokens_accepted"] += 1
        return AccessToken(token=token, client_id=claims.get("client_id", ""),
                           scopes=(claims.get("scope") or "").split(), expires_at=claims.get("exp"),
                           resource=self.resource, subject=claims.get("sub"), claims={"iss": claims.get("iss")})

    async def verify_token(self, token: str) -> AccessToken | None:
        if self.jwks is not None and token.count(".") == 2:
            COUNTERS["jwt_verifications"] += 1
            return self.verify_jwt(token)
        COUNTERS["introspections"] += 1
        try:
            r = await self.http.post(
                self.endpoint,
                data={"token": token, "token_type_hint": "access_token"},
                auth=self.auth,
            )
        except httpx.HTTPError as e:
            log.warning("introspection failed: %s", e)
            COUNTERS["introspection_errors"] += 1
            return None
        if r.status_code != 200:
            log.warning("introspection HTTP %s: %s", r.status_code, r.text[:200])
            COUNTERS["introspection_errors"] += 1
            return None
        data = r.json()
        if not data.get("active"):
            COUNTERS["tokens_inactive"] += 1
            return None
        if data.get("token_type") not in (None, "Bearer"):
            return None  # e.g. a refresh token presented as a bearer token
        aud = data.get("aud")
        auds = aud if isinstance(aud, list) else [aud] if aud else []
        match = next((x for x in auds if str(x).rstrip("/") == self.resource), None)
        if match is None:
            log.warning("token audience %r is not %s", aud, self.resource)
            COUNTERS["tokens_wrong_audience"] += 1
            return None
        exp = data.get("exp")
        if exp is not None and exp < time.time():
            return None
        COUNTERS["tokens_accepted"] += 1
        return AccessToken(
            token=token,
            client_id=data.get("client_id", ""),
            scopes=(data.get("scope") or "").split(),
            expires_at=exp,
            resource=match,
            subject=data.get("sub"),
            claims={"iss": data.get("iss")},
        )


class StepUpGate:
    """ASGI wrapper: 403 insufficient_scope for tools/call of gated tools.

    Sits inside the SDK's AuthenticationMiddleware (scope["user"] is set when the bearer token
    verified) and outside RequireAuthMiddleware (which still answers 401 when it is not)."""

    def __init__(self, app: Any, gates: dict[str, list[str]], resource_metadata_url: str):
        self.app = app
        self.gates = gates
        self.resource_metadata_url = resource_metadata_url

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or not self.gates:
            await self.app(scope, receive, send)
            return
        user = scope.get("user")
        if not isinstance(user, AuthenticatedUser):
            await self.app(scope, receive, send)
            return
        # Buffer the body (the SDK enforces its own size limit later; cap here too).
        chunks, more = [], True
        size = 0
        while more:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            chunks.append(msg.get("body", b""))
            size += len(chunks[-1])
            more = msg.get("more_body", False)
            if size > 4 * 1024 * 1024:
                break
        body = b"".join(chunks)

        missing: list[str] = []
        tool_name = None
        try:
            parsed = json.loads(body)
            msgs = parsed if isinstance(parsed, list) else [parsed]
            for m in msgs:
                if isinstance(m, dict) and m.get("method") == "tools/call":
                    name = (m.get("params") or {}).get("name")
                    for s in self.gates.get(name, []):
                        if s not in user.scopes and s not in missing:
                            missing.append(s)
                            tool_name = name
        except (ValueError, AttributeError):
            pass  # let the SDK produce the parse error

        if missing:
            COUNTERS["step_up_403"] += 1
            wanted = " ".join(list(dict.fromkeys([*user.scopes, *missing])))
            desc = f"tool {tool_name} requires scope {' '.join(missing)}"
            header = (
                f'Bearer error="insufficient_scope", scope="{wanted}", '
                f'resource_metadata="{self.resource_metadata_url}", error_description="{desc}"'
            )
            payload = json.dumps({"error": "insufficient_scope", "error_description": desc}).encode()
            await send({
                "type": "http.response.start",
                "status": 403,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    (b"www-authenticate", header.encode()),
                ],
            })
            await send({"type": "http.response.body", "body": payload})
            return

        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def build_server(a: argparse.Namespace, port: int) -> tuple[Any, dict[str, Any]]:
    base = f"http://127.0.0.1:{port}"
    resource = f"{base}{a.path}"
    resource_metadata = str(build_resource_metadata_url(AnyHttpUrl(resource)))

    # Discover the AS's introspection endpoint (RFC 8414).
    issuer = a.issuer.rstrip("/")
    meta = httpx.get(f"{issuer}/.well-known/oauth-authorization-server", timeout=10).json()
    verifier = IntrospectionVerifier(meta["introspection_endpoint"], a.rs_client_id, a.rs_client_secret, resource,
                                     meta["issuer"], meta.get("jwks_uri"))

    required = a.required_scopes.split() or None
    hosts = ["127.0.0.1:*", "localhost:*", "[::1]:*", *a.allowed_host]
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=hosts,
        allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        auth = AuthSettings(
            issuer_url=AnyHttpUrl(issuer),
            resource_server_url=AnyHttpUrl(resource),
            required_scopes=required,
            validate_token_resource=True,
        )
    mcp = FastMCP(
        "portcullis-protected-test-server",
        token_verifier=verifier,
        auth=auth,
        host="127.0.0.1",
        port=port,
        streamable_http_path=a.path,
        json_response=a.json_response,
        stateless_http=a.stateless,
        transport_security=security,
        log_level=a.log_level.upper(),
    )

    def current_token(ctx: Context) -> AccessToken | None:
        # The HTTP request that carried this JSON-RPC message (not the one that created the
        # session): read the verified token from it rather than from a contextvar.
        req = getattr(ctx.request_context, "request", None)
        user = getattr(req, "user", None) if req is not None else None
        if isinstance(user, AuthenticatedUser):
            return user.access_token
        return get_access_token()

    @mcp.tool(annotations=ToolAnnotations(readOnlyHint=True, title="Who am I"))
    def whoami(ctx: Context) -> dict[str, Any]:
        """Return the subject and client id of the bearer token (never the token itself)."""
        COUNTERS["tool:whoami"] += 1
        tok = current_token(ctx)
        if tok is None:
            return {"error": "no token"}
        return {
            "subject": tok.subject,
            "client_id": tok.client_id,
            "scopes": tok.scopes,
            "resource": tok.resource,
            "expires_at": tok.expires_at,
        }

    @mcp.tool(annotations=ToolAnnotations(readOnlyHint=True))
    def echo(text: str) -> str:
        """Echo the text back."""
        COUNTERS["tool:echo"] += 1
        return text

    @mcp.tool(annotations=ToolAnnotations(readOnlyHint=True))
    def add(a: int, b: int) -> int:
        """Add two integers."""
        COUNTERS["tool:add"] += 1
        return a + b

    @mcp.tool(annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=True, idempotentHint=True))
    def delete_thing(thing_id: str) -> str:
        """Delete a thing (destructive; records the call)."""
        COUNTERS["tool:delete_thing"] += 1
        COUNTERS[f"deleted:{thing_id}"] += 1
        return f"deleted {thing_id}"

    @mcp.custom_route("/__test/counters", methods=["GET"])
    async def counters(_req: Request) -> JSONResponse:
        return JSONResponse(dict(COUNTERS))

    @mcp.custom_route("/__test/reset", methods=["POST"])
    async def reset(_req: Request) -> JSONResponse:
        COUNTERS.clear()
        return JSONResponse({})

    app = mcp.streamable_http_app()

    # RFC 9728 metadata: when no server-wide scopes are required, the SDK would advertise
    # no scopes_supported; the route list is rebuilt here only if --scopes-supported differs.
    if not required and a.scopes_supported.split():
        from mcp.server.auth.routes import create_protected_resource_routes

        new_routes = create_protected_resource_routes(
            resource_url=AnyHttpUrl(resource),
            authorization_servers=[AnyHttpUrl(issuer)],
            scopes_supported=a.scopes_supported.split(),
        )
        new_paths = {r.path for r in new_routes}
        app.router.routes[:] = [r for r in app.router.routes if getattr(r, "path", None) not in new_paths] + new_routes

    # Insert the step-up gate in front of the SDK's RequireAuthMiddleware for the MCP route.
    if a.gates:
        for r in app.router.routes:
            if isinstance(r, Route) and r.path == a.path:
                r.app = StepUpGate(r.app, a.gates, resource_metadata)
                break
        else:
            raise RuntimeError("MCP route not found; SDK layout changed")

    info = {"url": resource, "resource": resource, "resource_metadata": resource_metadata, "port": port,
            "issuer": issuer, "step_up": a.gates, "pid": os.getpid()}
    return app, info


def exit_with_stdin() -> None:
    """Ends the process once stdin is closed: the test that started it is gone."""
    import threading

    def watch() -> None:
        while sys.stdin.buffer.read(4096):
            pass
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


async def main() -> None:
    a = parse_args()
    if a.exit_with_stdin:
        exit_with_stdin()
    logging.basicConfig(level=a.log_level.upper(), stream=sys.stderr)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", a.port))
    sock.listen(128)
    port = sock.getsockname()[1]
    app, info = build_server(a, port)
    server = uvicorn.Server(uvicorn.Config(app, log_level=a.log_level, lifespan="on", access_log=False))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            await task
            return
        await asyncio.sleep(0.02)
    sys.stdout.write(json.dumps(info) + "\n")
    sys.stdout.flush()
    await task


if __name__ == "__main__":
    asyncio.run(main())
