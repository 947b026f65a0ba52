//! What a notification says, rendered for each channel: e-mail (plain text and HTML), Slack
//! (Block Kit) and Microsoft Teams (an Adaptive Card). Templates are minijinja, with HTML
//! escaped automatically; a routing rule may bring its own subject and body templates.

use std::sync::OnceLock;

use minijinja::{AutoEscape, Environment, context};
use serde::Serialize;
use serde_json::{Value, json};

/// A rendered message, channel-neutral.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Message {
    /// The subject line.
    pub title: String,
    /// The first paragraph.
    pub intro: String,
    /// Label and value pairs (what is being decided).
    pub facts: Vec<(String, String)>,
    /// Buttons: label and address.
    pub actions: Vec<(String, String)>,
    /// The closing line (why they got it, when the link expires).
    pub footer: String,
}

const TEXT: &str = "{{ intro }}\n{% for f in facts %}\n{{ f[0] }}: {{ f[1] }}{% endfor %}\n{% for a in actions %}\n{{ a[0] }}: {{ a[1] }}{% endfor %}\n\n-- \n{{ footer }}\n";

const HTML: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title></head>
<body style="font-family: system-ui, sans-serif; color: #1b1b1b; max-width: 40rem;">
<h1 style="font-size: 1.25rem;">{{ title }}</h1>
<p>{{ intro }}</p>
{% if facts %}<table role="presentation" style="border-collapse: collapse;">{% for f in facts %}
<tr><th scope="row" style="text-align: left; padding: 0.25rem 1rem 0.25rem 0;">{{ f[0] }}</th><td style="padding: 0.25rem 0;">{{ f[1] }}</td></tr>{% endfor %}
</table>{% endif %}
{% if actions %}<p>{% for a in actions %}<a href="{{ a[1] }}" style="display: inline-block; margin: 0.5rem 0.5rem 0 0; padding: 0.5rem 1rem; background: #0b57d0; color: #ffffff; text-decoration: none; border-radius: 4px;">{{ a[0] }}</a>{% endfor %}</p>{% endif %}
<p style="color: #555555; font-size: 0.875rem;">{{ footer }}</p>
</body></html>
"#;

fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html") {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });
        // Both are constants checked by the tests below.
        let _ = env.add_template("message.txt", TEXT);
        let _ = env.add_template("message.html", HTML);
        env
    })
}

/// The plain-text body.
///
/// # Errors
/// The template failing (a bug).
pub fn text(message: &Message) -> Result<String, minijinja::Error> {
    environment().get_template("message.txt")?.render(message)
}

/// The HTML body.
///
/// # Errors
/// The template failing (a bug).
pub fn html(message: &Message) -> Result<String, minijinja::Error> {
    environment().get_template("message.html")?.render(message)
}

/// The Slack incoming-webhook payload: a section and a button per action (each opens the
/// action's page; nothing is decided from the chat itself).
pub fn slack(message: &Message) -> Value {
    let mut text = format!(
        "*{}*\n{}",
        escape_mrkdwn(&message.title),
        escape_mrkdwn(&message.intro)
    );
    for (label, value) in &message.facts {
        text.push_str(&format!(
            "\n*{}:* {}",
            escape_mrkdwn(label),
            escape_mrkdwn(value)
        ));
    }
    let mut blocks = vec![json!({"type": "section", "text": {"type": "mrkdwn", "text": text}})];
    if !message.actions.is_empty() {
        let buttons: Vec<Value> = message
            .actions
            .iter()
            .map(|(label, url)| {
                json!({"type": "button", "text": {"type": "plain_text", "text": label}, "url": url})
            })
            .collect();
        blocks.push(json!({"type": "actions", "elements": buttons}));
    }
    blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": escape_mrkdwn(&message.footer)}]}));
    json!({"text": message.title, "blocks": blocks})
}

/// The Microsoft Teams incoming-webhook payload: an Adaptive Card with a fact set and an
/// `Action.OpenUrl` per action.
pub fn teams(message: &Message) -> Value {
    let facts: Vec<Value> = message
        .facts
        .iter()
        .map(|(title, value)| json!({"title": title, "value": value}))
        .collect();
    let actions: Vec<Value> = message
        .actions
        .iter()
        .map(|(title, url)| json!({"type": "Action.OpenUrl", "title": title, "url": url}))
        .collect();
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": [
                    {"type": "TextBlock", "text": message.title, "weight": "Bolder", "size": "Medium", "wrap": true},
                    {"type": "TextBlock", "text": message.intro, "wrap": true},
                    {"type": "FactSet", "facts": facts},
                    {"type": "TextBlock", "text": message.footer, "isSubtle": true, "wrap": true, "size": "Small"}
                ],
                "actions": actions
            }
        }]
    })
}

/// Slack's mrkdwn control characters, escaped as Slack asks.
fn escape_mrkdwn(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Checks a rule's template; the error names the line.
///
/// # Errors
/// A syntax error.
pub fn check_template(source: &str) -> Result<(), String> {
    let env = Environment::new();
    env.template_from_str(source)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Renders a rule's template over the event (`event.type`, `event.subject`, `event.time`,
/// `event.actor`, `event.data`).
///
/// # Errors
/// The template failing on this event (a missing attribute is empty, not an error).
pub fn rule_template(source: &str, event: &Value) -> Result<String, String> {
    let env = Environment::new();
    env.render_str(source, context! { event => event })
        .map_err(|e| e.to_string())
}

/// A value as a line of text: strings as they are, the rest as compact JSON.
pub fn display(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Label and value pairs from a JSON object (the summary of a task, an event's fields),
/// nested objects flattened with dotted labels, at most `limit`.
pub fn facts(value: &Value, limit: usize) -> Vec<(String, String)> {
    fn walk(prefix: &str, value: &Value, out: &mut Vec<(String, String)>, limit: usize) {
        if out.len() >= limit {
            return;
        }
        match value {
            Value::Object(map) => {
                for (key, inner) in map {
                    let label = if prefix.is_empty() {
                        key.replace('_', " ")
                    } else {
                        format!("{prefix}.{}", key.replace('_', " "))
                    };
                    walk(&label, inner, out, limit);
                }
            }
            Value::Null => {}
            Value::String(s) if s.is_empty() => {}
            Value::Array(items) if items.is_empty() => {}
            other => out.push((prefix.to_owned(), display(other))),
        }
    }
    let mut out = Vec::new();
    match value {
        Value::Object(_) => walk("", value, &mut out, limit),
        Value::Null => {}
        other => out.push(("summary".to_owned(), display(other))),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Message {
        Message {
            title: "Approval needed: CAB vote on CHG0001000".to_owned(),
            intro: "Change <b>CHG0001000</b> waits for your decision.".to_owned(),
            facts: vec![("risk".to_owned(), "high & wide".to_owned())],
            actions: vec![(
                "Approve".to_owned(),
                "https://m.example/v1/actions/t?outcome=approved".to_owned(),
            )],
            footer: "The link works once, until 29 Nov 2026 12:00 UTC.".to_owned(),
        }
    }

    #[test]
    fn html_escapes_what_it_is_given() {
        let html = html(&sample()).unwrap();
        assert!(html.contains("Change &lt;b&gt;CHG0001000&lt;&#x2f;b&gt;"));
        assert!(html.contains("high &amp; wide"));
        assert!(
            html.contains("href=\"https:&#x2f;&#x2f;m.example")
                || html.contains("href=\"https://m.example")
        );
    }

    #[test]
    fn text_lists_facts_and_actions() {
        let text = text(&sample()).unwrap();
        assert!(text.contains("risk: high & wide"));
        assert!(text.contains("Approve: https://m.example/v1/actions/t?outcome=approved"));
    }

    #[test]
    fn slack_and_teams_carry_buttons_that_open_the_page() {
        let slack = slack(&sample());
        assert_eq!(
            slack["blocks"][1]["elements"][0]["url"],
            "https://m.example/v1/actions/t?outcome=approved"
        );
        assert!(
            slack["blocks"][0]["text"]["text"]
                .as_str()
                .unwrap()
                .contains("&lt;b&gt;")
        );
        let teams = teams(&sample());
        let card = &teams["attachments"][0]["content"];
        assert_eq!(card["type"], "AdaptiveCard");
        assert_eq!(card["actions"][0]["type"], "Action.OpenUrl");
    }

    #[test]
    fn rule_templates_render_over_the_event_and_bad_ones_are_named() {
        let event =
            json!({"type": "resolution.incident.major_declared", "data": {"number": "INC0000042"}});
        assert_eq!(
            rule_template("Major incident {{ event.data.number }}", &event).unwrap(),
            "Major incident INC0000042"
        );
        assert!(check_template("{{ event.data.number ").is_err());
    }

    #[test]
    fn facts_flatten_objects() {
        let f = facts(
            &json!({"change": {"id": "CHG1", "risk": 12}, "empty": ""}),
            10,
        );
        assert_eq!(
            f,
            vec![
                ("change.id".to_owned(), "CHG1".to_owned()),
                ("change.risk".to_owned(), "12".to_owned())
            ]
        );
    }
}
