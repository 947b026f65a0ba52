//! Logs, request and trace ids, and Prometheus metrics.
//!
//! Every request gets a request id (the caller's `X-Request-Id` when it sends a sane one) and a
//! trace id (from a W3C `traceparent` header, or new); both are echoed in response headers, the
//! trace id is in every problem body, and both are fields of the request's log span. Metrics live
//! in one [`Metrics`] value per process (no global registry), rendered at `/metrics`.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, web};
use prometheus::{
    HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};
use tracing::Instrument;
use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, TelemetryConfig};

tokio::task_local! {
    static TRACE_ID: String;
}

/// The trace id of the request being handled, or `-` outside a request.
pub fn current_trace_id() -> String {
    TRACE_ID
        .try_with(Clone::clone)
        .unwrap_or_else(|_| "-".to_owned())
}

/// The ids of one request, in its extensions.
#[derive(Debug, Clone)]
pub struct RequestIds {
    /// The request id.
    pub request_id: String,
    /// The W3C trace id (32 hex digits).
    pub trace_id: String,
}

/// Installs the global log subscriber. Call once, at start-up.
///
/// # Errors
/// A log filter that does not parse.
pub fn init_logs(config: &TelemetryConfig) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(&config.log_level)
        .map_err(|error| anyhow::anyhow!("telemetry.log_level: {error}"))?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let result = match config.log_format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        LogFormat::Text => builder.compact().try_init(),
    };
    // A second init (several tests in one process) keeps the first subscriber.
    let _ = result;
    Ok(())
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    // getrandom only fails where the OS has no entropy source; a zero id is still an id.
    let _ = getrandom::fill(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

fn trace_id_from(req: &ServiceRequest) -> Option<String> {
    // traceparent: version-traceid-parentid-flags
    let value = req.headers().get("traceparent")?.to_str().ok()?;
    let trace_id = value.split('-').nth(1)?;
    let valid = trace_id.len() == 32
        && trace_id.bytes().all(|b| b.is_ascii_hexdigit())
        && trace_id.bytes().any(|b| b != b'0');
    valid.then(|| trace_id.to_ascii_lowercase())
}

fn request_id_from(req: &ServiceRequest) -> Option<String> {
    let value = req.headers().get("x-request-id")?.to_str().ok()?;
    let sane = !value.is_empty()
        && value.len() <= 128
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    sane.then(|| value.to_owned())
}

/// Middleware: request and trace ids, a log span, and the per-route metrics.
///
/// # Errors
/// Whatever the inner service returns.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody + 'static>, actix_web::Error> {
    let started = Instant::now();
    let ids = RequestIds {
        request_id: request_id_from(&req).unwrap_or_else(|| random_hex(16)),
        trace_id: trace_id_from(&req).unwrap_or_else(|| random_hex(16)),
    };
    req.extensions_mut().insert(ids.clone());
    let metrics = req.app_data::<web::Data<Metrics>>().cloned();
    let method = req.method().to_string();
    let span = tracing::info_span!(
        "request",
        method = %method,
        path = %req.path(),
        request_id = %ids.request_id,
        trace_id = %ids.trace_id,
    );
    let result = TRACE_ID
        .scope(
            ids.trace_id.clone(),
            next.call(req).instrument(span.clone()),
        )
        .await;
    let mut response = result?;
    let status = response.status();
    let route = response
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    if let Some(metrics) = metrics {
        let labels = [method.as_str(), route.as_str(), status.as_str()];
        metrics.http_requests.with_label_values(&labels).inc();
        metrics
            .http_duration
            .with_label_values(&labels[..2])
            .observe(started.elapsed().as_secs_f64());
    }
    span.in_scope(|| {
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), route, "request failed");
        } else {
            tracing::debug!(status = status.as_u16(), route, "request done");
        }
    });
    let headers = response.headers_mut();
    for (name, value) in [
        ("x-request-id", ids.request_id),
        ("x-trace-id", ids.trace_id),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
    Ok(response)
}

/// The process's metrics.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// `meridian_http_requests_total{method,route,status}`.
    pub http_requests: IntCounterVec,
    /// `meridian_http_request_duration_seconds{method,route}`.
    pub http_duration: HistogramVec,
    /// `meridian_outbox_backlog{service}`: committed events not yet published.
    pub outbox_backlog: IntGaugeVec,
    /// `meridian_outbox_published_total{service}`.
    pub outbox_published: IntCounterVec,
    /// `meridian_bus_consumer_lag{queue}`: messages waiting in a consumer's queue.
    pub consumer_lag: IntGaugeVec,
    /// `meridian_bus_dead_lettered{queue}`: messages in a consumer's dead-letter queue.
    pub dead_lettered: IntGaugeVec,
    /// `meridian_bus_messages_consumed_total{queue,outcome}`.
    pub consumed: IntCounterVec,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// Registers every metric in a fresh registry.
    ///
    /// # Errors
    /// A metric registered twice (a bug).
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("meridian".to_owned()), None)?;
        let http_requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests by route and status"),
            &["method", "route", "status"],
        )?;
        let http_duration = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request latency").buckets(
                vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                ],
            ),
            &["method", "route"],
        )?;
        let outbox_backlog = IntGaugeVec::new(
            Opts::new("outbox_backlog", "Committed events not yet published"),
            &["service"],
        )?;
        let outbox_published = IntCounterVec::new(
            Opts::new("outbox_published_total", "Events published from the outbox"),
            &["service"],
        )?;
        let consumer_lag = IntGaugeVec::new(
            Opts::new("bus_consumer_lag", "Messages waiting in a consumer's queue"),
            &["queue"],
        )?;
        let dead_lettered = IntGaugeVec::new(
            Opts::new(
                "bus_dead_lettered",
                "Messages in a consumer's dead-letter queue",
            ),
            &["queue"],
        )?;
        let consumed = IntCounterVec::new(
            Opts::new("bus_messages_consumed_total", "Messages handled by outcome"),
            &["queue", "outcome"],
        )?;
        registry.register(Box::new(http_requests.clone()))?;
        registry.register(Box::new(http_duration.clone()))?;
        registry.register(Box::new(outbox_backlog.clone()))?;
        registry.register(Box::new(outbox_published.clone()))?;
        registry.register(Box::new(consumer_lag.clone()))?;
        registry.register(Box::new(dead_lettered.clone()))?;
        registry.register(Box::new(consumed.clone()))?;
        Ok(Self {
            registry,
            http_requests,
            http_duration,
            outbox_backlog,
            outbox_published,
            consumer_lag,
            dead_lettered,
            consumed,
        })
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_default()
    }
}

/// The trace id of a request (set by [`observe`]): the correlation id of what it causes.
pub fn trace_id_of(req: &actix_web::HttpRequest) -> Option<String> {
    use actix_web::HttpMessage;
    req.extensions()
        .get::<RequestIds>()
        .map(|ids| ids.trace_id.clone())
}
