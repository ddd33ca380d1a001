//! What the service refuses with: one error type every edge maps to its own codes.

use sb_core::{CoreError, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Core(#[from] CoreError),
    #[error("sign-in required")]
    Unauthenticated,
    #[error("wrong address or password")]
    BadCredentials,
    #[error("too many attempts; try again in {0} s")]
    RateLimited(u64),
    #[error("too many connections from your address (limit {0})")]
    TooManyConnections(usize),
    #[error("a guest may hold at most {0} connections")]
    TooManyGuestConnections(usize),
    /// A limit that waiting does not lift (a guest's messages per chat).
    #[error("{0}")]
    LimitReached(String),
    /// A storage quota is used up (a guest's bytes per chat).
    #[error("{0}")]
    QuotaExceeded(String),
    #[error("the server is shutting down")]
    ShuttingDown,
}

/// Names, titles and ids are one line of text: no control characters at all (message
/// bodies may hold line breaks and tabs; the edges refuse other control characters there).
pub(crate) fn one_line(what: &str, text: &str) -> Result<()> {
    match sb_core::text::line_control_char(text) {
        Some(c) => Err(CoreError::Invalid(format!(
            "{what} may not contain control characters or line breaks (found {})",
            sb_core::text::describe(c)
        ))
        .into()),
        None => Ok(()),
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        ServiceError::Core(CoreError::Store(e))
    }
}

pub type Result<T, E = ServiceError> = std::result::Result<T, E>;
