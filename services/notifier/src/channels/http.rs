//! HTTP deliveries (chat and integrators' webhooks): POST with a JSON body, no redirects, no
//! proxy from the environment, a timeout, TLS through the system's OpenSSL, and every address a
//! host resolves to checked before the connection is made to it (no SSRF, no DNS rebinding).

use std::sync::Arc;
use std::time::Duration;

use ureq::config::Config;
use ureq::http::Uri;
use ureq::tls::{TlsConfig, TlsProvider};
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

use super::SendError;
use crate::domain::address;

/// Resolves as usual, then refuses the lot when any address is not public (unless allowed).
#[derive(Debug)]
struct Guarded {
    inner: DefaultResolver,
    allow_private: bool,
}

impl Resolver for Guarded {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let addrs = self.inner.resolve(uri, config, timeout)?;
        if !self.allow_private {
            for addr in addrs.iter() {
                if let Some(why) = address::refused(addr.ip()) {
                    return Err(ureq::Error::Io(std::io::Error::new(
                        std::io::ErrorKind::PermissionDenied,
                        format!(
                            "{} resolves to {} ({why}); deliveries to internal addresses are off \
                             (notifier.webhooks.allow_private)",
                            uri.host().unwrap_or_default(),
                            addr.ip()
                        ),
                    )));
                }
            }
        }
        Ok(addrs)
    }
}

/// The HTTP client of deliveries.
#[derive(Clone, Debug)]
pub struct Http {
    agent: Arc<ureq::Agent>,
}

/// The largest response body read (and kept for the log).
const MAX_RESPONSE: u64 = 64 * 1024;

impl Http {
    /// A client refusing internal addresses unless `allow_private`.
    pub fn new(allow_private: bool, timeout: Duration) -> Self {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .max_redirects(0)
            .proxy(None)
            .http_status_as_error(false)
            .user_agent("Meridian-Notifier/1")
            .tls_config(
                TlsConfig::builder()
                    .provider(TlsProvider::NativeTls)
                    .build(),
            )
            .build();
        let agent = ureq::Agent::with_parts(
            config,
            DefaultConnector::default(),
            Guarded {
                inner: DefaultResolver::default(),
                allow_private,
            },
        );
        Self {
            agent: Arc::new(agent),
        }
    }

    /// POSTs `body` as `content_type` with `headers`; the status of a 2xx answer.
    ///
    /// # Errors
    /// [`SendError`]: permanent for a refused address, a bad URL or 410 Gone; transient for
    /// anything else (no answer, another status).
    pub async fn post(
        &self,
        url: &str,
        content_type: &'static str,
        headers: Vec<(String, String)>,
        body: String,
    ) -> Result<u16, SendError> {
        let agent = self.agent.clone();
        let url = url.to_owned();
        tokio::task::spawn_blocking(move || {
            let mut request = agent.post(&url).header("content-type", content_type);
            for (name, value) in &headers {
                request = request.header(name.as_str(), value.as_str());
            }
            match request.send(body.as_bytes()) {
                Ok(mut response) => {
                    let status = response.status().as_u16();
                    // Drain a little so the connection can be reused; the text is for the log.
                    let text = response
                        .body_mut()
                        .with_config()
                        .limit(MAX_RESPONSE)
                        .read_to_string()
                        .unwrap_or_default();
                    if (200..300).contains(&status) {
                        Ok(status)
                    } else {
                        let snippet: String = text.chars().take(200).collect();
                        Err(SendError {
                            permanent: status == 410,
                            message: format!("HTTP {status}: {snippet}"),
                            status: Some(status),
                        })
                    }
                }
                Err(ureq::Error::Io(e)) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                    Err(SendError::permanent(e.to_string()))
                }
                Err(e @ ureq::Error::BadUri(_)) => Err(SendError::permanent(e.to_string())),
                Err(e) => Err(SendError::transient(e.to_string())),
            }
        })
        .await
        .unwrap_or_else(|e| Err(SendError::transient(format!("the sender stopped: {e}"))))
    }
}
