// First run on a database with no staff: create the first admin, and on an empty SQLite file
// offer demo data (the `dev seed` generator) so a newcomer sees a populated console.
import { useEffect, useState, type FormEvent } from "react";
import { useMutation } from "@tanstack/react-query";
import { api } from "../api";
import { useResetSession } from "../session";
import type { DatabaseInfo, SeedProgress } from "../types";
import { ErrorNote } from "../components/ErrorNote";
import { formatCount } from "../format";
import { StartLayout } from "./StartLayout";

const DEMO_USERS = 5_000;

export function SetupScreen({ database }: { database: DatabaseInfo }) {
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [demo, setDemo] = useState(database.is_empty && database.backend === "sqlite");
  const [progress, setProgress] = useState<SeedProgress | null>(null);
  const reset = useResetSession();
  const disconnect = useMutation({ mutationFn: api.disconnect, onSuccess: () => reset() });

  useEffect(() => {
    let unlisten: (() => void) | undefined;
    api
      .onSeedProgress(setProgress)
      .then((u) => (unlisten = u))
      .catch(() => {});
    return () => unlisten?.();
  }, []);

  const setup = useMutation({
    mutationFn: async () => {
      await api.createFirstAdmin(email.trim(), password);
      if (demo) await api.seedDemo(DEMO_USERS);
    },
    onSettled: () => reset(),
  });

  const submit = (e: FormEvent) => {
    e.preventDefault();
    setup.mutate();
  };

  return (
    <StartLayout
      title="Set up this database"
      subtitle={
        <>
          <span className="mono">{database.url}</span> has no staff account yet. Create the first admin.
        </>
      }
    >
      <form className="stack" onSubmit={submit}>
        <label className="field">
          <span>Admin email</span>
          <input data-testid="setup-email" type="email" value={email} onChange={(e) => setEmail(e.target.value)} required autoFocus />
        </label>
        <label className="field">
          <span>Password</span>
          <input
            data-testid="setup-password"
            type="password"
            autoComplete="new-password"
            value={password}
            onChange={(e) => setPassword(e.target.value)}
            minLength={8}
            required
          />
        </label>
        {database.is_empty && database.backend === "sqlite" && (
          <label className="check">
            <input type="checkbox" checked={demo} onChange={(e) => setDemo(e.target.checked)} />
            <span>Fill it with demo data ({formatCount(DEMO_USERS)} users with plans, usage and sessions)</span>
          </label>
        )}
        {setup.isPending && demo && (
          <div className="seed-progress">
            <progress max={progress?.total || 1} value={progress?.done ?? 0} />
            <span className="muted">
              {progress ? `${progress.stage}: ${formatCount(progress.done)} of ${formatCount(progress.total)}` : "Starting…"}
            </span>
          </div>
        )}
        <ErrorNote error={setup.error} />
        <button data-testid="setup-submit" type="submit" className="primary" disabled={setup.isPending}>
          {setup.isPending ? "Setting up…" : "Create admin and open"}
        </button>
      </form>
      <button type="button" className="quiet" data-testid="disconnect" onClick={() => disconnect.mutate()} disabled={setup.isPending}>
        Use another database
      </button>
    </StartLayout>
  );
}
