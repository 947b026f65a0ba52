//! Satisfaction (8.3.2): surveys answered through their signed, single-use, expiring links;
//! periodic surveys per customer; scores aggregated per service and customer.

use std::collections::BTreeMap;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use meridian_chassis::Problem;
use meridian_chassis::auth::{AnyRole, Authenticated};
use meridian_chassis::problem::ProblemBody;
use meridian_chassis::problem::{InvalidParam, Query, codes};
use meridian_proto::relationship::v1::SatisfactionRecorded;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::{RelationshipManager, checked, text};
use crate::Relationship;
use crate::domain::token::{self, LinkError};
use crate::events::SYSTEM;
use crate::store::tickets::{self as store, ResponseRow, SurveyRow};
use crate::store::{audit, customers, publish};

/// `POST /v1/customers/{id}/surveys`: sends a survey now to each of the customer's contacts,
/// about each service it receives.
#[utoipa::path(post, path = "/v1/customers/{id}/surveys", tag = "satisfaction",
    params(("id" = String, Path, description = "Customer id")),
    responses(
        (status = 200, description = "How many surveys were sent", body = Object),
        (status = 404, description = "No such customer", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn send_periodic(
    who: Authenticated<RelationshipManager>,
    id: actix_web::web::Path<String>,
    svc: web::Data<Relationship>,
) -> Result<HttpResponse, Problem> {
    let (now, actor, key, config) = (
        svc.clock.now(),
        who.subject.clone(),
        id.into_inner(),
        svc.config.clone(),
    );
    let sent = svc
        .db
        .transaction(move |conn| -> Result<usize, Problem> {
            let mut customer = customers::customer(conn, &key)?
                .ok_or_else(|| Problem::new(codes::CUSTOMER_NOT_FOUND))?;
            let sent =
                crate::scheduler::periodic_surveys(conn, &config, &mut customer, &actor, now)?;
            audit(
                conn,
                &actor,
                "survey.sent",
                "customer",
                &key,
                &json!({"surveys": sent}),
                now,
            )?;
            Ok(sent)
        })
        .await?;
    svc.waker.wake();
    Ok(HttpResponse::Ok().json(json!({"sent": sent})))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// An HTML page, never cached, never framed, with no referrer (the link is a credential).
fn page(status: StatusCode, heading: &str, body: &str) -> HttpResponse {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem;color:#1a1a1a}}\
         fieldset{{border:1px solid #888;padding:1rem}}label{{display:block;margin:.4rem 0}}\
         textarea{{width:100%;min-height:6rem}}button{{margin-top:1rem;padding:.5rem 1.5rem;font-size:1rem}}</style></head>\
         <body><main><h1>{title}</h1>{body}</main></body></html>",
        title = escape(heading),
    );
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header(("x-robots-tag", "noindex, nofollow"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ))
        .body(html)
}

/// Why a link does not open its survey.
fn refused(error: LinkError) -> Problem {
    match error {
        LinkError::Invalid => Problem::new(codes::SURVEY_LINK_INVALID),
        LinkError::Expired => Problem::new(codes::SURVEY_LINK_EXPIRED),
    }
}

/// The survey a token opens, unanswered. A client that guesses wrong too often is held back
/// (429) before its token is even looked at.
async fn open(svc: &Relationship, req: &HttpRequest, token: &str) -> Result<SurveyRow, Problem> {
    let client = meridian_chassis::guesses::client(req);
    if let Some(wait) = svc.guesses.blocked(client) {
        return Err(Problem::new(codes::TOO_MANY_ATTEMPTS)
            .detail(format!("wait {wait} seconds"))
            .header(header::RETRY_AFTER, header::HeaderValue::from(wait)));
    }
    let now = svc.clock.now();
    let secret = svc.config.surveys.link_secret.expose_secret().as_bytes();
    let id = token::verify(secret, token, now.timestamp()).map_err(|e| {
        if e == LinkError::Invalid {
            svc.guesses.wrong(client);
        }
        refused(e)
    })?;
    let survey = svc
        .db
        .run(move |conn| -> Result<_, Problem> { Ok(store::survey(conn, &id.to_string())?) })
        .await?
        .ok_or_else(|| Problem::new(codes::SURVEY_LINK_INVALID))?;
    if survey.responded_at.is_some() {
        return Err(Problem::new(codes::SURVEY_ALREADY_ANSWERED));
    }
    Ok(survey)
}

fn problem_page(problem: &Problem) -> HttpResponse {
    let code = problem.code();
    let message = match code.code {
        "survey_link_expired" => "This survey has closed. Thank you all the same.",
        "survey_already_answered" => "This survey was answered already. Thank you.",
        "too_many_attempts" => {
            "Too many wrong links were tried from here. Please wait a minute, then use the link from your message."
        }
        _ => {
            "This link is not a survey link of ours. Please use the link from your message as it was sent."
        }
    };
    let mut response = page(
        StatusCode::from_u16(code.status).unwrap_or(StatusCode::BAD_REQUEST),
        code.title,
        &format!("<p>{}</p>", escape(message)),
    );
    if code.code == codes::TOO_MANY_ATTEMPTS.code {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from(60));
    }
    response
}

/// `GET /v1/surveys/respond/{token}`: the survey's page (never records anything, so a link
/// prefetched by a mail scanner is still unanswered).
#[utoipa::path(get, path = "/v1/surveys/respond/{token}", tag = "satisfaction",
    params(("token" = String, Path, description = "The link's signed token")),
    responses(
        (status = 200, description = "The survey form (HTML)"),
        (status = 404, description = "Not a link of ours (HTML)"),
        (status = 409, description = "Answered already (HTML)"),
        (status = 410, description = "Expired (HTML)"),
    ))]
pub async fn survey_page(
    req: HttpRequest,
    token: web::Path<String>,
    svc: web::Data<Relationship>,
) -> HttpResponse {
    let survey = match open(&svc, &req, &token).await {
        Ok(survey) => survey,
        Err(problem) => return problem_page(&problem),
    };
    let about = if survey.ticket_number.is_empty() {
        if survey.service.is_empty() {
            "our service to you".to_owned()
        } else {
            format!("the {} service", survey.service)
        }
    } else {
        format!("{} ({})", survey.ticket_number, survey.service)
    };
    let scores = (1..=5)
        .map(|s| {
            let label = ["very dissatisfied", "dissatisfied", "neutral", "satisfied", "very satisfied"][s - 1];
            format!("<label><input type=\"radio\" name=\"score\" value=\"{s}\" required> {s} — {label}</label>")
        })
        .collect::<String>();
    page(
        StatusCode::OK,
        "How did we do?",
        &format!(
            "<p>About {about}.</p><form method=\"post\"><fieldset><legend>Your satisfaction</legend>{scores}</fieldset>\
             <label for=\"comment\">Anything to add (optional)</label><textarea id=\"comment\" name=\"comment\" maxlength=\"5000\"></textarea>\
             <button type=\"submit\">Send</button></form>",
            about = escape(&about)
        ),
    )
}

/// An answer.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResponseInput {
    /// 1 (very dissatisfied) to 5 (very satisfied).
    pub score: i32,
    /// Comment.
    #[serde(default)]
    pub comment: String,
}

fn parse_answer(req: &HttpRequest, body: &[u8]) -> Result<ResponseInput, Problem> {
    let json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let parsed: Result<ResponseInput, String> = if json {
        serde_json::from_slice(body).map_err(|e| e.to_string())
    } else {
        serde_urlencoded::from_bytes(body).map_err(|e| e.to_string())
    };
    let input = parsed.map_err(|_| Problem::field("score", "must be a whole number 1 to 5"))?;
    let mut params = Vec::new();
    if !(1..=5).contains(&input.score) {
        params.push(InvalidParam::new("score", "must be a whole number 1 to 5"));
    }
    text("comment", &input.comment, 5000, false, &mut params);
    checked(params)?;
    Ok(input)
}

/// Records an answer once: the survey is marked answered and the response and
/// `relationship.satisfaction.recorded` are written in the same transaction.
async fn record(
    svc: &Relationship,
    req: &HttpRequest,
    token: &str,
    input: ResponseInput,
) -> Result<(), Problem> {
    let survey = open(svc, req, token).await?;
    let now = svc.clock.now();
    svc.db
        .transaction(move |conn| -> Result<(), Problem> {
            if !store::mark_responded(conn, &survey.id, now.naive_utc())? {
                return Err(Problem::new(codes::SURVEY_ALREADY_ANSWERED));
            }
            let row = ResponseRow {
                id: uuid::Uuid::now_v7().to_string(),
                survey_id: survey.id.clone(),
                score: input.score,
                comment: input.comment,
                service: survey.service.clone(),
                customer: survey.customer.clone(),
                at: now.naive_utc(),
            };
            store::add_response(conn, &row)?;
            audit(
                conn,
                &survey.recipient,
                "survey.answered",
                "survey",
                &survey.id,
                &row,
                now,
            )?;
            if !row.service.is_empty() {
                let message = SatisfactionRecorded {
                    response_id: row.id.clone(),
                    survey_id: survey.id.clone(),
                    ticket_id: survey.ticket_id.clone().unwrap_or_default(),
                    service: row.service.clone(),
                    customer: row.customer.clone(),
                    score: row.score,
                    comment: row.comment.clone(),
                };
                publish(
                    conn,
                    "relationship.satisfaction.recorded",
                    &survey.id,
                    SYSTEM,
                    &message,
                    now,
                )?;
            }
            Ok(())
        })
        .await?;
    svc.waker.wake();
    Ok(())
}

/// `POST /v1/surveys/respond/{token}`: records the answer (a form post from the page, or JSON).
/// Forms get an HTML page back, JSON a status or a problem.
#[utoipa::path(post, path = "/v1/surveys/respond/{token}", tag = "satisfaction",
    request_body(content((ResponseInput = "application/json"), (ResponseInput = "application/x-www-form-urlencoded"))),
    params(("token" = String, Path, description = "The link's signed token")),
    responses(
        (status = 200, description = "Recorded: JSON for JSON, a page for a form", content((Object = "application/json"), (String = "text/html"))),
        (status = 400, description = "A bad field, named", content((ProblemBody = "application/problem+json"), (String = "text/html"))),
        (status = 404, description = "Not a link of ours", content((ProblemBody = "application/problem+json"), (String = "text/html"))),
        (status = 409, description = "Answered already", content((ProblemBody = "application/problem+json"), (String = "text/html"))),
        (status = 410, description = "Expired", content((ProblemBody = "application/problem+json"), (String = "text/html"))),
        (status = "default", description = "Any other failure: a problem for JSON, a page for a form", content((ProblemBody = "application/problem+json"), (String = "text/html"))),
    ))]
pub async fn respond(
    req: HttpRequest,
    token: web::Path<String>,
    body: web::Bytes,
    svc: web::Data<Relationship>,
) -> HttpResponse {
    let json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let outcome = match parse_answer(&req, &body) {
        Ok(input) => record(&svc, &req, &token, input).await,
        Err(problem) => Err(problem),
    };
    match (outcome, json) {
        (Ok(()), true) => HttpResponse::Ok().json(json!({"recorded": true})),
        (Ok(()), false) => page(
            StatusCode::OK,
            "Thank you",
            "<p>Your answer is recorded.</p>",
        ),
        (Err(problem), true) => actix_web::ResponseError::error_response(&problem),
        (Err(problem), false) if problem.code().status == 400 => page(
            StatusCode::BAD_REQUEST,
            "Please choose a score",
            "<p>Choose a score from 1 to 5, then send the form again (use your browser's back button).</p>",
        ),
        (Err(problem), false) => problem_page(&problem),
    }
}

/// `GET /v1/satisfaction` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ScoresQuery {
    /// From (RFC 3339; default 90 days before `to`).
    pub from: Option<DateTime<Utc>>,
    /// To (RFC 3339; default now).
    pub to: Option<DateTime<Utc>>,
    /// Of this service.
    pub service: Option<String>,
    /// Of this customer.
    pub customer: Option<String>,
}

/// Scores of one service and customer.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct Scores {
    /// The service.
    pub service: String,
    /// The customer.
    pub customer: String,
    /// Answers.
    pub responses: usize,
    /// Average score.
    pub average: Option<f64>,
    /// Answers per score, `1` to `5`.
    pub distribution: BTreeMap<i32, usize>,
}

/// The scores of a period.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScoresView {
    /// From.
    pub from: DateTime<Utc>,
    /// To.
    pub to: DateTime<Utc>,
    /// Surveys sent in the period.
    pub surveys_sent: i64,
    /// Answers in the period.
    pub responses: usize,
    /// Answers per survey sent, percent.
    pub response_rate: Option<f64>,
    /// Average over all answers.
    pub average: Option<f64>,
    /// Per service and customer.
    pub groups: Vec<Scores>,
}

fn add(scores: &mut Scores, score: i32) {
    scores.responses += 1;
    *scores.distribution.entry(score).or_default() += 1;
}

#[expect(clippy::cast_precision_loss, reason = "counts of answers")]
fn average(scores: &Scores) -> Option<f64> {
    let total: usize = scores
        .distribution
        .iter()
        .map(|(s, n)| usize::try_from(*s).unwrap_or(0) * n)
        .sum();
    (scores.responses > 0)
        .then(|| ((total as f64 / scores.responses as f64) * 100.0).round() / 100.0)
}

/// `GET /v1/satisfaction`: scores aggregated per service and customer, with the response rate.
#[utoipa::path(get, path = "/v1/satisfaction", tag = "satisfaction", params(ScoresQuery),
    responses(
        (status = 200, description = "Scores", body = ScoresView),
        (status = 400, description = "A bad parameter, named", body = meridian_chassis::problem::ProblemBody),
    ),
    security(("bearer" = [])))]
pub async fn scores(
    _who: Authenticated<AnyRole>,
    query: Query<ScoresQuery>,
    svc: web::Data<Relationship>,
) -> Result<HttpResponse, Problem> {
    let query = query.0;
    let to = query.to.unwrap_or_else(|| svc.clock.now());
    let from = query.from.unwrap_or(to - chrono::Duration::days(90));
    if from >= to {
        return Err(Problem::field("from", "must be before to"));
    }
    let (service, customer) = (query.service, query.customer);
    let (rows, sent) = svc
        .db
        .run(move |conn| -> Result<_, Problem> {
            let (f, t) = (from.naive_utc(), to.naive_utc());
            let rows = store::responses(conn, f, t, service.clone(), customer.clone())?;
            let sent = store::surveys_sent(conn, f, t, service, customer)?;
            Ok((rows, sent))
        })
        .await?;
    let mut all = Scores::default();
    let mut groups: BTreeMap<(String, String), Scores> = BTreeMap::new();
    for row in &rows {
        add(&mut all, row.score);
        let group = groups
            .entry((row.service.clone(), row.customer.clone()))
            .or_insert_with(|| Scores {
                service: row.service.clone(),
                customer: row.customer.clone(),
                ..Scores::default()
            });
        add(group, row.score);
    }
    let groups: Vec<Scores> = groups
        .into_values()
        .map(|mut g| {
            g.average = average(&g);
            g
        })
        .collect();
    #[expect(clippy::cast_precision_loss, reason = "counts of surveys")]
    let rate = (sent > 0).then(|| ((rows.len() as f64 / sent as f64) * 1000.0).round() / 10.0);
    Ok(HttpResponse::Ok().json(ScoresView {
        from,
        to,
        surveys_sent: sent,
        responses: rows.len(),
        response_rate: rate,
        average: average(&all),
        groups,
    }))
}
