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
    /// The TLS certificate or key could not be loaded or made.
    #[error("tls: {0}")]
    Tls(#[from] crate::tls::TlsError),
    /// A background task (ticker, SFU, revocation reloader) ended or panicked: the relay
    /// stops rather than serve on half-dead, and its service manager restarts it.
    #[error("background task {0} stopped")]
    TaskDied(&'static str),
}

impl From<sled::Error> for RelayError {
    fn from(e: sled::Error) -> Self {
        RelayError::Store(e.to_string())
    }
}
