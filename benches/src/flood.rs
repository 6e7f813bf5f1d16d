//! Honest `OpenSession` latency with and without an ongoing flood of new sessions from
//! 1,000 addresses (issue 8, "Measure").
//!
//! The relay runs with its default limits (per-address session and connection rates, the
//! session and connection maxima), as deployed. Every client binds its socket to an address
//! of its own in 127.0.0.0/8 (all loopback on Linux) before connecting, so the relay sees
//! the flood come from 1,000 addresses and each honest person from a fresh one.
//!
//! Honest people are driven by the core `Client`, as the pages are: when the relay asks for
//! a proof of work, the core answers it (or, while the core does not yet, this bench solves
//! it with `approdo_core::pow` on the core's behalf, as the core will). The flood sends raw
//! `OpenSession` frames and never solves: a `ProofRequired` counts as "held off".

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use approdo_core::PROTOCOL_VERSION;
use approdo_core::client::{Client, Event};
use approdo_core::identity::OrgPublicKey;
use approdo_core::ids::Tag;
use approdo_core::wire::{self, ClientFrame, ErrorCode, RelayFrame};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::MaybeTlsStream;
use tokio_tungstenite::tungstenite::Message;

use crate::{ChildServer, Ws, percentile, us};

/// Distinct source addresses of the flood.
const FLOOD_ADDRESSES: usize = 1_000;
/// Flooding connections in flight at once.
const FLOOD_WORKERS: usize = 64;
/// How long the flood runs before honest people start arriving, so they meet it at full
/// strength.
const FLOOD_WARMUP: Duration = Duration::from_secs(3);
/// Pause between two honest people.
const HONEST_GAP: Duration = Duration::from_millis(50);
/// The longest an honest open, a flood connect or a flood answer may take before it counts
/// as failed.
const OPEN_TIMEOUT: Duration = Duration::from_secs(5);

/// Flood addresses: 127.1.0.1–127.1.3.250.
fn flood_addr(i: usize) -> Ipv4Addr {
    let i = i % FLOOD_ADDRESSES;
    Ipv4Addr::new(127, 1, (i / 250) as u8, (i % 250 + 1) as u8)
}

/// A fresh address for honest person `i`: 127.2.x.y, never one of the flood's.
fn honest_addr(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 2, ((i / 250) % 250) as u8, (i % 250 + 1) as u8)
}

/// A WebSocket to the relay from source address `from`.
async fn connect_from(relay: SocketAddr, from: Ipv4Addr) -> Result<Ws> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from.into(), 0))?;
    let stream = socket.connect(relay).await?;
    stream.set_nodelay(true)?;
    let (ws, _) =
        tokio_tungstenite::client_async(format!("ws://{relay}/ws"), MaybeTlsStream::Plain(stream))
            .await?;
    Ok(ws)
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Send everything the client has queued; returns whether it answered a proof of work.
async fn flush(client: &mut Client, ws: &mut Ws) -> Result<bool> {
    let mut proved = false;
    while let Some(frame) = client.poll_frame() {
        proved |= matches!(frame, ClientFrame::ProofOfWork { .. });
        ws.send(Message::Binary(wire::encode(&frame)?.into()))
            .await?;
    }
    Ok(proved)
}

/// How one honest open went.
enum Honest {
    /// `SessionOpened` after this long (connect included), and whether a proof was asked.
    Opened(Duration, bool),
    /// Refused with this code, closed, or timed out.
    Failed(String),
}

/// One honest person: connect from `from`, open a session with the core `Client`, and time
/// it until the session exists. The session is ended right after.
async fn honest_open(relay: SocketAddr, from: Ipv4Addr, org: OrgPublicKey) -> Result<Honest> {
    let language = Tag::new("en")?;
    let start = Instant::now();
    let deadline = tokio::time::Instant::now() + OPEN_TIMEOUT;
    let mut client = Client::person(org);
    client.open_session(language.clone(), None)?;
    let mut ws = match tokio::time::timeout_at(deadline, connect_from(relay, from)).await {
        Ok(Ok(ws)) => ws,
        Ok(Err(e)) => return Ok(Honest::Failed(format!("connect: {}", short(&e)))),
        Err(_) => return Ok(Honest::Failed("timed out".into())),
    };
    flush(&mut client, &mut ws).await?;
    let mut asked = false;
    loop {
        let bytes = match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return Ok(Honest::Failed("timed out".into())),
            Ok(Some(Ok(Message::Binary(b)))) => b,
            Ok(Some(Ok(_))) => continue,
            Ok(_) => return Ok(Honest::Failed("closed".into())),
        };
        let frame: RelayFrame = wire::decode(&bytes)?;
        let puzzle = match &frame {
            RelayFrame::ProofRequired { seed, difficulty } => Some((*seed, *difficulty)),
            _ => None,
        };
        client.handle_frame(frame, unix_now())?;
        let proved = flush(&mut client, &mut ws).await?;
        if let Some((seed, difficulty)) = puzzle {
            asked = true;
            if !proved {
                // The core does not answer yet: do what it will, then ask again.
                let nonce = tokio::task::spawn_blocking(move || {
                    approdo_core::pow::solve(&seed, difficulty)
                })
                .await?
                .context("the relay asked more than MAX_POW_DIFFICULTY")?;
                let answer = ClientFrame::ProofOfWork { seed, nonce };
                ws.send(Message::Binary(wire::encode(&answer)?.into()))
                    .await?;
                client.open_session(language.clone(), None)?;
                flush(&mut client, &mut ws).await?;
            }
        }
        while let Some(event) = client.poll_event() {
            match event {
                Event::SessionOpened { session } => {
                    let took = start.elapsed();
                    client.end(session)?;
                    let _ = flush(&mut client, &mut ws).await;
                    let _ = ws.close(None).await;
                    return Ok(Honest::Opened(took, asked));
                }
                Event::RelayError { code } => return Ok(Honest::Failed(format!("{code:?}"))),
                _ => {}
            }
        }
    }
}

fn short(e: &anyhow::Error) -> String {
    let s = e.to_string();
    if s.contains("429") {
        "HTTP 429".into()
    } else {
        s.chars().take(40).collect()
    }
}

/// What the flood got.
#[derive(Default)]
struct FloodCounts {
    attempts: AtomicU64,
    opened: AtomicU64,
    held_off: AtomicU64,
    rate_limited: AtomicU64,
    busy: AtomicU64,
    refused: AtomicU64,
    other: AtomicU64,
}

/// One flooding connection after another, cycling over the flood's addresses, until `stop`.
async fn flood_worker(
    relay: SocketAddr,
    first: usize,
    stop: Arc<AtomicBool>,
    counts: Arc<FloodCounts>,
) -> Result<()> {
    let open = wire::encode(&ClientFrame::OpenSession {
        version: PROTOCOL_VERSION,
        language: Tag::new("en")?,
        region: None,
    })?;
    let mut i = first;
    while !stop.load(Ordering::Relaxed) {
        let from = flood_addr(i);
        i += FLOOD_WORKERS;
        counts.attempts.fetch_add(1, Ordering::Relaxed);
        let Ok(Ok(mut ws)) = tokio::time::timeout(OPEN_TIMEOUT, connect_from(relay, from)).await
        else {
            counts.refused.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        if ws.send(Message::Binary(open.clone().into())).await.is_err() {
            counts.refused.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let answer = tokio::time::timeout(OPEN_TIMEOUT, async {
            loop {
                match ws.next().await {
                    Some(Ok(Message::Binary(b))) => return wire::decode::<RelayFrame>(&b).ok(),
                    Some(Ok(_)) => continue,
                    _ => return None,
                }
            }
        })
        .await;
        let counter = match answer {
            Ok(Some(RelayFrame::SessionOpened { .. })) => &counts.opened,
            Ok(Some(RelayFrame::ProofRequired { .. })) => &counts.held_off,
            Ok(Some(RelayFrame::Error {
                code: ErrorCode::RateLimited,
            })) => &counts.rate_limited,
            Ok(Some(RelayFrame::Error {
                code: ErrorCode::Busy,
            })) => &counts.busy,
            Ok(Some(_)) => &counts.other,
            _ => &counts.refused,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        // Walk away without a word: the session (if any) waits out its resume grace.
        drop(ws);
    }
    Ok(())
}

/// Honest people one after another, from fresh addresses, until `n` or `deadline`.
async fn honest_run(
    relay: SocketAddr,
    org: OrgPublicKey,
    first: usize,
    n: usize,
    deadline: Instant,
) -> Result<(Vec<Duration>, Vec<String>, usize)> {
    let (mut ok, mut failed, mut asked) = (Vec::new(), Vec::new(), 0);
    for i in 0..n {
        if Instant::now() >= deadline {
            break;
        }
        match honest_open(relay, honest_addr(first + i), org).await? {
            Honest::Opened(d, proof) => {
                ok.push(d);
                asked += usize::from(proof);
            }
            Honest::Failed(why) => failed.push(why),
        }
        tokio::time::sleep(HONEST_GAP).await;
    }
    ok.sort();
    Ok((ok, failed, asked))
}

fn report(label: &str, ok: &[Duration], failed: &[String], asked: usize) {
    let tried = ok.len() + failed.len();
    let figures = if ok.is_empty() {
        "p50      —       p99      —   ".to_owned()
    } else {
        format!(
            "p50 {:>6.0} µs   p99 {:>6.0} µs",
            us(percentile(ok, 0.5)),
            us(percentile(ok, 0.99))
        )
    };
    let mut why: Vec<(String, usize)> = Vec::new();
    for f in failed {
        match why.iter_mut().find(|(w, _)| w == f) {
            Some((_, n)) => *n += 1,
            None => why.push((f.clone(), 1)),
        }
    }
    let why: Vec<String> = why.iter().map(|(w, n)| format!("{n} {w}")).collect();
    println!(
        "  {label:<28}  {figures}   opened {}/{tried}{}{}",
        ok.len(),
        if asked > 0 {
            format!(" ({asked} after a proof of work)")
        } else {
            String::new()
        },
        if why.is_empty() {
            String::new()
        } else {
            format!("; failed: {}", why.join(", "))
        }
    );
}

/// Honest open latency on an idle relay, then during a flood from 1,000 addresses.
pub async fn bench_flood(quick: bool, seed: &str, org: OrgPublicKey) -> Result<()> {
    let n = if quick { 40 } else { 200 };
    let honest_window = Duration::from_secs(if quick { 12 } else { 45 });
    let relay = ChildServer::start_with("serve-relay", seed, &[("BENCH_REAL_LIMITS", "1")])?;
    let addr: SocketAddr = relay.addr.parse()?;

    let (idle_ok, idle_failed, idle_asked) =
        honest_run(addr, org, 0, n, Instant::now() + honest_window).await?;

    let stop = Arc::new(AtomicBool::new(false));
    let counts = Arc::new(FloodCounts::default());
    let workers: Vec<_> = (0..FLOOD_WORKERS)
        .map(|w| tokio::spawn(flood_worker(addr, w, stop.clone(), counts.clone())))
        .collect();
    let flood_start = Instant::now();
    tokio::time::sleep(FLOOD_WARMUP).await;
    let (ok, failed, asked) = honest_run(addr, org, n, n, Instant::now() + honest_window).await?;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await??;
    }
    let flood_secs = flood_start.elapsed().as_secs_f64();
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let relay_cpu = relay.cpu_seconds()?;
    drop(relay);

    println!(
        "integrity: honest OpenSession latency (connect → SessionOpened, core Client, a fresh \
         address each; relay with its default limits)"
    );
    report("idle relay (baseline)", &idle_ok, &idle_failed, idle_asked);
    report("during the flood", &ok, &failed, asked);
    if let (Some(i), Some(f)) = (idle_ok.get(idle_ok.len() / 2), ok.get(ok.len() / 2)) {
        println!(
            "  p50 during the flood / idle   {:.2}x",
            us(*f) / us(*i).max(1.0)
        );
    }
    println!(
        "  the flood: {FLOOD_ADDRESSES} addresses, {FLOOD_WORKERS} connections in flight, \
         {:.1} s, {:.0} attempts/s; opened {}, held off by a proof of work {}, rate-limited {}, \
         Busy {}, refused or unanswered {}, other {}",
        flood_secs,
        get(&counts.attempts) as f64 / flood_secs,
        get(&counts.opened),
        get(&counts.held_off),
        get(&counts.rate_limited),
        get(&counts.busy),
        get(&counts.refused),
        get(&counts.other)
    );
    println!(
        "  relay process CPU             {relay_cpu:.1} s in all; at most {} client sockets open \
         in this bench at once",
        FLOOD_WORKERS + 1
    );
    Ok(())
}
