// Charts as inline SVG, no library: lines over epochs, grouped bars over categories.
// Charts are drawn at their box's pixel width (and redrawn when it changes), so their
// text stays at a readable 12px on a phone and on a wide screen alike.

import { count, el, fmt, svg } from "./dom.js";

const SERIES = ["var(--series-1)", "var(--series-2)", "var(--series-3)"];

/** "Nice" tick values covering [lo, hi]: steps of 1, 2 or 5 times a power of ten. */
function ticks(lo, hi, n = 5) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw);
  const out = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toPrecision(12));
  return out;
}

const tickText = (v) => (Math.abs(v) >= 1000 ? count(v) : String(+v.toPrecision(4)));

/** A figure whose SVG ``draw(width)`` makes; redrawn whenever the figure's width changes. */
function chartBox({ id, title, legend, caption, table, draw, wide = false }) {
  const holder = el("div", { class: "plot" });
  const fig = el("figure", { class: `chart panel${wide ? " wide" : ""}`, id },
    el("h3", {}, title),
    legend && legend.length > 1 ? el("ul", { class: "legend" }, legend.map(([name, color]) =>
      el("li", {}, el("span", { style: `background:${color}` }), name))) : null,
    holder,
    caption ? el("figcaption", { class: "caption" }, caption) : null,
    table ? el("details", {}, el("summary", {}, "Show the numbers"), el("div", { class: "scroll" }, table)) : null);
  let drawn = 0;
  new ResizeObserver(([entry]) => {
    const width = Math.floor(entry.contentRect.width);
    if (width > 0 && width !== drawn) {
      drawn = width;
      const node = draw(width);
      node.setAttribute("role", "img");
      node.setAttribute("aria-label", `${title} (chart; the numbers are in the table below it)`);
      holder.replaceChildren(node);
    }
  }).observe(holder);
  return fig;
}

/** The y side every vertical chart shares: grid, tick labels, axis title; returns the y scale. */
function yFrame(root, { w, h, pad, yMin, yMax, yLabel, format = tickText }) {
  const ys = ticks(yMin, yMax);
  const lo = Math.min(yMin, ys[0]);
  const hi = Math.max(yMax, ys[ys.length - 1]);
  const y = (v) => pad.t + (h - pad.t - pad.b) * (1 - (v - lo) / (hi - lo || 1));
  for (const v of ys) {
    root.append(svg("line", { class: "gridline", x1: pad.l, x2: w - pad.r, y1: y(v), y2: y(v) }),
      svg("text", { x: pad.l - 6, y: y(v) + 4, "text-anchor": "end" }, format(v)));
  }
  root.append(svg("line", { class: "axis", x1: pad.l, x2: w - pad.r, y1: h - pad.b, y2: h - pad.b }));
  if (yLabel) {
    const cy = pad.t + (h - pad.t - pad.b) / 2;
    root.append(svg("text", { x: 12, y: cy, "text-anchor": "middle", transform: `rotate(-90 12 ${cy})` }, yLabel));
  }
  return y;
}

const heightFor = (w) => Math.round(Math.min(320, Math.max(210, w * 0.45)));

function dataTable(head, rows) {
  return el("table", { class: "data" },
    el("thead", {}, el("tr", {}, head.map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, rows.map((r) => el("tr", {}, r.map((c, i) => (i ? el("td", {}, c) : el("th", { scope: "row" }, c)))))));
}

/** Lines over a numeric x; series: [{name, points: [[x, y], ...]}]. */
export function lineChart({ id, title, series, xLabel, yLabel, caption, digits = 4, wide }) {
  const pts = series.flatMap((s) => s.points);
  const xs = pts.map((p) => p[0]);
  const ysv = pts.map((p) => p[1]);
  const xMin = Math.min(...xs), xMax = Math.max(...xs);
  const yMin = Math.min(...ysv), yMax = Math.max(...ysv);
  const spread = yMax - yMin || Math.abs(yMax) * 0.1 || 1;
  const draw = (w) => {
    const h = heightFor(w), pad = { t: 10, r: 14, b: 40, l: 60 };
    const root = svg("svg", { viewBox: `0 0 ${w} ${h}`, width: w, height: h });
    const y = yFrame(root, { w, h, pad, yMin: Math.max(0, yMin - spread * 0.15), yMax: yMax + spread * 0.15, yLabel });
    const x = (v) => pad.l + (w - pad.l - pad.r) * (xMax > xMin ? (v - xMin) / (xMax - xMin) : 0.5);
    const room = Math.max(2, Math.floor((w - pad.l - pad.r) / 40));
    const xt = xMax - xMin <= room ? [...new Set(xs)].filter(Number.isInteger) : ticks(xMin, xMax, Math.min(room, 8));
    for (const v of xt) root.append(svg("text", { x: x(v), y: h - pad.b + 16, "text-anchor": "middle" }, tickText(v)));
    root.append(svg("text", { x: (pad.l + w - pad.r) / 2, y: h - 6, "text-anchor": "middle" }, xLabel));
    series.forEach((s, i) => {
      const color = SERIES[i % SERIES.length];
      const d = s.points.map((p, j) => `${j ? "L" : "M"}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join("");
      root.append(svg("path", { d, fill: "none", stroke: color, "stroke-width": 2.5, class: "series" }));
      for (const p of s.points) {
        root.append(svg("circle", { cx: x(p[0]), cy: y(p[1]), r: s.points.length > 40 ? 2 : 3.5, fill: color },
          svg("title", {}, `${s.name}, ${xLabel} ${p[0]}: ${fmt(p[1], digits)}`)));
      }
    });
    return root;
  };
  const xsAll = [...new Set(xs)].sort((a, b) => a - b);
  const table = dataTable([xLabel, ...series.map((s) => s.name)], xsAll.map((xv) => [String(xv),
    ...series.map((s) => fmt((s.points.find((p) => p[0] === xv) || [])[1], digits))]));
  const legend = series.map((s, i) => [s.name, SERIES[i % SERIES.length]]);
  return chartBox({ id, title, legend, caption, table, draw, wide });
}

/** Grouped vertical bars over categories; series: [{name, values}] aligned with categories. */
export function barChart({ id, title, categories, series, yLabel, caption, digits = 3, share = false, wide }) {
  const vals = series.flatMap((s) => s.values).filter(Number.isFinite);
  const show = (v) => (share ? `${(v * 100).toFixed(1)}%` : fmt(v, digits));
  const draw = (w) => {
    const h = heightFor(w), pad = { t: 10, r: 10, b: 40, l: 60 };
    const root = svg("svg", { viewBox: `0 0 ${w} ${h}`, width: w, height: h });
    const y = yFrame(root, {
      w, h, pad, yMin: 0, yMax: Math.max(...vals, 0) * 1.08 || 1, yLabel,
      format: share ? (v) => `${+(v * 100).toPrecision(3)}%` : tickText,
    });
    const band = (w - pad.l - pad.r) / Math.max(categories.length, 1);
    const bar = Math.min(40, (band * 0.8) / series.length);
    categories.forEach((c, ci) => {
      const x0 = pad.l + band * ci + (band - bar * series.length) / 2;
      series.forEach((s, si) => {
        const v = s.values[ci];
        if (!Number.isFinite(v)) return;
        root.append(svg("rect", {
          x: x0 + si * bar + 1, y: y(v), width: Math.max(bar - 2, 1), height: Math.max(y(0) - y(v), 0),
          fill: SERIES[si % SERIES.length], rx: 2, class: "bar",
        }, svg("title", {}, `${s.name}, ${c}: ${show(v)}`)));
      });
      root.append(svg("text", { x: pad.l + band * (ci + 0.5), y: h - pad.b + 16, "text-anchor": "middle" }, String(c)));
    });
    return root;
  };
  const table = dataTable(["", ...series.map((s) => s.name)],
    categories.map((c, ci) => [String(c), ...series.map((s) => show(s.values[ci]))]));
  const legend = series.map((s, i) => [s.name, SERIES[i % SERIES.length]]);
  return chartBox({ id, title, legend, caption, table, draw, wide });
}
