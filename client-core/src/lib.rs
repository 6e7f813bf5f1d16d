//! Approdo's protocol core, shared by every client and by the relay.
//!
//! This crate is sans-IO: callers feed it bytes and the current time, and drain frames to
//! send and events to show. It never opens a socket, reads a clock or spawns a task, so the
//! same code runs in the relay's tests, in the native client and in the browser (compiled to
//! WebAssembly). See `docs/protocol.md` for the wire format it implements.

pub mod client;
pub mod content;
pub mod credential;
pub mod error;
pub mod identity;
pub mod ids;
pub mod limits;
pub mod noise;
pub mod observatory;
pub mod pow;
pub mod safety;
pub mod wire;

pub use error::Error;

/// Version of the wire protocol; bound into every Noise prologue and sent in every hello,
/// so that two implementations of different versions fail loudly instead of misreading.
pub const PROTOCOL_VERSION: u8 = 2;
