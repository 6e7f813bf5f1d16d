//! A light call member on `rtc`, webrtc-rs's sans-IO core, for loads a [`NativeCaller`]
//! cannot offer: hundreds of members driven by one thread per core instead of a runtime
//! full of tasks per connection.
//!
//! Why: with 200 [`NativeCaller`]s on a 2-core machine the members themselves kept up with
//! only 19–26 of their 30 packets/s per stream, so the relay was never measured at the
//! load the 50-call benchmark asks for (issue 11). A [`LightMember`] is the same thing on
//! the wire (an offer with audio and video to send, then [`CALL_SLOTS`] receive slots;
//! VP8 and Opus with the SFU's payload types; packets stamped with the time since a shared
//! epoch) with a full ICE agent (controlling, since the relay is ICE-lite), a plain
//! non-blocking UDP socket, and no interceptors: no reports, NACKs or congestion feedback
//! of its own, and no retransmissions asked for, so what it counts is what the relay
//! forwarded once.
//!
//! A [`Swarm`] owns the members once they have their answer: one thread per core, each
//! waiting on its members' sockets (epoll through `mio`) and their next timer or packet to
//! send, feeding datagrams in, firing timers, sending what the connections want sent, and,
//! once told to, publishing audio and video at a fixed rate per stream.
//!
//! [`NativeCaller`]: crate::media::NativeCaller

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use approdo_core::limits::CALL_SLOTS;
use approdo_relay::sfu::leg::{opus, vp8};
use bytes::BytesMut;
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};
use rtc::ice::mdns::MulticastDnsMode;
use rtc::ice::network_type::NetworkType;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::transport::{CandidateConfig, CandidateHostConfig, RTCIceCandidate};
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpSenderId, RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};

use crate::media::Received;

/// Payload type of VP8 in the offer (the SFU's own).
const VP8_PT: u8 = 96;
/// Payload type of Opus in the offer.
const OPUS_PT: u8 = 111;
/// A turn of a swarm's loop never waits longer (new members are picked up between turns).
const MAX_WAIT: Duration = Duration::from_millis(5);
/// Nor does it fire a member's timers more often: a connection with media in flight is
/// almost always "due now", and waking for that would spin.
const MIN_TIMER_WAIT: Duration = Duration::from_millis(1);
/// Phases the members' sending is spread over, so that the swarm does not send every
/// member's packets in one burst per period.
const PHASES: u32 = 32;

/// What a member's driver and the benchmark share: its counts and its state.
#[derive(Debug, Default)]
pub struct Counters {
    /// RTP packets it sent (audio and video).
    pub sent: AtomicU64,
    /// What arrived (only `audio`, `video` and `delays_ns` are kept; no payloads, no
    /// progress notifications: nobody waits on a light member packet by packet).
    pub received: Received,
    /// DTLS and SRTP are up.
    pub connected: AtomicBool,
    /// The connection failed or closed.
    pub failed: AtomicBool,
}

/// One light call member. See the module documentation.
pub struct LightMember {
    pc: RTCPeerConnection,
    socket: UdpSocket,
    local: SocketAddr,
    senders: [RTCRtpSenderId; 2],
    ssrcs: [u32; 2],
    seq: [u16; 2],
    /// Receive track ids, and whether each is video.
    tracks: Vec<(String, bool)>,
    /// Its counts, shared with whoever measures.
    pub counters: Arc<Counters>,
    epoch: Instant,
    record: bool,
    /// When its connection's timers are due next (refreshed after every change).
    deadline: Option<Instant>,
    /// When it sends its next pair of packets, once sending.
    next_send: Option<Instant>,
}

fn random_ssrc() -> u32 {
    let mut b = [0u8; 4];
    approdo_core::ids::fill_random(&mut b);
    u32::from_le_bytes(b).max(1)
}

impl LightMember {
    /// Bind a socket on the loopback, build the connection and return its SDP offer.
    /// `epoch` is the time base shared by every member of a measurement (the stamps in
    /// payloads count from it); `record` keeps the one-way delays of video packets.
    pub fn offer(epoch: Instant, record: bool) -> Result<(Self, String)> {
        let socket = UdpSocket::bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        let local = socket.local_addr()?;
        let mut media = MediaEngine::default();
        media.register_codec(
            RTCRtpCodecParameters {
                rtp_codec: vp8(),
                payload_type: VP8_PT,
            },
            RtpCodecKind::Video,
        )?;
        media.register_codec(
            RTCRtpCodecParameters {
                rtp_codec: opus(),
                payload_type: OPUS_PT,
            },
            RtpCodecKind::Audio,
        )?;
        let settings = SettingEngineBuilder::new()
            .with_multicast_dns_mode(MulticastDnsMode::Disabled)
            .with_network_types(vec![NetworkType::Udp4])
            .build();
        let now = Instant::now();
        let mut pc = RTCPeerConnectionBuilder::new()
            .with_configuration(RTCConfigurationBuilder::new().build())
            .with_setting_engine(settings)
            .with_media_engine(media)
            .build(now)?;
        let ssrcs = [random_ssrc(), random_ssrc()];
        let mut senders = Vec::with_capacity(2);
        for (kind, ssrc) in [
            (RtpCodecKind::Audio, ssrcs[0]),
            (RtpCodecKind::Video, ssrcs[1]),
        ] {
            let (codec, name) = match kind {
                RtpCodecKind::Audio => (opus(), "audio"),
                _ => (vp8(), "video"),
            };
            let track = MediaStreamTrack::new(
                "member".into(),
                format!("member-{name}"),
                format!("member-{name}"),
                kind,
                vec![RTCRtpEncodingParameters {
                    rtp_coding_parameters: RTCRtpCodingParameters {
                        ssrc: Some(ssrc),
                        ..Default::default()
                    },
                    codec,
                    ..Default::default()
                }],
            );
            let id = pc.add_transceiver_from_track(
                track,
                Some(RTCRtpTransceiverInit {
                    direction: RTCRtpTransceiverDirection::Sendonly,
                    streams: vec![],
                    send_encodings: vec![],
                }),
            )?;
            let sender = pc
                .rtp_transceiver(id)
                .and_then(|t| t.sender())
                .context("a send transceiver without a sender")?;
            senders.push(sender);
        }
        for _ in 0..CALL_SLOTS {
            for kind in [RtpCodecKind::Audio, RtpCodecKind::Video] {
                pc.add_transceiver_from_kind(
                    kind,
                    Some(RTCRtpTransceiverInit {
                        direction: RTCRtpTransceiverDirection::Recvonly,
                        streams: vec![],
                        send_encodings: vec![],
                    }),
                )?;
            }
        }
        let offer = pc.create_offer(None)?;
        pc.set_local_description(now, offer)?;
        let host = CandidateHostConfig {
            base_config: CandidateConfig {
                network: "udp".into(),
                address: local.ip().to_string(),
                port: local.port(),
                component: 1,
                ..Default::default()
            },
            ..Default::default()
        }
        .new_candidate_host()?;
        pc.add_local_candidate(RTCIceCandidate::from(&host).to_json()?)?;
        let sdp = pc.local_description().context("no local description")?.sdp;
        let member = LightMember {
            pc,
            socket,
            local,
            senders: [senders[0], senders[1]],
            ssrcs,
            seq: [0, 0],
            tracks: Vec::new(),
            counters: Arc::new(Counters::default()),
            epoch,
            record,
            deadline: None,
            next_send: None,
        };
        Ok((member, sdp))
    }

    /// Apply the relay's answer. The connection comes up once a [`Swarm`] drives it.
    pub fn answer(&mut self, sdp: String) -> Result<()> {
        self.pc
            .set_remote_description(Instant::now(), RTCSessionDescription::answer(sdp)?)?;
        Ok(())
    }

    /// Feed in every datagram waiting on the socket.
    fn read_all(&mut self, buf: &mut [u8]) {
        loop {
            match self.socket.recv_from(buf) {
                Ok((n, from)) => {
                    let _ = self.pc.handle_read(TaggedBytesMut {
                        now: Instant::now(),
                        message: BytesMut::from(&buf[..n]),
                        transport: TransportContext {
                            local_addr: self.local,
                            peer_addr: from,
                            ecn: None,
                            transport_protocol: TransportProtocol::UDP,
                        },
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // WouldBlock: drained (mio's readiness is edge-triggered). Anything else
                // (an ICMP error surfacing as ECONNREFUSED) is dropped like a lost packet.
                Err(_) => break,
            }
        }
    }

    /// Send one packet of each kind, each payload starting with the current time stamp
    /// (nanoseconds since the epoch, big-endian), as [`NativeCaller::send`] does.
    ///
    /// [`NativeCaller::send`]: crate::media::NativeCaller::send
    fn send_pair(&mut self, now: Instant, audio_len: usize, video_len: usize) {
        for (i, len) in [audio_len, video_len].into_iter().enumerate() {
            self.send_stamped(now, i == 1, len);
        }
    }

    /// Send one video packet of `len` bytes stamped with the time, at once: for a driver
    /// of its own (a paced sender far above a swarm's rates; see [`LightMember::service`]).
    pub fn send_video(&mut self, len: usize) {
        self.send_stamped(Instant::now(), true, len);
    }

    /// What a driver of its own does between sends: read every datagram waiting, fire the
    /// connection's timers when due, and send and count what results.
    pub fn service(&mut self, buf: &mut [u8]) {
        self.read_all(buf);
        let now = Instant::now();
        if self.deadline.is_none_or(|d| d <= now) {
            let _ = self.pc.handle_timeout(now);
        }
        self.pump();
    }

    /// Close the connection (a DTLS close alert goes out), for a driver of its own.
    pub fn close(&mut self) {
        let _ = self.pc.close();
        self.flush();
    }

    /// Make `n` video packets of `len` bytes ahead of time and append the datagrams the
    /// connection gives for them to `into`, *without sending them*: consecutive sequence
    /// numbers and SRTP indexes, so a relay accepts them in order when a sender of its own
    /// sends them later, as fast as it can (`approdo-bench`'s forwarding at saturation,
    /// where making and sending each packet on the spot would make the member the
    /// bottleneck). Whatever else the connection has for the wire meanwhile goes out.
    pub fn prepare_video(&mut self, n: usize, len: usize, into: &mut Prepared) {
        self.flush();
        for _ in 0..n {
            self.write_stamped(Instant::now(), true, len);
            while let Some(w) = self.pc.poll_write() {
                if is_video_rtp(&w.message) {
                    into.to = Some(w.transport.peer_addr);
                    into.bytes.extend_from_slice(&w.message);
                    into.lens.push(w.message.len());
                } else {
                    let _ = self.socket.send_to(&w.message, w.transport.peer_addr);
                }
            }
        }
    }

    /// A second handle on the member's socket, for a sender or a receiver of its own on
    /// another thread (batched system calls; see [`LightMember::prepare_video`]). The
    /// member still sends and reads through its own.
    pub fn socket_handle(&self) -> io::Result<std::net::UdpSocket> {
        use std::os::fd::AsFd;
        Ok(std::net::UdpSocket::from(
            self.socket.as_fd().try_clone_to_owned()?,
        ))
    }

    /// Hand the connection a datagram that a receiver of its own read from the member's
    /// socket (STUN, DTLS, RTCP: what keeps the call alive), and act on it.
    pub fn feed(&mut self, from: SocketAddr, datagram: &[u8]) {
        let _ = self.pc.handle_read(TaggedBytesMut {
            now: Instant::now(),
            message: BytesMut::from(datagram),
            transport: TransportContext {
                local_addr: self.local,
                peer_addr: from,
                ecn: None,
                transport_protocol: TransportProtocol::UDP,
            },
        });
        self.pump();
    }

    /// [`LightMember::service`] without reading the socket, for a member whose datagrams
    /// a receiver of its own reads and [`feed`](LightMember::feed)s: fire the timers when
    /// due, send what results.
    pub fn tick(&mut self) {
        let now = Instant::now();
        if self.deadline.is_none_or(|d| d <= now) {
            let _ = self.pc.handle_timeout(now);
        }
        self.pump();
    }

    /// One packet of the audio (`video` false) or video stream, stamped and sent at once.
    fn send_stamped(&mut self, now: Instant, video: bool, len: usize) {
        self.write_stamped(now, video, len);
        // Out at once, so the stamp is taken as close to the wire as NativeCaller's.
        self.flush();
    }

    /// Write the next packet of the audio (`video` false) or video stream into the
    /// connection, its payload starting with the time stamp; it leaves at the next flush.
    fn write_stamped(&mut self, now: Instant, video: bool, len: usize) {
        let i = usize::from(video);
        self.seq[i] = self.seq[i].wrapping_add(1);
        let mut payload = vec![0u8; len.max(8)];
        let stamp = self.epoch.elapsed().as_nanos() as u64;
        payload[..8].copy_from_slice(&stamp.to_be_bytes());
        let packet = rtp::Packet {
            header: rtp::header::Header {
                version: 2,
                marker: true,
                payload_type: if i == 1 { VP8_PT } else { OPUS_PT },
                sequence_number: self.seq[i],
                timestamp: u32::from(self.seq[i]).wrapping_mul(3000),
                ssrc: self.ssrcs[i],
                ..Default::default()
            },
            payload: payload.into(),
        };
        if let Some(mut s) = self.pc.rtp_sender(self.senders[i])
            && s.write_rtp(now, packet).is_ok()
        {
            self.counters.sent.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Send every datagram the connection has for the wire.
    fn flush(&mut self) {
        while let Some(w) = self.pc.poll_write() {
            // A full socket buffer drops the datagram, as the network would.
            let _ = self.socket.send_to(&w.message, w.transport.peer_addr);
        }
    }

    /// Send what is waiting, take the connection's events and what it read, and refresh
    /// its deadline.
    fn pump(&mut self) {
        self.flush();
        while let Some(event) = self.pc.poll_event() {
            match event {
                RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) => match state {
                    RTCPeerConnectionState::Connected => {
                        self.counters.connected.store(true, Ordering::Relaxed);
                    }
                    RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed => {
                        self.counters.failed.store(true, Ordering::Relaxed);
                    }
                    _ => {}
                },
                RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) => {
                    let video = match self.pc.rtp_receiver(init.receiver_id) {
                        Some(r) => r.track().kind() != RtpCodecKind::Audio,
                        None => continue,
                    };
                    self.tracks.push((init.track_id, video));
                }
                _ => {}
            }
        }
        while let Some(TaggedRTCMessage { message, .. }) = self.pc.poll_read() {
            let RTCMessage::RtpPacket(track_id, packet) = message else {
                continue;
            };
            let video = self
                .tracks
                .iter()
                .find(|(id, _)| *id == track_id)
                .map_or(packet.header.payload_type == VP8_PT, |t| t.1);
            let received = &self.counters.received;
            if video {
                received.video.fetch_add(1, Ordering::Relaxed);
            } else {
                received.audio.fetch_add(1, Ordering::Relaxed);
            }
            if self.record && video && packet.payload.len() >= 8 {
                let mut stamp = [0u8; 8];
                stamp.copy_from_slice(&packet.payload[..8]);
                let sent = u64::from_be_bytes(stamp);
                let now = self.epoch.elapsed().as_nanos() as u64;
                if let Ok(mut d) = received.delays_ns.lock() {
                    d.push(now.saturating_sub(sent));
                }
            }
        }
        // Anything the reads triggered (RTCP answers) goes out now too.
        self.flush();
        self.deadline = self.pc.poll_timeout();
    }
}

/// Video datagrams made ahead of time by [`LightMember::prepare_video`], end to end in
/// one buffer (a run of equal lengths is one contiguous slice: a segmented send needs no
/// copy).
#[derive(Debug, Default)]
pub struct Prepared {
    /// Where they go: the relay's address the member's connection sends to.
    pub to: Option<SocketAddr>,
    /// The datagrams, end to end.
    pub bytes: Vec<u8>,
    /// Each datagram's length, in order.
    pub lens: Vec<usize>,
}

/// Whether `datagram` is an RTP packet of the members' video (version 2, VP8's payload
/// type): what a receiver that only counts looks for. RTCP's packet types (200–207) never
/// match, nor do STUN and DTLS (first byte below 128).
pub fn is_video_rtp(datagram: &[u8]) -> bool {
    matches!(datagram, [b0, b1, ..] if b0 >> 6 == 2 && b1 & 0x7f == VP8_PT)
}

/// How a swarm's members publish once [`Swarm::start_sending`] is called.
#[derive(Clone, Copy, Debug)]
pub struct Publish {
    /// Packets per second per stream (audio and video alike).
    pub packets_per_stream: u32,
    /// Audio payload bytes.
    pub audio_payload: usize,
    /// Video payload bytes.
    pub video_payload: usize,
}

struct Shared {
    stop: AtomicBool,
    sending: AtomicBool,
    publish: Publish,
    /// Members handed to the threads so far (their phase of the sending period).
    added: AtomicUsize,
}

/// Light members driven by one thread per core. See the module documentation.
pub struct Swarm {
    shared: Arc<Shared>,
    threads: Vec<(Sender<LightMember>, JoinHandle<io::Result<()>>)>,
    counters: Vec<Arc<Counters>>,
}

impl Swarm {
    /// Start `threads` driver threads (at least one); members publish as `publish` says.
    pub fn start(threads: usize, publish: Publish) -> Result<Swarm> {
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            sending: AtomicBool::new(false),
            publish,
            added: AtomicUsize::new(0),
        });
        let mut handles = Vec::new();
        for i in 0..threads.max(1) {
            let (tx, rx) = mpsc::channel();
            let shared = shared.clone();
            let handle = std::thread::Builder::new()
                .name(format!("light-members-{i}"))
                .spawn(move || drive(rx, &shared))?;
            handles.push((tx, handle));
        }
        Ok(Swarm {
            shared,
            threads: handles,
            counters: Vec::new(),
        })
    }

    /// Hand over a member that has its answer; the threads take turns. Its counters.
    pub fn add(&mut self, member: LightMember) -> Result<Arc<Counters>> {
        let counters = member.counters.clone();
        let n = self.counters.len() % self.threads.len();
        self.threads[n]
            .0
            .send(member)
            .map_err(|_| anyhow!("a light-member thread is gone"))?;
        self.counters.push(counters.clone());
        Ok(counters)
    }

    /// Every member's counters, in the order they were added.
    pub fn counters(&self) -> &[Arc<Counters>] {
        &self.counters
    }

    /// Wait until every member is connected; an error when one failed or `timeout` passed.
    pub fn wait_connected(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if self
                .counters
                .iter()
                .any(|c| c.failed.load(Ordering::Relaxed))
            {
                return Err(anyhow!("a light member's connection failed"));
            }
            let up = self
                .counters
                .iter()
                .filter(|c| c.connected.load(Ordering::Relaxed))
                .count();
            if up == self.counters.len() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(anyhow!(
                    "{up} of {} light members connected",
                    self.counters.len()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Every connected member starts publishing.
    pub fn start_sending(&self) {
        self.shared.sending.store(true, Ordering::Relaxed);
    }

    /// Members stop publishing (their connections stay up).
    pub fn stop_sending(&self) {
        self.shared.sending.store(false, Ordering::Relaxed);
    }

    /// Close every connection (DTLS close alerts go out) and end the threads.
    pub fn close(self) -> Result<()> {
        self.shared.stop.store(true, Ordering::Relaxed);
        for (tx, handle) in self.threads {
            drop(tx);
            handle
                .join()
                .map_err(|_| anyhow!("a light-member thread panicked"))??;
        }
        Ok(())
    }
}

/// One driver thread's loop: see the module documentation.
fn drive(rx: Receiver<LightMember>, shared: &Shared) -> io::Result<()> {
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(1024);
    let mut members: Vec<LightMember> = Vec::new();
    let mut buf = vec![0u8; 2048];
    let publish = shared.publish;
    let period = Duration::from_nanos(1_000_000_000 / u64::from(publish.packets_per_stream.max(1)));
    // Members whose sockets woke the thread; each is pumped once per turn.
    let mut touched: Vec<bool> = Vec::new();
    loop {
        while let Ok(mut m) = rx.try_recv() {
            poll.registry()
                .register(&mut m.socket, Token(members.len()), Interest::READABLE)?;
            m.pc.handle_timeout(Instant::now()).ok();
            m.pump();
            members.push(m);
            touched.push(false);
        }
        if shared.stop.load(Ordering::Relaxed) {
            for m in &mut members {
                let _ = m.pc.close();
                m.flush();
            }
            return Ok(());
        }
        let sending = shared.sending.load(Ordering::Relaxed);
        let now = Instant::now();
        let mut wake = now + MAX_WAIT;
        for m in &mut members {
            let mut changed = false;
            if sending && m.counters.connected.load(Ordering::Relaxed) {
                let next = *m.next_send.get_or_insert_with(|| {
                    let n = shared.added.fetch_add(1, Ordering::Relaxed) as u32;
                    now + period * (n % PHASES) / PHASES
                });
                if next <= now {
                    m.send_pair(now, publish.audio_payload, publish.video_payload);
                    // Late ticks are not caught up (tokio's `MissedTickBehavior::Delay`,
                    // as the native members do): the rate printed is what was kept up.
                    let after = next + period;
                    m.next_send = Some(if after <= now { now + period } else { after });
                    changed = true;
                }
                if let Some(next) = m.next_send {
                    wake = wake.min(next);
                }
            } else {
                m.next_send = None;
            }
            if m.deadline.is_some_and(|d| d <= now) {
                let _ = m.pc.handle_timeout(now);
                changed = true;
            }
            if changed {
                m.pump();
            }
            if let Some(d) = m.deadline {
                wake = wake.min(d.max(now + MIN_TIMER_WAIT));
            }
        }
        let timeout = wake.saturating_duration_since(Instant::now());
        if let Err(e) = poll.poll(&mut events, Some(timeout))
            && e.kind() != io::ErrorKind::Interrupted
        {
            return Err(e);
        }
        for event in events.iter() {
            let i = event.token().0;
            if let Some(m) = members.get_mut(i) {
                m.read_all(&mut buf);
                touched[i] = true;
            }
        }
        for (i, t) in touched.iter_mut().enumerate() {
            if std::mem::take(t) {
                members[i].pump();
            }
        }
    }
}

/// The type-level promise the swarm relies on: a member can move to a driver thread.
const _: fn() = || {
    fn send<T: Send>() {}
    send::<LightMember>();
};
