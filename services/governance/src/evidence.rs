//! The evidence report: for each clause of ISO/IEC 20000-1 (4 to 10), the records that evidence
//! it in a period — the management system's own, the events other services published (from the
//! audit ledger), and the approved documents that name it — with the clauses that have no
//! evidence or only stale evidence; and the certification readiness check.

use std::collections::HashMap;

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use diesel::prelude::*;
use meridian_chassis::bus::topic_matches;
use meridian_chassis::db::AnyConnection;
use serde::Serialize;

use crate::config::EvidenceConfig;
use crate::domain::clauses::{self, CLAUSES, Record};
use crate::store::rows::{self, DocumentRow};
use crate::store::schema::{gov_document_versions, gov_ledger};

/// One source of evidence of a clause.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Evidence {
    /// What it is: a kind of record, an event type, or `documents`.
    pub what: String,
    /// How many in the period (standing records: how many there are).
    pub count: i64,
    /// The newest, at or before the period's end.
    pub latest: Option<DateTime<Utc>>,
    /// Where to see them.
    pub link: String,
    /// `met`, `stale` or `missing`.
    pub status: &'static str,
}

/// A clause and its evidence.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ClauseEvidence {
    /// `8.5.1.3`.
    pub clause: &'static str,
    /// Its title.
    pub title: &'static str,
    /// `met` (evidence in the period, or standing records confirmed recently), `stale`
    /// (evidence, but older) or `missing` (none).
    pub status: &'static str,
    /// The sources, each with its own status.
    pub evidence: Vec<Evidence>,
}

/// The report.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Report {
    /// From.
    pub from: DateTime<Utc>,
    /// To.
    pub to: DateTime<Utc>,
    /// Clauses met.
    pub met: usize,
    /// Clauses with stale evidence only.
    pub stale: usize,
    /// Clauses with no evidence.
    pub missing: usize,
    /// The clauses not met, in order.
    pub gaps: Vec<&'static str>,
    /// Every clause.
    pub clauses: Vec<ClauseEvidence>,
}

fn utc(at: NaiveDateTime) -> DateTime<Utc> {
    meridian_chassis::clock::utc(at)
}

fn rank(status: &str) -> u8 {
    match status {
        "met" => 2,
        "stale" => 1,
        _ => 0,
    }
}

/// When records were made or confirmed.
struct Times(Vec<NaiveDateTime>);

impl Times {
    fn evidence(
        &self,
        what: &str,
        link: &str,
        standing: bool,
        from: NaiveDateTime,
        to: NaiveDateTime,
        fresh_from: NaiveDateTime,
    ) -> Evidence {
        let upto: Vec<NaiveDateTime> = self.0.iter().copied().filter(|t| *t < to).collect();
        let latest = upto.iter().max().copied();
        let (count, status) = if standing {
            let n = i64::try_from(upto.len()).unwrap_or(i64::MAX);
            let status = match latest {
                Some(at) if at >= fresh_from => "met",
                Some(_) => "stale",
                None => "missing",
            };
            (n, status)
        } else {
            let n = i64::try_from(upto.iter().filter(|t| **t >= from).count()).unwrap_or(i64::MAX);
            let status = match (n, latest) {
                (n, _) if n > 0 => "met",
                (_, Some(_)) => "stale",
                _ => "missing",
            };
            (n, status)
        };
        Evidence {
            what: what.to_owned(),
            count,
            latest: latest.map(utc),
            link: link.to_owned(),
            status,
        }
    }
}

fn names(clause: &str, doc: &DocumentRow) -> bool {
    serde_json::from_str::<Vec<String>>(&doc.clauses)
        .unwrap_or_default()
        .iter()
        .any(|c| c == clause)
}

/// Everything the report reads of the management system, once.
struct Loaded {
    times: HashMap<Record, Vec<NaiveDateTime>>,
    approved: Vec<DocumentRow>,
    ledger_counts: HashMap<String, i64>,
    ledger_latest: HashMap<String, NaiveDateTime>,
}

fn load(conn: &mut AnyConnection, from: NaiveDateTime, to: NaiveDateTime) -> QueryResult<Loaded> {
    let mut times: HashMap<Record, Vec<NaiveDateTime>> = HashMap::new();
    for c in rows::context(conn, None)? {
        let kind = if c.kind == "interested_party" {
            Record::InterestedParties
        } else {
            Record::Issues
        };
        times.entry(kind).or_default().push(c.updated_at);
    }
    times.insert(
        Record::Scope,
        rows::scopes(conn)?
            .into_iter()
            .map(|s| s.created_at)
            .collect(),
    );
    times.insert(
        Record::Roles,
        rows::roles(conn)?
            .into_iter()
            .filter(|r| r.holders != "[]")
            .map(|r| r.updated_at)
            .collect(),
    );
    times.insert(
        Record::Risks,
        rows::risks(conn, None, None)?
            .into_iter()
            .flat_map(|r| [r.created_at, r.last_reviewed_at])
            .collect(),
    );
    times.insert(
        Record::Objectives,
        rows::objectives(conn)?
            .into_iter()
            .map(|o| o.updated_at)
            .collect(),
    );
    times.insert(
        Record::Competence,
        rows::competences(conn, None)?
            .into_iter()
            .map(|c| c.recorded_at)
            .collect(),
    );
    let approvals: Vec<Option<NaiveDateTime>> = gov_document_versions::table
        .filter(gov_document_versions::approved_at.is_not_null())
        .select(gov_document_versions::approved_at)
        .load(conn)?;
    times.insert(
        Record::DocumentApprovals,
        approvals.into_iter().flatten().collect(),
    );
    times.insert(
        Record::Audits,
        rows::audits(conn, Some("completed".to_owned()))?
            .into_iter()
            .filter_map(|a| a.completed_at)
            .collect(),
    );
    times.insert(
        Record::Reviews,
        rows::reviews(conn)?
            .into_iter()
            .filter_map(|r| r.held_at)
            .collect(),
    );
    times.insert(
        Record::Nonconformities,
        rows::nonconformities(conn, None, None)?
            .into_iter()
            .map(|n| n.updated_at)
            .collect(),
    );
    times.insert(
        Record::Improvements,
        rows::improvements(conn, None)?
            .into_iter()
            .map(|i| i.updated_at)
            .collect(),
    );
    let approved: Vec<DocumentRow> = rows::documents(conn, None, Some("approved".to_owned()))?;
    times.insert(
        Record::Policy,
        approved
            .iter()
            .filter(|d| d.kind == "policy")
            .filter_map(|d| d.approved_at)
            .collect(),
    );
    let counts: Vec<(String, i64)> = gov_ledger::table
        .filter(gov_ledger::time.ge(from))
        .filter(gov_ledger::time.lt(to))
        .group_by(gov_ledger::event_type)
        .select((gov_ledger::event_type, diesel::dsl::count_star()))
        .load(conn)?;
    let latest: Vec<(String, Option<NaiveDateTime>)> = gov_ledger::table
        .filter(gov_ledger::time.lt(to))
        .group_by(gov_ledger::event_type)
        .select((gov_ledger::event_type, diesel::dsl::max(gov_ledger::time)))
        .load(conn)?;
    Ok(Loaded {
        times,
        approved,
        ledger_counts: counts.into_iter().collect(),
        ledger_latest: latest
            .into_iter()
            .filter_map(|(t, at)| at.map(|at| (t, at)))
            .collect(),
    })
}

/// Builds the report of `[from, to)`.
///
/// # Errors
/// A query failing.
pub fn report(
    conn: &mut AnyConnection,
    config: EvidenceConfig,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> QueryResult<Report> {
    let (f, t) = (from.naive_utc(), to.naive_utc());
    let fresh_from = (to - Duration::days(config.stale_after_days)).naive_utc();
    let loaded = load(conn, f, t)?;
    let mut out = Vec::new();
    for clause in CLAUSES {
        let mut evidence = Vec::new();
        for record in clause.records {
            let times = if *record == Record::Policy {
                // A policy evidences the clauses it names.
                Times(
                    loaded
                        .approved
                        .iter()
                        .filter(|d| d.kind == "policy" && names(clause.id, d))
                        .filter_map(|d| d.approved_at)
                        .collect(),
                )
            } else {
                Times(loaded.times.get(record).cloned().unwrap_or_default())
            };
            evidence.push(times.evidence(
                record.name(),
                record.link(),
                record.standing(),
                f,
                t,
                fresh_from,
            ));
        }
        for pattern in clause.events {
            let count: i64 = loaded
                .ledger_counts
                .iter()
                .filter(|(ty, _)| topic_matches(pattern, ty))
                .map(|(_, n)| n)
                .sum();
            let latest = loaded
                .ledger_latest
                .iter()
                .filter(|(ty, _)| topic_matches(pattern, ty))
                .map(|(_, at)| *at)
                .max();
            let status = match (count, latest) {
                (n, _) if n > 0 => "met",
                (_, Some(_)) => "stale",
                _ => "missing",
            };
            evidence.push(Evidence {
                what: format!("events {pattern}"),
                count,
                latest: latest.map(utc),
                link: format!(
                    "/v1/ledger?type={pattern}&from={}&to={}",
                    from.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    to.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                ),
                status,
            });
        }
        let documents = Times(
            loaded
                .approved
                .iter()
                .filter(|d| names(clause.id, d))
                .filter_map(|d| d.approved_at)
                .collect(),
        );
        let docs = documents.evidence(
            "approved documents naming the clause",
            &format!("/v1/documents?clause={}", clause.id),
            true,
            f,
            t,
            fresh_from,
        );
        if docs.count > 0 || evidence.is_empty() {
            evidence.push(docs);
        }
        let status = evidence
            .iter()
            .map(|e| e.status)
            .max_by_key(|s| rank(s))
            .unwrap_or("missing");
        out.push(ClauseEvidence {
            clause: clause.id,
            title: clause.title,
            status,
            evidence,
        });
    }
    let count = |s: &str| out.iter().filter(|c| c.status == s).count();
    Ok(Report {
        from,
        to,
        met: count("met"),
        stale: count("stale"),
        missing: count("missing"),
        gaps: out
            .iter()
            .filter(|c| c.status != "met")
            .map(|c| c.clause)
            .collect(),
        clauses: out,
    })
}

/// One condition of certification readiness.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Check {
    /// What is checked.
    pub check: &'static str,
    /// Whether it holds.
    pub ok: bool,
    /// What is missing (clauses, documents), when it does not.
    pub missing: Vec<String>,
}

/// Whether the organisation has run its SMS for one cycle.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// Every check holds.
    pub ready: bool,
    /// The checks.
    pub checks: Vec<Check>,
}

/// Whether an audit's `clauses` (ids, or a whole clause such as `8`) cover `clause`.
pub fn covers(audited: &[String], clause: &str) -> bool {
    audited
        .iter()
        .any(|a| a == clause || clause.starts_with(&format!("{a}.")))
}

/// The certification readiness check at `now`: scope defined; the service management and the
/// information security policies approved; an approved procedure for each operational process;
/// internal audits within the last year covering every clause; a management review within the
/// last year.
///
/// # Errors
/// A query failing.
pub fn readiness(conn: &mut AnyConnection, now: DateTime<Utc>) -> QueryResult<Readiness> {
    let year_ago = (now - Duration::days(365)).naive_utc();
    let approved = rows::documents(conn, None, Some("approved".to_owned()))?;
    let policy = |clause: &str| {
        approved
            .iter()
            .any(|d| d.kind == "policy" && names(clause, d))
    };
    let mut checks = vec![
        Check {
            check: "scope defined (4.3)",
            ok: !rows::scopes(conn)?.is_empty(),
            missing: Vec::new(),
        },
        Check {
            check: "service management policy approved (5.2)",
            ok: policy("5.2"),
            missing: Vec::new(),
        },
        Check {
            check: "information security policy approved (8.7.3)",
            ok: policy("8.7.3"),
            missing: Vec::new(),
        },
    ];
    let procedures: Vec<String> = clauses::processes()
        .filter(|c| {
            !approved
                .iter()
                .any(|d| d.kind == "procedure" && names(c.id, d))
        })
        .map(|c| format!("{} {}", c.id, c.title))
        .collect();
    checks.push(Check {
        check: "a procedure approved for each operational process (8)",
        ok: procedures.is_empty(),
        missing: procedures,
    });
    let audited: Vec<String> = rows::audits(conn, Some("completed".to_owned()))?
        .into_iter()
        .filter(|a| a.completed_at.is_some_and(|at| at >= year_ago))
        .flat_map(|a| serde_json::from_str::<Vec<String>>(&a.clauses).unwrap_or_default())
        .collect();
    let unaudited: Vec<String> = CLAUSES
        .iter()
        .filter(|c| !covers(&audited, c.id))
        .map(|c| c.id.to_owned())
        .collect();
    checks.push(Check {
        check: "one full internal audit cycle in the last year (9.2)",
        ok: unaudited.is_empty(),
        missing: unaudited,
    });
    checks.push(Check {
        check: "a management review held in the last year (9.3)",
        ok: rows::reviews(conn)?
            .iter()
            .any(|r| r.held_at.is_some_and(|at| at >= year_ago)),
        missing: Vec::new(),
    });
    Ok(Readiness {
        ready: checks.iter().all(|c| c.ok),
        checks,
    })
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The report and the readiness check as a page an auditor can print.
pub fn html(report: &Report, readiness: &Readiness) -> String {
    let mut page = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>ISO/IEC 20000-1 evidence</title>\
         <style>body{{font-family:system-ui,sans-serif;margin:2rem;color:#111}}table{{border-collapse:collapse;width:100%}}\
         th,td{{border:1px solid #999;padding:.3rem .5rem;text-align:left;vertical-align:top;font-size:.9rem}}\
         .met{{background:#d9f2d9}}.stale{{background:#fff2cc}}.missing{{background:#f8d7da}}\
         @media print{{a{{color:#111;text-decoration:none}}}}</style></head><body>\
         <h1>ISO/IEC 20000-1:2018 evidence</h1><p>From {} to {}: {} clauses met, {} stale, {} missing.</p>\
         <h2>Certification readiness: {}</h2><ul>",
        report.from.to_rfc3339(),
        report.to.to_rfc3339(),
        report.met,
        report.stale,
        report.missing,
        if readiness.ready { "ready" } else { "not yet" },
    );
    for c in &readiness.checks {
        page.push_str(&format!(
            "<li>{} {}{}</li>",
            if c.ok { "✔" } else { "✘" },
            escape(c.check),
            if c.missing.is_empty() {
                String::new()
            } else {
                format!(": missing {}", escape(&c.missing.join(", ")))
            }
        ));
    }
    page.push_str("</ul><h2>Clauses</h2><table><thead><tr><th scope=\"col\">Clause</th><th scope=\"col\">Status</th><th scope=\"col\">Evidence</th></tr></thead><tbody>");
    for c in &report.clauses {
        let evidence: Vec<String> = c
            .evidence
            .iter()
            .map(|e| {
                format!(
                    "<a href=\"{}\">{}</a>: {}{} ({})",
                    escape(&e.link),
                    escape(&e.what),
                    e.count,
                    e.latest
                        .map(|l| format!(", latest {}", l.date_naive()))
                        .unwrap_or_default(),
                    e.status
                )
            })
            .collect();
        page.push_str(&format!(
            "<tr class=\"{status}\"><td>{} {}</td><td>{status}</td><td>{}</td></tr>",
            c.clause,
            escape(c.title),
            evidence.join("<br>"),
            status = c.status,
        ));
    }
    page.push_str("</tbody></table></body></html>");
    page
}
