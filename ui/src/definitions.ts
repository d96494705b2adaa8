// Where each revenue figure is defined: docs/revenue.md, bundled with the console so that the
// definition shown is the one the engine was built with. Its tables read `| \`column\` | text |`
// under a heading naming the table (`### \`mrr\` table`).
import revenueDoc from "../../docs/revenue.md?raw";

export type Definition = { table: string; column: string; text: string; heading: string };

/** Every column definition in a revenue.md-shaped document, keyed `table.column`. */
export function parseDefinitions(doc: string): Map<string, Definition> {
  const out = new Map<string, Definition>();
  let table: string | null = null;
  let heading = "";
  for (const line of doc.split("\n")) {
    const h = /^###\s+`([a-z-]+)`\s+table/.exec(line);
    if (h) {
      table = h[1];
      heading = line.replace(/^#+\s*/, "").replace(/`/g, "");
      continue;
    }
    if (/^#{1,2}\s/.test(line)) table = null;
    if (!table) continue;
    const row = /^\|\s*(.+?)\s*\|\s*(.+?)\s*\|\s*$/.exec(line);
    if (!row || row[1] === "Column" || /^-+$/.test(row[1])) continue;
    // `a`, `b` defines both; `*_customers` is a pattern kept as written.
    for (const m of row[1].matchAll(/`([^`]+)`/g)) {
      out.set(`${table}.${m[1]}`, { table, column: m[1], text: row[2], heading });
    }
  }
  return out;
}

const definitions = parseDefinitions(revenueDoc);

export function definitionOf(table: string, column: string): Definition | null {
  return definitions.get(`${table}.${column}`) ?? (column.endsWith("_customers") ? definitions.get(`${table}.*_customers`) ?? null : null);
}
