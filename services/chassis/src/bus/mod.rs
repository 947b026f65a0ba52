//! The bus: one interface, two implementations.
//!
//! [`Bus::Rabbit`] (production) publishes to a durable topic exchange with publisher confirms and
//! consumes from one durable quorum queue per consuming service, with a delivery limit and a
//! dead-letter exchange, acknowledging only after the handler's transaction committed. It keeps
//! its own reconnect loop with backoff. [`Bus::Memory`] (`meridian dev`) does the same in process.
//!
//! Services never publish directly: they write to the outbox in their transaction and the relay
//! publishes (see [`crate::outbox`]). Consumers claim the message id in the inbox
//! ([`crate::inbox`]) so a redelivery has no second effect.

mod envelope;
mod memory;
mod rabbit;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub use envelope::Envelope;
pub use memory::MemoryBus;
pub use rabbit::RabbitBus;

use crate::config::{BusConfig, BusKind};
use crate::telemetry::Metrics;

/// A publish that did not complete: the broker was unreachable or refused (nacked) the message.
#[derive(Debug, thiserror::Error)]
#[error("bus: {0}")]
pub struct BusError(pub String);

/// What a handler made of a message.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// The message can never be handled (it does not decode, it lacks an attribute): it is
    /// dead-lettered at once and the consumer goes on.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// Handling failed this time (the database was down): the message is delivered again, up to
    /// the delivery limit, then dead-lettered.
    #[error("transient failure: {0}")]
    Transient(String),
}

/// The future a handler returns.
pub type HandleFuture = Pin<Box<dyn Future<Output = Result<(), HandleError>> + Send>>;

/// Handles one delivered message. Acknowledge happens after it returns `Ok`, so the handler must
/// have committed its effects (and its inbox claim) by then.
pub trait Handler: Send + Sync + 'static {
    /// Handles `envelope`.
    fn handle(&self, envelope: Envelope) -> HandleFuture;
}

impl<F, Fut> Handler for F
where
    F: Fn(Envelope) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HandleError>> + Send + 'static,
{
    fn handle(&self, envelope: Envelope) -> HandleFuture {
        Box::pin(self(envelope))
    }
}

/// A consuming service's queue and what it listens to.
#[derive(Debug, Clone)]
pub struct Subscription {
    /// The queue's name (one per consuming service), e.g. `meridian.resolution`.
    pub queue: String,
    /// Routing-key patterns bound to it (`*` one word, `#` any number), e.g. `service_level.service.*`.
    pub bindings: Vec<String>,
}

/// The bus.
#[derive(Clone, Debug)]
pub enum Bus {
    /// RabbitMQ.
    Rabbit(RabbitBus),
    /// In process.
    Memory(MemoryBus),
}

impl Bus {
    /// The bus the configuration names. Connects lazily: a broker that is down at start-up makes
    /// the service unready, and the outbox keeps what is committed meanwhile.
    pub fn from_config(config: &BusConfig, metrics: Metrics) -> Self {
        match config.kind {
            BusKind::Rabbitmq => Self::Rabbit(RabbitBus::new(config.clone(), metrics)),
            BusKind::Memory => Self::Memory(MemoryBus::new(config.delivery_limit, metrics)),
        }
    }

    /// Publishes every message and returns once the broker confirmed them all.
    ///
    /// # Errors
    /// [`BusError`] when any is not confirmed; the caller publishes them again later.
    pub async fn publish(&self, messages: &[Envelope]) -> Result<(), BusError> {
        match self {
            Self::Rabbit(bus) => bus.publish(messages).await,
            Self::Memory(bus) => {
                bus.publish(messages);
                Ok(())
            }
        }
    }

    /// Starts consuming `subscription` with `handler`, in the background, for as long as the
    /// process lives (reconnecting after broker outages).
    pub fn consume(&self, subscription: Subscription, handler: Arc<dyn Handler>) {
        match self {
            Self::Rabbit(bus) => bus.consume(subscription, handler),
            Self::Memory(bus) => bus.consume(subscription, handler),
        }
    }

    /// Binds one more routing-key pattern to a consuming queue (declaring the queue if need be),
    /// for what a running service learns to listen to (a workflow definition deployed at run
    /// time). Idempotent.
    ///
    /// # Errors
    /// [`BusError`] when the broker refuses or cannot be reached.
    pub async fn bind(&self, queue: &str, pattern: &str) -> Result<(), BusError> {
        match self {
            Self::Rabbit(bus) => bus.bind(queue, pattern).await,
            Self::Memory(bus) => {
                bus.bind(queue, pattern);
                Ok(())
            }
        }
    }

    /// Answers when the broker does (for `/readyz`).
    pub async fn ping(&self) -> bool {
        match self {
            Self::Rabbit(bus) => bus.ping().await,
            Self::Memory(_) => true,
        }
    }
}

/// Whether `routing_key` matches an AMQP topic `pattern` (`*` one word, `#` zero or more).
pub fn topic_matches(pattern: &str, routing_key: &str) -> bool {
    fn go(pattern: &[&str], key: &[&str]) -> bool {
        match (pattern.split_first(), key.split_first()) {
            (None, None) => true,
            (Some((&"#", rest)), _) => go(rest, key) || (!key.is_empty() && go(pattern, &key[1..])),
            (Some((&"*", rest)), Some((_, key_rest))) => go(rest, key_rest),
            (Some((word, rest)), Some((key_word, key_rest))) => {
                word == key_word && go(rest, key_rest)
            }
            _ => false,
        }
    }
    let pattern: Vec<&str> = pattern.split('.').collect();
    let key: Vec<&str> = routing_key.split('.').collect();
    go(&pattern, &key)
}

#[cfg(test)]
mod tests {
    use super::topic_matches;

    #[test]
    fn topic_patterns_match_as_amqp_does() {
        assert!(topic_matches("a.b.c", "a.b.c"));
        assert!(topic_matches("a.*.c", "a.b.c"));
        assert!(!topic_matches("a.*", "a.b.c"));
        assert!(topic_matches("a.#", "a.b.c"));
        assert!(topic_matches("a.#", "a"));
        assert!(topic_matches("#", "x.y"));
        assert!(topic_matches("#.c", "a.b.c"));
        assert!(!topic_matches("a.b", "a.c"));
        assert!(!topic_matches("a.*.c", "a.c"));
    }
}
