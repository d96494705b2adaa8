import { useState } from "react";

/** Copies `value` to the clipboard and says so for a moment. */
export function CopyButton({ value, label = "Copy" }: { value: string; label?: string }) {
  const [done, setDone] = useState(false);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(value);
    } catch {
      // WebKit may refuse the async clipboard; fall back to a selection copy.
      const area = document.createElement("textarea");
      area.value = value;
      document.body.appendChild(area);
      area.select();
      document.execCommand("copy");
      area.remove();
    }
    setDone(true);
    setTimeout(() => setDone(false), 1200);
  };
  return (
    <button type="button" className="copy" onClick={copy} title={`Copy ${value}`} aria-label={`${label} ${value}`}>
      {done ? "Copied" : label}
    </button>
  );
}

/** An id in monospace with its copy button. */
export function CopyId({ value }: { value: string }) {
  return (
    <span className="copy-id">
      <span className="mono">{value}</span>
      <CopyButton value={value} />
    </span>
  );
}
