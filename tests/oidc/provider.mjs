// A real OpenID Connect provider (npm's oidc-provider) for tests/serve_oidc.rs, on loopback only.
//
// Clients: `fleetpin` (RS256 ID tokens), `fleetpin-es` (ES256) and `other` (a second client whose
// ID tokens carry another audience), all with the redirect URI in $REDIRECT_URI, secrets in
// $CLIENT_SECRET, PKCE S256 required. Users: `alice` (groups ["ops"]), `bob` (no group) and
// `carol` (groups ["dev"]).
// Sign-in is plain HTTP so a test can drive it: GET /interaction/UID shows a form, POST
// /interaction/UID/login with `login=alice` signs in; consent is implied (first-party clients).
//
// Two test-only controls, so refusals are made by the real provider rather than forged:
//   POST /__test/clock       offset=SECONDS  shifts this provider's clock (an ID token issued at
//                                            -3600 has expired an hour ago: faketime, in-process)
//   POST /__test/substitute  id_token=JWT    the next token answer carries that ID token instead
//                                            (one the provider issued to another client)
// Prints one JSON line {"issuer": ...} once it listens.

import http from 'node:http';
import crypto from 'node:crypto';
import Provider from 'oidc-provider';

const redirectUri = process.env.REDIRECT_URI;
const secret = process.env.CLIENT_SECRET;
if (!redirectUri || !secret) {
  console.error('REDIRECT_URI and CLIENT_SECRET are required');
  process.exit(2);
}

// The clock every expiry of the provider reads (oidc-provider's epochTime uses Date.now).
const realNow = Date.now.bind(Date);
let offsetSeconds = 0;
Date.now = () => realNow() + offsetSeconds * 1000;

let substitute = null;

const accounts = {
  alice: { email: 'alice@acme.example', email_verified: true, name: 'Alice', groups: ['ops'] },
  bob: { email: 'bob@acme.example', email_verified: true, name: 'Bob', groups: [] },
  carol: { email: 'carol@acme.example', email_verified: true, name: 'Carol', groups: ['dev'] },
};

const jwk = (type, options) => ({
  ...crypto.generateKeyPairSync(type, options).privateKey.export({ format: 'jwk' }),
  kid: crypto.randomUUID(),
});

const client = (id, alg) => ({
  client_id: id,
  client_secret: secret,
  redirect_uris: [redirectUri],
  grant_types: ['authorization_code'],
  response_types: ['code'],
  token_endpoint_auth_method: 'client_secret_basic',
  id_token_signed_response_alg: alg,
});

const configuration = {
  clients: [client('fleetpin', 'RS256'), client('fleetpin-es', 'ES256'), client('other', 'RS256')],
  jwks: {
    keys: [
      { ...jwk('rsa', { modulusLength: 2048 }), alg: 'RS256', use: 'sig' },
      { ...jwk('ec', { namedCurve: 'P-256' }), alg: 'ES256', use: 'sig' },
    ],
  },
  cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
  scopes: ['openid', 'email', 'profile', 'groups'],
  claims: { email: ['email', 'email_verified'], profile: ['name'], groups: ['groups'] },
  // The scopes' claims go into the ID token, as most providers' groups settings do.
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  ttl: { IdToken: 300, AccessToken: 300, AuthorizationCode: 60, Interaction: 600, Session: 3600, Grant: 3600 },
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, id) {
    if (!accounts[id]) return undefined;
    return { accountId: id, claims: async () => ({ sub: id, ...accounts[id] }) };
  },
  // First-party clients: consent is implied, so the only interaction is the login.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid email profile groups');
    await grant.save();
    return grant;
  },
};

const body = (req) => new Promise((resolve, reject) => {
  let data = '';
  req.setEncoding('utf8');
  req.on('data', (c) => { data += c; });
  req.on('end', () => resolve(new URLSearchParams(data)));
  req.on('error', reject);
});

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

let provider;
let handler;

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) throw new Error('interaction mismatch');
  if (action === 'login' && req.method === 'POST') {
    const login = (await body(req)).get('login');
    if (!accounts[login]) {
      res.writeHead(400, { 'content-type': 'text/plain' });
      res.end('no such user\n');
      return;
    }
    await provider.interactionFinished(req, res, { login: { accountId: login } }, { mergeWithLastSubmission: false });
    return;
  }
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
  res.end(`<!doctype html><title>Sign in</title>
<form method="post" action="/interaction/${esc(uid)}/login">
<p>Sign in to ${esc(details.params.client_id)} (prompt: ${esc(details.prompt.name)})</p>
<input name="login" placeholder="alice or bob" autofocus><button>Sign in</button></form>\n`);
}

const server = http.createServer(async (req, res) => {
  try {
    const url = new URL(req.url, 'http://127.0.0.1');
    if (req.method === 'POST' && url.pathname === '/__test/clock') {
      offsetSeconds = Number((await body(req)).get('offset') || 0);
      res.end('ok\n');
      return;
    }
    if (req.method === 'POST' && url.pathname === '/__test/substitute') {
      substitute = (await body(req)).get('id_token');
      res.end('ok\n');
      return;
    }
    const m = url.pathname.match(/^\/interaction\/([^/]+)(?:\/(login))?$/);
    if (m) {
      await interaction(req, res, m[1], m[2]);
      return;
    }
    if (req.method === 'POST' && url.pathname === '/token' && substitute) {
      const replacement = substitute;
      substitute = null;
      const end = res.end.bind(res);
      res.end = (chunk, ...rest) => {
        if (res.statusCode === 200 && chunk) {
          const doc = JSON.parse(chunk.toString());
          doc.id_token = replacement;
          chunk = JSON.stringify(doc);
          if (!res.headersSent) res.setHeader('content-length', Buffer.byteLength(chunk));
        }
        return end(chunk, ...rest);
      };
    }
    handler(req, res);
  } catch (e) {
    res.writeHead(500, { 'content-type': 'text/plain' });
    res.end(`${e.message}\n`);
  }
});

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  provider = new Provider(issuer, configuration);
  handler = provider.callback();
  console.log(JSON.stringify({ issuer }));
});

process.on('SIGTERM', () => process.exit(0));
