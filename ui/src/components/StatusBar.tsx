// Always visible: the database, the embedded HTTP API's switch, who is signed in, sign-out.
import { useState } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, describeError } from "../api";
import { useResetSession, useSession } from "../session";
import { formatCount } from "../format";

export function StatusBar() {
  const { staff, database } = useSession();
  const client = useQueryClient();
  const reset = useResetSession();
  const [addr, setAddr] = useState("");
  const status = useQuery({ queryKey: ["status"], queryFn: api.status, refetchInterval: 5_000 });
  const toggle = useMutation({
    mutationFn: () => (status.data?.api.running ? api.stopApi() : api.startApi(addr.trim() || null)),
    onSuccess: () => client.invalidateQueries({ queryKey: ["status"] }),
  });
  const signOut = useMutation({ mutationFn: api.signOut, onSettled: () => reset() });

  const running = status.data?.api.running ?? false;
  const apiError = toggle.error ? describeError(toggle.error) : null;

  return (
    <footer className="statusbar">
      <span className="sb-item" title={database.url}>
        <span className={`dot ${status.isError ? "bad" : "ok"}`} aria-hidden="true" />
        <span className={`badge ${database.backend}`}>{database.backend === "sqlite" ? "SQLite" : "PostgreSQL"}</span>
        <span className="mono ellipsis sb-db">{database.url}</span>
        {status.data && <span className="muted">{formatCount(status.data.users)} users</span>}
      </span>
      <span className="sb-item sb-api">
        <span className="muted">HTTP API</span>
        <button
          type="button"
          className="switch"
          role="switch"
          aria-checked={running}
          aria-label="HTTP API"
          disabled={toggle.isPending || !status.data}
          onClick={() => toggle.mutate()}
        >
          <span className="knob" />
        </button>
        {running ? (
          <span className="mono on">{status.data?.api.addr}</span>
        ) : (
          <input
            className="mono sb-addr"
            aria-label="Listen address"
            placeholder={status.data?.api.default_addr ?? "127.0.0.1:8080"}
            value={addr}
            onChange={(e) => setAddr(e.target.value)}
            spellCheck={false}
          />
        )}
        {apiError && (
          <span className="error-inline" role="alert" title={apiError.message}>
            {apiError.code}
          </span>
        )}
      </span>
      <span className="sb-item sb-staff">
        <span className="mono">{staff.email}</span>
        <span className={`badge role-${staff.role}`}>{staff.role}</span>
        <button type="button" className="quiet small" data-testid="sign-out" onClick={() => signOut.mutate()}>
          Sign out
        </button>
      </span>
    </footer>
  );
}
