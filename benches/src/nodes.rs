//! Several relay nodes on a NATS bus (issue 12): what carrying a person's connection from
//! the node it reached to the node holding the session costs. Two relay processes (nodes
//! a and b) and a real `nats-server` with TLS and NKeys on this machine; the same
//! three-party conversation on node a, first with everyone connected to a (direct), then
//! with the person come back through b (carried: every frame of the person crosses the bus
//! both ways). Reported per mode: messages/s, messages per CPU-second of both relays
//! together, the bus's cost per carried message, and one-way latency from the person.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use approdo_core::PROTOCOL_VERSION;
use approdo_core::identity::OrgSigningKey;
use approdo_core::wire::{ClientFrame, RelayFrame};

use crate::conversation::{ThreeParty, To, latency_of, three_party, throughput_of};
use crate::{ChildServer, percentile, us};

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

/// One throughput round: the rate and the CPU each process spent.
async fn round(
    nodes: &[&ChildServer; 2],
    nats: u32,
    parties: ThreeParty,
    n: usize,
) -> Result<(f64, Cpu)> {
    let cpu = || -> Result<Cpu> {
        Ok([
            nodes[0].cpu_seconds()?,
            nodes[1].cpu_seconds()?,
            crate::sfu::cpu_seconds(nats)?,
        ])
    };
    let before = cpu()?;
    let rate = throughput_of(parties, n).await?;
    let after = cpu()?;
    Ok((rate, [0, 1, 2].map(|i| after[i] - before[i])))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// The section: start NATS and two nodes, measure, print.
pub(crate) async fn bench(quick: bool, seed: &str, org: &OrgSigningKey) -> Result<()> {
    println!("\n== several nodes: a person carried to the session's node over NATS ==");
    let n = if quick { 2_000 } else { 20_000 };
    let lat_n = if quick { 300 } else { 3_000 };
    let dir = tempfile::tempdir()?;
    let nats = approdo_tests::nodes::Nats::start(dir.path(), &["node-a", "node-b"]);
    let ca = nats.ca_file.to_string_lossy().into_owned();
    let start = |name: &str| {
        let seed_file = nats.key(name).seed_file.to_string_lossy().into_owned();
        ChildServer::start_with(
            "serve-relay",
            seed,
            &[
                ("BENCH_BUS_NODE", name),
                ("BENCH_BUS_URL", &nats.url),
                ("BENCH_BUS_CA", &ca),
                ("BENCH_BUS_SEED", &seed_file),
            ],
        )
    };
    let a = start("node-a")?;
    let b = start("node-b")?;
    let (to_a, to_b) = (To::Ws(a.url.clone()), To::Ws(b.url.clone()));
    // Both nodes on the bus and subscribed: a first carried resume goes through.
    let mut serial = 5_000;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        serial += 10;
        let mut p = three_party(&to_a, org, serial).await?;
        match carry(&mut p, &to_b).await {
            Ok(()) => break,
            Err(e) if std::time::Instant::now() > deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    let nodes = [&a, &b];
    let (mut direct, mut carried) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        serial += 10;
        let p = three_party(&to_a, org, serial).await?;
        direct.push(round(&nodes, nats.pid(), p, n).await?);
        serial += 10;
        let mut p = three_party(&to_a, org, serial).await?;
        carry(&mut p, &to_b).await?;
        carried.push(round(&nodes, nats.pid(), p, n).await?);
    }
    let summary = |rounds: &[(f64, Cpu)]| {
        let mut rates: Vec<f64> = rounds.iter().map(|r| r.0).collect();
        let each = [0, 1, 2].map(|i| rounds.iter().map(|r| r.1[i]).sum::<f64>());
        let cpu: f64 = each.iter().sum();
        let per_cpu = (n * rounds.len()) as f64 / cpu.max(f64::EPSILON);
        (median(&mut rates), per_cpu, cpu, each)
    };
    let (d_rate, d_cpu, d_secs, d_each) = summary(&direct);
    let (c_rate, c_cpu, c_secs, c_each) = summary(&carried);
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
    // coming back (batched), on top of what node a does anyway.
    let extra_us = (c_secs - d_secs) / (n * ROUNDS) as f64 * 1e6;
    println!(
        "  carried/direct: throughput {:.2}x, per CPU-second {:.2}x; the bus costs {extra_us:.1} µs of CPU per carried message (both nodes and NATS)",
        c_rate / d_rate,
        c_cpu / d_cpu
    );
    serial += 10;
    let direct_lat = latency_of(three_party(&to_a, org, serial).await?, lat_n).await?;
    serial += 10;
    let mut p = three_party(&to_a, org, serial).await?;
    carry(&mut p, &to_b).await?;
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
    Ok(())
}
