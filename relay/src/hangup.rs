//! What `kill -HUP` (`systemctl reload`) does: re-read the revocation list and the TLS
//! certificate files, with no restart (a restart would end every running session).

/// Listen for SIGHUP and, at each, re-read the revocation list at `revocations` (when
/// given) and the certificate files (when TLS comes from files). Revoked staff are cut off
/// at once; new TLS handshakes get the new certificate while open connections keep theirs.
/// A file that cannot be read or used is logged (without its content) and changes nothing.
///
/// The returned task is for [`crate::Relay::supervise`]: if it dies, the relay stops rather
/// than run on without its reloads.
#[cfg(unix)]
pub fn reload_on_hangup(
    relay: crate::Inspector,
    revocations: Option<std::path::PathBuf>,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    Ok(tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            if let Some(path) = &revocations {
                match crate::admin::load_revocations(path)
                    .and_then(|list| relay.apply_revocations(list))
                {
                    Ok(cut_off) => tracing::info!(cut_off, "revocation list reloaded"),
                    Err(e) => tracing::error!(error = %e, "revocation list not reloaded"),
                }
            }
            match relay.reload_certificates() {
                Ok(true) => tracing::info!("tls certificate reloaded"),
                Ok(false) => {}
                Err(e) => tracing::error!(
                    error = %e,
                    "tls certificate not reloaded; the one in use stays"
                ),
            }
        }
    }))
}
