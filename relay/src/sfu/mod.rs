//! The SFU: every call's media goes browser → relay → browser, never peer to peer, so no
//! participant learns another's address. The relay forwards frames it cannot read: each
//! sender encrypts them end to end (SFrame, in the browser) with keys carried over the
//! Noise channels.
//!
//! * [`room`] decides who receives whom in which slot (plain logic);
//! * [`forward`] holds the per-packet rules (plain logic);
//! * [`webrtc`] is the adapter over webrtc-rs, the only code that names its types;
//! * this module is the task that ties them together: it takes the switchboard's
//!   [`CallCommand`]s, builds and closes peer connections, and keeps each publisher's
//!   fan-out up to date.

pub mod forward;
pub mod room;
pub mod router;
pub mod udp;
pub mod leg;
pub mod webrtc;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use approdo_core::ids::{ParticipantId, SessionId};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, mpsc, watch};

use crate::switchboard::{CallCommand, ConnId};
use forward::KeyframePlan;
use room::Rooms;
use webrtc::{Fanout, Kind, LegSink, Peer, PeerError, PeerEvent, PeerFactory};

/// Where the SFU listens for media.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SfuConfig {
    /// The address peer connections bind and announce: the relay's address facing the
    /// browsers. It is the only candidate a browser ever sees.
    pub bind_ip: IpAddr,
    /// Announced instead of `bind_ip` behind a 1:1 NAT (a cloud VM's public address).
    pub public_ip: Option<IpAddr>,
    /// First UDP port of the range; each peer connection takes one port.
    pub udp_port_min: u16,
    /// Last UDP port of the range (inclusive). The range's size caps the number of call
    /// members at once.
    pub udp_port_max: u16,
}

impl Default for SfuConfig {
    fn default() -> Self {
        SfuConfig {
            bind_ip: IpAddr::from([127, 0, 0, 1]),
            public_ip: None,
            udp_port_min: 40_000,
            udp_port_max: 40_199,
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
    /// Members the SFU holds a peer connection for (or is building one).
    pub members: usize,
    /// Peer connections still alive in memory, closed ones included until they are freed.
    pub live_peer_connections: usize,
    /// Sessions with a call.
    pub calls: usize,
}

type Key = (SessionId, ParticipantId);

struct Member {
    call: u64,
    conn: ConnId,
    /// Forward the others' video to it (off on a weak connection).
    wants_video: bool,
    peer: Option<Arc<Peer>>,
    audio: watch::Sender<Arc<Vec<LegSink>>>,
    video: watch::Sender<Arc<Vec<LegSink>>>,
    keyframe: Arc<Notify>,
    plan: KeyframePlan,
}

enum Msg {
    Command(CallCommand),
    Built {
        key: Key,
        call: u64,
        result: Result<Peer, PeerError>,
    },
    Peer {
        key: Key,
        call: u64,
        event: PeerEvent,
    },
}

/// Handle on the SFU task.
#[derive(Clone)]
pub struct Sfu {
    tx: mpsc::UnboundedSender<Msg>,
    census: Arc<Mutex<SfuCensus>>,
    forwarded: Arc<std::sync::atomic::AtomicU64>,
}

impl std::fmt::Debug for Sfu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sfu").finish_non_exhaustive()
    }
}

impl Sfu {
    /// Start the SFU task. `reply` is called (from that task) with answers and failures.
    pub fn start(config: &SfuConfig, reply: impl Fn(Reply) + Send + 'static) -> Self {
        Self::start_supervised(config, reply).0
    }

    /// [`Sfu::start`], also returning the task's handle so the relay can stop when the
    /// task dies (a relay without its SFU would accept calls it can never carry).
    pub fn start_supervised(
        config: &SfuConfig,
        reply: impl Fn(Reply) + Send + 'static,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let census = Arc::new(Mutex::new(SfuCensus::default()));
        let factory = Arc::new(PeerFactory::new(
            config.bind_ip,
            config.public_ip,
            (
                config.udp_port_min.min(config.udp_port_max),
                config.udp_port_max.max(config.udp_port_min),
            ),
        ));
        let forwarded = factory.forwarded_counter();
        let actor = Actor {
            factory,
            tx: tx.clone(),
            rooms: Rooms::default(),
            members: HashMap::new(),
            closed: Vec::new(),
            census: census.clone(),
            epoch: Instant::now(),
            reply: Box::new(reply),
        };
        let task = tokio::spawn(actor.run(rx));
        (
            Sfu {
                tx,
                census,
                forwarded,
            },
            task,
        )
    }

    /// Hand over a command from the switchboard.
    pub fn command(&self, command: CallCommand) {
        let _ = self.tx.send(Msg::Command(command));
    }

    /// Current counts.
    pub fn census(&self) -> SfuCensus {
        *self.census.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// RTP packets forwarded to receivers since start, all calls together (a count only:
    /// never which call or whose).
    pub fn forwarded_packets(&self) -> u64 {
        self.forwarded.load(std::sync::atomic::Ordering::Relaxed)
    }
}

struct Actor {
    factory: Arc<PeerFactory>,
    tx: mpsc::UnboundedSender<Msg>,
    rooms: Rooms,
    members: HashMap<Key, Member>,
    /// Closed connections, kept weakly until they are freed (for the census).
    closed: Vec<Weak<dyn ::webrtc::peer_connection::PeerConnection>>,
    census: Arc<Mutex<SfuCensus>>,
    epoch: Instant,
    reply: Box<dyn Fn(Reply) + Send>,
}

/// How often key-frame plans are checked.
const PLAN_TICK: Duration = Duration::from_millis(100);

impl Actor {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Msg>) {
        let mut tick = tokio::time::interval(PLAN_TICK);
        loop {
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(m) => self.handle(m),
                    None => break,
                },
                _ = tick.tick() => self.tick(),
            }
            self.update_census();
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn handle(&mut self, msg: Msg) {
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
                    self.refresh(&session);
                }
            }
            Msg::Command(CallCommand::Leave {
                session,
                participant,
                call,
            }) => {
                let key = (session, participant);
                if self.members.get(&key).is_some_and(|m| m.call == call) {
                    self.remove(key);
                }
            }
            Msg::Built { key, call, result } => self.built(key, call, result),
            Msg::Peer { key, call, event } => {
                if self.members.get(&key).is_none_or(|m| m.call != call) {
                    return;
                }
                match event {
                    PeerEvent::Connected => {
                        // Its receive slots work now: everyone it receives sends a key frame.
                        let now = self.now_ms();
                        for (from, _) in self.sources_of(&key) {
                            if let Some(p) = self.members.get_mut(&(key.0, from)) {
                                p.plan.changed(now);
                            }
                        }
                    }
                    PeerEvent::Gone => self.fail(key, call, false),
                }
            }
        }
    }

    fn join(&mut self, conn: ConnId, key: Key, call: u64, offer: String) {
        if self.members.contains_key(&key) {
            self.remove(key);
        }
        if self.rooms.join(key.0, key.1).is_err() {
            (self.reply)(Reply::Failed {
                conn,
                session: key.0,
                participant: key.1,
                call,
                tell: true,
            });
            return;
        }
        let (audio, audio_rx) = watch::channel(Arc::new(Vec::new()));
        let (video, video_rx) = watch::channel(Arc::new(Vec::new()));
        let keyframe = Arc::new(Notify::new());
        let fanout = Fanout {
            audio: audio_rx,
            video: video_rx,
            keyframe: keyframe.clone(),
            source_base: call << 32,
        };
        self.members.insert(
            key,
            Member {
                call,
                conn,
                wants_video: true,
                peer: None,
                audio,
                video,
                keyframe,
                plan: KeyframePlan::new(self.now_ms()),
            },
        );
        let factory = self.factory.clone();
        let tx = self.tx.clone();
        let (events_tx, mut events_rx) = mpsc::unbounded_channel();
        let forward_tx = self.tx.clone();
        tokio::spawn(async move {
            while let Some(event) = events_rx.recv().await {
                if forward_tx.send(Msg::Peer { key, call, event }).is_err() {
                    break;
                }
            }
        });
        tokio::spawn(async move {
            let result = factory.connect(&offer, fanout, events_tx).await;
            let _ = tx.send(Msg::Built { key, call, result });
        });
    }

    fn built(&mut self, key: Key, call: u64, result: Result<Peer, PeerError>) {
        let current = self.members.get(&key).is_some_and(|m| m.call == call);
        match result {
            Ok(peer) if current => {
                let peer = Arc::new(peer);
                let m = self.members.get_mut(&key).expect("checked above");
                m.peer = Some(peer.clone());
                let conn = m.conn;
                tracing::info!(port = peer.port, "call member connected to the SFU");
                self.refresh(&key.0);
                (self.reply)(Reply::Answer {
                    conn,
                    session: key.0,
                    participant: key.1,
                    call,
                    sdp: peer.answer.clone(),
                });
            }
            Ok(peer) => {
                // Left (or joined again) while this was being built.
                self.closed.push(peer.weak());
                tokio::spawn(async move { peer.close().await });
            }
            Err(e) => {
                tracing::warn!(error = %e, "a call could not be set up");
                if current {
                    self.fail(key, call, true);
                }
            }
        }
    }

    /// A member's connection failed (or could not be built): take it out and tell the
    /// switchboard, which tells the page when `tell`.
    fn fail(&mut self, key: Key, call: u64, tell: bool) {
        let Some(conn) = self.members.get(&key).map(|m| m.conn) else {
            return;
        };
        self.remove(key);
        (self.reply)(Reply::Failed {
            conn,
            session: key.0,
            participant: key.1,
            call,
            tell,
        });
    }

    /// Take a member out: close its connection and re-route the others.
    fn remove(&mut self, key: Key) {
        let Some(m) = self.members.remove(&key) else {
            return;
        };
        self.rooms.leave(&key.0, key.1);
        if let Some(peer) = m.peer {
            self.closed.push(peer.weak());
            tokio::spawn(async move { peer.close().await });
        }
        self.refresh(&key.0);
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
    fn refresh(&mut self, session: &SessionId) {
        let now = self.now_ms();
        for from in self.rooms.members(session) {
            let mut audio = Vec::new();
            let mut video = Vec::new();
            for (to, slot) in self.rooms.fanout(session, from) {
                let Some(receiver) = self.members.get(&(*session, to)) else {
                    continue;
                };
                let Some(peer) = receiver.peer.as_ref() else {
                    continue;
                };
                if let Some(l) = peer.leg(slot, Kind::Audio) {
                    audio.push(l);
                }
                if receiver.wants_video
                    && let Some(l) = peer.leg(slot, Kind::Video)
                {
                    video.push(l);
                }
            }
            if let Some(m) = self.members.get_mut(&(*session, from)) {
                m.audio.send_replace(Arc::new(audio));
                m.video.send_replace(Arc::new(video));
                m.plan.changed(now);
            }
        }
    }

    fn tick(&mut self) {
        let now = self.now_ms();
        for m in self.members.values_mut() {
            if m.plan.poll(now) {
                m.keyframe.notify_one();
            }
        }
        self.closed.retain(|w| w.strong_count() > 0);
    }

    fn update_census(&self) {
        let live = self.members.values().filter(|m| m.peer.is_some()).count()
            + self.closed.iter().filter(|w| w.strong_count() > 0).count();
        let mut c = self.census.lock().unwrap_or_else(|p| p.into_inner());
        *c = SfuCensus {
            members: self.members.len(),
            live_peer_connections: live,
            calls: self.rooms.len(),
        };
    }
}
