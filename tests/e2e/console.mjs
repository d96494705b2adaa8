// The console end to end, in its real window through tauri-driver: connect, sign in as support,
// find a user among thousands, change their plan, see it in the detail and the audit log,
// suspend and reactivate, sign out, and check that finance cannot act. Screenshots of each
// screen go to target/screenshots/. Run by scripts/e2e, which seeds the database and starts
// tauri-driver under a virtual display.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Session, waitForDriver } from "./webdriver.mjs";

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (scripts/e2e sets it)`);
  return v;
};
const driver = env("E2E_DRIVER_URL");
const bin = env("TOLLGATE_BIN");
const databaseUrl = env("E2E_DATABASE_URL");
const support = { email: env("E2E_SUPPORT_EMAIL"), password: env("E2E_SUPPORT_PASSWORD") };
const finance = { email: env("E2E_FINANCE_EMAIL"), password: env("E2E_FINANCE_PASSWORD") };
const admin = { email: env("E2E_ADMIN_EMAIL"), password: env("E2E_ADMIN_PASSWORD") };
const shots = env("E2E_SCREENSHOTS");
const freshUrl = env("E2E_FRESH_DATABASE_URL");
const apiPort = Number(env("E2E_PORT")) + 2;
const work = env("E2E_WORK");
mkdirSync(shots, { recursive: true });

const steps = [];
let current = null; // the open session, for a screenshot when a step fails
async function step(name, fn) {
  const started = Date.now();
  process.stdout.write(`• ${name} … `);
  try {
    await fn();
  } catch (e) {
    console.log("FAILED");
    if (current) await shot(current, `failed-${steps.length + 1}`).catch(() => {});
    throw e;
  }
  const ms = Date.now() - started;
  steps.push({ name, ms });
  console.log(`ok (${ms} ms)`);
}

async function shot(s, name) {
  writeFileSync(join(shots, `${name}.png`), await s.screenshot());
}

async function signIn(s, who) {
  const email = await s.byTestId("sign-in-email", 30_000);
  await email.clear();
  await email.type(who.email);
  await (await s.byTestId("sign-in-password")).type(who.password);
  await (await s.byTestId("sign-in-submit")).click();
  await s.byTestId("nav-users", 20_000);
}

/** Rows of the users table as the page shows them. */
function visibleRows(s) {
  return s.execute(`
    return [...document.querySelectorAll('[data-testid="user-row"]')].map((r) => ({
      id: r.dataset.userId,
      email: r.querySelector('.col-email').textContent,
      role: r.querySelector('.col-role').textContent,
      status: r.querySelector('.col-status').textContent,
      plan: r.querySelector('.col-plan').textContent,
    }));`);
}

async function searchAndOpen(s, email) {
  await (await s.byTestId("nav-users")).click();
  const box = await s.byTestId("user-search");
  await box.clear();
  await box.type(email);
  await s.waitUntil(async () => {
    const rows = await visibleRows(s);
    return rows.length === 1 && rows[0].email === email;
  }, `exactly one row for ${email}`);
  const [row] = await s.findAll('[data-testid="user-row"]');
  const rowText = await row.text();
  assert.ok(rowText.includes(email), `the row contains the email: ${JSON.stringify(rowText)}`);
  return row;
}

async function detailText(s) {
  return (await s.byTestId("user-detail")).text();
}

async function runAction(s, action, fill, closes = true) {
  const button = await s.byTestId(`action-${action}`);
  assert.equal(await button.enabled(), true, `action-${action} is enabled`);
  await button.click();
  await s.byTestId("dialog-reason");
  await fill?.();
  await (await s.byTestId("dialog-confirm")).click();
  if (!closes) return;
  // The dialog closes once the command answered; a refusal would keep it open with its code.
  await s.waitUntil(async () => (await s.findAll('[data-testid="dialog-confirm"]')).length === 0, `the ${action} dialog to close`);
}

const STORIES = {
  "story-upgrade": "8b0f3c2e-5d41-4c7a-9e1b-2f6a7d9c0a11",
  "story-churn": "1c9e2a7b-3f58-4d0e-8a61-5b7c4e2d9f22",
  "story-refund": "5e7a1d3c-9b24-4f6e-a0c8-7d2b1e4f6a33",
};

/** A story's event files with its placeholder user replaced by `userId`, in a folder of the run. */
function storyFor(story, userId) {
  const from = join("tests/e2e/fixtures", story);
  const to = join(work, `${story}-${userId}`);
  mkdirSync(to, { recursive: true });
  for (const f of readdirSync(from).filter((n) => n.endsWith(".json"))) {
    writeFileSync(join(to, f), readFileSync(join(from, f), "utf8").replaceAll(STORIES[story], userId));
  }
  return to;
}

async function main() {
  await waitForDriver(driver);
  let target;
  let others;

  // 1. No database given: the connection screen. A new SQLite file gets the first-run set-up
  //    (first admin, demo data); then back to the connection screen for the seeded database.
  let s = await Session.start(driver, { application: bin, args: ["desktop"] });
  current = s;
  try {
    await step("connection screen: a new SQLite file offers first-run set-up with demo data", async () => {
      const url = await s.byTestId("connect-url", 30_000);
      await shot(s, "01-connect");
      await url.type(freshUrl);
      await (await s.byTestId("connect")).click();
      await (await s.byTestId("setup-email", 20_000)).type("admin@e2e.test");
      await (await s.byTestId("setup-password")).type("admin-e2e-password");
      const demo = await s.find('.check input[type="checkbox"]');
      assert.equal(await demo.property("checked"), true, "demo data is offered for a new SQLite file");
      await shot(s, "02-first-run");
      await (await s.byTestId("setup-submit")).click();
      await s.find(".seed-progress progress", 10_000).catch(() => null);
      await shot(s, "03-seeding");
      await s.byTestId("nav-users", 120_000);
      const users = await s.waitUntil(async () => {
        const v = await s.findAll(".figure-value");
        return v.length ? Number((await v[0].text()).replace(/[^0-9]/g, "")) : null;
      }, "home figures", 20_000);
      assert.ok(users >= 1000, `the demo data is there (${users} users)`);
      await (await s.byTestId("sign-out")).click();
      await (await s.byTestId("disconnect", 20_000)).click();
    });

    await step("connection screen lists the recent database; connect the seeded one by URL", async () => {
      const url = await s.byTestId("connect-url", 20_000);
      const recent = await s.waitUntil(async () => (await s.findAll(".recent li")).length > 0, "recent connections");
      assert.ok(recent);
      await shot(s, "04-connect-recent");
      await url.type(databaseUrl);
      await (await s.byTestId("connect")).click();
      await s.byTestId("sign-in-email", 20_000);
      await shot(s, "05-sign-in");
    });
  } finally {
    await s.end();
  }

  // 2. Opened on the database directly, as support.
  s = await Session.start(driver, { application: bin, args: ["desktop", "--database-url", databaseUrl] });
  current = s;
  try {
    await step("sign in as support", async () => {
      await signIn(s, support);
      await s.find(".figure-value", 20_000);
      await shot(s, "06-home");
      assert.equal((await s.findAll('[data-testid="nav-revenue"]')).length, 0, "support has no revenue entry");
    });

    await step("users list among thousands, search one user, open them", async () => {
      await (await s.byTestId("nav-users")).click();
      await s.byTestId("user-row", 20_000);
      const total = await s.waitUntil(async () => {
        const t = await (await s.byTestId("user-total")).text();
        const n = Number(t.replace(/[^0-9]/g, ""));
        return n > 0 ? n : null;
      }, "the users total");
      assert.ok(total >= 1000, `thousands of users listed (total ${total})`);
      await shot(s, "07-users");
      const rows = await visibleRows(s);
      const customers = rows.filter((r) => r.role === "user" && r.status === "active");
      assert.ok(customers.length > 10, "active customers are listed");
      target = customers[Math.floor(customers.length / 2)];
      others = customers.filter((c) => c.id !== target.id);
      const row = await searchAndOpen(s, target.email);
      await shot(s, "08-users-search");
      await row.click();
      await s.byTestId("user-detail");
      // The filters live in the route: Back returns to the same list.
      await s.back();
      await s.waitUntil(async () => {
        const rows = await visibleRows(s);
        const box = await (await s.byTestId("user-search")).property("value");
        return box === target.email && rows.length === 1 && rows[0].email === target.email;
      }, "the same filtered list after Back");
      await (await s.byTestId("user-row")).click();
      const text = await detailText(s);
      assert.ok(text.includes(target.email), "the detail shows the email");
      assert.ok(text.includes("active"), "the detail shows the status");
      await shot(s, "09-user-detail");
    });

    let newPlan;
    await step("change their plan with a reason, see it in the detail", async () => {
      const before = await (await s.byTestId("detail-plan")).text();
      await runAction(s, "change-plan", async () => {
        const options = await s.execute(
          `return [...document.querySelector('[data-testid="dialog-plan"]').options].map((o) => o.value);`,
        );
        newPlan = options.find((o) => o && o !== before);
        assert.ok(newPlan, `a plan other than ${before} among ${options}`);
        const option = await s.find(`[data-testid="dialog-plan"] option[value="${newPlan}"]`);
        await option.click();
        assert.equal(await (await s.byTestId("dialog-plan")).property("value"), newPlan);
        await (await s.byTestId("dialog-reason")).type("e2e: partner deal");
        await shot(s, "10-change-plan-dialog");
      });
      await s.waitUntil(async () => (await (await s.byTestId("detail-plan")).text()) === newPlan, `the detail to show plan ${newPlan}`);
      await shot(s, "11-plan-changed");
    });

    await step("the change is in the audit log", async () => {
      await (await s.byTestId("nav-audit")).click();
      const row = await s.waitUntil(async () => {
        for (const r of await s.findAll('[data-testid="audit-row"]')) {
          const t = await r.text();
          if (t.includes("e2e: partner deal") && t.includes(target.id)) return r;
        }
        return null;
      }, "an audit row for the plan change");
      assert.match(await row.text(), new RegExp(newPlan));
      await shot(s, "12-audit");
      await s.back();
      await s.byTestId("user-detail");
    });

    await step("suspend, then reactivate", async () => {
      await runAction(s, "suspend", () => s.byTestId("dialog-reason").then((r) => r.type("e2e: chargeback")));
      await s.waitUntil(async () => (await (await s.byTestId("detail-status")).text()) === "suspended", "status suspended");
      await shot(s, "13-suspended");
      await runAction(s, "reactivate", () => s.byTestId("dialog-reason").then((r) => r.type("e2e: resolved")));
      await s.waitUntil(async () => (await (await s.byTestId("detail-status")).text()) === "active", "status active again");
    });

    await step("security: not verified, two-factor off; resend verification puts a mail in the outbox", async () => {
      assert.equal(await (await s.byTestId("detail-email-verified")).text(), "not verified");
      assert.equal(await (await s.byTestId("detail-mfa")).text(), "off");
      assert.equal((await s.findAll('[data-testid="action-reset-two-factor"]')).length, 0, "no two-factor to reset");
      await runAction(s, "resend-verification", () => s.byTestId("dialog-reason").then((r) => r.type("e2e: asked by chat")));
      await s.waitUntil(async () => {
        const rows = await s.findAll('[data-testid="detail-mail-row"]');
        return rows.length >= 1 && (await rows[0].attribute("data-template")) === "verify_email";
      }, "the verification mail in the recent mail");
      const text = await (await s.byTestId("detail-mail")).text();
      assert.ok(text.includes("pending"), "without SMTP the mail waits in the outbox");
      await shot(s, "13b-resend-verification");
    });

    await step("impersonate: a time-boxed token with a copy button, and a banner", async () => {
      await runAction(s, "impersonate", async () => {
        await (await s.byTestId("dialog-reason")).type("e2e: reproduce a customer report");
      }, false);
      const token = await s.byTestId("impersonation-token");
      assert.ok((await token.text()).length > 20, "the token is shown");
      await s.find('[data-testid="impersonation-dialog"] .copy');
      await shot(s, "14-impersonation");
      await (await s.find('[data-testid="impersonation-dialog"] .dialog-actions .primary')).click();
      const banner = await s.byTestId("impersonation-banner");
      assert.match(await banner.text(), new RegExp(`Impersonating ${target.email.replace(/[.]/g, "\\.")}`));
    });

    await step("a refusal stays in the dialog with its code", async () => {
      const button = await s.byTestId("action-delete");
      await button.click();
      await (await s.byTestId("dialog-confirm")).click(); // no reason: deleting needs one
      const alert = await s.find('[role="dialog"] [role="alert"]');
      const code = await alert.attribute("data-code");
      assert.equal(code, "validation_failed", `refused with its code: ${await alert.text()}`);
      await shot(s, "15-refusal-in-dialog");
      await (await s.find('[role="dialog"] .dialog-actions button[type="button"]')).click();
      assert.ok((await detailText(s)).includes("active"), "the user was not deleted");
    });

    await step("sign out", async () => {
      await (await s.byTestId("sign-out")).click();
      await s.byTestId("sign-in-email", 20_000);
    });

    await step("finance cannot act: buttons disabled with a reason, the command refuses", async () => {
      await signIn(s, finance);
      assert.equal(
        (await s.findAll('[data-testid="impersonation-banner"]')).length,
        0,
        "the previous staff member's impersonation ends with their sign-out",
      );
      const row = await searchAndOpen(s, target.email);
      await row.click();
      await s.byTestId("user-detail");
      for (const action of ["change-plan", "grant-credits", "suspend", "impersonate"]) {
        const button = await s.byTestId(`action-${action}`);
        assert.equal(await button.enabled(), false, `action-${action} is disabled for finance`);
        const reason = await button.attribute("data-disabled-reason");
        assert.match(reason ?? "", /finance role cannot/, `action-${action} says why`);
      }
      await shot(s, "16-finance-detail");
      const refused = await s.executeAsync(
        `const done = arguments[arguments.length - 1];
         window.__TAURI_INTERNALS__.invoke("suspend_user", { userId: arguments[0], reason: "e2e: not allowed" })
           .then(() => done({ ok: true }), (e) => done({ ok: false, error: e }));`,
        target.id,
      );
      assert.equal(refused.ok, false, "suspend_user is refused for finance");
      assert.equal(refused.error?.code, "forbidden", `refused with forbidden: ${JSON.stringify(refused.error)}`);
      const text = await detailText(s);
      assert.ok(text.includes("active"), "the user is still active");
    });

    await step("revenue chart as finance, a figure's definition", async () => {
      // Two customers' Stripe histories (a churn, a refund), applied by the CLI on the same database.
      for (const [i, story] of ["story-churn", "story-refund"].entries()) {
        execFileSync(bin, ["stripe", "replay", storyFor(story, others[i].id)], { env: { ...process.env, TOLLGATE_DATABASE_URL: databaseUrl }, stdio: "ignore" });
      }
      await (await s.byTestId("nav-revenue")).click();
      await s.waitUntil(async () => /\$[1-9]/.test(await (await s.byTestId("revenue-table-mrr")).text()), "money from the replayed stories in the MRR table");
      await s.find('[data-testid="revenue-chart"] canvas', 20_000);
      const rows = await s.findAll('[data-testid="revenue-table-mrr"] tbody tr');
      assert.ok(rows.length >= 12, `twelve months of MRR rows (got ${rows.length})`);
      await shot(s, "17-revenue");
      await (await s.find('button[aria-label="Definition of ARPU"]')).click();
      const definition = await (await s.byTestId("revenue-definition")).text();
      assert.match(definition, /paying_customers/, "the ARPU definition from docs/revenue.md");
      await shot(s, "18-revenue-definition");
      await (await s.find('[data-testid="revenue-definition"] button.primary')).click();
    });

    await step("usage chart for the platform, then for one user", async () => {
      await (await s.byTestId("nav-usage")).click();
      await s.find('[data-testid="usage-chart"] canvas', 20_000);
      const rows = await s.findAll('[data-testid="usage-table"] tbody tr');
      assert.ok(rows.length >= 28, `a row per day of the 30-day range (got ${rows.length})`);
      await shot(s, "19-usage-platform");
      await (await s.byTestId("usage-user-search")).type(target.email);
      await (await s.byTestId("usage-user-option", 20_000)).click();
      await s.waitUntil(async () => (await (await s.byTestId("usage-section")).attribute("data-user-id")) === target.id, "the chart to be the user's");
      await s.find('[data-testid="usage-chart"] canvas', 20_000);
      await shot(s, "20-usage-user");
    });

    await step("plans: a file with an error shows its line, a valid one its diff; finance cannot apply", async () => {
      const shipped = readFileSync("examples/plans.toml", "utf8");
      const broken = shipped.replace('quotas = { videos = { limit = 30, per = "day" } }', 'quotas = { videos = { limit = "thirty", per = "day" } }');
      assert.notEqual(broken, shipped, "the example plan file has the pro quota line");
      const raised = shipped.replace('price = { amount = 1200, currency = "usd", interval = "month" }', 'price = { amount = 1500, currency = "usd", interval = "month" }');
      assert.notEqual(raised, shipped, "the example plan file has the pro price line");
      const brokenPath = join(work, "plans-broken.toml");
      const raisedPath = join(work, "plans-raised.toml");
      writeFileSync(brokenPath, broken);
      writeFileSync(raisedPath, raised);
      const badLine = broken.split("\n").findIndex((l) => l.includes('"thirty"')) + 1;

      await (await s.byTestId("nav-plans")).click();
      await s.byTestId("plan-version-row", 20_000);
      await s.byTestId("plans-open");
      const path = await s.byTestId("plans-path");
      await path.type(brokenPath + "\uE007");
      const result = await s.byTestId("plans-check-result", 20_000);
      assert.equal(await result.attribute("data-ok"), "false", "the broken file does not pass the check");
      const problem = await s.byTestId("plans-problem");
      assert.equal(await problem.attribute("data-line"), String(badLine), `the problem is on line ${badLine}`);
      assert.match(await problem.text(), /thirty/, "the offending line is shown");
      await shot(s, "21-plans-error");

      await path.clear();
      await path.type(raisedPath + "\uE007");
      await s.waitUntil(async () => (await (await s.byTestId("plans-check-result")).attribute("data-ok")) === "true", "the valid file to pass");
      const diff = await s.waitUntil(async () => {
        const rows = await s.findAll('[data-testid="plans-diff-row"]');
        return rows.length ? rows : null;
      }, "the diff rows");
      const diffText = (await Promise.all(diff.map((r) => r.text()))).join("\n");
      assert.match(diffText, /pro/, `the diff names pro: ${diffText}`);
      const apply = await s.byTestId("plans-apply");
      assert.equal(await apply.enabled(), false, "finance cannot apply a plan file");
      await (await s.byTestId("plans-events-path")).type(join(process.cwd(), "examples/videos-events.jsonl") + "\uE007");
      await s.byTestId("plans-simulation", 20_000);
      await shot(s, "22-plans-diff");
    });

    await step("API listener on, /health through it, then off", async () => {
      await (await s.byTestId("nav-api")).click();
      const address = await s.byTestId("api-address");
      const addr = `127.0.0.1:${apiPort}`;
      await address.clear();
      await address.type(addr);
      await (await s.byTestId("api-toggle")).click();
      await s.waitUntil(async () => (await (await s.byTestId("api-status")).attribute("data-running")) === "true", "the listener to run");
      assert.equal(await (await s.byTestId("api-status")).attribute("data-addr"), addr);
      const health = await fetch(`http://${addr}/health`);
      assert.equal(health.status, 200, "GET /health answers 200 through the console's listener");
      const anonymous = await fetch(`http://${addr}/v1/me`);
      assert.equal(anonymous.status, 401, "an anonymous /v1/me is refused");
      await s.waitUntil(async () => Number((await (await s.byTestId("api-requests")).text()).replace(/[^0-9]/g, "")) >= 2, "the requests to be counted");
      await s.waitUntil(async () => (await (await s.byTestId("api-traffic")).text()).match(/Error answers\s*1/), "the 401 to be counted");
      await shot(s, "23-api-listener");
      await (await s.byTestId("api-toggle")).click();
      await s.waitUntil(async () => (await (await s.byTestId("api-status")).attribute("data-running")) === "false", "the listener to stop");
      await assert.rejects(fetch(`http://${addr}/health`), "nothing listens once it is off");
    });

    await step("as admin: apply the valid plan file after confirming, then migrate pro@1 to pro@2", async () => {
      await (await s.byTestId("sign-out")).click();
      await signIn(s, admin);
      await (await s.byTestId("nav-plans")).click();
      const path = await s.byTestId("plans-path");
      await path.clear();
      await path.type(join(work, "plans-raised.toml") + "\uE007");
      await s.byTestId("plans-diff-row", 20_000);
      const apply = await s.byTestId("plans-apply");
      assert.equal(await apply.enabled(), true, "admins may apply");
      await apply.click();
      await (await s.byTestId("dialog-reason")).type("e2e: pro price rise");
      await shot(s, "24-plans-apply-confirm");
      await (await s.byTestId("dialog-confirm")).click();
      const applied = await s.byTestId("plans-applied", 20_000);
      assert.match(await applied.text(), /pro@2/, "the new pro version is named");
      const versionRow = async (label) => {
        for (const r of await s.findAll('[data-testid="plan-version-row"]')) {
          const t = await r.text();
          if (t.startsWith(label)) return { row: r, text: t };
        }
        return null;
      };
      const old = await s.waitUntil(() => versionRow("pro@1"), "pro@1 listed as an old version");
      assert.match(old.text, /old/);
      const migrate = (await old.row.findAll('[data-testid="plans-migrate"]'))[0];
      assert.ok(migrate, "pro@1 has subscribers to migrate");
      await migrate.click();
      assert.equal(await (await s.byTestId("dialog-plan")).property("value"), "pro@2");
      await (await s.byTestId("dialog-reason")).type("e2e: move to the new price");
      await (await s.byTestId("dialog-confirm")).click();
      await s.waitUntil(async () => {
        const r = await versionRow("pro@1");
        return r && /\b0\s*$/.test(r.text.trim()) ? r : null;
      }, "pro@1 to have no subscribers left");
      await shot(s, "25-plans-migrated");
    });

    await step("Stripe events as admin: import a story as pending, dry run (the diff), replay", async () => {
      // The upgrade story for a third customer, as one JSON-lines file of unsigned test data.
      const who = others[2];
      const dir = storyFor("story-upgrade", who.id);
      const lines = readdirSync(dir).filter((n) => n.endsWith(".json")).sort().map((f) => JSON.stringify(JSON.parse(readFileSync(join(dir, f), "utf8"))));
      const file = join(work, "upgrade-events.jsonl");
      writeFileSync(file, lines.join("\n") + "\n");
      const customer = "cus_2AZbDR2B1N8qY1";

      await (await s.byTestId("nav-stripe")).click();
      await s.byTestId("stripe-import-open", 20_000);
      await (await s.byTestId("stripe-import-path")).type(file);
      await (await s.byTestId("stripe-import")).click();
      const refused = await s.find('.import-events [data-code]', 20_000);
      assert.match(await refused.text(), /unsigned|signature/i, "an unmarked file is refused and says why");
      await (await s.byTestId("stripe-import-unsigned")).click();
      await (await s.byTestId("stripe-import")).click();
      assert.match(await (await s.byTestId("stripe-import-result", 20_000)).text(), /5 stored as pending/);

      await (await s.byTestId("stripe-filter-customer")).type(customer);
      const rows = await s.waitUntil(async () => {
        const r = await s.findAll('[data-testid="event-row"]');
        const statuses = await Promise.all(r.map((x) => x.attribute("data-status")));
        return r.length === 5 && statuses.every((st) => st === "pending") ? r : null;
      }, "the five imported events, pending");
      for (const box of await s.findAll('[data-testid="event-check"]')) await box.click();
      assert.equal(rows.length, 5);
      // The oldest event (the checkout), by a cell: WebKit's driver does not click table rows.
      await (await s.find('[data-testid="event-row"][data-type="checkout.session.completed"] td:nth-child(3)')).click();
      const json = await s.byTestId("event-json", 20_000);
      assert.match(await json.text(), /"object": "event"/, "the raw JSON of the selected event");
      await shot(s, "26-stripe-events");

      await (await s.byTestId("event-replay-dry-run")).click();
      const diff = await s.byTestId("event-diff", 20_000);
      assert.equal(await diff.attribute("data-user"), who.id, "the diff is the story's user's");
      const diffText = await diff.text();
      assert.match(diffText, /Plan\s+\S+@\d+\s+business@\d+/, `the plan changes to business: ${diffText}`);
      await s.execute(`document.querySelector('[data-testid="event-diff"]').scrollIntoView({ block: "center" });`);
      await shot(s, "27-stripe-dry-run");
      const still = await Promise.all((await s.findAll('[data-testid="event-row"]')).map((x) => x.attribute("data-status")));
      assert.ok(still.every((st) => st === "pending"), "a dry run leaves the events pending");

      await (await s.byTestId("event-replay")).click();
      await (await s.byTestId("dialog-reason")).type("e2e: apply the imported story");
      await (await s.byTestId("dialog-confirm")).click();
      await s.byTestId("event-replay-result", 20_000);
      await s.waitUntil(async () => {
        const st = await Promise.all((await s.findAll('[data-testid="event-row"]')).map((x) => x.attribute("data-status")));
        return st.length === 5 && st.every((x) => x === "applied");
      }, "the five events applied");
      await shot(s, "28-stripe-replayed");
    });
  } finally {
    await s.end();
  }

  console.log(`\n${steps.length} steps passed; screenshots in ${shots}`);
}

main().catch((e) => {
  console.error(`\nFAILED: ${e.stack ?? e}`);
  process.exit(1);
});
