// The embedded public HTTP API: switch it on and off, choose where it listens, see its state.
// The status bar's switch is the same command; both refresh the shared `status` query.
import { useState } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api } from "../api";
import { ErrorNote } from "../components/ErrorNote";
import { CopyButton } from "../components/CopyButton";

export function ApiScreen() {
  const client = useQueryClient();
  const status = useQuery({ queryKey: ["status"], queryFn: api.status, refetchInterval: 5_000 });
  const [addr, setAddr] = useState("");
  const toggle = useMutation({
    mutationFn: () => (status.data?.api.running ? api.stopApi() : api.startApi(addr.trim() || null)),
    onSuccess: (next) => {
      client.setQueryData(["status"], (old: typeof status.data) => (old ? { ...old, api: next } : old));
      client.invalidateQueries({ queryKey: ["status"] });
    },
  });
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
            <code data-testid="api-docs-url">{base}/docs</code>
            <CopyButton value={`${base}/docs`} />
            <span className="muted">the interactive API documentation: paste it into your browser</span>
          </p>
        )}
      </section>
    </div>
  );
}
