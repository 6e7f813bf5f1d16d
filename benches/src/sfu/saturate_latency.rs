//! Relay-added one-way latency at half the capacity the run at saturation found (issue 11:
//! "relay-added p99 ≤ 1 ms at half load"), with that run's cheap generator.
//!
//! The half-load run ([`super::halfload`]) makes and stamps each packet on the spot with a
//! light member's `rtc` connection; at tens of thousands of packets/s that generator is the
//! bottleneck (it measures itself, for the echo as well). Here, as at saturation
//! ([`super::saturate`]), [`CALLS`] calls' publishers make their SRTP datagrams ahead of
//! time and nothing is decrypted on arrival:
//!
//! * The blaster thread is paced: every [`TURN`] (50 µs) it sends, per call, the packets due by
//!   then at `rate / calls` (`sendmmsg`, up to [`BATCH`] per call), and records the time
//!   just *after* the system call returned as the send time of every packet of the batch,
//!   by its index in the call's datagrams (its RTP sequence number, bytes 2–3 of the header,
//!   which SRTP leaves in the clear). On the loopback the datagram is in the receiving
//!   socket before `sendmmsg` returns, so a delay can come out below zero (counted, taken
//!   as 0); the echo's and the relay's are measured alike, and their difference is the
//!   figure.
//! * The receiver thread (the run at saturation's: `poll`, `recvmmsg` with GRO) records the
//!   time the kernel queued each video packet on the subscriber's socket (its
//!   `SO_TIMESTAMPNS` stamp, [`super::stamped`]), with its sequence number and SSRC. It
//!   reads every [`READ_EVERY`] rather than on each arrival: what it measures no longer
//!   depends on when it reads, and waking for every burst took the relay's core.
//! * Matching: the relay rewrites the SSRC (its own per outgoing stream) and shifts the
//!   sequence numbers by a constant per stream (`relay/src/sfu/forward.rs`,
//!   `StreamRewriter`: zero for a slot's first source, changed only when the source
//!   changes), and re-encrypts the payload, so nothing in the payload can be matched. The
//!   first datagram of each call is sent alone before the paced run (a probe) and waited
//!   for; its arrival gives the call's sequence offset. Every later arrival maps by that
//!   offset (unwrapped past 65 535) to the packet sent; the printout says how many arrivals
//!   matched none, came twice or came with another SSRC, so a wrong offset would show.
//! * One-way delay = arrival − send, both on this process's monotonic clock (each stamp
//!   becomes an age at the read, so the realtime clock's drift does not enter). The same
//!   datagrams go to the UDP echo first, at the same rate, from the same blaster.

use std::time::{Duration, Instant};

use anyhow::Result;
use approdo_tests::TestOrg;
use approdo_tests::light_member::Prepared;
use nix::sys::socket::{MultiHeaders, SockaddrStorage};

use super::saturate::{self, BATCH, CALLS, Mode, Run, Stream};
use super::{PACKET, sorted};
use crate::{ChildServer, percentile, us};

/// The fraction of the saturation run's forwarded packets/s offered
/// (`BENCH_SATURATE_LATENCY_PERCENT` overrides it, in percent).
const LOAD: f64 = 0.5;
/// The pacer's period: short enough that a packet waits at most this for its turn (a
/// burst of a few per call), long enough that a turn is not all system-call overhead
/// (`BENCH_SATURATE_LATENCY_TURN_US` overrides it).
const TURN: Duration = Duration::from_micros(50);

fn turn() -> Duration {
    Duration::from_micros(saturate::setting(
        "BENCH_SATURATE_LATENCY_TURN_US",
        TURN.as_micros() as u64,
    ))
}
/// How long the receiver sleeps between its reads. The kernel stamps each datagram as it
/// reaches the subscriber's socket (`super::stamped`), so a late read no longer shows in a
/// delay, and a receiver woken by every burst the relay sends would only take the relay's
/// core from it (thousands of preemptions a second on 2 cores): the relay's receivers are
/// other machines. At 100k packets/s, 1 ms is about 100 datagrams waiting per socket, far
/// below its 4 MiB (`BENCH_SATURATE_LATENCY_READ_US` overrides it; 0 reads as soon as
/// something arrives).
const READ_EVERY: Duration = Duration::from_millis(1);

fn read_every() -> Option<Duration> {
    let us = saturate::setting(
        "BENCH_SATURATE_LATENCY_READ_US",
        READ_EVERY.as_micros() as u64,
    );
    (us > 0).then(|| Duration::from_micros(us))
}
/// The longest wait for a call's probe to arrive.
const PROBE_WAIT: Duration = Duration::from_millis(500);
/// Packets made ahead beyond what the rate needs (a late pacer catches up with a burst).
const MARGIN: f64 = 1.1;
/// A send time not recorded (the packet was not sent).
const UNSENT: u64 = u64::MAX;

/// The sequence number of an RTP (or SRTP) datagram: bytes 2–3, in the clear.
fn seq(d: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes([*d.get(2)?, *d.get(3)?]))
}

/// The SSRC of an RTP (or SRTP) datagram: bytes 8–11, in the clear.
fn ssrc(d: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(d.get(8..12)?.try_into().ok()?))
}

/// What one paced run recorded, per call: send times by index, arrivals in order.
struct Record {
    /// The clock's origin for both.
    t0: Instant,
    /// Nanoseconds after `t0` at which datagram `k` of call `i` was sent: `sent[i][k]`.
    sent: Vec<Vec<u64>>,
    /// (sequence number, SSRC, nanoseconds after `t0`) of every video packet that arrived
    /// for call `i`, in order.
    arrived: Vec<Vec<(u16, u32, u64)>>,
}

impl Record {
    fn new(data: &[Prepared]) -> Record {
        Record {
            t0: Instant::now(),
            sent: data.iter().map(|p| vec![UNSENT; p.lens.len()]).collect(),
            arrived: data
                .iter()
                .map(|p| Vec::with_capacity(p.lens.len()))
                .collect(),
        }
    }
}

/// The paced blaster (see the module documentation): the probes, then `rate` packets/s
/// over all streams for `duration`. Returns (packets sent, seconds spent pacing, ran out).
fn pace(
    streams: &mut [Stream<'_>],
    rate: f64,
    duration: Duration,
    t0: Instant,
    sent_at: &mut [Vec<u64>],
) -> (u64, f64, bool) {
    // 1 ns: with the default 50 µs every sleep of the loop would end that late.
    let slack = nix::sys::prctl::get_timerslack()
        .ok()
        .and_then(|s| u64::try_from(s).ok());
    let _ = nix::sys::prctl::set_timerslack(1);
    let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
    let addrs: Vec<Vec<Option<SockaddrStorage>>> = streams
        .iter()
        .map(|s| vec![Some(SockaddrStorage::from(s.to)); BATCH])
        .collect();
    let ns = |t: Instant| t.saturating_duration_since(t0).as_nanos() as u64;
    // The probes: each call's first datagram alone, waited for (the sequence offset).
    for (i, s) in streams.iter_mut().enumerate() {
        let deadline = Instant::now() + PROBE_WAIT;
        while s.next == 0 && Instant::now() < deadline {
            if saturate::send_batch(s, 1, Mode::Mmsg, &mut headers, &addrs[i]) == 1 {
                sent_at[i][0] = ns(Instant::now());
            }
        }
        while s.arrived.load(std::sync::atomic::Ordering::Relaxed) == 0 && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_micros(100));
        }
    }
    let per_stream = rate / streams.len().max(1) as f64;
    let start = Instant::now();
    let (period, mut turn) = (turn(), 0u32);
    let mut ran_out = false;
    while start.elapsed() < duration {
        // Index 0 was the probe.
        let due = 1 + (start.elapsed().as_secs_f64() * per_stream) as usize;
        for (i, s) in streams.iter_mut().enumerate() {
            let made = s.data.lens.len();
            ran_out |= due > made;
            let due = due.min(made);
            while s.next < due {
                let from = s.next;
                let n = saturate::send_batch(
                    s,
                    (due - from).min(BATCH),
                    Mode::Mmsg,
                    &mut headers,
                    &addrs[i],
                );
                // Just after the system call returned: the send time of the whole batch.
                let t = ns(Instant::now());
                sent_at[i][from..from + n].fill(t);
                if n == 0 {
                    // A full socket buffer: tried again next turn.
                    break;
                }
            }
        }
        // The next turn on the grid; a late wake-up skips the turns it missed (what fell
        // due meanwhile goes in one burst, and the average rate holds).
        turn = turn.saturating_add(1);
        let next = start + period * turn;
        match next.checked_duration_since(Instant::now()) {
            Some(wait) => std::thread::sleep(wait),
            None => turn = (start.elapsed().as_nanos() / period.as_nanos()) as u32,
        }
    }
    let wall = start.elapsed().as_secs_f64();
    if let Some(slack) = slack {
        let _ = nix::sys::prctl::set_timerslack(slack);
    }
    let sent = streams.iter().map(|s| s.next as u64).sum();
    (sent, wall, ran_out)
}

/// One-way delays of what arrived, matched to what was sent.
#[derive(Default)]
struct Matched {
    /// Sorted delays.
    delays: Vec<Duration>,
    /// Arrivals that mapped to no packet sent, to one already seen, or came with another
    /// SSRC than the call's first.
    unmatched: u64,
    duplicates: u64,
    other_ssrc: u64,
    /// Arrivals read before the recorded send time (taken as 0; see the module
    /// documentation).
    early: u64,
    /// The sequence offsets learnt (arrived − sent), one per call.
    offsets: Vec<u16>,
}

/// Match each call's arrivals to its sends through the sequence offset its first arrival
/// (the probe's) gives. `data` gives the sequence numbers sent (checked consecutive).
fn matched(record: &Record, data: &[Prepared]) -> Result<Matched> {
    let mut m = Matched::default();
    let mut ns = Vec::new();
    for ((sent, arrived), p) in record.sent.iter().zip(&record.arrived).zip(data) {
        let first = p.lens.first().and_then(|&len| seq(&p.bytes[..len]));
        let (Some(seq0), Some(&(r0, ssrc0, _))) = (first, arrived.first()) else {
            m.unmatched += arrived.len() as u64;
            continue;
        };
        // The datagrams made ahead carry consecutive sequence numbers (checked).
        let mut at = 0;
        for (k, &len) in p.lens.iter().enumerate() {
            if seq(&p.bytes[at..at + len]) != Some(seq0.wrapping_add(k as u16)) {
                anyhow::bail!("datagram {k} made ahead is out of sequence");
            }
            at += len;
        }
        let offset = r0.wrapping_sub(seq0);
        m.offsets.push(offset);
        let mut seen = vec![false; sent.len()];
        let mut last: i64 = 0;
        for &(r, s, t) in arrived {
            if s != ssrc0 {
                m.other_ssrc += 1;
                continue;
            }
            let k16 = r.wrapping_sub(offset).wrapping_sub(seq0);
            let k = last + i64::from(k16.wrapping_sub(last as u16) as i16);
            let Some(&at) = usize::try_from(k).ok().and_then(|k| sent.get(k)) else {
                m.unmatched += 1;
                continue;
            };
            if at == UNSENT {
                m.unmatched += 1;
                continue;
            }
            let k = k as usize;
            if seen[k] {
                m.duplicates += 1;
                continue;
            }
            seen[k] = true;
            last = k as i64;
            if t < at {
                m.early += 1;
            }
            ns.push(t.saturating_sub(at));
        }
    }
    m.delays = sorted(ns)?;
    Ok(m)
}

/// One paced run's figures.
struct Paced {
    run: Run,
    matched: Matched,
}

impl Paced {
    fn p(&self, q: f64) -> Duration {
        percentile(&self.matched.delays, q)
    }
}

/// The `uptime` command's line (the load while the run ran), or `/proc/loadavg`.
fn uptime() -> String {
    std::process::Command::new("uptime")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| {
            let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
            format!("load average {}", load.trim())
        })
}

fn print_paced(label: &str, p: &Paced) {
    let r = &p.run;
    let m = &p.matched;
    let shards = match r.shards {
        // Waits per second: how often a shard ran out of datagrams and slept (a wake-up
        // each); preemptions: how often another thread took its core.
        Some(t) if t.n > 0 => format!(
            " (its {} shard threads {:.0} % each, {:.0} waits/s and {:.0} preemptions/s each)",
            t.n,
            100.0 * t.cpu / t.n as f64 / r.run_wall.max(1e-9),
            t.voluntary as f64 / t.n as f64 / r.run_wall.max(1e-9),
            t.preempted as f64 / t.n as f64 / r.run_wall.max(1e-9)
        ),
        _ => String::new(),
    };
    println!(
        "    {label}  sent {:>6.0}/s ({}), arrived {} (loss {:.3} %), matched {} ({} unmatched, {} twice, {} other SSRC, {} read before the send returned, {} buffers without a kernel stamp)   p50 {:>6.0} µs   p99 {:>6.0} µs   child CPU {:.0} % of a core{shards}, bench side {:.2} s",
        r.sent as f64 / r.send_wall.max(1e-9),
        r.sent,
        r.arrived,
        100.0 * (1.0 - r.arrived as f64 / r.sent.max(1) as f64),
        m.delays.len(),
        m.unmatched,
        m.duplicates,
        m.other_ssrc,
        m.early,
        r.unstamped,
        us(p.p(0.5)),
        us(p.p(0.99)),
        100.0 * r.child_cpu / r.run_wall.max(1e-9),
        r.own_cpu
    );
}

/// Offer [`LOAD`] × `forwarded` (the saturation run's relay forwarded packets/s, the same
/// process) to the echo and through the relay, paced, with [`CALLS`] new calls; print the
/// one-way percentiles and their difference.
pub(super) async fn run(
    relay: &ChildServer,
    echo: &ChildServer,
    org: &TestOrg,
    epoch: Instant,
    quick: bool,
    forwarded: f64,
) -> Result<()> {
    let duration = Duration::from_secs(if quick { 2 } else { 5 });
    let n_calls = saturate::setting("BENCH_SATURATE_CALLS", CALLS as u64) as usize;
    let load =
        saturate::setting("BENCH_SATURATE_LATENCY_PERCENT", (LOAD * 100.0) as u64) as f64 / 100.0;
    let rate = (forwarded * load).max(1000.0);
    let per_call = (rate / n_calls as f64 * duration.as_secs_f64() * MARGIN) as usize + 2;
    println!(
        "SFU latency at {load} × the saturated rate ({PACKET}-byte RTP payloads, {n_calls} calls of 1 publisher → 1 subscriber, light members, packets made ahead, paced sendmmsg every {} µs, {:.0} s each; {})",
        turn().as_micros(),
        duration.as_secs_f64(),
        uptime()
    );
    // New calls: the saturation run's publishers have used up SRTP indexes they never sent.
    let mut calls = saturate::new_calls(relay, org, epoch, n_calls).await?;
    let result = tokio::task::block_in_place(|| -> Result<()> {
        let started = Instant::now();
        let data = saturate::prepare(&mut calls, per_call)?;
        let made = started.elapsed().as_secs_f64();
        let mut runs = Vec::new();
        for through_relay in [false, true] {
            let mut record = Record::new(&data);
            let (t0, sent_at, arrived) = (record.t0, &mut record.sent, &mut record.arrived);
            let blaster = |s: &mut [Stream<'_>]| pace(s, rate, duration, t0, sent_at);
            let video = |i: usize, d: &[u8], t: Instant| {
                if let (Some(a), Some(q), Some(s)) = (arrived.get_mut(i), seq(d), ssrc(d)) {
                    a.push((q, s, t.saturating_duration_since(t0).as_nanos() as u64));
                }
            };
            let run = if through_relay {
                saturate::relay_run(
                    relay,
                    Mode::Mmsg,
                    blaster,
                    video,
                    &mut calls,
                    &data,
                    read_every(),
                )?
            } else {
                saturate::echo_run(echo, Mode::Mmsg, blaster, video, &data, read_every())?
            };
            let matched = matched(&record, &data)?;
            runs.push(Paced { run, matched });
        }
        let (e, r) = (&runs[0], &runs[1]);
        println!(
            "  offered {load} × {forwarded:.0} forwarded packets/s at saturation = {rate:.0} packets/s ({:.0} per call; {per_call} made ahead per call in {made:.1} s; sequence offsets through the relay {:?})",
            rate / n_calls as f64,
            r.matched.offsets
        );
        print_paced("UDP echo", e);
        print_paced("relay   ", r);
        println!(
            "    relay-added  p50 {:>6.0} µs   p99 {:>6.0} µs  (goal p99 ≤ 1000 µs at half load){}",
            us(r.p(0.5).saturating_sub(e.p(0.5))),
            us(r.p(0.99).saturating_sub(e.p(0.99))),
            if e.run.ran_out || r.run.ran_out {
                "  [used every packet made ahead]"
            } else {
                ""
            }
        );
        Ok(())
    });
    for call in calls {
        call.leave();
    }
    result
}

/// [`run`]; a failure is printed, not fatal (the sections after it still run).
pub(super) async fn run_or_print(
    relay: &ChildServer,
    echo: &ChildServer,
    org: &TestOrg,
    epoch: Instant,
    quick: bool,
    forwarded: f64,
) {
    if let Err(e) = run(relay, echo, org, epoch, quick, forwarded).await {
        println!("  the latency run at half the saturated rate failed: {e:#}");
    }
}
