// A small JSON tokenizer for syntax highlighting: it splits text into punctuation, keys, strings,
// numbers and literals without reparsing, so the raw event shows exactly as stored.

export type TokenKind = "key" | "string" | "number" | "literal" | "punct" | "space" | "other";
export type Token = { kind: TokenKind; text: string };

const PATTERNS: [TokenKind, RegExp][] = [
  ["space", /\s+/y],
  ["string", /"(?:[^"\\]|\\.)*"/y],
  ["number", /-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/y],
  ["literal", /true|false|null/y],
  ["punct", /[{}[\],:]/y],
];

export function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    let matched = false;
    for (const [kind, re] of PATTERNS) {
      re.lastIndex = i;
      const m = re.exec(text);
      if (!m) continue;
      tokens.push({ kind, text: m[0] });
      i += m[0].length;
      matched = true;
      break;
    }
    if (!matched) {
      tokens.push({ kind: "other", text: text[i] });
      i += 1;
    }
  }
  // A string followed (after spaces) by a colon is an object key.
  for (let k = 0; k < tokens.length; k++) {
    if (tokens[k].kind !== "string") continue;
    let j = k + 1;
    while (j < tokens.length && tokens[j].kind === "space") j++;
    if (tokens[j]?.kind === "punct" && tokens[j].text === ":") tokens[k].kind = "key";
  }
  return tokens;
}

/** Pretty-printed text of a value, or the text itself when it is already a string. */
export function prettyJson(value: unknown): string {
  if (typeof value === "string") {
    try {
      return JSON.stringify(JSON.parse(value), null, 2);
    } catch {
      return value;
    }
  }
  return JSON.stringify(value, null, 2);
}
