//! A relay that lies: an in-memory stand-in for the relay that speaks the wire protocol to
//! real `Client`s and can misbehave on command. It is how the tests show that membership
//! is something the members agree on, not something the relay decides:
//!
//! * [`HostileRelay::phantom`] announces to staff a second anonymous participant, driven
//!   by a person client the relay controls (so it can complete a Noise handshake);
//! * [`HostileRelay::hide`] keeps one member from ever being told about another (members
//!   see different rosters);
//! * [`HostileRelay::drop_between`] silently drops every envelope from one member to
//!   another (a roster confirmation never arrives).
//!
//! Honestly it does what the relay does for these frames: opens the person's session,
//! logs staff in (`StaffHello` → `Challenge` → `StaffProof` → `StaffReady` with a signed
//! revocation list), adds them on `Accept`/`Join` (`Joined`, then `Arrived` both ways),
//! numbers events per participant, turns each envelope of a `Send` into
//! `Event{Message{from, payload}}` for its recipient and answers `Accepted`. It keeps every
//! envelope each client emitted, and every event each client showed, for the assertions.
//!
//! Each scenario file uses part of it.
#![allow(dead_code)]

use std::collections::BTreeSet;

use approdo_core::client::{Alarm, Client, Event};
use approdo_core::credential::StaffCredential;
use approdo_core::identity::{
    Certificate, OrgSigningKey, RevocationList, Role, SignedRevocationList, StaffSigningKey,
    verify_challenge_answer,
};
use approdo_core::ids::{ParticipantId, ResumeToken, SessionId, Tag, fill_random};
use approdo_core::limits::CHALLENGE_LEN;
use approdo_core::noise::NoiseStaticKey;
use approdo_core::wire::{self, ClientFrame, Envelope, RelayFrame, SessionEvent};

/// Bound on the pump, so a livelock fails instead of hanging.
const MAX_PUMP_ROUNDS: usize = 1_000;
/// The person's language in every scenario.
const LANGUAGE: &str = "en";

/// A handle on one client the double serves.
pub type SeatId = usize;

/// One client and what the double knows and saw of it.
pub struct Seat {
    /// The real client.
    pub client: Client,
    /// Its participant number once in the session.
    pub id: Option<ParticipantId>,
    role: Option<Role>,
    /// Staff login: the certificate presented and the challenge sent.
    login: Option<(Certificate, [u8; CHALLENGE_LEN])>,
    next_event: u64,
    /// Every event the client showed, in order.
    pub events: Vec<Event>,
    /// Every envelope the client put in a `Send`, in order.
    pub sent: Vec<Envelope>,
    /// Driven by the double itself (the phantom), not by a member.
    controlled: bool,
}

/// The stand-in relay. See the module documentation.
pub struct HostileRelay {
    org: OrgSigningKey,
    revocations: SignedRevocationList,
    /// Wall-clock seconds handed to the clients.
    pub now_unix: u64,
    /// The one session.
    pub session: SessionId,
    seats: Vec<Seat>,
    next_pid: u32,
    next_serial: u64,
    /// (told, about): `told` is never told that `about` arrived.
    hidden: BTreeSet<(SeatId, SeatId)>,
    /// (from, to): envelopes from `from` to `to` are dropped.
    dropping: BTreeSet<(SeatId, SeatId)>,
    /// How many envelopes were dropped.
    pub dropped: usize,
}

impl Default for HostileRelay {
    fn default() -> Self {
        Self::new()
    }
}

impl HostileRelay {
    /// A double with a fresh organisation key and an empty revocation list.
    pub fn new() -> Self {
        let org = OrgSigningKey::generate();
        let now_unix = 1_800_000_000;
        let revocations = org.sign_revocations(&RevocationList {
            issued_at: now_unix,
            serials: vec![],
        });
        HostileRelay {
            org,
            revocations,
            now_unix,
            session: SessionId::random(),
            seats: Vec::new(),
            next_pid: 1,
            next_serial: 1,
            hidden: BTreeSet::new(),
            dropping: BTreeSet::new(),
            dropped: 0,
        }
    }

    fn seat(&mut self, client: Client, role: Option<Role>, controlled: bool) -> SeatId {
        self.seats.push(Seat {
            client,
            id: None,
            role,
            login: None,
            next_event: 1,
            events: Vec::new(),
            sent: Vec::new(),
            controlled,
        });
        self.seats.len() - 1
    }

    /// The person opens the session (participant 1).
    pub fn person(&mut self) -> SeatId {
        self.person_in(None)
    }

    /// The person opens the session at a regional desk (participant 1), knowing that
    /// `national` is the national desk.
    pub fn person_in(&mut self, region: Option<&str>) -> SeatId {
        let mut client = Client::person(self.org.public());
        client.set_national_desk(Tag::new("national").expect("tag"));
        client
            .open_session(
                Tag::new(LANGUAGE).expect("tag"),
                region.map(|r| Tag::new(r).expect("tag")),
            )
            .expect("the person opens a session");
        let seat = self.seat(client, None, false);
        self.pump();
        seat
    }

    /// A staff member of the national desk, with a credential minted in memory, logs in.
    pub fn staff(&mut self, role: Role) -> SeatId {
        self.staff_at(role, "national")
    }

    /// A staff member certified for `desk` logs in.
    pub fn staff_at(&mut self, role: Role, desk: &str) -> SeatId {
        let noise = NoiseStaticKey::generate();
        let signing = StaffSigningKey::generate();
        let serial = self.next_serial;
        self.next_serial += 1;
        let info = Certificate {
            serial,
            role,
            label: format!("{}-{serial}", role.as_str()),
            desks: vec![Tag::new(desk).expect("tag")],
            languages: vec![Tag::new(LANGUAGE).expect("tag")],
            noise_key: noise.public(),
            signing_key: signing.public(),
            not_after: u64::MAX,
        };
        let certificate = self.org.certify(&info);
        let credential = StaffCredential {
            noise,
            signing,
            certificate,
            info,
        };
        let mut client = Client::staff(self.org.public(), credential);
        client.login().expect("staff log in");
        let seat = self.seat(client, Some(role), false);
        self.pump();
        assert!(
            self.seats[seat].events.contains(&Event::LoggedIn),
            "the double logs staff in"
        );
        seat
    }

    /// An operator takes the session.
    pub fn accept(&mut self, seat: SeatId) {
        let session = self.session;
        self.seats[seat].client.accept(session).expect("accept");
        self.pump();
    }

    /// An interpreter joins the session.
    pub fn join(&mut self, seat: SeatId) {
        let session = self.session;
        self.seats[seat].client.join(session).expect("join");
        self.pump();
    }

    /// Misbehave: never tell `told` that `about` is in the session (call before `about`
    /// arrives).
    pub fn hide(&mut self, told: SeatId, about: SeatId) {
        self.hidden.insert((told, about));
    }

    /// Misbehave: from now on drop every envelope from `from` to `to`.
    pub fn drop_between(&mut self, from: SeatId, to: SeatId) {
        self.dropping.insert((from, to));
    }

    /// Misbehave: announce to the staff a second anonymous participant, driven by a person
    /// client the double controls. Returns its seat.
    pub fn phantom(&mut self) -> SeatId {
        let seat = self.seat(Client::person(self.org.public()), None, true);
        let pid = self.new_pid();
        self.seats[seat].id = Some(pid);
        let opened = RelayFrame::SessionOpened {
            session: self.session,
            you: pid,
            token: ResumeToken::random(),
            revocations: self.revocations.clone(),
        };
        self.deliver(seat, &opened);
        let staff: Vec<SeatId> = self
            .members()
            .filter(|s| *s != seat && self.seats[*s].role.is_some())
            .collect();
        for s in staff {
            self.announce(seat, s);
            self.announce(s, seat);
        }
        self.pump();
        seat
    }

    /// Someone writes to everyone they know in the session.
    pub fn say(&mut self, seat: SeatId, text: &str) {
        let session = self.session;
        self.seats[seat]
            .client
            .send_text(session, text)
            .expect("send text");
        self.pump();
    }

    /// Time passes for every client.
    pub fn advance(&mut self, secs: u64) {
        self.now_unix += secs;
        for s in 0..self.seats.len() {
            let now = self.now_unix;
            self.seats[s].client.handle_timeout(now);
            self.collect_events(s);
        }
        self.pump();
    }

    /// A seat's client, to act on directly.
    pub fn client(&mut self, seat: SeatId) -> &mut Client {
        &mut self.seats[seat].client
    }

    /// A seat's participant number.
    pub fn pid(&self, seat: SeatId) -> ParticipantId {
        self.seats[seat].id.expect("the seat is in the session")
    }

    /// The chat texts a seat was shown.
    pub fn texts(&self, seat: SeatId) -> Vec<String> {
        self.seats[seat]
            .events
            .iter()
            .filter_map(|e| match e {
                Event::Message { body, .. } => Some(body.to_string()),
                _ => None,
            })
            .collect()
    }

    /// The membership alarms a seat showed.
    pub fn alarms(&self, seat: SeatId) -> Vec<Alarm> {
        self.seats[seat]
            .events
            .iter()
            .filter_map(|e| match e {
                Event::MembershipAlarm { alarm, .. } => Some(alarm.clone()),
                _ => None,
            })
            .collect()
    }

    /// Whether a seat showed that its channel with someone was restarted.
    pub fn restarted(&self, seat: SeatId) -> bool {
        self.seats[seat]
            .events
            .iter()
            .any(|e| matches!(e, Event::ChannelRestarted { .. }))
    }

    /// The member lists a seat was shown as agreed, in order.
    pub fn agreed(&self, seat: SeatId) -> Vec<Vec<ParticipantId>> {
        self.seats[seat]
            .events
            .iter()
            .filter_map(|e| match e {
                Event::RosterAgreed { members, .. } => Some(members.clone()),
                _ => None,
            })
            .collect()
    }

    /// Every envelope a seat addressed to participant `to`.
    pub fn sent_to(&self, seat: SeatId, to: ParticipantId) -> Vec<&Envelope> {
        self.seats[seat]
            .sent
            .iter()
            .filter(|e| e.to == to)
            .collect()
    }

    /// The seat's events, for failure messages.
    pub fn events(&self, seat: SeatId) -> &[Event] {
        &self.seats[seat].events
    }

    // ----- the relay's side ------------------------------------------------------------

    fn new_pid(&mut self) -> ParticipantId {
        let pid = ParticipantId(self.next_pid);
        self.next_pid += 1;
        pid
    }

    fn members(&self) -> impl Iterator<Item = SeatId> + '_ {
        (0..self.seats.len()).filter(|s| self.seats[*s].id.is_some())
    }

    fn seat_of(&self, pid: ParticipantId) -> Option<SeatId> {
        self.members().find(|s| self.seats[*s].id == Some(pid))
    }

    /// Pass frames until nothing moves.
    pub fn pump(&mut self) {
        for _ in 0..MAX_PUMP_ROUNDS {
            let mut moved = false;
            for s in 0..self.seats.len() {
                while let Some(bytes) = self.seats[s].client.poll_transmit() {
                    moved = true;
                    let frame: ClientFrame =
                        wire::decode(&bytes).expect("clients send well-formed frames");
                    self.handle_frame(s, frame);
                }
                self.collect_events(s);
            }
            if !moved {
                return;
            }
        }
        panic!("the conversation never came to rest");
    }

    fn collect_events(&mut self, seat: SeatId) {
        while let Some(e) = self.seats[seat].client.poll_event() {
            self.seats[seat].events.push(e);
        }
    }

    fn deliver(&mut self, seat: SeatId, frame: &RelayFrame) {
        let bytes = wire::encode(frame).expect("relay frames fit");
        let now = self.now_unix;
        self.seats[seat]
            .client
            .handle_bytes(&bytes, now)
            .expect("the client takes the double's frames");
        self.collect_events(seat);
    }

    fn event(&mut self, seat: SeatId, event: SessionEvent) {
        let seq = self.seats[seat].next_event;
        self.seats[seat].next_event += 1;
        let frame = RelayFrame::Event {
            session: self.session,
            seq,
            event,
        };
        self.deliver(seat, &frame);
    }

    /// Tell `told` that `about` is here, unless that is hidden.
    fn announce(&mut self, told: SeatId, about: SeatId) {
        if self.hidden.contains(&(told, about)) {
            return;
        }
        let id = self.pid(about);
        let role = self.seats[about].role;
        self.event(told, SessionEvent::Arrived { id, role });
    }

    fn handle_frame(&mut self, seat: SeatId, frame: ClientFrame) {
        let session = self.session;
        match frame {
            ClientFrame::OpenSession { .. } => {
                let pid = self.new_pid();
                self.seats[seat].id = Some(pid);
                let opened = RelayFrame::SessionOpened {
                    session,
                    you: pid,
                    token: ResumeToken::random(),
                    revocations: self.revocations.clone(),
                };
                self.deliver(seat, &opened);
            }
            ClientFrame::StaffHello { certificate, .. } => {
                let cert = self
                    .org
                    .public()
                    .open_certificate(&certificate)
                    .expect("staff present a valid certificate");
                let mut nonce = [0u8; CHALLENGE_LEN];
                fill_random(&mut nonce);
                self.seats[seat].login = Some((cert, nonce));
                self.deliver(seat, &RelayFrame::Challenge { nonce });
            }
            ClientFrame::StaffProof { signature } => {
                let (cert, nonce) = self.seats[seat].login.take().expect("a challenge was sent");
                assert!(
                    verify_challenge_answer(&cert.signing_key, &nonce, &signature),
                    "staff answer the challenge with their certified key"
                );
                let ready = RelayFrame::StaffReady {
                    revocations: self.revocations.clone(),
                };
                self.deliver(seat, &ready);
            }
            ClientFrame::Accept { .. } | ClientFrame::Join { .. } => self.add(seat),
            ClientFrame::Send { seq, envelopes, .. } => {
                let from = self.pid(seat);
                for env in envelopes {
                    self.seats[seat].sent.push(env.clone());
                    let Some(to) = self.seat_of(env.to) else {
                        continue;
                    };
                    if self.dropping.contains(&(seat, to)) {
                        self.dropped += 1;
                        continue;
                    }
                    let payload = env.payload;
                    self.event(to, SessionEvent::Message { from, payload });
                }
                self.deliver(
                    seat,
                    &RelayFrame::Accepted {
                        session,
                        up_to: seq,
                    },
                );
            }
            ClientFrame::Ping => self.deliver(seat, &RelayFrame::Pong),
            // Acks, leaving, calls: nothing the scenarios need the double to act on.
            _ => {}
        }
    }

    /// A staff member enters: `Joined`, then `Arrived` for everyone already there, then
    /// `Arrived` for the newcomer to each of them (what the misbehaviour lets through).
    fn add(&mut self, seat: SeatId) {
        let pid = self.new_pid();
        let existing: Vec<SeatId> = self
            .members()
            .filter(|s| !self.seats[*s].controlled)
            .collect();
        self.seats[seat].id = Some(pid);
        let joined = RelayFrame::Joined {
            session: self.session,
            you: pid,
            token: ResumeToken::random(),
        };
        self.deliver(seat, &joined);
        for s in &existing {
            self.announce(seat, *s);
        }
        for s in existing {
            self.announce(s, seat);
        }
    }
}
