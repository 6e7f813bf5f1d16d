//! A native call member for tests and the benchmark: a webrtc-rs peer connection shaped
//! like the pages' (audio and video to send, then [`CALL_SLOTS`] receive slots), that
//! sends numbered RTP packets stamped with the time and records what it receives.
//!
//! It does not encode real media: the relay forwards opaque payloads, which is what the
//! forwarding tests and the benchmark measure.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use approdo_core::client::Event;
use approdo_core::ids::SessionId;
use approdo_core::limits::CALL_SLOTS;
use approdo_relay::sfu::leg::{opus, vp8};
use rtc::ice::mdns::MulticastDnsMode;
use rtc::ice::network_type::NetworkType;
use rtc::media_stream::MediaStreamTrack;
use rtc::rtp;
use rtc::rtp_transceiver::RTCRtpTransceiverDirection;
use rtc::rtp_transceiver::RTCRtpTransceiverInit;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use tokio::sync::Notify;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCConfigurationBuilder, RTCIceGatheringState, RTCPeerConnectionState, RTCSessionDescription,
    Registry, SettingEngineBuilder, register_default_interceptors,
};

use crate::moving_hop::MovingHop;

/// What a member received, per kind.
#[derive(Debug, Default)]
pub struct Received {
    /// Audio packets.
    pub audio: AtomicU64,
    /// Video packets.
    pub video: AtomicU64,
    /// One-way delays (ns) of stamped video packets, when recording.
    pub delays_ns: Mutex<Vec<u64>>,
    /// Payloads seen (first bytes), to check the relay changes nothing.
    pub payloads: Mutex<Vec<Vec<u8>>>,
    /// Notified after every received packet (the benchmark's flow control waits on it).
    pub progress: Notify,
}

/// A native call member. See the module documentation.
pub struct NativeCaller {
    pc: Arc<dyn PeerConnection>,
    audio: Arc<TrackLocalStaticRTP>,
    video: Arc<TrackLocalStaticRTP>,
    audio_ssrc: u32,
    video_ssrc: u32,
    seq: [u16; 2],
    /// What arrived.
    pub received: Arc<Received>,
    connected: Arc<Notify>,
    /// The time base of the stamps in payloads.
    pub epoch: Instant,
}

struct Handler {
    gathered: Arc<Notify>,
    connected: Arc<Notify>,
    received: Arc<Received>,
    epoch: Instant,
    record: bool,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            self.gathered.notify_one();
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        if state == RTCPeerConnectionState::Connected {
            self.connected.notify_one();
        }
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let video = track.kind().await != RtpCodecKind::Audio;
        let received = self.received.clone();
        let epoch = self.epoch;
        let record = self.record;
        tokio::spawn(async move {
            while let Some(event) = track.poll().await {
                let TrackRemoteEvent::OnRtpPacket(p) = event else {
                    continue;
                };
                if video {
                    received.video.fetch_add(1, Ordering::Relaxed);
                } else {
                    received.audio.fetch_add(1, Ordering::Relaxed);
                }
                if record && video && p.payload.len() >= 8 {
                    let sent = u64::from_be_bytes(p.payload[..8].try_into().expect("8 bytes"));
                    let now = epoch.elapsed().as_nanos() as u64;
                    if let Ok(mut d) = received.delays_ns.lock() {
                        d.push(now.saturating_sub(sent));
                    }
                }
                if let Ok(mut seen) = received.payloads.lock()
                    && seen.len() < 64
                {
                    seen.push(p.payload.to_vec());
                }
                received.progress.notify_one();
            }
        });
    }
}

impl NativeCaller {
    /// Build the connection and its offer (every candidate gathered). `epoch` is the time
    /// base shared by every caller of a measurement; `record` keeps one-way delays.
    pub async fn offer(epoch: Instant, record: bool) -> Result<(Self, String)> {
        let mut media = MediaEngine::default();
        media.register_codec(
            RTCRtpCodecParameters {
                rtp_codec: vp8(),
                payload_type: 96,
            },
            RtpCodecKind::Video,
        )?;
        media.register_codec(
            RTCRtpCodecParameters {
                rtp_codec: opus(),
                payload_type: 111,
            },
            RtpCodecKind::Audio,
        )?;
        let registry = register_default_interceptors(Registry::new(), &mut media)?;
        let settings = SettingEngineBuilder::new()
            .with_multicast_dns_mode(MulticastDnsMode::Disabled)
            .with_network_types(vec![NetworkType::Udp4])
            .build();
        let gathered = Arc::new(Notify::new());
        let connected = Arc::new(Notify::new());
        let received = Arc::new(Received::default());
        let handler = Arc::new(Handler {
            gathered: gathered.clone(),
            connected: connected.clone(),
            received: received.clone(),
            epoch,
            record,
        });
        let pc = PeerConnectionBuilder::new()
            .with_configuration(RTCConfigurationBuilder::new().build())
            .with_media_engine(media)
            .with_setting_engine(settings)
            .with_interceptor_registry(registry)
            .with_handler(handler)
            .with_udp_addrs(vec![SocketAddr::from(([127, 0, 0, 1], 0))])
            .build()
            .await?;
        let pc: Arc<dyn PeerConnection> = Arc::new(pc);
        let ssrcs = [random_ssrc(), random_ssrc()];
        let local = |kind: RtpCodecKind, ssrc: u32| {
            let (codec, name) = match kind {
                RtpCodecKind::Audio => (opus(), "audio"),
                _ => (vp8(), "video"),
            };
            Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
                "caller".into(),
                format!("caller-{name}"),
                format!("caller-{name}"),
                kind,
                vec![RTCRtpEncodingParameters {
                    rtp_coding_parameters: RTCRtpCodingParameters {
                        ssrc: Some(ssrc),
                        ..Default::default()
                    },
                    codec,
                    ..Default::default()
                }],
            )))
        };
        let audio = local(RtpCodecKind::Audio, ssrcs[0]);
        let video = local(RtpCodecKind::Video, ssrcs[1]);
        let send = || RTCRtpTransceiverInit {
            direction: RTCRtpTransceiverDirection::Sendonly,
            streams: vec![],
            send_encodings: vec![],
        };
        pc.add_transceiver_from_track(audio.clone() as Arc<dyn TrackLocal>, Some(send()))
            .await?;
        pc.add_transceiver_from_track(video.clone() as Arc<dyn TrackLocal>, Some(send()))
            .await?;
        for _ in 0..CALL_SLOTS {
            for kind in [RtpCodecKind::Audio, RtpCodecKind::Video] {
                let recv = RTCRtpTransceiverInit {
                    direction: RTCRtpTransceiverDirection::Recvonly,
                    streams: vec![],
                    send_encodings: vec![],
                };
                pc.add_transceiver_from_kind(kind, Some(recv)).await?;
            }
        }
        let offer = pc.create_offer(None).await?;
        pc.set_local_description(offer).await?;
        tokio::time::timeout(Duration::from_secs(5), gathered.notified())
            .await
            .context("ICE gathering")?;
        let sdp = pc
            .local_description()
            .await
            .context("no local description")?
            .sdp;
        Ok((
            NativeCaller {
                pc,
                audio,
                video,
                audio_ssrc: ssrcs[0],
                video_ssrc: ssrcs[1],
                seq: [0, 0],
                received,
                connected,
                epoch,
            },
            sdp,
        ))
    }

    /// Apply the relay's answer and wait until the connection is up.
    pub async fn answer(&self, sdp: String) -> Result<()> {
        self.pc
            .set_remote_description(RTCSessionDescription::answer(sdp)?)
            .await?;
        tokio::time::timeout(Duration::from_secs(10), self.connected.notified())
            .await
            .context("the connection to the relay did not come up")?;
        Ok(())
    }

    /// Send one packet of `kind` whose payload starts with the current time stamp.
    pub async fn send(&mut self, video: bool, payload_len: usize) -> Result<()> {
        let i = usize::from(video);
        self.seq[i] = self.seq[i].wrapping_add(1);
        let mut payload = vec![0u8; payload_len.max(8)];
        let stamp = self.epoch.elapsed().as_nanos() as u64;
        payload[..8].copy_from_slice(&stamp.to_be_bytes());
        let packet = rtp::Packet {
            header: rtp::header::Header {
                version: 2,
                marker: true,
                payload_type: if video { 96 } else { 111 },
                sequence_number: self.seq[i],
                timestamp: u32::from(self.seq[i]).wrapping_mul(3000),
                ssrc: if video {
                    self.video_ssrc
                } else {
                    self.audio_ssrc
                },
                ..Default::default()
            },
            payload: payload.into(),
        };
        let track = if video { &self.video } else { &self.audio };
        track.write_rtp(packet).await?;
        Ok(())
    }

    /// The remote candidates this connection learnt from the relay's answer.
    pub async fn remote_sdp(&self) -> Option<String> {
        self.pc.remote_description().await.map(|d| d.sdp)
    }

    /// Close the connection.
    pub async fn close(&self) {
        let _ = self.pc.close().await;
    }
}

fn random_ssrc() -> u32 {
    let mut b = [0u8; 4];
    approdo_core::ids::fill_random(&mut b);
    u32::from_le_bytes(b).max(1)
}

/// Join `a`'s session call the way the pages do (an offer without any candidate of ours)
/// and return once media can flow.
pub async fn join_call(a: &mut crate::Actor, session: SessionId) -> NativeCaller {
    let (caller, sdp) = offer_and_answer(a, session).await;
    caller.answer(sdp).await.expect("connected");
    caller
}

/// As [`join_call`], but the member reaches the relay through a [`MovingHop`], so a test
/// can change the address the relay sees it at.
pub async fn join_call_through_hop(
    a: &mut crate::Actor,
    session: SessionId,
) -> (NativeCaller, MovingHop) {
    let (caller, sdp) = offer_and_answer(a, session).await;
    let relay = answer_candidate(&sdp).expect("the answer names the relay's candidate");
    let hop = MovingHop::start(relay).await;
    let front = hop.front();
    let sdp = sdp.replace(
        &format!("{} {} typ host", relay.ip(), relay.port()),
        &format!("{} {} typ host", front.ip(), front.port()),
    );
    caller.answer(sdp).await.expect("connected");
    (caller, hop)
}

/// A conversation on `relay` whose person and operator are in a call, the person's media
/// through a [`MovingHop`], once each has received at least `min_video` video packets:
/// where every test of what happens on a member's path starts.
pub async fn call_through_hop(
    relay: &crate::TestRelay,
    org: &crate::TestOrg,
    min_video: u64,
) -> (crate::Conversation, NativeCaller, MovingHop, NativeCaller) {
    let mut conv = crate::Conversation::open(relay, org, "en").await;
    let (mut person, hop) = join_call_through_hop(&mut conv.person, conv.session).await;
    let mut operator = join_call(&mut conv.operator, conv.session).await;
    let flowing = talk(
        &mut person,
        &mut operator,
        Instant::now() + crate::WAIT,
        |p, o| video_received(p) >= min_video && video_received(o) >= min_video,
    )
    .await;
    assert!(flowing, "media flows both ways");
    (conv, person, hop, operator)
}

async fn offer_and_answer(a: &mut crate::Actor, session: SessionId) -> (NativeCaller, String) {
    let (caller, offer) = NativeCaller::offer(Instant::now(), false)
        .await
        .expect("offer");
    let offer: String = offer
        .lines()
        .filter(|l| !l.starts_with("a=candidate:") && *l != "a=end-of-candidates")
        .map(|l| format!("{l}\r\n"))
        .collect();
    a.act(move |c| c.join_call(session, &offer).expect("join call"));
    let Event::CallAnswer { sdp, .. } = a
        .wait_for("call answer", |e| matches!(e, Event::CallAnswer { .. }))
        .await
    else {
        unreachable!()
    };
    (caller, sdp)
}

/// The address of the (one) host candidate in an SDP.
fn answer_candidate(sdp: &str) -> Option<SocketAddr> {
    let line = sdp.lines().find(|l| l.starts_with("a=candidate:"))?;
    let fields: Vec<&str> = line.split_whitespace().collect();
    let ip: std::net::IpAddr = fields.get(4)?.parse().ok()?;
    let port: u16 = fields.get(5)?.parse().ok()?;
    Some(SocketAddr::new(ip, port))
}

/// Video packets `c` has received so far.
pub fn video_received(c: &NativeCaller) -> u64 {
    c.received.video.load(Ordering::Relaxed)
}

/// Both members send a video and an audio packet every 5 ms until `done` says so or
/// `deadline` passes; whether `done` held in the end.
pub async fn talk(
    person: &mut NativeCaller,
    operator: &mut NativeCaller,
    deadline: Instant,
    mut done: impl FnMut(&NativeCaller, &NativeCaller) -> bool,
) -> bool {
    while Instant::now() < deadline {
        if done(person, operator) {
            return true;
        }
        for c in [&mut *person, &mut *operator] {
            c.send(true, 600).await.expect("send video");
            c.send(false, 120).await.expect("send audio");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    done(person, operator)
}
