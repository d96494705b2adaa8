// The frame every screen sits in: navigation on the left, the screen, the status bar below.
// Part 2's screens (usage, revenue, Stripe, plans, API) have their entries here already.
import { Link, Outlet } from "@tanstack/react-router";
import { StatusBar } from "../components/StatusBar";
import { ImpersonationBanner } from "../components/Impersonation";

const COMING = [
  { id: "nav-usage", label: "Usage" },
  { id: "nav-revenue", label: "Revenue" },
  { id: "nav-stripe", label: "Stripe events" },
  { id: "nav-plans", label: "Plans" },
  { id: "nav-api", label: "API listener" },
] as const;

export function Shell() {
  return (
    <div className="shell">
      <nav className="sidebar" aria-label="Screens">
        <div className="brand">
          <span className="brand-mark" aria-hidden="true">T</span>
          <span className="brand-name">Tollgate</span>
        </div>
        <Link to="/" className="nav-item" activeOptions={{ exact: true }} data-testid="nav-home">
          Home
        </Link>
        <Link to="/users" className="nav-item" data-testid="nav-users" search={{}}>
          Users
        </Link>
        <Link to="/audit" className="nav-item" data-testid="nav-audit" search={{}}>
          Audit log
        </Link>
        <div className="nav-heading">Coming</div>
        {COMING.map((c) => (
          <span key={c.id} className="nav-item coming" data-testid={c.id} aria-disabled="true" title="Not built yet">
            {c.label}
            <span className="tag">coming</span>
          </span>
        ))}
      </nav>
      <div className="workspace">
        <ImpersonationBanner />
        <main className="screen">
          <Outlet />
        </main>
      </div>
      <StatusBar />
    </div>
  );
}
