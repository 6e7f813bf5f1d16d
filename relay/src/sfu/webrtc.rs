//! The adapter: the only file that names webrtc-rs types.
//!
//! It builds one peer connection per call member (one UDP port from the configured range,
//! host candidates on the relay's own address only, VP8 and Opus without RTX), reads each
//! publisher's RTP and hands it to the receive slots of the other members. What goes where
//! is decided outside, in [`super::room`]; this file only moves packets.
//!
//! Forwarding never blocks on a receiver: each receive slot has a small queue and a task
//! that writes into webrtc-rs; a receiver that cannot keep up loses packets, not the
//! others' call.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use rtc::ice::mdns::MulticastDnsMode;
use rtc::ice::network_type::NetworkType;
use rtc::media_stream::MediaStreamTrack;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters,
    RTCRtpEncodingParameters, RtpCodecKind,
};
use tokio::sync::{Notify, mpsc, watch};
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCConfigurationBuilder, RTCIceGatheringState, RTCPeerConnectionState, RTCSessionDescription,
    Registry, SettingEngineBuilder,
};

use super::forward::StreamRewriter;
use approdo_core::limits::CALL_SLOTS;

/// Audio or video: index 0 and 1 of a slot's pair of streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Opus.
    Audio = 0,
    /// VP8.
    Video = 1,
}

/// Packets queued per receive stream before new ones are dropped (about 1 s of video).
const LEG_QUEUE: usize = 256;
/// How long ICE gathering may take (host candidates on one address: milliseconds).
const GATHER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a close may take before the connection is simply dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// Threads that drive peer connections. On these "dedicated reactors" dropping a connection
/// also stops its driver, so a close that fails or hangs (the browser closing first, say)
/// still releases the port; on the shared runtime a dropped driver would run on.
const REACTOR_THREADS: usize = 2;

/// Why a peer connection could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// Every port of the range is taken.
    #[error("no free UDP port in the configured range")]
    NoPort,
    /// The offer was refused or negotiation failed.
    #[error("negotiation failed: {0}")]
    Negotiation(String),
}

/// What a peer connection reports to the SFU.
#[derive(Debug)]
pub enum PeerEvent {
    /// DTLS is up: its receive slots can now take packets (time for key frames).
    Connected,
    /// The connection failed or closed from the browser's side.
    Gone,
}

/// One packet on its way to a receive slot, with the identity of its source stream.
struct Forwarded {
    source: u64,
    packet: rtp::Packet,
}

/// A receive slot's outgoing stream: where a publisher's task puts packets.
#[derive(Clone, Debug)]
pub struct LegSink {
    tx: mpsc::Sender<Forwarded>,
}

/// Where one publisher's audio and video go, as the SFU updates it; and its key-frame
/// trigger.
pub struct Fanout {
    /// Receivers of this member's audio.
    pub audio: watch::Receiver<Arc<Vec<LegSink>>>,
    /// Receivers of this member's video.
    pub video: watch::Receiver<Arc<Vec<LegSink>>>,
    /// Notified to send the publisher a key-frame request (PLI).
    pub keyframe: Arc<Notify>,
    /// Distinguishes this connection's streams from an earlier one of the same member.
    pub source_base: u64,
}

/// One member's peer connection to the relay.
pub struct Peer {
    pc: Arc<dyn PeerConnection>,
    /// The relay's SDP answer.
    pub answer: String,
    /// The UDP port it uses.
    pub port: u16,
    /// `legs[slot][kind]`.
    legs: Vec<[LegSink; 2]>,
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Peer {
    /// The sink of receive slot `slot`, for `kind`.
    pub fn leg(&self, slot: usize, kind: Kind) -> Option<LegSink> {
        self.legs.get(slot).map(|l| l[kind as usize].clone())
    }

    /// Close the connection: its driver stops, its port is released, its tasks end. Should
    /// the close fail or hang, dropping the last handle still stops the driver (see
    /// [`REACTOR_THREADS`]).
    pub async fn close(&self) {
        match tokio::time::timeout(CLOSE_TIMEOUT, self.pc.close()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "closing a peer connection failed"),
            Err(_) => tracing::warn!("closing a peer connection timed out"),
        }
    }

    /// A weak handle, to check that a closed connection is really gone.
    pub fn weak(&self) -> std::sync::Weak<dyn PeerConnection> {
        Arc::downgrade(&self.pc)
    }
}

/// Builds peer connections on the configured address and port range.
#[derive(Debug)]
pub struct PeerFactory {
    ip: IpAddr,
    public_ip: Option<IpAddr>,
    ports: (u16, u16),
    cursor: AtomicU32,
    /// RTP packets written to receivers, all calls together (a count for the metrics).
    forwarded: Arc<AtomicU64>,
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

impl PeerFactory {
    /// Connections bind `ip` (the relay's address facing the browsers) on a port from
    /// `ports` (inclusive). `public_ip`, when set, is announced instead of `ip` (1:1 NAT).
    pub fn new(ip: IpAddr, public_ip: Option<IpAddr>, ports: (u16, u16)) -> Self {
        PeerFactory {
            ip,
            public_ip,
            ports,
            cursor: AtomicU32::new(0),
            forwarded: Arc::default(),
        }
    }

    /// The count of RTP packets written to receivers by every connection this factory
    /// builds: the SFU reads it for the metrics endpoint without asking its task.
    pub fn forwarded_counter(&self) -> Arc<AtomicU64> {
        self.forwarded.clone()
    }

    /// Answer `offer`: build the connection, with a receive stream for every slot, and
    /// wire the publisher's incoming tracks to `fanout`.
    pub async fn connect(
        &self,
        offer: &str,
        fanout: Fanout,
        events: mpsc::UnboundedSender<PeerEvent>,
    ) -> Result<Peer, PeerError> {
        let neg = |e: webrtc::error::Error| PeerError::Negotiation(e.to_string());
        let gathered = Arc::new(Notify::new());
        let handler = Arc::new(Handler {
            gathered: gathered.clone(),
            events,
            fanout: std::sync::Mutex::new(Some(fanout)),
        });
        let (pc, port) = self.build(handler).await?;
        let pc: Arc<dyn PeerConnection> = Arc::new(pc);
        let result = async {
            let mut tracks = Vec::with_capacity(CALL_SLOTS);
            for slot in 0..CALL_SLOTS {
                let mut pair = Vec::with_capacity(2);
                for kind in [Kind::Audio, Kind::Video] {
                    let ssrc = random_ssrc();
                    let (codec, rtc_kind, name) = match kind {
                        Kind::Audio => (opus(), RtpCodecKind::Audio, "audio"),
                        Kind::Video => (vp8(), RtpCodecKind::Video, "video"),
                    };
                    let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
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
                    )));
                    let sender = pc
                        .add_track(track.clone() as Arc<dyn TrackLocal>)
                        .await
                        .map_err(neg)?;
                    pair.push((track, sender, ssrc));
                }
                tracks.push(pair);
            }
            pc.set_remote_description(RTCSessionDescription::offer(offer.to_owned()).map_err(neg)?)
                .await
                .map_err(neg)?;
            let answer = pc.create_answer(None).await.map_err(neg)?;
            pc.set_local_description(answer).await.map_err(neg)?;
            tokio::time::timeout(GATHER_TIMEOUT, gathered.notified())
                .await
                .map_err(|_| PeerError::Negotiation("ICE gathering timed out".into()))?;
            let answer = pc
                .local_description()
                .await
                .ok_or_else(|| PeerError::Negotiation("no local description".into()))?
                .sdp;
            let mut legs = Vec::with_capacity(CALL_SLOTS);
            for pair in tracks {
                let mut sinks = Vec::with_capacity(2);
                for (track, sender, ssrc) in pair {
                    let params = sender.get_parameters().await.map_err(neg)?;
                    let pt = params
                        .rtp_parameters
                        .codecs
                        .first()
                        .map(|c| c.payload_type)
                        .ok_or_else(|| PeerError::Negotiation("no codec negotiated".into()))?;
                    sinks.push(spawn_leg(track, ssrc, pt, self.forwarded.clone()));
                }
                let video = sinks.pop().expect("two per slot");
                let audio = sinks.pop().expect("two per slot");
                legs.push([audio, video]);
            }
            Ok::<_, PeerError>((answer, legs))
        }
        .await;
        match result {
            Ok((answer, legs)) => Ok(Peer {
                pc,
                answer,
                port,
                legs,
            }),
            Err(e) => {
                let _ = pc.close().await;
                Err(e)
            }
        }
    }

    /// Build a connection on the next free port of the range.
    async fn build(&self, handler: Arc<Handler>) -> Result<(impl PeerConnection, u16), PeerError> {
        let (lo, hi) = self.ports;
        let span = u32::from(hi - lo) + 1;
        for _ in 0..span {
            let port = lo + (self.cursor.fetch_add(1, Ordering::Relaxed) % span) as u16;
            let mut media = MediaEngine::default();
            let registered = media
                .register_codec(
                    RTCRtpCodecParameters {
                        rtp_codec: vp8(),
                        payload_type: 96,
                    },
                    RtpCodecKind::Video,
                )
                .and_then(|_| {
                    media.register_codec(
                        RTCRtpCodecParameters {
                            rtp_codec: opus(),
                            payload_type: 111,
                        },
                        RtpCodecKind::Audio,
                    )
                });
            if let Err(e) = registered {
                return Err(PeerError::Negotiation(e.to_string()));
            }
            let registry = interceptors(&mut media)?;
            let network = if self.ip.is_ipv4() {
                NetworkType::Udp4
            } else {
                NetworkType::Udp6
            };
            let mut settings = SettingEngineBuilder::new()
                .with_multicast_dns_mode(MulticastDnsMode::Disabled)
                .with_network_types(vec![network]);
            if let Some(public) = self.public_ip {
                settings = settings.with_nat_1to1_ips(
                    vec![public.to_string()],
                    webrtc::peer_connection::RTCIceCandidateType::Host,
                );
            }
            let built = PeerConnectionBuilder::new()
                .with_configuration(RTCConfigurationBuilder::new().build())
                .with_media_engine(media)
                .with_setting_engine(settings.build())
                .with_interceptor_registry(registry)
                .with_handler(handler.clone())
                .with_udp_addrs(vec![SocketAddr::new(self.ip, port)])
                .with_dedicated_reactor_pool_size(REACTOR_THREADS)
                .build()
                .await;
            match built {
                Ok(pc) => return Ok((pc, port)),
                Err(e) => tracing::debug!(error = %e, "port unusable, trying the next"),
            }
        }
        Err(PeerError::NoPort)
    }
}

/// Packets kept per outgoing video stream for retransmission on a receiver's NACK: about
/// 8 s of 360p video. webrtc-rs keeps 1024 by default, ~1.1 MB per stream once full, which
/// made a four-way call's peer connections cost ~4 MB each (benchmark).
const RETRANSMIT_BUFFER: u16 = 256;

/// webrtc-rs's default chain (NACK both ways, RTCP reports, transport-wide congestion
/// feedback so browsers can estimate their bandwidth, MID/RID extensions) with a smaller
/// retransmission buffer.
fn interceptors(media: &mut MediaEngine) -> Result<Registry, PeerError> {
    use rtc::interceptor::{NackGeneratorBuilder, NackResponderBuilder, Slot};
    use rtc::peer_connection::configuration::interceptor_registry::{
        configure_nack, configure_rtcp_reports, configure_simulcast_extension_headers,
        configure_twcc_receiver_only,
    };
    let err = |e: webrtc::error::Error| PeerError::Negotiation(e.to_string());
    let registry = configure_nack(Registry::new(), media)
        .with(
            Slot::NackResponder,
            NackResponderBuilder::new()
                .with_size(RETRANSMIT_BUFFER)
                .build(),
        )
        .with(Slot::NackGenerator, NackGeneratorBuilder::new().build());
    configure_simulcast_extension_headers(media).map_err(err)?;
    let registry = configure_twcc_receiver_only(registry, media).map_err(err)?;
    Ok(configure_rtcp_reports(registry))
}

fn random_ssrc() -> u32 {
    let mut b = [0u8; 4];
    approdo_core::ids::fill_random(&mut b);
    u32::from_le_bytes(b).max(1)
}

/// The task behind one receive stream: rewrite each packet for this leg (its SSRC and
/// payload type, continuous numbering, no header extensions it did not negotiate) and
/// write it, counting it in `forwarded`. It ends when the connection closes.
fn spawn_leg(
    track: Arc<TrackLocalStaticRTP>,
    ssrc: u32,
    pt: u8,
    forwarded: Arc<AtomicU64>,
) -> LegSink {
    let (tx, mut rx) = mpsc::channel::<Forwarded>(LEG_QUEUE);
    let ts_gap = if pt == 111 { 960 } else { 3000 };
    tokio::spawn(async move {
        let mut rewriter = StreamRewriter::default();
        while let Some(Forwarded { source, mut packet }) = rx.recv().await {
            let (seq, ts) = rewriter.rewrite(
                source,
                packet.header.sequence_number,
                packet.header.timestamp,
                ts_gap,
            );
            packet.header.ssrc = ssrc;
            packet.header.payload_type = pt;
            packet.header.sequence_number = seq;
            packet.header.timestamp = ts;
            if track.write_rtp(packet).await.is_ok() {
                forwarded.fetch_add(1, Ordering::Relaxed);
            } else if rx.is_closed() {
                // Not bound yet (the receiver is still connecting) or already closed.
                break;
            }
        }
    });
    LegSink { tx }
}

struct Handler {
    gathered: Arc<Notify>,
    events: mpsc::UnboundedSender<PeerEvent>,
    /// Taken by the first track: audio and video share it.
    fanout: std::sync::Mutex<Option<Fanout>>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            self.gathered.notify_one();
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let event = match state {
            RTCPeerConnectionState::Connected => PeerEvent::Connected,
            RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed => PeerEvent::Gone,
            _ => return,
        };
        let _ = self.events.send(event);
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let kind = track.kind().await;
        let Some(ssrc) = track.ssrcs().await.first().copied() else {
            return;
        };
        let (mut routes, keyframe, source) = {
            let guard = self.fanout.lock().unwrap_or_else(|p| p.into_inner());
            let Some(f) = guard.as_ref() else { return };
            let routes = match kind {
                RtpCodecKind::Audio => f.audio.clone(),
                _ => f.video.clone(),
            };
            (routes, f.keyframe.clone(), f.source_base | u64::from(ssrc))
        };
        let is_video = kind != RtpCodecKind::Audio;
        // Callbacks run on the connection's driver: the reading loop gets its own task.
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    event = track.poll() => match event {
                        Some(TrackRemoteEvent::OnRtpPacket(mut packet)) => {
                            packet.header.extension = false;
                            packet.header.extensions.clear();
                            let legs = routes.borrow_and_update().clone();
                            for leg in legs.iter() {
                                // A full queue means that receiver is behind: it loses this
                                // packet; nobody else waits for it.
                                let _ = leg.tx.try_send(Forwarded { source, packet: packet.clone() });
                            }
                        }
                        Some(TrackRemoteEvent::OnEnded) | None => break,
                        Some(_) => {}
                    },
                    () = keyframe.notified(), if is_video => {
                        let pli = PictureLossIndication { sender_ssrc: 0, media_ssrc: ssrc };
                        if track.write_rtcp(vec![Box::new(pli)]).await.is_err() {
                            break;
                        }
                    }
                }
            }
        });
    }
}
