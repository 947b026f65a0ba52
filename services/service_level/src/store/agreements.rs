//! Business calendars and agreements (SLAs, OLAs), and their translation into the clock
//! domain's terms.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Duration, NaiveDate};
use diesel::prelude::*;
use meridian_chassis::db::AnyConnection;
use serde::{Deserialize, Serialize};

use super::schema::{sl_agreements, sl_calendars};
use crate::domain::calendar::{Calendar, Hours};
use crate::domain::clock::{Agreement, Targets};

/// A calendar row.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset, Serialize)]
#[diesel(table_name = sl_calendars)]
pub struct CalendarRow {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// IANA time zone.
    pub timezone: String,
    /// JSON: Monday to Sunday, each null or {"start": "HH:MM", "end": "HH:MM"}.
    pub week: String,
    /// JSON array of `YYYY-MM-DD`.
    pub holidays: String,
    /// Last changed.
    pub updated_at: chrono::NaiveDateTime,
}

/// A day's working hours as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DayHours {
    /// `HH:MM`.
    pub start: String,
    /// `HH:MM`, or `24:00`.
    pub end: String,
}

/// Minutes from midnight of `HH:MM` (`24:00` is 1440).
pub fn minutes(raw: &str) -> Option<u32> {
    let (h, m) = raw.split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    if raw.len() != 5 || m >= 60 || h > 24 || (h == 24 && m != 0) {
        return None;
    }
    Some(h * 60 + m)
}

impl CalendarRow {
    /// The calendar, or why the row is unusable.
    ///
    /// # Errors
    /// A bad zone, week or holiday (rows are checked when written, so only a corrupt row fails).
    pub fn calendar(&self) -> Result<Calendar, String> {
        let tz = self
            .timezone
            .parse()
            .map_err(|_| format!("bad time zone {}", self.timezone))?;
        let days: Vec<Option<DayHours>> =
            serde_json::from_str(&self.week).map_err(|e| e.to_string())?;
        let mut week = [None; 7];
        for (i, day) in days.iter().enumerate().take(7) {
            if let Some(day) = day {
                let (start, end) = (minutes(&day.start), minutes(&day.end));
                let (Some(start), Some(end)) = (start, end) else {
                    return Err(format!("bad hours on day {i}"));
                };
                week[i] = Some(Hours { start, end });
            }
        }
        let holidays: BTreeSet<NaiveDate> =
            serde_json::from_str(&self.holidays).map_err(|e| e.to_string())?;
        Ok(Calendar { tz, week, holidays })
    }
}

/// An agreement row.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset, Serialize)]
#[diesel(table_name = sl_agreements, treat_none_as_null = true)]
pub struct AgreementRow {
    /// Id.
    pub id: String,
    /// `sla` (with a customer) or `ola` (with an internal group).
    pub kind: String,
    /// Name.
    pub name: String,
    /// The service it covers.
    pub service: String,
    /// The customer (SLA).
    pub customer: Option<String>,
    /// The internal group (OLA): its clocks count while the ticket is with it.
    pub group_name: Option<String>,
    /// Its calendar.
    pub calendar_id: String,
    /// JSON: priority → {response_minutes, resolution_minutes}.
    pub targets: String,
    /// Warning at this share of the target.
    pub warning_percent: i32,
    /// JSON array of pending reasons that pause its clocks.
    pub pause_reasons: String,
    /// Workload limits agreed (e.g. 200 incidents a month).
    pub workload_limit: String,
    /// Exceptions agreed.
    pub exceptions: String,
    /// In force.
    pub active: bool,
    /// Created.
    pub created_at: chrono::NaiveDateTime,
    /// Last changed.
    pub updated_at: chrono::NaiveDateTime,
    /// JSON array of the ticket kinds it times: `incident`, `request`.
    pub applies_to: String,
}

/// One priority's targets as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetMinutes {
    /// Minutes of working time to respond.
    pub response_minutes: Option<i64>,
    /// Minutes of working time to resolve.
    pub resolution_minutes: Option<i64>,
}

impl AgreementRow {
    /// Whether it times tickets of `kind` (`incident` or `request`).
    pub fn applies_to(&self, kind: &str) -> bool {
        serde_json::from_str::<Vec<String>>(&self.applies_to)
            .map_or(true, |kinds| kinds.iter().any(|k| k == kind))
    }

    /// Its targets, by priority.
    pub fn targets(&self) -> BTreeMap<i32, TargetMinutes> {
        serde_json::from_str::<BTreeMap<String, TargetMinutes>>(&self.targets)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(k, v)| k.parse().ok().map(|k| (k, v)))
            .collect()
    }

    /// The agreement as the clocks need it.
    pub fn agreement(&self, calendar: Calendar) -> Agreement {
        Agreement {
            calendar,
            targets: self
                .targets()
                .into_iter()
                .map(|(p, t)| {
                    (
                        p,
                        Targets {
                            response: t.response_minutes.map(Duration::minutes),
                            resolution: t.resolution_minutes.map(Duration::minutes),
                        },
                    )
                })
                .collect(),
            warning_percent: u32::try_from(self.warning_percent).unwrap_or(75),
            pause_reasons: super::strings(&self.pause_reasons),
            group: self.group_name.clone(),
        }
    }
}

/// Inserts or replaces a calendar.
///
/// # Errors
/// A query failing.
pub fn save_calendar(conn: &mut AnyConnection, row: &CalendarRow) -> QueryResult<()> {
    if diesel::update(sl_calendars::table.find(&row.id))
        .set(row)
        .execute(conn)?
        == 0
    {
        diesel::insert_into(sl_calendars::table)
            .values(row)
            .execute(conn)?;
    }
    Ok(())
}

/// One calendar.
///
/// # Errors
/// A query failing.
pub fn calendar(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<CalendarRow>> {
    sl_calendars::table
        .find(id)
        .select(CalendarRow::as_select())
        .first(conn)
        .optional()
}

/// Every calendar.
///
/// # Errors
/// A query failing.
pub fn calendars(conn: &mut AnyConnection) -> QueryResult<Vec<CalendarRow>> {
    sl_calendars::table
        .select(CalendarRow::as_select())
        .order(sl_calendars::id)
        .load(conn)
}

/// Inserts or replaces an agreement.
///
/// # Errors
/// A query failing.
pub fn save(conn: &mut AnyConnection, row: &AgreementRow) -> QueryResult<()> {
    if diesel::update(sl_agreements::table.find(&row.id))
        .set(row)
        .execute(conn)?
        == 0
    {
        diesel::insert_into(sl_agreements::table)
            .values(row)
            .execute(conn)?;
    }
    Ok(())
}

/// One agreement.
///
/// # Errors
/// A query failing.
pub fn find(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<AgreementRow>> {
    sl_agreements::table
        .find(id)
        .select(AgreementRow::as_select())
        .first(conn)
        .optional()
}

/// Agreements, by id (optionally of one service).
///
/// # Errors
/// A query failing.
pub fn list(conn: &mut AnyConnection, service: Option<&str>) -> QueryResult<Vec<AgreementRow>> {
    let mut query = sl_agreements::table
        .select(AgreementRow::as_select())
        .order(sl_agreements::id)
        .into_boxed();
    if let Some(service) = service {
        query = query.filter(sl_agreements::service.eq(service.to_owned()));
    }
    query.load(conn)
}

/// The agreements in force for `service`, each with its calendar.
///
/// # Errors
/// A query failing.
pub fn in_force(
    conn: &mut AnyConnection,
    service: &str,
) -> QueryResult<Vec<(AgreementRow, Calendar)>> {
    let rows: Vec<AgreementRow> = sl_agreements::table
        .filter(sl_agreements::service.eq(service))
        .filter(sl_agreements::active.eq(true))
        .select(AgreementRow::as_select())
        .order(sl_agreements::id)
        .load(conn)?;
    let mut out = Vec::new();
    for row in rows {
        match calendar(conn, &row.calendar_id)?.map(|c| c.calendar()) {
            Some(Ok(calendar)) => out.push((row, calendar)),
            _ => tracing::warn!(
                agreement = row.id,
                "its calendar is missing or unusable; no clocks"
            ),
        }
    }
    Ok(out)
}
