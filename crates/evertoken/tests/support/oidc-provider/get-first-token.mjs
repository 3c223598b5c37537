// Performs the authorization-code flow (PKCE S256, prompt=consent, offline_access)
// against server.mjs's dev interactions over plain HTTP, without a browser, and
// writes the token answer as JSON to --out (mode 0600). Nothing secret goes to
// stdout or stderr: only the path written and a token prefix.
//
//   node get-first-token.mjs --issuer http://127.0.0.1:PORT --client confidential|post|public \
//       --out /tmp/first-token.json [--redirect-uri URI] [--login USER]
//
// Or, as the user's browser for someone else's login (`evertoken auth login`):
//   node get-first-token.mjs --authorize-url URL
// answers the login and consent pages of that authorize URL, then delivers the
// final redirect (with the code) to its redirect URI, where the client listens,
// and exits 0 once the client answered 200. The client exchanges the code.
//
// The steps are described in server.mjs's header. No npm dependencies (Node >= 18).

import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    issuer: { type: 'string' },
    client: { type: 'string', default: 'confidential' },
    out: { type: 'string' },
    'redirect-uri': { type: 'string', default: 'http://127.0.0.1:53682/callback' },
    login: { type: 'string', default: 'test-user' },
    'authorize-url': { type: 'string' },
  },
});

function die(msg) {
  console.error(`get-first-token: ${msg}`);
  process.exit(1);
}

const given = args['authorize-url'] ? new URL(args['authorize-url']) : null;
if (!given && (!args.issuer || !args.out)) die('--issuer and --out are required (or --authorize-url)');

const CLIENTS = {
  confidential: { id: 'evt-confidential', secret: 'evt-confidential-secret', auth: 'basic' },
  post: { id: 'evt-post', secret: 'evt-post-secret', auth: 'post' },
  public: { id: 'evt-public', auth: 'none' },
};
const client = given ? null : CLIENTS[args.client];
if (!given && !client) die(`--client must be one of ${Object.keys(CLIENTS).join(', ')}`);

const b64url = (buf) => buf.toString('base64url');
const verifier = b64url(randomBytes(32));
const challenge = b64url(createHash('sha256').update(verifier).digest());
const state = given ? given.searchParams.get('state') : b64url(randomBytes(16));
const redirectUri = given ? given.searchParams.get('redirect_uri') : args['redirect-uri'];

// A minimal cookie jar: name → value, sent back on every request.
const jar = new Map();
function remember(res) {
  for (const c of res.headers.getSetCookie?.() ?? []) {
    const [pair] = c.split(';');
    const eq = pair.indexOf('=');
    if (eq > 0) jar.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
  }
}
const cookieHeader = () => [...jar].map(([k, v]) => `${k}=${v}`).join('; ');

async function request(url, init = {}) {
  const res = await fetch(url, {
    ...init,
    redirect: 'manual',
    headers: { ...(init.headers ?? {}), cookie: cookieHeader() },
  });
  remember(res);
  return res;
}

const discovery = given
  ? null
  : await (await fetch(new URL('/.well-known/openid-configuration', args.issuer))).json();

const auth = given ?? new URL(discovery.authorization_endpoint);
if (!given) auth.search = new URLSearchParams({
  client_id: client.id,
  response_type: 'code',
  redirect_uri: redirectUri,
  scope: 'openid offline_access api',
  prompt: 'consent',
  state,
  code_challenge: challenge,
  code_challenge_method: 'S256',
}).toString();

let url = auth.toString();
let code;
for (let step = 0; step < 12 && !code; step += 1) {
  const res = await request(url);
  const location = res.headers.get('location');
  if (res.status >= 300 && res.status < 400 && location) {
    const next = new URL(location, url);
    if (next.toString().startsWith(redirectUri)) {
      if (next.searchParams.get('error')) {
        die(`authorization failed: ${next.searchParams.get('error')}: ${next.searchParams.get('error_description')}`);
      }
      if (next.searchParams.get('state') !== state) die('state mismatch in the redirect');
      code = next.searchParams.get('code');
      if (given) {
        // Deliver the redirect to the client listening there, as a browser would.
        const delivered = await fetch(next, { redirect: 'manual' });
        if (delivered.status !== 200) die(`the client answered the redirect with HTTP ${delivered.status}`);
        console.error('get-first-token: delivered the authorization code to the client');
        process.exit(0);
      }
      break;
    }
    url = next.toString();
    continue;
  }
  if (res.status !== 200) die(`unexpected HTTP ${res.status} at ${new URL(url).pathname}`);
  // An interaction page: answer the prompt it shows.
  const html = await res.text();
  const prompt = /name="prompt" value="(\w+)"/.exec(html)?.[1];
  const form = prompt === 'login'
    ? new URLSearchParams({ prompt: 'login', login: args.login, password: 'any' })
    : prompt === 'consent'
      ? new URLSearchParams({ prompt: 'consent' })
      : die(`unknown interaction page at ${new URL(url).pathname}`);
  const submitted = await request(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: form.toString(),
  });
  const back = submitted.headers.get('location');
  if (!back) die(`interaction ${prompt} answered HTTP ${submitted.status} without a redirect`);
  url = new URL(back, url).toString();
}
if (!code) die('no authorization code after 12 redirects');

const body = new URLSearchParams({
  grant_type: 'authorization_code',
  code,
  redirect_uri: redirectUri,
  code_verifier: verifier,
});
const headers = { 'content-type': 'application/x-www-form-urlencoded' };
if (client.auth === 'basic') {
  const enc = (s) => encodeURIComponent(s);
  headers.authorization = `Basic ${Buffer.from(`${enc(client.id)}:${enc(client.secret)}`).toString('base64')}`;
} else {
  body.set('client_id', client.id);
  if (client.auth === 'post') body.set('client_secret', client.secret);
}
const res = await fetch(discovery.token_endpoint, { method: 'POST', headers, body: body.toString() });
const answer = await res.json();
if (res.status !== 200 || !answer.refresh_token) {
  die(`token request failed: HTTP ${res.status} ${answer.error ?? ''} ${answer.error_description ?? ''}`);
}
writeFileSync(args.out, `${JSON.stringify(answer, null, 2)}\n`, { mode: 0o600 });
console.error(`get-first-token: wrote the token answer to ${args.out} (refresh token ${answer.refresh_token.slice(0, 8)}…)`);
