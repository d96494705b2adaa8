import { afterEach, describe, expect, it } from "vitest";
import { clearMocks, mockIPC } from "@tauri-apps/api/mocks";
import { api, CommandFailure, describeError, unwrap } from "./api";

afterEach(() => clearMocks());

describe("api", () => {
  it("returns a command's data", async () => {
    mockIPC((cmd, args) => {
      if (cmd === "user_detail") return { user: { id: (args as { userId: string }).userId } };
      throw new Error(`unexpected ${cmd}`);
    });
    const detail = await api.userDetail("usr_1");
    expect(detail.user.id).toBe("usr_1");
  });

  it("throws a refusal as a CommandFailure carrying its code and field", async () => {
    mockIPC(() => {
      throw { code: "validation_failed", message: "a reason is required", field: "reason" };
    });
    const failure = await api.suspendUser("usr_1", "").catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(CommandFailure);
    expect(failure).toMatchObject({ code: "validation_failed", message: "a reason is required", field: "reason" });
  });

  it("unwraps the generated bindings' error results", async () => {
    const refused = unwrap(Promise.resolve({ status: "error" as const, error: { code: "forbidden" as const, message: "no", field: null, fields: [], challenge: null } }));
    await expect(refused).rejects.toMatchObject({ code: "forbidden", message: "no" });
    await expect(unwrap(Promise.resolve({ status: "ok" as const, data: 3 }))).resolves.toBe(3);
  });

  it("describes any thrown value with a code", () => {
    expect(describeError(new CommandFailure("not_found", "no such user"))).toEqual({ code: "not_found", message: "no such user" });
    expect(describeError(new Error("boom"))).toEqual({ code: "internal", message: "boom" });
    expect(describeError("text")).toEqual({ code: "internal", message: "text" });
  });
});
