//! Complaints with their history; satisfaction surveys and their responses.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use meridian_chassis::db::AnyConnection;
use serde::Serialize;

use super::schema::{rel_complaint_history, rel_complaints, rel_responses, rel_surveys};

/// A complaint.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset, Serialize)]
#[diesel(table_name = rel_complaints, treat_none_as_null = true)]
pub struct ComplaintRow {
    /// Id.
    pub id: String,
    /// `CMP` and seven digits.
    pub number: String,
    /// The customer.
    pub customer_id: String,
    /// The service complained about.
    pub service: Option<String>,
    /// Who complained.
    pub raised_by: String,
    /// In a line.
    pub summary: String,
    /// In full.
    pub description: String,
    /// `recorded`, `investigating`, `actioned` or `closed`.
    pub state: String,
    /// Who handles it.
    pub owner: Option<String>,
    /// 0 until escalated.
    pub escalation_level: i32,
    /// It is escalated when still open at this time.
    pub due_at: NaiveDateTime,
    /// What the investigation found.
    pub investigation: String,
    /// The action taken.
    pub action_taken: String,
    /// How it was closed.
    pub resolution: String,
    /// Who recorded it.
    pub recorded_by: String,
    /// Recorded.
    pub created_at: NaiveDateTime,
    /// Last changed.
    pub updated_at: NaiveDateTime,
    /// Closed.
    pub closed_at: Option<NaiveDateTime>,
    /// Bumped on every change.
    pub version: i64,
}

/// One entry of a complaint's record.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize)]
#[diesel(table_name = rel_complaint_history)]
pub struct HistoryRow {
    /// Id.
    pub id: String,
    /// The complaint.
    pub complaint_id: String,
    /// When.
    pub at: NaiveDateTime,
    /// Who (`system:relationship` for automatic escalation).
    pub actor: String,
    /// What: `recorded`, an action, `escalated`.
    pub action: String,
    /// JSON object of what was written.
    pub detail: String,
}

/// A satisfaction survey.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize)]
#[diesel(table_name = rel_surveys)]
pub struct SurveyRow {
    /// Id.
    pub id: String,
    /// `ticket` or `periodic`.
    pub kind: String,
    /// The ticket it is about (one survey per ticket).
    pub ticket_id: Option<String>,
    /// Its number.
    pub ticket_number: String,
    /// The service.
    pub service: String,
    /// The customer.
    pub customer: String,
    /// Who is asked.
    pub recipient: String,
    /// Sent.
    pub sent_at: NaiveDateTime,
    /// Its link expires.
    pub expires_at: NaiveDateTime,
    /// Answered.
    pub responded_at: Option<NaiveDateTime>,
}

/// An answer to a survey.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize)]
#[diesel(table_name = rel_responses)]
pub struct ResponseRow {
    /// Id.
    pub id: String,
    /// The survey.
    pub survey_id: String,
    /// 1 to 5.
    pub score: i32,
    /// Comment.
    pub comment: String,
    /// The service.
    pub service: String,
    /// The customer.
    pub customer: String,
    /// When.
    pub at: NaiveDateTime,
}

/// A complaint by id or number, locked for change on PostgreSQL when `lock`.
///
/// # Errors
/// A query failing.
pub fn complaint(
    conn: &mut AnyConnection,
    key: &str,
    lock: bool,
) -> QueryResult<Option<ComplaintRow>> {
    macro_rules! query {
        () => {
            rel_complaints::table
                .filter(
                    rel_complaints::id
                        .eq(key.to_owned())
                        .or(rel_complaints::number.eq(key.to_owned())),
                )
                .select(ComplaintRow::as_select())
        };
    }
    match conn {
        AnyConnection::Postgresql(pg) if lock => query!().for_update().first(pg).optional(),
        AnyConnection::Postgresql(pg) => query!().first(pg).optional(),
        AnyConnection::Sqlite(sqlite) => query!().first(sqlite).optional(),
    }
}

/// Inserts or updates a complaint, with an entry of its record.
///
/// # Errors
/// A query failing.
pub fn save_complaint(
    conn: &mut AnyConnection,
    row: &ComplaintRow,
    new: bool,
    entry: &HistoryRow,
) -> QueryResult<()> {
    if new {
        diesel::insert_into(rel_complaints::table)
            .values(row)
            .execute(conn)?;
    } else {
        diesel::update(rel_complaints::table.find(&row.id))
            .set(row)
            .execute(conn)?;
    }
    diesel::insert_into(rel_complaint_history::table)
        .values(entry)
        .execute(conn)?;
    Ok(())
}

/// A complaint's record, oldest first.
///
/// # Errors
/// A query failing.
pub fn history(conn: &mut AnyConnection, complaint: &str) -> QueryResult<Vec<HistoryRow>> {
    rel_complaint_history::table
        .filter(rel_complaint_history::complaint_id.eq(complaint))
        .order((rel_complaint_history::at, rel_complaint_history::id))
        .select(HistoryRow::as_select())
        .load(conn)
}

/// What `GET /v1/complaints` filters on.
#[derive(Debug, Default)]
pub struct ComplaintFilter {
    /// In this state.
    pub state: Option<String>,
    /// Of this customer.
    pub customer: Option<String>,
    /// Escalated at least once.
    pub escalated: Option<bool>,
    /// The cursor.
    pub after: Option<String>,
}

/// Complaints in id order.
///
/// # Errors
/// A query failing.
pub fn complaints(
    conn: &mut AnyConnection,
    filter: ComplaintFilter,
    limit: i64,
) -> QueryResult<Vec<ComplaintRow>> {
    let mut query = rel_complaints::table
        .select(ComplaintRow::as_select())
        .order(rel_complaints::id)
        .limit(limit)
        .into_boxed();
    if let Some(state) = filter.state {
        query = query.filter(rel_complaints::state.eq(state));
    }
    if let Some(customer) = filter.customer {
        query = query.filter(rel_complaints::customer_id.eq(customer));
    }
    match filter.escalated {
        Some(true) => query = query.filter(rel_complaints::escalation_level.gt(0)),
        Some(false) => query = query.filter(rel_complaints::escalation_level.eq(0)),
        None => {}
    }
    if let Some(after) = filter.after {
        query = query.filter(rel_complaints::id.gt(after));
    }
    query.load(conn)
}

/// Open complaints due for escalation at `now`, oldest due first.
///
/// # Errors
/// A query failing.
pub fn due_complaints(
    conn: &mut AnyConnection,
    now: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<ComplaintRow>> {
    rel_complaints::table
        .filter(rel_complaints::state.ne("closed"))
        .filter(rel_complaints::due_at.le(now))
        .order(rel_complaints::due_at)
        .limit(limit)
        .select(ComplaintRow::as_select())
        .load(conn)
}

/// Records a survey unless its ticket has one; whether it was recorded.
///
/// # Errors
/// A query failing.
pub fn add_survey(conn: &mut AnyConnection, row: &SurveyRow) -> QueryResult<bool> {
    if let Some(ticket) = &row.ticket_id {
        let held: i64 = rel_surveys::table
            .filter(rel_surveys::ticket_id.eq(ticket))
            .count()
            .get_result(conn)?;
        if held > 0 {
            return Ok(false);
        }
    }
    diesel::insert_into(rel_surveys::table)
        .values(row)
        .execute(conn)?;
    Ok(true)
}

/// A survey.
///
/// # Errors
/// A query failing.
pub fn survey(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<SurveyRow>> {
    rel_surveys::table
        .find(id)
        .select(SurveyRow::as_select())
        .first(conn)
        .optional()
}

/// Marks a survey answered, once: whether this call did it.
///
/// # Errors
/// A query failing.
pub fn mark_responded(conn: &mut AnyConnection, id: &str, at: NaiveDateTime) -> QueryResult<bool> {
    let changed = diesel::update(
        rel_surveys::table
            .find(id)
            .filter(rel_surveys::responded_at.is_null()),
    )
    .set(rel_surveys::responded_at.eq(at))
    .execute(conn)?;
    Ok(changed == 1)
}

/// Records an answer.
///
/// # Errors
/// A query failing.
pub fn add_response(conn: &mut AnyConnection, row: &ResponseRow) -> QueryResult<()> {
    diesel::insert_into(rel_responses::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// Answers in `[from, to)`, of one service and customer when given.
///
/// # Errors
/// A query failing.
pub fn responses(
    conn: &mut AnyConnection,
    from: NaiveDateTime,
    to: NaiveDateTime,
    service: Option<String>,
    customer: Option<String>,
) -> QueryResult<Vec<ResponseRow>> {
    let mut query = rel_responses::table
        .filter(rel_responses::at.ge(from))
        .filter(rel_responses::at.lt(to))
        .select(ResponseRow::as_select())
        .into_boxed();
    if let Some(service) = service {
        query = query.filter(rel_responses::service.eq(service));
    }
    if let Some(customer) = customer {
        query = query.filter(rel_responses::customer.eq(customer));
    }
    query.load(conn)
}

/// Surveys sent in `[from, to)`, of one service and customer when given.
///
/// # Errors
/// A query failing.
pub fn surveys_sent(
    conn: &mut AnyConnection,
    from: NaiveDateTime,
    to: NaiveDateTime,
    service: Option<String>,
    customer: Option<String>,
) -> QueryResult<i64> {
    let mut query = rel_surveys::table
        .filter(rel_surveys::sent_at.ge(from))
        .filter(rel_surveys::sent_at.lt(to))
        .into_boxed();
    if let Some(service) = service {
        query = query.filter(rel_surveys::service.eq(service));
    }
    if let Some(customer) = customer {
        query = query.filter(rel_surveys::customer.eq(customer));
    }
    query.count().get_result(conn)
}
