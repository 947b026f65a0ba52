//! Discovery's writes to the CMDB: CIs found by name and type, created or changed only when what
//! the cluster says differs (each change audited and announced as any CI change), retired when
//! their object is gone, and the relations discovery made kept equal to what the cluster says
//! (relations people recorded by hand are never touched).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use meridian_chassis::db::AnyConnection;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::cis::{self, CiRow, Context, RelationRow};
use super::schema::{ci_relations, cis as cis_table};

/// The actor of discovery's writes (and the `created_by` of its relations).
pub const ACTOR: &str = "system:discovery";

fn ctx(now: DateTime<Utc>) -> Context<'static> {
    Context {
        actor: ACTOR,
        now,
        correlation_id: None,
    }
}

/// The CI of `ci_type` named `name`.
///
/// # Errors
/// A query failing.
pub fn find(conn: &mut AnyConnection, ci_type: &str, name: &str) -> QueryResult<Option<CiRow>> {
    cis_table::table
        .filter(cis_table::ci_type.eq(ci_type))
        .filter(cis_table::name.eq(name))
        .order(cis_table::id)
        .select(CiRow::as_select())
        .first(conn)
        .optional()
}

/// What discovery says a CI is.
#[derive(Debug, Clone)]
pub struct Desired<'a> {
    /// Its type.
    pub ci_type: &'a str,
    /// Its name.
    pub name: String,
    /// Its owner.
    pub owner: String,
    /// Its attributes.
    pub attributes: Map<String, Value>,
}

/// Creates or changes the CI to match `desired` (in service); its row.
///
/// # Errors
/// A query failing.
pub fn upsert(
    conn: &mut AnyConnection,
    desired: &Desired<'_>,
    now: DateTime<Utc>,
) -> QueryResult<CiRow> {
    let attributes = Value::Object(desired.attributes.clone()).to_string();
    match find(conn, desired.ci_type, &desired.name)? {
        Some(before) => {
            let same_attributes = serde_json::from_str::<Value>(&before.attributes).ok()
                == Some(Value::Object(desired.attributes.clone()));
            if same_attributes && before.owner == desired.owner && before.status == "in_service" {
                return Ok(before);
            }
            let after = CiRow {
                owner: desired.owner.clone(),
                status: "in_service".to_owned(),
                attributes,
                updated_at: now.naive_utc(),
                version: before.version + 1,
                ..before.clone()
            };
            cis::update(conn, &before, &after, ctx(now))?;
            Ok(after)
        }
        None => {
            let row = CiRow {
                id: Uuid::now_v7().to_string(),
                ci_type: desired.ci_type.to_owned(),
                name: desired.name.clone(),
                owner: desired.owner.clone(),
                status: "in_service".to_owned(),
                environment: "production".to_owned(),
                criticality: "medium".to_owned(),
                attributes,
                created_at: now.naive_utc(),
                updated_at: now.naive_utc(),
                version: 1,
            };
            cis::insert(conn, &row, ctx(now))?;
            Ok(row)
        }
    }
}

/// Retires the CI (its object is gone from the cluster); `false` when there is none to retire.
///
/// # Errors
/// A query failing.
pub fn retire(
    conn: &mut AnyConnection,
    ci_type: &str,
    name: &str,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    let Some(before) = find(conn, ci_type, name)? else {
        return Ok(false);
    };
    if before.status == "retired" {
        return Ok(false);
    }
    let after = CiRow {
        status: "retired".to_owned(),
        updated_at: now.naive_utc(),
        version: before.version + 1,
        ..before.clone()
    };
    cis::update(conn, &before, &after, ctx(now))?;
    for relation in mine_from(conn, &before.id, None)? {
        cis::unrelate(conn, &relation.id, ctx(now))?;
    }
    Ok(true)
}

/// The CIs of `ci_type` in service that discovery made for `cluster`.
///
/// # Errors
/// A query failing.
pub fn in_cluster(
    conn: &mut AnyConnection,
    ci_type: &str,
    cluster: &str,
) -> QueryResult<Vec<CiRow>> {
    Ok(cis_table::table
        .filter(cis_table::ci_type.eq(ci_type))
        .filter(cis_table::status.ne("retired"))
        .order(cis_table::id)
        .select(CiRow::as_select())
        .load(conn)?
        .into_iter()
        .filter(|row| {
            serde_json::from_str::<Value>(&row.attributes)
                .ok()
                .is_some_and(|a| a["cluster"] == cluster)
        })
        .collect())
}

fn mine_from(
    conn: &mut AnyConnection,
    source: &str,
    kind: Option<&str>,
) -> QueryResult<Vec<RelationRow>> {
    let mut query = ci_relations::table
        .filter(ci_relations::source.eq(source.to_owned()))
        .filter(ci_relations::created_by.eq(ACTOR))
        .select(RelationRow::as_select())
        .into_boxed();
    if let Some(kind) = kind {
        query = query.filter(ci_relations::kind.eq(kind.to_owned()));
    }
    query.load(conn)
}

/// Makes discovery's `source <kind> …` relations exactly `targets`.
///
/// # Errors
/// A query failing.
pub fn set_relations(
    conn: &mut AnyConnection,
    source: &str,
    kind: &str,
    targets: &[String],
    now: DateTime<Utc>,
) -> QueryResult<()> {
    let existing = mine_from(conn, source, Some(kind))?;
    for relation in &existing {
        if !targets.contains(&relation.target) {
            cis::unrelate(conn, &relation.id, ctx(now))?;
        }
    }
    for target in targets {
        if target == source || cis::related(conn, source, kind, target)? {
            continue;
        }
        cis::relate(
            conn,
            &RelationRow {
                id: Uuid::now_v7().to_string(),
                source: source.to_owned(),
                kind: kind.to_owned(),
                target: target.clone(),
                created_by: ACTOR.to_owned(),
                created_at: now.naive_utc(),
            },
            ctx(now),
        )?;
    }
    Ok(())
}
