// Which database the console works on: a SQLite file (opened or created through a file dialog)
// or a PostgreSQL URL; recent connections are remembered by the app, never with a password.
import { useState, type FormEvent } from "react";
import { useMutation } from "@tanstack/react-query";
import { open, save } from "@tauri-apps/plugin-dialog";
import { api } from "../api";
import { useResetSession } from "../session";
import type { ConnectionState } from "../types";
import { ErrorNote } from "../components/ErrorNote";
import { relative } from "../format";
import { StartLayout } from "./StartLayout";

const SQLITE_FILTERS = [{ name: "SQLite database", extensions: ["db", "sqlite", "sqlite3"] }];

export function ConnectScreen({ state }: { state: ConnectionState | null }) {
  const [url, setUrl] = useState("");
  const reset = useResetSession();
  const connect = useMutation({
    mutationFn: (target: string) => api.connect(target),
    onSuccess: () => reset(),
  });

  const pick = async (mode: "open" | "create") => {
    const path =
      mode === "open"
        ? await open({ multiple: false, directory: false, filters: SQLITE_FILTERS, title: "Open a Tollgate database" })
        : await save({
            defaultPath: await api.defaultDatabasePath().catch(() => undefined),
            filters: SQLITE_FILTERS,
            title: "Create a Tollgate database",
          });
    if (typeof path === "string") connect.mutate(`sqlite://${path}`);
  };

  const submit = (e: FormEvent) => {
    e.preventDefault();
    const target = url.trim();
    if (target) connect.mutate(target);
  };

  return (
    <StartLayout title="Open a database" subtitle="The console works directly on a Tollgate database.">
      {state?.initial_error && (
        <p className="error" role="alert">
          <code>not_connected</code>
          <span>{state.initial_error}</span>
        </p>
      )}
      <div className="button-row">
        <button type="button" className="primary" onClick={() => pick("open")} disabled={connect.isPending}>
          Open SQLite file…
        </button>
        <button type="button" onClick={() => pick("create")} disabled={connect.isPending}>
          Create SQLite file…
        </button>
      </div>
      <form className="stack" onSubmit={submit}>
        <label className="field">
          <span>Database URL</span>
          <input
            data-testid="connect-url"
            className="mono"
            type="text"
            placeholder="postgres://user@host/tollgate or sqlite://path/to/file.db"
            value={url}
            onChange={(e) => setUrl(e.target.value)}
            spellCheck={false}
            autoComplete="off"
          />
        </label>
        <button data-testid="connect" type="submit" className="primary" disabled={connect.isPending || !url.trim()}>
          {connect.isPending ? "Connecting…" : "Connect"}
        </button>
      </form>
      <ErrorNote error={connect.error} />
      {state && state.recent.length > 0 && (
        <section className="recent">
          <h2>Recent</h2>
          <ul>
            {state.recent.map((r) => (
              <li key={r.url}>
                <button type="button" className="link-row" onClick={() => connect.mutate(r.url)} disabled={connect.isPending}>
                  <span className={`badge ${r.backend}`}>{r.backend === "sqlite" ? "SQLite" : "PostgreSQL"}</span>
                  <span className="mono strong">{r.url.split("/").pop()}</span>
                  <span className="mono muted ellipsis" title={r.url}>
                    {r.url}
                  </span>
                  <span className="muted">{relative(r.last_used_ms)}</span>
                </button>
              </li>
            ))}
          </ul>
          {state.recent.some((r) => r.backend === "postgres") && (
            <p className="hint">A PostgreSQL password is not remembered: enter the full URL again to use one.</p>
          )}
        </section>
      )}
    </StartLayout>
  );
}
