// The whole audit log, newest first, filtered by actor, action, target and date, paged by cursor.
import { useEffect, useMemo, useState } from "react";
import { keepPreviousData, useInfiniteQuery } from "@tanstack/react-query";
import { getRouteApi, useNavigate } from "@tanstack/react-router";
import { api } from "../api";
import { ErrorNote } from "../components/ErrorNote";
import { dayEnd, dayStart, formatCount } from "../format";
import type { AuditFilter } from "../types";
import { AuditTable } from "./UserScreen";

export type AuditSearch = { actor?: string; action?: string; target?: string; from?: string; to?: string };

const DAY = /^\d{4}-\d{2}-\d{2}$/;
const PAGE = 100;
const auditRoute = getRouteApi("/audit");

export function parseAuditSearch(raw: Record<string, unknown>): AuditSearch {
  const out: AuditSearch = {};
  for (const k of ["actor", "action", "target"] as const) {
    const v = raw[k];
    if (typeof v === "string" && v.trim()) out[k] = v.trim();
  }
  for (const k of ["from", "to"] as const) {
    const v = raw[k];
    if (typeof v === "string" && DAY.test(v)) out[k] = v;
  }
  return out;
}

export function toAuditFilter(s: AuditSearch, cursor: string | null): AuditFilter {
  return {
    actor: s.actor ?? null,
    action: s.action ?? null,
    target: s.target ?? null,
    since: s.from ? dayStart(s.from) : null,
    until: s.to ? dayEnd(s.to) : null,
    cursor,
    limit: PAGE,
  };
}

export function AuditScreen() {
  const search = auditRoute.useSearch();
  const navigate = useNavigate({ from: "/audit" });
  const log = useInfiniteQuery({
    queryKey: ["audit", search],
    queryFn: ({ pageParam }) => api.auditLog(toAuditFilter(search, pageParam)),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.next_cursor,
    placeholderData: keepPreviousData,
  });
  const entries = useMemo(() => log.data?.pages.flatMap((p) => p.entries) ?? [], [log.data]);

  return (
    <div className="page">
      <header className="page-head">
        <h1>Audit log</h1>
        <span className="muted">{formatCount(entries.length)} shown, newest first</span>
        {log.isFetching && !log.isPending && <span className="spinner" aria-label="Loading" />}
      </header>
      <div className="filters">
        <TextFilter label="Actor" placeholder="Actor (usr_…)" value={search.actor} onChange={(actor) => navigate({ search: (p) => parseAuditSearch({ ...p, actor }), replace: true })} />
        <TextFilter label="Action" placeholder="e.g. change_plan" value={search.action} onChange={(action) => navigate({ search: (p) => parseAuditSearch({ ...p, action }), replace: true })} />
        <TextFilter label="Target" placeholder="usr_…" value={search.target} onChange={(target) => navigate({ search: (p) => parseAuditSearch({ ...p, target }), replace: true })} />
        <label className="inline-field">
          <span>From</span>
          <input type="date" value={search.from ?? ""} onChange={(e) => navigate({ search: (p) => parseAuditSearch({ ...p, from: e.target.value }) })} />
          <span>to</span>
          <input type="date" value={search.to ?? ""} onChange={(e) => navigate({ search: (p) => parseAuditSearch({ ...p, to: e.target.value }) })} />
        </label>
        {Object.keys(search).length > 0 && (
          <button type="button" className="quiet" onClick={() => navigate({ search: {} })}>
            Clear filters
          </button>
        )}
      </div>
      <ErrorNote error={log.error} />
      <div className="table-wrap">
        <AuditTable entries={entries} rowTestId="audit-row" />
        {log.isSuccess && entries.length === 0 && <p className="empty">No audit event matches these filters.</p>}
      </div>
      {log.hasNextPage && (
        <button type="button" className="load-more" onClick={() => log.fetchNextPage()} disabled={log.isFetchingNextPage}>
          {log.isFetchingNextPage ? "Loading…" : "Older events"}
        </button>
      )}
    </div>
  );
}

function TextFilter({ label, placeholder, value, onChange }: { label: string; placeholder: string; value?: string; onChange: (v: string) => void }) {
  const [draft, setDraft] = useState(value ?? "");
  useEffect(() => setDraft(value ?? ""), [value]);
  useEffect(() => {
    if (draft === (value ?? "")) return;
    const t = setTimeout(() => onChange(draft), 300);
    return () => clearTimeout(t);
  });
  return (
    <input aria-label={label} placeholder={placeholder} value={draft} onChange={(e) => setDraft(e.target.value)} spellCheck={false} className="mono" />
  );
}
