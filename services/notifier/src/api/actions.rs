//! One-click action links: `GET /v1/actions/{token}` shows what is being decided and a form;
//! only the form's `POST` decides, so a mail scanner that fetches the link decides nothing.
//!
//! The POST is checked in this order, and any failure shows a page saying why, with nothing
//! decided: the CSRF token (double submit: a `SameSite=Strict` cookie set by the page and the
//! form's hidden field, plus the `Origin` when the browser sends one); the link's token (known,
//! not expired, not used, its task still open); the person (a signed-in user who is not the
//! link's approver is refused; with `notifier.require_login`, signing in is required); the
//! approver still in the directory. Then, in one transaction, the link is used (atomically:
//! only one request can move it from active to used) and the decision is sent to the workflow
//! engine through the outbox; the engine checks again that the approver may decide the task
//! (assignee or candidate by their current roles, never excluded by segregation of duties) and
//! answers. The link's page shows that answer.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, NaiveDateTime, Utc};
use meridian_chassis::audit;
use meridian_chassis::auth::Authenticator;
use meridian_chassis::bus::Envelope;
use meridian_chassis::db::DbError;
use meridian_proto::Message as _;
use meridian_proto::workflow::v1::DecideTask;
use minijinja::{AutoEscape, Environment, context};
use serde::Deserialize;
use serde_json::Value;

use crate::Notifier;
use crate::delivery::label;
use crate::domain::{render, token};
use crate::store::links::{self, LinkRow};
use crate::store::recipients;

/// The CSRF cookie.
const CSRF_COOKIE: &str = "meridian_csrf";
/// The web console's session cookie (a bearer token), read to know who is signed in.
const SESSION_COOKIE: &str = "meridian_session";
/// The command to the workflow engine.
const DECIDE: &str = "workflow.task.decide";

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
{% if refresh %}<meta http-equiv="refresh" content="2">{% endif %}
<title>{{ heading }} · Meridian</title>
<style>
body { font-family: system-ui, sans-serif; color: #1b1b1b; background: #fafafa; margin: 0; }
main { max-width: 40rem; margin: 2rem auto; padding: 1.5rem; background: #fff; border: 1px solid #ddd; border-radius: 6px; }
h1 { font-size: 1.4rem; margin-top: 0; }
th { text-align: left; padding: 0.3rem 1rem 0.3rem 0; vertical-align: top; }
td { padding: 0.3rem 0; }
fieldset { border: 1px solid #ccc; margin: 1rem 0; }
label { display: block; margin: 0.4rem 0; }
textarea { width: 100%; min-height: 5rem; font: inherit; }
button { font: inherit; padding: 0.6rem 1.2rem; background: #0b57d0; color: #fff; border: 0; border-radius: 4px; cursor: pointer; }
button:focus, input:focus, textarea:focus { outline: 3px solid #f9a825; outline-offset: 2px; }
.note { color: #444; }
.bad { color: #a50e0e; }
</style>
</head>
<body>
<main>
<h1>{{ heading }}</h1>
{% if message %}<p class="{{ tone }}">{{ message }}</p>{% endif %}
{% if facts %}<table>{% for f in facts %}<tr><th scope="row">{{ f[0] }}</th><td>{{ f[1] }}</td></tr>{% endfor %}</table>{% endif %}
{% if form %}
<form method="post" action="{{ action }}">
<input type="hidden" name="csrf" value="{{ csrf }}">
<fieldset>
<legend>Your decision</legend>
{% for o in outcomes %}<label><input type="radio" name="outcome" value="{{ o[0] }}"{% if o[0] == chosen %} checked{% endif %} required> {{ o[1] }}</label>
{% endfor %}</fieldset>
{% for f in fields %}<label for="field-{{ f.name }}">{{ f.label }}{% if f.required %} (required){% endif %}</label>
{% if f.options %}<select id="field-{{ f.name }}" name="field.{{ f.name }}"{% if f.required %} required{% endif %}><option value="">Choose…</option>{% for o in f.options %}<option>{{ o }}</option>{% endfor %}</select>
{% elif f.kind == "boolean" %}<input type="checkbox" id="field-{{ f.name }}" name="field.{{ f.name }}" value="true">
{% elif f.kind == "integer" %}<input type="number" step="1" id="field-{{ f.name }}" name="field.{{ f.name }}"{% if f.required %} required{% endif %}>
{% elif f.kind == "number" %}<input type="number" step="any" id="field-{{ f.name }}" name="field.{{ f.name }}"{% if f.required %} required{% endif %}>
{% elif f.kind == "object" %}<textarea id="field-{{ f.name }}" name="field.{{ f.name }}"{% if f.required %} required{% endif %}>{}</textarea>
{% else %}<input type="text" id="field-{{ f.name }}" name="field.{{ f.name }}"{% if f.required %} required{% endif %}>{% endif %}
{% endfor %}
<label for="comment">Comment (kept with your decision)</label>
<textarea id="comment" name="comment" maxlength="2000"></textarea>
<p><button type="submit">Confirm my decision</button></p>
<p class="note">Nothing is recorded until you confirm. The link then stops working.</p>
</form>
{% endif %}
</main>
</body>
</html>
"#;

fn environment() -> &'static Environment<'static> {
    static ENV: std::sync::OnceLock<Environment<'static>> = std::sync::OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|_| AutoEscape::Html);
        // A constant, rendered by every test of this module.
        let _ = env.add_template("page.html", PAGE);
        env
    })
}

/// A page: its status, and what it says.
#[derive(Debug, Default)]
struct Page {
    status: u16,
    heading: String,
    message: String,
    tone: &'static str,
    facts: Vec<(String, String)>,
    refresh: bool,
    form: Option<Form>,
    /// Seconds to send as `Retry-After`.
    retry_after: Option<u64>,
}

#[derive(Debug)]
struct Form {
    action: String,
    csrf: String,
    outcomes: Vec<(String, String)>,
    chosen: String,
    fields: Vec<Value>,
}

impl Page {
    fn refused(status: u16, heading: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            heading: heading.to_owned(),
            message: message.into(),
            tone: "bad",
            ..Self::default()
        }
    }

    fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    fn respond(self, secure: bool) -> HttpResponse {
        let (action, csrf, outcomes, chosen, fields) = match &self.form {
            Some(f) => (
                f.action.clone(),
                f.csrf.clone(),
                f.outcomes.clone(),
                f.chosen.clone(),
                f.fields.clone(),
            ),
            None => Default::default(),
        };
        let html = environment()
            .get_template("page.html")
            .and_then(|t| {
                t.render(context! {
                    heading => self.heading, message => self.message, tone => self.tone,
                    facts => self.facts, refresh => self.refresh, form => self.form.is_some(),
                    action => action, csrf => csrf, outcomes => outcomes, chosen => chosen,
                    fields => fields,
                })
            })
            .unwrap_or_else(|e| format!("<!doctype html><title>Error</title><p>{e}</p>"));
        let mut response =
            HttpResponse::build(StatusCode::from_u16(self.status).unwrap_or(StatusCode::OK));
        response
            .content_type("text/html; charset=utf-8")
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::REFERRER_POLICY, "no-referrer"))
            .insert_header((header::X_FRAME_OPTIONS, "DENY"))
            .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
            .insert_header(("x-robots-tag", "noindex, nofollow"))
            .insert_header((
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            ));
        if let Some(seconds) = self.retry_after {
            response.insert_header((header::RETRY_AFTER, seconds.to_string()));
        }
        if let Some(form) = &self.form {
            response.cookie(
                Cookie::build(CSRF_COOKIE, form.csrf.clone())
                    .path("/v1/actions")
                    .http_only(true)
                    .secure(secure)
                    .same_site(SameSite::Strict)
                    .max_age(actix_web::cookie::time::Duration::hours(1))
                    .finish(),
            );
        }
        response.body(html)
    }
}

/// Who is signed in: a bearer token, or the console's session cookie. `Err` when one is
/// presented and is not valid.
fn signed_in(req: &HttpRequest) -> Result<Option<String>, ()> {
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| token.trim().to_owned())
        });
    let presented = bearer.or_else(|| req.cookie(SESSION_COOKIE).map(|c| c.value().to_owned()));
    let Some(presented) = presented else {
        return Ok(None);
    };
    let authenticator = req.app_data::<web::Data<Authenticator>>().ok_or(())?;
    authenticator
        .authenticate(&presented)
        .map(|p| Some(p.subject))
        .map_err(|_| ())
}

fn utc(at: NaiveDateTime) -> String {
    DateTime::<Utc>::from_naive_utc_and_offset(at, Utc)
        .format("%Y-%m-%d %H:%M UTC")
        .to_string()
}

fn facts_of(link: &LinkRow) -> Vec<(String, String)> {
    let mut facts = vec![
        ("task".to_owned(), link.title.clone()),
        ("about".to_owned(), link.business_key.clone()),
        ("workflow".to_owned(), link.definition.clone()),
    ];
    let summary: Value = serde_json::from_str(&link.summary).unwrap_or(Value::Null);
    facts.extend(render::facts(&summary, 24));
    facts.push(("for".to_owned(), link.approver.clone()));
    facts.push(("link valid until".to_owned(), utc(link.expires_at)));
    facts
}

/// The page of a link that can no longer be used, or `None` when it can.
fn unusable(link: &LinkRow, token_expires: NaiveDateTime, now: NaiveDateTime) -> Option<Page> {
    match link.state.as_str() {
        "used" => {
            let when = link.used_at.map(utc).unwrap_or_default();
            let outcome = link.outcome.clone().unwrap_or_default();
            let (message, refresh, tone) = match link.result.as_deref() {
                Some("decided") => (
                    format!(
                        "This link was used on {when}: “{}” was recorded as the decision.",
                        label(&outcome)
                    ),
                    false,
                    "note",
                ),
                Some("refused") => (
                    format!(
                        "This link was used on {when}, but the workflow engine refused the decision: {}. Nothing was decided.",
                        link.result_detail.clone().unwrap_or_default()
                    ),
                    false,
                    "bad",
                ),
                _ => (
                    format!(
                        "This link was used on {when} for “{}”; the decision is being recorded.",
                        label(&outcome)
                    ),
                    true,
                    "note",
                ),
            };
            Some(Page {
                status: 409,
                heading: "This link has already been used".to_owned(),
                message,
                tone,
                facts: facts_of(link),
                refresh,
                form: None,
                retry_after: None,
            })
        }
        "void" => Some(Page::refused(
            409,
            "This task no longer waits for you",
            format!(
                "{}. Nothing was decided with this link.",
                link.void_reason.clone().unwrap_or_default()
            ),
        )),
        _ if link.expires_at <= now || token_expires <= now => Some(Page::refused(
            410,
            "This link has expired",
            "Action links work for a limited time. Open the task in Meridian instead; nothing was decided.",
        )),
        _ => None,
    }
}

/// Looks up the link of `raw` and checks it and the person; the link when it may be used.
async fn usable(svc: &Notifier, req: &HttpRequest, raw: &str) -> Result<LinkRow, Page> {
    let invalid = || {
        Page::refused(
            404,
            "This link is not valid",
            "It may have been mistyped or cut. Nothing was decided.",
        )
    };
    let client = meridian_chassis::guesses::client(req);
    if let Some(wait) = svc.guesses.blocked(client) {
        return Err(Page::refused(
            429,
            "Too many wrong links",
            format!("Wait {wait} seconds, then open the link as it was sent. Nothing was decided."),
        )
        .retry_after(wait));
    }
    if !token::well_formed(raw) {
        svc.guesses.wrong(client);
        return Err(invalid());
    }
    let hash = token::hash(raw);
    let found = svc
        .db
        .run(move |conn| -> Result<_, DbError> { Ok(links::by_token(conn, &hash)?) })
        .await
        .map_err(|_| unavailable())?;
    let Some((link, token_expires)) = found else {
        svc.guesses.wrong(client);
        return Err(invalid());
    };
    if let Some(page) = unusable(&link, token_expires, svc.clock.now().naive_utc()) {
        return Err(page);
    }
    match signed_in(req) {
        Err(()) => Err(Page::refused(
            401,
            "Your sign-in is not valid",
            "Sign in again, then open the link. Nothing was decided.",
        )),
        Ok(Some(user)) if user != link.approver => Err(Page::refused(
            403,
            "This link was sent to someone else",
            format!(
                "You are signed in as {user}; this link is for {}. Nothing was decided.",
                link.approver
            ),
        )),
        Ok(None) if svc.config.require_login => Err(Page::refused(
            401,
            "Please sign in first",
            "This Meridian requires you to be signed in to use action links. Sign in, then open the link again.",
        )),
        Ok(_) => Ok(link),
    }
}

fn unavailable() -> Page {
    Page::refused(
        503,
        "Meridian is not available right now",
        "Try again in a moment. Nothing was decided.",
    )
}

fn secure(svc: &Notifier) -> bool {
    svc.config.public_url.starts_with("https://")
}

/// `?outcome=` of the e-mail's button, pre-selected on the page.
#[derive(Debug, Default, Deserialize)]
struct Preselect {
    outcome: Option<String>,
}

/// `GET /v1/actions/{token}`: the confirmation page (never decides).
pub async fn show(
    req: HttpRequest,
    path: web::Path<String>,
    svc: web::Data<Notifier>,
) -> HttpResponse {
    let raw = path.into_inner();
    let link = match usable(&svc, &req, &raw).await {
        Ok(link) => link,
        Err(page) => return page.respond(secure(&svc)),
    };
    let preselect: Preselect = serde_urlencoded::from_str(req.query_string()).unwrap_or_default();
    let csrf = match token::generate() {
        Ok(csrf) => csrf,
        Err(_) => return unavailable().respond(secure(&svc)),
    };
    let outcomes = link.outcomes();
    let chosen = preselect
        .outcome
        .filter(|o| outcomes.contains(o))
        .unwrap_or_default();
    Page {
        status: 200,
        heading: format!("Your decision: {}", link.title),
        message: format!(
            "{} waits for your decision. Check what it is about, choose, and confirm.",
            link.business_key
        ),
        tone: "note",
        facts: facts_of(&link),
        refresh: false,
        retry_after: None,
        form: Some(Form {
            action: format!("/v1/actions/{raw}"),
            csrf,
            outcomes: outcomes.iter().map(|o| (o.clone(), label(o))).collect(),
            chosen,
            fields: link
                .form()
                .into_iter()
                .map(|(name, field)| {
                    serde_json::json!({
                        "label": if field.description.is_empty() { name.replace('_', " ") } else { field.description.clone() },
                        "name": name,
                        "kind": field.kind.as_str(),
                        "required": field.required,
                        "options": field.allowed,
                    })
                })
                .collect(),
        }),
    }
    .respond(secure(&svc))
}

/// The confirmation form.
#[derive(Debug, Default)]
struct Confirm {
    csrf: String,
    outcome: Option<String>,
    comment: String,
    /// `field.<name>` inputs.
    fields: Vec<(String, String)>,
}

impl Confirm {
    fn parse(body: &[u8]) -> Option<Self> {
        if body.len() > 16 * 1024 {
            return None;
        }
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).ok()?;
        let mut form = Self::default();
        for (name, value) in pairs {
            match name.as_str() {
                "csrf" => form.csrf = value,
                "outcome" => form.outcome = Some(value),
                "comment" => form.comment = value,
                _ => {
                    if let Some(field) = name.strip_prefix("field.") {
                        form.fields.push((field.to_owned(), value));
                    }
                }
            }
        }
        Some(form)
    }
}

/// The task's form as filled in, typed; or the field at fault and why.
fn typed_fields(
    form: &std::collections::BTreeMap<String, meridian_chassis::fields::Field>,
    inputs: &[(String, String)],
) -> Result<serde_json::Map<String, Value>, (String, String)> {
    use meridian_chassis::fields::FieldType;
    let mut out = serde_json::Map::new();
    for (name, field) in form {
        let raw = inputs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.trim())
            .unwrap_or_default();
        if raw.is_empty() {
            if field.kind == FieldType::Boolean {
                out.insert(name.clone(), Value::Bool(false));
            } else if field.required {
                return Err((name.clone(), "is required".to_owned()));
            }
            continue;
        }
        let bad = |why: &str| (name.clone(), why.to_owned());
        let value = match field.kind {
            FieldType::String => {
                if !field.allowed.is_empty() && !field.allowed.iter().any(|a| a == raw) {
                    return Err(bad(&format!("must be one of {}", field.allowed.join(", "))));
                }
                Value::String(raw.to_owned())
            }
            FieldType::Integer => Value::from(
                raw.parse::<i64>()
                    .map_err(|_| bad("must be a whole number"))?,
            ),
            FieldType::Number => serde_json::Number::from_f64(
                raw.parse::<f64>().map_err(|_| bad("must be a number"))?,
            )
            .map(Value::Number)
            .ok_or_else(|| bad("must be a finite number"))?,
            FieldType::Boolean => Value::Bool(raw == "true" || raw == "on"),
            FieldType::StringList => Value::Array(
                raw.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| Value::String(s.to_owned()))
                    .collect(),
            ),
            FieldType::Object => match serde_json::from_str::<Value>(raw) {
                Ok(v @ Value::Object(_)) => v,
                _ => return Err(bad("must be a JSON object")),
            },
        };
        out.insert(name.clone(), value);
    }
    Ok(out)
}

/// Whether the request came from our own page: the cookie matches the field and a browser's
/// `Origin`, when sent, is ours.
fn same_origin(req: &HttpRequest, svc: &Notifier, csrf: &str) -> bool {
    let cookie = req.cookie(CSRF_COOKIE);
    let Some(cookie) = cookie else { return false };
    if csrf.is_empty() || !token::constant_time_eq(cookie.value().as_bytes(), csrf.as_bytes()) {
        return false;
    }
    if let Some(site) = req
        .headers()
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        && !matches!(site, "same-origin" | "none")
    {
        return false;
    }
    match req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
    {
        None => true,
        Some(origin) => {
            let info = req.connection_info();
            let own = format!("{}://{}", info.scheme(), info.host());
            let public = url::Url::parse(&svc.config.public_url)
                .map(|u| u.origin().ascii_serialization())
                .unwrap_or_default();
            origin == own || origin == public
        }
    }
}

/// `POST /v1/actions/{token}`: confirms the decision.
pub async fn confirm(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    svc: web::Data<Notifier>,
) -> HttpResponse {
    let https = secure(&svc);
    let raw = path.into_inner();
    let form = match Confirm::parse(&body) {
        Some(form) => form,
        None => {
            return Page::refused(
                400,
                "The form is not valid",
                "Open the link again and use its form. Nothing was decided.",
            )
            .respond(https);
        }
    };
    if !same_origin(&req, &svc, &form.csrf) {
        return Page::refused(
            403,
            "The form could not be checked",
            "It expired, or was sent from another site. Open the link again. Nothing was decided.",
        )
        .respond(https);
    }
    let link = match usable(&svc, &req, &raw).await {
        Ok(link) => link,
        Err(page) => return page.respond(https),
    };
    let outcomes = link.outcomes();
    let Some(outcome) = form.outcome.filter(|o| outcomes.contains(o)) else {
        return Page::refused(
            400,
            "Choose a decision",
            format!(
                "outcome must be one of: {}. Nothing was decided.",
                outcomes.join(", ")
            ),
        )
        .respond(https);
    };
    let comment = form.comment.trim().to_owned();
    if comment.chars().count() > 2000 {
        return Page::refused(
            400,
            "The comment is too long",
            "comment must be at most 2000 characters. Nothing was decided.",
        )
        .respond(https);
    }
    let fields = match typed_fields(&link.form(), &form.fields) {
        Ok(fields) => fields,
        Err((field, why)) => {
            return Page::refused(
                400,
                "A field needs your attention",
                format!("{field} {why}. Nothing was decided; open the link again to fill it in."),
            )
            .respond(https);
        }
    };
    let now = svc.clock.now();
    let decided = link.clone();
    let chosen = label(&outcome);
    let trace = meridian_chassis::telemetry::trace_id_of(&req);
    let result = svc
        .db
        .transaction(move |conn| -> Result<Result<(), Page>, DbError> {
            // Authorisation again, now: the approver is still someone Meridian notifies.
            let Some(person) = recipients::find(conn, &decided.approver)?.filter(|r| r.active)
            else {
                return Ok(Err(Page::refused(
                    403,
                    "This link no longer works for you",
                    "You are no longer in Meridian's directory of approvers. Nothing was decided.",
                )));
            };
            let comment = (!comment.is_empty()).then_some(comment.as_str());
            if !links::consume(conn, &decided.id, &outcome, comment, now)? {
                return Ok(Err(Page::refused(
                    409,
                    "This link has already been used",
                    "Another request used it first. Nothing more was decided.",
                )));
            }
            let command = Envelope {
                id: uuid::Uuid::now_v7(),
                event_type: DECIDE.to_owned(),
                source: "/meridian/notifier".to_owned(),
                subject: decided.task_id.clone(),
                time: now,
                correlation_id: Some(format!("action-link:{}", decided.id)),
                causation_id: trace.clone(),
                actor: Some(decided.approver.clone()),
                payload: DecideTask {
                    command_id: decided.id.clone(),
                    task_id: decided.task_id.clone(),
                    actor: decided.approver.clone(),
                    roles: person.roles(),
                    outcome: outcome.clone(),
                    comment: comment.unwrap_or_default().to_owned(),
                    via: "action-link".to_owned(),
                    fields_json: if fields.is_empty() {
                        String::new()
                    } else {
                        Value::Object(fields.clone()).to_string()
                    },
                }
                .encode_to_vec(),
            };
            meridian_chassis::outbox::enqueue(conn, &command)?;
            audit::record(
                conn,
                audit::Entry::<Value, Value> {
                    actor: &decided.approver,
                    action: "action_link.used",
                    entity_type: "action_link",
                    entity_id: &decided.id,
                    before: None,
                    after: Some(&serde_json::json!({
                        "task_id": decided.task_id, "outcome": outcome, "comment": comment,
                        "fields": fields,
                    })),
                    at: now,
                },
            )?;
            Ok(Ok(()))
        })
        .await;
    match result {
        Ok(Ok(())) => {
            svc.waker.wake();
            Page {
                status: 202,
                heading: "Your decision is being recorded".to_owned(),
                message: format!(
                    "You chose “{chosen}”. The workflow engine is recording it; this page shows its answer in a moment."
                ),
                tone: "note",
                facts: facts_of(&link),
                refresh: true,
                retry_after: None,
                form: None,
            }
            .respond(https)
        }
        Ok(Err(page)) => page.respond(https),
        Err(_) => unavailable().respond(https),
    }
}
