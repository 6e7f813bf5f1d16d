//! What the switchboard hands the shell: frames for connections, closes, and commands for
//! the SFU, collected in one [`Outbox`] in the order they were decided, whichever part
//! (lobby, sessions, calls) decided them, so the frames to one connection keep their order.

use approdo_core::ids::{ParticipantId, SessionId};
use approdo_core::wire::{self, RelayFrame};
use axum::body::Bytes;

use super::ConnId;

/// Work for the shell. `Debug` prints sizes, never frame bytes.
#[derive(PartialEq, Eq)]
pub enum Output {
    /// Send these frame bytes on the connection (shared, not copied, with the resend buffer).
    Frame(ConnId, Bytes),
    /// Close the connection (after the frames queued before this).
    Close(ConnId),
    /// Work for the SFU.
    Call(CallCommand),
    /// Ask the other relay nodes for their observatory counts, for this coordinator's
    /// query (answered with `Switchboard::observatory_gathered`).
    GatherObservatory(ConnId),
}

/// What the SFU must do. `call` numbers each entry into a call, so a leave that overtakes
/// a slow join (or a join answered after its participant left) is recognised. `Debug`
/// never prints the offer: it names the browser's candidate addresses.
#[derive(PartialEq, Eq)]
pub enum CallCommand {
    /// Build the participant's peer connection from its offer; answer on `conn`.
    Join {
        /// Where the answer goes.
        conn: ConnId,
        /// The session.
        session: SessionId,
        /// The participant.
        participant: ParticipantId,
        /// This entry's number.
        call: u64,
        /// The SDP offer.
        offer: String,
    },
    /// Forward (or stop forwarding) the others' video to the participant.
    ReceiveVideo {
        /// The session.
        session: SessionId,
        /// The participant.
        participant: ParticipantId,
        /// The entry into the call.
        call: u64,
        /// Whether to forward video.
        receive: bool,
    },
    /// Close the participant's peer connection.
    Leave {
        /// The session.
        session: SessionId,
        /// The participant.
        participant: ParticipantId,
        /// The entry being ended.
        call: u64,
    },
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Output::Frame(conn, bytes) => f
                .debug_struct("Frame")
                .field("conn", conn)
                .field("len", &bytes.len())
                .finish_non_exhaustive(),
            Output::Close(conn) => f.debug_tuple("Close").field(conn).finish(),
            Output::Call(c) => f.debug_tuple("Call").field(c).finish(),
            Output::GatherObservatory(conn) => {
                f.debug_tuple("GatherObservatory").field(conn).finish()
            }
        }
    }
}

impl std::fmt::Debug for CallCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallCommand::Join {
                conn,
                participant,
                call,
                ..
            } => f
                .debug_struct("Join")
                .field("conn", conn)
                .field("participant", participant)
                .field("call", call)
                .finish_non_exhaustive(),
            CallCommand::ReceiveVideo {
                participant,
                call,
                receive,
                ..
            } => f
                .debug_struct("ReceiveVideo")
                .field("participant", participant)
                .field("call", call)
                .field("receive", receive)
                .finish_non_exhaustive(),
            CallCommand::Leave {
                participant, call, ..
            } => f
                .debug_struct("Leave")
                .field("participant", participant)
                .field("call", call)
                .finish_non_exhaustive(),
        }
    }
}

/// The outputs decided so far, in order. Every part of the switchboard writes into the same
/// one, handed down by the switchboard, so no part keeps a queue of its own to merge.
#[derive(Default)]
pub(super) struct Outbox {
    outputs: Vec<Output>,
}

impl Outbox {
    /// Queue a frame for a connection. Every frame the relay builds is bounded by the
    /// limits it enforces on input; one that still does not encode is a bug, logged
    /// (without its content) and dropped, never a panic in the ticker, a reader or the
    /// SIGHUP task.
    pub(super) fn frame(&mut self, conn: ConnId, frame: &RelayFrame) {
        match wire::encode(frame) {
            Ok(bytes) => self.outputs.push(Output::Frame(conn, bytes.into())),
            Err(_) => tracing::error!("a relay frame exceeded the frame limit and was dropped"),
        }
    }

    /// Queue frame bytes already encoded (an event kept for a resend).
    pub(super) fn encoded(&mut self, conn: ConnId, bytes: Bytes) {
        self.outputs.push(Output::Frame(conn, bytes));
    }

    /// Close the connection after what was queued for it.
    pub(super) fn close(&mut self, conn: ConnId) {
        self.outputs.push(Output::Close(conn));
    }

    /// Work for the SFU.
    pub(super) fn call(&mut self, command: CallCommand) {
        self.outputs.push(Output::Call(command));
    }

    /// Ask the other nodes for their observatory counts for `conn`.
    pub(super) fn gather_observatory(&mut self, conn: ConnId) {
        self.outputs.push(Output::GatherObservatory(conn));
    }

    /// Everything queued, in order.
    pub(super) fn take(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.outputs)
    }
}
