//! Availability targets and outages, continuity plans with their tests and invocations, capacity
//! plans and measurements, demand forecasts, budgets and costs, and the read models reporting
//! needs (changes, satisfaction).

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use meridian_chassis::db::AnyConnection;
use serde::Serialize;

use super::schema::{
    sl_availability_targets, sl_budgets, sl_capacity_plans, sl_changes, sl_continuity_events,
    sl_continuity_plans, sl_costs, sl_forecasts, sl_measurements, sl_outages, sl_satisfaction,
};

/// An outage.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset, Serialize)]
#[diesel(table_name = sl_outages, treat_none_as_null = true)]
pub struct OutageRow {
    /// Id.
    pub id: String,
    /// The service.
    pub service: String,
    /// Began.
    pub started_at: NaiveDateTime,
    /// Ended.
    pub ended_at: Option<NaiveDateTime>,
    /// Planned maintenance.
    pub planned: bool,
    /// `manual` or `major_incident`.
    pub source: String,
    /// The major incident.
    pub ticket_id: Option<String>,
    /// What happened.
    pub description: String,
    /// The investigation of unplanned non-availability.
    pub investigation: Option<String>,
    /// Who recorded it.
    pub recorded_by: String,
}

/// A continuity plan.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset, Serialize)]
#[diesel(table_name = sl_continuity_plans)]
pub struct PlanRow {
    /// Id.
    pub id: String,
    /// The service.
    pub service: String,
    /// Name.
    pub name: String,
    /// How service continues (the strategy and its steps).
    pub strategy: String,
    /// Recovery time objective.
    pub rto_minutes: i32,
    /// Recovery point objective.
    pub rpo_minutes: i32,
    /// Tested at least this often.
    pub test_interval_days: i32,
    /// Owner.
    pub owner: String,
    /// Last changed.
    pub updated_at: NaiveDateTime,
}

/// A test or an invocation of a plan.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize)]
#[diesel(table_name = sl_continuity_events)]
pub struct PlanEventRow {
    /// Id.
    pub id: String,
    /// The plan.
    pub plan_id: String,
    /// `test` or `invocation`.
    pub kind: String,
    /// When.
    pub at: NaiveDateTime,
    /// The scenario tested, or the disruption.
    pub scenario: String,
    /// `passed`, `partial`, `failed` (tests) or `recovered`, `ongoing` (invocations).
    pub result: String,
    /// Findings.
    pub notes: String,
    /// Who recorded it.
    pub recorded_by: String,
}

/// A capacity plan.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset, Serialize)]
#[diesel(table_name = sl_capacity_plans)]
pub struct CapacityRow {
    /// Id.
    pub id: String,
    /// The service.
    pub service: String,
    /// Name.
    pub name: String,
    /// Human resources required.
    pub human: String,
    /// Technical resources required.
    pub technical: String,
    /// Financial resources required.
    pub financial: String,
    /// JSON array of thresholds.
    pub thresholds: String,
    /// Owner.
    pub owner: String,
    /// Last changed.
    pub updated_at: NaiveDateTime,
}

/// A measurement.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize)]
#[diesel(table_name = sl_measurements)]
pub struct MeasurementRow {
    /// Id.
    pub id: String,
    /// The service.
    pub service: String,
    /// The metric.
    pub metric: String,
    /// Its value.
    pub value: f64,
    /// When.
    pub at: NaiveDateTime,
    /// `rest` or `prometheus`.
    pub source: String,
}

/// A demand forecast.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset, Serialize)]
#[diesel(table_name = sl_forecasts)]
pub struct ForecastRow {
    /// Id.
    pub id: String,
    /// The service.
    pub service: String,
    /// `YYYY-MM` or `YYYY`.
    pub period: String,
    /// What is forecast (e.g. `incidents`, `users`).
    pub metric: String,
    /// The expected value.
    pub expected: f64,
    /// Notes.
    pub notes: String,
}

/// A budget.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset, Serialize)]
#[diesel(table_name = sl_budgets)]
pub struct BudgetRow {
    /// The service.
    pub service: String,
    /// `YYYY` or `YYYY-MM`.
    pub period: String,
    /// Amount.
    pub amount: f64,
    /// ISO 4217 code.
    pub currency: String,
}

/// A cost.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize)]
#[diesel(table_name = sl_costs)]
pub struct CostRow {
    /// Id.
    pub id: String,
    /// The service.
    pub service: String,
    /// The budget period it counts against.
    pub period: String,
    /// Amount.
    pub amount: f64,
    /// e.g. `licences`, `staff`, `hosting`.
    pub category: String,
    /// What it was.
    pub description: String,
    /// When it was incurred.
    pub incurred_on: NaiveDate,
    /// Who recorded it.
    pub recorded_by: String,
}

/// A change as reporting needs it.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = sl_changes)]
pub struct ChangeRow {
    /// Id.
    pub id: String,
    /// Number.
    pub number: String,
    /// JSON array of CI ids.
    pub configuration_items: String,
    /// Its state.
    pub state: String,
    /// Submitted.
    pub submitted_at: NaiveDateTime,
    /// Last changed.
    pub updated_at: NaiveDateTime,
}

/// A satisfaction score.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = sl_satisfaction)]
pub struct SatisfactionRow {
    /// The survey response's id.
    pub id: String,
    /// The service.
    pub service: String,
    /// The customer.
    pub customer: String,
    /// 1 to 5.
    pub score: i32,
    /// When.
    pub at: NaiveDateTime,
}

/// Sets a service's availability target.
///
/// # Errors
/// A query failing.
pub fn set_target(
    conn: &mut AnyConnection,
    service: &str,
    percent: f64,
    at: NaiveDateTime,
) -> QueryResult<()> {
    let changed = diesel::update(sl_availability_targets::table.find(service))
        .set((
            sl_availability_targets::target_percent.eq(percent),
            sl_availability_targets::updated_at.eq(at),
        ))
        .execute(conn)?;
    if changed == 0 {
        diesel::insert_into(sl_availability_targets::table)
            .values((
                sl_availability_targets::service.eq(service),
                sl_availability_targets::target_percent.eq(percent),
                sl_availability_targets::updated_at.eq(at),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// A service's availability target.
///
/// # Errors
/// A query failing.
pub fn target(conn: &mut AnyConnection, service: &str) -> QueryResult<Option<f64>> {
    sl_availability_targets::table
        .find(service)
        .select(sl_availability_targets::target_percent)
        .first(conn)
        .optional()
}

/// Inserts or replaces an outage.
///
/// # Errors
/// A query failing.
pub fn save_outage(conn: &mut AnyConnection, row: &OutageRow) -> QueryResult<()> {
    if diesel::update(sl_outages::table.find(&row.id))
        .set(row)
        .execute(conn)?
        == 0
    {
        diesel::insert_into(sl_outages::table)
            .values(row)
            .execute(conn)?;
    }
    Ok(())
}

/// One outage.
///
/// # Errors
/// A query failing.
pub fn outage(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<OutageRow>> {
    sl_outages::table
        .find(id)
        .select(OutageRow::as_select())
        .first(conn)
        .optional()
}

/// The open outage a major incident recorded.
///
/// # Errors
/// A query failing.
pub fn outage_of_ticket(conn: &mut AnyConnection, ticket: &str) -> QueryResult<Option<OutageRow>> {
    sl_outages::table
        .filter(sl_outages::ticket_id.eq(ticket))
        .filter(sl_outages::ended_at.is_null())
        .select(OutageRow::as_select())
        .first(conn)
        .optional()
}

/// Outages of `service` overlapping `[from, to)`.
///
/// # Errors
/// A query failing.
pub fn outages(
    conn: &mut AnyConnection,
    service: &str,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> QueryResult<Vec<OutageRow>> {
    sl_outages::table
        .filter(sl_outages::service.eq(service))
        .filter(sl_outages::started_at.lt(to))
        .filter(
            sl_outages::ended_at
                .is_null()
                .or(sl_outages::ended_at.gt(from)),
        )
        .order(sl_outages::started_at)
        .select(OutageRow::as_select())
        .load(conn)
}

/// Inserts or replaces a plan.
///
/// # Errors
/// A query failing.
pub fn save_plan(conn: &mut AnyConnection, row: &PlanRow) -> QueryResult<()> {
    if diesel::update(sl_continuity_plans::table.find(&row.id))
        .set(row)
        .execute(conn)?
        == 0
    {
        diesel::insert_into(sl_continuity_plans::table)
            .values(row)
            .execute(conn)?;
    }
    Ok(())
}

/// One plan.
///
/// # Errors
/// A query failing.
pub fn plan(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<PlanRow>> {
    sl_continuity_plans::table
        .find(id)
        .select(PlanRow::as_select())
        .first(conn)
        .optional()
}

/// Plans (of a service).
///
/// # Errors
/// A query failing.
pub fn plans(conn: &mut AnyConnection, service: Option<&str>) -> QueryResult<Vec<PlanRow>> {
    let mut query = sl_continuity_plans::table
        .select(PlanRow::as_select())
        .order(sl_continuity_plans::id)
        .into_boxed();
    if let Some(service) = service {
        query = query.filter(sl_continuity_plans::service.eq(service.to_owned()));
    }
    query.load(conn)
}

/// Records a test or an invocation.
///
/// # Errors
/// A query failing.
pub fn add_plan_event(conn: &mut AnyConnection, row: &PlanEventRow) -> QueryResult<()> {
    diesel::insert_into(sl_continuity_events::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// A plan's tests and invocations, oldest first.
///
/// # Errors
/// A query failing.
pub fn plan_events(conn: &mut AnyConnection, plan_id: &str) -> QueryResult<Vec<PlanEventRow>> {
    sl_continuity_events::table
        .filter(sl_continuity_events::plan_id.eq(plan_id))
        .order(sl_continuity_events::at)
        .select(PlanEventRow::as_select())
        .load(conn)
}

/// Inserts or replaces a capacity plan.
///
/// # Errors
/// A query failing.
pub fn save_capacity(conn: &mut AnyConnection, row: &CapacityRow) -> QueryResult<()> {
    if diesel::update(sl_capacity_plans::table.find(&row.id))
        .set(row)
        .execute(conn)?
        == 0
    {
        diesel::insert_into(sl_capacity_plans::table)
            .values(row)
            .execute(conn)?;
    }
    Ok(())
}

/// Capacity plans (of a service).
///
/// # Errors
/// A query failing.
pub fn capacity_plans(
    conn: &mut AnyConnection,
    service: Option<&str>,
) -> QueryResult<Vec<CapacityRow>> {
    let mut query = sl_capacity_plans::table
        .select(CapacityRow::as_select())
        .order(sl_capacity_plans::id)
        .into_boxed();
    if let Some(service) = service {
        query = query.filter(sl_capacity_plans::service.eq(service.to_owned()));
    }
    query.load(conn)
}

/// Records measurements.
///
/// # Errors
/// A query failing.
pub fn add_measurements(conn: &mut AnyConnection, rows: &[MeasurementRow]) -> QueryResult<()> {
    for row in rows {
        diesel::insert_into(sl_measurements::table)
            .values(row)
            .execute(conn)?;
    }
    Ok(())
}

/// Measurements of a service's metric in `[from, to)`, oldest first.
///
/// # Errors
/// A query failing.
pub fn measurements(
    conn: &mut AnyConnection,
    service: &str,
    metric: Option<&str>,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> QueryResult<Vec<MeasurementRow>> {
    let mut query = sl_measurements::table
        .filter(sl_measurements::service.eq(service.to_owned()))
        .filter(sl_measurements::at.ge(from))
        .filter(sl_measurements::at.lt(to))
        .order((sl_measurements::at, sl_measurements::id))
        .select(MeasurementRow::as_select())
        .into_boxed();
    if let Some(metric) = metric {
        query = query.filter(sl_measurements::metric.eq(metric.to_owned()));
    }
    query.load(conn)
}

/// Inserts or replaces a forecast (one per service, period and metric).
///
/// # Errors
/// A query failing.
pub fn save_forecast(conn: &mut AnyConnection, row: &ForecastRow) -> QueryResult<ForecastRow> {
    let existing: Option<String> = sl_forecasts::table
        .filter(sl_forecasts::service.eq(&row.service))
        .filter(sl_forecasts::period.eq(&row.period))
        .filter(sl_forecasts::metric.eq(&row.metric))
        .select(sl_forecasts::id)
        .first(conn)
        .optional()?;
    let row = ForecastRow {
        id: existing.unwrap_or_else(|| row.id.clone()),
        ..row.clone()
    };
    if diesel::update(sl_forecasts::table.find(&row.id))
        .set(&row)
        .execute(conn)?
        == 0
    {
        diesel::insert_into(sl_forecasts::table)
            .values(&row)
            .execute(conn)?;
    }
    Ok(row)
}

/// Forecasts of a service.
///
/// # Errors
/// A query failing.
pub fn forecasts(conn: &mut AnyConnection, service: &str) -> QueryResult<Vec<ForecastRow>> {
    sl_forecasts::table
        .filter(sl_forecasts::service.eq(service))
        .order((sl_forecasts::period, sl_forecasts::metric))
        .select(ForecastRow::as_select())
        .load(conn)
}

/// Sets a budget.
///
/// # Errors
/// A query failing.
pub fn set_budget(conn: &mut AnyConnection, row: &BudgetRow) -> QueryResult<()> {
    let changed = diesel::update(sl_budgets::table.find((&row.service, &row.period)))
        .set(row)
        .execute(conn)?;
    if changed == 0 {
        diesel::insert_into(sl_budgets::table)
            .values(row)
            .execute(conn)?;
    }
    Ok(())
}

/// A budget.
///
/// # Errors
/// A query failing.
pub fn budget(
    conn: &mut AnyConnection,
    service: &str,
    period: &str,
) -> QueryResult<Option<BudgetRow>> {
    sl_budgets::table
        .find((service, period))
        .select(BudgetRow::as_select())
        .first(conn)
        .optional()
}

/// Records a cost.
///
/// # Errors
/// A query failing.
pub fn add_cost(conn: &mut AnyConnection, row: &CostRow) -> QueryResult<()> {
    diesel::insert_into(sl_costs::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// The costs of a service in a period.
///
/// # Errors
/// A query failing.
pub fn costs(conn: &mut AnyConnection, service: &str, period: &str) -> QueryResult<Vec<CostRow>> {
    sl_costs::table
        .filter(sl_costs::service.eq(service))
        .filter(sl_costs::period.eq(period))
        .order((sl_costs::incurred_on, sl_costs::id))
        .select(CostRow::as_select())
        .load(conn)
}

/// Records or updates a change.
///
/// # Errors
/// A query failing.
pub fn save_change(conn: &mut AnyConnection, row: &ChangeRow) -> QueryResult<()> {
    if diesel::update(sl_changes::table.find(&row.id))
        .set(row)
        .execute(conn)?
        == 0
    {
        diesel::insert_into(sl_changes::table)
            .values(row)
            .execute(conn)?;
    }
    Ok(())
}

/// A change's new state.
///
/// # Errors
/// A query failing.
pub fn change_state(
    conn: &mut AnyConnection,
    id: &str,
    state: &str,
    at: NaiveDateTime,
) -> QueryResult<()> {
    diesel::update(sl_changes::table.find(id))
        .set((sl_changes::state.eq(state), sl_changes::updated_at.eq(at)))
        .execute(conn)?;
    Ok(())
}

/// Changes submitted in `[from, to)`.
///
/// # Errors
/// A query failing.
pub fn changes(
    conn: &mut AnyConnection,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> QueryResult<Vec<ChangeRow>> {
    sl_changes::table
        .filter(sl_changes::submitted_at.ge(from))
        .filter(sl_changes::submitted_at.lt(to))
        .order(sl_changes::submitted_at)
        .select(ChangeRow::as_select())
        .load(conn)
}

/// Records a satisfaction score (once per response).
///
/// # Errors
/// A query failing.
pub fn add_satisfaction(conn: &mut AnyConnection, row: &SatisfactionRow) -> QueryResult<()> {
    let exists = sl_satisfaction::table
        .find(&row.id)
        .select(sl_satisfaction::id)
        .first::<String>(conn)
        .optional()?
        .is_some();
    if !exists {
        diesel::insert_into(sl_satisfaction::table)
            .values(row)
            .execute(conn)?;
    }
    Ok(())
}

/// Scores of a service in `[from, to)`.
///
/// # Errors
/// A query failing.
pub fn satisfaction(
    conn: &mut AnyConnection,
    service: &str,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> QueryResult<Vec<i32>> {
    sl_satisfaction::table
        .filter(sl_satisfaction::service.eq(service))
        .filter(sl_satisfaction::at.ge(from))
        .filter(sl_satisfaction::at.lt(to))
        .select(sl_satisfaction::score)
        .load(conn)
}
