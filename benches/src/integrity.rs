//! Integrity figures (issue 8, "Measure"): what a crowded switchboard costs an honest
//! conversation.
//!
//! * With many waiting sessions and 100 staff online (operators of several desks and
//!   languages, interpreters), the relay-added p99 of one honest person–operator pair,
//!   against the same pair on an idle relay in the same run (goal: at most 10 ms).
//! * The relay's CPU time per queue refresh, measured in this process by driving a real
//!   `Switchboard` (tick past the refresh interval, then `take_outputs`), at two sizes so the
//!   growth with the number of waiting sessions shows.
//!
//! The flood figures (honest `OpenSession` latency with and without a flood from 1,000
//! addresses) are in [`crate::flood`].

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use approdo_core::PROTOCOL_VERSION;
use approdo_core::identity::{Certificate, OrgSigningKey, Role, StaffSigningKey};
use approdo_core::ids::{ParticipantId, SessionId, Tag};
use approdo_core::noise::NoiseStaticKey;
use approdo_core::wire::{self, ClientFrame, Envelope, Payload, RelayFrame, SessionEvent};
use approdo_relay::DeskConfig;
use approdo_relay::switchboard::{Output, Switchboard};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use crate::conversation::{Conn, drain};
use crate::{ChildServer, PAYLOAD, Ws, connect, percentile, recv, send, us};

/// Regional desks the bench relay has besides the demo's three, so that waiting sessions
/// spread over desks as in a real deployment.
const EXTRA_DESKS: &[&str] = &[
    "lombardia",
    "lazio",
    "campania",
    "sicilia",
    "piemonte",
    "puglia",
    "emilia-romagna",
];
/// Every desk of the bench relay; the first is the national one.
const DESKS: &[&str] = &[
    "national",
    "toscana",
    "veneto",
    "lombardia",
    "lazio",
    "campania",
    "sicilia",
    "piemonte",
    "puglia",
    "emilia-romagna",
];
/// The languages waiting people and staff speak.
const LANGUAGES: &[&str] = &["en", "it", "fr", "ro", "ar", "pcm", "es", "ur"];

/// Staff online during the loaded runs: 80 operators (8 per desk) and 20 interpreters.
const OPERATORS: usize = 80;
const INTERPRETERS: usize = 20;
/// The honest pair's desk and language.
const HONEST_DESK: &str = "veneto";
const HONEST_LANGUAGE: &str = "it";
/// Serial of the honest operator (background staff count up from 1000).
const HONEST_SERIAL: u64 = 900;
/// Sessions opened at once while filling the queue.
const FILL_CONCURRENCY: usize = 32;
/// How often the waiting people and idle staff ping (the relay closes after 75 s).
const KEEPALIVE: Duration = Duration::from_secs(20);
/// One message every this often in the latency runs, so that the samples span several
/// queue refreshes (every 10 s) instead of falling between two.
const PACE: Duration = Duration::from_millis(10);
/// The relay's queue refresh interval (`relay::switchboard::lobby::QUEUE_REFRESH`, private there).
const QUEUE_REFRESH: Duration = Duration::from_secs(10);
/// The goal for the honest pair's relay-added p99 under load.
const GOAL_P99: Duration = Duration::from_millis(10);

/// Give the bench relay its extra regional desks (called by `serve-relay`).
pub fn add_desks(config: &mut approdo_relay::Config) -> Result<()> {
    for id in EXTRA_DESKS {
        config.desks.push(DeskConfig {
            id: Tag::new(*id)?,
            name: format!("bench desk {id}"),
            fallback_numbers: vec!["800 000 000".into()],
            names: Default::default(),
        });
    }
    Ok(())
}

fn tags(list: &[&str]) -> Result<Vec<Tag>> {
    Ok(list
        .iter()
        .map(|t| Tag::new(*t))
        .collect::<Result<_, _>>()?)
}

/// A certificate and its login key for staff member `serial`.
fn staff_cert(
    org: &OrgSigningKey,
    serial: u64,
    role: Role,
    desks: &[&str],
    languages: &[&str],
) -> Result<(approdo_core::identity::SignedCertificate, StaffSigningKey)> {
    let signing = StaffSigningKey::generate();
    let cert = org.certify(&Certificate {
        serial,
        role,
        label: format!("bench-{serial}"),
        desks: tags(desks)?,
        languages: tags(languages)?,
        noise_key: NoiseStaticKey::generate().public(),
        signing_key: signing.public(),
        not_after: u64::MAX,
    });
    Ok((cert, signing))
}

/// The desks and languages of background staff member `i` (0-based): operators spread over
/// every desk, each speaking two languages; interpreters two languages each.
fn background_staff(i: usize) -> (Role, &'static str, [&'static str; 2]) {
    let langs = [
        LANGUAGES[i % LANGUAGES.len()],
        LANGUAGES[(i + 3) % LANGUAGES.len()],
    ];
    if i < OPERATORS {
        // Regional operators log in before the national ones (see `load_relay`).
        let desk = DESKS[DESKS.len() - 1 - i % DESKS.len()];
        (Role::Operator, desk, langs)
    } else {
        (Role::Interpreter, "national", langs)
    }
}

async fn login(
    url: &str,
    org: &OrgSigningKey,
    serial: u64,
    role: Role,
    desks: &[&str],
    languages: &[&str],
) -> Result<Ws> {
    let (certificate, signing) = staff_cert(org, serial, role, desks, languages)?;
    let mut ws = connect(url).await?;
    send(
        &mut ws,
        &ClientFrame::StaffHello {
            version: PROTOCOL_VERSION,
            certificate,
        },
    )
    .await?;
    let RelayFrame::Challenge { nonce } = recv(&mut ws).await? else {
        bail!("no challenge")
    };
    let signature = signing.answer_challenge(&nonce);
    send(&mut ws, &ClientFrame::StaffProof { signature }).await?;
    loop {
        match recv(&mut ws).await? {
            RelayFrame::StaffReady { .. } => return Ok(ws),
            RelayFrame::Error { code } => bail!("login refused: {code:?}"),
            _ => {}
        }
    }
}

/// A person whose session waits in the queue.
pub(crate) async fn open_waiting(url: &str, language: &str, region: Option<&str>) -> Result<Ws> {
    let mut ws = connect(url).await?;
    send(
        &mut ws,
        &ClientFrame::OpenSession {
            version: PROTOCOL_VERSION,
            language: Tag::new(language)?,
            region: region.map(Tag::new).transpose()?,
        },
    )
    .await?;
    loop {
        match recv(&mut ws).await? {
            RelayFrame::SessionOpened { .. } => return Ok(ws),
            RelayFrame::Error { code } => bail!("open refused: {code:?}"),
            _ => {}
        }
    }
}

/// Keep a connection alive and read (and forget) everything it is sent, as an idle page
/// does, until the task is aborted or the relay closes it.
fn keep_alive(ws: Ws) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let Ok(ping) = wire::encode(&ClientFrame::Ping) else {
            return;
        };
        let (mut tx, mut rx) = ws.split();
        let mut every =
            tokio::time::interval_at(tokio::time::Instant::now() + KEEPALIVE, KEEPALIVE);
        loop {
            tokio::select! {
                m = rx.next() => if !matches!(m, Some(Ok(_))) { return },
                _ = every.tick() => {
                    if tx.send(Message::Binary(ping.clone().into())).await.is_err() {
                        return;
                    }
                }
            }
        }
    })
}

/// The honest pair: an operator of [`HONEST_DESK`] accepts a person who just opened a
/// session there. Returns (person, operator, session, operator's number).
async fn honest_pair(url: &str, org: &OrgSigningKey) -> Result<(Ws, Ws, SessionId, ParticipantId)> {
    let mut op = login(
        url,
        org,
        HONEST_SERIAL,
        Role::Operator,
        &[HONEST_DESK],
        &[HONEST_LANGUAGE],
    )
    .await?;
    let mut person = connect(url).await?;
    send(
        &mut person,
        &ClientFrame::OpenSession {
            version: PROTOCOL_VERSION,
            language: Tag::new(HONEST_LANGUAGE)?,
            region: Some(Tag::new(HONEST_DESK)?),
        },
    )
    .await?;
    let session = loop {
        match recv(&mut person).await? {
            RelayFrame::SessionOpened { session, .. } => break session,
            RelayFrame::Error { code } => bail!("honest open refused: {code:?}"),
            _ => {}
        }
    };
    // The operator need not find it in a (capped) queue view: it knows the id.
    send(&mut op, &ClientFrame::Accept { session }).await?;
    let op_id = loop {
        match recv(&mut op).await? {
            RelayFrame::Joined { you, .. } => break you,
            RelayFrame::Error { code } => bail!("accept refused: {code:?}"),
            _ => {}
        }
    };
    loop {
        if let RelayFrame::Event {
            event: SessionEvent::Arrived { .. },
            ..
        } = recv(&mut person).await?
        {
            break;
        }
    }
    Ok((person, op, session, op_id))
}

fn one_message(session: SessionId, seq: u64, to: ParticipantId) -> Result<Vec<u8>> {
    Ok(wire::encode(&ClientFrame::Send {
        session,
        seq,
        envelopes: vec![Envelope {
            to,
            payload: Payload::Cipher {
                nonce: seq,
                data: vec![0x5a; PAYLOAD],
            },
        }],
    })?)
}

/// One message every [`PACE`], person → operator; one-way times, sorted. Also the relay's
/// CPU seconds over the window.
async fn paced_latency(
    relay: &ChildServer,
    org: &OrgSigningKey,
    n: usize,
) -> Result<(Vec<Duration>, f64, Duration)> {
    let (person, op, session, op_id) = honest_pair(&relay.url, org).await?;
    let (mut tx, mut rx) = person.split();
    // The person's page reads what it is sent (acceptances) as a real one does.
    let reader = tokio::spawn(async move { while let Some(Ok(_)) = rx.next().await {} });
    let (stamp_tx, mut stamps) = tokio::sync::mpsc::unbounded_channel();
    let recipient = tokio::spawn(drain(Conn::Ws(Box::new(op)), session, n, Some(stamp_tx)));
    let cpu0 = relay.cpu_seconds()?;
    let start = Instant::now();
    let mut next = tokio::time::Instant::now();
    let mut d = Vec::with_capacity(n);
    for seq in 1..=n as u64 {
        tokio::time::sleep_until(next).await;
        next += PACE;
        let frame = one_message(session, seq, op_id)?;
        let sent_at = Instant::now();
        tx.send(Message::Binary(frame.into())).await?;
        let received_at = stamps.recv().await.context("recipient gone")?;
        d.push(received_at.duration_since(sent_at));
    }
    let window = start.elapsed();
    let cpu = relay.cpu_seconds()? - cpu0;
    recipient.await??;
    reader.abort();
    d.sort();
    Ok((d, cpu, window))
}

/// A relay with `waiting` sessions in its queues and 100 staff online; the connections are
/// returned so they stay open (their keep-alive tasks).
pub(crate) async fn load_relay(
    relay: &ChildServer,
    org: &OrgSigningKey,
    waiting: usize,
) -> Result<(Vec<tokio::task::JoinHandle<()>>, Duration, Duration)> {
    let url = relay.url.clone();
    let mut held = Vec::with_capacity(waiting + OPERATORS + INTERPRETERS);
    // Interpreters first: then "does anyone online speak this language?" finds an answer
    // early while the queue fills, as it would in a staffed hotline.
    for i in OPERATORS..OPERATORS + INTERPRETERS {
        let (role, desk, langs) = background_staff(i);
        held.push(keep_alive(
            login(&url, org, 1000 + i as u64, role, &[desk], &langs).await?,
        ));
    }
    let t = Instant::now();
    let opened: Vec<Result<Ws>> = futures_util::stream::iter(0..waiting)
        .map(|i| {
            let url = url.clone();
            async move {
                let language = LANGUAGES[i % LANGUAGES.len()];
                let desk = DESKS[(i / LANGUAGES.len()) % DESKS.len()];
                // People without a region go to the national desk.
                let region = (desk != "national").then_some(desk);
                open_waiting(&url, language, region).await
            }
        })
        .buffer_unordered(FILL_CONCURRENCY)
        .collect()
        .await;
    let fill = t.elapsed();
    for ws in opened {
        held.push(keep_alive(ws?));
    }
    let t = Instant::now();
    for i in 0..OPERATORS {
        let (role, desk, langs) = background_staff(i);
        held.push(keep_alive(
            login(&url, org, 1000 + i as u64, role, &[desk], &langs).await?,
        ));
    }
    Ok((held, fill, t.elapsed()))
}

/// The loaded-relay figures: the honest pair's latency idle and loaded, and what filling
/// the queue took.
pub async fn bench_load(quick: bool, seed: &str, org: &OrgSigningKey) -> Result<()> {
    let waiting = if quick { 1_000 } else { 5_000 };
    let samples = if quick { 1_100 } else { 3_000 };
    let env = [("BENCH_EXTRA_DESKS", "1")];

    let idle = ChildServer::start_with("serve-relay", seed, &env)?;
    let (idle_lat, idle_cpu, idle_window) = paced_latency(&idle, org, samples).await?;
    drop(idle);

    let loaded = ChildServer::start_with("serve-relay", seed, &env)?;
    let (held, fill, staff_login) = load_relay(&loaded, org, waiting).await?;
    let rss = loaded.rss_kib()?;
    let (lat, cpu, window) = paced_latency(&loaded, org, samples).await?;
    for h in &held {
        h.abort();
    }
    drop(loaded);

    let staff = OPERATORS + INTERPRETERS + 1;
    println!(
        "integrity: honest pair under load ({waiting} waiting sessions, {staff} staff online: \
         {} operators over {} desks, {INTERPRETERS} interpreters; {samples} messages, one every \
         {} ms)",
        OPERATORS + 1,
        DESKS.len(),
        PACE.as_millis()
    );
    println!(
        "  filling the queue             {:>8.1} s  ({:.0} opens/s); {OPERATORS} operators \
         logging in after: {:.1} s",
        fill.as_secs_f64(),
        waiting as f64 / fill.as_secs_f64(),
        staff_login.as_secs_f64()
    );
    println!(
        "  relay resident set loaded     {:>8.1} MiB  ({} connections held by this bench)",
        rss as f64 / 1024.0,
        held.len() + 2
    );
    let (i99, l99) = (percentile(&idle_lat, 0.99), percentile(&lat, 0.99));
    println!(
        "  idle relay (baseline)         p50 {:>6.0} µs   p99 {:>6.0} µs   max {:>7.0} µs",
        us(percentile(&idle_lat, 0.5)),
        us(i99),
        us(percentile(&idle_lat, 1.0))
    );
    println!(
        "  loaded relay                  p50 {:>6.0} µs   p99 {:>6.0} µs   max {:>7.0} µs",
        us(percentile(&lat, 0.5)),
        us(l99),
        us(percentile(&lat, 1.0))
    );
    println!(
        "  relay-added p99 under load    {:>6.0} µs  ratio to idle {:.2}x  goal ≤ {} ms: {} \
         (an upper bound: loopback and clients included)",
        us(l99),
        us(l99) / us(i99).max(1.0),
        GOAL_P99.as_millis(),
        if l99 <= GOAL_P99 { "met" } else { "NOT met" }
    );
    let over = |d: &[Duration]| d.iter().filter(|x| **x > GOAL_P99).count();
    println!(
        "  messages over {} ms            idle {} of {samples}, loaded {} of {samples}",
        GOAL_P99.as_millis(),
        over(&idle_lat),
        over(&lat)
    );
    println!(
        "  relay CPU over the window     idle {:.2} s of {:.1} s, loaded {:.2} s of {:.1} s \
         (process CPU; refreshes every {} s in it)",
        idle_cpu,
        idle_window.as_secs_f64(),
        cpu,
        window.as_secs_f64(),
        QUEUE_REFRESH.as_secs()
    );
    Ok(())
}

// ----- queue refresh, in process ---------------------------------------------------------

/// What one queue refresh cost a switchboard driven in this process.
struct RefreshCost {
    /// Wall-clock time of `tick` + `take_outputs`, sorted, one per refresh.
    wall: Vec<Duration>,
    /// CPU time of this thread over all refreshes, divided by their number.
    cpu_per_refresh: f64,
    frames: usize,
    bytes: usize,
}

/// A real `Switchboard` with `waiting` sessions and 100 staff, refreshed `rounds` times.
fn refresh_cost(org: &OrgSigningKey, waiting: usize, rounds: usize) -> Result<RefreshCost> {
    let dir = tempfile::tempdir()?;
    let mut config = approdo_relay::admin::demo_config(org, dir.path().join("sessions"));
    add_desks(&mut config)?;
    config.limits.sessions_per_min_per_addr = 1e9;
    config.limits.connections_per_min_per_addr = 1e9;
    config.limits.max_sessions = 1_000_000;
    config.limits.max_connections = 1_000_000;
    config.limits.open_sessions_per_sec_before_proof = 1e9;
    config.limits.bytes_per_sec_per_addr = 1e12;
    config.limits.byte_burst_per_addr = 1e12;
    let config = Arc::new(config);
    let store = approdo_relay::store::EphemeralStore::open_wiped(&config.store_dir)?;
    let observatory = approdo_relay::observatory::Observatory::open(&config.observatory_dir)?;
    let start = Instant::now();
    let mut sb = Switchboard::new(config, store, observatory, start)?;
    let addr = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let mut conn = 0u64;

    for i in 0..OPERATORS + INTERPRETERS {
        conn += 1;
        let tag = sb.admit(addr, start).context("admitted")?;
        sb.connected(conn, tag, start);
        let (role, desk, langs) = background_staff(i);
        let (certificate, signing) = staff_cert(org, 1000 + i as u64, role, &[desk], &langs)?;
        let hello = ClientFrame::StaffHello {
            version: PROTOCOL_VERSION,
            certificate,
        };
        sb.handle(conn, &wire::encode(&hello)?, start);
        let nonce = sb
            .take_outputs()
            .into_iter()
            .find_map(|o| match o {
                Output::Frame(c, bytes) if c == conn => match wire::decode(&bytes) {
                    Ok(RelayFrame::Challenge { nonce }) => Some(nonce),
                    _ => None,
                },
                _ => None,
            })
            .context("challenge")?;
        let proof = ClientFrame::StaffProof {
            signature: signing.answer_challenge(&nonce),
        };
        sb.handle(conn, &wire::encode(&proof)?, start);
    }
    for i in 0..waiting {
        conn += 1;
        let tag = sb.admit(addr, start).context("admitted")?;
        sb.connected(conn, tag, start);
        let desk = DESKS[(i / LANGUAGES.len()) % DESKS.len()];
        let open = ClientFrame::OpenSession {
            version: PROTOCOL_VERSION,
            language: Tag::new(LANGUAGES[i % LANGUAGES.len()])?,
            region: (desk != "national").then(|| Tag::new(desk)).transpose()?,
        };
        sb.handle(conn, &wire::encode(&open)?, start);
    }
    // Everything the opens and logins owe (one batch), before measuring.
    sb.take_outputs();

    let mut now = start;
    let mut wall = Vec::with_capacity(rounds);
    let (mut frames, mut bytes) = (0, 0);
    let cpu0 = crate::sfu::thread_cpu_seconds()?;
    for _ in 0..rounds {
        now += QUEUE_REFRESH + Duration::from_secs(1);
        let t = Instant::now();
        sb.tick(now);
        let out = sb.take_outputs();
        wall.push(t.elapsed());
        for o in &out {
            if let Output::Frame(_, b) = o {
                frames += 1;
                bytes += b.len();
            }
        }
        std::hint::black_box(out);
    }
    let cpu = crate::sfu::thread_cpu_seconds()? - cpu0;
    wall.sort();
    Ok(RefreshCost {
        wall,
        cpu_per_refresh: cpu / rounds as f64,
        frames: frames / rounds.max(1),
        bytes: bytes / rounds.max(1),
    })
}

/// CPU per queue refresh at the full size and at a fifth of it.
pub fn bench_refresh(quick: bool, org: &OrgSigningKey) -> Result<()> {
    let waiting = 5_000;
    let rounds = if quick { 5 } else { 20 };
    let small = refresh_cost(org, waiting / 5, rounds)?;
    let full = refresh_cost(org, waiting, rounds)?;
    println!(
        "integrity: queue refresh, in process (a real Switchboard: tick past the {} s refresh, \
         then take_outputs; {rounds} refreshes; {} staff online)",
        QUEUE_REFRESH.as_secs(),
        OPERATORS + INTERPRETERS
    );
    for (n, c) in [(waiting / 5, &small), (waiting, &full)] {
        println!(
            "  {n:>5} waiting: CPU {:>8.2} ms/refresh  (wall p50 {:.2} ms, max {:.2} ms); \
             {} frames, {:.0} KiB out",
            c.cpu_per_refresh * 1e3,
            us(percentile(&c.wall, 0.5)) / 1e3,
            us(percentile(&c.wall, 1.0)) / 1e3,
            c.frames,
            c.bytes as f64 / 1024.0
        );
    }
    println!(
        "  growth for 5x the sessions    {:.1}x  (1 = constant, 5 = linear, 25 = quadratic)",
        full.cpu_per_refresh / small.cpu_per_refresh.max(1e-9)
    );
    println!(
        "  per waiting session           {:>8.2} µs CPU per refresh",
        full.cpu_per_refresh * 1e6 / waiting as f64
    );
    Ok(())
}
