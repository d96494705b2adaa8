import { describeError } from "../api";

/** A refusal as the engine gave it: its stable code, then its message. */
export function ErrorNote({ error }: { error: unknown }) {
  if (!error) return null;
  const e = describeError(error);
  return (
    <p className="error" role="alert" data-code={e.code}>
      <code>{e.code}</code>
      <span>{e.message}</span>
    </p>
  );
}
