// A customer's product driving Tollgate through openapi-fetch, typed by openapi-typescript from
// /openapi.json: register, a duplicate email, login, a new key, metering up to the 429 with its
// structured body, usage, subscription, entitlements and a token refresh.
//
// Usage: npx tsx lifecycle.ts BASE_URL   (types generated into generated/tollgate.d.ts)
import createClient from "openapi-fetch";
import type { paths } from "./generated/tollgate";

function expect(condition: unknown, what: string): asserts condition {
  if (!condition) {
    console.error(`typescript client: ${what}`);
    process.exit(1);
  }
}

const baseUrl = process.argv[2];
expect(baseUrl, "usage: lifecycle.ts BASE_URL");

const tollgate = createClient<paths>({ baseUrl });
const bearer = (token: string) => ({ headers: { Authorization: `Bearer ${token}` } });

const email = `ts-${crypto.randomUUID().slice(0, 10)}@example.com`;
const password = "correct horse battery";

// Register: an account on the free plan, a session and a first key.
const registered = await tollgate.POST("/v1/auth/register", {
  body: { email, password, full_name: "Ada Ts" },
});
expect(registered.response.status === 201 && registered.data, `register: ${registered.response.status}`);
expect(registered.data.api_key.startsWith("sk_"), "register gives an API key");

// The same email again: 409 with its stable code.
const duplicate = await tollgate.POST("/v1/auth/register", { body: { email, password } });
expect(duplicate.response.status === 409 && duplicate.error, `duplicate: ${duplicate.response.status}`);
expect(duplicate.error.error.code === "email_taken", `code ${duplicate.error.error.code}`);
expect(duplicate.error.error.request_id, "errors carry a request id");

const login = await tollgate.POST("/v1/auth/login", { body: { email, password } });
expect(login.data, `login: ${JSON.stringify(login.error)}`);
expect(login.data.user.email === email, "login returns the account");
const tokens = login.data;

const created = await tollgate.POST("/v1/keys", {
  body: { name: "backend", scopes: ["meter", "read"] },
  ...bearer(tokens.access_token),
});
expect(created.response.status === 201 && created.data, `create key: ${JSON.stringify(created.error)}`);
expect(created.data.key.scopes.join() === "meter,read", `scopes ${created.data.key.scopes}`);
const backend = bearer(created.data.api_key);

// The customer's backend meters with its key until the free plan's daily quota is spent.
let allowed = 0;
let refusal;
for (;;) {
  const metered = await tollgate.POST("/v1/meter", { body: { metric: "videos", amount: 1 }, ...backend });
  if (metered.error) {
    refusal = metered;
    break;
  }
  expect(metered.data.allowed, "allowed");
  allowed += 1;
  expect(allowed <= 100, "the quota never ran out");
}
expect(refusal.response.status === 429, `meter: ${refusal.response.status}`);
const error = refusal.error.error;
expect(error.code === "quota_exceeded", `code ${error.code}`);
expect(error.metric === "videos", `details ${JSON.stringify(error)}`);
expect(error.used === allowed && error.limit === allowed, `used/limit ${JSON.stringify(error)}`);
expect(error.upgrade_to === "pro", `upgrade_to ${JSON.stringify(error)}`);
expect(refusal.response.headers.get("retry-after"), "a 429 says when to retry");

const usage = await tollgate.GET("/v1/me/usage", backend);
expect(usage.data, `usage: ${JSON.stringify(usage.error)}`);
const videos = usage.data.metrics["videos"];
expect(videos && videos.used === allowed && videos.remaining === 0, `usage ${JSON.stringify(videos)}`);

const subscription = await tollgate.GET("/v1/me/subscription", backend);
expect(subscription.data?.plan_id === "free", `subscription ${JSON.stringify(subscription)}`);

const entitlement = await tollgate.GET("/v1/entitlements/{feature}", {
  params: { path: { feature: "vision" } },
  ...backend,
});
expect(entitlement.data, `entitlement: ${JSON.stringify(entitlement.error)}`);
expect(!entitlement.data.allowed && entitlement.data.upgrade_to === "pro", JSON.stringify(entitlement.data));

const rotated = await tollgate.POST("/v1/auth/refresh", { body: { refresh_token: tokens.refresh_token } });
expect(rotated.data, `refresh: ${JSON.stringify(rotated.error)}`);
expect(rotated.data.refresh_token !== tokens.refresh_token, "refresh rotates the token");
const reused = await tollgate.POST("/v1/auth/refresh", { body: { refresh_token: tokens.refresh_token } });
expect(reused.response.status === 401, "a used refresh token is refused");
expect(reused.error?.error.code === "refresh_token_reused", `${JSON.stringify(reused.error)}`);

console.log(`typescript client: life cycle passed (${allowed} calls metered before the 429)`);
