//! RabbitMQ through lapin.
//!
//! Topology, declared idempotently by whoever connects first:
//! - `bus.exchange`: durable topic exchange of events, routing key = event type;
//! - `bus.dead_letter_exchange`: durable direct exchange; each consuming queue dead-letters to it
//!   with its own name as routing key, into `<queue>.dead`;
//! - one durable quorum queue per consuming service, with `x-delivery-limit`.
//!
//! Publishing waits for the broker's confirm of every message. Consumers acknowledge after the
//! handler returns (its transaction committed), reject malformed messages to the dead-letter
//! exchange, and requeue transient failures (the quorum queue counts them against the limit).
//! lapin does not reliably recover after a broker restart, so both sides run their own reconnect
//! loop with exponential backoff.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    BasicRejectOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};
use secrecy::ExposeSecret;

use super::{BusError, Envelope, HandleError, Handler, Subscription};
use crate::config::BusConfig;
use crate::telemetry::Metrics;

/// How long one publish round may wait for the broker's confirms.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(15);

/// The RabbitMQ bus.
#[derive(Clone)]
pub struct RabbitBus {
    inner: Arc<Inner>,
}

struct Inner {
    config: BusConfig,
    metrics: Metrics,
    publisher: tokio::sync::Mutex<Option<(Connection, Channel)>>,
}

impl std::fmt::Debug for RabbitBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RabbitBus")
            .field("exchange", &self.inner.config.exchange)
            .finish()
    }
}

fn error(context: &str, error: impl std::fmt::Display) -> BusError {
    BusError(format!("{context}: {error}"))
}

fn long(value: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(value.as_bytes().to_vec()))
}

impl RabbitBus {
    /// A bus that connects on first use.
    pub fn new(config: BusConfig, metrics: Metrics) -> Self {
        Self {
            inner: Arc::new(Inner {
                config,
                metrics,
                publisher: tokio::sync::Mutex::new(None),
            }),
        }
    }

    async fn connect(&self, name: &str) -> Result<Connection, BusError> {
        let properties = ConnectionProperties::default()
            .with_connection_name(LongString::from(name.as_bytes().to_vec()));
        let mut uri: lapin::uri::AMQPUri = self
            .inner
            .config
            .url
            .expose_secret()
            .parse()
            .map_err(|e: String| error("bus.url", e))?;
        // The URL's own frame_max wins; otherwise ours bounds the connection's buffers.
        if uri.query.frame_max.is_none() {
            uri.query.frame_max = Some(self.inner.config.frame_max);
        }
        Connection::connect_uri(uri, properties)
            .await
            .map_err(|e| error("connect", e))
    }

    async fn declare_exchanges(&self, channel: &Channel) -> Result<(), BusError> {
        let durable = ExchangeDeclareOptions {
            durable: true,
            ..ExchangeDeclareOptions::default()
        };
        channel
            .exchange_declare(
                ShortString::from(self.inner.config.exchange.as_str()),
                ExchangeKind::Topic,
                durable,
                FieldTable::default(),
            )
            .await
            .map_err(|e| error("declare exchange", e))?;
        channel
            .exchange_declare(
                ShortString::from(self.inner.config.dead_letter_exchange.as_str()),
                ExchangeKind::Direct,
                durable,
                FieldTable::default(),
            )
            .await
            .map_err(|e| error("declare dead-letter exchange", e))
    }

    async fn publisher_channel(
        &self,
        slot: &mut Option<(Connection, Channel)>,
    ) -> Result<Channel, BusError> {
        if let Some((connection, channel)) = slot.as_ref()
            && connection.status().connected()
            && channel.status().connected()
        {
            return Ok(channel.clone());
        }
        *slot = None;
        let connection = self.connect("meridian-publisher").await?;
        let channel = connection
            .create_channel()
            .await
            .map_err(|e| error("open channel", e))?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| error("enable confirms", e))?;
        self.declare_exchanges(&channel).await?;
        *slot = Some((connection, channel.clone()));
        Ok(channel)
    }

    /// Publishes every message, persistent, and waits for the broker to confirm each.
    ///
    /// # Errors
    /// Any message not confirmed (connection lost, nack, timeout); the connection is then dropped
    /// and the next call reconnects.
    pub async fn publish(&self, messages: &[Envelope]) -> Result<(), BusError> {
        let mut slot = self.inner.publisher.lock().await;
        let result = tokio::time::timeout(CONFIRM_TIMEOUT, async {
            let channel = self.publisher_channel(&mut slot).await?;
            let mut confirms = Vec::with_capacity(messages.len());
            for message in messages {
                let confirm = channel
                    .basic_publish(
                        ShortString::from(self.inner.config.exchange.as_str()),
                        ShortString::from(message.event_type.as_str()),
                        BasicPublishOptions::default(),
                        &message.payload,
                        message.properties(),
                    )
                    .await
                    .map_err(|e| error("publish", e))?;
                confirms.push(confirm);
            }
            for confirm in confirms {
                let confirmation = confirm.await.map_err(|e| error("confirm", e))?;
                if !confirmation.is_ack() {
                    return Err(BusError("the broker refused (nacked) a message".to_owned()));
                }
            }
            Ok(())
        })
        .await
        .unwrap_or_else(|_| Err(BusError("timed out waiting for confirms".to_owned())));
        if result.is_err() {
            // Start afresh next time: a half-broken channel must not swallow later messages.
            if let Some((connection, _)) = slot.take() {
                let _ = connection
                    .close(200, ShortString::from("reconnecting"))
                    .await;
            }
        }
        result
    }

    /// Answers when the broker accepts a connection.
    pub async fn ping(&self) -> bool {
        let mut slot = self.inner.publisher.lock().await;
        tokio::time::timeout(Duration::from_secs(2), self.publisher_channel(&mut slot))
            .await
            .is_ok_and(|result| result.is_ok())
    }

    /// Consumes `subscription` in a background task that reconnects with backoff for as long as
    /// the process lives.
    pub fn consume(&self, subscription: Subscription, handler: Arc<dyn Handler>) {
        let bus = self.clone();
        tokio::spawn(async move {
            let min = Duration::from_millis(bus.inner.config.reconnect_min_ms);
            let max = Duration::from_millis(bus.inner.config.reconnect_max_ms);
            let mut delay = min;
            loop {
                match bus
                    .run_consumer(&subscription, &*handler, &mut delay, min)
                    .await
                {
                    Ok(()) => {
                        tracing::warn!(queue = %subscription.queue, "consumer stopped; reconnecting")
                    }
                    Err(e) => {
                        tracing::warn!(queue = %subscription.queue, error = %e, "consumer failed; reconnecting")
                    }
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(max);
            }
        });
    }

    /// Declares `queue` (as [`RabbitBus::consume`] does) and binds `pattern` to it.
    ///
    /// # Errors
    /// The broker refusing or unreachable.
    pub async fn bind(&self, queue: &str, pattern: &str) -> Result<(), BusError> {
        let mut slot = self.inner.publisher.lock().await;
        let channel = self.publisher_channel(&mut slot).await?;
        let subscription = Subscription {
            queue: queue.to_owned(),
            bindings: vec![pattern.to_owned()],
        };
        let result = self.declare_queue(&channel, &subscription).await;
        if result.is_err() {
            // A failed declaration closes the channel: reconnect next time.
            *slot = None;
        }
        result
    }

    /// Declares the queue, its dead-letter queue and bindings (idempotent).
    ///
    /// # Errors
    /// The broker refusing a declaration (e.g. the queue exists with other arguments).
    pub async fn declare_queue(
        &self,
        channel: &Channel,
        subscription: &Subscription,
    ) -> Result<(), BusError> {
        let config = &self.inner.config;
        self.declare_exchanges(channel).await?;
        let durable = QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        };
        let dead = format!("{}.dead", subscription.queue);
        let mut dead_args = FieldTable::default();
        dead_args.insert(ShortString::from("x-queue-type"), long("quorum"));
        channel
            .queue_declare(ShortString::from(dead.as_str()), durable, dead_args)
            .await
            .map_err(|e| error("declare dead-letter queue", e))?;
        channel
            .queue_bind(
                ShortString::from(dead.as_str()),
                ShortString::from(config.dead_letter_exchange.as_str()),
                ShortString::from(subscription.queue.as_str()),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|e| error("bind dead-letter queue", e))?;
        let mut args = FieldTable::default();
        args.insert(ShortString::from("x-queue-type"), long("quorum"));
        args.insert(
            ShortString::from("x-delivery-limit"),
            AMQPValue::LongInt(i32::try_from(config.delivery_limit).unwrap_or(i32::MAX)),
        );
        args.insert(
            ShortString::from("x-dead-letter-exchange"),
            long(&config.dead_letter_exchange),
        );
        args.insert(
            ShortString::from("x-dead-letter-routing-key"),
            long(&subscription.queue),
        );
        channel
            .queue_declare(
                ShortString::from(subscription.queue.as_str()),
                durable,
                args,
            )
            .await
            .map_err(|e| error("declare queue", e))?;
        for pattern in &subscription.bindings {
            channel
                .queue_bind(
                    ShortString::from(subscription.queue.as_str()),
                    ShortString::from(config.exchange.as_str()),
                    ShortString::from(pattern.as_str()),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .map_err(|e| error("bind queue", e))?;
        }
        Ok(())
    }

    async fn run_consumer(
        &self,
        subscription: &Subscription,
        handler: &dyn Handler,
        delay: &mut Duration,
        min: Duration,
    ) -> Result<(), BusError> {
        let queue = subscription.queue.as_str();
        let connection = self.connect(&format!("meridian-consumer-{queue}")).await?;
        let channel = connection
            .create_channel()
            .await
            .map_err(|e| error("open channel", e))?;
        self.declare_queue(&channel, subscription).await?;
        channel
            .basic_qos(self.inner.config.prefetch, BasicQosOptions::default())
            .await
            .map_err(|e| error("set prefetch", e))?;
        let mut consumer = channel
            .basic_consume(
                ShortString::from(queue),
                ShortString::from(format!("meridian-{}", uuid::Uuid::new_v4())),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|e| error("consume", e))?;
        *delay = min;
        tracing::info!(queue, "consuming");
        let depth_channel = connection
            .create_channel()
            .await
            .map_err(|e| error("open channel", e))?;
        let watcher = self.watch_depth(depth_channel, subscription);
        let metrics = &self.inner.metrics;
        let result = async {
            while let Some(delivery) = consumer.next().await {
                let delivery = delivery.map_err(|e| error("delivery", e))?;
                let outcome = match Envelope::from_amqp(&delivery.properties, delivery.data.clone())
                {
                    Ok(envelope) => handle_patiently(handler, envelope, queue).await,
                    Err(reason) => Err(HandleError::Malformed(reason)),
                };
                let (label, acked) = match &outcome {
                    Ok(()) => ("ok", delivery.ack(BasicAckOptions::default()).await),
                    Err(HandleError::Malformed(reason)) => {
                        tracing::error!(queue, %reason, "malformed message dead-lettered");
                        let options = BasicRejectOptions { requeue: false };
                        ("malformed", delivery.reject(options).await)
                    }
                    Err(HandleError::Transient(reason)) => {
                        tracing::warn!(queue, %reason, "message will be delivered again");
                        let options = BasicNackOptions {
                            requeue: true,
                            multiple: false,
                        };
                        ("retry", delivery.nack(options).await)
                    }
                };
                metrics.consumed.with_label_values(&[queue, label]).inc();
                acked.map_err(|e| error("acknowledge", e))?;
            }
            Ok(())
        }
        .await;
        watcher.abort();
        let _ = connection
            .close(200, ShortString::from("consumer restarting"))
            .await;
        result
    }

    /// Samples the queue's depth and its dead-letter queue's into the metrics every few seconds.
    fn watch_depth(
        &self,
        channel: Channel,
        subscription: &Subscription,
    ) -> tokio::task::JoinHandle<()> {
        let metrics = self.inner.metrics.clone();
        let queue = subscription.queue.clone();
        tokio::spawn(async move {
            let passive = QueueDeclareOptions {
                passive: true,
                durable: true,
                ..QueueDeclareOptions::default()
            };
            loop {
                for (name, gauge) in [
                    (queue.clone(), &metrics.consumer_lag),
                    (format!("{queue}.dead"), &metrics.dead_lettered),
                ] {
                    match channel
                        .queue_declare(
                            ShortString::from(name.as_str()),
                            passive,
                            FieldTable::default(),
                        )
                        .await
                    {
                        Ok(state) => gauge
                            .with_label_values(&[queue.as_str()])
                            .set(i64::from(state.message_count())),
                        Err(_) => return,
                    }
                }
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        })
    }
}

/// How long a consumer keeps a message whose handling fails transiently, trying it again, before
/// it gives it back to the queue (where each return counts against the delivery limit).
const PATIENCE: Duration = Duration::from_secs(30);

/// Handles `envelope`, trying again with backoff while the failure is transient (the database
/// restarting, say) for up to [`PATIENCE`], so an outage of the store does not spend the
/// message's deliveries and dead-letter it. Handlers are idempotent, so a try that committed
/// before its error was seen is not applied twice.
async fn handle_patiently(
    handler: &dyn Handler,
    envelope: Envelope,
    queue: &str,
) -> Result<(), HandleError> {
    let started = tokio::time::Instant::now();
    let mut delay = Duration::from_millis(100);
    loop {
        match handler.handle(envelope.clone()).await {
            Err(HandleError::Transient(reason)) if started.elapsed() < PATIENCE => {
                tracing::warn!(queue, %reason, "handling failed; trying again");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            other => return other,
        }
    }
}
