import { useState, type FormEvent } from "react";
import { useMutation } from "@tanstack/react-query";
import { api } from "../api";
import { useResetSession } from "../session";
import type { DatabaseInfo } from "../types";
import { ErrorNote } from "../components/ErrorNote";
import { StartLayout } from "./StartLayout";

/** Staff sign-in: a real session (device "console") that the staff member can see and revoke. */
export function SignInScreen({ database }: { database: DatabaseInfo }) {
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const reset = useResetSession();
  const signIn = useMutation({
    mutationFn: () => api.signIn(email.trim(), password),
    onSuccess: () => reset(),
  });
  const disconnect = useMutation({ mutationFn: api.disconnect, onSuccess: () => reset() });

  const submit = (e: FormEvent) => {
    e.preventDefault();
    signIn.mutate();
  };

  return (
    <StartLayout
      title="Sign in"
      subtitle={
        <>
          Staff accounts only (support, finance, admin) on <span className="mono">{database.url}</span>
        </>
      }
    >
      <form className="stack" onSubmit={submit}>
        <label className="field">
          <span>Email</span>
          <input
            data-testid="sign-in-email"
            type="email"
            autoComplete="username"
            value={email}
            onChange={(e) => setEmail(e.target.value)}
            autoFocus
            required
          />
        </label>
        <label className="field">
          <span>Password</span>
          <input
            data-testid="sign-in-password"
            type="password"
            autoComplete="current-password"
            value={password}
            onChange={(e) => setPassword(e.target.value)}
            required
          />
        </label>
        <ErrorNote error={signIn.error} />
        <button data-testid="sign-in-submit" type="submit" className="primary" disabled={signIn.isPending}>
          {signIn.isPending ? "Signing in…" : "Sign in"}
        </button>
      </form>
      <button type="button" className="quiet" data-testid="disconnect" onClick={() => disconnect.mutate()}>
        Use another database
      </button>
    </StartLayout>
  );
}
