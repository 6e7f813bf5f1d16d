//! The model's world: the real switchboard, the cast's real clients, the simulated clock,
//! and what the model records (who was in the session when, what was written and
//! received). The rules — what each action means and what must hold — are in
//! `model_conversations.rs`.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use approdo_core::client::{Client, Event, ROSTER_CONFIRM_TIMEOUT_SECS};
use approdo_core::credential::StaffCredential;
use approdo_core::identity::{Certificate, OrgSigningKey, Role, StaffSigningKey};
use approdo_core::ids::{SessionId, Tag};
use approdo_core::noise::NoiseStaticKey;
use approdo_core::observatory::Seeker;
use approdo_core::wire::{self, ClientFrame, RelayFrame};
use approdo_relay::observatory::Observatory;
use approdo_relay::store::EphemeralStore;
use approdo_relay::switchboard::{ConnId, Output, Switchboard};

use super::{
    CAST, CLOCK_STEP_SECS, INTERPRETED, INTERPRETERS, LANGUAGE, MAX_PUMP_ROUNDS, NAMES, NATIONAL,
    OPERATORS, PERSON, REGION, message_number,
};

pub(super) fn tag(s: &str) -> Tag {
    Tag::new(s).expect("test tags are valid")
}

pub(super) fn credential(
    org: &OrgSigningKey,
    serial: u64,
    role: Role,
    desks: &[&str],
    languages: &[&str],
) -> StaffCredential {
    let noise = NoiseStaticKey::generate();
    let signing = StaffSigningKey::generate();
    let info = Certificate {
        serial,
        role,
        label: format!("{}-{serial}", role.as_str()),
        desks: desks.iter().map(|d| tag(d)).collect(),
        languages: languages.iter().map(|l| tag(l)).collect(),
        noise_key: noise.public(),
        signing_key: signing.public(),
        not_after: u64::MAX,
    };
    let certificate = org.certify(&info);
    StaffCredential {
        noise,
        signing,
        certificate,
        info,
    }
}

/// A member of the session during one stint: (actor, how many times it has joined).
pub(super) type Stint = (usize, u32);

pub(super) struct Message {
    pub(super) from: usize,
    /// The sender's stint when it wrote.
    pub(super) from_stint: u32,
    /// Whom it is due to; `None` while it waits for the first operator (the person's backlog).
    pub(super) due: Option<BTreeSet<Stint>>,
}

pub(super) struct Actor {
    pub(super) client: Client,
    pub(super) conn: Option<ConnId>,
    pub(super) away_since: Option<Instant>,
    /// Logged out for good: never comes back.
    pub(super) gone: bool,
    /// How many times this actor entered the session (the person: once, when it opened).
    pub(super) stint: u32,
    /// The members this actor last knew of (updated at every quiescent moment it is online).
    pub(super) view: BTreeSet<Stint>,
    /// Sessions in the latest queue or invitation view.
    pub(super) offered: Vec<SessionId>,
    pub(super) in_call: bool,
    /// Every chat message received: (stint, message number).
    pub(super) received: Vec<(u32, usize)>,
}

pub(super) struct World {
    pub(super) sb: Switchboard,
    pub(super) actors: Vec<Actor>,
    pub(super) now: Instant,
    pub(super) now_unix: u64,
    pub(super) next_conn: ConnId,
    pub(super) session: Option<SessionId>,
    /// The desk the case is meant for (changes with a transfer).
    pub(super) desk: &'static str,
    pub(super) messages: Vec<Message>,
    /// Pairs of member stints that were in the session together at a quiescent moment when
    /// everyone in it was online: from then on their channel was up and the roster agreed.
    pub(super) met: BTreeSet<(Stint, Stint)>,
    pub(super) grace_secs: u64,
    pub(super) _dir: tempfile::TempDir,
}

impl World {
    pub(super) fn new(regional: bool) -> Result<World, String> {
        let org = OrgSigningKey::generate();
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let config = approdo_relay::admin::demo_config(&org, dir.path().join("store"));
        let grace_secs = config.limits.resume_grace_secs;
        let config = Arc::new(config);
        let store = EphemeralStore::open_wiped(&config.store_dir).map_err(|e| e.to_string())?;
        let observatory = Observatory::open(&config.observatory_dir).map_err(|e| e.to_string())?;
        let now = Instant::now();
        let sb = Switchboard::new(config, store, observatory, now).map_err(|e| e.to_string())?;
        let staff: [(Role, &[&str], &[&str]); CAST - 1] = [
            (Role::Operator, &[NATIONAL], &[LANGUAGE, "it"]),
            (Role::Operator, &[NATIONAL], &[LANGUAGE]),
            (Role::Operator, &[REGION], &[LANGUAGE, "it"]),
            (Role::Interpreter, &[NATIONAL, REGION], &[INTERPRETED]),
            (Role::Interpreter, &[NATIONAL, REGION], &[INTERPRETED, "uk"]),
        ];
        let mut clients = vec![Client::person(org.public())];
        for (i, (role, desks, languages)) in staff.into_iter().enumerate() {
            let serial = u64::try_from(i).map_err(|e| e.to_string())? + 1;
            clients.push(Client::staff(
                org.public(),
                credential(&org, serial, role, desks, languages),
            ));
        }
        let actors = clients
            .into_iter()
            .map(|client| Actor {
                client,
                conn: None,
                away_since: None,
                gone: false,
                stint: 0,
                view: BTreeSet::new(),
                offered: Vec::new(),
                in_call: false,
                received: Vec::new(),
            })
            .collect();
        let mut w = World {
            sb,
            actors,
            now,
            now_unix: approdo_relay::admin::unix_now(),
            next_conn: 1,
            session: None,
            desk: if regional { REGION } else { NATIONAL },
            messages: Vec::new(),
            met: BTreeSet::new(),
            grace_secs,
            _dir: dir,
        };
        for who in 0..CAST {
            w.connect(who)?;
            if who == PERSON {
                let person = &mut w.actors[PERSON].client;
                person
                    .set_intake(Seeker::Myself)
                    .map_err(|e| e.to_string())?;
                person
                    .open_session(tag(LANGUAGE), regional.then(|| tag(REGION)))
                    .map_err(|e| e.to_string())?;
            } else {
                w.actors[who].client.login().map_err(|e| e.to_string())?;
            }
        }
        w.settle()?;
        w.session = w.actors[PERSON].client.sessions().first().copied();
        if w.session.is_none() {
            return Err("the person's session did not open".into());
        }
        w.actors[PERSON].stint = 1;
        w.refresh_views();
        Ok(w)
    }

    pub(super) fn connect(&mut self, who: usize) -> Result<(), String> {
        let conn = self.next_conn;
        self.next_conn += 1;
        let octet = u8::try_from(who + 1).map_err(|e| e.to_string())?;
        let addr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, octet));
        let tag = self
            .sb
            .admit(addr, self.now)
            .ok_or_else(|| format!("{} could not connect", NAMES[who]))?;
        self.sb.connected(conn, tag, self.now);
        self.actors[who].conn = Some(conn);
        self.actors[who].away_since = None;
        Ok(())
    }

    pub(super) fn session(&self) -> SessionId {
        self.session.unwrap_or(SessionId([0; 16]))
    }

    pub(super) fn is_member(&self, who: usize) -> bool {
        let a = &self.actors[who];
        !a.gone && a.client.sessions().contains(&self.session())
    }

    pub(super) fn online(&self, who: usize) -> bool {
        self.actors[who].conn.is_some()
    }

    pub(super) fn members(&self) -> BTreeSet<Stint> {
        (0..CAST)
            .filter(|w| self.is_member(*w))
            .map(|w| (w, self.actors[w].stint))
            .collect()
    }

    pub(super) fn operator_present(&self) -> bool {
        OPERATORS.iter().any(|o| self.is_member(*o))
    }

    pub(super) fn interpreter_present(&self) -> bool {
        INTERPRETERS.iter().any(|i| self.is_member(*i))
    }

    /// Pass frames until nothing moves. Every refusal, close or alarm is a failure.
    pub(super) fn settle(&mut self) -> Result<(), String> {
        for _ in 0..MAX_PUMP_ROUNDS {
            let mut moved = self.route(None)?;
            for who in 0..CAST {
                while let Some(conn) = self.actors[who].conn {
                    let Some(bytes) = self.actors[who].client.poll_transmit() else {
                        break;
                    };
                    moved = true;
                    self.sb.handle(conn, &bytes, self.now);
                    self.route(Some((who, &bytes)))?;
                }
            }
            if !moved {
                return Ok(());
            }
        }
        Err("the conversation never came to rest".into())
    }

    /// Hand the relay's outputs to the clients; whether there were any.
    pub(super) fn route(&mut self, cause: Option<(usize, &[u8])>) -> Result<bool, String> {
        let outputs = self.sb.take_outputs();
        let any = !outputs.is_empty();
        for out in outputs {
            match out {
                Output::Frame(conn, bytes) => {
                    let Some(who) = self.actors.iter().position(|a| a.conn == Some(conn)) else {
                        continue;
                    };
                    if let Ok(RelayFrame::Error { code }) = wire::decode::<RelayFrame>(&bytes) {
                        let culprit = cause
                            .map(|(c, b)| format!("{}'s {}", NAMES[c], describe(b)))
                            .unwrap_or_else(|| "time passing".into());
                        return Err(format!(
                            "the relay refused {} with {code:?} after {culprit}",
                            NAMES[who]
                        ));
                    }
                    self.actors[who]
                        .client
                        .handle_bytes(&bytes, self.now_unix)
                        .map_err(|e| format!("{} could not take a relay frame: {e}", NAMES[who]))?;
                    self.drain_events(who)?;
                }
                Output::Close(conn) => {
                    if let Some(who) = self.actors.iter().position(|a| a.conn == Some(conn)) {
                        return Err(format!("the relay closed {}'s connection", NAMES[who]));
                    }
                }
                // No SFU here: the call's media does not matter, its membership does.
                Output::Call(_) | Output::GatherObservatory(_) => {}
            }
        }
        Ok(any)
    }

    pub(super) fn drain_events(&mut self, who: usize) -> Result<(), String> {
        while let Some(event) = self.actors[who].client.poll_event() {
            let a = &mut self.actors[who];
            match event {
                Event::Message { body, .. } => {
                    let id = message_number(&body)
                        .ok_or_else(|| format!("{} received words nobody wrote", NAMES[who]))?;
                    a.received.push((a.stint, id));
                }
                Event::Joined { .. } => a.stint += 1,
                Event::Queue { entries, .. } => {
                    a.offered = entries.iter().map(|e| e.session).collect()
                }
                Event::Invitations { entries, .. } => {
                    a.offered = entries.iter().map(|e| e.session).collect()
                }
                Event::RelayError { code } => {
                    return Err(format!("{} was shown a relay error: {code:?}", NAMES[who]));
                }
                Event::MembershipAlarm { alarm, .. } => {
                    return Err(format!(
                        "{} was shown a membership alarm in an honest run: {alarm:?}",
                        NAMES[who]
                    ));
                }
                Event::Undecryptable { peer, .. } => {
                    return Err(format!(
                        "{} could not decrypt a message from {peer:?}",
                        NAMES[who]
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Time passes in steps; connected clients keep pinging, as they do.
    pub(super) fn advance(&mut self, secs: u64) -> Result<(), String> {
        let mut left = secs;
        while left > 0 {
            let step = left.min(CLOCK_STEP_SECS);
            left -= step;
            self.now += Duration::from_secs(step);
            self.now_unix += step;
            for a in self.actors.iter_mut().filter(|a| a.conn.is_some()) {
                a.client.ping();
            }
            self.sb.tick(self.now);
            self.route(None)?;
            self.settle()?;
            for who in 0..CAST {
                self.actors[who].client.handle_timeout(self.now_unix);
                self.drain_events(who)?;
            }
            self.settle()?;
        }
        Ok(())
    }

    pub(super) fn longest_absence(&self) -> u64 {
        self.actors
            .iter()
            .filter(|a| !a.gone)
            .filter_map(|a| a.away_since)
            .map(|t| self.now.saturating_duration_since(t).as_secs())
            .max()
            .unwrap_or(0)
    }

    /// The connection drops: the relay's frames in flight to it are lost with it.
    pub(super) fn disconnect(&mut self, who: usize) -> Result<(), String> {
        if let Some(conn) = self.actors[who].conn.take() {
            self.sb.disconnected(conn, self.now);
            self.route(None)?;
            // The relay takes a dropped member out of the call.
            self.actors[who].in_call = false;
        }
        Ok(())
    }

    pub(super) fn resume(&mut self, who: usize) -> Result<(), String> {
        let a = &self.actors[who];
        if a.gone || a.conn.is_some() {
            return Ok(());
        }
        self.connect(who)?;
        self.actors[who]
            .client
            .reconnected()
            .map_err(|e| e.to_string())?;
        self.settle()
    }

    /// Everyone who dropped comes back, then every timer passes.
    pub(super) fn finish(&mut self) -> Result<(), String> {
        for who in 0..CAST {
            self.resume(who)?;
        }
        self.settle()?;
        self.refresh_views();
        self.advance(ROSTER_CONFIRM_TIMEOUT_SECS + 1)?;
        self.settle()?;
        self.refresh_views();
        Ok(())
    }
}

/// What a frame was, without its content (for failure messages).
pub(super) fn describe(bytes: &[u8]) -> String {
    let frame = match wire::decode::<ClientFrame>(bytes) {
        Ok(f) => f,
        Err(e) => return format!("undecodable frame of {} bytes ({e})", bytes.len()),
    };
    let name = match &frame {
        ClientFrame::Send { seq, envelopes, .. } => {
            return format!(
                "Send #{seq} of {} envelopes ({} bytes)",
                envelopes.len(),
                bytes.len()
            );
        }
        ClientFrame::OpenSession { .. } => "OpenSession",
        ClientFrame::Resume { .. } => "Resume",
        ClientFrame::StaffHello { .. } => "StaffHello",
        ClientFrame::StaffProof { .. } => "StaffProof",
        ClientFrame::Accept { .. } => "Accept",
        ClientFrame::Invite { .. } => "Invite",
        ClientFrame::Join { .. } => "Join",
        ClientFrame::Leave { .. } => "Leave",
        ClientFrame::End { .. } => "End",
        ClientFrame::Ack { .. } => "Ack",
        ClientFrame::Ping => "Ping",
        ClientFrame::Transfer { .. } => "Transfer",
        ClientFrame::CallJoin { .. } => "CallJoin",
        ClientFrame::CallLeave { .. } => "CallLeave",
        _ => "frame",
    };
    name.to_owned()
}
