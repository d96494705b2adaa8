// The back-office actions on one user. Each is a confirmation dialog (with a reason) over one
// command; the refreshed detail replaces the cached one and the lists that show the user are
// refetched. A refusal stays in the dialog with its code and message.
import { useState, type FormEvent, type ReactNode } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api } from "../api";
import { Dialog } from "../components/Dialog";
import { ErrorNote } from "../components/ErrorNote";
import { CopyButton } from "../components/CopyButton";
import { impersonation, useNow } from "../components/Impersonation";
import { useGate } from "../session";
import { formatTime, relative } from "../format";
import type { Action, ApiKeyInfo, Impersonated, PlanChangeWhen, UserDetail } from "../types";

export type ActionKind =
  | "change-plan"
  | "grant-credits"
  | "reset-usage"
  | "clear-limits"
  | "suspend"
  | "reactivate"
  | "revoke-sessions"
  | "impersonate"
  | "resend-verification"
  | "reset-two-factor"
  | "delete";

export const ACTIONS: { kind: ActionKind; label: string; needs: Action; danger?: boolean }[] = [
  { kind: "change-plan", label: "Change plan", needs: "change_plan" },
  { kind: "grant-credits", label: "Credits", needs: "grant_credits" },
  { kind: "reset-usage", label: "Reset usage", needs: "reset_usage" },
  { kind: "clear-limits", label: "Clear limits", needs: "clear_limits" },
  { kind: "revoke-sessions", label: "Revoke sessions", needs: "revoke_sessions" },
  { kind: "impersonate", label: "Impersonate", needs: "impersonate" },
  { kind: "resend-verification", label: "Resend verification", needs: "resend_verification" },
  { kind: "reset-two-factor", label: "Reset two-factor", needs: "reset_two_factor", danger: true },
  { kind: "suspend", label: "Suspend", needs: "suspend_user", danger: true },
  { kind: "reactivate", label: "Reactivate", needs: "reactivate_user" },
  { kind: "delete", label: "Delete", needs: "delete_user", danger: true },
];

/** A toolbar button that is disabled, with the reason on hover, when the role lacks `needs`. */
export function ActionButton({
  needs,
  testId,
  onClick,
  danger,
  children,
  small,
}: {
  needs: Action;
  testId?: string;
  onClick: () => void;
  danger?: boolean;
  children: ReactNode;
  small?: boolean;
}) {
  const g = useGate(needs);
  return (
    <span className="gate" title={g.allowed ? undefined : g.reason}>
      <button
        type="button"
        data-testid={testId}
        className={`${danger ? "danger" : ""} ${small ? "small" : ""}`}
        disabled={!g.allowed}
        aria-disabled={!g.allowed}
        data-disabled-reason={g.allowed ? undefined : g.reason}
        onClick={onClick}
      >
        {children}
      </button>
    </span>
  );
}

/** After any action: the new detail in the cache, and every list that may show the change. */
function useApplied(userId: string) {
  const client = useQueryClient();
  return (detail?: UserDetail) => {
    if (detail) client.setQueryData(["user", userId], detail);
    else client.invalidateQueries({ queryKey: ["user", userId] });
    client.invalidateQueries({ queryKey: ["users"] });
    client.invalidateQueries({ queryKey: ["audit"] });
    client.invalidateQueries({ queryKey: ["home-stats"] });
    client.invalidateQueries({ queryKey: ["status"] });
  };
}

function ReasonField({ value, onChange }: { value: string; onChange: (v: string) => void }) {
  return (
    <label className="field">
      <span>Reason (kept in the audit log)</span>
      <textarea data-testid="dialog-reason" rows={2} value={value} onChange={(e) => onChange(e.target.value)} />
    </label>
  );
}

function ConfirmRow({ pending, label, danger, onCancel }: { pending: boolean; label: string; danger?: boolean; onCancel: () => void }) {
  return (
    <div className="dialog-actions">
      <button type="button" onClick={onCancel}>
        Cancel
      </button>
      <button type="submit" data-testid="dialog-confirm" className={danger ? "danger solid" : "primary"} disabled={pending}>
        {pending ? "Working…" : label}
      </button>
    </div>
  );
}

export function ActionDialog({ kind, detail, onClose }: { kind: ActionKind; detail: UserDetail; onClose: () => void }) {
  const id = detail.user.id;
  const email = detail.user.email;
  const applied = useApplied(id);
  const [reason, setReason] = useState("");
  const [plan, setPlan] = useState(detail.subscription.plan_id);
  const [when, setWhen] = useState<PlanChangeWhen>("now");
  const [amount, setAmount] = useState("");
  const [metric, setMetric] = useState("");
  const creditMetrics = Object.keys(detail.usage.credits);
  const [creditMetric, setCreditMetric] = useState(creditMetrics[0] ?? Object.keys(detail.usage.metrics)[0] ?? "");
  const [token, setToken] = useState<Impersonated | null>(null);
  const plans = useQuery({ queryKey: ["plans"], queryFn: api.listPlans, staleTime: 60_000, enabled: kind === "change-plan" });

  const run = useMutation({
    mutationFn: async (): Promise<UserDetail | Impersonated> => {
      switch (kind) {
        case "change-plan":
          return api.changePlan(id, plan, when, reason);
        case "grant-credits":
          return api.grantCredits(id, creditMetric, Number(amount), reason);
        case "reset-usage":
          return api.resetUsage(id, metric || null, reason);
        case "clear-limits":
          return api.clearLimits(id, reason);
        case "suspend":
          return api.suspendUser(id, reason);
        case "reactivate":
          return api.reactivateUser(id, reason);
        case "revoke-sessions":
          return api.revokeSessions(id, null, reason);
        case "impersonate":
          return api.impersonate(id, reason);
        case "resend-verification":
          return api.resendVerification(id, reason);
        case "reset-two-factor":
          return api.resetTwoFactor(id, reason);
        case "delete":
          return api.deleteUser(id, reason);
      }
    },
    onSuccess: (result) => {
      if (kind === "impersonate") {
        const t = result as Impersonated;
        setToken(t);
        impersonation.set({ userId: id, email, expiresAtMs: new Date(t.expires_at).getTime(), canWrite: t.impersonation.can_write });
        applied(t.detail);
        return;
      }
      applied(result as UserDetail);
      onClose();
    },
  });

  const submit = (e: FormEvent) => {
    e.preventDefault();
    run.mutate();
  };

  const meta = ACTIONS.find((a) => a.kind === kind)!;
  const titles: Record<ActionKind, string> = {
    "change-plan": `Change the plan of ${email}`,
    "grant-credits": `Grant or remove credits for ${email}`,
    "reset-usage": `Reset the usage of ${email}`,
    "clear-limits": `Clear the rate limits of ${email}`,
    suspend: `Suspend ${email}`,
    reactivate: `Reactivate ${email}`,
    "revoke-sessions": `Sign ${email} out everywhere`,
    impersonate: `Impersonate ${email}`,
    "resend-verification": `Send ${email} a new verification mail`,
    "reset-two-factor": `Turn off two-factor for ${email}`,
    delete: `Delete ${email}`,
  };
  const explain: Partial<Record<ActionKind, string>> = {
    suspend: "The account is refused at once: its sessions end and its API keys stop working until reactivated.",
    reactivate: "The account can sign in and use its API keys again.",
    "revoke-sessions": "Every session ends; API keys keep working.",
    "clear-limits": "Forgets the user's rate-limit windows; quotas are not touched.",
    impersonate: "Creates a short-lived access token acting as this user. It is shown once.",
    "resend-verification": "A new link goes to the user's address; earlier links keep working until they expire.",
    "reset-two-factor":
      "The user signs in with the password alone and is told by mail. Check who is asking first, and say how in the reason.",
    delete: "The account is deleted: it cannot sign in, its keys stop working. This cannot be undone from the console.",
  };

  if (token) {
    return (
      <Dialog title={titles.impersonate} onClose={onClose} testId="impersonation-dialog">
        <TokenView token={token} />
        <div className="dialog-actions">
          <button type="button" className="primary" onClick={onClose}>
            Done
          </button>
        </div>
      </Dialog>
    );
  }

  const metrics = Object.keys(detail.usage.metrics);
  return (
    <Dialog title={titles[kind]} onClose={onClose} testId={`dialog-${kind}`}>
      <form className="stack" onSubmit={submit}>
        {explain[kind] && <p className="muted">{explain[kind]}</p>}
        {kind === "change-plan" && (
          <>
            <label className="field">
              <span>New plan (now on {detail.subscription.plan})</span>
              <select data-testid="dialog-plan" value={plan} onChange={(e) => setPlan(e.target.value)}>
                {(plans.data ?? []).map((p) => (
                  <option key={p.plan_id} value={p.plan_id}>
                    {p.plan_id}
                  </option>
                ))}
                {!plans.data && <option value={plan}>{plan}</option>}
              </select>
            </label>
            <fieldset className="radios">
              <legend>When</legend>
              <label>
                <input type="radio" name="when" checked={when === "now"} onChange={() => setWhen("now")} /> Now (new limits apply to
                this window)
              </label>
              <label>
                <input type="radio" name="when" checked={when === "period_end"} onChange={() => setWhen("period_end")} /> At the
                end of the period ({formatTime(detail.subscription.current_period_end)})
              </label>
            </fieldset>
          </>
        )}
        {kind === "grant-credits" && (
          <label className="field">
            <span>Credit metric</span>
            <select value={creditMetric} onChange={(e) => setCreditMetric(e.target.value)}>
              {[...new Set([...creditMetrics, ...Object.keys(detail.usage.metrics)])].map((m) => (
                <option key={m} value={m}>
                  {m}
                  {m in detail.usage.credits ? ` (balance ${detail.usage.credits[m]})` : ""}
                </option>
              ))}
            </select>
          </label>
        )}
        {kind === "grant-credits" && (
          <label className="field">
            <span>Credits (negative removes)</span>
            <input data-testid="dialog-amount" type="number" step={1} value={amount} onChange={(e) => setAmount(e.target.value)} />
          </label>
        )}
        {kind === "reset-usage" && (
          <label className="field">
            <span>Metric</span>
            <select value={metric} onChange={(e) => setMetric(e.target.value)}>
              <option value="">Every metric</option>
              {metrics.map((m) => (
                <option key={m} value={m}>
                  {m}
                </option>
              ))}
            </select>
          </label>
        )}
        <ReasonField value={reason} onChange={setReason} />
        <ErrorNote error={run.error} />
        <ConfirmRow pending={run.isPending} label={meta.label} danger={meta.danger} onCancel={onClose} />
      </form>
    </Dialog>
  );
}

function TokenView({ token: t }: { token: Impersonated }) {
  const token = t.impersonation;
  const expires = new Date(t.expires_at).getTime();
  const now = useNow(expires);
  const valid = expires > now;
  return (
    <div className="stack">
      <p className={valid ? "ok-note" : "error"}>
        {token.can_write ? "Read and write" : "Read-only"} token, {valid ? `expires ${relative(expires, now)}` : "expired"} (
        {formatTime(new Date(expires).toISOString())}).
      </p>
      <div className="token">
        <code className="mono" data-testid="impersonation-token">
          {token.access_token}
        </code>
        <CopyButton value={token.access_token} />
      </div>
      <p className="hint">Use it as <span className="mono">Authorization: {token.token_type} …</span>. It is not shown again.</p>
    </div>
  );
}

/** Revoking one API key: its own small dialog from the keys table. */
export function RevokeKeyDialog({ detail, apiKey, onClose }: { detail: UserDetail; apiKey: ApiKeyInfo; onClose: () => void }) {
  const applied = useApplied(detail.user.id);
  const [reason, setReason] = useState("");
  const run = useMutation({
    mutationFn: () => api.revokeKey(detail.user.id, apiKey.id, reason),
    onSuccess: (d) => {
      applied(d);
      onClose();
    },
  });
  return (
    <Dialog title={`Revoke key ${apiKey.prefix}…`} onClose={onClose} testId="dialog-revoke-key">
      <form
        className="stack"
        onSubmit={(e) => {
          e.preventDefault();
          run.mutate();
        }}
      >
        <p className="muted">
          Requests with <span className="mono">{apiKey.prefix}…</span> ({apiKey.name}) are refused from now on.
        </p>
        <ReasonField value={reason} onChange={setReason} />
        <ErrorNote error={run.error} />
        <ConfirmRow pending={run.isPending} label="Revoke key" danger onCancel={onClose} />
      </form>
    </Dialog>
  );
}
