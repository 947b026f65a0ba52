// The service desk: incidents, requests and problems. Lists with filters, a detail page with
// the history, and create and update forms that show the API's errors next to their fields.

import { api, query } from "./api.js";
import { h, page, table, badge, when, facts, field, showErrors, clearErrors, values, status, flash, link } from "./ui.js";

let documentCache = null;

/** The values an enum of the API document allows, e.g. enumOf("Level"). */
async function enumOf(schema) {
  if (!documentCache) documentCache = await api("GET", "/v1/openapi.json");
  const s = documentCache.components?.schemas?.[schema];
  return s?.enum || s?.oneOf?.flatMap((o) => o.enum || []) || [];
}

const options = (list, blank) => [...(blank ? [["", blank]] : []), ...list.map((v) => [v, v.replaceAll("_", " ")])];

// Each kind's states come from the API document (`stateSchema`) where it names them.
const KINDS = {
  incidents: { title: "Incidents", one: "incident", stateSchema: "State" },
  requests: { title: "Service requests", one: "request", stateSchema: "RequestState" },
  problems: { title: "Problems", one: "problem", states: ["new", "under_investigation", "known_error", "resolved", "closed", "cancelled"] },
};

async function statesOf(kind) {
  const spec = KINDS[kind];
  return spec.states || enumOf(spec.stateSchema);
}

function filtersFromHash() {
  const q = location.hash.split("?")[1] || "";
  return Object.fromEntries(new URLSearchParams(q));
}

function filterForm(kind, current, states) {
  const spec = KINDS[kind];
  const parts = [field("state", "State", { kind: "select", options: options(states, "Any"), value: current.state || "" })];
  if (kind === "incidents") {
    parts.push(
      field("priority", "Priority", { kind: "select", options: [["", "Any"], ...[1, 2, 3, 4, 5].map((p) => [String(p), `P${p}`])], value: current.priority || "" }),
      field("assignee", "Assignee", { value: current.assignee || "", hint: "A user id, or me" }),
      field("group", "Group", { value: current.group || "" }),
      field("service", "Service", { value: current.service || "" }),
      field("sort", "Sort", { kind: "select", value: current.sort || "-created_at", options: [
        ["-created_at", "Newest first"], ["created_at", "Oldest first"], ["-updated_at", "Recently updated"], ["priority", "Highest priority"]] }));
  }
  if (kind === "requests") parts.push(field("service", "Service", { value: current.service || "" }));
  const form = h("form", { class: "filters", role: "search", "aria-label": `Filter ${spec.title.toLowerCase()}` }, parts,
    h("button", { type: "submit" }, "Apply"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const v = values(form);
    if (v.sort === "-created_at") delete v.sort;
    location.hash = `#/${kind}${query(v)}`;
  });
  return form;
}

const COLUMNS = {
  incidents: [
    ["Number", (i) => link(`#/incidents/${i.id}`, i.number)],
    ["Title", (i) => i.title],
    ["Priority", (i) => badge(`P${i.priority}`)],
    ["State", (i) => badge(i.state)],
    ["Service", (i) => i.service || "—"],
    ["Assigned", (i) => [i.assignment_group, i.assignee].filter(Boolean).join(" / ") || "—"],
    ["Updated", (i) => when(i.updated_at)],
  ],
  requests: [
    ["Number", (r) => link(`#/requests/${r.id}`, r.number)],
    ["Item", (r) => r.item_name || r.item],
    ["Service", (r) => r.service],
    ["State", (r) => badge(r.state)],
    ["For", (r) => r.requested_for],
    ["Updated", (r) => when(r.updated_at)],
  ],
  problems: [
    ["Number", (p) => link(`#/problems/${p.id}`, p.number)],
    ["Title", (p) => p.title],
    ["State", (p) => badge(p.state)],
    ["Service", (p) => p.service || "—"],
    ["Incidents", (p) => String((p.incidents || []).length)],
    ["Updated", (p) => when(p.updated_at)],
  ],
};

export async function list(kind) {
  const spec = KINDS[kind];
  const current = filtersFromHash();
  const params = { ...current, limit: 50 };
  const answer = await api("GET", `/v1/${kind}${query(params)}`);
  const items = Array.isArray(answer) ? answer : answer.items;
  const more = answer.next_cursor || answer.next;
  const body = h("div", {}, table(spec.title, COLUMNS[kind], items, `No ${kind} match.`));
  if (more) {
    const button = h("button", { type: "button" }, "Load more");
    let cursor = more;
    button.addEventListener("click", async () => {
      const next = await api("GET", `/v1/${kind}${query({ ...params, [answer.next_cursor ? "cursor" : "after"]: cursor })}`);
      const rows = Array.isArray(next) ? next : next.items;
      body.querySelector("tbody")?.append(...rows.map((row) => h("tr", {}, COLUMNS[kind].map(([name, cell]) => h("td", { "data-label": name }, cell(row))))));
      cursor = next.next_cursor || next.next;
      if (!cursor) button.remove();
    });
    body.append(h("p", {}, button));
  }
  page(spec.title,
    h("p", {}, h("a", { class: "button primary", href: `#/${kind}/new` }, `New ${spec.one}`)),
    filterForm(kind, current, await statesOf(kind)),
    body);
}

// --- Create

async function incidentFields(values = {}) {
  const levels = await enumOf("Level");
  return [
    field("title", "Title", { required: true, value: values.title, hint: "What is wrong, in a line (1–200 characters)." }),
    field("description", "Description", { kind: "textarea", value: values.description }),
    field("service", "Service", { value: values.service, hint: "The catalogue id of the affected service, e.g. email." }),
    field("configuration_items", "Configuration items", { value: (values.configuration_items || []).join(", "), hint: "CI ids or names, comma-separated." }),
    field("category", "Category", { value: values.category }),
    field("impact", "Impact", { kind: "select", required: true, options: options(levels, "Choose…"), value: values.impact || "" }),
    field("urgency", "Urgency", { kind: "select", required: true, options: options(levels, "Choose…"), value: values.urgency || "" }),
  ];
}

function incidentBody(form, { creating }) {
  const v = values(form);
  const body = { ...v };
  if ("configuration_items" in v || !creating) {
    body.configuration_items = (v.configuration_items || "").split(",").map((s) => s.trim()).filter(Boolean);
  }
  if (!creating) {
    // Cleared optional fields are sent empty, so the API clears them.
    for (const name of ["service", "category", "description"]) if (!(name in v)) body[name] = "";
  }
  return body;
}

async function requestFields(form) {
  const items = await api("GET", "/v1/request-items");
  const item = field("item", "Item", { kind: "select", required: true,
    options: [["", "Choose…"], ...items.map((i) => [`${i.service}/${i.id}`, `${i.name} (${i.service})`])] });
  const extra = h("div", { class: "stack" });
  item.querySelector("select").addEventListener("change", (e) => {
    const chosen = items.find((i) => `${i.service}/${i.id}` === e.target.value);
    extra.replaceChildren(...Object.entries(chosen?.fields || {}).map(([name, spec]) =>
      field(`fields.${name}`, name.replaceAll("_", " "), { required: spec.required, kind: spec.type === "integer" || spec.type === "number" ? "number" : "text",
        hint: spec.type === "string_list" ? "Comma-separated." : spec.description })));
    for (const f of extra.querySelectorAll(".field")) f.dataset.field = "fields";
    form.dataset.item = e.target.value;
  });
  return { parts: [item, extra, field("requested_for", "For", { hint: "A user id; empty for yourself." })], items };
}

function requestBody(form, items) {
  const [service, item] = (form.elements.item.value || "/").split("/");
  const chosen = items.find((i) => i.service === service && i.id === item);
  const fields = {};
  for (const [name, spec] of Object.entries(chosen?.fields || {})) {
    const raw = form.elements[`fields.${name}`]?.value.trim();
    if (!raw) continue;
    if (spec.type === "integer" || spec.type === "number") fields[name] = Number(raw);
    else if (spec.type === "string_list") fields[name] = raw.split(",").map((s) => s.trim()).filter(Boolean);
    else fields[name] = raw;
  }
  const body = { service, item, fields };
  const forWhom = form.elements.requested_for.value.trim();
  if (forWhom) body.requested_for = forWhom;
  return body;
}

function problemFields() {
  return [
    field("title", "Title", { required: true }),
    field("description", "Description", { kind: "textarea" }),
    field("service", "Service"),
    field("incidents", "Incidents", { hint: "Numbers or ids of the incidents it explains, comma-separated." }),
  ];
}

export async function create(kind) {
  const spec = KINDS[kind];
  const form = h("form", { class: "stack card", novalidate: true });
  let build;
  if (kind === "incidents") {
    form.append(...(await incidentFields()));
    build = () => incidentBody(form, { creating: true });
  } else if (kind === "requests") {
    const { parts, items } = await requestFields(form);
    form.append(...parts);
    build = () => requestBody(form, items);
  } else {
    form.append(...problemFields());
    build = () => {
      const v = values(form);
      return { ...v, incidents: (v.incidents || "").split(",").map((s) => s.trim()).filter(Boolean) };
    };
  }
  form.append(h("div", { class: "row" }, h("button", { class: "primary" }, `Create the ${spec.one}`), link(`#/${kind}`, "Cancel")));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(form);
    try {
      const made = await api("POST", `/v1/${kind}`, build());
      flash(`${made.number} created.`);
      location.hash = `#/${kind}/${made.id}`;
    } catch (error) {
      showErrors(form, error);
    }
  });
  page(`New ${spec.one}`, form);
}

// --- Detail

function history(entries) {
  if (!entries?.length) return h("p", { class: "muted" }, "No history.");
  return h("ol", { class: "history" }, entries.map((e) => h("li", {},
    h("div", {}, h("strong", {}, (e.kind || e.action || "").replaceAll("_", " ")), " · ", e.actor || e.by || "", " · ", h("time", { datetime: e.at }, when(e.at))),
    describe(e.details ?? e.after ?? e.note ?? e.text))));
}

function describe(details) {
  if (details === null || details === undefined) return null;
  if (typeof details !== "object") return h("div", { class: "muted" }, String(details));
  const text = Object.entries(details)
    .filter(([, v]) => v !== null && v !== "" && typeof v !== "object")
    .map(([k, v]) => `${k.replaceAll("_", " ")}: ${v}`).join("; ");
  return text ? h("div", { class: "muted" }, text) : null;
}

/** A small form posting to an action; `fields` are shown, `build` makes the body. */
function actionForm(title, path, fields, build, done, submit = title) {
  const form = h("form", { class: "stack", novalidate: true }, h("h3", {}, title), ...fields,
    h("div", {}, h("button", { class: /^(Cancel|Reject)/.test(submit) ? "danger" : "primary" }, submit)));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(form);
    try {
      await api("POST", path, build(form));
      status(`${title}: done.`);
      done();
    } catch (error) {
      showErrors(form, error);
    }
  });
  return form;
}

async function incidentDetail(id) {
  const i = await api("GET", `/v1/incidents/${encodeURIComponent(id)}`);
  const reload = () => incidentDetail(id);
  const allowed = new Set(i.allowed_actions);
  const actions = [];
  if (allowed.has("assign")) {
    actions.push(actionForm("Assign", `/v1/incidents/${i.id}/assign`,
      [field("group", "Group", { required: true, value: i.assignment_group }), field("assignee", "Assignee", { value: i.assignee })],
      (f) => values(f), reload));
  }
  if (allowed.has("start")) {
    actions.push(actionForm("Start work", `/v1/incidents/${i.id}/start`, [], () => undefined, reload, "Start"));
  }
  if (allowed.has("resolve")) {
    const codes = await enumOf("ResolutionCode");
    actions.push(actionForm("Resolve", `/v1/incidents/${i.id}/resolve`,
      [field("code", "Resolution code", { kind: "select", required: true, options: options(codes, "Choose…") }),
        field("notes", "What was done", { kind: "textarea", required: true })],
      (f) => values(f), reload));
  }
  if (allowed.has("close")) {
    actions.push(actionForm("Close", `/v1/incidents/${i.id}/close`, [], () => undefined, reload));
  }
  if (allowed.has("note")) {
    const kinds = await enumOf("NoteKind");
    actions.push(actionForm("Add a note", `/v1/incidents/${i.id}/notes`,
      [field("kind", "Kind", { kind: "select", options: options(kinds.length ? kinds : ["work_note", "comment"]) }),
        field("body", "Text", { kind: "textarea", required: true })],
      (f) => values(f), reload, "Add"));
  }
  const edit = h("form", { class: "stack", novalidate: true }, h("h2", {}, "Edit"), ...(await incidentFields(i)),
    h("div", {}, h("button", { class: "primary" }, "Save")));
  edit.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(edit);
    try {
      await api("PATCH", `/v1/incidents/${i.id}`, incidentBody(edit, { creating: false }), { "If-Match": `"${i.version}"` });
      status(`${i.number} saved.`);
      reload();
    } catch (error) {
      showErrors(edit, error);
    }
  });
  page(`${i.number}: ${i.title}`,
    h("p", {}, link("#/incidents", "← Incidents")),
    h("div", { class: "split" },
      h("div", {},
        h("section", { class: "card" }, facts([
          ["State", badge(i.state)],
          ["Priority", `P${i.priority} (impact ${i.impact}, urgency ${i.urgency})`],
          ["Service", i.service],
          ["CIs", i.configuration_items.length ? h("span", {}, i.configuration_items.map((c, n) => [n ? ", " : "", link(`#/cis/${encodeURIComponent(c)}`, c)])) : null],
          ["Caller", i.caller],
          ["Group", i.assignment_group],
          ["Assignee", i.assignee],
          ["Major", i.major ? "yes" : null],
          ["Resolution", i.resolution_code ? `${i.resolution_code}: ${i.resolution_notes || ""}` : null],
          ["Created", when(i.created_at)],
          ["Updated", when(i.updated_at)],
        ]), i.description ? h("p", {}, i.description) : null),
        h("section", { class: "card" }, h("h2", {}, "History"), history(i.history)),
        allowed.has("update") ? h("section", { class: "card" }, edit) : null),
      h("div", {}, actions.map((a) => h("section", { class: "card" }, a)))));
}

/** The fields each request action takes: a reason to reject or cancel, what was delivered to fulfil. */
const REQUEST_FIELDS = {
  reject: [["comment", "Why", true]],
  cancel: [["comment", "Why", true]],
  fulfil: [["notes", "What was delivered", true]],
  approve: [["comment", "Comment", false]],
};

/** The fields each problem action takes (its path is the action with `-` for `_`). */
const PROBLEM_FIELDS = {
  known_error: [["symptoms", "Symptoms", true], ["root_cause", "Root cause", true], ["workaround", "Workaround", true]],
  resolve: [["resolution", "The fix", true]],
  reopen: [["reason", "Why", true]],
  cancel: [["reason", "Why", true]],
};

/** A form per allowed action, with the fields that action takes and its errors next to them. */
function actionForms(kind, record, spec, reload) {
  return (record.allowed_actions || []).filter((a) => a !== "note" && a !== "update").map((action) => {
    const fields = (spec[action] || []).map(([name, label, required]) => field(name, label, { kind: "textarea", required }));
    const title = action.replaceAll("_", " ").replace(/^./, (c) => c.toUpperCase());
    return actionForm(title, `/v1/${kind}/${record.id}/${action.replaceAll("_", "-")}`, fields,
      (f) => (fields.length ? values(f) : undefined), reload, title);
  });
}

async function requestDetail(id) {
  const r = await api("GET", `/v1/requests/${encodeURIComponent(id)}`);
  const reload = () => requestDetail(id);
  const forms = actionForms("requests", r, REQUEST_FIELDS, reload);
  page(`${r.number}: ${r.item_name || r.item}`,
    h("p", {}, link("#/requests", "← Service requests")),
    h("div", { class: "split" },
      h("div", {},
        h("section", { class: "card" }, facts([
          ["State", badge(r.state)],
          ["Service", r.service],
          ["Requested by", r.requested_by],
          ["For", r.requested_for],
          ["Approved by", r.approved_by],
          ["Workflow", r.workflow],
          ["Created", when(r.created_at)],
        ]), h("h3", {}, "Form"), facts(Object.entries(r.fields || {}).map(([k, v]) => [k, Array.isArray(v) ? v.join(", ") : String(v)]))),
        h("section", { class: "card" }, h("h2", {}, "History"), history(r.history))),
      h("div", {}, forms.map((f) => h("section", { class: "card" }, f)))));
}

async function problemDetail(id) {
  const p = await api("GET", `/v1/problems/${encodeURIComponent(id)}`);
  const reload = () => problemDetail(id);
  const forms = actionForms("problems", p, PROBLEM_FIELDS, reload);
  forms.push(actionForm("Add a note", `/v1/problems/${p.id}/notes`,
    [field("kind", "Kind", { kind: "select", options: [["analysis", "root-cause analysis"], ["note", "note"]] }),
      field("body", "Text", { kind: "textarea", required: true })], (f) => values(f), reload, "Add"));
  page(`${p.number}: ${p.title}`,
    h("p", {}, link("#/problems", "← Problems")),
    h("div", { class: "split" }, h("div", {},
    h("section", { class: "card" }, facts([
      ["State", badge(p.state)],
      ["Service", p.service],
      ["Source", p.source],
      ["Incidents", (p.incidents || []).join(", ")],
      ["Symptoms", p.symptoms],
      ["Root cause", p.root_cause],
      ["Workaround", p.workaround],
      ["Resolution", p.resolution],
      ["Changes", (p.changes || []).join(", ")],
      ["Recurrences", p.recurrences !== undefined ? String(p.recurrences) : null],
      ["Created", when(p.created_at)],
    ]), p.description ? h("p", {}, p.description) : null),
    h("section", { class: "card" }, h("h2", {}, "History"), history(p.history))),
    h("div", {}, forms.map((f) => h("section", { class: "card" }, f)))));
}

export async function detail(kind, id) {
  if (kind === "incidents") return incidentDetail(id);
  if (kind === "requests") return requestDetail(id);
  return problemDetail(id);
}
