// Tables as CSV (RFC 4180: quoted when needed, CRLF line ends), for the export buttons.

export type Column<Row> = { key: string; label?: string; get: (row: Row) => string | number | null };

function cell(v: string | number | null): string {
  if (v === null) return "";
  const s = String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function toCsv<Row>(columns: Column<Row>[], rows: Row[]): string {
  const lines = [columns.map((c) => cell(c.key)).join(",")];
  for (const r of rows) lines.push(columns.map((c) => cell(c.get(r))).join(","));
  return lines.join("\r\n") + "\r\n";
}
