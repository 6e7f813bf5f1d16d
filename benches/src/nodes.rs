//! Several relay nodes on a NATS bus (issue 12): what carrying a person's connection from
//! the node it reached to the node holding the session costs. Three relay processes (nodes
//! a, b and c) and a real `nats-server` with TLS and NKeys on this machine.
//!
//! - One conversation: the same three-party conversation on node a, first with everyone
//!   connected to a (direct), then with the person come back through b (carried: every
//!   frame of the person crosses the bus both ways). Reported per mode: messages/s,
//!   messages per CPU-second of the relays and NATS together, the bus's cost per carried
//!   message, bus messages per carried message, and one-way latency from the person.
//! - Spread: many conversations at once, their sessions spread over 1, 2 or 3 nodes, each
//!   person carried through the next node (with 2 or 3): messages/s and per CPU-second of
//!   every process, against one node in the same run.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use approdo_core::PROTOCOL_VERSION;
use approdo_core::identity::OrgSigningKey;
use approdo_core::wire::{ClientFrame, RelayFrame};

use crate::conversation::{ThreeParty, To, latency_of, three_party, throughput_of};
use crate::{ChildServer, percentile, us};
use approdo_tests::nodes::Nats;

/// Throughput rounds per mode, interleaved (direct, carried, direct, …); the median counts.
const ROUNDS: usize = 3;

/// The person of `parties` leaves its connection and resumes through `via` (another node).
async fn carry(parties: &mut ThreeParty, via: &To) -> Result<()> {
    let mut conn = via.connect().await?;
    conn.send(&ClientFrame::Resume {
        version: PROTOCOL_VERSION,
        token: parties.token.clone(),
        received_up_to: 0,
    })
    .await?;
    loop {
        match conn.recv().await.context("resume through the other node")? {
            RelayFrame::Resumed { .. } => break,
            RelayFrame::Error { code } => bail!("resume through the other node: {code:?}"),
            _ => {}
        }
    }
    // The old connection closes as it is dropped here.
    parties.person = conn;
    Ok(())
}

/// CPU seconds of node a, node b and the NATS server.
type Cpu = [f64; 3];

/// The CPU seconds of `nodes` and NATS so far, and NATS's count of messages in.
fn usage(nodes: &[&ChildServer], nats: &Nats) -> Result<(Vec<f64>, u64)> {
    let mut cpu = nodes
        .iter()
        .map(|n| n.cpu_seconds())
        .collect::<Result<Vec<f64>>>()?;
    cpu.push(crate::sfu::cpu_seconds(nats.pid())?);
    Ok((cpu, nats.messages_in()?))
}

/// What one round spent: CPU seconds per process (the nodes', then NATS's) and bus
/// messages.
fn spent(before: &(Vec<f64>, u64), after: &(Vec<f64>, u64)) -> (Vec<f64>, u64) {
    let cpu = after.0.iter().zip(&before.0).map(|(a, b)| a - b).collect();
    (cpu, after.1 - before.1)
}

/// One throughput round: the rate, the CPU each process spent and the bus messages.
async fn round(
    nodes: &[&ChildServer; 2],
    nats: &Nats,
    parties: ThreeParty,
    n: usize,
) -> Result<(f64, Cpu, u64)> {
    let before = usage(nodes, nats)?;
    let rate = throughput_of(parties, n).await?;
    let (cpu, bus) = spent(&before, &usage(nodes, nats)?);
    Ok((rate, [cpu[0], cpu[1], cpu[2]], bus))
}

/// Conversations at once in the spread rounds.
fn spread_conversations(quick: bool) -> usize {
    if quick { 6 } else { 24 }
}

/// One spread round: `conversations` sessions whose homes go round `homes` (one node, or
/// several), each person carried through the next of them when there are several; every
/// person sends `n` messages at once. Returns messages/s, CPU seconds of all processes
/// (`all` and NATS) and bus messages.
async fn spread_round(
    all: &[&ChildServer],
    to: &[To],
    homes: usize,
    nats: &Nats,
    org: &OrgSigningKey,
    serial: &mut u64,
    (conversations, n): (usize, usize),
) -> Result<(f64, f64, u64)> {
    let mut parties = Vec::new();
    for i in 0..conversations {
        *serial += 10;
        let mut p = three_party(&to[i % homes], org, *serial).await?;
        if homes > 1 {
            carry(&mut p, &to[(i + 1) % homes]).await?;
        }
        parties.push(p);
    }
    let before = usage(all, nats)?;
    let started = std::time::Instant::now();
    let runs: Vec<_> = parties
        .into_iter()
        .map(|p| tokio::spawn(throughput_of(p, n)))
        .collect();
    for run in runs {
        run.await??;
    }
    let rate = (conversations * n) as f64 / started.elapsed().as_secs_f64();
    let (cpu, bus) = spent(&before, &usage(all, nats)?);
    Ok((rate, cpu.iter().sum(), bus))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// A relay node on `nats`'s bus as `name`, with `env` besides.
pub(crate) fn bus_node(
    nats: &Nats,
    seed: &str,
    name: &str,
    env: &[(&str, &str)],
) -> Result<ChildServer> {
    let ca = nats.ca_file.to_string_lossy().into_owned();
    let seed_file = nats.key(name).seed_file.to_string_lossy().into_owned();
    let mut all = vec![
        ("BENCH_BUS_NODE", name),
        ("BENCH_BUS_URL", nats.url.as_str()),
        ("BENCH_BUS_CA", ca.as_str()),
        ("BENCH_BUS_SEED", seed_file.as_str()),
    ];
    all.extend_from_slice(env);
    ChildServer::start_with("serve-relay", seed, &all)
}

/// The section: start NATS and three nodes, measure, print.
pub(crate) async fn bench(quick: bool, seed: &str, org: &OrgSigningKey) -> Result<()> {
    println!("\n== several nodes: a person carried to the session's node over NATS ==");
    let n = if quick { 2_000 } else { 20_000 };
    let lat_n = if quick { 300 } else { 3_000 };
    let dir = tempfile::tempdir()?;
    let names = ["node-a", "node-b", "node-c"];
    let nats = Nats::start(dir.path(), &names);
    let start = |name: &str| bus_node(&nats, seed, name, &[]);
    let (a, b, c) = (start(names[0])?, start(names[1])?, start(names[2])?);
    let to = [
        To::Ws(a.url.clone()),
        To::Ws(b.url.clone()),
        To::Ws(c.url.clone()),
    ];
    // Every node on the bus and subscribed: a first carried resume from each node to the
    // next goes through.
    let mut serial = 5_000;
    for home in 0..to.len() {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            serial += 10;
            let mut p = three_party(&to[home], org, serial).await?;
            match carry(&mut p, &to[(home + 1) % to.len()]).await {
                Ok(()) => break,
                Err(e) if std::time::Instant::now() > deadline => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }
    let (to_a, to_b) = (&to[0], &to[1]);
    let nodes = [&a, &b];
    let (mut direct, mut carried) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        serial += 10;
        let p = three_party(to_a, org, serial).await?;
        direct.push(round(&nodes, &nats, p, n).await?);
        serial += 10;
        let mut p = three_party(to_a, org, serial).await?;
        carry(&mut p, to_b).await?;
        carried.push(round(&nodes, &nats, p, n).await?);
    }
    let summary = |rounds: &[(f64, Cpu, u64)]| {
        let mut rates: Vec<f64> = rounds.iter().map(|r| r.0).collect();
        let each = [0, 1, 2].map(|i| rounds.iter().map(|r| r.1[i]).sum::<f64>());
        let cpu: f64 = each.iter().sum();
        let per_cpu = (n * rounds.len()) as f64 / cpu.max(f64::EPSILON);
        let bus: u64 = rounds.iter().map(|r| r.2).sum();
        (median(&mut rates), per_cpu, cpu, each, bus)
    };
    let (d_rate, d_cpu, d_secs, d_each, _) = summary(&direct);
    let (c_rate, c_cpu, c_secs, c_each, c_bus) = summary(&carried);
    let each = |e: Cpu| format!("a {:.2} s, b {:.2} s, NATS {:.2} s", e[0], e[1], e[2]);
    println!(
        "  direct   (all on node a)          {d_rate:>9.0} messages/s; {d_cpu:>9.0} per CPU-second of relays and NATS ({})",
        each(d_each)
    );
    println!(
        "  carried  (person through node b)  {c_rate:>9.0} messages/s; {c_cpu:>9.0} per CPU-second of relays and NATS ({})",
        each(c_each)
    );
    // Each carried message costs the person's Send crossing b → bus → a and its Accepted
    // coming back (bundled), on top of what node a does anyway.
    let extra_us = (c_secs - d_secs) / (n * ROUNDS) as f64 * 1e6;
    println!(
        "  carried/direct: throughput {:.2}x, per CPU-second {:.2}x; the bus costs {extra_us:.1} µs of CPU per carried message (both nodes and NATS), {:.3} bus messages per carried message",
        c_rate / d_rate,
        c_cpu / d_cpu,
        c_bus as f64 / (n * ROUNDS) as f64
    );
    serial += 10;
    let direct_lat = latency_of(three_party(to_a, org, serial).await?, lat_n).await?;
    serial += 10;
    let mut p = three_party(to_a, org, serial).await?;
    carry(&mut p, to_b).await?;
    let carried_lat = latency_of(p, lat_n).await?;
    let (d50, d99) = (percentile(&direct_lat, 0.5), percentile(&direct_lat, 0.99));
    let (c50, c99) = (
        percentile(&carried_lat, 0.5),
        percentile(&carried_lat, 0.99),
    );
    println!(
        "  one way person → operator: direct p50 {:>6.0} µs p99 {:>6.0} µs; carried p50 {:>6.0} µs p99 {:>6.0} µs; the bus adds {:>6.0} µs at p99 (goal ≤ 2000)",
        us(d50),
        us(d99),
        us(c50),
        us(c99),
        us(c99.saturating_sub(d99))
    );

    // Spread: the same load over 1, 2 and 3 nodes, interleaved rounds.
    let conversations = spread_conversations(quick);
    let each_n = n / conversations * 2;
    let all = [&a, &b, &c];
    println!(
        "  spread: {conversations} conversations at once, {each_n} messages each; with 2 or 3 nodes every person is carried through the next node (the worst case)"
    );
    let mut by_nodes: [Vec<(f64, f64, u64)>; 3] = Default::default();
    for _ in 0..ROUNDS {
        for homes in 1..=3 {
            let r = spread_round(
                &all,
                &to,
                homes,
                &nats,
                org,
                &mut serial,
                (conversations, each_n),
            )
            .await?;
            by_nodes[homes - 1].push(r);
        }
    }
    let total = (conversations * each_n * ROUNDS) as f64;
    let one_per_cpu = total / by_nodes[0].iter().map(|r| r.1).sum::<f64>();
    for (i, rounds) in by_nodes.iter().enumerate() {
        let mut rates: Vec<f64> = rounds.iter().map(|r| r.0).collect();
        let cpu: f64 = rounds.iter().map(|r| r.1).sum();
        let bus: u64 = rounds.iter().map(|r| r.2).sum();
        let per_cpu = total / cpu.max(f64::EPSILON);
        println!(
            "    {} node{}: {:>9.0} messages/s; {per_cpu:>9.0} per CPU-second of every process ({:.2}x one node; goal with 3 ≥ 0.8x); {:.3} bus messages per message",
            i + 1,
            if i == 0 { " " } else { "s" },
            median(&mut rates),
            per_cpu / one_per_cpu,
            bus as f64 / total
        );
    }
    Ok(())
}
