//! A runtime on a thread of its own, with one thread: for work whose tasks hand messages
//! to each other many times per client message.
//!
//! A relayed message on QUIC passes through several tasks (the endpoint's driver, the
//! sender's connection driver, its relay task, the receiver's relay task and connection
//! driver); one carried over the bus passes through the hub, a carrier, the bus task and
//! the NATS client's connection task, each way. On the multi-threaded runtime each
//! hand-off could wake another worker thread, and measured that way about a quarter of the
//! relay's CPU (over a third of a bus edge node's) went to the scheduler and the kernel's
//! thread switches. On one thread a hand-off is a push onto a local run queue. WebSocket
//! connections, the ticker and the SFU stay on the main runtime; the switchboard is shared
//! by all.

/// A current-thread runtime on its own named thread; dropping it stops the runtime, which
/// cancels every task still on it.
pub struct ThreadRuntime {
    handle: tokio::runtime::Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for ThreadRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadRuntime").finish_non_exhaustive()
    }
}

impl ThreadRuntime {
    /// Start the thread `name` and its runtime (timers and I/O enabled).
    pub fn start(name: &str) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                // Runs spawned tasks until told to stop (or the `ThreadRuntime` is dropped);
                // the runtime is then dropped here, which cancels every task still on it.
                runtime.block_on(async {
                    let _ = stopped.await;
                });
            })?;
        Ok(ThreadRuntime {
            handle,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The runtime, for spawning onto it, or for creating what must belong to it
    /// (`handle().enter()`: a socket and its driver belong to the runtime current at
    /// creation).
    pub fn handle(&self) -> &tokio::runtime::Handle {
        &self.handle
    }
}

impl Drop for ThreadRuntime {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            // Dropping the runtime cancels its tasks without waiting for them; the join
            // is short and leaves no thread behind a relay that has stopped.
            let _ = thread.join();
        }
    }
}
