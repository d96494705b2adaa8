// Display helpers: one place for how numbers, dates and durations read in the console.

const numberFormat = new Intl.NumberFormat("en-US");

export function formatCount(n: number): string {
  return numberFormat.format(n);
}

/** `2026-11-29 08:41` in the viewer's time zone; an em dash for nothing. */
export function formatTime(iso: string | null | undefined): string {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export function formatDate(iso: string | null | undefined): string {
  return formatTime(iso).slice(0, 10);
}

/** "in 3 h 20 min", "2 d ago": for reset times and expiries. */
export function relative(iso: string | number, now: number = Date.now()): string {
  const at = typeof iso === "number" ? iso : new Date(iso).getTime();
  const diff = at - now;
  const abs = Math.abs(diff);
  const min = Math.round(abs / 60_000);
  let text: string;
  if (abs < 60_000) text = `${Math.max(1, Math.round(abs / 1000))} s`;
  else if (min < 60) text = `${min} min`;
  else if (min < 48 * 60) text = `${Math.floor(min / 60)} h${min % 60 ? ` ${min % 60} min` : ""}`;
  else text = `${Math.round(min / 1440)} d`;
  return diff >= 0 ? `in ${text}` : `${text} ago`;
}

/** Share of a limit used, 0..1, for progress bars; null when unlimited. */
export function usageRatio(used: number, limit: number | null): number | null {
  if (limit === null) return null;
  if (limit <= 0) return used > 0 ? 1 : 0;
  return Math.min(1, used / limit);
}

/** A date input's value (`YYYY-MM-DD`, local day) as the RFC 3339 start of that day. */
export function dayStart(day: string): string {
  return new Date(`${day}T00:00:00`).toISOString();
}

/** The day after a date input's value, as the exclusive end of a range. */
export function dayEnd(day: string): string {
  const d = new Date(`${day}T00:00:00`);
  d.setDate(d.getDate() + 1);
  return d.toISOString();
}

const moneyFormats = new Map<string, Intl.NumberFormat>();

/** Minor units (cents) of `currency` as money: `$1,234.56`. */
export function formatMoney(minor: number, currency: string): string {
  const code = currency.toUpperCase();
  let f = moneyFormats.get(code);
  if (!f) {
    try {
      f = new Intl.NumberFormat("en-US", { style: "currency", currency: code });
    } catch {
      f = new Intl.NumberFormat("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
    }
    moneyFormats.set(code, f);
  }
  const digits = f.resolvedOptions().maximumFractionDigits ?? 2;
  return f.format(minor / 10 ** digits);
}

/** A fraction as a percentage with one decimal; an em dash for none. */
export function formatRate(r: number | null | undefined): string {
  return r == null ? "—" : `${(r * 100).toFixed(1)}%`;
}
