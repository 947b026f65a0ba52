//! One-click action links: one per task and approver, single use, expiring; their tokens are
//! kept only as hashes, one per message that carried the link.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use meridian_chassis::db::AnyConnection;

use super::naive;
use super::schema::{nt_link_tokens, nt_links};

/// A link.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = nt_links)]
pub struct LinkRow {
    /// Id (also the decision command's id).
    pub id: String,
    /// The task.
    pub task_id: String,
    /// The one person it works for.
    pub approver: String,
    /// The workflow definition.
    pub definition: String,
    /// The business object (e.g. the change's number).
    pub business_key: String,
    /// The task's name.
    pub title: String,
    /// JSON array: the outcomes offered.
    pub outcomes: String,
    /// JSON: what is being decided.
    pub summary: String,
    /// JSON: the task's form, filled in on the link's page.
    pub form: String,
    /// `active`, `used` or `void` (the task closed without it).
    pub state: String,
    /// Issued.
    pub created_at: chrono::NaiveDateTime,
    /// Stops working.
    pub expires_at: chrono::NaiveDateTime,
    /// Used.
    pub used_at: Option<chrono::NaiveDateTime>,
    /// The outcome chosen.
    pub outcome: Option<String>,
    /// The comment given.
    pub comment: Option<String>,
    /// `pending` (sent to the engine), `decided` or `refused`.
    pub result: Option<String>,
    /// The engine's problem code when refused.
    pub result_code: Option<String>,
    /// The engine's words.
    pub result_detail: Option<String>,
    /// When the engine answered.
    pub decided_at: Option<chrono::NaiveDateTime>,
    /// Why it became void.
    pub void_reason: Option<String>,
}

impl LinkRow {
    /// The outcomes offered.
    pub fn outcomes(&self) -> Vec<String> {
        super::strings(&self.outcomes)
    }

    /// The task's form, by field name.
    pub fn form(&self) -> std::collections::BTreeMap<String, meridian_chassis::fields::Field> {
        serde_json::from_str(&self.form).unwrap_or_default()
    }
}

/// The link of `task_id` for `approver`, made from `new` when there is none.
///
/// # Errors
/// A query failing.
pub fn ensure(conn: &mut AnyConnection, new: &LinkRow) -> QueryResult<LinkRow> {
    if let Some(existing) = nt_links::table
        .filter(nt_links::task_id.eq(&new.task_id))
        .filter(nt_links::approver.eq(&new.approver))
        .select(LinkRow::as_select())
        .first(conn)
        .optional()?
    {
        return Ok(existing);
    }
    diesel::insert_into(nt_links::table)
        .values(new)
        .execute(conn)?;
    Ok(new.clone())
}

/// One link.
///
/// # Errors
/// A query failing.
pub fn find(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<LinkRow>> {
    nt_links::table
        .find(id)
        .select(LinkRow::as_select())
        .first(conn)
        .optional()
}

/// The links of a task.
///
/// # Errors
/// A query failing.
pub fn of_task(conn: &mut AnyConnection, task_id: &str) -> QueryResult<Vec<LinkRow>> {
    nt_links::table
        .filter(nt_links::task_id.eq(task_id))
        .select(LinkRow::as_select())
        .order(nt_links::id)
        .load(conn)
}

/// The link a token opens, with the token's own expiry.
///
/// # Errors
/// A query failing.
pub fn by_token(
    conn: &mut AnyConnection,
    token_hash: &str,
) -> QueryResult<Option<(LinkRow, chrono::NaiveDateTime)>> {
    let found: Option<(String, chrono::NaiveDateTime)> = nt_link_tokens::table
        .find(token_hash)
        .select((nt_link_tokens::link_id, nt_link_tokens::expires_at))
        .first(conn)
        .optional()?;
    let Some((link_id, expires_at)) = found else {
        return Ok(None);
    };
    Ok(find(conn, &link_id)?.map(|link| (link, expires_at)))
}

/// Records a token (its hash) sent for `link`.
///
/// # Errors
/// A query failing.
pub fn add_token(
    conn: &mut AnyConnection,
    link: &LinkRow,
    token_hash: &str,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    diesel::insert_into(nt_link_tokens::table)
        .values((
            nt_link_tokens::token_hash.eq(token_hash),
            nt_link_tokens::link_id.eq(&link.id),
            nt_link_tokens::issued_at.eq(naive(now)),
            nt_link_tokens::expires_at.eq(link.expires_at),
        ))
        .execute(conn)?;
    Ok(())
}

/// Forgets a token whose message was never sent.
///
/// # Errors
/// A query failing.
pub fn remove_token(conn: &mut AnyConnection, token_hash: &str) -> QueryResult<()> {
    diesel::delete(nt_link_tokens::table.find(token_hash)).execute(conn)?;
    Ok(())
}

/// Uses the link, atomically: `true` for the one caller that moved it from active to used.
///
/// # Errors
/// A query failing.
pub fn consume(
    conn: &mut AnyConnection,
    id: &str,
    outcome: &str,
    comment: Option<&str>,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    let changed = diesel::update(
        nt_links::table
            .filter(nt_links::id.eq(id))
            .filter(nt_links::state.eq("active"))
            .filter(nt_links::expires_at.gt(naive(now))),
    )
    .set((
        nt_links::state.eq("used"),
        nt_links::used_at.eq(Some(naive(now))),
        nt_links::outcome.eq(Some(outcome)),
        nt_links::comment.eq(comment),
        nt_links::result.eq(Some("pending")),
    ))
    .execute(conn)?;
    Ok(changed == 1)
}

/// Voids the active links of a task that closed (decided by someone, withdrawn, cancelled).
///
/// # Errors
/// A query failing.
pub fn void_task(conn: &mut AnyConnection, task_id: &str, reason: &str) -> QueryResult<usize> {
    diesel::update(
        nt_links::table
            .filter(nt_links::task_id.eq(task_id))
            .filter(nt_links::state.eq("active")),
    )
    .set((
        nt_links::state.eq("void"),
        nt_links::void_reason.eq(Some(reason)),
    ))
    .execute(conn)
}

/// Voids the active links of a workflow instance that ended (the tasks left open were
/// withdrawn with it).
///
/// # Errors
/// A query failing.
pub fn void_instance(
    conn: &mut AnyConnection,
    definition: &str,
    business_key: &str,
    reason: &str,
) -> QueryResult<usize> {
    diesel::update(
        nt_links::table
            .filter(nt_links::definition.eq(definition))
            .filter(nt_links::business_key.eq(business_key))
            .filter(nt_links::state.eq("active")),
    )
    .set((
        nt_links::state.eq("void"),
        nt_links::void_reason.eq(Some(reason)),
    ))
    .execute(conn)
}

/// Records the engine's answer to a link's decision.
///
/// # Errors
/// A query failing.
pub fn record_result(
    conn: &mut AnyConnection,
    id: &str,
    decided: bool,
    code: &str,
    detail: &str,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    let changed = diesel::update(
        nt_links::table
            .filter(nt_links::id.eq(id))
            .filter(nt_links::result.eq("pending")),
    )
    .set((
        nt_links::result.eq(Some(if decided { "decided" } else { "refused" })),
        nt_links::result_code.eq((!code.is_empty()).then_some(code)),
        nt_links::result_detail.eq((!detail.is_empty()).then_some(detail)),
        nt_links::decided_at.eq(Some(naive(now))),
    ))
    .execute(conn)?;
    Ok(changed == 1)
}
