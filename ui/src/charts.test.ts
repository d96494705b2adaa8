import { describe, expect, it } from "vitest";
import { cumulative, stackOrder } from "./charts/series";
import { monthsCovering, parseRangeSearch, resolveRange } from "./range";
import { parseDefinitions, definitionOf } from "./definitions";
import { tokenize } from "./json-highlight";
import { formatMoney, formatRate } from "./format";

describe("stacked series", () => {
  it("stacks layers as running sums and draws the tallest first", () => {
    const sums = cumulative([
      [1, 2],
      [3, 0],
      [5, 1],
    ]);
    expect(sums).toEqual([
      [1, 2],
      [4, 2],
      [9, 3],
    ]);
    expect(stackOrder(["a", "b", "c"], sums)).toEqual({ series: ["c", "b", "a"], data: [[9, 3], [4, 2], [1, 2]] });
  });
});

describe("date ranges", () => {
  const now = new Date("2026-11-29T12:00:00Z");
  it("keeps a custom pair of days only with the custom preset", () => {
    expect(parseRangeSearch({ range: "7d", from: "2026-01-01" })).toEqual({ range: "7d" });
    expect(parseRangeSearch({ range: "custom", from: "2026-01-01", to: "nope" })).toEqual({ range: "custom", from: "2026-01-01" });
    expect(parseRangeSearch({ range: "3w" })).toEqual({});
  });
  it("buckets by hour under three days, by day otherwise", () => {
    expect(resolveRange({ range: "7d" }, "30d", now).bucket).toBe("day");
    const r = resolveRange({ range: "custom", from: "2026-11-28", to: "2026-11-28" }, "30d", now);
    expect(r.bucket).toBe("hour");
    expect(new Date(r.until).getTime() - new Date(r.since).getTime()).toBe(24 * 3600 * 1000);
    expect(resolveRange({}, "90d", now).label).toBe("90 days");
  });
  it("counts the calendar months a range touches, capped at 120", () => {
    expect(monthsCovering("2026-11-02T00:00:00Z", now)).toBe(1);
    expect(monthsCovering("2025-11-29T00:00:00Z", now)).toBe(13);
    expect(monthsCovering("1990-01-01T00:00:00Z", now)).toBe(120);
  });
});

describe("revenue definitions", () => {
  it("reads column definitions under their table heading", () => {
    const defs = parseDefinitions("## Figures\n### `mrr` table (x)\n| Column | Definition |\n|---|---|\n| `arr` | `mrr × 12`. |\n| `start_mrr`, `end_mrr` | Sums. |\n## Other\n| `arr` | elsewhere |\n");
    expect(defs.get("mrr.arr")?.text).toBe("`mrr × 12`.");
    expect(defs.get("mrr.end_mrr")?.text).toBe("Sums.");
    expect(defs.size).toBe(3);
  });
  it("finds every figure the revenue screen links in docs/revenue.md", () => {
    for (const [t, c] of [["mrr", "arpu"], ["mrr", "refunded"], ["movements", "net_new"], ["churn", "revenue_churn_rate"], ["by-plan", "customers"], ["movements", "new_customers"]]) {
      expect(definitionOf(t, c), `${t}.${c}`).not.toBeNull();
    }
    expect(definitionOf("mrr", "nonsense")).toBeNull();
  });
});

describe("JSON tokenizer", () => {
  it("tells keys from string values and keeps the text exact", () => {
    const text = '{"id": "evt_1", "n": -1.5e3, "ok": true, "x": null}';
    const tokens = tokenize(text);
    expect(tokens.map((t) => t.text).join("")).toBe(text);
    expect(tokens.filter((t) => t.kind === "key").map((t) => t.text)).toEqual(['"id"', '"n"', '"ok"', '"x"']);
    expect(tokens.find((t) => t.text === '"evt_1"')?.kind).toBe("string");
    expect(tokens.find((t) => t.text === "-1.5e3")?.kind).toBe("number");
  });
  it("marks what is not JSON instead of dropping it", () => {
    expect(tokenize("{oops}").filter((t) => t.kind === "other").map((t) => t.text).join("")).toBe("oops");
  });
});

describe("money and rates", () => {
  it("reads minor units in their currency", () => {
    expect(formatMoney(123456, "usd")).toBe("$1,234.56");
    expect(formatMoney(500, "jpy")).toBe("¥500");
    expect(formatRate(0.1234)).toBe("12.3%");
    expect(formatRate(null)).toBe("—");
  });
});
