//! One direction of a carried connection, made reliable over a bus that delivers at most
//! once (NATS core drops messages under overload and across reconnects).
//!
//! The sending side numbers each bus message of a connection (1, 2, 3, …), keeps it until
//! the other node acknowledges it, and sends everything unacknowledged again every
//! [`RESEND_AFTER`]. The receiving side ([`Receiving`]) takes messages only in order and
//! acknowledges the highest it took after each one; a duplicate or a message after a gap
//! is dropped (and acknowledged, so the sender learns where to resume). So the frames of a
//! carried connection arrive at the other node exactly once and in order, as over TCP, and
//! the protocol's own sequence numbers above that are untouched.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use approdo_core::identity::SignedCertificate;

use super::forward::{BusCommand, Carried, MAX_CARRIED_FRAME_BYTES};
use crate::server::Outgoing;

/// How long a bus message may stay unacknowledged before it is sent again.
pub const RESEND_AFTER: Duration = Duration::from_millis(300);

/// Most bus messages of one connection and direction in flight. Past it the carrier stops
/// taking frames, its input fills, and the hub cuts the connection off, as it does a
/// client that stopped reading.
pub const MAX_IN_FLIGHT: usize = 256;

/// How long a carrier that has sent its last message keeps resending it for an
/// acknowledgement before it gives up.
const END_WAIT: Duration = Duration::from_secs(5);

/// Most frames gathered into one bus message.
const GATHER_AT_MOST: usize = 256;

/// Which way a carrier sends: the edge carries the client's frames to the home node, the
/// home carries what its switchboard writes back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Edge → home; the address tag goes with every message (whichever arrives first opens
    /// the connection at the home node).
    ToHome {
        /// The edge's rate-limit tag for the client.
        tag: [u8; 16],
        /// For a staff member's connection to the home of their sessions: the certificate
        /// the edge vouches for, sent with the first message.
        staff: Option<std::sync::Arc<SignedCertificate>>,
    },
    /// Home → edge.
    ToEdge,
}

/// What a carrier reads: the hub's outbox for a carried connection (home), or batches of
/// a client's frames (edge).
pub(crate) enum Input {
    /// The home node's outbox for the connection.
    Outbox(mpsc::Receiver<Outgoing>),
    /// The edge's batches, one per burst the client sent; the end when the sender drops.
    /// A batch over [`MAX_CARRIED_FRAME_BYTES`] leaves in several messages: its frames
    /// not sent yet wait in the second field.
    Batches(mpsc::Receiver<Vec<Vec<u8>>>, VecDeque<Vec<u8>>),
    /// The outbox said to close after the frames just returned: that is next.
    Ended(Option<u16>),
}

/// What one read of the input gives.
enum Step {
    Frames(Vec<Vec<u8>>),
    End(Option<u16>),
}

impl Input {
    async fn next(&mut self) -> Step {
        match self {
            Input::Batches(rx, left) => {
                if left.is_empty() {
                    match rx.recv().await {
                        Some(batch) => left.extend(batch),
                        None => return Step::End(None),
                    }
                }
                let mut frames = Vec::new();
                let mut bytes = 0;
                while let Some(frame) = left.front()
                    && (frames.is_empty() || bytes + frame.len() <= MAX_CARRIED_FRAME_BYTES)
                {
                    bytes += frame.len();
                    frames.extend(left.pop_front());
                }
                Step::Frames(frames)
            }
            Input::Outbox(rx) => {
                let mut frames = Vec::new();
                let mut bytes = 0;
                let mut next = rx.recv().await;
                loop {
                    match next {
                        Some(Outgoing::Frame(frame)) => {
                            bytes += frame.len();
                            frames.push(frame.to_vec());
                        }
                        Some(Outgoing::Close) | None if frames.is_empty() => {
                            return Step::End(None);
                        }
                        Some(Outgoing::CloseWith(code)) if frames.is_empty() => {
                            return Step::End(Some(code));
                        }
                        // The end comes next time, after the frames before it.
                        Some(Outgoing::CloseWith(code)) => {
                            *self = Input::Ended(Some(code));
                            return Step::Frames(frames);
                        }
                        Some(Outgoing::Close) | None => {
                            *self = Input::Ended(None);
                            return Step::Frames(frames);
                        }
                    }
                    // One more frame stays under the limit (a frame is at most
                    // `MAX_FRAME_LEN`).
                    if frames.len() >= GATHER_AT_MOST || bytes >= MAX_CARRIED_FRAME_BYTES {
                        return Step::Frames(frames);
                    }
                    next = match rx.try_recv() {
                        Ok(out) => Some(out),
                        Err(_) => return Step::Frames(frames),
                    };
                }
            }
            Input::Ended(code) => Step::End(*code),
        }
    }
}

/// The acknowledgement channel of a carrier: the hub sets the highest sequence number the
/// other node has acknowledged.
pub type Acks = watch::Sender<u64>;

/// Start the carrier of connection `conn` towards node `to` on `runtime` (the bus's
/// thread; the current runtime when `None`): it reads `input`, sends over `bus`, and takes
/// acknowledgements through the returned [`Acks`].
pub(crate) fn spawn(
    runtime: Option<&tokio::runtime::Handle>,
    bus: mpsc::Sender<BusCommand>,
    to: String,
    conn: u64,
    direction: Direction,
    input: Input,
) -> Acks {
    let (acks, acked) = watch::channel(0);
    let carrier = run(bus, to, conn, direction, input, acked);
    match runtime {
        Some(runtime) => drop(runtime.spawn(carrier)),
        None => drop(tokio::spawn(carrier)),
    }
    acks
}

fn message(conn: u64, direction: &Direction, seq: u64, step: Step) -> Carried {
    match (direction, step) {
        (Direction::ToHome { tag, staff }, Step::Frames(frames)) => Carried::Frames {
            conn,
            tag: *tag,
            seq,
            frames,
            staff: staff
                .as_ref()
                .filter(|_| seq == 1)
                .map(|s| SignedCertificate::clone(s)),
        },
        (Direction::ToHome { .. }, Step::End(_)) => Carried::Closed { conn, seq },
        (Direction::ToEdge, Step::Frames(frames)) => Carried::Out { conn, seq, frames },
        (Direction::ToEdge, Step::End(code)) => Carried::Close { conn, seq, code },
    }
}

async fn run(
    bus: mpsc::Sender<BusCommand>,
    to: String,
    conn: u64,
    direction: Direction,
    mut input: Input,
    mut acked: watch::Receiver<u64>,
) {
    let mut next_seq = 1u64;
    let mut in_flight: VecDeque<(u64, Carried)> = VecDeque::new();
    let mut last_sent = Instant::now();
    let mut ended_at: Option<Instant> = None;
    let send = |message: Carried| {
        let to = to.clone();
        let bus = bus.clone();
        async move { bus.send(BusCommand::Send { to, message }).await.is_ok() }
    };
    loop {
        let taking = ended_at.is_none() && in_flight.len() < MAX_IN_FLIGHT;
        let resend_at = tokio::time::Instant::from_std(last_sent + RESEND_AFTER);
        tokio::select! {
            step = input.next(), if taking => {
                let end = matches!(step, Step::End(_));
                let m = message(conn, &direction, next_seq, step);
                in_flight.push_back((next_seq, m.clone()));
                next_seq += 1;
                if !send(m).await {
                    return;
                }
                last_sent = Instant::now();
                if end {
                    ended_at = Some(Instant::now());
                }
            }
            changed = acked.changed() => {
                if changed.is_err() {
                    return; // the hub forgot the connection
                }
                let up_to = *acked.borrow_and_update();
                while in_flight.front().is_some_and(|(seq, _)| *seq <= up_to) {
                    in_flight.pop_front();
                }
                if ended_at.is_some() && in_flight.is_empty() {
                    return;
                }
            }
            () = tokio::time::sleep_until(resend_at), if !in_flight.is_empty() => {
                if ended_at.is_some_and(|at| at.elapsed() > END_WAIT) {
                    return;
                }
                for (_, m) in &in_flight {
                    if !send(m.clone()).await {
                        return;
                    }
                }
                last_sent = Instant::now();
            }
        }
    }
}

/// The receiving side of one carried connection and direction: which bus message comes
/// next.
#[derive(Debug, Default)]
pub struct Receiving {
    taken_up_to: u64,
}

impl Receiving {
    /// Whether the message numbered `seq` is the next one (take it); either way,
    /// [`Receiving::up_to`] is what to acknowledge afterwards.
    pub fn take(&mut self, seq: u64) -> bool {
        if seq == self.taken_up_to + 1 {
            self.taken_up_to = seq;
            true
        } else {
            false
        }
    }

    /// The highest message taken, in order.
    pub fn up_to(&self) -> u64 {
        self.taken_up_to
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_next_message_is_taken() {
        let mut r = Receiving::default();
        assert!(!r.take(2), "after a gap");
        assert!(r.take(1));
        assert!(!r.take(1), "a duplicate");
        assert!(r.take(2));
        assert_eq!(r.up_to(), 2);
    }

    /// An edge's carrier for connection 7 towards "home": its input, what it sends, its
    /// acknowledgements.
    fn edge_carrier() -> (mpsc::Sender<Vec<Vec<u8>>>, mpsc::Receiver<BusCommand>, Acks) {
        let (bus, sent) = mpsc::channel(64);
        let (batches, input) = mpsc::channel(8);
        let direction = Direction::ToHome {
            tag: [1; 16],
            staff: None,
        };
        let input = Input::Batches(input, VecDeque::new());
        let acks = spawn(None, bus, "home".into(), 7, direction, input);
        (batches, sent, acks)
    }

    #[tokio::test]
    async fn a_large_burst_leaves_in_messages_that_each_fit_the_bus() {
        let (batches, mut sent, acks) = edge_carrier();
        // A client's burst of 64 frames at the frame limit: 4 MiB, four times what NATS
        // takes in one message.
        let burst: Vec<Vec<u8>> = (0..64u8)
            .map(|i| vec![i; approdo_core::limits::MAX_FRAME_LEN])
            .collect();
        batches.send(burst.clone()).await.expect("send");
        let mut received = Vec::new();
        let mut seq_expected = 1;
        while received.len() < burst.len() {
            let Some(BusCommand::Send {
                message: Carried::Frames { seq, frames, .. },
                ..
            }) = sent.recv().await
            else {
                panic!("frames");
            };
            assert_eq!(seq, seq_expected);
            seq_expected += 1;
            let mut bundler = super::super::forward::Bundler::default();
            let message = Carried::Frames {
                conn: 7,
                tag: [1; 16],
                seq,
                frames: frames.clone(),
                staff: None,
            };
            bundler.add("home", &message);
            let mut bundles = bundler.take();
            assert_eq!(bundles.len(), 1, "one message fits one bundle");
            let bundle = bundles.pop().expect("a bundle").1;
            assert!(
                bundle.len() <= super::super::forward::MAX_BUNDLE_BYTES,
                "message {seq}: {} bytes",
                bundle.len()
            );
            received.extend(frames);
            acks.send(seq).expect("ack");
        }
        assert!(received == burst, "every frame once, in order");
    }

    #[tokio::test]
    async fn a_lost_message_is_sent_again_until_acknowledged_then_never() {
        let (batches, mut sent, acks) = edge_carrier();
        batches.send(vec![b"a".to_vec()]).await.expect("send");
        let first = sent.recv().await.expect("sent");
        // Lost on the bus: nothing acknowledges it, so it comes again.
        let again = tokio::time::timeout(RESEND_AFTER * 3, sent.recv())
            .await
            .expect("resent in time")
            .expect("sent");
        let (BusCommand::Send { message: m1, .. }, BusCommand::Send { message: m2, .. }) =
            (first, again)
        else {
            panic!("sends");
        };
        assert_eq!(m1, m2);
        assert!(matches!(m1, Carried::Frames { seq: 1, .. }));
        acks.send(1).expect("ack");
        drop(batches);
        let last = sent.recv().await.expect("the end");
        assert!(matches!(
            last,
            BusCommand::Send {
                message: Carried::Closed { conn: 7, seq: 2 },
                ..
            }
        ));
        acks.send(2).expect("ack");
        // Everything acknowledged: the carrier ends and sends nothing more.
        assert!(
            tokio::time::timeout(RESEND_AFTER * 3, sent.recv())
                .await
                .map_or(true, |m| m.is_none())
        );
    }
}
