// The table of numbers under a chart: plain columns, a header that can link each column to its
// definition, and an export button that saves the same rows as CSV.
import type { ReactNode } from "react";
export type TableColumn<Row> = {
  key: string;
  label: string;
  get: (row: Row) => string | number | null;
  render?: (row: Row) => ReactNode;
  numeric?: boolean;
  /** Opens the column's definition. */
  define?: () => void;
};

export function DataTable<Row>({ columns, rows, rowKey, testId }: { columns: TableColumn<Row>[]; rows: Row[]; rowKey: (r: Row) => string; testId?: string }) {
  return (
    <div className="table-wrap">
      <table className="data" data-testid={testId}>
        <thead>
          <tr>
            {columns.map((c) => (
              <th key={c.key} className={c.numeric ? "num" : undefined}>
                {c.define ? (
                  <button type="button" className="def-link" onClick={c.define} title={`What ${c.key} means`}>
                    {c.label}
                  </button>
                ) : (
                  c.label
                )}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={rowKey(r)}>
              {columns.map((c) => (
                <td key={c.key} className={c.numeric ? "num" : undefined}>
                  {c.render ? c.render(r) : c.get(r)}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
      {rows.length === 0 && <p className="empty">No rows in this range.</p>}
    </div>
  );
}
