//! `/v1/assets` (ISO/IEC 20000-1 8.2.5): licences and contracts, with their quantities and
//! expiry, and the CIs they cover; a licence covering more CIs than it has seats is over-used.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use meridian_chassis::Problem;
use meridian_chassis::audit;
use meridian_chassis::auth::{AnyRole, Authenticated};
use meridian_chassis::problem::{InvalidParam, Json, Query, codes};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::ConfigurationManager;
use crate::Control;
use crate::store::cis as cis_store;
use crate::store::schema::assets;

/// An asset row.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, Serialize)]
#[diesel(table_name = assets)]
struct AssetRow {
    id: String,
    kind: String,
    name: String,
    vendor: String,
    quantity: i64,
    expires_on: Option<NaiveDate>,
    cis: String,
    created_by: String,
    created_at: chrono::NaiveDateTime,
    updated_at: chrono::NaiveDateTime,
    version: i64,
}

/// What an asset is.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AssetKind {
    /// A software licence (its quantity is seats or instances).
    Licence,
    /// A support or service contract.
    Contract,
}

impl AssetKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Licence => "licence",
            Self::Contract => "contract",
        }
    }
}

/// An asset.
#[derive(Debug, Serialize, ToSchema)]
pub struct AssetView {
    /// Id.
    pub id: String,
    /// `licence` or `contract`.
    pub kind: String,
    /// Name.
    pub name: String,
    /// Vendor.
    pub vendor: String,
    /// Seats, units or instances bought.
    pub quantity: i64,
    /// CIs it covers.
    pub configuration_items: Vec<String>,
    /// How many of its quantity are used (the CIs covered).
    pub used: usize,
    /// More CIs covered than bought.
    pub over_used: bool,
    /// Its expiry.
    pub expires_on: Option<NaiveDate>,
    /// Expired on the day asked (today by default).
    pub expired: bool,
    /// Who recorded it.
    pub created_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

fn view(row: &AssetRow, today: NaiveDate) -> AssetView {
    let cis: Vec<String> = serde_json::from_str(&row.cis).unwrap_or_default();
    let used = cis.len();
    AssetView {
        id: row.id.clone(),
        kind: row.kind.clone(),
        name: row.name.clone(),
        vendor: row.vendor.clone(),
        quantity: row.quantity,
        over_used: i64::try_from(used).unwrap_or(i64::MAX) > row.quantity,
        used,
        configuration_items: cis,
        expires_on: row.expires_on,
        expired: row.expires_on.is_some_and(|d| d < today),
        created_by: row.created_by.clone(),
        created_at: DateTime::from_naive_utc_and_offset(row.created_at, Utc),
    }
}

/// The body of `POST /v1/assets`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAsset {
    /// `licence` or `contract`.
    pub kind: AssetKind,
    /// Name.
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// Vendor.
    #[schema(min_length = 1, max_length = 200)]
    pub vendor: String,
    /// Seats, units or instances bought (at least 1).
    pub quantity: i64,
    /// Expiry (a date).
    pub expires_on: Option<NaiveDate>,
    /// CIs it covers.
    #[serde(default)]
    pub configuration_items: Vec<String>,
}

/// `POST /v1/assets`: records a licence or a contract.
#[utoipa::path(post, path = "/v1/assets", tag = "cmdb", request_body = CreateAsset,
    responses(
        (status = 201, description = "Recorded", body = AssetView),
        (status = 400, description = "Bad fields, named", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn create_asset(
    who: Authenticated<ConfigurationManager>,
    body: Json<CreateAsset>,
    svc: web::Data<Control>,
) -> Result<HttpResponse, Problem> {
    let body = body.0;
    let mut params = Vec::new();
    for (name, value) in [("name", &body.name), ("vendor", &body.vendor)] {
        if value.trim().is_empty() || value.chars().count() > 200 {
            params.push(InvalidParam::new(name, "must be 1 to 200 characters"));
        }
    }
    if body.quantity < 1 {
        params.push(InvalidParam::new("quantity", "must be at least 1"));
    }
    if !params.is_empty() {
        return Err(Problem::invalid(codes::INVALID_BODY, params));
    }
    let now = meridian_chassis::clock::to_micros(svc.clock.now());
    let actor = who.subject.clone();
    let row = svc
        .db
        .transaction(move |conn| -> Result<AssetRow, Problem> {
            for (i, ci) in body.configuration_items.iter().enumerate() {
                if cis_store::find(conn, ci)?.is_none() {
                    return Err(Problem::field(
                        format!("configuration_items[{i}]"),
                        "no CI has this id",
                    ));
                }
            }
            let row = AssetRow {
                id: Uuid::now_v7().to_string(),
                kind: body.kind.as_str().to_owned(),
                name: body.name.trim().to_owned(),
                vendor: body.vendor.trim().to_owned(),
                quantity: body.quantity,
                expires_on: body.expires_on,
                cis: Value::from(body.configuration_items).to_string(),
                created_by: actor.clone(),
                created_at: now.naive_utc(),
                updated_at: now.naive_utc(),
                version: 1,
            };
            diesel::insert_into(assets::table)
                .values(&row)
                .execute(conn)?;
            audit::record(
                conn,
                audit::Entry::<AssetRow, AssetRow> {
                    actor: &actor,
                    action: "asset.created",
                    entity_type: "asset",
                    entity_id: &row.id,
                    before: None,
                    after: Some(&row),
                    at: now,
                },
            )?;
            Ok(row)
        })
        .await?;
    Ok(HttpResponse::Created().json(view(&row, now.date_naive())))
}

/// `GET /v1/assets` filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AssetQuery {
    /// `licence` or `contract`.
    pub kind: Option<AssetKind>,
    /// Only those expiring on or before this date (renewals due).
    pub expiring_by: Option<NaiveDate>,
    /// Only those covering this CI.
    pub ci: Option<String>,
}

/// `GET /v1/assets`: licences and contracts, soonest expiry first, with their use.
#[utoipa::path(get, path = "/v1/assets", tag = "cmdb", params(AssetQuery),
    responses((status = 200, description = "The assets", body = Vec<AssetView>)),
    security(("bearer" = [])))]
pub async fn list_assets(
    _who: Authenticated<AnyRole>,
    query: Query<AssetQuery>,
    svc: web::Data<Control>,
) -> Result<HttpResponse, Problem> {
    let query = query.0;
    let today = svc.clock.now().date_naive();
    let rows = svc
        .db
        .run(move |conn| -> Result<Vec<AssetRow>, Problem> {
            let mut q = assets::table
                .select(AssetRow::as_select())
                .order((assets::expires_on.asc(), assets::id.asc()))
                .into_boxed::<<meridian_chassis::db::AnyConnection as diesel::Connection>::Backend>(
                );
            if let Some(kind) = query.kind {
                q = q.filter(assets::kind.eq(kind.as_str()));
            }
            if let Some(by) = query.expiring_by {
                q = q.filter(assets::expires_on.le(by));
            }
            Ok(q.load(conn)?)
        })
        .await?;
    let ci = query.ci;
    let views: Vec<AssetView> = rows
        .iter()
        .map(|row| view(row, today))
        .filter(|v| {
            ci.as_ref()
                .is_none_or(|ci| v.configuration_items.contains(ci))
        })
        .collect();
    Ok(HttpResponse::Ok().json(views))
}
