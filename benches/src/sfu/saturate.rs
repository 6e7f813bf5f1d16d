//! Forwarding at saturation (issue 11: "forwarded packets/s per core ≥ 100k and ≥ 0.5× the
//! raw UDP echo"): the relay's packets per CPU-second when it is busy, with full batches.
//!
//! The forwarding run next to it ([`super::forwarding`]) measures one async `NativeCaller`
//! publisher with 64 packets in flight: that generator is the bottleneck (the relay is
//! 33–50 % busy there), the relay's receive batches are small, and its figure per core is
//! mostly what a wake-up costs. Here the generator costs next to nothing per packet:
//!
//! * [`CALLS`] calls of two light members each (sans-IO `rtc`, a plain socket each). Before
//!   the timed run each publisher makes its SRTP datagrams ahead of time
//!   ([`prepare_video`]: 1000-byte video payloads, consecutive sequence numbers
//!   and SRTP indexes) and sends nothing.
//! * One blaster thread sends them, [`BATCH`] per system call: `sendmmsg` (each datagram its
//!   own trip through the stack, as from many browsers), or one UDP GSO send per run of
//!   them (`--quick` measures `sendmmsg` only). It keeps at most [`WINDOW`] packets per call
//!   in flight ("as fast as the relay takes"): a paced rate above the relay's capacity
//!   would only fill its socket buffer and measure the kernel's drops, one below it would
//!   not saturate it; a window keeps every shard's socket holding a full batch or more
//!   without loss, and what was offered is what was sent.
//! * One receiver thread reads the subscribers' sockets in batches (`recvmmsg` with GRO,
//!   each datagram with the kernel's arrival stamp: [`super::stamped`]) and only counts
//!   the video RTP (no decryption); everything else (STUN, DTLS, RTCP) goes to the
//!   member's connection, and every member's timers are fired, so consent and the call
//!   stay alive.
//! * The baseline: the same blaster sends the same datagrams from [`CALLS`] plain sockets to
//!   the `serve-udp-echo` child, and the same receiver counts the echoes.
//!
//! Printed per run: offered and forwarded packets/s, the child's CPU (the whole process,
//! and for the relay its shard threads alone, from `/proc/<pid>/task/*/stat`), packets per
//! CPU-second, the ratio to the echo's, the loss, and the bench side's CPU.
//!
//! [`prepare_video`]: approdo_tests::light_member::LightMember::prepare_video

use std::io::{self, IoSlice};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use approdo_tests::TestOrg;
use approdo_tests::light_member::{Prepared, is_video_rtp};
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage};
use quinn_udp::{Transmit, UdpSocketState};

use super::halfload::LightCall;
use super::{PACKET, cpu_seconds, own_cpu_seconds};
use crate::ChildServer;

/// Calls of two light members (publisher, subscriber). Four: two per shard on this 2-core
/// machine, each shard then reads several flows per batch, as a busy relay does
/// (`BENCH_SATURATE_CALLS` overrides it; docs/sfu-saturation.md has what was tried).
pub(super) const CALLS: usize = 4;
/// Packets in flight per call: enough to keep a full receive batch (32) waiting at the
/// shard through a whole turn of its loop, little enough for every socket buffer on the
/// way (4 MiB) never to overflow (`BENCH_SATURATE_WINDOW` overrides it).
const WINDOW: u64 = 256;
/// Most datagrams per system call of the blaster (`sendmmsg`, or one GSO send).
pub(super) const BATCH: usize = 64;
/// The blaster waits until a call has room for at least this many (fuller batches).
const MIN_SEND: u64 = 16;
/// Most bytes in one segmented send (a UDP datagram's limit, with room for headers).
const MAX_GSO_BYTES: usize = 60_000;
/// A call whose window is full and which saw nothing arrive for this long has lost what
/// is in flight: it is written off, so the window never jams.
const STALL: Duration = Duration::from_millis(50);
/// The run ends once nothing arrived for this long after the last send.
const DRAIN: Duration = Duration::from_millis(100);
/// How often the receiver fires the members' timers.
const SERVICE_EVERY: Duration = Duration::from_millis(5);
/// Packets made ahead of time per second of the run, all calls together: above what this
/// machine forwarded (a run that uses them all ends early, and says so).
const PREPARED_PER_SECOND: usize = 220_000;
/// Packets made per publisher between two services of every member (the making takes a
/// few µs per packet; the calls' timers must not wait seconds).
const PREPARE_CHUNK: usize = 5_000;
/// Socket buffers asked for on the bench side (the most this machine allows by default).
const SOCKET_BUFFER: usize = 4 * 1024 * 1024;

/// `name`'s value in the environment when it is a number, else `default`: for trying other
/// loads without a rebuild.
pub(super) fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
        .max(1)
}

fn window() -> u64 {
    setting("BENCH_SATURATE_WINDOW", WINDOW)
}

/// How the blaster sends.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Mode {
    /// `sendmmsg`: every datagram its own skb, as traffic from many browsers arrives.
    Mmsg,
    /// One UDP GSO send per run of datagrams; on the loopback a receiving socket with GRO
    /// (the relay's) gets the run whole, in one receive (cheaper than real traffic).
    Gso,
}

impl Mode {
    fn label(self) -> &'static str {
        match self {
            Mode::Mmsg => "sendmmsg",
            Mode::Gso => "UDP GSO",
        }
    }
}

/// One call's stream, on the blaster's side.
pub(super) struct Stream<'a> {
    socket: UdpSocket,
    state: UdpSocketState,
    pub(super) to: SocketAddr,
    pub(super) data: &'a Prepared,
    /// The next datagram to send, and where it starts in `data.bytes`.
    pub(super) next: usize,
    offset: usize,
    /// Video packets counted at the receiving end so far.
    pub(super) arrived: &'a AtomicU64,
    written_off: u64,
    /// Arrivals last seen, and when they last moved.
    seen: (u64, Instant),
}

/// What one run measured.
pub(super) struct Run {
    mode: Mode,
    pub(super) sent: u64,
    pub(super) arrived: u64,
    /// Seconds spent sending.
    pub(super) send_wall: f64,
    /// Seconds from the first send to the last arrival.
    arrive_wall: f64,
    /// Seconds from the first send to the end of the drain: the CPU figures' interval.
    pub(super) run_wall: f64,
    /// The child's CPU seconds (every thread), and what its shard threads used (the
    /// relay's).
    pub(super) child_cpu: f64,
    pub(super) shards: Option<Threads>,
    pub(super) own_cpu: f64,
    /// The whole run used what was made ahead of time before its time was up.
    pub(super) ran_out: bool,
    /// Received buffers without the kernel's stamp (timed at the read instead).
    pub(super) unstamped: u64,
}

impl Run {
    fn offered(&self) -> f64 {
        self.sent as f64 / self.send_wall.max(1e-9)
    }

    /// Arrived packets per second of wall time (the relay's forwarded packets/s).
    pub(super) fn pps(&self) -> f64 {
        self.arrived as f64 / self.arrive_wall.max(1e-9)
    }

    fn per_core(&self) -> f64 {
        self.arrived as f64 / self.child_cpu.max(1e-9)
    }

    fn loss(&self) -> f64 {
        1.0 - self.arrived as f64 / (self.sent.max(1) as f64)
    }
}

/// What the threads of a process with one name have used so far.
#[derive(Clone, Copy, Default)]
pub(super) struct Threads {
    /// How many there are.
    pub(super) n: usize,
    /// CPU seconds (user + system).
    pub(super) cpu: f64,
    /// Times they gave up the CPU themselves (waiting for work: an idle shard) and were
    /// made to (preempted: a shard with work that another thread took the core from).
    pub(super) voluntary: u64,
    pub(super) preempted: u64,
}

/// [`Threads`] of `pid` whose name starts with `prefix`; `None` when `/proc` cannot tell.
fn threads(pid: u32, prefix: &str) -> Option<Threads> {
    let mut t = Threads::default();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let dir = task.ok()?.path();
        let Ok(stat) = std::fs::read_to_string(dir.join("stat")) else {
            continue;
        };
        let (Some(open), Some((head, rest))) = (stat.find('('), stat.rsplit_once(')')) else {
            continue;
        };
        if !head
            .get(open + 1..)
            .is_some_and(|comm| comm.starts_with(prefix))
        {
            continue;
        }
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
        t.cpu += (ticks(11)? + ticks(12)?) as f64 / super::clock_ticks();
        t.n += 1;
        let status = std::fs::read_to_string(dir.join("status")).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0)
        };
        t.voluntary += field("voluntary_ctxt_switches:");
        t.preempted += field("nonvoluntary_ctxt_switches:");
    }
    Some(t)
}

/// Send up to `k` datagrams of `s` in one system call; how many went.
pub(super) fn send_batch(
    s: &mut Stream<'_>,
    k: usize,
    mode: Mode,
    headers: &mut MultiHeaders<SockaddrStorage>,
    addrs: &[Option<SockaddrStorage>],
) -> usize {
    let lens = &s.data.lens[s.next..s.next + k];
    let (sent, bytes) = match mode {
        Mode::Gso if s.state.max_gso_segments() > 1 => {
            let len = lens[0];
            let most = s.state.max_gso_segments().min(MAX_GSO_BYTES / len.max(1));
            let n = lens.iter().take(most).take_while(|l| **l == len).count();
            let transmit = Transmit {
                destination: s.to,
                ecn: None,
                contents: &s.data.bytes[s.offset..s.offset + n * len],
                segment_size: (n > 1).then_some(len),
                src_ip: None,
            };
            match s.state.try_send((&s.socket).into(), &transmit) {
                Ok(()) => (n, n * len),
                Err(_) => (0, 0),
            }
        }
        _ => {
            let mut at = s.offset;
            let slices: [[IoSlice<'_>; 1]; BATCH] = std::array::from_fn(|i| {
                let len = lens.get(i).copied().unwrap_or(0);
                let slice = &s.data.bytes[at..at + len];
                at += len;
                [IoSlice::new(slice)]
            });
            let result = nix::sys::socket::sendmmsg(
                s.socket.as_raw_fd(),
                headers,
                &slices[..k],
                &addrs[..k],
                [],
                MsgFlags::empty(),
            )
            .map(|r| r.count());
            match result {
                // A full buffer (EAGAIN) or an error: nothing went; tried again next turn.
                Ok(n) => (n, lens[..n].iter().sum()),
                Err(_) => (0, 0),
            }
        }
    };
    s.next += sent;
    s.offset += bytes;
    sent
}

/// The blaster (see the module documentation) until `duration` has passed or a stream
/// has sent all it has. Returns (packets sent, seconds spent, ran out).
fn blast(
    streams: &mut [Stream<'_>],
    mode: Mode,
    duration: Duration,
    window: u64,
) -> (u64, f64, bool) {
    let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
    let mut addrs = Vec::new();
    let start = Instant::now();
    let mut ran_out = false;
    'run: while start.elapsed() < duration {
        let now = Instant::now();
        let mut progressed = false;
        for s in streams.iter_mut() {
            let left = s.data.lens.len() - s.next;
            if left == 0 {
                ran_out = true;
                break 'run;
            }
            let arrived = s.arrived.load(Ordering::Relaxed);
            let sent = s.next as u64;
            if arrived != s.seen.0 {
                s.seen = (arrived, now);
            } else if sent.saturating_sub(arrived + s.written_off) >= window
                && now.duration_since(s.seen.1) > STALL
            {
                s.written_off = sent - arrived;
                s.seen.1 = now;
            }
            let room = window.saturating_sub(sent.saturating_sub(arrived + s.written_off));
            if room < MIN_SEND.min(left as u64) {
                continue;
            }
            let k = (room as usize).min(BATCH).min(left);
            if addrs.first() != Some(&Some(SockaddrStorage::from(s.to))) {
                addrs = vec![Some(SockaddrStorage::from(s.to)); BATCH];
            }
            progressed |= send_batch(s, k, mode, &mut headers, &addrs) > 0;
        }
        if !progressed {
            // The receiver unparks this thread when something arrives.
            std::thread::park_timeout(Duration::from_micros(500));
        }
    }
    let sent = streams.iter().map(|s| s.next as u64).sum();
    (sent, start.elapsed().as_secs_f64(), ran_out)
}

/// The receiver (see the module documentation) until `done`: counts the video RTP that
/// arrives on `sockets[i]` in `counts[i]` and shows it to `video(i, datagram, when it
/// reached the socket)`, hands anything else to `other(i, from, datagram)`, calls
/// `service` every [`SERVICE_EVERY`], and wakes `blaster` on arrivals. Returns when the last video packet
/// arrived, and how many buffers came without the kernel's stamp.
#[allow(clippy::too_many_arguments)]
fn receive(
    start: Instant,
    sockets: &[UdpSocket],
    counts: &[AtomicU64],
    done: &AtomicBool,
    blaster: &std::thread::Thread,
    mut video_seen: impl FnMut(usize, &[u8], Instant),
    mut other: impl FnMut(usize, SocketAddr, &[u8]),
    mut service: impl FnMut(),
    read_every: Option<Duration>,
) -> (Instant, u64) {
    for socket in sockets {
        // quinn-udp's state turns GRO on; the stamps say when each datagram was queued
        // (without them, the arrival is the read's time).
        if let Ok(state) = UdpSocketState::new(socket.into()) {
            let _ = state.set_recv_buffer_size(socket.into(), SOCKET_BUFFER);
        }
        let _ = super::stamped::enable(socket);
    }
    let mut receiver = super::stamped::StampedReceiver::new();
    // Until something arrives: the start (a run where nothing arrived lasted no time).
    let mut last = start;
    let mut serviced = Instant::now();
    let mut fds: Vec<PollFd<'_>> = sockets
        .iter()
        .map(|s| PollFd::new(s.as_fd(), PollFlags::POLLIN))
        .collect();
    while !done.load(Ordering::Relaxed) {
        let _ = nix::poll::poll(&mut fds, PollTimeout::from(1u8));
        for (i, (socket, fd)) in sockets.iter().zip(&fds).enumerate() {
            let ready = fd.revents().is_some_and(|r| r.contains(PollFlags::POLLIN));
            if !ready {
                continue;
            }
            let mut video = 0;
            // Until the socket is empty: a receiver that reads every `read_every` takes all
            // that came meanwhile.
            while let Ok(super::stamped::BATCH) = receiver.recv(socket, |from, d, arrived| {
                if is_video_rtp(d) {
                    video += 1;
                    video_seen(i, d, arrived);
                } else if let Some(from) = from {
                    other(i, from, d);
                }
            }) {}
            if video > 0 {
                counts[i].fetch_add(video, Ordering::Relaxed);
                last = Instant::now();
                blaster.unpark();
            }
        }
        if serviced.elapsed() >= SERVICE_EVERY {
            service();
            serviced = Instant::now();
        }
        if let Some(period) = read_every {
            std::thread::sleep(period);
        }
    }
    (last, receiver.unstamped)
}

/// One timed run: `blaster` sends `data[i]` from `senders[i]` to `to[i]` while the
/// receiver reads `receivers[i]`; `child`'s CPU is measured meanwhile. `blaster` sends
/// until done and returns (packets sent, seconds spent sending, ran out of packets made
/// ahead): [`blast`] with a window, or the paced sender of [`super::saturate_latency`];
/// the receiver shows each video packet to `video` (stream, datagram, when it was read).
#[allow(clippy::too_many_arguments)]
fn run(
    mode: Mode,
    blaster: impl FnOnce(&mut [Stream<'_>]) -> (u64, f64, bool),
    video: impl FnMut(usize, &[u8], Instant) + Send,
    child: u32,
    senders: Vec<UdpSocket>,
    to: &[SocketAddr],
    data: &[Prepared],
    receivers: &[UdpSocket],
    other: impl FnMut(usize, SocketAddr, &[u8]) + Send,
    service: impl FnMut() + Send,
    read_every: Option<Duration>,
) -> Result<Run> {
    let counts: Vec<AtomicU64> = (0..data.len()).map(|_| AtomicU64::new(0)).collect();
    let done = AtomicBool::new(false);
    let now = Instant::now();
    let mut streams = Vec::new();
    for ((socket, to), (data, arrived)) in senders.into_iter().zip(to).zip(data.iter().zip(&counts))
    {
        let state = UdpSocketState::new((&socket).into())?;
        let _ = state.set_send_buffer_size((&socket).into(), SOCKET_BUFFER);
        socket.set_nonblocking(true)?;
        streams.push(Stream {
            socket,
            state,
            to: *to,
            data,
            next: 0,
            offset: 0,
            arrived,
            written_off: 0,
            seen: (0, now),
        });
    }
    let this_thread = std::thread::current();
    let child_cpu = cpu_seconds(child)?;
    let shards = threads(child, "sfu-shard");
    let own_cpu = own_cpu_seconds()?;
    let start = Instant::now();
    let (sent, send_wall, ran_out, last, unstamped) = std::thread::scope(|scope| {
        let receiver = scope.spawn(|| {
            receive(
                start,
                receivers,
                &counts,
                &done,
                &this_thread,
                video,
                other,
                service,
                read_every,
            )
        });
        let (sent, send_wall, ran_out) = blaster(&mut streams);
        let total = || {
            counts
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .sum::<u64>()
        };
        let mut seen = (total(), Instant::now());
        while seen.1.elapsed() < DRAIN && seen.0 < sent {
            std::thread::sleep(Duration::from_millis(5));
            let now = total();
            if now != seen.0 {
                seen = (now, Instant::now());
            }
        }
        done.store(true, Ordering::Relaxed);
        let (last, unstamped) = receiver.join().unwrap_or_else(|_| (Instant::now(), 0));
        (sent, send_wall, ran_out, last, unstamped)
    });
    let run_wall = start.elapsed().as_secs_f64();
    let arrived = counts.iter().map(|c| c.load(Ordering::Relaxed)).sum();
    let shards = match (shards, threads(child, "sfu-shard")) {
        (Some(before), Some(after)) if after.n > 0 => Some(Threads {
            n: after.n,
            cpu: after.cpu - before.cpu,
            voluntary: after.voluntary.saturating_sub(before.voluntary),
            preempted: after.preempted.saturating_sub(before.preempted),
        }),
        _ => None,
    };
    Ok(Run {
        mode,
        sent,
        arrived,
        send_wall,
        arrive_wall: last.saturating_duration_since(start).as_secs_f64(),
        run_wall,
        child_cpu: cpu_seconds(child)? - child_cpu,
        shards,
        own_cpu: own_cpu_seconds()? - own_cpu,
        ran_out,
        unstamped,
    })
}

/// Each call's publisher makes `per_call` packets ahead of time, a chunk at a time, every
/// member serviced between chunks.
pub(super) fn prepare(calls: &mut [LightCall], per_call: usize) -> Result<Vec<Prepared>> {
    let mut prepared: Vec<Prepared> = calls.iter().map(|_| Prepared::default()).collect();
    let mut buf = [0u8; 2048];
    let mut made = 0;
    while made < per_call {
        let n = PREPARE_CHUNK.min(per_call - made);
        for (call, p) in calls.iter_mut().zip(&mut prepared) {
            p.bytes.reserve(n * (PACKET + 64));
            call.publisher.prepare_video(n, PACKET, p);
        }
        for call in calls.iter_mut() {
            call.publisher.service(&mut buf);
            call.subscriber.service(&mut buf);
        }
        made += n;
    }
    for p in &prepared {
        if p.lens.len() != per_call || p.to.is_none() {
            bail!(
                "a publisher made {} datagrams of {per_call} (not connected?)",
                p.lens.len()
            );
        }
    }
    Ok(prepared)
}

/// The echo: the same blaster and receiver, plain sockets, the same datagrams.
pub(super) fn echo_run(
    echo: &ChildServer,
    mode: Mode,
    blaster: impl FnOnce(&mut [Stream<'_>]) -> (u64, f64, bool),
    video: impl FnMut(usize, &[u8], Instant) + Send,
    data: &[Prepared],
    read_every: Option<Duration>,
) -> Result<Run> {
    let addr: SocketAddr = echo.addr.parse().context("the echo's address")?;
    let sockets = (0..data.len())
        .map(|_| UdpSocket::bind("127.0.0.1:0"))
        .collect::<io::Result<Vec<_>>>()?;
    let senders = sockets
        .iter()
        .map(|s| {
            s.set_nonblocking(true)?;
            s.try_clone()
        })
        .collect::<io::Result<Vec<_>>>()?;
    let to = vec![addr; data.len()];
    run(
        mode,
        blaster,
        video,
        echo.child.id(),
        senders,
        &to,
        data,
        &sockets,
        |_, _, _| {},
        || {},
        read_every,
    )
}

/// Through the relay: publishers' sockets send, subscribers' sockets are counted; the
/// members' connections get what is not video and their timers.
pub(super) fn relay_run(
    relay: &ChildServer,
    mode: Mode,
    blaster: impl FnOnce(&mut [Stream<'_>]) -> (u64, f64, bool),
    video: impl FnMut(usize, &[u8], Instant) + Send,
    calls: &mut [LightCall],
    data: &[Prepared],
    read_every: Option<Duration>,
) -> Result<Run> {
    let mut senders = Vec::new();
    let mut receivers = Vec::new();
    let mut to = Vec::new();
    for (call, p) in calls.iter().zip(data) {
        senders.push(call.publisher.socket_handle()?);
        receivers.push(call.subscriber.socket_handle()?);
        to.push(p.to.context("no destination")?);
    }
    let calls = std::sync::Mutex::new(calls);
    let mut buf = [0u8; 2048];
    run(
        mode,
        blaster,
        video,
        relay.child.id(),
        senders,
        &to,
        data,
        &receivers,
        |i, from, d| {
            if let Ok(mut calls) = calls.lock() {
                calls[i].subscriber.feed(from, d);
            }
        },
        || {
            if let Ok(mut calls) = calls.lock() {
                for call in calls.iter_mut() {
                    call.publisher.service(&mut buf);
                    call.subscriber.tick();
                }
            }
        },
        read_every,
    )
}

fn print_run(what: &str, r: &Run) {
    // Why a shard was not busy all the time: mostly voluntary switches, it waited for
    // datagrams (the generator's limit); mostly preempted, other threads had the core.
    let shards = match r.shards {
        Some(t) => format!(
            ", {} shard threads {:.2} s = {:.0} % of a core each ({:.0} waits/s, {:.0} preemptions/s per shard), {:.0} packets/s per shard-core",
            t.n,
            t.cpu,
            100.0 * t.cpu / t.n as f64 / r.run_wall.max(1e-9),
            t.voluntary as f64 / t.n as f64 / r.run_wall.max(1e-9),
            t.preempted as f64 / t.n as f64 / r.run_wall.max(1e-9),
            r.arrived as f64 / t.cpu.max(1e-9)
        ),
        None => String::new(),
    };
    println!(
        "  {what:<8} {:<8}  offered {:>7.0}/s  arrived {:>7.0}/s  loss {:.2} %  CPU {:.2} s → {:>7.0} packets/s per core{shards}  (bench side CPU {:.2} s){}",
        r.mode.label(),
        r.offered(),
        r.pps(),
        100.0 * r.loss(),
        r.child_cpu,
        r.per_core(),
        r.own_cpu,
        if r.ran_out {
            "  [used every packet made ahead]"
        } else {
            ""
        }
    );
}

/// `n` new calls on `relay`, each with media flowing. New for each run: what a run did not
/// send has used up its SRTP indexes, and a relay rejects a jump of more than 2^15 (it
/// cannot tell the rollover counter).
pub(super) async fn new_calls(
    relay: &ChildServer,
    org: &TestOrg,
    epoch: Instant,
    n: usize,
) -> Result<Vec<LightCall>> {
    let mut calls = Vec::with_capacity(n);
    for _ in 0..n {
        calls.push(LightCall::open(&relay.url, org, epoch).await?);
    }
    let flowing =
        tokio::task::block_in_place(|| calls.iter_mut().try_for_each(LightCall::until_flowing));
    if let Err(e) = flowing {
        for call in calls {
            call.leave();
        }
        return Err(e);
    }
    Ok(calls)
}

/// The run at saturation in `relay` (see the module documentation), against `echo`;
/// prints its figures. `quick`: `sendmmsg` only, shorter. Returns the relay's forwarded
/// packets/s with `sendmmsg` (the capacity the paced latency run offers half of).
pub(super) async fn saturate(
    relay: &ChildServer,
    echo: &ChildServer,
    org: &TestOrg,
    epoch: Instant,
    quick: bool,
) -> Result<f64> {
    let duration = Duration::from_secs(if quick { 2 } else { 5 });
    let n_calls = setting("BENCH_SATURATE_CALLS", CALLS as u64) as usize;
    let per_call = PREPARED_PER_SECOND * duration.as_secs() as usize / n_calls;
    let modes: &[Mode] = if quick {
        &[Mode::Mmsg]
    } else {
        &[Mode::Mmsg, Mode::Gso]
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "SFU forwarding at saturation ({PACKET}-byte RTP payloads, {n_calls} calls of 1 publisher → 1 subscriber, light members, packets made ahead, window {} per call, {:.0} s per run; load average {} on {cores} cores)",
        window(),
        duration.as_secs_f64(),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let mut forwarded = 0.0;
    for &mode in modes {
        let mut calls = new_calls(relay, org, epoch, n_calls).await?;
        // On this thread (the runtime lends it): the runs borrow the children and calls.
        let result = tokio::task::block_in_place(|| -> Result<()> {
            let started = Instant::now();
            let data = prepare(&mut calls, per_call)?;
            let made = started.elapsed().as_secs_f64();
            let blaster = |s: &mut [Stream<'_>]| blast(s, mode, duration, window());
            let e = echo_run(echo, mode, blaster, |_, _, _| {}, &data, None)?;
            // The echo has seen these datagrams, the relay has not: the same are sent again.
            let r = relay_run(relay, mode, blaster, |_, _, _| {}, &mut calls, &data, None)?;
            if mode == Mode::Mmsg {
                forwarded = r.pps();
            }
            println!("  ({per_call} packets made ahead per call in {made:.1} s)");
            print_run("UDP echo", &e);
            print_run("relay", &r);
            println!(
                "  {:<17} forwarded per core: ratio to UDP echo {:.3}x (goal ≥ 0.5); {:.0} packets/s per core (goal ≥ 100000)",
                mode.label(),
                r.per_core() / e.per_core().max(1e-9),
                r.per_core()
            );
            Ok(())
        });
        for call in calls {
            call.leave();
        }
        result?;
    }
    Ok(forwarded)
}

/// The run at saturation alone (`--sfu-saturate`): a relay whose SFU takes free ports and
/// the UDP echo, then the runs at saturation and the paced latency run at half the rate
/// (`super::saturate_latency`); the forwarding run is not repeated. About 15 s with
/// `quick`.
pub async fn saturate_only(quick: bool) -> Result<()> {
    let org = TestOrg::default();
    let seed = hex::encode(*org.key.seed());
    let echo = ChildServer::start("serve-udp-echo", &seed)?;
    let relay = ChildServer::start("serve-relay", &seed)?;
    let epoch = Instant::now();
    let forwarded = saturate(&relay, &echo, &org, epoch, quick).await?;
    super::saturate_latency::run_or_print(&relay, &echo, &org, epoch, quick, forwarded).await;
    Ok(())
}
