//! Alerts from monitoring, as incidents: Prometheus Alertmanager's webhook payload and a generic
//! JSON event, read into one shape (a named error for the first field at fault), then mapped to an
//! incident's fields by configuration (service and CI from labels or rules, priority from the
//! severity). One incident per fingerprint: the store deduplicates.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::config::IntakeConfig;
use crate::domain::incident::NewIncident;
use crate::domain::priority::Level;

/// Firing or resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertStatus {
    /// Firing.
    Firing,
    /// Resolved.
    Resolved,
}

/// An alert, whatever sent it.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// `alertmanager` or the generic event's `source`.
    pub source: String,
    /// What identifies the same alert across notifications.
    pub fingerprint: String,
    /// Firing or resolved.
    pub status: AlertStatus,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
    /// Since when it fires.
    pub starts_at: Option<DateTime<Utc>>,
    /// Where it comes from (e.g. the Prometheus graph).
    pub link: Option<String>,
}

/// A field at fault and why.
pub type FieldError = (String, String);

fn strings(value: &Value, field: &str) -> Result<BTreeMap<String, String>, FieldError> {
    match value {
        Value::Null => Ok(BTreeMap::new()),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                _ => Err((format!("{field}.{k}"), "must be a string".to_owned())),
            })
            .collect(),
        _ => Err((field.to_owned(), "must be an object of strings".to_owned())),
    }
}

fn status(value: &Value, field: &str) -> Result<AlertStatus, FieldError> {
    match value.as_str() {
        Some("firing") => Ok(AlertStatus::Firing),
        Some("resolved") => Ok(AlertStatus::Resolved),
        _ => Err((field.to_owned(), "must be firing or resolved".to_owned())),
    }
}

fn time(value: &Value, field: &str) -> Result<Option<DateTime<Utc>>, FieldError> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => DateTime::parse_from_rfc3339(s)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|_| (field.to_owned(), "must be an RFC 3339 time".to_owned())),
        _ => Err((field.to_owned(), "must be an RFC 3339 time".to_owned())),
    }
}

/// A fingerprint of labels (when the sender gives none): SHA-256 of the sorted pairs.
pub fn fingerprint(labels: &BTreeMap<String, String>) -> String {
    let mut hash = Sha256::new();
    for (k, v) in labels {
        hash.update(k.as_bytes());
        hash.update([0]);
        hash.update(v.as_bytes());
        hash.update([0]);
    }
    hash.finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Reads Alertmanager's webhook payload (version 4): every alert of the group.
///
/// # Errors
/// The first field at fault (`alerts[2].status`) and why.
pub fn alertmanager(body: &Value) -> Result<Vec<Alert>, FieldError> {
    if !body.is_object() {
        return Err((
            "body".to_owned(),
            "must be Alertmanager's webhook JSON object".to_owned(),
        ));
    }
    if let Some(version) = body.get("version")
        && version.as_str() != Some("4")
    {
        return Err((
            "version".to_owned(),
            "must be \"4\" (Alertmanager's webhook format)".to_owned(),
        ));
    }
    let common = strings(
        body.get("commonLabels").unwrap_or(&Value::Null),
        "commonLabels",
    )?;
    let alerts = body
        .get("alerts")
        .and_then(Value::as_array)
        .ok_or_else(|| ("alerts".to_owned(), "must be an array".to_owned()))?;
    if alerts.is_empty() || alerts.len() > 1000 {
        return Err(("alerts".to_owned(), "must hold 1 to 1000 alerts".to_owned()));
    }
    let mut out = Vec::with_capacity(alerts.len());
    for (i, alert) in alerts.iter().enumerate() {
        let field = |name: &str| format!("alerts[{i}].{name}");
        if !alert.is_object() {
            return Err((format!("alerts[{i}]"), "must be an object".to_owned()));
        }
        let mut labels = common.clone();
        labels.extend(strings(
            alert.get("labels").unwrap_or(&Value::Null),
            &field("labels"),
        )?);
        if !labels.contains_key("alertname") {
            return Err((field("labels.alertname"), "is required".to_owned()));
        }
        let fingerprint = match alert.get("fingerprint") {
            Some(Value::String(f)) if !f.is_empty() && f.len() <= 128 => f.clone(),
            None | Some(Value::Null) => fingerprint(&labels),
            _ => {
                return Err((
                    field("fingerprint"),
                    "must be a string of 1 to 128 characters".to_owned(),
                ));
            }
        };
        out.push(Alert {
            source: "alertmanager".to_owned(),
            fingerprint,
            status: status(
                alert.get("status").unwrap_or(&Value::Null),
                &field("status"),
            )?,
            annotations: strings(
                alert.get("annotations").unwrap_or(&Value::Null),
                &field("annotations"),
            )?,
            starts_at: time(
                alert.get("startsAt").unwrap_or(&Value::Null),
                &field("startsAt"),
            )?,
            link: alert
                .get("generatorURL")
                .and_then(Value::as_str)
                .map(str::to_owned),
            labels,
        });
    }
    Ok(out)
}

/// Reads a generic event: `{source, key, status, title, description?, severity?, service?,
/// configuration_item?, labels?}`.
///
/// # Errors
/// The first field at fault and why.
pub fn generic(body: &Value) -> Result<Alert, FieldError> {
    let text = |name: &str, max: usize, required: bool| -> Result<Option<String>, FieldError> {
        match body.get(name) {
            None | Some(Value::Null) if !required => Ok(None),
            Some(Value::String(s)) if !s.trim().is_empty() && s.chars().count() <= max => {
                Ok(Some(s.clone()))
            }
            _ => Err((
                name.to_owned(),
                format!("must be a string of 1 to {max} characters"),
            )),
        }
    };
    if !body.is_object() {
        return Err(("body".to_owned(), "must be a JSON object".to_owned()));
    }
    let source = text("source", 100, true)?.unwrap_or_default();
    let key = text("key", 200, true)?.unwrap_or_default();
    let title = text("title", 200, true)?.unwrap_or_default();
    let mut labels = strings(body.get("labels").unwrap_or(&Value::Null), "labels")?;
    labels.insert("alertname".to_owned(), title);
    for (name, label) in [
        ("severity", "severity"),
        ("service", "service"),
        ("configuration_item", "ci"),
    ] {
        if let Some(v) = text(name, 200, false)? {
            labels.insert(label.to_owned(), v);
        }
    }
    let mut annotations = BTreeMap::new();
    if let Some(description) = text("description", 5000, false)? {
        annotations.insert("description".to_owned(), description);
    }
    Ok(Alert {
        source,
        fingerprint: key,
        status: status(body.get("status").unwrap_or(&Value::Null), "status")?,
        labels,
        annotations,
        starts_at: time(body.get("time").unwrap_or(&Value::Null), "time")?,
        link: text("link", 2000, false)?,
    })
}

/// The incident an alert opens, by the configuration's mapping.
pub fn incident_for(alert: &Alert, config: &IntakeConfig) -> NewIncident {
    let rule = config.rules.iter().find(|r| {
        r.matches
            .iter()
            .all(|(k, v)| alert.labels.get(k) == Some(v))
    });
    let severity = alert
        .labels
        .get("severity")
        .map(String::as_str)
        .unwrap_or_default();
    let levels = config.severities.get(severity);
    let service = rule
        .and_then(|r| r.service.clone())
        .or_else(|| alert.labels.get(&config.service_label).cloned());
    let ci = rule.and_then(|r| r.configuration_item.clone()).or_else(|| {
        config
            .ci_labels
            .iter()
            .find_map(|l| alert.labels.get(l).cloned())
    });
    let name = alert.labels.get("alertname").cloned().unwrap_or_default();
    let summary = alert.annotations.get("summary").cloned();
    let title = summary.unwrap_or_else(|| match &ci {
        Some(ci) => format!("{name} on {ci}"),
        None => name.clone(),
    });
    let mut description = alert
        .annotations
        .get("description")
        .cloned()
        .unwrap_or_default();
    let labels: Vec<String> = alert
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    description.push_str(&format!(
        "\n\nFrom {} (fingerprint {}), labels: {}",
        alert.source,
        alert.fingerprint,
        labels.join(", ")
    ));
    if let Some(link) = &alert.link {
        description.push_str(&format!("\nSource: {link}"));
    }
    NewIncident {
        title: title.chars().take(200).collect(),
        description: description.chars().take(10_000).collect(),
        caller: format!("system:{}", alert.source),
        service,
        configuration_items: ci.into_iter().collect(),
        category: Some(
            rule.and_then(|r| r.category.clone())
                .unwrap_or_else(|| "monitoring".to_owned()),
        ),
        impact: levels.map_or(Level::Medium, |l| l.impact),
        urgency: levels.map_or(Level::Medium, |l| l.urgency),
        assignment_group: rule.and_then(|r| r.assignment_group.clone()),
        assignee: None,
    }
}

/// Whether `signature` (`sha256=<hex>`) is the HMAC-SHA256 of `body` under `secret`.
pub fn signed(secret: &[u8], body: &[u8], signature: &str) -> bool {
    use hmac::{Hmac, Mac};
    let Some(hex) = signature.strip_prefix("sha256=") else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    expected.len() == hex.len()
        && expected
            .bytes()
            .zip(hex.to_ascii_lowercase().bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config() -> IntakeConfig {
        #[derive(serde::Deserialize)]
        struct Root {
            resolution: crate::ResolutionConfig,
        }
        let root: Root = meridian_chassis::config::load_from(
            &[crate::config::DEFAULTS, "resolution:\n  intake:\n    rules:\n      - { match: { alertname: MailQueueHigh }, service: email, assignment_group: messaging }\n"],
            None,
            vec![],
        )
        .unwrap();
        root.resolution.intake
    }

    #[test]
    fn a_grouped_alertmanager_payload_gives_each_alert_with_common_labels() {
        let body = json!({"version": "4", "status": "firing", "commonLabels": {"env": "prod"}, "alerts": [
            {"status": "firing", "labels": {"alertname": "MailQueueHigh", "instance": "mx1", "severity": "critical"}, "annotations": {"summary": "Mail queue above 10k"}, "startsAt": "2026-11-26T10:00:00Z", "fingerprint": "a1"},
            {"status": "resolved", "labels": {"alertname": "DiskFull", "instance": "db1", "service": "payroll"}, "fingerprint": "b2"}
        ]});
        let alerts = alertmanager(&body).unwrap();
        assert_eq!(alerts.len(), 2);
        assert_eq!(alerts[0].labels["env"], "prod");
        assert_eq!(
            (alerts[0].status, alerts[1].status),
            (AlertStatus::Firing, AlertStatus::Resolved)
        );
        let first = incident_for(&alerts[0], &config());
        assert_eq!(
            (first.service.as_deref(), first.assignment_group.as_deref()),
            (Some("email"), Some("messaging")),
            "the rule"
        );
        assert_eq!(
            (first.impact, first.urgency, first.title.as_str()),
            (Level::High, Level::High, "Mail queue above 10k")
        );
        assert_eq!(first.configuration_items, ["mx1"]);
        let second = incident_for(&alerts[1], &config());
        assert_eq!(
            (
                second.service.as_deref(),
                second.title.as_str(),
                second.impact
            ),
            (Some("payroll"), "DiskFull on db1", Level::Medium)
        );
    }

    #[test]
    fn malformed_payloads_name_the_field() {
        for (body, field) in [
            (json!([]), "body"),
            (json!({"version": "3", "alerts": []}), "version"),
            (json!({"alerts": "x"}), "alerts"),
            (json!({"alerts": []}), "alerts"),
            (
                json!({"alerts": [{"status": "burning", "labels": {"alertname": "X"}}]}),
                "alerts[0].status",
            ),
            (
                json!({"alerts": [{"status": "firing", "labels": {}}]}),
                "alerts[0].labels.alertname",
            ),
            (
                json!({"alerts": [{"status": "firing", "labels": {"alertname": "X", "n": 1}}]}),
                "alerts[0].labels.n",
            ),
            (
                json!({"alerts": [{"status": "firing", "labels": {"alertname": "X"}, "startsAt": "yesterday"}]}),
                "alerts[0].startsAt",
            ),
        ] {
            assert_eq!(alertmanager(&body).unwrap_err().0, field, "{body}");
        }
        assert_eq!(
            generic(&json!({"source": "nagios", "key": "k", "title": "t", "status": "up"}))
                .unwrap_err()
                .0,
            "status"
        );
        assert_eq!(
            generic(&json!({"source": "nagios", "title": "t", "status": "firing"}))
                .unwrap_err()
                .0,
            "key"
        );
    }

    #[test]
    fn without_a_fingerprint_the_labels_make_one_and_signatures_verify() {
        let body = json!({"alerts": [{"status": "firing", "labels": {"alertname": "X", "a": "1"}}, {"status": "firing", "labels": {"a": "1", "alertname": "X"}}]});
        let alerts = alertmanager(&body).unwrap();
        assert_eq!(alerts[0].fingerprint, alerts[1].fingerprint);
        let secret = b"s3cret";
        use hmac::{Hmac, Mac};
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
        mac.update(b"{}");
        let hex: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(signed(secret, b"{}", &format!("sha256={hex}")));
        assert!(!signed(secret, b"{ }", &format!("sha256={hex}")));
        assert!(!signed(b"other", b"{}", &format!("sha256={hex}")));
        assert!(!signed(secret, b"{}", &hex));
    }
}
