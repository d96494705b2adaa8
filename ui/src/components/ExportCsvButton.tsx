// Export a table as CSV: the save dialog picks the file, a command writes it. The webview cannot
// write files itself, so without the command the button says so instead of pretending.
import { useState } from "react";
import { save } from "@tauri-apps/plugin-dialog";
import { api, describeError } from "../api";
import { toCsv, type Column } from "../csv";

export function ExportCsvButton<Row>({ name, columns, rows }: { name: string; columns: Column<Row>[]; rows: Row[] }) {
  const [note, setNote] = useState<{ ok: boolean; text: string } | null>(null);
  const writer = api.saveTextFile;
  const run = async () => {
    setNote(null);
    try {
      const path = await save({ defaultPath: `${name}.csv`, filters: [{ name: "CSV", extensions: ["csv"] }] });
      if (!path || !writer) return;
      await writer(path, toCsv(columns, rows));
      setNote({ ok: true, text: `Saved ${rows.length} rows` });
    } catch (e) {
      const d = describeError(e);
      setNote({ ok: false, text: `${d.code}: ${d.message}` });
    }
  };
  return (
    <span className="export">
      <button
        type="button"
        className="small"
        data-testid="revenue-export-csv"
        data-table={name}
        disabled={!writer || rows.length === 0}
        title={writer ? "Save these rows as CSV" : "Saving files needs a console command this build does not have"}
        onClick={run}
      >
        Export CSV
      </button>
      {note && <span className={note.ok ? "muted" : "error-inline"}>{note.text}</span>}
    </span>
  );
}
