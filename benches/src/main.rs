//! `approdo-bench`: the foundation's performance figures, each next to a baseline measured
//! in the same run on the same machine.
//!
//! * Noise handshakes per second, against the bound set by raw X25519 operations.
//! * Relayed chat messages per second (one sender, two recipients, opaque frames), against
//!   a plain WebSocket echo server built on the same stack.
//! * Relay-added latency at p50/p99, against the echo server's.
//! * Memory per idle connection (the relay's resident set, in its own process).
//! * Integrity ([`integrity`], [`flood`]): with thousands of waiting sessions and 100 staff
//!   online, an honest pair's relay-added p99 against the same pair on an idle relay, and
//!   the CPU time of one queue refresh; honest `OpenSession` latency with and without a flood
//!   of new sessions from 1,000 addresses.
//! * The SFU ([`sfu`]): forwarded RTP packets per second per core of the relay against a
//!   raw UDP echo (with one publisher, and at saturation with many), relay-added one-way
//!   latency at p99 (at a moderate rate, and at half the forwarding capacity), memory per
//!   peer connection; and
//!   ([`calls`]) many four-way video calls at once: the relay's CPU share, loss, latency.
//!
//! Run with `cargo run --release -p approdo-bench` (see [`USAGE`]). The relay and the echo
//! servers run as child processes of this binary so their memory and CPU are their own.
//! Nothing here asserts a time: it prints figures.

mod calls;
mod child;
mod conversation;
mod flood;
mod integrity;
mod lossy;
mod nodes;
mod quic;
mod sfu;
mod snapshots;

/// What `--help` prints.
const USAGE: &str = "\
usage: approdo-bench [--quick] [--sfu-only | --sfu-calls | --sfu-memory | --sfu-halfload
                     | --sfu-saturate | --integrity-only | --quic-only | --nodes-only]
                     [--native-members]

Prints performance figures, each next to a baseline measured in the same run.
  --quick           smaller runs (what CI uses)
  --sfu-only        only the SFU sections (forwarding, latency, latency at half load,
                    forwarding at saturation and latency at half of it, memory; then the
                    calls)
  --sfu-calls       only the SFU's many four-way calls (50; 10 with --quick)
  --sfu-memory      only the SFU's memory per peer connection (40 members; 10 with --quick)
  --sfu-halfload    only the SFU's forwarding run and the relay-added latency at half its
                    capacity (paced, against the UDP echo at the same rate)
  --sfu-saturate    only the SFU's forwarding at saturation (4 calls of light members,
                    packets made ahead, batched sends; against the UDP echo), then the
                    relay-added latency at half the rate it forwarded (same generator, paced)
  --integrity-only  only the integrity section (loaded switchboard, queue refresh, flood)
  --quic-only       only QUIC against WebSocket (throughput, latency, connect, memory, migration)
  --nodes-only      only several nodes on a NATS bus (a person carried to the session's node;
                    needs nats-server, which scripts/test installs)
  --native-members  the calls' members are webrtc-rs's async NativeCallers (the heavier
                    path, kept for comparison) instead of light sans-IO members
  -h, --help        this text

Environment: BENCH_RELAY_LOG=<filter> shows the child relay's logs on stderr;
BENCH_RELAY_PRELOAD=<library> is LD_PRELOAD for the child relays only (a heap profiler:
docs/sfu-memory.md); BENCH_SATURATE_CALLS and BENCH_SATURATE_WINDOW change the calls
(4) and the packets in flight per call (256) of the run at saturation;
BENCH_SATURATE_LATENCY_PERCENT and BENCH_SATURATE_LATENCY_TURN_US the share of its rate
offered (50) and the pacer's period (50 µs) of the latency run after it.";

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use approdo_core::PROTOCOL_VERSION;
use approdo_core::identity::{Certificate, OrgSigningKey, RevocationList, Role, StaffSigningKey};
use approdo_core::ids::{ParticipantId, SessionId, Tag};
use approdo_core::noise::{
    CertPolicy, Handshake, HandshakeKind, NoiseStaticKey, PATTERN_PERSON, prologue,
};
use approdo_core::wire::{self, ClientFrame, Envelope, Payload, RelayFrame};
use child::ChildServer;
use conversation::To;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opaque payload size for throughput runs: a short chat line after padding and the tag.
const PAYLOAD: usize = 96;
/// Messages in flight during throughput runs, for both the relay and the echo baseline.
const WINDOW: usize = 64;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    raise_fd_limit();
    match args.get(1).map(String::as_str) {
        Some("serve-relay") => serve_relay(),
        Some("serve-echo") => serve_echo(),
        Some("serve-udp-echo") => sfu::serve_udp_echo(),
        _ => {
            let known = [
                "--quick",
                "--sfu-only",
                "--sfu-calls",
                "--sfu-memory",
                "--sfu-halfload",
                "--sfu-saturate",
                "--integrity-only",
                "--quic-only",
                "--nodes-only",
                "--native-members",
            ];
            if let Some(other) = args.iter().skip(1).find(|a| !known.contains(&a.as_str())) {
                let help = matches!(other.as_str(), "-h" | "--help");
                println!("{USAGE}");
                if help {
                    return Ok(());
                }
                bail!("unknown argument {other:?}");
            }
            let flag = |f: &str| args.iter().any(|a| a == f);
            if flag("--nodes-only") {
                return run_nodes(flag("--quick"));
            }
            if flag("--sfu-calls") {
                return runtime()?
                    .block_on(calls::bench(flag("--quick"), flag("--native-members")));
            }
            if flag("--sfu-halfload") {
                return runtime()?.block_on(sfu::halfload_only(flag("--quick")));
            }
            if flag("--sfu-saturate") {
                return runtime()?.block_on(sfu::saturate_only(flag("--quick")));
            }
            if flag("--sfu-memory") {
                return runtime()?.block_on(sfu::memory_only(flag("--quick")));
            }
            run_all(
                flag("--quick"),
                flag("--sfu-only"),
                flag("--integrity-only"),
                flag("--quic-only"),
                flag("--native-members"),
            )
        }
    }
}

fn raise_fd_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard.min(65_536), hard);
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

// ----- child processes ------------------------------------------------------------------

fn serve_relay() -> Result<()> {
    if let Ok(filter) = std::env::var("BENCH_RELAY_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .init();
    }
    let seed = std::env::var("BENCH_ORG_SEED").context("BENCH_ORG_SEED")?;
    let mut s = [0u8; 32];
    hex::decode_to_slice(seed, &mut s)?;
    let org = OrgSigningKey::from_seed(&s);
    let dir = tempfile::tempdir()?;
    let mut config = approdo_relay::admin::demo_config(&org, dir.path().join("sessions"));
    // The flood section measures the relay as deployed: its default limits.
    if std::env::var_os("BENCH_REAL_LIMITS").is_none() {
        // Benchmarks push far past the per-client limits that protect a real deployment.
        config.limits.frames_per_sec = 1e9;
        config.limits.frame_burst = 1e9;
        // The relay checks that one burst fits in what a participant may leave unacknowledged.
        config.limits.max_unacked = usize::MAX;
        config.limits.sessions_per_min_per_addr = 1e9;
        config.limits.connections_per_min_per_addr = 1e9;
        config.limits.max_sessions = 1_000_000;
        config.limits.max_connections = 1_000_000;
        config.limits.bytes_per_sec = 1e12;
        config.limits.byte_burst = 1e12;
        config.limits.bytes_per_sec_per_addr = 1e12;
        config.limits.byte_burst_per_addr = 1e12;
        config.limits.acks_per_sec = 1e9;
        config.limits.ack_burst = 1e9;
        config.limits.open_sessions_per_sec_before_proof = 1e9;
        config.limits.connections_per_addr = u32::MAX;
        // Each throughput run leaves a session whose last unacknowledged events are kept
        // for its away members; many runs on one relay would reach the store's quota.
        config.limits.max_stored_bytes = u64::MAX;
    }
    if std::env::var_os("BENCH_EXTRA_DESKS").is_some() {
        integrity::add_desks(&mut config)?;
    }
    // The nodes section: this relay joins a bus.
    if let Ok(node) = std::env::var("BENCH_BUS_NODE") {
        let var = |k: &str| std::env::var(k).with_context(|| k.to_owned());
        config.bus = Some(approdo_relay::bus::BusConfig::load(
            &approdo_relay::bus::BusConfigFile {
                node,
                url: var("BENCH_BUS_URL")?,
                ca_file: var("BENCH_BUS_CA")?.into(),
                nkey_seed_file: var("BENCH_BUS_SEED")?.into(),
            },
        )?);
    }
    // The SFU section gives its relay a port of its own (shard 0's; the next ones follow);
    // the other sections' relays take free ones.
    config.sfu.udp_port = match std::env::var("BENCH_SFU_PORT") {
        Ok(port) => port.parse().context("BENCH_SFU_PORT is a UDP port")?,
        Err(_) => 0,
    };
    // The SFU memory run's baseline: the retransmission buffer the relay used to keep.
    if let Ok(n) = std::env::var("BENCH_SFU_RETRANSMIT") {
        config.sfu.retransmit_buffer = n.parse().context("BENCH_SFU_RETRANSMIT")?;
    }
    runtime()?.block_on(async move {
        let quic = std::env::var_os("BENCH_QUIC").is_some();
        if quic {
            config.tls = Some(approdo_relay::tls::TlsSource::SelfSigned { hosts: vec![] });
        }
        let mut relay = approdo_relay::Relay::new(config)?;
        let http = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        println!("listening {}", http.local_addr()?);
        let listeners = approdo_relay::Listeners::http(http);
        if quic {
            let q = approdo_relay::quic::QuicListener::bind("127.0.0.1:0".parse()?)?;
            let port = q.advertised_port();
            relay.serve_quic(q)?;
            // The same routes over TLS too (the same certificate): the WebSocket as
            // deployed (wss://), the fair baseline for QUIC.
            let https = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let https_addr = https.local_addr()?;
            relay.serve_https(https)?;
            let hashes: Vec<String> = relay
                .certificates()
                .map(|c| c.web_transport_hashes())
                .unwrap_or_default()
                .iter()
                .map(hex::encode)
                .collect();
            println!("quic {port} {} {https_addr}", hashes.join(","));
        }
        // Counts only (never who): one line on stdout for each "census" line on stdin.
        let inspector = relay.inspector();
        std::thread::spawn(move || {
            for line in std::io::stdin().lines() {
                let Ok(line) = line else { break };
                if line.trim() == "census" {
                    let c = inspector.sfu_census();
                    println!(
                        "census {} {} {}",
                        c.members, c.live_peer_connections, c.calls
                    );
                }
            }
        });
        relay.run(listeners, std::future::pending()).await?;
        Ok(())
    })
}

fn serve_echo() -> Result<()> {
    use axum::extract::ws::{Message as AxMessage, WebSocketUpgrade};
    runtime()?.block_on(async move {
        let app = axum::Router::new().route(
            "/ws",
            axum::routing::get(|ws: WebSocketUpgrade| async move {
                ws.on_upgrade(|socket| async move {
                    let (mut tx, mut rx) = socket.split();
                    while let Some(Ok(m)) = rx.next().await {
                        if let AxMessage::Binary(b) = m
                            && tx.send(AxMessage::Binary(b)).await.is_err()
                        {
                            break;
                        }
                    }
                })
            }),
        );
        let http = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        println!("listening {}", http.local_addr()?);
        // Same socket setting as the relay, so the baseline is not handicapped by Nagle.
        use axum::serve::ListenerExt;
        let http = http.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(http, app).await?;
        Ok(())
    })
}

// ----- handshakes -----------------------------------------------------------------------

fn bench_handshakes(quick: bool) -> Result<()> {
    let n_dh = if quick { 2_000 } else { 20_000 };
    let scalar = [7u8; 32];
    let mut point = curve25519_dalek::MontgomeryPoint::mul_base_clamped(scalar);
    let t = Instant::now();
    for _ in 0..n_dh {
        point = point.mul_clamped(scalar);
    }
    std::hint::black_box(point);
    let dh_per_sec = f64::from(n_dh) / t.elapsed().as_secs_f64();
    // One NX handshake costs six X25519 operations in all: each side makes an ephemeral
    // key (a base-point multiplication) and computes ee and es.
    let bound = dh_per_sec / 6.0;

    let n_hs = if quick { 200 } else { 2_000 };
    let mut buf = vec![0u8; 1024];
    let mut payload = vec![0u8; 1024];
    let responder_key = NoiseStaticKey::generate();
    let t = Instant::now();
    for _ in 0..n_hs {
        let mut i = snow::Builder::new(PATTERN_PERSON.parse()?).build_initiator()?;
        let mut r = snow::Builder::new(PATTERN_PERSON.parse()?)
            .local_private_key(&responder_key.secret()[..])?
            .build_responder()?;
        let n = i.write_message(&[], &mut buf)?;
        r.read_message(&buf[..n], &mut payload)?;
        let n = r.write_message(&[], &mut buf)?;
        i.read_message(&buf[..n], &mut payload)?;
        std::hint::black_box(i.into_transport_mode()?);
    }
    let noise_per_sec = f64::from(n_hs) / t.elapsed().as_secs_f64();

    // The Approdo handshake: the same NX plus the certificate in message 2 and its check
    // (an Ed25519 verification, expiry, revocation, key match).
    let org = OrgSigningKey::generate();
    let cert = org.certify(&Certificate {
        serial: 1,
        role: Role::Operator,
        label: "op".into(),
        desks: vec![Tag::new("national")?],
        languages: vec![Tag::new("en")?],
        noise_key: responder_key.public(),
        signing_key: StaffSigningKey::generate().public(),
        not_after: u64::MAX,
    });
    let revoked = RevocationList::default();
    let public = org.public();
    let policy = CertPolicy {
        org: &public,
        revoked: &revoked,
        now_unix: 1,
    };
    let p = prologue(&SessionId([1; 16]), ParticipantId(1), ParticipantId(2));
    let t = Instant::now();
    for _ in 0..n_hs {
        let mut i = Handshake::new(HandshakeKind::PersonInitiator, &p, None)?;
        let mut r = Handshake::new(
            HandshakeKind::StaffAnsweringPerson,
            &p,
            Some((&responder_key, &cert)),
        )?;
        r.read(&i.write()?, &policy)?;
        i.read(&r.write()?, &policy)?;
        std::hint::black_box(i.into_channel()?);
    }
    let approdo_per_sec = f64::from(n_hs) / t.elapsed().as_secs_f64();

    println!("handshakes");
    println!(
        "  x25519 operations/s           {dh_per_sec:>10.0}  (bound: {bound:.0} NX handshakes/s)"
    );
    println!(
        "  Noise NX handshakes/s         {noise_per_sec:>10.0}  ratio to bound {:.2}x",
        noise_per_sec / bound
    );
    println!(
        "  Approdo NX + certificate/s    {approdo_per_sec:>10.0}  ratio to bound {:.2}x",
        approdo_per_sec / bound
    );
    Ok(())
}

// ----- relay plumbing ---------------------------------------------------------------------

async fn connect(url: &str) -> Result<Ws> {
    Ok(
        tokio_tungstenite::connect_async_with_config(url, None, true)
            .await?
            .0,
    )
}

async fn send(ws: &mut Ws, f: &ClientFrame) -> Result<()> {
    ws.send(Message::Binary(wire::encode(f)?.into())).await?;
    Ok(())
}

async fn recv(ws: &mut Ws) -> Result<RelayFrame> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Binary(b))) => return Ok(wire::decode(&b)?),
            Some(Ok(_)) => continue,
            other => bail!("connection ended: {other:?}"),
        }
    }
}

/// A staff certificate for `serial` and the `StaffHello` that presents it.
fn staff_hello(
    org: &OrgSigningKey,
    serial: u64,
    role: Role,
) -> Result<(ClientFrame, StaffSigningKey)> {
    let signing = StaffSigningKey::generate();
    let certificate = org.certify(&Certificate {
        serial,
        role,
        label: format!("bench-{serial}"),
        desks: vec![Tag::new("national")?],
        languages: vec![Tag::new("en")?],
        noise_key: NoiseStaticKey::generate().public(),
        signing_key: signing.public(),
        not_after: u64::MAX,
    });
    let hello = ClientFrame::StaffHello {
        version: PROTOCOL_VERSION,
        certificate,
    };
    Ok((hello, signing))
}

fn message(session: SessionId, seq: u64, a: ParticipantId, b: ParticipantId) -> Result<Vec<u8>> {
    message_for(session, seq, &[a, b])
}

/// A `Send` of one opaque message to `to` alone.
fn message_to(session: SessionId, seq: u64, to: ParticipantId) -> Result<Vec<u8>> {
    message_for(session, seq, &[to])
}

fn message_for(session: SessionId, seq: u64, to: &[ParticipantId]) -> Result<Vec<u8>> {
    let env = |to| Envelope {
        to,
        payload: Payload::Cipher {
            nonce: seq,
            data: vec![0x5a; PAYLOAD],
        },
    };
    let envelopes = to.iter().copied().map(env).collect();
    Ok(wire::encode(&ClientFrame::Send {
        session,
        seq,
        envelopes,
    })?)
}

async fn echo_throughput(url: &str, n: usize) -> Result<f64> {
    let ws = connect(url).await?;
    let (mut tx, mut rx) = ws.split();
    let frame = vec![0x5a; PAYLOAD * 2 + 40];
    let start = Instant::now();
    let mut sent = 0;
    let mut back = 0;
    while back < n {
        while sent < n && sent - back < WINDOW {
            sent += 1;
            tx.feed(Message::Binary(frame.clone().into())).await?;
        }
        tx.flush().await?;
        match rx.next().await {
            Some(Ok(Message::Binary(_))) => back += 1,
            Some(Ok(_)) => {}
            other => bail!("echo connection ended: {other:?}"),
        }
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

async fn idle_memory(relay: &ChildServer, n: usize) -> Result<(f64, f64)> {
    let base = relay.rss_kib()?;
    let mut bare = Vec::with_capacity(n);
    for _ in 0..n {
        let mut ws = connect(&relay.url).await?;
        send(&mut ws, &ClientFrame::Ping).await?;
        recv(&mut ws).await?;
        bare.push(ws);
    }
    let with_bare = relay.rss_kib()?;
    let per_bare = (with_bare.saturating_sub(base)) as f64 / n as f64;
    let mut persons = Vec::with_capacity(n);
    for _ in 0..n {
        let mut ws = connect(&relay.url).await?;
        send(
            &mut ws,
            &ClientFrame::OpenSession {
                version: PROTOCOL_VERSION,
                language: Tag::new("en")?,
                region: None,
            },
        )
        .await?;
        recv(&mut ws).await?;
        persons.push(ws);
    }
    let with_persons = relay.rss_kib()?;
    let per_person = (with_persons.saturating_sub(with_bare)) as f64 / n as f64;
    drop(bare);
    drop(persons);
    Ok((per_bare, per_person))
}

fn run_all(
    quick: bool,
    sfu_only: bool,
    integrity_only: bool,
    quic_only: bool,
    native_members: bool,
) -> Result<()> {
    println!(
        "approdo-bench ({} mode, {} cores)",
        if quick { "quick" } else { "full" },
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    if quic_only || (!sfu_only && !integrity_only) {
        let org = OrgSigningKey::generate();
        let seed = hex::encode(*org.seed());
        // The clients on one thread, as on a phone: neither transport's clients pay for
        // wake-ups across worker threads, which cost QUIC's several tasks per message most.
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(quic::bench(quick, &seed, &org))?;
    }
    if quic_only {
        return Ok(());
    }
    if !sfu_only && !integrity_only {
        run_foundation(quick)?;
    }
    if !sfu_only {
        run_integrity(quick)?;
    }
    if !sfu_only && !integrity_only {
        run_nodes(quick)?;
    }
    if integrity_only {
        return Ok(());
    }
    runtime()?.block_on(async {
        sfu::bench(quick).await?;
        calls::bench(quick, native_members).await
    })
}

fn run_nodes(quick: bool) -> Result<()> {
    let org = OrgSigningKey::generate();
    let seed = hex::encode(*org.seed());
    runtime()?.block_on(async {
        nodes::bench(quick, &seed, &org).await?;
        snapshots::bench(quick, &seed, &org).await
    })
}

fn run_integrity(quick: bool) -> Result<()> {
    let org = OrgSigningKey::generate();
    let seed = hex::encode(*org.seed());
    integrity::bench_refresh(quick, &org)?;
    runtime()?.block_on(async {
        integrity::bench_load(quick, &seed, &org).await?;
        flood::bench_flood(quick, &seed, org.public()).await
    })
}

fn run_foundation(quick: bool) -> Result<()> {
    bench_handshakes(quick)?;

    let org = OrgSigningKey::generate();
    let seed = hex::encode(*org.seed());
    let n = if quick { 5_000 } else { 100_000 };
    let lat_n = if quick { 500 } else { 5_000 };
    let idle_n = if quick { 200 } else { 2_000 };
    let rt = runtime()?;
    rt.block_on(async {
        let echo = ChildServer::start("serve-echo", &seed)?;
        let relay = ChildServer::start("serve-relay", &seed)?;
        let (to_echo, to_relay) = (To::Ws(echo.url.clone()), To::Ws(relay.url.clone()));
        // Warm both up, then measure.
        echo_throughput(&echo.url, n / 10).await?;
        conversation::throughput(&to_relay, &org, 1, n / 10).await?;
        let echo_rate = echo_throughput(&echo.url, n).await?;
        let relay_rate = conversation::throughput(&to_relay, &org, 11, n).await?;
        println!("throughput ({PAYLOAD}-byte payloads, window {WINDOW})");
        println!("  WebSocket echo messages/s     {echo_rate:>10.0}");
        println!(
            "  relayed messages/s (1 → 2)    {relay_rate:>10.0}  ratio to echo {:.2}x",
            relay_rate / echo_rate
        );

        let e = conversation::echo_latency(&to_echo, lat_n).await?;
        let r = conversation::latency(&to_relay, &org, 21, lat_n).await?;
        println!("latency, one way, one message at a time ({lat_n} samples)");
        println!(
            "  echo server                   p50 {:>6.0} µs   p99 {:>6.0} µs",
            us(percentile(&e, 0.5)),
            us(percentile(&e, 0.99))
        );
        println!(
            "  relay (sender → recipient)    p50 {:>6.0} µs   p99 {:>6.0} µs",
            us(percentile(&r, 0.5)),
            us(percentile(&r, 0.99))
        );
        println!(
            "  relay-added at p99            {:>6.0} µs",
            us(percentile(&r, 0.99).saturating_sub(percentile(&e, 0.99)))
        );
        drop(relay);

        let relay = ChildServer::start("serve-relay", &seed)?;
        let (bare, person) = idle_memory(&relay, idle_n).await?;
        println!("memory ({idle_n} idle connections, relay resident set)");
        println!("  per idle WebSocket            {bare:>8.1} KiB");
        println!("  per idle person with session  {person:>8.1} KiB (in addition)");
        Ok::<_, anyhow::Error>(())
    })
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
