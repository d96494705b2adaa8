import { useState, type FormEvent } from "react";
import { useMutation } from "@tanstack/react-query";
import { api, CommandFailure } from "../api";
import { useResetSession } from "../session";
import type { DatabaseInfo } from "../types";
import { ErrorNote } from "../components/ErrorNote";
import { StartLayout } from "./StartLayout";

/** Staff sign-in: a real session (device "console") that the staff member can see and revoke.
 *  With two-factor on, the password step answers `mfa_required` and a second step asks for a
 *  code from the authenticator app (or a recovery code); only that opens the session. */
export function SignInScreen({ database }: { database: DatabaseInfo }) {
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [challenge, setChallenge] = useState<string | null>(null);
  const reset = useResetSession();
  const signIn = useMutation({
    mutationFn: () => api.signIn(email.trim(), password),
    onSuccess: () => reset(),
    onError: (e) => {
      if (e instanceof CommandFailure && e.code === "mfa_required" && e.challenge) setChallenge(e.challenge);
    },
  });
  const disconnect = useMutation({ mutationFn: api.disconnect, onSuccess: () => reset() });

  const submit = (e: FormEvent) => {
    e.preventDefault();
    signIn.mutate();
  };

  if (challenge) {
    return (
      <SecondFactorStep
        email={email.trim()}
        challenge={challenge}
        onBack={() => {
          setChallenge(null);
          setPassword("");
          signIn.reset();
        }}
      />
    );
  }

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

/** The second step of a sign-in with two-factor on: a 6-digit code, or a recovery code. */
export function SecondFactorStep({ email, challenge, onBack }: { email: string; challenge: string; onBack: () => void }) {
  const [useRecovery, setUseRecovery] = useState(false);
  const [code, setCode] = useState("");
  const reset = useResetSession();
  const verify = useMutation({
    mutationFn: () =>
      api.signInMfa(challenge, useRecovery ? { recoveryCode: code.trim() } : { code: code.replace(/\s/g, "") }),
    onSuccess: () => reset(),
  });

  const submit = (e: FormEvent) => {
    e.preventDefault();
    verify.mutate();
  };
  const switchKind = () => {
    setUseRecovery(!useRecovery);
    setCode("");
    verify.reset();
  };

  return (
    <StartLayout title="Two-factor sign-in" subtitle={<>Two-factor is on for <span className="mono">{email}</span></>}>
      <form className="stack" onSubmit={submit}>
        <label className="field">
          <span>{useRecovery ? "Recovery code" : "6-digit code from your authenticator app"}</span>
          <input
            data-testid="signin-mfa-code"
            type="text"
            autoComplete="one-time-code"
            inputMode={useRecovery ? "text" : "numeric"}
            pattern={useRecovery ? undefined : "[0-9 ]{6,7}"}
            placeholder={useRecovery ? "xxxxx-xxxxx" : "123456"}
            value={code}
            onChange={(e) => setCode(e.target.value)}
            autoFocus
            required
          />
        </label>
        {verify.error instanceof CommandFailure && verify.error.code === "invalid_mfa_code" ? (
          <p className="error" role="alert" data-code="invalid_mfa_code">
            <code>invalid_mfa_code</code>
            <span>
              {useRecovery
                ? "That recovery code is wrong or was already used."
                : "That code is wrong or was already used. Wait for the next code, or go back if this step took more than five minutes."}
            </span>
          </p>
        ) : (
          <ErrorNote error={verify.error} />
        )}
        <button data-testid="signin-mfa-submit" type="submit" className="primary" disabled={verify.isPending}>
          {verify.isPending ? "Checking…" : "Sign in"}
        </button>
      </form>
      <button type="button" className="quiet" data-testid="signin-mfa-switch" onClick={switchKind}>
        {useRecovery ? "Use a code from the app" : "Use a recovery code"}
      </button>
      <button type="button" className="quiet" data-testid="signin-mfa-back" onClick={onBack}>
        Back to email and password
      </button>
    </StartLayout>
  );
}
