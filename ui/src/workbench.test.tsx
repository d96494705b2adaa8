// Component tests of the part 2 pieces; the Tauri IPC is mocked at its boundary.
import { afterEach, describe, expect, it } from "vitest";
import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { clearMocks, mockIPC } from "@tauri-apps/api/mocks";
import { CheckResult } from "./routes/PlansScreen";
import { ReplayResult } from "./routes/StripeEventsScreen";
import { JsonView } from "./components/JsonView";
import { RangePicker } from "./components/RangePicker";
import { ExportCsvButton } from "./components/ExportCsvButton";
import type { RangeSearch } from "./range";

afterEach(() => {
  cleanup();
  clearMocks();
});

describe("plan check result", () => {
  it("shows each problem's line, column and the offending line with a caret", () => {
    render(
      <CheckResult
        file="plans.toml"
        check={{ ok: false, plans: [], metrics: [], problems: [{ line: 33, column: 31, message: "limit must be a whole number", source_line: 'quotas = { videos = { limit = "thirty" } }' }] }}
      />,
    );
    const result = screen.getByTestId("plans-check-result");
    expect(result.dataset.ok).toBe("false");
    const problem = screen.getByTestId("plans-problem");
    expect(problem.textContent).toContain("line 33, column 31");
    expect(problem.textContent).toContain('limit = "thirty"');
    expect(problem.querySelector(".caret")?.textContent).toBe(" ".repeat(30) + "^");
  });

  it("says a clean file has no problems and names its plans", () => {
    render(<CheckResult file="ok.toml" check={{ ok: true, plans: ["free", "pro"], metrics: ["videos"], problems: [] }} />);
    expect(screen.getByTestId("plans-check-result").textContent).toContain("plans free, pro");
    expect(screen.queryByTestId("plans-problem")).toBeNull();
  });
});

describe("raw JSON view", () => {
  it("highlights keys, strings, numbers and literals", () => {
    render(<JsonView value={{ id: "evt_1", amount: 1200, livemode: false }} testId="raw" />);
    const raw = screen.getByTestId("raw");
    expect([...raw.querySelectorAll(".j-key")].map((e) => e.textContent)).toEqual(['"id"', '"amount"', '"livemode"']);
    expect(raw.querySelector(".j-string")?.textContent).toBe('"evt_1"');
    expect(raw.querySelector(".j-number")?.textContent).toBe("1200");
    expect(raw.querySelector(".j-literal")?.textContent).toBe("false");
  });
});

describe("stripe replay result", () => {
  it("marks the fields a dry run would change, per user", () => {
    const state = { account_status: "active", subscription_status: "active", plan_version: "free@1", credits: [] };
    render(
      <ReplayResult
        report={{
          dry_run: true,
          events: [{ id: "evt_1", type: "customer.subscription.updated", outcome: "applied", error: null, changes: ["user usr_1: plan free@1 → business@1"] }],
          users: [{ user_id: "usr_1", before: state, after: { ...state, plan_version: "business@1" }, changed: ["plan_version"] }],
        }}
      />,
    );
    expect(screen.getByTestId("event-dry-run-result").textContent).toContain("nothing was kept");
    const diff = screen.getByTestId("event-diff");
    expect(diff.dataset.user).toBe("usr_1");
    const changed = [...diff.querySelectorAll('tr[data-changed="true"]')].map((r) => r.textContent);
    expect(changed).toEqual(["Planfree@1business@1"]);
    expect(screen.getByText("user usr_1: plan free@1 → business@1")).toBeTruthy();
  });
});

describe("range picker", () => {
  it("reports presets and opens a custom pair of days", () => {
    const seen: RangeSearch[] = [];
    const { rerender } = render(<RangePicker value={{}} onChange={(v) => seen.push(v)} />);
    expect(screen.getByTestId("range-30d").getAttribute("aria-checked")).toBe("true");
    fireEvent.click(screen.getByTestId("range-90d"));
    fireEvent.click(screen.getByTestId("range-custom"));
    expect(seen[0]).toEqual({ range: "90d" });
    expect(seen[1].range).toBe("custom");
    expect(seen[1].from).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    rerender(<RangePicker value={seen[1]} onChange={(v) => seen.push(v)} />);
    fireEvent.change(screen.getByLabelText("From"), { target: { value: "2026-01-05" } });
    expect(seen[2]).toMatchObject({ range: "custom", from: "2026-01-05" });
  });
});

describe("revenue CSV export", () => {
  function renderButton() {
    const client = new QueryClient();
    return render(
      <QueryClientProvider client={client}>
        <ExportCsvButton table="by_plan" months={12} />
      </QueryClientProvider>,
    );
  }

  it("asks where to save, then has the command write the table there", async () => {
    const calls: [string, unknown][] = [];
    mockIPC((cmd, args) => {
      calls.push([cmd, args]);
      if (cmd === "plugin:dialog|save") return "/tmp/by-plan.csv";
      if (cmd === "export_revenue_csv") return { path: "/tmp/by-plan.csv", rows: 36, bytes: 2048 };
      throw new Error(`unexpected ${cmd}`);
    });
    renderButton();
    fireEvent.click(screen.getByTestId("revenue-export-csv"));
    await screen.findByText("Saved 36 rows to /tmp/by-plan.csv");
    expect(calls.map((c) => c[0])).toEqual(["plugin:dialog|save", "export_revenue_csv"]);
    expect(calls[1][1]).toEqual({ table: "by_plan", months: 12, path: "/tmp/by-plan.csv" });
  });

  it("writes nothing when the dialog is cancelled, and shows a refusal's code", async () => {
    let answer: string | null = null;
    mockIPC((cmd) => {
      if (cmd === "plugin:dialog|save") return answer;
      if (cmd === "export_revenue_csv") throw { code: "file_unwritable", message: "/ro/x.csv: read-only file system" };
      throw new Error(`unexpected ${cmd}`);
    });
    renderButton();
    fireEvent.click(screen.getByTestId("revenue-export-csv"));
    await waitFor(() => expect((screen.getByTestId("revenue-export-csv") as HTMLButtonElement).disabled).toBe(false));
    expect(screen.queryByRole("alert")).toBeNull();
    answer = "/ro/x.csv";
    fireEvent.click(screen.getByTestId("revenue-export-csv"));
    expect((await screen.findByRole("alert")).textContent).toBe("file_unwritable: /ro/x.csv: read-only file system");
  });
});
