// The date range every chart screen shares: a preset (7, 30, 90 days, 12 months) or a custom
// pair of days, kept in the route's search params as `range`, `from` and `to`.
import { dayEnd, dayStart } from "./format";

export type RangePreset = "7d" | "30d" | "90d" | "12m" | "custom";
export type RangeSearch = { range?: RangePreset; from?: string; to?: string };

export const PRESETS: { id: RangePreset; label: string }[] = [
  { id: "7d", label: "7 days" },
  { id: "30d", label: "30 days" },
  { id: "90d", label: "90 days" },
  { id: "12m", label: "12 months" },
  { id: "custom", label: "Custom" },
];

const DAY = /^\d{4}-\d{2}-\d{2}$/;
const HOUR_MS = 3_600_000;

/** The range fields of raw search params; anything unknown is dropped. */
export function parseRangeSearch(raw: Record<string, unknown>): RangeSearch {
  const out: RangeSearch = {};
  if (typeof raw.range === "string" && PRESETS.some((p) => p.id === raw.range)) out.range = raw.range as RangePreset;
  for (const k of ["from", "to"] as const) {
    const v = raw[k];
    if (typeof v === "string" && DAY.test(v)) out[k] = v;
  }
  if (out.range !== "custom") {
    delete out.from;
    delete out.to;
  }
  return out;
}

export type ResolvedRange = { since: string; until: string; bucket: "hour" | "day"; label: string };

/**
 * The instants a range covers, `[since, until)`, and its bucket: per hour under three days,
 * per day otherwise. Presets end now; a custom range covers whole local days.
 */
export function resolveRange(s: RangeSearch, fallback: RangePreset = "30d", now: Date = new Date()): ResolvedRange {
  const preset = s.range ?? fallback;
  let since: Date;
  let until: Date;
  if (preset === "custom" && s.from) {
    since = new Date(dayStart(s.from));
    until = s.to ? new Date(dayEnd(s.to)) : now;
    if (until <= since) until = new Date(since.getTime() + 24 * HOUR_MS);
  } else {
    until = now;
    since = new Date(now);
    if (preset === "12m") since.setMonth(since.getMonth() - 12);
    else since.setDate(since.getDate() - (preset === "7d" ? 7 : preset === "90d" ? 90 : 30));
  }
  const bucket = until.getTime() - since.getTime() < 72 * HOUR_MS ? "hour" : "day";
  const label = preset === "custom" && s.from ? `${s.from} to ${s.to ?? "now"}` : PRESETS.find((p) => p.id === preset)!.label;
  return { since: since.toISOString(), until: until.toISOString(), bucket, label };
}

/** How many calendar months, ending with the current one, a range touches (revenue's `months`). */
export function monthsCovering(since: string, now: Date = new Date()): number {
  const s = new Date(since);
  const months = (now.getUTCFullYear() - s.getUTCFullYear()) * 12 + (now.getUTCMonth() - s.getUTCMonth()) + 1;
  return Math.min(120, Math.max(1, months));
}
