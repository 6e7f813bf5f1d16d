//! QUIC against WebSocket, plaintext (`ws`) and over TLS (`wss`, as deployed), in the same
//! run against the same relay process: relayed messages per second (and per relay
//! CPU-second), one-way latency and what the relay adds at p99 (each transport against an
//! echo server of its own kind), connect-to-first-frame time, memory per idle connection,
//! and the migration gap (a QUIC person rebinding to a new local socket while the operator
//! keeps writing).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use approdo_client::{QuicLink, QuicTarget, Trust};
use approdo_core::identity::{OrgSigningKey, Role};
use approdo_core::wire::{self, ClientFrame, RelayFrame, SessionEvent};
use futures_util::{SinkExt, StreamExt};

use crate::conversation::{To, echo_latency, latency, open_session, staff, throughput, wss_client};
use crate::{ChildServer, PAYLOAD, WINDOW, percentile, us};

/// Least relay CPU time a throughput run must take for its per-CPU-second figure to be
/// printed (the quick mode's runs take a few ticks).
const MIN_TIMED_CPU: f64 = 0.2;
/// Throughput rounds per transport, taken in turn.
const ROUNDS: usize = 5;

/// One throughput round of one transport.
#[derive(Clone, Copy)]
struct Round {
    rate: f64,
    relay_cpu: f64,
    clients_cpu: f64,
}

/// The median of `values` (sorted in place; 0 for none).
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

/// Connect, open a session, until `SessionOpened`: the person's wait before anything works.
async fn connect_to_first(to: &To, n: usize) -> Result<Vec<Duration>> {
    let mut d = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let mut c = to.connect().await?;
        c.send(&open_session()?).await?;
        loop {
            if let RelayFrame::SessionOpened { .. } = c.recv().await? {
                break;
            }
        }
        d.push(t.elapsed());
    }
    d.sort();
    Ok(d)
}

async fn idle_memory(relay: &ChildServer, to: &To, n: usize) -> Result<f64> {
    let base = relay.rss_kib()?;
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        let mut c = to.connect().await?;
        c.send(&ClientFrame::Ping).await?;
        c.recv().await?;
        held.push(c);
    }
    let with = relay.rss_kib()?;
    drop(held);
    Ok(with.saturating_sub(base) as f64 / n as f64)
}

/// The operator writes one message every `every`; the QUIC person rebinds after `at`
/// messages. Returns (gap between the last arrival before the rebind and the first after,
/// the median gap between arrivals elsewhere).
async fn migration_gap(
    ws: &To,
    quic: &QuicTarget,
    org: &OrgSigningKey,
    serial: u64,
) -> Result<(Duration, Duration)> {
    const TOTAL: u64 = 400;
    const AT: u64 = 200;
    let every = Duration::from_millis(1);
    let mut op = staff(ws, org, serial, Role::Operator).await?;
    let mut person = QuicLink::open(quic).await?;
    person
        .write_frames(&[wire::encode(&open_session()?)?])
        .await?;
    let (session, person_id) = loop {
        if let RelayFrame::SessionOpened { session, you, .. } =
            wire::decode(&person.read_frame().await?)?
        {
            break (session, you);
        }
    };
    op.send(&ClientFrame::Accept { session }).await?;
    loop {
        if let RelayFrame::Joined { .. } = op.recv().await? {
            break;
        }
    }
    let sender = tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        for seq in 1..=TOTAL {
            tick.tick().await;
            let f = crate::message_to(session, seq, person_id)?;
            op.send_bytes(vec![f]).await?;
        }
        Ok::<_, anyhow::Error>(op)
    });
    let mut arrivals = Vec::new();
    let mut got = 0u64;
    let mut rebind_at = None;
    while got < TOTAL {
        if let RelayFrame::Event {
            seq,
            event: SessionEvent::Message { .. },
            ..
        } = wire::decode(&person.read_frame().await?)?
        {
            arrivals.push(Instant::now());
            got += 1;
            if got.is_multiple_of(32) {
                let ack = ClientFrame::Ack {
                    session,
                    up_to: seq,
                };
                person.write_frames(&[wire::encode(&ack)?]).await?;
            }
            if got == AT {
                person.rebind(std::net::UdpSocket::bind("127.0.0.1:0")?)?;
                rebind_at = Some(arrivals.len());
            }
        }
    }
    sender.await??;
    let i = rebind_at.context("rebound")?;
    let gap = arrivals[i].duration_since(arrivals[i - 1]);
    let mut gaps: Vec<Duration> = arrivals
        .windows(2)
        .map(|w| w[1].duration_since(w[0]))
        .collect();
    gaps.sort();
    Ok((gap, percentile(&gaps, 0.5)))
}

/// A QUIC echo server in this process (ALPN `approdo/1`, one stream, bytes back as they
/// came): the baseline of what QUIC itself costs, as the WebSocket echo is for WebSocket.
async fn quic_echo() -> Result<(QuicTarget, quinn::Endpoint)> {
    let certificates = approdo_relay::tls::Certificates::new(
        approdo_relay::tls::TlsSource::SelfSigned { hosts: vec![] },
        std::time::SystemTime::now(),
    )?;
    let hashes = certificates.web_transport_hashes();
    let socket = std::net::UdpSocket::bind("127.0.0.1:0")?;
    let addr = socket.local_addr()?;
    let endpoint = approdo_relay::quic::endpoint(socket, certificates)?;
    let accept = endpoint.clone();
    tokio::spawn(async move {
        while let Some(incoming) = accept.accept().await {
            tokio::spawn(async move {
                let Ok(conn) = incoming.await else { return };
                let Ok((mut send, mut recv)) = conn.accept_bi().await else {
                    return;
                };
                let _ = tokio::io::copy(&mut recv, &mut send).await;
            });
        }
    });
    Ok((
        QuicTarget {
            addr,
            server_name: "localhost".into(),
            trust: Trust::Hashes(hashes),
        },
        endpoint,
    ))
}

/// A WebSocket-over-TLS echo server in this process (the relay's certificate store, a
/// self-signed certificate): the baseline of what wss itself costs.
async fn wss_echo() -> Result<To> {
    let certificates = approdo_relay::tls::Certificates::new(
        approdo_relay::tls::TlsSource::SelfSigned { hosts: vec![] },
        std::time::SystemTime::now(),
    )?;
    let trust = Trust::Hashes(certificates.web_transport_hashes());
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(
        certificates.server_config(&[approdo_relay::tls::ALPN_HTTP1])?,
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let _ = tcp.set_nodelay(true);
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(ws) = tokio_tungstenite::accept_async(tls).await else {
                    return;
                };
                let (mut tx, mut rx) = ws.split();
                while let Some(Ok(m)) = rx.next().await {
                    if m.is_binary() && tx.send(m).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    Ok(To::Wss(addr, wss_client(&trust)?))
}

/// The whole section.
pub async fn bench(quick: bool, seed: &str, org: &OrgSigningKey) -> Result<()> {
    let n = if quick { 5_000 } else { 50_000 };
    let lat_n = if quick { 500 } else { 5_000 };
    let conn_n = if quick { 50 } else { 300 };
    let idle_n = if quick { 200 } else { 1_000 };
    let mut relay = ChildServer::start_with("serve-relay", seed, &[("BENCH_QUIC", "1")])?;
    let (quic, https) = relay.quic_and_https()?;
    let echo_ws = ChildServer::start("serve-echo", seed)?;
    let (echo_quic, _echo_endpoint) = quic_echo().await?;
    let transports = [
        To::Ws(relay.url.clone()),
        To::Wss(https, wss_client(&quic.trust)?),
        To::Quic(quic.clone()),
    ];
    let echoes = [
        To::Ws(echo_ws.url.clone()),
        wss_echo().await?,
        To::Quic(echo_quic),
    ];
    println!(
        "QUIC against WebSocket, plaintext (ws) and over TLS (wss, as deployed); same relay, same run; {PAYLOAD}-byte payloads"
    );
    println!(
        "  (the clients run in this process and share the machine with the relay: messages per \
         relay CPU-second is what a relay serving clients elsewhere can carry)"
    );
    let mut serial = 100;
    // The bench's own overhead: the same QUIC clients on one shared endpoint.
    let shared = To::QuicShared(
        quic.clone(),
        quinn::Endpoint::client("127.0.0.1:0".parse()?)?,
    );
    let runs: Vec<&To> = transports.iter().chain([&shared]).collect();
    for to in &runs {
        serial += 10;
        throughput(to, org, serial, n / 10).await?; // warm-up
    }
    // Rounds in turn (ws, wss, quic, shared; ws, wss, …): whatever else the machine does
    // falls on every transport alike, and each figure is the median of its rounds.
    let mut rounds: Vec<Vec<Round>> = vec![Vec::new(); runs.len()];
    for _ in 0..ROUNDS {
        for (i, to) in runs.iter().enumerate() {
            serial += 10;
            let (relay_before, own_before) = (relay.cpu_seconds()?, crate::sfu::own_cpu_seconds()?);
            let rate = throughput(to, org, serial, n).await?;
            rounds[i].push(Round {
                rate,
                relay_cpu: relay.cpu_seconds()? - relay_before,
                clients_cpu: crate::sfu::own_cpu_seconds()? - own_before,
            });
        }
    }
    let mut rates = Vec::new();
    for (to, rounds) in runs.iter().zip(&rounds) {
        let mut per_round: Vec<f64> = rounds.iter().map(|r| r.rate).collect();
        let rate = median(&mut per_round);
        // CPU time comes in 10 ms ticks: summed over the rounds, and a total shorter than
        // MIN_TIMED_CPU is not timed per CPU.
        let relay_cpu: f64 = rounds.iter().map(|r| r.relay_cpu).sum();
        let clients_cpu: f64 = rounds.iter().map(|r| r.clients_cpu).sum();
        let messages = (n * rounds.len()) as f64;
        let timed = relay_cpu >= MIN_TIMED_CPU;
        let per_cpu = messages / relay_cpu.max(f64::EPSILON);
        let per_cpu_text = if timed {
            format!("{per_cpu:>10.0}")
        } else {
            format!("{:>10}", "too short")
        };
        println!(
            "  {:<5} relayed messages/s (1 → 2, window {WINDOW})  {rate:>10.0}; per relay CPU-second {per_cpu_text} (relay {relay_cpu:.2} s, clients {clients_cpu:.2} s of CPU; median of {} rounds, {:.0}–{:.0})",
            to.name(),
            rounds.len(),
            per_round.first().copied().unwrap_or(0.0),
            per_round.last().copied().unwrap_or(0.0),
        );
        rates.push((rate, if timed { per_cpu } else { f64::NAN }));
    }
    if let [(ws, ws_cpu), (wss, wss_cpu), (q, q_cpu), ..] = rates[..] {
        println!(
            "  throughput quic/wss {:.2}x (goal ≥ 1.0)   quic/ws {:.2}x   wss/ws {:.2}x",
            q / wss,
            q / ws,
            wss / ws
        );
        if [ws_cpu, wss_cpu, q_cpu].iter().all(|x| x.is_finite()) {
            println!(
                "  per relay CPU-second quic/wss {:.2}x   quic/ws {:.2}x   wss/ws {:.2}x",
                q_cpu / wss_cpu,
                q_cpu / ws_cpu,
                wss_cpu / ws_cpu
            );
        }
    }
    for (to, echo) in transports.iter().zip(&echoes) {
        serial += 10;
        let r = latency(to, org, serial, lat_n).await?;
        let e = echo_latency(echo, lat_n).await?;
        println!(
            "  {:<5} one way p50 {:>6.0} µs  p99 {:>6.0} µs; echo p99 {:>6.0} µs; relay-added p99 {:>6.0} µs",
            to.name(),
            us(percentile(&r, 0.5)),
            us(percentile(&r, 0.99)),
            us(percentile(&e, 0.99)),
            us(percentile(&r, 0.99).saturating_sub(percentile(&e, 0.99)))
        );
    }
    for to in &transports {
        let d = connect_to_first(to, conn_n).await?;
        println!(
            "  {:<5} connect → SessionOpened  p50 {:>6.0} µs  p99 {:>6.0} µs ({conn_n} connects)",
            to.name(),
            us(percentile(&d, 0.5)),
            us(percentile(&d, 0.99))
        );
    }
    drop(relay);
    for kind in 0..transports.len() {
        // A fresh relay for each, so one's buffers do not hide in the other's figure.
        let mut relay = ChildServer::start_with("serve-relay", seed, &[("BENCH_QUIC", "1")])?;
        let (q, https) = relay.quic_and_https()?;
        let to = match kind {
            0 => To::Ws(relay.url.clone()),
            1 => To::Wss(https, wss_client(&q.trust)?),
            _ => To::Quic(q),
        };
        let kib = idle_memory(&relay, &to, idle_n).await?;
        println!(
            "  {:<5} memory per idle connection {kib:>8.1} KiB ({idle_n} connections; goal for QUIC ≤ 64 KB)",
            to.name()
        );
    }
    let mut relay = ChildServer::start_with("serve-relay", seed, &[("BENCH_QUIC", "1")])?;
    let quic = relay.quic_target()?;
    let ws = To::Ws(relay.url.clone());
    let (gap, usual) = migration_gap(&ws, &quic, org, 900).await?;
    println!(
        "  migration: last message before the rebind → first after {:>6.0} µs (usual gap between arrivals {:>6.0} µs; operator writes every 1 ms)",
        us(gap),
        us(usual)
    );
    drop(relay);
    // Loss: no `tc netem` here, so QUIC alone through a lossy UDP proxy (every connection
    // of the conversation crosses it; a message crosses it twice, person → relay →
    // operator). The same proxy without loss is the baseline.
    for (i, loss) in [0.0, 0.05].into_iter().enumerate() {
        let mut relay = ChildServer::start_with("serve-relay", seed, &[("BENCH_QUIC", "1")])?;
        let mut target = relay.quic_target()?;
        target.addr = crate::lossy::start(target.addr, loss, 0x5eed + i as u64).await?;
        let r = latency(&To::Quic(target), org, 1000 + 10 * i as u64, lat_n).await?;
        println!(
            "  quic through a UDP proxy dropping {:>2.0}% each way: one way p50 {:>6.0} µs  p99 {:>7.0} µs  max {:>7.0} µs",
            loss * 100.0,
            us(percentile(&r, 0.5)),
            us(percentile(&r, 0.99)),
            us(r.last().copied().unwrap_or_default())
        );
    }
    Ok(())
}
