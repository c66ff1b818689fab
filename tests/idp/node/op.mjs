// A real OpenID provider for the tests: the certified `oidc-provider` package (8.x), configured
// from a JSON file (argv[2]) with clients, test accounts with passwords, RS256 keys that can be
// rotated, back-channel logout and pushed authorization requests.
//
// Test-only control endpoints under /_test/ (never part of a real provider):
//   POST /_test/rotate               new signing key first in the JWKS (?drop=1: old keys go)
//   POST /_test/misbehave?mode=M     the NEXT token response's id_token is altered: tampered
//                                    (payload changed, signature kept), alg_none, wrong_aud,
//                                    expired (exp 5 min ago), old (auth_time/iat 25 h ago);
//                                    re-signed with the provider's own current key where a
//                                    signature is needed. An honest provider mints the ID
//                                    token at the token request, so none of these can be
//                                    had from it by timing or configuration alone.
//   POST /_test/account              {login, claims}: change a test account's claims
//   POST /_test/mint                 {claims, typ, alg}: a JWT signed with the current key
//                                    (a sectoral IdP's token for TI-M token login)
//   POST /_test/set                  {url, events, sub, aud}: sign and push a security event
//                                    token (RFC 8417/8935), reply with the receiver's status
// On start it prints one JSON line {"ready": true, "issuer": ...} on stdout.
import http from "node:http";
import { readFileSync } from "node:fs";
import { randomUUID } from "node:crypto";
import Provider from "oidc-provider";
import { generateKeyPair, exportJWK, SignJWT, importJWK, decodeJwt, decodeProtectedHeader } from "jose";

const config = JSON.parse(readFileSync(process.argv[2], "utf8"));
const { port, issuer, clients, accounts } = config;
const byLogin = accounts;                       // login -> {password, sub, claims}
const bySub = Object.fromEntries(Object.values(accounts).map((a) => [a.sub, a]));

let keys = [];                                  // private JWKs, signing key first
let misbehave = null;
let provider;

async function newKey() {
  const { privateKey } = await generateKeyPair("RS256", { extractable: true });
  const jwk = await exportJWK(privateKey);
  return { ...jwk, kid: randomUUID(), alg: "RS256", use: "sig" };
}

function escape(s) {
  return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function build() {
  const p = new Provider(issuer, {
    clients,
    jwks: { keys },
    cookies: { keys: ["test-cookie-key-not-secret"] },
    scopes: ["openid", "offline_access", "profile", "email", "groups", "ti-messenger"],
    claims: {
      openid: ["sub"],
      profile: ["name", "preferred_username"],
      email: ["email"],
      groups: ["groups"],
      "ti-messenger": ["professionOID", "organizationName", "idNummer"],
    },
    conformIdTokenClaims: config.conformIdTokenClaims ?? true,
    features: {
      devInteractions: { enabled: false },
      backchannelLogout: { enabled: true },
      rpInitiatedLogout: { enabled: true },
      pushedAuthorizationRequests: { enabled: true },
      revocation: { enabled: true },
    },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    async findAccount(ctx, id) {
      const account = bySub[id];
      if (!account) return undefined;
      return { accountId: id, claims: async () => ({ sub: id, ...account.claims }) };
    },
  });
  p.proxy = false;
  p.on("server_error", (ctx, err) => console.error("server_error", err));
  p.on("backchannel.error", (ctx, err) => console.error("backchannel.error", err.message));
  p.use(async (ctx, next) => {
    await next();
    if (ctx.path === "/token" && misbehave && ctx.body && ctx.body.id_token) {
      const mode = misbehave;
      misbehave = null;
      ctx.body = { ...ctx.body, id_token: await alter(ctx.body.id_token, mode) };
    }
  });
  return p;
}

function b64(obj) {
  return Buffer.from(JSON.stringify(obj)).toString("base64url");
}

async function sign(claims, header = {}) {
  const key = keys[0];
  return new SignJWT(claims)
    .setProtectedHeader({ alg: "RS256", kid: key.kid, ...header })
    .sign(await importJWK(key, "RS256"));
}

async function alter(idToken, mode) {
  const claims = decodeJwt(idToken);
  const header = decodeProtectedHeader(idToken);
  const [h, , s] = idToken.split(".");
  const now = Math.floor(Date.now() / 1000);
  switch (mode) {
    case "tampered":
      return `${h}.${b64({ ...claims, name: "Mallory", preferred_username: "mallory" })}.${s}`;
    case "alg_none":
      return `${b64({ alg: "none", typ: "JWT" })}.${b64(claims)}.`;
    case "wrong_aud":
      return sign({ ...claims, aud: "some-other-client" }, { typ: header.typ });
    case "expired":
      return sign({ ...claims, iat: now - 900, exp: now - 300 }, { typ: header.typ });
    case "old":
      return sign({ ...claims, auth_time: now - 25 * 3600, iat: now - 25 * 3600 + 5 },
                  { typ: header.typ });
    default:
      throw new Error(`unknown misbehave mode ${mode}`);
  }
}

async function readBody(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  return Buffer.concat(chunks).toString("utf8");
}

function send(res, status, body, type = "application/json") {
  res.writeHead(status, { "Content-Type": type, "Cache-Control": "no-store" });
  res.end(typeof body === "string" ? body : JSON.stringify(body));
}

async function interaction(req, res, url) {
  const [, , uid, action] = url.pathname.split("/");
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) return send(res, 400, { error: "uid mismatch" });
  if (details.prompt.name === "login") {
    if (req.method === "POST" && action === "login") {
      const form = new URLSearchParams(await readBody(req));
      const account = byLogin[form.get("login")];
      if (!account || account.password !== form.get("password")) {
        return send(res, 200, loginPage(uid, "Invalid login or password."), "text/html");
      }
      return provider.interactionFinished(req, res, { login: { accountId: account.sub } },
                                          { mergeWithLastSubmission: false });
    }
    return send(res, 200, loginPage(uid, ""), "text/html");
  }
  // Consent: this provider trusts its registered clients (first-party); grant what is asked.
  const { prompt: { details: missing }, params, session: { accountId } } = details;
  const grant = details.grantId ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId, clientId: params.client_id });
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(" "));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes || {})) {
    grant.addResourceScope(indicator, scopes.join(" "));
  }
  const grantId = await grant.save();
  return provider.interactionFinished(req, res, { consent: { grantId } },
                                      { mergeWithLastSubmission: true });
}

function loginPage(uid, error) {
  return `<!doctype html><html><head><title>Test IdP sign-in</title></head><body>
<h1>Test identity provider</h1>${error ? `<p id="op-error">${escape(error)}</p>` : ""}
<form method="post" action="/interaction/${escape(uid)}/login">
<label>Login <input id="op-login" name="login" autocomplete="off"></label>
<label>Password <input id="op-password" name="password" type="password"></label>
<button id="op-submit" type="submit">Sign in</button></form></body></html>`;
}

async function control(req, res, url) {
  const action = url.pathname.slice("/_test/".length);
  if (action === "rotate") {
    const key = await newKey();
    keys = url.searchParams.get("drop") ? [key] : [key, ...keys];
    provider = build();
    return send(res, 200, { kid: key.kid });
  }
  if (action === "misbehave") {
    misbehave = url.searchParams.get("mode");
    return send(res, 200, { mode: misbehave });
  }
  const body = JSON.parse((await readBody(req)) || "{}");
  if (action === "account") {
    Object.assign(byLogin[body.login].claims, body.claims);
    return send(res, 200, byLogin[body.login].claims);
  }
  if (action === "mint") {
    if (body.alg === "none") {
      return send(res, 200, { token: `${b64({ alg: "none", typ: body.typ ?? "JWT" })}.${b64(body.claims)}.` });
    }
    const header = body.typ === null ? {} : { typ: body.typ ?? "JWT" };
    return send(res, 200, { token: await sign(body.claims, header) });
  }
  if (action === "set") {
    const now = Math.floor(Date.now() / 1000);
    const token = await sign({ iss: issuer, aud: body.aud, iat: now, jti: randomUUID(),
                               events: body.events, ...(body.sub ? { sub: body.sub } : {}) },
                             { typ: "secevent+jwt" });
    const resp = await fetch(body.url, { method: "POST", body: token,
                                         headers: { "Content-Type": "application/secevent+jwt" } });
    return send(res, 200, { status: resp.status, body: await resp.text() });
  }
  return send(res, 404, { error: "unknown control" });
}

keys = [await newKey()];
provider = build();

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, issuer);
  try {
    if (url.pathname.startsWith("/_test/")) return await control(req, res, url);
    if (url.pathname.startsWith("/interaction/")) return await interaction(req, res, url);
    return provider.callback()(req, res);
  } catch (err) {
    console.error(err);
    if (!res.headersSent) send(res, 500, { error: String(err) });
  }
});
server.listen(port, "127.0.0.1", () => {
  process.stdout.write(JSON.stringify({ ready: true, issuer }) + "\n");
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
