// What each console button needs from the permission table. The UI only mirrors the table to
// disable buttons with a reason; the commands check it again.
import type { Action, Role } from "./types";

export type Gate = { allowed: true } | { allowed: false; reason: string };

const VERBS: Partial<Record<Action, string>> = {
  suspend_user: "suspend users",
  reactivate_user: "reactivate users",
  change_plan: "change plans",
  grant_credits: "grant or remove credits",
  reset_usage: "reset usage",
  clear_limits: "clear rate limits",
  revoke_sessions: "revoke sessions",
  revoke_keys: "revoke API keys",
  delete_user: "delete users",
  impersonate: "impersonate users",
  view_audit: "read the audit log",
  view_stats: "see platform figures",
  view_revenue: "read revenue",
  view_plans: "read plans",
  apply_plans: "apply plan files",
  migrate_plans: "migrate subscribers between plan versions",
  view_stripe_events: "read Stripe events",
  replay_stripe_events: "replay or import Stripe events",
  resend_verification: "resend verification mail",
  reset_two_factor: "reset two-factor authentication",
};

export function gate(allowed: readonly Action[] | undefined, role: Role | undefined, action: Action): Gate {
  if (allowed?.includes(action)) return { allowed: true };
  const verb = VERBS[action] ?? action.replace(/_/g, " ");
  return { allowed: false, reason: `The ${role ?? "current"} role cannot ${verb}.` };
}
