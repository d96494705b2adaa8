// The plans workbench: the current catalog and every version with its subscribers; a plan file
// (picked with the dialog, or typed as a path) checked with each problem's line, diffed against
// the catalog, simulated on an events file; applied (admins, confirmed) and subscribers migrated
// between versions (audited). The file paths live in the route's search params.
import { useEffect, useState } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { getRouteApi, useNavigate } from "@tanstack/react-router";
import { open } from "@tauri-apps/plugin-dialog";
import { api } from "../api";
import { Dialog } from "../components/Dialog";
import { ErrorNote } from "../components/ErrorNote";
import { formatCount, formatMoney } from "../format";
import { ActionButton } from "./actions";
import type { PlanCheck, PlanProblem, PlanVersionInfo } from "../types";

export type PlansSearch = { file?: string; events?: string };

export function parsePlansSearch(raw: Record<string, unknown>): PlansSearch {
  const out: PlansSearch = {};
  for (const k of ["file", "events"] as const) {
    const v = raw[k];
    if (typeof v === "string" && v.trim()) out[k] = v.trim();
  }
  return out;
}

const plansRoute = getRouteApi("/plans");

export function PlansScreen() {
  const search = plansRoute.useSearch();
  const navigate = useNavigate({ from: "/plans" });
  const catalog = useQuery({ queryKey: ["plans", "catalog"], queryFn: api.planCatalog });
  const [migrating, setMigrating] = useState<PlanVersionInfo | null>(null);
  const setFile = (file: string | undefined) => navigate({ search: (p) => parsePlansSearch({ ...p, file }) });
  const setEvents = (events: string | undefined) => navigate({ search: (p) => parsePlansSearch({ ...p, events }) });

  return (
    <div className="page">
      <header className="page-head">
        <h1>Plans</h1>
        {catalog.data && (
          <span className="muted">
            catalog version {catalog.data.catalog_version} · default <span className="pill plan">{catalog.data.default_plan}</span> · metrics {catalog.data.metrics.join(", ")}
          </span>
        )}
      </header>
      <ErrorNote error={catalog.error} />
      <section className="section">
        <h2>Catalog and versions</h2>
        <div className="table-wrap">
          <table className="data" data-testid="plans-catalog">
            <thead>
              <tr>
                <th>Version</th>
                <th>Name</th>
                <th className="num">Price</th>
                <th>Interval</th>
                <th>State</th>
                <th className="num">Subscribers</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {(catalog.data?.versions ?? []).map((v) => (
                <tr key={v.id} data-testid="plan-version-row" className={v.current ? "" : "old-version"}>
                  <td>
                    <span className="pill plan">{v.label}</span>
                  </td>
                  <td>{v.name}</td>
                  <td className="num">{formatMoney(v.price, v.currency)}</td>
                  <td>{v.interval}</td>
                  <td>
                    {v.current ? <span className="pill active">current</span> : <span className="pill">old</span>}
                    {v.is_default && <span className="pill pill-gap">default</span>}
                  </td>
                  <td className="num">{formatCount(v.subscribers)}</td>
                  <td className="right">
                    {v.subscribers > 0 && (catalog.data?.versions ?? []).some((o) => o.plan_id === v.plan_id && o.id !== v.id) && (
                      <ActionButton needs="migrate_plans" small testId="plans-migrate" onClick={() => setMigrating(v)}>
                        Migrate…
                      </ActionButton>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </section>
      <PlanFile file={search.file} onFile={setFile} events={search.events} onEvents={setEvents} />
      {migrating && catalog.data && <MigrateDialog from={migrating} versions={catalog.data.versions} onClose={() => setMigrating(null)} />}
    </div>
  );
}

/** A path field with a button that fills it from the file dialog. */
function PathPicker({ label, value, onChange, testId, pathTestId, filters }: { label: string; value?: string; onChange: (p: string | undefined) => void; testId: string; pathTestId: string; filters: { name: string; extensions: string[] }[] }) {
  const [draft, setDraft] = useState(value ?? "");
  useEffect(() => setDraft(value ?? ""), [value]);
  const pick = async () => {
    const chosen = await open({ multiple: false, directory: false, filters });
    if (typeof chosen === "string") onChange(chosen);
  };
  return (
    <form
      className="path-picker"
      onSubmit={(e) => {
        e.preventDefault();
        onChange(draft.trim() || undefined);
      }}
    >
      <button type="button" className="primary" data-testid={testId} onClick={pick}>
        {label}
      </button>
      <input className="mono" aria-label={`${label}: path`} data-testid={pathTestId} value={draft} placeholder="or type a path and press Enter" onChange={(e) => setDraft(e.target.value)} spellCheck={false} />
    </form>
  );
}

function PlanFile({ file, onFile, events, onEvents }: { file?: string; onFile: (p: string | undefined) => void; events?: string; onEvents: (p: string | undefined) => void }) {
  const client = useQueryClient();
  const check = useQuery({ queryKey: ["plans", "check", file], queryFn: () => api.checkPlanFile(file!), enabled: !!file, staleTime: 0 });
  const ok = check.data?.ok === true;
  const diff = useQuery({ queryKey: ["plans", "diff", file], queryFn: () => api.diffPlanFile(file!), enabled: !!file && ok, staleTime: 0 });
  const simulation = useQuery({ queryKey: ["plans", "simulate", file, events], queryFn: () => api.simulatePlanFile(file!, events!), enabled: !!file && ok && !!events, staleTime: 0 });
  const [confirming, setConfirming] = useState(false);
  const [reason, setReason] = useState("");
  const apply = useMutation({
    mutationFn: () => api.applyPlanFile(file!, reason),
    onSuccess: () => {
      setConfirming(false);
      client.invalidateQueries({ queryKey: ["plans"] });
      client.invalidateQueries({ queryKey: ["plans-list"] });
    },
  });

  return (
    <section className="section stack">
      <h2>
        Plan file
        {file && (
          <button type="button" className="quiet small section-extra" onClick={() => check.refetch()} title="Read the file again">
            Reload
          </button>
        )}
      </h2>
      <PathPicker label="Open plan file…" value={file} onChange={onFile} testId="plans-open" pathTestId="plans-path" filters={[{ name: "Plan file", extensions: ["toml"] }]} />
      <ErrorNote error={check.error} />
      {check.data && <CheckResult check={check.data} file={file!} />}
      {ok && (
        <>
          <h2>Changes against the current catalog</h2>
          <ErrorNote error={diff.error} />
          {diff.data && (
            <div className="table-wrap" data-testid="plans-diff">
              {diff.data.length === 0 ? (
                <p className="empty">The file equals the current catalog: applying it changes nothing.</p>
              ) : (
                <table className="data">
                  <thead>
                    <tr>
                      <th>Plan</th>
                      <th>Change</th>
                      <th className="num">Subscribers affected</th>
                    </tr>
                  </thead>
                  <tbody>
                    {diff.data.map((c, i) => (
                      <tr key={`${c.plan}-${i}`} data-testid="plans-diff-row">
                        <td>
                          <span className="pill plan">{c.plan}</span>
                        </td>
                        <td className="mono">{c.change}</td>
                        <td className="num">{formatCount(c.subscribers)}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              )}
            </div>
          )}
          <div className="button-row">
            <ActionButton needs="apply_plans" testId="plans-apply" onClick={() => setConfirming(true)}>
              Apply as the new catalog…
            </ActionButton>
            {apply.data && (
              <span className="ok-note" data-testid="plans-applied">
                {apply.data.changed ? `Catalog version ${apply.data.catalog_version}: ${apply.data.new_plan_versions.join(", ") || "no new plan version"}` : "Nothing changed: the file equals the catalog."}
              </span>
            )}
          </div>
          <h2>Simulate on an events file</h2>
          <PathPicker label="Open events file…" value={events} onChange={onEvents} testId="plans-simulate-open" pathTestId="plans-events-path" filters={[{ name: "Usage attempts (JSON lines)", extensions: ["jsonl", "json", "txt"] }]} />
          <ErrorNote error={simulation.error} />
          {simulation.data && (
            <pre className="sim-table" data-testid="plans-simulation">
              {simulation.data.table}
            </pre>
          )}
        </>
      )}
      {confirming && (
        <Dialog title="Apply this plan file as the new catalog?" onClose={() => setConfirming(false)} testId="plans-apply-dialog">
          <p>
            New subscribers get the new versions at once. Existing subscribers stay on their version until they are migrated.
          </p>
          <p className="mono small-text">{file}</p>
          <label className="field">
            <span>Reason (kept in the audit log)</span>
            <textarea data-testid="dialog-reason" rows={2} value={reason} onChange={(e) => setReason(e.target.value)} />
          </label>
          <ErrorNote error={apply.error} />
          <div className="dialog-actions">
            <button type="button" onClick={() => setConfirming(false)}>
              Cancel
            </button>
            <button type="button" className="primary" data-testid="dialog-confirm" disabled={apply.isPending} onClick={() => apply.mutate()}>
              Apply
            </button>
          </div>
        </Dialog>
      )}
    </section>
  );
}

export function CheckResult({ check, file }: { check: PlanCheck; file: string }) {
  return (
    <div className={`check-result ${check.ok ? "ok" : "bad"}`} data-testid="plans-check-result" data-ok={check.ok}>
      {check.ok ? (
        <p className="ok-note">
          No problems in <span className="mono">{file}</span>: plans {check.plans.join(", ")}; metrics {check.metrics.join(", ")}.
        </p>
      ) : (
        <>
          <p className="error">
            <code>{check.problems.length}</code>
            <span>
              problem{check.problems.length === 1 ? "" : "s"} in <span className="mono">{file}</span>
            </span>
          </p>
          <ul className="problems">
            {check.problems.map((p, i) => (
              <Problem key={i} problem={p} />
            ))}
          </ul>
        </>
      )}
    </div>
  );
}

/** One problem: where it is, what is wrong, and the offending line with a caret under the column. */
function Problem({ problem }: { problem: PlanProblem }) {
  const caret = " ".repeat(Math.max(0, problem.column - 1)) + "^";
  return (
    <li className="problem" data-testid="plans-problem" data-line={problem.line} data-column={problem.column}>
      <div>
        <span className="mono strong">
          line {problem.line}, column {problem.column}
        </span>{" "}
        {problem.message}
      </div>
      <pre className="source-line">
        <span className="line-no">{String(problem.line).padStart(4)} │ </span>
        {problem.source_line}
        {"\n"}
        <span className="line-no">{"".padStart(4)} │ </span>
        <span className="caret">{caret}</span>
      </pre>
    </li>
  );
}

function MigrateDialog({ from, versions, onClose }: { from: PlanVersionInfo; versions: PlanVersionInfo[]; onClose: () => void }) {
  const client = useQueryClient();
  const targets = versions.filter((v) => v.plan_id === from.plan_id && v.id !== from.id);
  const [to, setTo] = useState(targets.find((t) => t.current)?.label ?? targets[0]?.label ?? "");
  const [reason, setReason] = useState("");
  const migrate = useMutation({
    mutationFn: () => api.migratePlanVersion(from.label, to, reason),
    onSuccess: () => {
      client.invalidateQueries({ queryKey: ["plans"] });
      onClose();
    },
  });
  return (
    <Dialog title={`Move the ${formatCount(from.subscribers)} subscribers of ${from.label}`} onClose={onClose} testId="plans-migrate-dialog">
      <label className="field">
        <span>To version</span>
        <select data-testid="dialog-plan" value={to} onChange={(e) => setTo(e.target.value)}>
          {targets.map((t) => (
            <option key={t.id} value={t.label}>
              {t.label}
              {t.current ? " (current)" : ""}
            </option>
          ))}
        </select>
      </label>
      <label className="field">
        <span>Reason (kept in the audit log)</span>
        <textarea data-testid="dialog-reason" rows={2} value={reason} onChange={(e) => setReason(e.target.value)} />
      </label>
      <ErrorNote error={migrate.error} />
      <div className="dialog-actions">
        <button type="button" onClick={onClose}>
          Cancel
        </button>
        <button type="button" className="primary" data-testid="dialog-confirm" disabled={!to || migrate.isPending} onClick={() => migrate.mutate()}>
          Migrate
        </button>
      </div>
    </Dialog>
  );
}
