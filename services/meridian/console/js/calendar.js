// The change calendar: planned changes, freeze windows and conflicts on a timeline.

import { api, query, nameCis, named } from "./api.js";
import { h, s, page, table, badge, when, day, field, link } from "./ui.js";

const DAY = 86400e3;

function startOfDay(d) {
  const x = new Date(d);
  x.setUTCHours(0, 0, 0, 0);
  return x;
}

function timeline(from, to, changes, freezes) {
  const labelW = 200, dayW = 36, laneH = 26;
  const days = Math.round((to - from) / DAY);
  const width = labelW + days * dayW + 10;
  const lanes = 1 + changes.length;
  const height = 30 + lanes * laneH + 10;
  const x = (t) => labelW + Math.max(0, Math.min(days * dayW, ((Date.parse(t) - from) / DAY) * dayW));
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-labelledby": "tl-t tl-d" },
    s("title", { id: "tl-t" }, `Changes and freezes from ${day(from.toISOString())} to ${day(to.toISOString())}`),
    s("desc", { id: "tl-d" }, `${changes.length} planned change(s), ${freezes.length} freeze window(s); the table below lists them.`));
  for (let i = 0; i <= days; i++) {
    const d = new Date(from.getTime() + i * DAY);
    const xx = labelW + i * dayW;
    svg.append(s("line", { class: "axis", x1: xx, x2: xx, y1: 18, y2: height - 6 }));
    if (i < days && (days <= 31 || i % 7 === 0)) {
      svg.append(s("text", { x: xx + 3, y: 13 }, `${d.getUTCDate()}/${d.getUTCMonth() + 1}`));
    }
  }
  svg.append(s("text", { x: 4, y: 30 + laneH / 2 + 4 }, "Freezes"));
  for (const f of freezes) {
    svg.append(s("rect", { class: "freeze", x: x(f.start), y: 22, width: Math.max(2, x(f.end) - x(f.start)), height: lanes * laneH + 8 }),
      s("text", { x: x(f.start) + 3, y: 30 + laneH / 2 + 4 }, f.name));
  }
  changes.forEach((c, i) => {
    const y = 30 + (i + 1) * laneH;
    const conflict = (c.conflicts || []).length > 0;
    svg.append(s("text", { x: 4, y: y + laneH / 2 + 2 }, `${c.number} ${c.title}`.slice(0, 30)),
      s("a", { href: `#/calendar?change=${c.id}`, "aria-label": `${c.number}: ${c.title}, ${when(c.window_start)} to ${when(c.window_end)}${conflict ? ", in conflict" : ""}` },
        s("rect", { class: `change${conflict ? " conflict" : ""}`, x: x(c.window_start), y: y + 4, rx: 3, height: laneH - 10,
          width: Math.max(4, x(c.window_end) - x(c.window_start)) })));
  });
  return svg;
}

export async function calendar() {
  const params = new URLSearchParams(location.hash.split("?")[1] || "");
  const from = params.get("from") ? startOfDay(params.get("from")) : startOfDay(Date.now() - 2 * DAY);
  const to = params.get("to") ? startOfDay(params.get("to")) : new Date(from.getTime() + 28 * DAY);
  const answer = await api("GET", `/v1/changes/calendar${query({ from: from.toISOString(), to: to.toISOString() })}`);
  const changes = answer.changes.filter((c) => c.window_start && c.window_end);
  const freezes = answer.freeze_windows || [];
  const names = await nameCis(changes.flatMap((c) => (c.conflicts || []).map((x) => x.reason)), new Map());
  const inFreeze = (c) => freezes.filter((f) => Date.parse(c.window_start) < Date.parse(f.end) && Date.parse(f.start) < Date.parse(c.window_end));
  const range = h("form", { class: "filters", "aria-label": "Range" },
    field("from", "From", { kind: "date", value: from.toISOString().slice(0, 10) }),
    field("to", "To", { kind: "date", value: to.toISOString().slice(0, 10) }),
    h("button", { type: "submit" }, "Show"));
  range.addEventListener("submit", (e) => {
    e.preventDefault();
    location.hash = `#/calendar${query({ from: range.elements.from.value, to: range.elements.to.value })}`;
  });
  const shift = (days) => `#/calendar${query({
    from: new Date(from.getTime() + days * DAY).toISOString().slice(0, 10),
    to: new Date(to.getTime() + days * DAY).toISOString().slice(0, 10) })}`;
  const selected = params.get("change");
  page("Change calendar",
    range,
    h("p", { class: "row" }, link(shift(-28), "← Earlier"), h("span", { class: "spacer" }), link(shift(28), "Later →")),
    h("div", { class: "legend" }, h("span", { class: "sw-change" }, "planned change"), h("span", { class: "sw-conflict" }, "in conflict"), h("span", { class: "sw-freeze" }, "freeze window")),
    h("div", { class: "timeline card" }, timeline(from, to, changes, freezes)),
    h("h2", {}, "Changes"),
    table("Planned changes", [
      ["Change", (c) => h("span", { class: c.id === selected ? "badge info" : "" }, c.number)],
      ["Title", (c) => c.title],
      ["State", (c) => badge(c.state)],
      ["Window", (c) => `${when(c.window_start)} – ${when(c.window_end)}`],
      ["Conflicts", (c) => (c.conflicts || []).length ? h("ul", {}, c.conflicts.map((x) => h("li", {}, `${x.number}: ${named(x.reason, names)}`))) : "none"],
      ["Freeze", (c) => inFreeze(c).map((f) => f.name).join(", ") || "—"],
    ], changes, "No change is planned in this range."),
    h("h2", {}, "Freeze windows"),
    table("Freeze windows", [
      ["Name", (f) => f.name],
      ["From", (f) => when(f.start)],
      ["To", (f) => when(f.end)],
    ], freezes, "No freeze in this range."));
}
