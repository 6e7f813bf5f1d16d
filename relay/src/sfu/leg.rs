//! One call member's connection to the relay on `rtc`'s sans-IO core: the only file that
//! names `rtc` types (with `retransmit.rs`, the NACK responder it puts in `rtc`'s chain).
//!
//! A leg is ICE-lite with credentials the shard drew, has exactly one candidate (the
//! shard's socket, on the address browsers are told), offers VP8 and Opus only (no RTX), and
//! keeps the relay's interceptor chain: NACK both ways with a bounded retransmission
//! buffer ([`RETRANSMIT_BUFFER`] packets per outgoing video stream unless
//! `sfu.retransmit_buffer` says otherwise; the rule behind the number is there), RTCP
//! reports, and transport-wide congestion feedback to the publisher. It never
//! gathers, so nothing about the browser's own addresses reaches another member; its
//! DTLS checks the member's certificate against the offer's fingerprint (never switched off
//! here). Packets in and out are plain bytes; what goes where is the shard's business.
//!
//! **A member whose address changes mid-call** (a NAT rebinding, a phone between networks):
//! `rtc`'s ICE-lite agent keeps the first pair it selected for the whole connection, so on
//! its own it would go on sending to the old address and, 30 s later, fail the connection.
//! The leg therefore keeps two addresses: the *anchor*, the member's address as `rtc`
//! selected it, and the *path*, where the member is now. Everything `rtc` sends to the
//! anchor goes to the path, and the member's DTLS, SRTP and SRTCP from the path reach
//! `rtc` as if from the anchor (so its consent timers see a live member). The path moves
//! only to an address that has passed the shard's authenticated connectivity check (the
//! router) *and* then delivered a datagram `rtc` accepted as the member's own media: SRTP
//! or SRTCP that decrypted with this connection's keys, inside its replay window, from an
//! address `rtc`'s ICE agent accepts media from. A check and media replayed from elsewhere
//! do not move it (`call_replays_cannot_steal_a_members_media`); STUN itself is never
//! translated, so the browser's checks are answered from and to the addresses they used.

use std::net::SocketAddr;
use std::time::Instant;

use bytes::BytesMut;
use rtc::ice::mdns::MulticastDnsMode;
use rtc::ice::network_type::NetworkType;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::certificate::{CertificateParams, RTCCertificate};
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::transport::{CandidateConfig, CandidateHostConfig, RTCIceCandidate};
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters,
    RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpReceiverId, RTCRtpSenderId};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};

use super::forward::StreamRewriter;
use super::retransmit::Retransmitter;
use approdo_core::limits::CALL_SLOTS;

/// An RTP packet as the shard passes it from a publisher to its receivers.
pub type RtpPacket = rtc::rtp::Packet;

/// Audio or video: index 0 and 1 of a slot's pair of streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Opus.
    Audio = 0,
    /// VP8.
    Video = 1,
}

/// Why a leg could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LegError {
    /// The offer was refused or negotiation failed.
    #[error("negotiation failed: {0}")]
    Negotiation(String),
}

fn neg(e: impl std::fmt::Display) -> LegError {
    LegError::Negotiation(e.to_string())
}

/// What the shard must know after feeding or polling a leg.
#[derive(Debug)]
pub enum Output {
    /// DTLS is up: its receive slots can take packets now (time for key frames).
    Connected,
    /// The connection failed or closed from the browser's side.
    Gone,
    /// A packet the member published (decrypted SRTP, its frame still end-to-end
    /// encrypted), with the SSRC of its stream.
    Rtp(Kind, u32, RtpPacket),
}

/// The DTLS certificate a shard's legs share (one ECDSA key per shard: making one per leg
/// cost most of a leg's set-up time).
#[derive(Clone)]
pub struct Certificate(RTCCertificate);

impl std::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificate").finish_non_exhaustive()
    }
}

impl Certificate {
    /// A fresh self-signed ECDSA P-256 certificate.
    pub fn generate() -> Result<Self, LegError> {
        let provider = rtc::crypto::default_provider().map_err(neg)?;
        let params = CertificateParams::new(vec!["approdo-sfu".to_owned()]).map_err(neg)?;
        RTCCertificate::generate(
            provider.crypto(),
            rtc::crypto::SignatureScheme::EcdsaP256Sha256,
            params,
        )
        .map(Certificate)
        .map_err(neg)
    }
}

/// What a leg is built from.
#[derive(Clone, Debug)]
pub struct Setup {
    /// The shard's candidate: the address and port browsers are told (and what the ICE
    /// agent matches incoming datagrams against).
    pub candidate: SocketAddr,
    /// ICE username fragment (the router's key for this leg).
    pub ufrag: String,
    /// ICE password (the router checks binding requests with it).
    pub pwd: String,
    /// The shard's DTLS certificate.
    pub certificate: Certificate,
    /// Packets kept per outgoing video stream for retransmission (a power of two).
    pub retransmit: u16,
}

struct SlotStream {
    sender: RTCRtpSenderId,
    ssrc: u32,
    pt: u8,
    rewriter: StreamRewriter,
}

struct Incoming {
    track_id: String,
    kind: Kind,
    receiver: RTCRtpReceiverId,
    ssrc: Option<u32>,
}

/// One member's connection. See the module documentation.
pub struct Leg {
    pc: RTCPeerConnection,
    candidate: SocketAddr,
    /// `slots[slot][kind]`: the streams this member receives.
    slots: Vec<[SlotStream; 2]>,
    /// The member's own tracks, as they open.
    incoming: Vec<Incoming>,
    connected: bool,
    /// The member's address as `rtc` selected it (known once `rtc` first sends it DTLS).
    anchor: Option<SocketAddr>,
    /// Where the member is now (see the module documentation).
    path: Option<SocketAddr>,
    /// How often the path moved.
    moves: u64,
}

/// SRTP packets of a member's stream accepted out of order (reordering on a mobile path;
/// a retransmission of a lost packet is a first arrival and passes). Anything older, or
/// seen before, is dropped.
const SRTP_REPLAY_WINDOW: usize = 256;
/// The same for SRTCP (far fewer packets).
const SRTCP_REPLAY_WINDOW: usize = 64;
/// The same for DTLS records.
const DTLS_REPLAY_WINDOW: usize = 64;

/// STUN's first byte is 0–3 (RFC 7983's demultiplexing); DTLS, SRTP and SRTCP are above.
fn is_stun(datagram: &[u8]) -> bool {
    datagram.first().is_some_and(|b| *b < 4)
}

impl std::fmt::Debug for Leg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leg")
            .field("connected", &self.connected)
            .finish_non_exhaustive()
    }
}

/// VP8 as the SFU offers it: the one video codec, without RTX, with NACK and PLI.
pub fn vp8() -> RTCRtpCodec {
    let fb = |typ: &str, parameter: &str| RTCPFeedback {
        typ: typ.into(),
        parameter: parameter.into(),
    };
    RTCRtpCodec {
        mime_type: "video/VP8".into(),
        clock_rate: 90_000,
        channels: 0,
        sdp_fmtp_line: String::new(),
        rtcp_feedback: vec![fb("nack", ""), fb("nack", "pli"), fb("ccm", "fir")],
    }
}

/// Opus as the SFU offers it: the one audio codec, with in-band FEC.
pub fn opus() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: "audio/opus".into(),
        clock_rate: 48_000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".into(),
        rtcp_feedback: vec![],
    }
}

/// Packets kept per outgoing video stream for retransmission on a receiver's NACK, unless
/// `sfu.retransmit_buffer` says otherwise. The rule: a retransmission helps only while the
/// receiver still waits for the frame, i.e. for its first request and one repeat; keep
/// `rounds × RTT × packet rate` packets, rounded up to a power of two (the NACK responder's
/// ring needs one). With 2 rounds, an RTT of up to 500 ms (mobile data, TURN) and 360p
/// video at ≤ 600 kbit/s (about 60 packets/s): 2 × 0.5 s × 60/s = 60 → 64, about 1 s of
/// video; a frame still missing after that is better replaced by a key frame (PLI). A
/// ring of this many slots exists for each of a leg's [`CALL_SLOTS`] outgoing video streams
/// that has sent (`retransmit.rs`), and a full slot holds a packet (its 1 KiB payload,
/// shared with the publisher's other receivers); 256 put a two-member call's connection at
/// ~825 KiB with its buffer full, 64 at ~530 KiB before the leg's `rtc` queues were kept
/// short, ~395 KiB after (benchmark, `docs/sfu-memory.md`).
pub const RETRANSMIT_BUFFER: u16 = 64;

/// The default chain (NACK both ways, RTCP reports, transport-wide congestion feedback so
/// browsers can estimate their bandwidth, MID/RID extensions) with a smaller
/// retransmission buffer.
fn interceptors(
    media: &mut MediaEngine,
    retransmit: u16,
) -> Result<rtc::interceptor::Registry, LegError> {
    use rtc::interceptor::{NackGeneratorBuilder, Registry, Slot};
    use rtc::peer_connection::configuration::interceptor_registry::{
        configure_nack, configure_rtcp_reports, configure_simulcast_extension_headers,
        configure_twcc_receiver_only,
    };
    let registry = configure_nack(Registry::new(), media)
        // The relay's own responder: rings only for the streams that carry video.
        .with(Slot::NackResponder, Retransmitter::new(retransmit))
        .with(Slot::NackGenerator, NackGeneratorBuilder::new().build());
    configure_simulcast_extension_headers(media).map_err(neg)?;
    let registry = configure_twcc_receiver_only(registry, media).map_err(neg)?;
    Ok(configure_rtcp_reports(registry))
}

fn media_engine() -> Result<MediaEngine, LegError> {
    let mut media = MediaEngine::default();
    media
        .register_codec(
            RTCRtpCodecParameters {
                rtp_codec: vp8(),
                payload_type: 96,
            },
            RtpCodecKind::Video,
        )
        .map_err(neg)?;
    media
        .register_codec(
            RTCRtpCodecParameters {
                rtp_codec: opus(),
                payload_type: 111,
            },
            RtpCodecKind::Audio,
        )
        .map_err(neg)?;
    Ok(media)
}

fn random_ssrc() -> u32 {
    let mut b = [0u8; 4];
    approdo_core::ids::fill_random(&mut b);
    u32::from_le_bytes(b).max(1)
}

impl Leg {
    /// Answer `offer`: a connection with a receive stream for every slot. Returns the leg
    /// and the relay's SDP answer (complete at once: there is nothing to gather).
    pub fn answer(now: Instant, offer: &str, setup: &Setup) -> Result<(Leg, String), LegError> {
        let mut media = media_engine()?;
        let registry = interceptors(&mut media, setup.retransmit)?;
        let network = if setup.candidate.is_ipv4() {
            NetworkType::Udp4
        } else {
            NetworkType::Udp6
        };
        let settings = SettingEngineBuilder::new()
            .with_lite(true)
            .with_ice_credentials(setup.ufrag.clone(), setup.pwd.clone())
            .with_multicast_dns_mode(MulticastDnsMode::Disabled)
            .with_network_types(vec![network])
            // rtc keeps no replay window unless asked: without one, a captured SRTP packet
            // played again (on the member's own path) would be decrypted and forwarded again.
            .with_srtp_replay_protection_window(SRTP_REPLAY_WINDOW)
            .with_srtcp_replay_protection_window(SRTCP_REPLAY_WINDOW)
            .with_dtls_replay_protection_window(DTLS_REPLAY_WINDOW)
            .build();
        let config = RTCConfigurationBuilder::new()
            .with_certificates(vec![setup.certificate.0.clone()])
            .build();
        let mut pc = RTCPeerConnectionBuilder::new()
            .with_configuration(config)
            .with_setting_engine(settings)
            .with_media_engine(media)
            .with_interceptor_registry(registry)
            .build(now)
            .map_err(neg)?;
        let mut senders = Vec::with_capacity(CALL_SLOTS);
        for slot in 0..CALL_SLOTS {
            let mut pair = Vec::with_capacity(2);
            for kind in [Kind::Audio, Kind::Video] {
                let ssrc = random_ssrc();
                let (codec, rtc_kind, name) = match kind {
                    Kind::Audio => (opus(), RtpCodecKind::Audio, "audio"),
                    Kind::Video => (vp8(), RtpCodecKind::Video, "video"),
                };
                let track = MediaStreamTrack::new(
                    format!("slot{slot}"),
                    format!("slot{slot}-{name}"),
                    format!("slot{slot}-{name}"),
                    rtc_kind,
                    vec![RTCRtpEncodingParameters {
                        rtp_coding_parameters: RTCRtpCodingParameters {
                            ssrc: Some(ssrc),
                            ..Default::default()
                        },
                        codec,
                        ..Default::default()
                    }],
                );
                pair.push((pc.add_track(track).map_err(neg)?, ssrc));
            }
            senders.push(pair);
        }
        pc.set_remote_description(
            now,
            RTCSessionDescription::offer(offer.to_owned()).map_err(neg)?,
        )
        .map_err(neg)?;
        let host = CandidateHostConfig {
            base_config: CandidateConfig {
                network: "udp".into(),
                address: setup.candidate.ip().to_string(),
                port: setup.candidate.port(),
                component: 1,
                ..Default::default()
            },
            ..Default::default()
        }
        .new_candidate_host()
        .map_err(neg)?;
        pc.add_local_candidate(RTCIceCandidate::from(&host).to_json().map_err(neg)?)
            .map_err(neg)?;
        let answer = pc.create_answer(None).map_err(neg)?;
        pc.set_local_description(now, answer).map_err(neg)?;
        let sdp = pc
            .local_description()
            .ok_or_else(|| neg("no local description"))?
            .sdp;
        let mut slots = Vec::with_capacity(CALL_SLOTS);
        for pair in senders {
            let mut streams = Vec::with_capacity(2);
            for (sender, ssrc) in pair {
                let pt = pc
                    .rtp_sender(sender)
                    .and_then(|mut s| {
                        s.get_parameters()
                            .rtp_parameters
                            .codecs
                            .first()
                            .map(|c| c.payload_type)
                    })
                    .ok_or_else(|| neg("no codec negotiated"))?;
                streams.push(SlotStream {
                    sender,
                    ssrc,
                    pt,
                    rewriter: StreamRewriter::default(),
                });
            }
            let (Some(video), Some(audio)) = (streams.pop(), streams.pop()) else {
                return Err(neg("two streams per slot"));
            };
            slots.push([audio, video]);
        }
        Ok((
            Leg {
                pc,
                candidate: setup.candidate,
                slots,
                incoming: Vec::new(),
                connected: false,
                anchor: None,
                path: None,
                moves: 0,
            },
            sdp,
        ))
    }

    /// A datagram the router gave to this leg (from an address that passed its check);
    /// what it yields (state changes, the member's RTP) is appended to `out` at once.
    ///
    /// At once, datagram by datagram, and not after a whole receive batch: every message
    /// `rtc` holds back waits in a queue of its own pipeline, and a queue keeps the
    /// capacity of its longest wait for the connection's whole life (about 10 KiB per leg
    /// on the read side when a batch was collected at the end; `docs/sfu-memory.md`).
    pub fn feed(&mut self, now: Instant, from: SocketAddr, datagram: &[u8], out: &mut Vec<Output>) {
        let stun = is_stun(datagram);
        // Media from another checked address of the member's: the path moves there if
        // `rtc` accepts this very datagram as the member's own (it yields RTP or RTCP).
        // What earlier datagrams yielded is taken first, so it is not counted for this one.
        let may_move = !stun && self.connected && self.anchor.is_some() && Some(from) != self.path;
        if may_move {
            self.collect(out);
        }
        let peer = match (self.anchor, self.path) {
            (Some(anchor), Some(path)) if from == path && !stun => anchor,
            _ => from,
        };
        // Errors inside the pipeline are only logged by rtc; a refused datagram is dropped.
        let _ = self.pc.handle_read(TaggedBytesMut {
            now,
            message: BytesMut::from(datagram),
            transport: TransportContext {
                local_addr: self.candidate,
                peer_addr: peer,
                ecn: None,
                transport_protocol: TransportProtocol::UDP,
            },
        });
        if self.collect(out) > 0 && may_move {
            self.path = Some(from);
            self.moves += 1;
        }
    }

    /// Where the member is now, once known: the address the shard must keep trusting.
    pub fn path(&self) -> Option<SocketAddr> {
        self.path
    }

    /// How often the member's address changed during the call.
    pub fn moves(&self) -> u64 {
        self.moves
    }

    /// Whether DTLS has come up.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// Take what happened since the last call: state changes first, then the member's RTP
    /// (its own receivers' RTCP was already answered by the interceptors and ends here:
    /// the relay never forwards a receiver's key-frame requests).
    pub fn drain(&mut self, out: &mut Vec<Output>) {
        self.collect(out);
    }

    /// Move the connection's events and reads into `out`; the number of RTP and RTCP
    /// messages read (each one decrypted and authenticated by this connection).
    fn collect(&mut self, out: &mut Vec<Output>) -> usize {
        while let Some(event) = self.pc.poll_event() {
            match event {
                RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) => match state {
                    RTCPeerConnectionState::Connected if !self.connected => {
                        self.connected = true;
                        out.push(Output::Connected);
                    }
                    RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed => {
                        out.push(Output::Gone)
                    }
                    _ => {}
                },
                RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) => {
                    let kind = match self.pc.rtp_receiver(init.receiver_id) {
                        Some(r) if r.track().kind() == RtpCodecKind::Audio => Kind::Audio,
                        Some(_) => Kind::Video,
                        None => continue,
                    };
                    self.incoming.push(Incoming {
                        track_id: init.track_id,
                        kind,
                        receiver: init.receiver_id,
                        ssrc: None,
                    });
                }
                _ => {}
            }
        }
        let mut read = 0;
        while let Some(TaggedRTCMessage { message, .. }) = self.pc.poll_read() {
            match message {
                RTCMessage::RtpPacket(track_id, mut packet) => {
                    read += 1;
                    let Some(track) = self.incoming.iter_mut().find(|t| t.track_id == track_id)
                    else {
                        continue;
                    };
                    track.ssrc = Some(packet.header.ssrc);
                    packet.header.extension = false;
                    packet.header.extensions.clear();
                    // Once per published packet, shared by all its receivers: the payload in
                    // a buffer of its own size. Otherwise each receiver's retransmission
                    // buffer keeps the whole decrypted datagram (header, extensions) alive.
                    packet.payload = bytes::Bytes::copy_from_slice(&packet.payload);
                    out.push(Output::Rtp(track.kind, packet.header.ssrc, packet));
                }
                RTCMessage::RtcpPacket(..) => read += 1,
                _ => {}
            }
        }
        read
    }

    /// Send `packet` from stream `source` (any number that changes when the publishing
    /// stream changes) in receive slot `slot`: rewritten to this leg's SSRC and payload
    /// type, numbered on from the slot's previous source. `false` when it was refused.
    pub fn write(
        &mut self,
        now: Instant,
        slot: usize,
        kind: Kind,
        source: u64,
        mut packet: RtpPacket,
    ) -> bool {
        if !self.connected {
            return false;
        }
        let Some(stream) = self.slots.get_mut(slot).map(|s| &mut s[kind as usize]) else {
            return false;
        };
        let ts_gap = match kind {
            Kind::Audio => 960,
            Kind::Video => 3000,
        };
        let (seq, ts) = stream.rewriter.rewrite(
            source,
            packet.header.sequence_number,
            packet.header.timestamp,
            ts_gap,
        );
        packet.header.ssrc = stream.ssrc;
        packet.header.payload_type = stream.pt;
        packet.header.sequence_number = seq;
        packet.header.timestamp = ts;
        let sender = stream.sender;
        match self.pc.rtp_sender(sender) {
            Some(mut s) => s.write_rtp(now, packet).is_ok(),
            None => false,
        }
    }

    /// Ask the member for a key frame on each video stream it sends (PLI).
    pub fn request_keyframe(&mut self, now: Instant) {
        let asks: Vec<(RTCRtpReceiverId, u32)> = self
            .incoming
            .iter()
            .filter(|t| t.kind == Kind::Video)
            .filter_map(|t| Some((t.receiver, t.ssrc?)))
            .collect();
        for (receiver, media_ssrc) in asks {
            if let Some(mut r) = self.pc.rtp_receiver(receiver) {
                let pli = PictureLossIndication {
                    sender_ssrc: 0,
                    media_ssrc,
                };
                let _ = r.write_rtcp(now, vec![Box::new(pli)]);
            }
        }
    }

    /// The next instant the leg's timers want [`Leg::timeout`].
    pub fn deadline(&mut self) -> Option<Instant> {
        self.pc.poll_timeout()
    }

    /// Run the timers due at `now`.
    pub fn timeout(&mut self, now: Instant) {
        let _ = self.pc.handle_timeout(now);
    }

    /// Hand every datagram waiting to go out to `send`: what `rtc` addresses to the anchor
    /// goes to the path.
    pub fn transmit(&mut self, mut send: impl FnMut(SocketAddr, BytesMut)) {
        while let Some(w) = self.pc.poll_write() {
            let mut to = w.transport.peer_addr;
            if self.anchor.is_none() && !is_stun(&w.message) {
                // The first DTLS record goes over the pair rtc selected.
                self.anchor = Some(to);
                self.path = Some(to);
            }
            if Some(to) == self.anchor
                && let Some(path) = self.path
            {
                to = path;
            }
            send(to, w.message);
        }
    }

    /// Close the connection (a DTLS close alert goes out with the next transmit).
    pub fn close(&mut self) {
        let _ = self.pc.close();
    }
}

/// The type-level promise the SFU relies on: a leg and the shard's certificate can move
/// to the shard's thread.
const _: fn() = || {
    fn send<T: Send>() {}
    send::<Leg>();
    send::<Certificate>();
};
