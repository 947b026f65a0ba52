//! `service_level.service.*` → the catalogue read model, once per message (inbox).

use std::sync::Arc;

use meridian_chassis::bus::{Bus, Envelope, HandleError, Subscription};
use meridian_chassis::db::{Db, DbError};
use meridian_chassis::{Clock, inbox};
use meridian_proto::Message;
use meridian_proto::service_level::v1::{Criticality, ServicePublished, ServiceStatus};

use crate::store::catalogue::{self, ServiceRow};

/// The inbox name of this consumer.
pub const CONSUMER: &str = "resolution.catalogue";

/// Decodes a `service_level.service.published` message into a read-model row.
///
/// # Errors
/// [`HandleError::Malformed`] for another type, a payload that does not decode, or no id.
pub fn decode(envelope: &Envelope) -> Result<ServiceRow, HandleError> {
    if envelope.event_type != "service_level.service.published" {
        return Err(HandleError::Malformed(format!(
            "unexpected event type {}",
            envelope.event_type
        )));
    }
    let message = ServicePublished::decode(envelope.payload.as_slice())
        .map_err(|e| HandleError::Malformed(format!("payload does not decode: {e}")))?;
    if message.id.is_empty() {
        return Err(HandleError::Malformed("service id is empty".to_owned()));
    }
    let criticality = match message.criticality() {
        Criticality::Low => "low",
        Criticality::Medium | Criticality::Unspecified => "medium",
        Criticality::High => "high",
        Criticality::Critical => "critical",
    };
    let status = match message.status() {
        ServiceStatus::Pipeline => "pipeline",
        ServiceStatus::Live | ServiceStatus::Unspecified => "live",
        ServiceStatus::Retired => "retired",
    };
    Ok(ServiceRow {
        id: message.id,
        name: message.name,
        criticality: criticality.to_owned(),
        status: status.to_owned(),
        revision: message.revision,
    })
}

/// Applies one message: claims its id in the inbox and upserts the service, in one transaction.
///
/// # Errors
/// [`HandleError::Malformed`] as [`decode`]; [`HandleError::Transient`] when the database fails.
pub async fn apply(db: &Db, clock: &dyn Clock, envelope: Envelope) -> Result<(), HandleError> {
    let row = decode(&envelope)?;
    let id = envelope.id.to_string();
    let now = clock.now();
    db.transaction(move |conn| -> Result<(), DbError> {
        if inbox::claim(conn, CONSUMER, &id, now)? {
            catalogue::upsert(conn, &row)?;
        }
        Ok(())
    })
    .await
    .map_err(|e| HandleError::Transient(e.to_string()))
}

/// Starts consuming catalogue events into `db`.
pub fn start(bus: &Bus, queue_prefix: &str, db: Db, clock: Arc<dyn Clock>) {
    let subscription = Subscription {
        queue: format!("{queue_prefix}resolution"),
        bindings: vec!["service_level.service.*".to_owned()],
    };
    bus.consume(
        subscription,
        Arc::new(move |envelope: Envelope| {
            let db = db.clone();
            let clock = clock.clone();
            async move { apply(&db, &*clock, envelope).await }
        }),
    );
}
