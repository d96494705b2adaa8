// The embedded public HTTP API: switch it on and off, choose where it listens, see its state.
// The status bar's switch is the same command; both refresh the shared `status` query. Traffic
// (requests per second, errors by status and code, latest refusals) is what /metrics counts.
import { useState } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api } from "../api";
import { ErrorNote } from "../components/ErrorNote";
import { CopyButton } from "../components/CopyButton";
import { Link } from "@tanstack/react-router";
import { formatCount, formatTime } from "../format";
import type { ErrorCount, Traffic } from "../types";

export function ApiScreen() {
  const client = useQueryClient();
  const status = useQuery({ queryKey: ["status"], queryFn: api.status, refetchInterval: 5_000 });
  const [addr, setAddr] = useState("");
  const toggle = useMutation({
    mutationFn: () => (status.data?.api.running ? api.stopApi() : api.startApi(addr.trim() || null)),
    onSuccess: (next) => {
      client.setQueryData(["status"], (old: typeof status.data) => (old ? { ...old, api: next } : old));
      client.invalidateQueries({ queryKey: ["status"] });
      client.invalidateQueries({ queryKey: ["api-listener"] });
    },
  });
  const openDocs = useMutation({ mutationFn: api.openApiDocs });
  const listener = useQuery({ queryKey: ["api-listener"], queryFn: () => api.apiListener(20), refetchInterval: 2_000 });
  const s = status.data?.api;
  const running = s?.running ?? false;
  const base = running && s?.addr ? `http://${s.addr}` : null;

  return (
    <div className="page">
      <header className="page-head">
        <h1>API listener</h1>
        <span className="muted">The public HTTP API, served from this console's database</span>
      </header>
      <ErrorNote error={status.error ?? toggle.error} />
      <section className="panel api-panel">
        <div className="api-row">
          <button
            type="button"
            className="switch big"
            role="switch"
            aria-checked={running}
            aria-label="Serve the HTTP API"
            data-testid="api-toggle"
            disabled={toggle.isPending || !s}
            onClick={() => toggle.mutate()}
          >
            <span className="knob" />
          </button>
          <label className="field api-addr">
            <span>Listen address</span>
            <input
              className="mono"
              data-testid="api-address"
              value={running ? (s?.addr ?? "") : addr}
              placeholder={s?.default_addr ?? "127.0.0.1:8080"}
              onChange={(e) => setAddr(e.target.value)}
              readOnly={running}
              spellCheck={false}
            />
          </label>
          <div className="api-state" data-testid="api-status" data-running={running} data-addr={s?.addr ?? ""}>
            <span className={`dot ${running ? "ok" : ""}`} aria-hidden="true" />
            {toggle.isPending ? (running ? "Stopping…" : "Starting…") : running ? <>Listening on <code>{s?.addr}</code></> : "Off"}
          </div>
        </div>
        <p className="hint">
          {running
            ? "Switching off lets requests in flight finish first."
            : `Empty address: ${s?.default_addr ?? "the configured address"} (addr in the settings, TOLLGATE_ADDR). Port 0 picks a free port.`}
        </p>
        {base && (
          <p className="api-links">
            <button type="button" className="primary small" data-testid="api-docs-open" disabled={openDocs.isPending} onClick={() => openDocs.mutate()}>
              Open the API reference
            </button>
            <code data-testid="api-docs-url">{base}/docs</code>
            <CopyButton value={`${base}/docs`} />
            <span className="muted">in your browser: schemas, examples and “try it” against this listener</span>
          </p>
        )}
        {base && <ErrorNote error={openDocs.error} />}
      </section>
      <ErrorNote error={listener.error} />
      {listener.data && <TrafficPanels traffic={listener.data.traffic} />}
    </div>
  );
}

function TrafficPanels({ traffic }: { traffic: Traffic }) {
  return (
    <>
      <div className="figures figures-wide" data-testid="api-traffic">
        <div className="figure static">
          <span className="figure-label">Requests per second (last 10 s)</span>
          <span className="figure-value" data-testid="api-rps">
            {traffic.requests_per_second == null ? "—" : traffic.requests_per_second.toFixed(1)}
          </span>
        </div>
        <div className="figure static">
          <span className="figure-label">Requests served</span>
          <span className="figure-value" data-testid="api-requests">{formatCount(traffic.requests)}</span>
        </div>
        <div className="figure static">
          <span className="figure-label">Error answers</span>
          <span className="figure-value">{formatCount(traffic.errors_by_status.reduce((n, e) => n + e.count, 0))}</span>
        </div>
      </div>
      <div className="panels">
        <section className="panel">
          <h2>Errors by status</h2>
          <Counts counts={traffic.errors_by_status} empty="No error answers." />
        </section>
        <section className="panel">
          <h2>Errors by code</h2>
          <Counts counts={traffic.errors_by_code} empty="No error codes." mono />
        </section>
      </div>
      <section className="section">
        <h2>
          Latest refusals <span className="count">{traffic.latest_refusals.length}</span>
        </h2>
        <div className="table-wrap">
          <table className="data" data-testid="api-refusals">
            <thead>
              <tr>
                <th>At</th>
                <th>Code</th>
                <th className="num">Status</th>
                <th>Route</th>
                <th>User</th>
                <th>Key</th>
                <th>Request</th>
              </tr>
            </thead>
            <tbody>
              {traffic.latest_refusals.map((d) => (
                <tr key={d.request_id}>
                  <td className="nowrap">{formatTime(d.at)}</td>
                  <td>
                    <code>{d.code}</code>
                  </td>
                  <td className="num">{d.status}</td>
                  <td className="mono">{d.route ?? "—"}</td>
                  <td className="mono">{d.user_id ? <Link to="/users/$userId" params={{ userId: d.user_id }}>{d.user_id}</Link> : "—"}</td>
                  <td className="mono">{d.key_prefix ?? "—"}</td>
                  <td className="mono small-text">{d.request_id}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {traffic.latest_refusals.length === 0 && <p className="empty">No refusal recorded.</p>}
        </div>
      </section>
    </>
  );
}

function Counts({ counts, empty, mono }: { counts: ErrorCount[]; empty: string; mono?: boolean }) {
  if (counts.length === 0) return <p className="empty-line muted">{empty}</p>;
  return (
    <table className="mini">
      <tbody>
        {counts.map((c) => (
          <tr key={c.key}>
            <td className={mono ? "mono" : undefined}>{c.key}</td>
            <td className="num">{formatCount(c.count)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
