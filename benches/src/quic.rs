//! QUIC against WebSocket, plaintext (`ws`) and over TLS (`wss`, as deployed), in the same
//! run against the same relay process: relayed messages per second, one-way latency and
//! what the relay adds at p99 (each transport against an echo server of its own kind), connect-to-first-frame time, memory per idle
//! connection, and the migration gap (a QUIC person rebinding to a new local socket while
//! the operator keeps writing).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use approdo_client::{QuicLink, QuicTarget, Trust};
use approdo_core::PROTOCOL_VERSION;
use approdo_core::identity::{OrgSigningKey, Role};
use approdo_core::ids::{ParticipantId, SessionId, Tag};
use approdo_core::wire::{self, ClientFrame, RelayFrame, SessionEvent};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

use crate::{ChildServer, PAYLOAD, WINDOW, Ws, percentile, us};

/// A WebSocket over TLS (the deployed WebSocket path).
type Wss = tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<TcpStream>>;

/// One raw connection to the relay (or an echo server) of any transport.
enum Conn {
    Ws(Box<Ws>),
    Wss(Box<Wss>),
    Quic(Box<QuicLink>),
}

/// Feed every frame, then flush once: one write for a burst, on either WebSocket.
async fn ws_send<S>(ws: &mut S, frames: Vec<Vec<u8>>) -> Result<()>
where
    S: futures_util::Sink<Message, Error = tokio_tungstenite::tungstenite::Error> + Unpin,
{
    for f in frames {
        ws.feed(Message::Binary(f.into())).await?;
    }
    ws.flush().await?;
    Ok(())
}

/// The next binary message on either WebSocket.
async fn ws_recv<S>(ws: &mut S) -> Result<Vec<u8>>
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        match ws.next().await {
            Some(Ok(Message::Binary(b))) => return Ok(b.to_vec()),
            Some(Ok(_)) => continue,
            other => bail!("connection ended: {other:?}"),
        }
    }
}

impl Conn {
    async fn send_bytes(&mut self, frames: Vec<Vec<u8>>) -> Result<()> {
        match self {
            Conn::Ws(ws) => ws_send(ws.as_mut(), frames).await?,
            Conn::Wss(ws) => ws_send(ws.as_mut(), frames).await?,
            Conn::Quic(q) => q.write_frames(&frames).await?,
        }
        Ok(())
    }

    async fn send(&mut self, f: &ClientFrame) -> Result<()> {
        self.send_bytes(vec![wire::encode(f)?]).await
    }

    async fn recv_bytes(&mut self) -> Result<Vec<u8>> {
        match self {
            Conn::Ws(ws) => ws_recv(ws.as_mut()).await,
            Conn::Wss(ws) => ws_recv(ws.as_mut()).await,
            Conn::Quic(q) => Ok(q.read_frame().await?),
        }
    }

    async fn recv(&mut self) -> Result<RelayFrame> {
        Ok(wire::decode(&self.recv_bytes().await?)?)
    }
}

/// Where to connect, per transport.
#[derive(Clone)]
enum To {
    Ws(String),
    /// An HTTPS address and the client configuration that pins its certificate.
    Wss(SocketAddr, Arc<rustls::ClientConfig>),
    Quic(QuicTarget),
    /// QUIC with every client connection on one shared endpoint (socket and driver task).
    QuicShared(QuicTarget, quinn::Endpoint),
}

impl To {
    async fn connect(&self) -> Result<Conn> {
        Ok(match self {
            To::Ws(url) => Conn::Ws(Box::new(crate::connect(url).await?)),
            To::Wss(addr, tls) => {
                let tcp = TcpStream::connect(addr).await?;
                // As the plaintext client does (and the relay on its side): no Nagle.
                tcp.set_nodelay(true)?;
                let name = rustls::pki_types::ServerName::try_from("localhost")?;
                let tls = tokio_rustls::TlsConnector::from(tls.clone())
                    .connect(name, tcp)
                    .await?;
                let url = format!("wss://localhost:{}/ws", addr.port());
                let (ws, _) = tokio_tungstenite::client_async_with_config(url, tls, None).await?;
                Conn::Wss(Box::new(ws))
            }
            To::Quic(t) => Conn::Quic(Box::new(QuicLink::open(t).await?)),
            To::QuicShared(t, e) => Conn::Quic(Box::new(QuicLink::open_on(e.clone(), t).await?)),
        })
    }

    fn name(&self) -> &'static str {
        match self {
            To::Ws(_) => "ws",
            To::Wss(..) => "wss",
            To::Quic(_) => "quic",
            To::QuicShared(..) => "quic, one client endpoint",
        }
    }
}

/// The client side of `wss://`: TLS pinned to the relay's certificate hashes (as the
/// terminal client pins QUIC's), ALPN `http/1.1`.
fn wss_client(trust: &Trust) -> Result<Arc<rustls::ClientConfig>> {
    let mut tls = approdo_client::quic::tls_config(trust)?;
    tls.alpn_protocols = vec![approdo_relay::tls::ALPN_HTTP1.to_vec()];
    Ok(Arc::new(tls))
}

async fn staff(to: &To, org: &OrgSigningKey, serial: u64, role: Role) -> Result<Conn> {
    let (hello, signing) = crate::staff_hello(org, serial, role)?;
    let mut c = to.connect().await?;
    c.send(&hello).await?;
    let RelayFrame::Challenge { nonce } = c.recv().await? else {
        bail!("no challenge")
    };
    c.send(&ClientFrame::StaffProof {
        signature: signing.answer_challenge(&nonce),
    })
    .await?;
    loop {
        if let RelayFrame::StaffReady { .. } = c.recv().await? {
            return Ok(c);
        }
    }
}

fn open_session() -> Result<ClientFrame> {
    Ok(ClientFrame::OpenSession {
        version: PROTOCOL_VERSION,
        language: Tag::new("en")?,
        region: None,
    })
}

/// Person, operator and interpreter in one session, all on `to`.
async fn three_party(
    to: &To,
    org: &OrgSigningKey,
    serial: u64,
) -> Result<(Conn, Conn, Conn, SessionId, ParticipantId, ParticipantId)> {
    let mut op = staff(to, org, serial, Role::Operator).await?;
    let mut int = staff(to, org, serial + 1, Role::Interpreter).await?;
    let mut person = to.connect().await?;
    person.send(&open_session()?).await?;
    let session = loop {
        if let RelayFrame::SessionOpened { session, .. } = person.recv().await? {
            break session;
        }
    };
    op.send(&ClientFrame::Accept { session }).await?;
    let op_id = loop {
        if let RelayFrame::Joined { you, .. } = op.recv().await? {
            break you;
        }
    };
    op.send(&ClientFrame::Invite {
        session,
        language: Tag::new("en")?,
    })
    .await?;
    loop {
        if let RelayFrame::Invitations { entries, .. } = int.recv().await?
            && entries.iter().any(|e| e.session == session)
        {
            break;
        }
    }
    int.send(&ClientFrame::Join { session }).await?;
    let int_id = loop {
        if let RelayFrame::Joined { you, .. } = int.recv().await? {
            break you;
        }
    };
    let mut arrivals = 0;
    while arrivals < 2 {
        if let RelayFrame::Event {
            event: SessionEvent::Arrived { .. },
            ..
        } = person.recv().await?
        {
            arrivals += 1;
        }
    }
    Ok((person, op, int, session, op_id, int_id))
}

/// A recipient: counts delivered messages, acknowledging every 32; stamps each arrival.
async fn drain(
    mut c: Conn,
    session: SessionId,
    want: usize,
    stamps: Option<tokio::sync::mpsc::UnboundedSender<Instant>>,
) -> Result<Conn> {
    let mut got = 0;
    while got < want {
        if let RelayFrame::Event {
            seq,
            event: SessionEvent::Message { .. },
            ..
        } = c.recv().await?
        {
            got += 1;
            if let Some(s) = &stamps {
                let _ = s.send(Instant::now());
            }
            if got % 32 == 0 || got == want {
                c.send(&ClientFrame::Ack {
                    session,
                    up_to: seq,
                })
                .await?;
            }
        }
    }
    Ok(c)
}

async fn throughput(to: &To, org: &OrgSigningKey, serial: u64, n: usize) -> Result<f64> {
    let (mut person, op, int, session, a, b) = three_party(to, org, serial).await?;
    let r1 = tokio::spawn(drain(op, session, n, None));
    let r2 = tokio::spawn(drain(int, session, n, None));
    let start = Instant::now();
    let (mut accepted, mut sent) = (0u64, 0u64);
    while accepted < n as u64 {
        let mut burst = Vec::new();
        while sent < n as u64 && sent - accepted < WINDOW as u64 {
            sent += 1;
            burst.push(crate::message(session, sent, a, b)?);
        }
        if !burst.is_empty() {
            person.send_bytes(burst).await?;
        }
        if let RelayFrame::Accepted { up_to, .. } = person.recv().await? {
            accepted = up_to;
        }
    }
    r1.await??;
    r2.await??;
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

async fn latency(to: &To, org: &OrgSigningKey, serial: u64, n: usize) -> Result<Vec<Duration>> {
    let (mut person, op, int, session, a, b) = three_party(to, org, serial).await?;
    let (stamp_tx, mut stamps) = tokio::sync::mpsc::unbounded_channel();
    let r1 = tokio::spawn(drain(op, session, n, Some(stamp_tx)));
    let r2 = tokio::spawn(drain(int, session, n, None));
    let mut d = Vec::with_capacity(n);
    for seq in 1..=n as u64 {
        let sent_at = Instant::now();
        person
            .send_bytes(vec![crate::message(session, seq, a, b)?])
            .await?;
        let at = stamps.recv().await.context("recipient gone")?;
        d.push(at.duration_since(sent_at));
    }
    r1.await??;
    r2.await??;
    d.sort();
    Ok(d)
}

async fn echo_latency(to: &To, n: usize) -> Result<Vec<Duration>> {
    let mut c = to.connect().await?;
    let frame = vec![0x5a; PAYLOAD * 2 + 40];
    let mut d = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        c.send_bytes(vec![frame.clone()]).await?;
        c.recv_bytes().await?;
        d.push(t.elapsed() / 2);
    }
    d.sort();
    Ok(d)
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
    let mut serial = 100;
    let mut rates = Vec::new();
    for to in &transports {
        serial += 10;
        throughput(to, org, serial, n / 10).await?; // warm-up
        serial += 10;
        let rate = throughput(to, org, serial, n).await?;
        println!(
            "  {:<5} relayed messages/s (1 → 2, window {WINDOW})  {rate:>10.0}",
            to.name()
        );
        rates.push(rate);
    }
    // The bench's own overhead: the same QUIC clients on one shared endpoint.
    let shared = To::QuicShared(
        quic.clone(),
        quinn::Endpoint::client("127.0.0.1:0".parse()?)?,
    );
    serial += 10;
    throughput(&shared, org, serial, n / 10).await?;
    serial += 10;
    let rate = throughput(&shared, org, serial, n).await?;
    println!("  {} relayed messages/s  {rate:>10.0}", shared.name());
    if let [ws, wss, q] = rates[..] {
        println!(
            "  throughput quic/wss {:.2}x (goal ≥ 1.0)   quic/ws {:.2}x   wss/ws {:.2}x",
            q / wss,
            q / ws,
            wss / ws
        );
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
