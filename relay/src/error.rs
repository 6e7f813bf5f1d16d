//! The relay's error type.

/// What can stop the relay from starting or serving.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The configuration is inconsistent.
    #[error("configuration: {0}")]
    Config(String),
    /// The ephemeral store could not be opened or wiped.
    #[error("store: {0}")]
    Store(String),
    /// A file could not be read or written.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// A key or certificate is invalid.
    #[error("identity: {0}")]
    Identity(#[from] approdo_core::Error),
}

impl From<sled::Error> for RelayError {
    fn from(e: sled::Error) -> Self {
        RelayError::Store(e.to_string())
    }
}
