#!/usr/bin/env bash
# Portcullis interop suite: the official MCP Python SDK clients (1.x and 2.x) through the proxy
# to @modelcontextprotocol/server-everything and to Python SDK servers (1.x and 2.x).
# See docs/interop.md. Run from anywhere: tests/interop/run.sh
#
# Environment:
#   PORTCULLIS_INTEROP_CACHE  where peers are installed (default ~/.cache/portcullis-interop)
#   PORTCULLIS_BIN            use this binary instead of building target/debug/portcullis
#   INTEROP_KEEP=1            keep the work directory (logs, header logs, state) afterwards
#
# Everything listens on 127.0.0.1 with kernel-chosen or freshly probed ports; nothing else is
# contacted except PyPI and npm for the one-time peer install.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE="$ROOT/tests/interop"
CACHE=${PORTCULLIS_INTEROP_CACHE:-$HOME/.cache/portcullis-interop}
PYTHON=${PYTHON:-python3}
export PYTHONDONTWRITEBYTECODE=1

# Pinned peers (see docs/interop.md).
MCP1_VERSION=1.30.0
MCP2_VERSION=2.3.0
EVERYTHING_VERSION=2026.8.31

START=$(date +%s)
log() { printf '[interop %3ss] %s\n' "$(($(date +%s) - START))" "$*"; }
die() {
    log "setup error: $*"
    echo "0 passed, 1 failed"
    exit 1
}

# ------------------------------------------------------------------------------------------
# 1. Peers, installed once into the cache (a marker file per pinned version).

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock -w 600 9 || die "could not lock $CACHE/.lock"

install_venv() { # name version
    local dir="$CACHE/$1" version="$2"
    if [ -f "$dir/.installed-mcp-$version" ] && "$dir/bin/python" -c 'import mcp' 2>/dev/null; then
        return 0
    fi
    log "installing mcp==$version into $dir"
    rm -rf "$dir"
    "$PYTHON" -m venv "$dir" || return 1
    timeout 600 "$dir/bin/pip" install --disable-pip-version-check --quiet "mcp==$version" || return 1
    touch "$dir/.installed-mcp-$version"
}

install_everything() {
    local dir="$CACHE/npm"
    local entry="$dir/node_modules/@modelcontextprotocol/server-everything/dist/index.js"
    if [ -f "$dir/.installed-everything-$EVERYTHING_VERSION" ] && [ -f "$entry" ]; then
        return 0
    fi
    log "installing @modelcontextprotocol/server-everything@$EVERYTHING_VERSION into $dir"
    rm -rf "$dir"
    mkdir -p "$dir"
    (cd "$dir" && echo '{"name":"portcullis-interop-peers","private":true}' >package.json &&
        timeout 600 npm install --no-audit --no-fund --ignore-scripts --loglevel=error \
            "@modelcontextprotocol/server-everything@$EVERYTHING_VERSION") || return 1
    touch "$dir/.installed-everything-$EVERYTHING_VERSION"
}

install_venv py1 "$MCP1_VERSION" || die "pip install mcp==$MCP1_VERSION failed"
install_venv py2 "$MCP2_VERSION" || die "pip install mcp==$MCP2_VERSION failed"
install_everything || die "npm install server-everything failed"
flock -u 9
exec 9>&-
PY1="$CACHE/py1/bin/python"
PY2="$CACHE/py2/bin/python"
EVERYTHING_JS="$CACHE/npm/node_modules/@modelcontextprotocol/server-everything/dist/index.js"
log "peers ready: mcp $MCP1_VERSION, mcp $MCP2_VERSION, server-everything $EVERYTHING_VERSION"

# ------------------------------------------------------------------------------------------
# 2. The proxy binary.

if [ -n "${PORTCULLIS_BIN:-}" ]; then
    BIN="$PORTCULLIS_BIN"
else
    BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/portcullis"
    case "$BIN" in /*) ;; *) BIN="$ROOT/$BIN" ;; esac
    # Build when the binary is missing, or older than any source it is built from (a cheap
    # guard against testing a stale binary locally; in CI the binary is fresh or absent).
    stale=""
    if [ -x "$BIN" ]; then
        stale=$(find "$ROOT/host" "$ROOT/plugins" "$ROOT/sdk" "$ROOT/wit" "$ROOT/Cargo.toml" "$ROOT/Cargo.lock" \
            -newer "$BIN" \( -name '*.rs' -o -name '*.wit' -o -name '*.toml' -o -name '*.lock' -o -name '*.sql' \) \
            -print -quit 2>/dev/null)
    fi
    if [ ! -x "$BIN" ] || [ -n "$stale" ]; then
        log "building portcullis (cargo build -p portcullis)${stale:+; $stale is newer than the binary}"
        (cd "$ROOT" && timeout 1800 cargo build -p portcullis) || die "cargo build -p portcullis failed"
    fi
fi
[ -x "$BIN" ] || die "no portcullis binary at $BIN"

# ------------------------------------------------------------------------------------------
# 3. Processes, all on 127.0.0.1, all killed on exit.

WORK=$(mktemp -d "${TMPDIR:-/tmp}/portcullis-interop.XXXXXX")
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    for _ in $(seq 30); do
        local alive=0
        for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
    for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null; done
    wait 2>/dev/null
    [ "${INTEROP_KEEP:-0}" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_for_file() { # file seconds pid
    local i
    for i in $(seq $(($2 * 10))); do
        [ -s "$1" ] && return 0
        kill -0 "$3" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

free_port() {
    "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

HEADER_EV="$WORK/headers-everything.jsonl"
HEADER_PY="$WORK/headers-python.jsonl"

"$PY1" "$HERE/upstream_server.py" --name py1 --port-file "$WORK/py1.port" --header-log "$HEADER_PY" \
    >"$WORK/py1.log" 2>&1 &
PY1_PID=$!
PIDS+=("$PY1_PID")
"$PY2" "$HERE/upstream_server.py" --name py2 --port-file "$WORK/py2.port" --header-log "$HEADER_PY" \
    >"$WORK/py2.log" 2>&1 &
PY2_PID=$!
PIDS+=("$PY2_PID")
PORT=0 INTEROP_PORT_FILE="$WORK/everything.port" INTEROP_HEADER_LOG="$HEADER_EV" INTEROP_UPSTREAM_NAME=everything \
    node --require "$HERE/node_loopback.cjs" "$EVERYTHING_JS" streamableHttp >"$WORK/everything.log" 2>&1 &
EV_PID=$!
PIDS+=("$EV_PID")

show_logs() {
    local f
    for f in "$WORK"/*.log; do
        [ -f "$f" ] || continue
        echo "----- $(basename "$f") (last 40 lines)"
        tail -n 40 "$f"
    done
}

wait_for_file "$WORK/py1.port" 30 "$PY1_PID" || { show_logs; die "Python SDK $MCP1_VERSION server did not start"; }
wait_for_file "$WORK/py2.port" 30 "$PY2_PID" || { show_logs; die "Python SDK $MCP2_VERSION server did not start"; }
wait_for_file "$WORK/everything.port" 30 "$EV_PID" || { show_logs; die "server-everything did not start"; }
PY1_PORT=$(cat "$WORK/py1.port")
PY2_PORT=$(cat "$WORK/py2.port")
EV_PORT=$(cat "$WORK/everything.port")
log "upstreams: py1 127.0.0.1:$PY1_PORT, py2 127.0.0.1:$PY2_PORT, everything 127.0.0.1:$EV_PORT"

ADMIN_TOKEN="interop-admin-$("$PYTHON" -c 'import secrets; print(secrets.token_hex(16))')"
PROXY_PID=""
for attempt in 1 2 3; do
    PROXY_PORT=$(free_port)
    mkdir -p "$WORK/data"
    PORTCULLIS_ALLOW_PRIVATE_UPSTREAMS=1 PORTCULLIS_ADMIN_TOKEN="$ADMIN_TOKEN" \
        "$BIN" serve --listen "127.0.0.1:$PROXY_PORT" --data-dir "$WORK/data" >>"$WORK/portcullis.log" 2>&1 &
    PROXY_PID=$!
    PIDS+=("$PROXY_PID")
    ready=0
    for _ in $(seq 300); do # 30 s
        kill -0 "$PROXY_PID" 2>/dev/null || break
        if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$PROXY_PORT/healthz")" = 200 ]; then
            ready=1
            break
        fi
        sleep 0.1
    done
    [ "$ready" = 1 ] && break
    kill -TERM "$PROXY_PID" 2>/dev/null
    log "portcullis did not become ready on 127.0.0.1:$PROXY_PORT (attempt $attempt)"
    PROXY_PID=""
done
[ -n "$PROXY_PID" ] || { show_logs; die "portcullis serve did not become ready (/healthz)"; }
BASE="http://127.0.0.1:$PROXY_PORT"
log "portcullis ready at $BASE"

# ------------------------------------------------------------------------------------------
# 4. The checks.

RESULTS="$WORK/results.txt"
TOKENS="$WORK/run-tokens.txt"
STATE="$WORK/state.json"
: >"$RESULTS"
: >"$TOKENS"

step() { # label seconds command...
    local label="$1" secs="$2"
    shift 2
    local before after rc
    before=$(grep -c '^FAIL' "$RESULTS")
    log "== $label"
    timeout --kill-after=5 "$secs" "$@"
    rc=$?
    after=$(grep -c '^FAIL' "$RESULTS")
    if [ "$rc" != 0 ] && [ "$after" = "$before" ]; then
        echo "FAIL $label: exited with status $rc (124 = timed out after ${secs}s)" | tee -a "$RESULTS"
    fi
    return "$rc"
}

if step "admin API setup" 60 "$PYTHON" "$HERE/suite.py" setup --base "$BASE" --admin-token "$ADMIN_TOKEN" \
    --everything-port "$EV_PORT" --py1-port "$PY1_PORT" --py2-port "$PY2_PORT" \
    --state "$STATE" --results "$RESULTS"; then
    step "client mcp $MCP1_VERSION (initialize handshake)" 120 "$PY1" "$HERE/suite.py" client \
        --label "mcp-$MCP1_VERSION" --mode legacy --state "$STATE" --results "$RESULTS" --tokens "$TOKENS"
    step "client mcp $MCP2_VERSION (initialize handshake)" 120 "$PY2" "$HERE/suite.py" client \
        --label "mcp-$MCP2_VERSION" --mode legacy --state "$STATE" --results "$RESULTS" --tokens "$TOKENS"
    step "client mcp $MCP2_VERSION (auto: server/discover, then fallback)" 120 "$PY2" "$HERE/suite.py" client \
        --label "mcp-$MCP2_VERSION-auto" --mode auto --state "$STATE" --results "$RESULTS" --tokens "$TOKENS"
    step "what the upstreams received" 30 "$PYTHON" "$HERE/suite.py" verify --state "$STATE" --results "$RESULTS" \
        --tokens "$TOKENS" --header-log "$HEADER_EV" --header-log "$HEADER_PY"
fi

PASSED=$(grep -c '^PASS' "$RESULTS")
FAILED=$(grep -c '^FAIL' "$RESULTS")
if [ "$FAILED" != 0 ]; then
    echo
    echo "Failures:"
    grep '^FAIL' "$RESULTS"
    echo
    show_logs
fi
[ "${INTEROP_KEEP:-0}" = 1 ] && log "keeping the work directory $WORK"
log "done in $(($(date +%s) - START))s"
echo "$PASSED passed, $FAILED failed"
if [ "$FAILED" != 0 ] || [ "$PASSED" = 0 ]; then
    exit 1
fi
exit 0
