// Usage over time, per metric: the whole platform stacked by plan, or one user's (picked by
// search, or opened from the user detail), per day (per hour under three days), with the same
// numbers in a table under the chart. Range, metric and user live in the route's search params.
import { useMemo, useState } from "react";
import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { Link, getRouteApi, useNavigate } from "@tanstack/react-router";
import type uPlot from "uplot";
import { api } from "../api";
import { Chart, type ChartOptions } from "../charts/Chart";
import { cumulative, epochSeconds, stackOrder, stackedBarSeries } from "../charts/series";
import { ErrorNote } from "../components/ErrorNote";
import { RangePicker } from "../components/RangePicker";
import { formatCount, formatTime } from "../format";
import { parseRangeSearch, resolveRange, type RangeSearch } from "../range";
import type { UsageSeries } from "../types";

export type UsageSearch = RangeSearch & { metric?: string; user?: string };

export function parseUsageSearch(raw: Record<string, unknown>): UsageSearch {
  const out: UsageSearch = parseRangeSearch(raw);
  if (typeof raw.metric === "string" && /^[a-z0-9_.-]{1,64}$/i.test(raw.metric)) out.metric = raw.metric;
  if (typeof raw.user === "string" && /^usr_[A-Za-z0-9]+$/.test(raw.user)) out.user = raw.user;
  return out;
}

const usageRoute = getRouteApi("/usage");

export function UsageScreen() {
  const search = usageRoute.useSearch();
  const navigate = useNavigate({ from: "/usage" });
  const range = resolveRange(search, "30d");
  const catalog = useQuery({ queryKey: ["plans", "catalog"], queryFn: api.planCatalog });
  const metric = search.metric ?? catalog.data?.metrics[0] ?? null;
  const query = { metric, user_id: search.user ?? null, from: range.since.slice(0, 10), to: new Date(new Date(range.until).getTime() - 1).toISOString().slice(0, 10) };
  const series = useQuery({ queryKey: ["usage-series", query], queryFn: () => api.usageSeries(query), placeholderData: keepPreviousData, enabled: !!catalog.data || !!search.metric });

  return (
    <div className="page">
      <header className="page-head">
        <h1>Usage</h1>
        <RangePicker value={search} onChange={(next) => navigate({ search: (p) => parseUsageSearch({ metric: p.metric, user: p.user, ...next }) })} />
        {catalog.data && catalog.data.metrics.length > 1 && (
          <select aria-label="Metric" data-testid="usage-metric" value={metric ?? ""} onChange={(e) => navigate({ search: (p) => ({ ...p, metric: e.target.value }) })}>
            {catalog.data.metrics.map((m) => (
              <option key={m} value={m}>
                {m}
              </option>
            ))}
          </select>
        )}
        {series.isFetching && <span className="spinner" aria-label="Loading" />}
      </header>
      <UserPicker user={search.user} onPick={(user) => navigate({ search: (p) => parseUsageSearch({ ...p, user }) })} />
      <ErrorNote error={catalog.error ?? series.error} />
      {series.data && (
        <>
          <section className="section" data-testid="usage-section" data-user-id={series.data.user_id ?? ""}>
            <h2>
              {series.data.user_id ? (
                <>
                  {series.data.metric} used by <span className="mono as-is">{series.data.user_id}</span>
                </>
              ) : (
                `${series.data.metric} used on the platform, by plan`
              )}
              <span className="section-extra muted">per {series.data.grain}, {range.label}</span>
            </h2>
            <UsageChart series={series.data} />
          </section>
          <UsageTable series={series.data} />
        </>
      )}
    </div>
  );
}

/** The whole platform, or one user found by email or id. */
function UserPicker({ user, onPick }: { user?: string; onPick: (user: string | undefined) => void }) {
  const [q, setQ] = useState("");
  const text = q.trim();
  const found = useQuery({ queryKey: ["usage-user-search", text], queryFn: () => api.listUsers({ q: text, limit: 8 }), enabled: text.length >= 3 && !text.startsWith("usr_") });
  return (
    <div className="filters usage-user">
      <div className="segmented" role="radiogroup" aria-label="Whose usage">
        <button type="button" role="radio" aria-checked={!user} className={!user ? "on" : ""} data-testid="usage-platform" onClick={() => onPick(undefined)}>
          Platform
        </button>
        <button type="button" role="radio" aria-checked={!!user} className={user ? "on" : ""} disabled={!user}>
          {user ? <span className="mono">{user}</span> : "One user"}
        </button>
      </div>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (text.startsWith("usr_")) onPick(text);
          else if (found.data?.users.length === 1) onPick(found.data.users[0].id);
        }}
      >
        <input className="mono" aria-label="Find a user" data-testid="usage-user-search" placeholder="Email or usr_… of one user" value={q} onChange={(e) => setQ(e.target.value)} spellCheck={false} />
      </form>
      {found.data && text.length >= 3 && (
        <span className="usage-found">
          {found.data.users.map((u) => (
            <button key={u.id} type="button" className="small" data-testid="usage-user-option" onClick={() => (onPick(u.id), setQ(""))}>
              {u.email}
            </button>
          ))}
          {found.data.users.length === 0 && <span className="muted">No user matches.</span>}
        </span>
      )}
      {user && (
        <Link to="/users/$userId" params={{ userId: user }} className="small-text">
          Open the user
        </Link>
      )}
    </div>
  );
}

function UsageChart({ series }: { series: UsageSeries }) {
  const { options, data } = useMemo(() => {
    const xs = series.buckets.map(epochSeconds);
    const names = series.lines.map((l) => l.plan_id ?? series.metric);
    const layers = series.lines.map((l) => l.net);
    const stack = stackOrder(stackedBarSeries(names, layers, "n", formatCount), cumulative(layers));
    const hourly = series.grain === "hour";
    const label = (s: number) => {
      const t = formatTime(new Date(s * 1000).toISOString());
      return hourly ? t.slice(5) : t.slice(0, 10);
    };
    const options: ChartOptions = {
      scales: { x: { time: true }, n: { range: (_u, min, max) => [Math.min(0, min), Math.max(5, max * 1.1)] } },
      axes: [{ space: 80, values: (_u, splits) => splits.map(label) }, { scale: "n", size: 60 }],
      series: [{ value: (_u, v) => (v == null ? "—" : label(v)) }, ...stack.series],
      legend: { live: true },
      cursor: { points: { show: false } },
    };
    return { options, data: [xs, ...stack.data] as uPlot.AlignedData };
  }, [series]);
  if (series.buckets.length === 0) return <p className="empty">No bucket in this range.</p>;
  return <Chart options={options} data={data} testId="usage-chart" label={`${series.metric} usage per ${series.grain}`} />;
}

function UsageTable({ series }: { series: UsageSeries }) {
  const hourly = series.grain === "hour";
  return (
    <div className="table-wrap">
      <table className="data" data-testid="usage-table">
        <thead>
          <tr>
            <th>{hourly ? "Hour" : "Day"}</th>
            <th className="num">Consumed</th>
            <th className="num">Released</th>
            <th className="num">Reset</th>
            <th className="num">Net</th>
          </tr>
        </thead>
        <tbody>
          {[...series.rows].reverse().map((r) => (
            <tr key={r.at}>
              <td className="nowrap">{hourly ? formatTime(r.at) : r.at.slice(0, 10)}</td>
              <td className="num">{formatCount(r.consumed)}</td>
              <td className="num">{formatCount(r.released)}</td>
              <td className="num">{formatCount(r.reset)}</td>
              <td className="num strong">{formatCount(r.net)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
