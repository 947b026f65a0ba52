// The approvals inbox: my open tasks, and one task with what is being decided.

import { api, query, session, nameCis, named } from "./api.js";
import { h, page, table, badge, when, facts, field, showErrors, clearErrors, flash, link } from "./ui.js";

export async function inbox() {
  const [mine, claimable] = await Promise.all([
    api("GET", `/v1/tasks${query({ assignee: "me", limit: 100 })}`),
    api("GET", `/v1/tasks${query({ candidate: "me", limit: 100 })}`),
  ]);
  const seen = new Set();
  const tasks = [...mine.items, ...claimable.items].filter((t) => !seen.has(t.id) && seen.add(t.id));
  tasks.sort((a, b) => (a.due_at || "9").localeCompare(b.due_at || "9"));
  const now = Date.now();
  page("Approvals inbox",
    h("p", { class: "muted" }, `${tasks.length} open task${tasks.length === 1 ? "" : "s"} for ${session().user.name || session().user.id}: assigned to you, or open to you by role.`),
    table("My open tasks", [
      ["Task", (t) => link(`#/tasks/${t.id}`, t.name)],
      ["About", (t) => t.business_key],
      ["Workflow", (t) => t.definition],
      ["For", (t) => t.assignee ? "you" : (t.candidate_roles.join(", ") || t.candidate_users.join(", "))],
      ["Due", (t) => t.due_at ? h("span", {}, when(t.due_at), Date.parse(t.due_at) < now ? [" ", badge("overdue")] : null) : "—"],
      ["Created", (t) => when(t.created_at)],
    ], tasks, "No open tasks. Nothing waits on you."));
}

/** The change a change workflow decides, with its conflicts and the freezes around it. */
async function changeContext(id) {
  let change;
  try {
    change = await api("GET", `/v1/changes/${encodeURIComponent(id)}`);
  } catch {
    return null;
  }
  const from = new Date(Date.now() - 86400e3);
  const to = new Date(Date.now() + 60 * 86400e3);
  const calendar = await api("GET", `/v1/changes/calendar${query({ from: from.toISOString(), to: to.toISOString() })}`).catch(() => null);
  const cis = (change.configuration_items || []).slice(0, 10);
  const [impacts, records] = await Promise.all([
    Promise.all(cis.map((ci) => api("GET", `/v1/cis/${encodeURIComponent(ci)}/impact`).then((r) => ({ ci, impact: r })).catch(() => ({ ci, impact: null })))),
    Promise.all(cis.map((ci) => api("GET", `/v1/cis/${encodeURIComponent(ci)}`).catch(() => null))),
  ]);
  // CI ids as their names, wherever the change or its conflicts name them.
  const names = new Map();
  for (const r of records) if (r) names.set(r.id, r.name);
  for (const { impact } of impacts) for (const a of impact?.affected || []) names.set(a.id, a.name);
  await nameCis((change.conflicts || []).map((c) => c.reason), names);
  return { change, freezes: calendar?.freeze_windows || [], impacts, names };
}

function overlaps(a1, a2, b1, b2) {
  return a1 && a2 && Date.parse(a1) < Date.parse(b2) && Date.parse(b1) < Date.parse(a2);
}

function impactedServices(impacts) {
  const names = new Set();
  for (const { impact } of impacts) {
    for (const s of impact?.services || []) names.add(s.name || s.id || s);
  }
  return [...names];
}

function changeSection({ change, freezes, impacts, names }) {
  const risk = change.risk || {};
  const services = impactedServices(impacts);
  const inFreeze = freezes.filter((f) => overlaps(change.window_start, change.window_end, f.start, f.end));
  return h("section", { class: "card", "aria-labelledby": "change-h" },
    h("h2", { id: "change-h" }, `${change.number}: ${change.title}`),
    facts([
      ["State", badge(change.state)],
      ["Category", change.category],
      ["Requester", change.requester],
      ["Window", change.window_start ? `${when(change.window_start)} – ${when(change.window_end)}` : "not planned"],
      ["Reason", change.reason],
      ["CIs", (change.configuration_items || []).length ? h("span", {}, change.configuration_items.map((ci, i) => [i ? ", " : "", link(`#/cis/${encodeURIComponent(ci)}`, names.get(ci) || ci)])) : "none"],
      ["Impacted services", services.length ? services.join(", ") : "none found"],
      ["Risk", risk.level ? h("span", {}, badge(risk.level), risk.score !== undefined ? ` score ${risk.score}` : "") : "not yet scored"],
    ]),
    (risk.factors || []).length ? [h("h3", {}, "Risk factors"), table("Risk factors", [
      ["Factor", (f) => f.factor],
      ["Points", (f) => String(f.points)],
      ["Found", (f) => f.found ?? ""],
    ], risk.factors)] : null,
    h("h3", {}, "Conflicts"),
    (change.conflicts || []).length
      ? h("ul", {}, change.conflicts.map((c) => h("li", {}, h("strong", {}, c.number), ` (${c.state}): ${named(c.reason, names)}`)))
      : h("p", { class: "muted" }, "No other active change overlaps this one."),
    h("h3", {}, "Freeze calendar"),
    inFreeze.length
      ? h("div", { class: "note" }, h("strong", {}, "The window falls in a freeze: "), inFreeze.map((f) => `${f.name} (${when(f.start)} – ${when(f.end)})`).join("; "))
      : null,
    freezes.length
      ? h("ul", {}, freezes.map((f) => h("li", {}, `${f.name}: ${when(f.start)} – ${when(f.end)}`)))
      : h("p", { class: "muted" }, "No freeze in the next 60 days."),
    h("p", {}, link("#/calendar", "Open the change calendar")));
}

function quorumSection(q) {
  const counts = Object.entries(q.counts || {});
  return h("section", { class: "card", "aria-labelledby": "quorum-h" },
    h("h2", { id: "quorum-h" }, "Quorum so far"),
    facts([
      ["Rule", q.rule || "everyone decides"],
      ["Members", q.members.join(", ")],
      ["Votes", counts.length ? counts.map(([o, n]) => `${o}: ${n}`).join(", ") : "none yet"],
    ]),
    q.votes.length ? h("ul", {}, q.votes.map((v) => h("li", {}, h("strong", {}, v.user), " ", badge(v.outcome), v.comment ? ` “${v.comment}”` : ""))) : null);
}

function summarySection(summary) {
  if (summary === null || summary === undefined) return null;
  const flat = typeof summary === "object" && !Array.isArray(summary)
    ? facts(Object.entries(summary).filter(([, v]) => typeof v !== "object" || v === null).map(([k, v]) => [k.replaceAll("_", " "), String(v ?? "—")]))
    : h("p", {}, typeof summary === "string" ? summary : JSON.stringify(summary));
  return h("section", { class: "card", "aria-labelledby": "summary-h" }, h("h2", { id: "summary-h" }, "What is being decided"), flat);
}

function decisionForm(task) {
  const form = h("form", { class: "stack", novalidate: true, "aria-labelledby": "decide-h" });
  const fields = Object.entries(task.form || {}).map(([name, spec]) => {
    const label = name.replaceAll("_", " ");
    if (spec.enum) {
      return field(name, label, { kind: "select", required: spec.required, options: [["", "Choose…"], ...spec.enum.map((v) => [String(v), String(v)])] });
    }
    return field(name, label, { kind: spec.type === "number" || spec.type === "integer" ? "number" : "text", required: spec.required });
  });
  const comment = field("comment", "Comment", { kind: "textarea", hint: "Recorded with your decision." });
  const buttons = h("div", { class: "row" }, (task.outcomes || []).map((outcome) =>
    h("button", { type: "submit", value: outcome, class: /reject/.test(outcome) ? "danger" : "primary" }, outcome.replaceAll("_", " ").replace(/^./, (c) => c.toUpperCase()))));
  form.append(h("h2", { id: "decide-h" }, "Your decision"), ...fields, comment, buttons);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const outcome = e.submitter?.value;
    clearErrors(form);
    const values = {};
    for (const [name, spec] of Object.entries(task.form || {})) {
      const raw = form.elements[name].value.trim();
      if (raw === "") continue;
      values[name] = spec.type === "number" || spec.type === "integer" ? Number(raw) : raw;
    }
    const body = { outcome };
    const text = form.elements.comment.value.trim();
    if (text) body.comment = text;
    if (Object.keys(values).length) body.fields = values;
    for (const b of form.querySelectorAll("button")) b.disabled = true;
    try {
      await api("POST", `/v1/tasks/${task.id}/complete`, body);
      flash(`Decided: ${outcome}. ${task.name} (${task.summary?.number || task.business_key}).`);
      location.hash = "#/inbox";
    } catch (error) {
      showErrors(form, error);
    } finally {
      for (const b of form.querySelectorAll("button")) b.disabled = false;
    }
  });
  return h("section", { class: "card" }, form);
}

export async function task(id) {
  const t = await api("GET", `/v1/tasks/${encodeURIComponent(id)}`);
  const context = /change/.test(t.definition) ? await changeContext(t.business_key) : null;
  const open = t.state === "open";
  page(t.name,
    h("p", {}, link("#/inbox", "← Approvals inbox")),
    h("div", { class: "split" },
      h("div", {},
        context ? changeSection(context) : summarySection(t.summary),
        t.quorum ? quorumSection(t.quorum) : null),
      h("div", {},
        h("section", { class: "card" }, facts([
          ["State", badge(t.state)],
          ["Workflow", t.definition],
          ["About", context ? context.change.number : t.business_key],
          ["Assigned to", t.assignee || "—"],
          ["Open to", [...t.candidate_roles.map((r) => `role ${r}`), ...t.candidate_users].join(", ") || "—"],
          ["Due", when(t.due_at)],
          ["Decided by", t.completed_by],
          ["Outcome", t.outcome],
        ])),
        open ? decisionForm(t) : h("p", { class: "muted" }, "This task is closed."))));
}

