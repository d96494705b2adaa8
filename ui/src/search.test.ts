import { describe, expect, it } from "vitest";
import { parseUserSearch, toUserQuery } from "./routes/UsersScreen";
import { diffRows, parseStripeSearch, toStripeQuery } from "./routes/StripeEventsScreen";
import { parseAuditSearch, toAuditFilter } from "./routes/AuditScreen";
import { summarize } from "./routes/UserScreen";
import { gate } from "./permissions";

describe("users route search params", () => {
  it("keeps known filters and drops anything else", () => {
    const s = parseUserSearch({ q: "ada", status: "suspended", role: "wizard", from: "2026-01-02", to: "yesterday", sort: "email_asc", x: 1 });
    expect(s).toEqual({ q: "ada", status: "suspended", from: "2026-01-02", sort: "email_asc" });
  });

  it("turns a day range into an inclusive created range", () => {
    const q = toUserQuery({ from: "2026-03-01", to: "2026-03-01" }, "cur");
    expect(new Date(q.created_before!).getTime() - new Date(q.created_after!).getTime()).toBe(24 * 3600 * 1000);
    expect(q.cursor).toBe("cur");
    expect(q.q).toBeNull();
  });
});

describe("audit route search params", () => {
  it("trims text filters and checks days", () => {
    expect(parseAuditSearch({ actor: "  usr_1 ", action: "", from: "2026-13", to: "2026-02-03" })).toEqual({ actor: "usr_1", to: "2026-02-03" });
    expect(toAuditFilter({ action: "suspend" }, null)).toMatchObject({ action: "suspend", since: null, cursor: null });
  });
});

describe("audit change summary", () => {
  it("lists only the fields that changed", () => {
    expect(summarize({ plan: "free@1", status: "active" }, { plan: "pro@1", status: "active" })).toBe("plan: free@1 → pro@1");
    expect(summarize(null, { credits: 5 })).toBe("credits: ∅ → 5");
  });
});

describe("permission gate", () => {
  it("gives the reason when the role lacks the action", () => {
    expect(gate(["view_user"], "finance", "change_plan")).toEqual({ allowed: false, reason: "The finance role cannot change plans." });
    expect(gate(["change_plan"], "support", "change_plan")).toEqual({ allowed: true });
  });
});

describe("stripe events route search params", () => {
  it("keeps known statuses and trimmed filters only", () => {
    expect(parseStripeSearch({ type: " invoice.paid ", status: "done", customer: "", event: "evt_1" })).toEqual({ type: "invoice.paid", event: "evt_1" });
    expect(parseStripeSearch({ status: "pending" })).toEqual({ status: "pending" });
    expect(toStripeQuery({ customer: "cus_1" }, "c1")).toEqual({ type: null, status: null, customer: "cus_1", cursor: "c1", limit: 100 });
  });
  it("shows each billing field before and after", () => {
    const before = { account_status: "active", subscription_status: "active", plan_version: "free@1", credits: [] };
    const after = { ...before, plan_version: "pro@1", credits: [{ metric: "generations", balance: 100 }] };
    const rows = diffRows(before, after);
    expect(rows.find((r) => r[0] === "Plan")).toEqual(["Plan", "free@1", "pro@1"]);
    expect(rows.find((r) => r[0] === "Credits")).toEqual(["Credits", "none", "generations: 100"]);
    expect(rows.find((r) => r[0] === "Account")).toEqual(["Account", "active", "active"]);
  });
});
