// Platform figures at a glance; each figure opens the Users list filtered to it.
import { useQuery } from "@tanstack/react-query";
import { Link } from "@tanstack/react-router";
import { api } from "../api";
import { ErrorNote } from "../components/ErrorNote";
import { formatCount } from "../format";
import type { Count, DayCount } from "../types";

export function HomeScreen() {
  const stats = useQuery({ queryKey: ["home-stats"], queryFn: api.homeStats });
  const s = stats.data;
  return (
    <div className="page">
      <header className="page-head">
        <h1>Home</h1>
        {stats.isFetching && <span className="muted">Refreshing…</span>}
      </header>
      <ErrorNote error={stats.error} />
      {s && (
        <>
          <div className="figures">
            <Figure label="Users" value={s.users_total} search={{}} />
            <Figure label="Active" value={s.users_active} search={{ status: "active" }} />
            <Figure label="Suspended" value={s.users_suspended} search={{ status: "suspended" }} tone="warn" />
            <Figure label="Deleted" value={s.users_deleted} search={{ status: "deleted" }} tone="muted" />
          </div>
          <div className="panels">
            <section className="panel">
              <h2>Users by plan</h2>
              <PlanBars counts={s.users_per_plan} />
            </section>
            <section className="panel">
              <h2>Signups per day, last 30 days</h2>
              <DayBars days={s.signups_per_day} linked />
            </section>
            <section className="panel">
              <h2>Active users per day, last 30 days</h2>
              <DayBars days={s.active_users_per_day} />
            </section>
            <section className="panel" data-testid="home-refusals-today">
              <h2>Refusals today, by code</h2>
              {s.refusals_today.length === 0 ? (
                <p className="empty-line muted">No request refused since midnight (UTC).</p>
              ) : (
                <table className="mini">
                  <tbody>
                    {s.refusals_today.map((c) => (
                      <tr key={c.name}>
                        <td className="mono">{c.name}</td>
                        <td className="num">{formatCount(c.count)}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              )}
            </section>
          </div>
        </>
      )}
    </div>
  );
}

type UserFilter = { status?: "active" | "suspended" | "deleted"; plan?: string; from?: string; to?: string };

function Figure({ label, value, search, tone }: { label: string; value: number; search: UserFilter; tone?: string }) {
  return (
    <Link to="/users" search={search} className={`figure ${tone ?? ""}`}>
      <span className="figure-label">{label}</span>
      <span className="figure-value">{formatCount(value)}</span>
    </Link>
  );
}

function PlanBars({ counts }: { counts: Count[] }) {
  const max = Math.max(1, ...counts.map((c) => c.count));
  return (
    <ul className="bars">
      {counts.map((c) => (
        <li key={c.name}>
          <Link to="/users" search={{ plan: c.name }} className="bar-row">
            <span className="mono">{c.name}</span>
            <meter min={0} max={max} value={c.count} />
            <span className="num">{formatCount(c.count)}</span>
          </Link>
        </li>
      ))}
    </ul>
  );
}

function DayBars({ days, linked = false }: { days: DayCount[]; linked?: boolean }) {
  const max = Math.max(1, ...days.map((d) => d.count));
  const total = days.reduce((n, d) => n + d.count, 0);
  return (
    <>
      <div className="columns" role="list">
        {days.map((d) => {
          const bar = <span className="column-bar" style={{ height: `${(d.count / max) * 100}%` }} />;
          const title = `${d.date}: ${formatCount(d.count)}`;
          return linked ? (
            <Link key={d.date} role="listitem" to="/users" search={{ from: d.date, to: d.date }} className="column" title={title}>
              {bar}
            </Link>
          ) : (
            <span key={d.date} role="listitem" className="column" title={title}>
              {bar}
            </span>
          );
        })}
      </div>
      <p className="muted small-text">
        {formatCount(total)} in {days.length} days
        {days.length > 0 && ` · ${days[0].date} to ${days[days.length - 1].date}`}
      </p>
    </>
  );
}
