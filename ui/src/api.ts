// The one seam between the console and its Rust commands (the generated `commands`). Each
// command's `{status: "error"}` becomes a thrown `CommandFailure` carrying the engine's stable
// `code`, so screens use plain async functions with TanStack Query and switch on `code`, never
// on message text.
import { commands, events } from "./bindings";
import type * as T from "./types";

export class CommandFailure extends Error {
  readonly code: T.CommandError["code"];
  readonly field: string | null;
  /** With `mfa_required`: the signed challenge `signInMfa` completes. */
  readonly challenge: string | null;
  constructor(code: T.CommandError["code"], message: string, field?: string | null, challenge?: string | null) {
    super(message);
    this.name = "CommandFailure";
    this.code = code;
    this.field = field ?? null;
    this.challenge = challenge ?? null;
  }
}

type Result<D> = { status: "ok"; data: D } | { status: "error"; error: T.CommandError };

/** Unwraps a generated binding's result, throwing the command's error as a `CommandFailure`. */
export async function unwrap<D>(pending: Promise<Result<D>>): Promise<D> {
  const result = await pending;
  if (result.status === "ok") return result.data;
  const e = result.error;
  if (e && typeof e === "object" && "code" in e) throw new CommandFailure(e.code, e.message, e.field, e.challenge);
  // Not a CommandError (the IPC layer refused the call itself): keep its text.
  throw new CommandFailure("internal", typeof e === "string" ? e : JSON.stringify(e));
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

/** An optional reason: empty text is no reason (the command says when one is required). */
const why = (reason: string) => reason.trim() || null;

export const api = {
  connectionState: () => unwrap(commands.connectionState()),
  connect: (url: string) => unwrap(commands.connect(url)),
  disconnect: () => unwrap(commands.disconnect()),
  /** The suggested new SQLite file, as a path for the save dialog. */
  defaultDatabasePath: async () => (await commands.defaultDatabasePath()).replace(/^sqlite:\/\//, ""),
  createFirstAdmin: (email: string, password: string) => unwrap(commands.createFirstAdmin(email, password)),
  seedDemo: (users: number) => unwrap(commands.seedDemo(users)),
  onSeedProgress: (handler: (p: T.SeedProgress) => void) => events.seedProgress.listen((e) => handler(e.payload)),

  signIn: (email: string, password: string) => unwrap(commands.signIn(email, password)),
  /** Completes a sign-in that answered `mfa_required`, with a 6-digit code or a recovery code. */
  signInMfa: (challenge: string, factor: { code: string } | { recoveryCode: string }) =>
    unwrap(
      "code" in factor
        ? commands.signInMfa(challenge, factor.code, null)
        : commands.signInMfa(challenge, null, factor.recoveryCode),
    ),
  signOut: () => unwrap(commands.signOut()),
  permissions: () => unwrap(commands.permissions()),

  homeStats: () => unwrap(commands.homeStats()),
  listUsers: (query: T.UserQuery) => unwrap(commands.listUsers(query)),
  userDetail: (userId: string) => unwrap(commands.userDetail(userId)),
  listPlans: () => unwrap(commands.listPlans()),

  changePlan: (userId: string, plan: string, when: T.PlanChangeWhen, reason: string) =>
    unwrap(commands.changePlan(userId, plan, when, why(reason))),
  grantCredits: (userId: string, metric: string, amount: number, reason: string) =>
    unwrap(commands.grantCredits(userId, metric, amount, why(reason))),
  resetUsage: (userId: string, metric: string | null, reason: string) =>
    unwrap(commands.resetUsage(userId, metric, why(reason))),
  clearLimits: (userId: string, reason: string) => unwrap(commands.clearLimits(userId, why(reason))),
  suspendUser: (userId: string, reason: string) => unwrap(commands.suspendUser(userId, why(reason))),
  reactivateUser: (userId: string, reason: string) => unwrap(commands.reactivateUser(userId, why(reason))),
  resendVerification: (userId: string, reason: string) => unwrap(commands.resendVerification(userId, why(reason))),
  resetTwoFactor: (userId: string, reason: string) => unwrap(commands.resetTwoFactor(userId, why(reason))),
  revokeSessions: (userId: string, sessionId: string | null, reason: string) =>
    unwrap(commands.revokeSessions(userId, sessionId, why(reason))),
  revokeKey: (userId: string, keyId: string, reason: string) => unwrap(commands.revokeKey(userId, keyId, why(reason))),
  impersonate: (userId: string, reason: string) => unwrap(commands.impersonate(userId, why(reason))),
  deleteUser: (userId: string, reason: string) => unwrap(commands.deleteUser(userId, why(reason))),

  auditLog: (filter: T.AuditFilter) => unwrap(commands.auditLog(filter)),

  revenueMrr: (months: number) => unwrap(commands.revenueMrr(months)),
  revenueMovements: (months: number) => unwrap(commands.revenueMovements(months)),
  revenueByPlan: (months: number) => unwrap(commands.revenueByPlan(months)),
  revenueChurn: (months: number) => unwrap(commands.revenueChurn(months)),
  /** Writes `table` over `months` as CSV to `path` (from the save dialog). */
  exportRevenueCsv: (table: T.RevenueTable, months: number, path: string) => unwrap(commands.exportRevenueCsv(table, months, path)),

  usageSeries: (query: T.UsageSeriesQuery) => unwrap(commands.usageSeries(query)),

  planCatalog: () => unwrap(commands.planCatalog()),
  checkPlanFile: (path: string) => unwrap(commands.checkPlanFile(path)),
  diffPlanFile: (path: string) => unwrap(commands.diffPlanFile(path)),
  simulatePlanFile: (path: string, eventsPath: string) => unwrap(commands.simulatePlanFile(path, eventsPath)),
  applyPlanFile: (path: string, reason: string) => unwrap(commands.applyPlanFile(path, why(reason))),
  migratePlanVersion: (from: string, to: string, reason: string) => unwrap(commands.migratePlanVersion(from, to, why(reason))),

  stripeEvents: (query: T.StripeEventQuery) => unwrap(commands.stripeEvents(query)),
  stripeEvent: (id: string) => unwrap(commands.stripeEvent(id)),
  replayStripeEvents: (request: T.ReplayRequest) => unwrap(commands.replayStripeEvents(request)),
  importStripeEvents: (path: string, unsignedLocalTestData: boolean, reason: string) =>
    unwrap(commands.importStripeEvents(path, unsignedLocalTestData, why(reason))),

  status: () => unwrap(commands.status()),
  startApi: (addr: string | null) => unwrap(commands.startApi(addr)),
  stopApi: () => unwrap(commands.stopApi()),
  openApiDocs: () => unwrap(commands.openApiDocs()),
  apiListener: (limit: number | null) => unwrap(commands.apiListener(limit)),
};
