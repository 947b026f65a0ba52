//! The `notifier` section of the configuration.

use std::collections::BTreeMap;

use meridian_chassis::config::ConfigError;
use secrecy::SecretString;
use serde::Deserialize;

/// The defaults of the `notifier` section, compiled in.
pub const DEFAULTS: &str = include_str!("defaults.yaml");

/// `notifier`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifierConfig {
    /// The address people reach Meridian at; action links start with it. Default
    /// `http://localhost:8080`.
    pub public_url: String,
    /// How long an action link works. Default 72 hours.
    pub link_ttl_hours: i64,
    /// How many wrong action-link tokens a client may try a minute before it is answered 429
    /// (0: no limit). Default 20.
    pub link_guesses_per_minute: u32,
    /// When true, an action link works only for a signed-in approver (a bearer token or the
    /// console's session cookie naming the link's approver). Either way, a link opened by someone
    /// else who is signed in is refused. Default false.
    pub require_login: bool,
    /// The time zone of a recipient who has not set one (IANA name). Default UTC.
    pub default_timezone: String,
    /// E-mail.
    pub email: EmailConfig,
    /// Named chat destinations (Slack or Microsoft Teams incoming webhooks) rules can address.
    pub chat: BTreeMap<String, ChatDestination>,
    /// Retries and polling of deliveries.
    pub delivery: DeliveryConfig,
    /// Outbound webhooks.
    pub webhooks: WebhookConfig,
}

/// `notifier.email`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// `smtp`, `file` (each message written as an .eml file under `file_dir`, for development),
    /// or `none` (the e-mail channel is off; such notifications fail visibly). Default `none`.
    pub transport: EmailTransport,
    /// SMTP host. Default localhost.
    pub host: String,
    /// SMTP port. Default 25.
    pub port: u16,
    /// `none` (plain text; only for a relay on the same host), `starttls` (required), or `tls`
    /// (implicit TLS, port 465). Default `starttls`.
    pub tls: SmtpTls,
    /// SMTP user; empty for none.
    pub username: String,
    /// SMTP password.
    pub password: SecretString,
    /// The sender, e.g. `Meridian <meridian@example.com>`.
    pub from: String,
    /// Where the `file` transport writes. Default `mail`.
    pub file_dir: String,
    /// Connection and command timeout. Default 15 s.
    pub timeout_seconds: u64,
}

/// `notifier.email.transport`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmailTransport {
    /// An SMTP server.
    Smtp,
    /// .eml files in a folder.
    File,
    /// Off.
    None,
}

/// `notifier.email.tls`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// No encryption.
    None,
    /// STARTTLS, required.
    Starttls,
    /// TLS from the first byte.
    Tls,
}

/// `notifier.chat.<name>`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatDestination {
    /// `slack` or `teams`.
    pub kind: ChatKind,
    /// The incoming webhook's address (a secret: whoever has it may post).
    pub url: SecretString,
}

/// The chat formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChatKind {
    /// Slack Block Kit.
    Slack,
    /// Microsoft Teams (an Adaptive Card).
    Teams,
}

/// `notifier.delivery`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryConfig {
    /// How often due deliveries are looked for. Default 1000 ms.
    pub poll_ms: u64,
    /// How many are taken at once. Default 50.
    pub batch: i64,
    /// Attempts before a delivery is marked failed. Default 8.
    pub max_attempts: i32,
    /// The first retry's delay; each next one doubles. Default 30 s.
    pub backoff_base_seconds: i64,
    /// The longest delay between attempts. Default 1 hour.
    pub backoff_max_seconds: i64,
    /// How long a taken delivery is reserved for its sender (a crashed sender's work is taken
    /// again after it). Default 300 s.
    pub lease_seconds: i64,
}

/// `notifier.webhooks`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Allow deliveries (webhooks and chat) to loopback, private, link-local and other
    /// non-public addresses. Default false (no SSRF into the cluster or the cloud's metadata).
    pub allow_private: bool,
    /// Request timeout. Default 10 s.
    pub timeout_seconds: u64,
}

impl NotifierConfig {
    /// Checks what serde cannot.
    ///
    /// # Errors
    /// The first bad key, named.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let url = url_of(&self.public_url)
            .map_err(|reason| ConfigError::key("notifier.public_url", reason))?;
        if url.path() != "/" && !url.path().is_empty() && url.path().ends_with('/') {
            return Err(ConfigError::key(
                "notifier.public_url",
                "must not end with a slash",
            ));
        }
        if !(1..=24 * 90).contains(&self.link_ttl_hours) {
            return Err(ConfigError::key(
                "notifier.link_ttl_hours",
                "must be 1 to 2160 (90 days)",
            ));
        }
        if self.default_timezone.parse::<chrono_tz::Tz>().is_err() {
            return Err(ConfigError::key(
                "notifier.default_timezone",
                "must be an IANA time zone, e.g. Europe/Paris",
            ));
        }
        if self.email.transport != EmailTransport::None
            && self.email.from.parse::<lettre::message::Mailbox>().is_err()
        {
            return Err(ConfigError::key(
                "notifier.email.from",
                "must be an address, e.g. Meridian <meridian@example.com>",
            ));
        }
        for (name, destination) in &self.chat {
            use secrecy::ExposeSecret;
            url_of(destination.url.expose_secret())
                .map_err(|reason| ConfigError::key(format!("notifier.chat.{name}.url"), reason))?;
        }
        let d = &self.delivery;
        if d.poll_ms == 0 || d.batch < 1 || d.max_attempts < 1 || d.backoff_base_seconds < 1 {
            return Err(ConfigError::key(
                "notifier.delivery",
                "poll_ms, batch, max_attempts and backoff_base_seconds must be positive",
            ));
        }
        if d.backoff_max_seconds < d.backoff_base_seconds || d.lease_seconds < 10 {
            return Err(ConfigError::key(
                "notifier.delivery",
                "backoff_max_seconds must be at least backoff_base_seconds, lease_seconds at least 10",
            ));
        }
        Ok(())
    }
}

/// An http or https URL with a host.
///
/// # Errors
/// Why it is not one.
pub fn url_of(raw: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(raw).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must be an http or https URL".to_owned());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("must name a host".to_owned());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials".to_owned());
    }
    Ok(url)
}
