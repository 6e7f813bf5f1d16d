//! `approdo`: the terminal client, for the person or for staff.
//!
//! Type a line to send it. Commands start with `/`: `/help` lists them.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use approdo_client::{Driver, DriverError};
use approdo_core::client::{Client, Event};
use approdo_core::credential::StaffCredential;
use approdo_core::identity::OrgPublicKey;
use approdo_core::ids::{ParticipantId, SessionId, Tag};
use approdo_core::observatory::{
    ACTIVATORS, AGES, Activator, AgeBand, EXPLOITATIONS, GENDERS, Gender, OUTCOMES,
    ObservatoryRecord, Outcome, Seeker, parse_code,
};
use approdo_core::safety::SafetyCode;
use clap::{Parser, Subcommand};
use tokio::io::{AsyncBufReadExt, BufReader};
use zeroize::Zeroizing;

#[derive(Parser)]
#[command(name = "approdo", version, about = "Approdo terminal client")]
struct Cli {
    /// The relay's WebSocket URL (`ws://` or `wss://`). Its `/config.json` (read over
    /// HTTPS for `wss://`) tells where its QUIC endpoint is.
    #[arg(long, default_value = "ws://127.0.0.1:8080/ws")]
    relay: String,
    /// `quic` (the default: QUIC, or WebSocket when QUIC does not answer within 2.5 s) or
    /// `ws` (WebSocket only).
    #[arg(long, default_value = "quic")]
    transport: String,
    /// CA certificates (PEM) for a relay whose certificate is not from a public CA: its
    /// HTTPS (`wss://`) and, when `/config.json` pins no hash, its QUIC endpoint. Default:
    /// the public web PKI roots.
    #[arg(long, conflicts_with = "relay_sha256")]
    ca_file: Option<std::path::PathBuf>,
    /// SHA-256 (hex, comma-separated) of a self-signed relay certificate, as the relay
    /// prints it: pins it for a `wss://` relay's HTTPS (the `/config.json` fetch and the
    /// WebSocket; QUIC then pins the hashes `/config.json` lists).
    #[arg(long)]
    relay_sha256: Option<String>,
    /// The organisation public key (hex) to pin.
    #[arg(long)]
    org: String,
    /// A signed revocation list file (as `approdo-relay admin revoke` writes it) to pin:
    /// certificates it revokes are refused even if the relay serves an older list, and a
    /// list older than the newest seen is never taken.
    #[arg(long)]
    revocations: Option<std::path::PathBuf>,
    #[command(subcommand)]
    who: Who,
}

#[derive(Subcommand)]
enum Who {
    /// Talk to the hotline as a person.
    Person {
        /// Your language.
        #[arg(long, default_value = "en")]
        language: String,
        /// Your region (desk id), if you want.
        #[arg(long)]
        region: Option<String>,
    },
    /// Work as staff with a credential file.
    Staff {
        /// Credential file.
        #[arg(long)]
        credential: std::path::PathBuf,
        /// Environment variable holding the passphrase (otherwise it is asked for).
        #[arg(long)]
        passphrase_env: Option<String>,
    },
}

const PERSON_HELP: &str =
    "Type a message and press Enter. /end ends the conversation; /quit leaves.";

const HELP: &str = "commands: /queue  /accept N  /invite LANG  /invitations  /join N  \
/private ID TEXT  /session N  /transfer DESK NOTE  /close KEY=VALUE...  /observatory  \
/leave  /end  /quit  (anything else is a message)\n\
/close keys: gender=female|male|transgender|unknown  age=under-18|18-25|26-35|36-50|over-50|unknown \
emerged=REGION exploited=REGION exploitation=sexual-street,labour-agriculture,... \
activator=person|cas-sprar|prefecture|territorial-commission|police|labour|social-health|street-unit|private-citizen \
outcome=counselling|interview|shelter|multi-agency|referral";

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let mut org = [0u8; 32];
    hex::decode_to_slice(cli.org.trim(), &mut org).context("--org must be 64 hex digits")?;
    let org = OrgPublicKey(org);
    let revocations = match &cli.revocations {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            Some(
                approdo_client::parse_revocation_file(&text)
                    .with_context(|| format!("{} is not a revocation list", path.display()))?,
            )
        }
        None => None,
    };
    let roots = match (&cli.ca_file, &cli.relay_sha256) {
        (Some(path), _) => Some(approdo_client::Trust::ca_file(path)?),
        (None, Some(hex_list)) => {
            let mut hashes = Vec::new();
            for h in hex_list.split(',') {
                let mut hash = [0u8; 32];
                hex::decode_to_slice(h.trim(), &mut hash)
                    .context("--relay-sha256 takes 64 hex digits per certificate")?;
                hashes.push(hash);
            }
            Some(approdo_client::Trust::Hashes(hashes))
        }
        (None, None) => None,
    };
    let quic = match cli.transport.as_str() {
        "quic" => true,
        "ws" => false,
        other => bail!("--transport is quic or ws, not {other:?}"),
    };
    let connect = |client: Client| {
        let relay = cli.relay.clone();
        let roots = roots.clone();
        async move {
            if quic {
                Driver::connect_preferring_quic(&relay, roots, client).await
            } else if relay.starts_with("quic://") {
                Driver::connect(&relay, client).await
            } else {
                let target = approdo_client::Target::websocket(&relay, roots);
                Driver::connect_to(target, client).await
            }
        }
    };
    let pin = |client: &mut Client| -> Result<()> {
        if let Some(list) = &revocations {
            client
                .add_revocations(list)
                .context("the revocation list is not signed by the pinned organisation")?;
        }
        Ok(())
    };
    let mut driver = match cli.who {
        Who::Person { language, region } => {
            let mut client = Client::person(org);
            pin(&mut client)?;
            client.open_session(Tag::new(language)?, region.map(Tag::new).transpose()?)?;
            connect(client).await?
        }
        Who::Staff {
            credential,
            passphrase_env,
        } => {
            let text = Zeroizing::new(std::fs::read_to_string(&credential)?);
            let pass = Zeroizing::new(match passphrase_env {
                Some(v) => std::env::var(&v).with_context(|| format!("reading {v}"))?,
                None => {
                    eprint!("passphrase: ");
                    let mut line = String::new();
                    std::io::stdin().read_line(&mut line)?;
                    line.trim_end().to_owned()
                }
            });
            let cred =
                StaffCredential::from_file(&text, &pass, &org).context("opening the credential")?;
            let mut client = Client::staff(org, cred);
            pin(&mut client)?;
            client.login()?;
            connect(client).await?
        }
    };
    driver.flush().await?;
    eprintln!("(connected over {})", driver.transport());
    if driver.client.role().is_some() {
        println!("{HELP}");
    } else {
        println!("{PERSON_HELP}");
    }
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut current: Option<SessionId> = None;
    let mut queue: Vec<SessionId> = Vec::new();
    let mut invitations: Vec<SessionId> = Vec::new();
    let mut ping = tokio::time::interval(Duration::from_secs(
        approdo_core::client::PING_INTERVAL_SECS,
    ));
    loop {
        while let Some(e) = driver.client.poll_event() {
            show(e, &mut current, &mut queue, &mut invitations);
        }
        if let Err(e) = driver.flush().await {
            println!("* {e}");
        }
        tokio::select! {
            line = lines.next_line() => {
                let Some(line) = line? else { break };
                match command(&mut driver, &line, &mut current, &queue, &invitations) {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(e) => println!("! {e}"),
                }
            }
            _ = ping.tick() => driver.client_ping(),
            received = driver.recv() => match received {
                Ok(()) => {}
                Err(DriverError::Connection(_)) => {
                    println!("* connection lost; reconnecting");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    if let Err(e) = driver.reconnect().await {
                        println!("* reconnect failed: {e}");
                    }
                }
                Err(e) => println!("! {e}"),
            }
        }
    }
    driver.flush().await.ok();
    Ok(())
}

fn command(
    d: &mut Driver,
    line: &str,
    current: &mut Option<SessionId>,
    queue: &[SessionId],
    invitations: &[SessionId],
) -> Result<bool> {
    let line = line.trim();
    if line.is_empty() {
        return Ok(true);
    }
    let pick = |list: &[SessionId], arg: Option<&str>| -> Result<SessionId> {
        let n: usize = arg
            .unwrap_or("1")
            .parse()
            .context("a number from the list")?;
        list.get(n.wrapping_sub(1))
            .copied()
            .context("no such entry")
    };
    let mut words = line.splitn(3, ' ');
    let session = || current.context("no current session");
    match words.next().unwrap_or_default() {
        "/help" if d.client.role().is_none() => println!("{PERSON_HELP}"),
        "/help" => println!("{HELP}"),
        "/quit" => return Ok(false),
        "/queue" | "/invitations" => println!("* the list is printed whenever it changes"),
        "/accept" => d.client.accept(pick(queue, words.next())?)?,
        "/join" => d.client.join(pick(invitations, words.next())?)?,
        "/invite" => d.client.invite(
            session()?,
            Tag::new(words.next().context("a language tag")?)?,
        )?,
        "/private" => {
            let to: u32 = words.next().context("a participant number")?.parse()?;
            d.client.send_private(
                session()?,
                ParticipantId(to),
                words.next().unwrap_or_default(),
            )?;
        }
        "/session" => {
            let all = d.client.sessions();
            *current = Some(pick(&all, words.next())?);
            println!("* current session {:?}", current.expect("just set"));
        }
        "/transfer" => {
            let desk = Tag::new(words.next().context("a desk id")?)?;
            d.client
                .transfer(session()?, desk, words.next().unwrap_or_default())?;
        }
        "/close" => {
            let rest = line.strip_prefix("/close").unwrap_or_default();
            d.client.close_case(session()?, parse_record(rest)?)?;
        }
        "/observatory" => d.client.query_observatory()?,
        "/leave" => d.client.leave(session()?)?,
        "/end" => d.client.end(session()?)?,
        w if w.starts_with('/') => bail!("unknown command {w}; {HELP}"),
        _ => d.client.send_text(session()?, line)?,
    }
    Ok(true)
}

fn show(
    e: Event,
    current: &mut Option<SessionId>,
    queue: &mut Vec<SessionId>,
    invitations: &mut Vec<SessionId>,
) {
    match e {
        Event::SessionOpened { session } | Event::Joined { session } => {
            *current = Some(session);
            println!("* in session {session:?}");
        }
        Event::QueueStatus {
            position,
            wait_secs,
            fallback,
            ..
        } => {
            if wait_secs == 0 {
                println!("* position {position}");
            } else {
                println!(
                    "* position {position}, about {} min",
                    wait_secs.div_ceil(60)
                );
            }
            if !fallback.is_empty() {
                println!("* nobody online now; call free: {}", fallback.join(", "));
            }
        }
        Event::LoggedIn => println!("* logged in"),
        Event::Queue { entries, .. } => {
            *queue = entries.iter().map(|e| e.session).collect();
            print_waiting(
                "queue",
                entries
                    .iter()
                    .map(|e| (&e.language, &e.desk, e.waiting_secs)),
            );
        }
        Event::Invitations { entries, .. } => {
            *invitations = entries.iter().map(|e| e.session).collect();
            print_waiting(
                "invitations",
                entries
                    .iter()
                    .map(|e| (&e.language, &e.desk, e.waiting_secs)),
            );
        }
        Event::PeerVerified {
            peer, role, label, ..
        } => match role {
            Some(r) => println!(
                "* #{} verified: {} {}",
                peer.0,
                r.as_str(),
                label.unwrap_or_default()
            ),
            None => println!("* #{} connected: the person (anonymous)", peer.0),
        },
        Event::PeerRejected { peer, reason, .. } => println!("! #{} REFUSED: {reason}", peer.0),
        Event::PeerLeft { peer, .. } => println!("* #{} left", peer.0),
        Event::Message {
            from,
            body,
            private,
            ..
        } => {
            println!(
                "#{}{}: {}",
                from.0,
                if private { " (private)" } else { "" },
                body.as_str()
            )
        }
        Event::SafetyCode { code, .. } => match code {
            SafetyCode::Ready(c) => println!("* safety code {c}"),
            SafetyCode::Mismatch => {
                println!("! SAFETY CODE MISMATCH: someone may be listening in between")
            }
            SafetyCode::Pending => {}
        },
        Event::Undecryptable { peer, .. } => {
            println!("! a message from #{} could not be read", peer.0)
        }
        Event::Resumed { intact: true, .. } => println!("* reconnected; nothing lost"),
        Event::Resumed { intact: false, .. } => {
            println!("* reconnected; something may have been lost meanwhile (see above)")
        }
        Event::MembershipAlarm { alarm, .. } => {
            println!("!!! ALARM: the session's membership cannot be trusted: {alarm:?}")
        }
        Event::RosterAgreed { members, .. } => println!(
            "* everyone confirmed the same participants: {}",
            members
                .iter()
                .map(|m| format!("#{}", m.0))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Event::ChannelRestarted { peer, .. } => println!(
            "! the channel with #{} broke and is being re-established: compare the safety code again",
            peer.0
        ),
        Event::BacklogFull { .. } => {
            println!("! that message was not kept: wait for an operator before writing more")
        }
        Event::NotSafe { .. } => println!(
            "!!! The person signalled they cannot talk freely now. Do not call; keep messages neutral; wait for them to write."
        ),
        Event::Transferred { desk, .. } => {
            println!("* you are being passed to a colleague of {}", desk.as_str())
        }
        Event::SessionEnded { session } => {
            if *current == Some(session) {
                *current = None;
            }
            println!("* session ended");
        }
        Event::RelayError { code } => println!("! relay: {code:?}"),
        Event::CallMembers { members, .. } => {
            let list: Vec<String> = members.iter().map(|p| format!("#{}", p.0)).collect();
            println!("* in the call: {}", list.join(", "));
        }
        // The terminal client takes no part in calls (they need a browser's media stack).
        Event::PeerArrived { .. }
        | Event::CallAnswer { .. }
        | Event::MediaKey { .. }
        | Event::Turn { .. } => {}
        Event::Intake { from, seeker, .. } => match seeker {
            Seeker::Myself => println!("* #{}: asking for help for themself", from.0),
            Seeker::Worker(a) => {
                println!("* #{}: a worker reporting a possible case ({a:?})", from.0)
            }
        },
        Event::HandoverNote {
            from, desk, body, ..
        } => {
            println!(
                "* handover note from #{} (transferred to {desk}): {}",
                from.0,
                body.as_str()
            )
        }
        Event::ObservatoryTables { tables } => {
            // Counts only; "<5" is a suppressed cell.
            let cell = |c: &approdo_core::observatory::Cell| match c {
                approdo_core::observatory::Cell::Count(n) => n.to_string(),
                approdo_core::observatory::Cell::Suppressed => "<5".to_owned(),
            };
            println!("* observatory: {} case(s)", cell(&tables.cases));
            for (m, c) in tables.months.iter().zip(&tables.cases_by_month) {
                println!("  {m}: {}", cell(c));
            }
            for t in &tables.tables {
                println!("  by {:?}:", t.dimension);
                for (v, c) in t.values.iter().zip(&t.total) {
                    println!("    {v}: {}", cell(c));
                }
            }
        }
    }
}

/// A numbered list of waiting sessions (the queue, or the invitations): the numbers are
/// what `/accept N` and `/join N` take.
fn print_waiting<'a>(title: &str, rows: impl Iterator<Item = (&'a Tag, &'a Tag, u32)>) {
    println!("* {title}:");
    for (i, (language, desk, secs)) in rows.enumerate() {
        println!("  {}. {language} at {desk} waiting {secs}s", i + 1);
    }
}

/// Parse `/close` arguments (`key=code`, codes as in `web-client/CONTRACT.md`) into an
/// observatory record; unknown keys or codes are an error.
fn parse_record(args: &str) -> Result<ObservatoryRecord> {
    fn one<T: Copy>(table: &[(T, &str)], key: &str, code: &str) -> Result<T> {
        parse_code(table, code).with_context(|| {
            let codes: Vec<&str> = table.iter().map(|(_, c)| *c).collect();
            format!("{key}: {code:?} is not one of {}", codes.join(", "))
        })
    }
    let mut record = ObservatoryRecord {
        gender: Gender::NotKnown,
        age: AgeBand::NotKnown,
        territory_emerged: None,
        territory_exploitation: None,
        exploitation: Vec::new(),
        activator: Activator::Person,
        outcome: Outcome::Counselling,
    };
    for pair in args.split_whitespace() {
        let (key, value) = pair.split_once('=').context("KEY=VALUE")?;
        match key {
            "gender" => record.gender = one(GENDERS, key, value)?,
            "age" => record.age = one(AGES, key, value)?,
            "emerged" => record.territory_emerged = Some(Tag::new(value)?),
            "exploited" => record.territory_exploitation = Some(Tag::new(value)?),
            "exploitation" => {
                for code in value.split(',') {
                    record.exploitation.push(one(EXPLOITATIONS, key, code)?);
                }
            }
            "activator" => record.activator = one(ACTIVATORS, key, value)?,
            "outcome" => record.outcome = one(OUTCOMES, key, value)?,
            _ => bail!("unknown key {key}"),
        }
    }
    Ok(record)
}
