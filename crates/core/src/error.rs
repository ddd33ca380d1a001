use thiserror::Error;

/// Why the core refused something. Each edge maps these to its own error form once
/// (HTTP status + code, WebSocket error frame, later XMPP stanza error).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CoreError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Conflict(String),
    #[error("message is {size} bytes; the limit is {limit}")]
    MessageTooLarge { size: usize, limit: usize },
    /// A policy (ethical wall, …) refused the message; the text is shown to the sender.
    #[error("{0}")]
    Blocked(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the storage port reports. Adapters keep driver details in the message (logged),
/// never in the type.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("already exists: {0}")]
    Conflict(String),
    #[error("storage unavailable: {0}")]
    Unavailable(String),
}
