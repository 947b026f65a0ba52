//! `GET /v1/reports/services/{id}`: the service report of a period (9.1, 9.4) — SLA attainment
//! per agreement and measure, breaches with their investigation, incident and service request
//! volumes and their weekly trends, major incidents, changes to the service's CIs, availability
//! against target and customer satisfaction — as JSON, CSV, or a readable HTML page with charts (inline SVG, no
//! script, nothing fetched).

use std::collections::BTreeMap;

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Datelike, Utc};
use meridian_chassis::Problem;
use meridian_chassis::auth::{AnyRole, Authenticated};
use meridian_chassis::problem::{Query, codes};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::operations::{AvailabilityView, availability_of};
use crate::ServiceLevel;
use crate::store::{catalogue, clocks, operations, strings};

/// Attainment of one agreement's measure.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Attainment {
    /// The agreement.
    pub agreement_id: String,
    /// `response` or `resolution`.
    pub metric: String,
    /// Clocks that stopped in the period.
    pub measured: usize,
    /// Of which within target.
    pub met: usize,
    /// Of which late.
    pub breached: usize,
    /// `met / measured` in percent (none measured: null).
    pub percent: Option<f64>,
}

/// The report.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceReport {
    /// The service.
    pub service: String,
    /// Its name.
    pub name: String,
    /// From.
    pub from: DateTime<Utc>,
    /// To.
    pub to: DateTime<Utc>,
    /// SLA attainment per agreement and measure.
    pub attainment: Vec<Attainment>,
    /// Breaches due in the period.
    pub breaches: usize,
    /// Of which investigated.
    pub breaches_investigated: usize,
    /// Open tickets already past a target.
    pub open_breached: usize,
    /// Incidents recorded in the period.
    pub incidents: usize,
    /// Incidents by priority.
    #[schema(value_type = Object)]
    pub incidents_by_priority: BTreeMap<String, usize>,
    /// Incidents per ISO week (`YYYY-Www`), the trend.
    #[schema(value_type = Object)]
    pub incidents_by_week: BTreeMap<String, usize>,
    /// Major incidents declared in the period.
    pub major_incidents: usize,
    /// Service requests submitted in the period.
    pub requests: usize,
    /// Service requests per ISO week (`YYYY-Www`), the trend.
    #[schema(value_type = Object)]
    pub requests_by_week: BTreeMap<String, usize>,
    /// Changes submitted in the period touching the service's CIs.
    pub changes: usize,
    /// Those changes by state.
    #[schema(value_type = Object)]
    pub changes_by_state: BTreeMap<String, usize>,
    /// Availability against target.
    pub availability: AvailabilityView,
    /// Satisfaction responses.
    pub satisfaction_responses: usize,
    /// Their average score (1–5).
    pub satisfaction_average: Option<f64>,
}

/// `GET /v1/reports/services/{id}` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    /// From (RFC 3339; default 30 days before `to`).
    pub from: Option<DateTime<Utc>>,
    /// To (RFC 3339; default now).
    pub to: Option<DateTime<Utc>>,
    /// `json` (default), `csv` or `html`.
    pub format: Option<String>,
}

fn round(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// Builds the report of `service` for `[from, to)`.
///
/// # Errors
/// No such service, or the database failing.
pub fn build(
    conn: &mut meridian_chassis::db::AnyConnection,
    service: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<ServiceReport, Problem> {
    let entry =
        catalogue::find(conn, service)?.ok_or_else(|| Problem::new(codes::SERVICE_NOT_FOUND))?;
    let (f, t) = (from.naive_utc(), to.naive_utc());
    let mut attainment: BTreeMap<(String, String), Attainment> = BTreeMap::new();
    for clock in clocks::stopped_between(conn, service, f, t)? {
        if clock.stage == "cancelled" {
            continue;
        }
        let a = attainment
            .entry((clock.agreement_id.clone(), clock.metric.clone()))
            .or_insert_with(|| Attainment {
                agreement_id: clock.agreement_id.clone(),
                metric: clock.metric.clone(),
                measured: 0,
                met: 0,
                breached: 0,
                percent: None,
            });
        a.measured += 1;
        if clock.stage == "met" {
            a.met += 1;
        } else {
            a.breached += 1;
        }
    }
    let attainment: Vec<Attainment> = attainment
        .into_values()
        .map(|mut a| {
            #[expect(clippy::cast_precision_loss, reason = "ticket counts")]
            let percent = (a.measured > 0).then(|| round(a.met as f64 * 100.0 / a.measured as f64));
            a.percent = percent;
            a
        })
        .collect();
    let breaches = clocks::breaches(conn, Some(service), f, t)?;
    let created = clocks::events_between(conn, service, "resolution.incident.created", f, t)?;
    let week_of = |at: chrono::NaiveDateTime| {
        let week = at.date().iso_week();
        format!("{}-W{:02}", week.year(), week.week())
    };
    let mut by_priority = BTreeMap::new();
    let mut by_week = BTreeMap::new();
    for e in &created {
        *by_priority.entry(format!("P{}", e.priority)).or_insert(0) += 1;
        *by_week.entry(week_of(e.at)).or_insert(0) += 1;
    }
    let submitted = clocks::events_between(conn, service, "resolution.request.submitted", f, t)?;
    let mut requests_by_week = BTreeMap::new();
    for e in &submitted {
        *requests_by_week.entry(week_of(e.at)).or_insert(0) += 1;
    }
    let majors = clocks::events_between(conn, service, "resolution.incident.major_declared", f, t)?;
    let service_cis = strings(&entry.configuration_items);
    let changes: Vec<_> = operations::changes(conn, f, t)?
        .into_iter()
        .filter(|c| {
            strings(&c.configuration_items)
                .iter()
                .any(|ci| service_cis.contains(ci))
        })
        .collect();
    let mut changes_by_state = BTreeMap::new();
    for c in &changes {
        *changes_by_state.entry(c.state.clone()).or_insert(0) += 1;
    }
    let scores = operations::satisfaction(conn, service, f, t)?;
    #[expect(clippy::cast_precision_loss, reason = "survey counts")]
    let average = (!scores.is_empty())
        .then(|| round(f64::from(scores.iter().sum::<i32>()) / scores.len() as f64));
    Ok(ServiceReport {
        service: entry.id.clone(),
        name: entry.name.clone(),
        from,
        to,
        attainment,
        breaches_investigated: breaches.iter().filter(|b| b.cause.is_some()).count(),
        breaches: breaches.len(),
        open_breached: clocks::open_breached(conn, service)?.len(),
        incidents: created.len(),
        incidents_by_priority: by_priority,
        incidents_by_week: by_week,
        major_incidents: majors.len(),
        requests: submitted.len(),
        requests_by_week,
        changes: changes.len(),
        changes_by_state,
        availability: availability_of(conn, service, from, to)?,
        satisfaction_responses: scores.len(),
        satisfaction_average: average,
    })
}

fn csv(report: &ServiceReport) -> Result<String, Problem> {
    let mut out = csv::Writer::from_writer(Vec::new());
    let mut row = |section: &str, name: &str, value: String| {
        out.write_record([section, name, value.as_str()])
    };
    let internal = |e: csv::Error| Problem::internal(&e);
    row("section", "measure", "value".to_owned()).map_err(internal)?;
    row("service", "id", report.service.clone()).map_err(internal)?;
    row("service", "from", report.from.to_rfc3339()).map_err(internal)?;
    row("service", "to", report.to.to_rfc3339()).map_err(internal)?;
    for a in &report.attainment {
        let name = format!("{} {}", a.agreement_id, a.metric);
        row(
            "attainment",
            &format!("{name} measured"),
            a.measured.to_string(),
        )
        .map_err(internal)?;
        row("attainment", &format!("{name} met"), a.met.to_string()).map_err(internal)?;
        row(
            "attainment",
            &format!("{name} percent"),
            a.percent.map(|p| p.to_string()).unwrap_or_default(),
        )
        .map_err(internal)?;
    }
    row("breaches", "total", report.breaches.to_string()).map_err(internal)?;
    row(
        "breaches",
        "investigated",
        report.breaches_investigated.to_string(),
    )
    .map_err(internal)?;
    row("incidents", "total", report.incidents.to_string()).map_err(internal)?;
    for (p, n) in &report.incidents_by_priority {
        row("incidents", p, n.to_string()).map_err(internal)?;
    }
    for (w, n) in &report.incidents_by_week {
        row("incidents by week", w, n.to_string()).map_err(internal)?;
    }
    row(
        "major incidents",
        "total",
        report.major_incidents.to_string(),
    )
    .map_err(internal)?;
    row("requests", "total", report.requests.to_string()).map_err(internal)?;
    for (w, n) in &report.requests_by_week {
        row("requests by week", w, n.to_string()).map_err(internal)?;
    }
    row("changes", "total", report.changes.to_string()).map_err(internal)?;
    row(
        "availability",
        "percent",
        report.availability.measured.percent.to_string(),
    )
    .map_err(internal)?;
    row(
        "availability",
        "target",
        report
            .availability
            .target_percent
            .map(|t| t.to_string())
            .unwrap_or_default(),
    )
    .map_err(internal)?;
    row(
        "availability",
        "unplanned minutes",
        report.availability.measured.unplanned_minutes.to_string(),
    )
    .map_err(internal)?;
    row(
        "satisfaction",
        "responses",
        report.satisfaction_responses.to_string(),
    )
    .map_err(internal)?;
    row(
        "satisfaction",
        "average",
        report
            .satisfaction_average
            .map(|a| a.to_string())
            .unwrap_or_default(),
    )
    .map_err(internal)?;
    let bytes = out.into_inner().map_err(|e| Problem::internal(&e))?;
    String::from_utf8(bytes).map_err(|e| Problem::internal(&e))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A horizontal bar chart in SVG, with a text label per bar (screen readers read the table that
/// accompanies each chart).
fn bars(title: &str, data: &[(String, f64)], max: f64, unit: &str) -> String {
    let height = 24 * data.len() + 30;
    let mut svg = format!(
        "<svg role=\"img\" aria-label=\"{}\" width=\"560\" height=\"{height}\" viewBox=\"0 0 560 {height}\" xmlns=\"http://www.w3.org/2000/svg\"><text x=\"0\" y=\"16\" font-size=\"14\" font-weight=\"bold\">{}</text>",
        escape(title),
        escape(title)
    );
    for (i, (label, value)) in data.iter().enumerate() {
        let y = 28 + i * 24;
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "pixels"
        )]
        let width = if max > 0.0 {
            ((value / max) * 360.0).max(0.0) as u32
        } else {
            0
        };
        svg.push_str(&format!(
            "<text x=\"0\" y=\"{}\" font-size=\"12\">{}</text><rect x=\"130\" y=\"{y}\" width=\"{width}\" height=\"16\" fill=\"#0b57d0\"/><text x=\"{}\" y=\"{}\" font-size=\"12\">{}{unit}</text>",
            y + 12,
            escape(label),
            136 + width,
            y + 12,
            value
        ));
    }
    svg.push_str("</svg>");
    svg
}

fn html(report: &ServiceReport) -> String {
    let mut page = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>Service report: {name}</title>\
         <style>body{{font-family:system-ui,sans-serif;color:#1b1b1b;max-width:60rem;margin:2rem auto;padding:0 1rem}}table{{border-collapse:collapse;margin:1rem 0}}th,td{{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}}.bad{{color:#a50e0e}}.good{{color:#146c2e}}</style></head><body>\
         <h1>Service report: {name}</h1><p>{from} to {to}</p>",
        name = escape(&report.name),
        from = report.from.format("%Y-%m-%d %H:%M UTC"),
        to = report.to.format("%Y-%m-%d %H:%M UTC"),
    );
    page.push_str("<h2>Service level attainment</h2>");
    let data: Vec<(String, f64)> = report
        .attainment
        .iter()
        .map(|a| {
            (
                format!(
                    "{} {}",
                    a.agreement_id.chars().take(12).collect::<String>(),
                    a.metric
                ),
                a.percent.unwrap_or(0.0),
            )
        })
        .collect();
    page.push_str(&bars("Attainment (% within target)", &data, 100.0, " %"));
    page.push_str("<table><tr><th scope=\"col\">Agreement</th><th scope=\"col\">Measure</th><th scope=\"col\">Measured</th><th scope=\"col\">Met</th><th scope=\"col\">Breached</th><th scope=\"col\">Attainment</th></tr>");
    for a in &report.attainment {
        page.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&a.agreement_id),
            a.metric,
            a.measured,
            a.met,
            a.breached,
            a.percent
                .map_or_else(|| "—".to_owned(), |p| format!("{p} %"))
        ));
    }
    page.push_str("</table>");
    page.push_str(&format!(
        "<p>Breaches: {} ({} investigated). Open tickets past a target: {}.</p>",
        report.breaches, report.breaches_investigated, report.open_breached
    ));
    page.push_str("<h2>Incidents</h2>");
    let weeks: Vec<(String, f64)> = report
        .incidents_by_week
        .iter()
        .map(|(w, n)| (w.clone(), f64::from(u32::try_from(*n).unwrap_or(u32::MAX))))
        .collect();
    let most = weeks.iter().map(|(_, n)| *n).fold(0.0, f64::max);
    page.push_str(&bars("Incidents per week", &weeks, most, ""));
    page.push_str(&format!("<p>{} incidents, {} major.</p><table><tr><th scope=\"col\">Priority</th><th scope=\"col\">Incidents</th></tr>", report.incidents, report.major_incidents));
    for (p, n) in &report.incidents_by_priority {
        page.push_str(&format!("<tr><td>{p}</td><td>{n}</td></tr>"));
    }
    page.push_str("</table><h2>Service requests</h2>");
    let request_weeks: Vec<(String, f64)> = report
        .requests_by_week
        .iter()
        .map(|(w, n)| (w.clone(), f64::from(u32::try_from(*n).unwrap_or(u32::MAX))))
        .collect();
    let most_requests = request_weeks.iter().map(|(_, n)| *n).fold(0.0, f64::max);
    page.push_str(&bars(
        "Requests per week",
        &request_weeks,
        most_requests,
        "",
    ));
    page.push_str(&format!("<p>{} service requests.</p>", report.requests));
    page.push_str("<h2>Changes</h2>");
    page.push_str(&format!(
        "<p>{} changes to the service's configuration items.</p>",
        report.changes
    ));
    let a = &report.availability;
    let class = match a.met {
        Some(true) => "good",
        Some(false) => "bad",
        None => "",
    };
    page.push_str(&format!(
        "<h2>Availability</h2><p class=\"{class}\">{} % (target {}), {} minutes of unplanned and {} of planned downtime.</p>",
        a.measured.percent,
        a.target_percent.map_or_else(|| "none".to_owned(), |t| format!("{t} %")),
        a.measured.unplanned_minutes,
        a.measured.planned_minutes
    ));
    page.push_str(&format!(
        "<h2>Customer satisfaction</h2><p>{} responses, average {}.</p></body></html>",
        report.satisfaction_responses,
        report
            .satisfaction_average
            .map_or_else(|| "—".to_owned(), |s| format!("{s} / 5"))
    ));
    page
}

/// `GET /v1/reports/services/{id}`: the service report of a period.
#[utoipa::path(get, path = "/v1/reports/services/{id}", tag = "reporting",
    params(("id" = String, Path, description = "Service id"), ReportQuery),
    responses(
        (status = 200, description = "The report (JSON, CSV or HTML)", body = ServiceReport),
        (status = 400, description = "A bad parameter, named", body = meridian_chassis::problem::ProblemBody),
        (status = 404, description = "Not in the catalogue", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn service_report(
    _who: Authenticated<AnyRole>,
    id: web::Path<String>,
    query: Query<ReportQuery>,
    svc: web::Data<ServiceLevel>,
) -> Result<HttpResponse, Problem> {
    let query = query.0;
    let format = query.format.unwrap_or_else(|| "json".to_owned());
    if !matches!(format.as_str(), "json" | "csv" | "html") {
        return Err(Problem::field("format", "must be json, csv or html"));
    }
    let to = query.to.unwrap_or_else(|| svc.clock.now());
    let from = query.from.unwrap_or(to - chrono::Duration::days(30));
    if from >= to {
        return Err(Problem::field("from", "must be before to"));
    }
    let id = id.into_inner();
    let report = svc.db.run(move |conn| build(conn, &id, from, to)).await?;
    Ok(match format.as_str() {
        "csv" => HttpResponse::Ok()
            .content_type("text/csv; charset=utf-8")
            .body(csv(&report)?),
        "html" => HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .insert_header((
                "content-security-policy",
                "default-src 'none'; style-src 'unsafe-inline'",
            ))
            .body(html(&report)),
        _ => HttpResponse::Ok().json(report),
    })
}
