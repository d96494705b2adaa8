// One user, everything support needs on one page: profile, subscription, usage against limits,
// credits, sessions, keys, recent usage, audit trail and refusals, and the actions.
import { useState } from "react";
import { useQuery } from "@tanstack/react-query";
import { Link, getRouteApi, useRouter } from "@tanstack/react-router";
import { api } from "../api";
import { ErrorNote } from "../components/ErrorNote";
import { CopyId } from "../components/CopyButton";
import { formatCount, formatTime, relative, usageRatio } from "../format";
import type { ApiKeyInfo, AuditEntry, UserDetail } from "../types";
import { ACTIONS, ActionButton, ActionDialog, RevokeKeyDialog, type ActionKind } from "./actions";

const userRoute = getRouteApi("/users/$userId");

export function UserScreen() {
  const { userId } = userRoute.useParams();
  const router = useRouter();
  const detail = useQuery({ queryKey: ["user", userId], queryFn: () => api.userDetail(userId) });
  const [open, setOpen] = useState<ActionKind | null>(null);
  const [revoking, setRevoking] = useState<ApiKeyInfo | null>(null);
  const d = detail.data;

  return (
    <div className="page">
      <header className="page-head">
        <button type="button" className="quiet" onClick={() => router.history.back()}>
          ← Back
        </button>
        {detail.isFetching && !detail.isPending && <span className="spinner" aria-label="Loading" />}
      </header>
      <ErrorNote error={detail.error} />
      {d && (
        <div className="detail" data-testid="user-detail" data-user-id={d.user.id}>
          <div className="detail-head">
            <div className="detail-title">
              <h1 className="mono" data-testid="detail-email">{d.user.email}</h1>
              <span className={`pill ${d.user.status}`} data-testid="detail-status">{d.user.status}</span>
              <span className="pill plan" data-testid="detail-plan">{d.subscription.plan_id}</span>
              {d.user.role !== "user" && <span className={`badge role-${d.user.role}`}>{d.user.role}</span>}
              {d.user.full_name && <span className="muted">{d.user.full_name}</span>}
              <Link to="/usage" search={{ user: d.user.id }} className="small-text" data-testid="detail-usage-chart">
                Usage chart
              </Link>
            </div>
            <div className="toolbar">
              {ACTIONS.filter((a) => (d.user.status === "suspended" ? a.kind !== "suspend" : a.kind !== "reactivate"))
                .filter((a) => (a.kind === "resend-verification" ? !d.email_verified_at : a.kind === "reset-two-factor" ? d.mfa_enabled : true))
                .map((a) => (
                <ActionButton
                  key={a.kind}
                  needs={a.needs}
                  testId={`action-${a.kind}`}
                  danger={a.danger}
                  onClick={() => setOpen(a.kind)}
                >
                  {a.label}
                </ActionButton>
              ))}
            </div>
          </div>
          <div className="detail-grid">
            <Profile d={d} />
            <Security d={d} />
            <Subscription d={d} />
            <Usage d={d} />
            <Credits d={d} />
          </div>
          <Section title="Sessions" count={d.sessions.length}>
            <table className="data">
              <thead>
                <tr>
                  <th>Device</th>
                  <th>IP</th>
                  <th>Signed in</th>
                  <th>Last seen</th>
                  <th>Expires</th>
                </tr>
              </thead>
              <tbody>
                {d.sessions.map((s) => (
                  <tr key={s.id}>
                    <td className="ellipsis" title={s.user_agent ?? ""}><span>{s.user_agent ?? "—"}</span></td>
                    <td className="mono">{s.ip ?? "—"}</td>
                    <td>{formatTime(s.created_at)}</td>
                    <td title={formatTime(s.last_seen_at)}>{relative(s.last_seen_at)}</td>
                    <td>{formatTime(s.expires_at)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </Section>
          <Section title="API keys" count={d.keys.length}>
            <table className="data">
              <thead>
                <tr>
                  <th>Name</th>
                  <th>Prefix</th>
                  <th>Scopes</th>
                  <th>Last used</th>
                  <th>Expires</th>
                  <th />
                </tr>
              </thead>
              <tbody>
                {d.keys.map((k) => (
                  <tr key={k.id} className={k.revoked_at ? "revoked" : ""}>
                    <td>{k.name}</td>
                    <td className="mono">{k.prefix}…</td>
                    <td>{k.scopes.join(", ")}</td>
                    <td>{k.last_used_at ? relative(k.last_used_at) : "never"}</td>
                    <td>{k.revoked_at ? `revoked ${formatTime(k.revoked_at)}` : formatTime(k.expires_at)}</td>
                    <td className="right">
                      {!k.revoked_at && (
                        <ActionButton needs="revoke_keys" small danger testId="action-revoke-key" onClick={() => setRevoking(k)}>
                          Revoke
                        </ActionButton>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </Section>
          <Section title="Recent usage" count={d.recent_usage.length}>
            <table className="data">
              <thead>
                <tr>
                  <th>When</th>
                  <th>Metric</th>
                  <th>Kind</th>
                  <th className="num">Amount</th>
                  <th>Request</th>
                </tr>
              </thead>
              <tbody>
                {d.recent_usage.map((u) => (
                  <tr key={u.id} className={u.released ? "revoked" : ""}>
                    <td>{formatTime(u.at)}</td>
                    <td className="mono">{u.metric}</td>
                    <td>{u.kind}{u.released ? " (released)" : ""}</td>
                    <td className="num">{formatCount(u.amount)}</td>
                    <td className="mono">{u.request_id ?? "—"}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </Section>
          {(
            <Section title="Recent refusals" count={d.refusals.length}>
              <table className="data">
                <thead>
                  <tr>
                    <th>When</th>
                    <th>Code</th>
                    <th>Why</th>
                    <th>Request</th>
                  </tr>
                </thead>
                <tbody>
                  {d.refusals.map((r) => (
                    <tr key={r.decision.request_id}>
                      <td className="nowrap">{formatTime(r.decision.at)}</td>
                      <td className="mono">{r.decision.code}</td>
                      <td>
                        {r.summary.join(" ")}
                        {r.fixes.length > 0 && <span className="muted"> Fixes: {r.fixes.join(", ").replace(/_/g, " ")}.</span>}
                      </td>
                      <td className="mono">{r.decision.request_id}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </Section>
          )}
          <Section title="Recent mail" count={d.recent_mail.length}>
            <table className="data" data-testid="detail-mail">
              <thead>
                <tr>
                  <th>When</th>
                  <th>Mail</th>
                  <th>Status</th>
                  <th>Sent</th>
                </tr>
              </thead>
              <tbody>
                {d.recent_mail.map((m) => (
                  <tr key={m.id} data-testid="detail-mail-row" data-template={m.template}>
                    <td className="nowrap">{formatTime(m.created_at)}</td>
                    <td>{m.subject}</td>
                    <td title={m.last_error ?? undefined}>
                      {m.status}
                      {m.attempts > 1 ? ` (${m.attempts} attempts)` : ""}
                    </td>
                    <td>{m.sent_at ? formatTime(m.sent_at) : "—"}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </Section>
          <Section title="Audit trail" count={d.audit.length} extra={<Link to="/audit" search={{ target: d.user.id }}>Open in audit log</Link>}>
            <AuditTable entries={d.audit} />
          </Section>
        </div>
      )}
      {d && open && <ActionDialog kind={open} detail={d} onClose={() => setOpen(null)} />}
      {d && revoking && <RevokeKeyDialog detail={d} apiKey={revoking} onClose={() => setRevoking(null)} />}
    </div>
  );
}

function Section({ title, count, extra, children }: { title: string; count: number; extra?: React.ReactNode; children: React.ReactNode }) {
  return (
    <section className="section">
      <h2>
        {title} <span className="count">{count}</span>
        {extra && <span className="section-extra">{extra}</span>}
      </h2>
      {count === 0 ? <p className="muted empty-line">None.</p> : children}
    </section>
  );
}

function Fact({ label, children }: { label: string; children: React.ReactNode }) {
  return (
    <div className="fact">
      <dt>{label}</dt>
      <dd>{children}</dd>
    </div>
  );
}

function Profile({ d }: { d: UserDetail }) {
  return (
    <section className="panel">
      <h2>Profile</h2>
      <dl className="facts">
        <Fact label="User id"><CopyId value={d.user.id} /></Fact>
        <Fact label="Email">{d.user.email}</Fact>
        <Fact label="Name">{d.user.full_name ?? "—"}</Fact>
        <Fact label="Role">{d.user.role}</Fact>
        <Fact label="Status">{d.user.status}</Fact>
        <Fact label="Created">{formatTime(d.user.created_at)}</Fact>
        <Fact label="Updated">{formatTime(d.user.updated_at)}</Fact>
        <Fact label="Stripe customer">{d.subscription.stripe_customer_id ? <CopyId value={d.subscription.stripe_customer_id} /> : "—"}</Fact>
      </dl>
    </section>
  );
}

function Security({ d }: { d: UserDetail }) {
  return (
    <section className="panel">
      <h2>Security</h2>
      <dl className="facts">
        <Fact label="Email">
          <span data-testid="detail-email-verified">{d.email_verified_at ? `verified ${formatTime(d.email_verified_at)}` : "not verified"}</span>
        </Fact>
        <Fact label="Two-factor">
          <span data-testid="detail-mfa">{d.mfa_enabled ? "on (TOTP)" : "off"}</span>
        </Fact>
        {d.mfa_enabled && <Fact label="Recovery codes left">{d.recovery_codes_left}</Fact>}
      </dl>
    </section>
  );
}

function Subscription({ d }: { d: UserDetail }) {
  const s = d.subscription;
  return (
    <section className="panel">
      <h2>Subscription</h2>
      <dl className="facts">
        <Fact label="Plan">
          <span className="mono">{s.plan}</span> <span className="muted">{s.plan_name}</span>
        </Fact>
        {s.effective_plan !== s.plan && <Fact label="Limits of"><span className="mono">{s.effective_plan}</span></Fact>}
        <Fact label="Status">{s.status}{s.cancel_at_period_end ? ", cancels at period end" : ""}</Fact>
        <Fact label="Period">{formatTime(s.current_period_start)} → {formatTime(s.current_period_end)}</Fact>
        {s.scheduled_plan && <Fact label="Scheduled"><span className="mono">{s.scheduled_plan}</span> at period end</Fact>}
        {s.trial_end && <Fact label="Trial ends">{formatTime(s.trial_end)}</Fact>}
        {s.grace_until && <Fact label="Grace until">{formatTime(s.grace_until)}</Fact>}
        <Fact label="Subscription id"><CopyId value={s.id} /></Fact>
        {s.stripe_subscription_id && <Fact label="Stripe subscription"><CopyId value={s.stripe_subscription_id} /></Fact>}
      </dl>
    </section>
  );
}

function Usage({ d }: { d: UserDetail }) {
  const metrics = Object.entries(d.usage.metrics);
  return (
    <section className="panel">
      <h2>Usage on {d.usage.plan}</h2>
      {metrics.length === 0 && <p className="muted">This plan meters nothing.</p>}
      <ul className="usage">
        {metrics.map(([name, m]) => {
          const ratio = usageRatio(m.used, m.limit);
          return (
            <li key={name}>
              <div className="usage-line">
                <span className="mono">{name}</span>
                <span>
                  {formatCount(m.used)}
                  {m.unlimited || m.limit === null ? " · unlimited" : ` of ${formatCount(m.limit)}`}
                  <span className="muted"> per {m.per}</span>
                </span>
              </div>
              {ratio !== null && (
                <meter min={0} max={1} low={0.75} high={0.95} optimum={0} value={ratio} aria-label={`${name} used`} />
              )}
              <div className="muted small-text">resets {relative(m.resets_at)} ({formatTime(m.resets_at)})</div>
            </li>
          );
        })}
      </ul>
    </section>
  );
}

function Credits({ d }: { d: UserDetail }) {
  const balances = Object.entries(d.usage.credits);
  return (
    <section className="panel">
      <h2>Credits</h2>
      {balances.length === 0 ? (
        <p className="muted">No credit balance.</p>
      ) : (
        <dl className="facts">
          {balances.map(([metric, n]) => (
            <Fact key={metric} label={metric}>
              <span className="num strong">{formatCount(n)}</span>
            </Fact>
          ))}
        </dl>
      )}
      {d.credit_ledger.length > 0 && (
        <table className="data compact">
          <thead>
            <tr>
              <th>When</th>
              <th>Metric</th>
              <th>Kind</th>
              <th className="num">Amount</th>
            </tr>
          </thead>
          <tbody>
            {d.credit_ledger.map((l) => (
              <tr key={l.id}>
                <td className="nowrap">{formatTime(l.at)}</td>
                <td className="mono">{l.metric}</td>
                <td>{l.kind}</td>
                <td className="num">{formatCount(l.amount)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

export function AuditTable({ entries, rowTestId }: { entries: AuditEntry[]; rowTestId?: string }) {
  return (
    <table className="data audit">
      <colgroup>
        <col className="w-when" />
        <col className="w-id" />
        <col className="w-action" />
        <col className="w-id" />
        <col />
        <col className="w-reason" />
        <col className="w-via" />
      </colgroup>
      <thead>
        <tr>
          <th>When</th>
          <th>Actor</th>
          <th>Action</th>
          <th>Target</th>
          <th>Change</th>
          <th>Reason</th>
          <th>Via</th>
        </tr>
      </thead>
      <tbody>
        {entries.map((e) => (
          <tr key={e.id} data-testid={rowTestId} data-action={e.action}>
            <td className="nowrap"><span>{formatTime(e.at)}</span></td>
            <td className="mono ellipsis" title={e.actor}><span>{e.actor}</span></td>
            <td className="mono"><span>{e.action}</span></td>
            <td className="mono ellipsis" title={e.target}>
              {e.target.startsWith("usr_") ? (
                <Link to="/users/$userId" params={{ userId: e.target }}>{e.target}</Link>
              ) : (
                <span>{e.target}</span>
              )}
            </td>
            <td className="mono change" title={`${JSON.stringify(e.before)} → ${JSON.stringify(e.after)}`}>
              {summarize(e.before, e.after)
                .split("; ")
                .map((line) => (
                  <div key={line}>{line}</div>
                ))}
            </td>
            <td className="wrap"><span>{e.reason ?? ""}</span></td>
            <td className="muted"><span>{e.via ?? ""}</span></td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** `plan: free@1 → pro@1` for the fields an audit event changed. */
export function summarize(before: unknown, after: unknown): string {
  const obj = (v: unknown): Record<string, unknown> => (v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : {});
  const b = obj(before);
  const a = obj(after);
  const keys = [...new Set([...Object.keys(b), ...Object.keys(a)])].filter((k) => JSON.stringify(b[k]) !== JSON.stringify(a[k]));
  const show = (v: unknown) => (v === undefined || v === null ? "∅" : typeof v === "string" ? v : JSON.stringify(v));
  return keys.map((k) => `${k}: ${show(b[k])} → ${show(a[k])}`).join("; ");
}
