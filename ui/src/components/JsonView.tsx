// Raw JSON with syntax highlighting (json-highlight's tokens as spans; no external highlighter).
import { useMemo } from "react";
import { prettyJson, tokenize } from "../json-highlight";

export function JsonView({ value, testId }: { value: unknown; testId?: string }) {
  const tokens = useMemo(() => tokenize(prettyJson(value)), [value]);
  return (
    <pre className="json" data-testid={testId}>
      {tokens.map((t, i) => (t.kind === "space" || t.kind === "punct" ? t.text : <span key={i} className={`j-${t.kind}`}>{t.text}</span>))}
    </pre>
  );
}
