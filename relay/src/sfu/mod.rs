//! The SFU: every call's media goes browser → relay → browser, never peer to peer, so no
//! participant learns another's address. The relay forwards frames it cannot read: each
//! sender encrypts them end to end (SFrame, in the browser) with keys carried over the
//! Noise channels.
//!
//! * [`room`] decides who receives whom in which slot (plain logic);
//! * [`forward`] holds the per-packet rules (plain logic);
//! * [`router`] tells which leg a datagram belongs to (plain logic);
//! * [`leg`] is one member's connection on `rtc`'s sans-IO core, the only code that names
//!   its types;
//! * [`udp`] is a shard's socket with batched I/O;
//! * [`shard`] is a thread with one socket that drives the legs of the calls pinned to it
//!   and forwards between them;
//! * this module is the task that ties them together: it takes the switchboard's
//!   [`CallCommand`]s, pins each call to a shard, opens and closes legs, and keeps each
//!   publisher's fan-out up to date.

pub mod forward;
pub mod leg;
pub mod retransmit;
pub mod room;
pub mod router;
pub mod shard;
pub mod udp;

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use approdo_core::ids::{ParticipantId, SessionId};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::switchboard::{CallCommand, ConnId};
use forward::KeyframePlan;
use room::Rooms;
use router::LegId;
use shard::{Command, Event, ShardHandle};

/// Where the SFU listens for media.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SfuConfig {
    /// The address the shards' sockets bind and announce: the relay's address facing the
    /// browsers. It is the only candidate a browser ever sees.
    pub bind_ip: IpAddr,
    /// Announced instead of `bind_ip` behind a 1:1 NAT (a cloud VM's public address), and
    /// required when `bind_ip` is a wildcard.
    pub public_ip: Option<IpAddr>,
    /// The UDP port of shard 0; shard `i` uses `udp_port + i`. The firewall opens these
    /// ports only, whatever the number of calls. 0: any free port per shard (tests).
    pub udp_port: u16,
    /// Shard threads, each with its own socket and its calls. 0: one per CPU core.
    pub shards: usize,
    /// Video packets each connection keeps per outgoing stream to answer a receiver's
    /// retransmission request (NACK): a power of two, 16 to 1024. The default,
    /// [`leg::RETRANSMIT_BUFFER`], covers two NACK rounds at 500 ms RTT of 360p video
    /// (see there); each packet more costs about 2 KiB per stream once full.
    pub retransmit_buffer: u16,
}

impl Default for SfuConfig {
    fn default() -> Self {
        SfuConfig {
            bind_ip: IpAddr::from([127, 0, 0, 1]),
            public_ip: None,
            udp_port: 40_000,
            shards: 0,
            retransmit_buffer: leg::RETRANSMIT_BUFFER,
        }
    }
}

impl SfuConfig {
    /// The number of shards this configuration starts.
    pub fn shard_count(&self) -> usize {
        match self.shards {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }
}

/// What the SFU tells the rest of the relay.
pub enum Reply {
    /// Send this answer to the participant (if that entry into the call is still current).
    Answer {
        /// The participant's connection.
        conn: ConnId,
        /// The session.
        session: SessionId,
        /// The participant.
        participant: ParticipantId,
        /// The entry into the call.
        call: u64,
        /// The relay's SDP.
        sdp: String,
    },
    /// The participant's call could not be set up, or its connection failed: take it out.
    Failed {
        /// The participant's connection.
        conn: ConnId,
        /// The session.
        session: SessionId,
        /// The participant.
        participant: ParticipantId,
        /// The entry into the call.
        call: u64,
        /// Tell the page (setting up failed) or not (the page saw its connection fail).
        tell: bool,
    },
}

/// Hand-written: an SDP names addresses and key fingerprints, and never goes to a log.
impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reply::Answer { conn, call, .. } => f
                .debug_struct("Answer")
                .field("conn", conn)
                .field("call", call)
                .finish_non_exhaustive(),
            Reply::Failed {
                conn, call, tell, ..
            } => f
                .debug_struct("Failed")
                .field("conn", conn)
                .field("call", call)
                .field("tell", tell)
                .finish_non_exhaustive(),
        }
    }
}

/// Counts for tests and the benchmark: never who, only how many.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SfuCensus {
    /// Members the SFU holds a leg for (or is building one).
    pub members: usize,
    /// Legs (peer connections) alive on the shards.
    pub live_peer_connections: usize,
    /// Sessions with a call.
    pub calls: usize,
    /// Routing entries on the shards: a fragment per leg and each address it was reached
    /// from. 0 once every call has ended.
    pub routes: usize,
}

type Key = (SessionId, ParticipantId);

struct Member {
    call: u64,
    conn: ConnId,
    /// Forward the others' video to it (off on a weak connection).
    wants_video: bool,
    /// Its leg on the call's shard.
    leg: LegId,
    /// The shard answered: its receive slots exist.
    answered: bool,
    plan: KeyframePlan,
}

enum Msg {
    Command(CallCommand),
    Shard(Event),
}

/// Handle on the SFU task.
#[derive(Clone)]
pub struct Sfu {
    tx: mpsc::UnboundedSender<Msg>,
    census: Arc<Mutex<SfuCensus>>,
    gauges: Vec<Arc<shard::Gauges>>,
    candidates: Vec<SocketAddr>,
}

impl std::fmt::Debug for Sfu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sfu").finish_non_exhaustive()
    }
}

impl Sfu {
    /// Start the shards and the SFU task. `reply` is called (from that task) with answers
    /// and failures. Fails when a shard's port cannot be bound.
    pub fn start(config: &SfuConfig, reply: impl Fn(Reply) + Send + 'static) -> io::Result<Self> {
        Self::start_supervised(config, reply).map(|(s, _)| s)
    }

    /// [`Sfu::start`], also returning the task's handle so the relay can stop when the
    /// task dies (a relay without its SFU would accept calls it can never carry). The task
    /// ends when a shard's thread is gone.
    pub fn start_supervised(
        config: &SfuConfig,
        reply: impl Fn(Reply) + Send + 'static,
    ) -> io::Result<(Self, tokio::task::JoinHandle<()>)> {
        let retransmit = config.retransmit_buffer;
        if !retransmit.is_power_of_two() || !(16..=1024).contains(&retransmit) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "sfu.retransmit_buffer is a power of two from 16 to 1024",
            ));
        }
        let announce = config.public_ip.unwrap_or(config.bind_ip);
        if announce.is_unspecified() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "sfu.bind_ip is a wildcard: set sfu.public_ip to the address browsers reach",
            ));
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let events_tx = tx.clone();
        let events: shard::EventSink = Arc::new(move |e| {
            let _ = events_tx.send(Msg::Shard(e));
        });
        let mut shards = Vec::new();
        for i in 0..config.shard_count() {
            let port = match config.udp_port {
                0 => 0,
                p => u16::try_from(usize::from(p) + i).map_err(|_| {
                    io::Error::new(io::ErrorKind::InvalidInput, "sfu.udp_port + shards > 65535")
                })?,
            };
            let bind = SocketAddr::new(config.bind_ip, port);
            let handle =
                shard::spawn(i, bind, announce, retransmit, events.clone()).map_err(|e| {
                    io::Error::new(e.kind(), format!("SFU shard {i}, UDP port {port}: {e}"))
                })?;
            shards.push(handle);
        }
        let census = Arc::new(Mutex::new(SfuCensus::default()));
        let gauges = shards.iter().map(|s| s.gauges.clone()).collect();
        let candidates = shards.iter().map(|s| s.candidate).collect();
        let actor = Actor {
            shards,
            rooms: Rooms::default(),
            members: HashMap::new(),
            legs: HashMap::new(),
            pinned: HashMap::new(),
            next_leg: 1,
            census: census.clone(),
            epoch: Instant::now(),
            reply: Box::new(reply),
        };
        let task = tokio::spawn(actor.run(rx));
        Ok((
            Sfu {
                tx,
                census,
                gauges,
                candidates,
            },
            task,
        ))
    }

    /// Hand over a command from the switchboard.
    pub fn command(&self, command: CallCommand) {
        let _ = self.tx.send(Msg::Command(command));
    }

    /// Current counts.
    pub fn census(&self) -> SfuCensus {
        let mut c = *self.census.lock().unwrap_or_else(|p| p.into_inner());
        c.live_peer_connections = self
            .gauges
            .iter()
            .map(|g| g.legs.load(Ordering::Relaxed))
            .sum();
        c.routes = self
            .gauges
            .iter()
            .map(|g| g.routes.load(Ordering::Relaxed))
            .sum();
        c
    }

    /// The addresses browsers are told, one per shard (the relay's own: never a member's).
    pub fn candidates(&self) -> &[SocketAddr] {
        &self.candidates
    }

    /// RTP packets forwarded to receivers since start, all calls together (a count only:
    /// never which call or whose).
    pub fn forwarded_packets(&self) -> u64 {
        self.gauges
            .iter()
            .map(|g| g.forwarded.load(Ordering::Relaxed))
            .sum()
    }

    /// Times a call member's media moved to a new address and the call followed, since
    /// start (a count only).
    pub fn path_moves(&self) -> u64 {
        self.gauges
            .iter()
            .map(|g| g.moves.load(Ordering::Relaxed))
            .sum()
    }
}

struct Actor {
    shards: Vec<ShardHandle>,
    rooms: Rooms,
    members: HashMap<Key, Member>,
    /// Whose each leg is.
    legs: HashMap<LegId, Key>,
    /// The shard each session's call runs on, while it has members.
    pinned: HashMap<SessionId, usize>,
    next_leg: LegId,
    census: Arc<Mutex<SfuCensus>>,
    epoch: Instant,
    reply: Box<dyn Fn(Reply) + Send>,
}

/// How often key-frame plans are checked.
const PLAN_TICK: Duration = Duration::from_millis(100);

/// A shard's thread is gone: the SFU task ends, and with it the relay.
struct ShardDied;

impl Actor {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Msg>) {
        let mut tick = tokio::time::interval(PLAN_TICK);
        loop {
            let result = tokio::select! {
                msg = rx.recv() => match msg {
                    Some(m) => self.handle(m),
                    None => break,
                },
                _ = tick.tick() => self.tick(),
            };
            if result.is_err() {
                tracing::error!("an SFU shard stopped");
                break;
            }
            self.update_census();
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn send(&self, session: &SessionId, command: Command) -> Result<(), ShardDied> {
        let Some(shard) = self.pinned.get(session).and_then(|i| self.shards.get(*i)) else {
            return Ok(());
        };
        if shard.send(command) {
            Ok(())
        } else {
            Err(ShardDied)
        }
    }

    fn handle(&mut self, msg: Msg) -> Result<(), ShardDied> {
        match msg {
            Msg::Command(CallCommand::Join {
                conn,
                session,
                participant,
                call,
                offer,
            }) => self.join(conn, (session, participant), call, offer),
            Msg::Command(CallCommand::ReceiveVideo {
                session,
                participant,
                call,
                receive,
            }) => {
                if let Some(m) = self
                    .members
                    .get_mut(&(session, participant))
                    .filter(|m| m.call == call && m.wants_video != receive)
                {
                    m.wants_video = receive;
                    self.refresh(&session)?;
                }
                Ok(())
            }
            Msg::Command(CallCommand::Leave {
                session,
                participant,
                call,
            }) => {
                let key = (session, participant);
                if self.members.get(&key).is_some_and(|m| m.call == call) {
                    self.remove(key)?;
                }
                Ok(())
            }
            Msg::Shard(event) => self.shard_event(event),
        }
    }

    fn shard_event(&mut self, event: Event) -> Result<(), ShardDied> {
        let leg = match &event {
            Event::Answered { leg, .. }
            | Event::Refused { leg }
            | Event::Connected { leg }
            | Event::Gone { leg } => *leg,
        };
        let Some(key) = self.legs.get(&leg).copied() else {
            return Ok(());
        };
        let Some(call) = self
            .members
            .get(&key)
            .filter(|m| m.leg == leg)
            .map(|m| m.call)
        else {
            return Ok(());
        };
        match event {
            Event::Answered { sdp, .. } => {
                let Some(m) = self.members.get_mut(&key) else {
                    return Ok(());
                };
                m.answered = true;
                let conn = m.conn;
                tracing::info!("call member connected to the SFU");
                self.refresh(&key.0)?;
                (self.reply)(Reply::Answer {
                    conn,
                    session: key.0,
                    participant: key.1,
                    call,
                    sdp,
                });
                Ok(())
            }
            Event::Refused { .. } => self.fail(key, call, true),
            Event::Connected { .. } => {
                // Its receive slots work now: everyone it receives sends a key frame.
                let now = self.now_ms();
                for (from, _) in self.sources_of(&key) {
                    if let Some(p) = self.members.get_mut(&(key.0, from)) {
                        p.plan.changed(now);
                    }
                }
                Ok(())
            }
            Event::Gone { .. } => self.fail(key, call, false),
        }
    }

    /// The shard a new call goes to: the one with the fewest legs.
    fn least_loaded(&self) -> usize {
        (0..self.shards.len())
            .min_by_key(|i| self.shards[*i].gauges.legs.load(Ordering::Relaxed))
            .unwrap_or(0)
    }

    fn join(&mut self, conn: ConnId, key: Key, call: u64, offer: String) -> Result<(), ShardDied> {
        if self.members.contains_key(&key) {
            self.remove(key)?;
        }
        if self.rooms.join(key.0, key.1).is_err() {
            (self.reply)(Reply::Failed {
                conn,
                session: key.0,
                participant: key.1,
                call,
                tell: true,
            });
            return Ok(());
        }
        if !self.pinned.contains_key(&key.0) {
            let shard = self.least_loaded();
            self.pinned.insert(key.0, shard);
        }
        let leg = self.next_leg;
        self.next_leg += 1;
        self.members.insert(
            key,
            Member {
                call,
                conn,
                wants_video: true,
                leg,
                answered: false,
                plan: KeyframePlan::new(self.now_ms()),
            },
        );
        self.legs.insert(leg, key);
        self.send(&key.0, Command::Open { leg, offer })
    }

    /// A member's leg failed (or could not be built): take it out and tell the
    /// switchboard, which tells the page when `tell`.
    fn fail(&mut self, key: Key, call: u64, tell: bool) -> Result<(), ShardDied> {
        let Some(conn) = self.members.get(&key).map(|m| m.conn) else {
            return Ok(());
        };
        self.remove(key)?;
        (self.reply)(Reply::Failed {
            conn,
            session: key.0,
            participant: key.1,
            call,
            tell,
        });
        Ok(())
    }

    /// Take a member out: close its leg and re-route the others.
    fn remove(&mut self, key: Key) -> Result<(), ShardDied> {
        let Some(m) = self.members.remove(&key) else {
            return Ok(());
        };
        self.legs.remove(&m.leg);
        self.rooms.leave(&key.0, key.1);
        let sent = self.send(&key.0, Command::Close { leg: m.leg });
        let refreshed = self.refresh(&key.0);
        if self.rooms.members(&key.0).is_empty() {
            self.pinned.remove(&key.0);
        }
        sent.and(refreshed)
    }

    /// The members whose media `key` receives, with the slot each uses there.
    fn sources_of(&self, key: &Key) -> Vec<(ParticipantId, usize)> {
        self.rooms
            .members(&key.0)
            .into_iter()
            .filter(|p| *p != key.1)
            .filter_map(|from| {
                self.rooms
                    .fanout(&key.0, from)
                    .into_iter()
                    .find(|(to, _)| *to == key.1)
                    .map(|(_, slot)| (from, slot))
            })
            .collect()
    }

    /// Recompute every publisher's fan-out in a session after a change.
    fn refresh(&mut self, session: &SessionId) -> Result<(), ShardDied> {
        let now = self.now_ms();
        for from in self.rooms.members(session) {
            let mut audio = Vec::new();
            let mut video = Vec::new();
            for (to, slot) in self.rooms.fanout(session, from) {
                let Some(receiver) = self.members.get(&(*session, to)) else {
                    continue;
                };
                if !receiver.answered {
                    continue;
                }
                audio.push((receiver.leg, slot));
                if receiver.wants_video {
                    video.push((receiver.leg, slot));
                }
            }
            let Some(m) = self.members.get_mut(&(*session, from)) else {
                continue;
            };
            m.plan.changed(now);
            let leg = m.leg;
            self.send(session, Command::Route { leg, audio, video })?;
        }
        Ok(())
    }

    fn tick(&mut self) -> Result<(), ShardDied> {
        if !self.shards.iter().all(ShardHandle::is_running) {
            return Err(ShardDied);
        }
        let now = self.now_ms();
        let mut due = Vec::new();
        for ((session, _), m) in self.members.iter_mut() {
            if m.plan.poll(now) && m.answered {
                due.push((*session, m.leg));
            }
        }
        for (session, leg) in due {
            self.send(&session, Command::Keyframe { leg })?;
        }
        Ok(())
    }

    fn update_census(&self) {
        let mut c = self.census.lock().unwrap_or_else(|p| p.into_inner());
        c.members = self.members.len();
        c.calls = self.rooms.len();
    }
}
