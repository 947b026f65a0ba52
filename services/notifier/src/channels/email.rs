//! E-mail through lettre: SMTP with STARTTLS, implicit TLS or (for a local relay) none, with
//! credentials and timeouts; or `.eml` files in a folder for development.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;

use super::SendError;
use crate::config::{EmailConfig, EmailTransport, SmtpTls};

/// An e-mail to send.
#[derive(Debug, Clone)]
pub struct Mail {
    /// The recipient's address.
    pub to: String,
    /// Subject.
    pub subject: String,
    /// Plain text body.
    pub text: String,
    /// HTML body.
    pub html: String,
}

/// The configured transport.
#[derive(Clone)]
pub enum Mailer {
    /// SMTP.
    Smtp(AsyncSmtpTransport<Tokio1Executor>, Mailbox),
    /// Files.
    File(AsyncFileTransport<Tokio1Executor>, Mailbox),
    /// Off.
    Off,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Smtp(..) => "Mailer::Smtp",
            Self::File(..) => "Mailer::File",
            Self::Off => "Mailer::Off",
        })
    }
}

impl Mailer {
    /// The transport `config` describes (SMTP connects lazily, per message, from a pool).
    ///
    /// # Errors
    /// A bad sender address, TLS parameters that cannot be built, or a folder that cannot be
    /// made.
    pub fn from_config(config: &EmailConfig) -> anyhow::Result<Self> {
        let from = || -> anyhow::Result<Mailbox> {
            config
                .from
                .parse()
                .map_err(|e| anyhow::anyhow!("notifier.email.from: {e}"))
        };
        match config.transport {
            EmailTransport::None => Ok(Self::Off),
            EmailTransport::File => {
                std::fs::create_dir_all(&config.file_dir).map_err(|e| {
                    anyhow::anyhow!("notifier.email.file_dir {}: {e}", config.file_dir)
                })?;
                Ok(Self::File(
                    AsyncFileTransport::new(&config.file_dir),
                    from()?,
                ))
            }
            EmailTransport::Smtp => {
                let parameters = || TlsParameters::new(config.host.clone());
                let tls = match config.tls {
                    SmtpTls::None => Tls::None,
                    SmtpTls::Starttls => Tls::Required(parameters()?),
                    SmtpTls::Tls => Tls::Wrapper(parameters()?),
                };
                let mut builder =
                    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(config.host.as_str())
                        .port(config.port)
                        .tls(tls)
                        .timeout(Some(Duration::from_secs(config.timeout_seconds)));
                if !config.username.is_empty() {
                    builder = builder.credentials(Credentials::new(
                        config.username.clone(),
                        config.password.expose_secret().to_owned(),
                    ));
                }
                Ok(Self::Smtp(builder.build(), from()?))
            }
        }
    }

    /// Whether e-mail can be sent at all.
    pub fn enabled(&self) -> bool {
        !matches!(self, Self::Off)
    }

    /// Sends `mail` (plain text and HTML alternatives).
    ///
    /// # Errors
    /// [`SendError`]: permanent for a bad address, a 5xx reply or the channel being off;
    /// transient for a connection failure or a 4xx reply.
    pub async fn send(&self, mail: &Mail) -> Result<(), SendError> {
        let from = match self {
            Self::Smtp(_, from) | Self::File(_, from) => from.clone(),
            Self::Off => {
                return Err(SendError::permanent(
                    "e-mail is off (notifier.email.transport: none)",
                ));
            }
        };
        let to: Mailbox = mail
            .to
            .parse()
            .map_err(|e| SendError::permanent(format!("bad address {}: {e}", mail.to)))?;
        let message = Message::builder()
            .from(from)
            .to(to)
            .subject(mail.subject.clone())
            .multipart(
                MultiPart::alternative()
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_PLAIN)
                            .body(mail.text.clone()),
                    )
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_HTML)
                            .body(mail.html.clone()),
                    ),
            )
            .map_err(|e| SendError::permanent(format!("the message cannot be built: {e}")))?;
        match self {
            Self::Smtp(transport, _) => transport.send(message).await.map(|_| ()).map_err(|e| {
                if e.is_permanent() {
                    SendError::permanent(format!("SMTP: {e}"))
                } else {
                    SendError::transient(format!("SMTP: {e}"))
                }
            }),
            Self::File(transport, _) => transport
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| SendError::transient(format!("writing the message: {e}"))),
            Self::Off => Ok(()),
        }
    }
}
