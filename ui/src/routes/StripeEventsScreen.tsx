// The stored Stripe webhook events, newest first, filtered by type, status and customer or
// user (in the route's search params); the selected event's raw JSON; a dry run of one event or
// a selection (each user's state before and after, computed by the engine in a transaction it
// rolls back), the real replay behind a confirmation, and the import of an events file.
import { useEffect, useMemo, useState } from "react";
import { keepPreviousData, useInfiniteQuery, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { getRouteApi, useNavigate } from "@tanstack/react-router";
import { open } from "@tauri-apps/plugin-dialog";
import { api } from "../api";
import { ErrorNote } from "../components/ErrorNote";
import { Dialog } from "../components/Dialog";
import { JsonView } from "../components/JsonView";
import { formatCount, formatTime } from "../format";
import { ActionButton } from "./actions";
import type { BillingState, ReplayReport, StripeEventQuery } from "../types";

export type StripeSearch = { type?: string; status?: string; customer?: string; event?: string };

export const EVENT_STATUSES = ["pending", "applied", "failed", "ignored"] as const;
const PAGE = 100;
const stripeRoute = getRouteApi("/stripe");

export function parseStripeSearch(raw: Record<string, unknown>): StripeSearch {
  const out: StripeSearch = {};
  for (const k of ["type", "customer", "event"] as const) {
    const v = raw[k];
    if (typeof v === "string" && v.trim()) out[k] = v.trim();
  }
  const s = raw.status;
  if (typeof s === "string" && (EVENT_STATUSES as readonly string[]).includes(s)) out.status = s;
  return out;
}

export function toStripeQuery(s: StripeSearch, cursor: string | null): StripeEventQuery {
  return { type: s.type ?? null, status: s.status ?? null, customer: s.customer ?? null, cursor, limit: PAGE };
}

/** The fields of a billing state that differ, as [field, before, after] rows. */
export function diffRows(before: BillingState, after: BillingState): [string, string, string][] {
  const credits = (b: BillingState) => b.credits.map((c) => `${c.metric}: ${c.balance}`).join(", ") || "none";
  const rows: [string, string, string][] = [
    ["Account", before.account_status ?? "—", after.account_status ?? "—"],
    ["Subscription", before.subscription_status ?? "—", after.subscription_status ?? "—"],
    ["Plan", before.plan_version ?? "—", after.plan_version ?? "—"],
    ["Credits", credits(before), credits(after)],
  ];
  return rows;
}

export function StripeEventsScreen() {
  const search = stripeRoute.useSearch();
  const navigate = useNavigate({ from: "/stripe" });
  const client = useQueryClient();
  const list = useInfiniteQuery({
    queryKey: ["stripe-events", search.type, search.status, search.customer],
    queryFn: ({ pageParam }) => api.stripeEvents(toStripeQuery(search, pageParam)),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.next_cursor,
    placeholderData: keepPreviousData,
  });
  const events = useMemo(() => list.data?.pages.flatMap((p) => p.events) ?? [], [list.data]);
  const [checked, setChecked] = useState<string[]>([]);
  const chosen = checked.length > 0 ? checked : search.event ? [search.event] : [];
  const [report, setReport] = useState<ReplayReport | null>(null);
  const [confirming, setConfirming] = useState(false);
  const [reason, setReason] = useState("");
  useEffect(() => setReport(null), [search.event, checked]);

  const dryRun = useMutation({
    mutationFn: () => api.replayStripeEvents({ ids: chosen, dry_run: true, reason: null }),
    onSuccess: setReport,
  });
  const replay = useMutation({
    mutationFn: () => api.replayStripeEvents({ ids: chosen, dry_run: false, reason: reason.trim() || null }),
    onSuccess: (r) => {
      setConfirming(false);
      setReport(r);
      client.invalidateQueries({ queryKey: ["stripe-events"] });
      client.invalidateQueries({ queryKey: ["stripe-event"] });
      client.invalidateQueries({ queryKey: ["audit"] });
      client.invalidateQueries({ queryKey: ["users"] });
      client.invalidateQueries({ queryKey: ["user"] });
    },
  });
  const setFilter = (patch: Partial<StripeSearch>) => navigate({ search: (p) => parseStripeSearch({ ...p, ...patch }), replace: true });
  const toggle = (id: string) => setChecked((c) => (c.includes(id) ? c.filter((x) => x !== id) : [...c, id]));

  return (
    <div className="page">
      <header className="page-head">
        <h1>Stripe events</h1>
        <span className="muted">{formatCount(events.length)} shown, newest first</span>
        {list.isFetching && !list.isPending && <span className="spinner" aria-label="Loading" />}
      </header>
      <div className="filters">
        <TextFilter label="Type" placeholder="Type (invoice.paid)" value={search.type} onChange={(type) => setFilter({ type })} testId="stripe-filter-type" />
        <select aria-label="Status" data-testid="stripe-filter-status" value={search.status ?? ""} onChange={(e) => setFilter({ status: e.target.value || undefined })}>
          <option value="">Any status</option>
          {EVENT_STATUSES.map((s) => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
        </select>
        <TextFilter label="Customer or user" placeholder="cus_… or usr_…" value={search.customer} onChange={(customer) => setFilter({ customer })} testId="stripe-filter-customer" />
        {(search.type || search.status || search.customer) && (
          <button type="button" className="quiet" onClick={() => navigate({ search: (p) => ({ event: p.event }) })}>
            Clear filters
          </button>
        )}
      </div>
      <ImportEvents />
      <ErrorNote error={list.error} />
      <div className="table-wrap">
        <table className="data stripe-events">
          <thead>
            <tr>
              <th aria-label="Select" />
              <th>Created</th>
              <th>Type</th>
              <th>Status</th>
              <th>Customer</th>
              <th>User</th>
              <th>Event</th>
            </tr>
          </thead>
          <tbody>
            {events.map((e) => (
              <tr
                key={e.id}
                data-testid="event-row"
                data-id={e.id}
                data-type={e.type}
                data-status={e.status}
                className={e.id === search.event ? "selected" : undefined}
                onClick={() => navigate({ search: (p) => ({ ...p, event: e.id }) })}
              >
                <td onClick={(ev) => ev.stopPropagation()}>
                  <input type="checkbox" aria-label={`Select ${e.id}`} data-testid="event-check" checked={checked.includes(e.id)} onChange={() => toggle(e.id)} />
                </td>
                <td className="nowrap">{formatTime(e.created)}</td>
                <td className="mono">{e.type}</td>
                <td>
                  <span className={`pill ev-${e.status}`} title={e.error ?? undefined}>
                    {e.status}
                  </span>
                </td>
                <td className="mono ellipsis">{e.customer_id ?? "—"}</td>
                <td className="mono ellipsis">{e.user_id ?? "—"}</td>
                <td className="mono ellipsis" title={e.id}>
                  {e.id}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {list.isSuccess && events.length === 0 && <p className="empty">No stored event matches these filters.</p>}
      </div>
      {list.hasNextPage && (
        <button type="button" className="load-more" onClick={() => list.fetchNextPage()} disabled={list.isFetchingNextPage}>
          {list.isFetchingNextPage ? "Loading…" : "Older events"}
        </button>
      )}
      <section className="section stack">
        <h2>
          {checked.length > 0 ? `${checked.length} selected event${checked.length === 1 ? "" : "s"}` : search.event ? <span className="mono">{search.event}</span> : "Select an event"}
        </h2>
        <div className="button-row">
          <ActionButton needs="replay_stripe_events" testId="event-replay-dry-run" onClick={() => chosen.length > 0 && dryRun.mutate()}>
            Dry run
          </ActionButton>
          <ActionButton needs="replay_stripe_events" testId="event-replay" danger onClick={() => chosen.length > 0 && setConfirming(true)}>
            Replay…
          </ActionButton>
          {checked.length > 0 && (
            <button type="button" className="quiet" onClick={() => setChecked([])}>
              Clear selection
            </button>
          )}
        </div>
        <ErrorNote error={dryRun.error ?? (confirming ? null : replay.error)} />
        {report && <ReplayResult report={report} />}
        {search.event && <EventJson id={search.event} />}
      </section>
      {confirming && (
        <Dialog title={`Replay ${chosen.length} event${chosen.length === 1 ? "" : "s"} for real?`} onClose={() => setConfirming(false)} testId="event-replay-dialog">
          <p>The events are applied again, oldest first, and the change is kept and written to the audit log. Run a dry run first to see what changes.</p>
          <p className="mono small-text">{chosen.join(", ")}</p>
          <label className="field">
            <span>Reason (kept in the audit log)</span>
            <textarea data-testid="dialog-reason" rows={2} value={reason} onChange={(e) => setReason(e.target.value)} />
          </label>
          <ErrorNote error={replay.error} />
          <div className="dialog-actions">
            <button type="button" onClick={() => setConfirming(false)}>
              Cancel
            </button>
            <button type="button" className="primary" data-testid="dialog-confirm" disabled={replay.isPending} onClick={() => replay.mutate()}>
              Replay
            </button>
          </div>
        </Dialog>
      )}
    </div>
  );
}

function EventJson({ id }: { id: string }) {
  const detail = useQuery({ queryKey: ["stripe-event", id], queryFn: () => api.stripeEvent(id) });
  const value = useMemo(() => {
    if (!detail.data) return null;
    try {
      return JSON.parse(detail.data.raw) as unknown;
    } catch {
      return detail.data.raw;
    }
  }, [detail.data]);
  return (
    <>
      <ErrorNote error={detail.error} />
      {detail.data && (
        <>
          {detail.data.event.error && <p className="error-inline">{detail.data.event.error}</p>}
          <JsonView value={value} testId="event-json" />
        </>
      )}
    </>
  );
}

export function ReplayResult({ report }: { report: ReplayReport }) {
  return (
    <div className="stack" data-testid={report.dry_run ? "event-dry-run-result" : "event-replay-result"}>
      <p className={report.dry_run ? "muted" : "ok-note"}>
        {report.dry_run ? "Dry run: nothing was kept." : "Replayed and kept (audited)."} {report.events.length} event{report.events.length === 1 ? "" : "s"} applied:{" "}
        {report.events.map((e) => `${e.type} → ${e.outcome}`).join("; ")}
      </p>
      {report.users.length === 0 && <p className="empty-line">These events touch no user.</p>}
      {report.users.map((u) => (
        <table key={u.user_id} className="data state-diff" data-testid="event-diff" data-user={u.user_id}>
          <thead>
            <tr>
              <th className="mono">{u.user_id}</th>
              <th>Before</th>
              <th>After</th>
            </tr>
          </thead>
          <tbody>
            {diffRows(u.before, u.after).map(([field, before, after]) => (
              <tr key={field} className={before !== after ? "changed" : undefined} data-changed={before !== after}>
                <td>{field}</td>
                <td className="mono">{before}</td>
                <td className="mono">{after}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ))}
      {report.events.some((e) => e.changes.length > 0) && (
        <ul className="small-text">
          {report.events.flatMap((e) => e.changes.map((c, i) => <li key={`${e.id}-${i}`}>{c}</li>))}
        </ul>
      )}
    </div>
  );
}

/** An events file, picked with the dialog or typed as a path, stored as pending. */
function ImportEvents() {
  const client = useQueryClient();
  const [path, setPath] = useState("");
  const [unsigned, setUnsigned] = useState(false);
  const imported = useMutation({
    mutationFn: () => api.importStripeEvents(path.trim(), unsigned, "import from the console"),
    onSuccess: () => {
      client.invalidateQueries({ queryKey: ["stripe-events"] });
      client.invalidateQueries({ queryKey: ["audit"] });
    },
  });
  const pick = async () => {
    const chosen = await open({ multiple: false, directory: false, filters: [{ name: "Stripe events", extensions: ["json", "jsonl"] }] });
    if (typeof chosen === "string") setPath(chosen);
  };
  return (
    <form
      className="import-events"
      onSubmit={(e) => {
        e.preventDefault();
        if (path.trim()) imported.mutate();
      }}
    >
      <span className="gate">
        <button type="button" data-testid="stripe-import-open" onClick={pick}>
          Open events file…
        </button>
      </span>
      <input className="mono" aria-label="Events file: path" data-testid="stripe-import-path" value={path} placeholder="or type a path" onChange={(e) => setPath(e.target.value)} spellCheck={false} />
      <label className="check" title="Files carry no Stripe-Signature header, so their events cannot be verified">
        <input type="checkbox" data-testid="stripe-import-unsigned" checked={unsigned} onChange={(e) => setUnsigned(e.target.checked)} />
        Unsigned local test data
      </label>
      <button type="submit" className="primary" data-testid="stripe-import" disabled={!path.trim() || imported.isPending}>
        Import as pending
      </button>
      <ErrorNote error={imported.error} />
      {imported.data && (
        <span className="ok-note" data-testid="stripe-import-result">
          {imported.data.stored.length} stored as pending, {imported.data.duplicates.length} already stored.
        </span>
      )}
    </form>
  );
}

function TextFilter({ label, placeholder, value, onChange, testId }: { label: string; placeholder: string; value?: string; onChange: (v: string) => void; testId: string }) {
  const [draft, setDraft] = useState(value ?? "");
  useEffect(() => setDraft(value ?? ""), [value]);
  useEffect(() => {
    if (draft === (value ?? "")) return;
    const t = setTimeout(() => onChange(draft), 300);
    return () => clearTimeout(t);
  });
  return <input aria-label={label} placeholder={placeholder} value={draft} onChange={(e) => setDraft(e.target.value)} spellCheck={false} className="mono" data-testid={testId} />;
}
