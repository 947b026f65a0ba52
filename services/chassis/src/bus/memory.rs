//! The in-process bus of `meridian dev`: the same contract as RabbitMQ (topic routing, one queue
//! per consuming service, redelivery up to the delivery limit, then dead-lettering) in memory.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::mpsc;

use super::{Envelope, HandleError, Handler, Subscription, topic_matches};
use crate::telemetry::Metrics;

/// The in-process bus.
#[derive(Clone)]
pub struct MemoryBus {
    queues: Arc<Mutex<Vec<Queue>>>,
    dead: Arc<Mutex<Vec<(String, Envelope)>>>,
    delivery_limit: u32,
    metrics: Metrics,
}

struct Queue {
    subscription: Subscription,
    sender: mpsc::UnboundedSender<Envelope>,
}

impl std::fmt::Debug for MemoryBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemoryBus")
    }
}

impl MemoryBus {
    /// A bus with no queues yet.
    pub fn new(delivery_limit: u32, metrics: Metrics) -> Self {
        Self {
            queues: Arc::default(),
            dead: Arc::default(),
            delivery_limit,
            metrics,
        }
    }

    /// Routes each message to every queue bound to its type.
    pub fn publish(&self, messages: &[Envelope]) {
        let queues = self.queues.lock().unwrap_or_else(PoisonError::into_inner);
        for message in messages {
            for queue in queues.iter() {
                let bound = queue
                    .subscription
                    .bindings
                    .iter()
                    .any(|pattern| topic_matches(pattern, &message.event_type));
                if bound {
                    let _ = queue.sender.send(message.clone());
                    self.metrics
                        .consumer_lag
                        .with_label_values(&[queue.subscription.queue.as_str()])
                        .inc();
                }
            }
        }
    }

    /// Binds one more pattern to a queue declared by [`MemoryBus::consume`].
    pub fn bind(&self, queue: &str, pattern: &str) {
        let mut queues = self.queues.lock().unwrap_or_else(PoisonError::into_inner);
        for q in queues.iter_mut().filter(|q| q.subscription.queue == queue) {
            if !q.subscription.bindings.iter().any(|b| b == pattern) {
                q.subscription.bindings.push(pattern.to_owned());
            }
        }
    }

    /// Messages dead-lettered so far, with their queue.
    pub fn dead_letters(&self) -> Vec<(String, Envelope)> {
        self.dead
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Declares the queue and handles its messages in a background task.
    pub fn consume(&self, subscription: Subscription, handler: Arc<dyn Handler>) {
        let (sender, mut receiver) = mpsc::unbounded_channel::<Envelope>();
        let name = subscription.queue.clone();
        self.queues
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Queue {
                subscription,
                sender,
            });
        let bus = self.clone();
        tokio::spawn(async move {
            while let Some(message) = receiver.recv().await {
                bus.metrics.consumer_lag.with_label_values(&[&name]).dec();
                bus.deliver(&name, &*handler, message).await;
            }
        });
    }

    async fn deliver(&self, queue: &str, handler: &dyn Handler, message: Envelope) {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let outcome = handler.handle(message.clone()).await;
            let label = match &outcome {
                Ok(()) => "ok",
                Err(HandleError::Malformed(_)) => "malformed",
                Err(HandleError::Transient(_)) => "retry",
            };
            self.metrics
                .consumed
                .with_label_values(&[queue, label])
                .inc();
            match outcome {
                Ok(()) => return,
                Err(HandleError::Transient(reason)) if attempt < self.delivery_limit => {
                    tracing::warn!(queue, %reason, attempt, "message will be delivered again");
                    tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
                }
                Err(error) => {
                    tracing::error!(queue, %error, id = %message.id, "message dead-lettered");
                    self.metrics.dead_lettered.with_label_values(&[queue]).inc();
                    self.dead
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push((queue.to_owned(), message));
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn envelope(event_type: &str) -> Envelope {
        Envelope {
            id: uuid::Uuid::now_v7(),
            event_type: event_type.to_owned(),
            source: "/test".to_owned(),
            subject: "s".to_owned(),
            time: chrono::DateTime::from_timestamp(0, 0).unwrap(),
            correlation_id: None,
            causation_id: None,
            actor: None,
            payload: vec![],
        }
    }

    async fn settle(check: impl Fn() -> bool) {
        for _ in 0..200 {
            if check() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn messages_reach_the_queues_bound_to_their_type_only() {
        let bus = MemoryBus::new(3, Metrics::new().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        bus.consume(
            Subscription {
                queue: "q".into(),
                bindings: vec!["resolution.incident.*".into()],
            },
            Arc::new(move |e: Envelope| {
                let sink = sink.clone();
                async move {
                    sink.lock().unwrap().push(e.event_type);
                    Ok(())
                }
            }),
        );
        bus.publish(&[
            envelope("resolution.incident.created"),
            envelope("control.change.submitted"),
            envelope("resolution.incident.closed"),
        ]);
        settle(|| seen.lock().unwrap().len() == 2).await;
        assert_eq!(
            *seen.lock().unwrap(),
            ["resolution.incident.created", "resolution.incident.closed"]
        );
    }

    #[tokio::test]
    async fn transient_failures_are_redelivered_up_to_the_limit_then_dead_lettered() {
        let bus = MemoryBus::new(3, Metrics::new().unwrap());
        let attempts = Arc::new(AtomicU32::new(0));
        let counter = attempts.clone();
        bus.consume(
            Subscription {
                queue: "q".into(),
                bindings: vec!["#".into()],
            },
            Arc::new(move |e: Envelope| {
                let counter = counter.clone();
                async move {
                    counter.fetch_add(1, Ordering::SeqCst);
                    match e.event_type.as_str() {
                        "bad" => Err(HandleError::Malformed("no".into())),
                        "flaky" => Err(HandleError::Transient("db down".into())),
                        _ => Ok(()),
                    }
                }
            }),
        );
        bus.publish(&[envelope("flaky"), envelope("bad"), envelope("good")]);
        settle(|| attempts.load(Ordering::SeqCst) == 5).await;
        // flaky: 3 deliveries (the limit), bad: 1 (no retry for malformed), good: 1.
        assert_eq!(attempts.load(Ordering::SeqCst), 5);
        let dead: Vec<String> = bus
            .dead_letters()
            .into_iter()
            .map(|(_, e)| e.event_type)
            .collect();
        assert_eq!(dead, ["flaky", "bad"]);
    }
}
