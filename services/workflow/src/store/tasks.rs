//! Task queries: the inbox of a person, and one task.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use meridian_chassis::db::AnyConnection;
use uuid::Uuid;

use super::schema::{wf_inbox, wf_task_candidates, wf_tasks};

/// A task row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = wf_tasks)]
pub struct TaskRow {
    /// Id.
    pub id: String,
    /// Instance.
    pub instance_id: String,
    /// The user task node.
    pub node: String,
    /// Its name.
    pub name: String,
    /// `open`, `completed` or `withdrawn`.
    pub state: String,
    /// Assignee.
    pub assignee: Option<String>,
    /// JSON array of excluded users.
    pub forbidden: String,
    /// Created.
    pub created_at: NaiveDateTime,
    /// Due.
    pub due_at: Option<NaiveDateTime>,
    /// Completed or withdrawn.
    pub ended_at: Option<NaiveDateTime>,
    /// By whom.
    pub completed_by: Option<String>,
    /// The outcome.
    pub outcome: Option<String>,
    /// The comment.
    pub comment: Option<String>,
    /// The form's fields, JSON.
    pub fields: Option<String>,
}

/// Which tasks to list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Assigned to this user.
    pub assignee: Option<String>,
    /// Unassigned and claimable by this user with these roles.
    pub candidate: Option<(String, Vec<String>)>,
    /// In this state.
    pub state: Option<String>,
    /// Of this instance.
    pub instance: Option<String>,
    /// After this id (cursor).
    pub after: Option<String>,
    /// At most.
    pub limit: i64,
}

/// Tasks matching `filter`, oldest first (ids are time-ordered). A candidate never sees the
/// tasks segregation of duties keeps from them (they could not complete them).
///
/// # Errors
/// A query failing.
pub fn list(conn: &mut AnyConnection, filter: &Filter) -> QueryResult<Vec<TaskRow>> {
    let Some((user, _)) = &filter.candidate else {
        return list_page(conn, filter);
    };
    let mut out = Vec::new();
    let mut page = filter.clone();
    loop {
        let rows = list_page(conn, &page)?;
        let full = i64::try_from(rows.len()).unwrap_or(i64::MAX) >= page.limit;
        page.after = rows.last().map(|r| r.id.clone());
        out.extend(rows.into_iter().filter(|row| {
            !serde_json::from_str::<Vec<String>>(&row.forbidden)
                .unwrap_or_default()
                .contains(user)
        }));
        if !full || i64::try_from(out.len()).unwrap_or(i64::MAX) >= filter.limit {
            out.truncate(usize::try_from(filter.limit).unwrap_or(usize::MAX));
            return Ok(out);
        }
    }
}

/// One page of [`list`], as the database holds it.
fn list_page(conn: &mut AnyConnection, filter: &Filter) -> QueryResult<Vec<TaskRow>> {
    if let Some((user, roles)) = &filter.candidate
        && filter.state.as_deref() == Some("open")
        && filter.assignee.is_none()
        && filter.instance.is_none()
    {
        return inbox_page(conn, user, roles, filter.after.as_deref(), filter.limit);
    }
    let mut query = wf_tasks::table
        .select(TaskRow::as_select())
        .order(wf_tasks::id.asc())
        .limit(filter.limit)
        .into_boxed::<<AnyConnection as diesel::Connection>::Backend>();
    if let Some(assignee) = &filter.assignee {
        query = query.filter(wf_tasks::assignee.eq(assignee.clone()));
    }
    if let Some((user, roles)) = &filter.candidate {
        // Tasks of other states (or of one instance) a candidate could have claimed: each task
        // is checked against its candidates. The open inbox does not come this way
        // ([`inbox_page`]): planned as a hashed subplan over every candidate row of a role,
        // this grew with every task ever created and slowed the long load tier down.
        let mut candidate = candidate_is("user", user.clone());
        for role in roles {
            candidate = Box::new(candidate.or(candidate_is("role", role.clone())));
        }
        query = query.filter(wf_tasks::assignee.is_null()).filter(candidate);
    }
    if let Some(state) = &filter.state {
        query = query.filter(wf_tasks::state.eq(state.clone()));
    }
    if let Some(instance) = &filter.instance {
        query = query.filter(wf_tasks::instance_id.eq(instance.clone()));
    }
    if let Some(after) = &filter.after {
        query = query.filter(wf_tasks::id.gt(after.clone()));
    }
    query.load(conn)
}

/// One page of what `user` (with `roles`) may claim, read from the inbox: it costs what is open
/// for them, however many tasks were ever created (no scan of closed tasks or of every candidate
/// row of a role).
fn inbox_page(
    conn: &mut AnyConnection,
    user: &str,
    roles: &[String],
    after: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<TaskRow>> {
    let mut ids = wf_inbox::table
        .select(wf_inbox::task_id)
        .distinct()
        .filter(
            wf_inbox::kind
                .eq("user")
                .and(wf_inbox::name.eq(user))
                .or(wf_inbox::kind.eq("role").and(wf_inbox::name.eq_any(roles))),
        )
        .order(wf_inbox::task_id.asc())
        .limit(limit)
        .into_boxed::<<AnyConnection as diesel::Connection>::Backend>();
    if let Some(after) = after {
        ids = ids.filter(wf_inbox::task_id.gt(after.to_owned()));
    }
    let ids: Vec<String> = ids.load(conn)?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    wf_tasks::table
        .select(TaskRow::as_select())
        .filter(wf_tasks::id.eq_any(&ids))
        .order(wf_tasks::id.asc())
        .load(conn)
}

type Condition = Box<
    dyn BoxableExpression<
            wf_tasks::table,
            <AnyConnection as diesel::Connection>::Backend,
            SqlType = diesel::sql_types::Bool,
        >,
>;

/// The task (of the outer query) has `name` of `kind` among its candidates.
fn candidate_is(kind: &'static str, name: String) -> Condition {
    use diesel::sql_types::Text;
    Box::new(
        diesel::dsl::sql::<diesel::sql_types::Bool>(
            "EXISTS (SELECT 1 FROM wf_task_candidates c WHERE c.task_id = wf_tasks.id AND c.kind = ",
        )
        .bind::<Text, _>(kind)
        .sql(" AND c.name = ")
        .bind::<Text, _>(name)
        .sql(")"),
    )
}

/// One task.
///
/// # Errors
/// A query failing.
pub fn find(conn: &mut AnyConnection, id: Uuid) -> QueryResult<Option<TaskRow>> {
    wf_tasks::table
        .find(id.to_string())
        .select(TaskRow::as_select())
        .first(conn)
        .optional()
}

/// Who may claim a task: users and roles, each sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Candidates {
    /// Users.
    pub users: Vec<String>,
    /// Roles.
    pub roles: Vec<String>,
}

/// A task's candidates.
///
/// # Errors
/// A query failing.
pub fn candidates(conn: &mut AnyConnection, id: &str) -> QueryResult<Candidates> {
    let mut all = candidates_of(conn, &[id.to_owned()])?;
    Ok(all.remove(id).unwrap_or_default())
}

/// The candidates of each of `ids`, in one query (a page of tasks is not one query per task);
/// a task without candidates is absent.
///
/// # Errors
/// A query failing.
pub fn candidates_of(
    conn: &mut AnyConnection,
    ids: &[String],
) -> QueryResult<HashMap<String, Candidates>> {
    let rows: Vec<(String, String, String)> = wf_task_candidates::table
        .filter(wf_task_candidates::task_id.eq_any(ids))
        .order((
            wf_task_candidates::task_id.asc(),
            wf_task_candidates::kind.asc(),
            wf_task_candidates::name.asc(),
        ))
        .select((
            wf_task_candidates::task_id,
            wf_task_candidates::kind,
            wf_task_candidates::name,
        ))
        .load(conn)?;
    let mut out: HashMap<String, Candidates> = HashMap::new();
    for (task, kind, name) in rows {
        let entry = out.entry(task).or_default();
        if kind == "user" {
            entry.users.push(name);
        } else {
            entry.roles.push(name);
        }
    }
    Ok(out)
}
