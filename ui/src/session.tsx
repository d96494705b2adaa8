// Who is signed in to which database: the one piece of state every screen reads.
import { createContext, useContext } from "react";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { api } from "./api";
import type { Action, ConnectionState, DatabaseInfo, StaffMember } from "./types";
import { gate, type Gate } from "./permissions";
import { impersonation } from "./components/Impersonation";

export const connectionKey = ["connection"] as const;

export function useConnection() {
  return useQuery({ queryKey: connectionKey, queryFn: api.connectionState, staleTime: Infinity });
}

export type Session = {
  database: DatabaseInfo;
  staff: StaffMember;
  permissions: readonly Action[];
};

export const SessionContext = createContext<Session | null>(null);

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error("useSession outside a signed-in console");
  return session;
}

/** Whether the signed-in role may do `action`, with the reason when it may not. */
export function useGate(action: Action): Gate {
  const { permissions, staff } = useSession();
  return gate(permissions, staff.role, action);
}

/** After a sign-in, sign-out or connection change: forget everything cached for the old one,
 *  including an impersonation token the previous staff member held. */
export function useResetSession() {
  const client = useQueryClient();
  return async (next?: ConnectionState) => {
    impersonation.set(null);
    client.removeQueries({ predicate: (q) => q.queryKey[0] !== connectionKey[0] });
    if (next) client.setQueryData(connectionKey, next);
    await client.invalidateQueries({ queryKey: connectionKey });
  };
}
