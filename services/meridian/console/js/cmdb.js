// The CMDB: configuration items, and a CI's relations drawn as a graph with its impact analysis.

import { api, query } from "./api.js";
import { h, s, page, table, badge, when, facts, field, values, link } from "./ui.js";

export async function cis() {
  const current = Object.fromEntries(new URLSearchParams(location.hash.split("?")[1] || ""));
  const [answer, types] = await Promise.all([
    api("GET", `/v1/cis${query({ name: current.name, type: current.type, limit: 100 })}`),
    api("GET", "/v1/ci-types").catch(() => []),
  ]);
  const typeNames = Array.isArray(types) ? types.map((t) => t.name || t.id || t) : Object.keys(types || {});
  const form = h("form", { class: "filters", role: "search", "aria-label": "Find configuration items" },
    field("name", "Name contains", { value: current.name || "" }),
    field("type", "Type", { kind: "select", value: current.type || "", options: [["", "Any"], ...typeNames.map((t) => [t, t.replaceAll("_", " ")])] }),
    h("button", { type: "submit" }, "Find"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    location.hash = `#/cis${query(values(form))}`;
  });
  page("Configuration items", form, table("Configuration items", [
    ["Name", (c) => link(`#/cis/${c.id}`, c.name)],
    ["Type", (c) => c.ci_type.replaceAll("_", " ")],
    ["Criticality", (c) => badge(c.criticality)],
    ["Status", (c) => c.status.replaceAll("_", " ")],
    ["Owner", (c) => c.owner],
    ["Environment", (c) => c.environment],
  ], answer.items, "No configuration item matches."));
}

/** A CI by id, or by its exact name (incidents and changes may name CIs). */
async function find(key) {
  try {
    return await api("GET", `/v1/cis/${encodeURIComponent(key)}`);
  } catch (error) {
    if (error.status !== 404 && error.status !== 400) throw error;
    const named = await api("GET", `/v1/cis${query({ name: key, limit: 20 })}`);
    const hit = named.items.find((c) => c.name === key);
    if (!hit) throw error;
    return api("GET", `/v1/cis/${encodeURIComponent(hit.id)}`);
  }
}

/**
 * The graph: the CI in the middle, what depends on it above (the impact if it fails), what it
 * needs below, one row per relation step.
 */
function graph(ci, up, down) {
  const nodes = new Map([[ci.id, { id: ci.id, name: ci.name, type: ci.ci_type, row: 0 }]]);
  const edges = new Map();
  const visit = (affected, sign) => {
    for (const a of affected) {
      if (!nodes.has(a.id)) nodes.set(a.id, { id: a.id, name: a.name, type: a.ci_type, row: sign * a.depth, impacted: sign < 0 });
      const path = a.path || [];
      for (let i = 1; i < path.length; i++) {
        const [from, to] = sign < 0 ? [path[i].id, path[i - 1].id] : [path[i - 1].id, path[i].id];
        edges.set(`${from}>${to}`, { from, to, kind: path[i].kind || "" });
      }
    }
  };
  visit(up.affected || [], -1);
  visit(down.affected || [], 1);
  const rows = new Map();
  for (const n of nodes.values()) {
    if (!rows.has(n.row)) rows.set(n.row, []);
    rows.get(n.row).push(n);
  }
  const order = [...rows.keys()].sort((a, b) => a - b);
  const W = 160, H = 40, GX = 30, GY = 70;
  const widest = Math.max(...[...rows.values()].map((r) => r.length));
  const width = Math.max(widest * (W + GX) + GX, 400);
  order.forEach((row, y) => {
    const list = rows.get(row).sort((a, b) => a.name.localeCompare(b.name));
    const span = list.length * (W + GX) - GX;
    list.forEach((n, i) => {
      n.x = (width - span) / 2 + i * (W + GX);
      n.y = 20 + y * (H + GY);
    });
  });
  const height = 40 + order.length * (H + GY) - GY;
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-labelledby": "graph-title graph-desc" },
    s("title", { id: "graph-title" }, `Relations of ${ci.name}`),
    s("desc", { id: "graph-desc" }, `${nodes.size - 1} related configuration items: those that depend on ${ci.name} above it, those it needs below it. The table below lists the same.`),
    s("defs", {}, s("marker", { id: "arrow", viewBox: "0 0 10 10", refX: "10", refY: "5", markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse" },
      s("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "#6b7480" }))));
  for (const e of edges.values()) {
    const a = nodes.get(e.from), b = nodes.get(e.to);
    if (!a || !b) continue;
    const x1 = a.x + W / 2, y1 = a.y + (b.y > a.y ? H : 0), x2 = b.x + W / 2, y2 = b.y + (b.y > a.y ? 0 : H);
    svg.append(s("line", { class: "edge", x1, y1, x2, y2, "marker-end": "url(#arrow)" }),
      s("text", { class: "edge-label", x: (x1 + x2) / 2 + 4, y: (y1 + y2) / 2 }, e.kind.replaceAll("_", " ")));
  }
  for (const n of nodes.values()) {
    const cls = `node${n.id === ci.id ? " focus" : ""}${n.impacted ? " impacted" : ""}`;
    const label = n.name.length > 22 ? `${n.name.slice(0, 21)}…` : n.name;
    const box = s("g", { class: cls, "data-ci": n.name },
      s("rect", { x: n.x, y: n.y, width: W, height: H, rx: 6 }),
      s("text", { x: n.x + W / 2, y: n.y + 17, "text-anchor": "middle" }, label),
      s("text", { x: n.x + W / 2, y: n.y + 32, "text-anchor": "middle", class: "edge-label" }, (n.type || "").replaceAll("_", " ")));
    svg.append(n.id === ci.id ? box : s("a", { href: `#/cis/${n.id}`, "aria-label": `${n.name} (${n.type})` }, box));
  }
  return h("div", { class: "graph card" }, h("h2", {}, "Relations"),
    h("div", { class: "legend" },
      h("span", { class: "sw-focus" }, "this CI"),
      h("span", { class: "sw-impacted" }, "affected if it fails (above)"),
      h("span", { class: "sw-needed" }, "what it needs (below)")),
    svg);
}

export async function ci(key) {
  const c = await find(key);
  const [up, down] = await Promise.all([
    api("GET", `/v1/cis/${c.id}/impact`),
    api("GET", `/v1/cis/${c.id}/impact${query({ direction: "down" })}`),
  ]);
  const names = new Map([[c.id, c.name], ...[...(up.affected || []), ...(down.affected || [])].map((a) => [a.id, a.name])]);
  // Read as relations: "intranet depends on intranet-web depends on intranet-db" (up: from the
  // affected CI down to this one), "intranet-db runs on db-host-1" (down).
  const name = (id) => names.get(id) || id;
  const kind = (k) => ` ${(k || "").replaceAll("_", " ")} `;
  const pathText = (a, up) => {
    const p = a.path || [];
    if (!up) return p.map((step, i) => (i ? kind(step.kind) : "") + name(step.id)).join("");
    return p.slice().reverse().map((step, i, r) => name(step.id) + (i < r.length - 1 ? kind(step.kind) : "")).join("");
  };
  page(`${c.name}`,
    h("p", {}, link("#/cis", "← Configuration items")),
    h("section", { class: "card" }, facts([
      ["Type", c.ci_type.replaceAll("_", " ")],
      ["Status", c.status.replaceAll("_", " ")],
      ["Criticality", badge(c.criticality)],
      ["Owner", c.owner],
      ["Environment", c.environment],
      ...Object.entries(c.attributes || {}).map(([k, v]) => [k.replaceAll("_", " "), typeof v === "object" ? JSON.stringify(v) : String(v)]),
      ["Updated", when(c.updated_at)],
    ])),
    graph(c, up, down),
    h("section", { class: "card", "aria-labelledby": "impact-h" },
      h("h2", { id: "impact-h" }, "Impact analysis"),
      h("p", {}, `If ${c.name} fails: ${(up.affected || []).length} configuration item(s) affected`,
        (up.services || []).length ? `, and the services ${(up.services || []).map((x) => x.name || x.id || x).join(", ")}` : "", "."),
      table("Affected if it fails", [
        ["CI", (a) => link(`#/cis/${a.id}`, a.name)],
        ["Type", (a) => (a.ci_type || "").replaceAll("_", " ")],
        ["Criticality", (a) => badge(a.criticality)],
        ["Steps", (a) => String(a.depth)],
        ["Path", (a) => pathText(a, true)],
      ], up.affected || [], "Nothing depends on it."),
      h("h3", {}, "What it needs"),
      table("What it needs", [
        ["CI", (a) => link(`#/cis/${a.id}`, a.name)],
        ["Type", (a) => (a.ci_type || "").replaceAll("_", " ")],
        ["Steps", (a) => String(a.depth)],
        ["Path", (a) => pathText(a, false)],
      ], down.affected || [], "It needs nothing recorded.")));
}
