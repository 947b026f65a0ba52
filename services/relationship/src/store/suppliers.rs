//! Suppliers, their contracts and agreements, measurements, disputes and supplier reviews.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use meridian_chassis::db::AnyConnection;
use serde::Serialize;

use super::schema::{
    rel_contracts, rel_disputes, rel_measurements, rel_supplier_reviews, rel_suppliers,
};

/// A supplier.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset, Serialize)]
#[diesel(table_name = rel_suppliers, treat_none_as_null = true)]
pub struct SupplierRow {
    /// Id (a slug).
    pub id: String,
    /// Name.
    pub name: String,
    /// `external`, `internal` (a group acting as a supplier) or `customer` (a customer acting as
    /// a supplier).
    pub kind: String,
    /// The customer, for `customer`.
    pub customer_id: Option<String>,
    /// The supplier manager.
    pub manager: String,
    /// Their contact address.
    pub contact_email: String,
    /// JSON array of the processes and service components they operate (8.2.3).
    pub operates: String,
    /// `active` or `inactive`.
    pub status: String,
    /// Recorded.
    pub created_at: NaiveDateTime,
    /// Last changed.
    pub updated_at: NaiveDateTime,
}

/// A contract or internal agreement.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset, Serialize)]
#[diesel(table_name = rel_contracts, treat_none_as_null = true)]
pub struct ContractRow {
    /// Id.
    pub id: String,
    /// `CON` and seven digits.
    pub number: String,
    /// The supplier.
    pub supplier_id: String,
    /// `contract` or `internal_agreement`.
    pub kind: String,
    /// Title.
    pub title: String,
    /// Scope.
    pub scope: String,
    /// JSON array of the catalogue services it supports.
    pub services: String,
    /// JSON array of targets.
    pub targets: String,
    /// Roles and responsibilities.
    pub roles: String,
    /// Interfaces between the parties.
    pub interfaces: String,
    /// Starts.
    pub starts_on: NaiveDate,
    /// Ends (open-ended when absent).
    pub ends_on: Option<NaiveDate>,
    /// Notice period, days.
    pub notice_days: i32,
    /// Value.
    pub value: Option<f64>,
    /// ISO 4217 code of the value.
    pub currency: String,
    /// The contract owner.
    pub owner: String,
    /// Reviewed at least this often.
    pub review_interval_days: i32,
    /// The next supplier review is due.
    pub next_review_due: NaiveDate,
    /// `active`, `expired` or `terminated`.
    pub state: String,
    /// `relationship.contract.expiring` was raised for the current end date.
    pub expiry_notified: bool,
    /// Who recorded it.
    pub created_by: String,
    /// Recorded.
    pub created_at: NaiveDateTime,
    /// Last changed.
    pub updated_at: NaiveDateTime,
}

/// A measurement against a contract target.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize)]
#[diesel(table_name = rel_measurements)]
pub struct MeasurementRow {
    /// Id.
    pub id: String,
    /// The contract.
    pub contract_id: String,
    /// The target's metric.
    pub metric: String,
    /// The value measured.
    pub value: f64,
    /// The period measured.
    pub period_from: NaiveDate,
    /// Its end.
    pub period_to: NaiveDate,
    /// Whether it met the target.
    pub met: bool,
    /// Notes.
    pub notes: String,
    /// Who recorded it.
    pub recorded_by: String,
    /// When.
    pub recorded_at: NaiveDateTime,
}

/// A dispute with a supplier.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset, Serialize)]
#[diesel(table_name = rel_disputes, treat_none_as_null = true)]
pub struct DisputeRow {
    /// Id.
    pub id: String,
    /// `DSP` and seven digits.
    pub number: String,
    /// The contract.
    pub contract_id: String,
    /// The supplier.
    pub supplier_id: String,
    /// In a line.
    pub summary: String,
    /// In full.
    pub details: String,
    /// `open` or `resolved`.
    pub state: String,
    /// Who raised it.
    pub raised_by: String,
    /// When.
    pub raised_at: NaiveDateTime,
    /// How it was resolved.
    pub resolution: String,
    /// Who resolved it.
    pub resolved_by: Option<String>,
    /// When.
    pub resolved_at: Option<NaiveDateTime>,
}

/// A supplier review.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset, Serialize)]
#[diesel(table_name = rel_supplier_reviews, treat_none_as_null = true)]
pub struct SupplierReviewRow {
    /// Id (the workflow's business key).
    pub id: String,
    /// The supplier.
    pub supplier_id: String,
    /// The contract reviewed.
    pub contract_id: String,
    /// `in_progress`, `completed` or `cancelled`.
    pub state: String,
    /// The period reviewed.
    pub period_from: NaiveDate,
    /// Its end.
    pub period_to: NaiveDate,
    /// JSON array of score lines assembled from the measurements.
    pub scorecard: String,
    /// The supplier-review workflow instance.
    pub instance_id: Option<String>,
    /// `satisfactory` or `improvement_planned`.
    pub outcome: String,
    /// JSON object of the scorecard task's ratings.
    pub ratings: String,
    /// The supplier manager's assessment.
    pub assessment: String,
    /// The contract owner who signed it off.
    pub signed_off_by: String,
    /// Who started it (`system:relationship` when it fell due).
    pub started_by: String,
    /// Started.
    pub started_at: NaiveDateTime,
    /// Completed or cancelled.
    pub completed_at: Option<NaiveDateTime>,
}

/// A supplier.
///
/// # Errors
/// A query failing.
pub fn supplier(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<SupplierRow>> {
    rel_suppliers::table
        .find(id)
        .select(SupplierRow::as_select())
        .first(conn)
        .optional()
}

/// Inserts or replaces a supplier.
///
/// # Errors
/// A query failing.
pub fn save_supplier(conn: &mut AnyConnection, row: &SupplierRow, new: bool) -> QueryResult<()> {
    if new {
        diesel::insert_into(rel_suppliers::table)
            .values(row)
            .execute(conn)?;
    } else {
        diesel::update(rel_suppliers::table.find(&row.id))
            .set(row)
            .execute(conn)?;
    }
    Ok(())
}

/// Suppliers in id order, of one kind when given.
///
/// # Errors
/// A query failing.
pub fn suppliers(
    conn: &mut AnyConnection,
    kind: Option<String>,
    after: Option<String>,
    limit: i64,
) -> QueryResult<Vec<SupplierRow>> {
    let mut query = rel_suppliers::table
        .select(SupplierRow::as_select())
        .order(rel_suppliers::id)
        .limit(limit)
        .into_boxed();
    if let Some(kind) = kind {
        query = query.filter(rel_suppliers::kind.eq(kind));
    }
    if let Some(after) = after {
        query = query.filter(rel_suppliers::id.gt(after));
    }
    query.load(conn)
}

/// A contract by id or number, locked for change on PostgreSQL when `lock`.
///
/// # Errors
/// A query failing.
pub fn contract(
    conn: &mut AnyConnection,
    key: &str,
    lock: bool,
) -> QueryResult<Option<ContractRow>> {
    macro_rules! query {
        () => {
            rel_contracts::table
                .filter(
                    rel_contracts::id
                        .eq(key.to_owned())
                        .or(rel_contracts::number.eq(key.to_owned())),
                )
                .select(ContractRow::as_select())
        };
    }
    match conn {
        AnyConnection::Postgresql(pg) if lock => query!().for_update().first(pg).optional(),
        AnyConnection::Postgresql(pg) => query!().first(pg).optional(),
        AnyConnection::Sqlite(sqlite) => query!().first(sqlite).optional(),
    }
}

/// Inserts or replaces a contract.
///
/// # Errors
/// A query failing.
pub fn save_contract(conn: &mut AnyConnection, row: &ContractRow, new: bool) -> QueryResult<()> {
    if new {
        diesel::insert_into(rel_contracts::table)
            .values(row)
            .execute(conn)?;
    } else {
        diesel::update(rel_contracts::table.find(&row.id))
            .set(row)
            .execute(conn)?;
    }
    Ok(())
}

/// What `GET /v1/contracts` filters on.
#[derive(Debug, Default)]
pub struct ContractFilter {
    /// Of this supplier.
    pub supplier: Option<String>,
    /// In this state.
    pub state: Option<String>,
    /// Ending on or before this day.
    pub ends_by: Option<NaiveDate>,
    /// The cursor.
    pub after: Option<String>,
}

/// Contracts in id order.
///
/// # Errors
/// A query failing.
pub fn contracts(
    conn: &mut AnyConnection,
    filter: ContractFilter,
    limit: i64,
) -> QueryResult<Vec<ContractRow>> {
    let mut query = rel_contracts::table
        .select(ContractRow::as_select())
        .order(rel_contracts::id)
        .limit(limit)
        .into_boxed();
    if let Some(supplier) = filter.supplier {
        query = query.filter(rel_contracts::supplier_id.eq(supplier));
    }
    if let Some(state) = filter.state {
        query = query.filter(rel_contracts::state.eq(state));
    }
    if let Some(day) = filter.ends_by {
        query = query.filter(rel_contracts::ends_on.le(day));
    }
    if let Some(after) = filter.after {
        query = query.filter(rel_contracts::id.gt(after));
    }
    query.load(conn)
}

/// Active contracts with an end date that have ended before `today` or not yet been announced
/// as expiring (for the scheduler's expiry notices).
///
/// # Errors
/// A query failing.
pub fn ending(conn: &mut AnyConnection, today: NaiveDate) -> QueryResult<Vec<ContractRow>> {
    rel_contracts::table
        .filter(rel_contracts::state.eq("active"))
        .filter(rel_contracts::ends_on.is_not_null())
        .filter(
            rel_contracts::ends_on
                .lt(today)
                .or(rel_contracts::expiry_notified.eq(false)),
        )
        .select(ContractRow::as_select())
        .order(rel_contracts::id)
        .load(conn)
}

/// Active contracts whose supplier review is due by `today`.
///
/// # Errors
/// A query failing.
pub fn reviews_due(conn: &mut AnyConnection, today: NaiveDate) -> QueryResult<Vec<ContractRow>> {
    rel_contracts::table
        .filter(rel_contracts::state.eq("active"))
        .filter(rel_contracts::next_review_due.le(today))
        .select(ContractRow::as_select())
        .order(rel_contracts::id)
        .load(conn)
}

/// Records a measurement.
///
/// # Errors
/// A query failing.
pub fn add_measurement(conn: &mut AnyConnection, row: &MeasurementRow) -> QueryResult<()> {
    diesel::insert_into(rel_measurements::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// A contract's measurements whose period ends in `[from, to]`, oldest first.
///
/// # Errors
/// A query failing.
pub fn measurements(
    conn: &mut AnyConnection,
    contract: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> QueryResult<Vec<MeasurementRow>> {
    rel_measurements::table
        .filter(rel_measurements::contract_id.eq(contract))
        .filter(rel_measurements::period_to.ge(from))
        .filter(rel_measurements::period_to.le(to))
        .order((rel_measurements::period_to, rel_measurements::id))
        .select(MeasurementRow::as_select())
        .load(conn)
}

/// A dispute by id or number.
///
/// # Errors
/// A query failing.
pub fn dispute(conn: &mut AnyConnection, key: &str) -> QueryResult<Option<DisputeRow>> {
    rel_disputes::table
        .filter(
            rel_disputes::id
                .eq(key.to_owned())
                .or(rel_disputes::number.eq(key.to_owned())),
        )
        .select(DisputeRow::as_select())
        .first(conn)
        .optional()
}

/// Inserts or replaces a dispute.
///
/// # Errors
/// A query failing.
pub fn save_dispute(conn: &mut AnyConnection, row: &DisputeRow, new: bool) -> QueryResult<()> {
    if new {
        diesel::insert_into(rel_disputes::table)
            .values(row)
            .execute(conn)?;
    } else {
        diesel::update(rel_disputes::table.find(&row.id))
            .set(row)
            .execute(conn)?;
    }
    Ok(())
}

/// Disputes, of one supplier or state when given, newest first.
///
/// # Errors
/// A query failing.
pub fn disputes(
    conn: &mut AnyConnection,
    supplier: Option<String>,
    state: Option<String>,
    limit: i64,
) -> QueryResult<Vec<DisputeRow>> {
    let mut query = rel_disputes::table
        .select(DisputeRow::as_select())
        .order(rel_disputes::raised_at.desc())
        .limit(limit)
        .into_boxed();
    if let Some(supplier) = supplier {
        query = query.filter(rel_disputes::supplier_id.eq(supplier));
    }
    if let Some(state) = state {
        query = query.filter(rel_disputes::state.eq(state));
    }
    query.load(conn)
}

/// Open disputes on a contract.
///
/// # Errors
/// A query failing.
pub fn open_disputes(conn: &mut AnyConnection, contract: &str) -> QueryResult<i64> {
    rel_disputes::table
        .filter(rel_disputes::contract_id.eq(contract))
        .filter(rel_disputes::state.eq("open"))
        .count()
        .get_result(conn)
}

/// A supplier review.
///
/// # Errors
/// A query failing.
pub fn review(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<SupplierReviewRow>> {
    rel_supplier_reviews::table
        .find(id)
        .select(SupplierReviewRow::as_select())
        .first(conn)
        .optional()
}

/// Inserts or replaces a supplier review.
///
/// # Errors
/// A query failing.
pub fn save_review(
    conn: &mut AnyConnection,
    row: &SupplierReviewRow,
    new: bool,
) -> QueryResult<()> {
    if new {
        diesel::insert_into(rel_supplier_reviews::table)
            .values(row)
            .execute(conn)?;
    } else {
        diesel::update(rel_supplier_reviews::table.find(&row.id))
            .set(row)
            .execute(conn)?;
    }
    Ok(())
}

/// A contract's review in progress, if any.
///
/// # Errors
/// A query failing.
pub fn review_in_progress(
    conn: &mut AnyConnection,
    contract: &str,
) -> QueryResult<Option<SupplierReviewRow>> {
    rel_supplier_reviews::table
        .filter(rel_supplier_reviews::contract_id.eq(contract))
        .filter(rel_supplier_reviews::state.eq("in_progress"))
        .select(SupplierReviewRow::as_select())
        .first(conn)
        .optional()
}

/// Supplier reviews, of one supplier or state when given, newest first.
///
/// # Errors
/// A query failing.
pub fn reviews(
    conn: &mut AnyConnection,
    supplier: Option<String>,
    state: Option<String>,
    limit: i64,
) -> QueryResult<Vec<SupplierReviewRow>> {
    let mut query = rel_supplier_reviews::table
        .select(SupplierReviewRow::as_select())
        .order(rel_supplier_reviews::started_at.desc())
        .limit(limit)
        .into_boxed();
    if let Some(supplier) = supplier {
        query = query.filter(rel_supplier_reviews::supplier_id.eq(supplier));
    }
    if let Some(state) = state {
        query = query.filter(rel_supplier_reviews::state.eq(state));
    }
    query.load(conn)
}
