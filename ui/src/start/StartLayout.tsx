import type { ReactNode } from "react";

/** The centred card every start-up screen (connect, set-up, sign-in) sits in. */
export function StartLayout({ title, subtitle, children }: { title: string; subtitle?: ReactNode; children: ReactNode }) {
  return (
    <div className="start">
      <div className="start-card">
        <div className="brand">
          <span className="brand-mark" aria-hidden="true">T</span>
          <span className="brand-name">Tollgate</span>
          <span className="brand-sub">Console</span>
        </div>
        <h1>{title}</h1>
        {subtitle && <p className="muted">{subtitle}</p>}
        {children}
      </div>
    </div>
  );
}
