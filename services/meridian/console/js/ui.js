// Building the page: elements without innerHTML, form fields with their errors, tables.

/** An element: h("a", { href: "#/x" }, "text", child). Attributes starting with "on" are listeners. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

const SVG = "http://www.w3.org/2000/svg";

/** An SVG element. */
export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v);
  }
  append(el, children);
  return el;
}

/** Replaces the page's content and gives it a title (announced to screen readers). */
export function page(title, ...children) {
  const main = document.getElementById("main");
  main.replaceChildren(h("h1", {}, title), ...children);
  document.title = `${title} · Meridian`;
  return main;
}

export function status(message) {
  document.getElementById("status").textContent = message || "";
}

let flashed = "";

/** A message for the next page (shown once it is drawn, e.g. after a decision). */
export function flash(message) {
  flashed = message;
}

/** The message left for this page, once. */
export function takeFlash() {
  const message = flashed;
  flashed = "";
  return message;
}

export function when(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

export function day(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleDateString(undefined, { dateStyle: "medium" });
}

const TONES = {
  good: ["approved", "resolved", "closed", "completed", "fulfilled", "met", "implemented", "scheduled", "passed", "evidenced", "active", "yes"],
  bad: ["rejected", "breached", "failed", "cancelled", "withdrawn", "missing", "gap", "high", "critical", "no"],
  warn: ["pending", "on_hold", "open", "new", "in_progress", "assessing", "submitted", "medium", "at_risk", "partial", "draft"],
};

/** A state as a labelled badge. */
export function badge(text) {
  const t = String(text ?? "—");
  const tone = Object.keys(TONES).find((k) => TONES[k].includes(t.toLowerCase())) || "info";
  return h("span", { class: `badge ${tone}` }, t.replaceAll("_", " "));
}

/** A table; columns are [header, row => cell]. Rows collapse to labelled lines on a phone. */
export function table(caption, columns, rows, empty = "Nothing here.") {
  if (!rows.length) return h("p", { class: "muted" }, empty);
  return h("div", { class: "table-wrap" },
    h("table", { class: "responsive" },
      caption ? h("caption", { class: "visually-hidden" }, caption) : null,
      h("thead", {}, h("tr", {}, columns.map(([name]) => h("th", { scope: "col" }, name)))),
      h("tbody", {}, rows.map((row) => h("tr", {}, columns.map(([name, cell]) => h("td", { "data-label": name }, cell(row))))))));
}

/** Facts as a definition list; [label, value] pairs, empty values left out. */
export function facts(pairs) {
  return h("dl", { class: "facts" }, pairs
    .filter(([, v]) => v !== undefined && v !== null && v !== "")
    .map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

let fieldId = 0;

/**
 * A labelled form field with a hint and a slot for its error. `kind` is "text", "textarea",
 * "select" (with `options` as [value, label]) or another input type.
 */
export function field(name, label, { kind = "text", options = [], hint, value, required, attrs = {} } = {}) {
  const id = `f${++fieldId}-${name}`;
  const errorId = `${id}-error`;
  const hintId = hint ? `${id}-hint` : null;
  const common = { id, name, required, "aria-describedby": [hintId, errorId].filter(Boolean).join(" "), ...attrs };
  let control;
  if (kind === "textarea") control = h("textarea", common, value ?? "");
  else if (kind === "select") {
    control = h("select", common, options.map(([v, l]) => h("option", { value: v, selected: v === value }, l)));
  } else control = h("input", { type: kind, value: value ?? "", ...common });
  return h("div", { class: "field", "data-field": name },
    h("label", { for: id }, label, required ? h("span", { "aria-hidden": "true" }, " *") : null),
    hint ? h("div", { class: "hint", id: hintId }, hint) : null,
    control,
    h("div", { class: "error", id: errorId, role: "alert" }));
}

/** Clears a form's errors. */
export function clearErrors(form) {
  for (const f of form.querySelectorAll(".field")) {
    f.classList.remove("invalid");
    f.querySelector(".error").textContent = "";
    const control = f.querySelector("input, select, textarea");
    if (control) control.removeAttribute("aria-invalid");
  }
  const summary = form.querySelector(".alert");
  if (summary) summary.remove();
}

/**
 * Shows an API error on a form: each invalid parameter next to its field (the first one
 * focused), the rest in a summary at the top.
 */
export function showErrors(form, error) {
  clearErrors(form);
  const loose = [];
  let first = null;
  for (const [name, reason] of Object.entries(error.fields || {})) {
    const key = name.replace(/\[\d+\]$/, "").split(".")[0];
    const f = form.querySelector(`.field[data-field="${CSS.escape(key)}"]`);
    if (f) {
      f.classList.add("invalid");
      f.querySelector(".error").textContent = `${name}: ${reason}`;
      const control = f.querySelector("input, select, textarea");
      control.setAttribute("aria-invalid", "true");
      first = first || control;
    } else {
      loose.push(`${name}: ${reason}`);
    }
  }
  if (loose.length || !first) {
    const text = loose.length ? loose.join("; ") : error.message;
    form.prepend(h("div", { class: "alert", role: "alert" }, h("strong", {}, error.problem?.title || "Not saved"), " ", text));
  }
  (first || form.querySelector(".alert"))?.focus?.();
}

/** The values of a form's named controls; empty ones left out. */
export function values(form) {
  const out = {};
  for (const el of form.elements) {
    if (!el.name) continue;
    const v = el.value.trim();
    if (v !== "") out[el.name] = v;
  }
  return out;
}

/** A failure to load a page, shown in place of it. */
export function failure(error) {
  return h("div", { class: "alert", role: "alert" },
    h("strong", {}, error.problem?.title || "Something went wrong"), " ",
    error.message || String(error),
    error.problem?.trace_id ? h("div", { class: "muted" }, `Trace id: ${error.problem.trace_id}`) : null);
}

export function link(href, text) {
  return h("a", { href }, text);
}
