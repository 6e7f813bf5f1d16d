//! One conversation over any transport the relay speaks (WebSocket, WebSocket over TLS,
//! QUIC): the person, an operator and an interpreter on raw connections, and the
//! throughput and latency runs every section measures the same way.

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

use crate::{PAYLOAD, WINDOW, Ws};

/// A WebSocket over TLS (the deployed WebSocket path).
pub(crate) type Wss =
    tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<TcpStream>>;

/// One raw connection to the relay (or an echo server) of any transport.
pub(crate) enum Conn {
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
    pub(crate) async fn send_bytes(&mut self, frames: Vec<Vec<u8>>) -> Result<()> {
        match self {
            Conn::Ws(ws) => ws_send(ws.as_mut(), frames).await?,
            Conn::Wss(ws) => ws_send(ws.as_mut(), frames).await?,
            Conn::Quic(q) => q.write_frames(&frames).await?,
        }
        Ok(())
    }

    pub(crate) async fn send(&mut self, f: &ClientFrame) -> Result<()> {
        self.send_bytes(vec![wire::encode(f)?]).await
    }

    pub(crate) async fn recv_bytes(&mut self) -> Result<Vec<u8>> {
        match self {
            Conn::Ws(ws) => ws_recv(ws.as_mut()).await,
            Conn::Wss(ws) => ws_recv(ws.as_mut()).await,
            Conn::Quic(q) => Ok(q.read_frame().await?),
        }
    }

    pub(crate) async fn recv(&mut self) -> Result<RelayFrame> {
        Ok(wire::decode(&self.recv_bytes().await?)?)
    }
}

/// Where to connect, per transport.
#[derive(Clone)]
pub(crate) enum To {
    Ws(String),
    /// An HTTPS address and the client configuration that pins its certificate.
    Wss(SocketAddr, Arc<rustls::ClientConfig>),
    Quic(QuicTarget),
    /// QUIC with every client connection on one shared endpoint (socket and driver task).
    QuicShared(QuicTarget, quinn::Endpoint),
}

impl To {
    pub(crate) async fn connect(&self) -> Result<Conn> {
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

    pub(crate) fn name(&self) -> &'static str {
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
pub(crate) fn wss_client(trust: &Trust) -> Result<Arc<rustls::ClientConfig>> {
    let mut tls = approdo_client::quic::tls_config(trust)?;
    tls.alpn_protocols = vec![approdo_relay::tls::ALPN_HTTP1.to_vec()];
    Ok(Arc::new(tls))
}

pub(crate) async fn staff(to: &To, org: &OrgSigningKey, serial: u64, role: Role) -> Result<Conn> {
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

pub(crate) fn open_session() -> Result<ClientFrame> {
    Ok(ClientFrame::OpenSession {
        version: PROTOCOL_VERSION,
        language: Tag::new("en")?,
        region: None,
    })
}

/// One conversation of three: the person sends, the operator and interpreter receive.
pub(crate) struct ThreeParty {
    pub(crate) person: Conn,
    pub(crate) operator: Conn,
    pub(crate) interpreter: Conn,
    pub(crate) session: SessionId,
    pub(crate) operator_id: ParticipantId,
    pub(crate) interpreter_id: ParticipantId,
    /// The person's resume token (for a person who comes back through another node).
    pub(crate) token: approdo_core::ids::ResumeToken,
}

impl ThreeParty {
    /// The three connections, the session and the two staff members' numbers.
    fn split(self) -> (Conn, Conn, Conn, SessionId, ParticipantId, ParticipantId) {
        (
            self.person,
            self.operator,
            self.interpreter,
            self.session,
            self.operator_id,
            self.interpreter_id,
        )
    }
}

/// Person, operator and interpreter in one session, all on `to`.
pub(crate) async fn three_party(to: &To, org: &OrgSigningKey, serial: u64) -> Result<ThreeParty> {
    let mut op = staff(to, org, serial, Role::Operator).await?;
    let mut int = staff(to, org, serial + 1, Role::Interpreter).await?;
    let mut person = to.connect().await?;
    person.send(&open_session()?).await?;
    let (session, token) = loop {
        if let RelayFrame::SessionOpened { session, token, .. } = person.recv().await? {
            break (session, token);
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
    Ok(ThreeParty {
        person,
        operator: op,
        interpreter: int,
        session,
        operator_id: op_id,
        interpreter_id: int_id,
        token,
    })
}

/// A recipient: counts delivered messages, acknowledging every 32; stamps each arrival.
pub(crate) async fn drain(
    c: Conn,
    session: SessionId,
    want: usize,
    stamps: Option<tokio::sync::mpsc::UnboundedSender<Instant>>,
) -> Result<Conn> {
    drain_counting(c, session, want, stamps, None).await
}

/// How far one recipient has read, for a sender that must not run ahead of it.
#[derive(Default)]
pub(crate) struct Progress {
    got: std::sync::atomic::AtomicU64,
    moved: tokio::sync::Notify,
}

/// A recipient acknowledges every this many messages.
const ACK_EVERY: usize = 32;

/// At most this many messages past the slower recipient: under the relay's outbox of 1024
/// frames per connection, so the bench's own sender (its rate limit raised) never makes
/// the relay cut off a recipient that is only slower than it.
const MAX_AHEAD: u64 = 512;

/// [`drain`], telling `progress` every [`ACK_EVERY`] messages.
async fn drain_counting(
    mut c: Conn,
    session: SessionId,
    want: usize,
    stamps: Option<tokio::sync::mpsc::UnboundedSender<Instant>>,
    progress: Option<std::sync::Arc<Progress>>,
) -> Result<Conn> {
    let mut got = 0;
    while got < want {
        match c
            .recv()
            .await
            .with_context(|| format!("after {got} of {want} messages"))?
        {
            RelayFrame::Event {
                seq,
                event: SessionEvent::Message { .. },
                ..
            } => {
                got += 1;
                if let Some(s) = &stamps {
                    let _ = s.send(Instant::now());
                }
                if got % ACK_EVERY == 0 || got == want {
                    c.send(&ClientFrame::Ack {
                        session,
                        up_to: seq,
                    })
                    .await?;
                    if let Some(p) = &progress {
                        p.got
                            .store(got as u64, std::sync::atomic::Ordering::Relaxed);
                        p.moved.notify_one();
                    }
                }
            }
            RelayFrame::Error { code } => bail!("refused after {got} messages: {code:?}"),
            _ => {}
        }
    }
    Ok(c)
}

pub(crate) async fn throughput(to: &To, org: &OrgSigningKey, serial: u64, n: usize) -> Result<f64> {
    throughput_of(three_party(to, org, serial).await?, n).await
}

/// Messages per second the person gets through to both staff in `parties`' session.
pub(crate) async fn throughput_of(parties: ThreeParty, n: usize) -> Result<f64> {
    let (mut person, op, int, session, a, b) = parties.split();
    let progress = [
        std::sync::Arc::new(Progress::default()),
        std::sync::Arc::new(Progress::default()),
    ];
    let r1 = tokio::spawn(drain_counting(
        op,
        session,
        n,
        None,
        Some(progress[0].clone()),
    ));
    let r2 = tokio::spawn(drain_counting(
        int,
        session,
        n,
        None,
        Some(progress[1].clone()),
    ));
    let slower = || {
        progress
            .iter()
            .map(|p| p.got.load(std::sync::atomic::Ordering::Relaxed))
            .min()
            .unwrap_or(0)
    };
    let start = Instant::now();
    let (mut accepted, mut sent) = (0u64, 0u64);
    while accepted < n as u64 {
        if sent == accepted && sent < n as u64 && sent - slower() >= MAX_AHEAD {
            // Everything sent is accepted and the slower recipient is far behind: wait
            // for it (each recipient wakes this after every acknowledgement).
            tokio::select! {
                () = progress[0].moved.notified() => {}
                () = progress[1].moved.notified() => {}
            }
            continue;
        }
        let mut burst = Vec::new();
        while sent < n as u64 && sent - accepted < WINDOW as u64 && sent - slower() < MAX_AHEAD {
            sent += 1;
            burst.push(crate::message(session, sent, a, b)?);
        }
        if !burst.is_empty() {
            person.send_bytes(burst).await.context("person sending")?;
        }
        match person.recv().await.context("person waiting for Accepted")? {
            RelayFrame::Accepted { up_to, .. } => accepted = up_to,
            RelayFrame::Error { code } => bail!("person refused: {code:?}"),
            _ => {}
        }
    }
    let op = r1.await?.context("operator draining")?;
    r2.await?.context("interpreter draining")?;
    let rate = n as f64 / start.elapsed().as_secs_f64();
    // Diagnosis: quinn's own counts (datagrams, sendmsg calls, ACK frames, congestion
    // window, losses) of the person's and the operator's connections, on stderr.
    if std::env::var_os("BENCH_QUIC_STATS").is_some() {
        for (name, c) in [("person", &person), ("operator", &op)] {
            if let Conn::Quic(q) = c {
                eprintln!("{name} {n}: {:?}", q.connection.stats());
            }
        }
    }
    Ok(rate)
}

pub(crate) async fn latency(
    to: &To,
    org: &OrgSigningKey,
    serial: u64,
    n: usize,
) -> Result<Vec<Duration>> {
    latency_of(three_party(to, org, serial).await?, n).await
}

/// One message at a time from the person to the operator in `parties`' session: the
/// times from sending to arrival, sorted.
pub(crate) async fn latency_of(parties: ThreeParty, n: usize) -> Result<Vec<Duration>> {
    let (mut person, op, int, session, a, b) = parties.split();
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

pub(crate) async fn echo_latency(to: &To, n: usize) -> Result<Vec<Duration>> {
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
