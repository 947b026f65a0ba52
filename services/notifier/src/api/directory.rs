//! The directory: who the notifier reaches and how (`/v1/recipients`, notifier admins), and
//! each person's own preferences (`/v1/notification-preferences/me`).

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use meridian_chassis::Problem;
use meridian_chassis::auth::{AnyRole, Authenticated};
use meridian_chassis::problem::{InvalidParam, Json, Query, codes};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{NotifierAdmin, page_size, paged, utc};
use crate::Notifier;
use crate::config::url_of;
use crate::domain::quiet;
use crate::store::recipients::{self as store, RecipientRow};

/// A recipient.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecipientView {
    /// The user id (the token's subject).
    pub user_id: String,
    /// Their name.
    pub display_name: String,
    /// E-mail address.
    pub email: Option<String>,
    /// Whether a personal Slack webhook is set (the address is a secret, never shown).
    pub slack: bool,
    /// Whether a personal Teams webhook is set.
    pub teams: bool,
    /// Roles (routing rules and task candidates by role reach them).
    pub roles: Vec<String>,
    /// Groups.
    pub groups: Vec<String>,
    /// Preferred channel.
    pub channel: String,
    /// Quiet hours start, `HH:MM` in their time zone.
    pub quiet_start: Option<String>,
    /// Quiet hours end.
    pub quiet_end: Option<String>,
    /// IANA time zone.
    pub timezone: String,
    /// False once removed.
    pub active: bool,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl From<RecipientRow> for RecipientView {
    fn from(r: RecipientRow) -> Self {
        Self {
            roles: r.roles(),
            groups: r.groups(),
            user_id: r.user_id,
            display_name: r.display_name,
            email: r.email,
            slack: r.slack_webhook.is_some(),
            teams: r.teams_webhook.is_some(),
            channel: r.channel,
            quiet_start: r.quiet_start,
            quiet_end: r.quiet_end,
            timezone: r.timezone,
            active: r.active,
            updated_at: utc(r.updated_at),
        }
    }
}

/// What a person sets for themselves.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Preferences {
    /// `email`, `slack`, `teams` or `none`.
    pub channel: String,
    /// Quiet hours start, `HH:MM` (with `quiet_end`; both or neither).
    pub quiet_start: Option<String>,
    /// Quiet hours end, `HH:MM`.
    pub quiet_end: Option<String>,
    /// IANA time zone, e.g. `Europe/Paris`.
    pub timezone: Option<String>,
}

/// `PUT /v1/recipients/{user}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecipientInput {
    /// Their name.
    #[schema(min_length = 1, max_length = 200)]
    pub display_name: String,
    /// E-mail address.
    pub email: Option<String>,
    /// A personal Slack incoming webhook.
    pub slack_webhook: Option<String>,
    /// A personal Teams incoming webhook.
    pub teams_webhook: Option<String>,
    /// Roles.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Groups.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Their preferences (default: e-mail, no quiet hours, the default time zone).
    #[serde(default)]
    pub preferences: Option<Preferences>,
}

/// Checks preferences against the recipient's addresses; the problems, each naming its field.
fn check_preferences(
    prefix: &str,
    p: &Preferences,
    email: bool,
    slack: bool,
    teams: bool,
    params: &mut Vec<InvalidParam>,
) {
    let reachable = match p.channel.as_str() {
        "email" => email,
        "slack" => slack,
        "teams" => teams,
        "none" => true,
        _ => {
            params.push(InvalidParam::new(
                format!("{prefix}channel"),
                "must be email, slack, teams or none",
            ));
            true
        }
    };
    if !reachable {
        params.push(InvalidParam::new(
            format!("{prefix}channel"),
            format!("there is no {} address for this person", p.channel),
        ));
    }
    match (&p.quiet_start, &p.quiet_end) {
        (None, None) => {}
        (Some(s), Some(e)) => {
            for (name, value) in [("quiet_start", s), ("quiet_end", e)] {
                if quiet::parse_time(value).is_none() {
                    params.push(InvalidParam::new(
                        format!("{prefix}{name}"),
                        "must be HH:MM",
                    ));
                }
            }
        }
        _ => params.push(InvalidParam::new(
            format!("{prefix}quiet_start"),
            "quiet_start and quiet_end go together",
        )),
    }
    if let Some(tz) = &p.timezone
        && tz.parse::<chrono_tz::Tz>().is_err()
    {
        params.push(InvalidParam::new(
            format!("{prefix}timezone"),
            "must be an IANA time zone, e.g. Europe/Paris",
        ));
    }
}

fn names(prefix: &str, values: &[String], params: &mut Vec<InvalidParam>) {
    if values.len() > 100 {
        params.push(InvalidParam::new(prefix, "at most 100"));
    }
    for (i, v) in values.iter().enumerate() {
        if v.trim().is_empty() || v.chars().count() > 100 {
            params.push(InvalidParam::new(
                format!("{prefix}[{i}]"),
                "must be 1 to 100 characters",
            ));
        }
    }
}

/// `GET /v1/notification-preferences/me`.
#[utoipa::path(get, path = "/v1/notification-preferences/me", tag = "directory",
    responses(
        (status = 200, description = "The caller's entry", body = RecipientView),
        (status = 404, description = "Not in the directory", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn get_preferences(
    who: Authenticated<AnyRole>,
    svc: web::Data<Notifier>,
) -> Result<HttpResponse, Problem> {
    let user = who.subject.clone();
    let row = svc
        .db
        .run(move |conn| -> Result<_, Problem> { Ok(store::find(conn, &user)?) })
        .await?
        .ok_or_else(|| Problem::new(codes::RECIPIENT_NOT_FOUND))?;
    Ok(HttpResponse::Ok().json(RecipientView::from(row)))
}

/// `PUT /v1/notification-preferences/me`: channel, quiet hours, time zone.
#[utoipa::path(put, path = "/v1/notification-preferences/me", tag = "directory",
    request_body = Preferences,
    responses(
        (status = 200, description = "Saved", body = RecipientView),
        (status = 400, description = "A bad field, named", body = meridian_chassis::problem::ProblemBody),
        (status = 404, description = "Not in the directory", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn put_preferences(
    who: Authenticated<AnyRole>,
    body: Json<Preferences>,
    svc: web::Data<Notifier>,
) -> Result<HttpResponse, Problem> {
    let prefs = body.0;
    let user = who.subject.clone();
    let now = svc.clock.now();
    let row = svc
        .db
        .transaction(move |conn| -> Result<RecipientRow, Problem> {
            let before = store::find(conn, &user)?
                .filter(|r| r.active)
                .ok_or_else(|| Problem::new(codes::RECIPIENT_NOT_FOUND))?;
            let mut params = Vec::new();
            check_preferences(
                "",
                &prefs,
                before.email.is_some(),
                before.slack_webhook.is_some(),
                before.teams_webhook.is_some(),
                &mut params,
            );
            if !params.is_empty() {
                return Err(Problem::invalid(codes::INVALID_BODY, params));
            }
            let after = RecipientRow {
                channel: prefs.channel,
                quiet_start: prefs.quiet_start,
                quiet_end: prefs.quiet_end,
                timezone: prefs.timezone.unwrap_or_else(|| before.timezone.clone()),
                updated_at: now.naive_utc(),
                ..before.clone()
            };
            store::upsert(conn, &after)?;
            record(
                conn,
                &user,
                "recipient.preferences_changed",
                &before.user_id,
                Some(&before),
                &after,
                now,
            )?;
            Ok(after)
        })
        .await?;
    Ok(HttpResponse::Ok().json(RecipientView::from(row)))
}

fn record(
    conn: &mut meridian_chassis::db::AnyConnection,
    actor: &str,
    action: &str,
    id: &str,
    before: Option<&RecipientRow>,
    after: &RecipientRow,
    now: DateTime<Utc>,
) -> diesel::QueryResult<()> {
    let redact = |r: &RecipientRow| {
        let mut v = serde_json::to_value(RecipientView::from(r.clone())).unwrap_or_default();
        if let Some(map) = v.as_object_mut() {
            map.remove("updated_at");
        }
        v
    };
    meridian_chassis::audit::record(
        conn,
        meridian_chassis::audit::Entry {
            actor,
            action,
            entity_type: "recipient",
            entity_id: id,
            before: before.map(redact).as_ref(),
            after: Some(&redact(after)),
            at: now,
        },
    )
}

/// `GET /v1/recipients` filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RecipientQuery {
    /// The cursor: the last user id of the previous page.
    pub after: Option<String>,
    /// Page size, 1–500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

/// A page of recipients.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecipientPage {
    /// By user id.
    pub items: Vec<RecipientView>,
    /// The next page's cursor.
    pub next: Option<String>,
}

/// `GET /v1/recipients`.
#[utoipa::path(get, path = "/v1/recipients", tag = "directory", params(RecipientQuery),
    responses(
        (status = 200, description = "A page", body = RecipientPage),
        (status = 403, description = "Not a notifier admin", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn list_recipients(
    _who: Authenticated<NotifierAdmin>,
    query: Query<RecipientQuery>,
    svc: web::Data<Notifier>,
) -> Result<HttpResponse, Problem> {
    let query = query.0;
    let limit = page_size(query.limit, 100, 500)?;
    let page = svc
        .db
        .run(move |conn| -> Result<RecipientPage, Problem> {
            let rows = store::list(conn, query.after.as_deref(), limit + 1)?;
            let (rows, next) = paged(rows, limit, |r| r.user_id.clone());
            Ok(RecipientPage {
                items: rows.into_iter().map(RecipientView::from).collect(),
                next,
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// `GET /v1/recipients/{user}`.
#[utoipa::path(get, path = "/v1/recipients/{user}", tag = "directory",
    params(("user" = String, Path, description = "User id")),
    responses(
        (status = 200, description = "The recipient", body = RecipientView),
        (status = 403, description = "Not a notifier admin", body = meridian_chassis::problem::ProblemBody),
        (status = 404, description = "Not in the directory", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn get_recipient(
    _who: Authenticated<NotifierAdmin>,
    user: web::Path<String>,
    svc: web::Data<Notifier>,
) -> Result<HttpResponse, Problem> {
    let user = user.into_inner();
    let row = svc
        .db
        .run(move |conn| -> Result<_, Problem> { Ok(store::find(conn, &user)?) })
        .await?
        .ok_or_else(|| Problem::new(codes::RECIPIENT_NOT_FOUND))?;
    Ok(HttpResponse::Ok().json(RecipientView::from(row)))
}

/// `PUT /v1/recipients/{user}`: adds or replaces a person's entry.
#[utoipa::path(put, path = "/v1/recipients/{user}", tag = "directory",
    params(("user" = String, Path, description = "User id")), request_body = RecipientInput,
    responses(
        (status = 200, description = "Saved", body = RecipientView),
        (status = 400, description = "A bad field, named", body = meridian_chassis::problem::ProblemBody),
        (status = 403, description = "Not a notifier admin", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn put_recipient(
    who: Authenticated<NotifierAdmin>,
    user: web::Path<String>,
    body: Json<RecipientInput>,
    svc: web::Data<Notifier>,
) -> Result<HttpResponse, Problem> {
    let user = user.into_inner();
    let input = body.0;
    let mut params = Vec::new();
    if user.trim().is_empty() || user.chars().count() > 200 {
        params.push(InvalidParam::new("user", "must be 1 to 200 characters"));
    }
    if input.display_name.trim().is_empty() || input.display_name.chars().count() > 200 {
        params.push(InvalidParam::new(
            "display_name",
            "must be 1 to 200 characters",
        ));
    }
    if let Some(email) = &input.email
        && email.parse::<lettre::Address>().is_err()
    {
        params.push(InvalidParam::new("email", "must be an e-mail address"));
    }
    for (name, value) in [
        ("slack_webhook", &input.slack_webhook),
        ("teams_webhook", &input.teams_webhook),
    ] {
        if let Some(url) = value
            && let Err(reason) = url_of(url)
        {
            params.push(InvalidParam::new(name, reason));
        }
    }
    names("roles", &input.roles, &mut params);
    names("groups", &input.groups, &mut params);
    let prefs = input.preferences.clone().unwrap_or(Preferences {
        channel: if input.email.is_some() {
            "email"
        } else {
            "none"
        }
        .to_owned(),
        quiet_start: None,
        quiet_end: None,
        timezone: None,
    });
    check_preferences(
        "preferences.",
        &prefs,
        input.email.is_some(),
        input.slack_webhook.is_some(),
        input.teams_webhook.is_some(),
        &mut params,
    );
    if !params.is_empty() {
        return Err(Problem::invalid(codes::INVALID_BODY, params));
    }
    let now = svc.clock.now();
    let row = RecipientRow {
        user_id: user.clone(),
        display_name: input.display_name.trim().to_owned(),
        email: input.email,
        slack_webhook: input.slack_webhook,
        teams_webhook: input.teams_webhook,
        roles: serde_json::to_string(&input.roles).unwrap_or_default(),
        groups: serde_json::to_string(&input.groups).unwrap_or_default(),
        channel: prefs.channel,
        quiet_start: prefs.quiet_start,
        quiet_end: prefs.quiet_end,
        timezone: prefs
            .timezone
            .unwrap_or_else(|| svc.config.default_timezone.clone()),
        active: true,
        updated_at: now.naive_utc(),
    };
    let actor = who.subject.clone();
    let saved = row.clone();
    svc.db
        .transaction(move |conn| -> Result<(), Problem> {
            let before = store::find(conn, &saved.user_id)?;
            store::upsert(conn, &saved)?;
            record(
                conn,
                &actor,
                "recipient.saved",
                &saved.user_id,
                before.as_ref(),
                &saved,
                now,
            )?;
            Ok(())
        })
        .await?;
    Ok(HttpResponse::Ok().json(RecipientView::from(row)))
}

/// `DELETE /v1/recipients/{user}`: nothing more is sent to them and their links stop working
/// (the entry stays, inactive, for the record).
#[utoipa::path(delete, path = "/v1/recipients/{user}", tag = "directory",
    params(("user" = String, Path, description = "User id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, description = "Not a notifier admin", body = meridian_chassis::problem::ProblemBody),
        (status = 404, description = "Not in the directory", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn delete_recipient(
    who: Authenticated<NotifierAdmin>,
    user: web::Path<String>,
    svc: web::Data<Notifier>,
) -> Result<HttpResponse, Problem> {
    let user = user.into_inner();
    let actor = who.subject.clone();
    let now = svc.clock.now();
    svc.db
        .transaction(move |conn| -> Result<(), Problem> {
            let before = store::find(conn, &user)?
                .filter(|r| r.active)
                .ok_or_else(|| Problem::new(codes::RECIPIENT_NOT_FOUND))?;
            let after = RecipientRow {
                active: false,
                updated_at: now.naive_utc(),
                ..before.clone()
            };
            store::upsert(conn, &after)?;
            record(
                conn,
                &actor,
                "recipient.removed",
                &user,
                Some(&before),
                &after,
                now,
            )?;
            Ok(())
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
