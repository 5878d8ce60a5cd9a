#!/usr/bin/env node
// as.mjs — an MCP-style OAuth 2.1 authorization server for tests, built on oidc-provider.
//
// Features: open dynamic client registration (RFC 7591), PKCE S256 required for every
// client, resource indicators (RFC 8707) with audience-bound opaque access tokens,
// refresh-token rotation (reuse of a rotated token revokes the grant), revocation
// (RFC 7009), introspection (RFC 7662), `iss` in the authorization response (RFC 9207),
// the built-in devInteractions login/consent forms (any login + any password passes),
// and STRICT token-endpoint client authentication (a client registered with
// client_secret_post is refused when it authenticates with HTTP Basic, and vice versa).
//
// A test-control surface lives on the same port under /__test/ (see handleTestControl).
//
// Listens on 127.0.0.1 only. When ready prints ONE JSON line on stdout:
//   {"issuer":"http://127.0.0.1:PORT","test_control":"http://127.0.0.1:PORT/__test",...}
// Everything else (oidc-provider warnings, logs) goes to stderr.
//
// Flags (each also readable from the env var in brackets; flags win):
//   --port N                      [AS_PORT]                 0 = ephemeral (default 0)
//   --access-token-ttl SECONDS    [AS_ACCESS_TOKEN_TTL]     default 3600
//   --refresh-token-ttl SECONDS   [AS_REFRESH_TOKEN_TTL]    default 1209600 (14 d)
//   --scopes "a b"                [AS_SCOPES]               resource-server scopes, default "mcp:tools mcp:admin"
//   --resource-prefixes "p1,p2"   [AS_RESOURCE_PREFIXES]    accepted `resource` values (prefix match),
//                                                           default "http://127.0.0.1:,http://localhost:"
//   --access-token-format opaque|jwt [AS_ACCESS_TOKEN_FORMAT] default opaque
//   --no-registration             [AS_REGISTRATION=0]       do not offer the registration endpoint
//   --no-pkce-advertised          [AS_ADVERTISE_PKCE=0]     drop code_challenge_methods_supported from
//                                                           metadata (PKCE stays REQUIRED at /auth)
//   --lenient-client-auth         [AS_STRICT_CLIENT_AUTH=0] accept basic and post for any secret client
//   --registered-auth-method M    [AS_REGISTERED_AUTH_METHOD] register every dynamic client with M,
//                                                          whatever it asks for (RFC 7591 lets an AS)
//   --static-client-id ID         [AS_STATIC_CLIENT_ID]
//   --static-client-secret S      [AS_STATIC_CLIENT_SECRET]
//   --static-client-redirect-uris "u1,u2" [AS_STATIC_CLIENT_REDIRECT_URIS]
//   --static-client-auth-method M [AS_STATIC_CLIENT_AUTH_METHOD] client_secret_post | client_secret_basic | none
//                                                           (default client_secret_basic)
//   --rs-client-id ID             [AS_RS_CLIENT_ID]         confidential client the protected MCP server uses
//   --rs-client-secret S          [AS_RS_CLIENT_SECRET]     to call introspection (client_secret_basic);
//                                                           defaults "mcp-resource-server" / "rs-secret-for-tests"
//   --oidc-provider-dir DIR       [PEERS_OIDC_PROVIDER_DIR] node_modules/oidc-provider installed by install.sh
//   --exit-with-stdin                                       exit when stdin reaches end of file, so a test
//                                                           process that dies never leaves the server behind
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

// ------------------------------------------------------------------ configuration
function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i += 1) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}`);
    const eq = a.indexOf('=');
    if (eq !== -1) { out[a.slice(2, eq)] = a.slice(eq + 1); continue; }
    const key = a.slice(2);
    if (key.startsWith('no-') || key === 'lenient-client-auth' || key === 'exit-with-stdin') { out[key] = true; continue; }
    if (i + 1 >= argv.length) throw new Error(`missing value for ${a}`);
    out[key] = argv[i + 1]; i += 1;
  }
  return out;
}
const args = parseArgs(process.argv.slice(2));
const env = process.env;
const opt = (flag, envName, dflt) => (args[flag] ?? env[envName] ?? dflt);
const envBool = (name, dflt) => (env[name] === undefined ? dflt : !['0', 'false', 'no', 'off', ''].includes(env[name].toLowerCase()));

const cfg = {
  port: Number(opt('port', 'AS_PORT', '0')),
  accessTokenTtl: Number(opt('access-token-ttl', 'AS_ACCESS_TOKEN_TTL', '3600')),
  refreshTokenTtl: Number(opt('refresh-token-ttl', 'AS_REFRESH_TOKEN_TTL', String(14 * 24 * 3600))),
  scopes: String(opt('scopes', 'AS_SCOPES', 'mcp:tools mcp:admin')).split(/\s+/).filter(Boolean),
  resourcePrefixes: String(opt('resource-prefixes', 'AS_RESOURCE_PREFIXES', 'http://127.0.0.1:,http://localhost:')).split(',').filter(Boolean),
  accessTokenFormat: opt('access-token-format', 'AS_ACCESS_TOKEN_FORMAT', 'opaque'),
  registration: args['no-registration'] ? false : envBool('AS_REGISTRATION', true),
  advertisePkce: args['no-pkce-advertised'] ? false : envBool('AS_ADVERTISE_PKCE', true),
  strictClientAuth: args['lenient-client-auth'] ? false : envBool('AS_STRICT_CLIENT_AUTH', true),
  registeredAuthMethod: opt('registered-auth-method', 'AS_REGISTERED_AUTH_METHOD', ''),
  staticClient: null,
  rsClientId: opt('rs-client-id', 'AS_RS_CLIENT_ID', 'mcp-resource-server'),
  rsClientSecret: opt('rs-client-secret', 'AS_RS_CLIENT_SECRET', 'rs-secret-for-tests'),
  oidcProviderDir: opt('oidc-provider-dir', 'PEERS_OIDC_PROVIDER_DIR', ''),
  // client_id -> access token TTL, set through POST /__test/config {"client_id", "access_token_ttl"}
  clientTtl: new Map(),
};
const accessTokenTtl = (clientId) => cfg.clientTtl.get(clientId) ?? cfg.accessTokenTtl;
const staticId = opt('static-client-id', 'AS_STATIC_CLIENT_ID', '');
if (staticId) {
  const method = opt('static-client-auth-method', 'AS_STATIC_CLIENT_AUTH_METHOD', 'client_secret_basic');
  cfg.staticClient = {
    client_id: staticId,
    redirect_uris: String(opt('static-client-redirect-uris', 'AS_STATIC_CLIENT_REDIRECT_URIS', '')).split(',').filter(Boolean),
    token_endpoint_auth_method: method,
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    client_name: 'static test client',
  };
  if (method !== 'none') {
    cfg.staticClient.client_secret = opt('static-client-secret', 'AS_STATIC_CLIENT_SECRET', '');
    if (!cfg.staticClient.client_secret) throw new Error('--static-client-secret is required unless the auth method is none');
  }
  if (!cfg.staticClient.redirect_uris.length) throw new Error('--static-client-redirect-uris is required with --static-client-id');
}
if (!cfg.oidcProviderDir) throw new Error('set --oidc-provider-dir or PEERS_OIDC_PROVIDER_DIR (see install.sh / env.sh)');

// oidc-provider is ESM-only and lives in the cache dir, not next to this file, so a bare
// `import 'oidc-provider'` cannot resolve it: import its entry file by absolute URL.
const pkg = JSON.parse(fs.readFileSync(path.join(cfg.oidcProviderDir, 'package.json'), 'utf8'));
const { default: Provider, errors } = await import(pathToFileURL(path.join(cfg.oidcProviderDir, pkg.main || 'lib/index.js')).href);

// ------------------------------------------------------------------ counters
function freshCounters() {
  return {
    authorization_requests: 0,
    authorization_successes: 0,
    token_requests: {},          // grant_type -> attempts (every POST /token)
    token_responses: {},         // grant_type -> { "200": n, "400:invalid_grant": n, ... }
    registrations: 0,            // successful RFC 7591 registrations
    registration_requests: 0,    // POST /reg attempts
    revocation_requests: 0,      // POST /token/revocation attempts
    revocations: {},             // revoked token kind -> n ("access_token" | "refresh_token" | "not_found")
    introspections: { active: 0, inactive: 0, error: 0 },
    client_auth_method_rejections: 0,
    grants_revoked: 0,           // by AS logic (rotated-token reuse, revocation) or /__test/revoke-all
    refresh_token_reuse_detected: 0,
    token_requests_without_resource: {}, // grant_type -> n (RFC 8707: clients MUST send it)
    authorization_requests_without_resource: 0,
    token_client_auth_methods: {},        // method the client USED at /token -> n
    token_error_details: {},     // oidc-provider's internal error_detail -> n (not sent to clients)
    clients: {},                 // client_id -> the per-client counters below
  };
}
// The counters of one client, so that tests sharing this server do not see each other's
// traffic (each Portcullis under test registers or is given a client of its own).
function freshClientCounters() {
  return {
    authorization_requests: 0,
    authorization_requests_without_resource: 0,
    token_requests: {},
    token_responses: {},
    token_requests_without_resource: {},
    token_client_auth_methods: {},
    revocation_requests: 0,
    revocations: {},
    client_auth_method_rejections: 0,
  };
}
const clientCounters = (clientId) => (counters.clients[clientId || '(none)'] ||= freshClientCounters());
let counters = freshCounters();
const bump = (obj, key, by = 1) => { obj[key] = (obj[key] || 0) + by; };
const knownGrants = new Map(); // grantId -> { accountId, clientId }

// ------------------------------------------------------------------ provider config
function resourceAllowed(indicator) {
  return cfg.resourcePrefixes.some((p) => indicator.startsWith(p));
}

const configuration = {
  clients: [
    ...(cfg.staticClient ? [cfg.staticClient] : []),
    // The resource server's own credentials, used only for introspection.
    {
      client_id: cfg.rsClientId,
      client_secret: cfg.rsClientSecret,
      grant_types: [],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  clientDefaults: {
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  },
  clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'none'],
  responseTypes: ['code'],
  scopes: ['openid', 'offline_access'],
  pkce: { required: () => true },            // S256 is the only method oidc-provider accepts
  features: {
    devInteractions: { enabled: true },
    registration: { enabled: cfg.registration, initialAccessToken: false },
    revocation: { enabled: true },
    introspection: {
      enabled: true,
      // Any authenticated confidential client (e.g. the resource server's own client) may
      // introspect any token; public clients only their own tokens.
      allowedPolicy: async (ctx, client, token) => !(client.clientAuthMethod === 'none' && token.clientId !== client.clientId),
    },
    resourceIndicators: {
      enabled: true,
      defaultResource: async (_ctx, _client, oneOf) => oneOf, // no silent default audience
      useGrantedResource: async () => false,                  // token requests must send `resource`
      getResourceServerInfo: async (_ctx, resourceIndicator, client) => {
        if (!resourceAllowed(resourceIndicator)) throw new errors.InvalidTarget(`resource ${resourceIndicator} is not served by this AS`);
        return {
          scope: cfg.scopes.join(' '),
          audience: resourceIndicator,
          accessTokenTTL: accessTokenTtl(client?.clientId),
          accessTokenFormat: cfg.accessTokenFormat,
          ...(cfg.accessTokenFormat === 'jwt' ? { jwt: { sign: { alg: 'RS256' } } } : {}),
        };
      },
    },
  },
  // MCP clients do not ask for offline_access: issue a refresh token to every client that
  // registered the refresh_token grant.
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  rotateRefreshToken: true,
  ttl: {
    AccessToken: (_ctx, _token, client) => accessTokenTtl(client?.clientId),
    RefreshToken: () => cfg.refreshTokenTtl,
    AuthorizationCode: 120,
    Grant: 14 * 24 * 3600,
    Session: 14 * 24 * 3600,
    Interaction: 3600,
    IdToken: 3600,
  },
  findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
  // Loopback-only test server: session cookies can't be Secure over http.
  cookies: { keys: ['portcullis-test-cookie-key'] },
};

// ------------------------------------------------------------------ server
const server = http.createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(cfg.port, '127.0.0.1', resolve);
});
const { port } = server.address();
const issuer = `http://127.0.0.1:${port}`;
const provider = new Provider(issuer, configuration);

// --- events → counters
provider.on('registration_create.success', () => { counters.registrations += 1; });
provider.on('authorization.success', () => { counters.authorization_successes += 1; });
// client_id -> the values of every access and refresh token issued to it (opaque tokens: the
// value is the jti), so a test can prove its client never leaks them (GET /__test/tokens).
const issuedTokens = new Map();
const recordToken = (kind) => (token) => {
  if (!token.clientId) return;
  if (!issuedTokens.has(token.clientId)) issuedTokens.set(token.clientId, []);
  issuedTokens.get(token.clientId).push({ kind, value: token.jti });
};
provider.on('access_token.saved', recordToken('access_token'));
provider.on('refresh_token.saved', recordToken('refresh_token'));
provider.on('grant.saved', (grant) => { knownGrants.set(grant.jti, { accountId: grant.accountId, clientId: grant.clientId }); });
provider.on('grant.revoked', (_ctx, grantId) => { counters.grants_revoked += 1; knownGrants.delete(grantId); });
provider.on('grant.error', (ctx, err) => {
  if (err?.error_detail === 'refresh token already used') counters.refresh_token_reuse_detected += 1;
  if (err?.error_detail) bump(counters.token_error_details, err.error_detail);
});
provider.on('server_error', (_ctx, err) => { console.error('[as] server_error', err); });

// --- read a urlencoded body once, hand it on to oidc-provider (it falls back to
//     ctx.request.body when the stream was already consumed).
async function readFormBody(ctx) {
  if (!ctx.is('application/x-www-form-urlencoded')) return new URLSearchParams();
  const chunks = [];
  let size = 0;
  for await (const chunk of ctx.req) {
    size += chunk.length;
    if (size > 56 * 1024) ctx.throw(413, 'body too large');
    chunks.push(chunk);
  }
  const raw = Buffer.concat(chunks).toString('utf8');
  ctx.request.body = raw;
  return new URLSearchParams(raw);
}

function usedClientAuth(ctx, form) {
  const h = ctx.get('authorization');
  if (h && /^basic /i.test(h)) {
    let id = null;
    try {
      const dec = Buffer.from(h.slice(6).trim(), 'base64').toString('utf8');
      id = decodeURIComponent(dec.slice(0, dec.indexOf(':')).replace(/\+/g, '%20'));
    } catch { /* oidc-provider will reject the header itself */ }
    return { method: 'client_secret_basic', clientId: id ?? form.get('client_id') };
  }
  if (form.get('client_secret')) return { method: 'client_secret_post', clientId: form.get('client_id') };
  if (form.get('client_assertion')) return { method: 'jwt', clientId: null };
  return { method: 'none', clientId: form.get('client_id') };
}

function oauthError(ctx, status, error, description) {
  ctx.status = status;
  ctx.set('cache-control', 'no-store');
  ctx.body = { error, error_description: description };
}

const TOKEN_PATHS = new Set(['/token', '/token/revocation', '/token/introspection']);

// --- test-control surface and token-endpoint wrappers (runs before oidc-provider routes)
provider.use(async (ctx, next) => {
  if (ctx.path.startsWith('/__test/')) { await handleTestControl(ctx); return; }

  if (ctx.method === 'GET' && ctx.path === '/auth') {
    const mine = clientCounters(ctx.query.client_id);
    counters.authorization_requests += 1;
    mine.authorization_requests += 1;
    if (!ctx.query.resource) {
      counters.authorization_requests_without_resource += 1;
      mine.authorization_requests_without_resource += 1;
    }
  }
  if (ctx.method === 'POST' && ctx.path === '/reg') {
    counters.registration_requests += 1;
    if (cfg.registeredAuthMethod && ctx.is('application/json')) {
      const asked = await readJson(ctx);
      ctx.request.body = JSON.stringify({ ...asked, token_endpoint_auth_method: cfg.registeredAuthMethod });
    }
  }

  if (ctx.method === 'POST' && TOKEN_PATHS.has(ctx.path)) {
    const form = await readFormBody(ctx);
    const grantType = form.get('grant_type') || '(none)';
    const mine = clientCounters(usedClientAuth(ctx, form).clientId);
    if (ctx.path === '/token') {
      bump(counters.token_requests, grantType);
      bump(mine.token_requests, grantType);
      if (!form.get('resource')) {
        bump(counters.token_requests_without_resource, grantType);
        bump(mine.token_requests_without_resource, grantType);
      }
      bump(counters.token_client_auth_methods, usedClientAuth(ctx, form).method);
      bump(mine.token_client_auth_methods, usedClientAuth(ctx, form).method);
    }
    if (ctx.path === '/token/revocation') {
      counters.revocation_requests += 1;
      mine.revocation_requests += 1;
    }

    // Strict client authentication: refuse the method the client did not register.
    // Stock oidc-provider accepts basic and post interchangeably for any secret client;
    // some real providers accept only one of them.
    if (cfg.strictClientAuth) {
      const used = usedClientAuth(ctx, form);
      const client = used.clientId ? await provider.Client.find(used.clientId) : undefined;
      const registered = client?.metadata().token_endpoint_auth_method;
      if (client && ['client_secret_basic', 'client_secret_post'].includes(registered)
          && ['client_secret_basic', 'client_secret_post'].includes(used.method)
          && used.method !== registered) {
        counters.client_auth_method_rejections += 1;
        mine.client_auth_method_rejections += 1;
        if (used.method === 'client_secret_basic') ctx.set('www-authenticate', `Basic realm="${issuer}"`);
        oauthError(ctx, 401, 'invalid_client', `client authentication failed: this client is registered for ${registered}, not ${used.method}`);
        if (ctx.path === '/token') bumpResponse(grantType, ctx, mine);
        return;
      }
    }

    await next();

    if (ctx.path === '/token') bumpResponse(grantType, ctx, mine);
    if (ctx.path === '/token/revocation') {
      const ents = ctx.oidc?.entities || {};
      const kind = ents.RefreshToken ? 'refresh_token' : ents.AccessToken ? 'access_token'
        : ents.ClientCredentials ? 'client_credentials' : (ctx.status === 200 ? 'not_found' : `error_${ctx.status}`);
      bump(counters.revocations, kind);
      bump(mine.revocations, kind);
    }
    if (ctx.path === '/token/introspection') {
      if (ctx.status !== 200) counters.introspections.error += 1;
      else if (ctx.body && ctx.body.active) counters.introspections.active += 1;
      else counters.introspections.inactive += 1;
    }
    return;
  }

  await next();

  // Metadata post-processing: advertise the resource-server scopes; optionally hide PKCE.
  if (ctx.method === 'GET' && ctx.path.startsWith('/.well-known/') && ctx.status === 200 && ctx.body && typeof ctx.body === 'object') {
    ctx.body.scopes_supported = [...new Set([...(ctx.body.scopes_supported || []), ...cfg.scopes])];
    if (!cfg.advertisePkce) delete ctx.body.code_challenge_methods_supported;
  }
});

function bumpResponse(grantType, ctx, mine) {
  const err = ctx.status !== 200 && ctx.body && typeof ctx.body === 'object' ? `:${ctx.body.error}` : '';
  for (const c of [counters, mine]) {
    c.token_responses[grantType] ||= {};
    bump(c.token_responses[grantType], `${ctx.status}${err}`);
  }
}

async function readJson(ctx) {
  const chunks = [];
  for await (const c of ctx.req) chunks.push(c);
  const raw = Buffer.concat(chunks).toString('utf8');
  return raw ? JSON.parse(raw) : {};
}

// Every grant (of `clientId` only, when given) with all its tokens and codes.
async function revokeAllGrants(clientId) {
  let n = 0;
  for (const [grantId, grant] of [...knownGrants]) {
    if (clientId && grant.clientId !== clientId) continue;
    await Promise.all([
      provider.AccessToken.revokeByGrantId(grantId),
      provider.RefreshToken.revokeByGrantId(grantId),
      provider.AuthorizationCode.revokeByGrantId(grantId),
      provider.Grant.adapter.destroy(grantId),
    ]);
    knownGrants.delete(grantId);
    counters.grants_revoked += 1;
    n += 1;
  }
  return n;
}

// The access tokens of every grant of `clientId`; its refresh tokens stay valid (what an
// access token that expired early, or was revoked alone, looks like to its client).
// (AccessToken.revokeByGrantId would not do: the memory adapter drops every token of the
// grant, refresh tokens included.)
async function revokeAccessTokens(clientId) {
  let n = 0;
  for (const { kind, value } of issuedTokens.get(clientId) ?? []) {
    if (kind !== 'access_token') continue;
    const token = await provider.AccessToken.find(value);
    if (!token) continue;
    await token.destroy();
    n += 1;
  }
  return n;
}

// GET  /__test/counters[?client_id=X] → counters as JSON (those of client X alone)
// POST /__test/reset                  → zero the counters
// POST /__test/revoke-all             → revoke every grant and all its tokens ("user revoked the app");
//                                       body {"client_id": X} limits it to client X's grants
// POST /__test/revoke-access-tokens   → {"client_id": X}: revoke the access tokens issued to
//                                       client X, keeping its refresh tokens → {"tokens": N}
// GET  /__test/grants                 → [{grant_id, account_id, client_id}] (no token material)
// POST /__test/config                 → JSON {"access_token_ttl": N[, "client_id": X]} changes the TTL
//                                       of NEW tokens (of client X only, when given)
// GET  /__test/health                 → {"ok":true}
// GET  /__test/tokens?client_id=X     → [{kind, value}]: every access and refresh token issued to
//                                       client X, oldest first (test material: lets a test scan
//                                       its client's outputs)
async function handleTestControl(ctx) {
  ctx.set('cache-control', 'no-store');
  const route = `${ctx.method} ${ctx.path}`;
  switch (route) {
    case 'GET /__test/health': ctx.body = { ok: true }; return;
    case 'GET /__test/counters':
      ctx.body = ctx.query.client_id ? clientCounters(ctx.query.client_id) : counters;
      return;
    case 'POST /__test/reset': counters = freshCounters(); ctx.body = counters; return;
    case 'POST /__test/revoke-all': {
      const body = await readJson(ctx);
      ctx.body = { revoked_grants: await revokeAllGrants(body.client_id) };
      return;
    }
    case 'POST /__test/revoke-access-tokens': {
      const body = await readJson(ctx);
      if (!body.client_id) { ctx.status = 400; ctx.body = { error: 'client_id is required' }; return; }
      ctx.body = { tokens: await revokeAccessTokens(body.client_id) };
      return;
    }
    case 'GET /__test/tokens':
      ctx.body = issuedTokens.get(ctx.query.client_id) ?? [];
      return;
    case 'GET /__test/grants':
      ctx.body = [...knownGrants].map(([id, g]) => ({ grant_id: id, account_id: g.accountId, client_id: g.clientId }));
      return;
    case 'POST /__test/config': {
      const body = await readJson(ctx);
      if (body.access_token_ttl !== undefined) {
        if (body.client_id) cfg.clientTtl.set(body.client_id, Number(body.access_token_ttl));
        else cfg.accessTokenTtl = Number(body.access_token_ttl);
      }
      ctx.body = { access_token_ttl: accessTokenTtl(body.client_id) };
      return;
    }
    default: ctx.status = 404; ctx.body = { error: 'no such test-control route' };
  }
}

server.on('request', provider.callback());

process.stdout.write(`${JSON.stringify({
  issuer,
  port,
  test_control: `${issuer}/__test`,
  registration: cfg.registration,
  static_client_id: cfg.staticClient?.client_id ?? null,
  rs_client_id: cfg.rsClientId,
  pid: process.pid,
})}\n`);

const stop = () => { server.close(() => process.exit(0)); setTimeout(() => process.exit(0), 1000).unref(); server.closeAllConnections?.(); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
if (args['exit-with-stdin']) {
  process.stdin.on('end', stop);
  process.stdin.on('error', stop);
  process.stdin.resume();
}
