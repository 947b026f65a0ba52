//! The rows of the management system's records, and their queries.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use meridian_chassis::db::AnyConnection;
use serde::Serialize;

use super::schema::*;

/// `find` (by id, or by its human key too), `save` (insert or update) for a table and its row.
macro_rules! records {
    ($find:ident, $save:ident, $table:ident, $row:ident) => {
        /// The row of `id`.
        ///
        /// # Errors
        /// A query failing.
        pub fn $find(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<$row>> {
            $table::table
                .filter($table::id.eq(id.to_owned()))
                .select($row::as_select())
                .first(conn)
                .optional()
        }
        records!(@save $save, $table, $row);
    };
    ($find:ident, $save:ident, $table:ident, $row:ident, $key:ident) => {
        /// The row of `key`: its id or its human key.
        ///
        /// # Errors
        /// A query failing.
        pub fn $find(conn: &mut AnyConnection, key: &str) -> QueryResult<Option<$row>> {
            $table::table
                .filter($table::id.eq(key.to_owned()).or($table::$key.eq(key.to_owned())))
                .select($row::as_select())
                .first(conn)
                .optional()
        }
        records!(@save $save, $table, $row);
    };
    (@save $save:ident, $table:ident, $row:ident) => {
        /// Inserts (`new`) or updates the row.
        ///
        /// # Errors
        /// A query failing.
        pub fn $save(conn: &mut AnyConnection, row: &$row, new: bool) -> QueryResult<()> {
            if new {
                diesel::insert_into($table::table).values(row).execute(conn)?;
            } else {
                diesel::update($table::table.find(&row.id)).set(row).execute(conn)?;
            }
            Ok(())
        }
    };
}

/// A context item: an internal or external issue, or an interested party with its requirements.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset, Serialize)]
#[diesel(table_name = gov_context_items, treat_none_as_null = true)]
pub struct ContextRow {
    /// `id`.
    pub id: String,
    /// `kind`.
    pub kind: String,
    /// `title`.
    pub title: String,
    /// `description`.
    pub description: String,
    /// `requirements`.
    pub requirements: String,
    /// `owner`.
    pub owner: String,
    /// `created_at`.
    pub created_at: NaiveDateTime,
    /// `updated_at`.
    pub updated_at: NaiveDateTime,
}

/// A version of the SMS scope.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset, Serialize)]
#[diesel(table_name = gov_scopes, treat_none_as_null = true)]
pub struct ScopeRow {
    /// `version`.
    pub version: i32,
    /// `statement`.
    pub statement: String,
    /// `services`.
    pub services: String,
    /// `locations`.
    pub locations: String,
    /// `parties`.
    pub parties: String,
    /// `exclusions`.
    pub exclusions: String,
    /// `created_by`.
    pub created_by: String,
    /// `created_at`.
    pub created_at: NaiveDateTime,
}

/// A role with its responsibilities, authorities and holders.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset, Serialize)]
#[diesel(table_name = gov_roles, treat_none_as_null = true)]
pub struct RoleRow {
    /// `id`.
    pub id: String,
    /// `name`.
    pub name: String,
    /// `responsibilities`.
    pub responsibilities: String,
    /// `authorities`.
    pub authorities: String,
    /// `holders`.
    pub holders: String,
    /// `updated_by`.
    pub updated_by: String,
    /// `updated_at`.
    pub updated_at: NaiveDateTime,
}

/// A competence record with its evidence.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset, Serialize)]
#[diesel(table_name = gov_competences, treat_none_as_null = true)]
pub struct CompetenceRow {
    /// `id`.
    pub id: String,
    /// `person`.
    pub person: String,
    /// `role_id`.
    pub role_id: Option<String>,
    /// `competence`.
    pub competence: String,
    /// `evidence`.
    pub evidence: String,
    /// `acquired_on`.
    pub acquired_on: NaiveDate,
    /// `expires_on`.
    pub expires_on: Option<NaiveDate>,
    /// `recorded_by`.
    pub recorded_by: String,
    /// `recorded_at`.
    pub recorded_at: NaiveDateTime,
}

/// A risk or opportunity.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset, Serialize)]
#[diesel(table_name = gov_risks, treat_none_as_null = true)]
pub struct RiskRow {
    /// `id`.
    pub id: String,
    /// `number`.
    pub number: String,
    /// `kind`.
    pub kind: String,
    /// `title`.
    pub title: String,
    /// `description`.
    pub description: String,
    /// `category`.
    pub category: String,
    /// `owner`.
    pub owner: String,
    /// `likelihood`.
    pub likelihood: i32,
    /// `impact`.
    pub impact: i32,
    /// `score`.
    pub score: i32,
    /// `level`.
    pub level: String,
    /// `treatment`.
    pub treatment: String,
    /// `treatment_plan`.
    pub treatment_plan: String,
    /// `treatment_owner`.
    pub treatment_owner: String,
    /// `treatment_due`.
    pub treatment_due: Option<NaiveDate>,
    /// `state`.
    pub state: String,
    /// `review_interval_days`.
    pub review_interval_days: i32,
    /// `last_reviewed_at`.
    pub last_reviewed_at: NaiveDateTime,
    /// `created_by`.
    pub created_by: String,
    /// `created_at`.
    pub created_at: NaiveDateTime,
    /// `updated_at`.
    pub updated_at: NaiveDateTime,
}

/// A service management objective.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset, Serialize)]
#[diesel(table_name = gov_objectives, treat_none_as_null = true)]
pub struct ObjectiveRow {
    /// `id`.
    pub id: String,
    /// `title`.
    pub title: String,
    /// `measure`.
    pub measure: String,
    /// `owner`.
    pub owner: String,
    /// `baseline`.
    pub baseline: f64,
    /// `target`.
    pub target: f64,
    /// `unit`.
    pub unit: String,
    /// `direction`.
    pub direction: String,
    /// `current_value`.
    pub current_value: Option<f64>,
    /// `due_on`.
    pub due_on: NaiveDate,
    /// `state`.
    pub state: String,
    /// `created_by`.
    pub created_by: String,
    /// `created_at`.
    pub created_at: NaiveDateTime,
    /// `updated_at`.
    pub updated_at: NaiveDateTime,
}

/// A measurement of an objective.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset, Serialize)]
#[diesel(table_name = gov_objective_progress, treat_none_as_null = true)]
pub struct ProgressRow {
    /// `id`.
    pub id: String,
    /// `objective_id`.
    pub objective_id: String,
    /// `value`.
    pub value: f64,
    /// `note`.
    pub note: String,
    /// `recorded_by`.
    pub recorded_by: String,
    /// `at`.
    pub at: NaiveDateTime,
}

/// A controlled document.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset, Serialize)]
#[diesel(table_name = gov_documents, treat_none_as_null = true)]
pub struct DocumentRow {
    /// `id`.
    pub id: String,
    /// `reference`.
    pub reference: String,
    /// `title`.
    pub title: String,
    /// `kind`.
    pub kind: String,
    /// `clauses`.
    pub clauses: String,
    /// `owner`.
    pub owner: String,
    /// `access_roles`.
    pub access_roles: String,
    /// `retention_years`.
    pub retention_years: i32,
    /// `review_interval_days`.
    pub review_interval_days: i32,
    /// `status`.
    pub status: String,
    /// `current_version`.
    pub current_version: Option<i32>,
    /// `approved_at`.
    pub approved_at: Option<NaiveDateTime>,
    /// `created_by`.
    pub created_by: String,
    /// `created_at`.
    pub created_at: NaiveDateTime,
    /// `updated_at`.
    pub updated_at: NaiveDateTime,
}

/// A version of a document.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset, Serialize)]
#[diesel(table_name = gov_document_versions, treat_none_as_null = true)]
pub struct VersionRow {
    /// `id`.
    pub id: String,
    /// `document_id`.
    pub document_id: String,
    /// `version`.
    pub version: i32,
    /// `status`.
    pub status: String,
    /// `body`.
    pub body: String,
    /// `change_summary`.
    pub change_summary: String,
    /// `author`.
    pub author: String,
    /// `reviewers`.
    pub reviewers: String,
    /// `approver`.
    pub approver: String,
    /// `submitted_at`.
    pub submitted_at: Option<NaiveDateTime>,
    /// `approved_at`.
    pub approved_at: Option<NaiveDateTime>,
    /// `instance_outcome`.
    pub instance_outcome: String,
    /// `created_at`.
    pub created_at: NaiveDateTime,
    /// `updated_at`.
    pub updated_at: NaiveDateTime,
}

/// An internal audit.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset, Serialize)]
#[diesel(table_name = gov_audits, treat_none_as_null = true)]
pub struct AuditRow {
    /// `id`.
    pub id: String,
    /// `number`.
    pub number: String,
    /// `title`.
    pub title: String,
    /// `criteria`.
    pub criteria: String,
    /// `clauses`.
    pub clauses: String,
    /// `area`.
    pub area: String,
    /// `area_members`.
    pub area_members: String,
    /// `lead_auditor`.
    pub lead_auditor: String,
    /// `auditors`.
    pub auditors: String,
    /// `planned_for`.
    pub planned_for: NaiveDate,
    /// `state`.
    pub state: String,
    /// `checklist`.
    pub checklist: String,
    /// `report`.
    pub report: String,
    /// `started_at`.
    pub started_at: Option<NaiveDateTime>,
    /// `completed_at`.
    pub completed_at: Option<NaiveDateTime>,
    /// `created_by`.
    pub created_by: String,
    /// `created_at`.
    pub created_at: NaiveDateTime,
    /// `updated_at`.
    pub updated_at: NaiveDateTime,
}

/// An audit finding.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset, Serialize)]
#[diesel(table_name = gov_findings, treat_none_as_null = true)]
pub struct FindingRow {
    /// `id`.
    pub id: String,
    /// `audit_id`.
    pub audit_id: String,
    /// `clause`.
    pub clause: String,
    /// `kind`.
    pub kind: String,
    /// `description`.
    pub description: String,
    /// `evidence`.
    pub evidence: String,
    /// `nonconformity_id`.
    pub nonconformity_id: Option<String>,
    /// `recorded_by`.
    pub recorded_by: String,
    /// `recorded_at`.
    pub recorded_at: NaiveDateTime,
}

/// A nonconformity.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset, Serialize)]
#[diesel(table_name = gov_nonconformities, treat_none_as_null = true)]
pub struct NonconformityRow {
    /// `id`.
    pub id: String,
    /// `number`.
    pub number: String,
    /// `source`.
    pub source: String,
    /// `source_ref`.
    pub source_ref: String,
    /// `clause`.
    pub clause: String,
    /// `description`.
    pub description: String,
    /// `severity`.
    pub severity: String,
    /// `state`.
    pub state: String,
    /// `reaction`.
    pub reaction: String,
    /// `root_cause`.
    pub root_cause: String,
    /// `corrective_action`.
    pub corrective_action: String,
    /// `action_owner`.
    pub action_owner: String,
    /// `action_due`.
    pub action_due: Option<NaiveDate>,
    /// `effective`.
    pub effective: Option<bool>,
    /// `effectiveness_notes`.
    pub effectiveness_notes: String,
    /// `raised_by`.
    pub raised_by: String,
    /// `created_at`.
    pub created_at: NaiveDateTime,
    /// `updated_at`.
    pub updated_at: NaiveDateTime,
    /// `closed_at`.
    pub closed_at: Option<NaiveDateTime>,
}

/// An improvement opportunity.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset, Serialize)]
#[diesel(table_name = gov_improvements, treat_none_as_null = true)]
pub struct ImprovementRow {
    /// `id`.
    pub id: String,
    /// `number`.
    pub number: String,
    /// `title`.
    pub title: String,
    /// `description`.
    pub description: String,
    /// `source`.
    pub source: String,
    /// `benefit`.
    pub benefit: Option<i32>,
    /// `effort`.
    pub effort: Option<i32>,
    /// `priority`.
    pub priority: Option<i32>,
    /// `state`.
    pub state: String,
    /// `objective_id`.
    pub objective_id: Option<String>,
    /// `plan`.
    pub plan: String,
    /// `owner`.
    pub owner: String,
    /// `due_on`.
    pub due_on: Option<NaiveDate>,
    /// `expected`.
    pub expected: String,
    /// `result`.
    pub result: String,
    /// `decided_by`.
    pub decided_by: String,
    /// `created_by`.
    pub created_by: String,
    /// `created_at`.
    pub created_at: NaiveDateTime,
    /// `updated_at`.
    pub updated_at: NaiveDateTime,
}

/// A management review.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset, Serialize)]
#[diesel(table_name = gov_reviews, treat_none_as_null = true)]
pub struct ReviewRow {
    /// `id`.
    pub id: String,
    /// `number`.
    pub number: String,
    /// `planned_for`.
    pub planned_for: NaiveDate,
    /// `period_from`.
    pub period_from: NaiveDate,
    /// `period_to`.
    pub period_to: NaiveDate,
    /// `state`.
    pub state: String,
    /// `inputs`.
    pub inputs: String,
    /// `attendees`.
    pub attendees: String,
    /// `minutes`.
    pub minutes: String,
    /// `decisions`.
    pub decisions: String,
    /// `held_at`.
    pub held_at: Option<NaiveDateTime>,
    /// `created_by`.
    pub created_by: String,
    /// `created_at`.
    pub created_at: NaiveDateTime,
    /// `updated_at`.
    pub updated_at: NaiveDateTime,
}

/// An action of a management review.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset, Serialize)]
#[diesel(table_name = gov_actions, treat_none_as_null = true)]
pub struct ActionRow {
    /// `id`.
    pub id: String,
    /// `review_id`.
    pub review_id: String,
    /// `description`.
    pub description: String,
    /// `owner`.
    pub owner: String,
    /// `due_on`.
    pub due_on: Option<NaiveDate>,
    /// `state`.
    pub state: String,
    /// `outcome`.
    pub outcome: String,
    /// `closed_by`.
    pub closed_by: Option<String>,
    /// `closed_at`.
    pub closed_at: Option<NaiveDateTime>,
    /// `created_at`.
    pub created_at: NaiveDateTime,
}

records!(find_context, save_context, gov_context_items, ContextRow);
records!(find_role, save_role, gov_roles, RoleRow);
records!(find_risk, save_risk, gov_risks, RiskRow, number);
records!(find_objective, save_objective, gov_objectives, ObjectiveRow);
records!(
    find_document,
    save_document,
    gov_documents,
    DocumentRow,
    reference
);
records!(
    find_version_row,
    save_version,
    gov_document_versions,
    VersionRow
);
records!(find_audit, save_audit, gov_audits, AuditRow, number);
records!(
    find_nonconformity,
    save_nonconformity,
    gov_nonconformities,
    NonconformityRow,
    number
);
records!(
    find_improvement,
    save_improvement,
    gov_improvements,
    ImprovementRow,
    number
);
records!(find_review, save_review, gov_reviews, ReviewRow, number);
records!(find_action, save_action, gov_actions, ActionRow);

/// Context items, of one kind when given.
///
/// # Errors
/// A query failing.
pub fn context(conn: &mut AnyConnection, kind: Option<String>) -> QueryResult<Vec<ContextRow>> {
    let mut query = gov_context_items::table
        .order((gov_context_items::kind, gov_context_items::title))
        .select(ContextRow::as_select())
        .into_boxed();
    if let Some(kind) = kind {
        query = query.filter(gov_context_items::kind.eq(kind));
    }
    query.load(conn)
}

/// Every scope version, newest first.
///
/// # Errors
/// A query failing.
pub fn scopes(conn: &mut AnyConnection) -> QueryResult<Vec<ScopeRow>> {
    gov_scopes::table
        .order(gov_scopes::version.desc())
        .select(ScopeRow::as_select())
        .load(conn)
}

/// Records a scope version.
///
/// # Errors
/// A query failing.
pub fn add_scope(conn: &mut AnyConnection, row: &ScopeRow) -> QueryResult<()> {
    diesel::insert_into(gov_scopes::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// Every role.
///
/// # Errors
/// A query failing.
pub fn roles(conn: &mut AnyConnection) -> QueryResult<Vec<RoleRow>> {
    gov_roles::table
        .order(gov_roles::id)
        .select(RoleRow::as_select())
        .load(conn)
}

/// Competence records, of one person when given.
///
/// # Errors
/// A query failing.
pub fn competences(
    conn: &mut AnyConnection,
    person: Option<String>,
) -> QueryResult<Vec<CompetenceRow>> {
    let mut query = gov_competences::table
        .order((gov_competences::person, gov_competences::acquired_on))
        .select(CompetenceRow::as_select())
        .into_boxed();
    if let Some(person) = person {
        query = query.filter(gov_competences::person.eq(person));
    }
    query.load(conn)
}

/// Records a competence.
///
/// # Errors
/// A query failing.
pub fn add_competence(conn: &mut AnyConnection, row: &CompetenceRow) -> QueryResult<()> {
    diesel::insert_into(gov_competences::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// Risks, of one state or level when given, highest score first.
///
/// # Errors
/// A query failing.
pub fn risks(
    conn: &mut AnyConnection,
    state: Option<String>,
    level: Option<String>,
) -> QueryResult<Vec<RiskRow>> {
    let mut query = gov_risks::table
        .order((gov_risks::score.desc(), gov_risks::number))
        .select(RiskRow::as_select())
        .into_boxed();
    if let Some(state) = state {
        query = query.filter(gov_risks::state.eq(state));
    }
    if let Some(level) = level {
        query = query.filter(gov_risks::level.eq(level));
    }
    query.load(conn)
}

/// Every objective, soonest due first.
///
/// # Errors
/// A query failing.
pub fn objectives(conn: &mut AnyConnection) -> QueryResult<Vec<ObjectiveRow>> {
    gov_objectives::table
        .order(gov_objectives::due_on)
        .select(ObjectiveRow::as_select())
        .load(conn)
}

/// Records a measurement of an objective.
///
/// # Errors
/// A query failing.
pub fn add_progress(conn: &mut AnyConnection, row: &ProgressRow) -> QueryResult<()> {
    diesel::insert_into(gov_objective_progress::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// An objective's measurements, oldest first.
///
/// # Errors
/// A query failing.
pub fn progress(conn: &mut AnyConnection, objective: &str) -> QueryResult<Vec<ProgressRow>> {
    gov_objective_progress::table
        .filter(gov_objective_progress::objective_id.eq(objective))
        .order(gov_objective_progress::at)
        .select(ProgressRow::as_select())
        .load(conn)
}

/// Documents, of one kind or status when given, by reference.
///
/// # Errors
/// A query failing.
pub fn documents(
    conn: &mut AnyConnection,
    kind: Option<String>,
    status: Option<String>,
) -> QueryResult<Vec<DocumentRow>> {
    let mut query = gov_documents::table
        .order(gov_documents::reference)
        .select(DocumentRow::as_select())
        .into_boxed();
    if let Some(kind) = kind {
        query = query.filter(gov_documents::kind.eq(kind));
    }
    if let Some(status) = status {
        query = query.filter(gov_documents::status.eq(status));
    }
    query.load(conn)
}

/// A document's versions, newest first.
///
/// # Errors
/// A query failing.
pub fn versions(conn: &mut AnyConnection, document: &str) -> QueryResult<Vec<VersionRow>> {
    gov_document_versions::table
        .filter(gov_document_versions::document_id.eq(document))
        .order(gov_document_versions::version.desc())
        .select(VersionRow::as_select())
        .load(conn)
}

/// Audits, of one state when given, by planned date.
///
/// # Errors
/// A query failing.
pub fn audits(conn: &mut AnyConnection, state: Option<String>) -> QueryResult<Vec<AuditRow>> {
    let mut query = gov_audits::table
        .order((gov_audits::planned_for, gov_audits::number))
        .select(AuditRow::as_select())
        .into_boxed();
    if let Some(state) = state {
        query = query.filter(gov_audits::state.eq(state));
    }
    query.load(conn)
}

/// Records a finding.
///
/// # Errors
/// A query failing.
pub fn add_finding(conn: &mut AnyConnection, row: &FindingRow) -> QueryResult<()> {
    diesel::insert_into(gov_findings::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// An audit's findings, oldest first.
///
/// # Errors
/// A query failing.
pub fn findings(conn: &mut AnyConnection, audit: &str) -> QueryResult<Vec<FindingRow>> {
    gov_findings::table
        .filter(gov_findings::audit_id.eq(audit))
        .order(gov_findings::recorded_at)
        .select(FindingRow::as_select())
        .load(conn)
}

/// Nonconformities, of one state or source when given, oldest first.
///
/// # Errors
/// A query failing.
pub fn nonconformities(
    conn: &mut AnyConnection,
    state: Option<String>,
    source: Option<String>,
) -> QueryResult<Vec<NonconformityRow>> {
    let mut query = gov_nonconformities::table
        .order(gov_nonconformities::number)
        .select(NonconformityRow::as_select())
        .into_boxed();
    if let Some(state) = state {
        query = query.filter(gov_nonconformities::state.eq(state));
    }
    if let Some(source) = source {
        query = query.filter(gov_nonconformities::source.eq(source));
    }
    query.load(conn)
}

/// Whether a nonconformity was recorded for `source_ref` already.
///
/// # Errors
/// A query failing.
pub fn nonconformity_for(conn: &mut AnyConnection, source_ref: &str) -> QueryResult<bool> {
    let n: i64 = gov_nonconformities::table
        .filter(gov_nonconformities::source_ref.eq(source_ref))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

/// Improvements, of one state when given, highest priority first.
///
/// # Errors
/// A query failing.
pub fn improvements(
    conn: &mut AnyConnection,
    state: Option<String>,
) -> QueryResult<Vec<ImprovementRow>> {
    let mut query = gov_improvements::table
        .order((gov_improvements::priority.desc(), gov_improvements::number))
        .select(ImprovementRow::as_select())
        .into_boxed();
    if let Some(state) = state {
        query = query.filter(gov_improvements::state.eq(state));
    }
    query.load(conn)
}

/// Management reviews, newest first.
///
/// # Errors
/// A query failing.
pub fn reviews(conn: &mut AnyConnection) -> QueryResult<Vec<ReviewRow>> {
    gov_reviews::table
        .order(gov_reviews::planned_for.desc())
        .select(ReviewRow::as_select())
        .load(conn)
}

/// Actions, of one review or state when given, oldest first.
///
/// # Errors
/// A query failing.
pub fn actions(
    conn: &mut AnyConnection,
    review: Option<String>,
    state: Option<String>,
) -> QueryResult<Vec<ActionRow>> {
    let mut query = gov_actions::table
        .order(gov_actions::created_at)
        .select(ActionRow::as_select())
        .into_boxed();
    if let Some(review) = review {
        query = query.filter(gov_actions::review_id.eq(review));
    }
    if let Some(state) = state {
        query = query.filter(gov_actions::state.eq(state));
    }
    query.load(conn)
}
