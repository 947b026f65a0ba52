//! Deployed definition versions, and the compiled ones in memory.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use meridian_chassis::db::AnyConnection;
use serde::Serialize;

use super::schema::wf_definitions;
use crate::definition::{Compiled, load};

/// One deployed version, as listed.
#[derive(Debug, Clone, Queryable, Selectable, Serialize, utoipa::ToSchema)]
#[diesel(table_name = wf_definitions)]
pub struct VersionRow {
    /// The definition's id.
    pub id: String,
    /// The version (hash of the content).
    pub version: String,
    /// Human name.
    pub name: String,
    /// `file` (the workflows folder) or `api`.
    pub origin: String,
    /// Who deployed it (`system:startup` for files).
    pub deployed_by: String,
    /// When it became the newest.
    #[serde(serialize_with = "meridian_chassis::fields::utc")]
    pub deployed_at: NaiveDateTime,
}

/// Compiled definitions by (id, version).
type ByVersion = HashMap<(String, String), Arc<Compiled>>;

/// Compiled definitions by id and version; a version is compiled once per process.
#[derive(Clone, Default)]
pub struct Registry {
    compiled: Arc<RwLock<ByVersion>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").finish_non_exhaustive()
    }
}

impl Registry {
    /// Remembers a compiled definition.
    pub fn insert(&self, compiled: Arc<Compiled>) {
        let key = (compiled.definition.id.clone(), compiled.version.clone());
        self.compiled
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, compiled);
    }

    /// A version, compiled from its stored source on first use.
    ///
    /// # Errors
    /// A query failing, or no such version.
    pub fn get(
        &self,
        conn: &mut AnyConnection,
        id: &str,
        version: &str,
    ) -> QueryResult<Arc<Compiled>> {
        let key = (id.to_owned(), version.to_owned());
        if let Some(found) = self
            .compiled
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
        {
            return Ok(found.clone());
        }
        let source: String = wf_definitions::table
            .find((id, version))
            .select(wf_definitions::source)
            .first(conn)?;
        let compiled = Arc::new(load(&source).map_err(|errors| {
            diesel::result::Error::DeserializationError(
                format!("stored definition {id} {version} no longer loads: {errors:?}").into(),
            )
        })?);
        self.insert(compiled.clone());
        Ok(compiled)
    }

    /// The newest version of `id`, or `None`.
    ///
    /// # Errors
    /// A query failing.
    pub fn newest(&self, conn: &mut AnyConnection, id: &str) -> QueryResult<Option<Arc<Compiled>>> {
        let version: Option<String> = wf_definitions::table
            .filter(wf_definitions::id.eq(id))
            .order((
                wf_definitions::deployed_at.desc(),
                wf_definitions::version.desc(),
            ))
            .select(wf_definitions::version)
            .first(conn)
            .optional()?;
        version.map(|v| self.get(conn, id, &v)).transpose()
    }
}

/// Deploys a compiled definition: a new content becomes the newest version; the content of
/// the newest version is left as it is. Returns whether anything changed.
///
/// # Errors
/// A query failing.
pub fn deploy(
    conn: &mut AnyConnection,
    registry: &Registry,
    compiled: &Arc<Compiled>,
    origin: &str,
    by: &str,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    let id = &compiled.definition.id;
    let newest: Option<(String, NaiveDateTime)> = wf_definitions::table
        .filter(wf_definitions::id.eq(id))
        .order((
            wf_definitions::deployed_at.desc(),
            wf_definitions::version.desc(),
        ))
        .select((wf_definitions::version, wf_definitions::deployed_at))
        .first(conn)
        .optional()?;
    registry.insert(compiled.clone());
    if newest.as_ref().map(|(v, _)| v.as_str()) == Some(compiled.version.as_str()) {
        return Ok(false);
    }
    // Strictly after the current newest, whatever the clock says.
    let at = match newest {
        Some((_, last)) if last >= now.naive_utc() => last + chrono::Duration::microseconds(1),
        _ => now.naive_utc(),
    };
    let updated = diesel::update(wf_definitions::table.find((id, &compiled.version)))
        .set((
            wf_definitions::deployed_at.eq(at),
            wf_definitions::deployed_by.eq(by),
            wf_definitions::origin.eq(origin),
        ))
        .execute(conn)?;
    if updated == 0 {
        diesel::insert_into(wf_definitions::table)
            .values((
                wf_definitions::id.eq(id),
                wf_definitions::version.eq(&compiled.version),
                wf_definitions::name.eq(&compiled.definition.name),
                wf_definitions::source.eq(&compiled.source),
                wf_definitions::origin.eq(origin),
                wf_definitions::deployed_by.eq(by),
                wf_definitions::deployed_at.eq(at),
            ))
            .execute(conn)?;
    }
    Ok(true)
}

/// The newest version of every definition: (id, version).
///
/// # Errors
/// A query failing.
pub fn newest_versions(conn: &mut AnyConnection) -> QueryResult<Vec<(String, String)>> {
    let rows: Vec<(String, String, NaiveDateTime)> = wf_definitions::table
        .select((
            wf_definitions::id,
            wf_definitions::version,
            wf_definitions::deployed_at,
        ))
        .order((
            wf_definitions::id.asc(),
            wf_definitions::deployed_at.desc(),
            wf_definitions::version.desc(),
        ))
        .load(conn)?;
    let mut newest: Vec<(String, String)> = Vec::new();
    for (id, version, _) in rows {
        if newest.last().is_none_or(|(last, _)| *last != id) {
            newest.push((id, version));
        }
    }
    Ok(newest)
}

/// Every deployed version, newest first within each id.
///
/// # Errors
/// A query failing.
pub fn list(conn: &mut AnyConnection, id: Option<&str>) -> QueryResult<Vec<VersionRow>> {
    let mut query = wf_definitions::table
        .select(VersionRow::as_select())
        .order((wf_definitions::id.asc(), wf_definitions::deployed_at.desc()))
        .into_boxed::<<AnyConnection as diesel::Connection>::Backend>();
    if let Some(id) = id {
        query = query.filter(wf_definitions::id.eq(id.to_owned()));
    }
    query.load(conn)
}

/// The source of a version.
///
/// # Errors
/// A query failing.
pub fn source(conn: &mut AnyConnection, id: &str, version: &str) -> QueryResult<Option<String>> {
    wf_definitions::table
        .find((id, version))
        .select(wf_definitions::source)
        .first(conn)
        .optional()
}
