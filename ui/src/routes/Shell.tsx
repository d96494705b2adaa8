// The frame every screen sits in: navigation on the left, the screen, the status bar below.
// A screen whose commands this build lacks is listed under "Coming", never shown with made-up
// figures; revenue is listed only for the roles that may read it.
import { Link, Outlet } from "@tanstack/react-router";
import { useSession } from "../session";
import { StatusBar } from "../components/StatusBar";
import { ImpersonationBanner } from "../components/Impersonation";

const COMING: readonly { id: string; label: string }[] = [];

export function Shell() {
  const { permissions } = useSession();
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
        <Link to="/usage" className="nav-item" data-testid="nav-usage" search={{}}>
          Usage
        </Link>
        {permissions.includes("view_revenue") && (
          <Link to="/revenue" className="nav-item" data-testid="nav-revenue" search={{}}>
            Revenue
          </Link>
        )}
        {permissions.includes("view_plans") && (
          <Link to="/plans" className="nav-item" data-testid="nav-plans" search={{}}>
            Plans
          </Link>
        )}
        {permissions.includes("view_stripe_events") && (
          <Link to="/stripe" className="nav-item" data-testid="nav-stripe" search={{}}>
            Stripe events
          </Link>
        )}
        <Link to="/api" className="nav-item" data-testid="nav-api">
          API listener
        </Link>
        {COMING.length > 0 && <div className="nav-heading">Coming</div>}
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
