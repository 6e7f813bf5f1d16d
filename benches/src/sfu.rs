//! The SFU's figures, each next to a baseline measured in the same run:
//!
//! * forwarded RTP packets per second per core of the relay (publisher → relay →
//!   subscriber, counted at the subscriber, divided by the relay process's CPU time),
//!   against a raw UDP echo child (`serve-udp-echo`) measured the same way;
//! * one-way latency publisher → relay → subscriber at a moderate rate, against sender →
//!   UDP echo → receiver at the same rate: the difference at p99 is what the relay adds;
//! * the same at half the relay's forwarding capacity found above, paced, with light members
//!   ([`halfload`]): what the relay adds when it is half busy;
//! * forwarding at saturation ([`saturate`]): four calls of light members whose SRTP
//!   datagrams were made ahead, sent in batches with a window and only counted on arrival,
//!   so the relay, not the generator, is the bottleneck (the first figure's single
//!   `NativeCaller` publisher keeps the relay 33–50 % busy); against the UDP echo under the
//!   same generator. The first figure stays, for comparison with earlier runs;
//! * one-way latency at half the rate found at saturation, with that run's generator paced
//!   ([`saturate_latency`]): the half-load run's generator cannot keep up at that rate;
//! * the relay's resident set per call member (one peer connection each) with full
//!   retransmission buffers, in a relay keeping what it kept before (256 packets per
//!   outgoing video stream) and in one with its default, and after they all left, with the
//!   SFU's census.
//!
//! The call members are [`NativeCaller`]s in this process (webrtc-rs's async crate; the
//! relay runs its sans-IO core, `rtc`), the relay is a child process with SFU ports of its
//! own (one per shard).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use approdo_core::client::Event;
use approdo_core::ids::SessionId;
use approdo_tests::media::{NativeCaller, Received};
use approdo_tests::{Actor, TestOrg, accepted_pair};
use tokio::net::UdpSocket;
use tokio::sync::Notify;

use crate::{ChildServer, percentile, us};

mod halfload;
mod saturate;
mod saturate_latency;
mod stamped;

/// RTP payload size in the throughput and latency runs (a full-size video packet).
const PACKET: usize = 1000;
/// Packets in flight during the throughput runs, relay and echo alike.
const WINDOW: u64 = 64;
/// Offered rate of the latency runs.
const LATENCY_PPS: u64 = 500;
/// UDP port of the benchmark's relays (shard 0; other relays in tests use other ports).
const SFU_PORT: &str = "42000";
/// Video packets each member sends in the memory run: more than the relay keeps per
/// outgoing video stream for retransmission (NACK: 256 before, 64 now), so those buffers
/// are full.
const MEMORY_PACKETS: u64 = 1100;
/// The retransmission buffer the relay kept before (packets per outgoing video stream): the
/// memory run's baseline, measured in the same run as the relay's default.
const OLD_RETRANSMIT_BUFFER: &str = "256";
/// Longest wait for anything that should take milliseconds.
const WAIT: Duration = Duration::from_secs(20);

// ----- the UDP echo child ----------------------------------------------------------------

/// `serve-udp-echo`: send every datagram back to where it came from, as fast as possible.
/// One socket is one loop: a single-threaded runtime runs it without cross-thread wake-ups,
/// which makes it the cheapest echo tokio can do, the honest floor for the relay.
pub fn serve_udp_echo() -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let socket = UdpSocket::bind("127.0.0.1:0").await?;
        // The relay's shards ask for 4 MiB; so does the echo, or the run at saturation
        // (hundreds of packets in flight) would measure its smaller buffer's drops.
        let _ = nix::sys::socket::setsockopt(
            &socket,
            nix::sys::socket::sockopt::RcvBuf,
            &(4 * 1024 * 1024),
        );
        println!("listening {}", socket.local_addr()?);
        let mut buf = vec![0u8; 2048];
        loop {
            let Ok((n, from)) = socket.recv_from(&mut buf).await else {
                continue;
            };
            let _ = socket.send_to(&buf[..n], from).await;
        }
    })
}

// ----- CPU time ------------------------------------------------------------------------------

/// Clock ticks per second of `/proc/<pid>/stat`, from `sysconf(_SC_CLK_TCK)`.
fn clock_ticks() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(
        || match nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK) {
            Ok(Some(t)) if t > 0 => t as f64,
            _ => 100.0,
        },
    )
}

/// CPU time (user + system, every thread) that process `pid` has used so far.
pub fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces): state is field 3, utime 14,
    // stime 15.
    let rest = stat.rsplit_once(')').context("stat format")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11).context("utime")?.parse()?;
    let stime: u64 = fields.get(12).context("stime")?.parse()?;
    Ok((utime + stime) as f64 / clock_ticks())
}

/// CPU time this process (every thread) has used so far.
pub(crate) fn own_cpu_seconds() -> Result<f64> {
    cpu_seconds(std::process::id())
}

/// CPU time this thread has used so far.
pub(crate) fn thread_cpu_seconds() -> Result<f64> {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)?;
    Ok(t.tv_sec() as f64 + t.tv_nsec() as f64 * 1e-9)
}

/// CPU seconds per packet for what SRTP costs the relay on each forwarded packet: unprotect
/// what the publisher sent, protect it again for the subscriber (AEAD AES-128-GCM through
/// ring, the profile webrtc-rs negotiates between two webrtc-rs peers), with the marshalling.
fn srtp_cost(n: u16) -> Result<f64> {
    use rtc::shared::marshal::Marshal;
    use rtc::srtp::context::Context;
    use rtc::srtp::protection_profile::ProtectionProfile;
    let crypto = rtc::crypto::providers::RingCrypto;
    let profile = ProtectionProfile::AeadAes128Gcm;
    let context =
        |key: u8| Context::new(&[key; 16], &[key ^ 0x5a; 12], profile, None, None, &crypto);
    // The publisher's leg and the subscriber's leg have keys of their own.
    let (mut publisher, mut relay_in) = (context(1)?, context(1)?);
    let (mut relay_out, mut subscriber) = (context(2)?, context(2)?);
    let mut packet = rtc::rtp::Packet {
        header: rtc::rtp::header::Header {
            version: 2,
            payload_type: 96,
            ssrc: 0x1234_5678,
            ..Default::default()
        },
        payload: vec![0x5a; PACKET].into(),
    };
    // What arrives at the relay (protected by the publisher), made outside the timing.
    let mut arriving = Vec::with_capacity(usize::from(n));
    for seq in 0..n {
        packet.header.sequence_number = seq;
        arriving.push(publisher.encrypt_rtp(&packet.marshal()?)?);
    }
    let start = thread_cpu_seconds()?;
    for srtp in &arriving {
        let plain = relay_in.decrypt_rtp(srtp)?;
        let out = relay_out.encrypt_rtp(&plain)?;
        std::hint::black_box(&out);
    }
    let per_packet = (thread_cpu_seconds()? - start) / f64::from(n);
    // Check once, outside the timing, that the subscriber can read what the relay made.
    packet.header.sequence_number = n;
    let plain = relay_in.decrypt_rtp(&publisher.encrypt_rtp(&packet.marshal()?)?)?;
    subscriber.decrypt_rtp(&relay_out.encrypt_rtp(&plain)?)?;
    Ok(per_packet)
}

// ----- flow control ----------------------------------------------------------------------------

/// What a throughput run measured.
struct Rate {
    /// Packets that arrived during the interval.
    packets: u64,
    wall: f64,
    /// CPU seconds of the child (the relay or the echo) over the interval.
    child_cpu: f64,
    /// CPU seconds of this process (senders and receivers) over the interval.
    own_cpu: f64,
}

impl Rate {
    fn pps(&self) -> f64 {
        self.packets as f64 / self.wall
    }

    fn per_core(&self) -> f64 {
        self.packets as f64 / self.child_cpu.max(1e-9)
    }
}

/// Send while `more(sent)` holds, with at most [`WINDOW`] packets in flight: `arrived`
/// counts what came out at the far end, `progress` is notified on each arrival. A packet
/// that never arrives (lost) is written off after 50 ms without progress, so the window
/// never jams.
async fn flow(
    mut more: impl FnMut(u64) -> bool,
    arrived: impl Fn() -> u64,
    progress: &Notify,
    mut send: impl AsyncFnMut() -> Result<()>,
) -> Result<()> {
    let base = arrived();
    let mut sent = 0u64;
    let mut written_off = 0u64;
    while more(sent) {
        let done = arrived() - base + written_off;
        if sent.saturating_sub(done) < WINDOW {
            send().await?;
            sent += 1;
        } else if tokio::time::timeout(Duration::from_millis(50), progress.notified())
            .await
            .is_err()
        {
            written_off = sent.saturating_sub(arrived() - base);
        }
    }
    Ok(())
}

/// [`flow`] for `duration`, measuring the packets that arrived and the CPU time spent.
async fn windowed(
    child: &ChildServer,
    duration: Duration,
    arrived: impl Fn() -> u64,
    progress: &Notify,
    send: impl AsyncFnMut() -> Result<()>,
) -> Result<Rate> {
    let base = arrived();
    let child_cpu = child.cpu_seconds()?;
    let own_cpu = own_cpu_seconds()?;
    let start = Instant::now();
    flow(|_| start.elapsed() < duration, &arrived, progress, send).await?;
    Ok(Rate {
        packets: arrived() - base,
        wall: start.elapsed().as_secs_f64(),
        child_cpu: child.cpu_seconds()? - child_cpu,
        own_cpu: own_cpu_seconds()? - own_cpu,
    })
}

/// Wait until `count` stops moving for 100 ms (stragglers of a warm-up have arrived).
async fn settle(count: impl Fn() -> u64) {
    let mut last = count();
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = count();
        if now == last {
            return;
        }
        last = now;
    }
}

// ----- the UDP echo baseline ----------------------------------------------------------------

/// A UDP socket talking to the echo child: the sending half is here, a task receives.
pub(crate) struct EchoClient {
    socket: Arc<UdpSocket>,
    arrived: Arc<AtomicU64>,
    progress: Arc<Notify>,
    record: Arc<AtomicBool>,
    delays_ns: Arc<Mutex<Vec<u64>>>,
    epoch: Instant,
    task: tokio::task::JoinHandle<()>,
}

impl EchoClient {
    pub(crate) async fn connect(echo: &ChildServer, epoch: Instant) -> Result<EchoClient> {
        let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await?);
        socket.connect(&echo.addr).await?;
        let arrived = Arc::new(AtomicU64::new(0));
        let progress = Arc::new(Notify::new());
        let record = Arc::new(AtomicBool::new(false));
        let delays_ns = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn({
            let (socket, arrived, progress, record, delays_ns) = (
                socket.clone(),
                arrived.clone(),
                progress.clone(),
                record.clone(),
                delays_ns.clone(),
            );
            async move {
                let mut buf = vec![0u8; 2048];
                while let Ok(n) = socket.recv(&mut buf).await {
                    if record.load(Ordering::Relaxed) && n >= 8 {
                        let sent = u64::from_be_bytes(buf[..8].try_into().expect("8 bytes"));
                        let now = epoch.elapsed().as_nanos() as u64;
                        if let Ok(mut d) = delays_ns.lock() {
                            d.push(now.saturating_sub(sent));
                        }
                    }
                    arrived.fetch_add(1, Ordering::Relaxed);
                    progress.notify_one();
                }
            }
        });
        Ok(EchoClient {
            socket,
            arrived,
            progress,
            record,
            delays_ns,
            epoch,
            task,
        })
    }

    /// Send one datagram of [`PACKET`] bytes stamped with the time, like a caller's.
    async fn send(&self) -> Result<()> {
        let mut payload = [0u8; PACKET];
        let stamp = self.epoch.elapsed().as_nanos() as u64;
        payload[..8].copy_from_slice(&stamp.to_be_bytes());
        self.socket.send(&payload).await?;
        Ok(())
    }

    fn arrived(&self) -> u64 {
        self.arrived.load(Ordering::Relaxed)
    }
}

impl Drop for EchoClient {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn echo_rate(echo: &ChildServer, client: &EchoClient, duration: Duration) -> Result<Rate> {
    // Warm up, then measure.
    windowed(
        echo,
        Duration::from_millis(500),
        || client.arrived(),
        &client.progress,
        async || client.send().await,
    )
    .await?;
    settle(|| client.arrived()).await;
    windowed(
        echo,
        duration,
        || client.arrived(),
        &client.progress,
        async || client.send().await,
    )
    .await
}

/// Sender → echo → receiver, one way (same clock), at [`LATENCY_PPS`]: (packets sent,
/// sorted delays).
pub(crate) async fn echo_latency(
    client: &EchoClient,
    duration: Duration,
) -> Result<(u64, Vec<Duration>)> {
    settle(|| client.arrived()).await;
    if let Ok(mut d) = client.delays_ns.lock() {
        d.clear();
    }
    client.record.store(true, Ordering::Relaxed);
    let sent = paced(duration, async || client.send().await).await?;
    settle(|| client.arrived()).await;
    client.record.store(false, Ordering::Relaxed);
    let d = client
        .delays_ns
        .lock()
        .map(|d| d.clone())
        .unwrap_or_default();
    Ok((sent, sorted(d)?))
}

/// Call `send` [`LATENCY_PPS`] times a second for `duration`; returns how many were sent
/// (fewer when this process was starved of CPU).
async fn paced(duration: Duration, mut send: impl AsyncFnMut() -> Result<()>) -> Result<u64> {
    let mut tick = tokio::time::interval(Duration::from_nanos(1_000_000_000 / LATENCY_PPS));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let start = Instant::now();
    let mut sent = 0;
    while start.elapsed() < duration {
        tick.tick().await;
        send().await?;
        sent += 1;
    }
    Ok(sent)
}

pub(crate) fn sorted(ns: Vec<u64>) -> Result<Vec<Duration>> {
    if ns.is_empty() {
        bail!("no latency samples arrived");
    }
    let mut d: Vec<Duration> = ns.into_iter().map(Duration::from_nanos).collect();
    d.sort();
    Ok(d)
}

// ----- calls through the relay ------------------------------------------------------------------

/// A person and an operator in one session, each with a peer connection to the relay's SFU.
struct CallPair {
    person: Actor,
    operator: Actor,
    session: SessionId,
    /// The person's connection (the publisher in the throughput and latency runs).
    publisher: NativeCaller,
    /// The operator's connection (the subscriber there).
    subscriber: NativeCaller,
}

impl CallPair {
    async fn open(url: &str, org: &TestOrg, epoch: Instant) -> Result<CallPair> {
        let (mut operator, mut person, session) = accepted_pair(org, url, url, "en").await;
        // The operator records one-way delays of what it receives (the latency run).
        let publisher = join_call(&mut person, session, epoch, false).await?;
        let subscriber = join_call(&mut operator, session, epoch, true).await?;
        Ok(CallPair {
            person,
            operator,
            session,
            publisher,
            subscriber,
        })
    }

    /// Both leave the call and close their connections.
    async fn leave(self) {
        let session = self.session;
        for a in [&self.person, &self.operator] {
            a.act(move |c| {
                let _ = c.leave_call(session);
            });
        }
        self.publisher.close().await;
        self.subscriber.close().await;
    }
}

pub(crate) async fn join_call(
    a: &mut Actor,
    session: SessionId,
    epoch: Instant,
    record: bool,
) -> Result<NativeCaller> {
    let (caller, offer) = NativeCaller::offer(epoch, record).await?;
    caller
        .answer(relay_answer(a, session, offer).await?)
        .await?;
    Ok(caller)
}

/// `a` joins `session`'s call with `offer`; the relay SFU's SDP answer.
pub(crate) async fn relay_answer(
    a: &mut Actor,
    session: SessionId,
    offer: String,
) -> Result<String> {
    a.query(move |c| c.join_call(session, &offer))
        .await
        .map_err(|e| anyhow::anyhow!("join call: {e:?}"))?;
    let Event::CallAnswer { sdp, .. } = a
        .wait_for("call answer", |e| matches!(e, Event::CallAnswer { .. }))
        .await
    else {
        unreachable!()
    };
    Ok(sdp)
}

async fn relay_rate(relay: &ChildServer, pair: &mut CallPair, duration: Duration) -> Result<Rate> {
    let received = pair.subscriber.received.clone();
    let video = || received.video.load(Ordering::Relaxed);
    // Until media flows (the subscriber's leg binds a moment after it connects), then a
    // warm-up at full speed.
    let deadline = Instant::now() + WAIT;
    while video() < 100 {
        if Instant::now() > deadline {
            bail!("no media came through the relay");
        }
        pair.publisher.send(true, PACKET).await?;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let publisher = &mut pair.publisher;
    windowed(
        relay,
        Duration::from_millis(500),
        video,
        &received.progress,
        async || publisher.send(true, PACKET).await,
    )
    .await?;
    settle(video).await;
    windowed(relay, duration, video, &received.progress, async || {
        publisher.send(true, PACKET).await
    })
    .await
}

/// Publisher → relay → subscriber, one way (same clock), at [`LATENCY_PPS`]: (packets
/// sent, sorted delays).
async fn relay_latency(pair: &mut CallPair, duration: Duration) -> Result<(u64, Vec<Duration>)> {
    let received = pair.subscriber.received.clone();
    settle(|| received.video.load(Ordering::Relaxed)).await;
    if let Ok(mut d) = received.delays_ns.lock() {
        d.clear();
    }
    let publisher = &mut pair.publisher;
    let sent = paced(duration, async || publisher.send(true, PACKET).await).await?;
    settle(|| received.video.load(Ordering::Relaxed)).await;
    let d = received
        .delays_ns
        .lock()
        .map(|d| d.clone())
        .unwrap_or_default();
    Ok((sent, sorted(d)?))
}

/// Send `n` video packets from `from` to the member whose receipts are `to`.
async fn pump(from: &mut NativeCaller, to: &Received, n: u64) -> Result<()> {
    flow(
        |sent| sent < n,
        || to.video.load(Ordering::Relaxed),
        &to.progress,
        async || from.send(true, PACKET).await,
    )
    .await
}

/// Wait (a few seconds at most) until the relay's census shows no call member and no live
/// peer connection; returns the census either way, for printing.
async fn until_empty(relay: &mut ChildServer) -> Result<(u64, u64, u64)> {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let c = relay.census()?;
        if (c.0, c.1) == (0, 0) || Instant::now() > deadline {
            return Ok(c);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ----- the section ------------------------------------------------------------------------------

/// Run the SFU section and print its figures.
pub async fn bench(quick: bool) -> Result<()> {
    let duration = Duration::from_secs(if quick { 2 } else { 5 });
    let org = TestOrg::default();
    let seed = hex::encode(*org.key.seed());
    let epoch = Instant::now();

    let echo = ChildServer::start("serve-udp-echo", &seed)?;
    let mut relay = ChildServer::start_with("serve-relay", &seed, &[("BENCH_SFU_PORT", SFU_PORT)])?;
    let mut pair = CallPair::open(&relay.url, &org, epoch).await?;

    // Packets per second per core.
    let client = EchoClient::connect(&echo, epoch).await?;
    let capacity = forwarding(&echo, &relay, &client, &mut pair, duration, quick).await?;

    // Latency at a moderate rate.
    let (e_sent, el) = echo_latency(&client, duration).await?;
    let (r_sent, rl) = relay_latency(&mut pair, duration).await?;
    println!(
        "SFU latency, one way through the child, {LATENCY_PPS} packets/s (arrived/sent: echo {}/{e_sent}, relay {}/{r_sent})",
        el.len(),
        rl.len()
    );
    println!(
        "  UDP echo (sender → echo → receiver)         p50 {:>6.0} µs   p99 {:>6.0} µs",
        us(percentile(&el, 0.5)),
        us(percentile(&el, 0.99))
    );
    println!(
        "  relay (publisher → relay → subscriber)      p50 {:>6.0} µs   p99 {:>6.0} µs",
        us(percentile(&rl, 0.5)),
        us(percentile(&rl, 0.99))
    );
    println!(
        "  relay-added at p99                          {:>6.0} µs  (goal ≤ 2000 µs)",
        us(percentile(&rl, 0.99).saturating_sub(percentile(&el, 0.99)))
    );
    drop(client);
    pair.leave().await;
    // The same relay and echo, half loaded (as long in quick mode: CI runs it, 2 s each).
    halfload::run(&relay, &echo, &org, epoch, capacity, duration).await?;
    // The same relay and echo at saturation: many calls, packets made ahead, full batches;
    // then paced at half the rate it forwarded, for the latency.
    let forwarded = saturate::saturate(&relay, &echo, &org, epoch, quick).await?;
    saturate_latency::run_or_print(&relay, &echo, &org, epoch, quick, forwarded).await;
    drop(echo);

    let left = until_empty(&mut relay).await?;
    drop(relay);

    memory_section(quick, &org, &seed, epoch).await?;
    println!("  SFU census of the throughput relay after its call left {left:?}");
    Ok(())
}

/// The forwarding run: the echo's and the relay's packets per second per core, printed
/// with where the relay's time goes; returns both figures of the relay's for the half-load
/// run.
async fn forwarding(
    echo: &ChildServer,
    relay: &ChildServer,
    client: &EchoClient,
    pair: &mut CallPair,
    duration: Duration,
    quick: bool,
) -> Result<halfload::Capacity> {
    let e = echo_rate(echo, client, duration).await?;
    let r = relay_rate(relay, pair, duration).await?;
    println!(
        "SFU forwarding ({PACKET}-byte RTP payloads, 1 publisher → 1 subscriber, window {WINDOW}, {:.0} s; CPU from /proc/<pid>/stat at {} ticks/s)",
        duration.as_secs_f64(),
        clock_ticks()
    );
    println!(
        "  UDP echo packets/s            {:>10.0}  echo CPU {:.2} s → {:>8.0} packets/s per core  (bench side CPU {:.2} s)",
        e.pps(),
        e.child_cpu,
        e.per_core(),
        e.own_cpu
    );
    println!(
        "  forwarded packets/s           {:>10.0}  relay CPU {:.2} s → {:>8.0} packets/s per core  (bench side CPU {:.2} s)",
        r.pps(),
        r.child_cpu,
        r.per_core(),
        r.own_cpu
    );
    println!(
        "  forwarded per core            ratio to UDP echo {:.3}x (goal ≥ 0.5); {:.0} packets/s per core (goal ≥ 100000)",
        r.per_core() / e.per_core(),
        r.per_core()
    );
    // Where the relay's CPU per packet goes: the socket calls (what the echo does per
    // packet), SRTP (timed here, alone), and the rest of the relay's path through `rtc`.
    let relay_us = 1e6 / r.per_core();
    let echo_us = 1e6 / e.per_core();
    let srtp_us = srtp_cost(if quick { 5_000 } else { 20_000 })? * 1e6;
    println!(
        "  where the time goes           relay {relay_us:.1} µs CPU per forwarded packet ≈ {echo_us:.1} µs socket I/O (the echo's) + {srtp_us:.1} µs SRTP unprotect+protect (AES-128-GCM, timed alone) + {:.1} µs rtc per-packet path (routing, interceptors, RTP parse and marshal, copies)",
        (relay_us - echo_us - srtp_us).max(0.0)
    );

    Ok(halfload::Capacity {
        forwarded: r.pps(),
        per_core: r.per_core(),
    })
}

/// The half-load run alone (`--sfu-halfload`): a relay whose SFU takes free ports, the
/// forwarding run to find its capacity, then half of it. Well under a minute.
pub async fn halfload_only(quick: bool) -> Result<()> {
    let duration = Duration::from_secs(if quick { 2 } else { 5 });
    let org = TestOrg::default();
    let seed = hex::encode(*org.key.seed());
    let epoch = Instant::now();
    let echo = ChildServer::start("serve-udp-echo", &seed)?;
    let relay = ChildServer::start("serve-relay", &seed)?;
    let mut pair = CallPair::open(&relay.url, &org, epoch).await?;
    let client = EchoClient::connect(&echo, epoch).await?;
    let capacity = forwarding(&echo, &relay, &client, &mut pair, duration, quick).await?;
    drop(client);
    pair.leave().await;
    halfload::run(&relay, &echo, &org, epoch, capacity, duration).await
}

pub use saturate::saturate_only;

/// The memory part of the SFU section alone (`--sfu-memory`): per peer connection, in
/// relays of their own, the old retransmission buffer first (the baseline), then the
/// relay's default. Alone it takes well under a minute, so a change to what a leg keeps can
/// be measured without the throughput and latency runs.
pub async fn memory_only(quick: bool) -> Result<()> {
    let org = TestOrg::default();
    let seed = hex::encode(*org.key.seed());
    memory_section(quick, &org, &seed, Instant::now()).await
}

/// Memory per peer connection, in relays of their own: the old retransmission buffer
/// first (the baseline), then the relay's default.
async fn memory_section(quick: bool, org: &TestOrg, seed: &str, epoch: Instant) -> Result<()> {
    let members = if quick { 10 } else { 40 };
    let old = memory(org, seed, epoch, members, Some(OLD_RETRANSMIT_BUFFER)).await?;
    let now = memory(org, seed, epoch, members, None).await?;
    println!(
        "SFU memory ({members} call members = {} calls × 2, one peer connection each; relay resident set)",
        members / 2
    );
    for (label, m) in [
        (
            format!("retransmission buffer {OLD_RETRANSMIT_BUFFER} (before)"),
            &old,
        ),
        (
            format!(
                "retransmission buffer {} (default)",
                approdo_relay::sfu::leg::RETRANSMIT_BUFFER
            ),
            &now,
        ),
    ] {
        println!("  {label}");
        println!(
            "    before / connected / after {MEMORY_PACKETS} video packets each / after all left   {:.1} / {:.1} / {:.1} / {:.1} MiB",
            m.before as f64 / 1024.0,
            m.connected as f64 / 1024.0,
            m.with_media as f64 / 1024.0,
            m.after as f64 / 1024.0
        );
        println!(
            "    per peer connection         {:>8.1} KiB connected, {:.1} KiB with retransmission buffers full  (goal ≤ 512 KiB with the buffers full)",
            m.per(m.connected),
            m.per(m.with_media)
        );
        println!(
            "    SFU census (members, live peer connections, calls): after warm-up {:?}, with members {:?}, after all left {:?}",
            m.warmed, m.during, m.after_census
        );
    }
    println!(
        "  with buffers full, default against before   {:.2}x",
        now.per(now.with_media) / old.per(old.with_media).max(1e-9)
    );
    Ok(())
}

/// What one memory run measured (resident set in KiB, censuses).
struct Memory {
    members: usize,
    before: u64,
    connected: u64,
    with_media: u64,
    after: u64,
    warmed: (u64, u64, u64),
    during: (u64, u64, u64),
    after_census: (u64, u64, u64),
}

impl Memory {
    /// KiB per peer connection at `kib`, above the resident set before the members came.
    fn per(&self, kib: u64) -> f64 {
        kib.saturating_sub(self.before) as f64 / self.members as f64
    }
}

/// Memory per peer connection in a relay of its own, keeping `retransmit` packets per
/// outgoing video stream (`None`: its default). One call first pays what is paid once
/// (runtime, crypto provider, ...); it carries no media, so it leaves little freed heap
/// behind for the measured connections to reuse.
async fn memory(
    org: &TestOrg,
    seed: &str,
    epoch: Instant,
    members: usize,
    retransmit: Option<&str>,
) -> Result<Memory> {
    let mut env = vec![("BENCH_SFU_PORT", SFU_PORT)];
    if let Some(n) = retransmit {
        env.push(("BENCH_SFU_RETRANSMIT", n));
    }
    let mut relay = ChildServer::start_with("serve-relay", seed, &env)?;
    CallPair::open(&relay.url, org, epoch).await?.leave().await;
    let warmed = until_empty(&mut relay).await?;
    let before = relay.rss_kib()?;
    let mut pairs = Vec::with_capacity(members / 2);
    for _ in 0..members / 2 {
        pairs.push(CallPair::open(&relay.url, org, epoch).await?);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let connected = relay.rss_kib()?;
    let during = relay.census()?;
    for p in &mut pairs {
        pump(&mut p.publisher, &p.subscriber.received, MEMORY_PACKETS).await?;
        pump(&mut p.subscriber, &p.publisher.received, MEMORY_PACKETS).await?;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let with_media = relay.rss_kib()?;
    for p in pairs {
        p.leave().await;
    }
    let after_census = until_empty(&mut relay).await?;
    let after = relay.rss_kib()?;
    Ok(Memory {
        members,
        before,
        connected,
        with_media,
        after,
        warmed,
        during,
        after_census,
    })
}
