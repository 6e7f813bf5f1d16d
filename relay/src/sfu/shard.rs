//! A shard: one OS thread, one UDP socket, and every leg of the calls pinned to it. The
//! thread reads datagrams in batches, routes each to its leg, lets the legs' sans-IO
//! connections work, forwards each publisher's RTP to its receivers' legs on the same
//! thread (no hand-off between tasks), and writes what the legs produce in batches.
//!
//! Timers: every leg has one deadline; the shard keeps them in a heap and wakes for the
//! earliest, never sooner than [`MIN_WAIT`] (a leg with media is almost always "due now",
//! and waking for that would spin) nor later than [`MAX_WAIT`] (commands are read between
//! waits). A shard without legs sleeps on its commands alone.
//!
//! The async side talks to a shard with [`Command`]s and hears back through [`Event`]s.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::time::{Duration, Instant};

use super::leg::{Certificate, Kind, Leg, Output, Setup};
use super::router::{LegId, LegMap, Router};
use super::udp::Socket;

/// The shortest wait between loop turns when a deadline is (nearly) due.
pub const MIN_WAIT: Duration = Duration::from_millis(1);
/// The longest wait: how late a command (a new call member, a leave) may be read.
pub const MAX_WAIT: Duration = Duration::from_millis(10);
/// How long a shard without legs sleeps on its commands before it looks at its socket.
const IDLE_WAIT: Duration = Duration::from_secs(1);
/// A leg whose DTLS has not come up by then is closed (a forged fingerprint leaves it
/// "connecting" for ever, with no event).
pub const SETUP_TIMEOUT: Duration = Duration::from_secs(15);
/// Receive batches read per loop turn before timers and commands get their turn (each
/// batch forwarded before the next is read).
const BATCHES_PER_TURN: usize = 8;

/// What the SFU asks of a shard.
pub enum Command {
    /// Build a leg answering `offer`.
    Open {
        /// The leg's number, chosen by the SFU.
        leg: LegId,
        /// The member's SDP offer.
        offer: String,
    },
    /// Close a leg and forget its routes.
    Close {
        /// The leg.
        leg: LegId,
    },
    /// Where a leg's published media goes: `(receiver leg, receive slot)` per kind.
    Route {
        /// The publishing leg.
        leg: LegId,
        /// Receivers of its audio.
        audio: Vec<(LegId, usize)>,
        /// Receivers of its video.
        video: Vec<(LegId, usize)>,
    },
    /// Ask a leg's member for a key frame.
    Keyframe {
        /// The leg.
        leg: LegId,
    },
}

/// Hand-written: an offer names addresses and never goes to a log.
impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Open { leg, .. } => write!(f, "Open({leg})"),
            Command::Close { leg } => write!(f, "Close({leg})"),
            Command::Route { leg, .. } => write!(f, "Route({leg})"),
            Command::Keyframe { leg } => write!(f, "Keyframe({leg})"),
        }
    }
}

/// What a shard tells the SFU.
pub enum Event {
    /// The leg is built: send the member this answer.
    Answered {
        /// The leg.
        leg: LegId,
        /// The relay's SDP.
        sdp: String,
    },
    /// The offer could not be answered.
    Refused {
        /// The leg.
        leg: LegId,
    },
    /// The leg's DTLS came up.
    Connected {
        /// The leg.
        leg: LegId,
    },
    /// The leg failed, closed from the browser's side, or did not connect in time; the
    /// shard has already closed it and forgotten its routes.
    Gone {
        /// The leg.
        leg: LegId,
    },
}

impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Event::Answered { leg, .. } => write!(f, "Answered({leg})"),
            Event::Refused { leg } => write!(f, "Refused({leg})"),
            Event::Connected { leg } => write!(f, "Connected({leg})"),
            Event::Gone { leg } => write!(f, "Gone({leg})"),
        }
    }
}

/// Counts a shard keeps current for the census and the metrics.
#[derive(Debug, Default)]
pub struct Gauges {
    /// Legs held.
    pub legs: AtomicUsize,
    /// Routing entries: one fragment per leg plus every trusted address.
    pub routes: AtomicUsize,
    /// RTP packets written to receivers, all calls of this shard.
    pub forwarded: AtomicU64,
    /// Times a call member's media moved to a new address mid-call (a NAT rebinding, a
    /// phone changing networks) and the call followed.
    pub moves: AtomicU64,
}

/// The SFU's handle on a running shard.
pub struct ShardHandle {
    tx: Sender<Command>,
    thread: std::thread::JoinHandle<()>,
    /// Its counts.
    pub gauges: Arc<Gauges>,
    /// The address browsers are told for its legs.
    pub candidate: SocketAddr,
}

impl std::fmt::Debug for ShardHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardHandle").finish_non_exhaustive()
    }
}

impl ShardHandle {
    /// Hand over a command; `false` when the shard's thread is gone.
    pub fn send(&self, command: Command) -> bool {
        self.tx.send(command).is_ok()
    }

    /// Whether the shard's thread still runs (it ends only when the handle is dropped, or
    /// on a panic outside any one leg's work).
    pub fn is_running(&self) -> bool {
        !self.thread.is_finished()
    }
}

/// Where events go (called on the shard's thread; must not block).
pub type EventSink = Arc<dyn Fn(Event) + Send + Sync>;

/// Bind `bind` and start a shard's thread. Its legs announce `announce` with the bound
/// port and keep `retransmit` packets per outgoing video stream. The thread ends when the
/// handle is dropped.
pub fn spawn(
    index: usize,
    bind: SocketAddr,
    announce: IpAddr,
    retransmit: u16,
    events: EventSink,
) -> io::Result<ShardHandle> {
    let bound = Socket::bind(bind)?;
    let candidate = SocketAddr::new(announce, bound.local_addr()?.port());
    let certificate = Certificate::generate().map_err(io::Error::other)?;
    let (tx, rx) = mpsc::channel();
    let gauges = Arc::new(Gauges::default());
    let shard_gauges = gauges.clone();
    let make = move || Shard {
        socket: Socket::new(bound),
        candidate,
        certificate,
        retransmit,
        router: Router::default(),
        legs: LegMap::default(),
        heap: BinaryHeap::new(),
        touched: Vec::new(),
        outputs: Vec::new(),
        inbox: Vec::new(),
        targets: Vec::new(),
        gone: Vec::new(),
        moved: Vec::new(),
        events,
        gauges: shard_gauges,
        next_setup_check: Instant::now(),
    };
    let thread = std::thread::Builder::new()
        .name(format!("sfu-shard-{index}"))
        .spawn(move || make().run(rx))?;
    Ok(ShardHandle {
        tx,
        thread,
        gauges,
        candidate,
    })
}

struct LegState {
    /// Boxed: a connection is several KiB, and the legs map keeps its values in its own
    /// table, whose empty buckets (up to half of it after it grows) would each cost one.
    leg: Box<Leg>,
    audio: Vec<(LegId, usize)>,
    video: Vec<(LegId, usize)>,
    opened: Instant,
    scheduled: Option<Instant>,
    touched: bool,
}

struct Shard {
    socket: Socket,
    candidate: SocketAddr,
    certificate: Certificate,
    retransmit: u16,
    router: Router,
    legs: LegMap<LegState>,
    heap: BinaryHeap<Reverse<(Instant, LegId)>>,
    touched: Vec<LegId>,
    outputs: Vec<Output>,
    /// What the legs yielded while their datagrams were fed (see [`Leg::feed`]), in order,
    /// for [`Shard::process`]; one buffer for the shard instead of one per leg.
    inbox: Vec<(LegId, Output)>,
    targets: Vec<(LegId, usize)>,
    gone: Vec<LegId>,
    /// Legs whose member moved to a new address in this loop turn.
    moved: Vec<LegId>,
    events: EventSink,
    gauges: Arc<Gauges>,
    next_setup_check: Instant,
}

fn touch(legs: &mut LegMap<LegState>, touched: &mut Vec<LegId>, id: LegId) {
    if let Some(st) = legs.get_mut(&id)
        && !st.touched
    {
        st.touched = true;
        touched.push(id);
    }
}

/// Run one leg's work, catching a panic inside `rtc` (on input from the network, say): that
/// leg is then closed, and the shard and its other calls go on. `None` when it panicked.
fn guarded<T>(f: impl FnOnce() -> T) -> Option<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).ok()
}

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    approdo_core::ids::fill_random(&mut b);
    hex::encode(b)
}

impl Shard {
    fn run(mut self, rx: Receiver<Command>) {
        loop {
            loop {
                match rx.try_recv() {
                    Ok(c) => self.command(c),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        let ids: Vec<LegId> = self.legs.keys().copied().collect();
                        for id in ids {
                            self.remove(id);
                        }
                        self.socket.flush();
                        return;
                    }
                }
            }
            self.process(Instant::now());
            self.socket.flush();
            self.update_gauges();

            if self.legs.is_empty() {
                // Nothing to drive: sleep on the commands alone (an idle shard costs no
                // wake-ups); datagrams meanwhile can only be dropped, and are, below.
                match rx.recv_timeout(IDLE_WAIT) {
                    Ok(c) => self.command(c),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            } else {
                let now = Instant::now();
                let wait = match self.next_deadline() {
                    Some(d) => d.saturating_duration_since(now).clamp(MIN_WAIT, MAX_WAIT),
                    None => MAX_WAIT,
                };
                self.socket.wait(wait);
            }

            for _ in 0..BATCHES_PER_TURN {
                let now = Instant::now();
                let n = self.receive_batch(now);
                // What this batch brought leaves before the next batch is read: a datagram
                // waits in the relay for one batch's work (≤ RECV_BATCH datagrams), not a
                // whole turn's, when a backlog built up (after the shard was preempted).
                self.process(now);
                self.socket.flush();
                // A batch that was not full emptied the socket: no second, empty read.
                if n < super::udp::RECV_BATCH {
                    break;
                }
            }
            let now = Instant::now();
            for id in std::mem::take(&mut self.moved) {
                self.keyframes_for(id, now);
            }
            self.timers(now);
        }
    }

    /// Read one batch of datagrams and feed each to its leg; what the legs yield waits in
    /// `inbox` for [`Shard::process`]. The number of datagrams read.
    fn receive_batch(&mut self, now: Instant) -> usize {
        let Shard {
            socket,
            router,
            legs,
            touched,
            gone,
            gauges,
            moved,
            outputs,
            inbox,
            ..
        } = self;
        socket.recv(|from, datagram| {
            if let Ok(id) = router.route(from, datagram)
                && let Some(st) = legs.get_mut(&id)
            {
                let moves = st.leg.moves();
                if guarded(|| st.leg.feed(now, from, datagram, outputs)).is_none() {
                    gone.push(id);
                }
                inbox.extend(outputs.drain(..).map(|out| (id, out)));
                if st.leg.moves() != moves
                    && let Some(path) = st.leg.path()
                {
                    // The member moved: its new address is the one to keep.
                    router.pin(id, path);
                    gauges.moves.fetch_add(1, Ordering::Relaxed);
                    moved.push(id);
                }
                if !st.touched {
                    st.touched = true;
                    touched.push(id);
                }
            }
        })
    }

    fn command(&mut self, command: Command) {
        let now = Instant::now();
        match command {
            Command::Open { leg, offer } => {
                let setup = Setup {
                    candidate: self.candidate,
                    ufrag: random_hex(8),
                    pwd: random_hex(16),
                    certificate: self.certificate.clone(),
                    retransmit: self.retransmit,
                };
                match Leg::answer(now, &offer, &setup) {
                    Ok((l, sdp)) => {
                        self.remove(leg);
                        self.router
                            .insert(leg, setup.ufrag.as_bytes(), setup.pwd.as_bytes());
                        self.legs.insert(
                            leg,
                            LegState {
                                leg: Box::new(l),
                                audio: Vec::new(),
                                video: Vec::new(),
                                opened: now,
                                scheduled: None,
                                touched: false,
                            },
                        );
                        touch(&mut self.legs, &mut self.touched, leg);
                        // Counted before anyone hears of it.
                        self.update_gauges();
                        (self.events)(Event::Answered { leg, sdp });
                    }
                    Err(_) => {
                        // Not the error's text: rtc may quote the offer, and an offer
                        // names the member's addresses.
                        tracing::warn!("a call leg could not be set up");
                        (self.events)(Event::Refused { leg });
                    }
                }
            }
            Command::Close { leg } => self.remove(leg),
            Command::Route { leg, audio, video } => {
                if let Some(st) = self.legs.get_mut(&leg) {
                    st.audio = audio;
                    st.video = video;
                }
            }
            Command::Keyframe { leg } => {
                if let Some(st) = self.legs.get_mut(&leg) {
                    st.leg.request_keyframe(now);
                    touch(&mut self.legs, &mut self.touched, leg);
                }
            }
        }
    }

    /// After `moved`'s member changed address: what went to its old address, and what it
    /// sent from the new one before the check that let it in, is lost. Ask it and every
    /// member whose video it receives for a key frame, so no decoder waits for the periodic
    /// one.
    fn keyframes_for(&mut self, moved: LegId, now: Instant) {
        let publishers: Vec<LegId> = self
            .legs
            .iter()
            .filter(|(id, st)| **id == moved || st.video.iter().any(|(to, _)| *to == moved))
            .map(|(id, _)| *id)
            .collect();
        for id in publishers {
            if let Some(st) = self.legs.get_mut(&id) {
                st.leg.request_keyframe(now);
                touch(&mut self.legs, &mut self.touched, id);
            }
        }
    }

    /// Close a leg, send what its close produced, forget it and its routes.
    fn remove(&mut self, id: LegId) {
        self.router.remove(id);
        if let Some(mut st) = self.legs.remove(&id) {
            let socket = &mut self.socket;
            let _ = guarded(|| {
                st.leg.close();
                st.leg.transmit(|to, d| socket.push(to, d));
            });
        }
        self.update_gauges();
    }

    /// The earliest live deadline (stale heap entries are dropped on the way).
    fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(Reverse((at, id))) = self.heap.peek().copied() {
            match self.legs.get(&id) {
                Some(st) if st.scheduled == Some(at) => return Some(at),
                _ => {
                    self.heap.pop();
                }
            }
        }
        None
    }

    /// Run the timers of the legs that are due; close legs that never connected.
    fn timers(&mut self, now: Instant) {
        while let Some(Reverse((at, id))) = self.heap.peek().copied() {
            if at > now {
                break;
            }
            self.heap.pop();
            if let Some(st) = self.legs.get_mut(&id)
                && st.scheduled == Some(at)
            {
                st.scheduled = None;
                if guarded(|| st.leg.timeout(now)).is_none() {
                    self.gone.push(id);
                }
                touch(&mut self.legs, &mut self.touched, id);
            }
        }
        if now >= self.next_setup_check {
            self.next_setup_check = now + Duration::from_millis(500);
            for (id, st) in &self.legs {
                if !st.leg.is_connected() && now.duration_since(st.opened) > SETUP_TIMEOUT {
                    self.gone.push(*id);
                }
            }
        }
    }

    /// Let every touched leg work: state changes, forwarding, then its datagrams out and
    /// its next deadline in the heap.
    fn process(&mut self, now: Instant) {
        let forwarded_before = self.gauges.forwarded.load(Ordering::Relaxed);
        let mut forwarded = 0u64;
        let mut inbox = std::mem::take(&mut self.inbox);
        for (id, out) in inbox.drain(..) {
            self.output(now, id, out, &mut forwarded);
        }
        self.inbox = inbox;
        let mut i = 0;
        while i < self.touched.len() {
            let id = self.touched[i];
            i += 1;
            let Some(st) = self.legs.get_mut(&id) else {
                continue;
            };
            if guarded(|| st.leg.drain(&mut self.outputs)).is_none() {
                self.gone.push(id);
            }
            let mut outputs = std::mem::take(&mut self.outputs);
            for out in outputs.drain(..) {
                self.output(now, id, out, &mut forwarded);
            }
            self.outputs = outputs;
        }
        for id in self.touched.drain(..) {
            let Some(st) = self.legs.get_mut(&id) else {
                continue;
            };
            st.touched = false;
            let socket = &mut self.socket;
            let Some(next) = guarded(|| {
                st.leg.transmit(|to, d| socket.push(to, d));
                st.leg.deadline()
            }) else {
                self.gone.push(id);
                continue;
            };
            if next.is_some() && next != st.scheduled {
                st.scheduled = next;
                if let Some(at) = next {
                    self.heap.push(Reverse((at, id)));
                }
            }
        }
        let gone = std::mem::take(&mut self.gone);
        for id in gone {
            if self.legs.contains_key(&id) {
                self.remove(id);
                (self.events)(Event::Gone { leg: id });
            }
        }
        if forwarded > 0 {
            self.gauges
                .forwarded
                .store(forwarded_before + forwarded, Ordering::Relaxed);
        }
    }

    /// Act on what leg `id` yielded: tell the SFU of state changes, forward the member's
    /// RTP to its receivers.
    ///
    /// Each receiver's datagrams are taken from `rtc` right after its packet is written,
    /// not once per loop turn: a packet `rtc` holds on to waits in a queue in each stage of
    /// its write pipeline (about eight), and each of those queues keeps the capacity of its
    /// longest wait for the connection's life. Taken at the end of a turn, a full receive
    /// batch left them at tens of packets each, ≈ 130 KiB per leg (`docs/sfu-memory.md`);
    /// taken at once they stay at a few. The datagrams still leave in the turn's
    /// `sendmmsg` batches.
    fn output(&mut self, now: Instant, id: LegId, out: Output, forwarded: &mut u64) {
        match out {
            Output::Connected => (self.events)(Event::Connected { leg: id }),
            Output::Gone => self.gone.push(id),
            Output::Rtp(kind, ssrc, packet) => {
                let Some(st) = self.legs.get(&id) else {
                    return;
                };
                self.targets.clear();
                self.targets.extend_from_slice(match kind {
                    Kind::Audio => &st.audio,
                    Kind::Video => &st.video,
                });
                let source = (id << 32) ^ u64::from(ssrc);
                for k in 0..self.targets.len() {
                    let (to, slot) = self.targets[k];
                    let Some(t) = self.legs.get_mut(&to) else {
                        continue;
                    };
                    let socket = &mut self.socket;
                    let written = guarded(|| {
                        let written = t.leg.write(now, slot, kind, source, packet.clone());
                        t.leg.transmit(|to, d| socket.push(to, d));
                        written
                    });
                    match written {
                        Some(true) => *forwarded += 1,
                        Some(false) => {}
                        None => self.gone.push(to),
                    }
                    touch(&mut self.legs, &mut self.touched, to);
                }
            }
        }
    }

    fn update_gauges(&self) {
        self.gauges.legs.store(self.legs.len(), Ordering::Relaxed);
        self.gauges.routes.store(
            self.router.legs() + self.router.addresses(),
            Ordering::Relaxed,
        );
    }
}
