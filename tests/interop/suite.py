"""Portcullis interop suite driver (called by tests/interop/run.sh).

Subcommands:
  setup   (stdlib only)   admin API: connectors for every upstream, a layer-1 allowlist, the
                          actor and its mcpServers rules; writes the state file.
  client  (a venv with the official `mcp` SDK, 1.x or 2.x)
                          starts its own run, drives the SDK client through the proxy against
                          every connector, finishes the run and checks that access ends.
  verify  (stdlib only)   reads what every upstream recorded (headers, and bodies for the
                          Python servers): the injected credential on every request, never a
                          run token, never a denied tool call.

Every check prints one `PASS <name>` or `FAIL <name>: <detail>` line and appends it to the
results file; run.sh counts them. Only 127.0.0.1 is ever contacted.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
import traceback
import urllib.error
import urllib.request

# ---------------------------------------------------------------------------------------------
# What the actor declares and what each connector must therefore expose.

OWNER = "interop-user"
ACTOR = "interop-actor"

EVERYTHING_ALL_EXPECTED = {"echo", "get-sum", "get-env", "trigger-long-running-operation"}
PY_TOOLS = {"whoami", "count_slowly", "reveal_authorization", "add", "send_message", "delete_record", "admin_reset"}

# Layer 2 (the actor's input schema). Layer 1 (allowlist) removes send_message from py2.
INPUT_SCHEMA = {
    "title": "Portcullis interop actor",
    "type": "object",
    "schemaVersion": 1,
    "properties": {
        "everything": {
            "title": "Everything server",
            "description": "server-everything connector",
            "type": "string",
            "resourceType": "mcpConnector",
            "mcpServers": [
                {"url": "http://127.0.0.1:*/mcp", "tools": {"required": ["echo", "trigger-long-running-*"]}}
            ],
        },
        "pyConnectors": {
            "title": "Python SDK servers",
            "description": "Python SDK connectors",
            "type": "array",
            "resourceType": "mcpConnector",
            "mcpServers": [
                {
                    "url": "http://127.0.0.1:*/mcp",
                    "tools": {"required": ["whoami", "count_*", "reveal_*"], "readOnly": True},
                },
                {"url": "*", "tools": {"required": ["send_message"], "destructive": False}},
            ],
        },
    },
}

EXPECTED = {
    "everything": {
        "permitted": {"echo", "trigger-long-running-operation"},
        "denied": ["get-sum", "get-env", "no-such-tool"],
        "call": ("echo", {"message": "hello through portcullis"}, "Echo: hello through portcullis"),
        "progress": ("trigger-long-running-operation", {"duration": 0.6, "steps": 3}, "completed"),
    },
    "py1": {
        "permitted": {"whoami", "count_slowly", "reveal_authorization", "send_message"},
        "denied": ["add", "delete_record", "admin_reset"],
        "call": ("send_message", {"channel": "#interop", "text": "hi"}, "sent to #interop: hi"),
        "progress": ("count_slowly", {"steps": 3, "delay_ms": 50}, "counted to 3"),
    },
    "py2": {
        "permitted": {"whoami", "count_slowly", "reveal_authorization"},
        "denied": ["send_message", "add", "delete_record", "admin_reset"],
        "call": ("whoami", {}, '"has_authorization": true'),
        "progress": ("count_slowly", {"steps": 3, "delay_ms": 50}, "counted to 3"),
    },
}

DENIED_EVER = {"add", "delete_record", "admin_reset"}  # never permitted on any Python connector


# ---------------------------------------------------------------------------------------------
# Reporting


class Reporter:
    def __init__(self, results_path: str, prefix: str) -> None:
        self.results_path = results_path
        self.prefix = prefix
        self.failed = 0

    def _write(self, line: str) -> None:
        print(line, flush=True)
        with open(self.results_path, "a", encoding="utf-8") as f:
            f.write(line + "\n")

    def ok(self, name: str) -> None:
        self._write(f"PASS {self.prefix}{name}")

    def fail(self, name: str, detail: str) -> None:
        self.failed += 1
        detail = " ".join(str(detail).split())[:600]
        self._write(f"FAIL {self.prefix}{name}: {detail}")

    def check(self, name: str, cond: bool, detail: str = "") -> bool:
        if cond:
            self.ok(name)
        else:
            self.fail(name, detail or "condition false")
        return cond


# ---------------------------------------------------------------------------------------------
# Plain HTTP (stdlib), loopback only


def _assert_loopback(url: str) -> None:
    if not (url.startswith("http://127.0.0.1:") or url.startswith("http://127.0.0.1/")):
        raise RuntimeError(f"refusing to contact a non-loopback URL: {url}")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # never follow redirects
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def http(method: str, url: str, *, token: str | None = None, body=None, headers=None, timeout: float = 30):
    """Return (status, headers, parsed JSON or raw text)."""
    _assert_loopback(url)
    data = None
    hdrs = dict(headers or {})
    if body is not None:
        data = json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    if token is not None:
        hdrs["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        with _OPENER.open(req, timeout=timeout) as resp:
            status, rh, raw = resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:
        status, rh, raw = e.code, dict(e.headers or {}), e.read()
    text = raw.decode("utf-8", "replace")
    try:
        parsed = json.loads(text) if text.strip() else None
    except ValueError:
        parsed = text
    return status, {k.lower(): v for k, v in rh.items()}, parsed


class Admin:
    def __init__(self, base: str, token: str) -> None:
        self.base = base.rstrip("/") + "/admin/v1"
        self.token = token

    def __call__(self, method: str, path: str, body=None, token: str | None = "default"):
        return http(method, self.base + path, token=self.token if token == "default" else token, body=body)


def sha256(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()


def brief(x) -> str:
    s = json.dumps(x) if not isinstance(x, str) else x
    return s[:400]


# ---------------------------------------------------------------------------------------------
# setup


def cmd_setup(args) -> int:
    rep = Reporter(args.results, "setup: ")
    admin = Admin(args.base, args.admin_token)
    secrets = {
        "everything": "sk-interop-everything-" + os.urandom(12).hex(),
        "py1": "sk-interop-py1-" + os.urandom(12).hex(),
        "py2": "sk-interop-py2-" + os.urandom(12).hex(),
        "spare": "sk-interop-spare-" + os.urandom(12).hex(),
    }
    urls = {
        "everything": f"http://127.0.0.1:{args.everything_port}/mcp",
        "py1": f"http://127.0.0.1:{args.py1_port}/mcp",
        "py2": f"http://127.0.0.1:{args.py2_port}/mcp",
        "spare": f"http://127.0.0.1:{args.py1_port}/mcp",
    }
    state = {"base": args.base, "admin_token": args.admin_token, "secrets": secrets, "urls": urls, "connectors": {}}

    st, _, body = admin("GET", f"/connectors?owner={OWNER}", token=None)
    rep.check("admin API without token is 401", st == 401, f"status {st} body {brief(body)}")
    st, _, body = admin("GET", f"/connectors?owner={OWNER}", token="wrong-admin-token")
    rep.check("admin API with a wrong token is 401", st == 401, f"status {st} body {brief(body)}")

    fatal = False
    for key in ("everything", "py1", "py2", "spare"):
        req = {
            "owner": OWNER,
            "name": f"interop-{key}",
            "server_url": urls[key],
            "auth": {"method": "api_key", "secret": secrets[key]},
        }
        st, _, body = admin("POST", "/connectors", req)
        if not rep.check(f"POST /connectors {key} is 201", st == 201 and isinstance(body, dict) and "id" in body,
                         f"status {st} body {brief(body)}"):
            fatal = True
            continue
        state["connectors"][key] = body["id"]
        rep.check(f"connector {key} response never contains its secret", secrets[key] not in json.dumps(body),
                  "secret echoed")
        names = {t.get("name") for t in body.get("tools") or []}
        want = EVERYTHING_ALL_EXPECTED if key == "everything" else PY_TOOLS
        rep.check(f"connector {key} discovered the upstream tools", want <= names,
                  f"missing {sorted(want - names)}; got {sorted(names)}")
        if key != "everything":
            rep.check(f"connector {key} kept tool annotations", any(
                (t.get("annotations") or {}).get("readOnlyHint") is True
                for t in body.get("tools") or [] if t.get("name") == "whoami"), brief(body.get("tools")))
        state.setdefault("discovered", {})[key] = sorted(names)
    if fatal:
        write_state(args.state, state)
        return 1

    # Layer 1: the py2 connector's owner disallows send_message.
    allowed = sorted(set(state["discovered"]["py2"]) - {"send_message"})
    st, _, body = admin("PATCH", f"/connectors/{state['connectors']['py2']}", {"allowed_tools": allowed})
    rep.check("PATCH /connectors/{py2} allowed_tools is 200", st == 200 and isinstance(body, dict)
              and sorted(body.get("allowed_tools") or []) == allowed, f"status {st} body {brief(body)}")

    st, _, body = admin("GET", f"/connectors/{state['connectors']['py1']}")
    rep.check("GET /connectors/{id} never returns the secret", st == 200 and secrets["py1"] not in json.dumps(body),
              f"status {st} body {brief(body)}")

    # An invalid mcpConnector property (no mcpServers) is refused.
    bad = json.loads(json.dumps(INPUT_SCHEMA))
    del bad["properties"]["everything"]["mcpServers"]
    st, _, body = admin("PUT", "/actors/interop-bad-actor", {"input_schema": bad})
    rep.check("PUT /actors with an invalid mcpConnector property is 422", st == 422, f"status {st} body {brief(body)}")

    st, _, body = admin("PUT", f"/actors/{ACTOR}", {"input_schema": INPUT_SCHEMA})
    if not rep.check("PUT /actors/{id} is 200/201", st in (200, 201), f"status {st} body {brief(body)}"):
        write_state(args.state, state)
        return 1

    # A run whose input names an ineligible connector (spare does not offer echo) is refused.
    c = state["connectors"]
    st, _, body = admin("POST", "/runs", {"actor": ACTOR, "user": OWNER,
                                          "input": {"everything": c["spare"], "pyConnectors": [c["py1"]]}})
    rep.check("POST /runs naming an ineligible connector is 422", st == 422, f"status {st} body {brief(body)}")
    st, _, body = admin("POST", "/runs", {"actor": ACTOR, "user": "someone-else",
                                          "input": {"everything": c["everything"], "pyConnectors": [c["py1"]]}})
    rep.check("POST /runs naming another user's connectors is 422", st == 422, f"status {st} body {brief(body)}")

    write_state(args.state, state)
    return 0


def write_state(path: str, state: dict) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(state, f, indent=1)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------
# client (runs inside a venv with the official SDK)


def cmd_client(args) -> int:
    import anyio

    rep = Reporter(args.results, f"{args.label}: ")
    with open(args.state) as f:
        state = json.load(f)
    try:
        anyio.run(_client_main, args, state, rep)
    except BaseException as e:  # noqa: BLE001 - report, never crash silently
        rep.fail("client driver crashed", f"{type(e).__name__}: {e} | {traceback.format_exc()[-800:]}")
    return 1 if rep.failed else 0


def _sdk():
    """Normalize the differences between SDK lines 1.x and 2.x."""
    from importlib.metadata import version

    import mcp
    from mcp import ClientSession

    ver = version("mcp")
    major = int(ver.split(".")[0])
    if major >= 2:
        import httpx2 as httpx_mod
        from mcp.client.streamable_http import streamable_http_client
    else:
        import httpx as httpx_mod
        from mcp.client.streamable_http import streamable_http_client
    return {"version": ver, "major": major, "mcp": mcp, "ClientSession": ClientSession,
            "httpx": httpx_mod, "streamable_http_client": streamable_http_client}


def _err(e: BaseException):
    """(code, message, data) of an MCP error raised by either SDK line, or None."""
    err = getattr(e, "error", None)
    if err is None:
        return None
    return getattr(err, "code", None), getattr(err, "message", None), getattr(err, "data", None)


def _text(result) -> str:
    parts = []
    for c in getattr(result, "content", None) or []:
        t = getattr(c, "text", None)
        if t is not None:
            parts.append(t)
    return "\n".join(parts)


class Conn:
    """One SDK client session to one connector through the proxy, with HTTP status recording."""

    def __init__(self, sdk, url: str, token: str, mode: str) -> None:
        self.sdk = sdk
        self.url = url
        self.token = token
        self.mode = mode
        self.statuses: list[tuple[str, int]] = []
        self.protocol_version = None
        self.session = None
        self.capabilities = None
        self._client = None

    async def _hook(self, response) -> None:
        self.statuses.append((response.request.method, response.status_code))

    def _timeout(self, seconds: float):
        from datetime import timedelta

        return seconds if self.sdk["major"] >= 2 else timedelta(seconds=seconds)

    async def __aenter__(self):
        from contextlib import AsyncExitStack

        import anyio

        sdk = self.sdk
        self._stack = AsyncExitStack()
        await self._stack.__aenter__()
        try:
            hx = sdk["httpx"]
            hc = hx.AsyncClient(
                headers={"Authorization": f"Bearer {self.token}"},
                timeout=hx.Timeout(20.0, read=30.0),
                event_hooks={"response": [self._hook]},
            )
            await self._stack.enter_async_context(hc)
            transport = sdk["streamable_http_client"](self.url, http_client=hc)
            # No anyio.fail_after around these: a cancel scope must not span the entry of a
            # context that starts a task group. The SDK's read timeout (20 s) bounds each
            # request, and run.sh bounds the whole process.
            if self.mode == "auto":
                from mcp import Client

                client = Client(transport, mode="auto", cache=None, read_timeout_seconds=20)
                self._client = await self._stack.enter_async_context(client)
                self.session = self._client.session
                self.protocol_version = self._client.protocol_version
                self.capabilities = self._client.server_capabilities
            else:
                streams = await self._stack.enter_async_context(transport)
                read, write = streams[0], streams[1]
                session = sdk["ClientSession"](read, write, read_timeout_seconds=self._timeout(20))
                self.session = await self._stack.enter_async_context(session)
                with anyio.fail_after(30):
                    init = await self.session.initialize()
                self.protocol_version = getattr(init, "protocol_version", None) or getattr(
                    init, "protocolVersion", None)
                self.capabilities = getattr(init, "capabilities", None)
        except BaseException:
            await self.aclose()
            raise
        return self

    async def aclose(self) -> None:
        stack, self._stack = getattr(self, "_stack", None), None
        if stack is not None:
            await stack.__aexit__(None, None, None)

    async def __aexit__(self, *exc):
        stack, self._stack = getattr(self, "_stack", None), None
        if stack is not None:
            return await stack.__aexit__(*exc)
        return False

    async def list_all_tools(self):
        names, cursor, pages = [], None, 0
        while True:
            pages += 1
            if cursor is None:
                res = await self.session.list_tools()
            else:
                types = self.sdk["mcp"].types
                res = await self.session.list_tools(params=types.PaginatedRequestParams(cursor=cursor))
            names += [t.name for t in res.tools]
            cursor = getattr(res, "next_cursor", None) or getattr(res, "nextCursor", None)
            if not cursor or pages > 20:
                return names

    async def call(self, name, arguments, progress_callback=None, timeout: float = 20):
        return await self.session.call_tool(name, arguments, read_timeout_seconds=self._timeout(timeout),
                                            progress_callback=progress_callback)


async def _connector_checks(rep: Reporter, conn: Conn, key: str, state: dict, run_token: str) -> None:
    import anyio

    exp = EXPECTED[key]
    secret = state["secrets"][key]
    p = f"[{key}] "

    # 0. denied capabilities are removed from the initialize result; a denied method is -32601
    caps = conn.capabilities
    if caps is not None:
        present = [n for n in ("resources", "prompts", "logging", "completions", "tasks")
                   if getattr(caps, n, None) is not None]
        rep.check(p + "initialize result keeps tools and strips denied capabilities",
                  getattr(caps, "tools", None) is not None and not present, f"still advertised: {present}")
    try:
        with anyio.fail_after(20):
            await conn.session.list_resources()
        rep.fail(p + "resources/list (denied method) gets -32601", "call returned a result")
    except Exception as e:
        got = _err(e)
        rep.check(p + "resources/list (denied method) gets -32601", got is not None and got[0] == -32601,
                  f"got {type(e).__name__}: {got or e}")

    # 1. filtered tool list: exactly the permitted set
    try:
        with anyio.fail_after(20):
            names = await conn.list_all_tools()
        rep.check(p + "tools/list shows exactly the permitted tools", set(names) == exp["permitted"]
                  and len(names) == len(set(names)),
                  f"got {sorted(names)}, want {sorted(exp['permitted'])}")
    except Exception as e:
        rep.fail(p + "tools/list shows exactly the permitted tools", f"{type(e).__name__}: {e}")

    # 2. a permitted call succeeds
    name, arguments, want = exp["call"]
    try:
        with anyio.fail_after(25):
            res = await conn.call(name, arguments)
        text = _text(res)
        rep.check(p + f"permitted call {name} succeeds", not getattr(res, "is_error", getattr(res, "isError", False))
                  and want in text, f"result {text[:300]!r}")
    except Exception as e:
        rep.fail(p + f"permitted call {name} succeeds", f"{type(e).__name__}: {e} {_err(e)}")

    # 3. denied calls get the JSON-RPC error -32602 "Tool not permitted: <name>"
    for denied in exp["denied"]:
        try:
            with anyio.fail_after(20):
                res = await conn.call(denied, {})
            rep.fail(p + f"denied call {denied} gets -32602", f"call returned a result: {_text(res)[:200]!r}")
        except Exception as e:
            got = _err(e)
            rep.check(p + f"denied call {denied} gets -32602",
                      got is not None and got[0] == -32602 and got[1] == f"Tool not permitted: {denied}",
                      f"got {type(e).__name__}: {got or e}")

    # 4. progress notifications arrive through the proxy
    pname, pargs, pwant = exp["progress"]
    progress: list[float] = []

    async def on_progress(value, total, message=None):
        progress.append(value)

    try:
        with anyio.fail_after(30):
            res = await conn.call(pname, pargs, progress_callback=on_progress, timeout=25)
        rep.check(p + f"progress notifications arrive ({pname})", len(progress) >= 3 and pwant in _text(res),
                  f"progress {progress}, result {_text(res)[:200]!r}")
    except Exception as e:
        rep.fail(p + f"progress notifications arrive ({pname})", f"{type(e).__name__}: {e} {_err(e)}")

    if key == "everything":
        return

    # 5. the upstream saw the injected credential, never the run token
    try:
        with anyio.fail_after(20):
            res = await conn.call("whoami", {})
        who = json.loads(_text(res))
        rep.check(p + "upstream received the connector credential (whoami)",
                  who.get("scheme") == "Bearer" and who.get("credential_sha256") == sha256(secret),
                  f"whoami {brief(who)}")
        rep.check(p + "upstream never received the run token (whoami)",
                  who.get("credential_sha256") != sha256(run_token), f"whoami {brief(who)}")
        leaked = [h for h in who.get("header_names", []) if h in ("cookie", "origin", "forwarded")
                  or h.startswith("x-forwarded-")]
        rep.check(p + "upstream received no cookie/origin/forwarding headers", not leaked, f"saw {leaked}")
        upstream_hostport = state["urls"][key].split("/")[2]
        rep.check(p + "upstream Host header names the upstream (passes SDK DNS-rebinding check)",
                  who.get("host") == upstream_hostport, f"host {who.get('host')!r} want {upstream_hostport!r}")
    except Exception as e:
        rep.fail(p + "upstream received the connector credential (whoami)", f"{type(e).__name__}: {e} {_err(e)}")

    # 6. the secret never reaches the client, even when the upstream echoes it (SEC-4)
    try:
        with anyio.fail_after(20):
            res = await conn.call("reveal_authorization", {})
        text = _text(res)
        rep.check(p + "secret echoed by the upstream is redacted before the client",
                  secret not in text and text.startswith("authorization="), f"result {text[:120]!r}")
    except Exception as e:
        rep.fail(p + "secret echoed by the upstream is redacted before the client", f"{type(e).__name__}: {e}")


async def _client_main(args, state: dict, rep: Reporter) -> None:
    import anyio

    sdk = _sdk()
    print(f"{args.label}: mcp {sdk['version']} (mode {args.mode})", flush=True)
    admin = Admin(state["base"], state["admin_token"])
    c = state["connectors"]
    run_input = {"everything": c["everything"], "pyConnectors": [c["py1"], c["py2"]]}

    st, _, run = await anyio.to_thread.run_sync(
        lambda: admin("POST", "/runs", {"actor": ACTOR, "user": OWNER, "input": run_input}))
    if not rep.check("POST /runs is 201 with a token", st == 201 and isinstance(run, dict) and run.get("token")
                     and run.get("status") == "running", f"status {st} body {brief(run)}"):
        return
    token, run_id = run["token"], run["id"]
    with open(args.tokens, "a") as f:
        f.write(token + "\n")
    env = run.get("env") or {}
    base = env.get("ACTOR_MCP_CONNECTOR_BASE_URL")
    rep.check("run env carries ACTOR_MCP_CONNECTOR_BASE_URL = <base>/mcp",
              base == state["base"].rstrip("/") + "/mcp" and env.get("APIFY_TOKEN") == token,
              f"env {brief({k: ('<token>' if v == token else v) for k, v in env.items()})}")
    if not base or not base.startswith("http://127.0.0.1:"):
        base = state["base"].rstrip("/") + "/mcp"
    st, _, body = await anyio.to_thread.run_sync(lambda: admin("GET", f"/runs/{run_id}"))
    rep.check("GET /runs/{id} never returns the token", st == 200 and token not in json.dumps(body),
              f"status {st}")

    # raw HTTP checks: unknown token, connector not in the run's input
    init_body = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "interop-raw", "version": "0"}}}
    accept = {"Accept": "application/json, text/event-stream"}
    st, hdrs, body = await anyio.to_thread.run_sync(
        lambda: http("POST", f"{base}/{c['py1']}", token="not-a-run-token", body=init_body, headers=accept))
    rep.check("unknown run token is 401 -32001 with WWW-Authenticate",
              st == 401 and isinstance(body, dict) and (body.get("error") or {}).get("code") == -32001
              and "www-authenticate" in hdrs, f"status {st} body {brief(body)}")
    st, _, body = await anyio.to_thread.run_sync(
        lambda: http("POST", f"{base}/{c['spare']}", token=token, body=init_body, headers=accept))
    rep.check("connector not in the run's input is 403 -32002",
              st == 403 and isinstance(body, dict) and (body.get("error") or {}).get("code") == -32002,
              f"status {st} body {brief(body)}")

    async def guarded(label: str, fn) -> BaseException | None:
        """Run fn (which holds an SDK session for its whole lifetime, properly nested); report a crash.

        mcp 1.x tears its transport task group down when a POST gets a non-2xx answer other than
        404 (raise_for_status inside the task group), which cancels the caller and surfaces as an
        ExceptionGroup when the session's context exits. That is expected after the run ends, so
        callers may pass expect_failure and judge by the recorded HTTP statuses instead.
        """
        try:
            await fn()
            return None
        except Exception as e:  # noqa: BLE001
            return e

    # everything and py2: connect, check, close
    for key in ("everything", "py2"):
        async def one(key=key):
            async with Conn(sdk, f"{base}/{c[key]}", token, args.mode) as conn:
                rep.ok(f"[{key}] connect and initialize through the proxy (protocol {conn.protocol_version})")
                if args.mode == "auto":
                    # py2 (mcp 2.x server) speaks 2026-07-28: the server/discover probe must pass
                    # through; the others are legacy-only and the client falls back to initialize.
                    want = "2026-07-28" if key == "py2" else "2025-11-25"
                    rep.check(f"[{key}] auto negotiation through the proxy gives {want}",
                              conn.protocol_version == want, f"negotiated {conn.protocol_version}")
                await _connector_checks(rep, conn, key, state, token)

        exc = await guarded(key, one)
        if exc is not None:
            rep.fail(f"[{key}] session ran without transport errors", f"{type(exc).__name__}: {exc} {_err(exc)}")

    # py1: connect, check, then finish the run while the session is open; the next call is refused
    outcome: dict = {}

    async def py1_and_finish():
        async with Conn(sdk, f"{base}/{c['py1']}", token, args.mode) as conn:
            outcome["conn"] = conn
            rep.ok(f"[py1] connect and initialize through the proxy (protocol {conn.protocol_version})")
            await _connector_checks(rep, conn, "py1", state, token)

            st, _, body = await anyio.to_thread.run_sync(lambda: admin("POST", f"/runs/{run_id}/finish", {}))
            outcome["finish"] = (st, body)
            outcome["before"] = len(conn.statuses)
            try:
                with anyio.fail_after(20):
                    res = await conn.call("whoami", {}, timeout=6)
                outcome["result"] = _text(res)
            except Exception as e:  # noqa: BLE001
                outcome["error"] = e

    exc = await guarded("py1", py1_and_finish)
    conn = outcome.get("conn")
    if conn is None:
        rep.fail("[py1] connect and initialize through the proxy",
                 f"{type(exc).__name__}: {exc} {_err(exc)}" if exc else "no session")
        # still finish the run so the rest can be checked
        st, _, body = await anyio.to_thread.run_sync(lambda: admin("POST", f"/runs/{run_id}/finish", {}))
        outcome["finish"] = (st, body)
    st, body = outcome.get("finish", (None, None))
    rep.check("POST /runs/{id}/finish is 200", st == 200, f"status {st} body {brief(body)}")
    st, _, body = await anyio.to_thread.run_sync(lambda: admin("GET", f"/runs/{run_id}"))
    rep.check("finished run is no longer running", st == 200 and isinstance(body, dict)
              and body.get("status") not in (None, "running"), f"status {st} body {brief(body)}")

    if conn is not None and "before" in outcome:
        after = conn.statuses[outcome["before"]:]
        posts = [s for m, s in after if m == "POST"]
        if "result" in outcome:
            rep.fail("call on an open session after finish is refused (401)",
                     f"call succeeded: {outcome['result'][:200]!r}; statuses {after}")
        else:
            err = outcome.get("error") or exc
            rep.check("call on an open session after finish is refused (401)", 401 in posts,
                      f"HTTP statuses after finish {after}; error {type(err).__name__}: {err} {_err(err)}")
            if sdk["major"] >= 2:  # 2.x surfaces the JSON-RPC body of a non-2xx answer
                got = _err(outcome.get("error")) if outcome.get("error") is not None else None
                rep.check("refusal after finish carries -32001 Unauthorized", got is not None and got[0] == -32001,
                          f"got {got or outcome.get('error')}")

    fresh = Conn(sdk, f"{base}/{c['py1']}", token, args.mode)

    async def fresh_session():
        async with fresh:
            outcome["fresh_ok"] = True

    exc = await guarded("fresh", fresh_session)
    if outcome.get("fresh_ok"):
        rep.fail("new session after finish is refused (401)", f"initialize succeeded; statuses {fresh.statuses}")
    else:
        rep.check("new session after finish is refused (401)", 401 in [s for _, s in fresh.statuses],
                  f"statuses {fresh.statuses}; error {type(exc).__name__}: {exc}")
    st, _, body = await anyio.to_thread.run_sync(
        lambda: http("POST", f"{base}/{c['py1']}", token=token, body=init_body, headers=accept))
    rep.check("raw request with the finished run's token is 401 -32001",
              st == 401 and isinstance(body, dict) and (body.get("error") or {}).get("code") == -32001,
              f"status {st} body {brief(body)}")


# ---------------------------------------------------------------------------------------------
# verify (stdlib only): what the upstreams recorded


def cmd_verify(args) -> int:
    rep = Reporter(args.results, "upstreams: ")
    with open(args.state) as f:
        state = json.load(f)
    tokens = [t.strip() for t in open(args.tokens).read().splitlines() if t.strip()] if os.path.exists(
        args.tokens) else []
    records = []
    for path in args.header_log:
        if os.path.exists(path):
            with open(path) as f:
                records += [json.loads(line) for line in f if line.strip()]
    rep.check("run tokens were issued", len(tokens) > 0, "no run token recorded")
    by_port = {}
    for key in ("everything", "py1", "py2"):
        by_port.setdefault(state["urls"][key].split("/")[2], []).append(key)

    secrets = state["secrets"]
    for upstream in ("everything", "py1", "py2"):
        recs = [r for r in records if r.get("upstream") == upstream and r.get("kind", "request") == "request"]
        bodies = [r for r in records if r.get("upstream") == upstream and r.get("kind") == "body"]
        # requests made by the proxy (setup's discovery included): every one must carry a known secret
        if not rep.check(f"[{upstream}] upstream recorded requests", len(recs) > 0, "no requests recorded"):
            continue
        allowed_auth = {f"Bearer {secrets[k]}" for k in secrets if state["urls"][k] == state["urls"][upstream]}
        bad_auth, token_seen = [], []
        for r in recs:
            hdrs = r.get("headers") or []
            auths = [v for k, v in hdrs if k == "authorization"]
            if len(auths) != 1 or auths[0] not in allowed_auth:
                bad_auth.append(f"{r.get('method')} {r.get('path')} auth={['<%d chars>' % len(a) for a in auths]}")
        for r in recs + bodies:
            blob = json.dumps(r)
            token_seen += [r.get("method")] if any(t in blob for t in tokens) else []
        rep.check(f"[{upstream}] every upstream request carried the injected credential (once)", not bad_auth,
                  f"{len(bad_auth)} of {len(recs)} requests: {bad_auth[:5]}")
        rep.check(f"[{upstream}] no upstream request carried a run token (headers or body)", not token_seen,
                  f"{len(token_seen)} requests")
        if upstream != "everything":
            denied_calls = []
            for r in bodies:
                try:
                    msg = json.loads(r.get("body") or "null")
                except ValueError:
                    msg = None
                if isinstance(msg, dict) and msg.get("method") == "tools/call":
                    name = (msg.get("params") or {}).get("name")
                    permitted = EXPECTED[upstream]["permitted"]
                    if name not in permitted:
                        denied_calls.append(name)
            rep.check(f"[{upstream}] no denied tools/call reached the upstream", not denied_calls,
                      f"reached upstream: {denied_calls}")
            calls = sum(1 for r in bodies if '"tools/call"' in (r.get("body") or ""))
            rep.check(f"[{upstream}] permitted tools/call did reach the upstream", calls > 0, "no tools/call seen")
    return 1 if rep.failed else 0


# ---------------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("setup")
    s.add_argument("--base", required=True)
    s.add_argument("--admin-token", required=True)
    s.add_argument("--everything-port", required=True, type=int)
    s.add_argument("--py1-port", required=True, type=int)
    s.add_argument("--py2-port", required=True, type=int)
    s.add_argument("--state", required=True)
    s.add_argument("--results", required=True)
    c = sub.add_parser("client")
    c.add_argument("--label", required=True)
    c.add_argument("--mode", choices=["legacy", "auto"], default="legacy")
    c.add_argument("--state", required=True)
    c.add_argument("--results", required=True)
    c.add_argument("--tokens", required=True)
    v = sub.add_parser("verify")
    v.add_argument("--state", required=True)
    v.add_argument("--results", required=True)
    v.add_argument("--tokens", required=True)
    v.add_argument("--header-log", action="append", default=[])
    args = ap.parse_args()
    return {"setup": cmd_setup, "client": cmd_client, "verify": cmd_verify}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
