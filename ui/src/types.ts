// The console's wire types. Status, ApiStatus and CommandError come from the generated bindings;
// the rest follow the agreed command shape until their generated versions land.
import type { ApiStatus, Backend, Status } from "./bindings";
export type { ApiStatus, Backend, Status };

export type CommandError = { code: string; message: string; field?: string | null };

export type Role = "user" | "support" | "finance" | "admin";
export type UserStatus = "active" | "suspended" | "deleted";
export type UserSort = "created_desc" | "created_asc" | "email_asc";
export type PlanChangeWhen = "now" | "period_end";

export type Action =
  | "list_users" | "view_user" | "suspend_user" | "reactivate_user" | "change_plan"
  | "grant_credits" | "reset_usage" | "clear_limits" | "revoke_sessions" | "revoke_keys"
  | "delete_user" | "impersonate" | "impersonate_with_writes" | "explain_decision"
  | "view_stats" | "view_revenue" | "view_audit" | "export_usage" | "manage_staff";

export type DatabaseInfo = { url: string; backend: Backend; has_staff: boolean; is_empty: boolean };
export type RecentConnection = { url: string; backend: Backend; last_used_ms: number };
export type StaffMember = { user_id: string; email: string; role: Role; session_id: string };
export type ConnectionState = {
  database: DatabaseInfo | null;
  staff: StaffMember | null;
  recent: RecentConnection[];
  initial_error: string | null;
};
export type SeedSummary = { users: number; events: number };
export type SeedProgress = { done: number; total: number };

export type Count = { name: string; count: number };
export type DayCount = { date: string; count: number };
export type Stats = {
  users_total: number;
  users_active: number;
  users_suspended: number;
  users_deleted: number;
  users_per_plan: Count[];
  signups_per_day: DayCount[];
  active_users_per_day: DayCount[];
  refusals_today?: Count[];
};

export type UserQuery = {
  q: string | null;
  plan: string | null;
  status: UserStatus | null;
  role: Role | null;
  created_after: string | null;
  created_before: string | null;
  sort: UserSort | null;
  limit: number | null;
  cursor: string | null;
};
export type UserRow = {
  id: string;
  email: string;
  full_name: string | null;
  role: string;
  status: string;
  plan: string;
  created_at: string;
};
export type UserPage = { users: UserRow[]; total: number; total_capped: boolean; next_cursor: string | null };

export type User = {
  id: string;
  email: string;
  full_name: string | null;
  role: Role;
  status: UserStatus;
  created_at: string;
  updated_at: string;
};
export type SubscriptionView = {
  id: string;
  user_id: string;
  plan: string;
  plan_id: string;
  plan_name: string;
  effective_plan: string;
  status: string;
  current_period_start: string;
  current_period_end: string;
  cancel_at_period_end: boolean;
  scheduled_plan: string | null;
  trial_end: string | null;
  grace_until: string | null;
  stripe_customer_id: string | null;
  stripe_subscription_id: string | null;
};
export type MetricUsage = {
  limit: number | null;
  used: number;
  remaining: number | null;
  unlimited: boolean;
  resets_at: string;
  per: string;
  credits: number | null;
};
export type UsageSummary = {
  plan: string;
  period: { start: string; end: string };
  metrics: { [metric: string]: MetricUsage };
  credits: { [metric: string]: number };
};
export type SessionInfo = {
  id: string;
  user_agent: string | null;
  ip: string | null;
  created_at: string;
  last_seen_at: string;
  expires_at: string;
  current: boolean;
};
export type ApiKeyInfo = {
  id: string;
  name: string;
  prefix: string;
  scopes: string[];
  created_at: string;
  last_used_at: string | null;
  expires_at: string | null;
  revoked_at: string | null;
};
export type UsageEventView = {
  id: string;
  metric: string;
  kind: string;
  amount: number;
  at: string;
  request_id: string | null;
  released: boolean;
};
export type AuditEntry = {
  id: string;
  at: string;
  actor: string;
  action: string;
  target: string;
  before: unknown;
  after: unknown;
  reason: string | null;
  via: string | null;
};
export type LedgerEntry = { id: string; metric: string; amount: number; reason: string | null; at: string };
export type Refusal = { request_id: string; at: string; code: string; summary: string[] };
export type UserDetail = {
  user: User;
  subscription: SubscriptionView;
  usage: UsageSummary;
  sessions: SessionInfo[];
  keys: ApiKeyInfo[];
  recent_usage: UsageEventView[];
  audit: AuditEntry[];
  ledger?: LedgerEntry[];
  refusals?: Refusal[];
};
export type PlanSummary = { id: string; name: string; version: number };
export type Impersonation = {
  access_token: string;
  token_type: string;
  expires_in: number;
  can_write: boolean;
  expires_at_ms?: number;
};
export type AuditFilter = {
  actor: string | null;
  target: string | null;
  action: string | null;
  since: string | null;
  until: string | null;
  cursor: string | null;
  limit: number | null;
};
export type AuditPage = { entries: AuditEntry[]; next_cursor: string | null };
