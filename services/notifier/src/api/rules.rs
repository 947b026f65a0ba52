//! `/v1/notification-rules`: which event reaches whom, on which channel (notifier admins).

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use meridian_chassis::Problem;
use meridian_chassis::auth::Authenticated;
use meridian_chassis::problem::{InvalidParam, Json, codes};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{NotifierAdmin, utc, valid_pattern};
use crate::Notifier;
use crate::domain::render;
use crate::store::rules::{self as store, RuleRow};

/// A rule as written.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleInput {
    /// What it is for.
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// Routing-key pattern (`*` one word, `#` any), e.g. `resolution.incident.major_declared`.
    pub event_pattern: String,
    /// `user`, `role`, `group`, `actor` (the event's actor), `event_user` or `event_role` (the
    /// user, or the holders of the role, named by a field of the event, e.g. the `recipient` of
    /// `relationship.survey.sent`). Ignored with a `destination`.
    pub audience_kind: String,
    /// The user, role or group; for `event_user` and `event_role`, the event's field (empty for
    /// `actor`).
    #[serde(default)]
    #[schema(max_length = 200)]
    pub audience: String,
    /// `preferred` (each person's own), `email`, `slack` or `teams`.
    #[serde(default = "preferred")]
    pub channel: String,
    /// A shared chat channel (`notifier.chat.<name>`) instead of people.
    pub destination: Option<String>,
    /// Sent during quiet hours too.
    #[serde(default)]
    pub urgent: bool,
    /// Subject template (minijinja over `event`: `type`, `subject`, `time`, `actor`, `data`).
    pub subject_template: Option<String>,
    /// Body template.
    pub body_template: Option<String>,
    /// Default true.
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn preferred() -> String {
    "preferred".to_owned()
}

fn yes() -> bool {
    true
}

/// A rule.
#[derive(Debug, Serialize, ToSchema)]
pub struct RuleView {
    /// Id.
    pub id: String,
    /// The rule.
    #[serde(flatten)]
    pub rule: RuleInput,
    /// Who made it.
    pub created_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

impl From<RuleRow> for RuleView {
    fn from(r: RuleRow) -> Self {
        Self {
            id: r.id,
            rule: RuleInput {
                name: r.name,
                event_pattern: r.event_pattern,
                audience_kind: r.audience_kind,
                audience: r.audience,
                channel: r.channel,
                destination: r.destination,
                urgent: r.urgent,
                subject_template: r.subject_template,
                body_template: r.body_template,
                enabled: r.enabled,
            },
            created_by: r.created_by,
            created_at: utc(r.created_at),
        }
    }
}

fn check(svc: &Notifier, input: &RuleInput) -> Result<(), Problem> {
    let mut params = Vec::new();
    if input.name.trim().is_empty() || input.name.chars().count() > 200 {
        params.push(InvalidParam::new("name", "must be 1 to 200 characters"));
    }
    if !valid_pattern(&input.event_pattern) {
        params.push(InvalidParam::new(
            "event_pattern",
            "must be dot-separated words (a-z, 0-9, _ or -), `*` or `#`",
        ));
    }
    match &input.destination {
        Some(d) if !svc.config.chat.contains_key(d) => params.push(InvalidParam::new(
            "destination",
            format!(
                "must be one of notifier.chat: {}",
                svc.config
                    .chat
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
        Some(_) => {}
        None => {
            match input.audience_kind.as_str() {
                "actor" => {}
                "user" | "role" | "group" | "event_user" | "event_role" => {
                    if input.audience.trim().is_empty() || input.audience.chars().count() > 200 {
                        params.push(InvalidParam::new("audience", "must be 1 to 200 characters"));
                    }
                }
                _ => params.push(InvalidParam::new(
                    "audience_kind",
                    "must be user, role, group, actor, event_user or event_role",
                )),
            }
            if !matches!(
                input.channel.as_str(),
                "preferred" | "email" | "slack" | "teams"
            ) {
                params.push(InvalidParam::new(
                    "channel",
                    "must be preferred, email, slack or teams",
                ));
            }
        }
    }
    for (name, template) in [
        ("subject_template", &input.subject_template),
        ("body_template", &input.body_template),
    ] {
        if let Some(source) = template {
            if source.len() > 10_000 {
                params.push(InvalidParam::new(name, "must be at most 10000 characters"));
            } else if let Err(reason) = render::check_template(source) {
                params.push(InvalidParam::new(name, reason));
            }
        }
    }
    if params.is_empty() {
        Ok(())
    } else {
        Err(Problem::invalid(codes::INVALID_BODY, params))
    }
}

async fn save(
    svc: &Notifier,
    actor: String,
    id: String,
    input: RuleInput,
    must_exist: bool,
) -> Result<RuleRow, Problem> {
    check(svc, &input)?;
    let now = svc.clock.now();
    svc.db
        .transaction(move |conn| -> Result<RuleRow, Problem> {
            let before = store::find(conn, &id)?;
            if must_exist && before.is_none() {
                return Err(Problem::new(codes::NOTIFICATION_RULE_NOT_FOUND));
            }
            let row = RuleRow {
                id: id.clone(),
                name: input.name.trim().to_owned(),
                event_pattern: input.event_pattern,
                audience_kind: input.audience_kind,
                audience: input.audience,
                channel: input.channel,
                destination: input.destination,
                urgent: input.urgent,
                subject_template: input.subject_template,
                body_template: input.body_template,
                enabled: input.enabled,
                created_by: before
                    .as_ref()
                    .map_or_else(|| actor.clone(), |b| b.created_by.clone()),
                created_at: before.as_ref().map_or(now.naive_utc(), |b| b.created_at),
            };
            store::upsert(conn, &row)?;
            meridian_chassis::audit::record(
                conn,
                meridian_chassis::audit::Entry {
                    actor: &actor,
                    action: if before.is_some() {
                        "rule.updated"
                    } else {
                        "rule.created"
                    },
                    entity_type: "notification_rule",
                    entity_id: &id,
                    before: before.map(RuleView::from).as_ref(),
                    after: Some(&RuleView::from(row.clone())),
                    at: now,
                },
            )?;
            Ok(row)
        })
        .await
}

/// Every rule.
#[derive(Debug, Serialize, ToSchema)]
pub struct RuleList {
    /// By id.
    pub items: Vec<RuleView>,
}

/// `GET /v1/notification-rules`.
#[utoipa::path(get, path = "/v1/notification-rules", tag = "rules",
    responses(
        (status = 200, description = "Every rule", body = RuleList),
        (status = 403, description = "Not a notifier admin", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn list_rules(
    _who: Authenticated<NotifierAdmin>,
    svc: web::Data<Notifier>,
) -> Result<HttpResponse, Problem> {
    let rows = svc
        .db
        .run(|conn| -> Result<_, Problem> { Ok(store::all(conn)?) })
        .await?;
    Ok(HttpResponse::Ok().json(RuleList {
        items: rows.into_iter().map(RuleView::from).collect(),
    }))
}

/// `POST /v1/notification-rules`.
#[utoipa::path(post, path = "/v1/notification-rules", tag = "rules", request_body = RuleInput,
    responses(
        (status = 201, description = "Created", body = RuleView),
        (status = 400, description = "A bad field, named", body = meridian_chassis::problem::ProblemBody),
        (status = 403, description = "Not a notifier admin", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn create_rule(
    who: Authenticated<NotifierAdmin>,
    body: Json<RuleInput>,
    svc: web::Data<Notifier>,
) -> Result<HttpResponse, Problem> {
    let id = uuid::Uuid::now_v7().to_string();
    let row = save(&svc, who.subject.clone(), id, body.0, false).await?;
    Ok(HttpResponse::Created().json(RuleView::from(row)))
}

/// `GET /v1/notification-rules/{id}`.
#[utoipa::path(get, path = "/v1/notification-rules/{id}", tag = "rules",
    params(("id" = String, Path, description = "Rule id")),
    responses(
        (status = 200, description = "The rule", body = RuleView),
        (status = 404, description = "No such rule", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn get_rule(
    _who: Authenticated<NotifierAdmin>,
    id: web::Path<String>,
    svc: web::Data<Notifier>,
) -> Result<HttpResponse, Problem> {
    let id = id.into_inner();
    let row = svc
        .db
        .run(move |conn| -> Result<_, Problem> { Ok(store::find(conn, &id)?) })
        .await?
        .ok_or_else(|| Problem::new(codes::NOTIFICATION_RULE_NOT_FOUND))?;
    Ok(HttpResponse::Ok().json(RuleView::from(row)))
}

/// `PUT /v1/notification-rules/{id}`: replaces a rule.
#[utoipa::path(put, path = "/v1/notification-rules/{id}", tag = "rules",
    params(("id" = String, Path, description = "Rule id")), request_body = RuleInput,
    responses(
        (status = 200, description = "Saved", body = RuleView),
        (status = 400, description = "A bad field, named", body = meridian_chassis::problem::ProblemBody),
        (status = 404, description = "No such rule", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn put_rule(
    who: Authenticated<NotifierAdmin>,
    id: web::Path<String>,
    body: Json<RuleInput>,
    svc: web::Data<Notifier>,
) -> Result<HttpResponse, Problem> {
    let row = save(&svc, who.subject.clone(), id.into_inner(), body.0, true).await?;
    Ok(HttpResponse::Ok().json(RuleView::from(row)))
}

/// `DELETE /v1/notification-rules/{id}`.
#[utoipa::path(delete, path = "/v1/notification-rules/{id}", tag = "rules",
    params(("id" = String, Path, description = "Rule id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such rule", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn delete_rule(
    who: Authenticated<NotifierAdmin>,
    id: web::Path<String>,
    svc: web::Data<Notifier>,
) -> Result<HttpResponse, Problem> {
    let id = id.into_inner();
    let actor = who.subject.clone();
    let now = svc.clock.now();
    svc.db
        .transaction(move |conn| -> Result<(), Problem> {
            let before = store::find(conn, &id)?
                .ok_or_else(|| Problem::new(codes::NOTIFICATION_RULE_NOT_FOUND))?;
            store::delete(conn, &id)?;
            meridian_chassis::audit::record(
                conn,
                meridian_chassis::audit::Entry::<RuleView, RuleView> {
                    actor: &actor,
                    action: "rule.deleted",
                    entity_type: "notification_rule",
                    entity_id: &id,
                    before: Some(&RuleView::from(before)),
                    after: None,
                    at: now,
                },
            )?;
            Ok(())
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
