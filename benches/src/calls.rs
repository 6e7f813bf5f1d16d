//! Many four-way video calls at once (`--sfu-calls`, and in `--sfu-only`): each member
//! (a person, an operator and two interpreters per session) publishes audio and video at
//! [`PACKETS_PER_STREAM`] packets/s each and receives the other three, through one relay
//! with its default shards (one per core).
//!
//! Printed: the relay's CPU share (of one core and of the machine), the packets it
//! forwarded per second and per CPU-second, the loss, what the members actually offered
//! per stream, and one-way latency p50/p99 against a UDP echo measured at the same time on
//! the same loaded machine (the difference is what the relay adds).
//!
//! The members are [`LightMember`]s (webrtc-rs's sans-IO `rtc`, one plain UDP socket each,
//! all driven by a [`Swarm`] of one thread per core in this process): with the async
//! [`NativeCaller`]s before them, 200 members on a 2-core machine kept up with only 19–26
//! of their 30 packets/s per stream, so the relay never saw the load asked for (issue 11).
//! `--native-members` runs the old members again, for comparison. Either way the members
//! share the machine with the relay, so the bench's own CPU is printed apart.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use approdo_core::identity::Role;
use approdo_core::ids::SessionId;
use approdo_tests::light_member::{Counters, LightMember, Publish, Swarm};
use approdo_tests::media::{NativeCaller, Received};
use approdo_tests::{Actor, TestOrg, accept, invite_and_join, person_at, staff_at, verified};

use crate::sfu::{EchoClient, echo_latency, join_call, own_cpu_seconds, sorted};
use crate::{ChildServer, percentile, us};

/// Packets per second each member sends per stream (audio and video alike).
const PACKETS_PER_STREAM: u64 = 30;
/// Video payload: a 360p packet at about 600 kbit/s.
const VIDEO_PAYLOAD: usize = 1000;
/// Audio payload: an Opus frame at about 32 kbit/s.
const AUDIO_PAYLOAD: usize = 120;
/// Members per call.
const MEMBERS: usize = 4;
/// UDP port of this section's relay (shard 0; not the SFU section's, whose relays may still
/// be going away).
const SFU_PORT: &str = "42100";
/// Sending before the measured interval: legs connect and bind, key frames are asked for.
const WARM_UP: Duration = Duration::from_millis(1500);
/// How long the light members may take to connect once the last call is set up.
const CONNECT_WAIT: Duration = Duration::from_secs(20);

/// One session's four members' signalling clients.
struct Call {
    session: SessionId,
    actors: Vec<Actor>,
}

impl Call {
    /// A person, an operator who accepts the session, and two interpreters the operator
    /// invites one after the other (nobody has joined the call yet).
    async fn open(url: &str, org: &TestOrg) -> Result<Call> {
        let mut operator = staff_at(
            url,
            org,
            org.credential(Role::Operator, &["national"], &["ro"]),
        )
        .await;
        let (mut person, session) = person_at(url, org, "ro").await;
        accept(&mut operator, session).await;
        verified(&mut person, Some(Role::Operator)).await;
        verified(&mut operator, None).await;
        let mut actors = vec![person, operator];
        for _ in 0..2 {
            // Logged in only now: an interpreter online earlier would also see the
            // previous invitation, already taken.
            let mut interpreter = staff_at(
                url,
                org,
                org.credential(Role::Interpreter, &["national"], &["ro"]),
            )
            .await;
            invite_and_join(&actors[1], &mut interpreter, session, "ro").await;
            verified(&mut interpreter, Some(Role::Operator)).await;
            actors.push(interpreter);
        }
        Ok(Call { session, actors })
    }
}

/// Join `a`'s session call with a light member: the offer goes through the approdo client
/// as the pages' does, the answer comes back as an event. The member connects once the
/// swarm drives it.
pub(crate) async fn join_light(
    a: &mut Actor,
    session: SessionId,
    epoch: Instant,
) -> Result<LightMember> {
    let (mut member, offer) = LightMember::offer(epoch, true)?;
    member.answer(crate::sfu::relay_answer(a, session, offer).await?)?;
    Ok(member)
}

/// A native member sending in its own task until `stop`; counts what it sent.
struct NativeSender {
    sent: Arc<AtomicU64>,
    received: Arc<Received>,
    task: tokio::task::JoinHandle<Result<NativeCaller>>,
}

fn start_sending(mut caller: NativeCaller, stop: Arc<AtomicBool>) -> NativeSender {
    let sent = Arc::new(AtomicU64::new(0));
    let received = caller.received.clone();
    let counter = sent.clone();
    let task = tokio::spawn(async move {
        let mut tick =
            tokio::time::interval(Duration::from_nanos(1_000_000_000 / PACKETS_PER_STREAM));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !stop.load(Ordering::Relaxed) {
            tick.tick().await;
            caller.send(false, AUDIO_PAYLOAD).await?;
            caller.send(true, VIDEO_PAYLOAD).await?;
            counter.fetch_add(2, Ordering::Relaxed);
        }
        Ok(caller)
    });
    NativeSender {
        sent,
        received,
        task,
    }
}

/// One member's counts, whichever kind of member it is.
enum Tally {
    Native(Arc<AtomicU64>, Arc<Received>),
    Light(Arc<Counters>),
}

impl Tally {
    fn sent(&self) -> u64 {
        match self {
            Tally::Native(sent, _) => sent.load(Ordering::Relaxed),
            Tally::Light(c) => c.sent.load(Ordering::Relaxed),
        }
    }

    fn received(&self) -> &Received {
        match self {
            Tally::Native(_, r) => r,
            Tally::Light(c) => &c.received,
        }
    }

    fn arrived(&self) -> u64 {
        let r = self.received();
        r.audio.load(Ordering::Relaxed) + r.video.load(Ordering::Relaxed)
    }
}

/// The members while they send, of the kind the run asked for.
enum Members {
    Native {
        stop: Arc<AtomicBool>,
        senders: Vec<NativeSender>,
    },
    Light(Swarm),
}

impl Members {
    /// Stop publishing (connections stay up).
    fn stop_sending(&self) {
        match self {
            Members::Native { stop, .. } => stop.store(true, Ordering::Relaxed),
            Members::Light(swarm) => swarm.stop_sending(),
        }
    }

    /// Close every connection.
    async fn close(self) -> Result<()> {
        match self {
            Members::Native { senders, .. } => {
                for s in senders {
                    if let Ok(Ok(caller)) = s.task.await {
                        caller.close().await;
                    }
                }
                Ok(())
            }
            Members::Light(swarm) => tokio::task::spawn_blocking(move || swarm.close()).await?,
        }
    }
}

fn total(tallies: &[Tally], f: impl Fn(&Tally) -> u64) -> u64 {
    tallies.iter().map(f).sum()
}

/// Run the section and print its figures; `native` takes [`NativeCaller`]s as members
/// instead of light ones (the old path, for comparison).
pub async fn bench(quick: bool, native: bool) -> Result<()> {
    let calls = if quick { 10 } else { 50 };
    let duration = Duration::from_secs(if quick { 3 } else { 10 });
    let org = TestOrg::default();
    let seed = hex::encode(*org.key.seed());
    let epoch = Instant::now();
    let echo = ChildServer::start("serve-udp-echo", &seed)?;
    let mut relay = ChildServer::start_with("serve-relay", &seed, &[("BENCH_SFU_PORT", SFU_PORT)])?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());

    // One call first pays what is paid once (runtime, shards, crypto, allocator arenas), as
    // in the memory section; the resident set after it left is the baseline.
    let mut warm = Call::open(&relay.url, &org).await?;
    let mut warm_callers = Vec::with_capacity(MEMBERS);
    for a in &mut warm.actors {
        warm_callers.push(join_call(a, warm.session, epoch, true).await?);
    }
    for c in &warm_callers {
        c.close().await;
    }
    for a in &warm.actors {
        let session = warm.session;
        a.act(move |c| {
            let _ = c.leave_call(session);
        });
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while relay.census()?.1 > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rss_before = relay.rss_kib()?;
    let setup = Instant::now();
    let mut sessions = Vec::with_capacity(calls);
    let mut tallies = Vec::with_capacity(calls * MEMBERS);
    let members = if native {
        let stop = Arc::new(AtomicBool::new(false));
        let mut callers = Vec::with_capacity(calls * MEMBERS);
        for _ in 0..calls {
            let mut call = Call::open(&relay.url, &org).await?;
            for a in &mut call.actors {
                callers.push(join_call(a, call.session, epoch, true).await?);
            }
            sessions.push((call.session, call.actors));
        }
        // Every connection is up before any member sends.
        let senders: Vec<NativeSender> = callers
            .into_iter()
            .map(|c| start_sending(c, stop.clone()))
            .collect();
        for s in &senders {
            tallies.push(Tally::Native(s.sent.clone(), s.received.clone()));
        }
        Members::Native { stop, senders }
    } else {
        // One driver thread per core: on a small machine they share the cores with the
        // relay, as the native members' runtime did.
        let mut swarm = Swarm::start(
            cores,
            Publish {
                packets_per_stream: PACKETS_PER_STREAM as u32,
                audio_payload: AUDIO_PAYLOAD,
                video_payload: VIDEO_PAYLOAD,
            },
        )?;
        for _ in 0..calls {
            let mut call = Call::open(&relay.url, &org).await?;
            for a in &mut call.actors {
                let member = join_light(a, call.session, epoch).await?;
                tallies.push(Tally::Light(swarm.add(member)?));
            }
            sessions.push((call.session, call.actors));
        }
        let swarm =
            tokio::task::spawn_blocking(move || swarm.wait_connected(CONNECT_WAIT).map(|()| swarm))
                .await??;
        swarm.start_sending();
        Members::Light(swarm)
    };
    let setup = setup.elapsed();
    let census = relay.census()?;
    tokio::time::sleep(WARM_UP).await;

    for t in &tallies {
        if let Ok(mut d) = t.received().delays_ns.lock() {
            d.clear();
        }
    }
    let echo_client = EchoClient::connect(&echo, epoch).await?;
    let (sent0, recv0) = (
        total(&tallies, Tally::sent),
        total(&tallies, Tally::arrived),
    );
    let (relay0, own0) = (relay.cpu_seconds()?, own_cpu_seconds()?);
    let start = Instant::now();
    // The echo's one-way latency, measured meanwhile on the same loaded machine.
    let (echo_sent, echo_delays) = echo_latency(&echo_client, duration).await?;
    let wall = start.elapsed().as_secs_f64();
    let (relay_cpu, own_cpu) = (relay.cpu_seconds()? - relay0, own_cpu_seconds()? - own0);
    // Every stream has sent more than a retransmission buffer holds by now.
    let rss_full = relay.rss_kib()?;
    let arrived_at_end = total(&tallies, Tally::arrived) - recv0;
    let sent_in_interval = total(&tallies, Tally::sent) - sent0;
    members.stop_sending();
    // The senders finish their last tick, and what was in flight arrives before anything
    // is counted as lost.
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Loss over the whole time the members sent (every route was set up before the first
    // packet): counting only the measured interval would credit it with what was still in
    // flight when it began.
    let sent = total(&tallies, Tally::sent);
    let arrived = total(&tallies, Tally::arrived);
    let mut delays = Vec::new();
    for t in &tallies {
        if let Ok(d) = t.received().delays_ns.lock() {
            delays.extend_from_slice(&d);
        }
    }
    let delays = sorted(delays).context("call latency")?;
    let expected = sent * (MEMBERS as u64 - 1);

    println!(
        "SFU calls ({calls} four-way calls: {} {} members, each sending audio + video at {PACKETS_PER_STREAM} packets/s per stream ({AUDIO_PAYLOAD}/{VIDEO_PAYLOAD}-byte payloads) and receiving the other three; {:.0} s after {:.1} s warm-up; set up in {:.1} s; census {census:?})",
        calls * MEMBERS,
        if native {
            "native (webrtc-rs async)"
        } else {
            "light (sans-IO rtc)"
        },
        duration.as_secs_f64(),
        WARM_UP.as_secs_f64(),
        setup.as_secs_f64()
    );
    println!(
        "  forwarded packets/s           {:>10.0}  (loss {:.3} %: {} arrived of {expected} due, from the first packet until the senders stopped and 0.3 s more)",
        arrived_at_end as f64 / wall,
        100.0 * (1.0 - arrived as f64 / expected.max(1) as f64),
        arrived
    );
    println!(
        "  offered per stream            {:>10.1} packets/s of {PACKETS_PER_STREAM} asked (what the members kept up with)",
        sent_in_interval as f64 / (tallies.len() * 2) as f64 / wall
    );
    println!(
        "  relay CPU                     {:.2} s in {wall:.1} s = {:.1} % of one core, {:.1} % of the machine's {cores}; {:.0} packets/s per core",
        relay_cpu,
        100.0 * relay_cpu / wall,
        100.0 * relay_cpu / wall / cores as f64,
        arrived_at_end as f64 / relay_cpu.max(1e-9)
    );
    println!(
        "  bench side CPU (the members)  {:.2} s = {:.1} % of one core ({:.1} µs per packet sent or received; not the relay's)",
        own_cpu,
        100.0 * own_cpu / wall,
        1e6 * own_cpu / (sent_in_interval + arrived_at_end).max(1) as f64
    );
    println!(
        "  one way, member → relay → member   p50 {:>6.0} µs   p99 {:>6.0} µs  ({} video samples)",
        us(percentile(&delays, 0.5)),
        us(percentile(&delays, 0.99)),
        delays.len()
    );
    println!(
        "  UDP echo at the same time          p50 {:>6.0} µs   p99 {:>6.0} µs  ({}/{echo_sent} arrived)",
        us(percentile(&echo_delays, 0.5)),
        us(percentile(&echo_delays, 0.99)),
        echo_delays.len()
    );
    println!(
        "  relay-added                        p50 {:>6.0} µs   p99 {:>6.0} µs",
        us(percentile(&delays, 0.5).saturating_sub(percentile(&echo_delays, 0.5))),
        us(percentile(&delays, 0.99).saturating_sub(percentile(&echo_delays, 0.99)))
    );
    println!(
        "  relay resident set per member  {:>8.1} KiB with every retransmission buffer full  ({:.1} → {:.1} MiB; above the resident set after one warm-up call left; with the sessions' state)",
        rss_full.saturating_sub(rss_before) as f64 / (calls * MEMBERS) as f64,
        rss_before as f64 / 1024.0,
        rss_full as f64 / 1024.0
    );
    drop(echo_client);

    members.close().await?;
    for (session, actors) in &sessions {
        for a in actors {
            let session = *session;
            a.act(move |c| {
                let _ = c.leave_call(session);
            });
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    let left = loop {
        let c = relay.census()?;
        if (c.0, c.1) == (0, 0) || Instant::now() > deadline {
            break c;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    println!("  SFU census after all left     {left:?}");
    Ok(())
}
