// Component tests of the action dialogs, with the Tauri IPC mocked at its boundary.
import { afterEach, describe, expect, it } from "vitest";
import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { clearMocks, mockIPC } from "@tauri-apps/api/mocks";
import { SessionContext, type Session } from "./session";
import { ActionButton, ActionDialog } from "./routes/actions";
import type { Action, UserDetail } from "./types";

afterEach(() => {
  cleanup();
  clearMocks();
});

const detail: UserDetail = {
  user: { id: "usr_1", email: "ada@example.com", full_name: null, role: "user", status: "active", created_at: "2026-01-01T00:00:00Z", updated_at: "2026-01-01T00:00:00Z" },
  subscription: {
    id: "sub_1", user_id: "usr_1", plan: "free@1", plan_id: "free", plan_name: "Free", effective_plan: "free@1", status: "active",
    current_period_start: "2026-01-01T00:00:00Z", current_period_end: "2026-02-01T00:00:00Z", cancel_at_period_end: false,
    scheduled_plan: null, trial_end: null, grace_until: null, stripe_customer_id: null, stripe_subscription_id: null,
  },
  usage: { plan: "free@1", period: { start: "2026-01-01T00:00:00Z", end: "2026-02-01T00:00:00Z" }, metrics: {}, credits: {} },
  sessions: [], keys: [], recent_usage: [], audit: [], credit_ledger: [], refusals: [],
  email_verified_at: null, mfa_enabled: false, recovery_codes_left: 0, recent_mail: [],
};

function renderWith(ui: React.ReactNode, role: "support" | "finance", permissions: Action[]) {
  const session: Session = {
    database: { url: "sqlite://t.db", backend: "sqlite", has_staff: true, is_empty: false },
    staff: { user_id: "usr_s", email: "s@example.com", full_name: null, role, session_id: "ses_1" },
    permissions,
  };
  const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  return render(
    <QueryClientProvider client={client}>
      <SessionContext.Provider value={session}>{ui}</SessionContext.Provider>
    </QueryClientProvider>,
  );
}

describe("action dialogs", () => {
  it("sends the chosen plan and reason, then closes", async () => {
    const calls: unknown[] = [];
    mockIPC((cmd, args) => {
      if (cmd === "list_plans") return ["free", "pro"].map((id) => ({
          plan_id: id, label: `${id}@1`, name: id, description: "", price: 0, currency: "usd", interval: "month", is_default: id === "free",
        }));
      if (cmd === "change_plan") {
        calls.push(args);
        return { ...detail, subscription: { ...detail.subscription, plan: "pro@1", plan_id: "pro" } };
      }
      throw new Error(`unexpected ${cmd}`);
    });
    let closed = false;
    renderWith(<ActionDialog kind="change-plan" detail={detail} onClose={() => (closed = true)} />, "support", ["change_plan"]);
    await screen.findByRole("option", { name: "pro" });
    fireEvent.change(screen.getByTestId("dialog-plan"), { target: { value: "pro" } });
    fireEvent.change(screen.getByTestId("dialog-reason"), { target: { value: "partner deal" } });
    fireEvent.click(screen.getByTestId("dialog-confirm"));
    await waitFor(() => expect(closed).toBe(true));
    expect(calls).toEqual([{ userId: "usr_1", plan: "pro", when: "now", reason: "partner deal" }]);
  });

  it("keeps a refusal in the dialog with its code and message", async () => {
    mockIPC(() => {
      throw { code: "forbidden", message: "your role may not do this" };
    });
    let closed = false;
    renderWith(<ActionDialog kind="suspend" detail={detail} onClose={() => (closed = true)} />, "support", ["suspend_user"]);
    fireEvent.change(screen.getByTestId("dialog-reason"), { target: { value: "chargeback" } });
    fireEvent.click(screen.getByTestId("dialog-confirm"));
    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toContain("forbidden");
    expect(alert.textContent).toContain("your role may not do this");
    expect(closed).toBe(false);
  });

  it("resets two-factor with the reason given, and shows the refreshed detail", async () => {
    const calls: unknown[] = [];
    mockIPC((cmd, args) => {
      if (cmd === "reset_two_factor") {
        calls.push(args);
        return { ...detail, mfa_enabled: false };
      }
      throw new Error(`unexpected ${cmd}`);
    });
    let closed = false;
    const locked = { ...detail, mfa_enabled: true, recovery_codes_left: 3 };
    renderWith(<ActionDialog kind="reset-two-factor" detail={locked} onClose={() => (closed = true)} />, "support", ["reset_two_factor"]);
    fireEvent.change(screen.getByTestId("dialog-reason"), { target: { value: "identity checked by video call" } });
    fireEvent.click(screen.getByTestId("dialog-confirm"));
    await waitFor(() => expect(closed).toBe(true));
    expect(calls).toEqual([{ userId: "usr_1", reason: "identity checked by video call" }]);
  });

  it("disables a button the role cannot use, with the reason on hover", () => {
    renderWith(
      <ActionButton needs="suspend_user" testId="action-suspend" onClick={() => {}}>
        Suspend
      </ActionButton>,
      "finance",
      ["view_user"],
    );
    const button = screen.getByTestId("action-suspend") as HTMLButtonElement;
    expect(button.disabled).toBe(true);
    expect(button.parentElement?.title).toBe("The finance role cannot suspend users.");
  });
});
