import "./locale";
import "./style.css";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { MutationCache, QueryCache, QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { CommandFailure } from "./api";
import { connectionKey } from "./session";
import { App } from "./App";

// A revoked or expired console session, or a closed database: back to the start-up screens.
const onError = (error: unknown) => {
  if (error instanceof CommandFailure && (error.code === "not_signed_in" || error.code === "not_connected")) {
    queryClient.invalidateQueries({ queryKey: connectionKey });
  }
};

const queryClient: QueryClient = new QueryClient({
  queryCache: new QueryCache({ onError }),
  mutationCache: new MutationCache({ onError }),
  defaultOptions: {
    // The data lives in the local engine: refetch on focus is cheap, retries only hide errors.
    queries: { retry: false, staleTime: 5_000 },
    mutations: { retry: false },
  },
});

const root = document.getElementById("root");
if (!root) throw new Error("#root is missing from index.html");
createRoot(root).render(
  <StrictMode>
    <QueryClientProvider client={queryClient}>
      <App />
    </QueryClientProvider>
  </StrictMode>,
);
