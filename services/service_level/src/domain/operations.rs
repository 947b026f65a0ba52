//! Availability, continuity, capacity and budgets: the computations, without I/O.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// An outage within a reporting window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outage {
    /// Began.
    pub start: DateTime<Utc>,
    /// Ended (`None`: still down).
    pub end: Option<DateTime<Utc>>,
    /// Planned maintenance (not counted against availability).
    pub planned: bool,
}

/// Availability over a window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Availability {
    /// Minutes in the window.
    pub window_minutes: i64,
    /// Minutes of planned downtime (outside the agreed service time).
    pub planned_minutes: i64,
    /// Minutes of unplanned downtime.
    pub unplanned_minutes: i64,
    /// (agreed time − unplanned downtime) / agreed time, as a percentage.
    pub percent: f64,
}

/// Merged intervals of `outages` (clipped to the window) of one kind.
fn merged(
    outages: &[Outage],
    planned: bool,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let mut spans: Vec<(DateTime<Utc>, DateTime<Utc>)> = outages
        .iter()
        .filter(|o| o.planned == planned)
        .map(|o| (o.start.max(from), o.end.unwrap_or(to).min(to)))
        .filter(|(a, b)| b > a)
        .collect();
    spans.sort();
    let mut out: Vec<(DateTime<Utc>, DateTime<Utc>)> = Vec::new();
    for (a, b) in spans {
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// Availability in `[from, to)` given the outages (overlaps counted once; unplanned time that
/// falls inside planned maintenance is counted as planned).
pub fn availability(from: DateTime<Utc>, to: DateTime<Utc>, outages: &[Outage]) -> Availability {
    let window = (to - from).num_minutes().max(0);
    let planned = merged(outages, true, from, to);
    let unplanned = merged(outages, false, from, to);
    let planned_minutes: i64 = planned.iter().map(|(a, b)| (*b - *a).num_minutes()).sum();
    let mut unplanned_minutes = 0;
    for (a, b) in &unplanned {
        let mut span = (*b - *a).num_minutes();
        for (pa, pb) in &planned {
            let overlap = ((*b).min(*pb) - (*a).max(*pa)).num_minutes();
            if overlap > 0 {
                span -= overlap;
            }
        }
        unplanned_minutes += span.max(0);
    }
    let agreed = window - planned_minutes;
    #[expect(clippy::cast_precision_loss, reason = "minutes of a reporting window")]
    let percent = if agreed <= 0 {
        100.0
    } else {
        (agreed - unplanned_minutes) as f64 * 100.0 / agreed as f64
    };
    Availability {
        window_minutes: window,
        planned_minutes,
        unplanned_minutes,
        percent: (percent * 1000.0).round() / 1000.0,
    }
}

/// Whether a continuity plan is overdue for its test: never tested, or last tested more than
/// `interval_days` before `today`.
pub fn test_overdue(last_test: Option<NaiveDate>, interval_days: i64, today: NaiveDate) -> bool {
    last_test.is_none_or(|last| today > last + Duration::days(interval_days))
}

/// A capacity threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    /// The metric, e.g. `cpu_utilisation_percent`.
    pub metric: String,
    /// A warning at or above this.
    pub warning: f64,
    /// Critical at or above this.
    pub critical: f64,
}

/// How a measurement stands against its thresholds: `ok`, `warning` or `critical`.
pub fn level(thresholds: &[Threshold], metric: &str, value: f64) -> &'static str {
    match thresholds.iter().find(|t| t.metric == metric) {
        Some(t) if value >= t.critical => "critical",
        Some(t) if value >= t.warning => "warning",
        _ => "ok",
    }
}

/// A sample from the Prometheus text exposition format.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The metric's name.
    pub metric: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its value.
    pub value: f64,
    /// Its timestamp, when given.
    pub at: Option<DateTime<Utc>>,
}

/// Parses Prometheus text exposition (`name{label="v"} value [ms]`, comments skipped); the error
/// names the line.
///
/// # Errors
/// A line that is not a sample.
pub fn parse_prometheus(text: &str) -> Result<Vec<Sample>, String> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |why: &str| format!("line {}: {why}", i + 1);
        let (name_part, rest) = match line.find('{') {
            Some(open) => {
                let close = line[open..]
                    .find('}')
                    .map(|c| open + c)
                    .ok_or_else(|| bad("unclosed {"))?;
                (&line[..close + 1], line[close + 1..].trim())
            }
            None => {
                let space = line
                    .find(char::is_whitespace)
                    .ok_or_else(|| bad("no value"))?;
                (&line[..space], line[space..].trim())
            }
        };
        let (metric, labels) = match name_part.find('{') {
            Some(open) => (
                &name_part[..open],
                &name_part[open + 1..name_part.len() - 1],
            ),
            None => (name_part, ""),
        };
        let valid = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
        if metric.is_empty()
            || !metric.chars().all(valid)
            || metric.starts_with(|c: char| c.is_ascii_digit())
        {
            return Err(bad("bad metric name"));
        }
        let mut parsed = BTreeMap::new();
        for pair in labels.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').ok_or_else(|| bad("bad label"))?;
            let v = v.trim();
            if !(v.len() >= 2 && v.starts_with('"') && v.ends_with('"')) {
                return Err(bad("label values are quoted"));
            }
            parsed.insert(k.trim().to_owned(), v[1..v.len() - 1].replace("\\\"", "\""));
        }
        let mut fields = rest.split_whitespace();
        let value: f64 = fields
            .next()
            .ok_or_else(|| bad("no value"))?
            .parse()
            .map_err(|_| bad("bad value"))?;
        if !value.is_finite() {
            return Err(bad("the value must be finite"));
        }
        let at = match fields.next() {
            Some(ms) => Some(
                ms.parse::<i64>()
                    .ok()
                    .and_then(DateTime::from_timestamp_millis)
                    .ok_or_else(|| bad("bad timestamp"))?,
            ),
            None => None,
        };
        out.push(Sample {
            metric: metric.to_owned(),
            labels: parsed,
            value,
            at,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn availability_excludes_planned_time_and_counts_overlaps_once() {
        let (from, to) = (at("2026-11-01T00:00:00Z"), at("2026-11-02T00:00:00Z"));
        let outages = [
            Outage {
                start: at("2026-11-01T10:00:00Z"),
                end: Some(at("2026-11-01T11:00:00Z")),
                planned: false,
            },
            Outage {
                start: at("2026-11-01T10:30:00Z"),
                end: Some(at("2026-11-01T11:30:00Z")),
                planned: false,
            },
            Outage {
                start: at("2026-11-01T02:00:00Z"),
                end: Some(at("2026-11-01T04:00:00Z")),
                planned: true,
            },
        ];
        let a = availability(from, to, &outages);
        assert_eq!(
            (a.window_minutes, a.planned_minutes, a.unplanned_minutes),
            (1440, 120, 90)
        );
        assert!((a.percent - 93.182).abs() < 0.001, "{}", a.percent);
        let open = [Outage {
            start: at("2026-11-01T23:00:00Z"),
            end: None,
            planned: false,
        }];
        assert_eq!(availability(from, to, &open).unplanned_minutes, 60);
        assert!((availability(from, to, &[]).percent - 100.0).abs() < f64::EPSILON);
    }

    #[test]
    fn a_plan_is_overdue_when_untested_or_past_its_interval() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
        assert!(test_overdue(None, 365, today));
        assert!(!test_overdue(
            NaiveDate::from_ymd_opt(2026, 1, 10),
            365,
            today
        ));
        assert!(test_overdue(
            NaiveDate::from_ymd_opt(2025, 11, 1),
            365,
            today
        ));
    }

    #[test]
    fn thresholds_and_prometheus_samples() {
        let t = [Threshold {
            metric: "cpu".to_owned(),
            warning: 70.0,
            critical: 90.0,
        }];
        assert_eq!(
            (
                level(&t, "cpu", 69.9),
                level(&t, "cpu", 70.0),
                level(&t, "cpu", 95.0),
                level(&t, "mem", 99.0)
            ),
            ("ok", "warning", "critical", "ok")
        );
        let text = "# HELP cpu usage\n# TYPE cpu gauge\ncpu{service=\"email\",host=\"mx1\"} 87.5 1795000000000\nqueue_depth 12\n";
        let samples = parse_prometheus(text).unwrap();
        assert_eq!(samples.len(), 2);
        assert_eq!(samples[0].labels["service"], "email");
        assert!((samples[0].value - 87.5).abs() < f64::EPSILON);
        assert!(samples[0].at.is_some());
        assert_eq!(samples[1].metric, "queue_depth");
        assert_eq!(
            parse_prometheus("cpu{service=email} 1").unwrap_err(),
            "line 1: label values are quoted"
        );
        assert_eq!(
            parse_prometheus("ok 1\n9bad 2").unwrap_err(),
            "line 2: bad metric name"
        );
        assert_eq!(
            parse_prometheus("cpu NaN").unwrap_err(),
            "line 1: the value must be finite"
        );
    }
}
