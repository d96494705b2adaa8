// Start-up gates, in order: a database, then a first staff account, then a signed-in staff
// member. Only then does the routed console (with its status bar) appear.
import { useQuery } from "@tanstack/react-query";
import { api, describeError } from "./api";
import { SessionContext, useConnection } from "./session";
import { ConnectScreen } from "./start/ConnectScreen";
import { SetupScreen } from "./start/SetupScreen";
import { SignInScreen } from "./start/SignInScreen";
import { Console } from "./Console";

export function App() {
  const connection = useConnection();
  const state = connection.data;
  const staff = state?.staff ?? null;
  const permissions = useQuery({
    queryKey: ["permissions", staff?.session_id],
    queryFn: api.permissions,
    enabled: staff !== null,
    staleTime: Infinity,
  });

  if (connection.isPending) return <div className="splash">Tollgate</div>;
  if (connection.isError) {
    const e = describeError(connection.error);
    return (
      <div className="splash">
        <p className="error" role="alert">
          <code>{e.code}</code> {e.message}
        </p>
      </div>
    );
  }
  if (!state?.database) return <ConnectScreen state={state ?? null} />;
  if (!state.database.has_staff) return <SetupScreen database={state.database} />;
  if (!staff) return <SignInScreen database={state.database} />;
  if (!permissions.data) return <div className="splash">Tollgate</div>;

  return (
    <SessionContext.Provider value={{ database: state.database, staff, permissions: permissions.data }}>
      <Console />
    </SessionContext.Provider>
  );
}
