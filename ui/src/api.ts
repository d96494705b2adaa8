// The one seam between the console and its Rust commands. Each command's `{status: "error"}`
// becomes a thrown `CommandFailure` carrying the engine's stable `code`, so screens use plain
// async functions with TanStack Query and switch on `code`, never on message text.
import { invoke } from "@tauri-apps/api/core";
import { commands } from "./bindings";
import type * as T from "./types";

export class CommandFailure extends Error {
  readonly code: string;
  readonly field: string | null;
  constructor(code: string, message: string, field?: string | null) {
    super(message);
    this.name = "CommandFailure";
    this.code = code;
    this.field = field ?? null;
  }
}

type Result<D> = { status: "ok"; data: D } | { status: "error"; error: T.CommandError };

/** Unwraps a generated binding's result, throwing the command's error as a `CommandFailure`. */
export async function unwrap<D>(pending: Promise<Result<D>>): Promise<D> {
  const result = await pending;
  if (result.status === "ok") return result.data;
  throw new CommandFailure(result.error.code, result.error.message, result.error.field);
}

/** Any thrown value as something a dialog can show: a code and a message. */
export function describeError(e: unknown): { code: string; message: string } {
  if (e instanceof CommandFailure) return { code: e.code, message: e.message };
  if (e instanceof Error) return { code: "internal", message: e.message };
  if (e && typeof e === "object" && "code" in e && "message" in e) {
    return { code: String(e.code), message: String(e.message) };
  }
  return { code: "internal", message: String(e) };
}

async function call<D>(command: string, args?: Record<string, unknown>): Promise<D> {
  try {
    return await invoke<D>(command, args);
  } catch (e) {
    if (e instanceof Error) throw e;
    const err = e as Partial<T.CommandError> | string;
    if (typeof err === "string") throw new CommandFailure("internal", err);
    throw new CommandFailure(err.code ?? "internal", err.message ?? "the command failed", err.field);
  }
}

export const api = {
  connectionState: () => call<T.ConnectionState>("connection_state"),
  connect: (url: string) => call<T.DatabaseInfo>("connect", { url }),
  disconnect: () => call<null>("disconnect"),
  defaultDatabasePath: () => call<string>("default_database_path"),
  createFirstAdmin: (email: string, password: string) =>
    call<T.StaffMember>("create_first_admin", { email, password }),
  seedDemo: (users: number) => call<T.SeedSummary>("seed_demo", { users }),

  signIn: (email: string, password: string) => call<T.StaffMember>("sign_in", { email, password }),
  signOut: () => call<null>("sign_out"),
  permissions: () => call<T.Action[]>("permissions"),

  homeStats: () => call<T.Stats>("home_stats"),
  listUsers: (query: T.UserQuery) => call<T.UserPage>("list_users", { query }),
  userDetail: (userId: string) => call<T.UserDetail>("user_detail", { userId }),
  listPlans: () => call<T.PlanSummary[]>("list_plans"),

  changePlan: (userId: string, plan: string, when: T.PlanChangeWhen, reason: string) =>
    call<T.UserDetail>("change_plan", { userId, plan, when, reason }),
  grantCredits: (userId: string, amount: number, reason: string) =>
    call<T.UserDetail>("grant_credits", { userId, amount, reason }),
  resetUsage: (userId: string, metric: string | null, reason: string) =>
    call<T.UserDetail>("reset_usage", { userId, metric, reason }),
  clearLimits: (userId: string, reason: string) => call<T.UserDetail>("clear_limits", { userId, reason }),
  suspendUser: (userId: string, reason: string) => call<T.UserDetail>("suspend_user", { userId, reason }),
  reactivateUser: (userId: string, reason: string) =>
    call<T.UserDetail>("reactivate_user", { userId, reason }),
  revokeSessions: (userId: string, reason: string) =>
    call<T.UserDetail>("revoke_sessions", { userId, reason }),
  revokeKey: (userId: string, keyId: string, reason: string) =>
    call<T.UserDetail>("revoke_key", { userId, keyId, reason }),
  impersonate: (userId: string, reason: string) =>
    call<T.Impersonation>("impersonate", { userId, reason }),
  deleteUser: (userId: string, reason: string) => call<T.UserDetail>("delete_user", { userId, reason }),

  auditLog: (filter: T.AuditFilter) => call<T.AuditPage>("audit_log", { filter }),

  status: () => unwrap(commands.status()),
  startApi: (addr: string | null) => unwrap(commands.startApi(addr)),
  stopApi: () => unwrap(commands.stopApi()),
};
