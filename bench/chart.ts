/**
 * A small grouped-bar SVG renderer for the side-by-side results: one panel per metric (GFLOP/s for
 * compute-bound cases, GB/s for memory-bound ones), one group of bars per case, one bar per
 * implementation, a log10 value axis (the implementations differ by orders of magnitude) and the
 * value printed on each bar. Plain SVG 1.1 text with no scripts, fonts or external references, so it
 * renders the same in a browser, an image viewer or a GitHub page. Written by hand rather than with
 * a charting library: vega/vega-lite can render SVG headless in Node, but pull in tens of packages
 * (and optional native canvas builds) for what is ~150 lines here.
 */

export interface ChartGroup {
  readonly label: string;
  /** One value per series; null (or non-positive) where the series has no result for this group. */
  readonly values: readonly (number | null)[];
}

export interface ChartPanel {
  readonly title: string;
  /** Axis unit, e.g. 'GFLOP/s'. */
  readonly unit: string;
  readonly groups: readonly ChartGroup[];
}

export interface ChartData {
  readonly title: string;
  readonly subtitle?: string;
  readonly series: readonly string[];
  readonly panels: readonly ChartPanel[];
  /** Lines under the chart (e.g. how times were measured). */
  readonly footnote?: readonly string[];
}

const PALETTE = ['#4e79a7', '#a0cbe8', '#f28e2b', '#59a14f', '#e15759', '#b07aa1', '#76b7b2', '#edc948', '#9c755f', '#bab0ac'];

/** Stable colours: the well-known series get fixed ones, the rest take the palette in order. */
function colourFor(series: readonly string[]): string[] {
  const fixed: Record<string, string> = { tessera: '#4e79a7', 'tessera-tuned': '#1b3f73', 'tessera-unfused': '#a0cbe8', 'tessera-chained': '#9c755f', 'tessera-spec': '#76b7b2', hand: '#59a14f', tfjs: '#f28e2b', ort: '#e15759' };
  const used = new Set(series.map((s) => fixed[s]).filter((c) => c !== undefined));
  const free = PALETTE.filter((c) => !used.has(c));
  let next = 0;
  return series.map((s) => fixed[s] ?? free[next++ % free.length]!);
}

export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function fmt(v: number): string {
  if (v >= 100) return v.toFixed(0);
  if (v >= 10) return v.toFixed(1);
  if (v >= 1) return v.toFixed(2);
  return v.toPrecision(2);
}

const n = (x: number) => (Math.round(x * 10) / 10).toString();

interface Layout {
  readonly width: number;
  readonly left: number;
  readonly right: number;
  readonly plotH: number;
  readonly barW: number;
  readonly groupGap: number;
}

function panelSvg(p: ChartPanel, series: readonly string[], colours: readonly string[], top: number, L: Layout): { svg: string; height: number } {
  const vals = p.groups.flatMap((g) => g.values).filter((v): v is number => v !== null && Number.isFinite(v) && v > 0);
  const out: string[] = [];
  const titleY = top + 18;
  out.push(`<text x="${L.left}" y="${titleY}" font-size="14" font-weight="bold">${escapeXml(p.title)}</text>`);
  const plotTop = titleY + 14;
  const plotBottom = plotTop + L.plotH;
  const plotW = L.width - L.left - L.right;
  if (vals.length === 0) {
    out.push(`<text x="${L.left}" y="${plotTop + 20}" font-size="12">no results</text>`);
    return { svg: out.join('\n'), height: plotBottom - top + 40 };
  }
  const lo = Math.floor(Math.log10(Math.min(...vals)));
  const hi = Math.max(lo + 1, Math.ceil(Math.log10(Math.max(...vals)) + 0.3));
  const y = (v: number) => plotBottom - ((Math.log10(v) - lo) / (hi - lo)) * L.plotH;
  // Axis, decade grid lines and labels.
  for (let e = lo; e <= hi; e++) {
    const yy = y(10 ** e);
    out.push(`<line x1="${L.left}" y1="${n(yy)}" x2="${L.left + plotW}" y2="${n(yy)}" stroke="#ddd" stroke-width="1"/>`);
    out.push(`<text x="${L.left - 6}" y="${n(yy + 4)}" font-size="11" text-anchor="end">${escapeXml(fmt(10 ** e))}</text>`);
  }
  out.push(`<line x1="${L.left}" y1="${plotTop}" x2="${L.left}" y2="${plotBottom}" stroke="#333" stroke-width="1"/>`);
  out.push(`<line x1="${L.left}" y1="${plotBottom}" x2="${L.left + plotW}" y2="${plotBottom}" stroke="#333" stroke-width="1"/>`);
  out.push(`<text x="14" y="${n((plotTop + plotBottom) / 2)}" font-size="12" text-anchor="middle" transform="rotate(-90 14 ${n((plotTop + plotBottom) / 2)})">${escapeXml(p.unit)} (log)</text>`);
  const groupW = plotW / Math.max(1, p.groups.length);
  p.groups.forEach((g, gi) => {
    const present = series.map((_, si) => si).filter((si) => {
      const v = g.values[si];
      return v !== null && v !== undefined && Number.isFinite(v) && v > 0;
    });
    const barW = Math.min(L.barW, (groupW - L.groupGap) / Math.max(1, present.length));
    const x0 = L.left + gi * groupW + (groupW - barW * present.length) / 2;
    present.forEach((si, k) => {
      const v = g.values[si]!;
      const x = x0 + k * barW;
      const yy = Math.min(y(v), plotBottom - 1);
      out.push(`<rect x="${n(x)}" y="${n(yy)}" width="${n(barW - 2)}" height="${n(plotBottom - yy)}" fill="${colours[si]}"><title>${escapeXml(`${series[si]} ${g.label}: ${fmt(v)} ${p.unit}`)}</title></rect>`);
      const tx = x + (barW - 2) / 2 + 3;
      const ty = yy - 3;
      // Rotated to read upwards from just above the bar, centred on it.
      out.push(`<text x="${n(tx)}" y="${n(ty)}" font-size="9" text-anchor="start" transform="rotate(-90 ${n(tx)} ${n(ty)})">${escapeXml(fmt(v))}</text>`);
    });
    out.push(`<text x="${n(L.left + gi * groupW + groupW / 2)}" y="${plotBottom + 16}" font-size="11" text-anchor="middle">${escapeXml(g.label)}</text>`);
  });
  return { svg: out.join('\n'), height: plotBottom - top + 28 };
}

/** The chart as an SVG document. */
export function renderChart(d: ChartData): string {
  const colours = colourFor(d.series);
  const maxGroups = Math.max(1, ...d.panels.map((p) => p.groups.length));
  const L: Layout = { width: Math.max(640, 90 + maxGroups * Math.max(110, 22 * d.series.length + 20)), left: 64, right: 16, plotH: 220, barW: 22, groupGap: 14 };
  const body: string[] = [];
  body.push(`<text x="${L.left}" y="24" font-size="16" font-weight="bold">${escapeXml(d.title)}</text>`);
  let yPos = 28;
  if (d.subtitle) {
    body.push(`<text x="${L.left}" y="44" font-size="12" fill="#555">${escapeXml(d.subtitle)}</text>`);
    yPos = 48;
  }
  // Legend.
  let lx = L.left;
  const ly = yPos + 14;
  d.series.forEach((s, i) => {
    body.push(`<rect x="${lx}" y="${ly - 10}" width="12" height="12" fill="${colours[i]}"/>`);
    body.push(`<text x="${lx + 16}" y="${ly}" font-size="12">${escapeXml(s)}</text>`);
    lx += 28 + 7 * s.length;
  });
  yPos = ly + 8;
  for (const p of d.panels) {
    const { svg, height } = panelSvg(p, d.series, colours, yPos, L);
    body.push(svg);
    yPos += height;
  }
  for (const line of d.footnote ?? []) {
    body.push(`<text x="${L.left}" y="${yPos + 12}" font-size="11" fill="#555">${escapeXml(line)}</text>`);
    yPos += 15;
  }
  const h = Math.ceil(yPos + 8);
  return [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<svg xmlns="http://www.w3.org/2000/svg" width="${L.width}" height="${h}" viewBox="0 0 ${L.width} ${h}" font-family="Helvetica, Arial, sans-serif">`,
    `<rect x="0" y="0" width="${L.width}" height="${h}" fill="#fff"/>`,
    ...body,
    `</svg>`,
    '',
  ].join('\n');
}
