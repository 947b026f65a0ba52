//! The ways out: e-mail over SMTP (or to files in development), and HTTP for chat webhooks and
//! integrators' webhooks, guarded against reaching internal addresses.

pub mod email;
pub mod http;

/// Why a send failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    /// It will fail again however often it is tried (a refused address, a 5xx SMTP reply, a
    /// refused destination): no retry.
    pub permanent: bool,
    /// What happened.
    pub message: String,
    /// The HTTP status, when there was a response.
    pub status: Option<u16>,
}

impl SendError {
    /// A failure worth retrying.
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            permanent: false,
            message: message.into(),
            status: None,
        }
    }

    /// A failure not worth retrying.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            permanent: true,
            message: message.into(),
            status: None,
        }
    }
}
