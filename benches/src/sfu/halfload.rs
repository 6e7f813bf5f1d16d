//! Relay-added one-way latency at half load (issue 11: "relay-added p99 ≤ 1 ms at half
//! load"), measured on its own: the forwarding run of the same process found what the
//! relay forwards per CPU-second (its capacity on the one shard, so the one core, a call
//! is pinned to); here a publisher offers half that rate to one subscriber, paced evenly,
//! and the same pacer sends to the UDP echo at the same rate. The difference of the
//! one-way percentiles is what the relay adds when it is half busy, not when it shares the
//! cores with the members of fifty calls (the calls section's figure).
//!
//! Neither side's client may be the bottleneck, so both are as lean as they come: the
//! call's members are [`LightMember`]s (sans-IO `rtc`, a plain socket each) and the echo's
//! client is a plain socket, driven the same way by two threads: a sender that sends
//! whatever packets are due and sleeps until the next is due (timer slack at its minimum,
//! so a wake-up is late by microseconds, not the default 50; a late wake-up sends a short
//! burst, as a real sender's would, and the average rate holds), and a receiver reading
//! every [`RECEIVE_POLL`]. (The [`NativeCaller`]s of the forwarding run, on their async
//! runtime, kept up with about 22 000 packets/s here, under half the relay's capacity;
//! one thread for both light members kept up with the sending only.)
//!
//! [`NativeCaller`]: approdo_tests::media::NativeCaller

use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use approdo_core::ids::SessionId;
use approdo_tests::light_member::LightMember;
use approdo_tests::{Actor, TestOrg, accepted_pair};

use super::{PACKET, WAIT, sorted};
use crate::calls::join_light;
use crate::{ChildServer, percentile, us};

/// The fraction of the forwarding capacity offered.
const LOAD: f64 = 0.5;
/// How long the receiver keeps reading after the last send (what is in flight arrives).
const DRAIN: Duration = Duration::from_millis(200);
/// The receiving thread's sleep between reads: the same for the echo's client and the
/// call's, so the delay it adds (at most this, and a wake-up's lateness) cancels out in
/// the difference.
const RECEIVE_POLL: Duration = Duration::from_micros(20);

/// What one paced run measured.
struct Paced {
    sent: u64,
    wall: f64,
    /// Sorted one-way delays of what arrived.
    delays: Vec<Duration>,
}

impl Paced {
    fn p(&self, q: f64) -> Duration {
        percentile(&self.delays, q)
    }
}

/// What the pacing loop asks of its client.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Send one packet.
    Send,
    /// Read what has arrived (and whatever else the client does between sends).
    Service,
}

/// The pacing loop (see the module documentation) on one thread, with `sender` doing each
/// [`Step`], and `receive` called in a loop on another until what was sent has had
/// [`DRAIN`] to arrive. Returns (packets sent, seconds spent sending).
fn pace(
    rate: f64,
    duration: Duration,
    mut sender: impl FnMut(Step) + Send,
    mut receive: impl FnMut() + Send,
) -> (u64, f64) {
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            let _ = nix::sys::prctl::set_timerslack(1);
            while !done.load(Ordering::Relaxed) {
                receive();
                std::thread::sleep(RECEIVE_POLL);
            }
            receive();
        });
        // 1 ns: with the default 50 µs every sleep of this loop would end that late.
        let _ = nix::sys::prctl::set_timerslack(1);
        let start = Instant::now();
        let mut sent = 0u64;
        while start.elapsed() < duration {
            sender(Step::Service);
            let due = (start.elapsed().as_secs_f64() * rate) as u64 + 1;
            while sent < due {
                sender(Step::Send);
                sent += 1;
            }
            let next = start + Duration::from_secs_f64(sent as f64 / rate);
            if let Some(wait) = next.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        let wall = start.elapsed().as_secs_f64();
        let end = Instant::now() + DRAIN;
        while Instant::now() < end {
            sender(Step::Service);
            std::thread::sleep(RECEIVE_POLL);
        }
        done.store(true, Ordering::Relaxed);
        (sent, wall)
    })
}

/// Sender → echo → receiver at `rate`, from a plain socket.
fn echo_at(echo: &ChildServer, epoch: Instant, rate: f64, duration: Duration) -> Result<Paced> {
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    socket.connect(&echo.addr)?;
    socket.set_nonblocking(true)?;
    let reader = socket.try_clone()?;
    let mut delays_ns = Vec::new();
    let mut buf = [0u8; 2048];
    let mut payload = [0u8; PACKET];
    let (sent, wall) = pace(
        rate,
        duration,
        |step| {
            if step == Step::Send {
                let stamp = epoch.elapsed().as_nanos() as u64;
                payload[..8].copy_from_slice(&stamp.to_be_bytes());
                // A full socket buffer drops it, as the network would.
                let _ = socket.send(&payload);
            }
        },
        || {
            while let Ok(n) = reader.recv(&mut buf) {
                if n >= 8 {
                    let sent = u64::from_be_bytes(buf[..8].try_into().expect("8 bytes"));
                    delays_ns.push((epoch.elapsed().as_nanos() as u64).saturating_sub(sent));
                }
            }
        },
    );
    Ok(Paced {
        sent,
        wall,
        delays: sorted(delays_ns)?,
    })
}

/// A person and an operator in one session, each with a light member in its call (also
/// the calls of the run at saturation, [`super::saturate`]).
pub(super) struct LightCall {
    actors: [Actor; 2],
    session: SessionId,
    pub(super) publisher: LightMember,
    pub(super) subscriber: LightMember,
}

impl LightCall {
    pub(super) async fn open(url: &str, org: &TestOrg, epoch: Instant) -> Result<LightCall> {
        let (mut operator, mut person, session) = accepted_pair(org, url, url, "en").await;
        let publisher = join_light(&mut person, session, epoch).await?;
        let subscriber = join_light(&mut operator, session, epoch).await?;
        Ok(LightCall {
            actors: [person, operator],
            session,
            publisher,
            subscriber,
        })
    }

    /// Drive both members until media flows from the publisher to the subscriber (the
    /// connections come up, the subscriber's leg binds), on the calling thread.
    pub(super) fn until_flowing(&mut self) -> Result<()> {
        let mut buf = [0u8; 2048];
        let deadline = Instant::now() + WAIT;
        let video = |m: &LightMember| m.counters.received.video.load(Ordering::Relaxed);
        while video(&self.subscriber) < 100 {
            if Instant::now() > deadline {
                bail!("no media came through the relay to a light member");
            }
            self.publisher.service(&mut buf);
            self.subscriber.service(&mut buf);
            if self.publisher.counters.connected.load(Ordering::Relaxed) {
                self.publisher.send_video(PACKET);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    }

    /// Publisher → relay → subscriber at `rate`, on the calling thread (once flowing).
    fn paced(&mut self, rate: f64, duration: Duration) -> Result<Paced> {
        let counters = self.subscriber.counters.clone();
        let received = &counters.received;
        if let Ok(mut d) = received.delays_ns.lock() {
            d.clear();
        }
        let (mut buf, mut other) = ([0u8; 2048], [0u8; 2048]);
        let (publisher, subscriber) = (&mut self.publisher, &mut self.subscriber);
        let sent0 = publisher.counters.sent.load(Ordering::Relaxed);
        let counters = publisher.counters.clone();
        let (_, wall) = pace(
            rate,
            duration,
            |step| match step {
                Step::Send => publisher.send_video(PACKET),
                Step::Service => publisher.service(&mut buf),
            },
            || subscriber.service(&mut other),
        );
        let sent = counters.sent.load(Ordering::Relaxed) - sent0;
        let d = received
            .delays_ns
            .lock()
            .map(|d| d.clone())
            .unwrap_or_default();
        Ok(Paced {
            sent,
            wall,
            delays: sorted(d)?,
        })
    }

    /// Both leave the call; the members close their connections.
    pub(super) fn leave(mut self) {
        for a in &self.actors {
            let session = self.session;
            a.act(move |c| {
                let _ = c.leave_call(session);
            });
        }
        self.publisher.close();
        self.subscriber.close();
    }
}

/// What the forwarding run of the same process measured, the two ways to call it the
/// relay's capacity.
pub(super) struct Capacity {
    /// Forwarded packets per second of wall time (held back by the forwarding run's own
    /// members as much as by the relay: a lower bound).
    pub(super) forwarded: f64,
    /// Forwarded packets per CPU-second of the relay: what one shard, on a core of its own,
    /// would forward.
    pub(super) per_core: f64,
}

/// Offer [`LOAD`] × each of the forwarding run's figures (`capacity`) to the echo and then
/// through the relay, and print the one-way percentiles and their difference.
pub(super) async fn run(
    relay: &ChildServer,
    echo: &ChildServer,
    org: &TestOrg,
    epoch: Instant,
    capacity: Capacity,
    duration: Duration,
) -> Result<()> {
    let mut call = LightCall::open(&relay.url, org, epoch).await?;
    let (flowing, mut call) =
        tokio::task::spawn_blocking(move || (call.until_flowing(), call)).await?;
    if let Err(e) = flowing {
        call.leave();
        return Err(e);
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "SFU latency at half load ({PACKET}-byte RTP payloads, 1 publisher → 1 subscriber, light members, paced, {:.0} s each; the machine's load average {} on {cores} cores)",
        duration.as_secs_f64(),
        load.split_whitespace().next().unwrap_or("?")
    );
    let levels = [
        (
            "forwarded packets/s",
            capacity.forwarded,
            "a lower bound of the relay's capacity",
        ),
        (
            "packets/s per core",
            capacity.per_core,
            "a shard on a core of its own",
        ),
    ];
    for (what, figure, meaning) in levels {
        let rate = (figure * LOAD).max(1.0);
        let e = tokio::task::block_in_place(|| echo_at(echo, epoch, rate, duration))?;
        let cpu = relay.cpu_seconds()?;
        let (r, back) =
            tokio::task::spawn_blocking(move || (call.paced(rate, duration), call)).await?;
        call = back;
        let relay_cpu = relay.cpu_seconds()? - cpu;
        let r = match r {
            Ok(r) => r,
            Err(e) => {
                call.leave();
                return Err(e);
            }
        };
        println!(
            "  offered {LOAD} × the forwarding run's {what} ({figure:.0}, {meaning}) = {rate:.0} packets/s"
        );
        for (label, p) in [("UDP echo", &e), ("relay   ", &r)] {
            println!(
                "    {label}  achieved {:>7.0} packets/s sent, {:>7.0} arrived ({}/{})   p50 {:>6.0} µs   p99 {:>6.0} µs",
                p.sent as f64 / p.wall,
                p.delays.len() as f64 / p.wall,
                p.delays.len(),
                p.sent,
                us(p.p(0.5)),
                us(p.p(0.99))
            );
        }
        let wall = r.wall + DRAIN.as_secs_f64();
        println!(
            "    relay CPU meanwhile   {relay_cpu:.2} s in {wall:.1} s (with the drain) = {:.0} % of one core",
            100.0 * relay_cpu / wall
        );
        println!(
            "    relay-added           p50 {:>6.0} µs   p99 {:>6.0} µs  (goal p99 ≤ 1000 µs at half load)",
            us(r.p(0.5).saturating_sub(e.p(0.5))),
            us(r.p(0.99).saturating_sub(e.p(0.99)))
        );
    }
    call.leave();
    Ok(())
}
