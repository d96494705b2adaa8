// The date-range picker of the chart screens: presets as a segmented control, custom days as
// two date inputs. It only reports changes; the route keeps the value in its search params.
import { PRESETS, type RangePreset, type RangeSearch } from "../range";

export function RangePicker({ value, fallback = "30d", onChange }: { value: RangeSearch; fallback?: RangePreset; onChange: (next: RangeSearch) => void }) {
  const current = value.range ?? fallback;
  return (
    <div className="range-picker" data-testid="range-picker">
      <div className="segmented" role="radiogroup" aria-label="Date range">
        {PRESETS.map((p) => (
          <button
            key={p.id}
            type="button"
            role="radio"
            aria-checked={current === p.id}
            className={current === p.id ? "on" : ""}
            data-testid={`range-${p.id}`}
            onClick={() => onChange(p.id === "custom" ? { range: "custom", from: value.from ?? daysAgo(14), to: value.to ?? daysAgo(0) } : { range: p.id })}
          >
            {p.label}
          </button>
        ))}
      </div>
      {current === "custom" && (
        <label className="inline-field">
          <input type="date" aria-label="From" value={value.from ?? ""} onChange={(e) => onChange({ ...value, range: "custom", from: e.target.value || undefined })} />
          <span>to</span>
          <input type="date" aria-label="To" value={value.to ?? ""} onChange={(e) => onChange({ ...value, range: "custom", to: e.target.value || undefined })} />
        </label>
      )}
    </div>
  );
}

function daysAgo(n: number): string {
  const d = new Date();
  d.setDate(d.getDate() - n);
  const pad = (x: number) => String(x).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}
