// WebKitGTK reports the POSIX locale "C" as navigator.language when LANG is C or unset, and
// `Intl.NumberFormat("C")` throws, which uPlot calls when it loads. Imported first by main.tsx,
// this swaps an invalid tag for en-US before anything formats numbers.
function validTag(tag: string | undefined): boolean {
  if (!tag) return false;
  try {
    return Intl.NumberFormat.supportedLocalesOf([tag]).length > 0 || Boolean(new Intl.Locale(tag));
  } catch {
    return false;
  }
}

if (typeof navigator !== "undefined" && !validTag(navigator.language)) {
  Object.defineProperty(navigator, "language", { value: "en-US", configurable: true });
  Object.defineProperty(navigator, "languages", { value: ["en-US"], configurable: true });
}

export {};
