// Charts as SVG, each with a title, a description and the numbers as text.

import { s } from "./ui.js";

let chartId = 0;

/**
 * Horizontal bars: rows of { label, value, max?, bad? }; `target` draws a dashed line at that
 * value; `unit` follows each value.
 */
export function bars(title, rows, { max = 100, target, unit = "%" } = {}) {
  const id = `chart${++chartId}`;
  const labelW = 170, barW = 360, rowH = 28, width = labelW + barW + 70;
  const height = rows.length * rowH + 24;
  const x = (v) => labelW + (Math.max(0, Math.min(v, max)) / max) * barW;
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-labelledby": `${id}-t ${id}-d` },
    s("title", { id: `${id}-t` }, title),
    s("desc", { id: `${id}-d` }, rows.map((r) => `${r.label}: ${r.value === null ? "no data" : `${fmt(r.value)}${unit}`}`).join("; ")));
  rows.forEach((r, i) => {
    const y = 8 + i * rowH;
    svg.append(s("text", { x: labelW - 8, y: y + 15, "text-anchor": "end" }, r.label));
    if (r.value === null || r.value === undefined) {
      svg.append(s("text", { x: labelW + 4, y: y + 15, class: "edge-label" }, "no data"));
      return;
    }
    svg.append(s("rect", { class: `bar${r.bad ? " bad" : ""}`, x: labelW, y, height: rowH - 8, width: Math.max(1, x(r.value) - labelW) }),
      s("text", { x: x(r.value) + 4, y: y + 15 }, `${fmt(r.value)}${unit}`));
  });
  if (target !== undefined && target !== null) {
    svg.append(s("line", { class: "target", x1: x(target), x2: x(target), y1: 2, y2: height - 14 }),
      s("text", { x: x(target), y: height - 2, "text-anchor": "middle" }, `target ${fmt(target)}${unit}`));
  }
  return svg;
}

/** Columns over time: points of { label, value }. */
export function columns(title, points, { unit = "" } = {}) {
  const id = `chart${++chartId}`;
  const colW = 34, gap = 10, chartH = 120, top = 16, width = Math.max(points.length * (colW + gap) + 40, 240), height = chartH + top + 40;
  const max = Math.max(1, ...points.map((p) => p.value));
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-labelledby": `${id}-t ${id}-d` },
    s("title", { id: `${id}-t` }, title),
    s("desc", { id: `${id}-d` }, points.map((p) => `${p.label}: ${p.value}${unit}`).join("; ") || "no data"),
    s("line", { class: "axis", x1: 20, x2: width - 10, y1: top + chartH + 8, y2: top + chartH + 8 }));
  points.forEach((p, i) => {
    const hgt = (p.value / max) * chartH;
    const x = 24 + i * (colW + gap);
    svg.append(s("rect", { class: "bar", x, y: top + chartH + 8 - hgt, width: colW, height: Math.max(hgt, 1) }),
      s("text", { x: x + colW / 2, y: top + chartH + 4 - hgt, "text-anchor": "middle" }, String(p.value)),
      s("text", { x: x + colW / 2, y: top + chartH + 24, "text-anchor": "middle" }, p.label));
  });
  return svg;
}

function fmt(v) {
  return Number.isInteger(v) ? String(v) : v.toFixed(v >= 99 ? 2 : 1);
}
