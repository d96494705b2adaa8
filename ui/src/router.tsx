// The console's routes: one per screen, filters as typed search params so that Back returns to
// the same list. Hash history: the app is served from files embedded in the binary.
import { createHashHistory, createRootRoute, createRoute, createRouter } from "@tanstack/react-router";
import { Shell } from "./routes/Shell";
import { HomeScreen } from "./routes/HomeScreen";
import { UsersScreen, parseUserSearch } from "./routes/UsersScreen";
import { UserScreen } from "./routes/UserScreen";
import { AuditScreen, parseAuditSearch } from "./routes/AuditScreen";
import { RevenueScreen, parseRevenueSearch } from "./routes/RevenueScreen";
import { ApiScreen } from "./routes/ApiScreen";
import { PlansScreen, parsePlansSearch } from "./routes/PlansScreen";
import { UsageScreen, parseUsageSearch } from "./routes/UsageScreen";
import { StripeEventsScreen, parseStripeSearch } from "./routes/StripeEventsScreen";

const rootRoute = createRootRoute({ component: Shell });

export const homeRoute = createRoute({ getParentRoute: () => rootRoute, path: "/", component: HomeScreen });

export const usersRoute = createRoute({
  getParentRoute: () => rootRoute,
  path: "/users",
  validateSearch: parseUserSearch,
  component: UsersScreen,
});

export const userRoute = createRoute({
  getParentRoute: () => rootRoute,
  path: "/users/$userId",
  component: UserScreen,
});

export const auditRoute = createRoute({
  getParentRoute: () => rootRoute,
  path: "/audit",
  validateSearch: parseAuditSearch,
  component: AuditScreen,
});

export const revenueRoute = createRoute({
  getParentRoute: () => rootRoute,
  path: "/revenue",
  validateSearch: parseRevenueSearch,
  component: RevenueScreen,
});

export const usageRoute = createRoute({
  getParentRoute: () => rootRoute,
  path: "/usage",
  validateSearch: parseUsageSearch,
  component: UsageScreen,
});

export const plansRoute = createRoute({
  getParentRoute: () => rootRoute,
  path: "/plans",
  validateSearch: parsePlansSearch,
  component: PlansScreen,
});

export const stripeRoute = createRoute({
  getParentRoute: () => rootRoute,
  path: "/stripe",
  validateSearch: parseStripeSearch,
  component: StripeEventsScreen,
});

export const apiRoute = createRoute({ getParentRoute: () => rootRoute, path: "/api", component: ApiScreen });

const routeTree = rootRoute.addChildren([homeRoute, usersRoute, userRoute, auditRoute, usageRoute, revenueRoute, plansRoute, stripeRoute, apiRoute]);

export function createConsoleRouter() {
  return createRouter({ routeTree, history: createHashHistory(), defaultPreload: false });
}

declare module "@tanstack/react-router" {
  interface Register {
    router: ReturnType<typeof createConsoleRouter>;
  }
}
