// A real OpenID Provider (panva oidc-provider, OpenID Certified) on loopback for the onesoidc
// interop tests. Usage: node server.js <config.json>
//
// The Go harness (internal/interop/provider_test.go) writes the config file, starts this script,
// waits for the single stdout line "READY http://127.0.0.1:PORT" and reads stderr, where every
// provider error event ("*.error", "server_error") is logged on one line with path and detail.
//
// Config (JSON): port (0 = any), clients (client metadata; defaults private_key_jwt,
// grant_types [client_credentials], no redirect URIs), providerJwks (private JWKs made by the Go
// side, never generated here), accounts ("alice" or {id, preferred_username, role}), slowDown,
// cibaInterval, pingCA (PEM trusted for https ping delivery), userCode (default "1234"), scopes,
// ttl ({ClientCredentials: 600, ...} seconds), resourceServers ({indicator: {scope, ...}},
// default urn:ones:interop:api with "api:read api:write", JWT access tokens), exitOnStdinEnd.
//
// Layout of the HTTP server (one port):
//   /oidc/...            the provider; issuer http://127.0.0.1:PORT/oidc (as ONES: host + "/oidc")
//   GET  /admin/pending  CIBA requests waiting for a decision
//   POST /admin/sync     {id} writes "[sync] <id>" to stderr (the harness's ordering barrier)
//   POST /admin/approve  {auth_req_id | binding_message | index, wait_ms?} -> Grant of the requested
//                        scopes, provider.backchannelResult (and the ping, in ping mode)
//   POST /admin/deny     same selectors; error? ("access_denied" default, "transaction_failed",
//                        "expired_token"), error_description?
//   A failed ping delivery answers 502 {"error":"delivery_failed"}; the decision is saved anyway.
//
// ONES QR login (the vendor's routes beside the provider; ONES-WIRE.md "QR login"), on the host,
// not under /oidc:
//   GET  /auth/qr              Authorization: Bearer <device access token> -> {auth_req_id, exp}
//   GET  /auth/qr/:auth_req_id same bearer -> {status: "pending", deviceId}; once approved
//                              {status: "approved", deviceId, access_token, issue_time} exactly
//                              once, after which the session is gone (404); expired sessions answer
//                              {status: "expired"}
//   The bearer token must be a live client_credentials token of the provider (its own
//   ClientCredentials model, as its introspection finds it); sessions belong to that client.
//   POST /admin/qr-device      {client_id, device_id}: the device id the status answers carry
//   POST /admin/approve-qr     {auth_req_id, account, scope?} -> a real AccessToken of the
//                              provider for the account (a Grant of scope, default "openid
//                              profile"), so that introspection of it works
//   POST /admin/deny-qr        {auth_req_id, status?} ("denied" default): the status answered
//   config.qrTtl: session lifetime in seconds (default 300, as the vendor's examples).
//
// CIBA hooks: login_hint is an account id or preferred_username; login_hint_token is a JWT (not
// verified: sub or preferred_username, exp honoured) or a plain account id; user_code is checked
// only for clients registered with backchannel_user_code_parameter.
//
// Emulations (not behaviour of oidc-provider, which never sends them):
//   config.slowDown: answer a CIBA poll of the token endpoint with 400 slow_down when it comes
//     sooner than the current interval after the previous poll of the same auth_req_id; each
//     slow_down adds 5 s to that auth_req_id's interval (CIBA Core §11). The first poll is never
//     slowed down. The answer is given before client authentication, so the assertion's jti is not
//     consumed.
//   config.cibaInterval: when > 0, add "interval": N to backchannel authentication responses and use
//     N (instead of 5) as the base interval of the slow_down emulation.

import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import { EventEmitter } from 'node:events';
import * as crypto from 'node:crypto';

import Provider, { errors } from 'oidc-provider';

const DEFAULT_INTERVAL = 5;
const SLOW_DOWN_STEP = 5;
const ADMIN_BODY_LIMIT = 64 * 1024;
const TOKEN_BODY_LIMIT = 56 * 1024; // the provider's own limit

function logLine(tag, fields) {
  const parts = Object.entries(fields)
    .filter(([, v]) => v !== undefined && v !== null && v !== '')
    .map(([k, v]) => `${k}=${JSON.stringify(typeof v === 'string' ? v : String(v))}`);
  process.stderr.write(`[${tag}] ${parts.join(' ')}\n`);
}

function fail(message) {
  process.stderr.write(`[fatal] ${message}\n`);
  process.exit(2);
}

const configPath = process.argv[2];
if (!configPath) {
  fail('usage: node server.js <config.json>');
}

let config;
try {
  config = JSON.parse(readFileSync(configPath, 'utf8'));
} catch (err) {
  fail(`cannot read config ${configPath}: ${err.message}`);
}

const port = Number.isInteger(config.port) && config.port > 0 ? config.port : 0;
const userCode = typeof config.userCode === 'string' && config.userCode ? config.userCode : '1234';
const cibaInterval = Number.isInteger(config.cibaInterval) && config.cibaInterval > 0
  ? config.cibaInterval : 0;
const baseInterval = cibaInterval || DEFAULT_INTERVAL;

// Accounts: "alice" or {"id": "alice", "preferred_username": "...", "role": "..."}.
const accounts = new Map();
for (const entry of config.accounts ?? []) {
  const acc = typeof entry === 'string' ? { id: entry } : entry;
  if (!acc?.id) fail(`account without id: ${JSON.stringify(entry)}`);
  accounts.set(acc.id, {
    sub: acc.id,
    preferred_username: acc.preferred_username ?? acc.id,
    role: acc.role ?? 'user',
  });
}

function accountIdForHint(hint) {
  if (typeof hint !== 'string') return undefined;
  if (accounts.has(hint)) return hint;
  for (const [id, claims] of accounts) {
    if (claims.preferred_username === hint) return id;
  }
  return undefined;
}

function decodeJwtPayload(token) {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  try {
    return JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
}

// Clients: defaults for machine clients; everything else passes through as client metadata.
const clients = (config.clients ?? []).map((c) => ({
  token_endpoint_auth_method: 'private_key_jwt',
  response_types: [],
  redirect_uris: [],
  grant_types: ['client_credentials'],
  ...c,
}));

// Resource servers for JWT access tokens (RFC 9068) requested with resource=<indicator>.
// Default: one server "urn:ones:interop:api" with scopes "api:read api:write".
const resourceServers = config.resourceServers ?? {
  'urn:ones:interop:api': { scope: 'api:read api:write', accessTokenFormat: 'jwt' },
};

// In-memory CIBA requests waiting for a decision, in arrival order.
const pending = [];
const pendingEvents = new EventEmitter();
pendingEvents.setMaxListeners(0);

// Ping delivery: oidc-provider's default fetch goes through a dispatcher that refuses special-use
// addresses (loopback included). This fetch ignores that dispatcher and talks https to the
// notification endpoint itself, trusting config.pingCA.
function loopbackFetch(url, options = {}) {
  const target = new URL(url);
  const mod = target.protocol === 'https:' ? https : http;
  const headers = {};
  new Headers(options.headers).forEach((value, key) => {
    if (key !== 'user-agent' || value) headers[key] = value;
  });
  const body = options.body === undefined || options.body === null ? undefined : Buffer.from(options.body);
  if (body) headers['content-length'] = String(body.length);
  return new Promise((resolve, reject) => {
    const req = mod.request(target, {
      method: options.method ?? 'GET',
      headers,
      ca: config.pingCA || undefined,
      signal: options.signal,
    }, (res) => {
      const chunks = [];
      res.on('data', (chunk) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () => {
        const buf = Buffer.concat(chunks);
        const resHeaders = new Headers();
        for (const [k, v] of Object.entries(res.headers)) {
          if (Array.isArray(v)) v.forEach((x) => resHeaders.append(k, x));
          else if (v !== undefined) resHeaders.set(k, v);
        }
        const nullBody = [101, 204, 205, 304].includes(res.statusCode) || buf.length === 0;
        resolve(new Response(nullBody ? null : buf, { status: res.statusCode, headers: resHeaders }));
      });
    });
    req.on('error', reject);
    if (body) req.write(body);
    req.end();
  });
}

const server = http.createServer();

server.listen(port, '127.0.0.1', () => {
  const { port: actual } = server.address();
  const base = `http://127.0.0.1:${actual}`;
  let provider;
  try {
    provider = buildProvider(`${base}/oidc`);
  } catch (err) {
    fail(`provider configuration: ${err.stack ?? err}`);
  }
  server.on('request', handler(provider));
  process.stdout.write(`READY ${base}\n`);
});
server.on('error', (err) => fail(`listen on 127.0.0.1:${port}: ${err.message}`));

// Lifetimes in seconds: oidc-provider's defaults, each overridable with config.ttl.<Name>.
// Setting them here also silences the provider's "default ttl function called" notices.
function ttl(name, fallback) {
  const v = config.ttl?.[name];
  return Number.isInteger(v) && v > 0 ? v : fallback;
}

function buildProvider(issuer) {
  const algs = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'Ed25519', 'EdDSA'];

  const provider = new Provider(issuer, {
    clients,
    jwks: config.providerJwks,
    cookies: { keys: ['onesoidc-interop-cookie-key-not-secret'] },
    scopes: ['openid', 'offline_access', 'profile', ...(config.scopes ?? [])],
    claims: {
      openid: ['sub'],
      profile: ['preferred_username', 'role'],
    },
    // ONES puts the profile claims into the ID token; without this the provider would move them to
    // userinfo whenever an access token is issued too.
    conformIdTokenClaims: false,
    clientDefaults: {
      grant_types: ['client_credentials'],
      id_token_signed_response_alg: 'RS256',
      response_types: [],
      token_endpoint_auth_method: 'private_key_jwt',
    },
    clientAuthMethods: ['private_key_jwt'],
    ttl: {
      AccessToken: (_ctx, token) => token.resourceServer?.accessTokenTTL || ttl('AccessToken', 3600),
      ClientCredentials: (_ctx, token) => token.resourceServer?.accessTokenTTL || ttl('ClientCredentials', 600),
      BackchannelAuthenticationRequest(ctx) {
        const max = ttl('BackchannelAuthenticationRequest', 600);
        const requested = +ctx?.oidc?.params.requested_expiry;
        return requested ? Math.min(max, requested) : max;
      },
      IdToken: () => ttl('IdToken', 3600),
      RefreshToken: () => ttl('RefreshToken', 14 * 24 * 3600),
      Grant: () => ttl('Grant', 14 * 24 * 3600),
      AuthorizationCode: () => 60,
      DeviceCode: () => 600,
      Interaction: () => 3600,
      Session: () => 14 * 24 * 3600,
    },
    enabledJWA: {
      clientAuthSigningAlgValues: algs,
      idTokenSigningAlgValues: algs,
      requestObjectSigningAlgValues: algs,
    },
    async findAccount(_ctx, id) {
      const claims = accounts.get(id);
      if (!claims) return undefined;
      return {
        accountId: id,
        async claims() { return { ...claims }; },
      };
    },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      // The default policies, spelled out (which silences the provider's notices).
      introspection: {
        enabled: true,
        async allowedPolicy(ctx, client, token) {
          return !(client.clientAuthMethod === 'none' && token.clientId !== ctx.oidc.client.clientId);
        },
      },
      revocation: {
        enabled: true,
        async allowedPolicy(_ctx, client, token) {
          if (token.clientId !== client.clientId) {
            if (client.clientAuthMethod === 'none') return false;
            throw new errors.InvalidRequest('client is not authorized to revoke the presented token');
          }
          return true;
        },
      },
      requestObjects: { enabled: true },
      resourceIndicators: {
        enabled: true,
        // No resource parameter: an opaque token for the userinfo/introspection audience.
        async defaultResource(_ctx, _client, oneOf) { return oneOf; },
        async useGrantedResource() { return true; },
        async getResourceServerInfo(_ctx, indicator) {
          const rs = resourceServers[indicator];
          if (!rs) throw new errors.InvalidTarget();
          return { audience: indicator, accessTokenTTL: 3600, accessTokenFormat: 'jwt', ...rs };
        },
      },
      ciba: {
        enabled: true,
        deliveryModes: ['poll', 'ping'],
        async processLoginHint(_ctx, loginHint) {
          const id = accountIdForHint(loginHint);
          if (!id) throw new errors.UnknownUserId('could not identify end-user');
          return id;
        },
        // A login_hint_token is either a JWT (not verified; sub or preferred_username names the
        // account, exp is honoured) or a plain account id.
        async processLoginHintToken(_ctx, token) {
          const payload = decodeJwtPayload(token);
          if (payload) {
            if (typeof payload.exp === 'number' && payload.exp * 1000 < Date.now()) {
              throw new errors.ExpiredLoginHintToken('login_hint_token is expired');
            }
            const id = accountIdForHint(payload.sub) ?? accountIdForHint(payload.preferred_username)
              ?? accountIdForHint(payload.sub_id?.email);
            if (!id) throw new errors.UnknownUserId('could not identify end-user');
            return id;
          }
          const id = accountIdForHint(token);
          if (!id) throw new errors.UnknownUserId('could not identify end-user');
          return id;
        },
        async validateBindingMessage(_ctx, bindingMessage) {
          if (bindingMessage !== undefined && !/^[a-zA-Z0-9-._+/!?#]{1,20}$/.test(bindingMessage)) {
            throw new errors.InvalidBindingMessage(
              'the binding_message value, when provided, needs to be 1 - 20 characters in length and use only a basic set of characters (matching the regex: ^[a-zA-Z0-9-._+/!?#]{1,20}$ )',
            );
          }
        },
        async validateRequestContext() {},
        async verifyUserCode(ctx, _account, code) {
          if (!ctx.oidc.client.backchannelUserCodeParameter) return;
          if (!code) throw new errors.MissingUserCode('user_code is required');
          if (code !== userCode) throw new errors.InvalidUserCode('user_code is invalid');
        },
        async triggerAuthenticationDevice(_ctx, request, account, client) {
          const entry = {
            auth_req_id: request.jti,
            accountId: account.accountId,
            binding_message: request.params.binding_message,
            client_id: client.clientId,
            scope: request.scope,
            resource: request.resource,
            claims: request.claims,
            created_at: new Date().toISOString(),
          };
          pending.push(entry);
          pendingEvents.emit('pending', entry);
        },
      },
    },
    fetch: loopbackFetch,
  });

  provider.proxy = false;

  // One stderr line per provider error event, with the path and the hidden detail.
  const emit = provider.emit.bind(provider);
  provider.emit = (name, ...args) => {
    if (typeof name === 'string' && (name.endsWith('.error') || name === 'server_error')) {
      logProviderError(name, args);
    }
    return emit(name, ...args);
  };

  // Add "interval" to backchannel authentication responses when configured.
  if (cibaInterval) {
    provider.use(async (ctx, next) => {
      await next();
      if (ctx.path === '/backchannel' && ctx.status === 200 && ctx.body?.auth_req_id) {
        ctx.body = { ...ctx.body, interval: cibaInterval };
      }
    });
  }

  return provider;
}

function logProviderError(name, args) {
  const [ctx, err] = args;
  let error = err;
  if (name === 'backchannel.error') [, error] = args;
  logLine(name, {
    method: ctx?.method,
    path: ctx?.req?.originalUrl ?? ctx?.path,
    client: ctx?.oidc?.client?.clientId,
    status: error?.status ?? error?.statusCode,
    error: error?.error ?? error?.name,
    description: error?.error_description,
    detail: error?.error_detail ?? (error?.error ? undefined : error?.message),
    cause: error?.cause?.message !== error?.error_detail ? error?.cause?.message : undefined,
  });
  if (name === 'server_error' && error?.stack) {
    process.stderr.write(`[server_error.stack] ${error.stack.replace(/\n\s*/g, ' | ')}\n`);
  }
}

function handler(provider) {
  const callback = provider.callback();
  const pollState = new Map(); // auth_req_id -> { last, interval }

  return (req, res) => {
    const path = req.url.split('?')[0];
    if (path === '/oidc' || path.startsWith('/oidc/')) {
      // Mount under /oidc: the provider derives its mount path from originalUrl vs url.
      req.originalUrl = req.url;
      req.url = req.url.slice('/oidc'.length) || '/';
      if (config.slowDown && req.method === 'POST' && path === '/oidc/token') {
        slowDownGate(req, res, pollState, () => callback(req, res));
        return;
      }
      callback(req, res);
      return;
    }
    if (path === '/auth/qr' || path.startsWith('/auth/qr/')) {
      onesQR(provider, req, res, path).catch((err) => {
        logLine('ones_qr.error', { path, error: err.message });
        sendJSON(res, 500, { error: 'server_error' });
      });
      return;
    }
    if (path.startsWith('/admin/')) {
      admin(provider, req, res, path).catch((err) => {
        logLine('admin.error', { path, error: err.message });
        sendJSON(res, 500, { error: 'server_error', error_description: err.message });
      });
      return;
    }
    sendJSON(res, 404, { error: 'not_found' });
  };
}

// slowDownGate buffers the token request body; CIBA polls that come too early are answered with
// slow_down, all others go on to the provider with the buffered body in req.body (which
// oidc-provider reads when the stream was already consumed; it warns once on stderr).
function slowDownGate(req, res, pollState, next) {
  const chunks = [];
  let size = 0;
  req.on('data', (chunk) => {
    size += chunk.length;
    if (size <= TOKEN_BODY_LIMIT) chunks.push(chunk);
  });
  req.on('error', () => res.destroy());
  req.on('end', () => {
    const buf = Buffer.concat(chunks);
    req.body = buf;
    const form = new URLSearchParams(buf.toString('utf8'));
    const id = form.get('auth_req_id');
    if (form.get('grant_type') === 'urn:openid:params:grant-type:ciba' && id) {
      const now = Date.now();
      const state = pollState.get(id);
      if (state && now - state.last < state.interval * 1000) {
        state.last = now;
        state.interval += SLOW_DOWN_STEP;
        logLine('emulated.slow_down', { path: req.originalUrl, interval: state.interval });
        sendJSON(res, 400, {
          error: 'slow_down',
          error_description: 'you are polling too quickly and should back off at a reasonable rate',
        });
        return;
      }
      pollState.set(id, { last: now, interval: state?.interval ?? baseInterval });
    }
    next();
  });
}

function sendJSON(res, status, body) {
  const data = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(data),
  });
  res.end(data);
}

async function readJSON(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > ADMIN_BODY_LIMIT) throw new Error('admin request body too large');
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? JSON.parse(text) : {};
}

function findPending(sel) {
  if (typeof sel.auth_req_id === 'string' && sel.auth_req_id) {
    return pending.findIndex((p) => p.auth_req_id === sel.auth_req_id);
  }
  if (typeof sel.binding_message === 'string' && sel.binding_message) {
    return pending.findIndex((p) => p.binding_message === sel.binding_message);
  }
  if (Number.isInteger(sel.index)) {
    return sel.index >= 0 && sel.index < pending.length ? sel.index : -1;
  }
  throw new Error('select a request by auth_req_id, binding_message or index');
}

// takePending removes and returns the selected pending request, waiting up to sel.wait_ms for it
// to arrive.
async function takePending(sel) {
  let i = findPending(sel);
  const waitMs = Number.isInteger(sel.wait_ms) ? Math.min(Math.max(sel.wait_ms, 0), 60000) : 0;
  if (i < 0 && waitMs > 0) {
    await new Promise((resolve) => {
      const timer = setTimeout(done, waitMs);
      function done() {
        clearTimeout(timer);
        pendingEvents.off('pending', check);
        resolve();
      }
      function check() {
        if (findPending(sel) >= 0) done();
      }
      pendingEvents.on('pending', check);
    });
    i = findPending(sel);
  }
  if (i < 0) return undefined;
  return pending.splice(i, 1)[0];
}

// ONES QR sessions by auth_req_id: {clientId, expiresAt, status, accessToken?, issueTime?}.
const qrSessions = new Map();
const qrDevices = new Map(); // client id -> device id
const qrTtl = Number.isInteger(config.qrTtl) && config.qrTtl > 0 ? config.qrTtl : 300;

// qrBearer returns the client id of the live client_credentials token in the request's
// Authorization header, or answers 401 and returns undefined.
async function qrBearer(provider, req, res) {
  const refuse = (desc) => {
    res.setHeader('www-authenticate', 'Bearer error="invalid_token"');
    sendJSON(res, 401, { error: 'invalid_token', error_description: desc });
    return undefined;
  };
  const auth = req.headers.authorization;
  if (typeof auth !== 'string' || !auth.startsWith('Bearer ')) return refuse('Bearer token required');
  let token;
  try {
    token = await provider.ClientCredentials.find(auth.slice('Bearer '.length));
  } catch {
    token = undefined;
  }
  if (!token?.isValid) return refuse('not a valid device access token');
  const client = await provider.Client.find(token.clientId);
  if (!client) return refuse('unknown client');
  return token.clientId;
}

async function onesQR(provider, req, res, path) {
  if (req.method !== 'GET') {
    res.setHeader('allow', 'GET');
    sendJSON(res, 405, { error: 'invalid_request', error_description: 'GET required' });
    return;
  }
  if (req.url !== path) {
    sendJSON(res, 400, { error: 'invalid_request', error_description: 'no query expected' });
    return;
  }
  const clientId = await qrBearer(provider, req, res);
  if (!clientId) return;
  if (path === '/auth/qr') {
    const id = crypto.randomUUID();
    qrSessions.set(id, { clientId, expiresAt: Date.now() + qrTtl * 1000, status: 'pending' });
    logLine('ones_qr.start', { client: clientId, auth_req_id: id });
    sendJSON(res, 200, { auth_req_id: id, exp: qrTtl });
    return;
  }
  const id = path.slice('/auth/qr/'.length);
  const session = qrSessions.get(id);
  if (!session || session.clientId !== clientId) {
    sendJSON(res, 404, { error: 'not_found', error_description: 'unknown QR session' });
    return;
  }
  const body = { status: session.status, deviceId: qrDevices.get(clientId) };
  if (Date.now() >= session.expiresAt) {
    body.status = 'expired';
  } else if (session.status === 'approved') {
    body.access_token = session.accessToken;
    body.issue_time = session.issueTime;
    qrSessions.delete(id); // handed out once
  } else if (session.status !== 'pending') {
    qrSessions.delete(id);
  }
  sendJSON(res, 200, body);
}

async function qrAdmin(provider, req, res, path) {
  const sel = await readJSON(req);
  if (path === '/admin/qr-device') {
    if (typeof sel.client_id !== 'string' || typeof sel.device_id !== 'string') {
      sendJSON(res, 400, { error: 'invalid_request', error_description: 'client_id and device_id required' });
      return;
    }
    qrDevices.set(sel.client_id, sel.device_id);
    res.writeHead(204).end();
    return;
  }
  const session = qrSessions.get(sel.auth_req_id);
  if (!session || session.status !== 'pending') {
    sendJSON(res, 404, { error: 'not_found', error_description: 'no pending QR session matches' });
    return;
  }
  if (path === '/admin/deny-qr') {
    session.status = typeof sel.status === 'string' && sel.status ? sel.status : 'denied';
    sendJSON(res, 200, { auth_req_id: sel.auth_req_id, status: session.status });
    return;
  }
  const accountId = accountIdForHint(sel.account);
  if (!accountId) {
    sendJSON(res, 400, { error: 'invalid_request', error_description: 'unknown account' });
    return;
  }
  const scope = typeof sel.scope === 'string' && sel.scope ? sel.scope : 'openid profile';
  const client = await provider.Client.find(session.clientId);
  const grant = new provider.Grant({ accountId, clientId: client.clientId });
  grant.addOIDCScope(scope);
  const grantId = await grant.save();
  const token = new provider.AccessToken({
    accountId, client, grantId, scope, gty: 'ones_qr', expiresIn: ttl('AccessToken', 3600),
  });
  session.accessToken = await token.save();
  session.issueTime = Math.floor(Date.now() / 1000);
  session.status = 'approved';
  sendJSON(res, 200, { auth_req_id: sel.auth_req_id, status: 'approved', account: accountId, scope });
}

async function admin(provider, req, res, path) {
  if (req.method === 'POST' && ['/admin/qr-device', '/admin/approve-qr', '/admin/deny-qr'].includes(path)) {
    await qrAdmin(provider, req, res, path);
    return;
  }
  if (req.method === 'POST' && path === '/admin/sync') {
    // The Go harness waits for this line to know that earlier stderr lines have been read.
    const { id } = await readJSON(req);
    process.stderr.write(`[sync] ${String(id).replace(/\s/g, '')}\n`);
    res.writeHead(204).end();
    return;
  }
  if (req.method === 'GET' && path === '/admin/pending') {
    sendJSON(res, 200, pending);
    return;
  }
  if (req.method === 'POST' && (path === '/admin/approve' || path === '/admin/deny')) {
    const sel = await readJSON(req);
    const entry = await takePending(sel);
    if (!entry) {
      sendJSON(res, 404, { error: 'not_found', error_description: `no pending request matches ${JSON.stringify(sel)}` });
      return;
    }
    let result;
    if (path === '/admin/approve') {
      const grant = new provider.Grant({ accountId: entry.accountId, clientId: entry.client_id });
      grant.addOIDCScope(entry.scope);
      if (entry.claims) {
        const claims = typeof entry.claims === 'string' ? JSON.parse(entry.claims) : entry.claims;
        const names = [
          ...Object.keys(claims.id_token ?? {}),
          ...Object.keys(claims.userinfo ?? {}),
        ];
        if (names.length) grant.addOIDCClaims(names);
      }
      const resources = entry.resource === undefined ? [] : [entry.resource].flat();
      const requested = new Set(entry.scope.split(' '));
      for (const indicator of resources) {
        const offered = (resourceServers[indicator]?.scope ?? '').split(' ');
        const scope = offered.filter((s) => requested.has(s)).join(' ');
        if (scope) grant.addResourceScope(indicator, scope);
      }
      await grant.save();
      result = grant;
    } else {
      const code = sel.error ?? 'access_denied';
      const Klass = {
        access_denied: errors.AccessDenied,
        transaction_failed: errors.TransactionFailed,
        expired_token: errors.ExpiredToken,
      }[code];
      if (!Klass) {
        sendJSON(res, 400, { error: 'invalid_request', error_description: `unsupported error ${code}` });
        return;
      }
      result = new Klass(sel.error_description);
    }
    try {
      await provider.backchannelResult(entry.auth_req_id, result);
    } catch (err) {
      // The decision is saved before a ping is attempted; a failed ping is reported here.
      logLine('admin.error', { path, auth_req_id: entry.auth_req_id, error: err.message, cause: err.cause?.message });
      sendJSON(res, 502, { error: 'delivery_failed', error_description: err.message, auth_req_id: entry.auth_req_id });
      return;
    }
    sendJSON(res, 200, { ...entry, decision: path === '/admin/approve' ? 'approved' : (sel.error ?? 'access_denied') });
    return;
  }
  sendJSON(res, 404, { error: 'not_found' });
}

// The Go harness keeps a pipe on stdin open for the life of the test binary: when the test
// binary dies without cleaning up, stdin ends and the provider exits instead of lingering.
if (config.exitOnStdinEnd) {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('error', () => process.exit(0));
  process.stdin.resume();
}

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    server.close();
    process.exit(0);
  });
}
