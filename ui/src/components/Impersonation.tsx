// A time-boxed impersonation token, kept while it is valid so a banner can say so on every
// screen. The token itself is only shown in the dialog that created it.
import { useEffect, useState, useSyncExternalStore } from "react";
import { relative } from "../format";

export type ActiveImpersonation = { userId: string; email: string; expiresAtMs: number; canWrite: boolean };

let current: ActiveImpersonation | null = null;
const listeners = new Set<() => void>();

export const impersonation = {
  set(next: ActiveImpersonation | null) {
    current = next;
    listeners.forEach((l) => l());
  },
  get: () => current,
  subscribe(l: () => void) {
    listeners.add(l);
    return () => listeners.delete(l);
  },
};

/** Re-renders every second while `until` lies ahead; returns now. */
export function useNow(until: number | null): number {
  const [now, setNow] = useState(Date.now);
  useEffect(() => {
    if (until === null || until <= Date.now()) return;
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, [until]);
  return now;
}

export function ImpersonationBanner() {
  const active = useSyncExternalStore(impersonation.subscribe, impersonation.get);
  const now = useNow(active?.expiresAtMs ?? null);
  if (!active || active.expiresAtMs <= now) return null;
  return (
    <div className="banner warn" role="status" data-testid="impersonation-banner">
      <strong>Impersonating {active.email}</strong>
      <span>
        {active.canWrite ? "read and write" : "read-only"} token, expires {relative(active.expiresAtMs, now)}
      </span>
      <button type="button" className="quiet small" onClick={() => impersonation.set(null)}>
        Dismiss
      </button>
    </div>
  );
}
