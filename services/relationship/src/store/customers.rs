//! Customers, their parties, service reviews and follow-up actions; the catalogue read model.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use meridian_chassis::db::AnyConnection;
use serde::Serialize;

use super::schema::{rel_actions, rel_customers, rel_parties, rel_service_reviews, rel_services};

/// A catalogue service as service-level published it.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset, Serialize)]
#[diesel(table_name = rel_services)]
pub struct ServiceRow {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Owner.
    pub owner: String,
    /// `pipeline`, `live` or `retired`.
    pub status: String,
    /// Its revision in the catalogue.
    pub revision: i64,
}

/// A customer.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset, Serialize)]
#[diesel(table_name = rel_customers, treat_none_as_null = true)]
pub struct CustomerRow {
    /// Id (a slug).
    pub id: String,
    /// Name.
    pub name: String,
    /// `external` or `internal`.
    pub kind: String,
    /// Who looks after the relationship.
    pub account_manager: String,
    /// JSON array of the catalogue services it receives.
    pub services: String,
    /// Service reviews at least this often.
    pub review_interval_days: i32,
    /// Periodic satisfaction surveys this often (none when absent).
    pub survey_interval_days: Option<i32>,
    /// Notes.
    pub notes: String,
    /// The last periodic survey.
    pub last_survey_at: Option<NaiveDateTime>,
    /// Who recorded it.
    pub created_by: String,
    /// Recorded.
    pub created_at: NaiveDateTime,
    /// Last changed.
    pub updated_at: NaiveDateTime,
}

/// A contact, a user or an interested party.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset, Serialize)]
#[diesel(table_name = rel_parties, treat_none_as_null = true)]
pub struct PartyRow {
    /// Id.
    pub id: String,
    /// The customer, if any.
    pub customer_id: Option<String>,
    /// `contact`, `user` or `interested_party`.
    pub kind: String,
    /// Name.
    pub name: String,
    /// E-mail address.
    pub email: String,
    /// Their Meridian user id (for surveys and notices), if they have one.
    pub user_id: String,
    /// Their requirements (interested parties, 4.2).
    pub requirements: String,
    /// Recorded.
    pub created_at: NaiveDateTime,
    /// Last changed.
    pub updated_at: NaiveDateTime,
}

/// A service review with a customer.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset, Serialize)]
#[diesel(table_name = rel_service_reviews, treat_none_as_null = true)]
pub struct ReviewRow {
    /// Id.
    pub id: String,
    /// The customer.
    pub customer_id: String,
    /// `planned`, `held` or `cancelled`.
    pub state: String,
    /// When it is to be held.
    pub scheduled_for: NaiveDateTime,
    /// The period reviewed.
    pub period_from: NaiveDate,
    /// Its end.
    pub period_to: NaiveDate,
    /// JSON array of agenda items.
    pub agenda: String,
    /// JSON array of per-service performance figures (from service-level's reports).
    pub performance: String,
    /// JSON array of attendees.
    pub attendees: String,
    /// Minutes.
    pub minutes: String,
    /// JSON array of decisions.
    pub decisions: String,
    /// When it was held.
    pub held_at: Option<NaiveDateTime>,
    /// Who planned it.
    pub created_by: String,
    /// Planned.
    pub created_at: NaiveDateTime,
    /// Last changed.
    pub updated_at: NaiveDateTime,
}

/// A follow-up action of a review.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset, Serialize)]
#[diesel(table_name = rel_actions, treat_none_as_null = true)]
pub struct ActionRow {
    /// Id.
    pub id: String,
    /// `service_review` or `supplier_review`.
    pub source_kind: String,
    /// The review.
    pub source_id: String,
    /// What is to be done.
    pub description: String,
    /// Who does it.
    pub owner: String,
    /// By when.
    pub due_on: Option<NaiveDate>,
    /// `open` or `done`.
    pub state: String,
    /// What was done.
    pub outcome: String,
    /// Who closed it.
    pub closed_by: Option<String>,
    /// When.
    pub closed_at: Option<NaiveDateTime>,
    /// Recorded.
    pub created_at: NaiveDateTime,
}

/// Upserts a catalogue service unless the one held is newer; whether it was written.
///
/// # Errors
/// A query failing.
pub fn upsert_service(conn: &mut AnyConnection, row: &ServiceRow) -> QueryResult<bool> {
    let held: Option<i64> = rel_services::table
        .find(&row.id)
        .select(rel_services::revision)
        .first(conn)
        .optional()?;
    match held {
        Some(revision) if revision > row.revision => Ok(false),
        Some(_) => {
            diesel::update(rel_services::table.find(&row.id))
                .set(row)
                .execute(conn)?;
            Ok(true)
        }
        None => {
            diesel::insert_into(rel_services::table)
                .values(row)
                .execute(conn)?;
            Ok(true)
        }
    }
}

/// The catalogue services among `ids` that are not known (or retired).
///
/// # Errors
/// A query failing.
pub fn unknown_services(conn: &mut AnyConnection, ids: &[String]) -> QueryResult<Vec<String>> {
    let known: Vec<String> = rel_services::table
        .filter(rel_services::id.eq_any(ids))
        .filter(rel_services::status.ne("retired"))
        .select(rel_services::id)
        .load(conn)?;
    Ok(ids
        .iter()
        .filter(|id| !known.contains(id))
        .cloned()
        .collect())
}

/// A customer.
///
/// # Errors
/// A query failing.
pub fn customer(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<CustomerRow>> {
    rel_customers::table
        .find(id)
        .select(CustomerRow::as_select())
        .first(conn)
        .optional()
}

/// Inserts or replaces a customer.
///
/// # Errors
/// A query failing.
pub fn save_customer(conn: &mut AnyConnection, row: &CustomerRow, new: bool) -> QueryResult<()> {
    if new {
        diesel::insert_into(rel_customers::table)
            .values(row)
            .execute(conn)?;
    } else {
        diesel::update(rel_customers::table.find(&row.id))
            .set(row)
            .execute(conn)?;
    }
    Ok(())
}

/// Customers in id order after `after`.
///
/// # Errors
/// A query failing.
pub fn customers(
    conn: &mut AnyConnection,
    after: Option<String>,
    limit: i64,
) -> QueryResult<Vec<CustomerRow>> {
    let mut query = rel_customers::table
        .select(CustomerRow::as_select())
        .order(rel_customers::id)
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(rel_customers::id.gt(after));
    }
    query.load(conn)
}

/// Every customer (the scheduler's periodic surveys).
///
/// # Errors
/// A query failing.
pub fn surveyed_customers(conn: &mut AnyConnection) -> QueryResult<Vec<CustomerRow>> {
    rel_customers::table
        .filter(rel_customers::survey_interval_days.is_not_null())
        .select(CustomerRow::as_select())
        .order(rel_customers::id)
        .load(conn)
}

/// A party.
///
/// # Errors
/// A query failing.
pub fn party(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<PartyRow>> {
    rel_parties::table
        .find(id)
        .select(PartyRow::as_select())
        .first(conn)
        .optional()
}

/// Inserts or replaces a party.
///
/// # Errors
/// A query failing.
pub fn save_party(conn: &mut AnyConnection, row: &PartyRow, new: bool) -> QueryResult<()> {
    if new {
        diesel::insert_into(rel_parties::table)
            .values(row)
            .execute(conn)?;
    } else {
        diesel::update(rel_parties::table.find(&row.id))
            .set(row)
            .execute(conn)?;
    }
    Ok(())
}

/// Parties, of one customer or kind when given.
///
/// # Errors
/// A query failing.
pub fn parties(
    conn: &mut AnyConnection,
    customer: Option<String>,
    kind: Option<String>,
) -> QueryResult<Vec<PartyRow>> {
    let mut query = rel_parties::table
        .select(PartyRow::as_select())
        .order(rel_parties::name)
        .into_boxed();
    if let Some(customer) = customer {
        query = query.filter(rel_parties::customer_id.eq(customer));
    }
    if let Some(kind) = kind {
        query = query.filter(rel_parties::kind.eq(kind));
    }
    query.load(conn)
}

/// A service review.
///
/// # Errors
/// A query failing.
pub fn review(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<ReviewRow>> {
    rel_service_reviews::table
        .find(id)
        .select(ReviewRow::as_select())
        .first(conn)
        .optional()
}

/// Inserts or replaces a service review.
///
/// # Errors
/// A query failing.
pub fn save_review(conn: &mut AnyConnection, row: &ReviewRow, new: bool) -> QueryResult<()> {
    if new {
        diesel::insert_into(rel_service_reviews::table)
            .values(row)
            .execute(conn)?;
    } else {
        diesel::update(rel_service_reviews::table.find(&row.id))
            .set(row)
            .execute(conn)?;
    }
    Ok(())
}

/// Service reviews, of one customer or state when given, newest first.
///
/// # Errors
/// A query failing.
pub fn reviews(
    conn: &mut AnyConnection,
    customer: Option<String>,
    state: Option<String>,
    limit: i64,
) -> QueryResult<Vec<ReviewRow>> {
    let mut query = rel_service_reviews::table
        .select(ReviewRow::as_select())
        .order(rel_service_reviews::scheduled_for.desc())
        .limit(limit)
        .into_boxed();
    if let Some(customer) = customer {
        query = query.filter(rel_service_reviews::customer_id.eq(customer));
    }
    if let Some(state) = state {
        query = query.filter(rel_service_reviews::state.eq(state));
    }
    query.load(conn)
}

/// When a customer's last review was held.
///
/// # Errors
/// A query failing.
pub fn last_held(conn: &mut AnyConnection, customer: &str) -> QueryResult<Option<NaiveDateTime>> {
    rel_service_reviews::table
        .filter(rel_service_reviews::customer_id.eq(customer))
        .filter(rel_service_reviews::state.eq("held"))
        .select(diesel::dsl::max(rel_service_reviews::held_at))
        .first(conn)
}

/// Records follow-up actions.
///
/// # Errors
/// A query failing.
pub fn add_actions(conn: &mut AnyConnection, rows: &[ActionRow]) -> QueryResult<()> {
    for row in rows {
        diesel::insert_into(rel_actions::table)
            .values(row)
            .execute(conn)?;
    }
    Ok(())
}

/// A follow-up action.
///
/// # Errors
/// A query failing.
pub fn action(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<ActionRow>> {
    rel_actions::table
        .find(id)
        .select(ActionRow::as_select())
        .first(conn)
        .optional()
}

/// Saves a follow-up action.
///
/// # Errors
/// A query failing.
pub fn save_action(conn: &mut AnyConnection, row: &ActionRow) -> QueryResult<()> {
    diesel::update(rel_actions::table.find(&row.id))
        .set(row)
        .execute(conn)?;
    Ok(())
}

/// What `GET /v1/follow-up-actions` filters on.
#[derive(Debug, Default)]
pub struct ActionFilter {
    /// `open` or `done`.
    pub state: Option<String>,
    /// Owned by.
    pub owner: Option<String>,
    /// Of this review.
    pub source_id: Option<String>,
    /// Due before this day (overdue).
    pub due_before: Option<NaiveDate>,
}

/// Follow-up actions, oldest first.
///
/// # Errors
/// A query failing.
pub fn actions(
    conn: &mut AnyConnection,
    filter: ActionFilter,
    limit: i64,
) -> QueryResult<Vec<ActionRow>> {
    let mut query = rel_actions::table
        .select(ActionRow::as_select())
        .order(rel_actions::created_at)
        .limit(limit)
        .into_boxed();
    if let Some(state) = filter.state {
        query = query.filter(rel_actions::state.eq(state));
    }
    if let Some(owner) = filter.owner {
        query = query.filter(rel_actions::owner.eq(owner));
    }
    if let Some(source) = filter.source_id {
        query = query.filter(rel_actions::source_id.eq(source));
    }
    if let Some(day) = filter.due_before {
        query = query.filter(rel_actions::due_on.lt(day));
    }
    query.load(conn)
}

/// The customer a person belongs to (a party with that user id or address), else the first
/// customer receiving `service`.
///
/// # Errors
/// A query failing.
pub fn customer_of(
    conn: &mut AnyConnection,
    person: &str,
    service: &str,
) -> QueryResult<Option<String>> {
    let by_party: Option<Option<String>> = rel_parties::table
        .filter(
            rel_parties::user_id
                .eq(person)
                .or(rel_parties::email.eq(person)),
        )
        .filter(rel_parties::customer_id.is_not_null())
        .select(rel_parties::customer_id)
        .first(conn)
        .optional()?;
    if let Some(Some(customer)) = by_party {
        return Ok(Some(customer));
    }
    if service.is_empty() {
        return Ok(None);
    }
    rel_customers::table
        .filter(rel_customers::services.like(format!("%\"{service}\"%")))
        .order(rel_customers::id)
        .select(rel_customers::id)
        .first(conn)
        .optional()
}
