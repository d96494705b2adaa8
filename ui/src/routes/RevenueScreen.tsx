// Revenue for finance and admin: MRR over months with its movements as stacked bars under the
// line, revenue by plan, churn, ARPU and refunds, one currency at a time (amounts in different
// currencies are never added). Every figure links to its definition in docs/revenue.md.
import { useMemo, useState } from "react";
import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { getRouteApi, useNavigate } from "@tanstack/react-router";
import type uPlot from "uplot";
import { api } from "../api";
import { Chart, type ChartOptions } from "../charts/Chart";
import { cumulative, epochSeconds, stackOrder, stackedBarSeries } from "../charts/series";
import { DataTable, type TableColumn } from "../components/DataTable";
import { Dialog } from "../components/Dialog";
import { ErrorNote } from "../components/ErrorNote";
import { RangePicker } from "../components/RangePicker";
import { ExportCsvButton } from "../components/ExportCsvButton";
import { definitionOf, type Definition } from "../definitions";
import { formatCount, formatMoney, formatRate, formatTime } from "../format";
import { monthsCovering, parseRangeSearch, resolveRange, type RangeSearch } from "../range";
import type { ChurnMonth, MovementMonth, MrrMonth, PlanMonth, RevenueTable } from "../types";

export type RevenueSearch = RangeSearch & { currency?: string };

export function parseRevenueSearch(raw: Record<string, unknown>): RevenueSearch {
  const out: RevenueSearch = parseRangeSearch(raw);
  if (typeof raw.currency === "string" && /^[a-z]{3}$/.test(raw.currency)) out.currency = raw.currency;
  return out;
}

const revenueRoute = getRouteApi("/revenue");

/** Month `YYYY-MM` as the epoch seconds of its first instant (UTC). */
function monthStart(month: string): number {
  return epochSeconds(`${month}-01T00:00:00Z`);
}

export function RevenueScreen() {
  const search = revenueRoute.useSearch();
  const navigate = useNavigate({ from: "/revenue" });
  const range = resolveRange(search, "12m");
  const months = monthsCovering(range.since);
  const firstMonth = range.since.slice(0, 7);
  const lastMonth = range.until.slice(0, 7);
  const opts = { placeholderData: keepPreviousData };
  const mrr = useQuery({ queryKey: ["revenue", "mrr", months], queryFn: () => api.revenueMrr(months), ...opts });
  const movements = useQuery({ queryKey: ["revenue", "movements", months], queryFn: () => api.revenueMovements(months), ...opts });
  const byPlan = useQuery({ queryKey: ["revenue", "by-plan", months], queryFn: () => api.revenueByPlan(months), ...opts });
  const churn = useQuery({ queryKey: ["revenue", "churn", months], queryFn: () => api.revenueChurn(months), ...opts });
  const [shown, setShown] = useState<Definition | null>(null);
  const define = (table: string, column: string) => () => setShown(definitionOf(table, column));

  const currencies = useMemo(() => [...new Set((mrr.data?.rows ?? []).map((r) => r.currency))].sort(), [mrr.data]);
  const currency = search.currency && currencies.includes(search.currency) ? search.currency : (currencies.find((c) => c === "usd") ?? currencies[0] ?? "usd");
  const inRange = <R extends { month: string; currency: string }>(rows: R[] | undefined) =>
    (rows ?? []).filter((r) => r.currency === currency && r.month >= firstMonth && r.month <= lastMonth);
  const mrrRows = inRange(mrr.data?.rows);
  const movementRows = inRange(movements.data?.rows);
  const planRows = inRange(byPlan.data?.rows);
  const churnRows = inRange(churn.data?.rows);
  const money = (v: number) => formatMoney(v, currency);

  const latest = mrrRows[mrrRows.length - 1];
  const latestMove = movementRows[movementRows.length - 1];
  const latestChurn = churnRows[churnRows.length - 1];
  const error = mrr.error ?? movements.error ?? byPlan.error ?? churn.error;

  return (
    <div className="page">
      <header className="page-head">
        <h1>Revenue</h1>
        <RangePicker value={search} fallback="12m" onChange={(next) => navigate({ search: (p) => parseRevenueSearch({ currency: p.currency, ...next }) })} />
        {currencies.length > 1 && (
          <select aria-label="Currency" data-testid="revenue-currency" value={currency} onChange={(e) => navigate({ search: (p) => ({ ...p, currency: e.target.value }) })}>
            {currencies.map((c) => (
              <option key={c} value={c}>
                {c.toUpperCase()}
              </option>
            ))}
          </select>
        )}
        <span className="muted small-text" title="Worked out again at each request">
          {mrr.data ? `as of ${formatTime(mrr.data.as_of)} · ${currency.toUpperCase()}` : ""}
        </span>
        {(mrr.isFetching || movements.isFetching) && <span className="spinner" aria-label="Loading" />}
      </header>
      <ErrorNote error={error} />
      {latest && (
        <div className="figures figures-wide">
          <Figure label="MRR" value={money(latest.mrr)} onDefine={define("mrr", "mrr")} />
          <Figure label="ARR" value={money(latest.arr)} onDefine={define("mrr", "arr")} />
          <Figure label="Paying customers" value={formatCount(latest.paying_customers)} onDefine={define("mrr", "paying_customers")} />
          <Figure label="ARPU" value={money(latest.arpu)} onDefine={define("mrr", "arpu")} />
          <Figure label="Net new MRR" value={latestMove ? money(latestMove.net_new) : "—"} onDefine={define("movements", "net_new")} />
          <Figure label="Customer churn" value={formatRate(latestChurn?.customer_churn_rate)} onDefine={define("churn", "customer_churn_rate")} />
          <Figure label="Revenue churn" value={formatRate(latestChurn?.revenue_churn_rate)} onDefine={define("churn", "revenue_churn_rate")} />
          <Figure label="Refunded" value={money(latest.refunded)} onDefine={define("mrr", "refunded")} />
        </div>
      )}
      <section className="section">
        <h2>
          MRR and its movements, per month
          <span className="section-extra muted">{latest ? `this month so far: ${latest.month}` : ""}</span>
        </h2>
        <MrrChart mrr={mrrRows} movements={movementRows} money={money} />
      </section>
      <TableSection title="MRR, ARR, ARPU, collected and refunded" table="mrr" months={months} rows={mrrRows} columns={mrrColumns(money, define)} rowKey={(r) => r.month} testId="revenue-table-mrr" />
      <TableSection title="Movements" table="movements" months={months} rows={movementRows} columns={movementColumns(money, define)} rowKey={(r) => r.month} />
      <TableSection title="Revenue by plan" table="by_plan" months={months} rows={planRows} columns={planColumns(money, define)} rowKey={(r) => `${r.month}-${r.plan}`} />
      <TableSection title="Churn" table="churn" months={months} rows={churnRows} columns={churnColumns(money, define)} rowKey={(r) => r.month} />
      {shown && (
        <Dialog title={shown.heading} onClose={() => setShown(null)} testId="revenue-definition">
          <p>
            <code>{shown.column}</code>
          </p>
          <p>{shown.text.replace(/`/g, "")}</p>
          <p className="hint">From docs/revenue.md, the definitions the revenue commands, the HTTP API and the CLI share.</p>
          <div className="dialog-actions">
            <button type="button" className="primary" onClick={() => setShown(null)}>
              Close
            </button>
          </div>
        </Dialog>
      )}
    </div>
  );
}

function Figure({ label, value, onDefine }: { label: string; value: string; onDefine: () => void }) {
  return (
    <div className="figure static">
      <span className="figure-label">
        {label}
        <button type="button" className="def-mark" onClick={onDefine} aria-label={`Definition of ${label}`} title="Definition">
          ?
        </button>
      </span>
      <span className="figure-value">{value}</span>
    </div>
  );
}

function TableSection<Row>({ title, table, months, rows, columns, rowKey, testId }: { title: string; table: RevenueTable; months: number; rows: Row[]; columns: TableColumn<Row>[]; rowKey: (r: Row) => string; testId?: string }) {
  return (
    <section className="section">
      <h2>
        {title}
        <span className="section-extra">
          <ExportCsvButton table={table} months={months} />
        </span>
      </h2>
      <DataTable columns={columns} rows={rows} rowKey={rowKey} testId={testId} />
    </section>
  );
}

type Define = (table: string, column: string) => () => void;
type Money = (v: number) => string;

function moneyCol<Row>(key: keyof Row & string, label: string, fmt: Money, define: Define, table: string): TableColumn<Row> {
  return { key, label, numeric: true, get: (r) => r[key] as number, render: (r) => fmt(r[key] as number), define: define(table, key) };
}
function count<Row>(key: keyof Row & string, label: string, define: Define, table: string): TableColumn<Row> {
  return { key, label, numeric: true, get: (r) => r[key] as number, render: (r) => formatCount(r[key] as number), define: define(table, key) };
}
function rate<Row>(key: keyof Row & string, label: string, define: Define, table: string): TableColumn<Row> {
  return { key, label, numeric: true, get: (r) => (r[key] == null ? null : (r[key] as number).toFixed(4)), render: (r) => formatRate(r[key] as number | null), define: define(table, key) };
}
const monthCol = <Row extends { month: string }>(): TableColumn<Row> => ({ key: "month", label: "Month", get: (r) => r.month });
const currencyCol = <Row extends { currency: string }>(): TableColumn<Row> => ({ key: "currency", label: "Currency", get: (r) => r.currency });

function mrrColumns(m: Money, d: Define): TableColumn<MrrMonth>[] {
  return [monthCol(), currencyCol(), moneyCol("mrr", "MRR", m, d, "mrr"), moneyCol("arr", "ARR", m, d, "mrr"), count("paying_customers", "Paying", d, "mrr"), moneyCol("arpu", "ARPU", m, d, "mrr"), moneyCol("collected", "Collected", m, d, "mrr"), moneyCol("refunded", "Refunded", m, d, "mrr"), moneyCol("net_revenue", "Net revenue", m, d, "mrr")];
}
function movementColumns(m: Money, d: Define): TableColumn<MovementMonth>[] {
  return [monthCol(), currencyCol(), moneyCol("start_mrr", "Start MRR", m, d, "movements"), moneyCol("new", "New", m, d, "movements"), moneyCol("expansion", "Expansion", m, d, "movements"), moneyCol("reactivation", "Reactivation", m, d, "movements"), moneyCol("contraction", "Contraction", m, d, "movements"), moneyCol("churned", "Churned", m, d, "movements"), moneyCol("net_new", "Net new", m, d, "movements"), moneyCol("end_mrr", "End MRR", m, d, "movements"), count("new_customers", "New cust.", d, "movements"), count("churned_customers", "Churned cust.", d, "movements")];
}
function planColumns(m: Money, d: Define): TableColumn<PlanMonth>[] {
  return [monthCol(), { key: "plan", label: "Plan", get: (r) => r.plan, render: (r) => <span className="pill plan">{r.plan}</span> }, currencyCol(), count("customers", "Customers", d, "by-plan"), moneyCol("mrr", "MRR", m, d, "by-plan"), moneyCol("collected", "Collected", m, d, "by-plan"), moneyCol("refunded", "Refunded", m, d, "by-plan"), moneyCol("net_revenue", "Net revenue", m, d, "by-plan")];
}
function churnColumns(m: Money, d: Define): TableColumn<ChurnMonth>[] {
  return [monthCol(), currencyCol(), count("customers_at_start", "Customers at start", d, "churn"), count("churned_customers", "Churned", d, "churn"), rate("customer_churn_rate", "Customer churn", d, "churn"), moneyCol("mrr_at_start", "MRR at start", m, d, "churn"), moneyCol("churned_mrr", "Churned MRR", m, d, "churn"), moneyCol("contraction_mrr", "Contraction MRR", m, d, "churn"), rate("revenue_churn_rate", "Revenue churn", d, "churn")];
}

const UP = ["new", "expansion", "reactivation"] as const;
const DOWN = ["contraction", "churned"] as const;

/** The MRR line over the month's movements: gains stacked above zero, losses below, one money axis. */
function MrrChart({ mrr, movements, money }: { mrr: MrrMonth[]; movements: MovementMonth[]; money: Money }) {
  const { options, data } = useMemo(() => {
    const byMonth = new Map(movements.map((m) => [m.month, m]));
    const xs = mrr.map((r) => monthStart(r.month));
    const up = UP.map((k) => mrr.map((r) => (byMonth.get(r.month)?.[k] ?? 0) / 100));
    const down = DOWN.map((k) => mrr.map((r) => -(byMonth.get(r.month)?.[k] ?? 0) / 100));
    const fmt = (v: number) => money(Math.round(v * 100));
    const upStack = stackOrder(stackedBarSeries([...UP], up, "mrr", fmt), cumulative(up));
    const downStack = stackOrder(stackedBarSeries([...DOWN], down, "mrr", fmt, UP.length), cumulative(down));
    const options: ChartOptions = {
      // One money scale: the bars read in the same units as the line, losses below zero.
      scales: { x: { time: true }, mrr: { range: (_u, min, max) => [Math.min(0, min * 1.15), Math.max(10, max * 1.1)] } },
      axes: [
        { space: 70, values: (_u, splits) => splits.map((s) => new Date(s * 1000).toISOString().slice(0, 7)) },
        { scale: "mrr", size: 70, values: (_u, splits) => splits.map((s) => compact(s)) },
      ],
      series: [
        { value: (_u, v) => (v == null ? "—" : new Date(v * 1000).toISOString().slice(0, 7)) },
        ...upStack.series,
        ...downStack.series,
        { label: "MRR", scale: "mrr", stroke: textColour(), width: 2, points: { show: true, size: 5 }, value: (_u, v) => (v == null ? "—" : fmt(v)) },
      ],
      legend: { live: true },
      cursor: { points: { show: false } },
    };
    const data = [xs, ...upStack.data, ...downStack.data, mrr.map((r) => r.mrr / 100)] as uPlot.AlignedData;
    return { options, data };
  }, [mrr, movements, money]);
  if (mrr.length === 0) return <p className="empty">No revenue in this range.</p>;
  return <Chart options={options} data={data} testId="revenue-chart" label="MRR per month with new, expansion, reactivation, contraction and churned MRR" />;
}

function compact(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e6) return `${(v / 1e6).toFixed(1)}M`;
  if (a >= 1e3) return `${(v / 1e3).toFixed(a >= 1e4 ? 0 : 1)}k`;
  return a >= 10 || a === 0 ? String(Math.round(v)) : String(Number(v.toFixed(2)));
}


/** The page's text colour, so that the MRR line reads in light and dark themes. */
function textColour(): string {
  return getComputedStyle(document.documentElement).getPropertyValue("--text").trim() || "#1b1f24";
}
