// Export a revenue table as CSV: the save dialog picks the file, the command writes the same
// CSV as the HTTP API's `?format=csv` there.
import { useState } from "react";
import { save } from "@tauri-apps/plugin-dialog";
import { api, describeError } from "../api";
import { formatCount } from "../format";
import type { RevenueTable } from "../types";

export function ExportCsvButton({ table, months, disabled }: { table: RevenueTable; months: number; disabled?: boolean }) {
  const [note, setNote] = useState<{ ok: boolean; text: string } | null>(null);
  const [busy, setBusy] = useState(false);
  const run = async () => {
    setNote(null);
    try {
      const path = await save({ defaultPath: `revenue-${table.replace("_", "-")}.csv`, filters: [{ name: "CSV", extensions: ["csv"] }] });
      if (!path) return;
      setBusy(true);
      const done = await api.exportRevenueCsv(table, months, path);
      setNote({ ok: true, text: `Saved ${formatCount(done.rows)} rows to ${done.path}` });
    } catch (e) {
      const d = describeError(e);
      setNote({ ok: false, text: `${d.code}: ${d.message}` });
    } finally {
      setBusy(false);
    }
  };
  return (
    <span className="export">
      {note && (
        <span className={note.ok ? "muted" : "error-inline"} role={note.ok ? "status" : "alert"}>
          {note.text}
        </span>
      )}
      <button type="button" className="small" data-testid="revenue-export-csv" data-table={table} disabled={disabled || busy} title={`Save the ${months} months of this table as CSV`} onClick={run}>
        Export CSV…
      </button>
    </span>
  );
}
