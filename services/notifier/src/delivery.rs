//! The sender: takes due notifications and webhook deliveries, sends each, and records what
//! came of it — delivered, retried later with backoff, or failed after the last attempt (or at
//! once when it can never succeed). A notification with an action link gets a fresh token at
//! this moment; only its hash is stored, and it is forgotten again when the send fails.

use std::time::Duration;

use chrono::{DateTime, Utc};
use meridian_chassis::db::DbError;
use secrecy::ExposeSecret;

use crate::Notifier;
use crate::channels::SendError;
use crate::channels::email::Mail;
use crate::config::ChatKind;
use crate::domain::render::{self, Message};
use crate::domain::{backoff, signature, token};
use crate::events::Draft;
use crate::store::links::{self, LinkRow};
use crate::store::queue::{self, Attempt, Queue};
use crate::store::{notifications, recipients, webhooks};

/// Runs the sender for as long as the process lives.
pub async fn run(svc: Notifier) {
    let poll = Duration::from_millis(svc.config.delivery.poll_ms);
    loop {
        match tick(&svc).await {
            Ok(0) => {
                let _ = tokio::time::timeout(poll, svc.due.notified()).await;
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%error, "the sender could not reach its database");
                tokio::time::sleep(poll).await;
            }
        }
    }
}

/// Sends what is due now; how many items it took.
///
/// # Errors
/// The database failing.
pub async fn tick(svc: &Notifier) -> Result<usize, DbError> {
    let now = svc.clock.now();
    let lease = chrono::Duration::seconds(svc.config.delivery.lease_seconds);
    let limit = svc.config.delivery.batch;
    let (due, hooks) = svc
        .db
        .transaction(move |conn| -> Result<_, DbError> {
            Ok((
                queue::claim(conn, Queue::Notifications, now, lease, limit)?,
                queue::claim(conn, Queue::Deliveries, now, lease, limit)?,
            ))
        })
        .await?;
    let taken = due.len() + hooks.len();
    for id in due {
        send_notification(svc, id).await?;
    }
    for id in hooks {
        send_delivery(svc, id).await?;
    }
    Ok(taken)
}

/// What a failure leads to after `attempts` attempts.
fn after_failure(svc: &Notifier, error: SendError, attempts: i32, now: DateTime<Utc>) -> Attempt {
    let status = error.status.map(i32::from);
    if error.permanent {
        return Attempt::Failed {
            error: error.message,
            status,
        };
    }
    let d = &svc.config.delivery;
    let jitter = f64::from(uuid::Uuid::new_v4().as_bytes()[0]) / 255.0;
    match backoff::next_attempt(
        now,
        attempts,
        d.max_attempts,
        d.backoff_base_seconds,
        d.backoff_max_seconds,
        jitter,
    ) {
        Some(at) => Attempt::Retry {
            at,
            error: error.message,
            status,
        },
        None => Attempt::Failed {
            error: format!("{} (after {attempts} attempts)", error.message),
            status,
        },
    }
}

async fn record(svc: &Notifier, queue: Queue, id: String, attempt: Attempt) -> Result<(), DbError> {
    let now = svc.clock.now();
    if let Attempt::Failed { error, .. } = &attempt {
        tracing::warn!(?queue, id, error, "a delivery failed for good");
    }
    svc.db
        .transaction(move |conn| -> Result<(), DbError> {
            Ok(queue::record(conn, queue, &id, &attempt, now)?)
        })
        .await?;
    Ok(())
}

/// The action link's address for `token`.
fn link_url(svc: &Notifier, token: &str) -> String {
    format!(
        "{}/v1/actions/{token}",
        svc.config.public_url.trim_end_matches('/')
    )
}

/// The message of a draft, with a button per outcome when there is a token.
fn message(svc: &Notifier, draft: Draft, link: Option<(&LinkRow, &str)>) -> Message {
    let (actions, footer) = match link {
        Some((link, token)) => {
            let url = link_url(svc, token);
            let actions = draft
                .outcomes
                .iter()
                .map(|o| (label(o), format!("{url}?outcome={o}")))
                .collect();
            let expires = link.expires_at.format("%Y-%m-%d %H:%M UTC");
            (
                actions,
                format!(
                    "This link is for you only and works once, until {expires}. Opening it shows \
                     what you are deciding; nothing is recorded until you confirm."
                ),
            )
        }
        None => (
            Vec::new(),
            "You receive this because a Meridian notification rule names you.".to_owned(),
        ),
    };
    Message {
        title: draft.title,
        intro: draft.intro,
        facts: draft.facts,
        actions,
        footer,
    }
}

/// `approved` → `Approve`, `rejected` → `Reject`, anything else capitalised.
pub fn label(outcome: &str) -> String {
    match outcome {
        "approved" => "Approve".to_owned(),
        "rejected" => "Reject".to_owned(),
        other => {
            let mut chars = other.chars();
            chars.next().map_or_else(String::new, |c| {
                c.to_uppercase().collect::<String>() + &chars.as_str().replace('_', " ")
            })
        }
    }
}

async fn send_notification(svc: &Notifier, id: String) -> Result<(), DbError> {
    let lookup = id.clone();
    let found = svc
        .db
        .run(move |conn| -> Result<_, DbError> {
            let Some(row) = notifications::find(conn, &lookup)? else {
                return Ok(None);
            };
            let link = match &row.link_id {
                Some(link_id) => links::find(conn, link_id)?,
                None => None,
            };
            let recipient = recipients::find(conn, &row.recipient)?;
            Ok(Some((row, link, recipient)))
        })
        .await?;
    let Some((row, link, recipient)) = found else {
        return Ok(());
    };
    let now = svc.clock.now();
    let draft: Draft = serde_json::from_str(&row.context).unwrap_or(Draft {
        title: row.title.clone(),
        intro: String::new(),
        facts: Vec::new(),
        outcomes: Vec::new(),
    });
    // A token for this message, unless the link has stopped working meanwhile.
    let mut issued = None;
    if let Some(link) = &link {
        if link.state != "active" || link.expires_at <= now.naive_utc() {
            let reason = link
                .void_reason
                .clone()
                .unwrap_or_else(|| format!("the link is {}", link.state));
            return record(
                svc,
                Queue::Notifications,
                id,
                Attempt::Failed {
                    error: format!("not sent: {reason}"),
                    status: None,
                },
            )
            .await;
        }
        let token = token::generate().map_err(|e| DbError::Unavailable(e.to_string()))?;
        let hash = token::hash(&token);
        let (stored, link_row) = (hash.clone(), link.clone());
        svc.db
            .transaction(move |conn| -> Result<(), DbError> {
                Ok(links::add_token(conn, &link_row, &stored, now)?)
            })
            .await?;
        issued = Some((token, hash));
    }
    let message = message(
        svc,
        draft,
        link.as_ref()
            .zip(issued.as_ref())
            .map(|(l, (t, _))| (l, t.as_str())),
    );
    let result = deliver(
        svc,
        &row.channel,
        &row.destination,
        recipient.as_ref(),
        &message,
    )
    .await;
    let attempt = match result {
        Ok(()) => Attempt::Delivered { status: None },
        Err(error) => {
            if let Some((_, hash)) = issued {
                svc.db
                    .transaction(move |conn| -> Result<(), DbError> {
                        Ok(links::remove_token(conn, &hash)?)
                    })
                    .await?;
            }
            after_failure(svc, error, row.attempts, now)
        }
    };
    record(svc, Queue::Notifications, id, attempt).await
}

/// Sends `message` on `channel` to `destination`.
async fn deliver(
    svc: &Notifier,
    channel: &str,
    destination: &str,
    recipient: Option<&recipients::RecipientRow>,
    message: &Message,
) -> Result<(), SendError> {
    match channel {
        "email" => {
            let mail = Mail {
                to: destination.to_owned(),
                subject: message.title.clone(),
                text: render::text(message).map_err(|e| SendError::permanent(e.to_string()))?,
                html: render::html(message).map_err(|e| SendError::permanent(e.to_string()))?,
            };
            svc.mailer.send(&mail).await
        }
        "slack" | "teams" => {
            let url = if destination == "personal" {
                recipient
                    .and_then(|r| {
                        if channel == "slack" {
                            r.slack_webhook.clone()
                        } else {
                            r.teams_webhook.clone()
                        }
                    })
                    .ok_or_else(|| SendError::permanent(format!("no personal {channel} webhook")))?
            } else {
                let named = svc.config.chat.get(destination).ok_or_else(|| {
                    SendError::permanent(format!("no chat destination `{destination}`"))
                })?;
                named.url.expose_secret().to_owned()
            };
            let kind = if channel == "slack" {
                ChatKind::Slack
            } else {
                ChatKind::Teams
            };
            let body = match kind {
                ChatKind::Slack => render::slack(message),
                ChatKind::Teams => render::teams(message),
            };
            svc.http
                .post(&url, "application/json", Vec::new(), body.to_string())
                .await
                .map(|_| ())
        }
        other => Err(SendError::permanent(format!("unknown channel {other}"))),
    }
}

async fn send_delivery(svc: &Notifier, id: String) -> Result<(), DbError> {
    let lookup = id.clone();
    let found = svc
        .db
        .run(move |conn| -> Result<_, DbError> {
            let Some(delivery) = webhooks::delivery(conn, &lookup)? else {
                return Ok(None);
            };
            let hook = webhooks::find(conn, &delivery.webhook_id)?;
            Ok(hook.map(|h| (delivery, h)))
        })
        .await?;
    let Some((delivery, hook)) = found else {
        return Ok(());
    };
    if !hook.active {
        return record(
            svc,
            Queue::Deliveries,
            id,
            Attempt::Failed {
                error: "the subscription was deleted".to_owned(),
                status: None,
            },
        )
        .await;
    }
    let now = svc.clock.now();
    let timestamp = now.timestamp();
    let headers = vec![
        ("webhook-id".to_owned(), delivery.id.clone()),
        ("webhook-timestamp".to_owned(), timestamp.to_string()),
        (
            "webhook-signature".to_owned(),
            signature::sign(
                hook.secret.as_bytes(),
                &delivery.id,
                timestamp,
                delivery.body.as_bytes(),
            ),
        ),
        ("ce-id".to_owned(), delivery.event_id.clone()),
        ("ce-type".to_owned(), delivery.event_type.clone()),
    ];
    let attempt = match svc
        .http
        .post(
            &hook.url,
            "application/cloudevents+json; charset=utf-8",
            headers,
            delivery.body.clone(),
        )
        .await
    {
        Ok(status) => Attempt::Delivered {
            status: Some(i32::from(status)),
        },
        Err(error) => after_failure(svc, error, delivery.attempts, now),
    };
    record(svc, Queue::Deliveries, id, attempt).await
}
