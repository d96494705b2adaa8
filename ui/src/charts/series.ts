// Shaping numbers for uPlot: colours, stacked bars and axis labels. uPlot draws series in order,
// so a stack is drawn as cumulative sums, tallest first, each bar starting at zero.
import uPlot from "uplot";

export const PALETTE = ["#2f5bea", "#1a9f6b", "#d08a14", "#c4302b", "#8a4fd8", "#0f8fa8", "#b8457d", "#6b7a8c"];

export function colour(i: number): string {
  return PALETTE[i % PALETTE.length];
}

/** Running sums of `layers` (bottom layer first): `out[k][i] = layers[0][i] + … + layers[k][i]`. */
export function cumulative(layers: number[][]): number[][] {
  const out: number[][] = [];
  layers.forEach((layer, k) => {
    out.push(layer.map((v, i) => v + (k > 0 ? out[k - 1][i] : 0)));
  });
  return out;
}

const barsPath = uPlot.paths.bars?.({ size: [0.7, 60], align: 0 });

/** One series per layer, drawn as bars of its cumulative sum; the legend shows the layer's own value. */
export function stackedBarSeries(names: string[], layers: number[][], scale: string, format: (v: number) => string, offset = 0): uPlot.Series[] {
  return names.map((name, k) => ({
    label: name,
    scale,
    fill: colour(k + offset) + "cc",
    stroke: colour(k + offset),
    width: 0,
    paths: barsPath,
    points: { show: false },
    value: (_u: uPlot, _v: number | null, _s: number, i: number | null) => (i == null ? "—" : format(layers[k][i] ?? 0)),
  }));
}

/** The series of a stack in uPlot's drawing order (tallest first) with their cumulative data. */
export function stackOrder<T>(series: T[], sums: number[][]): { series: T[]; data: number[][] } {
  const order = series.map((_, k) => k).reverse();
  return { series: order.map((k) => series[k]), data: order.map((k) => sums[k]) };
}

/** Seconds since the epoch, as uPlot's time axis wants them. */
export function epochSeconds(iso: string): number {
  return Math.floor(new Date(iso).getTime() / 1000);
}
