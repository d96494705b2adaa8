// Every user, one search box and a few filters, paged by the service's keyset cursor under a
// virtualized table: smooth at a million users because only the visible rows exist.
import { useEffect, useMemo, useRef, useState } from "react";
import { keepPreviousData, useInfiniteQuery, useQuery } from "@tanstack/react-query";
import { getRouteApi, useNavigate } from "@tanstack/react-router";
import { createColumnHelper, flexRender, getCoreRowModel, useReactTable, type SortingState } from "@tanstack/react-table";
import { useVirtualizer } from "@tanstack/react-virtual";
import { api } from "../api";
import { ErrorNote } from "../components/ErrorNote";
import { dayEnd, dayStart, formatCount, formatDate } from "../format";
import type { Role, UserQuery, UserRow, UserSort, UserStatus } from "../types";

const usersRoute = getRouteApi("/users");

export type UserSearch = {
  q?: string;
  plan?: string;
  status?: UserStatus;
  role?: Role;
  /** Created on or after this day (YYYY-MM-DD). */
  from?: string;
  /** Created on or before this day (YYYY-MM-DD). */
  to?: string;
  sort?: UserSort;
};

const STATUSES: UserStatus[] = ["active", "suspended", "deleted"];
const ROLES: Role[] = ["user", "support", "finance", "admin"];
const SORTS: UserSort[] = ["created_desc", "created_asc", "email_asc"];
const DAY = /^\d{4}-\d{2}-\d{2}$/;
const PAGE = 100;
const ROW_HEIGHT = 34;

function pick<V extends string>(value: unknown, allowed: readonly V[]): V | undefined {
  return allowed.includes(value as V) ? (value as V) : undefined;
}
function text(value: unknown): string | undefined {
  return typeof value === "string" && value.trim() !== "" ? value : undefined;
}

/** The Users route's search params, checked: anything unknown is dropped. */
export function parseUserSearch(raw: Record<string, unknown>): UserSearch {
  const day = (v: unknown) => (typeof v === "string" && DAY.test(v) ? v : undefined);
  const out: UserSearch = {
    q: text(raw.q),
    plan: text(raw.plan),
    status: pick(raw.status, STATUSES),
    role: pick(raw.role, ROLES),
    from: day(raw.from),
    to: day(raw.to),
    sort: pick(raw.sort, SORTS),
  };
  for (const k of Object.keys(out) as (keyof UserSearch)[]) if (out[k] === undefined) delete out[k];
  return out;
}

/** The service query for a route's search params and a page cursor. */
export function toUserQuery(s: UserSearch, cursor: string | null): UserQuery {
  return {
    q: s.q ?? null,
    plan: s.plan ?? null,
    status: s.status ?? null,
    role: s.role ?? null,
    created_after: s.from ? dayStart(s.from) : null,
    created_before: s.to ? dayEnd(s.to) : null,
    sort: s.sort ?? null,
    limit: PAGE,
    cursor,
  };
}

const column = createColumnHelper<UserRow>();
const columns = [
  column.accessor("email", { header: "Email" }),
  column.accessor("full_name", { header: "Name", cell: (c) => c.getValue() ?? "" }),
  column.accessor("plan", { header: "Plan" }),
  column.accessor("status", {
    header: "Status",
    cell: (c) => <span className={`pill ${c.getValue()}`}>{c.getValue()}</span>,
  }),
  column.accessor("role", { header: "Role" }),
  column.accessor("created_at", { header: "Created", cell: (c) => formatDate(c.getValue()) }),
];

export function UsersScreen() {
  const search = usersRoute.useSearch();
  const navigate = useNavigate({ from: "/users" });
  const setSearch = (patch: Partial<UserSearch>, replace = false) =>
    navigate({ search: (prev) => parseUserSearch({ ...prev, ...patch }), replace });

  const plans = useQuery({ queryKey: ["plans"], queryFn: api.listPlans, staleTime: 60_000 });
  const planIds = useMemo(() => [...new Set((plans.data ?? []).map((p) => p.plan_id))], [plans.data]);

  const users = useInfiniteQuery({
    queryKey: ["users", search],
    queryFn: ({ pageParam }) => api.listUsers(toUserQuery(search, pageParam)),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.next_cursor,
    placeholderData: keepPreviousData,
  });
  const rows = useMemo(() => users.data?.pages.flatMap((p) => p.users) ?? [], [users.data]);
  const first = users.data?.pages[0];

  const sort = search.sort ?? "created_desc";
  const sorting: SortingState =
    sort === "email_asc" ? [{ id: "email", desc: false }] : [{ id: "created_at", desc: sort === "created_desc" }];
  const table = useReactTable({
    data: rows,
    columns,
    getCoreRowModel: getCoreRowModel(),
    manualSorting: true,
    manualPagination: true,
    state: { sorting },
    getRowId: (r) => r.id,
  });
  const toggleSort = (columnId: string) => {
    if (columnId === "email") setSearch({ sort: "email_asc" });
    if (columnId === "created_at") setSearch({ sort: sort === "created_desc" ? "created_asc" : "created_desc" });
  };

  const scroller = useRef<HTMLDivElement>(null);
  const virtualizer = useVirtualizer({
    count: rows.length,
    getScrollElement: () => scroller.current,
    estimateSize: () => ROW_HEIGHT,
    overscan: 20,
  });
  const items = virtualizer.getVirtualItems();
  const lastIndex = items.length ? items[items.length - 1].index : -1;
  useEffect(() => {
    if (lastIndex >= rows.length - 20 && users.hasNextPage && !users.isFetchingNextPage) users.fetchNextPage();
  }, [lastIndex, rows.length, users.hasNextPage, users.isFetchingNextPage, users]);

  // Keyboard: `/` focuses the search box, arrows move the selection, Enter opens it.
  const searchBox = useRef<HTMLInputElement>(null);
  const [selected, setSelected] = useState(-1);
  useEffect(() => setSelected(-1), [search]);
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const target = e.target as HTMLElement | null;
      const typing = !!target && /^(INPUT|SELECT|TEXTAREA)$/.test(target.tagName);
      const inSearch = target === searchBox.current;
      if (e.key === "/" && !typing) {
        e.preventDefault();
        searchBox.current?.focus();
        searchBox.current?.select();
      } else if ((e.key === "ArrowDown" || e.key === "ArrowUp") && (!typing || inSearch) && rows.length) {
        e.preventDefault();
        const next = Math.max(0, Math.min(rows.length - 1, selected + (e.key === "ArrowDown" ? 1 : -1)));
        setSelected(next);
        virtualizer.scrollToIndex(next, { align: "auto" });
        if (inSearch) scroller.current?.focus();
      } else if (e.key === "Enter" && (!typing || inSearch) && selected >= 0 && rows[selected]) {
        e.preventDefault();
        navigate({ to: "/users/$userId", params: { userId: rows[selected].id } });
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [rows, selected, virtualizer, navigate]);

  const filtered = Object.keys(search).some((k) => k !== "sort");
  const headers = table.getHeaderGroups()[0].headers;

  return (
    <div className="page users-page">
      <header className="page-head">
        <h1>Users</h1>
        <span className="muted" data-testid="user-total">
          {first
            ? `${formatCount(first.total)}${first.total_capped ? "+" : ""} ${first.total === 1 ? "user" : "users"}`
            : users.isPending
              ? "Loading…"
              : ""}
        </span>
        {users.isFetching && !users.isPending && <span className="spinner" aria-label="Loading" />}
      </header>
      <div className="filters">
        <SearchBox inputRef={searchBox} value={search.q ?? ""} onChange={(q) => setSearch({ q }, true)} />
        <select aria-label="Plan" value={search.plan ?? ""} onChange={(e) => setSearch({ plan: e.target.value })}>
          <option value="">Any plan</option>
          {planIds.map((id) => (
            <option key={id} value={id}>
              {id}
            </option>
          ))}
          {search.plan && !planIds.includes(search.plan) && <option value={search.plan}>{search.plan}</option>}
        </select>
        <select aria-label="Status" value={search.status ?? ""} onChange={(e) => setSearch({ status: e.target.value as UserStatus })}>
          <option value="">Any status</option>
          {STATUSES.map((s) => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
        </select>
        <select aria-label="Role" value={search.role ?? ""} onChange={(e) => setSearch({ role: e.target.value as Role })}>
          <option value="">Any role</option>
          {ROLES.map((r) => (
            <option key={r} value={r}>
              {r}
            </option>
          ))}
        </select>
        <label className="inline-field">
          <span>Created</span>
          <input type="date" aria-label="Created from" value={search.from ?? ""} onChange={(e) => setSearch({ from: e.target.value })} />
          <span>to</span>
          <input type="date" aria-label="Created to" value={search.to ?? ""} onChange={(e) => setSearch({ to: e.target.value })} />
        </label>
        {filtered && (
          <button type="button" className="quiet" onClick={() => navigate({ search: search.sort ? { sort: search.sort } : {} })}>
            Clear filters
          </button>
        )}
      </div>
      <ErrorNote error={users.error} />
      <div className="grid" role="table" aria-rowcount={first?.total}>
        <div className="grid-head" role="row">
          {headers.map((h) => {
            const sortable = h.column.id === "email" || h.column.id === "created_at";
            const dir = h.column.getIsSorted();
            return (
              <div key={h.id} role="columnheader" className={`cell col-${h.column.id}`} aria-sort={dir ? (dir === "asc" ? "ascending" : "descending") : undefined}>
                {sortable ? (
                  <button type="button" className="sort" onClick={() => toggleSort(h.column.id)}>
                    {flexRender(h.column.columnDef.header, h.getContext())}
                    <span className="sort-mark">{dir === "asc" ? "▲" : dir === "desc" ? "▼" : ""}</span>
                  </button>
                ) : (
                  flexRender(h.column.columnDef.header, h.getContext())
                )}
              </div>
            );
          })}
        </div>
        <div className="grid-body" ref={scroller} tabIndex={-1}>
          <div className="grid-spacer" style={{ height: virtualizer.getTotalSize() }}>
            {items.map((v) => {
              const row = table.getRowModel().rows[v.index];
              if (!row) return null;
              return (
                <div
                  key={row.id}
                  role="row"
                  data-testid="user-row"
                  data-user-id={row.original.id}
                  className={`grid-row ${v.index === selected ? "selected" : ""}`}
                  style={{ transform: `translateY(${v.start}px)`, height: v.size }}
                  onClick={() => navigate({ to: "/users/$userId", params: { userId: row.original.id } })}
                  onMouseEnter={() => setSelected(v.index)}
                >
                  {row.getVisibleCells().map((c) => (
                    <div key={c.id} role="cell" className={`cell col-${c.column.id}`}>
                      {/* A span, not bare text: WebDriver's visibility check treats text directly
                          inside an overflow-clipped grid cell as hidden. */}
                      <span>{flexRender(c.column.columnDef.cell, c.getContext())}</span>
                    </div>
                  ))}
                </div>
              );
            })}
          </div>
          {users.isSuccess && rows.length === 0 && <p className="empty">No user matches these filters.</p>}
        </div>
        <div className="grid-foot muted">
          {formatCount(rows.length)} loaded{users.hasNextPage ? " · scroll for more" : ""} · <kbd>/</kbd> search · <kbd>↑</kbd>
          <kbd>↓</kbd> move · <kbd>Enter</kbd> open
        </div>
      </div>
    </div>
  );
}

/** The search box keeps its own text and tells the route after a short pause. */
function SearchBox({ value, onChange, inputRef }: { value: string; onChange: (q: string) => void; inputRef: React.RefObject<HTMLInputElement | null> }) {
  const [draft, setDraft] = useState(value);
  useEffect(() => setDraft(value), [value]);
  useEffect(() => {
    if (draft === value) return;
    const t = setTimeout(() => onChange(draft), 250);
    return () => clearTimeout(t);
  });
  return (
    <input
      ref={inputRef}
      data-testid="user-search"
      className="search"
      type="search"
      placeholder="Search email, usr_… or cus_…   ( / )"
      value={draft}
      onChange={(e) => setDraft(e.target.value)}
      spellCheck={false}
      autoComplete="off"
      autoFocus
    />
  );
}
