// A real OpenID Connect provider for the sokhoe tests (panva/node-oidc-provider, certified).
//
// It plays the national identity provider (VNeID-like) so that the Relying Party in
// src/sokhoe/access/oidc.py is exercised against a real implementation of discovery, the
// authorization code flow with PKCE, client authentication, signed ID tokens, JWKS and
// userinfo, not against a hand-made fake.
//
//   node server.mjs PORT [REDIRECT_URI] [--claims-in-id-token]
//
// It listens on 127.0.0.1:PORT over plain http, in development mode (NODE_ENV unset): a
// production issuer must be https, and the Relying Party refuses a non-https issuer unless it
// is on the loopback interface. Signing keys are made at start-up and live only in memory.
//
// Clients (both confidential, code flow, PKCE S256):
//   sokhoe     client_secret_basic, ID tokens RS256
//   other-app  client_secret_post,  ID tokens ES256 (also the "another audience" in tests)
// Synthetic accounts (login / password): see ACCOUNTS below; the numbers are made up.
// The login and consent pages are a minimal interaction handler built on the library's
// interactionDetails / interactionFinished API.

import { generateKeyPairSync } from 'node:crypto';
import http from 'node:http';

import Provider from 'oidc-provider';

const args = process.argv.slice(2);
const CLAIMS_IN_ID_TOKEN = args.includes('--claims-in-id-token');
const [port, redirect] = args.filter((a) => !a.startsWith('--'));
const PORT = Number.parseInt(port ?? '', 10);
if (!Number.isInteger(PORT) || PORT <= 0 || PORT > 65535) {
  console.error('usage: node server.mjs PORT [REDIRECT_URI] [--claims-in-id-token]');
  process.exit(2);
}
const REDIRECT_URI = redirect ?? 'http://testserver/auth/oidc/callback';
const ISSUER = `http://127.0.0.1:${PORT}`;

const CLIENT_SECRETS = {
  sokhoe: 'sokhoe-test-secret-0123456789-abcdef',
  'other-app': 'other-app-test-secret-9876543210-fedcba',
};

// login -> { password, claims }. `cccd` is the claim the Relying Party maps to a Patient.
const ACCOUNTS = {
  an: {
    password: 'mat-khau-an',
    claims: {
      name: 'Nguyễn Văn An',
      family_name: 'Nguyễn',
      given_name: 'Văn An',
      birthdate: '1985-04-12',
      gender: 'male',
      cccd: '001085012345',
      phone_number: '+84912000111',
      phone_number_verified: true,
    },
  },
  binh: {
    password: 'mat-khau-binh',
    claims: { name: 'Trần Thị Bình', cccd: '079190654321', phone_number_verified: false },
  },
  chi: {
    password: 'mat-khau-chi',
    claims: { name: 'Lê Minh Chi' },
  },
};

function jwk(type, options, alg) {
  const { privateKey } = generateKeyPairSync(type, options);
  return { ...privateKey.export({ format: 'jwk' }), alg, use: 'sig', kid: `${alg.toLowerCase()}-1` };
}

const configuration = {
  clients: [
    {
      client_id: 'sokhoe',
      client_secret: CLIENT_SECRETS.sokhoe,
      redirect_uris: [REDIRECT_URI],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'RS256',
    },
    {
      client_id: 'other-app',
      client_secret: CLIENT_SECRETS['other-app'],
      redirect_uris: [REDIRECT_URI],
      token_endpoint_auth_method: 'client_secret_post',
      id_token_signed_response_alg: 'ES256',
    },
  ],
  jwks: {
    keys: [
      jwk('rsa', { modulusLength: 2048 }, 'RS256'),
      jwk('ec', { namedCurve: 'P-256' }, 'ES256'),
    ],
  },
  cookies: { keys: ['sokhoe-test-provider-cookie-key'] },
  claims: {
    openid: ['sub'],
    profile: ['name', 'family_name', 'given_name', 'birthdate', 'gender', 'cccd'],
    phone: ['phone_number', 'phone_number_verified'],
  },
  // By default profile claims reach the Relying Party through userinfo only (the library's
  // conformIdTokenClaims: true); --claims-in-id-token puts them in the ID token as well.
  conformIdTokenClaims: !CLAIMS_IN_ID_TOKEN,
  features: { devInteractions: { enabled: false } },
  pkce: { required: () => true },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, id) {
    const account = ACCOUNTS[id];
    if (!account) return undefined;
    return { accountId: id, claims: async () => ({ sub: id, ...account.claims }) };
  },
};

const provider = new Provider(ISSUER, configuration);
const callback = provider.callback();

function escape(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(res, status, title, body) {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
  });
  res.end(`<!doctype html><html lang="vi"><head><meta charset="utf-8"><title>${escape(title)}</title>`
    + `</head><body><h1>${escape(title)}</h1>${body}</body></html>`);
}

async function formBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function loginForm(uid, error) {
  return (error ? `<p role="alert">${escape(error)}</p>` : '')
    + `<form method="post" action="/interaction/${escape(uid)}/login">`
    + '<label>Tên đăng nhập <input name="login" autocomplete="username"></label>'
    + '<label>Mật khẩu <input name="password" type="password"></label>'
    + '<button type="submit">Đăng nhập</button></form>';
}

function consentForm(uid, clientId, scopes) {
  return `<p>${escape(clientId)} xin truy cập: ${escape(scopes.join(' '))}</p>`
    + `<form method="post" action="/interaction/${escape(uid)}/confirm">`
    + '<button type="submit">Đồng ý</button></form>';
}

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) {
    page(res, 400, 'Lỗi', '<p>interaction mismatch</p>');
    return;
  }
  const { prompt, params, session, grantId } = details;
  if (req.method === 'GET' && !action) {
    if (prompt.name === 'login') {
      page(res, 200, 'Đăng nhập', loginForm(uid));
    } else {
      const scopes = prompt.details.missingOIDCScope ?? [];
      page(res, 200, 'Xác nhận', consentForm(uid, params.client_id, scopes));
    }
    return;
  }
  if (req.method === 'POST' && action === 'login' && prompt.name === 'login') {
    const form = await formBody(req);
    const account = ACCOUNTS[form.get('login') ?? ''];
    if (!account || account.password !== form.get('password')) {
      page(res, 401, 'Đăng nhập', loginForm(uid, 'Sai tên đăng nhập hoặc mật khẩu'));
      return;
    }
    await provider.interactionFinished(req, res, { login: { accountId: form.get('login') } }, {
      mergeWithLastSubmission: false,
    });
    return;
  }
  if (req.method === 'POST' && action === 'confirm' && prompt.name === 'consent') {
    const grant = grantId
      ? await provider.Grant.find(grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    const { missingOIDCScope, missingOIDCClaims, missingResourceScopes } = prompt.details;
    if (missingOIDCScope) grant.addOIDCScope(missingOIDCScope.join(' '));
    if (missingOIDCClaims) grant.addOIDCClaims(missingOIDCClaims);
    for (const [indicator, scope] of Object.entries(missingResourceScopes ?? {})) {
      grant.addResourceScope(indicator, scope.join(' '));
    }
    await provider.interactionFinished(req, res, { consent: { grantId: await grant.save() } }, {
      mergeWithLastSubmission: true,
    });
    return;
  }
  page(res, 400, 'Lỗi', '<p>unexpected interaction step</p>');
}

const INTERACTION = /^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login|confirm))?$/;

const server = http.createServer((req, res) => {
  const match = INTERACTION.exec(new URL(req.url, ISSUER).pathname);
  if (!match) {
    callback(req, res);
    return;
  }
  interaction(req, res, match[1], match[2]).catch((err) => {
    console.error(err);
    if (!res.headersSent) page(res, 400, 'Lỗi', `<p>${escape(err.message)}</p>`);
    else res.end();
  });
});

server.listen(PORT, '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${ISSUER}`);
});

function stop() {
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
