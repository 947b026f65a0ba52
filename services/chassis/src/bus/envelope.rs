//! A message with its CloudEvents attributes, and their mapping onto AMQP.
//!
//! Binary content mode of the CloudEvents AMQP binding: the payload is the protobuf message, the
//! attributes are application properties (headers) prefixed `cloudEvents_`, and the AMQP
//! properties carry the same id, type, source, time and correlation id, so both CloudEvents SDKs
//! and plain AMQP tools can read them.

use chrono::{DateTime, Utc};
use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use uuid::Uuid;

/// The content type of every payload.
pub const CONTENT_TYPE: &str = "application/protobuf";

/// A message on the bus.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// CloudEvents `id`: unique per message; consumers deduplicate on it.
    pub id: Uuid,
    /// CloudEvents `type` and the routing key, e.g. `resolution.incident.created`.
    pub event_type: String,
    /// CloudEvents `source`, e.g. `/meridian/resolution`.
    pub source: String,
    /// CloudEvents `subject`: the id of the record it is about.
    pub subject: String,
    /// CloudEvents `time`.
    pub time: DateTime<Utc>,
    /// Extension `correlationid`: the request or workflow this is part of.
    pub correlation_id: Option<String>,
    /// Extension `causationid`: the message or request that caused this one.
    pub causation_id: Option<String>,
    /// Extension `actor`: the user on whose behalf it happened.
    pub actor: Option<String>,
    /// The protobuf payload.
    pub payload: Vec<u8>,
}

const PREFIX: &str = "cloudEvents_";

fn header(table: &mut FieldTable, name: &str, value: &str) {
    table.insert(
        ShortString::from(format!("{PREFIX}{name}")),
        AMQPValue::LongString(LongString::from(value.as_bytes().to_vec())),
    );
}

impl Envelope {
    /// A new event (a fresh id, no correlation or causation) by `actor` about `subject`.
    pub fn event(
        source: &str,
        event_type: &str,
        subject: &str,
        actor: &str,
        payload: Vec<u8>,
        time: DateTime<Utc>,
    ) -> Self {
        Self {
            id: Uuid::now_v7(),
            event_type: event_type.to_owned(),
            source: source.to_owned(),
            subject: subject.to_owned(),
            time,
            correlation_id: None,
            causation_id: None,
            actor: Some(actor.to_owned()),
            payload,
        }
    }

    /// The AMQP properties of this message (persistent, with CloudEvents headers).
    pub fn properties(&self) -> BasicProperties {
        let mut headers = FieldTable::default();
        header(&mut headers, "specversion", "1.0");
        header(&mut headers, "id", &self.id.to_string());
        header(&mut headers, "type", &self.event_type);
        header(&mut headers, "source", &self.source);
        header(&mut headers, "subject", &self.subject);
        header(&mut headers, "time", &self.time.to_rfc3339());
        header(&mut headers, "datacontenttype", CONTENT_TYPE);
        for (name, value) in [
            ("correlationid", &self.correlation_id),
            ("causationid", &self.causation_id),
            ("actor", &self.actor),
        ] {
            if let Some(value) = value {
                header(&mut headers, name, value);
            }
        }
        let mut properties = BasicProperties::default()
            .with_message_id(ShortString::from(self.id.to_string()))
            .with_type(ShortString::from(self.event_type.as_str()))
            .with_app_id(ShortString::from(self.source.as_str()))
            .with_content_type(ShortString::from(CONTENT_TYPE))
            .with_delivery_mode(2)
            .with_timestamp(u64::try_from(self.time.timestamp()).unwrap_or(0))
            .with_headers(headers);
        if let Some(correlation) = &self.correlation_id {
            properties = properties.with_correlation_id(ShortString::from(correlation.as_str()));
        }
        properties
    }

    /// Reads an envelope back from a delivery's properties and body.
    ///
    /// # Errors
    /// A missing or malformed required attribute, named.
    pub fn from_amqp(properties: &BasicProperties, payload: Vec<u8>) -> Result<Self, String> {
        let headers = properties
            .headers()
            .as_ref()
            .ok_or_else(|| "no CloudEvents headers".to_owned())?;
        let get = |name: &str| -> Option<String> {
            match headers.inner().get(format!("{PREFIX}{name}").as_str())? {
                AMQPValue::LongString(value) => {
                    Some(String::from_utf8_lossy(value.as_bytes()).into_owned())
                }
                AMQPValue::ShortString(value) => Some(value.as_str().to_owned()),
                _ => None,
            }
        };
        let required = |name: &str| get(name).ok_or_else(|| format!("missing attribute `{name}`"));
        let id = required("id")?;
        let id = Uuid::parse_str(&id).map_err(|_| format!("attribute `id` is not a UUID: {id}"))?;
        let time = required("time")?;
        let time = DateTime::parse_from_rfc3339(&time)
            .map_err(|_| format!("attribute `time` is not RFC 3339: {time}"))?
            .with_timezone(&Utc);
        Ok(Self {
            id,
            event_type: required("type")?,
            source: required("source")?,
            subject: get("subject").unwrap_or_default(),
            time,
            correlation_id: get("correlationid"),
            causation_id: get("causationid"),
            actor: get("actor"),
            payload,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_envelope_survives_the_trip_through_amqp_properties() {
        let envelope = Envelope {
            id: Uuid::now_v7(),
            event_type: "resolution.incident.created".into(),
            source: "/meridian/resolution".into(),
            subject: "abc".into(),
            time: DateTime::from_timestamp(1_700_000_000, 123_000_000).unwrap(),
            correlation_id: Some("corr".into()),
            causation_id: None,
            actor: Some("alice".into()),
            payload: vec![1, 2, 3],
        };
        let back = Envelope::from_amqp(&envelope.properties(), vec![1, 2, 3]).unwrap();
        assert_eq!(back, envelope);
    }

    #[test]
    fn a_message_without_headers_is_refused_with_a_reason() {
        let error = Envelope::from_amqp(&BasicProperties::default(), vec![]).unwrap_err();
        assert!(error.contains("headers"));
    }
}
