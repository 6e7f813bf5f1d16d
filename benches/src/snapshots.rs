//! The global queue's cost (issue 12): each node publishes a full snapshot of its waiting
//! sessions, invitations and staff counts on `approdo.node.<node>.lobby`, on change (at
//! most one per check, every 200 ms) and every 2 s at rest. Two relay nodes and a real
//! `nats-server`; node a holds the queue (with 100 staff online, as in the integrity
//! section), node b applies a's snapshots, and the bench listens on the bus with a third
//! node's key. Reported: snapshot size, snapshots and bytes per second at rest and under
//! constant change (people arriving and leaving), and the CPU node a spends publishing and
//! node b applying, in milliseconds per second, next to a relay without a bus under the
//! same queue and the same changes (its CPU is what a node spends anyway: connections,
//! queue views to 100 staff).

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use approdo_core::identity::OrgSigningKey;
use futures_util::{FutureExt, StreamExt};

use crate::ChildServer;
use crate::integrity::{load_relay, open_waiting};
use crate::nodes::bus_node;
use approdo_tests::nodes::Nats;

/// How often a person arrives and another leaves in the changing window.
const CHURN_EVERY: Duration = Duration::from_millis(20);

/// One person arrives and the one before leaves every [`CHURN_EVERY`], for `length`.
async fn churn(url: &str, length: Duration) -> Result<()> {
    let end = Instant::now() + length;
    let mut arrived = std::collections::VecDeque::new();
    let mut every = tokio::time::interval(CHURN_EVERY);
    while Instant::now() < end {
        every.tick().await;
        arrived.push_back(open_waiting(url, "en", None).await?);
        if arrived.len() > 1 {
            // The earlier arrival gives up: one in, one out, the queue's size steady.
            drop(arrived.pop_front());
        }
    }
    Ok(())
}

/// What the bus carried of node a's snapshots in one window, and what it cost.
struct Window {
    snapshots: usize,
    bytes: usize,
    largest: usize,
    seconds: f64,
    /// CPU milliseconds per second: node a, node b.
    cpu_ms_per_s: [f64; 2],
}

/// Listen to node a's snapshots for `length` while `during` runs.
async fn window(
    lobby: &mut async_nats::Subscriber,
    nodes: [&ChildServer; 2],
    length: Duration,
    during: impl std::future::Future<Output = Result<()>>,
) -> Result<Window> {
    let cpu = || -> Result<[f64; 2]> { Ok([nodes[0].cpu_seconds()?, nodes[1].cpu_seconds()?]) };
    let before = cpu()?;
    let started = Instant::now();
    let end = tokio::time::Instant::now() + length;
    let (mut snapshots, mut bytes, mut largest) = (0, 0, 0);
    let listen = async {
        while let Ok(Some(m)) = tokio::time::timeout_at(end, lobby.next()).await {
            snapshots += 1;
            bytes += m.payload.len();
            largest = largest.max(m.payload.len());
        }
    };
    let (_, done) = tokio::join!(listen, during);
    done?;
    let seconds = started.elapsed().as_secs_f64();
    let after = cpu()?;
    Ok(Window {
        snapshots,
        bytes,
        largest,
        seconds,
        cpu_ms_per_s: [0, 1].map(|i| (after[i] - before[i]) * 1e3 / seconds),
    })
}

fn print(what: &str, w: &Window) {
    let per_s = w.snapshots as f64 / w.seconds;
    println!(
        "    {what:<34} {per_s:>5.1} snapshots/s, {:>7.1} KiB/s, largest {:>6.1} KiB; CPU node a {:>5.1} ms/s, node b {:>5.1} ms/s",
        w.bytes as f64 / 1024.0 / w.seconds,
        w.largest as f64 / 1024.0,
        w.cpu_ms_per_s[0],
        w.cpu_ms_per_s[1],
    );
}

/// The section: start NATS and two nodes, fill node a's queue, measure, print.
pub(crate) async fn bench(quick: bool, seed: &str, org: &OrgSigningKey) -> Result<()> {
    let waiting = if quick { 1_000 } else { 5_000 };
    let length = Duration::from_secs(if quick { 4 } else { 10 });
    println!("\n== several nodes: the queue snapshots at {waiting} waiting sessions ==");
    let dir = tempfile::tempdir()?;
    let names = ["node-a", "node-b", "listener"];
    let nats = Nats::start(dir.path(), &names);
    let start = |name: &str| bus_node(&nats, seed, name, &[("BENCH_EXTRA_DESKS", "1")]);
    let (a, b) = (start(names[0])?, start(names[1])?);
    let listener = nats.client_as(names[2]).await;
    let mut lobby = listener
        .subscribe(approdo_relay::bus::lobby::lobby_subject(names[0]))
        .await
        .context("subscribe to node a's snapshots")?;

    let filled = Instant::now();
    let (held, _, _) = load_relay(&a, org, waiting).await?;
    println!(
        "  node a: {waiting} waiting and 100 staff online in {:.1} s",
        filled.elapsed().as_secs_f64()
    );
    // The fill's own burst of snapshots passes first.
    tokio::time::sleep(Duration::from_secs(3)).await;
    while let Some(Some(_)) = lobby.next().now_or_never() {}

    let rest = window(&mut lobby, [&a, &b], length, async { Ok(()) }).await?;
    print("at rest:", &rest);

    let changing = window(&mut lobby, [&a, &b], length, churn(&a.url, length)).await?;
    let rate = 1.0 / CHURN_EVERY.as_secs_f64();
    print(
        &format!("changing ({rate:.0} arrivals and leavings/s):"),
        &changing,
    );

    // The same queue and changes on a relay without a bus.
    let lone = ChildServer::start_with("serve-relay", seed, &[("BENCH_EXTRA_DESKS", "1")])?;
    let (lone_held, _, _) = load_relay(&lone, org, waiting).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = lone.cpu_seconds()?;
    let started = Instant::now();
    churn(&lone.url, length).await?;
    let lone_ms = (lone.cpu_seconds()? - before) * 1e3 / started.elapsed().as_secs_f64();
    println!(
        "    the same changes on a relay without a bus: CPU {lone_ms:>5.1} ms/s (node a spent {:.2}x that)",
        changing.cpu_ms_per_s[0] / lone_ms.max(f64::EPSILON)
    );
    for h in lone_held {
        h.abort();
    }
    for h in held {
        h.abort();
    }
    Ok(())
}
