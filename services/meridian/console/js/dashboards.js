// Dashboards: SLA attainment and breaches, availability, and the ISO/IEC 20000-1 evidence report
// with its gaps.

import { api } from "./api.js";
import { h, page, table, badge, when, facts } from "./ui.js";
import { bars, columns } from "./charts.js";

export async function serviceLevels() {
  const services = await api("GET", "/v1/services");
  const [reports, breaches] = await Promise.all([
    Promise.all(services.map((svc) => api("GET", `/v1/reports/services/${encodeURIComponent(svc.id)}`).catch(() => null))),
    api("GET", "/v1/breaches"),
  ]);
  const rows = services.map((svc, i) => ({ svc, report: reports[i] })).filter((r) => r.report);
  const attainment = rows.flatMap(({ svc, report }) => report.attainment.map((a) => ({
    label: `${svc.name} ${a.metric}`, value: a.percent, bad: a.percent !== null && a.breached > 0, a })));
  const availability = rows.map(({ svc, report }) => ({
    label: svc.name, value: report.availability.percent, bad: report.availability.met === false, report }));
  const weeks = new Map();
  for (const { report } of rows) {
    for (const [week, n] of Object.entries(report.incidents_by_week)) weeks.set(week, (weeks.get(week) || 0) + n);
  }
  const trend = [...weeks.entries()].sort(([a], [b]) => a.localeCompare(b)).slice(-12).map(([week, value]) => ({ label: week.slice(5), value }));
  const open = breaches.filter((b) => !b.investigated_at);
  const period = rows[0]?.report ? `${when(rows[0].report.from)} – ${when(rows[0].report.to)}` : "";
  page("Service levels",
    h("p", { class: "muted" }, `The last 30 days (${period}).`),
    h("div", { class: "grid" },
      h("section", { class: "card" }, h("h2", {}, "At a glance"), facts([
        ["Services", String(services.length)],
        ["Breaches", String(rows.reduce((n, r) => n + r.report.breaches, 0))],
        ["Not yet investigated", String(open.length)],
        ["Open tickets past target", String(rows.reduce((n, r) => n + r.report.open_breached, 0))],
        ["Incidents", String(rows.reduce((n, r) => n + r.report.incidents, 0))],
        ["Major incidents", String(rows.reduce((n, r) => n + r.report.major_incidents, 0))],
      ])),
      h("section", { class: "card chart" }, h("h2", {}, "Incidents per week"), columns("Incidents per ISO week", trend))),
    h("section", { class: "card chart" }, h("h2", {}, "SLA attainment"),
      attainment.length ? bars("SLA attainment by service and measure", attainment) : h("p", { class: "muted" }, "No SLA clock has stopped in the period yet."),
      attainment.length ? table("SLA attainment", [
        ["Service and measure", (r) => r.label],
        ["Agreement", (r) => r.a.agreement_id],
        ["Measured", (r) => String(r.a.measured)],
        ["Met", (r) => String(r.a.met)],
        ["Breached", (r) => String(r.a.breached)],
      ], attainment) : null),
    h("section", { class: "card chart" }, h("h2", {}, "Availability"),
      bars("Availability by service", availability),
      table("Availability", [
        ["Service", (r) => r.label],
        ["Availability", (r) => `${r.value.toFixed(3)}%`],
        ["Target", (r) => r.report.availability.target_percent === null ? "none set" : `${r.report.availability.target_percent}%`],
        ["Met", (r) => r.report.availability.met === null ? "—" : badge(r.report.availability.met ? "met" : "breached")],
        ["Unplanned downtime", (r) => `${r.report.availability.unplanned_minutes} min`],
        ["Planned downtime", (r) => `${r.report.availability.planned_minutes} min`],
      ], availability)),
    h("section", { class: "card" }, h("h2", {}, "Breaches"),
      table("SLA breaches", [
        ["Ticket", (b) => b.number],
        ["Service", (b) => b.service],
        ["Measure", (b) => b.metric],
        ["Due", (b) => when(b.due_at)],
        ["Investigated", (b) => b.investigated_at ? badge("yes") : badge("no")],
      ], breaches, "No SLA breach. Every clock that stopped met its target.")));
}

export async function evidence() {
  const [report, readiness] = await Promise.all([
    api("GET", "/v1/evidence"),
    api("GET", "/v1/evidence/readiness").catch(() => null),
  ]);
  const total = report.clauses.length;
  page("ISO/IEC 20000-1 evidence",
    h("p", { class: "muted" }, `Records from ${when(report.from)} to ${when(report.to)}.`),
    h("div", { class: "grid" },
      h("section", { class: "card chart" }, h("h2", {}, "Clauses"),
        bars("Clauses by evidence", [
          { label: "met", value: report.met },
          { label: "stale", value: report.stale, bad: report.stale > 0 },
          { label: "missing", value: report.missing, bad: report.missing > 0 },
        ], { max: total, unit: "" })),
      readiness ? h("section", { class: "card" }, h("h2", {}, "Certification readiness"),
        h("p", {}, badge(readiness.ready ? "ready" : "not ready")),
        h("ul", {}, readiness.checks.map((c) => h("li", {}, badge(c.ok ? "passed" : "failed"), " ", c.check,
          c.missing.length ? h("div", { class: "muted" }, `Missing: ${c.missing.join("; ")}`) : null)))) : null),
    h("section", { class: "card" }, h("h2", {}, `Gaps (${report.gaps.length})`),
      report.gaps.length ? h("ul", {}, report.clauses.filter((c) => report.gaps.includes(c.clause)).map((c) =>
        h("li", {}, h("strong", {}, c.clause), ` ${c.title}: `, c.evidence.filter((e) => e.status !== "met").map((e) => e.what).join(", ") || "no evidence")))
        : h("p", {}, "No gaps.")),
    h("section", { class: "card" }, h("h2", {}, "Every clause"),
      table("Clauses and their evidence", [
        ["Clause", (c) => c.clause],
        ["Title", (c) => c.title],
        ["Status", (c) => badge(c.status)],
        ["Evidence", (c) => h("ul", {}, c.evidence.map((e) => h("li", {}, `${e.what}: ${e.count}`, e.latest ? ` (latest ${when(e.latest)})` : "", " ", badge(e.status))))],
      ], report.clauses)));
}
