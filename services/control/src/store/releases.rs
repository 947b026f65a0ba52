//! Releases, their deployments, and the baselines taken at each deployment.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use meridian_chassis::audit;
use meridian_chassis::db::AnyConnection;
use serde::Serialize;

use super::cis::{CiRow, Context};
use super::schema::{baselines, cis, deployments, releases};

/// A release row.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize)]
#[diesel(table_name = releases)]
pub struct ReleaseRow {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// The version it delivers.
    pub version: String,
    /// JSON array of change ids.
    pub changes: String,
    /// What must hold for it to be accepted.
    pub acceptance_criteria: String,
    /// JSON: the latest test results.
    pub test_results: Option<String>,
    /// Who recorded it.
    pub created_by: String,
    /// When.
    pub created_at: NaiveDateTime,
}

/// A baseline row.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize)]
#[diesel(table_name = baselines)]
pub struct BaselineRow {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// JSON array of the CIs as they were.
    pub snapshot: String,
    /// Who took it.
    pub taken_by: String,
    /// When.
    pub taken_at: NaiveDateTime,
}

/// A deployment row.
#[derive(
    Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize, utoipa::ToSchema,
)]
#[diesel(table_name = deployments)]
pub struct DeploymentRow {
    /// Id.
    pub id: String,
    /// The release.
    pub release_id: String,
    /// Where.
    pub environment: String,
    /// `succeeded` or `failed`.
    pub outcome: String,
    /// What happened.
    pub notes: String,
    /// The baseline of the affected CIs taken with it.
    pub baseline_id: String,
    /// Who.
    pub deployed_by: String,
    /// When.
    #[serde(serialize_with = "meridian_chassis::fields::utc")]
    pub deployed_at: NaiveDateTime,
}

/// Stores a release and its audit row.
///
/// # Errors
/// A query failing.
pub fn insert(conn: &mut AnyConnection, row: &ReleaseRow, ctx: Context<'_>) -> QueryResult<()> {
    diesel::insert_into(releases::table)
        .values(row)
        .execute(conn)?;
    audit::record(
        conn,
        audit::Entry::<ReleaseRow, ReleaseRow> {
            actor: ctx.actor,
            action: "release.created",
            entity_type: "release",
            entity_id: &row.id,
            before: None,
            after: Some(row),
            at: ctx.now,
        },
    )
}

/// Loads a release.
///
/// # Errors
/// A query failing.
pub fn find(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<ReleaseRow>> {
    releases::table
        .find(id)
        .select(ReleaseRow::as_select())
        .first(conn)
        .optional()
}

/// Records test results on a release.
///
/// # Errors
/// A query failing.
pub fn set_test_results(
    conn: &mut AnyConnection,
    before: &ReleaseRow,
    results: &str,
    ctx: Context<'_>,
) -> QueryResult<ReleaseRow> {
    diesel::update(releases::table.find(&before.id))
        .set(releases::test_results.eq(results))
        .execute(conn)?;
    let after = ReleaseRow {
        test_results: Some(results.to_owned()),
        ..before.clone()
    };
    audit::record(
        conn,
        audit::Entry {
            actor: ctx.actor,
            action: "release.tested",
            entity_type: "release",
            entity_id: &before.id,
            before: Some(before),
            after: Some(&after),
            at: ctx.now,
        },
    )?;
    Ok(after)
}

/// Takes a baseline of these CIs as they are now.
///
/// # Errors
/// A query failing.
pub fn take_baseline(
    conn: &mut AnyConnection,
    id: String,
    name: String,
    ci_ids: &[String],
    ctx: Context<'_>,
) -> QueryResult<BaselineRow> {
    let snapshot: Vec<CiRow> = cis::table
        .filter(cis::id.eq_any(ci_ids))
        .order(cis::id.asc())
        .select(CiRow::as_select())
        .load(conn)?;
    let row = BaselineRow {
        id,
        name,
        snapshot: serde_json::to_string(&snapshot).unwrap_or_else(|_| "[]".to_owned()),
        taken_by: ctx.actor.to_owned(),
        taken_at: ctx.now.naive_utc(),
    };
    diesel::insert_into(baselines::table)
        .values(&row)
        .execute(conn)?;
    Ok(row)
}

/// Loads a baseline.
///
/// # Errors
/// A query failing.
pub fn baseline(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<BaselineRow>> {
    baselines::table
        .find(id)
        .select(BaselineRow::as_select())
        .first(conn)
        .optional()
}

/// Stores a deployment and its audit row (on the release's trail).
///
/// # Errors
/// A query failing.
pub fn deploy(conn: &mut AnyConnection, row: &DeploymentRow, ctx: Context<'_>) -> QueryResult<()> {
    diesel::insert_into(deployments::table)
        .values(row)
        .execute(conn)?;
    audit::record(
        conn,
        audit::Entry::<DeploymentRow, DeploymentRow> {
            actor: ctx.actor,
            action: "release.deployed",
            entity_type: "release",
            entity_id: &row.release_id,
            before: None,
            after: Some(row),
            at: ctx.now,
        },
    )
}

/// A release's deployments, oldest first.
///
/// # Errors
/// A query failing.
pub fn deployments_of(conn: &mut AnyConnection, release: &str) -> QueryResult<Vec<DeploymentRow>> {
    deployments::table
        .filter(deployments::release_id.eq(release))
        .order((deployments::deployed_at.asc(), deployments::id.asc()))
        .select(DeploymentRow::as_select())
        .load(conn)
}
