// A Matrix client logging in through the OAuth 2.0 API with matrix-js-sdk's OIDC helpers,
// as a native app would: discovery (auth_metadata), dynamic registration, authorization code
// + PKCE with a loopback redirect URI, token exchange, whoami, refresh, revocation.
//
// argv[2]: the homeserver's base URL. Protocol on stdout, "@@ " + one JSON object per line:
//   {"authorize_url": ...}    open this in a browser; the script waits for the redirect
//   {"result": {...}}         what happened, for the test to assert on
// matrix-js-sdk 37 has no revocation helper: revocation uses oidc-client-ts (the OAuth/OIDC
// client library matrix-js-sdk itself is built on) against the advertised revocation_endpoint.
import http from "node:http";
import { randomBytes } from "node:crypto";

class MemoryStorage {
  #items = new Map();
  get length() { return this.#items.size; }
  key(i) { return [...this.#items.keys()][i] ?? null; }
  getItem(k) { return this.#items.has(k) ? this.#items.get(k) : null; }
  setItem(k, v) { this.#items.set(k, String(v)); }
  removeItem(k) { this.#items.delete(k); }
  clear() { this.#items.clear(); }
}
// The helpers keep the flow's state in sessionStorage, as in a browser.
globalThis.window = globalThis;
globalThis.sessionStorage = new MemoryStorage();
globalThis.localStorage = new MemoryStorage();

const homeserverUrl = process.argv[2].replace(/\/$/, "");
// Lines for the test start with "@@ " (the SDK logs to stdout too).
const say = (obj) => process.stdout.write("@@ " + JSON.stringify(obj) + "\n");

const sdk = await import("matrix-js-sdk");
const { OidcClient } = await import("oidc-client-ts");
const result = {};

// A loopback listener for the redirect (spec "Redirect URI validation", native clients).
const codePromise = new Promise((resolve) => {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, "http://127.0.0.1");
    res.writeHead(200, { "Content-Type": "text/html" });
    res.end("<!doctype html><title>Signed in</title><h1 id='client-done'>You can close this window.</h1>");
    server.close();
    resolve(url.searchParams);
  });
  server.listen(0, "127.0.0.1", () => {
    globalThis.__port = server.address().port;
  });
});
while (!globalThis.__port) await new Promise((r) => setTimeout(r, 10));
const redirectUri = `http://127.0.0.1:${globalThis.__port}/callback`;
globalThis.location = { origin: `http://127.0.0.1:${globalThis.__port}`, href: redirectUri };

const anonymous = sdk.createClient({ baseUrl: homeserverUrl });
const metadata = await anonymous.getAuthMetadata();
result.issuer = metadata.issuer;
const clientId = await sdk.registerOidcClient(metadata, {
  clientName: "matrix-js-sdk test client",
  clientUri: "https://client.example.org/",
  redirectUris: ["http://127.0.0.1/callback"],
  applicationType: "native",
  contacts: [],
  tosUri: "https://client.example.org/tos",
  policyUri: "https://client.example.org/policy",
});
result.client_id = clientId;
const nonce = randomBytes(12).toString("hex");
const authorizeUrl = await sdk.generateOidcAuthorizationUrl({
  metadata, redirectUri, clientId, homeserverUrl, nonce,
});
say({ authorize_url: authorizeUrl });

const params = await codePromise;
if (params.get("error")) {
  result.error = params.get("error");
  say({ result });
  process.exit(0);
}
const { tokenResponse, idTokenClaims } = await sdk.completeAuthorizationCodeGrant(
  params.get("code"), params.get("state"));
result.scope = tokenResponse.scope;
result.id_token_sub = idTokenClaims.sub;
const deviceId = tokenResponse.scope.split(" ").find((s) => s.includes(":device:")).split(":").pop();
result.device_id = deviceId;

const client = sdk.createClient({ baseUrl: homeserverUrl, accessToken: tokenResponse.access_token });
const who = await client.whoami();
result.whoami = who;

const refresher = new sdk.OidcTokenRefresher(metadata.issuer, clientId, redirectUri, deviceId,
                                             idTokenClaims);
await refresher.oidcClientReady;
const refreshed = await refresher.doRefreshAccessToken(tokenResponse.refresh_token);
result.refreshed = refreshed.accessToken !== tokenResponse.access_token
  && refreshed.refreshToken !== tokenResponse.refresh_token;
const client2 = sdk.createClient({ baseUrl: homeserverUrl, accessToken: refreshed.accessToken });
result.whoami_after_refresh = await client2.whoami();

const oidc = new OidcClient({ authority: metadata.issuer, client_id: clientId,
                              redirect_uri: redirectUri, metadata });
await oidc.revokeToken(refreshed.accessToken, "access_token");
try {
  await client2.whoami();
  result.after_revoke = "still valid";
} catch (e) {
  result.after_revoke = e.errcode ?? String(e);
}
result.access_token = refreshed.accessToken;  // for the test to check from outside
say({ result });
process.exit(0);
