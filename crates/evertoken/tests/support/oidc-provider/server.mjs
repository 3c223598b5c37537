// A real, certified OAuth 2.0 / OpenID Connect authorization server (npm
// `oidc-provider`) on a loopback port, for the tests of `kind: oauth2` (any
// RFC 6749 service). Test-only: fixed client secrets, any login accepted.
//
// Install and run (the wrapper sets NODE_PATH to the installed package):
//   "$(scripts/setup-oidc-provider | tail -1)/oidc-test-server" --port 0 [--watch-stdin]
// or: NODE_PATH=target/test-tools/oidc-provider/node_modules node server.mjs --port 0
// Options (or environment): --port N (OIDC_PORT, default 0 = any free port),
// --redirect-uri URI (OIDC_REDIRECT_URI, default http://127.0.0.1:53682/callback),
// --access-ttl SECONDS (OIDC_ACCESS_TTL, default 3600), --watch-stdin (exit when
// stdin closes, so a test that dies takes the server with it).
// The first line on stdout is `listening http://127.0.0.1:PORT` (the issuer) once
// requests are accepted; every later diagnostic goes to stderr.
//
// Clients (test fixtures, not secrets of anything real):
//   evt-confidential / evt-confidential-secret  client_secret_basic  (`client_auth: basic`)
//   evt-post         / evt-post-secret          client_secret_post   (`client_auth: post`)
//   evt-public                                  none, PKCE required  (`client_auth: none`)
// All allow authorization_code + refresh_token and the scopes `openid offline_access api`.
// Refresh tokens rotate on every use (`rotateRefreshToken: true`); presenting a
// refresh token that was already used answers `invalid_grant` and revokes the whole
// grant, so the newest refresh token dies too (oidc-provider's reuse detection).
//
// Getting a first refresh token without a browser (what get-first-token.mjs does):
//  1. GET /.well-known/openid-configuration → authorization_endpoint, token_endpoint.
//  2. GET /auth?client_id=…&response_type=code&redirect_uri=…&scope=openid offline_access
//     &prompt=consent&state=…&code_challenge=…&code_challenge_method=S256
//     (`prompt=consent` is required or oidc-provider drops `offline_access`)
//     → 303 to /interaction/UID; keep every Set-Cookie (a small cookie jar).
//  3. GET /interaction/UID: the dev login page (its hidden input prompt=login).
//     POST /interaction/UID with form prompt=login&login=ANY&password=ANY → 303 to /auth/UID.
//  4. GET /auth/UID → 303 to /interaction/UID2 (the consent page, prompt=consent).
//     POST /interaction/UID2 with form prompt=consent → 303 to /auth/UID2.
//  5. GET /auth/UID2 → 303 to REDIRECT_URI?code=…&state=…&iss=… (nothing listens there;
//     read the code from the Location header and check `state`).
//  6. POST /token with grant_type=authorization_code, code, redirect_uri, code_verifier
//     (+ Basic auth, or client_id/client_secret in the body, or client_id only)
//     → {access_token, expires_in, refresh_token, id_token, scope, token_type}.

import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import { delimiter, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

// ES modules ignore NODE_PATH, so find the package in it by hand (it is where
// scripts/setup-oidc-provider installed it), then fall back to normal resolution.
async function loadProvider() {
  for (const dir of (process.env.NODE_PATH ?? '').split(delimiter).filter(Boolean)) {
    const pkg = join(dir, 'oidc-provider', 'package.json');
    if (existsSync(pkg)) {
      const { main } = JSON.parse(readFileSync(pkg, 'utf8'));
      return (await import(pathToFileURL(join(dir, 'oidc-provider', main ?? 'lib/index.js')))).default;
    }
  }
  try {
    return (await import('oidc-provider')).default;
  } catch (e) {
    console.error(`server.mjs: cannot load oidc-provider (${e.message}); run scripts/setup-oidc-provider and set NODE_PATH to the directory it prints`);
    process.exit(3);
  }
}
const Provider = await loadProvider();

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: process.env.OIDC_PORT ?? '0' },
    'redirect-uri': {
      type: 'string',
      default: process.env.OIDC_REDIRECT_URI ?? 'http://127.0.0.1:53682/callback',
    },
    'access-ttl': { type: 'string', default: process.env.OIDC_ACCESS_TTL ?? '3600' },
    'watch-stdin': { type: 'boolean', default: false },
  },
});

const port = Number.parseInt(args.port, 10);
const accessTtl = Number.parseInt(args['access-ttl'], 10);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`server.mjs: --port must be 0..65535, got ${JSON.stringify(args.port)}`);
  process.exit(2);
}
if (!Number.isInteger(accessTtl) || accessTtl < 1) {
  console.error(`server.mjs: --access-ttl must be a positive integer, got ${JSON.stringify(args['access-ttl'])}`);
  process.exit(2);
}
const redirectUri = args['redirect-uri'];

const common = {
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  redirect_uris: [redirectUri],
  scope: 'openid offline_access api',
};

const configuration = {
  clients: [
    {
      ...common,
      client_id: 'evt-confidential',
      client_secret: 'evt-confidential-secret',
      token_endpoint_auth_method: 'client_secret_basic',
    },
    {
      ...common,
      client_id: 'evt-post',
      client_secret: 'evt-post-secret',
      token_endpoint_auth_method: 'client_secret_post',
    },
    {
      ...common,
      client_id: 'evt-public',
      token_endpoint_auth_method: 'none',
      application_type: 'native',
    },
  ],
  scopes: ['openid', 'offline_access', 'api'],
  // Rotate on every refresh, for every client (the default rotates confidential
  // clients' tokens only late in their life).
  rotateRefreshToken: true,
  pkce: { required: (_ctx, client) => client.clientAuthMethod === 'none' },
  ttl: {
    AccessToken: accessTtl,
    AuthorizationCode: 600,
    IdToken: 3600,
    Interaction: 600,
    Session: 86400,
    Grant: 14 * 86400,
    RefreshToken: 14 * 86400,
  },
  features: {
    devInteractions: { enabled: true },
    revocation: { enabled: true },
    introspection: { enabled: true },
  },
  cookies: { keys: ['evertoken-test-only-cookie-signing-key'] },
  async findAccount(_ctx, sub) {
    return { accountId: sub, async claims() { return { sub }; } };
  },
};

const server = http.createServer();
server.on('error', (e) => {
  console.error(`server.mjs: cannot listen on 127.0.0.1:${port}: ${e.message}`);
  process.exit(1);
});
server.listen(port, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, configuration);
  provider.on('server_error', (_ctx, err) => console.error(`server.mjs: server_error: ${err}`));
  server.on('request', provider.callback());
  process.stdout.write(`listening ${issuer}\n`);
});

const stop = () => process.exit(0);
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
if (args['watch-stdin']) {
  process.stdin.on('end', stop);
  process.stdin.on('error', stop);
  process.stdin.resume();
}
