// Component test of the sign-in screen's second step, with the Tauri IPC mocked at its boundary.
import { afterEach, describe, expect, it } from "vitest";
import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { clearMocks, mockIPC } from "@tauri-apps/api/mocks";
import { SignInScreen } from "./start/SignInScreen";

afterEach(() => {
  cleanup();
  clearMocks();
});

const refusal = (code: string, message: string, challenge: string | null = null) => ({
  code, message, field: null, fields: [], challenge,
});

function renderSignIn() {
  const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  return render(
    <QueryClientProvider client={client}>
      <SignInScreen database={{ url: "sqlite://t.db", backend: "sqlite", has_staff: true, is_empty: false }} />
    </QueryClientProvider>,
  );
}

function signInWithPassword() {
  fireEvent.change(screen.getByTestId("sign-in-email"), { target: { value: "s@staff.test" } });
  fireEvent.change(screen.getByTestId("sign-in-password"), { target: { value: "staff-password" } });
  fireEvent.click(screen.getByTestId("sign-in-submit"));
}

describe("two-factor sign-in", () => {
  it("asks for a code after the password, shows a wrong one plainly, then completes with the challenge", async () => {
    const calls: unknown[] = [];
    mockIPC((cmd, args) => {
      if (cmd === "sign_in") throw refusal("mfa_required", "a second factor is required", "chal_1");
      if (cmd === "sign_in_mfa") {
        calls.push(args);
        if ((args as { code: string | null }).code === "111111") throw refusal("invalid_mfa_code", "invalid code");
        return { user_id: "usr_s", email: "s@staff.test", full_name: null, role: "support", session_id: "ses_1" };
      }
      throw new Error(`unexpected ${cmd}`);
    });
    renderSignIn();
    signInWithPassword();

    const code = await screen.findByTestId("signin-mfa-code");
    expect(screen.queryByTestId("sign-in-password")).toBeNull();
    fireEvent.change(code, { target: { value: "111111" } });
    fireEvent.click(screen.getByTestId("signin-mfa-submit"));
    const alert = await screen.findByRole("alert");
    expect(alert.dataset.code).toBe("invalid_mfa_code");
    expect(alert.textContent).toMatch(/wrong or was already used/);

    fireEvent.change(screen.getByTestId("signin-mfa-code"), { target: { value: "123 456" } });
    fireEvent.click(screen.getByTestId("signin-mfa-submit"));
    await waitFor(() => expect(calls).toHaveLength(2));
    expect(calls[1]).toMatchObject({ challenge: "chal_1", code: "123456", recoveryCode: null });
  });

  it("switches to a recovery code, and goes back to the password step", async () => {
    const calls: unknown[] = [];
    mockIPC((cmd, args) => {
      if (cmd === "sign_in") throw refusal("mfa_required", "a second factor is required", "chal_2");
      if (cmd === "sign_in_mfa") {
        calls.push(args);
        throw refusal("invalid_mfa_code", "invalid code");
      }
      throw new Error(`unexpected ${cmd}`);
    });
    renderSignIn();
    signInWithPassword();

    await screen.findByTestId("signin-mfa-code");
    fireEvent.click(screen.getByTestId("signin-mfa-switch"));
    fireEvent.change(screen.getByTestId("signin-mfa-code"), { target: { value: " abcde-fghjk " } });
    fireEvent.click(screen.getByTestId("signin-mfa-submit"));
    expect((await screen.findByRole("alert")).textContent).toMatch(/recovery code is wrong/);
    expect(calls[0]).toMatchObject({ challenge: "chal_2", code: null, recoveryCode: "abcde-fghjk" });

    fireEvent.click(screen.getByTestId("signin-mfa-back"));
    expect(await screen.findByTestId("sign-in-password")).toHaveProperty("value", "");
    expect(screen.queryByTestId("signin-mfa-code")).toBeNull();
  });

  it("keeps other refusals on the password step", async () => {
    mockIPC((cmd) => {
      if (cmd === "sign_in") throw refusal("invalid_credentials", "wrong email or password");
      throw new Error(`unexpected ${cmd}`);
    });
    renderSignIn();
    signInWithPassword();
    expect((await screen.findByRole("alert")).dataset.code).toBe("invalid_credentials");
    expect(screen.queryByTestId("signin-mfa-code")).toBeNull();
  });
});
